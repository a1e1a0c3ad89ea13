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

#[tokio::test(flavor = "multi_thread")]
async fn connect_then_import_a_tenant_that_the_other_commands_read() {
    let d = tempfile::tempdir().unwrap();
    let export = d.path().join("export");
    ringmaster_gen::generate(&export, &ringmaster_gen::Options::new(250, 5)).unwrap();
    let m = Mock::new(Tenant::from_export(&export), 40);
    let base = m.serve().await;
    let conn = d.path().join("intune.toml");
    let connect = |secret: &str| {
        let mut c = rm();
        c.env("RM_TEST_INTUNE_SECRET", secret).args([
            "connect",
            "intune",
            "--tenant",
            TENANT,
            "--client-id",
            CLIENT,
            "--secret-env",
            "RM_TEST_INTUNE_SECRET",
            "--graph-url",
            &format!("{base}/beta"),
            "--login-url",
            &base,
            "--out",
        ]);
        c.arg(&conn);
        c
    };
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
