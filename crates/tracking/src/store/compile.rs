//! The one compiler from MLflow's search language to SQL, shared by every search (runs,
//! experiments, registered models, model versions, logged models).
//!
//! A search names a [`Columns`] table: which `entity.key` of its filter maps to which column
//! (or key/value table) and how it compares, which keys it sorts on, and its default and
//! tie-breaking order. [`compile`] checks the whole request first (every filter clause, then
//! every `order_by` clause, with MLflow's messages) into a plan, then writes
//! ` FROM … [LEFT JOIN …] [WHERE …] ORDER BY … LIMIT … OFFSET …` with every value bound as a
//! parameter; the caller puts its select list in front.

use super::sql::{Arg, Sql, Where};
use super::Paging;
use crate::db::Dialect;
use crate::error::{Result, StoreError};
use crate::search::{parse_order_by, DatasetRef, Entity, Filter, Op, OrderBy, Value};

fn invalid(msg: String) -> StoreError {
    StoreError::InvalidParameter(msg)
}

/// What a filter key of a search compiles against.
pub(crate) enum Column {
    /// A text column, with MLflow's string comparators; `what` names it in messages.
    Text { column: String, what: String },
    /// A numeric column; `parse` turns a quoted value into a number (ids, version numbers).
    Number { column: String, what: String, parse: Option<fn(&str) -> Result<f64>> },
    /// An integer id given as quoted strings, compared with `=`, `!=`, `IN` and `NOT IN` only
    /// (experiments' `experiment_id`, `_get_search_experiments_filter_clauses`).
    Id { column: &'static str, what: &'static str },
    /// A key of a key/value table (tags, params).
    Kv(&'static KvTable),
    /// A run's latest value of a metric (runs only).
    Metric,
    /// Any value a logged model has of a metric, on the searched datasets (logged models only).
    ModelMetric,
    /// A column of the datasets a run used, or their context tag (runs only).
    Dataset(&'static str),
}

/// What an `order_by` key of a search sorts on.
pub(crate) enum Sort {
    /// A column, as the database orders it.
    Column(&'static str),
    /// A column, rows without a value last.
    NullsLast(&'static str),
    /// The value of `key` in a child table joined on `owner` (`<alias>.run_uuid = r.run_uuid`);
    /// rows without the key last, and with `nan`, NaN values after numbers.
    Key { table: &'static str, owner: &'static str, nan: bool },
    /// A logged model's latest value of the metric (by timestamp, then step; on the order's
    /// dataset when it names one), models without one last (logged models only).
    ModelMetric,
}

/// One searchable entity: its table and how the search language maps onto it.
pub(crate) struct Columns {
    /// The `FROM` target with its alias, e.g. `runs r`.
    pub from: &'static str,
    /// The column behind `entity.key` under `op`, or why it cannot be filtered on so.
    pub filter: fn(Entity, &str, Op) -> Result<Column>,
    /// What `entity.key` sorts on, or why it cannot be sorted on.
    pub order: fn(Entity, &str) -> Result<Sort>,
    /// The order when the request gives none.
    pub default_order: &'static [(&'static str, &'static str)],
    /// Appended to every order unless that column is sorted on already, so pages are stable.
    pub tie_break: &'static [(&'static str, &'static str)],
}

/// A compiled search: the statement from ` FROM` on, its order terms (`expression`,
/// `ASC|DESC`) for callers that select the sort keys, and the page it reads.
pub(crate) struct Compiled {
    pub sql: Sql,
    pub terms: Vec<(String, &'static str)>,
    pub paging: Paging,
}

/// Parses `order_by` strings, lazily, so that a bad filter is reported before a bad order.
pub(crate) fn parse_orders(order_by: &[String]) -> impl Iterator<Item = Result<OrderBy>> + '_ {
    order_by.iter().map(|o| Ok(parse_order_by(o)?))
}

/// Compiles one page of a search over `columns`: the filter, `scope` (the conditions every
/// such search has, e.g. the lifecycle stage), the order and `LIMIT max_results + 1` (one more
/// row tells whether another page follows) from the page's offset.
pub(crate) fn compile(
    dialect: Dialect,
    columns: &Columns,
    filter: Filter,
    order_by: impl IntoIterator<Item = Result<OrderBy>>,
    paging: Paging,
    scope: impl FnOnce(&mut Where<'_>),
) -> Result<Compiled> {
    compile_on(dialect, columns, filter, &[], order_by, paging, scope)
}

/// [`compile`], with metric conditions held to `datasets` (none: every dataset).
pub(crate) fn compile_on(
    dialect: Dialect,
    columns: &Columns,
    filter: Filter,
    datasets: &[DatasetRef],
    order_by: impl IntoIterator<Item = Result<OrderBy>>,
    paging: Paging,
    scope: impl FnOnce(&mut Where<'_>),
) -> Result<Compiled> {
    let conditions = filter
        .clauses
        .into_iter()
        .map(|c| Cond::new((columns.filter)(c.entity, &c.key, c.op)?, c.key, c.op, &c.value, datasets))
        .collect::<Result<Vec<_>>>()?;
    let mut sorts = Vec::new();
    for o in order_by {
        let o = o?;
        sorts.push(((columns.order)(o.entity, &o.key)?, o));
    }
    let mut sql = Sql::new(&format!(" FROM {}", columns.from));
    let mut terms: Vec<(String, &'static str)> = Vec::new();
    for (i, (sort, o)) in sorts.iter().enumerate() {
        let dir = if o.ascending { "ASC" } else { "DESC" };
        match sort {
            Sort::Column(column) => terms.push((column.to_string(), dir)),
            Sort::NullsLast(column) => {
                terms.push((format!("({column} IS NULL)"), "ASC"));
                terms.push((column.to_string(), dir));
            }
            Sort::Key { table, owner, nan } => {
                let a = format!("o{i}");
                sql.push(&format!(" LEFT JOIN {table} {a} ON {a}.{owner} AND {a}.key = ")).bind_str(&o.key);
                terms.push((format!("({a}.value IS NULL)"), "ASC"));
                if *nan {
                    terms.push((format!("{a}.is_nan"), "ASC"));
                }
                terms.push((format!("{a}.value"), dir));
            }
            Sort::ModelMetric => {
                let a = format!("o{i}");
                sql.push(
                    " LEFT JOIN (SELECT x.model_id, x.value, x.is_nan, ROW_NUMBER() OVER (PARTITION BY x.model_id \
                     ORDER BY x.timestamp DESC, x.step DESC, x.run_uuid ASC) AS rn FROM metrics x \
                     WHERE x.model_id IS NOT NULL AND x.key = ",
                )
                .bind_str(&o.key);
                if let Some(d) = &o.dataset {
                    sql.push(" AND ");
                    write_datasets(&mut sql, "x", std::slice::from_ref(d));
                }
                sql.push(&format!(") {a} ON {a}.model_id = m.model_id AND {a}.rn = 1"));
                terms.push((format!("({a}.value IS NULL)"), "ASC"));
                terms.push((format!("{a}.is_nan"), "ASC"));
                terms.push((format!("{a}.value"), dir));
            }
        }
    }
    let mut clause = Where::new(&mut sql);
    scope(&mut clause);
    for c in &conditions {
        c.write(clause.and(), dialect);
    }
    if terms.is_empty() {
        terms.extend(columns.default_order.iter().map(|(c, d)| (c.to_string(), *d)));
    }
    for (column, dir) in columns.tie_break {
        if !terms.iter().any(|(t, _)| t == column) {
            terms.push((column.to_string(), dir));
        }
    }
    let order = terms.iter().map(|(e, dir)| format!("{e} {dir}")).collect::<Vec<_>>().join(", ");
    sql.push(" ORDER BY ").push(&order);
    sql.push(" LIMIT ").bind_int(paging.max_results + 1).push(" OFFSET ").bind_int(paging.offset);
    Ok(Compiled { sql, terms, paging })
}

/// The searches whose filter and `order_by` [`compile_search`] compiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKind {
    Runs,
    Experiments,
    RegisteredModels,
    ModelVersions,
    /// Logged models take their order as typed fields, not `order_by` strings; each string
    /// is used as the name of an attribute to sort on, ascending.
    LoggedModels,
}

impl SearchKind {
    pub const ALL: [SearchKind; 5] = [
        SearchKind::Runs,
        SearchKind::Experiments,
        SearchKind::RegisteredModels,
        SearchKind::ModelVersions,
        SearchKind::LoggedModels,
    ];
}

/// Parses and compiles a search's `filter` and `order_by` for `kind` as the search does, but
/// without a database and without the search's own scope (experiment ids, lifecycle stage):
/// the statement's text from ` FROM` on, or the error the search would answer. Every value
/// of the request is a bound parameter, so no request text appears in the statement. For
/// property tests and fuzzing of the whole path from request text to SQL.
pub fn compile_search(kind: SearchKind, dialect: Dialect, filter: &str, order_by: &[String]) -> Result<String> {
    let columns = match kind {
        SearchKind::Runs => &super::runs::SEARCH,
        SearchKind::Experiments => &super::experiments::SEARCH,
        SearchKind::RegisteredModels => &super::registry::MODELS_SEARCH,
        SearchKind::ModelVersions => &super::registry::VERSIONS_SEARCH,
        SearchKind::LoggedModels => &super::logged_models::SEARCH,
    };
    let filter = crate::search::parse_filter(filter)?;
    let compiled = match kind {
        SearchKind::LoggedModels => {
            // Their `order_by` is field names (`metrics.<key>` included), not MLflow's order strings.
            let orders = order_by.iter().map(|field| {
                super::logged_models::LoggedModelOrder { field: field.clone(), ascending: true, dataset: None }.parse()
            });
            compile(dialect, columns, filter, orders, Paging::first(100), |_| {})?
        }
        _ => compile(dialect, columns, filter, parse_orders(order_by), Paging::first(100), |_| {})?,
    };
    Ok(compiled.sql.text().to_string())
}

/// A string comparison with its operand checked.
enum TextTest {
    Cmp(&'static str, String),
    Like(String),
    ILike(String),
    In(&'static str, Vec<String>),
}

impl TextTest {
    /// MLflow's string comparators: `=`, `!=`, `LIKE`, `ILIKE`, `IN`, `NOT IN`.
    fn new(op: Op, value: &Value, what: &str) -> Result<TextTest> {
        let text = || match value {
            Value::Str(s) => Ok(s.clone()),
            _ => Err(invalid(format!("Invalid comparison for {what}: expected a quoted string value"))),
        };
        Ok(match op {
            Op::Eq => TextTest::Cmp(" = ", text()?),
            Op::Ne => TextTest::Cmp(" != ", text()?),
            Op::Like => TextTest::Like(text()?),
            Op::ILike => TextTest::ILike(text()?),
            Op::In | Op::NotIn => {
                let Value::List(items) = value else {
                    return Err(invalid(format!("Invalid comparison for {what}: IN expects a list of strings")));
                };
                TextTest::In(if op == Op::In { " IN " } else { " NOT IN " }, items.clone())
            }
            Op::Gt | Op::Ge | Op::Lt | Op::Le | Op::IsNull | Op::IsNotNull => {
                return Err(invalid(format!(
                    "Invalid comparator '{}' for {what}: only =, !=, LIKE, ILIKE, IN and NOT IN are supported",
                    op_text(op)
                )));
            }
        })
    }

    /// `LIKE` is case-sensitive on both databases (SQLite's own LIKE is not, so GLOB is used).
    fn write(&self, sql: &mut Sql, dialect: Dialect, column: &str) {
        match (self, dialect) {
            (TextTest::Cmp(cmp, s), _) => sql.push(column).push(cmp).bind_str(s),
            (TextTest::Like(p), Dialect::Sqlite) => sql.push(column).push(" GLOB ").bind(Arg::Text(like_to_glob(p))),
            (TextTest::Like(p), Dialect::Postgres) => sql.push(column).push(" LIKE ").bind_str(p),
            (TextTest::ILike(p), Dialect::Sqlite) => {
                sql.push("LOWER(").push(column).push(") LIKE LOWER(").bind_str(p).push(")")
            }
            (TextTest::ILike(p), Dialect::Postgres) => sql.push(column).push(" ILIKE ").bind_str(p),
            (TextTest::In(word, items), _) => sql.push(column).push(word).bind_list(items.iter().map(String::as_str)),
        };
    }
}

/// `<column> <op> <number>`: the operator's SQL and the operand.
fn number_test(op: Op, value: &Value, what: &str) -> Result<(&'static str, f64)> {
    let Value::Num(n) = value else {
        return Err(invalid(format!("Invalid comparison for {what}: expected a numeric value")));
    };
    let cmp = match op {
        Op::Eq => " = ",
        Op::Ne => " != ",
        Op::Gt => " > ",
        Op::Ge => " >= ",
        Op::Lt => " < ",
        Op::Le => " <= ",
        _ => {
            return Err(invalid(format!(
                "Invalid comparator '{}' for {what}: only =, !=, >, >=, <, <= are supported",
                op_text(op)
            )))
        }
    };
    Ok((cmp, *n))
}

/// One checked filter clause, ready to be written.
enum Cond {
    Text {
        column: String,
        test: TextTest,
    },
    Number {
        column: String,
        cmp: &'static str,
        value: f64,
    },
    /// `column cmp id` or `column [NOT] IN (ids)`.
    Ids {
        column: &'static str,
        cmp: &'static str,
        ids: Vec<i64>,
        list: bool,
    },
    /// `key` present (`exists`) or absent in `table`, with its value passing `test` if any.
    Kv {
        table: &'static KvTable,
        key: String,
        exists: bool,
        test: Option<TextTest>,
    },
    /// A latest metric present (`exists`) or absent, with its value passing `test` if any.
    Metric {
        key: String,
        exists: bool,
        test: Option<(&'static str, f64)>,
    },
    /// Some value of a logged model's metric, on one of `datasets` (if any), passing `test`.
    ModelMetric {
        key: String,
        exists: bool,
        test: Option<(&'static str, f64)>,
        datasets: Vec<DatasetRef>,
    },
    Dataset {
        column: &'static str,
        test: TextTest,
    },
}

impl Cond {
    fn new(column: Column, key: String, op: Op, value: &Value, datasets: &[DatasetRef]) -> Result<Cond> {
        Ok(match column {
            Column::Text { column, what } => Cond::Text { column, test: TextTest::new(op, value, &what)? },
            Column::Number { column, what, parse } => {
                let parsed;
                let value = match (value, parse) {
                    (Value::Str(s), Some(parse)) => {
                        parsed = Value::Num(parse(s)?);
                        &parsed
                    }
                    _ => value,
                };
                let (cmp, value) = number_test(op, value, &what)?;
                Cond::Number { column, cmp, value }
            }
            Column::Id { column, what } => {
                let cmp = match op {
                    Op::Eq => " = ",
                    Op::Ne => " != ",
                    Op::In => " IN ",
                    Op::NotIn => " NOT IN ",
                    _ => return Err(invalid(format!("Invalid comparator for {what}: {}", op_text(op)))),
                };
                let parse = |v: &str| super::parse_experiment_id(v);
                match value {
                    Value::Str(v) if !matches!(op, Op::In | Op::NotIn) => {
                        Cond::Ids { column, cmp, ids: vec![parse(v)?], list: false }
                    }
                    Value::List(items) if matches!(op, Op::In | Op::NotIn) => Cond::Ids {
                        column,
                        cmp,
                        ids: items.iter().map(|v| parse(v)).collect::<Result<_>>()?,
                        list: true,
                    },
                    Value::Num(n) => {
                        return Err(invalid(format!("Expected a quoted string value for attributes. Got value {n}")))
                    }
                    _ => return Err(invalid(format!("Invalid comparison for {what}: expected a quoted string value"))),
                }
            }
            Column::Kv(table) => {
                let what = format!("'{key}'");
                match op {
                    Op::IsNull | Op::IsNotNull => Cond::Kv { table, key, exists: op == Op::IsNotNull, test: None },
                    // As in MLflow, IN / NOT IN are for run ids and datasets only.
                    Op::In | Op::NotIn => {
                        return Err(invalid(format!(
                            "Invalid comparator '{}' for '{key}': only =, !=, LIKE, ILIKE, IS NULL and IS NOT NULL \
                             are supported",
                            op_text(op)
                        )))
                    }
                    _ => Cond::Kv { table, key, exists: true, test: Some(TextTest::new(op, value, &what)?) },
                }
            }
            Column::Metric => match op {
                Op::IsNull | Op::IsNotNull => Cond::Metric { key, exists: op == Op::IsNotNull, test: None },
                _ => {
                    let test = number_test(op, value, &format!("metric '{key}'"))?;
                    Cond::Metric { key, exists: true, test: Some(test) }
                }
            },
            Column::ModelMetric => {
                let datasets = datasets.to_vec();
                match op {
                    Op::IsNull | Op::IsNotNull => {
                        Cond::ModelMetric { key, exists: op == Op::IsNotNull, test: None, datasets }
                    }
                    _ => {
                        let test = number_test(op, value, &format!("metric '{key}'"))?;
                        Cond::ModelMetric { key, exists: true, test: Some(test), datasets }
                    }
                }
            }
            Column::Dataset(column) => {
                Cond::Dataset { column, test: TextTest::new(op, value, &format!("dataset '{key}'"))? }
            }
        })
    }

    fn write(&self, sql: &mut Sql, dialect: Dialect) {
        let exists = |sql: &mut Sql, exists: bool| {
            sql.push(if exists { "EXISTS" } else { "NOT EXISTS" });
        };
        match self {
            Cond::Text { column, test } => test.write(sql, dialect, column),
            Cond::Number { column, cmp, value } => {
                sql.push(column).push(cmp).bind(Arg::Float(*value));
            }
            Cond::Ids { column, cmp, ids, list } => {
                sql.push(column).push(cmp);
                if *list {
                    sql.bind_args(ids.iter().map(|i| Arg::Int(*i)));
                } else {
                    sql.bind_int(ids[0]);
                }
            }
            Cond::Kv { table, key, exists: e, test } => {
                exists(sql, *e);
                sql.push(&format!(" (SELECT 1 FROM {} x WHERE {} AND x.key = ", table.table, table.join)).bind_str(key);
                if let Some(test) = test {
                    sql.push(" AND ");
                    test.write(sql, dialect, "x.value");
                }
                sql.push(")");
            }
            Cond::Metric { key, exists: e, test } => {
                exists(sql, *e);
                sql.push(" (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = ").bind_str(key);
                if let Some((cmp, value)) = test {
                    sql.push(" AND m.is_nan = 0 AND m.value").push(cmp).bind(Arg::Float(*value));
                }
                sql.push(")");
            }
            Cond::ModelMetric { key, exists, test, datasets } => {
                write_model_metric(sql, *exists, Some(key), *test, datasets);
            }
            Cond::Dataset { column, test } => {
                sql.push(
                    "EXISTS (SELECT 1 FROM run_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid \
                     LEFT JOIN input_tags t ON t.input_uuid = i.input_uuid AND t.key = 'mlflow.data.context' \
                     WHERE i.run_uuid = r.run_uuid AND ",
                );
                test.write(sql, dialect, column);
                sql.push(")");
            }
        }
    }
}

/// Whether a logged model (alias `m`) has (`exists`) a metric row (alias `x`): of `key` if
/// given, with its value passing `test` if given, logged on one of `datasets` if any.
pub(crate) fn write_model_metric(
    sql: &mut Sql,
    exists: bool,
    key: Option<&str>,
    test: Option<(&'static str, f64)>,
    datasets: &[DatasetRef],
) {
    sql.push(if exists { "EXISTS" } else { "NOT EXISTS" });
    sql.push(" (SELECT 1 FROM metrics x WHERE x.model_id = m.model_id");
    if let Some(key) = key {
        sql.push(" AND x.key = ").bind_str(key);
    }
    if let Some((cmp, value)) = test {
        sql.push(" AND x.is_nan = 0 AND x.value").push(cmp).bind(Arg::Float(value));
    }
    if !datasets.is_empty() {
        sql.push(" AND ");
        write_datasets(sql, "x", datasets);
    }
    sql.push(")");
}

/// `(a.dataset_name = $n AND COALESCE(a.dataset_digest, '') = $d) OR (a.dataset_name = $m) ...`,
/// parenthesised: the metric rows (alias `a`) logged on one of `datasets`.
fn write_datasets(sql: &mut Sql, a: &str, datasets: &[DatasetRef]) {
    sql.push("(");
    for (i, d) in datasets.iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push(&format!("({a}.dataset_name = ")).bind_str(&d.name);
        if let Some(digest) = &d.digest {
            // Stored as NULL when a metric names no digest; `Some("")` asks for those.
            sql.push(&format!(" AND COALESCE({a}.dataset_digest, '') = ")).bind_str(digest);
        }
        sql.push(")");
    }
    sql.push(")");
}

/// A key/value table owned by an entity: run tags and params, experiment tags, logged-model
/// tags and params, registered-model and model-version tags. `owner` are the columns that,
/// with `key`, form its primary key; `join` ties its rows (alias `x`) to the searched entity.
pub(crate) struct KvTable {
    pub table: &'static str,
    pub owner: &'static [&'static str],
    pub join: &'static str,
}

pub(crate) const RUN_TAGS: KvTable = KvTable { table: "tags", owner: &["run_uuid"], join: "x.run_uuid = r.run_uuid" };
pub(crate) const RUN_PARAMS: KvTable =
    KvTable { table: "params", owner: &["run_uuid"], join: "x.run_uuid = r.run_uuid" };
pub(crate) const EXPERIMENT_TAGS: KvTable =
    KvTable { table: "experiment_tags", owner: &["experiment_id"], join: "x.experiment_id = e.experiment_id" };
pub(crate) const LOGGED_MODEL_TAGS: KvTable =
    KvTable { table: "logged_model_tags", owner: &["model_id"], join: "x.model_id = m.model_id" };
pub(crate) const LOGGED_MODEL_PARAMS: KvTable =
    KvTable { table: "logged_model_params", owner: &["model_id"], join: "x.model_id = m.model_id" };
pub(crate) const REGISTERED_MODEL_TAGS: KvTable =
    KvTable { table: "registered_model_tags", owner: &["name"], join: "x.name = m.name" };
pub(crate) const MODEL_VERSION_TAGS: KvTable = KvTable {
    table: "model_version_tags",
    owner: &["name", "version"],
    join: "x.name = v.name AND x.version = v.version",
};

impl KvTable {
    /// `INSERT ... ON CONFLICT (owner, key) DO UPDATE SET value`: sets one key of one owner.
    pub(crate) fn upsert(&self, owner: &[Arg], key: &str, value: &str) -> Sql {
        let cols = self.owner.join(", ");
        let mut sql = Sql::new(&format!("INSERT INTO {} ({cols}, key, value) VALUES (", self.table));
        for a in owner {
            sql.bind(a.clone()).push(", ");
        }
        sql.bind_str(key).push(", ").bind_str(value);
        sql.push(&format!(") ON CONFLICT ({cols}, key) DO UPDATE SET value = excluded.value"));
        sql
    }

    /// `DELETE ... WHERE owner AND key`: removes one key of one owner.
    pub(crate) fn delete(&self, owner: &[Arg], key: &str) -> Sql {
        let mut sql = Sql::new(&format!("DELETE FROM {}", self.table));
        let mut w = Where::new(&mut sql);
        for (column, a) in self.owner.iter().zip(owner) {
            w.and().push(column).push(" = ").bind(a.clone());
        }
        w.and().push("key = ").bind_str(key);
        sql
    }
}

pub(crate) fn op_text(op: Op) -> &'static str {
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
pub(crate) fn like_to_glob(pattern: &str) -> String {
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
    use crate::search::parse_filter;

    #[test]
    fn globs() {
        for (like, glob) in [("a%", "a*"), ("_b", "?b"), ("x*y", "x[*]y"), ("[q]?", "[[]q][?]"), ("plain", "plain")] {
            assert_eq!(like_to_glob(like), glob);
        }
    }

    const THINGS: Columns = Columns {
        from: "things t",
        filter: |entity, key, _| match (entity, key) {
            (Entity::Attribute, "name") => Ok(Column::Text { column: "t.name".into(), what: "'name'".into() }),
            (Entity::Attribute, "size") => {
                Ok(Column::Number { column: "t.size".into(), what: "size".into(), parse: None })
            }
            _ => Err(invalid(format!("no filter on '{key}'"))),
        },
        order: |_, key| match key {
            "name" => Ok(Sort::Column("t.name")),
            "size" => Ok(Sort::NullsLast("t.size")),
            _ => Err(invalid(format!("no order on '{key}'"))),
        },
        default_order: &[("t.size", "DESC")],
        tie_break: &[("t.name", "ASC")],
    };

    /// Compiles a search over `THINGS` on PostgreSQL; the SQL text, or the error message.
    fn check(filter: &str, order_by: &[&str], expect: std::result::Result<&str, &str>) {
        let order_by: Vec<String> = order_by.iter().map(|s| s.to_string()).collect();
        let scope = |w: &mut Where<'_>| {
            w.and().push("t.live = 1");
        };
        let got = parse_filter(filter)
            .map_err(StoreError::from)
            .and_then(|f| compile(Dialect::Postgres, &THINGS, f, parse_orders(&order_by), Paging::first(10), scope));
        match (got, expect) {
            (Ok(c), Ok(text)) => assert_eq!(c.sql.text(), text, "{filter} / {order_by:?}"),
            (Err(e), Err(msg)) => assert_eq!(e.to_string(), msg, "{filter} / {order_by:?}"),
            (got, _) => panic!("{filter} / {order_by:?}: {:?}", got.map(|c| c.sql.text().to_string())),
        }
    }

    #[test]
    fn filters_orders_and_paging() {
        check(
            "name IN ('a', 'b') AND size >= 1.5",
            &[],
            Ok(" FROM things t WHERE t.live = 1 AND t.name IN ($1, $2) AND t.size >= $3 \
                ORDER BY t.size DESC, t.name ASC LIMIT $4 OFFSET $5"),
        );
        check(
            "",
            &["size", "name DESC"],
            Ok(" FROM things t WHERE t.live = 1 ORDER BY (t.size IS NULL) ASC, t.size ASC, t.name DESC \
                LIMIT $1 OFFSET $2"),
        );
    }

    #[test]
    fn key_value_statements_bind_owner_and_key() {
        let owner = [Arg::Text("m".into()), Arg::Int(2)];
        assert_eq!(
            MODEL_VERSION_TAGS.delete(&owner, "k").text(),
            "DELETE FROM model_version_tags WHERE name = $1 AND version = $2 AND key = $3"
        );
        assert_eq!(
            MODEL_VERSION_TAGS.upsert(&owner, "k", "v").text(),
            "INSERT INTO model_version_tags (name, version, key, value) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value"
        );
    }

    #[test]
    fn errors_name_the_first_bad_clause_filter_before_order() {
        check("colour = 'red'", &["weight"], Err("no filter on 'colour'"));
        check("name = 'x'", &["weight"], Err("no order on 'weight'"));
        check("size LIKE 'x'", &[], Err("Invalid comparison for size: expected a numeric value"));
        check("size LIKE '%'", &["weight"], Err("Invalid comparison for size: expected a numeric value"));
        check(
            "name > 'x'",
            &[],
            Err("Invalid comparator '>' for 'name': only =, !=, LIKE, ILIKE, IN and NOT IN are supported"),
        );
        check("name = 1", &[], Err("Invalid comparison for 'name': expected a quoted string value"));
        check(
            "size >= 1",
            &["name SIDEWAYS"],
            Err("Invalid order_by clause 'name SIDEWAYS': expected ASC or DESC after 'name', found 'SIDEWAYS'"),
        );
    }
}
