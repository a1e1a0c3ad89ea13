//! `--scope-tag` on `conflicts`, `explain` and `plan`: a delegated
//! administrator's view, with what lies outside counted and named.

use assert_cmd::Command;
use std::path::Path;

fn rm() -> Command {
    let mut c = Command::cargo_bin("ringmaster").unwrap();
    c.env("RINGMASTER_NOW", "2026-11-24T12:00:00Z");
    c
}

/// Written for this test: four Windows devices (two tagged Paris = 3, one
/// Lyon = 4, one untagged) and three catalog policies on all devices that
/// disagree on the camera: A and B tagged Paris, C tagged Lyon.
fn tenant(dir: &Path) {
    std::fs::write(
        dir.join("managedDevices.json"),
        r#"{"value":[
        {"id":"m1","deviceName":"PAR-1","azureADDeviceId":"a1","operatingSystem":"Windows","osVersion":"10.0.22631.1","roleScopeTagIds":["3"]},
        {"id":"m2","deviceName":"PAR-2","azureADDeviceId":"a2","operatingSystem":"Windows","osVersion":"10.0.22631.1","roleScopeTagIds":["3","4"]},
        {"id":"m3","deviceName":"LYO-1","azureADDeviceId":"a3","operatingSystem":"Windows","osVersion":"10.0.22631.1","roleScopeTagIds":["4"]},
        {"id":"m4","deviceName":"OLD-1","azureADDeviceId":"a4","operatingSystem":"Windows","osVersion":"10.0.22631.1"}]}"#,
    )
    .unwrap();
    let policy = |id: &str, name: &str, tags: &str, value: u8| {
        format!(
            r##"{{"@odata.type":"#microsoft.graph.deviceManagementConfigurationPolicy","id":"{id}","name":"{name}",
            "platforms":"windows10","technologies":"mdm","roleScopeTagIds":{tags},
            "assignments":[{{"target":{{"@odata.type":"#microsoft.graph.allDevicesAssignmentTarget"}}}}],
            "settings":[{{"settingInstance":{{
              "@odata.type":"#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
              "settingDefinitionId":"device_vendor_msft_policy_config_camera_allowcamera",
              "choiceSettingValue":{{"value":"device_vendor_msft_policy_config_camera_allowcamera_{value}","children":[]}}}}}}]}}"##
        )
    };
    for (file, text) in [
        ("a.json", policy("pa", "Camera off A", r#"["3"]"#, 0)),
        ("b.json", policy("pb", "Camera on B", r#"["3"]"#, 1)),
        ("c.json", policy("pc", "Camera on C", r#"["4"]"#, 1)),
    ] {
        std::fs::write(dir.join(file), text).unwrap();
    }
}

fn stdout(c: &mut Command, code: i32) -> String {
    String::from_utf8(c.assert().code(code).get_output().stdout.clone()).unwrap()
}

#[test]
fn conflicts_within_a_tag_analyse_its_policies_on_its_devices() {
    let d = tempfile::tempdir().unwrap();
    tenant(d.path());
    let v: serde_json::Value = serde_json::from_str(&stdout(
        rm().args(["conflicts", "--format", "json", "--scope-tag", "3", "--org"])
            .arg(d.path()),
        1,
    ))
    .unwrap();
    let f = &v["findings"][0];
    assert_eq!(f["kind"], "conflict");
    // A against B, on the two Paris devices only; C is outside the tag.
    assert_eq!(f["devices"], 2);
    let ids: Vec<&str> = f["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["policy_id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"pc"), "{ids:?}");
    assert_eq!(
        v["scope_tag"]["policies_outside"],
        serde_json::json!(["pc"])
    );
    assert_eq!(v["scope_tag"]["devices_outside"], 2);

    let text = stdout(
        rm().args(["conflicts", "--scope-tag", "3", "--org"])
            .arg(d.path()),
        1,
    );
    for want in [
        "Within scope tag 3: 2 policies, 2 devices.",
        "1 policy outside scope tag 3: 'Camera on C'",
        "2 devices outside scope tag 3: LYO-1, OLD-1",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }

    // Within Lyon, C stands alone: nothing to conflict with.
    let text = stdout(
        rm().args(["conflicts", "--scope-tag", "4", "--org"])
            .arg(d.path()),
        0,
    );
    assert!(text.contains("2 policies outside scope tag 4"), "{text}");

    // A name where the export holds ids matches nothing: said, not guessed.
    let err = rm()
        .args(["conflicts", "--scope-tag", "Paris", "--org"])
        .arg(d.path())
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(err).unwrap();
    assert!(
        err.contains("no policy or device carries scope tag 'Paris'"),
        "{err}"
    );
}

#[test]
fn explain_within_a_tag_refuses_devices_outside_and_names_policies_outside() {
    let d = tempfile::tempdir().unwrap();
    tenant(d.path());
    let text = stdout(
        rm().args(["explain", "--device", "PAR-1", "--scope-tag", "3", "--org"])
            .arg(d.path()),
        0,
    );
    assert!(
        text.contains("1 of the policies above are outside scope tag 3 (its administrators cannot see or change them): Camera on C"),
        "{text}"
    );
    let err = rm()
        .args(["explain", "--device", "LYO-1", "--scope-tag", "3", "--org"])
        .arg(d.path())
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(err).unwrap();
    assert!(
        err.contains("is outside scope tag 3 (its tags: 4)"),
        "{err}"
    );
}

#[test]
fn plan_within_a_tag_names_it_and_refuses_unknown_names() {
    let d = tempfile::tempdir().unwrap();
    rm().args(["gen", "--devices", "500", "--proposed"])
        .arg(d.path().join("new"))
        .arg(d.path().join("org"))
        .assert()
        .success();
    let file = d.path().join("rollout/ringmaster.toml");
    rm().args(["init", "--org"])
        .arg(d.path().join("org"))
        .arg("--new")
        .arg(d.path().join("new"))
        .arg("--out")
        .arg(&file)
        .args(["--name", "Baseline 2027", "--time-zone", "Europe/Amsterdam"])
        .assert()
        .code(1);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        format!("[[scope_tags]]\nname = \"Paris\"\nid = \"3\"\n\n{text}"),
    )
    .unwrap();
    // Generated devices and policies carry no tags: all are Default's.
    let out = String::from_utf8(
        rm().arg("plan")
            .arg(&file)
            .args(["--scope-tag", "default"])
            .assert()
            .code(1)
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    for want in [
        "within scope tag Default (0)",
        "scope tags the new policies carry: Paris (3)",
        "no device in the import carries roleScopeTagIds",
    ] {
        assert!(out.contains(want), "{want} missing from:\n{out}");
    }
    // None is Paris's: said at once, with what lies outside.
    let err = String::from_utf8(
        rm().arg("plan")
            .arg(&file)
            .args(["--scope-tag", "paris"])
            .assert()
            .code(2)
            .get_output()
            .stderr
            .clone(),
    )
    .unwrap();
    for want in [
        "--scope-tag: no managed device carries scope tag Paris (3)",
        "devices outside scope tag Paris (3): ",
        "policies outside scope tag Paris (3): ",
    ] {
        assert!(err.contains(want), "{want} missing from:\n{err}");
    }
    let err = String::from_utf8(
        rm().arg("plan")
            .arg(&file)
            .args(["--scope-tag", "Lyon"])
            .assert()
            .code(2)
            .get_output()
            .stderr
            .clone(),
    )
    .unwrap();
    assert!(
        err.contains("--scope-tag: no scope tag named `Lyon`; the plan names Paris (3)"),
        "{err}"
    );
}
