//! SMART goals of a phase: what is measured, the bar, over which window,
//! from how many reports, and by when. Gates judge waves by these.

use serde::{Deserialize, Serialize};

/// What a goal measures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "name")]
pub enum Metric {
    /// Share of reporting devices where every new policy succeeded.
    ApplySuccessRate,
    /// Share of reporting devices with an error.
    ErrorRate,
    /// Devices reporting a conflict.
    ConflictCount,
    /// Share of reporting devices with a conflict.
    ConflictRate,
    /// Share of reporting devices that cannot take the policies.
    NotApplicableRate,
    /// Share of the wave's devices still pending this many hours after it started.
    PendingAfter { hours: f64 },
    /// Help-desk tickets attributed to the rollout per 100 devices of the wave.
    TicketsPer100Devices,
    /// Mean pilot feedback score, 1 (bad) to 5 (good).
    PilotFeedbackScore,
    /// Share of the wave's devices enrolled (for enrollment rollouts).
    EnrollmentCompletion,
    /// Help-desk tickets per 1,000 device-days, judged as a Poisson rate;
    /// its bar may be relative to the concurrent control (`<= control + 2`).
    TicketsPer1000DeviceDays,
}

impl Metric {
    pub const NAMES: [&'static str; 10] = [
        "apply_success_rate",
        "error_rate",
        "conflict_count",
        "conflict_rate",
        "not_applicable_rate",
        "pending_after",
        "tickets_per_100_devices",
        "pilot_feedback_score",
        "enrollment_completion",
        "tickets_per_1000_device_days",
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::ApplySuccessRate => "apply_success_rate",
            Metric::ErrorRate => "error_rate",
            Metric::ConflictCount => "conflict_count",
            Metric::ConflictRate => "conflict_rate",
            Metric::NotApplicableRate => "not_applicable_rate",
            Metric::PendingAfter { .. } => "pending_after",
            Metric::TicketsPer100Devices => "tickets_per_100_devices",
            Metric::PilotFeedbackScore => "pilot_feedback_score",
            Metric::EnrollmentCompletion => "enrollment_completion",
            Metric::TicketsPer1000DeviceDays => "tickets_per_1000_device_days",
        }
    }

    /// Words for reports: "apply success rate".
    pub fn label(self) -> String {
        match self {
            Metric::PendingAfter { hours } => format!("pending after {}", hours_text(hours)),
            m => m.name().replace('_', " "),
        }
    }

    /// Rates are shares in 0..=1 and shown as percentages.
    pub fn is_rate(self) -> bool {
        matches!(
            self,
            Metric::ApplySuccessRate
                | Metric::ErrorRate
                | Metric::ConflictRate
                | Metric::NotApplicableRate
                | Metric::PendingAfter { .. }
                | Metric::EnrollmentCompletion
        )
    }

    /// The direction that means better: success rises, errors fall.
    pub fn higher_is_better(self) -> bool {
        matches!(
            self,
            Metric::ApplySuccessRate | Metric::PilotFeedbackScore | Metric::EnrollmentCompletion
        )
    }

    /// Whether the sample is answers (feedback) rather than devices.
    pub fn counts_answers(self) -> bool {
        matches!(self, Metric::PilotFeedbackScore)
    }
}

fn hours_text(h: f64) -> String {
    if h >= 24.0 && (h / 24.0).fract() == 0.0 {
        format!("{} d", h / 24.0)
    } else {
        format!("{h} h")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparator {
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<=")]
    AtMost,
}

/// When a goal must be met: hours after the wave starts, or a day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Deadline {
    AfterHours(f64),
    Day(jiff::civil::Date),
}

/// A goal that passed SMART validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Goal {
    pub metric: Metric,
    pub comparator: Comparator,
    /// The bar; rates as a share in 0..=1.
    pub threshold: f64,
    pub window_hours: f64,
    pub min_sample: u64,
    pub deadline: Deadline,
    pub critical: bool,
    /// The bar is a margin over the concurrent control's rate (`<= control
    /// + 2`): a non-inferiority test rather than a fixed threshold.
    pub against_control: bool,
}

