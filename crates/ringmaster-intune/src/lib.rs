//! Microsoft Intune over Microsoft Graph: a tenant snapshot in the import
//! format, the engine's connector (wave groups, assignments, device policy
//! status), and the Graph client under both.
//!
//! - `auth`: the app's secret or certificate.
//! - `client`: tokens, budget, throttling, retries, paging, batching.
//! - `permissions`: what each call and feature needs; the token's roles.
//! - `settings`: the stored connection (no secret).
//! - `snapshot`: `ringmaster import intune`.
//! - `connector`: `ringmaster run|serve --intune`.

pub mod auth;
pub mod client;
pub mod connector;
pub mod permissions;
pub mod settings;
pub mod snapshot;
