//! Durable state of rollouts behind one trait, [`Store`], with a backend
//! per URL scheme (`sqlite:` today; PostgreSQL implements the same trait).
//! Every wave transition commits with its effects and its audit entry in one
//! transaction, guarded by the wave's transition count, so two drivers can
//! never both move a wave and a crash never loses or repeats a step.
//!
//! - [`sqlite`]: the embedded default (WAL, embedded migrations).

pub mod postgres;
mod shared;
pub mod sqlite;

use async_trait::async_trait;
use ringmaster_core::alerts::Alert;
use ringmaster_core::wave::{Effect, Event, Transition, WaveState};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The wave moved since it was read (another driver, or a retry): nothing was written.
    #[error(
        "wave {idx} of {rollout} changed since it was read (expected transition {expected}, found {found})"
    )]
    Stale {
        rollout: String,
        idx: u32,
        expected: u64,
        found: u64,
    },
    /// The thing asked for is not there.
    #[error("{0}")]
    NotFound(String),
    /// The database URL names no backend this build has.
    #[error("unsupported database URL `{0}`: use sqlite:PATH or postgres://user@host/database")]
    Unsupported(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back.
    #[error("stored data: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// The database was busy (locked by another writer, a serialization
    /// conflict, no free connection): the same request may succeed later.
    pub fn is_busy(&self) -> bool {
        let StoreError::Db(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::PoolTimedOut => true,
            sqlx::Error::Database(d) => {
                // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their
                // extended codes in the higher bits. PostgreSQL:
                // serialization failure, deadlock, lock not available.
                let code = d.code().unwrap_or_default();
                match code.parse::<i32>() {
                    Ok(n) => matches!(n & 0xff, 5 | 6),
                    Err(_) => matches!(code.as_ref(), "40001" | "40P01" | "55P03"),
                }
            }
            _ => false,
        }
    }
}

/// Which wave: a rollout, a plan version, the wave's position.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WaveKey {
    pub rollout: String,
    pub version: u32,
    pub idx: u32,
}

/// A wave as planned, stored when a plan version is started.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWave {
    pub name: String,
    pub phase: String,
    pub members: RoaringBitmap,
    pub starts_at: jiff::Timestamp,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read everything.
    Viewer,
    /// Write device status only.
    Reporter,
    /// Read plans, waves and communications; write tickets.
    HelpDesk,
    /// Rollout actions.
    Operator,
    /// Everything, tokens included.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Reporter => "reporter",
            Role::HelpDesk => "help_desk",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [
            Role::Viewer,
            Role::Reporter,
            Role::HelpDesk,
            Role::Operator,
            Role::Admin,
        ]
        .into_iter()
        .find(|r| r.as_str() == s.trim().to_ascii_lowercase().replace('-', "_"))
    }
}

/// The hash a token is kept as.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// What `start_version` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub version: u32,
    /// The version this one replaces, when a new one was made.
    pub previous: Option<u32>,
    /// The schedule of the existing version changed in place.
    pub rescheduled: bool,
}

/// A wave as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct WaveRow {
    pub key: WaveKey,
    pub name: String,
    pub phase: String,
    pub state: WaveState,
    /// Transitions so far; pass it back to `commit` as the expected value.
    pub seq: u64,
    pub members: RoaringBitmap,
    pub starts_at: jiff::Timestamp,
}

/// A transition as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recorded {
    pub key: WaveKey,
    pub seq: u64,
    pub at: jiff::Timestamp,
    pub actor: String,
    pub event: serde_json::Value,
    pub from: WaveState,
    pub to: WaveState,
    pub why: String,
}

/// An effect waiting to be carried out (or done).
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub key: WaveKey,
    pub seq: u64,
    pub pos: u32,
    pub effect: Effect,
    pub attempts: u32,
}

/// One device's state for one policy at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub device: String,
    pub policy: String,
    /// `succeeded`, `error`, `conflict`, `pending`, `not_applicable`.
    pub state: String,
    pub reported_at: jiff::Timestamp,
    /// The wave the device is in, when the engine knows it.
    pub wave: Option<u32>,
}

/// What an ingestion kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Ingested {
    /// New records.
    pub inserted: u64,
    /// Records already stored (re-sent): ignored.
    pub duplicates: u64,
}

/// Latest states of a wave's devices, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub succeeded: u64,
    pub error: u64,
    pub conflict: u64,
    pub pending: u64,
    pub not_applicable: u64,
    pub other: u64,
}

impl StateCounts {
    pub fn reported(&self) -> u64 {
        self.succeeded
            + self.error
            + self.conflict
            + self.pending
            + self.not_applicable
            + self.other
    }
}

/// A help-desk ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: String,
    pub at: jiff::Timestamp,
    pub user: Option<String>,
    pub device: Option<String>,
    pub category: Option<String>,
    pub text: String,
    /// The wave the ticket is attributed to, if any.
    pub wave: Option<u32>,
}

/// A pilot user's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub id: String,
    pub at: jiff::Timestamp,
    pub user: Option<String>,
    pub device: Option<String>,
    /// 1 (bad) to 5 (good).
    pub score: u8,
    pub comment: String,
    pub wave: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub at: jiff::Timestamp,
    pub actor: String,
    pub rollout: String,
    pub action: String,
    pub detail: String,
}

/// A device's latest state for one policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LatestState {
    pub device: String,
    pub policy: String,
    pub state: String,
    pub reported_at: jiff::Timestamp,
    pub was_succeeded: bool,
}

