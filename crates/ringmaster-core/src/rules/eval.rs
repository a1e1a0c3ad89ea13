//! Evaluation. A leaf is decided once per distinct value of its column and
//! then selected with one scan of the column's codes; `and`/`or`/`not` are
//! bitmap operations. `trace` evaluates one row and records every leaf.

use super::vocab::{Column, Kind, Object, Op, Prop, Source};
use super::{DateExpr, Field, Inner, Leaf, Node, Operand, Rule, Version};
use crate::column::{DictColumn, MultiColumn};
use crate::org::Table;
use roaring::RoaringBitmap;

/// Resolved memberships that `memberOf` conditions read.
pub trait GroupRows: Sync {
    /// Rows (of the rule's object type) that are members of the group.
    fn group_rows(&self, group_id: &str) -> Option<&RoaringBitmap>;
}

/// What evaluation needs beyond the table: the clock and group memberships.
#[derive(Clone, Copy)]
pub struct EvalContext<'a> {
    pub now: jiff::Timestamp,
    pub groups: Option<&'a dyn GroupRows>,
}

impl<'a> EvalContext<'a> {
    pub fn new(now: jiff::Timestamp) -> Self {
        EvalContext { now, groups: None }
    }

    pub fn with_groups(mut self, groups: &'a dyn GroupRows) -> Self {
        self.groups = Some(groups);
        self
    }
}

/// The outcome of a rule on one row, with every comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Trace {
    pub result: bool,
    pub leaves: Vec<LeafTrace>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LeafTrace {
    /// The comparison as written in the rule.
    pub condition: String,
    pub property: String,
    /// The row's values as the grammar presents them; empty means null.
    pub values: Vec<String>,
    pub result: bool,
}

impl Rule {
    /// All rows of `table` the rule selects. App-filter rules select nothing.
    pub fn select(&self, table: &Table, ctx: &EvalContext<'_>) -> RoaringBitmap {
        if self.object == Object::App {
            return RoaringBitmap::new();
        }
        let mut all = RoaringBitmap::new();
        all.insert_range(0..table.rows);
        node_rows(&self.root, table, ctx, &all)
    }

    /// The rows of `rows` the rule selects, each evaluated on its own: for
    /// a few rows, far less work than [`Rule::select`] over every row.
    pub fn select_within(
        &self,
        table: &Table,
        ctx: &EvalContext<'_>,
        rows: &RoaringBitmap,
    ) -> RoaringBitmap {
        rows.iter()
            .filter(|&r| self.matches(table, r, ctx))
            .collect()
    }

    /// Evaluates one row and records each comparison, for explanations.
    pub fn trace(&self, table: &Table, row: u32, ctx: &EvalContext<'_>) -> Trace {
        let mut leaves = Vec::new();
        let result = if self.object == Object::App {
            false
        } else {
            node_row(self, &self.root, table, row, ctx, &mut leaves)
        };
        Trace { result, leaves }
    }

    /// Evaluates one row without recording.
    pub fn matches(&self, table: &Table, row: u32, ctx: &EvalContext<'_>) -> bool {
        self.object != Object::App && node_test(&self.root, table, row, ctx)
    }
}

fn node_rows(n: &Node, t: &Table, ctx: &EvalContext<'_>, all: &RoaringBitmap) -> RoaringBitmap {
    match n {
        Node::And(items) => {
            let mut acc = node_rows(&items[0], t, ctx, all);
            for c in &items[1..] {
                if acc.is_empty() {
                    break;
                }
                acc &= node_rows(c, t, ctx, all);
            }
            acc
        }
        Node::Or(items) => {
            let mut acc = RoaringBitmap::new();
            for c in items {
                acc |= node_rows(c, t, ctx, all);
            }
            acc
        }
        Node::Not(c) => all - node_rows(c, t, ctx, all),
        Node::Leaf(l) => leaf_rows(l, t, ctx, all),
    }
}

/// Where a leaf's values are in a table.
enum Values<'t> {
    /// The table does not hold the property: every row is null.
    Null,
    Scalar(&'t DictColumn),
    Multi(&'t MultiColumn),
    MemberOf,
}

fn values<'t>(l: &Leaf, t: &'t Table) -> Values<'t> {
    match l.prop.source.column() {
        Column::Unbound => Values::Null,
        Column::Scalar(c) => Values::Scalar(&t.cols[c]),
        Column::Multi(m) => Values::Multi(&t.multi[m]),
        Column::MemberOf => Values::MemberOf,
        // An extension property no record carried is null on every row, as
        // in the directory.
        Column::Extension => match l.ext.as_deref().and_then(|n| t.ext_column(n)) {
            Some(c) => Values::Scalar(c),
            None => Values::Null,
        },
    }
}

