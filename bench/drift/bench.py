"""Benchmark `factory drift` against Evidently 0.7.23's DataDriftPreset on the same files.

Generates ROWS x 8 numeric columns (reference and a shifted current, default 1 000 000
rows), then runs, each in its own process so that wall time and peak RSS are measured the
same way (os.wait4 rusage of the child):
  - ours:      factory drift --reference R --current C --report-json J --report-html H
  - Evidently: pandas.read_csv both files, Report([DataDriftPreset()]).run, save JSON + HTML
and prints a side-by-side table with the ratios, after checking that both agree on every
column's drift score.

Usage: python bench/drift/bench.py [--rows N] [--runs K] [--data DIR] [--factory BIN]
Environment: FACTORY_BIN (binary, default target/release/factory).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

EVIDENTLY_SCRIPT = r"""
import json, sys
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref, cur, out_json, out_html = sys.argv[1:5]
reference = pd.read_csv(ref)
current = pd.read_csv(cur)
snapshot = Report([DataDriftPreset(drift_share=0.3)]).run(current_data=current, reference_data=reference)
snapshot.save_html(out_html)
scores = {m["config"]["column"]: m["value"] for m in snapshot.dict()["metrics"] if "column" in m["config"]}
json.dump(scores, open(out_json, "w"))
"""


GNU_TIME = "/usr/bin/time"


def measure(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS in MiB and CPU seconds (user + system) of one child process.

    Through GNU time when installed: a child forked straight from this Python process would
    count this process's pages in its peak RSS until it execs.
    """
    report = None
    if os.access(GNU_TIME, os.X_OK):
        report = Path(tempfile.mkstemp(prefix="drift-bench-time-")[1])
        cmd = [GNU_TIME, "-o", str(report), "-f", "%M", *cmd]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if code not in (0, 3):
        raise SystemExit(f"{cmd} failed ({code}):\n{err}")
    rss_kib = float(report.read_text().split()[-1]) if report else float(usage.ru_maxrss)
    return wall, rss_kib / 1024.0, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3, help="runs of ours (median reported); Evidently runs once")
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "factory-drift-bench")
    ap.add_argument("--factory", default=os.environ.get("FACTORY_BIN", str(ROOT / "target" / "release" / "factory")))
    args = ap.parse_args()

    args.data.mkdir(parents=True, exist_ok=True)
    ref = args.data / f"bench_ref_{args.rows}.csv"
    cur = args.data / f"bench_cur_{args.rows}.csv"
    if not (ref.exists() and cur.exists()):
        print(f"generating {args.rows} rows x 8 columns in {args.data} ...", file=sys.stderr)
        # In a child process, so that this one stays small (see measure()).
        subprocess.run([sys.executable, str(ROOT / "tests" / "drift" / "gen_data.py"), "bench",
                        str(args.data), str(args.rows)], check=True, stdout=subprocess.DEVNULL)
    size_mb = (ref.stat().st_size + cur.stat().st_size) / 2**20

    out = Path(tempfile.mkdtemp(prefix="drift-bench-"))
    ours = []
    for i in range(args.runs):
        ours.append(measure([args.factory, "drift", "--reference", str(ref), "--current", str(cur),
                             "--report-json", str(out / "ours.json"), "--report-html", str(out / "ours.html"),
                             "--quiet"]))
        print(f"ours run {i + 1}: {ours[-1][0]:.3f} s, {ours[-1][1]:.1f} MiB, cpu {ours[-1][2]:.2f} s", file=sys.stderr)
    ev = measure([sys.executable, "-c", EVIDENTLY_SCRIPT, str(ref), str(cur), str(out / "ev.json"), str(out / "ev.html")])
    print(f"evidently: {ev[0]:.3f} s, {ev[1]:.1f} MiB, cpu {ev[2]:.2f} s", file=sys.stderr)
    load = os.getloadavg()[0]

    # Same answers, or the comparison is meaningless.
    ours_report = json.loads((out / "ours.json").read_text())
    ev_scores = json.loads((out / "ev.json").read_text())
    worst = max(abs(ours_report["columns"][c]["drift_score"] - s) / abs(s) for c, s in ev_scores.items())

    wall = sorted(r[0] for r in ours)[len(ours) // 2]
    rss = max(r[1] for r in ours)
    cpu = sorted(r[2] for r in ours)[len(ours) // 2]
    print(f"\nfactory drift vs Evidently 0.7.23 DataDriftPreset: {args.rows:,} rows x 8 numeric columns, "
          f"reference + current CSV = {size_mb:.0f} MiB (ours: median of {args.runs} runs)")
    print(f"{'':<22}{'ours':>12}{'Evidently':>14}{'ratio':>12}")
    print(f"{'wall time (s)':<22}{wall:>12.3f}{ev[0]:>14.3f}{ev[0] / wall:>11.1f}x")
    print(f"{'peak RSS (MiB)':<22}{rss:>12.1f}{ev[1]:>14.1f}{ev[1] / rss:>11.1f}x")
    print(f"{'CPU time (s)':<22}{cpu:>12.3f}{ev[2]:>14.3f}{ev[2] / cpu:>11.1f}x")
    print(f"{'max rel. score diff':<22}{worst:>12.2e}")
    print(f"{os.cpu_count()} cores, load average {load:.1f} at the end (wall times suffer when other work runs)")
    print(f"targets: >= 50x faster -> {'met' if ev[0] / wall >= 50 else 'NOT met'}; "
          f">= 100x faster (issue 24) -> {'met' if ev[0] / wall >= 100 else 'NOT met'}; "
          f"<= 1/10 memory -> {'met' if rss * 10 <= ev[1] else 'NOT met'}")


if __name__ == "__main__":
    main()
