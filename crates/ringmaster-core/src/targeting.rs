//! Group membership and effective policy targets, as Intune computes them
//! (DOMAIN.md §2): nested groups are transitive, exclusion beats inclusion,
//! and when several assignments reach a device the filter modes rank
//! exclude-filter > no filter > include-filter, same-mode filters OR'ed.

use crate::model::{FilterMode, GroupKind, Target, UserMulti};
use crate::org::{NO_ROW, Org};
use crate::rules::GroupRows;
use crate::rules::{EvalContext, Grammar, Object, Rule, RuleError};
use rayon::prelude::*;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// Something found while resolving that an admin should know.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// `group 'X'`, `policy 'Y'`, `filter 'Z'`.
    pub subject: String,
    pub message: String,
}

/// Resolved memberships and targets. Indices follow `Org::groups`,
/// `Org::filters` and `Org::policies`.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    pub group_users: Vec<RoaringBitmap>,
    pub group_devices: Vec<RoaringBitmap>,
    /// Direct (not nested) members of static groups, for explanations.
    pub direct_users: Vec<RoaringBitmap>,
    pub direct_devices: Vec<RoaringBitmap>,
    /// Parsed dynamic rules (None for static groups or rules that failed).
    pub group_rules: Vec<Option<Rule>>,
    pub filter_rules: Vec<Option<Rule>>,
    /// Devices each filter's rule matches.
    pub filter_devices: Vec<RoaringBitmap>,
    pub policies: Vec<PolicyTarget>,
    /// For groups assigned to a policy: the devices of their users (computed
    /// once here, reused by reports).
    pub group_user_devices: Vec<Option<RoaringBitmap>>,
    pub diagnostics: Vec<Diagnostic>,
    /// Groups in nesting cycles, each cycle once.
    pub cycles: Vec<Vec<usize>>,
    /// Devices Intune manages (see [`enrolled`]): the only ones a policy reaches.
    pub enrolled: RoaringBitmap,
    /// No device in the import has an Intune record, so all are taken as enrolled.
    pub enrolled_assumed: bool,
    /// Users with an Intune licence (see [`licensed`]): All users is them.
    pub licensed: RoaringBitmap,
    /// No user in the import carries licence data, so all are taken as licensed.
    pub licensed_assumed: bool,
    /// User-targeted assignments follow sign-ins (the import has
    /// `usersLoggedOn`); otherwise they reach primary users' devices only.
    pub by_signins: bool,
    /// Enrolled devices that more than one user reaches them through (primary
    /// user and sign-ins together): where the primary-user model falls short.
    pub shared_devices: u64,
    /// The enrolled devices All users reaches: licensed users' devices, by
    /// sign-ins when the import has them, else by primary user.
    pub all_users_devices: RoaringBitmap,
    /// The rows this resolution was cut to ([`resolve_within`]): its
    /// bitmaps hold those rows only, so counts, sizes and diagnostics say
    /// nothing about the fleet. `None` for a whole resolution.
    pub within: Option<Within>,
}

/// Where one policy lands.
#[derive(Debug, Clone, Default)]
pub struct PolicyTarget {
    /// Devices the policy reaches after exclusions and filters.
    pub devices: RoaringBitmap,
    /// Users the policy targets (user-scoped delivery).
    pub users: RoaringBitmap,
    /// Reached devices whose platform cannot take the policy.
    pub not_applicable: RoaringBitmap,
    /// Reached devices that can take the policy: `devices` less
    /// `not_applicable`, worked out when first asked for (`org` and an
    /// explanation never ask, and at a million devices 2,000 policies'
    /// copies are a third of a resolution). Change `devices` or
    /// `not_applicable` through [`PolicyTarget::set_reach`], which forgets it.
    applicable: OnceLock<RoaringBitmap>,
    /// Not-applicable devices per reason (a platform, `OS edition`, `OS version`), largest first.
    pub not_applicable_by_platform: Vec<(String, u64)>,
}

impl Resolution {
    /// The devices an assignment of group `g` reaches: its device members
    /// and its user members' devices, each once (the users' devices are
    /// cached for assigned groups, computed otherwise).
    pub fn group_reach(&self, org: &Org, g: usize) -> std::borrow::Cow<'_, RoaringBitmap> {
        use std::borrow::Cow;
        let devices = &self.group_devices[g];
        if self.group_users[g].is_empty() {
            return Cow::Borrowed(devices);
        }
        let via_users = match &self.group_user_devices[g] {
            Some(d) if devices.is_empty() => return Cow::Borrowed(d),
            Some(d) => Cow::Borrowed(d),
            None => Cow::Owned(devices_of_users(org, &self.group_users[g])),
        };
        if devices.is_empty() {
            return via_users;
        }
        Cow::Owned(devices | via_users.as_ref())
    }
}

impl PolicyTarget {
    /// Reached devices that can take the policy.
    pub fn applicable(&self) -> &RoaringBitmap {
        self.applicable
            .get_or_init(|| minus(&self.devices, &self.not_applicable))
    }

