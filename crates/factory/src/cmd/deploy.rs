//! `factory deploy switch|rollback|status|weights|shadow|audit`: a client of the gateway's
//! admin API. Prints what happened; exits non-zero with the gateway's message when it
//! refuses (health gate, nothing to roll back to, bad input).

use admin_api::{
    AdminClient, AuditRecord, Colour, RollbackRequest, ShadowRequest, StatusReply, SwitchReply, SwitchRequest,
    WeightsRequest,
};
use anyhow::Context;

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
    /// Every operation the gateway recorded, oldest first.
    Audit,
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
        DeployAction::Audit => show(json, &gw.audit().await?, |r| print_audit(r))?,
    }
    Ok(0)
}
