//! `connect intune` and `import intune` against the local mock Graph.

#[path = "../../ringmaster-intune/tests/mock/mod.rs"]
mod mock;

use assert_cmd::Command;
use mock::{CLIENT, Mock, SECRET, TENANT, Tenant};
use predicates::prelude::*;

fn rm() -> Command {
    let mut c = Command::cargo_bin("ringmaster").unwrap();
    c.env("RINGMASTER_NOW", "2026-11-24T12:00:00Z")
        .env_remove("RINGMASTER_INTUNE");
    c
}

/// `connect intune` to the mock at `base`, saving to `conn`, the secret in
/// a variable.
fn connect(base: &str, conn: &std::path::Path, secret: &str) -> Command {
    let mut c = rm();
    c.env("RM_TEST_INTUNE_SECRET", secret)
        .args([
            "connect",
            "intune",
            "--tenant",
            TENANT,
            "--client-id",
            CLIENT,
        ])
        .args(["--secret-env", "RM_TEST_INTUNE_SECRET"])
        .args(["--graph-url", &format!("{base}/beta"), "--login-url", base])
        .arg("--out")
        .arg(conn);
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_then_import_a_tenant_that_the_other_commands_read() {
    let d = tempfile::tempdir().unwrap();
    let export = d.path().join("export");
    ringmaster_gen::generate(&export, &ringmaster_gen::Options::new(250, 5)).unwrap();
    let m = Mock::new(Tenant::from_export(&export), 40);
    let base = m.serve().await;
    let conn = d.path().join("intune.toml");
    let connect = |secret: &str| connect(&base, &conn, secret);
    // A wrong secret: refused, saying why, and nothing saved.
    let wrong = connect("not-the-secret");
    let out = tokio::task::spawn_blocking(move || {
        let mut w = wrong;
        w.assert().code(2).get_output().clone()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid_client") && !err.contains("not-the-secret"),
        "{err}"
    );
    assert!(!conn.exists());
    let right = connect(SECRET);
    tokio::task::spawn_blocking(move || {
        let mut r = right;
        r.assert()
            .success()
            .stdout(predicate::str::contains("managed devices can be read"));
    })
    .await
    .unwrap();
    let saved = std::fs::read_to_string(&conn).unwrap();
    assert!(
        saved.contains("secret_env = \"RM_TEST_INTUNE_SECRET\"") && !saved.contains(SECRET),
        "{saved}"
    );
    // The snapshot, then the conflict report on it.
    let snap = d.path().join("snapshot");
    let (c2, s2) = (conn.clone(), snap.clone());
    tokio::task::spawn_blocking(move || {
        rm().env("RM_TEST_INTUNE_SECRET", SECRET)
            .args(["import", "intune"])
            .arg(&s2)
            .arg("--connection")
            .arg(&c2)
            .assert()
            .success()
            .stdout(
                predicate::str::contains("imports as").and(predicate::str::contains("250 devices")),
            );
        rm().args(["conflicts", "--org"])
            .arg(&s2)
            .assert()
            .code(predicate::in_iter([0, 1]));
        // Without the secret in the environment: a clear error.
        rm().args(["import", "intune"])
            .arg(&s2)
            .arg("--connection")
            .arg(&c2)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("RM_TEST_INTUNE_SECRET"));
    })
    .await
    .unwrap();
    assert!(snap.join("configurationPolicies.json").exists());
}

/// The conflicts this organization's plan accepts (as the demo does) so it runs.
const ACCEPTED: [&str; 5] = [
    "device_vendor_msft_laps_policies_passwordagedays",
    "device_vendor_msft_laps_policies_passwordlength",
    "device_vendor_msft_laps_policies_passwordcomplexity",
    "device_vendor_msft_policy_config_defender_submitsamplesconsent",
    "device_vendor_msft_policy_config_defender_allowcloudprotection",
];

#[tokio::test(flavor = "multi_thread")]
async fn run_intune_starts_the_first_wave_in_the_tenant() {
    let d = tempfile::tempdir().unwrap();
    let export = d.path().join("export");
    ringmaster_gen::generate(&export, &ringmaster_gen::Options::new(3000, 7)).unwrap();
    ringmaster_gen::generate_proposed(&d.path().join("proposed")).unwrap();
    // The tenant holds the organization and, not yet assigned, the new baseline.
    let mut tenant = Tenant::from_export(&export);
    let proposed = Tenant::from_export(&d.path().join("proposed"));
    let new_ids: Vec<String> = proposed
        .policies
        .iter()
        .map(|(_, p)| p["id"].as_str().unwrap().to_string())
        .collect();
    // Created in the tenant, not assigned yet: the plan names them.
    let new_names: Vec<String> = proposed
        .policies
        .iter()
        .map(|(_, p)| {
            format!(
                "{:?}",
                p["name"].as_str().or(p["displayName"].as_str()).unwrap()
            )
        })
        .collect();
    for (c, p) in proposed.policies {
        let id = p["id"].as_str().unwrap().to_string();
        tenant.assignments.insert(id.clone(), Vec::new());
        tenant.settings.insert(
            id.clone(),
            proposed.settings.get(&id).cloned().unwrap_or_default(),
        );
        tenant.policies.push((c, p));
    }
    let m = Mock::new(tenant, 500);
    let base = m.serve().await;
    let conn = d.path().join("intune.toml");
    let mut plan = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/demo/ringmaster.toml"),
    )
    .unwrap()
    .replace("start = \"2027-01-11\"", "start = \"2026-10-05\"")
    // The example's bars suit the demo's 6,000 devices; at 3,000 the Legal
    // wave cannot prove them.
    .replacen(
        "kind = \"enterprise\"\n",
        "kind = \"enterprise\"\njudging = \"point\"\n",
        1,
    )
    .replace("org = [\"org\"]", "org = [\"snapshot\"]")
    .replace(
        "new = [\"proposed\"]",
        &format!("new_policies = [{}]", new_names.join(", ")),
    );
    for s in ACCEPTED {
        plan.push_str(&format!(
            "\n[[accept]]\nsetting = \"{s}\"\nreason = \"the old policies retire\"\nexpires = \"2099-12-31\"\n"
        ));
    }
    let plan_file = d.path().join("ringmaster.toml");
    std::fs::write(&plan_file, plan).unwrap();
    let (dir, conn2, base2, plan2) = (
        d.path().to_path_buf(),
        conn.clone(),
        base.clone(),
        plan_file.clone(),
    );
    tokio::task::spawn_blocking(move || {
        connect(&base2, &conn2, SECRET).assert().success();
        rm().env("RM_TEST_INTUNE_SECRET", SECRET)
            .args(["import", "intune"])
            .arg(dir.join("snapshot"))
            .arg("--connection")
            .arg(&conn2)
            .assert()
            .success();
        let checks = rm().arg("plan").arg(&plan2).output().unwrap();
        let text = String::from_utf8_lossy(&checks.stdout);
        assert!(
            !text.contains("  error   ["),
            "{}",
            &text[text.find("Checks").unwrap_or(0)..]
        );
        // Both --simulate and --intune: refused.
        rm().arg("run")
            .arg(&plan2)
            .arg("--simulate")
            .arg("--intune")
            .arg(&conn2)
            .assert()
            .code(2);
        rm().env("RM_TEST_INTUNE_SECRET", SECRET)
            .arg("run")
            .arg(&plan2)
            .arg("--intune")
            .arg(&conn2)
            .arg("--once")
            .assert()
            .success()
            .stdout(predicate::str::contains("on Microsoft Intune"));
        rm().arg("status").arg(&plan2).assert().success().stdout(
            predicate::str::contains("Proof of concept").and(predicate::str::contains("baking")),
        );
    })
    .await
    .unwrap();
    // The proof of concept started: its group holds its 3 devices and every
    // new policy is assigned to it; no pilot is isolated yet.
    let t = m.tenant.lock().unwrap();
    let group = t
        .groups
        .iter()
        .find(|g| g["mailNickname"].as_str() == Some("ringmaster-win-baseline-2027-w1"))
        .expect("the first wave's group");
    let gid = group["id"].as_str().unwrap();
    assert_eq!(
        t.members.get(gid).map(|m| m.len()),
        Some(3),
        "the proof of concept's devices"
    );
    for id in &new_ids {
        assert!(
            t.assignments[id]
                .iter()
                .any(|a| a["target"]["groupId"].as_str() == Some(gid)),
            "policy {id} is assigned to the first wave"
        );
    }
    let excluded = t
        .assignments
        .values()
        .flatten()
        .filter(|a| {
            a["target"]["groupId"].as_str() == Some(gid)
                && a["target"]["@odata.type"] == "#microsoft.graph.exclusionGroupAssignmentTarget"
        })
        .count();
    assert_eq!(excluded, 0, "the proof of concept is not isolated");
}

