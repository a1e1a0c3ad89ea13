//! Records of the organization: attributes of users and devices, groups,
//! assignment filters, policies and their assignments.

use std::fmt;

/// Scalar device attributes, one dictionary column each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceAttr {
    /// Entra object id (what group memberships reference).
    EntraObjectId,
    /// Entra `deviceId` (= Intune `azureADDeviceId`).
    DeviceId,
    /// Intune managed device id.
    ManagedId,
    Name,
    /// Canonical platform, see [`Platform`].
    Platform,
    /// Entra `operatingSystem` as Entra reports it (`Windows`, `MacMDM`, `iPhone`…).
    EntraOsType,
    OsVersion,
    Model,
    Manufacturer,
    /// Canonical `company` / `personal`.
    Ownership,
    /// Canonical `AzureAD` / `ServerAD` / `Workplace`.
    TrustType,
    ManagementType,
    ManagementAppId,
    EnrollmentProfile,
    Category,
    Sku,
    CpuArch,
    ProfileType,
    Serial,
    AccountEnabled,
    IsCompliant,
    IsRooted,
    IsLab,
    LastCheckIn,
    /// Entra object id of the primary user.
    PrimaryUser,
    /// `extensionAttribute1` ..= `extensionAttribute15`.
    Ext(u8),
}

impl DeviceAttr {
    pub const SCALARS: usize = 25 + 15;

    pub fn index(self) -> usize {
        use DeviceAttr::*;
        match self {
            EntraObjectId => 0,
            DeviceId => 1,
            ManagedId => 2,
            Name => 3,
            Platform => 4,
            EntraOsType => 5,
            OsVersion => 6,
            Model => 7,
            Manufacturer => 8,
            Ownership => 9,
            TrustType => 10,
            ManagementType => 11,
            ManagementAppId => 12,
            EnrollmentProfile => 13,
            Category => 14,
            Sku => 15,
            CpuArch => 16,
            ProfileType => 17,
            Serial => 18,
            AccountEnabled => 19,
            IsCompliant => 20,
            IsRooted => 21,
            IsLab => 22,
            LastCheckIn => 23,
            PrimaryUser => 24,
            Ext(n) => 24 + n.clamp(1, 15) as usize,
        }
    }
}

/// Multi-valued device attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceMulti {
    PhysicalIds,
    SystemLabels,
    /// Intune `roleScopeTagIds` of the managed device.
    ScopeTags,
}

impl DeviceMulti {
    pub const COUNT: usize = 3;
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Scalar user attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserAttr {
    ObjectId,
    Upn,
    DisplayName,
    GivenName,
    Surname,
    Mail,
    MailNickname,
    Department,
    JobTitle,
    CompanyName,
    City,
    State,
    Country,
    UsageLocation,
    OfficeLocation,
    EmployeeId,
    EmployeeType,
    EmployeeHireDate,
    UserType,
    AccountEnabled,
    /// Entra object id of the manager.
    Manager,
    IsVip,
    IsItStaff,
    PreferredLanguage,
    DirSyncEnabled,
    Ext(u8),
}

impl UserAttr {
    pub const SCALARS: usize = 25 + 15;

    pub fn index(self) -> usize {
        use UserAttr::*;
        match self {
            ObjectId => 0,
            Upn => 1,
            DisplayName => 2,
            GivenName => 3,
            Surname => 4,
            Mail => 5,
            MailNickname => 6,
            Department => 7,
            JobTitle => 8,
            CompanyName => 9,
            City => 10,
            State => 11,
            Country => 12,
            UsageLocation => 13,
            OfficeLocation => 14,
            EmployeeId => 15,
            EmployeeType => 16,
            EmployeeHireDate => 17,
            UserType => 18,
            AccountEnabled => 19,
            Manager => 20,
            IsVip => 21,
            IsItStaff => 22,
            PreferredLanguage => 23,
            DirSyncEnabled => 24,
            Ext(n) => 24 + n.clamp(1, 15) as usize,
        }
    }
}

/// Multi-valued user attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserMulti {
    OtherMails,
    ProxyAddresses,
    /// Records with fields [`ASSIGNED_PLAN_FIELDS`].
    AssignedPlans,
}

impl UserMulti {
    pub const COUNT: usize = 3;
    pub fn index(self) -> usize {
        self as usize
    }
}

