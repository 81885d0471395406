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
from ase_em.errors import AseEmError
from ase_em.model.band import build_band
from ase_em.model.graph import BandGraph, build_graph, collate
from ase_em.model.model import EmEnsemble, EmModel
from ase_em.model.weights import atomic_save, save_model
from ase_em.training.data import LabelledHops
from ase_em.training.metrics import barrier_metrics

logger = logging.getLogger(__name__)
CV_PREDICTIONS = "cv_predictions.csv"  # sys_name,target,prediction per hop, beside a trained ensemble


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


def density_weights(
    targets: np.ndarray, power: float, *, bin_width: float = 0.25, max_weight: float = 10.0
) -> np.ndarray:
    """Per-hop loss weights from the inverse density of the barrier (binned).

    A hop whose barrier lies in a bin of ``count`` training hops gets
    ``min(count ** -power * max_count ** power, max_weight)``, then all weights are divided
    by their mean (mean 1, so the learning rate keeps its meaning). Binned counts with a
    power (0.5: inverse square root) as in Yang et al., "Delving into Deep Imbalanced
    Regression" (ICML 2021); a histogram is all it needs (``np.histogram``'s bin edges).

    Args:
        targets: (n,) barriers (eV).
        power: exponent of the inverse density; 0 gives all ones.
        bin_width: bin width (eV); bins start at the lowest barrier.
        max_weight: cap of a weight relative to the most populated bin, before
            normalisation.

    Returns:
        (n,) weights, mean 1.

    Raises:
        ValueError: a negative ``power``, a ``bin_width`` <= 0 or a ``max_weight`` < 1.
    """
    y = np.asarray(targets, float)
    if power < 0 or not bin_width > 0 or max_weight < 1:
        raise ValueError(
            f"density weights need power >= 0, bin_width > 0 and max_weight >= 1; got power {power}, "
            f"bin_width {bin_width}, max_weight {max_weight}"
        )
    if power == 0 or len(y) == 0:
        return np.ones(len(y))
    edges = np.arange(y.min(), y.max() + bin_width, bin_width)
    if len(edges) < 2:
        return np.ones(len(y))
    counts, edges = np.histogram(y, bins=edges)
    which = np.clip(np.searchsorted(edges, y, side="right") - 1, 0, len(counts) - 1)
    w = np.minimum((counts.max() / counts[which]) ** power, max_weight)
    return w / w.mean()


