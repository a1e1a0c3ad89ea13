//! From a plan file and an organization to a plan: scope, waves, schedule,
//! goals, enrollment approaches, project-scope checks and the settings that
//! change. Pure: the caller reads files and passes text and the org in.

use crate::PlanError;
use crate::schedule::{self, Freeze, Window};
use crate::spec::{Approach, Level, PhaseKind, PlanFile, TargetGroup, WaveSpec};
use jiff::Zoned;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use rayon::prelude::*;
use ringmaster_core::alerts;
use ringmaster_core::conflicts::{self, Acceptance, FindingKind};
use ringmaster_core::goals::{self, Goal, GoalDraft, GoalField};
use ringmaster_core::model::{DeviceAttr, UserAttr};
use ringmaster_core::org::{NO_ROW, Org};
use ringmaster_core::pilot::{self, Dimension, Pilot};
use ringmaster_core::settings::{LeafKind, readable_name};
use ringmaster_core::targeting::{Resolution, Severity};
use roaring::RoaringBitmap;
use serde::Serialize;
use std::ops::Range;
use toml::Spanned;

/// A computed plan. Dates are zoned; device sets are kept for the engine.
#[derive(Debug, Serialize)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub purpose: String,
    pub time_zone: String,
    pub start: Date,
    pub check_in_hours: f64,
    pub help_desk: HelpDeskPlan,
    pub scope: ScopePlan,
    pub groups: Vec<GroupPlan>,
    pub phases: Vec<PhasePlan>,
    pub waves: Vec<WavePlan>,
    pub pilot: Option<Pilot>,
    pub checks: Vec<Check>,
    /// What the new policies set, against what devices in scope have today.
    pub changes: Vec<Change>,
    /// The conflict analysis of the new policies and the deployed ones
    /// that set the same settings (the checks above summarise it).
    #[serde(skip)]
    pub conflicts: ringmaster_core::conflicts::ConflictReport,
    /// How the run state alerts: the built-in rules with the plan's in place.
    pub alerts: Vec<alerts::Rule>,
}

impl Plan {
    /// Checks that stop the rollout from starting.
    pub fn errors(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.severity == CheckSeverity::Error)
            .count()
    }
}

#[derive(Debug, Serialize)]
pub struct HelpDeskPlan {
    pub contact: String,
    pub self_help: Vec<String>,
    pub capacity_per_day: u32,
    pub tickets_per_100_devices: f64,
}

#[derive(Debug, Serialize)]
pub struct ScopePlan {
    pub devices: u64,
    pub users: u64,
    pub platforms: Vec<(String, u64)>,
    /// Devices of VIPs, executives and labs: never in a pilot.
    pub barred: u64,
    pub new_policies: Vec<PolicyRef>,
    #[serde(skip)]
    pub set: RoaringBitmap,
}

