use super::*;
use crate::model::*;
use crate::org::{DeviceKey, OrgBuilder};
use crate::settings::{LeafKind, SettingLeaf};
use crate::targeting::resolve;

fn now() -> jiff::Timestamp {
    "2026-11-24T12:00:00Z".parse().unwrap()
}

fn leaf(id: &str, value: &str) -> SettingLeaf {
    let mut l = SettingLeaf::new(id.into(), value.into());
    if id.starts_with("omauri:") {
        l.kind = LeafKind::Unverifiable;
    }
    l
}

/// A value that may be what Graph returns for an unconfigured setting.
fn doubtful(id: &str, value: &str, why: &str) -> SettingLeaf {
    SettingLeaf {
        maybe_default: Some(why.into()),
        ..leaf(id, value)
    }
}

/// A test policy with one unfiltered assignment.
fn policy(
    name: &str,
    kind: PolicyKind,
    platforms: Vec<Platform>,
    target: Target,
    settings: Vec<SettingLeaf>,
) -> Policy {
    Policy {
        id: name.into(),
        name: name.into(),
        kind,
        odata_type: "x".into(),
        platforms,
        template_family: None,
        assignments: vec![Assignment {
            target,
            filter: None,
        }],
        settings: settings.into(),
        applicability: Vec::new(),
        source: "test".into(),
        last_modified: None,
        scope_tags: Vec::new(),
    }
}

/// d0..d3 Windows, d4 macOS. Group "a" = d0..d2, "b" = d2..d3.
fn org(policies: Vec<(&str, PolicyKind, &str, Vec<SettingLeaf>)>) -> (Org, Resolution) {
    let mut b = OrgBuilder::new();
    for d in 0..5u32 {
        let r = b.device(&[DeviceKey::ObjectId(&format!("d{d}"))]);
        b.set_device(r, DeviceAttr::Name, Some(&format!("PC-{d}")));
        b.set_device(
            r,
            DeviceAttr::Platform,
            Some(if d == 4 { "macOS" } else { "windows" }),
        );
    }
    let group = |id: &str, members: &[&str]| Group {
        id: id.into(),
        name: id.into(),
        description: None,
        kind: GroupKind::Static {
            members: members
                .iter()
                .map(|m| MemberRef {
                    id: m.to_string(),
                    kind: Some(MemberKind::Device),
                })
                .collect(),
        },
    };
    b.add_group(group("a", &["d0", "d1", "d2"]));
    b.add_group(group("b", &["d2", "d3"]));
    for (name, kind, target, settings) in policies {
        let target = match target {
            "all" => Target::AllDevices,
            g => Target::Group(g.into()),
        };
        b.add_policy(policy(
            name,
            kind,
            vec![Platform::Windows],
            target,
            settings,
        ));
    }
    let o = b.finish();
    let r = resolve(&o, now());
    (o, r)
}

fn run(o: &Org, r: &Resolution, accepted: &[Acceptance]) -> ConflictReport {
    let all: Vec<usize> = (0..o.policies.len()).collect();
    let proposed = vec![false; o.policies.len()];
    analyze(
        o,
        r,
        &Scope {
            policies: &all,
            proposed: &proposed,
            accepted,
            today: "2026-11-24".parse().unwrap(),
        },
    )
}

use PolicyKind::{Compliance as Comp, SettingsCatalog as Cfg};

#[test]
fn configuration_values_that_differ_conflict_on_shared_devices_only() {
    let (o, r) = org(vec![
        (
            "p",
            Cfg,
            "a",
            vec![leaf("laps_complexity", "5"), leaf("laps_length", "14")],
        ),
        (
            "q",
            Cfg,
            "b",
            vec![leaf("laps_complexity", "8"), leaf("laps_length", "14")],
        ),
    ]);
    let rep = run(&o, &r, &[]);
    assert_eq!(
        rep.findings.len(),
        1,
        "same values never conflict: {:?}",
        rep.findings
    );
    let f = &rep.findings[0];
    assert_eq!(
        (f.kind, f.setting_id.as_str(), f.devices),
        (FindingKind::Conflict, "laps_complexity", 1)
    );
    assert_eq!(f.sample_devices, vec!["PC-2"]);
    assert_eq!(
        f.values
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str(), v.devices))
            .collect::<Vec<_>>(),
        vec![("p", "5", 1), ("q", "8", 1)]
    );
    assert_eq!(f.by_platform, vec![("windows".to_string(), 1)]);
    assert_eq!(f.by_group, vec![("a".to_string(), 1), ("b".to_string(), 1)]);
    assert_eq!(rep.blocking(), 1);
}

