//! The metric-gated canary (`POST /canary`), what Argo Rollouts' canary steps with an
//! AnalysisRun, or Flagger, do — inside the gateway, from its own counters.
//!
//! The new colour passes the health gate first. Then, for each step, its share of new requests
//! is set (persisted and audited like `POST /weights`) and the step is watched on a short tick:
//! the new colour's requests, failures (transport errors and 5xx) and latency buckets since the
//! step began, its passive health, the differences between the two colours' predictions on
//! mirrored requests, and, at the step's end, a Prometheus query. As soon as a limit is broken
//! on at least `min_requests` requests the canary aborts: all new requests go back to the active
//! colour within one tick, and the reason is recorded. A step that passes its whole interval
//! advances; after the 100 % step the new colour becomes the active one through the ordinary
//! health-gated switch (which drains the old colour).
//!
//! Architecture Invariant: while a canary runs, only the canary moves traffic — `switch`,
//! `rollback` and `weights` are refused (409) until it ends or `POST /canary/abort` ends it. A
//! change it did not make (an automatic failover) ends it without touching the routing.
//!
//! The canary lives in the gateway process: a restarted gateway keeps the last weights (they are
//! in the state file) but not the canary, which is recorded as started without an end.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use admin_api::{CanaryPhase, CanaryRequest, CanaryStatus, PrometheusCheck, StepVerdict};
use http_body_util::BodyExt;
use serde::Deserialize;

use crate::audit::AuditRecord;
use crate::control::{Gateway, SwitchRequest};
use crate::error::GatewayError;
use crate::health;
use crate::state::{Colour, RoutingState, Weights};
use crate::upstream::{Snapshot, BUCKETS as LATENCY_BUCKETS};

/// The steps when a request gives none.
pub const DEFAULT_STEPS: [u32; 4] = [5, 25, 50, 100];
/// The step length when a request gives none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_ERROR_RATE: f64 = 0.01;
pub const DEFAULT_MIN_REQUESTS: u64 = 20;
/// How long a Prometheus query, or the new colour's drift sketches, may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read from Prometheus or from the new colour's `GET /drift/sketch`.
const CHECK_ANSWER_LIMIT: usize = sketch::SketchAnswer::MAX_BYTES;

/// A checked canary request.
#[derive(Clone, Debug)]
pub struct Plan {
    pub to: Option<Colour>,
    pub steps: Vec<u32>,
    pub interval: Duration,
    pub max_error_rate: f64,
    pub max_p99_ms: Option<f64>,
    pub min_requests: u64,
    pub max_shadow_difference: Option<f64>,
    pub max_drift_share: Option<f64>,
    pub prometheus: Option<PrometheusCheck>,
    pub expect_version: Option<String>,
    pub who: Option<String>,
}

impl Plan {
    /// Checks a request ([`CanaryRequest::validate`]); 100 is added to the steps when missing.
    pub fn new(r: CanaryRequest, who: Option<String>) -> Result<Plan, GatewayError> {
        r.validate().map_err(GatewayError::BadInput)?;
        let mut steps = if r.steps.is_empty() { DEFAULT_STEPS.to_vec() } else { r.steps };
        if steps.last() != Some(&100) {
            steps.push(100);
        }
        Ok(Plan {
            to: r.to,
            steps,
            interval: r.interval_secs.map_or(DEFAULT_INTERVAL, Duration::from_secs_f64),
            max_error_rate: r.max_error_rate.unwrap_or(DEFAULT_MAX_ERROR_RATE),
            max_p99_ms: r.max_p99_ms,
            min_requests: r.min_requests.unwrap_or(DEFAULT_MIN_REQUESTS),
            max_shadow_difference: r.max_shadow_difference,
            max_drift_share: r.max_drift_share,
            prometheus: r.prometheus,
            expect_version: r.expect_version,
            who,
        })
    }

    /// How often a step is looked at.
    fn tick(&self) -> Duration {
        (self.interval / 10).clamp(Duration::from_millis(10), Duration::from_millis(250))
    }

