//! Alerts from the run state. What the run state finds becomes signals,
//! grouped (all regressed devices are one signal, with their count) and
//! keyed (`service_level:error_rate`, `outlier:OS build:10.0.26200`). A
//! signal must hold for its rule's time before it raises an alert, so a
//! blip raises nothing; an alert is raised once per key however long the
//! signal lasts, and resolves when the signal is gone. Pure: the caller
//! stores the open alerts and passes them back with the next signals.

use crate::gates::Outcome;
use crate::runstate::RunState;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .find(|v| v.name() == s)
    }
}

/// Something the run state shows now.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub key: String,
    pub kind: &'static str,
    pub text: String,
    /// The share of the population it concerns (1 when not a count of devices).
    pub share: f64,
}

/// How a kind of signal alerts: how bad, how long it must hold first, and
/// the share of the population it must reach.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rule {
    pub kind: &'static str,
    pub severity: Severity,
    pub hold_secs: i64,
    pub min_share: f64,
}

/// The rules used when a plan sets none. The run state is checked every
/// few hours (4 by default, half a device check-in): a failing service
/// level, an outlier or a rise in tickets must show in two checks in a
/// row, so one odd batch of reports raises nothing, and is still raised
/// within a check-in of the data showing it. A device that regressed, a
/// new conflict, or devices past their service level's time are facts,
/// raised at once; devices past their time must be 2 % of the population,
/// as every fleet has some that are switched off for weeks.
pub const DEFAULT_RULES: [Rule; 6] = [
    Rule {
        kind: "service_level",
        severity: Severity::Critical,
        hold_secs: 4 * 3600,
        min_share: 0.0,
    },
    Rule {
        kind: "regressed",
        severity: Severity::Critical,
        hold_secs: 0,
        min_share: 0.0,
    },
    Rule {
        kind: "conflict",
        severity: Severity::Critical,
        hold_secs: 0,
        min_share: 0.0,
    },
    Rule {
        kind: "outlier",
        severity: Severity::Warning,
        hold_secs: 4 * 3600,
        min_share: 0.0,
    },
    Rule {
        kind: "overdue",
        severity: Severity::Warning,
        hold_secs: 0,
        min_share: 0.02,
    },
    Rule {
        kind: "tickets",
        severity: Severity::Warning,
        hold_secs: 4 * 3600,
        min_share: 0.0,
    },
];

impl Rule {
    /// The rule in words, for the plan report.
    pub fn sentence(&self) -> String {
        let hold = match self.hold_secs {
            0 => "at once".to_string(),
            s if s % 86_400 == 0 => format!("after holding {} d", s / 86_400),
            s if s % 3600 == 0 => format!("after holding {} h", s / 3600),
            s => format!("after holding {} min", (s + 59) / 60),
        };
        let share = if self.min_share > 0.0 {
            format!(", once it concerns {}% of the devices in scope", {
                let p = self.min_share * 100.0;
                if p.fract() == 0.0 {
                    format!("{p:.0}")
                } else {
                    format!("{p}")
                }
            })
        } else {
            String::new()
        };
        format!(
            "{} raises a {} alert {hold}{share}",
            self.kind,
            self.severity.name()
        )
    }
}

/// The rules a plan asks for: the defaults, each kind replaced by the
/// plan's rule when it names one; `None` turns a kind off.
pub fn rules_with(overrides: &[(&'static str, Option<Rule>)]) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    for d in DEFAULT_RULES {
        match overrides.iter().find(|(k, _)| *k == d.kind) {
            Some((_, Some(r))) => out.push(*r),
            Some((_, None)) => {}
            None => out.push(d),
        }
    }
    out
}

/// Signal kinds, for rules given by name.
pub const KINDS: [&str; 6] = [
    "service_level",
    "regressed",
    "conflict",
    "outlier",
    "overdue",
    "tickets",
];

/// An alert, pending (seen, not held long enough yet) or raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub key: String,
    pub kind: String,
    pub severity: Severity,
    pub text: String,
    pub first_seen: i64,
    pub raised_at: Option<i64>,
    pub resolved_at: Option<i64>,
    /// Who acknowledged it, and when: it stays open until its signal goes.
    pub acknowledged: Option<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Raised(Alert),
    Resolved(Alert),
}

