"""Find, verify and load model directories (shipped weights or users' own).

A model directory holds ``model.pt`` (a state dict, loaded with ``weights_only=True``)
and ``card.json`` (settings, data, metrics, command, and the sha256 of model.pt).
Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ase_em.config import GraphConfig, ModelConfig, from_dict
from ase_em.errors import ModelLoadError
from ase_em.model import EmEnsemble

DEFAULT_MODEL = "alignn-em-v1"
WEIGHTS_DIR = Path(__file__).parent / "weights"


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
    """Names of the models shipped in the package."""
    if not WEIGHTS_DIR.is_dir():
        return []
    return sorted(p.name for p in WEIGHTS_DIR.iterdir() if (p / "card.json").is_file())


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
    raise ModelLoadError(
        f"{name_or_dir}: not a model directory (no card.json) nor a shipped model "
        f"(shipped: {', '.join(available_models()) or 'none'})"
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
        ModelLoadError: missing files, checksum mismatch or weights that do not fit.
    """
    directory = resolve(name_or_dir)
    card = read_card(directory)
    weights = directory / "model.pt"
    if not weights.is_file():
        raise ModelLoadError(f"{weights}: missing")
    digest = sha256(weights)
    if digest != card.get("sha256"):
        raise ModelLoadError(
            f"{weights}: checksum {digest[:12]}... does not match the card's "
            f"{str(card.get('sha256'))[:12]}...: the weights are corrupt or were replaced"
        )
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
