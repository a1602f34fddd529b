//! Our own pages at `/factory/`, rendered on the server (maud, inline SVG, no script): the
//! overview, drift monitoring per experiment (one row per loop cycle, the per-column score
//! trend, the HTML reports), the deployments behind the blue-green gateway (`--gateway-admin`:
//! colours, weights, health, audit log, and switch / rollback / canary forms for those who may
//! manage the model) and the lineage of a model version (data set → training run → version →
//! alias moves → drift reports → deployments).
//!
//! Every page is a route of the one table, with its rule: the pages show only what the caller
//! may read (experiments and models filtered as the REST listings filter them) and offer a form
//! only to callers the form's own route would let through. The forms post to this origin only:
//! a state-changing request whose `Origin` (or `Sec-Fetch-Site`) is not this server is refused
//! before anything is decided.
//!
//! What the loop records and these pages read (the contract with `pipeline::cycle`): a cycle is
//! a run tagged `factory.pipeline` (and `factory.model`, the registered model it watches) with
//! the tags `factory.decision`, `factory.drift_detected`, `factory.champion_version`,
//! `factory.challenger_version`, `factory.served_version`, the metrics `share_of_drifted_columns`
//! and `max_psi`, and the artifacts `cycle.json` and `drift/drift_report.html`.

mod chart;
mod deployments;
mod drift;
mod lineage;
mod view;

pub use deployments::GatewayLink;

use crate::access::{self, readable, Need};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::logged_models::{NoFields, Pathed};
use crate::routes::{Api, GET, POST, ROOT};
use crate::AppState;
use ::auth::permission::{Action, EXPERIMENT, REGISTERED_MODEL};
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use maud::html;
use std::sync::Arc;
use tracking::{Experiment, KeyValue, RunSearch, SharedRun, ViewType};

/// The tag that marks a run as a loop cycle.
const PIPELINE_TAG: &str = "factory.pipeline";
/// At most this many cycles are read per page (the newest).
const MAX_CYCLES: i64 = 1000;
/// At most this many experiments are looked through for cycles.
const MAX_EXPERIMENTS: usize = 1000;
/// At most this many registered models are listed.
const MAX_MODELS: usize = 1000;

pub fn routes(api: &mut Api) {
    api.under(ROOT, |api| {
        // Relative, so that it also works under --static-prefix.
        api.listing(GET, "/factory", |_: AppState, _: Caller, _: ()| async {
            ApiResult::Ok(Redirect::permanent("factory/"))
        });
        api.listing(GET, "/factory/", overview);
        api.rule(GET, "/factory/drift/{experiment_id}", drift::page, |r: &Pathed<String, drift::Query>| {
            Ok(Need::Experiment(r.path.clone(), Action::Read))
        });
        api.rule(GET, "/factory/runs/{run_id}/drift-report", drift::report, |r: &Pathed<String, NoFields>| {
            Ok(Need::Run(r.path.clone(), Action::Read))
        });
        api.listing_with(GET, "/factory/deployments", deployments::page, |r| {
            Ok(r.model.clone().map_or(Need::Anyone, |m| Need::RegisteredModel(m, Action::Read)))
        });
        api.rule(POST, "/factory/deployments/{operation}", deployments::operate, |r| {
            Ok(r.model.clone().map_or(Need::Admin, |m| Need::RegisteredModel(m, Action::Manage)))
        });
        api.rule(
            GET,
            "/factory/models/{name}/versions/{version}",
            lineage::page,
            |r: &Pathed<(String, String), NoFields>| Ok(Need::Version(r.path.0.clone(), Action::Read)),
        );
    });
}

/// Whether the caller may do what `need` says (admins and open servers may do everything).
async fn may(s: &AppState, who: &Caller, need: &Need) -> bool {
    match who.restricted() {
        None => true,
        Some(session) => access::allows(s, session, need).await.unwrap_or(false),
    }
}

