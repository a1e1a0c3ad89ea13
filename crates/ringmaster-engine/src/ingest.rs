//! Reading what devices, the help desk and pilot users report, from files:
//! JSON arrays, Graph pages (`value`), NDJSON or CSV, with the column names
//! Intune, ServiceNow, Zendesk and Jira exports use. A malformed record is
//! rejected with its place and reason; the others are kept.

use ringmaster_core::status::{DeviceState, Feedback, StatusReport, Ticket};
use serde_json::{Map, Value};

/// A record that was not kept, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// 1-based record number (CSV: data row; NDJSON: line).
    pub record: usize,
    pub reason: String,
}

/// A record with its 1-based number in the file.
type Numbered = (usize, Map<String, Value>);

/// The longest field a record may carry: tickets' descriptions fit many
/// times over; a larger one is a broken export, not data to store.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;

/// Records of one file, field names lowercased and stripped of spaces,
/// dashes and underscores so `Device ID`, `device_id` and `deviceId` meet;
/// for CSV also the header's names.
fn records(text: &str) -> Result<(Vec<Numbered>, Option<Vec<String>>), String> {
    let norm = |k: &str| {
        k.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let normalise = |m: Map<String, Value>| {
        m.into_iter()
            .map(|(k, v)| (norm(&k), v))
            .collect::<Map<_, _>>()
    };
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('[') || t.starts_with('{') && serde_json::from_str::<Value>(t).is_ok() {
        let v: Value = serde_json::from_str(t).map_err(|e| format!("not valid JSON: {e}"))?;
        let items = match v {
            Value::Array(a) => a,
            Value::Object(mut o) => match o
                .remove("value")
                .or_else(|| o.remove("records"))
                .or_else(|| o.remove("tickets"))
            {
                Some(Value::Array(a)) => a,
                _ => vec![Value::Object(o)],
            },
            _ => return Err("expected a JSON array or object".into()),
        };
        let numbered = items
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    i + 1,
                    match v {
                        Value::Object(o) => normalise(o),
                        _ => Map::new(),
                    },
                )
            })
            .collect();
        return Ok((numbered, None));
    }
    if t.starts_with('{') {
        // NDJSON: one object per line; a bad line is one bad record.
        let numbered = t
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                let m = match serde_json::from_str::<Value>(l) {
                    Ok(Value::Object(o)) => normalise(o),
                    _ => {
                        let mut m = Map::new();
                        m.insert("__error".into(), Value::String("not a JSON object".into()));
                        m
                    }
                };
                (i + 1, m)
            })
            .collect();
        return Ok((numbered, None));
    }
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(t.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("CSV header: {e}"))?
        .iter()
        .map(norm)
        .collect();
    let mut out = Vec::new();
    for (i, row) in rdr.records().enumerate() {
        let mut m = Map::new();
        match row {
            Ok(r) => {
                for (h, v) in headers.iter().zip(r.iter()) {
                    if !v.trim().is_empty() {
                        m.insert(h.clone(), Value::String(v.trim().to_string()));
                    }
                }
            }
            Err(e) => {
                m.insert("__error".into(), Value::String(format!("CSV: {e}")));
            }
        }
        out.push((i + 1, m));
    }
    Ok((out, Some(headers)))
}

/// The name and size of a record's field over [`MAX_FIELD_BYTES`], if any.
fn oversized(m: &Map<String, Value>) -> Option<(&str, usize)> {
    fn size(v: &Value) -> usize {
        match v {
            Value::String(s) => s.len(),
            Value::Array(a) => a.iter().map(size).sum(),
            Value::Object(o) => o.iter().map(|(k, v)| k.len() + size(v)).sum(),
            _ => 0,
        }
    }
    m.iter()
        .map(|(k, v)| (k.as_str(), size(v)))
        .find(|(_, n)| *n > MAX_FIELD_BYTES)
}

fn field(m: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| match m.get(*n) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        // ServiceNow references: {"value": "...", "display_value": "..."}.
        Some(Value::Object(o)) => o
            .get("displayvalue")
            .or(o.get("display_value"))
            .or(o.get("value"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    })
}

/// Times as exports write them: RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC), or a day.
fn time(s: &str) -> Option<jiff::Timestamp> {
    let s = s.trim();
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    if let Ok(dt) = s.replace(' ', "T").parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp());
    }
    None
}