pub const ASSIGNED_PLAN_FIELDS: &[&str] = &["servicePlanId", "capabilityStatus", "service"];

/// Device platforms as Intune separates them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum Platform {
    Windows,
    #[serde(rename = "macOS")]
    MacOs,
    #[serde(rename = "iOS")]
    Ios,
    #[serde(rename = "iPadOS")]
    IpadOs,
    Android,
    Linux,
}

impl Platform {
    pub const ALL: [Platform; 6] = [
        Platform::Windows,
        Platform::MacOs,
        Platform::Ios,
        Platform::IpadOs,
        Platform::Android,
        Platform::Linux,
    ];

    /// The canonical spelling stored in the platform column.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Windows => "windows",
            Platform::MacOs => "macOS",
            Platform::Ios => "iOS",
            Platform::IpadOs => "iPadOS",
            Platform::Android => "android",
            Platform::Linux => "linux",
        }
    }

    /// Reads the many spellings found in Graph (`operatingSystem`,
    /// `deviceOSType`, policy `platforms`, filter `platform`).
    pub fn parse(s: &str) -> Option<Platform> {
        let l = s.trim().to_ascii_lowercase();
        Some(match l.as_str() {
            "windows" | "windows10" | "windows10andlater" | "windows81andlater" | "windows 10"
            | "windows 11" | "windowsphone81" | "windows10x" => Platform::Windows,
            "macos" | "macmdm" | "mac os x" | "osx" | "mac" => Platform::MacOs,
            "ios" | "iphone" | "iosmobileapplicationmanagement" => Platform::Ios,
            "ipados" | "ipad" => Platform::IpadOs,
            "android"
            | "androidforwork"
            | "androidenterprise"
            | "androidworkprofile"
            | "androidaosp"
            | "androidmobileapplicationmanagement" => Platform::Android,
            "linux" => Platform::Linux,
            _ => return None,
        })
    }

    /// How Entra's `deviceOSType` spells a platform when no Entra record says otherwise.
    pub fn entra_os_type(self) -> &'static str {
        match self {
            Platform::Windows => "Windows",
            Platform::MacOs => "MacMDM",
            Platform::Ios => "iPhone",
            Platform::IpadOs => "iPad",
            Platform::Android => "AndroidForWork",
            Platform::Linux => "Linux",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Canonical ownership from any of the vocabularies: `Corporate` (filters),
/// `Company` (Entra), `company` (managedDevice), `Personal`, `personal`.
pub fn canonical_ownership(s: &str) -> Option<&'static str> {
    match s.trim().to_ascii_lowercase().as_str() {
        "company" | "corporate" => Some("company"),
        "personal" => Some("personal"),
        _ => None,
    }
}

/// Canonical trust type from Entra (`AzureAD`), managedDevice `joinType`
/// (`azureADJoined`) and filter (`Azure AD joined`) spellings.
pub fn canonical_trust(s: &str) -> Option<&'static str> {
    let l: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    match l.as_str() {
        "azuread" | "azureadjoined" | "microsoftentrajoined" | "entrajoined" => Some("AzureAD"),
        "serverad"
        | "hybridazureadjoined"
        | "hybridmicrosoftentrajoined"
        | "hybridentrajoined"
        | "domainjoined" => Some("ServerAD"),
        "workplace" | "azureadregistered" | "microsoftentraregistered" | "entraregistered" => {
            Some("Workplace")
        }
        _ => None,
    }
}

/// Parses `true`/`false` in any case; Graph exports also carry `"True"`.
pub fn canonical_bool(s: &str) -> Option<&'static str> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some("true"),
        "false" | "0" | "no" => Some("false"),
        _ => None,
    }
}

/// A static or dynamic group, as imported.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub kind: GroupKind,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum GroupKind {
    /// Assigned membership; members may be users, devices or groups.
    /// `OrgBuilder::finish` resolves them into `Org::static_members` and
    /// empties this list: a million member ids are a tenth of a snapshot.
    Static { members: Members },
    /// Membership computed from a rule over users or devices.
    Dynamic { rule: String },
}

/// A member as an export names it: an object id, with its type when known.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberRef {
    pub id: String,
    pub kind: Option<MemberKind>,
}

