# syntax=docker/dockerfile:1.7
# One image for every subcommand: `docker run IMAGE server|serve|gateway|deploy|loop|train|drift|…`.
#
#   docker build -t mlops-factory:dev .
#   docker run --rm -p 5000:5000 mlops-factory:dev                          # factory server on :5000
#   docker run --rm -e MODEL_URI=models:/m@prod -p 8080:8080 mlops-factory:dev serve --host 0.0.0.0
#
# Stages: `build` compiles the binary with the locked dependencies; `ui` is where the MLflow web UI
# build is added (see below); `runtime` is Debian slim with the binary, CA certificates and curl
# (the HEALTHCHECK and the charts' init waits use it), running as an unprivileged user;
# `onnxruntime` takes ONNX Runtime's shared library from the pinned wheel (ORT_DYLIB_PATH).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
# Only what the build reads (.dockerignore keeps the rest out of the context).
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY crates ./crates
# The registry and target folders are BuildKit caches: a rebuild after a source change
# recompiles our crates only. The binary is copied out because cache mounts do not persist
# into the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p factory \
    && install -D -m 0755 target/release/factory /out/factory

# ---------------------------------------------------------------------------------------------
# The MLflow web UI: `factory ui install` takes the UI build of the pinned mlflow release out of
# its wheel (sha256 checked against the package index) into /usr/share/factory/ui, where
# `factory server` finds it and serves it at `/`. `--build-arg WITH_UI=0` leaves it out (the
# server's `/` then says how to add it).
FROM build AS ui
ARG WITH_UI=1
RUN mkdir -p /out/ui \
    && if [ "$WITH_UI" = "1" ]; then /out/factory ui install --dir /out/ui; fi

# ---------------------------------------------------------------------------------------------
# ONNX Runtime for models logged in the `onnx` flavor (crates/formats loads it at run time,
# `load-dynamic`: nothing is linked at build time). The shared library is the one the pinned
# `onnxruntime` wheel ships, the version tests/python/requirements-models.txt pins for the tests.
FROM python:3.11-slim-${DEBIAN_RELEASE} AS onnxruntime
ARG ONNXRUNTIME_VERSION=1.32.0
RUN pip install --no-cache-dir --no-deps --target /opt/ort "onnxruntime==${ONNXRUNTIME_VERSION}" \
    && for lib in /opt/ort/onnxruntime/capi/libonnxruntime.so.1*; do \
           install -D -m 0644 "$lib" /out/lib/libonnxruntime.so; \
       done \
    && test -f /out/lib/libonnxruntime.so

# ---------------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="mlops-factory" \
      org.opencontainers.image.description="MLOps Factory: MLflow-compatible tracking server, model serving (MLflow scoring, Open Inference Protocol REST+gRPC), blue-green gateway, drift loop — one binary" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/mlops-factory/mlops-factory" \
      org.opencontainers.image.documentation="https://github.com/mlops-factory/mlops-factory/blob/main/docs/deployment.md"

# DL3008 (pin apt versions) is ignored: Debian's security archive replaces old package versions,
# so pinned versions break rebuilds; the base image tag pins the release, a rebuild picks up fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 factory \
    && useradd --system --uid 10001 --gid factory --home-dir /var/lib/factory --create-home --shell /usr/sbin/nologin factory \
    && install -d -o factory -g factory /var/lib/factory/requests /var/lib/factory/gateway /var/lib/factory/loop /var/lib/factory/cache

COPY --from=build /out/factory /usr/local/bin/factory
COPY --from=ui /out/ui /usr/share/factory/ui
COPY --from=onnxruntime /out/lib/libonnxruntime.so /usr/local/lib/libonnxruntime.so

USER 10001:10001
WORKDIR /var/lib/factory
# Folders a volume may be mounted on (a new named volume takes the image's ownership), and the
# download cache of `factory train` / `factory loop`.
ENV RUST_LOG=info \
    ORT_DYLIB_PATH=/usr/local/lib/libonnxruntime.so \
    XDG_CACHE_HOME=/var/lib/factory/cache \
    FACTORY_HEALTH_URL=http://127.0.0.1:5000/health
# 5000 server · 8080 serve HTTP · 9464 metrics (FACTORY_METRICS_LISTEN) · 50051/50052 serve gRPC (blue/green) · 50050 gateway · 50049 gateway admin
EXPOSE 5000 8080 9464 50049 50050 50051 50052

# `factory server` and `factory serve` answer GET /health (200 when ready); set FACTORY_HEALTH_URL
# to the container's own port (serve: http://127.0.0.1:8080/health). deploy/compose overrides the
# check for the gateway and the loop, which have no such route.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["sh", "-c", "curl -fsS --max-time 2 \"$FACTORY_HEALTH_URL\" > /dev/null"]

ENTRYPOINT ["/usr/local/bin/factory"]
CMD ["server", "--host", "0.0.0.0", "--port", "5000"]
