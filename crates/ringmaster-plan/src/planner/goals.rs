//! A phase's goals: each checked to be SMART (`goals::validate`) and, when
//! judged by Wilson bounds, reachable on the phase's smallest wave.

use super::parse::perr;
use super::{Check, CheckSeverity};
use crate::PlanError;
use crate::spec::{GoalSpec, PhaseKind, PhaseSpec};
use ringmaster_core::gates;
use ringmaster_core::goals::{self, Goal, GoalDraft, GoalField};

/// The goals of phase `p`, whose smallest wave holds `smallest` devices
/// (None without waves). A goal that is not SMART, or that even a perfect
/// result could not meet, is an error at its place; a pilot or enterprise
/// rollout without goals gets a warning.
pub(super) fn phase_goals(
    p: &PhaseSpec,
    check_in: f64,
    smallest: Option<u64>,
    checks: &mut Vec<Check>,
    errs: &mut Vec<PlanError>,
) -> Vec<Goal> {
    let kind = *p.kind.get_ref();
    let mut out = Vec::new();
    for g in &p.goals {
        let draft = GoalDraft {
            metric: g.metric.as_ref().map(|s| s.get_ref().as_str()),
            threshold: g.threshold.as_ref().map(|s| s.get_ref().as_str()),
            window: g.window.as_ref().map(|s| s.get_ref().as_str()),
            min_sample: g.min_sample.as_ref().map(|s| *s.get_ref()),
            deadline: g.deadline.as_ref().map(|s| s.get_ref().as_str()),
            after: g.after.as_ref().map(|s| s.get_ref().as_str()),
            critical: g.critical,
        };
        match goals::validate(&draft, check_in, smallest) {
            Ok(goal) => {
                if p.wilson {
                    check_attainable(p, g, &goal, smallest, errs);
                }
                out.push(goal)
            }
            Err(e) => {
                let span = match e.field {
                    GoalField::Metric => g.metric.as_ref().map(|s| s.span()),
                    GoalField::Threshold => g.threshold.as_ref().map(|s| s.span()),
                    GoalField::Window => g.window.as_ref().map(|s| s.span()),
                    GoalField::MinSample => g.min_sample.as_ref().map(|s| s.span()),
                    GoalField::Deadline => g.deadline.as_ref().map(|s| s.span()),
                    GoalField::After => g.after.as_ref().map(|s| s.span()),
                    GoalField::Goal => None,
                }
                .or_else(|| g.metric.as_ref().map(|s| s.span()))
                .unwrap_or_else(|| p.kind.span());
                errs.push(perr(span, format!("{} goal: {e}", kind.label())));
            }
        }
    }
    if out.is_empty() && matches!(kind, PhaseKind::Pilot | PhaseKind::Enterprise) {
        checks.push(Check::new(
            CheckSeverity::Warning,
            kind,
            format!(
                "{} has no goals: its waves would pass on bake time alone",
                kind.label()
            ),
        ));
    }
    out
}