fn leaf_rows(l: &Leaf, t: &Table, ctx: &EvalContext<'_>, all: &RoaringBitmap) -> RoaringBitmap {
    match values(l, t) {
        Values::Null => {
            if scalar(l.prop, l.op, &l.operand, None, ctx) {
                all.clone()
            } else {
                RoaringBitmap::new()
            }
        }
        Values::Scalar(c) => scalar_rows(l, c, ctx, all),
        Values::Multi(m) => multi_rows(l, m, ctx),
        Values::MemberOf => {
            let mut acc = RoaringBitmap::new();
            if let (Operand::Groups(ids), Some(g)) = (&l.operand, ctx.groups) {
                for id in ids {
                    if let Some(rows) = g.group_rows(id) {
                        acc |= rows;
                    }
                }
            }
            acc
        }
    }
}

fn scalar_rows(
    l: &Leaf,
    column: &DictColumn,
    ctx: &EvalContext<'_>,
    all: &RoaringBitmap,
) -> RoaringBitmap {
    if let Some(rows) = indexed_rows(l, column, all) {
        return rows;
    }
    let hit: Vec<bool> = (column.dict.values())
        .map(|v| scalar(l.prop, l.op, &l.operand, v.map(|v| l.prop.present(v)), ctx))
        .collect();
    if hit.iter().all(|h| *h) {
        return all.clone();
    }
    if !hit.iter().any(|h| *h) {
        return RoaringBitmap::new();
    }
    column.select(&hit)
}

/// Equality, lists and prefixes on plain string columns go through the
/// column's sorted index when it has one; negations take the complement
/// (null rows match a negation, and are never in the positive result).
fn indexed_rows(l: &Leaf, column: &DictColumn, all: &RoaringBitmap) -> Option<RoaringBitmap> {
    if l.prop.kind != Kind::Str || l.prop.vocab.is_some() {
        return None;
    }
    let pos = l.op.positive().unwrap_or(l.op);
    let rows = match (pos, &l.operand) {
        (Op::Eq, Operand::Str { lower, .. }) if !lower.is_empty() => {
            column.lookup(&[lower], false)?
        }
        (Op::StartsWith, Operand::Str { lower, .. }) if !lower.is_empty() => {
            column.lookup(&[lower], true)?
        }
        (Op::In, Operand::List(items)) if items.iter().all(|(_, l)| !l.is_empty()) => {
            let v: Vec<&str> = items.iter().map(|(_, l)| l.as_str()).collect();
            column.lookup(&v, false)?
        }
        _ => return None,
    };
    Some(if l.op.positive().is_some() {
        all - rows
    } else {
        rows
    })
}

fn multi_rows(l: &Leaf, m: &MultiColumn, ctx: &EvalContext<'_>) -> RoaringBitmap {
    let (elem_hit, all_mode, negate) = multi_plan(l, m, ctx);
    let mut out = RoaringBitmap::new();
    let mut buf = Vec::new();
    let view = m.view();
    for row in 0..m.rows() as u32 {
        let codes = view.row(row);
        let hit = if all_mode {
            codes.iter().all(|&c| elem_hit[c as usize])
        } else {
            codes.iter().any(|&c| elem_hit[c as usize])
        };
        if hit != negate {
            buf.push(row);
        }
    }
    out.append(buf).expect("ascending");
    out
}

/// For a multi-valued leaf: which element codes satisfy it, whether every
/// element must, and whether the row result is negated.
fn multi_plan(l: &Leaf, m: &MultiColumn, ctx: &EvalContext<'_>) -> (Vec<bool>, bool, bool) {
    let n = m.dict.len() as u32;
    match (&l.op, &l.operand) {
        (Op::Any | Op::All, Operand::Inner(inner)) => {
            let dict = m.dict.view();
            let hit = (0..n)
                .map(|c| c != 0 && inner_test(inner, m, &|c| dict.value(c), c, ctx))
                .collect();
            (hit, l.op == Op::All, false)
        }
        _ => {
            // A scalar operator on a list asks about its elements: positive
            // operators hold when any element matches, negative ones when none does.
            let pos = element_op(l);
            let hit = (m.dict.values().enumerate())
                .map(|(c, v)| c != 0 && scalar(l.prop, pos, &l.operand, v, ctx))
                .collect();
            (hit, false, l.op.positive().is_some())
        }
    }
}

/// The positive operator a string operator on a list applies to each
/// element. On a set (Conditional Access), `-contains` names a whole element.
fn element_op(l: &Leaf) -> Op {
    match l.op.positive().unwrap_or(l.op) {
        Op::Contains if l.prop.kind == Kind::Set => Op::Eq,
        op => op,
    }
}