/// The signals a run state gives, grouped and keyed.
pub fn signals(r: &RunState) -> Vec<Signal> {
    let mut out = Vec::new();
    let share = |n: usize| n as f64 / r.devices.max(1) as f64;
    for e in r
        .service_levels
        .iter()
        .filter(|e| e.outcome == Outcome::Fail)
    {
        out.push(Signal {
            key: format!("service_level:{}", e.metric.name()),
            kind: "service_level",
            text: e.sentence.clone(),
            share: 1.0,
        });
    }
    if !r.regressed.is_empty() {
        out.push(Signal {
            key: "regressed".into(),
            kind: "regressed",
            text: format!(
                "{} device(s) that had succeeded now report an error or a conflict",
                r.regressed.len()
            ),
            share: share(r.regressed.len()),
        });
    }
    if !r.overdue.is_empty() {
        out.push(Signal {
            key: "overdue".into(),
            kind: "overdue",
            text: format!(
                "{} device(s) entered the scope and have not reported within the service level's time",
                r.overdue.len()
            ),
            share: share(r.overdue.len()),
        });
    }
    for o in &r.outliers {
        out.push(Signal {
            key: format!("outlier:{}:{}", o.dimension, o.value),
            kind: "outlier",
            text: o.sentence.clone(),
            share: 1.0,
        });
    }
    out
}

/// A conflict between a rolled-out policy and another one, on `devices`
/// devices of the scope: one signal per setting and set of policies.
pub fn conflict_signal(f: &crate::conflicts::Finding, devices: u64) -> Signal {
    let k = f.key();
    let values: Vec<String> = f
        .values
        .iter()
        .map(|v| format!("'{}' = {}", v.name, v.value))
        .collect();
    Signal {
        key: format!("conflict:{}:{}", k.setting_id, k.policies.join("+")),
        kind: "conflict",
        text: format!(
            "{} ({}) now conflicts on {devices} device(s) in scope: {}",
            f.setting,
            f.setting_id,
            values.join(" vs ")
        ),
        share: 1.0,
    }
}

/// Tickets opened in the last `days` against the `days` before: a rise is
/// at least 10 tickets and at least twice as many as before (a quiet week
/// after a busy one is not a rise; a handful is noise).
pub fn ticket_rise(recent: u64, before: u64, days: u32) -> Option<Signal> {
    (recent >= 10 && recent >= 2 * before).then(|| Signal {
        key: "tickets".into(),
        kind: "tickets",
        text: format!(
            "{recent} help-desk tickets about the policy in the last {days} days, against {before} in the {days} days before"
        ),
        share: 1.0,
    })
}

/// The open alerts after this round's `signals`, and what changed: raised
/// (held long enough) or resolved (the signal went). A pending alert whose
/// signal goes is dropped without a word. A signal below its rule's share,
/// or of a kind no rule names (turned off in the plan), counts as absent.
pub fn reconcile(
    open: &[Alert],
    signals: &[Signal],
    rules: &[Rule],
    now: i64,
) -> (Vec<Alert>, Vec<Change>) {
    let mut next = Vec::new();
    let mut changes = Vec::new();
    let rule_of = |s: &Signal| rules.iter().find(|r| r.kind == s.kind).copied();
    let signals: Vec<(&Signal, Rule)> = signals
        .iter()
        .filter_map(|s| rule_of(s).map(|r| (s, r)))
        .filter(|(s, r)| s.share >= r.min_share)
        .collect();
    for &(s, rule) in &signals {
        let mut a = open
            .iter()
            .find(|a| a.key == s.key && a.resolved_at.is_none())
            .cloned()
            .unwrap_or_else(|| Alert {
                key: s.key.clone(),
                kind: s.kind.to_string(),
                severity: rule.severity,
                text: s.text.clone(),
                first_seen: now,
                raised_at: None,
                resolved_at: None,
                acknowledged: None,
            });
        a.text = s.text.clone();
        if a.raised_at.is_none() && now - a.first_seen >= rule.hold_secs {
            a.raised_at = Some(now);
            changes.push(Change::Raised(a.clone()));
        }
        next.push(a);
    }
    for a in open.iter().filter(|a| a.resolved_at.is_none()) {
        if signals.iter().any(|(s, _)| s.key == a.key) || a.raised_at.is_none() {
            continue;
        }
        let mut gone = a.clone();
        gone.resolved_at = Some(now);
        changes.push(Change::Resolved(gone));
    }
    (next, changes)
}

