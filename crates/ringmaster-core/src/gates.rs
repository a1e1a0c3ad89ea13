//! Gates: a wave's SMART goals judged on what its devices reported. Too
//! little data holds and never passes; rates are judged by anytime-valid
//! confidence sequences ([`crate::sequential`]) so neither luck nor looking
//! every round passes or fails a wave; ticket rates can be judged against a
//! concurrent control; advisory goals never decide.
//! Every evaluation carries metric, value, threshold, sample, window and
//! outcome, and reads as one sentence.

use crate::goals::{Comparator, Deadline, Goal, Metric};
use crate::sequential::{self, COUNT_PRIOR, RATE_PRIOR};
use serde::{Deserialize, Serialize};

/// What the wave's devices and users reported within a goal's window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Observed {
    /// Devices in the wave.
    pub devices: u64,
    /// Devices with a status for the new policies (any state).
    pub reported: u64,
    pub succeeded: u64,
    pub errors: u64,
    pub conflicts: u64,
    pub not_applicable: u64,
    /// Devices without a final state yet.
    pub pending: u64,
    /// Devices enrolled (enrollment rollouts).
    pub enrolled: u64,
    /// Help-desk tickets attributed to the rollout for these devices.
    pub tickets: u64,
    /// Pilot feedback: answers and the sum of their scores (1–5).
    pub feedback_answers: u64,
    pub feedback_sum: f64,
    /// Hours since the wave started applying.
    pub hours_since_start: f64,
    /// Device-days the wave's devices were exposed within the goal's window.
    pub device_days: f64,
    /// The concurrent control for ticket rates, when there is one.
    pub control: Control,
    /// Which look at the wave this is (1 for the first round; 0: not counted).
    pub round: u32,
    /// The stratum judged ("model Latitude 7440"), None for the whole wave.
    pub stratum: Option<String>,
}

/// The devices of the rollout's scope that no wave has reached yet, as a
/// yardstick for what would have happened anyway (a Patch Tuesday).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub enum Control {
    /// None was measured.
    #[default]
    Absent,
    /// Tickets and device-days of the control devices within the window.
    Measured { tickets: u64, device_days: f64 },
    /// A control exists but is not like the wave (a pilot of volunteers).
    NotComparable(String),
}

/// How rates are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Judging {
    /// The point estimate against the bar (no interval).
    Point,
    /// A fixed-level Wilson score interval at `z`: valid for one look only.
    Wilson,
    /// An anytime-valid confidence sequence at level 1 − `alpha`.
    Sequential,
}

/// How strictly gates judge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GatePolicy {
    /// How rates (and ticket rates) are judged.
    pub judging: Judging,
    /// z for the Wilson interval (1.96: 95 %).
    pub z: f64,
    /// Error rate of the confidence sequences, over all looks at one goal.
    pub alpha: f64,
    /// Failed evaluations of one goal in a row that fail the wave.
    pub consecutive_failures: u32,
    /// Failed evaluations of one goal in total that fail the wave.
    pub total_failures: u32,
    /// Set when `alpha` is a Bonferroni share of the plan's α (per-stratum
    /// judgement), so sentences say the level used and where it came from.
    /// Not part of a plan's identity: it is derived for each round.
    #[serde(skip)]
    pub split: Option<Split>,
}

/// The tests one α is split over: each goal judged in each stratum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub goals: u32,
    pub strata: u32,
}

impl Split {
    pub fn tests(self) -> u32 {
        self.goals * self.strata
    }
}

/// A confidence level as a percentage with as many decimals as it takes to
/// be within 5 % of its α: 95 %, 98.3 %, 99.5 %, 99.92 %; never "100 %".
pub fn level_text(level: f64) -> String {
    let p = level * 100.0;
    let alpha = 100.0 - p;
    for d in 0..=4usize {
        let f = 10f64.powi(d as i32);
        let r = (p * f).round() / f;
        if r < 100.0 && (r - p).abs() <= 0.05 * alpha + 1e-9 {
            return format!("{r:.d$} %");
        }
    }
    format!("{p:.6} %")
}

impl GatePolicy {
    /// The level of this policy's anytime intervals, and when α is split,
    /// what it was split from ("95 % split over 10 strata").
    fn level_and_split(&self) -> (String, String) {
        let level = level_text(1.0 - self.alpha);
        let note = match self.split {
            Some(sp) if sp.tests() > 1 => {
                let whole = level_text(1.0 - self.alpha * f64::from(sp.tests()));
                let over = if sp.goals == 1 {
                    format!("{} strata", sp.strata)
                } else {
                    format!(
                        "{} tests: {} goals × {} strata",
                        sp.tests(),
                        sp.goals,
                        sp.strata
                    )
                };
                format!("{whole} split over {over}")
            }
            _ => String::new(),
        };
        (level, note)
    }
}

impl GatePolicy {
    /// Anytime-valid judging at α = 0.05, otherwise as the default.
    pub fn sequential() -> GatePolicy {
        GatePolicy {
            judging: Judging::Sequential,
            ..GatePolicy::default()
        }
    }
}

/// Point estimates, as plans have always been judged: confidence sequences
/// cannot prove a 97 % bar on a 50-device pilot, so turning them on for
/// plans needs bigger pilots or other bars first (see docs/engine.md).
impl Default for GatePolicy {
    fn default() -> Self {
        GatePolicy {
            judging: Judging::Point,
            z: 1.96,
            alpha: 0.05,
            consecutive_failures: 2,
            total_failures: 3,
            split: None,
        }
    }
}

/// The outcome of one evaluation, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    /// Too few reports to judge: hold, never pass.
    NoData,
    /// The bar lies inside the confidence interval: hold and watch.
    Inconclusive,
    Fail,
    /// The metrics source failed: pause, never roll back on it.
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::NoData => "no data",
            Outcome::Inconclusive => "inconclusive",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
        }
    }

    /// The serialised form: `no_data` where [`Outcome::as_str`] says "no data".
    pub fn name(self) -> &'static str {
        match self {
            Outcome::NoData => "no_data",
            o => o.as_str(),
        }
    }
}

