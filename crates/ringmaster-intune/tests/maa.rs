//! Waves through a tenant whose Multi Admin Approval protects the new
//! policies: the engine over the Intune connector over the mock, on an
//! injected clock.

mod mock;

use mock::{CLIENT, Mock, SECRET, TENANT, Tenant};
use ringmaster_core::wave::{Event, OnFail, Reason, Rules, WaveState};
use ringmaster_engine::engine::{Engine, WaveSpec, approval_note};
use ringmaster_intune::auth::{Credential, Secret};
use ringmaster_intune::client::{Endpoint, Graph, Retry};
use ringmaster_intune::connector::{Collection, Fleet, Intune, PolicyRef};
use ringmaster_store::{ApprovalStatus, Store};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

struct Setup {
    mock: Arc<Mock>,
    org: ringmaster_core::org::Org,
    policy: PolicyRef,
    store: Arc<dyn Store>,
    _export: tempfile::TempDir,
}

fn t0() -> jiff::Timestamp {
    "2027-01-18T08:00:00Z".parse().unwrap()
}

fn at(minutes: i64) -> jiff::Timestamp {
    t0() + jiff::SignedDuration::from_mins(minutes)
}

/// A tenant whose first policy of `collection` is protected.
async fn setup(collection: Collection) -> Setup {
    let export = tempfile::tempdir().unwrap();
    ringmaster_gen::generate(export.path(), &ringmaster_gen::Options::new(60, 11)).unwrap();
    let org = ringmaster_import::load(&[export.path().to_path_buf()])
        .unwrap()
        .org;
    let mock = Mock::new(Tenant::from_export(export.path()), 50);
    mock.serve().await;
    let name = match collection {
        Collection::DeviceCompliancePolicies => "deviceCompliancePolicies",
        _ => "configurationPolicies",
    };
    let id = {
        let t = mock.tenant.lock().unwrap();
        t.policies
            .iter()
            .find(|(c, _)| c == name)
            .map(|(_, p)| p["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    mock.protected.lock().unwrap().insert(id.clone());
    *mock.now.lock().unwrap() = Some(t0());
    Setup {
        mock,
        org,
        policy: PolicyRef { id, collection },
        store: ringmaster_store::open("sqlite::memory:").await.unwrap(),
        _export: export,
    }
}

fn waves() -> Vec<WaveSpec> {
    waves_failing(OnFail::Pause)
}

fn waves_failing(on_fail: OnFail) -> Vec<WaveSpec> {
    vec![WaveSpec {
        name: "pilot".into(),
        phase: ringmaster_plan::spec::PhaseKind::Pilot,
        members: (0..10).collect(),
        starts_at: t0(),
        bake_hours: 8.0,
        rules: Rules {
            approval: false,
            promotion: false,
            on_fail,
            isolated: false,
        },
        goals: Vec::new(),
        policy: Default::default(),
        approvals: Default::default(),
        strata: None,
        named: Vec::new(),
        enrolled: 0,
        settings: Vec::new(),
    }]
}

/// A run of `ringmaster run`: a new Graph client, the same database.
async fn engine(s: &Setup) -> Engine {
    engine_of(s, waves()).await
}

async fn engine_of(s: &Setup, waves: Vec<WaveSpec>) -> Engine {
    let mut g = Graph::new(
        Endpoint {
            tenant: TENANT.into(),
            client_id: CLIENT.into(),
            graph_url: s.mock.graph_url(),
            login_url: s.mock.base.lock().unwrap().clone(),
        },
        Credential::Secret(Secret::new(SECRET.into())),
    )
    .unwrap();
    g.retry = Retry {
        attempts: 4,
        base: Duration::from_millis(10),
        cap: Duration::from_millis(100),
        ..Retry::default()
    };
    let intune = Intune::new(
        Arc::new(g),
        "maa",
        vec![s.policy.clone()],
        Vec::new(),
        Fleet::of(&s.org),
    );
    Engine::start(
        s.store.clone(),
        Arc::new(intune),
        "maa",
        "plan",
        waves,
        t0(),
    )
    .await
    .unwrap()
}

/// Whether the wave's group is among the policy's assignments.
fn assigned(s: &Setup) -> bool {
    let t = s.mock.tenant.lock().unwrap();
    let Some(g) = t
        .groups
        .iter()
        .find(|g| g["mailNickname"] == "ringmaster-maa-w1")
    else {
        return false;
    };
    t.assignments[&s.policy.id]
        .iter()
        .any(|a| a["target"]["groupId"] == g["id"])
}

async fn note(s: &Setup) -> Option<String> {
    let key = ringmaster_store::WaveKey {
        rollout: "maa".into(),
        version: 1,
        idx: 0,
    };
    approval_note(&s.store.tenant_approvals("maa").await.unwrap(), &key)
}

async fn state(e: &Engine) -> WaveState {
    e.rows().await.unwrap()[0].state
}

fn made(s: &Setup) -> usize {
    s.mock.approvals_made.load(Ordering::SeqCst)
}

/// `/assign` requests that reached the tenant (sent or held for approval).
fn assigns(s: &Setup) -> usize {
    s.mock
        .writes
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, p)| p.ends_with("/assign"))
        .count()
}

fn written(s: &Setup) -> usize {
    s.mock.protected_writes.lock().unwrap().len()
}

/// The first tick asks for approval with a justification from the plan
/// and records the request; the wave waits, polling, without sending.
async fn requested(s: &Setup) -> (Engine, String) {
    let e = engine(s).await;
    let t = e.tick(t0()).await.unwrap();
    assert!(t.failed.is_empty(), "{:?}", t.failed);
    assert!(
        t.approvals
            .iter()
            .any(|a| a.contains("tenant approval requested for policy")),
        "{:?}",
        t.approvals
    );
    assert_eq!(made(s), 1);
    assert_eq!(written(s), 0);
    assert!(!assigned(s));
    assert_eq!(state(&e).await, WaveState::Applying);
    let reqs = s.mock.approvals_of(&s.policy.id);
    let why = reqs[0]["requestJustification"].as_str().unwrap();
    assert!(
        why.contains("rollout maa")
            && why.contains("wave 1 'pilot'")
            && why.contains("10 device(s)")
            && why.contains(&s.policy.id),
        "{why}"
    );
    let id = reqs[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        note(s).await.unwrap(),
        format!(
            "waiting for tenant approval since 2027-01-18T08:00:00Z, expires 2027-01-20T08:00:00Z (policy {})",
            s.policy.id
        )
    );
    // Polled while pending: nothing is sent again.
    let t = e.tick(at(10)).await.unwrap();
    assert!(t.failed.is_empty() && t.transitions.is_empty(), "{t:?}");
    assert_eq!((made(s), written(s)), (1, 0));
    (e, id)
}

#[tokio::test]
async fn an_approved_write_is_resent_once_with_its_request_id() {
    let s = setup(Collection::ConfigurationPolicies).await;
    let (e, id) = requested(&s).await;
    s.mock.decide(&id, "approved", "fine by me");
    let t = e.tick(at(20)).await.unwrap();
    assert!(t.failed.is_empty(), "{:?}", t.failed);
    assert_eq!((made(&s), written(&s)), (1, 1));
    assert!(assigned(&s));
    assert_eq!(s.mock.approvals_of(&s.policy.id)[0]["status"], "completed");
    assert_eq!(
        s.store.tenant_approvals("maa").await.unwrap()[0]
            .request
            .status,
        ApprovalStatus::Completed
    );
    assert_eq!(note(&s).await, None);
    assert_eq!(state(&e).await, WaveState::Baking);
    // Nothing more goes out on later ticks.
    e.tick(at(60)).await.unwrap();
    assert_eq!((made(&s), written(&s)), (1, 1));
}

#[tokio::test]
async fn a_rejected_request_holds_the_wave_with_the_approvers_reason() {
    let s = setup(Collection::DeviceCompliancePolicies).await;
    let (e, id) = requested(&s).await;
    s.mock
        .decide(&id, "rejected", "not during the quarter-end freeze");
    let t = e.tick(at(20)).await.unwrap();
    assert!(
        t.approvals
            .iter()
            .any(|a| a.contains("rejected (not during the quarter-end freeze)")),
        "{:?}",
        t.approvals
    );
    assert!(matches!(
        state(&e).await,
        WaveState::Paused { reasons, .. } if reasons.contains(Reason::Manual)
    ));
    assert!(!assigned(&s));
    let alerts = s.store.alerts("maa", true).await.unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a.kind == "tenant_approval" && a.text.contains("quarter-end freeze")),
        "{alerts:?}"
    );
    let log = s.store.audit_log("maa").await.unwrap();
    assert!(
        log.iter()
            .any(|l| l.action == "wave 1: tenant approval rejected"
                && l.detail.contains("quarter-end freeze"))
    );
    assert!(note(&s).await.unwrap().contains("was rejected"));
    // Held: no new request, no write, however many ticks.
    e.tick(at(30)).await.unwrap();
    e.tick(at(40)).await.unwrap();
    assert_eq!((made(&s), written(&s)), (1, 0));
    // The operator resumes: a new request, once.
    e.operate(1, Event::Resume(Reason::Manual), "ops", at(50))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((made(&s), written(&s)), (2, 0));
    assert!(
        note(&s)
            .await
            .unwrap()
            .starts_with("waiting for tenant approval")
    );
    // The refusal's alert is resolved with it.
    let open = s.store.alerts("maa", true).await.unwrap();
    assert!(
        !open
            .iter()
            .any(|a| a.kind == "tenant_approval" && a.resolved_at.is_none()),
        "{open:?}"
    );
}

