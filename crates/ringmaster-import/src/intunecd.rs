//! IntuneCD backups (almenscorner/IntuneCD): one JSON or YAML file per
//! object in a folder per category, with object ids stripped. Assignment
//! targets name their group (`groupName`, `groupType`, `membershipRule`)
//! and their filter (`deviceAndAppManagementAssignmentFilterId`) by display
//! name, and `Assignment Report/report.json` sums the assignments up per
//! group.
//!
//! Names are resolved once everything is read ([`resolve`]): a group name to
//! the imported group of that name, else to a group made from what the
//! target says; a filter name to the imported filter of that name.

use crate::graph::{FieldError, Kind};
use crate::{FileReport, ImportError, ReadPolicy, State};
use ringmaster_core::model::{Assignment, Group, GroupKind, Members, Target};
use ringmaster_core::org::norm_id;
use ringmaster_core::rules::{Grammar, Rule};
use ringmaster_core::targeting::rule_error_line;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// What an IntuneCD category folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Folder {
    SettingsCatalog,
    /// `Compliance Policies/Policies`.
    Compliance,
    DeviceConfiguration,
    Filters,
    /// Objects ringmaster does not model; the text says which.
    Unmodelled(&'static str),
    /// `__archive__`: objects IntuneCD moved aside once they left Intune.
    Archive,
    /// Read by the records' own types (update profiles, ADMX, intents…).
    ByType,
}

impl Folder {
    /// What a record in this folder is when nothing in it says.
    pub(crate) fn hint(self) -> Option<Kind> {
        match self {
            Folder::SettingsCatalog | Folder::Compliance | Folder::DeviceConfiguration => {
                Some(Kind::Policy)
            }
            Folder::Filters => Some(Kind::Filter),
            _ => None,
        }
    }
}

/// An IntuneCD category: its top folder (the key the assignment report
/// files entries under) and what it holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Category {
    pub top: &'static str,
    pub folder: Folder,
}

/// The top folders IntuneCD writes, as its documentation step lists them.
const TOPS: &[(&str, Folder)] = &[
    (
        "App Configuration",
        Folder::Unmodelled("app configuration policies"),
    ),
    (
        "App Protection",
        Folder::Unmodelled("app protection policies"),
    ),
    (
        "Apple Push Notification",
        Folder::Unmodelled("Apple push notification certificates"),
    ),
    ("Apple VPP Tokens", Folder::Unmodelled("Apple VPP tokens")),
    ("Applications", Folder::Unmodelled("apps")),
    ("Assignment Report", Folder::ByType),
    (
        "Autopilot Devices",
        Folder::Unmodelled("Autopilot device identities"),
    ),
    // Split by its sub-folder in `category`.
    ("Compliance Policies", Folder::ByType),
    (
        "Conditional Access",
        Folder::Unmodelled("conditional access policies"),
    ),
    ("Custom Attributes", Folder::Unmodelled("scripts")),
    ("Device Categories", Folder::Unmodelled("device categories")),
    ("Device Configurations", Folder::DeviceConfiguration),
    (
        "Device Management Settings",
        Folder::Unmodelled("tenant settings"),
    ),
    ("Driver Updates", Folder::ByType),
    (
        "Enrollment Configurations",
        Folder::Unmodelled("enrollment configurations"),
    ),
    (
        "Enrollment Profiles",
        Folder::Unmodelled("enrollment profiles"),
    ),
    ("Entra", Folder::Unmodelled("Entra ID tenant settings")),
    ("Feature Updates", Folder::ByType),
    ("Filters", Folder::Filters),
    ("Group Policy Configurations", Folder::ByType),
    (
        "Managed Google Play",
        Folder::Unmodelled("Managed Google Play settings"),
    ),
    ("Management Intents", Folder::ByType),
    (
        "Partner Connections",
        Folder::Unmodelled("partner connections"),
    ),
    ("Proactive Remediations", Folder::Unmodelled("scripts")),
    ("Quality Updates", Folder::ByType),
    ("Roles", Folder::Unmodelled("roles")),
    ("Scope Tags", Folder::Unmodelled("scope tags")),
    ("Scripts", Folder::Unmodelled("scripts")),
    ("Settings Catalog", Folder::SettingsCatalog),
    ("__archive__", Folder::Archive),
];

