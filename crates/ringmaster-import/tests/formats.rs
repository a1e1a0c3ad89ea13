//! Foreign formats through `load`: small fixtures written here, and the
//! corpus folders each reader was built for, with counts worked out by a
//! plain scan of the files rather than by the readers.

use ringmaster_core::model::*;
use ringmaster_import::{Loaded, load};
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn corpus() -> Option<PathBuf> {
    ringmaster_import::corpus("exports")
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p, ext));
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn policy<'a>(l: &'a Loaded, name: &str) -> &'a Policy {
    l.org
        .policies
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no policy '{name}'"))
}

#[test]
fn a_folder_of_foreign_formats_loads() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "filters.jsonc",
        r##"// Filters kept by hand
[
  {
    "@odata.type": "#microsoft.graph.deviceAndAppManagementAssignmentFilter",
    "id": "f-surface",
    "displayName": "Surface devices",
    "platform": "windows10AndLater",
    /* the model names Microsoft uses */
    "rule": "(device.model -startsWith \"Surface\")",
  },
]
"##,
    );
    write(
        d.path(),
        "Get-MgDeviceManagementDeviceConfiguration.json",
        r##"[{"Id": "d1", "DisplayName": "Camera off", "Version": 1, "Assignments": null,
              "AdditionalProperties": {"@odata.type": "#microsoft.graph.windows10GeneralConfiguration", "cameraBlocked": true}}]"##,
    );
    write(
        d.path(),
        "camera.mobileconfig",
        r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<dict>
  <key>PayloadContent</key>
  <array>
    <dict>
      <key>PayloadType</key><string>com.apple.applicationaccess</string>
      <key>allowCamera</key><false/>
    </dict>
  </array>
  <key>PayloadDisplayName</key><string>Mac camera off</string>
  <key>PayloadUUID</key><string>7C1A8C52-0B7A-4D0E-9F4A-2B2A1E0C9D11</string>
</dict>
</plist>
"#,
    );
    write(
        d.path(),
        "Tenant.ps1",
        "Configuration Tenant\n{\n    Import-DscResource -ModuleName Microsoft365DSC\n    Node localhost\n    {\n        AADGroup 'Pilot'\n        {\n            DisplayName    = 'Pilot devices'\n            GroupTypes     = @('DynamicMembership')\n            MembershipRule = '(device.deviceOSType -eq \"Windows\")'\n            Ensure         = 'Present'\n        }\n    }\n}\n",
    );
    write(
        d.path(),
        "Cleanup.ps1",
        "Get-ChildItem $env:TEMP | Remove-Item\n",
    );
    let l = load(&[d.path().to_path_buf()]).unwrap();
    assert_eq!(l.org.filters.len(), 1);
    assert_eq!(l.org.filters[0].name, "Surface devices");
    let camera = policy(&l, "Camera off");
    assert_eq!(camera.kind, PolicyKind::DeviceConfiguration);
    // The legacy property, keyed by the catalog setting it writes.
    assert_eq!(
        (
            camera.settings[0].id.as_str(),
            camera.settings[0].written_as.as_deref()
        ),
        (
            "device_vendor_msft_policy_config_camera_allowcamera",
            Some("windows10GeneralConfiguration.cameraBlocked=true")
        )
    );
    let mac = policy(&l, "Mac camera off");
    assert_eq!(mac.platforms, vec![Platform::MacOs]);
    assert_eq!(
        mac.settings[0].id,
        "com.apple.applicationaccess_com.apple.applicationaccess/com.apple.applicationaccess_allowcamera"
    );
    assert_eq!(mac.settings[0].value, "false");
    let pilot = l.org.find_groups("Pilot devices")[0];
    assert!(matches!(
        l.org.groups[pilot].kind,
        GroupKind::Dynamic { .. }
    ));
    let skipped: Vec<String> = l
        .report
        .skipped
        .iter()
        .map(|s| s.replace(&d.path().display().to_string(), "."))
        .collect();
    assert_eq!(
        skipped,
        vec!["./Cleanup.ps1: a PowerShell script without a DSC configuration or Graph JSON"]
    );
}

