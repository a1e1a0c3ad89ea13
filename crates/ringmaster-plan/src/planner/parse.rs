//! The plan file's values read one by one. Each parser records a bad value
//! as an error at its place and returns None, so one pass finds them all.

use crate::PlanError;
use crate::schedule;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use ringmaster_core::goals;
use ringmaster_core::org::Org;
use ringmaster_core::pilot::Dimension;
use std::ops::Range;
use toml::Spanned;

pub(super) fn perr(span: Range<usize>, message: impl Into<String>) -> PlanError {
    PlanError {
        span,
        message: message.into(),
    }
}

pub(super) fn parse_date(
    s: &Spanned<String>,
    what: &str,
    errs: &mut Vec<PlanError>,
) -> Option<Date> {
    match s.get_ref().trim().parse::<Date>() {
        Ok(d) => Some(d),
        Err(_) => {
            errs.push(perr(
                s.span(),
                format!("{what} `{}` is not a day (YYYY-MM-DD)", s.get_ref()),
            ));
            None
        }
    }
}

pub(super) fn parse_tz(s: &Spanned<String>, errs: &mut Vec<PlanError>) -> Option<TimeZone> {
    match TimeZone::get(s.get_ref().trim()) {
        Ok(tz) => Some(tz),
        Err(_) => {
            errs.push(perr(
                s.span(),
                format!(
                    "unknown time zone `{}`; use an IANA name such as Europe/Amsterdam or America/New_York",
                    s.get_ref()
                ),
            ));
            None
        }
    }
}

pub(super) fn parse_days(days: &[Spanned<String>], errs: &mut Vec<PlanError>) -> [bool; 7] {
    let mut out = [false; 7];
    for d in days {
        match schedule::parse_day(d.get_ref()) {
            Some(i) => out[i] = true,
            None => errs.push(perr(
                d.span(),
                format!(
                    "`{}` is not a weekday; use mon, tue, wed, thu, fri, sat or sun",
                    d.get_ref()
                ),
            )),
        }
    }
    out
}

pub(super) fn parse_hours_window(
    s: &Spanned<String>,
    errs: &mut Vec<PlanError>,
) -> Option<(jiff::civil::Time, jiff::civil::Time)> {
    let r = schedule::parse_hours(s.get_ref());
    if r.is_none() {
        errs.push(perr(
            s.span(),
            format!(
                "`{}` is not an hours window such as 09:00-17:00 (start before end)",
                s.get_ref()
            ),
        ));
    }
    r
}

pub(super) fn parse_duration(
    s: &Spanned<String>,
    what: &str,
    errs: &mut Vec<PlanError>,
) -> Option<f64> {
    let h = goals::parse_hours(s.get_ref());
    if h.is_none() {
        errs.push(perr(
            s.span(),
            format!(
                "{what} `{}` is not a duration such as 8h, 2d or 1w",
                s.get_ref()
            ),
        ));
    }
    h
}

pub(super) fn parse_share(s: &Spanned<String>, errs: &mut Vec<PlanError>) -> Option<f64> {
    let t = s.get_ref().trim();
    let v = t
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0 && *v <= 100.0);
    if v.is_none() {
        errs.push(perr(
            s.span(),
            format!("`{t}` is not a share such as 1% or 20% (more than 0, at most 100)"),
        ));
    }
    v.map(|v| v / 100.0)
}

pub(super) fn parse_dimension(s: &Spanned<String>, errs: &mut Vec<PlanError>) -> Option<Dimension> {
    let l = s
        .get_ref()
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '-'], "_");
    let d = Dimension::ALL
        .into_iter()
        .find(|d| d.name().replace(' ', "_").eq_ignore_ascii_case(&l));
    if d.is_none() {
        errs.push(perr(
            s.span(),
            format!(
                "unknown dimension `{}`; expected one of {}",
                s.get_ref(),
                Dimension::ALL
                    .map(|d| d.name().replace(' ', "_"))
                    .join(", ")
            ),
        ));
    }
    d
}

pub(super) fn find_group(
    org: &Org,
    name: &Spanned<String>,
    errs: &mut Vec<PlanError>,
) -> Option<usize> {
    let found = org.find_groups(name.get_ref());
    match found.len() {
        1 => Some(found[0]),
        0 => {
            let near = org
                .groups
                .iter()
                .filter(|g| {
                    g.name
                        .to_ascii_lowercase()
                        .contains(&name.get_ref().trim().to_ascii_lowercase())
                })
                .take(3)
                .map(|g| format!("'{}'", g.name))
                .collect::<Vec<_>>();
            let hint = if near.is_empty() {
                String::new()
            } else {
                format!("; similar: {}", near.join(", "))
            };
            errs.push(perr(
                name.span(),
                format!(
                    "no group named or with id `{}` in the directory{hint}",
                    name.get_ref()
                ),
            ));
            None
        }
        n => {
            errs.push(perr(
                name.span(),
                format!(
                    "{n} groups are named `{}`; use the object id of one: {}",
                    name.get_ref(),
                    found
                        .iter()
                        .map(|&g| org.groups[g].id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            None
        }
    }
}