/// The IntuneCD category of a file: the nearest of its three parent folders
/// that IntuneCD names (categories nest at most that deep, e.g.
/// `Enrollment Profiles/Windows/ESP`). Names compare exactly, as IntuneCD
/// writes them.
pub(crate) fn category(p: &Path) -> Option<Category> {
    let parent = p.parent()?;
    for dir in parent.ancestors().take(3) {
        let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(&(top, folder)) = TOPS.iter().find(|(t, _)| *t == name) else {
            continue;
        };
        let folder = if top == "Compliance Policies" {
            let sub = parent
                .strip_prefix(dir)
                .ok()
                .and_then(|s| s.components().next())
                .and_then(|c| c.as_os_str().to_str());
            match sub {
                Some("Policies") => Folder::Compliance,
                Some("Scripts") => Folder::Unmodelled("scripts"),
                Some("Message Templates") => Folder::Unmodelled("notification templates"),
                _ => Folder::ByType,
            }
        } else {
            folder
        };
        return Some(Category { top, folder });
    }
    None
}

/// Puts back what IntuneCD strips from a policy that ringmaster needs: an id
/// (the file name, which IntuneCD makes unique per object, so two policies
/// of one name but different types stay apart) and the type of
/// settings-style compliance policies. A legacy profile or compliance policy
/// without `@odata.type` cannot be read: the type tells its platform and
/// what its settings mean.
pub(crate) fn prepare_policy(
    folder: Folder,
    item: &mut serde_json::Value,
    p: &Path,
    single: bool,
) -> Result<(), FieldError> {
    let Some(o) = item.as_object_mut() else {
        return Ok(());
    };
    let text = |k: &str| {
        o.get(k)
            .and_then(|v| v.as_str())
            .is_some_and(|s| !s.trim().is_empty())
    };
    let typed = text("@odata.type");
    let has_id = text("id");
    let untyped = |what: &str, examples: &str| FieldError {
        field: "@odata.type".into(),
        message: format!(
            "missing: a {what} needs its @odata.type ({examples}) to tell its platform and what its settings mean; IntuneCD keeps it, so this file was changed after the backup"
        ),
    };
    match folder {
        Folder::Compliance if !typed => {
            if o.contains_key("settings") {
                o.insert(
                    "@odata.type".into(),
                    "#microsoft.graph.deviceManagementCompliancePolicy".into(),
                );
            } else {
                return Err(untyped(
                    "compliance policy",
                    "windows10CompliancePolicy, iosCompliancePolicy…",
                ));
            }
        }
        Folder::DeviceConfiguration if !typed => {
            return Err(untyped(
                "device configuration profile",
                "windows10GeneralConfiguration, macOSCustomConfiguration…",
            ));
        }
        _ => {}
    }
    if single
        && !has_id
        && let Some(stem) = p.file_stem().and_then(|s| s.to_str())
    {
        o.insert("id".into(), id_from_stem(stem).into());
    }
    Ok(())
}

/// IntuneCD names a file `<name>_<type>`, or with `--append-id`
/// `<name>_<type>__<id>`: the real id when it is there.
fn id_from_stem(stem: &str) -> &str {
    match stem.rsplit_once("__") {
        Some((_, id)) if is_guid(id) => id,
        _ => stem,
    }
}

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

/// A group as an IntuneCD target or report entry describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Membership {
    Dynamic(String),
    Static,
}

impl Membership {
    fn same(&self, other: &Membership) -> bool {
        match (self, other) {
            (Membership::Static, Membership::Static) => true,
            (Membership::Dynamic(a), Membership::Dynamic(b)) => same_rule(a, b),
            _ => false,
        }
    }
}

impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Membership::Dynamic(r) => write!(f, "dynamic with rule `{r}`"),
            Membership::Static => f.write_str("static"),
        }
    }
}

fn same_rule(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

fn describe(kind: &GroupKind) -> String {
    match kind {
        GroupKind::Dynamic { rule } => format!("dynamic with rule `{rule}`"),
        GroupKind::Static { .. } => "static".into(),
    }
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.into()
    } else {
        format!("{prefix}.{field}")
    }
}

/// Reads `groupType` and `membershipRule`; a rule is checked as Entra would.
pub(crate) fn membership(
    group_type: Option<&str>,
    rule: Option<&str>,
    field: &str,
) -> Result<Membership, FieldError> {
    let dynamic = match group_type.map(str::trim).filter(|t| !t.is_empty()) {
        None => false,
        Some(t) if t.eq_ignore_ascii_case("DynamicMembership") => true,
        Some(t) if t.eq_ignore_ascii_case("StaticMembership") => false,
        Some(t) => {
            return Err(FieldError {
                field: join(field, "groupType"),
                message: format!("'{t}' is not DynamicMembership or StaticMembership"),
            });
        }
    };
    match rule.filter(|r| !r.trim().is_empty()) {
        Some(r) => {
            Rule::parse(Grammar::EntraDynamicMembership, r).map_err(|e| FieldError {
                field: join(field, "membershipRule"),
                message: format!("{}\n{}", rule_error_line(r, &e), e.render(r)),
            })?;
            Ok(Membership::Dynamic(r.to_string()))
        }
        None if dynamic => Err(FieldError {
            field: join(field, "membershipRule"),
            message: "missing: groupType says DynamicMembership but there is no rule".into(),
        }),
        None => Ok(Membership::Static),
    }
}

/// An assignment target that names its group by display name only.
#[derive(Debug)]
pub(crate) struct NamedTarget {
    /// Index into the policy's assignments.
    pub assignment: usize,
    pub name: String,
    pub membership: Membership,
    /// `assignments[i].target`, for messages.
    pub field: String,
}

/// Whether a JSON value is IntuneCD's assignment report: an array of
/// `{groupName, groupType, membershipRule, assignedTo}`.
pub(crate) fn is_report(v: &serde_json::Value) -> bool {
    v.as_array()
        .and_then(|a| a.first())
        .is_some_and(is_report_entry)
}

