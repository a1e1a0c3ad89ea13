//! Conflicts on real exports written outside this project
//! (`../shared/corpus/exports`, read in place). Expected sets are worked out
//! here from the JSON itself, independently of ringmaster's readers.

use assert_cmd::Command;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rm() -> Command {
    let mut c = Command::cargo_bin("ringmaster").unwrap();
    c.env("RINGMASTER_NOW", "2026-11-24T12:00:00Z");
    c
}

fn exports() -> Option<PathBuf> {
    ringmaster_import::corpus("exports")
}

/// A generated fleet without its own policies.
fn fleet() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    ringmaster_gen::generate(d.path(), &ringmaster_gen::Options::new(300, 5)).unwrap();
    std::fs::remove_file(d.path().join("configurationPolicies.json")).unwrap();
    std::fs::remove_file(d.path().join("deviceCompliancePolicies.json")).unwrap();
    std::fs::remove_file(d.path().join("assignmentFilters.json")).unwrap();
    d
}

/// The whole `conflicts --format json` report for these policy exports,
/// each assumed assigned to All devices.
fn conflicts(policies: &[PathBuf]) -> Value {
    let f = fleet();
    let mut c = rm();
    c.args([
        "conflicts",
        "--assume-all-devices",
        "--format",
        "json",
        "--org",
    ])
    .arg(f.path());
    for p in policies {
        c.arg("--policies").arg(p);
    }
    let out = c.output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// JSON as the exports store it (UTF-8, or UTF-16 with a byte-order mark).
fn read_json(p: &Path) -> Value {
    serde_json::from_str(&ringmaster_import::export_text(p).unwrap()).unwrap()
}

/// A settings-catalog instance with its template references and type tags
/// removed and every list sorted, so two instances compare by what they set.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| {
                    !k.starts_with('@') && !k.ends_with("TemplateReference") && *k != "id"
                })
                .map(|(k, v)| (k.clone(), canonical(v)))
                .collect(),
        ),
        Value::Array(a) => {
            let mut items: Vec<Value> = a.iter().map(canonical).collect();
            items.sort_by_key(|i| i.to_string());
            Value::Array(items)
        }
        other => other.clone(),
    }
}

fn top_settings(p: &Path) -> BTreeMap<String, Value> {
    read_json(p)["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let inst = &s["settingInstance"];
            (
                inst["settingDefinitionId"].as_str().unwrap().to_string(),
                canonical(inst),
            )
        })
        .collect()
}

/// Findings whose values come from both named policies, by top-level setting id.
fn between(report: &Value, a: &str, b: &str) -> BTreeSet<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            let names: Vec<&str> = f["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].as_str().unwrap())
                .collect();
            names.contains(&a) && names.contains(&b)
        })
        .map(|f| {
            let id = f["setting_id"].as_str().unwrap();
            let top = id.split(['/', '[']).next().unwrap().to_string();
            (f["kind"].as_str().unwrap().to_string(), top)
        })
        .collect()
}

#[test]
fn the_two_acsc_baselines_conflict_exactly_where_their_values_differ() {
    let Some(x) = exports() else { return };
    let dir = x.join("microsoft+Intune-ACSC-Windows-Hardening-Guidelines/policies");
    let acsc = top_settings(&dir.join("ACSC Windows Hardening Guidelines.json"));
    let base =
        top_settings(&dir.join(
            "Windows Security Baseline (for use with ACSC Windows Hardening Guidelines).json",
        ));
    let shared: BTreeSet<&String> = acsc.keys().filter(|k| base.contains_key(*k)).collect();
    let differ: BTreeSet<String> = shared
        .iter()
        .filter(|k| acsc[**k] != base[**k])
        .map(|k| k.to_string())
        .collect();
    assert_eq!(
        (shared.len(), differ.len()),
        (117, 17),
        "the corpus changed"
    );
    let report = conflicts(&[dir]);
    let found = between(
        &report,
        "ACSC Windows Hardening Guidelines",
        "Windows Security Baseline (for use with ACSC Windows Hardening Guidelines)",
    );
    let expected: BTreeSet<(String, String)> = differ
        .into_iter()
        .map(|k| ("conflict".to_string(), k))
        .collect();
    // Equal values (also with children in another order) never conflict.
    assert_eq!(found, expected);
}

