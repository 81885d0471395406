"""Ensemble spread vs cross-validation residuals on TRAIN (a check, not a calibration).

Usage:
    python benchmarks/spread_on_train.py [--model NAME_OR_DIR] [--data TRAIN.json]

Reads the out-of-fold predictions written beside the model by `ase-em train`
(cv_predictions.csv), predicts every TRAIN hop with all ensemble members, and reports the
share of |out-of-fold residual| within 1 and 2 ensemble standard deviations and quantiles of
residual / spread. For a K-fold ensemble, K-1 members were trained on each TRAIN hop, so this
spread says little about the error on an unseen hop; the check shows how much.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/em619/band5_train.json"))
    args = parser.parse_args()

    from ase_em.model.weights import resolve
    from ase_em.predictor import EmPredictor
    from ase_em.training.data import load_em619
    from ase_em.training.ensemble import read_cv_predictions

    predictor = EmPredictor.from_pretrained(args.model)
    predictor.uncertainty = None  # the members' raw spread, not the card's calibrated em_std
    data = load_em619(args.data, skip_invalid=True)
    targets, oof = read_cv_predictions(resolve(args.model), np.asarray(data.targets))
    std = np.array([r.em_std for r in predictor.predict(data.hops)])
    ratio = np.abs(oof - targets) / std
    report = {
        "n": len(ratio),
        "median_em_std_eV": float(np.median(std)),
        "within_1_std": float((ratio <= 1).mean()),
        "within_2_std": float((ratio <= 2).mean()),
        "ratio_quantiles_10_50_90": np.quantile(ratio, [0.1, 0.5, 0.9]).round(3).tolist(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
