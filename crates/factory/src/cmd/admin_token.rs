//! The admin bearer token(s): `--admin-token-file` (or `FACTORY_ADMIN_TOKEN_FILE`), else the
//! token itself in `FACTORY_ADMIN_TOKEN`. Servers (serve's admin listener, the gateway's admin
//! API) require one of them; clients (`factory deploy`, `factory loop`) send the first.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct AdminTokenArgs {
    /// File with the admin bearer token, one per line (`name:token` names who holds it in the
    /// gateway's audit log). Default: the token in FACTORY_ADMIN_TOKEN.
    #[arg(long, env = "FACTORY_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
}

impl AdminTokenArgs {
    /// The configured tokens, if any.
    pub fn tokens(&self) -> anyhow::Result<Option<admin_api::Tokens>> {
        tokens_from(self.admin_token_file.as_deref(), "FACTORY_ADMIN_TOKEN")
    }

    /// The token a client sends.
    pub fn client_token(&self) -> anyhow::Result<Option<String>> {
        Ok(self.tokens()?.map(|t| t.first().to_string()))
    }
}

/// Tokens from `file` (one per line), else from the variable `env`; `None` when neither is set.
pub fn tokens_from(file: Option<&Path>, env: &str) -> anyhow::Result<Option<admin_api::Tokens>> {
    let text = match file {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading the admin token file {}", path.display()))?
        }
        None => match std::env::var(env) {
            Ok(t) if !t.trim().is_empty() => t,
            _ => return Ok(None),
        },
    };
    let source = file.map_or_else(|| env.to_string(), |p| p.display().to_string());
    admin_api::Tokens::parse(&text).map(Some).with_context(|| format!("admin token from {source}"))
}

/// Refuses to expose an admin plane beyond loopback without a token.
pub fn check_bind(addr: SocketAddr, tokens: Option<&admin_api::Tokens>, what: &str) -> anyhow::Result<()> {
    if tokens.is_none() && !addr.ip().is_loopback() {
        anyhow::bail!(
            "refusing to serve the {what} on {addr} without a token: bind it to 127.0.0.1, or give \
             --admin-token-file / FACTORY_ADMIN_TOKEN"
        );
    }
    if tokens.is_none() {
        tracing::warn!("the {what} on {addr} has no token: anyone on this machine can use it");
    }
    Ok(())
}
