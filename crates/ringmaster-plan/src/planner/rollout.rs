//! The first steps: the rollout's own settings (id, zone, start, check-in),
//! its calendar and help desk, the policies it deploys, and the order of its
//! phases.

use super::parse::{parse_date, parse_days, parse_duration, parse_hours_window, parse_tz, perr};
use crate::PlanError;
use crate::schedule::{Freeze, Window};
use crate::spec::{HelpDesk, PhaseKind, PhaseSpec, PlanFile};
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use ringmaster_core::org::Org;

/// The rollout's time settings; a part is None when its value was bad (the
/// error is recorded), and the plan is then not scheduled.
pub(super) struct Calendar {
    pub tz: Option<TimeZone>,
    pub start: Option<Date>,
    /// Hours between device check-ins (8 when the value is bad).
    pub check_in: f64,
    pub hours: Option<(Time, Time)>,
    pub freezes: Vec<Freeze>,
    /// The calendar's days and hours in the rollout's zone: where every
    /// group's and wave's window starts from.
    pub window: Option<Window>,
}

/// Reads `[rollout]` and `[calendar]`.
pub(super) fn calendar(spec: &PlanFile, errs: &mut Vec<PlanError>) -> Calendar {
    let r = &spec.rollout;
    if r.id.get_ref().trim().is_empty() {
        errs.push(perr(
            r.id.span(),
            "the rollout id must not be empty: it seeds who lands in which wave",
        ));
    }
    let tz = parse_tz(&r.time_zone, errs);
    let start = parse_date(&r.start, "start", errs);
    let check_in = parse_duration(&r.check_in, "check_in", errs).unwrap_or(8.0);
    let days = parse_days(&spec.calendar.working_days, errs);
    if spec.calendar.working_days.is_empty() {
        errs.push(perr(
            0..0,
            "calendar.working_days is empty: no day would ever be allowed",
        ));
    }
    let hours = parse_hours_window(&spec.calendar.hours, errs);
    let mut freezes = Vec::new();
    for f in &spec.calendar.freezes {
        if let (Some(from), Some(to)) = (
            parse_date(&f.from, "freeze start", errs),
            parse_date(&f.to, "freeze end", errs),
        ) {
            if to < from {
                errs.push(perr(
                    f.to.span(),
                    format!(
                        "the freeze '{}' ends ({to}) before it starts ({from})",
                        f.reason
                    ),
                ));
            }
            freezes.push(Freeze {
                from,
                to,
                reason: f.reason.clone(),
            });
        }
    }
    let window = match (&tz, hours) {
        (Some(tz), Some(hours)) => Some(Window {
            tz: tz.clone(),
            tz_name: r.time_zone.get_ref().trim().to_string(),
            days,
            hours,
            not_before: None,
        }),
        _ => None,
    };
    Calendar {
        tz,
        start,
        check_in,
        hours,
        freezes,
        window,
    }
}

/// Checks `[help_desk]`: the schedule divides by its capacity.
pub(super) fn help_desk(hd: &HelpDesk, errs: &mut Vec<PlanError>) {
    if *hd.capacity_per_day.get_ref() == 0 {
        errs.push(perr(
            hd.capacity_per_day.span(),
            "capacity_per_day must be at least 1 ticket a day",
        ));
    }
    if !(hd.tickets_per_100_devices.is_finite() && hd.tickets_per_100_devices >= 0.0) {
        errs.push(perr(
            0..0,
            "help_desk.tickets_per_100_devices must be a number of at least 0",
        ));
    }
}

/// The policies the rollout deploys.
pub(super) struct NewPolicies {
    /// Per policy of the org.
    pub is_new: Vec<bool>,
    /// Their indices, in the org's order.
    pub list: Vec<usize>,
}

