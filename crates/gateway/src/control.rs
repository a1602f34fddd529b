//! The control plane: [`Gateway`] holds the routing state and the two upstreams, and runs
//! the operations — switch, rollback, weights, shadow — one at a time. A switch checks the
//! target (health gate), persists the new state, moves new requests, appends to the audit
//! log and then drains the old colour. Protocol-neutral: the admin API calls these.

use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use admin_api::{CanaryPhase, CanaryStatus};

use crate::audit::{Audit, AuditRecord};
use crate::client::Clients;
use crate::error::GatewayError;
use crate::health;
use crate::state::{self, Colour, RoutingState, Weights, WeightsExt};
use crate::upstream::{Histogram, Upstream};

/// Everything the gateway needs to start.
#[derive(Clone, Debug)]
pub struct Settings {
    pub blue: String,
    pub green: String,
    /// Where the routing state is persisted; the audit log goes next to it. `None`: in memory.
    pub state_file: Option<PathBuf>,
    /// Consecutive failed requests that mark an upstream unhealthy.
    pub failure_threshold: u32,
    /// Switch away from an active colour that passive health marks unhealthy (health-gated).
    pub auto_failover: bool,
    /// How long a switch waits for requests in flight on the old colour before ending them.
    pub drain_timeout: Duration,
    /// Per-probe timeout of the health gate.
    pub health_timeout: Duration,
    /// Recorded in the audit log as the caller of the admin API when it has no tokens.
    pub who: String,
    /// How often `/health` of both colours is asked for its version (0 = never).
    pub version_poll: Duration,
    /// Data-plane workers: threads, each with its own event loop and upstream connections,
    /// that a connection stays on from accept to close (0 = one per core).
    pub workers: usize,
    /// Timeouts and connection limits of the listen port and the admin API.
    pub limits: listener::Limits,
    /// Longest wait for an upstream's response head; past it the request fails and counts
    /// against the upstream's passive health.
    pub upstream_timeout: Duration,
    /// Only requests with bodies up to this size are copied to the shadow (bodies are buffered
    /// for it); larger ones are forwarded, streaming, without a copy.
    pub shadow_max_body_bytes: usize,
    /// Most shadow copies in flight; past it requests go without a copy.
    pub shadow_max_in_flight: usize,
    /// Bearer tokens the admin API requires (`None`: none; the binary allows that on loopback only).
    pub admin_tokens: Option<admin_api::Tokens>,
}

impl Settings {
    pub fn new(blue: impl Into<String>, green: impl Into<String>) -> Settings {
        Settings {
            blue: blue.into(),
            green: green.into(),
            state_file: None,
            failure_threshold: 5,
            auto_failover: false,
            drain_timeout: Duration::from_secs(30),
            health_timeout: Duration::from_secs(2),
            who: "unknown".into(),
            version_poll: Duration::from_secs(10),
            workers: 0,
            limits: listener::Limits::default(),
            admin_tokens: None,
            upstream_timeout: Duration::from_secs(60),
            shadow_max_body_bytes: 256 * 1024,
            shadow_max_in_flight: 64,
        }
    }
}

/// A switch or rollback as asked.
#[derive(Clone, Debug, Default)]
pub struct SwitchRequest {
    /// Default: the idle colour.
    pub to: Option<Colour>,
    pub expect_version: Option<String>,
    pub drain_timeout: Option<Duration>,
    pub who: Option<String>,
}

/// What a switch did, a weights or shadow change, and `GET /status`: the admin protocol's own
/// types, served as they are.
pub use admin_api::{ChangeReply, StatusReply, SwitchReply, UpstreamStatus, Upstreams};

/// Counters of the shadow mirror and of operations.
#[derive(Default)]
pub struct Counters {
    pub shadow_requests: AtomicU64,
    pub shadow_divergences: AtomicU64,
    pub shadow_errors: AtomicU64,
    /// Requests whose caller hung up or stalled mid-body (not counted against an upstream).
    pub client_aborts: AtomicU64,
    /// Requests picked for shadowing but not copied: body over the limit, or the shadow behind.
    pub shadow_dropped: AtomicU64,
    pub switches_ok: AtomicU64,
    pub switches_refused: AtomicU64,
}

/// A canary step's verdicts, in the order of [`CanarySlot::verdicts`].
pub const VERDICTS: [&str; 3] = ["advance", "promote", "abort"];

