use ringmaster_core::model::*;
use ringmaster_core::targeting::resolve;
use ringmaster_import::{ImportError, load};
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn err(dir: &Path) -> ImportError {
    match load(&[dir.to_path_buf()]) {
        Ok(_) => panic!("load accepted bad input"),
        Err(e) => e,
    }
}

fn now() -> jiff::Timestamp {
    "2026-11-24T12:00:00Z".parse().unwrap()
}

#[test]
fn graph_pages_join_entra_and_intune_devices() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "users.json",
        r#"{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users","@odata.nextLink":"x","value":[
        {"id":"u1","userPrincipalName":"ada@contoso.com","department":"Sales","accountEnabled":true,"onPremisesExtensionAttributes":{"extensionAttribute3":"EMEA"},"manager":{"id":"u9"}}]}"#,
    );
    write(
        d.path(),
        "managedDevices.json",
        r#"{"@odata.context":"https://graph.microsoft.com/beta/$metadata#deviceManagement/managedDevices","value":[
        {"id":"m1","deviceName":"PC-1","azureADDeviceId":"aad-1","operatingSystem":"Windows","osVersion":"10.0.22631.4317","managedDeviceOwnerType":"company","joinType":"hybridAzureADJoined","userId":"u1","model":"Latitude 7440"},
        {"id":"m2","deviceName":"IPAD-1","azureADDeviceId":"00000000-0000-0000-0000-000000000000","operatingSystem":"iOS","model":"iPad Air","managedDeviceOwnerType":"personal"}]}"#,
    );
    write(
        d.path(),
        "devices.json",
        r#"{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#devices","value":[
        {"id":"obj-1","deviceId":"aad-1","displayName":"PC-1","operatingSystem":"Windows","trustType":"ServerAd","physicalIds":["[ZTDID]abc"],"extensionAttributes":{"extensionAttribute1":"SAW"},"model":"Entra model"}]}"#,
    );
    let l = load(&[d.path().to_path_buf()]).unwrap();
    let o = &l.org;
    assert_eq!(
        o.devices.rows, 2,
        "the Entra and Intune records of PC-1 are one device"
    );
    let pc = o.find_devices("PC-1")[0];
    assert_eq!(o.device(DeviceAttr::EntraObjectId, pc), Some("obj-1"));
    assert_eq!(o.device(DeviceAttr::ManagedId, pc), Some("m1"));
    assert_eq!(o.device(DeviceAttr::Ownership, pc), Some("company"));
    assert_eq!(o.device(DeviceAttr::TrustType, pc), Some("ServerAD"));
    assert_eq!(o.device(DeviceAttr::Ext(1), pc), Some("SAW"));
    // Intune's model wins: it is what filters see.
    assert_eq!(o.device(DeviceAttr::Model, pc), Some("Latitude 7440"));
    assert_eq!(o.device_user[pc as usize], 0);
    let ipad = o.find_devices("ipad-1")[0];
    assert_eq!(o.device(DeviceAttr::Platform, ipad), Some("iPadOS"));
    assert_eq!(
        o.device(DeviceAttr::DeviceId, ipad),
        None,
        "an all-zero azureADDeviceId is no id"
    );
    assert_eq!(o.user(UserAttr::Ext(3), 0), Some("EMEA"));
    assert_eq!(o.user(UserAttr::Manager, 0), Some("u9"));
}

