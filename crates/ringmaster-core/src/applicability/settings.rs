//! Per-setting applicability: the Windows versions and editions
//! settings-catalog settings need (`setting_versions.txt`, written by
//! `scripts/setting-applicability.py` from the catalog's definitions,
//! `MinSupportedVersion` / `MaxSupportedVersion` / `Editions`). Intune
//! reports such a setting Not applicable on a device outside them, while the
//! rest of the policy applies.

use crate::model::{DeviceAttr, Platform};
use crate::org::Org;
use crate::rules::Version;
use crate::settings::SettingLeaf;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use std::sync::OnceLock;

const TABLE: &str = include_str!("../setting_versions.txt");

/// A set of Windows edition families, as the catalog lists them (one bit
/// per member of Graph's `deviceManagementConfigurationWindowsSkus` the
/// catalog names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Editions(u16);

/// The families: table letter, bit, name for people.
const FAMILIES: [(char, &str); 10] = [
    ('H', "Home"),
    ('P', "Pro"),
    ('E', "Enterprise"),
    ('D', "Education"),
    ('I', "IoT Enterprise"),
    ('M', "Enterprise multi-session"),
    ('S', "Surface Hub"),
    ('B', "Holographic for Business"),
    ('L', "HoloLens"),
    ('K', "HoloLens Enterprise"),
];

impl Editions {
    fn bit(letter: char) -> Option<u16> {
        FAMILIES
            .iter()
            .position(|(l, _)| *l == letter)
            .map(|i| 1 << i)
    }

    /// `DEI` → Education, Enterprise, IoT Enterprise; `None` on a letter
    /// the table does not define.
    fn parse(letters: &str) -> Option<Editions> {
        letters
            .chars()
            .try_fold(0u16, |set, l| Some(set | Editions::bit(l)?))
            .map(Editions)
    }

    /// The family a device's SKU (Intune `skuFamily`, a filter's
    /// `operatingSystemSKU`, `Windows 10 Enterprise`…) certainly belongs to.
    /// N, LTSC and single-language variants belong to their family; SKUs
    /// whose family the catalog does not settle (Pro for Workstations, Pro
    /// Education, Cloud PC, Server) are not judged.
    pub fn of_sku(sku: &str) -> Option<Editions> {
        let key: String = sku
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let key = ["windows11", "windows10", "windows"]
            .iter()
            .find_map(|p| key.strip_prefix(p))
            .unwrap_or(&key);
        let letter = match key {
            "home" | "homen" | "core" | "coren" | "coresinglelanguage" | "corecountryspecific" => {
                'H'
            }
            "pro" | "pron" | "professional" | "professionaln" => 'P',
            "enterprise" | "enterprisen" | "enterprises" | "enterprisesn" | "enterpriseg"
            | "enterprisegn" => 'E',
            "education" | "educationn" => 'D',
            "iotenterprise" | "iotenterprises" => 'I',
            "enterprisemultisession" | "serverrdsh" | "multisession" => 'M',
            "surfacehub" | "team" | "teamsurface" => 'S',
            "holographicforbusiness" => 'B',
            _ => return None,
        };
        Editions::bit(letter).map(Editions)
    }

    pub fn contains(self, other: Editions) -> bool {
        self.0 & other.0 == other.0
    }

    /// `Enterprise, Education or IoT Enterprise`.
    pub fn names(self) -> String {
        let names: Vec<&str> = FAMILIES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, (_, name))| *name)
            .collect();
        match names.split_last() {
            None => String::new(),
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        }
    }
}

/// The Windows versions and editions a setting runs on; a missing bound or
/// list is open.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Needs {
    pub min: Option<&'static str>,
    pub max: Option<&'static str>,
    pub editions: Option<Editions>,
}

impl Needs {
    /// `needs Windows 10.0.19041 or later`, `needs Windows Enterprise or Education`.
    pub fn reason(&self) -> String {
        self.reason_for(true, true)
    }

