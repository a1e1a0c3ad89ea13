//! A phase's goals: each checked to be SMART (`goals::validate`) and, when
//! judged by an interval (a confidence sequence by default, or Wilson
//! bounds), reachable on the phase's smallest wave.

use super::parse::perr;
use super::{Check, CheckSeverity};
use crate::PlanError;
use crate::spec::{GoalSpec, JudgingSpec, PhaseKind, PhaseSpec};
use ringmaster_core::gates;
use ringmaster_core::goals::{self, Comparator, Goal, GoalDraft, GoalField, Metric};
use ringmaster_core::pilot::Dimension;
use ringmaster_core::sequential::{self, COUNT_PRIOR, RATE_PRIOR};
use ringmaster_core::strata::Stratify;

/// The phase's smallest wave: its name and devices.
#[derive(Debug, Clone, Copy)]
pub(super) struct Smallest<'a> {
    pub wave: &'a str,
    pub devices: u64,
}

/// The error level of the confidence sequences and the z of Wilson bounds
/// the plan's gates use (`phase_plan`).
pub(super) const ALPHA: f64 = 0.05;
pub(super) const Z: f64 = 1.96;

/// How phase `p` splits its waves for judging (`strata`,
/// `stratum_min_devices`), or None when it does not; an unknown attribute or
/// a zero minimum is an error at its place.
pub(super) fn phase_strata(p: &PhaseSpec, errs: &mut Vec<PlanError>) -> Option<Stratify> {
    let min = p.stratum_min_devices.as_ref();
    if let Some(m) = min
        && *m.get_ref() == 0
    {
        errs.push(perr(
            m.span(),
            "stratum_min_devices must be at least 1 (200 if left out)",
        ));
    }
    let Some(s) = &p.strata else {
        if let Some(m) = min {
            errs.push(perr(
                m.span(),
                "stratum_min_devices needs `strata` (the attribute to judge by) in the same phase",
            ));
        }
        return None;
    };
    let want = s
        .get_ref()
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '-'], "_");
    let key = |d: Dimension| d.name().replace(' ', "_").to_ascii_lowercase();
    let Some(dimension) = Dimension::ALL.into_iter().find(|&d| key(d) == want) else {
        errs.push(perr(
            s.span(),
            format!(
                "unknown strata attribute `{}`; expected one of {}",
                s.get_ref(),
                Dimension::ALL.map(key).join(", ")
            ),
        ));
        return None;
    };
    Some(Stratify {
        dimension,
        min_devices: min.map_or(ringmaster_core::strata::MIN_DEVICES, |m| {
            (*m.get_ref()).max(1)
        }),
    })
}

