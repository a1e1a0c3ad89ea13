//! Two-person approvals: whether the approvals a wave has collected are
//! enough to open it. A plan can ask for several different approvers and
//! for the requester (who started the rollout) not to count among them.
//!
//! People are compared by name, trimmed and without regard to case, so
//! `Alice` and `alice ` are one person: two spellings never make two votes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest approver name kept: a name, not a document.
pub const MAX_NAME: usize = 200;

/// What a wave needs before it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRule {
    /// Different people who must approve (at least 1).
    pub required: u32,
    /// The requester's own approval does not count.
    pub distinct: bool,
}

impl Default for ApprovalRule {
    fn default() -> Self {
        ApprovalRule {
            required: 1,
            distinct: false,
        }
    }
}

impl ApprovalRule {
    /// One approval from anyone: what a plan without the rule asks.
    pub fn is_single(&self) -> bool {
        self.required <= 1 && !self.distinct
    }
}

/// The person a name stands for: trimmed, in lower case.
pub fn person(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Whether two names are the same person.
pub fn same_person(a: &str, b: &str) -> bool {
    person(a) == person(b)
}

/// Where a wave's approvals stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Approvals that count (each person once, the requester not under `distinct`).
    pub counted: u32,
    pub required: u32,
    /// Who started the rollout, when known.
    pub requester: Option<String>,
    /// Whether the requester is excluded.
    pub distinct: bool,
}

impl Tally {
    pub fn met(&self) -> bool {
        self.counted >= self.required
    }

    /// Approvals still missing.
    pub fn missing(&self) -> u32 {
        self.required.saturating_sub(self.counted)
    }
}

impl fmt::Display for Tally {
    /// `1 of 2 approvals; alice requested it, a different approver is needed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = if self.required == 1 {
            "approval"
        } else {
            "approvals"
        };
        write!(f, "{} of {} {noun}", self.counted, self.required)?;
        let missing = self.missing();
        if missing == 0 {
            return Ok(());
        }
        let requested = match (&self.requester, self.distinct) {
            (Some(r), true) => format!("{} requested it, ", r.trim()),
            _ => String::new(),
        };
        // Once someone approved (or the requester is excluded), the next
        // one must be someone else: say so rather than "one more".
        let other = self.counted > 0 || !requested.is_empty();
        match (missing, other) {
            (1, true) => write!(f, "; {requested}a different approver is needed"),
            (1, false) => write!(f, "; {requested}an approver is needed"),
            (n, _) if self.counted > 0 => {
                write!(f, "; {requested}{n} more different approvers are needed")
            }
            (n, _) => write!(f, "; {requested}{n} different approvers are needed"),
        }
    }
}

/// Counts `approvers` under `rule`.
pub fn tally(rule: &ApprovalRule, requester: Option<&str>, approvers: &[String]) -> Tally {
    let mut people: Vec<&str> = Vec::new();
    for a in approvers {
        let excluded = rule.distinct && requester.is_some_and(|r| same_person(r, a));
        if !excluded && !a.trim().is_empty() && !people.iter().any(|p| same_person(p, a)) {
            people.push(a);
        }
    }
    Tally {
        counted: people.len() as u32,
        required: rule.required.max(1),
        requester: requester.map(str::to_string),
        distinct: rule.distinct,
    }
}

/// What one more approval does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It counts and the rule is met: the wave opens.
    Opens(Tally),
    /// It counts; more are needed (the tally, afterwards, says what).
    Counted(Tally),
    /// The requester may not approve under `distinct`: nothing changes.
    Requester(Tally),
    /// This person approved already (it counts once): nothing changes.
    Again(Tally),
    /// No usable name (empty, or longer than [`MAX_NAME`]): an approval
    /// must say who gives it.
    Anonymous,
}

