//! A tiny SQL builder: text with `$n` placeholders and the values bound to them, so that
//! every user-supplied value reaches the database as a bound parameter, never as SQL text.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

/// One bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Int(i64),
    Float(f64),
    Text(String),
}

/// SQL text plus its bound values.
#[derive(Debug, Default, Clone)]
pub struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Sql { text: text.to_string(), args: Vec::new() }
    }

    /// Puts raw SQL text (never user input, no placeholders) in front.
    pub fn prepend(&mut self, text: &str) -> &mut Self {
        self.text.insert_str(0, text);
        self
    }

    /// Appends raw SQL text (never user input).
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `arg`.
    pub fn bind(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    pub fn bind_str(&mut self, s: &str) -> &mut Self {
        self.bind(Arg::Text(s.to_string()))
    }

    pub fn bind_int(&mut self, i: i64) -> &mut Self {
        self.bind(Arg::Int(i))
    }

    /// Appends `(p1, p2, ...)` for a list of text values.
    pub fn bind_list<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) -> &mut Self {
        self.push("(");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind_str(item);
        }
        self.push(")")
    }

    /// Appends a subquery yielding the given strings, bound as *one* JSON array. The SQL text
    /// stays the same whatever the number of ids, so the prepared statement is reused, and
    /// no query approaches the databases' bind-parameter limits.
    pub fn bind_set<'a>(&mut self, dialect: Dialect, items: impl IntoIterator<Item = &'a str>) -> &mut Self {
        let json = serde_json::Value::Array(items.into_iter().map(serde_json::Value::from).collect()).to_string();
        match dialect {
            Dialect::Sqlite => self.push("(SELECT value FROM json_each(").bind(Arg::Text(json)).push("))"),
            Dialect::Postgres => {
                self.push("(SELECT jsonb_array_elements_text(CAST(").bind(Arg::Text(json)).push(" AS jsonb)))")
            }
        }
    }

    #[cfg(test)]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Builds the sqlx query with all values bound.
    pub fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
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

use crate::db::Dialect;
use crate::error::{Result, StoreError};
use crate::search::{parse_order_by, Entity, Op, Value};

/// Appends `<column> <op> <value>` for a text column, with MLflow's string comparators.
/// `LIKE` is case-sensitive on both databases (SQLite's own LIKE is not, so GLOB is used).
pub fn string_condition(
    sql: &mut Sql,
    dialect: Dialect,
    column: &str,
    op: Op,
    value: &Value,
    what: &str,
) -> Result<()> {
    let text = |v: &Value| match v {
        Value::Str(s) => Ok(s.clone()),
        _ => {
            Err(StoreError::InvalidParameter(format!("Invalid comparison for {what}: expected a quoted string value")))
        }
    };
    match op {
        Op::Eq | Op::Ne => {
            sql.push(column).push(if op == Op::Eq { " = " } else { " != " }).bind(Arg::Text(text(value)?));
        }
        Op::Like => {
            let pattern = text(value)?;
            match dialect {
                Dialect::Sqlite => sql.push(column).push(" GLOB ").bind(Arg::Text(like_to_glob(&pattern))),
                Dialect::Postgres => sql.push(column).push(" LIKE ").bind(Arg::Text(pattern)),
            };
        }
        Op::ILike => {
            let pattern = text(value)?;
            match dialect {
                Dialect::Sqlite => {
                    sql.push("LOWER(").push(column).push(") LIKE LOWER(").bind(Arg::Text(pattern)).push(")")
                }
                Dialect::Postgres => sql.push(column).push(" ILIKE ").bind(Arg::Text(pattern)),
            };
        }
        Op::In | Op::NotIn => {
            let Value::List(items) = value else {
                return Err(StoreError::InvalidParameter(format!(
                    "Invalid comparison for {what}: IN expects a list of strings"
                )));
            };
            sql.push(column).push(if op == Op::In { " IN " } else { " NOT IN " });
            sql.bind_list(items.iter().map(String::as_str));
        }
        Op::Gt | Op::Ge | Op::Lt | Op::Le | Op::IsNull | Op::IsNotNull => {
            return Err(StoreError::InvalidParameter(format!(
                "Invalid comparator '{}' for {what}: only =, !=, LIKE, ILIKE, IN and NOT IN are supported",
                op_text(op)
            )));
        }
    }
    Ok(())
}