    /// Sets the reached devices and those of them that cannot take the
    /// policy (the applicable ones follow).
    pub fn set_reach(&mut self, devices: RoaringBitmap, not_applicable: RoaringBitmap) {
        self.devices = devices;
        self.not_applicable = not_applicable;
        self.applicable = OnceLock::new();
    }
}

struct Members<'a>(&'a FxHashMap<String, usize>, &'a [RoaringBitmap]);

impl GroupRows for Members<'_> {
    fn group_rows(&self, id: &str) -> Option<&RoaringBitmap> {
        self.0
            .get(&id.trim().to_ascii_lowercase())
            .map(|&g| &self.1[g])
    }
}

/// Resolves every group, filter and policy of `org`.
pub fn resolve(org: &Org, now: jiff::Timestamp) -> Resolution {
    let mut r = Resolution::default();
    resolve_groups(org, now, &mut r);
    resolve_filters(org, now, &mut r);
    resolve_policies(org, &mut r);
    r
}

/// `a` less `b`; an empty `b` (most assignments exclude nothing) skips the
/// work a difference makes.
fn minus(a: &RoaringBitmap, b: &RoaringBitmap) -> RoaringBitmap {
    if b.is_empty() { a.clone() } else { a - b }
}

/// The rows a resolution is cut to (see [`resolve_within`]).
#[derive(Debug, Clone, Default)]
pub struct Within {
    pub users: RoaringBitmap,
    pub devices: RoaringBitmap,
}

impl Within {
    /// A device and every user linked to it (its primary user and the
    /// users who signed in to it): all an explanation of it asks about.
    pub fn device(org: &Org, d: u32) -> Within {
        Within {
            users: org.device_users(d).collect(),
            devices: [d].into_iter().collect(),
        }
    }
}

/// [`resolve`] for the rows of `within` only: rules are evaluated on those
/// rows alone, and every group, filter and policy holds only them (and
/// user-targeted reaches the other devices of their users). What it says
/// about a row of `within` (memberships, reaches, applicability) is what
/// the whole resolution says; counts and diagnostics about the fleet are
/// not (see [`Resolution::within`]): the diagnostics count unenrolled
/// devices and unlicensed users among these rows. Rules, enrolment,
/// licences, platforms and policy targets cost a few rows' work.
pub fn resolve_within(org: &Org, now: jiff::Timestamp, within: &Within) -> Resolution {
    let mut r = Resolution::default();
    groups_in(org, now, &mut r, Some(within));
    filters_in(org, now, &mut r, Some(within));
    r.policies = policies_in(org, &mut r, Some(within), true, |t| t);
    r.within = Some(within.clone());
    r
}

/// `rule` on the rows of `table`, or on `rows` of it only.
fn select_in(
    rule: &Rule,
    table: &crate::org::Table,
    ctx: &EvalContext<'_>,
    rows: Option<&RoaringBitmap>,
) -> RoaringBitmap {
    match rows {
        Some(rows) => rule.select_within(table, ctx, rows),
        None => rule.select(table, ctx),
    }
}

fn group_subject(org: &Org, g: usize) -> String {
    format!("group '{}'", org.groups[g].name)
}

