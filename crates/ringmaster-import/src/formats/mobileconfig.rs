//! Apple configuration profiles (`.mobileconfig`, XML or binary plist) as
//! one `macOSCustomConfiguration` whose `settings` are in settings-catalog
//! shape, so a profile's keys meet the same keys set by catalog policies.
//!
//! The catalog names a payload key `<payloadtype>_<key>`, lowercased, and
//! wraps each payload type in a group collection `<type>_<type>`: so do we.
//! Under a key:
//! - a boolean is a choice, `<id>_true` / `<id>_false`;
//! - a string, number or date is a simple value (data as base64);
//! - a list of plain values is a simple collection;
//! - a dictionary is a group with children `<id>_<key>`;
//! - a list of dictionaries is a group collection with children
//!   `<id>_item_<key>`, one member per item.
//!
//! `Payload…` keys describe the payload, not the device, and are left out.
//! Signed (CMS) profiles are passed over: their plist is inside a signature.

use super::{Read, Record};
use crate::ImportError;
use plist::Value as P;
use serde_json::{Map, Value, json};
use std::path::Path;

const GROUP_COLLECTION: &str =
    "#microsoft.graph.deviceManagementConfigurationGroupSettingCollectionInstance";

/// Reads one profile.
pub fn read(p: &Path, bytes: &[u8]) -> Result<Read, ImportError> {
    let file_name = p
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("profile.mobileconfig");
    if signed(bytes) {
        return Ok(Read {
            records: Vec::new(),
            skipped: vec![
                "a signed (CMS) configuration profile; export it unsigned to read its payloads"
                    .into(),
            ],
        });
    }
    let plist = P::from_reader(std::io::Cursor::new(bytes)).map_err(|e| {
        let (line, message) = located(bytes, &e.to_string());
        ImportError {
            file: p.to_path_buf(),
            record: None,
            line,
            column: None,
            field: None,
            message: format!("not a valid property list: {message}"),
        }
    })?;
    let mut skipped = Vec::new();
    let value =
        profile(file_name, plist, &mut skipped).map_err(|(field, message)| ImportError {
            file: p.to_path_buf(),
            record: None,
            line: None,
            column: None,
            field: Some(field),
            message,
        })?;
    Ok(Read {
        records: vec![Record { value, line: None }],
        skipped,
    })
}

/// A DER `SEQUENCE` where the plist would start: a CMS signed-data envelope.
fn signed(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x30) && matches!(bytes.get(1), Some(0x80..=0x84))
}

/// The line of a plist error's byte offset, and its message with the
/// offset given as a column instead.
fn located(bytes: &[u8], message: &str) -> (Option<usize>, String) {
    let offset = message
        .rsplit_once("(offset ")
        .and_then(|(_, r)| r.trim_end_matches(')').parse::<usize>().ok())
        .filter(|&o| o <= bytes.len() && !bytes.starts_with(b"bplist"));
    match offset {
        Some(o) => {
            let before = &bytes[..o];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let col = o - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |n| n + 1)
                + 1;
            let kind = message.rsplit_once(" (offset ").map_or(message, |(k, _)| k);
            (Some(line), format!("{kind} at column {col}"))
        }
        None => (None, message.to_string()),
    }
}

