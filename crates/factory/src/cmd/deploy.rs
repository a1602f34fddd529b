//! `factory deploy switch|rollback|status|weights|shadow|canary|abort|audit`: a client of the gateway's
//! admin API. Prints what happened; exits non-zero with the gateway's message when it
//! refuses (health gate, nothing to roll back to, bad input).

use admin_api::{
    AdminClient, AuditRecord, CanaryAbortRequest, CanaryPhase, CanaryRequest, CanaryStatus, Colour, PrometheusCheck,
    RollbackRequest, ShadowRequest, StatusReply, StepVerdict, SwitchReply, SwitchRequest, WeightsRequest,
};
use anyhow::Context;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    /// Admin URL of the gateway.
    #[arg(long, global = true, env = "FACTORY_GATEWAY", default_value = "http://127.0.0.1:50049")]
    pub gateway: String,
    /// Print the gateway's JSON answer instead of a summary.
    #[arg(long, global = true)]
    pub json: bool,
    /// A note recorded in the audit log next to the identity of the admin token (who is
    /// asking, a ticket).
    #[arg(long, global = true, env = "USER")]
    pub who: Option<String>,
    #[command(flatten)]
    pub admin_token: super::admin_token::AdminTokenArgs,
    #[command(subcommand)]
    pub action: DeployAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum DeployAction {
    /// Move all new traffic to a colour (default: the idle one) after its health check passes.
    Switch {
        #[arg(long, value_parser = ["blue", "green"])]
        to: Option<String>,
        /// Refuse unless the target's /health reports this model_version.
        #[arg(long)]
        expect_version: Option<String>,
        /// Wait this long for requests in flight on the old colour.
        #[arg(long)]
        drain_timeout_secs: Option<f64>,
    },
    /// Switch back to the previous colour (health-gated too).
    Rollback,
    /// Active colour, weights, shadow, and each upstream's health and counters.
    Status,
    /// Canary: share new requests, e.g. `--weight green=10` (blue gets the rest).
    Weights {
        #[arg(long = "weight", required = true, value_name = "COLOUR=PERCENT")]
        weight: Vec<String>,
    },
    /// Mirror a percentage of requests to the idle colour (answers discarded, differences counted).
    Shadow {
        #[arg(long)]
        percent: u32,
    },
    /// Metric-gated canary: raise the new colour's share step by step, judging each step on
    /// its own requests; a breach moves all traffic back. Waits for the end (exit 0 promoted, 1
    /// aborted) unless --no-wait.
    Canary(CanaryArgs),
    /// Abort the running canary: all traffic back to the active colour.
    Abort,
    /// Every operation the gateway recorded, oldest first.
    Audit,
}

#[derive(clap::Args, Debug)]
pub struct CanaryArgs {
    /// The new colour (default: the idle one).
    #[arg(long, value_parser = ["blue", "green"])]
    to: Option<String>,
    /// Its share at each step, in percent; 100 is added when missing.
    #[arg(long, value_delimiter = ',', default_value = "5,25,50,100")]
    steps: Vec<u32>,
    /// How long each step lasts (`30s`, `2m`).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Most failed requests (transport errors and 5xx) of the new colour per step: `1%` or `0.01`.
    #[arg(long, default_value = "1%", value_parser = parse_rate)]
    max_error_rate: f64,
    /// Highest p99 latency of the new colour per step, in milliseconds.
    #[arg(long)]
    max_p99_ms: Option<f64>,
    /// Fewest requests of the new colour to judge a step; fewer by the step's end fails it.
    #[arg(long, default_value_t = 20)]
    min_requests: u64,
    /// Highest p99 of the differences between the colours' predictions on mirrored requests
    /// (turn shadow traffic on first: `factory deploy shadow --percent 10`).
    #[arg(long)]
    max_shadow_difference: Option<f64>,
    /// Highest share of drifted features (`30%` or `0.3`) in what the new colour scored since
    /// the canary began, from its online drift sketches (`factory serve` keeps them).
    #[arg(long, value_parser = parse_rate)]
    max_drift_share: Option<f64>,
    /// An existing Prometheus to ask at the end of every step (with --prometheus-query).
    #[arg(long, requires_all = ["prometheus_query", "prometheus_max"])]
    prometheus_url: Option<String>,
    /// A PromQL instant query returning one number; `{colour}` becomes the new colour.
    #[arg(long, requires = "prometheus_url")]
    prometheus_query: Option<String>,
    /// The step fails when the query's value is above this.
    #[arg(long, requires = "prometheus_url")]
    prometheus_max: Option<f64>,
    /// Refuse unless the new colour's /health reports this model_version.
    #[arg(long)]
    expect_version: Option<String>,
    /// Start it and return; follow it with `GET /canary` on the admin API, end it with
    /// `factory deploy abort`.
    #[arg(long)]
    no_wait: bool,
}