/// One goal judged once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub metric: Metric,
    pub critical: bool,
    /// The measured value (a share for rates), None without data.
    pub value: Option<f64>,
    /// The interval judged: a rate's Wilson bounds or confidence sequence,
    /// or a ticket rate's sequence (its difference from the control's).
    pub interval: Option<(f64, f64)>,
    pub threshold: f64,
    pub comparator: Comparator,
    /// Devices (or answers) the value rests on, and the minimum asked.
    pub sample: u64,
    pub min_sample: u64,
    pub window_hours: f64,
    pub outcome: Outcome,
    pub sentence: String,
    /// The control's rate, when a ticket rate was judged against a measured
    /// control (then `interval` bounds the difference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<f64>,
    /// The stratum judged ("model Latitude 7440"), None for the whole wave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stratum: Option<String>,
    /// The level of `interval` when it is anytime-valid (0.95), None for a
    /// fixed-z interval or none at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anytime: Option<f64>,
}

/// Wilson score interval of `k` successes in `n` trials.
pub fn wilson(k: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n_f = n as f64;
    let p = k as f64 / n_f;
    let z2 = z * z;
    let denom = 1.0 + z2 / n_f;
    let centre = p + z2 / (2.0 * n_f);
    let margin = z * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt();
    (
        ((centre - margin) / denom).max(0.0),
        ((centre + margin) / denom).min(1.0),
    )
}

/// `; note` inside a parenthesis, or nothing.
fn semi(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!("; {note}")
    }
}

fn pct(v: f64) -> String {
    let p = v * 100.0;
    if (p - p.round()).abs() < 0.05 {
        format!("{p:.0} %")
    } else {
        format!("{p:.1} %")
    }
}

/// Judges one goal. `source_error` is the failure of the metrics source, if any.
pub fn evaluate(
    goal: &Goal,
    o: &Observed,
    policy: &GatePolicy,
    source_error: Option<&str>,
) -> Evaluation {
    let anytime = |interval: &Option<(f64, f64)>| {
        (policy.judging == Judging::Sequential && interval.is_some()).then_some(1.0 - policy.alpha)
    };
    let base = |value, interval: Option<(f64, f64)>, sample, outcome, sentence| Evaluation {
        metric: goal.metric,
        critical: goal.critical,
        value,
        anytime: anytime(&interval),
        interval,
        threshold: goal.threshold,
        comparator: goal.comparator,
        sample,
        min_sample: goal.min_sample,
        window_hours: goal.window_hours,
        outcome,
        sentence,
        control: None,
        stratum: o.stratum.clone(),
    };
    let label = goal.metric.label();
    let window = window_text(goal.window_hours);
    if let Some(e) = source_error {
        return base(
            None,
            None,
            0,
            Outcome::Error,
            format!(
                "{label} could not be measured ({e}): the wave pauses until the source answers"
            ),
        );
    }
    // (successes-or-events, trials) for rates; (value, sample) otherwise.
    let judged = o.reported.saturating_sub(o.not_applicable);
    let (count, sample): (Option<u64>, u64) = match goal.metric {
        Metric::ApplySuccessRate => (Some(o.succeeded), judged),
        Metric::ErrorRate => (Some(o.errors), judged),
        Metric::ConflictRate => (Some(o.conflicts), judged),
        Metric::NotApplicableRate => (Some(o.not_applicable), o.reported),
        Metric::PendingAfter { hours } => {
            if o.hours_since_start < hours {
                return base(
                    None,
                    None,
                    o.devices,
                    Outcome::NoData,
                    format!(
                        "{label}: only {:.0} h since the wave started, so nothing to judge yet (hold)",
                        o.hours_since_start
                    ),
                );
            }
            (Some(o.pending), o.devices)
        }
        Metric::EnrollmentCompletion => (Some(o.enrolled), o.devices),
        Metric::ConflictCount => (None, o.reported),
        Metric::TicketsPer100Devices | Metric::TicketsPer1000DeviceDays => (None, o.devices),
        Metric::PilotFeedbackScore => (None, o.feedback_answers),
    };
    let what = if goal.metric.counts_answers() {
        "answers"
    } else {
        "devices"
    };
    if sample < goal.min_sample || sample == 0 {
        return base(
            None,
            None,
            sample,
            Outcome::NoData,
            format!(
                "{label}: {sample} {what} reported over {window}, fewer than the {} needed to judge (hold, never pass)",
                goal.min_sample
            ),
        );
    }
    let at_least = goal.comparator == Comparator::AtLeast;
    let meets = |v: f64| {
        if at_least {
            v >= goal.threshold
        } else {
            v <= goal.threshold
        }
    };
    let bar = format!(
        "{} {}",
        if at_least { "≥" } else { "≤" },
        goal.value_text(goal.threshold)
    );
    let look = match (o.round, &o.stratum) {
        (0, None) => String::new(),
        (0, Some(st)) => format!(" in {st}"),
        (r, None) => format!(", look {r}"),
        (r, Some(st)) => format!(" in {st}, look {r}"),
    };
    let (level, split) = policy.level_and_split();
    // Pass only when the whole interval clears the bar; fail only when the
    // whole interval misses it.
    let judge = |(lo, hi): (f64, f64)| {
        let (worst, best) = if at_least { (lo, hi) } else { (hi, lo) };
        if meets(worst) {
            Outcome::Pass
        } else if !meets(best) {
            Outcome::Fail
        } else {
            Outcome::Inconclusive
        }
    };
    let verdict = |outcome: Outcome| match outcome {
        Outcome::Pass => "meets the bar",
        Outcome::Fail => "misses the bar",
        _ => "is too close to the bar to call at this sample size (hold)",
    };
    if goal.metric == Metric::TicketsPer1000DeviceDays {
        let mut e = ticket_rate(
            goal,
            o,
            policy,
            &window,
            &look,
            (&level, &split),
            judge,
            verdict,
        )
        .into_evaluation(goal);
        e.anytime = anytime(&e.interval);
        e.stratum = o.stratum.clone();
        return e;
    }
    match count {
        Some(k) => {
            let value = k as f64 / sample as f64;
            let interval = match policy.judging {
                Judging::Point => None,
                Judging::Wilson => Some(wilson(k, sample, policy.z)),
                Judging::Sequential => {
                    Some(sequential::rate_cs(k, sample, policy.alpha, RATE_PRIOR))
                }
            };
            let outcome = match interval {
                Some(i) => judge(i),
                None if meets(value) => Outcome::Pass,
                None => Outcome::Fail,
            };
            let bounds = match (interval, policy.judging) {
                (Some((lo, hi)), Judging::Sequential) => {
                    format!(
                        " ({level} anytime interval {}–{}{})",
                        pct(lo),
                        pct(hi),
                        semi(&split)
                    )
                }
                (Some((lo, hi)), _) => format!(" (95 % interval {}–{})", pct(lo), pct(hi)),
                (None, _) => String::new(),
            };
            base(
                Some(value),
                interval,
                sample,
                outcome,
                format!(
                    "{label} {}{bounds} on {k} of {sample} {what} over {window}{look} {} of {bar}: {}",
                    pct(value),
                    verdict(outcome),
                    outcome.as_str()
                ),
            )
        }
        None => {
            let value = match goal.metric {
                Metric::ConflictCount => o.conflicts as f64,
                Metric::TicketsPer100Devices => o.tickets as f64 * 100.0 / o.devices.max(1) as f64,
                _ => o.feedback_sum / o.feedback_answers.max(1) as f64,
            };
            let outcome = if meets(value) {
                Outcome::Pass
            } else {
                Outcome::Fail
            };
            base(
                Some(value),
                None,
                sample,
                outcome,
                format!(
                    "{label} {} over {window}{look} from {sample} {what} {} of {bar}: {}",
                    goal.value_text(value),
                    verdict(outcome),
                    outcome.as_str()
                ),
            )
        }
    }
}

