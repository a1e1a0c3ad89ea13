//! Antivirus policy settings that do not merge. The endpoint security
//! antivirus article ("Policy merge for settings") says such a setting set by
//! several policies is resolved: the most secure policy applies; between
//! equally secure ones the last modified applies; failing that nothing is
//! delivered. Only settings whose values have a documented or evident order
//! of security are resolved here; the rest stay conflicts.

use jiff::Timestamp;

pub(super) const SOURCE: &str =
    "memdocs intune/protect/endpoint-security-antivirus-policy.md, \"Policy merge for settings\"";

/// The template family of endpoint security antivirus policies.
pub(super) const FAMILY: &str = "endpointSecurityAntivirus";

/// Values by rank, least secure first; values of one rank are equally secure.
type Ranks = &'static [&'static [&'static str]];

/// Off (0) below on (1): the protection is running or it is not.
const OFF_ON: Ranks = &[&["0"], &["1"]];
/// Off (0), audit (2), block (1): audit only reports what block stops.
const OFF_AUDIT_BLOCK: Ranks = &[&["0"], &["2"], &["1"]];

/// Defender settings (Policy CSP - Defender) and their order; the catalog
/// id is `device_vendor_msft_policy_config_defender_` and the name.
const ORDERS: &[(&str, Ranks)] = &[
    ("allowarchivescanning", OFF_ON),
    ("allowbehaviormonitoring", OFF_ON),
    ("allowcloudprotection", OFF_ON),
    ("allowemailscanning", OFF_ON),
    ("allowfullscanonmappednetworkdrives", OFF_ON),
    ("allowfullscanremovabledrivescanning", OFF_ON),
    ("allowioavprotection", OFF_ON),
    ("allowonaccessprotection", OFF_ON),
    ("allowrealtimemonitoring", OFF_ON),
    ("allowscanningnetworkfiles", OFF_ON),
    ("allowscriptscanning", OFF_ON),
    ("checkforsignaturesbeforerunningscan", OFF_ON),
    // Default, high, high plus, zero tolerance: each blocks more unknowns.
    ("cloudblocklevel", &[&["0"], &["2"], &["4"], &["6"]]),
    ("enablenetworkprotection", OFF_AUDIT_BLOCK),
    ("puaprotection", OFF_AUDIT_BLOCK),
];

/// The order of a top-level Defender setting, `None` when none is known.
pub(super) fn ranks(id: &str) -> Option<Ranks> {
    let name = id
        .to_ascii_lowercase()
        .strip_prefix("device_vendor_msft_policy_config_defender_")?
        .to_string();
    ORDERS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// One policy's value of the setting.
pub(super) struct Vote<'a> {
    pub value: &'a str,
    pub policy: &'a str,
    pub last_modified: Option<Timestamp>,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// This value is delivered, and why.
    Delivered(String, String),
    /// Equally secure values the last modified policy cannot decide between.
    Nothing(String),
}

/// What is delivered where these votes meet, or `None` when a value has no
/// rank (then it is a conflict as any other).
pub(super) fn resolve(ranks: Ranks, votes: &[Vote<'_>]) -> Option<Outcome> {
    let rank = |v: &str| ranks.iter().position(|r| r.contains(&v));
    let ranked: Vec<usize> = votes.iter().map(|v| rank(v.value)).collect::<Option<_>>()?;
    let top = *ranked.iter().max()?;
    let best: Vec<&Vote<'_>> = votes
        .iter()
        .zip(&ranked)
        .filter(|(_, r)| **r == top)
        .map(|(v, _)| v)
        .collect();
    let first = best[0].value;
    if best.iter().all(|v| v.value == first) {
        return Some(Outcome::Delivered(first.to_string(), "most secure".into()));
    }
    // Equally secure: the last modified policy, if it is one and known.
    let dated: Option<Vec<(Timestamp, &Vote<'_>)>> = best
        .iter()
        .map(|v| v.last_modified.map(|t| (t, *v)))
        .collect();
    let Some(dated) = dated else {
        return Some(Outcome::Nothing(
            "equally secure values, and a policy's last modified time is unknown".into(),
        ));
    };
    let latest = dated.iter().map(|(t, _)| *t).max()?;
    let last: Vec<&Vote<'_>> = dated
        .iter()
        .filter(|(t, _)| *t == latest)
        .map(|(_, v)| *v)
        .collect();
    if last.iter().any(|v| v.value != last[0].value) {
        return Some(Outcome::Nothing(format!(
            "equally secure values from policies modified at the same time ({latest})"
        )));
    }
    Some(Outcome::Delivered(
        last[0].value.to_string(),
        format!(
            "equally secure; '{}' was modified last ({latest})",
            last[0].policy
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Option<Timestamp> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn most_secure_then_last_modified_then_nothing() {
        // A made-up order with a tie, to reach every step of the rule.
        const TIED: Ranks = &[&["off"], &["in", "out"], &["both"]];
        let vote = |value, policy, last_modified| Vote {
            value,
            policy,
            last_modified,
        };
        let d = |v: &str, why: &str| Some(Outcome::Delivered(v.into(), why.into()));
        let cases: Vec<(Vec<Vote<'_>>, Option<Outcome>)> = vec![
            (
                vec![vote("off", "A", None), vote("both", "B", None)],
                d("both", "most secure"),
            ),
            (
                vec![
                    vote("in", "A", at("2025-01-01T00:00:00Z")),
                    vote("out", "B", at("2025-02-01T00:00:00Z")),
                    vote("off", "C", at("2025-03-01T00:00:00Z")),
                ],
                d(
                    "out",
                    "equally secure; 'B' was modified last (2025-02-01T00:00:00Z)",
                ),
            ),
            (
                vec![vote("in", "A", at("2025-01-01T00:00:00Z")), vote("out", "B", None)],
                Some(Outcome::Nothing(
                    "equally secure values, and a policy's last modified time is unknown".into(),
                )),
            ),
            (
                vec![
                    vote("in", "A", at("2025-01-01T00:00:00Z")),
                    vote("out", "B", at("2025-01-01T00:00:00Z")),
                ],
                Some(Outcome::Nothing(
                    "equally secure values from policies modified at the same time (2025-01-01T00:00:00Z)"
                        .into(),
                )),
            ),
            // A value outside the order: no resolution.
            (vec![vote("off", "A", None), vote("sideways", "B", None)], None),
        ];
        for (votes, want) in cases {
            let names: Vec<&str> = votes.iter().map(|v| v.value).collect();
            assert_eq!(resolve(TIED, &votes), want, "{names:?}");
        }
    }

    #[test]
    fn only_ordered_top_level_defender_settings() {
        let p = "device_vendor_msft_policy_config_defender_";
        assert!(ranks(&format!("{p}allowrealtimemonitoring")).is_some());
        assert!(ranks(&format!("{p}enablenetworkprotection")).is_some());
        // No order is documented for consent to send samples.
        assert!(ranks(&format!("{p}submitsamplesconsent")).is_none());
        // A child of a collection is not the setting itself.
        assert!(
            ranks(&format!(
                "{p}attacksurfacereductionrules/{p}allowrealtimemonitoring"
            ))
            .is_none()
        );
    }
}
