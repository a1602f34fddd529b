//! `factory deploy switch|rollback|status|weights|shadow|audit`: a client of the gateway's
//! admin API. Prints what happened; exits non-zero with the gateway's message when it
//! refuses (health gate, nothing to roll back to, bad input).

use admin_api::{gateway_paths as paths, AdminClient, RollbackRequest, ShadowRequest, SwitchRequest, WeightsRequest};
use anyhow::{bail, Context};
use serde_json::Value;

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

/// Prints an answer for people (`--json` prints it raw instead).
type Print = Box<dyn Fn(&Value)>;

pub fn run(args: DeployArgs) -> anyhow::Result<u8> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(run_async(args))
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_switch(op: &str, v: &Value) {
    println!(
        "{op}: {} (version {}) -> {} (version {}); drained in {} ms; operation {}",
        text(&v["from"]),
        text(&v["from_version"]),
        text(&v["to"]),
        text(&v["to_version"]),
        text(&v["drain_ms"]),
        text(&v["operation_id"])
    );
}

fn print_status(v: &Value) {
    let s: admin_api::StatusReply = match serde_json::from_value(v.clone()) {
        Ok(s) => s,
        Err(e) => {
            println!("unexpected status answer ({e}): {v}");
            return;
        }
    };
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    println!(
        "active: {}   previous: {}   weights: blue={} green={}   shadow: {}%",
        s.active,
        opt(&s.previous),
        s.weights.blue,
        s.weights.green,
        s.shadow_percent
    );
    println!(
        "{:<7} {:<22} {:<8} {:<10} {:>9} {:>10} {:>8}",
        "colour", "address", "healthy", "version", "failures", "requests", "errors"
    );
    for (c, u) in [("blue", &s.upstreams.blue), ("green", &s.upstreams.green)] {
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

fn parse_weight(w: &str) -> anyhow::Result<(String, u32)> {
    let (c, p) =
        w.split_once('=').with_context(|| format!("--weight {w:?}: expected COLOUR=PERCENT, e.g. green=10"))?;
    let c = c.trim().to_ascii_lowercase();
    if c != "blue" && c != "green" {
        bail!("--weight {w:?}: colour must be blue or green");
    }
    let p = p.trim().parse().with_context(|| format!("--weight {w:?}: percent must be a whole number 0..=100"))?;
    Ok((c, p))
}

async fn run_async(args: DeployArgs) -> anyhow::Result<u8> {
    let http = reqwest::Client::builder().no_proxy().build().context("building the HTTP client")?;
    let gw = AdminClient::new(http, &args.gateway, args.admin_token.client_token()?);
    let note = args.who.clone();
    let (value, print): (Value, Print) = match &args.action {
        DeployAction::Switch { to, expect_version, drain_timeout_secs } => {
            let body = SwitchRequest {
                to: to.clone(),
                expect_version: expect_version.clone(),
                drain_timeout_secs: *drain_timeout_secs,
                note,
            };
            (gw.post_json(paths::SWITCH, &body).await?, Box::new(|v| print_switch("switched", v)))
        }
        DeployAction::Rollback => (
            gw.post_json(paths::ROLLBACK, &RollbackRequest { note }).await?,
            Box::new(|v| print_switch("rolled back", v)),
        ),
        DeployAction::Status => (gw.get_json(paths::STATUS).await?, Box::new(print_status)),
        DeployAction::Weights { weight } => {
            let mut body = WeightsRequest { note, ..WeightsRequest::default() };
            for w in weight {
                match parse_weight(w)? {
                    (c, p) if c == "blue" => body.blue = Some(p),
                    (_, p) => body.green = Some(p),
                }
            }
            let v = gw.post_json(paths::WEIGHTS, &body).await?;
            (
                v,
                Box::new(|v| {
                    println!("weights: blue={} green={}", text(&v["weights"]["blue"]), text(&v["weights"]["green"]))
                }),
            )
        }
        DeployAction::Shadow { percent } => {
            let v = gw.post_json(paths::SHADOW, &ShadowRequest { percent: *percent, note }).await?;
            (
                v,
                Box::new(|v| {
                    println!("shadow: {}% of requests mirrored to the idle colour", text(&v["shadow_percent"]))
                }),
            )
        }
        DeployAction::Audit => {
            let v = gw.get_json(paths::AUDIT).await?;
            (
                v,
                Box::new(|v| {
                    for r in v.as_array().into_iter().flatten() {
                        println!(
                            "{}  {:<13} {:>5} -> {:<5} {:<8} {:<12} {}",
                            text(&r["time"]),
                            text(&r["op"]),
                            text(&r["from"]),
                            text(&r["to"]),
                            text(&r["outcome"]),
                            text(&r["who"]),
                            r.get("detail").map(text).unwrap_or_default()
                        );
                    }
                }),
            )
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print(&value);
    }
    Ok(0)
}