/// A judged ticket rate before it becomes an [`Evaluation`].
struct Judged {
    value: f64,
    control: Option<f64>,
    interval: Option<(f64, f64)>,
    sample: u64,
    outcome: Outcome,
    sentence: String,
}

impl Judged {
    fn into_evaluation(self, goal: &Goal) -> Evaluation {
        Evaluation {
            metric: goal.metric,
            critical: goal.critical,
            value: Some(self.value),
            interval: self.interval,
            threshold: goal.threshold,
            comparator: goal.comparator,
            sample: self.sample,
            min_sample: goal.min_sample,
            window_hours: goal.window_hours,
            outcome: self.outcome,
            sentence: self.sentence,
            control: self.control,
            stratum: None,
            anytime: None,
        }
    }
}

/// Tickets per 1,000 device-days: against the control when the goal says
/// so and a comparable control was measured (the difference's sequence at
/// α, each side at α/2), else against the bar as a fixed threshold.
#[allow(clippy::too_many_arguments)]
fn ticket_rate(
    goal: &Goal,
    o: &Observed,
    policy: &GatePolicy,
    window: &str,
    look: &str,
    (level, split): (&str, &str),
    judge: impl Fn((f64, f64)) -> Outcome,
    verdict: impl Fn(Outcome) -> &'static str,
) -> Judged {
    let label = goal.metric.label();
    let exposure = o.device_days / 1000.0;
    let value = if exposure > 0.0 {
        o.tickets as f64 / exposure
    } else {
        0.0
    };
    let rate = |v: f64| format!("{v:.1}");
    let sequential = policy.judging == Judging::Sequential;
    if goal.against_control
        && let Control::Measured {
            tickets,
            device_days,
        } = &o.control
        && *device_days > 0.0
    {
        let control = *tickets as f64 * 1000.0 / device_days;
        let diff = value - control;
        let interval = if sequential {
            sequential::difference_cs(
                (o.tickets, exposure),
                (*tickets, device_days / 1000.0),
                policy.alpha,
                COUNT_PRIOR,
            )
        } else {
            (diff, diff)
        };
        let outcome = judge(interval);
        let bounds = if sequential {
            let split = if split.is_empty() {
                String::new()
            } else {
                format!(" ({split})")
            };
            format!(
                ", {level} anytime interval {}–{}{split}",
                rate(interval.0),
                rate(interval.1)
            )
        } else {
            String::new()
        };
        return Judged {
            value,
            control: Some(control),
            interval: sequential.then_some(interval),
            sample: o.devices,
            outcome,
            sentence: format!(
                "{label} {} on the wave ({} tickets over {:.0} device-days) against {} on the control ({tickets} over {device_days:.0}): a difference of {}{bounds}, over {window}{look} {} of ≤ control + {}: {}",
                rate(value),
                o.tickets,
                o.device_days,
                rate(control),
                rate(diff),
                verdict(outcome),
                goal.value_text(goal.threshold),
                outcome.as_str()
            ),
        };
    }
    let note = match (&o.control, goal.against_control) {
        (_, false) => String::new(),
        (Control::NotComparable(why), true) => {
            format!(" (no comparable control: {why}; judged against a fixed bar)")
        }
        (_, true) => " (no control measured; judged against a fixed bar)".to_string(),
    };
    let interval =
        sequential.then(|| sequential::count_cs(o.tickets, exposure, policy.alpha, COUNT_PRIOR));
    let outcome = match interval {
        Some(i) => judge(i),
        None => judge((value, value)),
    };
    let bounds = interval
        .map(|(lo, hi)| {
            format!(
                " ({level} anytime interval {}–{}{})",
                rate(lo),
                rate(hi),
                semi(split)
            )
        })
        .unwrap_or_default();
    Judged {
        value,
        control: None,
        interval,
        sample: o.devices,
        outcome,
        sentence: format!(
            "{label} {}{bounds} from {} tickets over {:.0} device-days over {window}{look}{note} {} of ≤ {}: {}",
            rate(value),
            o.tickets,
            o.device_days,
            verdict(outcome),
            goal.value_text(goal.threshold),
            outcome.as_str()
        ),
    }
}