/// `1%` or `0.01`.
fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("{s:?} is not a rate: expected e.g. 1% or 0.01"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s:?} is out of range 0%..=100%"))
    }
}

impl CanaryArgs {
    fn request(&self, note: Option<String>) -> anyhow::Result<CanaryRequest> {
        Ok(CanaryRequest {
            to: self.to.as_deref().map(str::parse).transpose()?,
            steps: self.steps.clone(),
            interval_secs: Some(self.interval.as_secs_f64()),
            max_error_rate: Some(self.max_error_rate),
            max_p99_ms: self.max_p99_ms,
            min_requests: Some(self.min_requests),
            max_shadow_difference: self.max_shadow_difference,
            max_drift_share: self.max_drift_share,
            prometheus: match (&self.prometheus_url, &self.prometheus_query, self.prometheus_max) {
                (Some(url), Some(query), Some(max)) => {
                    Some(PrometheusCheck { url: url.clone(), query: query.clone(), max })
                }
                _ => None,
            },
            expect_version: self.expect_version.clone(),
            note,
        })
    }
}

fn print_canary(s: &CanaryStatus) {
    let phase = match s.phase {
        CanaryPhase::Running => "running",
        CanaryPhase::Promoted => "promoted",
        CanaryPhase::Aborted => "aborted",
    };
    println!(
        "canary {} -> {}: {phase}, step {} ({}%) of {:?}, {} s each; operation {}",
        s.from, s.to, s.step, s.weight, s.steps, s.interval_secs, s.operation_id
    );
    if let Some(r) = &s.reason {
        println!("{r}");
    }
}

pub fn run(args: DeployArgs) -> anyhow::Result<u8> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(run_async(args))
}

fn opt(o: &Option<String>) -> &str {
    o.as_deref().unwrap_or("-")
}

fn print_switch(op: &str, r: &SwitchReply) {
    println!(
        "{op}: {} (version {}) -> {} (version {}); drained in {} ms; operation {}",
        r.from,
        opt(&r.from_version),
        r.to,
        opt(&r.to_version),
        r.drain_ms,
        r.operation_id
    );
}

fn print_status(s: &StatusReply) {
    println!(
        "active: {}   previous: {}   weights: blue={} green={}   shadow: {}%",
        s.active,
        s.previous.map_or("-", Colour::as_str),
        s.weights.blue,
        s.weights.green,
        s.shadow_percent
    );
    println!(
        "{:<7} {:<22} {:<8} {:<10} {:>9} {:>10} {:>8}",
        "colour", "address", "healthy", "version", "failures", "requests", "errors"
    );
    for c in Colour::ALL {
        let u = s.upstreams.get(c);
        let marker = if s.active == c { "*" } else { " " };
        println!(
            "{:<7} {:<22} {:<8} {:<10} {:>9} {:>10} {:>8}",
            format!("{c}{marker}"),
            u.address,
            u.healthy,
            opt(&u.model_version),
            u.consecutive_failures,
            u.requests,
            u.errors
        );
    }
}

