//! CSV with a documented column set, told apart by header:
//!
//! - users: `id` (required), `userPrincipalName`, `displayName`, `department`,
//!   `jobTitle`, `companyName`, `city`, `state`, `country`, `usageLocation`,
//!   `officeLocation`, `employeeId`, `employeeType`, `employeeHireDate`,
//!   `userType`, `accountEnabled`, `manager`, `vip`, `itStaff`,
//!   `extensionAttribute1`..`15`.
//! - devices: at least one of `id` (Entra object id), `deviceId`, `intuneId`;
//!   `deviceName`, `platform`, `osVersion`, `model`, `manufacturer`,
//!   `ownership`, `trustType`, `primaryUser`, `lab`, `lastCheckIn`,
//!   `serialNumber`, `category`, `enrollmentProfileName`, `sku`,
//!   `cpuArchitecture`, `managementType`, `extensionAttribute1`..`15`,
//!   `usersLoggedOn` (object ids of the users who signed in, `;`-separated).
//! - group members: `groupId`, `memberId`, optional `memberType`.

use crate::{FileReport, ImportError, State};
use ringmaster_core::model::*;
use ringmaster_core::org::DeviceKey;
use std::path::Path;

pub(crate) fn read(p: &Path, text: &str, st: &mut State) -> Result<(), ImportError> {
    let file = crate::member_file(st, p);
    let State {
        b, members, report, ..
    } = st;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let err = |line: Option<usize>, record: Option<usize>, field: Option<&str>, message: String| {
        ImportError {
            file: p.to_path_buf(),
            record,
            line,
            column: None,
            field: field.map(Into::into),
            message,
        }
    };
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| err(Some(1), None, None, format!("cannot read the header: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let has = |c: &str| headers.iter().any(|h| h.eq_ignore_ascii_case(c));
    let kind = if has("groupId") && has("memberId") {
        "group members"
    } else if has("userPrincipalName") || (has("department") && !has("deviceName")) {
        "users"
    } else if has("deviceName") || has("platform") || has("intuneId") || has("deviceId") {
        "devices"
    } else {
        return Err(err(Some(1), None, None, "cannot tell what this CSV holds: expected the columns of users (userPrincipalName), devices (deviceName, platform) or group members (groupId, memberId)".into()));
    };
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let mut n = 0;
    for (i, rec) in rdr.records().enumerate() {
        let record = i + 1;
        let rec = rec.map_err(|e| {
            err(
                e.position().map(|p| p.line() as usize),
                Some(record),
                None,
                e.to_string(),
            )
        })?;
        let line = rec.position().map(|p| p.line() as usize);
        let get = |name: &str| {
            col(name)
                .and_then(|c| rec.get(c))
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let bad = |field: &str, message: String| err(line, Some(record), Some(field), message);
        let flag = |field: &str| -> Result<Option<&'static str>, ImportError> {
            match get(field) {
                None => Ok(None),
                Some(v) => canonical_bool(v)
                    .map(Some)
                    .ok_or_else(|| bad(field, format!("'{v}' is not true or false"))),
            }
        };
        match kind {
            "group members" => {
                let gid = get("groupId").ok_or_else(|| bad("groupId", "missing".into()))?;
                let mid = get("memberId").ok_or_else(|| bad("memberId", "missing".into()))?;
                let kind = match get("memberType").map(|t| t.to_ascii_lowercase()) {
                    None => None,
                    Some(t) if t == "user" => Some(MemberKind::User),
                    Some(t) if t == "device" => Some(MemberKind::Device),
                    Some(t) if t == "group" => Some(MemberKind::Group),
                    Some(t) => {
                        return Err(bad(
                            "memberType",
                            format!("'{t}' is not user, device or group"),
                        ));
                    }
                };
                members.push((
                    gid.to_string(),
                    MemberRef {
                        id: mid.to_string(),
                        kind,
                    },
                    file,
                ));
            }
            "users" => {
                let id = get("id").ok_or_else(|| {
                    bad("id", "missing: every user needs its Entra object id".into())
                })?;
                let row = b.user(id);
                use UserAttr as U;
                for (c, a) in [
                    ("userPrincipalName", U::Upn),
                    ("displayName", U::DisplayName),
                    ("department", U::Department),
                    ("jobTitle", U::JobTitle),
                    ("companyName", U::CompanyName),
                    ("city", U::City),
                    ("state", U::State),
                    ("country", U::Country),
                    ("usageLocation", U::UsageLocation),
                    ("officeLocation", U::OfficeLocation),
                    ("employeeId", U::EmployeeId),
                    ("employeeType", U::EmployeeType),
                    ("employeeHireDate", U::EmployeeHireDate),
                    ("userType", U::UserType),
                    ("manager", U::Manager),
                    ("mail", U::Mail),
                ] {
                    b.set_user(row, a, get(c));
                }
                for (c, a) in [
                    ("accountEnabled", U::AccountEnabled),
                    ("vip", U::IsVip),
                    ("itStaff", U::IsItStaff),
                ] {
                    b.set_user(row, a, flag(c)?);
                }
                for n in 1..=15u8 {
                    b.set_user(row, U::Ext(n), get(&format!("extensionAttribute{n}")));
                }
            }
            _ => {
                let (id, did, mid) = (
                    get("id").unwrap_or(""),
                    get("deviceId").unwrap_or(""),
                    get("intuneId").unwrap_or(""),
                );
                if id.is_empty() && did.is_empty() && mid.is_empty() {
                    return Err(bad(
                        "id",
                        "missing: a device needs id, deviceId or intuneId".into(),
                    ));
                }
                let row = b.device(&[
                    DeviceKey::ObjectId(id),
                    DeviceKey::DeviceId(did),
                    DeviceKey::ManagedId(mid),
                ]);
                use DeviceAttr as D;
                if let Some(v) = get("platform") {
                    let p = Platform::parse(v).ok_or_else(|| {
                        bad(
                            "platform",
                            format!("'{v}' is not windows, macOS, iOS, iPadOS, android or linux"),
                        )
                    })?;
                    b.set_device(row, D::Platform, Some(p.as_str()));
                }
                if let Some(v) = get("ownership") {
                    let o = canonical_ownership(v).ok_or_else(|| {
                        bad(
                            "ownership",
                            format!("'{v}' is not company (Corporate) or personal"),
                        )
                    })?;
                    b.set_device(row, D::Ownership, Some(o));
                }
                if let Some(v) = get("trustType") {
                    let t = canonical_trust(v).ok_or_else(|| {
                        bad(
                            "trustType",
                            format!("'{v}' is not AzureAD, ServerAD or Workplace"),
                        )
                    })?;
                    b.set_device(row, D::TrustType, Some(t));
                }
                for (c, a) in [
                    ("deviceName", D::Name),
                    ("osVersion", D::OsVersion),
                    ("model", D::Model),
                    ("manufacturer", D::Manufacturer),
                    ("primaryUser", D::PrimaryUser),
                    ("lastCheckIn", D::LastCheckIn),
                    ("serialNumber", D::Serial),
                    ("category", D::Category),
                    ("enrollmentProfileName", D::EnrollmentProfile),
                    ("sku", D::Sku),
                    ("cpuArchitecture", D::CpuArch),
                    ("managementType", D::ManagementType),
                ] {
                    b.set_device(row, a, get(c));
                }
                b.set_device(row, D::IsLab, flag("lab")?);
                for user in get("usersLoggedOn").into_iter().flat_map(|v| v.split(';')) {
                    let user = user.trim();
                    if !user.is_empty() {
                        b.add_logon(row, user, None);
                    }
                }
                for n in 1..=15u8 {
                    b.set_device(row, D::Ext(n), get(&format!("extensionAttribute{n}")));
                }
            }
        }
        n += 1;
    }
    report.files.push(FileReport {
        path: p.display().to_string(),
        records: n,
        kinds: vec![kind.to_string()],
    });
    Ok(())
}
