//! Microsoft Graph records (users, managedDevices, devices, groups, members,
//! assignment filters, policies) and how each lands in the organization.
//! Unknown keys, including OData annotations, are ignored.

use ringmaster_core::model::*;
use ringmaster_core::org::{DeviceKey, Writes};
use ringmaster_core::rules::vocab::is_extension_name;
use ringmaster_core::rules::{Grammar, Rule};
use ringmaster_core::targeting::rule_error_line;
use serde::Deserialize;
use std::borrow::Cow;

/// Record text, borrowed from the line unless it holds escapes: parsing a
/// million records makes (and frees) no string per value.
type Text<'a> = Cow<'a, str>;
use std::collections::BTreeMap;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    ManagedDevice,
    EntraDevice,
    Group,
    GroupMember,
    Filter,
    Policy,
    /// A real export object ringmaster does not model (conditional access,
    /// app protection, enrollment profiles…); the text says which.
    Skip(&'static str),
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::User => "users",
            Kind::ManagedDevice => "Intune managed devices",
            Kind::EntraDevice => "Entra devices",
            Kind::Group => "groups",
            Kind::GroupMember => "group members",
            Kind::Filter => "assignment filters",
            Kind::Policy => "policies",
            Kind::Skip(s) => s,
        }
    }
}

/// From `@odata.type`.
pub fn kind_from_type(t: &str) -> Option<Kind> {
    let t = t
        .trim_start_matches('#')
        .trim_start_matches("microsoft.graph.");
    let l = t.to_ascii_lowercase();
    Some(match l.as_str() {
        "user" => Kind::User,
        "device" => Kind::EntraDevice,
        "group" => Kind::Group,
        "deviceandappmanagementassignmentfilter" | "assignmentfilter" => Kind::Filter,
        "devicemanagementconfigurationpolicy" | "devicemanagementintent" => Kind::Policy,
        // Enrollment settings, not device configuration, whatever their type names end with.
        "devicecomanagementauthorityconfiguration"
        | "windows10enrollmentcompletionpageconfiguration"
        | "windowshelloforbusinessauthenticationmethod" => Kind::Skip("enrollment profiles"),
        "conditionalaccesspolicy" => Kind::Skip("conditional access policies"),
        "notificationmessagetemplate" => Kind::Skip("notification templates"),
        "devicemanagementscript" | "devicehealthscript" => Kind::Skip("scripts"),
        _ if l.ends_with("manageddevice") => Kind::ManagedDevice,
        _ if l.contains("managedappprotection")
            || l.contains("managedappconfiguration")
            || l.contains("windowsinformationprotection") =>
        {
            Kind::Skip("app protection policies")
        }
        _ if l.ends_with("app") || l.ends_with("apppackage") => Kind::Skip("apps"),
        _ if l.contains("autopilot") || l.contains("enrollment") => {
            Kind::Skip("enrollment profiles")
        }
        _ if l.ends_with("compliancepolicy")
            || l.ends_with("configuration")
            || l.ends_with("updateprofile")
            || l.ends_with("policy") =>
        {
            Kind::Policy
        }
        _ => return None,
    })
}

/// From `@odata.context`, e.g. `…/$metadata#deviceManagement/managedDevices`.
pub fn kind_from_context(ctx: &str) -> Option<Kind> {
    let after = ctx.split('#').nth(1)?;
    let path = after.split(['(', '/']).collect::<Vec<_>>();
    let name = if path.first() == Some(&"deviceManagement") {
        path.get(1)?
    } else {
        path.first()?
    };
    kind_from_name(name)
}

/// From a collection or file name: `users`, `managedDevices.ndjson`…
pub fn kind_from_name(name: &str) -> Option<Kind> {
    let l: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    Some(match l.as_str() {
        "users" | "user" => Kind::User,
        "manageddevices" | "intunedevices" => Kind::ManagedDevice,
        "devices" | "entradevices" | "device" => Kind::EntraDevice,
        "groups" | "group" => Kind::Group,
        "groupmembers" | "members" | "memberships" | "transitivemembers" => Kind::GroupMember,
        "assignmentfilters" | "filters" => Kind::Filter,
        "configurationpolicies"
        | "deviceconfigurations"
        | "devicecompliancepolicies"
        | "policies"
        | "intents"
        | "windowsupdateforbusinessconfigurations"
        | "windowsdriverupdateprofiles" => Kind::Policy,
        _ => return None,
    })
}

/// From the keys an object has, when nothing names its type.
pub fn kind_from_shape(o: &serde_json::Map<String, serde_json::Value>) -> Option<Kind> {
    let has = |k: &str| o.contains_key(k);
    Some(
        if has("conditions") && (has("grantControls") || has("sessionControls")) {
            Kind::Skip("conditional access policies")
        } else if has("brandingOptions") || has("localizedNotificationMessages") {
            Kind::Skip("notification templates")
        } else if has("userPrincipalName") {
            Kind::User
        } else if has("azureADDeviceId")
            || (has("deviceName") && (has("managedDeviceOwnerType") || has("operatingSystem")))
        {
            Kind::ManagedDevice
        } else if has("deviceId")
            && (has("operatingSystem") || has("trustType") || has("physicalIds"))
        {
            Kind::EntraDevice
        } else if has("groupId") && has("memberId") {
            Kind::GroupMember
        } else if has("membershipRule")
            || has("groupTypes")
            || has("securityEnabled")
            || has("mailEnabled")
        {
            Kind::Group
        } else if has("rule") && has("platform") && (has("displayName") || has("id")) {
            Kind::Filter
        } else if (has("settings") && (has("platforms") || has("technologies"))) || is_intent(o) {
            Kind::Policy
        } else {
            return None;
        },
    )
}

