//! The storage story, told against SQLite (and, with its backend, PostgreSQL).

use ringmaster_core::gates::{Decision, Outcome};
use ringmaster_core::wave::{Effect, Event, GateDecision, Reason, Rules, WaveState, step};
use ringmaster_store::{
    AuditEntry, DeviceState, GateResult, GateRound, NewWave, StatusReport, Store, StoreError,
    TokenCheck, WaveKey, open,
};
use roaring::RoaringBitmap;

/// A fresh, empty PostgreSQL database on the test cluster
/// (`RINGMASTER_TEST_POSTGRES`, which `.ci/run` starts); None without one,
/// which only a run outside CI may have.
async fn postgres() -> Option<String> {
    use sqlx::Connection;
    let Ok(url) = std::env::var("RINGMASTER_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "RINGMASTER_TEST_POSTGRES is not set: .ci/run starts a throwaway cluster (scripts/pg-test-cluster)"
        );
        eprintln!(
            "PostgreSQL part skipped: set RINGMASTER_TEST_POSTGRES (scripts/pg-test-cluster start)"
        );
        return None;
    };
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "rm_store_{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    Some(format!("{}/{name}", &url[..url.rfind('/').unwrap()]))
}

/// Every backend this run can test: SQLite always, PostgreSQL when there.
async fn stores() -> Vec<std::sync::Arc<dyn Store>> {
    let mut v = vec![open("sqlite::memory:").await.unwrap()];
    if let Some(url) = postgres().await {
        v.push(open(&url).await.unwrap());
    }
    v
}

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn waves() -> Vec<NewWave> {
    vec![
        NewWave {
            name: "Pilot (isolated)".into(),
            phase: "pilot".into(),
            members: (0..50).collect(),
            starts_at: at("2027-01-18T08:00:00Z"),
        },
        NewWave {
            name: "Everyone".into(),
            phase: "enterprise".into(),
            members: (50..1000).collect::<RoaringBitmap>(),
            starts_at: at("2027-01-25T08:00:00Z"),
        },
    ]
}

async fn advance(store: &dyn Store, key: &WaveKey, event: Event, rules: &Rules, when: &str) -> u64 {
    let rows = store.waves(&key.rollout, key.version).await.unwrap();
    let row = &rows[key.idx as usize];
    let t = step(row.state, &event, rules).unwrap();
    store
        .commit(key, row.seq, &event, &t, "test", at(when))
        .await
        .unwrap()
}

