"""pymatgen-analysis-diffusion adapter: barriers on a ``MigrationGraph``.

* :func:`hop_from_migration_hop` turns a ``MigrationHop`` into a :class:`ase_em.hop.Hop`
  the way the training data were built: a vacancy-mode supercell (pymatgen-analysis-
  diffusion's ``get_start_end_structures(..., vac_mode=True)``, the function behind
  ``MigrationHop.get_sc_structures(vac_mode=True)``), the ion hopping into the vacancy
  left at its final site, the host taken from the initial endpoint.
* :func:`label_migration_graph` predicts once per entry of ``unique_hops``, writes
  ``em`` and ``em_std`` (eV) to every symmetry-equivalent edge with
  ``add_data_to_similar_edges`` and calls ``assign_cost_to_graph(["em"])``, so that
  ``get_path`` ranks paths by barrier.
* :func:`migration_graph_with_em` builds the graph (``MigrationGraph.with_distance``)
  and labels it.

Supercell rule: the supercell is a diagonal repetition ``n_i`` of the Niggli-reduced
cell, the smallest one whose three perpendicular widths (distances between opposite
faces) are all at least ``max(min_length, 2 * hop length + 1 A)``; ``min_length``
defaults to 10 A, the default of ``get_sc_structures`` and about the median smallest
width of the training supercells (9.6 A). So the ion, the vacancy and their periodic
copies are at least ``min_length`` apart, every sphere of diameter ``min_length`` around
the hop holds each atom once, and the straight ion path is the minimum-image one. It is
deterministic and needs no search (pymatgen's ``CubicSupercellTransformation`` took 80 s
on a rhombohedral LiCoO2 primitive cell).

Importing this module attaches the classmethod ``MigrationGraph.with_em_predictor``
(see the end of the file). ``import ase_em`` imports this module only when
pymatgen-analysis-diffusion's ``full_path_mapper`` is already imported (then it costs
nothing); otherwise ``import ase_em.migration_graph`` attaches it, keeping
``import ase_em`` free of pymatgen (about 0.2 s instead of 3.4 s).
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph
from pymatgen.analysis.diffusion.neb.pathfinder import MigrationHop
from pymatgen.analysis.diffusion.utils.supercells import get_start_end_structures
from pymatgen.core import Lattice, Structure

from ase_em.errors import AseEmError, ImplausibleHopError, StructureFileError
from ase_em.hop import Hop

if TYPE_CHECKING:
    from ase import Atoms

    from ase_em.predictor import EmPredictor

logger = logging.getLogger(__name__)

DEFAULT_MAX_DISTANCE = 5.0  # A: longest ion-ion hop put in the graph
DEFAULT_MIN_LENGTH = 10.0  # A: smallest perpendicular width of the vacancy supercell
PATH_MARGIN = 1.0  # A: the supercell widths are also at least 2 * hop length + this
SITE_TOLERANCE = 1e-3  # A: how close a supercell site must be to a hop endpoint to be it
DEFAULT_SYMPREC = 0.1  # symmetry precision of MigrationGraph (its own default)

StructureInput = Union[Structure, "Atoms", str, os.PathLike]


class MissingIonError(AseEmError):
    """The migrating ion is not in the structure, or the structure has no hops of it."""


class VacancySupercellError(AseEmError):
    """A MigrationHop's endpoints are not occupied sites of its structure (no vacancy hop)."""


# ---------------------------------------------------------------------- structures


def to_structure(structure: StructureInput) -> Structure:
    """A pymatgen Structure from a Structure, ASE Atoms or structure file (CIF, POSCAR, ...).

    Args:
        structure: the structure or its path.

    Returns:
        An ordered pymatgen Structure.

    Raises:
        StructureFileError: unreadable file, or a disordered structure.
    """
    if isinstance(structure, (str, os.PathLike)):
        path = os.fspath(structure)
        if not os.path.isfile(path):
            raise StructureFileError(f"{path}: no such file")
        with warnings.catch_warnings(record=True) as caught:  # parser warnings: logged if it reads
            warnings.simplefilter("always")
            try:
                structure = Structure.from_file(path)
            except Exception as exc:  # pymatgen raises many types for unreadable files
                raise StructureFileError(f"{path}: cannot read a structure: {exc}") from None
        for w in caught:
            logger.warning("%s: %s", path, w.message)
        label = path
    elif isinstance(structure, Structure):
        label = "structure"
    elif type(structure).__name__ == "Atoms":
        from pymatgen.io.ase import AseAtomsAdaptor

        structure, label = AseAtomsAdaptor.get_structure(structure), "Atoms"
    else:
        raise TypeError(f"expected a Structure, Atoms or a file path, got {type(structure).__name__}")
    if len(structure) == 0:
        raise StructureFileError(f"{label}: holds no atoms")
    if not structure.is_ordered:
        raise StructureFileError(f"{label}: partial occupancies; give an ordered structure")
    return structure


