use assert_cmd::Command;
use predicates::prelude::*;
use std::path::{Path, PathBuf};

fn rm() -> Command {
    let mut c = Command::cargo_bin("ringmaster").unwrap();
    c.env("RINGMASTER_NOW", "2026-11-24T12:00:00Z");
    c
}

fn corpus_windows() -> Option<PathBuf> {
    ringmaster_import::corpus("OpenIntuneBaseline/WINDOWS")
}

/// A generated fleet without its own policies.
fn fleet() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    ringmaster_gen::generate(d.path(), &ringmaster_gen::Options::new(2000, 3)).unwrap();
    std::fs::remove_file(d.path().join("configurationPolicies.json")).unwrap();
    std::fs::remove_file(d.path().join("deviceCompliancePolicies.json")).unwrap();
    d
}

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap()
}

#[test]
fn open_intune_baseline_on_a_fleet_finds_the_real_conflicts() {
    let Some(oib) = corpus_windows() else { return };
    let f = fleet();
    let out = rm()
        .args([
            "conflicts",
            "--assume-all-devices",
            "--format",
            "json",
            "--org",
        ])
        .arg(f.path())
        .arg("--proposed")
        .arg(&oib)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let findings = v["findings"].as_array().unwrap();
    let find = |id: &str| {
        findings
            .iter()
            .find(|f| f["setting_id"] == id)
            .unwrap_or_else(|| panic!("no finding for {id}"))
    };
    // The two LAPS policies: password complexity 5 (v3.1) vs 8 (24H2+ v3.6).
    let laps = find("device_vendor_msft_laps_policies_passwordcomplexity");
    assert_eq!(laps["kind"], "conflict");
    let mut values: Vec<(String, String)> = laps["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap().to_string(),
                x["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    values.sort();
    assert_eq!(
        values,
        vec![
            (
                "Win - OIB - ES - Windows LAPS - D - LAPS Configuration (24H2+) - v3.6".to_string(),
                "8".to_string()
            ),
            (
                "Win - OIB - ES - Windows LAPS - D - LAPS Configuration - v3.1".to_string(),
                "5".to_string()
            ),
        ]
    );
    assert!(
        laps["devices"].as_u64().unwrap() > 1000,
        "every Windows device of the fleet"
    );
    // ASR rules: L2 blocks what the audit-mode policy audits.
    let asr: Vec<_> = findings
        .iter()
        .filter(|f| {
            f["setting_id"].as_str().unwrap().starts_with(
                "device_vendor_msft_policy_config_defender_attacksurfacereductionrules/",
            )
        })
        .collect();
    assert!(!asr.is_empty());
    for f in &asr {
        let names: Vec<&str> = f["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap())
            .collect();
        assert!(
            names.iter().any(|n| n.contains("ASR Rules (L2)"))
                && names.iter().any(|n| n.contains("Audit Mode")),
            "{names:?}"
        );
    }
    // Nothing is reported for settings every policy sets to the same value.
    for f in findings.iter().filter(|f| f["kind"] != "unverifiable") {
        let vals: std::collections::BTreeSet<&str> = f["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["value"].as_str().unwrap())
            .collect();
        assert!(vals.len() > 1, "a finding with one value: {f}");
    }
}

#[test]
fn open_intune_baseline_report_snapshot() {
    let Some(oib) = corpus_windows() else { return };
    let f = fleet();
    let out = rm()
        .args([
            "conflicts",
            "--assume-all-devices",
            "--format",
            "markdown",
            "--limit",
            "1000",
            "--org",
        ])
        .arg(f.path())
        .arg("--proposed")
        .arg(&oib)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    insta::assert_snapshot!("oib_windows_conflicts", String::from_utf8(out).unwrap());
}

#[test]
fn clean_runs_exit_zero_and_isolated_mode_has_no_conflicts() {
    let Some(oib) = corpus_windows() else { return };
    let f = fleet();
    let laps = oib.join("IntuneManagement/SettingsCatalog/Win - OIB - ES - Windows LAPS - D - LAPS Configuration - v3.1.json");
    rm().args(["conflicts", "--assume-all-devices", "--org"])
        .arg(f.path())
        .arg("--proposed")
        .arg(&laps)
        .assert()
        .success()
        .stdout(predicate::str::contains("0 conflicts"));
    rm().args([
        "conflicts",
        "--assume-all-devices",
        "--isolated",
        "Win - OIB - ES - Windows LAPS - D - LAPS Configuration - v3.1",
        "--org",
    ])
    .arg(f.path())
    .arg("--proposed")
    .arg(&oib)
    .assert()
    .success()
    .stdout(
        predicate::str::contains("Isolated mode")
            .and(predicate::str::contains("0 conflicts"))
            .and(predicate::str::contains("NOT APPLICABLE")),
    );
}

#[test]
fn accepted_conflicts_are_shown_and_do_not_fail_the_check() {
    let Some(oib) = corpus_windows() else { return };
    let f = fleet();
    let laps = oib.join("IntuneManagement/SettingsCatalog");
    let accept = f.path().join("accept.toml");
    // Accept every LAPS difference between the two versions, with a reason and an expiry.
    let out = rm()
        .args([
            "conflicts",
            "--assume-all-devices",
            "--format",
            "json",
            "--org",
        ])
        .arg(f.path())
        .arg("--proposed")
        .arg(laps.join("Win - OIB - ES - Windows LAPS - D - LAPS Configuration - v3.1.json"))
        .arg("--proposed")
        .arg(
            laps.join("Win - OIB - ES - Windows LAPS - D - LAPS Configuration (24H2+) - v3.6.json"),
        )
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let ids: Vec<String> = json(&out)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["setting_id"].as_str().unwrap().to_string())
        .collect();
    assert!(!ids.is_empty());
    let toml: String = ids.iter().map(|id| format!("[[accept]]\nsetting = \"{id}\"\nreason = \"24H2 devices move to the new policy\"\nexpires = \"2027-03-31\"\n\n")).collect();
    std::fs::write(&accept, toml).unwrap();
    let run = |accept: &Path| {
        let mut c = rm();
        c.args(["conflicts", "--assume-all-devices", "--org"])
            .arg(f.path())
            .arg("--accept")
            .arg(accept);
        for p in [
            "Win - OIB - ES - Windows LAPS - D - LAPS Configuration - v3.1.json",
            "Win - OIB - ES - Windows LAPS - D - LAPS Configuration (24H2+) - v3.6.json",
        ] {
            c.arg("--proposed").arg(laps.join(p));
        }
        c
    };
    run(&accept)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "accepted until 2027-03-31: 24H2 devices move to the new policy",
        ));
    std::fs::write(
        &accept,
        "[[accept]]\nsetting = \"x\"\nreason = \"r\"\nexpires = \"31/03/2027\"\n",
    )
    .unwrap();
    run(&accept)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("accept.toml:4:"));
}

