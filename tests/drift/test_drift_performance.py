"""Classification performance drift of `factory drift`: labels joined by request id, realised
metrics against scikit-learn, estimated performance (CBPE) against NannyML 0.13, and the
errors bad label files get.

NannyML runs in its own venv (its pandas/numpy pins differ from Evidently's): set
NANNYML_PYTHON to that venv's python (scripts/test.sh does; requirements-nannyml.txt).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

import gen_data
from test_drift_evidently import FACTORY_BIN

HERE = Path(__file__).resolve().parent
NANNYML_PYTHON = os.environ.get("NANNYML_PYTHON", str(Path.home() / ".cache/factory/venv-nannyml/bin/python"))


def drift(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([FACTORY_BIN, "drift", "-q", *args], capture_output=True, text=True, timeout=300)


def scenario(tmp: Path, seed: int, n_ref: int, n_cur: int, ref_shift: float, cur_shift: float, coverage: float):
    """Reference scored by the model (true label, predicted label, probability); current
    predictions without labels; labels for a shuffled `coverage` share of the current rows."""
    rng = np.random.default_rng(seed)
    ref = gen_data.classifier_frame(rng, n_ref, ref_shift)
    cur = gen_data.classifier_frame(rng, n_cur, cur_shift, start=1_000_000)
    labelled = cur.sample(frac=coverage, random_state=seed)
    paths = tmp / "ref.csv", tmp / "cur.csv", tmp / "labels.csv"
    ref.drop(columns=["request_id"]).to_csv(paths[0], index=False)
    cur.drop(columns=["label"]).to_csv(paths[1], index=False)
    labelled[["request_id", "label"]].to_csv(paths[2], index=False)
    return ref, cur, labelled, paths


def report(tmp: Path, ref: Path, cur: Path, *extra: str) -> dict:
    out = tmp / "out.json"
    html = tmp / "out.html"
    p = drift("--reference", str(ref), "--current", str(cur), "--report-json", str(out), "--report-html", str(html),
              "--target", "label", "--pos-label", "spam", *extra)
    assert p.returncode in (0, 3), p.stderr
    r = json.loads(out.read_text())
    r["_html"] = html.read_text()
    return r


def sklearn_metrics(frame: pd.DataFrame) -> dict:
    y, yhat, p = frame.label == "spam", frame.prediction == "spam", frame.probability
    return {
        "rows": len(frame),
        "accuracy": skm.accuracy_score(y, yhat),
        "precision": skm.precision_score(y, yhat),
        "recall": skm.recall_score(y, yhat),
        "f1": skm.f1_score(y, yhat),
        "roc_auc": skm.roc_auc_score(y, p),
        "log_loss": skm.log_loss(y, p),
    }


def check_metrics(ours: dict, want: dict) -> None:
    assert ours["rows"] == want["rows"]
    for k, v in want.items():
        assert math.isclose(ours[k], v, rel_tol=1e-9, abs_tol=1e-12), (k, ours[k], v)
    cm = ours["confusion_matrix"]
    assert cm["tp"] + cm["fp"] + cm["tn"] + cm["fn"] == want["rows"]


@pytest.mark.parametrize("memory_mb", ["16", "1"], ids=["in-memory", "partitioned"])
def test_joined_labels_match_sklearn(memory_mb: str, tmp_path: Path) -> None:
    ref, cur, labelled, (r, c, labels) = scenario(tmp_path, 3, 4000, 30_000, 0.0, 0.6, 0.7)
    out = report(tmp_path, r, c, "--labels", str(labels), "--memory-mb", memory_mb)
    perf = out["performance"]
    assert perf["task"] == "classification" and perf["pos_label"] == "spam"
    assert perf["labels_joined"] == len(labelled)
    check_metrics(perf["reference"], sklearn_metrics(ref))
    check_metrics(perf["current"], sklearn_metrics(labelled))
    assert math.isclose(perf["delta"]["f1"], perf["current"]["f1"] - perf["reference"]["f1"], rel_tol=1e-12)
    # Estimated on every current row (labelled or not), realised on the labelled ones.
    est = out["estimated_performance"]["current"]
    assert est["rows"] == len(cur)
    assert est["accuracy"]["realized"] == perf["current"]["accuracy"]
    assert "Estimated performance (CBPE)" in out["_html"] and "Confusion matrix" in out["_html"]


def test_row_aligned_target_in_the_current_file(tmp_path: Path) -> None:
    ref, cur, _, (r, _, _) = scenario(tmp_path, 4, 2000, 1500, 0.0, 0.3, 1.0)
    c = tmp_path / "cur_with_labels.csv"
    cur.to_csv(c, index=False)
    out = report(tmp_path, r, c)
    check_metrics(out["performance"]["current"], sklearn_metrics(cur))


NANNYML_METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]


@pytest.mark.skipif(not Path(NANNYML_PYTHON).exists(), reason="no NannyML venv (NANNYML_PYTHON)")
@pytest.mark.parametrize("ref_shift", [0.0, 1.2], ids=["minority-positive", "majority-positive"])
def test_cbpe_matches_nannyml(ref_shift: float, tmp_path: Path) -> None:
    ref, cur, _, (r, c, labels) = scenario(tmp_path, 7, 3000, 2500, ref_shift, 0.7, 1.0)
    both = tmp_path / "analysis.csv"
    cur.to_csv(both, index=False)
    nanny = subprocess.run([NANNYML_PYTHON, str(HERE / "nannyml_cbpe.py"), str(r), str(both), "spam"],
                           capture_output=True, text=True, timeout=600)
    assert nanny.returncode == 0, nanny.stderr
    want = json.loads(nanny.stdout)
    assert (ref.label == "spam").mean() > 0.5 if ref_shift else (ref.label == "spam").mean() < 0.5
    out = report(tmp_path, r, c, "--labels", str(labels))
    est = out["estimated_performance"]
    problems = []
    for side, period in (("reference", "reference"), ("current", "analysis")):
        for m in NANNYML_METRICS:
            ours, theirs = est[side][m], want[period][m]
            # NannyML rounds the cumulated counts of its estimated ROC curve to 5 decimals.
            tol = 1e-7 if m == "roc_auc" else 1e-9
            for key in ("value", "sampling_error", "upper_confidence_boundary", "lower_confidence_boundary", "realized"):
                t = tol if key != "realized" else 1e-9
                if not math.isclose(ours[key], theirs[key], rel_tol=t, abs_tol=1e-12):
                    problems.append(f"{side} {m} {key}: {ours[key]!r} != {theirs[key]!r}")
    assert not problems, "\n".join(problems)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture()
def small(tmp_path: Path) -> tuple[Path, Path]:
    ref = write(tmp_path / "ref.csv", "x,label,prediction,probability\n"
                + "".join(f"{i},{'spam' if i % 3 == 0 else 'ham'},{'spam' if i % 4 == 0 else 'ham'},{(i % 10) / 10}\n"
                          for i in range(60)))
    cur = write(tmp_path / "cur.csv", "request_id,x,prediction,probability\n"
                + "".join(f"r{i},{i},{'spam' if i % 2 == 0 else 'ham'},{(i % 7) / 7}\n" for i in range(40)))
    return ref, cur


def run_labels(ref: Path, cur: Path, labels: Path, *extra: str) -> subprocess.CompletedProcess:
    return drift("--reference", str(ref), "--current", str(cur), "--target", "label", "--pos-label", "spam",
                 "--labels", str(labels), *extra)


def test_good_labels_are_accepted(small, tmp_path: Path) -> None:
    ref, cur = small
    labels = write(tmp_path / "l.csv", "request_id,label\n" + "".join(f"r{i},ham\n" for i in range(0, 40, 3)))
    p = run_labels(ref, cur, labels)
    assert p.returncode in (0, 3), p.stderr


@pytest.mark.parametrize("labels,current,message", [
    ("request_id,label\nr1,spam\n,ham\n", None, "data row 2 has no request id"),
    ("request_id,label\nr1,spam\nr1,ham\n", None, "request id 'r1' occurs more than once"),
    ("request_id,label\nr1,spam\nr99,ham\nzz,spam\n", None, "2 label(s) name request ids that are not in"),
    ("request_id,label\nr1,spam\nr2,ham\nr3,eggs\n", None, "at most two label values"),
    ("request_id,label\nr1,spam\nr2,\n", None, "data row 2 has no value in the label column 'label'"),
    ("id,label\nr1,spam\n", None, "column 'request_id' not found in"),
    ("request_id,label\nr1,spam\n", "request_id,x,prediction,probability\nr1,1,spam,0.5\nr1,2,ham,0.1\n",
     "request id 'r1' occurs more than once"),
    ("request_id,label\nr1,spam\n", "request_id,x,prediction,probability\nr1,1,spam,0.5\n,2,ham,0.1\n",
     "data row 2 has no request id"),
    ("request_id,label\nr1,spam\n", "request_id,x,prediction,probability\nr1,1,spam,1.5\nr2,2,ham,0.1\n",
     "must hold probabilities in [0, 1]"),
])
def test_bad_labels_are_clear_errors(small, tmp_path: Path, labels: str, current: str | None, message: str) -> None:
    ref, cur = small
    if current is not None:
        cur = write(tmp_path / "cur2.csv", current)
    p = run_labels(ref, cur, write(tmp_path / "labels.csv", labels))
    assert p.returncode == 1, p.stdout
    assert message in p.stderr, p.stderr
    assert "panicked" not in p.stderr


def test_labels_need_a_target_and_a_positive_class(small, tmp_path: Path) -> None:
    ref, cur = small
    labels = write(tmp_path / "l.csv", "request_id,label\nr1,spam\n")
    p = drift("--reference", str(ref), "--current", str(cur), "--labels", str(labels))
    assert p.returncode == 1 and "--labels needs --target" in p.stderr
    p = drift("--reference", str(ref), "--current", str(cur), "--labels", str(labels), "--target", "label")
    assert p.returncode == 1 and "pass --pos-label" in p.stderr, p.stderr
    p = drift("--reference", str(ref), "--current", str(cur), "--target", "label", "--pos-label", "eggs")
    assert p.returncode == 1 and "--pos-label 'eggs' is not one of the label values" in p.stderr, p.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
