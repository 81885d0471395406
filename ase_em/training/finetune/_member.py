"""Fine-tune one member: the epoch loop with its checkpoint, early stopping and resume."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ase_em.model.graph import BandGraph, collate
from ase_em.model.model import EmModel
from ase_em.model.weights import atomic_save
from ase_em.training.finetune._base import freeze, trainable_prefixes
from ase_em.training.finetune._config import CHECKPOINT, EpochLog, FinetuneConfig

logger = logging.getLogger(__name__)


def finetune_member(
    base_member: EmModel,
    graphs: list[BandGraph],
    targets: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    config: FinetuneConfig,
    *,
    member: int,
    n_members: int,
    work: Path,
    progress: bool | None,
    callback: Callable[[EpochLog], None] | None,
) -> tuple[EmModel, dict[str, Any], list[EpochLog]]:
    """Fine-tune one member (or load it if a finished run left it in ``work``).

    Returns:
        The member (eval mode), its summary for the card and its epoch log.
    """
    from tqdm import tqdm

    model = EmModel(base_member.config)
    model.load_state_dict(base_member.state_dict())
    prefixes = trainable_prefixes(model, config.strategy)
    done_file = work / f"member{member}.pt"
    if done_file.is_file():
        blob = torch.load(done_file, weights_only=True)
        model.load_state_dict(blob["trained"], strict=False)
        model.eval()
        logger.info("member %d: finished earlier, loaded from %s", member, done_file)
        return model, json.loads(blob["summary"]), [EpochLog(**r) for r in json.loads(blob["log"])]

    params = freeze(model, config.strategy)
    mean, std = float(model.target_mean), float(model.target_std)  # the start member's scaling
    y = torch.as_tensor((targets - mean) / std, dtype=torch.float32)  # (n,) scaled
    n_train = len(train_idx)
    steps = max(1, -(-n_train // config.batch_size))
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=config.epochs * steps, eta_min=config.lr / 100
    )
    # head strategy: the frozen trunk is a fixed function, so its pooled features are
    # computed once (exactly what a full forward pass would feed the head)
    features = _pooled_features(model, graphs) if config.strategy == "head" else None

    def forward_scaled(idx: np.ndarray) -> torch.Tensor:
        if features is not None:
            return model.head(features[torch.as_tensor(idx)]).squeeze(-1)
        return model.forward_scaled(*collate([graphs[i] for i in idx]))

    @torch.no_grad()
    def val_mae() -> float | None:
        if len(val_idx) == 0:
            return None
        model.eval()
        pred = torch.cat([forward_scaled(val_idx[i : i + 32]) for i in range(0, len(val_idx), 32)])
        return float((pred - y[val_idx]).abs().mean()) * std

    start, best_val, best_epoch = 0, float("inf"), 0
    best_state = _trainable_state(model, prefixes)
    rows: list[EpochLog] = []
    stopped = False
    ckpt_file = work / CHECKPOINT
    ckpt = torch.load(ckpt_file, weights_only=True) if ckpt_file.is_file() else None
    if ckpt is not None and ckpt["member"] == member:
        model.load_state_dict(ckpt["trained"], strict=False)
        opt.load_state_dict(ckpt["opt"])
        sched.load_state_dict(ckpt["sched"])
        best_state = ckpt["best_state"]
        best_val, best_epoch, start = float(ckpt["best_val"]), int(ckpt["best_epoch"]), int(ckpt["epoch"])
        stopped = bool(ckpt["stopped"])
        rows = [EpochLog(**r) for r in json.loads(ckpt["log"])]
        torch.set_rng_state(ckpt["rng"])
        logger.info("member %d: resumed from %s after epoch %d", member, ckpt_file, start)
    else:
        torch.manual_seed(config.seed * 1000 + member)

    bar = tqdm(
        range(start, config.epochs),
        desc=f"member {member + 1}/{n_members} ({config.strategy})",
        unit="epoch",
        disable=(not progress) if progress is not None else None,
        initial=start,
        total=config.epochs,
    )
    for epoch in bar:
        if stopped:
            break
        model.train()
        shuffle = torch.Generator().manual_seed(config.seed * 1_000_003 + member * 10_007 + epoch)
        perm = train_idx[torch.randperm(n_train, generator=shuffle).numpy()]
        total = 0.0
        for b in range(steps):
            idx = perm[b * config.batch_size : (b + 1) * config.batch_size]
            loss = torch.nn.functional.l1_loss(forward_scaled(idx), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        row = EpochLog(member, epoch + 1, total / n_train * std, val_mae(), sched.get_last_lr()[0])
        rows.append(row)
        if row.val_mae is not None:
            if row.val_mae < best_val - 1e-12:
                best_val, best_epoch = row.val_mae, epoch + 1
                best_state = _trainable_state(model, prefixes)
            stopped = epoch + 1 - best_epoch >= config.patience
        bar.set_postfix(
            loss=f"{row.train_mae:.3f}", val_mae="-" if row.val_mae is None else f"{row.val_mae:.3f}"
        )
        atomic_save(
            {
                "member": member,
                "epoch": epoch + 1,
                "trained": _trainable_state(model, prefixes),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "best_state": best_state,
                "best_val": best_val,
                "best_epoch": best_epoch,
                "stopped": stopped,
                "log": json.dumps([asdict(r) for r in rows]),
                "rng": torch.get_rng_state(),
            },
            ckpt_file,
        )
        if callback is not None:
            callback(row)
    bar.close()
    if len(val_idx):
        model.load_state_dict(best_state, strict=False)
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    summary = {
        "n_train": int(n_train),
        "n_validation": int(len(val_idx)),
        "epochs_run": len(rows),
        "best_epoch": best_epoch if len(val_idx) else len(rows),
        "best_val_mae": best_val if len(val_idx) else None,
        "stopped_early": len(rows) < config.epochs,
        "trainable_parameters": int(sum(p.numel() for p in params)),
        "target_mean": mean,
        "target_std": std,
    }
    atomic_save(
        {
            "trained": _trainable_state(model, prefixes),
            "summary": json.dumps(summary),
            "log": json.dumps([asdict(r) for r in rows]),
        },
        done_file,
    )
    return model, summary, rows


@torch.no_grad()
def _pooled_features(model: EmModel, graphs: list[BandGraph], batch_size: int = 32) -> torch.Tensor:
    """(n, width) pooled features the head sees, with the trunk in eval mode."""
    model.eval()
    chunks = [model.embed(*collate(graphs[i : i + batch_size])) for i in range(0, len(graphs), batch_size)]
    return torch.cat(chunks)


def _trainable_state(model: EmModel, prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Copies of the state-dict entries a strategy trains (buffers excluded)."""
    names = {n for n, _ in model.named_parameters() if n.startswith(prefixes)}
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k in names}
