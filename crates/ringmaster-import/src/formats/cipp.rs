//! CIPP Intune templates: `{Displayname, Description, RAWJson, Type, GUID}`,
//! where `RAWJson` is the Graph body as a JSON string and `Type` says which
//! endpoint it is posted to.
//!
//! - `Catalog`: a settings-catalog policy (`name` from `Displayname` when
//!   the body has none).
//! - `Admin`: ADMX definition values, `{"added": [...]}`, made into a
//!   `groupPolicyConfiguration` with those `definitionValues`.
//! - any other `Type` whose body has its own `@odata.type` (`Device`,
//!   compliance, update profiles…): that body.
//! - anything else is passed over with a note.
//!
//! The id is the template's GUID, since the bodies carry none or a zero id.

use serde_json::{Map, Value, json};

/// Whether an object is a CIPP template (it has a `RAWJson` string).
pub fn is_template(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        o.iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("rawjson") && v.is_string())
    })
}

/// The Graph record of a template: `Err` for a broken template, `Ok(Err)`
/// with the reason for one ringmaster passes over.
pub fn record(v: Value) -> Result<Result<Value, String>, String> {
    let Value::Object(o) = v else {
        return Err("expected a CIPP template object".into());
    };
    let field = |name: &str| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let name = field("Displayname");
    let ty = field("Type").unwrap_or("");
    let guid = field("GUID").map(|g| {
        // CIPP stores the file name here: `<guid>.IntuneTemplate.json`.
        g.split('.').next().unwrap_or(g).to_string()
    });
    let raw = field("RAWJson").unwrap_or("");
    let body: Value = serde_json::from_str(raw).map_err(|e| {
        format!(
            "RAWJson is not valid JSON (line {}, column {} of the string): {e}",
            e.line(),
            e.column()
        )
    })?;
    let Value::Object(mut body) = body else {
        return Err("RAWJson does not hold a JSON object".into());
    };
    let what = name.unwrap_or("a template with no Displayname");
    let mut rec = match ty.to_ascii_lowercase().as_str() {
        "catalog" => {
            body.insert(
                "@odata.type".into(),
                json!("#microsoft.graph.deviceManagementConfigurationPolicy"),
            );
            fill(&mut body, "name", name);
            body
        }
        "admin" => {
            let Some(added) = body.remove("added").filter(Value::is_array) else {
                return Err("an Admin template's RAWJson needs an `added` array".into());
            };
            let mut rec = Map::new();
            rec.insert(
                "@odata.type".into(),
                json!("#microsoft.graph.groupPolicyConfiguration"),
            );
            fill(&mut rec, "displayName", name);
            rec.insert("definitionValues".into(), added);
            rec
        }
        _ if body.get("@odata.type").is_some_and(Value::is_string) => {
            fill(&mut body, "displayName", name);
            body
        }
        "" => return Ok(Err(format!("CIPP template '{what}' has no Type"))),
        _ => {
            return Ok(Err(format!(
                "CIPP template '{what}' of Type '{ty}', whose RAWJson has no @odata.type, is not read"
            )));
        }
    };
    fill(&mut rec, "description", field("Description"));
    if let Some(g) = guid {
        let zero = rec
            .get("id")
            .and_then(Value::as_str)
            .is_none_or(super::placeholder_id);
        if zero {
            rec.insert("id".into(), Value::String(g));
        }
    }
    Ok(Ok(Value::Object(rec)))
}

/// Sets `key` when the body has no non-empty value for it.
fn fill(o: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    let empty = o
        .get(key)
        .and_then(Value::as_str)
        .is_none_or(|s| s.trim().is_empty());
    if let (true, Some(v)) = (empty, value) {
        o.insert(key.into(), Value::String(v.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(ty: &str, raw: Value) -> Value {
        json!({"Displayname": "CIPP: T", "Description": "d", "Type": ty,
            "GUID": "4d9206b0-0000-4000-8000-000000000001.IntuneTemplate.json",
            "RAWJson": raw.to_string()})
    }

    #[test]
    fn each_type_becomes_its_graph_record() {
        let check = |input: Value, expect: Value| {
            assert!(is_template(&input));
            assert_eq!(record(input).unwrap().unwrap(), expect);
        };
        let id = "4d9206b0-0000-4000-8000-000000000001";
        check(
            template("Catalog", json!({"platforms": "windows10", "settings": []})),
            json!({"@odata.type": "#microsoft.graph.deviceManagementConfigurationPolicy", "name": "CIPP: T",
                "description": "d", "id": id, "platforms": "windows10", "settings": []}),
        );
        check(
            template(
                "Catalog",
                json!({"name": "Own name", "description": "own", "settings": []}),
            ),
            json!({"@odata.type": "#microsoft.graph.deviceManagementConfigurationPolicy", "name": "Own name",
                "description": "own", "id": id, "settings": []}),
        );
        check(
            template(
                "Device",
                json!({"id": "00000000-0000-0000-0000-000000000000", "displayName": "Body",
                "@odata.type": "#microsoft.graph.windows10CustomConfiguration", "omaSettings": []}),
            ),
            json!({"@odata.type": "#microsoft.graph.windows10CustomConfiguration", "displayName": "Body",
                "description": "d", "id": id, "omaSettings": []}),
        );
        check(
            template(
                "Admin",
                json!({"added": [{"enabled": true, "presentationValues": [],
                "definition@odata.bind": "https://graph.microsoft.com/beta/deviceManagement/groupPolicyDefinitions('x')"}]}),
            ),
            json!({"@odata.type": "#microsoft.graph.groupPolicyConfiguration", "displayName": "CIPP: T",
                "description": "d", "id": id, "definitionValues": [{"enabled": true, "presentationValues": [],
                "definition@odata.bind": "https://graph.microsoft.com/beta/deviceManagement/groupPolicyDefinitions('x')"}]}),
        );
        // CRLF-formatted bodies parse like any JSON.
        let mut t = template("Catalog", json!({}));
        t["RAWJson"] = json!("{\r\n  \"name\": \"LAPS\",\r\n  \"settings\": []\r\n}");
        assert_eq!(record(t).unwrap().unwrap()["name"], "LAPS");
    }

    #[test]
    fn passed_over_or_refused() {
        let skip =
            |input: Value, expect: &str| assert_eq!(record(input).unwrap().unwrap_err(), expect);
        skip(
            template("AppProtection", json!({"displayName": "x"})),
            "CIPP template 'CIPP: T' of Type 'AppProtection', whose RAWJson has no @odata.type, is not read",
        );
        let refuse = |input: Value, expect: &str| {
            let e = record(input).unwrap_err();
            assert!(e.contains(expect), "{e}");
        };
        let mut bad = template("Catalog", json!({}));
        bad["RAWJson"] = json!("{\"name\": ");
        refuse(bad, "RAWJson is not valid JSON (line 1, column 8");
        refuse(
            template("Admin", json!({"removed": []})),
            "needs an `added` array",
        );
        refuse(
            template("Catalog", json!([1])),
            "does not hold a JSON object",
        );
        assert!(!is_template(&json!({"displayName": "x"})));
    }
}