/// `element` reads an element's text: from the whole dictionary in hand
/// when testing every code, one value at a time when testing one row.
fn inner_test<'t>(
    i: &Inner,
    m: &'t MultiColumn,
    element: &impl Fn(u32) -> Option<&'t str>,
    code: u32,
    ctx: &EvalContext<'_>,
) -> bool {
    match i {
        Inner::And(v) => v.iter().all(|c| inner_test(c, m, element, code, ctx)),
        Inner::Or(v) => v.iter().any(|c| inner_test(c, m, element, code, ctx)),
        Inner::Not(c) => !inner_test(c, m, element, code, ctx),
        Inner::Cmp { field, op, operand } => {
            let value = match field {
                Field::Element => element(code),
                Field::Record(i) => m.record(code).get(*i).and_then(|v| v.as_deref()),
            };
            scalar(&ELEMENT_PROP, *op, operand, value, ctx)
        }
    }
}

static ELEMENT_PROP: Prop = Prop {
    name: "_",
    object: Object::Device,
    kind: Kind::Str,
    source: Source::Unbound,
    ops: &[],
    vocab: None,
    record: None,
};

/// Decides a comparison for one value (`None` = null), case-insensitively.
fn scalar(
    prop: &Prop,
    op: Op,
    operand: &Operand,
    value: Option<&str>,
    ctx: &EvalContext<'_>,
) -> bool {
    if let Some(pos) = op.positive() {
        return !scalar(prop, pos, operand, value, ctx);
    }
    let Some(v) = value else {
        // Null equals null and the empty string, nothing else.
        return match (op, operand) {
            (Op::Eq, o) => is_empty(o),
            (Op::In, Operand::List(items)) => items.iter().any(|(_, l)| l.is_empty()),
            _ => false,
        };
    };
    match (op, operand) {
        (Op::Eq, Operand::Null) => false,
        (Op::Eq, Operand::Date(d)) => date_cmp(v, d, ctx) == Some(std::cmp::Ordering::Equal),
        (Op::Eq, Operand::Str { lower, .. }) if prop.kind == Kind::Date => {
            match super::parser::parse_instant(lower) {
                Some(ts) => date_cmp(v, &DateExpr::At(ts), ctx) == Some(std::cmp::Ordering::Equal),
                None => eq_ci(v, lower),
            }
        }
        (Op::Eq, Operand::Str { lower, .. }) => eq_ci(v, lower),
        (Op::StartsWith, Operand::Str { lower, .. }) => starts_ci(v, lower),
        (Op::EndsWith, Operand::Str { lower, .. }) => v.to_lowercase().ends_with(lower.as_str()),
        (Op::Contains, Operand::Str { lower, .. }) => contains_ci(v, lower),
        (Op::Match, Operand::Regex(re)) => re.is_match(v),
        (Op::In, Operand::List(items)) => items.iter().any(|(_, l)| eq_ci(v, l)),
        (Op::Gt | Op::Ge | Op::Lt | Op::Le, Operand::Version(want)) => match Version::parse(v) {
            Some(have) => order(op, have.compare(want)),
            None => false,
        },
        (Op::Gt | Op::Ge | Op::Lt | Op::Le, Operand::Date(d)) => {
            date_cmp(v, d, ctx).is_some_and(|o| order(op, o))
        }
        _ => false,
    }
}

fn is_empty(o: &Operand) -> bool {
    match o {
        Operand::Null => true,
        Operand::Str { lower, .. } => lower.is_empty(),
        _ => false,
    }
}

fn order(op: Op, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Op::Gt => o == Greater,
        Op::Ge => o != Less,
        Op::Lt => o == Less,
        Op::Le => o != Greater,
        _ => false,
    }
}

fn date_cmp(v: &str, d: &DateExpr, ctx: &EvalContext<'_>) -> Option<std::cmp::Ordering> {
    let have = super::parser::parse_instant(v)?;
    let want = match d {
        DateExpr::At(ts) => *ts,
        DateExpr::Now(None) => ctx.now,
        DateExpr::Now(Some(span)) => ctx
            .now
            .to_zoned(jiff::tz::TimeZone::UTC)
            .checked_add(*span)
            .ok()?
            .timestamp(),
    };
    Some(have.cmp(&want))
}

fn eq_ci(v: &str, lower: &str) -> bool {
    if v.is_ascii() && lower.is_ascii() {
        v.eq_ignore_ascii_case(lower)
    } else {
        v.to_lowercase() == lower
    }
}

