//! The connector against a local server that behaves like Graph.

mod mock;

use mock::{CLIENT, Mock, SECRET, TENANT, Tenant};
use ringmaster_engine::connector::{Approvals, Assigned, Connector};
use ringmaster_intune::auth::{Credential, Secret};
use ringmaster_intune::client::{Budget, Endpoint, Graph, GraphError, Retry};
use ringmaster_intune::connector::{Collection, Fleet, Intune, PolicyRef};
use roaring::RoaringBitmap;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn generated(devices: u32) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    ringmaster_gen::generate(d.path(), &ringmaster_gen::Options::new(devices, 11)).unwrap();
    d
}

fn endpoint(m: &Mock) -> Endpoint {
    Endpoint {
        tenant: TENANT.into(),
        client_id: CLIENT.into(),
        graph_url: m.graph_url(),
        login_url: m.base.lock().unwrap().clone(),
    }
}

fn client(m: &Mock) -> Graph {
    let mut g = Graph::new(endpoint(m), Credential::Secret(Secret::new(SECRET.into()))).unwrap();
    // Fast backoff: the tests wait for Retry-After, not for the defaults.
    g.retry = Retry {
        attempts: 8,
        base: Duration::from_millis(20),
        cap: Duration::from_secs(2),
        ..Retry::default()
    };
    g
}

fn none() -> Approvals {
    Approvals::default()
}

fn org_of(dir: &Path) -> ringmaster_core::org::Org {
    ringmaster_import::load(&[dir.to_path_buf()]).unwrap().org
}

#[tokio::test]
async fn a_snapshot_reads_the_tenant_and_imports_like_the_export() {
    let export = generated(400);
    let m = Mock::new(Tenant::from_export(export.path()), 7);
    m.serve().await;
    let g = client(&m);
    let out = tempfile::tempdir().unwrap();
    let written = ringmaster_intune::snapshot::read_tenant(&g, out.path())
        .await
        .unwrap();
    assert!(
        written
            .files
            .iter()
            .any(|(f, n)| f == "managedDevices.json" && *n == 400),
        "{:?}",
        written.files
    );
    assert_eq!(
        m.tokens.load(Ordering::SeqCst),
        1,
        "one token for the whole read"
    );
    let (a, b) = (org_of(export.path()), org_of(out.path()));
    assert_eq!(a.users.rows, b.users.rows);
    assert_eq!(a.devices.rows, b.devices.rows);
    assert_eq!(a.groups.len(), b.groups.len());
    assert_eq!(a.policies.len(), b.policies.len());
    // Every group reaches the same devices, and every policy the same
    // devices, whether read from the export or from the tenant.
    let now = "2027-01-01T00:00:00Z".parse().unwrap();
    let (ra, rb) = (
        ringmaster_core::targeting::resolve(&a, now),
        ringmaster_core::targeting::resolve(&b, now),
    );
    let ids =
        |o: &ringmaster_core::org::Org, bm: &RoaringBitmap| -> std::collections::BTreeSet<String> {
            bm.iter()
                .filter_map(|d| o.device_id(d).map(str::to_string))
                .collect()
        };
    for (i, grp) in a.groups.iter().enumerate() {
        let j = b
            .groups
            .iter()
            .position(|x| x.id == grp.id)
            .expect("group read");
        assert_eq!(
            ids(&a, &ra.group_reach(&a, i)),
            ids(&b, &rb.group_reach(&b, j)),
            "group {}",
            grp.name
        );
    }
    for (i, p) in a.policies.iter().enumerate() {
        let j = b
            .policies
            .iter()
            .position(|x| x.id == p.id)
            .expect("policy read");
        assert_eq!(
            b.policies[j].settings.len(),
            p.settings.len(),
            "settings of {}",
            p.name
        );
        assert_eq!(
            ids(&a, &ra.policies[i].devices),
            ids(&b, &rb.policies[j].devices),
            "reach of {}",
            p.name
        );
    }
}

