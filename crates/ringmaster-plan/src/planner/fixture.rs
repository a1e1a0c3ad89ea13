//! A small organization and plan file for the steps' unit tests.
//!
//! Devices d0..d39, each with user u<i> except the lab devices d38 and d39:
//! IT d0..d4 (IT staff), Sales d5..d19, Retail d20..d34 (users in Utrecht),
//! Executive d35..d37 (u35 a VIP). Windows, except macOS d8 and d18 and
//! iOS d28. Static device groups "All IT Devices", "All Sales Devices",
//! "All Retail Devices", "All Executive Devices", "Lab Devices" and
//! "Empty Devices". Policies: "Old LAPS" (deployed to All devices,
//! laps_complexity = 3) and "New Baseline" (new, unassigned,
//! laps_complexity = 4 and defender_cloud = 1).

use crate::spec::PlanFile;
use ringmaster_core::model::*;
use ringmaster_core::org::{DeviceKey, Org, OrgBuilder};
use ringmaster_core::settings::SettingLeaf;
use ringmaster_core::targeting::{Resolution, resolve};

pub(super) struct Fixture {
    pub org: Org,
    pub res: Resolution,
    pub proposed: Vec<bool>,
}

fn department(i: u32) -> &'static str {
    match i {
        0..=4 => "IT",
        5..=19 => "Sales",
        20..=34 => "Retail",
        _ => "Executive",
    }
}

fn static_group(name: &str, devices: std::ops::Range<u32>) -> Group {
    Group {
        id: name.to_ascii_lowercase().replace(' ', "-"),
        name: name.into(),
        description: None,
        kind: GroupKind::Static {
            members: devices
                .map(|d| MemberRef {
                    id: format!("d{d}"),
                    kind: Some(MemberKind::Device),
                })
                .collect(),
        },
    }
}

fn policy(name: &str, assignments: Vec<Assignment>, settings: &[(&str, &str)]) -> Policy {
    Policy {
        id: name.to_ascii_lowercase().replace(' ', "-"),
        name: name.into(),
        kind: PolicyKind::SettingsCatalog,
        odata_type: "deviceManagementConfigurationPolicy".into(),
        platforms: vec![Platform::Windows],
        template_family: None,
        assignments,
        settings: settings
            .iter()
            .map(|(id, v)| SettingLeaf::new(id.to_string(), v.to_string()))
            .collect(),
        applicability: Vec::new(),
        source: "fixture".into(),
        last_modified: None,
        scope_tags: Vec::new(),
    }
}

pub(super) fn fixture() -> Fixture {
    let mut b = OrgBuilder::new();
    for i in 0..38u32 {
        let u = b.user(&format!("u{i}"));
        b.set_user(u, UserAttr::Upn, Some(&format!("user{i}@example.com")));
        b.set_user(u, UserAttr::Department, Some(department(i)));
        let city = if department(i) == "Retail" {
            "Utrecht"
        } else {
            "Amsterdam"
        };
        b.set_user(u, UserAttr::City, Some(city));
        if i < 5 {
            b.set_user(u, UserAttr::IsItStaff, Some("true"));
        }
        if i == 35 {
            b.set_user(u, UserAttr::IsVip, Some("true"));
        }
    }
    for i in 0..40u32 {
        let d = b.device(&[
            DeviceKey::ObjectId(&format!("d{i}")),
            DeviceKey::ManagedId(&format!("m{i}")),
        ]);
        b.set_device(d, DeviceAttr::Name, Some(&format!("PC-{i:02}")));
        let platform = match i {
            8 | 18 => "macOS",
            28 => "iOS",
            _ => "windows",
        };
        b.set_device(d, DeviceAttr::Platform, Some(platform));
        b.set_device(d, DeviceAttr::Ownership, Some("company"));
        if i < 38 {
            b.set_device(d, DeviceAttr::PrimaryUser, Some(&format!("u{i}")));
        } else {
            b.set_device(d, DeviceAttr::IsLab, Some("true"));
        }
    }
    b.add_group(static_group("All IT Devices", 0..5));
    b.add_group(static_group("All Sales Devices", 5..20));
    b.add_group(static_group("All Retail Devices", 20..35));
    b.add_group(static_group("All Executive Devices", 35..38));
    b.add_group(static_group("Lab Devices", 38..40));
    b.add_group(static_group("Empty Devices", 0..0));
    b.add_policy(policy(
        "Old LAPS",
        vec![Assignment {
            target: Target::AllDevices,
            filter: None,
        }],
        &[("laps_complexity", "3")],
    ));
    b.add_policy(policy(
        "New Baseline",
        Vec::new(),
        &[("laps_complexity", "4"), ("defender_cloud", "1")],
    ));
    let org = b.finish();
    let res = resolve(&org, "2026-11-24T12:00:00Z".parse().unwrap());
    Fixture {
        org,
        res,
        proposed: vec![false, true],
    }
}

/// The fixture's plan file: rollout, calendar (Monday to Thursday,
/// 09:00-16:00, a freeze 2027-01-18..22), help desk (2 tickets a day, 10 per
/// 100 devices) and the groups it, sales, retail (Tuesdays and Wednesdays)
/// and execs; `rest` follows (phases, accept, alerts), after a project
/// scope phase when it has none (the file needs one).
pub(super) fn plan_file(rest: &str) -> PlanFile {
    let phases = if rest.contains("[[phases]]") {
        ""
    } else {
        "\n[[phases]]\nkind = \"project_scope\"\n"
    };
    let text = format!(
        r#"
[rollout]
id = "fixture"
name = "Fixture"
purpose = "Tests."
time_zone = "Europe/Amsterdam"
start = "2027-01-11"

[calendar]
working_days = ["mon", "tue", "wed", "thu"]
hours = "09:00-16:00"
freezes = [{{ from = "2027-01-18", to = "2027-01-22", reason = "stocktake" }}]

[help_desk]
contact = "desk@example.com"
capacity_per_day = 2
tickets_per_100_devices = 10

[sources]
org = ["org"]

[[groups]]
key = "it"
group = "All IT Devices"
willingness = "high"
business_risk = "low"

[[groups]]
key = "sales"
group = "All Sales Devices"
willingness = "medium"
business_risk = "medium"

[[groups]]
key = "retail"
group = "All Retail Devices"
willingness = "low"
business_risk = "high"
days = ["tue", "wed"]

[[groups]]
key = "execs"
group = "All Executive Devices"
willingness = "low"
business_risk = "high"
{phases}{rest}"#
    );
    crate::parse(&text).unwrap_or_else(|e| panic!("fixture plan: {e}"))
}

/// The messages of errors, for assertions.
pub(super) fn messages(errs: &[crate::PlanError]) -> Vec<&str> {
    errs.iter().map(|e| e.message.as_str()).collect()
}
