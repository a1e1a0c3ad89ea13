//! What a store does, one trait per concern. [`Store`] is all of them, and
//! what callers hold (`Arc<dyn Store>`); the methods of every part are
//! callable on it without importing the part.

use crate::{
    Action, AlertMark, Approval, AuditEntry, Delivery, DeviceState, Feedback, GateRound,
    HeldStratum, Ingested, LatestState, NewMessage, NewWave, OutboxItem, Recorded, Result, Role,
    Session, Started, StateCounts, StatusReport, TOKEN_DAYS, TenantApproval, Ticket, TokenCheck,
    TokenInfo, WaveKey, WaveRow,
};
use async_trait::async_trait;
use ringmaster_core::alerts::Alert;
use ringmaster_core::wave::{Event, Transition};

/// Plan versions, their waves and transitions, and the effects those leave
/// to carry out (the actual state).
#[async_trait]
pub trait Waves: Send + Sync {
    /// Starts a rollout's plan. `identity` is what may not change in place
    /// (waves, members, goals, rules); the text may. The same identity as the
    /// newest version keeps that version, taking the new text and wave start
    /// times in place (a schedule change); another identity makes the next
    /// version with its waves pending.
    async fn start_version(
        &self,
        rollout: &str,
        identity: &str,
        text: &str,
        waves: &[NewWave],
        at: jiff::Timestamp,
    ) -> Result<Started>;
    /// The newest version of a rollout and its text.
    async fn latest_version(&self, rollout: &str) -> Result<Option<(u32, String)>>;
    /// The waves of a rollout's version, in order.
    async fn waves(&self, rollout: &str, version: u32) -> Result<Vec<WaveRow>>;
    /// Records a transition of a wave that has made `expected` transitions so
    /// far: new state, the transition, its effects as pending actions and an
    /// audit entry, in one transaction. [`StoreError::Stale`] when the wave
    /// moved meanwhile; then nothing is written.
    async fn commit(
        &self,
        key: &WaveKey,
        expected: u64,
        event: &Event,
        t: &Transition,
        actor: &str,
        at: jiff::Timestamp,
    ) -> Result<u64>;
    /// Every transition of a rollout, oldest first.
    async fn history(&self, rollout: &str) -> Result<Vec<Recorded>>;
    /// Effects recorded but not yet done, oldest first.
    async fn pending_actions(&self, rollout: &str) -> Result<Vec<Action>>;
    /// Effects carried out, with when, oldest first: the actual state.
    async fn done_actions(&self, rollout: &str) -> Result<Vec<(Action, jiff::Timestamp)>>;
    /// Marks an action done, or counts a failed attempt with its error.
    async fn finish_action(
        &self,
        a: &Action,
        error: Option<&str>,
        at: jiff::Timestamp,
    ) -> Result<()>;
    /// Records `who` as the requester of a version's waves unless one is
    /// recorded already (with an audit entry, in one transaction); returns
    /// the requester that stands.
    async fn request(
        &self,
        rollout: &str,
        version: u32,
        who: &str,
        at: jiff::Timestamp,
    ) -> Result<String>;
    /// Who requested a version's waves, if anyone is recorded.
    async fn requester(&self, rollout: &str, version: u32) -> Result<Option<String>>;
    /// Records `who`'s approval of a wave with an audit entry saying
    /// `detail`, in one transaction. False, and nothing written, when that
    /// person (by [`ringmaster_core::approvals::same_person`]) approved it already.
    async fn add_approval(
        &self,
        key: &WaveKey,
        who: &str,
        detail: &str,
        at: jiff::Timestamp,
    ) -> Result<bool>;
    /// A wave's approvals, oldest first.
    async fn approvals(&self, key: &WaveKey) -> Result<Vec<Approval>>;
    /// Records a held stratum with its audit entry, in one transaction.
    /// False, and nothing written, when that wave already holds that
    /// stratum (a round run again after a crash).
    async fn hold_stratum(&self, hold: &HeldStratum) -> Result<bool>;
    /// A rollout's held strata (released ones too), oldest first.
    async fn held_strata(&self, rollout: &str) -> Result<Vec<HeldStratum>>;
    /// Notes that the connector took a held stratum's devices out of the
    /// wave's group.
    async fn hold_removed(&self, key: &WaveKey, stratum: &str, at: jiff::Timestamp) -> Result<()>;
    /// An operator releases a hold, with the audit entry, in one
    /// transaction. False when there is no such hold or it was released.
    async fn release_stratum(
        &self,
        key: &WaveKey,
        stratum: &str,
        who: &str,
        at: jiff::Timestamp,
    ) -> Result<bool>;
}

