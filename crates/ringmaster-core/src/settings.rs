//! Setting leaves: what a policy sets, each with a stable identity.
//!
//! Identity is the path of setting definition ids from the top instance
//! (`parent/child`), with group-collection members keyed (`parent[key]/child`),
//! so two policies that set the same thing meet on the same id.

use rustc_hash::FxHashMap;
use serde::Serialize;
use std::sync::OnceLock;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingLeaf {
    /// Stable identity: definition-id path, `omauri:<uri>`, or `<odataType>.<property>`.
    pub id: String,
    /// The value as text: a choice option, a number, a sorted list joined by `; `.
    pub value: String,
    pub kind: LeafKind,
    /// Why this value may be what Graph returns for a setting nobody
    /// configured (a legacy enum's first member, a default its description
    /// names); `None` when the value is certainly configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maybe_default: Option<String>,
    /// The form the policy wrote when it names the same setting as `id` in
    /// another way: a custom OMA-URI (`omauri:./device/…`) or a legacy
    /// property (`windows10GeneralConfiguration.cameraBlocked=true`) that the
    /// importer keys by its settings-catalog id. `None` when `id` is as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_as: Option<String>,
}

/// Setting leaves in a form every serde format reads back: the JSON
/// `Serialize` above leaves out empty fields, which a compact binary format
/// (the import snapshot) cannot tell from present ones.
pub(crate) mod leaves {
    use super::{LeafKind, SettingLeaf};
    use serde::{Deserialize, Deserializer, Serializer};

    type Row = (String, String, LeafKind, Option<String>, Option<String>);

    pub fn serialize<S: Serializer>(v: &[SettingLeaf], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            v.iter()
                .map(|l| (&l.id, &l.value, l.kind, &l.maybe_default, &l.written_as)),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SettingLeaf>, D::Error> {
        let rows = Vec::<Row>::deserialize(d)?;
        Ok(rows
            .into_iter()
            .map(|(id, value, kind, maybe_default, written_as)| SettingLeaf {
                id,
                value,
                kind,
                maybe_default,
                written_as,
            })
            .collect())
    }
}

/// A policy's setting leaves. A snapshot stores them apart (a
/// [`crate::lazy::Lazy`]): `org` never reads them, and explaining a device
/// reads those of the policies that reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leaves(pub Vec<SettingLeaf>);

impl std::ops::Deref for Leaves {
    type Target = Vec<SettingLeaf>;
    fn deref(&self) -> &Vec<SettingLeaf> {
        &self.0
    }
}

impl std::ops::DerefMut for Leaves {
    fn deref_mut(&mut self) -> &mut Vec<SettingLeaf> {
        &mut self.0
    }
}

impl serde::Serialize for Leaves {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        leaves::serialize(&self.0, s)
    }
}

impl<'de> serde::Deserialize<'de> for Leaves {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        leaves::deserialize(d).map(Leaves)
    }
}

impl FromIterator<SettingLeaf> for crate::lazy::Lazy<Leaves> {
    fn from_iter<I: IntoIterator<Item = SettingLeaf>>(iter: I) -> Self {
        crate::lazy::Lazy::new(Leaves(iter.into_iter().collect()))
    }
}

impl From<Vec<SettingLeaf>> for crate::lazy::Lazy<Leaves> {
    fn from(v: Vec<SettingLeaf>) -> Self {
        crate::lazy::Lazy::new(Leaves(v))
    }
}

impl SettingLeaf {
    /// A configured value whose kind follows from its id (see [`merges`]).
    pub fn new(id: String, value: String) -> SettingLeaf {
        let kind = if merges(&id) {
            LeafKind::Merge
        } else {
            LeafKind::Value
        };
        SettingLeaf {
            id,
            value,
            kind,
            maybe_default: None,
            written_as: None,
        }
    }

