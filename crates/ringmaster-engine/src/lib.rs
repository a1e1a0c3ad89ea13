//! Drives rollouts: each tick carries out recorded effects through an MDM
//! connector, moves waves through the core state machine (start, applied,
//! gates), and ingests what devices reported. Time is injected, so a
//! month-long rollout runs in a test in milliseconds.
//!
//! - [`connector`]: the MDM seam (the simulator here; Intune in its own crate).
//! - [`engine`]: the tick that drives one rollout from the store.
//! - [`figures`]: a wave's figures, the one source every screen shows.
//! - [`ingest`]: status reports, tickets and feedback read from files.
//! - [`runstate`]: the run state's columns assembled from the store.
//! - [`watch`]: the incremental run-state check the server runs.

pub mod connector;
pub mod engine;
pub mod figures;
pub mod ingest;
pub mod runstate;
pub mod watch;
