//! Recursive descent over the tokens. Precedence, tightest first:
//! comparison, `not`, `and`, `or`.

use super::lexer::{Tok, Token, lex};
use super::vocab::{self, DIRECT_REPORTS, Grammar, Kind, Object, Op, Prop};
use super::{DateExpr, Field, Inner, Leaf, Node, Operand, Rule, RuleError, RuleWarning, Version};
use crate::model::ASSIGNED_PLAN_FIELDS;
use std::ops::Range;

pub fn parse(grammar: Grammar, text: &str) -> Result<Rule, RuleError> {
    let chars = text.chars().count();
    if chars > grammar.max_len() {
        let start = text
            .char_indices()
            .nth(grammar.max_len())
            .map(|(i, _)| i)
            .unwrap_or(0);
        return Err(RuleError::new(
            start..text.len(),
            format!(
                "rule is {chars} characters long; {} accept at most {}",
                grammar,
                grammar.max_len()
            ),
        ));
    }
    let toks = lex(text)?;
    if toks.is_empty() {
        return Err(RuleError::new(0..text.len(), "the rule is empty")
            .expected("a condition such as device.deviceOSType -eq \"Windows\""));
    }
    let mut p = Parser {
        text,
        toks,
        pos: 0,
        grammar,
        object: None,
        warnings: Vec::new(),
    };
    let root = p.parse_or()?;
    if let Some(t) = p.peek() {
        let err = match t.tok {
            Tok::RParen => RuleError::new(
                t.span.clone(),
                "unbalanced parentheses: this ')' closes nothing",
            ),
            _ => RuleError::new(t.span.clone(), format!("unexpected {}", describe(&t.tok)))
                .expected("-and, -or or the end of the rule"),
        };
        return Err(err);
    }
    let object = p.object.map(|(o, _)| o).unwrap_or(Object::Device);
    Ok(Rule {
        grammar,
        text: text.to_string(),
        object,
        root,
        warnings: p.warnings,
    })
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::LBracket => "'['".into(),
        Tok::RBracket => "']'".into(),
        Tok::Comma => "','".into(),
        Tok::Str(s) => format!("string \"{s}\""),
        Tok::Dashed(s) => format!("'-{s}'"),
        Tok::Word(s) => format!("'{s}'"),
    }
}

/// A property as the rule names it.
struct Named {
    prop: &'static Prop,
    /// A directory extension property's name.
    ext: Option<Box<str>>,
    span: Range<usize>,
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<Token>,
    pos: usize,
    grammar: Grammar,
    object: Option<(Object, Range<usize>)>,
    warnings: Vec<RuleWarning>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn end_span(&self) -> Range<usize> {
        self.text.len()..self.text.len()
    }

