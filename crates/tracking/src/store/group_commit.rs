//! Group commit for `log-metric`, the hot path of experiment tracking. Concurrent calls are
//! queued to one writer task, which inserts everything waiting with one statement per 64
//! metrics (values bound as doubles; on PostgreSQL the runs' data versions are bumped first,
//! in the same transaction) and then answers each caller. A caller is answered
//! only after the statement that holds its metric has committed, so every acknowledged
//! write is durable; under load, one statement serves many requests.

use crate::db::Dialect;
use crate::error::{Result, StoreError};
use crate::model::Metric;
use crate::stats::exposition_types::Gauge;
use crate::stats::StoreStats;
use sqlx::AnyPool;
use std::time::Instant;
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
    /// Calls queued and not yet taken by the writer.
    depth: Gauge,
}

impl MetricWriter {
    /// Starts the writer task on the current runtime; it ends when the last handle is dropped.
    pub(crate) fn spawn(pool: AnyPool, dialect: Dialect, stats: StoreStats) -> MetricWriter {
        let (queue, mut rx) = mpsc::unbounded_channel::<Pending>();
        let depth = stats.group_commit_queue_depth.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let started = Instant::now();
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(p) => group.push(p),
                        Err(_) => break,
                    }
                }
                stats.group_commit_queue_depth.dec_by(group.len() as i64);
                let outcome = write_group(&pool, dialect, &group).await;
                stats.group_commit_batches.inc();
                stats.group_commit_batch_metrics.observe(group.len() as f64);
                stats.group_commit_duration.observe(started.elapsed().as_secs_f64());
                for (p, result) in group.into_iter().zip(outcome) {
                    let _ = p.done.send(result);
                }
            }
        });
        MetricWriter { queue, depth }
    }

    /// Queues one metric and waits until it is committed.
    pub(crate) async fn write(&self, run_id: &str, metric: &Metric) -> Result<bool> {
        let (done, answer) = oneshot::channel();
        let pending = Pending { run_id: run_id.to_string(), metric: metric.clone(), done };
        self.depth.inc();
        if self.queue.send(pending).is_err() {
            self.depth.dec();
            return Err(StoreError::Database(sqlx::Error::PoolClosed));
        }
        answer.await.map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?
    }
}

/// Most metrics per statement of [`insert_metrics`] (each row binds 9 parameters).
const CHUNK: usize = 64;

/// `INSERT … SELECT … FROM (VALUES …)` of `rows` bound metrics, skipping rows of runs that
/// are missing or not active and duplicates of stored rows (same key, step, timestamp,
/// value). Values are bound as doubles: SQLite's decimal parser (JSON or text) is one unit in
/// the last place off for about one double in 2,000. The text depends only on the row count,
/// so a connection prepares at most [`CHUNK`] of them.
fn insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let p: Vec<String> = (1..=9).map(|c| format!("${}", r * 9 + c)).collect();
            format!("({})", p.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO metrics (run_uuid, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest) \
         SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9 \
         FROM (VALUES {}) v \
         WHERE EXISTS (SELECT 1 FROM runs r WHERE r.run_uuid = v.column1 AND r.lifecycle_stage = 'active') \
         ON CONFLICT DO NOTHING",
        values.join(", ")
    )
}

/// Inserts metrics of active runs (see [`insert_sql`]); the `metrics_latest` trigger
/// (migration 0004) keeps `latest_metrics` up to date. On SQLite a trigger (migration 0006)
/// also bumps the run's `data_version` per inserted row; PostgreSQL writers bump it
/// themselves, first. NaN is stored as 0 with `is_nan` 1 (SQLite turns a NaN REAL into NULL).
/// Returns the number of rows inserted.
pub(super) async fn insert_metrics(conn: &mut sqlx::AnyConnection, metrics: &[(&str, &Metric)]) -> sqlx::Result<u64> {
    static SQL: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| (1..=CHUNK).map(insert_sql).collect());
    let mut inserted = 0;
    for chunk in metrics.chunks(CHUNK) {
        let mut query = sqlx::query(&SQL[chunk.len() - 1]);
        for (run_id, m) in chunk {
            let (value, is_nan) = if m.value.is_nan() { (0.0, 1i64) } else { (m.value, 0) };
            query = query
                .bind(*run_id)
                .bind(m.key.as_str())
                .bind(value)
                .bind(is_nan)
                .bind(m.timestamp)
                .bind(m.step)
                .bind(m.model_id.as_deref())
                .bind(m.dataset_name.as_deref())
                .bind(m.dataset_digest.as_deref());
        }
        inserted += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(inserted)
}

/// Bumps the `data_version` of the active runs among `run_ids` (sorted, distinct) on
/// PostgreSQL, locking their rows in run id order as every writer of several runs does, and
/// before any metric row, as every writer of one run does. (On SQLite a trigger bumps them.)
async fn bump_runs_postgres(tx: &mut sqlx::Transaction<'_, sqlx::Any>, run_ids: &[&str]) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE runs SET data_version = data_version + 1 WHERE run_uuid IN \
         (SELECT r.run_uuid FROM runs r WHERE r.run_uuid IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb))) \
          AND r.lifecycle_stage = 'active' ORDER BY r.run_uuid FOR NO KEY UPDATE)",
    )
    .bind(serde_json::json!(run_ids).to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts a group (on PostgreSQL in one transaction, its runs bumped first); returns one
/// result per item, in order.
async fn write_group(pool: &AnyPool, dialect: Dialect, group: &[Pending]) -> Vec<Result<bool>> {
    let metrics: Vec<(&str, &Metric)> = group.iter().map(|p| (p.run_id.as_str(), &p.metric)).collect();
    let mut ids: Vec<&str> = group.iter().map(|p| p.run_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let write = async {
        if dialect == Dialect::Sqlite {
            // Every statement commits on its own (the trigger bumps the runs); callers are
            // answered once all have.
            let mut conn = pool.acquire().await?;
            return insert_metrics(&mut conn, &metrics).await;
        }
        let mut tx = pool.begin().await?;
        bump_runs_postgres(&mut tx, &ids).await?;
        let inserted = insert_metrics(&mut tx, &metrics).await?;
        tx.commit().await?;
        Ok(inserted)
    };
    let inserted = match write.await {
        Ok(n) => n as usize,
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
