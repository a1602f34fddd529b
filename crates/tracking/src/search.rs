//! Parser for MLflow's search filter DSL and `order_by` clauses.
//!
//! MLflow's `search_runs`, `search_experiments`, `search_registered_models` and
//! `search_model_versions` accept a filter string such as
//! `metrics.rmse < 0.5 AND params.model = 'cnn' AND tags."team" IN ('a', 'b')` and
//! `order_by` clauses such as `metrics.rmse DESC`. This module turns those strings into
//! plain values ([`Filter`], [`OrderBy`]) with a small tokenizer followed by a
//! recursive-descent parser. It never panics and never builds SQL: string values are
//! returned verbatim for the store to bind as parameters.
//!
//! Which operators are allowed for which entity or key is not checked here; the caller
//! validates that against the search being run.

use std::fmt;
use std::iter::Peekable;
use std::str::CharIndices;

/// The kind of thing a search key refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Metric,
    Param,
    Tag,
    Attribute,
    Dataset,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A quoted string literal, unescaped.
    Str(String),
    /// An unquoted number.
    Num(f64),
    /// The parenthesised list after `IN` / `NOT IN` (never empty).
    List(Vec<String>),
    /// No value: used by `IS NULL` and `IS NOT NULL`.
    Null,
}

/// One `identifier comparator value` condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub entity: Entity,
    pub key: String,
    pub op: Op,
    pub value: Value,
}

/// A parsed filter; the clauses are AND-ed. An empty filter matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    pub clauses: Vec<Comparison>,
}

/// One parsed `order_by` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub entity: Entity,
    pub key: String,
    pub ascending: bool,
}

/// Why a filter or `order_by` clause was rejected. The message quotes the input.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SearchError {
    #[error("{0}")]
    Invalid(String),
}

/// Parses a filter string. An empty or whitespace-only string gives an empty [`Filter`].
pub fn parse_filter(s: &str) -> Result<Filter, SearchError> {
    if s.trim().is_empty() {
        return Ok(Filter::default());
    }
    let mut parser = Parser::new(s, "filter")?;
    parser.reject_or()?;
    let mut clauses = vec![parser.comparison()?];
    while let Some(tok) = parser.advance() {
        if !tok.is_keyword("AND") {
            let rest = &s[tok.start..];
            return Err(parser.err(format!("unexpected trailing text '{rest}'; conditions must be joined with AND")));
        }
        if parser.peek().is_none() {
            return Err(parser.err("missing condition after 'AND'"));
        }
        clauses.push(parser.comparison()?);
    }
    Ok(Filter { clauses })
}

/// Parses one `order_by` clause: `identifier [ASC|DESC]`, ascending by default.
pub fn parse_order_by(s: &str) -> Result<OrderBy, SearchError> {
    let mut parser = Parser::new(s, "order_by clause")?;
    if parser.peek().is_none() {
        return Err(parser.err("it must not be empty"));
    }
    let start = parser.pos;
    let (entity, key) = parser.identifier()?;
    let ident = parser.text_since(start).to_string();
    let ascending = match parser.advance() {
        None => true,
        Some(tok) if tok.is_keyword("ASC") => true,
        Some(tok) if tok.is_keyword("DESC") => false,
        Some(tok) => {
            let found = parser.text(&tok);
            return Err(parser.err(format!("expected ASC or DESC after '{ident}', found '{found}'")));
        }
    };
    if let Some(tok) = parser.peek() {
        let rest = &s[tok.start..];
        return Err(parser.err(format!("unexpected trailing text '{rest}'")));
    }
    Ok(OrderBy { entity, key, ascending })
}

const VALID_ENTITIES: &str = "['metric', 'parameter', 'tag', 'attribute', 'dataset']";

fn entity_from_prefix(prefix: &str) -> Option<Entity> {
    match prefix.to_ascii_lowercase().as_str() {
        "metrics" | "metric" => Some(Entity::Metric),
        "params" | "param" | "parameters" | "parameter" => Some(Entity::Param),
        "tags" | "tag" => Some(Entity::Tag),
        "attributes" | "attribute" | "attr" | "run" => Some(Entity::Attribute),
        "datasets" | "dataset" => Some(Entity::Dataset),
        _ => None,
    }
}