fn print_audit(records: &[AuditRecord]) {
    let colour = |c: Option<Colour>| c.map_or("-", Colour::as_str);
    for r in records {
        println!(
            "{}  {:<13} {:>5} -> {:<5} {:<8} {:<12} {}",
            r.time,
            r.op,
            colour(r.from),
            colour(r.to),
            r.outcome,
            r.who,
            r.detail.as_deref().unwrap_or_default()
        );
    }
}

/// The typed answer as JSON (`--json`), or `human` for people.
fn show<T: serde::Serialize>(json: bool, reply: &T, human: impl Fn(&T)) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(reply)?);
    } else {
        human(reply);
    }
    Ok(())
}

fn parse_weight(w: &str) -> anyhow::Result<(Colour, u32)> {
    let (c, p) =
        w.split_once('=').with_context(|| format!("--weight {w:?}: expected COLOUR=PERCENT, e.g. green=10"))?;
    let c = c.parse().with_context(|| format!("--weight {w:?}"))?;
    let p = p.trim().parse().with_context(|| format!("--weight {w:?}: percent must be a whole number 0..=100"))?;
    Ok((c, p))
}

async fn run_async(args: DeployArgs) -> anyhow::Result<u8> {
    let http = reqwest::Client::builder().no_proxy().build().context("building the HTTP client")?;
    let gw = AdminClient::new(http, &args.gateway, args.admin_token.client_token()?);
    let note = args.who.clone();
    let json = args.json;
    match &args.action {
        DeployAction::Switch { to, expect_version, drain_timeout_secs } => {
            let body = SwitchRequest {
                to: to.as_deref().map(str::parse).transpose()?,
                expect_version: expect_version.clone(),
                drain_timeout_secs: *drain_timeout_secs,
                note,
            };
            show(json, &gw.switch(&body).await?, |r| print_switch("switched", r))?;
        }
        DeployAction::Rollback => {
            show(json, &gw.rollback(&RollbackRequest { note }).await?, |r| print_switch("rolled back", r))?;
        }
        DeployAction::Status => show(json, &gw.status().await?, print_status)?,
        DeployAction::Weights { weight } => {
            let mut body = WeightsRequest { note, ..WeightsRequest::default() };
            for w in weight {
                match parse_weight(w)? {
                    (Colour::Blue, p) => body.blue = Some(p),
                    (Colour::Green, p) => body.green = Some(p),
                }
            }
            show(json, &gw.weights(&body).await?, |r| {
                println!("weights: blue={} green={}", r.weights.blue, r.weights.green)
            })?;
        }
        DeployAction::Shadow { percent } => {
            show(json, &gw.shadow(&ShadowRequest { percent: *percent, note }).await?, |r| {
                println!("shadow: {}% of requests mirrored to the idle colour", r.shadow_percent)
            })?;
        }
        DeployAction::Canary(c) => {
            let started = gw.canary(&c.request(note)?).await?;
            if c.no_wait {
                show(json, &started, print_canary)?;
                return Ok(0);
            }
            if !json {
                print_canary(&started);
            }
            let each = |v: &StepVerdict| {
                if !json {
                    println!("{}", v.summary())
                }
            };
            let end = gw.canary_until_done(&started.operation_id, Duration::from_millis(500), each).await?;
            show(json, &end, |s| {
                if let Some(r) = &s.reason {
                    println!("{}: {r}", if s.phase == CanaryPhase::Promoted { "promoted" } else { "aborted" });
                }
            })?;
            return Ok(if end.phase == CanaryPhase::Promoted { 0 } else { 1 });
        }
        DeployAction::Abort => {
            show(json, &gw.canary_abort(&CanaryAbortRequest { note }).await?, print_canary)?;
        }
        DeployAction::Audit => show(json, &gw.audit().await?, |r| print_audit(r))?,
    }
    Ok(0)
}