impl Goal {
    /// "apply success rate ≥ 95 % over 24 h, from at least 50 devices, within 7 d".
    pub fn sentence(&self) -> String {
        let what = if self.metric.counts_answers() {
            "answers"
        } else {
            "devices"
        };
        let by = match self.deadline {
            Deadline::AfterHours(h) => format!("within {} of the start", hours_text(h)),
            Deadline::Day(d) => format!("by {d}"),
        };
        format!(
            "{} over {}, from at least {} {what}, {by}{}",
            self.bar_text(),
            hours_text(self.window_hours),
            self.min_sample,
            if self.critical { "" } else { " (advisory)" }
        )
    }

    /// The metric and its bar: "apply success rate ≥ 95 %".
    pub fn bar_text(&self) -> String {
        let op = match self.comparator {
            Comparator::AtLeast => "≥",
            Comparator::AtMost => "≤",
        };
        format!(
            "{} {op} {}{}",
            self.metric.label(),
            if self.against_control {
                "control + "
            } else {
                ""
            },
            self.value_text(self.threshold)
        )
    }

    /// How long the goal must watch a wave before it can pass: its window
    /// (judged sooner, it would rest on less than it says), and for
    /// `pending_after` its `after` as well (nothing is judged before then).
    /// A wave's bake time is at least this long.
    pub fn hours_needed(&self) -> f64 {
        match self.metric {
            Metric::PendingAfter { hours } => self.window_hours.max(hours),
            _ => self.window_hours,
        }
    }

    /// Why the goal needs [`Goal::hours_needed`], as a clause:
    /// "error rate ≤ 1 % is measured over 2 d".
    pub fn need_text(&self) -> String {
        match self.metric {
            Metric::PendingAfter { hours } if hours > self.window_hours => format!(
                "{} is judged only from {} after a wave starts",
                self.bar_text(),
                hours_text(hours)
            ),
            _ => format!(
                "{} is measured over {}",
                self.bar_text(),
                hours_text(self.window_hours)
            ),
        }
    }

    /// A value of this goal's metric as text: rates as percentages.
    pub fn value_text(&self, v: f64) -> String {
        if self.metric.is_rate() {
            let p = v * 100.0;
            if p.fract() == 0.0 {
                format!("{p:.0} %")
            } else {
                format!("{p:.1} %")
            }
        } else if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    }
}

/// The SMART property a goal fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Smart {
    Specific,
    Measurable,
    Attainable,
    Realistic,
    Timely,
}

impl Smart {
    pub fn name(self) -> &'static str {
        match self {
            Smart::Specific => "specific",
            Smart::Measurable => "measurable",
            Smart::Attainable => "attainable",
            Smart::Realistic => "realistic",
            Smart::Timely => "timely",
        }
    }
}

/// Which part of the goal an error is about, so the caller can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoalField {
    Goal,
    Metric,
    Threshold,
    Window,
    MinSample,
    Deadline,
    After,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("goal is not {}: {message}", property.name())]
pub struct GoalError {
    pub property: Smart,
    pub field: GoalField,
    pub message: String,
}

/// A goal as written: text parts, each optional so the missing one is named.
#[derive(Debug, Clone, Default)]
pub struct GoalDraft<'a> {
    pub metric: Option<&'a str>,
    pub threshold: Option<&'a str>,
    pub window: Option<&'a str>,
    pub min_sample: Option<u64>,
    pub deadline: Option<&'a str>,
    pub after: Option<&'a str>,
    pub critical: bool,
}

fn err(property: Smart, field: GoalField, message: impl Into<String>) -> GoalError {
    GoalError {
        property,
        field,
        message: message.into(),
    }
}

/// Parses `8h`, `2d`, `1w`, `90m`, `1d 12h` or ISO 8601 (`PT8H`) into hours;
/// a day is 24 hours here.
pub fn parse_hours(s: &str) -> Option<f64> {
    let span: jiff::Span = s.trim().parse().ok()?;
    let hours = span
        .total((jiff::Unit::Hour, jiff::SpanRelativeTo::days_are_24_hours()))
        .ok()?;
    (hours > 0.0).then_some(hours)
}

