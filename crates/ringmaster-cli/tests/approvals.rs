//! Two-person approvals through the CLI: the example plan's enterprise
//! waves each need two approvers other than the one who ran the rollout.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::Path;

fn rm(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("ringmaster").unwrap();
    c.current_dir(dir)
        .env("RINGMASTER_NOW", "2026-11-24T12:00:00Z")
        .env_remove("RINGMASTER_DATABASE_URL")
        .env_remove("USER");
    c
}

#[test]
fn a_wave_needs_two_approvers_other_than_the_requester() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    rm(dir)
        .args([
            "gen",
            "--devices",
            "6000",
            "--seed",
            "7",
            "--proposed",
            "proposed/",
            "org/",
        ])
        .assert()
        .success();
    rm(dir).args(["init", "--example"]).assert().success();
    let plan = dir.join("ringmaster.toml");
    let text = std::fs::read_to_string(&plan).unwrap();
    assert!(text.contains("approval = true\n"));
    let text = text.replacen("approval = true\n", "approvals = 2\n", 1)
        + "\n[approvals]\ndistinct = true\n";
    std::fs::write(&plan, text).unwrap();

    rm(dir)
        .args(["run", "--simulate", "--actor", "alice"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "waiting for an operator: wave 4 'IT and early adopters' is awaiting approval",
        ));
    rm(dir)
        .args(["approve", "--wave", "4", "--actor", "alice"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "alice requested it and cannot approve it; 0 of 2 approvals; alice requested it, 2 different approvers are needed",
        ));
    rm(dir)
        .args(["approve", "--wave", "4", "--actor", "bob"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "approval by bob recorded; still awaiting approval: 1 of 2 approvals; alice requested it, a different approver is needed",
        ));
    rm(dir)
        .args(["approve", "--wave", "4", "--actor", "bob"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "bob approved it already (each person counts once)",
        ));
    rm(dir)
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "approval: 1 of 2 approvals; alice requested it, a different approver is needed; approved so far by bob; requested by alice",
        ));
    let out = rm(dir).args(["status", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["requester"], "alice");
    assert_eq!(v["waves"][3]["approvers"], serde_json::json!(["bob"]));
    rm(dir)
        .args(["approve", "--wave", "4", "--actor", "carol"])
        .assert()
        .success()
        .stdout(predicate::str::contains("awaiting approval → applying"));
    // Another driver does not become the requester, and approving in
    // advance as the requester opens nothing: the run stops at wave 5.
    rm(dir)
        .args(["run", "--approve", "all", "--actor", "alice"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "wave 5 'Wave 2 (5%)' is not approved: alice requested it and cannot approve it",
        ))
        .stdout(predicate::str::contains(
            "waiting for an operator: wave 5 'Wave 2 (5%)' is awaiting approval",
        ));
    rm(dir)
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "approved by bob, carol; requested by alice",
        ));
    // The run was simulated: every transition's time says so.
    let out = rm(dir).arg("history").output().unwrap();
    let history = String::from_utf8(out.stdout).unwrap();
    assert!(history.lines().count() > 5, "{history}");
    for line in history.lines() {
        assert!(line.contains(" CET (simulated)  "), "{line}");
    }
}