/// Marks an open alert acknowledged; false when there is none with that key.
pub fn acknowledge(open: &mut [Alert], key: &str, who: &str, now: i64) -> bool {
    match open
        .iter_mut()
        .find(|a| a.key == key && a.raised_at.is_some())
    {
        Some(a) => {
            a.acknowledged = Some((who.to_string(), now));
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(key: &str, kind: &'static str) -> Signal {
        Signal {
            key: key.into(),
            kind,
            text: format!("{key} now"),
            share: 0.05,
        }
    }

    #[test]
    fn a_signal_raises_once_after_holding_and_resolves_when_gone() {
        let h = 3600;
        let s = [sig("outlier:OS build:10.0.26200", "outlier")];
        let (open, c) = reconcile(&[], &s, &DEFAULT_RULES, 0);
        assert!(c.is_empty(), "not held for 4 h yet");
        assert_eq!(open[0].raised_at, None);
        let (open, c) = reconcile(&open, &s, &DEFAULT_RULES, 3 * h);
        assert!(c.is_empty());
        let (open, c) = reconcile(&open, &s, &DEFAULT_RULES, 4 * h);
        assert!(matches!(&c[..], [Change::Raised(a)] if a.severity == Severity::Warning));
        // Still there an hour later: the same alert, not a second one.
        let (open, c) = reconcile(&open, &s, &DEFAULT_RULES, 9 * h);
        assert!(c.is_empty());
        assert_eq!(open.len(), 1);
        let (open, c) = reconcile(&open, &[], &DEFAULT_RULES, 10 * h);
        assert!(matches!(&c[..], [Change::Resolved(a)] if a.resolved_at == Some(10 * h)));
        assert!(open.is_empty());
    }

    #[test]
    fn a_signal_below_its_share_counts_as_absent() {
        let mut few = sig("overdue", "overdue");
        few.share = 0.01;
        let (open, c) = reconcile(&[], std::slice::from_ref(&few), &DEFAULT_RULES, 0);
        assert!(
            open.is_empty() && c.is_empty(),
            "1 % is below the 2 % asked"
        );
        let (open, c) = reconcile(&[], &[sig("overdue", "overdue")], &DEFAULT_RULES, 0);
        assert!(matches!(&c[..], [Change::Raised(_)]));
        // Back under the share: resolved.
        let (_, c) = reconcile(&open, &[few], &DEFAULT_RULES, 3600);
        assert!(matches!(&c[..], [Change::Resolved(_)]));
    }

    #[test]
    fn a_plan_replaces_or_turns_off_a_kind() {
        let strict = Rule {
            kind: "outlier",
            severity: Severity::Critical,
            hold_secs: 0,
            min_share: 0.0,
        };
        let rules = rules_with(&[("outlier", Some(strict)), ("tickets", None)]);
        assert_eq!(rules.len(), DEFAULT_RULES.len() - 1);
        assert!(rules.iter().all(|r| r.kind != "tickets"));
        let s = [sig("outlier:Model:X", "outlier"), sig("tickets", "tickets")];
        let (open, c) = reconcile(&[], &s, &rules, 0);
        assert!(
            matches!(&c[..], [Change::Raised(a)] if a.key == "outlier:Model:X" && a.severity == Severity::Critical),
            "raised at once, critical; tickets are off: {c:?}"
        );
        // Turning a kind off resolves its open alerts.
        let (_, c) = reconcile(&open, &s, &rules_with(&[("outlier", None)]), 60);
        assert!(matches!(&c[..], [Change::Resolved(a)] if a.key == "outlier:Model:X"));
        assert_eq!(
            DEFAULT_RULES[4].sentence(),
            "overdue raises a warning alert at once, once it concerns 2% of the devices in scope"
        );
        assert_eq!(
            DEFAULT_RULES[0].sentence(),
            "service_level raises a critical alert after holding 4 h"
        );
    }

    #[test]
    fn tickets_rise_only_when_many_and_doubled() {
        assert!(ticket_rise(9, 0, 7).is_none(), "a handful is noise");
        assert!(ticket_rise(30, 20, 7).is_none(), "not doubled");
        let s = ticket_rise(40, 20, 7).unwrap();
        assert_eq!((s.key.as_str(), s.kind), ("tickets", "tickets"));
        assert!(s.text.contains("40 help-desk tickets"), "{}", s.text);
        assert!(
            DEFAULT_RULES.iter().all(|r| KINDS.contains(&r.kind)),
            "every default rule names a known kind"
        );
    }

    #[test]
    fn a_blip_raises_nothing_and_regressions_raise_at_once() {
        let blip = [sig("service_level:error_rate", "service_level")];
        let (open, c) = reconcile(&[], &blip, &DEFAULT_RULES, 0);
        assert!(c.is_empty());
        let (open, c) = reconcile(&open, &[], &DEFAULT_RULES, 3600);
        assert!(
            c.is_empty() && open.is_empty(),
            "gone before it held: nothing to resolve"
        );
        let (mut open, c) = reconcile(&[], &[sig("regressed", "regressed")], &DEFAULT_RULES, 0);
        assert!(matches!(&c[..], [Change::Raised(a)] if a.severity == Severity::Critical));
        assert!(acknowledge(&mut open, "regressed", "jane", 60));
        assert!(!acknowledge(&mut open, "overdue", "jane", 60));
        // Acknowledged alerts stay open while their signal lasts.
        let (open, c) = reconcile(
            &open,
            &[sig("regressed", "regressed")],
            &DEFAULT_RULES,
            3600,
        );
        assert!(c.is_empty());
        assert_eq!(open[0].acknowledged, Some(("jane".into(), 60)));
    }
}