/// Validates a goal. `check_in_hours` is the check-in interval (a window
/// shorter than it sees no reports); `max_sample` is the most devices the
/// goal can ever see (the smallest wave it judges), when known. The parts
/// are checked in order: what is measured, the bar and sample, the window,
/// the deadline; the first fault is the error.
pub fn validate(
    d: &GoalDraft<'_>,
    check_in_hours: f64,
    max_sample: Option<u64>,
) -> Result<Goal, GoalError> {
    let metric = metric(d)?;
    let (comparator, threshold, min_sample) = bar(d, metric, max_sample)?;
    let against_control = d.threshold.is_some_and(|t| control_margin(t).is_some());
    let window_hours = window(d, check_in_hours)?;
    let deadline = deadline(d, window_hours)?;
    Ok(Goal {
        metric,
        comparator,
        threshold,
        window_hours,
        min_sample,
        deadline,
        critical: d.critical,
        against_control,
    })
}

/// Specific: the metric, with `after` for pending_after.
fn metric(d: &GoalDraft<'_>) -> Result<Metric, GoalError> {
    use GoalField as F;
    use Smart::*;
    let metric_name = d
        .metric
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            err(
                Specific,
                F::Goal,
                format!(
                    "say what is measured: metric = one of {}",
                    Metric::NAMES.join(", ")
                ),
            )
        })?;
    let metric = match metric_name.to_ascii_lowercase().as_str() {
        "apply_success_rate" => Metric::ApplySuccessRate,
        "error_rate" => Metric::ErrorRate,
        "conflict_count" => Metric::ConflictCount,
        "conflict_rate" => Metric::ConflictRate,
        "not_applicable_rate" => Metric::NotApplicableRate,
        "tickets_per_100_devices" => Metric::TicketsPer100Devices,
        "pilot_feedback_score" => Metric::PilotFeedbackScore,
        "enrollment_completion" => Metric::EnrollmentCompletion,
        "tickets_per_1000_device_days" => Metric::TicketsPer1000DeviceDays,
        "pending_after" => {
            let after = d.after.ok_or_else(|| {
                err(
                    Specific,
                    F::Metric,
                    "pending_after needs `after`: how long after the start a device may be pending (e.g. \"24h\")",
                )
            })?;
            let hours = parse_hours(after).ok_or_else(|| {
                err(
                    Specific,
                    F::After,
                    format!("`{after}` is not a duration such as 24h or 2d"),
                )
            })?;
            Metric::PendingAfter { hours }
        }
        other => {
            return Err(err(
                Specific,
                F::Metric,
                format!(
                    "unknown metric `{other}`; expected one of {}",
                    Metric::NAMES.join(", ")
                ),
            ));
        }
    };
    Ok(metric)
}

