//! Per-stratum verdicts: a wave judged model by model (or OS build,
//! platform…), so one broken laptop model is held instead of stopping
//! everyone. α is split (Bonferroni) over the goals and the strata judged,
//! so looking at many strata does not raise the chance of a wrong hold.

use crate::gates::{self, Evaluation, GatePolicy, Observed, Outcome};
use crate::goals::{Goal, Metric};
use crate::pilot::Dimension;
use crate::status::DeviceState;
use roaring::RoaringBitmap;
use serde::Serialize;

/// How a phase's waves are split for judging: the attribute, and the
/// fewest devices a stratum needs to be judged on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stratify {
    pub dimension: Dimension,
    pub min_devices: u64,
}

/// The default smallest stratum judged alone: below it a stratum's
/// interval is too wide to hold anything but a gross failure, and it is
/// left to the whole wave's verdict.
pub const MIN_DEVICES: u64 = 200;

/// Whether a goal's metric can be judged on a stratum's own device states.
/// Tickets, feedback, enrolment and absolute counts belong to the whole
/// wave (their bars are set for it).
pub fn per_stratum(metric: Metric) -> bool {
    matches!(
        metric,
        Metric::ApplySuccessRate
            | Metric::ErrorRate
            | Metric::ConflictRate
            | Metric::NotApplicableRate
            | Metric::PendingAfter { .. }
    )
}

/// A stratum's devices in the wave and their latest states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub devices: u64,
    pub succeeded: u64,
    pub errors: u64,
    pub conflicts: u64,
    pub pending: u64,
    pub not_applicable: u64,
}

impl Tally {
    /// Counts one reported state.
    pub fn add(&mut self, state: DeviceState) {
        *match state {
            DeviceState::Succeeded => &mut self.succeeded,
            DeviceState::Error => &mut self.errors,
            DeviceState::Conflict => &mut self.conflicts,
            DeviceState::Pending => &mut self.pending,
            DeviceState::NotApplicable => &mut self.not_applicable,
        } += 1;
    }

    pub fn reported(&self) -> u64 {
        self.succeeded + self.errors + self.conflicts + self.pending + self.not_applicable
    }

    /// What the gates read of this stratum, on the round and hours of `base`.
    pub fn observed(&self, base: &Observed) -> Observed {
        Observed {
            devices: self.devices,
            reported: self.reported(),
            succeeded: self.succeeded,
            errors: self.errors,
            conflicts: self.conflicts,
            not_applicable: self.not_applicable,
            pending: self.devices.saturating_sub(self.reported() - self.pending),
            hours_since_start: base.hours_since_start,
            round: base.round,
            ..Observed::default()
        }
    }
}

/// A stratum held this round, with the one sentence that says why.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// Index into the names (and tallies) passed in.
    pub code: usize,
    pub stratum: String,
    pub evidence: String,
}

/// Judges one round per stratum: `names[i]` and `tallies[i]` are one
/// stratum ("model Latitude 7440"); only the goals [`per_stratum`] can
/// judge are tested, α split over those goals and the strata large
/// enough. Returns the strata whose critical goal wholly misses its bar.
pub fn holds(
    goals: &[Goal],
    names: &[String],
    tallies: &[Tally],
    by: &Stratify,
    policy: &GatePolicy,
    base: &Observed,
) -> Vec<Held> {
    let goals: Vec<Goal> = goals
        .iter()
        .filter(|g| g.critical && per_stratum(g.metric))
        .cloned()
        .collect();
    if goals.is_empty() {
        return Vec::new();
    }
    let rows: Vec<(String, Observed)> = names
        .iter()
        .zip(tallies)
        .map(|(n, t)| (n.clone(), t.observed(base)))
        .collect();
    judge(&goals, &rows, by.min_devices, policy)
        .into_iter()
        .filter(|v| v.held)
        .filter_map(|v| {
            let code = names.iter().position(|n| *n == v.stratum)?;
            let failed = v
                .evaluations
                .iter()
                .find(|e| e.critical && e.outcome == Outcome::Fail)?;
            Some(Held {
                code,
                evidence: failed.sentence.clone(),
                stratum: v.stratum,
            })
        })
        .collect()
}

