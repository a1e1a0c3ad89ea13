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
use ringmaster_core::org::{DeviceKey, OrgBuilder};
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
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| {
            error(
                p,
                Some(1),
                None,
                None,
                format!("cannot read the header: {e}"),
            )
        })?
        .iter()
        .map(str::to_string)
        .collect();
    let kind = kind_of(&headers).ok_or_else(|| error(p, Some(1), None, None, "cannot tell what this CSV holds: expected the columns of users (userPrincipalName), devices (deviceName, platform) or group members (groupId, memberId)".into()))?;
    let mut n = 0;
    for (i, rec) in rdr.records().enumerate() {
        let record = i + 1;
        let rec = rec.map_err(|e| {
            error(
                p,
                e.position().map(|p| p.line() as usize),
                Some(record),
                None,
                e.to_string(),
            )
        })?;
        let row = Row {
            path: p,
            headers: &headers,
            line: rec.position().map(|p| p.line() as usize),
            record,
            rec: &rec,
        };
        match kind {
            Kind::Members => {
                let (group, member) = member_row(&row)?;
                members.push(&group, &member.id, member.kind, file);
            }
            Kind::Users => user_row(&row, b)?,
            Kind::Devices => device_row(&row, b)?,
        }
        n += 1;
    }
    report.files.push(FileReport {
        path: p.display().to_string(),
        records: n,
        kinds: vec![kind.name().to_string()],
    });
    Ok(())
}

fn error(
    p: &Path,
    line: Option<usize>,
    record: Option<usize>,
    field: Option<&str>,
    message: String,
) -> ImportError {
    ImportError {
        file: p.to_path_buf(),
        record,
        line,
        column: None,
        field: field.map(Into::into),
        message,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Members,
    Users,
    Devices,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Members => "group members",
            Kind::Users => "users",
            Kind::Devices => "devices",
        }
    }
}

/// What a CSV holds, told by its header (names in any case).
fn kind_of(headers: &[String]) -> Option<Kind> {
    let has = |c: &str| headers.iter().any(|h| h.eq_ignore_ascii_case(c));
    if has("groupId") && has("memberId") {
        Some(Kind::Members)
    } else if has("userPrincipalName") || (has("department") && !has("deviceName")) {
        Some(Kind::Users)
    } else if has("deviceName") || has("platform") || has("intuneId") || has("deviceId") {
        Some(Kind::Devices)
    } else {
        None
    }
}

/// One record, with its place for errors.
struct Row<'a> {
    path: &'a Path,
    headers: &'a [String],
    line: Option<usize>,
    /// 1-based, after the header.
    record: usize,
    rec: &'a csv::StringRecord,
}

impl<'a> Row<'a> {
    /// The value of column `name` (any case), when present and not blank.
    fn get(&self, name: &str) -> Option<&'a str> {
        let rec: &'a csv::StringRecord = self.rec;
        self.headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .and_then(|c| rec.get(c))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    fn bad(&self, field: &str, message: String) -> ImportError {
        error(
            self.path,
            self.line,
            Some(self.record),
            Some(field),
            message,
        )
    }

    /// A true/false column, canonical.
    fn flag(&self, field: &str) -> Result<Option<&'static str>, ImportError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => canonical_bool(v)
                .map(Some)
                .ok_or_else(|| self.bad(field, format!("'{v}' is not true or false"))),
        }
    }
}

/// A group member: the group's id and the member.
fn member_row(r: &Row<'_>) -> Result<(String, MemberRef), ImportError> {
    let gid = r
        .get("groupId")
        .ok_or_else(|| r.bad("groupId", "missing".into()))?;
    let mid = r
        .get("memberId")
        .ok_or_else(|| r.bad("memberId", "missing".into()))?;
    let kind = match r.get("memberType").map(|t| t.to_ascii_lowercase()) {
        None => None,
        Some(t) if t == "user" => Some(MemberKind::User),
        Some(t) if t == "device" => Some(MemberKind::Device),
        Some(t) if t == "group" => Some(MemberKind::Group),
        Some(t) => {
            return Err(r.bad("memberType", format!("'{t}' is not user, device or group")));
        }
    };
    Ok((
        gid.to_string(),
        MemberRef {
            id: mid.to_string(),
            kind,
        },
    ))
}

/// A user, by its Entra object id.
fn user_row(r: &Row<'_>, b: &mut OrgBuilder) -> Result<(), ImportError> {
    let id = r
        .get("id")
        .ok_or_else(|| r.bad("id", "missing: every user needs its Entra object id".into()))?;
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
        b.set_user(row, a, r.get(c));
    }
    for (c, a) in [
        ("accountEnabled", U::AccountEnabled),
        ("vip", U::IsVip),
        ("itStaff", U::IsItStaff),
    ] {
        b.set_user(row, a, r.flag(c)?);
    }
    for n in 1..=15u8 {
        b.set_user(row, U::Ext(n), r.get(&format!("extensionAttribute{n}")));
    }
    Ok(())
}

