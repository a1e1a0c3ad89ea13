//! Writes a realistic synthetic organization in Microsoft Graph export
//! format: users, Intune managed devices and Entra devices as NDJSON,
//! groups (static, nested and dynamic), group members, assignment filters
//! and policies built from real settings-catalog setting ids. The same
//! seed always gives the same files.
//!
//! `generate` runs the steps in order, each in its own module:
//!
//! - `groups`: dynamic and static groups, and the nesting.
//! - `people`: users, with their people-group memberships.
//! - `devices`: managed and Entra devices, with their static memberships.
//! - `policies`: assignment filters, configuration and compliance policies.
//! - `random`: the random-membership layout (`Layout::Random`) instead of
//!   all of the above.
//! - `reference`: places, departments, models, OS builds, setting ids.

mod devices;
mod groups;
mod people;
mod policies;
mod random;
mod reference;

use groups::Members;
use policies::setting_json;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringmaster_core::progress::Progress;
use serde::Serialize;
use serde_json::{Value, json};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The most devices the generator writes.
pub const MAX_DEVICES: u32 = 2_000_000;

#[derive(Debug, Clone)]
pub struct Options {
    pub devices: u32,
    pub users: Option<u32>,
    pub groups: Option<u32>,
    pub filters: Option<u32>,
    pub policies: Option<u32>,
    /// When set, most configuration policies are settings-heavy (Internet
    /// Explorer zone settings) with this many settings each.
    pub settings_per_policy: Option<u32>,
    pub seed: u64,
    pub layout: Layout,
}

/// How the organization is shaped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// Sites, departments, rings and people, policies scoped the way
    /// administrators scope them.
    #[default]
    Realistic,
    /// Each device in 10 groups drawn at random, each policy 3 include and
    /// 1 exclude groups and 50 of 20,000 settings (defaults: 2,000 groups
    /// and 2,000 policies): the DuckDB anchor of issue 23.
    Random,
}

impl Options {
    pub fn new(devices: u32, seed: u64) -> Self {
        Options {
            devices,
            users: None,
            groups: None,
            filters: None,
            policies: None,
            settings_per_policy: None,
            seed,
            layout: Layout::Realistic,
        }
    }

    /// Users default to ¾ of the devices, at most max(100,000, devices / 10).
    pub fn user_count(&self) -> u32 {
        self.users.unwrap_or_else(|| {
            (self.devices as u64 * 3 / 4)
                .min((self.devices / 10).max(100_000) as u64)
                .max(1) as u32
        })
    }
    pub fn group_count(&self) -> u32 {
        self.groups.unwrap_or((self.devices / 500).clamp(40, 2000))
    }
    pub fn filter_count(&self) -> u32 {
        self.filters.unwrap_or((self.devices / 5000).clamp(12, 200))
    }
    pub fn policy_count(&self) -> u32 {
        self.policies
            .unwrap_or((self.devices / 2000).clamp(20, 500))
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub users: u32,
    pub devices: u32,
    pub groups: u32,
    pub dynamic_groups: u32,
    pub nested_groups: u32,
    pub filters: u32,
    pub policies: u32,
    pub assignments: u32,
    pub group_members: u64,
    pub setting_leaves: u64,
    pub files: Vec<PathBuf>,
}

/// Base date the data is relative to (check-ins, hire dates).
pub const BASE_DATE: &str = "2026-11-01T00:00:00Z";

/// Index of an item drawn with probability proportional to its weight.
fn weighted_index<T>(rng: &mut ChaCha8Rng, items: &[T], w: impl Fn(&T) -> u32) -> usize {
    let total: u32 = items.iter().map(&w).sum();
    let mut x = rng.random_range(0..total);
    for (i, it) in items.iter().enumerate() {
        let wi = w(it);
        if x < wi {
            return i;
        }
        x -= wi;
    }
    items.len() - 1
}

fn weighted<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T], w: impl Fn(&T) -> u32) -> &'a T {
    &items[weighted_index(rng, items, w)]
}

fn guid(rng: &mut ChaCha8Rng) -> String {
    let a: u32 = rng.random();
    let b: u16 = rng.random();
    let c: u16 = rng.random::<u16>() & 0x0fff;
    let d: u16 = (rng.random::<u16>() & 0x3fff) | 0x8000;
    let e: u64 = rng.random::<u64>() & 0xffff_ffff_ffff;
    format!("{a:08x}-{b:04x}-4{c:03x}-{d:04x}-{e:012x}")
}

