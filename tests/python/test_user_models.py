"""Models users already have, logged with the stock client, served by `factory serve`; and
`factory train`'s models loaded by the stock `mlflow.pyfunc`.

Needs its own venv (scripts/test.sh makes ~/.cache/factory/venv-models from
requirements-models.txt): mlflow 3.17.2 with scikit-learn, skl2onnx, onnxmltools, onnx,
onnxruntime, lightgbm and xgboost. `factory serve` runs ONNX models with the onnxruntime
wheel's own shared library (ORT_DYLIB_PATH), so both sides run the same runtime.

Every model is logged and registered through a real `factory server`, then served from the
registry; answers are compared with the library's own prediction in this process: ONNX
Runtime's `InferenceSession.run` for ONNX models (relative 1e-5), `Booster.predict` for
LightGBM, `Booster.predict` / `XGBClassifier.predict` for XGBoost.
"""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from conftest import FACTORY_BIN, free_port
from helpers import unique
from test_serving import HOUSING, Serve, pb  # noqa: F401  (pb: the V2 gRPC stubs fixture)

mlflow = pytest.importorskip("mlflow")
onnxruntime = pytest.importorskip("onnxruntime", reason="needs the models venv (requirements-models.txt)")
skl2onnx = pytest.importorskip("skl2onnx", reason="needs the models venv (requirements-models.txt)")
onnxmltools = pytest.importorskip("onnxmltools", reason="needs the models venv")
lgb = pytest.importorskip("lightgbm", reason="needs the models venv")
xgb = pytest.importorskip("xgboost", reason="needs the models venv")
grpc = pytest.importorskip("grpc", reason="needs grpcio")
pytest.importorskip("grpc_tools", reason="needs grpcio-tools")

from skl2onnx import convert_sklearn  # noqa: E402
from skl2onnx.common.data_types import FloatTensorType, StringTensorType  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPRegressor  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("FACTORY_SHARED_DIR", REPO.parent / "shared"))
EMAILS = SHARED / "datasets" / "spam_assassin" / "emails.csv.gz"
NUMERIC = ["longitude", "latitude", "housing_median_age", "total_rooms", "total_bedrooms", "population",
           "households", "median_income"]
ORT_LIB = next((Path(onnxruntime.__file__).parent / "capi").glob("libonnxruntime.so.1*"), None)

pytestmark = [
    pytest.mark.skipif(not FACTORY_BIN, reason="needs FACTORY_BIN: these tests run the factory binary"),
    pytest.mark.skipif(not HOUSING.is_file(), reason=f"shared dataset missing: {HOUSING}"),
]


@pytest.fixture(scope="module")
def backend_kind():
    return "sqlite"


@pytest.fixture(autouse=True)
def _tracking_uri(server):
    mlflow.set_tracking_uri(server.url)


# ---------------------------------------------------------------------------------------
# data and the reference models
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def housing():
    df = pd.read_csv(HOUSING)
    y = df.pop("median_house_value").to_numpy()
    return df, y


def rel_close(got, want, tol=1e-5, what=""):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    err = np.abs(got - want) / np.maximum(np.abs(want), 1e-6)
    assert np.all(err <= tol), f"{what}: max relative error {err.max():.3e} at {int(err.argmax())}: {got.flat[err.argmax()]} vs {want.flat[err.argmax()]}"


class Logged:
    """A registered model version and how to check it."""

    def __init__(self, name, frame, reference, outputs, flavor, onnx_bytes=None):
        self.name, self.frame, self.reference, self.outputs, self.flavor = name, frame, reference, outputs, flavor
        self.onnx_bytes = onnx_bytes