fn window_text(h: f64) -> String {
    if h >= 24.0 && (h / 24.0).fract() == 0.0 {
        format!("{} d", h / 24.0)
    } else {
        format!("{h} h")
    }
}

/// Failures seen so far for one goal of one wave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FailureCount {
    pub consecutive: u32,
    pub total: u32,
}

impl FailureCount {
    pub fn record(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Fail => {
                self.consecutive += 1;
                self.total += 1;
            }
            Outcome::Pass => self.consecutive = 0,
            // Holding neither clears nor adds to a run of failures.
            _ => {}
        }
    }
}

/// What the gates say about a wave after one round of evaluations.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Every critical goal passed and the wave has baked.
    Pass { why: String },
    /// A critical goal failed beyond its limits.
    Fail { why: String },
    /// Keep watching: baking, no data, inconclusive, or failures within limits.
    Hold { why: String },
    /// The metrics source failed: pause.
    SourceError { why: String },
}

/// The wave's decision from one round of evaluations (in goal order, with
/// the running failure counts per goal, already updated), its bake time, and
/// the deadlines. The worst critical outcome decides; advisory goals never do.
pub fn decide(
    goals: &[Goal],
    evals: &[Evaluation],
    failures: &[FailureCount],
    policy: &GatePolicy,
    baked: bool,
    hours_since_start: f64,
    today: jiff::civil::Date,
) -> Decision {
    let critical: Vec<usize> = (0..evals.len()).filter(|&i| evals[i].critical).collect();
    if let Some(&i) = critical
        .iter()
        .find(|&&i| evals[i].outcome == Outcome::Error)
    {
        return Decision::SourceError {
            why: evals[i].sentence.clone(),
        };
    }
    for &i in &critical {
        let f = failures.get(i).copied().unwrap_or_default();
        if f.consecutive >= policy.consecutive_failures || f.total >= policy.total_failures {
            return Decision::Fail {
                why: format!(
                    "{} ({} failed checks in a row, {} in all; the limits are {} and {})",
                    evals[i].sentence,
                    f.consecutive,
                    f.total,
                    policy.consecutive_failures,
                    policy.total_failures
                ),
            };
        }
    }
    // A goal still not met after its deadline fails the wave.
    for &i in &critical {
        if evals[i].outcome == Outcome::Pass {
            continue;
        }
        let late = match goals.get(i).map(|g| g.deadline) {
            Some(Deadline::AfterHours(h)) => hours_since_start > h,
            Some(Deadline::Day(d)) => today > d,
            None => false,
        };
        if late {
            return Decision::Fail {
                why: format!("{} — and its deadline has passed", evals[i].sentence),
            };
        }
    }
    if let Some(&i) = critical
        .iter()
        .filter(|&&i| evals[i].outcome != Outcome::Pass)
        .max_by_key(|&&i| evals[i].outcome)
    {
        let f = failures.get(i).copied().unwrap_or_default();
        let limits = if evals[i].outcome == Outcome::Fail {
            format!(
                " ({} of {} failed checks in a row allowed)",
                f.consecutive, policy.consecutive_failures
            )
        } else {
            String::new()
        };
        return Decision::Hold {
            why: format!("{}{limits}", evals[i].sentence),
        };
    }
    if !baked {
        return Decision::Hold {
            why: "every critical goal is met, and the wave is still baking".into(),
        };
    }
    Decision::Pass {
        why: if critical.is_empty() {
            "the wave has baked; it has no critical goals".into()
        } else {
            format!(
                "all {} critical goal(s) met after the bake time: {}",
                critical.len(),
                critical
                    .iter()
                    .map(|&i| evals[i].sentence.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        },
    }
}

/// What one round of a wave's gates found, as kept: each goal judged in
/// goal order, or, for a wave without goals, its bake time.
#[derive(Debug, Clone, PartialEq)]
pub struct GateRound {
    pub at: jiff::Timestamp,
    pub results: Vec<GateResult>,
}

/// One line of a gate round. Serialised flat: a goal's evaluation with
/// `goal` (its position among the wave's goals), or `goal: null` with the
/// outcome and sentence of a wave judged on bake time alone.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "ResultForm")]
pub enum GateResult {
    Goal { goal: u32, evaluation: Evaluation },
    BakeTime { outcome: Outcome },
}

/// A wave's latest gate round in one sentence: what it comes to, the goal
/// that decides it with its estimate and interval, the control, the stratum
/// and the rounds seen. `ringmaster status`, the API and the wave page all
/// show this one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The deciding outcome: the worst among the critical goals (among all
    /// goals when none is critical).
    pub outcome: Outcome,
    /// The deciding goal's position among the wave's goals (None: the wave
    /// is judged on bake time alone).
    pub goal: Option<u32>,
    pub metric: Option<Metric>,
    /// The stratum the deciding evaluation judged, None for the whole wave.
    pub stratum: Option<String>,
    /// The measured value (a share for rates).
    pub estimate: Option<f64>,
    /// Its interval (the difference from the control's when `control` is set).
    pub interval: Option<(f64, f64)>,
    /// The interval's level when it is anytime-valid.
    pub anytime: Option<f64>,
    /// The control's rate, when measured.
    pub control: Option<f64>,
    /// Gate rounds seen so far.
    pub rounds: u32,
    pub sentence: String,
}

/// The verdict of a wave's latest round (None before the first round).
pub fn verdict(rounds: &[GateRound]) -> Option<Verdict> {
    let last = rounds.last()?;
    let n = rounds.len() as u32;
    let seen = if n == 1 {
        "1 round".to_string()
    } else {
        format!("{n} rounds")
    };
    let goals: Vec<(u32, &Evaluation)> = last
        .results
        .iter()
        .filter_map(|r| match r {
            GateResult::Goal { goal, evaluation } => Some((*goal, evaluation)),
            GateResult::BakeTime { .. } => None,
        })
        .collect();
    let any_critical = goals.iter().any(|(_, e)| e.critical);
    // The worst outcome decides; on a tie the first goal in plan order.
    let deciding = goals
        .iter()
        .filter(|(_, e)| e.critical || !any_critical)
        .fold(None::<&(u32, &Evaluation)>, |best, g| match best {
            Some(b) if b.1.outcome >= g.1.outcome => Some(b),
            _ => Some(g),
        });
    let Some(&(goal, e)) = deciding else {
        let outcome = last
            .results
            .first()
            .map_or(Outcome::NoData, GateResult::outcome);
        let sentence = match outcome {
            Outcome::Pass => format!("passing: no goals, baked long enough, {seen}"),
            _ => format!("waiting: no goals, judged on bake time alone, {seen}"),
        };
        return Some(Verdict {
            outcome,
            goal: None,
            metric: None,
            stratum: None,
            estimate: None,
            interval: None,
            anytime: None,
            control: None,
            rounds: n,
            sentence,
        });
    };
    let head = match e.outcome {
        Outcome::Pass => "passing",
        Outcome::NoData => "no data yet",
        Outcome::Inconclusive => "too close to call",
        Outcome::Fail => "failing",
        Outcome::Error => "source failing",
    };
    let rate = e.metric.is_rate();
    let num = |v: f64| {
        if rate {
            format!("{:.1}", v * 100.0)
        } else {
            format!("{v:.1}")
        }
    };
    let unit = if rate { " %" } else { "" };
    let stratum = e
        .stratum
        .as_ref()
        .map(|s| format!("{s} "))
        .unwrap_or_default();
    let label = e.metric.label();
    let body = match e.value {
        None => format!("{stratum}{label}: {} of {} reports", e.sample, e.min_sample),
        Some(v) => {
            let kind = match e.anytime {
                Some(l) => format!("anytime {} interval", level_text(l)),
                None => "interval".to_string(),
            };
            match (e.control, e.interval) {
                (Some(c), Some((lo, hi))) => format!(
                    "{stratum}{label} {} vs {} on the control (difference {kind} {}–{})",
                    num(v),
                    num(c),
                    num(lo),
                    num(hi)
                ),
                (Some(c), None) => {
                    format!("{stratum}{label} {} vs {} on the control", num(v), num(c))
                }
                (None, Some((lo, hi))) if lo != hi => format!(
                    "{stratum}{label} {}{unit} ({kind} {}–{}{unit})",
                    num(v),
                    num(lo),
                    num(hi)
                ),
                (None, _) => format!("{stratum}{label} {}{unit}", num(v)),
            }
        }
    };
    Some(Verdict {
        outcome: e.outcome,
        goal: Some(goal),
        metric: Some(e.metric),
        stratum: e.stratum.clone(),
        estimate: e.value,
        interval: e.interval,
        anytime: e.anytime,
        control: e.control,
        rounds: n,
        sentence: format!("{head}: {body}, {seen}"),
    })
}

/// The sentence of a wave judged without goals.
pub const BAKE_TIME_SENTENCE: &str = "no goals: the wave is judged on bake time alone";

impl GateResult {
    pub fn outcome(&self) -> Outcome {
        match self {
            GateResult::Goal { evaluation, .. } => evaluation.outcome,
            GateResult::BakeTime { outcome } => *outcome,
        }
    }

    pub fn sentence(&self) -> &str {
        match self {
            GateResult::Goal { evaluation, .. } => &evaluation.sentence,
            GateResult::BakeTime { .. } => BAKE_TIME_SENTENCE,
        }
    }

    /// The goal's position among the wave's goals (None: judged on bake time).
    pub fn goal(&self) -> Option<u32> {
        match self {
            GateResult::Goal { goal, .. } => Some(*goal),
            GateResult::BakeTime { .. } => None,
        }
    }
}

impl Serialize for GateResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct GoalForm<'a> {
            goal: u32,
            #[serde(flatten)]
            evaluation: &'a Evaluation,
        }
        #[derive(Serialize)]
        struct BakeForm {
            goal: Option<u32>,
            outcome: Outcome,
            sentence: &'static str,
        }
        match self {
            GateResult::Goal { goal, evaluation } => GoalForm {
                goal: *goal,
                evaluation,
            }
            .serialize(s),
            GateResult::BakeTime { outcome } => BakeForm {
                goal: None,
                outcome: *outcome,
                sentence: BAKE_TIME_SENTENCE,
            }
            .serialize(s),
        }
    }
}

