//! Setting leaves from exported policies: settings-catalog instances (choice
//! values with children, simple values, collections, group collections),
//! flat properties of legacy profiles and compliance policies, and custom
//! OMA-URI settings.

use crate::graph_defaults::{self, Kind, Prop, Schema};
use crate::identity;
use ringmaster_core::settings::{LeafKind, SettingLeaf};
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
/// Ids compare without case: exports spell one id `com.apple.screensaver_askForPassword`
/// and `com.apple.screensaver_askforpassword`.
fn option<'a>(id: &str, value: &'a str) -> &'a str {
    value
        .get(..id.len())
        .filter(|head| head.eq_ignore_ascii_case(id))
        .map(|_| value[id.len()..].trim_start_matches('_'))
        .filter(|r| !r.is_empty())
        .unwrap_or(value)
}

/// A JSON scalar as text; `None` for null, arrays and objects.
pub(crate) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn push(out: &mut Vec<SettingLeaf>, id: String, value: String) {
    out.push(SettingLeaf::new(id, value));
}

fn instance(inst: &Value, parent: &str, out: &mut Vec<SettingLeaf>) {
    let Some(def) = definition(inst) else { return };
    let path = if parent.is_empty() {
        def.to_ascii_lowercase()
    } else {
        format!("{parent}/{}", def.to_ascii_lowercase())
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
        collection(def, &path, members, out);
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

/// Endings of the child that names a group-collection member, most telling
/// first, as the catalog spells them: ADMX key/value lists (hardened UNC
/// paths, OneDrive lists) `_key`, Defender for macOS `_item_key`; firewall
/// rules `_name`; device-control groups `_groupid`; Apple TCC services
/// `_item_identifier`, notification settings `_item_bundleidentifier`;
/// system extensions `_generickey`.
const MEMBER_KEYS: &[&str] = &[
    "_key",
    "_name",
    "_displayname",
    "_valuename",
    "_id",
    "_groupid",
    "_ruleid",
    "identifier",
    "_path",
    "_generickey",
    // macOS app lists (firewall applications, login items) name apps by bundle id.
    "_bundleid",
];

fn children(member: &Value) -> &[Value] {
    member
        .get("children")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn simple(child: &Value) -> Option<String> {
    child
        .get("simpleSettingValue")
        .and_then(|v| v.get("value"))
        .and_then(scalar)
}

/// Each member's name: the value of one child definition that every member
/// has and no two members share (firewall rule names, UNC paths), so members
/// match across policies whatever their order.
fn member_keys(members: &[Value]) -> Option<Vec<String>> {
    let first = children(members.first()?);
    MEMBER_KEYS.iter().find_map(|ending| {
        first
            .iter()
            .filter_map(definition)
            .filter(|d| d.to_ascii_lowercase().ends_with(ending))
            .find_map(|d| {
                let keys: Option<Vec<String>> = members
                    .iter()
                    .map(|m| {
                        children(m)
                            .iter()
                            .find(|c| definition(c) == Some(d))
                            .and_then(simple)
                    })
                    .collect();
                let keys = keys?;
                let mut seen: Vec<&String> = keys.iter().collect();
                seen.sort();
                seen.dedup();
                (seen.len() == keys.len()).then_some(keys)
            })
    })
}

/// A group collection: named members become `path[name]/child` leaves; a
/// lone unnamed member is a group (its children are leaves under `path`);
/// several unnamed members are one set, compared whatever their order.
fn collection(def: &str, path: &str, members: &[Value], out: &mut Vec<SettingLeaf>) {
    if let Some(keys) = member_keys(members) {
        for (m, k) in members.iter().zip(keys) {
            let member = format!("{path}[{k}]");
            for c in children(m) {
                instance(c, &member, out);
            }
        }
        return;
    }
    if let [one] = members {
        for c in children(one) {
            instance(c, path, out);
        }
        return;
    }
    let mut rendered: Vec<String> = members
        .iter()
        .filter_map(|m| {
            let mut leaves = Vec::new();
            for c in children(m) {
                instance(c, "", &mut leaves);
            }
            // Children repeat the collection's id: show what they add.
            let parts: Vec<String> = leaves
                .iter()
                .map(|l| {
                    let own: Vec<&str> =
                        l.id.split('/')
                            .map(|p| p.strip_prefix(def).unwrap_or(p).trim_start_matches('_'))
                            .collect();
                    format!("{}={}", own.join("/"), l.value)
                })
                .collect();
            (!parts.is_empty()).then(|| format!("{{{}}}", parts.join(", ")))
        })
        .collect();
    if rendered.is_empty() {
        return;
    }
    rendered.sort();
    rendered.dedup();
    push(out, path.to_string(), rendered.join("; "));
}

/// Names every Graph enum that has them uses for "not configured" (see
/// `scripts/graph-defaults.py`).
const UNSET_NAMES: &[&str] = &[
    "notConfigured",
    "notSet",
    "userDefined",
    "deviceDefault",
    "browserDefault",
];

/// Flat properties of a legacy profile, compliance policy or update ring,
/// keyed by type so policies of one type compare; custom OMA-URI settings by
/// URI. Where a URI or a property's value writes a settings-catalog setting
/// (`identity`), the leaf takes the catalog id and keeps the written form.
///
/// Legacy schemas list every property, configured or not: null, false, an
/// empty list or string, and the enum members the schema table
/// (`graph_defaults`) marks "not configured" are no value. Nested objects
/// become `<type>.<property>.<sub>` leaves by the same rules.
pub fn flat(odata_type: &str, props: &Map<String, Value>) -> Vec<SettingLeaf> {
    let schema = graph_defaults::schema();
    let odata_type = graph_defaults::type_name(odata_type);
    let mut out = Vec::new();
    for (k, v) in props {
        if METADATA.contains(&k.as_str()) {
            continue;
        }
        property(
            schema,
            odata_type,
            k,
            format!("{odata_type}.{k}"),
            v,
            &mut out,
        );
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
        let written = format!("omauri:{}", uri.trim().to_ascii_lowercase());
        // Keyed by the catalog id where the catalog defines the path, so it
        // meets the catalog and legacy forms of the setting.
        let (id, written_as) = match identity::oma_catalog_id(uri) {
            Some(catalog) => (catalog, Some(written)),
            None => (written, None),
        };
        out.push(SettingLeaf {
            kind: LeafKind::Unverifiable,
            written_as,
            ..SettingLeaf::new(id, value)
        });
    }
    for l in &mut out {
        if let Some((catalog, option)) = identity::legacy_catalog(&l.id, &l.value) {
            l.written_as = Some(format!("{}={}", l.id, l.value));
            l.id = catalog.to_string();
            l.value = option.to_string();
        }
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
            kind: LeafKind::Unverifiable,
            ..SettingLeaf::new(
                format!("applepayload:{}", name.trim().to_ascii_lowercase()),
                value,
            )
        });
    }
    out
}

/// Keys that annotate rather than configure: `@odata.type`, `x@odata.type`,
/// action stubs (`#microsoft.graph.assign`).
fn annotation(key: &str) -> bool {
    key.starts_with('@') || key.starts_with('#') || key.contains("@odata")
}

/// The leaves of one property of `owner` (a type name): none when it holds
/// "not configured", one for a value or a list, several for an object.
fn property(
    schema: &Schema,
    owner: &str,
    name: &str,
    id: String,
    v: &Value,
    out: &mut Vec<SettingLeaf>,
) {
    if annotation(name) {
        return;
    }
    let prop = schema.prop(owner, name);
    let kind = prop.map(|p| &p.kind);
    match v {
        _ if kind == Some(&Kind::Entity) => {}
        Value::Object(o) => {
            let declared = match kind {
                Some(Kind::Complex(t)) => Some(*t),
                _ => None,
            };
            object(schema, declared, &id, o, out);
        }
        Value::Array(items) => {
            let inner = match kind {
                Some(Kind::List(k)) => Some(&**k),
                _ => None,
            };
            let mut members: Vec<String> = items
                .iter()
                .filter_map(|i| member(schema, inner, i))
                .collect();
            if members.is_empty() {
                return;
            }
            // A list compares as a set: order carries no meaning in these schemas.
            members.sort();
            members.dedup();
            push(out, id, members.join("; "));
        }
        v => {
            if let Some((value, why)) = judge(schema, name, prop, v) {
                out.push(SettingLeaf {
                    maybe_default: why,
                    ..SettingLeaf::new(id, value)
                });
            }
        }
    }
}

/// A complex value's leaves under `prefix`, its type taken from its own
/// `@odata.type` (a subtype) or else from the property's declared type.
fn object(
    schema: &Schema,
    declared: Option<&str>,
    prefix: &str,
    o: &Map<String, Value>,
    out: &mut Vec<SettingLeaf>,
) {
    let own = o
        .get("@odata.type")
        .and_then(Value::as_str)
        .map(graph_defaults::type_name)
        .filter(|t| schema.has_type(t));
    let owner = own.or(declared).unwrap_or("");
    for (k, v) in o {
        let id = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        property(schema, owner, k, id, v, out);
    }
}

/// One list member as text, or `None` when it says "not configured": an
/// object renders as `{sub=value, …}` of its configured parts.
fn member(schema: &Schema, kind: Option<&Kind>, item: &Value) -> Option<String> {
    match item {
        Value::Object(o) => {
            let declared = match kind {
                Some(Kind::Complex(t)) => Some(*t),
                _ => None,
            };
            let mut parts = Vec::new();
            object(schema, declared, "", o, &mut parts);
            if parts.is_empty() {
                return None;
            }
            parts.sort_by(|a, b| a.id.cmp(&b.id));
            let inner: Vec<String> = parts
                .iter()
                .map(|l| format!("{}={}", l.id, l.value))
                .collect();
            Some(format!("{{{}}}", inner.join(", ")))
        }
        Value::Array(_) => None,
        v => {
            let prop = kind.map(|k| Prop {
                kind: k.clone(),
                nullable: true,
                default: None,
            });
            judge(schema, "", prop.as_ref(), v).map(|(value, _)| value)
        }
    }
}

/// A scalar's text, and why it may be Graph's value for "not configured";
/// `None` when it certainly is.
fn judge(
    schema: &Schema,
    name: &str,
    prop: Option<&Prop>,
    v: &Value,
) -> Option<(String, Option<String>)> {
    let described = |value: &str| {
        format!(
            "`{value}` is the default named in Graph's description of {name}, so the setting may have been left unconfigured"
        )
    };
    match v {
        Value::Null | Value::Bool(false) => None,
        Value::Bool(true) => Some(("true".into(), None)),
        Value::Number(n) => {
            let text = n.to_string();
            let default = prop
                .and_then(|p| p.default)
                .and_then(|d| d.parse::<f64>().ok());
            let why = (default.is_some() && default == n.as_f64()).then(|| described(&text));
            Some((text, why))
        }
        Value::String(s) => {
            let s = s.trim();
            // The names mean "not configured" in every enum that has them,
            // and say so too where the table does not know the property;
            // year 1 is the date a non-nullable date reads when never set.
            if s.is_empty()
                || UNSET_NAMES.iter().any(|u| u.eq_ignore_ascii_case(s))
                || s.starts_with("0001-01-01T00:00:00")
            {
                return None;
            }
            let e = match prop.map(|p| (&p.kind, p)) {
                Some((Kind::Enum(e), p)) => schema.enumeration(e).map(|en| (*e, en, p)),
                _ => None,
            };
            let Some((e, en, p)) = e else {
                return Some((s.to_string(), None));
            };
            if en.flags {
                let mut set: Vec<&str> = s
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty() && !en.is_unset(m))
                    .collect();
                if set.is_empty() {
                    return None;
                }
                set.sort_unstable();
                return Some((set.join(","), None));
            }
            if en.is_unset(s) {
                return None;
            }
            // A non-nullable enum nobody set reads as its first member (value
            // 0), even where a "not configured" member comes later: real
            // exports show `blocked` for configurationUsage properties of a
            // profile that leaves them alone.
            let first = en.first.filter(|f| !en.is_unset(f));
            let why = if !p.nullable && first.is_some_and(|f| f.eq_ignore_ascii_case(s)) {
                Some(format!(
                    "`{s}` is the first member of enum {e}, which Graph returns when the setting is not configured"
                ))
            } else if en.unset.is_empty() && p.default.is_some_and(|d| d.eq_ignore_ascii_case(s)) {
                // Where the enum has a "not configured" member, a named
                // default is a choice like any other.
                Some(described(s))
            } else {
                None
            };
            Some((s.to_string(), why))
        }
        Value::Array(_) | Value::Object(_) => None,
    }
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
            "tpmRequired": false, "passwordRequiredType": "notConfigured", "#microsoft.graph.assign": {"title": "assign"},
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

    #[test]
    fn oma_uris_and_legacy_properties_take_the_catalog_id_they_write() {
        // (record of a legacy or custom profile; its leaves as id, value,
        // written form, custom); the catalog ids come from the catalog
        // definitions export, the legacy rows from legacy_catalog.txt.
        let check = |odata: &str, record: Value, want: &[(&str, &str, Option<&str>, bool)]| {
            let leaves = flat(odata, record.as_object().unwrap());
            let got: Vec<(&str, &str, Option<&str>, bool)> = leaves
                .iter()
                .map(|l| {
                    (
                        l.id.as_str(),
                        l.value.as_str(),
                        l.written_as.as_deref(),
                        l.kind == LeafKind::Unverifiable,
                    )
                })
                .collect();
            assert_eq!(got, want, "{record}");
        };
        check(
            "#microsoft.graph.windows10CustomConfiguration",
            json!({"omaSettings": [
                {"omaUri": "./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera", "value": 0},
                {"omaUri": "./User/Vendor/MSFT/Policy/Config/Browser/ProvisionFavorites", "value": "x"},
                {"omaUri": "./Device/Vendor/MSFT/Policy/Config/Contoso/Unknown", "value": true}
            ]}),
            &[
                (
                    "device_vendor_msft_policy_config_camera_allowcamera",
                    "0",
                    Some("omauri:./device/vendor/msft/policy/config/camera/allowcamera"),
                    true,
                ),
                (
                    "user_vendor_msft_policy_config_browser_provisionfavorites",
                    "x",
                    Some("omauri:./user/vendor/msft/policy/config/browser/provisionfavorites"),
                    true,
                ),
                (
                    "omauri:./device/vendor/msft/policy/config/contoso/unknown",
                    "true",
                    None,
                    true,
                ),
            ],
        );
        // memdocs device-restrictions-windows-10.md, Bluetooth and General:
        // "Block" writes the CSP's 0, "Allow" its 1; false is not configured.
        check(
            "#microsoft.graph.windows10GeneralConfiguration",
            json!({"bluetoothBlockDiscoverableMode": true, "gameDvrBlocked": false,
                   "sharedUserAppDataAllowed": true, "cameraBlocked": true,
                   "copyPasteBlocked": true}),
            &[
                (
                    "device_vendor_msft_policy_config_bluetooth_allowdiscoverablemode",
                    "0",
                    Some("windows10GeneralConfiguration.bluetoothBlockDiscoverableMode=true"),
                    false,
                ),
                (
                    "device_vendor_msft_policy_config_camera_allowcamera",
                    "0",
                    Some("windows10GeneralConfiguration.cameraBlocked=true"),
                    false,
                ),
                // No source names the CSP node this one writes: it stays legacy.
                (
                    "windows10GeneralConfiguration.copyPasteBlocked",
                    "true",
                    None,
                    false,
                ),
                (
                    "device_vendor_msft_policy_config_applicationmanagement_allowshareduserappdata",
                    "1",
                    Some("windows10GeneralConfiguration.sharedUserAppDataAllowed=true"),
                    false,
                ),
            ],
        );
    }

    /// The leaves of one legacy record: (id without the type, value, whether
    /// the value may be Graph's "not configured").
    fn legacy(odata_type: &str, record: Value) -> Vec<(String, String, bool)> {
        let prefix = format!("{odata_type}.");
        flat(odata_type, record.as_object().unwrap())
            .into_iter()
            .map(|l| {
                let id = l.id.strip_prefix(&prefix).unwrap_or(&l.id).to_string();
                (id, l.value, l.maybe_default.is_some())
            })
            .collect()
    }

    #[test]
    fn legacy_values_are_told_from_not_configured_by_the_schema() {
        let ep = "windows10EndpointProtectionConfiguration";
        let general = "windows10GeneralConfiguration";
        let win = "windows10CompliancePolicy";
        let android = "androidDeviceOwnerCompliancePolicy";
        // (type, one record's properties, the leaves it gives)
        type Case<'a> = (&'a str, Value, Vec<(&'a str, &'a str, bool)>);
        let cases: Vec<Case<'_>> = vec![
            // The zeroth member of an enum without a "not configured" member
            // may be Graph's default; another member is a choice.
            (
                ep,
                json!({"lanManagerAuthenticationLevel": "lmAndNltm"}),
                vec![("lanManagerAuthenticationLevel", "lmAndNltm", true)],
            ),
            (
                ep,
                json!({"lanManagerAuthenticationLevel": "lmNtlmV2AndNotLmOrNtm"}),
                vec![(
                    "lanManagerAuthenticationLevel",
                    "lmNtlmV2AndNotLmOrNtm",
                    false,
                )],
            ),
            // Xbox service startup: manual is first and the named default.
            (
                ep,
                json!({"xboxServicesLiveAuthManagerServiceStartupMode": "manual",
                        "xboxServicesLiveGameSaveServiceStartupMode": "disabled"}),
                vec![
                    (
                        "xboxServicesLiveAuthManagerServiceStartupMode",
                        "manual",
                        true,
                    ),
                    (
                        "xboxServicesLiveGameSaveServiceStartupMode",
                        "disabled",
                        false,
                    ),
                ],
            ),
            // Empty lists and strings, null, false, sentinels, year 1: nothing.
            (
                ep,
                json!({"firewallRules": [], "defenderAttackSurfaceReductionExcludedPaths": [],
                        "defenderSecurityCenterOrganizationDisplayName": "", "deviceGuardEnableSecureBootWithDMA": false,
                        "deviceGuardLocalSystemAuthorityCredentialGuardSettings": "notConfigured",
                        "bitLockerRecoveryPasswordRotation": "notConfigured", "defenderScanMaxCpuPercentage": null}),
                vec![],
            ),
            (
                "windowsUpdateForBusinessConfiguration",
                json!({"qualityUpdatesPauseExpiryDateTime": "0001-01-01T00:00:00Z", "prereleaseFeatures": "userDefined"}),
                vec![],
            ),
            // A number equal to the default its description names.
            (
                ep,
                json!({"defenderScanMaxCpuPercentage": 50}),
                vec![("defenderScanMaxCpuPercentage", "50", true)],
            ),
            (
                ep,
                json!({"defenderScanMaxCpuPercentage": 30}),
                vec![("defenderScanMaxCpuPercentage", "30", false)],
            ),
            // Nested objects flatten by the same rules, the type from the schema.
            (
                ep,
                json!({"firewallProfileDomain": {"firewallEnabled": "allowed", "stealthModeRequired": false,
                        "inboundConnectionsBlocked": true, "policyRulesFromGroupPolicyMerged": false}}),
                vec![
                    ("firewallProfileDomain.firewallEnabled", "allowed", false),
                    (
                        "firewallProfileDomain.inboundConnectionsBlocked",
                        "true",
                        false,
                    ),
                ],
            ),
            // configurationUsage declares notConfigured = 3, yet a profile
            // that leaves BitLocker alone reads blocked = 0.
            (
                ep,
                json!({"bitLockerSystemDrivePolicy": {"startupAuthenticationTpmUsage": "blocked",
                        "startupAuthenticationTpmPinUsage": "notConfigured", "startupAuthenticationTpmKeyUsage": "required",
                        "recoveryOptions": {"recoveryPasswordUsage": "allowed", "blockDataRecoveryAgent": false}}}),
                vec![
                    (
                        "bitLockerSystemDrivePolicy.recoveryOptions.recoveryPasswordUsage",
                        "allowed",
                        false,
                    ),
                    (
                        "bitLockerSystemDrivePolicy.startupAuthenticationTpmKeyUsage",
                        "required",
                        false,
                    ),
                    (
                        "bitLockerSystemDrivePolicy.startupAuthenticationTpmUsage",
                        "blocked",
                        true,
                    ),
                ],
            ),
            // A subtype named in the object picks its own properties.
            (
                general,
                json!({"edgeSearchEngine": {"@odata.type": "#microsoft.graph.edgeSearchEngineCustom",
                        "edgeSearchEngineOpenSearchXmlUrl": "https://search.contoso.com/os.xml"}}),
                vec![(
                    "edgeSearchEngine.edgeSearchEngineOpenSearchXmlUrl",
                    "https://search.contoso.com/os.xml",
                    false,
                )],
            ),
            // An enum whose first member is "not configured": the others are choices.
            (
                general,
                json!({"cellularData": "allowed", "activateAppsWithVoice": "notConfigured"}),
                vec![("cellularData", "allowed", false)],
            ),
            // Navigation properties are not settings.
            (
                general,
                json!({"groupAssignments": [{"id": "a_g", "targetGroupId": "g", "excludeGroup": false}]}),
                vec![],
            ),
            // Compliance: deviceDefault, unavailable and notSet never compete.
            (
                win,
                json!({"passwordRequiredType": "deviceDefault", "deviceThreatProtectionRequiredSecurityLevel": "unavailable",
                         "osMinimumVersion": "10.0.19045"}),
                vec![("osMinimumVersion", "10.0.19045", false)],
            ),
            (
                win,
                json!({"deviceThreatProtectionRequiredSecurityLevel": "notSet"}),
                vec![],
            ),
            (
                win,
                json!({"deviceThreatProtectionRequiredSecurityLevel": "secured"}),
                vec![(
                    "deviceThreatProtectionRequiredSecurityLevel",
                    "secured",
                    false,
                )],
            ),
            // A nullable enum reads null when unset, so its first member is a
            // choice, unless the description names it as the default.
            (
                android,
                json!({"securityRequiredAndroidSafetyNetEvaluationType": "basic"}),
                vec![(
                    "securityRequiredAndroidSafetyNetEvaluationType",
                    "basic",
                    true,
                )],
            ),
            (
                android,
                json!({"securityRequiredAndroidSafetyNetEvaluationType": "hardwareBacked"}),
                vec![(
                    "securityRequiredAndroidSafetyNetEvaluationType",
                    "hardwareBacked",
                    false,
                )],
            ),
            // Flags enums: the empty set is "not configured"; members sort.
            (
                "sharedPCConfiguration",
                json!({"allowedAccounts": "domain, guest"}),
                vec![("allowedAccounts", "domain,guest", false)],
            ),
            (
                "sharedPCConfiguration",
                json!({"allowedAccounts": "guest,domain"}),
                vec![("allowedAccounts", "domain,guest", false)],
            ),
            (
                "sharedPCConfiguration",
                json!({"allowedAccounts": "notConfigured"}),
                vec![],
            ),
            // A type the schema does not know: the universal names only.
            (
                "contosoFutureConfiguration",
                json!({"a": "notConfigured", "b": "on", "c": [], "d": {"e": "userDefined", "f": 2}}),
                vec![("b", "on", false), ("d.f", "2", false)],
            ),
        ];
        for (t, record, want) in cases {
            let got = legacy(t, record.clone());
            let want: Vec<(String, String, bool)> = want
                .into_iter()
                .map(|(i, v, m)| (i.to_string(), v.to_string(), m))
                .collect();
            assert_eq!(got, want, "{t} {record}");
        }
    }

    #[test]
    fn the_reason_names_the_enum_or_the_description() {
        let ep = "windows10EndpointProtectionConfiguration";
        let reasons: Vec<Option<String>> = [
            json!({"lanManagerAuthenticationLevel": "lmAndNltm"}),
            json!({"defenderScanMaxCpuPercentage": 50}),
        ]
        .iter()
        .map(|r| flat(ep, r.as_object().unwrap()).remove(0).maybe_default)
        .collect();
        assert_eq!(
            reasons,
            vec![
                Some("`lmAndNltm` is the first member of enum lanManagerAuthenticationLevel, which Graph returns when the setting is not configured".to_string()),
                Some("`50` is the default named in Graph's description of defenderScanMaxCpuPercentage, so the setting may have been left unconfigured".to_string()),
            ]
        );
    }

    #[test]
    fn lists_compare_as_sets() {
        let ep = "windows10EndpointProtectionConfiguration";
        let rule = |name: &str, port: &str| json!({"displayName": name, "remotePortRanges": [port], "action": "allowed", "edgeTraversal": "notConfigured"});
        let a = legacy(
            ep,
            json!({"firewallRules": [rule("HTTPS", "443"), rule("DNS", "53")]}),
        );
        let b = legacy(
            ep,
            json!({"firewallRules": [rule("DNS", "53"), rule("HTTPS", "443")]}),
        );
        assert_eq!(a, b);
        assert_eq!(
            a,
            vec![(
                "firewallRules".to_string(),
                "{action=allowed, displayName=DNS, remotePortRanges=53}; {action=allowed, displayName=HTTPS, remotePortRanges=443}".to_string(),
                false
            )]
        );
    }

    fn hardened(paths: &[(&str, &str)]) -> Value {
        let d = "device_vendor_msft_policy_config_connectivity_hardeneduncpaths_pol_hardenedpaths";
        let members: Vec<Value> = paths
            .iter()
            .map(|(k, v)| {
                json!({"children": [
                {"settingDefinitionId": format!("{d}_key"), "simpleSettingValue": {"value": k}},
                {"settingDefinitionId": format!("{d}_value"), "simpleSettingValue": {"value": v}}]})
            })
            .collect();
        json!([{"settingInstance": {"settingDefinitionId": d, "groupSettingCollectionValue": members}}])
    }

    fn pairs(settings: Value) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = catalog(settings.as_array().unwrap())
            .into_iter()
            .map(|l| (l.id, l.value))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn group_collections_match_members_by_name_or_as_a_set_never_by_position() {
        let mutual = "RequireMutualAuthentication=1,RequireIntegrity=1";
        let one = pairs(hardened(&[
            ("\\\\*\\NETLOGON", mutual),
            ("\\\\*\\SYSVOL", mutual),
        ]));
        let other = pairs(hardened(&[
            ("\\\\*\\SYSVOL", mutual),
            ("\\\\*\\NETLOGON", mutual),
        ]));
        assert_eq!(one, other, "the same paths in another order");
        let d = "device_vendor_msft_policy_config_connectivity_hardeneduncpaths_pol_hardenedpaths";
        assert!(
            one.contains(&(format!("{d}[\\\\*\\SYSVOL]/{d}_value"), mutual.to_string())),
            "{one:?}"
        );
        // Two members with one key: no name, so one set.
        let dup = pairs(hardened(&[
            ("\\\\*\\SYSVOL", "a=1"),
            ("\\\\*\\SYSVOL", "b=1"),
        ]));
        assert_eq!(
            dup,
            vec![(
                d.to_string(),
                "{key=\\\\*\\SYSVOL, value=a=1}; {key=\\\\*\\SYSVOL, value=b=1}".to_string()
            )]
        );
        // No child names a member: the collection is one set.
        let rules = |order: [(&str, &str); 2]| {
            let members: Vec<Value> = order
                .iter()
                .map(|(t, v)| json!({"children": [
                    {"settingDefinitionId": "sm_rules_item_ruletype", "simpleSettingValue": {"value": t}},
                    {"settingDefinitionId": "sm_rules_item_rulevalue", "simpleSettingValue": {"value": v}}]}))
                .collect();
            pairs(
                json!([{"settingInstance": {"settingDefinitionId": "sm_rules", "groupSettingCollectionValue": members}}]),
            )
        };
        let a = rules([
            ("TeamIdentifier", "UBF8T346G9"),
            ("BundleIdentifier", "com.contoso.agent"),
        ]);
        let b = rules([
            ("BundleIdentifier", "com.contoso.agent"),
            ("TeamIdentifier", "UBF8T346G9"),
        ]);
        assert_eq!(a, b);
        assert_eq!(
            a,
            vec![("sm_rules".to_string(), "{item_ruletype=BundleIdentifier, item_rulevalue=com.contoso.agent}; {item_ruletype=TeamIdentifier, item_rulevalue=UBF8T346G9}".to_string())]
        );
    }
}
