//! The run state: after the last wave, the policies keep being judged over
//! the whole in-scope population (service levels, with the gates' sample,
//! window and sentence rules) and drift is looked for:
//! - devices that were Succeeded and now report Error or Conflict;
//! - devices that entered the scope and have not reported within the
//!   service level's time;
//! - groups of devices (an OS build, a model, a platform) whose error rate
//!   stands out from the rest.
//!
//! One pass over dense per-device columns: a million devices take
//! milliseconds. Pure: times come in as Unix seconds.

use crate::gates::{self, Evaluation, GatePolicy, Observed};
use crate::goals::{Goal, Metric};
use crate::status::DeviceState;
use roaring::RoaringBitmap;
use serde::Serialize;

/// A device's latest state for the rolled-out policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum State {
    Unreported = 0,
    Succeeded,
    Error,
    Conflict,
    Pending,
    NotApplicable,
}

impl From<DeviceState> for State {
    fn from(s: DeviceState) -> State {
        match s {
            DeviceState::Succeeded => State::Succeeded,
            DeviceState::Error => State::Error,
            DeviceState::Conflict => State::Conflict,
            DeviceState::Pending => State::Pending,
            DeviceState::NotApplicable => State::NotApplicable,
        }
    }
}

impl State {
    /// How bad a state is: a device reported under several policies or ids
    /// counts by its worst.
    pub fn rank(self) -> u8 {
        match self {
            State::Unreported => 0,
            State::Succeeded => 1,
            State::NotApplicable => 2,
            State::Pending => 3,
            State::Conflict => 4,
            State::Error => 5,
        }
    }
}

/// One way to break the population down (platform, OS build, model): a
/// value id per device row and the values' names.
pub struct Dimension<'a> {
    pub name: &'a str,
    pub value_of: crate::column::ColumnView<'a>,
    pub values: &'a [String],
}

/// What is known of the in-scope devices at `now`. Columns are indexed by
/// device row.
pub struct Snapshot<'a> {
    pub now: i64,
    pub in_scope: &'a RoaringBitmap,
    /// When each device entered the scope (enrollment, group change).
    pub entered: &'a [i64],
    pub state: &'a [State],
    pub reported_at: &'a [i64],
    /// Devices that were Succeeded at some time before their latest report.
    pub was_succeeded: &'a RoaringBitmap,
    pub dimensions: &'a [Dimension<'a>],
}

/// A breakdown value whose error rate stands out from the rest of the population.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outlier {
    pub dimension: String,
    pub value: String,
    pub devices: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub rest_error_rate: f64,
    pub sentence: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunState {
    pub devices: u64,
    pub succeeded: u64,
    pub errors: u64,
    pub conflicts: u64,
    pub pending: u64,
    pub unreported: u64,
    pub service_levels: Vec<Evaluation>,
    /// Were Succeeded, now Error or Conflict.
    pub regressed: Vec<u32>,
    /// Entered the scope longer ago than the service level allows and have
    /// not reported a final state.
    pub overdue: Vec<u32>,
    pub outliers: Vec<Outlier>,
}

impl RunState {
    /// A service level fails, or something drifted.
    pub fn drifted(&self) -> bool {
        self.service_levels
            .iter()
            .any(|e| e.outcome == gates::Outcome::Fail)
            || !self.regressed.is_empty()
            || !self.outliers.is_empty()
    }
}

/// The time a service level gives a device after entering the scope: the
/// goal's window (e.g. 5 days for "Succeeded within 5 days").
fn grace(levels: &[Goal]) -> i64 {
    levels
        .iter()
        .filter(|g| {
            matches!(
                g.metric,
                Metric::ApplySuccessRate | Metric::PendingAfter { .. }
            )
        })
        .map(|g| match g.metric {
            Metric::PendingAfter { hours } => hours,
            _ => g.window_hours,
        })
        .fold(0.0, f64::max)
        .max(1.0) as i64
        * 3600
}

/// Smallest sample a breakdown value needs before its rate is compared.
const OUTLIER_MIN: u64 = 30;
/// Fewest errors that make a value an outlier: two failing devices of a
/// small model are noise, not drift.
const OUTLIER_MIN_ERRORS: u64 = 5;

/// Whether `bad` of `n` stands out from `rest_bad` of `rest_n`: even the
/// value's lower bound is above the rest's upper bound (Wilson, 95 %), and
/// its rate is at least twice the rest's.
fn stands_out(n: u64, bad: u64, rest_n: u64, rest_bad: u64) -> bool {
    if n < OUTLIER_MIN || rest_n < OUTLIER_MIN || bad < OUTLIER_MIN_ERRORS {
        return false;
    }
    let (low, _) = gates::wilson(bad, n, 1.96);
    let (_, high) = gates::wilson(rest_bad, rest_n, 1.96);
    low > high && bad as f64 / n as f64 >= 2.0 * rest_bad as f64 / rest_n as f64
}