/// Both serialised forms in one: which one it is depends on `goal`.
#[derive(Deserialize)]
struct ResultForm {
    goal: Option<u32>,
    outcome: Outcome,
    sentence: String,
    metric: Option<Metric>,
    critical: Option<bool>,
    value: Option<f64>,
    interval: Option<(f64, f64)>,
    threshold: Option<f64>,
    comparator: Option<Comparator>,
    sample: Option<u64>,
    min_sample: Option<u64>,
    window_hours: Option<f64>,
    #[serde(default)]
    control: Option<f64>,
    #[serde(default)]
    stratum: Option<String>,
    #[serde(default)]
    anytime: Option<f64>,
}

impl TryFrom<ResultForm> for GateResult {
    type Error = String;

    fn try_from(f: ResultForm) -> Result<GateResult, String> {
        let Some(goal) = f.goal else {
            return Ok(GateResult::BakeTime { outcome: f.outcome });
        };
        let missing = |field: &str| format!("goal {goal}: no `{field}`");
        Ok(GateResult::Goal {
            goal,
            evaluation: Evaluation {
                metric: f.metric.ok_or_else(|| missing("metric"))?,
                critical: f.critical.ok_or_else(|| missing("critical"))?,
                value: f.value,
                interval: f.interval,
                threshold: f.threshold.ok_or_else(|| missing("threshold"))?,
                comparator: f.comparator.ok_or_else(|| missing("comparator"))?,
                sample: f.sample.ok_or_else(|| missing("sample"))?,
                min_sample: f.min_sample.ok_or_else(|| missing("min_sample"))?,
                window_hours: f.window_hours.ok_or_else(|| missing("window_hours"))?,
                outcome: f.outcome,
                sentence: f.sentence,
                control: f.control,
                stratum: f.stratum,
                anytime: f.anytime,
            },
        })
    }
}

