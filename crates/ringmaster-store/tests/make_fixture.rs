//! Writes the databases `tests/fixtures/v6-*.sql` were dumped from: a short
//! rollout through the store API as it stood at migration 0006 (SQLite) /
//! 0002 (PostgreSQL). Run by hand, not in CI:
//!   RINGMASTER_MAKE_FIXTURE=/tmp/fixture.db cargo test -p ringmaster-store --test make_fixture
//!   sqlite3 /tmp/fixture.db .dump > tests/fixtures/v6-sqlite.sql
//! and with RINGMASTER_MAKE_FIXTURE=postgres://… then `pg_dump --inserts`.

use ringmaster_core::alerts::{Alert, Severity};
use ringmaster_core::gates::{self, GatePolicy, Observed};
use ringmaster_core::goals::{Comparator, Deadline, Goal, Metric};
use ringmaster_core::wave::{Event, Rules, step};
use ringmaster_store::{
    AuditEntry, Delivery, Feedback, NewMessage, NewWave, Role, StateCounts, StatusReport, Ticket,
    WaveKey, open,
};

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

#[tokio::test]
async fn make_fixture() {
    let Ok(target) = std::env::var("RINGMASTER_MAKE_FIXTURE") else {
        return;
    };
    let url = if target.starts_with("postgres") {
        target
    } else {
        format!("sqlite:{target}")
    };
    let s = open(&url).await.unwrap();
    let waves = vec![
        NewWave {
            name: "Pilot".into(),
            phase: "pilot".into(),
            members: (0..4).collect(),
            starts_at: at("2027-01-18T08:00:00Z"),
        },
        NewWave {
            name: "Everyone".into(),
            phase: "enterprise".into(),
            members: (4..10).collect(),
            starts_at: at("2027-01-25T08:00:00Z"),
        },
    ];
    s.start_version(
        "r",
        "waves A",
        "plan one",
        &waves,
        at("2027-01-11T08:00:00.25Z"),
    )
    .await
    .unwrap();
    let rules = Rules::default();
    let key = |idx| WaveKey {
        rollout: "r".into(),
        version: 1,
        idx,
    };
    // Wave 0 starts half a second after a whole second; wave 1 starts on
    // that whole second: ordered by the old TEXT column, wave 0 came first.
    let mut seq = 0;
    for (event, when) in [
        (Event::Start, "2027-01-18T08:00:00.5Z"),
        (Event::Applied, "2027-01-18T09:00:00Z"),
    ] {
        let row = &s.waves("r", 1).await.unwrap()[0];
        let t = step(row.state, &event, &rules).unwrap();
        seq = s
            .commit(&key(0), row.seq, &event, &t, "ringmaster", at(when))
            .await
            .unwrap();
    }
    assert_eq!(seq, 2);
    let row = &s.waves("r", 1).await.unwrap()[1];
    let t = step(row.state, &Event::Start, &rules).unwrap();
    s.commit(
        &key(1),
        row.seq,
        &Event::Start,
        &t,
        "ops@contoso",
        at("2027-01-18T08:00:00Z"),
    )
    .await
    .unwrap();
    let pending = s.pending_actions("r").await.unwrap();
    s.finish_action(&pending[0], None, at("2027-01-18T08:00:01.125Z"))
        .await
        .unwrap();
    s.finish_action(&pending[1], Some("Graph 429"), at("2027-01-18T08:00:02Z"))
        .await
        .unwrap();

    let states = [
        "succeeded",
        "error",
        "conflict",
        "pending",
        "not_applicable",
    ];
    let reports: Vec<StatusReport> = (0..10u32)
        .map(|d| StatusReport {
            device: format!("dev-{d}"),
            policy: "p1".into(),
            state: states[d as usize % 5].into(),
            reported_at: at("2027-01-18T12:00:00.75Z"),
            wave: Some(u32::from(d >= 4)),
        })
        .chain(std::iter::once(StatusReport {
            device: "dev-1".into(),
            policy: "p1".into(),
            state: "succeeded".into(),
            reported_at: at("2027-01-18T13:00:00Z"),
            wave: Some(0),
        }))
        .collect();
    s.ingest_status("r", &reports).await.unwrap();
    s.ingest_tickets(
        "r",
        &[Ticket {
            id: "INC001".into(),
            at: at("2027-01-18T14:30:00.5Z"),
            user: Some("amy@contoso".into()),
            device: Some("dev-1".into()),
            category: Some("device configuration".into()),
            text: "camera stopped working".into(),
            wave: Some(0),
        }],
    )
    .await
    .unwrap();
    s.ingest_feedback(
        "r",
        &[Feedback {
            id: "F1".into(),
            at: at("2027-01-18T15:00:00Z"),
            user: Some("bob@contoso".into()),
            device: None,
            score: 4,
            comment: "fine".into(),
            wave: Some(0),
        }],
    )
    .await
    .unwrap();

    // A gate round as the engine writes it: each evaluation with its goal's
    // position, and a wave without goals judged on bake time.
    let goal = Goal {
        metric: Metric::ApplySuccessRate,
        comparator: Comparator::AtLeast,
        threshold: 0.9,
        window_hours: 24.0,
        min_sample: 3,
        deadline: Deadline::AfterHours(168.0),
        critical: true,
    };
    let observed = Observed {
        devices: 4,
        reported: 4,
        succeeded: 2,
        errors: 1,
        conflicts: 1,
        ..Observed::default()
    };
    let e = gates::evaluate(&goal, &observed, &GatePolicy::default(), None);
    let mut body = serde_json::to_value(&e).unwrap();
    body["goal"] = serde_json::json!(0);
    s.replace_evaluations(&key(0), &[body], at("2027-01-18T20:00:00Z"))
        .await
        .unwrap();
    s.replace_evaluations(
        &key(1),
        &[serde_json::json!({"goal": null, "outcome": "no_data",
            "sentence": "no goals: the wave is judged on bake time alone"})],
        at("2027-01-18T20:00:00Z"),
    )
    .await
    .unwrap();
    s.record_counts(
        &key(0),
        at("2027-01-18T20:00:00Z"),
        &StateCounts {
            succeeded: 2,
            error: 1,
            conflict: 1,
            ..StateCounts::default()
        },
    )
    .await
    .unwrap();

    s.set_meta("r", "clock", "2027-01-18T20:00:00Z")
        .await
        .unwrap();
    // Tokens and sessions: their hashes only; the test cannot sign in with
    // them, it checks they are kept.
    let token = s
        .create_token(Role::Operator, "ops team", at("2027-01-11T08:00:00Z"))
        .await
        .unwrap();
    s.create_session(&token, 8, at("2027-01-18T08:00:00Z"))
        .await
        .unwrap();
    s.audit(&AuditEntry {
        at: at("2027-01-18T08:30:00.001Z"),
        actor: "ops@contoso".into(),
        rollout: "r".into(),
        action: "token created".into(),
        detail: "role operator".into(),
    })
    .await
    .unwrap();
    s.enqueue(
        "r",
        &[NewMessage {
            key: "start:1:0:help_desk".into(),
            channel: "webhook".into(),
            target: "https://hooks.example/ringmaster".into(),
            audience: "help desk".into(),
            subject: "Pilot starts".into(),
            body: "The pilot starts today.".into(),
            html: "<p>The pilot starts today.</p>".into(),
        }],
        at("2027-01-18T08:00:00Z"),
    )
    .await
    .unwrap();
    let item = s
        .due_messages("r", at("2027-01-18T08:00:00Z"), 10)
        .await
        .unwrap();
    s.finish_message(item[0].id, &Delivery::Sent, at("2027-01-18T08:00:03.5Z"))
        .await
        .unwrap();
    s.lease(
        "scheduler",
        "host-a",
        at("2027-01-18T08:00:00Z"),
        at("2027-01-18T08:05:00Z"),
    )
    .await
    .unwrap();
    s.enter_scope(
        "r",
        &["dev-0".into(), "dev-1".into()],
        at("2027-01-18T08:00:00Z"),
    )
    .await
    .unwrap();
    s.save_alerts(
        "r",
        &[Alert {
            key: "regression:p1".into(),
            kind: "regression".into(),
            severity: Severity::Warning,
            text: "1 device regressed".into(),
            first_seen: at("2027-01-18T20:00:00Z").as_second(),
            raised_at: Some(at("2027-01-18T21:00:00Z").as_second()),
            resolved_at: None,
            acknowledged: None,
        }],
    )
    .await
    .unwrap();
    s.record_runstate(
        "r",
        at("2027-01-18T21:00:00Z"),
        r#"{"devices":10,"succeeded":3}"#,
    )
    .await
    .unwrap();
}
