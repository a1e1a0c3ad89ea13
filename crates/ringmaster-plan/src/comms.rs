//! Communication plans: for each phase and audience (pilot users,
//! production users, the help desk) what changes, when, why and what to do
//! on trouble. Templates are minijinja Markdown the admin can replace; the
//! HTML e-mail body is rendered from the same Markdown with raw HTML and
//! unsafe links turned into text.

use crate::planner::{Plan, WavePlan};
use crate::spec::PhaseKind;
use minijinja::{Environment, UndefinedBehavior, context};
use serde::Serialize;
use std::collections::BTreeMap;

/// The built-in templates, by name; a folder of files with these names replaces them.
pub const TEMPLATES: [(&str, &str); 4] = [
    (
        "pilot_users.md",
        include_str!("../templates/pilot_users.md"),
    ),
    (
        "production_users.md",
        include_str!("../templates/production_users.md"),
    ),
    ("help_desk.md", include_str!("../templates/help_desk.md")),
    ("message.html", include_str!("../templates/message.html")),
];

/// At most this many changed settings are listed in a message; the rest are counted.
const MAX_CHANGES: usize = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    PilotUsers,
    ProductionUsers,
    HelpDesk,
}

impl Audience {
    pub fn template(self) -> &'static str {
        match self {
            Audience::PilotUsers => "pilot_users.md",
            Audience::ProductionUsers => "production_users.md",
            Audience::HelpDesk => "help_desk.md",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Audience::PilotUsers => "pilot users",
            Audience::ProductionUsers => "production users",
            Audience::HelpDesk => "help desk",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub audience: Audience,
    pub phase: PhaseKind,
    /// The wave a production message is about.
    pub wave: Option<String>,
    /// The recipients: the devices' primary users, or the help desk.
    pub recipients: u64,
    pub subject: String,
    pub markdown: String,
    pub html: String,
}

/// A template that failed to render: which, where and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("template {name}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct TemplateError {
    pub name: String,
    pub line: Option<usize>,
    pub message: String,
}

fn template_error(e: &minijinja::Error, fallback: &str) -> TemplateError {
    TemplateError {
        name: e.name().unwrap_or(fallback).to_string(),
        line: e.line(),
        message: e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.kind().to_string()),
    }
}

#[derive(Serialize)]
struct WaveCtx {
    name: String,
    start: String,
    start_day: String,
    end: String,
    apply_days: Vec<String>,
    devices: u64,
    users: u64,
    expected_tickets: String,
    time_zone: String,
}

fn wave_ctx(w: &WavePlan, tz: &jiff::tz::TimeZone, tz_name: &str) -> WaveCtx {
    let fmt = |z: &jiff::Zoned| {
        z.with_time_zone(tz.clone())
            .strftime("%a %-d %b %Y %H:%M")
            .to_string()
    };
    WaveCtx {
        name: w.name.clone(),
        start: fmt(&w.start),
        start_day: w
            .start
            .with_time_zone(tz.clone())
            .strftime("%-d %B %Y")
            .to_string(),
        end: fmt(&w.end),
        apply_days: w
            .apply_days
            .iter()
            .map(|d| d.strftime("%a %-d %b").to_string())
            .collect(),
        devices: w.devices,
        users: w.users,
        expected_tickets: format!("{:.0}", w.expected_tickets.ceil()),
        time_zone: tz_name.to_string(),
    }
}

#[derive(Serialize)]
struct ChangeCtx {
    setting: String,
    setting_id: String,
    value: String,
    policy: String,
    devices: u64,
    today: String,
    not_set_today: u64,
}

