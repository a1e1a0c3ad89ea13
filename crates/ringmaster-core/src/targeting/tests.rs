use super::*;
use crate::explain::{Status, explain_device};
use crate::model::*;
use crate::org::{DeviceKey, OrgBuilder};

fn now() -> jiff::Timestamp {
    "2026-11-24T12:00:00Z".parse().unwrap()
}

/// Devices d0..d5 (d4 is a Mac), users u0..u2; u0 owns d0 and d1, u1 owns d2.
fn builder() -> OrgBuilder {
    let mut b = OrgBuilder::new();
    for u in 0..3 {
        b.user(&format!("u{u}"));
    }
    for d in 0..6u32 {
        let row = b.device(&[DeviceKey::ObjectId(&format!("d{d}"))]);
        b.set_device(row, DeviceAttr::Name, Some(&format!("PC-{d}")));
        b.set_device(
            row,
            DeviceAttr::Platform,
            Some(if d == 4 { "macOS" } else { "windows" }),
        );
        b.set_device(
            row,
            DeviceAttr::Model,
            Some(if d % 2 == 0 {
                "Virtual Machine"
            } else {
                "Surface"
            }),
        );
        let owner = match d {
            0 | 1 => Some("u0"),
            2 => Some("u1"),
            _ => None,
        };
        b.set_device(row, DeviceAttr::PrimaryUser, owner);
    }
    b
}

fn stat(id: &str, members: &[&str]) -> Group {
    Group {
        id: id.into(),
        name: id.into(),
        description: None,
        kind: GroupKind::Static {
            members: members
                .iter()
                .map(|m| MemberRef {
                    id: m.to_string(),
                    kind: None,
                })
                .collect(),
        },
    }
}

fn dynamic(id: &str, rule: &str) -> Group {
    Group {
        id: id.into(),
        name: id.into(),
        description: None,
        kind: GroupKind::Dynamic { rule: rule.into() },
    }
}

fn filter(id: &str, rule: &str) -> Filter {
    Filter {
        id: id.into(),
        name: id.into(),
        platform: Some("windows10AndLater".into()),
        rule: rule.into(),
        for_apps: false,
    }
}

fn policy(id: &str, assignments: Vec<Assignment>) -> Policy {
    Policy {
        id: id.into(),
        name: id.into(),
        kind: PolicyKind::SettingsCatalog,
        odata_type: "deviceManagementConfigurationPolicy".into(),
        platforms: vec![Platform::Windows],
        template_family: None,
        assignments,
        settings: Vec::new().into(),
        applicability: Vec::new(),
        source: "test".into(),
        last_modified: None,
        scope_tags: Vec::new(),
    }
}

fn inc(g: &str) -> Assignment {
    Assignment {
        target: Target::Group(g.into()),
        filter: None,
    }
}
fn exc(g: &str) -> Assignment {
    Assignment {
        target: Target::ExcludeGroup(g.into()),
        filter: None,
    }
}
fn with(mut a: Assignment, f: &str, mode: FilterMode) -> Assignment {
    a.filter = Some(AssignmentFilter {
        filter_id: f.into(),
        mode,
    });
    a
}

fn devices(r: &Resolution, p: usize) -> Vec<u32> {
    r.policies[p].devices.iter().collect()
}

/// Resolves, and checks that explain agrees with the bitmaps for every device and policy.
fn resolve_checked(org: &Org) -> Resolution {
    let r = resolve(org, now());
    for d in 0..org.devices.rows {
        let e = explain_device(org, &r, d, None, now());
        for (p, pe) in e.policies.iter().enumerate() {
            let reached = r.policies[p].devices.contains(d);
            let want = match (reached, r.policies[p].not_applicable.contains(d)) {
                (true, true) => pe.status == Status::NotApplicable,
                (true, false) => pe.status == Status::Included,
                (false, _) => matches!(pe.status, Status::Excluded | Status::NotTargeted),
            };
            assert!(
                want,
                "explain says {:?} ({}) for device {d} policy {p}, bitmap says {reached}",
                pe.status, pe.reason
            );
        }
    }
    r
}

