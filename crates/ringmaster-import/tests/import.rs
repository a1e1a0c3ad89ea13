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
fn unrecognised_files_are_skipped_and_listed_in_folders_and_by_name() {
    let d = tempfile::tempdir().unwrap();
    let notes = write(d.path(), "notes.csv", "setting,reason\na,b\n");
    write(d.path(), "users.json", r#"{"value":[{"id":"u1"}]}"#);
    let l = load(&[d.path().to_path_buf()]).unwrap();
    assert_eq!(l.report.skipped.len(), 1, "{:?}", l.report.skipped);
    // Named directly, the same files are listed, not fatal.
    let txt = write(d.path(), "readme.txt", "hello");
    let users = d.path().join("users.json");
    let l = load(&[notes, txt, users]).unwrap();
    assert_eq!(l.org.users.rows, 1);
    let skipped = l.report.skipped.join("\n");
    assert!(
        skipped.contains("notes.csv: a CSV without the columns"),
        "{skipped}"
    );
    assert!(
        skipped.contains("readme.txt: not a format ringmaster reads"),
        "{skipped}"
    );
}

#[test]
fn syntax_errors_point_at_file_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "users.json",
        "{\"value\": [\n  {\"id\" \"u1\"}\n]}",
    );
    let e = err(d.path());
    assert_eq!((e.line, e.column), (Some(2), Some(9)), "{e}");
    assert!(e.to_string().contains("users.json:2:9"), "{e}");
}

fn corpus() -> Option<PathBuf> {
    ringmaster_import::corpus("")
}

#[test]
fn the_real_corpus_loads() {
    let Some(c) = corpus() else { return };
    let l = load(&[c]).unwrap();
    let o = &l.org;
    assert!(o.policies.len() >= 100, "{} policies", o.policies.len());
    // OpenIntuneBaseline and IntuneHydrationKit 24, aaronparker's 6, the
    // PowerShell samples' 3 and Microsoft365DSC's 1.
    assert_eq!(o.filters.len(), 34);
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
        .filter(|p| p.name.contains("LAPS") && p.source.contains("OpenIntuneBaseline"))
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

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/intunecd")
        .join(name)
}

fn names(o: &Org, rows: impl IntoIterator<Item = u32>) -> Vec<String> {
    let mut v: Vec<String> = rows
        .into_iter()
        .map(|r| o.device(DeviceAttr::Name, r).unwrap_or("?").to_string())
        .collect();
    v.sort();
    v
}

use ringmaster_core::org::Org;

