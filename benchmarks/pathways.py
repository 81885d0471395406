"""Ranking of pathways within a crystal: do the out-of-fold predictions order a host's hops?

Usage:
    python benchmarks/pathways.py RUN_DIR [RUN_DIR ...] [--baseline RUN_DIR] [--data TRAIN.json]

Each RUN_DIR holds ``cv_predictions.csv`` (``target,prediction``, one row per hop in data
order, as ``ase-em train`` writes it; the data file gives the record names). A structure is
a record name without its trailing ``_N``. Prints Markdown tables, one row per run plus the
rule "shorter hop has the lower barrier" (hop length from the band's first and last ion
image):

* n, MAE, R2;
* lowest found: share of structures with 2+ pathways whose lowest predicted pathway is a
  lowest DFT pathway;
* pairs: share of same-structure pairs with different DFT barriers that the prediction
  orders right (a predicted tie, or hops within 1e-3 A of the same length for the rule,
  counts one half; leaving ties out instead gives the rule 0.611 on TRAIN); pairs > 0.3: the same for DFT gaps
  above 0.3 eV;
* MAE and bias (prediction - DFT) per DFT barrier bin, and MAE per ion;
* with --baseline: the paired MAE difference on the same hops, mean +- standard error over
  the baseline's CV folds (when its card names the folds) and over hops; and the paired
  difference of pair accuracy, +- its bootstrap standard error (structures resampled).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BINS = [(0.0, 0.5), (0.5, 1.0), (1.0, 1.5), (1.5, np.inf)]
GAP = 0.3  # eV: the "clear pairs"


def structures(names: list[str]) -> np.ndarray:
    """Structure label per hop: the record name without its ``_N`` suffix."""
    return np.asarray([re.sub(r"_\d+$", "", n) for n in names])


def ranking(y: np.ndarray, score: np.ndarray, groups: np.ndarray, tie: float = 1e-9) -> dict[str, float]:
    """Lowest-pathway-found share and pair accuracies of ``score`` (lower = lower barrier).

    Scores closer than ``tie`` are a tie: half right.
    """
    by = defaultdict(list)
    for i, g in enumerate(groups):
        by[g].append(i)
    found, right, n_pairs, right_gap, n_gap = [], 0.0, 0, 0.0, 0
    for idx in by.values():
        if len(idx) < 2:
            continue
        idx = np.asarray(idx)
        yy, ss = y[idx], score[idx]
        found.append(yy[np.argmin(ss)] <= yy.min() + 1e-9)
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                dy = yy[a] - yy[b]
                if abs(dy) < 1e-9:
                    continue
                ds = ss[a] - ss[b]
                ok = 0.5 if abs(ds) < tie else float(np.sign(ds) == np.sign(dy))
                right += ok
                n_pairs += 1
                if abs(dy) > GAP:
                    right_gap += ok
                    n_gap += 1
    return {
        "structures": len(found),
        "found": float(np.mean(found)),
        "pairs": n_pairs,
        "pair_acc": right / n_pairs,
        "pairs_gap": n_gap,
        "pair_acc_gap": right_gap / n_gap,
    }


def pair_outcomes(
    y: np.ndarray, score: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per same-structure pair with different DFT barriers: structure, right (0, 0.5, 1), DFT gap."""
    g_out, ok_out, gap_out = [], [], []
    for g in np.unique(groups):
        idx = np.nonzero(groups == g)[0]
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                dy = y[idx[a]] - y[idx[b]]
                if abs(dy) < 1e-9:
                    continue
                ds = score[idx[a]] - score[idx[b]]
                g_out.append(g)
                ok_out.append(0.5 if abs(ds) < 1e-9 else float(np.sign(ds) == np.sign(dy)))
                gap_out.append(abs(dy))
    return np.asarray(g_out), np.asarray(ok_out), np.asarray(gap_out)