    fn criteria(&self) -> String {
        let mut c = vec![format!("error rate <= {}%", self.max_error_rate * 100.0)];
        if let Some(p) = self.max_p99_ms {
            c.push(format!("p99 <= {p} ms"));
        }
        if let Some(d) = self.max_shadow_difference {
            c.push(format!("shadow difference p99 <= {d}"));
        }
        if let Some(d) = self.max_drift_share {
            c.push(format!("share of drifted features <= {d}"));
        }
        if let Some(p) = &self.prometheus {
            c.push(format!("prometheus {:?} <= {}", p.query, p.max));
        }
        format!(
            "steps {:?}, {:?} each, on >= {} requests: {}",
            self.steps,
            self.interval,
            self.min_requests,
            c.join(", ")
        )
    }
}

/// What the new colour did since a point in time.
#[derive(Clone, Debug, Default)]
struct Window {
    requests: u64,
    errors: u64,
    latency: Snapshot,
    shadow: Snapshot,
}

impl Window {
    fn since(&self, earlier: &Window) -> Window {
        Window {
            requests: self.requests.saturating_sub(earlier.requests),
            errors: self.errors.saturating_sub(earlier.errors),
            latency: self.latency.since(&earlier.latency),
            shadow: self.shadow.since(&earlier.shadow),
        }
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// The step's figures so far, and whether they break a limit (`Some(reason)`).
fn judge(plan: &Plan, to: Colour, w: &Window, at_end: bool, step: usize, weight: u32) -> (StepVerdict, Option<String>) {
    let rate = if w.requests == 0 { 0.0 } else { w.errors as f64 / w.requests as f64 };
    let p99_ms = w.latency.quantile(&LATENCY_BUCKETS, 0.99).map(|s| s * 1000.0);
    let shadow_p99 = w.shadow.quantile(&crate::difference::BUCKETS, 0.99);
    let enough = w.requests > 0 && w.requests >= plan.min_requests;
    let mut breach = None;
    if enough && rate > plan.max_error_rate {
        breach = Some(format!(
            "error rate {:.1}% ({} of {} requests) is over the limit {}%",
            rate * 100.0,
            w.errors,
            w.requests,
            plan.max_error_rate * 100.0
        ));
    }
    if let (true, None, Some(max), Some(p)) = (enough, &breach, plan.max_p99_ms, p99_ms) {
        if p > max {
            breach = Some(format!("p99 latency {p:.1} ms on {} requests is over the limit {max} ms", w.requests));
        }
    }
    if let (None, Some(max)) = (&breach, plan.max_shadow_difference) {
        let compared = w.shadow.count;
        match shadow_p99 {
            Some(d) if d > max && compared >= plan.min_requests => {
                breach = Some(format!(
                    "p99 difference between the colours' predictions {d:.3e} on {compared} mirrored requests is over \
                     the limit {max}"
                ))
            }
            _ if at_end && compared < plan.min_requests.max(1) => {
                breach = Some(format!(
                    "only {compared} mirrored requests were compared in the step; at least {} are needed (is shadow \
                     traffic on?)",
                    plan.min_requests.max(1)
                ))
            }
            _ => {}
        }
    }
    if at_end && breach.is_none() && !enough && plan.min_requests > 0 {
        breach = Some(format!(
            "only {} requests reached {to} in {:?}; at least {} are needed to judge the step",
            w.requests, plan.interval, plan.min_requests
        ));
    }
    let verdict = StepVerdict {
        step,
        weight,
        time: now(),
        verdict: if breach.is_some() { "abort" } else { "advance" }.into(),
        requests: w.requests,
        errors: w.errors,
        error_rate: rate,
        p99_ms,
        shadow_compared: w.shadow.count,
        shadow_difference_p99: shadow_p99,
        prometheus_value: None,
        drift_rows: None,
        drift_share: None,
        detail: breach.clone().unwrap_or_else(|| "within every limit".into()),
    };
    (verdict, breach)
}

/// The Prometheus HTTP API's answer to an instant query.
#[derive(Deserialize)]
struct PromReply {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<PromData>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum PromData {
    Vector(Vec<PromSample>),
    Scalar((f64, String)),
    Matrix(serde::de::IgnoredAny),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct PromSample {
    value: (f64, String),
}

/// `GET url` within [`CHECK_TIMEOUT`]: the status and the body (at most [`CHECK_ANSWER_LIMIT`]).
async fn get(gw: &Gateway, url: &str) -> Result<(http::StatusCode, bytes::Bytes), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let req = http::Request::get(uri)
        .body(http_body_util::Either::Right(http_body_util::Full::new(bytes::Bytes::new())))
        .map_err(|e| e.to_string())?;
    let call = async {
        let resp = gw.clients.http1.request(req).await.map_err(|e| crate::client::error_chain(&e))?;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), CHECK_ANSWER_LIMIT)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok((status, body))
    };
    match tokio::time::timeout(CHECK_TIMEOUT, call).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
    }
}

