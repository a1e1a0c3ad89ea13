//! Which operators each property takes in each grammar, as Microsoft's
//! published tables say. The facts are written here from the pages, not
//! taken from `vocab.rs`, so each side checks the other.
//!
//! Sources (read 2026; the section names are the pages' own):
//! - Entra: "Manage rules for dynamic membership groups in Microsoft Entra ID"
//!   (learn.microsoft.com/entra/identity/users/groups-dynamic-membership).
//! - Entra sync: "Microsoft Entra Connect Sync: Directory extensions"
//!   (learn.microsoft.com/entra/identity/hybrid/connect/how-to-connect-sync-feature-directory-extensions).
//! - Intune: "App and device properties, operators, and rule editing when
//!   creating assignment filters" (learn.microsoft.com/mem/intune/fundamentals/filters-device-properties),
//!   the 2026-02-24 revision.
//! - CA: "Conditional Access: Filter for devices"
//!   (learn.microsoft.com/entra/identity/conditional-access/concept-condition-filters-for-devices).

use super::*;

const E_STR: &str = "Entra § Properties of type string + § Supported expression operators";
const E_BOOL: &str = "Entra § Properties of type Boolean";
const E_DATE: &str = "Entra § Properties of type date/time + § Using the -le and -ge operators";
const E_COLL: &str =
    "Entra § Properties of type string collection + § Supported expression operators";
const E_MULTI: &str = "Entra § Multi-value properties + § Using the -any and -all operators";
const E_EXT: &str = "Entra § Extension properties and custom extension properties";
const E_DEV: &str = "Entra § Rules for devices (device attributes table)";
const E_MEMBER: &str = "Entra memberOf (preview): groups-dynamic-rule-member-of";
const F_STR: &str = "Intune § Managed device properties: full value -eq -ne -in -notIn, partial -startsWith -contains -notContains";
const F_ENUM: &str = "Intune § Managed device properties: -eq -ne -in -notIn";
const F_EQ: &str = "Intune § Managed device properties: -eq and -ne";
const F_VER: &str = "Intune § Supported operators for operatingSystemVersion";
const F_APP_STR: &str = "Intune § Managed app properties: full value -eq -ne -in -notIn, partial -startsWith -contains -notContains";
const F_APP_EQ: &str = "Intune § Managed app properties: deviceManagementType, -eq and -ne";
const C_TABLE: &str = "CA § Supported operators and device properties for filters";

/// How a property's values are written, so an accepted operator gets a valid operand.
#[derive(Clone, Copy)]
enum Val {
    Str,
    Bool,
    Date,
    Version,
    /// A list of strings; `-any`/`-all` take a condition on `_`.
    Coll,
    /// `assignedPlans`: records with named fields.
    Records,
    MemberOf,
}

/// Every operator the parser knows, spelled as rules spell them.
const ALL_OPS: [&str; 18] = [
    "-eq",
    "-ne",
    "-startsWith",
    "-notStartsWith",
    "-endsWith",
    "-notEndsWith",
    "-contains",
    "-notContains",
    "-match",
    "-notMatch",
    "-in",
    "-notIn",
    "-lt",
    "-le",
    "-gt",
    "-ge",
    "-any",
    "-all",
];

const E_STRING_OPS: &str = "-eq -ne -startsWith -notStartsWith -endsWith -notEndsWith -contains -notContains -match -notMatch -in -notIn";
const E_COLL_OPS: &str = "-eq -ne -startsWith -notStartsWith -endsWith -notEndsWith -contains -notContains -match -notMatch -in -notIn -any -all";
const F_STRING_OPS: &str = "-eq -ne -in -notIn -startsWith -contains -notContains";
const F_VERSION_OPS: &str = "-eq -ne -gt -ge -lt -le";
const C_STRING_OPS: &str =
    "-eq -ne -startsWith -notStartsWith -endsWith -notEndsWith -contains -notContains -in -notIn";
const ENUM_OPS: &str = "-eq -ne -in -notIn";
const EQ_NE_OPS: &str = "-eq -ne";