#[cfg(test)]
mod level_tests {
    use super::level_text;

    #[test]
    fn levels_keep_the_decimals_their_alpha_needs() {
        for (level, text) in [
            (0.95, "95 %"),
            (1.0 - 0.05 / 3.0, "98.3 %"),
            (0.975, "97.5 %"),
            (0.995, "99.5 %"),
            (0.999, "99.9 %"),
            (1.0 - 0.05 / 60.0, "99.92 %"),
            (1.0 - 0.05 / 1000.0, "99.995 %"),
        ] {
            assert_eq!(level_text(level), text, "{level}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goals::{GoalDraft, validate};

    fn goal(metric: &'static str, threshold: &'static str, min: u64) -> Goal {
        validate(
            &GoalDraft {
                metric: Some(metric),
                threshold: Some(threshold),
                window: Some("24h"),
                min_sample: Some(min),
                deadline: Some("7d"),
                after: Some("2d"),
                critical: true,
            },
            8.0,
            None,
        )
        .unwrap()
    }

    fn seen(reported: u64, succeeded: u64, errors: u64) -> Observed {
        Observed {
            devices: 1000,
            reported,
            succeeded,
            errors,
            hours_since_start: 30.0,
            ..Default::default()
        }
    }

    #[test]
    fn a_verdict_is_the_worst_critical_goal_in_one_sentence() {
        let policy = GatePolicy::sequential();
        let errors = goal("error_rate", "<= 2%", 30);
        let tickets = goal("tickets_per_1000_device_days", "<= control + 2", 20);
        let mut o = seen(1000, 880, 91);
        o.round = 14;
        o.stratum = Some("model Latitude 7440".into());
        o.tickets = 300;
        o.device_days = 100_000.0;
        o.control = Control::Measured {
            tickets: 2000,
            device_days: 1_000_000.0,
        };
        let round = |at: &str| GateRound {
            at: at.parse().unwrap(),
            results: vec![
                GateResult::Goal {
                    goal: 0,
                    evaluation: evaluate(&tickets, &o, &policy, None),
                },
                GateResult::Goal {
                    goal: 1,
                    evaluation: evaluate(&errors, &o, &policy, None),
                },
            ],
        };
        let rounds = vec![round("2027-01-12T08:00:00Z"), round("2027-01-12T09:00:00Z")];
        let v = verdict(&rounds).unwrap();
        assert_eq!((v.outcome, v.goal, v.rounds), (Outcome::Fail, Some(1), 2));
        let (lo, hi) = v.interval.unwrap();
        assert_eq!(
            v.sentence,
            format!(
                "failing: model Latitude 7440 error rate 9.1 % (anytime 95 % interval {:.1}–{:.1} %), 2 rounds",
                lo * 100.0,
                hi * 100.0
            )
        );
        // The ticket goal alone: its control is in the sentence.
        let only = GateRound {
            at: rounds[0].at,
            results: rounds[0].results[..1].to_vec(),
        };
        let v = verdict(&[only]).unwrap();
        assert_eq!(v.control, Some(2.0));
        assert!(
            v.sentence.starts_with(
                "passing: model Latitude 7440 tickets per 1000 device days 3.0 vs 2.0 on the control (difference anytime 95 % interval "
            ) && v.sentence.ends_with(", 1 round"),
            "{}",
            v.sentence
        );
        // No round yet, no verdict; bake time alone says so.
        assert_eq!(verdict(&[]), None);
        let bake = GateRound {
            at: rounds[0].at,
            results: vec![GateResult::BakeTime {
                outcome: Outcome::Pass,
            }],
        };
        assert_eq!(
            verdict(&[bake]).unwrap().sentence,
            "passing: no goals, baked long enough, 1 round"
        );
    }

    #[test]
    fn wilson_bounds_match_the_textbook() {
        let (lo, hi) = wilson(95, 100, 1.96);
        assert!(
            (lo - 0.8882).abs() < 1e-3 && (hi - 0.9785).abs() < 1e-3,
            "{lo} {hi}"
        );
        assert_eq!(wilson(0, 0, 1.96), (0.0, 1.0));
    }

    #[test]
    fn too_little_data_holds_and_never_passes() {
        let g = goal("apply_success_rate", ">= 95%", 50);
        let e = evaluate(&g, &seen(20, 20, 0), &GatePolicy::default(), None);
        assert_eq!(e.outcome, Outcome::NoData);
        assert!(
            e.sentence.contains("fewer than the 50 needed"),
            "{}",
            e.sentence
        );
        let d = decide(
            &[g],
            &[e],
            &[FailureCount::default()],
            &GatePolicy::default(),
            true,
            30.0,
            jiff::civil::date(2027, 1, 1),
        );
        assert!(matches!(d, Decision::Hold { .. }), "{d:?}");
    }

    #[test]
    fn wilson_keeps_a_small_sample_from_passing_on_luck() {
        let g = goal("apply_success_rate", ">= 95%", 30);
        let policy = GatePolicy {
            judging: Judging::Wilson,
            ..GatePolicy::default()
        };
        // 30 of 30: the point estimate says 100 %, the lower bound 88.6 %.
        let e = evaluate(&g, &seen(30, 30, 0), &policy, None);
        assert_eq!(e.outcome, Outcome::Inconclusive, "{}", e.sentence);
        let plain = GatePolicy {
            judging: Judging::Point,
            ..policy
        };
        assert_eq!(
            evaluate(&g, &seen(30, 30, 0), &plain, None).outcome,
            Outcome::Pass
        );
        // 990 of 1000 clears it; 800 of 1000 misses it for sure.
        assert_eq!(
            evaluate(&g, &seen(1000, 990, 10), &policy, None).outcome,
            Outcome::Pass
        );
        let e = evaluate(&g, &seen(1000, 800, 200), &policy, None);
        assert_eq!(e.outcome, Outcome::Fail);
        assert!(
            e.sentence
                .starts_with("apply success rate 80 % (95 % interval"),
            "{}",
            e.sentence
        );
        assert!(
            e.sentence
                .contains("on 800 of 1000 devices over 1 d misses the bar of ≥ 95 %: fail"),
            "{}",
            e.sentence
        );
    }

    #[test]
    fn sequential_gates_judge_rates_by_their_confidence_sequence() {
        let g = goal("apply_success_rate", ">= 95%", 30);
        let policy = GatePolicy::sequential();
        assert_eq!(policy.judging, Judging::Sequential);
        // 100 of 100 passes Wilson (lower bound 96.3 %) but not the sequence,
        // (0.05/101)^(1/100) = 92.7 %, which allows for every look.
        let mut o = seen(100, 100, 0);
        o.round = 4;
        let e = evaluate(&g, &o, &policy, None);
        assert_eq!(e.outcome, Outcome::Inconclusive, "{}", e.sentence);
        let (lo, hi) = e.interval.unwrap();
        assert!((lo - (0.05f64 / 101.0).powf(0.01)).abs() < 1e-9 && hi == 1.0);
        assert_eq!(
            e.sentence,
            "apply success rate 100 % (95 % anytime interval 92.7 %–100 %) on 100 of 100 devices over 1 d, look 4 is too close to the bar to call at this sample size (hold) of ≥ 95 %: inconclusive"
        );
        let wilson_policy = GatePolicy {
            judging: Judging::Wilson,
            ..policy
        };
        assert_eq!(
            evaluate(&g, &o, &wilson_policy, None).outcome,
            Outcome::Pass
        );
        // 1000 of 1000 clears it; 800 of 1000 misses it for sure.
        assert_eq!(
            evaluate(&g, &seen(1000, 1000, 0), &policy, None).outcome,
            Outcome::Pass
        );
        let mut o = seen(1000, 800, 200);
        o.stratum = Some("model Latitude 7440".into());
        let e = evaluate(&g, &o, &policy, None);
        assert_eq!(e.outcome, Outcome::Fail);
        assert!(
            e.sentence
                .contains("over 1 d in model Latitude 7440 misses the bar"),
            "{}",
            e.sentence
        );
    }

    #[test]
    fn ticket_rates_are_judged_against_the_control() {
        let g = goal("tickets_per_1000_device_days", "<= control + 2", 20);
        let policy = GatePolicy::sequential();
        // A Patch Tuesday: 15 per 1,000 device-days everywhere, the wave no worse.
        let mut o = seen(1000, 1000, 0);
        o.devices = 20_000;
        o.tickets = 3000;
        o.device_days = 200_000.0;
        o.round = 30;
        o.control = Control::Measured {
            tickets: 30_000,
            device_days: 2_000_000.0,
        };
        let e = evaluate(&g, &o, &policy, None);
        assert_eq!(e.outcome, Outcome::Pass, "{}", e.sentence);
        assert!(
            e.sentence.starts_with(
                "tickets per 1000 device days 15.0 on the wave (3000 tickets over 200000 device-days) against 15.0 on the control (30000 over 2000000): a difference of 0.0, 95 % anytime interval -1.5–1.6,"
            ),
            "{}",
            e.sentence
        );
        // A fixed bar of 8 would have failed that wave.
        let fixed = goal("tickets_per_1000_device_days", "<= 8", 20);
        assert_eq!(evaluate(&fixed, &o, &policy, None).outcome, Outcome::Fail);
        // The wave at 11, 6 above a quiet control, misses the margin of 2.
        o.tickets = 2200;
        o.control = Control::Measured {
            tickets: 10_000,
            device_days: 2_000_000.0,
        };
        let e = evaluate(&g, &o, &policy, None);
        assert_eq!(e.outcome, Outcome::Fail, "{}", e.sentence);
        assert!(
            e.sentence
                .ends_with("misses the bar of ≤ control + 2: fail"),
            "{}",
            e.sentence
        );
        // A pilot's control is not comparable: the margin becomes a fixed bar, and the sentence says so.
        o.tickets = 5;
        o.control = Control::NotComparable("the pilot is volunteers and IT staff".into());
        let e = evaluate(&g, &o, &policy, None);
        assert_eq!(e.outcome, Outcome::Pass, "{}", e.sentence);
        assert!(
            e.sentence.contains("(no comparable control: the pilot is volunteers and IT staff; judged against a fixed bar)"),
            "{}",
            e.sentence
        );
    }

    #[test]
    fn error_rates_and_counts_judge_downwards() {
        let policy = GatePolicy {
            judging: Judging::Point,
            ..GatePolicy::default()
        };
        let g = goal("error_rate", "<= 2%", 20);
        assert_eq!(
            evaluate(&g, &seen(500, 495, 5), &policy, None).outcome,
            Outcome::Pass
        );
        assert_eq!(
            evaluate(&g, &seen(500, 470, 30), &policy, None).outcome,
            Outcome::Fail
        );
        let t = goal("tickets_per_100_devices", "<= 3", 20);
        let mut o = seen(500, 500, 0);
        o.tickets = 40;
        let e = evaluate(&t, &o, &policy, None);
        assert_eq!((e.outcome, e.value), (Outcome::Fail, Some(4.0)));
        let p = goal("pending_after", "<= 5%", 20);
        let mut o = seen(500, 450, 0);
        o.pending = 30;
        o.hours_since_start = 30.0;
        assert_eq!(evaluate(&p, &o, &policy, None).outcome, Outcome::NoData);
        o.hours_since_start = 50.0;
        assert_eq!(evaluate(&p, &o, &policy, None).outcome, Outcome::Pass);
    }

    #[test]
    fn failures_within_limits_hold_and_beyond_them_fail() {
        let g = goal("apply_success_rate", ">= 95%", 20);
        let policy = GatePolicy {
            judging: Judging::Point,
            ..GatePolicy::default()
        };
        let today = jiff::civil::date(2027, 1, 1);
        let mut count = FailureCount::default();
        let e = evaluate(&g, &seen(500, 400, 100), &policy, None);
        count.record(e.outcome);
        let d = decide(
            std::slice::from_ref(&g),
            std::slice::from_ref(&e),
            &[count],
            &policy,
            true,
            30.0,
            today,
        );
        assert!(
            matches!(&d, Decision::Hold { why } if why.contains("1 of 2 failed checks in a row allowed")),
            "{d:?}"
        );
        count.record(e.outcome);
        let d = decide(
            std::slice::from_ref(&g),
            std::slice::from_ref(&e),
            &[count],
            &policy,
            true,
            30.0,
            today,
        );
        assert!(
            matches!(&d, Decision::Fail { why } if why.contains("2 failed checks in a row")),
            "{d:?}"
        );
        // A pass in between resets the run but not the total.
        let mut c = FailureCount::default();
        for o in [
            Outcome::Fail,
            Outcome::Pass,
            Outcome::Fail,
            Outcome::NoData,
            Outcome::Pass,
            Outcome::Fail,
        ] {
            c.record(o);
        }
        assert_eq!(
            c,
            FailureCount {
                consecutive: 1,
                total: 3
            }
        );
    }

    #[test]
    fn advisory_goals_never_decide_and_errors_pause() {
        let mut advisory = goal("pilot_feedback_score", ">= 4", 5);
        advisory.critical = false;
        let g = goal("apply_success_rate", ">= 95%", 20);
        let policy = GatePolicy {
            judging: Judging::Point,
            ..GatePolicy::default()
        };
        let mut o = seen(500, 499, 1);
        o.feedback_answers = 10;
        o.feedback_sum = 20.0;
        let evals = vec![
            evaluate(&g, &o, &policy, None),
            evaluate(&advisory, &o, &policy, None),
        ];
        assert_eq!(evals[1].outcome, Outcome::Fail);
        let counts = [
            FailureCount::default(),
            FailureCount {
                consecutive: 5,
                total: 5,
            },
        ];
        let today = jiff::civil::date(2027, 1, 1);
        let goals = [g.clone(), advisory];
        assert!(matches!(
            decide(&goals, &evals, &counts, &policy, true, 30.0, today),
            Decision::Pass { .. }
        ));
        assert!(matches!(
            decide(&goals, &evals, &counts, &policy, false, 30.0, today),
            Decision::Hold { .. }
        ));
        let err = evaluate(&g, &o, &policy, Some("Graph returned 503"));
        assert_eq!(err.outcome, Outcome::Error);
        let d = decide(
            &goals[..1],
            &[err],
            &counts[..1],
            &policy,
            true,
            30.0,
            today,
        );
        assert!(
            matches!(&d, Decision::SourceError { why } if why.contains("503")),
            "{d:?}"
        );
    }

    #[test]
    fn a_goal_unmet_after_its_deadline_fails_the_wave() {
        let g = goal("apply_success_rate", ">= 95%", 50);
        let policy = GatePolicy {
            judging: Judging::Wilson,
            ..GatePolicy::default()
        };
        let e = evaluate(&g, &seen(10, 10, 0), &policy, None);
        let today = jiff::civil::date(2027, 1, 1);
        let d = decide(
            std::slice::from_ref(&g),
            std::slice::from_ref(&e),
            &[FailureCount::default()],
            &policy,
            true,
            24.0 * 8.0,
            today,
        );
        assert!(
            matches!(&d, Decision::Fail { why } if why.contains("deadline has passed")),
            "{d:?}"
        );
    }

    #[test]
    fn gate_results_read_back_as_written_and_refuse_half_records() {
        let g = goal("apply_success_rate", ">= 90%", 3);
        let o = Observed {
            devices: 4,
            reported: 4,
            succeeded: 3,
            errors: 1,
            ..Observed::default()
        };
        let results = [
            GateResult::Goal {
                goal: 2,
                evaluation: evaluate(&g, &o, &GatePolicy::default(), None),
            },
            GateResult::BakeTime {
                outcome: Outcome::NoData,
            },
        ];
        for r in &results {
            let text = serde_json::to_string(r).unwrap();
            let back: GateResult = serde_json::from_str(&text).unwrap();
            assert_eq!(&back, r, "{text}");
        }
        let bake = serde_json::to_value(&results[1]).unwrap();
        assert_eq!(bake["goal"], serde_json::Value::Null);
        assert_eq!(bake["outcome"], "no_data");
        let mut half = serde_json::to_value(&results[0]).unwrap();
        half.as_object_mut().unwrap().remove("threshold");
        let err = serde_json::from_value::<GateResult>(half).unwrap_err();
        assert!(err.to_string().contains("goal 2: no `threshold`"), "{err}");
    }
}