/// The policies read from `sources.new` plus those `sources.new_policies`
/// names. No new policy at all is an error only when nothing else is wrong,
/// since a bad source usually explains it.
pub(super) fn new_policies(
    spec: &PlanFile,
    org: &Org,
    proposed: &[bool],
    errs: &mut Vec<PlanError>,
) -> NewPolicies {
    let mut is_new: Vec<bool> = (0..org.policies.len())
        .map(|p| proposed.get(p).copied().unwrap_or(false))
        .collect();
    for name in &spec.sources.new_policies {
        let found = org.find_policies(name.get_ref());
        match found.len() {
            1 => is_new[found[0]] = true,
            0 => errs.push(perr(
                name.span(),
                format!(
                    "no policy named or with id `{}` in the exports",
                    name.get_ref()
                ),
            )),
            n => errs.push(perr(
                name.span(),
                format!(
                    "{n} policies are named `{}`; use the id of one",
                    name.get_ref()
                ),
            )),
        }
    }
    let list: Vec<usize> = (0..org.policies.len()).filter(|&p| is_new[p]).collect();
    if list.is_empty() && errs.is_empty() {
        errs.push(perr(
            0..0,
            "the plan deploys no new policy: list exports under sources.new or policy names under sources.new_policies",
        ));
    }
    NewPolicies { is_new, list }
}

/// Phases come in the guides' order, each once, and carry only their own tables.
pub(super) fn check_phases(phases: &[PhaseSpec], errs: &mut Vec<PlanError>) {
    let mut last: Option<PhaseKind> = None;
    for p in phases {
        let k = *p.kind.get_ref();
        if let Some(l) = last
            && k <= l
        {
            errs.push(perr(
                p.kind.span(),
                format!(
                    "{} cannot come after {}: phases run project scope → proof of concept → pilot → enterprise rollout → run state, each once",
                    k.label(),
                    l.label()
                ),
            ));
        }
        last = Some(k);
        if !p.waves.is_empty() && k != PhaseKind::Enterprise {
            errs.push(perr(
                p.kind.span(),
                format!(
                    "only the enterprise rollout lists waves; {} has its own",
                    k.label()
                ),
            ));
        }
        if p.pilot.is_some() && k != PhaseKind::Pilot {
            errs.push(perr(
                p.kind.span(),
                "a [phases.pilot] table belongs to the pilot phase",
            ));
        }
        if !p.test_groups.is_empty() && k != PhaseKind::ProofOfConcept {
            errs.push(perr(
                p.kind.span(),
                "test_groups belong to the proof of concept",
            ));
        }
        if k == PhaseKind::Enterprise && p.waves.is_empty() {
            errs.push(perr(p.kind.span(), "the enterprise rollout needs waves: e.g. [[phases.waves]] share = \"5%\", then rest = true"));
        }
    }
    if phases.is_empty() {
        errs.push(perr(0..0, "the plan has no phases"));
    }
}

/// Most approvers a phase can ask for: more is a typo, not a policy.
const MAX_APPROVERS: u32 = 10;