#[tokio::test]
async fn a_certificate_signs_in_and_a_wrong_secret_says_so() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut t = Tenant::default();
    t.users
        .push(serde_json::json!({"id": "u1", "userPrincipalName": "a@contoso.example"}));
    let m = Arc::new(Mock {
        tenant: std::sync::Mutex::new(t),
        page: 10,
        public_pem: Some(std::fs::read_to_string(fixtures.join("test-app-key.pub.pem")).unwrap()),
        ..Default::default()
    });
    m.serve().await;
    let key = std::fs::read_to_string(fixtures.join("test-app-key.pem")).unwrap();
    let sha256 = "3A1F009C4B2E7710AABBCCDDEEFF00112233445566778899AABBCCDDEEFF0011";
    let cert = Credential::Certificate {
        key_pem: Secret::new(key.clone()),
        thumbprint: sha256.into(),
    };
    let g = Graph::new(endpoint(&m), cert).unwrap();
    assert_eq!(g.get_all("/users").await.unwrap().len(), 1);
    // The mock verified the PSS signature; the header names the certificate
    // by its SHA-256 thumbprint.
    {
        let seen = m.assertions.lock().unwrap();
        let h = seen.last().unwrap();
        assert_eq!(h.alg, jsonwebtoken::Algorithm::PS256);
        assert_eq!(
            h.x5t_s256.as_deref(),
            Some("Oh8AnEsudxCqu8zd7v8AESIzRFVmd4iZqrvM3e7_ABE")
        );
        assert_eq!(h.x5t, None);
    }
    // The SHA-1 thumbprint the portal shows signs the older RS256 form.
    let old = Credential::Certificate {
        key_pem: Secret::new(key),
        thumbprint: "3A:1F:00:9C:4B:2E:77:10:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55".into(),
    };
    let g = Graph::new(endpoint(&m), old).unwrap();
    assert_eq!(g.get_all("/users").await.unwrap().len(), 1);
    assert_eq!(
        m.assertions.lock().unwrap().last().unwrap().alg,
        jsonwebtoken::Algorithm::RS256
    );
    let mut wrong =
        Graph::new(endpoint(&m), Credential::Secret(Secret::new("nope".into()))).unwrap();
    wrong.retry.base = Duration::from_millis(10);
    let e = wrong.get("/users").await.unwrap_err();
    assert!(matches!(e, GraphError::Auth { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(TENANT) && text.contains("invalid_client"),
        "{text}"
    );
    assert!(!text.contains("nope"), "the secret is never shown");
}

#[tokio::test]
async fn the_budget_paces_requests_and_a_throttling_storm_is_waited_out() {
    let export = generated(300);
    let m = Mock::new(Tenant::from_export(export.path()), 10);
    m.serve().await;
    let mut g = client(&m);
    g.budget = Budget {
        requests: 8,
        writes: 8,
        window: Duration::from_secs(1),
    };
    m.throttle.store(4, Ordering::SeqCst);
    let began = std::time::Instant::now();
    let users = g.get_all("/users").await.unwrap();
    assert_eq!(users.len(), Tenant::from_export(export.path()).users.len());
    assert_eq!(m.throttled.load(Ordering::SeqCst), 4);
    // Measured where they arrive, so a little under the client's second.
    let most = m.max_in_window(Duration::from_millis(900));
    assert!(most <= 8, "at most 8 requests in any 0.9 s: {most}");
    // Four 429s asking for a second each, waited out in turn.
    assert!(began.elapsed() >= Duration::from_secs(4));
    assert_eq!(g.counters.throttled.load(Ordering::SeqCst), 4);
}

/// A 429 without `Retry-After` is waited out with a backoff that doubles
/// each time (20, 40, 80 ms here), not retried at a fixed pace; writes keep
/// to their own, smaller budget.
#[tokio::test]
async fn throttling_without_retry_after_backs_off_and_writes_keep_their_budget() {
    let export = generated(50);
    let m = Mock::new(Tenant::from_export(export.path()), 1000);
    m.serve().await;
    let mut g = client(&m);
    m.bare_429.store(true, Ordering::SeqCst);
    m.throttle.store(3, Ordering::SeqCst);
    let began = std::time::Instant::now();
    g.get("/users").await.unwrap();
    assert!(
        began.elapsed() >= Duration::from_millis(20 + 40 + 80),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(m.throttled.load(Ordering::SeqCst), 3);
    // Three writes under a budget of two per 300 ms: the third waits.
    g.budget = Budget {
        requests: 100,
        writes: 2,
        window: Duration::from_millis(300),
    };
    let body = serde_json::json!({"displayName": "x", "mailEnabled": false, "mailNickname": "x", "securityEnabled": true});
    let began = std::time::Instant::now();
    for _ in 0..3 {
        g.send_with(reqwest::Method::POST, "/groups", Some(&body), false)
            .await
            .unwrap();
    }
    assert!(began.elapsed() >= Duration::from_millis(300));
}

/// A new group is not yet visible everywhere (Graph: "Add members" may
/// answer that the object does not exist right after it was made): the
/// wave waits and adds again, and never makes a second group.
#[tokio::test]
async fn a_wave_survives_directory_replication_lag_without_a_second_group() {
    let export = generated(100);
    let org = org_of(export.path());
    let m = Mock::new(Tenant::from_export(export.path()), 100);
    m.serve().await;
    let pid = {
        let t = m.tenant.lock().unwrap();
        t.policies
            .iter()
            .find(|(c, _)| c == "configurationPolicies")
            .map(|(_, p)| p["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let fleet = || Fleet::of(&org);
    let make = |g: Arc<Graph>| {
        Intune::new(
            g,
            "lagging",
            vec![PolicyRef {
                id: pid.clone(),
                collection: Collection::ConfigurationPolicies,
            }],
            Vec::new(),
            fleet(),
        )
    };
    m.lag.store(6, Ordering::SeqCst);
    // The answer to the group's creation is lost, too.
    m.cut_writes.store(1, Ordering::SeqCst);
    let members: RoaringBitmap = (0..org.devices.rows).step_by(2).take(30).collect();
    make(Arc::new(client(&m)))
        .assign(0, &members, &none())
        .await
        .unwrap();
    // A second process (a restart) finds the same group by its unique name,
    // while `$filter` may not show it yet.
    m.lag.store(1000, Ordering::SeqCst);
    make(Arc::new(client(&m)))
        .assign(0, &members, &none())
        .await
        .unwrap();
    let t = m.tenant.lock().unwrap();
    let groups: Vec<&Value> = t
        .groups
        .iter()
        .filter(|g| g["mailNickname"].as_str() == Some("ringmaster-lagging-w1"))
        .collect();
    assert_eq!(groups.len(), 1, "one wave group");
    let gid = groups[0]["id"].as_str().unwrap();
    assert_eq!(t.members[gid].len(), members.len() as usize);
}

/// Each policy's assignments as (target type, group id), sorted.
fn targets(m: &Mock, id: &str) -> Vec<(String, String)> {
    let t = m.tenant.lock().unwrap();
    let mut v: Vec<(String, String)> = t.assignments[id]
        .iter()
        .map(|a| {
            (
                a["target"]["@odata.type"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                a["target"]["groupId"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_wave_survives_a_throttling_storm_and_cut_connections_without_loss_or_duplicates() {
    let export = generated(300);
    let org = org_of(export.path());
    let m = Mock::new(Tenant::from_export(export.path()), 25);
    m.serve().await;
    let g = Arc::new(client(&m));
    let (new_id, old_id) = {
        let t = m.tenant.lock().unwrap();
        let settings_catalog: Vec<&String> = t
            .policies
            .iter()
            .filter(|(c, _)| c == "configurationPolicies")
            .map(|(_, p)| {
                t.assignments
                    .keys()
                    .find(|k| Some(k.as_str()) == p["id"].as_str())
                    .unwrap()
            })
            .collect();
        (settings_catalog[0].clone(), settings_catalog[1].clone())
    };
    let before_new = targets(&m, &new_id);
    let before_old = targets(&m, &old_id);
    let intune = Intune::new(
        g.clone(),
        "win-baseline-2027",
        vec![PolicyRef {
            id: new_id.clone(),
            collection: Collection::ConfigurationPolicies,
        }],
        vec![PolicyRef {
            id: old_id.clone(),
            collection: Collection::ConfigurationPolicies,
        }],
        Fleet::of(&org),
    );
    let members: RoaringBitmap = (0..org.devices.rows).step_by(3).take(70).collect();
    let want: std::collections::BTreeSet<String> = members
        .iter()
        .filter_map(|d| {
            org.device(ringmaster_core::model::DeviceAttr::EntraObjectId, d)
                .map(str::to_string)
        })
        .collect();
    assert!(want.len() > 50);
    // A storm of 429s, and three writes whose answers never arrive.
    m.throttle.store(12, Ordering::SeqCst);
    m.cut_writes.store(3, Ordering::SeqCst);
    intune.assign(0, &members, &none()).await.unwrap();
    assert_eq!(m.cuts.load(Ordering::SeqCst), 3, "the cuts happened");
    assert!(m.throttled.load(Ordering::SeqCst) >= 12);
    let group_ids: Vec<String> = {
        let t = m.tenant.lock().unwrap();
        t.groups
            .iter()
            .filter(|g| g["mailNickname"].as_str() == Some("ringmaster-win-baseline-2027-w1"))
            .map(|g| g["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        group_ids.len(),
        1,
        "one wave group, however often its creation was cut"
    );
    let gid = group_ids[0].clone();
    let held = |m: &Mock| {
        m.tenant
            .lock()
            .unwrap()
            .members
            .get(&gid)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        held(&m)
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>(),
        want,
        "exactly the wave's devices"
    );
    let mut expect = before_new.clone();
    expect.push(("#microsoft.graph.groupAssignmentTarget".into(), gid.clone()));
    expect.sort();
    assert_eq!(
        targets(&m, &new_id),
        expect,
        "the existing assignments kept, the wave's added once"
    );
    // Doing it again changes nothing.
    let writes = m.writes.lock().unwrap().len();
    intune.assign(0, &members, &none()).await.unwrap();
    assert_eq!(
        m.writes.lock().unwrap().len(),
        writes,
        "a repeated assign writes nothing"
    );
    // Isolation adds an exclusion to the overlapping policy, and takes it away.
    m.cut_writes.store(1, Ordering::SeqCst);
    intune.isolate(0, &none()).await.unwrap();
    let mut excluded = before_old.clone();
    excluded.push((
        "#microsoft.graph.exclusionGroupAssignmentTarget".into(),
        gid.clone(),
    ));
    excluded.sort();
    assert_eq!(targets(&m, &old_id), excluded);
    intune.end_isolation(0, &none()).await.unwrap();
    assert_eq!(targets(&m, &old_id), before_old);
    // A smaller wave: the group follows.
    let fewer: RoaringBitmap = members.iter().take(30).collect();
    intune.assign(0, &fewer, &none()).await.unwrap();
    assert_eq!(
        held(&m).len(),
        fewer
            .iter()
            .filter(|d| org
                .device(ringmaster_core::model::DeviceAttr::EntraObjectId, *d)
                .is_some())
            .count()
    );
    // Rollback, with its write cut: the policy is back to what it was.
    m.cut_writes.store(1, Ordering::SeqCst);
    intune.unassign(0, &none()).await.unwrap();
    assert_eq!(targets(&m, &new_id), before_new);
    intune.unassign(0, &none()).await.unwrap();
    assert_eq!(targets(&m, &new_id), before_new);
}

#[tokio::test]
async fn device_status_rows_map_to_the_engine_states_within_the_window() {
    let export = generated(100);
    let org = org_of(export.path());
    let m = Mock::new(Tenant::from_export(export.path()), 50);
    m.serve().await;
    // A page holds at most 100 rows whatever `top` asks: paging must
    // follow TotalRowCount.
    m.report_cap.store(100, Ordering::SeqCst);
    let (pid, managed): (String, Vec<Value>) = {
        let t = m.tenant.lock().unwrap();
        (
            t.policies
                .iter()
                .find(|(c, _)| c == "configurationPolicies")
                .map(|(_, p)| p["id"].as_str().unwrap().to_string())
                .unwrap(),
            t.managed.clone(),
        )
    };
    let statuses = [
        "Succeeded",
        "Error",
        "Conflict",
        "Pending",
        "Not applicable",
        "notAssigned",
    ];
    {
        let mut t = m.tenant.lock().unwrap();
        let rows = managed
            .iter()
            .take(1200)
            .enumerate()
            .map(|(i, d)| {
                (
                    d["id"].as_str().unwrap().to_string(),
                    d["deviceName"].as_str().unwrap().to_string(),
                    statuses[i % statuses.len()].to_string(),
                    format!("2027-01-18T{:02}:00:00", 8 + i % 4),
                )
            })
            .collect();
        t.report.insert(pid.clone(), rows);
    }
    let intune = Intune::new(
        Arc::new(client(&m)),
        "r",
        vec![PolicyRef {
            id: pid.clone(),
            collection: Collection::ConfigurationPolicies,
        }],
        Vec::new(),
        Fleet::of(&org),
    );
    let wave: RoaringBitmap = (0..50).collect();
    let assigned = [Assigned {
        wave: 0,
        members: wave.clone(),
        since: "2027-01-18T07:00:00Z".parse().unwrap(),
        until: None,
        pilot: true,
        left: Vec::new(),
    }];
    let got = intune
        .poll(
            &assigned,
            "2027-01-18T08:30:00Z".parse().unwrap(),
            "2027-01-18T10:00:00Z".parse().unwrap(),
        )
        .await
        .unwrap();
    // Rows at 09:00 and 10:00 only; notAssigned rows say nothing.
    assert!(!got.statuses.is_empty());
    for s in &got.statuses {
        // Each row's text read as the state it names.
        let i = managed
            .iter()
            .position(|d| d["id"] == s.device.as_str())
            .unwrap();
        use ringmaster_core::status::DeviceState::*;
        let want = [Succeeded, Error, Conflict, Pending, NotApplicable];
        assert_eq!(
            want.get(i % statuses.len()),
            Some(&s.state),
            "{}",
            statuses[i % statuses.len()]
        );
        let h = s.reported_at.to_string();
        assert!(h.contains("T09:") || h.contains("T10:"), "{h}");
        let rows =
            ringmaster_engine::ingest::Directory::new(&org).devices_of(Some(&s.device), None);
        assert_eq!(s.wave.is_some(), rows.iter().any(|d| wave.contains(*d)));
    }
    let n = managed.len().min(1200);
    let in_window = (0..n)
        .filter(|i| matches!(8 + i % 4, 9 | 10) && i % statuses.len() != 5)
        .count();
    assert_eq!(got.statuses.len(), in_window);
}

/// A compliance policy's statuses come from the compliance report (its
/// own columns: DeviceId, PolicyStatus codes, LastContact), not the
/// configuration report, which knows nothing of it.
#[tokio::test]
async fn compliance_statuses_come_from_the_compliance_report() {
    let export = generated(60);
    let org = org_of(export.path());
    let m = Mock::new(Tenant::from_export(export.path()), 50);
    m.serve().await;
    let (pid, managed) = {
        let t = m.tenant.lock().unwrap();
        (
            t.policies
                .iter()
                .find(|(c, _)| c == "deviceCompliancePolicies")
                .map(|(_, p)| p["id"].as_str().unwrap().to_string())
                .expect("the generated tenant has a compliance policy"),
            t.managed.clone(),
        )
    };
    {
        let mut t = m.tenant.lock().unwrap();
        let rows = managed
            .iter()
            .take(20)
            .enumerate()
            .map(|(i, d)| {
                (
                    d["id"].as_str().unwrap().to_string(),
                    d["deviceName"].as_str().unwrap().to_string(),
                    ["Compliant", "Not compliant", "In grace period"][i % 3].to_string(),
                    "2027-01-18T09:00:00".to_string(),
                )
            })
            .collect();
        t.report.insert(pid.clone(), rows);
    }
    let poll = |collection| {
        let intune = Intune::new(
            Arc::new(client(&m)),
            "r",
            vec![PolicyRef {
                id: pid.clone(),
                collection,
            }],
            Vec::new(),
            Fleet::of(&org),
        );
        async move {
            intune
                .poll(
                    &[],
                    "2027-01-18T08:00:00Z".parse().unwrap(),
                    "2027-01-18T10:00:00Z".parse().unwrap(),
                )
                .await
                .unwrap()
                .statuses
        }
    };
    let got = poll(Collection::DeviceCompliancePolicies).await;
    assert_eq!(got.len(), 20);
    let states: Vec<&str> = got.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(&states[..3], ["succeeded", "error", "pending"]);
    // Asked of the configuration report, a compliance policy has no rows.
    assert!(poll(Collection::ConfigurationPolicies).await.is_empty());
}

#[tokio::test]
async fn the_engine_drives_waves_through_intune_and_reads_their_reports() {
    use ringmaster_core::wave::{OnFail, Rules, WaveState};
    use ringmaster_engine::engine::{Engine, WaveSpec};
    let export = generated(200);
    let org = org_of(export.path());
    let m = Mock::new(Tenant::from_export(export.path()), 50);
    m.serve().await;
    let pid = {
        let t = m.tenant.lock().unwrap();
        t.policies
            .iter()
            .find(|(c, _)| c == "configurationPolicies")
            .map(|(_, p)| p["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let before = targets(&m, &pid);
    let t0: jiff::Timestamp = "2027-01-18T08:00:00Z".parse().unwrap();
    let h = jiff::SignedDuration::from_hours;
    let goal = ringmaster_core::goals::validate(
        &ringmaster_core::goals::GoalDraft {
            metric: Some("apply_success_rate"),
            threshold: Some(">= 90%"),
            window: Some("8h"),
            min_sample: Some(10),
            deadline: Some("2d"),
            after: None,
            critical: true,
        },
        8.0,
        None,
    )
    .unwrap();
    let wave = |name: &str, members: std::ops::Range<u32>, at: jiff::Timestamp| WaveSpec {
        name: name.into(),
        phase: ringmaster_plan::spec::PhaseKind::Pilot,
        members: members.collect(),
        starts_at: at,
        bake_hours: 8.0,
        rules: Rules {
            approval: false,
            promotion: false,
            on_fail: OnFail::Rollback,
            isolated: false,
        },
        goals: vec![goal.clone()],
        policy: Default::default(),
        enrolled: 0,
        approvals: Default::default(),
        strata: None,
        named: Vec::new(),
        settings: Vec::new(),
    };
    let waves = vec![wave("pilot", 0..40, t0), wave("broad", 40..200, t0 + h(24))];
    // Every pilot device reports Succeeded two hours in.
    {
        let mut t = m.tenant.lock().unwrap();
        let rows = (0..40u32)
            .filter_map(|d| {
                let id = org.device(ringmaster_core::model::DeviceAttr::ManagedId, d)?;
                Some((
                    id.to_string(),
                    String::new(),
                    "Succeeded".to_string(),
                    (t0 + h(2)).to_string(),
                ))
            })
            .collect();
        t.report.insert(pid.clone(), rows);
    }
    let intune = Intune::new(
        Arc::new(client(&m)),
        "engine-test",
        vec![PolicyRef {
            id: pid.clone(),
            collection: Collection::ConfigurationPolicies,
        }],
        Vec::new(),
        Fleet::of(&org),
    );
    let store = ringmaster_store::open("sqlite::memory:").await.unwrap();
    let engine = Engine::start(store, Arc::new(intune), "engine-test", "plan", waves, t0)
        .await
        .unwrap();
    engine.tick(t0).await.unwrap();
    let gid = {
        let t = m.tenant.lock().unwrap();
        t.groups
            .iter()
            .find(|g| g["mailNickname"].as_str() == Some("ringmaster-engine-test-w1"))
            .map(|g| g["id"].as_str().unwrap().to_string())
            .expect("the pilot's group")
    };
    assert!(
        targets(&m, &pid).contains(&("#microsoft.graph.groupAssignmentTarget".into(), gid.clone()))
    );
    for hour in 1..=30 {
        engine.tick(t0 + h(hour)).await.unwrap();
    }
    let rows = engine.rows().await.unwrap();
    assert_eq!(
        rows[0].state,
        WaveState::Passed,
        "the pilot's reports passed its gate"
    );
    assert!(
        !matches!(rows[1].state, WaveState::Pending),
        "the next wave started: {:?}",
        rows[1].state
    );
    let mut expect = before.clone();
    expect.push(("#microsoft.graph.groupAssignmentTarget".into(), gid));
    assert!(
        targets(&m, &pid).len() == expect.len() + 1,
        "both wave groups assigned, the rest kept"
    );
}

/// Every permission the mock knows but `without`.
fn all_but(without: &str) -> std::collections::BTreeSet<String> {
    ringmaster_intune::permissions::FEATURES
        .iter()
        .flat_map(|f| f.needs.iter().map(|n| n[0].to_string()))
        .filter(|p| p != without)
        .collect()
}

/// The app lacks `Device.ReadWrite.All` (Graph, "Add members": device
/// members need it): the wave's start fails with an error naming the
/// permission and the call, is not sent again within the tick, and goes
/// through on the next tick once the permission is granted.
#[tokio::test]
async fn a_missing_permission_is_named_mid_run_and_the_wave_goes_on_once_granted() {
    use ringmaster_core::wave::{OnFail, Rules, WaveState};
    use ringmaster_engine::engine::{Engine, WaveSpec};
    let export = generated(60);
    let org = org_of(export.path());
    let m = Mock::new(Tenant::from_export(export.path()), 50);
    m.serve().await;
    *m.granted.lock().unwrap() = Some(all_but("Device.ReadWrite.All"));
    let pid = {
        let t = m.tenant.lock().unwrap();
        t.policies
            .iter()
            .find(|(c, _)| c == "configurationPolicies")
            .map(|(_, p)| p["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let t0: jiff::Timestamp = "2027-01-18T08:00:00Z".parse().unwrap();
    let waves = vec![WaveSpec {
        name: "pilot".into(),
        phase: ringmaster_plan::spec::PhaseKind::Pilot,
        members: (0..10).collect(),
        starts_at: t0,
        bake_hours: 8.0,
        rules: Rules {
            approval: false,
            promotion: false,
            on_fail: OnFail::Rollback,
            isolated: false,
        },
        goals: Vec::new(),
        policy: Default::default(),
        enrolled: 0,
        approvals: Default::default(),
        strata: None,
        named: Vec::new(),
        settings: Vec::new(),
    }];
    let intune = Intune::new(
        Arc::new(client(&m)),
        "perm-test",
        vec![PolicyRef {
            id: pid.clone(),
            collection: Collection::ConfigurationPolicies,
        }],
        Vec::new(),
        Fleet::of(&org),
    );
    let store = ringmaster_store::open("sqlite::memory:").await.unwrap();
    let engine = Engine::start(
        store.clone(),
        Arc::new(intune),
        "perm-test",
        "plan",
        waves.clone(),
        t0,
    )
    .await
    .unwrap();
    let requests_before = m.requests.load(Ordering::SeqCst);
    let t = engine.tick(t0).await.unwrap();
    let failed = t.failed.join("\n");
    assert!(
        failed.contains("wave 1 assign")
            && failed.contains("PATCH /groups/")
            && failed.contains("Device.ReadWrite.All")
            && !failed.contains("GroupMember.ReadWrite.All"),
        "{failed}"
    );
    // One batch of adds, not eight rounds of it.
    let batches = m.requests.load(Ordering::SeqCst) - requests_before;
    assert!(batches < 8, "{batches} requests");
    let gid = {
        let t = m.tenant.lock().unwrap();
        let g = t
            .groups
            .iter()
            .find(|g| g["mailNickname"].as_str() == Some("ringmaster-perm-test-w1"))
            .expect("the group was made (Group.ReadWrite.All is granted)");
        let gid = g["id"].as_str().unwrap().to_string();
        assert!(t.members.get(&gid).is_none_or(|m| m.is_empty()));
        gid
    };
    assert!(!targets(&m, &pid).iter().any(|(_, g)| *g == gid));
    // Granted (a new token carries the role): the next tick does it.
    *m.granted.lock().unwrap() = Some(all_but(""));
    let again = Intune::new(
        Arc::new(client(&m)),
        "perm-test",
        vec![PolicyRef {
            id: pid.clone(),
            collection: Collection::ConfigurationPolicies,
        }],
        Vec::new(),
        Fleet::of(&org),
    );
    // A restart of `ringmaster run`: the same database, a new token.
    let engine = Engine::start(store, Arc::new(again), "perm-test", "plan", waves, t0)
        .await
        .unwrap();
    let t = engine
        .tick(t0 + jiff::SignedDuration::from_mins(10))
        .await
        .unwrap();
    assert!(t.failed.is_empty(), "{:?}", t.failed);
    assert_eq!(m.tenant.lock().unwrap().members[&gid].len(), 10);
    assert!(targets(&m, &pid).iter().any(|(_, g)| *g == gid));
    assert!(matches!(
        engine.rows().await.unwrap()[0].state,
        WaveState::Applying | WaveState::Baking
    ));
}

/// The plan's scope tags: checked by name against the tenant, added to the
/// new policy (keeping its Default tag) before it is assigned, and named in
/// the wave group's description. Assignments and groups carry none (the
/// mock refuses `roleScopeTagIds` on them, as Graph has no such property).
#[tokio::test]
async fn scope_tags_go_on_the_policy_and_in_the_group_description() {
    let export = generated(100);
    let org = org_of(export.path());
    let m = Mock::new(Tenant::from_export(export.path()), 100);
    m.serve().await;
    let pid = {
        let mut t = m.tenant.lock().unwrap();
        t.scope_tags = vec![
            serde_json::json!({"id": "3", "displayName": "Paris"}),
            serde_json::json!({"id": "4", "displayName": "Lyon"}),
        ];
        t.policies
            .iter()
            .find(|(c, _)| c == "configurationPolicies")
            .map(|(_, p)| p["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let make = |tags: Vec<(&str, &str)>| {
        Intune::new(
            Arc::new(client(&m)),
            "tagged",
            vec![PolicyRef {
                id: pid.clone(),
                collection: Collection::ConfigurationPolicies,
            }],
            Vec::new(),
            Fleet::of(&org),
        )
        .with_scope_tags(
            tags.into_iter()
                .map(|(n, i)| (n.to_string(), i.to_string()))
                .collect(),
        )
    };
    let members: RoaringBitmap = (0..org.devices.rows).take(10).collect();

    // A tag the tenant does not have stops the wave before any write.
    let e = make(vec![("Paris", "3"), ("Marseille", "7")])
        .assign(0, &members, &none())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("scope tag `Marseille` of the plan is not in the tenant (it has: Default (0), Paris (3), Lyon (4))"),
        "{e}"
    );
    let e = make(vec![("Lyon", "5")])
        .assign(0, &members, &none())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("scope tag `Lyon` has id 4 in the tenant, but the plan's [[scope_tags]] says 5"),
        "{e}"
    );
    assert!(m.writes.lock().unwrap().is_empty(), "nothing written");

    make(vec![("paris", "3")])
        .assign(0, &members, &none())
        .await
        .unwrap();
    {
        let t = m.tenant.lock().unwrap();
        let p = &t
            .policies
            .iter()
            .find(|(_, p)| p["id"] == pid.as_str())
            .unwrap()
            .1;
        assert_eq!(p["roleScopeTagIds"], serde_json::json!(["0", "3"]));
        let g = t
            .groups
            .iter()
            .find(|g| g["mailNickname"].as_str() == Some("ringmaster-tagged-w1"))
            .unwrap();
        assert_eq!(
            g["description"],
            "Managed by ringmaster: its members are the devices of one rollout wave. Scope tags: paris (3)."
        );
        assert!(g.get("roleScopeTagIds").is_none());
    }
    // Tagged already: a second process reads and writes no tags again.
    let patches = |m: &Mock| {
        m.writes
            .lock()
            .unwrap()
            .iter()
            .filter(|(method, path)| method == "PATCH" && path.contains(&pid))
            .count()
    };
    assert_eq!(patches(&m), 1);
    make(vec![("Paris", "3")])
        .assign(1, &members, &none())
        .await
        .unwrap();
    assert_eq!(patches(&m), 1);
}
