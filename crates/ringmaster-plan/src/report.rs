//! The plan as a terminal summary, Markdown, HTML (with a Gantt chart of
//! the waves as SVG) and JSON.

use crate::comms::Message;
use crate::planner::{CheckSeverity, Plan};
use jiff::Zoned;
use jiff::civil::Date;
use std::fmt::Write;

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn pct(x: f64) -> String {
    let p = x * 100.0;
    if p >= 10.0 || p == 0.0 {
        format!("{p:.0} %")
    } else {
        format!("{p:.1} %")
    }
}

fn when(z: &Zoned) -> String {
    z.strftime("%Y-%m-%d %H:%M").to_string()
}

fn platforms(v: &[(String, u64)]) -> String {
    let total: u64 = v.iter().map(|(_, n)| n).sum();
    v.iter()
        .map(|(k, n)| format!("{k} {}", pct(*n as f64 / total.max(1) as f64)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn days(d: &[Date]) -> String {
    match d {
        [] => String::new(),
        [one] => one.to_string(),
        [first, .., last] => format!("{first} … {last} ({} days)", d.len()),
    }
}

fn severity(s: CheckSeverity) -> &'static str {
    match s {
        CheckSeverity::Error => "error",
        CheckSeverity::Warning => "warning",
        CheckSeverity::Info => "info",
    }
}

/// The readable summary `ringmaster plan` prints.
pub fn text(plan: &Plan) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{} ({})", plan.name, plan.id);
    let _ = writeln!(o, "  {}", plan.purpose);
    let _ = writeln!(
        o,
        "  scope: {} devices, {} users ({}); {} barred from pilots (VIP, executive, lab)",
        thousands(plan.scope.devices),
        thousands(plan.scope.users),
        platforms(&plan.scope.platforms),
        thousands(plan.scope.barred)
    );
    let names: Vec<&str> = plan
        .scope
        .new_policies
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let _ = writeln!(o, "  new policies: {}", names.join(", "));
    if let Some(t) = &plan.within {
        let _ = writeln!(
            o,
            "  within scope tag {}: only its devices are in the waves (what lies outside is listed under checks)",
            t.label()
        );
    }
    if !plan.scope_tags.is_empty() {
        let tags: Vec<String> = plan.scope_tags.iter().map(|t| t.label()).collect();
        let _ = writeln!(
            o,
            "  scope tags the new policies carry: {}",
            tags.join(", ")
        );
    }
    let _ = writeln!(o, "  times in {}\n", plan.time_zone);
    let _ = writeln!(o, "Phases");
    for p in &plan.phases {
        let end = p
            .end
            .as_ref()
            .map(when)
            .unwrap_or_else(|| "(ongoing)".into());
        let _ = writeln!(
            o,
            "  {:<20} {} → {}  {} wave(s){}",
            p.name,
            when(&p.start),
            end,
            p.waves.len(),
            match (p.approval, p.approvers, plan.distinct_approvers) {
                (false, ..) => String::new(),
                (true, 1, false) => ", each approved".into(),
                (true, 1, true) => ", each approved by someone other than the requester".into(),
                (true, n, false) => format!(", each approved by {n} different people"),
                (true, n, true) =>
                    format!(", each approved by {n} people other than the requester"),
            }
        );
        for g in &p.goal_sentences {
            let _ = writeln!(o, "      goal: {g}");
        }
    }
    let _ = writeln!(o, "\nWaves");
    let _ = writeln!(
        o,
        "  {:<3} {:<34} {:>9} {:>7}  {:<16}  {:<30}  {:<16}  {:>7}",
        "#", "wave", "devices", "scope", "starts", "applied on", "baked by", "tickets"
    );
    for (i, w) in plan.waves.iter().enumerate() {
        let _ = writeln!(
            o,
            "  {:<3} {:<34} {:>9} {:>7}  {:<16}  {:<30}  {:<16}  {:>7.0}{}{}",
            i + 1,
            truncate(&w.name, 34),
            thousands(w.devices),
            pct(w.share_of_scope),
            when(&w.start),
            days(&w.apply_days),
            when(&w.end),
            w.expected_tickets.ceil(),
            if w.pinned { "  pinned" } else { "" },
            if w.time_zone != plan.time_zone {
                format!("  ({})", w.time_zone)
            } else {
                String::new()
            }
        );
    }
    if !plan.groups.is_empty() {
        let _ = writeln!(o, "\nTargeted groups");
        for g in &plan.groups {
            let _ = writeln!(
                o,
                "  {:<14} {} — {} devices, {} users ({}); willingness {}, risk {}",
                g.key,
                g.name,
                thousands(g.devices),
                thousands(g.users),
                platforms(&g.platforms),
                g.willingness,
                g.business_risk
            );
            let _ = writeln!(
                o,
                "  {:<14} enrollment: {} — {}",
                "", g.enrollment_label, g.enrollment_why
            );
        }
    }
    if let Some(p) = &plan.pilot {
        let _ = writeln!(
            o,
            "\nPilot: {} of {} eligible devices; smallest failure rate it detects: {}",
            thousands(p.size),
            thousands(p.population),
            pct(p.detectable_failure_rate)
        );
        for d in &p.dimensions {
            let _ = writeln!(
                o,
                "  {:<12} TVD {:.3}{}",
                d.dimension.name(),
                d.tvd,
                if d.missing.is_empty() {
                    String::new()
                } else {
                    format!("  missing: {}", d.missing.join(", "))
                }
            );
        }
    }
    let _ = writeln!(o, "\nRun-state alerts");
    for r in &plan.alerts {
        let _ = writeln!(o, "  {}", r.sentence());
    }
    let _ = writeln!(o, "\nChecks");
    if plan.checks.is_empty() {
        let _ = writeln!(o, "  none");
    }
    for c in &plan.checks {
        let _ = writeln!(
            o,
            "  {:<7} [{}] {}",
            severity(c.severity),
            c.phase.label(),
            c.message
        );
    }
    o
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n - 1).collect();
        format!("{t}…")
    }
}

