//! The run state's alert rules: the built-in ones with the plan's changes.

use super::parse::{parse_duration, perr};
use crate::PlanError;
use ringmaster_core::alerts;

/// The run state's alert rules: each `[[alerts]]` entry replaces the
/// built-in rule of its kind, keeping the parts it leaves out.
pub(super) fn alert_rules(
    specs: &[crate::spec::AlertSpec],
    errs: &mut Vec<PlanError>,
) -> Vec<alerts::Rule> {
    let mut overrides: Vec<(&'static str, Option<alerts::Rule>)> = Vec::new();
    for a in specs {
        let name = a.kind.get_ref().trim();
        let Some(kind) = alerts::KINDS.iter().copied().find(|k| *k == name) else {
            errs.push(perr(
                a.kind.span(),
                format!(
                    "unknown alert kind `{name}`; expected one of {}",
                    alerts::KINDS.join(", ")
                ),
            ));
            continue;
        };
        if overrides.iter().any(|(k, _)| *k == kind) {
            errs.push(perr(
                a.kind.span(),
                format!(
                    "alert kind `{kind}` has a rule already; give each kind one `[[alerts]]` entry"
                ),
            ));
            continue;
        }
        let mut rule = alerts::DEFAULT_RULES
            .iter()
            .copied()
            .find(|r| r.kind == kind)
            .unwrap_or(alerts::Rule {
                kind,
                severity: alerts::Severity::Warning,
                hold_secs: 0,
                min_share: 0.0,
            });
        if let Some(sev) = &a.severity {
            match sev.get_ref().trim() {
                "off" => {
                    overrides.push((kind, None));
                    continue;
                }
                t => match alerts::Severity::parse(t) {
                    Some(v) => rule.severity = v,
                    None => errs.push(perr(
                        sev.span(),
                        format!("`{t}` is not a severity; use info, warning, critical or off"),
                    )),
                },
            }
        }
        if let Some(h) = &a.hold {
            // parse_duration wants more than zero; a hold may be zero.
            if h.get_ref()
                .trim()
                .parse::<jiff::Span>()
                .is_ok_and(|s| s.is_zero())
            {
                rule.hold_secs = 0;
            } else if let Some(hours) = parse_duration(h, "hold", errs) {
                rule.hold_secs = (hours * 3600.0).round() as i64;
            }
        }
        if let Some(m) = &a.min_share {
            let t = m.get_ref().trim();
            match t
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<f64>().ok())
                .filter(|v| (0.0..=100.0).contains(v))
            {
                Some(v) => rule.min_share = v / 100.0,
                None => errs.push(perr(
                    m.span(),
                    format!("`{t}` is not a share such as 0% or 2% (0 to 100)"),
                )),
            }
        }
        overrides.push((kind, Some(rule)));
    }
    alerts::rules_with(&overrides)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::fixture::{messages, plan_file};

    fn rules(entries: &str) -> (Vec<alerts::Rule>, Vec<PlanError>) {
        let spec = plan_file(entries);
        let mut errs = Vec::new();
        (alert_rules(&spec.alerts, &mut errs), errs)
    }

    #[test]
    fn without_entries_the_built_in_rules_hold() {
        let (r, errs) = rules("");
        assert!(errs.is_empty());
        assert_eq!(r, alerts::rules_with(&[]));
    }

    #[test]
    fn an_entry_replaces_the_parts_it_names() {
        let (r, errs) = rules(
            "[[alerts]]\nkind = \"regressed\"\nseverity = \"critical\"\nhold = \"0h\"\nmin_share = \"2%\"\n[[alerts]]\nkind = \"tickets\"\nseverity = \"off\"\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        let regressed = r.iter().find(|r| r.kind == "regressed").unwrap();
        assert_eq!(regressed.severity, alerts::Severity::Critical);
        assert_eq!(regressed.hold_secs, 0);
        assert_eq!(regressed.min_share, 0.02);
        assert!(r.iter().all(|r| r.kind != "tickets"), "switched off");
        let (r, _) = rules("[[alerts]]\nkind = \"outlier\"\nhold = \"2h\"\n");
        let outlier = r.iter().find(|r| r.kind == "outlier").unwrap();
        assert_eq!(outlier.hold_secs, 7200);
    }

    #[test]
    fn bad_entries_are_errors() {
        let (_, errs) = rules(
            "[[alerts]]\nkind = \"regression\"\n[[alerts]]\nkind = \"tickets\"\nseverity = \"loud\"\nmin_share = \"200%\"\n[[alerts]]\nkind = \"tickets\"\n",
        );
        let m = messages(&errs);
        assert_eq!(m.len(), 4, "{m:?}");
        assert!(m[0].starts_with("unknown alert kind `regression`; expected one of "));
        assert_eq!(
            m[1],
            "`loud` is not a severity; use info, warning, critical or off"
        );
        assert_eq!(m[2], "`200%` is not a share such as 0% or 2% (0 to 100)");
        assert_eq!(
            m[3],
            "alert kind `tickets` has a rule already; give each kind one `[[alerts]]` entry"
        );
    }
}