/// Measurable, attainable and realistic: the bar (comparator and
/// threshold) and the sample it is judged on.
fn bar(
    d: &GoalDraft<'_>,
    metric: Metric,
    max_sample: Option<u64>,
) -> Result<(Comparator, f64, u64), GoalError> {
    use GoalField as F;
    use Smart::*;
    let threshold_text = d.threshold.ok_or_else(|| {
        err(
            Measurable,
            F::Goal,
            format!(
                "no threshold: say the bar, e.g. threshold = \"{}\"",
                if metric.higher_is_better() {
                    ">= 95%"
                } else {
                    "<= 2%"
                }
            ),
        )
    })?;
    let (comparator, threshold) = match control_margin(threshold_text) {
        Some(_) if metric != Metric::TicketsPer1000DeviceDays => {
            return Err(err(
                Measurable,
                F::Threshold,
                format!(
                    "only tickets_per_1000_device_days is judged against the control; give {} a fixed bar",
                    metric.label()
                ),
            ));
        }
        Some(margin) => (
            Comparator::AtMost,
            margin.map_err(|m| err(Measurable, F::Threshold, m))?,
        ),
        None => {
            parse_threshold(threshold_text, metric).map_err(|m| err(Measurable, F::Threshold, m))?
        }
    };
    let min_sample = d.min_sample.ok_or_else(|| {
        err(
            Measurable,
            F::Goal,
            "no min_sample: say how many devices must report before the goal is judged",
        )
    })?;
    if min_sample == 0 {
        return Err(err(
            Measurable,
            F::MinSample,
            "min_sample must be at least 1: a goal judged on no data proves nothing",
        ));
    }
    let good_direction = if metric.higher_is_better() {
        Comparator::AtLeast
    } else {
        Comparator::AtMost
    };
    if comparator != good_direction {
        return Err(err(
            Realistic,
            F::Threshold,
            format!(
                "{} is better when {}; the bar should be `{}`",
                metric.label(),
                if metric.higher_is_better() {
                    "higher"
                } else {
                    "lower"
                },
                if metric.higher_is_better() {
                    ">="
                } else {
                    "<="
                }
            ),
        ));
    }
    if metric.is_rate() && !(0.0..=1.0).contains(&threshold) {
        return Err(err(
            Attainable,
            F::Threshold,
            "a rate must lie between 0 % and 100 %",
        ));
    }
    if metric == Metric::PilotFeedbackScore && !(1.0..=5.0).contains(&threshold) {
        return Err(err(
            Attainable,
            F::Threshold,
            "feedback scores run from 1 to 5",
        ));
    }
    if threshold < 0.0 {
        return Err(err(Attainable, F::Threshold, "a count cannot be negative"));
    }
    if metric == Metric::ApplySuccessRate && threshold >= 1.0 && min_sample > 20 {
        return Err(err(
            Realistic,
            F::Threshold,
            "a success rate of 100 % over many devices fails on one device that is off or broken; use e.g. >= 98%",
        ));
    }
    if let Some(max) = max_sample
        && !metric.counts_answers()
        && min_sample > max
    {
        return Err(err(
            Attainable,
            F::MinSample,
            format!(
                "min_sample {min_sample} is more than the {max} devices of the smallest wave it judges, so it can never be reached"
            ),
        ));
    }
    Ok((comparator, threshold, min_sample))
}

/// Timely: the window the metric is computed over, at least one check-in.
fn window(d: &GoalDraft<'_>, check_in_hours: f64) -> Result<f64, GoalError> {
    use GoalField as F;
    use Smart::*;
    let window_text = d.window.ok_or_else(|| {
        err(
            Timely,
            F::Goal,
            "no window: say the period the metric is computed over, e.g. window = \"24h\"",
        )
    })?;
    let window_hours = parse_hours(window_text).ok_or_else(|| {
        err(
            Timely,
            F::Window,
            format!("`{window_text}` is not a duration such as 24h or 2d"),
        )
    })?;
    if window_hours < check_in_hours {
        return Err(err(
            Realistic,
            F::Window,
            format!(
                "a window of {} is shorter than the {} check-in interval: most devices will not have reported",
                hours_text(window_hours),
                hours_text(check_in_hours)
            ),
        ));
    }
    Ok(window_hours)
}

/// Timely: a day, or a duration of at least one window.
fn deadline(d: &GoalDraft<'_>, window_hours: f64) -> Result<Deadline, GoalError> {
    use GoalField as F;
    use Smart::*;
    let deadline_text = d.deadline.ok_or_else(|| {
        err(
            Timely,
            F::Goal,
            "no deadline: say by when the goal must be met, e.g. deadline = \"7d\" or a day",
        )
    })?;
    if let Ok(day) = deadline_text.trim().parse::<jiff::civil::Date>() {
        return Ok(Deadline::Day(day));
    }
    let h = parse_hours(deadline_text).ok_or_else(|| {
        err(
            Timely,
            F::Deadline,
            format!("`{deadline_text}` is neither a duration (7d) nor a day (YYYY-MM-DD)"),
        )
    })?;
    if h < window_hours {
        return Err(err(
            Timely,
            F::Deadline,
            format!(
                "the deadline ({}) comes before one window ({}) has passed",
                hours_text(h),
                hours_text(window_hours)
            ),
        ));
    }
    Ok(Deadline::AfterHours(h))
}

