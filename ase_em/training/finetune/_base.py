"""What a fine-tune starts from (a barrier model or a backbone) and which parameters train."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ase_em.config import GraphConfig, ModelConfig, from_dict
from ase_em.errors import AseEmError, ModelLoadError
from ase_em.model.model import EmEnsemble, EmModel
from ase_em.model.weights import BACKBONE_KIND, is_backbone, load_model, read_card, resolve
from ase_em.training.finetune._config import STRATEGIES


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
        from ase_em.training.ensemble import start_model

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
    from ase_em.training.ensemble import load_backbone

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
