//! What each grammar lets a rule say: its properties, the operators each
//! property takes, and how values are spelled.

use crate::model::{DeviceAttr, DeviceMulti, UserAttr, UserMulti};
use std::fmt;

/// The three rule languages. They share a syntax and differ in vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grammar {
    /// Entra ID dynamic-membership rules (`membershipRule`).
    EntraDynamicMembership,
    /// Intune assignment-filter rules.
    IntuneAssignmentFilter,
    /// Conditional Access "filter for devices".
    CaDeviceFilter,
}

impl Grammar {
    pub fn parse(s: &str) -> Option<Grammar> {
        Some(match s {
            "entra" | "entra_dynamic_membership" | "dynamic" => Grammar::EntraDynamicMembership,
            "filter" | "intune_assignment_filter" | "intune" => Grammar::IntuneAssignmentFilter,
            "ca" | "ca_device_filter" | "conditional_access" => Grammar::CaDeviceFilter,
            _ => return None,
        })
    }

    pub fn title(self) -> &'static str {
        match self {
            Grammar::EntraDynamicMembership => "Entra dynamic membership rules",
            Grammar::IntuneAssignmentFilter => "Intune assignment filters",
            Grammar::CaDeviceFilter => "Conditional Access device filters",
        }
    }

    /// One rule of this grammar, in words: "Intune assignment filter".
    pub fn one(self) -> &'static str {
        match self {
            Grammar::EntraDynamicMembership => "Entra dynamic membership rule",
            Grammar::IntuneAssignmentFilter => "Intune assignment filter",
            Grammar::CaDeviceFilter => "Conditional Access device filter",
        }
    }

    fn tables(self) -> &'static [&'static [Prop]] {
        match self {
            Grammar::EntraDynamicMembership => ENTRA,
            Grammar::IntuneAssignmentFilter => FILTER,
            Grammar::CaDeviceFilter => CA,
        }
    }

    /// Longest rule the service accepts.
    pub fn max_len(self) -> usize {
        3072
    }
}

impl fmt::Display for Grammar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Object {
    User,
    Device,
    /// Managed-app filters (`app.*`): valid rules that never select devices.
    App,
}

impl Object {
    pub fn prefix(self) -> &'static str {
        match self {
            Object::User => "user",
            Object::Device => "device",
            Object::App => "app",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Op {
    Eq,
    Ne,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
    Contains,
    NotContains,
    Match,
    NotMatch,
    In,
    NotIn,
    Le,
    Ge,
    Lt,
    Gt,
    Any,
    All,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "startswith" => Op::StartsWith,
            "notstartswith" => Op::NotStartsWith,
            "endswith" => Op::EndsWith,
            "notendswith" => Op::NotEndsWith,
            "contains" => Op::Contains,
            "notcontains" => Op::NotContains,
            "match" => Op::Match,
            "notmatch" => Op::NotMatch,
            "in" => Op::In,
            "notin" => Op::NotIn,
            "le" => Op::Le,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "gt" => Op::Gt,
            "any" => Op::Any,
            "all" => Op::All,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "-eq",
            Op::Ne => "-ne",
            Op::StartsWith => "-startsWith",
            Op::NotStartsWith => "-notStartsWith",
            Op::EndsWith => "-endsWith",
            Op::NotEndsWith => "-notEndsWith",
            Op::Contains => "-contains",
            Op::NotContains => "-notContains",
            Op::Match => "-match",
            Op::NotMatch => "-notMatch",
            Op::In => "-in",
            Op::NotIn => "-notIn",
            Op::Le => "-le",
            Op::Ge => "-ge",
            Op::Lt => "-lt",
            Op::Gt => "-gt",
            Op::Any => "-any",
            Op::All => "-all",
        }
    }

