"""A text classifier end to end: `factory train` on e-mail text (linear model over the TF-IDF of
`subject` and `body`, positive label `spam`, holdout = a separate test file) registers it with
alias `prod`; `factory serve` serves `models:/<name>@prod`; MLflow scoring, V2 REST, the request
log and `factory predict` must agree.

Data: a deterministic subset of the SpamAssassin e-mails (../shared/datasets/spam_assassin/
emails.csv.gz beside the repository, or FACTORY_SHARED_DIR): every 5th e-mail of period 1 (600,
50 of them spam) to train, every 13th of period 2 (200, 92 spam) to test. The CSVs quote every
field: a few bodies hold a bare carriage return, which a minimally quoted CSV leaves bare.

Needs FACTORY_BIN. SQLite only (serving does not care about the tracking database).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from conftest import FACTORY_BIN
from helpers import unique
import test_serving as serving
from test_serving import factory, pb  # noqa: F401 (pb: the gRPC stubs fixture)

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("FACTORY_SHARED_DIR", REPO.parent / "shared"))
EMAILS = SHARED / "datasets" / "spam_assassin" / "emails.csv.gz"
FEATURES = ["subject", "body"]
TRAIN_ROWS, TEST_ROWS = 600, 200
csv.field_size_limit(1 << 30)  # e-mail bodies in the request log's CSV can exceed the 128 KiB default

pytestmark = [
    pytest.mark.skipif(not FACTORY_BIN, reason="needs FACTORY_BIN: these tests run the factory binary"),
    pytest.mark.skipif(not EMAILS.is_file(), reason=f"shared dataset missing: {EMAILS}"),
]


@pytest.fixture(scope="module")
def backend_kind():
    """Serving does not care about the tracking database: SQLite only."""
    return "sqlite"


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


class Data:
    """The train/test files and the test rows as the tests send them."""

    def __init__(self, folder: Path):
        import pandas as pd

        emails = pd.read_csv(EMAILS, keep_default_na=False, dtype=str)
        period = emails["period"].astype(int)
        train = emails[period == 1].iloc[::5].head(TRAIN_ROWS)
        test = emails[period == 2].iloc[::13].head(TEST_ROWS)
        assert len(train) == TRAIN_ROWS and len(test) == TEST_ROWS
        assert set(train["label"]) == set(test["label"]) == {"spam", "ham"}
        self.train_csv = folder / "train.csv"
        self.test_csv = folder / "test.csv"
        self.features_csv = folder / "test-features.csv"  # `factory predict` refuses columns the model does not take
        train[[*FEATURES, "label"]].to_csv(self.train_csv, index=False, quoting=csv.QUOTE_ALL)
        test[[*FEATURES, "label"]].to_csv(self.test_csv, index=False, quoting=csv.QUOTE_ALL)
        test[FEATURES].to_csv(self.features_csv, index=False, quoting=csv.QUOTE_ALL)
        self.rows = test[FEATURES].values.tolist()  # [[subject, body], ...]
        self.y = [1 if v == "spam" else 0 for v in test["label"]]


def v2_request(rows: list[list[str]], request_id: str | None = None, columns=FEATURES) -> dict:
    """One BYTES input per text column, one element per row."""
    body = {
        "inputs": [
            {"name": c, "shape": [len(rows)], "datatype": "BYTES", "data": [r[FEATURES.index(c)] for r in rows]}
            for c in columns
        ]
    }
    if request_id is not None:
        body["id"] = request_id
    return body


def outputs_by_name(reply: dict) -> dict:
    return {o["name"]: o for o in reply["outputs"]}


class Serve(serving.Serve):
    """`factory serve` (HTTP and gRPC on one port) with a request log folder, and a JSON POST."""

    def __init__(self, workdir: Path, args: list[str]):
        self.request_log = workdir / "requests"
        super().__init__(workdir, ["--request-log", str(self.request_log), *args])

    def post(self, path: str, body: dict, headers: dict | None = None) -> requests.Response:
        return self.http.post(self.url + path, data=json.dumps(body), timeout=30,
                              headers={"Content-Type": "application/json", **(headers or {})})


def roc_auc(y: list[int], p: list[float]) -> float:
    """Mann-Whitney U, tied scores sharing their mean rank (as scikit-learn and learn::roc_auc)."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    rank_sum, i = 0.0, 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and p[order[j + 1]] == p[order[i]]:
            j += 1
        rank_sum += ((i + j) / 2 + 1) * sum(y[k] for k in order[i:j + 1])
        i = j + 1
    n_pos = sum(y)
    n_neg = len(y) - n_pos
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def holdout_metrics(y: list[int], p: list[float]) -> dict:
    pred = [int(x >= 0.5) for x in p]
    tp = sum(1 for a, b in zip(y, pred) if a == 1 and b == 1)
    fp = sum(1 for a, b in zip(y, pred) if a == 0 and b == 1)
    fn = sum(1 for a, b in zip(y, pred) if a == 1 and b == 0)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    eps = 2.0**-52  # f64::EPSILON, the clipping of learn::log_loss and scikit-learn
    clip = lambda x: min(max(x, eps), 1 - eps)  # noqa: E731
    return {
        "accuracy": sum(a == b for a, b in zip(y, pred)) / len(y),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "roc_auc": roc_auc(y, p),
        "log_loss": -sum(a * math.log(clip(b)) + (1 - a) * math.log(1 - clip(b)) for a, b in zip(y, p)) / len(y),
    }