/// Renders every message of the plan. `overrides` maps template names to
/// the admin's versions.
pub fn render(
    plan: &Plan,
    overrides: &BTreeMap<String, String>,
    from: Option<&str>,
) -> Result<Vec<Message>, TemplateError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    for (name, src) in TEMPLATES {
        let src = overrides
            .get(name)
            .cloned()
            .unwrap_or_else(|| src.to_string());
        env.add_template_owned(name.to_string(), src)
            .map_err(|e| template_error(&e, name))?;
    }
    let plan_tz = jiff::tz::TimeZone::get(&plan.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let mut changes: Vec<ChangeCtx> = plan
        .changes
        .iter()
        .map(|c| ChangeCtx {
            setting: c.setting.clone(),
            setting_id: c.setting_id.clone(),
            value: c.value.clone(),
            policy: c.policy.clone(),
            devices: c.devices,
            today: c
                .today
                .iter()
                .map(|(v, n)| format!("{v} on {n} devices"))
                .collect::<Vec<_>>()
                .join(", "),
            not_set_today: c.not_set_today,
        })
        .collect();
    // Settings that change for the most devices first.
    changes.sort_by(|a, b| {
        (b.devices - b.not_set_today.min(b.devices))
            .cmp(&(a.devices - a.not_set_today.min(a.devices)))
            .then(a.setting.cmp(&b.setting))
    });
    let more = changes.len().saturating_sub(MAX_CHANGES);
    changes.truncate(MAX_CHANGES);
    let rollout = context! { name => plan.name, purpose => plan.purpose, id => plan.id };
    let help_desk = context! {
        contact => plan.help_desk.contact,
        self_help => plan.help_desk.self_help,
        capacity_per_day => plan.help_desk.capacity_per_day,
    };
    let mut out = Vec::new();
    let mut emit = |audience: Audience,
                    phase: &crate::planner::PhasePlan,
                    waves: Vec<&WavePlan>,
                    tz: &jiff::tz::TimeZone,
                    tz_name: &str,
                    recipients: u64|
     -> Result<(), TemplateError> {
        let wave_name = (audience == Audience::ProductionUsers)
            .then(|| waves.first().map(|w| w.name.clone()))
            .flatten();
        let ctx = context! {
            rollout => rollout.clone(),
            phase => context! { label => phase.label, name => phase.name },
            audience => audience.label(),
            waves => waves.iter().map(|w| wave_ctx(w, tz, tz_name)).collect::<Vec<_>>(),
            devices => waves.first().map(|w| w.devices).unwrap_or(0),
            changes => &changes,
            more_changes => more,
            help_desk => help_desk.clone(),
            goals => phase.goal_sentences,
            known_issues => Vec::<String>::new(),
            time_zone => tz_name,
            from => from,
        };
        let name = audience.template();
        let markdown = env
            .get_template(name)
            .and_then(|t| t.render(&ctx))
            .map_err(|e| template_error(&e, name))?;
        let subject = markdown
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim_start_matches('#')
            .trim()
            .to_string();
        let body = markdown_to_html(&markdown);
        let html = env
            .get_template("message.html")
            .and_then(|t| t.render(context! { subject => subject, body => minijinja::Value::from_safe_string(body) }))
            .map_err(|e| template_error(&e, "message.html"))?;
        out.push(Message {
            audience,
            phase: phase.kind,
            wave: wave_name,
            recipients,
            subject,
            markdown,
            html,
        });
        Ok(())
    };
    for phase in &plan.phases {
        let waves: Vec<&WavePlan> = phase.waves.iter().map(|&i| &plan.waves[i]).collect();
        if waves.is_empty() {
            continue;
        }
        emit(
            Audience::HelpDesk,
            phase,
            waves.clone(),
            &plan_tz,
            &plan.time_zone,
            1,
        )?;
        match phase.kind {
            PhaseKind::Pilot | PhaseKind::ProofOfConcept => {
                emit(
                    Audience::PilotUsers,
                    phase,
                    waves.clone(),
                    &plan_tz,
                    &plan.time_zone,
                    waves[0].users,
                )?;
            }
            PhaseKind::Enterprise => {
                for w in waves {
                    let tz = jiff::tz::TimeZone::get(&w.time_zone).unwrap_or(plan_tz.clone());
                    emit(
                        Audience::ProductionUsers,
                        phase,
                        vec![w],
                        &tz,
                        &w.time_zone,
                        w.users,
                    )?;
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Markdown to an HTML body. Raw HTML in the text is shown as text, and only
/// http, https and mailto links stay links, so nothing from the directory or
/// the policies can inject markup into an e-mail.
pub fn markdown_to_html(md: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let safe = |url: &str| {
        let l = url.trim().to_ascii_lowercase();
        l.starts_with("https://") || l.starts_with("http://") || l.starts_with("mailto:")
    };
    let mut dropped_links = 0usize;
    let events: Vec<Event<'_>> = Parser::new_ext(md, Options::ENABLE_TABLES)
        .filter_map(|e| match e {
            Event::Html(s) | Event::InlineHtml(s) => Some(Event::Text(s)),
            Event::Start(Tag::Image { dest_url, .. }) => Some(Event::Text(dest_url)),
            Event::End(TagEnd::Image) => None,
            Event::Start(Tag::Link { ref dest_url, .. }) if !safe(dest_url) => {
                dropped_links += 1;
                None
            }
            Event::End(TagEnd::Link) if dropped_links > 0 => {
                dropped_links -= 1;
                None
            }
            other => Some(other),
        })
        .collect();
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_from_markdown_is_escaped() {
        let h = markdown_to_html(
            "# Hi <script>alert(1)</script>\n\n[x](javascript:alert(1)) [y](https://ok.example)\n\n![i](https://img)",
        );
        assert!(!h.contains("<script"), "{h}");
        assert!(h.contains("&lt;script&gt;"), "{h}");
        assert!(!h.contains("javascript:"), "{h}");
        assert!(h.contains(r#"<a href="https://ok.example">y</a>"#), "{h}");
        assert!(!h.contains("<img"), "{h}");
    }
}
