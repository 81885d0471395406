"""Training: K-fold cross-validated ensembles that checkpoint, resume and write a card.

Training builds its inputs with the same hop -> band -> graph code as prediction. Each of
the K fold models is trained on K-1 folds and predicts the held-out fold, which gives
honest out-of-fold (CV) figures; the K fold models then ship together as an ensemble, whose
spread is the uncertainty.
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ase_em._version import __version__
from ase_em.config import GraphConfig, ModelConfig, TrainConfig
from ase_em.model.band import build_band
from ase_em.model.graph import BandGraph, build_graph, collate
from ase_em.model.model import EmEnsemble, EmModel
from ase_em.model.weights import atomic_save, save_model
from ase_em.training.data import LabelledHops
from ase_em.training.metrics import barrier_metrics

logger = logging.getLogger(__name__)
CV_PREDICTIONS = "cv_predictions.csv"  # target,prediction per hop, beside a trained ensemble


def build_graphs(
    data: LabelledHops, graph_config: GraphConfig, *, cache: Path | None = None
) -> list[BandGraph]:
    """Graphs of all hops, read from / written to a cache file when given.

    Args:
        data: the labelled hops.
        graph_config: graph settings.
        cache: optional cache file; reused only if the checksums of the data file and of
            every structure file it names (``data.content_sha256``), the hop names and the
            graph settings match.

    Returns:
        One graph per hop.
    """
    key = {"sha256": data.content_sha256, "graph": asdict(graph_config), "names": data.names}
    if cache is not None and cache.is_file():
        blob = torch.load(cache, weights_only=True)
        if blob.get("key") == repr(key):
            return [BandGraph(**g) for g in blob["graphs"]]
    from tqdm import tqdm

    graphs = [
        build_graph(build_band(h), graph_config)
        for h in tqdm(data.hops, desc="graphs", unit="hop", disable=None)
    ]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"key": repr(key), "graphs": [vars(g) for g in graphs]}, cache)
    return graphs


def compound_groups(names: list[str]) -> np.ndarray:
    """Group label per hop: the name without its ``_N`` path suffix (other paths, one host)."""
    return np.asarray([re.sub(r"_\d+$", "", n) for n in names])


def fold_indices(n: int, folds: int, seed: int, groups: np.ndarray | None = None) -> list[np.ndarray]:
    """Held-out indices of each fold (random, or grouped so a group stays in one fold)."""
    from sklearn.model_selection import GroupKFold, KFold

    idx = np.arange(n)
    if groups is None:
        splitter = KFold(folds, shuffle=True, random_state=seed)
        return [test for _, test in splitter.split(idx)]
    splitter = GroupKFold(folds, shuffle=True, random_state=seed)
    return [test for _, test in splitter.split(idx, groups=groups)]


def start_model(
    model_config: ModelConfig,
    targets: np.ndarray,
    *,
    seed: int,
    init: dict[str, torch.Tensor] | None = None,
) -> EmModel:
    """A model before its first step: seeded initialisation, backbone weights, target scaling.

    Args:
        model_config: network settings.
        targets: (n,) barriers (eV) it will train on; their mean and spread become its scaling.
        seed: seed of the initialisation (``torch.manual_seed``, so the global RNG is reset).
        init: weights to start from (a pre-trained backbone); head and scaling are excluded,
            so the head keeps its seeded random initialisation.

    Returns:
        The model (train mode).
    """
    torch.manual_seed(seed)
    model = EmModel(model_config)
    if init is not None:
        model.load_state_dict(backbone_only(init), strict=False)
    model.set_target_scaling(torch.as_tensor(targets, dtype=torch.float32))
    return model


def train_model(
    graphs: list[BandGraph],
    targets: np.ndarray,
    model_config: ModelConfig,
    train_config: TrainConfig,
    *,
    seed: int,
    checkpoint: Path | None = None,
    desc: str = "train",
    init: dict[str, torch.Tensor] | None = None,
) -> EmModel:
    """Train one EmModel with L1 loss on scaled targets; checkpoint every epoch.

    Args:
        graphs: training graphs.
        targets: (n,) barriers (eV).
        model_config: network settings.
        train_config: optimisation settings.
        seed: seed of initialisation and shuffling.
        checkpoint: file to save after each epoch and resume from if present.
        desc: label of the progress bar.
        init: weights to start from (a pre-trained backbone; head and scaling excluded).

    Returns:
        The trained model (eval mode).
    """
    from tqdm import tqdm

    model = start_model(model_config, targets, seed=seed, init=init)
    y = torch.as_tensor(targets, dtype=torch.float32)
    y_scaled = (y - model.target_mean) / model.target_std
    n = len(graphs)
    steps = max(1, -(-n // train_config.batch_size))
    opt = torch.optim.AdamW(model.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=train_config.lr, total_steps=train_config.epochs * steps
    )
    start = 0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start = int(state["epoch"])
        logger.info("%s: resumed from %s at epoch %d", desc, checkpoint, start)
    bar = tqdm(range(start, train_config.epochs), desc=desc, unit="epoch", disable=None)
    for epoch in bar:
        model.train()
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        total = 0.0
        for b in range(steps):
            idx = perm[b * train_config.batch_size : (b + 1) * train_config.batch_size]
            g, lg = collate([graphs[i] for i in idx])
            loss = torch.nn.functional.l1_loss(model.forward_scaled(g, lg), y_scaled[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        mae = total / n * float(model.target_std)
        bar.set_postfix(train_mae_eV=f"{mae:.3f}")
        if checkpoint is not None:
            atomic_save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "epoch": epoch + 1,
                },
                checkpoint,
            )
    model.eval()
    return model


@torch.no_grad()
def predict_graphs(model: torch.nn.Module, graphs: list[BandGraph], batch_size: int = 32) -> np.ndarray:
    """Barriers (eV) of graphs with a single EmModel; (n,)."""
    model.eval()
    out = [model(*collate(graphs[i : i + batch_size])) for i in range(0, len(graphs), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros(0)


def cross_validate(
    graphs: list[BandGraph],
    targets: np.ndarray,
    model_config: ModelConfig,
    train_config: TrainConfig,
    *,
    groups: np.ndarray | None = None,
    workdir: Path | None = None,
    init: dict[str, torch.Tensor] | None = None,
) -> tuple[np.ndarray, list[EmModel]]:
    """K-fold CV: out-of-fold predictions and the K fold models.

    Fold models and checkpoints are kept in ``workdir``, so an interrupted run resumes at
    the epoch where it stopped.

    Returns:
        (n,) out-of-fold predictions (eV) and the list of fold models.
    """
    folds = fold_indices(len(graphs), train_config.folds, train_config.seed, groups)
    oof = np.full(len(graphs), np.nan)
    members: list[EmModel] = []
    for k, test in enumerate(folds):
        train = np.setdiff1d(np.arange(len(graphs)), test)
        done = workdir / f"fold{k}.pt" if workdir else None
        if done is not None and done.is_file():
            model = EmModel(model_config)
            model.load_state_dict(torch.load(done, weights_only=True))
            model.eval()
        else:
            model = train_model(
                [graphs[i] for i in train],
                targets[train],
                model_config,
                train_config,
                seed=train_config.seed + k,
                checkpoint=workdir / f"fold{k}.ckpt" if workdir else None,
                desc=f"fold {k + 1}/{len(folds)}",
                init=init,
            )
            if done is not None:
                atomic_save(model.state_dict(), done)
        oof[test] = predict_graphs(model, [graphs[i] for i in test])
        logger.info("fold %d: MAE %.3f eV", k, np.abs(oof[test] - targets[test]).mean())
        members.append(model)
    return oof, members


def train_ensemble(
    data: LabelledHops,
    output: Path,
    *,
    graph_config: GraphConfig,
    model_config: ModelConfig,
    train_config: TrainConfig,
    name: str,
    grouped: bool = False,
    workdir: Path | None = None,
    command: str | None = None,
    init_from: Path | None = None,
) -> dict[str, Any]:
    """Cross-validate, then write the fold models as one ensemble with its card.

    Args:
        data: labelled hops.
        output: model directory to write.
        graph_config: graph settings.
        model_config: network settings.
        train_config: optimisation and CV settings.
        name: model name on the card.
        grouped: folds grouped by host compound instead of random.
        workdir: checkpoint directory (default: ``output/.work``).
        command: the command line to record (default: this process's argv).
        init_from: a pre-trained backbone directory (``ase-em pretrain``); every fold model
            starts from its weights (all but the head and the target scaling).

    Returns:
        The card.

    Raises:
        FolderLockedError: another run is writing ``output`` (or ``workdir``).
        AseEmError: ``output`` or ``workdir`` cannot be created or written.
    """
    import contextlib

    from ase_em._runtime.folders import folder_lock

    workdir = workdir or output / ".work"
    with contextlib.ExitStack() as locks:
        locks.enter_context(folder_lock(output, role="output folder"))
        if not workdir.resolve().is_relative_to(Path(output).resolve()):
            locks.enter_context(folder_lock(workdir, role="work folder"))
        return _train_ensemble(
            data,
            output,
            graph_config=graph_config,
            model_config=model_config,
            train_config=train_config,
            name=name,
            grouped=grouped,
            workdir=workdir,
            command=command,
            init_from=init_from,
        )


def _train_ensemble(
    data: LabelledHops,
    output: Path,
    *,
    graph_config: GraphConfig,
    model_config: ModelConfig,
    train_config: TrainConfig,
    name: str,
    grouped: bool,
    workdir: Path,
    command: str | None,
    init_from: Path | None,
) -> dict[str, Any]:
    """:func:`train_ensemble` once its folders are locked."""
    workdir.mkdir(parents=True, exist_ok=True)
    graphs = build_graphs(data, graph_config, cache=workdir / "graphs.pt")
    targets = np.asarray(data.targets, float)
    groups = compound_groups(data.names) if grouped else None
    init, base_model = None, None
    if init_from is not None:
        init, base_model = load_backbone(init_from, model_config)
    oof, members = cross_validate(
        graphs, targets, model_config, train_config, groups=groups, workdir=workdir, init=init
    )
    ensemble = EmEnsemble(model_config, n_members=len(members))
    for slot, member in zip(ensemble.members, members):
        slot.load_state_dict(member.state_dict())
    folds = "grouped by compound" if grouped else "random"
    scheme = f"{train_config.folds}-fold CV ({folds}), seed {train_config.seed}"
    card = {
        "name": name,
        "version": __version__,
        "description": "ALIGNN on the band5 hop graph; ensemble of the K cross-validation fold models",
        "base_model": base_model,
        "data": {
            "file": Path(data.path).name,
            "sha256": data.sha256,
            "n": len(targets),
            "skipped": data.skipped,
            "warnings": data.warnings,
        },
        "split": scheme,
        "train": asdict(train_config),
        "metrics": {"cv_out_of_fold": barrier_metrics(targets, oof), "scheme": scheme},
        "command": command or "ase-em " + " ".join(sys.argv[1:]),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "license": "MIT (weights); training data em619, MIT",
        "torch": torch.__version__,
    }
    save_model(ensemble, graph_config, output, card)
    np.savetxt(
        output / CV_PREDICTIONS,
        np.column_stack([targets, oof]),
        delimiter=",",
        header="target,prediction",
        comments="",
        fmt="%.5f",
    )
    return card


def read_cv_predictions(
    directory: str | Path, targets: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The out-of-fold predictions that :func:`train_ensemble` wrote beside a model.

    Args:
        directory: the model (or CV run) directory.
        targets: when given, the file's targets must equal them (same hops, same order).

    Returns:
        (n,) targets and (n,) out-of-fold predictions, eV, in data order.

    Raises:
        ValueError: the file holds other hops than ``targets``.
    """
    path = Path(directory) / CV_PREDICTIONS
    cv = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    if targets is not None and (len(cv) != len(targets) or not np.allclose(cv[:, 0], targets, atol=1e-4)):
        raise ValueError(f"{path}: out-of-fold predictions of other hops than these {len(targets)}")
    return cv[:, 0], cv[:, 1]


def backbone_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights of a state dict that transfer: all but the head and the target scaling."""
    return {k: v for k, v in state.items() if not k.startswith("head.") and not k.startswith("target_")}


def load_backbone(
    directory: str | Path, model_config: ModelConfig
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a pre-trained backbone (``ase-em pretrain`` output) and check it fits the model.

    Args:
        directory: folder with backbone.pt and card.json, or the name of a shipped backbone
            (a folder under ase_em/weights/).
        model_config: the barrier model's settings, which must equal the backbone's.

    Returns:
        (the transferable weights, a base-model record for the card).

    Raises:
        ModelLoadError: missing files, checksum mismatch or another network size.
    """
    from ase_em.errors import ModelLoadError
    from ase_em.model.weights import read_card, resolve, sha256

    directory = resolve(directory)
    weights, card_path = directory / "backbone.pt", directory / "card.json"
    if not weights.is_file() or not card_path.is_file():
        raise ModelLoadError(f"{directory}: not a pre-trained backbone (needs backbone.pt and card.json)")
    card = read_card(directory)
    if sha256(weights) != card.get("sha256"):
        raise ModelLoadError(f"{weights}: checksum does not match its card")
    # the readout has no weights of its own (the head starts fresh), so it may differ
    if {**card.get("model", {}), "readout": None} != {**asdict(model_config), "readout": None}:
        raise ModelLoadError(
            f"{directory}: backbone settings {card.get('model')} differ from the model's "
            f"{asdict(model_config)}"
        )
    state = torch.load(weights, map_location="cpu", weights_only=True)
    return backbone_only(state), {
        "name": card.get("name"),
        "sha256": card.get("sha256"),
        "kind": card.get("kind"),
    }
