"""Fine-tune a trained barrier model on a user's own DFT barriers.

``finetune(data, output=DIR)`` reads a labelled file (CSV, em619 JSON or band5 extxyz/traj,
see :mod:`ase_em.data`), checks every row before anything is trained, and fine-tunes each
member of the base model's ensemble (so the result keeps an uncertainty). Hops become
graphs with exactly the code and the graph settings (from the base card) that prediction
uses. The result is a model directory like any other: model.pt and card.json (written by
:func:`ase_em.pretrained.save_model`), plus ``log.csv`` (one row per member and epoch),
``predictions.csv`` and ``parity.png``.

The start can also be a pre-trained backbone (``ase-em pretrain`` output, or a shipped
backbone name), which has no barrier head: the result then has one member (K with
``folds``), each with the backbone's weights, a freshly initialised head (seeded by
(seed, member)) and the target scaling of its own training hops; the graph settings are
the backbone's cutoff and max_neighbors with the shipped default model's crop radius (the
backbone saw uncropped bulk crystals, hops are cropped as the shipped model crops them).
The card then has no base-model metrics, and predictions.csv no base predictions.

Strategies (which parameters train; the others stay exactly as in the base model):

* ``head``: the output MLP only (8.4k of 158k parameters in the shipped model);
* ``partial``: the edge-gated graph convolutions (the last message-passing layers) and the
  head (50.6k); a model without such layers trains its last ALIGNN layer instead;
* ``full``: everything.

By default the strategy follows the number of labelled hops: ``head`` below
:data:`HEAD_MAX_HOPS` (50), ``partial`` below :data:`PARTIAL_MAX_HOPS` (300), else ``full``
(see docs/finetune.md for the reasoning). Each member of a barrier model keeps its base model's target scaling
(mean and spread of the barriers it was trained on): the head's output units stay the ones
the pretrained layers were fitted to, and a small data set gives a noisy mean and spread.

Interrupted runs (Ctrl-C, a kill) leave a checkpoint written after every epoch in the
work directory (``DIR/.work`` by default); ``resume=True`` continues from it and ends with
the weights an uninterrupted run would have given: each epoch's shuffling comes from a
generator seeded by (seed, member, epoch), and the checkpoint holds the trainable weights,
the optimiser and schedule state, the early-stopping state and the torch RNG state.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import logging
import shutil
import sys
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ase_em import __version__
from ase_em.config import GraphConfig, ModelConfig, from_dict
from ase_em.data import LabelledHops, load_labelled
from ase_em.errors import AseEmError, ModelLoadError
from ase_em.graph import BandGraph, collate
from ase_em.metrics import barrier_metrics
from ase_em.model import EmEnsemble, EmModel
from ase_em.pretrained import BACKBONE_KIND, is_backbone, load_model, read_card, resolve, save_model

if TYPE_CHECKING:
    from ase_em.predictor import EmPredictor

logger = logging.getLogger(__name__)

STRATEGIES = ("head", "partial", "full")
HEAD_MAX_HOPS = 50  # below this many labelled hops the default strategy is "head"
PARTIAL_MAX_HOPS = 300  # below this, "partial"; from here on, "full"
DEFAULT_LR = {"head": 1e-3, "partial": 5e-4, "full": 2e-4}  # peak learning rates
CHECKPOINT = "finetune.ckpt"
SETTINGS = "finetune-settings.json"


@dataclass(frozen=True)
class FinetuneConfig:
    """Settings of a fine-tuning run.

    Attributes:
        strategy: "head", "partial" or "full".
        epochs: most passes over the training hops per member.
        batch_size: hops per optimiser step.
        lr: peak learning rate (cosine decay to lr/100 over ``epochs``).
        weight_decay: AdamW weight decay on the trained parameters.
        seed: seed of the split, shuffling and RNG.
        val_fraction: share of the hops held out for validation and early stopping (0: no
            validation, every member trains ``epochs`` epochs); ignored when ``folds`` is set.
        folds: K of a K-fold CV (K members, member k fine-tuned from base member k mod M on
            all but fold k and early-stopped on fold k); None for one random split.
        patience: stop a member after this many epochs without a better validation MAE.
    """

    strategy: str
    epochs: int = 50
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-5
    seed: int = 0
    val_fraction: float = 0.2
    folds: int | None = None
    patience: int = 10


@dataclass(frozen=True)
class EpochLog:
    """One epoch of one member, as written to log.csv.

    Attributes:
        member: member index (0-based).
        epoch: epoch number (1-based).
        train_mae: mean absolute training error over the epoch's batches (eV).
        val_mae: validation MAE after the epoch (eV); None without validation.
        lr: learning rate at the end of the epoch.
    """

    member: int
    epoch: int
    train_mae: float
    val_mae: float | None
    lr: float


@dataclass
class Base:
    """What a fine-tune starts from: a barrier model or a pre-trained backbone.

    Attributes:
        path: its directory.
        card: its parsed card.json.
        model_config: network settings of the result.
        graph_config: graph settings of the result.
        record: the ``base_model`` entry of the result's card.
        ensemble: the barrier model (None for a backbone, which has no barrier head).
        backbone: the backbone's transferable weights (None for a barrier model).
    """

    path: Path
    card: dict[str, Any]
    model_config: ModelConfig
    graph_config: GraphConfig
    record: dict[str, Any]
    ensemble: EmEnsemble | None = None
    backbone: dict[str, torch.Tensor] | None = None

    @property
    def n_members(self) -> int:
        """Members to start from: the model's, or one for a backbone."""
        return 1 if self.ensemble is None else len(self.ensemble.members)

    def start_member(self, index: int, targets: np.ndarray, seed: int) -> EmModel:
        """Starting weights of one output member.

        Args:
            index: base member (ignored for a backbone).
            targets: (n_train,) barriers the member trains on (a backbone member's scaling).
            seed: seed of a backbone member's fresh head.

        Returns:
            A model with the base member's weights, or the backbone's with a seeded head.
        """
        if self.ensemble is not None:
            return self.ensemble.members[index]
        from ase_em.train import start_model

        return start_model(self.model_config, targets, seed=seed, init=self.backbone)


