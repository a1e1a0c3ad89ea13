//! Objects from the Microsoft Graph PowerShell SDK (`Get-MgDeviceManagement…`,
//! `Get-MgBetaGroup`…) written with `ConvertTo-Json`: model properties in
//! PascalCase (`DisplayName`, `Id`, `SettingInstance`), and properties the
//! model lacks, already in Graph's camelCase (`@odata.type` among them),
//! under `AdditionalProperties`. They become Graph JSON: keys camelCased,
//! `AdditionalProperties` merged into the object that holds it.

use serde_json::{Map, Value};

/// What `ConvertTo-Json` writes for an object below its `-Depth`: the
/// object's type name instead of its properties.
const CUT: &[&str] = &[
    "Microsoft.Graph.PowerShell.Models.",
    "Microsoft.Graph.Beta.PowerShell.Models.",
    "System.Collections.",
    "System.Object[]",
];

/// Whether an object looks like an SDK object: an `AdditionalProperties`
/// key, or PascalCase `Id` with `DisplayName` or `Name`.
pub fn is_sdk_object(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        o.contains_key("AdditionalProperties")
            || (o.contains_key("Id") && (o.contains_key("DisplayName") || o.contains_key("Name")))
    })
}

/// The Graph JSON of an SDK object, or why it cannot be read.
pub fn record(v: Value) -> Result<Value, String> {
    convert(v, "")
}

fn convert(v: Value, path: &str) -> Result<Value, String> {
    Ok(match v {
        Value::Object(o) => {
            let mut out = Map::with_capacity(o.len());
            let mut extra = None;
            for (k, v) in o {
                match k.as_str() {
                    "AdditionalProperties" => extra = Some(v),
                    "OdataType" => {
                        if v.is_string() {
                            out.insert("@odata.type".into(), v);
                        }
                    }
                    _ => {
                        let key = super::camel_case(&k);
                        let at = if path.is_empty() {
                            key.clone()
                        } else {
                            format!("{path}.{key}")
                        };
                        let v = convert(v, &at)?;
                        out.insert(key, v);
                    }
                }
            }
            // The model's own properties win over a same-named extra one.
            if let Some(Value::Object(extra)) = extra {
                for (k, v) in extra {
                    out.entry(k).or_insert(v);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| convert(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::String(s) if CUT.iter().any(|c| s.starts_with(c)) => {
            return Err(format!(
                "`{path}` holds '{s}', the type name ConvertTo-Json writes for an object deeper than its -Depth; export again with a larger -Depth (such as -Depth 20)"
            ));
        }
        v => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sdk_objects_become_graph_json() {
        let check = |input: Value, expect: Value| {
            assert!(is_sdk_object(&input), "{input}");
            assert_eq!(record(input).unwrap(), expect);
        };
        // Get-MgBetaDeviceManagementConfigurationPolicy -ExpandProperty Settings
        check(
            json!({"Id": "p1", "Name": "LAPS", "Platforms": "windows10", "Technologies": "mdm",
                "TemplateReference": {"TemplateFamily": "none", "TemplateId": ""},
                "Settings": [{"Id": "0", "SettingInstance": {"SettingDefinitionId": "laps_backup",
                    "SettingInstanceTemplateReference": null,
                    "AdditionalProperties": {"@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
                        "choiceSettingValue": {"value": "laps_backup_1", "children": []}}},
                    "AdditionalProperties": {}}],
                "AdditionalProperties": {}}),
            json!({"id": "p1", "name": "LAPS", "platforms": "windows10", "technologies": "mdm",
                "templateReference": {"templateFamily": "none", "templateId": ""},
                "settings": [{"id": "0", "settingInstance": {"settingDefinitionId": "laps_backup",
                    "settingInstanceTemplateReference": null,
                    "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
                    "choiceSettingValue": {"value": "laps_backup_1", "children": []}}}]}),
        );
        // Get-MgDeviceManagementDeviceConfiguration: the subtype's properties are extra.
        check(
            json!({"Id": "d1", "DisplayName": "Restrictions", "Version": 2, "Assignments": null,
                "AdditionalProperties": {"@odata.type": "#microsoft.graph.windows10GeneralConfiguration",
                    "passwordRequired": true, "displayName": "ignored"}}),
            json!({"id": "d1", "displayName": "Restrictions", "version": 2, "assignments": null,
                "@odata.type": "#microsoft.graph.windows10GeneralConfiguration", "passwordRequired": true}),
        );
        // Get-MgGroup, with the v2 SDK's OdataType property.
        check(
            json!({"Id": "g1", "DisplayName": "Sales", "GroupTypes": ["DynamicMembership"],
                "MembershipRule": "(user.department -eq \"Sales\")", "OdataType": "#microsoft.graph.group"}),
            json!({"id": "g1", "displayName": "Sales", "groupTypes": ["DynamicMembership"],
                "membershipRule": "(user.department -eq \"Sales\")", "@odata.type": "#microsoft.graph.group"}),
        );
    }

    #[test]
    fn graph_json_is_not_taken_for_sdk_objects() {
        for v in [
            json!({"id": "x", "displayName": "y"}),
            json!({"Id": "x"}),
            json!({"TemplateId": "t", "displayName": "intent"}),
            json!([1]),
        ] {
            assert!(!is_sdk_object(&v), "{v}");
        }
    }

    #[test]
    fn objects_cut_by_depth_are_refused() {
        let v = json!({"Id": "p1", "Name": "n", "Settings": [{"Id": "0",
            "SettingInstance": "Microsoft.Graph.Beta.PowerShell.Models.MicrosoftGraphDeviceManagementConfigurationSettingInstance"}]});
        let e = record(v).unwrap_err();
        assert!(
            e.starts_with(
                "`settings[0].settingInstance` holds 'Microsoft.Graph.Beta.PowerShell.Models."
            ),
            "{e}"
        );
        assert!(e.contains("-Depth"), "{e}");
    }
}
