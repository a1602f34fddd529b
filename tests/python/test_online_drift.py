"""Online drift end to end: two `factory serve` replicas each score half of a drifted stream and
sketch it (`--drift-window 1s`); `factory loop --once --sketches A,B`, with no request log and
no folder shared with the replicas, merges their `GET /drift/sketch` answers, finds the drift,
retrains and promotes. Its figures are checked against `factory drift` on the whole stream
written to a file, binned with the model's own profile (`--psi-bins-from`): PSI and the
categorical scores equal, Wasserstein within the bound the sketch reports; and, with the KS test
forced on every numeric column (`factory drift --sketches` against the replicas), the KS
statistic within its bound.
"""

from __future__ import annotations

import csv
import json
import random
import time
from pathlib import Path

import mlflow
import requests
from mlflow import MlflowClient

from conftest import free_port
from helpers import unique
from test_loop import HEADER, ROWS, loop_once, prod_version, record, shift, write_labels
# The module's fixtures and skip marks: the housing data and the factory binary, a SQLite server.
from test_loop import _tracking_uri, backend_kind, pytestmark  # noqa: F401
from test_serving import HOUSING, TARGET, Serve, factory, train


def sketched_rows(serve: Serve) -> int:
    answer = requests.get(serve.url + "/drift/sketch", timeout=10).json()
    return sum(s["sketch"]["rows"] for s in answer["sketches"])