def load_base(base: str | Path | None = None) -> Base:
    """Load the start of a fine-tune: a barrier model or a pre-trained backbone.

    Args:
        base: a shipped name or a directory of either kind (None: the shipped default model).

    Returns:
        The loaded start.

    Raises:
        ModelLoadError: neither kind, or a model/backbone that fails its checks.
    """
    directory = resolve(base)
    card = read_card(directory)
    if not is_backbone(card, directory):
        if not (directory / "model.pt").is_file():
            raise ModelLoadError(
                f"{directory}: neither a barrier model (model.pt) nor a pre-trained backbone "
                "(backbone.pt, from `ase-em pretrain`)"
            )
        loaded = load_model(directory)
        name = card.get("name", directory.name)
        record = {"name": name, "path": str(directory), "sha256": card.get("sha256")}
        return Base(directory, card, loaded.ensemble.config, loaded.graph_config, record, loaded.ensemble)
    from ase_em.train import load_backbone

    crop_radius = read_card()["graph"].get("crop_radius")  # the shipped default model's
    try:
        model_config = from_dict(ModelConfig, card["model"])
        graph = card["graph"]
        graph_config = GraphConfig(float(graph["cutoff"]), int(graph["max_neighbors"]), crop_radius)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{directory}: backbone card lacks settings ({exc})") from None
    state, _ = load_backbone(directory, model_config)
    record = {
        "name": card.get("name", directory.name),
        "path": str(directory),
        "sha256": card.get("sha256"),
        "kind": BACKBONE_KIND,
        "pretraining": card.get("kind"),
        "properties": card.get("properties"),
    }
    return Base(directory, card, model_config, graph_config, record, backbone=state)


