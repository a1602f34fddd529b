//! `GET /factory/drift/{experiment_id}`: the loop's cycles in one experiment, newest first —
//! time, pipeline, verdict, rows, share of drifted columns, largest PSI, the version a cycle
//! triggered, its report — with the share and PSI across cycles and each column's drift score
//! across cycles as charts (from each cycle's `cycle.json`). `GET
//! /factory/runs/{run_id}/drift-report`: a cycle's HTML report, shown sandboxed.

use super::chart::{Chart, Point};
use super::{cycles, view, Cycle, MAX_CYCLES};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::logged_models::{NoFields, Pathed};
use crate::served_artifacts::read_small;
use crate::AppState;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Cycles whose `cycle.json` is read for the per-column trend.
const TREND_CYCLES: usize = 60;
/// A `cycle.json` larger than this is not read.
const CYCLE_FILE_CAP: u64 = 4 << 20;
/// A drift report larger than this is not shown.
const REPORT_CAP: u64 = 64 << 20;
/// The report's own HTML is sandboxed: no script, no same-origin access, nothing fetched.
const REPORT_CSP: &str = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// `?pipeline=NAME` narrows the page to one pipeline.
#[derive(Deserialize, Default)]
pub struct Query {
    pipeline: Option<String>,
}

/// The part of `cycle.json` the page reads (`pipeline::report::CycleReport`).
#[derive(Deserialize)]
struct CycleFile {
    #[serde(default)]
    rows: Option<u64>,
    #[serde(default)]
    columns: Vec<ColumnScore>,
}

#[derive(Deserialize)]
struct ColumnScore {
    column: String,
    #[serde(default)]
    stattest: String,
    drift_score: Option<f64>,
    #[serde(default)]
    drift_detected: bool,
}

async fn cycle_file(s: &AppState, c: &Cycle) -> Option<CycleFile> {
    let bytes = read_small(s, &c.run.info.artifact_uri, "cycle.json", CYCLE_FILE_CAP).await.ok().flatten()?;
    serde_json::from_slice(&bytes).ok()
}

pub async fn page(s: AppState, who: Caller, r: Pathed<String, Query>) -> ApiResult<Response> {
    let root = view::Root("../");
    let experiment = s.store.experiments().get(&r.path).await?;
    let ids = vec![experiment.experiment_id.clone()];
    // One pipeline: asked of the search when its name can be written in a filter, else kept here.
    let narrowed = r.msg.pipeline.as_deref().and_then(|p| super::tag_equals(super::PIPELINE_TAG, p));
    let mut cs = cycles(&s, &who, ids.clone(), narrowed.as_deref().unwrap_or(""), MAX_CYCLES).await?;
    if let Some(p) = &r.msg.pipeline {
        cs.retain(|c| &c.pipeline == p);
    }
    let all_pipelines = match &r.msg.pipeline {
        Some(_) => Vec::new(),
        None => super::pipelines(&cs.iter().collect::<Vec<_>>()),
    };
    let files = futures::future::join_all(cs.iter().take(TREND_CYCLES).map(|c| cycle_file(&s, c))).await;
    // Oldest first for the charts.
    let shown: Vec<(&Cycle, Option<&CycleFile>)> = cs.iter().zip(files.iter().map(Option::as_ref)).rev().collect();
    let label = |c: &Cycle| format!("{} {}", view::time_ms(c.run.info.start_time), c.pipeline);
    // A cycle-level metric per shown cycle, marked where the cycle's tag says so.
    let series = |metric: &str, mark: &str| -> Vec<Point> {
        let point = |c: &Cycle| Point {
            label: label(c),
            value: c.metric(metric).unwrap_or(f64::NAN),
            marked: c.tag(mark) == Some("true"),
        };
        shown.iter().map(|(c, _)| point(c)).collect()
    };
    let share = series("share_of_drifted_columns", "factory.drift_detected");
    let psi = series("max_psi", "factory.significant_drift");
    // Column → its score per shown cycle (NaN where a cycle did not test it).
    let mut columns: BTreeMap<&str, (String, Vec<Point>)> = BTreeMap::new();
    for (i, (c, file)) in shown.iter().enumerate() {
        for col in file.map(|f| f.columns.as_slice()).unwrap_or_default() {
            let entry = columns.entry(col.column.as_str()).or_insert_with(|| {
                let empty = shown.iter().map(|(c, _)| Point { label: label(c), value: f64::NAN, marked: false });
                (col.stattest.clone(), empty.collect())
            });
            entry.1[i] =
                Point { label: label(c), value: col.drift_score.unwrap_or(f64::NAN), marked: col.drift_detected };
        }
    }
    let rows: BTreeMap<&str, u64> =
        shown.iter().filter_map(|(c, f)| Some((c.run.info.run_id.as_str(), (*f)?.rows?))).collect();
    let body = html! {
        h1 { "Drift monitoring — " (experiment.name) }
        p {
            (cs.len()) " cycles"
            @if let Some(p) = &r.msg.pipeline { " of pipeline " strong { (p) } " (" a href="?" { "all pipelines" } ")" }
            @else if all_pipelines.len() > 1 {
                " of " @for p in &all_pipelines { a href=(format!("?pipeline={}", view::seg(p))) { (p) } " " }
            }
            " · " a href=(view::mlflow_experiment_href(root, &experiment.experiment_id)) { "experiment in the MLflow UI" }
        }
        @if cs.is_empty() {
            p.muted { "No loop cycles in this experiment yet." }
        } @else {
            div.charts {
                (Chart { title: "Share of drifted columns", points: &share, threshold: None, width: 460, height: 170 }.render())
                (Chart { title: "Largest PSI", points: &psi, threshold: Some((0.2, "PSI 0.2")), width: 460, height: 170 }.render())
            }
            h2 { "Cycles" }
            (cycle_table(root, &cs, &rows))
            h2 { "Per-column drift score across cycles" }
            p.muted { "The test's score per cycle (a p-value for KS and chi-square, a distance for PSI and Wasserstein); "
                "red points are cycles where the column drifted. The newest " (TREND_CYCLES) " cycles." }
            @if columns.is_empty() { p.muted { "No cycle recorded its per-column results (cycle.json)." } }
            div.charts {
                @for (name, (stattest, points)) in &columns {
                    (Chart { title: &format!("{name} ({stattest})"), points, threshold: None, width: 300, height: 140 }.render())
                }
            }
        }
    };
    Ok(view::page(StatusCode::OK, &format!("Drift — {}", experiment.name), &who, root, body))
}

