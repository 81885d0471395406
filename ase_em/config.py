"""Frozen settings of the graph, the model and training.

They travel with the weights: a model card stores them, and a loaded model builds its
graphs from the card, never from defaults.
"""

from __future__ import annotations

import math
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
        spread_head: a second output, the spread of a teacher ensemble's members, for a
            one-network model distilled from an ensemble (:mod:`ase_em.training.distill`).
    """

    alignn_layers: int = 2
    gcn_layers: int = 2
    hidden_features: int = 64
    edge_input_features: int = 80
    triplet_input_features: int = 40
    embedding_features: int = 64
    readout: Readout = "ion"
    spread_head: bool = False


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
        rank_weight: weight of the pairwise ranking loss beside the L1 loss (0: off). On
            the scaled barriers, each pair of hops of one structure (record name without its
            trailing ``_N``) in a batch adds ``softplus(-sign(dy) * dp)`` (RankNet); pairs
            whose DFT barriers differ by less than ``rank_tie`` are skipped. When on, batches
            are filled structure by structure (structures shuffled each epoch), so a
            structure's pathways meet in one batch.
        rank_tie: DFT barrier difference (eV) below which a pair counts as a tie and is not
            ranked.
        density_weight_power: weight each hop's L1 loss by (number of training hops in its
            barrier bin) ** -power, normalised to mean 1 (0: off; 0.5: inverse square root
            of the density; 1: inverse density), so rare high barriers are not pulled to
            the middle.
        density_bin: width (eV) of those barrier bins.
        density_max_weight: cap on a hop's weight (before normalisation), so a bin of one
            or two hops does not dominate.
    """

    epochs: int = 60
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-5
    folds: int = 5
    seed: int = 0
    rank_weight: float = 0.0
    rank_tie: float = 0.02
    density_weight_power: float = 0.0
    density_bin: float = 0.25
    density_max_weight: float = 10.0


__all__ = ["GraphConfig", "ModelConfig", "Readout", "TrainConfig", "asdict", "from_dict"]


@dataclass(frozen=True)
class NetworkOptions:
    """How the hop network of a crystal is built and read (one object for every entry point).

    :class:`ase_em.crystals.analyzer.MigrationBarrierAnalyzer`,
    :func:`ase_em.crystals.labelling.migration_graph_with_em`,
    :func:`ase_em.crystals.disordered.disordered_network`,
    ``MigrationGraph.with_em_predictor`` and :func:`ase_em.screening.run.screen` take these
    settings as keywords (or as ``options=``) and pass this object on, so each default is
    written once, here.

    Attributes:
        max_distance: longest ion-ion hop put in the graph (A).
        min_length: smallest perpendicular width of a hop's vacancy supercell (A); 10 A is
            ``MigrationHop.get_sc_structures``'s default and about the median smallest width
            of the training supercells (9.6 A).
        symprec: symmetry precision for grouping equivalent hops (``MigrationGraph``'s own).
        empty_sites: add the framework's candidate empty sites of the ion as nodes (True),
            never (False), or when needed (None: no hop between occupied sites, or, in the
            analyzer, no percolation inside the model's domain without them).
        n_orderings: orderings drawn for a disordered structure (partial occupancies); with
            ``ordering_tolerance``, the most drawn.
        ordering_tolerance: None: every one of ``n_orderings`` orderings is drawn. A value
            (eV): orderings are drawn one at a time until every hop's barrier has settled
            (:func:`ase_em.crystals.disordered.barriers_settled`: after at least two, the
            standard error of its mean over the orderings is at most this, or it is blocked
            in all of them), at most ``n_orderings``.
        seed: seed of the first ordering.
        include_flagged: let hops outside the model's domain into percolation and paths.
        primitive: build the graph of an ordered crystal on its primitive cell.
        progress: show progress bars.
    """

    max_distance: float = 5.0
    min_length: float = 10.0
    symprec: float = 0.1
    empty_sites: bool | None = None
    n_orderings: int = 5
    ordering_tolerance: float | None = None
    seed: int = 0
    include_flagged: bool = False
    primitive: bool = True
    progress: bool = False

    @classmethod
    def build(cls, options: NetworkOptions | None = None, **keywords: Any) -> NetworkOptions:
        """``options`` (default: the defaults) with some fields replaced by ``keywords``.

        Raises:
            TypeError: a keyword that is not a field of NetworkOptions (the message lists them).
            ase_em.errors.AseEmError: ``n_orderings`` < 1, ``ordering_tolerance`` < 0 or
                ``max_distance`` <= 0.
        """
        from dataclasses import replace

        from ase_em.errors import AseEmError

        names = {f.name for f in fields(cls)}
        unknown = sorted(set(keywords) - names)
        if unknown:
            raise TypeError(
                f"unknown network option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        out = replace(options or cls(), **keywords)
        if int(out.n_orderings) < 1:
            raise AseEmError(f"n_orderings must be at least 1, got {out.n_orderings}")
        tol = out.ordering_tolerance
        if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float))
                                or not (math.isfinite(tol) and tol >= 0)):
            raise AseEmError(f"ordering_tolerance must be a number of eV >= 0 or None, got {tol!r}")
        if not float(out.max_distance) > 0:
            raise AseEmError(f"max_distance must be positive, got {out.max_distance}")
        return out


DEFAULT_NETWORK = NetworkOptions()

# eV: a screen's orderings stop once every hop's barrier is known to this standard error.
# On the disordered OBELiX training CIFs (3 orderings at most) 111 of 187 stop at two, and
# their 1D percolation barriers move by 0.008 eV on average (largest 0.068) from the median
# of three (benchmarks/ordering_settling.py, docs/pymatgen.md); the model's own error is 0.26 eV.
SCREEN_ORDERING_TOLERANCE = 0.05