/// (grammar, property, value shape, the operators the service takes, source).
/// Every other operator must be rejected.
#[rustfmt::skip]
const PROPS: &[(&str, &str, Val, &str, &str)] = &[
    // Entra, users.
    ("entra", "user.accountEnabled", Val::Bool, EQ_NE_OPS, E_BOOL),
    ("entra", "user.dirSyncEnabled", Val::Bool, EQ_NE_OPS, E_BOOL),
    ("entra", "user.employeeHireDate", Val::Date, "-eq -ne -le -ge", E_DATE),
    ("entra", "user.city", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.country", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.companyName", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.department", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.displayName", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.employeeId", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.facsimileTelephoneNumber", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.givenName", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.jobTitle", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.mail", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.mailNickName", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.mobile", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.objectId", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.onPremisesDistinguishedName", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.onPremisesSecurityIdentifier", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.passwordPolicies", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.physicalDeliveryOfficeName", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.postalCode", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.preferredLanguage", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.sipProxyAddress", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.state", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.streetAddress", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.surname", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.telephoneNumber", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.usageLocation", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.userPrincipalName", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.userType", Val::Str, E_STRING_OPS, E_STR),
    ("entra", "user.otherMails", Val::Coll, E_COLL_OPS, E_COLL),
    ("entra", "user.proxyAddresses", Val::Coll, E_COLL_OPS, E_COLL),
    ("entra", "user.assignedPlans", Val::Records, "-any -all", E_MULTI),
    ("entra", "user.memberOf", Val::MemberOf, "-any", E_MEMBER),
    ("entra", "user.extensionAttribute1", Val::Str, E_STRING_OPS, E_EXT),
    ("entra", "user.extensionAttribute15", Val::Str, E_STRING_OPS, E_EXT),
    ("entra", "user.extension_c272a57b722d4eb29bfe327874ae79cb_OfficeNumber", Val::Str, E_STRING_OPS, E_EXT),
    // Entra, devices.
    ("entra", "device.accountEnabled", Val::Bool, EQ_NE_OPS, E_DEV),
    ("entra", "device.deviceCategory", Val::Str, E_STRING_OPS, E_DEV),
    ("entra", "device.deviceId", Val::Str, E_STRING_OPS, E_DEV),
    ("entra", "device.deviceManagementAppId", Val::Str, E_STRING_OPS, E_DEV),
    ("entra", "device.deviceManufacturer", Val::Str, E_STRING_OPS, E_DEV),
    ("entra", "device.deviceModel", Val::Str, E_STRING_OPS, E_DEV),
    ("entra", "device.displayName", Val::Str, E_STRING_OPS, E_DEV),
    ("entra", "device.deviceOSType", Val::Str, E_STRING_OPS, E_DEV),
    ("entra", "device.deviceOSVersion", Val::Str, E_STRING_OPS, E_DEV),
    ("entra", "device.deviceOwnership", Val::Str, E_STRING_OPS, E_DEV),
    ("entra", "device.devicePhysicalIds", Val::Coll, E_COLL_OPS, E_DEV),
    ("entra", "device.deviceTrustType", Val::Str, E_STRING_OPS, E_DEV),
    ("entra", "device.enrollmentProfileName", Val::Str, E_STRING_OPS, E_DEV),
    ("entra", "device.extensionAttribute1", Val::Str, E_STRING_OPS, E_DEV),
    ("entra", "device.extensionAttribute15", Val::Str, E_STRING_OPS, E_DEV),
    ("entra", "device.isRooted", Val::Bool, EQ_NE_OPS, E_DEV),
    ("entra", "device.managementType", Val::Str, E_STRING_OPS, E_DEV),
    ("entra", "device.memberOf", Val::MemberOf, "-any", E_MEMBER),
    ("entra", "device.objectId", Val::Str, E_STRING_OPS, E_DEV),
    ("entra", "device.profileType", Val::Str, E_STRING_OPS, E_DEV),
    ("entra", "device.systemLabels", Val::Coll, E_COLL_OPS, E_DEV),
    // Intune assignment filters, managed devices.
    ("filter", "device.cpuArchitecture", Val::Str, ENUM_OPS, F_ENUM),
    ("filter", "device.deviceCategory", Val::Str, F_STRING_OPS, F_STR),
    ("filter", "device.deviceManagementType", Val::Str, EQ_NE_OPS, F_EQ),
    ("filter", "device.deviceName", Val::Str, F_STRING_OPS, F_STR),
    ("filter", "device.deviceOwnership", Val::Str, EQ_NE_OPS, F_EQ),
    ("filter", "device.deviceTrustType", Val::Str, ENUM_OPS, F_ENUM),
    ("filter", "device.enrollmentProfileName", Val::Str, F_STRING_OPS, F_STR),
    ("filter", "device.isRooted", Val::Bool, EQ_NE_OPS, F_EQ),
    ("filter", "device.manufacturer", Val::Str, F_STRING_OPS, F_STR),
    ("filter", "device.model", Val::Str, F_STRING_OPS, F_STR),
    ("filter", "device.operatingSystemVersion", Val::Version, F_VERSION_OPS, F_VER),
    ("filter", "device.osVersion", Val::Str, F_STRING_OPS, F_STR),
    ("filter", "device.operatingSystemSKU", Val::Str, F_STRING_OPS, F_STR),
    // Intune assignment filters, managed apps.
    ("filter", "app.appVersion", Val::Str, F_STRING_OPS, F_APP_STR),
    ("filter", "app.deviceManagementType", Val::Str, EQ_NE_OPS, F_APP_EQ),
    ("filter", "app.deviceManufacturer", Val::Str, F_STRING_OPS, F_APP_STR),
    ("filter", "app.deviceModel", Val::Str, F_STRING_OPS, F_APP_STR),
    ("filter", "app.operatingSystemVersion", Val::Version, F_VERSION_OPS, F_VER),
    ("filter", "app.osVersion", Val::Str, F_STRING_OPS, F_APP_STR),
    // Conditional Access device filters.
    ("ca", "device.deviceId", Val::Str, ENUM_OPS, C_TABLE),
    ("ca", "device.displayName", Val::Str, C_STRING_OPS, C_TABLE),
    ("ca", "device.deviceOwnership", Val::Str, EQ_NE_OPS, C_TABLE),
    ("ca", "device.enrollmentProfileName", Val::Str, C_STRING_OPS, C_TABLE),
    ("ca", "device.isCompliant", Val::Bool, EQ_NE_OPS, C_TABLE),
    ("ca", "device.manufacturer", Val::Str, C_STRING_OPS, C_TABLE),
    ("ca", "device.mdmAppId", Val::Str, ENUM_OPS, C_TABLE),
    ("ca", "device.model", Val::Str, C_STRING_OPS, C_TABLE),
    ("ca", "device.operatingSystem", Val::Str, C_STRING_OPS, C_TABLE),
    ("ca", "device.operatingSystemVersion", Val::Str, C_STRING_OPS, C_TABLE),
    ("ca", "device.physicalIds", Val::Coll, "-contains -notContains", C_TABLE),
    ("ca", "device.profileType", Val::Str, EQ_NE_OPS, C_TABLE),
    ("ca", "device.systemLabels", Val::Coll, "-contains -notContains", C_TABLE),
    ("ca", "device.trustType", Val::Str, EQ_NE_OPS, C_TABLE),
    ("ca", "device.extensionAttribute1", Val::Str, C_STRING_OPS, C_TABLE),
    ("ca", "device.extensionAttribute15", Val::Str, C_STRING_OPS, C_TABLE),
];

