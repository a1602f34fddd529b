//! Properties of the whole search path, from request text to SQL to the database: any
//! filter and `order_by` either compiles to a statement that holds none of the request's
//! text, or is refused as an invalid parameter (a 400); on a real SQLite store, every search
//! answers rows or that refusal, never a database error (a 500).

use super::{compile_search, RunSearch, SearchKind, Store};
use crate::db::Dialect;
use crate::error::StoreError;
use crate::model::{KeyValue, Metric, ViewType};
use proptest::prelude::*;
use std::sync::OnceLock;

/// The marker every generated key and value carries, to see whether it reached the SQL.
const MARK: &str = "Zq";

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Filters that are mostly well formed, over every entity and a mix of real and made-up keys.
fn filter() -> impl Strategy<Value = String> {
    let ident = prop_oneof![
        Just("metrics.m".to_string()),
        Just("params.p".to_string()),
        Just("tags.t".to_string()),
        Just("tags.`mlflow.runName`".to_string()),
        "[a-z_]{1,14}".prop_map(|k| format!("attributes.{k}")),
        prop_oneof![
            Just("name"),
            Just("run_id"),
            Just("run_name"),
            Just("status"),
            Just("start_time"),
            Just("experiment_id"),
            Just("version_number"),
            Just("source_path"),
            Just("creation_time"),
            Just("model_id"),
            Just("lifecycle_stage"),
            Just("user_id"),
            Just("artifact_uri"),
        ]
        .prop_map(str::to_string),
        prop_oneof![Just("name"), Just("digest"), Just("context"), Just("other")].prop_map(|k| format!("datasets.{k}")),
        "[a-z ]{1,6}".prop_map(|k| format!("metrics.`{MARK}{k}`")),
        "[a-z]{1,6}".prop_map(|k| format!("tags.{MARK}{k}")),
        "[a-z]{1,6}".prop_map(|k| format!("bogus.{k}")),
    ];
    let value = prop_oneof![
        "\\PC{0,8}".prop_map(|v| quote(&format!("{MARK}{v}"))),
        any::<i32>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
        Just("'12'".to_string()),
        Just("'1.5e3'".to_string()),
        Just("'-'".to_string()),
        prop::collection::vec("\\PC{0,4}", 1..3).prop_map(|v| format!(
            "({})",
            v.iter().map(|s| quote(&format!("{MARK}{s}"))).collect::<Vec<_>>().join(",")
        )),
    ];
    let op = prop_oneof![
        Just("="),
        Just("!="),
        Just(">"),
        Just(">="),
        Just("<"),
        Just("<="),
        Just("LIKE"),
        Just("ILIKE"),
        Just("IN"),
        Just("NOT IN"),
        Just("IS NULL"),
        Just("IS NOT NULL"),
    ];
    let clause =
        (ident, op, value).prop_map(
            |(i, op, v)| {
                if op.starts_with("IS") {
                    format!("{i} {op}")
                } else {
                    format!("{i} {op} {v}")
                }
            },
        );
    prop::collection::vec(clause, 0..4).prop_map(|c| c.join(" AND "))
}

fn order_by() -> impl Strategy<Value = Vec<String>> {
    let one = prop_oneof![
        prop_oneof![
            Just("metrics.m"),
            Just("params.p DESC"),
            Just("tags.t ASC"),
            Just("name"),
            Just("start_time DESC"),
            Just("attributes.run_name"),
            Just("version_number"),
            Just("creation_timestamp"),
            Just("datasets.name"),
            Just("bogus.x"),
            Just("metrics.`a b` DESC"),
        ]
        .prop_map(str::to_string),
        "[a-z_]{1,12}( (ASC|DESC|sideways))?",
        "[a-z ]{1,6}".prop_map(|k| format!("metrics.`{MARK}{k}` DESC")),
        "\\PC{0,20}",
    ];
    prop::collection::vec(one, 0..3)
}

