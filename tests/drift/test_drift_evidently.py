"""Cross-check `factory drift` against the real Evidently 0.7.23 `DataDriftPreset`.

Needs a venv with `evidently==0.7.23`, `pandas<3`, `scipy`, `pytest`, and the binary in
FACTORY_BIN (default: target/release/factory). For every generated scenario the test runs
Evidently in-process and `factory drift` on the same CSV files and asserts, per column, the
same test (registry name), drift score within 1e-9 relative, drift decision and PSI, and the
same dataset verdict. Bad inputs are checked through the CLI.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import gen_data

evidently = pytest.importorskip("evidently")
from evidently import Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

assert evidently.__version__ == "0.7.23", evidently.__version__

# Evidently and pandas warn about the infinities and empty bins the data holds on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::FutureWarning")

REL = 1e-9
DRIFT_SHARE = 0.3
ROOT = Path(__file__).resolve().parents[2]
FACTORY_BIN = os.environ.get("FACTORY_BIN", str(ROOT / "target" / "release" / "factory"))

# Evidently reports the display name of the test it resolved; we report the registry name.
DISPLAY_TO_NAME = {
    "K-S p_value": "ks",
    "Wasserstein distance (normed)": "wasserstein",
    "PSI": "psi",
    "Jensen-Shannon distance": "jensenshannon",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Kullback-Leibler divergence": "kl_div",
    "Hellinger distance": "hellinger",
}


def evidently_run(ref: Path, cur: Path, **preset) -> dict:
    """Evidently's per-column results and dataset verdict, from the report's own dict."""
    reference, current = pd.read_csv(ref), pd.read_csv(cur)
    snapshot = Report([DataDriftPreset(drift_share=DRIFT_SHARE, **preset)], include_tests=True).run(
        current_data=current, reference_data=reference
    )
    d = snapshot.dict()
    columns = {}
    for m in d["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("ValueDrift"):
            columns[cfg["column"]] = {
                "stattest": DISPLAY_TO_NAME.get(cfg["method"], cfg["method"]),
                "drift_score": m["value"],
                "threshold": cfg["threshold"],
            }
        elif cfg["type"].endswith("DriftedColumnsCount"):
            count, share = m["value"]["count"], m["value"]["share"]
    for t in d["tests"]:
        if t["id"] == "drift":
            col = t["metric_config"]["params"]["column"]
            columns[col]["drift_detected"] = t["status"] == "FAIL"
        elif t["id"] == "lt":
            dataset_drift = t["status"] == "FAIL"  # "share < drift_share" failed
    return {"columns": columns, "count": count, "share": share, "dataset_drift": dataset_drift}


def factory_run(ref: Path, cur: Path, tmp: Path, *extra: str) -> tuple[int, dict, str]:
    out = tmp / f"{ref.stem}-{len(extra)}.json"
    html = tmp / f"{ref.stem}-{len(extra)}.html"
    proc = subprocess.run(
        [FACTORY_BIN, "drift", "--reference", str(ref), "--current", str(cur),
         "--drift-share", str(DRIFT_SHARE), "--report-json", str(out), "--report-html", str(html), *extra],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode in (0, 3), proc.stderr
    report = json.loads(out.read_text())
    page = html.read_text()
    assert "<svg" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    return proc.returncode, report, proc.stdout


def close(ours: float, theirs: float) -> bool:
    if theirs is None or (isinstance(theirs, float) and math.isnan(theirs)):
        return ours is None
    return math.isclose(ours, theirs, rel_tol=REL, abs_tol=0.0)


def compare(ev: dict, ev_psi: dict, code: int, ours: dict) -> None:
    assert set(ours["columns"]) == set(ev["columns"]), (sorted(ours["columns"]), sorted(ev["columns"]))
    problems = []
    for name, e in ev["columns"].items():
        o = ours["columns"][name]
        if o["stattest"] != e["stattest"]:
            problems.append(f"{name}: stattest {o['stattest']} != {e['stattest']}")
            continue
        if not close(o["drift_score"], e["drift_score"]):
            problems.append(f"{name}: drift_score {o['drift_score']!r} != {e['drift_score']!r}")
        if o["threshold"] != e["threshold"]:
            problems.append(f"{name}: threshold {o['threshold']} != {e['threshold']}")
        if o["drift_detected"] != e["drift_detected"]:
            problems.append(f"{name}: drift_detected {o['drift_detected']} != {e['drift_detected']}")
        if not close(o["psi"], ev_psi["columns"][name]["drift_score"]):
            problems.append(f"{name}: psi {o['psi']!r} != {ev_psi['columns'][name]['drift_score']!r}")
    assert not problems, "\n".join(problems)
    assert ours["number_of_columns"] == len(ev["columns"])
    assert ours["number_of_drifted_columns"] == ev["count"]
    assert math.isclose(ours["share_of_drifted_columns"], ev["share"], rel_tol=1e-12)
    assert ours["dataset_drift"] == ev["dataset_drift"]
    max_psi = max(c["drift_score"] for c in ev_psi["columns"].values())
    significant = max_psi > ours["psi_threshold"] or ev["share"] > DRIFT_SHARE
    assert ours["significant_drift"] == significant
    assert code == (3 if significant else 0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("drift-data")


@pytest.mark.parametrize("scenario", sorted(gen_data.SCENARIOS))
def test_default_tests_match_evidently(scenario: str, data_dir: Path, tmp_path: Path) -> None:
    ref, cur = gen_data.write_scenario(data_dir, scenario)
    ev = evidently_run(ref, cur)
    ev_psi = evidently_run(ref, cur, method="psi")
    code, ours, _ = factory_run(ref, cur, tmp_path)
    compare(ev, ev_psi, code, ours)


HOUSING = Path(os.environ.get(
    "HOUSING_CSV", ROOT.parent / "shared" / "datasets" / "california_housing" / "housing.csv"))


@pytest.mark.skipif(not HOUSING.exists(), reason="shared California housing data not present")
@pytest.mark.parametrize("split", [(1000, 20640), (12000, 20640)])
def test_california_housing_matches_evidently(split, data_dir: Path, tmp_path: Path) -> None:
    """Real data: the first rows (ordered by longitude) against the last ones."""
    n_ref, n_all = split
    frame = pd.read_csv(HOUSING)
    ref, cur = data_dir / f"housing_ref_{n_ref}.csv", data_dir / f"housing_cur_{n_ref}.csv"
    frame.iloc[:n_ref].to_csv(ref, index=False)
    frame.iloc[n_ref:n_all].to_csv(cur, index=False)
    ev = evidently_run(ref, cur)
    ev_psi = evidently_run(ref, cur, method="psi")
    code, ours, _ = factory_run(ref, cur, tmp_path)
    compare(ev, ev_psi, code, ours)


OVERRIDES = {
    "num_normal": "ks",
    "num_missing": "kl_div",
    "num_tied": "hellinger",
    "num_steps": "jensenshannon",
    "float_three": "psi",
    "int_low": "chisquare",
    "int_seven": "z",
    "int_wide": "psi",
    "cat_binary": "hellinger",
    "cat_multi": "kl_div",
    "flag": "psi",
    "prediction": "wasserstein",
}


@pytest.mark.parametrize("scenario", ["small_exact", "large", "small_asymp"])
def test_explicit_stattests_match_evidently(scenario: str, data_dir: Path, tmp_path: Path) -> None:
    ref, cur = gen_data.write_scenario(data_dir, scenario)
    overrides = dict(OVERRIDES)
    if scenario == "small_exact":
        overrides["int_seven"] = "chisquare"  # z needs at most two categories to be meaningful
    ev = evidently_run(ref, cur, per_column_method=overrides)
    ev_psi = evidently_run(ref, cur, method="psi")
    args = [a for col, test in overrides.items() for a in ("--stattest", f"{col}={test}")]
    code, ours, _ = factory_run(ref, cur, tmp_path, *args)
    compare(ev, ev_psi, code, ours)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([FACTORY_BIN, "drift", *args], capture_output=True, text=True, timeout=120)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture()
def good_pair(tmp_path: Path) -> tuple[Path, Path]:
    ref = write(tmp_path / "ref.csv", "a,b,c\n" + "".join(f"{i % 7},{i * 0.5},x{i % 3}\n" for i in range(50)))
    cur = write(tmp_path / "cur.csv", "a,b,c\n" + "".join(f"{i % 5},{i * 0.7},x{i % 2}\n" for i in range(40)))
    return ref, cur


def test_missing_column_is_an_error(good_pair) -> None:
    ref, cur = good_pair
    p = run_cli("--reference", str(ref), "--current", str(cur), "--columns", "a,nope")
    assert p.returncode == 1
    assert "'nope'" in p.stderr and "not found" in p.stderr and str(ref) in p.stderr


def test_empty_current_is_an_error(good_pair, tmp_path: Path) -> None:
    ref, _ = good_pair
    empty = write(tmp_path / "empty.csv", "a,b,c\n")
    p = run_cli("--reference", str(ref), "--current", str(empty))
    assert p.returncode == 1
    assert "no data rows" in p.stderr and str(empty) in p.stderr


def test_all_nan_column_is_an_error(good_pair, tmp_path: Path) -> None:
    ref, _ = good_pair
    cur = write(tmp_path / "nan.csv", "a,b,c\n" + "".join(f"{i},,x1\n" for i in range(30)))
    p = run_cli("--reference", str(ref), "--current", str(cur))
    assert p.returncode == 1
    assert "'b'" in p.stderr and "no values" in p.stderr and str(cur) in p.stderr


def test_mismatched_types_is_an_error(good_pair, tmp_path: Path) -> None:
    ref, _ = good_pair
    cur = write(tmp_path / "text.csv", "a,b,c\n" + "".join(f"v{i % 3},{i},x1\n" for i in range(30)))
    p = run_cli("--reference", str(ref), "--current", str(cur))
    assert p.returncode == 1
    assert "'a'" in p.stderr and "mismatched types" in p.stderr


def test_missing_file_and_bad_flags_are_errors(good_pair, tmp_path: Path) -> None:
    ref, cur = good_pair
    p = run_cli("--reference", str(tmp_path / "absent.csv"), "--current", str(cur))
    assert p.returncode == 1 and "absent.csv" in p.stderr
    p = run_cli("--reference", str(ref), "--current", str(cur), "--stattest", "a=nonsense")
    assert p.returncode == 1 and "nonsense" in p.stderr
    p = run_cli("--reference", str(ref), "--current", str(cur), "--stattest", "c=ks")
    assert p.returncode == 1 and "isn't applicable" in p.stderr


def test_exit_codes_follow_the_verdict(tmp_path: Path) -> None:
    same = "x\n" + "".join(f"{i % 50}.5\n" for i in range(2000))
    ref = write(tmp_path / "r.csv", same)
    cur = write(tmp_path / "c.csv", same)
    assert run_cli("--reference", str(ref), "--current", str(cur)).returncode == 0
    shifted = write(tmp_path / "s.csv", "x\n" + "".join(f"{i % 50 + 20}.5\n" for i in range(2000)))
    p = run_cli("--reference", str(ref), "--current", str(shifted))
    assert p.returncode == 3 and "SIGNIFICANT DRIFT" in p.stdout
