//! `factory deploy switch|rollback|status|weights|shadow|audit`: a client of the gateway's
//! admin API. Prints what happened; exits non-zero with the gateway's message when it
//! refuses (health gate, nothing to roll back to, bad input).

use anyhow::{bail, Context};
use serde_json::{json, Value};

#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    /// Admin URL of the gateway.
    #[arg(long, global = true, env = "FACTORY_GATEWAY", default_value = "http://127.0.0.1:50049")]
    pub gateway: String,
    /// Print the gateway's JSON answer instead of a summary.
    #[arg(long, global = true)]
    pub json: bool,
    /// Who is asking (recorded in the audit log).
    #[arg(long, global = true, env = "USER")]
    pub who: Option<String>,
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

async fn call(
    client: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut req = client.request(method, &url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.with_context(|| format!("calling the gateway admin API at {url}"))?;
    let status = resp.status();
    let text = resp.text().await.with_context(|| format!("reading the answer of {url}"))?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    if !status.is_success() {
        let msg = value.get("error").and_then(Value::as_str).map(str::to_string).unwrap_or(text);
        bail!("{msg} (gateway answered {status})");
    }
    Ok(value)
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
    println!(
        "active: {}   previous: {}   weights: blue={} green={}   shadow: {}%",
        text(&v["active"]),
        text(&v["previous"]),
        text(&v["weights"]["blue"]),
        text(&v["weights"]["green"]),
        text(&v["shadow_percent"])
    );
    println!(
        "{:<7} {:<22} {:<8} {:<10} {:>9} {:>10} {:>8}",
        "colour", "address", "healthy", "version", "failures", "requests", "errors"
    );
    for c in ["blue", "green"] {
        let u = &v["upstreams"][c];
        let marker = if v["active"] == c { "*" } else { " " };
        println!(
            "{:<7} {:<22} {:<8} {:<10} {:>9} {:>10} {:>8}",
            format!("{c}{marker}"),
            text(&u["address"]),
            text(&u["healthy"]),
            text(&u["model_version"]),
            text(&u["consecutive_failures"]),
            text(&u["requests"]),
            text(&u["errors"])
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
    let client = reqwest::Client::builder().no_proxy().build().context("building the HTTP client")?;
    let base = args.gateway.as_str();
    let who = args.who.clone();
    use reqwest::Method;
    let (value, print): (Value, Print) = match &args.action {
        DeployAction::Switch { to, expect_version, drain_timeout_secs } => {
            let body = json!({ "to": to, "expect_version": expect_version, "drain_timeout_secs": drain_timeout_secs, "who": who });
            (call(&client, base, Method::POST, "/switch", Some(body)).await?, Box::new(|v| print_switch("switched", v)))
        }
        DeployAction::Rollback => {
            let body = json!({ "who": who });
            (
                call(&client, base, Method::POST, "/rollback", Some(body)).await?,
                Box::new(|v| print_switch("rolled back", v)),
            )
        }
        DeployAction::Status => (call(&client, base, Method::GET, "/status", None).await?, Box::new(print_status)),
        DeployAction::Weights { weight } => {
            let mut body = json!({ "who": who });
            for w in weight {
                let (c, p) = parse_weight(w)?;
                body[c] = p.into();
            }
            let v = call(&client, base, Method::POST, "/weights", Some(body)).await?;
            (
                v,
                Box::new(|v| {
                    println!("weights: blue={} green={}", text(&v["weights"]["blue"]), text(&v["weights"]["green"]))
                }),
            )
        }
        DeployAction::Shadow { percent } => {
            let body = json!({ "percent": percent, "who": who });
            let v = call(&client, base, Method::POST, "/shadow", Some(body)).await?;
            (
                v,
                Box::new(|v| {
                    println!("shadow: {}% of requests mirrored to the idle colour", text(&v["shadow_percent"]))
                }),
            )
        }
        DeployAction::Audit => {
            let v = call(&client, base, Method::GET, "/audit", None).await?;
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