/// Records kept, and those rejected with their reasons.
pub type Parsed<T> = (Vec<T>, Vec<Rejected>);

/// Reads every record of `text` with `one`; a record it refuses is
/// rejected with its number and the reason, the others are kept with theirs.
/// A CSV whose header has none of the `known` columns is refused whole, so a
/// file of the wrong kind is never taken for an empty one.
fn each<T>(
    text: &str,
    known: &[&str],
    one: impl Fn(&Map<String, Value>) -> Result<T, String>,
) -> Result<Parsed<(usize, T)>, String> {
    let (records, headers) = records(text)?;
    if let Some(h) = headers
        && !h.iter().any(|h| known.contains(&h.as_str()))
    {
        return Err(format!(
            "the CSV header has none of the columns this kind of file needs (one of: {}); it has: {}",
            known.join(", "),
            if h.is_empty() {
                "nothing".into()
            } else {
                h.join(", ")
            }
        ));
    }
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (record, m) in records {
        let read = match oversized(&m) {
            Some((name, n)) => Err(format!(
                "field `{name}` is {n} bytes; the limit is {MAX_FIELD_BYTES}"
            )),
            None => field(&m, &["__error"]).map_or_else(|| one(&m), Err),
        };
        match read {
            Ok(t) => ok.push((record, t)),
            Err(reason) => bad.push(Rejected { record, reason }),
        }
    }
    Ok((ok, bad))
}

fn unnumbered<T>((ok, bad): Parsed<(usize, T)>) -> Parsed<T> {
    (ok.into_iter().map(|(_, t)| t).collect(), bad)
}

/// A field that must be there, or the reason it is missing.
fn needed(m: &Map<String, Value>, names: &[&str], missing: &str) -> Result<String, String> {
    field(m, names).ok_or_else(|| missing.to_string())
}

/// Status reports; `policy` fills in files about one policy (Intune's
/// per-policy device status export has no policy column).
pub fn statuses(text: &str, policy: Option<&str>) -> Result<Parsed<StatusReport>, String> {
    const DEVICE: &[&str] = &[
        "deviceid",
        "intunedeviceid",
        "azureaddeviceid",
        "device",
        "manageddeviceid",
        "devicename",
    ];
    let (ok, mut bad) = each(text, DEVICE, |m| {
        let device = needed(m, DEVICE, "no device (DeviceId, device or DeviceName)")?;
        let policy = field(m, &["policyid", "policy", "configurationid"])
            .or(policy.map(str::to_string))
            .ok_or("no policy (PolicyId column, or --policy for a one-policy export)")?;
        let raw = needed(
            m,
            &[
                "state",
                "status",
                "reportstatus",
                "deploymentstatus",
                "compliancestatus",
            ],
            "no state (ReportStatus, Status or state)",
        )?;
        let state = DeviceState::parse(&raw).ok_or_else(|| {
            format!("unknown state `{raw}` (succeeded, error, conflict, pending, not applicable)")
        })?;
        let at = needed(
            m,
            &[
                "reportedat",
                "lastreporteddatetime",
                "pspdpulastmodifiedtimeutc",
                "lastmodifieddatetime",
                "time",
            ],
            "no time (LastReportedDateTime or reportedAt)",
        )?;
        let reported_at = time(&at)
            .ok_or_else(|| format!("`{at}` is not a time (RFC 3339 or YYYY-MM-DD HH:MM:SS)"))?;
        Ok(StatusReport {
            device,
            policy,
            state,
            reported_at,
            wave: None,
        })
    })?;
    Ok((contradictions(ok, &mut bad), bad))
}

/// Two reports of one device and policy at the same instant with different
/// states cannot both be true: the later record is rejected, naming the
/// earlier, so the file can be fixed instead of one state winning unseen.
fn contradictions(ok: Vec<(usize, StatusReport)>, bad: &mut Vec<Rejected>) -> Vec<StatusReport> {
    let mut first: std::collections::HashMap<
        (String, String, jiff::Timestamp),
        (usize, DeviceState),
    > = std::collections::HashMap::with_capacity(ok.len());
    let mut kept = Vec::with_capacity(ok.len());
    for (record, r) in ok {
        let key = (r.device.clone(), r.policy.clone(), r.reported_at);
        match first.get(&key) {
            Some((earlier, state)) if *state != r.state => bad.push(Rejected {
                record,
                reason: format!(
                    "says `{}` for device {} at {}, but record {earlier} says `{state}` for the same device, policy and time",
                    r.state, r.device, r.reported_at
                ),
            }),
            Some(_) => kept.push(r),
            None => {
                first.insert(key, (record, r.state));
                kept.push(r);
            }
        }
    }
    bad.sort_by_key(|b| b.record);
    kept
}