/// The groups a group's membership depends on: nested groups, and groups
/// named in `memberOf` rules.
fn dependencies(org: &Org, g: usize, rule: Option<&Rule>) -> Vec<usize> {
    match &org.groups[g].kind {
        GroupKind::Static { .. } => org.static_members[g].groups.clone(),
        GroupKind::Dynamic { .. } => rule
            .map(|r| {
                r.referenced_groups()
                    .iter()
                    .filter_map(|id| org.group(id))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Phase 1 of [`resolve`]: every group's users and devices.
pub fn resolve_groups(org: &Org, now: jiff::Timestamp, r: &mut Resolution) {
    groups_in(org, now, r, None);
}

fn groups_in(org: &Org, now: jiff::Timestamp, r: &mut Resolution, within: Option<&Within>) {
    let n = org.groups.len();
    // Each rule is parsed once; errors and warnings become diagnostics.
    let parsed: Vec<Option<Result<Rule, RuleError>>> = org
        .groups
        .par_iter()
        .map(|g| match &g.kind {
            GroupKind::Dynamic { rule } => Some(Rule::parse(Grammar::EntraDynamicMembership, rule)),
            GroupKind::Static { .. } => None,
        })
        .collect();
    for (g, p) in parsed.iter().enumerate() {
        match p {
            Some(Err(e)) => {
                let GroupKind::Dynamic { rule } = &org.groups[g].kind else {
                    continue;
                };
                r.diagnostics.push(Diagnostic {
                    severity: Severity::Error,
                    subject: group_subject(org, g),
                    message: format!("membership rule rejected: {}", rule_error_line(rule, e)),
                });
            }
            Some(Ok(rule)) => {
                for w in &rule.warnings {
                    r.diagnostics.push(Diagnostic {
                        severity: Severity::Warning,
                        subject: group_subject(org, g),
                        message: w.message.clone(),
                    });
                }
            }
            None => {}
        }
    }
    r.group_rules = parsed.into_iter().map(|p| p.and_then(Result::ok)).collect();
    let deps: Vec<Vec<usize>> = (0..n)
        .map(|g| dependencies(org, g, r.group_rules[g].as_ref()))
        .collect();
    let sccs = strongly_connected(&deps);
    // Direct members of static groups, resolved to rows when the org was built.
    let direct: Vec<(RoaringBitmap, RoaringBitmap, usize)> = org
        .static_members
        .par_iter()
        .map(|m| match within {
            Some(w) => {
                let users = (w.users.iter())
                    .filter(|u| m.users.binary_search(u).is_ok())
                    .collect();
                let devices = (w.devices.iter())
                    .filter(|d| m.devices.binary_search(d).is_ok())
                    .collect();
                (users, devices, m.missing)
            }
            None => {
                let users =
                    RoaringBitmap::from_sorted_iter(m.users.iter().copied()).expect("sorted");
                let devices =
                    RoaringBitmap::from_sorted_iter(m.devices.iter().copied()).expect("sorted");
                (users, devices, m.missing)
            }
        })
        .collect();
    for (g, (_, _, missing)) in direct.iter().enumerate() {
        if *missing > 0 {
            r.diagnostics.push(Diagnostic {
                severity: Severity::Warning,
                subject: group_subject(org, g),
                message: format!(
                    "{missing} member(s) are not in the imported directory and are ignored"
                ),
            });
        }
    }
    r.direct_users = direct.iter().map(|d| d.0.clone()).collect();
    r.direct_devices = direct.iter().map(|d| d.1.clone()).collect();
    r.group_users = vec![RoaringBitmap::new(); n];
    r.group_devices = vec![RoaringBitmap::new(); n];
    let index: FxHashMap<String, usize> = org
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.id.trim().to_ascii_lowercase(), i))
        .collect();
    // Components come out of Tarjan's algorithm dependencies-first; group
    // them into levels so independent components resolve in parallel.
    let mut comp_of = vec![0usize; n];
    for (c, comp) in sccs.iter().enumerate() {
        for &g in comp {
            comp_of[g] = c;
        }
    }
    let mut level = vec![0usize; sccs.len()];
    for (c, comp) in sccs.iter().enumerate() {
        for &g in comp {
            for &d in &deps[g] {
                if comp_of[d] != c {
                    level[c] = level[c].max(level[comp_of[d]] + 1);
                }
            }
        }
    }
    let max_level = level.iter().copied().max().unwrap_or(0);
    for comp in &sccs {
        if comp.len() > 1 || deps[comp[0]].contains(&comp[0]) {
            let names: Vec<_> = comp
                .iter()
                .map(|&g| format!("'{}'", org.groups[g].name))
                .collect();
            r.diagnostics.push(Diagnostic {
                severity: Severity::Warning,
                subject: group_subject(org, comp[0]),
                message: format!(
                    "nesting cycle between {}: they all get the union of their members",
                    names.join(", ")
                ),
            });
            r.cycles.push(comp.clone());
        }
    }
    for lv in 0..=max_level {
        let comps: Vec<usize> = (0..sccs.len()).filter(|&c| level[c] == lv).collect();
        let results: Vec<(usize, RoaringBitmap, RoaringBitmap)> = comps
            .par_iter()
            .map(|&c| {
                let users_done = Members(&index, &r.group_users);
                let devices_done = Members(&index, &r.group_devices);
                let mut users = RoaringBitmap::new();
                let mut devices = RoaringBitmap::new();
                for &g in &sccs[c] {
                    users |= &direct[g].0;
                    devices |= &direct[g].1;
                    if let Some(rule) = &r.group_rules[g] {
                        match rule.object {
                            Object::User => {
                                let ctx = EvalContext::new(now).with_groups(&users_done);
                                let rows = within.map(|w| &w.users);
                                users |= select_in(rule, &org.users, &ctx, rows);
                            }
                            Object::Device => {
                                let ctx = EvalContext::new(now).with_groups(&devices_done);
                                let rows = within.map(|w| &w.devices);
                                devices |= select_in(rule, &org.devices, &ctx, rows);
                            }
                            Object::App => {}
                        }
                    }
                    for &d in &deps[g] {
                        if comp_of[d] != c {
                            users |= &r.group_users[d];
                            devices |= &r.group_devices[d];
                        }
                    }
                }
                (c, users, devices)
            })
            .collect();
        for (c, users, devices) in results {
            for &g in &sccs[c] {
                r.group_users[g] = users.clone();
                r.group_devices[g] = devices.clone();
            }
        }
    }
}

/// One line: the message, and the column where the rule goes wrong.
pub fn rule_error_line(rule: &str, e: &RuleError) -> String {
    let mut s = format!("{} at column {}", e.message, e.column(rule));
    if let Some(x) = &e.expected {
        s.push_str(&format!(" (expected {x})"));
    }
    s
}

/// Tarjan's strongly connected components, iteratively (deep nesting must
/// not overflow the stack). Components come out dependencies first.
fn strongly_connected(deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = deps.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut next = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut i)) = work.last_mut() {
            if *i == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = deps[v].get(*i) {
                *i += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                loop {
                    let w = stack.pop().expect("on stack");
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                comp.sort_unstable();
                out.push(comp);
            }
        }
    }
    out
}

