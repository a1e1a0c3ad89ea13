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
use roaring::{MultiOps, RoaringBitmap};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::borrow::Cow;
use std::sync::OnceLock;

mod antivirus;
mod dense;
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

#[derive(Debug, Clone, Serialize)]
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

/// Runs the analysis over the policies in scope.
pub fn analyze(org: &Org, res: &Resolution, scope: &Scope<'_>) -> ConflictReport {
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
    let mut findings: Vec<Finding> = candidates
        .par_iter()
        .flat_map_iter(|(id, entries)| findings_for(&ctx, id, entries))
        .collect();
    findings.extend(scope_findings(&ctx, &scope_pairs));
    findings.sort_by(|a, b| {
        a.kind
            .cmp(&b.kind)
            .then(b.devices.cmp(&a.devices))
            .then(a.setting_id.cmp(&b.setting_id))
    });
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
    ConflictReport {
        policies: scope.policies.len(),
        settings,
        findings,
        not_applicable,
        rule_free_applies: scope::rule_free_applies(org, res, scope.policies),
        settings_not_applicable: settings_not_applicable(org, res, scope.policies),
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
    /// Each policy's devices where it applies (shared within a class).
    applicable: FxHashMap<usize, &'a RoaringBitmap>,
    /// Each distinct reach laid out for meeting, built on first use.
    flat: FxHashMap<usize, OnceLock<dense::Flat>>,
    platforms: Vec<(String, RoaringBitmap)>,
    /// Include targets of the policies that can be involved.
    targets: FxHashMap<usize, Vec<Reach>>,
    /// What All users reaches, laid out on first use.
    owned: OnceLock<dense::Flat>,
    /// Each group's reach, built on first use (a group of users and devices
    /// is a union, and many findings ask for the same group).
    groups: Vec<(OnceLock<Cow<'a, RoaringBitmap>>, OnceLock<dense::Flat>)>,
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
        let flat = applicable
            .values()
            .map(|b| (addr(b), OnceLock::new()))
            .collect();
        Ctx {
            org,
            res,
            scope,
            applicable,
            flat,
            platforms: platform_rows(org),
            targets,
            owned: OnceLock::new(),
            groups: (0..org.groups.len())
                .map(|_| (OnceLock::new(), OnceLock::new()))
                .collect(),
        }
    }

    /// Affected devices a target reaches. A few are looked up in its bitmap;
    /// many are counted on words, the target laid out once per analysis.
    fn count(&self, t: Reach, affected: &RoaringBitmap, words: &dense::Window) -> u64 {
        let few = affected.len() < 4096;
        let (bitmap, flat) = match t {
            Reach::AllDevices => return affected.len(),
            Reach::AllUsers => (&self.res.all_users_devices, &self.owned),
            Reach::Group(g) => (
                &**self.groups[g]
                    .0
                    .get_or_init(|| self.res.group_reach(self.org, g)),
                &self.groups[g].1,
            ),
        };
        if few {
            return bitmap.intersection_len(affected);
        }
        words.count(flat.get_or_init(|| dense::Flat::new(bitmap)))
    }

    fn flat(&self, b: &RoaringBitmap) -> &dense::Flat {
        self.flat[&addr(b)].get_or_init(|| dense::Flat::new(b))
    }

    /// A side's distinct reaches (policies of one class share theirs).
    fn distinct(&self, side: &[Entry]) -> Vec<&'a RoaringBitmap> {
        let mut v: Vec<&RoaringBitmap> = side.iter().map(|(p, _)| self.applicable[p]).collect();
        v.sort_by_key(|b| addr(b));
        v.dedup_by_key(|b| addr(b));
        v
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

fn breakdown(platforms: &[(String, RoaringBitmap)], rows: &RoaringBitmap) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = platforms
        .iter()
        .map(|(p, b)| (p.clone(), b.intersection_len(rows)))
        .filter(|(_, n)| *n > 0)
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// Findings for one setting: configuration pairs, compliance pairs, and
/// compliance-over-configuration, each where the targets intersect; custom
/// payloads among themselves and against the typed forms of their setting.
fn findings_for(ctx: &Ctx<'_>, id: &str, entries: &[Entry]) -> Vec<Finding> {
    let org = ctx.org;
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
        out.extend(finding(ctx, id, FindingKind::Unverifiable, &sides, None));
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
        out.extend(finding(ctx, id, kind, &[vec![*c], others], None));
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
            out.extend(match antivirus_outcome(org, id, &certain) {
                Some((kind, effective)) => {
                    finding(ctx, id, kind, &certain, Some(effective)).map(|f| Finding {
                        source: Some(antivirus::SOURCE),
                        ..f
                    })
                }
                None => finding(ctx, id, FindingKind::Conflict, &certain, None),
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
            out.extend(finding(
                ctx,
                id,
                FindingKind::MayBeNotConfigured,
                &sides,
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
        out.extend(finding(
            ctx,
            id,
            FindingKind::MostRestrictive,
            &compliance_sides,
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
            out.extend(finding(
                ctx,
                id,
                FindingKind::ComplianceWins,
                &sides,
                effective,
            ));
        }
    }
    out
}

/// Where a user-scope value meets a differing device-scope one.
fn scope_findings(ctx: &Ctx<'_>, pairs: &[scope::ScopePair]) -> Vec<Finding> {
    pairs
        .iter()
        .filter_map(|(id, user, device)| {
            let effective = scope::user_scope_effective(ctx.org, user);
            let sides = [user.clone(), device.clone()];
            finding(ctx, id, FindingKind::UserScopeWins, &sides, Some(effective)).map(|f| Finding {
                source: Some(scope::USER_SCOPE_SOURCE),
                ..f
            })
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

/// The devices where two sides (groups of policies with one value each)
/// meet, and, where it came for free, each policy's share of them (in the
/// order of `sides` flattened).
///
/// Two sides are the usual case and the costly one when one side holds
/// hundreds of policies: each policy of the larger side is tested against the
/// smaller side, in one pass that also counts and keeps (see [`dense`]).
fn meeting(
    ctx: &Ctx<'_>,
    sides: &[Vec<Entry>],
) -> (RoaringBitmap, dense::Window, Vec<Option<u64>>) {
    let n: usize = sides.iter().map(Vec::len).sum();
    if sides.len() == 2 {
        let (d0, d1) = (ctx.distinct(&sides[0]), ctx.distinct(&sides[1]));
        let size = |d: &[&RoaringBitmap]| d.iter().map(|b| b.len()).sum::<u64>();
        let (large, d_small, d_large) = if size(&d0) <= size(&d1) {
            (1, d0, d1)
        } else {
            (0, d1, d0)
        };
        let flats: Vec<&dense::Flat> = d_small.iter().map(|b| ctx.flat(b)).collect();
        let small = dense::Window::of(&flats);
        let mut kept = small.blank();
        let count_of: FxHashMap<usize, u64> = d_large
            .iter()
            .map(|b| (addr(b), small.meet(ctx.flat(b), &mut kept)))
            .collect();
        let mut counts = vec![None; n];
        let offset = if large == 0 { 0 } else { sides[0].len() };
        for (k, (p, _)) in sides[large].iter().enumerate() {
            counts[offset + k] = count_of.get(&addr(ctx.applicable[p])).copied();
        }
        return (kept.bitmap(), kept, counts);
    }
    let reach: Vec<RoaringBitmap> = sides
        .iter()
        .map(|s| ctx.distinct(s).into_iter().union())
        .collect();
    // Devices in two sides or more, in one pass: what the sides so far
    // cover, and what they cover twice.
    let mut seen = RoaringBitmap::new();
    let mut affected = RoaringBitmap::new();
    for r in &reach {
        affected |= &seen & r;
        seen |= r;
    }
    let words = dense::Window::of(&[&dense::Flat::new(&affected)]);
    (affected, words, vec![None; n])
}

fn finding(
    ctx: &Ctx<'_>,
    id: &str,
    kind: FindingKind,
    sides: &[Vec<Entry>],
    effective: Option<String>,
) -> Option<Finding> {
    let org = ctx.org;
    // The affected devices as a bitmap to keep, and as words to count on.
    let (affected, words, counts) = meeting(ctx, sides);
    if affected.is_empty() {
        return None;
    }
    let mut values = Vec::new();
    let mut involved = Vec::new();
    let mut known: FxHashMap<usize, u64> = FxHashMap::default();
    for (&(p, i), n) in sides.iter().flatten().zip(counts) {
        // Policies whose devices are not among the affected ones play no part.
        let a = ctx.applicable[&p];
        let n = n.unwrap_or_else(|| {
            *known
                .entry(addr(a))
                .or_insert_with(|| words.count(ctx.flat(a)))
        });
        if n == 0 {
            continue;
        }
        involved.push(p);
        let leaf = &org.policies[p].settings[i];
        values.push(PolicyValue {
            policy_id: org.policies[p].id.clone(),
            name: org.policies[p].name.clone(),
            value: leaf.value.clone(),
            proposed: ctx.scope.proposed.get(p).copied().unwrap_or(false),
            devices: n,
            maybe_default: leaf.maybe_default.clone(),
            written_as: leaf.written_as.clone(),
        });
    }
    let setting = readable_name(id);
    let accepted = ctx
        .scope
        .accepted
        .iter()
        .find(|a| accepts(a, id, &setting, &values))
        .map(|a| Accepted {
            reason: a.reason.clone(),
            expires: a.expires,
            expired: a.expires < ctx.scope.today,
        });
    Some(Finding {
        kind,
        setting_id: id.to_string(),
        setting,
        devices: affected.len(),
        effective,
        source: None,
        by_platform: breakdown(&ctx.platforms, &affected),
        by_group: by_group(ctx, &involved, &affected, &words),
        sample_devices: spread(&affected, 5)
            .map(|d| {
                org.device(DeviceAttr::Name, d)
                    .unwrap_or("(unnamed)")
                    .to_string()
            })
            .collect(),
        values,
        accepted,
        affected,
    })
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
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
/// distinct target counted once.
fn by_group(
    ctx: &Ctx<'_>,
    involved: &[usize],
    affected: &RoaringBitmap,
    words: &dense::Window,
) -> Vec<(String, u64)> {
    let org = ctx.org;
    let mut targets: Vec<Reach> = involved
        .iter()
        .flat_map(|p| ctx.targets.get(p).map(Vec::as_slice).unwrap_or(&[]))
        .copied()
        .collect();
    targets.sort_unstable();
    targets.dedup();
    let mut counts: Vec<(String, u64)> = targets
        .into_iter()
        .map(|t| {
            let name = match t {
                Reach::AllDevices => "All devices".to_string(),
                Reach::AllUsers => "All users".to_string(),
                Reach::Group(g) => org.groups[g].name.clone(),
            };
            (name, ctx.count(t, affected, words))
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    counts
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
    let mut out: Vec<Finding> = ids
        .into_iter()
        .flat_map(|id| findings_for(&ctx, id, &index[id]))
        .collect();
    out.extend(scope_findings(&ctx, &pairs));
    out.sort_by(|a, b| a.kind.cmp(&b.kind).then(a.setting_id.cmp(&b.setting_id)));
    out
}

#[cfg(test)]
mod semantics;
#[cfg(test)]
mod tests;
