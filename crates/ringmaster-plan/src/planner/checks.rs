//! What the new policies meet: project-scope checks on each policy, the
//! conflicts with the policies they share settings with, and the settings
//! that change on the devices in scope.

use super::parse::parse_date;
use super::{Change, Check, CheckSeverity};
use crate::PlanError;
use crate::spec::{AcceptSpec, PhaseKind};
use ringmaster_core::conflicts::{self, Acceptance, ConflictReport, FindingKind};
use ringmaster_core::org::Org;
use ringmaster_core::settings::{LeafKind, readable_name, readable_value};
use ringmaster_core::targeting::{Resolution, Severity};
use roaring::RoaringBitmap;

/// Per new policy: no platform is an error; devices of the targeted groups
/// it cannot take and the resolver's findings about it are checks.
pub(super) fn policy_checks(
    org: &Org,
    res: &Resolution,
    new_policies: &[usize],
    targeted: &RoaringBitmap,
    checks: &mut Vec<Check>,
) {
    for &p in new_policies {
        let pol = &org.policies[p];
        if pol.platforms.is_empty() {
            checks.push(Check::new(
                CheckSeverity::Error,
                PhaseKind::ProjectScope,
                format!(
                    "new policy '{}' has no platform: Intune cannot tell which devices can take it",
                    pol.name
                ),
            ));
        }
        let na = res.policies[p].not_applicable.intersection_len(targeted);
        if na > 0 {
            let by: Vec<String> = res.policies[p]
                .not_applicable_by_platform
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            checks.push(Check::new(
                CheckSeverity::Warning,
                PhaseKind::ProjectScope,
                format!(
                    "new policy '{}' reaches {na} device(s) in scope that cannot take it (not applicable: {})",
                    pol.name,
                    by.join(", ")
                ),
            ));
        }
        let subject = format!("policy '{}'", pol.name);
        for d in res.diagnostics.iter().filter(|d| d.subject == subject) {
            checks.push(Check::new(
                if d.severity == Severity::Error {
                    CheckSeverity::Error
                } else {
                    CheckSeverity::Warning
                },
                PhaseKind::ProjectScope,
                format!("new policy '{}': {}", pol.name, d.message),
            ));
        }
    }
}

/// The policies the new ones meet: the new ones and every policy that sets
/// one of their settings, in the org's order.
pub(super) fn met_policies(org: &Org, is_new: &[bool], new_policies: &[usize]) -> Vec<usize> {
    let new_ids: rustc_hash::FxHashSet<&str> = new_policies
        .iter()
        .flat_map(|&p| org.policies[p].settings.iter().map(|l| l.id.as_str()))
        .collect();
    (0..org.policies.len())
        .filter(|&p| {
            is_new[p]
                || org.policies[p]
                    .settings
                    .iter()
                    .any(|l| new_ids.contains(l.id.as_str()))
        })
        .collect()
}

/// The plan's `[[accept]]` entries; one with a bad expiry day is left out
/// with its error.
pub(super) fn acceptances(accept: &[AcceptSpec], errs: &mut Vec<PlanError>) -> Vec<Acceptance> {
    accept
        .iter()
        .filter_map(|a| {
            Some(Acceptance {
                setting: a.setting.clone(),
                policies: a.policies.clone(),
                reason: a.reason.clone(),
                expires: parse_date(&a.expires, "expires", errs)?,
            })
        })
        .collect()
}

