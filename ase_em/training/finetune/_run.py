"""``finetune()``: load and check the data, lock the output, train every member, write the model."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ase_em._runtime.folders import folder_lock
from ase_em.errors import AseEmError
from ase_em.model.model import EmEnsemble, EmModel
from ase_em.training.data import LabelledHops, load_labelled
from ase_em.training.finetune._base import Base, load_base
from ase_em.training.finetune._config import (
    DEFAULT_LR,
    STRATEGIES,
    EpochLog,
    FinetuneConfig,
    check_config,
    default_strategy,
    member_plans,
    threads_problems,
)
from ase_em.training.finetune._member import finetune_member
from ase_em.training.finetune._outputs import write_outputs
from ase_em.training.finetune._workdir import clean_workdir, prepare_workdir

if TYPE_CHECKING:
    from ase_em.predictor import EmPredictor

logger = logging.getLogger(__name__)


def finetune(
    data: str | Path | LabelledHops,
    *,
    output: str | Path,
    base: str | Path | None = None,
    strategy: str | None = None,
    epochs: int = 50,
    batch_size: int = 16,
    lr: float | None = None,
    weight_decay: float = 1e-5,
    seed: int = 0,
    val_fraction: float = 0.2,
    folds: int | None = None,
    patience: int = 10,
    threads: int | None = None,
    workdir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    skip_invalid: bool = False,
    allow_implausible_barriers: bool = False,
    name: str | None = None,
    progress: bool | None = None,
    callback: Callable[[EpochLog], None] | None = None,
    command: str | None = None,
) -> EmPredictor:
    """Fine-tune a barrier model on labelled hops and write it as a model directory.

    Args:
        data: a CSV, em619 JSON or band5 extxyz/traj file (see
            :func:`ase_em.training.data.load_labelled`), or already loaded hops.
        output: model directory to write (model.pt, card.json, log.csv,
            predictions.csv, parity.png).
        base: model to start from: a shipped name or a directory (default: shipped model);
            either a barrier model or a pre-trained backbone (``ase-em pretrain`` output, or
            a shipped backbone name), see the module docstring.
        strategy: "head", "partial" or "full"; None picks by data size
            (:func:`default_strategy`).
        epochs: most epochs per member.
        batch_size: hops per step.
        lr: peak learning rate; None takes :data:`DEFAULT_LR` of the strategy.
        weight_decay: AdamW weight decay.
        seed: seed of split, shuffling and RNG.
        val_fraction: share of hops held out for validation and early stopping (0: none).
        folds: K-fold CV instead of one split (K members, out-of-fold metrics).
        patience: epochs without a better validation MAE before a member stops.
        threads: torch CPU threads (sets ``torch.set_num_threads`` for the process).
        workdir: checkpoints and graph cache (default ``output/.work``).
        resume: continue an interrupted run from the checkpoint in ``workdir``.
        overwrite: replace a model in ``output`` and discard an old checkpoint.
        skip_invalid: leave out rows whose structures are not a valid hop (listed on the
            card); rows with a bad id or barrier are always errors.
        allow_implausible_barriers: train on finite barriers below 0 or above
            :data:`ase_em.training.data.PLAUSIBLE_MAX_EM` eV (refused by default).
        name: model name on the card (default: the output directory's name).
        progress: show progress bars (None: only on a terminal).
        callback: called after every epoch (and its checkpoint) with its :class:`EpochLog`.
        command: the command line to record (the CLI passes its own).

    Returns:
        A predictor loaded from ``output``.

    Raises:
        AseEmError: bad data (:class:`~ase_em.errors.DataFileError`, every bad row listed),
            bad settings, an existing model without ``overwrite``, a checkpoint from an
            interrupted run without ``resume`` (nothing is written in those cases), a
            checkpoint whose data or structure files changed, an output or work folder that
            cannot be written, or one that another run is writing
            (:class:`~ase_em._runtime.folders.FolderLockedError`).
    """
    from ase_em.predictor import EmPredictor

    out = Path(output)
    _check_no_model(out, overwrite)
    if threads_problems(threads):  # before anything is read or written
        raise AseEmError(threads_problems(threads)[0])
    labelled = (
        data
        if isinstance(data, LabelledHops)
        else load_labelled(data, skip_invalid=skip_invalid, allow_implausible=allow_implausible_barriers)
    )
    for line in labelled.skipped:
        logger.warning("skipped: %s", line)
    for line in labelled.warnings:
        logger.warning("warning: %s", line)
    n = len(labelled.hops)
    if n == 0:
        raise AseEmError(f"{labelled.path}: no hops to fine-tune on")
    base_model = load_base(base)
    if base_model.model_config.spread_head:
        teacher = base_model.card.get("teacher", "its teacher")
        raise AseEmError(
            f"{base_model.path.name}: a distilled model (one network taught an ensemble's barrier and "
            f"spread) is not fine-tuned; fine-tune {teacher} and distil again (ase_em.training.distill)"
        )
    if out.resolve() == base_model.path.resolve():
        raise AseEmError(f"{out}: is the base model's directory; write the fine-tuned model elsewhere")
    chosen = strategy or default_strategy(n)
    if chosen not in STRATEGIES:
        raise AseEmError(f"unknown strategy {chosen!r}; choose from {', '.join(STRATEGIES)}")
    config = FinetuneConfig(
        strategy=chosen,
        epochs=epochs,
        batch_size=batch_size,
        lr=DEFAULT_LR[chosen] if lr is None else lr,
        weight_decay=weight_decay,
        seed=seed,
        val_fraction=0.0 if folds else val_fraction,
        folds=folds,
        patience=patience,
    )
    check_config(config, n, threads)
    plans = member_plans(n, base_model.n_members, config)
    work = Path(workdir) if workdir else out / ".work"
    settings = {
        "data_sha256": labelled.sha256,
        "structure_files": labelled.files,
        "names": labelled.names,
        "base_sha256": base_model.card.get("sha256"),
        "finetune": asdict(config),
    }
    with contextlib.ExitStack() as locks:
        locks.enter_context(folder_lock(out, role="output folder"))
        if not work.resolve().is_relative_to(out.resolve()):
            locks.enter_context(folder_lock(work, role="work folder"))
        _check_no_model(out, overwrite)  # again: a run that just finished holds no lock
        prepare_workdir(work, settings, resume=resume, overwrite=overwrite)
        if threads:
            torch.set_num_threads(threads)
        card = _train_and_write(
            out,
            work,
            labelled,
            base_model,
            config,
            plans,
            strategy_given=strategy is not None,
            name=name or out.resolve().name,
            command=command or _api_command(data, out, base, strategy, config, folds),
            progress=progress,
            callback=callback,
        )
        clean_workdir(work, default=workdir is None)
    logger.info("wrote %s (%s)", out, card["split"]["scheme"])
    return EmPredictor.from_pretrained(out)


def _check_no_model(out: Path, overwrite: bool) -> None:
    if not overwrite and ((out / "model.pt").exists() or (out / "card.json").exists()):
        raise AseEmError(f"{out}: already holds a model (use --overwrite to replace it)")


def _train_and_write(
    out: Path,
    work: Path,
    labelled: LabelledHops,
    base_model: Base,
    config: FinetuneConfig,
    plans: list[tuple[int, np.ndarray, np.ndarray]],
    *,
    strategy_given: bool,
    name: str,
    command: str,
    progress: bool | None,
    callback: Callable[[EpochLog], None] | None,
) -> dict[str, Any]:
    """Build (or reuse) the graphs, fine-tune every member, write the outputs; return the card."""
    from ase_em.training.ensemble import build_graphs

    graphs = build_graphs(labelled, base_model.graph_config, cache=work / "graphs.pt")
    targets = np.asarray(labelled.targets, dtype=float)
    members: list[EmModel] = []
    summaries: list[dict[str, Any]] = []
    log: list[EpochLog] = []
    for m, (base_index, train_idx, val_idx) in enumerate(plans):
        head_seed = config.seed * 1000 + m  # a backbone member's fresh head
        model, summary, rows = finetune_member(
            base_model.start_member(base_index, targets[train_idx], head_seed),
            graphs,
            targets,
            train_idx,
            val_idx,
            config,
            member=m,
            n_members=len(plans),
            work=work,
            progress=progress,
            callback=callback,
        )
        members.append(model)
        start = {"base_member": base_index} if base_model.ensemble is not None else {"head_seed": head_seed}
        summaries.append({**start, **summary})
        log.extend(rows)

    ensemble = EmEnsemble(base_model.model_config, n_members=len(members))
    for slot, member in zip(ensemble.members, members, strict=True):
        slot.load_state_dict(member.state_dict())
    ensemble.eval()
    return write_outputs(
        out,
        ensemble,
        base_model,
        labelled,
        graphs,
        targets,
        plans,
        config,
        strategy_given=strategy_given,
        summaries=summaries,
        log=log,
        name=name,
        command=command,
    )


def _api_command(
    data: Any, out: Path, base: Any, strategy: str | None, config: FinetuneConfig, folds: int | None
) -> str:
    """A reproducible description of an API call (the CLI passes its own command)."""
    src = data.path if isinstance(data, LabelledHops) else str(data)
    parts = [
        f"ase_em.finetune({src!r}, output={str(out)!r}, base={None if base is None else str(base)!r}",
        f"strategy={config.strategy!r}",
        f"epochs={config.epochs}",
        f"batch_size={config.batch_size}",
        f"lr={config.lr}",
        f"weight_decay={config.weight_decay}",
        f"seed={config.seed}",
    ]
    parts.append(f"folds={folds}" if folds else f"val_fraction={config.val_fraction}")
    parts.append(f"patience={config.patience})")
    return ", ".join(parts) + f"  # python {sys.version.split()[0]}"
