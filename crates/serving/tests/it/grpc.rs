//! gRPC: the V2 inference service (typed and raw contents) and grpc.health.v1.

use crate::support::*;
use futures::StreamExt;
use serving::proto::health::health_check_response::ServingStatus;
use serving::proto::health::{HealthCheckRequest, HealthListRequest};
use serving::proto::inference::model_infer_request::InferInputTensor;
use serving::proto::inference::*;
use tonic::Code;

fn fp64(name: &str, v: Vec<f64>) -> InferInputTensor {
    InferInputTensor {
        name: name.into(),
        datatype: "FP64".into(),
        shape: vec![v.len() as i64],
        contents: Some(InferTensorContents { fp64_contents: v, ..Default::default() }),
        ..Default::default()
    }
}

fn bytes(name: &str, v: &[&str]) -> InferInputTensor {
    InferInputTensor {
        name: name.into(),
        datatype: "BYTES".into(),
        shape: vec![v.len() as i64],
        contents: Some(InferTensorContents {
            bytes_contents: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn columns(n: usize) -> Vec<InferInputTensor> {
    let f = rows(n);
    let num = |c: &str| match &f.column(c).unwrap().data {
        learn::ColumnData::Numeric(v) => v.clone(),
        _ => unreachable!(),
    };
    let colors: Vec<String> = match &f.column("color").unwrap().data {
        learn::ColumnData::Categorical(v) => v.iter().map(|s| s.clone().unwrap()).collect(),
        _ => unreachable!(),
    };
    let refs: Vec<&str> = colors.iter().map(String::as_str).collect();
    vec![fp64("x1", num("x1")), fp64("x2", num("x2")), bytes("color", &refs)]
}

fn request(inputs: Vec<InferInputTensor>) -> ModelInferRequest {
    ModelInferRequest { model_name: "housing".into(), id: "g-1".into(), inputs, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_service_on_a_separate_port() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("housing");
    write_package(&dir, 0.0, "1");
    let expected: Vec<u64> = load_model(&dir).predict(&rows(5)).unwrap().iter().map(|x| x.to_bits()).collect();
    let s = TestServer::start(serving::Config::new(dir.to_string_lossy(), "http://127.0.0.1:9"), true).await;
    let mut c = s.inference().await;

    assert!(c.server_live(ServerLiveRequest {}).await.unwrap().into_inner().live);
    assert!(c.server_ready(ServerReadyRequest {}).await.unwrap().into_inner().ready);
    let ready = c.model_ready(ModelReadyRequest { name: "housing".into(), version: "m-1".into() }).await.unwrap();
    assert!(ready.into_inner().ready);
    let err = c.model_ready(ModelReadyRequest { name: "housing".into(), version: "7".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let meta = c.server_metadata(ServerMetadataRequest {}).await.unwrap().into_inner();
    assert_eq!(meta.name, "factory");
    let m = c
        .model_metadata(ModelMetadataRequest { name: "housing".into(), version: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (m.name.as_str(), m.versions.clone(), m.platform.as_str()),
        ("housing", vec!["m-1".to_string()], "factory-gbm")
    );
    let inputs: Vec<(String, String, Vec<i64>)> =
        m.inputs.iter().map(|t| (t.name.clone(), t.datatype.clone(), t.shape.clone())).collect();
    assert_eq!(
        inputs,
        vec![
            ("x1".into(), "FP64".into(), vec![-1]),
            ("x2".into(), "FP64".into(), vec![-1]),
            ("color".into(), "BYTES".into(), vec![-1])
        ]
    );
    assert_eq!(m.outputs[0].name, "prediction");

    // Typed contents.
    let r = c.model_infer(request(columns(5))).await.unwrap().into_inner();
    assert_eq!((r.model_name.as_str(), r.model_version.as_str(), r.id.as_str()), ("housing", "m-1", "g-1"));
    // Without an id: the x-request-id metadata, else a new one; the answer carries it back.
    let mut req = tonic::Request::new(ModelInferRequest { id: String::new(), ..request(columns(1)) });
    req.metadata_mut().insert("x-request-id", "meta-1".parse().unwrap());
    let resp = c.model_infer(req).await.unwrap();
    assert_eq!(resp.metadata().get("x-request-id").unwrap(), "meta-1");
    assert_eq!(resp.into_inner().id, "", "the answer's id echoes the request's");
    let made = c.model_infer(ModelInferRequest { id: String::new(), ..request(columns(1)) }).await.unwrap();
    assert_eq!(made.metadata().get("x-request-id").unwrap().len(), 32);
    let bad = c.model_infer(ModelInferRequest { id: "a\u{1}b".into(), ..request(columns(1)) }).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    let out = &r.outputs[0];
    assert_eq!((out.name.as_str(), out.datatype.as_str(), out.shape.clone()), ("prediction", "FP64", vec![5]));
    let got: Vec<u64> = out.contents.as_ref().unwrap().fp64_contents.iter().map(|x| x.to_bits()).collect();
    assert_eq!(got, expected);

    // raw_input_contents: little-endian FP64, length-prefixed BYTES.
    let mut req = request(columns(5));
    let mut raw = Vec::new();
    for t in &mut req.inputs {
        let c = t.contents.take().unwrap();
        raw.push(if t.datatype == "FP64" {
            c.fp64_contents.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()
        } else {
            c.bytes_contents
                .iter()
                .flat_map(|b| (b.len() as u32).to_le_bytes().into_iter().chain(b.iter().copied()))
                .collect()
        });
    }
    req.raw_input_contents = raw;
    let r = c.model_infer(req).await.unwrap().into_inner();
    let got: Vec<u64> = r.outputs[0].contents.as_ref().unwrap().fp64_contents.iter().map(|x| x.to_bits()).collect();
    assert_eq!(got, expected);

    // Other numeric datatypes are widened to f64.
    let mut req = request(columns(5));
    let x1 = req.inputs[0].contents.take().unwrap().fp64_contents;
    req.inputs[0].datatype = "FP32".into();
    req.inputs[0].contents =
        Some(InferTensorContents { fp32_contents: x1.iter().map(|x| *x as f32).collect(), ..Default::default() });
    let x2 = req.inputs[1].contents.take().unwrap().fp64_contents;
    req.inputs[1].datatype = "INT64".into();
    req.inputs[1].contents =
        Some(InferTensorContents { int64_contents: x2.iter().map(|x| *x as i64).collect(), ..Default::default() });
    let r = c.model_infer(req).await.unwrap().into_inner();
    let got: Vec<u64> = r.outputs[0].contents.as_ref().unwrap().fp64_contents.iter().map(|x| x.to_bits()).collect();
    assert_eq!(got, expected);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_grpc_input_is_invalid_argument_naming_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("housing");
    write_package(&dir, 0.0, "1");
    let s = TestServer::local(&dir).await;
    let mut c = s.inference().await;
    type Mutate = Box<dyn Fn(&mut ModelInferRequest)>;
    let cases: Vec<(Mutate, Code, &str)> = vec![
        (Box::new(|r| r.inputs.truncate(2)), Code::InvalidArgument, "missing input(s): color"),
        (Box::new(|r| r.inputs.push(fp64("zz", vec![1.0; 3]))), Code::InvalidArgument, "unexpected input(s): zz"),
        (
            Box::new(|r| r.inputs[2] = fp64("color", vec![1.0; 3])),
            Code::InvalidArgument,
            "column 'color' is categorical",
        ),
        (Box::new(|r| r.inputs[0].shape = vec![4]), Code::InvalidArgument, "needs 4 values, got 3"),
        (
            Box::new(|r| {
                r.inputs[0].contents = Some(InferTensorContents { int64_contents: vec![1, 2, 3], ..Default::default() })
            }),
            Code::InvalidArgument,
            "belong in contents.fp64_contents, but they are in contents.int64_contents",
        ),
        (
            Box::new(|r| r.inputs[1] = fp64("x2", vec![1.0, f64::INFINITY, 2.0])),
            Code::InvalidArgument,
            "row 2, column 'x2': infinite",
        ),
        (
            Box::new(|r| r.raw_input_contents = vec![vec![0; 3]]),
            Code::InvalidArgument,
            "raw_input_contents has 1 entries for 3 inputs",
        ),
        (Box::new(|r| r.inputs = vec![]), Code::InvalidArgument, "no inputs"),
        (Box::new(|r| r.model_name = "nope".into()), Code::NotFound, "model 'nope'"),
        (Box::new(|r| r.model_version = "9".into()), Code::NotFound, "version '9'"),
        (
            Box::new(|r| {
                r.outputs =
                    vec![model_infer_request::InferRequestedOutputTensor { name: "nope".into(), ..Default::default() }]
            }),
            Code::InvalidArgument,
            "unknown output 'nope' requested",
        ),
    ];
    for (mutate, code, needle) in cases {
        let mut req = request(columns(3));
        mutate(&mut req);
        let err = c.model_infer(req).await.unwrap_err();
        assert_eq!(err.code(), code, "{needle}: {err:?}");
        assert!(err.message().contains(needle), "'{}' should mention '{needle}'", err.message());
    }
    // Still serving.
    assert!(c.model_infer(request(columns(3))).await.is_ok());
    let (_, text) = s.get("/metrics").await;
    assert!(
        text.contains("factory_requests_total{protocol=\"grpc\",route=\"ModelInfer\",status=\"INVALID_ARGUMENT\"} 9"),
        "{text}"
    );
    assert!(text.contains("factory_requests_total{protocol=\"grpc\",route=\"ModelInfer\",status=\"OK\"} 1"), "{text}");
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_list_and_watch_until_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("housing");
    write_package(&dir, 0.0, "1");
    let s = TestServer::local(&dir).await;
    let mut h = s.health_client().await;
    for service in ["", "inference.GRPCInferenceService"] {
        let r = h.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let err = h.check(HealthCheckRequest { service: "nope".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let list = h.list(HealthListRequest {}).await.unwrap().into_inner();
    assert_eq!(list.statuses.len(), 2);

    let mut unknown = h.watch(HealthCheckRequest { service: "nope".into() }).await.unwrap().into_inner();
    assert_eq!(unknown.next().await.unwrap().unwrap().status, ServingStatus::ServiceUnknown as i32);
    let mut watch = h.watch(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    assert_eq!(watch.next().await.unwrap().unwrap().status, ServingStatus::Serving as i32);
    // Shutdown: the watch says NOT_SERVING and ends, and does not hold up the shutdown.
    let stopped = tokio::spawn(s.stop());
    assert_eq!(watch.next().await.unwrap().unwrap().status, ServingStatus::NotServing as i32);
    assert!(watch.next().await.is_none_or(|r| r.is_err()));
    tokio::time::timeout(std::time::Duration::from_secs(5), stopped)
        .await
        .expect("shutdown was held up")
        .unwrap()
        .unwrap();
}

/// A codec that sends and receives message bytes as they are, to send what no stub would.
#[derive(Default)]
struct RawCodec;
struct Raw;

impl tonic::codec::Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

/// Sends `message` as the request of `path`: the error status.
async fn raw_call(s: &TestServer, path: &'static str, message: Vec<u8>) -> tonic::Status {
    let mut g = tonic::client::Grpc::new(s.channel().await).max_encoding_message_size(usize::MAX);
    g.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    g.unary(tonic::Request::new(message), path, RawCodec).await.unwrap_err()
}

/// A protobuf string field: tag (field << 3 | 2), length, bytes.
fn string_field(field: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![field << 3 | 2];
    let mut n = value.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        out.push(if n == 0 { b } else { b | 0x80 });
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(value);
    out
}

/// Issue: tonic answered undecodable messages INTERNAL and oversized ones OUT_OF_RANGE, and
/// Health/Check echoed a 1 MB service name into its message (the client then failed on
/// metadata size). Messages are the caller's error, INVALID_ARGUMENT; sizes
/// RESOURCE_EXHAUSTED; echoed values are cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_oversized_and_echoing_requests_get_the_right_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("housing");
    write_package(&dir, 0.0, "1");
    let mut cfg = serving::Config::new(dir.to_string_lossy(), "http://127.0.0.1:9");
    cfg.grpc_max_message_bytes = Some(64 * 1024);
    let s = TestServer::start(cfg, false).await;
    const INFER: &str = "/inference.GRPCInferenceService/ModelInfer";
    const CHECK: &str = "/grpc.health.v1.Health/Check";
    let cases: Vec<(&str, Vec<u8>, Code, &str)> = vec![
        (INFER, vec![0xff; 12], Code::InvalidArgument, "not valid protobuf"),
        (INFER, string_field(1, b"\xff\xfe"), Code::InvalidArgument, "not valid protobuf"),
        (CHECK, string_field(1, b"\xc3"), Code::InvalidArgument, "not valid protobuf"),
        (INFER, string_field(1, &vec![b'a'; 100 * 1024]), Code::ResourceExhausted, "too large"),
    ];
    for (path, message, code, needle) in cases {
        let err = raw_call(&s, path, message).await;
        assert_eq!(err.code(), code, "{path}: {err:?}");
        assert!(err.message().contains(needle), "{path}: {err:?}");
    }
    // A 1 MB service name or model name comes back cut, not as a 1 MB message.
    let mut h = s.health_client().await;
    let err = h.check(HealthCheckRequest { service: "s".repeat(1 << 20) }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().len() < 400 && err.message().contains("sss…"), "{}", err.message().len());
    let mut c = s.inference().await;
    let mut req = request(columns(3));
    req.model_name = "m".repeat(40_000);
    let err = c.model_infer(req).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().len() < 600 && err.message().contains("mmm…"), "{}", err.message().len());
    // Still serving.
    assert!(c.model_infer(request(columns(3))).await.is_ok());
    s.stop().await.unwrap();
}