/// Analyses the conflicts of the new policies (`analysis.proposed`) with
/// what they meet and turns each finding that involves a new policy into a
/// check, counted on the devices in scope.
pub(super) fn conflict_checks(
    org: &Org,
    res: &Resolution,
    analysis: &conflicts::Scope<'_>,
    scope: &RoaringBitmap,
    checks: &mut Vec<Check>,
) -> ConflictReport {
    let is_new = analysis.proposed;
    let report = conflicts::analyze(org, res, analysis);
    for f in report.findings.iter().filter(|f| {
        f.values
            .iter()
            .any(|v| org.policy(&v.policy_id).is_some_and(|p| is_new[p]))
    }) {
        let within = f.affected.intersection_len(scope);
        let values = f
            .values
            .iter()
            .map(|v| format!("'{}' = {}", v.name, v.label.as_deref().unwrap_or(&v.value)))
            .collect::<Vec<_>>()
            .join(" vs ");
        let (severity, what) = match (&f.accepted, f.kind) {
            (Some(a), _) if !a.expired => (
                CheckSeverity::Info,
                format!("accepted until {}: {}", a.expires, a.reason),
            ),
            (_, FindingKind::Conflict) => (CheckSeverity::Error, "conflict".to_string()),
            (_, FindingKind::Unverifiable) => (
                CheckSeverity::Warning,
                "unverifiable (custom OMA-URI or payload)".to_string(),
            ),
            (_, FindingKind::MayBeNotConfigured) => (
                CheckSeverity::Info,
                format!(
                    "may be not configured ({})",
                    f.values
                        .iter()
                        .filter_map(|v| v.maybe_default.as_deref())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
            (_, FindingKind::NothingDelivered) => (
                CheckSeverity::Error,
                format!(
                    "nothing delivered: {}",
                    f.effective.clone().unwrap_or_default()
                ),
            ),
            (_, FindingKind::MostRestrictive)
            | (_, FindingKind::ComplianceWins)
            | (_, FindingKind::MostSecure)
            | (_, FindingKind::UserScopeWins) => (
                CheckSeverity::Info,
                format!("resolves to {}", f.effective.clone().unwrap_or_default()),
            ),
        };
        checks.push(Check::new(
            severity,
            PhaseKind::ProjectScope,
            format!(
                "{}: {what} on {within} device(s) in scope — {values}",
                f.setting
            ),
        ));
    }
    report
}

/// For every setting of the new policies: the new value and what the devices
/// in scope it reaches have today from existing policies.
pub(super) fn settings_changes(
    org: &Org,
    res: &Resolution,
    new_policies: &[usize],
    is_new: &[bool],
    scope: &RoaringBitmap,
) -> Vec<Change> {
    let mut existing: rustc_hash::FxHashMap<&str, Vec<(usize, &str)>> = Default::default();
    let wanted: rustc_hash::FxHashSet<&str> = new_policies
        .iter()
        .flat_map(|&p| org.policies[p].settings.iter().map(|l| l.id.as_str()))
        .collect();
    for (p, pol) in org.policies.iter().enumerate() {
        if is_new[p] {
            continue;
        }
        for l in pol.settings.iter() {
            if wanted.contains(l.id.as_str()) {
                existing
                    .entry(l.id.as_str())
                    .or_default()
                    .push((p, l.value.as_str()));
            }
        }
    }
    let mut out = Vec::new();
    for &p in new_policies {
        let reach = res.policies[p].applicable() & scope;
        let reach = if reach.is_empty() {
            scope.clone()
        } else {
            reach
        };
        for l in org.policies[p].settings.iter() {
            // Devices per value: two policies setting one value on the same
            // devices count them once.
            let mut by_value: Vec<(String, RoaringBitmap)> = Vec::new();
            let mut covered = RoaringBitmap::new();
            for (e, value) in existing.get(l.id.as_str()).into_iter().flatten() {
                let on = res.policies[*e].applicable() & &reach;
                if on.is_empty() {
                    continue;
                }
                covered |= &on;
                let value = readable_value(&l.id, value);
                match by_value.iter_mut().find(|(v, _)| *v == value) {
                    Some((_, devices)) => *devices |= on,
                    None => by_value.push((value, on)),
                }
            }
            let mut today: Vec<(String, u64)> =
                (by_value.into_iter()).map(|(v, d)| (v, d.len())).collect();
            today.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            out.push(Change {
                setting_id: l.id.clone(),
                setting: readable_name(&l.id),
                value: match l.kind {
                    LeafKind::Merge => format!("adds {}", l.value),
                    _ => readable_value(&l.id, &l.value),
                },
                policy: org.policies[p].name.clone(),
                devices: reach.len(),
                not_set_today: reach.len() - covered.len(),
                today,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::fixture::{fixture, messages, plan_file};

    fn scope() -> RoaringBitmap {
        (0..38).filter(|d| ![8, 18, 28].contains(d)).collect()
    }

    #[test]
    fn a_new_policy_reaching_devices_that_cannot_take_it_is_a_warning() {
        let mut f = fixture();
        let targeted: RoaringBitmap = (0..38).collect();
        let (na, by) =
            ringmaster_core::applicability::not_applicable(&f.org, &f.org.policies[1], &targeted);
        let t = &mut f.res.policies[1];
        t.set_reach(targeted.clone(), na);
        t.not_applicable_by_platform = by;
        let mut checks = Vec::new();
        policy_checks(&f.org, &f.res, &[1], &targeted, &mut checks);
        assert_eq!(checks.len(), 1, "{checks:?}");
        assert_eq!(checks[0].severity, CheckSeverity::Warning);
        assert!(checks[0].message.starts_with(
            "new policy 'New Baseline' reaches 3 device(s) in scope that cannot take it (not applicable: "
        ));
    }

    #[test]
    fn a_new_policy_without_platform_is_an_error() {
        let mut f = fixture();
        f.org.policies[1].platforms.clear();
        let mut checks = Vec::new();
        policy_checks(&f.org, &f.res, &[1], &RoaringBitmap::new(), &mut checks);
        assert_eq!(checks[0].severity, CheckSeverity::Error);
        assert!(checks[0].message.contains("has no platform"));
    }

    #[test]
    fn the_new_policies_meet_those_that_set_their_settings() {
        let f = fixture();
        assert_eq!(met_policies(&f.org, &[false, true], &[1]), [0, 1]);
        let mut f = f;
        f.org.policies[0].settings.clear();
        assert_eq!(met_policies(&f.org, &[false, true], &[1]), [1]);
    }

    fn accept(expires: &str) -> Vec<AcceptSpec> {
        let spec = plan_file(&format!(
            "[[accept]]\nsetting = \"laps_complexity\"\npolicies = [\"Old LAPS\", \"New Baseline\"]\nreason = \"agreed\"\nexpires = \"{expires}\"\n"
        ));
        spec.accept
    }

    #[test]
    fn acceptances_need_an_expiry_day() {
        let mut errs = Vec::new();
        assert_eq!(acceptances(&accept("2027-06-30"), &mut errs).len(), 1);
        assert!(acceptances(&accept("June"), &mut errs).is_empty());
        assert_eq!(
            messages(&errs),
            ["expires `June` is not a day (YYYY-MM-DD)"]
        );
    }

    fn conflicts_with(accepted: &[Acceptance]) -> (ConflictReport, Vec<Check>) {
        let mut f = fixture();
        let s = scope();
        let t = &mut f.res.policies[1];
        t.set_reach(s.clone(), RoaringBitmap::new());
        let mut checks = Vec::new();
        let analysis = conflicts::Scope {
            policies: &[0, 1],
            proposed: &[false, true],
            accepted,
            today: "2027-01-11".parse().unwrap(),
        };
        let report = conflict_checks(&f.org, &f.res, &analysis, &s, &mut checks);
        (report, checks)
    }

    #[test]
    fn a_conflict_with_a_deployed_policy_is_an_error_on_the_scope() {
        let (report, checks) = conflicts_with(&[]);
        assert_eq!(report.findings.len(), 1);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].severity, CheckSeverity::Error);
        assert!(
            checks[0]
                .message
                .contains(": conflict on 35 device(s) in scope — "),
            "{}",
            checks[0].message
        );
        assert!(
            checks[0].message.contains("'Old LAPS' = 3")
                && checks[0].message.contains("'New Baseline' = 4")
        );
    }

    #[test]
    fn an_accepted_conflict_is_information_until_it_expires() {
        let accepted = acceptances(&accept("2027-06-30"), &mut Vec::new());
        let (_, checks) = conflicts_with(&accepted);
        assert_eq!(checks[0].severity, CheckSeverity::Info);
        assert!(
            checks[0]
                .message
                .contains("accepted until 2027-06-30: agreed")
        );
        let expired = acceptances(&accept("2027-01-01"), &mut Vec::new());
        let (_, checks) = conflicts_with(&expired);
        assert_eq!(checks[0].severity, CheckSeverity::Error);
    }

    #[test]
    fn settings_changes_show_todays_values() {
        let mut f = fixture();
        let s = scope();
        f.res.policies[1].set_reach(s.clone(), RoaringBitmap::new());
        let changes = settings_changes(&f.org, &f.res, &[1], &[false, true], &s);
        assert_eq!(changes.len(), 2);
        let laps = &changes[0];
        assert_eq!(
            (laps.setting_id.as_str(), laps.value.as_str()),
            ("laps_complexity", "4")
        );
        assert_eq!(laps.policy, "New Baseline");
        assert_eq!(laps.devices, 35);
        assert_eq!(laps.today, [("3".to_string(), 35)]);
        assert_eq!(laps.not_set_today, 0);
        let cloud = &changes[1];
        assert!(cloud.today.is_empty());
        assert_eq!(cloud.not_set_today, 35);
    }

    #[test]
    fn two_policies_with_one_value_count_their_devices_once() {
        let mut f = fixture();
        let s = scope();
        f.res.policies[1].set_reach(s.clone(), RoaringBitmap::new());
        // A second existing policy sets the same value on the same devices.
        let mut twin = f.org.policies[0].clone();
        twin.name = "Old LAPS copy".into();
        f.org.policies.push(twin);
        f.res.policies.push(f.res.policies[0].clone());
        let changes = settings_changes(&f.org, &f.res, &[1], &[false, true, false], &s);
        let laps = &changes[0];
        assert_eq!(laps.devices, 35);
        assert_eq!(laps.today, [("3".to_string(), 35)]);
    }

    #[test]
    fn choice_values_show_their_option_labels() {
        let mut f = fixture();
        let s = scope();
        f.res.policies[1].set_reach(s.clone(), RoaringBitmap::new());
        // The fixture's LAPS setting as a catalog choice with labelled options.
        let edge = "3~policy~microsoft_edge_targetblankimpliesnoopener";
        for p in &mut f.org.policies {
            for l in p.settings.iter_mut().filter(|l| l.id == "laps_complexity") {
                l.id = edge.into();
                l.value = if l.value == "4" { "1" } else { "0" }.into();
            }
        }
        let changes = settings_changes(&f.org, &f.res, &[1], &[false, true], &s);
        let c = changes.iter().find(|c| c.setting_id == edge).unwrap();
        assert_eq!(c.value, "Enabled");
        assert_eq!(c.today, [("Disabled".to_string(), 35)]);
    }
}