/// Accepts `[+-]digits[.digits][e[+-]digits]` (either side of the dot may be empty, not
/// both). Words such as `inf`, `nan` or `0x10` are not numbers here.
fn is_number(word: &str) -> bool {
    fn all_digits(s: &str) -> bool {
        s.bytes().all(|b| b.is_ascii_digit())
    }
    let unsigned = word.strip_prefix(['+', '-']).unwrap_or(word);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mantissa_ok = all_digits(int) && all_digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        !digits.is_empty() && all_digits(digits)
    });
    mantissa_ok && exponent_ok
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cmp {
    fn op(self) -> Op {
        match self {
            Cmp::Eq => Op::Eq,
            Cmp::Ne => Op::Ne,
            Cmp::Gt => Op::Gt,
            Cmp::Ge => Op::Ge,
            Cmp::Lt => Op::Lt,
            Cmp::Le => Op::Le,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A run of characters that are not whitespace, quotes, parentheses, commas or
    /// comparison symbols: identifiers, keywords and numbers.
    Word(String),
    /// A `'single'` or `"double"` quoted literal, unescaped; `quote` is the delimiter.
    Str {
        text: String,
        quote: char,
    },
    /// A `` `backticked` `` key, unescaped.
    Backticked(String),
    Cmp(Cmp),
    LParen,
    RParen,
    Comma,
}

/// A token with its byte range in the input.
#[derive(Debug, Clone)]
struct Spanned {
    token: Token,
    start: usize,
    end: usize,
}

impl Spanned {
    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(&self.token, Token::Word(w) if w.eq_ignore_ascii_case(keyword))
    }
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | ',' | '=' | '!' | '<' | '>' | '\'' | '"' | '`')
}

/// Splits the input into tokens; the error is a detail message without the input.
fn tokenize(src: &str) -> Result<Vec<Spanned>, String> {
    let mut tokens = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        chars.next();
        let token = match c {
            '(' => Token::LParen,
            ')' => Token::RParen,
            ',' => Token::Comma,
            '=' => Token::Cmp(Cmp::Eq),
            '!' => {
                if chars.next_if(|&(_, n)| n == '=').is_none() {
                    return Err(format!("unexpected character '!' at byte {start}"));
                }
                Token::Cmp(Cmp::Ne)
            }
            '<' => {
                if chars.next_if(|&(_, n)| n == '=').is_some() {
                    Token::Cmp(Cmp::Le)
                } else if chars.next_if(|&(_, n)| n == '>').is_some() {
                    Token::Cmp(Cmp::Ne)
                } else {
                    Token::Cmp(Cmp::Lt)
                }
            }
            '>' => {
                if chars.next_if(|&(_, n)| n == '=').is_some() {
                    Token::Cmp(Cmp::Ge)
                } else {
                    Token::Cmp(Cmp::Gt)
                }
            }
            '\'' | '"' | '`' => {
                let text = read_quoted(&mut chars, c)
                    .ok_or_else(|| format!("missing closing {c} for the text at byte {start}"))?;
                if c == '`' {
                    Token::Backticked(text)
                } else {
                    Token::Str { text, quote: c }
                }
            }
            _ => {
                let mut word = String::from(c);
                while let Some((_, n)) = chars.next_if(|&(_, n)| is_word_char(n)) {
                    word.push(n);
                }
                Token::Word(word)
            }
        };
        let end = chars.peek().map_or(src.len(), |&(i, _)| i);
        tokens.push(Spanned { token, start, end });
    }
    Ok(tokens)
}