/// A static group's members as exports name them. Ids Graph writes (GUIDs
/// in lower case) are kept as their 16 bytes and any other id side by side
/// in one buffer: ten million members were ten million strings, each its
/// own allocation, and as text 450 MB at the peak of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Members {
    /// Ids that are not lower-case GUIDs, side by side.
    text: String,
    /// Where each of them ends in `text`.
    ends: Vec<u64>,
    guids: Vec<[u8; 16]>,
    /// Each member in order: whether its id is the next of `guids` (else the
    /// next of `text`), and its kind.
    tags: Vec<(bool, Option<MemberKind>)>,
}

impl Members {
    pub fn push(&mut self, id: &str, kind: Option<MemberKind>) {
        let guid = guid_bytes(id);
        match guid {
            Some(g) => self.guids.push(g),
            None => {
                self.text.push_str(id);
                self.ends.push(self.text.len() as u64);
            }
        }
        self.tags.push((guid.is_some(), kind));
    }

    pub fn len(&self) -> usize {
        self.tags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// The members with every id as text, in the order they were added:
    /// one group's at a time, so only that group's are spelled out at once.
    pub fn texts(&self) -> MemberTexts {
        let mut out = MemberTexts {
            text: String::with_capacity(self.text.len() + 36 * self.guids.len()),
            ends: Vec::with_capacity(self.len()),
            kinds: Vec::with_capacity(self.len()),
        };
        let (mut guids, mut texts) = (self.guids.iter(), 0..self.ends.len());
        for &(guid, kind) in &self.tags {
            if guid {
                let g = guids.next().expect("a GUID per tag that says so");
                write_guid(g, &mut out.text);
            } else {
                let i = texts.next().expect("a text per tag that says so");
                let a = if i == 0 { 0 } else { self.ends[i - 1] as usize };
                out.text.push_str(&self.text[a..self.ends[i] as usize]);
            }
            out.ends.push(out.text.len());
            out.kinds.push(kind);
        }
        out
    }

    /// Adds `other`'s members after these.
    pub fn append(&mut self, other: Members) {
        if self.is_empty() {
            *self = other;
            return;
        }
        let base = self.text.len() as u64;
        self.text.push_str(&other.text);
        self.ends.extend(other.ends.iter().map(|e| e + base));
        self.guids.extend(other.guids);
        self.tags.extend(other.tags);
    }
}

/// A group's members with their ids as text ([`Members::texts`]).
pub struct MemberTexts {
    text: String,
    ends: Vec<usize>,
    kinds: Vec<Option<MemberKind>>,
}

impl MemberTexts {
    /// Each member's id and kind, in the order they were added.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, Option<MemberKind>)> + '_ {
        (0..self.kinds.len()).map(|i| {
            let a = if i == 0 { 0 } else { self.ends[i - 1] };
            (&self.text[a..self.ends[i]], self.kinds[i])
        })
    }
}

/// The 16 bytes of a GUID written as Graph writes it (lower case,
/// `8-4-4-4-12`), which [`write_guid`] gives back exactly; `None` for any
/// other id.
fn guid_bytes(id: &str) -> Option<[u8; 16]> {
    let b = id.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    let mut digits = b.iter().copied().filter(|&c| c != b'-');
    for o in &mut out {
        let hi = nibble(digits.next()?)?;
        let lo = nibble(digits.next()?)?;
        *o = hi << 4 | lo;
    }
    Some(out)
}

fn write_guid(g: &[u8; 16], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in g.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 15)] as char);
    }
}

impl FromIterator<MemberRef> for Members {
    fn from_iter<I: IntoIterator<Item = MemberRef>>(it: I) -> Self {
        let mut m = Members::default();
        for r in it {
            m.push(&r.id, r.kind);
        }
        m
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberKind {
    User,
    Device,
    Group,
}

/// An Intune assignment filter.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Filter {
    pub id: String,
    pub name: String,
    /// As Graph spells it (`windows10AndLater`, `iOS`…).
    pub platform: Option<String>,
    pub rule: String,
    /// Filters over managed apps use `app.*` properties and never match devices.
    pub for_apps: bool,
}

/// What kind of Intune object a policy is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PolicyKind {
    SettingsCatalog,
    DeviceConfiguration,
    Compliance,
    UpdateRing,
    DriverUpdate,
    Other,
}