#[test]
fn disjoint_targets_and_unset_settings_do_not_conflict() {
    let (o, r) = org(vec![
        ("p", Cfg, "a", vec![leaf("s", "1"), leaf("only_p", "1")]),
        ("q", Cfg, "d3-only", vec![leaf("s", "2")]),
    ]);
    assert!(run(&o, &r, &[]).findings.is_empty());
    // q's group does not exist, so it reaches nobody; with "b" (d2, d3) they meet on d2.
    let (o, r) = org(vec![
        ("p", Cfg, "a", vec![leaf("s", "1")]),
        ("q", Cfg, "b", vec![leaf("s", "2")]),
    ]);
    assert_eq!(run(&o, &r, &[]).findings[0].devices, 1);
}

#[test]
fn compliance_takes_the_most_restrictive_value() {
    let (o, r) = org(vec![
        (
            "c1",
            Comp,
            "all",
            vec![
                leaf("w.passwordMinimumLength", "8"),
                leaf("w.osMaximumVersion", "10.0.26100"),
                leaf("w.bitLockerEnabled", "false"),
                leaf("w.storageRequireEncryption", "true"),
            ],
        ),
        (
            "c2",
            Comp,
            "all",
            vec![
                leaf("w.passwordMinimumLength", "12"),
                leaf("w.osMaximumVersion", "10.0.22631"),
                leaf("w.bitLockerEnabled", "true"),
                leaf("w.storageRequireEncryption", "true"),
            ],
        ),
    ]);
    let rep = run(&o, &r, &[]);
    let eff = |id: &str| {
        rep.findings
            .iter()
            .find(|f| f.setting_id == id)
            .unwrap_or_else(|| panic!("{id}: {:?}", rep.findings))
    };
    for (id, want) in [
        ("w.passwordMinimumLength", "12"),
        ("w.osMaximumVersion", "10.0.22631"),
        ("w.bitLockerEnabled", "true"),
    ] {
        let f = eff(id);
        assert_eq!(f.kind, FindingKind::MostRestrictive);
        assert_eq!(f.effective.as_deref(), Some(want), "{id}");
        // Only the Windows devices can take these policies.
        assert_eq!(f.devices, 4);
    }
    assert_eq!(rep.findings.len(), 3, "equal values are not findings");
    assert_eq!(
        rep.blocking(),
        0,
        "compliance differences are not conflicts"
    );
}

#[test]
fn compliance_wins_over_configuration() {
    let (o, r) = org(vec![
        ("c", Comp, "a", vec![leaf("s", "14")]),
        ("p", Cfg, "a", vec![leaf("s", "8")]),
    ]);
    let rep = run(&o, &r, &[]);
    assert_eq!(rep.findings.len(), 1);
    assert_eq!(rep.findings[0].kind, FindingKind::ComplianceWins);
    assert_eq!(rep.findings[0].effective.as_deref(), Some("14"));
    assert_eq!(rep.blocking(), 0);
}

#[test]
fn merged_lists_never_conflict() {
    let (o, r) = org(vec![
        (
            "p",
            Cfg,
            "all",
            vec![leaf(
                "device_vendor_msft_policy_config_defender_excludedpaths",
                "c:\\a",
            )],
        ),
        (
            "q",
            Cfg,
            "all",
            vec![leaf(
                "device_vendor_msft_policy_config_defender_excludedpaths",
                "c:\\b",
            )],
        ),
    ]);
    assert!(run(&o, &r, &[]).findings.is_empty());
}

