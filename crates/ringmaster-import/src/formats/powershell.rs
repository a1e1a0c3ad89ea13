//! The PowerShell tokens that DSC configurations are written in: barewords,
//! strings (with backtick escapes, `''` and `""` doubling, here-strings),
//! numbers, variables, `@(`, `@{` and punctuation, with comments dropped.
//! Enough for `Configuration` blocks; not a PowerShell parser.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A bareword: a command, keyword, resource or type name, an unquoted value.
    Word(String),
    /// A string's value; `vars` when a double-quoted one expands a variable,
    /// so its value is only known when the script runs.
    Str {
        text: String,
        vars: bool,
    },
    Num(serde_json::Number),
    /// `$name`, `$a.b.c`, `${…}` or `$(…)`: the text as written.
    Var(String),
    /// One of `{ } ( ) [ ] ; , =`.
    Punct(char),
    /// `@(`
    AtParen,
    /// `@{`
    AtBrace,
    Newline,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
    pub col: usize,
}

/// Where and why the text cannot be read.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

/// Characters that end a bareword.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || "{}()[];,=\"'".contains(c)
}

struct Lexer {
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
    out: Vec<Token>,
}

/// The tokens of `text`, whose first line is line `first_line` of the file.
pub fn tokens(text: &str, first_line: usize) -> Result<Vec<Token>, SyntaxError> {
    let mut lx = Lexer {
        chars: text.chars().collect(),
        i: 0,
        line: first_line,
        col: 1,
        out: Vec::new(),
    };
    lx.run()?;
    Ok(lx.out)
}

