//! Per-stratum verdicts: a wave judged model by model (or OS build,
//! platform…), so one broken laptop model is held instead of stopping
//! everyone. α is split (Bonferroni) over the goals and the strata judged,
//! so looking at many strata does not raise the chance of a wrong hold.

use crate::gates::{self, Evaluation, GatePolicy, Observed, Outcome};
use crate::goals::Goal;

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
    let tests = (goals.len() * judged.len()).max(1) as f64;
    let split = GatePolicy {
        alpha: policy.alpha / tests,
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
            e.sentence.starts_with("error rate 15 % (98 % anytime interval")
                && e.sentence.contains("on 60 of 400 devices over 1 d in model C, look 12 misses the bar of ≤ 2 %: fail"),
            "{}",
            e.sentence
        );
        assert_eq!(v[0].evaluations[0].outcome, Outcome::Pass);
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