/// `approvals = N` on a phase with waves, within bounds, and
/// `[approvals] distinct` only where some phase asks for approval.
pub(super) fn check_approvals(spec: &PlanFile, errs: &mut Vec<PlanError>) {
    for p in &spec.phases {
        let Some(n) = &p.approvals else { continue };
        let k = *p.kind.get_ref();
        if !(1..=MAX_APPROVERS).contains(n.get_ref()) {
            errs.push(perr(
                n.span(),
                format!(
                    "approvals = {} on {}: give 1 to {MAX_APPROVERS} different approvers per wave",
                    n.get_ref(),
                    k.label()
                ),
            ));
        }
        if matches!(k, PhaseKind::ProjectScope | PhaseKind::RunState) {
            errs.push(perr(
                n.span(),
                format!("{} has no waves to approve: approvals belong to the proof of concept, pilot or enterprise rollout", k.label()),
            ));
        }
    }
    if let Some(d) = &spec.approvals.distinct
        && *d.get_ref()
        && !spec.phases.iter().any(|p| p.needs_approval())
    {
        errs.push(perr(
            d.span(),
            "[approvals] distinct is set but no phase asks for approval: add `approval = true` or `approvals = 2` to a phase",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::fixture::{fixture, messages, plan_file};

    #[test]
    fn calendar_reads_zone_days_hours_and_freezes() {
        let spec = plan_file("");
        let mut errs = Vec::new();
        let cal = calendar(&spec, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(cal.check_in, 8.0);
        assert_eq!(cal.start, Some("2027-01-11".parse().unwrap()));
        assert_eq!(cal.freezes.len(), 1);
        let w = cal.window.expect("a window");
        assert_eq!(w.tz_name, "Europe/Amsterdam");
        assert_eq!(w.days, [true, true, true, true, false, false, false]);
        assert_eq!(w.hours.0.strftime("%H:%M").to_string(), "09:00");
    }

    #[test]
    fn calendar_records_every_bad_value_and_has_no_window() {
        let mut spec = plan_file("");
        spec.rollout.time_zone = toml::Spanned::new(5..9, "Mars/Base".into());
        spec.rollout.check_in = toml::Spanned::new(1..2, "often".into());
        spec.calendar.working_days.clear();
        spec.calendar.freezes[0].to = toml::Spanned::new(3..4, "2027-01-01".into());
        let mut errs = Vec::new();
        let cal = calendar(&spec, &mut errs);
        assert!(cal.window.is_none() && cal.tz.is_none());
        assert_eq!(cal.check_in, 8.0, "a bad check-in falls back to 8h");
        let m = messages(&errs);
        assert_eq!(m.len(), 4, "{m:?}");
        assert!(m[0].starts_with("unknown time zone `Mars/Base`"));
        assert!(m[1].starts_with("check_in `often` is not a duration"));
        assert!(m[2].starts_with("calendar.working_days is empty"));
        assert!(m[3].contains("ends (2027-01-01) before it starts (2027-01-18)"));
        assert_eq!(errs[0].span, 5..9);
    }

    #[test]
    fn help_desk_needs_capacity() {
        let mut spec = plan_file("");
        spec.help_desk.capacity_per_day = toml::Spanned::new(7..8, 0);
        spec.help_desk.tickets_per_100_devices = -1.0;
        let mut errs = Vec::new();
        help_desk(&spec.help_desk, &mut errs);
        let m = messages(&errs);
        assert_eq!(m.len(), 2);
        assert!(m[0].starts_with("capacity_per_day must be at least 1"));
        assert_eq!(errs[0].span, 7..8);
        assert!(m[1].starts_with("help_desk.tickets_per_100_devices"));
    }

    #[test]
    fn new_policies_come_from_sources_and_names() {
        let f = fixture();
        let spec = plan_file("");
        let mut errs = Vec::new();
        let n = new_policies(&spec, &f.org, &f.proposed, &mut errs);
        assert!(errs.is_empty());
        assert_eq!(n.list, vec![1]);
        assert_eq!(n.is_new, vec![false, true]);

        // Named in the plan instead of read from `sources.new`.
        let mut spec = plan_file("");
        spec.sources.new_policies = vec![toml::Spanned::new(0..1, "Old LAPS".into())];
        let n = new_policies(&spec, &f.org, &[], &mut errs);
        assert_eq!(n.list, vec![0]);
        assert!(errs.is_empty());
    }

    #[test]
    fn no_new_policy_is_an_error_unless_another_explains_it() {
        let f = fixture();
        let mut spec = plan_file("");
        spec.sources.new_policies = vec![toml::Spanned::new(2..5, "Nope".into())];
        let mut errs = Vec::new();
        let n = new_policies(&spec, &f.org, &[], &mut errs);
        assert!(n.list.is_empty());
        assert_eq!(
            messages(&errs),
            ["no policy named or with id `Nope` in the exports"]
        );
        let spec = plan_file("");
        let mut errs = Vec::new();
        new_policies(&spec, &f.org, &[], &mut errs);
        assert!(messages(&errs)[0].starts_with("the plan deploys no new policy"));
    }

    #[test]
    fn phases_run_in_order_with_their_own_tables() {
        let spec = plan_file(
            r#"
[[phases]]
kind = "pilot"
test_groups = ["Lab Devices"]
[[phases]]
kind = "proof_of_concept"
[[phases]]
kind = "enterprise"
"#,
        );
        let mut errs = Vec::new();
        check_phases(&spec.phases, &mut errs);
        let m = messages(&errs);
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(m[0], "test_groups belong to the proof of concept");
        assert!(m[1].starts_with("Proof of concept cannot come after Pilot"));
        assert!(m[2].starts_with("the enterprise rollout needs waves"));

        let mut errs = Vec::new();
        check_phases(&[], &mut errs);
        assert_eq!(messages(&errs), ["the plan has no phases"]);
    }
}
