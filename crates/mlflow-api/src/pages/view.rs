//! The frame every page shares (header, navigation, styles) and the small formatting helpers.
//! No script anywhere: the pages are plain HTML forms and inline SVG, sent with a content
//! security policy that allows no script, no outside request and forms only to this server.

use crate::auth::Caller;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// No script, nothing fetched from elsewhere, forms only to this origin, never framed.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2933;background:#f7f8fa}
header{background:#0b3954;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}
header a{color:#dfe7ef;text-decoration:none}header a:hover{color:#fff;text-decoration:underline}
header .brand{font-weight:600;color:#fff;margin-right:12px}header .who{margin-left:auto;color:#b8c7d6}
main{padding:16px 24px;max-width:1400px}h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;margin:22px 0 8px}
table{border-collapse:collapse;background:#fff;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #d9dee5;padding:4px 8px;text-align:left;vertical-align:top}th{background:#eef1f5}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#6b7785}.bad{color:#b42318;font-weight:600}.good{color:#067647;font-weight:600}
.pill{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;border:1px solid #c9d1db;background:#fff}
.blue{background:#dbeafe;border-color:#3b82f6}.green{background:#dcfce7;border-color:#22c55e}
.box{background:#fff;border:1px solid #d9dee5;border-radius:6px;padding:10px 14px;margin:8px 0}
.flow{display:flex;flex-wrap:wrap;gap:6px;align-items:stretch}.flow .box{min-width:200px;max-width:440px;margin:0;overflow-wrap:anywhere}
.arrow{align-self:center;font-size:20px;color:#6b7785}
.charts{display:flex;flex-wrap:wrap;gap:10px}form.inline{display:inline-block;margin:0 8px 8px 0}
button{padding:5px 12px;border:1px solid #0b3954;background:#0b3954;color:#fff;border-radius:4px;cursor:pointer}
input[type=number]{width:64px}input[type=text]{width:220px}
.error{background:#fef3f2;border:1px solid #fda29b;padding:8px 12px;border-radius:6px}
"#;

/// Where a page sits, as the relative path from it to `/factory/` (`./`, `../`, ...). Every
/// link is written relative, so the pages work under `--static-prefix` as they do at the root.
#[derive(Clone, Copy, Debug)]
pub struct Root(pub &'static str);

impl Root {
    /// A path under `/factory/`.
    pub fn to(self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    /// A page of the MLflow UI (served at the server's root, a hash router).
    pub fn mlflow(self, hash: &str) -> String {
        format!("{}../#/{hash}", self.0)
    }
}

/// A whole page: the frame around `body`, with the page's status.
pub fn page(status: StatusCode, title: &str, who: &Caller, root: Root, body: Markup) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · MLOps Factory" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a.brand href=(root.to("")) { "MLOps Factory" }
                    a href=(root.to("")) { "Overview" }
                    a href=(root.to("deployments")) { "Deployments" }
                    a href=(root.to("../")) { "MLflow UI" }
                    @if let Some(user) = who.username() { span.who { "signed in as " (user) } }
                }
                main { (body) }
            }
        }
    };
    let mut resp = (status, doc.into_string()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Milliseconds since the epoch as `2026-12-05 10:42:07 UTC`.
pub fn time_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// A figure with `digits` decimals, or a dash.
pub fn num(v: Option<f64>, digits: usize) -> Markup {
    match v {
        Some(v) if v.is_finite() => html! { (format!("{v:.digits$}")) },
        Some(v) => html! { (v.to_string()) },
        None => html! { span.muted { "–" } },
    }
}

/// What a path segment or query value escapes: controls, blanks, delimiters, `/`, `%`, `&`, `=`.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']')
    .add(b'&')
    .add(b'=')
    .add(b'+')
    .add(b'\'');

/// A path segment (or query value) for a link.
pub fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// The lineage page of a version.
pub fn lineage_href(root: Root, model: &str, version: impl std::fmt::Display) -> String {
    root.to(&format!("models/{}/versions/{}", seg(model), seg(&version.to_string())))
}

/// The MLflow UI's pages (the model name URL-encoded as the UI does).
pub fn mlflow_run_href(root: Root, experiment_id: &str, run_id: &str) -> String {
    root.mlflow(&format!("experiments/{}/runs/{}", seg(experiment_id), seg(run_id)))
}

pub fn mlflow_version_href(root: Root, model: &str, version: impl std::fmt::Display) -> String {
    root.mlflow(&format!("models/{}/versions/{}", seg(model), seg(&version.to_string())))
}

pub fn mlflow_model_href(root: Root, model: &str) -> String {
    root.mlflow(&format!("models/{}", seg(model)))
}

pub fn mlflow_experiment_href(root: Root, experiment_id: &str) -> String {
    root.mlflow(&format!("experiments/{}", seg(experiment_id)))
}

/// A page that could not be made: the reason in a box, with the status.
pub fn problem(status: StatusCode, title: &str, who: &Caller, root: Root, message: &str) -> Response {
    let body = html! { h1 { (title) } p.error { (message) } p { a href=(root.to("")) { "Back to the overview" } } };
    page(status, title, who, root, body)
}