def test_two_replicas_sketches_merge_to_the_file_figures_and_the_loop_promotes(server, tmp_path):
    name = unique("online-")
    train(server, name, "--alias", "prod", "--max-iter", "60")
    args = ["--tracking-uri", server.url, "--model-uri", f"models:/{name}@prod", "--poll-interval-secs", "0",
            "--drift-window", "1s"]
    a, b = Serve(tmp_path, args), Serve(tmp_path, args)
    features = [h for h in HEADER if h != TARGET]
    numeric = [h for h in features if h != "ocean_proximity"]
    ks = [f"--stattest={h}=ks" for h in numeric]
    stream = tmp_path / "stream.csv"
    rng = random.Random(11)
    sent = {a.url: 0, b.url: 0}
    try:
        # The drifted stream, in batches, each batch to one replica at random; the same rows
        # into one file for the file path.
        rows = [shift(rng.choice(ROWS)) for _ in range(1600)]
        with open(stream, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(features)
            for i in range(0, len(rows), 40):
                batch = [record(r) for r in rows[i:i + 40]]
                target = rng.choice([a, b])
                r = target.http.post(target.url + "/invocations", json={"dataframe_records": batch}, timeout=30)
                assert r.status_code == 200, r.text
                sent[target.url] += len(batch)
                for rec in batch:
                    w.writerow([repr(rec[h]) if h != "ocean_proximity" else rec[h] for h in features])
        assert min(sent.values()) > 300, sent

        # Each replica answers with its own half once the windows closed.
        deadline = time.monotonic() + 20
        while any(sketched_rows(s) != sent[s.url] for s in (a, b)):
            assert time.monotonic() < deadline, {s.url: sketched_rows(s) for s in (a, b)}
            time.sleep(0.25)
        answer = requests.get(a.url + "/drift/sketch", timeout=10).json()
        (entry,) = answer["sketches"]
        assert entry["model_version"] == "1" and entry["windows"] >= 1
        later = requests.get(a.url + f"/drift/sketch?since={entry['until_ms']}", timeout=10).json()
        assert later["sketches"] == [], "nothing closed after the last window taken"
        bad = requests.get(a.url + "/drift/sketch?since=yesterday", timeout=10)
        assert bad.status_code == 400 and "since" in bad.json()["error"]
        for query, named in (("open=yes", "'open' must be true or false"), ("windows=3", "unknown query parameter")):
            bad = requests.get(a.url + "/drift/sketch?" + query, timeout=10)
            assert bad.status_code == 400 and named in bad.json()["error"], (query, bad.text)
        opened = requests.get(a.url + f"/drift/sketch?since={entry['until_ms']}&open=true", timeout=10).json()
        assert all(e["until_ms"] > entry["until_ms"] for e in opened["sketches"]), opened
        metrics = requests.get(a.url + "/metrics", timeout=10).text
        assert f'factory_drift_rows_total{{model_version="1"}} {sent[a.url]}' in metrics, metrics[-2000:]
        assert 'factory_drift_reference_share{model_version="1",feature="ocean_proximity",bin="INLAND"}' in metrics

        # The loop, with nothing but the replicas' URLs and labelled rows of its own; a third,
        # dead replica is left out and named, the others' rows judged.
        write_labels(tmp_path / "labels" / "day1.csv", 3000)
        dead = f"http://127.0.0.1:{free_port()}"
        cycle = loop_once(server, tmp_path / "state", "--sketches", f"{a.url},{b.url},{dead}", "--model-name", name,
                          "--labels", str(tmp_path / "labels"), "--serving", a.url, "--serving-admin", a.admin_url)
        assert cycle["rows"] == len(rows), cycle
        assert cycle["significant_drift"], cycle
        assert cycle["decision"] == "promoted", cycle
        assert prod_version(name) == cycle["challenger_version"] == "2"
        assert a.health()["model_version"] == "2"
        online = json.loads(Path(cycle["report_json"]).read_text())
        params = MlflowClient().get_run(cycle["run_id"]).data.params
        assert params["drift_source"] == "sketches" and dead in params["sketch_replicas_failed"], params

        # Nothing new since: the next cycle waits for rows instead of judging these twice.
        again = loop_once(server, tmp_path / "state", "--sketches", f"{a.url},{b.url}", "--model-name", name,
                          "--labels", str(tmp_path / "labels"), "--serving", a.url, "--serving-admin", a.admin_url)
        assert again["decision"] == "skipped" and again["rows"] == 0, again

        # A one-off look at the replicas with the KS test on every numeric column (`factory drift
        # --sketches`): replica A now serves version 2, but version 1's profile scored the rows.
        online_ks = tmp_path / "online_ks.json"
        proc = factory("drift", "--sketches", f"{a.url},{b.url}", *ks, "--report-json", str(online_ks), check=False)
        assert proc.returncode == 3, proc.stderr
        online_ks = json.loads(online_ks.read_text())
        assert online_ks["current"]["rows"] == len(rows), online_ks["current"]
    finally:
        a.stop()
        b.stop()

    # The file path on the whole stream, binned with the version-1 model's profile.
    model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/1", dst_path=str(tmp_path / "model")))
    assert (model_dir / "drift_profile.json").is_file()
    out = tmp_path / "file_report.json"
    factory("drift", "--reference", str(HOUSING), "--current", str(stream), "--psi-bins-from", str(model_dir),
            "--report-json", str(out), check=False)
    files = json.loads(out.read_text())
    assert set(online["columns"]) == set(files["columns"]) == set(features)
    for col, f in files["columns"].items():
        o = online["columns"][col]
        assert (o["stattest"], o["drift_detected"]) == (f["stattest"], f["drift_detected"]), col
        assert o["psi"] == f["psi"], (col, o["psi"], f["psi"])
        bound = o.get("sketch_error_bound")
        if bound is None:
            assert o["drift_score"] == f["drift_score"], col
        else:
            assert o["stattest"] == "wasserstein"
            assert abs(o["drift_score"] - f["drift_score"]) <= bound, (col, o["drift_score"], f["drift_score"], bound)
            assert bound < 0.05, (col, bound)
    assert online["share_of_drifted_columns"] == files["share_of_drifted_columns"]
    assert online["significant_drift_reasons"] == files["significant_drift_reasons"]
    assert online["current"]["rows"] == len(rows)

    # KS, exact on the file and from the sketches: D read at the profile's edges is never above
    # the exact D, and at most the reported bound below it; the p-values and verdicts follow.
    out = tmp_path / "file_ks.json"
    factory("drift", "--reference", str(HOUSING), "--current", str(stream), "--psi-bins-from", str(model_dir), *ks,
            "--report-json", str(out), check=False)
    files_ks = json.loads(out.read_text())
    for col in numeric:
        o, f = online_ks["columns"][col], files_ks["columns"][col]
        assert o["stattest"] == f["stattest"] == "ks", (col, o["stattest"], f["stattest"])
        d_sketch, d, bound = o["ks_statistic"], f["ks_statistic"], o["sketch_error_bound"]
        assert d_sketch <= d + 1e-12 and d <= d_sketch + bound + 1e-12, (col, d_sketch, d, bound)
        assert bound <= 1 / 128, (col, bound)
        assert o["drift_score"] >= f["drift_score"] - 1e-12, (col, o["drift_score"], f["drift_score"])
        assert o["drift_detected"] == f["drift_detected"], (col, o, f)
        assert o["psi"] == f["psi"], col