#[test]
fn csv_has_one_row_per_policy_value() {
    let Some(oib) = corpus_windows() else { return };
    let f = fleet();
    let out = rm()
        .args([
            "conflicts",
            "--assume-all-devices",
            "--format",
            "csv",
            "--org",
        ])
        .arg(f.path())
        .arg("--proposed")
        .arg(&oib)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "kind,setting_id,setting,policy_id,policy,value,proposed,devices,policy_devices,effective,accepted,maybe_default"
    );
    assert!(text.contains("conflict,device_vendor_msft_laps_policies_passwordcomplexity,"));
}

#[test]
fn bad_input_exits_two() {
    let f = fleet();
    rm().args(["conflicts", "--org"])
        .arg(f.path().join("nope"))
        .assert()
        .code(2);
    rm().args(["conflicts", "--isolated", "no such policy", "--org"])
        .arg(f.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no policy matches"));
}

#[test]
fn since_an_earlier_report_says_what_is_new_and_what_is_gone() {
    let d = tempfile::tempdir().unwrap();
    rm().args(["gen", "--devices", "2000", "--seed", "7", "--proposed"])
        .arg(d.path().join("new"))
        .arg(d.path().join("org"))
        .assert()
        .success();
    // Before the new baseline is imported.
    let before = rm()
        .args(["conflicts", "--format", "json", "--org"])
        .arg(d.path().join("org"))
        .output()
        .unwrap();
    std::fs::write(d.path().join("before.json"), &before.stdout).unwrap();
    // After: the baseline's conflicts with the LAPS and Defender policies are new
    // (compared as it would be assigned to all devices).
    let after = rm()
        .args([
            "conflicts",
            "--assume-all-devices",
            "--format",
            "json",
            "--org",
        ])
        .arg(d.path().join("org"))
        .arg("--proposed")
        .arg(d.path().join("new"))
        .arg("--since")
        .arg(d.path().join("before.json"))
        .output()
        .unwrap();
    let v = json(&after.stdout);
    let new = v["changes"]["new"].as_array().unwrap();
    assert!(!new.is_empty(), "{v}");
    assert!(
        new.iter().any(|k| k["setting_id"]
            .as_str()
            .unwrap()
            .contains("laps_policies_passwordlength")),
        "{new:?}"
    );
    // The same run again: nothing new, nothing gone.
    std::fs::write(d.path().join("after.json"), &after.stdout).unwrap();
    rm().args(["conflicts", "--assume-all-devices", "--org"])
        .arg(d.path().join("org"))
        .arg("--proposed")
        .arg(d.path().join("new"))
        .arg("--since")
        .arg(d.path().join("after.json"))
        .assert()
        .stdout(predicate::str::contains("0 new, 0 gone"));
    // A file that is not a report is refused, saying why.
    std::fs::write(d.path().join("x.json"), "{}").unwrap();
    rm().args(["conflicts", "--org"])
        .arg(d.path().join("org"))
        .arg("--since")
        .arg(d.path().join("x.json"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no `findings`"));
}

#[test]
fn a_custom_oma_uri_and_a_catalog_policy_meet_on_one_setting() {
    let f = fleet();
    let proposed = tempfile::tempdir().unwrap();
    // Written for this test: a custom profile writing Camera/AllowCamera 0
    // and a settings-catalog policy choosing AllowCamera 1 (allowed).
    std::fs::write(
        proposed.path().join("custom.json"),
        r##"{"@odata.type": "#microsoft.graph.windows10CustomConfiguration",
            "id": "c0ffee00-0000-4000-8000-000000000001", "displayName": "Camera off (OMA-URI)",
            "omaSettings": [{"@odata.type": "#microsoft.graph.omaSettingInteger",
              "omaUri": "./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera", "value": 0}]}"##,
    )
    .unwrap();
    std::fs::write(
        proposed.path().join("catalog.json"),
        r##"{"@odata.type": "#microsoft.graph.deviceManagementConfigurationPolicy",
            "id": "c0ffee00-0000-4000-8000-000000000002", "name": "Camera on (catalog)",
            "platforms": "windows10", "technologies": "mdm",
            "settings": [{"settingInstance": {
              "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
              "settingDefinitionId": "device_vendor_msft_policy_config_camera_allowcamera",
              "choiceSettingValue": {"value": "device_vendor_msft_policy_config_camera_allowcamera_1", "children": []}}}]}"##,
    )
    .unwrap();
    let out = rm()
        .args(["conflicts", "--assume-all-devices", "--org"])
        .arg(f.path())
        .arg("--proposed")
        .arg(proposed.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    for want in [
        "CONFLICT  Camera › Allow Camera",
        "id: device_vendor_msft_policy_config_camera_allowcamera",
        "Camera off (OMA-URI)",
        "Camera on (catalog)",
        "set as omauri:./device/vendor/msft/policy/config/camera/allowcamera",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
}

#[test]
fn settings_the_windows_version_does_not_support_are_listed_and_do_not_block() {
    let f = fleet();
    let proposed = tempfile::tempdir().unwrap();
    // Written for this test: one catalog setting the catalog lists for
    // Windows 10.0.22621 and later (Windows Hello enhanced sign-in security
    // with supported peripherals).
    std::fs::write(
        proposed.path().join("ess.json"),
        r##"{"@odata.type": "#microsoft.graph.deviceManagementConfigurationPolicy",
            "id": "c0ffee00-0000-4000-8000-000000000003", "name": "ESS peripherals",
            "platforms": "windows10", "technologies": "mdm",
            "settings": [{"settingInstance": {
              "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
              "settingDefinitionId": "device_vendor_msft_passportforwork_biometrics_enableesswithsupportedperipherals",
              "choiceSettingValue": {"value": "device_vendor_msft_passportforwork_biometrics_enableesswithsupportedperipherals_1", "children": []}}}]}"##,
    )
    .unwrap();
    // Every managed Windows device of the fleet older than 10.0.22621.
    let devices = std::fs::read_to_string(f.path().join("managedDevices.ndjson")).unwrap();
    let older = devices
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|d| d["operatingSystem"] == "Windows")
        .filter(|d| {
            let v: Vec<u64> = d["osVersion"]
                .as_str()
                .unwrap()
                .split('.')
                .map(|p| p.parse().unwrap())
                .collect();
            v < vec![10, 0, 22621]
        })
        .count();
    assert!(older > 0, "the fleet has Windows 10 devices");
    let run = |format: &str| {
        rm().args([
            "conflicts",
            "--assume-all-devices",
            "--format",
            format,
            "--org",
        ])
        .arg(f.path())
        .arg("--proposed")
        .arg(proposed.path())
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone()
    };
    let v = json(&run("json"));
    let na = v["settings_not_applicable"].as_array().unwrap();
    assert_eq!(na.len(), 1, "{na:?}");
    assert_eq!(
        na[0]["setting_id"],
        "device_vendor_msft_passportforwork_biometrics_enableesswithsupportedperipherals"
    );
    assert_eq!(na[0]["reason"], "needs Windows 10.0.22621 or later");
    assert_eq!(na[0]["devices"], older as u64);
    let text = String::from_utf8(run("text")).unwrap();
    assert!(text.contains("SETTINGS NOT APPLICABLE"), "{text}");
    assert!(text.contains("ESS peripherals: "), "{text}");
}
