//! The devices: each user's main device first, then phones, then shared and
//! kiosk devices, the last few of them the IT lab. Each is written twice,
//! as Intune sees it (managed device) and as Entra does (device), and joins
//! its location × department group and, for some, a ring and the lab.

use crate::groups::{Groups, Members};
use crate::people::UserInfo;
use crate::reference::*;
use crate::{CO_MGMT_APP, INTUNE_APP, guid, line, unix_to_rfc3339, weighted, weighted_index};
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use ringmaster_core::progress::Progress;
use serde_json::{Value, json};
use std::fs::File;
use std::io::{self, BufWriter, Write};

/// The population devices are drawn for.
pub(crate) struct Fleet<'a> {
    pub devices: u32,
    pub users: &'a [UserInfo],
    /// Unix time check-ins count back from.
    pub base: i64,
    pub progress: &'a Progress,
}

impl Fleet<'_> {
    /// Chance that a device beyond the users' main ones is a user's phone.
    fn phone_p(&self) -> f64 {
        let extra = self.devices.saturating_sub(self.users.len() as u32);
        if extra == 0 {
            0.0
        } else {
            (0.4 * self.users.len() as f64 / extra as f64).min(1.0)
        }
    }

    /// The last few devices have no primary user and are the IT lab, so
    /// every organization has a proof of concept to run on.
    fn lab_tail(&self) -> u32 {
        (self.devices / 1000).clamp(3, 200).min(self.devices / 10)
    }
}

/// One drawn device.
pub(crate) struct Device {
    pub name: String,
    pub platform: &'static str,
    pub model: &'static Model,
    pub build: &'static str,
    /// Index into the users.
    pub owner: Option<usize>,
    /// The owner's main device (not a phone).
    pub primary: bool,
    pub personal: bool,
    pub is_lab: bool,
    /// Indices into `DEPARTMENTS` and `CITIES`.
    pub dept: usize,
    pub city: usize,
    pub object_id: String,
    pub device_id: String,
    pub managed_id: String,
    /// `AzureAd`, `ServerAd` or `Workplace`.
    pub trust: &'static str,
    pub comanaged: bool,
    pub arm: bool,
    pub sync: i64,
    pub enrollment: Option<&'static str>,
    pub category: Option<String>,
    /// A secure admin workstation (extensionAttribute1 = SAW).
    pub saw: bool,
    pub physical: Vec<String>,
    pub serial: String,
    pub sku: Option<&'static str>,
    pub compliant: bool,
}

/// Writes every device to `managed` (Intune) and `entra`, and its static
/// memberships to `members`.
pub(crate) fn write_devices(
    fleet: &Fleet<'_>,
    (managed, entra): (&mut BufWriter<File>, &mut BufWriter<File>),
    groups: &Groups,
    members: &mut Members,
    rng: &mut ChaCha8Rng,
) -> io::Result<()> {
    let defs = &groups.defs;
    for d in 0..fleet.devices {
        if d % 4096 == 4095 {
            fleet.progress.add(4096);
        }
        let dev = draw_device(fleet, d, rng);
        line(managed, &managed_record(&dev, fleet.users))?;
        line(entra, &entra_record(&dev))?;
        // Static memberships: the location × department group; rings; lab.
        let loc = groups.loc[groups.place_of_city(dev.city)][dev.dept];
        members.add(&defs[loc], &dev.object_id, "device")?;
        let owner = dev.owner.map(|u| &fleet.users[u]);
        let it_owner = owner.is_some_and(|u| u.it);
        if (it_owner && dev.primary) || dev.is_lab {
            members.add(&defs[groups.ring0], &dev.object_id, "device")?;
        } else if dev.primary && !owner.is_some_and(|u| u.vip) && rng.random_bool(0.02) {
            members.add(&defs[groups.ring1], &dev.object_id, "device")?;
        }
        if dev.is_lab {
            members.add(&defs[groups.lab], &dev.object_id, "device")?;
        }
    }
    managed.flush()?;
    entra.flush()
}

