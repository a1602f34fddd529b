"""`factory train` and `factory predict` against a tracking server, checked with the stock client.

Needs FACTORY_BIN (the binary under test) and the shared California housing CSV
(../shared/datasets/california_housing/housing.csv beside the repository, or FACTORY_SHARED_DIR).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import threading
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from conftest import FACTORY_BIN
from helpers import unique

SHARED = Path(os.environ.get("FACTORY_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared"))
HOUSING = SHARED / "datasets" / "california_housing" / "housing.csv"

pytestmark = [
    pytest.mark.skipif(not FACTORY_BIN, reason="needs FACTORY_BIN: these tests run the factory binary"),
    pytest.mark.skipif(not HOUSING.is_file(), reason=f"shared dataset missing: {HOUSING}"),
]


def factory(*args: str, server=None, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    if server is not None:
        full_env["MLFLOW_TRACKING_URI"] = server.url
    proc = subprocess.run([FACTORY_BIN, *args], capture_output=True, text=True, env=full_env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"factory {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def train(server, model_name: str, *extra: str) -> dict:
    proc = factory(
        "train", "--data", str(HOUSING), "--experiment", f"exp-{model_name}", "--model-name", model_name, "--json", *extra,
        server=server,
    )
    return json.loads(proc.stdout)


@pytest.fixture(autouse=True)
def _tracking_uri(server):
    mlflow.set_tracking_uri(server.url)


@pytest.fixture(scope="module")
def trained(server):
    """One model trained with the defaults and promoted to `prod`."""
    name = unique("housing-")
    out = train(server, name, "--alias", "prod")
    return name, out


def test_train_logs_params_metrics_data_artifacts_and_registers(server, trained):
    name, out = trained
    client = MlflowClient(server.url)
    run = client.get_run(out["run_id"])
    assert run.info.status == "FINISHED"
    for key in ("model", "learning_rate", "max_iter", "seed", "target", "train_rows", "test_rows"):
        assert key in run.data.params, key
    assert run.data.params["model"] == "gbm" and run.data.params["target"] == "median_house_value"
    assert int(run.data.params["train_rows"]) + int(run.data.params["test_rows"]) == 20640
    m = run.data.metrics
    assert 0 < m["rmse"] < 60000 and m["mae"] < m["rmse"] and 0.7 < m["r2"] < 1.0
    assert out["metrics"]["rmse"] == pytest.approx(m["rmse"])
    history = client.get_metric_history(out["run_id"], "train_loss")
    assert len(history) == out["n_iter"] == int(m["n_iter"])
    assert [h.step for h in history] == list(range(len(history)))
    assert history[-1].value < history[0].value  # boosting lowers the training loss
    (ds,) = run.inputs.dataset_inputs
    assert ds.dataset.name == "housing" and len(ds.dataset.digest) == 16
    assert {t.key: t.value for t in ds.tags}["mlflow.data.context"] == "training"
    files = {f.path for f in client.list_artifacts(out["run_id"])}
    assert {"feature_importance.svg", "feature_importance.json"} <= files
    svg = mlflow.artifacts.load_text(run.info.artifact_uri + "/feature_importance.svg")
    assert svg.startswith("<svg") and "median_income" in svg
    # Registered as an MLflow 3 logged model, version 1, alias prod, stage Production.
    v = client.get_model_version_by_alias(name, "prod")
    assert v.version == out["version"] == "1" and v.current_stage == "Production"
    assert v.source == f"models:/{out['model_id']}" and v.run_id == out["run_id"]
    assert [o.model_id for o in run.outputs.model_outputs] == [out["model_id"]]
    assert str(client.get_logged_model(out["model_id"]).status).endswith("READY")


def _predict(server, uri: str, input_path: Path, tmp_path: Path) -> str:
    out = tmp_path / f"pred-{abs(hash(uri))}.csv"
    factory("predict", "--model-uri", uri, "--input", str(input_path), "--output", str(out), server=server)
    return out.read_text()


def _sample(tmp_path: Path, rows: int = 50) -> Path:
    lines = HOUSING.read_text().splitlines()
    header = lines[0].split(",")
    target = header.index("median_house_value")
    keep = [",".join(c for i, c in enumerate(line.split(",")) if i != target) for line in lines[: rows + 1]]
    p = tmp_path / "sample.csv"
    p.write_text("\n".join(keep) + "\n")
    return p


def test_predict_every_uri_form_gives_identical_output(server, trained, tmp_path):
    name, out = trained
    sample = _sample(tmp_path)
    local = mlflow.artifacts.download_artifacts(f"models:/{name}@prod", dst_path=str(tmp_path / "local"), tracking_uri=server.url)
    assert (Path(local) / "MLmodel").is_file() and (Path(local) / "model.bin").is_file()
    run = MlflowClient(server.url).get_run(out["run_id"])
    uris = [
        f"models:/{name}@prod",
        f"models:/{name}/1",
        f"runs:/{out['run_id']}/model",
        f"models:/{out['model_id']}",
        MlflowClient(server.url).get_logged_model(out["model_id"]).artifact_location,
        local,
    ]
    assert uris[4].startswith("mlflow-artifacts:/")
    outputs = {uri: _predict(server, uri, sample, tmp_path) for uri in uris}
    first = outputs[uris[0]]
    lines = first.splitlines()
    assert lines[0] == "prediction" and len(lines) == 51
    assert all(float(x) > 0 for x in lines[1:])
    for uri, text in outputs.items():
        assert text == first, uri
    # JSON input in MLflow's dataframe_split form scores the same.
    header, *rows = [line.split(",") for line in sample.read_text().splitlines()]
    conv = lambda c, v: (v if c == "ocean_proximity" else (float(v) if v else None))  # noqa: E731
    payload = {"dataframe_split": {"columns": header, "data": [[conv(c, v) for c, v in zip(header, r)] for r in rows]}}
    js = tmp_path / "in.json"
    js.write_text(json.dumps(payload))
    assert _predict(server, f"models:/{name}@prod", js, tmp_path) == first
    assert run.info.run_id == out["run_id"]


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda h, r: ([c for c in h if c != "median_income"], [[v for c, v in zip(h, row) if c != "median_income"] for row in r]), "median_income"),
        (lambda h, r: (h, [row if i != 2 else [("abc" if c == "households" else v) for c, v in zip(h, row)] for i, row in enumerate(r)]), "row 3"),
        (lambda h, r: (h + ["extra"], [row + ["1"] for row in r]), "extra"),
    ],
    ids=["missing-column", "non-numeric", "extra-column"],
)
def test_predict_refuses_input_that_does_not_fit_the_signature(server, trained, tmp_path, mutate, needle):
    name, _ = trained
    header, *rows = [line.split(",") for line in _sample(tmp_path, 5).read_text().splitlines()]
    h, r = mutate(header, rows)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(",".join(x) for x in [h, *r]) + "\n")
    proc = factory("predict", "--model-uri", f"models:/{name}@prod", "--input", str(bad), server=server, check=False)
    assert proc.returncode != 0
    assert needle in proc.stderr, proc.stderr


def test_predict_handles_missing_values_and_unseen_categories(server, trained, tmp_path):
    name, _ = trained
    header, *rows = [line.split(",") for line in _sample(tmp_path, 3).read_text().splitlines()]
    rows[0] = ["" if c == "total_bedrooms" else v for c, v in zip(header, rows[0])]
    rows[1] = ["ON THE MOON" if c == "ocean_proximity" else v for c, v in zip(header, rows[1])]
    p = tmp_path / "odd.csv"
    p.write_text("\n".join(",".join(x) for x in [header, *rows]) + "\n")
    lines = _predict(server, f"models:/{name}@prod", p, tmp_path).splitlines()
    assert len(lines) == 4 and all(float(x) > 0 for x in lines[1:])


def test_champion_challenger_both_ways(server):
    name = unique("cc-")
    client = MlflowClient(server.url)
    v1 = train(server, name, "--alias", "prod", "--max-iter", "20")
    worse = train(server, name, "--max-iter", "3", "--compare-with", "prod", "--promote")
    assert worse["comparison"]["challenger_wins"] is False and worse["promoted"] is False
    assert worse["comparison"]["champion_version"] == v1["version"]
    assert worse["comparison"]["challenger_score"] > worse["comparison"]["champion_score"]
    assert client.get_model_version_by_alias(name, "prod").version == v1["version"]
    tags = client.get_run(worse["run_id"]).data.tags
    assert tags["factory.decision"].startswith("champion kept")
    better = train(server, name, "--max-iter", "150", "--compare-with", "prod", "--promote")
    assert better["comparison"]["challenger_wins"] is True and better["promoted"] is True
    prod = client.get_model_version_by_alias(name, "prod")
    assert prod.version == better["version"] == "3" and prod.current_stage == "Production"
    assert client.get_model_version(name, v1["version"]).current_stage == "Archived"
    metrics = client.get_run(better["run_id"]).data.metrics
    assert metrics["challenger_rmse"] < metrics["champion_rmse"]


def test_same_seed_gives_bit_identical_models(server, tmp_path):
    name = unique("det-")
    a = train(server, name, "--seed", "7", "--max-iter", "30")
    b = train(server, name, "--seed", "7", "--max-iter", "30")
    pa = mlflow.artifacts.download_artifacts(f"models:/{name}/{a['version']}", dst_path=str(tmp_path / "a"), tracking_uri=server.url)
    pb = mlflow.artifacts.download_artifacts(f"models:/{name}/{b['version']}", dst_path=str(tmp_path / "b"), tracking_uri=server.url)
    assert (Path(pa) / "model.bin").read_bytes() == (Path(pb) / "model.bin").read_bytes()
    assert a["metrics"] == b["metrics"]


def test_data_from_a_url_and_offline_errors(server, tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HOUSING.parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/housing.csv"
        cache = tmp_path / "cache"
        name = unique("url-")
        proc = factory("train", "--data", url, "--cache-dir", str(cache), "--model-name", name, "--max-iter", "5", "--json", server=server)
        assert json.loads(proc.stdout)["version"] == "1"
        assert [p.read_bytes() for p in cache.rglob("housing.csv")] == [HOUSING.read_bytes()]
    finally:
        httpd.shutdown()
        httpd.server_close()
    # The server is gone: the cached copy keeps working, a fresh cache fails naming --data.
    proc = factory("train", "--data", url, "--cache-dir", str(cache), "--model-name", name, "--max-iter", "5", server=server)
    assert proc.returncode == 0
    proc = factory("train", "--data", url, "--cache-dir", str(tmp_path / "empty"), "--model-name", name, server=server, check=False)
    assert proc.returncode != 0 and "--data" in proc.stderr, proc.stderr
    proc = factory("train", "--data", str(tmp_path / "nope.csv"), "--model-name", name, server=server, check=False)
    assert proc.returncode != 0 and "no such file" in proc.stderr