/// Markdown cells: pipes and line breaks would break the table.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The full report as Markdown, in two parts around the Gantt chart.
fn markdown_parts(plan: &Plan) -> (String, String) {
    let mut top = String::new();
    md_summary(&mut top, plan);
    let _ = writeln!(top, "\n## Timeline\n");
    let mut rest = String::new();
    md_phases(&mut rest, plan);
    md_waves(&mut rest, plan);
    md_groups(&mut rest, plan);
    md_pilot(&mut rest, plan);
    md_changes(&mut rest, plan);
    md_alerts_and_checks(&mut rest, plan);
    (top, rest)
}

/// Title, purpose, scope, help desk and the new policies.
fn md_summary(out: &mut String, plan: &Plan) {
    let _ = writeln!(out, "# Rollout plan: {}\n", cell(&plan.name));
    let _ = writeln!(out, "{}\n", cell(&plan.purpose));
    let _ = writeln!(out, "- Plan id: `{}`; times in {}", plan.id, plan.time_zone);
    let _ = writeln!(
        out,
        "- Scope: {} devices, {} users; platforms: {}",
        thousands(plan.scope.devices),
        thousands(plan.scope.users),
        platforms(&plan.scope.platforms)
    );
    let _ = writeln!(
        out,
        "- Barred from pilots (VIP, executive, lab): {}",
        thousands(plan.scope.barred)
    );
    if let Some(t) = &plan.within {
        let _ = writeln!(out, "- Within scope tag {}", cell(&t.label()));
    }
    if !plan.scope_tags.is_empty() {
        let tags: Vec<String> = plan.scope_tags.iter().map(|t| cell(&t.label())).collect();
        let _ = writeln!(
            out,
            "- Scope tags the new policies carry: {}",
            tags.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "- Help desk: {}; capacity {} tickets a day; {} tickets expected per 100 devices",
        cell(&plan.help_desk.contact),
        plan.help_desk.capacity_per_day,
        plan.help_desk.tickets_per_100_devices
    );
    let _ = writeln!(out, "\n## New policies\n");
    for p in &plan.scope.new_policies {
        let _ = writeln!(
            out,
            "- {} (`{}`) — {}",
            cell(&p.name),
            p.id,
            p.platforms.join(", ")
        );
    }
}

/// The phases with their dates and goals.
fn md_phases(out: &mut String, plan: &Plan) {
    let _ = writeln!(out, "\n## Phases\n");
    let _ = writeln!(
        out,
        "| Phase | Starts | Ends | Waves | Goals |\n|---|---|---|---:|---|"
    );
    for p in &plan.phases {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&p.name),
            when(&p.start),
            p.end.as_ref().map(when).unwrap_or_else(|| "ongoing".into()),
            p.waves.len(),
            if p.goal_sentences.is_empty() {
                "—".to_string()
            } else {
                p.goal_sentences
                    .iter()
                    .map(|g| cell(g))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        );
    }
}

