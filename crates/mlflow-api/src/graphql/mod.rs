//! `/graphql`: MLflow's GraphQL API, which its web UI reads runs, metric histories,
//! experiments and artifact listings with. The schema is MLflow's, type for type
//! ([`types`]); the document is checked against MLflow's batching limits ([`limits`]) before it
//! is validated and run by `async-graphql`; each root field is answered by the REST route that
//! MLflow's resolver calls the handler of ([`schema`]).
//!
//! The reply is MLflow's: HTTP 200 with `{"data": …, "errors": [messages] | null}` — errors are
//! plain strings there, not GraphQL error objects. A request with no query or one that does
//! not parse is a 400 in that same shape (MLflow answers 500).

mod limits;
mod schema;
mod types;

pub use schema::Inner;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::{Msg, Reply};
use crate::routes::{Api, Input, GET_POST};
use crate::AppState;
use async_graphql::{EmptySubscription, Schema, Variables};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

pub fn routes(api: &mut Api) {
    // Any logged-in user: each root field checks what the caller may read.
    api.listing(GET_POST, "/graphql", graphql);
}

/// The longest syntax-error message sent back.
const MAX_MESSAGE: usize = 1000;

type MlflowSchema = Schema<schema::Query, schema::Mutation, EmptySubscription>;

fn mlflow_schema() -> &'static MlflowSchema {
    static SCHEMA: OnceLock<MlflowSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        Schema::build(schema::Query, schema::Mutation, EmptySubscription).directive(types::ComponentDirective).finish()
    })
}

/// A GraphQL request: JSON body (POST) or query string (GET), as graphql-over-HTTP sends it.
#[derive(Deserialize, Default)]
struct Body {
    query: Option<String>,
    #[serde(default)]
    variables: Option<serde_json::Value>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
}

pub struct Call {
    body: Body,
    inner: Option<Inner>,
}

impl Input for Call {
    async fn parse(req: Request, s: &AppState) -> ApiResult<Self> {
        let inner = req.extensions().get::<Inner>().cloned();
        let Msg(body) = Msg::<Body>::parse(req, s).await?;
        Ok(Call { body, inner })
    }
}

/// MLflow's reply shape.
#[derive(Serialize)]
struct Answer {
    data: async_graphql::Value,
    errors: Option<Vec<String>>,
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, Reply(Answer { data: async_graphql::Value::Null, errors: Some(vec![message]) })).into_response()
}

async fn graphql(_: AppState, who: Caller, call: Call) -> ApiResult<Response> {
    let Call { body, inner } = call;
    let Some(query) = body.query else {
        return Ok(refuse(StatusCode::BAD_REQUEST, "The request has no GraphQL query ('query').".into()));
    };
    let doc = match async_graphql::parser::parse_query(&query) {
        Ok(doc) => doc,
        Err(e) => {
            // The parser quotes the offending line, which may be the whole (long) document.
            let mut message = format!("Syntax Error: {e}");
            if message.len() > MAX_MESSAGE {
                let cut = (0..=MAX_MESSAGE).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
                message.truncate(cut);
                message.push_str(" …");
            }
            return Ok(refuse(StatusCode::BAD_REQUEST, message));
        }
    };
    if let Some(message) = limits::check(&doc) {
        return Ok(refuse(StatusCode::OK, message));
    }
    let Some(inner) = inner else {
        return Ok(refuse(StatusCode::NOT_FOUND, "GraphQL is served only by the server's router".into()));
    };
    let variables = match body.variables {
        // A GET request carries them as JSON text.
        Some(serde_json::Value::String(text)) => match serde_json::from_str(&text) {
            Ok(v) => Variables::from_json(v),
            Err(e) => return Ok(refuse(StatusCode::BAD_REQUEST, format!("Invalid variables: {e}"))),
        },
        Some(v) => Variables::from_json(v),
        None => Variables::default(),
    };
    let mut request = async_graphql::Request::new(query).variables(variables).data(schema::Relay::new(inner, who));
    if let Some(op) = body.operation_name.filter(|op| !op.is_empty()) {
        request = request.operation_name(op);
    }
    request.set_parsed_query(doc);
    let response = mlflow_schema().execute(request).await;
    let errors = (!response.errors.is_empty()).then(|| response.errors.into_iter().map(|e| e.message).collect());
    Ok(Reply(Answer { data: response.data, errors }).into_response())
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_schema;
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    use std::collections::BTreeMap;

    /// Each type of an SDL document as lines: `name(args): type` for fields, `name: type` for
    /// input fields, values for enums. An output field's type is compared without `!` (where
    /// MLflow's is nullable, ours may promise a value: protobuf defaults are never null); input
    /// types and arguments exactly (a variable's declared type must fit them).
    fn outline(sdl: &str) -> BTreeMap<String, Vec<String>> {
        let doc = parse_schema(sdl).expect("an SDL document");
        let mut out = BTreeMap::new();
        for def in doc.definitions {
            let TypeSystemDefinition::Type(t) = def else { continue };
            let t = t.node;
            let lines: Vec<String> = match t.kind {
                TypeKind::Object(o) => o
                    .fields
                    .iter()
                    .map(|f| {
                        let args: Vec<String> = f
                            .node
                            .arguments
                            .iter()
                            .map(|a| format!("{}: {}", a.node.name.node, a.node.ty.node))
                            .collect();
                        format!(
                            "{}({}): {}",
                            f.node.name.node,
                            args.join(", "),
                            f.node.ty.node.to_string().replace('!', "")
                        )
                    })
                    .collect(),
                TypeKind::InputObject(i) => {
                    i.fields.iter().map(|f| format!("{}: {}", f.node.name.node, f.node.ty.node)).collect()
                }
                TypeKind::Enum(e) => e.values.iter().map(|v| v.node.value.node.to_string()).collect(),
                TypeKind::Scalar => Vec::new(),
                other => panic!("unexpected kind {other:?}"),
            };
            let mut lines = lines;
            lines.sort();
            out.insert(t.name.node.to_string(), lines);
        }
        out
    }

    /// Our schema is MLflow 3.17.2's (the UI build we serve sends its queries): every type,
    /// field, argument, input field and enum value, by name and type. The reference is what
    /// `print(mlflow.server.graphql.graphql_schema_extensions.schema)` prints with that wheel.
    #[test]
    fn the_schema_is_mlflows() {
        let mlflow = outline(include_str!("../../tests/data/mlflow-3.17.2-schema.graphql"));
        assert_eq!(mlflow.len(), 49, "the reference parsed whole");
        let ours = outline(&super::mlflow_schema().sdl());
        for (name, lines) in &mlflow {
            assert_eq!(ours.get(name), Some(lines), "type {name}");
        }
        let extra: Vec<&String> = ours.keys().filter(|k| !mlflow.contains_key(*k)).collect();
        assert!(extra.is_empty(), "types MLflow does not have: {extra:?}");
    }
}
