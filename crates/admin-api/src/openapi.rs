//! The OpenAPI 3.1 documents of both admin planes, built from the protocol's own types (their
//! `ToSchema` derives) and path constants. The committed copies in `docs/openapi/` are checked
//! against these by this crate's tests, and the servers' tests check that every documented
//! operation is routed.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr, ResponseBuilder,
    Schema,
};
use utoipa::{IntoParams, ToSchema};

use crate::types::*;
use crate::{gateway_paths as gw, serve_paths as serve};

/// One documented operation: method, path, summary, body and answers.
struct Op {
    method: HttpMethod,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    /// (status, description, schema name or None for a non-JSON body)
    replies: &'static [(u16, &'static str, Option<&'static str>)],
}

const REFUSED: (u16, &str, Option<&str>) =
    (409, "Refused: the health gate failed, or nothing to do", Some("ErrorReply"));
const BAD_INPUT: (u16, &str, Option<&str>) = (400, "Malformed body or out-of-range value", Some("ErrorReply"));
const NO_TOKEN: (u16, &str, Option<&str>) = (401, "Bearer token missing or wrong", Some("ErrorReply"));

const GATEWAY_OPS: &[Op] = &[
    Op {
        method: HttpMethod::Get,
        path: gw::STATUS,
        id: "status",
        summary: "Active colour, weights, shadow percentage and each upstream's health and counters",
        body: None,
        replies: &[(200, "The routing state", Some("StatusReply")), NO_TOKEN],
    },
    Op {
        method: HttpMethod::Post,
        path: gw::SWITCH,
        id: "switch",
        summary: "Move new traffic to a colour (default: the idle one) after its health gate; drain the old one",
        body: Some("SwitchRequest"),
        replies: &[(200, "Switched", Some("SwitchReply")), BAD_INPUT, NO_TOKEN, REFUSED],
    },
    Op {
        method: HttpMethod::Post,
        path: gw::ROLLBACK,
        id: "rollback",
        summary: "Switch back to the previous colour (health-gated)",
        body: Some("RollbackRequest"),
        replies: &[(200, "Rolled back", Some("SwitchReply")), BAD_INPUT, NO_TOKEN, REFUSED],
    },
    Op {
        method: HttpMethod::Post,
        path: gw::WEIGHTS,
        id: "weights",
        summary: "Share new requests between the colours (canary)",
        body: Some("WeightsRequest"),
        replies: &[(200, "The new weights", Some("ChangeReply")), BAD_INPUT, NO_TOKEN, REFUSED],
    },
    Op {
        method: HttpMethod::Post,
        path: gw::SHADOW,
        id: "shadow",
        summary: "Mirror a percentage of requests to the idle colour (answers discarded, differences counted)",
        body: Some("ShadowRequest"),
        replies: &[(200, "The new shadow percentage", Some("ChangeReply")), BAD_INPUT, NO_TOKEN],
    },
    Op {
        method: HttpMethod::Post,
        path: gw::CANARY,
        id: "canary",
        summary: "Start a metric-gated canary: the new colour's share goes up in steps, each judged on its error \
                  rate, p99 latency, shadow differences and an optional Prometheus query; a breach moves all traffic \
                  back",
        body: Some("CanaryRequest"),
        replies: &[(200, "Started (the health gate passed)", Some("CanaryStatus")), BAD_INPUT, NO_TOKEN, REFUSED],
    },
    Op {
        method: HttpMethod::Get,
        path: gw::CANARY,
        id: "canaryStatus",
        summary: "The canary running, or the last one with every step's verdict",
        body: None,
        replies: &[
            (200, "The canary", Some("CanaryStatus")),
            NO_TOKEN,
            (404, "No canary since the gateway started", Some("ErrorReply")),
        ],
    },
    Op {
        method: HttpMethod::Post,
        path: gw::CANARY_ABORT,
        id: "canaryAbort",
        summary: "Abort the running canary: all traffic back to the active colour",
        body: Some("CanaryAbortRequest"),
        replies: &[(200, "Aborted", Some("CanaryStatus")), BAD_INPUT, NO_TOKEN, REFUSED],
    },
    Op {
        method: HttpMethod::Get,
        path: gw::AUDIT,
        id: "audit",
        summary: "Every control operation recorded, oldest first",
        body: None,
        replies: &[(200, "The audit log", Some("AuditLog")), NO_TOKEN],
    },
    Op {
        method: HttpMethod::Get,
        path: gw::METRICS,
        id: "metrics",
        summary: "The gateway's metrics in the Prometheus text format",
        body: None,
        replies: &[(200, "Prometheus text exposition", None), NO_TOKEN],
    },
];

const SERVE_OPS: &[Op] = &[Op {
    method: HttpMethod::Post,
    path: serve::RELOAD,
    id: "reload",
    summary: "Resolve the model alias again and load the version it names; a version that fails to load is refused \
              and the one being served keeps serving",
    body: None,
    replies: &[
        (200, "Unchanged or reloaded", Some("ReloadReply")),
        NO_TOKEN,
        (409, "Refused: the new version did not load; the old one keeps serving", Some("ReloadReply")),
    ],
}];

