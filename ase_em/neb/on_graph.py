"""Refined barriers on a ``MigrationGraph``, and percolation that uses them where present.

A graph labelled by :func:`ase_em.crystals.labelling.label_migration_graph` carries the
network's ``em`` on every edge. :func:`label_refined` writes refined barriers beside it
(``em_refined``, eV, with ``em_refined_forward`` and ``em_refined_converged``) on every
symmetry-equivalent edge, with ``add_data_to_similar_edges`` as the network's labels are
written. :func:`percolation_barriers_refined` is ``graph_percolation_barriers`` with
each edge's refined barrier where it has one, else the network's.

:func:`refine_bottlenecks` refines only the hops that decide the percolation barriers:
the bottleneck hop of each requested dimension (the hop whose barrier is the percolation
barrier); once refined, another hop may become the bottleneck, so it repeats until every
bottleneck is a refined hop (or ``max_rounds``).

``em_refined`` is the ``em_reference`` definition (highest minus lowest energy along the
path; :mod:`ase_em.neb.result`), which does not depend on the direction an edge is
walked, as percolation needs.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ase_em.crystals.percolation import PeriodicEdge, percolation_barriers
from ase_em.neb.batch import refine_many
from ase_em.neb.potentials import CalculatorLike
from ase_em.neb.result import RefinedHop

if TYPE_CHECKING:
    from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph

logger = logging.getLogger(__name__)

REFINED_KEY = "em_refined"
COMBINED_KEY = "em_combined"


def effective_em(edge_data: Mapping[str, Any], key: str = REFINED_KEY) -> float:
    """An edge's barrier for percolation: ``key`` (``em_refined``) where present, else ``em`` (eV)."""
    refined = edge_data.get(key)
    if refined is not None and math.isfinite(refined):
        return float(refined)
    return float(edge_data["em"])


def label_refined(mg: MigrationGraph, refined: Mapping[int, RefinedHop]) -> MigrationGraph:
    """Write refined barriers on every edge equivalent to each refined hop.

    Args:
        mg: a labelled MigrationGraph (modified in place).
        refined: ``{hop_label: RefinedHop}`` (``hop_label`` as in ``mg.unique_hops``).
            A failed refinement (``error`` set) writes nothing.

    Returns:
        ``mg``, its edges' ``cost`` set to the effective barrier (refined where present),
        so ``mg.get_path`` ranks paths by it.
    """
    for label, res in refined.items():
        if res.error is not None or not math.isfinite(res.em_reference):
            logger.warning("hop %s: refinement failed, keeps the network's Em: %s", label, res.error)
            continue
        mg.add_data_to_similar_edges(label, {
            REFINED_KEY: res.em_reference,
            "em_refined_forward": res.em_forward,
            "em_refined_converged": bool(res.converged),
            COMBINED_KEY: res.em_combined,
            "em_combined_std": res.em_combined_std,
        })
    for _, _, d in mg.m_graph.graph.edges(data=True):
        d["em_effective"] = effective_em(d)
    mg.assign_cost_to_graph(["em_effective"])
    return mg


def percolation_barriers_refined(mg: MigrationGraph, key: str = REFINED_KEY) -> dict[int, float | None]:
    """Percolation barriers (eV) with refined barriers where present, else the network's.

    Args:
        mg: a labelled MigrationGraph, possibly with ``em_refined`` on some edges.
        key: the edge value used where present: ``"em_refined"`` (the NEB's max - min) or
            ``"em_combined"`` (network and NEB combined, :mod:`ase_em.neb.combine`).

    Returns:
        ``{1: E1, 2: E2, 3: E3}`` (eV), None where the hops do not percolate
        (:func:`ase_em.crystals.percolation.percolation_barriers`).
    """
    return percolation_barriers(_edges(mg, key), n_sites=len(mg.only_sites))


def bottleneck_hops(mg: MigrationGraph, dimensions: Iterable[int] = (1, 2, 3)) -> dict[int, list[int]]:
    """The hops that set each percolation barrier.

    Args:
        mg: a labelled MigrationGraph.
        dimensions: the percolation dimensions of interest.

    Returns:
        ``{d: [hop_label, ...]}``: the labels of the hops whose effective barrier equals the
        percolation barrier in ``d`` dimensions (several when tied); empty where the hops do
        not percolate.
    """
    barriers = percolation_barriers_refined(mg)
    out: dict[int, list[int]] = {}
    for d in dimensions:
        e = barriers[d]
        labels = set()
        if e is not None:
            for _, _, data in mg.m_graph.graph.edges(data=True):
                if abs(effective_em(data) - e) <= 1e-9:
                    labels.add(int(data["hop_label"]))
        out[d] = sorted(labels)
    return out


def refine_bottlenecks(
    mg: MigrationGraph,
    calculator: CalculatorLike = None,
    *,
    dimensions: Iterable[int] = (1, 2, 3),
    max_rounds: int = 3,
    min_length: float | None = None,
    workdir: str | os.PathLike | None = None,
    workers: int = 1,
    threads: int = 1,
    **options: Any,
) -> dict[int, RefinedHop]:
    """Refine the hops that decide the percolation barriers, until they are all refined.

    Args:
        mg: a MigrationGraph labelled with the network's ``em`` (modified in place:
            :func:`label_refined`).
        calculator: the potential (see :mod:`ase_em.neb.potentials`).
        dimensions: percolation dimensions whose bottleneck hops are refined.
        max_rounds: most rounds of (find bottlenecks, refine them).
        min_length: smallest supercell width (A) of the hops (default: as the network's
            labels, :data:`ase_em.hops.migration_hop.DEFAULT_MIN_LENGTH`).
        workdir: parent directory of the per-hop checkpoints (``hop_<label>/``).
        workers: worker processes over hops.
        threads: torch threads per worker.
        **options: keyword options of :func:`ase_em.neb.refine` (``fmax``, ``steps``, ...).

    Returns:
        ``{hop_label: RefinedHop}`` of every hop refined.
    """
    from pathlib import Path

    from ase_em.hops.migration_hop import DEFAULT_MIN_LENGTH, hop_from_migration_hop

    dims = tuple(dimensions)
    done: dict[int, RefinedHop] = {}
    for round_ in range(max_rounds):
        wanted = sorted({lab for labs in bottleneck_hops(mg, dims).values() for lab in labs} - set(done))
        if not wanted:
            break
        logger.info("round %d: refining bottleneck hops %s", round_ + 1, wanted)
        width = min_length or DEFAULT_MIN_LENGTH
        unique = mg.unique_hops  # a pymatgen property that walks every edge: read it once
        hops = [hop_from_migration_hop(unique[lab]["hop"], min_length=width, name=f"hop_{lab}")
                for lab in wanted]
        results = refine_many(hops, calculator, workers=workers, threads=threads,
                              workdir=None if workdir is None else Path(workdir) / f"round{round_ + 1}",
                              **options)
        new = dict(zip(wanted, results, strict=True))
        done.update(new)
        label_refined(mg, new)
    return done


def _edges(mg: MigrationGraph, key: str = REFINED_KEY) -> list[PeriodicEdge]:
    return [
        PeriodicEdge(int(u), int(v), tuple(int(x) for x in d["to_jimage"]), effective_em(d, key))
        for u, v, d in mg.m_graph.graph.edges(data=True)
    ]
