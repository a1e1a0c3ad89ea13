//! Setting conflicts between policies, on the devices they actually share
//! (DOMAIN.md §3):
//!
//! - configuration vs configuration, same setting, different values: a conflict;
//! - compliance vs compliance: the most restrictive value wins (reported with
//!   the effective value, not as a conflict);
//! - compliance vs configuration: compliance wins;
//! - not configured never conflicts; merged settings (Defender exclusions,
//!   device-control ids) never conflict; ASR rules are compared per rule;
//! - a value that may be what Graph returns for an unconfigured legacy
//!   setting (`SettingLeaf::maybe_default`) never conflicts: it "may be not
//!   configured", said with the reason;
//! - version values compare as versions (`18.0` is `18.0.0`);
//! - custom OMA-URI and Apple payloads that overlap are unverifiable.

use crate::model::{DeviceAttr, Platform, PolicyKind, Target};
use crate::org::Org;
use crate::rules::Version;
use crate::settings::{LeafKind, readable_name};
use crate::targeting::Resolution;
use rayon::prelude::*;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::borrow::Cow;

mod antivirus;
mod chunked;
mod scope;

pub use scope::RuleFreeApplies;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Configuration policies set different values: Intune reports Conflict.
    Conflict,
    /// Custom OMA-URI / Apple payloads overlap: Intune checks nothing.
    Unverifiable,
    /// Antivirus policies set equally secure values and the last modified
    /// one cannot decide: no value is delivered.
    NothingDelivered,
    /// Configuration policies differ, but a value may be what Graph returns
    /// when the setting is not configured: look before calling it a conflict.
    MayBeNotConfigured,
    /// Compliance policies differ: the most restrictive value applies.
    MostRestrictive,
    /// Antivirus policies differ: the most secure value (or, between equally
    /// secure ones, the last modified policy's) is delivered.
    MostSecure,
    /// The setting is set in user scope and in device scope: the user-scope
    /// value takes precedence.
    UserScopeWins,
    /// A compliance and a configuration policy differ: compliance wins.
    ComplianceWins,
}

impl FindingKind {
    /// The name in JSON reports (`conflict`, `most_restrictive`, …).
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::Conflict => "conflict",
            FindingKind::Unverifiable => "unverifiable",
            FindingKind::NothingDelivered => "nothing_delivered",
            FindingKind::MayBeNotConfigured => "may_be_not_configured",
            FindingKind::MostRestrictive => "most_restrictive",
            FindingKind::MostSecure => "most_secure",
            FindingKind::UserScopeWins => "user_scope_wins",
            FindingKind::ComplianceWins => "compliance_wins",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Conflict => "conflict",
            FindingKind::Unverifiable => "unverifiable",
            FindingKind::NothingDelivered => "nothing delivered",
            FindingKind::MayBeNotConfigured => "may be not configured",
            FindingKind::MostRestrictive => "most restrictive wins",
            FindingKind::MostSecure => "most secure wins",
            FindingKind::UserScopeWins => "user scope wins",
            FindingKind::ComplianceWins => "compliance wins",
        }
    }
}

/// An intended deviation, accepted with a reason until a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Acceptance {
    /// Setting id, display name, or readable path (`laps › policies › …`).
    pub setting: String,
    /// Policy names or ids; empty accepts the setting between any policies.
    pub policies: Vec<String>,
    pub reason: String,
    pub expires: jiff::civil::Date,
}

#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    pub reason: String,
    pub expires: jiff::civil::Date,
    /// The acceptance has run out: the finding counts again.
    pub expired: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyValue {
    pub policy_id: String,
    pub name: String,
    pub value: String,
    /// The admin center's label of a choice value (`Enabled` for `1`),
    /// when the settings catalog has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub proposed: bool,
    /// Affected devices this policy reaches.
    pub devices: u64,
    /// Why this value may be the service default rather than a choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maybe_default: Option<String>,
    /// The form this policy wrote, where it is not the finding's setting id
    /// (a custom OMA-URI or legacy property keyed by its catalog id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_as: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub setting_id: String,
    pub setting: String,
    pub values: Vec<PolicyValue>,
    /// Devices on which two differing values meet.
    pub devices: u64,
    /// For compliance and antivirus: the value that applies (or why none does).
    pub effective: Option<String>,
    /// The document that states the rule applied, where it is not DOMAIN.md §3's plain conflict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
    pub by_platform: Vec<(String, u64)>,
    /// Affected devices per assignment target of the policies involved.
    pub by_group: Vec<(String, u64)>,
    pub sample_devices: Vec<String>,
    pub accepted: Option<Accepted>,
    #[serde(skip)]
    pub affected: RoaringBitmap,
}

impl Finding {
    /// Counts against a clean report: conflicts and unverifiable overlaps not accepted.
    pub fn blocking(&self) -> bool {
        matches!(
            self.kind,
            FindingKind::Conflict | FindingKind::Unverifiable | FindingKind::NothingDelivered
        ) && self.accepted.as_ref().is_none_or(|a| a.expired)
    }
}

/// What identifies a finding from one analysis to the next: its kind, its
/// setting and the policies whose values meet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub struct FindingKey {
    pub kind: String,
    pub setting_id: String,
    pub policies: Vec<String>,
}

impl Finding {
    pub fn key(&self) -> FindingKey {
        let mut policies: Vec<String> = self.values.iter().map(|v| v.policy_id.clone()).collect();
        policies.sort_unstable();
        policies.dedup();
        FindingKey {
            kind: self.kind.name().to_string(),
            setting_id: self.setting_id.clone(),
            policies,
        }
    }
}