/// Help-desk tickets (ServiceNow, Zendesk, Jira shapes).
pub fn tickets(text: &str) -> Result<Parsed<Ticket>, String> {
    const ID: &[&str] = &["number", "id", "key", "sysid", "ticketid", "issuekey"];
    each(text, ID, |m| {
        let id = needed(m, ID, "no ticket id (number, id or key)")?;
        let at = needed(
            m,
            &[
                "openedat",
                "createdat",
                "created",
                "syscreatedon",
                "time",
                "at",
            ],
            "no time (opened_at, created_at or created)",
        )?;
        let at = time(&at).ok_or_else(|| format!("`{at}` is not a time"))?;
        let user = field(
            m,
            &[
                "user",
                "callerid",
                "caller",
                "requester",
                "reporter",
                "requesteremail",
                "upn",
            ],
        );
        let device = field(
            m,
            &[
                "device",
                "cmdbci",
                "configurationitem",
                "devicename",
                "deviceid",
            ],
        );
        if user.is_none() && device.is_none() {
            return Err("neither a user nor a device: the ticket cannot be tied to a wave".into());
        }
        Ok(Ticket {
            id,
            at,
            user,
            device,
            category: field(m, &["category", "type", "issuetype", "subcategory"]),
            text: field(
                m,
                &[
                    "shortdescription",
                    "subject",
                    "summary",
                    "description",
                    "text",
                ],
            )
            .unwrap_or_default(),
            wave: None,
            control: false,
        })
    })
    .map(unnumbered)
}