/// `connect` reads the roles the token grants and says, per feature, what
/// is missing; the connection is still saved (importing needs no writes).
#[tokio::test(flavor = "multi_thread")]
async fn connect_reports_missing_permissions_per_feature() {
    let d = tempfile::tempdir().unwrap();
    let m = Mock::new(Tenant::default(), 10);
    let base = m.serve().await;
    *m.granted.lock().unwrap() = Some(
        [
            "User.Read.All",
            "Device.Read.All",
            "GroupMember.Read.All",
            "DeviceManagementManagedDevices.Read.All",
            "DeviceManagementConfiguration.Read.All",
        ]
        .map(String::from)
        .into(),
    );
    let conn = d.path().join("intune.toml");
    let c = connect(&base, &conn, SECRET);
    let out = tokio::task::spawn_blocking(move || {
        let mut c = c;
        c.assert().success().get_output().clone()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |feature: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(feature))
            .unwrap_or_else(|| panic!("no line for {feature}: {text}"))
            .to_string()
    };
    assert!(line("read tenant").ends_with(" ok"), "{text}");
    assert!(line("read status").ends_with(" ok"), "{text}");
    assert!(
        line("create groups and add members")
            .ends_with("missing Group.ReadWrite.All, Device.ReadWrite.All"),
        "{text}"
    );
    assert!(
        line("assign").ends_with("missing DeviceManagementConfiguration.ReadWrite.All"),
        "{text}"
    );
    assert!(text.contains("grant admin consent"), "{text}");
    assert!(conn.exists());
    // Without the read permission the check itself fails, naming it.
    *m.granted.lock().unwrap() = Some(["User.Read.All".to_string()].into());
    let c = connect(&base, &d.path().join("other.toml"), SECRET);
    let out = tokio::task::spawn_blocking(move || {
        let mut c = c;
        c.assert().code(2).get_output().clone()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GET /deviceManagement/managedDevices")
            && err.contains("DeviceManagementManagedDevices.Read.All"),
        "{err}"
    );
}