/// Reads a quoted literal whose opening `quote` was consumed. A doubled quote and a
/// backslash-escaped quote both stand for the quote; `\\` stands for one backslash; any
/// other backslash is kept. Returns `None` if the closing quote is missing.
fn read_quoted(chars: &mut Peekable<CharIndices<'_>>, quote: char) -> Option<String> {
    let mut out = String::new();
    while let Some((_, c)) = chars.next() {
        if c == quote {
            if chars.next_if(|&(_, n)| n == quote).is_none() {
                return Some(out);
            }
            out.push(quote);
        } else if c == '\\' {
            match chars.next_if(|&(_, n)| n == quote || n == '\\') {
                Some((_, escaped)) => out.push(escaped),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    None
}

struct Parser<'a> {
    src: &'a str,
    /// What is being parsed, for messages: "filter" or "order_by clause".
    what: &'static str,
    tokens: Vec<Spanned>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, what: &'static str) -> Result<Self, SearchError> {
        let tokens = tokenize(src).map_err(|detail| SearchError::Invalid(Self::message(what, src, detail)))?;
        Ok(Parser { src, what, tokens, pos: 0 })
    }

    fn message(what: &str, src: &str, detail: impl fmt::Display) -> String {
        format!("Invalid {what} '{src}': {detail}")
    }

    fn err(&self, detail: impl fmt::Display) -> SearchError {
        SearchError::Invalid(Self::message(self.what, self.src, detail))
    }

    fn peek(&self) -> Option<&Spanned> {
        self.tokens.get(self.pos)
    }

    fn advance(&mut self) -> Option<Spanned> {
        let tok = self.tokens.get(self.pos).cloned();
        if tok.is_some() {
            self.pos += 1;
        }
        tok
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.peek().is_some_and(|t| t.is_keyword(keyword));
        if found {
            self.pos += 1;
        }
        found
    }

    /// The source text of one token, as written.
    fn text(&self, tok: &Spanned) -> &'a str {
        &self.src[tok.start..tok.end]
    }

    /// The source text from token index `start` up to the last consumed token.
    fn text_since(&self, start: usize) -> &'a str {
        match (self.tokens.get(start), self.pos.checked_sub(1)) {
            (Some(first), Some(last)) if last >= start => &self.src[first.start..self.tokens[last].end],
            _ => "",
        }
    }

    fn reject_or(&self) -> Result<(), SearchError> {
        if self.tokens.iter().any(|t| t.is_keyword("OR")) {
            return Err(self.err("OR is not supported; combine conditions with AND"));
        }
        Ok(())
    }

    /// comparison := identifier comparator value
    fn comparison(&mut self) -> Result<Comparison, SearchError> {
        let start = self.pos;
        let (entity, key) = self.identifier()?;
        let ident = self.text_since(start);
        let op_start = self.pos;
        let op = self.comparator(ident)?;
        let op_text = self.text_since(op_start);
        let value = self.value(op, op_text)?;
        Ok(Comparison { entity, key, op, value })
    }

    /// identifier := [entity '.'] key, where key is bare, `backticked` or "double quoted".
    fn identifier(&mut self) -> Result<(Entity, String), SearchError> {
        let Some(tok) = self.advance() else {
            return Err(self.err("expected an identifier"));
        };
        match &tok.token {
            Token::Backticked(key) => Ok((Entity::Attribute, self.non_empty_key(key)?)),
            Token::Word(word) => match word.split_once('.') {
                None => Ok((Entity::Attribute, word.clone())),
                Some((prefix, key)) => {
                    let entity = entity_from_prefix(prefix).ok_or_else(|| {
                        self.err(format!("Invalid entity type '{prefix}'. Valid values are {VALID_ENTITIES}"))
                    })?;
                    if !key.is_empty() {
                        return Ok((entity, key.to_string()));
                    }
                    Ok((entity, self.quoted_key(word, tok.end)?))
                }
            },
            Token::LParen => Err(self.err("parentheses for grouping are not supported")),
            _ => {
                let found = self.text(&tok);
                Err(self.err(format!("expected an identifier, found '{found}'")))
            }
        }
    }

    /// The quoted key right after `prefix.` (which ends at byte `end`), with no space.
    fn quoted_key(&mut self, prefix: &str, end: usize) -> Result<String, SearchError> {
        let next = self.peek().filter(|t| t.start == end).cloned();
        match next.map(|t| t.token) {
            Some(Token::Backticked(key)) | Some(Token::Str { text: key, quote: '"' }) => {
                self.pos += 1;
                self.non_empty_key(&key)
            }
            Some(Token::Str { .. }) => {
                Err(self
                    .err(format!("the key after '{prefix}' must be bare or quoted with backticks or double quotes")))
            }
            _ => Err(self.err(format!("missing key after '{prefix}'"))),
        }
    }

    fn non_empty_key(&self, key: &str) -> Result<String, SearchError> {
        if key.is_empty() {
            return Err(self.err("empty quoted key"));
        }
        Ok(key.to_string())
    }

    /// comparator := = | != | <> | > | >= | < | <= | LIKE | ILIKE | IN | NOT IN
    ///              | IS NULL | IS NOT NULL
    fn comparator(&mut self, ident: &str) -> Result<Op, SearchError> {
        let Some(tok) = self.advance() else {
            return Err(self.err(format!("missing comparison operator after '{ident}'")));
        };
        let op = match &tok.token {
            Token::Cmp(cmp) => Some(cmp.op()),
            Token::Word(word) => match word.to_ascii_uppercase().as_str() {
                "LIKE" => Some(Op::Like),
                "ILIKE" => Some(Op::ILike),
                "IN" => Some(Op::In),
                "NOT" if self.eat_keyword("IN") => Some(Op::NotIn),
                "NOT" => return Err(self.err("expected IN after NOT")),
                "IS" if self.eat_keyword("NULL") => Some(Op::IsNull),
                "IS" if self.eat_keyword("NOT") && self.eat_keyword("NULL") => Some(Op::IsNotNull),
                "IS" => return Err(self.err("expected NULL or NOT NULL after IS")),
                _ => None,
            },
            _ => None,
        };
        op.ok_or_else(|| {
            let found = self.text(&tok);
            self.err(format!("expected a comparison operator after '{ident}', found '{found}'"))
        })
    }

    fn value(&mut self, op: Op, op_text: &str) -> Result<Value, SearchError> {
        match op {
            Op::IsNull | Op::IsNotNull => return Ok(Value::Null),
            Op::In | Op::NotIn => return self.list(op_text),
            _ => {}
        }
        let is_like = matches!(op, Op::Like | Op::ILike);
        let Some(tok) = self.advance() else {
            return Err(self.err(format!("missing value after '{op_text}'")));
        };
        match tok.token {
            Token::Str { text, .. } => Ok(Value::Str(text)),
            Token::Word(word) if is_number(&word) => {
                if is_like {
                    return Err(
                        self.err(format!("'{op_text}' requires a quoted string pattern, found number '{word}'"))
                    );
                }
                word.parse::<f64>().map(Value::Num).map_err(|_| self.err(format!("invalid number '{word}'")))
            }
            Token::LParen => Err(self.err(format!(
                "parentheses are only allowed around the list after IN or NOT IN, not after '{op_text}'"
            ))),
            _ => {
                let found = self.text(&tok);
                let expected = if is_like { "a quoted string" } else { "a quoted string or a number" };
                Err(self.err(format!("expected {expected} after '{op_text}', found '{found}'")))
            }
        }
    }

    /// list := '(' string ( ',' string )* ')'
    fn list(&mut self, op_text: &str) -> Result<Value, SearchError> {
        match self.advance() {
            Some(Spanned { token: Token::LParen, .. }) => {}
            None => return Err(self.err(format!("missing value after '{op_text}'"))),
            Some(tok) => {
                let found = self.text(&tok);
                return Err(self.err(format!(
                    "expected a parenthesised list of quoted strings after '{op_text}', found '{found}'"
                )));
            }
        }
        let unterminated = || format!("missing ')' to close the list after '{op_text}'");
        let mut items = Vec::new();
        loop {
            match self.advance() {
                Some(Spanned { token: Token::Str { text, .. }, .. }) => items.push(text),
                Some(Spanned { token: Token::RParen, .. }) if items.is_empty() => {
                    return Err(self.err(format!("the list after '{op_text}' must contain at least one value")));
                }
                Some(tok) => {
                    let found = self.text(&tok);
                    return Err(self
                        .err(format!("the list after '{op_text}' must contain only quoted strings, found '{found}'")));
                }
                None => return Err(self.err(unterminated())),
            }
            match self.advance().map(|t| t.token) {
                Some(Token::Comma) => {}
                Some(Token::RParen) => return Ok(Value::List(items)),
                Some(_) => {
                    return Err(self.err(format!("expected ',' or ')' in the list after '{op_text}'")));
                }
                None => return Err(self.err(unterminated())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(entity: Entity, key: &str, op: Op, value: Value) -> Comparison {
        Comparison { entity, key: key.to_string(), op, value }
    }

    fn s(v: &str) -> Value {
        Value::Str(v.to_string())
    }

    fn list(items: &[&str]) -> Value {
        Value::List(items.iter().map(|i| i.to_string()).collect())
    }

    fn check_filter(input: &str, expected: &[Comparison]) {
        match parse_filter(input) {
            Ok(filter) => assert_eq!(filter.clauses, expected, "input: {input:?}"),
            Err(e) => panic!("input {input:?} failed: {e}"),
        }
    }

    /// The error must quote the whole filter and contain every `needle`.
    fn check_filter_err(input: &str, needles: &[&str]) {
        let Err(SearchError::Invalid(msg)) = parse_filter(input) else {
            panic!("input {input:?} should fail, got {:?}", parse_filter(input));
        };
        let prefix = format!("Invalid filter '{input}': ");
        assert!(msg.starts_with(&prefix), "message {msg:?} for {input:?}");
        for needle in needles {
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        }
    }

    fn check_order(input: &str, entity: Entity, key: &str, ascending: bool) {
        let expected = OrderBy { entity, key: key.to_string(), ascending };
        assert_eq!(parse_order_by(input), Ok(expected), "input: {input:?}");
    }

    fn check_order_err(input: &str, needle: &str) {
        let Err(SearchError::Invalid(msg)) = parse_order_by(input) else {
            panic!("order_by {input:?} should fail");
        };
        let prefix = format!("Invalid order_by clause '{input}': ");
        assert!(msg.starts_with(&prefix), "message {msg:?} for {input:?}");
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }

    use Entity::*;

    #[test]
    fn empty_filter_is_empty() {
        for input in ["", " ", "\t\n  \r"] {
            assert_eq!(parse_filter(input), Ok(Filter::default()));
        }
    }

    #[test]
    fn symbol_comparators() {
        for (sym, op) in [
            ("=", Op::Eq),
            ("!=", Op::Ne),
            ("<>", Op::Ne),
            (">", Op::Gt),
            (">=", Op::Ge),
            ("<", Op::Lt),
            ("<=", Op::Le),
        ] {
            check_filter(&format!("metrics.acc {sym} 1"), &[c(Metric, "acc", op, Value::Num(1.0))]);
        }
    }

    #[test]
    fn comparators_without_spaces() {
        check_filter("metrics.a>=0.5", &[c(Metric, "a", Op::Ge, Value::Num(0.5))]);
        check_filter("params.x='y'", &[c(Param, "x", Op::Eq, s("y"))]);
        check_filter("params.x<>'y'", &[c(Param, "x", Op::Ne, s("y"))]);
        check_filter("metrics.a<-1", &[c(Metric, "a", Op::Lt, Value::Num(-1.0))]);
    }

    #[test]
    fn entity_prefix_aliases() {
        for (prefix, entity) in [
            ("metrics", Metric),
            ("metric", Metric),
            ("params", Param),
            ("param", Param),
            ("parameters", Param),
            ("parameter", Param),
            ("tags", Tag),
            ("tag", Tag),
            ("attributes", Attribute),
            ("attribute", Attribute),
            ("attr", Attribute),
            ("run", Attribute),
            ("datasets", Dataset),
            ("dataset", Dataset),
        ] {
            check_filter(&format!("{prefix}.k = 'v'"), &[c(entity, "k", Op::Eq, s("v"))]);
        }
    }

    #[test]
    fn entity_prefix_is_case_insensitive_key_is_not() {
        check_filter("METRICS.Acc > 1", &[c(Metric, "Acc", Op::Gt, Value::Num(1.0))]);
        check_filter("Params.LR = '1'", &[c(Param, "LR", Op::Eq, s("1"))]);
        check_filter("TaGs.X = 'v'", &[c(Tag, "X", Op::Eq, s("v"))]);
    }

    #[test]
    fn keys_may_contain_dots() {
        check_filter("params.a.b = 'x'", &[c(Param, "a.b", Op::Eq, s("x"))]);
        check_filter("tags.mlflow.runName = 'r'", &[c(Tag, "mlflow.runName", Op::Eq, s("r"))]);
    }

    #[test]
    fn bare_keys_with_special_characters() {
        for key in ["a_b", "a-b", "a/b", "ns:key", "v2", "ключ", "a;b"] {
            check_filter(&format!("params.{key} = 'x'"), &[c(Param, key, Op::Eq, s("x"))]);
        }
    }

    #[test]
    fn backticked_keys() {
        check_filter("tags.`my key` = 'v'", &[c(Tag, "my key", Op::Eq, s("v"))]);
        check_filter("params.`a = 'b'` = 'v'", &[c(Param, "a = 'b'", Op::Eq, s("v"))]);
        check_filter("tags.`a``b` = 'v'", &[c(Tag, "a`b", Op::Eq, s("v"))]);
    }

    #[test]
    fn double_quoted_keys() {
        check_filter("metrics.\"my metric\" < 2", &[c(Metric, "my metric", Op::Lt, Value::Num(2.0))]);
        check_filter("tags.\"a.b c\" = \"v\"", &[c(Tag, "a.b c", Op::Eq, s("v"))]);
    }

    #[test]
    fn identifiers_without_prefix_are_attributes() {
        for key in ["name", "run_name", "creation_time", "version_number", "run_id"] {
            check_filter(&format!("{key} = 'x'"), &[c(Attribute, key, Op::Eq, s("x"))]);
        }
    }

    #[test]
    fn backticked_key_without_prefix_is_attribute() {
        check_filter("`name` = 'x'", &[c(Attribute, "name", Op::Eq, s("x"))]);
        check_filter("`run name` LIKE 'x%'", &[c(Attribute, "run name", Op::Like, s("x%"))]);
    }

    #[test]
    fn unknown_entity_prefix() {
        let expected = "Invalid entity type 'foo'. Valid values are \
                        ['metric', 'parameter', 'tag', 'attribute', 'dataset']";
        check_filter_err("foo.bar = 'x'", &[expected]);
        check_filter_err("metrics.a > 1 AND foo.`x` = 'y'", &["Invalid entity type 'foo'"]);
        check_filter_err(".x = 'y'", &["Invalid entity type ''"]);
    }

    #[test]
    fn missing_or_badly_quoted_key_after_prefix() {
        check_filter_err("tags. = 'x'", &["missing key after 'tags.'"]);
        check_filter_err("tags. `k` = 'x'", &["missing key after 'tags.'"]);
        check_filter_err("tags.'k' = 'x'", &["backticks or double quotes"]);
        check_filter_err("tags.`` = 'x'", &["empty quoted key"]);
        check_filter_err("`` = 'x'", &["empty quoted key"]);
    }

    #[test]
    fn string_values_in_either_quote() {
        check_filter("params.x = 'a b'", &[c(Param, "x", Op::Eq, s("a b"))]);
        check_filter("params.x = \"a b\"", &[c(Param, "x", Op::Eq, s("a b"))]);
        check_filter("params.x = ''", &[c(Param, "x", Op::Eq, s(""))]);
        check_filter("params.x = \"it's\"", &[c(Param, "x", Op::Eq, s("it's"))]);
        check_filter("params.x = '日本 ✓'", &[c(Param, "x", Op::Eq, s("日本 ✓"))]);
    }

    #[test]
    fn doubled_quote_is_one_quote() {
        check_filter("params.x = 'it''s'", &[c(Param, "x", Op::Eq, s("it's"))]);
        check_filter("params.x = \"a\"\"b\"", &[c(Param, "x", Op::Eq, s("a\"b"))]);
        check_filter("params.x = 'a'''", &[c(Param, "x", Op::Eq, s("a'"))]);
        check_filter("params.x = 'a'' OR ''1''=''1'", &[c(Param, "x", Op::Eq, s("a' OR '1'='1"))]);
    }

    #[test]
    fn backslash_escapes() {
        check_filter(r"params.x = 'it\'s'", &[c(Param, "x", Op::Eq, s("it's"))]);
        check_filter(r#"params.x = "a\"b""#, &[c(Param, "x", Op::Eq, s("a\"b"))]);
        check_filter(r"params.x = 'a\\b'", &[c(Param, "x", Op::Eq, s(r"a\b"))]);
        check_filter(r"params.x = 'a\%b'", &[c(Param, "x", Op::Eq, s(r"a\%b"))]);
    }

    #[test]
    fn numbers() {
        for (text, n) in [
            ("1", 1.0),
            ("-1", -1.0),
            ("+2", 2.0),
            ("0.25", 0.25),
            (".5", 0.5),
            ("3.", 3.0),
            ("1e-3", 1e-3),
            ("-2.5E+2", -250.0),
            ("1e5", 1e5),
        ] {
            check_filter(&format!("metrics.m = {text}"), &[c(Metric, "m", Op::Eq, Value::Num(n))]);
        }
    }

    #[test]
    fn unquoted_words_are_not_values() {
        for word in ["abc", "1.2.3", "0x10", "inf", "nan", "1e", "-", "1e+", "TRUE", "5;"] {
            check_filter_err(
                &format!("params.x = {word}"),
                &["expected a quoted string or a number", &format!("found '{word}'")],
            );
        }
        check_filter_err("params.x = `a`", &["expected a quoted string or a number"]);
    }

    #[test]
    fn metric_with_string_value_is_not_validated() {
        check_filter("metrics.m > '1'", &[c(Metric, "m", Op::Gt, s("1"))]);
    }

    #[test]
    fn like_and_ilike() {
        check_filter("tags.t LIKE '%a_'", &[c(Tag, "t", Op::Like, s("%a_"))]);
        check_filter("name ILIKE \"%X%\"", &[c(Attribute, "name", Op::ILike, s("%X%"))]);
        check_filter("tags.t like 'a'", &[c(Tag, "t", Op::Like, s("a"))]);
        check_filter("tags.t iLiKe 'a'", &[c(Tag, "t", Op::ILike, s("a"))]);
    }

    #[test]
    fn like_requires_a_string() {
        check_filter_err("tags.t LIKE 5", &["'LIKE' requires a quoted string", "'5'"]);
        check_filter_err("tags.t ilike -1.5", &["'ilike' requires a quoted string"]);
        check_filter_err("tags.t LIKE abc", &["expected a quoted string after 'LIKE'"]);
        check_filter_err("tags.t LIKE", &["missing value after 'LIKE'"]);
    }

    #[test]
    fn in_and_not_in_lists() {
        check_filter("tags.t IN ('a')", &[c(Tag, "t", Op::In, list(&["a"]))]);
        check_filter("tags.t in ('a','b' , \"c d\")", &[c(Tag, "t", Op::In, list(&["a", "b", "c d"]))]);
        check_filter("datasets.name NOT IN ('x', 'y''z')", &[c(Dataset, "name", Op::NotIn, list(&["x", "y'z"]))]);
        check_filter("run_id not   in('r1')", &[c(Attribute, "run_id", Op::NotIn, list(&["r1"]))]);
    }

    #[test]
    fn in_list_errors() {
        check_filter_err("tags.t IN ()", &["must contain at least one value"]);
        check_filter_err("tags.t IN (1, 2)", &["only quoted strings", "found '1'"]);
        check_filter_err("tags.t IN ('a', 2)", &["only quoted strings", "found '2'"]);
        check_filter_err("tags.t IN ('a',)", &["only quoted strings", "found ')'"]);
        check_filter_err("tags.t IN ('a'", &["missing ')'"]);
        check_filter_err("tags.t IN ('a',", &["missing ')'"]);
        check_filter_err("tags.t IN ('a' 'b')", &["expected ',' or ')'"]);
        check_filter_err("tags.t IN 'a'", &["expected a parenthesised list", "after 'IN'"]);
        check_filter_err("tags.t IN 5", &["expected a parenthesised list"]);
        check_filter_err("tags.t NOT IN", &["missing value after 'NOT IN'"]);
        check_filter_err("tags.t IN (('a'))", &["only quoted strings", "found '('"]);
    }

    #[test]
    fn is_null_and_is_not_null() {
        check_filter("tags.t IS NULL", &[c(Tag, "t", Op::IsNull, Value::Null)]);
        check_filter("tags.t is not null", &[c(Tag, "t", Op::IsNotNull, Value::Null)]);
        check_filter(
            "params.p Is Null AND tags.t IS NOT NULL",
            &[c(Param, "p", Op::IsNull, Value::Null), c(Tag, "t", Op::IsNotNull, Value::Null)],
        );
    }

    #[test]
    fn is_errors() {
        check_filter_err("tags.t IS", &["expected NULL or NOT NULL after IS"]);
        check_filter_err("tags.t IS NOT", &["expected NULL or NOT NULL after IS"]);
        check_filter_err("tags.t IS 'x'", &["expected NULL or NOT NULL after IS"]);
        check_filter_err("tags.t IS NULL 'x'", &["unexpected trailing text ''x''"]);
        check_filter_err("tags.t NOT LIKE 'x'", &["expected IN after NOT"]);
        check_filter_err("tags.t NOT", &["expected IN after NOT"]);
    }

    #[test]
    fn and_chains() {
        check_filter(
            "metrics.a > 1 AND params.b = 'x' and tags.c != 'y' aNd name LIKE 'z%'",
            &[
                c(Metric, "a", Op::Gt, Value::Num(1.0)),
                c(Param, "b", Op::Eq, s("x")),
                c(Tag, "c", Op::Ne, s("y")),
                c(Attribute, "name", Op::Like, s("z%")),
            ],
        );
        check_filter(
            "  tags.t IN ('a')\n\tAND\nmetrics.m<=2  ",
            &[c(Tag, "t", Op::In, list(&["a"])), c(Metric, "m", Op::Le, Value::Num(2.0))],
        );
    }

    #[test]
    fn or_is_rejected() {
        let msg = "OR is not supported; combine conditions with AND";
        for input in [
            "metrics.a > 1 OR metrics.b > 2",
            "metrics.a > 1 or metrics.b > 2",
            "params.x = 'a' Or params.y = 'b' AND tags.t = 'c'",
            "OR",
        ] {
            check_filter_err(input, &[msg]);
        }
    }

    #[test]
    fn or_inside_strings_and_keys_is_fine() {
        check_filter("params.x = 'a OR b'", &[c(Param, "x", Op::Eq, s("a OR b"))]);
        check_filter("params.or = 'x'", &[c(Param, "or", Op::Eq, s("x"))]);
        check_filter("tags.`or` = 'x'", &[c(Tag, "or", Op::Eq, s("x"))]);
    }

    #[test]
    fn parentheses_are_rejected() {
        check_filter_err("(metrics.a > 1)", &["parentheses for grouping are not supported"]);
        check_filter_err("metrics.a > 1 AND (params.b = 'x')", &["parentheses for grouping are not supported"]);
        check_filter_err("params.b = ('x')", &["only allowed around the list after IN"]);
        check_filter_err("metrics.a > 1)", &["unexpected trailing text ')'"]);
    }

    #[test]
    fn missing_value() {
        assert_eq!(
            parse_filter("metrics.a >"),
            Err(SearchError::Invalid("Invalid filter 'metrics.a >': missing value after '>'".to_string()))
        );
        check_filter_err("params.x =", &["missing value after '='"]);
        check_filter_err("params.x <>  ", &["missing value after '<>'"]);
    }

    #[test]
    fn missing_or_bad_comparator() {
        check_filter_err("metrics.a", &["missing comparison operator after 'metrics.a'"]);
        check_filter_err("tags.`a b`", &["missing comparison operator after 'tags.`a b`'"]);
        check_filter_err("metrics.a 1", &["expected a comparison operator", "found '1'"]);
        check_filter_err("params.x == 'a'", &["expected a quoted string or a number", "'='"]);
        check_filter_err("params.x ! 'a'", &["unexpected character '!'"]);
        check_filter_err("params.x =< 'a'", &["expected a quoted string or a number"]);
        check_filter_err("params.x CONTAINS 'a'", &["found 'CONTAINS'"]);
    }

    #[test]
    fn missing_identifier() {
        check_filter_err("= 'x'", &["expected an identifier, found '='"]);
        check_filter_err("'x' = 'x'", &["expected an identifier, found ''x''"]);
        check_filter_err("metrics.a > 1 AND", &["missing condition after 'AND'"]);
        check_filter_err("AND metrics.a > 1", &["expected a comparison operator"]);
        check_filter_err("metrics.a > 1 AND AND metrics.b > 1", &["expected a comparison operator"]);
    }

    #[test]
    fn trailing_garbage_and_injection_attempts() {
        check_filter_err("params.x = 'a'; DROP TABLE runs; --", &["unexpected trailing text '; DROP TABLE runs; --'"]);
        check_filter_err("params.x = 'a' --", &["unexpected trailing text '--'"]);
        check_filter_err("params.x = 'a' params.y = 'b'", &["conditions must be joined with AND"]);
        check_filter_err("params.x = 'a' 'b'", &["unexpected trailing text ''b''"]);
        check_filter_err("tags.t IN ('a'); --", &["unexpected trailing text '; --'"]);
    }

    #[test]
    fn unterminated_quotes() {
        check_filter_err("params.x = 'abc", &["missing closing '"]);
        check_filter_err("params.x = \"abc", &["missing closing \""]);
        check_filter_err("tags.`abc = 'x'", &["missing closing `"]);
        check_filter_err(r"params.x = 'abc\'", &["missing closing '"]);
        check_filter_err("params.x = 'a''", &["missing closing '"]);
    }

    #[test]
    fn never_panics_on_hostile_input() {
        use rand_pcg::rand_core::{Rng as _, SeedableRng as _};
        let alphabet: Vec<char> = "ab.`'\"()=,!<> \t\\;-0e9ORANDINOTISNULL\0é日🦀\u{202e}".chars().collect();
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0x2545_f491_4f6c_dd1d);
        for _ in 0..5000 {
            let len = (rng.next_u64() >> 59) as usize + 1;
            let input: String = (0..len).map(|_| alphabet[(rng.next_u64() >> 33) as usize % alphabet.len()]).collect();
            let _ = parse_filter(&input);
            let _ = parse_order_by(&input);
        }
        for input in ["\0", "params.\0 = '\0'", "'", "\"", "`", "(", ")", ",", "!", "é.x = 1"] {
            let _ = parse_filter(input);
            let _ = parse_order_by(input);
        }
        check_filter("params.\0 = '\0'", &[c(Param, "\0", Op::Eq, s("\0"))]);
    }

    #[test]
    fn long_inputs() {
        let long_value = "x".repeat(200_000);
        check_filter(&format!("params.p = '{long_value}'"), &[c(Param, "p", Op::Eq, s(&long_value))]);
        let chain = vec!["metrics.m > 1"; 10_000].join(" AND ");
        assert_eq!(parse_filter(&chain).unwrap().clauses.len(), 10_000);
        assert!(parse_filter(&"(".repeat(100_000)).is_err());
        assert!(parse_order_by(&"a".repeat(100_000)).is_ok());
    }

    #[test]
    fn error_display_is_the_message() {
        let err = parse_filter("foo.bar = 1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid filter 'foo.bar = 1': Invalid entity type 'foo'. Valid values are \
             ['metric', 'parameter', 'tag', 'attribute', 'dataset']"
        );
    }

    #[test]
    fn order_by_basic() {
        check_order("metrics.rmse DESC", Metric, "rmse", false);
        check_order("attributes.start_time", Attribute, "start_time", true);
        check_order("name", Attribute, "name", true);
        check_order("version_number DESC", Attribute, "version_number", false);
        check_order("params.a.b ASC", Param, "a.b", true);
        check_order("datasets.digest", Dataset, "digest", true);
        check_order("  tags.t  ", Tag, "t", true);
    }

    #[test]
    fn order_by_direction_is_case_insensitive() {
        for (dir, asc) in [("asc", true), ("Asc", true), ("desc", false), ("DeSc", false)] {
            check_order(&format!("metrics.m {dir}"), Metric, "m", asc);
        }
    }

    #[test]
    fn order_by_quoted_keys() {
        check_order("params.`lr rate` ASC", Param, "lr rate", true);
        check_order("tags.\"a b\" desc", Tag, "a b", false);
        check_order("`start time` DESC", Attribute, "start time", false);
        check_order("METRICS.`m`", Metric, "m", true);
    }

    #[test]
    fn order_by_errors() {
        check_order_err("", "must not be empty");
        check_order_err("   ", "must not be empty");
        check_order_err("metrics.m DESC x", "unexpected trailing text 'x'");
        check_order_err("metrics.m ASC DESC", "unexpected trailing text 'DESC'");
        check_order_err("metrics.m DOWN", "expected ASC or DESC after 'metrics.m', found 'DOWN'");
        check_order_err("metrics.m = 1", "expected ASC or DESC");
        check_order_err("foo.bar", "Invalid entity type 'foo'");
        check_order_err("tags.", "missing key after 'tags.'");
        check_order_err("'name'", "expected an identifier");
        check_order_err("tags.`a", "missing closing `");
        check_order_err("name, metrics.m", "expected ASC or DESC");
    }
}