def default_strategy(n_hops: int) -> str:
    """The strategy used when none is given: by number of labelled hops.

    Args:
        n_hops: number of labelled hops in the data file.

    Returns:
        "head" below 50 hops, "partial" below 300, else "full".
    """
    if n_hops < HEAD_MAX_HOPS:
        return "head"
    if n_hops < PARTIAL_MAX_HOPS:
        return "partial"
    return "full"


def trainable_prefixes(model: EmModel, strategy: str) -> tuple[str, ...]:
    """State-dict prefixes of the parameters a strategy trains.

    Args:
        model: the model (its layer counts decide what "partial" means).
        strategy: "head", "partial" or "full".

    Returns:
        Prefixes; ``("",)`` means every parameter.
    """
    if strategy == "head":
        return ("head.",)
    if strategy == "partial":
        if len(model.gcn_layers):
            return ("gcn_layers.", "head.")
        return (f"alignn_layers.{len(model.alignn_layers) - 1}.", "head.")
    if strategy == "full":
        return ("",)
    raise AseEmError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")


def freeze(model: EmModel, strategy: str) -> list[torch.nn.Parameter]:
    """Make only the strategy's parameters trainable.

    Args:
        model: the model to change in place.
        strategy: "head", "partial" or "full".

    Returns:
        The trainable parameters, in state-dict order.
    """
    prefixes = trainable_prefixes(model, strategy)
    params = []
    for name, p in model.named_parameters():
        on = name.startswith(prefixes)
        p.requires_grad_(on)
        if on:
            params.append(p)
    return params


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
    name: str | None = None,
    progress: bool | None = None,
    callback: Callable[[EpochLog], None] | None = None,
    command: str | None = None,
) -> EmPredictor:
    """Fine-tune a barrier model on labelled hops and write it as a model directory.

    Args:
        data: a CSV, em619 JSON or band5 extxyz/traj file (see
            :func:`ase_em.data.load_labelled`), or already loaded hops.
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
        name: model name on the card (default: the output directory's name).
        progress: show progress bars (None: only on a terminal).
        callback: called after every epoch (and its checkpoint) with its :class:`EpochLog`.
        command: the command line to record (the CLI passes its own).

    Returns:
        A predictor loaded from ``output``.

    Raises:
        AseEmError: bad data (:class:`~ase_em.errors.DataFileError`, every bad row listed),
            bad settings, an existing model without ``overwrite``, or a checkpoint from an
            interrupted run without ``resume`` (nothing is written in those cases).
    """
    from ase_em.predictor import EmPredictor

    out = Path(output)
    if (out / "model.pt").exists() or (out / "card.json").exists():
        if not overwrite:
            raise AseEmError(f"{out}: already holds a model (use --overwrite to replace it)")
    labelled = data if isinstance(data, LabelledHops) else load_labelled(data, skip_invalid=skip_invalid)
    for line in labelled.skipped:
        logger.warning("skipped: %s", line)
    n = len(labelled.hops)
    if n == 0:
        raise AseEmError(f"{labelled.path}: no hops to fine-tune on")
    base_model = load_base(base)
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
    _check_config(config, n)
    plans = member_plans(n, base_model.n_members, config)
    work = Path(workdir) if workdir else out / ".work"
    settings = {
        "data_sha256": labelled.sha256,
        "names": labelled.names,
        "base_sha256": base_model.card.get("sha256"),
        "finetune": asdict(config),
    }
    _prepare_workdir(work, settings, resume=resume, overwrite=overwrite)
    if threads:
        torch.set_num_threads(threads)

    from ase_em.train import build_graphs

    graphs = build_graphs(labelled, base_model.graph_config, cache=work / "graphs.pt")
    targets = np.asarray(labelled.targets, dtype=float)
    members: list[EmModel] = []
    summaries: list[dict[str, Any]] = []
    log: list[EpochLog] = []
    for m, (base_index, train_idx, val_idx) in enumerate(plans):
        head_seed = config.seed * 1000 + m  # a backbone member's fresh head
        model, summary, rows = _finetune_member(
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
    card = _write_outputs(
        out,
        ensemble,
        base_model,
        labelled,
        graphs,
        targets,
        plans,
        config,
        strategy_given=strategy is not None,
        summaries=summaries,
        log=log,
        name=name or out.resolve().name,
        command=command or _api_command(data, out, base, strategy, config, folds),
    )
    _clean_workdir(work, default=workdir is None)
    logger.info("wrote %s (%s)", out, card["split"]["scheme"])
    return EmPredictor.from_pretrained(out)


def member_plans(n: int, n_base: int, config: FinetuneConfig) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Which base member each output member starts from, and its train/validation hops.

    Args:
        n: number of hops.
        n_base: members of the base ensemble (1 for a backbone).
        config: run settings (split or folds, seed).

    Returns:
        One (base member index, (n_train,) train indices, (n_val,) validation indices)
        per output member; with one random split every base member gets the same split.
    """
    from ase_em.train import fold_indices

    everything = np.arange(n)
    if config.folds:
        folds = fold_indices(n, config.folds, config.seed)
        return [(k % n_base, np.setdiff1d(everything, test), np.sort(test)) for k, test in enumerate(folds)]
    n_val = validation_size(n, config.val_fraction)
    perm = np.random.default_rng(config.seed).permutation(n)
    val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    return [(m, train, val) for m in range(n_base)]


def validation_size(n: int, val_fraction: float) -> int:
    """Hops held out: ``round(val_fraction * n)``, at least one when the fraction is > 0."""
    return 0 if val_fraction <= 0 else max(1, int(round(val_fraction * n)))


# ---------------------------------------------------------------------- one member


def _finetune_member(
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
    """Fine-tune one member (or load it if a finished run left it in ``work``)."""
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
        _atomic_save(
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
    _atomic_save(
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


# ---------------------------------------------------------------------- checks and files


def _check_config(config: FinetuneConfig, n: int) -> None:
    problems = []
    if config.epochs < 1:
        problems.append(f"--epochs must be >= 1 (got {config.epochs})")
    if config.batch_size < 1:
        problems.append(f"--batch-size must be >= 1 (got {config.batch_size})")
    if not config.lr > 0:
        problems.append(f"--lr must be > 0 (got {config.lr})")
    if config.patience < 1:
        problems.append(f"--patience must be >= 1 (got {config.patience})")
    if config.folds is not None:
        if not 2 <= config.folds <= n:
            problems.append(f"--folds must be between 2 and the number of hops ({n}), got {config.folds}")
    elif not 0 <= config.val_fraction < 1:
        problems.append(f"--val-fraction must be in [0, 1) (got {config.val_fraction})")
    elif n - validation_size(n, config.val_fraction) < 1:
        problems.append(
            f"{n} hop(s): too few to hold out {config.val_fraction:g} for validation "
            "(use --val-fraction 0)"
        )
    if problems:
        raise AseEmError("; ".join(problems))


def _prepare_workdir(work: Path, settings: dict[str, Any], *, resume: bool, overwrite: bool) -> None:
    """Apply the resume rules; create ``work`` and record the run's settings there."""
    settings_file = work / SETTINGS
    leftovers = [work / CHECKPOINT, *work.glob("member*.pt")] if work.is_dir() else []
    leftovers = [p for p in leftovers if p.is_file()]
    if leftovers and resume:
        try:
            old = json.loads(settings_file.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        new = json.loads(json.dumps(settings))
        if old != new:
            differ = sorted(k for k in new if not isinstance(old, dict) or old.get(k) != new[k])
            raise AseEmError(
                f"{work}: the checkpoint belongs to a different run (differs in: "
                f"{', '.join(differ) or 'settings'}); rerun with the same data and settings, or "
                "use --overwrite to start over"
            )
        logger.info("resuming from the checkpoint in %s", work)
        return
    if leftovers and not overwrite:
        raise AseEmError(
            f"{work}: an interrupted run left a checkpoint; use --resume to continue it or "
            "--overwrite to start over"
        )
    for p in leftovers:
        p.unlink()
    work.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(settings) + "\n")


def _clean_workdir(work: Path, *, default: bool) -> None:
    """Remove the checkpoints of a finished run (the default work dir entirely)."""
    if default:
        shutil.rmtree(work, ignore_errors=True)
        return
    for p in [work / CHECKPOINT, work / SETTINGS, *work.glob("member*.pt")]:
        p.unlink(missing_ok=True)


def _write_outputs(
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
            "n": n,
            "skipped": data.skipped,
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
        w.writerow(["id", "split", "target", "base_prediction", "prediction", "em_std"]
                   + (["out_of_fold"] if oof is not None else []))
        for i in range(n):
            split = "validation" if (val_mask[i] and oof is None) else "train"
            base_i = "" if base_pred is None else f"{base_pred[i]:.5f}"
            w.writerow([data.names[i], split, f"{targets[i]:.5f}", base_i, f"{pred[i]:.5f}",
                        "" if std is None else f"{std[i]:.5f}"]
                       + ([f"{oof[i]:.5f}"] if oof is not None else []))
    if oof is not None:
        _parity_plot(out / "parity.png", targets, oof, None, base_pred, "out-of-fold (K-fold CV)")
    elif val_mask.any():
        _parity_plot(out / "parity.png", targets[val_mask], pred[val_mask],
                     None if std is None else std[val_mask],
                     None if base_pred is None else base_pred[val_mask], "validation")
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
    from ase_em.train import predict_graphs

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
    ax.fill_between([lo, hi], [lo - 0.1, hi - 0.1], [lo + 0.1, hi + 0.1], color="0.9", zorder=0,
                    label="±0.1 eV")
    mae = float(np.abs(pred - target).mean())
    if base_pred is not None:  # a backbone base has no barrier predictions
        mae_base = float(np.abs(base_pred - target).mean())
        ax.scatter(target, base_pred, s=18, facecolors="none", edgecolors="0.55",
                   label=f"base model (MAE {mae_base:.3f} eV)")
    ax.errorbar(target, pred, yerr=std, fmt="o", ms=4, color="C0", ecolor="C0", elinewidth=0.8,
                label=f"fine-tuned (MAE {mae:.3f} eV)")
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


def _api_command(
    data: Any, out: Path, base: Any, strategy: str | None, config: FinetuneConfig, folds: int | None
) -> str:
    """A reproducible description of an API call (the CLI passes its own command)."""
    src = data.path if isinstance(data, LabelledHops) else str(data)
    parts = [f"ase_em.finetune({src!r}, output={str(out)!r}, base={None if base is None else str(base)!r}",
             f"strategy={config.strategy!r}", f"epochs={config.epochs}", f"batch_size={config.batch_size}",
             f"lr={config.lr}", f"weight_decay={config.weight_decay}", f"seed={config.seed}"]
    parts.append(f"folds={folds}" if folds else f"val_fraction={config.val_fraction}")
    parts.append(f"patience={config.patience})")
    return ", ".join(parts) + f"  # python {sys.version.split()[0]}"


def _atomic_save(obj: Any, path: Path) -> None:
    from ase_em.train import _atomic_save as save

    save(obj, path)


class _CallableModule(types.ModuleType):
    """``ase_em.finetune`` is both this module and the function: calling it calls the function.

    Importing a submodule sets it as an attribute of the package, which would hide the
    lazily exported function ``ase_em.finetune``; making the module callable keeps
    ``ase_em.finetune(data, output=...)`` working whichever was imported first.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> EmPredictor:
        """Call :func:`finetune`."""
        return finetune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