/// A key/value table owned by an entity: run tags and params, experiment tags, logged-model
/// tags and params, registered-model and model-version tags. `owner` are the columns that,
/// with `key`, form its primary key; `join` ties its rows (alias `x`) to the searched entity.
pub struct KvTable {
    pub table: &'static str,
    pub owner: &'static [&'static str],
    pub join: &'static str,
    /// Whether `tags.k != 'v'` also matches entities without the key (the registry's rule,
    /// which the client's own `tags.\`mlflow.prompt.is_prompt\` != 'true'` relies on).
    pub ne_matches_missing: bool,
}

pub const RUN_TAGS: KvTable =
    KvTable { table: "tags", owner: &["run_uuid"], join: "x.run_uuid = r.run_uuid", ne_matches_missing: false };
pub const RUN_PARAMS: KvTable =
    KvTable { table: "params", owner: &["run_uuid"], join: "x.run_uuid = r.run_uuid", ne_matches_missing: false };
pub const EXPERIMENT_TAGS: KvTable = KvTable {
    table: "experiment_tags",
    owner: &["experiment_id"],
    join: "x.experiment_id = e.experiment_id",
    ne_matches_missing: false,
};
pub const LOGGED_MODEL_TAGS: KvTable = KvTable {
    table: "logged_model_tags",
    owner: &["model_id"],
    join: "x.model_id = m.model_id",
    ne_matches_missing: false,
};
pub const LOGGED_MODEL_PARAMS: KvTable = KvTable {
    table: "logged_model_params",
    owner: &["model_id"],
    join: "x.model_id = m.model_id",
    ne_matches_missing: false,
};
pub const REGISTERED_MODEL_TAGS: KvTable =
    KvTable { table: "registered_model_tags", owner: &["name"], join: "x.name = m.name", ne_matches_missing: true };
pub const MODEL_VERSION_TAGS: KvTable = KvTable {
    table: "model_version_tags",
    owner: &["name", "version"],
    join: "x.name = v.name AND x.version = v.version",
    ne_matches_missing: true,
};

impl KvTable {
    /// `INSERT ... ON CONFLICT (owner, key) DO UPDATE SET value`: sets one key of one owner.
    pub fn upsert(&self, owner: &[Arg], key: &str, value: &str) -> Sql {
        let cols = self.owner.join(", ");
        let mut sql = Sql::new(&format!("INSERT INTO {} ({cols}, key, value) VALUES (", self.table));
        for a in owner {
            sql.bind(a.clone()).push(", ");
        }
        sql.bind_str(key).push(", ").bind_str(value);
        sql.push(&format!(") ON CONFLICT ({cols}, key) DO UPDATE SET value = excluded.value"));
        sql
    }