    /// For a negative operator, the positive one it negates.
    pub fn positive(self) -> Option<Op> {
        Some(match self {
            Op::Ne => Op::Eq,
            Op::NotStartsWith => Op::StartsWith,
            Op::NotEndsWith => Op::EndsWith,
            Op::NotContains => Op::Contains,
            Op::NotMatch => Op::Match,
            Op::NotIn => Op::In,
            _ => return None,
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of a property, which decides how values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Str,
    Bool,
    /// Date-time, compared as instants; `system.now` allowed.
    Date,
    /// Dotted version compared numerically by `-gt -ge -lt -le`.
    Version,
    /// A list of strings; elements are `_` in `-any`/`-all`. A string
    /// operator asks about the elements: `-contains` finds a substring of one.
    Multi,
    /// A list of strings where `-contains` asks whether one element is the
    /// value, whole (Conditional Access `physicalIds` and `systemLabels`).
    Set,
    /// A list of records whose fields are named `<record>.<field>`.
    Records,
    /// Group membership: `-any (group.objectId -in [...])`.
    MemberOf,
}

/// Where a property's values live in the organization tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Device(DeviceAttr),
    DeviceMulti(DeviceMulti),
    User(UserAttr),
    UserMulti(UserMulti),
    MemberOf,
    /// A directory extension property (`extension_<app id>_<name>`); the
    /// rule's leaf names it, and the table holds it when the import met it.
    Extension,
    /// A valid property that the organization model does not hold: always null.
    Unbound,
}

/// Where a source's values are, independent of the object type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// Index into `Table::cols`.
    Scalar(usize),
    /// Index into `Table::multi`.
    Multi(usize),
    MemberOf,
    /// Found by name in `Table::ext`.
    Extension,
    Unbound,
}

impl Source {
    pub fn column(self) -> Column {
        match self {
            Source::Device(a) => Column::Scalar(a.index()),
            Source::User(a) => Column::Scalar(a.index()),
            Source::DeviceMulti(m) => Column::Multi(m.index()),
            Source::UserMulti(m) => Column::Multi(m.index()),
            Source::MemberOf => Column::MemberOf,
            Source::Extension => Column::Extension,
            Source::Unbound => Column::Unbound,
        }
    }
}

/// How a grammar spells the values of a property whose column is canonical.
/// `(as the grammar spells it, canonical)`.
pub type Vocab = &'static [(&'static str, &'static str)];

#[derive(Debug)]
pub struct Prop {
    pub name: &'static str,
    pub object: Object,
    pub kind: Kind,
    pub source: Source,
    pub ops: &'static [Op],
    /// Values the grammar knows, when it has a closed set.
    pub vocab: Option<Vocab>,
    /// For record lists: the record's name in the inner rule (`assignedPlan`).
    pub record: Option<&'static str>,
}

impl Prop {
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.object.prefix(), self.name)
    }

    /// The value as this grammar presents it, from the canonical column value.
    pub fn present<'a>(&self, canonical: &'a str) -> &'a str {
        match self.vocab {
            Some(v) => v
                .iter()
                .find(|(_, c)| *c == canonical)
                .map(|(p, _)| *p)
                .unwrap_or(canonical),
            None => canonical,
        }
    }
}

use Op::*;

const ENTRA_STR: &[Op] = &[
    Eq,
    Ne,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
    Contains,
    NotContains,
    Match,
    NotMatch,
    In,
    NotIn,
];
const CA_STR: &[Op] = &[
    Eq,
    Ne,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
    Contains,
    NotContains,
    In,
    NotIn,
];
const FILTER_STR: &[Op] = &[Eq, Ne, In, NotIn, StartsWith, Contains, NotContains];
const EQ_NE: &[Op] = &[Eq, Ne];
/// Whole values only: filter enumerations, CA `deviceId` and `mdmAppId`.
const ENUM: &[Op] = &[Eq, Ne, In, NotIn];
const DATE: &[Op] = &[Eq, Ne, Le, Ge];
const FILTER_VERSION: &[Op] = &[Eq, Ne, Gt, Ge, Lt, Le];
/// Entra string collections: every string operator (Entra's operator table
/// is one list for all types, and its examples use them on collections
/// directly), plus `-any`/`-all`.
const MULTI: &[Op] = &[
    Any,
    All,
    Eq,
    Ne,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
    Contains,
    NotContains,
    Match,
    NotMatch,
    In,
    NotIn,
];
const CA_SET: &[Op] = &[Contains, NotContains];
const RECORDS: &[Op] = &[Any, All];
const MEMBER_OF: &[Op] = &[Any];