    /// A custom OMA-URI or Apple payload: Intune checks nothing about it.
    pub fn is_custom(&self) -> bool {
        self.kind == LeafKind::Unverifiable
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeafKind {
    /// An ordinary value: different values on one device conflict.
    Value,
    /// A list that Intune merges across policies (Defender exclusions,
    /// device-control ids): never a conflict.
    Merge,
    /// Custom OMA-URI or Apple custom payload: Intune does not check these.
    Unverifiable,
}

/// Whether Intune unions this setting across policies instead of conflicting.
pub fn merges(id: &str) -> bool {
    merge_source(id).is_some()
}

/// The document that says Intune unions this setting, or `None` when it does not.
pub fn merge_source(id: &str) -> Option<&'static str> {
    let l = id.to_ascii_lowercase();
    let named = |list: &[&str]| list.iter().any(|m| l.contains(m));
    if named(&[
        "defender_excludedpaths",
        "defender_excludedextensions",
        "defender_excludedprocesses",
    ]) {
        return Some(
            "memdocs intune/protect/endpoint-security-antivirus-policy.md, \"Settings and CSPs that support policy merge\"",
        );
    }
    if named(&[
        "defender_devicecontrol",
        "devicecontrol_policygroups",
        "devicecontrol_policyrules",
    ]) || device_installation_list(&l)
    {
        return Some(
            "memdocs intune/protect/endpoint-security-asr-policy.md, \"Policy merge for device control profiles\"",
        );
    }
    None
}

/// The six DeviceInstallation allow/block lists (device ids, setup classes,
/// instance ids) that device control merges. Only the lists: the choice that
/// enables each one, and its "also apply to installed devices" flag, are
/// ordinary values.
fn device_installation_list(lowered: &str) -> bool {
    const LISTS: &[&str] = &[
        "allowinstallationofmatchingdeviceids_deviceinstall_ids_allow_list",
        "preventinstallationofmatchingdeviceids_deviceinstall_ids_deny_list",
        "allowinstallationofmatchingdevicesetupclasses_deviceinstall_classes_allow_list",
        "preventinstallationofmatchingdevicesetupclasses_deviceinstall_classes_deny_list",
        "allowinstallationofmatchingdeviceinstanceids_deviceinstall_instance_ids_allow_list",
        "preventinstallationofmatchingdeviceinstanceids_deviceinstall_instance_ids_deny_list",
    ];
    // The last part of a path is the leaf itself.
    let own = lowered.rsplit('/').next().unwrap_or(lowered);
    own.strip_prefix("device_vendor_msft_policy_config_deviceinstallation_")
        .is_some_and(|rest| LISTS.contains(&rest))
}

const PREFIXES: &[&str] = &[
    "device_vendor_msft_policy_config_",
    "user_vendor_msft_policy_config_",
    "device_vendor_msft_",
    "user_vendor_msft_",
    "vendor_msft_",
    "omauri:",
];

/// Display names of settings-catalog settings (`setting_names.txt`, written by
/// `scripts/setting-names.py` from Microsoft's definitions export).
const NAMES: &str = include_str!("setting_names.txt");

/// Category and display name by lower-case definition id; built once, on
/// first use, from the embedded table.
fn names() -> &'static FxHashMap<&'static str, (&'static str, &'static str)> {
    static MAP: OnceLock<FxHashMap<&'static str, (&'static str, &'static str)>> = OnceLock::new();
    MAP.get_or_init(|| {
        NAMES
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let mut f = l.splitn(3, '\t');
                Some((f.next()?, (f.next()?, f.next()?)))
            })
            .collect()
    })
}

/// Labels of choice options (`setting_options.txt`, written by the same
/// script from the one export that carries options).
const OPTIONS: &str = include_str!("setting_options.txt");

/// Option labels by lower-case definition id and option suffix.
fn options() -> &'static FxHashMap<(&'static str, &'static str), &'static str> {
    static MAP: OnceLock<FxHashMap<(&'static str, &'static str), &'static str>> = OnceLock::new();
    MAP.get_or_init(|| {
        OPTIONS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let mut f = l.splitn(3, '\t');
                Some(((f.next()?, f.next()?), f.next()?))
            })
            .collect()
    })
}

/// The admin center's label of a choice value, when the catalog has one
/// that says more than the value: `Enabled` for option `1` of an ADMX-backed
/// Edge policy. `id` is a leaf's id (a child's path ends in its own id).
pub fn option_label(id: &str, value: &str) -> Option<&'static str> {
    let last = id.rsplit('/').next().unwrap_or(id);
    let last = last.split('[').next().unwrap_or(last).to_ascii_lowercase();
    options()
        .get(&(last.as_str(), value.to_ascii_lowercase().as_str()))
        .copied()
}

