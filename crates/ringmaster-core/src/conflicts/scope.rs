//! Rules between policies that are not plain conflicts on one setting id:
//! a setting set in both user and device scope, and profiles with the same
//! settings where only one carries applicability rules.

use super::Entry;
use crate::org::Org;
use crate::targeting::Resolution;
use rustc_hash::FxHashMap;
use serde::Serialize;

pub(super) const USER_SCOPE_SOURCE: &str = "memdocs intune/configuration/settings-catalog.md, \"Device scope vs. user scope settings\" › \"Scope assignment behavior\"";

pub(super) const RULE_FREE_SOURCE: &str =
    "memdocs intune/configuration/device-profile-create.md, \"Applicability rules\"";

/// The device-scope id of a user-scope catalog id (each part of the path
/// renamed), or `None` when the id is not user-scoped.
pub(super) fn device_twin(id: &str) -> Option<String> {
    const USER: &str = "user_vendor_msft_";
    if !id.starts_with(USER) {
        return None;
    }
    let parts: Vec<String> = id
        .split('/')
        .map(|p| match p.strip_prefix(USER) {
            Some(rest) => format!("device_vendor_msft_{rest}"),
            None => p.to_string(),
        })
        .collect();
    Some(parts.join("/"))
}

/// A setting configured in user scope by some policies and in device scope
/// by others, with a device-scope value that differs from a user-scope one:
/// (device-scope id, user-scope entries, differing device-scope entries).
pub(super) type ScopePair = (String, Vec<Entry>, Vec<Entry>);

pub(super) fn scope_pairs(org: &Org, index: &FxHashMap<&str, Vec<Entry>>) -> Vec<ScopePair> {
    let value = |&(p, i): &Entry| org.policies[p].settings[i].value.as_str();
    let mut out: Vec<ScopePair> = index
        .iter()
        .filter_map(|(id, user)| {
            let twin = device_twin(id)?;
            let device: Vec<Entry> = index
                .get(twin.as_str())?
                .iter()
                .filter(|d| user.iter().any(|u| value(u) != value(d)))
                .copied()
                .collect();
            (!device.is_empty()).then(|| (twin, user.clone(), device))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The value users get where both scopes meet.
pub(super) fn user_scope_effective(org: &Org, user: &[Entry]) -> String {
    let mut values: Vec<&str> = user
        .iter()
        .map(|&(p, i)| org.policies[p].settings[i].value.as_str())
        .collect();
    values.sort_unstable();
    values.dedup();
    match values.as_slice() {
        [one] => format!("{one} (user scope)"),
        _ => format!(
            "the user-scope value, itself in conflict ({})",
            values.join(" vs ")
        ),
    }
}

/// Two profiles with exactly the same settings reach the same devices and
/// only one has applicability rules: Intune applies the one without.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleFreeApplies {
    /// The profile without applicability rules, which applies.
    pub applied: String,
    /// The profile with rules, which does not where both reach.
    pub instead_of: String,
    /// Devices both reach (and the rules let through).
    pub devices: u64,
    pub source: &'static str,
}

pub(super) fn rule_free_applies(
    org: &Org,
    res: &Resolution,
    policies: &[usize],
) -> Vec<RuleFreeApplies> {
    // Policies by their settings, compared as sets of (id, value).
    let mut same: FxHashMap<Vec<(&str, &str)>, Vec<usize>> = FxHashMap::default();
    for &p in policies {
        let mut key: Vec<(&str, &str)> = org.policies[p]
            .settings
            .iter()
            .map(|l| (l.id.as_str(), l.value.as_str()))
            .collect();
        if key.is_empty() {
            continue;
        }
        key.sort_unstable();
        same.entry(key).or_default().push(p);
    }
    let mut out = Vec::new();
    for group in same.values() {
        let (ruled, free): (Vec<usize>, Vec<usize>) = group
            .iter()
            .partition(|&&p| !org.policies[p].applicability.is_empty());
        for &a in &free {
            for &b in &ruled {
                let devices = res.policies[a]
                    .applicable()
                    .intersection_len(res.policies[b].applicable());
                if devices > 0 {
                    out.push(RuleFreeApplies {
                        applied: org.policies[a].name.clone(),
                        instead_of: org.policies[b].name.clone(),
                        devices,
                        source: RULE_FREE_SOURCE,
                    });
                }
            }
        }
    }
    out.sort_by(|x, y| {
        y.devices
            .cmp(&x.devices)
            .then_with(|| x.applied.cmp(&y.applied))
            .then_with(|| x.instead_of.cmp(&y.instead_of))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twins() {
        for (id, want) in [
            (
                "user_vendor_msft_policy_config_x",
                Some("device_vendor_msft_policy_config_x"),
            ),
            (
                "user_vendor_msft_policy_config_x/user_vendor_msft_policy_config_x_y",
                Some("device_vendor_msft_policy_config_x/device_vendor_msft_policy_config_x_y"),
            ),
            ("device_vendor_msft_policy_config_x", None),
            ("windows10GeneralConfiguration.x", None),
        ] {
            assert_eq!(device_twin(id).as_deref(), want, "{id}");
        }
    }
}