#[test]
fn asr_rules_merge_per_rule_and_conflict_per_rule() {
    let asr = |rule: &str, v: &str| leaf(&format!("asr/asr_{rule}"), v);
    let (o, r) = org(vec![
        (
            "l2",
            Cfg,
            "all",
            vec![asr("obfuscated", "block"), asr("office", "audit")],
        ),
        (
            "other",
            Cfg,
            "all",
            vec![asr("obfuscated", "block"), asr("lsass", "warn")],
        ),
        ("audit", Cfg, "all", vec![asr("office", "block")]),
    ]);
    let rep = run(&o, &r, &[]);
    let ids: Vec<&str> = rep.findings.iter().map(|f| f.setting_id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["asr/asr_office"],
        "only the rule set differently conflicts"
    );
}

#[test]
fn a_parent_choice_that_differs_is_a_conflict() {
    let (o, r) = org(vec![
        (
            "p",
            Cfg,
            "all",
            vec![leaf("backup", "1"), leaf("backup/backup_days", "30")],
        ),
        ("q", Cfg, "all", vec![leaf("backup", "2")]),
    ]);
    let rep = run(&o, &r, &[]);
    assert_eq!(
        rep.findings
            .iter()
            .map(|f| f.setting_id.as_str())
            .collect::<Vec<_>>(),
        vec!["backup"]
    );
}

#[test]
fn overlapping_oma_uris_are_unverifiable_even_when_equal() {
    let (o, r) = org(vec![
        (
            "p",
            Cfg,
            "a",
            vec![leaf("omauri:./device/vendor/msft/policy/config/x", "1")],
        ),
        (
            "q",
            Cfg,
            "a",
            vec![leaf("omauri:./device/vendor/msft/policy/config/x", "1")],
        ),
    ]);
    let rep = run(&o, &r, &[]);
    assert_eq!(rep.findings.len(), 1);
    assert_eq!(rep.findings[0].kind, FindingKind::Unverifiable);
    assert_eq!(rep.findings[0].devices, 3);
}

#[test]
fn not_applicable_devices_are_counted() {
    let (o, r) = org(vec![("p", Cfg, "all", vec![leaf("s", "1")])]);
    let rep = run(&o, &r, &[]);
    assert_eq!(rep.not_applicable.len(), 1);
    assert_eq!(rep.not_applicable[0].devices, 1);
    assert_eq!(
        rep.not_applicable[0].by_platform,
        vec![("macOS".to_string(), 1)]
    );
}

#[test]
fn accepted_conflicts_show_as_accepted_until_they_expire() {
    let (o, r) = org(vec![
        ("p", Cfg, "all", vec![leaf("s", "1")]),
        ("q", Cfg, "all", vec![leaf("s", "2")]),
    ]);
    let accept = |expires: &str, policies: Vec<String>| Acceptance {
        setting: "s".into(),
        policies,
        reason: "pilot of the new value".into(),
        expires: expires.parse().unwrap(),
    };
    let rep = run(&o, &r, &[accept("2027-01-31", vec!["p".into()])]);
    assert_eq!(
        rep.findings.len(),
        1,
        "accepted findings are shown, never hidden"
    );
    assert!(
        rep.findings[0]
            .accepted
            .as_ref()
            .is_some_and(|a| !a.expired)
    );
    assert_eq!(rep.blocking(), 0);
    let rep = run(&o, &r, &[accept("2026-11-01", vec![])]);
    assert!(rep.findings[0].accepted.as_ref().is_some_and(|a| a.expired));
    assert_eq!(rep.blocking(), 1);
    let rep = run(&o, &r, &[accept("2027-01-31", vec!["someone else".into()])]);
    assert!(rep.findings[0].accepted.is_none());
}