#[test]
fn foreign_errors_say_where() {
    let check = |name: &str, text: &str, line: usize, message: &str| {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), name, text);
        let e = match load(std::slice::from_ref(&p)) {
            Ok(_) => panic!("{name} loaded"),
            Err(e) => e,
        };
        assert_eq!(e.file, p);
        assert_eq!(e.line, Some(line), "{e}");
        assert!(e.message.contains(message), "{e}");
    };
    // The comment is blanked, so the error keeps the original line and column.
    check(
        "policy.json",
        "{\n  // why\n  \"displayName\": \"x\",\n  \"rule\" \"y\"\n}\n",
        4,
        "expected `:` at line 4 column 10",
    );
    check(
        "Broken.ps1",
        "Configuration Broken\n{\n    Node localhost\n    {\n        AADGroup 'G'\n        {\n            DisplayName = 'G'\n            GroupTypes = @('Unified'\n        }\n    }\n}\n",
        8,
        "this `@(` is never closed (column 26)",
    );
    // A DSC filter whose rule the service would reject: the resource's line.
    check(
        "Filter.ps1",
        "Configuration F\n{\n    Node localhost\n    {\n        IntuneDeviceAndAppManagementAssignmentFilter 'F'\n        {\n            DisplayName = 'F'\n            Platform = 'windows10AndLater'\n            Rule = '(device.model -startsWith)'\n        }\n    }\n}\n",
        5,
        "",
    );
    check(
        "bad.mobileconfig",
        "<?xml version=\"1.0\"?>\n<plist>\n<dict>\n<key>a</key>\n<integer>x</integer>\n</dict>\n</plist>\n",
        5,
        "not a valid property list",
    );
}

#[test]
fn cipp_templates_load() {
    let Some(c) = corpus() else { return };
    let dir = c.join("KelvinTegelaar+CIPP-API/Config");
    let templates = files(&dir, "json");
    assert_eq!(templates.len(), 6);
    let l = load(&[dir]).unwrap();
    assert_eq!(l.report.skipped, Vec::<String>::new());
    assert_eq!(l.org.policies.len(), templates.len());
    for t in &templates {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(t).unwrap()).unwrap();
        let raw: serde_json::Value = serde_json::from_str(v["RAWJson"].as_str().unwrap()).unwrap();
        let id = v["GUID"]
            .as_str()
            .unwrap()
            .trim_end_matches(".IntuneTemplate.json");
        let p = l
            .org
            .policies
            .iter()
            .find(|p| p.id == id)
            .unwrap_or_else(|| panic!("no policy with the id of {}", t.display()));
        let expect = match v["Type"].as_str().unwrap() {
            "Catalog" => "deviceManagementConfigurationPolicy".to_string(),
            "Admin" => "groupPolicyConfiguration".to_string(),
            _ => raw["@odata.type"]
                .as_str()
                .unwrap()
                .trim_start_matches("#microsoft.graph.")
                .to_string(),
        };
        assert_eq!(p.odata_type, expect, "{}", t.display());
        let setting_instances = v["RAWJson"]
            .as_str()
            .unwrap()
            .matches("\"settingInstance\"")
            .count();
        if setting_instances > 0 {
            assert!(p.settings.len() >= setting_instances, "{}", t.display());
        }
    }
}

#[test]
fn mobileconfig_profiles_load() {
    let Some(c) = corpus() else { return };
    let dir = c.join("microsoft+intune-my-macs");
    let profiles = files(&dir, "mobileconfig");
    assert_eq!(profiles.len(), 2);
    let l = load(&[dir]).unwrap();
    for p in &profiles {
        let text = std::fs::read_to_string(p).unwrap();
        // Keys of the payloads: every <key> that is not a Payload… key,
        // less the top level's own (all Payload… keys).
        let keys: Vec<String> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("<key>")?.strip_suffix("</key>"))
            .filter(|k| !k.starts_with("Payload"))
            .map(str::to_ascii_lowercase)
            .collect();
        let source = p.display().to_string();
        let pol = l
            .org
            .policies
            .iter()
            .find(|x| x.source == source)
            .unwrap_or_else(|| panic!("{source} not read"));
        assert_eq!(pol.odata_type, "macOSCustomConfiguration");
        assert_eq!(pol.platforms, vec![Platform::MacOs]);
        let mut got: Vec<String> = pol
            .settings
            .iter()
            .map(|s| {
                let leaf = s.id.rsplit('/').next().unwrap();
                leaf.split_once('_').unwrap().1.to_string()
            })
            .collect();
        let mut want = keys;
        got.sort();
        want.sort();
        assert_eq!(got, want, "{source}");
    }
}

/// The resource blocks of a DSC example: a line `<Name> <title>` followed
/// by a line that is only `{` (or ending in `{`), inside a `node` block.
fn dsc_resources(text: &str) -> Vec<(String, bool)> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut out = Vec::new();
    let mut in_node = false;
    for (i, l) in lines.iter().enumerate() {
        let words: Vec<&str> = l.split_whitespace().collect();
        if words
            .first()
            .is_some_and(|w| w.eq_ignore_ascii_case("node"))
        {
            in_node = true;
            continue;
        }
        let opens = lines.get(i + 1) == Some(&"{") || l.ends_with('{');
        if in_node
            && words.len() >= 2
            && opens
            && (words[0].starts_with("Intune") || words[0].starts_with("AAD"))
        {
            // Ensure = 'Absent' before the next resource.
            let absent = lines[i + 1..]
                .iter()
                .take_while(|n| !n.starts_with("Intune") && !n.starts_with("AAD"))
                .any(|n| {
                    let n = n.replace(' ', "").to_ascii_lowercase();
                    n.starts_with("ensure=") && n.contains("absent")
                });
            out.push((words[0].to_string(), absent));
        }
    }
    out
}