async fn story(store: &dyn Store) {
    // Plan versions: the same waves are one version; new dates for them
    // change it in place; other waves are the next version.
    let v1 = store
        .start_version(
            "r",
            "waves A",
            "plan one",
            &waves(),
            at("2027-01-11T08:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!((v1.version, v1.previous), (1, None));
    let same = store
        .start_version(
            "r",
            "waves A",
            "plan one",
            &waves(),
            at("2027-01-11T09:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!((same.version, same.rescheduled), (1, false));
    let mut later = waves();
    later[1].starts_at = at("2027-02-01T08:00:00Z");
    let moved = store
        .start_version(
            "r",
            "waves A",
            "plan one, later",
            &later,
            at("2027-01-11T10:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!((moved.version, moved.rescheduled), (1, true));
    assert_eq!(
        store.waves("r", 1).await.unwrap()[1].starts_at,
        at("2027-02-01T08:00:00Z")
    );
    assert_eq!(
        store.latest_version("r").await.unwrap(),
        Some((1, "plan one, later".to_string()))
    );
    let rows = store.waves("r", 1).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].members.len(), 950);
    assert_eq!((rows[0].state, rows[0].seq), (WaveState::Pending, 0));

    // Transitions commit with their effects; a stale writer changes nothing.
    let key = WaveKey {
        rollout: "r".into(),
        version: 1,
        idx: 0,
    };
    let rules = Rules {
        isolated: true,
        ..Rules::default()
    };
    let seq = advance(store, &key, Event::Start, &rules, "2027-01-18T08:00:00Z").await;
    assert_eq!(seq, 1);
    let t = step(WaveState::Pending, &Event::Start, &rules).unwrap();
    let err = store
        .commit(
            &key,
            0,
            &Event::Start,
            &t,
            "late driver",
            at("2027-01-18T08:00:01Z"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Stale {
                expected: 0,
                found: 1,
                ..
            }
        ),
        "{err}"
    );
    let actions = store.pending_actions("r").await.unwrap();
    assert_eq!(
        actions.iter().map(|a| a.effect).collect::<Vec<_>>(),
        vec![Effect::Isolate, Effect::Assign]
    );
    store
        .finish_action(
            &actions[0],
            Some("Graph 429: retry after 10 s"),
            at("2027-01-18T08:00:02Z"),
        )
        .await
        .unwrap();
    let again = store.pending_actions("r").await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (2, 1));
    for a in &again {
        store
            .finish_action(a, None, at("2027-01-18T08:00:30Z"))
            .await
            .unwrap();
    }
    assert!(store.pending_actions("r").await.unwrap().is_empty());
    advance(store, &key, Event::Applied, &rules, "2027-01-18T08:05:00Z").await;
    let hold = Event::Gate(GateDecision::from(&Decision::SourceError {
        why: "Graph 503".into(),
    }));
    advance(store, &key, hold, &rules, "2027-01-18T16:00:00Z").await;
    advance(
        store,
        &key,
        Event::Resume(Reason::SourceError),
        &rules,
        "2027-01-18T17:00:00Z",
    )
    .await;
    let history = store.history("r").await.unwrap();
    assert_eq!(history.len(), 4);
    assert_eq!(history[3].to, WaveState::Baking);
    assert!(history[2].why.contains("Graph 503"));

    // Status reports: re-sent ones are duplicates; the latest moves forward only.
    let report = |d: u32, state: &str, t: &str| StatusReport {
        device: format!("dev-{d}"),
        policy: "p1".into(),
        state: DeviceState::parse(state).unwrap(),
        reported_at: at(t),
        wave: Some(0),
    };
    let first: Vec<StatusReport> = (0..50)
        .map(|d| {
            report(
                d,
                if d < 45 { "succeeded" } else { "error" },
                "2027-01-18T12:00:00Z",
            )
        })
        .collect();
    let got = store.ingest_status("r", &first).await.unwrap();
    assert_eq!((got.inserted, got.duplicates), (50, 0));
    let got = store.ingest_status("r", &first).await.unwrap();
    assert_eq!((got.inserted, got.duplicates), (0, 50));
    // A late, older report does not overwrite a newer state; a newer one does.
    store
        .ingest_status(
            "r",
            &[
                report(45, "succeeded", "2027-01-18T20:00:00Z"),
                report(46, "pending", "2027-01-18T06:00:00Z"),
            ],
        )
        .await
        .unwrap();
    let c = store.wave_counts("r", 0, None).await.unwrap();
    assert_eq!(
        store
            .wave_counts("r", 0, Some(at("2027-01-18T19:00:00Z")))
            .await
            .unwrap()
            .reported(),
        1
    );
    assert_eq!(
        (c.succeeded, c.error, c.pending, c.reported()),
        (46, 4, 0, 50)
    );

    // Evaluations and the audit log.
    let key1 = WaveKey {
        rollout: "r".into(),
        version: 1,
        idx: 1,
    };
    let round = GateRound {
        at: at("2027-01-26T08:00:00Z"),
        results: vec![GateResult::BakeTime {
            outcome: Outcome::NoData,
        }],
    };
    store.replace_round(&key1, &round).await.unwrap();
    assert_eq!(store.gate_rounds(&key1).await.unwrap(), vec![round.clone()]);
    // A round run again at the same moment replaces itself.
    store.replace_round(&key1, &round).await.unwrap();
    assert_eq!(store.gate_rounds(&key1).await.unwrap().len(), 1);
    store
        .audit(&AuditEntry {
            at: at("2027-01-26T09:00:00Z"),
            actor: "ops@contoso".into(),
            rollout: "r".into(),
            action: "token created".into(),
            detail: "role operator".into(),
        })
        .await
        .unwrap();
    let log = store.audit_log("r").await.unwrap();
    assert_eq!(log.first().unwrap().action, "plan version");
    assert!(log.iter().any(|l| l.action == "wave 1: pending → applying"));
    assert_eq!(log.last().unwrap().actor, "ops@contoso");
    // A page of it, read by the store: the same entries, both ways round.
    let n = log.len() as u64;
    let (first, total) = store.audit_page("r", false, 1, 2).await.unwrap();
    assert_eq!(total, n);
    assert_eq!(first, log[1..3].to_vec());
    let (newest, _) = store.audit_page("r", true, 0, 1).await.unwrap();
    assert_eq!(newest, vec![log.last().unwrap().clone()]);
    let (past_end, total) = store.audit_page("r", true, n, 10).await.unwrap();
    assert_eq!((past_end.len(), total), (0, n));

    // Tenant approval requests: recorded, updated by id, retired when refused.
    let request = |id: &str, status| ringmaster_store::TenantApproval {
        key: key1.clone(),
        seq: 3,
        pos: 0,
        request: ringmaster_store::ApprovalRequest {
            object: "policy-1".into(),
            id: id.into(),
            requested: at("2027-01-26T10:00:00Z"),
            expires: at("2027-01-28T10:00:00Z"),
            status,
            reason: None,
        },
        retired: false,
    };
    use ringmaster_store::ApprovalStatus;
    store
        .save_approval(&request("req-1", ApprovalStatus::NeedsApproval))
        .await
        .unwrap();
    let mut rejected = request("req-1", ApprovalStatus::Rejected);
    rejected.request.reason = Some("not during the audit".into());
    store.save_approval(&rejected).await.unwrap();
    assert_eq!(
        store.tenant_approvals("r").await.unwrap(),
        vec![rejected.clone()]
    );
    assert_eq!(store.tenant_approvals("other").await.unwrap(), vec![]);
    assert_eq!(store.retire_refused_approvals(&key1).await.unwrap(), 1);
    assert_eq!(store.retire_refused_approvals(&key1).await.unwrap(), 0);
    assert!(store.tenant_approvals("r").await.unwrap()[0].retired);

    // Other waves are a new version; the old one keeps its history.
    let v2 = store
        .start_version(
            "r",
            "waves B",
            "plan two",
            &waves(),
            at("2027-01-27T08:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!((v2.version, v2.previous), (2, Some(1)));
    assert_eq!(
        store.waves("r", 2).await.unwrap()[0].state,
        WaveState::Pending
    );
    assert_eq!(
        store.waves("r", 1).await.unwrap()[0].state,
        WaveState::Baking
    );
}

#[tokio::test]
async fn the_story_holds_on_every_backend() {
    for store in stores().await {
        story(store.as_ref()).await;
    }
}

#[tokio::test]
async fn one_holder_leads_until_its_lease_runs_out() {
    for store in stores().await {
        let t0 = at("2027-01-01T08:00:00Z");
        let s = |secs| t0 + jiff::SignedDuration::from_secs(secs);
        assert!(store.lease("scheduler:r", "a", t0, s(5)).await.unwrap());
        assert!(
            !store.lease("scheduler:r", "b", s(1), s(6)).await.unwrap(),
            "a holds it"
        );
        assert!(
            store.lease("scheduler:r", "a", s(3), s(8)).await.unwrap(),
            "a renews"
        );
        assert!(
            !store.lease("scheduler:r", "b", s(7), s(12)).await.unwrap(),
            "renewed: still a's"
        );
        assert!(
            store.lease("scheduler:r", "b", s(8), s(13)).await.unwrap(),
            "ran out: b takes over"
        );
        assert!(
            !store.lease("scheduler:r", "a", s(9), s(14)).await.unwrap(),
            "a lost it"
        );
        store.release("scheduler:r", "b").await.unwrap();
        assert!(
            store.lease("scheduler:r", "a", s(10), s(15)).await.unwrap(),
            "released: a at once"
        );
        assert!(
            store
                .lease("scheduler:other", "b", s(10), s(15))
                .await
                .unwrap(),
            "leases are per name"
        );
    }
}

#[tokio::test]
async fn sqlite_state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("ringmaster.db").display());
    {
        let store = open(&url).await.unwrap();
        store
            .start_version("r", "waves", "plan", &waves(), at("2027-01-11T08:00:00Z"))
            .await
            .unwrap();
        let key = WaveKey {
            rollout: "r".into(),
            version: 1,
            idx: 0,
        };
        advance(
            store.as_ref(),
            &key,
            Event::Start,
            &Rules::default(),
            "2027-01-18T08:00:00Z",
        )
        .await;
    }
    let store = open(&url).await.unwrap();
    let rows = store.waves("r", 1).await.unwrap();
    assert_eq!((rows[0].state, rows[0].seq), (WaveState::Applying, 1));
    assert_eq!(store.pending_actions("r").await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_starting_together_agree_on_the_version() {
    let Some(url) = postgres().await else {
        return;
    };
    let t = at("2027-01-11T08:00:00Z");
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let s = open(&url).await.unwrap();
                s.start_version("r", "waves", "plan", &waves(), t).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().version, 1);
    }
    let s = open(&url).await.unwrap();
    assert_eq!(s.waves("r", 1).await.unwrap().len(), 2);
    assert_eq!(s.latest_version("r").await.unwrap().unwrap().0, 1);
}

#[tokio::test]
async fn latest_states_say_which_devices_were_succeeded_before() {
    for store in stores().await {
        let r = |device: &str, state: &str, when: &str| StatusReport {
            device: device.into(),
            policy: "p".into(),
            state: DeviceState::parse(state).unwrap(),
            reported_at: at(when),
            wave: Some(0),
        };
        store
            .ingest_status(
                "r",
                &[
                    r("a", "succeeded", "2027-01-01T08:00:00Z"),
                    r("a", "error", "2027-01-02T08:00:00Z"),
                    r("b", "error", "2027-01-01T08:00:00Z"),
                    r("c", "succeeded", "2027-01-01T08:00:00Z"),
                ],
            )
            .await
            .unwrap();
        let got: Vec<(String, DeviceState, bool)> = store
            .latest_states("r", None)
            .await
            .unwrap()
            .0
            .into_iter()
            .map(|l| (l.device, l.state, l.was_succeeded))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), DeviceState::Error, true),
                ("b".into(), DeviceState::Error, false),
                ("c".into(), DeviceState::Succeeded, false),
            ]
        );
    }
}

