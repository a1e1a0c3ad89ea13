//! The targeted groups as the plan shows them: size, users, platforms,
//! cities, their first wave, and an enrollment approach with its reason.

use super::scope::GroupInfo;
use super::{Check, CheckSeverity, GroupPlan, WavePlan, platforms_of, tally, user_count};
use crate::spec::{Approach, Level, PhaseKind, PlanFile, TargetGroup};
use jiff::civil::Date;
use rayon::prelude::*;
use ringmaster_core::model::UserAttr;
use ringmaster_core::org::{NO_ROW, Org};
use ringmaster_core::targeting::Resolution;
use roaring::RoaringBitmap;

struct GroupStats {
    /// Devices of the group per wave.
    overlap: Vec<u64>,
    users: u64,
    platforms: Vec<(String, u64)>,
    cities: Vec<(String, u64)>,
}

/// One plan per targeted group. A group that is not done by its
/// `not_after` day gets a warning, an empty one an error.
pub(super) fn group_plans(
    spec: &PlanFile,
    org: &Org,
    res: &Resolution,
    groups: &[GroupInfo],
    waves: &[WavePlan],
    barred: &RoaringBitmap,
    checks: &mut Vec<Check>,
) -> Vec<GroupPlan> {
    // Independent per group, so computed in parallel.
    let stats: Vec<GroupStats> = groups
        .par_iter()
        .map(|g| GroupStats {
            overlap: waves
                .iter()
                .map(|w| w.set.intersection_len(&g.devices))
                .collect(),
            users: res.group_users[g.index]
                .len()
                .max(user_count(org, &g.devices)),
            platforms: platforms_of(org, &g.devices),
            cities: cities(org, &g.devices),
        })
        .collect();
    let mut out = Vec::new();
    for (g, st) in groups.iter().zip(stats) {
        let gs = &spec.groups[g.spec_index];
        let overlap = &st.overlap;
        let first_wave = overlap.iter().position(|n| *n > 0).map(|i| &waves[i]);
        let last_wave = overlap.iter().rposition(|n| *n > 0).map(|i| &waves[i]);
        if let (Some(na), Some(w)) = (&gs.not_after, last_wave)
            && let Ok(day) = na.get_ref().trim().parse::<Date>()
            && w.end.date() > day
        {
            checks.push(Check::new(
                CheckSeverity::Warning,
                PhaseKind::Enterprise,
                format!(
                    "group '{}' asked to be done by {day}; its last wave '{}' ends {}",
                    g.key,
                    w.name,
                    w.end.date()
                ),
            ));
        }
        // The phase holding most of the group's devices (the earliest on a tie).
        let main_phase = (0..waves.len())
            .filter(|&i| overlap[i] > 0)
            .max_by_key(|&i| (overlap[i], std::cmp::Reverse(i)))
            .map(|i| waves[i].phase);
        let (enrollment, why) = recommend(g, gs, main_phase, barred, &st.cities);
        if g.devices.is_empty() {
            checks.push(Check::new(
                CheckSeverity::Error,
                PhaseKind::ProjectScope,
                format!(
                    "targeted group '{}' ({}) has no devices",
                    g.key, org.groups[g.index].name
                ),
            ));
        }
        out.push(GroupPlan {
            key: g.key.clone(),
            name: org.groups[g.index].name.clone(),
            group_id: org.groups[g.index].id.clone(),
            devices: g.devices.len(),
            users: st.users,
            platforms: st.platforms,
            cities: st.cities.into_iter().take(3).collect(),
            willingness: gs.willingness.as_str(),
            business_risk: gs.business_risk.as_str(),
            requirements: gs.requirements.clone(),
            location: gs.location.clone(),
            time_zone: g.window.tz_name.clone(),
            enrollment,
            enrollment_label: enrollment.label(),
            enrollment_why: why,
            first_wave: first_wave.map(|w| w.name.clone()),
        });
    }
    out
}

/// Devices per city of their primary user.
fn cities(org: &Org, set: &RoaringBitmap) -> Vec<(String, u64)> {
    let users = set
        .iter()
        .filter_map(|d| org.device_user.get(d as usize).copied())
        .filter(|u| *u != NO_ROW);
    let mut v = tally(&org.users.cols[UserAttr::City.index()], users);
    v.retain(|(c, _)| c != "(unknown)");
    v
}