/// An entry of an assignment report, which a report's first item is.
pub(crate) fn is_report_entry(e: &serde_json::Value) -> bool {
    e.as_object()
        .is_some_and(|o| o.contains_key("groupName") && o.contains_key("assignedTo"))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryRec {
    group_name: Option<String>,
    group_type: Option<String>,
    membership_rule: Option<String>,
    assigned_to: Option<BTreeMap<String, Vec<ItemRec>>>,
}

#[derive(Debug, Deserialize)]
struct ItemRec {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    intent: Option<String>,
}

/// A read assignment report, used once everything is read.
pub(crate) struct Report {
    file: PathBuf,
    entries: Vec<Entry>,
}

struct Entry {
    record: usize,
    group: String,
    membership: Membership,
    items: Vec<Item>,
}

/// One `assignedTo` entry: an object of a category assigned to the group.
struct Item {
    category: String,
    index: usize,
    name: String,
    /// `@odata.type` without its prefix; empty when the object had none.
    kind: String,
    intent: String,
}

pub(crate) fn read_report(
    p: &Path,
    v: serde_json::Value,
    st: &mut State,
) -> Result<(), ImportError> {
    let serde_json::Value::Array(list) = v else {
        return Err(ImportError::file(p, "an assignment report is an array"));
    };
    let n = list.len();
    let mut entries = Vec::with_capacity(n);
    for (i, item) in list.into_iter().enumerate() {
        let record = i + 1;
        let err = |e: FieldError| ImportError {
            file: p.to_path_buf(),
            record: Some(record),
            line: None,
            column: None,
            field: Some(e.field).filter(|f| !f.is_empty()),
            message: e.message,
        };
        let rec: EntryRec = crate::de_str(&item.to_string()).map_err(err)?;
        let group = rec
            .group_name
            .as_deref()
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .ok_or_else(|| {
                err(FieldError {
                    field: "groupName".into(),
                    message: "missing: a report entry names its group".into(),
                })
            })?
            .to_string();
        let membership = membership(
            rec.group_type.as_deref(),
            rec.membership_rule.as_deref(),
            "",
        )
        .map_err(err)?;
        let mut items = Vec::new();
        for (category, list) in rec.assigned_to.into_iter().flatten() {
            for (j, it) in list.into_iter().enumerate() {
                let name = it
                    .name
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        err(FieldError {
                            field: format!("assignedTo[\"{category}\"][{j}].name"),
                            message: "missing: each assigned object has a name".into(),
                        })
                    })?
                    .to_string();
                items.push(Item {
                    category: category.clone(),
                    index: j,
                    name,
                    kind: it.kind.unwrap_or_default().trim().to_string(),
                    intent: it.intent.unwrap_or_default().trim().to_string(),
                });
            }
        }
        entries.push(Entry {
            record,
            group,
            membership,
            items,
        });
    }
    st.reports.push(Report {
        file: p.to_path_buf(),
        entries,
    });
    st.report.files.push(FileReport {
        path: p.display().to_string(),
        records: n,
        kinds: vec!["IntuneCD assignment report".into()],
    });
    Ok(())
}

/// A place in the input, for messages.
#[derive(Debug, Clone)]
struct At {
    file: PathBuf,
    record: Option<usize>,
    line: Option<usize>,
    field: String,
}

impl At {
    fn error(&self, message: String) -> ImportError {
        ImportError {
            file: self.file.clone(),
            record: self.record,
            line: self.line,
            column: None,
            field: Some(self.field.clone()).filter(|f| !f.is_empty()),
            message,
        }
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = crate::Place {
            file: &self.file,
            line: self.line,
            column: None,
            record: self.record,
            field: Some(self.field.as_str()).filter(|x| !x.is_empty()),
        };
        write!(f, "{place}")
    }
}