impl Lexer {
    fn peek(&self, n: usize) -> Option<char> {
        self.chars.get(self.i + n).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn err<T>(
        &self,
        line: usize,
        col: usize,
        message: impl Into<String>,
    ) -> Result<T, SyntaxError> {
        Err(SyntaxError {
            line,
            col,
            message: message.into(),
        })
    }

    fn run(&mut self) -> Result<(), SyntaxError> {
        while let Some(c) = self.peek(0) {
            let (line, col) = (self.line, self.col);
            let tok = match c {
                '\n' => {
                    self.bump();
                    Tok::Newline
                }
                '`' if matches!(self.peek(1), Some('\n' | '\r')) => {
                    // Line continuation.
                    self.bump();
                    if self.peek(0) == Some('\r') {
                        self.bump();
                    }
                    self.bump();
                    continue;
                }
                c if c.is_whitespace() => {
                    self.bump();
                    continue;
                }
                '#' => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                    continue;
                }
                '<' if self.peek(1) == Some('#') => {
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            Some('#') if self.peek(0) == Some('>') => {
                                self.bump();
                                break;
                            }
                            Some(_) => {}
                            None => return self.err(line, col, "`<#` comment has no closing `#>`"),
                        }
                    }
                    continue;
                }
                '\'' | '‘' | '’' => {
                    self.bump();
                    self.single(line, col)?
                }
                '"' | '“' | '”' => {
                    self.bump();
                    self.double(line, col, false)?
                }
                '@' if matches!(self.peek(1), Some('"' | '\'')) && self.here_start() => {
                    self.here(line, col)?
                }
                '@' if self.peek(1) == Some('(') => {
                    self.bump();
                    self.bump();
                    Tok::AtParen
                }
                '@' if self.peek(1) == Some('{') => {
                    self.bump();
                    self.bump();
                    Tok::AtBrace
                }
                '$' => self.variable(line, col)?,
                '{' | '}' | '(' | ')' | '[' | ']' | ';' | ',' | '=' => {
                    self.bump();
                    Tok::Punct(c)
                }
                _ => {
                    let mut w = String::new();
                    while let Some(c) = self.peek(0).filter(|&c| !ends_word(c)) {
                        w.push(c);
                        self.bump();
                    }
                    number(&w).map_or(Tok::Word(w), Tok::Num)
                }
            };
            self.out.push(Token { tok, line, col });
        }
        Ok(())
    }

    /// After the opening quote: `''` is a quote, nothing else is special.
    fn single(&mut self, line: usize, col: usize) -> Result<Tok, SyntaxError> {
        let mut text = String::new();
        loop {
            match self.bump() {
                Some('\'' | '‘' | '’') if matches!(self.peek(0), Some('\'' | '‘' | '’')) => {
                    self.bump();
                    text.push('\'');
                }
                Some('\'' | '‘' | '’') => return Ok(Tok::Str { text, vars: false }),
                Some(c) => text.push(c),
                None => return self.err(line, col, "string has no closing `'`"),
            }
        }
    }

    /// After the opening quote (or a here-string's first line): backtick
    /// escapes, `""` as a quote, `$name` and `$(…)` expand.
    fn double(&mut self, line: usize, col: usize, here: bool) -> Result<Tok, SyntaxError> {
        let mut text = String::new();
        let mut vars = false;
        loop {
            let Some(c) = self.bump() else {
                let what = if here {
                    "here-string has no closing `\"@`"
                } else {
                    "string has no closing `\"`"
                };
                return self.err(line, col, what);
            };
            match c {
                '`' => match self.bump() {
                    Some(e) => text.push(match e {
                        '0' => '\0',
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        'e' => '\u{1b}',
                        'f' => '\u{c}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'v' => '\u{b}',
                        other => other,
                    }),
                    None => return self.err(line, col, "string ends in a backtick"),
                },
                '"' | '“' | '”' if here => {
                    if text.ends_with('\n') && self.peek(0) == Some('@') {
                        self.bump();
                        text.pop();
                        if text.ends_with('\r') {
                            text.pop();
                        }
                        return Ok(Tok::Str { text, vars });
                    }
                    text.push(c);
                }
                '"' | '“' | '”' if matches!(self.peek(0), Some('"' | '“' | '”')) => {
                    self.bump();
                    text.push('"');
                }
                '"' | '“' | '”' => return Ok(Tok::Str { text, vars }),
                '$' if self
                    .peek(0)
                    .is_some_and(|n| n.is_alphanumeric() || "_{(?^$:".contains(n)) =>
                {
                    vars = true;
                    text.push(c);
                }
                c => text.push(c),
            }
        }
    }

    /// `@"` or `@'` with nothing but blanks to the end of the line.
    fn here_start(&self) -> bool {
        self.chars[self.i + 2..]
            .iter()
            .take_while(|&&c| c != '\n')
            .all(|c| c.is_whitespace())
    }

    fn here(&mut self, line: usize, col: usize) -> Result<Tok, SyntaxError> {
        self.bump();
        let quote = self.bump();
        while self.bump().is_some_and(|c| c != '\n') {}
        if quote == Some('"') {
            return self.double(line, col, true);
        }
        let mut text = String::new();
        loop {
            match self.bump() {
                Some('\'') if text.ends_with('\n') && self.peek(0) == Some('@') => {
                    self.bump();
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                    return Ok(Tok::Str { text, vars: false });
                }
                Some(c) => text.push(c),
                None => return self.err(line, col, "here-string has no closing `'@`"),
            }
        }
    }

    fn variable(&mut self, line: usize, col: usize) -> Result<Tok, SyntaxError> {
        let mut text = String::from('$');
        self.bump();
        let (open, close) = match self.peek(0) {
            Some('{') => ('{', '}'),
            Some('(') => ('(', ')'),
            _ => {
                while let Some(c) = self
                    .peek(0)
                    .filter(|&c| c.is_alphanumeric() || "_:.?^$".contains(c))
                {
                    text.push(c);
                    self.bump();
                }
                return Ok(Tok::Var(text.trim_end_matches('.').to_string()));
            }
        };
        let mut depth = 0;
        loop {
            match self.bump() {
                Some(c) if c == open => {
                    depth += 1;
                    text.push(c);
                }
                Some(c) if c == close => {
                    depth -= 1;
                    text.push(c);
                    if depth == 0 {
                        return Ok(Tok::Var(text));
                    }
                }
                Some(c) => text.push(c),
                None => return self.err(line, col, format!("`${open}` has no closing `{close}`")),
            }
        }
    }
}

