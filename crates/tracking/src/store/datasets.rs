//! Datasets: the inputs a run records (datasets, deduplicated per experiment by name and
//! digest, with the input's tags; and the logged models it used).

use super::{parse_experiment_id, validate, Store};
use crate::error::{Result, StoreError};
use crate::model::DatasetInput;

/// Datasets of one store (`store.datasets()`).
#[derive(Clone, Copy)]
pub struct Datasets<'s> {
    pub(super) s: &'s Store,
}

impl Datasets<'_> {
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