/// What changed since an earlier analysis: findings that are new (a policy
/// assigned or changed since, now meeting another) and findings that are gone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    pub new: Vec<FindingKey>,
    pub gone: Vec<FindingKey>,
}

pub fn changes(before: &[FindingKey], now: &ConflictReport) -> Changes {
    let before: std::collections::BTreeSet<&FindingKey> = before.iter().collect();
    let now_keys: std::collections::BTreeSet<FindingKey> =
        now.findings.iter().map(Finding::key).collect();
    Changes {
        new: now_keys
            .iter()
            .filter(|k| !before.contains(k))
            .cloned()
            .collect(),
        gone: before
            .iter()
            .filter(|k| !now_keys.contains(**k))
            .map(|k| (*k).clone())
            .collect(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NotApplicable {
    pub policy_id: String,
    pub name: String,
    pub platforms: Vec<Platform>,
    pub devices: u64,
    pub by_platform: Vec<(String, u64)>,
}

/// A setting of a policy that some of the devices the policy applies to
/// cannot take (their Windows version is outside what the catalog lists
/// for it): Intune reports that setting Not applicable there.
#[derive(Debug, Clone, Serialize)]
pub struct SettingNotApplicable {
    pub policy_id: String,
    pub name: String,
    /// The setting's definition id (a leaf's top-level id).
    pub setting_id: String,
    pub setting: String,
    /// `needs Windows 10.0.19041 or later`.
    pub reason: String,
    pub devices: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ConflictReport {
    pub policies: usize,
    pub settings: usize,
    pub findings: Vec<Finding>,
    pub not_applicable: Vec<NotApplicable>,
    /// Profiles with the same settings where the one without applicability
    /// rules applies instead of the one with.
    pub rule_free_applies: Vec<RuleFreeApplies>,
    /// Settings that some reached devices cannot take, largest first.
    pub settings_not_applicable: Vec<SettingNotApplicable>,
}

impl ConflictReport {
    pub fn blocking(&self) -> usize {
        self.findings.iter().filter(|f| f.blocking()).count()
    }
}

/// A setting leaf by (policy index, leaf index within the policy).
type Entry = (usize, usize);

/// What to analyse.
pub struct Scope<'a> {
    /// Indices of the policies considered (one for isolated mode).
    pub policies: &'a [usize],
    /// Per policy index of the org: not deployed yet.
    pub proposed: &'a [bool],
    pub accepted: &'a [Acceptance],
    pub today: jiff::civil::Date,
}

/// How a compliance property orders its values.
#[derive(Clone, Copy)]
enum Order {
    /// Higher is stricter: numbers, or versions where the property names one.
    Higher,
    /// Lower is stricter.
    Lower,
    /// Members by rank, least strict first; members of one rank are equal.
    Rank(&'static [&'static [&'static str]]),
    /// `true` is stricter than `false`.
    True,
    /// `false` is stricter than `true`.
    False,
}

#[derive(Clone, Copy)]
enum Name {
    Is(&'static str),
    Contains(&'static str),
    EndsWith(&'static str),
}

/// Password types from no requirement to the strictest. Android's password
/// qualities are ordered so (DevicePolicyManager: unspecified < weak
/// biometric < something < numeric < numeric complex < alphabetic <
/// alphanumeric < complex); Windows, iOS and macOS have numeric <
/// alphanumeric. "Required" and "any" both mean some password.
const PASSWORD_TYPES: &[&[&str]] = &[
    &["deviceDefault"],
    &["lowSecurityBiometric"],
    &["required", "any"],
    &["numeric", "atLeastNumeric"],
    &["numericComplex"],
    &["alphabetic", "atLeastAlphabetic"],
    &["alphanumeric", "atLeastAlphanumeric"],
    &["alphanumericWithSymbols"],
];

/// Compliance properties (names lowercased) and how their values order; the
/// first that matches decides.
const ORDERS: &[(Name, Order)] = &[
    (
        Name::EndsWith("passwordrequiredtype"),
        Order::Rank(PASSWORD_TYPES),
    ),
    (
        Name::EndsWith("passcoderequiredtype"),
        Order::Rank(PASSWORD_TYPES),
    ),
    (
        Name::EndsWith("requiredpasswordcomplexity"),
        Order::Rank(&[&["none"], &["low"], &["medium"], &["high"]]),
    ),
    // SafetyNet and its successor Play Integrity: hardware-backed key
    // attestation is stricter than the basic check.
    (
        Name::EndsWith("safetynetevaluationtype"),
        Order::Rank(&[&["basic"], &["hardwareBacked"]]),
    ),
    // The highest threat level a device may have and stay compliant.
    (
        Name::EndsWith("securitylevel"),
        Order::Rank(&[
            &["unavailable", "notSet"],
            &["high"],
            &["medium"],
            &["low"],
            &["secured"],
        ]),
    ),
    (
        Name::Is("gatekeeperallowedappsource"),
        Order::Rank(&[
            &["anywhere"],
            &["macAppStoreAndIdentifiedDevelopers"],
            &["macAppStore"],
        ]),
    ),
    (Name::Contains("minimum"), Order::Higher),
    (Name::Contains("previouspasswordblockcount"), Order::Higher),
    (Name::Contains("previouspasscodeblockcount"), Order::Higher),
    (Name::Contains("maximum"), Order::Lower),
    (Name::Contains("expiration"), Order::Lower),
    (Name::Contains("inactivity"), Order::Lower),
    (Name::Contains("graceperiod"), Order::Lower),
    (Name::EndsWith("required"), Order::True),
    (Name::EndsWith("enabled"), Order::True),
    (Name::EndsWith("blocked"), Order::True),
    (Name::EndsWith("allowed"), Order::False),
];

/// The property an id names, lowercased: `windows10CompliancePolicy.osMinimumVersion` → `osminimumversion`.
fn property(id: &str) -> String {
    id.rsplit('.').next().unwrap_or(id).to_ascii_lowercase()
}

/// Whether a property holds a version (`osMinimumVersion`, `minimumOsBuild`…).
fn is_version(prop: &str) -> bool {
    prop.contains("version") || prop.contains("build")
}

/// Numbers by value; versions by their parts (`10.0.9` < `10.0.22631`).
fn magnitude(prop: &str, a: &str, b: &str) -> Option<std::cmp::Ordering> {
    if !is_version(prop)
        && let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>())
    {
        return x.partial_cmp(&y);
    }
    Version::parse(a)
        .zip(Version::parse(b))
        .map(|(x, y)| x.compare(&y))
}

/// Whether two values of a setting are the same: equal text, or equal
/// versions (`18.0` and `18.0.0`).
fn same_value(id: &str, a: &str, b: &str) -> bool {
    a == b
        || (is_version(&property(id))
            && magnitude("version", a, b) == Some(std::cmp::Ordering::Equal))
}

/// How a compliance property orders two values, stricter greater.
fn strictness(id: &str, a: &str, b: &str) -> Option<std::cmp::Ordering> {
    let prop = property(id);
    let order = ORDERS.iter().find_map(|(name, order)| {
        let hit = match *name {
            Name::Is(n) => prop == n,
            Name::Contains(n) => prop.contains(n),
            Name::EndsWith(n) => prop.ends_with(n),
        };
        hit.then_some(*order)
    })?;
    let flag = |s: &str| match s {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    match order {
        Order::Higher => magnitude(&prop, a, b),
        Order::Lower => magnitude(&prop, a, b).map(std::cmp::Ordering::reverse),
        Order::Rank(ranks) => {
            let rank = |s: &str| {
                ranks
                    .iter()
                    .position(|r| r.iter().any(|m| m.eq_ignore_ascii_case(s)))
            };
            rank(a).zip(rank(b)).map(|(x, y)| x.cmp(&y))
        }
        Order::True => flag(a).zip(flag(b)).map(|(x, y)| x.cmp(&y)),
        Order::False => flag(a).zip(flag(b)).map(|(x, y)| y.cmp(&x)),
    }
}

/// A custom payload's value as the catalog writes it: an ADMX-backed policy
/// switched on or off with no data elements (`<enabled/>`, `<disabled/>`)
/// is the catalog's option `1` or `0` (the catalog's ADMX-backed choices are
/// Disabled `…_0`, Enabled `…_1`); anything else as written, trimmed.
fn payload_value(v: &str) -> &str {
    let t = v.trim();
    if t.eq_ignore_ascii_case("<enabled/>") {
        "1"
    } else if t.eq_ignore_ascii_case("<disabled/>") {
        "0"
    } else {
        t
    }
}

/// Whether a custom payload's value and a typed one can be compared as
/// text: both whole numbers (an OMA-URI integer and a catalog choice option
/// `…_1` → `1`), or both `true`/`false`.
fn comparable(a: &str, b: &str) -> bool {
    let number = |s: &str| s.trim().parse::<i64>().is_ok();
    let flag = |s: &str| s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false");
    (number(a) && number(b)) || (flag(a) && flag(b))
}

fn is_compliance(k: &PolicyKind) -> bool {
    *k == PolicyKind::Compliance
}

/// Which findings carry their devices by platform and by assignment
/// target (`by_platform`, `by_group`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakdowns {
    All,
    /// The first findings of the report's order; the others' are empty. A
    /// report that shows only those (text, markdown) skips counting every
    /// group of thousands of findings, most of the work where membership
    /// follows no site.
    First(usize),
}

/// Runs the analysis over the policies in scope.
pub fn analyze(org: &Org, res: &Resolution, scope: &Scope<'_>) -> ConflictReport {
    analyze_with(org, res, scope, Breakdowns::All)
}

/// [`analyze`], with breakdowns only where `breakdowns` asks for them;
/// everything else is the same.
pub fn analyze_with(
    org: &Org,
    res: &Resolution,
    scope: &Scope<'_>,
    breakdowns: Breakdowns,
) -> ConflictReport {
    // Where each setting is configured.
    let index = index(org, scope.policies);
    let settings = scope
        .policies
        .iter()
        .map(|&p| org.policies[p].settings.len())
        .sum();
    let scope_pairs = scope::scope_pairs(org, &index);
    // Settings that two policies set, with something to compare.
    let mut candidates: Vec<(&str, Vec<Entry>)> = index
        .into_iter()
        .filter(|(_, e)| worth_comparing(org, e))
        .collect();
    candidates.sort_by(|a, b| a.0.cmp(b.0));
    let mut involved: Vec<usize> = candidates
        .iter()
        .flat_map(|(_, e)| e.iter().map(|(p, _)| *p))
        .chain(
            scope_pairs
                .iter()
                .flat_map(|(_, u, d)| u.iter().chain(d).map(|(p, _)| *p)),
        )
        .collect();
    involved.sort_unstable();
    involved.dedup();
    // Policies with the same assignments, platforms and applicability rules
    // reach the same devices: they share one bitmap, so where sides meet
    // each distinct reach is unioned and counted once (by address).
    let mut class: FxHashMap<String, usize> = FxHashMap::default();
    let applicable: FxHashMap<usize, &RoaringBitmap> = involved
        .iter()
        .map(|&p| {
            let q = &org.policies[p];
            let key = format!(
                "{:?}|{:?}|{:?}",
                q.assignments, q.platforms, q.applicability
            );
            let rep = *class.entry(key).or_insert(p);
            (p, res.policies[rep].applicable())
        })
        .collect();
    let ctx = Ctx::new(org, res, scope, &involved, applicable);
    let mut pending: Vec<Pending<'_>> = candidates
        .par_iter()
        .flat_map_iter(|(id, entries)| findings_for(org, id, entries))
        .collect();
    pending.extend(scope_findings(org, &scope_pairs));
    let mut findings = settle(&ctx, pending, breakdowns == Breakdowns::All);
    findings.sort_by(|a, b| {
        a.kind
            .cmp(&b.kind)
            .then(b.devices.cmp(&a.devices))
            .then(a.setting_id.cmp(&b.setting_id))
    });
    if let Breakdowns::First(n) = breakdowns {
        findings
            .par_iter_mut()
            .take(n)
            .for_each(|f| break_down(&ctx, f));
    }
    let not_applicable = scope
        .policies
        .iter()
        .filter(|&&p| !res.policies[p].not_applicable.is_empty())
        .map(|&p| NotApplicable {
            policy_id: org.policies[p].id.clone(),
            name: org.policies[p].name.clone(),
            platforms: org.policies[p].platforms.clone(),
            devices: res.policies[p].not_applicable.len(),
            by_platform: res.policies[p].not_applicable_by_platform.clone(),
        })
        .collect();
    let rfa = scope::rule_free_applies(org, res, scope.policies);
    let sna = settings_not_applicable(org, res, scope.policies);
    ConflictReport {
        policies: scope.policies.len(),
        settings,
        findings,
        not_applicable,
        rule_free_applies: rfa,
        settings_not_applicable: sna,
    }
}

/// For each policy and each of its settings with a Windows version
/// requirement, the devices it applies to whose version is outside it.
/// Each distinct requirement is worked out once over the org, and each
/// policy meets it once however many of its settings share it.
fn settings_not_applicable(
    org: &Org,
    res: &Resolution,
    policies: &[usize],
) -> Vec<SettingNotApplicable> {
    use crate::applicability::settings::{Needs, definition, excluded, needs};
    // Per policy: its restricted settings (definition id, requirement), each once.
    let wants: Vec<(usize, Vec<(&str, &'static Needs)>)> = policies
        .iter()
        .map(|&p| {
            let mut list: Vec<(&str, &'static Needs)> = org.policies[p]
                .settings
                .iter()
                .filter_map(|l| needs(&l.id).map(|n| (definition(&l.id), n)))
                .collect();
            list.sort_unstable_by(|a, b| a.0.cmp(b.0));
            list.dedup_by(|a, b| a.0 == b.0);
            (p, list)
        })
        .filter(|(_, list)| !list.is_empty())
        .collect();
    let mut distinct: Vec<&'static Needs> = wants
        .iter()
        .flat_map(|(_, l)| l.iter().map(|(_, n)| *n))
        .collect();
    distinct.sort_unstable_by_key(|n| (n.min, n.max, n.editions));
    distinct.dedup();
    let below: FxHashMap<&Needs, (RoaringBitmap, RoaringBitmap)> = distinct
        .par_iter()
        .map(|&n| (n, excluded(org, n)))
        .filter(|(_, (v, e))| !v.is_empty() || !e.is_empty())
        .collect();
    let mut out: Vec<SettingNotApplicable> = wants
        .par_iter()
        .flat_map_iter(|(p, list)| {
            let reach = res.policies[*p].applicable();
            // Per requirement: devices it excludes here, and which parts of
            // it exclude any (so the reason names only those).
            let mut counts: FxHashMap<&Needs, (u64, bool, bool)> = FxHashMap::default();
            list.iter()
                .filter_map(|&(id, n)| {
                    let (version, edition) = below.get(n)?;
                    let &mut (devices, by_version, by_edition) =
                        counts.entry(n).or_insert_with(|| {
                            let (v, e) = (version & reach, edition & reach);
                            ((&v | &e).len(), !v.is_empty(), !e.is_empty())
                        });
                    (devices > 0).then(|| SettingNotApplicable {
                        policy_id: org.policies[*p].id.clone(),
                        name: org.policies[*p].name.clone(),
                        setting_id: id.to_string(),
                        setting: readable_name(id),
                        reason: n.reason_for(by_version, by_edition),
                        devices,
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort_by(|a, b| {
        b.devices
            .cmp(&a.devices)
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.policy_id.cmp(&b.policy_id))
            .then_with(|| a.setting_id.cmp(&b.setting_id))
    });
    out
}

/// A setting set by two or more policies with something to compare: values
/// that differ, or a custom payload; lists Intune merges never qualify.
fn worth_comparing(org: &Org, entries: &[Entry]) -> bool {
    let leaf = |&(p, i): &Entry| &org.policies[p].settings[i];
    if entries.len() < 2 || entries.iter().all(|e| leaf(e).kind == LeafKind::Merge) {
        return false;
    }
    let first = &leaf(&entries[0]).value;
    entries.iter().any(|e| {
        leaf(e).kind == LeafKind::Unverifiable || !same_value(&leaf(e).id, &leaf(e).value, first)
    })
}

struct Ctx<'a> {
    org: &'a Org,
    res: &'a Resolution,
    scope: &'a Scope<'a>,
    /// Each policy's devices where it applies, as an index into `reaches`
    /// (policies of one class share theirs).
    reach_of: FxHashMap<usize, u32>,
    reaches: Vec<&'a RoaringBitmap>,
    platforms: Vec<(String, RoaringBitmap)>,
    /// Include targets of the policies that can be involved.
    targets: FxHashMap<usize, Vec<Reach>>,
}

impl<'a> Ctx<'a> {
    fn new(
        org: &'a Org,
        res: &'a Resolution,
        scope: &'a Scope<'a>,
        policies: &[usize],
        applicable: FxHashMap<usize, &'a RoaringBitmap>,
    ) -> Self {
        let targets = policies
            .iter()
            .map(|&p| (p, include_targets(org, p)))
            .collect();
        let mut at: FxHashMap<usize, u32> = FxHashMap::default();
        let mut reaches = Vec::new();
        let mut mine: Vec<(usize, &RoaringBitmap)> = applicable.into_iter().collect();
        mine.sort_unstable_by_key(|(p, _)| *p);
        let reach_of = mine
            .into_iter()
            .map(|(p, b)| {
                let k = *at.entry(addr(b)).or_insert_with(|| {
                    reaches.push(b);
                    (reaches.len() - 1) as u32
                });
                (p, k)
            })
            .collect();
        Ctx {
            org,
            res,
            scope,
            reach_of,
            reaches,
            platforms: platform_rows(org),
            targets,
        }
    }
}

/// Where each setting is configured: setting id → (policy, leaf) entries.
fn index<'a>(org: &'a Org, policies: &[usize]) -> FxHashMap<&'a str, Vec<Entry>> {
    let mut index: FxHashMap<&str, Vec<Entry>> = FxHashMap::default();
    for &p in policies {
        for (i, leaf) in org.policies[p].settings.iter().enumerate() {
            index.entry(leaf.id.as_str()).or_default().push((p, i));
        }
    }
    index
}

fn platform_rows(org: &Org) -> Vec<(String, RoaringBitmap)> {
    let col = &org.devices.cols[DeviceAttr::Platform.index()];
    (0..col.dict.len() as u32)
        .map(|c| {
            (
                col.dict.value(c).unwrap_or("unknown").to_string(),
                col.rows_of(c).into_owned(),
            )
        })
        .collect()
}

/// Findings for one setting: configuration pairs, compliance pairs, and
/// compliance-over-configuration, each where the targets intersect; custom
/// payloads among themselves and against the typed forms of their setting.
fn findings_for<'e>(org: &Org, id: &'e str, entries: &[Entry]) -> Vec<Pending<'e>> {
    let leaf = |&(p, i): &Entry| &org.policies[p].settings[i];
    let by_value = |es: &[Entry]| -> Vec<Vec<Entry>> {
        let mut groups: Vec<Vec<Entry>> = Vec::new();
        for e in es {
            match groups
                .iter_mut()
                .find(|g| same_value(id, &leaf(&g[0]).value, &leaf(e).value))
            {
                Some(g) => g.push(*e),
                None => groups.push(vec![*e]),
            }
        }
        groups
    };
    let (custom, typed): (Vec<Entry>, Vec<Entry>) =
        entries.iter().partition(|e| leaf(e).is_custom());
    let (compliance, config): (Vec<Entry>, Vec<Entry>) = typed
        .iter()
        .partition(|(p, _)| is_compliance(&org.policies[*p].kind));
    let mut out = Vec::new();
    if custom.len() > 1 {
        // Every payload is its own side: Intune does not check these at all.
        let sides: Vec<Vec<Entry>> = custom.iter().map(|e| vec![*e]).collect();
        out.push(Pending::new(id, FindingKind::Unverifiable, sides, None));
    }
    let config_sides = by_value(&config);
    for c in &custom {
        // A custom OMA-URI keyed by its catalog id meets the catalog or
        // legacy form: equal values are nothing, plain numbers or flags that
        // differ conflict on the device, and anything else (ADMX data
        // elements, strings against choices) cannot be told apart here:
        // unverifiable.
        let mine = payload_value(&leaf(c).value);
        let differ: Vec<Vec<Entry>> = config_sides
            .iter()
            .filter(|g| !same_value(id, &leaf(&g[0]).value, mine))
            .cloned()
            .collect();
        if differ.is_empty() {
            continue;
        }
        let others: Vec<Entry> = differ.into_iter().flatten().collect();
        let kind = if !others.iter().all(|e| comparable(&leaf(e).value, mine)) {
            FindingKind::Unverifiable
        } else if others.iter().any(|e| leaf(e).maybe_default.is_some()) {
            FindingKind::MayBeNotConfigured
        } else {
            FindingKind::Conflict
        };
        // Two sides: the payload, and the values it differs from.
        out.push(Pending::new(id, kind, vec![vec![*c], others], None));
    }
    if config_sides.len() > 1 {
        // A value that may be Graph's "not configured" is no conflict: the
        // certain values conflict among themselves, and where a doubtful
        // value meets another the finding says why it may not be real.
        let (doubtful, certain): (Vec<Vec<Entry>>, Vec<Vec<Entry>>) = config_sides
            .iter()
            .cloned()
            .partition(|s| s.iter().any(|e| leaf(e).maybe_default.is_some()));
        if certain.len() > 1 {
            out.push(match antivirus_outcome(org, id, &certain) {
                Some((kind, effective)) => Pending {
                    source: Some(antivirus::SOURCE),
                    ..Pending::new(id, kind, certain.clone(), Some(effective))
                },
                None => Pending::new(id, FindingKind::Conflict, certain.clone(), None),
            });
        }
        if !doubtful.is_empty() {
            // The certain values as one side: where only they meet is the
            // conflict above, not this finding.
            let mut sides = doubtful;
            let others: Vec<Entry> = certain.into_iter().flatten().collect();
            if !others.is_empty() {
                sides.push(others);
            }
            out.push(Pending::new(
                id,
                FindingKind::MayBeNotConfigured,
                sides,
                None,
            ));
        }
    }
    let compliance_sides = by_value(&compliance);
    if compliance_sides.len() > 1 {
        let values: Vec<&str> = compliance_sides
            .iter()
            .map(|s| leaf(&s[0]).value.as_str())
            .collect();
        let strictest = values.iter().copied().try_fold(values[0], |best, v| {
            strictness(id, best, v).map(|o| if o.is_lt() { v } else { best })
        });
        let effective = strictest
            .map(str::to_string)
            .unwrap_or_else(|| format!("the most restrictive of {}", values.join(", ")));
        out.push(Pending::new(
            id,
            FindingKind::MostRestrictive,
            compliance_sides.clone(),
            Some(effective),
        ));
    }
    if !compliance.is_empty() && !config.is_empty() {
        let mut sides = compliance_sides.clone();
        sides.extend(
            config_sides
                .iter()
                .filter(|c| {
                    compliance_sides
                        .iter()
                        .all(|s| !same_value(id, &leaf(&s[0]).value, &leaf(&c[0]).value))
                })
                .cloned(),
        );
        if sides.len() > compliance_sides.len() {
            let effective =
                (compliance_sides.len() == 1).then(|| leaf(&compliance_sides[0][0]).value.clone());
            out.push(Pending::new(
                id,
                FindingKind::ComplianceWins,
                sides,
                effective,
            ));
        }
    }
    out
}

/// Where a user-scope value meets a differing device-scope one.
fn scope_findings<'p>(org: &Org, pairs: &'p [scope::ScopePair]) -> Vec<Pending<'p>> {
    pairs
        .iter()
        .map(|(id, user, device)| Pending {
            source: Some(scope::USER_SCOPE_SOURCE),
            ..Pending::new(
                id,
                FindingKind::UserScopeWins,
                vec![user.clone(), device.clone()],
                Some(scope::user_scope_effective(org, user)),
            )
        })
        .collect()
}

/// How the antivirus rule resolves differing values of a Defender setting,
/// when every policy is an endpoint security antivirus policy and the values
/// have a known order; `None` leaves it a conflict.
fn antivirus_outcome(org: &Org, id: &str, sides: &[Vec<Entry>]) -> Option<(FindingKind, String)> {
    let ranks = antivirus::ranks(id)?;
    let policies = || sides.iter().flatten().map(|&(p, _)| &org.policies[p]);
    if !policies().all(|p| p.template_family.as_deref() == Some(antivirus::FAMILY)) {
        return None;
    }
    let votes: Vec<antivirus::Vote<'_>> = sides
        .iter()
        .flatten()
        .map(|&(p, i)| antivirus::Vote {
            value: &org.policies[p].settings[i].value,
            policy: &org.policies[p].name,
            last_modified: org.policies[p].last_modified,
        })
        .collect();
    Some(match antivirus::resolve(ranks, &votes)? {
        antivirus::Outcome::Delivered(value, why) => {
            (FindingKind::MostSecure, format!("{value} ({why})"))
        }
        antivirus::Outcome::Nothing(why) => {
            (FindingKind::NothingDelivered, format!("nothing ({why})"))
        }
    })
}

/// The address of a shared reach: equal for policies of one class.
fn addr(b: &RoaringBitmap) -> usize {
    std::ptr::from_ref(b) as usize
}

/// A finding found, before its devices are known.
struct Pending<'e> {
    id: &'e str,
    kind: FindingKind,
    /// Groups of policies with one value each: the finding is where two meet.
    sides: Vec<Vec<Entry>>,
    effective: Option<String>,
    source: Option<&'static str>,
}

impl<'e> Pending<'e> {
    fn new(
        id: &'e str,
        kind: FindingKind,
        sides: Vec<Vec<Entry>>,
        effective: Option<String>,
    ) -> Self {
        Pending {
            id,
            kind,
            sides,
            effective,
            source: None,
        }
    }
}

/// What each finding counts besides its policies: the platforms (first,
/// in the order of `Ctx::platforms`), All users, and every group a policy
/// involved assigns to.
struct Tallies<'a> {
    bitmaps: Vec<Cow<'a, RoaringBitmap>>,
    of: FxHashMap<Reach, u32>,
}

impl<'a> Tallies<'a> {
    fn new(ctx: &'a Ctx<'_>, pending: &[Pending<'_>]) -> Self {
        let mut wanted: Vec<Reach> = pending
            .iter()
            .flat_map(|p| p.sides.iter().flatten())
            .flat_map(|(p, _)| ctx.targets.get(p).map(Vec::as_slice).unwrap_or(&[]))
            .copied()
            .filter(|t| *t != Reach::AllDevices)
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let reach: Vec<Cow<'a, RoaringBitmap>> = wanted
            .par_iter()
            .map(|t| match *t {
                Reach::Group(g) => ctx.res.group_reach(ctx.org, g),
                _ => Cow::Borrowed(&ctx.res.all_users_devices),
            })
            .collect();
        let platforms = ctx.platforms.iter().map(|(_, b)| Cow::Borrowed(b));
        let first = ctx.platforms.len() as u32;
        Tallies {
            bitmaps: platforms.chain(reach).collect(),
            of: (wanted.into_iter())
                .enumerate()
                .map(|(k, t)| (t, first + k as u32))
                .collect(),
        }
    }
}

/// A finding's question: its sides' distinct reaches and, with `tallies`,
/// the platforms and the targets of its policies (which the ones left out
/// share too).
fn question(
    ctx: &Ctx<'_>,
    tallies: Option<&Tallies<'_>>,
    p: &Pending<'_>,
) -> (chunked::Question, Vec<Reach>) {
    let sides = (p.sides.iter())
        .map(|side| {
            let mut v: Vec<u32> = side.iter().map(|(q, _)| ctx.reach_of[q]).collect();
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect();
    let Some(tallies) = tallies else {
        let tallies = Vec::new();
        return (chunked::Question { sides, tallies }, Vec::new());
    };
    let targets = targets_of(ctx, p.sides.iter().flatten().map(|(q, _)| *q));
    let tallies = (0..ctx.platforms.len() as u32)
        .chain(targets.iter().map(|t| tallies.of[t]))
        .collect();
    (chunked::Question { sides, tallies }, targets)
}

/// The include targets of `policies` but All devices, sorted, each once.
fn targets_of(ctx: &Ctx<'_>, policies: impl Iterator<Item = usize>) -> Vec<Reach> {
    let mut targets: Vec<Reach> = policies
        .flat_map(|q| ctx.targets.get(&q).map(Vec::as_slice).unwrap_or(&[]))
        .copied()
        .filter(|t| *t != Reach::AllDevices)
        .collect();
    targets.sort_unstable();
    targets.dedup();
    targets
}

/// A finding's breakdowns worked out on its own from its affected devices:
/// the counts the chunked pass would have made (each platform's and each
/// target's devices among the affected ones).
fn break_down(ctx: &Ctx<'_>, f: &mut Finding) {
    let involved: Vec<usize> = (f.values.iter())
        .filter_map(|v| ctx.org.policy(&v.policy_id))
        .collect();
    let targets = targets_of(ctx, involved.iter().copied());
    let counts: Vec<u64> = (targets.iter())
        .map(|t| match *t {
            Reach::Group(g) => ctx
                .res
                .group_reach(ctx.org, g)
                .intersection_len(&f.affected),
            _ => ctx.res.all_users_devices.intersection_len(&f.affected),
        })
        .collect();
    f.by_platform = sorted(
        (ctx.platforms.iter())
            .map(|(name, b)| (name.clone(), b.intersection_len(&f.affected)))
            .collect(),
    );
    f.by_group = by_group(ctx, &involved, &targets, &counts, f.devices);
}

/// Every pending finding with its devices, counts and breakdowns; those
/// whose sides reach no device in common are dropped.
fn settle(ctx: &Ctx<'_>, pending: Vec<Pending<'_>>, breakdowns: bool) -> Vec<Finding> {
    let tallies = breakdowns.then(|| Tallies::new(ctx, &pending));
    let (questions, targets): (Vec<chunked::Question>, Vec<Vec<Reach>>) = pending
        .par_iter()
        .map(|p| question(ctx, tallies.as_ref(), p))
        .unzip();
    let bitmaps: Vec<&RoaringBitmap> = (tallies.iter())
        .flat_map(|t| t.bitmaps.iter().map(|b| b.as_ref()))
        .collect();
    let answers = chunked::answer(&ctx.reaches, &bitmaps, &questions);
    pending
        .into_par_iter()
        .zip(questions)
        .zip(answers)
        .zip(targets)
        .filter_map(|(((p, q), a), t)| finding(ctx, p, &q, a, &t))
        .collect()
}

fn finding(
    ctx: &Ctx<'_>,
    p: Pending<'_>,
    q: &chunked::Question,
    a: chunked::Answer,
    targets: &[Reach],
) -> Option<Finding> {
    if a.affected.is_empty() {
        return None;
    }
    let org = ctx.org;
    let id = p.id;
    let count_of: FxHashMap<u32, u64> = q.sides.iter().flatten().copied().zip(a.reaches).collect();
    let mut values = Vec::new();
    let mut involved = Vec::new();
    for &(policy, i) in p.sides.iter().flatten() {
        // Policies whose devices are not among the affected ones play no part.
        let n = count_of[&ctx.reach_of[&policy]];
        if n == 0 {
            continue;
        }
        involved.push(policy);
        let leaf = &org.policies[policy].settings[i];
        values.push(PolicyValue {
            policy_id: org.policies[policy].id.clone(),
            name: org.policies[policy].name.clone(),
            value: leaf.value.clone(),
            label: crate::settings::option_label(id, &leaf.value).map(str::to_string),
            proposed: ctx.scope.proposed.get(policy).copied().unwrap_or(false),
            devices: n,
            maybe_default: leaf.maybe_default.clone(),
            written_as: leaf.written_as.clone(),
        });
    }
    // Asked without tallies, the breakdowns stay empty (see `break_down`).
    let (platforms, groups) = a.tallies.split_at(ctx.platforms.len().min(a.tallies.len()));
    let setting = readable_name(id);
    let accepted = ctx
        .scope
        .accepted
        .iter()
        .find(|acc| accepts(acc, id, &setting, &values))
        .map(|acc| Accepted {
            reason: acc.reason.clone(),
            expires: acc.expires,
            expired: acc.expires < ctx.scope.today,
        });
    Some(Finding {
        kind: p.kind,
        setting_id: id.to_string(),
        setting,
        devices: a.affected.len(),
        effective: p.effective,
        source: p.source,
        by_platform: sorted(
            (ctx.platforms.iter())
                .zip(platforms)
                .map(|((name, _), n)| (name.clone(), *n))
                .collect(),
        ),
        by_group: if q.tallies.is_empty() {
            Vec::new()
        } else {
            by_group(ctx, &involved, targets, groups, a.affected.len())
        },
        sample_devices: spread(&a.affected, 5)
            .map(|d| {
                org.device(DeviceAttr::Name, d)
                    .unwrap_or("(unnamed)")
                    .to_string()
            })
            .collect(),
        values,
        accepted,
        affected: a.affected,
    })
}

/// Counts above zero, the largest first.
fn sorted(mut v: Vec<(String, u64)>) -> Vec<(String, u64)> {
    v.retain(|(_, n)| *n > 0);
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// Up to `n` devices evenly spread over `rows`: rows follow sites and
/// platforms (see `OrgBuilder::cluster_devices`), so these come from different
/// corners of the fleet where the first few would share one site.
fn spread(rows: &RoaringBitmap, n: u64) -> impl Iterator<Item = u32> + '_ {
    let (len, n) = (rows.len(), n.min(rows.len()));
    (0..n).filter_map(move |k| rows.select(u32::try_from(k * len / n).ok()?))
}

fn accepts(a: &Acceptance, id: &str, name: &str, values: &[PolicyValue]) -> bool {
    let setting = a.setting.trim();
    // The readable path is what plans wrote before display names.
    if !setting.eq_ignore_ascii_case(id)
        && !setting.eq_ignore_ascii_case(name)
        && !setting.eq_ignore_ascii_case(&crate::settings::path_name(id))
    {
        return false;
    }
    a.policies.iter().all(|want| {
        values
            .iter()
            .any(|v| v.name.eq_ignore_ascii_case(want) || v.policy_id.eq_ignore_ascii_case(want))
    })
}

/// An include target, resolved once per analysis.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Reach {
    AllDevices,
    AllUsers,
    Group(usize),
}

fn include_targets(org: &Org, p: usize) -> Vec<Reach> {
    org.policies[p]
        .assignments
        .iter()
        .filter_map(|a| match &a.target {
            Target::AllDevices => Some(Reach::AllDevices),
            Target::AllUsers => Some(Reach::AllUsers),
            Target::Group(id) => org.group(id).map(Reach::Group),
            Target::ExcludeGroup(_) => None,
        })
        .collect()
}

/// Affected devices per include target of the policies involved, each
/// distinct target counted once (`counts` goes with `targets`, the
/// targets of every policy of the finding; `all` is every affected device).
fn by_group(
    ctx: &Ctx<'_>,
    involved: &[usize],
    targets: &[Reach],
    counts: &[u64],
    all: u64,
) -> Vec<(String, u64)> {
    let mut mine: Vec<Reach> = involved
        .iter()
        .flat_map(|p| ctx.targets.get(p).map(Vec::as_slice).unwrap_or(&[]))
        .copied()
        .collect();
    mine.sort_unstable();
    mine.dedup();
    let counted = |t: &Reach| targets.binary_search(t).map_or(0, |k| counts[k]);
    sorted(
        mine.iter()
            .map(|t| match *t {
                Reach::AllDevices => ("All devices".to_string(), all),
                Reach::AllUsers => ("All users".to_string(), counted(t)),
                Reach::Group(g) => (ctx.org.groups[g].name.clone(), counted(t)),
            })
            .collect(),
    )
}

/// The findings on one device, computed from the policies that reach it
/// (fast enough for an explanation: no whole-fleet pass).
pub fn analyze_device(org: &Org, res: &Resolution, scope: &Scope<'_>, device: u32) -> Vec<Finding> {
    let here: Vec<usize> = scope
        .policies
        .iter()
        .copied()
        .filter(|&p| {
            res.policies[p].devices.contains(device)
                && !res.policies[p].not_applicable.contains(device)
        })
        .collect();
    let index = index(org, &here);
    let pairs = scope::scope_pairs(org, &index);
    let one: RoaringBitmap = [device].into_iter().collect();
    let applicable: FxHashMap<usize, &RoaringBitmap> = here.iter().map(|&p| (p, &one)).collect();
    let ctx = Ctx::new(org, res, scope, &here, applicable);
    let mut ids: Vec<&str> = index
        .iter()
        .filter(|(_, e)| worth_comparing(org, e))
        .map(|(id, _)| *id)
        .collect();
    ids.sort_unstable();
    let mut pending: Vec<Pending<'_>> = ids
        .into_iter()
        .flat_map(|id| findings_for(org, id, &index[id]))
        .collect();
    pending.extend(scope_findings(org, &pairs));
    let mut out = settle(&ctx, pending, true);
    out.sort_by(|a, b| a.kind.cmp(&b.kind).then(a.setting_id.cmp(&b.setting_id)));
    out
}

#[cfg(test)]
mod semantics;
#[cfg(test)]
mod tests;