/// Phase 2 of [`resolve`]: the devices each assignment filter matches.
pub fn resolve_filters(org: &Org, now: jiff::Timestamp, r: &mut Resolution) {
    filters_in(org, now, r, None);
}

fn filters_in(org: &Org, now: jiff::Timestamp, r: &mut Resolution, within: Option<&Within>) {
    let parsed: Vec<Result<Rule, RuleError>> = org
        .filters
        .par_iter()
        .map(|f| Rule::parse(Grammar::IntuneAssignmentFilter, &f.rule))
        .collect();
    let ctx = EvalContext::new(now);
    r.filter_devices = parsed
        .par_iter()
        .map(|p| match p {
            Ok(rule) => select_in(rule, &org.devices, &ctx, within.map(|w| &w.devices)),
            Err(_) => RoaringBitmap::new(),
        })
        .collect();
    for (i, p) in parsed.iter().enumerate() {
        let subject = format!("filter '{}'", org.filters[i].name);
        match p {
            Err(e) => r.diagnostics.push(Diagnostic {
                severity: Severity::Error,
                subject,
                message: format!(
                    "rule rejected: {}",
                    rule_error_line(&org.filters[i].rule, e)
                ),
            }),
            Ok(rule) => {
                for w in &rule.warnings {
                    r.diagnostics.push(Diagnostic {
                        severity: Severity::Warning,
                        subject: subject.clone(),
                        message: w.message.clone(),
                    });
                }
                if rule.object == Object::App {
                    r.diagnostics.push(Diagnostic {
                        severity: Severity::Warning,
                        subject,
                        message: "a managed-app filter (app.* properties) never selects devices"
                            .into(),
                    });
                }
            }
        }
    }
    r.filter_rules = parsed.into_iter().map(Result::ok).collect();
}

/// What kind of objects a group holds, for the unsupported-mix checks.
fn holds(r: &Resolution, org: &Org, g: usize) -> (bool, bool) {
    match (&org.groups[g].kind, &r.group_rules[g]) {
        (GroupKind::Dynamic { .. }, Some(rule)) => {
            (rule.object == Object::User, rule.object == Object::Device)
        }
        _ => (!r.group_users[g].is_empty(), !r.group_devices[g].is_empty()),
    }
}

/// Devices a user assignment to `users` reaches: those whose primary user is
/// in `users`, and those any of them signed in to.
pub fn devices_of_users(org: &Org, users: &RoaringBitmap) -> RoaringBitmap {
    let mut v: Vec<u32> = Vec::new();
    for u in users {
        v.extend_from_slice(org.user_devices(u));
        v.extend_from_slice(org.user_signins(u));
    }
    v.sort_unstable();
    v.dedup();
    RoaringBitmap::from_sorted_iter(v).expect("sorted")
}

/// Enrolled devices with more than one user (primary user and sign-ins).
fn shared_devices(org: &Org, enrolled: &RoaringBitmap) -> u64 {
    let several = |d: u32| {
        let mut first = None;
        org.device_users(d).any(|u| *first.get_or_insert(u) != u)
    };
    (0..org.devices.rows)
        .into_par_iter()
        .filter(|&d| enrolled.contains(d) && several(d))
        .count() as u64
}

/// One include assignment, reduced to bitmaps.
pub(crate) struct Include<'a> {
    pub users: &'a RoaringBitmap,
    /// Devices that are members themselves.
    pub devices: &'a RoaringBitmap,
    /// Devices whose primary user is an included user.
    pub user_devices: &'a RoaringBitmap,
    pub filter: Option<(usize, FilterMode)>,
}

/// Devices Intune manages: those with an Intune record (a managed-device id).
/// Intune policies reach only them: All devices is every enrolled device, and
/// a group's Entra-only members get nothing (memdocs
/// `configuration/device-profile-assign.md`). An import without a single
/// Intune record (devices from Entra or a CSV without `intuneId`) cannot tell,
/// so every device is taken as enrolled and the second value says so.
pub fn enrolled(org: &Org) -> (RoaringBitmap, bool) {
    let col = &org.devices.cols[crate::model::DeviceAttr::ManagedId.index()];
    let mut all = RoaringBitmap::new();
    all.insert_range(0..org.devices.rows);
    if col.dict_len() <= 1 {
        return (all, true);
    }
    let mut hit = vec![true; col.dict_len()];
    hit[crate::column::NULL as usize] = false;
    (col.select(&hit), false)
}

/// [`enrolled`] among `devices`.
fn enrolled_among(org: &Org, devices: &RoaringBitmap) -> (RoaringBitmap, bool) {
    let col = &org.devices.cols[crate::model::DeviceAttr::ManagedId.index()];
    if col.dict_len() <= 1 {
        return (devices.clone(), true);
    }
    let rows = devices
        .iter()
        .filter(|&d| col.code(d) != crate::column::NULL);
    (rows.collect(), false)
}