#[test]
fn intunecd_backup_reaches_the_devices_of_groups_named_in_targets() {
    // An IntuneCD backup beside a Graph export of the directory: targets
    // name groups and the filter by display name only.
    let l = load(&[fixture("directory"), fixture("backup")]).unwrap();
    let o = &l.org;
    let mut got: Vec<(&str, &str, PolicyKind, usize)> = o
        .policies
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.id.as_str(),
                p.kind.clone(),
                p.assignments.len(),
            )
        })
        .collect();
    got.sort_by_key(|g| g.0);
    assert_eq!(
        got,
        vec![
            (
                "Win - Compliance",
                "Win - Compliance_windows10CompliancePolicy",
                PolicyKind::Compliance,
                1
            ),
            (
                "Win - Defender",
                "Win - Defender_mdm",
                PolicyKind::SettingsCatalog,
                2
            ),
            (
                "Win - Edge",
                "Win - Edge_mdm",
                PolicyKind::SettingsCatalog,
                2
            ),
            (
                "Win - Wi-Fi",
                "Win - Wi-Fi_windowsWifiConfiguration",
                PolicyKind::DeviceConfiguration,
                1
            ),
        ],
        "the report confirms every assignment and doubles none"
    );
    let defender = &o.policies[o.find_policies("Win - Defender")[0]];
    assert_eq!(
        defender.assignments[0],
        Assignment {
            target: Target::Group("6f1d2c3b-0a9e-4f5d-8c7b-1a2b3c4d5e6f".into()),
            filter: Some(AssignmentFilter {
                filter_id: "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d".into(),
                mode: FilterMode::Include
            })
        },
        "'finance laptops' is the imported 'Finance Laptops'; the filter name is the filter"
    );
    let mut groups: Vec<(&str, bool)> = o
        .groups
        .iter()
        .map(|g| (g.name.as_str(), matches!(g.kind, GroupKind::Dynamic { .. })))
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        vec![
            ("All Windows", true),
            ("Finance Laptops", false),
            ("Helpdesk", false),
            ("Kiosks", true),
            ("Marketing", false)
        ]
    );
    let skipped = l.report.skipped.join("\n");
    for why in [
        "iOS - APP_iosManagedAppProtection.json: app protection policies are not modelled",
        "Rename devices.json: scripts are not modelled",
        "authorizationPolicy.json: Entra ID tenant settings are not modelled",
        "Win - Old_windows10CompliancePolicy.json: objects IntuneCD archived",
    ] {
        assert!(skipped.contains(why), "{why} not in\n{skipped}");
    }
    let warnings = l.report.warnings.join("\n");
    for w in [
        "group 'Marketing' is not in the import and IntuneCD names it as a static group",
        "group 'Helpdesk' is not in the import",
        "1 assignment(s) in IntuneCD's assignment report name objects that are not policies in this import (App Protection 1)",
    ] {
        assert!(warnings.contains(w), "{w} not in\n{warnings}");
    }
    assert!(!warnings.contains("added as"), "{warnings}");

    // explain-level truth: each policy reaches exactly these devices, and
    // explain says so device by device.
    let r = resolve(o, now());
    let expect = [
        ("Win - Defender", vec!["FIN-SURFACE-1"]),
        ("Win - Edge", vec!["FIN-DELL-1", "FIN-SURFACE-1", "SALES-1"]),
        (
            "Win - Compliance",
            vec!["FIN-DELL-1", "FIN-SURFACE-1", "KIOSK-1", "SALES-1"],
        ),
        ("Win - Wi-Fi", vec![]),
    ];
    for (policy, devices) in expect {
        let p = o.find_policies(policy)[0];
        assert_eq!(names(o, r.policies[p].devices.iter()), devices, "{policy}");
        for row in 0..o.devices.rows {
            let e = ringmaster_core::explain::explain_device(o, &r, row, Some(&[p]), now());
            let included = e.policies[0].status == ringmaster_core::explain::Status::Included;
            let name = o.device(DeviceAttr::Name, row).unwrap();
            assert_eq!(
                included,
                devices.contains(&name),
                "{policy} on {name}: {}",
                e.policies[0].reason
            );
        }
    }
    let kiosk = o.find_devices("KIOSK-1")[0];
    let e = ringmaster_core::explain::explain_device(o, &r, kiosk, None, now());
    let edge = e
        .policies
        .iter()
        .find(|p| p.policy == "Win - Edge")
        .unwrap();
    assert_eq!(edge.status, ringmaster_core::explain::Status::Excluded);
    assert!(edge.reason.contains("Kiosks"), "{}", edge.reason);
    assert!(
        r.diagnostics
            .iter()
            .all(|d| d.severity != ringmaster_core::targeting::Severity::Error),
        "{:?}",
        r.diagnostics
    );
}

/// An IntuneCD compliance policy file, named as IntuneCD names it.
fn cd_policy(dir: &Path, name: &str, assignments: &str) {
    let folder = dir.join("Compliance Policies/Policies");
    std::fs::create_dir_all(&folder).unwrap();
    write(
        &folder,
        &format!("{name}_windows10CompliancePolicy.json"),
        &format!(
            r##"{{"@odata.type":"#microsoft.graph.windows10CompliancePolicy","displayName":"{name}","assignments":[{assignments}]}}"##
        ),
    );
}

