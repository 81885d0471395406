"""The model study's table: cross-validation figures of finished `ase-em train` runs.

Usage:
    python benchmarks/cv_study.py RUN_DIR [RUN_DIR ...] [--baseline RUN_DIR] [--data TRAIN.json]
        [--bins] [--mean-of RUN_DIR RUN_DIR ...]

Each RUN_DIR is the output of `ase-em train` (card.json + cv_predictions.csv, out-of-fold
predictions in data order). Prints one Markdown row per run: settings, MAE, RMSE, R2,
accuracy/precision/recall at 0.65 eV, and the paired MAE difference to the baseline run
(same hops; mean and standard error over the baseline's folds; only for runs with the
baseline's folds, i.e. the same --seed and scheme). With --mean-of: one
more row for the mean of several runs' out-of-fold predictions (a CV estimate of an
ensemble of those settings). With --write-card MODEL_DIR: the rows, with each run's command,
are stored under "study" in that model's card.json. With --bins: for each
run, MAE and mean signed error (prediction - DFT) by range of the DFT barrier, and the
correlation of its errors with the baseline's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def settings(card: dict) -> str:
    m, t, g = card["model"], card["train"], card["graph"]
    init = (card.get("base_model") or {}).get("name") or "scratch"
    return (
        f"{m['hidden_features']} hidden, {m['alignn_layers']}+{m['gcn_layers']} layers, "
        f"readout {m['readout']}, "
        f"{g['max_neighbors']} nb, crop {g['crop_radius']}, {t['epochs']} ep, lr {t['lr']}, from {init}"
        + (f", rank {t['rank_weight']}" if t.get("rank_weight") else "")
        + (f", density weight {t['density_weight_power']}" if t.get("density_weight_power") else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--baseline", default=None, help="run to compare with, fold by fold")
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/em619/band5_train.json"))
    parser.add_argument("--bins", action="store_true", help="errors by barrier range")
    parser.add_argument(
        "--write-card",
        default=None,
        metavar="MODEL_DIR",
        help="store the rows (with each run's command) under 'study' in this card",
    )
    parser.add_argument(
        "--mean-of",
        nargs="+",
        default=None,
        metavar="RUN_DIR",
        help="also score the mean of these runs' out-of-fold predictions",
    )
    args = parser.parse_args()

    from ase_em.training.data import load_em619
    from ase_em.training.ensemble import compound_groups, fold_indices, read_cv_predictions
    from ase_em.training.metrics import barrier_metrics

    data = load_em619(args.data, skip_invalid=True)
    y = np.asarray(data.targets)

    def load(run: str) -> tuple[dict, np.ndarray]:
        card = json.loads((Path(run) / "card.json").read_text())
        return card, read_cv_predictions(run, y)[1]

    base = load(args.baseline) if args.baseline else None
    if base is not None:
        t = base[0]["train"]
        groups = compound_groups(data.names) if "grouped" in base[0]["split"] else None
        folds = fold_indices(len(y), t["folds"], t["seed"], groups)
    print("| run | settings | split | MAE | RMSE | R2 | acc | prec | rec | paired dMAE |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    study = []
    for run in args.runs:
        card, pred = load(run)
        m = barrier_metrics(y, pred)
        diff = ""
        if base is not None and run != args.baseline and card["split"] == base[0]["split"]:
            d = [np.abs(pred[f] - y[f]).mean() - np.abs(base[1][f] - y[f]).mean() for f in folds]
            diff = f"{np.mean(d):+.3f} +- {np.std(d, ddof=1) / np.sqrt(len(d)):.3f}"
        study.append(
            {
                "run": Path(run).name,
                "settings": settings(card),
                "split": card["split"],
                "metrics": m,
                "paired_mae_difference": diff or None,
                "command": card.get("command"),
            }
        )
        print(
            f"| {Path(run).name} | {settings(card)} | {card['split']} | {m['mae']:.3f} | {m['rmse']:.3f} | "
            f"{m['r2']:.3f} | {m['accuracy']:.3f} | {m['precision']:.3f} | {m['recall']:.3f} | {diff} |"
        )
    if args.write_card:
        card_path = Path(args.write_card) / "card.json"
        target = json.loads(card_path.read_text())
        baseline = Path(args.baseline).name if args.baseline else None
        target["study"] = {"baseline": baseline, "data": f"TRAIN (n = {len(y)})", "runs": study}
        card_path.write_text(json.dumps(target, indent=2) + "\n")
    if args.mean_of:
        m = barrier_metrics(y, np.mean([load(run)[1] for run in args.mean_of], axis=0))
        print(
            f"| mean of {', '.join(Path(r).name for r in args.mean_of)} | | | {m['mae']:.3f} | "
            f"{m['rmse']:.3f} | "
            f"{m['r2']:.3f} | {m['accuracy']:.3f} | {m['precision']:.3f} | {m['recall']:.3f} | |"
        )
    if args.bins:
        edges = [0.0, 0.3, 0.65, 1.0, 1.5, 2.5, np.inf]
        print("\n| run | " + " | ".join(f"{lo}-{hi} eV" for lo, hi in zip(edges[:-1], edges[1:])) + " |")
        print("| --- |" + " --- |" * (len(edges) - 1))
        for run in args.runs:
            _, pred = load(run)
            cells = []
            for lo, hi in zip(edges[:-1], edges[1:]):
                sel = (y >= lo) & (y < hi)
                err = pred[sel] - y[sel]
                cells.append(f"n {sel.sum()}: MAE {np.abs(err).mean():.2f}, bias {err.mean():+.2f}")
            corr = ""
            if base is not None:
                corr = f" (error corr. with baseline {np.corrcoef(pred - y, base[1] - y)[0, 1]:.2f})"
            print(f"| {Path(run).name}{corr} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
