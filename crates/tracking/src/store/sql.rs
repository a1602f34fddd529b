//! A tiny SQL builder: text with `$n` placeholders and the values bound to them, so that
//! every user-supplied value reaches the database as a bound parameter, never as SQL text.

use crate::db::Dialect;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

/// One bound value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Int(i64),
    Float(f64),
    Text(String),
}

/// SQL text plus its bound values.
#[derive(Debug, Default, Clone)]
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub(crate) fn new(text: &str) -> Self {
        Sql { text: text.to_string(), args: Vec::new() }
    }

    /// Fixed SQL text whose placeholders `$1`…`$n` are bound, in order, to `args`.
    pub(crate) fn with_args(text: &str, args: Vec<Arg>) -> Self {
        Sql { text: text.to_string(), args }
    }

    /// Puts raw SQL text (never user input, no placeholders) in front.
    pub(crate) fn prepend(&mut self, text: &str) -> &mut Self {
        self.text.insert_str(0, text);
        self
    }

    /// Appends raw SQL text (never user input).
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `arg`.
    pub(crate) fn bind(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    pub(crate) fn bind_str(&mut self, s: &str) -> &mut Self {
        self.bind(Arg::Text(s.to_string()))
    }

    pub(crate) fn bind_int(&mut self, i: i64) -> &mut Self {
        self.bind(Arg::Int(i))
    }

    /// Appends `(p1, p2, ...)`, one placeholder per value.
    pub(crate) fn bind_args(&mut self, items: impl IntoIterator<Item = Arg>) -> &mut Self {
        self.push("(");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(item);
        }
        self.push(")")
    }

    /// `head (p1, p2, ...) tail`: a statement over a list of text values, e.g. the rows of
    /// some owners (`... WHERE name IN ` ... ` ORDER BY key`).
    pub(crate) fn in_list<'a>(head: &str, items: impl IntoIterator<Item = &'a str>, tail: &str) -> Self {
        let mut sql = Sql::new(head);
        sql.bind_list(items).push(tail);
        sql
    }

    /// Appends `(p1, p2, ...)` for a list of text values.
    pub(crate) fn bind_list<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) -> &mut Self {
        self.bind_args(items.into_iter().map(|s| Arg::Text(s.to_string())))
    }

    /// Appends a subquery yielding the given strings, bound as *one* JSON array. The SQL text
    /// stays the same whatever the number of ids, so the prepared statement is reused, and
    /// no query approaches the databases' bind-parameter limits.
    pub(crate) fn bind_set<'a>(&mut self, dialect: Dialect, items: impl IntoIterator<Item = &'a str>) -> &mut Self {
        let json = serde_json::Value::Array(items.into_iter().map(serde_json::Value::from).collect()).to_string();
        match dialect {
            Dialect::Sqlite => self.push("(SELECT value FROM json_each(").bind(Arg::Text(json)).push("))"),
            Dialect::Postgres => {
                self.push("(SELECT jsonb_array_elements_text(CAST(").bind(Arg::Text(json)).push(" AS jsonb)))")
            }
        }
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// Builds the sqlx query with all values bound.
    pub(crate) fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for arg in &self.args {
            q = match arg {
                Arg::Int(i) => q.bind(*i),
                Arg::Float(f) => q.bind(*f),
                Arg::Text(s) => q.bind(s.as_str()),
            };
        }
        q
    }
}

/// The `WHERE` clause being written: the first condition opens it, the others are AND-ed.
pub(crate) struct Where<'a> {
    sql: &'a mut Sql,
    started: bool,
}

impl<'a> Where<'a> {
    pub(crate) fn new(sql: &'a mut Sql) -> Self {
        Where { sql, started: false }
    }

    /// Starts the next condition; write it into the returned builder.
    pub(crate) fn and(&mut self) -> &mut Sql {
        self.sql.push(if self.started { " AND " } else { " WHERE " });
        self.started = true;
        self.sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_in_order() {
        let mut sql = Sql::new("SELECT 1");
        let mut w = Where::new(&mut sql);
        w.and().push("a IN ").bind_list(["x", "y"]);
        w.and().push("b >= ").bind(Arg::Float(1.5));
        assert_eq!(sql.text(), "SELECT 1 WHERE a IN ($1, $2) AND b >= $3");
    }
}