/// What `actor` approving does, given the approvals so far.
pub fn approve(
    rule: &ApprovalRule,
    requester: Option<&str>,
    approvers: &[String],
    actor: &str,
) -> Outcome {
    let name = actor.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Outcome::Anonymous;
    }
    let before = tally(rule, requester, approvers);
    if rule.distinct && requester.is_some_and(|r| same_person(r, actor)) {
        return Outcome::Requester(before);
    }
    if approvers.iter().any(|a| same_person(a, actor)) {
        return Outcome::Again(before);
    }
    let mut with = approvers.to_vec();
    with.push(actor.to_string());
    let after = tally(rule, requester, &with);
    if after.met() {
        Outcome::Opens(after)
    } else {
        Outcome::Counted(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn rule(required: u32, distinct: bool) -> ApprovalRule {
        ApprovalRule { required, distinct }
    }

    /// Rule, requester, approvals so far, who approves now, the expected
    /// outcome and its words.
    type Case<'a> = (
        ApprovalRule,
        Option<&'a str>,
        &'a [&'a str],
        &'a str,
        &'a str,
        &'a str,
    );

    #[test]
    fn outcomes() {
        let cases: &[Case<'_>] = &[
            (rule(1, false), None, &[], "bob", "opens", "1 of 1 approval"),
            (
                rule(1, false),
                Some("alice"),
                &[],
                "alice",
                "opens",
                "1 of 1 approval",
            ),
            (
                rule(1, true),
                Some("alice"),
                &[],
                "alice",
                "requester",
                "0 of 1 approval; alice requested it, a different approver is needed",
            ),
            (
                rule(1, true),
                Some("alice"),
                &[],
                "bob",
                "opens",
                "1 of 1 approval",
            ),
            (
                rule(1, true),
                Some("alice"),
                &[],
                " Alice ",
                "requester",
                "0 of 1 approval; alice requested it, a different approver is needed",
            ),
            (
                rule(2, true),
                Some("alice"),
                &[],
                "bob",
                "counted",
                "1 of 2 approvals; alice requested it, a different approver is needed",
            ),
            (
                rule(2, true),
                Some("alice"),
                &["bob"],
                "BOB",
                "again",
                "1 of 2 approvals; alice requested it, a different approver is needed",
            ),
            (
                rule(2, true),
                Some("alice"),
                &["bob"],
                "carol",
                "opens",
                "2 of 2 approvals",
            ),
            (
                rule(2, false),
                Some("alice"),
                &[],
                "alice",
                "counted",
                "1 of 2 approvals; a different approver is needed",
            ),
            (
                rule(2, false),
                Some("alice"),
                &["alice"],
                "bob",
                "opens",
                "2 of 2 approvals",
            ),
            (
                rule(3, false),
                None,
                &[],
                "bob",
                "counted",
                "1 of 3 approvals; 2 more different approvers are needed",
            ),
            // Without a known requester `distinct` can only ask for different people.
            (
                rule(1, true),
                None,
                &[],
                "alice",
                "opens",
                "1 of 1 approval",
            ),
            (rule(1, false), None, &[], "  ", "anonymous", ""),
        ];
        let long = "x".repeat(MAX_NAME + 1);
        assert_eq!(
            approve(&rule(1, false), None, &[], &long),
            Outcome::Anonymous
        );
        for (rule, requester, before, actor, want, words) in cases {
            let got = approve(rule, *requester, &names(before), actor);
            let (kind, t) = match &got {
                Outcome::Opens(t) => ("opens", Some(t)),
                Outcome::Counted(t) => ("counted", Some(t)),
                Outcome::Requester(t) => ("requester", Some(t)),
                Outcome::Again(t) => ("again", Some(t)),
                Outcome::Anonymous => ("anonymous", None),
            };
            let case = format!("{rule:?} {requester:?} {before:?} + {actor:?}");
            assert_eq!(kind, *want, "{case}");
            assert_eq!(
                t.map(|t| t.to_string()).unwrap_or_default(),
                *words,
                "{case}"
            );
        }
    }

    #[test]
    fn tally_counts_each_person_once_and_not_the_requester() {
        let t = tally(
            &rule(3, true),
            Some("alice"),
            &names(&["alice", "bob", "Bob", "carol"]),
        );
        assert_eq!((t.counted, t.missing(), t.met()), (2, 1, false));
        let t = tally(
            &rule(3, false),
            Some("alice"),
            &names(&["alice", "bob", "carol"]),
        );
        assert!(t.met());
        assert_eq!(t.to_string(), "3 of 3 approvals");
    }

    #[test]
    fn nobody_yet() {
        let t = tally(&rule(2, true), Some("alice"), &names(&["alice"]));
        assert_eq!(
            t.to_string(),
            "0 of 2 approvals; alice requested it, 2 different approvers are needed"
        );
        let t = tally(&rule(2, false), None, &[]);
        assert_eq!(
            t.to_string(),
            "0 of 2 approvals; 2 different approvers are needed"
        );
        let t = tally(&rule(1, false), None, &[]);
        assert_eq!(t.to_string(), "0 of 1 approval; an approver is needed");
    }
}