#[test]
fn a_value_that_may_be_not_configured_is_never_a_conflict() {
    let lm = "windows10EndpointProtectionConfiguration.lanManagerAuthenticationLevel";
    let why = "`lmAndNltm` is the first member of enum lanManagerAuthenticationLevel, which Graph returns when the setting is not configured";
    // (policies with their value, doubtful or not) → findings (kind, values met).
    type Case<'a> = (
        Vec<(&'a str, &'a str, bool)>,
        Vec<(FindingKind, Vec<&'a str>)>,
    );
    let cases: Vec<Case<'_>> = vec![
        // The real case: a profile that leaves the level alone reads lmAndNltm.
        (
            vec![
                ("p", "lmAndNltm", true),
                ("q", "lmNtlmV2AndNotLmOrNtm", false),
            ],
            vec![(
                FindingKind::MayBeNotConfigured,
                vec!["lmAndNltm", "lmNtlmV2AndNotLmOrNtm"],
            )],
        ),
        // Both left alone, or both set to the same doubtful value: nothing.
        (
            vec![("p", "lmAndNltm", true), ("q", "lmAndNltm", true)],
            vec![],
        ),
        // Two certain values conflict; the doubtful one is reported apart.
        (
            vec![
                ("p", "lmAndNltm", true),
                ("q", "lmNtlmV2AndNotLmOrNtm", false),
                ("r", "lmAndNtlmV2", false),
            ],
            vec![
                (
                    FindingKind::Conflict,
                    vec!["lmNtlmV2AndNotLmOrNtm", "lmAndNtlmV2"],
                ),
                (
                    FindingKind::MayBeNotConfigured,
                    vec!["lmAndNltm", "lmNtlmV2AndNotLmOrNtm", "lmAndNtlmV2"],
                ),
            ],
        ),
    ];
    for (policies, want) in cases {
        let (o, r) = org(policies
            .iter()
            .map(|&(name, value, maybe)| {
                let l = if maybe {
                    doubtful(lm, value, why)
                } else {
                    leaf(lm, value)
                };
                (name, Cfg, "all", vec![l])
            })
            .collect());
        let rep = run(&o, &r, &[]);
        let got: Vec<(FindingKind, Vec<&str>)> = rep
            .findings
            .iter()
            .map(|f| (f.kind, f.values.iter().map(|v| v.value.as_str()).collect()))
            .collect();
        assert_eq!(got, want, "{policies:?}");
        assert_eq!(
            rep.blocking(),
            want.iter()
                .filter(|(k, _)| *k == FindingKind::Conflict)
                .count(),
            "only certain values block"
        );
        for f in &rep.findings {
            for v in &f.values {
                assert_eq!(v.maybe_default.is_some(), v.value == "lmAndNltm");
            }
        }
    }
}

#[test]
fn the_doubtful_finding_counts_only_devices_where_a_doubtful_value_meets() {
    // q (group a: d0..d2) and r (group b: d2, d3) conflict on d2; p (doubtful)
    // reaches only group b, so it meets r on d2 and d3 and q only on d2.
    let (o, r) = org(vec![
        ("p", Cfg, "b", vec![doubtful("s", "0", "first member")]),
        ("q", Cfg, "a", vec![leaf("s", "1")]),
        ("r", Cfg, "all", vec![leaf("s", "2")]),
    ]);
    let rep = run(&o, &r, &[]);
    let by_kind = |k: FindingKind| rep.findings.iter().find(|f| f.kind == k).unwrap();
    assert_eq!(by_kind(FindingKind::Conflict).devices, 3);
    assert_eq!(by_kind(FindingKind::MayBeNotConfigured).devices, 2);
}

#[test]
fn versions_are_equal_by_their_parts_and_ordered_numerically() {
    let v = "w.osMinimumVersion";
    let (o, r) = org(vec![
        ("c1", Comp, "all", vec![leaf(v, "18.0")]),
        ("c2", Comp, "all", vec![leaf(v, "18.0.0")]),
        ("p", Cfg, "all", vec![leaf("x.minimumOsVersion", "10.0")]),
        (
            "q",
            Cfg,
            "all",
            vec![leaf("x.minimumOsVersion", "10.0.0.0")],
        ),
    ]);
    assert!(run(&o, &r, &[]).findings.is_empty(), "18.0 is 18.0.0");
    let (o, r) = org(vec![
        ("c1", Comp, "all", vec![leaf(v, "18.9")]),
        ("c2", Comp, "all", vec![leaf(v, "18.10")]),
    ]);
    let rep = run(&o, &r, &[]);
    assert_eq!(
        rep.findings[0].effective.as_deref(),
        Some("18.10"),
        "18.10 is later than 18.9"
    );
}