/// A value as people read it: the option's label (`Enabled`), else the
/// value as written.
pub fn readable_value(id: &str, value: &str) -> String {
    option_label(id, value).map_or_else(|| value.to_string(), str::to_string)
}

/// What the admin center calls a setting: `LAPS › Password Age Days` for
/// `device_vendor_msft_laps_policies_passwordagedays`. A child of a group
/// setting is named by its own definition; a legacy property
/// (`windows10CompliancePolicy.passwordMinimumLength`) by its words; anything
/// else by its id's readable path (`path_name`).
pub fn readable_name(id: &str) -> String {
    let last = id.rsplit('/').next().unwrap_or(id);
    let last = last.split('[').next().unwrap_or(last);
    let key = last.to_ascii_lowercase();
    if let Some((category, name)) = names().get(key.as_str()) {
        return if category.is_empty() || name.starts_with(category) {
            (*name).to_string()
        } else {
            format!("{category} › {name}")
        };
    }
    if let Some(words) = legacy_words(id) {
        return words;
    }
    path_name(id)
}

/// `windows10CompliancePolicy.passwordMinimumLength` becomes
/// `Windows 10 compliance policy › Password minimum length`.
fn legacy_words(id: &str) -> Option<String> {
    let (ty, prop) = id.split_once('.')?;
    let ty = ty
        .trim_start_matches('#')
        .trim_start_matches("microsoft.graph.");
    let camel = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric()) && !s.is_empty();
    if !camel(ty) || !camel(prop) || id.contains('/') {
        return None;
    }
    Some(format!("{} › {}", words(ty), words(prop)))
}

/// Splits camelCase into lower-case words with the first capitalised; runs of
/// capitals (`PIN`, `ASR`) and digits stay whole.
fn words(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let boundary = (c.is_ascii_uppercase()
                && (prev.is_ascii_lowercase()
                    || prev.is_ascii_digit()
                    || (prev.is_ascii_uppercase() && next_lower)))
                || (c.is_ascii_digit() && prev.is_ascii_alphabetic())
                || (c.is_ascii_alphabetic() && prev.is_ascii_digit());
            if boundary {
                out.push(' ');
            }
        }
        out.push(c);
    }
    // Lower-case every word but acronyms; capitalise the first letter.
    let mut text: Vec<String> = out
        .split(' ')
        .map(|w| {
            if w.len() > 1
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            {
                w.to_string()
            } else {
                w.to_ascii_lowercase()
            }
        })
        .collect();
    if let Some(first) = text.first_mut() {
        let mut cs = first.chars();
        if let Some(f) = cs.next() {
            *first = f.to_ascii_uppercase().to_string() + cs.as_str();
        }
    }
    text.join(" ")
}