#[test]
fn microsoft365dsc_examples_load() {
    let Some(c) = corpus() else { return };
    let dir = c.join("microsoft+Microsoft365DSC");
    let scripts = files(&dir, "ps1");
    assert_eq!(scripts.len(), 272);
    let mut resources = Vec::new();
    for s in &scripts {
        resources.extend(dsc_resources(&std::fs::read_to_string(s).unwrap()));
    }
    assert_eq!(resources.len(), scripts.len(), "one resource per example");
    let l = load(&[dir]).unwrap();
    let r = &l.report;
    // Every resource is a record or a note that names it; a record of a
    // type ringmaster does not read is both.
    let records: usize = r.files.iter().map(|f| f.records).sum();
    let whole: Vec<&String> = r
        .skipped
        .iter()
        .filter(|s| !s.contains("name users by user principal name"))
        // The licence file beside the examples is listed too.
        .filter(|s| !s.contains("not a format ringmaster reads"))
        .collect();
    let unread = whole
        .iter()
        .filter(|s| s.ends_with("is not an object ringmaster reads"))
        .count();
    assert_eq!(
        records + whole.len() - unread,
        resources.len(),
        "{whole:#?}"
    );
    // The records read are read once per id.
    let repeats = r
        .warnings
        .iter()
        .filter(|w| w.contains("was already read"))
        .count();
    let o = &l.org;
    assert_eq!(
        o.policies.len() + o.filters.len() + o.groups.len() + repeats,
        records - unread
    );
    // No resource with Ensure = 'Absent' became a record.
    let absent = resources.iter().filter(|(_, a)| *a).count();
    let absent_notes = whole
        .iter()
        .filter(|s| s.contains("Ensure = 'Absent'"))
        .count();
    assert!(absent_notes <= absent && absent_notes > 0);
    assert!(records <= resources.len() - absent_notes);
    // The example filter and group, read from their Present examples.
    assert_eq!(o.filters.len(), 1);
    assert_eq!(
        o.filters[0].rule,
        "(device.manufacturer -ne \"Microsoft Corporation\")"
    );
    assert_eq!(o.groups.len(), 1);
    // A settings-catalog example keeps its setting instances.
    let raw = policy(&l, "Setting Catalog Raw - DSC");
    assert_eq!(raw.kind, PolicyKind::SettingsCatalog);
    let text = std::fs::read_to_string(
        c.join("microsoft+Microsoft365DSC/Modules/Microsoft365DSC/Examples/Resources/IntuneSettingCatalogCustomPolicyWindows10/1-Create.ps1"),
    )
    .unwrap();
    assert_eq!(
        raw.settings.len(),
        text.matches("SettingDefinitionId").count()
    );
    // A compliance example: its properties as Graph names them.
    let compliance = o
        .policies
        .iter()
        .find(|p| p.odata_type == "windows10CompliancePolicy")
        .unwrap();
    assert_eq!(compliance.kind, PolicyKind::Compliance);
    let value = |id: &str| {
        compliance
            .settings
            .iter()
            .find(|s| s.id == format!("windows10CompliancePolicy.{id}"))
            .map(|s| s.value.as_str())
    };
    assert_eq!(value("passwordMinimumLength"), Some("6"));
    assert_eq!(value("osMaximumVersion"), Some("10.19"));
    assert_eq!(
        value("deviceThreatProtectionRequiredSecurityLevel"),
        Some("Medium")
    );
}

#[test]
fn graph_json_in_powershell_scripts_loads() {
    let Some(c) = corpus() else { return };
    let scripts = files(&c.join("vanvfields+Microsoft-365"), "ps1");
    assert_eq!(scripts.len(), 15);
    // JSON objects in here-strings: an opener line, then (after blank
    // lines) a line that is `{`.
    let mut objects = 0;
    let mut without = 0;
    for s in &scripts {
        let text = std::fs::read_to_string(s).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let n = (0..lines.len())
            .filter(|&i| {
                let open = lines[i].trim_end();
                (open.ends_with("@\"") || open.ends_with("@'"))
                    && lines[i + 1..]
                        .iter()
                        .find(|l| !l.trim().is_empty())
                        .map(|l| l.trim())
                        == Some("{")
            })
            .count();
        objects += n;
        without += usize::from(n == 0);
    }
    let l = load(&scripts).unwrap();
    let o = &l.org;
    assert_eq!(o.policies.len() + o.filters.len(), objects);
    assert_eq!(o.filters.len(), 3);
    let none = l
        .report
        .skipped
        .iter()
        .filter(|s| s.ends_with("a PowerShell script without a DSC configuration or Graph JSON"))
        .count();
    assert_eq!(none, without);
    assert!(
        l.report
            .skipped
            .iter()
            .any(|s| s.contains("expands the PowerShell variable $myTenantID"))
    );
}