/// What devices and people report, counted per wave, and what the gates
/// made of it.
#[async_trait]
pub trait Reports: Send + Sync {
    /// Stores status reports; a report already stored is a duplicate, and the
    /// latest state of a device moves only forward in time.
    async fn ingest_status(&self, rollout: &str, reports: &[StatusReport]) -> Result<Ingested>;
    /// Latest states of the devices of one wave (reported at or after
    /// `since`, when given: the wave's start, so an earlier plan version's
    /// reports do not count).
    async fn wave_counts(
        &self,
        rollout: &str,
        wave: u32,
        since: Option<jiff::Timestamp>,
    ) -> Result<StateCounts>;
    /// The latest state of every device and policy of a rollout, with
    /// whether that device and policy reported Succeeded before it (the run
    /// state's regressions).
    /// Each ingest batch gives the states it changes a change number, one
    /// past the rollout's last; `after` keeps only states changed after it
    /// (what a watcher that read up to then has not seen, however old the
    /// reports' own times). The number returned is the highest one read,
    /// for the next call.
    async fn latest_states(
        &self,
        rollout: &str,
        after: Option<u64>,
    ) -> Result<(Vec<LatestState>, u64)>;
    /// The latest state of each device (and policy) of one wave, reported
    /// at or after `since` when given: what per-stratum gates read.
    async fn wave_device_states(
        &self,
        rollout: &str,
        wave: u32,
        since: Option<jiff::Timestamp>,
    ) -> Result<Vec<(String, DeviceState)>>;
    /// Keeps a wave's counted states at a gate round (replacing one at the same moment).
    async fn record_counts(
        &self,
        key: &WaveKey,
        at: jiff::Timestamp,
        counts: &StateCounts,
    ) -> Result<()>;
    /// A wave's counted states over time, oldest first.
    async fn counts_series(&self, key: &WaveKey) -> Result<Vec<(jiff::Timestamp, StateCounts)>>;
    /// Stores one round of a wave's gates, replacing any stored at that
    /// same moment (a round cut short by a crash and run again).
    async fn replace_round(&self, key: &WaveKey, round: &GateRound) -> Result<()>;
    /// The gate rounds of a wave, oldest first, each in goal order.
    async fn gate_rounds(&self, key: &WaveKey) -> Result<Vec<GateRound>>;
    /// Stores help-desk tickets (already attributed to a wave, or not); re-sent ones are duplicates.
    async fn ingest_tickets(&self, rollout: &str, tickets: &[Ticket]) -> Result<Ingested>;
    /// Stores pilot feedback; re-sent answers are duplicates.
    async fn ingest_feedback(&self, rollout: &str, answers: &[Feedback]) -> Result<Ingested>;
    /// Tickets attributed to a wave, and feedback answers with the sum of their scores.
    /// (Only those that came in at or after `since`, when given: a goal's window.)
    async fn wave_tickets_feedback(
        &self,
        rollout: &str,
        wave: u32,
        since: Option<jiff::Timestamp>,
    ) -> Result<(u64, u64, f64)>;
    /// Tickets and feedback answers attributed to a wave, newest first:
    /// `limit` of each after skipping the `offset` newest.
    async fn wave_items(
        &self,
        rollout: &str,
        wave: u32,
        offset: u32,
        limit: u32,
    ) -> Result<(Vec<Ticket>, Vec<Feedback>)>;
    /// Tickets of the concurrent control (devices of the scope no wave had
    /// reached when the ticket was opened), opened in `[from, to)`.
    async fn control_tickets(
        &self,
        rollout: &str,
        from: jiff::Timestamp,
        to: jiff::Timestamp,
    ) -> Result<u64>;
    /// Tickets tied to the rollout's waves, opened in `[from, to)`.
    async fn count_tickets(
        &self,
        rollout: &str,
        from: jiff::Timestamp,
        to: jiff::Timestamp,
    ) -> Result<u64>;
}