#[derive(Debug, Serialize)]
pub struct PolicyRef {
    pub id: String,
    pub name: String,
    pub platforms: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct GroupPlan {
    pub key: String,
    pub name: String,
    pub group_id: String,
    pub devices: u64,
    pub users: u64,
    pub platforms: Vec<(String, u64)>,
    /// The directory's cities of the group's users, largest first (at most 3).
    pub cities: Vec<(String, u64)>,
    pub willingness: &'static str,
    pub business_risk: &'static str,
    pub requirements: Vec<String>,
    pub location: Option<String>,
    pub time_zone: String,
    pub enrollment: Approach,
    pub enrollment_label: &'static str,
    pub enrollment_why: String,
    /// The first wave holding the group's devices.
    pub first_wave: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PhasePlan {
    pub kind: PhaseKind,
    pub label: &'static str,
    pub name: String,
    pub start: Zoned,
    /// None for the run state, which has no end.
    pub end: Option<Zoned>,
    pub goals: Vec<Goal>,
    pub goal_sentences: Vec<String>,
    /// Indices into `Plan::waves`.
    pub waves: Vec<usize>,
    pub approval: bool,
    pub promotion: bool,
    pub on_fail: crate::spec::OnFailSpec,
    pub gate_policy: ringmaster_core::gates::GatePolicy,
}

#[derive(Debug, Serialize)]
pub struct WavePlan {
    pub name: String,
    pub phase: PhaseKind,
    /// Pilot steps: `isolated` (the new policies alone), then `combined`.
    pub mode: Option<&'static str>,
    pub groups: Vec<String>,
    pub devices: u64,
    pub users: u64,
    pub share_of_scope: f64,
    pub platforms: Vec<(String, u64)>,
    pub time_zone: String,
    pub start: Zoned,
    /// Days the wave applies on; its devices are spread evenly over them.
    pub apply_days: Vec<Date>,
    pub devices_per_day: u64,
    pub expected_tickets: f64,
    pub bake_hours: f64,
    pub end: Zoned,
    pub pinned: bool,
    pub approval: bool,
    #[serde(skip)]
    pub set: RoaringBitmap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckSeverity {
    Error,
    Warning,
    Info,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub severity: CheckSeverity,
    pub phase: PhaseKind,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct Change {
    pub setting_id: String,
    pub setting: String,
    pub value: String,
    pub policy: String,
    /// Devices in scope the new policy reaches with this setting.
    pub devices: u64,
    /// What those devices have today from existing policies: value and devices.
    pub today: Vec<(String, u64)>,
    /// Devices where the setting is not configured today.
    pub not_set_today: u64,
}

struct GroupStats {
    overlap: Vec<u64>,
    users: u64,
    platforms: Vec<(String, u64)>,
    cities: Vec<(String, u64)>,
}

struct GroupInfo {
    key: String,
    index: usize,
    devices: RoaringBitmap,
    window: Window,
    spec_index: usize,
}

/// Everything the planner needs besides the plan file.
pub struct Inputs<'a> {
    pub org: &'a Org,
    /// New policies without assignments get the plan's scope as their target here.
    pub res: &'a mut Resolution,
    /// Per policy: read from the plan's `sources.new` exports.
    pub proposed: &'a [bool],
}

fn perr(span: Range<usize>, message: impl Into<String>) -> PlanError {
    PlanError {
        span,
        message: message.into(),
    }
}

fn parse_date(s: &Spanned<String>, what: &str, errs: &mut Vec<PlanError>) -> Option<Date> {
    match s.get_ref().trim().parse::<Date>() {
        Ok(d) => Some(d),
        Err(_) => {
            errs.push(perr(
                s.span(),
                format!("{what} `{}` is not a day (YYYY-MM-DD)", s.get_ref()),
            ));
            None
        }
    }
}

fn parse_tz(s: &Spanned<String>, errs: &mut Vec<PlanError>) -> Option<TimeZone> {
    match TimeZone::get(s.get_ref().trim()) {
        Ok(tz) => Some(tz),
        Err(_) => {
            errs.push(perr(
                s.span(),
                format!(
                    "unknown time zone `{}`; use an IANA name such as Europe/Amsterdam or America/New_York",
                    s.get_ref()
                ),
            ));
            None
        }
    }
}

fn parse_days(days: &[Spanned<String>], errs: &mut Vec<PlanError>) -> [bool; 7] {
    let mut out = [false; 7];
    for d in days {
        match schedule::parse_day(d.get_ref()) {
            Some(i) => out[i] = true,
            None => errs.push(perr(
                d.span(),
                format!(
                    "`{}` is not a weekday; use mon, tue, wed, thu, fri, sat or sun",
                    d.get_ref()
                ),
            )),
        }
    }
    out
}

fn parse_hours_window(
    s: &Spanned<String>,
    errs: &mut Vec<PlanError>,
) -> Option<(jiff::civil::Time, jiff::civil::Time)> {
    let r = schedule::parse_hours(s.get_ref());
    if r.is_none() {
        errs.push(perr(
            s.span(),
            format!(
                "`{}` is not an hours window such as 09:00-17:00 (start before end)",
                s.get_ref()
            ),
        ));
    }
    r
}

fn parse_duration(s: &Spanned<String>, what: &str, errs: &mut Vec<PlanError>) -> Option<f64> {
    let h = goals::parse_hours(s.get_ref());
    if h.is_none() {
        errs.push(perr(
            s.span(),
            format!(
                "{what} `{}` is not a duration such as 8h, 2d or 1w",
                s.get_ref()
            ),
        ));
    }
    h
}

fn parse_share(s: &Spanned<String>, errs: &mut Vec<PlanError>) -> Option<f64> {
    let t = s.get_ref().trim();
    let v = t
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0 && *v <= 100.0);
    if v.is_none() {
        errs.push(perr(
            s.span(),
            format!("`{t}` is not a share such as 1% or 20% (more than 0, at most 100)"),
        ));
    }
    v.map(|v| v / 100.0)
}

fn parse_dimension(s: &Spanned<String>, errs: &mut Vec<PlanError>) -> Option<Dimension> {
    let l = s
        .get_ref()
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '-'], "_");
    let d = Dimension::ALL
        .into_iter()
        .find(|d| d.name().replace(' ', "_").eq_ignore_ascii_case(&l));
    if d.is_none() {
        errs.push(perr(
            s.span(),
            format!(
                "unknown dimension `{}`; expected one of {}",
                s.get_ref(),
                Dimension::ALL
                    .map(|d| d.name().replace(' ', "_"))
                    .join(", ")
            ),
        ));
    }
    d
}

/// Devices a directory group holds: its devices and its users' devices.
fn group_devices(org: &Org, res: &Resolution, g: usize) -> RoaringBitmap {
    res.group_reach(org, g).into_owned()
}

