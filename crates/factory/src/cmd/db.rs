//! `factory db`: what a tracking database holds, and adopting an existing MLflow database in
//! place. `upgrade` on factory's own (or an empty) database applies factory's pending
//! migrations, as `factory server` does at start; on an MLflow 3.17 database it adds factory's
//! objects next to MLflow's (nothing of MLflow's changes) and `downgrade` removes them again.
//! Every change is printed; `--dry-run` prints without changing anything.

use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct DbArgs {
    #[command(subcommand)]
    pub action: DbAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum DbAction {
    /// Say what the database holds and what `upgrade` would change.
    Status(Target),
    /// Bring the database to what factory serves (adopts an MLflow 3.17 database in place).
    Upgrade(Change),
    /// Give an adopted MLflow database back exactly as MLflow's schema has it.
    Downgrade(Change),
}

#[derive(clap::Args, Debug)]
pub struct Target {
    /// sqlite:///path.db or postgresql://user@host:port/db (as for `factory server`).
    #[arg(long, env = "MLFLOW_BACKEND_STORE_URI", default_value = "sqlite:///mlflow.db")]
    pub backend_store_uri: String,
}

#[derive(clap::Args, Debug)]
pub struct Change {
    #[command(flatten)]
    pub target: Target,
    /// Print what would change, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: DbArgs) -> anyhow::Result<u8> {
    super::runtime(1)?.block_on(async {
        match args.action {
            DbAction::Status(t) => status(&t.backend_store_uri).await,
            DbAction::Upgrade(c) => upgrade(&c.target.backend_store_uri, c.dry_run).await,
            DbAction::Downgrade(c) => {
                let plan = tracking::schema::release(&c.target.backend_store_uri, c.dry_run).await?;
                print_plan(&c.target.backend_store_uri, &plan, "factory db downgrade");
                Ok(0)
            }
        }
    })
}

async fn status(uri: &str) -> anyhow::Result<u8> {
    let origin = tracking::schema::inspect(uri).await.with_context(|| format!("inspecting {uri}"))?;
    println!("{uri}: {origin}");
    match &origin {
        tracking::Origin::Empty => println!("factory server creates its schema there on start."),
        tracking::Origin::Factory => {
            println!("factory server serves it (and applies its pending migrations on start).")
        }
        tracking::Origin::Mlflow { adopted: true, .. } => {
            println!("`factory db downgrade` would give it back to MLflow:");
            for change in tracking::schema::release(uri, true).await?.changes {
                println!("  - {change}");
            }
        }
        tracking::Origin::Mlflow { .. } => match tracking::schema::adopt(uri, true).await {
            Ok(plan) => {
                println!("`factory db upgrade` would change (nothing of MLflow's is changed):");
                for change in plan.changes {
                    println!("  - {change}");
                }
            }
            Err(e) => println!("{e}"),
        },
    }
    Ok(0)
}

async fn upgrade(uri: &str, dry_run: bool) -> anyhow::Result<u8> {
    match tracking::schema::inspect(uri).await.with_context(|| format!("inspecting {uri}"))? {
        tracking::Origin::Mlflow { .. } => {
            let plan = tracking::schema::adopt(uri, dry_run).await?;
            print_plan(uri, &plan, "factory db upgrade");
        }
        origin if dry_run => println!("{uri}: {origin}; factory's pending migrations would be applied"),
        origin => {
            // Opening the store is what applies factory's own migrations.
            tracking::Store::open(uri, "mlflow-artifacts:").await.with_context(|| format!("migrating {uri}"))?;
            println!("{uri}: was {origin}; factory's migrations are applied");
        }
    }
    Ok(0)
}

fn print_plan(uri: &str, plan: &tracking::Plan, what: &str) {
    let verb = if plan.applied { "changed" } else { "would change (--dry-run: nothing changed)" };
    println!("{what}: {uri} ({})", plan.origin);
    println!("{verb}:");
    for change in &plan.changes {
        println!("  - {change}");
    }
}
