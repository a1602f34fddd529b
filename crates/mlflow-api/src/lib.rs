//! The MLflow REST API over the tracking store and an artifact store: routes, wire types
//! and the one error mapping. [`run`] serves it on a bound listener until `shutdown`.
//!
//! Architecture invariant: every route is declared once, with the permission it needs, in the
//! route table ([`routes`]); the router is built from that table alone, so an undeclared route
//! does not exist (authenticated callers get a 404/405, never a handler). Handlers only parse,
//! call the store and shape the reply; every rule about the data lives in the `tracking` crate.

pub mod access;
pub mod artifact_path;
pub mod artifacts;
pub mod auth;
mod download;
pub mod error;
mod graphql;
pub mod guard;
pub mod json;
mod logged_models;
pub mod metrics;
mod owners;
pub mod pages;
mod registry;
pub mod routes;
mod served_artifacts;
mod tracking;
pub mod ui;
mod users;
pub mod version;
mod wire;

use auth::Caller;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use error::{ApiError, ApiResult, ErrorCode};
use routes::{Api, RouteInfo, AJAX_V2, ARTIFACTS, FACTORY, GET, MLFLOW_V2, MLFLOW_V3, ROOT};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<::tracking::Store>,
    pub artifacts: Arc<dyn object_store::ObjectStore>,
    /// `Some` with `--app-name basic-auth`: every non-public route then needs a login, and
    /// the user API is served.
    pub auth: Option<Arc<auth::Auth>>,
    /// The MLflow web UI build served at `/` and `/static-files/` (`--ui-dir`); `None`: `/`
    /// says how to install it.
    pub ui_dir: Option<std::path::PathBuf>,
    /// The blue-green gateway our deployments page shows and drives (`--gateway-admin`).
    pub gateway: Option<pages::GatewayLink>,
}

/// The route table: MLflow's `/api/2.0/mlflow` (also under `/ajax-api/2.0/mlflow`, as MLflow
/// mounts it for its UI), the artifact proxy, our `/api/2.0/factory` additions, `/health`,
/// `/version`, server info; with auth on, also the user API.
fn table(with_users: bool) -> Api {
    let mut api = Api::default();
    api.under(MLFLOW_V2, |api| {
        tracking::routes(api);
        logged_models::routes(api);
        registry::routes(api);
        served_artifacts::routes(api);
    });
    api.under(AJAX_V2, |api| {
        served_artifacts::ajax_routes(api);
        tracking::ajax_routes(api);
    });
    api.under(ARTIFACTS, artifacts::routes);
    api.under(FACTORY, |api| {
        registry::factory_routes(api);
        api.listing(GET, "/version", factory_version);
    });
    api.under(MLFLOW_V3, |api| api.public(GET, "/server-info", ui::server_info));
    ui::routes(&mut api);
    pages::routes(&mut api);
    api.under(ROOT, |api| {
        served_artifacts::root_routes(api);
        graphql::routes(api);
        api.public(GET, "/health", health);
        api.listing(GET, "/version", version);
    });
    if with_users {
        users::routes(&mut api);
    }
    api
}

/// Every route the server answers (with auth on or off), its methods and guard.
pub fn route_table(with_auth: bool) -> Vec<RouteInfo> {
    table(with_auth).table()
}

/// The whole HTTP surface, built from the route table; with auth on, behind the
/// authentication layer (which lets only the table's public paths through without a login).
pub fn router(state: AppState) -> Router {
    let api = table(state.auth.is_some());
    let public = Arc::new(api.public_paths());
    let inner = api.into_router().fallback(not_found).with_state(state.clone());
    let app = match state.auth {
        Some(_) => {
            let gate = auth::Gate { state, public };
            inner.clone().layer(axum::middleware::from_fn_with_state(gate, auth::layer))
        }
        None => inner.clone(),
    };
    // GraphQL answers its fields with the REST routes, behind the authentication it passed.
    app.layer(axum::Extension(graphql::Inner(inner))).layer(axum::middleware::map_response(
        |mut resp: axum::response::Response| async move {
            error::werkzeug_reason(&mut resp);
            resp
        },
    ))
}

async fn health(s: AppState, _: Caller, _: ()) -> Result<impl IntoResponse, ApiError> {
    Ok(match s.store.ping().await {
        Ok(()) => (StatusCode::OK, "OK"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    })
}

async fn version(_: AppState, _: Caller, _: ()) -> ApiResult<impl IntoResponse> {
    Ok(version::mlflow().await)
}

async fn factory_version(_: AppState, _: Caller, _: ()) -> ApiResult<impl IntoResponse> {
    Ok(version::factory().await)
}

/// An unknown path; one with repeated slashes (`//get-artifact`) is redirected to its merged
/// form, as MLflow's Werkzeug router does (the redirected request is checked like any other).
async fn not_found(_: State<AppState>, uri: axum::http::Uri) -> axum::response::Response {
    if uri.path().contains("//") {
        let mut merged = String::with_capacity(uri.path().len());
        for c in uri.path().chars() {
            if !(c == '/' && merged.ends_with('/')) {
                merged.push(c);
            }
        }
        if let Some(q) = uri.query() {
            merged = format!("{merged}?{q}");
        }
        return (StatusCode::PERMANENT_REDIRECT, [(axum::http::header::LOCATION, merged)]).into_response();
    }
    ApiError::new(ErrorCode::EndpointNotFound, format!("No endpoint {} on this server", uri.path())).into_response()
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, router(state), &listener::Limits::default(), shutdown).await
}

/// Serves a built router (e.g. [`router`] wrapped by [`guard::apply`]) like [`run`], with
/// `limits` on the connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &listener::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener::serve_router(listener, "server", limits, app, shutdown, None).await
}