#[tokio::test]
async fn the_first_stored_meta_value_wins() {
    for store in stores().await {
        assert_eq!(store.meta_or_insert("r", "k", "a").await.unwrap(), "a");
        assert_eq!(store.meta_or_insert("r", "k", "b").await.unwrap(), "a");
        assert_eq!(
            store.get_meta("r", "k").await.unwrap().as_deref(),
            Some("a")
        );
    }
}

#[test]
fn passwords_are_cut_from_shown_urls() {
    use ringmaster_store::redact;
    assert_eq!(
        redact("postgres://rm:s3cret@db:5432/x"),
        "postgres://rm:…@db:5432/x"
    );
    assert_eq!(redact("postgres://rm@db/x"), "postgres://rm@db/x");
    assert_eq!(redact("sqlite:ringmaster.db"), "sqlite:ringmaster.db");
}

#[tokio::test]
async fn unknown_backends_are_refused() {
    let err = open("mysql://localhost/x").await.err().unwrap();
    assert!(
        err.to_string().contains("unsupported database URL"),
        "{err}"
    );
}

#[tokio::test]
async fn tokens_are_kept_as_hashes_and_carry_a_role() {
    use ringmaster_store::Role;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = open(&format!("sqlite:{}", path.display())).await.unwrap();
    assert!(!store.has_tokens().await.unwrap());
    let t = store
        .create_token(Role::Operator, "ops team", at("2027-01-01T00:00:00Z"))
        .await
        .unwrap();
    assert!(t.starts_with("rm_") && t.len() > 60);
    assert_eq!(
        store
            .check_token(&t, at("2027-01-02T00:00:00Z"))
            .await
            .unwrap(),
        TokenCheck::Valid {
            role: Role::Operator,
            label: "ops team".into()
        }
    );
    assert_eq!(
        store
            .check_token("rm_wrong", at("2027-01-02T00:00:00Z"))
            .await
            .unwrap(),
        TokenCheck::Unknown
    );
    assert!(store.has_tokens().await.unwrap());
    drop(store);
    // The database file never holds the token itself.
    let mut bytes = std::fs::read(&path).unwrap();
    for ext in ["-wal"] {
        if let Ok(b) = std::fs::read(format!("{}{ext}", path.display())) {
            bytes.extend(b);
        }
    }
    assert!(!bytes.windows(t.len()).any(|w| w == t.as_bytes()));
    assert_eq!(Role::parse("help-desk"), Some(Role::HelpDesk));
}

#[tokio::test]
async fn sessions_expire_and_end() {
    use ringmaster_store::Role;
    for store in stores().await {
        let t0 = at("2027-01-01T08:00:00Z");
        let token = store.create_token(Role::Viewer, "ann", t0).await.unwrap();
        assert!(
            store
                .create_session("rm_nope", 8, t0)
                .await
                .unwrap()
                .is_none()
        );
        let (id, s) = store.create_session(&token, 8, t0).await.unwrap().unwrap();
        assert_eq!((s.role, s.label.as_str()), (Role::Viewer, "ann"));
        assert_ne!(id, s.csrf);
        assert_eq!(
            store
                .check_session(&id, at("2027-01-01T15:59:00Z"))
                .await
                .unwrap(),
            Some(s.clone())
        );
        assert_eq!(
            store
                .check_session(&id, at("2027-01-01T16:00:00Z"))
                .await
                .unwrap(),
            None
        );
        assert_eq!(store.check_session(&s.csrf, t0).await.unwrap(), None);
        store.end_session(&id).await.unwrap();
        assert_eq!(store.check_session(&id, t0).await.unwrap(), None);
    }
}

#[tokio::test]
async fn wave_samples_keep_one_per_moment() {
    use ringmaster_store::StateCounts;
    for store in stores().await {
        let key = WaveKey {
            rollout: "r".into(),
            version: 1,
            idx: 0,
        };
        let c = |n| StateCounts {
            succeeded: n,
            ..Default::default()
        };
        store
            .record_counts(&key, at("2027-01-01T10:00:00Z"), &c(1))
            .await
            .unwrap();
        store
            .record_counts(&key, at("2027-01-01T09:00:00Z"), &c(2))
            .await
            .unwrap();
        store
            .record_counts(&key, at("2027-01-01T10:00:00Z"), &c(3))
            .await
            .unwrap();
        let s = store.counts_series(&key).await.unwrap();
        assert_eq!(
            s,
            vec![
                (at("2027-01-01T09:00:00Z"), c(2)),
                (at("2027-01-01T10:00:00Z"), c(3))
            ]
        );
    }
}

