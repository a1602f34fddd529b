//! Datasets: the inputs a run records (datasets, deduplicated per experiment by name and
//! digest, with the input's tags; and the logged models it used).

use super::sql::{Arg, Sql};
use super::{parse_experiment_id, validate, Store};
use crate::error::{Result, StoreError};
use crate::model::{DatasetInput, DatasetSummary};
use sqlx::Row;

/// At most this many summaries (MLflow's `MAX_DATASET_SUMMARIES_RESULTS`).
const MAX_DATASET_SUMMARIES: i64 = 1000;

/// Datasets of one store (`store.datasets()`).
#[derive(Clone, Copy)]
pub struct Datasets<'s> {
    pub(super) s: &'s Store,
}

impl Datasets<'_> {
    /// The distinct (experiment, name, digest, context) of the datasets the experiments' runs
    /// used, the context being an input's `mlflow.data.context` tag (MLflow's `_search_datasets`).
    pub async fn summaries(&self, experiment_ids: &[String]) -> Result<Vec<DatasetSummary>> {
        let ids = experiment_ids.iter().map(|id| parse_experiment_id(id).map(Arg::Int)).collect::<Result<Vec<_>>>()?;
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut sql = Sql::new(
            "SELECT DISTINCT d.experiment_id, d.name, d.digest, t.value FROM datasets d \
             JOIN run_inputs i ON i.dataset_uuid = d.dataset_uuid \
             LEFT JOIN input_tags t ON t.input_uuid = i.input_uuid AND t.key = 'mlflow.data.context' \
             WHERE d.experiment_id IN ",
        );
        sql.bind_args(ids).push(" ORDER BY d.experiment_id, d.name, d.digest LIMIT ").bind_int(MAX_DATASET_SUMMARIES);
        let rows = sql.query().fetch_all(self.s.r()).await?;
        rows.iter()
            .map(|row| {
                Ok(DatasetSummary {
                    experiment_id: row.try_get::<i64, _>(0)?.to_string(),
                    name: row.try_get(1)?,
                    digest: row.try_get(2)?,
                    context: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// Records datasets used by a run (deduplicated per experiment by name and digest).
    pub async fn log_inputs(&self, run_id: &str, inputs: &[DatasetInput], model_ids: &[String]) -> Result<()> {
        for i in inputs {
            for t in &i.tags {
                validate::tag(&t.key, &t.value)?;
            }
            if i.dataset.name.is_empty() || i.dataset.digest.is_empty() {
                return Err(StoreError::InvalidParameter("A dataset input needs a name and a digest".into()));
            }
        }
        let info = self.s.runs().info(run_id).await?;
        let exp_id = parse_experiment_id(&info.experiment_id)?;
        let mut tx = self.s.w().begin().await?;
        self.s.runs().touch_active(&mut tx, run_id).await?;
        for input in inputs {
            let d = &input.dataset;
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT dataset_uuid FROM datasets WHERE experiment_id = $1 AND name = $2 AND digest = $3",
            )
            .bind(exp_id)
            .bind(&d.name)
            .bind(&d.digest)
            .fetch_optional(&mut *tx)
            .await?;
            let dataset_uuid = match existing {
                Some(id) => id,
                None => {
                    let id = uuid::Uuid::new_v4().simple().to_string();
                    sqlx::query(
                        "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source, schema, profile) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&id)
                    .bind(exp_id)
                    .bind(&d.name)
                    .bind(&d.digest)
                    .bind(&d.source_type)
                    .bind(&d.source)
                    .bind(d.schema.as_deref())
                    .bind(d.profile.as_deref())
                    .execute(&mut *tx)
                    .await?;
                    id
                }
            };
            let input_uuid: Option<String> =
                sqlx::query_scalar("SELECT input_uuid FROM run_inputs WHERE run_uuid = $1 AND dataset_uuid = $2")
                    .bind(run_id)
                    .bind(&dataset_uuid)
                    .fetch_optional(&mut *tx)
                    .await?;
            if input_uuid.is_some() {
                continue;
            }
            let input_uuid = uuid::Uuid::new_v4().simple().to_string();
            sqlx::query("INSERT INTO run_inputs (input_uuid, run_uuid, dataset_uuid) VALUES ($1, $2, $3)")
                .bind(&input_uuid)
                .bind(run_id)
                .bind(&dataset_uuid)
                .execute(&mut *tx)
                .await?;
            for t in &input.tags {
                sqlx::query(
                    "INSERT INTO input_tags (input_uuid, key, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(&input_uuid)
                .bind(&t.key)
                .bind(&t.value)
                .execute(&mut *tx)
                .await?;
            }
        }
        for model_id in model_ids {
            sqlx::query("INSERT INTO run_model_inputs (run_uuid, model_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(run_id)
                .bind(model_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
