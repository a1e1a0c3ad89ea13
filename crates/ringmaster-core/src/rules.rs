//! One parser and evaluator for Entra dynamic-membership rules, Intune
//! assignment-filter rules and Conditional Access device filters.
//!
//! - `lexer`: tokens, with en-dash and dashless operators.
//! - `parser`: tokens to a checked tree; rejects what the service rejects.
//! - `vocab`: each grammar's properties, operators and value spellings.
//! - `eval`: evaluates a parsed rule over table columns, or traces one row.

mod eval;
mod lexer;
mod object;
mod parser;
pub mod vocab;

pub use eval::{EvalContext, GroupRows, LeafTrace, Trace};
pub use object::{ObjValue, one_row};
pub use vocab::{Grammar, Kind, Object, Op, Prop, Source};

use std::ops::Range;

/// A rule the service would reject, with the place and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuleError {
    /// Byte range in the rule text.
    pub span: Range<usize>,
    pub message: String,
    pub expected: Option<String>,
}

impl RuleError {
    pub fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        RuleError {
            span,
            message: message.into(),
            expected: None,
        }
    }

    pub fn expected(mut self, what: impl Into<String>) -> Self {
        self.expected = Some(what.into());
        self
    }

    /// The rule, a caret line under the offending place, and the message, as
    /// plain text for terminals and logs.
    pub fn render(&self, rule: &str) -> String {
        let col = rule[..self.span.start.min(rule.len())].chars().count();
        let width = rule
            .get(self.span.clone())
            .map(|s| s.chars().count())
            .unwrap_or(1)
            .max(1);
        let mut out = format!("{rule}\n{}{}\n", " ".repeat(col), "^".repeat(width));
        out.push_str(&format!("error at column {}: {}", col + 1, self.message));
        if let Some(e) = &self.expected {
            out.push_str(&format!(" (expected {e})"));
        }
        out
    }

    /// 1-based column of the start, counted in characters.
    pub fn column(&self, rule: &str) -> usize {
        rule[..self.span.start.min(rule.len())].chars().count() + 1
    }
}

/// Something valid that is probably not what the author meant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleWarning {
    pub span: Range<usize>,
    pub message: String,
}

/// A parsed, checked rule; evaluation binds it to a table.
#[derive(Debug, Clone)]
pub struct Rule {
    pub grammar: Grammar,
    pub text: String,
    /// What the rule selects: users or devices (or apps, for app filters).
    pub object: Object,
    pub root: Node,
    pub warnings: Vec<RuleWarning>,
}

#[derive(Debug, Clone)]
pub enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Leaf(Box<Leaf>),
}

/// One comparison: `property operator operand`.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub prop: &'static Prop,
    /// A directory extension property's name as written
    /// (`extension_<app id>_<name>`); `prop` is then its stand-in.
    pub ext: Option<Box<str>>,
    pub op: Op,
    pub operand: Operand,
    /// Source text of the comparison, for explanations.
    pub span: Range<usize>,
}

impl Leaf {
    /// The property as the rule names it: `device.deviceModel`, `user.extension_…`.
    pub fn property(&self) -> String {
        match &self.ext {
            Some(name) => format!("{}.{name}", self.prop.object.prefix()),
            None => self.prop.full_name(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Operand {
    Null,
    /// `lower` is the case-folded text used for matching.
    Str {
        text: String,
        lower: String,
    },
    List(Vec<(String, String)>),
    Regex(regex::Regex),
    Version(Version),
    Date(DateExpr),
    /// The condition inside `-any` / `-all`.
    Inner(Box<Inner>),
    /// `memberOf -any (group.objectId -in [...])`.
    Groups(Vec<String>),
}

/// A condition over one element of a multi-valued property.
#[derive(Debug, Clone)]
pub enum Inner {
    And(Vec<Inner>),
    Or(Vec<Inner>),
    Not(Box<Inner>),
    Cmp {
        field: Field,
        op: Op,
        operand: Operand,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `_`, the element itself.
    Element,
    /// A field of a record element, by index into the record.
    Record(usize),
}

/// `system.now` with an optional ISO 8601 offset, or a fixed instant.
#[derive(Debug, Clone)]
pub enum DateExpr {
    Now(Option<jiff::Span>),
    At(jiff::Timestamp),
}

/// A dotted version; missing parts compare as zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(pub Vec<u64>);

impl Version {
    /// Reads `10.0.22631.3447`, also with a trailing build note (`14.4.1 (23E224)`).
    pub fn parse(s: &str) -> Option<Version> {
        let head = s.split_whitespace().next()?;
        let parts: Option<Vec<u64>> = head.split('.').map(|p| p.parse().ok()).collect();
        parts.filter(|p| !p.is_empty()).map(Version)
    }

    /// Orders numerically, missing parts as zero (so 10.0 equals 10.0.0).
    pub fn compare(&self, other: &Version) -> std::cmp::Ordering {
        let n = self.0.len().max(other.0.len());
        for i in 0..n {
            let a = self.0.get(i).copied().unwrap_or(0);
            let b = other.0.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                std::cmp::Ordering::Equal => continue,
                o => return o,
            }
        }
        std::cmp::Ordering::Equal
    }
}

impl Rule {
    /// Parses and checks `text` in `grammar`.
    pub fn parse(grammar: Grammar, text: &str) -> Result<Rule, RuleError> {
        parser::parse(grammar, text)
    }

    /// Ids of the groups this rule's `memberOf` conditions name.
    pub fn referenced_groups(&self) -> Vec<String> {
        fn walk(n: &Node, out: &mut Vec<String>) {
            match n {
                Node::And(v) | Node::Or(v) => v.iter().for_each(|c| walk(c, out)),
                Node::Not(c) => walk(c, out),
                Node::Leaf(l) => {
                    if let Operand::Groups(g) = &l.operand {
                        out.extend(g.iter().cloned());
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }
}

#[cfg(test)]
mod tests;