/// Pilot feedback: a score from 1 to 5 and a comment.
pub fn feedback(text: &str) -> Result<Parsed<Feedback>, String> {
    const ID: &[&str] = &["id", "responseid", "number"];
    each(text, ID, |m| {
        let id = needed(m, ID, "no answer id")?;
        let at = field(m, &["at", "time", "submittedat", "createdat"])
            .and_then(|t| time(&t))
            .ok_or("no time, or not a time")?;
        let score = field(m, &["score", "rating"])
            .and_then(|s| s.parse::<u8>().ok())
            .filter(|s| (1..=5).contains(s))
            .ok_or("score must be a whole number from 1 to 5")?;
        let user = field(m, &["user", "upn", "email"]);
        let device = field(m, &["device", "deviceid", "devicename"]);
        if user.is_none() && device.is_none() {
            return Err("neither a user nor a device".into());
        }
        Ok(Feedback {
            id,
            at,
            user,
            device,
            score,
            comment: field(m, &["comment", "comments", "text"]).unwrap_or_default(),
            wave: None,
        })
    })
    .map(unnumbered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intune_status_csv_with_a_bad_row() {
        let csv = "DeviceName,DeviceId,UserPrincipalName,ReportStatus,LastReportedDateTime\n\
                   PC-1,d1,ada@contoso.com,Succeeded,2027-01-18 10:00:00\n\
                   PC-2,d2,bob@contoso.com,Exploded,2027-01-18 10:00:00\n\
                   PC-3,d3,cy@contoso.com,Not applicable,2027-01-18T11:00:00Z\n\
                   PC-4,d4,di@contoso.com,Error,yesterday\n";
        let (ok, bad) = statuses(csv, Some("p1")).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(
            (ok[0].device.as_str(), ok[0].state),
            ("d1", DeviceState::Succeeded)
        );
        assert_eq!(ok[1].state, DeviceState::NotApplicable);
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].record, 2);
        assert!(bad[0].reason.contains("unknown state `Exploded`"));
        assert!(bad[1].reason.contains("`yesterday` is not a time"));
        let (_, bad) = statuses(csv, None).unwrap();
        assert!(bad[0].reason.contains("--policy"));
    }

    #[test]
    fn oversized_fields_headerless_files_and_contradictions_are_refused() {
        // A field over the limit rejects its record only, whatever its kind.
        let big = "x".repeat(MAX_FIELD_BYTES + 1);
        let csv = format!(
            "DeviceId,ReportStatus,LastReportedDateTime,Note\n\
             d1,Succeeded,2027-01-18 10:00:00,{big}\nd2,Error,2027-01-18 10:00:00,short\n"
        );
        let (ok, bad) = statuses(&csv, Some("p1")).unwrap();
        assert_eq!((ok.len(), bad.len()), (1, 1));
        assert!(
            bad[0].reason.starts_with("field `note` is 65537 bytes"),
            "{}",
            bad[0].reason
        );
        let json = format!(
            r#"[{{"number":"T1","opened_at":"2027-01-18","user":"a","description":{{"value":"{big}"}}}}]"#
        );
        let (ok, bad) = tickets(&json).unwrap();
        assert!(ok.is_empty());
        assert!(bad[0].reason.contains("field `description`"));
        // A CSV with none of the columns its kind needs is refused whole,
        // even with no rows; one with them and no rows is simply empty.
        let e = statuses("Name,Colour\n", Some("p1")).unwrap_err();
        assert!(
            e.contains("none of the columns") && e.contains("name, colour"),
            "{e}"
        );
        assert!(tickets("").unwrap_err().contains("it has: nothing"));
        assert_eq!(
            statuses("DeviceId,Status\n", Some("p1")).unwrap().0.len(),
            0
        );
        // One device, policy and instant with two states: the later record
        // is rejected naming the earlier; the same state twice is kept.
        let csv = "DeviceId,ReportStatus,LastReportedDateTime\n\
                   d1,Succeeded,2027-01-18 10:00:00\n\
                   d1,Error,2027-01-18T10:00:00Z\n\
                   d1,Succeeded,2027-01-18 10:00:00\n\
                   d1,Error,2027-01-18 11:00:00\n";
        let (ok, bad) = statuses(csv, Some("p1")).unwrap();
        assert_eq!(ok.len(), 3);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].record, 2);
        assert!(
            bad[0].reason.contains("record 1 says `succeeded`"),
            "{}",
            bad[0].reason
        );
    }

    #[test]
    fn json_ndjson_and_graph_pages() {
        let nd = "{\"deviceId\":\"d1\",\"policyId\":\"p\",\"status\":\"conflict\",\"reportedAt\":\"2027-01-18T10:00:00Z\"}\nnot json\n";
        let (ok, bad) = statuses(nd, None).unwrap();
        assert_eq!((ok.len(), bad.len(), bad[0].record), (1, 1, 2));
        let page = r#"{"value":[{"device_id":"d9","policy":"p","state":"pending","time":"2027-01-18T10:00:00Z"}]}"#;
        assert_eq!(statuses(page, None).unwrap().0[0].device, "d9");
    }

    #[test]
    fn tickets_from_servicenow_jira_and_zendesk() {
        let sn = r#"{"records":[{"number":"INC001","opened_at":"2027-01-19 09:00:00","caller_id":{"display_value":"ada@contoso.com"},"short_description":"BitLocker prompt","category":"hardware"},
                     {"number":"INC002","opened_at":"2027-01-19 09:00:00","short_description":"no one"}]}"#;
        let (ok, bad) = tickets(sn).unwrap();
        assert_eq!(ok[0].user.as_deref(), Some("ada@contoso.com"));
        assert!(bad[0].reason.contains("neither a user nor a device"));
        let jira = "Issue key,Created,Reporter,Summary,Issue Type\nIT-7,2027-01-19T09:00:00Z,bob@contoso.com,LAPS password,Incident\n";
        let (ok, _) = tickets(jira).unwrap();
        assert_eq!(
            (ok[0].id.as_str(), ok[0].category.as_deref()),
            ("IT-7", Some("Incident"))
        );
    }

    #[test]
    fn feedback_scores_are_checked() {
        let csv = "id,at,user,score,comment\nf1,2027-01-20T10:00:00Z,ada@contoso.com,4,fine\nf2,2027-01-20T10:00:00Z,bob@contoso.com,9,great\n";
        let (ok, bad) = feedback(csv).unwrap();
        assert_eq!((ok.len(), ok[0].score), (1, 4));
        assert!(bad[0].reason.contains("1 to 5"));
    }
}

/// Ties reports to waves: a device belongs to the last started wave that
/// holds it; a ticket or an answer counts for that wave only when it came in
/// within `window` after the wave started (and, with hints, mentions one).
pub struct Attribution {
    /// Per wave: members and when it started applying (None: not yet).
    waves: Vec<(roaring::RoaringBitmap, Option<jiff::Timestamp>)>,
    window: jiff::SignedDuration,
    hints: Vec<String>,
    /// Devices treated since an instant by any wave of any plan version
    /// (`Engine::reached`): never the control from then on.
    treated: Vec<(roaring::RoaringBitmap, jiff::Timestamp)>,
}