/// The waves with their sizes, dates and expected tickets.
fn md_waves(out: &mut String, plan: &Plan) {
    let _ = writeln!(out, "\n## Waves\n");
    let _ = writeln!(
        out,
        "| # | Wave | Phase | Devices | Users | Share of scope | Starts | Applied on | Per day | Baked by | Tickets expected | Approval |\n|---:|---|---|---:|---:|---:|---|---|---:|---|---:|---|"
    );
    for (i, w) in plan.waves.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | {}{} | {} | {} | {} | {} | {}{} | {} | {} | {} | {:.0} | {} |",
            i + 1,
            cell(&w.name),
            if w.pinned { " (pinned)" } else { "" },
            w.phase.label(),
            thousands(w.devices),
            thousands(w.users),
            pct(w.share_of_scope),
            when(&w.start),
            if w.time_zone != plan.time_zone {
                format!(" ({})", w.time_zone)
            } else {
                String::new()
            },
            days(&w.apply_days),
            thousands(w.devices_per_day),
            when(&w.end),
            w.expected_tickets.ceil(),
            if w.approval { "yes" } else { "no" }
        );
    }
}

/// The targeted groups, when the plan names some.
fn md_groups(out: &mut String, plan: &Plan) {
    if !plan.groups.is_empty() {
        let _ = writeln!(out, "\n## Targeted groups\n");
        let _ = writeln!(
            out,
            "| Key | Group | Devices | Users | Platforms | Cities | Willingness | Business risk | Requirements | First wave | Enrollment |\n|---|---|---:|---:|---|---|---|---|---|---|---|"
        );
        for g in &plan.groups {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}: {} |",
                cell(&g.key),
                cell(&g.name),
                thousands(g.devices),
                thousands(g.users),
                platforms(&g.platforms),
                cell(
                    &g.cities
                        .iter()
                        .map(|(c, n)| format!("{c} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                g.willingness,
                g.business_risk,
                cell(&g.requirements.join("; ")),
                cell(g.first_wave.as_deref().unwrap_or("—")),
                g.enrollment_label,
                cell(&g.enrollment_why)
            );
        }
    }
}

/// How well the pilot mirrors production, per dimension.
fn md_pilot(out: &mut String, plan: &Plan) {
    if let Some(p) = &plan.pilot {
        let _ = writeln!(out, "\n## Pilot representativeness\n");
        let _ = writeln!(
            out,
            "{} devices of {} eligible ({} barred). A pilot this size shows at least one failure with 95 % probability only when the failure rate is {} or more.\n",
            thousands(p.size),
            thousands(p.population),
            thousands(p.barred),
            pct(p.detectable_failure_rate)
        );
        let _ = writeln!(
            out,
            "| Dimension | TVD | Largest strata (pilot vs population) | Missing strata |\n|---|---:|---|---|"
        );
        for d in &p.dimensions {
            let top: Vec<String> = d
                .strata
                .iter()
                .take(5)
                .map(|s| {
                    format!(
                        "{} {} vs {}",
                        cell(&s.value),
                        pct(s.pilot_share),
                        pct(s.population_share)
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "| {} | {:.3} | {} | {} |",
                d.dimension.name(),
                d.tvd,
                top.join("; "),
                if d.missing.is_empty() {
                    "none".to_string()
                } else {
                    cell(&d.missing.join(", "))
                }
            );
        }
    }
}

/// The settings that change and what devices have today.
fn md_changes(out: &mut String, plan: &Plan) {
    if !plan.changes.is_empty() {
        let _ = writeln!(out, "\n## What changes on devices\n");
        let _ = writeln!(
            out,
            "| Setting | New value | Policy | Devices | Today |\n|---|---|---|---:|---|"
        );
        for c in &plan.changes {
            let mut today: Vec<String> = c
                .today
                .iter()
                .map(|(v, n)| format!("{} on {}", cell(v), thousands(*n)))
                .collect();
            if c.not_set_today > 0 {
                today.push(format!("not set on {}", thousands(c.not_set_today)));
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                cell(&c.setting),
                cell(&c.value),
                cell(&c.policy),
                thousands(c.devices),
                today.join("; ")
            );
        }
    }
}

/// The run state's alert rules and the plan's checks.
fn md_alerts_and_checks(out: &mut String, plan: &Plan) {
    let _ = writeln!(out, "\n## Run-state alerts\n");
    for r in &plan.alerts {
        let _ = writeln!(out, "- {}", cell(&r.sentence()));
    }
    let _ = writeln!(out, "\n## Checks\n");
    if plan.checks.is_empty() {
        let _ = writeln!(out, "None.");
    }
    for c in &plan.checks {
        let _ = writeln!(
            out,
            "- **{}** ({}): {}",
            severity(c.severity),
            c.phase.label(),
            cell(&c.message)
        );
    }
}

/// The full report as Markdown; the Gantt chart is linked as `gantt.svg`.
pub fn markdown(plan: &Plan) -> String {
    let (top, rest) = markdown_parts(plan);
    format!("{top}![Gantt chart of the waves](gantt.svg)\n{rest}")
}

/// The full report as one HTML page with the Gantt chart inline.
pub fn html(plan: &Plan, today: Option<Date>) -> String {
    let (top, rest) = markdown_parts(plan);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:90em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .5em;vertical-align:top}}</style></head>\n<body>\n{}{}\n{}</body></html>\n",
        escape(&format!("Rollout plan: {}", plan.name)),
        crate::comms::markdown_to_html(&top),
        gantt_svg(plan, today),
        crate::comms::markdown_to_html(&rest)
    )
}