/// The id as a readable path: `device_vendor_msft_laps_policies_passwordcomplexity`
/// becomes `laps › policies › passwordcomplexity`; paths keep their last two
/// parts. Plans written before display names may still name settings so.
pub fn path_name(id: &str) -> String {
    let parts: Vec<&str> = id.split('/').collect();
    let take = parts.len().saturating_sub(2);
    let mut last = "";
    let mut out = Vec::new();
    for p in &parts[take..] {
        let base = p.split('[').next().unwrap_or(p);
        // A child repeats its parent's id as a prefix: keep what it adds.
        let own = if !last.is_empty() && base.starts_with(last) {
            base[last.len()..].trim_start_matches('_')
        } else {
            base
        };
        last = base;
        let mut s = own;
        for pre in PREFIXES {
            if let Some(r) = s.strip_prefix(pre) {
                s = r;
                break;
            }
        }
        let s = s.replace("~policy~", " › ").replace(['~', '_'], " › ");
        out.push(s);
    }
    out.join(" › ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_values_read_as_their_option_labels() {
        let edge = "3~policy~microsoft_edge_targetblankimpliesnoopener";
        assert_eq!(readable_value(edge, "1"), "Enabled");
        assert_eq!(readable_value(edge, "0"), "Disabled");
        // A child's path ends in its own id; case does not matter.
        assert_eq!(
            readable_value("parent_x/ADE_ActivateCellularDataChoices", "1"),
            "Yes"
        );
        // Unknown options and settings keep their value.
        assert_eq!(readable_value(edge, "7"), "7");
        assert_eq!(
            readable_value("device_vendor_msft_laps_policies_backupdirectory", "1"),
            "1"
        );
        assert_eq!(option_label(edge, "1"), Some("Enabled"));
    }

    #[test]
    fn names() {
        assert_eq!(
            path_name("device_vendor_msft_laps_policies_passwordcomplexity"),
            "laps › policies › passwordcomplexity"
        );
        assert_eq!(
            readable_name("device_vendor_msft_laps_policies_passwordcomplexity"),
            "LAPS › Password Complexity"
        );
        assert_eq!(
            readable_name("device_vendor_msft_policy_config_defender_allowcloudprotection"),
            "Defender › Allow Cloud Protection"
        );
        // Not in the catalog: the readable path.
        assert_eq!(
            readable_name("device_vendor_msft_contoso_custom_thing"),
            "contoso › custom › thing"
        );
        assert_eq!(
            readable_name(
                "device_vendor_msft_policy_config_defender_attacksurfacereductionrules/device_vendor_msft_policy_config_defender_attacksurfacereductionrules_blockwin32apicallsfromofficemacros"
            ),
            "Defender › Block Win32 API calls from Office macros"
        );
        assert_eq!(
            readable_name("windows10CompliancePolicy.passwordMinimumLength"),
            "Windows 10 compliance policy › Password minimum length"
        );
        assert_eq!(
            readable_name("windows10EndpointProtectionConfiguration.bitLockerEncryptDevice"),
            "Windows 10 endpoint protection configuration › Bit locker encrypt device"
        );
        assert_eq!(
            words("passwordRequiredToUnlockFromIdle"),
            "Password required to unlock from idle"
        );
        assert_eq!(
            words("defenderRequireNetworkInspectionSystem"),
            "Defender require network inspection system"
        );
        assert_eq!(
            words("firewallIPSecExemptionsAllowDHCP"),
            "Firewall IP sec exemptions allow DHCP"
        );
        assert_eq!(words("osMinimumVersion"), "Os minimum version");
        assert_eq!(words("appleWatchBlockPairing"), "Apple watch block pairing");
        assert_eq!(words("kioskModeAppStoreUrl"), "Kiosk mode app store url");
        assert_eq!(words("passcodeMinimumLength"), "Passcode minimum length");
        assert_eq!(
            words("storageRequireEncryption"),
            "Storage require encryption"
        );
        assert_eq!(words("pinRequired"), "Pin required");
        assert_eq!(
            words("smartScreenEnableAppInstallControl"),
            "Smart screen enable app install control"
        );
        assert_eq!(
            words("windows10CompliancePolicy"),
            "Windows 10 compliance policy"
        );
        assert_eq!(words("macOSCompliancePolicy"), "Mac OS compliance policy");
        assert!(merges(
            "device_vendor_msft_policy_config_defender_excludedpaths"
        ));
        assert!(!merges(
            "device_vendor_msft_policy_config_defender_allowrealtimemonitoring"
        ));
        let di = "device_vendor_msft_policy_config_deviceinstallation_";
        for (id, merged) in [
            (
                format!(
                    "{di}preventinstallationofmatchingdeviceids/{di}preventinstallationofmatchingdeviceids_deviceinstall_ids_deny_list"
                ),
                true,
            ),
            (
                format!(
                    "{di}allowinstallationofmatchingdevicesetupclasses/{di}allowinstallationofmatchingdevicesetupclasses_deviceinstall_classes_allow_list"
                ),
                true,
            ),
            (
                format!(
                    "{di}allowinstallationofmatchingdeviceinstanceids/{di}allowinstallationofmatchingdeviceinstanceids_deviceinstall_instance_ids_allow_list"
                ),
                true,
            ),
            // The enabling choice and the retroactive flag are values.
            (format!("{di}preventinstallationofmatchingdeviceids"), false),
            (
                format!(
                    "{di}preventinstallationofmatchingdeviceids/{di}preventinstallationofmatchingdeviceids_deviceinstall_ids_deny_retroactive"
                ),
                false,
            ),
        ] {
            assert_eq!(merges(&id), merged, "{id}");
        }
    }
}
