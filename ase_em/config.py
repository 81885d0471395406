"""Frozen settings of the graph, the model and training.

They travel with the weights: a model card stores them, and a loaded model builds its
graphs from the card, never from defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

Readout = Literal["mean", "ion", "path"]


@dataclass(frozen=True)
class GraphConfig:
    """How a band becomes a graph.

    Attributes:
        cutoff: radius of the neighbour search (A).
        max_neighbors: neighbours kept per atom (the nearest ones; ties at the last
            distance are all kept, as the original ALIGNN does, so atom order never
            changes the graph).
        crop_radius: if set, keep only atoms within this distance (A) of any ion image
            (a local subgraph of the band, as the reference's MODEL-4); None keeps the
            whole band, as MODEL-3.
    """

    cutoff: float = 8.0
    max_neighbors: int = 12
    crop_radius: float | None = None


@dataclass(frozen=True)
class ModelConfig:
    """Size and readout of the ALIGNN network.

    Attributes:
        alignn_layers: number of ALIGNN (graph + line graph) layers.
        gcn_layers: number of edge-gated graph convolution layers after them.
        hidden_features: width of node, edge and angle embeddings.
        edge_input_features: radial basis functions for bond lengths.
        triplet_input_features: radial basis functions for angle cosines.
        embedding_features: width of the intermediate embedding layer.
        readout: "mean" pools all atoms (MODEL-3); "ion" pools the five ion images
            concatenated with the mean of all atoms; "path" keeps where along the hop an
            image sits: the endpoint pair, the quarter-point pair and the midpoint image
            (each pair averaged, so the readout does not depend on the hop's direction),
            concatenated with the mean of all atoms.
    """

    alignn_layers: int = 2
    gcn_layers: int = 2
    hidden_features: int = 64
    edge_input_features: int = 80
    triplet_input_features: int = 40
    embedding_features: int = 64
    readout: Readout = "ion"


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build a config dataclass from a dict, refusing unknown keys.

    Args:
        cls: GraphConfig or ModelConfig.
        data: the dict, as stored in a card.

    Returns:
        The config instance.

    Raises:
        ValueError: if ``data`` holds a key the dataclass does not know.
    """
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} settings: {sorted(unknown)}")
    return cls(**data)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Attributes:
        epochs: passes over the training hops (fixed: no early stopping on CV folds, so
            the CV figures stay honest).
        batch_size: hops per step.
        lr: peak learning rate of the one-cycle schedule.
        weight_decay: AdamW weight decay.
        folds: K of the K-fold cross-validation; each fold's model is an ensemble member.
        seed: seed of folds, initialisation and shuffling.
    """

    epochs: int = 60
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-5
    folds: int = 5
    seed: int = 0


__all__ = ["GraphConfig", "ModelConfig", "Readout", "TrainConfig", "asdict", "from_dict"]