/// The Graph record of a profile; `Err((field, why))` for a malformed one.
fn profile(
    file_name: &str,
    plist: P,
    skipped: &mut Vec<String>,
) -> Result<Value, (String, String)> {
    let P::Dictionary(top) = plist else {
        return Err((
            String::new(),
            "the top of a profile must be a dictionary".into(),
        ));
    };
    let text = |k: &str| top.get(k).and_then(P::as_string).map(str::to_string);
    let Some(P::Array(payloads)) = top.get("PayloadContent") else {
        return Err((
            "PayloadContent".into(),
            "a configuration profile needs a PayloadContent array".into(),
        ));
    };
    // Payloads of one type are members of one group collection, in file order.
    let mut types: Vec<(String, Vec<Value>)> = Vec::new();
    for (i, payload) in payloads.iter().enumerate() {
        let field = format!("PayloadContent[{i}]");
        let P::Dictionary(d) = payload else {
            return Err((field, "a payload must be a dictionary".into()));
        };
        let Some(ty) = d.get("PayloadType").and_then(P::as_string) else {
            return Err((format!("{field}.PayloadType"), "missing".into()));
        };
        let ty = ty.trim().to_ascii_lowercase();
        let children = children(
            &ty,
            "_",
            d.iter().filter(|(k, _)| !k.starts_with("Payload")),
            skipped,
        );
        let member = json!({"children": children});
        match types.iter_mut().find(|(t, _)| *t == ty) {
            Some((_, members)) => members.push(member),
            None => types.push((ty, vec![member])),
        }
    }
    let settings: Vec<Value> = types
        .into_iter()
        .enumerate()
        .map(|(i, (ty, members))| {
            json!({"id": i.to_string(), "settingInstance": {
                "@odata.type": GROUP_COLLECTION,
                "settingDefinitionId": format!("{ty}_{ty}"),
                "groupSettingCollectionValue": members}})
        })
        .collect();
    let mut rec = Map::new();
    rec.insert(
        "@odata.type".into(),
        json!("#microsoft.graph.macOSCustomConfiguration"),
    );
    if let Some(id) = text("PayloadUUID") {
        rec.insert("id".into(), json!(id));
    }
    let name = text("PayloadDisplayName");
    let stem = file_name.rsplit_once('.').map_or(file_name, |(s, _)| s);
    rec.insert(
        "displayName".into(),
        json!(name.clone().unwrap_or_else(|| stem.to_string())),
    );
    if let Some(d) = text("PayloadDescription") {
        rec.insert("description".into(), json!(d));
    }
    rec.insert(
        "payloadName".into(),
        json!(name.unwrap_or_else(|| stem.to_string())),
    );
    rec.insert("payloadFileName".into(), json!(file_name));
    rec.insert("settings".into(), Value::Array(settings));
    Ok(Value::Object(rec))
}

/// The instances of a dictionary's keys, ids `<parent><sep><key>`.
fn children<'a>(
    parent: &str,
    sep: &str,
    entries: impl Iterator<Item = (&'a String, &'a P)>,
    skipped: &mut Vec<String>,
) -> Vec<Value> {
    entries
        .filter_map(|(k, v)| {
            instance(
                format!("{parent}{sep}{}", k.to_ascii_lowercase()),
                v,
                skipped,
            )
        })
        .collect()
}

fn instance(id: String, v: &P, skipped: &mut Vec<String>) -> Option<Value> {
    let ty = |t: &str| format!("#microsoft.graph.deviceManagementConfiguration{t}");
    Some(match v {
        P::Boolean(b) => {
            json!({"@odata.type": ty("ChoiceSettingInstance"), "settingDefinitionId": id,
            "choiceSettingValue": {"value": format!("{id}_{b}"), "children": []}})
        }
        P::Dictionary(d) => json!({"@odata.type": GROUP_COLLECTION, "settingDefinitionId": id,
            "groupSettingCollectionValue": [{"children": children(&id, "_", d.iter(), skipped)}]}),
        P::Array(items)
            if !items.is_empty() && items.iter().all(|i| matches!(i, P::Dictionary(_))) =>
        {
            let item = format!("{id}_item");
            let members: Vec<Value> = items
                .iter()
                .filter_map(P::as_dictionary)
                .map(|d| json!({"children": children(&item, "_", d.iter(), skipped)}))
                .collect();
            json!({"@odata.type": GROUP_COLLECTION, "settingDefinitionId": id,
                "groupSettingCollectionValue": members})
        }
        P::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for i in items {
                match simple(i) {
                    Some(v) => values.push(json!({"value": v})),
                    None => {
                        skipped.push(format!(
                            "{id}: a list mixing dictionaries or lists with plain values has no settings-catalog form; not read"
                        ));
                        return None;
                    }
                }
            }
            json!({"@odata.type": ty("SimpleSettingCollectionInstance"), "settingDefinitionId": id,
                "simpleSettingCollectionValue": values})
        }
        v => {
            let value = simple(v)?;
            let kind = if value.is_number() {
                "IntegerSettingValue"
            } else {
                "StringSettingValue"
            };
            json!({"@odata.type": ty("SimpleSettingInstance"), "settingDefinitionId": id,
                "simpleSettingValue": {"@odata.type": ty(kind), "value": value}})
        }
    })
}