#[tokio::test]
async fn the_outbox_queues_once_and_tracks_delivery() {
    use ringmaster_store::{Delivery, NewMessage};
    for store in stores().await {
        let m = |key: &str, target: &str| NewMessage {
            key: key.into(),
            channel: "webhook".into(),
            target: target.into(),
            audience: "help_desk".into(),
            subject: "s".into(),
            body: "b".into(),
            html: "<p>b</p>".into(),
        };
        let t0 = at("2027-01-01T08:00:00Z");
        let batch = [m("start:1:0", "http://a"), m("start:1:0", "http://b")];
        assert_eq!(store.enqueue("r", &batch, t0).await.unwrap(), 2);
        // A driver that runs the step again queues nothing twice.
        assert_eq!(store.enqueue("r", &batch, t0).await.unwrap(), 0);
        let due = store.due_messages("r", t0, 10).await.unwrap();
        assert_eq!(due.len(), 2);
        store
            .finish_message(due[0].id, &Delivery::Sent, t0)
            .await
            .unwrap();
        let later = at("2027-01-01T08:05:00Z");
        store
            .finish_message(due[1].id, &Delivery::Retry("503".into(), later), t0)
            .await
            .unwrap();
        assert!(store.due_messages("r", t0, 10).await.unwrap().is_empty());
        let again = store.due_messages("r", later, 10).await.unwrap();
        assert_eq!((again.len(), again[0].attempts), (1, 1));
        assert_eq!(again[0].last_error.as_deref(), Some("503"));
        store
            .finish_message(again[0].id, &Delivery::GaveUp("404".into()), later)
            .await
            .unwrap();
        let all = store.outbox("r", 10).await.unwrap();
        let states: Vec<_> = all
            .iter()
            .map(|i| (i.message.target.as_str(), i.state.as_str(), i.attempts))
            .collect();
        assert_eq!(
            states,
            vec![("http://b", "failed", 2), ("http://a", "sent", 1)]
        );
        let (page, total) = store.outbox_page("r", 1, 5).await.unwrap();
        assert_eq!(total, 2);
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].message.target, "http://a");
        assert!(store.outbox_page("other", 0, 5).await.unwrap().0.is_empty());
        assert!(store.due_messages("r", later, 10).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn alerts_scope_entries_and_samples_are_kept() {
    use ringmaster_core::alerts::{Alert, Severity};
    use ringmaster_store::AlertMark;
    for store in stores().await {
        // Scope entries keep the first time a device was seen.
        let t0 = at("2027-03-01T00:00:00Z");
        let t1 = at("2027-03-02T00:00:00Z");
        let got = store
            .enter_scope("r", &["a".into(), "b".into()], t0)
            .await
            .unwrap();
        assert_eq!(got.inserted, 2);
        let got = store
            .enter_scope("r", &["b".into(), "c".into()], t1)
            .await
            .unwrap();
        assert_eq!((got.inserted, got.duplicates), (1, 1));
        let mut entries = store.scope_entries("r").await.unwrap();
        entries.sort();
        assert_eq!(
            entries,
            vec![("a".into(), t0), ("b".into(), t0), ("c".into(), t1)]
        );

        let alert = |key: &str, raised: Option<i64>| Alert {
            key: key.into(),
            kind: "outlier".into(),
            severity: Severity::Warning,
            text: format!("{key} stands out"),
            first_seen: 100,
            raised_at: raised,
            resolved_at: None,
            acknowledged: None,
        };
        store
            .save_alerts("r", &[alert("pending", None), alert("raised", Some(200))])
            .await
            .unwrap();
        assert_eq!(store.alerts("r", true).await.unwrap().len(), 2);
        // Only raised, open alerts can be acknowledged; that is audited.
        assert!(
            !store
                .mark_alert("r", "pending", AlertMark::Acknowledge, "jane", "", t1)
                .await
                .unwrap()
        );
        assert!(
            store
                .mark_alert("r", "raised", AlertMark::Acknowledge, "jane", "looking", t1)
                .await
                .unwrap()
        );
        // The next check drops the pending alert and keeps the acknowledgement.
        let mut next = alert("raised", Some(200));
        next.text = "still there".into();
        store.save_alerts("r", &[next]).await.unwrap();
        let open = store.alerts("r", true).await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].text, "still there");
        assert_eq!(open[0].acknowledged, Some(("jane".into(), t1.as_second())));
        assert!(
            store
                .mark_alert("r", "raised", AlertMark::Resolve, "joe", "fixed", t1)
                .await
                .unwrap()
        );
        assert!(store.alerts("r", true).await.unwrap().is_empty());
        let all = store.alerts("r", false).await.unwrap();
        assert_eq!(all[0].resolved_at, Some(t1.as_second()));
        let audit: Vec<String> = store
            .audit_log("r")
            .await
            .unwrap()
            .into_iter()
            .map(|e| format!("{} {} {}", e.actor, e.action, e.detail))
            .collect();
        assert_eq!(
            audit,
            vec![
                "jane alert acknowledged raised: looking",
                "joe alert resolved raised: fixed"
            ]
        );

        store.record_runstate("r", t0, "{\"a\":1}").await.unwrap();
        store.record_runstate("r", t1, "{\"a\":2}").await.unwrap();
        assert_eq!(
            store.runstate_samples("r", t1).await.unwrap(),
            vec![(t1, "{\"a\":2}".to_string())]
        );
        // Only tickets tied to a wave count, in the half-open window; the
        // control's are counted apart, also in the half-open window.
        let ticket = |id: &str, when: &str, wave: Option<u32>| ringmaster_store::Ticket {
            id: id.into(),
            at: at(when),
            user: None,
            device: None,
            category: None,
            text: "broken".into(),
            wave,
            control: false,
        };
        let control = |id: &str, when: &str| ringmaster_store::Ticket {
            control: true,
            ..ticket(id, when, None)
        };
        store
            .ingest_tickets(
                "r",
                &[
                    ticket("1", "2027-03-01T10:00:00Z", Some(0)),
                    ticket("2", "2027-03-01T11:00:00Z", None),
                    ticket("3", "2027-03-02T00:00:00Z", Some(1)),
                    control("4", "2027-03-01T09:00:00Z"),
                    control("5", "2027-03-01T12:00:00Z"),
                    control("6", "2027-03-02T00:00:00Z"),
                ],
            )
            .await
            .unwrap();
        assert_eq!(store.count_tickets("r", t0, t1).await.unwrap(), 1);
        assert_eq!(store.control_tickets("r", t0, t1).await.unwrap(), 2);
        assert_eq!(store.control_tickets("other", t0, t1).await.unwrap(), 0);
        // Re-sent, a control ticket is a duplicate and counts once.
        let again = store
            .ingest_tickets("r", &[control("5", "2027-03-01T12:00:00Z")])
            .await
            .unwrap();
        assert_eq!(again.duplicates, 1);
        assert_eq!(store.control_tickets("r", t0, t1).await.unwrap(), 2);
    }
}

#[tokio::test]
async fn latest_states_after_a_change_number_leave_out_what_was_read() {
    for store in stores().await {
        let r = |device: &str, state, when: &str| StatusReport {
            device: device.into(),
            policy: "p".into(),
            state,
            reported_at: at(when),
            wave: None,
        };
        let ingest = |reports: Vec<StatusReport>| {
            let store = &store;
            async move { store.ingest_status("r", &reports).await.unwrap() }
        };
        let ok = DeviceState::Succeeded;
        ingest(vec![
            r("a", ok, "2027-01-02T08:00:00Z"),
            r("b", ok, "2027-01-02T09:00:00Z"),
        ])
        .await;
        let (all, first) = store.latest_states("r", None).await.unwrap();
        assert_eq!(all.len(), 2);
        // Nothing new: nothing read, the same number back.
        let (none, same) = store.latest_states("r", Some(first)).await.unwrap();
        assert!(none.is_empty());
        assert_eq!(same, first);
        // A report stamped a day before the last read (a late export) is
        // still new, and so is a newer state; a report sent again and an
        // older one that changes nothing are not.
        ingest(vec![
            r("c", DeviceState::Error, "2027-01-01T08:00:00Z"),
            r("a", DeviceState::Error, "2027-01-03T08:00:00Z"),
            r("b", ok, "2027-01-02T09:00:00Z"),
            r("b", DeviceState::Pending, "2027-01-01T09:00:00Z"),
        ])
        .await;
        let (got, next) = store.latest_states("r", Some(first)).await.unwrap();
        let got: Vec<_> = got.iter().map(|l| (l.device.as_str(), l.state)).collect();
        assert_eq!(got, [("a", DeviceState::Error), ("c", DeviceState::Error)]);
        assert!(next > first);
        // Another rollout's ingest moves nothing here.
        store
            .ingest_status("other", &[r("z", ok, "2027-01-05T08:00:00Z")])
            .await
            .unwrap();
        let (none, same) = store.latest_states("r", Some(next)).await.unwrap();
        assert!(none.is_empty());
        assert_eq!(same, next);
    }
}