const FIRST: &[&str] = &[
    "Ada", "Ben", "Chloe", "Dev", "Emma", "Femi", "Grace", "Hiro", "Ines", "Jonas", "Kai", "Lena",
    "Mei", "Noah", "Olu", "Priya", "Quinn", "Ravi", "Sara", "Tom", "Uma", "Victor", "Wen", "Yara",
    "Zoe",
];
const LAST: &[&str] = &[
    "Adeyemi", "Becker", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jansen",
    "Khan", "Lopez", "Martin", "Nakamura", "Okafor", "Patel", "Rossi", "Silva", "Tanaka", "Weber",
];

const INTUNE_PLAN: &str = "c1ec4a95-1f05-45b3-a911-aa3fa01094f5";
const CO_MGMT_APP: &str = "54b943f8-d761-4f8d-951e-9cea1846db5a";
const INTUNE_APP: &str = "0000000a-0000-0000-c000-000000000000";

fn ndjson(dir: &Path, name: &str, files: &mut Vec<PathBuf>) -> io::Result<BufWriter<File>> {
    let p = dir.join(name);
    files.push(p.clone());
    Ok(BufWriter::with_capacity(1 << 20, File::create(p)?))
}

fn line<T: Serialize>(w: &mut BufWriter<File>, v: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *w, v).map_err(io::Error::other)?;
    w.write_all(b"\n")
}

/// Writes the new policies of a rollout into `dir`: a Windows security
/// baseline, not assigned yet, that changes LAPS, Defender and BitLocker
/// settings the generated organization already configures (some with other
/// values, so a plan finds conflicts to settle).
pub fn generate_proposed(dir: &Path) -> io::Result<PathBuf> {
    generate_proposed_without(dir, &[])
}

/// The same baseline without the settings whose ids end with one of `drop`
/// (a fixed version after a setting broke devices in the pilot).
pub fn generate_proposed_without(dir: &Path, drop: &[&str]) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let laps = "device_vendor_msft_laps_policies_";
    let defender = "device_vendor_msft_policy_config_defender_";
    let settings: Vec<Value> = [
        (format!("{laps}passwordcomplexity"), json!("4")),
        (format!("{laps}passwordlength"), json!(21)),
        (format!("{laps}passwordagedays"), json!(30)),
        (format!("{defender}allowrealtimemonitoring"), json!("1")),
        (format!("{defender}allowcloudprotection"), json!("1")),
        (format!("{defender}submitsamplesconsent"), json!("1")),
    ]
    .iter()
    .filter(|(id, _)| !drop.iter().any(|d| id.ends_with(d)))
    .enumerate()
    .map(|(k, (id, v))| json!({"id": k.to_string(), "settingInstance": setting_json(id, v)}))
    .collect();
    let policy = json!({
        "@odata.type": "#microsoft.graph.deviceManagementConfigurationPolicy",
        "id": "0b5e11e0-2027-4000-8000-000000000001",
        "name": "Win - Security Baseline 2027",
        "description": "The new baseline this rollout deploys (generated by ringmaster gen)",
        "platforms": "windows10",
        "technologies": "mdm",
        "settingCount": settings.len(),
        "settings": settings,
        "assignments": [],
    });
    let path = dir.join("configurationPolicies.json");
    let body = json!({
        "@odata.context": "https://graph.microsoft.com/beta/$metadata#deviceManagement/configurationPolicies(assignments(),settings())",
        "value": [policy],
    });
    let mut w = BufWriter::new(File::create(&path)?);
    serde_json::to_writer_pretty(&mut w, &body)?;
    w.flush()?;
    Ok(path)
}

/// Writes the organization into `dir` (created if missing).
pub fn generate(dir: &Path, o: &Options) -> io::Result<Summary> {
    generate_with(dir, o, &Progress::default())
}

/// Names of what [`generate`] writes: a folder holding only these may be
/// replaced by a new run.
const WRITES: &[&str] = &[
    "groupMembers.ndjson",
    "users.ndjson",
    "managedDevices.ndjson",
    "devices.ndjson",
    "groups.json",
    "assignmentFilters.json",
    "configurationPolicies.json",
    "deviceCompliancePolicies.json",
];

