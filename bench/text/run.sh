#!/usr/bin/env bash
# Benchmark: `factory train` text classification (linear model over the subject and body) vs
# scikit-learn's TfidfVectorizer() + LogisticRegression() on the SpamAssassin e-mails, on two
# splits (train period 1 / test period 2; random 80/20, seed 42). Prints F1, ROC AUC and time
# of both and the verdict (ours F1 >= peer, AUC >= peer, whole command < peer fit); exits 1 when
# a target is missed, 2 when the factory command fails.
# Builds the release binary unless FACTORY_BIN is set (or --skip-factory is given), makes the
# venv if scikit-learn is missing ($TEXT_VENV, default ~/.cache/factory/venv), then runs
# compare.py (args pass through: --repeats N, --splits period,random, --skip-factory,
# --csv-quoting minimal, --keep, --json FILE). TEXT_DATA overrides the e-mails CSV.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${TEXT_VENV:-$HOME/.cache/factory/venv}"
data="${TEXT_DATA:-$root/../shared/datasets/spam_assassin/emails.csv.gz}"
if ! "$venv/bin/python" -c "import sklearn, pandas, numpy" 2>/dev/null; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q scikit-learn pandas numpy
fi
skip_factory=0
for a in "$@"; do [ "$a" = "--skip-factory" ] && skip_factory=1; done
if [ -z "${FACTORY_BIN:-}" ] && [ "$skip_factory" = 0 ]; then
  (cd "$root" && cargo build --release -p factory)
  export FACTORY_BIN="${CARGO_TARGET_DIR:-$root/target}/release/factory"
fi
exec "$venv/bin/python" "$root/bench/text/compare.py" --data "$data" "$@"
