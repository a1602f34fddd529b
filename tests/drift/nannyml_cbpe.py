"""NannyML 0.13's CBPE on a reference and an analysis CSV, one chunk each, printed as JSON.

Run by test_drift_performance.py with the Python of a venv holding `nannyml` (NANNYML_PYTHON;
requirements-nannyml.txt): NannyML needs pandas and numpy versions Evidently's venv does not
share. Probabilities are taken as calibrated (NoopCalibrator), as `factory drift` does.

usage: nannyml_cbpe.py REFERENCE.csv ANALYSIS.csv POS_LABEL
"""

import json
import sys
import warnings

import pandas as pd

warnings.filterwarnings("ignore")
import nannyml  # noqa: E402
from nannyml.calibration import NoopCalibrator  # noqa: E402

METRICS = ["roc_auc", "f1", "precision", "recall", "accuracy"]


def main() -> None:
    reference, analysis, pos = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2]), sys.argv[3]
    for frame in (reference, analysis):
        frame["y_pred"] = (frame["prediction"] == pos).astype(int)
        if "label" in frame:
            frame["y_true"] = (frame["label"] == pos).astype(int)
    estimator = nannyml.CBPE(
        y_pred_proba="probability", y_pred="y_pred", y_true="y_true", metrics=METRICS,
        problem_type="classification_binary", chunk_number=1, calibrator=NoopCalibrator(),
    )
    estimator.fit(reference)
    out = {}
    for period, frame in (("reference", reference), ("analysis", analysis)):
        result = estimator.estimate(frame).filter(period="all").to_df()
        row = result.iloc[-1]
        out[period] = {
            m: {
                "value": float(row[(m, "value")]),
                "sampling_error": float(row[(m, "sampling_error")]),
                "upper_confidence_boundary": float(row[(m, "upper_confidence_boundary")]),
                "lower_confidence_boundary": float(row[(m, "lower_confidence_boundary")]),
                "realized": None if pd.isna(row[(m, "realized")]) else float(row[(m, "realized")]),
            }
            for m in METRICS
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