def structure_batches(structures: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches that keep each structure's hops together, structures in random order.

    Structures are shuffled, then added whole to the current batch while it has room; a
    structure that does not fit starts the next batch (one with more hops than
    ``batch_size`` is a batch of its own).

    Args:
        structures: (n,) structure label per hop (:func:`compound_groups`).
        batch_size: most hops per batch (unless one structure has more).
        rng: the random generator of this epoch.

    Returns:
        Index arrays, together a permutation of ``range(n)``.
    """
    labels, inverse = np.unique(np.asarray(structures), return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(labels))]
    batches: list[np.ndarray] = []
    current: list[int] = []
    for k in rng.permutation(len(labels)):
        idx = rng.permutation(members[k])
        if current and len(current) + len(idx) > batch_size:
            batches.append(np.asarray(current))
            current = []
        current.extend(idx.tolist())
    if current:
        batches.append(np.asarray(current))
    return batches


def ranking_loss(
    pred_scaled: torch.Tensor, targets: torch.Tensor, structures: np.ndarray, *, tie: float = 0.02
) -> torch.Tensor | None:
    """Pairwise ranking (RankNet) loss between the hops of one structure in a batch.

    Each pair (i, j) of the same structure whose DFT barriers differ by at least ``tie``
    adds ``softplus(-sign(y_i - y_j) * (p_i - p_j))``: near 0 when the prediction orders
    the pair right by a clear margin, log 2 for a predicted tie, and growing linearly with
    the predicted gap when the order is wrong. Pairs of different structures are ignored.

    Args:
        pred_scaled: (b,) predictions on the scaled barrier (``EmModel.forward_scaled``).
        targets: (b,) DFT barriers (eV, or scaled: only signs and the tie use them).
        structures: (b,) structure label per hop.
        tie: smallest barrier difference that is ranked (units of ``targets``).

    Returns:
        The mean over ranked pairs (a 0-dim tensor), or None when the batch has none.
    """
    labels = np.asarray(structures)
    same = torch.as_tensor(labels[:, None] == labels[None, :])
    dy = targets[:, None] - targets[None, :]
    mask = same & (dy > tie)  # each unordered pair once, i the higher barrier
    if not bool(mask.any()):
        return None
    dp = pred_scaled[:, None] - pred_scaled[None, :]
    return torch.nn.functional.softplus(-dp[mask]).mean()


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
    structures: np.ndarray | None = None,
) -> EmModel:
    """Train one EmModel with L1 loss on scaled targets; checkpoint every epoch.

    With ``train_config.rank_weight`` > 0 the pairwise :func:`ranking_loss` is added
    (batches from :func:`structure_batches`); with ``train_config.density_weight_power`` > 0
    the L1 loss of each hop is weighted by :func:`density_weights`.

    Args:
        graphs: training graphs.
        targets: (n,) barriers (eV).
        model_config: network settings.
        train_config: optimisation settings.
        seed: seed of initialisation and shuffling.
        checkpoint: file to save after each epoch and resume from if present.
        desc: label of the progress bar.
        init: weights to start from (a pre-trained backbone; head and scaling excluded).
        structures: (n,) structure label per hop (:func:`compound_groups` of the names);
            needed when ``train_config.rank_weight`` > 0.

    Returns:
        The trained model (eval mode).

    Raises:
        ValueError: ``rank_weight`` > 0 without ``structures`` (or of another length).
    """
    from tqdm import tqdm

    tc = train_config
    ranked = tc.rank_weight > 0
    if ranked and (structures is None or len(structures) != len(graphs)):
        raise ValueError(
            f"rank_weight {tc.rank_weight} needs a structure label for each of the {len(graphs)} hops"
        )
    model = start_model(model_config, targets, seed=seed, init=init)
    y = torch.as_tensor(targets, dtype=torch.float32)
    y_scaled = (y - model.target_mean) / model.target_std
    weights = None
    if tc.density_weight_power > 0:
        weights = torch.as_tensor(
            density_weights(
                targets, tc.density_weight_power, bin_width=tc.density_bin, max_weight=tc.density_max_weight
            ),
            dtype=torch.float32,
        )
    n = len(graphs)
    if ranked:  # the whole plan up front: the schedule needs the number of steps
        plan = [
            structure_batches(structures, tc.batch_size, np.random.default_rng([seed, epoch]))
            for epoch in range(tc.epochs)
        ]
        total_steps = sum(len(p) for p in plan)
    else:
        steps = max(1, -(-n // tc.batch_size))
        total_steps = tc.epochs * steps
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tc.lr, total_steps=max(1, total_steps))
    start = 0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start = int(state["epoch"])
        logger.info("%s: resumed from %s at epoch %d", desc, checkpoint, start)
    bar = tqdm(range(start, tc.epochs), desc=desc, unit="epoch", disable=None)
    for epoch in bar:
        model.train()
        if ranked:
            batches = plan[epoch]
        else:
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
            batches = [perm[b * tc.batch_size : (b + 1) * tc.batch_size] for b in range(steps)]
        total = 0.0
        for idx in batches:
            idx = torch.as_tensor(idx, dtype=torch.long)
            g, lg = collate([graphs[i] for i in idx])
            pred = model.forward_scaled(g, lg)
            err = (pred - y_scaled[idx]).abs()
            loss = err.mean() if weights is None else (err * weights[idx]).mean()
            total += float(err.detach().sum())
            if ranked:
                rank = ranking_loss(pred, y[idx], structures[idx.numpy()], tie=tc.rank_tie)
                if rank is not None:
                    loss = loss + tc.rank_weight * rank
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
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
    structures: np.ndarray | None = None,
) -> tuple[np.ndarray, list[EmModel]]:
    """K-fold CV: out-of-fold predictions and the K fold models.

    Fold models and checkpoints are kept in ``workdir``, so an interrupted run resumes at
    the epoch where it stopped. ``groups`` (one label per hop) keeps a group in one fold;
    ``structures`` (one label per hop) are the structures the ranking loss pairs within
    (needed when ``train_config.rank_weight`` > 0).

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
                structures=None if structures is None else np.asarray(structures)[train],
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
    from ase_em._runtime.memory import keep_freed_memory

    keep_freed_memory()  # forward and backward reuse freed blocks (ase_em._runtime.memory)
    workdir = workdir or output / ".work"
    with contextlib.ExitStack() as locks:
        locks.enter_context(folder_lock(output, role="output folder"))
        if not workdir.resolve().is_relative_to(Path(output).resolve()):
            locks.enter_context(folder_lock(workdir, role="work folder"))
        if train_config.folds > len(data.hops):
            raise AseEmError(
                f"{data.path or 'the data'}: {len(data.hops)} usable record(s) cannot make "
                f"{train_config.folds} folds (give at most that many folds)"
            )
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
        graphs,
        targets,
        model_config,
        train_config,
        groups=groups,
        workdir=workdir,
        init=init,
        structures=compound_groups(data.names),
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
    write_cv_predictions(output / CV_PREDICTIONS, data.names, targets, oof)
    return card


def write_cv_predictions(path: Path, names: list[str], targets: np.ndarray, predictions: np.ndarray) -> None:
    """Write out-of-fold predictions as CSV ``sys_name,target,prediction`` (eV), one row per hop.

    Raises:
        ValueError: names, targets and predictions of different lengths.
    """
    import csv

    if not len(names) == len(targets) == len(predictions):
        raise ValueError(
            f"{path}: {len(names)} names, {len(targets)} targets and {len(predictions)} predictions"
        )
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sys_name", "target", "prediction"])
        for name, t, p in zip(names, targets, predictions):
            writer.writerow([name, f"{t:.5f}", f"{p:.5f}"])
    tmp.replace(path)


def read_cv_predictions(
    directory: str | Path, targets: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The out-of-fold predictions that :func:`train_ensemble` wrote beside a model.

    Args:
        directory: the model (or CV run) directory.
        targets: when given, the file's targets must equal them (same hops, same order).

    The file is ``sys_name,target,prediction`` (older runs: ``target,prediction``);
    ``directory`` may also be the CSV file itself (e.g. ``cv_predictions_grouped.csv``).

    Returns:
        (n,) targets and (n,) out-of-fold predictions, eV, in data order.

    Raises:
        ValueError: the file holds other hops than ``targets``, or lacks the columns.
    """
    import csv

    path = Path(directory)
    if path.is_dir():
        path = path / CV_PREDICTIONS
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not {"target", "prediction"} <= set(rows[0]):
        raise ValueError(f"{path}: needs columns target,prediction; has {sorted(rows[0])}")
    cv = np.asarray([[float(r["target"]), float(r["prediction"])] for r in rows]).reshape(-1, 2)
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
    # the readout and the head's outputs belong to the head, which starts fresh, so they may
    # differ; a setting the backbone's card does not name takes its default
    head_only = {"readout": None, "spread_head": None}
    theirs = {**asdict(ModelConfig()), **card.get("model", {}), **head_only}
    if theirs != {**asdict(model_config), **head_only}:
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
