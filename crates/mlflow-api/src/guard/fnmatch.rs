//! The allow-list entries of `--allowed-hosts` and `--cors-allowed-origins`: exact strings, or
//! Python `fnmatch` patterns when they contain `*`.

/// `fnmatch`-or-equal, as `is_allowed_host_header` and `should_block_cors_request` compare.
#[derive(Debug, Clone)]
pub(super) enum Entry {
    Exact(String),
    Pattern(Pattern),
}

impl Entry {
    pub(super) fn new(s: &str) -> Entry {
        if s.contains('*') {
            Entry::Pattern(Pattern::compile(s))
        } else {
            Entry::Exact(s.to_string())
        }
    }
    pub(super) fn matches(&self, s: &str) -> bool {
        match self {
            Entry::Exact(e) => e == s,
            Entry::Pattern(p) => p.matches(s),
        }
    }
}

/// Python's `fnmatch` (POSIX, so case-sensitive): `*`, `?`, `[seq]`, `[!seq]`; a `[` without
/// its `]` is literal.
#[derive(Debug, Clone)]
pub(super) struct Pattern(Vec<Tok>);

#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    Any,
    Star,
    Class { negated: bool, items: Vec<(char, char)> },
}

impl Pattern {
    fn compile(p: &str) -> Pattern {
        let chars: Vec<char> = p.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    if !matches!(toks.last(), Some(Tok::Star)) {
                        toks.push(Tok::Star);
                    }
                    i += 1;
                }
                '?' => {
                    toks.push(Tok::Any);
                    i += 1;
                }
                '[' => {
                    // fnmatch.translate: `!` negates, a `]` first in the set is literal.
                    let mut j = i + 1;
                    if j < chars.len() && chars[j] == '!' {
                        j += 1;
                    }
                    if j < chars.len() && chars[j] == ']' {
                        j += 1;
                    }
                    while j < chars.len() && chars[j] != ']' {
                        j += 1;
                    }
                    if j >= chars.len() {
                        toks.push(Tok::Lit('['));
                        i += 1;
                        continue;
                    }
                    let mut body = &chars[i + 1..j];
                    let negated = body.first() == Some(&'!');
                    if negated {
                        body = &body[1..];
                    }
                    let mut items = Vec::new();
                    let mut k = 0;
                    while k < body.len() {
                        if k + 2 < body.len() && body[k + 1] == '-' {
                            items.push((body[k], body[k + 2]));
                            k += 3;
                        } else {
                            items.push((body[k], body[k]));
                            k += 1;
                        }
                    }
                    toks.push(Tok::Class { negated, items });
                    i = j + 1;
                }
                c => {
                    toks.push(Tok::Lit(c));
                    i += 1;
                }
            }
        }
        Pattern(toks)
    }

    /// Greedy match with one backtrack point per star (linear in practice, never exponential).
    fn matches(&self, s: &str) -> bool {
        let s: Vec<char> = s.chars().collect();
        let toks = &self.0;
        let (mut ti, mut si) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            let step = match toks.get(ti) {
                Some(Tok::Star) => {
                    star = Some((ti, si));
                    ti += 1;
                    continue;
                }
                Some(Tok::Lit(c)) => *c == s[si],
                Some(Tok::Any) => true,
                Some(Tok::Class { negated, items }) => {
                    items.iter().any(|&(lo, hi)| lo <= s[si] && s[si] <= hi) != *negated
                }
                None => false,
            };
            if step {
                ti += 1;
                si += 1;
            } else if let Some((st, ss)) = star {
                ti = st + 1;
                si = ss + 1;
                star = Some((st, ss + 1));
            } else {
                return false;
            }
        }
        toks[ti..].iter().all(|t| matches!(t, Tok::Star))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_follows_python() {
        for (pat, s, want) in [
            ("app-*.internal", "app-x.internal", true),
            ("app-*.internal", "app-.internal", true),
            ("app-*.internal", "app-x.internal:80", false),
            ("10.*", "10.0.0.1:5000", true),
            ("10.*", "110.0.0.1", false),
            ("[[]::1]:*", "[::1]:5000", true),
            ("[[]::1]:*", "[::1]", false),
            ("h?st*", "host:1", true),
            ("[!a]*", "b", true),
            ("[!a]*", "a", false),
            ("[a-c]x*", "bx", true),
            ("[a-c]x*", "dx", false),
            ("a[b*", "a[bzz", true),
            ("*.Corp*", "x.corp", false),
            ("**a**b*", "xxaxxbxx", true),
            ("*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ] {
            assert_eq!(Pattern::compile(pat).matches(s), want, "{pat} vs {s}");
        }
    }
}
