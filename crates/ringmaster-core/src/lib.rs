//! Pure core of ringmaster: no I/O, no clocks, no async.
//!
//! - [`model`]: records of the organization (attributes, groups, filters, policies).
//! - [`applicability`]: whether a reached device can take a policy, and
//!   each setting (platform, OS edition and version).
//! - [`column`]: dictionary-encoded columns, the storage behind [`org`].
//! - [`org`]: users and devices as dense tables, built by [`org::OrgBuilder`].
//! - [`rules`]: the Entra, Intune filter and Conditional Access rule languages.
//! - [`targeting`]: group membership and effective policy targets as bitmaps.
//! - [`explain`]: why a policy does or does not reach a device.
//! - [`settings`]: setting leaves with stable identities.
//! - [`pilot`]: a representative pilot and how representative it is.
//! - [`progress`]: how far long work has come, for a display elsewhere.
//! - [`conflicts`]: setting conflicts where policy targets meet.
//! - [`goals`]: SMART goals that gates judge waves by.
//! - [`gates`]: a wave's goals judged on what its devices reported.
//! - [`sequential`]: anytime-valid confidence sequences for rates and counts.
//! - [`strata`]: a wave's goals judged per stratum, α split across them.
//! - [`gatesim`]: simulated rollouts with a known truth to measure gates.
//! - [`status`]: device states (one parser for every report vocabulary),
//!   status reports, tickets and feedback.
//! - [`wave`]: the wave state machine and the MDM changes each step asks for.
//! - [`runstate`]: the run state's service levels and drift, judged from columns.
//! - [`scopetags`]: policies and devices inside and outside one Intune scope tag.
//! - [`alerts`]: alerts raised and resolved from the run state's signals.
//! - [`approvals`]: whether a wave's approvals (how many, from whom) open it.

pub mod alerts;
pub mod applicability;
pub mod approvals;
pub mod column;
pub mod conflicts;
pub mod explain;
pub mod gates;
pub mod gatesim;
pub mod goals;
pub mod lazy;
pub mod model;
pub mod org;
pub mod pilot;
pub mod progress;
pub mod rules;
pub mod runstate;
pub mod scopetags;
pub mod sequential;
pub mod settings;
pub mod status;
pub mod strata;
pub mod targeting;
pub mod wave;

/// FNV-1a over some bytes: stable across builds and versions, unlike std's
/// hasher, for what must come out the same every time (pilot order,
/// simulated outcomes, plan digests). Not a security boundary.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
