use super::*;
use crate::model::{DeviceAttr as D, DeviceMulti, UserAttr as U, UserMulti};
use crate::org::{DeviceKey, Org, OrgBuilder};
use roaring::RoaringBitmap;

mod matrix;

/// A directory extension property the fixture's users and devices carry.
const DIVISION: &str = "extension_9d98ed114c4840d298fad781915f27e4_division";

fn now() -> jiff::Timestamp {
    "2026-11-24T12:00:00Z".parse().unwrap()
}

/// Three devices: a Windows laptop, a personal Mac, and one with nothing set.
/// Three users: a Sales user, a Marketing user, and one with nothing set.
fn org() -> Org {
    let mut b = OrgBuilder::new();
    let d0 = b.device(&[DeviceKey::ObjectId("dev-0")]);
    for (a, v) in [
        (D::Name, "Scott's Device"),
        (D::Manufacturer, "Microsoft Corporation"),
        (D::Model, "Surface Laptop 5"),
        (D::Platform, "windows"),
        (D::OsVersion, "10.0.22631.3447"),
        (D::Ownership, "company"),
        (D::TrustType, "AzureAD"),
        (D::IsRooted, "false"),
        (D::AccountEnabled, "true"),
        (D::Category, "Engineering devices"),
        (D::Ext(1), "SAW"),
        (D::CpuArch, "arm64"),
        (D::ManagementType, "MDM"),
        (D::Sku, "Enterprise"),
    ] {
        b.set_device(d0, a, Some(v));
    }
    b.set_device_multi(d0, DeviceMulti::PhysicalIds, ["[ZTDID]abc", "[USER-GID]x"]);
    b.set_device_multi(d0, DeviceMulti::SystemLabels, ["M365Managed"]);
    let d1 = b.device(&[DeviceKey::ObjectId("dev-1")]);
    for (a, v) in [
        (D::Name, "MAC-001"),
        (D::Manufacturer, "Apple"),
        (D::Model, "MacBook Pro"),
        (D::Platform, "macOS"),
        (D::OsVersion, "14.4.1 (23E224)"),
        (D::Ownership, "personal"),
        (D::TrustType, "Workplace"),
        (D::IsRooted, "true"),
        (D::Category, "Ünïcode Dept"),
        (D::Sku, "Professional"),
    ] {
        b.set_device(d1, a, Some(v));
    }
    b.set_device_multi(d1, DeviceMulti::PhysicalIds, ["[USER-HWID]y"]);
    b.set_device_ext(d1, DIVISION, "Retail");
    b.device(&[DeviceKey::ObjectId("dev-2")]);
    let u0 = b.user("user-0");
    for (a, v) in [
        (U::Department, "Sales"),
        (U::JobTitle, "SDE II"),
        (U::City, "Lagos"),
        (U::Country, "NG"),
        (U::Mail, "a@contoso.com"),
        (U::EmployeeHireDate, "2026-11-24T00:00:00Z"),
        (U::Manager, "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb"),
        (U::UserType, "Member"),
        (U::AccountEnabled, "true"),
    ] {
        b.set_user(u0, a, Some(v));
    }
    b.set_user_multi(u0, UserMulti::OtherMails, ["x@fabrikam.com"]);
    b.set_user_multi(
        u0,
        UserMulti::ProxyAddresses,
        ["SMTP:a@contoso.com", "smtp:a@outlook.com"],
    );
    b.set_user_ext(u0, DIVISION, "Sales and marketing");
    b.set_user_records(
        u0,
        UserMulti::AssignedPlans,
        vec![
            vec![
                Some("efb87545-963c-4e0d-99df-69c6916d9eb0".into()),
                Some("Enabled".into()),
                None,
            ],
            vec![
                Some("c1ec4a95-1f05-45b3-a911-aa3fa01094f5".into()),
                Some("Deleted".into()),
                None,
            ],
        ],
    );
    let u1 = b.user("user-1");
    for (a, v) in [
        (U::Department, "Marketing"),
        (U::Country, "US"),
        (U::Mail, "b@Contoso.com"),
        (U::EmployeeHireDate, "2020-01-15"),
        (U::UserType, "Guest"),
    ] {
        b.set_user(u1, a, Some(v));
    }
    b.set_user_multi(u1, UserMulti::ProxyAddresses, ["SMTP:b@contoso.com"]);
    b.set_user_ext(u1, &DIVISION.to_uppercase(), "Engineering");
    b.set_user_records(
        u1,
        UserMulti::AssignedPlans,
        vec![vec![
            Some("c1ec4a95-1f05-45b3-a911-aa3fa01094f5".into()),
            Some("Enabled".into()),
            None,
        ]],
    );
    b.user("user-2");
    b.finish()
}