/// The active experiments the caller may read.
async fn readable_experiments(s: &AppState, who: &Caller) -> ApiResult<Vec<Experiment>> {
    let mut out = Vec::new();
    let mut token = None;
    while out.len() < MAX_EXPERIMENTS {
        let page = s.store.experiments().search(ViewType::ActiveOnly, "", &[], 1000, token.as_deref()).await?;
        out.extend(
            page.items.into_iter().filter(|e| who.grants().is_none_or(|g| readable(g, EXPERIMENT, &e.experiment_id))),
        );
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    Ok(out)
}

/// A loop cycle as its run records it (the search's shared run, not a copy).
pub(crate) struct Cycle {
    pub run: Arc<SharedRun>,
    pub pipeline: String,
}

impl Cycle {
    fn tag(&self, key: &str) -> Option<&str> {
        tag(&self.run.tags, key)
    }

    fn metric(&self, key: &str) -> Option<f64> {
        self.run.metrics.iter().find(|m| m.key == key).map(|m| m.value)
    }

    /// The registered model the cycle watched (`factory.model`; older cycles do not say).
    fn model(&self) -> Option<&str> {
        self.tag("factory.model")
    }

    fn decision(&self) -> &str {
        self.tag("factory.decision").unwrap_or(if self.tag("factory.error").is_some() { "failed" } else { "running" })
    }
}

fn tag<'a>(tags: &'a [KeyValue], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
}

/// A filter condition that a tag equals `value`, when the value can be written as a filter
/// literal (no quote or backslash); `None` otherwise (the caller filters in memory).
fn tag_equals(key: &str, value: &str) -> Option<String> {
    (!value.contains(['\'', '\\'])).then(|| format!(" AND tags.`{key}` = '{value}'"))
}

/// The newest loop cycles in these experiments (newest first) that also match `and` (a filter
/// condition from [`tag_equals`]); none when the caller's run tier is denied, as
/// `runs/search` shows none then.
async fn cycles(s: &AppState, who: &Caller, experiment_ids: Vec<String>, and: &str, max: i64) -> ApiResult<Vec<Cycle>> {
    if experiment_ids.is_empty() || who.grants().is_some_and(|g| !access::tier_open(g, ::auth::permission::RUN)) {
        return Ok(Vec::new());
    }
    let search = |filter: String| RunSearch {
        experiment_ids: experiment_ids.clone(),
        filter,
        view: ViewType::ActiveOnly,
        max_results: max,
        order_by: vec!["attributes.start_time DESC".into()],
        page_token: None,
    };
    let all = format!("tags.`{PIPELINE_TAG}` LIKE '%'");
    let page = match s.store.runs().search(&search(format!("{all}{and}"))).await {
        // A value the filter language cannot carry: every cycle, narrowed by the caller.
        Err(tracking::StoreError::InvalidParameter(_)) if !and.is_empty() => {
            s.store.runs().search(&search(all)).await?
        }
        other => other?,
    };
    Ok(page
        .items
        .into_iter()
        .map(|run| {
            let pipeline = tag(&run.tags, PIPELINE_TAG).unwrap_or_default().to_string();
            Cycle { run, pipeline }
        })
        .collect())
}

