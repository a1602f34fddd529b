"""Instructions per one-row `/invocations` request, counted by callgrind: a figure that does not move with the
machine's load, for comparing builds while other work runs.

    FACTORY_BIN=<a factory binary> ~/.cache/factory/venv/bin/python bench/serving/instructions.py BIN [BIN ...]

With the helpers of bench.py: `factory server` (SQLite) + `factory train --alias prod` once (FACTORY_BIN), then for
each BIN, `factory serve --threads 1` under `valgrind --tool=callgrind`, answering LOW and then HIGH one-row
requests on one keep-alive connection (two runs); the difference of the two totals over HIGH - LOW is the cost of
a request, start-up and shutdown cancelling out. Counts user-space instructions only (the kernel's work is not in
it).
"""

from __future__ import annotations

import glob
import http.client
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

LOW, HIGH = 200, 2200


def instructions(binary: str, tracking: str, payload: str, out: str, n: int) -> int:
    """Total instructions of `binary`'s serve answering `n` requests, from its callgrind output."""
    port = bench.free_port()
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "serve", "--threads",
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
    total = 0
    for f in glob.glob(out + "*"):
        with open(f) as lines:
            total += next(int(line.split()[1]) for line in lines if line.startswith(("summary:", "totals:")))
    return total


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    work, body = bench.setup("bench-instructions-")
    try:
        tracking = bench.start_factory(work)
        for binary in sys.argv[1:]:
            out = str(work / f"callgrind.{os.path.basename(binary)}")
            lo = instructions(binary, tracking, body.read_text(), f"{out}.{LOW}", LOW)
            hi = instructions(binary, tracking, body.read_text(), f"{out}.{HIGH}", HIGH)
            print(f"{binary}: {(hi - lo) / (HIGH - LOW):,.0f} instructions per request "
                  f"(total {lo:,} for {LOW} requests, {hi:,} for {HIGH})", flush=True)
    finally:
        bench.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