fn target(name: &str, kind: &str, rule: Option<&str>) -> String {
    let rule = rule
        .map(|r| format!(r#","membershipRule":{}"#, serde_json::to_string(r).unwrap()))
        .unwrap_or_default();
    format!(
        r##"{{"target":{{"@odata.type":"#microsoft.graph.groupAssignmentTarget","groupName":"{name}","groupType":"{kind}"{rule}}}}}"##
    )
}

#[test]
fn intunecd_names_that_cannot_be_resolved_are_errors() {
    let windows = Some(r#"device.deviceOSType -eq "Windows""#);
    // (files as (folder, name, content), expected file suffix, record, field, words in the message)
    type Case = (
        Vec<(&'static str, &'static str, String)>,
        &'static str,
        Option<usize>,
        &'static str,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            vec![
                (
                    "directory",
                    "groups.json",
                    r#"{"value":[{"id":"g1","displayName":"Pilot"},{"id":"g2","displayName":"PILOT "}]}"#.into(),
                ),
                (
                    "Compliance Policies/Policies",
                    "P.json",
                    format!(
                        r##"{{"@odata.type":"#microsoft.graph.windows10CompliancePolicy","displayName":"P","assignments":[{}]}}"##,
                        target("pilot", "StaticMembership", None)
                    ),
                ),
            ],
            "P.json",
            None,
            "assignments[0].target",
            vec!["'Pilot' (g1", "'PILOT ' (g2", "2 imported groups"],
        ),
        (
            vec![
                (
                    "Compliance Policies/Policies",
                    "A.json",
                    format!(
                        r##"{{"@odata.type":"#microsoft.graph.windows10CompliancePolicy","displayName":"A","assignments":[{}]}}"##,
                        target("Sites", "DynamicMembership", windows)
                    ),
                ),
                (
                    "Compliance Policies/Policies",
                    "B.json",
                    format!(
                        r##"{{"@odata.type":"#microsoft.graph.windows10CompliancePolicy","displayName":"B","assignments":[{}]}}"##,
                        target("sites", "StaticMembership", None)
                    ),
                ),
            ],
            "B.json",
            None,
            "assignments[0].target",
            vec!["is static here", "A.json", "dynamic with rule"],
        ),
        (
            vec![(
                "Settings Catalog",
                "P_mdm.json",
                format!(
                    r#"{{"name":"P","platforms":"windows10","assignments":[{}]}}"#,
                    target("Bad", "DynamicMembership", Some("(device.deviceOSType -eq \"Windows\""))
                ),
            )],
            "P_mdm.json",
            None,
            "assignments[0].target.membershipRule",
            vec!["never closed"],
        ),
        (
            vec![(
                "Settings Catalog",
                "P_mdm.json",
                format!(
                    r#"{{"name":"P","platforms":"windows10","assignments":[{}]}}"#,
                    target("Rule-less", "DynamicMembership", None)
                ),
            )],
            "P_mdm.json",
            None,
            "assignments[0].target.membershipRule",
            vec!["no rule"],
        ),
        (
            vec![(
                "Device Configurations",
                "W_windows10GeneralConfiguration.json",
                r#"{"displayName":"W","passwordRequired":true}"#.into(),
            )],
            "W_windows10GeneralConfiguration.json",
            None,
            "@odata.type",
            vec!["device configuration profile needs its @odata.type"],
        ),
        (
            vec![
                (
                    "directory",
                    "assignmentFilters.json",
                    r#"{"value":[{"id":"f1","displayName":"Surface","platform":"windows10AndLater","rule":"(device.model -startsWith \"Surface\")"},{"id":"f2","displayName":"surface","platform":"windows10AndLater","rule":"(device.model -eq \"Surface Go\")"}]}"#.into(),
                ),
                (
                    "directory",
                    "policies.json",
                    r##"{"value":[{"id":"p0","name":"Other"},{"@odata.type":"#microsoft.graph.windows10CompliancePolicy","id":"p1","displayName":"P","assignments":[{"target":{"@odata.type":"#microsoft.graph.allDevicesAssignmentTarget","deviceAndAppManagementAssignmentFilterId":"SURFACE","deviceAndAppManagementAssignmentFilterType":"include"}}]}]}"##.into(),
                ),
            ],
            "policies.json",
            Some(2),
            "assignments[0].target.deviceAndAppManagementAssignmentFilterId",
            vec!["'Surface' (f1)", "'surface' (f2)"],
        ),
        (
            vec![(
                "Assignment Report",
                "report.json",
                r#"[{"groupName":"A","groupType":"StaticMembership","assignedTo":{}},{"groupName":"","assignedTo":{}}]"#.into(),
            )],
            "report.json",
            Some(2),
            "groupName",
            vec!["names its group"],
        ),
        (
            vec![(
                "Settings Catalog",
                "P_mdm.yaml",
                "name: P\nplatforms: windows10\nassignments:\n- target: {groupName: [unclosed\n".into(),
            )],
            "P_mdm.yaml",
            None,
            "",
            vec!["not valid YAML"],
        ),
    ];
    for (files, file, record, field, words) in cases {
        let d = tempfile::tempdir().unwrap();
        for (folder, name, text) in &files {
            std::fs::create_dir_all(d.path().join(folder)).unwrap();
            write(&d.path().join(folder), name, text);
        }
        let e = err(d.path());
        assert!(e.file.ends_with(file), "{e}");
        assert_eq!(e.record, record, "{e}");
        assert_eq!(e.field.as_deref().unwrap_or(""), field, "{e}");
        for w in words {
            assert!(e.message.contains(w), "'{w}' not in: {e}");
        }
    }
}

#[test]
fn intunecd_report_adds_only_what_policy_files_lack() {
    // Policies exported from Graph without their assignments, beside
    // IntuneCD's report: the report supplies them. An assignment the file
    // already carries (here an exclusion) is never doubled.
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "configurationPolicies.json",
        r##"{"value":[
        {"id":"p1","name":"Win - BitLocker","platforms":"windows10","technologies":"mdm","settings":[]},
        {"id":"p2","name":"Win - LAPS","platforms":"windows10","technologies":"mdm","settings":[],
         "assignments":[{"target":{"@odata.type":"#microsoft.graph.exclusionGroupAssignmentTarget","groupId":"g-lab"}}]}]}"##,
    );
    write(
        d.path(),
        "groups.json",
        r#"{"value":[{"id":"g-lab","displayName":"Lab","groupTypes":[]},{"id":"g-pilot","displayName":"Pilot","groupTypes":[]}]}"#,
    );
    std::fs::create_dir_all(d.path().join("Assignment Report")).unwrap();
    write(
        &d.path().join("Assignment Report"),
        "report.json",
        r#"[
        {"groupName":"Pilot","groupType":"StaticMembership","membershipRule":null,"assignedTo":{
            "Settings Catalog":[{"name":"Win - BitLocker","type":"","intent":""},{"name":"Win - LAPS","type":"","intent":""}]}},
        {"groupName":"Lab","groupType":"StaticMembership","membershipRule":null,"assignedTo":{
            "Settings Catalog":[{"name":"Win - BitLocker","type":"","intent":"Exclude"},{"name":"Win - LAPS","type":"","intent":""}],
            "Scripts":[{"name":"Rename","type":"deviceManagementScript","intent":""}]}},
        {"groupName":"Ring 1","groupType":"DynamicMembership","membershipRule":"device.deviceOSType -eq \"Windows\"","assignedTo":{
            "Settings Catalog":[{"name":"Win - BitLocker","type":"","intent":"required"}]}}]"#,
    );
    let l = load(&[d.path().to_path_buf()]).unwrap();
    let o = &l.org;
    let targets = |name: &str| -> Vec<Target> {
        o.policies[o.find_policies(name)[0]]
            .assignments
            .iter()
            .map(|a| {
                assert_eq!(a.filter, None);
                a.target.clone()
            })
            .collect()
    };
    assert_eq!(
        targets("Win - BitLocker"),
        vec![
            Target::Group("g-pilot".into()),
            Target::ExcludeGroup("g-lab".into())
        ]
    );
    assert_eq!(
        targets("Win - LAPS"),
        vec![
            Target::ExcludeGroup("g-lab".into()),
            Target::Group("g-pilot".into())
        ]
    );
    let warnings = l.report.warnings.join("\n");
    for w in [
        "field `assignedTo[\"Settings Catalog\"][0]`: IntuneCD's assignment report assigns policy 'Win - BitLocker' to group 'Pilot', but",
        "configurationPolicies.json has no assignment to that group; added as an include without a filter",
        "assigns policy 'Win - BitLocker' to group 'Lab', but",
        "added as an exclusion",
        "intent 'required' is not modelled",
        "(Scripts 1)",
    ] {
        assert!(warnings.contains(w), "{w} not in\n{warnings}");
    }
    assert_eq!(
        warnings.matches("added as").count(),
        3,
        "LAPS's exclusion of Lab stays one assignment:\n{warnings}"
    );
    // The group only the report names is made from it.
    let ring = o.find_groups("Ring 1");
    assert!(matches!(o.groups[ring[0]].kind, GroupKind::Dynamic { .. }));
}

