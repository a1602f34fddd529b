#!/bin/sh
# One drift cycle (`factory loop --once`). The production rows come from one of two sources
# (the chart's loop.drift.source):
# - requestLog ($FACTORY_REQUESTS set): every serving pod's request log. Each pod writes its own
#   sub-folder of $FACTORY_REQUESTS, and pipeline files cannot glob, so the folders are passed as
#   --request-log flags.
# - sketches ($FACTORY_REQUESTS unset): the pipeline file names the serving pods' headless Service
#   (`[drift] sketch_service`); the loop reads every ready pod's GET /drift/sketch. No volume.
# Exit status: factory loop's (0: the cycle ran, whatever it decided; 1: it failed).
set -eu
set --
if [ -n "${FACTORY_REQUESTS:-}" ]; then
    for dir in "$FACTORY_REQUESTS"/*/; do
        [ -d "$dir" ] && set -- "$@" "--request-log=${dir%/}"
    done
    if [ "$#" -eq 0 ]; then
        echo "no request logs under $FACTORY_REQUESTS yet"
    fi
fi
mkdir -p "$FACTORY_LOOP_DIR/state" "$FACTORY_LOOP_DIR/reports" "$FACTORY_LOOP_DIR/labels"
exec factory loop --once --json \
    --pipelines="$FACTORY_PIPELINES" \
    --state-dir="$FACTORY_LOOP_DIR/state" \
    --report-dir="$FACTORY_LOOP_DIR/reports" \
    --labels="$FACTORY_LOOP_DIR/labels" \
    "$@"
