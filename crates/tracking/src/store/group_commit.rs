//! Group commit for `log-metric`, the hot path of experiment tracking. Concurrent calls are
//! queued to one writer task, which inserts everything waiting in *one* statement (the
//! metrics travel as one JSON array; on PostgreSQL the runs' data versions are bumped
//! first, in the same transaction) and then answers each caller. A caller is answered
//! only after the statement that holds its metric has committed, so every acknowledged
//! write is durable; under load, one statement serves many requests.

use crate::db::Dialect;
use crate::error::{Result, StoreError};
use crate::model::Metric;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

/// Most metrics written by one statement.
const MAX_GROUP: usize = 512;

struct Pending {
    run_id: String,
    metric: Metric,
    /// `true` when the metric was stored or was already there; `false` when its run was
    /// not active (the caller then finds out why).
    done: oneshot::Sender<Result<bool>>,
}

/// The queue in front of the writer task.
#[derive(Clone)]
pub(crate) struct MetricWriter {
    queue: mpsc::UnboundedSender<Pending>,
}

impl MetricWriter {
    /// Starts the writer task on the current runtime; it ends when the last handle is dropped.
    pub fn spawn(pool: AnyPool, dialect: Dialect) -> MetricWriter {
        let (queue, mut rx) = mpsc::unbounded_channel::<Pending>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(p) => group.push(p),
                        Err(_) => break,
                    }
                }
                let outcome = write_group(&pool, dialect, &group).await;
                for (p, result) in group.into_iter().zip(outcome) {
                    let _ = p.done.send(result);
                }
            }
        });
        MetricWriter { queue }
    }

    /// Queues one metric and waits until it is committed.
    pub async fn write(&self, run_id: &str, metric: &Metric) -> Result<bool> {
        let (done, answer) = oneshot::channel();
        let pending = Pending { run_id: run_id.to_string(), metric: metric.clone(), done };
        self.queue.send(pending).map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
        answer.await.map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?
    }
}

/// The statement that inserts metrics given as one JSON array (see [`metrics_json`]) into
/// `metrics`, skipping rows of runs that are missing or not active and duplicates of stored
/// rows (same key, step, timestamp, value); the `metrics_latest` trigger (migration 0004)
/// keeps `latest_metrics` up to date. On SQLite, a trigger (migration 0006) also bumps the
/// run's `data_version` per inserted row; PostgreSQL writers bump it themselves, first.
pub(super) fn insert_metrics_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "INSERT INTO metrics (run_uuid, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest) \
             SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5, \
                    j.value ->> 6, j.value ->> 7, j.value ->> 8 \
             FROM json_each($1) j \
             WHERE EXISTS (SELECT 1 FROM runs r WHERE r.run_uuid = j.value ->> 0 AND r.lifecycle_stage = 'active') \
             ON CONFLICT DO NOTHING"
        }
        Dialect::Postgres => {
            "INSERT INTO metrics (run_uuid, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest) \
             SELECT j ->> 0, j ->> 1, CAST(j ->> 2 AS DOUBLE PRECISION), CAST(j ->> 3 AS INTEGER), \
                    CAST(j ->> 4 AS BIGINT), CAST(j ->> 5 AS BIGINT), j ->> 6, j ->> 7, j ->> 8 \
             FROM jsonb_array_elements(CAST($1 AS jsonb)) j \
             WHERE EXISTS (SELECT 1 FROM runs r WHERE r.run_uuid = j ->> 0 AND r.lifecycle_stage = 'active') \
             ON CONFLICT DO NOTHING"
        }
    }
}

