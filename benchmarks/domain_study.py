"""The model's domain: descriptor distance to TRAIN against out-of-fold errors; writes domain.json.

For each of the shipped model's 5 CV folds (the split it was trained with), the held-out hops
are checked against the other four folds only: hop-length range, ions, elements and the
descriptor distance (ase_em.model.domain) with its threshold taken as a percentile of the training
folds' own leave-one-out distances. The out-of-fold errors are the shipped model's
(ase_em/weights/alignn-em-v1/cv_predictions.csv), so no model runs here (about 10 s).

    python benchmarks/domain_study.py                      # the CV table
    python benchmarks/domain_study.py --percentile 95 --write   # also write domain.json

Data split: TRAIN only (../shared/data/em619/band5_train.json, the 555 valid hops).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from ase_em.model import domain as dm
from ase_em.model.weights import DEFAULT_MODEL, resolve
from ase_em.training.data import load_em619
from ase_em.training.ensemble import fold_indices, read_cv_predictions


def fold_checks(hops, raw, folds, percentile, k):
    """Per held-out hop: distance, far flag, and the range/ion/element flags against its training folds."""
    n = len(hops)
    dist = np.zeros(n)
    far = np.zeros(n, bool)
    names = (dm.LONG_HOP, dm.SHORT_HOP, dm.ION_NOT_IN_TRAIN, dm.ELEMENT_NOT_IN_TRAIN)
    other = {f: np.zeros(n, bool) for f in names}
    for test in folds:
        train = np.setdiff1d(np.arange(n), test)
        mean, std = raw[train].mean(0), raw[train].std(0)
        std = np.where(std > 0, std, 1.0)
        ztr, zte = (raw[train] - mean) / std, (raw[test] - mean) / std
        loo = dm.knn_distance(ztr, ztr, k, exclude_self=True)
        thr = np.percentile(loo, percentile)
        dist[test] = dm.knn_distance(zte, ztr, k)
        far[test] = dist[test] > thr
        summary = dm.train_summary([hops[i] for i in train])
        lo, hi = summary["hop_length"]["min"], summary["hop_length"]["max"]
        for i in test:
            h = hops[i]
            other[dm.LONG_HOP][i] = h.length > hi
            other[dm.SHORT_HOP][i] = h.length < lo
            other[dm.ION_NOT_IN_TRAIN][i] = h.ion not in summary["ions"]
            other[dm.ELEMENT_NOT_IN_TRAIN][i] = any(
                e not in summary["elements"] for e in set(h.host_symbols) - {h.ion}
            )
    return dist, far, other


def split_row(name, mask, err):
    """n and MAE of the hops a check flags and of those it passes."""
    f, p = err[mask], err[~mask]
    return {
        "check": name,
        "n_flagged": int(mask.sum()),
        "mae_flagged": None if not len(f) else round(float(f.mean()), 3),
        "n_passed": int((~mask).sum()),
        "mae_passed": None if not len(p) else round(float(p.mean()), 3),
    }


def main(argv=None) -> int:
    """Run the study; print the table; optionally write domain.json beside the shipped weights."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/em619/band5_train.json")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--percentile", type=float, default=95.0, help="threshold percentile to write")
    ap.add_argument("--k", type=int, default=dm.DEFAULT_K)
    ap.add_argument("--write", action="store_true", help="write domain.json into the model directory")
    args = ap.parse_args(argv)

    model_dir = resolve(args.model)
    card = json.loads((model_dir / "card.json").read_text())
    data = load_em619(args.data, skip_invalid=True)
    targets, oof = read_cv_predictions(model_dir, np.asarray(data.targets))
    err = np.abs(oof - targets)  # (N,)
    t0 = time.perf_counter()
    raw = dm.descriptors(data.hops)  # (N, D)
    t_desc = time.perf_counter() - t0
    tcfg = card["train"]
    folds = fold_indices(len(data.hops), tcfg["folds"], tcfg["seed"])  # random folds, as the card says
    print(f"{len(data.hops)} TRAIN hops, out-of-fold MAE {err.mean():.3f} eV; descriptors in {t_desc:.1f} s; "
          f"folds: {card['split']}")

    dist, _, other = fold_checks(data.hops, raw, folds, args.percentile, args.k)
    rho = spearmanr(dist, err)
    print(f"Spearman rank correlation of out-of-fold distance and |error|: {rho.statistic:.3f} "
          f"(p = {rho.pvalue:.2g})")
    quart = np.quantile(dist, [0.25, 0.5, 0.75])
    bins = np.digitize(dist, quart)
    print("MAE by distance quartile: " + ", ".join(
        f"Q{b + 1} {err[bins == b].mean():.3f} eV (n {int((bins == b).sum())})" for b in range(4)))

    rows = []
    for pct in (80.0, 90.0, 95.0, 99.0):
        _, far, _ = fold_checks(data.hops, raw, folds, pct, args.k)
        rows.append({**split_row(f"far_from_train (p{pct:g})", far, err), "percentile": pct})
    for name, mask in other.items():
        rows.append(split_row(name, mask, err))
    from ase_em.hops.clearance import path_clearance  # the grey zone needs no training data

    grey = np.array([path_clearance(h).grey for h in data.hops])
    rows.append(split_row(dm.PATH_GREY_ZONE, grey, err))
    _, far, _ = fold_checks(data.hops, raw, folds, args.percentile, args.k)
    any_flag = far | grey | np.any(list(other.values()), axis=0)
    rows.append(split_row(f"any flag (p{args.percentile:g})", any_flag, err))
    print(f"{'check':<32} {'flagged':>8} {'MAE':>7} {'passed':>7} {'MAE':>7}")
    for r in rows:
        fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        print(f"{r['check']:<32} {r['n_flagged']:>8} {fmt(r['mae_flagged']):>7} {r['n_passed']:>7} "
              f"{fmt(r['mae_passed']):>7}")

    if args.write:
        given = argv if argv is not None else sys.argv[1:]
        command = "python " + shlex.join(["benchmarks/domain_study.py", *given])
        cv = {
            "scheme": card["split"],
            "errors": f"out-of-fold |error| of {card['name']} (cv_predictions.csv)",
            "spearman_distance_error": round(float(rho.statistic), 3),
            "mae_by_distance_quartile": [round(float(err[bins == b].mean()), 3) for b in range(4)],
            "rows": rows,
        }
        record = dm.build_domain(
            data.hops,
            k=args.k,
            threshold_percentile=args.percentile,
            data={"file": Path(data.path).name, "sha256": data.sha256, "n": len(data.hops)},
            command=command,
            cv=cv,
        )
        out = model_dir / dm.DOMAIN_FILE
        out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {out}: threshold {record['descriptor']['threshold']:.3f} (p{args.percentile:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