#[test]
fn utf16_with_bom_and_crlf_loads() {
    let d = tempfile::tempdir().unwrap();
    let text = "{\r\n  \"@odata.type\": \"#microsoft.graph.deviceAndAppManagementAssignmentFilter\",\r\n  \"id\": \"f1\",\r\n  \"displayName\": \"Surface – Geräte\",\r\n  \"platform\": \"windows10AndLater\",\r\n  \"rule\": \"(device.model -startsWith \\\"Surface\\\")\"\r\n}\r\n";
    let bytes: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(|u| u.to_le_bytes()))
        .collect();
    std::fs::write(d.path().join("filter.json"), bytes).unwrap();
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(br##"{"@odata.type":"#microsoft.graph.group","id":"g1","displayName":"G","groupTypes":["DynamicMembership"],"membershipRule":"device.deviceOSType -eq \"Windows\"","members@odata.navigationLink":"noise"}"##);
    std::fs::write(d.path().join("group.json"), bom).unwrap();
    let l = load(&[d.path().to_path_buf()]).unwrap();
    assert_eq!(l.org.filters[0].name, "Surface – Geräte");
    assert!(matches!(l.org.groups[0].kind, GroupKind::Dynamic { .. }));
}

#[test]
fn policies_with_assignments_and_filters() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "p.json",
        r##"{"@odata.type":"#microsoft.graph.windows10CompliancePolicy","id":"p1","displayName":"Win compliance",
        "assignments@odata.context":"noise",
        "assignments":[
          {"target":{"@odata.type":"#microsoft.graph.groupAssignmentTarget","groupId":"g1","deviceAndAppManagementAssignmentFilterId":"f1","deviceAndAppManagementAssignmentFilterType":"exclude"}},
          {"target":{"@odata.type":"#microsoft.graph.exclusionGroupAssignmentTarget","groupId":"g2"}},
          {"target":{"@odata.type":"#microsoft.graph.allDevicesAssignmentTarget","deviceAndAppManagementAssignmentFilterType":"none"}},
          {"target":{"groupId":"acacacac-9df4-4c7d-9d50-4ef0226f57a9"}}]}"##,
    );
    let l = load(&[d.path().to_path_buf()]).unwrap();
    let p = &l.org.policies[0];
    assert_eq!(p.kind, PolicyKind::Compliance);
    assert_eq!(p.platforms, vec![Platform::Windows]);
    assert_eq!(
        p.assignments[0].filter,
        Some(AssignmentFilter {
            filter_id: "f1".into(),
            mode: FilterMode::Exclude
        })
    );
    assert_eq!(p.assignments[1].target, Target::ExcludeGroup("g2".into()));
    assert_eq!(p.assignments[2].target, Target::AllDevices);
    assert_eq!(p.assignments[3].target, Target::AllUsers);
}

#[test]
fn bad_records_name_file_record_and_field() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "users.json",
        r#"{"value":[{"id":"u1"},{"id":"u2","accountEnabled":{"x":1}}]}"#,
    );
    let e = err(d.path());
    assert!(e.file.ends_with("users.json"));
    assert_eq!(e.record, Some(2));
    assert_eq!(e.field.as_deref(), Some("accountEnabled"));
    assert!(
        e.to_string()
            .contains("users.json, record 2, field `accountEnabled`"),
        "{e}"
    );
}

#[test]
fn bad_ndjson_line_names_the_line() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "managedDevices.ndjson",
        "{\"id\":\"m1\",\"deviceName\":\"a\"}\n\n{\"id\":\"m2\",\"osVersion\":5}\n",
    );
    let e = err(d.path());
    assert_eq!(
        (e.record, e.line, e.field.as_deref()),
        (Some(2), Some(3), Some("osVersion")),
        "{e}"
    );
    write(
        d.path(),
        "managedDevices.ndjson",
        "{\"id\":\"m1\"}\n{\"id\":\n",
    );
    let e = err(d.path());
    assert_eq!(e.line, Some(2), "{e}");
}

