//! The plan's Intune scope tags (`[[scope_tags]]`), and a plan made within
//! one tag (`ringmaster plan --scope-tag`): devices outside it leave the
//! waves, and what lies outside is counted and named.

use super::parse::perr;
use super::{Check, CheckSeverity};
use crate::PlanError;
use crate::spec::{PhaseKind, PlanFile};
use ringmaster_core::org::Org;
use ringmaster_core::scopetags::{DEFAULT_TAG, NAMED, Within};
use serde::Serialize;

/// Longest tag name Intune's admin center takes.
const MAX_NAME: usize = 128;

/// A scope tag the plan names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeTag {
    pub name: String,
    pub id: String,
}

impl ScopeTag {
    /// The tag for matching objects' tags (ids, or IntuneCD's names).
    pub fn tag(&self) -> ringmaster_core::scopetags::Tag<'_> {
        ringmaster_core::scopetags::Tag {
            id: &self.id,
            name: Some(&self.name),
        }
    }

    /// `Paris (3)`, as messages show it.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.id)
    }
}

/// The plan's tags, each checked: a name, a numeric id, no name or id twice.
pub(super) fn scope_tags(spec: &PlanFile, errs: &mut Vec<PlanError>) -> Vec<ScopeTag> {
    let mut out: Vec<ScopeTag> = Vec::new();
    for t in &spec.scope_tags {
        let name = t.name.get_ref().trim();
        let id = t.id.get_ref().trim();
        let mut ok = true;
        if name.is_empty() || name.chars().count() > MAX_NAME {
            errs.push(perr(
                t.name.span(),
                format!("a scope tag needs a name of 1 to {MAX_NAME} characters"),
            ));
            ok = false;
        }
        if id.is_empty() || id.len() > 10 || !id.bytes().all(|b| b.is_ascii_digit()) {
            errs.push(perr(
                t.id.span(),
                format!("scope tag id `{id}` is not a number: Intune's tag ids are numbers (0 is Default), shown in the admin center under Tenant administration > Roles > Scope tags"),
            ));
            ok = false;
        }
        if let Some(same) = out.iter().find(|o| o.name.eq_ignore_ascii_case(name)) {
            errs.push(perr(
                t.name.span(),
                format!(
                    "scope tag `{name}` is named twice (ids {} and {id})",
                    same.id
                ),
            ));
            ok = false;
        } else if let Some(same) = out.iter().find(|o| o.id == id) {
            errs.push(perr(
                t.id.span(),
                format!(
                    "scope tag id {id} is given twice (`{}` and `{name}`)",
                    same.name
                ),
            ));
            ok = false;
        }
        if ok {
            out.push(ScopeTag {
                name: name.to_string(),
                id: id.to_string(),
            });
        }
    }
    out
}

/// The plan's tags that are well formed (for `--scope-tag` before the plan
/// is built; [`super::build`] reports the others).
pub fn of(spec: &PlanFile) -> Vec<ScopeTag> {
    scope_tags(spec, &mut Vec::new())
}

/// The tag `needle` names: one of the plan's by name (any case) or id,
/// `Default`, or any other id. Names not in the plan are an error that
/// lists the plan's.
pub fn find(tags: &[ScopeTag], needle: &str) -> Result<ScopeTag, String> {
    let n = needle.trim();
    if let Some(t) = tags
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(n) || t.id == n)
    {
        return Ok(t.clone());
    }
    if n.eq_ignore_ascii_case("default") || n == DEFAULT_TAG {
        return Ok(ScopeTag {
            name: "Default".into(),
            id: DEFAULT_TAG.into(),
        });
    }
    if !n.is_empty() && n.len() <= 10 && n.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(ScopeTag {
            name: format!("tag {n}"),
            id: n.to_string(),
        });
    }
    let known: Vec<String> = tags.iter().map(ScopeTag::label).collect();
    Err(if known.is_empty() {
        format!("no scope tag named `{n}`: give its id, or name it in the plan's [[scope_tags]]")
    } else {
        format!(
            "no scope tag named `{n}`; the plan names {}",
            known.join(", ")
        )
    })
}

/// New policies that lack one of the plan's tags. ringmaster does not write
/// tags to Intune: the admin gives them in the admin center (the policy's
/// Properties > Scope tags) or in the export the rollout deploys.
pub(super) fn missing_checks(
    org: &Org,
    new_policies: &[usize],
    plan_tags: &[ScopeTag],
    checks: &mut Vec<Check>,
) {
    for &p in new_policies {
        let pol = &org.policies[p];
        let missing: Vec<String> = plan_tags
            .iter()
            .filter(|t| !ringmaster_core::scopetags::policy_in(pol, t.tag()))
            .map(ScopeTag::label)
            .collect();
        if !missing.is_empty() {
            checks.push(Check::new(
                CheckSeverity::Warning,
                PhaseKind::ProjectScope,
                format!(
                    "new policy '{}' lacks scope tag(s) {} the plan names: administrators limited to them cannot see or assign it until it carries them (Intune: the policy's Properties > Scope tags)",
                    pol.name,
                    missing.join(", ")
                ),
            ));
        }
    }
}

/// Checks of a plan made within one tag: the devices left out, the new
/// policies an administrator limited to the tag cannot see, and the
/// existing policies outside it.
pub(super) fn within_checks(
    org: &Org,
    within: &Within,
    label: &str,
    left_out: &roaring::RoaringBitmap,
    new_policies: &[usize],
    plan_tags: &[ScopeTag],
    checks: &mut Vec<Check>,
) {
    if !left_out.is_empty() {
        let n = left_out.len();
        let names: Vec<String> = left_out
            .iter()
            .take(NAMED)
            .map(|r| org.device_label(r))
            .collect();
        checks.push(Check::new(
            CheckSeverity::Info,
            PhaseKind::ProjectScope,
            format!(
                "{n} device(s) of the targeted groups that could take the new policies are outside scope tag {label} and are left out of the waves: {}{}",
                names.join(", "),
                if n as usize > NAMED { " …" } else { "" }
            ),
        ));
    }
    // A tag the plan names is checked on every new policy by `missing_checks`.
    let named = plan_tags.iter().any(|t| t.id == within.tag);
    for &p in new_policies {
        if named || within.policies.contains(&p) {
            continue;
        }
        checks.push(Check::new(
            CheckSeverity::Warning,
            PhaseKind::ProjectScope,
            format!(
                "new policy '{}' is outside scope tag {label}: an administrator limited to it can neither see nor assign it",
                org.policies[p].name
            ),
        ));
    }
    for line in within.outside(org, label) {
        checks.push(Check::new(
            CheckSeverity::Info,
            PhaseKind::ProjectScope,
            line,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags() -> Vec<ScopeTag> {
        vec![ScopeTag {
            name: "Paris".into(),
            id: "3".into(),
        }]
    }

    #[test]
    fn find_by_name_id_default_or_number() {
        assert_eq!(find(&tags(), "paris").unwrap().id, "3");
        assert_eq!(find(&tags(), "3").unwrap().name, "Paris");
        assert_eq!(find(&tags(), "Default").unwrap().id, "0");
        assert_eq!(find(&tags(), "12").unwrap().label(), "tag 12 (12)");
        let e = find(&tags(), "Lyon").unwrap_err();
        assert!(e.contains("Paris (3)"), "{e}");
        assert!(find(&[], "Lyon").unwrap_err().contains("[[scope_tags]]"));
    }
}
