"""Fit the em_std calibration on cross-validation runs and (optionally) write it on a card.

Usage:
    python benchmarks/calibrate_uncertainty.py RUN_DIR RUN_DIR [...] [--write MODEL_DIR]
    python benchmarks/calibrate_uncertainty.py RUN_DIR RUN_DIR [...] --check MODEL_DIR

Each RUN_DIR is an `ase-em train` output (cv_predictions.csv: out-of-fold predictions in data
order) or an `ase-em finetune --folds K` output (the out_of_fold column of predictions.csv),
all of the same settings with another fold split (another --seed, or --grouped).
Every TRAIN hop then has one prediction per run from a model that never saw it: their mean,
spread and residual feed `ase_em.model.uncertainty.fit`. Prints the parameters, the raw spread's
coverage, and the calibrated coverage with parameters fitted out of fold (5 parts of the hops).
With --write, stores the parameters and figures under "uncertainty" in MODEL_DIR/card.json
(model.pt and its checksum are untouched). With --check, fits nothing: reports the coverage
that the calibration on MODEL_DIR's card gives on these runs (an independent check when the
runs were not used to fit it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def out_of_fold(run: Path) -> np.ndarray:
    """(n, 2) target, out-of-fold prediction of an `ase-em train` or `ase-em finetune --folds` run."""
    from ase_em.training.ensemble import CV_PREDICTIONS, read_cv_predictions

    if (run / CV_PREDICTIONS).is_file():
        return np.column_stack(read_cv_predictions(run))
    import csv

    rows = list(csv.DictReader((run / "predictions.csv").open()))
    if not rows or "out_of_fold" not in rows[0]:
        raise SystemExit(f"{run}: no out-of-fold predictions (a train run, or finetune with --folds)")
    return np.array([[float(r["target"]), float(r["out_of_fold"])] for r in rows])


def split_of(run: Path) -> str:
    """The fold scheme on a run's card."""
    split = json.loads((run / "card.json").read_text())["split"]
    return split if isinstance(split, str) else str(split.get("scheme"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--write", default=None, metavar="MODEL_DIR")
    parser.add_argument("--check", default=None, metavar="MODEL_DIR")
    args = parser.parse_args()

    from ase_em.model import uncertainty

    cvs = [out_of_fold(Path(r)) for r in args.runs]
    targets = cvs[0][:, 0]
    for run, cv in zip(args.runs, cvs, strict=True):
        assert np.allclose(cv[:, 0], targets, atol=1e-4), f"{run}: other hops than {args.runs[0]}"
    preds = np.stack([cv[:, 1] for cv in cvs])
    em, spread = preds.mean(0), preds.std(0, ddof=1)
    if args.check:
        params = json.loads((Path(args.check) / "card.json").read_text())["uncertainty"]
        ratio = np.abs(targets - em) / uncertainty.error_bar(em, spread, params)
        print(
            f"calibration of {args.check} on {', '.join(args.runs)}: "
            f"{(ratio <= 1).mean():.3f} within 1 em_std, {(ratio <= 2).mean():.3f} within 2"
        )
        return
    params = uncertainty.fit(targets, preds)
    ratio = np.abs(targets - em) / spread
    raw = {"within_1_std": float((ratio <= 1).mean()), "within_2_std": float((ratio <= 2).mean())}
    calibrated = uncertainty.coverage(targets, preds)
    report = {
        **params,
        "fitted_on": [f"{Path(r).name}: {split_of(Path(r))}" for r in args.runs],
        "n": int(len(targets)),
        "median_spread_eV": float(np.median(spread)),
        "median_em_std_eV": float(np.median(uncertainty.error_bar(em, spread, params))),
        "coverage_raw_spread": raw,
        "coverage_calibrated_out_of_fold": calibrated,
    }
    print(json.dumps(report, indent=2))
    if args.write:
        card_path = Path(args.write) / "card.json"
        card = json.loads(card_path.read_text())
        card["uncertainty"] = report
        card_path.write_text(json.dumps(card, indent=2) + "\n")
        print(f"wrote the calibration into {card_path}")


if __name__ == "__main__":
    main()