/// A gateway's canary: the one running or the last one, and a pending abort.
#[derive(Default)]
pub struct CanarySlot {
    pub(crate) status: Mutex<Option<CanaryStatus>>,
    pub(crate) abort: Mutex<Option<String>>,
    /// Verdicts so far, by [`VERDICTS`].
    pub verdicts: [AtomicU64; VERDICTS.len()],
}

impl CanarySlot {
    pub fn current(&self) -> Option<CanaryStatus> {
        self.status.lock().expect("canary lock").clone()
    }

    /// The running canary, if one is.
    pub fn running(&self) -> Option<CanaryStatus> {
        self.current().filter(|s| s.phase == CanaryPhase::Running)
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut CanaryStatus)) {
        if let Some(s) = self.status.lock().expect("canary lock").as_mut() {
            f(s);
        }
    }

    /// Counts one of [`VERDICTS`].
    pub(crate) fn count(&self, verdict: &str) {
        let i = VERDICTS.iter().position(|v| *v == verdict).expect("a known verdict");
        self.verdicts[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// The gateway: routing state, upstreams, clients, audit log.
pub struct Gateway {
    pub settings: Settings,
    routing: ArcSwap<RoutingState>,
    upstreams: [Arc<Upstream>; 2],
    pub clients: Clients,
    audit: Audit,
    /// One operation at a time.
    pub(crate) ops: tokio::sync::Mutex<()>,
    /// The canary running, or the last one.
    pub canary: CanarySlot,
    /// Largest difference between the colours' predictions per compared mirrored request.
    pub shadow_difference: Histogram,
    pub counters: Counters,
    /// Shadow copies in flight (at most `settings.shadow_max_in_flight`).
    pub shadow_slots: Arc<tokio::sync::Semaphore>,
}

impl Gateway {
    /// Loads the state file (or starts blue-active) and opens the audit log next to it.
    pub fn new(settings: Settings) -> Result<Arc<Gateway>, GatewayError> {
        for (name, addr) in [("blue", &settings.blue), ("green", &settings.green)] {
            if addr.parse::<http::uri::Authority>().is_err() || !addr.contains(':') {
                return Err(GatewayError::BadInput(format!("{name} upstream {addr:?} is not a host:port address")));
            }
        }
        let routing = match &settings.state_file {
            Some(p) => match state::load(p)? {
                Some(s) => s,
                None => {
                    // Written now so that a state file that cannot be written fails at start.
                    let s = RoutingState::default();
                    state::save(p, &s)?;
                    s
                }
            },
            None => RoutingState::default(),
        };
        let audit = Audit::new(settings.state_file.as_deref().map(Audit::path_for));
        let threshold = settings.failure_threshold;
        Ok(Arc::new(Gateway {
            upstreams: [
                Arc::new(Upstream::new(Colour::Blue, settings.blue.clone(), threshold)),
                Arc::new(Upstream::new(Colour::Green, settings.green.clone(), threshold)),
            ],
            routing: ArcSwap::from_pointee(routing),
            clients: Clients::new(),
            audit,
            ops: tokio::sync::Mutex::new(()),
            canary: CanarySlot::default(),
            shadow_difference: Histogram::new(&crate::difference::BUCKETS),
            counters: Counters::default(),
            shadow_slots: Arc::new(tokio::sync::Semaphore::new(settings.shadow_max_in_flight.max(1))),
            settings,
        }))
    }

    pub fn upstream(&self, c: Colour) -> &Arc<Upstream> {
        &self.upstreams[c.index()]
    }

    /// The routing state now (lock-free; what each request reads).
    pub fn routing(&self) -> arc_swap::Guard<Arc<RoutingState>> {
        self.routing.load()
    }

    pub fn status(&self) -> StatusReply {
        let r = self.routing.load();
        let up = |c: Colour| {
            let u = self.upstream(c);
            UpstreamStatus {
                address: u.address.clone(),
                healthy: u.is_healthy(),
                model_version: u.model_version(),
                consecutive_failures: u.consecutive_failures.load(Ordering::Relaxed),
                requests: u.requests.load(Ordering::Relaxed),
                errors: u.errors.load(Ordering::Relaxed),
                in_flight: u.in_flight(),
            }
        };
        StatusReply {
            active: r.active,
            previous: r.previous,
            weights: r.weights,
            shadow_percent: r.shadow_percent,
            upstreams: Upstreams { blue: up(Colour::Blue), green: up(Colour::Green) },
        }
    }

    pub fn audit_records(&self) -> Result<Vec<AuditRecord>, GatewayError> {
        self.audit.read_all()
    }

    pub(crate) fn who(&self, who: Option<String>) -> String {
        who.filter(|w| !w.trim().is_empty()).unwrap_or_else(|| self.settings.who.clone())
    }

    /// A copy of the routing state now.
    pub(crate) fn routing_now(&self) -> RoutingState {
        (*self.routing.load_full()).clone()
    }

    /// Refuses `op` while a canary runs: only the canary moves traffic then.
    fn refuse_during_canary(&self, op: &str, who: &str) -> Result<(), GatewayError> {
        let Some(c) = self.canary.running() else { return Ok(()) };
        let msg = format!(
            "refusing {op}: a canary from {} to {} is running (step {}, {}%); POST /canary/abort first",
            c.from, c.to, c.step, c.weight
        );
        self.refuse(&mut crate::audit::record(op, who), &msg);
        Err(GatewayError::Conflict(msg))
    }

    /// Records `rec` as refused, with `msg` as its detail.
    pub(crate) fn refuse(&self, rec: &mut AuditRecord, msg: &str) {
        rec.outcome = "refused".into();
        rec.detail = Some(msg.to_string());
        self.audit(rec);
    }

    /// Persists `next` and only then makes it the routing state.
    pub(crate) fn commit(&self, next: RoutingState) -> Result<(), GatewayError> {
        if let Some(p) = &self.settings.state_file {
            state::save(p, &next)?;
        }
        self.routing.store(Arc::new(next));
        Ok(())
    }

    pub(crate) fn audit(&self, record: &AuditRecord) {
        if let Err(e) = self.audit.append(record) {
            tracing::error!("{e}");
        }
    }

    /// Health-gated switch of all new traffic to `req.to` (default: the idle colour).
    pub async fn switch(&self, req: SwitchRequest) -> Result<SwitchReply, GatewayError> {
        let _op = self.ops.lock().await;
        self.refuse_during_canary("switch", &self.who(req.who.clone()))?;
        let to = req.to.unwrap_or_else(|| self.routing.load().active.other());
        self.switch_locked("switch", to, req).await
    }

    /// Health-gated switch back to the previous colour.
    pub async fn rollback(&self, who: Option<String>) -> Result<SwitchReply, GatewayError> {
        let _op = self.ops.lock().await;
        self.refuse_during_canary("rollback", &self.who(who.clone()))?;
        let r = self.routing.load_full();
        let Some(prev) = r.previous.filter(|p| *p != r.active) else {
            let who = self.who(who);
            let mut rec = crate::audit::record("rollback", &who);
            rec.from = Some(r.active);
            let msg = format!("nothing to roll back to: {} is active and there is no previous colour", r.active);
            self.refuse(&mut rec, &msg);
            return Err(GatewayError::Conflict(msg));
        };
        self.switch_locked("rollback", prev, SwitchRequest { to: Some(prev), who, ..SwitchRequest::default() }).await
    }

    /// Passive health marked the active colour unhealthy: switch away if the other passes the gate.
    pub async fn auto_failover(&self, unhealthy: Colour) {
        let _op = self.ops.lock().await;
        if self.routing.load().active != unhealthy {
            return;
        }
        let req = SwitchRequest { who: Some("gateway (auto failover)".into()), ..SwitchRequest::default() };
        match self.switch_locked("auto-failover", unhealthy.other(), req).await {
            Ok(o) => tracing::warn!("auto failover: {} was unhealthy, traffic moved to {}", o.from, o.to),
            Err(e) => tracing::error!("auto failover from unhealthy {unhealthy} refused: {e}"),
        }
    }

    pub(crate) async fn switch_locked(
        &self,
        op: &str,
        to: Colour,
        req: SwitchRequest,
    ) -> Result<SwitchReply, GatewayError> {
        let who = self.who(req.who);
        let current = self.routing.load_full();
        let from = current.active;
        let target = self.upstream(to);
        let source = self.upstream(from);
        let timeout = self.settings.health_timeout;
        let (report, from_version) = tokio::join!(
            health::check(&self.clients, to, &target.address, req.expect_version.as_deref(), timeout),
            health::current_version(&self.clients, &source.address, timeout),
        );
        if report.model_version.is_some() {
            target.set_model_version(report.model_version.clone());
        }
        if from_version.is_some() {
            source.set_model_version(from_version.clone());
        }
        let mut rec = crate::audit::record(op, &who);
        rec.from = Some(from);
        rec.to = Some(to);
        rec.from_version = from_version.clone();
        rec.to_version = report.model_version.clone();
        rec.health = Some(report.clone());
        if !report.ok {
            let msg = format!(
                "refusing to {op} to {to} ({}): {}; traffic stays on {from}",
                target.address,
                report.failures()
            );
            self.refuse(&mut rec, &msg);
            self.counters.switches_refused.fetch_add(1, Ordering::Relaxed);
            return Err(GatewayError::Refused(msg));
        }
        target.mark_healthy();
        let next = RoutingState {
            active: to,
            previous: if to == from { current.previous } else { Some(from) },
            weights: Weights::all(to),
            shadow_percent: current.shadow_percent,
        };
        if let Err(e) = self.commit(next) {
            rec.outcome = "error".into();
            rec.detail = Some(e.to_string());
            self.audit(&rec);
            return Err(e);
        }
        self.counters.switches_ok.fetch_add(1, Ordering::Relaxed);
        tracing::info!(%from, %to, %who, "{op}: new requests go to {to} ({})", target.address);
        // Drain: requests already on the old colour (and on the new one under a canary) finish.
        let started = Instant::now();
        let drain_timeout = req.drain_timeout.unwrap_or(self.settings.drain_timeout);
        let drained = if to == from { true } else { source.drain(drain_timeout).await };
        if !drained {
            tracing::warn!(
                "{from}: {} requests still in flight after {drain_timeout:?}; ending them",
                source.in_flight()
            );
            source.abort_in_flight();
        }
        let drain_ms = started.elapsed().as_millis() as u64;
        rec.detail = Some(if drained {
            format!("drained {from} in {drain_ms} ms")
        } else {
            format!("drain of {from} timed out after {drain_ms} ms; remaining requests ended")
        });
        self.audit(&rec);
        Ok(SwitchReply {
            operation_id: rec.operation_id,
            from,
            to,
            from_version,
            to_version: report.model_version.clone(),
            health: report,
            drained,
            drain_ms,
        })
    }

    /// Canary: share new requests between the colours.
    pub async fn set_weights(
        &self,
        blue: Option<u32>,
        green: Option<u32>,
        who: Option<String>,
    ) -> Result<ChangeReply, GatewayError> {
        let weights = Weights::from_parts(blue, green)?;
        let _op = self.ops.lock().await;
        self.refuse_during_canary("weights", &self.who(who.clone()))?;
        let current = self.routing.load_full();
        let next = RoutingState { weights, ..(*current).clone() };
        self.change("weights", next, who)
    }

    /// Mirror `percent` of requests to the idle colour.
    pub async fn set_shadow(&self, percent: u32, who: Option<String>) -> Result<ChangeReply, GatewayError> {
        if percent > 100 {
            return Err(GatewayError::BadInput(format!("shadow percent {percent} is out of range 0..=100")));
        }
        let _op = self.ops.lock().await;
        let current = self.routing.load_full();
        let next = RoutingState { shadow_percent: percent, ..(*current).clone() };
        self.change("shadow", next, who)
    }

    fn change(&self, op: &str, next: RoutingState, who: Option<String>) -> Result<ChangeReply, GatewayError> {
        let mut rec = crate::audit::record(op, &self.who(who));
        rec.from = Some(next.active);
        rec.weights = Some(next.weights);
        rec.shadow_percent = Some(next.shadow_percent);
        let (weights, shadow_percent) = (next.weights, next.shadow_percent);
        if let Err(e) = self.commit(next) {
            rec.outcome = "error".into();
            rec.detail = Some(e.to_string());
            self.audit(&rec);
            return Err(e);
        }
        tracing::info!(?weights, shadow_percent, "{op} changed");
        self.audit(&rec);
        Ok(ChangeReply { operation_id: rec.operation_id, weights, shadow_percent })
    }

    /// Asks both colours for their model version (for `status`); never changes health.
    pub async fn refresh_versions(&self) {
        let t = self.settings.health_timeout;
        let (b, g) = tokio::join!(
            health::current_version(&self.clients, &self.upstreams[0].address, t),
            health::current_version(&self.clients, &self.upstreams[1].address, t),
        );
        for (u, v) in self.upstreams.iter().zip([b, g]) {
            if v.is_some() {
                u.set_model_version(v);
            }
        }
    }
}