def log_onnx(onx, name, example: pd.DataFrame, frame: pd.DataFrame, feeds) -> Logged:
    """Logs an ONNX model with mlflow.onnx, registers it; the reference is onnxruntime on `feeds(frame)`."""
    with mlflow.start_run():
        mlflow.onnx.log_model(onx, name="model", input_example=example, registered_model_name=name)
    sess = onnxruntime.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    ref = {}
    for n, v in zip(names, sess.run(None, feeds(frame))):
        if isinstance(v, list):  # ZipMap: one {label: probability} per row, labels in the model's order
            v = np.asarray([[d[k] for k in d] for d in v])
        ref[n] = np.asarray(v)
    return Logged(name, frame, ref, names, "onnx", onx.SerializeToString())


def column_feeds(numeric, text=()):
    """ONNX feeds with one [n, 1] input per column (what skl2onnx takes for a ColumnTransformer)."""
    def feeds(df):
        out = {c: df[[c]].to_numpy(dtype=np.float32) for c in numeric}
        out.update({c: df[[c]].to_numpy(dtype=object).astype(str) for c in text})
        return out
    return feeds


@pytest.fixture(scope="module")
def models(server, housing):
    """Every flavor and converter, logged with the stock client and registered."""
    mlflow.set_tracking_uri(server.url)
    mlflow.set_experiment(unique("user-models-"))
    df, y = housing
    clean = df.dropna().reset_index(drop=True)
    y_clean = y[df.notna().all(axis=1).to_numpy()]
    x = clean[NUMERIC]
    label = (y_clean > np.median(y_clean)).astype(np.int64)
    sample = clean.iloc[:40][NUMERIC].reset_index(drop=True)
    out = {}
    x32 = FloatTensorType([None, len(NUMERIC)])
    matrix = lambda d: {"X": d[NUMERIC].to_numpy(dtype=np.float32)}  # noqa: E731

    # scikit-learn through skl2onnx: scaler + linear, forest, gradient boosting, an MLP.
    for key, est in [
        ("linreg", Pipeline([("scale", StandardScaler()), ("lr", LinearRegression())])),
        ("forest", RandomForestRegressor(n_estimators=15, max_depth=8, random_state=0)),
        ("gbr", GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=0)),
        ("mlp", Pipeline([("scale", StandardScaler()), ("mlp", MLPRegressor(hidden_layer_sizes=(16,), max_iter=60, random_state=0))])),
    ]:
        est.fit(x.iloc[:4000], y_clean[:4000])
        onx = convert_sklearn(est, initial_types=[("X", x32)], target_opset={"": 17, "ai.onnx.ml": 3})
        out[key] = log_onnx(onx, unique(f"onnx-{key}-"), x.head(5), sample, matrix)

    # Classifiers with probabilities: ZipMap (skl2onnx's default) and a plain probability tensor.
    clf = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(max_iter=300))]).fit(x, label)
    onx = convert_sklearn(clf, initial_types=[("X", x32)], target_opset={"": 17, "ai.onnx.ml": 3})
    out["logreg_zipmap"] = log_onnx(onx, unique("onnx-logreg-"), x.head(5), sample, matrix)
    tree = DecisionTreeClassifier(max_depth=6, random_state=0).fit(x, label)
    onx = convert_sklearn(tree, initial_types=[("X", x32)], options={id(tree): {"zipmap": False}},
                          target_opset={"": 17, "ai.onnx.ml": 3})
    out["tree_proba"] = log_onnx(onx, unique("onnx-tree-"), x.head(5), sample, matrix)

    # A Pipeline with a ColumnTransformer: imputed + scaled numbers, a one-hot categorical column.
    pipe = Pipeline([
        ("prep", ColumnTransformer([
            ("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["ocean_proximity"]),
        ])),
        ("rf", RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0)),
    ]).fit(df.iloc[:5000], (y[:5000] > np.median(y)).astype(np.int64))
    types = [(c, FloatTensorType([None, 1])) for c in NUMERIC] + [("ocean_proximity", StringTensorType([None, 1]))]
    onx = convert_sklearn(pipe, initial_types=types, target_opset={"": 17, "ai.onnx.ml": 3})
    mixed = df.iloc[:40].reset_index(drop=True)  # has a missing total_bedrooms in these rows? the imputer handles it
    out["pipeline_cat"] = log_onnx(onx, unique("onnx-pipeline-"), df.head(5), mixed,
                                   column_feeds(NUMERIC, ["ocean_proximity"]))

    # LightGBM and XGBoost converted with onnxmltools.
    from onnxmltools import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType as MlFloat
    lgbm = lgb.LGBMRegressor(n_estimators=30, num_leaves=15, verbose=-1).fit(x, y_clean)
    onx = convert_lightgbm(lgbm, initial_types=[("X", MlFloat([None, len(NUMERIC)]))], target_opset=15)
    out["lgbm_onnx"] = log_onnx(onx, unique("onnx-lgbm-"), x.head(5), sample, matrix)
    xgbc = xgb.XGBClassifier(n_estimators=20, max_depth=4).fit(x.to_numpy(), label)
    onx = convert_xgboost(xgbc, initial_types=[("X", MlFloat([None, len(NUMERIC)]))], target_opset=15)
    out["xgb_onnx"] = log_onnx(onx, unique("onnx-xgb-"), x.head(5), sample, matrix)

    # LightGBM and XGBoost natively: the libraries' own formats, served without conversion.
    booster = lgb.train({"objective": "regression", "num_leaves": 15, "verbose": -1}, lgb.Dataset(x, y_clean), 40)
    name = unique("lgb-native-")
    with mlflow.start_run():
        mlflow.lightgbm.log_model(booster, name="model", input_example=x.head(5), registered_model_name=name)
    out["lgb_native"] = Logged(name, sample, {"prediction": booster.predict(sample[NUMERIC])}, ["prediction"], "lightgbm")
    booster = lgb.train({"objective": "binary", "num_leaves": 15, "verbose": -1}, lgb.Dataset(x, label), 30)
    name = unique("lgb-binary-")
    with mlflow.start_run():
        mlflow.lightgbm.log_model(booster, name="model", input_example=x.head(5), registered_model_name=name)
    out["lgb_binary"] = Logged(name, sample, {"prediction": booster.predict(sample[NUMERIC])}, ["prediction"], "lightgbm")
    xbooster = xgb.train({"objective": "reg:squarederror", "max_depth": 5}, xgb.DMatrix(x, label=y_clean), 30)
    name = unique("xgb-native-")
    with mlflow.start_run():
        mlflow.xgboost.log_model(xbooster, name="model", input_example=x.head(5), registered_model_name=name)
    out["xgb_native"] = Logged(name, sample, {"prediction": xbooster.predict(xgb.DMatrix(sample[NUMERIC]))},
                               ["prediction"], "xgboost")
    xclf = xgb.XGBClassifier(n_estimators=25, max_depth=4).fit(x, label)
    name = unique("xgb-clf-")
    with mlflow.start_run():
        mlflow.xgboost.log_model(xclf, name="model", input_example=x.head(5), registered_model_name=name,
                                 model_format="json")
    out["xgb_sklearn"] = Logged(name, sample, {"label": xclf.predict(sample[NUMERIC])}, ["label"], "xgboost")
    return out


