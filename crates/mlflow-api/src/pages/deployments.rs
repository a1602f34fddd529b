//! `GET /factory/deployments`: the blue-green gateway (`factory server --gateway-admin`) as its
//! admin API reports it — which colour is active, the weights, each colour's version and health,
//! the audit log — and, for callers who may manage the model it serves, forms that switch,
//! roll back or send a canary share to the idle colour (`POST /factory/deployments/{operation}`).
//! The server calls the gateway's admin API with its own token; the audit log records that
//! token's identity with the signed-in user in the note.

use super::{may, view};
use crate::access::Need;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::Input;
use crate::AppState;
use admin_api::{
    AdminClient, AuditRecord, ClientError, Colour, RollbackRequest, StatusReply, SwitchRequest, WeightsRequest,
};
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use std::time::Duration;

/// The gateway the deployments page reads and drives, and the registered model it serves (whose
/// permissions decide who sees the page and who may use its forms).
#[derive(Clone, Debug)]
pub struct GatewayLink {
    pub client: AdminClient,
    pub model: String,
}

/// Where `POST /factory/deployments/{operation}` sits, relative to `/factory/`.
const OPERATE_ROOT: view::Root = view::Root("../");

/// How long the page waits for the gateway's status and audit log.
pub(super) const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Audit records shown, newest first.
const AUDIT_SHOWN: usize = 100;
/// A form body larger than this is refused.
const FORM_CAP: usize = 16 << 10;

/// `GET /factory/deployments[?op=ID]`: the model comes from the server's settings.
pub struct View {
    pub model: Option<String>,
    op: Option<String>,
}

#[derive(Deserialize, Default)]
struct ViewQuery {
    op: Option<String>,
}

impl Input for View {
    async fn parse(req: Request, s: &AppState) -> ApiResult<Self> {
        let q: ViewQuery = serde_html_form::from_str(req.uri().query().unwrap_or(""))
            .map_err(|e| ApiError::invalid(format!("Invalid query parameters: {e}")))?;
        Ok(View { model: s.gateway.as_ref().map(|g| g.model.clone()), op: q.op })
    }
}

pub async fn page(s: AppState, who: Caller, v: View) -> ApiResult<Response> {
    let root = view::Root("./");
    let Some(gw) = &s.gateway else {
        let body = html! {
            h1 { "Deployments" }
            p { "No gateway is configured. Start " code { "factory server" } " with "
                code { "--gateway-admin ADDR --gateway-model NAME" } " (and the gateway's admin token in "
                code { "--gateway-admin-token-file" } ") to see and drive the blue-green deployment here." }
        };
        return Ok(view::page(StatusCode::OK, "Deployments", &who, root, body));
    };
    // Where the gateway and the upstreams are is shown to those who may operate them only.
    let manage = may(&s, &who, &Need::RegisteredModel(gw.model.clone(), ::auth::permission::Action::Manage)).await;
    let reader = gw.client.clone().with_timeout(READ_TIMEOUT);
    let (status, audit) = tokio::join!(reader.status(), reader.audit());
    let status = match status {
        Ok(st) => st,
        Err(e) => {
            let msg = match manage {
                true => format!("The gateway's admin API did not answer: {e}"),
                false => "The gateway's admin API did not answer.".to_string(),
            };
            return Ok(view::problem(StatusCode::BAD_GATEWAY, "Deployments", &who, root, &msg));
        }
    };
    let audit = audit.unwrap_or_default();
    let done = v.op.as_ref().and_then(|op| audit.iter().rev().find(|a| &a.operation_id == op));
    let body = html! {
        h1 { "Deployments — " (gw.model) }
        p.muted {
            @if manage { "Gateway admin API " code { (gw.client.base()) } " · " }
            a href=(view::mlflow_model_href(root, &gw.model)) { "model in the MLflow UI" }
        }
        @if let Some(a) = done {
            p class=(if a.outcome == "ok" { "box" } else { "error" }) {
                "Operation " code { (a.operation_id) } " (" (a.op) "): " strong { (a.outcome) }
                @if let Some(d) = &a.detail { " — " (d) }
            }
        }
        (colours(root, &gw.model, &status, manage))
        @if manage { (forms(&status)) } @else {
            p.muted { "You may view this deployment; switching, rollback and canary need MANAGE on " (gw.model) "." }
        }
        h2 { "Audit log" }
        (audit_table(root, &gw.model, &audit))
    };
    Ok(view::page(StatusCode::OK, "Deployments", &who, root, body))
}

