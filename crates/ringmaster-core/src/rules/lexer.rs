//! Tokens of the three rule grammars. Operators may be written with or
//! without their leading dash, and the dash may be an en or em dash as in the
//! Microsoft docs.

use super::RuleError;
use std::ops::Range;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// A quoted string, unescaped.
    Str(String),
    /// `-eq`, `–and`: the name without its dash.
    Dashed(String),
    /// A bare word: property, keyword, unquoted literal.
    Word(String),
}

#[derive(Debug, Clone)]
pub struct Token {
    pub tok: Tok,
    pub span: Range<usize>,
}

fn is_dash(c: char) -> bool {
    matches!(c, '-' | '\u{2013}' | '\u{2014}' | '\u{2212}')
}

fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | ',' | '"' | '\'')
}

pub fn lex(src: &str) -> Result<Vec<Token>, RuleError> {
    let mut out = Vec::new();
    let mut it = src.char_indices().peekable();
    while let Some(&(start, c)) = it.peek() {
        if c.is_whitespace() {
            it.next();
            continue;
        }
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            ',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(tok) = single {
            it.next();
            out.push(Token {
                tok,
                span: start..start + c.len_utf8(),
            });
            continue;
        }
        if c == '"' || c == '\'' || c == '\u{201c}' || c == '\u{201d}' {
            it.next();
            let close = |d: char| {
                if c == '\'' {
                    d == '\''
                } else {
                    d == '"' || d == '\u{201c}' || d == '\u{201d}'
                }
            };
            let mut value = String::new();
            let mut end = None;
            while let Some((i, d)) = it.next() {
                // Both `\"` and the backtick form appear in the wild.
                if (d == '\\' || d == '`')
                    && let Some(&(_, n)) = it.peek()
                    && close(n)
                {
                    value.push(n);
                    it.next();
                    continue;
                }
                if close(d) {
                    end = Some(i + d.len_utf8());
                    break;
                }
                value.push(d);
            }
            let Some(end) = end else {
                return Err(RuleError::new(start..src.len(), "unterminated string")
                    .expected("a closing quote"));
            };
            out.push(Token {
                tok: Tok::Str(value),
                span: start..end,
            });
            continue;
        }
        if is_dash(c) {
            it.next();
            let mut end = start + c.len_utf8();
            let mut name = String::new();
            while let Some(&(i, d)) = it.peek() {
                if d.is_ascii_alphabetic() {
                    name.push(d);
                    end = i + d.len_utf8();
                    it.next();
                } else {
                    break;
                }
            }
            if name.is_empty() {
                return Err(RuleError::new(start..end, "a dash must start an operator")
                    .expected("an operator such as -eq or -and"));
            }
            out.push(Token {
                tok: Tok::Dashed(name),
                span: start..end,
            });
            continue;
        }
        let mut end = start;
        let mut word = String::new();
        while let Some(&(i, d)) = it.peek() {
            if ends_word(d) {
                break;
            }
            word.push(d);
            end = i + d.len_utf8();
            it.next();
        }
        out.push(Token {
            tok: Tok::Word(word),
            span: start..end,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn dashes_quotes_and_words() {
        assert_eq!(
            toks("user.department –eq \"Marketing\""),
            vec![
                Tok::Word("user.department".into()),
                Tok::Dashed("eq".into()),
                Tok::Str("Marketing".into())
            ]
        );
        assert_eq!(toks("['a', \"b\"]").len(), 5);
        assert_eq!(toks(r#""Scott\"s""#), vec![Tok::Str("Scott\"s".into())]);
        assert_eq!(
            toks("10.0.22000.1000"),
            vec![Tok::Word("10.0.22000.1000".into())]
        );
    }

    #[test]
    fn errors_have_positions() {
        let e = lex("user.city -eq \"Oslo").unwrap_err();
        assert_eq!(e.span.start, 14);
        let e = lex("a - b").unwrap_err();
        assert_eq!(e.span, 2..3);
    }
}