/// Who may do what: API tokens and dashboard sessions, kept as hashes.
#[async_trait]
pub trait Credentials: Send + Sync {
    /// Makes an API token for a role, valid for [`TOKEN_DAYS`] days;
    /// returns the token, which is kept only as a hash.
    async fn create_token(&self, role: Role, label: &str, at: jiff::Timestamp) -> Result<String> {
        let until = at + jiff::SignedDuration::from_hours(24 * TOKEN_DAYS);
        self.create_token_until(role, label, at, Some(until), "ringmaster")
            .await
    }
    /// Makes an API token valid until `expires` (None: until revoked),
    /// writing the audit entry for `who` in the same transaction.
    async fn create_token_until(
        &self,
        role: Role,
        label: &str,
        at: jiff::Timestamp,
        expires: Option<jiff::Timestamp>,
        who: &str,
    ) -> Result<String>;
    /// What a token is at `at`: valid (with its role and label, noting
    /// that it was used), unknown, revoked or expired.
    async fn check_token(&self, token: &str, at: jiff::Timestamp) -> Result<TokenCheck>;
    /// Every token, oldest first (never the secret: it is not kept).
    async fn tokens(&self) -> Result<Vec<TokenInfo>>;
    /// Revokes a token by its id, writing the audit entry in the same
    /// transaction. False when there is no such token or it was revoked.
    async fn revoke_token(&self, id: i64, who: &str, at: jiff::Timestamp) -> Result<bool>;
    /// Whether any token exists (the first start makes an admin one).
    async fn has_tokens(&self) -> Result<bool>;
    /// Signs a token in: a new session (its id is returned once and kept
    /// only as a hash) lasting `hours`; None when the token is unknown.
    async fn create_session(
        &self,
        token: &str,
        hours: u32,
        at: jiff::Timestamp,
    ) -> Result<Option<(String, Session)>>;
    /// The session an id names, if it has not expired and the token that
    /// signed it in is neither revoked nor expired.
    async fn check_session(&self, id: &str, at: jiff::Timestamp) -> Result<Option<Session>>;
    /// Signs a session out.
    async fn end_session(&self, id: &str) -> Result<()>;
}