#[test]
fn intunecd_filters_and_policies_by_name_only() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("Filters")).unwrap();
    // IntuneCD strips the filter's id; the target names it.
    write(
        &d.path().join("Filters"),
        "Surface.json",
        r#"{"displayName":"Surface","description":"","platform":"windows10AndLater","rule":"(device.model -startsWith \"Surface\")","roleScopeTags":["Default"]}"#,
    );
    let filtered = r##"{"target":{"@odata.type":"#microsoft.graph.allDevicesAssignmentTarget","deviceAndAppManagementAssignmentFilterId":"surface","deviceAndAppManagementAssignmentFilterType":"exclude"}}"##;
    // Same name, two categories: two policies.
    cd_policy(d.path(), "Baseline", filtered);
    std::fs::create_dir_all(d.path().join("Settings Catalog")).unwrap();
    write(
        &d.path().join("Settings Catalog"),
        "Baseline_mdm__0f2c1a4e-55aa-4b1c-9d7e-1234567890ab.json",
        r##"{"name":"Baseline","platforms":"windows10","technologies":"mdm","assignments":[{"target":{"@odata.type":"#microsoft.graph.allDevicesAssignmentTarget","deviceAndAppManagementAssignmentFilterId":"Gone","deviceAndAppManagementAssignmentFilterType":"include"}}]}"##,
    );
    // Settings-style compliance (compliancePolicies) carries no @odata.type.
    write(
        &d.path().join("Compliance Policies/Policies"),
        "Linux_linuxmdm.json",
        r#"{"name":"Linux","platforms":"linux","technologies":"linuxMdm","settings":[]}"#,
    );
    let l = load(&[d.path().to_path_buf()]).unwrap();
    let o = &l.org;
    let mut got: Vec<(&str, &str, PolicyKind)> = o
        .policies
        .iter()
        .map(|p| (p.name.as_str(), p.id.as_str(), p.kind.clone()))
        .collect();
    got.sort_by_key(|g| (g.0, g.1));
    assert_eq!(
        got,
        vec![
            (
                "Baseline",
                "0f2c1a4e-55aa-4b1c-9d7e-1234567890ab",
                PolicyKind::SettingsCatalog
            ),
            (
                "Baseline",
                "Baseline_windows10CompliancePolicy",
                PolicyKind::Compliance
            ),
            ("Linux", "Linux_linuxmdm", PolicyKind::Compliance),
        ]
    );
    let compliance = &o.policies[o
        .policies
        .iter()
        .position(|p| p.kind == PolicyKind::Compliance && p.name == "Baseline")
        .unwrap()];
    assert_eq!(
        compliance.assignments[0]
            .filter
            .as_ref()
            .map(|f| f.filter_id.as_str()),
        Some("Surface")
    );
    // A filter no import holds loads, is reported where it is, and resolving
    // calls it an error as it does an unknown filter id.
    let w = l.report.warnings.join("\n");
    assert!(
        w.contains("Baseline_mdm__0f2c1a4e-55aa-4b1c-9d7e-1234567890ab.json, field `assignments[0].target.deviceAndAppManagementAssignmentFilterId`: assignment filter 'Gone' is neither the id nor the display name of an imported filter (1 assignment(s))"),
        "{w}"
    );
    let r = resolve(o, now());
    assert!(
        r.diagnostics.iter().any(
            |d| d.severity == ringmaster_core::targeting::Severity::Error
                && d.message
                    .contains("assignment filter Gone is not in the import")
        ),
        "{:?}",
        r.diagnostics
    );
}

