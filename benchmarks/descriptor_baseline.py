"""Descriptor floor of the model study: extremely randomized trees on simple hop descriptors.

Usage:
    python benchmarks/descriptor_baseline.py [--data TRAIN.json] [--folds 5 10] [--no-class]
        [--average-with RUN_DIR]

Descriptors (about 90): hop length; for each of the five ion images the distances to its
six nearest host atoms, the number of host atoms within 2.5 and 3.0 A, and the nearest
anion and cation distances; the mobile ion (one-hot); anion fractions of the host;
volume per atom; and (unless --no-class) the structural class of the record.
Prints K-fold CV metrics, random folds and folds grouped by compound.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ANIONS = ["O", "S", "Se", "Te", "F", "Cl", "Br", "I", "N"]
IONS = ["Li", "Na", "K", "Rb", "Mg", "Ca", "Sr", "Zn", "Al"]


def descriptors(hop) -> np.ndarray:
    from ase.neighborlist import neighbor_list

    from ase_em.model.band import build_band

    band = build_band(hop)
    i, j, d = neighbor_list("ijd", band, 6.0)
    symbols = np.asarray(band.get_chemical_symbols())
    feats = [hop.length]
    for k in range(5):
        sel = (i == k) & (j >= 5)
        dk, jk = d[sel], j[sel]
        order = np.argsort(dk)
        near = np.full(6, 6.0)
        near[: min(6, len(order))] = dk[order][:6]
        is_anion = np.isin(symbols[jk], ANIONS)
        feats += list(near)
        feats += [(dk < 2.5).sum(), (dk < 3.0).sum()]
        feats += [
            dk[is_anion].min() if is_anion.any() else 6.0,
            dk[~is_anion].min() if (~is_anion).any() else 6.0,
        ]
    feats += [float(hop.ion == x) for x in IONS]
    host = np.asarray(hop.host_symbols)
    feats += [float((host == a).mean()) for a in ANIONS]
    feats += [abs(np.linalg.det(hop.cell)) / len(band)]
    return np.asarray(feats, float)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/em619/band5_train.json"))
    parser.add_argument("--folds", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--no-class", action="store_true", help="leave out the structural class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--average-with",
        default=None,
        metavar="RUN_DIR",
        help="also score the mean of the trees' and a train run's out-of-fold predictions (5 random folds)",
    )
    args = parser.parse_args()

    from sklearn.ensemble import ExtraTreesRegressor

    from ase_em.training.data import load_em619
    from ase_em.training.ensemble import compound_groups, fold_indices, read_cv_predictions
    from ase_em.training.metrics import barrier_metrics

    data = load_em619(args.data, skip_invalid=True)
    X = np.stack([descriptors(h) for h in data.hops])
    if not args.no_class:
        records = {r["sys_name"]: r for r in json.loads(Path(args.data).read_text())}
        classes = sorted({records[n].get("class", "") for n in data.names})
        X = np.hstack(
            [X, np.array([[float(records[n].get("class") == c) for c in classes] for n in data.names])]
        )
    y = np.asarray(data.targets)
    print(f"{len(y)} hops, {X.shape[1]} descriptors")
    for k in args.folds:
        for grouped in (False, True):
            oof = np.zeros_like(y)
            groups = compound_groups(data.names) if grouped else None
            for test in fold_indices(len(y), k, args.seed, groups):
                train = np.setdiff1d(np.arange(len(y)), test)
                model = ExtraTreesRegressor(
                    n_estimators=500, min_samples_leaf=1, max_features=0.5, random_state=args.seed, n_jobs=1
                )
                model.fit(X[train], y[train])
                oof[test] = model.predict(X[test])
            m = barrier_metrics(y, oof)
            if args.average_with and k == 5 and not grouped:
                a = barrier_metrics(y, (oof + read_cv_predictions(args.average_with, y)[1]) / 2)
                print(
                    f"mean of trees and {args.average_with}: MAE {a['mae']:.3f}  RMSE {a['rmse']:.3f}  "
                    f"R2 {a['r2']:.3f}  acc {a['accuracy']:.3f}  prec {a['precision']:.3f}  "
                    f"rec {a['recall']:.3f}"
                )
            print(
                f"{k}-fold {'grouped' if grouped else 'random '}: MAE {m['mae']:.3f}  RMSE {m['rmse']:.3f}  "
                f"R2 {m['r2']:.3f}  acc {m['accuracy']:.3f}  prec {m['precision']:.3f}  rec {m['recall']:.3f}"
            )


if __name__ == "__main__":
    main()
