"""Instructions and heap allocations per one-row `/invocations` request, counted by valgrind (callgrind, DHAT):
figures that do not move with the machine's load, for comparing builds while other work runs.

    FACTORY_BIN=<a factory binary> ~/.cache/factory/venv/bin/python bench/serving/instructions.py [--sites N] BIN [BIN ...]

With the helpers of bench.py: `factory server` (SQLite) + `factory train --alias prod` once (FACTORY_BIN), then for
each BIN, `factory serve --threads 1` under `valgrind --tool=callgrind`, answering LOW and then HIGH one-row
requests on one keep-alive connection (two runs); the difference of the two totals over HIGH - LOW is the cost of
a request, start-up and shutdown cancelling out. Counts user-space instructions only (the kernel's work is not in
it). The allocations (blocks allocated per request, DHAT's `tbk`) come the same way from two runs under
`valgrind --tool=dhat`; `--sites N` also lists the N call sites allocating most per request, with their stacks.
"""

from __future__ import annotations

import glob
import json
import http.client
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

LOW, HIGH = 200, 2200


def run(tool: str, binary: str, tracking: str, payload: str, out: str, n: int) -> None:
    """`binary`'s serve under valgrind's `tool` (output in `out`) answering `n` one-row requests."""
    port = bench.free_port()
    p = subprocess.Popen(["valgrind", f"--tool={tool}", f"--{tool}-out-file={out}", binary, "serve", "--threads",
                          "1", "--model-uri", "models:/california-housing-model@prod", "--tracking-uri", tracking,
                          "--port", str(port), "--grpc-port", str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
    try:
        for _ in range(600):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                c.request("GET", "/ping")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError(f"{binary} serve under valgrind did not become ready")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(n):
            c.request("POST", "/invocations", payload, {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            assert r.status == 200, r.status
        c.close()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=300)


def instructions(binary: str, tracking: str, payload: str, out: str, n: int) -> int:
    """Total instructions of `binary`'s serve answering `n` requests, from its callgrind output."""
    run("callgrind", binary, tracking, payload, out, n)
    total = 0
    for f in glob.glob(out + "*"):
        with open(f) as lines:
            total += next(int(line.split()[1]) for line in lines if line.startswith(("summary:", "totals:")))
    return total


def allocations(binary: str, tracking: str, payload: str, out: str, n: int) -> dict[tuple[str, ...], int]:
    """Blocks allocated by `binary`'s serve answering `n` requests, per call stack, from its DHAT output."""
    run("dhat", binary, tracking, payload, out, n)
    with open(out) as f:
        d = json.load(f)
    sites: dict[tuple[str, ...], int] = {}
    for pp in d["pps"]:
        stack = tuple(d["ftbl"][i] for i in pp["fs"])
        sites[stack] = sites.get(stack, 0) + pp["tbk"]
    return sites


# Frames of the allocator itself, left out of a listed stack.
ALLOCATOR = ("alloc::alloc::", "alloc::raw_vec::", "__rust_", "malloc", "realloc", "calloc", "::with_capacity",
             "alloc::vec::Vec<T,A>::", "RawVec", "::reserve", "::grow_", "finish_grow", "do_reserve_and_handle")


def main() -> int:
    args = sys.argv[1:]
    sites = 0
    if args[:1] == ["--sites"]:
        sites, args = int(args[1]), args[2:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    work, body = bench.setup("bench-instructions-")
    try:
        tracking = bench.start_factory(work)
        for binary in args:
            out = str(work / f"callgrind.{os.path.basename(binary)}")
            lo = instructions(binary, tracking, body.read_text(), f"{out}.{LOW}", LOW)
            hi = instructions(binary, tracking, body.read_text(), f"{out}.{HIGH}", HIGH)
            print(f"{binary}: {(hi - lo) / (HIGH - LOW):,.0f} instructions per request "
                  f"(total {lo:,} for {LOW} requests, {hi:,} for {HIGH})", flush=True)
            out = str(work / f"dhat.{os.path.basename(binary)}")
            lo_sites = allocations(binary, tracking, body.read_text(), f"{out}.{LOW}", LOW)
            hi_sites = allocations(binary, tracking, body.read_text(), f"{out}.{HIGH}", HIGH)
            lo_n, hi_n = sum(lo_sites.values()), sum(hi_sites.values())
            print(f"{binary}: {(hi_n - lo_n) / (HIGH - LOW):,.1f} allocations per request "
                  f"(total {lo_n:,} for {LOW} requests, {hi_n:,} for {HIGH})", flush=True)
            per = sorted(((hi_sites[s] - lo_sites.get(s, 0)) / (HIGH - LOW), s) for s in hi_sites)
            for count, stack in reversed(per[-sites:] if sites else []):
                shown = [f for f in stack if not any(a in f for a in ALLOCATOR)][:6]
                print(f"  {count:5.2f} per request")
                for frame in shown:
                    print(f"        {frame[:160]}")
    finally:
        bench.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