def check_ion(structure: Structure, ion: str) -> None:
    """Raise MissingIonError if no site of ``structure`` holds element ``ion``.

    Args:
        structure: the structure.
        ion: element symbol, e.g. "Li".
    """
    present = sorted({el.symbol for el in structure.composition.elements})
    if ion not in present:
        raise MissingIonError(
            f"{structure.composition.reduced_formula}: no {ion} in the structure "
            f"(elements: {', '.join(present)})"
        )


def supercell_matrix(lattice: Lattice, min_length: float) -> np.ndarray:
    """Supercell matrix of the vacancy supercell (the rule in the module docstring).

    Args:
        lattice: lattice of the unit cell.
        min_length: smallest allowed perpendicular width of the supercell (A).

    Returns:
        (3, 3) integer matrix ``M``; the supercell lattice is ``M @ lattice.matrix``.
    """
    reduced = lattice.get_niggli_reduced_lattice()
    t = np.rint(reduced.matrix @ np.linalg.inv(lattice.matrix)).astype(int)  # reduced = t @ lattice
    if abs(round(np.linalg.det(t))) != 1 or not np.allclose(t @ lattice.matrix, reduced.matrix, atol=1e-6):
        t = np.eye(3, dtype=int)  # keep the cell as given
    m = t @ lattice.matrix  # (3, 3) rows are the cell vectors
    volume = abs(np.linalg.det(m))
    widths = np.array([volume / np.linalg.norm(np.cross(m[(i + 1) % 3], m[(i + 2) % 3])) for i in range(3)])
    n = np.maximum(1, np.ceil(min_length / widths - 1e-9)).astype(int)  # (3,)
    return np.diag(n) @ t


# ---------------------------------------------------------------------- one hop


def hop_from_migration_hop(
    hop: MigrationHop, *, min_length: float = DEFAULT_MIN_LENGTH, name: str | None = None
) -> Hop:
    """The vacancy-mode hop of a ``MigrationHop``, as the training data were built.

    The supercell holds every site of ``hop.symm_structure`` (all migrating-ion sites
    occupied) except the final site: the ion at ``hop.isite`` hops into that vacancy.
    The atom order of pymatgen's vacancy supercells differs between the start and end
    structures (each removes a different site), so only the start structure is used and
    the ion is found by its position.

    Args:
        hop: the migration hop (from a ``MigrationGraph`` or ``DistinctPathFinder``).
        min_length: smallest perpendicular width of the supercell (A); see the module
            docstring for the rule.
        name: label of the hop (default: formula and hop length).

    Returns:
        The validated hop (ion, start and end in A, host of the initial endpoint).

    Raises:
        VacancySupercellError: an endpoint is not an occupied site of the structure.
        ImplausibleHopError: the straight path passes through a host atom.
    """
    base = Structure.from_sites(list(hop.symm_structure.sites))  # all sites, ion sites occupied
    ion = hop.isite.specie.symbol
    length = hop.length
    name = name or f"{base.composition.reduced_formula} {ion} hop {length:.3f} A"
    sc = supercell_matrix(base.lattice, max(min_length, 2 * length + PATH_MARGIN))
    start, _, base_sc = get_start_end_structures(
        hop.isite, hop.esite, base, sc.tolist(), vac_mode=True, tol=SITE_TOLERANCE
    )
    if len(start) != len(base_sc) - 1:
        raise VacancySupercellError(
            f"{name}: the final site is not an occupied {ion} site of the structure "
            f"({len(base_sc) - len(start)} sites removed instead of one)"
        )
    frac = start.lattice.get_fractional_coords(hop.isite.coords)  # (3,)
    dist = start.lattice.get_all_distances(frac[None, :], start.frac_coords)[0]  # (N,)
    k = int(np.argmin(dist))
    if dist[k] > SITE_TOLERANCE or start[k].specie.symbol != ion:
        raise VacancySupercellError(f"{name}: the initial site is not an occupied {ion} site")
    keep = np.arange(len(start)) != k
    positions = start.cart_coords  # (N, 3)
    begin = positions[k].copy()
    return Hop(
        ion=ion,
        start=begin,
        end=begin + (hop.esite.coords - hop.isite.coords),
        host_symbols=tuple(site.specie.symbol for i, site in enumerate(start) if keep[i]),
        host_positions=positions[keep].copy(),
        cell=start.lattice.matrix.copy(),
        ion_index=k,
        name=name,
    )


# ---------------------------------------------------------------------- the graph