#[tokio::test]
async fn an_expiring_request_alerts_and_an_expired_one_holds_the_wave() {
    let s = setup(Collection::ConfigurationPolicies).await;
    let (e, id) = requested(&s).await;
    // A day and a half later (it expires after two days): an alert, once.
    e.tick(at(36 * 60)).await.unwrap();
    e.tick(at(37 * 60)).await.unwrap();
    let alerts = s.store.alerts("maa", true).await.unwrap();
    let expiring: Vec<_> = alerts
        .iter()
        .filter(|a| a.key == format!("tenant_approval:expiring:{id}"))
        .collect();
    assert_eq!(expiring.len(), 1, "{alerts:?}");
    assert!(expiring[0].text.contains("expires at 2027-01-20T08:00:00Z"));
    s.mock.decide(&id, "expired", "");
    e.tick(at(49 * 60)).await.unwrap();
    assert!(matches!(state(&e).await, WaveState::Paused { .. }));
    let open = s.store.alerts("maa", true).await.unwrap();
    let key = format!("tenant_approval:expiring:{id}");
    assert!(!open.iter().any(|a| a.key == key && a.resolved_at.is_none()));
    assert!(
        open.iter()
            .any(|a| a.key == format!("tenant_approval:expired:{id}"))
    );
    assert!(note(&s).await.unwrap().contains("was expired"));
    e.tick(at(50 * 60)).await.unwrap();
    assert_eq!((made(&s), written(&s)), (1, 0));
}

