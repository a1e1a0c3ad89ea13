//! Whether a reached device can take a policy: its platform, and the OS
//! edition and OS version rules legacy profiles carry. A device whose edition
//! or version is unknown is not judged by those rules.

use crate::model::{Applicability, DeviceAttr, Platform, Policy};
use crate::org::Org;
use crate::rules::Version;
use roaring::RoaringBitmap;

pub mod settings;

/// `windows10Enterprise` and `Enterprise` both become `enterprise`;
/// Graph lists N editions as their own values (`windows10EnterpriseN`,
/// `windows10ProfessionalWorkstationN`), so an N edition is never folded
/// into its base edition.
fn edition_key(s: &str) -> String {
    let l: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    l.strip_prefix("windows10")
        .or_else(|| l.strip_prefix("windows"))
        .unwrap_or(&l)
        .to_string()
}

/// Whether one rule lets a device with this edition / OS version through;
/// `None` when the device lacks the property the rule needs.
fn passes(rule: &Applicability, sku: Option<&str>, os: Option<&str>) -> Option<bool> {
    match rule {
        Applicability::OsEdition { include, editions } => {
            let sku = edition_key(sku?);
            let listed = editions.iter().any(|e| edition_key(e) == sku);
            Some(listed == *include)
        }
        Applicability::OsVersion { include, min, max } => {
            let v = Version::parse(os?)?;
            let above = min
                .as_deref()
                .and_then(Version::parse)
                .is_none_or(|m| v.compare(&m).is_ge());
            let below = max
                .as_deref()
                .and_then(Version::parse)
                .is_none_or(|m| v.compare(&m).is_le());
            Some((above && below) == *include)
        }
    }
}

fn rule_name(rule: &Applicability) -> &'static str {
    match rule {
        Applicability::OsEdition { .. } => "OS edition",
        Applicability::OsVersion { .. } => "OS version",
    }
}

/// The device platforms (codes of the platform column) a policy for
/// `platforms` cannot reach, and their devices. Policies share these by
/// platform list, so resolving many policies works them out once per list.
pub struct Foreign {
    codes: Vec<u32>,
    rows: RoaringBitmap,
}

pub fn foreign(org: &Org, platforms: &[Platform]) -> Foreign {
    foreign_among(org, platforms, None)
}

/// [`foreign`], its devices only among `among` when given: explaining one
/// device asks about a few rows, not the fleet's platform lists.
pub fn foreign_among(org: &Org, platforms: &[Platform], among: Option<&RoaringBitmap>) -> Foreign {
    let col = &org.devices.cols[DeviceAttr::Platform.index()];
    let codes: Vec<u32> = if platforms.is_empty() {
        Vec::new()
    } else {
        (1..col.dict.len() as u32)
            .filter(|&code| {
                col.dict
                    .value(code)
                    .and_then(Platform::parse)
                    .is_some_and(|p| !platforms.contains(&p))
            })
            .collect()
    };
    let rows = match among {
        Some(rows) => rows
            .iter()
            .filter(|&d| codes.contains(&col.code(d)))
            .collect(),
        None => codes
            .iter()
            .map(|&c| col.rows_of(c))
            .fold(RoaringBitmap::new(), |acc, r| acc | r.as_ref()),
    };
    Foreign { codes, rows }
}

/// Up to this many devices are judged one by one rather than through a
/// column's posting lists (which a cut resolution would build for the
/// whole fleet, and which are cheaper for more rows).
const FEW_ROWS: u64 = 512;

/// Of `devices` (reached by `policy`), those that cannot take it, with
/// counts per reason (`platform macOS`, `OS edition`, `OS version`).
pub fn not_applicable(
    org: &Org,
    policy: &Policy,
    devices: &RoaringBitmap,
) -> (RoaringBitmap, Vec<(String, u64)>) {
    not_applicable_given(org, policy, devices, &foreign(org, &policy.platforms), true)
}

