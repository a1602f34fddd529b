//! `GET /factory/models/{name}/versions/{version}`: where a version came from and what happened
//! to it — the data sets (name, digest, source) its training run read, the training run and its
//! metrics, the version, every alias and stage move that gave it or took it (who, when), the
//! loop cycles that triggered it or watched it with their drift reports, and the gateway
//! operations that deployed it. Each part shows only what the caller may read.

use super::{cycles, may, readable_experiments, view, Cycle};
use crate::access::{Need, Withheld};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::logged_models::{NoFields, Pathed};
use crate::AppState;
use ::auth::permission::Action;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use tracking::{parse_version, Run};

/// Cycles looked through for this model (newest first).
const CYCLES_SEARCHED: i64 = 1000;

pub async fn page(s: AppState, who: Caller, r: Pathed<(String, String), NoFields>) -> ApiResult<Response> {
    let root = view::Root("../../../");
    let (name, raw) = &r.path;
    let number = parse_version(raw)?;
    let mut version = s.store.model_versions().get(name, number).await?;
    Withheld::of(&who).version(&mut version);
    let v = version.version.to_string();
    // The training run, if the caller may read it.
    let run: Option<Run> = match &version.run_id {
        Some(id) if !id.is_empty() && may(&s, &who, &Need::Run(id.clone(), Action::Read)).await => {
            s.store.runs().get(id).await.ok()
        }
        _ => None,
    };
    let moves: Vec<_> = s
        .store
        .registered_models()
        .history(name, None)
        .await?
        .into_iter()
        .filter(|e| e.version_before == Some(number) || e.version_after == Some(number))
        .collect();
    // Loop cycles of this model that triggered the version, watched it as champion or served it.
    let experiments = readable_experiments(&s, &who).await?;
    let ids = experiments.into_iter().map(|e| e.experiment_id).collect();
    let of_model = super::tag_equals("factory.model", name);
    let all = cycles(&s, &who, ids, of_model.as_deref().unwrap_or(""), CYCLES_SEARCHED).await?;
    let related: Vec<(&Cycle, &'static str)> = all
        .iter()
        .filter(|c| c.model() == Some(name.as_str()))
        .filter_map(|c| {
            let is = |k| c.tag(k) == Some(v.as_str());
            if is("factory.challenger_version") {
                Some((c, "trained it (challenger)"))
            } else if is("factory.champion_version") {
                Some((c, "watched it (champion)"))
            } else if is("factory.served_version") {
                Some((c, "served it"))
            } else {
                None
            }
        })
        .collect();
    let deployments = match &s.gateway {
        Some(gw) if &gw.model == name => {
            match gw.client.clone().with_timeout(super::deployments::READ_TIMEOUT).audit().await {
                Ok(a) => Some(
                    a.into_iter()
                        .filter(|a| {
                            a.from_version.as_deref() == Some(v.as_str()) || a.to_version.as_deref() == Some(v.as_str())
                        })
                        .collect::<Vec<_>>(),
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the gateway's audit log for the lineage page");
                    None
                }
            }
        }
        _ => None,
    };
    let run_withheld = version.run_id.as_deref().is_some_and(|id| !id.is_empty()) && run.is_none();
    let body = html! {
        h1 { "Lineage — " (name) " v" (v) }
        p.muted { a href=(view::mlflow_version_href(root, name, &v)) { "version page in the MLflow UI" } }
        div.flow {
            div.box {
                strong { "Data" }
                @match &run {
                    Some(run) if !run.inputs.is_empty() => {
                        @for i in &run.inputs {
                            div { (i.dataset.name) " " span.muted { "digest " } code { (i.dataset.digest) }
                                @if let Some(ctx) = super::tag(&i.tags, "mlflow.data.context") { " (" (ctx) ")" } }
                            div.muted { (i.dataset.source_type) ": " (i.dataset.source) }
                        }
                    }
                    _ => div.muted { "No data set recorded." },
                }
            }
            span.arrow { "→" }
            div.box {
                strong { "Training run" }
                @match &run {
                    Some(run) => {
                        div { a href=(view::mlflow_run_href(root, &run.info.experiment_id, &run.info.run_id)) { (run.info.run_name) } }
                        div.muted { (view::time_ms(run.info.start_time)) @if !run.info.user_id.is_empty() { " by " (run.info.user_id) } }
                        @for m in run.metrics.iter().take(8) { div { (m.key) " = " (view::num(Some(m.value), 4)) } }
                    }
                    None if run_withheld => div.muted { "Not shown: you may not read this run." },
                    None => div.muted { "No run recorded." },
                }
            }
            span.arrow { "→" }
            div.box {
                strong { "Version " (v) }
                div { "created " (view::time_ms(version.creation_time)) @if let Some(u) = &version.user_id { " by " (u) } }
                div { "stage " (version.current_stage) }
                div { @for a in &version.aliases { span.pill { "@" (a) } " " } }
                div.muted { code { (version.source) } }
            }
        }
        h2 { "Alias and stage moves" }
        @if moves.is_empty() { p.muted { "None." } } @else {
            table {
                tr { th { "Time" } th { "Kind" } th { "Name" } th { "Before → after" } th { "Who" } }
                @for e in &moves {
                    tr {
                        td { (view::time_ms(e.time)) } td { (e.kind) } td { (e.target) }
                        td { (opt_version(e.version_before)) " → " (opt_version(e.version_after)) }
                        td { (e.user_id.clone().unwrap_or_else(|| "–".into())) }
                    }
                }
            }
        }
        h2 { "Drift cycles" }
        @if related.is_empty() { p.muted { "No loop cycle of " (name) " names this version." } } @else {
            table {
                tr { th { "Time" } th { "Pipeline" } th { "Role" } th { "Verdict" } th { "Drifted share" } th { "Largest PSI" }
                     th { "Report" } }
                @for (c, role) in &related {
                    tr {
                        td { (view::time_ms(c.run.info.start_time)) }
                        td { a href=(root.to(&format!("drift/{}", view::seg(&c.run.info.experiment_id)))) { (c.pipeline) } }
                        td { (role) } td { (super::verdict(c)) }
                        td.num { (view::num(c.metric("share_of_drifted_columns"), 3)) }
                        td.num { (view::num(c.metric("max_psi"), 4)) }
                        td { @if c.metric("max_psi").is_some() {
                            a href=(root.to(&format!("runs/{}/drift-report", view::seg(&c.run.info.run_id)))) { "HTML report" } } }
                    }
                }
            }
        }
        h2 { "Deployments" }
        @match &deployments {
            None => p.muted { "No gateway of this model is configured (factory server --gateway-admin, --gateway-model)." },
            Some(d) if d.is_empty() => p.muted { "The gateway's audit log has no operation with this version." },
            Some(d) => table {
                tr { th { "Time" } th { "Operation" } th { "From → to" } th { "Versions" } th { "Who" } th { "Outcome" } }
                @for a in d.iter().rev() {
                    tr {
                        td { (a.time) } td { (a.op) }
                        td { (a.from.map(|c| c.to_string()).unwrap_or_default()) " → " (a.to.map(|c| c.to_string()).unwrap_or_default()) }
                        td { (a.from_version.clone().unwrap_or_default()) " → " (a.to_version.clone().unwrap_or_default()) }
                        td { (a.who) } td { (a.outcome) }
                    }
                }
            },
        }
    };
    Ok(view::page(StatusCode::OK, &format!("Lineage — {name} v{v}"), &who, root, body))
}

fn opt_version(v: Option<i64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("v{v}"))
}