/// A database written before times were milliseconds (the fixtures'
/// headers say how they were made) opens, reads back as it was written,
/// orders its history by time, and takes new writes.
async fn continues_after_upgrade(store: &dyn Store) {
    let key = |idx| WaveKey {
        rollout: "r".into(),
        version: 1,
        idx,
    };
    // Wave 1 started on the whole second, wave 0 half a second later: the
    // old text order had them the other way round.
    let history = store.history("r").await.unwrap();
    let seen: Vec<(u32, jiff::Timestamp)> = history.iter().map(|h| (h.key.idx, h.at)).collect();
    assert_eq!(
        seen,
        vec![
            (1, at("2027-01-18T08:00:00Z")),
            (0, at("2027-01-18T08:00:00.5Z")),
            (0, at("2027-01-18T09:00:00Z")),
        ]
    );
    let rows = store.waves("r", 1).await.unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.state, r.starts_at, r.members.len()))
            .collect::<Vec<_>>(),
        vec![
            (WaveState::Baking, at("2027-01-18T08:00:00Z"), 4),
            (WaveState::Applying, at("2027-01-25T08:00:00Z"), 6),
        ]
    );
    let done = store.done_actions("r").await.unwrap();
    assert_eq!((done.len(), done[0].1), (1, at("2027-01-18T08:00:01.125Z")));
    let pending = store.pending_actions("r").await.unwrap();
    assert_eq!((pending.len(), pending[0].attempts), (1, 1));

    // Gate rounds written as untyped JSON read back typed.
    let rounds = store.gate_rounds(&key(0)).await.unwrap();
    assert_eq!(rounds.len(), 1);
    assert_eq!(rounds[0].at, at("2027-01-18T20:00:00Z"));
    let GateResult::Goal { goal, evaluation } = &rounds[0].results[0] else {
        panic!("{:?}", rounds[0]);
    };
    assert_eq!(
        (*goal, evaluation.outcome, evaluation.sample),
        (0, Outcome::Fail, 4)
    );
    assert_eq!(
        store.gate_rounds(&key(1)).await.unwrap()[0].results,
        vec![GateResult::BakeTime {
            outcome: Outcome::NoData
        }]
    );

    let c = store.wave_counts("r", 0, None).await.unwrap();
    assert_eq!(
        (c.succeeded, c.conflict, c.pending, c.reported()),
        (2, 1, 1, 4)
    );
    let (tickets, answers) = store.wave_items("r", 0, 0, 10).await.unwrap();
    assert_eq!(tickets[0].at, at("2027-01-18T14:30:00.5Z"));
    assert_eq!(answers[0].score, 4);
    // A page further on skips the newest.
    let (later, _) = store.wave_items("r", 0, 1, 10).await.unwrap();
    assert_eq!(later.len(), tickets.len() - 1);
    assert_eq!(later.first().map(|t| &t.id), tickets.get(1).map(|t| &t.id));
    assert_eq!(
        store
            .count_tickets(
                "r",
                at("2027-01-18T14:30:00.5Z"),
                at("2027-01-18T14:30:00.501Z")
            )
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .wave_tickets_feedback("r", 0, Some(at("2027-01-18T14:30:00.6Z")))
            .await
            .unwrap(),
        (0, 1, 4.0)
    );
    let log = store.audit_log("r").await.unwrap();
    assert_eq!(
        (log.len(), log[0].at, log[4].at),
        (
            5,
            at("2027-01-11T08:00:00.25Z"),
            at("2027-01-18T08:30:00.001Z")
        )
    );
    let outbox = store.outbox("r", 10).await.unwrap();
    assert_eq!(
        (
            outbox[0].created_at,
            outbox[0].sent_at,
            outbox[0].state.as_str()
        ),
        (
            at("2027-01-18T08:00:00Z"),
            Some(at("2027-01-18T08:00:03.5Z")),
            "sent"
        )
    );
    assert!(store.has_tokens().await.unwrap());
    assert_eq!(store.alerts("r", true).await.unwrap().len(), 1);
    assert_eq!(
        store.counts_series(&key(0)).await.unwrap()[0].1.succeeded,
        2
    );
    assert_eq!(
        store.get_meta("r", "clock").await.unwrap().as_deref(),
        Some("2027-01-18T20:00:00Z")
    );

    // And it continues: a move, a report, a round.
    let t = step(rows[1].state, &Event::Applied, &Rules::default()).unwrap();
    store
        .commit(
            &key(1),
            rows[1].seq,
            &Event::Applied,
            &t,
            "test",
            at("2027-01-18T10:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.history("r").await.unwrap()[3].at,
        at("2027-01-18T10:00:00Z")
    );
    let got = store
        .ingest_status(
            "r",
            &[StatusReport {
                device: "dev-3".into(),
                policy: "p1".into(),
                state: DeviceState::Succeeded,
                reported_at: at("2027-01-19T08:00:00Z"),
                wave: Some(0),
            }],
        )
        .await
        .unwrap();
    assert_eq!(got.inserted, 1);
    assert_eq!(store.wave_counts("r", 0, None).await.unwrap().succeeded, 3);
    // The first Succeeded of dev-0 was in the history before the upgrade:
    // its regression is seen, and the kept counts move with it.
    store
        .ingest_status(
            "r",
            &[StatusReport {
                device: "dev-0".into(),
                policy: "p1".into(),
                state: DeviceState::Error,
                reported_at: at("2027-01-19T09:00:00Z"),
                wave: None,
            }],
        )
        .await
        .unwrap();
    let c = store.wave_counts("r", 0, None).await.unwrap();
    assert_eq!((c.succeeded, c.error, c.reported()), (2, 1, 4));
    let was: Vec<(String, bool)> = store
        .latest_states("r", None)
        .await
        .unwrap()
        .0
        .into_iter()
        .filter(|l| l.was_succeeded)
        .map(|l| (l.device, l.state == DeviceState::Error))
        .collect();
    assert_eq!(was, vec![("dev-0".to_string(), true)]);
    let next = GateRound {
        at: at("2027-01-19T20:00:00Z"),
        results: rounds[0].results.clone(),
    };
    store.replace_round(&key(0), &next).await.unwrap();
    assert_eq!(store.gate_rounds(&key(0)).await.unwrap()[1], next);
}

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap()
}