#[test]
fn invalid_rules_in_exports_are_import_errors() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "groups.json",
        r#"{"value":[{"id":"g1","displayName":"Bad","groupTypes":["DynamicMembership"],"membershipRule":"(device.deviceOSType -eq \"Windows\""}]}"#,
    );
    let e = err(d.path());
    assert_eq!(e.field.as_deref(), Some("membershipRule"));
    assert!(
        e.message.contains("never closed") && e.message.contains("column 1"),
        "{e}"
    );

    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "assignmentFilters.json",
        r#"{"value":[{"id":"f","displayName":"F","platform":"iOS","rule":"(device.deviceOwnership -eq \"Corporate\") and (device.model -endsWith \"Pro\")"}]}"#,
    );
    let e = err(d.path());
    assert_eq!(e.field.as_deref(), Some("rule"));
    assert!(
        e.message
            .contains("-endsWith is not allowed for device.model"),
        "{e}"
    );

    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "p.json",
        r##"{"@odata.type":"#microsoft.graph.deviceManagementConfigurationPolicy","name":"P","assignments":[{"target":{"@odata.type":"#microsoft.graph.somethingNew","groupId":"g"}}]}"##,
    );
    let e = err(d.path());
    assert_eq!(
        e.field.as_deref(),
        Some("assignments[0].target.@odata.type"),
        "{e}"
    );
}

/// `extension_<app id>_<name>` keys on users and devices feed dynamic rules.
#[test]
fn graph_directory_extension_properties_reach_dynamic_rules() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "users.json",
        r#"{"value":[
        {"id":"u1","userPrincipalName":"ada@contoso.com","extension_9d98ed114c4840d298fad781915f27e4_division":"Sales and marketing","extension_9d98ed114c4840d298fad781915f27e4_floor":3,"extension_9d98ed114c4840d298fad781915f27e4_skills":["a","b"],"extension_nope":"x"},
        {"id":"u2","userPrincipalName":"bob@contoso.com","extension_9d98ed114c4840d298fad781915f27e4_division":null}]}"#,
    );
    write(
        d.path(),
        "devices.json",
        r#"{"value":[
        {"id":"obj-1","deviceId":"aad-1","displayName":"PC-1","extension_9d98ed114c4840d298fad781915f27e4_site":"Lagos"},
        {"id":"obj-2","deviceId":"aad-2","displayName":"PC-2","extension_9d98ed114c4840d298fad781915f27e4_site":true}]}"#,
    );
    write(
        d.path(),
        "groups.json",
        r#"{"value":[
        {"id":"g1","displayName":"Sales","groupTypes":["DynamicMembership"],"membershipRule":"user.extension_9d98ed114c4840d298fad781915f27e4_division -startsWith \"Sales\""},
        {"id":"g2","displayName":"Lagos","groupTypes":["DynamicMembership"],"membershipRule":"device.EXTENSION_9d98ed114c4840d298fad781915f27e4_Site -eq \"lagos\""},
        {"id":"g3","displayName":"Floor 3","groupTypes":["DynamicMembership"],"membershipRule":"user.extension_9d98ed114c4840d298fad781915f27e4_floor -eq \"3\""}]}"#,
    );
    let l = load(&[d.path().to_path_buf()]).unwrap();
    let o = &l.org;
    let users = |name: &str| {
        o.users
            .ext_column(name)
            .map(|c| c.get(0).map(str::to_string))
    };
    assert_eq!(
        users("extension_9d98ed114c4840d298fad781915f27e4_division"),
        Some(Some("Sales and marketing".into()))
    );
    // Multi-valued extensions cannot appear in rules; malformed names are not extensions.
    assert!(users("extension_9d98ed114c4840d298fad781915f27e4_skills").is_none());
    assert!(users("extension_nope").is_none());
    let pc2 = o.find_devices("PC-2")[0];
    let site = o
        .devices
        .ext_column("extension_9d98ed114c4840d298fad781915f27e4_site")
        .unwrap();
    assert_eq!(site.get(pc2), Some("true"));
    let r = resolve(o, now());
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    assert_eq!(r.group_users[0].iter().collect::<Vec<_>>(), vec![0]);
    assert_eq!(
        r.group_devices[1].iter().collect::<Vec<_>>(),
        vec![o.find_devices("PC-1")[0]]
    );
    assert_eq!(r.group_users[2].iter().collect::<Vec<_>>(), vec![0]);
}