/// An endpoint-security intent or security baseline: Graph's
/// `deviceManagementIntent`, or the PowerShell samples' export of one
/// (`TemplateId` and `settingsDelta`, no `@odata.type`).
pub fn is_intent(o: &serde_json::Map<String, serde_json::Value>) -> bool {
    intent_rule(
        o.get("@odata.type").and_then(|t| t.as_str()),
        o.contains_key("templateId") || o.contains_key("TemplateId"),
        o.contains_key("settingsDelta") || o.contains_key("settings"),
    )
}

/// The one rule behind [`is_intent`] and `PolicyRec::into_policy`.
fn intent_rule(odata_type: Option<&str>, has_template: bool, has_settings: bool) -> bool {
    match odata_type {
        Some(t) => t.to_ascii_lowercase().ends_with("devicemanagementintent"),
        None => has_template && has_settings,
    }
}

/// A field that Graph writes as a boolean and some exports as `"True"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Flex {
    Bool(bool),
    Text(String),
    Num(f64),
}

impl Flex {
    fn canonical(&self) -> Option<&'static str> {
        match self {
            Flex::Bool(true) => Some("true"),
            Flex::Bool(false) => Some("false"),
            Flex::Text(s) => canonical_bool(s),
            Flex::Num(n) => Some(if *n != 0.0 { "true" } else { "false" }),
        }
    }
}

/// `manager` as an id string or an expanded `{ "id": … }` object.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum IdRef {
    Id(String),
    Object { id: Option<String> },
}

impl IdRef {
    fn id(&self) -> Option<&str> {
        match self {
            IdRef::Id(s) => Some(s),
            IdRef::Object { id } => id.as_deref(),
        }
    }
}

/// A rule-level error: which field of the record, and what is wrong.
#[derive(Debug)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn missing(field: &str, what: &str) -> FieldError {
    FieldError {
        field: field.into(),
        message: format!("missing: {what}"),
    }
}

type Ext = Option<BTreeMap<String, Option<String>>>;

/// A record's directory extension properties (`extension_<app id>_<name>`),
/// as strings, the way dynamic membership rules compare them. Other keys the
/// record does not name are skipped, and so are multi-valued extensions,
/// which rules cannot use.
#[derive(Debug, Default)]
pub struct DirExtensions(Vec<(String, String)>);

impl<'de> Deserialize<'de> for DirExtensions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = DirExtensions;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<DirExtensions, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !is_extension_name(&key) {
                        map.next_value::<serde::de::IgnoredAny>()?;
                        continue;
                    }
                    let text = match map.next_value::<serde_json::Value>()? {
                        serde_json::Value::String(s) => s,
                        serde_json::Value::Bool(b) => b.to_string(),
                        serde_json::Value::Number(n) => n.to_string(),
                        _ => continue,
                    };
                    out.push((key, text));
                }
                Ok(DirExtensions(out))
            }
        }
        d.deserialize_map(Keys)
    }
}