/// A word whose canonical value is empty stands for null: the import keeps
/// an unknown ownership or join type as no value.
const OWNERSHIP_ENTRA: Vocab = &[
    ("Company", "company"),
    ("Personal", "personal"),
    ("Unknown", ""),
];
const OWNERSHIP_FILTER: Vocab = &[
    ("Corporate", "company"),
    ("Personal", "personal"),
    ("Unknown", ""),
];
const OWNERSHIP_CA: Vocab = &[("Company", "company"), ("Personal", "personal")];
const MANAGEMENT_TYPE_FILTER: Vocab = &[
    (
        "Corporate-owned dedicated devices with Entra ID Shared mode",
        "dedicatedShared",
    ),
    (
        "Corporate-owned dedicated devices without Entra ID Shared mode",
        "dedicated",
    ),
    ("Corporate-owned with work profile", "corporateWorkProfile"),
    ("Corporate-owned fully managed", "fullyManaged"),
    ("Personally-owned work profile", "personalWorkProfile"),
    ("AOSP user-associated devices", "aospUser"),
    ("AOSP userless devices", "aospUserless"),
];
const TRUST_ENTRA: Vocab = &[
    ("AzureAD", "AzureAD"),
    ("ServerAD", "ServerAD"),
    ("Workplace", "Workplace"),
];
const TRUST_FILTER: Vocab = &[
    ("Azure AD joined", "AzureAD"),
    ("Hybrid Azure AD joined", "ServerAD"),
    ("Azure AD registered", "Workplace"),
    ("Unknown", ""),
];
const CPU_FILTER: Vocab = &[
    ("amd64", "amd64"),
    ("x86", "x86"),
    ("arm64", "arm64"),
    ("x64", "x64"),
    ("unknown", "unknown"),
];
const USER_TYPE: Vocab = &[("Member", "Member"), ("Guest", "Guest")];
const PROFILE_TYPE: Vocab = &[
    ("RegisteredDevice", "RegisteredDevice"),
    ("SecureVM", "SecureVM"),
    ("Printer", "Printer"),
    ("Shared", "Shared"),
    ("IoT", "IoT"),
];

const fn p(
    name: &'static str,
    object: Object,
    kind: Kind,
    source: Source,
    ops: &'static [Op],
) -> Prop {
    Prop {
        name,
        object,
        kind,
        source,
        ops,
        vocab: None,
        record: None,
    }
}

const fn v(name: &'static str, source: Source, ops: &'static [Op], vocab: Vocab) -> Prop {
    Prop {
        name,
        object: Object::Device,
        kind: Kind::Str,
        source,
        ops,
        vocab: Some(vocab),
        record: None,
    }
}

use DeviceAttr as D;
use Kind::{Bool, Date, MemberOf as MemberOfKind, Multi, Str, Version};
use Object::{App, Device as Dev, User as Usr};
use UserAttr as U;