/// `GET {url}/api/v1/query?query=...` with `{colour}` replaced: the first value.
async fn prometheus_value(gw: &Gateway, p: &PrometheusCheck, to: Colour) -> Result<f64, String> {
    let query = p.query.replace("{colour}", to.as_str());
    let encoded: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
    let url = format!("{}/api/v1/query?query={encoded}", p.url.trim_end_matches('/'));
    let value = async {
        let (status, body) = get(gw, &url).await?;
        let reply: PromReply =
            serde_json::from_slice(&body).map_err(|e| format!("HTTP {status}: not a Prometheus API answer: {e}"))?;
        if reply.status != "success" {
            return Err(reply.error.unwrap_or_else(|| format!("status {}", reply.status)));
        }
        let text = match reply.data {
            Some(PromData::Vector(v)) => {
                v.into_iter().next().map(|s| s.value.1).ok_or("the query returned no series")?
            }
            Some(PromData::Scalar((_, v))) => v,
            _ => return Err("expected a vector or a scalar".into()),
        };
        let v: f64 = text.parse().map_err(|_| format!("value {text:?} is not a number"))?;
        if v.is_nan() {
            return Err("the query returned NaN".into());
        }
        Ok(v)
    };
    value.await.map_err(|e| format!("prometheus query {query:?}: {e}"))
}

/// What the new colour scored since the canary began, judged for drift against its model's
/// reference profile: the rows and the report.
struct DriftLook {
    rows: u64,
    report: drift::DriftReport,
}

impl DriftLook {
    /// "3 of 8 features drifted (0.375: a, b, c) in 420 rows".
    fn describe(&self) -> String {
        let r = &self.report;
        let drifted: Vec<&str> = r.columns.iter().filter(|c| c.drift_detected).map(|c| c.name.as_str()).collect();
        let names = if drifted.is_empty() { String::new() } else { format!(": {}", drifted.join(", ")) };
        format!(
            "{} of {} features drifted ({:.3}{names}) in {} rows",
            r.number_of_drifted_columns, r.number_of_columns, r.share_of_drifted_columns, self.rows
        )
    }
}