/// What an operator does to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertMark {
    /// Seen and handled: it stays open while its signal lasts.
    Acknowledge,
    /// Closed by hand: raised again if its signal is still there.
    Resolve,
}

/// A signed-in dashboard user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub role: Role,
    pub label: String,
    /// The form key every form of this session carries (CSRF protection).
    pub csrf: String,
}

/// A notification to queue: what, for whom, where to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewMessage {
    /// What the message is for (e.g. `start:2:3:help_desk`); queued once per key and destination.
    pub key: String,
    /// `webhook` or `smtp`.
    pub channel: String,
    /// The URL or the mail address.
    pub target: String,
    pub audience: String,
    pub subject: String,
    /// Markdown.
    pub body: String,
    pub html: String,
}

/// A queued notification with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxItem {
    pub id: i64,
    #[serde(flatten)]
    pub message: NewMessage,
    pub created_at: jiff::Timestamp,
    /// `pending`, `sent` or `failed` (gave up after the last attempt).
    pub state: String,
    pub attempts: u32,
    /// When the next attempt is due (pending only).
    pub next_at: jiff::Timestamp,
    pub last_error: Option<String>,
    pub sent_at: Option<jiff::Timestamp>,
}

/// How a delivery attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// Failed; try again at this time.
    Retry(String, jiff::Timestamp),
    /// Failed for good.
    GaveUp(String),
}

/// The durable state of rollouts. Writes that belong together commit together.
#[async_trait]
pub trait Store: Send + Sync {
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
    /// Stores one round of gate evaluations at `at` (each as JSON: metric,
    /// value, threshold, sample, window, outcome, sentence), replacing any
    /// stored at that same moment (a round cut short by a crash and run again).
    async fn replace_evaluations(
        &self,
        key: &WaveKey,
        round: &[serde_json::Value],
        at: jiff::Timestamp,
    ) -> Result<()>;
    /// Evaluations of a wave, oldest first.
    async fn evaluations(&self, key: &WaveKey)
    -> Result<Vec<(jiff::Timestamp, serde_json::Value)>>;
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
    /// A small named value kept between runs.
    async fn get_meta(&self, rollout: &str, key: &str) -> Result<Option<String>>;
    async fn set_meta(&self, rollout: &str, key: &str, value: &str) -> Result<()>;
    /// The value kept under `key`, storing `value` first when there is none:
    /// servers starting together all end up with the same one.
    async fn meta_or_insert(&self, rollout: &str, key: &str, value: &str) -> Result<String>;
    /// Makes an API token for a role; returns the token, which is kept only as a hash.
    async fn create_token(&self, role: Role, label: &str, at: jiff::Timestamp) -> Result<String>;
    /// The role and label of a token that exists and is not revoked.
    async fn check_token(&self, token: &str) -> Result<Option<(Role, String)>>;
    /// Whether any token exists (the first start makes an admin one).
    async fn has_tokens(&self) -> Result<bool>;
    /// Adds an audit entry (operator actions that are not transitions, sign-ins, tokens).
    async fn audit(&self, entry: &AuditEntry) -> Result<()>;
    /// The audit log of a rollout, oldest first.
    async fn audit_log(&self, rollout: &str) -> Result<Vec<AuditEntry>>;

    /// Signs a token in: a new session (its id is returned once and kept
    /// only as a hash) lasting `hours`; None when the token is unknown.
    async fn create_session(
        &self,
        token: &str,
        hours: u32,
        at: jiff::Timestamp,
    ) -> Result<Option<(String, Session)>>;
    /// The session an id names, if it has not expired.
    async fn check_session(&self, id: &str, at: jiff::Timestamp) -> Result<Option<Session>>;
    /// Signs a session out.
    async fn end_session(&self, id: &str) -> Result<()>;

    /// Keeps a wave's counted states at a gate round (replacing one at the same moment).
    async fn record_counts(
        &self,
        key: &WaveKey,
        at: jiff::Timestamp,
        counts: &StateCounts,
    ) -> Result<()>;
    /// A wave's counted states over time, oldest first.
    async fn counts_series(&self, key: &WaveKey) -> Result<Vec<(jiff::Timestamp, StateCounts)>>;
    /// The newest tickets and feedback answers attributed to a wave (at most `limit` each).
    async fn wave_items(
        &self,
        rollout: &str,
        wave: u32,
        limit: u32,
    ) -> Result<(Vec<Ticket>, Vec<Feedback>)>;

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
    /// The latest state of every device and policy of a rollout, with
    /// whether that device and policy reported Succeeded before it (the run
    /// state's regressions).
    /// `since` keeps only states reported after it (what a watcher that
    /// read up to then has not seen).
    async fn latest_states(
        &self,
        rollout: &str,
        since: Option<jiff::Timestamp>,
    ) -> Result<Vec<LatestState>>;
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
    /// Tickets tied to the rollout's waves, opened in `[from, to)`.
    async fn count_tickets(
        &self,
        rollout: &str,
        from: jiff::Timestamp,
        to: jiff::Timestamp,
    ) -> Result<u64>;
    /// Gives a lease up (a clean stop hands over at once).
    async fn release(&self, name: &str, holder: &str) -> Result<()>;
}

/// Opens the store a URL names (`sqlite:PATH`, `postgres://…`), running migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(sqlite::SqliteStore::open(url).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::PgStore::open(url).await?));
    }
    Err(StoreError::Unsupported(redact(url)))
}

/// A database URL as it may be shown: without its password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:…{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub(crate) fn ts(s: &str) -> Result<jiff::Timestamp> {
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("time `{s}`: {e}")))
}