macro_rules! ext_props {
    ($object:expr, $var:ident, $attr:ident, $ops:expr) => {
        [
            p(
                "extensionAttribute1",
                $object,
                Str,
                Source::$var($attr::Ext(1)),
                $ops,
            ),
            p(
                "extensionAttribute2",
                $object,
                Str,
                Source::$var($attr::Ext(2)),
                $ops,
            ),
            p(
                "extensionAttribute3",
                $object,
                Str,
                Source::$var($attr::Ext(3)),
                $ops,
            ),
            p(
                "extensionAttribute4",
                $object,
                Str,
                Source::$var($attr::Ext(4)),
                $ops,
            ),
            p(
                "extensionAttribute5",
                $object,
                Str,
                Source::$var($attr::Ext(5)),
                $ops,
            ),
            p(
                "extensionAttribute6",
                $object,
                Str,
                Source::$var($attr::Ext(6)),
                $ops,
            ),
            p(
                "extensionAttribute7",
                $object,
                Str,
                Source::$var($attr::Ext(7)),
                $ops,
            ),
            p(
                "extensionAttribute8",
                $object,
                Str,
                Source::$var($attr::Ext(8)),
                $ops,
            ),
            p(
                "extensionAttribute9",
                $object,
                Str,
                Source::$var($attr::Ext(9)),
                $ops,
            ),
            p(
                "extensionAttribute10",
                $object,
                Str,
                Source::$var($attr::Ext(10)),
                $ops,
            ),
            p(
                "extensionAttribute11",
                $object,
                Str,
                Source::$var($attr::Ext(11)),
                $ops,
            ),
            p(
                "extensionAttribute12",
                $object,
                Str,
                Source::$var($attr::Ext(12)),
                $ops,
            ),
            p(
                "extensionAttribute13",
                $object,
                Str,
                Source::$var($attr::Ext(13)),
                $ops,
            ),
            p(
                "extensionAttribute14",
                $object,
                Str,
                Source::$var($attr::Ext(14)),
                $ops,
            ),
            p(
                "extensionAttribute15",
                $object,
                Str,
                Source::$var($attr::Ext(15)),
                $ops,
            ),
        ]
    };
}