/// `GET /drift/sketch?since=<canary start>&open=true` on the new colour: the sketch of the
/// version the canary expects (else of the profile with the most rows), checked against its
/// profile and judged as the loop judges sketches ([`drift::online::report`]).
async fn drift_look(gw: &Gateway, to: Colour, since_ms: u64, version: Option<&str>) -> Result<DriftLook, String> {
    let url = format!("http://{}/drift/sketch?since={since_ms}&open=true", gw.upstream(to).address);
    let look = async {
        let (status, body) = get(gw, &url).await?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(format!("HTTP {status}: {text}"));
        }
        let answer: sketch::SketchAnswer =
            serde_json::from_slice(&body).map_err(|e| format!("not a drift sketch answer: {e}"))?;
        answer.check().map_err(|e| e.to_string())?;
        if answer.sketches.is_empty() {
            return Err("nothing was sketched since the canary began (only models whose package carries a drift \
                        profile, as `factory train` writes, are sketched)"
                .into());
        }
        let seen: Vec<String> = answer.sketches.iter().map(|e| e.model_version.clone()).collect();
        let entry = answer
            .sketches
            .into_iter()
            .filter(|e| version.is_none_or(|v| e.model_version == v))
            .max_by_key(|e| e.sketch.rows)
            .ok_or_else(|| {
                format!(
                    "no rows of version {} were sketched since the canary began (versions sketched: {})",
                    version.unwrap_or_default(),
                    seen.join(", ")
                )
            })?;
        let reference = entry.profile.reference_label(&entry.model_version);
        let options = drift::DriftOptions::new(reference, format!("{to} since the canary began"));
        let report = drift::online::report(&entry.profile, &entry.sketch, &options).map_err(|e| e.to_string())?;
        Ok(DriftLook { rows: entry.sketch.rows, report })
    };
    look.await.map_err(|e| format!("drift sketches of {to} ({url}): {e}"))
}

/// Which canary a record or check is about: its operation id, who started it, and the colours.
struct Run {
    op_id: String,
    who: String,
    from: Colour,
    to: Colour,
}

impl Run {
    /// An audit record of `op` for this canary (its operation id, who, the colours).
    fn record(&self, op: &str) -> AuditRecord {
        let mut rec = crate::audit::record(op, &self.who);
        rec.operation_id = self.op_id.clone();
        rec.from = Some(self.from);
        rec.to = Some(self.to);
        rec
    }
}

impl Gateway {
    fn window(&self, to: Colour) -> Window {
        let u = self.upstream(to);
        Window {
            requests: u.requests.load(Ordering::Relaxed),
            errors: u.errors.load(Ordering::Relaxed),
            latency: u.latency.snapshot(),
            shadow: self.shadow_difference.snapshot(),
        }
    }

    /// Health-gates the new colour, sets the first step and starts the canary in the background.
    pub async fn start_canary(self: &Arc<Self>, plan: Plan) -> Result<CanaryStatus, GatewayError> {
        let _op = self.ops.lock().await;
        if let Some(c) = self.canary.running() {
            return Err(GatewayError::Conflict(format!(
                "a canary from {} to {} is running (step {}, {}%); abort it first",
                c.from, c.to, c.step, c.weight
            )));
        }
        let who = self.who(plan.who.clone());
        let current = self.routing_now();
        let from = current.active;
        let to = plan.to.unwrap_or(from.other());
        let mut rec = crate::audit::record("canary", &who);
        rec.from = Some(from);
        rec.to = Some(to);
        if to == from {
            let msg = format!("{to} is the active colour already; a canary moves traffic to the other one");
            self.refuse(&mut rec, &msg);
            return Err(GatewayError::Conflict(msg));
        }
        let target = self.upstream(to);
        let report = health::check(
            &self.clients,
            to,
            &target.address,
            plan.expect_version.as_deref(),
            self.settings.health_timeout,
        )
        .await;
        if report.model_version.is_some() {
            target.set_model_version(report.model_version.clone());
        }
        rec.to_version = report.model_version.clone();
        rec.from_version = self.upstream(from).model_version();
        rec.health = Some(report.clone());
        if !report.ok {
            let msg = format!(
                "refusing a canary to {to} ({}): {}; traffic stays on {from}",
                target.address,
                report.failures()
            );
            self.refuse(&mut rec, &msg);
            return Err(GatewayError::Refused(msg));
        }
        target.mark_healthy();
        let first = plan.steps[0];
        let next = RoutingState { weights: Weights::share(to, first), ..current };
        rec.weights = Some(next.weights);
        if let Err(e) = self.commit(next) {
            rec.outcome = "error".into();
            rec.detail = Some(e.to_string());
            self.audit(&rec);
            return Err(e);
        }
        rec.detail = Some(format!("canary started: {}", plan.criteria()));
        self.audit(&rec);
        let status = CanaryStatus {
            operation_id: rec.operation_id.clone(),
            from,
            to,
            phase: CanaryPhase::Running,
            steps: plan.steps.clone(),
            step: 0,
            weight: first,
            interval_secs: plan.interval.as_secs_f64(),
            started_at: rec.time.clone(),
            finished_at: None,
            reason: None,
            verdicts: Vec::new(),
        };
        *self.canary.abort.lock().expect("canary lock") = None;
        *self.canary.status.lock().expect("canary lock") = Some(status.clone());
        tracing::info!(%from, %to, "canary started: {}", plan.criteria());
        let gw = self.clone();
        let run = Run { op_id: status.operation_id.clone(), who, from, to };
        tokio::spawn(async move { gw.run_canary(plan, run).await });
        Ok(status)
    }