/// The enrollment approach for a group, with a one-line reason.
fn recommend(
    g: &GroupInfo,
    gs: &TargetGroup,
    main_phase: Option<PhaseKind>,
    barred: &RoaringBitmap,
    cities: &[(String, u64)],
) -> (Approach, String) {
    if let Some(a) = gs.enrollment {
        return (a, "set in the plan".into());
    }
    let n = g.devices.len();
    let execs = g.devices.intersection_len(barred);
    if n > 0 && execs * 2 >= n {
        return (
            Approach::Assisted,
            format!(
                "{execs} of {n} devices belong to executives or VIPs: a technician prepares them"
            ),
        );
    }
    if matches!(
        main_phase,
        Some(PhaseKind::ProofOfConcept | PhaseKind::Pilot)
    ) {
        return (
            Approach::TechFair,
            "most of its devices go in an early phase: a tech fair gives hands-on help and quick feedback".into(),
        );
    }
    if gs.willingness == Level::Low
        && let Some((city, k)) = cities.first()
        && *k * 10 >= n * 6
    {
        return (
            Approach::TechFair,
            format!(
                "low willingness for change, {}% of devices in {city}: an on-site tech fair",
                k * 100 / n.max(1)
            ),
        );
    }
    if gs.business_risk == Level::High {
        return (
            Approach::Assisted,
            "high business risk: assisted enrollment keeps downtime away from critical work".into(),
        );
    }
    if n >= 500 {
        return (
            Approach::SelfService,
            format!(
                "{n} devices at {} business risk: self-service scales",
                gs.business_risk.as_str()
            ),
        );
    }
    (
        Approach::SelfService,
        "self-service from the Company Portal: the usual approach".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::fixture::{fixture, plan_file};
    use crate::planner::{rollout, scope};
    use crate::schedule::Window;

    fn window() -> Window {
        rollout::calendar(&plan_file(""), &mut Vec::new())
            .window
            .unwrap()
    }

    fn wave(name: &str, phase: PhaseKind, set: &[u32], end: &str) -> WavePlan {
        let tz = jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap();
        let end: jiff::Zoned = end
            .parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(tz)
            .unwrap();
        WavePlan {
            name: name.into(),
            phase,
            mode: None,
            groups: Vec::new(),
            devices: set.len() as u64,
            users: 0,
            share_of_scope: 0.0,
            platforms: Vec::new(),
            time_zone: String::new(),
            start: end.clone(),
            apply_days: Vec::new(),
            devices_per_day: 0,
            expected_tickets: 0.0,
            bake_hours: 0.0,
            end,
            pinned: false,
            approval: false,
            set: set.iter().copied().collect(),
            enrolled: 0,
        }
    }

    #[test]
    fn group_plans_count_and_recommend() {
        let f = fixture();
        let mut spec = plan_file("");
        spec.groups[1].not_after = Some(toml::Spanned::new(0..1, "2027-01-20".into()));
        let groups =
            scope::targeted_groups(&spec, &f.org, &f.res, Some(&window()), &mut Vec::new());
        let barred = ringmaster_core::pilot::barred_all(&f.org, &(0..40).collect());
        let waves = [
            wave("Pilot", PhaseKind::Pilot, &[0, 1, 2, 5], "2027-01-14T09:00"),
            wave(
                "Sales",
                PhaseKind::Enterprise,
                &(6..20).collect::<Vec<_>>(),
                "2027-01-25T09:00",
            ),
        ];
        let mut checks = Vec::new();
        let plans = group_plans(&spec, &f.org, &f.res, &groups, &waves, &barred, &mut checks);
        let it = &plans[0];
        assert_eq!((it.devices, it.users), (5, 5));
        assert_eq!(it.first_wave.as_deref(), Some("Pilot"));
        assert_eq!(it.enrollment, Approach::TechFair, "{}", it.enrollment_why);
        assert_eq!(it.cities, [("Amsterdam".to_string(), 5)]);
        let sales = &plans[1];
        assert_eq!(sales.first_wave.as_deref(), Some("Pilot"));
        assert_eq!(
            sales.platforms,
            [("windows".to_string(), 13), ("macOS".to_string(), 2)]
        );
        assert_eq!(sales.enrollment, Approach::SelfService);
        let retail = &plans[2];
        assert_eq!(retail.first_wave, None);
        assert_eq!(retail.enrollment, Approach::TechFair);
        assert_eq!(
            retail.enrollment_why,
            "low willingness for change, 100% of devices in Utrecht: an on-site tech fair"
        );
        assert_eq!(plans[3].enrollment, Approach::Assisted);
        assert!(
            plans[3]
                .enrollment_why
                .starts_with("3 of 3 devices belong to executives")
        );
        // Sales asked to be done by 20 January; its last wave ends on the 25th.
        assert_eq!(checks.len(), 1);
        assert_eq!(
            checks[0].message,
            "group 'sales' asked to be done by 2027-01-20; its last wave 'Sales' ends 2027-01-25"
        );
    }

    #[test]
    fn an_empty_targeted_group_is_an_error() {
        let f = fixture();
        let mut spec = plan_file("");
        spec.groups[0].group = toml::Spanned::new(0..1, "Empty Devices".into());
        spec.groups[0].enrollment = Some(Approach::Assisted);
        let groups =
            scope::targeted_groups(&spec, &f.org, &f.res, Some(&window()), &mut Vec::new());
        let mut checks = Vec::new();
        let plans = group_plans(
            &spec,
            &f.org,
            &f.res,
            &groups,
            &[],
            &RoaringBitmap::new(),
            &mut checks,
        );
        assert_eq!(plans[0].enrollment_why, "set in the plan");
        assert_eq!(checks[0].severity, CheckSeverity::Error);
        assert_eq!(
            checks[0].message,
            "targeted group 'it' (Empty Devices) has no devices"
        );
    }
}