fn starts_ci(v: &str, lower: &str) -> bool {
    if v.is_ascii() && lower.is_ascii() {
        v.len() >= lower.len() && v.as_bytes()[..lower.len()].eq_ignore_ascii_case(lower.as_bytes())
    } else {
        v.to_lowercase().starts_with(lower)
    }
}

fn contains_ci(v: &str, lower: &str) -> bool {
    if lower.is_empty() {
        return true;
    }
    if v.is_ascii() && lower.is_ascii() {
        let (h, n) = (v.as_bytes(), lower.as_bytes());
        h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
    } else {
        v.to_lowercase().contains(lower)
    }
}

fn node_test(n: &Node, t: &Table, row: u32, ctx: &EvalContext<'_>) -> bool {
    match n {
        Node::And(v) => v.iter().all(|c| node_test(c, t, row, ctx)),
        Node::Or(v) => v.iter().any(|c| node_test(c, t, row, ctx)),
        Node::Not(c) => !node_test(c, t, row, ctx),
        Node::Leaf(l) => leaf_test(l, t, row, ctx),
    }
}

fn leaf_test(l: &Leaf, t: &Table, row: u32, ctx: &EvalContext<'_>) -> bool {
    match values(l, t) {
        Values::Null => scalar(l.prop, l.op, &l.operand, None, ctx),
        Values::Scalar(c) => scalar(
            l.prop,
            l.op,
            &l.operand,
            c.get(row).map(|v| l.prop.present(v)),
            ctx,
        ),
        Values::Multi(m) => multi_test(l, m, row, ctx),
        Values::MemberOf => match (&l.operand, ctx.groups) {
            (Operand::Groups(ids), Some(g)) => ids
                .iter()
                .any(|id| g.group_rows(id).is_some_and(|r| r.contains(row))),
            _ => false,
        },
    }
}

fn multi_test(l: &Leaf, m: &MultiColumn, row: u32, ctx: &EvalContext<'_>) -> bool {
    let codes = m.row(row);
    match (&l.op, &l.operand) {
        (Op::Any, Operand::Inner(i)) => codes
            .iter()
            .any(|&c| inner_test(i, m, &|c| m.dict.value(c), c, ctx)),
        (Op::All, Operand::Inner(i)) => codes
            .iter()
            .all(|&c| inner_test(i, m, &|c| m.dict.value(c), c, ctx)),
        _ => {
            let pos = element_op(l);
            let any = codes
                .iter()
                .any(|&c| scalar(l.prop, pos, &l.operand, m.dict.value(c), ctx));
            any != l.op.positive().is_some()
        }
    }
}

fn node_row(
    rule: &Rule,
    n: &Node,
    t: &Table,
    row: u32,
    ctx: &EvalContext<'_>,
    out: &mut Vec<LeafTrace>,
) -> bool {
    match n {
        // Every branch is visited so the explanation shows the whole rule.
        Node::And(v) => v
            .iter()
            .map(|c| node_row(rule, c, t, row, ctx, out))
            .fold(true, |a, b| a & b),
        Node::Or(v) => v
            .iter()
            .map(|c| node_row(rule, c, t, row, ctx, out))
            .fold(false, |a, b| a | b),
        Node::Not(c) => !node_row(rule, c, t, row, ctx, out),
        Node::Leaf(l) => {
            let result = leaf_test(l, t, row, ctx);
            let values: Vec<String> = match values(l, t) {
                Values::Null => Vec::new(),
                Values::Scalar(c) => c
                    .get(row)
                    .map(|v| l.prop.present(v).to_string())
                    .into_iter()
                    .collect(),
                Values::Multi(m) => multi_values(m, row),
                Values::MemberOf => match (&l.operand, ctx.groups) {
                    (Operand::Groups(ids), Some(g)) => ids
                        .iter()
                        .filter(|id| g.group_rows(id).is_some_and(|r| r.contains(row)))
                        .map(|id| format!("member of {id}"))
                        .collect(),
                    _ => Vec::new(),
                },
            };
            out.push(LeafTrace {
                condition: rule.text[l.span.clone()].to_string(),
                property: l.property(),
                values,
                result,
            });
            result
        }
    }
}

fn multi_values(m: &MultiColumn, row: u32) -> Vec<String> {
    if m.fields.is_empty() {
        return m.values(row).map(str::to_string).collect();
    }
    m.row(row)
        .iter()
        .map(|&c| {
            let parts: Vec<String> = m
                .fields
                .iter()
                .zip(m.record(c))
                .map(|(f, v)| format!("{f}={}", v.as_deref().unwrap_or("null")))
                .collect();
            parts.join(" ")
        })
        .collect()
}