    /// `<prefix>.<key> <op> <value>` as an EXISTS over the table; `IS NULL` means "no such key".
    pub fn condition(&self, sql: &mut Sql, dialect: Dialect, key: &str, op: Op, value: &Value) -> Result<()> {
        let exists = |sql: &mut Sql, negate: bool| {
            sql.push(if negate { "NOT EXISTS" } else { "EXISTS" });
            sql.push(&format!(" (SELECT 1 FROM {} x WHERE {} AND x.key = ", self.table, self.join));
            sql.bind_str(key);
        };
        match op {
            Op::IsNull | Op::IsNotNull => {
                exists(sql, op == Op::IsNull);
                sql.push(")");
            }
            // As in MLflow, IN / NOT IN are for run ids and datasets only.
            Op::In | Op::NotIn => {
                return Err(StoreError::InvalidParameter(format!(
                "Invalid comparator '{}' for '{key}': only =, !=, LIKE, ILIKE, IS NULL and IS NOT NULL are supported",
                op_text(op)
            )))
            }
            Op::Ne if self.ne_matches_missing => {
                exists(sql, true);
                sql.push(" AND ");
                string_condition(sql, dialect, "x.value", Op::Eq, value, &format!("'{key}'"))?;
                sql.push(")");
            }
            _ => {
                exists(sql, false);
                sql.push(" AND ");
                string_condition(sql, dialect, "x.value", op, value, &format!("'{key}'"))?;
                sql.push(")");
            }
        }
        Ok(())
    }
}

/// Parses `order_by` clauses into `<column> ASC|DESC` terms. `column` maps an (entity, key)
/// to its SQL column from a fixed list; `what` names the searched thing in errors.
pub fn order_terms(
    order_by: &[String],
    column: impl Fn(Entity, &str) -> Option<&'static str>,
    what: &str,
) -> Result<Vec<String>> {
    order_by
        .iter()
        .map(|clause| {
            let o = parse_order_by(clause)?;
            let col = column(o.entity, &o.key)
                .ok_or_else(|| StoreError::InvalidParameter(format!("Invalid order_by key '{}' for {what}", o.key)))?;
            Ok(format!("{col} {}", if o.ascending { "ASC" } else { "DESC" }))
        })
        .collect()
}

/// Appends `<column> <op> <number>` for a numeric column.
pub fn number_condition(sql: &mut Sql, column: &str, op: Op, value: &Value, what: &str) -> Result<()> {
    let Value::Num(n) = value else {
        return Err(StoreError::InvalidParameter(format!("Invalid comparison for {what}: expected a numeric value")));
    };
    let cmp = match op {
        Op::Eq => " = ",
        Op::Ne => " != ",
        Op::Gt => " > ",
        Op::Ge => " >= ",
        Op::Lt => " < ",
        Op::Le => " <= ",
        _ => {
            return Err(StoreError::InvalidParameter(format!(
                "Invalid comparator '{}' for {what}: only =, !=, >, >=, <, <= are supported",
                op_text(op)
            )))
        }
    };
    sql.push(column).push(cmp).bind(Arg::Float(*n));
    Ok(())
}

pub fn op_text(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Like => "LIKE",
        Op::ILike => "ILIKE",
        Op::In => "IN",
        Op::NotIn => "NOT IN",
        Op::IsNull => "IS NULL",
        Op::IsNotNull => "IS NOT NULL",
    }
}

/// Rewrites a SQL LIKE pattern as an equivalent, case-sensitive SQLite GLOB pattern.
pub fn like_to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    for c in pattern.chars() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '*' => out.push_str("[*]"),
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (like, glob) in [("a%", "a*"), ("_b", "?b"), ("x*y", "x[*]y"), ("[q]?", "[[]q][?]"), ("plain", "plain")] {
            assert_eq!(like_to_glob(like), glob);
        }
    }

    #[test]
    fn placeholders_number_in_order() {
        let mut sql = Sql::new("SELECT 1 WHERE ");
        string_condition(&mut sql, Dialect::Postgres, "a", Op::In, &Value::List(vec!["x".into(), "y".into()]), "a")
            .unwrap();
        sql.push(" AND ");
        number_condition(&mut sql, "b", Op::Ge, &Value::Num(1.5), "b").unwrap();
        assert_eq!(sql.text(), "SELECT 1 WHERE a IN ($1, $2) AND b >= $3");
        assert!(number_condition(&mut sql, "b", Op::Like, &Value::Num(1.0), "b").is_err());
        assert!(string_condition(&mut sql, Dialect::Sqlite, "a", Op::Gt, &Value::Str("x".into()), "a").is_err());
    }
}
