"""Text descriptors and prediction drift of `factory drift`, checked against Evidently 0.7.23.

Evidently computes the descriptors (`TextLength`, `WordCount`, `SentenceCount`,
`NonLetterCharacterPercentage`) as columns of its `Dataset` and tests them with
`DataDriftPreset`; we assert the same test, drift score (1e-9 relative), decision and PSI for
each `<column>.<descriptor>` column of our report, with text columns declared
(`--text-columns`, streamed descriptors) and detected (described from the value counts).
Evidently's OOV descriptor needs NLTK's word list, which cannot be downloaded here, and ours
uses the reference's own words instead: the OOV column is computed in plain Python by the
documented definition and handed to Evidently as a numeric column. Also the real e-mail set
(period 1 vs period 2) when present, and the prediction label/probability columns.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gen_data
from test_drift_evidently import DISPLAY_TO_NAME, FACTORY_BIN, ROOT, close

evidently = pytest.importorskip("evidently")
from evidently import DataDefinition, Dataset, Report  # noqa: E402
from evidently.descriptors import NonLetterCharacterPercentage, SentenceCount, TextLength, WordCount  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::FutureWarning")

DESCRIPTORS = {
    "text_length": TextLength,
    "word_count": WordCount,
    "sentence_count": SentenceCount,
    "non_letter_character_percentage": NonLetterCharacterPercentage,
}
EMAILS = Path(os.environ.get("SPAM_CSV", ROOT.parent / "shared" / "datasets" / "spam_assassin" / "emails.csv.gz"))


def oov_percentages(reference: pd.Series, current: pd.Series) -> tuple[list, list]:
    """`OOVWordsPercentage` against the reference's own words: a current word is OOV when no
    reference row holds it, a reference word when no *other* reference row does."""
    def words(v):
        if not isinstance(v, str):
            return None
        return [w.lower() for w in re.sub("[^A-Za-z0-9 ]+", "", v).split()]

    ref_words = [words(v) for v in reference]
    df: dict[str, int] = {}
    for ws in ref_words:
        for w in set(ws or ()):
            df[w] = df.get(w, 0) + 1

    def share(ws, limit):
        if not ws:
            return 0
        return 100 * sum(df.get(w, 0) <= limit for w in ws) / len(ws)

    return [share(ws, 1) for ws in ref_words], [share(words(v), 0) for v in current]


def evidently_descriptor_drift(ref: pd.DataFrame, cur: pd.DataFrame, text_columns: list[str], **preset) -> dict:
    """Evidently's drift of each descriptor column `<col>.<descriptor>` (OOV handed in as a column)."""
    ref, cur = ref.copy(), cur.copy()
    columns = []
    for col in text_columns:
        ref[f"{col}.oov_words_percentage"], cur[f"{col}.oov_words_percentage"] = oov_percentages(ref[col], cur[col])
        columns += [f"{col}.{name}" for name in DESCRIPTORS] + [f"{col}.oov_words_percentage"]
    oov = [f"{col}.oov_words_percentage" for col in text_columns]
    definition = DataDefinition(text_columns=text_columns, numerical_columns=oov)
    descriptors = [cls(col, alias=f"{col}.{name}") for col in text_columns for name, cls in DESCRIPTORS.items()]
    keep = text_columns + oov
    r = Dataset.from_pandas(ref[keep], data_definition=definition, descriptors=descriptors)
    c = Dataset.from_pandas(cur[keep], data_definition=definition, descriptors=descriptors)
    snapshot = Report([DataDriftPreset(columns=columns, **preset)], include_tests=True).run(c, r)
    out = {}
    d = snapshot.dict()
    for m in d["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("ValueDrift"):
            out[cfg["column"]] = {"stattest": DISPLAY_TO_NAME.get(cfg["method"], cfg["method"]), "drift_score": m["value"],
                                  "threshold": cfg["threshold"]}
    for t in d["tests"]:
        if t["id"] == "drift":
            out[t["metric_config"]["params"]["column"]]["drift_detected"] = t["status"] == "FAIL"
    return out


def factory(ref: Path, cur: Path, tmp: Path, *extra: str) -> dict:
    out = tmp / "report.json"
    html = tmp / "report.html"
    proc = subprocess.run(
        [FACTORY_BIN, "drift", "--reference", str(ref), "--current", str(cur), "--report-json", str(out),
         "--report-html", str(html), *extra],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode in (0, 3), proc.stderr
    page = html.read_text()
    assert "<svg" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    report = json.loads(out.read_text())
    report["_html"] = page
    return report


def compare_descriptors(ev: dict, ev_psi: dict, ours: dict) -> None:
    problems = []
    for name, e in ev.items():
        o = ours["columns"].get(name)
        if o is None:
            problems.append(f"{name}: missing from our report")
            continue
        assert o["column_type"] == "num", name
        for key in ("stattest", "threshold", "drift_detected"):
            if o[key] != e[key]:
                problems.append(f"{name}: {key} {o[key]!r} != {e[key]!r}")
        if not close(o["drift_score"], e["drift_score"]):
            problems.append(f"{name}: drift_score {o['drift_score']!r} != {e['drift_score']!r}")
        if not close(o["psi"], ev_psi[name]["drift_score"]):
            problems.append(f"{name}: psi {o['psi']!r} != {ev_psi[name]['drift_score']!r}")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("text-data")


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "detected"])
@pytest.mark.parametrize("scenario", sorted(gen_data.TEXT_SCENARIOS))
def test_descriptors_match_evidently(scenario: str, declared: bool, data_dir: Path, tmp_path: Path) -> None:
    ref_path, cur_path = gen_data.write_text_scenario(data_dir, scenario)
    ref, cur = pd.read_csv(ref_path), pd.read_csv(cur_path)
    text = ["message", "title"]
    ev = evidently_descriptor_drift(ref, cur, text)
    ev_psi = evidently_descriptor_drift(ref, cur, text, method="psi")
    extra = ["--text-columns", "message,title"] if declared else []
    ours = factory(ref_path, cur_path, tmp_path, *extra)
    compare_descriptors(ev, ev_psi, ours)
    by_column = {t["column"]: t for t in ours["text_columns"]}
    assert set(by_column) == set(text)
    assert by_column["message"]["source"] == ("declared" if declared else "detected")
    assert by_column["message"]["reference_values"] == ref["message"].notna().sum()
    assert by_column["message"]["vocabulary"]["false_positive_rate"] < 1e-6
    # The categorical and numeric columns are tested as before; the text columns themselves
    # only through their descriptors.
    assert {"channel", "score"} <= set(ours["columns"]) and "message" not in ours["columns"]
    assert ours["number_of_columns"] == 2 + 2 * 5
    assert "Text columns" in ours["_html"] and "OOV Words % for message" in ours["_html"]


