//! Writes a realistic synthetic organization in Microsoft Graph export
//! format: users, Intune managed devices and Entra devices as NDJSON,
//! groups (static, nested and dynamic), group members, assignment filters
//! and policies built from real settings-catalog setting ids. The same
//! seed always gives the same files.
//!
//! - `reference`: places, departments, models, OS builds, setting ids.

mod reference;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reference::*;
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

struct UserInfo {
    id: String,
    dept: usize,
    city: usize,
    it: bool,
    vip: bool,
}

struct GroupDef {
    id: String,
    name: String,
    description: String,
    rule: Option<String>,
    /// Nested members (group ids) for static parents.
    nested: Vec<String>,
    /// Whether it holds users (else devices), for choosing assignments.
    users: bool,
}

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
    if o.devices == 0 || o.devices > MAX_DEVICES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--devices must be 1..={MAX_DEVICES}"),
        ));
    }
    std::fs::create_dir_all(dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let mut s = Summary {
        users: o.user_count(),
        devices: o.devices,
        ..Default::default()
    };
    let base: i64 = 1_793_491_200; // BASE_DATE as Unix seconds.

    // Groups are defined first: users and devices stream their memberships.
    // Static groups have a fixed core (location × department groups, their
    // nested parents, rings and people groups); the total grows to hold it
    // so that a third of all groups stay dynamic.
    let fixed_static = |by_city: bool| {
        if by_city {
            CITIES.len() * DEPARTMENTS.len() + 3 * DEPARTMENTS.len() + DEPARTMENTS.len() + 7
        } else {
            3 * DEPARTMENTS.len() + DEPARTMENTS.len() + 7
        }
    };
    let requested = o.group_count() as usize;
    let total_groups = requested.max((fixed_static(false) * 3).div_ceil(2));
    let dynamic_budget = total_groups / 3;
    let mut groups: Vec<GroupDef> = Vec::new();
    fn new_group(
        g: &mut Vec<GroupDef>,
        rng: &mut ChaCha8Rng,
        name: String,
        description: &str,
        rule: Option<String>,
        users: bool,
    ) -> usize {
        g.push(GroupDef {
            id: guid(rng),
            name,
            description: description.into(),
            rule,
            nested: Vec::new(),
            users,
        });
        g.len() - 1
    }
    // Dynamic groups: the usual platform, ownership and maker groups, then
    // department and country combinations until the budget is spent.
    let mut dyn_rules: Vec<(String, String, bool)> = vec![
        ("Intune - Windows Devices".into(), r#"(device.deviceOSType -eq "Windows") and (device.managementType -eq "MDM")"#.into(), false),
        ("Intune - Windows 10 Devices".into(), r#"(device.deviceOSType -eq "Windows") and (device.deviceOSVersion -startsWith "10.0.1")"#.into(), false),
        ("Intune - Windows 11 Devices".into(), r#"(device.deviceOSType -eq "Windows") and (device.deviceOSVersion -startsWith "10.0.2")"#.into(), false),
        ("Intune - macOS Devices".into(), r#"(device.deviceOSType -eq "MacMDM")"#.into(), false),
        ("Intune - iPhone Devices".into(), r#"(device.deviceOSType -eq "iPhone")"#.into(), false),
        ("Intune - iPad Devices".into(), r#"(device.deviceOSType -eq "iPad")"#.into(), false),
        ("Intune - Android Devices".into(), r#"(device.deviceOSType -eq "AndroidForWork")"#.into(), false),
        ("Intune - Autopilot Devices".into(), r#"(device.devicePhysicalIds -any (_ -startsWith "[ZTDID]"))"#.into(), false),
        ("Intune - Corporate Owned Devices".into(), r#"(device.deviceOwnership -eq "Company")"#.into(), false),
        ("Intune - BYOD Devices".into(), r#"(device.deviceOwnership -eq "Personal")"#.into(), false),
        ("Intune - Virtual Machines".into(), r#"(device.deviceModel -contains "Virtual Machine") or (device.deviceModel -startsWith "Cloud PC")"#.into(), false),
        ("Intune - Co-managed Devices".into(), format!(r#"(device.deviceManagementAppId -eq "{CO_MGMT_APP}")"#), false),
        ("Secure Admin Workstations".into(), r#"(device.extensionAttribute1 -eq "SAW")"#.into(), false),
        ("New Starters (30 days)".into(), "(user.employeeHireDate -ge system.now -minus p30d)".into(), true),
        ("Intune Licensed Users".into(), format!(r#"user.assignedPlans -any (assignedPlan.servicePlanId -eq "{INTUNE_PLAN}" -and assignedPlan.capabilityStatus -eq "Enabled")"#), true),
    ];
    for m in [
        "Dell Inc.",
        "HP",
        "LENOVO",
        "Apple",
        "samsung",
        "Zebra Technologies",
    ] {
        dyn_rules.push((
            format!("Manufacturer - {m}"),
            format!(r#"(device.deviceManufacturer -eq "{m}")"#),
            false,
        ));
    }
    for d in DEPARTMENTS {
        dyn_rules.push((
            format!("Dept - {} Users", d.name),
            format!(r#"(user.department -eq "{}")"#, d.name),
            true,
        ));
    }
    let mut countries: Vec<&str> = CITIES.iter().map(|c| c.country).collect();
    countries.dedup();
    for c in &countries {
        dyn_rules.push((
            format!("Country - {c} Users"),
            format!(r#"(user.country -eq "{c}")"#),
            true,
        ));
    }
    'combos: for d in DEPARTMENTS {
        for c in &countries {
            if dyn_rules.len() >= dynamic_budget * 2 {
                break 'combos;
            }
            dyn_rules.push((
                format!("{} - {c} Users", d.name),
                format!(
                    r#"(user.department -eq "{}") -and (user.country -eq "{c}")"#,
                    d.name
                ),
                true,
            ));
        }
    }
    'models: for m in MODELS {
        for (b, _) in builds(m.platform) {
            if dyn_rules.len() >= dynamic_budget * 2 {
                break 'models;
            }
            dyn_rules.push((
                format!("{} on {b}", m.model),
                format!(
                    r#"(device.deviceModel -eq "{}") -and (device.deviceOSVersion -eq "{b}")"#,
                    m.model
                ),
                false,
            ));
        }
    }
    let mut t = 0;
    while dyn_rules.len() < dynamic_budget {
        let d = &DEPARTMENTS[t % DEPARTMENTS.len()];
        let title = d.titles[(t / DEPARTMENTS.len()) % d.titles.len()];
        let city = CITIES[(t / 7) % CITIES.len()].name;
        dyn_rules.push((
            format!("{title}s in {city} #{t}"),
            format!(r#"(user.jobTitle -eq "{title}") -and (user.city -eq "{city}")"#),
            true,
        ));
        t += 1;
    }
    dyn_rules.truncate(dynamic_budget.max(1));
    let mut dyn_ids = Vec::new();
    for (name, rule, users) in dyn_rules {
        dyn_ids.push(new_group(
            &mut groups,
            &mut rng,
            name,
            "Dynamic membership",
            Some(rule),
            users,
        ));
    }
    // A memberOf rule, as Entra allows for nesting dynamic groups.
    if let Some(&autopilot) = dyn_ids.get(7) {
        let id = groups[autopilot].id.clone();
        let last = dyn_ids.len() - 1;
        groups[dyn_ids[last]].name = "Autopilot Devices (memberOf)".into();
        groups[dyn_ids[last]].rule = Some(format!(
            r#"device.memberOf -any (group.objectId -in ["{id}"])"#
        ));
        groups[dyn_ids[last]].users = false;
    }
    s.dynamic_groups = dyn_ids.len() as u32;

    // Static groups: location × department device groups, nested under
    // region and department parents; rings; people groups; projects.
    let static_budget = total_groups.saturating_sub(groups.len());
    let by_city = static_budget >= fixed_static(true);
    let places: Vec<String> = if by_city {
        CITIES.iter().map(|c| c.name.to_string()).collect()
    } else {
        vec!["AMER".into(), "EMEA".into(), "APAC".into()]
    };
    let place_of_city = |c: usize| {
        if by_city {
            c
        } else {
            ["AMER", "EMEA", "APAC"]
                .iter()
                .position(|r| *r == CITIES[c].region)
                .unwrap_or(0)
        }
    };
    let mut loc_group = vec![vec![0usize; DEPARTMENTS.len()]; places.len()];
    for (pi, place) in places.iter().enumerate() {
        for (di, d) in DEPARTMENTS.iter().enumerate() {
            loc_group[pi][di] = new_group(
                &mut groups,
                &mut rng,
                format!("{place} - {} Devices", d.name),
                "Assigned",
                None,
                false,
            );
        }
    }
    if by_city {
        for region in ["AMER", "EMEA", "APAC"] {
            for (di, d) in DEPARTMENTS.iter().enumerate() {
                let parent = new_group(
                    &mut groups,
                    &mut rng,
                    format!("{region} - {} Devices (all sites)", d.name),
                    "Nested: the region's site groups",
                    None,
                    false,
                );
                groups[parent].nested = CITIES
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.region == region)
                    .map(|(ci, _)| groups[loc_group[ci][di]].id.clone())
                    .collect();
            }
        }
    }
    for (di, d) in DEPARTMENTS.iter().enumerate() {
        let parent = new_group(
            &mut groups,
            &mut rng,
            format!("All {} Devices", d.name),
            "Nested: every location's group",
            None,
            false,
        );
        let kids: Vec<String> = if by_city {
            groups
                .iter()
                .filter(|g| {
                    g.name
                        .ends_with(&format!("- {} Devices (all sites)", d.name))
                })
                .map(|g| g.id.clone())
                .collect()
        } else {
            (0..places.len())
                .map(|pi| groups[loc_group[pi][di]].id.clone())
                .collect()
        };
        groups[parent].nested = kids;
    }
    // Location × department groups and the parents that nest them: the scopes
    // that settings-heavy variant policies are assigned to.
    let sites: Vec<usize> = loc_group.iter().flatten().copied().collect();
    let parents: Vec<usize> = (0..groups.len())
        .filter(|&g| !groups[g].nested.is_empty())
        .collect();
    let ring0 = new_group(
        &mut groups,
        &mut rng,
        "Ring 0 - IT Pilot Devices".into(),
        "Assigned",
        None,
        false,
    );
    let ring1 = new_group(
        &mut groups,
        &mut rng,
        "Ring 1 - Early Adopter Devices".into(),
        "Assigned",
        None,
        false,
    );
    let lab = new_group(
        &mut groups,
        &mut rng,
        "Lab and Test Devices".into(),
        "Assigned",
        None,
        false,
    );
    let vip = new_group(
        &mut groups,
        &mut rng,
        "VIP Users".into(),
        "Executives and VIPs: never in pilots",
        None,
        true,
    );
    let execs = new_group(
        &mut groups,
        &mut rng,
        "Executive Leadership".into(),
        "Assigned",
        None,
        true,
    );
    let it_users = new_group(
        &mut groups,
        &mut rng,
        "IT Staff".into(),
        "Assigned",
        None,
        true,
    );
    let pilot_all = new_group(
        &mut groups,
        &mut rng,
        "Pilot Rings (all)".into(),
        "Nested: ring 0 and ring 1",
        None,
        false,
    );
    groups[pilot_all].nested = vec![groups[ring0].id.clone(), groups[ring1].id.clone()];
    let mut projects = Vec::new();
    while groups.len() < total_groups {
        let n = projects.len() + 1;
        projects.push(new_group(
            &mut groups,
            &mut rng,
            format!("Project {n:03} Members"),
            "Assigned",
            None,
            true,
        ));
    }
    if projects.len() >= 4 {
        let parent = projects.pop().expect("non-empty");
        groups[parent].name = "All Project Members".into();
        groups[parent].nested = projects[..3]
            .iter()
            .map(|&p| groups[p].id.clone())
            .collect();
    }
    s.groups = groups.len() as u32;
    s.nested_groups = groups.iter().filter(|g| !g.nested.is_empty()).count() as u32;

    let mut members = ndjson(dir, "groupMembers.ndjson", &mut s.files)?;
    let member = |w: &mut BufWriter<File>, g: &GroupDef, id: &str, kind: &str| -> io::Result<()> {
        line(
            w,
            &json!({"groupId": g.id, "memberId": id, "memberType": kind}),
        )
    };
    for g in &groups {
        for n in &g.nested {
            member(&mut members, g, n, "group")?;
            s.group_members += 1;
        }
    }

    // Users.
    let mut uw = ndjson(dir, "users.ndjson", &mut s.files)?;
    let mut users: Vec<UserInfo> = Vec::with_capacity(s.users as usize);
    let mut managers: Vec<Option<String>> = vec![None; DEPARTMENTS.len() * CITIES.len()];
    let project_p = if projects.is_empty() {
        0.0
    } else {
        (projects.len() as f64 * 150.0 / s.users as f64).min(1.0)
    };
    for u in 0..s.users {
        let id = guid(&mut rng);
        let di = weighted_index(&mut rng, DEPARTMENTS, |d| d.weight);
        let ci = weighted_index(&mut rng, CITIES, |c| c.weight);
        let (dept, city) = (&DEPARTMENTS[di], &CITIES[ci]);
        let first = FIRST.choose(&mut rng).copied().unwrap_or("Alex");
        let last = LAST.choose(&mut rng).copied().unwrap_or("Smith");
        let upn = format!(
            "{}.{}{}@contoso.com",
            first.to_lowercase(),
            last.to_lowercase(),
            u
        );
        let title = dept.titles.choose(&mut rng).copied().unwrap_or("Employee");
        let is_exec = dept.name == "Executive";
        let is_vip = is_exec || rng.random_bool(0.002);
        let is_it = dept.name == "IT";
        let hire_days: i64 = if rng.random_bool(0.02) {
            rng.random_range(0..30)
        } else {
            rng.random_range(30..3650)
        };
        let hire = base - hire_days * 86_400;
        let mkey = di * CITIES.len() + ci;
        let manager = managers[mkey].clone();
        if manager.is_none() {
            managers[mkey] = Some(id.clone());
        }
        let licensed = rng.random_bool(0.96);
        let rec = json!({
            "id": id,
            "userPrincipalName": upn,
            "displayName": format!("{first} {last}"),
            "givenName": first,
            "surname": last,
            "mail": upn,
            "department": dept.name,
            "jobTitle": title,
            "companyName": "Contoso",
            "city": city.name,
            "country": city.country,
            "usageLocation": city.country,
            "employeeId": format!("E{u:07}"),
            "employeeHireDate": unix_to_rfc3339(hire),
            "userType": "Member",
            "accountEnabled": rng.random_bool(0.99),
            "manager": manager,
            "assignedPlans": [{"servicePlanId": INTUNE_PLAN, "capabilityStatus": if licensed { "Enabled" } else { "Deleted" }, "service": "SCO"}],
            "onPremisesExtensionAttributes": {"extensionAttribute1": format!("CC-{}", 1000 + di * 10 + ci % 10)},
            "isVip": is_vip,
            "isItStaff": is_it,
        });
        line(&mut uw, &rec)?;
        if is_vip {
            member(&mut members, &groups[vip], &id, "user")?;
            s.group_members += 1;
        }
        if is_exec {
            member(&mut members, &groups[execs], &id, "user")?;
            s.group_members += 1;
        }
        if is_it {
            member(&mut members, &groups[it_users], &id, "user")?;
            s.group_members += 1;
        }
        if rng.random_bool(project_p) {
            let k = rng.random_range(1..=2usize.min(projects.len()));
            for _ in 0..k {
                let p = projects[rng.random_range(0..projects.len())];
                member(&mut members, &groups[p], &id, "user")?;
                s.group_members += 1;
            }
        }
        users.push(UserInfo {
            id,
            dept: di,
            city: ci,
            it: is_it,
            vip: is_vip,
        });
    }
    uw.flush()?;

    // Devices: each user's main device first, then phones, then shared and kiosk devices.
    let mut mw = ndjson(dir, "managedDevices.ndjson", &mut s.files)?;
    let mut ew = ndjson(dir, "devices.ndjson", &mut s.files)?;
    let n_users = users.len() as u32;
    let extra = s.devices.saturating_sub(n_users);
    let phone_p = if extra == 0 {
        0.0
    } else {
        (0.4 * n_users as f64 / extra as f64).min(1.0)
    };
    // The last few devices without a primary user are the IT lab, so every
    // organization has a proof of concept to run on.
    let lab_tail = (s.devices / 1000).clamp(3, 200).min(s.devices / 10);
    for d in 0..s.devices {
        let forced_lab = d >= n_users && d >= s.devices - lab_tail;
        let owner: Option<usize> = if d < n_users {
            Some(d as usize)
        } else if forced_lab {
            None
        } else if rng.random_bool(phone_p) {
            Some(rng.random_range(0..n_users as usize))
        } else {
            None
        };
        let primary = d < n_users;
        let platform_pool: &[&str] = match (owner, primary) {
            (Some(u), true) if DEPARTMENTS[users[u].dept].name == "Engineering" => {
                &["windows", "windows", "macOS", "linux"]
            }
            (Some(_), true) => &[
                "windows", "windows", "windows", "windows", "windows", "windows", "windows",
                "windows", "windows", "macOS",
            ],
            (Some(_), false) => &["iOS", "iOS", "iOS", "android", "android"],
            (None, _) => &[
                "windows", "windows", "windows", "windows", "windows", "windows", "windows",
                "android", "android", "iPadOS",
            ],
        };
        let platform = *platform_pool.choose(&mut rng).unwrap_or(&"windows");
        let platform = if forced_lab { "windows" } else { platform };
        let candidates: Vec<&Model> = MODELS.iter().filter(|m| m.platform == platform).collect();
        let model = *weighted(&mut rng, &candidates, |m| m.weight);
        let build = weighted(&mut rng, builds(platform), |b| b.1).0;
        let (di, ci) = match owner {
            Some(u) => (users[u].dept, users[u].city),
            None => {
                // Shared and kiosk devices sit mostly in retail, operations and support.
                let di = weighted_index(&mut rng, DEPARTMENTS, |d| {
                    if matches!(d.name, "Retail" | "Operations" | "Customer Support") {
                        d.weight * 4
                    } else {
                        d.weight
                    }
                });
                let ci = weighted_index(&mut rng, CITIES, |c| c.weight);
                (di, ci)
            }
        };
        let is_lab =
            forced_lab || (owner.is_none() && platform == "windows" && rng.random_bool(0.005));
        let di = if is_lab {
            DEPARTMENTS
                .iter()
                .position(|x| x.name == "IT")
                .unwrap_or(di)
        } else {
            di
        };
        let city = &CITIES[ci];
        let name = match (is_lab, platform) {
            (true, _) => format!("LAB-{d:07}"),
            (_, "windows") => format!("{}{}-{d:07}", city.country, DEPARTMENTS[di].code),
            (_, "macOS") => format!("MAC-{d:07}"),
            (_, "linux") => format!("LNX-{d:07}"),
            (_, "iOS") => format!("IPH-{d:07}"),
            (_, "iPadOS") => format!("IPD-{d:07}"),
            _ => format!("AND-{d:07}"),
        };
        let personal = !primary && owner.is_some() && rng.random_bool(0.3);
        let object_id = guid(&mut rng);
        let device_id = guid(&mut rng);
        let managed_id = guid(&mut rng);
        let autopilot = platform == "windows" && !personal && rng.random_bool(0.6);
        let trust = if platform == "windows" {
            if rng.random_bool(0.65) {
                "AzureAd"
            } else {
                "ServerAd"
            }
        } else {
            "Workplace"
        };
        let comanaged = trust == "ServerAd" && rng.random_bool(0.25);
        let arm = model.model.starts_with("Surface Pro") || platform == "macOS";
        let stale = rng.random_bool(0.03);
        let sync = base
            - if stale {
                rng.random_range(30..90) * 86_400
            } else {
                rng.random_range(0..7 * 86_400)
            };
        let enrollment = if autopilot {
            Some("Autopilot - User Driven")
        } else if platform == "iOS" && !personal {
            Some("ADE - Corporate iPhone")
        } else {
            None
        };
        let category = rng
            .random_bool(0.7)
            .then(|| format!("{} devices", DEPARTMENTS[di].name));
        let saw = DEPARTMENTS[di].name == "IT" && platform == "windows" && rng.random_bool(0.05);
        let mut physical = Vec::new();
        if autopilot {
            physical.push(format!("[ZTDID]{}", guid(&mut rng)));
            physical.push("[OrderId]Contoso-Standard".to_string());
        }
        physical.push(format!("[USER-HWID]{device_id}:{}", rng.random::<u32>()));
        let serial = format!("{:X}", rng.random::<u64>() & 0xFF_FFFF_FFFF);
        let os = model.os;
        line(
            &mut mw,
            &json!({
                "id": managed_id,
                "deviceName": name,
                "azureADDeviceId": device_id,
                "operatingSystem": os,
                "osVersion": build,
                "model": model.model,
                "manufacturer": model.manufacturer,
                "managedDeviceOwnerType": if personal { "personal" } else { "company" },
                "joinType": match trust { "AzureAd" => "azureADJoined", "ServerAd" => "hybridAzureADJoined", _ => "azureADRegistered" },
                "enrollmentProfileName": enrollment,
                "deviceCategoryDisplayName": category,
                "skuFamily": if platform == "windows" { Some(if rng.random_bool(0.9) { "Enterprise" } else { "Professional" }) } else { None },
                "processorArchitecture": if platform == "windows" || platform == "macOS" { Some(if arm { "arm64" } else { "x64" }) } else { None },
                "userId": owner.map(|u| users[u].id.as_str()),
                "lastSyncDateTime": unix_to_rfc3339(sync),
                "serialNumber": serial,
                "complianceState": if rng.random_bool(0.93) { "compliant" } else { "noncompliant" },
                "isLab": is_lab,
            }),
        )?;
        line(
            &mut ew,
            &json!({
                "id": object_id,
                "deviceId": device_id,
                "displayName": name,
                "operatingSystem": match platform { "windows" => "Windows", "macOS" => "MacMDM", "iOS" => "iPhone", "iPadOS" => "iPad", "android" => "AndroidForWork", _ => "Linux" },
                "operatingSystemVersion": build,
                "trustType": match trust { "AzureAd" => "AzureAd", "ServerAd" => "ServerAd", _ => "Workplace" },
                "manufacturer": model.manufacturer,
                "model": model.model,
                "accountEnabled": true,
                "physicalIds": physical,
                "systemLabels": if model.model.starts_with("Cloud PC") { vec!["M365Managed"] } else { Vec::new() },
                "profileType": "RegisteredDevice",
                "extensionAttributes": {"extensionAttribute1": if saw { Some("SAW") } else { None }},
                "enrollmentProfileName": enrollment,
                "deviceOwnership": if personal { "Personal" } else { "Company" },
                "managementType": "MDM",
                "mdmAppId": if comanaged { CO_MGMT_APP } else { INTUNE_APP },
            }),
        )?;
        // Static memberships: the location × department group; rings; lab.
        member(
            &mut members,
            &groups[loc_group[place_of_city(ci)][di]],
            &object_id,
            "device",
        )?;
        s.group_members += 1;
        let it_owner = owner.is_some_and(|u| users[u].it);
        if (it_owner && primary) || is_lab {
            member(&mut members, &groups[ring0], &object_id, "device")?;
            s.group_members += 1;
        } else if primary && !owner.is_some_and(|u| users[u].vip) && rng.random_bool(0.02) {
            member(&mut members, &groups[ring1], &object_id, "device")?;
            s.group_members += 1;
        }
        if is_lab {
            member(&mut members, &groups[lab], &object_id, "device")?;
            s.group_members += 1;
        }
    }
    mw.flush()?;
    ew.flush()?;
    members.flush()?;

    write_groups(dir, &groups, &mut s)?;
    let filters = write_filters(dir, o.filter_count(), &mut rng, &mut s)?;
    write_policies(
        dir,
        o.policy_count(),
        o.settings_per_policy,
        (&sites, &parents),
        &groups,
        &filters,
        (vip, lab, ring0),
        &mut rng,
        &mut s,
    )?;
    Ok(s)
}

fn write_groups(dir: &Path, groups: &[GroupDef], s: &mut Summary) -> io::Result<()> {
    let value: Vec<Value> = groups
        .iter()
        .map(|g| {
            let mut v = json!({
                "id": g.id,
                "displayName": g.name,
                "description": g.description,
                "securityEnabled": true,
                "mailEnabled": false,
                "groupTypes": if g.rule.is_some() { vec!["DynamicMembership"] } else { Vec::new() },
            });
            if let Some(r) = &g.rule {
                v["membershipRule"] = json!(r);
                v["membershipRuleProcessingState"] = json!("On");
            }
            v
        })
        .collect();
    write_page(
        dir,
        "groups.json",
        "https://graph.microsoft.com/v1.0/$metadata#groups",
        value,
        s,
    )
}

fn write_page(
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

struct FilterDef {
    id: String,
    platform: &'static str,
}

fn write_filters(
    dir: &Path,
    count: u32,
    rng: &mut ChaCha8Rng,
    s: &mut Summary,
) -> io::Result<Vec<FilterDef>> {
    let mut defs: Vec<(String, &'static str, String)> = vec![
        ("Windows 11".into(), "windows10AndLater", r#"(device.osVersion -startsWith "10.0.2")"#.into()),
        ("Windows 10".into(), "windows10AndLater", r#"(device.osVersion -startsWith "10.0.1")"#.into()),
        ("Windows 11 24H2 or later".into(), "windows10AndLater", "(device.operatingSystemVersion -ge 10.0.26100.0)".into()),
        ("Corporate Windows".into(), "windows10AndLater", r#"(device.deviceOwnership -eq "Corporate")"#.into()),
        ("Virtual machines".into(), "windows10AndLater", r#"(device.model -contains "Virtual Machine") or (device.model -startsWith "Cloud PC")"#.into()),
        ("Surface devices".into(), "windows10AndLater", r#"(device.manufacturer -eq "Microsoft Corporation") and (device.model -startsWith "Surface")"#.into()),
        ("Autopilot enrolled".into(), "windows10AndLater", r#"(device.enrollmentProfileName -startsWith "Autopilot")"#.into()),
        ("ARM64 Windows".into(), "windows10AndLater", r#"(device.cpuArchitecture -eq "arm64")"#.into()),
        ("Hybrid joined".into(), "windows10AndLater", r#"(device.deviceTrustType -eq "Hybrid Azure AD joined")"#.into()),
        ("Corporate iPhones".into(), "iOS", r#"(device.deviceOwnership -eq "Corporate") and (device.model -startsWith "iPhone")"#.into()),
        ("MacBooks".into(), "macOS", r#"(device.model -startsWith "MacBook")"#.into()),
        ("Zebra scanners".into(), "androidForWork", r#"(device.manufacturer -eq "Zebra Technologies")"#.into()),
    ];
    let mut n = 0;
    while defs.len() < count as usize {
        let build = ["10.0.22621", "10.0.22631", "10.0.26100", "10.0.19045"][n % 4];
        let city = &CITIES[n % CITIES.len()];
        let d = &DEPARTMENTS[(n / 3) % DEPARTMENTS.len()];
        let (name, rule) = match n % 3 {
            0 => (
                format!("Build {build} #{n}"),
                format!(r#"(device.osVersion -startsWith "{build}")"#),
            ),
            1 => (
                format!("{} {} names #{n}", city.country, d.code),
                format!(
                    r#"(device.deviceName -startsWith "{}{}")"#,
                    city.country, d.code
                ),
            ),
            _ => (
                format!("{} category #{n}", d.name),
                format!(r#"(device.deviceCategory -eq "{} devices")"#, d.name),
            ),
        };
        defs.push((name, "windows10AndLater", rule));
        n += 1;
    }
    defs.truncate(count as usize);
    let mut out = Vec::new();
    let value: Vec<Value> = defs
        .into_iter()
        .map(|(name, platform, rule)| {
            let id = guid(rng);
            out.push(FilterDef { id: id.clone(), platform });
            json!({"id": id, "displayName": name, "platform": platform, "rule": rule, "assignmentFilterManagementType": "devices"})
        })
        .collect();
    s.filters = value.len() as u32;
    write_page(
        dir,
        "assignmentFilters.json",
        "https://graph.microsoft.com/beta/$metadata#deviceManagement/assignmentFilters",
        value,
        s,
    )?;
    Ok(out)
}

fn setting_json(id: &str, v: &Value) -> Value {
    match v {
        Value::String(opt) => json!({
            "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
            "settingDefinitionId": id,
            "choiceSettingValue": {"@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingValue", "value": format!("{id}_{opt}"), "children": []}
        }),
        other => json!({
            "@odata.type": "#microsoft.graph.deviceManagementConfigurationSimpleSettingInstance",
            "settingDefinitionId": id,
            "simpleSettingValue": {"@odata.type": "#microsoft.graph.deviceManagementConfigurationIntegerSettingValue", "value": other}
        }),
    }
}

#[allow(clippy::too_many_arguments)]
fn write_policies(
    dir: &Path,
    count: u32,
    bulk: Option<u32>,
    (sites, parents): (&[usize], &[usize]),
    groups: &[GroupDef],
    filters: &[FilterDef],
    (vip, lab, ring0): (usize, usize, usize),
    rng: &mut ChaCha8Rng,
    s: &mut Summary,
) -> io::Result<()> {
    let compliance_n = (count / 10).max(2);
    let config_n = count.saturating_sub(compliance_n);
    let device_groups: Vec<usize> = (0..groups.len()).filter(|&g| !groups[g].users).collect();
    let user_groups: Vec<usize> = (0..groups.len()).filter(|&g| groups[g].users).collect();
    let mut assignments = 0u32;
    let mut assign = |rng: &mut ChaCha8Rng,
                      platform: &str,
                      prefer_users: bool,
                      scoped: bool|
     -> Vec<Value> {
        let mut out = Vec::new();
        let includes = rng.random_range(2..=5);
        for _ in 0..includes {
            let roll: f64 = rng.random();
            let target = if scoped && !sites.is_empty() {
                // A variant for some sites, now and then for a whole department.
                let g = if rng.random_bool(0.9) || parents.is_empty() {
                    sites[rng.random_range(0..sites.len())]
                } else {
                    parents[rng.random_range(0..parents.len())]
                };
                json!({"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": groups[g].id})
            } else if roll < 0.08 {
                json!({"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"})
            } else if roll < 0.12 {
                json!({"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"})
            } else {
                let pool = if prefer_users && !user_groups.is_empty() {
                    &user_groups
                } else {
                    &device_groups
                };
                let g = pool[rng.random_range(0..pool.len())];
                json!({"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": groups[g].id})
            };
            let mut target = target;
            let matching: Vec<&FilterDef> = filters
                .iter()
                .filter(|f| platform_matches(f.platform, platform))
                .collect();
            if !matching.is_empty() && rng.random_bool(0.35) {
                let f = matching[rng.random_range(0..matching.len())];
                target["deviceAndAppManagementAssignmentFilterId"] = json!(f.id);
                target["deviceAndAppManagementAssignmentFilterType"] =
                    json!(if rng.random_bool(0.6) {
                        "include"
                    } else {
                        "exclude"
                    });
            } else {
                target["deviceAndAppManagementAssignmentFilterType"] = json!("none");
            }
            out.push(
                json!({"id": format!("{}_{}", out.len(), rng.random::<u32>()), "target": target}),
            );
        }
        if rng.random_bool(0.5) {
            let g = if prefer_users {
                vip
            } else if rng.random_bool(0.5) {
                lab
            } else {
                ring0
            };
            out.push(json!({"target": {"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": groups[g].id}}));
        }
        assignments += out.len() as u32;
        out
    };
    let mut config = Vec::new();
    for i in 0..config_n {
        let windows_themes: Vec<&Theme> = THEMES
            .iter()
            .filter(|t| t.platform == "windows10")
            .collect();
        let theme = if rng.random_bool(0.9) {
            windows_themes[i as usize % windows_themes.len()]
        } else {
            &THEMES[THEMES.len() - 1]
        };
        let mut chosen: Vec<(String, Value)> = Vec::new();
        let bulk_policy = bulk.filter(|_| rng.random_bool(0.6));
        if let Some(k) = bulk_policy {
            // Settings-heavy policy: k Internet Explorer zone settings, most at
            // the usual value, some set otherwise: overlap with realistic drift.
            let pool = IE_ZONES.len() * IE_SETTINGS.len();
            for idx in rand::seq::index::sample(rng, pool, (k as usize).min(pool)).into_vec() {
                let id = format!(
                    "device_vendor_msft_policy_config_internetexplorer_{}{}",
                    IE_ZONES[idx / IE_SETTINGS.len()],
                    IE_SETTINGS[idx % IE_SETTINGS.len()]
                );
                let v = if rng.random_bool(0.9) { "1" } else { "0" };
                chosen.push((id, Value::String(v.into())));
            }
        } else {
            for st in theme.settings {
                if rng.random_bool(0.75) || chosen.is_empty() {
                    let v = match &st.value {
                        reference::Value::Choice(opts) => {
                            let k = if rng.random_bool(0.85) {
                                st.usual
                            } else {
                                rng.random_range(0..opts.len())
                            };
                            Value::String(opts[k].to_string())
                        }
                        reference::Value::Int(lo, hi) => json!(if rng.random_bool(0.85) {
                            lo + (hi - lo) / 2
                        } else {
                            rng.random_range(*lo..=*hi)
                        }),
                    };
                    chosen.push((st.id.to_string(), v));
                }
            }
        }
        s.setting_leaves += chosen.len() as u64;
        let (theme_name, collection, template) = match bulk_policy {
            Some(_) => ("Internet Explorer (Legacy)", None, "none"),
            None => (theme.name, theme.collection, theme.template_family),
        };
        let settings: Vec<Value> = match collection {
            Some(parent) => vec![json!({"id": "0", "settingInstance": {
                "@odata.type": "#microsoft.graph.deviceManagementConfigurationGroupSettingCollectionInstance",
                "settingDefinitionId": parent,
                "groupSettingCollectionValue": [{"children": chosen.iter().map(|(id, v)| setting_json(id, v)).collect::<Vec<_>>()}]
            }})],
            None => chosen.iter().enumerate().map(|(k, (id, v))| json!({"id": k.to_string(), "settingInstance": setting_json(id, v)})).collect(),
        };
        let mac = bulk_policy.is_none() && theme.platform == "macOS";
        let prefix = if mac { "macOS" } else { "Win" };
        let platform = if mac { "macOS" } else { "windows10" };
        let prefer_users = rng.random_bool(0.2);
        let asg = assign(rng, platform, prefer_users, bulk_policy.is_some());
        config.push(json!({
            "@odata.type": "#microsoft.graph.deviceManagementConfigurationPolicy",
            "id": guid(rng),
            "name": format!("{prefix} - {theme_name} - {:03}", i + 1),
            "description": "Generated by ringmaster gen",
            "platforms": platform,
            "technologies": "mdm",
            "settingCount": settings.len(),
            "templateReference": {"templateFamily": template},
            "settings": settings,
            "assignments": asg,
        }));
    }
    let mut compliance = Vec::new();
    for i in 0..compliance_n {
        let (ty, platform, extra) = match i % 4 {
            0 | 1 => (
                "windows10CompliancePolicy",
                "windows10",
                json!({"bitLockerEnabled": true, "secureBootEnabled": true, "osMinimumVersion": "10.0.19045", "passwordMinimumLength": rng.random_range(8..=14)}),
            ),
            2 => (
                "macOSCompliancePolicy",
                "macOS",
                json!({"systemIntegrityProtectionEnabled": true, "passwordMinimumLength": rng.random_range(8..=12)}),
            ),
            _ => (
                "iosCompliancePolicy",
                "iOS",
                json!({"passcodeRequired": true, "passcodeMinimumLength": rng.random_range(4..=8)}),
            ),
        };
        let mut p = json!({
            "@odata.type": format!("#microsoft.graph.{ty}"),
            "id": guid(rng),
            "displayName": format!("Compliance - {platform} - {:02}", i + 1),
            "assignments": assign(rng, platform, true, false),
        });
        if let (Some(pm), Some(em)) = (p.as_object_mut(), extra.as_object()) {
            pm.extend(em.clone());
        }
        compliance.push(p);
    }
    s.policies = config_n + compliance_n;
    write_page(
        dir,
        "configurationPolicies.json",
        "https://graph.microsoft.com/beta/$metadata#deviceManagement/configurationPolicies(assignments(),settings())",
        config,
        s,
    )?;
    write_page(
        dir,
        "deviceCompliancePolicies.json",
        "https://graph.microsoft.com/beta/$metadata#deviceManagement/deviceCompliancePolicies(assignments())",
        compliance,
        s,
    )?;
    s.assignments = assignments;
    Ok(())
}

fn platform_matches(filter_platform: &str, policy_platform: &str) -> bool {
    matches!(
        (filter_platform, policy_platform),
        ("windows10AndLater", "windows10")
            | ("macOS", "macOS")
            | ("iOS", "iOS")
            | ("androidForWork", "android")
    )
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
}
