//! Intune's documented rules, one case each over a tiny tenant, with the
//! document and section that states the rule.

use super::*;
use crate::model::*;
use crate::org::{DeviceKey, OrgBuilder};
use crate::settings::SettingLeaf;
use crate::targeting::resolve;

const DI: &str = "device_vendor_msft_policy_config_deviceinstallation_";
const AV: &str = "device_vendor_msft_policy_config_defender_";
const ANTIVIRUS: Option<&str> = Some("endpointSecurityAntivirus");

/// One policy of a case, assigned to All devices.
struct P<'a> {
    name: &'a str,
    family: Option<&'a str>,
    last_modified: Option<&'a str>,
    /// An OS edition rule that lets only Enterprise through.
    enterprise_only: bool,
    /// The platform of an include filter on the assignment (the filter matches every device).
    filter_platform: Option<&'a str>,
    settings: Vec<(String, &'a str)>,
}

fn p<'a>(name: &'a str, settings: Vec<(String, &'a str)>) -> P<'a> {
    P {
        name,
        family: None,
        last_modified: None,
        enterprise_only: false,
        filter_platform: None,
        settings,
    }
}

fn av<'a>(name: &'a str, modified: &'a str, settings: Vec<(String, &'a str)>) -> P<'a> {
    P {
        family: ANTIVIRUS,
        last_modified: Some(modified),
        ..p(name, settings)
    }
}

struct Case<'a> {
    rule: &'a str,
    /// Document and section the rule comes from.
    source: &'a str,
    policies: Vec<P<'a>>,
    /// (kind, setting id, effective value) of each finding.
    findings: Vec<(FindingKind, String, Option<&'a str>)>,
    /// Profiles applied instead of others: (applied, instead of, devices).
    rule_free: Vec<(&'a str, &'a str, u64)>,
    /// Words each resolve-time warning about filters holds.
    warnings: Vec<&'a str>,
}