/// A device, by any of its ids.
fn device_row(r: &Row<'_>, b: &mut OrgBuilder) -> Result<(), ImportError> {
    let (id, did, mid) = (
        r.get("id").unwrap_or(""),
        r.get("deviceId").unwrap_or(""),
        r.get("intuneId").unwrap_or(""),
    );
    if id.is_empty() && did.is_empty() && mid.is_empty() {
        return Err(r.bad(
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
    if let Some(v) = r.get("platform") {
        let p = Platform::parse(v).ok_or_else(|| {
            r.bad(
                "platform",
                format!("'{v}' is not windows, macOS, iOS, iPadOS, android or linux"),
            )
        })?;
        b.set_device(row, D::Platform, Some(p.as_str()));
    }
    if let Some(v) = r.get("ownership") {
        let o = canonical_ownership(v).ok_or_else(|| {
            r.bad(
                "ownership",
                format!("'{v}' is not company (Corporate) or personal"),
            )
        })?;
        b.set_device(row, D::Ownership, Some(o));
    }
    if let Some(v) = r.get("trustType") {
        let t = canonical_trust(v).ok_or_else(|| {
            r.bad(
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
        b.set_device(row, a, r.get(c));
    }
    b.set_device(row, D::IsLab, r.flag("lab")?);
    for user in r
        .get("usersLoggedOn")
        .into_iter()
        .flat_map(|v| v.split(';'))
    {
        let user = user.trim();
        if !user.is_empty() {
            b.add_logon(row, user, None);
        }
    }
    for n in 1..=15u8 {
        b.set_device(row, D::Ext(n), r.get(&format!("extensionAttribute{n}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_header_tells_the_kind() {
        let cases: &[(&[&str], Option<Kind>)] = &[
            (&["groupId", "memberId"], Some(Kind::Members)),
            (&["GROUPID", "memberid", "memberType"], Some(Kind::Members)),
            (&["id", "userPrincipalName"], Some(Kind::Users)),
            (&["id", "department"], Some(Kind::Users)),
            (&["id", "department", "deviceName"], Some(Kind::Devices)),
            (&["intuneId"], Some(Kind::Devices)),
            (&["groupId", "name"], None),
        ];
        for (h, want) in cases {
            assert_eq!(kind_of(&headers(h)), *want, "{h:?}");
        }
    }

    fn row<'a>(headers: &'a [String], rec: &'a csv::StringRecord) -> Row<'a> {
        Row {
            path: Path::new("d.csv"),
            headers,
            line: Some(2),
            record: 1,
            rec,
        }
    }

    #[test]
    fn a_row_reads_columns_in_any_case_and_refuses_bad_flags() {
        let h = headers(&["deviceName", "Lab", "platform"]);
        let rec = csv::StringRecord::from(vec!["PC-1", "maybe", " "]);
        let r = row(&h, &rec);
        assert_eq!(r.get("devicename"), Some("PC-1"));
        assert_eq!(r.get("platform"), None, "blank is missing");
        let e = r.flag("lab").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("lab"));
        assert_eq!((e.line, e.record), (Some(2), Some(1)));
        assert_eq!(e.message, "'maybe' is not true or false");
    }

    #[test]
    fn member_rows_need_both_ids_and_a_known_type() {
        let h = headers(&["groupId", "memberId", "memberType"]);
        let rec = csv::StringRecord::from(vec!["g1", "u1", "User"]);
        let (g, m) = member_row(&row(&h, &rec)).unwrap();
        assert_eq!((g.as_str(), m.kind), ("g1", Some(MemberKind::User)));
        let rec = csv::StringRecord::from(vec!["g1", "u1", "printer"]);
        let e = member_row(&row(&h, &rec)).unwrap_err();
        assert_eq!(e.message, "'printer' is not user, device or group");
        let rec = csv::StringRecord::from(vec!["g1", "", ""]);
        assert_eq!(
            member_row(&row(&h, &rec)).unwrap_err().field.as_deref(),
            Some("memberId")
        );
    }

    #[test]
    fn device_rows_need_an_id_and_known_values() {
        let h = headers(&["id", "deviceName", "platform", "ownership"]);
        let mut b = OrgBuilder::new();
        let rec = csv::StringRecord::from(vec!["d1", "PC-1", "Windows", "Corporate"]);
        device_row(&row(&h, &rec), &mut b).unwrap();
        assert_eq!(b.device_value(0, DeviceAttr::Ownership), Some("company"));
        let rec = csv::StringRecord::from(vec!["", "PC-2", "windows", ""]);
        let e = device_row(&row(&h, &rec), &mut b).unwrap_err();
        assert_eq!(
            e.message,
            "missing: a device needs id, deviceId or intuneId"
        );
        let rec = csv::StringRecord::from(vec!["d3", "PC-3", "amiga", ""]);
        let e = device_row(&row(&h, &rec), &mut b).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("platform"));
    }
}
