//! Drives rollouts: each tick carries out recorded effects through an MDM
//! connector, moves waves through the core state machine (start, applied,
//! gates), and ingests what devices reported. Time is injected, so a
//! month-long rollout runs in a test in milliseconds.
//!
//! - [`connector`]: the MDM seam, one module per system (the simulator now).
//! - [`engine`]: the tick that drives one rollout from the store.
//! - [`ingest`]: status reports, tickets and feedback read from files.

pub mod connector;
pub mod engine;
pub mod ingest;
pub mod runstate;
pub mod watch;