/// d0, d2 Enterprise; d1 Professional; d3 edition unknown. All Windows.
fn tenant(policies: &[P<'_>]) -> (Org, Resolution) {
    let mut b = OrgBuilder::new();
    for (d, sku) in ["Enterprise", "Professional", "Enterprise", ""]
        .iter()
        .enumerate()
    {
        let r = b.device(&[DeviceKey::ObjectId(&format!("d{d}"))]);
        b.set_device(r, DeviceAttr::Name, Some(&format!("PC-{d}")));
        b.set_device(r, DeviceAttr::Platform, Some("windows"));
        b.set_device(r, DeviceAttr::Sku, (!sku.is_empty()).then_some(*sku));
    }
    for q in policies {
        let filter = q.filter_platform.map(|platform| {
            let id = format!("f-{}", q.name);
            b.add_filter(Filter {
                id: id.clone(),
                name: id.clone(),
                platform: Some(platform.into()),
                rule: r#"(device.deviceName -startsWith "PC")"#.into(),
                for_apps: false,
            });
            AssignmentFilter {
                filter_id: id,
                mode: FilterMode::Include,
            }
        });
        b.add_policy(Policy {
            id: q.name.into(),
            name: q.name.into(),
            kind: PolicyKind::SettingsCatalog,
            odata_type: "x".into(),
            platforms: vec![Platform::Windows],
            template_family: q.family.map(str::to_string),
            assignments: vec![Assignment {
                target: Target::AllDevices,
                filter,
            }],
            settings: q
                .settings
                .iter()
                .map(|(id, v)| SettingLeaf::new(id.clone(), v.to_string()))
                .collect(),
            applicability: if q.enterprise_only {
                vec![Applicability::OsEdition {
                    include: true,
                    editions: vec!["windows10Enterprise".into()],
                }]
            } else {
                Vec::new()
            },
            source: "test".into(),
            last_modified: q.last_modified.map(|t| t.parse().unwrap()),
            scope_tags: Vec::new(),
        });
    }
    let o = b.finish();
    let r = resolve(&o, "2026-11-24T12:00:00Z".parse().unwrap());
    (o, r)
}

fn check(case: Case<'_>) {
    let (o, r) = tenant(&case.policies);
    let all: Vec<usize> = (0..o.policies.len()).collect();
    let proposed = vec![false; all.len()];
    let report = analyze(
        &o,
        &r,
        &Scope {
            policies: &all,
            proposed: &proposed,
            accepted: &[],
            today: "2026-11-24".parse().unwrap(),
        },
    );
    let what = format!("{} ({})", case.rule, case.source);
    let got: Vec<(FindingKind, String, Option<&str>)> = report
        .findings
        .iter()
        .map(|f| (f.kind, f.setting_id.clone(), f.effective.as_deref()))
        .collect();
    assert_eq!(got, case.findings, "{what}");
    // A resolution names the document it follows.
    for f in &report.findings {
        let resolved = matches!(
            f.kind,
            FindingKind::MostSecure | FindingKind::NothingDelivered | FindingKind::UserScopeWins
        );
        assert_eq!(f.source.is_some(), resolved, "{what}: {:?}", f.kind);
    }
    let rule_free: Vec<(&str, &str, u64)> = report
        .rule_free_applies
        .iter()
        .map(|n| (n.applied.as_str(), n.instead_of.as_str(), n.devices))
        .collect();
    assert_eq!(rule_free, case.rule_free, "{what}");
    let warnings: Vec<&str> = r
        .diagnostics
        .iter()
        .filter(|d| d.message.contains("assignment filter"))
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(warnings.len(), case.warnings.len(), "{what}: {warnings:?}");
    for (w, want) in warnings.iter().zip(&case.warnings) {
        assert!(w.contains(want), "{what}: {w:?} lacks {want:?}");
    }
}

fn s(id: &str) -> String {
    id.to_string()
}

/// A DeviceInstallation list: the enabling choice's child.
fn di_list(setting: &str, list: &str) -> String {
    format!("{DI}{setting}/{DI}{setting}_{list}")
}

#[test]
fn documented_rules() {
    let asr = "memdocs intune/protect/endpoint-security-asr-policy.md, \"Policy merge for device control profiles\"";
    let av_doc = antivirus::SOURCE;
    let cases = vec![
        Case {
            rule: "the six DeviceInstallation lists merge across policies",
            source: asr,
            policies: vec![
                p(
                    "usb-a",
                    vec![
                        (
                            s(&format!("{DI}preventinstallationofmatchingdeviceids")),
                            "1",
                        ),
                        (
                            di_list(
                                "preventinstallationofmatchingdeviceids",
                                "deviceinstall_ids_deny_list",
                            ),
                            "USB\\VID_1",
                        ),
                        (
                            di_list(
                                "allowinstallationofmatchingdevicesetupclasses",
                                "deviceinstall_classes_allow_list",
                            ),
                            "{a}",
                        ),
                    ],
                ),
                p(
                    "usb-b",
                    vec![
                        (
                            s(&format!("{DI}preventinstallationofmatchingdeviceids")),
                            "1",
                        ),
                        (
                            di_list(
                                "preventinstallationofmatchingdeviceids",
                                "deviceinstall_ids_deny_list",
                            ),
                            "USB\\VID_2",
                        ),
                        (
                            di_list(
                                "allowinstallationofmatchingdevicesetupclasses",
                                "deviceinstall_classes_allow_list",
                            ),
                            "{b}",
                        ),
                    ],
                ),
            ],
            findings: Vec::new(),
            rule_free: Vec::new(),
            warnings: Vec::new(),
        },
        Case {
            rule: "merge covers the lists only: a differing retroactive flag still conflicts",
            source: asr,
            policies: vec![
                p(
                    "usb-a",
                    vec![(
                        di_list(
                            "preventinstallationofmatchingdeviceids",
                            "deviceinstall_ids_deny_retroactive",
                        ),
                        "1",
                    )],
                ),
                p(
                    "usb-b",
                    vec![(
                        di_list(
                            "preventinstallationofmatchingdeviceids",
                            "deviceinstall_ids_deny_retroactive",
                        ),
                        "0",
                    )],
                ),
            ],
            findings: vec![(
                FindingKind::Conflict,
                di_list(
                    "preventinstallationofmatchingdeviceids",
                    "deviceinstall_ids_deny_retroactive",
                ),
                None,
            )],
            rule_free: Vec::new(),
            warnings: Vec::new(),
        },
        Case {
            rule: "antivirus: the most secure value is delivered",
            source: av_doc,
            policies: vec![
                av(
                    "av-off",
                    "2025-03-01T00:00:00Z",
                    vec![(s(&format!("{AV}allowrealtimemonitoring")), "0")],
                ),
                av(
                    "av-on",
                    "2025-01-01T00:00:00Z",
                    vec![(s(&format!("{AV}allowrealtimemonitoring")), "1")],
                ),
            ],
            findings: vec![(
                FindingKind::MostSecure,
                s(&format!("{AV}allowrealtimemonitoring")),
                Some("1 (most secure)"),
            )],
            rule_free: Vec::new(),
            warnings: Vec::new(),
        },
        Case {
            rule: "antivirus: block is more secure than audit for network protection",
            source: av_doc,
            policies: vec![
                av(
                    "np-audit",
                    "2025-03-01T00:00:00Z",
                    vec![(s(&format!("{AV}enablenetworkprotection")), "2")],
                ),
                av(
                    "np-block",
                    "2025-01-01T00:00:00Z",
                    vec![(s(&format!("{AV}enablenetworkprotection")), "1")],
                ),
            ],
            findings: vec![(
                FindingKind::MostSecure,
                s(&format!("{AV}enablenetworkprotection")),
                Some("1 (most secure)"),
            )],
            rule_free: Vec::new(),
            warnings: Vec::new(),
        },
        Case {
            rule: "antivirus: no documented order of values, so a conflict as before",
            source: av_doc,
            policies: vec![
                av(
                    "consent-a",
                    "2025-03-01T00:00:00Z",
                    vec![(s(&format!("{AV}submitsamplesconsent")), "1")],
                ),
                av(
                    "consent-b",
                    "2025-01-01T00:00:00Z",
                    vec![(s(&format!("{AV}submitsamplesconsent")), "3")],
                ),
            ],
            findings: vec![(
                FindingKind::Conflict,
                s(&format!("{AV}submitsamplesconsent")),
                None,
            )],
            rule_free: Vec::new(),
            warnings: Vec::new(),
        },
        Case {
            rule: "antivirus rule is for antivirus policies: a settings catalog policy conflicts as before",
            source: av_doc,
            policies: vec![
                av(
                    "av-on",
                    "2025-01-01T00:00:00Z",
                    vec![(s(&format!("{AV}allowrealtimemonitoring")), "1")],
                ),
                p(
                    "catalog-off",
                    vec![(s(&format!("{AV}allowrealtimemonitoring")), "0")],
                ),
            ],
            findings: vec![(
                FindingKind::Conflict,
                s(&format!("{AV}allowrealtimemonitoring")),
                None,
            )],
            rule_free: Vec::new(),
            warnings: Vec::new(),
        },
        Case {
            rule: "a setting in user scope and device scope: user scope takes precedence",
            source: scope::USER_SCOPE_SOURCE,
            policies: vec![
                p(
                    "user",
                    vec![(s("user_vendor_msft_policy_config_x_allowfoo"), "1")],
                ),
                p(
                    "device",
                    vec![(s("device_vendor_msft_policy_config_x_allowfoo"), "0")],
                ),
            ],
            findings: vec![(
                FindingKind::UserScopeWins,
                s("device_vendor_msft_policy_config_x_allowfoo"),
                Some("1 (user scope)"),
            )],
            rule_free: Vec::new(),
            warnings: Vec::new(),
        },
        Case {
            rule: "the same value in both scopes is nothing to report",
            source: scope::USER_SCOPE_SOURCE,
            policies: vec![
                p(
                    "user",
                    vec![(s("user_vendor_msft_policy_config_x_allowfoo"), "1")],
                ),
                p(
                    "device",
                    vec![(s("device_vendor_msft_policy_config_x_allowfoo"), "1")],
                ),
            ],
            findings: Vec::new(),
            rule_free: Vec::new(),
            warnings: Vec::new(),
        },
        Case {
            rule: "identical profiles: the one without an applicability rule applies",
            source: scope::RULE_FREE_SOURCE,
            policies: vec![
                p("bitlocker", vec![(s("x_bitlocker"), "1")]),
                P {
                    enterprise_only: true,
                    ..p("bitlocker-ent", vec![(s("x_bitlocker"), "1")])
                },
                // Different settings: the rule does not speak to it.
                P {
                    enterprise_only: true,
                    ..p(
                        "other-ent",
                        vec![(s("x_bitlocker"), "1"), (s("x_more"), "1")],
                    )
                },
            ],
            findings: Vec::new(),
            // d0 and d2 are Enterprise; d3's edition is unknown, so not judged.
            rule_free: vec![("bitlocker", "bitlocker-ent", 3)],
            warnings: Vec::new(),
        },
        Case {
            rule: "a filter's platform matches its policy's",
            source: "memdocs intune/fundamentals/filters.md, \"Use a filter\"",
            policies: vec![
                P {
                    filter_platform: Some("macOS"),
                    ..p("win-with-mac-filter", vec![(s("x_a"), "1")])
                },
                P {
                    filter_platform: Some("windows10AndLater"),
                    ..p("win-with-win-filter", vec![(s("x_b"), "1")])
                },
            ],
            findings: Vec::new(),
            rule_free: Vec::new(),
            warnings: vec!["'f-win-with-mac-filter' is for macOS but the policy is for windows"],
        },
    ];
    for case in cases {
        check(case);
    }
}
