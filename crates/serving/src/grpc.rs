//! The gRPC adapter (tonic): `inference.GRPCInferenceService` (Open Inference Protocol V2)
//! and `grpc.health.v1.Health`. Methods decode protobuf tensors into the protocol-neutral
//! [`Tensor`] (typed `contents` or `raw_input_contents`), call the same [`Serving`]
//! operations as the HTTP routes, and map [`ServeError`] to a gRPC status in one exhaustive
//! `match` (bad input → `INVALID_ARGUMENT`, another model → `NOT_FOUND`, not loaded yet →
//! `UNAVAILABLE`).
//!
//! What tonic itself answers is brought in line with gRPC's conventions: a message that is not
//! valid protobuf (or has a string field that is not UTF-8) is `INVALID_ARGUMENT`, not
//! `INTERNAL` ([`Codec`]); one over the size limit is `RESOURCE_EXHAUSTED`, not `OUT_OF_RANGE`
//! ([`size_limit_is_resource_exhausted`]). Every error message is at most
//! [`MAX_MESSAGE_CHARS`] characters and echoes a caller's value in at most 200: a longer
//! `grpc-message` makes clients fail on metadata size instead of showing the error.
//!
//! The services are mounted on an axum [`Router`] by [`add_routes`], so they can share the
//! HTTP port (requests are told apart by path, which for gRPC is `/<service>/<method>`) or
//! get one of their own.

use crate::request_id;
use axum::Router;
use futures::Stream;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tonic::codec::{BufferSettings, DecodeBuf, ProstCodec};
use tonic::server::NamedService;
use tonic::{Code, Request, Response, Status};
use tower::ServiceExt;

use crate::error::{shown, ServeError};
use crate::proto::health::health_check_response::ServingStatus;
use crate::proto::health::health_server::{Health, HealthServer};
use crate::proto::health::{HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse};
use crate::proto::inference::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use crate::proto::inference::model_infer_request::InferInputTensor;
use crate::proto::inference::model_infer_response::InferOutputTensor;
use crate::proto::inference::model_metadata_response::TensorMetadata;
use crate::proto::inference::*;
use crate::service::Serving;
use crate::tensor::{Tensor, TensorData};

/// The name health checks use for the inference service.
pub const INFERENCE_SERVICE: &str = "inference.GRPCInferenceService";

/// Adds both gRPC services to `router`.
pub fn add_routes(router: Router, app: Arc<Serving>) -> Router {
    let limit = app.grpc_max_message_bytes;
    let inference = GrpcInferenceServiceServer::new(Inference { app: app.clone() })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(usize::MAX);
    let inference = ServiceExt::<axum::extract::Request>::map_response(inference, size_limit_is_resource_exhausted);
    let health = HealthServer::new(HealthService { app });
    let health = ServiceExt::<axum::extract::Request>::map_response(health, size_limit_is_resource_exhausted);
    router
        .route_service(&format!("/{}/{{*method}}", GrpcInferenceServiceServer::<Inference>::NAME), inference)
        .route_service(&format!("/{}/{{*method}}", HealthServer::<HealthService>::NAME), health)
}

/// A router with only the gRPC services (for a separate `--grpc-port`).
pub fn router(app: Arc<Serving>) -> Router {
    add_routes(Router::new(), app).fallback(|| async {
        ([("content-type", "application/grpc"), ("grpc-status", "12"), ("grpc-message", "unknown service")], ())
    })
}

/// Longest gRPC error message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// tonic answers a request message over `max_decoding_message_size` with `OUT_OF_RANGE`
/// before any method runs (a trailers-only answer: the status is in the headers); gRPC's
/// convention, and every other gRPC server's answer, is `RESOURCE_EXHAUSTED`. Our methods
/// never answer `OUT_OF_RANGE` themselves.
fn size_limit_is_resource_exhausted(
    mut r: axum::http::Response<tonic::body::Body>,
) -> axum::http::Response<tonic::body::Body> {
    let out_of_range = axum::http::HeaderValue::from(Code::OutOfRange as i32);
    if r.headers().get("grpc-status") == Some(&out_of_range) {
        r.headers_mut().insert("grpc-status", axum::http::HeaderValue::from(Code::ResourceExhausted as i32));
    }
    r
}