def read_jsonl(folder: Path) -> list[dict]:
    """Every complete JSON line of the request log so far (a line being written is skipped)."""
    records = []
    for path in sorted(folder.glob("requests-*.jsonl")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return records


def read_csv_log(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(folder.glob("requests-*.csv")):
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            try:
                rows.extend(csv.DictReader(f))
            except csv.Error:  # a row being written
                pass
    return rows


# ---------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Data:
    return Data(tmp_path_factory.mktemp("emails"))


@pytest.fixture(scope="module")
def trained(server, data):
    """The classifier trained on the e-mails and promoted to `prod`: (name, train output)."""
    name = unique("spam-")
    proc = factory(
        "train", "--data", str(data.train_csv), "--test-data", str(data.test_csv), "--target", "label",
        "--positive-label", "spam", "--task", "classification", "--model", "linear",
        "--text-columns", ",".join(FEATURES), "--experiment", f"exp-{name}", "--model-name", name,
        "--alias", "prod", "--json", "--tracking-uri", server.url,
    )
    return name, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def serve(server, trained, tmp_path_factory):
    name, _ = trained
    s = Serve(tmp_path_factory.mktemp("serve"), ["--tracking-uri", server.url, "--model-uri", f"models:/{name}@prod"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def predicted(server, trained, data, tmp_path_factory) -> list[float]:
    """`factory predict` over the test rows: the probabilities of spam."""
    name, _ = trained
    out = tmp_path_factory.mktemp("predict") / "pred.csv"
    factory("predict", "--model-uri", f"models:/{name}@prod", "--input", str(data.features_csv), "--output", str(out),
            "--tracking-uri", server.url)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == TEST_ROWS
    assert list(rows[0]) == ["probability", "prediction"], list(rows[0])
    # The label beside the probability, by the same threshold as serve's.
    assert all(int(r["prediction"]) == int(float(r["probability"]) >= 0.5) for r in rows)
    return [float(r["probability"]) for r in rows]


# ---------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------


def test_train_registers_and_reports_the_holdout_of_the_test_file(server, trained, data, predicted):
    name, out = trained
    metrics = out["metrics"]
    for key in ("f1", "roc_auc", "precision", "recall", "accuracy", "log_loss"):
        assert key in metrics, (key, metrics)
    assert 0.0 <= metrics["f1"] <= 1.0 and metrics["log_loss"] > 0
    # scikit-learn's TfidfVectorizer() + LogisticRegression() reach 0.98 AUC on these rows.
    assert metrics["roc_auc"] > 0.85, metrics
    # The holdout is test.csv: the metrics are those of the registered model's probabilities on it.
    expected = holdout_metrics(data.y, predicted)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    client = MlflowClient(server.url)
    v = client.get_model_version_by_alias(name, "prod")
    assert v.version == out["version"] and v.run_id == out["run_id"]
    run = client.get_run(out["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["roc_auc"] == pytest.approx(metrics["roc_auc"])


def test_mlflow_scoring_answers_the_probabilities(serve, trained, data):
    name, _ = trained
    rows = data.rows[:5]
    r = serve.post("/invocations", {"dataframe_split": {"columns": FEATURES, "data": rows}})
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert len(predictions) == 5
    assert all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in predictions), predictions
    assert r.headers.get("X-Request-Id")
    v2 = serve.post(f"/v2/models/{name}/infer", v2_request(rows))
    assert v2.status_code == 200, v2.text
    assert predictions == pytest.approx(outputs_by_name(v2.json())["probability"]["data"], rel=1e-12)


def test_v2_rest_bytes_inputs_give_probability_and_label(serve, trained, data):
    name, out = trained
    rows = data.rows[:8]
    r = serve.post(f"/v2/models/{name}/infer", v2_request(rows, "abc"))
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["id"] == "abc"
    assert r.headers["X-Request-Id"] == "abc"
    assert reply["model_name"] == name and reply["model_version"] == out["version"]
    outputs = outputs_by_name(reply)
    assert set(outputs) == {"probability", "label"}, list(outputs)
    prob, label = outputs["probability"], outputs["label"]
    assert prob["datatype"] == "FP64" and prob["shape"] == [8]
    assert label["datatype"] == "INT64" and label["shape"] == [8]
    assert all(0.0 <= p <= 1.0 for p in prob["data"]), prob["data"]
    assert all(isinstance(v, int) and v in (0, 1) for v in label["data"]), label["data"]
    assert label["data"] == [int(p >= 0.5) for p in prob["data"]]
    # The metadata lists the two text inputs and both outputs.
    meta = serve.http.get(f"{serve.url}/v2/models/{name}", timeout=10).json()
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [("subject", "BYTES"), ("body", "BYTES")]
    assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [("probability", "FP64"), ("label", "INT64")]


def test_grpc_model_infer_gives_probability_label_and_the_request_id(serve, trained, data, pb):
    import grpc

    name, _ = trained
    rows = data.rows[:6]
    req = pb.v2.ModelInferRequest(model_name=name)
    for j, c in enumerate(FEATURES):
        t = req.inputs.add(name=c, shape=[len(rows)], datatype="BYTES")
        t.contents.bytes_contents.extend(r[j].encode() for r in rows)
    with grpc.insecure_channel(f"127.0.0.1:{serve.port}") as channel:
        stub = pb.v2_grpc.GRPCInferenceServiceStub(channel)
        reply, call = stub.ModelInfer.with_call(req, metadata=[("x-request-id", "grpc-7")], timeout=10)
        assert ("x-request-id", "grpc-7") in tuple(call.initial_metadata())
        outputs = {o.name: o for o in reply.outputs}
        assert set(outputs) == {"probability", "label"}
        prob = list(outputs["probability"].contents.fp64_contents)
        label = list(outputs["label"].contents.int64_contents)
        assert outputs["probability"].datatype == "FP64" and outputs["label"].datatype == "INT64"
        assert label == [int(p >= 0.5) for p in prob]
        rest = serve.post(f"/v2/models/{name}/infer", v2_request(rows))
        assert prob == pytest.approx(outputs_by_name(rest.json())["probability"]["data"], rel=1e-12)
        meta = stub.ModelMetadata(pb.v2.ModelMetadataRequest(name=name), timeout=10)
        assert [(t.name, t.datatype) for t in meta.inputs] == [("subject", "BYTES"), ("body", "BYTES")]
        # A number where the model takes text: INVALID_ARGUMENT naming the input.
        bad = pb.v2.ModelInferRequest(model_name=name)
        bad.inputs.add(name="subject", shape=[1], datatype="FP64").contents.fp64_contents.append(1.0)
        bad.inputs.add(name="body", shape=[1], datatype="BYTES").contents.bytes_contents.append(b"hi")
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(bad, timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "subject" in e.value.details()


def test_request_log_has_each_row_with_its_id_label_and_probability(serve, trained, data):
    name, out = trained
    inv_id, v2_id = unique("inv-"), unique("v2-")
    inv_rows, v2_rows = data.rows[10:13], data.rows[20:21]
    r = serve.post("/invocations", {"dataframe_split": {"columns": FEATURES, "data": inv_rows}},
                   headers={"X-Request-Id": inv_id})
    assert r.status_code == 200, r.text
    assert r.headers["X-Request-Id"] == inv_id
    inv_probs = r.json()["predictions"]
    r = serve.post(f"/v2/models/{name}/infer", v2_request(v2_rows, v2_id))
    assert r.status_code == 200, r.text
    v2_out = outputs_by_name(r.json())
    # Each row under `<id>:<row>`; a one-row request under its id alone.
    expected = {f"{inv_id}:{k}": (row, p, int(p >= 0.5)) for k, (row, p) in enumerate(zip(inv_rows, inv_probs))}
    expected[v2_id] = (v2_rows[0], v2_out["probability"]["data"][0], v2_out["label"]["data"][0])

    # The writer hands each batch to the OS once its queue is empty: poll for our rows.
    deadline = time.monotonic() + 10
    while True:
        records = {r["request_id"]: r for r in read_jsonl(serve.request_log) if r.get("request_id") in expected}
        csv_rows = {r["request_id"]: r for r in read_csv_log(serve.request_log) if r.get("request_id") in expected}
        if (len(records) == len(csv_rows) == len(expected)) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert set(records) == set(expected), (sorted(records), sorted(expected))
    for rid, (row, p, label) in expected.items():
        rec = records[rid]
        assert rec["prediction"] == label, rec
        assert rec["probability"] == pytest.approx(p, rel=1e-12), rec
        assert rec["model_version"] == out["version"]
        assert rec["features"] == dict(zip(FEATURES, row))
    assert set(csv_rows) == set(expected), (sorted(csv_rows), sorted(expected))
    for rid, (row, p, label) in expected.items():
        c = csv_rows[rid]
        assert [c["subject"], c["body"]] == row
        assert int(c["prediction"]) == label and float(c["probability"]) == pytest.approx(p, rel=1e-12)
    header = next(csv.reader(open(sorted(serve.request_log.glob("requests-*.csv"))[-1], newline="")))
    assert header == [*FEATURES, "prediction", "probability", "model_version", "timestamp", "request_id"]


def test_v2_request_without_body_is_400_naming_it(serve, trained, data):
    name, _ = trained
    r = serve.post(f"/v2/models/{name}/infer", v2_request(data.rows[:2], "no-body", columns=["subject"]))
    assert r.status_code == 400, r.text
    err = r.json()
    assert set(err) == {"error"}, err
    assert "missing input(s): body" in err["error"], err
    assert serve.proc.poll() is None


def test_factory_predict_matches_the_served_model(serve, trained, data, predicted):
    name, _ = trained
    r = serve.post(f"/v2/models/{name}/infer", v2_request(data.rows))
    assert r.status_code == 200, r.text
    served = outputs_by_name(r.json())["probability"]["data"]
    assert len(served) == TEST_ROWS
    assert served == pytest.approx(predicted, rel=1e-9)
    r = serve.post("/invocations", {"dataframe_split": {"columns": FEATURES, "data": data.rows}})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == pytest.approx(predicted, rel=1e-9)


def test_labels_joined_by_request_id_give_performance_and_its_estimate(server, serve, trained, data, tmp_path):
    """Period-2 traffic served and logged, labels arriving later by request id: `factory drift`
    against the period-1 reference (with the champion's predictions on it) reports prediction
    drift, the realised performance on the joined labels and CBPE's estimate beside it."""
    import pandas as pd

    name, _ = trained
    # Reference: the training rows, their labels as 0/1, and the champion's predictions on them.
    train = pd.read_csv(data.train_csv, keep_default_na=False, dtype=str)
    features = tmp_path / "train-features.csv"
    train[FEATURES].to_csv(features, index=False, quoting=csv.QUOTE_ALL)
    pred = tmp_path / "train-pred.csv"
    factory("predict", "--model-uri", f"models:/{name}@prod", "--input", str(features), "--output", str(pred),
            "--tracking-uri", server.url)
    reference = train[FEATURES].copy()
    reference["label"] = [1 if v == "spam" else 0 for v in train["label"]]
    reference = pd.concat([reference, pd.read_csv(pred)], axis=1)
    reference_csv = tmp_path / "reference.csv"
    reference.to_csv(reference_csv, index=False, quoting=csv.QUOTE_NONNUMERIC)

    # Current: every test row in one V2 request, logged as <id>:<row>.
    rid = unique("batch-")
    r = serve.post(f"/v2/models/{name}/infer", v2_request(data.rows, rid))
    assert r.status_code == 200, r.text
    served = outputs_by_name(r.json())
    ids = [f"{rid}:{k}" for k in range(TEST_ROWS)]
    deadline = time.monotonic() + 10
    while True:
        logged = {row["request_id"]: row for row in read_csv_log(serve.request_log) if row["request_id"].startswith(rid)}
        if len(logged) == TEST_ROWS or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sorted(logged) == sorted(ids)
    current_csv = tmp_path / "current.csv"
    with open(current_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*FEATURES, "prediction", "probability", "request_id"],
                           extrasaction="ignore", quoting=csv.QUOTE_ALL)
        w.writeheader()
        w.writerows(logged[i] for i in ids)
    # Labels for 150 of the 200 rows, in another order, arriving later.
    labelled = list(range(0, TEST_ROWS, 4)) + [k for k in range(TEST_ROWS) if k % 4]
    labelled = labelled[:150]
    labels_csv = tmp_path / "labels.csv"
    with open(labels_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["request_id", "label"])
        w.writerows([ids[k], data.y[k]] for k in labelled)

    report_json = tmp_path / "report.json"
    proc = factory("drift", "--reference", str(reference_csv), "--current", str(current_csv),
                   "--labels", str(labels_csv), "--target", "label", "--text-columns", "subject,body",
                   "--report-json", str(report_json), "--report-html", str(tmp_path / "report.html"), "--quiet",
                   check=False)
    assert proc.returncode in (0, 3), proc.stderr
    report = json.loads(report_json.read_text())

    prob, label = served["probability"]["data"], served["label"]["data"]
    pd_ = report["prediction_drift"]
    assert pd_["current_share_of_positives"] == pytest.approx(sum(label) / TEST_ROWS)
    assert pd_["reference_share_of_positives"] == pytest.approx(reference["prediction"].mean())
    assert pd_["probability"]["column"] == "probability" and pd_["prediction"]["column"] == "prediction"

    perf = report["performance"]
    assert perf["task"] == "classification" and perf["labels_joined"] == 150
    y = [data.y[k] for k in labelled]
    expected = holdout_metrics(y, [prob[k] for k in labelled])
    assert perf["current"]["rows"] == 150
    for key in ("accuracy", "precision", "recall", "f1"):
        assert perf["current"][key] == pytest.approx(expected[key], abs=1e-12), key
    assert perf["current"]["roc_auc"] == pytest.approx(expected["roc_auc"], rel=1e-9)
    ref_expected = holdout_metrics(reference["label"].tolist(), reference["probability"].tolist())
    assert perf["reference"]["f1"] == pytest.approx(ref_expected["f1"], abs=1e-12)
    assert perf["delta"]["f1"] == pytest.approx(perf["current"]["f1"] - perf["reference"]["f1"], abs=1e-12)

    est = report["estimated_performance"]
    assert est["method"] == "CBPE"
    assert est["current"]["rows"] == TEST_ROWS
    # CBPE's accuracy estimate is the mean confidence of the predicted class.
    confidence = sum(max(p, 1 - p) if (p >= 0.5) == bool(l) else min(p, 1 - p) for p, l in zip(prob, label))
    assert est["current"]["accuracy"]["value"] == pytest.approx(confidence / TEST_ROWS, rel=1e-9)

    described = {t["column"] for t in report["text_columns"]}
    assert described == set(FEATURES), report["text_columns"]


def test_champion_and_challenger_are_compared_by_the_chosen_metric(server, trained, data):
    name, out = trained
    args = ["train", "--data", str(data.train_csv), "--test-data", str(data.test_csv), "--target", "label",
            "--positive-label", "spam", "--task", "classification", "--model", "linear",
            "--text-columns", ",".join(FEATURES), "--experiment", f"exp-{name}", "--model-name", name,
            "--compare-with", "prod", "--promote", "--json", "--tracking-uri", server.url]
    # The same data and seed: the challenger ties on F1 (higher is better), so the champion stays.
    o = json.loads(factory(*args, "--metric", "f1").stdout)
    assert not o["promoted"], o
    m = MlflowClient(server.url).get_run(o["run_id"]).data.metrics
    assert m["challenger_f1"] == m["champion_f1"] == pytest.approx(out["metrics"]["f1"], rel=1e-12)
    assert "challenger_log_loss" not in m
    assert MlflowClient(server.url).get_model_version_by_alias(name, "prod").version == out["version"]
    # A metric of the other task is refused, naming the ones there are.
    bad = factory(*args, "--metric", "rmse", check=False)
    assert bad.returncode != 0 and "metric 'rmse' is not a holdout metric" in bad.stderr and "f1" in bad.stderr
