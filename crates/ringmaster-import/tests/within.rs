//! A device explained from a resolution of it and its users alone
//! (`ringmaster explain --device`) reads exactly as from the whole one; the
//! counts `ringmaster org` works out alone are the whole resolution's.

use ringmaster_core::explain::explain_device;
use ringmaster_core::org::Org;
use ringmaster_core::targeting::{Within, resolve, resolve_counts, resolve_within};
use ringmaster_import::load;
use std::path::Path;

fn now() -> jiff::Timestamp {
    "2026-11-24T12:00:00Z".parse().unwrap()
}

/// Every device's explanation, whole against cut; returns how many
/// devices some policy reached and how many have a conflict, so a test
/// can tell it compared something.
fn same_explanations(org: &Org) -> (usize, usize) {
    let full = resolve(org, now());
    let (mut reached, mut conflicted) = (0, 0);
    for d in 0..org.devices.rows {
        let cut = resolve_within(org, now(), &Within::device(org, d));
        let whole = explain_device(org, &full, d, None, now());
        conflicted += usize::from(!whole.conflicts.is_empty());
        let whole = serde_json::to_value(whole).unwrap();
        let alone = serde_json::to_value(explain_device(org, &cut, d, None, now())).unwrap();
        assert_eq!(whole, alone, "device {}", org.device_label(d));
        reached += usize::from(
            (full.policies.iter()).any(|p| p.devices.contains(d) || p.not_applicable.contains(d)),
        );
    }
    let (counted, counts) = resolve_counts(org, now());
    let whole: Vec<(u64, u64)> = (full.policies.iter())
        .map(|p| (p.devices.len(), p.not_applicable.len()))
        .collect();
    assert_eq!(counts, whole);
    assert!(whole.iter().any(|c| c.1 > 0) || org.devices.rows < 100);
    assert_eq!(
        serde_json::to_value(&counted.diagnostics).unwrap(),
        serde_json::to_value(&full.diagnostics).unwrap()
    );
    (reached, conflicted)
}

#[test]
fn generated_org() {
    let d = tempfile::tempdir().unwrap();
    ringmaster_gen::generate(d.path(), &ringmaster_gen::Options::new(1500, 7)).unwrap();
    let l = load(&[d.path().to_path_buf()]).unwrap();
    let (n, c) = same_explanations(&l.org);
    assert!(n > 1000, "only {n} devices reached");
    assert!(c > 20, "only {c} devices with a conflict");
    // The same, read back from a snapshot: columns read in place, the first
    // lookup scanning codes, arrays read a few values at a time.
    let cached = tempfile::tempdir().unwrap();
    let cache = ringmaster_import::snapshot::SnapshotCache::new(cached.path());
    let paths = [d.path().to_path_buf()];
    assert!(!cache.load(&paths).unwrap().from_snapshot);
    let read = cache.load(&paths).unwrap();
    assert!(read.from_snapshot, "{:?}", read.notes);
    assert_eq!(same_explanations(&read.loaded.org), (n, c));
}

