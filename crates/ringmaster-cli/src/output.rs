//! Rendering helpers: rule errors as miette diagnostics with a caret.

use miette::{Diagnostic, NamedSource, SourceSpan};
use ringmaster_core::rules::RuleError;

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct RuleDiagnostic {
    message: String,
    #[source_code]
    src: NamedSource<String>,
    #[label("{label}")]
    span: SourceSpan,
    label: String,
    #[help]
    help: Option<String>,
}

/// A rule error as a report that draws the rule with a caret under the place.
pub fn rule_report(name: &str, rule: &str, e: &RuleError) -> String {
    let len = e.span.end.saturating_sub(e.span.start);
    let d = RuleDiagnostic {
        message: format!("invalid rule: {}", e.message),
        src: NamedSource::new(name, rule.to_string()),
        span: (e.span.start, len).into(),
        label: format!("column {}", e.column(rule)),
        help: e.expected.as_ref().map(|x| format!("expected {x}")),
    };
    let mut out = String::new();
    let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
    if handler.render_report(&mut out, &d).is_err() {
        return e.render(rule);
    }
    out
}
