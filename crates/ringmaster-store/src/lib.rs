//! Durable state of rollouts behind [`Store`], with a backend per URL
//! scheme. Every wave transition commits with its effects and its audit
//! entry in one transaction, guarded by the wave's transition count, so two
//! drivers can never both move a wave and a crash never loses or repeats a step.
//!
//! - [`traits`]: what a store does, one trait per concern ([`Waves`],
//!   [`Reports`], [`Credentials`], [`Notifications`], [`Watching`],
//!   [`Coordination`]); [`Store`] is all of them.
//! - [`sqlite`]: the embedded default (WAL, embedded migrations).
//! - [`postgres`]: several servers on one database.
//! - `sql`: the SQL both backends run the same way, compiled once per backend.
//! - `values`: how values are kept (times as Unix milliseconds, JSON, bitmaps).

pub mod postgres;
pub mod sqlite;
pub mod traits;
mod values;

pub use ringmaster_core::gates::{GateResult, GateRound};
pub use ringmaster_core::status::{DeviceState, Feedback, StatusReport, Ticket};
pub use traits::{
    Coordination, Credentials, Notifications, Reports, Store, TenantApprovals, Watching, Waves,
};

use ringmaster_core::wave::{Effect, WaveState};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The wave moved since it was read (another driver, or a retry): nothing was written.
    #[error(
        "wave {} of {rollout} changed since it was read (expected transition {expected}, found {found})",
        idx + 1
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

/// How long a token lasts unless made with another expiry.
pub const TOKEN_DAYS: i64 = 90;

/// What a presented token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// Known, not revoked, not expired.
    Valid { role: Role, label: String },
    /// No token has this secret.
    Unknown,
    /// Revoked at this time.
    Revoked(jiff::Timestamp),
    /// Expired at this time.
    Expired(jiff::Timestamp),
}

/// A token as listed: everything but the secret, which is not kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub role: Role,
    pub label: String,
    pub created_at: jiff::Timestamp,
    /// None: never.
    pub expires_at: Option<jiff::Timestamp>,
    pub last_used_at: Option<jiff::Timestamp>,
    pub revoked_at: Option<jiff::Timestamp>,
}

/// The hash a token is kept as.
/// Crash tests: with `RINGMASTER_ABORT_AFTER_COMMITS=N` set, the process
/// aborts (no clean-up, like SIGKILL) right after its N-th committed
/// transaction, so a test kills at chosen points whatever the machine's
/// speed. Unset, this is one relaxed load per commit.
pub(crate) fn after_commit() {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static LEFT: OnceLock<Option<AtomicU64>> = OnceLock::new();
    let left = LEFT.get_or_init(|| {
        std::env::var("RINGMASTER_ABORT_AFTER_COMMITS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .map(AtomicU64::new)
    });
    if let Some(left) = left
        && left.fetch_sub(1, Ordering::Relaxed) == 1
    {
        std::process::abort();
    }
}

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

/// Where a tenant's approval of a write stands (Graph's
/// `operationApprovalRequestStatus`, Intune's Multi Admin Approval).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ApprovalStatus {
    NeedsApproval,
    Approved,
    Rejected,
    Cancelled,
    /// Approved and the write resent with it: used up.
    Completed,
    Expired,
}

impl ApprovalStatus {
    /// Graph's word for it, which is also how it is stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::NeedsApproval => "needsApproval",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Cancelled => "cancelled",
            ApprovalStatus::Completed => "completed",
            ApprovalStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<ApprovalStatus> {
        [
            ApprovalStatus::NeedsApproval,
            ApprovalStatus::Approved,
            ApprovalStatus::Rejected,
            ApprovalStatus::Cancelled,
            ApprovalStatus::Completed,
            ApprovalStatus::Expired,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    /// No write may go out on it, and no new request is made for its
    /// object until an operator asks for one.
    pub fn refused(self) -> bool {
        matches!(
            self,
            ApprovalStatus::Rejected | ApprovalStatus::Cancelled | ApprovalStatus::Expired
        )
    }
}

/// One request for a tenant's approval of a write, as the MDM answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The object the write changes (a policy id).
    pub object: String,
    /// The MDM's id of the request.
    pub id: String,
    pub requested: jiff::Timestamp,
    pub expires: jiff::Timestamp,
    pub status: ApprovalStatus,
    /// The approver's note (why it was rejected).
    pub reason: Option<String>,
}

/// An approval request kept for the action whose write it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantApproval {
    pub key: WaveKey,
    /// The action (its transition and position) the write belongs to.
    pub seq: u64,
    pub pos: u32,
    pub request: ApprovalRequest,
    /// Retired by an operator asking for a new request; kept for the record.
    pub retired: bool,
}

/// A stratum a wave's gates held: its devices leave the wave and the
/// later waves while the hold stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldStratum {
    pub key: WaveKey,
    /// As the gates name it: `model Latitude 7440`.
    pub stratum: String,
    pub devices: RoaringBitmap,
    /// The gate's one sentence: estimate, interval, stratum, rounds.
    pub evidence: String,
    /// True: the devices are taken out of the wave's group (`on_fail =
    /// "rollback"`); false: kept back, the policy stays on them.
    pub rollback: bool,
    pub held_at: jiff::Timestamp,
    /// When the connector took the devices out of the group.
    pub removed_at: Option<jiff::Timestamp>,
    pub released_at: Option<jiff::Timestamp>,
    pub released_by: Option<String>,
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
}

impl StateCounts {
    pub fn reported(&self) -> u64 {
        self.succeeded + self.error + self.conflict + self.pending + self.not_applicable
    }

    /// Counts `n` devices in `state`.
    pub fn add(&mut self, state: DeviceState, n: u64) {
        *match state {
            DeviceState::Succeeded => &mut self.succeeded,
            DeviceState::Error => &mut self.error,
            DeviceState::Conflict => &mut self.conflict,
            DeviceState::Pending => &mut self.pending,
            DeviceState::NotApplicable => &mut self.not_applicable,
        } += n;
    }
}

/// One person's approval of a wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    /// The name as given.
    pub approver: String,
    pub at: jiff::Timestamp,
}

/// An entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub at: jiff::Timestamp,
    pub actor: String,
    pub rollout: String,
    pub action: String,
    pub detail: String,
}

/// A `status_latest` row as the backends read it: device, policy, state,
/// reported at (Unix ms), whether it was Succeeded before (0 or 1), and
/// its change number.
pub(crate) type LatestRow = (String, String, String, i64, i64, i64);

/// A device's latest state for one policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LatestState {
    pub device: String,
    pub policy: String,
    pub state: DeviceState,
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

/// Meta key (value `true`) of a rollout driven on a simulated clock: its
/// transitions, alerts and operator actions carry simulated times, and every
/// screen that shows them says so. The service's own entries (tokens,
/// sign-ins, kept under rollout "") stay on the real clock.
pub const SIMULATED_CLOCK: &str = "clock.simulated";

/// Whether `rollout` runs on a simulated clock ([`SIMULATED_CLOCK`]).
pub async fn simulated(store: &dyn Store, rollout: &str) -> Result<bool> {
    Ok(store
        .get_meta(rollout, SIMULATED_CLOCK)
        .await?
        .is_some_and(|v| v == "true"))
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
