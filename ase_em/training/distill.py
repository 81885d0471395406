"""Distillation: one network taught the mean barrier and the member spread of an ensemble.

An ensemble of K members costs K forward passes a hop. A student of the same size, started
from one member and trained on the ensemble's answers for many unlabelled hops (the teacher
answers any hop, so the data is not limited to DFT labels), costs one pass and answers both
numbers: its head has a second output for the members' spread (``ModelConfig.spread_head``),
so the calibrated error bar (:mod:`ase_em.model.uncertainty`) keeps its form.

The loss is L1 on both outputs in the teacher's scaled units (its target mean and spread):
``|em - em_teacher| + spread_weight * |spread - spread_teacher|``, over one optimiser run
(AdamW, one-cycle schedule), checkpointed after each epoch.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ase_em.model.graph import BandGraph, collate
from ase_em.model.model import EmEnsemble
from ase_em.model.weights import atomic_save

logger = logging.getLogger(__name__)


def student_from_member(teacher: EmEnsemble, member: int = 0, spread: float = 0.07) -> EmEnsemble:
    """A one-network model with a spread head, started from one member of ``teacher``.

    Args:
        teacher: the ensemble to distil.
        member: the member whose weights start the student.
        spread: the spread (eV) the new output starts at, for every hop (the teacher's
            typical member spread).

    Returns:
        The student (train mode), the teacher's target scaling in its buffers.
    """
    config = replace(teacher.config, spread_head=True)
    student = EmEnsemble(config, n_members=1)
    state = teacher.members[member].state_dict()
    mine = student.members[0].state_dict()
    for key, value in state.items():
        if mine[key].shape == value.shape:
            mine[key] = value.clone()
    w, b = "head.1.weight", "head.1.bias"
    mine[w] = torch.zeros_like(mine[w])
    mine[w][0] = state[w][0]
    scaled = spread / float(state["target_std"])
    mine[b] = torch.tensor([float(state[b][0]), math.log(math.expm1(scaled))])  # softplus^-1
    student.members[0].load_state_dict(mine)
    return student


def distil(
    student: EmEnsemble,
    graphs: list[BandGraph],
    em: np.ndarray,
    spread: np.ndarray,
    *,
    epochs: int = 12,
    lr: float = 5e-4,
    batch_size: int = 16,
    spread_weight: float = 1.0,
    seed: int = 0,
    checkpoint: Path | None = None,
    validation: tuple[list[BandGraph], np.ndarray, np.ndarray] | None = None,
) -> list[dict[str, float]]:
    """Train ``student`` on the teacher's answers ``em`` and ``spread`` (eV) for ``graphs``.

    Args:
        student: from :func:`student_from_member`; trained in place.
        graphs: (n,) band graphs.
        em: (n,) teacher mean barriers (eV).
        spread: (n,) teacher member spreads (eV).
        epochs: passes over the hops.
        lr: peak learning rate of AdamW's one-cycle schedule.
        batch_size: hops per step.
        spread_weight: weight of the spread's L1 term.
        seed: seed of the shuffling.
        checkpoint: saved after every epoch and resumed from if present.
        validation: (graphs, em, spread) scored after every epoch (not trained on).

    Returns:
        One dict per epoch run: ``epoch``, ``train_em_mae``, and with validation
        ``val_em_mae`` and ``val_spread_mae`` (eV).

    Raises:
        ValueError: arrays of another length than ``graphs``, or a student without a spread head.
    """
    from tqdm import tqdm

    n = len(graphs)
    if len(em) != n or len(spread) != n:
        raise ValueError(f"{n} graphs but {len(em)} barriers and {len(spread)} spreads")
    if len(student.members) != 1 or not student.config.spread_head:
        raise ValueError("the student must be one network with a spread head (student_from_member)")
    model = student.members[0]
    scale, shift = float(model.target_std), float(model.target_mean)
    y = torch.as_tensor((np.asarray(em) - shift) / scale, dtype=torch.float32)
    s = torch.as_tensor(np.asarray(spread) / scale, dtype=torch.float32)
    steps = max(1, -(-n // batch_size))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps)
    start, history = 0, []
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start, history = int(state["epoch"]), list(state["history"])
        logger.info("distil: resumed from %s at epoch %d", checkpoint, start)
    for epoch in range(start, epochs):
        model.train()
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        total = 0.0
        for b in tqdm(range(steps), desc=f"distil epoch {epoch + 1}/{epochs}", unit="batch", disable=None):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            out = model.forward_scaled(*collate([graphs[i] for i in idx]))
            err = (out[:, 0] - y[idx]).abs()
            spread_err = (torch.nn.functional.softplus(out[:, 1]) - s[idx]).abs()
            loss = err.mean() + spread_weight * spread_err.mean()
            total += float(err.detach().sum())
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        row = {"epoch": epoch + 1, "train_em_mae": total / n * scale}
        if validation is not None:
            v_em, v_spread = predict_student(student, validation[0])
            row["val_em_mae"] = float(np.mean(np.abs(v_em - validation[1])))
            row["val_spread_mae"] = float(np.mean(np.abs(v_spread - validation[2])))
        history.append(row)
        logger.info("distil: %s", row)
        if checkpoint is not None:
            atomic_save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                         "epoch": epoch + 1, "history": history}, checkpoint)
    student.eval()
    return history


@torch.no_grad()
def predict_student(student: EmEnsemble, graphs: list[BandGraph],
                    batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Barriers and spreads (eV) of ``graphs`` with a distilled student; two (n,) arrays."""
    student.eval()
    em, spread = [], []
    for i in range(0, len(graphs), batch_size):
        e, s = student(*collate(graphs[i : i + batch_size]))
        em.append(e.numpy())
        spread.append(s.numpy())
    return (np.concatenate(em), np.concatenate(spread)) if em else (np.zeros(0), np.zeros(0))
