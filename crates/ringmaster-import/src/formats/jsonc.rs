//! JSON with comments (`//`, `/* */`) and trailing commas, as editors and
//! hand-kept exports write it. Comments and trailing commas are blanked
//! to spaces, newlines kept, so every error points at the line and column
//! of the original text.

use serde_json::Value;

/// Parses strict JSON; text that fails only for comments or trailing
/// commas parses once they are blanked. Errors are from the text as
/// written (its own line and column).
pub fn parse(text: &str) -> Result<Value, serde_json::Error> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(strict) => match blank(text) {
            Some(relaxed) => serde_json::from_str(&relaxed),
            None => Err(strict),
        },
    }
}

/// The text with comments and trailing commas turned to spaces, or `None`
/// when it has neither. Byte offsets, lines and columns are unchanged.
fn blank(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut changed = false;
    let mut i = 0;
    // Where the last comma outside a string was, while only blanks follow
    // it, when it follows a value (`[1, ,]` keeps its error).
    let mut comma: Option<usize> = None;
    let mut after_value = false;
    while i < b.len() {
        match b[i] {
            b'"' => {
                comma = None;
                after_value = true;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |n| i + n);
                spaces(&mut out[i..end]);
                changed = true;
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // An unclosed comment runs to the end, where the parser
                // then reports the missing value.
                let end = b[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(b.len(), |n| i + 2 + n + 2);
                spaces(&mut out[i..end]);
                changed = true;
                i = end;
            }
            b',' => {
                comma = after_value.then_some(i);
                after_value = false;
                i += 1;
            }
            b'}' | b']' => {
                if let Some(c) = comma.take() {
                    out[c] = b' ';
                    changed = true;
                }
                after_value = true;
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            c => {
                comma = None;
                after_value = c.is_ascii_alphanumeric() || c == b'.';
                i += 1;
            }
        }
    }
    // Whole comments and single commas were blanked, so it is still UTF-8.
    changed.then(|| String::from_utf8(out).expect("blanking keeps UTF-8"))
}

/// Blanks a comment byte for byte (serde_json counts columns in bytes),
/// keeping line breaks.
fn spaces(s: &mut [u8]) {
    for c in s.iter_mut().filter(|c| !matches!(**c, b'\n' | b'\r')) {
        *c = b' ';
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn comments_and_trailing_commas() {
        let check =
            |input: &str, expect: Value| assert_eq!(parse(input).unwrap(), expect, "{input}");
        check(r#"{"a": 1}"#, json!({"a": 1}));
        check("{\"a\": 1, // one\n\"b\": 2}", json!({"a": 1, "b": 2}));
        check("/* head */ {\"a\": /* inline */ 1}", json!({"a": 1}));
        check("{\"a\": [1, 2,],}", json!({"a": [1, 2]}));
        check("{\"a\": 1, /* gone */ }", json!({"a": 1}));
        check(
            r#"{"url": "https://x/y", "s": "a /* b */ c"}"#,
            json!({"url": "https://x/y", "s": "a /* b */ c"}),
        );
        check(r#"{"q": "say \"//hi\"", }"#, json!({"q": "say \"//hi\""}));
        check("{\"é\": 1 // café ☕\n}", json!({"é": 1}));
    }

    #[test]
    fn errors_point_into_the_original_text() {
        // The comment on line 2 is blanked; the missing value is on line 3.
        let text = "{\n  // about a\n  \"a\": ,\n}";
        let e = parse(text).unwrap_err();
        assert_eq!((e.line(), e.column()), (3, 8), "{e}");
        // A comment with multi-byte text before the error on the same line:
        // the `2` is byte 26 of the line, as serde_json counts columns.
        let text = "{\"a\": 1, /* ünï */ \"b\" 2}";
        let e = parse(text).unwrap_err();
        assert_eq!((e.line(), e.column()), (1, 26), "{e}");
        // A comma after `:` is no trailing comma: the error stays on it.
        let e = parse("{\"a\": , // x\n}").unwrap_err();
        assert_eq!((e.line(), e.column()), (1, 7), "{e}");
        // Strict errors stay as they were when there is nothing to blank.
        let e = parse("{\"a\" 1}").unwrap_err();
        assert_eq!((e.line(), e.column()), (1, 6));
    }
}
