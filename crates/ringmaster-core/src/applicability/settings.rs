//! Per-setting applicability: the Windows versions settings-catalog settings
//! need (`setting_versions.txt`, written by `scripts/setting-applicability.py`
//! from the catalog's definitions, `MinSupportedVersion` /
//! `MaxSupportedVersion`). Intune reports such a setting Not applicable on a
//! device whose OS is outside the range, while the rest of the policy applies.

use crate::model::{DeviceAttr, Platform};
use crate::org::Org;
use crate::rules::Version;
use crate::settings::SettingLeaf;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use std::sync::OnceLock;

const TABLE: &str = include_str!("../setting_versions.txt");

/// The Windows versions a setting runs on; a missing bound is open.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Needs {
    pub min: Option<&'static str>,
    pub max: Option<&'static str>,
}

impl Needs {
    /// `needs Windows 10.0.19041 or later`.
    pub fn reason(&self) -> String {
        match (self.min, self.max) {
            (Some(lo), None) => format!("needs Windows {lo} or later"),
            (None, Some(hi)) => format!("needs Windows {hi} or earlier"),
            (Some(lo), Some(hi)) => format!("needs Windows {lo} to {hi}"),
            (None, None) => "runs on any Windows version".into(),
        }
    }

    /// Whether an OS version is outside the range; `None` when it is not a version.
    pub fn excludes(&self, os: &str) -> Option<bool> {
        let v = Version::parse(os)?;
        let bound = |b: Option<&str>| b.and_then(Version::parse);
        let low = bound(self.min).is_some_and(|m| v.compare(&m).is_lt());
        let high = bound(self.max).is_some_and(|m| v.compare(&m).is_gt());
        Some(low || high)
    }
}

fn table() -> &'static FxHashMap<&'static str, Needs> {
    static MAP: OnceLock<FxHashMap<&'static str, Needs>> = OnceLock::new();
    MAP.get_or_init(|| {
        let bound = |s: &'static str| (s != "-").then_some(s);
        TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let mut f = l.split(' ');
                let (id, lo, hi) = (f.next()?, f.next()?, f.next()?);
                let needs = Needs {
                    min: bound(lo),
                    max: bound(hi),
                };
                Some((id, needs))
            })
            .collect()
    })
}

/// The top-level definition id of a leaf (`parent[key]/child` → `parent`).
pub fn definition(leaf_id: &str) -> &str {
    let head = leaf_id.split('/').next().unwrap_or(leaf_id);
    head.split('[').next().unwrap_or(head)
}

/// What a setting (by leaf id) needs, when the catalog restricts it.
pub fn needs(leaf_id: &str) -> Option<&'static Needs> {
    table().get(definition(leaf_id))
}

/// Windows devices whose known OS version a requirement excludes. Each
/// distinct version in the org is compared once, then its rows are selected.
pub fn excluded(org: &Org, needs: &Needs) -> RoaringBitmap {
    let os = &org.devices.cols[DeviceAttr::OsVersion.index()];
    let hit: Vec<bool> = (0..os.dict.len() as u32)
        .map(|c| os.dict.value(c).and_then(|v| needs.excludes(v)) == Some(true))
        .collect();
    if !hit.contains(&true) {
        return RoaringBitmap::new();
    }
    // Other platforms' versions (Android 9, iOS 17) mean nothing here.
    let platform = &org.devices.cols[DeviceAttr::Platform.index()];
    let windows: Vec<bool> = (0..platform.dict.len() as u32)
        .map(|c| platform.dict.value(c).and_then(Platform::parse) == Some(Platform::Windows))
        .collect();
    os.select(&hit) & platform.select(&windows)
}

/// The settings among a policy's leaves that one device cannot take:
/// (definition id, reason), in leaf order, each once.
pub fn excluded_on(org: &Org, leaves: &[SettingLeaf], device: u32) -> Vec<(String, String)> {
    let windows = org
        .device(DeviceAttr::Platform, device)
        .and_then(Platform::parse)
        == Some(Platform::Windows);
    let Some(os) = org
        .device(DeviceAttr::OsVersion, device)
        .filter(|_| windows)
    else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for leaf in leaves {
        let id = definition(&leaf.id);
        if let Some(n) = needs(id)
            && n.excludes(os) == Some(true)
            && !out.iter().any(|(seen, _)| seen == id)
        {
            out.push((id.to_string(), n.reason()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_table_parses() {
        // Every data line has an id and two bounds, at least one of them set.
        for (n, line) in TABLE
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.starts_with('#'))
        {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 3, "setting_versions.txt line {}: {line}", n + 1);
            assert!(f[1] != "-" || f[2] != "-", "line {}: no bound", n + 1);
            for b in &f[1..] {
                assert!(
                    *b == "-" || Version::parse(b).is_some(),
                    "line {}: {b}",
                    n + 1
                );
            }
        }
        assert!(table().len() > 5000);
        let want = Needs {
            min: Some("10.0.19041"),
            max: None,
        };
        assert_eq!(
            needs(
                "device_vendor_msft_accountmanagement_userprofilemanagement_storagecapacitystopdeletion"
            ),
            Some(&want)
        );
        // The 88.8.88888 placeholder is not written.
        assert_eq!(
            needs(
                "device_vendor_msft_policy_config_terminalserver-avdv1~policy~avd_gp_node_avd_server_watermarking"
            ),
            None
        );
    }

    #[test]
    fn versions_against_a_requirement() {
        let n = Needs {
            min: Some("10.0.22621"),
            max: None,
        };
        let check = |os: &str, want: Option<bool>| assert_eq!(n.excludes(os), want, "{os}");
        check("10.0.19045.4291", Some(true));
        check("10.0.22621", Some(false));
        check("10.0.22621.3447", Some(false));
        check("10.0.26100.1", Some(false));
        check("unknown", None);
        assert_eq!(n.reason(), "needs Windows 10.0.22621 or later");
        assert_eq!(definition("a_b[k]/c/d"), "a_b");
    }
}
