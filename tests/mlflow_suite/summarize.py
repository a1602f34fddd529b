"""Side-by-side counts of MLflow's own tests on ``mlflow server`` and on ``factory server``.

Reads the JUnit XML files that scripts/mlflow-suite.sh writes (``<server>-<backend>.xml``),
groups tests into suites (tracking, registry, auth), and prints per suite and backend: the
tests that pass on MLflow, those that pass on factory, and the share of MLflow's passes that
also pass on factory (the acceptance measure). Writes ``regressions.tsv`` (tests that pass on
MLflow and not on factory, with the first line of the failure) next to the XML files.

Without a run on ``mlflow server`` for a backend, the tests that passed there come from
``--baseline`` (lines ``backend<TAB>test id``, written by ``--write-baseline`` from a full run):
that is how scripts/test.sh compares without spending the baseline's time on every run.

Exit status 1 when the share is below ``--min-ratio`` for any backend with a baseline.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

SUITES = {
    "tests/tracking/test_rest_tracking.py": "tracking",
    "tests/tracking/test_mlflow_artifacts.py": "tracking",
    "tests/tracking/test_model_registry.py": "registry",
    "tests/server/auth/": "auth",
}


def suite_of(nodeid: str) -> str:
    for prefix, suite in SUITES.items():
        if nodeid.startswith(prefix):
            return suite
    return "other"


def read_junit(path: Path) -> dict[str, tuple[str, str]]:
    """nodeid -> (outcome, first line of the message) for the tests that started (or used) a
    server; outcome is passed/failed/skipped. Tests that only exercise MLflow's library
    in-process say ``uses_server=0`` and are left out of every count."""
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        if props.get("uses_server") == "0":
            continue
        module = case.get("classname", "").replace(".", "/")
        name = case.get("name", "")
        nodeid = f"{module}.py::{name}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
                message = (child.get("message") or child.text or "").strip().splitlines()[0:1]
                message = message[0][:240] if message else ""
                break
            if child.tag == "skipped":
                outcome = "skipped"
        # A test that passed but errored in teardown appears twice; failure wins.
        if out.get(nodeid, ("passed",))[0] != "failed":
            out[nodeid] = (outcome, message)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path)
    ap.add_argument("--min-ratio", type=float, default=0.98)
    ap.add_argument("--baseline", type=Path, help="tests passing on mlflow server, for backends not run on it")
    ap.add_argument("--write-baseline", type=Path, help="write the mlflow server passes of this run there")
    args = ap.parse_args()
    runs = {}
    for xml in sorted(args.results.glob("*.xml")):
        server, backend = xml.stem.split("-", 1)
        runs[(server, backend)] = read_junit(xml)
    if args.write_baseline:
        with open(args.write_baseline, "w") as f:
            f.write("# Tests of MLflow's suites that pass against mlflow server (scripts/mlflow-suite.sh, both servers).\n")
            for (server, backend), run in sorted(runs.items()):
                if server == "mlflow":
                    f.writelines(f"{backend}\t{n}\n" for n, (o, _) in sorted(run.items()) if o == "passed")
    if args.baseline and args.baseline.exists():
        from_file: dict = {}
        for line in args.baseline.read_text().splitlines():
            if line and not line.startswith("#"):
                backend, nodeid = line.split("\t", 1)
                from_file.setdefault(backend, {})[nodeid] = ("passed", "")
        for backend, run in from_file.items():
            if ("factory", backend) in runs:
                runs.setdefault(("mlflow", backend), run)
    backends = sorted({b for _, b in runs})
    status = 0
    regressions = []
    header = f"{'suite':<10}{'backend':<10}{'mlflow pass':>12}{'factory pass':>13}{'both':>7}{'ratio':>8}{'fail':>6}{'skip':>6}"
    print(header)
    print("-" * len(header))
    for backend in backends:
        peer, ours = runs.get(("mlflow", backend)), runs.get(("factory", backend))
        totals = [0, 0, 0]
        for suite in ("tracking", "registry", "auth"):
            ids = {n for run in (peer or {}, ours or {}) for n in run if suite_of(n) == suite}
            peer_pass = {n for n in ids if peer and peer.get(n, ("",))[0] == "passed"}
            ours_pass = {n for n in ids if ours and ours.get(n, ("",))[0] == "passed"}
            ours_fail = {n for n in ids if ours and ours.get(n, ("",))[0] == "failed"}
            ours_skip = {n for n in ids if ours and ours.get(n, ("",))[0] == "skipped"}
            both = peer_pass & ours_pass
            ratio = f"{len(both) / len(peer_pass):.1%}" if peer and ours and peer_pass else "-"
            print(f"{suite:<10}{backend:<10}{len(peer_pass) if peer else '-':>12}{len(ours_pass) if ours else '-':>13}"
                  f"{len(both) if peer and ours else '-':>7}{ratio:>8}{len(ours_fail) if ours else '-':>6}"
                  f"{len(ours_skip) if ours else '-':>6}")
            totals[0] += len(peer_pass)
            totals[1] += len(ours_pass)
            totals[2] += len(both)
            if peer and ours:
                for n in sorted(peer_pass - ours_pass):
                    regressions.append((backend, suite, n, ours.get(n, ("missing", ""))[1]))
        if peer and ours and totals[0]:
            ratio = totals[2] / totals[0]
            print(f"{'all':<10}{backend:<10}{totals[0]:>12}{totals[1]:>13}{totals[2]:>7}{ratio:>8.1%}")
            if ratio < args.min_ratio:
                status = 1
        print()
    with open(args.results / "regressions.tsv", "w") as f:
        for row in regressions:
            f.write("\t".join(row) + "\n")
    if regressions:
        print(f"{len(regressions)} tests pass on mlflow server and not on factory server: {args.results / 'regressions.tsv'}")
    if status:
        print(f"below the required share of {args.min_ratio:.0%}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