#[test]
fn yaml_of_other_tools_is_skipped_while_walking() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "users.json", r#"{"value":[{"id":"u1"}]}"#);
    write(
        d.path(),
        "azure-pipelines.yml",
        "trigger:\n- main\npool:\n  vmImage: ubuntu-latest\n",
    );
    let manifests = write(
        d.path(),
        "manifests.yaml",
        "kind: Service\n---\nkind: Deployment\n",
    );
    let l = load(&[d.path().to_path_buf()]).unwrap();
    let skipped = l.report.skipped.join("\n");
    assert!(
        skipped.contains("azure-pipelines.yml: not an object ringmaster reads"),
        "{skipped}"
    );
    assert!(
        skipped.contains("manifests.yaml: YAML that does not parse as data is not read"),
        "{skipped}"
    );
    // Named directly, it is listed the same way.
    let l = load(&[manifests]).unwrap();
    assert!(
        l.report.skipped[0].contains("YAML that does not parse as data is not read"),
        "{:?}",
        l.report.skipped
    );
}

#[test]
fn last_modified_is_read_and_a_bad_one_named() {
    let policy = |when: &str| {
        format!(
            r##"{{"value":[{{"@odata.type":"#microsoft.graph.deviceManagementConfigurationPolicy","id":"p1","name":"AV","lastModifiedDateTime":{when},"settings":[]}}]}}"##
        )
    };
    for (when, want) in [
        (
            r#""2025-02-03T04:05:06.1234567Z""#,
            Some("2025-02-03T04:05:06.1234567Z"),
        ),
        ("null", None),
    ] {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "p.json", &policy(when));
        let l = load(&[d.path().to_path_buf()]).unwrap();
        let got = l.org.policies[0].last_modified;
        assert_eq!(got, want.map(|t| t.parse().unwrap()), "{when}");
    }
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "p.json", &policy(r#""last tuesday""#));
    let e = err(d.path());
    assert_eq!(e.record, Some(1));
    assert_eq!(e.field.as_deref(), Some("lastModifiedDateTime"), "{e}");
}