fn colours(root: view::Root, model: &str, st: &StatusReply, addresses: bool) -> Markup {
    html! {
        table {
            tr { th { "Colour" } th { "Role" } th { "Weight" } th { "Version" } th { "Health" } th { "Requests" }
                 th { "Errors" } th { "In flight" } @if addresses { th { "Address" } } }
            @for c in Colour::ALL {
                @let u = st.upstreams.get(c);
                tr {
                    td { span class=(format!("pill {c}")) { (c) } }
                    td { @if c == st.active { strong { "active" } } @else { "idle" }
                         @if st.previous == Some(c) { " (previous)" } }
                    td.num { (st.weights.of(c)) "%" }
                    td { @match &u.model_version {
                        Some(v) => a href=(view::lineage_href(root, model, v)) { "v" (v) },
                        None => span.muted { "unknown" },
                    } }
                    td { @if u.healthy { span.good { "healthy" } } @else {
                        span.bad { "unhealthy" } " (" (u.consecutive_failures) " failed probes)" } }
                    td.num { (u.requests) } td.num { (u.errors) } td.num { (u.in_flight) }
                    @if addresses { td { code { (u.address) } } }
                }
            }
        }
        @if st.shadow_percent > 0 { p { "Shadow: " (st.shadow_percent) "% of requests mirrored to the idle colour." } }
    }
}

fn forms(st: &StatusReply) -> Markup {
    let idle = st.idle();
    html! {
        h2 { "Operate" }
        div.box {
            form.inline method="post" action="deployments/switch" {
                input type="hidden" name="to" value=(idle);
                input type="text" name="note" placeholder="note for the audit log";
                " " button type="submit" { "Switch traffic to " (idle) }
            }
            @if let Some(prev) = st.previous {
                form.inline method="post" action="deployments/rollback" {
                    button type="submit" { "Roll back to " (prev) }
                }
            }
            form.inline method="post" action="deployments/canary" {
                input type="hidden" name="to" value=(idle);
                "Canary: send " input type="number" name="percent" min="0" max="100" value=(st.weights.of(idle));
                "% of new requests to " (idle) " "
                button type="submit" { "Set weights" }
            }
        }
    }
}

fn audit_table(root: view::Root, model: &str, audit: &[AuditRecord]) -> Markup {
    let version = |v: &Option<String>| match v {
        Some(v) => html! { a href=(view::lineage_href(root, model, v)) { "v" (v) } },
        None => html! { span.muted { "–" } },
    };
    let colour = |c: &Option<Colour>| c.map(|c| c.to_string()).unwrap_or_else(|| "–".into());
    html! {
        @if audit.is_empty() { p.muted { "No operations recorded." } } @else {
            table {
                tr { th { "Time" } th { "Operation" } th { "From → to" } th { "Versions" } th { "Weights" } th { "Who" }
                     th { "Outcome" } th { "Detail" } }
                @for a in audit.iter().rev().take(AUDIT_SHOWN) {
                    tr {
                        td { (a.time) } td { (a.op) } td { (colour(&a.from)) " → " (colour(&a.to)) }
                        td { (version(&a.from_version)) " → " (version(&a.to_version)) }
                        td { @if let Some(w) = a.weights { "blue " (w.blue) "% / green " (w.green) "%" } }
                        td { (a.who) }
                        td { span class=(if a.outcome == "ok" { "good" } else { "bad" }) { (a.outcome) } }
                        td.muted { (a.detail.clone().unwrap_or_default()) }
                    }
                }
            }
        }
    }
}

/// What a form asks the gateway to do.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Operation {
    Switch,
    Rollback,
    Canary,
}

#[derive(Deserialize, Default)]
struct Form {
    to: Option<String>,
    percent: Option<String>,
    note: Option<String>,
}

/// `POST /factory/deployments/{operation}` from this server's own page.
pub struct Operate {
    pub model: Option<String>,
    operation: Option<Operation>,
    /// The form, or why it could not be read (answered by the handler, after the rule).
    form: Result<Form, String>,
}

impl Input for Operate {
    async fn parse(req: Request, s: &AppState) -> ApiResult<Self> {
        same_origin(req.headers(), req.uri().authority().map(|a| a.as_str()))?;
        let operation = match req.uri().path().rsplit('/').next() {
            Some("switch") => Some(Operation::Switch),
            Some("rollback") => Some(Operation::Rollback),
            Some("canary") => Some(Operation::Canary),
            _ => None,
        };
        let form = match axum::body::to_bytes(req.into_body(), FORM_CAP).await {
            Ok(body) => serde_html_form::from_bytes::<Form>(&body).map_err(|e| format!("Invalid form: {e}")),
            Err(e) => Err(format!("Could not read the form: {e}")),
        };
        Ok(Operate { model: s.gateway.as_ref().map(|g| g.model.clone()), operation, form })
    }
}