/// `<= control + 2`: Some(margin) when the bar names the control, None otherwise.
fn control_margin(s: &str) -> Option<Result<f64, String>> {
    let t = s.trim();
    let rest = t.strip_prefix("<=").or(t.strip_prefix('≤'))?.trim_start();
    let rest = rest.strip_prefix("control")?.trim();
    if rest.is_empty() {
        return Some(Ok(0.0));
    }
    let margin = rest
        .strip_prefix('+')
        .map(str::trim)
        .and_then(|m| m.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0));
    Some(margin.ok_or_else(|| {
        format!("`{t}`: a bar against the control reads `<= control + 2` (a margin of at least 0)")
    }))
}

/// `>= 95%`, `<=2`, `≥ 4.5`; a bare number means the metric's good direction.
fn parse_threshold(s: &str, metric: Metric) -> Result<(Comparator, f64), String> {
    let t = s.trim();
    let (cmp, rest) = if let Some(r) = t.strip_prefix(">=").or(t.strip_prefix('≥')) {
        (Some(Comparator::AtLeast), r)
    } else if let Some(r) = t.strip_prefix("<=").or(t.strip_prefix('≤')) {
        (Some(Comparator::AtMost), r)
    } else if t.starts_with(['<', '>', '=']) {
        return Err(format!(
            "`{t}`: use >= or <= (a goal is a bar, not an exact value)"
        ));
    } else {
        (None, t)
    };
    let rest = rest.trim();
    let (num, percent) = match rest.strip_suffix('%') {
        Some(n) => (n.trim(), true),
        None => (rest, false),
    };
    let mut v: f64 = num
        .parse()
        .map_err(|_| format!("`{t}` is not a bar such as \">= 95%\" or \"<= 2\""))?;
    if !v.is_finite() {
        return Err(format!("`{t}` is not a finite number"));
    }
    if percent {
        if !metric.is_rate() {
            return Err(format!(
                "{} is not a rate; give a number without %",
                metric.label()
            ));
        }
        v /= 100.0;
    } else if metric.is_rate() && v > 1.0 {
        return Err(format!(
            "`{t}`: rates are written as a percentage (`95%`) or a share (`0.95`)"
        ));
    }
    let cmp = cmp.unwrap_or(if metric.higher_is_better() {
        Comparator::AtLeast
    } else {
        Comparator::AtMost
    });
    Ok((cmp, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> GoalDraft<'static> {
        GoalDraft {
            metric: Some("apply_success_rate"),
            threshold: Some(">= 95%"),
            window: Some("24h"),
            min_sample: Some(50),
            deadline: Some("7d"),
            after: None,
            critical: true,
        }
    }

    #[test]
    fn a_complete_goal_passes() {
        let g = validate(&draft(), 8.0, Some(100)).unwrap();
        assert_eq!(g.threshold, 0.95);
        assert_eq!(g.window_hours, 24.0);
        assert_eq!(g.deadline, Deadline::AfterHours(168.0));
        assert_eq!(
            g.sentence(),
            "apply success rate ≥ 95 % over 1 d, from at least 50 devices, within 7 d of the start"
        );
    }

    #[test]
    fn a_goal_needs_its_window_and_a_pending_goal_its_after_too() {
        let g = validate(&draft(), 8.0, None).unwrap();
        assert_eq!(g.hours_needed(), 24.0);
        assert_eq!(
            g.need_text(),
            "apply success rate ≥ 95 % is measured over 1 d"
        );
        let pending = GoalDraft {
            metric: Some("pending_after"),
            after: Some("3d"),
            threshold: Some("<= 15%"),
            ..draft()
        };
        let g = validate(&pending, 8.0, None).unwrap();
        assert_eq!(g.hours_needed(), 72.0);
        assert_eq!(
            g.need_text(),
            "pending after 3 d ≤ 15 % is judged only from 3 d after a wave starts"
        );
        // A window longer than `after` is what it needs.
        let g = validate(
            &GoalDraft {
                window: Some("4d"),
                ..pending
            },
            8.0,
            None,
        )
        .unwrap();
        assert_eq!(g.hours_needed(), 96.0);
        assert_eq!(
            g.need_text(),
            "pending after 3 d ≤ 15 % is measured over 4 d"
        );
    }

    #[test]
    fn each_missing_or_wrong_part_names_its_smart_property() {
        let cases: Vec<(GoalDraft<'static>, Smart, GoalField)> = vec![
            (
                GoalDraft {
                    metric: None,
                    ..draft()
                },
                Smart::Specific,
                GoalField::Goal,
            ),
            (
                GoalDraft {
                    metric: Some("happiness"),
                    ..draft()
                },
                Smart::Specific,
                GoalField::Metric,
            ),
            (
                GoalDraft {
                    metric: Some("pending_after"),
                    threshold: Some("<= 5%"),
                    ..draft()
                },
                Smart::Specific,
                GoalField::Metric,
            ),
            (
                GoalDraft {
                    threshold: None,
                    ..draft()
                },
                Smart::Measurable,
                GoalField::Goal,
            ),
            (
                GoalDraft {
                    threshold: Some("most"),
                    ..draft()
                },
                Smart::Measurable,
                GoalField::Threshold,
            ),
            (
                GoalDraft {
                    min_sample: None,
                    ..draft()
                },
                Smart::Measurable,
                GoalField::Goal,
            ),
            (
                GoalDraft {
                    threshold: Some(">= 120%"),
                    ..draft()
                },
                Smart::Attainable,
                GoalField::Threshold,
            ),
            (
                GoalDraft {
                    min_sample: Some(500),
                    ..draft()
                },
                Smart::Attainable,
                GoalField::MinSample,
            ),
            (
                GoalDraft {
                    threshold: Some("<= 95%"),
                    ..draft()
                },
                Smart::Realistic,
                GoalField::Threshold,
            ),
            (
                GoalDraft {
                    threshold: Some(">= 100%"),
                    ..draft()
                },
                Smart::Realistic,
                GoalField::Threshold,
            ),
            (
                GoalDraft {
                    window: Some("1h"),
                    ..draft()
                },
                Smart::Realistic,
                GoalField::Window,
            ),
            (
                GoalDraft {
                    window: None,
                    ..draft()
                },
                Smart::Timely,
                GoalField::Goal,
            ),
            (
                GoalDraft {
                    deadline: None,
                    ..draft()
                },
                Smart::Timely,
                GoalField::Goal,
            ),
            (
                GoalDraft {
                    deadline: Some("12h"),
                    ..draft()
                },
                Smart::Timely,
                GoalField::Deadline,
            ),
            (
                GoalDraft {
                    deadline: Some("soon"),
                    ..draft()
                },
                Smart::Timely,
                GoalField::Deadline,
            ),
        ];
        for (d, property, field) in cases {
            let e = validate(&d, 8.0, Some(100)).expect_err(&format!("{d:?} should fail"));
            assert_eq!((e.property, e.field), (property, field), "{d:?}: {e}");
        }
    }

    #[test]
    fn metrics_with_their_own_scales() {
        let g = validate(
            &GoalDraft {
                metric: Some("pending_after"),
                after: Some("2d"),
                threshold: Some("5%"),
                ..draft()
            },
            8.0,
            None,
        )
        .unwrap();
        assert_eq!(g.metric, Metric::PendingAfter { hours: 48.0 });
        assert_eq!(g.comparator, Comparator::AtMost);
        let g = validate(
            &GoalDraft {
                metric: Some("pilot_feedback_score"),
                threshold: Some(">= 4"),
                min_sample: Some(500),
                deadline: Some("2027-01-31"),
                ..draft()
            },
            8.0,
            Some(100),
        )
        .unwrap();
        assert_eq!(g.deadline, Deadline::Day(jiff::civil::date(2027, 1, 31)));
        let e = validate(
            &GoalDraft {
                metric: Some("tickets_per_100_devices"),
                threshold: Some("<= 2%"),
                ..draft()
            },
            8.0,
            None,
        )
        .unwrap_err();
        assert_eq!(e.property, Smart::Measurable);
    }

    #[test]
    fn ticket_rates_may_be_judged_against_the_control() {
        let tickets = |threshold| GoalDraft {
            metric: Some("tickets_per_1000_device_days"),
            threshold: Some(threshold),
            ..draft()
        };
        let g = validate(&tickets("<= control + 2"), 8.0, None).unwrap();
        assert_eq!((g.threshold, g.against_control), (2.0, true));
        assert_eq!(g.comparator, Comparator::AtMost);
        assert!(
            g.sentence()
                .starts_with("tickets per 1000 device days ≤ control + 2 over 1 d"),
            "{}",
            g.sentence()
        );
        let g = validate(&tickets("≤ control"), 8.0, None).unwrap();
        assert_eq!((g.threshold, g.against_control), (0.0, true));
        let g = validate(&tickets("<= 8"), 8.0, None).unwrap();
        assert_eq!((g.threshold, g.against_control), (8.0, false));
        for bad in ["<= control - 2", "<= control + lots", "<= control + -1"] {
            let e = validate(&tickets(bad), 8.0, None).unwrap_err();
            assert_eq!(
                (e.property, e.field),
                (Smart::Measurable, GoalField::Threshold),
                "{bad}"
            );
            assert!(e.message.contains("control + 2"), "{e}");
        }
        let e = validate(
            &GoalDraft {
                threshold: Some("<= control + 1"),
                ..draft()
            },
            8.0,
            None,
        )
        .unwrap_err();
        assert!(
            e.message.contains("only tickets_per_1000_device_days"),
            "{e}"
        );
    }

    #[test]
    fn each_part_checks_its_own_fields() {
        let pending = GoalDraft {
            metric: Some("pending_after"),
            after: Some("3d"),
            ..draft()
        };
        assert_eq!(metric(&pending), Ok(Metric::PendingAfter { hours: 72.0 }));
        let e = metric(&GoalDraft {
            after: None,
            ..pending
        })
        .unwrap_err();
        assert_eq!((e.property, e.field), (Smart::Specific, GoalField::Metric));

        assert_eq!(
            bar(&draft(), Metric::ApplySuccessRate, Some(1000)),
            Ok((Comparator::AtLeast, 0.95, draft().min_sample.unwrap()))
        );
        let e = bar(&draft(), Metric::ErrorRate, None).unwrap_err();
        assert_eq!(
            (e.property, e.field),
            (Smart::Realistic, GoalField::Threshold)
        );
        let e = bar(&draft(), Metric::ApplySuccessRate, Some(1)).unwrap_err();
        assert_eq!(
            (e.property, e.field),
            (Smart::Attainable, GoalField::MinSample)
        );

        assert_eq!(window(&draft(), 8.0), Ok(24.0));
        let e = window(&draft(), 48.0).unwrap_err();
        assert_eq!((e.property, e.field), (Smart::Realistic, GoalField::Window));

        assert_eq!(
            deadline(
                &GoalDraft {
                    deadline: Some("2027-03-01"),
                    ..draft()
                },
                24.0
            ),
            Ok(Deadline::Day("2027-03-01".parse().unwrap()))
        );
        assert_eq!(
            deadline(
                &GoalDraft {
                    deadline: Some("2d"),
                    ..draft()
                },
                24.0
            ),
            Ok(Deadline::AfterHours(48.0))
        );
        let e = deadline(
            &GoalDraft {
                deadline: Some("12h"),
                ..draft()
            },
            24.0,
        )
        .unwrap_err();
        assert_eq!((e.property, e.field), (Smart::Timely, GoalField::Deadline));
    }
}