static ENTRA_BASE: [Prop; 54] = [
    // Devices.
    p(
        "accountEnabled",
        Dev,
        Bool,
        Source::Device(D::AccountEnabled),
        EQ_NE,
    ),
    p(
        "deviceCategory",
        Dev,
        Str,
        Source::Device(D::Category),
        ENTRA_STR,
    ),
    p("deviceId", Dev, Str, Source::Device(D::DeviceId), ENTRA_STR),
    p(
        "deviceManagementAppId",
        Dev,
        Str,
        Source::Device(D::ManagementAppId),
        ENTRA_STR,
    ),
    p(
        "deviceManufacturer",
        Dev,
        Str,
        Source::Device(D::Manufacturer),
        ENTRA_STR,
    ),
    p("deviceModel", Dev, Str, Source::Device(D::Model), ENTRA_STR),
    p("displayName", Dev, Str, Source::Device(D::Name), ENTRA_STR),
    p(
        "deviceOSType",
        Dev,
        Str,
        Source::Device(D::EntraOsType),
        ENTRA_STR,
    ),
    p(
        "deviceOSVersion",
        Dev,
        Str,
        Source::Device(D::OsVersion),
        ENTRA_STR,
    ),
    v(
        "deviceOwnership",
        Source::Device(D::Ownership),
        ENTRA_STR,
        OWNERSHIP_ENTRA,
    ),
    p(
        "devicePhysicalIds",
        Dev,
        Multi,
        Source::DeviceMulti(DeviceMulti::PhysicalIds),
        MULTI,
    ),
    v(
        "deviceTrustType",
        Source::Device(D::TrustType),
        ENTRA_STR,
        TRUST_ENTRA,
    ),
    p(
        "enrollmentProfileName",
        Dev,
        Str,
        Source::Device(D::EnrollmentProfile),
        ENTRA_STR,
    ),
    p("isRooted", Dev, Bool, Source::Device(D::IsRooted), EQ_NE),
    p(
        "managementType",
        Dev,
        Str,
        Source::Device(D::ManagementType),
        ENTRA_STR,
    ),
    p("memberOf", Dev, MemberOfKind, Source::MemberOf, MEMBER_OF),
    p(
        "objectId",
        Dev,
        Str,
        Source::Device(D::EntraObjectId),
        ENTRA_STR,
    ),
    v(
        "profileType",
        Source::Device(D::ProfileType),
        ENTRA_STR,
        PROFILE_TYPE,
    ),
    p(
        "systemLabels",
        Dev,
        Multi,
        Source::DeviceMulti(DeviceMulti::SystemLabels),
        MULTI,
    ),
    // Users.
    p(
        "accountEnabled",
        Usr,
        Bool,
        Source::User(U::AccountEnabled),
        EQ_NE,
    ),
    p(
        "dirSyncEnabled",
        Usr,
        Bool,
        Source::User(U::DirSyncEnabled),
        EQ_NE,
    ),
    p("city", Usr, Str, Source::User(U::City), ENTRA_STR),
    p("country", Usr, Str, Source::User(U::Country), ENTRA_STR),
    p(
        "companyName",
        Usr,
        Str,
        Source::User(U::CompanyName),
        ENTRA_STR,
    ),
    p(
        "department",
        Usr,
        Str,
        Source::User(U::Department),
        ENTRA_STR,
    ),
    p(
        "displayName",
        Usr,
        Str,
        Source::User(U::DisplayName),
        ENTRA_STR,
    ),
    p(
        "employeeId",
        Usr,
        Str,
        Source::User(U::EmployeeId),
        ENTRA_STR,
    ),
    p(
        "employeeHireDate",
        Usr,
        Date,
        Source::User(U::EmployeeHireDate),
        DATE,
    ),
    p(
        "employeeType",
        Usr,
        Str,
        Source::User(U::EmployeeType),
        ENTRA_STR,
    ),
    p(
        "facsimileTelephoneNumber",
        Usr,
        Str,
        Source::Unbound,
        ENTRA_STR,
    ),
    p("givenName", Usr, Str, Source::User(U::GivenName), ENTRA_STR),
    p("jobTitle", Usr, Str, Source::User(U::JobTitle), ENTRA_STR),
    p("mail", Usr, Str, Source::User(U::Mail), ENTRA_STR),
    p(
        "mailNickName",
        Usr,
        Str,
        Source::User(U::MailNickname),
        ENTRA_STR,
    ),
    p("memberOf", Usr, MemberOfKind, Source::MemberOf, MEMBER_OF),
    p("mobile", Usr, Str, Source::Unbound, ENTRA_STR),
    p("objectId", Usr, Str, Source::User(U::ObjectId), ENTRA_STR),
    p(
        "onPremisesDistinguishedName",
        Usr,
        Str,
        Source::Unbound,
        ENTRA_STR,
    ),
    p(
        "onPremisesSecurityIdentifier",
        Usr,
        Str,
        Source::Unbound,
        ENTRA_STR,
    ),
    p(
        "otherMails",
        Usr,
        Multi,
        Source::UserMulti(UserMulti::OtherMails),
        MULTI,
    ),
    p("passwordPolicies", Usr, Str, Source::Unbound, ENTRA_STR),
    p(
        "physicalDeliveryOfficeName",
        Usr,
        Str,
        Source::User(U::OfficeLocation),
        ENTRA_STR,
    ),
    p("postalCode", Usr, Str, Source::Unbound, ENTRA_STR),
    p("sipProxyAddress", Usr, Str, Source::Unbound, ENTRA_STR),
    p("streetAddress", Usr, Str, Source::Unbound, ENTRA_STR),
    p("telephoneNumber", Usr, Str, Source::Unbound, ENTRA_STR),
    p(
        "preferredLanguage",
        Usr,
        Str,
        Source::User(U::PreferredLanguage),
        ENTRA_STR,
    ),
    p(
        "proxyAddresses",
        Usr,
        Multi,
        Source::UserMulti(UserMulti::ProxyAddresses),
        MULTI,
    ),
    p("state", Usr, Str, Source::User(U::State), ENTRA_STR),
    p("surname", Usr, Str, Source::User(U::Surname), ENTRA_STR),
    p(
        "usageLocation",
        Usr,
        Str,
        Source::User(U::UsageLocation),
        ENTRA_STR,
    ),
    p(
        "userPrincipalName",
        Usr,
        Str,
        Source::User(U::Upn),
        ENTRA_STR,
    ),
    Prop {
        name: "userType",
        object: Usr,
        kind: Str,
        source: Source::User(U::UserType),
        ops: ENTRA_STR,
        vocab: Some(USER_TYPE),
        record: None,
    },
    Prop {
        name: "assignedPlans",
        object: Usr,
        kind: Kind::Records,
        source: Source::UserMulti(UserMulti::AssignedPlans),
        ops: RECORDS,
        vocab: None,
        record: Some("assignedPlan"),
    },
];