/// [`not_applicable`] with the policy's [`foreign`] platforms worked out;
/// without `breakdown` the reasons are left empty (the devices are the same).
pub fn not_applicable_given(
    org: &Org,
    policy: &Policy,
    devices: &RoaringBitmap,
    foreign: &Foreign,
    breakdown: bool,
) -> (RoaringBitmap, Vec<(String, u64)>) {
    let mut out = devices & &foreign.rows;
    let mut reasons = Vec::new();
    if breakdown && !out.is_empty() {
        let col = &org.devices.cols[DeviceAttr::Platform.index()];
        // Against the reached foreign devices, not all reached ones: the
        // same count (each platform's rows are foreign), on a smaller set;
        // a few devices (one explained) are counted one by one.
        let few = out.len() <= FEW_ROWS;
        for &code in &foreign.codes {
            let n = if few {
                out.iter().filter(|&d| col.code(d) == code).count() as u64
            } else {
                col.rows_of(code).intersection_len(&out)
            };
            if n > 0 {
                let name = col.dict.value(code).unwrap_or_default();
                reasons.push((name.to_string(), n));
            }
        }
    }
    for rule in &policy.applicability {
        let attr = match rule {
            Applicability::OsEdition { .. } => DeviceAttr::Sku,
            Applicability::OsVersion { .. } => DeviceAttr::OsVersion,
        };
        let col = &org.devices.cols[attr.index()];
        let fails: Vec<bool> = (col.dict.values())
            .map(|v| {
                let (sku, os) = if attr == DeviceAttr::Sku {
                    (v, None)
                } else {
                    (None, v)
                };
                passes(rule, sku, os) == Some(false)
            })
            .collect();
        // A few devices (one explained) are tested one by one.
        let failing = if devices.len() <= FEW_ROWS {
            devices
                .iter()
                .filter(|&d| fails[col.code(d) as usize])
                .collect()
        } else {
            col.select(&fails) & devices
        };
        let rows = &failing - &out;
        if !rows.is_empty() {
            if breakdown {
                reasons.push((rule_name(rule).to_string(), rows.len()));
            }
            out |= rows;
        }
    }
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    (out, reasons)
}

/// Why one device cannot take a policy, or `None` when it can.
pub fn reason(org: &Org, policy: &Policy, device: u32) -> Option<String> {
    let platform = org.device(DeviceAttr::Platform, device);
    if !policy.platforms.is_empty()
        && let Some(p) = platform.and_then(Platform::parse)
        && !policy.platforms.contains(&p)
    {
        let list: Vec<_> = policy.platforms.iter().map(|p| p.as_str()).collect();
        return Some(format!(
            "the policy is for {} and the device runs {}",
            list.join("/"),
            p
        ));
    }
    let sku = org.device(DeviceAttr::Sku, device);
    let os = org.device(DeviceAttr::OsVersion, device);
    for rule in &policy.applicability {
        if passes(rule, sku, os) == Some(false) {
            return Some(match rule {
                Applicability::OsEdition { include, editions } => format!(
                    "its OS edition rule {} {} and the device's edition is {}",
                    if *include { "allows only" } else { "excludes" },
                    editions.join(", "),
                    sku.unwrap_or("?")
                ),
                Applicability::OsVersion { include, min, max } => format!(
                    "its OS version rule {} {}–{} and the device runs {}",
                    if *include { "allows only" } else { "excludes" },
                    min.as_deref().unwrap_or("any"),
                    max.as_deref().unwrap_or("any"),
                    os.unwrap_or("?")
                ),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editions_and_versions() {
        let ent = Applicability::OsEdition {
            include: true,
            editions: vec![
                "windows10Enterprise".into(),
                "windows10EnterpriseN".into(),
                "windows10Education".into(),
            ],
        };
        assert_eq!(passes(&ent, Some("Enterprise"), None), Some(true));
        assert_eq!(passes(&ent, Some("Education"), None), Some(true));
        assert_eq!(passes(&ent, Some("Professional"), None), Some(false));
        assert_eq!(passes(&ent, None, None), None);
        // N editions are their own values, as Graph's windows10EditionType lists them.
        let pro = Applicability::OsEdition {
            include: true,
            editions: vec![
                "windows10Enterprise".into(),
                "windows10ProfessionalWorkstationN".into(),
            ],
        };
        for (sku, pass) in [
            ("Enterprise", true),
            ("EnterpriseN", false),
            ("ProfessionalWorkstationN", true),
            ("ProfessionalWorkstation", false),
            ("EducationN", false),
        ] {
            assert_eq!(passes(&pro, Some(sku), None), Some(pass), "{sku}");
        }
        let not_home = Applicability::OsEdition {
            include: false,
            editions: vec!["windows10Home".into()],
        };
        assert_eq!(passes(&not_home, Some("Home"), None), Some(false));
        assert_eq!(passes(&not_home, Some("Professional"), None), Some(true));
        let w11 = Applicability::OsVersion {
            include: true,
            min: Some("10.0.22000".into()),
            max: None,
        };
        assert_eq!(passes(&w11, None, Some("10.0.22631.4317")), Some(true));
        assert_eq!(passes(&w11, None, Some("10.0.19045.5011")), Some(false));
        assert_eq!(passes(&w11, None, Some("garbage")), None);
        let not_old = Applicability::OsVersion {
            include: false,
            min: None,
            max: Some("10.0.19045.9999".into()),
        };
        assert_eq!(passes(&not_old, None, Some("10.0.19045.5011")), Some(false));
    }
}