/// Users with an Intune licence: an `assignedPlans` entry of Intune's service
/// (`SCO`, or the Intune plan id) that is enabled or in its grace period
/// (`Warning`). Intune's All users is all *licensed* users (memdocs
/// `configuration/device-profile-assign.md`). Exports without plans cannot
/// tell: every user is taken as licensed and the second value says so.
pub fn licensed(org: &Org) -> (RoaringBitmap, bool) {
    let mut all = RoaringBitmap::new();
    all.insert_range(0..org.users.rows);
    // Every row: the arrays taken whole once rather than read row by row.
    let plans = org.users.multi[UserMulti::AssignedPlans.index()].view();
    licensed_where(org, &all, |u| plans.row(u))
}

/// [`licensed`] among `users`.
fn licensed_among(org: &Org, users: &RoaringBitmap) -> (RoaringBitmap, bool) {
    let plans = &org.users.multi[UserMulti::AssignedPlans.index()];
    licensed_where(org, users, |u| plans.row(u))
}

/// [`licensed`] among `users`, whose plan codes `row` reads.
fn licensed_where<'a>(
    org: &'a Org,
    users: &RoaringBitmap,
    row: impl Fn(u32) -> &'a [u32],
) -> (RoaringBitmap, bool) {
    const INTUNE_PLAN: &str = "c1ec4a95-1f05-45b3-a911-aa3fa01094f5";
    let plans = &org.users.multi[UserMulti::AssignedPlans.index()];
    // No user with any plan: the export does not carry them.
    if plans.items.is_empty() {
        return (users.clone(), true);
    }
    let has = |u: u32| {
        row(u).iter().any(|&c| {
            let rec = plans.record(c);
            let field = |i: usize| rec.get(i).and_then(|f| f.as_deref()).unwrap_or("");
            let intune =
                field(0).eq_ignore_ascii_case(INTUNE_PLAN) || field(2).eq_ignore_ascii_case("SCO");
            let live = field(1).eq_ignore_ascii_case("Enabled")
                || field(1).eq_ignore_ascii_case("Warning");
            intune && live
        })
    };
    (users.iter().filter(|&u| has(u)).collect(), false)
}

/// Phase 3 of [`resolve`]: each policy's effective target (needs phases 1 and 2).
pub fn resolve_policies(org: &Org, r: &mut Resolution) {
    r.policies = policies_in(org, r, None, true, |t| t);
}

/// [`resolve`] for counts: of each policy's target, how many devices it
/// reaches and how many of those cannot take it, the same numbers as
/// `resolve(..).policies[i]` gives; the returned resolution's `policies` is
/// empty. Each target is dropped as soon as it is counted, so the next
/// reuses its memory (2,000 targets held at once at a million devices cost
/// more in fresh pages the kernel zeroes than in working them out), and the
/// not-applicable devices are not broken down by reason.
pub fn resolve_counts(org: &Org, now: jiff::Timestamp) -> (Resolution, Vec<(u64, u64)>) {
    let mut r = Resolution::default();
    resolve_groups(org, now, &mut r);
    resolve_filters(org, now, &mut r);
    let counts = policies_in(org, &mut r, None, false, |t| {
        (t.devices.len(), t.not_applicable.len())
    });
    (r, counts)
}

/// Works out every policy's target and keeps `keep` of it; `breakdown`
/// says whether to count not-applicable devices per reason.
fn policies_in<T: Send>(
    org: &Org,
    r: &mut Resolution,
    within: Option<&Within>,
    breakdown: bool,
    keep: impl Fn(PolicyTarget) -> T + Sync,
) -> Vec<T> {
    let (unmanaged, unlicensed) = enrolment_and_licences(org, r, within);
    user_targeting(org, r);
    let all_devices = r.enrolled.clone();
    let all_users = r.licensed.clone();
    // Cut to a few rows, the licensed users' devices are found from them,
    // not by the fleet-wide shortcut.
    let owned = owned_devices(org, r, within.is_none() && unlicensed == 0, &all_users);
    let user_group_devices = user_group_devices(org, r);
    // Policies for the same platforms share what those platforms leave out.
    let mut foreign: FxHashMap<&[crate::model::Platform], crate::applicability::Foreign> =
        FxHashMap::default();
    for p in &org.policies {
        foreign.entry(p.platforms.as_slice()).or_insert_with(|| {
            crate::applicability::foreign_among(org, &p.platforms, within.map(|w| &w.devices))
        });
    }
    let none = RoaringBitmap::new();
    let shared = Shared {
        all_devices: &all_devices,
        all_users: &all_users,
        owned: &owned,
        user_group_devices: &user_group_devices,
        foreign: &foreign,
        // Only when some devices are not enrolled does a reach need
        // trimming; a cut one always is, so that it never holds devices
        // outside the cut that Intune would not reach.
        trim: (unmanaged > 0 || within.is_some()).then_some(&r.enrolled),
        none: &none,
        breakdown,
    };
    let results: Vec<(T, Vec<Diagnostic>)> = org
        .policies
        .par_iter()
        .map(|p| {
            let (t, d) = policy_target(org, r, p, &shared);
            (keep(t), d)
        })
        .collect();
    let mut kept = Vec::with_capacity(results.len());
    for (t, d) in results {
        kept.push(t);
        r.diagnostics.extend(d);
    }
    r.group_user_devices = vec![None; org.groups.len()];
    for (g, b) in user_group_devices {
        r.group_user_devices[g] = Some(b);
    }
    r.all_users_devices = owned;
    kept
}