fn ext_number(key: &str) -> Option<u8> {
    let n: u8 = key.strip_prefix("extensionAttribute")?.parse().ok()?;
    (1..=15).contains(&n).then_some(n)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRec<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    user_principal_name: Option<Text<'a>>,
    #[serde(borrow)]
    display_name: Option<Text<'a>>,
    #[serde(borrow)]
    given_name: Option<Text<'a>>,
    #[serde(borrow)]
    surname: Option<Text<'a>>,
    #[serde(borrow)]
    mail: Option<Text<'a>>,
    #[serde(borrow)]
    mail_nickname: Option<Text<'a>>,
    #[serde(borrow)]
    department: Option<Text<'a>>,
    #[serde(borrow)]
    job_title: Option<Text<'a>>,
    #[serde(borrow)]
    company_name: Option<Text<'a>>,
    #[serde(borrow)]
    city: Option<Text<'a>>,
    #[serde(borrow)]
    state: Option<Text<'a>>,
    #[serde(borrow)]
    country: Option<Text<'a>>,
    #[serde(borrow)]
    usage_location: Option<Text<'a>>,
    #[serde(borrow)]
    office_location: Option<Text<'a>>,
    #[serde(borrow)]
    employee_id: Option<Text<'a>>,
    #[serde(borrow)]
    employee_type: Option<Text<'a>>,
    #[serde(borrow)]
    employee_hire_date: Option<Text<'a>>,
    #[serde(borrow)]
    user_type: Option<Text<'a>>,
    account_enabled: Option<Flex>,
    manager: Option<IdRef>,
    on_premises_sync_enabled: Option<Flex>,
    #[serde(borrow)]
    preferred_language: Option<Text<'a>>,
    #[serde(borrow)]
    other_mails: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    proxy_addresses: Option<Vec<Text<'a>>>,
    assigned_plans: Option<Vec<AssignedPlan>>,
    on_premises_extension_attributes: Ext,
    #[serde(flatten)]
    extensions: DirExtensions,
    /// ringmaster's own flags: Graph has no VIP or IT-staff property.
    #[serde(alias = "vip")]
    is_vip: Option<Flex>,
    #[serde(alias = "itStaff")]
    is_it_staff: Option<Flex>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignedPlan {
    service_plan_id: Option<String>,
    capability_status: Option<String>,
    service: Option<String>,
}

impl UserRec<'_> {
    /// What would stop the record from being applied; checked as it is
    /// parsed, so that applying it cannot fail.
    pub fn check(&self) -> Result<(), FieldError> {
        self.id
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| missing("id", "every user needs its Entra object id"))?;
        Ok(())
    }

    /// The user's object id (after [`Self::check`]).
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }

    /// Gathers the user's values for `row`.
    pub fn write(&self, row: u32, b: &mut Writes) {
        use UserAttr as U;
        let text = [
            (U::Upn, &self.user_principal_name),
            (U::DisplayName, &self.display_name),
            (U::GivenName, &self.given_name),
            (U::Surname, &self.surname),
            (U::Mail, &self.mail),
            (U::MailNickname, &self.mail_nickname),
            (U::Department, &self.department),
            (U::JobTitle, &self.job_title),
            (U::CompanyName, &self.company_name),
            (U::City, &self.city),
            (U::State, &self.state),
            (U::Country, &self.country),
            (U::UsageLocation, &self.usage_location),
            (U::OfficeLocation, &self.office_location),
            (U::EmployeeId, &self.employee_id),
            (U::EmployeeType, &self.employee_type),
            (U::EmployeeHireDate, &self.employee_hire_date),
            (U::UserType, &self.user_type),
            (U::PreferredLanguage, &self.preferred_language),
        ];
        for (a, v) in text {
            b.set_user(row, a, v.as_deref());
        }
        for (a, v) in [
            (U::AccountEnabled, &self.account_enabled),
            (U::DirSyncEnabled, &self.on_premises_sync_enabled),
            (U::IsVip, &self.is_vip),
            (U::IsItStaff, &self.is_it_staff),
        ] {
            b.set_user(row, a, v.as_ref().and_then(Flex::canonical));
        }
        b.set_user(row, U::Manager, self.manager.as_ref().and_then(IdRef::id));
        if let Some(v) = &self.other_mails {
            b.set_user_multi(row, UserMulti::OtherMails, v.iter().map(AsRef::as_ref));
        }
        if let Some(v) = &self.proxy_addresses {
            b.set_user_multi(row, UserMulti::ProxyAddresses, v.iter().map(AsRef::as_ref));
        }
        if let Some(plans) = &self.assigned_plans {
            b.set_user_records(
                row,
                UserMulti::AssignedPlans,
                (plans.iter())
                    .map(|p| {
                        [&p.service_plan_id, &p.capability_status, &p.service]
                            .map(Clone::clone)
                            .to_vec()
                    })
                    .collect(),
            );
        }
        for (k, v) in self.on_premises_extension_attributes.iter().flatten() {
            if let Some(n) = ext_number(k) {
                b.set_user(row, U::Ext(n), v.as_deref());
            }
        }
        for (k, v) in &self.extensions.0 {
            b.set_user_ext(row, k, v);
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedDeviceRec<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    device_name: Option<Text<'a>>,
    #[serde(rename = "azureADDeviceId", alias = "azureAdDeviceId")]
    #[serde(borrow)]
    azure_ad_device_id: Option<Text<'a>>,
    #[serde(borrow)]
    operating_system: Option<Text<'a>>,
    #[serde(borrow)]
    os_version: Option<Text<'a>>,
    #[serde(borrow)]
    model: Option<Text<'a>>,
    #[serde(borrow)]
    manufacturer: Option<Text<'a>>,
    #[serde(borrow)]
    managed_device_owner_type: Option<Text<'a>>,
    #[serde(borrow)]
    join_type: Option<Text<'a>>,
    #[serde(borrow)]
    enrollment_profile_name: Option<Text<'a>>,
    #[serde(borrow)]
    device_category_display_name: Option<Text<'a>>,
    #[serde(borrow)]
    sku_family: Option<Text<'a>>,
    #[serde(borrow)]
    processor_architecture: Option<Text<'a>>,
    #[serde(borrow)]
    user_id: Option<Text<'a>>,
    #[serde(borrow)]
    last_sync_date_time: Option<Text<'a>>,
    #[serde(borrow)]
    serial_number: Option<Text<'a>>,
    #[serde(borrow)]
    jail_broken: Option<Text<'a>>,
    #[serde(borrow)]
    compliance_state: Option<Text<'a>>,
    /// ringmaster's own flag for lab and test devices.
    #[serde(alias = "lab")]
    is_lab: Option<Flex>,
    /// Beta: who signed in to the device (`loggedOnUser`).
    users_logged_on: Option<Vec<LoggedOnUser>>,
    #[serde(borrow)]
    role_scope_tag_ids: Option<Vec<Text<'a>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoggedOnUser {
    user_id: Option<String>,
    last_log_on_date_time: Option<String>,
}

impl ManagedDeviceRec<'_> {
    /// What would stop the record from being applied; checked as it is
    /// parsed, so that applying it cannot fail.
    pub fn check(&self) -> Result<(), FieldError> {
        let id = self.id.as_deref().unwrap_or("");
        let aad = self.azure_ad_device_id.as_deref().unwrap_or("");
        if id.trim().is_empty() && aad.trim().is_empty() {
            return Err(missing(
                "id",
                "a managed device needs its Intune id or azureADDeviceId",
            ));
        }
        self.logons()?;
        scope_tags(self.role_scope_tag_ids.as_deref())?;
        Ok(())
    }

    /// The ids the device is found by (after [`Self::check`]).
    pub fn keys(&self) -> [DeviceKey<'_>; 2] {
        let id = self.id.as_deref().unwrap_or("");
        let aad = self.azure_ad_device_id.as_deref().unwrap_or("");
        [DeviceKey::ManagedId(id), DeviceKey::DeviceId(aad)]
    }

    /// Who signed in, and when.
    #[allow(clippy::type_complexity)]
    fn logons(&self) -> Result<Vec<(&str, Option<jiff::Timestamp>)>, FieldError> {
        let mut logons = Vec::new();
        for (i, l) in self.users_logged_on.iter().flatten().enumerate() {
            let user = l.user_id.as_deref().map(str::trim).unwrap_or("");
            if user.is_empty() || is_zero_guid(user) {
                return Err(missing(
                    &format!("usersLoggedOn[{i}].userId"),
                    "a sign-in needs the user's object id",
                ));
            }
            let at = match l.last_log_on_date_time.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(t) => Some(parse_time(t).ok_or_else(|| FieldError {
                    field: format!("usersLoggedOn[{i}].lastLogOnDateTime"),
                    message: format!("'{t}' is not a date and time (like 2026-11-20T08:15:00Z)"),
                })?),
            };
            logons.push((user, at));
        }
        Ok(logons)
    }

    /// Gathers the device's values for `row` (after [`Self::check`]).
    pub fn write(&self, row: u32, b: &mut Writes) {
        let tags = scope_tags(self.role_scope_tag_ids.as_deref()).unwrap_or_default();
        if !tags.is_empty() {
            b.set_device_multi(row, DeviceMulti::ScopeTags, tags.iter().map(String::as_str));
        }
        for (user, at) in self.logons().unwrap_or_default() {
            b.add_logon(row, user, at);
        }
        use DeviceAttr as D;
        if let Some(os) = &self.operating_system {
            let p = platform_of(os, self.model.as_deref());
            b.set_device(row, D::Platform, p.map(|p| p.as_str()));
        }
        for (a, v) in [
            (D::Name, &self.device_name),
            (D::OsVersion, &self.os_version),
            (D::Model, &self.model),
            (D::Manufacturer, &self.manufacturer),
            (D::EnrollmentProfile, &self.enrollment_profile_name),
            (D::Category, &self.device_category_display_name),
            (D::Sku, &self.sku_family),
            (D::CpuArch, &self.processor_architecture),
            (D::PrimaryUser, &self.user_id),
            (D::LastCheckIn, &self.last_sync_date_time),
            (D::Serial, &self.serial_number),
        ] {
            b.set_device(row, a, v.as_deref().filter(|s| !is_zero_guid(s)));
        }
        let ownership = self
            .managed_device_owner_type
            .as_deref()
            .and_then(canonical_ownership);
        b.set_device(row, D::Ownership, ownership);
        b.set_device(
            row,
            D::TrustType,
            self.join_type.as_deref().and_then(canonical_trust),
        );
        b.set_device(
            row,
            D::IsRooted,
            self.jail_broken.as_deref().and_then(canonical_bool),
        );
        if let Some(c) = &self.compliance_state {
            b.set_device(
                row,
                D::IsCompliant,
                Some(if c.eq_ignore_ascii_case("compliant") {
                    "true"
                } else {
                    "false"
                }),
            );
        }
        b.set_device(
            row,
            D::IsLab,
            self.is_lab.as_ref().and_then(Flex::canonical),
        );
    }
}