/// Judged by Wilson bounds, a rate bar can be out of reach for a small wave
/// even when every device succeeds.
fn check_attainable(
    p: &PhaseSpec,
    g: &GoalSpec,
    goal: &Goal,
    smallest: Option<u64>,
    errs: &mut Vec<PlanError>,
) {
    let Some(n) = smallest.filter(|n| *n > 0) else {
        return;
    };
    if !goal.metric.is_rate() {
        return;
    }
    let higher = goal.metric.higher_is_better();
    let best = if higher {
        gates::wilson(n, n, 1.96).0
    } else {
        gates::wilson(0, n, 1.96).1
    };
    let out_of_reach = if higher {
        best < goal.threshold
    } else {
        best > goal.threshold
    };
    if out_of_reach {
        let span = g
            .threshold
            .as_ref()
            .map(|s| s.span())
            .unwrap_or_else(|| p.kind.span());
        errs.push(perr(span, format!(
            "{} goal: goal is not attainable: on the smallest wave ({n} devices) even a perfect result has a 95 % bound of {}, beyond the bar; make the wave bigger, lower the bar, or set wilson = false",
            p.kind.get_ref().label(),
            goal.value_text(best)
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::fixture::{messages, plan_file};

    fn phase(kind: &str, wilson: bool, goals: &str) -> PhaseSpec {
        let spec = plan_file(&format!(
            "[[phases]]\nkind = \"{kind}\"\nwilson = {wilson}\n{goals}"
        ));
        spec.phases.into_iter().next().unwrap()
    }

    const SUCCESS_99: &str = r#"
  [[phases.goals]]
  metric = "apply_success_rate"
  threshold = ">= 99%"
  window = "24h"
  min_sample = 20
  deadline = "7d"
"#;

    #[test]
    fn smart_goals_are_kept_in_order() {
        let p = phase(
            "enterprise",
            true,
            &format!(
                "{SUCCESS_99}  [[phases.goals]]\n  metric = \"error_rate\"\n  threshold = \"<= 1%\"\n  window = \"24h\"\n  min_sample = 20\n  deadline = \"7d\"\n"
            ),
        );
        let (mut checks, mut errs) = (Vec::new(), Vec::new());
        let goals = phase_goals(&p, 8.0, Some(1000), &mut checks, &mut errs);
        assert!(errs.is_empty() && checks.is_empty(), "{errs:?} {checks:?}");
        let sentences: Vec<String> = goals.iter().map(Goal::sentence).collect();
        assert!(
            sentences[0].starts_with("apply success rate ≥ 99 %"),
            "{sentences:?}"
        );
        assert!(
            sentences[1].starts_with("error rate ≤ 1 %"),
            "{sentences:?}"
        );
    }

    #[test]
    fn a_goal_that_is_not_smart_is_an_error_at_its_field() {
        let p = phase(
            "pilot",
            true,
            "  [[phases.goals]]\n  metric = \"apply_success_rate\"\n  threshold = \">= 99%\"\n  window = \"1h\"\n  min_sample = 20\n  deadline = \"7d\"\n",
        );
        let (mut checks, mut errs) = (Vec::new(), Vec::new());
        let goals = phase_goals(&p, 8.0, Some(1000), &mut checks, &mut errs);
        assert!(goals.is_empty());
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.starts_with("Pilot goal: "), "{errs:?}");
        assert_eq!(&p.goals[0].window.as_ref().unwrap().span(), &errs[0].span);
        // With its only goal refused, the pilot has none.
        assert_eq!(
            checks[0].message,
            "Pilot has no goals: its waves would pass on bake time alone"
        );
    }

    #[test]
    fn a_rate_bar_beyond_a_small_waves_reach_is_an_error_under_wilson() {
        let p = phase("enterprise", true, SUCCESS_99);
        let (mut checks, mut errs) = (Vec::new(), Vec::new());
        // 20 successes out of 20 give a lower 95 % bound of 83.9 %.
        let goals = phase_goals(&p, 8.0, Some(20), &mut checks, &mut errs);
        assert_eq!(goals.len(), 1, "the goal is kept with its error");
        let m = messages(&errs);
        assert!(m[0].starts_with("Enterprise rollout goal: goal is not attainable: on the smallest wave (20 devices) even a perfect result has a 95 % bound of 83.9 %, beyond the bar"), "{m:?}");
        assert_eq!(
            &p.goals[0].threshold.as_ref().unwrap().span(),
            &errs[0].span
        );
        // Without Wilson bounds the bar is judged on the plain rate.
        let p = phase("enterprise", false, SUCCESS_99);
        let mut errs = Vec::new();
        phase_goals(&p, 8.0, Some(20), &mut checks, &mut errs);
        assert!(errs.is_empty());
    }

    #[test]
    fn only_the_pilot_and_enterprise_rollout_need_goals() {
        for (kind, warned) in [
            ("proof_of_concept", false),
            ("pilot", true),
            ("enterprise", true),
            ("run_state", false),
        ] {
            let mut checks = Vec::new();
            phase_goals(
                &phase(kind, true, ""),
                8.0,
                None,
                &mut checks,
                &mut Vec::new(),
            );
            assert_eq!(checks.len(), warned as usize, "{kind}");
        }
    }
}
