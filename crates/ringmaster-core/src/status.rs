//! What devices and people report about a rollout: a device's state for a
//! policy ([`DeviceState`], read from every vocabulary ringmaster takes in by
//! one parser), status reports, help-desk tickets and pilot feedback.

use serde::{Deserialize, Serialize};

/// A device's state for one policy, as Intune reports distinguish it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceState {
    Succeeded,
    Error,
    Conflict,
    /// Assigned, not yet applied (in progress, not evaluated, in grace period).
    Pending,
    /// The policy cannot apply to the device.
    NotApplicable,
}

/// Words of Intune's reports and of the files `ingest` reads, compared
/// lowercased and without spaces or punctuation ("Not applicable",
/// "not_applicable", "notApplicable" are one word).
const WORDS: &[(&str, DeviceState)] = &[
    ("succeeded", DeviceState::Succeeded),
    ("success", DeviceState::Succeeded),
    ("compliant", DeviceState::Succeeded),
    ("remediated", DeviceState::Succeeded),
    ("applied", DeviceState::Succeeded),
    ("installed", DeviceState::Succeeded),
    ("error", DeviceState::Error),
    ("failed", DeviceState::Error),
    ("failure", DeviceState::Error),
    ("noncompliant", DeviceState::Error),
    ("notcompliant", DeviceState::Error),
    ("conflict", DeviceState::Conflict),
    ("pending", DeviceState::Pending),
    ("inprogress", DeviceState::Pending),
    ("unknown", DeviceState::Pending),
    ("notevaluated", DeviceState::Pending),
    ("ingraceperiod", DeviceState::Pending),
    ("notapplicable", DeviceState::NotApplicable),
    ("na", DeviceState::NotApplicable),
];

/// A word as [`WORDS`] holds it.
fn word(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

impl DeviceState {
    pub const ALL: [DeviceState; 5] = [
        DeviceState::Succeeded,
        DeviceState::Error,
        DeviceState::Conflict,
        DeviceState::Pending,
        DeviceState::NotApplicable,
    ];

    /// Reads a state as Intune's reports, export files and the store write
    /// it; None for words it does not know (Intune's "Not assigned" among them).
    /// Numeric report codes are another vocabulary, for a parser of their own.
    pub fn parse(text: &str) -> Option<DeviceState> {
        let word = word(text);
        WORDS.iter().find(|(w, _)| *w == word).map(|(_, s)| *s)
    }

    /// Reads a numeric status code of Intune's reports: their `PolicyStatus`
    /// columns carry Graph's `complianceStatus` enum (v1.0 schema: unknown 0,
    /// notApplicable 1, compliant 2, remediated 3, nonCompliant 4, error 5,
    /// conflict 6, notAssigned 7). None for 7 (see [`DeviceState::is_not_assigned_code`])
    /// and codes the enum does not have.
    pub fn from_code(code: i64) -> Option<DeviceState> {
        Some(match code {
            0 => DeviceState::Pending,
            1 => DeviceState::NotApplicable,
            2 | 3 => DeviceState::Succeeded,
            4 | 5 => DeviceState::Error,
            6 => DeviceState::Conflict,
            _ => return None,
        })
    }

    /// Whether a report code says the policy is not assigned (`notAssigned`, 7).
    pub fn is_not_assigned_code(code: i64) -> bool {
        code == 7
    }

    /// Whether a report row says the policy is not assigned to the device
    /// (any more): no state at all, rather than a state ringmaster does not know.
    pub fn is_not_assigned(text: &str) -> bool {
        word(text) == "notassigned"
    }

    /// The stored and serialised form.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Succeeded => "succeeded",
            DeviceState::Error => "error",
            DeviceState::Conflict => "conflict",
            DeviceState::Pending => "pending",
            DeviceState::NotApplicable => "not_applicable",
        }
    }

    /// For people, as Intune's console writes it.
    pub fn label(self) -> &'static str {
        match self {
            DeviceState::Succeeded => "Succeeded",
            DeviceState::Error => "Error",
            DeviceState::Conflict => "Conflict",
            DeviceState::Pending => "Pending",
            DeviceState::NotApplicable => "Not applicable",
        }
    }
}

impl std::fmt::Display for DeviceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DeviceState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DeviceState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        DeviceState::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown device state `{text}` (succeeded, error, conflict, pending, not applicable)"
            ))
        })
    }
}

/// One device's state for one policy at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub device: String,
    pub policy: String,
    pub state: DeviceState,
    pub reported_at: jiff::Timestamp,
    /// The wave the device is in, when the engine knows it.
    pub wave: Option<u32>,
}

/// A help-desk ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: String,
    pub at: jiff::Timestamp,
    pub user: Option<String>,
    pub device: Option<String>,
    pub category: Option<String>,
    pub text: String,
    /// The wave the ticket is attributed to, if any.
    pub wave: Option<u32>,
    /// Opened from a device of the rollout's scope that no wave had reached
    /// yet: it counts for the concurrent control.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub control: bool,
}

/// A pilot user's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub id: String,
    pub at: jiff::Timestamp,
    pub user: Option<String>,
    pub device: Option<String>,
    /// 1 (bad) to 5 (good).
    pub score: u8,
    pub comment: String,
    pub wave: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::DeviceState::{self, *};

    #[test]
    fn every_vocabulary_reads_through_one_parser() {
        let check = |text: &str, want: Option<DeviceState>| {
            assert_eq!(DeviceState::parse(text), want, "{text}");
        };
        // Intune report texts.
        check("Succeeded", Some(Succeeded));
        check("Remediated", Some(Succeeded));
        check("Compliant", Some(Succeeded));
        check("Error", Some(Error));
        check("Noncompliant", Some(Error));
        check("nonCompliant", Some(Error));
        check("Not compliant", Some(Error));
        check("Conflict", Some(Conflict));
        check("Pending", Some(Pending));
        check("In progress", Some(Pending));
        check("In grace period", Some(Pending));
        check("Unknown", Some(Pending));
        check("Not applicable", Some(NotApplicable));
        check("notAssigned", None);
        assert!(DeviceState::is_not_assigned("notAssigned"));
        assert!(DeviceState::is_not_assigned("Not assigned"));
        assert!(!DeviceState::is_not_assigned("Pending"));
        // Export files (CSV, NDJSON, ServiceNow).
        check("success", Some(Succeeded));
        check("Applied", Some(Succeeded));
        check("installed", Some(Succeeded));
        check("FAILED", Some(Error));
        check("failure", Some(Error));
        check("not-evaluated", Some(Pending));
        check("N/A", Some(NotApplicable));
        check(" in_progress ", Some(Pending));
        check("", None);
        check("deleted", None);
        // The stored form reads back as itself.
        for s in DeviceState::ALL {
            check(s.as_str(), Some(s));
            check(s.label(), Some(s));
        }
    }

    #[test]
    fn serde_uses_the_stored_form_and_refuses_unknown_words() {
        let text = serde_json::to_string(&NotApplicable).unwrap();
        assert_eq!(text, r#""not_applicable""#);
        assert_eq!(
            serde_json::from_str::<DeviceState>(&text).unwrap(),
            NotApplicable
        );
        let err = serde_json::from_str::<DeviceState>(r#""sideways""#).unwrap_err();
        assert!(err.to_string().contains("`sideways`"), "{err}");
    }
}