/// Sets the enrolled devices and licensed users, with a warning for each
/// kind the policies miss; returns how many devices are not enrolled and
/// how many users not licensed.
fn enrolment_and_licences(org: &Org, r: &mut Resolution, within: Option<&Within>) -> (u64, u64) {
    let (enrolled, assumed) = match within {
        Some(w) => enrolled_among(org, &w.devices),
        None => enrolled(org),
    };
    r.enrolled = enrolled;
    r.enrolled_assumed = assumed;
    let rows = within.map_or(u64::from(org.devices.rows), |w| w.devices.len());
    let unmanaged = rows - r.enrolled.len();
    if unmanaged > 0 {
        r.diagnostics.push(Diagnostic {
            severity: Severity::Warning,
            subject: "devices".into(),
            message: format!(
                "{unmanaged} device(s) have no Intune record (Entra only): no Intune policy reaches them, and All devices and device groups count only enrolled devices"
            ),
        });
    }
    let (licensed, assumed) = match within {
        Some(w) => licensed_among(org, &w.users),
        None => licensed(org),
    };
    r.licensed = licensed;
    r.licensed_assumed = assumed;
    let rows = within.map_or(u64::from(org.users.rows), |w| w.users.len());
    let unlicensed = rows - r.licensed.len();
    if unlicensed > 0 {
        r.diagnostics.push(Diagnostic {
            severity: Severity::Warning,
            subject: "users".into(),
            message: format!(
                "{unlicensed} user(s) have no enabled Intune licence in their assignedPlans: All users does not include them"
            ),
        });
    }
    (unmanaged, unlicensed)
}

/// Whether user assignments follow sign-ins or primary users only, and a
/// warning saying which, where some policy targets users.
fn user_targeting(org: &Org, r: &mut Resolution) {
    r.by_signins = org.has_logons();
    if r.by_signins {
        r.shared_devices = shared_devices(org, &r.enrolled);
    }
    if org.logons_unknown_users > 0 {
        r.diagnostics.push(Diagnostic {
            severity: Severity::Warning,
            subject: "user targeting".into(),
            message: format!(
                "{} sign-in(s) (usersLoggedOn) name users not in the import and are ignored",
                org.logons_unknown_users
            ),
        });
    }
    // Which model decides matters only where some policy targets users.
    let targets_users = org.policies.iter().any(|p| {
        p.assignments.iter().any(|a| match &a.target {
            Target::AllUsers => true,
            Target::Group(id) => org.group(id).is_some_and(|g| !r.group_users[g].is_empty()),
            _ => false,
        })
    });
    if targets_users {
        let message = if r.by_signins {
            format!(
                "user-targeted assignments reach the devices their users signed in to (usersLoggedOn) and their primary devices; {} enrolled device(s) have more than one user",
                r.shared_devices
            )
        } else {
            "the import has no sign-ins (usersLoggedOn): user-targeted assignments are taken to reach the primary user's devices only, and miss the shared devices other users sign in to".into()
        };
        r.diagnostics.push(Diagnostic {
            severity: Severity::Warning,
            subject: "user targeting".into(),
            message,
        });
    }
}

/// Enrolled devices of (licensed) users: what All users reaches. A plain
/// scan when every user counts and primary users are the only link.
fn owned_devices(
    org: &Org,
    r: &Resolution,
    all_licensed: bool,
    all_users: &RoaringBitmap,
) -> RoaringBitmap {
    if all_licensed && !r.by_signins {
        org.device_user
            .iter()
            .enumerate()
            .filter(|(_, u)| **u != NO_ROW)
            .map(|(d, _)| d as u32)
            .collect::<RoaringBitmap>()
            & &r.enrolled
    } else {
        devices_of_users(org, all_users) & &r.enrolled
    }
}

/// The devices of each assigned group's users, computed once (in parallel)
/// and shared by every policy.
fn user_group_devices(org: &Org, r: &Resolution) -> FxHashMap<usize, RoaringBitmap> {
    let mut out: FxHashMap<usize, RoaringBitmap> = FxHashMap::default();
    for p in &org.policies {
        for a in &p.assignments {
            if let Target::Group(id) = &a.target
                && let Some(g) = org.group(id)
                && !out.contains_key(&g)
            {
                out.insert(g, RoaringBitmap::new());
            }
        }
    }
    let keys: Vec<usize> = out.keys().copied().collect();
    let computed: Vec<(usize, RoaringBitmap)> = keys
        .par_iter()
        .map(|&g| (g, devices_of_users(org, &r.group_users[g])))
        .collect();
    out.extend(computed);
    out
}

/// What every policy's target is computed from, besides groups and filters.
struct Shared<'a> {
    /// Enrolled devices: All devices.
    all_devices: &'a RoaringBitmap,
    /// Licensed users: All users.
    all_users: &'a RoaringBitmap,
    /// Their devices.
    owned: &'a RoaringBitmap,
    user_group_devices: &'a FxHashMap<usize, RoaringBitmap>,
    foreign: &'a FxHashMap<&'a [crate::model::Platform], crate::applicability::Foreign>,
    /// The enrolled devices, when some are not: every reach is cut to them.
    trim: Option<&'a RoaringBitmap>,
    none: &'a RoaringBitmap,
    /// Count not-applicable devices per reason.
    breakdown: bool,
}