/// Display names compare as Entra compares them: without case.
fn name_key(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Group names seen so far: the imported groups, and those made from targets.
struct Names {
    imported: HashMap<String, Vec<usize>>,
    /// Name → the group made, what the first mention said and where.
    made: HashMap<String, (usize, Membership, At)>,
    /// Names whose disagreement with the imported group was already reported.
    noted: HashSet<String>,
}

impl Names {
    fn new(groups: &[Group]) -> Self {
        let mut imported: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, g) in groups.iter().enumerate() {
            imported.entry(name_key(&g.name)).or_default().push(i);
        }
        Names {
            imported,
            made: HashMap::new(),
            noted: HashSet::new(),
        }
    }

    /// The id of the group a name means, making the group when the import
    /// has none of that name.
    fn resolve(
        &mut self,
        name: &str,
        m: &Membership,
        at: &At,
        st: &mut Groups<'_>,
    ) -> Result<String, ImportError> {
        let key = name_key(name);
        if let Some(found) = self.imported.get(&key) {
            if let [i] = found[..] {
                let g = &st.groups[i];
                let agrees = match (&g.kind, m) {
                    (GroupKind::Dynamic { rule }, Membership::Dynamic(r)) => same_rule(rule, r),
                    (GroupKind::Static { .. }, Membership::Static) => true,
                    _ => false,
                };
                if !agrees && self.noted.insert(key) {
                    st.warnings.push(format!(
                        "{at}: IntuneCD says group '{name}' is {m}, but the imported group '{}' ({}) is {}; the imported group is used",
                        g.name,
                        g.id,
                        describe(&g.kind)
                    ));
                }
                return Ok(g.id.clone());
            }
            let list: Vec<String> = found
                .iter()
                .map(|&i| {
                    let g = &st.groups[i];
                    let from = st
                        .seen
                        .get(&g.id.trim().to_ascii_lowercase())
                        .map(|f| format!(", from {f}"))
                        .unwrap_or_default();
                    format!("'{}' ({}{from})", g.name, g.id)
                })
                .collect();
            return Err(at.error(format!(
                "group name '{name}' matches {} imported groups: {}; IntuneCD names a target's group only by display name, so which one is meant cannot be told (rename one in Entra, or import only the one assigned)",
                list.len(),
                list.join(" and ")
            )));
        }
        if let Some((i, first_m, first)) = self.made.get(&key) {
            if !first_m.same(m) {
                return Err(at.error(format!(
                    "IntuneCD says group '{name}' is {m} here, but {first} says it is {first_m}; which one holds cannot be told (are the files from different backups?)"
                )));
            }
            return Ok(st.groups[*i].id.clone());
        }
        let name = name.trim().to_string();
        let kind = match m {
            Membership::Dynamic(rule) => GroupKind::Dynamic { rule: rule.clone() },
            Membership::Static => {
                st.warnings.push(format!(
                    "{at}: group '{name}' is not in the import and IntuneCD names it as a static group, so it is added with its members unknown: assignments to it reach no device until its members are imported (groups and groupMembers)"
                ));
                GroupKind::Static {
                    members: Members::default(),
                }
            }
        };
        st.groups.push(Group {
            id: name.clone(),
            name: name.clone(),
            description: Some("known only by name from an IntuneCD backup".into()),
            kind,
        });
        self.made
            .insert(key, (st.groups.len() - 1, m.clone(), at.clone()));
        Ok(name)
    }
}

/// What resolving names changes in the state.
struct Groups<'a> {
    groups: &'a mut Vec<Group>,
    seen: &'a HashMap<String, String>,
    warnings: &'a mut Vec<String>,
}

/// Resolves names once everything is read: targets' group names, the
/// assignment reports, then filter names.
pub(crate) fn resolve(st: &mut State) -> Result<(), ImportError> {
    let State {
        groups,
        group_seen,
        policies,
        filters,
        reports,
        report,
        ..
    } = st;
    let mut names = Names::new(groups);
    let mut g = Groups {
        groups,
        seen: group_seen,
        warnings: &mut report.warnings,
    };
    for rp in policies.iter_mut() {
        for t in &rp.named {
            let at = At {
                file: rp.file.clone(),
                record: rp.record,
                line: rp.line,
                field: t.field.clone(),
            };
            let id = names.resolve(&t.name, &t.membership, &at, &mut g)?;
            if let Some(a) = rp.policy.assignments.get_mut(t.assignment)
                && let Target::Group(gid) | Target::ExcludeGroup(gid) = &mut a.target
                && gid.trim() == t.name
            {
                *gid = id;
            }
        }
    }
    for r in std::mem::take(reports) {
        use_report(&r, &mut names, &mut g, policies)?;
    }
    resolve_filters(policies, filters, &mut report.warnings)
}