/// Graph's date-times: RFC 3339, sometimes without the offset (taken as UTC).
fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    s.parse::<jiff::Timestamp>().ok().or_else(|| {
        s.parse::<jiff::civil::DateTime>()
            .ok()?
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp())
    })
}

fn is_zero_guid(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b == b'0' || b == b'-')
}

/// Intune says `iOS` for iPads too; the model tells them apart.
fn platform_of(os: &str, model: Option<&str>) -> Option<Platform> {
    let p = Platform::parse(os)?;
    Some(
        if p == Platform::Ios && model.is_some_and(|m| m.to_ascii_lowercase().starts_with("ipad")) {
            Platform::IpadOs
        } else {
            p
        },
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntraDeviceRec<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    device_id: Option<Text<'a>>,
    #[serde(borrow)]
    display_name: Option<Text<'a>>,
    #[serde(borrow)]
    operating_system: Option<Text<'a>>,
    #[serde(borrow)]
    operating_system_version: Option<Text<'a>>,
    #[serde(borrow)]
    trust_type: Option<Text<'a>>,
    #[serde(borrow)]
    manufacturer: Option<Text<'a>>,
    #[serde(borrow)]
    model: Option<Text<'a>>,
    account_enabled: Option<Flex>,
    #[serde(borrow)]
    physical_ids: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    system_labels: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    profile_type: Option<Text<'a>>,
    extension_attributes: Ext,
    #[serde(borrow)]
    enrollment_profile_name: Option<Text<'a>>,
    #[serde(borrow)]
    device_ownership: Option<Text<'a>>,
    #[serde(borrow)]
    management_type: Option<Text<'a>>,
    is_compliant: Option<Flex>,
    #[serde(borrow)]
    mdm_app_id: Option<Text<'a>>,
    #[serde(borrow)]
    device_category: Option<Text<'a>>,
    #[serde(alias = "lab")]
    is_lab: Option<Flex>,
    #[serde(flatten)]
    extensions: DirExtensions,
}

impl EntraDeviceRec<'_> {
    /// What would stop the record from being applied; checked as it is
    /// parsed, so that applying it cannot fail.
    pub fn check(&self) -> Result<(), FieldError> {
        self.id
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| missing("id", "every Entra device needs its object id"))?;
        Ok(())
    }

    /// The ids the device is found by (after [`Self::check`]).
    pub fn keys(&self) -> [DeviceKey<'_>; 2] {
        [
            DeviceKey::ObjectId(self.id.as_deref().unwrap_or_default()),
            DeviceKey::DeviceId(self.device_id.as_deref().unwrap_or("")),
        ]
    }

    /// Gathers the device's values for `row`.
    pub fn write(&self, row: u32, b: &mut Writes) {
        use DeviceAttr as D;
        if let Some(os) = &self.operating_system {
            b.set_device(row, D::EntraOsType, Some(os));
            b.set_device_if_empty(
                row,
                D::Platform,
                platform_of(os, self.model.as_deref()).map(|p| p.as_str()),
            );
        }
        // Intune's values win where both have one: they are what filters see.
        for (a, v) in [
            (D::Name, &self.display_name),
            (D::OsVersion, &self.operating_system_version),
            (D::Manufacturer, &self.manufacturer),
            (D::Model, &self.model),
            (D::EnrollmentProfile, &self.enrollment_profile_name),
            (D::Category, &self.device_category),
        ] {
            b.set_device_if_empty(row, a, v.as_deref());
        }
        for (a, v) in [
            (D::ProfileType, &self.profile_type),
            (D::ManagementType, &self.management_type),
            (D::ManagementAppId, &self.mdm_app_id),
        ] {
            b.set_device(row, a, v.as_deref());
        }
        b.set_device(
            row,
            D::TrustType,
            self.trust_type.as_deref().and_then(canonical_trust),
        );
        b.set_device_if_empty(
            row,
            D::Ownership,
            self.device_ownership
                .as_deref()
                .and_then(canonical_ownership),
        );
        b.set_device(
            row,
            D::AccountEnabled,
            self.account_enabled.as_ref().and_then(Flex::canonical),
        );
        b.set_device_if_empty(
            row,
            D::IsCompliant,
            self.is_compliant.as_ref().and_then(Flex::canonical),
        );
        b.set_device(
            row,
            D::IsLab,
            self.is_lab.as_ref().and_then(Flex::canonical),
        );
        if let Some(v) = &self.physical_ids {
            b.set_device_multi(row, DeviceMulti::PhysicalIds, v.iter().map(AsRef::as_ref));
        }
        if let Some(v) = &self.system_labels {
            b.set_device_multi(row, DeviceMulti::SystemLabels, v.iter().map(AsRef::as_ref));
        }
        for (k, v) in self.extension_attributes.iter().flatten() {
            if let Some(n) = ext_number(k) {
                b.set_device(row, D::Ext(n), v.as_deref());
            }
        }
        for (k, v) in &self.extensions.0 {
            b.set_device_ext(row, k, v);
        }
    }
}