@pytest.fixture(scope="module")
def spam_model(server):
    """A text classifier on the e-mail set: TF-IDF + logistic regression, converted by skl2onnx."""
    mlflow.set_tracking_uri(server.url)
    if not EMAILS.is_file():
        pytest.skip(f"shared dataset missing: {EMAILS}")
    with gzip.open(EMAILS, "rt", encoding="utf-8") as f:
        mails = pd.read_csv(f)
    mails = mails[mails["period"] == 1].sample(1500, random_state=0)
    text = (mails["subject"].fillna("") + " " + mails["body"].fillna("").str.slice(0, 2000)).to_numpy()
    y = (mails["label"] == "spam").astype(np.int64).to_numpy()
    # lowercase=False: skl2onnx lowercases with a StringNormalizer that needs the en_US.UTF-8
    # locale installed; the text is lowercased before it reaches the model instead.
    text = np.char.lower(text.astype(str)).astype(object)
    pipe = Pipeline([("tfidf", TfidfVectorizer(max_features=2000, lowercase=False)),
                     ("lr", LogisticRegression(max_iter=300))]).fit(text, y)
    onx = convert_sklearn(pipe, initial_types=[("text", StringTensorType([None, 1]))],
                          options={TfidfVectorizer: {"tokenexp": r"\b\w\w+\b"}},
                          target_opset={"": 17, "ai.onnx.ml": 3})
    frame = pd.DataFrame({"text": text[:25]})
    mlflow.set_experiment(unique("spam-"))
    return log_onnx(onx, unique("onnx-spam-"), frame.head(3), frame,
                    lambda d: {"text": d[["text"]].to_numpy(dtype=object).astype(str)})