/// A state change must come from a page of this server: the browser says so (`Sec-Fetch-Site:
/// same-origin`, which no page can forge), or its `Origin` names the host the request was sent
/// to (`Host`, or HTTP/2's authority). Basic credentials ride along on any cross-site request,
/// so without this a foreign page could switch traffic.
fn same_origin(h: &HeaderMap, authority: Option<&str>) -> ApiResult<()> {
    let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    let host = text(header::HOST.as_str()).or(authority);
    let ok = match (text("sec-fetch-site"), text(header::ORIGIN.as_str()), host) {
        (Some("same-origin"), _, _) => true,
        // The browser says cross-site (or same-site: another origin): refused whatever Origin says.
        (Some(_), _, _) => false,
        (None, Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && rest.eq_ignore_ascii_case(host)),
        (None, _, _) => false,
    };
    match ok {
        true => Ok(()),
        false => Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "Cross-origin request blocked: the deployment forms only accept posts from this server's own pages",
        )),
    }
}

pub async fn operate(s: AppState, who: Caller, r: Operate) -> ApiResult<Response> {
    let Some(gw) = &s.gateway else {
        return Err(ApiError::invalid("No gateway is configured (factory server --gateway-admin)"));
    };
    let Some(operation) = r.operation else {
        return Err(ApiError::invalid("Unknown operation: expected switch, rollback or canary"));
    };
    let form = r.form.map_err(ApiError::invalid)?;
    let user = who.username().unwrap_or("anonymous");
    let note = match form.note.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!("factory server UI, user {user}: {n}"),
        None => format!("factory server UI, user {user}"),
    };
    // The colour the form names: the target of a switch, the idle colour a canary was drawn for.
    let to = form.to.as_deref().map(str::parse::<Colour>).transpose().map_err(|e| ApiError::invalid(e.to_string()))?;
    let result = match operation {
        Operation::Switch => gw
            .client
            .switch(&SwitchRequest { to, note: Some(note), ..Default::default() })
            .await
            .map(|r| r.operation_id),
        Operation::Rollback => gw.client.rollback(&RollbackRequest { note: Some(note) }).await.map(|r| r.operation_id),
        Operation::Canary => {
            let percent: u32 = form
                .percent
                .as_deref()
                .map(str::trim)
                .and_then(|p| p.parse().ok())
                .filter(|p| *p <= 100)
                .ok_or_else(|| ApiError::invalid("percent must be a whole number from 0 to 100"))?;
            let status = gw.client.status().await;
            let idle = match status {
                Ok(st) => st.idle(),
                Err(e) => return Ok(refused(&who, e)),
            };
            if let Some(asked) = to.filter(|c| *c != idle) {
                let msg =
                    format!("{asked} is no longer the idle colour: traffic was switched since the page was drawn");
                return Ok(view::problem(StatusCode::CONFLICT, "The canary was not set", &who, OPERATE_ROOT, &msg));
            }
            let req = match idle {
                Colour::Blue => WeightsRequest { blue: Some(percent), green: None, note: Some(note) },
                Colour::Green => WeightsRequest { blue: None, green: Some(percent), note: Some(note) },
            };
            gw.client.weights(&req).await.map(|r| r.operation_id)
        }
    };
    Ok(match result {
        // Relative to /factory/deployments/<operation>, so that it works under --static-prefix.
        Ok(op) => Redirect::to(&format!("../deployments?op={}", view::seg(&op))).into_response(),
        Err(e) => refused(&who, e),
    })
}

/// The gateway refused (409: e.g. the health gate) or could not be reached (502).
fn refused(who: &Caller, e: ClientError) -> Response {
    let status = match &e {
        ClientError::Refused { status, .. } if *status < 500 => StatusCode::CONFLICT,
        _ => StatusCode::BAD_GATEWAY,
    };
    view::problem(status, "The gateway refused the operation", who, OPERATE_ROOT, &e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (header::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn forms_are_taken_only_from_this_origin() {
        let ok = |h: &[(&'static str, &str)]| same_origin(&headers(h), None).is_ok();
        assert!(ok(&[("origin", "http://127.0.0.1:5000"), ("host", "127.0.0.1:5000")]));
        assert!(ok(&[("origin", "https://mlflow.example"), ("host", "mlflow.example")]));
        assert!(ok(&[("sec-fetch-site", "same-origin")]));
        // Behind a proxy that rewrites Host, the browser's word decides.
        assert!(ok(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://mlflow.example"),
            ("host", "10.0.0.5:5000")
        ]));
        // HTTP/2: no Host header, the authority instead.
        assert!(same_origin(&headers(&[("origin", "http://127.0.0.1:5000")]), Some("127.0.0.1:5000")).is_ok());
        for bad in [
            vec![("origin", "http://evil.example"), ("host", "127.0.0.1:5000")],
            vec![("origin", "null"), ("host", "127.0.0.1:5000")],
            vec![("origin", "http://127.0.0.1:5000.evil"), ("host", "127.0.0.1:5000")],
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site"), ("origin", "http://127.0.0.1:5000"), ("host", "127.0.0.1:5000")],
            vec![("host", "127.0.0.1:5000")],
        ] {
            assert!(!ok(&bad), "{bad:?}");
        }
    }
}