/// Device number `d`: user `d`'s main device while there are users, then a
/// user's phone or a shared device, and the lab at the end.
pub(crate) fn draw_device(fleet: &Fleet<'_>, d: u32, rng: &mut ChaCha8Rng) -> Device {
    let users = fleet.users;
    let n_users = users.len() as u32;
    let forced_lab = d >= n_users && d >= fleet.devices - fleet.lab_tail();
    let owner: Option<usize> = if d < n_users {
        Some(d as usize)
    } else if forced_lab {
        None
    } else if rng.random_bool(fleet.phone_p()) {
        Some(rng.random_range(0..n_users as usize))
    } else {
        None
    };
    let primary = d < n_users;
    let platform_pool: &[&'static str] = match (owner, primary) {
        (Some(u), true) if DEPARTMENTS[users[u].dept].name == "Engineering" => {
            &["windows", "windows", "macOS", "linux"]
        }
        (Some(_), true) => &[
            "windows", "windows", "windows", "windows", "windows", "windows", "windows", "windows",
            "windows", "macOS",
        ],
        (Some(_), false) => &["iOS", "iOS", "iOS", "android", "android"],
        (None, _) => &[
            "windows", "windows", "windows", "windows", "windows", "windows", "windows", "android",
            "android", "iPadOS",
        ],
    };
    let platform = *platform_pool.choose(rng).unwrap_or(&"windows");
    let platform = if forced_lab { "windows" } else { platform };
    let candidates: Vec<&'static Model> =
        MODELS.iter().filter(|m| m.platform == platform).collect();
    let model = *weighted(rng, &candidates, |m| m.weight);
    let build = weighted(rng, builds(platform), |b| b.1).0;
    let (di, ci) = match owner {
        Some(u) => (users[u].dept, users[u].city),
        None => {
            // Shared and kiosk devices sit mostly in retail, operations and support.
            let di = weighted_index(rng, DEPARTMENTS, |d| {
                if matches!(d.name, "Retail" | "Operations" | "Customer Support") {
                    d.weight * 4
                } else {
                    d.weight
                }
            });
            let ci = weighted_index(rng, CITIES, |c| c.weight);
            (di, ci)
        }
    };
    let is_lab = forced_lab || (owner.is_none() && platform == "windows" && rng.random_bool(0.005));
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
    let object_id = guid(rng);
    let device_id = guid(rng);
    let managed_id = guid(rng);
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
    let sync = fleet.base
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
        physical.push(format!("[ZTDID]{}", guid(rng)));
        physical.push("[OrderId]Contoso-Standard".to_string());
    }
    physical.push(format!("[USER-HWID]{device_id}:{}", rng.random::<u32>()));
    let serial = format!("{:X}", rng.random::<u64>() & 0xFF_FFFF_FFFF);
    let sku = (platform == "windows").then(|| {
        if rng.random_bool(0.9) {
            "Enterprise"
        } else {
            "Professional"
        }
    });
    let compliant = rng.random_bool(0.93);
    Device {
        name,
        platform,
        model,
        build,
        owner,
        primary,
        personal,
        is_lab,
        dept: di,
        city: ci,
        object_id,
        device_id,
        managed_id,
        trust,
        comanaged,
        arm,
        sync,
        enrollment,
        category,
        saw,
        physical,
        serial,
        sku,
        compliant,
    }
}

/// The device as Intune lists it (`managedDevices`).
fn managed_record(dev: &Device, users: &[UserInfo]) -> Value {
    let platform = dev.platform;
    json!({
        "id": dev.managed_id,
        "deviceName": dev.name,
        "azureADDeviceId": dev.device_id,
        "operatingSystem": dev.model.os,
        "osVersion": dev.build,
        "model": dev.model.model,
        "manufacturer": dev.model.manufacturer,
        "managedDeviceOwnerType": if dev.personal { "personal" } else { "company" },
        "joinType": match dev.trust { "AzureAd" => "azureADJoined", "ServerAd" => "hybridAzureADJoined", _ => "azureADRegistered" },
        "enrollmentProfileName": dev.enrollment,
        "deviceCategoryDisplayName": dev.category,
        "skuFamily": dev.sku,
        "processorArchitecture": if platform == "windows" || platform == "macOS" { Some(if dev.arm { "arm64" } else { "x64" }) } else { None },
        "userId": dev.owner.map(|u| users[u].id.as_str()),
        "lastSyncDateTime": unix_to_rfc3339(dev.sync),
        "serialNumber": dev.serial,
        "complianceState": if dev.compliant { "compliant" } else { "noncompliant" },
        "isLab": dev.is_lab,
    })
}