static ENTRA_DEVICE_EXT: [Prop; 15] = ext_props!(Dev, Device, D, ENTRA_STR);
static ENTRA_USER_EXT: [Prop; 15] = ext_props!(Usr, User, U, ENTRA_STR);
static CA_EXT: [Prop; 15] = ext_props!(Dev, Device, D, CA_STR);
static ENTRA: &[&[Prop]] = &[&ENTRA_BASE, &ENTRA_DEVICE_EXT, &ENTRA_USER_EXT];

static FILTER_BASE: [Prop; 19] = [
    p("deviceName", Dev, Str, Source::Device(D::Name), FILTER_STR),
    p(
        "manufacturer",
        Dev,
        Str,
        Source::Device(D::Manufacturer),
        FILTER_STR,
    ),
    p("model", Dev, Str, Source::Device(D::Model), FILTER_STR),
    p(
        "deviceCategory",
        Dev,
        Str,
        Source::Device(D::Category),
        FILTER_STR,
    ),
    p(
        "osVersion",
        Dev,
        Str,
        Source::Device(D::OsVersion),
        FILTER_STR,
    ),
    p("isRooted", Dev, Bool, Source::Device(D::IsRooted), EQ_NE),
    v(
        "deviceOwnership",
        Source::Device(D::Ownership),
        EQ_NE,
        OWNERSHIP_FILTER,
    ),
    p(
        "enrollmentProfileName",
        Dev,
        Str,
        Source::Device(D::EnrollmentProfile),
        FILTER_STR,
    ),
    v(
        "deviceTrustType",
        Source::Device(D::TrustType),
        ENUM,
        TRUST_FILTER,
    ),
    p(
        "operatingSystemVersion",
        Dev,
        Version,
        Source::Device(D::OsVersion),
        FILTER_VERSION,
    ),
    p(
        "operatingSystemSKU",
        Dev,
        Str,
        Source::Device(D::Sku),
        FILTER_STR,
    ),
    v(
        "cpuArchitecture",
        Source::Device(D::CpuArch),
        ENUM,
        CPU_FILTER,
    ),
    // Android enrollment kinds; the organization model does not hold them.
    v(
        "deviceManagementType",
        Source::Unbound,
        EQ_NE,
        MANAGEMENT_TYPE_FILTER,
    ),
    // Managed-app filters.
    p("appVersion", App, Str, Source::Unbound, FILTER_STR),
    p("deviceManagementType", App, Str, Source::Unbound, EQ_NE),
    p("deviceManufacturer", App, Str, Source::Unbound, FILTER_STR),
    p("deviceModel", App, Str, Source::Unbound, FILTER_STR),
    p("osVersion", App, Str, Source::Unbound, FILTER_STR),
    p(
        "operatingSystemVersion",
        App,
        Version,
        Source::Unbound,
        FILTER_VERSION,
    ),
];
static FILTER: &[&[Prop]] = &[&FILTER_BASE];