/// A stratum's name as holds and sentences give it: "model Latitude 7440".
pub fn name(dim: Dimension, value: &str) -> String {
    format!("{} {value}", dim.name())
}

/// `members` by stratum name on each of `dims` (the dimensions a plan's
/// phases judge by), so a hold made on one wave can find its stratum in
/// another. Each dimension partitions the members once.
pub fn named(
    org: &crate::org::Org,
    dims: &[Dimension],
    members: &RoaringBitmap,
) -> Vec<(String, RoaringBitmap)> {
    let rows: Vec<u32> = members.iter().collect();
    let mut out = Vec::new();
    for &dim in dims {
        let (codes, names) = crate::pilot::strata(org, dim, &rows);
        let mut sets = vec![RoaringBitmap::new(); names.len()];
        for (&d, &c) in rows.iter().zip(&codes) {
            sets[c as usize].insert(d);
        }
        out.extend(names.iter().map(|n| name(dim, n)).zip(sets));
    }
    out
}

/// A hold as [`left_out`] reads it.
#[derive(Debug, Clone, Copy)]
pub struct Hold<'a> {
    /// The wave it was made in.
    pub wave: u32,
    pub stratum: &'a str,
    /// Its devices in that wave.
    pub devices: &'a RoaringBitmap,
    pub held_at: jiff::Timestamp,
    /// When an operator released it.
    pub released: Option<jiff::Timestamp>,
}

/// The devices that holds keep out of wave `wave`, which started at
/// `started` (None: not yet) and whose members by stratum are `named`
/// ([`named`]). A held stratum leaves its own wave for good; a later wave
/// that starts after the hold leaves out the same stratum's devices (the
/// same model in a later ring) while the hold stands when it starts: a
/// release lets them into the waves that start after it, never into one
/// already running, and a hold never takes devices from a running wave.
pub fn left_out<'a>(
    holds: impl IntoIterator<Item = Hold<'a>>,
    wave: u32,
    started: Option<jiff::Timestamp>,
    named: &[(String, RoaringBitmap)],
) -> RoaringBitmap {
    let mut out = RoaringBitmap::new();
    for h in holds {
        if h.wave == wave {
            out |= h.devices;
        } else if h.wave < wave
            && started.is_none_or(|s| s >= h.held_at)
            && h.released.is_none_or(|r| started.is_some_and(|s| s < r))
        {
            out |= h.devices;
            for (_, set) in named.iter().filter(|(n, _)| n == h.stratum) {
                out |= set;
            }
        }
    }
    out
}

/// One stratum's goals judged.
#[derive(Debug, Clone, PartialEq)]
pub struct StratumVerdict {
    pub stratum: String,
    /// In goal order.
    pub evaluations: Vec<Evaluation>,
    /// A critical goal's sequence wholly misses its bar in this stratum:
    /// its devices should leave the wave (and later waves).
    pub held: bool,
}

