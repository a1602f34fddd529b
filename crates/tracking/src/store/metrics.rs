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
        let mut sql = Sql::new(&format!("SELECT {METRIC_COLUMNS} FROM metrics WHERE run_uuid = "));
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
        let items = rows.iter().map(metric_from_row).collect::<Result<Vec<_>>>()?;
        Ok(match paging {
            Some(p) => p.page(items),
            None => Page { items, next_page_token: None },
        })
    }

    /// The UI's bulk read: one metric of several runs, within a step range if given, at most
    /// `max_results` values per run, sampled as MLflow's SQL store does
    /// (`_sample_rows_with_window_functions`): the values in (step, timestamp, value) order
    /// are cut into `max_results` buckets as `NTILE` cuts them, the first of each is kept, and
    /// the run's last value replaces the last one kept (or is added while fewer were kept).
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
            let mut sql = Sql::new(&format!("SELECT {METRIC_COLUMNS} FROM metrics WHERE run_uuid = "));
            sql.bind_str(run_id).push(" AND key = ").bind_str(key);
            if let (Some(start), Some(end)) = (start_step, end_step) {
                sql.push(" AND step >= ").bind_int(start).push(" AND step <= ").bind_int(end);
            }
            sql.push(" ORDER BY step, timestamp, value, is_nan");
            let rows = sql.query().fetch_all(self.s.r()).await?;
            for i in sample_indices(rows.len(), max_results) {
                out.push(RunMetric { run_id: run_id.clone(), metric: metric_from_row(&rows[i])? });
            }
        }
        Ok(out)
    }
}

const METRIC_COLUMNS: &str = "key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest";

fn metric_from_row(row: &sqlx::any::AnyRow) -> Result<Metric> {
    Ok(Metric {
        key: row.try_get(0)?,
        value: loaded_value(row.try_get(1)?, row.try_get(2)?),
        timestamp: row.try_get(3)?,
        step: row.try_get(4)?,
        model_id: row.try_get(5)?,
        dataset_name: row.try_get(6)?,
        dataset_digest: row.try_get(7)?,
    })
}

/// Which of `n` ordered values a bulk-interval read keeps: the first of each of `NTILE(k)`'s
/// buckets (the first `n % k` buckets hold one value more), then the last value in place of
/// the last kept when `k` are kept already, else added (MLflow's `_sample_rows_with_window_functions`).
fn sample_indices(n: usize, k: usize) -> Vec<usize> {
    let k = k.max(1);
    if n == 0 {
        return Vec::new();
    }
    let (q, r) = (n / k, n % k);
    let mut picked: Vec<usize> = (0..k.min(n)).map(|b| b * q + b.min(r)).collect();
    if picked.last() != Some(&(n - 1)) {
        if picked.len() >= k {
            picked.pop();
        }
        picked.push(n - 1);
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::sample_indices;

    /// What MLflow 3.17.2's SQL store keeps (checked against `mlflow server` on SQLite).
    #[test]
    fn bulk_interval_sampling() {
        let check = |n: usize, k: usize, want: &[usize]| assert_eq!(sample_indices(n, k), want, "n={n} k={k}");
        // 100 steps and a second value at step 50 (index 51): steps 0, 21, 41, 60, 99.
        check(101, 5, &[0, 21, 41, 61, 100]);
        check(100, 5, &[0, 20, 40, 60, 99]);
        check(5, 2, &[0, 4]);
        check(3, 5, &[0, 1, 2]);
        check(1, 1, &[0]);
        check(10, 1, &[9]);
        check(0, 5, &[]);
    }
}