/// One policy's target, with what its assignments get wrong.
fn policy_target(
    org: &Org,
    r: &Resolution,
    p: &crate::model::Policy,
    s: &Shared<'_>,
) -> (PolicyTarget, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let subject = format!("policy '{}'", p.name);
    let mut includes: Vec<Include<'_>> = Vec::new();
    let mut excl_users = RoaringBitmap::new();
    let mut excl_devices = RoaringBitmap::new();
    // Names of the user and device groups included and excluded.
    let mut user_includes = Vec::new();
    let mut device_includes = Vec::new();
    let mut user_excludes = Vec::new();
    let mut device_excludes = Vec::new();
    let warn = |diags: &mut Vec<Diagnostic>, message: String| {
        diags.push(Diagnostic {
            severity: Severity::Warning,
            subject: subject.clone(),
            message,
        })
    };
    for a in &p.assignments {
        let filter = assignment_filter(org, p, a, &subject, &mut diags);
        match &a.target {
            Target::AllDevices => {
                device_includes.push("All devices".to_string());
                includes.push(Include {
                    users: s.none,
                    devices: s.all_devices,
                    user_devices: s.none,
                    filter,
                });
            }
            Target::AllUsers => {
                user_includes.push("All users".to_string());
                includes.push(Include {
                    users: s.all_users,
                    devices: s.none,
                    user_devices: s.owned,
                    filter,
                });
            }
            Target::Group(id) => match org.group(id) {
                Some(g) => {
                    let (u, d) = holds(r, org, g);
                    if u {
                        user_includes.push(format!("'{}'", org.groups[g].name));
                    }
                    if d {
                        device_includes.push(format!("'{}'", org.groups[g].name));
                    }
                    includes.push(Include {
                        users: &r.group_users[g],
                        devices: &r.group_devices[g],
                        user_devices: &s.user_group_devices[&g],
                        filter,
                    });
                }
                None => warn(
                    &mut diags,
                    format!(
                        "assigned group {id} is not in the import; that assignment reaches nobody"
                    ),
                ),
            },
            Target::ExcludeGroup(id) => match org.group(id) {
                Some(g) => {
                    let (u, d) = holds(r, org, g);
                    if u {
                        user_excludes.push(format!("'{}'", org.groups[g].name));
                    }
                    if d {
                        device_excludes.push(format!("'{}'", org.groups[g].name));
                        if matches!(org.groups[g].kind, GroupKind::Dynamic { .. }) {
                            warn(
                                &mut diags,
                                format!(
                                    "excludes dynamic device group '{}': membership updates lag, so new members may get the policy before the exclusion applies; prefer an exclude filter",
                                    org.groups[g].name
                                ),
                            );
                        }
                    }
                    excl_users |= &r.group_users[g];
                    excl_devices |= &r.group_devices[g];
                }
                None => warn(
                    &mut diags,
                    format!(
                        "excluded group {id} is not in the import; that exclusion excludes nobody"
                    ),
                ),
            },
        }
    }
    if !user_includes.is_empty() && !device_excludes.is_empty() {
        warn(
            &mut diags,
            format!(
                "unsupported by Intune: includes user group(s) {} and excludes device group(s) {}; Intune does not evaluate that exclusion for the devices the user groups reach",
                user_includes.join(", "),
                device_excludes.join(", ")
            ),
        );
    }
    if !device_includes.is_empty() && !user_excludes.is_empty() {
        warn(
            &mut diags,
            format!(
                "unsupported by Intune: includes device group(s) {} and excludes user group(s) {}; Intune does not evaluate that exclusion for the devices the device groups reach",
                device_includes.join(", "),
                user_excludes.join(", ")
            ),
        );
    }
    let target = combine(
        org,
        &includes,
        (&excl_users, &excl_devices),
        &r.filter_devices,
        p,
        (&s.foreign[p.platforms.as_slice()], s.breakdown),
        s.trim,
    );
    (target, diags)
}