/// The registered models the caller may read (at most [`MAX_MODELS`]), with what the REST
/// listing withholds withheld.
async fn readable_models(s: &AppState, who: &Caller) -> ApiResult<Vec<tracking::RegisteredModel>> {
    let mut out = Vec::new();
    let mut token = None;
    while out.len() < MAX_MODELS {
        let page = s.store.registered_models().search("", &["name ASC".to_string()], 1000, token.as_deref()).await?;
        out.extend(
            page.items.into_iter().filter(|m| who.grants().is_none_or(|g| readable(g, REGISTERED_MODEL, &m.name))),
        );
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    crate::registry::withhold_versions(who, &mut out);
    Ok(out)
}

/// `GET /factory/`: the models the caller may read with their aliases, the experiments holding
/// loop cycles, and the gateway (to those who may read its model).
async fn overview(s: AppState, who: Caller, _: ()) -> ApiResult<Response> {
    let root = view::Root("./");
    let models = readable_models(&s, &who).await?;
    let experiments = readable_experiments(&s, &who).await?;
    let ids: Vec<String> = experiments.iter().map(|e| e.experiment_id.clone()).collect();
    let all = cycles(&s, &who, ids, "", MAX_CYCLES).await?;
    // Per experiment: its pipelines, cycle count (of the newest read) and the latest cycle.
    let mut watched: Vec<(&Experiment, Vec<&Cycle>)> = experiments
        .iter()
        .map(|e| (e, all.iter().filter(|c| c.run.info.experiment_id == e.experiment_id).collect::<Vec<_>>()))
        .filter(|(_, c)| !c.is_empty())
        .collect();
    watched.sort_by_key(|(_, c)| std::cmp::Reverse(c[0].run.info.start_time));
    let gateway = match &s.gateway {
        Some(g) if may(&s, &who, &Need::RegisteredModel(g.model.clone(), Action::Read)).await => Some(g.model.clone()),
        _ => None,
    };
    let body = html! {
        h1 { "MLOps Factory" }
        p.muted { "Drift monitoring, deployments and lineage of the models this tracking server holds. "
            "The MLflow web UI is " a href=(root.to("../")) { "here" } "." }
        h2 { "Drift monitoring" }
        @if watched.is_empty() {
            p.muted { "No loop cycles you may read: `factory loop` records each cycle as a run tagged factory.pipeline." }
        } @else {
            table {
                tr { th { "Experiment" } th { "Pipelines" } th { "Cycles" } th { "Last cycle" } th { "Last verdict" } }
                @for (e, cs) in &watched {
                    tr {
                        td { a href=(root.to(&format!("drift/{}", view::seg(&e.experiment_id)))) { (e.name) } }
                        td { (pipelines(cs).join(", ")) }
                        td.num { (cs.len()) @if all.len() as i64 >= MAX_CYCLES { "+" } }
                        td { (view::time_ms(cs[0].run.info.start_time)) }
                        td { (verdict(cs[0])) }
                    }
                }
            }
        }
        h2 { "Registered models" }
        @if models.is_empty() { p.muted { "No registered models you may read." } } @else {
            table {
                tr { th { "Model" } th { "Aliases" } th { "Latest version" } th { "MLflow" } }
                @for m in &models {
                    tr {
                        td { (m.name) }
                        td {
                            @for (alias, v) in &m.aliases {
                                a.pill href=(view::lineage_href(root, &m.name, v)) { "@" (alias) " → v" (v) } " "
                            }
                        }
                        td {
                            @if let Some(v) = m.latest_versions.iter().map(|v| v.version).max() {
                                a href=(view::lineage_href(root, &m.name, v)) { "v" (v) " lineage" }
                            }
                        }
                        td { a href=(view::mlflow_model_href(root, &m.name)) { "model page" } }
                    }
                }
            }
        }
        h2 { "Deployments" }
        @match &gateway {
            Some(model) => p { "The blue-green gateway serves " strong { (model) } ": "
                a href=(root.to("deployments")) { "colours, weights, health and audit log" } "." },
            None => p.muted { "No gateway you may see is configured (factory server --gateway-admin ADDR --gateway-model NAME)." },
        }
    };
    Ok(view::page(StatusCode::OK, "Overview", &who, root, body))
}

fn pipelines(cs: &[&Cycle]) -> Vec<String> {
    let mut names: Vec<String> = cs.iter().map(|c| c.pipeline.clone()).collect();
    names.sort();
    names.dedup();
    names
}

/// A cycle's decision, coloured: drift-related outcomes red, calm ones green.
fn verdict(c: &Cycle) -> maud::Markup {
    let d = c.decision();
    let class = match d {
        "no_drift" | "skipped" => "good",
        "running" => "muted",
        _ => "bad",
    };
    html! { span class=(class) title=(c.tag("factory.reason").unwrap_or_default()) { (d.replace('_', " ")) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_values_a_filter_literal_can_carry_are_narrowed_in_the_search() {
        assert_eq!(tag_equals("factory.model", "housing").as_deref(), Some(" AND tags.`factory.model` = 'housing'"));
        assert_eq!(tag_equals("factory.model", "o'brien"), None);
        assert_eq!(tag_equals("factory.model", "a\\b"), None);
        let filter = format!("tags.`{PIPELINE_TAG}` LIKE '%'{}", tag_equals("factory.model", "m `x` %_").unwrap());
        assert!(tracking::search::parse_filter(&filter).is_ok(), "{filter}");
    }
}
