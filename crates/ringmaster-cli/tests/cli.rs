use assert_cmd::Command;
use predicates::prelude::*;
use std::path::Path;

fn rm() -> Command {
    let mut c = Command::cargo_bin("ringmaster").unwrap();
    c.env("RINGMASTER_NOW", "2026-11-24T12:00:00Z");
    c
}

/// A small organization: two Windows PCs and a Mac; a nested static group;
/// a VIP exclusion; a filter that keeps Windows 11 only.
fn fixture(dir: &Path) {
    let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    w(
        "users.json",
        r#"{"value":[
        {"id":"u-ada","userPrincipalName":"ada@contoso.com","department":"Sales","country":"GB"},
        {"id":"u-ceo","userPrincipalName":"ceo@contoso.com","department":"Executive","isVip":true}]}"#,
    );
    w(
        "managedDevices.json",
        r#"{"value":[
        {"id":"m1","deviceName":"PC-ADA","azureADDeviceId":"a1","operatingSystem":"Windows","osVersion":"10.0.22631.4317","userId":"u-ada","model":"Latitude 7440"},
        {"id":"m2","deviceName":"PC-CEO","azureADDeviceId":"a2","operatingSystem":"Windows","osVersion":"10.0.19045.5011","userId":"u-ceo","model":"Surface Laptop 5"},
        {"id":"m3","deviceName":"MAC-1","azureADDeviceId":"a3","operatingSystem":"macOS","osVersion":"15.1","userId":"u-ada","model":"MacBook Air"},
        {"id":"m4","deviceName":"DUP","azureADDeviceId":"a4","operatingSystem":"Windows"},
        {"id":"m5","deviceName":"DUP","azureADDeviceId":"a5","operatingSystem":"Windows"}]}"#,
    );
    w(
        "devices.json",
        r#"{"value":[
        {"id":"d1","deviceId":"a1","displayName":"PC-ADA","operatingSystem":"Windows"},
        {"id":"d2","deviceId":"a2","displayName":"PC-CEO","operatingSystem":"Windows"},
        {"id":"d3","deviceId":"a3","displayName":"MAC-1","operatingSystem":"MacMDM"}]}"#,
    );
    w(
        "groups.json",
        r##"{"value":[
        {"id":"g-sales","displayName":"Sales Users","groupTypes":["DynamicMembership"],"membershipRule":"user.department -eq \"Sales\""},
        {"id":"g-all","displayName":"All Staff","members":[{"@odata.type":"#microsoft.graph.group","id":"g-sales"},{"@odata.type":"#microsoft.graph.user","id":"u-ceo"}]},
        {"id":"g-vip","displayName":"VIP Users","members":[{"@odata.type":"#microsoft.graph.user","id":"u-ceo"}]}]}"##,
    );
    w(
        "assignmentFilters.json",
        r#"{"value":[{"id":"f-w11","displayName":"Windows 11","platform":"windows10AndLater","rule":"(device.osVersion -startsWith \"10.0.2\")"}]}"#,
    );
    w(
        "policy.json",
        r##"{"@odata.type":"#microsoft.graph.deviceManagementConfigurationPolicy","id":"p-laps","name":"LAPS","platforms":"windows10","settings":[],
        "assignments":[
          {"target":{"@odata.type":"#microsoft.graph.groupAssignmentTarget","groupId":"g-all","deviceAndAppManagementAssignmentFilterId":"f-w11","deviceAndAppManagementAssignmentFilterType":"include"}},
          {"target":{"@odata.type":"#microsoft.graph.exclusionGroupAssignmentTarget","groupId":"g-vip"}}]}"##,
    );
    w(
        "policy2.json",
        r##"{"@odata.type":"#microsoft.graph.deviceManagementConfigurationPolicy","id":"p-fw","name":"Firewall","platforms":"windows10","settings":[],
        "assignments":[{"target":{"@odata.type":"#microsoft.graph.allDevicesAssignmentTarget"}}]}"##,
    );
}