/// A policy with its assignments. Its settings are modelled by the conflict analysis.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    pub id: String,
    pub name: String,
    pub kind: PolicyKind,
    /// `@odata.type` without the `#microsoft.graph.` prefix.
    pub odata_type: String,
    pub platforms: Vec<Platform>,
    /// `templateReference.templateFamily` for endpoint security and baselines.
    pub template_family: Option<String>,
    pub assignments: Vec<Assignment>,
    /// Every setting the policy configures; a snapshot reads them when first used.
    pub settings: crate::lazy::Lazy<crate::settings::Leaves>,
    /// OS edition and version rules (legacy profiles); empty when none.
    pub applicability: Vec<Applicability>,
    /// Where the policy was read from, for messages.
    pub source: String,
    /// `lastModifiedDateTime`: antivirus policy breaks ties between equally
    /// secure values by it.
    pub last_modified: Option<jiff::Timestamp>,
    /// Intune `roleScopeTagIds`; empty when the export has none (Intune then
    /// shows the policy under the Default tag, id `0`).
    #[serde(default)]
    pub scope_tags: Vec<String>,
}

/// An applicability rule of a legacy device configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Applicability {
    /// `deviceManagementApplicabilityRuleOsEdition`: editions such as `windows10Enterprise`.
    OsEdition {
        include: bool,
        editions: Vec<String>,
    },
    /// `deviceManagementApplicabilityRuleOsVersion`: inclusive bounds.
    OsVersion {
        include: bool,
        min: Option<String>,
        max: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Assignment {
    pub target: Target,
    pub filter: Option<AssignmentFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Target {
    AllDevices,
    AllUsers,
    Group(String),
    ExcludeGroup(String),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AssignmentFilter {
    pub filter_id: String,
    pub mode: FilterMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterMode {
    Include,
    Exclude,
}

/// Fixed ids of the virtual groups in Graph exports.
pub const ALL_DEVICES_ID: &str = "adadadad-808e-44e2-905a-0b7873a8a531";
pub const ALL_USERS_ID: &str = "acacacac-9df4-4c7d-9d50-4ef0226f57a9";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            // Near misses: capitals, a letter past `f`, a dash moved, one
            // digit short, braces.
            "[0-9A-F]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[0-9a-f]{8}-[0-9a-g]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[0-9a-f]{9}-[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{11}",
            "\\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\}",
            "[a-z.]{1,12}@contoso\\.com",
            ".{0,40}",
        ]
    }

    fn kind() -> impl Strategy<Value = Option<MemberKind>> {
        prop_oneof![
            Just(None),
            Just(Some(MemberKind::User)),
            Just(Some(MemberKind::Device)),
            Just(Some(MemberKind::Group)),
        ]
    }

    proptest! {
        #[test]
        fn members_give_back_every_id_as_written(
            first in prop::collection::vec((id(), kind()), 0..40),
            second in prop::collection::vec((id(), kind()), 0..40),
        ) {
            let mut m: Members = (first.iter())
                .map(|(id, kind)| MemberRef { id: id.clone(), kind: *kind })
                .collect();
            let other: Members = (second.iter())
                .map(|(id, kind)| MemberRef { id: id.clone(), kind: *kind })
                .collect();
            m.append(other);
            let want: Vec<(&str, Option<MemberKind>)> = (first.iter().chain(&second))
                .map(|(id, kind)| (id.as_str(), *kind))
                .collect();
            let texts = m.texts();
            prop_assert_eq!(texts.iter().collect::<Vec<_>>(), want);
            prop_assert_eq!(m.len(), first.len() + second.len());
        }
    }

    #[test]
    fn only_lower_case_guids_are_kept_as_bytes() {
        let guid = "0a1b2c3d-4e5f-6789-abcd-ef0123456789";
        assert!(guid_bytes(guid).is_some());
        assert!(guid_bytes(&guid.to_uppercase()).is_none());
        assert!(guid_bytes("0a1b2c3d-4e5f-6789-abcd-ef012345678").is_none());
        assert!(guid_bytes("0a1b2c3d4-e5f-6789-abcd-ef0123456789").is_none());
        let mut back = String::new();
        write_guid(&guid_bytes(guid).unwrap(), &mut back);
        assert_eq!(back, guid);
    }
}
