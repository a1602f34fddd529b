//! A string as Python's `json.dumps(s)` writes it with its defaults (`ensure_ascii=True`):
//! `"` and `\` escaped, `\n \r \t \b \f` by name, every other character outside printable
//! ASCII (`' '..='~'`) as `\uXXXX` UTF-16 units. DVC hashes a directory's listing in this
//! spelling and MLflow quotes values in its error messages with it, so both need the exact
//! bytes; serde_json writes non-ASCII as is and has no such option.

use std::fmt::Write;

/// Appends `s`, quoted and escaped as `json.dumps` does, to `out`.
pub fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// `json.dumps(s)`.
pub fn dumps_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_str(s, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn as_python_writes_them() {
        // Each expected string was printed by CPython 3.11's json.dumps.
        assert_eq!(dumps_str("a\"b\\c\td/é😀\u{7f}"), r#""a\"b\\c\td/\u00e9\ud83d\ude00\u007f""#);
        assert_eq!(dumps_str("\u{8}\u{c}\u{0}\u{1f}\n\r"), r#""\b\f\u0000\u001f\n\r""#);
        assert_eq!(dumps_str("plain ~"), r#""plain ~""#);
        assert_eq!(dumps_str(""), r#""""#);
    }

    proptest! {
        /// Whatever the input: pure ASCII out, and a JSON string that reads back as the input.
        #[test]
        fn ascii_and_round_trips(s in any::<String>()) {
            let out = dumps_str(&s);
            prop_assert!(out.is_ascii());
            prop_assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
        }
    }
}