#[test]
fn compliance_values_rank_from_least_to_most_restrictive() {
    // (property, a, b, the stricter)
    for (prop, a, b, want) in [
        (
            "passwordRequiredType",
            "numeric",
            "alphanumeric",
            "alphanumeric",
        ),
        (
            "passcodeRequiredType",
            "alphanumeric",
            "numeric",
            "alphanumeric",
        ),
        ("passwordRequiredType", "lowSecurityBiometric", "any", "any"),
        (
            "passwordRequiredType",
            "numericComplex",
            "alphabetic",
            "alphabetic",
        ),
        ("passwordRequiredType", "required", "numeric", "numeric"),
        (
            "workProfilePasswordRequiredType",
            "atLeastAlphanumeric",
            "alphanumericWithSymbols",
            "alphanumericWithSymbols",
        ),
        ("requiredPasswordComplexity", "medium", "low", "medium"),
        (
            "securityRequiredAndroidSafetyNetEvaluationType",
            "hardwareBacked",
            "basic",
            "hardwareBacked",
        ),
        (
            "deviceThreatProtectionRequiredSecurityLevel",
            "medium",
            "secured",
            "secured",
        ),
        (
            "gatekeeperAllowedAppSource",
            "macAppStore",
            "anywhere",
            "macAppStore",
        ),
        ("passwordMinimumLength", "8", "12", "12"),
        ("osMaximumVersion", "10.0.26100", "10.0.22631", "10.0.22631"),
        ("passwordExpirationDays", "90", "30", "30"),
        ("bitLockerEnabled", "false", "true", "true"),
        ("storageAllowed", "true", "false", "false"),
    ] {
        let id = format!("androidCompliancePolicy.{prop}");
        let (o, r) = org(vec![
            ("c1", Comp, "all", vec![leaf(&id, a)]),
            ("c2", Comp, "all", vec![leaf(&id, b)]),
        ]);
        let rep = run(&o, &r, &[]);
        assert_eq!(rep.findings.len(), 1, "{prop}");
        assert_eq!(
            (rep.findings[0].kind, rep.findings[0].effective.as_deref()),
            (FindingKind::MostRestrictive, Some(want)),
            "{prop}: {a} vs {b}"
        );
    }
}

/// A custom OMA-URI the importer keyed by the catalog id its path names.
fn custom(id: &str, value: &str) -> SettingLeaf {
    SettingLeaf {
        kind: LeafKind::Unverifiable,
        written_as: Some(format!("omauri:./{}", id.replace('_', "/"))),
        ..SettingLeaf::new(id.into(), value.into())
    }
}

