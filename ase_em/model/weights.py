"""Find, verify and load model directories (shipped weights or users' own).

A model directory holds ``model.pt`` (a state dict, loaded with ``weights_only=True``)
and ``card.json`` (settings, data, metrics, command, and the sha256 of model.pt).
A pre-trained backbone (``ase-em pretrain``) is a directory of another kind: backbone.pt
and a card whose ``kind`` starts with "pretrained backbone". It has no barrier head, so it
is no model to predict with: it is a starting point for ``ase-em finetune --from`` and
``ase-em train --init-from``. :func:`resolve` finds both (a shipped name or a path);
:func:`available_models` lists only barrier models, :func:`available_backbones` the rest.
Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ase_em.config import GraphConfig, ModelConfig, from_dict
from ase_em.errors import ModelLoadError

if TYPE_CHECKING:
    from ase_em.model.model import EmEnsemble

DEFAULT_MODEL = "alignn-em-v1"
# a screen's default: one network distilled from DEFAULT_MODEL's five members (one forward a
# hop instead of five; on OBELiX's hops 0.037 eV from the ensemble, docs/model.md)
SCREEN_MODEL = "alignn-em-v1-distilled"
WEIGHTS_DIR = Path(__file__).parent.parent / "weights"  # ase_em/weights: shipped model directories
BACKBONE_KIND = "pretrained backbone"  # prefix of the card "kind" of an ``ase-em pretrain`` output


@dataclass
class LoadedModel:
    """A model ready to predict.

    Attributes:
        ensemble: the network (eval mode).
        graph_config: the graph settings it was trained with.
        card: the parsed card.json.
        path: its directory.
    """

    ensemble: EmEnsemble
    graph_config: GraphConfig
    card: dict[str, Any]
    path: Path


def available_models() -> list[str]:
    """Names of the barrier models shipped in the package.

    A model is a folder with a card and model.pt, or with a card naming the model whose
    network it reads (``"network"``).
    """
    if not WEIGHTS_DIR.is_dir():
        return []
    return sorted(
        p.name for p in WEIGHTS_DIR.iterdir() if (p / "card.json").is_file() and (
            (p / "model.pt").is_file() or "network" in json.loads((p / "card.json").read_text()))
    )


def available_backbones() -> list[str]:
    """Names of the pre-trained backbones shipped in the package (see :func:`is_backbone`)."""
    if not WEIGHTS_DIR.is_dir():
        return []
    names = []
    for p in sorted(WEIGHTS_DIR.iterdir()):
        try:
            card = json.loads((p / "card.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if is_backbone(card, p):
            names.append(p.name)
    return names


def is_backbone(card: dict[str, Any], directory: str | Path | None = None) -> bool:
    """Whether a card (of ``directory``) describes a pre-trained backbone, not a barrier model.

    Args:
        card: the parsed card.json.
        directory: its folder; a folder with backbone.pt and no model.pt counts too.

    Returns:
        True for an ``ase-em pretrain`` output.
    """
    if str(card.get("kind") or "").startswith(BACKBONE_KIND):
        return True
    if directory is None:
        return False
    d = Path(directory)
    return (d / "backbone.pt").is_file() and not (d / "model.pt").is_file()


def resolve(name_or_dir: str | Path | None = None) -> Path:
    """Directory of a shipped model name, or of a model directory path.

    Args:
        name_or_dir: a shipped name, a directory, or None for the default model.

    Returns:
        The model directory.
    """
    if name_or_dir is None:
        name_or_dir = DEFAULT_MODEL
    p = Path(name_or_dir)
    if (p / "card.json").is_file():
        return p
    shipped = WEIGHTS_DIR / str(name_or_dir)
    if (shipped / "card.json").is_file():
        return shipped
    backbones = available_backbones()
    raise ModelLoadError(
        f"{name_or_dir}: not a model directory (no card.json) nor a shipped model "
        f"(shipped: {', '.join(available_models()) or 'none'}"
        + (f"; shipped backbones: {', '.join(backbones)})" if backbones else ")")
    )


def sha256(path: Path) -> str:
    """sha256 hex digest of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_card(name_or_dir: str | Path | None = None) -> dict[str, Any]:
    """The card of a model, as a dict."""
    path = resolve(name_or_dir) / "card.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: unreadable card ({exc})") from None


def load_model(name_or_dir: str | Path | None = None) -> LoadedModel:
    """Load and verify a model.

    Args:
        name_or_dir: a shipped name, a directory, or None for the default model.

    Returns:
        The loaded model in eval mode.

    Raises:
        ModelLoadError: missing files, checksum mismatch, weights that do not fit, or a
            pre-trained backbone (no barrier head) instead of a model.

    A card with ``"network": NAME`` reads the network's ``model.pt`` from model NAME (a
    shipped name or directory), checked against this card's ``sha256``.
    """
    directory = resolve(name_or_dir)
    card = read_card(directory)
    if is_backbone(card, directory):
        raise ModelLoadError(
            f"{directory}: is a pre-trained backbone ({card.get('kind') or BACKBONE_KIND}), not a barrier "
            "model: it has no barrier head to predict with; start a model from it with "
            "`ase-em finetune DATA --from "
            f"{name_or_dir}` or `ase-em train DATA --init-from {name_or_dir}`"
        )
    # a model that adds a stage to another's network (alignn-em-v3: v1's) names it, and its
    # weights are read from there instead of a copy
    weights = (resolve(card["network"]) if card.get("network") else directory) / "model.pt"
    if not weights.is_file():
        raise ModelLoadError(f"{weights}: missing")
    digest = sha256(weights)
    if digest != card.get("sha256"):
        raise ModelLoadError(
            f"{weights}: checksum {digest[:12]}... does not match the card's "
            f"{str(card.get('sha256'))[:12]}...: the weights are corrupt or were replaced"
        )
    import torch

    from ase_em.model.model import EmEnsemble

    try:
        model_config = from_dict(ModelConfig, card["model"])
        graph_config = from_dict(GraphConfig, card["graph"])
        ensemble = EmEnsemble(model_config, n_members=int(card["n_members"]))
        state = torch.load(weights, map_location="cpu", weights_only=True)
        ensemble.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{directory}: cannot load the model ({exc})") from None
    ensemble.eval()
    return LoadedModel(ensemble, graph_config, card, directory)


def save_model(
    ensemble: EmEnsemble,
    graph_config: GraphConfig,
    directory: str | Path,
    card: dict[str, Any],
) -> Path:
    """Write model.pt and card.json (with settings and checksum) into a directory.

    Args:
        ensemble: the trained network.
        graph_config: graph settings used in training.
        directory: output directory (created).
        card: extra card fields (name, data, metrics, command, ...).

    Returns:
        The directory.
    """
    from dataclasses import asdict

    import torch

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "model.pt"
    torch.save(ensemble.state_dict(), weights)
    full = {
        **card,
        "graph": asdict(graph_config),
        "model": asdict(ensemble.config),
        "n_members": len(ensemble.members),
        "sha256": sha256(weights),
    }
    (out / "card.json").write_text(json.dumps(full, indent=2) + "\n")
    return out


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` through a temporary file and ``os.replace``.

    A run killed while saving leaves the previous file (or none), never half a checkpoint.
    """
    import torch

    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