    fn peek_keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Word(w) | Tok::Dashed(w), .. }) if w.eq_ignore_ascii_case(k))
    }

    fn eat_keyword(&mut self, k: &str) -> bool {
        let hit = self.peek_keyword(k);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn parse_or(&mut self) -> Result<Node, RuleError> {
        let mut items = vec![self.parse_and()?];
        while self.eat_keyword("or") {
            items.push(self.parse_and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one")
        } else {
            Node::Or(items)
        })
    }

    fn parse_and(&mut self) -> Result<Node, RuleError> {
        let mut items = vec![self.parse_not()?];
        while self.eat_keyword("and") {
            items.push(self.parse_not()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one")
        } else {
            Node::And(items)
        })
    }

    fn parse_not(&mut self) -> Result<Node, RuleError> {
        if self.eat_keyword("not") {
            return Ok(Node::Not(Box::new(self.parse_not()?)));
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<Node, RuleError> {
        let Some(t) = self.next() else {
            return Err(RuleError::new(self.end_span(), "the rule ends too early")
                .expected("a condition or '('"));
        };
        match &t.tok {
            Tok::LParen => {
                let inner = self.parse_or()?;
                self.close_paren(&t.span)?;
                Ok(inner)
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("direct") => self.direct_reports(t.span.clone()),
            Tok::Word(w) => {
                let named = self.property(w, t.span.clone())?;
                self.comparison(named)
            }
            other => Err(
                RuleError::new(t.span.clone(), format!("unexpected {}", describe(other)))
                    .expected("a property such as device.deviceOSType, '(' or -not"),
            ),
        }
    }

    fn close_paren(&mut self, open: &Range<usize>) -> Result<(), RuleError> {
        match self.next() {
            Some(Token {
                tok: Tok::RParen, ..
            }) => Ok(()),
            Some(t) => Err(RuleError::new(
                t.span.clone(),
                format!("unexpected {}", describe(&t.tok)),
            )
            .expected(format!(
                "')' to close the '(' at column {}",
                self.col(open.start)
            ))),
            None => Err(RuleError::new(
                open.clone(),
                "unbalanced parentheses: this '(' is never closed",
            )
            .expected("')'")),
        }
    }

    fn col(&self, byte: usize) -> usize {
        self.text[..byte].chars().count() + 1
    }

    /// `Direct Reports for "<manager object id>"`: Entra's rule for a manager's team.
    fn direct_reports(&mut self, start: Range<usize>) -> Result<Node, RuleError> {
        if self.grammar != Grammar::EntraDynamicMembership {
            return Err(RuleError::new(
                start,
                format!(
                    "'Direct Reports for' rules exist only in {}",
                    Grammar::EntraDynamicMembership
                ),
            ));
        }
        for word in ["reports", "for"] {
            match self.next() {
                Some(Token {
                    tok: Tok::Word(w), ..
                }) if w.eq_ignore_ascii_case(word) => {}
                Some(t) => {
                    return Err(
                        RuleError::new(t.span, format!("unexpected {}", describe(&t.tok)))
                            .expected(format!("'{word}' in 'Direct Reports for \"<manager id>\"'")),
                    );
                }
                None => {
                    return Err(RuleError::new(self.end_span(), "the rule ends too early")
                        .expected(format!("'{word}'")));
                }
            }
        }
        let (id, span) = match self.next() {
            Some(Token {
                tok: Tok::Str(s),
                span,
            }) => (s, span),
            Some(t) => {
                return Err(RuleError::new(
                    t.span,
                    "expected the manager's object id in quotes",
                ));
            }
            None => {
                return Err(RuleError::new(self.end_span(), "the rule ends too early")
                    .expected("the manager's object id in quotes"));
            }
        };
        self.set_object(Object::User, start.start..span.end)?;
        let lower = id.to_lowercase();
        Ok(Node::Leaf(Box::new(Leaf {
            prop: &DIRECT_REPORTS,
            ext: None,
            op: Op::Eq,
            operand: Operand::Str { text: id, lower },
            span: start.start..span.end,
        })))
    }

    fn set_object(&mut self, object: Object, span: Range<usize>) -> Result<(), RuleError> {
        match &self.object {
            None => {
                self.object = Some((object, span));
                Ok(())
            }
            Some((o, _)) if *o == object => Ok(()),
            Some((o, first)) => Err(RuleError::new(
                span,
                format!(
                    "a rule cannot mix {} and {} properties (the first is at column {})",
                    o.prefix(),
                    object.prefix(),
                    self.col(first.start)
                ),
            )),
        }
    }

    /// A property, with its name when it is a directory extension property.
    fn property(&mut self, word: &str, span: Range<usize>) -> Result<Named, RuleError> {
        let allowed = vocab::objects(self.grammar);
        let Some((prefix, name)) = word.split_once('.') else {
            return Err(
                RuleError::new(span, format!("'{word}' is not a property")).expected(format!(
                    "a property such as {}.{}",
                    allowed[0].prefix(),
                    example(self.grammar)
                )),
            );
        };
        let object = [Object::User, Object::Device, Object::App]
            .into_iter()
            .find(|o| o.prefix().eq_ignore_ascii_case(prefix));
        let object = match object {
            Some(o) if allowed.contains(&o) => o,
            _ => {
                let list: Vec<_> = allowed.iter().map(|o| format!("{}.", o.prefix())).collect();
                return Err(RuleError::new(
                    span.start..span.start + prefix.len(),
                    format!("{} have no '{prefix}.' properties", self.grammar),
                )
                .expected(list.join(" or ")));
            }
        };
        let Some(prop) = vocab::lookup(self.grammar, object, name) else {
            let name_span = span.start + prefix.len() + 1..span.end;
            if vocab::looks_like_extension(name) {
                return self.extension(object, word, name, name_span, span);
            }
            let mut err = RuleError::new(
                name_span,
                format!("unknown property '{word}' in {}", self.grammar),
            );
            if let Some(s) = suggest(name, vocab::names(self.grammar, object)) {
                err = err.expected(format!(
                    "a known property; did you mean {}.{s}?",
                    object.prefix()
                ));
            }
            return Err(err);
        };
        self.set_object(object, span.clone())?;
        Ok(Named {
            prop,
            ext: None,
            span,
        })
    }

    /// `user.extension_<app id>_<name>`: a property the tenant defined.
    fn extension(
        &mut self,
        object: Object,
        word: &str,
        name: &str,
        name_span: Range<usize>,
        span: Range<usize>,
    ) -> Result<Named, RuleError> {
        let Some(prop) = vocab::extension(self.grammar, object) else {
            return Err(RuleError::new(
                name_span,
                format!(
                    "unknown property '{word}' in {}: directory extension properties exist only in {}",
                    self.grammar,
                    Grammar::EntraDynamicMembership
                ),
            ));
        };
        if !vocab::is_extension_name(name) {
            return Err(RuleError::new(
                name_span,
                format!("'{word}' is not a directory extension property name"),
            )
            .expected("extension_<the app id as 32 hex digits, no dashes>_<attribute name>"));
        }
        self.set_object(object, span.clone())?;
        Ok(Named {
            prop,
            ext: Some(name.into()),
            span,
        })
    }

    fn operator(&mut self, after: &str) -> Result<(Op, Range<usize>), RuleError> {
        match self.next() {
            Some(Token {
                tok: Tok::Dashed(w) | Tok::Word(w),
                span,
            }) => match Op::parse(&w) {
                Some(op) => Ok((op, span)),
                None => Err(RuleError::new(span, format!("'{w}' is not an operator"))
                    .expected(format!("an operator after {after}, such as -eq"))),
            },
            Some(t) => Err(
                RuleError::new(t.span, format!("unexpected {}", describe(&t.tok)))
                    .expected(format!("an operator after {after}, such as -eq")),
            ),
            None => Err(RuleError::new(self.end_span(), "the rule ends too early")
                .expected(format!("an operator after {after}"))),
        }
    }

    fn comparison(&mut self, named: Named) -> Result<Node, RuleError> {
        let Named { prop, ext, span } = named;
        let name = match &ext {
            Some(e) => format!("{}.{e}", prop.object.prefix()),
            None => prop.full_name(),
        };
        let (op, op_span) = self.operator(&name)?;
        if !prop.ops.contains(&op) {
            let list: Vec<_> = prop.ops.iter().map(|o| o.as_str()).collect();
            return Err(RuleError::new(
                op_span,
                format!("{op} is not allowed for {name} in {}", self.grammar),
            )
            .expected(list.join(", ")));
        }
        let operand = match op {
            Op::Any | Op::All => self.inner_operand(prop)?,
            _ => self.operand(prop, &name, op, prop.kind)?,
        };
        let end = self.toks[self.pos - 1].span.end;
        Ok(Node::Leaf(Box::new(Leaf {
            prop,
            ext,
            op,
            operand,
            span: span.start..end,
        })))
    }

    /// The value side of a scalar comparison, checked against the property's type.
    fn operand(
        &mut self,
        prop: &Prop,
        name: &str,
        op: Op,
        kind: Kind,
    ) -> Result<Operand, RuleError> {
        if matches!(op, Op::In | Op::NotIn) {
            let items = self.list(name)?;
            for (text, span) in &items {
                self.check_vocab(prop, text, span.clone());
            }
            return Ok(Operand::List(
                items
                    .into_iter()
                    .map(|(t, _)| {
                        let l = match_text(prop, &t);
                        (t, l)
                    })
                    .collect(),
            ));
        }
        let Some(t) = self.next() else {
            return Err(RuleError::new(self.end_span(), "the rule ends too early")
                .expected(format!("a value after {op}")));
        };
        let span = t.span.clone();
        let (text, quoted) = match t.tok {
            Tok::Str(s) => (s, true),
            Tok::Word(w) => (w, false),
            other => {
                return Err(
                    RuleError::new(span, format!("unexpected {}", describe(&other)))
                        .expected(format!("a value after {op}")),
                );
            }
        };
        let lower = text.to_lowercase();
        if !quoted && (lower == "null" || lower == "$null") {
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(RuleError::new(
                    span,
                    format!("null can only be compared with -eq or -ne, not {op}"),
                ));
            }
            return Ok(Operand::Null);
        }
        match kind {
            Kind::Bool => {
                if lower != "true" && lower != "false" {
                    return Err(RuleError::new(
                        span,
                        format!("{name} is true or false, not '{text}'"),
                    )
                    .expected("true or false"));
                }
                Ok(Operand::Str { text, lower })
            }
            Kind::Date => self.date_operand(&text, &lower, quoted, span),
            Kind::Version if matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le) => {
                match Version::parse(&text) {
                    Some(v) => Ok(Operand::Version(v)),
                    None => Err(RuleError::new(span, format!("'{text}' is not a version"))
                        .expected("a dotted version such as 10.0.22631.3447")),
                }
            }
            _ => {
                if !(quoted || (kind == Kind::Version && Version::parse(&text).is_some())) {
                    return Err(RuleError::new(span, format!("'{text}' must be quoted"))
                        .expected(format!("\"{text}\"")));
                }
                if matches!(op, Op::Match | Op::NotMatch) {
                    return regex::RegexBuilder::new(&text)
                        .case_insensitive(true)
                        .size_limit(1 << 20)
                        .build()
                        .map(Operand::Regex)
                        .map_err(|e| {
                            RuleError::new(
                                span,
                                format!(
                                    "invalid regular expression: {}",
                                    first_line(&e.to_string())
                                ),
                            )
                        });
                }
                if matches!(op, Op::Eq | Op::Ne) {
                    self.check_vocab(prop, &text, span);
                    let lower = match_text(prop, &text);
                    return Ok(Operand::Str { text, lower });
                }
                Ok(Operand::Str { text, lower })
            }
        }
    }

    fn date_operand(
        &mut self,
        text: &str,
        lower: &str,
        quoted: bool,
        span: Range<usize>,
    ) -> Result<Operand, RuleError> {
        if !quoted && lower == "system.now" {
            let offset = if self.peek_keyword("plus") || self.peek_keyword("minus") {
                let sign = self.next().expect("peeked");
                let negative = matches!(&sign.tok, Tok::Word(w) | Tok::Dashed(w) if w.eq_ignore_ascii_case("minus"));
                let Some(Token {
                    tok: Tok::Word(d) | Tok::Str(d),
                    span: dspan,
                }) = self.next()
                else {
                    return Err(RuleError::new(sign.span, "expected a duration after it")
                        .expected("an ISO 8601 duration such as p1d"));
                };
                let span: jiff::Span = d.to_ascii_uppercase().parse().map_err(|_| {
                    RuleError::new(dspan.clone(), format!("'{d}' is not a duration"))
                        .expected("an ISO 8601 duration such as p1d or P30D")
                })?;
                Some(if negative { span.negate() } else { span })
            } else {
                None
            };
            return Ok(Operand::Date(DateExpr::Now(offset)));
        }
        match parse_instant(text) {
            Some(ts) => Ok(Operand::Date(DateExpr::At(ts))),
            None => Err(RuleError::new(span, format!("'{text}' is not a date"))
                .expected("a quoted date such as \"2024-01-31T00:00:00Z\" or system.now")),
        }
    }

    fn list(&mut self, name: &str) -> Result<Vec<(String, Range<usize>)>, RuleError> {
        let open = match self.next() {
            Some(Token {
                tok: t @ (Tok::LBracket | Tok::LParen),
                span,
            }) => (t, span),
            Some(t) => {
                return Err(
                    RuleError::new(t.span, format!("unexpected {}", describe(&t.tok)))
                        .expected(format!("a list such as [\"a\", \"b\"] for {name}")),
                );
            }
            None => {
                return Err(RuleError::new(self.end_span(), "the rule ends too early")
                    .expected("a list such as [\"a\", \"b\"]"));
            }
        };
        let close = if open.0 == Tok::LBracket {
            Tok::RBracket
        } else {
            Tok::RParen
        };
        let mut items = Vec::new();
        loop {
            match self.next() {
                Some(Token {
                    tok: Tok::Str(s),
                    span,
                }) => items.push((s, span)),
                Some(Token {
                    tok: Tok::Word(w),
                    span,
                }) => {
                    return Err(RuleError::new(span, format!("'{w}' must be quoted"))
                        .expected(format!("\"{w}\"")));
                }
                Some(t) if t.tok == close && items.is_empty() => {
                    return Err(
                        RuleError::new(open.1.start..t.span.end, "the list is empty")
                            .expected("at least one value"),
                    );
                }
                Some(t) => {
                    return Err(
                        RuleError::new(t.span, format!("unexpected {}", describe(&t.tok)))
                            .expected("a quoted value"),
                    );
                }
                None => {
                    return Err(RuleError::new(open.1, "this list is never closed")
                        .expected(if close == Tok::RBracket { "']'" } else { "')'" }));
                }
            }
            match self.next() {
                Some(Token {
                    tok: Tok::Comma, ..
                }) => continue,
                Some(t) if t.tok == close => break,
                Some(t) => {
                    return Err(
                        RuleError::new(t.span, format!("unexpected {}", describe(&t.tok)))
                            .expected("',' or the end of the list"),
                    );
                }
                None => {
                    return Err(RuleError::new(open.1, "this list is never closed")
                        .expected(if close == Tok::RBracket { "']'" } else { "')'" }));
                }
            }
        }
        Ok(items)
    }

    /// A value outside a closed vocabulary is valid but never matches: warn.
    fn check_vocab(&mut self, prop: &Prop, text: &str, span: Range<usize>) {
        let Some(vocab) = prop.vocab else { return };
        if text.is_empty() || vocab.iter().any(|(p, _)| p.eq_ignore_ascii_case(text)) {
            return;
        }
        let known: Vec<_> = vocab.iter().map(|(p, _)| format!("\"{p}\"")).collect();
        self.warnings.push(RuleWarning {
            span,
            message: format!(
                "\"{text}\" is not a value of {} in {} ({}): it never matches",
                prop.full_name(),
                self.grammar,
                known.join(", ")
            ),
        });
    }

    /// `-any` / `-all` take a condition on `_` (or on record fields), with or
    /// without parentheses; `memberOf` takes `group.objectId -in [...]`.
    fn inner_operand(&mut self, prop: &'static Prop) -> Result<Operand, RuleError> {
        let paren = match self.peek() {
            Some(Token {
                tok: Tok::LParen,
                span,
            }) => Some(span.clone()),
            _ => None,
        };
        if paren.is_some() {
            self.pos += 1;
        }
        let inner = if prop.kind == Kind::MemberOf {
            self.member_of()?
        } else {
            Operand::Inner(Box::new(self.inner_or(prop)?))
        };
        if let Some(open) = paren {
            self.close_paren(&open)?;
        }
        Ok(inner)
    }

    fn member_of(&mut self) -> Result<Operand, RuleError> {
        let t = self.next();
        match t {
            Some(Token {
                tok: Tok::Word(w), ..
            }) if w.eq_ignore_ascii_case("group.objectId") => {}
            Some(t) => {
                return Err(
                    RuleError::new(t.span, "memberOf takes a condition on group.objectId")
                        .expected("group.objectId -in [\"<group id>\"]"),
                );
            }
            None => {
                return Err(RuleError::new(self.end_span(), "the rule ends too early")
                    .expected("group.objectId -in [...]"));
            }
        }
        let (op, span) = self.operator("group.objectId")?;
        let ids = match op {
            Op::In => self
                .list("group.objectId")?
                .into_iter()
                .map(|(s, _)| s)
                .collect(),
            Op::Eq => match self.next() {
                Some(Token {
                    tok: Tok::Str(s), ..
                }) => vec![s],
                _ => return Err(RuleError::new(span, "expected a quoted group id after -eq")),
            },
            _ => {
                return Err(RuleError::new(
                    span,
                    format!("{op} is not allowed for group.objectId"),
                )
                .expected("-in or -eq"));
            }
        };
        Ok(Operand::Groups(ids))
    }

    fn inner_or(&mut self, prop: &'static Prop) -> Result<Inner, RuleError> {
        let mut items = vec![self.inner_and(prop)?];
        while self.eat_keyword("or") {
            items.push(self.inner_and(prop)?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one")
        } else {
            Inner::Or(items)
        })
    }

    fn inner_and(&mut self, prop: &'static Prop) -> Result<Inner, RuleError> {
        let mut items = vec![self.inner_primary(prop)?];
        while self.eat_keyword("and") {
            items.push(self.inner_primary(prop)?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one")
        } else {
            Inner::And(items)
        })
    }

    fn inner_primary(&mut self, prop: &'static Prop) -> Result<Inner, RuleError> {
        if self.eat_keyword("not") {
            return Ok(Inner::Not(Box::new(self.inner_primary(prop)?)));
        }
        let Some(t) = self.next() else {
            return Err(RuleError::new(self.end_span(), "the rule ends too early")
                .expected("a condition on _"));
        };
        let field = match &t.tok {
            Tok::LParen => {
                let inner = self.inner_or(prop)?;
                self.close_paren(&t.span)?;
                return Ok(inner);
            }
            Tok::Word(w) => self.field(prop, w, t.span.clone())?,
            other => {
                return Err(RuleError::new(
                    t.span.clone(),
                    format!("unexpected {}", describe(other)),
                )
                .expected("a condition on _"));
            }
        };
        let (op, op_span) = self.operator("the element")?;
        const ELEMENT_OPS: &[Op] = &[
            Op::Eq,
            Op::Ne,
            Op::StartsWith,
            Op::NotStartsWith,
            Op::EndsWith,
            Op::NotEndsWith,
            Op::Contains,
            Op::NotContains,
            Op::Match,
            Op::NotMatch,
            Op::In,
            Op::NotIn,
        ];
        if !ELEMENT_OPS.contains(&op) {
            return Err(
                RuleError::new(op_span, format!("{op} is not allowed inside -any/-all"))
                    .expected("a string operator such as -eq or -startsWith"),
            );
        }
        let operand = self.operand(&ELEMENT, "_", op, Kind::Str)?;
        Ok(Inner::Cmp { field, op, operand })
    }

    fn field(&self, prop: &Prop, word: &str, span: Range<usize>) -> Result<Field, RuleError> {
        match (prop.kind, prop.record) {
            (Kind::Records, Some(record)) => {
                let field = word
                    .split_once('.')
                    .filter(|(r, _)| r.eq_ignore_ascii_case(record))
                    .map(|(_, f)| f);
                let idx = field.and_then(|f| {
                    ASSIGNED_PLAN_FIELDS
                        .iter()
                        .position(|n| n.eq_ignore_ascii_case(f))
                });
                idx.map(Field::Record).ok_or_else(|| {
                    let names: Vec<_> = ASSIGNED_PLAN_FIELDS
                        .iter()
                        .map(|f| format!("{record}.{f}"))
                        .collect();
                    RuleError::new(
                        span,
                        format!("'{word}' is not a field of {}", prop.full_name()),
                    )
                    .expected(names.join(", "))
                })
            }
            _ if word == "_" => Ok(Field::Element),
            _ => Err(RuleError::new(
                span,
                format!(
                    "inside -any/-all on {} the element is written _",
                    prop.full_name()
                ),
            )
            .expected("_")),
        }
    }
}

/// Stand-in property for elements inside `-any`/`-all`.
static ELEMENT: Prop = Prop {
    name: "_",
    object: Object::Device,
    kind: Kind::Str,
    source: vocab::Source::Unbound,
    ops: &[],
    vocab: None,
    record: None,
};

/// The case-folded text a value is matched with. A vocabulary word that
/// stands for "not known" (`Unknown`) matches null, which is how the
/// organization model holds an unknown ownership or join type.
fn match_text(prop: &Prop, text: &str) -> String {
    let unknown = prop.vocab.is_some_and(|v| {
        v.iter()
            .any(|(w, c)| c.is_empty() && w.eq_ignore_ascii_case(text))
    });
    if unknown {
        String::new()
    } else {
        text.to_lowercase()
    }
}

fn example(g: Grammar) -> &'static str {
    match g {
        Grammar::EntraDynamicMembership => "department",
        Grammar::IntuneAssignmentFilter => "model",
        Grammar::CaDeviceFilter => "trustType",
    }
}

fn first_line(s: &str) -> &str {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
}

/// Reads an instant: RFC 3339, or a bare date taken as midnight UTC.
pub(crate) fn parse_instant(s: &str) -> Option<jiff::Timestamp> {
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Some(ts);
    }
    if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp());
    }
    s.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
}

/// The known name closest to `name`, if it is close enough to be a typo.
fn suggest(name: &str, known: impl Iterator<Item = &'static str>) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    known
        .map(|k| (distance(&n, &k.to_ascii_lowercase()), k))
        .filter(|(d, _)| *d <= 3.max(n.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