/// [`generate`], counting records written into `progress`.
///
/// The files are written into a hidden folder beside `dir`, which is
/// renamed into place only when complete: an interrupted run (Ctrl-C, a
/// full disk) never leaves truncated files where an import would read them.
/// An existing `dir` is replaced only when it holds nothing but an earlier
/// run's files.
pub fn generate_with(dir: &Path, o: &Options, progress: &Progress) -> io::Result<Summary> {
    if o.devices == 0 || o.devices > MAX_DEVICES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--devices must be 1..={MAX_DEVICES}"),
        ));
    }
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| invalid(format!("{}: name a folder to write into", dir.display())))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if dir.exists() {
        replaceable(dir)?;
    }
    std::fs::create_dir_all(&parent)?;
    remove_stale(&parent, name);
    let work = parent.join(format!(".{name}.gen-{}", std::process::id()));
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir(&work)?;
    let written = write_all(&work, o, progress);
    let mut s = match written {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&work);
            return Err(e);
        }
    };
    if dir.exists() {
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(dir, &old)?;
        std::fs::rename(&work, dir)?;
        std::fs::remove_dir_all(&old)?;
    } else {
        std::fs::rename(&work, dir)?;
    }
    for f in &mut s.files {
        if let Ok(rest) = f.strip_prefix(&work) {
            *f = dir.join(rest);
        }
    }
    Ok(s)
}

/// Refuses a `dir` holding anything `generate` did not write.
fn replaceable(dir: &Path) -> io::Result<()> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    if !dir.is_dir() {
        return Err(invalid(format!(
            "{} exists and is not a folder",
            dir.display()
        )));
    }
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let n = e.file_name();
        if !n.to_str().is_some_and(|n| WRITES.contains(&n)) {
            return Err(invalid(format!(
                "{} holds {}, which gen did not write; name a new or empty folder",
                dir.display(),
                n.to_string_lossy()
            )));
        }
    }
    Ok(())
}