/// Clustered rows are renumbered, and every answer by device id stays the same.
#[test]
fn clustered_rows_change_numbers_not_answers() {
    let build = |cluster: bool| {
        let mut b = builder();
        let row = b.device(&[DeviceKey::ObjectId("d1")]);
        b.set_device_multi(row, DeviceMulti::PhysicalIds, ["[ZTDID]:one"]);
        // Sign-ins on devices that move: u2 on d3 and d5, u1 on d0.
        let at: jiff::Timestamp = "2026-11-20T08:15:00Z".parse().unwrap();
        for (d, u) in [("d3", "u2"), ("d5", "u2"), ("d0", "u1")] {
            let row = b.device(&[DeviceKey::ObjectId(d)]);
            b.add_logon(row, u, Some(at));
        }
        // A site listed before another, each out of device order; a user group.
        b.add_group(stat("site-late", &["d5", "d3"]));
        b.add_group(stat("owners", &["u1"]));
        b.add_group(stat("site-early", &["d1", "d0"]));
        b.add_filter(filter("vm", r#"(device.model -eq "Virtual Machine")"#));
        b.add_policy(policy("p-late", vec![inc("site-late"), exc("owners")]));
        b.add_policy(policy("p-owners", vec![inc("owners"), inc("site-early")]));
        b.add_group(stat("u2-only", &["u2"]));
        b.add_policy(policy("p-signed-in", vec![inc("u2-only")]));
        b.add_policy(policy(
            "p-filtered",
            vec![with(
                Assignment {
                    target: Target::AllDevices,
                    filter: None,
                },
                "vm",
                FilterMode::Include,
            )],
        ));
        if cluster {
            b.cluster_devices();
        }
        b.finish()
    };
    let (plain, clustered) = (build(false), build(true));
    fn names(org: &Org) -> Vec<&str> {
        (0..org.devices.rows)
            .map(|d| org.device(DeviceAttr::Name, d).unwrap_or(""))
            .collect()
    }
    // The first group's devices, then the user group's, then the second
    // group's; then the rest, those with a user (and so a place) first.
    assert_eq!(
        names(&clustered),
        ["PC-3", "PC-5", "PC-2", "PC-0", "PC-1", "PC-4"]
    );
    assert_eq!(
        names(&plain),
        ["PC-0", "PC-1", "PC-2", "PC-3", "PC-4", "PC-5"]
    );
    let by_id = |org: &Org, rows: &RoaringBitmap| -> Vec<String> {
        let mut v: Vec<String> = rows
            .iter()
            .map(|d| org.device_id(d).unwrap_or("").to_string())
            .collect();
        v.sort();
        v
    };
    let (rp, rc) = (resolve_checked(&plain), resolve_checked(&clustered));
    for p in 0..plain.policies.len() {
        assert_eq!(
            by_id(&plain, &rp.policies[p].devices),
            by_id(&clustered, &rc.policies[p].devices)
        );
        assert_eq!(
            by_id(&plain, &rp.policies[p].not_applicable),
            by_id(&clustered, &rc.policies[p].not_applicable)
        );
    }
    for d in 0..plain.devices.rows {
        let id = plain.device_id(d).unwrap_or("");
        let c = clustered
            .device_by_object_id(id)
            .expect("every device is kept");
        for attr in [DeviceAttr::Name, DeviceAttr::Model, DeviceAttr::Platform] {
            assert_eq!(plain.device(attr, d), clustered.device(attr, c));
        }
        assert_eq!(
            plain.device_user[d as usize], clustered.device_user[c as usize],
            "primary user of {id}"
        );
        let ids = |org: &Org, row: u32| -> Vec<String> {
            (org.devices.multi[DeviceMulti::PhysicalIds.index()].values(row))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(ids(&plain, d), ids(&clustered, c));
        let logons = |org: &Org, row: u32| -> Vec<(String, Option<jiff::Timestamp>)> {
            org.device_logons(row)
                .map(|(u, t)| (org.user_label(u), t))
                .collect()
        };
        assert_eq!(logons(&plain, d), logons(&clustered, c), "sign-ins of {id}");
    }
    for u in 0..plain.users.rows {
        let (p, c) = (plain.user_signins(u), clustered.user_signins(u));
        assert_eq!(
            by_id(&plain, &p.iter().copied().collect()),
            by_id(&clustered, &c.iter().copied().collect())
        );
        assert!(c.is_sorted(), "user {u}'s devices stay sorted");
    }
    let u2 = plain.user_by_id("u2").unwrap();
    assert_eq!(plain.user_signins(u2).len(), 2);
}

#[test]
fn exclusion_beats_inclusion() {
    let mut b = builder();
    b.add_group(stat("all", &["d0", "d1", "d2", "d3"]));
    b.add_group(stat("vip", &["d1"]));
    b.add_policy(policy("p", vec![inc("all"), exc("vip")]));
    let org = b.finish();
    let r = resolve_checked(&org);
    assert_eq!(devices(&r, 0), vec![0, 2, 3]);
    let e = explain_device(&org, &r, 1, None, now());
    assert_eq!(e.policies[0].status, Status::Excluded);
    assert!(
        e.policies[0].reason.contains("exclusion beats inclusion"),
        "{}",
        e.policies[0].reason
    );
}

#[test]
fn user_targeting_follows_users_to_their_devices() {
    let mut b = builder();
    b.add_group(stat("sales-users", &["u0", "u1"]));
    b.add_group(stat("u1-only", &["u1"]));
    b.add_policy(policy("p", vec![inc("sales-users"), exc("u1-only")]));
    b.add_policy(policy(
        "all-users",
        vec![Assignment {
            target: Target::AllUsers,
            filter: None,
        }],
    ));
    b.add_policy(policy(
        "all-devices",
        vec![Assignment {
            target: Target::AllDevices,
            filter: None,
        }],
    ));
    let org = b.finish();
    let r = resolve_checked(&org);
    assert_eq!(devices(&r, 0), vec![0, 1]);
    assert_eq!(r.policies[0].users.iter().collect::<Vec<_>>(), vec![0]);
    // All users reaches the devices that have a primary user.
    assert_eq!(devices(&r, 1), vec![0, 1, 2]);
    assert_eq!(devices(&r, 2), vec![0, 1, 2, 3, 4, 5]);
    // ...and the Mac is NotApplicable to a Windows policy.
    assert_eq!(
        r.policies[2].not_applicable.iter().collect::<Vec<_>>(),
        vec![4]
    );
    assert_eq!(r.policies[2].applicable().len(), 5);
}

#[test]
fn nested_groups_are_transitive_and_cycles_are_reported() {
    let mut b = builder();
    b.add_group(stat("top", &["mid"]));
    b.add_group(stat("mid", &["leaf", "d5"]));
    b.add_group(stat("leaf", &["d3", "u1"]));
    b.add_group(stat("a", &["b", "d0"]));
    b.add_group(stat("b", &["a", "d1"]));
    b.add_policy(policy("p", vec![inc("top")]));
    b.add_policy(policy("q", vec![inc("a")]));
    let org = b.finish();
    let r = resolve_checked(&org);
    assert_eq!(r.group_devices[0].iter().collect::<Vec<_>>(), vec![3, 5]);
    assert_eq!(r.group_users[0].iter().collect::<Vec<_>>(), vec![1]);
    assert_eq!(devices(&r, 0), vec![2, 3, 5]);
    assert_eq!(r.cycles.len(), 1);
    assert_eq!(r.group_devices[3], r.group_devices[4]);
    assert_eq!(devices(&r, 1), vec![0, 1]);
    assert!(
        r.diagnostics
            .iter()
            .any(|d| d.message.contains("nesting cycle"))
    );
    let e = explain_device(&org, &r, 3, None, now());
    let via = &e.policies[0].assignments[0].via;
    assert_eq!(via[0], "group 'top' contains group 'mid'");
    assert_eq!(via[1], "group 'mid' contains group 'leaf'");
    assert_eq!(via[2], "group 'leaf' has it as a direct member");
}

#[test]
fn dynamic_groups_and_member_of() {
    let mut b = builder();
    b.add_group(dynamic(
        "vms",
        r#"(device.deviceModel -eq "Virtual Machine")"#,
    ));
    b.add_group(dynamic(
        "vm-or-5",
        r#"device.memberOf -any (group.objectId -in ["vms"]) -or device.displayName -eq "PC-5""#,
    ));
    b.add_group(dynamic("broken", r#"(device.deviceModel -eq "x""#));
    b.add_policy(policy("p", vec![inc("vm-or-5")]));
    let org = b.finish();
    let r = resolve_checked(&org);
    assert_eq!(r.group_devices[0].iter().collect::<Vec<_>>(), vec![0, 2, 4]);
    assert_eq!(
        r.group_devices[1].iter().collect::<Vec<_>>(),
        vec![0, 2, 4, 5]
    );
    assert!(
        r.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error && d.subject == "group 'broken'")
    );
    // The explanation of a memberOf rule sees the resolved groups.
    let e = explain_device(&org, &r, 0, None, now());
    let via = e.policies[0].assignments[0].via.join(" ");
    assert!(
        via.contains("→ true (device.memberOf = member of vms)"),
        "{via}"
    );
}

#[test]
fn filter_precedence_exclude_then_none_then_include() {
    let mut b = builder();
    b.add_group(stat("g1", &["d0", "d1", "d2"]));
    b.add_group(stat("g2", &["d0", "d1", "d3"]));
    b.add_group(stat("g3", &["d2", "d3"]));
    b.add_filter(filter("vm", r#"(device.model -eq "Virtual Machine")"#));
    b.add_filter(filter("pc3", r#"(device.deviceName -eq "PC-3")"#));
    // Exclude filter on g1 beats the unfiltered assignment on g2 for d0 and d1.
    b.add_policy(policy(
        "ex-vs-none",
        vec![with(inc("g1"), "vm", FilterMode::Exclude), inc("g2")],
    ));
    // No filter beats an include filter: d1 is in g2 unfiltered, in g1 with an include filter it fails.
    b.add_policy(policy(
        "none-vs-inc",
        vec![with(inc("g1"), "vm", FilterMode::Include), inc("g2")],
    ));
    // Same-mode include filters OR: d2 matches vm through g1, d3 matches pc3 through g3.
    b.add_policy(policy(
        "inc-or",
        vec![
            with(inc("g1"), "vm", FilterMode::Include),
            with(inc("g3"), "pc3", FilterMode::Include),
        ],
    ));
    // Same-mode exclude filters OR, each on the devices its assignment reaches.
    b.add_policy(policy(
        "exc-or",
        vec![
            with(inc("g1"), "vm", FilterMode::Exclude),
            with(inc("g3"), "pc3", FilterMode::Exclude),
        ],
    ));
    let org = b.finish();
    let r = resolve_checked(&org);
    // d0 (VM): excluded by the exclude filter even though g2 reaches it unfiltered.
    // d1 (not VM): g1's exclude filter does not match: included. d3: g2 unfiltered.
    assert_eq!(devices(&r, 0), vec![1, 3]);
    assert_eq!(devices(&r, 1), vec![0, 1, 2, 3]);
    assert_eq!(devices(&r, 2), vec![0, 2, 3]);
    // d2 is a VM reached via g1 (exclude vm) and g3 (exclude pc3): vm matches, so out.
    // d3 via g3 matches pc3: out. d1 via g1 not a VM: in. d0 VM: out.
    assert_eq!(devices(&r, 3), vec![1]);
}

#[test]
fn unsupported_mixes_and_dynamic_device_exclusions_are_flagged() {
    let mut b = builder();
    b.add_group(stat("users", &["u0"]));
    b.add_group(stat("devs", &["d0"]));
    b.add_group(dynamic(
        "dyn-devs",
        r#"device.displayName -startsWith "PC-""#,
    ));
    b.add_policy(policy("mix1", vec![inc("users"), exc("devs")]));
    b.add_policy(policy("mix2", vec![inc("devs"), exc("users")]));
    b.add_policy(policy("dyn-ex", vec![inc("devs"), exc("dyn-devs")]));
    b.add_policy(policy("fine", vec![inc("devs"), exc("devs")]));
    // Also warned when the policy includes a device group as well
    // (memdocs configuration/device-profile-assign.md, "Exclude groups from a policy assignment").
    b.add_policy(policy(
        "mix3",
        vec![inc("users"), inc("dyn-devs"), exc("devs")],
    ));
    let org = b.finish();
    let r = resolve_checked(&org);
    let about = |p: &str| {
        r.diagnostics
            .iter()
            .filter(|d| d.subject == format!("policy '{p}'"))
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
    };
    assert!(
        about("mix1")
            .iter()
            .any(|m| m.starts_with("unsupported by Intune: includes user group")),
        "{:?}",
        about("mix1")
    );
    assert!(
        about("mix2")
            .iter()
            .any(|m| m.starts_with("unsupported by Intune: includes device group")),
        "{:?}",
        about("mix2")
    );
    assert!(
        about("dyn-ex")
            .iter()
            .any(|m| m.contains("dynamic device group")),
        "{:?}",
        about("dyn-ex")
    );
    assert!(about("fine").is_empty());
    assert!(
        about("mix3")
            .iter()
            .any(|m| m.starts_with("unsupported by Intune: includes user group(s) 'users'")),
        "{:?}",
        about("mix3")
    );
    // explain shows the exclusion as ineffective where it would mislead.
    let e = explain_device(&org, &r, 0, None, now());
    assert_eq!(e.policies[4].status, Status::Included);
    assert!(
        e.policies[4].reason.contains(
            "Intune does not evaluate a device group excluded from a user-group assignment"
        ),
        "{}",
        e.policies[4].reason
    );
    // Intune does not evaluate the mismatched exclusion: u0's devices keep the policy.
    assert_eq!(devices(&r, 0), vec![0, 1]);
    assert_eq!(devices(&r, 1), vec![0]);
    assert!(devices(&r, 3).is_empty());
}

#[test]
fn missing_references_are_reported_not_fatal() {
    let mut b = builder();
    b.add_group(stat("g", &["d0", "nobody"]));
    b.add_policy(policy(
        "p",
        vec![
            inc("g"),
            inc("ghost"),
            with(inc("g"), "nofilter", FilterMode::Include),
        ],
    ));
    let org = b.finish();
    let r = resolve_checked(&org);
    assert_eq!(devices(&r, 0), vec![0]);
    let msgs: Vec<_> = r.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("1 member(s) are not in the imported directory")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("ghost is not in the import")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("nofilter is not in the import")),
        "{msgs:?}"
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// A random small organization: devices d0.., users u0.. owning some,
    /// static groups with random members (devices, users, other groups,
    /// cycles allowed), two filters, and policies with random includes,
    /// exclusions and filter modes.
    #[derive(Debug, Clone)]
    struct Spec {
        devices: u32,
        owners: Vec<Option<u8>>,
        /// Users who signed in to each device.
        logons: Vec<Vec<u8>>,
        groups: Vec<Vec<(u8, u8)>>,
        policies: Vec<Vec<(u8, u8, u8)>>,
    }

    fn spec() -> impl Strategy<Value = Spec> {
        (1u32..12, 1usize..6, 1usize..4).prop_flat_map(|(devices, groups, policies)| {
            (
                Just(devices),
                proptest::collection::vec(proptest::option::of(0u8..4), devices as usize),
                proptest::collection::vec(
                    proptest::collection::vec(0u8..4, 0..3),
                    devices as usize,
                ),
                proptest::collection::vec(
                    proptest::collection::vec((0u8..3, 0u8..12), 0..5),
                    groups,
                ),
                proptest::collection::vec(
                    proptest::collection::vec((0u8..5, 0u8..6, 0u8..3), 1..5),
                    policies,
                ),
            )
                .prop_map(|(devices, owners, logons, groups, policies)| Spec {
                    devices,
                    owners,
                    logons,
                    groups,
                    policies,
                })
        })
    }

    fn build(s: &Spec, drop_exclusions: bool) -> Org {
        let mut b = OrgBuilder::new();
        for u in 0..4 {
            b.user(&format!("u{u}"));
        }
        for d in 0..s.devices {
            let row = b.device(&[DeviceKey::ObjectId(&format!("d{d}"))]);
            b.set_device(row, DeviceAttr::Name, Some(&format!("PC-{d}")));
            b.set_device(
                row,
                DeviceAttr::Platform,
                Some(if d % 5 == 4 { "macOS" } else { "windows" }),
            );
            b.set_device(
                row,
                DeviceAttr::Model,
                Some(if d % 2 == 0 {
                    "Virtual Machine"
                } else {
                    "Surface"
                }),
            );
            if let Some(u) = s.owners[d as usize] {
                b.set_device(row, DeviceAttr::PrimaryUser, Some(&format!("u{u}")));
            }
            for u in &s.logons[d as usize] {
                b.add_logon(row, &format!("u{u}"), None);
            }
        }
        for (g, members) in s.groups.iter().enumerate() {
            let ids: Vec<String> = members
                .iter()
                .map(|&(kind, n)| match kind {
                    0 => format!("d{}", n as u32 % s.devices),
                    1 => format!("u{}", n % 4),
                    _ => format!("g{}", n as usize % s.groups.len()),
                })
                .collect();
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let mut group = stat(&format!("g{g}"), &refs);
            group.name = format!("g{g}");
            b.add_group(group);
        }
        b.add_filter(filter("vm", r#"(device.model -eq "Virtual Machine")"#));
        b.add_filter(filter("pc1", r#"(device.deviceName -eq "PC-1")"#));
        for (p, assignments) in s.policies.iter().enumerate() {
            let mut list = Vec::new();
            for &(kind, g, f) in assignments {
                let gid = format!("g{}", g as usize % s.groups.len());
                let mut a = match kind {
                    0 => inc(&gid),
                    1 => Assignment {
                        target: Target::AllDevices,
                        filter: None,
                    },
                    2 => Assignment {
                        target: Target::AllUsers,
                        filter: None,
                    },
                    _ if drop_exclusions => continue,
                    _ => exc(&gid),
                };
                if !matches!(a.target, Target::ExcludeGroup(_)) {
                    a = match f {
                        1 => with(a, "vm", FilterMode::Include),
                        2 => with(a, "pc1", FilterMode::Exclude),
                        _ => a,
                    };
                }
                list.push(a);
            }
            b.add_policy(policy(&format!("p{p}"), list));
        }
        b.finish()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)))]

        #[test]
        fn targeting_invariants(s in spec()) {
            let org = build(&s, false);
            // resolve_checked asserts that explain agrees with the bitmaps.
            let r = resolve_checked(&org);
            let without = build(&s, true);
            let r2 = resolve(&without, now());
            for p in 0..org.policies.len() {
                // An exclusion never adds a device, unless it takes away an
                // assignment whose exclude filter was deciding for that device
                // (precedence is settled among the assignments that reach it).
                let exclude_filter = s.policies[p].iter().any(|&(kind, _, f)| kind < 3 && f == 2);
                if !exclude_filter {
                    prop_assert!(r.policies[p].devices.is_subset(&r2.policies[p].devices));
                }
                // Reached devices are applicable or counted NotApplicable, never both.
                prop_assert!(r.policies[p].applicable().is_disjoint(&r.policies[p].not_applicable));
                prop_assert_eq!(r.policies[p].applicable() | &r.policies[p].not_applicable, r.policies[p].devices.clone());
            }
        }
    }
}

/// memdocs `configuration/device-profile-assign.md`: Intune assigns to the
/// devices it manages; All devices is every enrolled device, and an Entra-only
/// member of a device group gets nothing.
#[test]
fn only_enrolled_devices_are_reached() {
    let mut b = builder();
    // d0..d4 have Intune records; d5 is known to Entra only.
    for d in 0..5u32 {
        b.set_device(d, DeviceAttr::ManagedId, Some(&format!("m{d}")));
    }
    b.add_group(stat("devs", &["d3", "d5"]));
    let mut all = policy("all", vec![]);
    all.platforms = vec![Platform::Windows, Platform::MacOs];
    all.assignments.push(Assignment {
        target: Target::AllDevices,
        filter: None,
    });
    b.add_policy(all);
    b.add_policy(policy("group", vec![inc("devs")]));
    let org = b.finish();
    let r = resolve_checked(&org);
    assert!(!r.enrolled_assumed);
    assert_eq!(r.enrolled.len(), 5);
    assert_eq!(devices(&r, 0), vec![0, 1, 2, 3, 4]);
    assert_eq!(devices(&r, 1), vec![3]);
    assert!(
        r.diagnostics
            .iter()
            .any(|d| d.message.starts_with("1 device(s) have no Intune record")),
        "{:?}",
        r.diagnostics
    );
    let e = explain_device(&org, &r, 5, None, now());
    assert_eq!(e.policies[1].status, Status::NotTargeted);
    assert!(
        e.policies[1].reason.contains("no Intune record"),
        "{}",
        e.policies[1].reason
    );
    // Without a single Intune record the import cannot tell: all count as enrolled.
    let org = builder().finish();
    let r = resolve(&org, now());
    assert!(r.enrolled_assumed);
    assert_eq!(r.enrolled.len(), 6);
}

/// memdocs `configuration/device-profile-assign.md`: All users is all licensed users.
#[test]
fn all_users_is_licensed_users() {
    let plan = |status: &str| {
        vec![vec![
            Some("c1ec4a95-1f05-45b3-a911-aa3fa01094f5".to_string()),
            Some(status.to_string()),
            Some("SCO".to_string()),
        ]]
    };
    let mut b = builder();
    b.set_user_records(0, UserMulti::AssignedPlans, plan("Enabled"));
    b.set_user_records(1, UserMulti::AssignedPlans, plan("Deleted"));
    let mut p = policy("users", vec![]);
    p.assignments.push(Assignment {
        target: Target::AllUsers,
        filter: None,
    });
    b.add_policy(p);
    let org = b.finish();
    let r = resolve_checked(&org);
    assert!(!r.licensed_assumed);
    assert_eq!(r.licensed.iter().collect::<Vec<_>>(), vec![0]);
    // u0's devices d0, d1; u1 (licence removed) owns d2, which is not reached.
    assert_eq!(devices(&r, 0), vec![0, 1]);
    let e = explain_device(&org, &r, 2, None, now());
    assert_eq!(e.policies[0].status, Status::NotTargeted);
    assert!(
        e.policies[0].assignments[0].via[0].contains("no enabled Intune licence"),
        "{:?}",
        e.policies[0].assignments[0].via
    );
    // Without licence data every user counts, and explain says it is assumed.
    let mut b = builder();
    let mut p = policy("users", vec![]);
    p.assignments.push(Assignment {
        target: Target::AllUsers,
        filter: None,
    });
    b.add_policy(p);
    let org = b.finish();
    let r = resolve_checked(&org);
    assert!(r.licensed_assumed);
    assert_eq!(devices(&r, 0), vec![0, 1, 2]);
}

/// Users u0..u3 and devices d0..d5. Primary users: d0 u0, d1 u1, d3 u2.
/// Sign-ins (when `logons`): d0 u1 (shared with its primary user), d2 u0 and
/// u3 (a shared device without a primary user), d3 u2 (its own primary user),
/// d4 u3. d5 has no user at all.
fn shared_org(logons: bool, policies: Vec<(&str, Vec<Assignment>)>) -> Org {
    let mut b = OrgBuilder::new();
    for u in 0..4 {
        b.user(&format!("u{u}"));
    }
    let signed_in: [&[&str]; 6] = [&["u1"], &[], &["u0", "u3"], &["u2"], &["u3"], &[]];
    for d in 0..6u32 {
        let row = b.device(&[DeviceKey::ObjectId(&format!("d{d}"))]);
        b.set_device(row, DeviceAttr::Name, Some(&format!("PC-{d}")));
        b.set_device(row, DeviceAttr::Platform, Some("windows"));
        let primary = match d {
            0 => Some("u0"),
            1 => Some("u1"),
            3 => Some("u2"),
            _ => None,
        };
        b.set_device(row, DeviceAttr::PrimaryUser, primary);
        if logons {
            for u in signed_in[d as usize] {
                b.add_logon(row, u, Some("2026-11-20T08:15:00Z".parse().unwrap()));
            }
        }
    }
    b.add_group(stat("A", &["u0"]));
    b.add_group(stat("B", &["u1"]));
    b.add_group(stat("AB", &["u0", "u1"]));
    b.add_group(stat("D", &["u3"]));
    for (name, assignments) in policies {
        b.add_policy(policy(name, assignments));
    }
    b.finish()
}

fn all_users() -> Assignment {
    Assignment {
        target: Target::AllUsers,
        filter: None,
    }
}

/// memdocs `configuration/device-profile-assign.md`: a user group's policy
/// "goes with the user when signed in to their many devices", and excluding
/// a user group removes those users ("All corporate users except the Senior
/// Management staff get the profile"), so a device another included user
/// signs in to keeps it.
#[test]
fn user_assignments_follow_sign_ins() {
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, Vec<Assignment>, &[u32], &[u32])> = vec![
        // name, assignments, devices with sign-ins, devices by primary user only
        ("A", vec![inc("A")], &[0, 2], &[0]),
        ("B", vec![inc("B")], &[0, 1], &[1]),
        ("AB-B", vec![inc("AB"), exc("B")], &[0, 2], &[0]),
        // u1 still signs in to d0, whose primary user u0 is excluded.
        ("AB-A", vec![inc("AB"), exc("A")], &[0, 1], &[1]),
        ("D", vec![inc("D")], &[2, 4], &[]),
        // d2 is used by u0 (excluded) and u3 (included): it keeps the policy.
        ("D-A", vec![inc("D"), exc("A")], &[2, 4], &[]),
        ("A-D", vec![inc("A"), exc("D")], &[0, 2], &[0]),
        ("A-AB", vec![inc("A"), exc("AB")], &[], &[]),
        ("all", vec![all_users()], &[0, 1, 2, 3, 4], &[0, 1, 3]),
        ("all-AB", vec![all_users(), exc("AB")], &[2, 3, 4], &[3]),
    ];
    let policies = || {
        cases
            .iter()
            .map(|(n, a, _, _)| (*n, a.clone()))
            .collect::<Vec<_>>()
    };
    for (logons, col) in [(true, 0), (false, 1)] {
        let org = shared_org(logons, policies());
        let r = resolve_checked(&org);
        for (p, (name, _, with, without)) in cases.iter().enumerate() {
            let want = if col == 0 { with } else { without };
            assert_eq!(
                devices(&r, p),
                want.to_vec(),
                "policy {name}, sign-ins {logons}"
            );
        }
        assert_eq!(r.by_signins, logons);
        let model: Vec<_> = r
            .diagnostics
            .iter()
            .filter(|d| d.subject == "user targeting")
            .map(|d| d.message.as_str())
            .collect();
        assert_eq!(model.len(), 1, "{model:?}");
        if logons {
            // d0 (u0, u1) and d2 (u0, u3); d3's only sign-in is its primary user.
            assert_eq!(r.shared_devices, 2);
            assert!(
                model[0].contains("2 enrolled device(s) have more than one user"),
                "{}",
                model[0]
            );
        } else {
            assert!(
                model[0].contains("primary user's devices only"),
                "{}",
                model[0]
            );
        }
    }
}

#[test]
fn explain_names_the_rule_that_reached_the_device() {
    let org = shared_org(
        true,
        vec![
            ("A", vec![inc("A")]),
            ("D-A", vec![inc("D"), exc("A")]),
            ("all", vec![all_users()]),
            ("AB-AB", vec![inc("AB"), exc("AB")]),
        ],
    );
    let r = resolve_checked(&org);
    let check = |d: u32, p: usize, status: Status, says: &str| {
        let e = explain_device(&org, &r, d, None, now());
        let pe = &e.policies[p];
        let text = format!(
            "{} | {}",
            pe.reason,
            pe.assignments
                .iter()
                .flat_map(|a| a.via.clone())
                .collect::<Vec<_>>()
                .join(" | ")
        );
        assert_eq!(pe.status, status, "device {d} policy {p}: {text}");
        assert!(text.contains(says), "device {d} policy {p}: {text}");
    };
    check(
        0,
        0,
        Status::Included,
        "its primary user u0 is a member of group 'A'",
    );
    check(
        2,
        0,
        Status::Included,
        "user u0 signed in to it on 2026-11-20 and is a member of group 'A'",
    );
    // u0 is excluded, u3 is not: the device is reached through u3.
    check(
        2,
        1,
        Status::Included,
        "user u3 signed in to it on 2026-11-20 and is a member of group 'D'",
    );
    check(
        4,
        2,
        Status::Included,
        "user u3 signed in to it on 2026-11-20 and is in All users",
    );
    check(
        5,
        2,
        Status::NotTargeted,
        "no primary user and nobody signed in to it",
    );
    check(0, 3, Status::Excluded, "group 'AB' excludes it");
    let e = explain_device(&org, &r, 0, None, now());
    assert_eq!(e.device.primary_user.as_deref(), Some("u0"));
    assert_eq!(e.device.signed_in, ["u1 (last 2026-11-20)"]);
}

/// Sign-ins name users by id: unknown ones are dropped and counted, a user
/// seen twice on a device keeps the latest time.
#[test]
fn sign_ins_are_matched_to_users_when_the_org_is_finished() {
    let mut b = OrgBuilder::new();
    let row = b.device(&[DeviceKey::ObjectId("d0")]);
    let (early, late) = (
        "2026-10-01T00:00:00Z".parse().unwrap(),
        "2026-11-01T00:00:00Z".parse().unwrap(),
    );
    b.add_logon(row, "U1", Some(early));
    b.add_logon(row, "ghost", None);
    b.add_logon(row, "u1", Some(late));
    b.add_logon(row, "u1", None);
    // The user comes after the sign-in, as files may.
    b.user("u1");
    let org = b.finish();
    assert!(org.has_logons());
    assert_eq!(org.logons_unknown_users, 1);
    assert_eq!(
        org.device_logons(0).collect::<Vec<_>>(),
        vec![(0, Some(late))]
    );
    assert_eq!(org.user_signins(0), [0]);
    let r = resolve(&org, now());
    assert!(
        r.diagnostics.iter().any(|d| d
            .message
            .contains("1 sign-in(s) (usersLoggedOn) name users not in the import")),
        "{:?}",
        r.diagnostics
    );
}