#[test]
fn rules_check_accepts_and_rejects_with_a_caret() {
    rm().args(["rules", "check", r#"user.department -eq "Sales""#])
        .assert()
        .success()
        .stdout(predicate::str::contains("valid"));
    rm().args([
        "rules",
        "check",
        "--grammar",
        "filter",
        r#"(device.model -startsWith "Surface""#,
    ])
    .assert()
    .code(2)
    .stderr(
        predicate::str::contains("never closed")
            .and(predicate::str::contains("column 1"))
            .and(predicate::str::contains("^")),
    );
    let out = rm()
        .args(["rules", "check", "--json", r#"user.departmnt -eq "x""#])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["error"]["column"], 6);
    assert!(
        v["error"]["expected"]
            .as_str()
            .unwrap()
            .contains("user.department")
    );
    rm().args(["rules", "check", "--grammar", "bogus", "x"])
        .assert()
        .code(2);
}

#[test]
fn rules_eval_prints_true_or_false_and_reasons() {
    let d = tempfile::tempdir().unwrap();
    let obj = d.path().join("d.json");
    std::fs::write(&obj, r#"{"device": {"model": "Surface Laptop 5", "deviceOwnership": "Corporate", "operatingSystemVersion": "10.0.22631.4317"}}"#).unwrap();
    let rule = r#"(device.model -startsWith "Surface") and (device.deviceOwnership -eq "Corporate") and (device.operatingSystemVersion -ge 10.0.22000)"#;
    rm().args(["rules", "eval", "--grammar", "filter", rule, "--object"])
        .arg(&obj)
        .assert()
        .success()
        .stdout("true\n");
    let out = rm()
        .args([
            "rules",
            "eval",
            "--grammar",
            "filter",
            "--json",
            r#"(device.model -eq "Surface Pro")"#,
            "--object",
        ])
        .arg(&obj)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["result"], false);
    assert_eq!(v["comparisons"][0]["values"][0], "Surface Laptop 5");
    let users = d.path().join("u.json");
    std::fs::write(&users, r#"{"user": {"assignedPlans": [{"servicePlanId": "p1", "capabilityStatus": "Enabled"}], "employeeHireDate": "2026-11-20T00:00:00Z"}}"#).unwrap();
    rm().args(["rules", "eval", r#"user.assignedPlans -any (assignedPlan.servicePlanId -eq "p1" -and assignedPlan.capabilityStatus -eq "Enabled") -and user.employeeHireDate -ge system.now -minus p7d"#, "--now", "2026-11-24T00:00:00Z", "--object"])
        .arg(&users)
        .assert()
        .success()
        .stdout("true\n");
    std::fs::write(&obj, r#"{"device": {"modle": "x"}}"#).unwrap();
    rm().args([
        "rules",
        "eval",
        "--grammar",
        "filter",
        r#"(device.model -eq "x")"#,
        "--object",
    ])
    .arg(&obj)
    .assert()
    .code(2)
    .stderr(predicate::str::contains("'modle' is not a device property"));
}

#[test]
fn explain_device_gives_status_and_reasons() {
    let d = tempfile::tempdir().unwrap();
    fixture(d.path());
    rm().args(["explain", "--org"])
        .arg(d.path())
        .args(["--device", "PC-ADA", "--policy", "LAPS"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Included       LAPS"))
        .stdout(predicate::str::contains(
            "group 'All Staff' contains group 'Sales Users'",
        ))
        .stdout(predicate::str::contains(
            "include filter 'Windows 11' matches it",
        ));
    let out = rm()
        .args(["explain", "--json", "--org"])
        .arg(d.path())
        .args(["--device", "PC-CEO"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let laps = v["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"] == "LAPS")
        .unwrap();
    assert_eq!(laps["status"], "Excluded");
    assert!(
        laps["reason"].as_str().unwrap().contains("VIP Users"),
        "{laps}"
    );
    let out = rm()
        .args(["explain", "--json", "--org"])
        .arg(d.path())
        .args(["--device", "MAC-1"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let statuses: Vec<&str> = v["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    // The Mac is not on Windows 11 (filter) for LAPS, and NotApplicable for the All-devices Windows firewall.
    assert_eq!(statuses, vec!["Excluded", "NotApplicable"]);
}

#[test]
fn explain_group_lists_direct_and_inherited_assignments() {
    let d = tempfile::tempdir().unwrap();
    fixture(d.path());
    rm().args(["explain", "--org"])
        .arg(d.path())
        .args(["--group", "sales users"])
        .assert()
        .success()
        .stdout(predicate::str::contains("nested in: All Staff"))
        .stdout(predicate::str::contains(
            "include  LAPS (through parent group 'All Staff') with include filter 'Windows 11'",
        ));
}

#[test]
fn explain_refuses_ambiguous_or_unknown_subjects() {
    let d = tempfile::tempdir().unwrap();
    fixture(d.path());
    rm().args(["explain", "--org"])
        .arg(d.path())
        .args(["--device", "DUP"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("matches 2 devices"));
    rm().args(["explain", "--org"])
        .arg(d.path())
        .args(["--device", "NOPE"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no device matches 'NOPE'"));
    rm().args(["explain", "--org"])
        .arg(d.path())
        .args(["--device", "PC-ADA", "--policy", "nope"])
        .assert()
        .code(2);
}

#[test]
fn org_reports_bad_exports_with_file_record_and_field() {
    let d = tempfile::tempdir().unwrap();
    fixture(d.path());
    rm().args(["org", "--org"])
        .arg(d.path())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "2 users, 5 devices, 3 groups (1 dynamic), 1 filters, 2 policies",
        ));
    std::fs::write(
        d.path().join("users.json"),
        r#"{"value":[{"id":"u1"},{"id":"u2","department":7}]}"#,
    )
    .unwrap();
    rm().args(["org", "--org"])
        .arg(d.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "users.json, record 2, field `department`",
        ));
}

#[test]
fn gen_writes_an_org_that_loads() {
    let d = tempfile::tempdir().unwrap();
    rm().args(["gen", "--devices", "300", "--seed", "3"])
        .arg(d.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("300 devices"));
    rm().args(["org", "--json", "--org"])
        .arg(d.path())
        .assert()
        .success();
    rm().args(["gen", "--devices", "0"])
        .arg(d.path())
        .assert()
        .code(2);
}

#[test]
fn demo_runs_the_tour_end_to_end() {
    // The demo's waves are judged on a few dozen devices each, so one random
    // error can stop the tour; its story holds at 6,000 devices (and 20,000).
    let d = tempfile::tempdir().unwrap();
    rm().args(["demo", "--no-serve", "--devices", "6000", "--dir"])
        .arg(d.path())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "== 4. Why does a policy reach this device, or not? ==",
        ))
        .stdout(predicate::str::contains("Checked 20 policies"))
        .stdout(predicate::str::contains("== 7. The rollout plan"))
        .stdout(predicate::str::contains("Pilot (isolated)"))
        .stdout(predicate::str::contains("TVD"))
        .stdout(predicate::str::contains(
            "== 8. Run it on a simulated fleet",
        ))
        .stdout(predicate::str::contains("the wave failed its gates"))
        .stdout(predicate::str::contains("(plan version 2)"))
        // The broken model is held in wave 6 and the rest of it passes.
        .stdout(predicate::str::is_match(
            "wave 6 'sales': model Latitude 7440 held \\(\\d+ devices kept back\\): apply success rate [^\n]*\\(\\d+\\.\\d+ % anytime interval [^;]*; 95 % split over \\d+ tests: 3 goals × \\d+ strata\\)[^\n]* in model Latitude 7440, look \\d+ misses the bar of ≥ 85 %: fail",
        ).unwrap())
        .stdout(predicate::str::contains("wave 6 'sales': baking → passed"))
        .stdout(predicate::str::contains(
            "Every wave passed: the rollout is in its run state.",
        ))
        .stdout(predicate::str::contains("== 10. Run state"))
        // The injected update raises its alerts, the held model's errors
        // show as an outlier, and nothing else is raised.
        .stdout(predicate::str::contains(
            "run state: 4 alert(s) raised (regressed, outlier:model:Latitude 7440, tickets, outlier:OS build:10.0.26100.2314)",
        ))
        .stdout(predicate::str::contains("devices in scope:"));
    // `status` says which stratum is held, with its evidence.
    rm().arg("status")
        .arg(d.path().join("ringmaster.toml"))
        .assert()
        .success()
        .stdout(predicate::str::is_match(
            "\\n +held: model Latitude 7440 \\(\\d+ devices, kept back, the policy stays, since [^)]*\\): apply success rate [^\n]*: fail\\n",
        ).unwrap());
    assert!(d.path().join("plan.html").exists());
    assert!(d.path().join("messages").read_dir().unwrap().count() > 4);
}

/// One HTTP/1.1 request on loopback; the status line and the rest. (The
/// demo's listener is bound before it prints its address; a request made
/// while no run serves waits in the backlog for the next one.)
fn http(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connecting to the demo's dashboard");
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The served demo on 6,000 devices in `dir`, its output piped and its
/// stderr in `dir/stderr`.
fn served_demo(dir: &Path) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("ringmaster"))
        .env("RINGMASTER_NOW", "2026-11-24T12:00:00Z")
        // Its own snapshot cache: another build's snapshot in the user's
        // cache would add a note to stderr.
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env_remove("RUST_LOG")
        .args([
            "demo",
            "--devices",
            "6000",
            "--listen",
            "127.0.0.1:0",
            "--speed",
            "360000",
            "--dir",
        ])
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .spawn()
        .unwrap()
}

/// The address and token from the demo's first line:
/// `dashboard: http://ADDR/ui  (sign in with the token rm_…)`.
fn dashboard_line(line: &str) -> (String, String) {
    assert!(line.starts_with("dashboard: http://"), "{line}");
    let addr = line["dashboard: http://".len()..line.find("/ui").unwrap()].to_string();
    let token = line[line.find("rm_").unwrap()..line.len() - 1].to_string();
    (addr, token)
}

/// What any served demo's output must be: the address and token before the
/// tour's first step, no terminal codes, no log lines (they are in the
/// folder's demo.log), and the dashboard's end said last.
fn check_served_output(dir: &Path, out: &[u8]) {
    assert!(!out.contains(&0x1b), "an ESC byte in the output");
    let out = String::from_utf8(out.to_vec()).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    let first_step = lines
        .iter()
        .position(|l| l.starts_with("== "))
        .expect("the tour's first step");
    let address = lines
        .iter()
        .position(|l| l.starts_with("dashboard: http://"))
        .expect("the dashboard's address");
    assert!(address < first_step, "{out}");
    assert!(lines[..first_step].iter().any(|l| l.contains("demo.log")));
    for l in &lines {
        assert!(
            !(l.contains(" INFO ") || l.contains(" WARN ") || l.contains("ERROR")),
            "a log line in the tour: {l}"
        );
    }
    let last = lines.iter().rev().find(|l| !l.is_empty()).unwrap();
    assert!(last.starts_with("dashboard stopped"), "{out}");
    assert_eq!(std::fs::read_to_string(dir.join("stderr")).unwrap(), "");
}

#[test]
fn the_demo_serves_its_dashboard_while_it_runs() {
    use std::io::BufRead;
    let d = tempfile::tempdir().unwrap();
    let mut child = served_demo(d.path());
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let (addr, token) = dashboard_line(first.trim_end());
    let ui = http(
        &addr,
        "GET /ui HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(ui.starts_with("HTTP/1.1 303"), "{ui}");
    let api = http(
        &addr,
        &format!(
            "GET /api/waves HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(
        api.starts_with("HTTP/1.1 200") && api.contains("Pilot (isolated)"),
        "{api}"
    );
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let mut out = first.into_bytes();
    out.extend(&rest);
    check_served_output(d.path(), &out);
    let rest = String::from_utf8(rest).unwrap();
    assert!(rest.contains("== Summary =="), "{rest}");
    assert!(rest.contains("version 1 stopped at wave"), "{rest}");
    assert!(
        rest.contains("version 2 (the fixed baseline) passed every wave"),
        "{rest}"
    );
    // Piped, it does not wait for Ctrl-C, and says so.
    assert!(rest.contains("dashboard stopped: the output is not a terminal"));
    let log = std::fs::read_to_string(d.path().join("demo.log")).unwrap();
    assert!(log.contains("path=/api/waves status=200"), "{log}");
}

#[test]
fn ctrl_c_stops_the_served_demo_and_says_so() {
    use std::io::BufRead;
    let d = tempfile::tempdir().unwrap();
    let mut child = served_demo(d.path());
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let (addr, token) = dashboard_line(first.trim_end());
    // Answered once the first run serves (the request waits until then).
    let page = http(
        &addr,
        &format!(
            "GET /api/waves HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let kill = std::process::Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut out = first.into_bytes();
    out.extend(&rest);
    check_served_output(d.path(), &out);
    // Interrupted during the tour (130), or, on a machine fast enough to end
    // the tour first, at its end (0); either way it said that it stopped.
    assert!(status.code() == Some(130) || status.success(), "{status:?}");
    if status.code() == Some(130) {
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("dashboard stopped: the demo was interrupted"),
            "{out}"
        );
    }
}

/// The demo's organization, new baseline and commented plan in a folder,
/// without the conflicts the example accepts (the tests accept them).
fn plan_fixture(dir: &Path) -> std::path::PathBuf {
    rm().args(["gen", "--devices", "3000", "--seed", "7", "--proposed"])
        .arg(dir.join("proposed"))
        .arg(dir.join("org"))
        .assert()
        .success();
    let plan = dir.join("ringmaster.toml");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/ringmaster.toml");
    let text = std::fs::read_to_string(example).unwrap();
    let (unaccepted, _) = text
        .split_once("\n# Conflicts accepted on purpose")
        .expect("the example's accepted conflicts");
    // The example's bars are what its waves can prove on the demo's 6,000
    // devices; on these 3,000 the Legal wave is too small for them.
    let unaccepted = unaccepted.replacen(
        "kind = \"enterprise\"\n",
        "kind = \"enterprise\"\njudging = \"point\"\n",
        1,
    );
    std::fs::write(&plan, unaccepted).unwrap();
    plan
}

#[test]
fn plan_prints_writes_and_exits_by_its_checks() {
    let d = tempfile::tempdir().unwrap();
    let plan = plan_fixture(d.path());
    // The example plan meets conflicts with deployed LAPS policies: exit 1.
    rm().arg("plan")
        .arg(&plan)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("Pilot (combined)"))
        .stdout(predicate::str::contains("enrollment: user-assisted"))
        .stdout(predicate::str::contains("conflict on"));
    let html = d.path().join("out/plan.html");
    rm().arg("plan")
        .arg(&plan)
        .args(["--format", "html", "--out"])
        .arg(&html)
        .args(["--comms"])
        .arg(d.path().join("messages"))
        .assert()
        .code(1);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("Pilot representativeness"));
    // Markup written into the Markdown is escaped in the page: none is written.
    assert!(
        !page.contains("&lt;br&gt;"),
        "a literal <br> in the plan page"
    );
    let names: Vec<String> = std::fs::read_dir(d.path().join("messages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.contains("pilot-pilot_users") && n.ends_with(".html")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.contains("enterprise-production_users-sales.md")),
        "{names:?}"
    );
    let json = rm()
        .arg("plan")
        .arg(&plan)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(v["plan"]["waves"].as_array().unwrap().len() > 5);
    assert!(v["communications"].as_array().unwrap().len() > 4);
    // Accepting the conflicts in the plan makes it ready: exit 0.
    let mut text = std::fs::read_to_string(&plan).unwrap();
    for s in [
        "device_vendor_msft_laps_policies_passwordagedays",
        "device_vendor_msft_laps_policies_passwordlength",
        "device_vendor_msft_laps_policies_passwordcomplexity",
        "device_vendor_msft_policy_config_defender_submitsamplesconsent",
        "device_vendor_msft_policy_config_defender_allowcloudprotection",
        "device_vendor_msft_policy_config_defender_allowrealtimemonitoring",
    ] {
        text.push_str(&format!("\n[[accept]]\nsetting = \"{s}\"\nreason = \"old policy retires\"\nexpires = \"2027-12-31\"\n"));
    }
    std::fs::write(&plan, text).unwrap();
    rm().arg("plan")
        .arg(&plan)
        .assert()
        .success()
        .stdout(predicate::str::contains("accepted until 2027-12-31"));
}

#[test]
fn plan_errors_point_at_the_file_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    let plan = plan_fixture(d.path());
    let text = std::fs::read_to_string(&plan).unwrap().replace(
        "group = \"All Sales Devices\"",
        "group = \"All Sails Devices\"",
    );
    std::fs::write(&plan, &text).unwrap();
    let line = text.lines().position(|l| l.contains("All Sails")).unwrap() + 1;
    rm().arg("plan")
        .arg(&plan)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "ringmaster.toml:{line}:9"
        )))
        .stderr(predicate::str::contains(
            "no group named or with id `All Sails Devices`",
        ))
        .stderr(predicate::str::contains("^^^^"));
    rm().args(["plan", "--schema"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"capacity_per_day\""));
    rm().arg("plan")
        .arg(d.path().join("missing.toml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.toml"));
}

#[test]
fn completions_for_bash() {
    rm().args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("_ringmaster()"));
}

#[test]
fn init_scaffolds_a_plan_that_plans() {
    let d = tempfile::tempdir().unwrap();
    rm().args(["gen", "--devices", "3000", "--proposed"])
        .arg(d.path().join("new"))
        .arg(d.path().join("org"))
        .assert()
        .success();
    let out = d.path().join("rollout/ringmaster.toml");
    // The generated baseline conflicts with deployed policies: the checks say so (exit 1).
    rm().args(["init", "--org"])
        .arg(d.path().join("org"))
        .arg("--new")
        .arg(d.path().join("new"))
        .arg("--out")
        .arg(&out)
        .args(["--name", "Baseline 2027", "--time-zone", "Europe/Amsterdam"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("targeted groups covering"))
        .stdout(predicate::str::contains("it plans with"));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("id = \"baseline-2027\"") && text.contains("group = \"All Sales Devices\"")
    );
    assert!(text.contains("REVIEW"));
    rm().arg("plan")
        .arg(&out)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("conflict"));
    // Never over an existing file without --force; bad input is exit 2.
    rm().args(["init", "--org"])
        .arg(d.path().join("org"))
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--force"));
    rm().args(["init", "--org"])
        .arg(d.path().join("org"))
        .args(["--time-zone", "Mars/Olympus", "--force", "--out"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("IANA"));
}

#[test]
fn tokens_are_made_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("t.db").display());
    let made = rm()
        .args(["token", "create", "--role", "operator", "--label", "ops"])
        .args(["--expires", "30d", "--database", &db])
        .output()
        .unwrap();
    assert!(made.status.success());
    let secret = String::from_utf8(made.stdout).unwrap().trim().to_string();
    let note = String::from_utf8(made.stderr).unwrap();
    assert!(note.contains("valid until"), "{note}");
    rm().args(["token", "create", "--role", "viewer", "--expires", "never"])
        .args(["--database", &db])
        .assert()
        .success();
    rm().args(["token", "create", "--role", "viewer", "--expires", "1w"])
        .args(["--database", &db])
        .assert()
        .code(2);

    let list = rm()
        .args(["token", "list", "--database", &db])
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(!list.contains(&secret), "the secret is never listed");
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(rows[0].contains("operator") && rows[0].contains("valid") && rows[0].ends_with("ops"));
    assert!(rows[1].contains("viewer") && rows[1].contains("never"));

    rm().args(["token", "revoke", "1", "--database", &db, "--actor", "jane"])
        .assert()
        .success();
    let list = rm()
        .args(["token", "list", "--database", &db])
        .output()
        .unwrap();
    assert!(
        String::from_utf8(list.stdout)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .contains("revoked")
    );
    // Revoking again, or a token that is not there, says so.
    rm().args(["token", "revoke", "1", "--database", &db])
        .assert()
        .code(2);
}