/// Prost's codec, except that a message that does not decode (not protobuf, a string field
/// that is not UTF-8, a wrong wire type) is the caller's error, `INVALID_ARGUMENT`, rather
/// than prost's `INTERNAL`. The generated services and clients use it (`build.rs`).
pub struct Codec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Codec(ProstCodec::default())
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as tonic::codec::Codec>::Encoder;
    type Decoder = Decoder<<ProstCodec<T, U> as tonic::codec::Codec>::Decoder>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        Decoder(self.0.decoder())
    }
}

/// [`Codec`]'s decoder: prost's, with its errors made `INVALID_ARGUMENT`.
pub struct Decoder<D>(D);

impl<D: tonic::codec::Decoder<Error = Status>> tonic::codec::Decoder for Decoder<D> {
    type Item = D::Item;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<D::Item>, Status> {
        self.0.decode(buf).map_err(|s| {
            Status::invalid_argument(format!("the message is not valid protobuf: {}", shown(s.message(), 200)))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

fn status(e: ServeError) -> Status {
    let msg = shown(&e.to_string(), MAX_MESSAGE_CHARS).into_owned();
    match e {
        ServeError::Malformed(_) | ServeError::Invalid(_) | ServeError::UnsupportedMediaType(_) => {
            Status::invalid_argument(msg)
        }
        ServeError::TooLarge { .. } => Status::resource_exhausted(msg),
        ServeError::ModelNotFound { .. } => Status::not_found(msg),
        ServeError::NotReady => Status::unavailable(msg),
        ServeError::Predict(_) => Status::internal(msg),
    }
}

/// The canonical name of a gRPC code (the metrics' `status` label).
fn code_name(c: Code) -> &'static str {
    match c {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// `inference.GRPCInferenceService`.
pub struct Inference {
    app: Arc<Serving>,
}

impl Inference {
    /// Records the call in the metrics and wraps the reply.
    #[allow(clippy::result_large_err)] // tonic's own signature
    fn observe<T>(&self, method: &'static str, started: Instant, r: Result<T, Status>) -> Result<Response<T>, Status> {
        let code = r.as_ref().map_or_else(|s| s.code(), |_| Code::Ok);
        self.app.metrics.observe_request("grpc", method, code_name(code), started.elapsed());
        r.map(Response::new)
    }

    /// The model named by a request (an empty name means the one being served).
    fn model(&self, name: &str, version: &str) -> Result<Arc<crate::predictor::LoadedModel>, ServeError> {
        if name.is_empty() {
            return self.app.model();
        }
        self.app.model_named(name, Some(version))
    }

    /// Scores a request under its id: the request's `id`, else the `x-request-id` metadata,
    /// else a new one (returned beside the answer, for the answer's metadata). The answer's
    /// `id` echoes the request's, as V2 says.
    async fn infer(
        &self,
        req: ModelInferRequest,
        metadata_id: Option<&str>,
    ) -> Result<(ModelInferResponse, String), ServeError> {
        let model = self.model(&req.model_name, &req.model_version)?;
        model.check_outputs(req.outputs.iter().map(|o| o.name.as_str()))?;
        let wanted: Vec<String> = req.outputs.into_iter().map(|o| o.name).collect();
        let id = request_id::resolve(&[
            (Some(req.id.as_str()), "the request's id"),
            (metadata_id, "the x-request-id metadata"),
        ])?;
        let tensors = tensors(req.inputs, req.raw_input_contents)?;
        let frame = self.app.frame_from_v2(&model, tensors)?;
        let predictions = self.app.score(&model, frame, &id).await?;
        let answer = ModelInferResponse {
            model_name: model.name.clone(),
            model_version: model.version.clone(),
            id: req.id,
            parameters: HashMap::new(),
            outputs: predictions
                .outputs
                .into_iter()
                .filter(|t| wanted.is_empty() || wanted.contains(&t.name))
                .map(output_tensor)
                .collect(),
            raw_output_contents: Vec::new(),
        };
        Ok((answer, id))
    }
}

/// An output in the `contents` field of its type.
fn output_tensor(t: formats::Tensor) -> InferOutputTensor {
    let datatype = t.values.elem().v2_name().to_string();
    let contents = match t.values {
        formats::Values::F64(v) => InferTensorContents { fp64_contents: v, ..Default::default() },
        formats::Values::F32(v) => InferTensorContents { fp32_contents: v, ..Default::default() },
        formats::Values::I64(v) => InferTensorContents { int64_contents: v, ..Default::default() },
        formats::Values::Bool(v) => InferTensorContents { bool_contents: v, ..Default::default() },
        formats::Values::Str(v) => InferTensorContents {
            bytes_contents: v.into_iter().map(String::into_bytes).collect(),
            ..Default::default()
        },
    };
    InferOutputTensor {
        name: t.name,
        datatype,
        shape: t.shape.iter().map(|&d| d as i64).collect(),
        parameters: HashMap::new(),
        contents: Some(contents),
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for Inference {
    async fn server_live(&self, _: Request<ServerLiveRequest>) -> Result<Response<ServerLiveResponse>, Status> {
        self.observe("ServerLive", Instant::now(), Ok(ServerLiveResponse { live: true }))
    }

    async fn server_ready(&self, _: Request<ServerReadyRequest>) -> Result<Response<ServerReadyResponse>, Status> {
        self.observe("ServerReady", Instant::now(), Ok(ServerReadyResponse { ready: self.app.is_ready() }))
    }

    async fn model_ready(&self, req: Request<ModelReadyRequest>) -> Result<Response<ModelReadyResponse>, Status> {
        let started = Instant::now();
        let req = req.into_inner();
        let r = self
            .model(&req.name, &req.version)
            .map(|_| ModelReadyResponse { ready: self.app.is_ready() })
            .map_err(status);
        self.observe("ModelReady", started, r)
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        let r = ServerMetadataResponse {
            name: "factory".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: vec![],
        };
        self.observe("ServerMetadata", Instant::now(), Ok(r))
    }

    async fn model_metadata(
        &self,
        req: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let started = Instant::now();
        let req = req.into_inner();
        let r = self
            .model(&req.name, &req.version)
            .map(|m| {
                let meta = self.app.metadata(&m);
                let t = |ts: Vec<crate::service::TensorMeta>| {
                    ts.into_iter()
                        .map(|t| TensorMetadata { name: t.name, datatype: t.datatype.into(), shape: t.shape })
                        .collect()
                };
                ModelMetadataResponse {
                    name: meta.name,
                    versions: meta.versions,
                    platform: meta.platform,
                    inputs: t(meta.inputs),
                    outputs: t(meta.outputs),
                }
            })
            .map_err(status);
        self.observe("ModelMetadata", started, r)
    }

    async fn model_infer(&self, req: Request<ModelInferRequest>) -> Result<Response<ModelInferResponse>, Status> {
        let started = Instant::now();
        let scored = async {
            let metadata_id = match req.metadata().get(request_id::HEADER).map(|v| v.to_str()) {
                None => None,
                Some(Ok(v)) => Some(v.to_string()),
                Some(Err(_)) => return Err(ServeError::Invalid("the x-request-id metadata is not text".into())),
            };
            self.infer(req.into_inner(), metadata_id.as_deref()).await
        };
        let (r, id) = match scored.await {
            Ok((answer, id)) => (Ok(answer), Some(id)),
            Err(e) => (Err(status(e)), None),
        };
        let mut r = self.observe("ModelInfer", started, r);
        if let (Ok(resp), Some(id)) = (&mut r, id) {
            if let Ok(v) = id.parse() {
                resp.metadata_mut().insert(request_id::HEADER, v);
            }
        }
        r
    }
}

fn invalid(msg: String) -> ServeError {
    ServeError::Invalid(msg)
}

/// Decodes the request's inputs from `contents` or, when given, `raw_input_contents`
/// (little-endian, row-major; BYTES elements 4-byte-length-prefixed).
pub fn tensors(inputs: Vec<InferInputTensor>, raw: Vec<Vec<u8>>) -> Result<Vec<Tensor>, ServeError> {
    if !raw.is_empty() && raw.len() != inputs.len() {
        return Err(invalid(format!(
            "raw_input_contents has {} entries for {} inputs; give one per input",
            raw.len(),
            inputs.len()
        )));
    }
    let mut raw = raw.into_iter();
    inputs
        .into_iter()
        .map(|input| {
            let data = match raw.next() {
                Some(bytes) => {
                    if input.contents.as_ref().is_some_and(|c| populated(c).is_some()) {
                        return Err(invalid(format!(
                            "input '{}': give either contents or raw_input_contents, not both",
                            input.name
                        )));
                    }
                    from_raw(&input.name, &input.datatype, &bytes)?
                }
                None => from_contents(&input.name, &input.datatype, input.contents.unwrap_or_default())?,
            };
            Ok(Tensor { name: input.name, datatype: input.datatype, shape: input.shape, data })
        })
        .collect()
}

/// The name of the first non-empty field of `contents`, if any.
fn populated(c: &InferTensorContents) -> Option<&'static str> {
    [
        (!c.bool_contents.is_empty(), "bool_contents"),
        (!c.int_contents.is_empty(), "int_contents"),
        (!c.int64_contents.is_empty(), "int64_contents"),
        (!c.uint_contents.is_empty(), "uint_contents"),
        (!c.uint64_contents.is_empty(), "uint64_contents"),
        (!c.fp32_contents.is_empty(), "fp32_contents"),
        (!c.fp64_contents.is_empty(), "fp64_contents"),
        (!c.bytes_contents.is_empty(), "bytes_contents"),
    ]
    .into_iter()
    .find_map(|(set, name)| set.then_some(name))
}

fn utf8(name: &str, i: usize, b: Vec<u8>) -> Result<Option<String>, ServeError> {
    String::from_utf8(b)
        .map(Some)
        .map_err(|_| invalid(format!("input '{name}', element {i}: BYTES must be UTF-8 text")))
}

fn from_contents(name: &str, datatype: &str, c: InferTensorContents) -> Result<TensorData, ServeError> {
    let expected = match datatype {
        "FP64" => "fp64_contents",
        "FP32" => "fp32_contents",
        "INT64" => "int64_contents",
        "INT32" | "INT16" | "INT8" => "int_contents",
        "UINT64" => "uint64_contents",
        "UINT32" | "UINT16" | "UINT8" => "uint_contents",
        "BOOL" => "bool_contents",
        "BYTES" => "bytes_contents",
        // frame_from_tensors names the unsupported datatype.
        _ => return Ok(TensorData::Numeric(Vec::new())),
    };
    if let Some(found) = populated(&c).filter(|f| *f != expected) {
        return Err(invalid(format!("input '{name}' has datatype {datatype}, so its values belong in contents.{expected}, but they are in contents.{found}")));
    }
    Ok(match datatype {
        "FP64" => TensorData::Numeric(c.fp64_contents),
        "FP32" => TensorData::Numeric(c.fp32_contents.into_iter().map(f64::from).collect()),
        "INT64" => TensorData::Numeric(c.int64_contents.into_iter().map(|v| v as f64).collect()),
        "INT32" | "INT16" | "INT8" => TensorData::Numeric(c.int_contents.into_iter().map(f64::from).collect()),
        "UINT64" => TensorData::Numeric(c.uint64_contents.into_iter().map(|v| v as f64).collect()),
        "UINT32" | "UINT16" | "UINT8" => TensorData::Numeric(c.uint_contents.into_iter().map(f64::from).collect()),
        "BOOL" => TensorData::Numeric(c.bool_contents.into_iter().map(|b| if b { 1.0 } else { 0.0 }).collect()),
        _ => TensorData::Bytes(
            c.bytes_contents.into_iter().enumerate().map(|(i, b)| utf8(name, i, b)).collect::<Result<_, _>>()?,
        ),
    })
}

/// Little-endian, row-major raw contents; BYTES elements are 4-byte-length-prefixed.
fn from_raw(name: &str, datatype: &str, b: &[u8]) -> Result<TensorData, ServeError> {
    fn fixed<const N: usize>(
        name: &str,
        datatype: &str,
        b: &[u8],
        f: impl Fn([u8; N]) -> f64,
    ) -> Result<TensorData, ServeError> {
        if !b.len().is_multiple_of(N) {
            return Err(ServeError::Invalid(format!(
                "input '{name}': raw_input_contents has {} bytes, not a multiple of {N} ({datatype})",
                b.len()
            )));
        }
        Ok(TensorData::Numeric(b.chunks_exact(N).map(|c| f(c.try_into().expect("chunk size"))).collect()))
    }
    match datatype {
        "FP64" => fixed::<8>(name, datatype, b, f64::from_le_bytes),
        "FP32" => fixed::<4>(name, datatype, b, |c| f64::from(f32::from_le_bytes(c))),
        "INT64" => fixed::<8>(name, datatype, b, |c| i64::from_le_bytes(c) as f64),
        "INT32" => fixed::<4>(name, datatype, b, |c| f64::from(i32::from_le_bytes(c))),
        "INT16" => fixed::<2>(name, datatype, b, |c| f64::from(i16::from_le_bytes(c))),
        "INT8" => fixed::<1>(name, datatype, b, |c| f64::from(c[0] as i8)),
        "UINT64" => fixed::<8>(name, datatype, b, |c| u64::from_le_bytes(c) as f64),
        "UINT32" => fixed::<4>(name, datatype, b, |c| f64::from(u32::from_le_bytes(c))),
        "UINT16" => fixed::<2>(name, datatype, b, |c| f64::from(u16::from_le_bytes(c))),
        "UINT8" => fixed::<1>(name, datatype, b, |c| f64::from(c[0])),
        "BOOL" => fixed::<1>(name, datatype, b, |c| if c[0] != 0 { 1.0 } else { 0.0 }),
        "BYTES" => {
            let mut out = Vec::new();
            let mut rest = b;
            while !rest.is_empty() {
                if rest.len() < 4 {
                    return Err(invalid(format!(
                        "input '{name}': raw BYTES element {} has a truncated length prefix",
                        out.len()
                    )));
                }
                let n = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
                if rest.len() - 4 < n {
                    return Err(invalid(format!(
                        "input '{name}': raw BYTES element {} says {n} bytes, only {} left",
                        out.len(),
                        rest.len() - 4
                    )));
                }
                out.push(utf8(name, out.len(), rest[4..4 + n].to_vec())?);
                rest = &rest[4 + n..];
            }
            Ok(TensorData::Bytes(out))
        }
        _ => Ok(TensorData::Numeric(Vec::new())),
    }
}

/// `grpc.health.v1.Health`: SERVING while a model is loaded and shutdown has not begun.
pub struct HealthService {
    app: Arc<Serving>,
}

impl HealthService {
    fn status_of(&self, service: &str) -> Option<ServingStatus> {
        if service.is_empty() || service == INFERENCE_SERVICE {
            Some(if self.app.is_ready() { ServingStatus::Serving } else { ServingStatus::NotServing })
        } else {
            None
        }
    }
}

fn reply(s: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse { status: s as i32 }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(&self, req: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        let service = req.into_inner().service;
        match self.status_of(&service) {
            Some(s) => Ok(Response::new(reply(s))),
            None => {
                let service = shown(&service, 200);
                Err(Status::not_found(format!("unknown service '{service}' (known: '' and '{INFERENCE_SERVICE}')")))
            }
        }
    }

    async fn list(&self, _: Request<HealthListRequest>) -> Result<Response<HealthListResponse>, Status> {
        let statuses = ["", INFERENCE_SERVICE]
            .into_iter()
            .filter_map(|s| self.status_of(s).map(|st| (s.to_string(), reply(st))))
            .collect();
        Ok(Response::new(HealthListResponse { statuses }))
    }

    type WatchStream = WatchStream;

    /// Sends the status now and on every change; ends (after a last NOT_SERVING) when the
    /// server shuts down, so graceful shutdown is not held up by open watches.
    async fn watch(&self, req: Request<HealthCheckRequest>) -> Result<Response<WatchStream>, Status> {
        let known = self.status_of(&req.into_inner().service).is_some();
        struct St {
            ready: tokio::sync::watch::Receiver<bool>,
            stopping: tokio::sync::watch::Receiver<bool>,
            last: Option<ServingStatus>,
            done: bool,
        }
        let st = St { ready: self.app.predictor.ready(), stopping: self.app.stopping(), last: None, done: false };
        let stream = futures::stream::unfold(st, move |mut st| async move {
            loop {
                if st.done {
                    return None;
                }
                let stopping = *st.stopping.borrow_and_update();
                let ready = *st.ready.borrow_and_update();
                let now = match (known, stopping, ready) {
                    (false, _, _) => ServingStatus::ServiceUnknown,
                    (true, true, _) | (true, false, false) => ServingStatus::NotServing,
                    (true, false, true) => ServingStatus::Serving,
                };
                if stopping {
                    st.done = true;
                    return Some((Ok(reply(now)), st));
                }
                if st.last != Some(now) {
                    st.last = Some(now);
                    return Some((Ok(reply(now)), st));
                }
                let changed = tokio::select! {
                    r = st.ready.changed() => r.is_ok(),
                    r = st.stopping.changed() => r.is_ok(),
                };
                if !changed {
                    return None;
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
