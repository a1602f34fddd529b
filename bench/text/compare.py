"""Spam or ham: `factory train` (linear model over the text columns) vs scikit-learn's
TfidfVectorizer() + LogisticRegression(), both with default parameters, on the SpamAssassin
e-mails (../shared/datasets/spam_assassin/emails.csv.gz, 6,046 rows).

Two splits, the same rows for both sides:
  period   train = collection period 1 (2002), test = period 2 (2003: new spam campaigns);
  random   a seeded 80/20 split of all rows (sklearn train_test_split, random_state=42).

Each split is written to a temp folder as train.csv and test.csv with the columns
subject,body,label (label as the strings spam/ham). Every field is quoted (--csv-quoting all,
the default): 100 bodies hold a bare carriage return, which pandas' default (minimal) quoting
leaves unquoted, and a CSV reader that ends records at CR (the Rust `csv` crate's default,
as RFC 4180 readers commonly do) then splits those rows; `--csv-quoting minimal` writes
pandas' default to check exactly that.

scikit-learn reads the two files back (keep_default_na=False: empty subjects stay empty
strings), fits on text = subject + "\\n" + body with target label == "spam", and is timed on
the fit alone: TfidfVectorizer().fit_transform + LogisticRegression().fit (wall and CPU of
the process, BLAS threads included). Scores: predict_proba of the test rows, F1 / precision /
recall / accuracy at probability >= 0.5 (positive = spam), ROC AUC, log-loss.

factory: a `factory server` on a fresh SQLite store and temp artifact folder, then the WHOLE
command is timed (process start, reading both CSVs, training, scoring the holdout, logging
the run, uploading and registering the model):

  factory train --data train.csv --test-data test.csv --target label --positive-label spam
    --task classification --model linear --text-columns subject,body --experiment spam-bench
    --model-name spam-bench --json --tracking-uri http://127.0.0.1:PORT

whose stdout is one JSON object; its "metrics" (holdout = test.csv) are read as they are.

The sides alternate, repeat by repeat, so that changes in machine load hit both; the time
is the median of --repeats. Verdict per split: ours F1 >= peer F1, ours AUC >= peer AUC,
ours whole-command time < peer fit time.

Exit status: 0 every verdict met, 1 a verdict missed, 2 the factory command (or its server)
failed. Environment: FACTORY_BIN (default target/release/factory), TEXT_DATA (the e-mails).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("TEXT_DATA", ROOT.parent / "shared" / "datasets" / "spam_assassin" / "emails.csv.gz"))
FACTORY = os.environ.get("FACTORY_BIN", str(ROOT / "target" / "release" / "factory"))
COLUMNS = ["subject", "body", "label"]
POSITIVE = "spam"
REQUIRED_METRICS = ("f1", "roc_auc", "precision", "recall", "accuracy", "log_loss")
SPLITS = {
    "period": "period 1 -> 2",
    "random": "random 80/20 (seed 42)",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class FactoryFailed(Exception):
    pass


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------


def load(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise SystemExit(f"data set not found: {path} (set TEXT_DATA or --data)")
    df = pd.read_csv(path, keep_default_na=False)
    missing = [c for c in ["period", *COLUMNS] if c not in df.columns]
    if missing:
        raise SystemExit(f"{path}: missing column(s) {missing}")
    return df


def make_split(df: pd.DataFrame, kind: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    if kind == "period":
        period = df["period"].astype(int)
        return df[period == 1], df[period == 2]
    train, test = train_test_split(df, test_size=0.2, random_state=42)
    return train, test


def write_split(train: pd.DataFrame, test: pd.DataFrame, folder: Path, quoting: int) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "train.csv", folder / "test.csv"
    for frame, path in zip((train, test), paths):
        frame[COLUMNS].to_csv(path, index=False, quoting=quoting)
    return paths


def read_split(path: Path) -> tuple[pd.Series, np.ndarray]:
    frame = pd.read_csv(path, keep_default_na=False, dtype=str)
    text = frame["subject"] + "\n" + frame["body"]
    return text, (frame["label"] == POSITIVE).to_numpy(dtype=int)


def scores(y: np.ndarray, p: np.ndarray) -> dict:
    pred = (p >= 0.5).astype(int)
    return {
        "f1": float(f1_score(y, pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, p)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "accuracy": float(accuracy_score(y, pred)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
    }


# ---------------------------------------------------------------------------------------
# scikit-learn
# ---------------------------------------------------------------------------------------


class Sklearn:
    """The peer on one split: fits once per call to `fit`, scores the last fit."""

    def __init__(self, train_csv: Path, test_csv: Path):
        self.x_train, self.y_train = read_split(train_csv)
        self.x_test, self.y_test = read_split(test_csv)
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.model = None
        self.convergence_warnings = 0

    def fit(self) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            cpu0, t0 = time.process_time(), time.perf_counter()
            vec = TfidfVectorizer()
            x = vec.fit_transform(self.x_train)
            clf = LogisticRegression().fit(x, self.y_train)
            self.wall.append(time.perf_counter() - t0)
            self.cpu.append(time.process_time() - cpu0)
        self.convergence_warnings = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        self.model = (vec, clf)

    def result(self) -> dict:
        vec, clf = self.model
        p = clf.predict_proba(vec.transform(self.x_test))[:, 1]
        return {
            "metrics": scores(self.y_test, p),
            "seconds": statistics.median(self.wall),
            "cpu_seconds": statistics.median(self.cpu),
            "all_seconds": self.wall,
            "vocabulary": len(vec.vocabulary_),
            "n_iter": int(clf.n_iter_[0]),
            "convergence_warnings": self.convergence_warnings,
        }


# ---------------------------------------------------------------------------------------
# factory
# ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TrackingServer:
    """`factory server` on SQLite and a temp artifact folder, in its own process group."""

    def __init__(self, work: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = work / "factory-server.log"
        cmd = [FACTORY, "server", "--backend-store-uri", f"sqlite:///{work / 'factory.db'}",
               "--artifacts-destination", str(work / "artifacts"), "--host", "127.0.0.1", "--port", str(self.port)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise FactoryFailed(f"factory server exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        raise FactoryFailed(f"factory server not healthy after 60 s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return "<no server log>"

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def factory_command(train_csv: Path, test_csv: Path, tracking_uri: str) -> list[str]:
    return [
        FACTORY, "train", "--data", str(train_csv), "--test-data", str(test_csv), "--target", "label",
        "--positive-label", POSITIVE, "--task", "classification", "--model", "linear",
        "--text-columns", "subject,body", "--experiment", "spam-bench", "--model-name", "spam-bench",
        "--json", "--tracking-uri", tracking_uri,
    ]


class Factory:
    """Our side on one split: the whole `factory train` command, once per call to `run`."""

    def __init__(self, train_csv: Path, test_csv: Path, tracking_uri: str):
        self.cmd = factory_command(train_csv, test_csv, tracking_uri)
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.outputs: list[dict] = []

    def run(self) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(self.cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        shown = " ".join(self.cmd)
        if proc.returncode != 0:
            raise FactoryFailed(f"`{shown}` exited with {proc.returncode}:\n{proc.stderr[-4000:]}")
        try:
            out = json.loads(proc.stdout)
        except json.JSONDecodeError as e:
            raise FactoryFailed(f"`{shown}`: stdout is not one JSON object ({e}):\n{proc.stdout[:2000]}") from e
        metrics = out.get("metrics") if isinstance(out, dict) else None
        absent = [k for k in REQUIRED_METRICS if not isinstance(metrics, dict) or k not in metrics]
        if absent:
            raise FactoryFailed(f"`{shown}`: no {', '.join(absent)} in the JSON's \"metrics\":\n{proc.stdout[:2000]}")
        self.wall.append(wall)
        self.cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        self.outputs.append(out)

    def result(self) -> dict:
        last = self.outputs[-1]
        metrics = {k: float(v) for k, v in last["metrics"].items() if isinstance(v, (int, float))}
        same = all(o["metrics"] == last["metrics"] for o in self.outputs)
        return {
            "metrics": metrics,
            "seconds": statistics.median(self.wall),
            "cpu_seconds": statistics.median(self.cpu),
            "all_seconds": self.wall,
            "versions": [o.get("version") for o in self.outputs],
            "run_ids": [o.get("run_id") for o in self.outputs],
            "deterministic": same,
        }


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------


def fmt(x, spec: str, width: int) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return f"{'-':>{width}}"
    return f"{x:>{width}{spec}}"


def verdicts(peer: dict, ours: dict | None) -> dict:
    if ours is None:
        return {}
    pm, om = peer["metrics"], ours["metrics"]
    return {
        "f1": om["f1"] >= pm["f1"],
        "roc_auc": om["roc_auc"] >= pm["roc_auc"],
        "time": ours["seconds"] < peer["seconds"],
    }


def report(results: list[dict], repeats: int, quoting_name: str) -> None:
    print()
    print(f"SpamAssassin e-mails, text = subject + body, positive = spam; scikit-learn {sklearn.__version__} "
          f"TfidfVectorizer() + LogisticRegression() vs factory train --model linear --text-columns subject,body")
    print(f"times: median of {repeats}; peer = fit only (fit_transform + fit), ours = the whole command "
          f"(process, CSV, training, holdout, logging, registration); CSV quoting: {quoting_name}; "
          f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f}")
    print()
    head = (f"{'split':<24} {'rows train/test':>15} | {'peer F1':>7} {'peer AUC':>8} {'fit s':>7} | "
            f"{'ours F1':>7} {'ours AUC':>8} {'cmd s':>7} | {'F1 >=':>5} {'AUC >=':>6} {'time <':>6}")
    print(head)
    print("-" * len(head))
    for r in results:
        peer, ours, v = r["sklearn"], r.get("factory"), r.get("verdict", {})
        om = ours["metrics"] if ours else {}
        mark = lambda k: ("yes" if v[k] else "NO") if k in v else ("FAIL" if r.get("factory_error") else "n/a")  # noqa: E731
        print(f"{r['label']:<24} {str(r['train_rows']) + '/' + str(r['test_rows']):>15} | "
              f"{peer['metrics']['f1']:>7.4f} {peer['metrics']['roc_auc']:>8.4f} {peer['seconds']:>7.3f} | "
              f"{fmt(om.get('f1'), '.4f', 7)} {fmt(om.get('roc_auc'), '.4f', 8)} "
              f"{fmt(ours['seconds'] if ours else None, '.3f', 7)} | "
              f"{mark('f1'):>5} {mark('roc_auc'):>6} {mark('time'):>6}")
    print()
    print("details (test rows; F1, precision, recall, accuracy at probability >= 0.5 for the peer, "
          "as reported by factory for ours):")
    head = f"{'split':<24} {'side':<13} " + " ".join(f"{k:>9}" for k in REQUIRED_METRICS) + f" {'wall s':>8} {'CPU s':>8}"
    print(head)
    for r in results:
        for side, name in (("sklearn", "scikit-learn"), ("factory", "factory")):
            res = r.get(side)
            if res is None:
                continue
            m = res["metrics"]
            print(f"{r['label']:<24} {name:<13} " + " ".join(fmt(m.get(k), ".4f", 9) for k in REQUIRED_METRICS)
                  + f" {res['seconds']:>8.3f} {res['cpu_seconds']:>8.3f}")
    for r in results:
        peer = r["sklearn"]
        notes = [f"peer vocabulary {peer['vocabulary']} terms, lbfgs {peer['n_iter']} iterations"]
        if peer["convergence_warnings"]:
            notes.append("LogisticRegression warned it did not converge (max_iter=100, its default)")
        if r.get("factory"):
            f = r["factory"]
            notes.append(f"ours: versions {', '.join(str(v) for v in f['versions'])}")
            if not f["deterministic"]:
                notes.append("ours: the repeats reported DIFFERENT metrics")
        if r.get("factory_error"):
            notes.append("ours: FAILED (see above)")
        print(f"{r['label']}: " + "; ".join(notes))


# ---------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help=f"the e-mails CSV (default {DATA}; env TEXT_DATA)")
    ap.add_argument("--splits", default="period,random", help="comma-separated: period, random (default both)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per side and split (default 3; median)")
    ap.add_argument("--skip-factory", action="store_true", help="scikit-learn only (no factory binary needed)")
    ap.add_argument("--csv-quoting", choices=["all", "minimal"], default="all",
                    help="quoting of the written CSVs: every field (default) or pandas' default (minimal)")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (CSVs, store, server log)")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args()
    kinds = [k.strip() for k in args.splits.split(",") if k.strip()]
    if not kinds or any(k not in SPLITS for k in kinds):
        ap.error(f"--splits: choose from {', '.join(SPLITS)}")
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    if not args.skip_factory and not (os.path.isfile(FACTORY) and os.access(FACTORY, os.X_OK)):
        log(f"factory binary not found: {FACTORY} (set FACTORY_BIN, or --skip-factory)")
        return 2
    quoting = csv.QUOTE_ALL if args.csv_quoting == "all" else csv.QUOTE_MINIMAL

    df = load(args.data)
    work = Path(tempfile.mkdtemp(prefix="bench-text-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    server = None
    results: list[dict] = []
    failed = False
    try:
        if not args.skip_factory:
            server = TrackingServer(work)
            log(f"factory server on {server.url} ({work})")
        for kind in kinds:
            train, test = make_split(df, kind)
            train_csv, test_csv = write_split(train, test, work / kind, quoting)
            r = {
                "split": kind, "label": SPLITS[kind], "train_rows": len(train), "test_rows": len(test),
                "train_spam": int((train["label"] == POSITIVE).sum()), "test_spam": int((test["label"] == POSITIVE).sum()),
                "train_csv": str(train_csv), "test_csv": str(test_csv),
            }
            peer = Sklearn(train_csv, test_csv)
            ours = None if (args.skip_factory or failed) else Factory(train_csv, test_csv, server.url)
            for i in range(args.repeats):
                if ours is not None:
                    log(f"{kind}: factory train, run {i + 1}/{args.repeats} ...")
                    try:
                        ours.run()
                    except FactoryFailed as e:
                        log(f"FAILED: {e}")
                        r["factory_error"] = str(e)
                        failed, ours = True, None
                log(f"{kind}: scikit-learn fit, run {i + 1}/{args.repeats} ...")
                peer.fit()
            r["sklearn"] = peer.result()
            if ours is not None:
                r["factory"] = ours.result()
                r["verdict"] = verdicts(r["sklearn"], r["factory"])
            results.append(r)
    except FactoryFailed as e:
        log(f"FAILED: {e}")
        failed = True
    finally:
        if server is not None:
            server.stop()
    if results:
        report(results, args.repeats, "every field" if args.csv_quoting == "all" else "pandas default (minimal)")
    if args.json:
        args.json.write_text(json.dumps({"repeats": args.repeats, "csv_quoting": args.csv_quoting,
                                         "sklearn_version": sklearn.__version__, "cpus": os.cpu_count(),
                                         "results": results}, indent=2))
    if failed:
        log(f"\nthe factory side failed; files kept in {work}")
        return 2
    if args.keep:
        log(f"files kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    if args.skip_factory:
        return 0
    missed = [f"{r['split']}: {k}" for r in results for k, ok in r["verdict"].items() if not ok]
    print()
    print("verdict: " + ("every target met" if not missed else "missed: " + ", ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
