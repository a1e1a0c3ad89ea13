//! Project scope: the targeted groups and the devices the rollout covers.

use super::parse::{find_group, parse_date, parse_days, parse_hours_window, parse_tz, perr};
use super::{Check, CheckSeverity};
use crate::PlanError;
use crate::schedule::Window;
use crate::spec::{PhaseKind, PlanFile, TargetGroup};
use ringmaster_core::org::Org;
use ringmaster_core::pilot;
use ringmaster_core::targeting::Resolution;
use roaring::RoaringBitmap;
use toml::Spanned;

/// A targeted group found in the directory.
pub(super) struct GroupInfo {
    pub key: String,
    /// Index into `Org::groups`.
    pub index: usize,
    pub devices: RoaringBitmap,
    pub window: Window,
    /// Index into `PlanFile::groups`.
    pub spec_index: usize,
}

/// Devices a directory group holds: its devices and its users' devices.
pub(super) fn group_devices(org: &Org, res: &Resolution, g: usize) -> RoaringBitmap {
    res.group_reach(org, g).into_owned()
}

/// The `[[groups]]` found in the directory, with their windows. A group
/// that is not found (or whose window is bad) is left out, with its error.
pub(super) fn targeted_groups(
    spec: &PlanFile,
    org: &Org,
    res: &Resolution,
    default: Option<&Window>,
    errs: &mut Vec<PlanError>,
) -> Vec<GroupInfo> {
    let mut groups = Vec::new();
    for (i, g) in spec.groups.iter().enumerate() {
        let key = g.key.get_ref().trim().to_string();
        if key.is_empty() {
            errs.push(perr(g.key.span(), "a group key must not be empty"));
        }
        if spec.groups[..i]
            .iter()
            .any(|o| o.key.get_ref().trim() == key)
        {
            errs.push(perr(
                g.key.span(),
                format!("the group key `{key}` is used twice"),
            ));
        }
        let index = find_group(org, &g.group, errs);
        let window = group_window(g, default, errs);
        if let (Some(index), Some(window)) = (index, window) {
            groups.push(GroupInfo {
                key,
                index,
                devices: group_devices(org, res, index),
                window,
                spec_index: i,
            });
        }
    }
    groups
}