/// The report is what IntuneCD derived from the policy files' own
/// assignments, so it adds only what a policy file lacks: an assignment to
/// a group the policy file does not name at all (include or exclude). What
/// the report cannot say (filters, and for policies whether the group was
/// excluded) is not guessed beyond its `intent`, and every assignment added
/// is reported.
fn use_report(
    r: &Report,
    names: &mut Names,
    g: &mut Groups<'_>,
    policies: &mut [ReadPolicy],
) -> Result<(), ImportError> {
    let mut absent: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &r.entries {
        let at = At {
            file: r.file.clone(),
            record: Some(e.record),
            line: None,
            field: "groupName".into(),
        };
        let gid = names.resolve(&e.group, &e.membership, &at, g)?;
        for it in &e.items {
            let hits: Vec<usize> = policies
                .iter()
                .enumerate()
                .filter(|(_, rp)| listed(rp, it))
                .map(|(i, _)| i)
                .collect();
            let field = format!("assignedTo[\"{}\"][{}]", it.category, it.index);
            let rp = match hits[..] {
                [] => {
                    *absent.entry(it.category.as_str()).or_default() += 1;
                    continue;
                }
                [i] => &mut policies[i],
                _ => {
                    g.warnings.push(format!(
                        "{}, record {}, field `{field}`: {} policies are named '{}'; the report cannot tell which one it means, so it is not used for them",
                        r.file.display(),
                        e.record,
                        hits.len(),
                        it.name
                    ));
                    continue;
                }
            };
            let named = rp.policy.assignments.iter().any(|a| match &a.target {
                Target::Group(x) | Target::ExcludeGroup(x) => norm_id(x) == norm_id(&gid),
                Target::AllDevices | Target::AllUsers => false,
            });
            if named {
                continue;
            }
            let (target, how) = match it.intent.to_ascii_lowercase().as_str() {
                "" | "apply" | "include" => (Target::Group(gid.clone()), "an include"),
                "exclude" => (Target::ExcludeGroup(gid.clone()), "an exclusion"),
                other => {
                    g.warnings.push(format!(
                        "{}, record {}, field `{field}.intent`: intent '{other}' is not modelled; the report's assignment of '{}' to group '{}' is not used",
                        r.file.display(),
                        e.record,
                        it.name,
                        e.group
                    ));
                    continue;
                }
            };
            rp.policy.assignments.push(Assignment {
                target,
                filter: None,
            });
            g.warnings.push(format!(
                "{}, record {}, field `{field}`: IntuneCD's assignment report assigns policy '{}' to group '{}', but {} has no assignment to that group; added as {how} without a filter (the report keeps no filters)",
                r.file.display(),
                e.record,
                it.name,
                e.group,
                rp.file.display()
            ));
        }
    }
    if !absent.is_empty() {
        let total: usize = absent.values().sum();
        let by: Vec<String> = absent.iter().map(|(c, n)| format!("{c} {n}")).collect();
        g.warnings.push(format!(
            "{}: {total} assignment(s) in IntuneCD's assignment report name objects that are not policies in this import ({}); they are not used",
            r.file.display(),
            by.join(", ")
        ));
    }
    Ok(())
}

/// Whether a report entry names this policy: same category folder (when
/// the policy came from one), name and, when the entry gives one, type.
fn listed(rp: &ReadPolicy, it: &Item) -> bool {
    rp.top.is_none_or(|t| t == it.category)
        && name_key(&rp.policy.name) == name_key(&it.name)
        && (it.kind.is_empty() || rp.policy.odata_type.eq_ignore_ascii_case(&it.kind))
}

