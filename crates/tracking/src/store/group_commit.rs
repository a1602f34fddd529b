//! Group commit for `log-metric`, the hot path of experiment tracking. Concurrent calls are
//! queued to one writer task, which inserts everything waiting in *one* statement (the
//! metrics travel as one JSON array) and then answers each caller. A caller is answered
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

    /// Queues one finite metric and waits until it is committed.
    pub async fn write(&self, run_id: &str, metric: &Metric) -> Result<bool> {
        let (done, answer) = oneshot::channel();
        let pending = Pending { run_id: run_id.to_string(), metric: metric.clone(), done };
        self.queue.send(pending).map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
        answer.await.map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?
    }
}

/// Inserts a group in one statement; returns one result per item, in order.
async fn write_group(pool: &AnyPool, dialect: Dialect, group: &[Pending]) -> Vec<Result<bool>> {
    let rows: Vec<serde_json::Value> = group
        .iter()
        .map(|p| {
            let m = &p.metric;
            serde_json::json!([
                p.run_id,
                m.key,
                m.value,
                m.timestamp,
                m.step,
                m.model_id,
                m.dataset_name,
                m.dataset_digest
            ])
        })
        .collect();
    let json = serde_json::Value::Array(rows).to_string();
    let sql = match dialect {
        Dialect::Sqlite => {
            "INSERT INTO metrics (run_uuid, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest) \
             SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, 0, j.value ->> 3, j.value ->> 4, \
                    j.value ->> 5, j.value ->> 6, j.value ->> 7 \
             FROM json_each($1) j \
             WHERE EXISTS (SELECT 1 FROM runs r WHERE r.run_uuid = j.value ->> 0 AND r.lifecycle_stage = 'active') \
             ON CONFLICT DO NOTHING"
        }
        Dialect::Postgres => {
            "INSERT INTO metrics (run_uuid, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest) \
             SELECT j ->> 0, j ->> 1, CAST(j ->> 2 AS DOUBLE PRECISION), 0, CAST(j ->> 3 AS BIGINT), \
                    CAST(j ->> 4 AS BIGINT), j ->> 5, j ->> 6, j ->> 7 \
             FROM jsonb_array_elements(CAST($1 AS jsonb)) j \
             WHERE EXISTS (SELECT 1 FROM runs r WHERE r.run_uuid = j ->> 0 AND r.lifecycle_stage = 'active') \
             ON CONFLICT DO NOTHING"
        }
    };
    let inserted = match sqlx::query(sql).bind(json).execute(pool).await {
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
    let mut ids: Vec<&str> = group.iter().map(|p| p.run_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
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