    /// Asks the running canary to stop and waits until it has moved traffic back; 409 when none
    /// runs, or when it is still ending after 10 s (its promotion's drain).
    pub async fn abort_canary(&self, who: Option<String>) -> Result<CanaryStatus, GatewayError> {
        if self.canary.running().is_none() {
            return Err(GatewayError::Conflict("no canary is running".into()));
        }
        *self.canary.abort.lock().expect("canary lock") = Some(format!("aborted by {}", self.who(who)));
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.canary.running().is_some() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        match self.canary.current() {
            Some(c) if c.phase != CanaryPhase::Running => Ok(c),
            _ => Err(GatewayError::Conflict(
                "the canary is still ending (its promotion is draining); see GET /canary".into(),
            )),
        }
    }

    /// Why the routing is not the canary's any more (`share` of new requests on `to`, `from`
    /// active), if it is not: someone else (an automatic failover) moved it.
    fn moved_elsewhere(&self, run: &Run, share: u32) -> Option<String> {
        let r = self.routing_now();
        (r.active != run.from || r.weights != Weights::share(run.to, share)).then(|| {
            format!(
                "the routing changed outside the canary (active {}, weights blue={} green={}); left as it is",
                r.active, r.weights.blue, r.weights.green
            )
        })
    }

    async fn run_canary(self: Arc<Self>, plan: Plan, run: Run) {
        let (tick, to) = (plan.tick(), run.to);
        // Drift is judged on everything the new colour scored since the canary began.
        let began_ms = sketch::now_ms();
        let mut share = plan.steps[0];
        for (i, &next_share) in plan.steps.iter().enumerate() {
            if i > 0 {
                let _op = self.ops.lock().await;
                if let Some(why) = self.moved_elsewhere(&run, share) {
                    return self.finish(&run, CanaryPhase::Aborted, None, why);
                }
                let next = RoutingState { weights: Weights::share(to, next_share), ..self.routing_now() };
                if let Err(e) = self.commit(next) {
                    drop(_op);
                    return self.end_canary(&run, share, None, format!("step {i} not set: {e}")).await;
                }
                share = next_share;
                self.canary.update(|s| {
                    s.step = i;
                    s.weight = share;
                });
                tracing::info!(%to, share, "canary step {i}");
            }
            let start = self.window(to);
            let began = Instant::now();
            let verdict = loop {
                tokio::time::sleep(tick).await;
                let asked = self.canary.abort.lock().expect("canary lock").take();
                if let Some(why) = asked {
                    return self.end_canary(&run, share, None, why).await;
                }
                if let Some(why) = self.moved_elsewhere(&run, share) {
                    return self.finish(&run, CanaryPhase::Aborted, None, why);
                }
                let at_end = began.elapsed() >= plan.interval;
                let (mut v, mut breach) = judge(&plan, to, &self.window(to).since(&start), at_end, i, share);
                if !self.upstream(to).is_healthy() {
                    breach = Some(format!("{to} was marked unhealthy by passive health"));
                }
                if let (None, true, Some(max)) = (&breach, at_end, plan.max_drift_share) {
                    let version = plan.expect_version.as_deref();
                    let mut look = drift_look(&self, to, began_ms, version).await;
                    let needed = plan.min_requests.max(1);
                    if look.as_ref().is_ok_and(|l| l.rows < needed) {
                        // Requests are counted when routed and rows sketched once scored: give
                        // the ones still in flight one more tick.
                        tokio::time::sleep(tick).await;
                        look = drift_look(&self, to, began_ms, version).await;
                    }
                    match look {
                        Ok(look) => {
                            (v.drift_rows, v.drift_share) =
                                (Some(look.rows), Some(look.report.share_of_drifted_columns));
                            if look.rows < needed {
                                breach = Some(format!(
                                    "only {} rows scored by {to} were sketched since the canary began; at least \
                                     {needed} are needed to judge drift",
                                    look.rows
                                ));
                            } else if look.report.share_of_drifted_columns > max {
                                breach = Some(format!("drift: {}, over the limit {max}", look.describe()));
                            }
                        }
                        Err(why) => breach = Some(why),
                    }
                }
                if let (None, true, Some(p)) = (&breach, at_end, &plan.prometheus) {
                    match prometheus_value(&self, p, to).await {
                        Ok(x) => {
                            v.prometheus_value = Some(x);
                            if x > p.max {
                                breach = Some(format!("prometheus {:?} = {x} is over the limit {}", p.query, p.max));
                            }
                        }
                        Err(why) => breach = Some(why),
                    }
                }
                if let Some(why) = breach {
                    v.verdict = "abort".into();
                    v.detail = why.clone();
                    return self.end_canary(&run, share, Some(v), why).await;
                }
                if at_end {
                    break v;
                }
            };
            self.record_step(&run, verdict);
        }
        // Every step passed: the new colour becomes the active one (health-gated, drains the old),
        // unless an abort came during the last step's checks.
        let _op = self.ops.lock().await;
        let asked = self.canary.abort.lock().expect("canary lock").take();
        if let Some(why) = asked {
            drop(_op);
            return self.end_canary(&run, share, None, why).await;
        }
        if let Some(why) = self.moved_elsewhere(&run, share) {
            return self.finish(&run, CanaryPhase::Aborted, None, why);
        }
        let req = SwitchRequest {
            to: Some(to),
            expect_version: plan.expect_version.clone(),
            who: Some(run.who.clone()),
            ..Default::default()
        };
        match self.switch_locked("canary-promote", to, req).await {
            Ok(r) => {
                let why = format!("every step passed; {to} is active (switch {})", r.operation_id);
                self.canary.count("promote");
                self.finish(&run, CanaryPhase::Promoted, None, why);
            }
            Err(e) => {
                drop(_op);
                let why = format!("the final switch was refused: {e}");
                self.end_canary(&run, share, None, why).await;
            }
        }
    }

