//! Setting leaves from exported policies: settings-catalog instances (choice
//! values with children, simple values, collections, group collections),
//! flat properties of legacy profiles and compliance policies, and custom
//! OMA-URI settings.

use ringmaster_core::settings::{LeafKind, SettingLeaf, merges};
use serde_json::{Map, Value};

/// Keys of legacy objects that describe the object rather than configure a device.
const METADATA: &[&str] = &[
    "id",
    "displayName",
    "description",
    "version",
    "createdDateTime",
    "lastModifiedDateTime",
    "roleScopeTagIds",
    "supportsScopeTags",
    "assignments",
    "scheduledActionsForRule",
    "deviceStatusOverview",
    "userStatusOverview",
    "deviceSettingStateSummaries",
    "name",
    "platforms",
    "technologies",
    "settingCount",
    "templateReference",
    "creationSource",
    "priorityMetaData",
    "isAssigned",
    "omaSettings",
    "settings",
    "validOperatingSystemBuildRanges",
    "deviceManagementApplicabilityRuleOsEdition",
    "deviceManagementApplicabilityRuleOsVersion",
    "deviceManagementApplicabilityRuleDeviceMode",
];

/// Every leaf of a settings-catalog `settings` array.
pub fn catalog(settings: &[Value]) -> Vec<SettingLeaf> {
    let mut out = Vec::new();
    for s in settings {
        if let Some(inst) = s.get("settingInstance") {
            instance(inst, "", &mut out);
        }
    }
    out
}

fn definition(inst: &Value) -> Option<&str> {
    inst.get("settingDefinitionId").and_then(Value::as_str)
}

/// The option part of a choice value: `…_passwordcomplexity_5` → `5`.
fn option<'a>(id: &str, value: &'a str) -> &'a str {
    value
        .strip_prefix(id)
        .map(|r| r.trim_start_matches('_'))
        .filter(|r| !r.is_empty())
        .unwrap_or(value)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn push(out: &mut Vec<SettingLeaf>, id: String, value: String) {
    let kind = if merges(&id) {
        LeafKind::Merge
    } else {
        LeafKind::Value
    };
    out.push(SettingLeaf { id, value, kind });
}

fn instance(inst: &Value, parent: &str, out: &mut Vec<SettingLeaf>) {
    let Some(def) = definition(inst) else { return };
    let path = if parent.is_empty() {
        def.to_string()
    } else {
        format!("{parent}/{def}")
    };
    if let Some(choice) = inst.get("choiceSettingValue") {
        let value = choice.get("value").and_then(Value::as_str).unwrap_or("");
        push(out, path.clone(), option(def, value).to_string());
        for c in choice
            .get("children")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            instance(c, &path, out);
        }
    } else if let Some(simple) = inst.get("simpleSettingValue") {
        if let Some(v) = simple.get("value").and_then(scalar) {
            push(out, path, v);
        }
    } else if let Some(items) = inst
        .get("simpleSettingCollectionValue")
        .and_then(Value::as_array)
    {
        let mut v: Vec<String> = items
            .iter()
            .filter_map(|i| i.get("value").and_then(scalar))
            .collect();
        v.sort();
        push(out, path, v.join("; "));
    } else if let Some(items) = inst
        .get("choiceSettingCollectionValue")
        .and_then(Value::as_array)
    {
        let mut v: Vec<String> = items
            .iter()
            .filter_map(|i| i.get("value").and_then(Value::as_str))
            .map(|s| option(def, s).to_string())
            .collect();
        v.sort();
        push(out, path, v.join("; "));
    } else if let Some(members) = inst
        .get("groupSettingCollectionValue")
        .and_then(Value::as_array)
    {
        let many = members.len() > 1;
        for (i, m) in members.iter().enumerate() {
            let children = m
                .get("children")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let key = member_key(children).or_else(|| many.then(|| i.to_string()));
            let member = match key {
                Some(k) => format!("{path}[{k}]"),
                None => path.clone(),
            };
            for c in children {
                instance(c, &member, out);
            }
        }
    } else if let Some(group) = inst.get("groupSettingValue") {
        for c in group
            .get("children")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            instance(c, &path, out);
        }
    }
}

/// A collection member's own name or id, when a child carries one (firewall
/// rule names, device-control group ids), so members match across policies
/// whatever their order.
fn member_key(children: &[Value]) -> Option<String> {
    children.iter().find_map(|c| {
        let def = definition(c)?.to_ascii_lowercase();
        let named = ["_name", "_id", "_groupid", "_ruleid", "_displayname"]
            .iter()
            .any(|s| def.ends_with(s));
        if !named {
            return None;
        }
        c.get("simpleSettingValue")
            .and_then(|v| v.get("value"))
            .and_then(scalar)
    })
}

