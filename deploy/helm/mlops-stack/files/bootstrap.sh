#!/bin/sh
# Registers the first model version when the registry has none, and points the serving aliases
# at it. Idempotent: an alias that exists is left alone. Used by the mlops-stack bootstrap Job and
# by deploy/compose (the `bootstrap` service).
#
# Env: MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD, MODEL_NAME,
# ALIASES (space-separated; the first is the one `factory train` sets), TRAIN_DATA (optional).
set -eu
: "${MLFLOW_TRACKING_URI:?}" "${MODEL_NAME:?}" "${ALIASES:?}"
api="$MLFLOW_TRACKING_URI/api/2.0/mlflow"
auth="${MLFLOW_TRACKING_USERNAME:-}:${MLFLOW_TRACKING_PASSWORD:-}"

until curl -fsS -o /dev/null "$MLFLOW_TRACKING_URI/health"; do
    echo "waiting for the tracking server at $MLFLOW_TRACKING_URI"
    sleep 3
done

# The version an alias points at, or nothing (404). The server answers compact JSON with one
# "version":"N" field (the model version's; "model_version" is the object's key).
alias_version() {
    curl -fsS -u "$auth" "$api/registered-models/alias?name=$MODEL_NAME&alias=$1" 2>/dev/null \
        | sed -n 's/.*"version": *"\([0-9][0-9]*\)".*/\1/p'
}

# Word splitting is the point: ALIASES is a list.
# shellcheck disable=SC2086
set -- $ALIASES
first=$1
version=$(alias_version "$first" || true)
if [ -z "$version" ]; then
    echo "no models:/$MODEL_NAME@$first yet: training the first version"
    if [ -n "${TRAIN_DATA:-}" ]; then
        factory train --model-name "$MODEL_NAME" --alias "$first" --data "$TRAIN_DATA"
    else
        factory train --model-name "$MODEL_NAME" --alias "$first"
    fi
    version=$(alias_version "$first")
fi
echo "models:/$MODEL_NAME@$first is version $version"
shift
for alias in "$@"; do
    if [ -z "$(alias_version "$alias" || true)" ]; then
        curl -fsS -u "$auth" -X POST -H 'Content-Type: application/json' "$api/registered-models/alias" \
            -d "{\"name\": \"$MODEL_NAME\", \"alias\": \"$alias\", \"version\": \"$version\"}" > /dev/null
        echo "models:/$MODEL_NAME@$alias -> version $version"
    fi
done