pub fn evaluate(s: &Snapshot<'_>, levels: &[Goal], policy: &GatePolicy) -> RunState {
    let grace = grace(levels);
    let mut c = [0u64; 6];
    // Judged: in scope for longer than the grace time (newcomers get it).
    let mut judged = [0u64; 6];
    let mut regressed = Vec::new();
    let mut overdue = Vec::new();
    let mut per_value: Vec<Vec<(u64, u64)>> = s
        .dimensions
        .iter()
        .map(|d| vec![(0, 0); d.values.len()])
        .collect();
    for d in s.in_scope {
        let i = d as usize;
        let st = s.state.get(i).copied().unwrap_or(State::Unreported);
        c[st as usize] += 1;
        let settled = s.entered.get(i).is_some_and(|&e| s.now - e >= grace);
        if settled {
            judged[st as usize] += 1;
            if matches!(st, State::Unreported | State::Pending) {
                overdue.push(d);
            }
        }
        if matches!(st, State::Error | State::Conflict) && s.was_succeeded.contains(d) {
            regressed.push(d);
        }
        if matches!(st, State::Succeeded | State::Error | State::Conflict) {
            let bad = u64::from(st == State::Error);
            for (k, dim) in s.dimensions.iter().enumerate() {
                if let Some(v) = dim.value_of.get(i)
                    && let Some(slot) = per_value[k].get_mut(v as usize)
                {
                    slot.0 += 1;
                    slot.1 += bad;
                }
            }
        }
    }
    let n = |st: State| judged[st as usize];
    let reported = n(State::Succeeded)
        + n(State::Error)
        + n(State::Conflict)
        + n(State::NotApplicable)
        + n(State::Pending);
    let observed = Observed {
        devices: judged.iter().sum(),
        reported,
        succeeded: n(State::Succeeded),
        errors: n(State::Error),
        conflicts: n(State::Conflict),
        not_applicable: n(State::NotApplicable),
        pending: n(State::Pending) + n(State::Unreported),
        enrolled: n(State::Succeeded),
        hours_since_start: grace as f64 / 3600.0,
        ..Observed::default()
    };
    let service_levels = levels
        .iter()
        .map(|g| gates::evaluate(g, &observed, policy, None))
        .collect();
    // Candidates: (dimension, value, n, bad, rest n, rest bad).
    let mut candidates = Vec::new();
    for (k, _) in s.dimensions.iter().enumerate() {
        let (all_n, all_bad) = per_value[k]
            .iter()
            .fold((0, 0), |(a, b), (n, e)| (a + n, b + e));
        for (v, &(n, bad)) in per_value[k].iter().enumerate() {
            if stands_out(n, bad, all_n - n, all_bad - bad) {
                candidates.push((k, v as u32, bad as f64 / n as f64));
            }
        }
    }
    // A failing OS build also raises its platform's rate: a value stays an
    // outlier only if it still stands out without the devices of the
    // worse outliers of other dimensions.
    candidates.sort_by(|a, b| b.2.total_cmp(&a.2));
    let mut outliers: Vec<Outlier> = Vec::new();
    let mut kept: Vec<(usize, u32)> = Vec::new();
    for &(k, v, _) in &candidates {
        let explained = |i: usize| {
            kept.iter()
                .any(|&(kk, vv)| kk != k && s.dimensions[kk].value_of.get(i) == Some(vv))
        };
        let (mut n, mut bad, mut rest_n, mut rest_bad) = (0u64, 0u64, 0u64, 0u64);
        for d in s.in_scope {
            let i = d as usize;
            let st = s.state.get(i).copied().unwrap_or(State::Unreported);
            if !matches!(st, State::Succeeded | State::Error | State::Conflict) || explained(i) {
                continue;
            }
            let e = u64::from(st == State::Error);
            if s.dimensions[k].value_of.get(i) == Some(v) {
                n += 1;
                bad += e;
            } else {
                rest_n += 1;
                rest_bad += e;
            }
        }
        if !stands_out(n, bad, rest_n, rest_bad) {
            continue;
        }
        kept.push((k, v));
        let dim = &s.dimensions[k];
        let value = dim.values[v as usize].clone();
        let (rate, rest) = (bad as f64 / n as f64, rest_bad as f64 / rest_n as f64);
        outliers.push(Outlier {
            sentence: format!(
                "{} {value}: error rate {:.1} % on {bad} of {n} devices against {:.1} % on the rest ({rest_bad} of {rest_n})",
                dim.name,
                rate * 100.0,
                rest * 100.0
            ),
            dimension: dim.name.to_string(),
            value,
            devices: n,
            errors: bad,
            error_rate: rate,
            rest_error_rate: rest,
        });
    }
    outliers.sort_by(|a, b| b.error_rate.total_cmp(&a.error_rate));
    RunState {
        devices: s.in_scope.len(),
        succeeded: c[State::Succeeded as usize],
        errors: c[State::Error as usize],
        conflicts: c[State::Conflict as usize],
        pending: c[State::Pending as usize],
        unreported: c[State::Unreported as usize],
        service_levels,
        regressed,
        overdue,
        outliers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goals::{GoalDraft, validate};

    fn level(metric: &'static str, threshold: &'static str, window: &'static str) -> Goal {
        validate(
            &GoalDraft {
                metric: Some(metric),
                threshold: Some(threshold),
                window: Some(window),
                min_sample: Some(50),
                deadline: Some("30d"),
                after: None,
                critical: true,
            },
            8.0,
            None,
        )
        .unwrap()
    }

    struct Fleet {
        entered: Vec<i64>,
        state: Vec<State>,
        at: Vec<i64>,
        was: RoaringBitmap,
        build: Vec<u32>,
    }

    /// 1,000 devices in scope for 10 days: 2 % errors spread evenly, except
    /// on build 1 (100 devices) where half fail; 20 devices entered an hour
    /// ago and have not reported; 5 regressed.
    fn fleet(now: i64) -> Fleet {
        let n = 1000;
        let mut f = Fleet {
            entered: vec![now - 10 * 86_400; n],
            state: vec![State::Succeeded; n],
            at: vec![now - 3600; n],
            was: RoaringBitmap::new(),
            build: (0..n as u32).map(|d| u32::from(d % 10 == 0)).collect(),
        };
        for d in 0..n {
            if d % 50 == 1 || (f.build[d] == 1 && d % 20 == 0) {
                f.state[d] = State::Error;
            }
        }
        for d in 980..1000 {
            f.entered[d] = now - 3600;
            f.state[d] = State::Unreported;
        }
        for d in [3usize, 7, 13, 17, 23] {
            f.state[d] = State::Conflict;
            f.was.insert(d as u32);
        }
        f
    }

    #[test]
    fn service_levels_drift_and_outliers() {
        let now = 1_800_000_000;
        let f = fleet(now);
        let scope: RoaringBitmap = (0..1000).collect();
        let names = vec!["10.0.26100".to_string(), "10.0.26200".to_string()];
        // Every device of the failing build is a Windows one: the platform's
        // rate rises with it, but the build explains it.
        let platform: Vec<u32> = (0..1000u32)
            .map(|d| u32::from(!(f.build[d as usize] == 1 || d % 3 == 0)))
            .collect();
        let platforms = vec!["windows".to_string(), "macOS".to_string()];
        let dims = [
            Dimension {
                name: "platform",
                value_of: platform[..].into(),
                values: &platforms,
            },
            Dimension {
                name: "OS build",
                value_of: f.build[..].into(),
                values: &names,
            },
        ];
        let s = Snapshot {
            now,
            in_scope: &scope,
            entered: &f.entered,
            state: &f.state,
            reported_at: &f.at,
            was_succeeded: &f.was,
            dimensions: &dims,
        };
        let levels = [
            level("apply_success_rate", ">= 95%", "5d"),
            level("error_rate", "<= 1%", "5d"),
        ];
        let r = evaluate(&s, &levels, &GatePolicy::default());
        assert_eq!((r.devices, r.conflicts, r.unreported), (1000, 5, 20));
        // Newcomers within their five days are not held against the level.
        assert!(r.overdue.is_empty());
        assert_eq!(r.regressed, vec![3, 7, 13, 17, 23]);
        assert_eq!(
            r.service_levels[1].outcome,
            gates::Outcome::Fail,
            "{}",
            r.service_levels[1].sentence
        );
        assert!(r.service_levels[1].sentence.contains("error rate"));
        assert_eq!(r.outliers.len(), 1, "{:?}", r.outliers);
        assert_eq!(r.outliers[0].value, "10.0.26200");
        assert!(
            r.outliers[0]
                .sentence
                .starts_with("OS build 10.0.26200: error rate"),
            "{}",
            r.outliers[0].sentence
        );
        // Six days on, the newcomers that never reported are overdue.
        let later = Snapshot {
            now: now + 6 * 86_400,
            ..s
        };
        assert_eq!(
            evaluate(&later, &levels, &GatePolicy::default())
                .overdue
                .len(),
            20
        );
    }

    #[test]
    fn an_even_spread_of_errors_is_no_outlier() {
        let now = 1_800_000_000;
        let n = 2000usize;
        let state: Vec<State> = (0..n)
            .map(|d| {
                if d % 25 == 0 {
                    State::Error
                } else {
                    State::Succeeded
                }
            })
            .collect();
        let model: Vec<u32> = (0..n as u32).map(|d| d % 4).collect();
        let names: Vec<String> = (0..4).map(|m| format!("model {m}")).collect();
        let scope: RoaringBitmap = (0..n as u32).collect();
        let dims = [Dimension {
            name: "model",
            value_of: model[..].into(),
            values: &names,
        }];
        let r = evaluate(
            &Snapshot {
                now,
                in_scope: &scope,
                entered: &vec![0; n],
                state: &state,
                reported_at: &vec![now; n],
                was_succeeded: &RoaringBitmap::new(),
                dimensions: &dims,
            },
            &[level("error_rate", "<= 5%", "1d")],
            &GatePolicy::default(),
        );
        assert!(r.outliers.is_empty(), "{:?}", r.outliers);
        assert_eq!(r.service_levels[0].outcome, gates::Outcome::Pass);
    }
}
