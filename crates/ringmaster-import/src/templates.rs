//! Setting leaves of template-based policies that are neither settings
//! catalog nor flat legacy objects:
//!
//! - endpoint-security intents and security baselines (`deviceManagementIntent`):
//!   `settings` or `settingsDelta` instances with a `definitionId` such as
//!   `deviceConfiguration--windowsIdentityProtectionConfiguration_pinMinimumLength`
//!   and a `value`, or only a `valueJson` string (complex settings);
//! - administrative templates (`groupPolicyConfiguration`): ADMX
//!   `definitionValues` with presentation values.

use crate::settings::scalar;
use ringmaster_core::settings::SettingLeaf;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Where a template instance's definition id comes from: an intent setting
/// `deviceConfiguration--<type>_<property>` is the legacy profile property
/// `<type>.<property>`, so both meet as one setting.
const LEGACY_PREFIX: &str = "deviceConfiguration--";

/// Every leaf of an intent's setting instances.
pub fn intent(settings: &[Value]) -> Vec<SettingLeaf> {
    // Legacy-backed settings, grouped by their legacy type so the flat
    // reader decides what "not configured" means for each, as it does for
    // the legacy profile itself.
    let mut by_type: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut out = Vec::new();
    for inst in settings {
        let Some(def) = inst.get("definitionId").and_then(Value::as_str) else {
            continue;
        };
        // Other families (`admx--microsoftedge_SmartScreenEnabled`) keep
        // their prefix and compare among intents only.
        let rest = def.strip_prefix(LEGACY_PREFIX);
        let (ty, prop) = match rest.unwrap_or(def).split_once('_') {
            Some((t, p)) if !t.is_empty() && !p.is_empty() => match rest {
                Some(_) => (t.to_string(), p),
                None => (def[..def.len() - p.len() - 1].to_string(), p),
            },
            _ => (def.to_string(), "value"),
        };
        by_type
            .entry(ty)
            .or_default()
            .insert(prop.to_string(), instance_value(inst));
    }
    for (ty, props) in &by_type {
        out.extend(crate::settings::flat(ty, props));
    }
    out
}

/// The legacy types an intent's settings belong to (for its platforms).
pub fn intent_types(settings: &[Value]) -> Vec<String> {
    let mut types: Vec<String> = settings
        .iter()
        .filter_map(|i| i.get("definitionId").and_then(Value::as_str))
        .filter_map(|d| d.strip_prefix(LEGACY_PREFIX))
        .filter_map(|r| r.split_once('_').map(|(t, _)| t.to_string()))
        .collect();
    types.sort();
    types.dedup();
    types
}

/// An instance's value: `value` when the export has it, else `valueJson`
/// decoded (complex settings carry only that), else the nested instances of
/// a complex value as an object keyed by their property names.
fn instance_value(inst: &Value) -> Value {
    match inst.get("value") {
        Some(Value::Array(items)) if items.iter().all(|i| i.get("definitionId").is_some()) => {
            let mut o = Map::new();
            for i in items {
                let Some(def) = i.get("definitionId").and_then(Value::as_str) else {
                    continue;
                };
                let prop = def.rsplit_once('_').map_or(def, |(_, p)| p);
                o.insert(prop.to_string(), instance_value(i));
            }
            Value::Object(o)
        }
        Some(v) if !v.is_null() => v.clone(),
        _ => inst
            .get("valueJson")
            .and_then(Value::as_str)
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or(Value::Null),
    }
}

/// The id inside `…/groupPolicyDefinitions('<id>')` or `…/presentations('<id>')`.
fn bound_id(bind: &str, entity: &str) -> Option<String> {
    let at = bind.rfind(&format!("{entity}('"))? + entity.len() + 2;
    let end = bind[at..].find('\'')? + at;
    Some(bind[at..end].to_ascii_lowercase())
}

/// The id an object refers to, expanded (`"definition": {"id": …}`, as Graph
/// and Microsoft365DSC write it) or bound (`"definition@odata.bind":
/// "…/groupPolicyDefinitions('<id>')"`, as it is posted), lowercased.
fn reference(v: &Value, key: &str, entity: &str) -> Option<String> {
    v.get(key)
        .and_then(|d| d.get("id"))
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .or_else(|| {
            v.get(format!("{key}@odata.bind"))
                .and_then(Value::as_str)
                .and_then(|b| bound_id(b, entity))
        })
}

fn flex_bool(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// One leaf per ADMX definition (`admx:<definition id>` = enabled or
/// disabled) and one per presentation value of an enabled definition
/// (`admx:<definition id>/<presentation id>`). Definition ids are Microsoft's
/// own, the same in every tenant, so two policies setting one ADMX setting meet.
pub fn admx(values: &[Value]) -> Vec<SettingLeaf> {
    let mut out = Vec::new();
    for dv in values {
        let def = reference(dv, "definition", "groupPolicyDefinitions");
        let Some(def) = def else { continue };
        let Some(enabled) = flex_bool(dv.get("enabled")) else {
            continue;
        };
        let id = format!("admx:{def}");
        out.push(SettingLeaf::new(
            id.clone(),
            if enabled { "enabled" } else { "disabled" }.into(),
        ));
        if !enabled {
            continue;
        }
        for pv in dv
            .get("presentationValues")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let pres = reference(pv, "presentation", "presentations");
            let Some(pres) = pres else { continue };
            let Some(value) = presentation_value(pv) else {
                continue;
            };
            out.push(SettingLeaf::new(format!("{id}/{pres}"), value));
        }
    }
    out
}