# ---------------------------------------------------------------------------------------
# factory serve
# ---------------------------------------------------------------------------------------


@pytest.fixture
def serve(server, tmp_path):
    """``serve(uri, *flags)`` starts `factory serve` (HTTP and gRPC on one port) with the wheel's ONNX Runtime."""
    started = []

    def start(uri, *extra):
        args = ["--model-uri", uri, "--tracking-uri", server.url, "--poll-interval-secs", "0", *extra]
        s = Serve(tmp_path, args, env={"ORT_DYLIB_PATH": str(ORT_LIB)})
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def json_values(frame: pd.DataFrame) -> list[list]:
    return [[None if isinstance(v, float) and np.isnan(v) else (v.item() if hasattr(v, "item") else v) for v in row]
            for row in frame.itertuples(index=False)]


def mlflow_outputs(body, m: Logged) -> dict:
    """`/invocations` answer → {output name: array}, per flavor's shape."""
    preds = body["predictions"]
    if m.flavor != "onnx":
        return {m.outputs[0]: np.asarray(preds)}
    out = {}
    for name in m.outputs:
        col = [r[name] for r in preds]
        if isinstance(col[0], dict):  # ZipMap: {label: probability}, labels in the model's order
            keys = list(col[0].keys())
            col = [[r[k] for k in keys] for r in col]
        out[name] = np.asarray(col)
    return out


def v2_inputs(meta: dict, frame: pd.DataFrame) -> list[dict]:
    """One V2 input per input the metadata lists, from the frame's columns."""
    inputs = []
    for spec in meta["inputs"]:
        width = spec["shape"][1] if len(spec["shape"]) > 1 and spec["shape"][1] > 0 else 1
        cols = [spec["name"]] if spec["name"] in frame.columns else NUMERIC[:width] if width == len(NUMERIC) else None
        assert cols, f"cannot feed {spec} from {list(frame.columns)}"
        values = frame[cols].to_numpy()
        if spec["datatype"] == "BYTES":
            data = [str(v) for v in values.reshape(-1)]
        else:
            data = [None if np.isnan(v) else float(v) for v in values.astype(np.float64).reshape(-1)]
        inputs.append({"name": spec["name"], "datatype": spec["datatype"], "shape": [len(frame), len(cols)],
                       "data": data})
    return inputs


