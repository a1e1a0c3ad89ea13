//! Intune scope tags (`roleScopeTagIds`) on policies and managed devices,
//! in every export format of the corpus that carries them.

use ringmaster_core::model::DeviceMulti;
use ringmaster_import::load;
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn policies_and_managed_devices_keep_their_tags() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "managedDevices.json",
        r#"{"value":[
        {"id":"m1","deviceName":"PAR-1","operatingSystem":"Windows","roleScopeTagIds":["3"]},
        {"id":"m2","deviceName":"LYO-1","operatingSystem":"Windows","roleScopeTagIds":["4","0","4"]},
        {"id":"m3","deviceName":"OLD-1","operatingSystem":"Windows"}]}"#,
    );
    write(
        d.path(),
        "configurationPolicies.json",
        r#"{"value":[
        {"id":"p1","name":"Paris baseline","platforms":"windows10","technologies":"mdm","roleScopeTagIds":["3"],"settings":[]},
        {"id":"p2","name":"Untagged","platforms":"windows10","technologies":"mdm","settings":[]}]}"#,
    );
    let l = load(&[d.path().to_path_buf()]).unwrap();
    let org = &l.org;
    let tags = |name: &str| {
        let row = org.find_devices(name)[0];
        org.devices.multi[DeviceMulti::ScopeTags.index()]
            .values(row)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(tags("PAR-1"), ["3"]);
    assert_eq!(tags("LYO-1"), ["4", "0"]);
    assert!(tags("OLD-1").is_empty());
    let p = |id: &str| &org.policies[org.policy(id).unwrap()];
    assert_eq!(p("p1").scope_tags, ["3"]);
    assert!(p("p2").scope_tags.is_empty());
}

#[test]
fn an_empty_tag_names_file_and_field() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "deviceConfigurations.json",
        r##"{"value":[{"id":"c1","displayName":"X","@odata.type":"#microsoft.graph.windows10GeneralConfiguration","roleScopeTagIds":["0"," "]}]}"##,
    );
    let Err(e) = load(&[d.path().to_path_buf()]) else {
        panic!("an empty tag was taken");
    };
    let text = e.to_string();
    assert!(text.contains("deviceConfigurations.json"), "{text}");
    assert!(text.contains("roleScopeTagIds[1]"), "{text}");
    assert!(text.contains("needs an id"), "{text}");
}

/// Every corpus format that carries `roleScopeTagIds`: Graph JSON (settings
/// catalog, legacy profiles, compliance) and CIPP templates (the tags inside
/// `RAWJson`). The Microsoft365DSC examples with `RoleScopeTagIds` are all of
/// resources the import passes over, so none is listed here.
#[test]
fn corpus_formats_carry_tags_into_policies() {
    let Some(root) = ringmaster_import::corpus("exports") else {
        return;
    };
    for (dir, want) in [
        (
            "aaronparker+intune-baseline/windows/SettingsCatalog",
            &["0", "1"][..],
        ),
        (
            "Azure+securedworkstation/ENT/JSON/DeviceConfiguration",
            &["0"],
        ),
        ("Azure+securedworkstation/ENT/JSON/DeviceCompliance", &["0"]),
        ("KelvinTegelaar+CIPP-API/Config", &["0"]),
        ("microsoft+intune-my-macs/configurations/intune", &["0"]),
    ] {
        let l = load(&[root.join(dir)]).unwrap_or_else(|e| panic!("{dir}: {e}"));
        let tagged: Vec<_> = l
            .org
            .policies
            .iter()
            .filter(|p| !p.scope_tags.is_empty())
            .collect();
        assert!(!tagged.is_empty(), "{dir}: no policy kept its scope tags");
        assert!(
            tagged.iter().any(|p| p
                .scope_tags
                .iter()
                .map(String::as_str)
                .eq(want.iter().copied())),
            "{dir}: no policy tagged {want:?}"
        );
    }
}

/// IntuneCD writes the tags' names where Graph has ids; they are kept as
/// written and matched by name.
#[test]
fn intunecd_tags_are_names() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/intunecd/backup");
    let l = load(&[dir]).unwrap();
    let tagged: Vec<&str> = l
        .org
        .policies
        .iter()
        .flat_map(|p| p.scope_tags.iter().map(String::as_str))
        .collect();
    assert!(!tagged.is_empty());
    assert!(tagged.iter().all(|t| *t == "Default"), "{tagged:?}");
}