fn find_group(org: &Org, name: &Spanned<String>, errs: &mut Vec<PlanError>) -> Option<usize> {
    let found = org.find_groups(name.get_ref());
    match found.len() {
        1 => Some(found[0]),
        0 => {
            let near = org
                .groups
                .iter()
                .filter(|g| {
                    g.name
                        .to_ascii_lowercase()
                        .contains(&name.get_ref().trim().to_ascii_lowercase())
                })
                .take(3)
                .map(|g| format!("'{}'", g.name))
                .collect::<Vec<_>>();
            let hint = if near.is_empty() {
                String::new()
            } else {
                format!("; similar: {}", near.join(", "))
            };
            errs.push(perr(
                name.span(),
                format!(
                    "no group named or with id `{}` in the directory{hint}",
                    name.get_ref()
                ),
            ));
            None
        }
        n => {
            errs.push(perr(
                name.span(),
                format!(
                    "{n} groups are named `{}`; use the object id of one: {}",
                    name.get_ref(),
                    found
                        .iter()
                        .map(|&g| org.groups[g].id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            None
        }
    }
}

/// How many of `rows` hold each value of `col`, largest first; counted on
/// the dictionary codes, so a million rows cost no allocation.
fn tally(
    col: &ringmaster_core::column::DictColumn,
    rows: impl Iterator<Item = u32>,
) -> Vec<(String, u64)> {
    let mut counts = vec![0u64; col.dict.len() + 1];
    for r in rows {
        counts[col.code(r) as usize] += 1;
    }
    let mut v: Vec<(String, u64)> = counts
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| {
            (
                col.dict.value(c as u32).unwrap_or("(unknown)").to_string(),
                *n,
            )
        })
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

fn platforms_of(org: &Org, set: &RoaringBitmap) -> Vec<(String, u64)> {
    tally(&org.devices.cols[DeviceAttr::Platform.index()], set.iter())
}

/// Distinct primary users of a set of devices.
fn user_count(org: &Org, set: &RoaringBitmap) -> u64 {
    let mut seen = vec![0u64; (org.users.rows as usize).div_ceil(64)];
    let mut n = 0;
    for d in set {
        if let Some(&u) = org.device_user.get(d as usize)
            && u != NO_ROW
        {
            let (w, b) = (u as usize / 64, 1u64 << (u % 64));
            if seen[w] & b == 0 {
                seen[w] |= b;
                n += 1;
            }
        }
    }
    n
}

/// Builds the plan. Input errors (bad values, unknown groups, impossible
/// pins, goals that are not SMART) come back together, each with its place.
pub fn build(spec: &PlanFile, inputs: Inputs<'_>) -> Result<Plan, Vec<PlanError>> {
    let org = inputs.org;
    let res = inputs.res;
    let mut errs: Vec<PlanError> = Vec::new();
    let mut checks: Vec<Check> = Vec::new();
    let check = |checks: &mut Vec<Check>, severity, phase, message: String| {
        checks.push(Check {
            severity,
            phase,
            message,
        })
    };

    // Rollout and calendar.
    let r = &spec.rollout;
    if r.id.get_ref().trim().is_empty() {
        errs.push(perr(
            r.id.span(),
            "the rollout id must not be empty: it seeds who lands in which wave",
        ));
    }
    let tz = parse_tz(&r.time_zone, &mut errs);
    let start = parse_date(&r.start, "start", &mut errs);
    let check_in = parse_duration(&r.check_in, "check_in", &mut errs).unwrap_or(8.0);
    let cal_days = parse_days(&spec.calendar.working_days, &mut errs);
    if spec.calendar.working_days.is_empty() {
        errs.push(perr(
            0..0,
            "calendar.working_days is empty: no day would ever be allowed",
        ));
    }
    let cal_hours = parse_hours_window(&spec.calendar.hours, &mut errs);
    let mut freezes = Vec::new();
    for f in &spec.calendar.freezes {
        if let (Some(from), Some(to)) = (
            parse_date(&f.from, "freeze start", &mut errs),
            parse_date(&f.to, "freeze end", &mut errs),
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
    let hd = &spec.help_desk;
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

    // New policies.
    let mut is_new: Vec<bool> = (0..org.policies.len())
        .map(|p| inputs.proposed.get(p).copied().unwrap_or(false))
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
    let new_policies: Vec<usize> = (0..org.policies.len()).filter(|&p| is_new[p]).collect();
    if new_policies.is_empty() && errs.is_empty() {
        errs.push(perr(
            0..0,
            "the plan deploys no new policy: list exports under sources.new or policy names under sources.new_policies",
        ));
    }

    // Targeted groups.
    let default_window = match (&tz, cal_hours) {
        (Some(tz), Some(hours)) => Some(Window {
            tz: tz.clone(),
            tz_name: r.time_zone.get_ref().trim().to_string(),
            days: cal_days,
            hours,
            not_before: None,
        }),
        _ => None,
    };
    let mut groups: Vec<GroupInfo> = Vec::new();
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
        let index = find_group(org, &g.group, &mut errs);
        let window = group_window(g, default_window.as_ref(), &mut errs);
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
    let group_by_key = |k: &Spanned<String>, errs: &mut Vec<PlanError>| -> Option<usize> {
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
    };

    // Phases: in order, each once.
    let mut last: Option<PhaseKind> = None;
    for p in &spec.phases {
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
    if spec.phases.is_empty() {
        errs.push(perr(0..0, "the plan has no phases"));
    }

    // Scope.
    let mut scope = RoaringBitmap::new();
    for g in &groups {
        scope |= &g.devices;
    }
    if spec.groups.is_empty() {
        for &p in &new_policies {
            scope |= res.policies[p].applicable();
        }
    }
    // The rollout assigns new policies wave by wave: one without assignments
    // is analysed as reaching the whole scope; one with assignments already
    // reaches devices on its own, which the plan must know.
    for &p in &new_policies {
        let pol = &org.policies[p];
        if pol.assignments.is_empty() {
            let (not_applicable, by_platform) =
                ringmaster_core::applicability::not_applicable(org, pol, &scope);
            let t = &mut res.policies[p];
            t.applicable = &scope - &not_applicable;
            t.devices = scope.clone();
            t.not_applicable = not_applicable;
            t.not_applicable_by_platform = by_platform;
        } else {
            let outside =
                res.policies[p].devices.len() - res.policies[p].devices.intersection_len(&scope);
            if outside > 0 {
                check(
                    &mut checks,
                    CheckSeverity::Warning,
                    PhaseKind::ProjectScope,
                    format!(
                        "new policy '{}' is already assigned to {outside} device(s) outside the plan's groups: its own assignments reach them at once, not wave by wave",
                        pol.name
                    ),
                );
            }
        }
    }
    let res: &Resolution = res;
    // Devices no new policy applies to (an iPhone in a group targeted by a
    // Windows baseline) would only report not applicable: they stay out of
    // the waves and are counted instead.
    let targeted = scope.clone();
    let mut takes_any = RoaringBitmap::new();
    for &p in &new_policies {
        let (na, _) =
            ringmaster_core::applicability::not_applicable(org, &org.policies[p], &targeted);
        takes_any |= &targeted - &na;
    }
    if !new_policies.is_empty() {
        scope &= &takes_any;
    }
    let cannot = targeted.len() - scope.len();
    if cannot > 0 {
        check(
            &mut checks,
            CheckSeverity::Info,
            PhaseKind::ProjectScope,
            format!(
                "{cannot} device(s) of the targeted groups cannot take any new policy (platform, OS edition or version) and are left out of the waves"
            ),
        );
    }
    if scope.is_empty() {
        check(
            &mut checks,
            CheckSeverity::Error,
            PhaseKind::ProjectScope,
            if spec.groups.is_empty() {
                "nothing is in scope: list targeted groups ([[groups]]) or assign the new policies"
                    .to_string()
            } else {
                "nothing is in scope: no device of the targeted groups can take the new policies"
                    .to_string()
            },
        );
    }
    let barred_set = pilot::barred_all(org, &targeted);
    let barred_in_scope = barred_set.intersection_len(&scope);
    let plan_id = r.id.get_ref().trim().to_string();

    // Waves, phase by phase; `assigned` holds devices already in a wave.
    struct Draft {
        name: String,
        phase: usize,
        mode: Option<&'static str>,
        groups: Vec<String>,
        set: RoaringBitmap,
        pin: Option<Spanned<String>>,
        bake: f64,
        window: Window,
        approval: bool,
    }
    let mut drafts: Vec<Draft> = Vec::new();
    let mut assigned = RoaringBitmap::new();
    let mut pilot_report: Option<Pilot> = None;
    let mut order: Option<Vec<u32>> = None;
    for (pi, p) in spec.phases.iter().enumerate() {
        let kind = *p.kind.get_ref();
        let default_bake = match kind {
            PhaseKind::ProofOfConcept => 48.0,
            PhaseKind::Pilot => 72.0,
            _ => 24.0,
        };
        let bake = match &p.bake {
            Some(b) => parse_duration(b, "bake", &mut errs).unwrap_or(default_bake),
            None => default_bake.max(check_in),
        };
        if let Some(b) = &p.bake
            && bake < check_in
        {
            errs.push(perr(
                b.span(),
                format!("a bake time of {} is shorter than one check-in ({}h): devices would not have reported", b.get_ref(), check_in),
            ));
        }
        let Some(window) = default_window.clone() else {
            continue;
        };
        match kind {
            PhaseKind::ProofOfConcept => {
                let mut set: RoaringBitmap = {
                    let lab = &org.devices.cols[DeviceAttr::IsLab.index()];
                    match lab.dict.get("true") {
                        Some(code) => lab.rows_of(code).into_owned(),
                        None => RoaringBitmap::new(),
                    }
                };
                for tg in &p.test_groups {
                    if let Some(g) = find_group(org, tg, &mut errs) {
                        set |= group_devices(org, res, g);
                    }
                }
                let vip = set
                    .iter()
                    .filter(|&d| matches!(pilot::barred(org, d), Some("VIP" | "executive")))
                    .count();
                if vip > 0 {
                    check(
                        &mut checks,
                        CheckSeverity::Error,
                        kind,
                        format!(
                            "the proof of concept holds {vip} device(s) of VIPs or executives: it is for lab devices and test users only"
                        ),
                    );
                }
                if set.is_empty() {
                    check(&mut checks, CheckSeverity::Error, kind, "the proof of concept has no devices: mark lab devices (isLab) or name test_groups".into());
                }
                if !p.help_desk_participates {
                    check(&mut checks, CheckSeverity::Warning, kind, "the help desk does not take part in the proof of concept (help_desk_participates = false)".into());
                }
                if set.is_empty() {
                    continue;
                }
                assigned |= &set;
                drafts.push(Draft {
                    name: p.name.clone().unwrap_or_else(|| "Proof of concept".into()),
                    phase: pi,
                    mode: None,
                    groups: p.test_groups.iter().map(|g| g.get_ref().clone()).collect(),
                    set,
                    pin: p.start.clone(),
                    bake,
                    window,
                    approval: p.approval,
                });
            }
            PhaseKind::Pilot => {
                let default_spec;
                let ps = match &p.pilot {
                    Some(ps) => ps,
                    None => {
                        default_spec = crate::spec::PilotSpec {
                            share: Spanned::new(0..0, "1%".into()),
                            min_devices: 50,
                            dimensions: None,
                            prefer: Vec::new(),
                        };
                        &default_spec
                    }
                };
                let share = parse_share(&ps.share, &mut errs).unwrap_or(0.01);
                let dims: Vec<Dimension> = match &ps.dimensions {
                    Some(ds) => ds
                        .iter()
                        .filter_map(|d| parse_dimension(d, &mut errs))
                        .collect(),
                    None => Dimension::ALL.to_vec(),
                };
                let mut preferred = pilot::it_staff_devices(org);
                for k in &ps.prefer {
                    if let Some(gi) = group_by_key(k, &mut errs) {
                        preferred |= &groups[gi].devices;
                    }
                }
                for g in &groups {
                    if spec.groups[g.spec_index].willingness == Level::High {
                        preferred |= &g.devices;
                    }
                }
                let population = &scope - &assigned;
                let eligible = population.len() - population.intersection_len(&barred_set);
                let size = pilot::size_for(eligible, share, ps.min_devices);
                let chosen = pilot::select(
                    org,
                    &population,
                    size,
                    &dims,
                    &plan_id,
                    &preferred,
                    &RoaringBitmap::new(),
                );
                if chosen.size < ps.min_devices {
                    check(
                        &mut checks,
                        CheckSeverity::Warning,
                        kind,
                        format!(
                            "the pilot has {} devices, fewer than the {} asked for: the scope has only {} eligible devices",
                            chosen.size, ps.min_devices, eligible
                        ),
                    );
                }
                for dr in &chosen.dimensions {
                    if !dr.missing.is_empty() {
                        check(
                            &mut checks,
                            CheckSeverity::Warning,
                            kind,
                            format!(
                                "pilot misses {} strata that hold ≥ 1 % of production: {}",
                                dr.dimension.name(),
                                dr.missing.join(", ")
                            ),
                        );
                    }
                }
                let set = chosen.devices.clone();
                assigned |= &set;
                let name = p.name.clone().unwrap_or_else(|| "Pilot".into());
                for (mode, label) in [("isolated", "isolated"), ("combined", "combined")] {
                    drafts.push(Draft {
                        name: format!("{name} ({label})"),
                        phase: pi,
                        mode: Some(mode),
                        groups: Vec::new(),
                        set: set.clone(),
                        pin: if mode == "isolated" {
                            p.start.clone()
                        } else {
                            None
                        },
                        bake,
                        window: window.clone(),
                        approval: p.approval,
                    });
                }
                pilot_report = Some(chosen);
            }
            PhaseKind::Enterprise => {
                let phase_population = (&scope - &assigned).len();
                for (wi, w) in p.waves.iter().enumerate() {
                    let bases = [!w.groups.is_empty(), w.share.is_some(), w.rest];
                    let n = bases.iter().filter(|b| **b).count();
                    if n > 1 {
                        errs.push(perr(
                            p.kind.span(),
                            format!("wave {} of the enterprise rollout sets more than one of groups, share and rest", wi + 1),
                        ));
                        continue;
                    }
                    let mut keys = Vec::new();
                    let mut wave_groups = Vec::new();
                    for k in &w.groups {
                        if let Some(gi) = group_by_key(k, &mut errs) {
                            keys.push(groups[gi].key.clone());
                            wave_groups.push(gi);
                        }
                    }
                    let base: RoaringBitmap = if !wave_groups.is_empty() {
                        let mut s = RoaringBitmap::new();
                        for &gi in &wave_groups {
                            s |= &groups[gi].devices;
                        }
                        (s & &scope) - &assigned
                    } else if let Some(sh) = &w.share {
                        let Some(share) = parse_share(sh, &mut errs) else {
                            continue;
                        };
                        let want = ((phase_population as f64) * share).ceil() as u64;
                        let order =
                            order.get_or_insert_with(|| stable_order(org, &scope, &plan_id));
                        order
                            .iter()
                            .copied()
                            .filter(|d| !assigned.contains(*d))
                            .take(want as usize)
                            .collect()
                    } else if w.rest || w.split_by.is_some() {
                        &scope - &assigned
                    } else {
                        errs.push(perr(
                            p.kind.span(),
                            format!("wave {} of the enterprise rollout takes nobody: give it groups, a share or rest = true", wi + 1),
                        ));
                        continue;
                    };
                    let name = w.name.clone().unwrap_or_else(|| wave_name(w, wi, &keys));
                    let window = wave_window(&wave_groups, &groups, &window);
                    let bake = match &w.bake {
                        Some(b) => {
                            let v = parse_duration(b, "bake", &mut errs).unwrap_or(bake);
                            if v < check_in {
                                errs.push(perr(b.span(), format!("a bake time of {} is shorter than one check-in ({check_in}h)", b.get_ref())));
                            }
                            v
                        }
                        None => bake,
                    };
                    let parts: Vec<(String, RoaringBitmap)> = match &w.split_by {
                        Some(dim) => match parse_dimension(dim, &mut errs) {
                            Some(dim) => split(org, &base, dim)
                                .into_iter()
                                .map(|(v, s)| match &w.name {
                                    Some(n) => (format!("{n} — {v}"), s),
                                    None => (v, s),
                                })
                                .collect(),
                            None => continue,
                        },
                        None => vec![(name, base)],
                    };
                    for (pi_, (name, set)) in parts.into_iter().enumerate() {
                        if set.is_empty() {
                            check(
                                &mut checks,
                                CheckSeverity::Warning,
                                kind,
                                format!(
                                    "wave '{name}' has no devices left: earlier waves took them all"
                                ),
                            );
                            continue;
                        }
                        assigned |= &set;
                        drafts.push(Draft {
                            name,
                            phase: pi,
                            mode: None,
                            groups: keys.clone(),
                            set,
                            pin: if pi_ == 0 {
                                w.start
                                    .clone()
                                    .or(if wi == 0 { p.start.clone() } else { None })
                            } else {
                                None
                            },
                            bake,
                            window: window.clone(),
                            approval: p.approval,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    // No device may be silently left out.
    let left = &scope - &assigned;
    if !left.is_empty()
        && spec
            .phases
            .iter()
            .any(|p| *p.kind.get_ref() == PhaseKind::Enterprise)
    {
        let sample: Vec<String> = left.iter().take(3).map(|d| org.device_label(d)).collect();
        check(
            &mut checks,
            CheckSeverity::Error,
            PhaseKind::Enterprise,
            format!(
                "{} device(s) in scope are in no wave (e.g. {}): add a wave with rest = true or with a group that holds them",
                left.len(),
                sample.join(", ")
            ),
        );
    }

    let (Some(tz), Some(start), Some(cal_hours)) = (tz, start, cal_hours) else {
        return Err(errs);
    };

    // Schedule: phases and waves one after another, each wave after the
    // previous one has baked.
    let capacity = (*hd.capacity_per_day.get_ref()).max(1) as f64;
    let rate = hd.tickets_per_100_devices.max(0.0) / 100.0;
    let plan_open = start
        .to_datetime(cal_hours.0)
        .to_zoned(tz.clone())
        .unwrap_or_else(|_| jiff::Timestamp::UNIX_EPOCH.to_zoned(tz.clone()));
    let mut cursor = plan_open.clone();
    let mut waves: Vec<WavePlan> = Vec::new();
    let mut phases: Vec<PhasePlan> = Vec::new();
    let scope_n = scope.len().max(1) as f64;
    for (pi, p) in spec.phases.iter().enumerate() {
        let kind = *p.kind.get_ref();
        let mine: Vec<usize> = drafts
            .iter()
            .enumerate()
            .filter(|(_, d)| d.phase == pi)
            .map(|(i, _)| i)
            .collect();
        let phase_start;
        let mut phase_end = None;
        if mine.is_empty() {
            // A phase without waves: pinned or next, for its duration.
            let mut s = cursor.clone();
            if let Some(pin) = &p.start
                && let Some(day) = parse_date(pin, "start", &mut errs)
            {
                let pinned = day
                    .to_datetime(cal_hours.0)
                    .to_zoned(tz.clone())
                    .unwrap_or(s.clone());
                if pinned < cursor {
                    errs.push(perr(
                        pin.span(),
                        format!(
                            "{} is pinned to {day}, before the previous phase ends ({})",
                            kind.label(),
                            cursor.strftime("%Y-%m-%d %H:%M")
                        ),
                    ));
                }
                s = pinned;
            }
            phase_start = s.clone();
            if kind != PhaseKind::RunState {
                let hours = match &p.duration {
                    Some(d) => parse_duration(d, "duration", &mut errs).unwrap_or(120.0),
                    None => 120.0,
                };
                let e = schedule::plus_hours(&s, hours);
                cursor = e.clone();
                phase_end = Some(e);
            }
        } else {
            let mut first = None;
            for &di in &mine {
                let d = &drafts[di];
                let n = d.set.len();
                let expected = n as f64 * rate;
                let days_needed = ((expected / capacity).ceil() as u64).clamp(1, n.max(1));
                let earliest = cursor.timestamp();
                let first_day = match &d.pin {
                    Some(pin) => pinned_day(
                        pin,
                        &d.window,
                        &freezes,
                        &cursor,
                        &d.name,
                        waves.last(),
                        &mut errs,
                    ),
                    None => {
                        let day = d.window.first_day(&earliest, &freezes);
                        if day.is_none() {
                            errs.push(perr(0..0, format!("wave '{}' finds no allowed day within ten years: check its days, hours and freezes", d.name)));
                        }
                        day
                    }
                };
                let Some(first_day) = first_day else {
                    continue;
                };
                let mut apply_days = vec![first_day];
                while (apply_days.len() as u64) < days_needed {
                    match d
                        .window
                        .next_day(*apply_days.last().unwrap_or(&first_day), &freezes)
                    {
                        Some(x) => apply_days.push(x),
                        None => break,
                    }
                }
                let wave_start = d.window.open(first_day);
                let last_open = d.window.open(*apply_days.last().unwrap_or(&first_day));
                let end = schedule::plus_hours(&last_open, d.bake);
                first.get_or_insert(wave_start.clone());
                cursor = end.clone();
                let users = user_count(org, &d.set);
                waves.push(WavePlan {
                    name: d.name.clone(),
                    phase: kind,
                    mode: d.mode,
                    groups: d.groups.clone(),
                    devices: n,
                    users,
                    share_of_scope: n as f64 / scope_n,
                    platforms: platforms_of(org, &d.set),
                    time_zone: d.window.tz_name.clone(),
                    start: wave_start,
                    devices_per_day: n.div_ceil(apply_days.len() as u64),
                    apply_days,
                    expected_tickets: expected,
                    bake_hours: d.bake,
                    end,
                    pinned: d.pin.is_some(),
                    approval: d.approval,
                    set: d.set.clone(),
                });
            }
            phase_start = first.unwrap_or(cursor.clone());
            phase_end = Some(cursor.clone());
        }
        let wave_ids: Vec<usize> = (0..waves.len())
            .filter(|&w| waves[w].phase == kind)
            .collect();
        // Goals, judged on the phase's smallest wave.
        let smallest = wave_ids.iter().map(|&w| waves[w].devices).min();
        let mut phase_goals = Vec::new();
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
                    // Judged by Wilson bounds, a rate bar can be out of reach
                    // for a small wave even when every device succeeds.
                    if p.wilson
                        && goal.metric.is_rate()
                        && let Some(n) = smallest.filter(|n| *n > 0)
                    {
                        let (best_lo, best_hi) = if goal.metric.higher_is_better() {
                            (ringmaster_core::gates::wilson(n, n, 1.96).0, 0.0)
                        } else {
                            (1.0, ringmaster_core::gates::wilson(0, n, 1.96).1)
                        };
                        let out_of_reach = if goal.metric.higher_is_better() {
                            best_lo < goal.threshold
                        } else {
                            best_hi > goal.threshold
                        };
                        if out_of_reach {
                            let span = g
                                .threshold
                                .as_ref()
                                .map(|s| s.span())
                                .unwrap_or_else(|| p.kind.span());
                            errs.push(perr(span, format!(
                                "{} goal: goal is not attainable: on the smallest wave ({n} devices) even a perfect result has a 95 % bound of {}, beyond the bar; make the wave bigger, lower the bar, or set wilson = false",
                                kind.label(),
                                goal.value_text(if goal.metric.higher_is_better() { best_lo } else { best_hi })
                            )));
                        }
                    }
                    phase_goals.push(goal)
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
        if phase_goals.is_empty() && matches!(kind, PhaseKind::Pilot | PhaseKind::Enterprise) {
            check(
                &mut checks,
                CheckSeverity::Warning,
                kind,
                format!(
                    "{} has no goals: its waves would pass on bake time alone",
                    kind.label()
                ),
            );
        }
        phases.push(PhasePlan {
            kind,
            label: kind.label(),
            name: p.name.clone().unwrap_or_else(|| kind.label().to_string()),
            start: phase_start,
            end: phase_end,
            goal_sentences: phase_goals.iter().map(Goal::sentence).collect(),
            goals: phase_goals,
            waves: wave_ids,
            approval: p.approval,
            promotion: p.promotion,
            on_fail: p.on_fail,
            gate_policy: ringmaster_core::gates::GatePolicy {
                wilson: p.wilson,
                z: 1.96,
                consecutive_failures: p.consecutive_failures.max(1),
                total_failures: p.total_failures.max(1),
            },
        });
    }

    // Per group: its overlap with each wave, users, platforms and cities;
    // independent per group, so computed in parallel.
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
    let mut group_plans = Vec::new();
    for (g, st) in groups.iter().zip(stats) {
        let gs = &spec.groups[g.spec_index];
        let overlap = &st.overlap;
        let first_wave = overlap.iter().position(|n| *n > 0).map(|i| &waves[i]);
        let last_wave = overlap.iter().rposition(|n| *n > 0).map(|i| &waves[i]);
        if let (Some(na), Some(w)) = (&gs.not_after, last_wave)
            && let Ok(day) = na.get_ref().trim().parse::<Date>()
            && w.end.date() > day
        {
            check(
                &mut checks,
                CheckSeverity::Warning,
                PhaseKind::Enterprise,
                format!(
                    "group '{}' asked to be done by {day}; its last wave '{}' ends {}",
                    g.key,
                    w.name,
                    w.end.date()
                ),
            );
        }
        let main_phase = (0..waves.len())
            .filter(|&i| overlap[i] > 0)
            .max_by_key(|&i| (overlap[i], std::cmp::Reverse(i)))
            .map(|i| waves[i].phase);
        let (enrollment, why) = recommend(g, gs, main_phase, &barred_set, &st.cities);
        let users = st.users;
        if g.devices.is_empty() {
            check(
                &mut checks,
                CheckSeverity::Error,
                PhaseKind::ProjectScope,
                format!(
                    "targeted group '{}' ({}) has no devices",
                    g.key, org.groups[g.index].name
                ),
            );
        }
        group_plans.push(GroupPlan {
            key: g.key.clone(),
            name: org.groups[g.index].name.clone(),
            group_id: org.groups[g.index].id.clone(),
            devices: g.devices.len(),
            users,
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

    // Project scope checks on the new policies.
    for &p in &new_policies {
        let pol = &org.policies[p];
        if pol.platforms.is_empty() {
            check(
                &mut checks,
                CheckSeverity::Error,
                PhaseKind::ProjectScope,
                format!(
                    "new policy '{}' has no platform: Intune cannot tell which devices can take it",
                    pol.name
                ),
            );
        }
        let na = res.policies[p].not_applicable.intersection_len(&targeted);
        if na > 0 {
            let by: Vec<String> = res.policies[p]
                .not_applicable_by_platform
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            check(
                &mut checks,
                CheckSeverity::Warning,
                PhaseKind::ProjectScope,
                format!(
                    "new policy '{}' reaches {na} device(s) in scope that cannot take it (not applicable: {})",
                    pol.name,
                    by.join(", ")
                ),
            );
        }
        let subject = format!("policy '{}'", pol.name);
        for d in res.diagnostics.iter().filter(|d| d.subject == subject) {
            check(
                &mut checks,
                if d.severity == Severity::Error {
                    CheckSeverity::Error
                } else {
                    CheckSeverity::Warning
                },
                PhaseKind::ProjectScope,
                format!("new policy '{}': {}", pol.name, d.message),
            );
        }
    }
    // Conflicts between the new policies and what they meet.
    let new_ids: rustc_hash::FxHashSet<&str> = new_policies
        .iter()
        .flat_map(|&p| org.policies[p].settings.iter().map(|l| l.id.as_str()))
        .collect();
    let mut analyzed: Vec<usize> = (0..org.policies.len())
        .filter(|&p| {
            is_new[p]
                || org.policies[p]
                    .settings
                    .iter()
                    .any(|l| new_ids.contains(l.id.as_str()))
        })
        .collect();
    analyzed.sort_unstable();
    let acceptances: Vec<Acceptance> = spec
        .accept
        .iter()
        .filter_map(|a| {
            Some(Acceptance {
                setting: a.setting.clone(),
                policies: a.policies.clone(),
                reason: a.reason.clone(),
                expires: parse_date(&a.expires, "expires", &mut errs)?,
            })
        })
        .collect();
    let report = conflicts::analyze(
        org,
        res,
        &conflicts::Scope {
            policies: &analyzed,
            proposed: &is_new,
            accepted: &acceptances,
            today: start,
        },
    );
    for f in report.findings.iter().filter(|f| {
        f.values
            .iter()
            .any(|v| org.policy(&v.policy_id).is_some_and(|p| is_new[p]))
    }) {
        let within = f.affected.intersection_len(&scope);
        let values = f
            .values
            .iter()
            .map(|v| format!("'{}' = {}", v.name, v.value))
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
        check(
            &mut checks,
            severity,
            PhaseKind::ProjectScope,
            format!(
                "{}: {what} on {within} device(s) in scope — {values}",
                f.setting
            ),
        );
    }
    if errs.is_empty() {
        checks.sort_by_key(|c| (c.phase, c.severity as u8));
    }

    let changes = settings_changes(org, res, &new_policies, &is_new, &scope);
    let alert_rules = alert_rules(&spec.alerts, &mut errs);
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Plan {
        id: plan_id,
        name: r.name.clone(),
        purpose: r.purpose.clone(),
        time_zone: r.time_zone.get_ref().trim().to_string(),
        start,
        check_in_hours: check_in,
        help_desk: HelpDeskPlan {
            contact: hd.contact.clone(),
            self_help: hd.self_help.clone(),
            capacity_per_day: *hd.capacity_per_day.get_ref(),
            tickets_per_100_devices: hd.tickets_per_100_devices,
        },
        scope: ScopePlan {
            devices: scope.len(),
            users: user_count(org, &scope),
            platforms: platforms_of(org, &scope),
            barred: barred_in_scope,
            new_policies: new_policies
                .iter()
                .map(|&p| PolicyRef {
                    id: org.policies[p].id.clone(),
                    name: org.policies[p].name.clone(),
                    platforms: org.policies[p]
                        .platforms
                        .iter()
                        .map(|x| x.as_str().to_string())
                        .collect(),
                })
                .collect(),
            set: scope,
        },
        groups: group_plans,
        phases,
        waves,
        pilot: pilot_report,
        checks,
        changes,
        conflicts: report,
        alerts: alert_rules,
    })
}

/// The run state's alert rules: each `[[alerts]]` entry replaces the
/// built-in rule of its kind, keeping the parts it leaves out.
fn alert_rules(specs: &[crate::spec::AlertSpec], errs: &mut Vec<PlanError>) -> Vec<alerts::Rule> {
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

fn wave_name(w: &WaveSpec, i: usize, keys: &[String]) -> String {
    if !keys.is_empty() {
        keys.join(" + ")
    } else if let Some(s) = &w.share {
        format!("Wave {} ({})", i + 1, s.get_ref().trim())
    } else {
        format!("Wave {} (rest)", i + 1)
    }
}

/// A targeted group's window: its own days, hours and zone, else the calendar's.
fn group_window(
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

/// The window of a wave: its groups' shared days, latest not-before, and the
/// zone and hours of its first group.
fn wave_window(wave_groups: &[usize], groups: &[GroupInfo], default: &Window) -> Window {
    let mut it = wave_groups.iter().map(|&g| &groups[g].window);
    let Some(first) = it.next() else {
        return default.clone();
    };
    let mut w = first.clone();
    for o in it {
        for (i, d) in w.days.iter_mut().enumerate() {
            *d &= o.days[i];
        }
        w.not_before = w.not_before.max(o.not_before);
    }
    w
}

/// Checks a pinned start; the pin wins, so only a broken constraint is an error.
fn pinned_day(
    pin: &Spanned<String>,
    window: &Window,
    freezes: &[Freeze],
    cursor: &Zoned,
    name: &str,
    previous: Option<&WavePlan>,
    errs: &mut Vec<PlanError>,
) -> Option<Date> {
    let text = pin.get_ref().trim();
    // jiff reads a bare day as midnight: only a text with a time is an instant.
    let (day, time) = if let Ok(d) = text.parse::<Date>()
        && !text.contains(['T', 't', ' '])
    {
        (d, None)
    } else if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        (dt.date(), Some(dt.time()))
    } else {
        errs.push(perr(
            pin.span(),
            format!(
                "pinned start `{text}` is not a day (YYYY-MM-DD) or instant (YYYY-MM-DDTHH:MM)"
            ),
        ));
        return None;
    };
    if let Err(why) = window.check(day, freezes) {
        errs.push(perr(
            pin.span(),
            format!("wave '{name}' is pinned to {day}, but {why}"),
        ));
        return None;
    }
    if let Some(t) = time
        && (t < window.hours.0 || t >= window.hours.1)
    {
        errs.push(perr(
            pin.span(),
            format!(
                "wave '{name}' is pinned to {t}, outside the hours changes are allowed ({}-{})",
                window.hours.0.strftime("%H:%M"),
                window.hours.1.strftime("%H:%M")
            ),
        ));
        return None;
    }
    if window.open(day) < *cursor {
        let after = match previous {
            Some(w) => format!(
                "wave '{}' has baked (until {})",
                w.name,
                w.end.strftime("%Y-%m-%d %H:%M %Z")
            ),
            None => format!(
                "the previous phase ends ({})",
                cursor.strftime("%Y-%m-%d %H:%M %Z")
            ),
        };
        errs.push(perr(
            pin.span(),
            format!("wave '{name}' is pinned to {day}, before {after}"),
        ));
        return None;
    }
    Some(day)
}

/// Devices of `scope` in the plan's stable order (hash of plan id and device id),
/// so shares take the same devices however often the plan is recomputed.
fn stable_order(org: &Org, scope: &RoaringBitmap, plan_id: &str) -> Vec<u32> {
    let mut v: Vec<(u64, u32)> = scope
        .iter()
        .map(|d| {
            (
                pilot::stable_hash(plan_id, org.device_id(d).unwrap_or("")),
                d,
            )
        })
        .collect();
    v.sort_unstable();
    v.into_iter().map(|(_, d)| d).collect()
}

/// One part per stratum of `dim`, smallest first (so the riskiest step is small).
fn split(org: &Org, set: &RoaringBitmap, dim: Dimension) -> Vec<(String, RoaringBitmap)> {
    let mut by: std::collections::BTreeMap<String, RoaringBitmap> = Default::default();
    let mut memo: rustc_hash::FxHashMap<(u32, u32), String> = Default::default();
    let pc = &org.devices.cols[DeviceAttr::Platform.index()];
    let uc = &org.users.cols[UserAttr::Department.index()];
    for d in set {
        let u = org.device_user.get(d as usize).copied().unwrap_or(NO_ROW);
        let key = (pc.code(d), if u == NO_ROW { u32::MAX } else { uc.code(u) });
        let v = match dim {
            Dimension::Platform | Dimension::Department => {
                memo.entry(key).or_insert_with(|| dim.value(org, d)).clone()
            }
            _ => dim.value(org, d),
        };
        by.entry(v).or_default().insert(d);
    }
    let mut v: Vec<(String, RoaringBitmap)> = by.into_iter().collect();
    v.sort_by(|a, b| a.1.len().cmp(&b.1.len()).then(a.0.cmp(&b.0)));
    v
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

/// For every setting of the new policies: the new value and what the devices
/// in scope it reaches have today from existing policies.
fn settings_changes(
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
        for l in &pol.settings {
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
        for l in &org.policies[p].settings {
            let mut today: Vec<(String, u64)> = Vec::new();
            let mut covered = RoaringBitmap::new();
            for (e, value) in existing.get(l.id.as_str()).into_iter().flatten() {
                let on = res.policies[*e].applicable() & &reach;
                if on.is_empty() {
                    continue;
                }
                covered |= &on;
                match today.iter_mut().find(|(v, _)| v == value) {
                    Some((_, n)) => *n += on.len(),
                    None => today.push((value.to_string(), on.len())),
                }
            }
            today.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            out.push(Change {
                setting_id: l.id.clone(),
                setting: readable_name(&l.id),
                value: match l.kind {
                    LeafKind::Merge => format!("adds {}", l.value),
                    _ => l.value.clone(),
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