/// A PowerShell number literal as JSON: `8`, `-1`, `10.19`, `0x1F`.
fn number(w: &str) -> Option<serde_json::Number> {
    let (neg, digits) = match w.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, w),
    };
    if !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        let n = i64::from_str_radix(hex, 16).ok()?;
        return Some((if neg { -n } else { n }).into());
    }
    if let Ok(n) = w.parse::<i64>() {
        return Some(n.into());
    }
    if digits.bytes().all(|b| {
        b.is_ascii_digit() || b == b'.' || b == b'e' || b == b'E' || b == b'+' || b == b'-'
    }) {
        return w.parse::<f64>().ok().and_then(serde_json::Number::from_f64);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        tokens(text, 1)
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    fn s(text: &str) -> Tok {
        Tok::Str {
            text: text.into(),
            vars: false,
        }
    }

    #[test]
    fn strings_numbers_and_comments() {
        let w = |s: &str| Tok::Word(s.into());
        let check = |input: &str, expect: Vec<Tok>| assert_eq!(toks(input), expect, "{input}");
        check(
            "Rule = \"(device.manufacturer -ne `\"Microsoft`\")\" # Updated",
            vec![
                w("Rule"),
                Tok::Punct('='),
                s("(device.manufacturer -ne \"Microsoft\")"),
            ],
        );
        check("'it''s'", vec![s("it's")]);
        check("\"say \"\"hi\"\"\"", vec![s("say \"hi\"")]);
        check("\"a`tb\"", vec![s("a\tb")]);
        check(
            "\"admin@$TenantId\"",
            vec![Tok::Str {
                text: "admin@$TenantId".into(),
                vars: true,
            }],
        );
        check("\"cost: $ 5\"", vec![s("cost: $ 5")]);
        check("\"`$notavar\"", vec![s("$notavar")]);
        check(
            "8; -1, 10.19 0x10",
            vec![
                Tok::Num(8.into()),
                Tok::Punct(';'),
                Tok::Num((-1).into()),
                Tok::Punct(','),
                Tok::Num(serde_json::Number::from_f64(10.19).unwrap()),
                Tok::Num(16.into()),
            ],
        );
        check(
            "IntuneX 97ed22e9-1429-40dc-ab3c-0055e538383b",
            vec![w("IntuneX"), w("97ed22e9-1429-40dc-ab3c-0055e538383b")],
        );
        check(
            "<# a\n block #>\n@( $true, $ConfigurationData.NonNodeData.X )",
            vec![
                Tok::Newline,
                Tok::AtParen,
                Tok::Var("$true".into()),
                Tok::Punct(','),
                Tok::Var("$ConfigurationData.NonNodeData.X".into()),
                Tok::Punct(')'),
            ],
        );
        check(
            "A = `\n 1",
            vec![w("A"), Tok::Punct('='), Tok::Num(1.into())],
        );
        check(
            "$x = @\"\n{ \"a\": \"$b\" }\n\"@\n$y = @'\n'quoted'\r\n'@",
            vec![
                Tok::Var("$x".into()),
                Tok::Punct('='),
                Tok::Str {
                    text: "{ \"a\": \"$b\" }".into(),
                    vars: true,
                },
                Tok::Newline,
                Tok::Var("$y".into()),
                Tok::Punct('='),
                s("'quoted'"),
            ],
        );
        check("$($a.b)", vec![Tok::Var("$($a.b)".into())]);
    }

    #[test]
    fn unterminated_text_is_an_error_at_its_start() {
        let check = |input: &str, line: usize, col: usize, msg: &str| {
            let e = tokens(input, 1).unwrap_err();
            assert_eq!(
                (e.line, e.col, e.message.as_str()),
                (line, col, msg),
                "{input}"
            );
        };
        check("A = 'x\n", 1, 5, "string has no closing `'`");
        check("\n  B = \"x", 2, 7, "string has no closing `\"`");
        check("<# x", 1, 1, "`<#` comment has no closing `#>`");
        check("$x = @\"\nabc\n", 1, 6, "here-string has no closing `\"@`");
    }
}