def check_answers(s: Serve, m: Logged, pb):
    rows = json_values(m.frame)
    cols = list(m.frame.columns)
    # MLflow scoring, two payload forms.
    for payload in ({"dataframe_split": {"columns": cols, "data": rows}},
                    {"dataframe_records": [dict(zip(cols, r)) for r in rows]}):
        r = requests.post(s.url + "/invocations", json=payload, timeout=30)
        assert r.status_code == 200, r.text
        got = mlflow_outputs(r.json(), m)
        for name in m.outputs:
            want = m.reference[name]
            if name in got and np.asarray(want).ndim == 2 and want.shape[1] == 1:
                want = want.reshape(-1)
            if np.asarray(want).dtype.kind in "iub":
                assert np.array_equal(got[name], np.asarray(want)), name
            else:
                rel_close(got[name], want, what=f"{m.name} /invocations {name}")
    # V2 metadata: inputs and outputs with their datatypes.
    meta = requests.get(f"{s.url}/v2/models/{m.name}", timeout=10).json()
    assert [o["name"] for o in meta["outputs"]] == m.outputs, meta
    if m.flavor == "onnx":
        sess = onnxruntime.InferenceSession(m.onnx_bytes, providers=["CPUExecutionProvider"])
        ort_types = {"tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(int64)": "INT64",
                     "tensor(string)": "BYTES", "tensor(int32)": "INT32", "tensor(bool)": "BOOL"}
        assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
            (i.name, ort_types[i.type]) for i in sess.get_inputs()], meta
        for o, so in zip(meta["outputs"], sess.get_outputs()):
            # A ZipMap (seq(map)) output is served as its probability matrix.
            expect = "FP32" if so.type.startswith("seq(") else ort_types[so.type]
            assert o["datatype"] == expect, (o, so.type)
    # V2 REST with the inputs the metadata lists.
    body = {"id": "r1", "inputs": v2_inputs(meta, m.frame)}
    r = requests.post(f"{s.url}/v2/models/{m.name}/infer", json=body, timeout=30)
    assert r.status_code == 200, r.text
    rest = {o["name"]: o for o in r.json()["outputs"]}
    for name in m.outputs:
        want = np.asarray(m.reference[name])
        o = rest[name]
        assert o["shape"][0] == len(m.frame), o
        got = np.asarray(o["data"]).reshape(want.shape)
        if want.dtype.kind in "iub":
            assert np.array_equal(got, want), name
        else:
            rel_close(got, want, what=f"{m.name} V2 REST {name}")
    # V2 gRPC, the same request.
    req = pb.v2.ModelInferRequest(model_name=m.name, id="g1")
    for i in body["inputs"]:
        t = req.inputs.add(name=i["name"], datatype=i["datatype"], shape=i["shape"])
        if i["datatype"] == "BYTES":
            t.contents.bytes_contents.extend(v.encode() for v in i["data"])
        elif i["datatype"] == "FP32":
            t.contents.fp32_contents.extend(float("nan") if v is None else v for v in i["data"])
        else:
            t.contents.fp64_contents.extend(float("nan") if v is None else v for v in i["data"])
    resp = pb.v2_grpc.GRPCInferenceServiceStub(s.channel).ModelInfer(req, timeout=30)
    by_name = {o.name: o for o in resp.outputs}
    for name in m.outputs:
        o = by_name[name]
        field = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT64": "int64_contents", "BYTES": "bytes_contents"}[o.datatype]
        vals = list(getattr(o.contents, field))
        assert vals == list(rest[name]["data"]) or np.allclose(np.asarray(vals, dtype=float), np.asarray(rest[name]["data"], dtype=float), rtol=1e-7), name


ALL = ["linreg", "forest", "gbr", "mlp", "logreg_zipmap", "tree_proba", "pipeline_cat", "lgbm_onnx", "xgb_onnx",
       "lgb_native", "lgb_binary", "xgb_native", "xgb_sklearn"]


# ONNX graphs of numeric regressors that factory evaluates itself (formats::onnx::native);
# the other ONNX models run in ONNX Runtime. Both must answer as Python's onnxruntime does.
NATIVE = {"linreg", "forest", "gbr", "lgbm_onnx"}


@pytest.mark.parametrize("key", ALL)
def test_serves_logged_models_like_the_library(models, key, serve, pb):
    m = models[key]
    s = serve(f"models:/{m.name}/1")
    check_answers(s, m, pb)
    log = re.sub(r"\x1b\[[0-9;]*m", "", s.log_path.read_text())
    engine = re.search(r"model serving.*engine=(\w+)", log)
    assert engine, log[-3000:]
    want = "native" if m.flavor != "onnx" or key in NATIVE else "onnxruntime"
    assert engine.group(1) == want, (key, log[-3000:])