/// A presentation's value as text: text, decimal, boolean, or a list
/// (`values`, name/value pairs) sorted so order never differs.
fn presentation_value(pv: &Value) -> Option<String> {
    if let Some(items) = pv.get("values").and_then(Value::as_array) {
        let mut v: Vec<String> = items
            .iter()
            .filter_map(|i| match i {
                Value::Object(o) => {
                    let name = o.get("name").and_then(scalar);
                    let value = o.get("value").and_then(scalar);
                    match (name, value) {
                        (Some(n), Some(v)) if !v.is_empty() => Some(format!("{n}={v}")),
                        (Some(n), _) => Some(n),
                        (None, v) => v,
                    }
                }
                other => scalar(other),
            })
            .collect();
        v.sort();
        return Some(v.join("; "));
    }
    pv.get("value").and_then(scalar)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn leaves(l: &[SettingLeaf]) -> Vec<(&str, &str)> {
        l.iter()
            .map(|l| (l.id.as_str(), l.value.as_str()))
            .collect()
    }

    #[test]
    fn intent_settings_meet_legacy_properties() {
        let s = json!([
            {"definitionId": "deviceConfiguration--windowsIdentityProtectionConfiguration_pinMinimumLength", "valueJson": "6", "value": 6},
            {"definitionId": "deviceConfiguration--windowsIdentityProtectionConfiguration_pinMaximumLength", "valueJson": "null", "value": null},
            {"definitionId": "deviceConfiguration--windowsIdentityProtectionConfiguration_pinLowercaseCharactersUsage", "valueJson": "\"notConfigured\"", "value": "notConfigured"},
            {"definitionId": "deviceConfiguration--windows10EndpointProtectionConfiguration_bitLockerEncryptDevice", "valueJson": "true"},
        ]);
        let got = intent(s.as_array().unwrap());
        assert_eq!(
            leaves(&got),
            vec![
                (
                    "windows10EndpointProtectionConfiguration.bitLockerEncryptDevice",
                    "true"
                ),
                (
                    "windowsIdentityProtectionConfiguration.pinMinimumLength",
                    "6"
                ),
            ]
        );
        assert_eq!(
            intent_types(s.as_array().unwrap()),
            vec![
                "windows10EndpointProtectionConfiguration",
                "windowsIdentityProtectionConfiguration"
            ]
        );
    }

    #[test]
    fn complex_values_from_value_json_and_nested_instances() {
        let s = json!([
            {"@odata.type": "#microsoft.graph.deviceManagementComplexSettingInstance",
             "definitionId": "deviceConfiguration--windows10EndpointProtectionConfiguration_bitLockerSystemDrivePolicy",
             "valueJson": "{\"encryptionMethod\":\"xtsAes128\",\"minimumPinLength\":null}"},
            {"@odata.type": "#microsoft.graph.deviceManagementComplexSettingInstance",
             "definitionId": "deviceConfiguration--windows10EndpointProtectionConfiguration_bitLockerFixedDrivePolicy",
             "value": [{"definitionId": "deviceConfiguration--bitLockerFixedDrivePolicy_encryptionMethod", "value": "xtsAes256"}]},
        ]);
        let got = intent(s.as_array().unwrap());
        let ids: Vec<&str> = got.iter().map(|l| l.id.as_str()).collect();
        assert!(
            ids.iter()
                .all(|i| i.starts_with("windows10EndpointProtectionConfiguration.bitLocker")),
            "{ids:?}"
        );
    }

    #[test]
    fn admx_definitions_and_presentations() {
        let v = json!([
            {"enabled": "true", "definition@odata.bind": "https://graph.microsoft.com/beta/deviceManagement/groupPolicyDefinitions('AB-1')",
             "presentationValues": [{"@odata.type": "#microsoft.graph.groupPolicyPresentationValueText", "value": "2",
               "presentation@odata.bind": "https://graph.microsoft.com/beta/deviceManagement/groupPolicyDefinitions('ab-1')/presentations('P-9')"}]},
            {"enabled": false, "definition": {"id": "cd-2", "displayName": "Block it"}},
            {"enabled": true, "definition": {"id": "ef-3"}, "presentationValues": [
                {"values": [{"name": "b", "value": "2"}, {"name": "a", "value": "1"}], "presentation": {"id": "p-1"}}]},
        ]);
        assert_eq!(
            leaves(&admx(v.as_array().unwrap())),
            vec![
                ("admx:ab-1", "enabled"),
                ("admx:ab-1/p-9", "2"),
                ("admx:cd-2", "disabled"),
                ("admx:ef-3", "enabled"),
                ("admx:ef-3/p-1", "a=1; b=2"),
            ]
        );
    }
}
