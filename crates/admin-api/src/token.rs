//! Bearer tokens of the admin planes. A token file (or `FACTORY_ADMIN_TOKEN`) holds one token
//! per line, either bare (the identity is `admin`) or as `name:token` (the identity is
//! `name`, recorded in the gateway's audit log). Blank lines and `#` comments are skipped.
//! Checking compares against every token in constant time, so the answer's timing says
//! nothing about how much of a guess was right.

use subtle::ConstantTimeEq;

/// Shortest token accepted: 16 characters (`openssl rand -hex 32` gives 64).
pub const MIN_TOKEN_LEN: usize = 16;

/// Who a valid token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity(pub String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the admin token file holds no token")]
    Empty,
    #[error("admin token on line {line} is shorter than {MIN_TOKEN_LEN} characters")]
    TooShort { line: usize },
    #[error("admin token on line {line} has an empty name before ':'")]
    EmptyName { line: usize },
}

/// The tokens an admin listener accepts.
#[derive(Clone)]
pub struct Tokens {
    entries: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.entries.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Tokens").field("identities", &names).finish()
    }
}

impl Tokens {
    /// Parses a token file's text (see the module docs).
    pub fn parse(text: &str) -> Result<Tokens, TokenError> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, token) = match line.split_once(':') {
                Some((n, t)) => (n.trim(), t.trim()),
                None => ("admin", line),
            };
            if name.is_empty() {
                return Err(TokenError::EmptyName { line: i + 1 });
            }
            if token.len() < MIN_TOKEN_LEN {
                return Err(TokenError::TooShort { line: i + 1 });
            }
            entries.push((name.to_string(), token.as_bytes().to_vec()));
        }
        if entries.is_empty() {
            return Err(TokenError::Empty);
        }
        Ok(Tokens { entries })
    }

    /// The identity of the token in an `Authorization: Bearer <token>` header value, if any
    /// token matches. Every token is compared, in constant time each.
    pub fn check(&self, authorization: Option<&[u8]>) -> Option<Identity> {
        let presented = authorization.and_then(bearer)?;
        let mut found: Option<&str> = None;
        for (name, token) in &self.entries {
            if bool::from(token.as_slice().ct_eq(presented)) && found.is_none() {
                found = Some(name);
            }
        }
        found.map(|n| Identity(n.to_string()))
    }

    /// The token a client sends: the first one in the file.
    pub fn first(&self) -> &str {
        std::str::from_utf8(&self.entries[0].1).expect("parsed from text")
    }
}

/// The token of an `Authorization: Bearer <token>` value.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let value = value.strip_prefix(b"Bearer ").or_else(|| value.strip_prefix(b"bearer "))?;
    let value = value.trim_ascii();
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, header: Option<&str>, expect: Option<&str>) {
        let t = Tokens::parse(text).unwrap();
        assert_eq!(t.check(header.map(str::as_bytes)).map(|i| i.0), expect.map(str::to_string), "{header:?}");
    }

    #[test]
    fn bare_and_named_tokens() {
        let file = "# admins\nabcdefghijklmnop0123\n\nci-bot: qrstuvwxyz0123456789\n";
        check(file, Some("Bearer abcdefghijklmnop0123"), Some("admin"));
        check(file, Some("Bearer qrstuvwxyz0123456789"), Some("ci-bot"));
        check(file, Some("Bearer qrstuvwxyz012345678"), None);
        check(file, Some("Basic qrstuvwxyz0123456789"), None);
        check(file, Some("Bearer "), None);
        check(file, None, None);
        assert_eq!(Tokens::parse(file).unwrap().first(), "abcdefghijklmnop0123");
    }

    #[test]
    fn bad_files_are_refused() {
        assert_eq!(Tokens::parse("\n# nothing\n").unwrap_err(), TokenError::Empty);
        assert_eq!(Tokens::parse("short").unwrap_err(), TokenError::TooShort { line: 1 });
        assert_eq!(Tokens::parse(":abcdefghijklmnop0123").unwrap_err(), TokenError::EmptyName { line: 1 });
    }
}