#[test]
fn csv_users_devices_and_members() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "users.csv",
        "id,userPrincipalName,department,vip,itStaff\nu1,ada@contoso.com,IT,false,true\nu2,ceo@contoso.com,Executive,yes,no\n",
    );
    write(
        d.path(),
        "devices.csv",
        "id,deviceName,platform,osVersion,ownership,primaryUser,lab\nd1,PC-1,Windows,10.0.26100.1,Corporate,u1,false\nd2,LAB-1,windows,10.0.19045.1,company,,true\n",
    );
    write(
        d.path(),
        "members.csv",
        "groupId,memberId,memberType\ng1,d1,device\ng1,u2,user\n",
    );
    write(
        d.path(),
        "groups.json",
        r#"{"value":[{"id":"g1","displayName":"Pilot","securityEnabled":true}]}"#,
    );
    let l = load(&[d.path().to_path_buf()]).unwrap();
    let r = resolve(&l.org, now());
    assert_eq!(r.group_devices[0].len(), 1);
    assert_eq!(r.group_users[0].len(), 1);
    assert_eq!(l.org.user(UserAttr::IsVip, 1), Some("true"));
    assert_eq!(l.org.device(DeviceAttr::IsLab, 1), Some("true"));

    write(
        d.path(),
        "devices.csv",
        "id,deviceName,platform\nd1,PC-1,Windows\nd2,PC-2,Windoze\n",
    );
    let e = err(d.path());
    assert_eq!(
        (e.record, e.line, e.field.as_deref()),
        (Some(2), Some(3), Some("platform")),
        "{e}"
    );
    assert!(e.message.contains("Windoze"));
}

#[test]
fn unrecognised_files_are_skipped_in_folders_but_refused_by_name() {
    let d = tempfile::tempdir().unwrap();
    let notes = write(d.path(), "notes.csv", "setting,reason\na,b\n");
    write(d.path(), "users.json", r#"{"value":[{"id":"u1"}]}"#);
    let l = load(&[d.path().to_path_buf()]).unwrap();
    assert_eq!(l.report.skipped.len(), 1, "{:?}", l.report.skipped);
    let e = load(&[notes]).err().unwrap();
    assert!(e.message.contains("cannot tell what this CSV holds"), "{e}");
    let txt = write(d.path(), "readme.txt", "hello");
    let e = load(&[txt]).err().unwrap();
    assert!(
        e.message
            .contains("expected .json, .ndjson, .jsonl or .csv"),
        "{e}"
    );
}

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "corpus missing at {}",
        p.display()
    );
    None
}

#[test]
fn the_real_corpus_loads() {
    let Some(c) = corpus() else { return };
    let l = load(&[c]).unwrap();
    let o = &l.org;
    assert!(o.policies.len() >= 100, "{} policies", o.policies.len());
    assert_eq!(o.filters.len(), 24);
    assert!(
        o.groups
            .iter()
            .filter(|g| matches!(g.kind, GroupKind::Dynamic { .. }))
            .count()
            >= 40
    );
    let laps: Vec<_> = o
        .policies
        .iter()
        .filter(|p| p.name.contains("LAPS"))
        .collect();
    assert_eq!(laps.len(), 2);
    assert!(
        laps.iter().all(
            |p| p.platforms == vec![Platform::Windows] && p.kind == PolicyKind::SettingsCatalog
        )
    );
    assert_eq!(
        laps[0].template_family.as_deref(),
        Some("endpointSecurityAccountProtection")
    );
    // The macOS and W365 policies exported twice (IntuneManagement and NativeImport) are read once.
    assert!(l.report.warnings.iter().any(|w| w.contains("already read")));
}