#[test]
fn one_setting_meets_across_policy_types() {
    const CAM: &str = "device_vendor_msft_policy_config_camera_allowcamera";
    let comp = |v: &str| ("comp", Comp, leaf(CAM, v));
    let cat = |v: &str| ("catalog", Cfg, leaf(CAM, v));
    let oma = |name: &'static str, v: &str| (name, PolicyKind::DeviceConfiguration, custom(CAM, v));
    // (why, with the source; the policies, each reaching every device; the
    // findings as kind and the policies named, in order)
    type Case<'a> = (
        &'a str,
        Vec<(&'static str, PolicyKind, SettingLeaf)>,
        Vec<(FindingKind, Vec<&'static str>)>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "equal values are nothing (DOMAIN.md §3: different values conflict)",
            vec![oma("oma", "1"), cat("1")],
            vec![],
        ),
        (
            "an OMA-URI integer against a catalog choice option that differs: the \
             device gets both, Intune reports Conflict across profile types \
             (memdocs configuration/device-profile-troubleshoot.md)",
            vec![oma("oma", "0"), cat("1")],
            vec![(FindingKind::Conflict, vec!["oma", "catalog"])],
        ),
        (
            "ADMX-backed payloads are XML: not comparable with a choice, so \
             unverifiable, never a blocking conflict (DOMAIN.md §3, custom payloads)",
            vec![
                oma("oma", "<enabled/><data id=\"x\" value=\"1\"/>"),
                cat("1"),
            ],
            vec![(FindingKind::Unverifiable, vec!["oma", "catalog"])],
        ),
        (
            "an ADMX-backed payload switched on with no data elements is the \
             catalog's Enabled option 1 (catalog ADMX choices: Disabled _0, Enabled _1)",
            vec![oma("oma", " <Enabled/>"), cat("1")],
            vec![],
        ),
        (
            "switched off against Enabled: a conflict",
            vec![oma("oma", "<disabled/>"), cat("1")],
            vec![(FindingKind::Conflict, vec!["oma", "catalog"])],
        ),
        (
            "a string against a choice: unverifiable",
            vec![oma("oma", "Allow"), cat("1")],
            vec![(FindingKind::Unverifiable, vec!["oma", "catalog"])],
        ),
        (
            "two custom profiles on one URI stay unverifiable even when equal; \
             each still meets the catalog form on its own",
            vec![oma("oma1", "1"), oma("oma2", "0"), cat("1")],
            vec![
                (FindingKind::Conflict, vec!["oma2", "catalog"]),
                (FindingKind::Unverifiable, vec!["oma1", "oma2"]),
            ],
        ),
        (
            "a value that may be Graph's \"not configured\" is no conflict with \
             a custom payload either",
            vec![
                oma("oma", "1"),
                ("legacy", Cfg, doubtful(CAM, "0", "first enum member")),
            ],
            vec![(FindingKind::MayBeNotConfigured, vec!["oma", "legacy"])],
        ),
        (
            "compliance evaluates, a custom payload configures: not compared",
            vec![oma("oma", "0"), comp("1")],
            vec![],
        ),
        (
            "compliance and configuration sharing one identity: compliance wins \
             (DOMAIN.md §3); dormant until an importer table maps a compliance \
             property to a configuration setting (docs/conflicts.md)",
            vec![comp("1"), cat("0")],
            vec![(FindingKind::ComplianceWins, vec!["comp", "catalog"])],
        ),
    ];
    for (why, policies, want) in cases {
        let (o, r) = org(policies
            .into_iter()
            .map(|(n, k, l)| (n, k, "all", vec![l]))
            .collect());
        let rep = run(&o, &r, &[]);
        let got: Vec<(FindingKind, Vec<&str>)> = rep
            .findings
            .iter()
            .map(|f| (f.kind, f.values.iter().map(|v| v.name.as_str()).collect()))
            .collect();
        assert_eq!(got, want, "{why}");
    }
}

#[test]
fn a_finding_names_the_form_each_policy_wrote() {
    const CAM: &str = "device_vendor_msft_policy_config_camera_allowcamera";
    let (o, r) = org(vec![
        (
            "oma",
            PolicyKind::DeviceConfiguration,
            "all",
            vec![custom(CAM, "0")],
        ),
        ("catalog", Cfg, "all", vec![leaf(CAM, "1")]),
    ]);
    let rep = run(&o, &r, &[]);
    let f = &rep.findings[0];
    assert_eq!(f.setting, "Camera › Allow Camera");
    assert_eq!(
        f.values
            .iter()
            .map(|v| (v.name.as_str(), v.written_as.as_deref()))
            .collect::<Vec<_>>(),
        vec![
            (
                "oma",
                Some("omauri:./device/vendor/msft/policy/config/camera/allowcamera")
            ),
            ("catalog", None)
        ]
    );
}

/// Devices by (platform, OS version); every policy is assigned to all devices.
fn versioned(
    devices: &[(&str, Option<&str>)],
    policies: Vec<(&str, Vec<SettingLeaf>)>,
) -> (Org, Resolution) {
    let mut b = OrgBuilder::new();
    for (d, (platform, os)) in devices.iter().enumerate() {
        let r = b.device(&[DeviceKey::ObjectId(&format!("d{d}"))]);
        b.set_device(r, DeviceAttr::Platform, Some(platform));
        b.set_device(r, DeviceAttr::OsVersion, *os);
    }
    for (name, settings) in policies {
        b.add_policy(policy(name, Cfg, Vec::new(), Target::AllDevices, settings));
    }
    let o = b.finish();
    let r = resolve(&o, now());
    (o, r)
}

