//! The rollout planner: reads `ringmaster.toml`, computes phases, waves and
//! their schedule, checks goals, recommends enrollment approaches and renders
//! communications and reports. Pure: text and an organization in, a plan out.
//!
//! - [`spec`]: the plan file as written, with places for errors.
//! - [`planner`]: the plan computed from the file and the organization.
//! - [`schedule`]: calendar arithmetic (working days, hours, freezes).
//! - [`comms`]: messages for pilot users, production users and the help desk.
//! - [`report`]: text, Markdown, HTML and a Gantt chart of the waves.

pub mod comms;
pub mod planner;
pub mod report;
pub mod schedule;
pub mod spec;

use std::ops::Range;

/// A mistake in the plan file, with the bytes it is about (empty when the
/// whole file is meant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PlanError {
    pub span: Range<usize>,
    pub message: String,
}

/// Largest plan file read.
pub const MAX_PLAN_BYTES: usize = 4 << 20;

/// Parses the plan file.
pub fn parse(text: &str) -> Result<spec::PlanFile, PlanError> {
    if text.len() > MAX_PLAN_BYTES {
        return Err(PlanError {
            span: 0..0,
            message: format!("the plan file is larger than {MAX_PLAN_BYTES} bytes"),
        });
    }
    toml::from_str(text).map_err(|e| PlanError {
        span: e.span().unwrap_or(0..0),
        message: e.message().to_string(),
    })
}

/// Line and column (1-based, in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

/// Renders an error the way compilers do: `file:line:col`, the line, a caret.
pub fn render_error(file: &str, text: &str, e: &PlanError) -> String {
    if e.span.is_empty() && e.span.start == 0 {
        return format!("error: {}\n  --> {file}\n", e.message);
    }
    let (line, col) = line_col(text, e.span.start);
    let src = text.lines().nth(line - 1).unwrap_or("");
    let width = text
        .get(e.span.clone())
        .map(|s| s.lines().next().unwrap_or("").chars().count())
        .unwrap_or(1)
        .max(1);
    let gutter = line.to_string().len();
    format!(
        "error: {msg}\n{pad} --> {file}:{line}:{col}\n{pad} |\n{line} | {src}\n{pad} | {space}{carets}\n",
        msg = e.message,
        pad = " ".repeat(gutter),
        space = " ".repeat(col - 1),
        carets = "^".repeat(width.min(src.chars().count().saturating_sub(col - 1).max(1))),
    )
}
