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
use roaring::RoaringBitmap;

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
}

#[async_trait]
pub trait Connector: Send + Sync {
    /// Puts exactly `members` in the wave's group and assigns the group.
    async fn assign(&self, wave: u32, members: &RoaringBitmap) -> Result<(), ConnectorError>;
    /// Removes the wave's group from the new policies' assignments.
    async fn unassign(&self, wave: u32) -> Result<(), ConnectorError>;
    /// Adds the wave's group as an exclusion to the overlapping existing policies.
    async fn isolate(&self, wave: u32) -> Result<(), ConnectorError>;
    /// Removes those exclusions.
    async fn end_isolation(&self, wave: u32) -> Result<(), ConnectorError>;
    /// What was reported in `(from, to]`. `assigned` is the engine's record
    /// of the actual state, for connectors that cannot list it themselves.
    async fn poll(
        &self,
        assigned: &[Assigned],
        from: jiff::Timestamp,
        to: jiff::Timestamp,
    ) -> Result<Reported, ConnectorError>;
}