/// A settings-catalog setting the catalog lists for Windows 10.0.22621 and
/// later is Not applicable on older Windows devices, while the rest of the
/// policy applies (memdocs `intune/configuration/settings-catalog.md`: the
/// catalog shows each setting's supported OS versions and editions;
/// `device-profile-troubleshoot.md`: a setting a device's version does not
/// support reports Not applicable). Unknown versions and other platforms are
/// not judged.
#[test]
fn settings_the_device_version_does_not_support_are_not_applicable() {
    const ESS: &str =
        "device_vendor_msft_passportforwork_biometrics_enableesswithsupportedperipherals";
    const PROFILES: &str =
        "device_vendor_msft_accountmanagement_userprofilemanagement_deletionpolicy";
    let check = |devices: &[(&str, Option<&str>)], want: &[(&str, &str, u64)]| {
        let (o, r) = versioned(
            devices,
            vec![
                (
                    "p",
                    vec![leaf(ESS, "1"), leaf(&format!("{ESS}/child"), "2")],
                ),
                ("q", vec![leaf(PROFILES, "1"), leaf("unrestricted", "1")]),
            ],
        );
        let rep = run(&o, &r, &[]);
        let got: Vec<(&str, &str, u64)> = rep
            .settings_not_applicable
            .iter()
            .map(|s| (s.policy_id.as_str(), s.reason.as_str(), s.devices))
            .collect();
        assert_eq!(got, want, "{devices:?}");
        for s in &rep.settings_not_applicable {
            assert_eq!(
                s.setting_id,
                if s.policy_id == "p" { ESS } else { PROFILES }
            );
        }
    };
    let later = "needs Windows 10.0.22621 or later";
    check(
        &[
            ("windows", Some("10.0.19045.4291")),
            ("windows", Some("10.0.22621.3447")),
            ("windows", Some("10.0.26100.1")),
        ],
        &[("p", later, 1)],
    );
    check(
        &[
            ("windows", Some("10.0.17763.1")),
            ("windows", Some("10.0.19041")),
            ("windows", Some("10.0.22000.1")),
        ],
        &[
            ("p", later, 3),
            ("q", "needs Windows 10.0.19041 or later", 1),
        ],
    );
    // Unknown or unreadable versions, and versions of other platforms, are not judged.
    check(
        &[
            ("windows", None),
            ("windows", Some("unknown")),
            ("android", Some("9")),
            ("iOS", Some("10.0")),
        ],
        &[],
    );
    check(&[("windows", Some("10.0.22621"))], &[]);
}

#[test]
fn one_device_names_the_settings_it_cannot_take() {
    let ess = "device_vendor_msft_passportforwork_biometrics_enableesswithsupportedperipherals";
    let (o, _) = versioned(
        &[
            ("windows", Some("10.0.19045")),
            ("windows", Some("10.0.22631")),
        ],
        Vec::new(),
    );
    let leaves = vec![
        leaf(ess, "1"),
        leaf(&format!("{ess}/x"), "1"),
        leaf("other", "1"),
    ];
    assert_eq!(
        crate::applicability::settings::excluded_on(&o, &leaves, 0),
        vec![(
            ess.to_string(),
            "needs Windows 10.0.22621 or later".to_string()
        )]
    );
    assert_eq!(
        crate::applicability::settings::excluded_on(&o, &leaves, 1),
        Vec::new()
    );
}

#[test]
fn explain_names_the_settings_a_device_cannot_take() {
    let ess = "device_vendor_msft_passportforwork_biometrics_enableesswithsupportedperipherals";
    let (o, r) = versioned(
        &[
            ("windows", Some("10.0.19045")),
            ("windows", Some("10.0.22631")),
        ],
        vec![("p", vec![leaf(ess, "1"), leaf("other", "1")])],
    );
    let on = |d: u32| {
        let e = crate::explain::explain_device(&o, &r, d, None, now());
        assert_eq!(e.policies[0].status, crate::explain::Status::Included);
        e.policies[0].settings_not_applicable.clone()
    };
    assert_eq!(
        on(0),
        vec![(
            ess.to_string(),
            "needs Windows 10.0.22621 or later".to_string()
        )]
    );
    assert_eq!(on(1), Vec::new());
}