#[test]
fn the_real_corpus() {
    let Some(c) = ringmaster_import::corpus("") else {
        return;
    };
    let l = load(&[c]).unwrap();
    same_explanations(&l.org);
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Sign-ins, user and device exclusions across kinds, nesting, memberOf,
/// filters and a rule on the clock: the paths that reach past the device
/// to its users and their other devices.
#[test]
fn users_sign_ins_and_exclusions() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(
        p,
        "users.json",
        r#"{"value":[
          {"id":"u1","userPrincipalName":"ada@contoso.com","department":"Sales","employeeHireDate":"2026-11-20T00:00:00Z"},
          {"id":"u2","userPrincipalName":"bob@contoso.com","department":"Eng"},
          {"id":"u3","userPrincipalName":"cy@contoso.com","department":"Sales"}]}"#,
    );
    write(
        p,
        "managedDevices.json",
        r#"{"value":[
          {"id":"m1","deviceName":"PC-1","azureADDeviceId":"aad-1","operatingSystem":"Windows","osVersion":"10.0.26100.1","userId":"u1","usersLoggedOn":[{"userId":"u1"},{"userId":"u2"}]},
          {"id":"m2","deviceName":"PC-2","azureADDeviceId":"aad-2","operatingSystem":"Windows","osVersion":"10.0.19045.1","userId":"u2","usersLoggedOn":[]},
          {"id":"m3","deviceName":"KIOSK-3","azureADDeviceId":"aad-3","operatingSystem":"Windows","osVersion":"10.0.26100.1","usersLoggedOn":[{"userId":"u3"}]},
          {"id":"m4","deviceName":"MAC-4","azureADDeviceId":"aad-4","operatingSystem":"macOS","osVersion":"15.1","userId":"u3","usersLoggedOn":[]}]}"#,
    );
    write(
        p,
        "devices.json",
        r#"{"value":[
          {"id":"obj-1","deviceId":"aad-1","displayName":"PC-1","operatingSystem":"Windows"},
          {"id":"obj-3","deviceId":"aad-3","displayName":"KIOSK-3","operatingSystem":"Windows"},
          {"id":"obj-5","deviceId":"aad-5","displayName":"ENTRA-ONLY-5","operatingSystem":"Windows"}]}"#,
    );
    write(
        p,
        "groups.json",
        r##"{"value":[
          {"id":"g-sales","displayName":"Sales","membershipRule":"(user.department -eq \"Sales\")","groupTypes":["DynamicMembership"]},
          {"id":"g-new","displayName":"New hires","membershipRule":"(user.employeeHireDate -ge system.now -minus p30d)","groupTypes":["DynamicMembership"]},
          {"id":"g-eng","displayName":"Eng","members":[{"@odata.type":"#microsoft.graph.user","id":"u2"}]},
          {"id":"g-kiosk","displayName":"Kiosks","members":[{"@odata.type":"#microsoft.graph.device","id":"obj-3"}]},
          {"id":"g-outer","displayName":"Outer","members":[{"@odata.type":"#microsoft.graph.group","id":"g-kiosk"}]},
          {"id":"g-win","displayName":"Windows","membershipRule":"(device.deviceOSType -eq \"Windows\")","groupTypes":["DynamicMembership"]},
          {"id":"g-member","displayName":"Of outer","membershipRule":"device.memberof -any (group.objectId -in ['g-outer'])","groupTypes":["DynamicMembership"]}]}"##,
    );
    write(
        p,
        "assignmentFilters.json",
        r#"{"value":[{"id":"f1","displayName":"PCs","platform":"windows10AndLater","rule":"(device.deviceName -startsWith \"PC\")"}]}"#,
    );
    let target = |kind: &str, group: &str, filter: &str| {
        let filter = if filter.is_empty() {
            String::new()
        } else {
            format!(
                r#","deviceAndAppManagementAssignmentFilterId":"f1","deviceAndAppManagementAssignmentFilterType":"{filter}""#
            )
        };
        let group = if group.is_empty() {
            String::new()
        } else {
            format!(r#","groupId":"{group}""#)
        };
        format!(r##"{{"target":{{"@odata.type":"#microsoft.graph.{kind}"{group}{filter}}}}}"##)
    };
    let policies = [
        // Sales included, Eng (a signed-in user of PC-1) excluded.
        vec![
            target("groupAssignmentTarget", "g-sales", ""),
            target("exclusionGroupAssignmentTarget", "g-eng", ""),
        ],
        vec![target("groupAssignmentTarget", "g-win", "include")],
        vec![target("groupAssignmentTarget", "g-outer", "exclude")],
        // A device group excluded from All users: not evaluated.
        vec![
            target("allLicensedUsersAssignmentTarget", "", ""),
            target("exclusionGroupAssignmentTarget", "g-kiosk", ""),
        ],
        vec![target("groupAssignmentTarget", "g-new", "")],
        vec![target("groupAssignmentTarget", "g-member", "")],
        vec![target("allDevicesAssignmentTarget", "", "exclude")],
    ];
    let body: Vec<String> = policies
        .iter()
        .enumerate()
        .map(|(i, a)| {
            format!(
                r##"{{"@odata.type":"#microsoft.graph.windows10CompliancePolicy","id":"p{i}","displayName":"Policy {i}","assignments":[{}]}}"##,
                a.join(",")
            )
        })
        .collect();
    write(
        p,
        "deviceCompliancePolicies.json",
        &format!(r#"{{"value":[{}]}}"#, body.join(",")),
    );
    let l = load(&[p.to_path_buf()]).unwrap();
    assert!(l.org.has_logons());
    assert_eq!(l.org.devices.rows, 5);
    let (n, _) = same_explanations(&l.org);
    assert!(n >= 3, "only {n} devices reached");
}
