//! Why a policy does or does not reach a device, as a chain of reasons an
//! admin can check: which group, through which nested group or user, which
//! filter, what the rule said about which property values.

use crate::model::{DeviceAttr, FilterMode, GroupKind, Target};
use crate::org::{NO_ROW, Org};
use crate::rules::{EvalContext, Object, Trace};
use crate::targeting::Resolution;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    Included,
    Excluded,
    NotTargeted,
    NotApplicable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Included => "Included",
            Status::Excluded => "Excluded",
            Status::NotTargeted => "NotTargeted",
            Status::NotApplicable => "NotApplicable",
        }
    }

    /// The status in words for people (`as_str` is the stable wire name).
    pub fn label(self) -> &'static str {
        match self {
            Status::Included => "Included",
            Status::Excluded => "Excluded",
            Status::NotTargeted => "Not targeted",
            Status::NotApplicable => "Not applicable",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceExplanation {
    pub device: DeviceFacts,
    /// Groups the device is in, directly or through nesting.
    pub device_groups: Vec<String>,
    /// Groups the primary user is in.
    pub user_groups: Vec<String>,
    pub policies: Vec<PolicyExplanation>,
    /// Setting conflicts on this device among all policies that reach it
    /// (limited to those involving the explained policies when some were named).
    pub conflicts: Vec<crate::conflicts::Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceFacts {
    pub row: u32,
    pub name: Option<String>,
    pub entra_object_id: Option<String>,
    pub intune_id: Option<String>,
    pub platform: Option<String>,
    pub os_version: Option<String>,
    pub model: Option<String>,
    pub ownership: Option<String>,
    pub primary_user: Option<String>,
    /// Users who signed in to it (`usersLoggedOn`), with the last date when known.
    pub signed_in: Vec<String>,
}

/// How a user is tied to a device, which is how a user assignment reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserLink {
    Primary,
    /// Signed in, last at the time when the export gave it.
    SignedIn(Option<jiff::Timestamp>),
}

/// The users a user assignment can reach device `d` through: the primary
/// user first, then those who signed in (a primary user who also signed in
/// is listed once, as primary).
pub fn device_users(org: &Org, d: u32) -> Vec<(u32, UserLink)> {
    let mut out: Vec<(u32, UserLink)> = org
        .device_user
        .get(d as usize)
        .copied()
        .filter(|u| *u != NO_ROW)
        .map(|u| (u, UserLink::Primary))
        .into_iter()
        .collect();
    for (u, at) in org.device_logons(d) {
        if !out.iter().any(|(v, _)| *v == u) {
            out.push((u, UserLink::SignedIn(at)));
        }
    }
    out
}

/// `its primary user X <rest>` or `user X signed in to it on 2026-11-20 and <rest>`.
fn user_phrase(org: &Org, u: u32, link: UserLink, rest: &str) -> String {
    let label = org.user_label(u);
    match link {
        UserLink::Primary => format!("its primary user {label} {rest}"),
        UserLink::SignedIn(Some(t)) => format!(
            "user {label} signed in to it on {} and {rest}",
            t.to_zoned(jiff::tz::TimeZone::UTC).date()
        ),
        UserLink::SignedIn(None) => format!("user {label} signed in to it and {rest}"),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyExplanation {
    pub policy_id: String,
    pub policy: String,
    pub status: Status,
    /// One sentence that says why.
    pub reason: String,
    pub assignments: Vec<AssignmentStep>,
    /// Settings of an applied policy this device's Windows version does not
    /// support (Intune reports each Not applicable): (setting id, reason).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub settings_not_applicable: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AssignmentStep {
    /// `include` or `exclude`.
    pub intent: &'static str,
    pub target: String,
    pub reaches: bool,
    /// How the device (or its primary user) is a member, outermost first.
    pub via: Vec<String>,
    pub filter: Option<FilterStep>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FilterStep {
    pub name: String,
    pub mode: FilterMode,
    pub rule: String,
    /// Whether the rule is true for the device.
    pub matched: bool,
    pub trace: Option<Trace>,
}

/// Explains every policy (or the given ones) for device `row`.
pub fn explain_device(
    org: &Org,
    res: &Resolution,
    row: u32,
    only: Option<&[usize]>,
    now: jiff::Timestamp,
) -> DeviceExplanation {
    let user = org
        .device_user
        .get(row as usize)
        .copied()
        .filter(|u| *u != NO_ROW);
    let facts = DeviceFacts {
        row,
        name: org.device(DeviceAttr::Name, row).map(Into::into),
        entra_object_id: org.device(DeviceAttr::EntraObjectId, row).map(Into::into),
        intune_id: org.device(DeviceAttr::ManagedId, row).map(Into::into),
        platform: org.device(DeviceAttr::Platform, row).map(Into::into),
        os_version: org.device(DeviceAttr::OsVersion, row).map(Into::into),
        model: org.device(DeviceAttr::Model, row).map(Into::into),
        ownership: org.device(DeviceAttr::Ownership, row).map(Into::into),
        primary_user: user.map(|u| org.user_label(u)),
        signed_in: org
            .device_logons(row)
            .map(|(u, at)| match at {
                Some(t) => format!(
                    "{} (last {})",
                    org.user_label(u),
                    t.to_zoned(jiff::tz::TimeZone::UTC).date()
                ),
                None => org.user_label(u),
            })
            .collect(),
    };
    let users = device_users(org, row);
    let device_groups = (0..org.groups.len())
        .filter(|&g| res.group_devices[g].contains(row))
        .map(|g| org.groups[g].name.clone())
        .collect();
    let user_groups = user
        .map(|u| {
            (0..org.groups.len())
                .filter(|&g| res.group_users[g].contains(u))
                .map(|g| org.groups[g].name.clone())
                .collect()
        })
        .unwrap_or_default();
    let all: Vec<usize> = (0..org.policies.len()).collect();
    let policies = only
        .unwrap_or(&all)
        .iter()
        .map(|&p| explain_policy(org, res, p, row, &users, now))
        .collect();
    let all_policies: Vec<usize> = (0..org.policies.len()).collect();
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let scope = crate::conflicts::Scope {
        policies: &all_policies,
        proposed: &[],
        accepted: &[],
        today,
    };
    let mut conflicts = crate::conflicts::analyze_device(org, res, &scope, row);
    if let Some(only) = only {
        conflicts.retain(|f| {
            f.values
                .iter()
                .any(|v| only.iter().any(|&p| org.policies[p].id == v.policy_id))
        });
    }
    DeviceExplanation {
        device: facts,
        device_groups,
        user_groups,
        policies,
        conflicts,
    }
}

fn explain_policy(
    org: &Org,
    res: &Resolution,
    p: usize,
    d: u32,
    users: &[(u32, UserLink)],
    now: jiff::Timestamp,
) -> PolicyExplanation {
    let policy = &org.policies[p];
    let ctx = EvalContext::new(now);
    // Exclusions first: they decide regardless of what includes say.
    let ex = exclusions(org, res, p, d, users, now);
    let mut user_blocked_by: Option<String> = None;
    let mut reached: Vec<Reach> = Vec::new();
    // Includes are listed first, then the exclusions that may override them.
    let mut steps = Vec::new();
    let mut blocked_by_exclusion = Vec::new();
    let mut ineffective: Vec<String> = Vec::new();
    for a in &policy.assignments {
        let Some(inc) = include(org, res, &a.target, d, users, &ex, now) else {
            continue;
        };
        user_blocked_by = user_blocked_by.or(inc.user_blocked_by);
        let target = inc.target;
        let dev_ok = inc.dev_member && ex.device_by.is_none();
        let user_ok = inc.user_free;
        // An exclusion of the other kind than the include that reaches the
        // device is not evaluated by Intune: say so where it would mislead.
        if user_ok && !dev_ok {
            if let Some(by) = &ex.device_by {
                ineffective.push(format!("device group '{by}' is excluded, but {target} reaches it through its user, and Intune does not evaluate a device group excluded from a user-group assignment"));
            }
        } else if dev_ok
            && !user_ok
            && let Some(by) = &ex.user_by
        {
            ineffective.push(format!("user group '{by}' is excluded, but {target} reaches it as a device, and Intune does not evaluate a user group excluded from a device-group assignment"));
        }
        if (inc.dev_member || inc.user_member) && !dev_ok && !user_ok {
            blocked_by_exclusion.push(target.clone());
        }
        let filter = a.filter.as_ref().and_then(|af| {
            let f = org.filter(&af.filter_id)?;
            let rule = res.filter_rules[f].as_ref();
            let trace = rule.map(|r| r.trace(&org.devices, d, &ctx));
            let matched = trace.as_ref().is_some_and(|t| t.result);
            Some(FilterStep {
                name: org.filters[f].name.clone(),
                mode: af.mode,
                rule: org.filters[f].rule.clone(),
                matched,
                trace,
            })
        });
        if dev_ok || user_ok {
            reached.push(Reach {
                target: target.clone(),
                filter: filter.as_ref().map(|f| (f.name.clone(), f.mode, f.matched)),
            });
        }
        steps.push(AssignmentStep {
            intent: "include",
            target,
            reaches: inc.dev_member || inc.user_member,
            via: inc.via,
            filter,
        });
    }
    steps.extend(ex.steps);
    let (status, reason) = if reached.is_empty() {
        unreached(
            policy.assignments.len(),
            &blocked_by_exclusion,
            ex.device_by.or(user_blocked_by).or(ex.user_by),
        )
    } else {
        precedence(&reached)
    };
    // Intune reaches only the devices it manages, whatever the assignments say.
    let (status, reason) = if res.enrolled.contains(d) || reached.is_empty() {
        (status, reason)
    } else {
        (
            Status::NotTargeted,
            format!(
                "{reason}, but the device has no Intune record (Entra only), and Intune policies reach only enrolled devices"
            ),
        )
    };
    let reason = match (&status, ineffective.first()) {
        (Status::Included, Some(note)) => format!("{reason}; {note} (unsupported mix)"),
        _ => reason,
    };
    let (status, reason) = match status {
        Status::Included if res.policies[p].not_applicable.contains(d) => {
            let why = crate::applicability::reason(org, policy, d)
                .unwrap_or_else(|| "the device cannot take it".into());
            (Status::NotApplicable, format!("{reason}, but {why}"))
        }
        s => (s, reason),
    };
    let settings_not_applicable = if status == Status::Included {
        crate::applicability::settings::excluded_on(org, &policy.settings, d)
    } else {
        Vec::new()
    };
    PolicyExplanation {
        policy_id: policy.id.clone(),
        policy: policy.name.clone(),
        status,
        reason,
        assignments: steps,
        settings_not_applicable,
    }
}

/// What a policy's excluded groups say about a device and its users.
struct Exclusions {
    /// The first excluded group holding the device.
    device_by: Option<String>,
    /// The first excluded group holding one of its users.
    user_by: Option<String>,
    /// Per user of the device: the first excluded group holding them.
    per_user: Vec<Option<String>>,
    steps: Vec<AssignmentStep>,
}

fn exclusions(
    org: &Org,
    res: &Resolution,
    p: usize,
    d: u32,
    users: &[(u32, UserLink)],
    now: jiff::Timestamp,
) -> Exclusions {
    let mut ex = Exclusions {
        device_by: None,
        user_by: None,
        per_user: vec![None; users.len()],
        steps: Vec::new(),
    };
    for a in &org.policies[p].assignments {
        let Target::ExcludeGroup(id) = &a.target else {
            continue;
        };
        let Some(g) = org.group(id) else { continue };
        let dev = res.group_devices[g].contains(d);
        let hit = users
            .iter()
            .position(|(u, _)| res.group_users[g].contains(*u));
        for (i, (u, _)) in users.iter().enumerate() {
            if ex.per_user[i].is_none() && res.group_users[g].contains(*u) {
                ex.per_user[i] = Some(org.groups[g].name.clone());
            }
        }
        if dev && ex.device_by.is_none() {
            ex.device_by = Some(org.groups[g].name.clone());
        }
        if hit.is_some() && ex.user_by.is_none() {
            ex.user_by = Some(org.groups[g].name.clone());
        }
        ex.steps.push(AssignmentStep {
            intent: "exclude",
            target: format!("group '{}'", org.groups[g].name),
            reaches: dev || hit.is_some(),
            via: membership(org, res, g, d, hit.map(|i| users[i]), now),
            filter: None,
        });
    }
    ex
}

/// An include assignment as it bears on one device.
struct Include {
    target: String,
    /// The device is in the target.
    dev_member: bool,
    /// One of its users is in the target.
    user_member: bool,
    /// One of its users is in the target and excluded by no group.
    user_free: bool,
    via: Vec<String>,
    /// The exclusion that holds back the device's users in the target, when
    /// all of them are held back.
    user_blocked_by: Option<String>,
}

/// How include `target` reaches device `d`; None for an exclusion.
fn include(
    org: &Org,
    res: &Resolution,
    target: &Target,
    d: u32,
    users: &[(u32, UserLink)],
    ex: &Exclusions,
    now: jiff::Timestamp,
) -> Option<Include> {
    // Of the device's users in an include's user set: one not excluded (the
    // user the assignment reaches it through), else the first, excluded.
    let pick = |inside: &dyn Fn(u32) -> bool| -> (Option<usize>, Option<usize>) {
        let cands = || (0..users.len()).filter(|&i| inside(users[i].0));
        (cands().find(|&i| ex.per_user[i].is_none()), cands().next())
    };
    let blocked = |free: Option<usize>, first: Option<usize>| match (free, first) {
        (None, Some(i)) => ex.per_user[i].clone(),
        _ => None,
    };
    Some(match target {
        Target::ExcludeGroup(_) => return None,
        Target::AllDevices => Include {
            target: "All devices".to_string(),
            dev_member: true,
            user_member: false,
            user_free: false,
            via: vec!["every enrolled device is in All devices".to_string()],
            user_blocked_by: None,
        },
        Target::AllUsers => {
            let (free, first) = pick(&|u| res.licensed.contains(u));
            let licence = if res.licensed_assumed {
                " (every user counts as licensed: the import has no assignedPlans)"
            } else {
                " (licensed for Intune)"
            };
            let via = match (free.or(first), users.first()) {
                (Some(i), _) => {
                    let (u, link) = users[i];
                    vec![user_phrase(org, u, link, &format!("is in All users{licence}"))]
                }
                (None, Some(&(u, link))) => vec![user_phrase(
                    org,
                    u,
                    link,
                    "has no enabled Intune licence, so All users (all licensed users) does not reach it",
                )],
                (None, None) if org.has_logons() => vec![
                    "it has no primary user and nobody signed in to it, so All users does not reach it"
                        .to_string(),
                ],
                (None, None) => {
                    vec!["it has no primary user, so All users does not reach it".to_string()]
                }
            };
            Include {
                target: "All users".to_string(),
                dev_member: false,
                user_member: first.is_some(),
                user_free: free.is_some(),
                via,
                user_blocked_by: blocked(free, first),
            }
        }
        Target::Group(id) => match org.group(id) {
            Some(g) => {
                let (free, first) = pick(&|u| res.group_users[g].contains(u));
                Include {
                    target: format!("group '{}'", org.groups[g].name),
                    dev_member: res.group_devices[g].contains(d),
                    user_member: first.is_some(),
                    user_free: free.is_some(),
                    via: membership(org, res, g, d, free.or(first).map(|i| users[i]), now),
                    user_blocked_by: blocked(free, first),
                }
            }
            None => Include {
                target: format!("group {id} (not in the import)"),
                dev_member: false,
                user_member: false,
                user_free: false,
                via: Vec::new(),
                user_blocked_by: None,
            },
        },
    })
}

/// An include that reaches the device, with its filter: name, mode, whether it matches.
struct Reach {
    target: String,
    filter: Option<(String, FilterMode, bool)>,
}

/// Why no include reaches the device: an exclusion (`excluded_by`) held
/// back those that would, or none would.
fn unreached(
    assignments: usize,
    blocked_by_exclusion: &[String],
    excluded_by: Option<String>,
) -> (Status, String) {
    if let Some(first) = blocked_by_exclusion.first() {
        let by = excluded_by.unwrap_or_default();
        (
            Status::Excluded,
            format!(
                "{first} includes it, but group '{by}' excludes it, and exclusion beats inclusion"
            ),
        )
    } else if assignments == 0 {
        (
            Status::NotTargeted,
            "the policy has no assignments".to_string(),
        )
    } else {
        (
            Status::NotTargeted,
            if assignments == 1 {
                "the policy's one assignment does not reach it".to_string()
            } else {
                format!("none of the policy's {assignments} assignments reaches it")
            },
        )
    }
}

/// The precedence Intune applies between the assignments that reach the
/// device: an exclude filter that matches, else one without a filter, else
/// an include filter that matches.
fn precedence(reached: &[Reach]) -> (Status, String) {
    let by_mode = |m: Option<FilterMode>| {
        reached
            .iter()
            .filter(move |r| r.filter.as_ref().map(|f| f.1) == m)
    };
    let filter_name = |r: &Reach| r.filter.as_ref().map(|f| f.0.clone()).unwrap_or_default();
    if let Some(first) = by_mode(Some(FilterMode::Exclude)).next() {
        match by_mode(Some(FilterMode::Exclude)).find(|r| r.filter.as_ref().is_some_and(|f| f.2)) {
            Some(r) => (
                Status::Excluded,
                format!(
                    "{} reaches it with exclude filter '{}', whose rule matches it; exclude filters take precedence over other assignments",
                    r.target,
                    filter_name(r)
                ),
            ),
            None => (
                Status::Included,
                format!(
                    "{} reaches it and exclude filter '{}' does not match it",
                    first.target,
                    filter_name(first)
                ),
            ),
        }
    } else if let Some(r) = by_mode(None).next() {
        (
            Status::Included,
            format!("{} reaches it without a filter", r.target),
        )
    } else {
        match by_mode(Some(FilterMode::Include)).find(|r| r.filter.as_ref().is_some_and(|f| f.2)) {
            Some(r) => (
                Status::Included,
                format!(
                    "{} reaches it and include filter '{}' matches it",
                    r.target,
                    filter_name(r)
                ),
            ),
            None => {
                let names: Vec<_> = reached
                    .iter()
                    .filter_map(|r| r.filter.as_ref().map(|f| format!("'{}'", f.0)))
                    .collect();
                (
                    Status::Excluded,
                    format!(
                        "it is reached only through include filter(s) {} and none matches it",
                        names.join(", ")
                    ),
                )
            }
        }
    }
}

/// How device `d` (or `user`, one of its users) belongs to group `g`, outermost first.
pub fn membership(
    org: &Org,
    res: &Resolution,
    g: usize,
    d: u32,
    user: Option<(u32, UserLink)>,
    now: jiff::Timestamp,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = vec![false; org.groups.len()];
    if res.group_devices[g].contains(d) {
        chain(org, res, g, Member::Device(d), now, &mut seen, &mut out);
    } else if let Some((u, link)) = user.filter(|(u, _)| res.group_users[g].contains(*u)) {
        out.push(user_phrase(
            org,
            u,
            link,
            &format!(
                "is a member of group '{}', and the policy follows users to the devices they use",
                org.groups[g].name
            ),
        ));
        seen.iter_mut().for_each(|s| *s = false);
        chain(org, res, g, Member::User(u), now, &mut seen, &mut out);
    }
    out
}

/// Resolved memberships, so traces of `memberOf` rules see the groups.
struct Resolved<'a> {
    org: &'a Org,
    rows: &'a [roaring::RoaringBitmap],
}

impl crate::rules::GroupRows for Resolved<'_> {
    fn group_rows(&self, id: &str) -> Option<&roaring::RoaringBitmap> {
        self.org.group(id).map(|g| &self.rows[g])
    }
}

#[derive(Clone, Copy)]
enum Member {
    User(u32),
    Device(u32),
}

fn chain(
    org: &Org,
    res: &Resolution,
    g: usize,
    m: Member,
    now: jiff::Timestamp,
    seen: &mut [bool],
    out: &mut Vec<String>,
) {
    if seen[g] {
        return;
    }
    seen[g] = true;
    let group = &org.groups[g];
    let is_in = match m {
        Member::User(u) => res.group_users[g].contains(u),
        Member::Device(d) => res.group_devices[g].contains(d),
    };
    if !is_in {
        return;
    }
    match &group.kind {
        GroupKind::Dynamic { rule } => {
            let devices = Resolved {
                org,
                rows: &res.group_devices,
            };
            let users = Resolved {
                org,
                rows: &res.group_users,
            };
            let line =
                match (&res.group_rules[g], m) {
                    (Some(r), Member::Device(d)) if r.object == Object::Device => {
                        describe_trace(&r.trace(
                            &org.devices,
                            d,
                            &EvalContext::new(now).with_groups(&devices),
                        ))
                    }
                    (Some(r), Member::User(u)) if r.object == Object::User => describe_trace(
                        &r.trace(&org.users, u, &EvalContext::new(now).with_groups(&users)),
                    ),
                    _ => String::new(),
                };
            out.push(format!(
                "group '{}' is dynamic and its rule `{}` is true: {}",
                group.name, rule, line
            ));
        }
        GroupKind::Static { .. } => {
            let direct = match m {
                Member::User(u) => res.direct_users[g].contains(u),
                Member::Device(d) => res.direct_devices[g].contains(d),
            };
            if direct {
                out.push(format!("group '{}' has it as a direct member", group.name));
                return;
            }
            for &sub in &org.static_members[g].groups {
                {
                    let inside = match m {
                        Member::User(u) => res.group_users[sub].contains(u),
                        Member::Device(d) => res.group_devices[sub].contains(d),
                    };
                    if inside && !seen[sub] {
                        out.push(format!(
                            "group '{}' contains group '{}'",
                            group.name, org.groups[sub].name
                        ));
                        chain(org, res, sub, m, now, seen, out);
                        return;
                    }
                }
            }
            out.push(format!(
                "group '{}' holds it through a nesting cycle",
                group.name
            ));
        }
    }
}

/// `deviceOSType -eq "Windows" → true (Windows)`, one per comparison.
pub fn describe_trace(t: &Trace) -> String {
    let parts: Vec<String> = t
        .leaves
        .iter()
        .map(|l| {
            let v = if l.values.is_empty() {
                "null".to_string()
            } else {
                l.values.join(", ")
            };
            format!("{} → {} ({} = {})", l.condition, l.result, l.property, v)
        })
        .collect();
    parts.join("; ")
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupExplanation {
    pub id: String,
    pub name: String,
    /// `static` or `dynamic`.
    pub kind: &'static str,
    pub rule: Option<String>,
    pub users: u64,
    pub devices: u64,
    /// Device members without an Intune record: an assignment to the group does not reach them.
    pub devices_not_enrolled: u64,
    /// Groups that contain this one, directly or through nesting.
    pub parents: Vec<String>,
    pub assignments: Vec<GroupAssignment>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupAssignment {
    pub policy_id: String,
    pub policy: String,
    pub intent: &'static str,
    /// `directly` or `through parent group 'X'`.
    pub via: String,
    pub filter: Option<String>,
    pub filter_mode: Option<FilterMode>,
}

/// Everything assigned to group `g`, directly and through the groups that contain it.
pub fn explain_group(org: &Org, res: &Resolution, g: usize) -> GroupExplanation {
    // Member counts need every member, not a resolution cut to a device.
    debug_assert!(res.within.is_none(), "explain_group on a cut resolution");
    // Parents: walk static memberships upwards, breadth first.
    let mut parent_of: Vec<Vec<usize>> = vec![Vec::new(); org.groups.len()];
    for (p, m) in org.static_members.iter().enumerate() {
        for &c in &m.groups {
            parent_of[c].push(p);
        }
    }
    let mut via: Vec<Option<String>> = vec![None; org.groups.len()];
    via[g] = Some("directly".into());
    let mut queue = std::collections::VecDeque::from([g]);
    let mut parents = Vec::new();
    while let Some(c) = queue.pop_front() {
        for &p in &parent_of[c] {
            if via[p].is_none() {
                via[p] = Some(format!("through parent group '{}'", org.groups[p].name));
                parents.push(org.groups[p].name.clone());
                queue.push_back(p);
            }
        }
    }
    let mut assignments = Vec::new();
    for pol in &org.policies {
        for a in &pol.assignments {
            let (id, intent) = match &a.target {
                Target::Group(id) => (id, "include"),
                Target::ExcludeGroup(id) => (id, "exclude"),
                _ => continue,
            };
            let Some(t) = org.group(id) else { continue };
            let Some(v) = &via[t] else { continue };
            let filter = a.filter.as_ref().map(|f| {
                org.filter(&f.filter_id)
                    .map(|i| org.filters[i].name.clone())
                    .unwrap_or_else(|| f.filter_id.clone())
            });
            assignments.push(GroupAssignment {
                policy_id: pol.id.clone(),
                policy: pol.name.clone(),
                intent,
                via: v.clone(),
                filter,
                filter_mode: a.filter.as_ref().map(|f| f.mode),
            });
        }
    }
    let group = &org.groups[g];
    GroupExplanation {
        id: group.id.clone(),
        name: group.name.clone(),
        kind: match group.kind {
            GroupKind::Static { .. } => "static",
            GroupKind::Dynamic { .. } => "dynamic",
        },
        rule: match &group.kind {
            GroupKind::Dynamic { rule } => Some(rule.clone()),
            _ => None,
        },
        users: res.group_users[g].len(),
        devices: res.group_devices[g].len(),
        devices_not_enrolled: res.group_devices[g].len()
            - res.group_devices[g].intersection_len(&res.enrolled),
        parents,
        assignments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(target: &str, filter: Option<(&str, FilterMode, bool)>) -> Reach {
        Reach {
            target: target.into(),
            filter: filter.map(|(n, m, hit)| (n.to_string(), m, hit)),
        }
    }

    #[test]
    fn precedence_exclude_filters_then_no_filter_then_include_filters() {
        use FilterMode::{Exclude, Include};
        let check = |reached: &[Reach], status: Status, reason: &str| {
            assert_eq!(precedence(reached), (status, reason.to_string()));
        };
        check(
            &[
                reach("All devices", None),
                reach("group 'a'", Some(("VMs", Exclude, false))),
                reach("group 'b'", Some(("Kiosks", Exclude, true))),
            ],
            Status::Excluded,
            "group 'b' reaches it with exclude filter 'Kiosks', whose rule matches it; exclude filters take precedence over other assignments",
        );
        check(
            &[
                reach("All devices", None),
                reach("group 'a'", Some(("VMs", Exclude, false))),
            ],
            Status::Included,
            "group 'a' reaches it and exclude filter 'VMs' does not match it",
        );
        check(
            &[
                reach("group 'a'", Some(("Win11", Include, false))),
                reach("All devices", None),
            ],
            Status::Included,
            "All devices reaches it without a filter",
        );
        check(
            &[
                reach("group 'a'", Some(("Win11", Include, false))),
                reach("group 'b'", Some(("Surface", Include, true))),
            ],
            Status::Included,
            "group 'b' reaches it and include filter 'Surface' matches it",
        );
        check(
            &[
                reach("group 'a'", Some(("Win11", Include, false))),
                reach("group 'b'", Some(("Surface", Include, false))),
            ],
            Status::Excluded,
            "it is reached only through include filter(s) 'Win11', 'Surface' and none matches it",
        );
    }

    #[test]
    fn unreached_says_whether_an_exclusion_or_nothing_held_it_back() {
        assert_eq!(
            unreached(2, &["group 'a'".into()], Some("Lab".into())),
            (
                Status::Excluded,
                "group 'a' includes it, but group 'Lab' excludes it, and exclusion beats inclusion"
                    .into()
            )
        );
        assert_eq!(
            unreached(0, &[], None),
            (Status::NotTargeted, "the policy has no assignments".into())
        );
        assert_eq!(
            unreached(3, &[], None),
            (
                Status::NotTargeted,
                "none of the policy's 3 assignments reaches it".into()
            )
        );
    }

    #[test]
    fn includes_of_all_devices_and_of_unknown_groups() {
        let org = crate::org::OrgBuilder::new().finish();
        let res = crate::targeting::resolve(&org, jiff::Timestamp::UNIX_EPOCH);
        let ex = Exclusions {
            device_by: None,
            user_by: None,
            per_user: Vec::new(),
            steps: Vec::new(),
        };
        let now = jiff::Timestamp::UNIX_EPOCH;
        let all = include(&org, &res, &Target::AllDevices, 0, &[], &ex, now).unwrap();
        assert!(all.dev_member && !all.user_member && !all.user_free);
        assert_eq!(all.via, ["every enrolled device is in All devices"]);
        let users = include(&org, &res, &Target::AllUsers, 0, &[], &ex, now).unwrap();
        assert!(!users.dev_member && !users.user_member);
        assert_eq!(
            users.via,
            ["it has no primary user, so All users does not reach it"]
        );
        let gone = include(&org, &res, &Target::Group("g1".into()), 0, &[], &ex, now).unwrap();
        assert_eq!(gone.target, "group g1 (not in the import)");
        assert!(!gone.dev_member && gone.via.is_empty());
        assert!(
            include(
                &org,
                &res,
                &Target::ExcludeGroup("g1".into()),
                0,
                &[],
                &ex,
                now
            )
            .is_none()
        );
    }
}