/// A setting the catalog lists for some editions only is Not applicable on
/// devices of other editions (memdocs `intune/configuration/settings-catalog.md`:
/// each setting shows the editions it applies to). Only SKUs whose family is
/// certain are judged; the reason names the part that excludes.
#[test]
fn settings_the_device_edition_does_not_support_are_not_applicable() {
    // App-V: Enterprise, Education and IoT Enterprise, 10.0.15063 and later.
    const APPV: &str = "device_vendor_msft_policy_config_appvirtualization_allowappvclient";
    let mut b = OrgBuilder::new();
    for (d, (os, sku)) in [
        ("10.0.19045", Some("Professional")),
        ("10.0.19045", Some("Enterprise")),
        ("10.0.19045", Some("ProfessionalWorkstation")),
        ("10.0.19045", None),
        ("10.0.14393", Some("Enterprise")),
        ("10.0.14393", Some("Core")),
    ]
    .iter()
    .enumerate()
    {
        let r = b.device(&[DeviceKey::ObjectId(&format!("d{d}"))]);
        b.set_device(r, DeviceAttr::Platform, Some("windows"));
        b.set_device(r, DeviceAttr::OsVersion, Some(os));
        b.set_device(r, DeviceAttr::Sku, *sku);
    }
    b.add_policy(policy(
        "p",
        Cfg,
        Vec::new(),
        Target::AllDevices,
        vec![leaf(APPV, "1")],
    ));
    let o = b.finish();
    let r = resolve(&o, now());
    let rep = run(&o, &r, &[]);
    let got: Vec<(&str, u64)> = rep
        .settings_not_applicable
        .iter()
        .map(|s| (s.reason.as_str(), s.devices))
        .collect();
    // Pro (edition), old Enterprise (version), old Home (both): 3 devices.
    assert_eq!(
        got,
        [(
            "needs Windows 10.0.15063 or later, Enterprise, Education or IoT Enterprise",
            3
        )]
    );
    let on = |d| crate::applicability::settings::excluded_on(&o, &o.policies[0].settings, d);
    let reason = |d| on(d).first().map(|(_, why)| why.clone());
    assert_eq!(
        reason(0).as_deref(),
        Some("needs Windows Enterprise, Education or IoT Enterprise")
    );
    assert_eq!(reason(1), None);
    assert_eq!(reason(2), None, "Pro for Workstations is not judged");
    assert_eq!(reason(3), None, "an unknown SKU is not judged");
    assert_eq!(
        reason(4).as_deref(),
        Some("needs Windows 10.0.15063 or later")
    );
}

/// A finding's breakdown counts All users on the devices the resolution
/// gives it: with sign-ins (`usersLoggedOn`), a device a user only signs in
/// to is reached too, not only primary users' devices.
#[test]
fn all_users_breakdown_follows_sign_ins() {
    let mut b = OrgBuilder::new();
    b.user("u0");
    let owned = b.device(&[DeviceKey::ObjectId("d0")]);
    b.set_device(owned, DeviceAttr::PrimaryUser, Some("u0"));
    let shared = b.device(&[DeviceKey::ObjectId("d1")]);
    b.add_logon(shared, "u0", None);
    for d in [owned, shared] {
        b.set_device(d, DeviceAttr::Platform, Some("windows"));
    }
    b.add_policy(policy(
        "users",
        Cfg,
        Vec::new(),
        Target::AllUsers,
        vec![leaf("s", "1")],
    ));
    b.add_policy(policy(
        "devices",
        Cfg,
        Vec::new(),
        Target::AllDevices,
        vec![leaf("s", "2")],
    ));
    let o = b.finish();
    let r = resolve(&o, now());
    assert!(r.by_signins);
    let rep = run(&o, &r, &[]);
    let f = &rep.findings[0];
    assert_eq!(f.devices, 2);
    let all_users = f.by_group.iter().find(|(g, _)| g.contains("users"));
    assert_eq!(all_users.map(|(_, n)| *n), Some(2), "{:?}", f.by_group);
}