fn cycle_table(root: view::Root, cs: &[Cycle], rows: &BTreeMap<&str, u64>) -> Markup {
    html! {
        table {
            tr {
                th { "Time" } th { "Pipeline" } th { "Verdict" } th { "Rows" } th { "Drifted share" } th { "Largest PSI" }
                th { "Model version triggered" } th { "Report" } th { "Run" }
            }
            @for c in cs {
                tr {
                    td { (view::time_ms(c.run.info.start_time)) }
                    td { (c.pipeline) }
                    td { (super::verdict(c)) }
                    td.num { @if let Some(n) = rows.get(c.run.info.run_id.as_str()) { (n) } }
                    td.num { (view::num(c.metric("share_of_drifted_columns"), 3)) }
                    td.num { (view::num(c.metric("max_psi"), 4)) }
                    td {
                        @if let Some(v) = c.tag("factory.challenger_version") {
                            @match c.model() {
                                Some(m) => a href=(view::lineage_href(root, m, v)) { (m) " v" (v) },
                                None => { "v" (v) },
                            }
                            @if c.tag("factory.promoted") == Some("true") { " " span.good { "promoted" } }
                        }
                    }
                    td {
                        @if c.metric("max_psi").is_some() {
                            a href=(root.to(&format!("runs/{}/drift-report", view::seg(&c.run.info.run_id)))) { "HTML report" }
                        }
                    }
                    td { a href=(view::mlflow_run_href(root, &c.run.info.experiment_id, &c.run.info.run_id)) { (c.run.info.run_name) } }
                }
            }
        }
    }
}

/// The cycle's `drift/drift_report.html`, sandboxed (its own CSP: it runs no script and cannot
/// read this origin, whoever wrote the artifact).
pub async fn report(s: AppState, _: Caller, r: Pathed<String, NoFields>) -> ApiResult<Response> {
    let run = s.store.runs().info(&r.path).await?;
    let html = read_small(&s, &run.artifact_uri, "drift/drift_report.html", REPORT_CAP)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Run '{}' has no drift report", r.path)))?;
    let mut resp = (StatusCode::OK, html).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(REPORT_CSP));
    Ok(resp)
}