impl Attribution {
    pub fn new(
        waves: Vec<(roaring::RoaringBitmap, Option<jiff::Timestamp>)>,
        window: jiff::SignedDuration,
        hints: &[String],
    ) -> Self {
        Attribution {
            waves,
            window,
            hints: hints.iter().map(|h| h.to_lowercase()).collect(),
            treated: Vec::new(),
        }
    }

    /// Adds the waves of every plan version that started, with when: a
    /// device they hold is no control from then on, even when this
    /// version has not started its wave (an edited plan carried it over).
    pub fn with_treated(mut self, treated: Vec<(roaring::RoaringBitmap, jiff::Timestamp)>) -> Self {
        self.treated = treated;
        self
    }

    /// The last started wave holding any of `devices` (org rows).
    pub fn wave_of(&self, devices: &[u32]) -> Option<u32> {
        (0..self.waves.len())
            .rev()
            .find(|&i| {
                self.waves[i].1.is_some() && devices.iter().any(|d| self.waves[i].0.contains(*d))
            })
            .map(|i| i as u32)
    }

    /// The wave a ticket (or an answer) counts for, if any.
    pub fn event_wave(&self, devices: &[u32], at: jiff::Timestamp, text: &str) -> Option<u32> {
        let w = self.wave_of(devices)?;
        let started = self.waves[w as usize].1?;
        if at < started || at > started + self.window {
            return None;
        }
        self.hinted(text).then_some(w)
    }

    /// Whether a ticket opened at `at` counts for the concurrent control:
    /// one of its devices is in a wave that had not started by then, none in
    /// one that had, and it matches the hints as a wave's ticket must.
    pub fn is_control(&self, devices: &[u32], at: jiff::Timestamp, text: &str) -> bool {
        let reached = |(set, started): &(roaring::RoaringBitmap, Option<jiff::Timestamp>)| {
            started.is_some_and(|s| s <= at) && devices.iter().any(|d| set.contains(*d))
        };
        let waiting = |(set, started): &(roaring::RoaringBitmap, Option<jiff::Timestamp>)| {
            !started.is_some_and(|s| s <= at) && devices.iter().any(|d| set.contains(*d))
        };
        let treated = self
            .treated
            .iter()
            .any(|(set, since)| *since <= at && devices.iter().any(|d| set.contains(*d)));
        !treated
            && !self.waves.iter().any(reached)
            && self.waves.iter().any(waiting)
            && self.hinted(text)
    }

    fn hinted(&self, text: &str) -> bool {
        let t = text.to_lowercase();
        self.hints.is_empty() || self.hints.iter().any(|h| t.contains(h.as_str()))
    }
}

/// Finds an organization's devices by any id an export may use (Entra
/// object id, Intune id, Entra device id, name), and users' devices by UPN.
pub struct Directory {
    by_key: std::collections::HashMap<String, u32>,
    by_user: std::collections::HashMap<String, Vec<u32>>,
}

impl Directory {
    pub fn new(org: &ringmaster_core::org::Org) -> Self {
        use ringmaster_core::model::{DeviceAttr, UserAttr};
        let mut by_key = std::collections::HashMap::new();
        for d in 0..org.devices.rows {
            for a in [
                DeviceAttr::EntraObjectId,
                DeviceAttr::ManagedId,
                DeviceAttr::DeviceId,
                DeviceAttr::Name,
            ] {
                if let Some(k) = org.device(a, d) {
                    by_key.entry(k.to_lowercase()).or_insert(d);
                }
            }
        }
        let mut by_user = std::collections::HashMap::new();
        for u in 0..org.users.rows {
            if let Some(upn) = org.user(UserAttr::Upn, u) {
                by_user.insert(upn.to_lowercase(), org.user_devices(u).to_vec());
            }
        }
        Directory { by_key, by_user }
    }

    /// The device a key names, and the devices of the user a UPN names.
    pub fn devices_of(&self, device: Option<&str>, user: Option<&str>) -> Vec<u32> {
        let mut v: Vec<u32> = device
            .and_then(|k| self.by_key.get(&k.to_lowercase()).copied())
            .into_iter()
            .collect();
        if let Some(u) = user.and_then(|u| self.by_user.get(&u.to_lowercase())) {
            v.extend(u);
        }
        v
    }