@pytest.mark.parametrize("key", ["logreg_zipmap", "lgb_native", "xgb_sklearn"])
def test_factory_predict_scores_logged_models(models, key, server, tmp_path):
    """`factory predict` writes one CSV column per output value, as the library predicts."""
    m = models[key]
    rows = tmp_path / "rows.csv"
    m.frame.to_csv(rows, index=False)
    out = tmp_path / "out.csv"
    proc = subprocess.run([FACTORY_BIN, "predict", "--model-uri", f"models:/{m.name}/1", "--input", str(rows),
                           "--output", str(out), "--tracking-uri", server.url],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "ORT_DYLIB_PATH": str(ORT_LIB)})
    assert proc.returncode == 0, proc.stderr
    got = pd.read_csv(out)
    for name in m.outputs:
        want = np.asarray(m.reference[name])
        cols = [c for c in got.columns if c == name or c.startswith(f"{name}_")]
        values = got[cols].to_numpy()
        if want.ndim == 1:
            values = values.reshape(-1)
        if want.dtype.kind in "iub":
            assert np.array_equal(values, want), (name, cols)
        else:
            rel_close(values, want, what=f"factory predict {key} {name}")


def test_text_classifier_on_emails(spam_model, serve, pb):
    s = serve(f"models:/{spam_model.name}/1")
    check_answers(s, spam_model, pb)


def test_answers_have_mlflow_models_serve_shape(models, server, tmp_path):
    """Our /invocations body has the structure `mlflow models serve` gives for the same versions."""
    for key in ["linreg", "logreg_zipmap", "lgb_native"]:
        m = models[key]
        port = free_port()
        log = open(tmp_path / f"mlflow-serve-{key}.log", "wb")
        peer = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", f"models:/{m.name}/1",
             "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1"],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
                 "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"})
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    time.sleep(0.3)
            else:
                raise AssertionError((tmp_path / f"mlflow-serve-{key}.log").read_text()[-3000:])
            rows = json_values(m.frame.iloc[:5])
            payload = {"dataframe_split": {"columns": list(m.frame.columns), "data": rows}}
            theirs = requests.post(f"http://127.0.0.1:{port}/invocations", json=payload, timeout=60).json()
            s = Serve(tmp_path, ["--model-uri", f"models:/{m.name}/1", "--tracking-uri", server.url],
                      env={"ORT_DYLIB_PATH": str(ORT_LIB)})
            try:
                ours = requests.post(s.url + "/invocations", json=payload, timeout=30).json()
            finally:
                s.stop()
            assert _structure(ours) == _structure(theirs), (ours, theirs)
            for a, b in zip(_leaves(ours), _leaves(theirs)):
                assert (a == b) if not isinstance(a, float) else abs(a - b) <= 1e-5 * max(abs(b), 1e-6), (a, b)
        finally:
            peer.send_signal(signal.SIGTERM)
            peer.wait(timeout=30)