/// JSON: the plan and its messages.
pub fn json(plan: &Plan, messages: &[Message]) -> serde_json::Value {
    serde_json::json!({ "plan": plan, "communications": messages })
}

/// Text for XML and HTML.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// What a wave did, as a stretch of time under its planned bar.
#[derive(Debug, Clone)]
pub struct Actual {
    /// Index into the plan's waves.
    pub wave: usize,
    pub from: jiff::Timestamp,
    pub to: jiff::Timestamp,
    pub kind: ActualKind,
    /// Shown on hover: the state and why, e.g. "awaiting approval for 6.0 d".
    pub note: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActualKind {
    /// Applying or baking.
    Running,
    /// Awaiting approval, paused, held: nothing moves.
    Waiting,
    Failed,
}

/// The plan's Gantt chart with what happened drawn under each wave
/// (`actual`), the slip of a late wave written beside it, and the end the
/// slip pushes the plan to (dashed) when it is later than planned.
pub fn gantt_with_actual(
    plan: &Plan,
    today: Option<Date>,
    actual: &[Actual],
    now: Option<jiff::Timestamp>,
) -> String {
    gantt(plan, today, actual, now)
}

/// A Gantt chart of phases and waves: applying in dark, baking in light,
/// freezes not drawn (they are in the calendar); a red line marks `today`.
pub fn gantt_svg(plan: &Plan, today: Option<Date>) -> String {
    gantt(plan, today, &[], None)
}

/// How far `now` is past a wave's planned end while it has not finished, or
/// how far after it the wave finished; `None` when on time.
fn slip(plan: &Plan, wave: usize, actual: &[Actual], now: Option<jiff::Timestamp>) -> Option<f64> {
    let planned = plan.waves.get(wave)?.end.timestamp();
    let mine: Vec<&Actual> = actual.iter().filter(|a| a.wave == wave).collect();
    let end = mine.iter().map(|a| a.to).max()?;
    let ongoing = now.is_some_and(|n| end >= n);
    let at = if ongoing { now? } else { end };
    let days = (at.as_second() - planned.as_second()) as f64 / 86_400.0;
    (days >= 0.05).then_some(days)
}

fn gantt(
    plan: &Plan,
    today: Option<Date>,
    actual: &[Actual],
    now: Option<jiff::Timestamp>,
) -> String {
    let label_w = 300.0;
    let row_h = 22.0;
    let width = 1100.0;
    let chart_w = width - label_w - 20.0;
    let start = plan.phases.first().map(|p| p.start.timestamp());
    let end = plan
        .phases
        .iter()
        .filter_map(|p| p.end.as_ref())
        .chain(plan.waves.iter().map(|w| &w.end))
        .map(|z| z.timestamp())
        .max();
    // The latest slip of any wave moves the plan's end by as much.
    let delay = (0..plan.waves.len())
        .filter_map(|w| slip(plan, w, actual, now))
        .fold(0.0_f64, f64::max);
    let forecast = end.map(|e| e + jiff::SignedDuration::from_secs((delay * 86_400.0) as i64));
    let end = end
        .into_iter()
        .chain(actual.iter().map(|a| a.to))
        .chain(forecast)
        .max();
    let (Some(t0), Some(t1)) = (start, end) else {
        return String::new();
    };
    let span = (t1.as_second() - t0.as_second()).max(3600) as f64;
    let x = |t: jiff::Timestamp| label_w + (t.as_second() - t0.as_second()) as f64 / span * chart_w;
    struct Row {
        label: String,
        from: jiff::Timestamp,
        apply_to: Option<jiff::Timestamp>,
        to: jiff::Timestamp,
        phase: bool,
        wave: Option<usize>,
    }
    let mut rows = Vec::new();
    for p in &plan.phases {
        let to = p.end.as_ref().map(|z| z.timestamp()).unwrap_or(t1);
        rows.push(Row {
            label: p.name.clone(),
            from: p.start.timestamp(),
            apply_to: None,
            to,
            phase: true,
            wave: None,
        });
        for &wi in &p.waves {
            let w = &plan.waves[wi];
            let last = w.apply_days.last().copied().unwrap_or(w.start.date());
            let apply_end = last
                .tomorrow()
                .ok()
                .and_then(|d| d.to_zoned(w.start.time_zone().clone()).ok())
                .map(|z| z.timestamp().min(w.end.timestamp()));
            rows.push(Row {
                label: format!("{} ({})", w.name, thousands(w.devices)),
                from: w.start.timestamp(),
                apply_to: apply_end,
                to: w.end.timestamp(),
                phase: false,
                wave: Some(wi),
            });
        }
    }
    let height = 40.0 + rows.len() as f64 * row_h + 10.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" role="img" aria-label="Gantt chart of the rollout">"##
    );
    // Ticks along the top: Mondays for plans up to half a year, else months.
    let tz = plan.phases[0].start.time_zone().clone();
    let weekly = span <= 183.0 * 86400.0;
    let first = plan.phases[0].start.date();
    let mut tick = if weekly {
        first
            .checked_sub(jiff::Span::new().days(i64::from(first.weekday().to_monday_zero_offset())))
            .unwrap_or(first)
    } else {
        first.first_of_month()
    };
    for _ in 0..60 {
        let Ok(z) = tick.to_zoned(tz.clone()) else {
            break;
        };
        if z.timestamp() > t1 {
            break;
        }
        if z.timestamp() >= t0 {
            let mx = x(z.timestamp());
            let label = if weekly {
                tick.strftime("%-d %b")
            } else {
                tick.strftime("%b %Y")
            };
            let _ = write!(
                s,
                r##"<line x1="{mx:.1}" y1="20" x2="{mx:.1}" y2="{height}" stroke="#ddd"/><text x="{tx:.1}" y="14" fill="#555">{label}</text>"##,
                tx = mx + 3.0,
                label = escape(&label.to_string())
            );
        }
        let step = if weekly {
            jiff::Span::new().weeks(1)
        } else {
            jiff::Span::new().months(1)
        };
        match tick.checked_add(step) {
            Ok(m) => tick = m,
            Err(_) => break,
        }
    }
    for (i, r) in rows.iter().enumerate() {
        let y = 30.0 + i as f64 * row_h;
        let (x0, x1) = (x(r.from), x(r.to).max(x(r.from) + 2.0));
        let weight = if r.phase { "bold" } else { "normal" };
        let indent = if r.phase { 4.0 } else { 16.0 };
        let _ = write!(
            s,
            r##"<text x="{indent}" y="{ty:.1}" font-weight="{weight}">{}</text>"##,
            escape(&truncate(&r.label, 44)),
            ty = y + 14.0
        );
        if r.phase {
            let _ = write!(
                s,
                r##"<rect x="{x0:.1}" y="{yy:.1}" width="{w:.1}" height="6" fill="#555"/>"##,
                yy = y + 8.0,
                w = x1 - x0
            );
        } else {
            let _ = write!(
                s,
                r##"<rect x="{x0:.1}" y="{yy:.1}" width="{w:.1}" height="14" fill="#9ecae1"><title>{}</title></rect>"##,
                escape(&r.label),
                yy = y + 3.0,
                w = x1 - x0
            );
            if let Some(a) = r.apply_to {
                let xa = x(a).max(x0 + 2.0).min(x1);
                let _ = write!(
                    s,
                    r##"<rect x="{x0:.1}" y="{yy:.1}" width="{w:.1}" height="14" fill="#3182bd"/>"##,
                    yy = y + 3.0,
                    w = xa - x0
                );
            }
            let Some(wi) = r.wave else { continue };
            // What happened, in a thin bar under the plan's.
            for a in actual.iter().filter(|a| a.wave == wi) {
                let (ax0, ax1) = (x(a.from), x(a.to).max(x(a.from) + 2.0));
                let fill = match a.kind {
                    ActualKind::Running => "#31a354",
                    ActualKind::Waiting => "#fd8d3c",
                    ActualKind::Failed => "#d62728",
                };
                let _ = write!(
                    s,
                    r##"<rect class="actual" x="{ax0:.1}" y="{yy:.1}" width="{w:.1}" height="4" fill="{fill}"><title>{}</title></rect>"##,
                    escape(&a.note),
                    yy = y + 17.0,
                    w = ax1 - ax0
                );
            }
            if let Some(days) = slip(plan, wi, actual, now) {
                let end = actual
                    .iter()
                    .filter(|a| a.wave == wi)
                    .map(|a| x(a.to))
                    .fold(x1, f64::max);
                let _ = write!(
                    s,
                    r##"<text class="late" x="{lx:.1}" y="{ty:.1}" fill="#d62728">{days:.1} d late</text>"##,
                    lx = end + 4.0,
                    ty = y + 14.0
                );
            }
        }
    }
    if let (Some(f), Some(planned)) = (forecast, plan.waves.iter().map(|w| w.end.timestamp()).max())
        && f > planned
    {
        let fx = x(f);
        let _ = write!(
            s,
            r##"<line class="forecast" x1="{fx:.1}" y1="20" x2="{fx:.1}" y2="{height}" stroke="#d62728" stroke-dasharray="4 3"/><text x="{lx:.1}" y="28" fill="#d62728">forecast end</text>"##,
            lx = fx + 3.0
        );
    }
    // The rollout's clock where there is one, else the start of today.
    let marker = now.or_else(|| {
        today
            .and_then(|d| d.to_zoned(tz).ok())
            .map(|z| z.timestamp())
    });
    if let Some(m) = marker
        && m >= t0
        && m <= t1
    {
        let tx = x(m);
        let _ = write!(
            s,
            r##"<line x1="{tx:.1}" y1="20" x2="{tx:.1}" y2="{height}" stroke="#d62728" stroke-width="2"/><text x="{lx:.1}" y="{height}" fill="#d62728">today</text>"##,
            lx = tx + 3.0
        );
    }
    s.push_str("</svg>\n");
    s
}
