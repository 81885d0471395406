"""What a finished fine-tune writes: model.pt, card.json, log.csv, predictions.csv, parity.png."""

from __future__ import annotations

import csv
import datetime as _dt
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ase_em._version import __version__
from ase_em.model.graph import BandGraph, collate
from ase_em.model.model import EmEnsemble, EmModel
from ase_em.model.weights import save_model
from ase_em.training.data import LabelledHops
from ase_em.training.finetune._base import Base
from ase_em.training.finetune._config import HEAD_MAX_HOPS, PARTIAL_MAX_HOPS, EpochLog, FinetuneConfig
from ase_em.training.metrics import barrier_metrics


def write_outputs(
    out: Path,
    ensemble: EmEnsemble,
    base: Base,
    data: LabelledHops,
    graphs: list[BandGraph],
    targets: np.ndarray,
    plans: list[tuple[int, np.ndarray, np.ndarray]],
    config: FinetuneConfig,
    *,
    strategy_given: bool,
    summaries: list[dict[str, Any]],
    log: list[EpochLog],
    name: str,
    command: str,
) -> dict[str, Any]:
    """Predict, score, and write model.pt, card.json, log.csv, predictions.csv, parity.png.

    A backbone base has no barrier predictions: its metrics are None on the card, its column
    in predictions.csv is empty and the parity plot shows the fine-tuned model only.
    """
    pred, std = _ensemble_predict(ensemble, graphs)
    base_pred = None if base.ensemble is None else _ensemble_predict(base.ensemble, graphs)[0]

    def base_metrics(mask: np.ndarray | slice) -> dict[str, Any] | None:
        return None if base_pred is None else barrier_metrics(targets[mask], base_pred[mask])

    n = len(targets)
    val_mask = np.zeros(n, dtype=bool)
    oof = None
    if config.folds:
        oof = np.full(n, np.nan)
        for member, (_, _, val_idx) in zip(ensemble.members, plans, strict=True):
            oof[val_idx] = _member_predict(member, [graphs[i] for i in val_idx])
        val_mask[:] = True
        scheme = f"{config.folds}-fold CV, seed {config.seed}: member k held out fold k"
    else:
        val_mask[plans[0][2]] = True
        n_val = int(val_mask.sum())
        scheme = (
            f"random split, seed {config.seed}: {n - n_val} train / {n_val} validation hops"
            if n_val
            else "no validation: every hop trains (metrics are in-sample)"
        )
    train_mask = ~val_mask if not config.folds else np.ones(n, dtype=bool)
    metrics: dict[str, Any] = {
        "scheme": scheme,
        "train": barrier_metrics(targets[train_mask], pred[train_mask]),
        "base_train": base_metrics(train_mask),
    }
    if oof is not None:
        metrics["cv_out_of_fold"] = barrier_metrics(targets, oof)
        metrics["validation"] = metrics["cv_out_of_fold"]
        metrics["base_validation"] = base_metrics(slice(None))
    elif val_mask.any():
        metrics["validation"] = barrier_metrics(targets[val_mask], pred[val_mask])
        metrics["base_validation"] = base_metrics(val_mask)
    base_card = base.card
    what = "pre-trained backbone" if base.ensemble is None else "model"
    n_members = len(ensemble.members)
    card = {
        "name": name,
        "version": __version__,
        "description": (
            f"{base.record['name']} ({what}) fine-tuned ({config.strategy}) on "
            f"{Path(data.path).name}; {n_members} fine-tuned member{'s' * (n_members != 1)}"
        ),
        "base_model": base.record,
        "data": {
            "file": Path(data.path).name,
            "path": str(Path(data.path).resolve()),
            "format": data.format,
            "sha256": data.sha256,
            "structure_files": data.files,  # as the CSV names them -> sha256 (empty: in the file)
            "n": n,
            "skipped": data.skipped,
            "warnings": data.warnings,
        },
        "split": {
            "scheme": scheme,
            "validation_ids": [data.names[i] for i in np.flatnonzero(val_mask)] if not config.folds else [],
            "folds": (
                [[data.names[i] for i in val_idx] for _, _, val_idx in plans] if config.folds else None
            ),
        },
        "strategy": config.strategy,
        "strategy_choice": (
            "given"
            if strategy_given
            else f"default for {n} hops (head < {HEAD_MAX_HOPS} <= partial < {PARTIAL_MAX_HOPS} <= full)"
        ),
        "target_scaling": (
            "kept from the base model's members (see members[].target_mean/std)"
            if base.ensemble is not None
            else "per member, mean and spread of its training barriers (a backbone has no barrier "
            "scaling; see members[].target_mean/std)"
        ),
        "finetune": asdict(config),
        "members": summaries,
        "metrics": metrics,
        "command": command,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "license": base_card.get("license"),
        "torch": torch.__version__,
    }
    save_model(ensemble, base.graph_config, out, card)  # the card records graph settings
    with open(out / "log.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["member", "epoch", "train_mae", "val_mae", "lr"])
        for r in log:
            val = "" if r.val_mae is None else f"{r.val_mae:.6f}"
            w.writerow([r.member, r.epoch, f"{r.train_mae:.6f}", val, f"{r.lr:.3g}"])
    with open(out / "predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["id", "split", "target", "base_prediction", "prediction", "em_std"]
            + (["out_of_fold"] if oof is not None else [])
        )
        for i in range(n):
            split = "validation" if (val_mask[i] and oof is None) else "train"
            base_i = "" if base_pred is None else f"{base_pred[i]:.5f}"
            w.writerow(
                [
                    data.names[i],
                    split,
                    f"{targets[i]:.5f}",
                    base_i,
                    f"{pred[i]:.5f}",
                    "" if std is None else f"{std[i]:.5f}",
                ]
                + ([f"{oof[i]:.5f}"] if oof is not None else [])
            )
    if oof is not None:
        _parity_plot(out / "parity.png", targets, oof, None, base_pred, "out-of-fold (K-fold CV)")
    elif val_mask.any():
        _parity_plot(
            out / "parity.png",
            targets[val_mask],
            pred[val_mask],
            None if std is None else std[val_mask],
            None if base_pred is None else base_pred[val_mask],
            "validation",
        )
    else:
        _parity_plot(out / "parity.png", targets, pred, std, base_pred, "training hops (no validation)")
    return card


@torch.no_grad()
def _ensemble_predict(ensemble: EmEnsemble, graphs: list[BandGraph]) -> tuple[np.ndarray, np.ndarray | None]:
    """(n,) mean barriers (eV) and (n,) member spread (None for one member)."""
    ensemble.eval()
    means, stds = [], []
    for i in range(0, len(graphs), 32):
        mean, std = ensemble(*collate(graphs[i : i + 32]))
        means.append(mean)
        stds.append(std)
    mean = torch.cat(means).numpy().astype(float)
    return mean, None if stds[0] is None else torch.cat(stds).numpy().astype(float)


def _member_predict(model: EmModel, graphs: list[BandGraph]) -> np.ndarray:
    from ase_em.training.ensemble import predict_graphs

    return predict_graphs(model, graphs).astype(float)


def _parity_plot(
    path: Path,
    target: np.ndarray,
    pred: np.ndarray,
    std: np.ndarray | None,
    base_pred: np.ndarray | None,
    label: str,
) -> None:
    """Predicted vs DFT barriers (fine-tuned, and base unless None), written with the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.8, 4.6), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    spread = np.zeros_like(pred) if std is None else std
    others = pred if base_pred is None else base_pred
    lo = float(min(target.min(), (pred - spread).min(), others.min(), 0.0))
    hi = float(max(target.max(), (pred + spread).max(), others.max())) * 1.05 + 0.05
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=1, zorder=0)
    ax.fill_between(
        [lo, hi], [lo - 0.1, hi - 0.1], [lo + 0.1, hi + 0.1], color="0.9", zorder=0, label="±0.1 eV"
    )
    mae = float(np.abs(pred - target).mean())
    if base_pred is not None:  # a backbone base has no barrier predictions
        mae_base = float(np.abs(base_pred - target).mean())
        ax.scatter(
            target,
            base_pred,
            s=18,
            facecolors="none",
            edgecolors="0.55",
            label=f"base model (MAE {mae_base:.3f} eV)",
        )
    ax.errorbar(
        target,
        pred,
        yerr=std,
        fmt="o",
        ms=4,
        color="C0",
        ecolor="C0",
        elinewidth=0.8,
        label=f"fine-tuned (MAE {mae:.3f} eV)",
    )
    ax.axvline(0.65, color="C3", lw=0.6, ls=":")
    ax.axhline(0.65, color="C3", lw=0.6, ls=":")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("DFT Em (eV)")
    ax.set_ylabel("predicted Em (eV)")
    ax.set_title(f"{label}, n = {len(target)}", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