def _structure(v):
    if isinstance(v, dict):
        return {k: _structure(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_structure(x) for x in v]
    return type(v).__name__ if not isinstance(v, int) or isinstance(v, bool) else "number"


def _leaves(v):
    if isinstance(v, dict):
        for k in v:
            yield from _leaves(v[k])
    elif isinstance(v, list):
        for x in v:
            yield from _leaves(x)
    else:
        yield v


# ---------------------------------------------------------------------------------------
# bad models and hot reload
# ---------------------------------------------------------------------------------------


def test_bad_versions_are_refused_and_the_good_one_keeps_serving(models, serve, housing, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from sklearn.linear_model import Ridge

    good = models["linreg"]
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(good.name, "prod", "1")
    s = serve(f"models:/{good.name}@prod")
    rows = json_values(good.frame.iloc[:3])
    payload = {"dataframe_split": {"columns": list(good.frame.columns), "data": rows}}
    before = requests.post(s.url + "/invocations", json=payload, timeout=30).json()

    # v2: an ONNX model with an operator nobody implements.
    node = helper.make_node("Frobnicate", ["X"], ["variable"], domain="example.custom")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 8])],
                              [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])])
    bad = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("example.custom", 1)])
    with mlflow.start_run():
        mlflow.onnx.log_model(bad, name="model", registered_model_name=good.name)
    # v3: a pickled scikit-learn model (no flavor factory serves).
    df, y = housing
    ridge = Ridge().fit(df[NUMERIC].fillna(0), y)
    with mlflow.start_run():
        mlflow.sklearn.log_model(ridge, name="model", registered_model_name=good.name)

    for version, needle in [("2", "Frobnicate"), ("3", "sklearn")]:
        client.set_registered_model_alias(good.name, "prod", version)
        r = s.reload(timeout=60)
        assert r.status_code == 409, r.text
        assert needle in r.json()["error"], r.json()
        health = requests.get(s.url + "/health", timeout=5).json()
        assert health["model_version"] == "1" and needle in health["last_reload_error"]["error"], health
        again = requests.post(s.url + "/invocations", json=payload, timeout=30).json()
        assert again == before

    # `factory serve` refuses to start on a bad version, naming the operator.
    port = free_port()
    proc = subprocess.run([FACTORY_BIN, "serve", "--model-uri", f"models:/{good.name}/2", "--tracking-uri",
                           mlflow.get_tracking_uri(), "--port", str(port), "--grpc-port", str(port)],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "ORT_DYLIB_PATH": str(ORT_LIB)})
    assert proc.returncode != 0 and "Frobnicate" in proc.stderr, proc.stderr

    # Without the runtime library, a graph only ONNX Runtime runs is refused saying how to get it ...
    missing = str(tmp_path / "missing.so")
    proc = subprocess.run([FACTORY_BIN, "serve", "--model-uri", f"models:/{models['mlp'].name}/1", "--tracking-uri",
                           mlflow.get_tracking_uri(), "--port", str(port), "--grpc-port", str(port),
                           "--onnxruntime-lib", missing],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "pip install onnxruntime" in proc.stderr, proc.stderr
    # ... while the scaled linear regression, evaluated natively, needs no library at all.
    native = serve(f"models:/{good.name}/1", "--onnxruntime-lib", missing)
    assert requests.post(native.url + "/invocations", json=payload, timeout=30).json() == before


# ---------------------------------------------------------------------------------------
# ONNX out: factory train → mlflow.pyfunc
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gbm", "linear"])
def test_pyfunc_loads_factory_models_and_predicts_what_serve_does(server, serve, housing, kind):
    name = unique(f"factory-{kind}-")
    proc = subprocess.run(
        [FACTORY_BIN, "train", "--data", str(HOUSING), "--experiment", f"exp-{name}", "--model-name", name,
         "--model", kind, "--max-iter", "30", "--json"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "MLFLOW_TRACKING_URI": server.url})
    assert proc.returncode == 0, proc.stderr
    df, _ = housing
    rows = df.iloc[:50].reset_index(drop=True)  # rows with a missing total_bedrooms included
    model = mlflow.pyfunc.load_model(f"models:/{name}/1")
    # mlflow.onnx feeds `df[column].values`: with pandas 3's string dtype that is not a numpy
    # array, which onnxruntime refuses, so text columns go in as object columns.
    theirs = model.predict(rows.astype({"ocean_proximity": object}))
    assert list(theirs.columns) == ["prediction"]
    s = serve(f"models:/{name}/1")
    payload = {"dataframe_split": {"columns": list(rows.columns), "data": json_values(rows)}}
    ours = requests.post(s.url + "/invocations", json=payload, timeout=30).json()["predictions"]
    # The GBM's ONNX tree ensemble sums in float32 (documented); the linear model in float64.
    rel_close(theirs["prediction"].to_numpy(), ours, tol=1e-5 if kind == "gbm" else 1e-12, what=kind)
    meta = requests.get(f"{s.url}/v2/models/{name}", timeout=10).json()
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
        (c, "BYTES" if c == "ocean_proximity" else "FP64") for c in rows.columns]
    assert meta["outputs"] == [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