/// Flat properties of a legacy profile, compliance policy or update ring,
/// keyed by type so policies of one type compare; custom OMA-URI settings by URI.
pub fn flat(odata_type: &str, props: &Map<String, Value>) -> Vec<SettingLeaf> {
    let mut out = Vec::new();
    for (k, v) in props {
        if k.starts_with('@') || k.contains("@odata") || METADATA.contains(&k.as_str()) {
            continue;
        }
        // Legacy schemas list every property: false, notConfigured and
        // userDefined are how they say "Not configured", which never conflicts.
        let value = match v {
            Value::Null | Value::Bool(false) => continue,
            Value::String(s)
                if s.eq_ignore_ascii_case("notConfigured")
                    || s.eq_ignore_ascii_case("userDefined") =>
            {
                continue;
            }
            Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
                let mut s: Vec<String> = items.iter().filter_map(scalar).collect();
                s.sort();
                s.join("; ")
            }
            other => match scalar(other) {
                Some(s) => s,
                None => continue,
            },
        };
        push(&mut out, format!("{odata_type}.{k}"), value);
    }
    for s in props
        .get("omaSettings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(uri) = s.get("omaUri").and_then(Value::as_str) else {
            continue;
        };
        let value = s.get("value").and_then(scalar).unwrap_or_default();
        out.push(SettingLeaf {
            id: format!("omauri:{}", uri.trim().to_ascii_lowercase()),
            value,
            kind: LeafKind::Unverifiable,
        });
    }
    // Apple custom configuration profiles: keyed by their payload name.
    if let Some(name) = props
        .get("payloadName")
        .and_then(Value::as_str)
        .or_else(|| props.get("payloadFileName").and_then(Value::as_str))
    {
        out.retain(|l| {
            !l.id.ends_with(".payload")
                && !l.id.ends_with(".payloadName")
                && !l.id.ends_with(".payloadFileName")
        });
        let value = props.get("payload").and_then(scalar).unwrap_or_default();
        out.push(SettingLeaf {
            id: format!("applepayload:{}", name.trim().to_ascii_lowercase()),
            value,
            kind: LeafKind::Unverifiable,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn catalog_paths_and_values() {
        let settings = json!([
            {"settingInstance": {"settingDefinitionId": "a_laps", "choiceSettingValue": {"value": "a_laps_5", "children": [
                {"settingDefinitionId": "a_laps_len", "simpleSettingValue": {"value": 21}}]}}},
            {"settingInstance": {"settingDefinitionId": "asr", "groupSettingCollectionValue": [{"children": [
                {"settingDefinitionId": "asr_rule1", "choiceSettingValue": {"value": "asr_rule1_block", "children": []}}]}]}},
            {"settingInstance": {"settingDefinitionId": "fw", "groupSettingCollectionValue": [
                {"children": [{"settingDefinitionId": "fw_name", "simpleSettingValue": {"value": "SSH"}}, {"settingDefinitionId": "fw_action", "simpleSettingValue": {"value": "allow"}}]},
                {"children": [{"settingDefinitionId": "fw_name", "simpleSettingValue": {"value": "RDP"}}]}]}},
            {"settingInstance": {"settingDefinitionId": "x_defender_excludedpaths", "simpleSettingCollectionValue": [{"value": "c:\\b"}, {"value": "c:\\a"}]}}
        ]);
        let leaves = catalog(settings.as_array().unwrap());
        let got: Vec<(&str, &str, LeafKind)> = leaves
            .iter()
            .map(|l| (l.id.as_str(), l.value.as_str(), l.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a_laps", "5", LeafKind::Value),
                ("a_laps/a_laps_len", "21", LeafKind::Value),
                ("asr/asr_rule1", "block", LeafKind::Value),
                ("fw[SSH]/fw_name", "SSH", LeafKind::Value),
                ("fw[SSH]/fw_action", "allow", LeafKind::Value),
                ("fw[RDP]/fw_name", "RDP", LeafKind::Value),
                ("x_defender_excludedpaths", "c:\\a; c:\\b", LeafKind::Merge),
            ]
        );
    }

    #[test]
    fn flat_properties_and_oma_uris() {
        let o = json!({"id": "x", "displayName": "d", "passwordMinimumLength": 8, "bitLockerEnabled": true, "osMinimumVersion": null,
            "tpmRequired": false, "passwordRequiredType": "notConfigured",
            "omaSettings": [{"omaUri": "./Device/Vendor/MSFT/Policy/Config/X", "value": 1}]});
        let leaves = flat("windows10CompliancePolicy", o.as_object().unwrap());
        let ids: Vec<&str> = leaves.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "windows10CompliancePolicy.bitLockerEnabled",
                "windows10CompliancePolicy.passwordMinimumLength",
                "omauri:./device/vendor/msft/policy/config/x"
            ]
        );
        assert_eq!(leaves[2].kind, LeafKind::Unverifiable);
    }
}