    /// One step passed: recorded in the status and the audit log.
    fn record_step(&self, run: &Run, v: StepVerdict) {
        let mut rec = run.record("canary-step");
        rec.weights = Some(Weights::share(run.to, v.weight));
        rec.detail = Some(v.summary());
        self.audit(&rec);
        self.canary.count(&v.verdict);
        self.canary.update(|s| s.verdicts.push(v));
    }

    /// Aborts: all new requests back on `from` (when the routing is still the canary's at
    /// `share`), the verdict and the reason recorded.
    async fn end_canary(&self, run: &Run, share: u32, verdict: Option<StepVerdict>, why: String) {
        let _op = self.ops.lock().await;
        if let Some(elsewhere) = self.moved_elsewhere(run, share) {
            return self.finish(run, CanaryPhase::Aborted, verdict, format!("{why}; {elsewhere}"));
        }
        let (from, to) = (run.from, run.to);
        let restored = RoutingState { weights: Weights::all(from), ..self.routing_now() };
        let why = match self.commit(restored) {
            Ok(()) => format!("{why}; all traffic back on {from}"),
            Err(e) => format!("{why}; moving traffic back on {from} failed: {e}"),
        };
        tracing::warn!(%from, %to, "canary aborted: {why}");
        self.finish(run, CanaryPhase::Aborted, verdict, why);
    }