    /// The reason naming only the parts that exclude: the version range,
    /// the editions, or both.
    pub fn reason_for(&self, version: bool, edition: bool) -> String {
        let range = match (self.min, self.max) {
            (Some(lo), None) => Some(format!("{lo} or later")),
            (None, Some(hi)) => Some(format!("{hi} or earlier")),
            (Some(lo), Some(hi)) => Some(format!("{lo} to {hi}")),
            (None, None) => None,
        }
        .filter(|_| version);
        let editions = self.editions.filter(|_| edition).map(Editions::names);
        match (range, editions) {
            (Some(v), None) => format!("needs Windows {v}"),
            (None, Some(e)) => format!("needs Windows {e}"),
            (Some(v), Some(e)) => format!("needs Windows {v}, {e}"),
            (None, None) => "runs on any Windows".into(),
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

    /// Whether a device's SKU is outside the editions; `None` when the
    /// setting names none or the SKU's family is not certain.
    pub fn excludes_sku(&self, sku: &str) -> Option<bool> {
        let family = Editions::of_sku(sku)?;
        Some(!self.editions?.contains(family))
    }

    /// Whether a device with this OS version and SKU cannot take the
    /// setting: (by version, by edition).
    fn excludes_device(&self, os: Option<&str>, sku: Option<&str>) -> (bool, bool) {
        (
            os.and_then(|v| self.excludes(v)) == Some(true),
            sku.and_then(|s| self.excludes_sku(s)) == Some(true),
        )
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
                let (id, lo, hi, ed) = (f.next()?, f.next()?, f.next()?, f.next()?);
                let needs = Needs {
                    min: bound(lo),
                    max: bound(hi),
                    editions: bound(ed).and_then(Editions::parse),
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

/// Windows devices whose known OS version, and those whose edition, a
/// requirement excludes. Each distinct version and SKU in the org is judged
/// once, then its rows are selected.
pub fn excluded(org: &Org, needs: &Needs) -> (RoaringBitmap, RoaringBitmap) {
    let column = |attr: DeviceAttr, judge: &dyn Fn(&str) -> Option<bool>| {
        let col = &org.devices.cols[attr.index()];
        let hit: Vec<bool> = (0..col.dict.len() as u32)
            .map(|c| col.dict.value(c).and_then(judge) == Some(true))
            .collect();
        if hit.contains(&true) {
            col.select(&hit)
        } else {
            RoaringBitmap::new()
        }
    };
    let by_version = column(DeviceAttr::OsVersion, &|v| needs.excludes(v));
    let by_edition = column(DeviceAttr::Sku, &|s| needs.excludes_sku(s));
    if by_version.is_empty() && by_edition.is_empty() {
        return (by_version, by_edition);
    }
    // Other platforms' versions (Android 9, iOS 17) mean nothing here.
    let platform = &org.devices.cols[DeviceAttr::Platform.index()];
    let windows: Vec<bool> = (0..platform.dict.len() as u32)
        .map(|c| platform.dict.value(c).and_then(Platform::parse) == Some(Platform::Windows))
        .collect();
    let windows = platform.select(&windows);
    (by_version & &windows, by_edition & windows)
}

/// The settings among a policy's leaves that one device cannot take:
/// (definition id, reason), in leaf order, each once.
pub fn excluded_on(org: &Org, leaves: &[SettingLeaf], device: u32) -> Vec<(String, String)> {
    let windows = org
        .device(DeviceAttr::Platform, device)
        .and_then(Platform::parse)
        == Some(Platform::Windows);
    if !windows {
        return Vec::new();
    }
    let os = org.device(DeviceAttr::OsVersion, device);
    let sku = org.device(DeviceAttr::Sku, device);
    let mut out: Vec<(String, String)> = Vec::new();
    for leaf in leaves {
        let id = definition(&leaf.id);
        if let Some(n) = needs(id)
            && let (version, edition) = n.excludes_device(os, sku)
            && (version || edition)
            && !out.iter().any(|(seen, _)| seen == id)
        {
            out.push((id.to_string(), n.reason_for(version, edition)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_table_parses() {
        // Every data line has an id, two bounds and an edition list, at
        // least one of them set, every edition letter known.
        for (n, line) in TABLE
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.starts_with('#'))
        {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 4, "setting_versions.txt line {}: {line}", n + 1);
            assert!(f[1..].iter().any(|b| *b != "-"), "line {}: no bound", n + 1);
            assert!(
                f[3] == "-" || Editions::parse(f[3]).is_some(),
                "line {}: editions {}",
                n + 1,
                f[3]
            );
            for b in &f[1..3] {
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
            editions: Editions::parse("B"),
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
            editions: None,
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

    #[test]
    fn editions_against_a_requirement() {
        // The camera setting: Pro, Enterprise, Education, IoT Enterprise
        // (not Home, not multi-session).
        let camera = needs("device_vendor_msft_policy_config_camera_allowcamera").unwrap();
        assert_eq!(camera.editions, Editions::parse("DEIP"));
        for (sku, want) in [
            ("Enterprise", Some(false)),
            ("EnterpriseN", Some(false)),
            ("windows10Enterprise", Some(false)),
            ("Windows 11 Education N", Some(false)),
            ("Professional", Some(false)),
            ("Core", Some(true)),
            ("ServerRdsh", Some(true)),
            ("Enterprise multi-session", Some(true)),
            // Families the catalog does not settle are not judged.
            ("ProfessionalWorkstation", None),
            ("ProfessionalEducation", None),
            ("", None),
        ] {
            assert_eq!(camera.excludes_sku(sku), want, "{sku}");
        }
        assert_eq!(
            camera.reason(),
            "needs Windows Pro, Enterprise, Education or IoT Enterprise"
        );
        let both = Needs {
            min: Some("10.0.22621"),
            max: None,
            editions: Editions::parse("E"),
        };
        assert_eq!(
            both.reason(),
            "needs Windows 10.0.22621 or later, Enterprise"
        );
        let on = |os, sku| both.excludes_device(Some(os), Some(sku));
        assert_eq!(on("10.0.22631", "Professional"), (false, true));
        assert_eq!(on("10.0.19045", "Enterprise"), (true, false));
        assert_eq!(on("10.0.19045", "Core"), (true, true));
        assert_eq!(on("10.0.22631", "Enterprise"), (false, false));
        assert_eq!(both.excludes_device(None, None), (false, false));
        assert_eq!(both.reason_for(false, true), "needs Windows Enterprise");
        // A letter the table does not define is refused, not dropped.
        assert_eq!(Editions::parse("EX"), None);
    }
}