/// A comparison of `prop` with `op` whose operand suits both.
fn comparison(prop: &str, val: Val, op: &str) -> String {
    let operand = match (val, op) {
        (Val::MemberOf, _) => "(group.objectId -in ['g1'])",
        (Val::Records, _) => r#"(assignedPlan.capabilityStatus -eq "Enabled")"#,
        (Val::Coll, "-any" | "-all") => r#"(_ -startsWith "x")"#,
        (_, "-in" | "-notIn") => r#"["x", "y"]"#,
        (Val::Bool, _) => "true",
        (Val::Date, _) => r#""2024-01-31""#,
        (Val::Version, "-lt" | "-le" | "-gt" | "-ge") => "10.0.19045",
        (Val::Version, _) => r#""10.0.19045""#,
        _ => r#""x""#,
    };
    format!("{prop} {op} {operand}")
}

#[test]
fn operators_per_property_follow_the_published_tables() {
    let mut checked = 0;
    for (g, prop, val, allowed, source) in PROPS {
        let allowed: Vec<&str> = allowed.split_whitespace().collect();
        for op in ALL_OPS {
            let rule = comparison(prop, *val, op);
            let got = Rule::parse(Grammar::parse(g).unwrap(), &rule);
            if allowed.contains(&op) {
                if let Err(e) = got {
                    panic!(
                        "{g}: rejected, but {source} allows it:\n{}",
                        e.render(&rule)
                    );
                }
            } else {
                let e = match got {
                    Ok(_) => panic!("{g}: accepted `{rule}`, but {source} does not list {op}"),
                    Err(e) => e,
                };
                assert_eq!(&rule[e.span.clone()], op, "{g}: caret for `{rule}`");
                assert!(
                    e.message.contains("is not allowed for") && e.expected.is_some(),
                    "{g}: `{rule}`: {e:?}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, PROPS.len() * ALL_OPS.len());
}

/// A rule the service takes, or the words of the error ringmaster gives.
enum Expect {
    Accepted,
    Rejected(&'static str),
}
use Expect::{Accepted, Rejected};

/// Whole rules: the pages' own examples and the cases the table above
/// cannot show (names of extension properties, grammars without them).
#[rustfmt::skip]
const RULES: &[(&str, &str, Expect, &str)] = &[
    // Negated string operators on OS versions.
    ("filter", r#"(device.osVersion -notContains "10.0.1")"#, Accepted, F_STR),
    ("filter", r#"(device.osVersion -notIn ["10.0.19045", "10.0.22631"])"#, Accepted, F_STR),
    ("filter", r#"(device.osVersion -notStartsWith "10.0.1")"#, Rejected("-notStartsWith is not allowed for device.osVersion in Intune assignment filters"), "Intune § Supported operators: no NotStartsWith in any revision (2021-2026)"),
    ("filter", r#"(device.operatingSystemVersion -notContains "10.0")"#, Rejected("-notContains is not allowed for device.operatingSystemVersion"), F_VER),
    ("ca", r#"device.operatingSystemVersion -notStartsWith "10.0.1""#, Accepted, C_TABLE),
    ("entra", r#"device.deviceOSVersion -notStartsWith "10.0.1""#, Accepted, E_DEV),
    // Directory extension properties.
    ("entra", r#"user.extension_c272a57b722d4eb29bfe327874ae79cb_OfficeNumber -eq "123""#, Accepted, E_EXT),
    ("entra", r#"(user.extension_9d98ed114c4840d298fad781915f27e4_division -eq "Sales and marketing")"#, Accepted, "Entra sync § Use the attributes in dynamic membership groups"),
    ("entra", r#"device.extension_9d98ed114c4840d298fad781915f27e4_site -in ["Lagos", "Accra"]"#, Accepted, "Graph extensionProperty: targetObjects include Device"),
    ("entra", r#"user.extension_c272a57b_OfficeNumber -eq "123""#, Rejected("is not a directory extension property name"), E_EXT),
    ("entra", r#"user.extension_c272a57b722d4eb29bfe327874ae79cb_ -eq "123""#, Rejected("is not a directory extension property name"), E_EXT),
    ("entra", r#"user.extension_c272a57b722d4eb29bfe327874ae79cb_Office -gt "1""#, Rejected("-gt is not allowed for user.extension_c272a57b722d4eb29bfe327874ae79cb_Office"), E_EXT),
    ("ca", r#"device.extension_9d98ed114c4840d298fad781915f27e4_site -eq "Lagos""#, Rejected("directory extension properties exist only in Entra dynamic membership rules"), C_TABLE),
    ("filter", r#"(device.extension_9d98ed114c4840d298fad781915f27e4_site -eq "Lagos")"#, Rejected("directory extension properties exist only in Entra dynamic membership rules"), "Intune § Managed device properties"),
    // String operators on multi-valued properties.
    ("entra", r#"user.otherMails -startsWith "alias@domain""#, Accepted, E_COLL),
    ("entra", r#"user.otherMails -endsWith"@contoso.com""#, Accepted, E_COLL),
    ("entra", r#"user.proxyAddresses -startsWith "SMTP: alias@domain""#, Accepted, E_COLL),
    ("entra", r#"user.proxyAddresses -notEndsWith "@outlook.com""#, Accepted, E_COLL),
    ("entra", r#"(user.proxyAddresses -any (_ -startsWith "contoso"))"#, Accepted, E_MULTI),
    ("entra", r#"user.proxyAddresses -any (_ -startsWith "SMTP")"#, Accepted, E_MULTI),
    ("entra", r#"device.systemLabels -startsWith "M365Managed""#, Accepted, E_DEV),
    ("entra", r#"device.systemLabels -contains "M365Managed""#, Accepted, E_COLL),
    ("entra", r#"device.devicePhysicalIds -any _ -eq "[OrderID]:179887111881""#, Accepted, E_DEV),
    ("ca", r#"(device.systemLabels -contains "M365Managed")"#, Accepted, C_TABLE),
    ("ca", r#"(device.physicalIds -contains "[ZTDId]:value")"#, Accepted, C_TABLE),
    ("ca", r#"device.physicalIds -startsWith "[ZTDId]""#, Rejected("-startsWith is not allowed for device.physicalIds"), C_TABLE),
    ("ca", r#"device.physicalIds -any (_ -startsWith "[ZTDId]")"#, Rejected("-any is not allowed for device.physicalIds"), C_TABLE),
    // Values as the pages write them.
    ("filter", r#"(device.operatingSystemVersion -eq 14.2.1)"#, Accepted, F_VER),
    ("filter", r#"(device.operatingSystemSKU -startsWith "Enterprise")"#, Accepted, F_STR),
    ("filter", r#"(device.enrollmentProfileName -ne $null)"#, Accepted, F_STR),
    ("filter", r#"(device.deviceManagementType -eq "Corporate-owned fully managed")"#, Accepted, F_EQ),
    ("filter", r#"(app.deviceModel -startsWith "RealityDevice")"#, Accepted, F_APP_STR),
    ("ca", r#"(device.deviceid -eq "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb")"#, Accepted, C_TABLE),
    ("ca", r#"(device.model -notContains "Surface")"#, Accepted, C_TABLE),
    ("ca", r#"(device.isCompliant -eq "True")"#, Accepted, C_TABLE),
    ("entra", r#"user.telephoneNumber -eq "value""#, Accepted, E_STR),
    ("entra", r#"user.mailNickname -endsWith "-vendor""#, Accepted, E_STR),
    ("entra", r#"user.employeehiredate -le 2020-06-10T18:13:20Z"#, Accepted, E_DATE),
    ("entra", r#"user.assignedPlans -all (assignedPlan.servicePlanId -eq null)"#, Accepted, E_MULTI),
];

#[test]
fn whole_rules_from_the_pages() {
    for (g, rule, expect, source) in RULES {
        let got = Rule::parse(Grammar::parse(g).unwrap(), rule);
        match (expect, got) {
            (Accepted, Ok(_)) => {}
            (Accepted, Err(e)) => panic!(
                "{g}: rejected, but {source} accepts it:\n{}",
                e.render(rule)
            ),
            (Rejected(words), Ok(_)) => {
                panic!("{g}: accepted `{rule}`; want an error with '{words}' ({source})")
            }
            (Rejected(words), Err(e)) => {
                let text = e.render(rule);
                assert!(text.contains(words), "{g}: `{rule}` ({source}):\n{text}");
            }
        }
    }
}