/// Metrics as the JSON array [`insert_metrics_sql`] reads: `[run, key, value, is_nan,
/// timestamp, step, model_id, dataset_name, dataset_digest]` per metric. NaN is stored as 0
/// with `is_nan` 1 (SQLite turns a NaN REAL into NULL); infinities, which JSON has no number
/// for, travel as what each database reads back as one: `9e999` for SQLite (it overflows to
/// infinity), the string `"Infinity"` for PostgreSQL's cast.
pub(super) fn metrics_json<'a>(dialect: Dialect, metrics: impl IntoIterator<Item = (&'a str, &'a Metric)>) -> String {
    use std::fmt::Write as _;
    let text = |s: &str| serde_json::Value::from(s).to_string();
    let opt = |s: &Option<String>| s.as_deref().map_or_else(|| "null".to_string(), text);
    let mut out = String::from("[");
    for (i, (run_id, m)) in metrics.into_iter().enumerate() {
        let (value, is_nan) = match m.value {
            v if v.is_nan() => ("0".to_string(), 1),
            v if v.is_finite() => (serde_json::Value::from(v).to_string(), 0),
            v => {
                let sign = if v < 0.0 { "-" } else { "" };
                match dialect {
                    Dialect::Sqlite => (format!("{sign}9e999"), 0),
                    Dialect::Postgres => (format!("\"{sign}Infinity\""), 0),
                }
            }
        };
        let _ = write!(
            out,
            "{}[{},{},{value},{is_nan},{},{},{},{},{}]",
            if i > 0 { "," } else { "" },
            text(run_id),
            text(&m.key),
            m.timestamp,
            m.step,
            opt(&m.model_id),
            opt(&m.dataset_name),
            opt(&m.dataset_digest)
        );
    }
    out.push(']');
    out
}

/// Bumps the `data_version` of the active runs among `run_ids` (sorted, distinct) on
/// PostgreSQL, locking their rows in run id order as every writer of several runs does, and
/// before any metric row, as every writer of one run does; SQLite's trigger needs nothing.
pub(super) async fn bump_runs(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    run_ids: &[&str],
) -> sqlx::Result<()> {
    if dialect == Dialect::Postgres {
        sqlx::query(
            "UPDATE runs SET data_version = data_version + 1 WHERE run_uuid IN \
             (SELECT r.run_uuid FROM runs r WHERE r.run_uuid IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb))) \
              AND r.lifecycle_stage = 'active' ORDER BY r.run_uuid FOR NO KEY UPDATE)",
        )
        .bind(serde_json::json!(run_ids).to_string())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Inserts a group in one transaction; returns one result per item, in order.
async fn write_group(pool: &AnyPool, dialect: Dialect, group: &[Pending]) -> Vec<Result<bool>> {
    let json = metrics_json(dialect, group.iter().map(|p| (p.run_id.as_str(), &p.metric)));
    let mut ids: Vec<&str> = group.iter().map(|p| p.run_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let write = async {
        let insert = sqlx::query(insert_metrics_sql(dialect)).bind(json);
        if dialect == Dialect::Sqlite {
            // One statement is the whole transaction (the trigger bumps the runs).
            return insert.execute(pool).await;
        }
        let mut tx = pool.begin().await?;
        bump_runs(&mut tx, dialect, &ids).await?;
        let done = insert.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done)
    };
    let inserted = match write.await {
        Ok(done) => done.rows_affected() as usize,
        Err(e) => {
            let msg = e.to_string();
            return group.iter().map(|_| Err(StoreError::Database(sqlx::Error::Protocol(msg.clone())))).collect();
        }
    };
    if inserted == group.len() {
        return group.iter().map(|_| Ok(true)).collect();
    }
    // Some rows were not inserted: duplicates (fine) or runs that are not active.
    let mut active = std::collections::HashSet::new();
    for id in ids {
        match sqlx::query_scalar::<_, String>("SELECT lifecycle_stage FROM runs WHERE run_uuid = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
        {
            Ok(Some(stage)) if stage == "active" => {
                active.insert(id.to_string());
            }
            Ok(_) => {}
            Err(e) => {
                return group.iter().map(|_| Err(StoreError::Database(sqlx::Error::Protocol(e.to_string())))).collect()
            }
        }
    }
    group.iter().map(|p| Ok(active.contains(&p.run_id))).collect()
}