#[tokio::test]
async fn a_restart_while_waiting_sends_nothing_twice() {
    let s = setup(Collection::ConfigurationPolicies).await;
    let (first, id) = requested(&s).await;
    drop(first);
    let before = assigns(&s);
    // Restarted while pending: the stored request is polled, not asked again.
    let e = engine(&s).await;
    e.tick(at(30)).await.unwrap();
    assert_eq!((made(&s), written(&s), assigns(&s)), (1, 0, before));
    s.mock.decide(&id, "approved", "ok");
    e.tick(at(40)).await.unwrap();
    assert_eq!((made(&s), written(&s)), (1, 1));
    drop(e);
    // Restarted after the write: nothing is sent again.
    let e = engine(&s).await;
    let after = assigns(&s);
    e.tick(at(50)).await.unwrap();
    assert_eq!((made(&s), written(&s), assigns(&s)), (1, 1, after));
    assert!(assigned(&s));
}

/// The members of the wave's group (Entra device object ids).
fn group_members(s: &Setup) -> std::collections::BTreeSet<String> {
    let t = s.mock.tenant.lock().unwrap();
    let g = t
        .groups
        .iter()
        .find(|g| g["mailNickname"] == "ringmaster-maa-w1")
        .unwrap();
    t.members
        .get(g["id"].as_str().unwrap())
        .cloned()
        .unwrap_or_default()
}

/// Taking a held stratum out of a baking wave (`on_fail = "rollback"`)
/// changes the Entra group's members only: the policy's assignment (the
/// object Multi Admin Approval protects) already targets the group, so no
/// `/assign` goes out and no approval is asked for.
#[tokio::test]
async fn a_held_stratum_leaves_the_group_without_touching_the_protected_policy() {
    let s = setup(Collection::ConfigurationPolicies).await;
    let e = engine_of(&s, waves_failing(OnFail::Rollback)).await;
    e.tick(t0()).await.unwrap();
    let id = s.mock.approvals_of(&s.policy.id)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.mock.decide(&id, "approved", "go");
    e.tick(at(20)).await.unwrap();
    assert_eq!(state(&e).await, WaveState::Baking);
    assert!(assigned(&s));
    let ids = Fleet::of(&s.org).object_ids;
    let object_id = |d: u32| ids[d as usize].clone().unwrap();
    let before = group_members(&s);
    assert!(
        (0..10).all(|d| before.contains(&object_id(d))),
        "{before:?}"
    );
    let sent = (made(&s), written(&s), assigns(&s));
    let held: roaring::RoaringBitmap = [2u32, 5, 7].into_iter().collect();
    s.store
        .hold_stratum(&ringmaster_store::HeldStratum {
            key: e.rows().await.unwrap()[0].key.clone(),
            stratum: "model Latitude 7440".into(),
            devices: held.clone(),
            evidence: "error rate 40 % in model Latitude 7440: fail".into(),
            rollback: true,
            held_at: at(30),
            removed_at: None,
            released_at: None,
            released_by: None,
        })
        .await
        .unwrap();
    let t = e.tick(at(40)).await.unwrap();
    assert!(t.failed.is_empty(), "{:?}", t.failed);
    let after = group_members(&s);
    assert_eq!(after.len(), 7, "{after:?}");
    assert!(held.iter().all(|d| !after.contains(&object_id(d))));
    assert!(
        (0..10)
            .filter(|d| !held.contains(*d))
            .all(|d| after.contains(&object_id(d)))
    );
    // No assignment written, no approval asked, the policy still targets the group.
    assert_eq!((made(&s), written(&s), assigns(&s)), sent);
    assert!(assigned(&s));
    assert!(e.holds().await.unwrap()[0].removed_at.is_some());
    // Done once: later ticks send nothing more.
    e.tick(at(60)).await.unwrap();
    assert_eq!((made(&s), written(&s), assigns(&s)), sent);
    assert_eq!(group_members(&s), after);
}