/// A plain plist value as JSON; `None` for dictionaries and lists.
fn simple(v: &P) -> Option<Value> {
    Some(match v {
        P::Boolean(b) => json!(b),
        P::Integer(i) => match (i.as_signed(), i.as_unsigned()) {
            (Some(n), _) => json!(n),
            (None, Some(n)) => json!(n),
            (None, None) => return None,
        },
        P::Real(r) => json!(r),
        P::String(s) => json!(s),
        P::Date(d) => json!(d.to_xml_format()),
        P::Data(d) => json!(base64(d)),
        P::Uid(u) => json!(u.get()),
        P::Dictionary(_) | P::Array(_) => return None,
        // plist::Value is non-exhaustive.
        _ => return None,
    })
}

/// Standard base64 with padding, as plists write `<data>`.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringmaster_core::settings::SettingLeaf;

    fn plist(payloads: &str, top: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>PayloadContent</key>
  <array>{payloads}</array>
  <key>PayloadType</key><string>Configuration</string>
  {top}
</dict>
</plist>"#
        )
    }

    fn leaves(xml: &str) -> (Value, Vec<(String, String)>) {
        let r = read(Path::new("x/Camera policy.mobileconfig"), xml.as_bytes()).unwrap();
        let v = r.records[0].value.clone();
        let settings = v["settings"].as_array().unwrap();
        let got = crate::settings::catalog(settings)
            .into_iter()
            .map(|SettingLeaf { id, value, .. }| (id, value))
            .collect();
        (v, got)
    }

    #[test]
    fn payload_keys_become_catalog_leaves() {
        let xml = plist(
            r#"<dict>
              <key>PayloadType</key><string>com.apple.applicationaccess</string>
              <key>PayloadUUID</key><string>A1</string>
              <key>allowCamera</key><false/>
              <key>allowScreenShot</key><true/>
            </dict>
            <dict>
              <key>PayloadType</key><string>com.apple.loginwindow</string>
              <key>LoginwindowText</key><string>Property of Contoso</string>
              <key>DenyList</key><array><string>guest</string><string>admin2</string></array>
            </dict>
            <dict>
              <key>PayloadType</key><string>com.apple.security.firewall</string>
              <key>EnableFirewall</key><true/>
              <key>Applications</key><array>
                <dict><key>BundleID</key><string>com.a</string><key>Allowed</key><true/></dict>
                <dict><key>BundleID</key><string>com.b</string><key>Allowed</key><false/></dict>
              </array>
            </dict>
            <dict>
              <key>PayloadType</key><string>com.apple.extensiblesso</string>
              <key>PlatformSSO</key><dict><key>AuthenticationMethod</key><string>Password</string></dict>
              <key>Token</key><data>AAEC</data>
              <key>Grace</key><integer>7</integer>
            </dict>"#,
            "<key>PayloadUUID</key><string>P-1</string>",
        );
        let (v, got) = leaves(&xml);
        assert_eq!(
            v["@odata.type"],
            "#microsoft.graph.macOSCustomConfiguration"
        );
        assert_eq!(v["id"], "P-1");
        assert_eq!(v["displayName"], "Camera policy");
        let aa =
            "com.apple.applicationaccess_com.apple.applicationaccess/com.apple.applicationaccess";
        let fw = "com.apple.security.firewall_com.apple.security.firewall";
        let sso = "com.apple.extensiblesso_com.apple.extensiblesso/com.apple.extensiblesso";
        let expect: Vec<(String, String)> = [
            (format!("{aa}_allowcamera"), "false"),
            (format!("{aa}_allowscreenshot"), "true"),
            ("com.apple.loginwindow_com.apple.loginwindow/com.apple.loginwindow_loginwindowtext".into(), "Property of Contoso"),
            ("com.apple.loginwindow_com.apple.loginwindow/com.apple.loginwindow_denylist".into(), "admin2; guest"),
            (format!("{fw}/com.apple.security.firewall_enablefirewall"), "true"),
            (format!("{fw}/com.apple.security.firewall_applications[com.a]/com.apple.security.firewall_applications_item_bundleid"), "com.a"),
            (format!("{fw}/com.apple.security.firewall_applications[com.a]/com.apple.security.firewall_applications_item_allowed"), "true"),
            (format!("{fw}/com.apple.security.firewall_applications[com.b]/com.apple.security.firewall_applications_item_bundleid"), "com.b"),
            (format!("{fw}/com.apple.security.firewall_applications[com.b]/com.apple.security.firewall_applications_item_allowed"), "false"),
            (format!("{sso}_platformsso/com.apple.extensiblesso_platformsso_authenticationmethod"), "Password"),
            (format!("{sso}_token"), "AAEC"),
            (format!("{sso}_grace"), "7"),
        ]
        .into_iter()
        .map(|(a, b)| (a, b.to_string()))
        .collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn two_payloads_of_one_type_are_two_members() {
        let xml = plist(
            r#"<dict><key>PayloadType</key><string>com.apple.screensaver</string><key>idleTime</key><integer>600</integer></dict>
               <dict><key>PayloadType</key><string>com.apple.screensaver</string><key>idleTime</key><integer>300</integer></dict>"#,
            "<key>PayloadDisplayName</key><string>Idle</string>",
        );
        let (v, got) = leaves(&xml);
        assert_eq!(v["displayName"], "Idle");
        assert_eq!(v.get("id"), None);
        let ids: Vec<&str> = got.iter().map(|(i, _)| i.as_str()).collect();
        // Two unnamed payloads of one type are one set, compared whatever their order.
        assert_eq!(ids, ["com.apple.screensaver_com.apple.screensaver"]);
        assert!(
            got[0].1.contains("300") && got[0].1.contains("600"),
            "{got:?}"
        );
    }

    #[test]
    fn signed_binary_and_broken_profiles() {
        let p = Path::new("a.mobileconfig");
        let r = read(p, &[0x30, 0x80, 0x06, 0x09, 0x2a]).unwrap();
        assert!(r.records.is_empty());
        assert!(r.skipped[0].starts_with("a signed (CMS) configuration profile"));
        // Binary plists read like XML ones.
        let mut top = plist::Dictionary::new();
        let mut payload = plist::Dictionary::new();
        payload.insert("PayloadType".into(), P::String("com.apple.dock".into()));
        payload.insert("autohide".into(), P::Boolean(true));
        top.insert(
            "PayloadContent".into(),
            P::Array(vec![P::Dictionary(payload)]),
        );
        let mut bin = Vec::new();
        P::Dictionary(top).to_writer_binary(&mut bin).unwrap();
        let r = read(p, &bin).unwrap();
        assert_eq!(
            r.records[0].value["settings"][0]["settingInstance"]["settingDefinitionId"],
            "com.apple.dock_com.apple.dock"
        );
        let e = read(p, b"<?xml version=\"1.0\"?>\n<plist>\n<dict><key>a</key>\n<strin>x</string></dict></plist>")
            .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.starts_with("not a valid property list"), "{e}");
        let e = read(p, plist("<string>x</string>", "").as_bytes()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("PayloadContent[0]"));
        let e = read(p, b"<plist><dict></dict></plist>").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("PayloadContent"));
    }

    #[test]
    fn base64_as_plists_write_it() {
        for (input, expect) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"\x00\x01\x02", "AAEC"),
        ] {
            assert_eq!(base64(input), expect);
        }
    }
}