#[test]
fn a_legacy_profile_and_an_intent_meet_on_the_hello_pin_length() {
    let Some(x) = exports() else { return };
    let legacy = x.join("Azure+securedworkstation/ENT/JSON/DeviceConfiguration/Enterprise-Config-Win10-Identity-Protection-UI_17-11-2020-17-00-43.json");
    let intent = x.join(
        "vanvfields+Microsoft-365/Windows 10/JSON/Win10-EndpointSecurity/[ITPM Corporate] Windows Hello for Business.json",
    );
    // The two sources, read here: 8 in the legacy profile, 6 in the intent.
    assert_eq!(read_json(&legacy)["pinMinimumLength"], 8);
    let delta = read_json(&intent)["settingsDelta"].clone();
    let pin = delta
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["definitionId"]
                == "deviceConfiguration--windowsIdentityProtectionConfiguration_pinMinimumLength"
        })
        .unwrap();
    assert_eq!(pin["value"], 6);

    // The profile's own assignments name groups of its tenant: both are
    // compared as if assigned to All devices.
    let t = tempfile::tempdir().unwrap();
    for (name, from) in [("legacy.json", &legacy), ("intent.json", &intent)] {
        let mut v = read_json(from);
        v.as_object_mut().unwrap().remove("assignments");
        std::fs::write(t.path().join(name), v.to_string()).unwrap();
    }
    let report = conflicts(&[t.path().to_path_buf()]);
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["setting_id"] == "windowsIdentityProtectionConfiguration.pinMinimumLength")
        .expect("the PIN length conflict");
    assert_eq!(f["kind"], "conflict");
    let mut values: Vec<(&str, &str)> = f["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["value"].as_str().unwrap()))
        .collect();
    values.sort();
    assert_eq!(
        values,
        vec![
            ("Enterprise-Config-Win10-Identity-Protection-UI", "8"),
            ("[ITPM Corporate] Windows Hello for Business", "6"),
        ]
    );
}

#[test]
fn an_intent_exported_by_intune_management_reads_its_settings_file() {
    let Some(x) = exports() else { return };
    let dir = x.join("aaronparker+intune-baseline/_at_168ce58/windows/EndpointSecurity");
    // The settings file is a JSON string holding {"settings": [...]}.
    let side = std::fs::read(dir.join("Prod-Windows-BitLocker_Settings.json")).unwrap();
    let inner: Value = serde_json::from_str(
        read_json(&dir.join("Prod-Windows-BitLocker_Settings.json"))
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let defs: BTreeSet<String> = inner["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["definitionId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(defs.len(), 8);
    // The intent without its inline settings, as older exports write it.
    let mut intent = read_json(&dir.join("Prod-Windows-BitLocker.json"));
    intent.as_object_mut().unwrap().remove("settings");
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("Prod-Windows-BitLocker.json"),
        intent.to_string(),
    )
    .unwrap();
    std::fs::write(t.path().join("Prod-Windows-BitLocker_Settings.json"), side).unwrap();
    let l = ringmaster_import::load(&[t.path().to_path_buf()]).unwrap();
    assert_eq!(l.org.policies.len(), 1);
    assert!(l.report.skipped.is_empty(), "{:?}", l.report.skipped);
    let p = &l.org.policies[0];
    assert_eq!(p.name, "Prod-Windows-BitLocker");
    assert_eq!(p.platforms, vec![ringmaster_core::model::Platform::Windows]);
    // Every definition the file carries with a value is a setting of the policy.
    let read: BTreeSet<String> = p
        .settings
        .iter()
        .map(|s| {
            let (ty, prop) = s.id.split_once('.').unwrap();
            let prop = prop.split('.').next().unwrap();
            format!("deviceConfiguration--{ty}_{prop}")
        })
        .collect();
    assert!(!read.is_empty() && read.is_subset(&defs), "{read:?}");
    assert!(
        read.contains(
            "deviceConfiguration--windows10EndpointProtectionConfiguration_bitLockerEncryptDevice"
        ),
        "{read:?}"
    );
}
