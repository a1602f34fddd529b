"""Data sets for the drift cross-check and benchmark (deterministic, numpy only).

Each scenario is a reference/current pair of CSV files mixing the column kinds whose
handling Evidently 0.7.23 decides differently: floats, low-cardinality floats, integers
with few and many values, binary and multi-class strings, missing values and infinities,
with reference sizes on both sides of Evidently's 1000-row switch and current sizes on
both sides of scipy's exact/asymptotic KS switch (10 000).

Run as a script to write the benchmark files: python gen_data.py bench DIR ROWS
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def _with_missing(values: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    out = values.astype(object)
    out[rng.random(len(out)) < share] = None
    return out


def _frame(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    """One data set; `shift` moves every distribution a little (0 = reference)."""
    cols: dict[str, object] = {}
    cols["num_normal"] = rng.normal(shift, 1.0, n).round(6)
    num_missing = rng.lognormal(0.5 + shift, 0.4, n).round(4)
    num_missing[rng.random(n) < 0.05] = np.nan
    num_missing[rng.random(n) < 0.01] = np.inf
    cols["num_missing"] = num_missing
    cols["num_tied"] = rng.integers(0, 40, n) / 4.0 + (shift > 0) * 0.25  # float dtype, 40 steps
    cols["num_steps"] = rng.choice([0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5, 11.5],
                                   n, p=None).astype(float) + (shift > 0.15) * 1.0
    cols["float_three"] = rng.choice([0.5, 1.5, 2.5], n, p=[0.5 - shift / 2, 0.3, 0.2 + shift / 2])
    cols["float_two"] = rng.choice([0.0, 1.0], n, p=[0.6 + shift / 3, 0.4 - shift / 3])
    cols["int_low"] = rng.choice([0, 1, 2, 3], n, p=[0.4, 0.3, 0.2 - shift / 4, 0.1 + shift / 4])
    cols["int_seven"] = rng.integers(0, 7, n) + (rng.random(n) < shift).astype(int)
    cols["int_wide"] = rng.integers(0, 1000, n) + int(shift * 80)
    cols["int_fifteen"] = rng.integers(0, 15, n)
    cols["cat_binary"] = rng.choice(["yes", "no"], n, p=[0.7 - shift / 2, 0.3 + shift / 2])
    cols["cat_multi"] = _with_missing(
        rng.choice(["alpha", "beta", "gamma", "delta", "epsilon"], n,
                   p=[0.3, 0.25, 0.2, 0.15 - shift / 3, 0.1 + shift / 3]), rng, 0.03)
    cols["flag"] = rng.random(n) < 0.3 + shift / 2  # written as True/False: pandas bool dtype
    cols["prediction"] = np.clip(rng.beta(2, 5 - shift * 4, n), 0, 1).round(5)
    return pd.DataFrame(cols)


SCENARIOS = {
    # name: (reference rows, current rows, shift, seed)
    "small_exact": (800, 700, 0.2, 1),
    "small_equal": (600, 600, 0.1, 2),
    "small_asymp": (900, 12_000, 0.15, 3),
    "small_nodrift": (1000, 900, 0.0, 4),
    "large": (5000, 3000, 0.2, 5),
    "large_nodrift": (3000, 2500, 0.0, 6),
}


def write_scenario(directory: Path, name: str, scenarios: dict | None = None, frame=None) -> tuple[Path, Path]:
    """Writes scenario `name` (of `scenarios`, drawn by `frame`) as a reference/current pair."""
    n_ref, n_cur, shift, seed = (scenarios or SCENARIOS)[name]
    rng = np.random.default_rng(seed)
    ref = (frame or _frame)(rng, n_ref, 0.0)
    cur = (frame or _frame)(rng, n_cur, shift)
    ref_path, cur_path = directory / f"{name}_ref.csv", directory / f"{name}_cur.csv"
    ref.to_csv(ref_path, index=False)
    cur.to_csv(cur_path, index=False)
    return ref_path, cur_path


def write_benchmark(directory: Path, rows: int, columns: int = 8, seed: int = 0) -> tuple[Path, Path]:
    """`rows` x `columns` float columns; current shifted a little more on each column."""
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({f"f{i}": rng.normal(0, 1, rows).round(6) for i in range(columns)})
    cur = pd.DataFrame({f"f{i}": rng.normal(0.05 * i, 1 + 0.02 * i, rows).round(6) for i in range(columns)})
    ref_path, cur_path = directory / f"bench_ref_{rows}.csv", directory / f"bench_cur_{rows}.csv"
    ref.to_csv(ref_path, index=False)
    cur.to_csv(cur_path, index=False)
    return ref_path, cur_path


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "bench":
        for p in write_benchmark(Path(sys.argv[2]), int(sys.argv[3])):
            print(p)
    else:
        out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
        for scenario in SCENARIOS:
            for p in write_scenario(out, scenario):
                print(p)


# --- Text columns -----------------------------------------------------------------------

_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "qu", "zen", "xi", "bor", "fla"]


def _word(rng: np.random.Generator, new: bool) -> str:
    """A word from a fixed-size vocabulary; `new` draws from syllables the reference rarely uses."""
    k = int(rng.integers(1, 4))
    pool = _SYLLABLES[10:] if new else _SYLLABLES[:10]
    return "".join(pool[int(i)] for i in rng.integers(0, len(pool), k))


def _text(rng: np.random.Generator, shift: float) -> object:
    """A message: sentences of words with punctuation, digits, unicode and newlines."""
    if rng.random() < 0.03:
        return None
    sentences = []
    for _ in range(int(rng.integers(1, 4 + int(shift * 6)))):
        words = [_word(rng, rng.random() < 0.03 + shift / 3) for _ in range(int(rng.integers(2, 12)))]
        if rng.random() < 0.2 + shift:
            words.append(str(int(rng.integers(0, 10_000))))
        if rng.random() < 0.1:
            words.insert(0, "Mr.")
        if rng.random() < 0.05:
            words.append("café ☕ 東京")
        sentences.append(" ".join(words).capitalize() + rng.choice([".", "?", "!", "...", " e.g."]))
    sep = "\n" if rng.random() < 0.2 else " "
    return sep.join(sentences)


def text_frame(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    return pd.DataFrame({
        "message": [_text(rng, shift) for _ in range(n)],
        "title": [f"{_word(rng, False).title()} {_word(rng, rng.random() < shift)} #{i}" for i in range(n)],
        "channel": rng.choice(["web", "mail", "app"], n, p=[0.5, 0.3 - shift / 4, 0.2 + shift / 4]),
        "score": rng.normal(shift, 1.0, n).round(4),
    })


TEXT_SCENARIOS = {
    # name: (reference rows, current rows, shift, seed)
    "text_small": (700, 600, 0.25, 11),
    "text_large": (3000, 2500, 0.2, 12),
    "text_nodrift": (2000, 1500, 0.0, 13),
}


def write_text_scenario(directory: Path, name: str) -> tuple[Path, Path]:
    return write_scenario(directory, name, TEXT_SCENARIOS, text_frame)


# --- Classifier outputs -------------------------------------------------------------------

def classifier_frame(rng: np.random.Generator, n: int, shift: float, start: int = 0) -> pd.DataFrame:
    """A calibrated binary classifier's outputs: P(spam) drawn per row, the true label drawn
    from it (so the probabilities are calibrated), the predicted label at 0.5."""
    x = rng.normal(shift, 1.0, n)
    p = 1.0 / (1.0 + np.exp(-(1.8 * x - 1.0 + rng.normal(0, 0.8, n))))
    y = rng.random(n) < p
    return pd.DataFrame({
        "request_id": [f"req-{start + i:07d}" for i in range(n)],
        "x": x.round(5),
        "label": np.where(y, "spam", "ham"),
        "prediction": np.where(p >= 0.5, "spam", "ham"),
        "probability": p,
    })