    /// Ties status reports to the wave of their device; returns how many stay untied.
    pub fn attribute_statuses(&self, a: &Attribution, recs: &mut [StatusReport]) -> u64 {
        let mut none = 0;
        for r in recs {
            r.wave = a.wave_of(&self.devices_of(Some(&r.device), None));
            none += u64::from(r.wave.is_none());
        }
        none
    }

    /// Ties tickets to a wave (recent, and matching the hints); returns how many stay untied.
    pub fn attribute_tickets(&self, a: &Attribution, recs: &mut [Ticket]) -> u64 {
        let mut none = 0;
        for t in recs {
            let words = format!("{} {}", t.category.as_deref().unwrap_or(""), t.text);
            let devices = self.devices_of(t.device.as_deref(), t.user.as_deref());
            t.wave = a.event_wave(&devices, t.at, &words);
            t.control = a.is_control(&devices, t.at, &words);
            none += u64::from(t.wave.is_none());
        }
        none
    }

    /// Ties feedback answers to the wave of their device or user; returns how many stay untied.
    pub fn attribute_feedback(&self, a: &Attribution, recs: &mut [Feedback]) -> u64 {
        let mut none = 0;
        for f in recs {
            f.wave = a.wave_of(&self.devices_of(f.device.as_deref(), f.user.as_deref()));
            none += u64::from(f.wave.is_none());
        }
        none
    }
}

#[cfg(test)]
mod attribution_tests {
    use super::*;

    #[test]
    fn tickets_count_for_the_wave_that_changed_the_device_recently() {
        let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let a = Attribution::new(
            vec![
                ((0..10).collect(), Some(t("2027-01-18T08:00:00Z"))),
                ((10..20).collect(), Some(t("2027-01-25T08:00:00Z"))),
                ((20..30).collect(), None),
            ],
            jiff::SignedDuration::from_hours(24 * 7),
            &["bitlocker".to_string(), "password".to_string()],
        );
        assert_eq!(a.wave_of(&[12]), Some(1));
        assert_eq!(
            a.wave_of(&[25]),
            None,
            "a wave that has not started owns nothing"
        );
        assert_eq!(
            a.event_wave(&[3], t("2027-01-19T10:00:00Z"), "BitLocker prompt at boot"),
            Some(0)
        );
        assert_eq!(
            a.event_wave(&[3], t("2027-01-19T10:00:00Z"), "printer jammed"),
            None
        );
        assert_eq!(
            a.event_wave(&[3], t("2027-02-19T10:00:00Z"), "bitlocker"),
            None,
            "outside the window"
        );
        assert_eq!(
            a.event_wave(&[3], t("2027-01-17T10:00:00Z"), "bitlocker"),
            None,
            "before the change"
        );
        // The control: devices no wave had reached when the ticket was opened.
        assert!(a.is_control(&[25], t("2027-01-19T10:00:00Z"), "bitlocker"));
        assert!(
            a.is_control(&[12], t("2027-01-19T10:00:00Z"), "bitlocker"),
            "wave 2 had not started then"
        );
        assert!(!a.is_control(&[12], t("2027-01-26T10:00:00Z"), "bitlocker"));
        assert!(
            !a.is_control(&[25, 3], t("2027-01-19T10:00:00Z"), "bitlocker"),
            "one of the user's devices was reached"
        );
        assert!(!a.is_control(&[25], t("2027-01-19T10:00:00Z"), "printer jammed"));
        assert!(
            !a.is_control(&[40], t("2027-01-19T10:00:00Z"), "bitlocker"),
            "outside the scope"
        );
        assert!(!a.is_control(&[], t("2027-01-19T10:00:00Z"), "bitlocker"));
        // Devices an earlier plan version's wave reached are treated from
        // then on, though this version has not started their wave.
        let a = a.with_treated(vec![((20..25).collect(), t("2027-01-10T08:00:00Z"))]);
        assert!(
            !a.is_control(&[21], t("2027-01-19T10:00:00Z"), "bitlocker"),
            "treated under the old version"
        );
        assert!(a.is_control(&[21], t("2027-01-09T10:00:00Z"), "bitlocker"));
        assert!(a.is_control(&[25], t("2027-01-19T10:00:00Z"), "bitlocker"));
    }
}