/// The targeted group a key names. A key of the plan whose group was not
/// found has its error already; only a key the plan never defines is one here.
pub(super) fn group_by_key(
    spec: &PlanFile,
    groups: &[GroupInfo],
    k: &Spanned<String>,
    errs: &mut Vec<PlanError>,
) -> Option<usize> {
    let found = groups.iter().position(|g| g.key == k.get_ref().trim());
    if found.is_none()
        && spec
            .groups
            .iter()
            .all(|g| g.key.get_ref().trim() != k.get_ref().trim())
    {
        errs.push(perr(
            k.span(),
            format!(
                "no targeted group with key `{}`; the keys are: {}",
                k.get_ref(),
                spec.groups
                    .iter()
                    .map(|g| g.key.get_ref().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    found
}

/// A targeted group's window: its own days, hours and zone, else the calendar's.
pub(super) fn group_window(
    g: &TargetGroup,
    default: Option<&Window>,
    errs: &mut Vec<PlanError>,
) -> Option<Window> {
    let mut w = default?.clone();
    if let Some(tz) = &g.time_zone
        && let Some(z) = parse_tz(tz, errs)
    {
        w.tz = z;
        w.tz_name = tz.get_ref().trim().to_string();
    }
    if let Some(days) = &g.days {
        let own = parse_days(days, errs);
        // A group narrows the calendar; it cannot add days the organization is closed.
        for (i, d) in w.days.iter_mut().enumerate() {
            *d &= own[i];
        }
        if !w.days.iter().any(|d| *d) {
            errs.push(perr(
                days.first().map(|d| d.span()).unwrap_or(g.key.span()),
                format!(
                    "group '{}' accepts changes on no working day of the calendar",
                    g.key.get_ref()
                ),
            ));
        }
    }
    if let Some(h) = &g.hours
        && let Some(hours) = parse_hours_window(h, errs)
    {
        w.hours = hours;
    }
    if let Some(nb) = &g.not_before {
        w.not_before = parse_date(nb, "not_before", errs);
    }
    if let Some(na) = &g.not_after {
        parse_date(na, "not_after", errs);
    }
    Some(w)
}

/// The devices a rollout covers.
pub(super) struct Scope {
    /// Devices of the targeted groups (or the new policies' own reach
    /// without groups) that can take at least one new policy: the waves
    /// hold exactly these.
    pub set: RoaringBitmap,
    /// Every device of the targeted groups, whether it can take a new policy or not.
    pub targeted: RoaringBitmap,
    /// Targeted devices that never enter a pilot (VIPs, executives, labs).
    pub barred: RoaringBitmap,
    /// Devices of the targeted groups left out for want of the scope tag
    /// the plan is made within.
    pub outside_tag: RoaringBitmap,
}

/// The scope. New policies without assignments get it as their target in
/// `res` (the rollout assigns them wave by wave); one that has assignments
/// already reaches devices on its own, which the plan must say.
pub(super) fn scope(
    spec: &PlanFile,
    org: &Org,
    res: &mut Resolution,
    groups: &[GroupInfo],
    new_policies: &[usize],
    within: Option<&RoaringBitmap>,
    checks: &mut Vec<Check>,
) -> Scope {
    let mut scope = RoaringBitmap::new();
    for g in groups {
        scope |= &g.devices;
    }
    if spec.groups.is_empty() {
        for &p in new_policies {
            scope |= res.policies[p].applicable();
        }
    }
    let mut outside_tag = RoaringBitmap::new();
    if let Some(w) = within {
        outside_tag = &scope - w;
        scope &= w;
    }
    for &p in new_policies {
        let pol = &org.policies[p];
        if pol.assignments.is_empty() {
            let (not_applicable, by_platform) =
                ringmaster_core::applicability::not_applicable(org, pol, &scope);
            let t = &mut res.policies[p];
            t.set_reach(scope.clone(), not_applicable);
            t.not_applicable_by_platform = by_platform;
        } else {
            let outside =
                res.policies[p].devices.len() - res.policies[p].devices.intersection_len(&scope);
            if outside > 0 {
                checks.push(Check::new(
                    CheckSeverity::Warning,
                    PhaseKind::ProjectScope,
                    format!(
                        "new policy '{}' is already assigned to {outside} device(s) outside the plan's groups: its own assignments reach them at once, not wave by wave",
                        pol.name
                    ),
                ));
            }
        }
    }
    // Devices no new policy applies to (an iPhone in a group targeted by a
    // Windows baseline) would only report not applicable: they stay out of
    // the waves and are counted instead.
    let targeted = scope.clone();
    let mut takes_any = RoaringBitmap::new();
    // Devices outside the tag count only where a new policy would reach them.
    let mut outside_takes = RoaringBitmap::new();
    for &p in new_policies {
        let (na, _) =
            ringmaster_core::applicability::not_applicable(org, &org.policies[p], &targeted);
        takes_any |= &targeted - &na;
        if !outside_tag.is_empty() {
            let (na, _) =
                ringmaster_core::applicability::not_applicable(org, &org.policies[p], &outside_tag);
            outside_takes |= &outside_tag - &na;
        }
    }
    if !new_policies.is_empty() {
        scope &= &takes_any;
        outside_tag = outside_takes;
    }
    let cannot = targeted.len() - scope.len();
    if cannot > 0 {
        checks.push(Check::new(
            CheckSeverity::Info,
            PhaseKind::ProjectScope,
            format!(
                "{cannot} device(s) of the targeted groups cannot take any new policy (platform, OS edition or version) and are left out of the waves"
            ),
        ));
    }
    if scope.is_empty() {
        checks.push(Check::new(
            CheckSeverity::Error,
            PhaseKind::ProjectScope,
            if spec.groups.is_empty() {
                "nothing is in scope: list targeted groups ([[groups]]) or assign the new policies"
            } else {
                "nothing is in scope: no device of the targeted groups can take the new policies"
            },
        ));
    }
    let barred = pilot::barred_all(org, &targeted);
    Scope {
        set: scope,
        targeted,
        barred,
        outside_tag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::fixture::{fixture, messages, plan_file};
    use crate::planner::rollout;

    fn window() -> Window {
        rollout::calendar(&plan_file(""), &mut Vec::new())
            .window
            .unwrap()
    }

    #[test]
    fn targeted_groups_are_found_with_their_windows() {
        let f = fixture();
        let spec = plan_file("");
        let mut errs = Vec::new();
        let groups = targeted_groups(&spec, &f.org, &f.res, Some(&window()), &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        let keys: Vec<&str> = groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["it", "sales", "retail", "execs"]);
        assert_eq!(
            groups[1].devices.iter().collect::<Vec<_>>(),
            (5..20).collect::<Vec<_>>()
        );
        // Retail narrows the calendar to Tuesdays and Wednesdays.
        assert_eq!(
            groups[2].window.days,
            [false, true, true, false, false, false, false]
        );
        assert_eq!(groups[0].window.days, window().days);
    }

    #[test]
    fn a_group_missing_from_the_directory_is_left_out_with_a_hint() {
        let f = fixture();
        let mut spec = plan_file("");
        spec.groups[1].group = toml::Spanned::new(10..20, "Sales".into());
        spec.groups[3].key = toml::Spanned::new(30..33, "it".into());
        let mut errs = Vec::new();
        let groups = targeted_groups(&spec, &f.org, &f.res, Some(&window()), &mut errs);
        assert_eq!(groups.len(), 3);
        let m = messages(&errs);
        assert_eq!(
            m,
            [
                "no group named or with id `Sales` in the directory; similar: 'All Sales Devices'",
                "the group key `it` is used twice"
            ]
        );
        assert_eq!(errs[0].span, 10..20);
    }

    #[test]
    fn a_group_may_not_close_every_working_day() {
        let mut spec = plan_file("");
        spec.groups[2].days = Some(vec![toml::Spanned::new(4..9, "sat".into())]);
        let mut errs = Vec::new();
        group_window(&spec.groups[2], Some(&window()), &mut errs);
        assert_eq!(
            messages(&errs),
            ["group 'retail' accepts changes on no working day of the calendar"]
        );
        assert_eq!(errs[0].span, 4..9);
    }

    #[test]
    fn group_keys_name_targeted_groups() {
        let f = fixture();
        let spec = plan_file("");
        let groups = targeted_groups(&spec, &f.org, &f.res, Some(&window()), &mut Vec::new());
        let mut errs = Vec::new();
        let key = |k: &str| toml::Spanned::new(0..1, k.to_string());
        assert_eq!(
            group_by_key(&spec, &groups, &key("retail"), &mut errs),
            Some(2)
        );
        assert_eq!(group_by_key(&spec, &groups, &key("hr"), &mut errs), None);
        assert_eq!(
            messages(&errs),
            ["no targeted group with key `hr`; the keys are: it, sales, retail, execs"]
        );
    }

    #[test]
    fn scope_holds_the_devices_that_can_take_a_new_policy() {
        let mut f = fixture();
        let spec = plan_file("");
        let groups = targeted_groups(&spec, &f.org, &f.res, Some(&window()), &mut Vec::new());
        let mut checks = Vec::new();
        let s = scope(&spec, &f.org, &mut f.res, &groups, &[1], None, &mut checks);
        // d0..d37 are targeted; the two Macs and the iPhone cannot take a Windows policy.
        assert_eq!(s.targeted.len(), 38);
        assert_eq!(s.set.len(), 35);
        assert!(!s.set.contains(8) && !s.set.contains(28));
        // The executives' devices are barred from pilots.
        assert_eq!(s.barred.iter().collect::<Vec<_>>(), [35, 36, 37]);
        // The unassigned new policy now reaches the scope.
        assert_eq!(f.res.policies[1].devices, s.targeted);
        assert_eq!(f.res.policies[1].applicable(), &s.set);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].severity, CheckSeverity::Info);
        assert!(
            checks[0]
                .message
                .starts_with("3 device(s) of the targeted groups cannot take")
        );
    }

    #[test]
    fn an_assigned_new_policy_reaching_outside_the_groups_is_a_warning() {
        let mut f = fixture();
        let mut spec = plan_file("");
        spec.groups.truncate(1);
        let groups = targeted_groups(&spec, &f.org, &f.res, Some(&window()), &mut Vec::new());
        let mut checks = Vec::new();
        // "Old LAPS" is assigned to All devices: 40 devices, 5 of them in the IT group.
        let s = scope(&spec, &f.org, &mut f.res, &groups, &[0], None, &mut checks);
        assert_eq!(s.set.len(), 5);
        assert_eq!(checks[0].severity, CheckSeverity::Warning);
        assert!(
            checks[0]
                .message
                .contains("already assigned to 35 device(s) outside")
        );
    }

    #[test]
    fn an_empty_scope_is_an_error() {
        let mut f = fixture();
        let mut spec = plan_file("");
        spec.groups.clear();
        let mut checks = Vec::new();
        let s = scope(&spec, &f.org, &mut f.res, &[], &[1], None, &mut checks);
        assert!(s.set.is_empty());
        assert_eq!(checks[0].severity, CheckSeverity::Error);
        assert!(checks[0].message.contains("list targeted groups"));
    }
}