def label_migration_graph(
    mg: MigrationGraph,
    predictor: EmPredictor | None = None,
    *,
    min_length: float = DEFAULT_MIN_LENGTH,
) -> MigrationGraph:
    """Predict Em for each unique hop of a MigrationGraph and write it on every edge.

    One prediction per entry of ``mg.unique_hops``; ``add_data_to_similar_edges`` gives
    every symmetry-equivalent edge the same ``em`` and ``em_std`` (eV; ``em_std`` is None
    for a single-member model). A hop whose straight path runs through a host atom gets
    ``em = inf`` and the reason in ``em_blocked``. Then ``assign_cost_to_graph(["em"])``
    sets each edge's ``cost`` to its Em, so ``mg.get_path(max_val=...)`` ranks paths by
    barrier.

    Args:
        mg: the migration graph (modified in place).
        predictor: the predictor (default: the shipped model).
        min_length: smallest supercell width (A) of the bands (module docstring).

    Returns:
        ``mg`` itself, labelled.
    """
    if predictor is None:
        from ase_em.predictor import EmPredictor

        predictor = EmPredictor.from_pretrained()
    labels, hops, blocked = [], [], {}
    for label, data in mg.unique_hops.items():
        try:
            hops.append(hop_from_migration_hop(data["hop"], min_length=min_length))
            labels.append(label)
        except ImplausibleHopError as exc:
            logger.warning("hop %s is blocked, Em set to inf: %s", label, exc)
            blocked[label] = str(exc)
    for label, result in zip(labels, predictor.predict(hops), strict=True):
        mg.add_data_to_similar_edges(label, {"em": result.em, "em_std": result.em_std})
        if result.em < 0:
            logger.warning("hop %s: negative Em %.3f eV; get_path needs costs >= 0", label, result.em)
    for label, reason in blocked.items():
        mg.add_data_to_similar_edges(label, {"em": math.inf, "em_std": None, "em_blocked": reason})
    mg.assign_cost_to_graph(["em"])
    return mg


def migration_graph_with_em(
    structure: StructureInput,
    migrating_specie: str,
    max_distance: float = DEFAULT_MAX_DISTANCE,
    predictor: EmPredictor | None = None,
    *,
    min_length: float = DEFAULT_MIN_LENGTH,
    symprec: float = DEFAULT_SYMPREC,
) -> MigrationGraph:
    """A MigrationGraph of all ion-ion hops up to ``max_distance``, labelled with Em.

    Args:
        structure: the crystal with every site of the migrating ion occupied (Structure,
            Atoms or a structure file).
        migrating_specie: element of the migrating ion, e.g. "Li".
        max_distance: longest hop (A), as in ``MigrationGraph.with_distance``.
        predictor: the predictor (default: the shipped model).
        min_length: smallest supercell width (A) of the bands (module docstring).
        symprec: symmetry precision for grouping equivalent hops.

    Returns:
        The labelled graph (see :func:`label_migration_graph`).

    Raises:
        MissingIonError: the ion is not in the structure, or no hop is that short.
        StructureFileError: the structure file is unreadable or disordered.
    """
    struct = to_structure(structure)
    check_ion(struct, migrating_specie)
    mg = MigrationGraph.with_distance(struct, migrating_specie, max_distance=max_distance, symprec=symprec)
    if mg.m_graph.graph.number_of_edges() == 0:
        raise MissingIonError(
            f"{struct.composition.reduced_formula}: no {migrating_specie}-{migrating_specie} hop "
            f"shorter than {max_distance} A (raise max_distance)"
        )
    return label_migration_graph(mg, predictor, min_length=min_length)


def _with_em_predictor(
    cls: type[MigrationGraph],
    structure: StructureInput,
    migrating_specie: str,
    max_distance: float = DEFAULT_MAX_DISTANCE,
    predictor: EmPredictor | None = None,
) -> MigrationGraph:
    """``MigrationGraph.with_distance`` labelled with Em: see :func:`migration_graph_with_em`."""
    return migration_graph_with_em(structure, migrating_specie, max_distance, predictor)


# The one place ase-em extends pymatgen-analysis-diffusion: a classmethod shim over the
# plain functions above, attached when this module is imported.
MigrationGraph.with_em_predictor = classmethod(_with_em_predictor)


def edge_table(mg: MigrationGraph) -> list[dict[str, Any]]:
    """The periodic edges of a labelled graph (for percolation and plots).

    Args:
        mg: a graph labelled by :func:`label_migration_graph`.

    Returns:
        One dict per edge: ``u``, ``v`` (site indices), ``to_jimage`` (3 ints, the cell
        of ``v``), ``label``, ``em`` (eV), ``ipos_cart``, ``epos_cart`` ((3,) A).
    """
    return [
        {
            "u": int(u),
            "v": int(v),
            "to_jimage": tuple(int(x) for x in d["to_jimage"]),
            "label": d["hop_label"],
            "em": float(d["em"]),
            "ipos_cart": np.asarray(d["ipos_cart"], float),
            "epos_cart": np.asarray(d["epos_cart"], float),
        }
        for u, v, d in mg.m_graph.graph.edges(data=True)
    ]