static CA_BASE: [Prop; 14] = [
    p("deviceId", Dev, Str, Source::Device(D::DeviceId), ENUM),
    p("displayName", Dev, Str, Source::Device(D::Name), CA_STR),
    v(
        "deviceOwnership",
        Source::Device(D::Ownership),
        EQ_NE,
        OWNERSHIP_CA,
    ),
    p(
        "enrollmentProfileName",
        Dev,
        Str,
        Source::Device(D::EnrollmentProfile),
        CA_STR,
    ),
    p(
        "isCompliant",
        Dev,
        Bool,
        Source::Device(D::IsCompliant),
        EQ_NE,
    ),
    p(
        "manufacturer",
        Dev,
        Str,
        Source::Device(D::Manufacturer),
        CA_STR,
    ),
    p(
        "mdmAppId",
        Dev,
        Str,
        Source::Device(D::ManagementAppId),
        ENUM,
    ),
    p("model", Dev, Str, Source::Device(D::Model), CA_STR),
    p(
        "operatingSystem",
        Dev,
        Str,
        Source::Device(D::EntraOsType),
        CA_STR,
    ),
    p(
        "operatingSystemVersion",
        Dev,
        Str,
        Source::Device(D::OsVersion),
        CA_STR,
    ),
    p(
        "physicalIds",
        Dev,
        Kind::Set,
        Source::DeviceMulti(DeviceMulti::PhysicalIds),
        CA_SET,
    ),
    v(
        "profileType",
        Source::Device(D::ProfileType),
        EQ_NE,
        PROFILE_TYPE,
    ),
    p(
        "systemLabels",
        Dev,
        Kind::Set,
        Source::DeviceMulti(DeviceMulti::SystemLabels),
        CA_SET,
    ),
    v(
        "trustType",
        Source::Device(D::TrustType),
        EQ_NE,
        TRUST_ENTRA,
    ),
];
static CA: &[&[Prop]] = &[&CA_BASE, &CA_EXT];

/// The synthetic property behind `Direct Reports for "<manager id>"`.
pub static DIRECT_REPORTS: Prop = p("manager", Usr, Str, Source::User(U::Manager), EQ_NE);

/// Stand-ins for directory extension properties; the leaf carries the name.
static USER_EXTENSION: Prop = p("extension", Usr, Str, Source::Extension, ENTRA_STR);
static DEVICE_EXTENSION: Prop = p("extension", Dev, Str, Source::Extension, ENTRA_STR);

/// Whether `name` is spelled as a directory extension property:
/// `extension_`, the owning app's id as 32 hex digits without dashes, `_`,
/// and the attribute's name (letters, digits, `_`).
pub fn is_extension_name(name: &str) -> bool {
    let Some(rest) = name
        .get(..10)
        .filter(|p| p.eq_ignore_ascii_case("extension_"))
        .map(|_| &name[10..])
    else {
        return false;
    };
    let (app, attr) = (rest.get(..32), rest.get(33..));
    app.is_some_and(|a| a.bytes().all(|b| b.is_ascii_hexdigit()))
        && rest.as_bytes().get(32) == Some(&b'_')
        && attr.is_some_and(|a| {
            !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

/// Whether `name` starts like a directory extension property, well formed or not.
pub fn looks_like_extension(name: &str) -> bool {
    name.get(..10)
        .is_some_and(|p| p.eq_ignore_ascii_case("extension_"))
}

/// The stand-in for a directory extension property of `object`, where the
/// grammar has them: Entra dynamic membership rules, users and devices.
pub fn extension(grammar: Grammar, object: Object) -> Option<&'static Prop> {
    match (grammar, object) {
        (Grammar::EntraDynamicMembership, Object::User) => Some(&USER_EXTENSION),
        (Grammar::EntraDynamicMembership, Object::Device) => Some(&DEVICE_EXTENSION),
        _ => None,
    }
}

/// Finds a property of `object` by name, ignoring case as the services do.
pub fn lookup(grammar: Grammar, object: Object, name: &str) -> Option<&'static Prop> {
    grammar
        .tables()
        .iter()
        .flat_map(|t| t.iter())
        .find(|p| p.object == object && p.name.eq_ignore_ascii_case(name))
}

/// Every property name of the grammar for `object`, for suggestions.
pub fn names(grammar: Grammar, object: Object) -> impl Iterator<Item = &'static str> {
    grammar
        .tables()
        .iter()
        .flat_map(|t| t.iter())
        .filter(move |p| p.object == object)
        .map(|p| p.name)
}

/// The objects a grammar's rules may speak of.
pub fn objects(grammar: Grammar) -> &'static [Object] {
    match grammar {
        Grammar::EntraDynamicMembership => &[Object::User, Object::Device],
        Grammar::IntuneAssignmentFilter => &[Object::Device, Object::App],
        Grammar::CaDeviceFilter => &[Object::Device],
    }
}