#[test]
fn generated_org_explain_agrees_with_targets() {
    let d = tempfile::tempdir().unwrap();
    ringmaster_gen::generate(d.path(), &ringmaster_gen::Options::new(3000, 42)).unwrap();
    let l = load(&[d.path().to_path_buf()]).unwrap();
    let o = &l.org;
    assert_eq!(o.devices.rows, 3000);
    let r = resolve(o, now());
    assert!(
        r.diagnostics
            .iter()
            .all(|d| d.severity != ringmaster_core::targeting::Severity::Error),
        "{:?}",
        r.diagnostics
    );
    let win = o.find_groups("Intune - Windows Devices")[0];
    assert!(r.group_devices[win].len() > 1000);
    // Every device in a nested parent is in one of its children.
    let all_sales = o.find_groups("All Sales Devices")[0];
    assert!(!r.group_devices[all_sales].is_empty());
    for row in (0..o.devices.rows).step_by(7) {
        let e = ringmaster_core::explain::explain_device(o, &r, row, None, now());
        for (p, pe) in e.policies.iter().enumerate() {
            let reached = r.policies[p].devices.contains(row);
            let na = r.policies[p].not_applicable.contains(row);
            use ringmaster_core::explain::Status::*;
            let ok = match pe.status {
                Included => reached && !na,
                NotApplicable => reached && na,
                Excluded | NotTargeted => !reached,
            };
            assert!(
                ok,
                "device {row} policy {}: explain {:?} ({}) vs bitmap {reached}",
                o.policies[p].name, pe.status, pe.reason
            );
        }
    }
}

#[test]
fn applicability_rules_make_devices_not_applicable() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "managedDevices.json",
        r#"{"value":[
        {"id":"m1","deviceName":"ENT-W11","operatingSystem":"Windows","osVersion":"10.0.22631.4317","skuFamily":"Enterprise"},
        {"id":"m2","deviceName":"PRO-W11","operatingSystem":"Windows","osVersion":"10.0.22631.4317","skuFamily":"Professional"},
        {"id":"m3","deviceName":"ENT-W10","operatingSystem":"Windows","osVersion":"10.0.19045.5011","skuFamily":"Enterprise"},
        {"id":"m4","deviceName":"UNKNOWN","operatingSystem":"Windows"}]}"#,
    );
    write(
        d.path(),
        "p.json",
        r##"{"@odata.type":"#microsoft.graph.windows10GeneralConfiguration","id":"p","displayName":"Edition and version bound",
        "deviceManagementApplicabilityRuleOsEdition":{"osEditionTypes":["windows10Enterprise","windows10EnterpriseN"],"ruleType":"include"},
        "deviceManagementApplicabilityRuleOsVersion":{"minOSVersion":"10.0.22000","maxOSVersion":null,"ruleType":"include"},
        "assignments":[{"target":{"@odata.type":"#microsoft.graph.allDevicesAssignmentTarget"}}]}"##,
    );
    let l = load(&[d.path().to_path_buf()]).unwrap();
    let r = resolve(&l.org, now());
    let na: Vec<&str> = r.policies[0]
        .not_applicable
        .iter()
        .map(|row| l.org.device(DeviceAttr::Name, row).unwrap())
        .collect();
    assert_eq!(
        na,
        vec!["PRO-W11", "ENT-W10"],
        "unknown edition and version are not judged"
    );
    assert_eq!(
        r.policies[0].not_applicable_by_platform,
        vec![("OS edition".to_string(), 1), ("OS version".to_string(), 1)]
    );
    let e = ringmaster_core::explain::explain_device(
        &l.org,
        &r,
        l.org.find_devices("ENT-W10")[0],
        None,
        now(),
    );
    assert!(
        e.policies[0]
            .reason
            .contains("OS version rule allows only 10.0.22000–any"),
        "{}",
        e.policies[0].reason
    );

    write(
        d.path(),
        "p.json",
        r##"{"@odata.type":"#microsoft.graph.windows10GeneralConfiguration","id":"p","displayName":"Bad",
        "deviceManagementApplicabilityRuleOsVersion":{"minOSVersion":"ten","ruleType":"include"}}"##,
    );
    let e = err(d.path());
    assert_eq!(
        e.field.as_deref(),
        Some("deviceManagementApplicabilityRuleOsVersion.minOSVersion"),
        "{e}"
    );
}