/// Notifications to deliver, each queued once per key and destination.
#[async_trait]
pub trait Notifications: Send + Sync {
    /// Queues notifications due at `at`; ones already queued (same key and
    /// destination) are left alone. Returns how many were new.
    async fn enqueue(
        &self,
        rollout: &str,
        messages: &[NewMessage],
        at: jiff::Timestamp,
    ) -> Result<u64>;
    /// Pending notifications due at `now`, oldest first.
    async fn due_messages(
        &self,
        rollout: &str,
        now: jiff::Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxItem>>;
    /// Records a delivery attempt.
    async fn finish_message(&self, id: i64, result: &Delivery, at: jiff::Timestamp) -> Result<()>;
    /// The newest notifications of a rollout (at most `limit`), newest first.
    async fn outbox(&self, rollout: &str, limit: u32) -> Result<Vec<OutboxItem>>;
    /// A page of them, newest first: skips `offset`, at most `limit`, with
    /// the notifications in all.
    async fn outbox_page(
        &self,
        rollout: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<OutboxItem>, u64)>;
}

/// The run state after the last wave: scope entries, alerts, samples.
#[async_trait]
pub trait Watching: Send + Sync {
    /// Records when devices entered the scope; devices already recorded
    /// keep their first time.
    async fn enter_scope(
        &self,
        rollout: &str,
        devices: &[String],
        at: jiff::Timestamp,
    ) -> Result<Ingested>;
    /// Every device recorded in the scope, with when it entered.
    async fn scope_entries(&self, rollout: &str) -> Result<Vec<(String, jiff::Timestamp)>>;
    /// The open alerts (pending and raised), or every alert, oldest first.
    async fn alerts(&self, rollout: &str, open_only: bool) -> Result<Vec<Alert>>;
    /// Stores a check's alerts (the open ones and those it resolved):
    /// pending alerts not among them are dropped, the others updated;
    /// acknowledgements are kept.
    async fn save_alerts(&self, rollout: &str, alerts: &[Alert]) -> Result<()>;
    /// Acknowledges or resolves a raised, open alert by hand, writing the
    /// audit entry in the same transaction. False when there is none.
    async fn mark_alert(
        &self,
        rollout: &str,
        key: &str,
        mark: AlertMark,
        who: &str,
        note: &str,
        at: jiff::Timestamp,
    ) -> Result<bool>;
    /// Keeps one run-state sample (a JSON body) per check.
    async fn record_runstate(&self, rollout: &str, at: jiff::Timestamp, body: &str) -> Result<()>;
    /// The run-state samples from `since` on, oldest first.
    async fn runstate_samples(
        &self,
        rollout: &str,
        since: jiff::Timestamp,
    ) -> Result<Vec<(jiff::Timestamp, String)>>;
}

/// What drivers and servers share: small named values, leases, the audit log.
#[async_trait]
pub trait Coordination: Send + Sync {
    /// A small named value kept between runs.
    async fn get_meta(&self, rollout: &str, key: &str) -> Result<Option<String>>;
    async fn set_meta(&self, rollout: &str, key: &str, value: &str) -> Result<()>;
    /// The value kept under `key`, storing `value` first when there is none:
    /// servers starting together all end up with the same one.
    async fn meta_or_insert(&self, rollout: &str, key: &str, value: &str) -> Result<String>;
    /// Takes or renews the lease `name` for `holder` until `until`. False
    /// while another holder's lease has not run out at `now`: exactly one
    /// of several servers drives a rollout's scheduler.
    async fn lease(
        &self,
        name: &str,
        holder: &str,
        now: jiff::Timestamp,
        until: jiff::Timestamp,
    ) -> Result<bool>;
    /// Gives a lease up (a clean stop hands over at once).
    async fn release(&self, name: &str, holder: &str) -> Result<()>;
    /// Adds an audit entry (operator actions that are not transitions, sign-ins, tokens).
    async fn audit(&self, entry: &AuditEntry) -> Result<()>;
    /// The audit log of a rollout with the service's own entries (tokens,
    /// kept under rollout ""), oldest first.
    async fn audit_log(&self, rollout: &str) -> Result<Vec<AuditEntry>>;
    /// A page of the same log (`newest_first` or oldest first): skips
    /// `offset` entries, returns at most `limit`, with the entries in all.
    async fn audit_page(
        &self,
        rollout: &str,
        newest_first: bool,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<AuditEntry>, u64)>;
}

/// Requests for a tenant's approval of the engine's writes (Intune's Multi
/// Admin Approval): kept before the tick that made them ends, so a
/// restarted run finds them and never asks twice.
#[async_trait]
pub trait TenantApprovals: Send + Sync {
    /// Records a request, or its new status and reason (by the request's id).
    async fn save_approval(&self, a: &TenantApproval) -> Result<()>;
    /// A rollout's requests, oldest first (retired ones too).
    async fn tenant_approvals(&self, rollout: &str) -> Result<Vec<TenantApproval>>;
    /// Retires the refused (rejected, cancelled, expired) requests of a
    /// wave, so its writes may ask again; returns how many.
    async fn retire_refused_approvals(&self, key: &WaveKey) -> Result<u64>;
}

/// The durable state of rollouts. Writes that belong together commit together.
pub trait Store:
    Waves + Reports + Credentials + Notifications + Watching + Coordination + TenantApprovals
{
}

impl<T> Store for T where
    T: Waves
        + Reports
        + Credentials
        + Notifications
        + Watching
        + Coordination
        + TenantApprovals
        + ?Sized
{
}