/// Ok(sql) holds no request text; Err is an invalid parameter.
fn check_compiled(kind: SearchKind, got: crate::Result<String>) -> Result<(), TestCaseError> {
    match got {
        Ok(sql) => prop_assert!(!sql.contains(MARK), "{kind:?}: request text in the SQL: {sql}"),
        Err(StoreError::InvalidParameter(_)) => {}
        Err(e) => prop_assert!(false, "{kind:?}: {e:?}"),
    }
    Ok(())
}

/// A SQLite store in memory with a run (metric, param, tags) and a registered model version,
/// on a runtime of its own, shared by every case.
fn store() -> &'static (tokio::runtime::Runtime, Store) {
    static STORE: OnceLock<(tokio::runtime::Runtime, Store)> = OnceLock::new();
    STORE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let store = rt.block_on(async {
            let store = Store::open("sqlite://", "mlflow-artifacts:").await.unwrap();
            let run = store.runs().create("0", "u", Some("r"), Some(1), &[]).await.unwrap();
            let kv = |k: &str, v: &str| KeyValue { key: k.into(), value: v.into() };
            let metric = Metric {
                key: "m".into(),
                value: 0.5,
                timestamp: 1,
                step: 0,
                model_id: None,
                dataset_name: None,
                dataset_digest: None,
            };
            store.runs().log_batch(&run.info.run_id, &[metric], &[kv("p", "1")], &[kv("t", "x")]).await.unwrap();
            store.registered_models().create("model", None, &[kv("t", "x")]).await.unwrap();
            store
                .model_versions()
                .create(super::NewModelVersion {
                    name: "model".into(),
                    source: format!("runs:/{}/model", run.info.run_id),
                    run_id: Some(run.info.run_id.clone()),
                    run_link: None,
                    description: None,
                    model_id: None,
                    tags: vec![kv("t", "x")],
                    user_id: None,
                })
                .await
                .unwrap();
            store
        });
        (rt, store)
    })
}

/// A search's answer: rows, or an invalid parameter; never a database error.
fn check_answered<T>(what: &str, got: crate::Result<T>) -> Result<(), TestCaseError> {
    match got {
        Ok(_) | Err(StoreError::InvalidParameter(_)) => Ok(()),
        Err(e) => Err(TestCaseError::fail(format!("{what}: {e:?}"))),
    }
}

proptest! {
    #[test]
    fn any_search_compiles_without_request_text_or_is_invalid(filter in filter(), order_by in order_by()) {
        for kind in SearchKind::ALL {
            for dialect in [Dialect::Sqlite, Dialect::Postgres] {
                check_compiled(kind, compile_search(kind, dialect, &filter, &order_by))?;
            }
        }
    }

    #[test]
    fn any_text_compiles_or_is_invalid(filter in "\\PC{0,60}", order in "\\PC{0,30}") {
        for kind in SearchKind::ALL {
            check_compiled(kind, compile_search(kind, Dialect::Postgres, &filter, std::slice::from_ref(&order)))?;
        }
    }

    #[test]
    fn sqlite_answers_every_search_with_rows_or_a_400(filter in filter(), order_by in order_by()) {
        let (rt, store) = store();
        rt.block_on(async {
            let search = RunSearch {
                experiment_ids: vec!["0".into()],
                filter: filter.clone(),
                view: ViewType::All,
                max_results: 10,
                order_by: order_by.clone(),
                page_token: None,
            };
            check_answered("runs", store.runs().search(&search).await)?;
            check_answered("experiments", store.experiments().search(ViewType::All, &filter, &order_by, 10, None).await)?;
            check_answered("models", store.registered_models().search(&filter, &order_by, 10, None).await)?;
            check_answered("versions", store.model_versions().search(&filter, &order_by, 10, None).await)?;
            let order_by = order_by.iter().map(|o| crate::LoggedModelOrder { field: o.clone(), ascending: true, dataset: None });
            let search = crate::LoggedModelSearch {
                experiment_ids: vec!["0".into()],
                filter: filter.clone(),
                order_by: order_by.collect(),
                max_results: 10,
                ..Default::default()
            };
            check_answered("logged models", store.logged_models().search(&search).await)
        })?;
    }
}