/// An assignment's filter and mode; a filter for another platform is a
/// warning, one missing from the import an error (and no filter).
fn assignment_filter(
    org: &Org,
    p: &crate::model::Policy,
    a: &crate::model::Assignment,
    subject: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<(usize, FilterMode)> {
    let f = a.filter.as_ref()?;
    match org.filter(&f.filter_id) {
        Some(i) => {
            if let Some(m) = filter_platform_mismatch(p, &org.filters[i]) {
                diags.push(Diagnostic {
                    severity: Severity::Warning,
                    subject: subject.to_string(),
                    message: m,
                });
            }
            Some((i, f.mode))
        }
        None => {
            diags.push(Diagnostic {
                severity: Severity::Error,
                subject: subject.to_string(),
                message: format!(
                    "assignment filter {} is not in the import; the assignment is treated as unfiltered",
                    f.filter_id
                ),
            });
            None
        }
    }
}

/// Applies exclusions, then the filter precedence, to a policy's includes.
pub(crate) fn combine(
    org: &Org,
    includes: &[Include<'_>],
    // Excluded (users, devices).
    (excl_users, excl_devices): (&RoaringBitmap, &RoaringBitmap),
    filter_devices: &[RoaringBitmap],
    policy: &crate::model::Policy,
    // The platforms it cannot reach, and whether to count per reason.
    (foreign, breakdown): (&crate::applicability::Foreign, bool),
    enrolled: Option<&RoaringBitmap>,
) -> PolicyTarget {
    use std::borrow::Cow;
    let mut users = RoaringBitmap::new();
    let (mut by_exclude, mut unfiltered, mut by_include) = (
        RoaringBitmap::new(),
        RoaringBitmap::new(),
        RoaringBitmap::new(),
    );
    let (mut dropped, mut kept) = (RoaringBitmap::new(), RoaringBitmap::new());
    // The devices of (included − excluded) users are the included users'
    // devices minus those the excluded users reach, except that a device
    // another included user signs in to stays: an exclusion removes users,
    // and Intune still applies the policy for the others (memdocs
    // `configuration/device-profile-assign.md`). Only those few devices are
    // checked one by one; without sign-ins a device has one user.
    let excl_user_devices = devices_of_users(org, excl_users);
    let by_others = |inc_users: &RoaringBitmap, lost: &RoaringBitmap| -> RoaringBitmap {
        lost.iter()
            .filter(|&d| {
                org.device_users(d)
                    .any(|u| inc_users.contains(u) && !excl_users.contains(u))
            })
            .collect()
    };
    // Device groups without a filter, united before their exclusions are
    // taken away once: (A - X) | (B - X) is (A | B) - X.
    let mut plain = RoaringBitmap::new();
    for inc in includes {
        if excl_users.is_empty() {
            users |= inc.users;
        } else {
            users |= &(inc.users - excl_users);
        }
        if inc.filter.is_none() && inc.user_devices.is_empty() {
            plain |= inc.devices;
            continue;
        }
        // Exclusions apply to their own kind only: Intune does not evaluate a
        // device group excluded from a user assignment, nor the reverse.
        let mut reach = Cow::Borrowed(inc.devices);
        if !excl_devices.is_empty() {
            reach = Cow::Owned(inc.devices - excl_devices);
        }
        if !inc.user_devices.is_empty() {
            *reach.to_mut() |= &minus(inc.user_devices, &excl_user_devices);
            if org.has_logons() && !excl_user_devices.is_empty() {
                let lost = inc.user_devices & &excl_user_devices;
                *reach.to_mut() |= &by_others(inc.users, &lost);
            }
        }
        match inc.filter {
            None => unfiltered |= reach.as_ref(),
            Some((f, FilterMode::Exclude)) => {
                dropped |= &(reach.as_ref() & &filter_devices[f]);
                by_exclude |= reach.as_ref();
            }
            Some((f, FilterMode::Include)) => {
                kept |= &(reach.as_ref() & &filter_devices[f]);
                by_include |= reach.as_ref();
            }
        }
    }
    plain -= excl_devices;
    unfiltered |= plain;
    // Exclude filters beat no filter, which beats include filters.
    let devices = if by_exclude.is_empty() && kept.is_empty() {
        unfiltered
    } else {
        let mut devices = &by_exclude - &dropped;
        devices |= &(&unfiltered - &by_exclude);
        devices |= &(&(&kept - &by_exclude) - &unfiltered);
        devices
    };
    let devices = match enrolled {
        Some(e) => devices & e,
        None => devices,
    };
    let (not_applicable, by_platform) =
        crate::applicability::not_applicable_given(org, policy, &devices, foreign, breakdown);
    PolicyTarget {
        devices,
        users,
        not_applicable,
        applicable: OnceLock::new(),
        not_applicable_by_platform: by_platform,
    }
}

/// Intune offers an assignment only the filters of the policy's platform
/// (memdocs intune/fundamentals/filters.md, "Use a filter": "A list of
/// filters that match the policy platform is shown"); one that differs came
/// from elsewhere (Graph, a copied export) and is worth a look. iOS and
/// iPadOS share one filter platform.
fn filter_platform_mismatch(p: &crate::model::Policy, f: &crate::model::Filter) -> Option<String> {
    use crate::model::Platform;
    let family = |x: Platform| {
        if x == Platform::IpadOs {
            Platform::Ios
        } else {
            x
        }
    };
    let fp = Platform::parse(f.platform.as_deref()?)?;
    if p.platforms.is_empty() || p.platforms.iter().any(|&q| family(q) == family(fp)) {
        return None;
    }
    let list: Vec<&str> = p.platforms.iter().map(|q| q.as_str()).collect();
    Some(format!(
        "assignment filter '{}' is for {} but the policy is for {}: Intune offers only filters of the policy's platform (filters.md, \"Use a filter\")",
        f.name,
        f.platform.as_deref().unwrap_or_default(),
        list.join("/")
    ))
}

#[cfg(test)]
mod tests;
