//! The MDM seam. A connector keeps one static group per wave holding exactly
//! its members, adds or removes that group on the new policies' assignments
//! (and as an exclusion on overlapping existing policies while a pilot is
//! isolated), and reads what devices report. Every call is idempotent: the
//! engine may repeat one after a crash.
//!
//! - [`simulator`]: a fleet that checks in on Intune's cadence.

pub mod simulator;

use async_trait::async_trait;
use ringmaster_core::status::{Feedback, StatusReport, Ticket};
pub use ringmaster_store::{ApprovalRequest, ApprovalStatus};
use roaring::RoaringBitmap;
use std::collections::HashMap;

/// A wave's group as it stands in the MDM.
#[derive(Debug, Clone)]
pub struct Assigned {
    pub wave: u32,
    pub members: RoaringBitmap,
    /// When the assignment was made, and removed (if it was).
    pub since: jiff::Timestamp,
    pub until: Option<jiff::Timestamp>,
    /// The wave is a pilot step (its users answer feedback).
    pub pilot: bool,
    /// Members taken out of the group since (a held stratum): they report
    /// nothing for the wave from then on.
    pub left: Vec<(RoaringBitmap, jiff::Timestamp)>,
}

impl Assigned {
    /// Whether device `d` is still in the group at `at_ms`.
    pub fn holds(&self, d: u32, at_ms: i64) -> bool {
        !self
            .left
            .iter()
            .any(|(out, since)| at_ms >= since.as_millisecond() && out.contains(d))
    }
}

/// What devices and users reported in a period.
#[derive(Debug, Clone, Default)]
pub struct Reported {
    pub statuses: Vec<StatusReport>,
    pub tickets: Vec<Ticket>,
    pub feedback: Vec<Feedback>,
}

#[derive(Debug, thiserror::Error)]
#[error("{system}: {message}")]
pub struct ConnectorError {
    pub system: &'static str,
    pub message: String,
    /// Requests for the tenant's approval this call made: the writes they
    /// hold were not sent (the rest of the call was carried out).
    pub requested: Vec<ApprovalRequest>,
}

impl ConnectorError {
    pub fn new(system: &'static str, message: impl Into<String>) -> ConnectorError {
        ConnectorError {
            system,
            message: message.into(),
            requested: Vec::new(),
        }
    }
}

/// What a write may need when the tenant requires a second administrator's
/// approval of changes to some objects (Intune's Multi Admin Approval).
#[derive(Debug, Clone, Default)]
pub struct Approvals {
    /// Why the change is made, sent with a new request.
    pub justification: String,
    /// Object → the id of its approved request: the write is resent with
    /// it. (The engine calls no write while one of its requests is pending
    /// or refused, so an object is never asked for twice.)
    pub approved: HashMap<String, String>,
}

#[async_trait]
pub trait Connector: Send + Sync {
    /// Puts exactly `members` in the wave's group and assigns the group.
    async fn assign(
        &self,
        wave: u32,
        members: &RoaringBitmap,
        approvals: &Approvals,
    ) -> Result<(), ConnectorError>;
    /// Removes the wave's group from the new policies' assignments.
    async fn unassign(&self, wave: u32, approvals: &Approvals) -> Result<(), ConnectorError>;
    /// Adds the wave's group as an exclusion to the overlapping existing policies.
    async fn isolate(&self, wave: u32, approvals: &Approvals) -> Result<(), ConnectorError>;
    /// Removes those exclusions.
    async fn end_isolation(&self, wave: u32, approvals: &Approvals) -> Result<(), ConnectorError>;
    /// Where a request for the tenant's approval stands now.
    async fn approval(&self, request: &ApprovalRequest) -> Result<ApprovalRequest, ConnectorError> {
        Err(ConnectorError::new(
            "connector",
            format!(
                "approval request {} cannot be read: this system has no tenant approvals",
                request.id
            ),
        ))
    }
    /// What was reported in `(from, to]`. `assigned` is the engine's record
    /// of the actual state, for connectors that cannot list it themselves.
    async fn poll(
        &self,
        assigned: &[Assigned],
        from: jiff::Timestamp,
        to: jiff::Timestamp,
    ) -> Result<Reported, ConnectorError>;
}
