//! Pure core of ringmaster: no I/O, no clocks, no async.
//!
//! - [`model`]: records of the organization (attributes, groups, filters, policies).
//! - [`column`]: dictionary-encoded columns, the storage behind [`org`].
//! - [`org`]: users and devices as dense tables, built by [`org::OrgBuilder`].
//! - [`rules`]: the Entra, Intune filter and Conditional Access rule languages.
//! - [`targeting`]: group membership and effective policy targets as bitmaps.
//! - [`explain`]: why a policy does or does not reach a device.
//! - [`settings`]: setting leaves with stable identities.
//! - [`pilot`]: a representative pilot and how representative it is.
//! - [`conflicts`]: setting conflicts where policy targets meet.
//! - [`goals`]: SMART goals that gates judge waves by.
//! - [`gates`]: a wave's goals judged on what its devices reported.
//! - [`wave`]: the wave state machine and the MDM changes each step asks for.

pub mod alerts;
pub mod applicability;
pub mod column;
pub mod conflicts;
pub mod explain;
pub mod gates;
pub mod goals;
pub mod model;
pub mod org;
pub mod pilot;
pub mod rules;
pub mod runstate;
pub mod settings;
pub mod targeting;
pub mod wave;
