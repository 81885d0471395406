"""Build ``alignn-em-v3``: v1's network ensemble averaged with trees on descriptors + BVSE barriers.

Usage:
    python benchmarks/build_v3.py [--data TRAIN.json] [--bv docs/study/bv-path/features.csv]
        [--out ase_em/weights/alignn-em-v3] [--runs docs/study]

1. Features of every TRAIN hop: ``ase_em.model.trees.hop_descriptors`` (70) and the twelve
   BVSE barriers. The barriers are read from ``--bv`` (written by benchmarks/bv_path.py, whose
   numbers ``ase_em.hops.bond_valence`` reproduces to 1e-4 eV); hops without BV data get NaN
   (the stage imputes the training medians). Unlike the study's floor, no structural class:
   a user's crystal has none.
2. Out-of-fold predictions of the trees on the folds of ``cv-grouped-v1`` (grouped by
   compound, 5, seed 0) and of ``alignn-em-v1`` (random, 5, seed 0); the model's out-of-fold
   prediction is the mean of the trees' and the network's on the same folds. Written as two
   run folders ``RUNS/cv-v3-grouped`` and ``RUNS/cv-v3-random`` (``cv_predictions.csv``,
   ``card.json``) for benchmarks/pathways.py and benchmarks/calibrate_uncertainty.py.
3. The model folder: v1's ``domain.json``, the training table
   ``trees.npz``, and a card naming v1 as its network (whose ``model.pt`` it reads), with the
   random-fold metrics, the ``trees`` block and the
   random-fold out-of-fold predictions. Then run (the commands are printed):
   pathways.py --write-card (grouped figures) and calibrate_uncertainty.py --write.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/em619/band5_train.json"))
    parser.add_argument("--bv", default="docs/study/bv-path/features.csv")
    parser.add_argument("--out", default="ase_em/weights/alignn-em-v3")
    parser.add_argument("--runs", default="docs/study")
    parser.add_argument("--seed", type=int, default=0, help="folds and trees' random_state")
    args = parser.parse_args()

    from ase_em.hops.bond_valence import BARRIER_NAMES, LANDSCAPES, BondValenceProfile
    from ase_em.model.trees import TREE_SETTINGS, TreeStage, hop_descriptors
    from ase_em.training.data import load_em619
    from ase_em.training.ensemble import (
        compound_groups,
        fold_indices,
        read_cv_predictions,
        write_cv_predictions,
    )
    from ase_em.training.metrics import barrier_metrics

    data = load_em619(args.data, skip_invalid=True)
    names, y = list(data.names), np.asarray(data.targets, float)
    t = time.time()
    Xd = np.stack([hop_descriptors(h) for h in data.hops])
    with open(args.bv, newline="") as fh:
        rows = {r["sys_name"]: r for r in csv.DictReader(fh)}

    def bv_row(n: str) -> np.ndarray:
        r = rows[n]
        if r.get("host_e_path") in (None, ""):
            return np.full(len(BARRIER_NAMES), np.nan)
        e = {k: {land: float(r[f"{land}_{k}"]) for land in LANDSCAPES}
             for k in ("e_start", "e_end", "e_straight", "e_path")}
        b = BondValenceProfile(**e, host_line=np.zeros(0), oxi_source=r["oxi_source"]).barriers()
        return np.clip(np.asarray([b[k] for k in BARRIER_NAMES]), -50, 50)

    settings = {(r.get("grid"), r.get("tube")) for r in rows.values()}
    if len(settings) != 1 or None in next(iter(settings)):
        raise SystemExit(
            f"{args.bv}: needs one path-search setting in its grid and tube columns, "
            f"found {sorted(settings, key=str)} (rerun benchmarks/bv_path.py into a fresh --cache)"
        )
    grid, tube = map(float, next(iter(settings)))
    X = np.hstack([Xd, np.stack([bv_row(n) for n in names])])
    print(f"{len(y)} hops, {X.shape[1]} features ({np.isnan(X[:, -1]).sum()} without BV data), "
          f"{time.time() - t:.0f} s", flush=True)
    stage = TreeStage(X, y, {**TREE_SETTINGS, "random_state": args.seed}, {"grid": grid, "tube": tube})

    runs = Path(args.runs)
    v1 = ROOT / "ase_em/weights/alignn-em-v1"
    schemes = {
        "grouped": (fold_indices(len(y), 5, args.seed, compound_groups(names)), runs / "cv-grouped-v1",
                    "5-fold CV (grouped by compound), seed 0"),
        "random": (fold_indices(len(y), 5, args.seed, None), v1, "5-fold CV (random), seed 0"),
    }
    oof = {}
    for scheme, (folds, net_dir, split) in schemes.items():
        trees = np.zeros_like(y)
        for k, test in enumerate(folds):
            train = np.setdiff1d(np.arange(len(y)), test)
            trees[test] = stage.fit_predict(X[train], y[train], X[test])
            print(f"  {scheme} fold {k + 1}/5", flush=True)
        net = read_cv_predictions(net_dir, y)[1]
        p = (net + trees) / 2
        oof[scheme] = p
        run = runs / f"cv-v3-{scheme}"
        run.mkdir(parents=True, exist_ok=True)
        write_cv_predictions(run / "cv_predictions.csv", names, y, p)
        write_cv_predictions(run / "cv_predictions_trees.csv", names, y, trees)
        card = {"name": run.name, "split": split,
                "train": {"network": str(net_dir.name), "trees": stage.settings, "combine": "mean"},
                "command": "python benchmarks/build_v3.py",
                "metrics": {"cv_out_of_fold": barrier_metrics(y, p)}}
        (run / "card.json").write_text(json.dumps(card, indent=2) + "\n")
        m = barrier_metrics(y, p)
        mt = barrier_metrics(y, trees)
        print(f"{scheme}: model MAE {m['mae']:.3f} R2 {m['r2']:.3f}; trees alone MAE {mt['mae']:.3f}",
              flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(v1 / "domain.json", out / "domain.json")
    stage.save(out)
    card = json.loads((v1 / "card.json").read_text())
    for k in ("study", "uncertainty"):
        card.pop(k, None)
    card["name"] = "alignn-em-v3"
    card["network"] = "alignn-em-v1"  # its model.pt is read from there (same sha256 on this card)
    card["description"] = ("mean of alignn-em-v1's network ensemble and extremely randomized trees on 70 hop "
                           "descriptors and 12 bond-valence (BVSE, bvlain) barriers of the hop")
    card["trees"] = {"file": "trees.npz", "settings": stage.settings, "n": len(y),
                     "features": X.shape[1], "bond_valence": list(BARRIER_NAMES),
                     "bond_valence_path": stage.bond_valence, "combine": "mean"}
    card["metrics"] = {"cv_out_of_fold": barrier_metrics(y, oof["random"]),
                       "scheme": "5-fold CV (random), seed 0"}
    card["command"] = "python benchmarks/build_v3.py"
    card["date"] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    write_cv_predictions(out / "cv_predictions.csv", names, y, oof["random"])
    print(f"wrote {out}; next:\n"
          f"  python benchmarks/pathways.py {runs}/cv-v3-grouped {runs}/cv-grouped-v1 --baseline "
          f"{runs}/cv-grouped-v1 --write-card {out}\n"
          f"  python benchmarks/calibrate_uncertainty.py {runs}/cv-v3-random {runs}/cv-v3-grouped "
          f"--write {out}")


if __name__ == "__main__":
    main()