/// The goals of phase `p`, whose smallest wave is `smallest` (None without
/// waves). A goal that is not SMART, or that even a perfect result could not
/// meet on that wave, is an error at its place (a warning for an advisory
/// goal, which never decides); a pilot or enterprise rollout without goals
/// gets a warning.
pub(super) fn phase_goals(
    p: &PhaseSpec,
    check_in: f64,
    smallest: Option<Smallest<'_>>,
    checks: &mut Vec<Check>,
    errs: &mut Vec<PlanError>,
) -> Vec<Goal> {
    let kind = *p.kind.get_ref();
    if let Some(j) = &p.judging
        && p.wilson
        && *j.get_ref() != JudgingSpec::Wilson
    {
        errs.push(perr(
            j.span(),
            format!(
                "{}: `wilson = true` and `judging = \"{}\"` disagree; keep one",
                kind.label(),
                j.get_ref().name()
            ),
        ));
    }
    let mut out = Vec::new();
    for g in &p.goals {
        match goals::validate(&draft_of(g), check_in, smallest.map(|s| s.devices)) {
            Ok(goal) => {
                if let Some(s) = smallest.filter(|s| s.devices > 0) {
                    check_attainable(p, g, &goal, s, checks, errs);
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

fn draft_of(g: &GoalSpec) -> GoalDraft<'_> {
    GoalDraft {
        metric: g.metric.as_ref().map(|s| s.get_ref().as_str()),
        threshold: g.threshold.as_ref().map(|s| s.get_ref().as_str()),
        window: g.window.as_ref().map(|s| s.get_ref().as_str()),
        min_sample: g.min_sample.as_ref().map(|s| *s.get_ref()),
        deadline: g.deadline.as_ref().map(|s| s.get_ref().as_str()),
        after: g.after.as_ref().map(|s| s.get_ref().as_str()),
        critical: g.critical,
    }
}

/// How long a phase's waves must bake for their goals to be judged as
/// written: the longest [`Goal::hours_needed`] among the critical goals (an
/// advisory goal never decides, so it never holds a wave). None without a
/// critical goal. Goals that are not SMART are left out here; `phase_goals`
/// reports them.
pub(super) fn bake_need(p: &PhaseSpec, check_in: f64) -> Option<Goal> {
    p.goals
        .iter()
        .filter(|g| g.critical)
        .filter_map(|g| goals::validate(&draft_of(g), check_in, None).ok())
        .reduce(|a, b| {
            if b.hours_needed() > a.hours_needed() {
                b
            } else {
                a
            }
        })
}

/// The bound the gate would judge if `n` devices all gave the best result
/// (every device succeeded, none failed, no ticket over the whole window),
/// or None when the phase's judging has no interval for this goal (point
/// estimates; a ticket bar relative to the control, which depends on the
/// control's own rate).
pub(super) fn best_bound(goal: &Goal, judging: JudgingSpec, n: u64) -> Option<f64> {
    let higher = goal.metric.higher_is_better();
    if goal.metric.is_rate() {
        let (k, low_end) = if higher { (n, true) } else { (0, false) };
        let interval = match judging {
            JudgingSpec::Point => return None,
            JudgingSpec::Wilson => gates::wilson(k, n, Z),
            JudgingSpec::Sequential => sequential::rate_cs(k, n, ALPHA, RATE_PRIOR),
        };
        return Some(if low_end { interval.0 } else { interval.1 });
    }
    if goal.metric == Metric::TicketsPer1000DeviceDays
        && !goal.against_control
        && judging == JudgingSpec::Sequential
    {
        // Exposure in 1,000 device-days: every device watched the whole window.
        let exposure = n as f64 * goal.window_hours / 24.0 / 1000.0;
        return Some(sequential::count_cs(0, exposure, ALPHA, COUNT_PRIOR).1);
    }
    None
}

fn clears(goal: &Goal, bound: f64) -> bool {
    match goal.comparator {
        Comparator::AtLeast => bound >= goal.threshold,
        Comparator::AtMost => bound <= goal.threshold,
    }
}

/// Above this a wave is not a wave: the bar is called unprovable instead.
const LARGEST_WAVE: u64 = 100_000_000;

/// The smallest wave on which a perfect result clears the bar, if any up to
/// [`LARGEST_WAVE`]. The best bound tightens as the wave grows, so a
/// doubling search then bisection finds it.
pub(super) fn smallest_that_works(goal: &Goal, judging: JudgingSpec, from: u64) -> Option<u64> {
    let ok = |n: u64| best_bound(goal, judging, n).is_some_and(|b| clears(goal, b));
    let mut hi = from.max(1);
    while !ok(hi) {
        if hi >= LARGEST_WAVE {
            return None;
        }
        hi = (hi * 2).min(LARGEST_WAVE);
    }
    let mut lo = hi / 2; // not ok (or 0)
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if ok(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// A bar judged by an interval can be out of reach for a small wave even
/// when every device succeeds: the wave could then never pass. Says which
/// wave, its size, the bar, and the smallest wave or loosest bar that works.
fn check_attainable(
    p: &PhaseSpec,
    g: &GoalSpec,
    goal: &Goal,
    s: Smallest<'_>,
    checks: &mut Vec<Check>,
    errs: &mut Vec<PlanError>,
) {
    let judging = p.judging();
    let n = s.devices;
    let Some(best) = best_bound(goal, judging, n) else {
        return;
    };
    if clears(goal, best) {
        return;
    }
    // The loosest bar, rounded the safe way to what value_text shows.
    let step = if goal.metric.is_rate() { 0.001 } else { 0.01 };
    let loosest = match goal.comparator {
        Comparator::AtLeast => (best / step).floor() * step,
        Comparator::AtMost => (best / step).ceil() * step,
    };
    let op = match goal.comparator {
        Comparator::AtLeast => "≥",
        Comparator::AtMost => "≤",
    };
    let bound = match judging {
        JudgingSpec::Sequential => "an anytime 95 % bound",
        _ => "a 95 % bound",
    };
    let perfect = if goal.metric.is_rate() {
        "even a perfect result"
    } else {
        "even no ticket at all"
    };
    let size = match smallest_that_works(goal, judging, n) {
        Some(m) => format!("make that wave at least {m} devices or "),
        None => String::new(),
    };
    let message = format!(
        "{} goal: {} {op} {} cannot be met on wave \"{}\" ({n} devices): with judging = \"{}\" {perfect} there has {bound} of {}; {size}set the bar to {op} {} or looser",
        p.kind.get_ref().label(),
        goal.metric.label(),
        goal.value_text(goal.threshold),
        s.wave,
        judging.name(),
        goal.value_text(best),
        goal.value_text(loosest),
    );
    if goal.critical {
        let span = g
            .threshold
            .as_ref()
            .map(|s| s.span())
            .unwrap_or_else(|| p.kind.span());
        errs.push(perr(span, message));
    } else {
        checks.push(Check::new(
            CheckSeverity::Warning,
            *p.kind.get_ref(),
            format!("{message} (advisory: it never decides)"),
        ));
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

    fn wave(devices: u64) -> Smallest<'static> {
        Smallest {
            wave: "Wave 2",
            devices,
        }
    }

    fn phase_judged(kind: &str, judging: &str, goals: &str) -> PhaseSpec {
        let spec = plan_file(&format!(
            "[[phases]]\nkind = \"{kind}\"\njudging = \"{judging}\"\n{goals}"
        ));
        spec.phases.into_iter().next().unwrap()
    }

    fn goal(metric: &str, threshold: &str) -> Goal {
        let draft = GoalDraft {
            metric: Some(metric),
            threshold: Some(threshold),
            window: Some("24h"),
            min_sample: Some(1),
            deadline: Some("7d"),
            after: None,
            critical: true,
        };
        goals::validate(&draft, 8.0, None).unwrap()
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
    fn strata_name_a_known_attribute_and_default_their_size() {
        let phase = |extra: &str| {
            let spec = plan_file(&format!("[[phases]]\nkind = \"enterprise\"\n{extra}"));
            spec.phases.into_iter().next().unwrap()
        };
        let mut errs = Vec::new();
        assert_eq!(phase_strata(&phase(""), &mut errs), None);
        let s = phase_strata(&phase("strata = \"model\""), &mut errs).unwrap();
        assert_eq!((s.dimension, s.min_devices), (Dimension::Model, 200));
        let s = phase_strata(
            &phase("strata = \"OS family\"\nstratum_min_devices = 50"),
            &mut errs,
        )
        .unwrap();
        assert_eq!((s.dimension, s.min_devices), (Dimension::OsFamily, 50));
        let s = phase_strata(&phase("strata = \"os_version\""), &mut errs).unwrap();
        assert_eq!(s.dimension, Dimension::OsVersion);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(phase_strata(&phase("strata = \"colour\""), &mut errs), None);
        assert_eq!(
            errs[0].message,
            "unknown strata attribute `colour`; expected one of platform, os_family, department, location, ownership, model, os_version"
        );
        errs.clear();
        phase_strata(&phase("stratum_min_devices = 10"), &mut errs);
        assert!(errs[0].message.contains("needs `strata`"), "{errs:?}");
    }

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
        let goals = phase_goals(&p, 8.0, Some(wave(1000)), &mut checks, &mut errs);
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
        let goals = phase_goals(&p, 8.0, Some(wave(1000)), &mut checks, &mut errs);
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
        let goals = phase_goals(&p, 8.0, Some(wave(20)), &mut checks, &mut errs);
        assert_eq!(goals.len(), 1, "the goal is kept with its error");
        let m = messages(&errs);
        assert_eq!(
            m[0],
            "Enterprise rollout goal: apply success rate ≥ 99 % cannot be met on wave \"Wave 2\" (20 devices): with judging = \"wilson\" even a perfect result there has a 95 % bound of 83.9 %; make that wave at least 381 devices or set the bar to ≥ 83.8 % or looser"
        );
        assert_eq!(
            &p.goals[0].threshold.as_ref().unwrap().span(),
            &errs[0].span
        );
        // Judged on the plain rate, any bar a perfect result meets is fine.
        let p = phase_judged("enterprise", "point", SUCCESS_99);
        let mut errs = Vec::new();
        phase_goals(&p, 8.0, Some(wave(20)), &mut checks, &mut errs);
        assert!(errs.is_empty());
    }

    #[test]
    fn sequential_judging_is_the_default_and_names_the_smallest_wave_and_bar_that_work() {
        let p = phase("enterprise", false, SUCCESS_99);
        assert_eq!(p.judging(), JudgingSpec::Sequential);
        // 984 devices: 0.99^984 < 1 / (20 · 985), so 99 % falls outside the
        // sequence of a perfect result (Beta(1, 1) mixture, α = 0.05); at 983 not yet.
        let (mut checks, mut errs) = (Vec::new(), Vec::new());
        phase_goals(&p, 8.0, Some(wave(400)), &mut checks, &mut errs);
        let m = messages(&errs);
        assert_eq!(
            m[0],
            "Enterprise rollout goal: apply success rate ≥ 99 % cannot be met on wave \"Wave 2\" (400 devices): with judging = \"sequential\" even a perfect result there has an anytime 95 % bound of 97.8 %; make that wave at least 984 devices or set the bar to ≥ 97.7 % or looser"
        );
    }

    #[test]
    fn the_smallest_wave_that_works_is_the_first_size_whose_perfect_bound_clears() {
        // (metric and bar, judging, smallest size): each size found is checked
        // against the size one below it.
        for (bar, judging) in [
            (">= 97%", JudgingSpec::Sequential),
            (">= 97%", JudgingSpec::Wilson),
            (">= 90%", JudgingSpec::Sequential),
        ] {
            let goal = goal("apply_success_rate", bar);
            let m = smallest_that_works(&goal, judging, 1).unwrap();
            assert!(
                clears(&goal, best_bound(&goal, judging, m).unwrap()),
                "{bar}"
            );
            assert!(
                !clears(&goal, best_bound(&goal, judging, m - 1).unwrap()),
                "{bar}"
            );
        }
        let error = goal("error_rate", "<= 1%");
        let m = smallest_that_works(&error, JudgingSpec::Sequential, 1).unwrap();
        assert!(
            m > 500
                && clears(
                    &error,
                    best_bound(&error, JudgingSpec::Sequential, m).unwrap()
                )
        );
        // No wave proves a perfect 100 %.
        let all = goal("apply_success_rate", ">= 100%");
        assert_eq!(smallest_that_works(&all, JudgingSpec::Sequential, 50), None);
        // Tickets: no ticket at all over the window bounds the rate.
        let tickets = goal("tickets_per_1000_device_days", "<= 2");
        let m = smallest_that_works(&tickets, JudgingSpec::Sequential, 1).unwrap();
        assert!(!clears(
            &tickets,
            best_bound(&tickets, JudgingSpec::Sequential, m - 1).unwrap()
        ));
        // Point estimates have no interval to check.
        assert_eq!(best_bound(&tickets, JudgingSpec::Point, 10), None);
    }

    #[test]
    fn an_advisory_goal_out_of_reach_is_a_warning_and_conflicting_switches_an_error() {
        let p = phase_judged(
            "pilot",
            "sequential",
            "  [[phases.goals]]\n  metric = \"apply_success_rate\"\n  threshold = \">= 99%\"\n  window = \"24h\"\n  min_sample = 20\n  deadline = \"7d\"\n  critical = false\n",
        );
        let (mut checks, mut errs) = (Vec::new(), Vec::new());
        phase_goals(&p, 8.0, Some(wave(50)), &mut checks, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        assert!(
            checks[0].message.ends_with("(advisory: it never decides)"),
            "{checks:?}"
        );
        let spec = plan_file("[[phases]]\nkind = \"pilot\"\nwilson = true\njudging = \"point\"\n");
        let p = spec.phases.into_iter().next().unwrap();
        let mut errs = Vec::new();
        phase_goals(&p, 8.0, Some(wave(50)), &mut checks, &mut errs);
        assert_eq!(
            messages(&errs)[0],
            "Pilot: `wilson = true` and `judging = \"point\"` disagree; keep one"
        );
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