/// A directory object as `members` lists it.
#[derive(Debug, Deserialize)]
pub struct DirectoryObject {
    id: Option<String>,
    #[serde(rename = "@odata.type")]
    odata_type: Option<String>,
}

fn member_kind(t: Option<&str>) -> Option<MemberKind> {
    let t = t?
        .trim_start_matches('#')
        .trim_start_matches("microsoft.graph.")
        .to_ascii_lowercase();
    match t.as_str() {
        "user" => Some(MemberKind::User),
        "device" => Some(MemberKind::Device),
        "group" => Some(MemberKind::Group),
        _ => None,
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRec {
    id: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    group_types: Option<Vec<String>>,
    membership_rule: Option<String>,
    members: Option<Vec<DirectoryObject>>,
}

impl GroupRec {
    /// The group, and member records named inline.
    pub fn into_group(self) -> Result<Group, FieldError> {
        let name = self.display_name.clone().filter(|s| !s.trim().is_empty());
        let id = self
            .id
            .clone()
            .filter(|s| !s.trim().is_empty())
            .or(name.clone())
            .ok_or_else(|| missing("id", "a group needs an id or a displayName"))?;
        let dynamic = self
            .group_types
            .iter()
            .flatten()
            .any(|t| t.eq_ignore_ascii_case("DynamicMembership"));
        let rule = self.membership_rule.filter(|r| !r.trim().is_empty());
        let kind = match rule {
            Some(rule) => {
                if let Err(e) = Rule::parse(Grammar::EntraDynamicMembership, &rule) {
                    return Err(FieldError {
                        field: "membershipRule".into(),
                        message: format!("{}\n{}", rule_error_line(&rule, &e), e.render(&rule)),
                    });
                }
                GroupKind::Dynamic { rule }
            }
            None if dynamic => {
                return Err(missing(
                    "membershipRule",
                    "groupTypes says DynamicMembership but there is no rule",
                ));
            }
            None => GroupKind::Static {
                members: self
                    .members
                    .into_iter()
                    .flatten()
                    .filter_map(|m| {
                        Some(MemberRef {
                            kind: member_kind(m.odata_type.as_deref()),
                            id: m.id?,
                        })
                    })
                    .collect(),
            },
        };
        Ok(Group {
            name: name.unwrap_or_else(|| id.clone()),
            id,
            description: self.description,
            kind,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRec<'a> {
    #[serde(borrow)]
    pub group_id: Text<'a>,
    #[serde(borrow, alias = "id")]
    pub member_id: Text<'a>,
    #[serde(borrow, alias = "@odata.type", alias = "type")]
    pub member_type: Option<Text<'a>>,
}

impl MemberRec<'_> {
    /// The member's kind, when the record says it.
    pub fn kind(&self) -> Result<Option<MemberKind>, FieldError> {
        match self.member_type.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(t) => Ok(Some(member_kind(Some(t)).ok_or_else(|| FieldError {
                field: "memberType".into(),
                message: format!("'{t}' is not user, device or group"),
            })?)),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterRec {
    id: Option<String>,
    display_name: Option<String>,
    platform: Option<String>,
    rule: Option<String>,
    assignment_filter_management_type: Option<String>,
}

impl FilterRec {
    pub fn into_filter(self) -> Result<Filter, FieldError> {
        let rule = self
            .rule
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| missing("rule", "an assignment filter needs its rule"))?;
        let id = self
            .id
            .filter(|s| !s.trim().is_empty())
            .or(self.display_name.clone())
            .ok_or_else(|| missing("id", "a filter needs an id or a displayName"))?;
        let parsed =
            Rule::parse(Grammar::IntuneAssignmentFilter, &rule).map_err(|e| FieldError {
                field: "rule".into(),
                message: format!("{}\n{}", rule_error_line(&rule, &e), e.render(&rule)),
            })?;
        let for_apps = self
            .assignment_filter_management_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("apps"))
            || parsed.object == ringmaster_core::rules::Object::App;
        Ok(Filter {
            name: self.display_name.unwrap_or_else(|| id.clone()),
            id,
            platform: self.platform,
            rule,
            for_apps,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRec {
    id: Option<String>,
    name: Option<String>,
    display_name: Option<String>,
    #[serde(rename = "@odata.type")]
    odata_type: Option<String>,
    platforms: Option<String>,
    template_reference: Option<TemplateRef>,
    /// Intents: the template they were made from (`TemplateId` in the samples' exports).
    #[serde(alias = "TemplateId")]
    template_id: Option<String>,
    assignments: Option<Vec<AssignmentRec>>,
    settings: Option<Vec<serde_json::Value>>,
    /// Intents as the PowerShell samples export them: only what differs from the template.
    settings_delta: Option<Vec<serde_json::Value>>,
    /// Administrative templates (ADMX).
    definition_values: Option<Vec<serde_json::Value>>,
    last_modified_date_time: Option<String>,
    role_scope_tag_ids: Option<Vec<String>>,
    /// Everything else: the flat settings of legacy profiles and compliance policies.
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TemplateRef {
    template_family: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AssignmentRec {
    target: TargetRec,
}

#[derive(Debug, Deserialize)]
struct TargetRec {
    #[serde(rename = "@odata.type")]
    odata_type: Option<String>,
    #[serde(rename = "groupId")]
    group_id: Option<String>,
    #[serde(rename = "deviceAndAppManagementAssignmentFilterId")]
    filter_id: Option<String>,
    #[serde(rename = "deviceAndAppManagementAssignmentFilterType")]
    filter_type: Option<String>,
    /// IntuneCD strips `groupId` and names the group instead.
    #[serde(rename = "groupName")]
    group_name: Option<String>,
    #[serde(rename = "groupType")]
    group_type: Option<String>,
    #[serde(rename = "membershipRule")]
    membership_rule: Option<String>,
}

impl PolicyRec {
    /// Targets that name their group by display name only (IntuneCD); the
    /// policy carries the name as the group id until the load resolves it.
    pub(crate) fn group_names(&self) -> Result<Vec<crate::intunecd::NamedTarget>, FieldError> {
        let mut out = Vec::new();
        for (i, a) in self.assignments.iter().flatten().enumerate() {
            let t = &a.target;
            if t.group_id.as_deref().is_some_and(|g| !g.trim().is_empty()) {
                continue;
            }
            let Some(name) = t
                .group_name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
            else {
                continue;
            };
            let field = format!("assignments[{i}].target");
            let membership = crate::intunecd::membership(
                t.group_type.as_deref(),
                t.membership_rule.as_deref(),
                &field,
            )?;
            out.push(crate::intunecd::NamedTarget {
                assignment: i,
                name: name.to_string(),
                membership,
                field,
            });
        }
        Ok(out)
    }

    pub fn into_policy(self, source: &str) -> Result<Policy, FieldError> {
        let name = self
            .name
            .or(self.display_name)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| missing("name", "a policy needs a name or displayName"))?;
        let intent = intent_rule(
            self.odata_type.as_deref(),
            self.template_id.is_some(),
            self.settings_delta.is_some() || self.settings.is_some(),
        );
        let odata = self
            .odata_type
            .as_deref()
            .map(|t| {
                t.trim_start_matches('#')
                    .trim_start_matches("microsoft.graph.")
                    .to_string()
            })
            .unwrap_or_else(|| {
                if intent {
                    "deviceManagementIntent"
                } else if self.definition_values.is_some() {
                    "groupPolicyConfiguration"
                } else {
                    "deviceManagementConfigurationPolicy"
                }
                .into()
            });
        // Exports without ids (templates, id-stripped backups) key policies by
        // kind and name, so a compliance policy and a profile of one name stay two.
        let id = self
            .id
            .filter(|s| !s.trim().is_empty() && !is_zero_guid(s))
            .unwrap_or_else(|| format!("{odata}:{name}"));
        let l = odata.to_ascii_lowercase();
        let kind = if l == "devicemanagementconfigurationpolicy" {
            PolicyKind::SettingsCatalog
        } else if l.ends_with("compliancepolicy") {
            PolicyKind::Compliance
        } else if l.contains("updateforbusiness") {
            PolicyKind::UpdateRing
        } else if l.contains("driverupdate") {
            PolicyKind::DriverUpdate
        } else if l.ends_with("configuration") || intent {
            PolicyKind::DeviceConfiguration
        } else {
            PolicyKind::Other
        };
        let intent_settings = match (&self.settings, &self.settings_delta) {
            (Some(s), _) if intent && !s.is_empty() => Some(s.as_slice()),
            (_, Some(d)) if intent => Some(d.as_slice()),
            (Some(s), _) if intent => Some(s.as_slice()),
            _ => None,
        };
        let mut platforms: Vec<Platform> = match (&self.platforms, intent_settings) {
            (Some(p), _) => p.split(',').filter_map(Platform::parse).collect(),
            (None, Some(s)) => crate::templates::intent_types(s)
                .iter()
                .flat_map(|t| platforms_of_type(&t.to_ascii_lowercase()))
                .collect(),
            (None, None) => platforms_of_type(&l),
        };
        if platforms.contains(&Platform::Ios) && !platforms.contains(&Platform::IpadOs) {
            platforms.push(Platform::IpadOs);
        }
        platforms.sort();
        platforms.dedup();
        let mut assignments = Vec::new();
        for (i, a) in self.assignments.into_iter().flatten().enumerate() {
            let t = a.target;
            let ty = t
                .odata_type
                .as_deref()
                .unwrap_or("")
                .trim_start_matches('#')
                .trim_start_matches("microsoft.graph.")
                .to_ascii_lowercase();
            let gid = t
                .group_id
                .clone()
                .filter(|g| !g.trim().is_empty())
                .or_else(|| {
                    t.group_name
                        .as_deref()
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_string)
                });
            let target = match (ty.as_str(), gid) {
                ("alldevicesassignmenttarget", _) => Target::AllDevices,
                ("alllicensedusersassignmenttarget", _) => Target::AllUsers,
                (_, Some(g)) if g.eq_ignore_ascii_case(ALL_DEVICES_ID) => Target::AllDevices,
                (_, Some(g)) if g.eq_ignore_ascii_case(ALL_USERS_ID) => Target::AllUsers,
                ("exclusiongroupassignmenttarget", Some(g)) => Target::ExcludeGroup(g),
                ("groupassignmenttarget" | "", Some(g)) => Target::Group(g),
                (_, None) if ty.contains("group") => {
                    return Err(missing(
                        &format!("assignments[{i}].target.groupId"),
                        "a group assignment needs the group id (or, from IntuneCD, groupName)",
                    ));
                }
                (other, _) => {
                    return Err(FieldError {
                        field: format!("assignments[{i}].target.@odata.type"),
                        message: format!("unknown assignment target '{other}'"),
                    });
                }
            };
            let filter = match (
                t.filter_id
                    .filter(|f| !f.trim().is_empty() && !is_zero_guid(f)),
                t.filter_type.as_deref(),
            ) {
                (None, _) | (_, Some("none")) => None,
                (Some(f), Some(m)) => Some(AssignmentFilter {
                    filter_id: f,
                    mode: match m.to_ascii_lowercase().as_str() {
                        "include" => FilterMode::Include,
                        "exclude" => FilterMode::Exclude,
                        other => {
                            return Err(FieldError {
                                field: format!(
                                    "assignments[{i}].target.deviceAndAppManagementAssignmentFilterType"
                                ),
                                message: format!("'{other}' is not include, exclude or none"),
                            });
                        }
                    },
                }),
                (Some(_), None) => {
                    return Err(missing(
                        &format!(
                            "assignments[{i}].target.deviceAndAppManagementAssignmentFilterType"
                        ),
                        "a filter id needs its mode",
                    ));
                }
            };
            if matches!(target, Target::ExcludeGroup(_)) && filter.is_some() {
                return Err(FieldError {
                    field: format!("assignments[{i}].target"),
                    message: "Intune does not allow a filter on an excluded group".into(),
                });
            }
            assignments.push(Assignment { target, filter });
        }
        let applicability = applicability_rules(&self.rest)?;
        let last_modified = match self.last_modified_date_time.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) => Some(t.parse::<jiff::Timestamp>().map_err(|e| FieldError {
                field: "lastModifiedDateTime".into(),
                message: format!("not a date and time with an offset ({t:?}): {e}"),
            })?),
        };
        let scope_tags = scope_tags(self.role_scope_tag_ids.as_deref())?;
        let settings = match (intent_settings, &self.settings, &self.definition_values) {
            (Some(s), _, _) => crate::templates::intent(s),
            (None, _, Some(d)) => crate::templates::admx(d),
            (None, Some(s), None) => crate::settings::catalog(s),
            (None, None, None) => crate::settings::flat(&odata, &self.rest),
        };
        Ok(Policy {
            id,
            name,
            kind,
            settings: settings.into(),
            applicability,
            odata_type: odata,
            platforms,
            template_family: self
                .template_reference
                .and_then(|t| t.template_family)
                .filter(|f| f != "none"),
            assignments,
            source: source.to_string(),
            last_modified,
            scope_tags,
        })
    }
}

/// `roleScopeTagIds`: Intune's ids are numbers (`0` is Default); IntuneCD
/// backups write the tags' names instead, so any short text is kept.
/// Duplicates are dropped, order kept.
fn scope_tags<S: AsRef<str>>(ids: Option<&[S]>) -> Result<Vec<String>, FieldError> {
    let mut out: Vec<String> = Vec::new();
    for (i, id) in ids.unwrap_or_default().iter().enumerate() {
        let id = id.as_ref().trim();
        if id.is_empty() || id.chars().count() > 128 {
            return Err(FieldError {
                field: format!("roleScopeTagIds[{i}]"),
                message:
                    "a scope tag needs an id (or, from IntuneCD, a name) of 1 to 128 characters"
                        .into(),
            });
        }
        if !out.iter().any(|t| t == id) {
            out.push(id.to_string());
        }
    }
    Ok(out)
}

/// The OS edition and version rules of a legacy device configuration.
fn applicability_rules(
    rest: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<Applicability>, FieldError> {
    let mut out = Vec::new();
    let include = |field: &str, v: &serde_json::Value| -> Result<bool, FieldError> {
        match v
            .get("ruleType")
            .and_then(|r| r.as_str())
            .unwrap_or("include")
        {
            t if t.eq_ignore_ascii_case("include") => Ok(true),
            t if t.eq_ignore_ascii_case("exclude") => Ok(false),
            t => Err(FieldError {
                field: format!("{field}.ruleType"),
                message: format!("'{t}' is not include or exclude"),
            }),
        }
    };
    if let Some(v) = rest
        .get("deviceManagementApplicabilityRuleOsEdition")
        .filter(|v| v.is_object())
    {
        let editions: Vec<String> = v
            .get("osEditionTypes")
            .and_then(|e| e.as_array())
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str())
            .filter(|e| !e.eq_ignore_ascii_case("notConfigured"))
            .map(str::to_string)
            .collect();
        if !editions.is_empty() {
            out.push(Applicability::OsEdition {
                include: include("deviceManagementApplicabilityRuleOsEdition", v)?,
                editions,
            });
        }
    }
    if let Some(v) = rest
        .get("deviceManagementApplicabilityRuleOsVersion")
        .filter(|v| v.is_object())
    {
        let bound = |k: &str| {
            v.get(k)
                .and_then(|b| b.as_str())
                .map(str::trim)
                .filter(|b| !b.is_empty())
                .map(str::to_string)
        };
        let (min, max) = (bound("minOSVersion"), bound("maxOSVersion"));
        for (k, b) in [("minOSVersion", &min), ("maxOSVersion", &max)] {
            if let Some(b) = b
                && ringmaster_core::rules::Version::parse(b).is_none()
            {
                return Err(FieldError {
                    field: format!("deviceManagementApplicabilityRuleOsVersion.{k}"),
                    message: format!("'{b}' is not a version"),
                });
            }
        }
        if min.is_some() || max.is_some() {
            out.push(Applicability::OsVersion {
                include: include("deviceManagementApplicabilityRuleOsVersion", v)?,
                min,
                max,
            });
        }
    }
    Ok(out)
}

fn platforms_of_type(l: &str) -> Vec<Platform> {
    let p = if l.starts_with("windows") || l == "grouppolicyconfiguration" {
        Platform::Windows
    } else if l.starts_with("macos") {
        Platform::MacOs
    } else if l.starts_with("ios") {
        Platform::Ios
    } else if l.starts_with("android") || l.starts_with("aosp") {
        Platform::Android
    } else if l.starts_with("linux") {
        Platform::Linux
    } else {
        return Vec::new();
    };
    vec![p]
}
