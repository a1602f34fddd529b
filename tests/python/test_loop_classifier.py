"""`factory loop --once` on a text classifier, against real components: a tracking server, a
`factory serve` with a request log and hot reload, period-2 e-mails as production traffic.

The champion (v1) is trained on period-1 e-mails, where 15% are spam; period 2 is half spam, from
new campaigns the champion does not recognise, so the share of e-mails it calls spam falls. The pipeline's only trigger is
prediction drift: the cycle scores the reference with the champion, compares the served
predictions with those, retrains on the labelled period-2 rows that arrived, promotes the
challenger (better log loss on them) and hot-reloads serve.
"""

from __future__ import annotations

import csv
import json

import pytest
from mlflow import MlflowClient

from conftest import FACTORY_BIN
from helpers import unique
from test_serving import ADMIN_TOKEN, Serve, factory
from test_text_classifier import EMAILS, FEATURES

pytestmark = [
    pytest.mark.skipif(not FACTORY_BIN, reason="needs FACTORY_BIN: these tests run the factory binary"),
    pytest.mark.skipif(not EMAILS.is_file(), reason=f"shared dataset missing: {EMAILS}"),
]


@pytest.fixture(scope="module")
def backend_kind():
    return "sqlite"


def write(path, frame, columns):
    frame[columns].to_csv(path, index=False, quoting=csv.QUOTE_ALL)


def test_prediction_drift_retrains_promotes_and_hot_reloads_a_classifier(server, tmp_path):
    import pandas as pd

    emails = pd.read_csv(EMAILS, keep_default_na=False, dtype=str)
    period = emails["period"].astype(int)
    reference = emails[period == 1].iloc[::4]  # 813 e-mails, 125 spam
    later = emails[period == 2].iloc[::4]  # 699 e-mails, half spam
    traffic, labelled = later.iloc[:350], later.iloc[350:]
    ref_csv = tmp_path / "reference.csv"
    write(ref_csv, reference, [*FEATURES, "label"])
    (tmp_path / "labels").mkdir()
    write(tmp_path / "labels" / "day1.csv", labelled, [*FEATURES, "label"])

    name = unique("spam-loop-")
    experiment = f"exp-{name}"
    env = {"MLFLOW_TRACKING_URI": server.url}
    classifier = ["--target", "label", "--positive-label", "spam", "--task", "classification", "--model", "linear",
                  "--text-columns", ",".join(FEATURES), "--experiment", experiment, "--model-name", name]
    factory("train", "--data", str(ref_csv), *classifier, "--alias", "prod", env=env)

    logs = tmp_path / "requests"
    serve = Serve(tmp_path, ["--tracking-uri", server.url, "--model-uri", f"models:/{name}@prod",
                             "--request-log", str(logs), "--poll-interval-secs", "0"])
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "spam.toml").write_text(f"""
experiment = "{experiment}-cycles"

[drift]
reference = "{ref_csv}"
request_logs = ["{logs}"]
min_rows = 200
triggers = ["prediction"]

[retrain]
target = "label"
task = "classification"
text_columns = ["subject", "body"]
positive_label = "spam"
labels = "{tmp_path / 'labels'}"
experiment = "{experiment}"
model_name = "{name}"

[rollout]
mode = "hot-reload"
serving = "{serve.url}"
serving_admin = "{serve.admin_url}"
""")
    try:
        sent = []
        for k, row in enumerate(traffic[FEATURES].values.tolist()):
            r = serve.invocations({"dataframe_split": {"columns": FEATURES, "data": [row]}})
            assert r.status_code == 200, r.text
            sent.append(r.json()["predictions"][0])
        proc = factory("loop", "--once", "--json", "--pipelines", str(pipelines), "--state-dir", str(tmp_path / "state"),
                       env={**env, "FACTORY_ADMIN_TOKEN": ADMIN_TOKEN})
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        assert len(lines) == 1, proc.stdout + proc.stderr
        cycle = json.loads(lines[0])
        assert cycle["rows"] == len(traffic)
        assert cycle["significant_drift"], cycle
        assert any(r.startswith("prediction drift:") for r in cycle["drift_reasons"]), cycle["drift_reasons"]
        assert cycle["decision"] == "promoted", cycle
        assert cycle["challenger_score"] < cycle["champion_score"]
        assert serve.health()["model_version"] == "2"
        r = serve.invocations({"dataframe_split": {"columns": FEATURES, "data": [traffic[FEATURES].values[0].tolist()]}})
        assert r.status_code == 200, r.text
    finally:
        serve.stop()

    c = MlflowClient(server.url)
    assert c.get_model_version_by_alias(name, "prod").version == "2"
    run = c.get_run(cycle["run_id"])
    m = run.data.metrics
    # The served share of positives is the one the cycle measured; the reference's is the
    # champion's on the period-1 e-mails (about their 15% of spam). Period 2's spam campaigns
    # are new to it: it calls almost none of them spam.
    assert m["current_share_of_positives"] == pytest.approx(sum(p >= 0.5 for p in sent) / len(sent))
    assert m["reference_share_of_positives"] == pytest.approx(0.15, abs=0.05)
    assert m["reference_share_of_positives"] - m["current_share_of_positives"] > 0.1
    assert "estimated_f1" in m
    report = json.loads(open(c.download_artifacts(run.info.run_id, "drift/drift_report.json")).read())
    assert report["prediction_drift"]["drift_detected"]
    assert {t["column"] for t in report["text_columns"]} == set(FEATURES)
    challenger = c.get_run(run.data.tags["factory.challenger_run_id"])
    assert challenger.data.params["text_columns"] == "subject,body"
    assert challenger.data.params["model"] == "linear"
