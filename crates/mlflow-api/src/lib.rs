//! The MLflow REST API over the tracking store and an artifact store: routes, wire types
//! and the one error mapping. [`run`] serves it on a bound listener until `shutdown`.
//!
//! Architecture invariant: handlers only parse, call the store and shape the reply; every
//! rule about the data lives in the `tracking` crate.

pub mod artifacts;
pub mod auth;
pub mod error;
pub mod guard;
pub mod json;
mod logged_models;
mod registry;
mod tracking;
mod users;
pub mod version;
mod wire;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use error::{ApiError, ErrorCode};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<::tracking::Store>,
    pub artifacts: Arc<dyn object_store::ObjectStore>,
    /// `Some` with `--app-name basic-auth`: every route except `/health` then passes [`auth::layer`].
    pub auth: Option<Arc<auth::Auth>>,
}

/// The whole HTTP surface: MLflow's `/api/2.0/mlflow` (also under `/ajax-api/2.0/mlflow`,
/// as MLflow mounts it for its UI), the artifact proxy, `/health` and `/version`; with auth on,
/// also the user API, and every route behind the auth layer.
pub fn router(state: AppState) -> Router {
    let api = tracking::routes()
        .merge(logged_models::routes())
        .merge(registry::routes())
        .layer(axum::extract::DefaultBodyLimit::max(json::MAX_JSON_BODY));
    let artifacts = artifacts::routes();
    let mut app = Router::new();
    if state.auth.is_some() {
        app = app.merge(users::routes());
    }
    let app = app
        .nest("/api/2.0/mlflow", api.clone())
        .nest("/ajax-api/2.0/mlflow", api)
        .nest("/api/2.0/mlflow-artifacts", artifacts.clone())
        .nest("/ajax-api/2.0/mlflow-artifacts", artifacts)
        .nest("/api/2.0/factory", registry::factory_routes())
        .route("/api/3.0/mlflow/server-info", get(server_info))
        .route("/health", get(health))
        .route("/api/2.0/factory/version", get(version::factory))
        .route("/version", get(version::mlflow))
        .fallback(not_found);
    match state.auth {
        Some(_) => app.layer(axum::middleware::from_fn_with_state(state.clone(), auth::layer)).with_state(state),
        None => app.with_state(state),
    }
}

async fn health(axum::extract::State(s): axum::extract::State<AppState>) -> impl IntoResponse {
    match s.store.ping().await {
        Ok(()) => (StatusCode::OK, "OK"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}

async fn server_info() -> impl IntoResponse {
    json::Reply(serde_json::json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "multipart_uploads_enabled": false,
        "multipart_downloads_enabled": false,
    }))
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(ErrorCode::EndpointNotFound, format!("No endpoint {} on this server", uri.path()))
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, router(state), shutdown).await
}

/// Serves a built router (e.g. [`router`] wrapped by [`guard::apply`]) like [`run`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Nagle + delayed ACK would add ~40 ms to every keep-alive request.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