/// Removes work folders of runs that were killed (their process is gone).
fn remove_stale(parent: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name();
        let Some(rest) = n.to_str().and_then(|n| {
            n.strip_prefix(&format!(".{name}.gen-"))
                .or_else(|| n.strip_prefix(&format!(".{name}.old-")))
        }) else {
            continue;
        };
        let Ok(pid) = rest.parse::<u32>() else {
            continue;
        };
        // Where processes cannot be looked up, leave the folder alone.
        let proc = Path::new("/proc");
        if pid != std::process::id() && proc.is_dir() && !proc.join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn write_all(dir: &Path, o: &Options, progress: &Progress) -> io::Result<Summary> {
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    if o.layout == Layout::Random {
        return random::write_all(dir, o, progress, &mut rng);
    }
    let mut s = Summary {
        users: o.user_count(),
        devices: o.devices,
        ..Default::default()
    };
    let base: i64 = 1_793_491_200; // BASE_DATE as Unix seconds.

    // Groups are defined first: users and devices stream their memberships.
    let groups = groups::define(o.group_count() as usize, &mut rng);
    s.dynamic_groups = groups.dynamic;
    s.groups = groups.defs.len() as u32;
    s.nested_groups = groups.defs.iter().filter(|g| !g.nested.is_empty()).count() as u32;
    let mut members = Members::new(ndjson(dir, "groupMembers.ndjson", &mut s.files)?);
    members.add_nesting(&groups.defs)?;

    progress.begin(
        "writing users and devices",
        "records",
        u64::from(s.users) + u64::from(s.devices),
    );
    let mut uw = ndjson(dir, "users.ndjson", &mut s.files)?;
    let users = people::write_users(
        &mut uw,
        (s.users, progress),
        base,
        &groups,
        &mut members,
        &mut rng,
    )?;

    let mut mw = ndjson(dir, "managedDevices.ndjson", &mut s.files)?;
    let mut ew = ndjson(dir, "devices.ndjson", &mut s.files)?;
    let fleet = devices::Fleet {
        devices: s.devices,
        users: &users,
        base,
        progress,
    };
    devices::write_devices(&fleet, (&mut mw, &mut ew), &groups, &mut members, &mut rng)?;
    s.group_members = members.finish()?;

    progress.begin("writing groups and policies", "", 0);
    groups::write_groups(dir, &groups.defs, &mut s)?;
    let filters = policies::write_filters(dir, o.filter_count(), &mut rng, &mut s)?;
    policies::write_policies(
        dir,
        o.policy_count(),
        o.settings_per_policy,
        &groups,
        &filters,
        &mut rng,
        &mut s,
    )?;
    Ok(s)
}

pub(crate) fn write_page(
    dir: &Path,
    name: &str,
    ctx: &str,
    value: Vec<Value>,
    s: &mut Summary,
) -> io::Result<()> {
    let p = dir.join(name);
    let mut w = BufWriter::new(File::create(&p)?);
    serde_json::to_writer_pretty(&mut w, &json!({"@odata.context": ctx, "value": value}))
        .map_err(io::Error::other)?;
    w.write_all(b"\n")?;
    w.flush()?;
    s.files.push(p);
    Ok(())
}

/// Seconds since the epoch as RFC 3339 UTC, without a date library.
fn unix_to_rfc3339(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(unix_to_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(unix_to_rfc3339(1_793_491_200), "2026-11-01T00:00:00Z");
        assert_eq!(unix_to_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn same_seed_same_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        generate(a.path(), &Options::new(500, 9)).unwrap();
        generate(b.path(), &Options::new(500, 9)).unwrap();
        for f in [
            "users.ndjson",
            "managedDevices.ndjson",
            "devices.ndjson",
            "groups.json",
            "groupMembers.ndjson",
            "assignmentFilters.json",
            "configurationPolicies.json",
        ] {
            assert_eq!(
                std::fs::read(a.path().join(f)).unwrap(),
                std::fs::read(b.path().join(f)).unwrap(),
                "{f} differs"
            );
        }
        let c = tempfile::tempdir().unwrap();
        generate(c.path(), &Options::new(500, 10)).unwrap();
        assert_ne!(
            std::fs::read(a.path().join("devices.ndjson")).unwrap(),
            std::fs::read(c.path().join("devices.ndjson")).unwrap()
        );
    }

    #[test]
    fn files_appear_whole_or_not_at_all() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("org");
        // A killed run's work folder (no such process) is cleared away.
        let stale = root.path().join(".org.gen-4000000000");
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join("users.ndjson"), "{\"trunc").unwrap();
        let p = Progress::default();
        let s = generate_with(&dir, &Options::new(200, 3), &p).unwrap();
        assert!(s.files.iter().all(|f| f.starts_with(&dir)), "{:?}", s.files);
        assert!(!stale.exists());
        let names: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["org"], "no work folder is left beside it");
        let seen = p.seen();
        assert_eq!(seen.step, "writing groups and policies");

        // A second run replaces the first's files.
        let first = std::fs::read(dir.join("devices.ndjson")).unwrap();
        generate(&dir, &Options::new(100, 3)).unwrap();
        assert_ne!(first, std::fs::read(dir.join("devices.ndjson")).unwrap());

        // A folder holding anything else is refused and left as it was.
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        let e = generate(&dir, &Options::new(100, 4)).unwrap_err();
        assert!(e.to_string().contains("notes.txt"), "{e}");
        assert_eq!(
            std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
            "mine"
        );
        let e = generate(&dir.join("users.ndjson"), &Options::new(100, 4)).unwrap_err();
        assert!(e.to_string().contains("not a folder"), "{e}");
    }

    #[test]
    fn the_random_layout_has_the_anchors_shape() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Options::new(300, 5);
        o.layout = Layout::Random;
        o.groups = Some(40);
        o.policies = Some(20);
        let s = generate(dir.path(), &o).unwrap();
        assert_eq!((s.devices, s.groups, s.policies), (300, 40, 20));
        assert_eq!(s.group_members, 300 * 10);
        let members = std::fs::read_to_string(dir.path().join("groupMembers.ndjson")).unwrap();
        let mut per_device: std::collections::HashMap<String, Vec<String>> = Default::default();
        for l in members.lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            per_device
                .entry(v["memberId"].as_str().unwrap().into())
                .or_default()
                .push(v["groupId"].as_str().unwrap().into());
        }
        assert_eq!(per_device.len(), 300);
        for gs in per_device.values_mut() {
            gs.sort();
            gs.dedup();
            assert_eq!(gs.len(), 10, "ten distinct groups per device");
        }
        let page: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("configurationPolicies.json")).unwrap(),
        )
        .unwrap();
        let mut values = std::collections::BTreeSet::new();
        for p in page["value"].as_array().unwrap() {
            let kinds: Vec<&str> = p["assignments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["target"]["@odata.type"].as_str().unwrap())
                .collect();
            assert_eq!(
                kinds,
                [
                    "#microsoft.graph.groupAssignmentTarget",
                    "#microsoft.graph.groupAssignmentTarget",
                    "#microsoft.graph.groupAssignmentTarget",
                    "#microsoft.graph.exclusionGroupAssignmentTarget"
                ]
            );
            let settings = p["settings"].as_array().unwrap();
            assert_eq!(settings.len(), 50);
            for st in settings {
                values.insert(st["settingInstance"]["simpleSettingValue"]["value"].to_string());
            }
        }
        assert_eq!(values.into_iter().collect::<Vec<_>>(), ["1", "2", "3"]);
    }
}
