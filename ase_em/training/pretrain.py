"""Multi-property pre-training (MPT) of the ALIGNN backbone on bulk crystals.

One backbone, one head per property; each structure carries the label of one property and
the others are masked out of the loss (as the reference did). Targets are standardised per
property. The backbone (everything but the heads) then initialises barrier models:
``ase-em train --init-from DIR``.

Data: the ``mpt`` folder of gzipped JSON lists ``{"id", "atoms", "target"}`` (physical
units: bg, gv, ebg) and ``scaled_only/{fe,ph,pz,dc}.minmax.json.gz`` (``target_minmax``).
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ase_em._version import __version__
from ase_em.config import GraphConfig, ModelConfig
from ase_em.errors import StructureFileError
from ase_em.hops.hop import jarvis_dict_to_atoms
from ase_em.model.graph import BandGraph, build_graph, collate
from ase_em.model.model import EmModel, readout_width
from ase_em.model.weights import atomic_save

logger = logging.getLogger(__name__)

PROPERTY_FILES = {
    "bg": ("bg.json.gz", "target"),
    "gv": ("gv.json.gz", "target"),
    "ebg": ("ebg.json.gz", "target"),
    "fe": ("scaled_only/fe.minmax.json.gz", "target_minmax"),
    "ph": ("scaled_only/ph.minmax.json.gz", "target_minmax"),
    "pz": ("scaled_only/pz.minmax.json.gz", "target_minmax"),
    "dc": ("scaled_only/dc.minmax.json.gz", "target_minmax"),
}


class MultiPropertyModel(nn.Module):
    """ALIGNN backbone (an EmModel without its head in use) with one head per property.

    Args:
        config: backbone settings.
        properties: property names, one head each.
    """

    def __init__(self, config: ModelConfig, properties: list[str]) -> None:
        """Build backbone and heads."""
        super().__init__()
        self.properties = list(properties)
        self.backbone = EmModel(config)
        width = readout_width(config)
        self.heads = nn.ModuleList([nn.Linear(width, 1) for _ in self.properties])

    def forward(self, g, lg, prop: torch.Tensor) -> torch.Tensor:
        """Scaled prediction of each structure's own property; (B,)."""
        h = self.backbone.embed(g, lg)  # (B, width)
        out = torch.stack([head(h).squeeze(-1) for head in self.heads], dim=1)  # (B, P)
        return out.gather(1, prop[:, None]).squeeze(1)


def load_mpt(
    directory: str | Path, properties: list[str], *, max_per_property: int | None = None, seed: int = 0
) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Read the pre-training structures.

    Args:
        directory: the mpt folder.
        properties: which properties to read (keys of PROPERTY_FILES).
        max_per_property: keep at most this many structures per property (random subset).
        seed: seed of that subset.

    Returns:
        (structures as ASE Atoms, (n,) property index, (n,) raw target).
    """
    root = Path(directory)
    rng = np.random.default_rng(seed)
    atoms, prop, target = [], [], []
    for p_index, name in enumerate(properties):
        if name not in PROPERTY_FILES:
            raise StructureFileError(f"unknown property {name!r} (known: {', '.join(PROPERTY_FILES)})")
        rel, key = PROPERTY_FILES[name]
        path = root / rel
        if not path.is_file():
            raise StructureFileError(f"{path}: no such file (property {name})")
        records = json.loads(gzip.open(path).read())
        if max_per_property is not None and len(records) > max_per_property:
            records = [records[i] for i in rng.choice(len(records), max_per_property, replace=False)]
        for rec in records:
            atoms.append(jarvis_dict_to_atoms(rec["atoms"], str(rec.get("id"))))
            prop.append(p_index)
            target.append(float(rec[key]))
    return atoms, np.asarray(prop), np.asarray(target)


def pretrain(
    directory: str | Path,
    output: str | Path,
    *,
    properties: list[str],
    graph_config: GraphConfig,
    model_config: ModelConfig,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    max_per_property: int | None = None,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Pre-train a backbone on several bulk properties; checkpoint every epoch; resume.

    Returns:
        The card written to ``output/card.json``.
    """
    from tqdm import tqdm

    out = Path(output)
    workdir = workdir or out / ".work"
    workdir.mkdir(parents=True, exist_ok=True)
    cache = workdir / "graphs.pt"
    key = repr((str(directory), properties, asdict(graph_config), max_per_property, seed))
    if cache.is_file() and (blob := torch.load(cache, weights_only=True)).get("key") == key:
        graphs = [BandGraph(**g) for g in blob["graphs"]]
        prop, target = blob["prop"].numpy(), blob["target"].numpy()
    else:
        structures, prop, target = load_mpt(
            directory, properties, max_per_property=max_per_property, seed=seed
        )
        graphs = [
            build_graph(a, graph_config, n_ion_images=0)
            for a in tqdm(structures, desc="graphs", unit="structure", disable=None)
        ]
        torch.save(
            {
                "key": key,
                "graphs": [vars(g) for g in graphs],
                "prop": torch.as_tensor(prop),
                "target": torch.as_tensor(target),
            },
            cache,
        )
    mean = np.array([target[prop == p].mean() for p in range(len(properties))])
    std = np.array([max(target[prop == p].std(), 1e-6) for p in range(len(properties))])
    y = torch.as_tensor((target - mean[prop]) / std[prop], dtype=torch.float32)
    p_t = torch.as_tensor(prop, dtype=torch.long)

    torch.manual_seed(seed)
    model = MultiPropertyModel(model_config, properties)
    n = len(graphs)
    steps = max(1, -(-n // batch_size))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps)
    ckpt = workdir / "pretrain.ckpt"
    start = 0
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start = int(state["epoch"])
        logger.info("resumed pre-training at epoch %d", start)
    history = []
    bar = tqdm(range(start, epochs), desc="pretrain", unit="epoch", disable=None)
    for epoch in bar:
        model.train()
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        total = 0.0
        for b in range(steps):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            g, lg = collate([graphs[i] for i in idx])
            loss = torch.nn.functional.l1_loss(model(g, lg, p_t[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        history.append(total / n)
        bar.set_postfix(scaled_mae=f"{total / n:.3f}")
        logger.info("pretrain epoch %d: scaled MAE %.4f", epoch + 1, total / n)
        atomic_save(
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "epoch": epoch + 1,
            },
            ckpt,
        )
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "backbone.pt"
    torch.save(model.backbone.state_dict(), weights)
    torch.save(model.state_dict(), out / "multiproperty.pt")
    from ase_em.model.weights import sha256

    card = {
        "name": out.name,
        "version": __version__,
        "kind": "pretrained backbone (multi-property)",
        "properties": properties,
        "target_mean": mean.tolist(),
        "target_std": std.tolist(),
        "data": {
            "n_structures": n,
            "per_property": {p: int((prop == i).sum()) for i, p in enumerate(properties)},
        },
        "graph": asdict(graph_config),
        "model": asdict(model_config),
        "epochs": epochs,
        "train_scaled_mae_per_epoch": history,
        "command": "ase-em " + " ".join(sys.argv[1:]),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "sha256": sha256(weights),
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card
