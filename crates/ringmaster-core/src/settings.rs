//! Setting leaves: what a policy sets, each with a stable identity.
//!
//! Identity is the path of setting definition ids from the top instance
//! (`parent/child`), with group-collection members keyed (`parent[key]/child`),
//! so two policies that set the same thing meet on the same id.

use serde::Serialize;

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

/// A readable name from an id: `device_vendor_msft_laps_policies_passwordcomplexity`
/// becomes `laps › policies › passwordcomplexity`; paths keep their last two parts.
pub fn readable_name(id: &str) -> String {
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
    fn names() {
        assert_eq!(
            readable_name("device_vendor_msft_laps_policies_passwordcomplexity"),
            "laps › policies › passwordcomplexity"
        );
        assert_eq!(
            readable_name(
                "device_vendor_msft_policy_config_defender_attacksurfacereductionrules/device_vendor_msft_policy_config_defender_attacksurfacereductionrules_blockwin32apicallsfromofficemacros"
            ),
            "defender › attacksurfacereductionrules › blockwin32apicallsfromofficemacros"
        );
        assert_eq!(
            readable_name("windows10CompliancePolicy.passwordMinimumLength"),
            "windows10CompliancePolicy.passwordMinimumLength"
        );
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