/// The gateway's admin API (`factory gateway --admin`).
pub fn gateway() -> OpenApi {
    let mut schemas = Vec::new();
    collect::<StatusReply>(&mut schemas);
    collect::<SwitchRequest>(&mut schemas);
    collect::<RollbackRequest>(&mut schemas);
    collect::<WeightsRequest>(&mut schemas);
    collect::<ShadowRequest>(&mut schemas);
    collect::<SwitchReply>(&mut schemas);
    collect::<ChangeReply>(&mut schemas);
    collect::<CanaryRequest>(&mut schemas);
    collect::<CanaryStatus>(&mut schemas);
    collect::<CanaryAbortRequest>(&mut schemas);
    collect::<AuditRecord>(&mut schemas);
    collect::<ErrorReply>(&mut schemas);
    schemas.push((
        "AuditLog".into(),
        utoipa::openapi::schema::ArrayBuilder::new().items(Ref::from_schema_name("AuditRecord")).build().into(),
    ));
    document(
        "factory gateway admin API",
        "Blue-green control of `factory gateway`, on its own listener (`--admin`, loopback by default). Every call \
         needs `Authorization: Bearer <token>` when the gateway has admin tokens, and must have them off loopback. \
         An empty body counts as `{}`.",
        GATEWAY_OPS,
        schemas,
        |_, op| op,
    )
}

/// serve's admin listener (`factory serve --admin-port`).
pub fn serve() -> OpenApi {
    let mut schemas = Vec::new();
    collect::<ReloadReply>(&mut schemas);
    collect::<ErrorReply>(&mut schemas);
    document(
        "factory serve admin API",
        "Operations on a running `factory serve`, on its admin listener (`--admin-port`, loopback by default; the \
         serving port answers 404 under `/admin/`). Every call needs `Authorization: Bearer <token>` when serve \
         has admin tokens, and must have them off loopback.",
        SERVE_OPS,
        schemas,
        |id, op| {
            if id == "reload" {
                op.parameters(Some(ReloadQuery::into_params(|| Some(ParameterIn::Query))))
            } else {
                op
            }
        },
    )
}

/// `T` and every schema it refers to.
fn collect<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

fn document(
    title: &str,
    description: &str,
    ops: &[Op],
    schemas: Vec<(String, RefOr<Schema>)>,
    extra: impl Fn(&str, OperationBuilder) -> OperationBuilder,
) -> OpenApi {
    let json = |name: &str| ContentBuilder::new().schema(Some(Ref::from_schema_name(name))).build();
    let mut paths = PathsBuilder::new();
    for op in ops {
        let mut b = OperationBuilder::new().operation_id(Some(op.id)).summary(Some(op.summary));
        if let Some(body) = op.body {
            b = b.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", json(body))
                    .required(Some(utoipa::openapi::Required::False))
                    .build(),
            ));
        }
        for (status, description, schema) in op.replies {
            let mut r = ResponseBuilder::new().description(*description);
            r = match schema {
                Some(name) => r.content("application/json", json(name)),
                None => r.content("text/plain; version=0.0.4", ContentBuilder::new().build()),
            };
            b = b.response(status.to_string(), r.build());
        }
        paths = paths.path(op.path, PathItem::new(op.method.clone(), extra(op.id, b).build()));
    }
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)))
        .build();
    OpenApiBuilder::new()
        .info(InfoBuilder::new().title(title).version(env!("CARGO_PKG_VERSION")).description(Some(description)).build())
        .paths(paths.build())
        .components(Some(components))
        .security(Some([SecurityRequirement::new("bearer", Vec::<String>::new())]))
        .build()
}

/// `(method, path)` of every documented operation, for the servers' routing tests.
pub fn operations(doc: &OpenApi) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in &doc.paths.paths {
        for (method, op) in [("GET", &item.get), ("POST", &item.post), ("PUT", &item.put), ("DELETE", &item.delete)] {
            if op.is_some() {
                out.push((method.to_string(), path.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn committed(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi").join(name)
    }

    /// The committed documents are what the types generate. `FACTORY_BLESS=1 cargo test -p
    /// admin-api` writes them anew after a change to the protocol.
    #[test]
    fn committed_documents_match_the_types() {
        for (name, doc) in [("gateway-admin.json", gateway()), ("serve-admin.json", serve())] {
            let generated = doc.to_pretty_json().unwrap() + "\n";
            let path = committed(name);
            if std::env::var_os("FACTORY_BLESS").is_some() {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &generated).unwrap();
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == generated,
                "{} is not what the admin-api types generate; run `FACTORY_BLESS=1 cargo test -p admin-api` and commit it",
                path.display()
            );
        }
    }

    #[test]
    fn every_referenced_schema_is_defined() {
        for doc in [gateway(), serve()] {
            let text = doc.to_json().unwrap();
            let defined = &doc.components.as_ref().unwrap().schemas;
            for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
                let name = &part[..part.find('"').unwrap()];
                assert!(defined.contains_key(name), "{name} is referred to but not defined");
            }
        }
    }

    #[test]
    fn operations_are_listed() {
        let ops = operations(&gateway());
        assert!(ops.contains(&("POST".into(), "/switch".into())), "{ops:?}");
        assert_eq!(ops.len(), GATEWAY_OPS.len());
        assert_eq!(operations(&serve()), vec![("POST".to_string(), "/admin/reload".to_string())]);
    }
}