#[tokio::test]
async fn a_sqlite_database_of_the_text_times_opens_and_continues() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("old.db").display());
    let mut c = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    sqlx::raw_sql(&fixture("v6-sqlite.sql"))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    continues_after_upgrade(open(&url).await.unwrap().as_ref()).await;
}

#[tokio::test]
async fn a_postgres_database_of_the_text_times_opens_and_continues() {
    use sqlx::Connection;
    let Some(url) = postgres().await else {
        return;
    };
    // pg_dump empties the search path of the session that loads it: a
    // connection of its own, closed after.
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(&fixture("v6-postgres.sql"))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    continues_after_upgrade(open(&url).await.unwrap().as_ref()).await;
}

#[tokio::test]
async fn a_gate_result_that_does_not_read_is_an_error_that_says_where() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("bad.db").display());
    let store = open(&url).await.unwrap();
    let key = WaveKey {
        rollout: "r".into(),
        version: 1,
        idx: 2,
    };
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for body in [
        r#"{"v":1,"goal":0,"outcome":"fail","sentence":"s"}"#,
        r#"{"v":9,"goal":null,"outcome":"pass","sentence":"s"}"#,
    ] {
        sqlx::query("DELETE FROM evaluations")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO evaluations (rollout, version, idx, at, body) VALUES ('r', 1, 2, 0, $1)",
        )
        .bind(body)
        .execute(&mut c)
        .await
        .unwrap();
        let err = store.gate_rounds(&key).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
        let text = err.to_string();
        assert!(text.contains("evaluations of r version 1 wave 2"), "{text}");
        assert!(
            text.contains("no `metric`") || text.contains("form 9"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_locked_database_is_busy_and_other_errors_are_not() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("lock.db").display());
    let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    // A second writer that does not wait for the lock gets SQLITE_BUSY.
    let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    let mut other =
        sqlx::SqliteConnection::connect_with(&opts.busy_timeout(std::time::Duration::ZERO))
            .await
            .unwrap();
    let err = sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap_err();
    assert!(StoreError::Db(err).is_busy());
    assert!(StoreError::Db(sqlx::Error::PoolTimedOut).is_busy());
    assert!(!StoreError::Db(sqlx::Error::RowNotFound).is_busy());
    let stale = StoreError::Stale {
        rollout: "r".into(),
        idx: 0,
        expected: 1,
        found: 2,
    };
    assert!(!stale.is_busy());
}

/// The counts kept at ingest are the counts of the latest states: mixed
/// batches (times out of order, reports sent twice, the same moment sent
/// again with another state, devices moving between waves, several
/// policies) are recounted here from the reports and compared.
#[tokio::test]
async fn kept_counts_match_a_recount_after_mixed_ingests() {
    mixed_ingests_recounted(400, 60).await;
}

/// The same with calls large enough that PostgreSQL stores each in two
/// parts at once.
#[tokio::test]
async fn kept_counts_match_a_recount_after_large_mixed_ingests() {
    mixed_ingests_recounted(24_000, 3_000).await;
}

async fn mixed_ingests_recounted(per_batch: usize, devices: u64) {
    use std::collections::BTreeMap;
    const STATES: [DeviceState; 5] = [
        DeviceState::Succeeded,
        DeviceState::Error,
        DeviceState::Conflict,
        DeviceState::Pending,
        DeviceState::NotApplicable,
    ];
    // A fixed pseudo-random sequence: the same batches every run.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let t0 = at("2027-01-18T08:00:00Z");
    let mut batches: Vec<Vec<StatusReport>> = Vec::new();
    for _ in 0..6 {
        let mut b = Vec::new();
        for _ in 0..per_batch {
            b.push(StatusReport {
                device: format!("dev-{}", next(devices)),
                policy: format!("p{}", next(3)),
                state: STATES[next(5) as usize],
                // Few distinct moments, so the same key comes back often.
                reported_at: t0 + jiff::SignedDuration::from_mins(next(40) as i64),
                wave: Some(next(3) as u32),
            });
        }
        // Sent again in the same batch, one of them with another state.
        let again = b[7].clone();
        b.push(again.clone());
        b.push(StatusReport {
            state: DeviceState::Succeeded,
            ..again
        });
        batches.push(b);
    }
    // A whole batch sent twice.
    batches.push(batches[2].clone());

    // The recount: the first report of each moment is the one kept; the
    // newest kept report is the latest state.
    let mut kept: BTreeMap<(String, String, jiff::Timestamp), (DeviceState, u32)> = BTreeMap::new();
    for r in batches.iter().flatten() {
        kept.entry((r.device.clone(), r.policy.clone(), r.reported_at))
            .or_insert((r.state, r.wave.unwrap()));
    }
    let mut latest: BTreeMap<(String, String), (jiff::Timestamp, DeviceState, u32, bool)> =
        BTreeMap::new();
    let mut first_ok: BTreeMap<(String, String), jiff::Timestamp> = BTreeMap::new();
    for ((d, p, t), (s, w)) in &kept {
        latest.insert((d.clone(), p.clone()), (*t, *s, *w, false));
        if *s == DeviceState::Succeeded {
            first_ok.entry((d.clone(), p.clone())).or_insert(*t);
        }
    }
    for (k, v) in latest.iter_mut() {
        v.3 = first_ok.get(k).is_some_and(|t| *t < v.0);
    }
    let recount = |wave: u32, since: Option<jiff::Timestamp>| {
        let mut c = ringmaster_store::StateCounts::default();
        for (t, s, w, _) in latest.values() {
            if *w == wave && since.is_none_or(|since| *t >= since) {
                c.add(*s, 1);
            }
        }
        c
    };

    for store in stores().await {
        let mut inserted = 0;
        for b in &batches {
            inserted += store.ingest_status("r", b).await.unwrap().inserted;
        }
        assert_eq!(inserted as usize, kept.len());
        for wave in 0..3 {
            // Before every report, within them, after them all.
            let sinces = [-1, 20, 41].map(|m| Some(t0 + jiff::SignedDuration::from_mins(m)));
            for since in std::iter::once(None).chain(sinces) {
                assert_eq!(
                    store.wave_counts("r", wave, since).await.unwrap(),
                    recount(wave, since),
                    "wave {wave} since {since:?}"
                );
            }
        }
        let got: Vec<_> = store
            .latest_states("r", None)
            .await
            .unwrap()
            .0
            .into_iter()
            .map(|l| {
                (
                    (l.device, l.policy),
                    (l.reported_at, l.state, l.was_succeeded),
                )
            })
            .collect();
        let want: Vec<_> = latest
            .iter()
            .map(|(k, (t, s, _, was))| (k.clone(), (*t, *s, *was)))
            .collect();
        assert_eq!(got, want);
        // Another rollout's reports are counted apart.
        assert_eq!(
            store
                .wave_counts("other", 0, None)
                .await
                .unwrap()
                .reported(),
            0
        );
    }
}