def paired_pair_difference(y, score, base, groups, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Pair accuracy of ``score`` minus ``base`` and its bootstrap standard error over structures."""
    g, ok, _ = pair_outcomes(y, score, groups)
    _, ok_b, _ = pair_outcomes(y, base, groups)
    d = ok - ok_b
    names = np.unique(g)
    rows = [np.nonzero(g == s)[0] for s in names]
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):
        pick = np.concatenate([rows[i] for i in rng.integers(0, len(rows), len(rows))])
        boot.append(d[pick].mean())
    return float(d.mean()), float(np.std(boot, ddof=1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", help="directories with cv_predictions.csv")
    parser.add_argument("--baseline", default=None, help="run for the paired MAE difference")
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/em619/band5_train.json"))
    parser.add_argument(
        "--write-card",
        default=None,
        metavar="MODEL_DIR",
        help="store the first run's figures under metrics.pathways in MODEL_DIR/card.json, and its "
        "out-of-fold predictions there as cv_predictions_grouped.csv (grouped runs) or as "
        "cv_predictions_RUN.csv",
    )
    args = parser.parse_args()

    from ase_em.training.data import load_em619
    from ase_em.training.ensemble import compound_groups, fold_indices, read_cv_predictions

    data = load_em619(args.data, skip_invalid=True)
    y = np.asarray(data.targets, float)
    groups = structures(data.names)
    ions = np.asarray([h.ion for h in data.hops])
    length = np.asarray([h.length for h in data.hops])
    runs = {Path(r).name: read_cv_predictions(r, y)[1] for r in args.runs}

    base, folds = None, None
    if args.baseline:
        base = read_cv_predictions(args.baseline, y)[1]
        card_path = Path(args.baseline) / "card.json"
        if card_path.is_file():
            card = json.loads(card_path.read_text())
            t = card["train"]
            g = compound_groups(data.names) if "grouped" in card["split"] else None
            folds = fold_indices(len(y), t["folds"], t["seed"], g)

    def r2(p: np.ndarray) -> float:
        return 1 - ((p - y) ** 2).sum() / ((y - y.mean()) ** 2).sum()

    rk = ranking(y, length, groups, tie=1e-3)  # hops of equal length (1e-3 A) tie
    print(
        f"TRAIN n = {len(y)}; {rk['structures']} structures with 2+ pathways, {rk['pairs']} pairs with "
        f"different DFT barriers, {rk['pairs_gap']} with a gap > {GAP} eV\n"
    )
    print(
        f"| run | n | MAE | R2 | lowest found | pairs | pairs > {GAP} eV | paired dMAE (folds) | "
        "paired dMAE (hops) | paired d(pairs) (bootstrap over structures) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, p in runs.items():
        k = ranking(y, p, groups)
        dfold = dhop = dpair = ""
        if base is not None:
            dp, se = paired_pair_difference(y, p, base, groups)
            dpair = f"{dp:+.3f} +- {se:.3f}"
            d = np.abs(p - y) - np.abs(base - y)
            dhop = f"{d.mean():+.3f} +- {d.std(ddof=1) / np.sqrt(len(d)):.3f}"
            if folds is not None:
                f = [d[i].mean() for i in folds]
                dfold = f"{np.mean(f):+.3f} +- {np.std(f, ddof=1) / np.sqrt(len(f)):.3f}"
        print(
            f"| {name} | {len(y)} | {np.abs(p - y).mean():.3f} | {r2(p):.3f} | {k['found']:.3f} | "
            f"{k['pair_acc']:.3f} | {k['pair_acc_gap']:.3f} | {dfold} | {dhop} | {dpair} |"
        )
    print(
        f"| rule: shorter hop lower | | | | {rk['found']:.3f} | {rk['pair_acc']:.3f} | "
        f"{rk['pair_acc_gap']:.3f} | | | |"
    )

    heads = [f"{lo}-{hi} eV" if hi < np.inf else f"> {lo} eV" for lo, hi in BINS]
    print("\n| run | " + " | ".join(heads) + " |")
    print("| --- |" + " --- |" * len(BINS))
    for name, p in runs.items():
        cells = []
        for lo, hi in BINS:
            sel = (y >= lo) & (y < hi)
            e = p[sel] - y[sel]
            cells.append(f"n {sel.sum()}: MAE {np.abs(e).mean():.2f}, bias {e.mean():+.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")

    kinds = sorted(set(ions), key=lambda s: -int((ions == s).sum()))
    print("\n| run | " + " | ".join(f"{s} (n {(ions == s).sum()})" for s in kinds) + " |")
    print("| --- |" + " --- |" * len(kinds))
    for name, p in runs.items():
        print(f"| {name} | " + " | ".join(f"{np.abs(p - y)[ions == s].mean():.3f}" for s in kinds) + " |")

    if args.write_card:
        first = Path(args.runs[0])
        write_card(Path(args.write_card), first, data.names, y, runs[first.name], groups)


def figures(y: np.ndarray, p: np.ndarray, groups: np.ndarray) -> dict:
    """MAE, R2, the three ranking figures and MAE / bias per barrier bin of one run (JSON-ready)."""
    k = ranking(y, p, groups)
    bins = {}
    for lo, hi in BINS:
        sel = (y >= lo) & (y < hi)
        e = p[sel] - y[sel]
        key = f"{lo}-{hi} eV" if hi < np.inf else f"> {lo} eV"
        bins[key] = {
            "n": int(sel.sum()),
            "mae": round(float(np.abs(e).mean()), 4),
            "bias": round(float(e.mean()), 4),
        }
    return {
        "n": len(y),
        "mae": round(float(np.abs(p - y).mean()), 4),
        "r2": round(float(1 - ((p - y) ** 2).sum() / ((y - y.mean()) ** 2).sum()), 4),
        "structures_with_2plus_pathways": k["structures"],
        "lowest_found": round(k["found"], 4),
        "pairs": k["pairs"],
        "pair_accuracy": round(k["pair_acc"], 4),
        f"pairs_gap_above_{GAP}_eV": k["pairs_gap"],
        f"pair_accuracy_gap_above_{GAP}_eV": round(k["pair_acc_gap"], 4),
        "by_barrier": bins,
    }


def write_card(model_dir: Path, run: Path, names: list[str], y: np.ndarray, p: np.ndarray, groups) -> None:
    """Store ``run``'s pathway figures on ``model_dir``'s card and its OOF CSV beside it."""
    from ase_em.training.ensemble import write_cv_predictions

    run_card = json.loads((run / "card.json").read_text())
    card_path = model_dir / "card.json"
    card = json.loads(card_path.read_text())
    grouped = "grouped" in run_card["split"]
    csv_name = "cv_predictions_grouped.csv" if grouped else f"cv_predictions_{run.name}.csv"
    write_cv_predictions(model_dir / csv_name, names, y, p)
    card.setdefault("metrics", {}).setdefault("pathways", {})["grouped" if grouped else run.name] = {
        "run": run.name,
        "scheme": run_card["split"],
        "train": run_card["train"],
        "command": run_card.get("command"),
        "predictions": csv_name,
        **figures(y, p, groups),
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"\nwrote metrics.pathways of {run.name} on {card_path} and {model_dir / csv_name}")


if __name__ == "__main__":
    main()