/// The device as Entra lists it (`devices`).
fn entra_record(dev: &Device) -> Value {
    json!({
        "id": dev.object_id,
        "deviceId": dev.device_id,
        "displayName": dev.name,
        "operatingSystem": match dev.platform { "windows" => "Windows", "macOS" => "MacMDM", "iOS" => "iPhone", "iPadOS" => "iPad", "android" => "AndroidForWork", _ => "Linux" },
        "operatingSystemVersion": dev.build,
        "trustType": match dev.trust { "AzureAd" => "AzureAd", "ServerAd" => "ServerAd", _ => "Workplace" },
        "manufacturer": dev.model.manufacturer,
        "model": dev.model.model,
        "accountEnabled": true,
        "physicalIds": dev.physical,
        "systemLabels": if dev.model.model.starts_with("Cloud PC") { vec!["M365Managed"] } else { Vec::new() },
        "profileType": "RegisteredDevice",
        "extensionAttributes": {"extensionAttribute1": if dev.saw { Some("SAW") } else { None }},
        "enrollmentProfileName": dev.enrollment,
        "deviceOwnership": if dev.personal { "Personal" } else { "Company" },
        "managementType": "MDM",
        "mdmAppId": if dev.comanaged { CO_MGMT_APP } else { INTUNE_APP },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn users(n: usize) -> Vec<UserInfo> {
        (0..n)
            .map(|i| UserInfo {
                id: format!("u{i}"),
                dept: i % DEPARTMENTS.len(),
                city: i % CITIES.len(),
                it: false,
                vip: false,
            })
            .collect()
    }

    #[test]
    fn main_devices_then_phones_and_shared_ones_then_the_lab() {
        let users = users(300);
        let fleet = Fleet {
            devices: 500,
            users: &users,
            base: 1_793_491_200,
            progress: &Progress::default(),
        };
        assert_eq!(fleet.lab_tail(), 3);
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let devs: Vec<Device> = (0..500).map(|d| draw_device(&fleet, d, &mut rng)).collect();
        for (d, dev) in devs.iter().enumerate() {
            if d < 300 {
                assert_eq!(dev.owner, Some(d), "user {d}'s main device");
                assert!(dev.primary && !dev.personal);
                assert_eq!((dev.dept, dev.city), (users[d].dept, users[d].city));
                assert!(["windows", "macOS", "linux"].contains(&dev.platform));
            } else {
                assert!(!dev.primary);
                if let Some(u) = dev.owner {
                    assert!(u < 300);
                    assert!(["iOS", "android"].contains(&dev.platform), "a phone");
                }
            }
            assert_eq!(dev.sku.is_some(), dev.platform == "windows");
            assert_eq!(dev.model.platform, dev.platform);
            if dev.is_lab {
                assert!(dev.owner.is_none() && dev.platform == "windows");
                assert!(dev.name.starts_with("LAB-"));
                assert_eq!(DEPARTMENTS[dev.dept].name, "IT");
            }
        }
        assert!(devs[497..].iter().all(|d| d.is_lab), "the lab tail");
        let phones = devs[300..].iter().filter(|d| d.owner.is_some()).count();
        // 40 % of the users have a phone: 120 of the 200 other devices.
        assert!((80..=160).contains(&phones), "{phones}");
    }

    #[test]
    fn both_records_describe_the_same_device() {
        let users = users(1);
        let fleet = Fleet {
            devices: 1,
            users: &users,
            base: 1_793_491_200,
            progress: &Progress::default(),
        };
        let dev = draw_device(&fleet, 0, &mut ChaCha8Rng::seed_from_u64(1));
        let m = managed_record(&dev, &users);
        let e = entra_record(&dev);
        assert_eq!(m["azureADDeviceId"], e["deviceId"]);
        assert_eq!(m["deviceName"], e["displayName"]);
        assert_eq!(m["osVersion"], e["operatingSystemVersion"]);
        assert_eq!(m["userId"], "u0");
        assert_eq!(e["id"], dev.object_id.as_str());
    }
}