/// Tokens last 90 days unless made otherwise, are listed without their
/// secret with when they were last used, and stop at once when revoked.
#[tokio::test]
async fn tokens_expire_are_listed_and_revoked() {
    use ringmaster_store::Role;
    for store in stores().await {
        let t0 = at("2027-01-01T00:00:00Z");
        let days = |n: i64| t0 + jiff::SignedDuration::from_hours(24 * n);
        let default = store.create_token(Role::Viewer, "dash", t0).await.unwrap();
        let short = store
            .create_token_until(Role::Reporter, "job", t0, Some(days(30)), "jane")
            .await
            .unwrap();
        let forever = store
            .create_token_until(Role::Admin, "root", t0, None, "jane")
            .await
            .unwrap();
        let valid = |t: &TokenCheck| matches!(t, TokenCheck::Valid { .. });
        assert!(valid(&store.check_token(&short, days(29)).await.unwrap()));
        assert_eq!(
            store.check_token(&short, days(30)).await.unwrap(),
            TokenCheck::Expired(days(30))
        );
        assert!(valid(&store.check_token(&default, days(89)).await.unwrap()));
        assert_eq!(
            store.check_token(&default, days(91)).await.unwrap(),
            TokenCheck::Expired(days(90))
        );
        assert!(valid(
            &store.check_token(&forever, days(5000)).await.unwrap()
        ));

        let list = store.tokens().await.unwrap();
        let seen: Vec<_> = list
            .iter()
            .map(|t| (t.role, t.label.as_str(), t.expires_at, t.last_used_at))
            .collect();
        assert_eq!(
            seen,
            vec![
                (Role::Viewer, "dash", Some(days(90)), Some(days(89))),
                (Role::Reporter, "job", Some(days(30)), Some(days(29))),
                (Role::Admin, "root", None, Some(days(5000))),
            ]
        );
        let root = list[2].id;
        assert!(store.revoke_token(root, "jane", days(6)).await.unwrap());
        assert!(!store.revoke_token(root, "jane", days(7)).await.unwrap());
        assert!(
            !store
                .revoke_token(root + 100, "jane", days(7))
                .await
                .unwrap()
        );
        assert_eq!(
            store.check_token(&forever, days(8)).await.unwrap(),
            TokenCheck::Revoked(days(6))
        );
        // A revoked token signs no one in.
        assert!(
            store
                .create_session(&forever, 8, days(8))
                .await
                .unwrap()
                .is_none()
        );
        // Creations and the revocation are in the audit log, under no rollout.
        let audit: Vec<_> = store
            .audit_log("")
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.actor, e.action, e.detail))
            .collect();
        let names = |a: &str| audit.iter().filter(|e| e.1 == a).count();
        assert_eq!((names("token created"), names("token revoked")), (3, 1));
        assert!(
            audit.iter().any(|e| e.0 == "jane"
                && e.1 == "token created"
                && e.2.contains("(job), reporter, valid until 2027-01-31 ")
                && e.2.ends_with(" UTC")),
            "{audit:?}"
        );
    }
}

/// A dashboard session lives no longer than the token that signed it in:
/// it ends when the token is revoked or expires, whatever its own hours.
#[tokio::test]
async fn sessions_end_with_their_token() {
    use ringmaster_store::Role;
    for store in stores().await {
        let t0 = at("2027-01-01T00:00:00Z");
        let hours = |n: i64| t0 + jiff::SignedDuration::from_hours(n);
        let short = store
            .create_token_until(Role::Operator, "ann", t0, Some(hours(10)), "jane")
            .await
            .unwrap();
        let kept = store
            .create_token_until(Role::Viewer, "bob", t0, None, "jane")
            .await
            .unwrap();
        let (ann, _) = store.create_session(&short, 24, t0).await.unwrap().unwrap();
        let (bob, _) = store.create_session(&kept, 24, t0).await.unwrap().unwrap();
        let (bob2, _) = store.create_session(&kept, 24, t0).await.unwrap().unwrap();
        let live = |s: Option<ringmaster_store::Session>| s.map(|s| s.label);
        assert_eq!(
            live(store.check_session(&ann, hours(9)).await.unwrap()),
            Some("ann".into())
        );
        // The token expired at hour 10; the session would have lasted to 24.
        assert_eq!(
            live(store.check_session(&ann, hours(10)).await.unwrap()),
            None
        );
        assert_eq!(
            live(store.check_session(&bob, hours(11)).await.unwrap()),
            Some("bob".into())
        );
        let id = store
            .tokens()
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.label == "bob")
            .unwrap()
            .id;
        assert!(store.revoke_token(id, "jane", hours(12)).await.unwrap());
        for s in [&bob, &bob2] {
            assert_eq!(live(store.check_session(s, hours(12)).await.unwrap()), None);
        }
    }
}

/// Ids travel to PostgreSQL by `COPY` in its text format: tabs, line
/// breaks and backslashes in them arrive as sent, on every backend.
#[tokio::test]
async fn ids_with_tabs_breaks_and_backslashes_arrive_as_sent() {
    let odd = [
        "dev\tone",
        "dev\ntwo\r",
        "C:\\dev\\N",
        "\\N",
        "dev ✓ é",
        "bell\u{8}\u{b}\u{c}",
    ];
    let t0 = at("2027-01-18T08:00:00Z");
    let reports: Vec<StatusReport> = odd
        .iter()
        .enumerate()
        .map(|(i, d)| StatusReport {
            device: d.to_string(),
            policy: format!("pol\\{i}\t"),
            state: DeviceState::Succeeded,
            reported_at: t0 + jiff::SignedDuration::from_mins(i as i64),
            wave: if i == 0 { None } else { Some(1) },
        })
        .collect();
    for store in stores().await {
        let got = store.ingest_status("odd", &reports).await.unwrap();
        assert_eq!((got.inserted, got.duplicates), (6, 0));
        let mut latest: Vec<(String, String)> = store
            .latest_states("odd", None)
            .await
            .unwrap()
            .0
            .into_iter()
            .map(|l| (l.device, l.policy))
            .collect();
        latest.sort();
        let mut want: Vec<(String, String)> = reports
            .iter()
            .map(|r| (r.device.clone(), r.policy.clone()))
            .collect();
        want.sort();
        assert_eq!(latest, want);
        assert_eq!(
            store.wave_counts("odd", 1, None).await.unwrap().succeeded,
            5
        );
    }
}

