#!/usr/bin/env bash
# Benchmark: latency added by `factory gateway` vs calling `factory serve` directly vs nginx
# (Debian package, proxy_pass / grpc_pass to the active upstream as the seed did), HTTP/1.1
# /invocations and gRPC ModelInfer, 8 connections, fixed rate; then wrk closed loop if present.
# Installs wrk and nginx with apt-get when missing, builds the release binaries, runs
# bench-gateway (arguments pass through, e.g. --rate 1000 --duration-secs 20 --json out.json).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
for tool in wrk nginx; do
  if ! command -v "$tool" >/dev/null && [ ! -x "/usr/sbin/$tool" ]; then
    echo "$tool is not installed; installing it (apt-get install $tool)" >&2
    apt-get install -y -q "$tool" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$tool" >/dev/null; }
  fi
done
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release -p factory -p bench)
exec "$target/release/bench-gateway" --factory-bin "${FACTORY_BIN:-$target/release/factory}" --nginx-bin "$nginx_bin" "$@"