/// A filter reference that is not a filter id but is a filter's display name
/// (as IntuneCD writes them) becomes that filter's id. References to no
/// imported filter stay as they are: resolving reports them as errors, as it
/// does for unknown ids, and the load says where each one is.
fn resolve_filters(
    policies: &mut [ReadPolicy],
    filters: &[(String, String)],
    warnings: &mut Vec<String>,
) -> Result<(), ImportError> {
    let ids: HashMap<String, usize> = filters
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (norm_id(id).into_owned(), i))
        .collect();
    let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, (_, name)) in filters.iter().enumerate() {
        by_name.entry(name_key(name)).or_default().push(i);
    }
    let mut unknown: BTreeMap<String, (usize, At)> = BTreeMap::new();
    for rp in policies.iter_mut() {
        for (i, a) in rp.policy.assignments.iter_mut().enumerate() {
            let Some(f) = &mut a.filter else { continue };
            if let Some(&k) = ids.get(norm_id(&f.filter_id).as_ref()) {
                f.filter_id = filters[k].0.clone();
                continue;
            }
            let at = At {
                file: rp.file.clone(),
                record: rp.record,
                line: rp.line,
                field: format!("assignments[{i}].target.deviceAndAppManagementAssignmentFilterId"),
            };
            match by_name.get(&name_key(&f.filter_id)).map(Vec::as_slice) {
                Some(&[k]) => f.filter_id = filters[k].0.clone(),
                Some(many) => {
                    let list: Vec<String> = many
                        .iter()
                        .map(|&k| format!("'{}' ({})", filters[k].1, filters[k].0))
                        .collect();
                    return Err(at.error(format!(
                        "filter name '{}' matches {} imported filters: {}; which one is meant cannot be told",
                        f.filter_id,
                        list.len(),
                        list.join(" and ")
                    )));
                }
                None => {
                    unknown.entry(f.filter_id.clone()).or_insert((0, at)).0 += 1;
                }
            }
        }
    }
    for (f, (n, at)) in unknown {
        warnings.push(format!(
            "{at}: assignment filter '{f}' is neither the id nor the display name of an imported filter ({n} assignment(s)); resolving treats them as unfiltered and reports an error"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_come_from_the_nearest_folder_intunecd_names() {
        let check = |path: &str, expect: Option<(&str, Folder)>| {
            let got = category(Path::new(path)).map(|c| (c.top, c.folder));
            assert_eq!(got, expect, "{path}");
        };
        check(
            "b/Settings Catalog/Win_mdm.json",
            Some(("Settings Catalog", Folder::SettingsCatalog)),
        );
        check(
            "b/Compliance Policies/Policies/W_windows10CompliancePolicy.json",
            Some(("Compliance Policies", Folder::Compliance)),
        );
        check(
            "b/Compliance Policies/Message Templates/T.json",
            Some((
                "Compliance Policies",
                Folder::Unmodelled("notification templates"),
            )),
        );
        check(
            "b/Enrollment Profiles/Windows/ESP/E.json",
            Some((
                "Enrollment Profiles",
                Folder::Unmodelled("enrollment profiles"),
            )),
        );
        check(
            "b/__archive__/2025-01-31_10-00-00/Old.json",
            Some(("__archive__", Folder::Archive)),
        );
        check("b/Filters/F.yaml", Some(("Filters", Folder::Filters)));
        // Names compare exactly; deeper than three folders is not IntuneCD's.
        check("b/settings catalog/P.json", None);
        check("b/Scripts/a/b/c/P.json", None);
        check("P.json", None);
    }

    #[test]
    fn ids_come_from_the_file_name() {
        assert_eq!(id_from_stem("Win - BitLocker_mdm"), "Win - BitLocker_mdm");
        assert_eq!(
            id_from_stem("Win_mdm__0f2c1a4e-55aa-4b1c-9d7e-1234567890ab"),
            "0f2c1a4e-55aa-4b1c-9d7e-1234567890ab"
        );
        assert_eq!(id_from_stem("A__B_mdm"), "A__B_mdm");
    }

    #[test]
    fn membership_reads_type_and_rule() {
        let check = |ty: Option<&str>, rule: Option<&str>, expect: Result<Membership, &str>| {
            let got = membership(ty, rule, "assignments[0].target").map_err(|e| e.field);
            assert_eq!(got, expect.map_err(str::to_string), "{ty:?} {rule:?}");
        };
        let rule = "device.deviceOSType -eq \"Windows\"";
        check(
            Some("DynamicMembership"),
            Some(rule),
            Ok(Membership::Dynamic(rule.into())),
        );
        check(Some("StaticMembership"), None, Ok(Membership::Static));
        check(None, None, Ok(Membership::Static));
        check(
            Some("DynamicMembership"),
            None,
            Err("assignments[0].target.membershipRule"),
        );
        check(
            Some("DynamicMembership"),
            Some("(device.deviceOSType -eq \"Windows\""),
            Err("assignments[0].target.membershipRule"),
        );
        check(
            Some("Unified"),
            None,
            Err("assignments[0].target.groupType"),
        );
    }
}