/// Graph beta's `usersLoggedOn` (and the CSV column) become sign-ins that
/// follow the devices through the row renumbering `load` does.
#[test]
fn users_logged_on_are_imported_and_follow_renumbered_devices() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "users.json",
        r#"{"value":[{"id":"u1","userPrincipalName":"ada@contoso.com"},{"id":"u2","userPrincipalName":"bob@contoso.com"}]}"#,
    );
    // m3 comes last but its group comes first, so the rows are renumbered.
    write(
        d.path(),
        "managedDevices.json",
        r#"{"value":[
        {"id":"m1","deviceName":"PC-1","azureADDeviceId":"aad-1","operatingSystem":"Windows","userId":"u1","usersLoggedOn":[{"userId":"u1","lastLogOnDateTime":"2026-11-02T07:00:00Z"},{"userId":"U2","lastLogOnDateTime":"2026-11-19T16:40:12.1234567Z"}]},
        {"id":"m2","deviceName":"PC-2","azureADDeviceId":"aad-2","operatingSystem":"Windows","usersLoggedOn":[]},
        {"id":"m3","deviceName":"KIOSK-3","azureADDeviceId":"aad-3","operatingSystem":"Windows","usersLoggedOn":[{"userId":"u2","lastLogOnDateTime":"2026-11-20T08:15:00"}]}]}"#,
    );
    write(
        d.path(),
        "devices.json",
        r#"{"value":[{"id":"obj-3","deviceId":"aad-3","displayName":"KIOSK-3"}]}"#,
    );
    write(
        d.path(),
        "groups.json",
        r##"{"value":[{"id":"g1","displayName":"Kiosks","members":[{"@odata.type":"#microsoft.graph.device","id":"obj-3"}]}]}"##,
    );
    let l = load(&[d.path().to_path_buf()]).unwrap();
    let o = &l.org;
    let kiosk = o.find_devices("KIOSK-3")[0];
    assert_eq!(kiosk, 0, "the kiosk's group puts it first");
    let signed_in = |name: &str| -> Vec<(String, String)> {
        let row = o.find_devices(name)[0];
        o.device_logons(row)
            .map(|(u, t)| {
                (
                    o.user_label(u),
                    t.map(|t| t.to_string()).unwrap_or_default(),
                )
            })
            .collect()
    };
    assert_eq!(
        signed_in("PC-1"),
        [
            ("ada@contoso.com".into(), "2026-11-02T07:00:00Z".into()),
            // Kept to the second.
            ("bob@contoso.com".into(), "2026-11-19T16:40:12Z".into())
        ]
    );
    assert!(signed_in("PC-2").is_empty());
    // No offset: taken as UTC.
    assert_eq!(
        signed_in("KIOSK-3"),
        [("bob@contoso.com".into(), "2026-11-20T08:15:00Z".into())]
    );
    let bob = o.find_users("bob@contoso.com")[0];
    let mut bobs = o.user_signins(bob).to_vec();
    bobs.sort_unstable();
    let mut want = vec![kiosk, o.find_devices("PC-1")[0]];
    want.sort_unstable();
    assert_eq!(bobs, want);

    // The CSV column: `;`-separated object ids.
    let c = tempfile::tempdir().unwrap();
    write(
        c.path(),
        "users.csv",
        "id,userPrincipalName\nu1,ada@contoso.com\nu2,bob@contoso.com\n",
    );
    write(
        c.path(),
        "devices.csv",
        "id,deviceName,platform,usersLoggedOn\nd1,PC-1,Windows,u1; u2\nd2,PC-2,Windows,\n",
    );
    let l = load(&[c.path().to_path_buf()]).unwrap();
    let o = &l.org;
    let pc1 = o.find_devices("PC-1")[0];
    let users: Vec<String> = o.device_logons(pc1).map(|(u, _)| o.user_label(u)).collect();
    assert_eq!(users, ["ada@contoso.com", "bob@contoso.com"]);
    assert_eq!(o.device_logons(o.find_devices("PC-2")[0]).count(), 0);
}