/// The requester of a version is whoever asked first; each person's
/// approval of a wave is kept once (names compared without case or outer
/// spaces), with an audit entry, on every backend.
#[tokio::test]
async fn requesters_and_approvals_round_trip() {
    for store in stores().await {
        let t0 = at("2027-01-11T08:00:00Z");
        let v = store
            .start_version("r", "waves A", "plan", &waves(), t0)
            .await
            .unwrap()
            .version;
        assert_eq!(store.requester("r", v).await.unwrap(), None);
        assert_eq!(store.request("r", v, "alice", t0).await.unwrap(), "alice");
        // A later driver does not become the requester.
        assert_eq!(store.request("r", v, "bob", t0).await.unwrap(), "alice");
        assert_eq!(
            store.requester("r", v).await.unwrap().as_deref(),
            Some("alice")
        );
        assert_eq!(store.requester("r", v + 1).await.unwrap(), None);

        let key = WaveKey {
            rollout: "r".into(),
            version: v,
            idx: 1,
        };
        let t1 = at("2027-01-25T09:00:00Z");
        let t2 = at("2027-01-25T10:00:00Z");
        assert!(
            store
                .add_approval(&key, "bob", "1 of 2 approvals", t1)
                .await
                .unwrap()
        );
        assert!(
            !store
                .add_approval(&key, " BOB ", "again", t2)
                .await
                .unwrap()
        );
        assert!(
            store
                .add_approval(&key, "carol", "2 of 2 approvals", t2)
                .await
                .unwrap()
        );
        let got: Vec<(String, jiff::Timestamp)> = store
            .approvals(&key)
            .await
            .unwrap()
            .into_iter()
            .map(|a| (a.approver, a.at))
            .collect();
        assert_eq!(got, vec![("bob".into(), t1), ("carol".into(), t2)]);
        // Another wave has its own approvals.
        let other = WaveKey {
            idx: 0,
            ..key.clone()
        };
        assert!(store.approvals(&other).await.unwrap().is_empty());

        let log = store.audit_log("r").await.unwrap();
        let said: Vec<(&str, &str, &str)> = log
            .iter()
            .map(|e| (e.actor.as_str(), e.action.as_str(), e.detail.as_str()))
            .collect();
        assert!(
            said.contains(&(
                "alice",
                "version 1: requested",
                "alice started the rollout: its waves are requested by alice"
            )),
            "{said:?}"
        );
        assert!(
            said.contains(&("bob", "wave 2: approved", "1 of 2 approvals")),
            "{said:?}"
        );
        assert!(
            said.contains(&("carol", "wave 2: approved", "2 of 2 approvals")),
            "{said:?}"
        );
        assert!(!said.iter().any(|s| s.2 == "again"), "{said:?}");
        assert_eq!(
            said.iter()
                .filter(|s| s.1 == "version 1: requested")
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn held_strata_are_kept_once_released_once_and_read_back() {
    for store in stores().await {
        let t0 = at("2027-01-11T08:00:00Z");
        let v = store
            .start_version("r", "waves A", "plan", &waves(), t0)
            .await
            .unwrap()
            .version;
        let key = WaveKey {
            rollout: "r".into(),
            version: v,
            idx: 1,
        };
        let held_at = at("2027-01-26T12:00:00Z");
        let hold = ringmaster_store::HeldStratum {
            key: key.clone(),
            stratum: "model Latitude 7440".into(),
            devices: [60u32, 61, 900].into_iter().collect(),
            evidence:
                "error rate 15 % … in model Latitude 7440, look 3 misses the bar of ≤ 2 %: fail"
                    .into(),
            rollback: true,
            held_at,
            removed_at: None,
            released_at: None,
            released_by: None,
        };
        assert!(store.hold_stratum(&hold).await.unwrap());
        // A round run again holds nothing twice, even with other figures.
        let again = ringmaster_store::HeldStratum {
            evidence: "another sentence".into(),
            held_at: at("2027-01-26T16:00:00Z"),
            ..hold.clone()
        };
        assert!(!store.hold_stratum(&again).await.unwrap());
        assert_eq!(store.held_strata("r").await.unwrap(), vec![hold.clone()]);
        assert!(store.held_strata("other").await.unwrap().is_empty());

        let removed = at("2027-01-26T12:00:01Z");
        store
            .hold_removed(&key, &hold.stratum, removed)
            .await
            .unwrap();
        // Marked once: a repeat keeps the first time.
        store
            .hold_removed(&key, &hold.stratum, at("2027-01-27T00:00:00Z"))
            .await
            .unwrap();
        let released = at("2027-01-28T09:00:00Z");
        assert!(
            store
                .release_stratum(&key, &hold.stratum, "ops", released)
                .await
                .unwrap()
        );
        assert!(
            !store
                .release_stratum(&key, &hold.stratum, "eve", released)
                .await
                .unwrap()
        );
        assert!(
            !store
                .release_stratum(&key, "model Other", "ops", released)
                .await
                .unwrap()
        );
        let got = store.held_strata("r").await.unwrap();
        assert_eq!(
            got,
            vec![ringmaster_store::HeldStratum {
                removed_at: Some(removed),
                released_at: Some(released),
                released_by: Some("ops".into()),
                ..hold.clone()
            }]
        );
        let log = store.audit_log("r").await.unwrap();
        let said: Vec<(&str, &str)> = log
            .iter()
            .filter(|e| e.action.contains("Latitude"))
            .map(|e| (e.actor.as_str(), e.action.as_str()))
            .collect();
        assert_eq!(
            said,
            [
                ("ringmaster", "wave 2: model Latitude 7440 held"),
                ("ops", "wave 2: model Latitude 7440 released"),
            ]
        );
        assert!(
            log.iter()
                .any(|e| e.detail.contains("3 device(s) taken out"))
        );
    }
}

#[tokio::test]
async fn a_waves_device_states_are_read_since_its_start() {
    for store in stores().await {
        let report =
            |device: &str, state: DeviceState, when: &str, wave: Option<u32>| StatusReport {
                device: device.into(),
                policy: "p".into(),
                state,
                reported_at: at(when),
                wave,
            };
        store
            .ingest_status(
                "r",
                &[
                    report("a", DeviceState::Error, "2027-01-20T08:00:00Z", Some(1)),
                    report("b", DeviceState::Succeeded, "2027-01-26T08:00:00Z", Some(1)),
                    report("c", DeviceState::Error, "2027-01-26T09:00:00Z", Some(1)),
                    report("d", DeviceState::Succeeded, "2027-01-26T09:00:00Z", Some(0)),
                ],
            )
            .await
            .unwrap();
        let mut got = store
            .wave_device_states("r", 1, Some(at("2027-01-25T08:00:00Z")))
            .await
            .unwrap();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("b".to_string(), DeviceState::Succeeded),
                ("c".to_string(), DeviceState::Error)
            ]
        );
        assert_eq!(
            store.wave_device_states("r", 1, None).await.unwrap().len(),
            3
        );
    }
}