    fn finish(&self, run: &Run, phase: CanaryPhase, verdict: Option<StepVerdict>, why: String) {
        let mut rec = run.record(if phase == CanaryPhase::Promoted { "canary-end" } else { "canary-abort" });
        rec.weights = Some(self.routing_now().weights);
        rec.outcome = if phase == CanaryPhase::Promoted { "ok" } else { "aborted" }.into();
        rec.detail = Some(match &verdict {
            Some(v) => format!("{why} ({})", v.summary()),
            None => why.clone(),
        });
        self.audit(&rec);
        if phase == CanaryPhase::Aborted {
            self.canary.count("abort");
        }
        let finished = rec.time;
        let weight = rec.weights.map_or(0, |w| w.of(run.to));
        self.canary.update(|s| {
            s.phase = phase;
            s.reason = Some(why);
            s.finished_at = Some(finished);
            s.weight = weight;
            s.verdicts.extend(verdict);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(body: &str) -> Result<Plan, GatewayError> {
        Plan::new(serde_json::from_str(body).unwrap(), None)
    }

    #[test]
    fn plans_are_checked_and_end_at_100() {
        let p = plan("{}").unwrap();
        assert_eq!((p.steps, p.interval, p.min_requests), (vec![5, 25, 50, 100], DEFAULT_INTERVAL, 20));
        assert_eq!(plan(r#"{"steps":[10,50]}"#).unwrap().steps, vec![10, 50, 100]);
        for bad in [
            r#"{"steps":[50,10]}"#,
            r#"{"steps":[0,10]}"#,
            r#"{"steps":[10,101]}"#,
            r#"{"interval_secs":0}"#,
            r#"{"max_error_rate":1.5}"#,
            r#"{"max_p99_ms":-1}"#,
            r#"{"prometheus":{"url":"file:///etc/passwd","query":"up","max":1}}"#,
        ] {
            assert!(matches!(plan(bad), Err(GatewayError::BadInput(_))), "{bad}");
        }
    }

    fn window(requests: u64, errors: u64, latency_s: f64) -> Window {
        let h = crate::upstream::Histogram::new(&LATENCY_BUCKETS);
        for _ in 0..requests {
            h.observe(latency_s);
        }
        Window { requests, errors, latency: h.snapshot(), shadow: Snapshot::default() }
    }

    #[test]
    fn steps_are_judged_once_enough_requests_came() {
        let p = plan(r#"{"max_error_rate":0.05,"max_p99_ms":20,"min_requests":20}"#).unwrap();
        let g = Colour::Green;
        assert_eq!(judge(&p, g, &window(10, 5, 0.001), false, 0, 5).1, None, "too few to judge yet");
        let (v, why) = judge(&p, g, &window(20, 4, 0.001), false, 0, 5);
        assert!(why.unwrap().contains("error rate 20.0% (4 of 20 requests)"));
        assert_eq!(v.verdict, "abort");
        let why = judge(&p, g, &window(40, 0, 0.2), false, 1, 25).1.unwrap();
        assert!(why.contains("p99 latency") && why.contains("over the limit 20 ms"), "{why}");
        assert_eq!(judge(&p, g, &window(40, 0, 0.002), true, 1, 25).1, None);
        let why = judge(&p, g, &window(3, 0, 0.002), true, 1, 25).1.unwrap();
        assert!(why.contains("only 3 requests reached green"), "{why}");
    }

    #[test]
    fn shadow_differences_are_judged_when_asked() {
        let p = plan(r#"{"max_shadow_difference":0.5,"min_requests":1}"#).unwrap();
        let mut w = window(5, 0, 0.001);
        assert!(judge(&p, Colour::Green, &w, true, 0, 5).1.unwrap().contains("only 0 mirrored requests"));
        let h = crate::upstream::Histogram::new(&crate::difference::BUCKETS);
        for _ in 0..10 {
            h.observe(3.0);
        }
        w.shadow = h.snapshot();
        assert!(judge(&p, Colour::Green, &w, false, 0, 5).1.unwrap().contains("10 mirrored requests"));
    }
}