#[test]
fn bad_users_logged_on_name_the_entry() {
    let check = |entry: &str, field: &str, says: &str| {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "managedDevices.json",
            &format!(
                r#"{{"value":[{{"id":"m1","deviceName":"PC-1"}},{{"id":"m2","deviceName":"PC-2","usersLoggedOn":[{{"userId":"u1"}},{entry}]}}]}}"#
            ),
        );
        let e = err(d.path());
        assert_eq!(
            (e.record, e.field.as_deref()),
            (Some(2), Some(field)),
            "{e}"
        );
        assert!(e.message.contains(says), "{e}");
    };
    check(
        r#"{"userId":"u2","lastLogOnDateTime":"yesterday"}"#,
        "usersLoggedOn[1].lastLogOnDateTime",
        "'yesterday' is not a date and time",
    );
    check(
        r#"{"lastLogOnDateTime":"2026-11-20T08:15:00Z"}"#,
        "usersLoggedOn[1].userId",
        "a sign-in needs the user's object id",
    );
}

/// Links cannot make the walk loop or read a file twice; pipes, sockets and
/// broken links are listed, never read (a FIFO would block forever).
#[cfg(unix)]
#[test]
fn links_loops_and_special_files_are_walked_safely() {
    use std::os::unix::fs::symlink;
    let d = tempfile::tempdir().unwrap();
    let org = d.path().join("org");
    std::fs::create_dir_all(org.join("sub")).unwrap();
    write(
        &org.join("sub"),
        "users.json",
        r#"{"value":[{"id":"u1","userPrincipalName":"ada@contoso.com"}]}"#,
    );
    symlink("..", org.join("sub/up")).unwrap();
    // Above the source, as /proc/self/root is: not walked either.
    symlink(d.path(), org.join("sub/top")).unwrap();
    symlink(org.join("sub"), org.join("again")).unwrap();
    symlink(org.join("sub/users.json"), org.join("same.json")).unwrap();
    symlink(org.join("missing"), org.join("broken.json")).unwrap();
    let fifo = org.join("pipe.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // The load runs on a thread, so a regression fails here instead of hanging the suite.
    let (tx, rx) = std::sync::mpsc::channel();
    let root = org.clone();
    std::thread::spawn(move || tx.send(load(&[root])).unwrap());
    let l = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the walk did not end")
        .unwrap();
    assert_eq!(l.org.users.rows, 1);
    let skipped = l.report.skipped.join("\n");
    for want in [
        "pipe.json: not a regular file",
        "broken.json: cannot read",
        "up: a link back to a folder it is inside",
        "top: a link back to a folder it is inside",
    ] {
        assert!(skipped.contains(want), "{want}\n{skipped}");
    }
    // `again` and `same.json` are the folder and file already read, whichever came first.
    assert_eq!(
        skipped.matches("already read (through a link)").count(),
        2,
        "{skipped}"
    );
    // A FIFO named directly is listed, not read.
    let l = load(&[fifo]).unwrap();
    assert!(l.report.skipped[0].contains("not a regular file"));
}

#[test]
fn member_records_interleaved_over_two_files_reach_their_groups() {
    let d = tempfile::tempdir().unwrap();
    let devices: String = (0..6)
        .map(|i| format!(r#"{{"id":"obj-{i}","deviceId":"dev-{i}","displayName":"PC-{i}","operatingSystem":"Windows"}}"#) + "\n")
        .collect();
    write(d.path(), "devices.ndjson", &devices);
    write(
        d.path(),
        "groups.json",
        r#"{"value":[{"id":"ga","displayName":"A"},{"id":"gb","displayName":"B"},{"id":"gc","displayName":"C"}]}"#,
    );
    // Groups interleaved line by line, one id in upper case, one member
    // not in the import, and a group named as a member of another.
    write(
        d.path(),
        "groupMembers.ndjson",
        &[
            r#"{"groupId":"ga","memberId":"obj-0","memberType":"device"}"#,
            r#"{"groupId":"gb","memberId":"obj-1","memberType":"device"}"#,
            r#"{"groupId":"ga","memberId":"OBJ-2","memberType":"device"}"#,
            r#"{"groupId":"gb","memberId":"obj-404","memberType":"device"}"#,
            r#"{"groupId":"ga","memberId":"obj-3"}"#,
            r#"{"groupId":"gc","memberId":"gb","memberType":"group"}"#,
        ]
        .join("\n"),
    );
    let more = d.path().join("more");
    std::fs::create_dir(&more).unwrap();
    write(
        &more,
        "groupMembers.ndjson",
        "{\"groupId\":\"gb\",\"memberId\":\"obj-4\",\"memberType\":\"device\"}\n{\"groupId\":\"GA\",\"memberId\":\"obj-5\",\"memberType\":\"device\"}\n",
    );
    let loaded = load(&[d.path().to_path_buf(), more]).unwrap();
    let org = &loaded.org;
    let devices_of = |g: &str| -> Vec<String> {
        let m = &org.static_members[org.group(g).unwrap()];
        m.devices
            .iter()
            .map(|&r| org.device(DeviceAttr::Name, r).unwrap().to_string())
            .collect()
    };
    assert_eq!(devices_of("ga"), ["PC-0", "PC-2", "PC-3", "PC-5"]);
    assert_eq!(devices_of("gb"), ["PC-1", "PC-4"]);
    let gb = org.group("gb").unwrap();
    assert_eq!(org.static_members[org.group("gc").unwrap()].groups, [gb]);
    assert_eq!(org.static_members[gb].missing, 1);
}