@pytest.mark.skipif(not EMAILS.exists(), reason="shared e-mail data not present")
@pytest.mark.parametrize("declared", [True, False], ids=["declared", "detected"])
def test_emails_period_1_vs_2_match_evidently(declared: bool, tmp_path: Path) -> None:
    with gzip.open(EMAILS, "rt", encoding="utf-8") as f:
        frame = pd.read_csv(f)
    ref_path, cur_path = tmp_path / "period1.csv", tmp_path / "period2.csv"
    frame[frame.period == 1].drop(columns=["period"]).to_csv(ref_path, index=False)
    frame[frame.period == 2].drop(columns=["period"]).to_csv(cur_path, index=False)
    ref, cur = pd.read_csv(ref_path), pd.read_csv(cur_path)
    text = ["subject", "body"]
    ev = evidently_descriptor_drift(ref, cur, text)
    ev_psi = evidently_descriptor_drift(ref, cur, text, method="psi")
    extra = ["--text-columns", "subject,body"] if declared else []
    ours = factory(ref_path, cur_path, tmp_path, "--columns", "subject,body,label", *extra)
    compare_descriptors(ev, ev_psi, ours)
    # Period 2 e-mails are longer and use other words.
    assert ours["columns"]["body.text_length"]["drift_detected"]
    assert ours["columns"]["body.oov_words_percentage"]["drift_detected"]


def test_prediction_drift_matches_evidently(data_dir: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(21)
    ref = gen_data.classifier_frame(rng, 3000, 0.0)
    cur = gen_data.classifier_frame(rng, 2000, 0.6, start=10_000)
    ref_path, cur_path = data_dir / "clf_ref.csv", data_dir / "clf_cur.csv"
    ref.drop(columns=["request_id"]).to_csv(ref_path, index=False)
    cur.drop(columns=["label"]).to_csv(cur_path, index=False)
    r, c = pd.read_csv(ref_path), pd.read_csv(cur_path)
    columns = ["prediction", "probability"]
    snap = Report([DataDriftPreset(columns=columns)]).run(c[columns], r[columns]).dict()
    ev = {m["config"]["column"]: m for m in snap["metrics"] if m["config"]["type"].endswith("ValueDrift")}
    ours = factory(ref_path, cur_path, tmp_path, "--pos-label", "spam")
    pd_ = ours["prediction_drift"]
    for key in columns:
        o, e = pd_[key], ev[key]
        assert o["column"] == key
        assert o["stattest"] == DISPLAY_TO_NAME[e["config"]["method"]]
        assert close(o["drift_score"], e["value"]), (key, o["drift_score"], e["value"])
    assert pd_["prediction"]["stattest"] == "jensenshannon" and pd_["probability"]["stattest"] == "wasserstein"
    assert pd_["drift_detected"] and pd_["pos_label"] == "spam"
    assert math.isclose(pd_["reference_share_of_positives"], (r.prediction == "spam").mean(), rel_tol=1e-12)
    assert math.isclose(pd_["current_share_of_positives"], (c.prediction == "spam").mean(), rel_tol=1e-12)
    assert math.isclose(pd_["probability"]["current_mean"], c.probability.mean(), rel_tol=1e-12)
    assert "request_id" not in ours["columns"]
    assert "Share of positive predictions" in ours["_html"]
