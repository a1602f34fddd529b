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
    /// Logged models' `order_by` may sort by a metric's values on one dataset only.
    pub dataset: Option<DatasetRef>,
}

/// A dataset by name, and by digest unless `None` (`Some("")`: metrics logged without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetRef {
    pub name: String,
    pub digest: Option<String>,
}

/// Why a filter or `order_by` clause was rejected. The message quotes the input.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SearchError {
    #[error("{0}")]
    Invalid(String),
}

/// A filter or `order_by` clause of more tokens than this is refused, as MLflow's parser
/// (sqlparse's `MAX_GROUPING_TOKENS`) refuses it, with MLflow's message.
pub const MAX_TOKENS: usize = 10_000;

/// Ours: the AND-ed conditions of one filter (MLflow has no such limit; SQLite refuses an
/// expression nested about 1,000 deep, which is a few more conditions than this).
pub const MAX_FILTER_CLAUSES: usize = 500;

/// Parses a filter string. An empty or whitespace-only string gives an empty [`Filter`].
pub fn parse_filter(s: &str) -> Result<Filter, SearchError> {
    if s.trim().is_empty() {
        return Ok(Filter::default());
    }
    let mut parser = Parser::new(s, "filter")?;
    if parser.tokens.len() > MAX_TOKENS {
        return Err(SearchError::Invalid(format!("Error on parsing filter '{s}'")));
    }
    let conditions = parser.tokens.iter().filter(|t| t.is_keyword("AND")).count() + 1;
    if conditions > MAX_FILTER_CLAUSES {
        return Err(SearchError::Invalid(format!(
            "Invalid filter: a filter can have at most {MAX_FILTER_CLAUSES} conditions joined with AND, got {conditions}."
        )));
    }
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
    if parser.tokens.len() > MAX_TOKENS {
        return Err(SearchError::Invalid(format!("Error on parsing order_by clause '{s}'")));
    }
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
    Ok(OrderBy { entity, key, ascending, dataset: None })
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
    /// A comparison symbol (`=`, `!=`, `<>`, `>`, `>=`, `<`, `<=`).
    Cmp(Op),
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
            '=' => Token::Cmp(Op::Eq),
            '!' => {
                if chars.next_if(|&(_, n)| n == '=').is_none() {
                    return Err(format!("unexpected character '!' at byte {start}"));
                }
                Token::Cmp(Op::Ne)
            }
            '<' => {
                if chars.next_if(|&(_, n)| n == '=').is_some() {
                    Token::Cmp(Op::Le)
                } else if chars.next_if(|&(_, n)| n == '>').is_some() {
                    Token::Cmp(Op::Ne)
                } else {
                    Token::Cmp(Op::Lt)
                }
            }
            '>' => {
                if chars.next_if(|&(_, n)| n == '=').is_some() {
                    Token::Cmp(Op::Ge)
                } else {
                    Token::Cmp(Op::Gt)
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
            Token::Cmp(op) => Some(*op),
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
mod tests;