struct Groups(RoaringBitmap);
impl eval::GroupRows for Groups {
    fn group_rows(&self, id: &str) -> Option<&RoaringBitmap> {
        (id == "g1").then_some(&self.0)
    }
}

/// Selects with the columnar path and checks that the per-row paths agree.
fn rows(g: &str, rule: &str) -> Vec<u32> {
    let grammar = Grammar::parse(g).unwrap();
    let r = Rule::parse(grammar, rule).unwrap_or_else(|e| panic!("{}", e.render(rule)));
    let o = org();
    let groups = Groups([1u32].into_iter().collect());
    let ctx = EvalContext::new(now()).with_groups(&groups);
    let table = if r.object == Object::User {
        &o.users
    } else {
        &o.devices
    };
    let got: Vec<u32> = r.select(table, &ctx).iter().collect();
    for row in 0..table.rows {
        assert_eq!(
            r.matches(table, row, &ctx),
            got.contains(&row),
            "row path disagrees for {rule} on row {row}"
        );
        assert_eq!(
            r.trace(table, row, &ctx).result,
            got.contains(&row),
            "trace disagrees for {rule} on row {row}"
        );
    }
    got
}

#[test]
fn string_operators_on_present_missing_and_case() {
    let cases: &[(&str, &str, &[u32])] = &[
        // -eq is case-insensitive; null never equals a string.
        (
            "filter",
            r#"device.manufacturer -eq "microsoft corporation""#,
            &[0],
        ),
        ("filter", r#"device.manufacturer -ne "Apple""#, &[0, 2]),
        ("filter", r#"device.model -startsWith "mac""#, &[1]),
        (
            "entra",
            r#"device.deviceModel -notStartsWith "Mac""#,
            &[0, 2],
        ),
        ("entra", r#"device.deviceModel -endsWith "PRO""#, &[1]),
        ("entra", r#"device.deviceModel -notEndsWith "pro""#, &[0, 2]),
        ("filter", r#"device.model -contains "laptop""#, &[0]),
        ("filter", r#"device.model -notContains "laptop""#, &[1, 2]),
        ("entra", r#"device.displayName -match "^mac-\d+$""#, &[1]),
        ("entra", r#"device.displayName -notMatch "^mac""#, &[0, 2]),
        (
            "filter",
            r#"device.deviceName -in ["scott's device", "Sara's device"]"#,
            &[0],
        ),
        (
            "filter",
            r#"device.deviceName -notIn ["Scott's Device"]"#,
            &[1, 2],
        ),
        // Non-ASCII values fold case too.
        ("entra", r#"device.deviceCategory -eq "ÜNÏCODE DEPT""#, &[1]),
        ("entra", r#"device.deviceCategory -contains "ïcode""#, &[1]),
        // null and missing.
        ("entra", "device.deviceCategory -eq null", &[2]),
        ("entra", "device.deviceCategory -ne null", &[0, 1]),
        ("filter", "(device.deviceCategory -eq $Null)", &[2]),
        ("entra", r#"device.deviceCategory -eq """#, &[2]),
        ("ca", r#"device.extensionAttribute1 -ne "SAW""#, &[1, 2]),
        (
            "ca",
            r#"device.extensionAttribute1 -notIn ["SAW"]"#,
            &[1, 2],
        ),
        // Dashless and en-dash operators.
        (
            "filter",
            r#"(device.manufacturer eq "Apple") or (device.model startsWith "Surface")"#,
            &[0, 1],
        ),
        (
            "entra",
            "device.deviceModel –contains \"Book\" –and device.deviceManufacturer –eq \"Apple\"",
            &[1],
        ),
    ];
    for (g, rule, want) in cases {
        assert_eq!(rows(g, rule), *want, "{g}: {rule}");
    }
}

#[test]
fn bool_version_and_date_properties() {
    let cases: &[(&str, &str, &[u32])] = &[
        ("entra", "device.accountEnabled -eq true", &[0]),
        ("entra", "device.accountEnabled -ne true", &[1, 2]),
        ("filter", r#"(device.isRooted -eq "True")"#, &[1]),
        ("filter", "(device.isRooted -eq False)", &[0]),
        ("entra", "device.isRooted -eq null", &[2]),
        ("ca", "device.isCompliant -ne True", &[0, 1, 2]),
        // Versions compare numerically, not as text; unparsable or null never matches.
        (
            "filter",
            "(device.operatingSystemVersion -gt 10.0.22000.1000)",
            &[0, 1],
        ),
        (
            "filter",
            "(device.operatingSystemVersion -ge 10.0.22631.3447)",
            &[0, 1],
        ),
        (
            "filter",
            "(device.operatingSystemVersion -ge 10.0.22631.3448) and (device.operatingSystemVersion -lt 11)",
            &[],
        ),
        (
            "filter",
            "(device.operatingSystemVersion -lt 10.0.22631.3448)",
            &[0],
        ),
        ("filter", "(device.operatingSystemVersion -lt 10.1)", &[0]),
        (
            "filter",
            r#"(device.operatingSystemVersion -le "14.4.1")"#,
            &[0, 1],
        ),
        (
            "filter",
            r#"(device.operatingSystemVersion -ge "14.4.1")"#,
            &[1],
        ),
        (
            "filter",
            r#"(device.operatingSystemVersion -eq "10.0.22631.3447")"#,
            &[0],
        ),
        ("filter", r#"(device.osVersion -startsWith "10.0.2")"#, &[0]),
        // Dates against the injected clock.
        (
            "entra",
            "user.employeeHireDate -ge system.now -minus p1d",
            &[0],
        ),
        (
            "entra",
            "user.employeeHireDate -le system.now -minus P30D",
            &[1],
        ),
        (
            "entra",
            "user.employeeHireDate -ge system.now -plus p1d",
            &[],
        ),
        ("entra", r#"user.employeeHireDate -le "2021-01-01""#, &[1]),
    ];
    for (g, rule, want) in cases {
        assert_eq!(rows(g, rule), *want, "{g}: {rule}");
    }
}

#[test]
fn multi_valued_records_membership_and_reports() {
    let cases: &[(&str, &str, &[u32])] = &[
        (
            "entra",
            r#"device.devicePhysicalIds -any (_ -startsWith "[ZTDID]")"#,
            &[0],
        ),
        (
            "entra",
            r#"device.devicePhysicalIds -any _ -startsWith "[ztdid]""#,
            &[0],
        ),
        // -all is true for an empty list, as set logic says.
        (
            "entra",
            r#"device.devicePhysicalIDs -all (_ -notStartsWith "[ZTDID]")"#,
            &[1, 2],
        ),
        (
            "entra",
            r#"device.systemLabels -startsWith "M365Managed""#,
            &[0],
        ),
        ("entra", r#"device.systemLabels -ne "M365Managed""#, &[1, 2]),
        ("ca", r#"device.physicalIds -contains "[user-hwid]Y""#, &[1]),
        (
            "entra",
            r#"user.otherMails -any (_ -endsWith "@fabrikam.com")"#,
            &[0],
        ),
        (
            "entra",
            r#"user.assignedPlans -any (assignedPlan.servicePlanId -eq "c1ec4a95-1f05-45b3-a911-aa3fa01094f5" -and assignedPlan.capabilityStatus -eq "Enabled")"#,
            &[1],
        ),
        (
            "entra",
            r#"user.assignedPlans -all (assignedPlan.capabilityStatus -eq "Enabled")"#,
            &[1, 2],
        ),
        (
            "entra",
            "user.memberOf -any (group.objectId -in ['g1', 'g9'])",
            &[1],
        ),
        (
            "entra",
            r#"device.memberOf -any (group.objectId -in ["g1"])"#,
            &[1],
        ),
        (
            "entra",
            r#"Direct Reports for "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb""#,
            &[0],
        ),
        (
            "entra",
            r#"user.department -eq "Accounts" -and user.city -in ["Lagos", "Ibadan"]"#,
            &[],
        ),
        (
            "entra",
            r#"user.department -eq "Sales" -and user.city -in ["Lagos", "Ibadan"]"#,
            &[0],
        ),
    ];
    for (g, rule, want) in cases {
        assert_eq!(rows(g, rule), *want, "{g}: {rule}");
    }
}

/// Pairs ringmaster used to reject, evaluated as the pages describe them.
#[test]
fn newly_accepted_pairs_evaluate_as_documented() {
    let upper = DIVISION.to_uppercase();
    let cases: Vec<(&str, String, &[u32])> =
        vec![
        // Directory extension properties come from the import; names ignore case.
        (
            "entra",
            format!(r#"user.{DIVISION} -eq "sales and marketing""#),
            &[0],
        ),
        ("entra", format!(r#"user.{upper} -startsWith "eng""#), &[1]),
        (
            "entra",
            format!(r#"user.{DIVISION} -ne "Engineering""#),
            &[0, 2],
        ),
        ("entra", format!("user.{DIVISION} -eq null"), &[2]),
        (
            "entra",
            format!(r#"device.{DIVISION} -in ["retail"]"#),
            &[1],
        ),
        (
            "entra",
            format!(r#"device.{DIVISION} -notContains "tail""#),
            &[0, 2],
        ),
        // One that no record carries is null everywhere, as in the directory.
        (
            "entra",
            r#"user.extension_0123456789abcdef0123456789abcdef_site -eq "x""#.into(),
            &[],
        ),
        (
            "entra",
            r#"user.extension_0123456789abcdef0123456789abcdef_site -ne "x""#.into(),
            &[0, 1, 2],
        ),
        // Entra string collections: an operator asks about the elements;
        // -contains is a partial match of one ("not matches for items").
        (
            "entra",
            r#"user.proxyAddresses -endsWith "@contoso.com""#.into(),
            &[0, 1],
        ),
        (
            "entra",
            r#"user.proxyAddresses -notEndsWith "@outlook.com""#.into(),
            &[1, 2],
        ),
        (
            "entra",
            r#"user.proxyAddresses -any (_ -startsWith "SMTP")"#.into(),
            &[0, 1],
        ),
        (
            "entra",
            r#"user.proxyAddresses -all (_ -startsWith "SMTP:")"#.into(),
            &[0, 1, 2],
        ),
        (
            "entra",
            r#"user.proxyAddresses -match "^smtp:.*@outlook\.com$""#.into(),
            &[0],
        ),
        (
            "entra",
            r#"user.otherMails -in ["X@fabrikam.com"]"#.into(),
            &[0],
        ),
        (
            "entra",
            r#"device.systemLabels -contains "M365""#.into(),
            &[0],
        ),
        (
            "entra",
            r#"device.systemLabels -notContains "M365""#.into(),
            &[1, 2],
        ),
        // Conditional Access: -contains on a collection names a whole element.
        (
            "ca",
            r#"device.systemLabels -contains "m365managed""#.into(),
            &[0],
        ),
        ("ca", r#"device.systemLabels -contains "M365""#.into(), &[]),
        (
            "ca",
            r#"device.systemLabels -notContains "M365""#.into(),
            &[0, 1, 2],
        ),
        (
            "ca",
            r#"device.physicalIds -notContains "[ZTDID]abc""#.into(),
            &[1, 2],
        ),
        // Intune: partial operators on the SKU, negations on the OS version string.
        (
            "filter",
            r#"(device.operatingSystemSKU -startsWith "Enter")"#.into(),
            &[0],
        ),
        (
            "filter",
            r#"(device.operatingSystemSKU -notContains "Pro")"#.into(),
            &[0, 2],
        ),
        (
            "filter",
            r#"(device.osVersion -notContains "10.0")"#.into(),
            &[1, 2],
        ),
        (
            "filter",
            r#"(device.osVersion -notIn ["14.4.1 (23E224)"])"#.into(),
            &[0, 2],
        ),
        // Properties the model does not hold are null.
        (
            "filter",
            r#"(device.deviceManagementType -eq "Corporate-owned fully managed")"#.into(),
            &[],
        ),
        (
            "filter",
            r#"(device.deviceManagementType -ne "Corporate-owned fully managed")"#.into(),
            &[0, 1, 2],
        ),
        ("entra", "user.telephoneNumber -eq null".into(), &[0, 1, 2]),
        // `Unknown` ownership and join type: the import holds them as no value.
        (
            "filter",
            r#"(device.deviceOwnership -eq "Unknown") or (device.deviceTrustType -eq "Unknown")"#
                .into(),
            &[2],
        ),
        (
            "filter",
            r#"(device.deviceTrustType -in ["Unknown", "Azure AD joined"])"#.into(),
            &[0, 2],
        ),
        ("filter", r#"(device.deviceOwnership -ne "unknown")"#.into(), &[0, 1]),
        ("entra", r#"device.deviceOwnership -eq "Unknown""#.into(), &[2]),
    ];
    for (g, rule, want) in &cases {
        assert_eq!(rows(g, rule), *want, "{g}: {rule}");
    }
}

#[test]
fn unknown_is_a_known_value_not_a_warning() {
    for (g, rule) in [
        (
            "filter",
            r#"(device.deviceOwnership -eq "Unknown") or (device.deviceTrustType -eq "Unknown")"#,
        ),
        ("entra", r#"device.deviceOwnership -eq "Unknown""#),
    ] {
        let r = Rule::parse(Grammar::parse(g).unwrap(), rule).unwrap();
        assert!(r.warnings.is_empty(), "{rule}: {:?}", r.warnings);
    }
    // Conditional Access names only Personal and Company.
    let r = Rule::parse(
        Grammar::CaDeviceFilter,
        r#"device.deviceOwnership -eq "Unknown""#,
    )
    .unwrap();
    assert_eq!(r.warnings.len(), 1);
    let t = one_row(
        Grammar::IntuneAssignmentFilter,
        Object::Device,
        &[("deviceOwnership".into(), ObjValue::Str("Unknown".into()))],
    )
    .unwrap();
    let r = Rule::parse(
        Grammar::IntuneAssignmentFilter,
        "(device.deviceOwnership -eq null)",
    )
    .unwrap();
    assert!(r.matches(&t, 0, &EvalContext::new(now())));
}

#[test]
fn explanations_name_extension_properties_and_show_their_values() {
    let rule = format!(r#"user.{DIVISION} -eq "Sales and marketing""#);
    let r = Rule::parse(Grammar::EntraDynamicMembership, &rule).unwrap();
    let o = org();
    let t = r.trace(&o.users, 0, &EvalContext::new(now()));
    assert!(t.result);
    assert_eq!(t.leaves[0].property, format!("user.{DIVISION}"));
    assert_eq!(t.leaves[0].values, vec!["Sales and marketing".to_string()]);
}

#[test]
fn a_one_row_object_may_carry_extension_properties() {
    let fields = vec![
        (DIVISION.to_string(), ObjValue::Str("Retail".into())),
        ("deviceModel".to_string(), ObjValue::Str("Surface".into())),
    ];
    let t = one_row(Grammar::EntraDynamicMembership, Object::Device, &fields).unwrap();
    let ctx = EvalContext::new(now());
    for (rule, want) in [
        (format!(r#"device.{DIVISION} -eq "retail""#), true),
        (format!(r#"device.{DIVISION} -ne "retail""#), false),
    ] {
        let r = Rule::parse(Grammar::EntraDynamicMembership, &rule).unwrap();
        assert_eq!(r.matches(&t, 0, &ctx), want, "{rule}");
    }
    let list = vec![(DIVISION.to_string(), ObjValue::List(vec!["a".into()]))];
    let e = one_row(Grammar::EntraDynamicMembership, Object::Device, &list).unwrap_err();
    assert!(e.contains("takes a single string"), "{e}");
    // Conditional Access has no extension properties.
    let e = one_row(Grammar::CaDeviceFilter, Object::Device, &fields[..1]).unwrap_err();
    assert!(e.contains("is not a device property"), "{e}");
}

/// Clustering renumbers device rows; extension values move with their devices.
#[test]
fn extension_values_follow_their_devices_when_rows_are_renumbered() {
    let mut b = OrgBuilder::new();
    b.cluster_devices();
    for i in 0..40u32 {
        let row = b.device(&[DeviceKey::ObjectId(&format!("dev-{i}"))]);
        b.set_device(
            row,
            D::Platform,
            Some(["windows", "macOS"][(i % 2) as usize]),
        );
        if !i.is_multiple_of(3) {
            b.set_device_ext(row, DIVISION, &format!("site-{i}"));
        }
    }
    let o = b.finish();
    let col = o.devices.ext_column(DIVISION).unwrap();
    for row in 0..o.devices.rows {
        let id = o.device(D::EntraObjectId, row).unwrap();
        let i: u32 = id.trim_start_matches("dev-").parse().unwrap();
        let want = (!i.is_multiple_of(3)).then(|| format!("site-{i}"));
        assert_eq!(col.get(row).map(str::to_string), want, "row {row} ({id})");
    }
}

#[test]
fn precedence_is_comparison_not_and_or() {
    let cases: &[(&str, &str, &[u32])] = &[
        // and binds tighter than or.
        (
            "entra",
            r#"user.department -eq "Sales" -or user.department -eq "Marketing" -and user.country -eq "NG""#,
            &[0],
        ),
        (
            "entra",
            r#"(user.department -eq "Sales" -or user.department -eq "Marketing") -and user.country -eq "US""#,
            &[1],
        ),
        // not binds tighter than and.
        (
            "entra",
            r#"(user.department -eq "Sales") -and -not (user.jobTitle -startsWith "SDE")"#,
            &[],
        ),
        (
            "entra",
            r#"-not user.department -eq "Sales" -and user.country -eq "US""#,
            &[1],
        ),
        (
            "entra",
            r#"not (user.department -eq "Sales" -or user.department -eq "Marketing")"#,
            &[2],
        ),
    ];
    for (g, rule, want) in cases {
        assert_eq!(rows(g, rule), *want, "{g}: {rule}");
    }
}

#[test]
fn ownership_and_trust_vocabularies_differ_by_grammar() {
    assert_eq!(
        rows("entra", r#"device.deviceOwnership -eq "Company""#),
        vec![0]
    );
    assert_eq!(
        rows("filter", r#"device.deviceOwnership -eq "Corporate""#),
        vec![0]
    );
    assert_eq!(
        rows("ca", r#"device.deviceOwnership -eq "company""#),
        vec![0]
    );
    assert_eq!(
        rows(
            "filter",
            r#"device.deviceTrustType -in ["Hybrid Azure AD joined","Azure AD joined"]"#
        ),
        vec![0]
    );
    assert_eq!(
        rows("entra", r#"device.deviceTrustType -eq "Workplace""#),
        vec![1]
    );
    // A value from another grammar's vocabulary is valid but never matches: warned.
    let r = Rule::parse(
        Grammar::EntraDynamicMembership,
        r#"device.deviceOwnership -eq "Corporate""#,
    )
    .unwrap();
    assert_eq!(r.warnings.len(), 1);
    assert!(
        r.warnings[0].message.contains("never matches"),
        "{:?}",
        r.warnings
    );
    assert_eq!(
        rows("entra", r#"device.deviceOwnership -eq "Corporate""#),
        Vec::<u32>::new()
    );
    let r = Rule::parse(
        Grammar::IntuneAssignmentFilter,
        r#"device.deviceOwnership -eq "Company""#,
    )
    .unwrap();
    assert_eq!(r.warnings.len(), 1);
}

#[test]
fn app_filters_parse_and_select_no_devices() {
    assert_eq!(
        rows("filter", r#"(app.appVersion -in ["10.15.3","10.14.2"])"#),
        Vec::<u32>::new()
    );
}

fn err(g: &str, rule: &str) -> RuleError {
    match Rule::parse(Grammar::parse(g).unwrap(), rule) {
        Ok(_) => panic!("accepted: {rule}"),
        Err(e) => e,
    }
}

#[test]
fn rejected_rules_point_at_the_place() {
    // (grammar, rule, text under the caret, words in the message)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "entra",
            r#"(user.department -eq "Sales""#,
            "(",
            "never closed",
        ),
        (
            "entra",
            r#"user.department -eq "Sales")"#,
            ")",
            "closes nothing",
        ),
        (
            "entra",
            r#"user.departmnt -eq "Sales""#,
            "departmnt",
            "did you mean user.department",
        ),
        (
            "filter",
            r#"device.deviceOSType -eq "Windows""#,
            "deviceOSType",
            "unknown property",
        ),
        (
            "filter",
            r#"device.deviceOwnership -startsWith "Corp""#,
            "-startsWith",
            "not allowed for device.deviceOwnership",
        ),
        (
            "filter",
            r#"device.manufacturer -endsWith "soft""#,
            "-endsWith",
            "not allowed",
        ),
        ("ca", r#"device.model -match "x""#, "-match", "not allowed"),
        (
            "entra",
            r#"user.department -eq Sales"#,
            "Sales",
            "must be quoted",
        ),
        ("entra", r#"user.department -in []"#, "[]", "empty"),
        (
            "entra",
            r#"user.department -eq "a" -and device.deviceModel -eq "b""#,
            "device.deviceModel",
            "cannot mix",
        ),
        (
            "entra",
            r#"user.displayName -match "([a-z""#,
            "\"([a-z\"",
            "invalid regular expression",
        ),
        ("entra", "", "", "empty"),
        (
            "entra",
            r#"user.department -eq "a" user.city -eq "b""#,
            "user.city",
            "unexpected",
        ),
        (
            "entra",
            r#"user.department -eq "Sales"#,
            "\"Sales",
            "unterminated",
        ),
        (
            "entra",
            r#"user.department "Sales""#,
            "\"Sales\"",
            "unexpected",
        ),
        (
            "entra",
            r#"user.department -equals "Sales""#,
            "-equals",
            "not an operator",
        ),
        (
            "entra",
            "device.accountEnabled -eq maybe",
            "maybe",
            "true or false",
        ),
        (
            "filter",
            "(device.operatingSystemVersion -gt banana)",
            "banana",
            "not a version",
        ),
        (
            "entra",
            r#"user.department -startsWith null"#,
            "null",
            "null can only",
        ),
        (
            "entra",
            r#"group.objectId -eq "x""#,
            "group",
            "no 'group.' properties",
        ),
        (
            "ca",
            r#"user.department -eq "x""#,
            "user",
            "no 'user.' properties",
        ),
        (
            "entra",
            r#"user.assignedPlans -any (assignedPlan.nope -eq "x")"#,
            "assignedPlan.nope",
            "not a field",
        ),
        (
            "entra",
            r#"user.employeeHireDate -ge system.now -plus tomorrow"#,
            "tomorrow",
            "not a duration",
        ),
    ];
    for (g, rule, under, words) in cases {
        let e = err(g, rule);
        assert_eq!(&rule[e.span.clone()], *under, "span for {rule}: {e:?}");
        let text = format!("{} {}", e.message, e.expected.clone().unwrap_or_default());
        assert!(text.contains(words), "message for {rule}: {text}");
    }
}

#[test]
fn over_long_rules_are_rejected() {
    let one = r#"(user.department -eq "Sales") -or "#;
    let mut rule = one.repeat(3072 / one.len() + 1);
    rule.push_str(r#"(user.city -eq "x")"#);
    let e = err("entra", &rule);
    assert!(e.message.contains("at most 3072"), "{e:?}");
    // Exactly at the limit is fine when the rule is otherwise valid.
    let pad = 3072 - r#"user.city -eq """#.len();
    let at_limit = format!(r#"user.city -eq "{}""#, "x".repeat(pad));
    assert_eq!(at_limit.chars().count(), 3072);
    Rule::parse(Grammar::EntraDynamicMembership, &at_limit).unwrap();
}

#[test]
fn render_draws_a_caret_under_the_error() {
    let rule = r#"user.department -eq "a" -and (user.city -eq "b""#;
    let e = err("entra", rule);
    let text = e.render(rule);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], rule);
    assert_eq!(lines[1].find('^'), Some(rule.find('(').unwrap()));
    assert!(lines[2].starts_with("error at column 30:"), "{text}");
}

/// Reads the shared corpus in place; under CI it must be there.
fn corpus_rules() -> Option<String> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/rules.jsonl");
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("corpus missing at {}: {e}", path.display())
        }
        Err(_) => None,
    }
}

#[test]
fn every_corpus_rule_parses() {
    let Some(text) = corpus_rules() else { return };
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let g = Grammar::parse(v["grammar"].as_str().unwrap()).unwrap();
        let rule = v["rule"].as_str().unwrap();
        if let Err(e) = Rule::parse(g, rule) {
            panic!("line {}: {}", i + 1, e.render(rule));
        }
        n += 1;
    }
    assert!(n >= 100, "only {n} rules read");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("(".to_string()),
            Just(")".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just(",".to_string()),
            Just("-and".to_string()),
            Just("or".to_string()),
            Just("–not".to_string()),
            Just("-eq".to_string()),
            Just("-in".to_string()),
            Just("-any".to_string()),
            Just("_".to_string()),
            Just("null".to_string()),
            Just("system.now".to_string()),
            Just("-plus".to_string()),
            Just("device.devicePhysicalIds".to_string()),
            Just("user.assignedPlans".to_string()),
            Just("assignedPlan.servicePlanId".to_string()),
            Just("device.operatingSystemVersion".to_string()),
            Just("user.memberOf".to_string()),
            Just("group.objectId".to_string()),
            Just("Direct".to_string()),
            Just("\"x\"".to_string()),
            Just("'y".to_string()),
            "[a-zA-Z.\\-–\"'()\\[\\]_$ ]{0,8}",
        ]
    }

    /// Operands: values rows hold (in other case too), prefixes, values no
    /// row holds, non-ASCII ones.
    fn operand() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => (0u32..1500).prop_map(|k| format!("USSAL-{:07}", 4 * k)),
            3 => (0u32..1500).prop_map(|k| format!("gbeng-{:07}", 4 * k + 2)),
            3 => (0u32..1500).prop_map(|k| format!("LAB-{}", 4 * k + 3)),
            1 => Just("ussal".to_string()),
            1 => Just("US".to_string()),
            1 => Just("lab-1".to_string()),
            3 => Just("Zürich".to_string()),
            3 => Just("zÜrich kiosk".to_string()),
            1 => Just("surface pro 9".to_string()),
            1 => Just("Virtual".to_string()),
            1 => Just("10.0.2".to_string()),
            3 => Just("ünknown".to_string()),
            1 => Just("nope".to_string()),
        ]
    }

    /// The three columns as Intune filters (`entra` false) or Entra
    /// dynamic groups name them; Entra adds regular expressions.
    fn leaf(entra: bool) -> impl Strategy<Value = String> {
        let names = if entra {
            [
                "device.displayName",
                "device.deviceModel",
                "device.deviceOSVersion",
            ]
        } else {
            ["device.deviceName", "device.model", "device.osVersion"]
        };
        let prop = prop_oneof![Just(names[0]), Just(names[1]), Just(names[2])];
        let op = prop_oneof![
            Just("-eq"),
            Just("-ne"),
            Just("-startsWith"),
            Just("-notStartsWith"),
            Just("-contains"),
            Just("-notContains"),
            Just("-in"),
            Just("-notIn"),
            Just(if entra { "-match" } else { "-eq" }),
            Just(if entra { "-notMatch" } else { "-ne" }),
        ];
        (prop, op, proptest::collection::vec(operand(), 1..4)).prop_map(|(p, o, vals)| {
            let quoted: Vec<String> = vals.iter().map(|v| format!("\"{v}\"")).collect();
            if o == "-in" || o == "-notIn" {
                format!("({p} {o} [{}])", quoted.join(", "))
            } else {
                format!("({p} {o} {})", quoted[0])
            }
        })
    }

    fn rule(entra: bool) -> impl Strategy<Value = String> {
        leaf(entra).prop_recursive(2, 6, 3, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} -and {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} -or {b})")),
                inner.prop_map(|a| format!("(-not {a})")),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The whole-table path (indexes, postings, complements) and the
        /// row-by-row path give the same rows: explanations and
        /// `resolve_within` use the second, plans and conflicts the first.
        #[test]
        fn select_agrees_with_each_row(entra in any::<bool>(), text in rule(false), entra_text in rule(true)) {
            let (grammar, text) = if entra {
                (Grammar::EntraDynamicMembership, entra_text)
            } else {
                (Grammar::IntuneAssignmentFilter, text)
            };
            let r = match Rule::parse(grammar, &text) {
                Ok(r) => r,
                // Not every operator is allowed on every property.
                Err(_) => return Ok(()),
            };
            let o = indexed_org();
            let ctx = EvalContext::new(now());
            let got = r.select(&o.devices, &ctx);
            for row in 0..o.devices.rows {
                prop_assert_eq!(got.contains(row), r.matches(&o.devices, row, &ctx), "{} row {}", text, row);
            }
        }
    }

    proptest! {
        #[test]
        fn parser_never_panics_on_any_string(s in "\\PC{0,200}") {
            for g in [Grammar::EntraDynamicMembership, Grammar::IntuneAssignmentFilter, Grammar::CaDeviceFilter] {
                if let Err(e) = Rule::parse(g, &s) {
                    let _ = e.render(&s);
                    prop_assert!(e.span.start <= s.len() && e.span.end <= s.len());
                }
            }
        }

        #[test]
        fn parser_never_panics_on_rule_like_tokens(toks in proptest::collection::vec(token(), 0..24)) {
            let s = toks.join(" ");
            for g in [Grammar::EntraDynamicMembership, Grammar::IntuneAssignmentFilter, Grammar::CaDeviceFilter] {
                match Rule::parse(g, &s) {
                    Err(e) => { let _ = e.render(&s); prop_assert!(s.is_char_boundary(e.span.start)); }
                    Ok(r) => {
                        let o = org();
                        let ctx = EvalContext::new(now());
                        let t = if r.object == Object::User { &o.users } else { &o.devices };
                        let _ = r.select(t, &ctx);
                    }
                }
            }
        }
    }
}

/// Devices whose names take the sorted index (over 1,024 distinct ASCII
/// values), whose models take posting lists (one of them not ASCII), and
/// whose OS versions mix ASCII and not: every indexed path is reached.
fn indexed_org() -> &'static Org {
    static ORG: std::sync::OnceLock<Org> = std::sync::OnceLock::new();
    ORG.get_or_init(|| {
        let mut b = OrgBuilder::new();
        for i in 0..6000u32 {
            let row = b.device(&[DeviceKey::ObjectId(&format!("obj-{i}"))]);
            let name = match i % 4 {
                0 => format!("USSAL-{i:07}"),
                1 => format!("ussal-{i:07}"),
                2 => format!("GBENG-{i:07}"),
                _ => format!("LAB-{i}"),
            };
            if i % 11 != 0 {
                b.set_device(row, D::Name, Some(&name));
            }
            let platform = ["windows", "macOS", "iOS"][(i % 3) as usize];
            b.set_device(row, D::Platform, Some(platform));
            let model = [
                "Latitude 7440",
                "Surface Pro 9",
                "Virtual Machine",
                "Zürich Kiosk",
            ];
            if i % 17 != 0 {
                b.set_device(row, D::Model, Some(model[(i % 7 % 4) as usize]));
            }
            let os = ["10.0.26100.1", "10.0.19045.2", "14.7.1", "Ünknown"];
            b.set_device(row, D::OsVersion, Some(os[(i % 5 % 4) as usize]));
        }
        b.finish()
    })
}

/// Large columns take the indexed path (posting lists, sorted index): it must
/// agree with testing each row.
#[test]
fn indexed_paths_agree_with_row_evaluation() {
    let o = indexed_org();
    let ctx = EvalContext::new(now());
    for rule in [
        r#"device.deviceName -startsWith "ussal""#,
        r#"device.deviceName -eq "GBENG-0000002""#,
        r#"device.deviceName -in ["LAB-3", "lab-7", "nope"]"#,
        r#"device.deviceName -notIn ["LAB-3"]"#,
        // A value no ASCII name can equal leaves the others in the list.
        r#"device.deviceName -in ["LAB-3", "Zürich"]"#,
        r#"device.deviceName -notIn ["LAB-3", "Zürich"]"#,
        r#"device.deviceName -ne "USSAL-0000004""#,
        r#"device.model -eq "surface pro 9" -and device.deviceName -startsWith "GB""#,
        r#"device.model -ne "Virtual Machine" -or device.deviceName -contains "0000""#,
    ] {
        let r = Rule::parse(Grammar::IntuneAssignmentFilter, rule)
            .unwrap_or_else(|e| panic!("{}", e.render(rule)));
        let got = r.select(&o.devices, &ctx);
        for row in 0..o.devices.rows {
            assert_eq!(
                got.contains(row),
                r.matches(&o.devices, row, &ctx),
                "{rule} row {row}"
            );
        }
        assert!(!got.is_empty(), "{rule} selects nothing");
    }
}
