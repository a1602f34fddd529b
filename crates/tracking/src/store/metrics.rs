//! Metrics: the group-committed `log-metric` hot path (`group_commit`) and metric history.

use super::hydrate::loaded_value;
use super::sql::Sql;
use super::{check_max_results, decode_page_token, validate, Paging, Store};
use crate::error::{Result, StoreError};
use crate::model::{Metric, Page, RunMetric};
use sqlx::Row;

/// The largest page of metric history returned at once (the client asks for 2500).
const METRIC_HISTORY_MAX: i64 = 25_000;

/// Metrics of one store (`store.metrics()`).
#[derive(Clone, Copy)]
pub struct Metrics<'s> {
    pub(super) s: &'s Store,
}

impl Metrics<'_> {
    /// The hot path of experiment tracking: group-committed, one statement per 64 metrics of a group.
    pub async fn log(&self, run_id: &str, metric: &Metric) -> Result<()> {
        validate::key("metric", &metric.key)?;
        if !self.s.metric_writer.write(run_id, metric).await? {
            // Nothing inserted: a duplicate of a stored value (fine), or a missing or deleted run.
            self.s.runs().check_active(run_id).await?;
        }
        Ok(())
    }

    /// Every value of one metric, ordered by timestamp, step and value, paged.
    pub async fn history(
        &self,
        run_id: &str,
        key: &str,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Page<Metric>> {
        let offset = decode_page_token(page_token)?;
        let mut sql = Sql::new(
            "SELECT key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest FROM metrics \
             WHERE run_uuid = ",
        );
        // MLflow orders history by (timestamp, step, value); an unknown run has no history.
        sql.bind_str(run_id).push(" AND key = ").bind_str(key).push(" ORDER BY timestamp, step, is_nan, value");
        let paging = match max_results {
            Some(n) => Some(Paging { max_results: check_max_results(n, METRIC_HISTORY_MAX)?, offset }),
            None => None,
        };
        if let Some(p) = paging {
            sql.push(" LIMIT ").bind_int(p.max_results + 1).push(" OFFSET ").bind_int(offset);
        }
        let rows = sql.query().fetch_all(self.s.r()).await?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(Metric {
                    key: row.try_get(0)?,
                    value: loaded_value(row.try_get(1)?, row.try_get(2)?),
                    timestamp: row.try_get(3)?,
                    step: row.try_get(4)?,
                    model_id: row.try_get(5)?,
                    dataset_name: row.try_get(6)?,
                    dataset_digest: row.try_get(7)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(match paging {
            Some(p) => p.page(items),
            None => Page { items, next_page_token: None },
        })
    }

    /// The UI's bulk read: one metric of several runs within a step range, at most
    /// `max_results` points per run, evenly sampled (first and last point kept).
    pub async fn history_bulk_interval(
        &self,
        run_ids: &[String],
        key: &str,
        start_step: Option<i64>,
        end_step: Option<i64>,
        max_results: i64,
    ) -> Result<Vec<RunMetric>> {
        if run_ids.is_empty() || run_ids.len() > 100 {
            return Err(StoreError::InvalidParameter(format!(
                "GetMetricHistoryBulkInterval request must specify between 1 and 100 run_ids, got {}",
                run_ids.len()
            )));
        }
        let max_results = check_max_results(max_results, METRIC_HISTORY_MAX)? as usize;
        let mut out = Vec::new();
        for run_id in run_ids {
            let all = self.history(run_id, key, None, None).await?.items;
            let in_range: Vec<Metric> = all
                .into_iter()
                .filter(|m| start_step.is_none_or(|s| m.step >= s) && end_step.is_none_or(|e| m.step <= e))
                .collect();
            let n = in_range.len();
            let picked: Vec<Metric> = if n <= max_results {
                in_range
            } else {
                let last = n - 1;
                let mut idx: Vec<usize> = (0..max_results).map(|i| i * last / (max_results - 1).max(1)).collect();
                idx.dedup();
                idx.into_iter().map(|i| in_range[i].clone()).collect()
            };
            out.extend(picked.into_iter().map(|metric| RunMetric { run_id: run_id.clone(), metric }));
        }
        Ok(out)
    }
}