/// Judges every stratum with at least `min_size` devices on `goals`, each
/// at α / (goals × strata judged). Smaller strata are left to the whole
/// wave's verdict.
pub fn judge(
    goals: &[Goal],
    strata: &[(String, Observed)],
    min_size: u64,
    policy: &GatePolicy,
) -> Vec<StratumVerdict> {
    let judged: Vec<&(String, Observed)> = strata
        .iter()
        .filter(|(_, o)| o.devices >= min_size)
        .collect();
    let sp = gates::Split {
        goals: goals.len() as u32,
        strata: judged.len() as u32,
    };
    let split = GatePolicy {
        alpha: policy.alpha / f64::from(sp.tests().max(1)),
        split: Some(sp),
        ..*policy
    };
    judged
        .into_iter()
        .map(|(name, o)| {
            let mut o = o.clone();
            o.stratum = Some(name.clone());
            let evaluations: Vec<Evaluation> = goals
                .iter()
                .map(|g| gates::evaluate(g, &o, &split, None))
                .collect();
            let held = evaluations
                .iter()
                .any(|e| e.critical && e.outcome == Outcome::Fail);
            StratumVerdict {
                stratum: name.clone(),
                evaluations,
                held,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goals::{GoalDraft, validate};

    fn error_goal() -> Goal {
        validate(
            &GoalDraft {
                metric: Some("error_rate"),
                threshold: Some("<= 2%"),
                window: Some("24h"),
                min_sample: Some(50),
                deadline: Some("7d"),
                after: None,
                critical: true,
            },
            8.0,
            None,
        )
        .unwrap()
    }

    fn stratum(name: &str, devices: u64, errors: u64) -> (String, Observed) {
        (
            name.to_string(),
            Observed {
                devices,
                reported: devices,
                succeeded: devices - errors,
                errors,
                round: 12,
                ..Observed::default()
            },
        )
    }

    #[test]
    fn a_broken_model_is_held_and_the_rest_go_on() {
        let strata = vec![
            stratum("model A", 2000, 10),
            stratum("model B", 2000, 14),
            stratum("model C", 400, 60),
            stratum("model D", 30, 20),
        ];
        let v = judge(&[error_goal()], &strata, 100, &GatePolicy::sequential());
        // D is too small to judge on its own.
        let names: Vec<&str> = v.iter().map(|s| s.stratum.as_str()).collect();
        assert_eq!(names, ["model A", "model B", "model C"]);
        let held: Vec<bool> = v.iter().map(|s| s.held).collect();
        assert_eq!(held, [false, false, true]);
        let e = &v[2].evaluations[0];
        assert_eq!(e.outcome, Outcome::Fail);
        assert!(
            e.sentence.starts_with(
                "error rate 15 % (98.3 % anytime interval 9.1 %–22.6 %; 95 % split over 3 strata)"
            ) && e.sentence.contains(
                "on 60 of 400 devices over 1 d in model C, look 12 misses the bar of ≤ 2 %: fail"
            ),
            "{}",
            e.sentence
        );
        assert_eq!(v[0].evaluations[0].outcome, Outcome::Pass);
    }

    fn tally(devices: u64, errors: u64) -> Tally {
        Tally {
            devices,
            succeeded: devices - errors,
            errors,
            ..Tally::default()
        }
    }

    #[test]
    fn holds_name_the_failing_stratum_with_its_sentence() {
        let names: Vec<String> = ["model A", "model B", "model C"].map(String::from).to_vec();
        let tallies = [tally(2000, 10), tally(2000, 14), tally(400, 60)];
        let base = Observed {
            round: 12,
            ..Observed::default()
        };
        let by = Stratify {
            dimension: Dimension::Model,
            min_devices: 100,
        };
        let h = holds(
            &[error_goal()],
            &names,
            &tallies,
            &by,
            &GatePolicy::sequential(),
            &base,
        );
        assert_eq!(h.len(), 1);
        assert_eq!((h[0].code, h[0].stratum.as_str()), (2, "model C"));
        assert!(h[0].evidence.contains("in model C"), "{}", h[0].evidence);
        // Under the minimum size nothing is judged alone.
        let big = Stratify {
            min_devices: 1000,
            ..by
        };
        let none = holds(
            &[error_goal()],
            &names[2..],
            &tallies[2..],
            &big,
            &GatePolicy::sequential(),
            &base,
        );
        assert!(none.is_empty());
    }

    #[test]
    fn pending_devices_are_those_without_a_final_state() {
        let t = Tally {
            devices: 10,
            succeeded: 3,
            pending: 2,
            ..Tally::default()
        };
        let o = t.observed(&Observed::default());
        // 3 have a final state; the 2 reporting pending and 5 silent do not.
        assert_eq!((o.reported, o.pending), (5, 7));
    }

    #[test]
    fn a_release_lets_devices_into_waves_that_start_after_it() {
        let t = |h: i64| jiff::Timestamp::from_second(h * 3600).unwrap();
        let held: RoaringBitmap = [1u32, 2].into_iter().collect();
        let hold = |released| Hold {
            wave: 1,
            stratum: "model X",
            devices: &held,
            held_at: t(2),
            released,
        };
        // Wave 2 holds two more of model X and one of model Y.
        let later: Vec<(String, RoaringBitmap)> = vec![
            ("model X".into(), [7u32, 8].into_iter().collect()),
            ("model Y".into(), [9u32].into_iter().collect()),
            ("OS version X".into(), [9u32].into_iter().collect()),
        ];
        let out = |h, wave, started| left_out([h], wave, started, &later);
        let (open, released) = (hold(None), hold(Some(t(10))));
        // Its own wave, whatever happens later.
        assert_eq!(out(released, 1, Some(t(1))).len(), 2);
        // Earlier waves keep their devices.
        assert!(out(open, 0, Some(t(1))).is_empty());
        // Later waves: the stratum's devices there are out while the hold
        // stands (only model X, not another dimension's "X").
        let want: RoaringBitmap = [1u32, 2, 7, 8].into_iter().collect();
        assert_eq!(out(open, 2, None), want);
        assert_eq!(out(open, 2, Some(t(20))), want);
        // Released: back in a wave not yet started or started after it,
        // still out of one that started before.
        assert!(out(released, 2, None).is_empty());
        assert!(out(released, 2, Some(t(20))).is_empty());
        assert_eq!(out(released, 2, Some(t(5))), want);
        // A wave already running when the hold was made keeps its devices.
        assert!(out(open, 2, Some(t(1))).is_empty());
    }

    #[test]
    fn sentences_say_the_level_each_stratum_is_judged_at() {
        let goal = error_goal();
        let ten: Vec<(String, Observed)> = (0..10)
            .map(|i| stratum(&format!("model {i}"), 1000, 5))
            .collect();
        let v = judge(
            std::slice::from_ref(&goal),
            &ten,
            100,
            &GatePolicy::sequential(),
        );
        let s = &v[0].evaluations[0].sentence;
        assert!(
            s.contains("(99.5 % anytime interval") && s.contains("; 95 % split over 10 strata)"),
            "{s}"
        );
        // Two goals over 25 strata: 50 tests at 0.1 % each.
        let more: Vec<(String, Observed)> = (0..25)
            .map(|i| stratum(&format!("model {i}"), 1000, 5))
            .collect();
        let v = judge(&[goal.clone(), goal], &more, 100, &GatePolicy::sequential());
        let s = &v[0].evaluations[1].sentence;
        assert!(
            s.contains("(99.9 % anytime interval")
                && s.contains("; 95 % split over 50 tests: 2 goals × 25 strata)"),
            "{s}"
        );
        // One stratum judged alone keeps the plan's level, with no note.
        let v = judge(&[error_goal()], &ten[..1], 100, &GatePolicy::sequential());
        let s = &v[0].evaluations[0].sentence;
        assert!(
            s.contains("(95 % anytime interval") && !s.contains("split"),
            "{s}"
        );
    }

    #[test]
    fn more_strata_make_each_verdict_more_careful() {
        // 3 % errors on 1,000 devices: a miss when judged alone, too close to
        // call when it is one of 50 strata (α / 50).
        let one = vec![stratum("model A", 1000, 30)];
        let g = error_goal();
        let alone = judge(
            std::slice::from_ref(&g),
            &one,
            100,
            &GatePolicy::sequential(),
        );
        let mut many = one.clone();
        many.extend((1..50).map(|i| stratum(&format!("model {i}"), 1000, 5)));
        let among = judge(&[g], &many, 100, &GatePolicy::sequential());
        let (a, b) = (
            alone[0].evaluations[0].interval.unwrap(),
            among[0].evaluations[0].interval.unwrap(),
        );
        assert!(b.0 < a.0 && b.1 > a.1, "{a:?} {b:?}");
    }
}
