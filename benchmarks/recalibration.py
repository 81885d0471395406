"""Can a monotone map of out-of-fold barriers undo the pull of high barriers to the middle?

Usage:
    python benchmarks/recalibration.py [docs/study/cv-v3-grouped]

Reads a CV run's ``cv_predictions.csv`` (its folds: grouped by compound, 5, seed 0, as
``benchmarks/build_v3.py`` made them) and, fold by fold, fits a map from prediction to DFT
barrier on the other folds' out-of-fold rows, then applies it to the fold: a straight line
(least squares), isotonic regression (scikit-learn), and a stretch above a knee
(``p + s * max(p - k, 0)``, ``s`` and ``k`` on a grid by MAE). Prints the MAE and the bias
above 1.5 eV and below 0.5 eV of each. A map that only rises keeps the order of the pathways
of one structure (isotonic may tie two), so the pair figures are those of the run.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    from sklearn.isotonic import IsotonicRegression

    from ase_em.training.ensemble import compound_groups, fold_indices

    run = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/study/cv-v3-grouped")
    with open(run / "cv_predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    names = [r["sys_name"] for r in rows]
    y = np.array([float(r["target"]) for r in rows])
    p = np.array([float(r["prediction"]) for r in rows])
    folds = fold_indices(len(y), 5, 0, compound_groups(names))

    def line(pt, yt):
        b, a = np.polyfit(pt, yt, 1)
        return lambda q: a + b * q

    def isotonic(pt, yt):
        return IsotonicRegression(out_of_bounds="clip").fit(pt, yt).predict

    def knee(pt, yt):
        _, s, k = min((np.abs(pt + s * np.maximum(pt - k, 0) - yt).mean(), s, k)
                      for s in np.linspace(0, 3, 31) for k in np.linspace(0.5, 2, 16))
        return lambda q: q + s * np.maximum(q - k, 0)

    print(f"{run.name}: n {len(y)}, maps fitted on the other folds' out-of-fold rows\n")
    print("| map | MAE | > 1.5 eV: MAE, bias | < 0.5 eV: bias |\n| --- | --- | --- | --- |")
    for tag, fit in (("none", None), ("straight line", line), ("isotonic", isotonic), ("knee stretch", knee)):
        q = p.copy()
        if fit is not None:
            for test in folds:
                train = np.setdiff1d(np.arange(len(y)), test)
                q[test] = fit(p[train], y[train])(p[test])
        hi, lo = y > 1.5, y < 0.5
        print(f"| {tag} | {np.abs(q - y).mean():.3f} | {np.abs(q - y)[hi].mean():.2f}, "
              f"{(q - y)[hi].mean():+.2f} | {(q - y)[lo].mean():+.2f} |")


if __name__ == "__main__":
    main()
