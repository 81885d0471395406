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
* :func:`migration_graph_with_em` builds the graph on the primitive cell
  (:func:`ase_em.structures.network.build_migration_graph`, the hop groups of
  ``MigrationGraph.with_distance`` in about linear time) and labels it.

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
(see the end of the file). ``import ase_em`` registers a post-import hook (wrapt) that
imports this module as soon as pymatgen-analysis-diffusion's ``full_path_mapper`` is
imported, in either order, keeping ``import ase_em`` itself free of pymatgen (about
0.2 s instead of 3.4 s).
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph
from pymatgen.core import Structure

from ase_em import checks
from ase_em.errors import AseEmError, ImplausibleHopError, StructureFileError

# The MigrationHop -> Hop conversion is a hop-level module (as_hop uses it too); these
# names stay importable from here.
from ase_em.vacancy import (  # noqa: F401
    DEFAULT_MIN_LENGTH,
    PATH_MARGIN,
    SITE_TOLERANCE,
    VacancySupercellError,
    hop_from_migration_hop,
    supercell_matrix,
)

if TYPE_CHECKING:
    from ase import Atoms

    from ase_em.predictor import EmPredictor

logger = logging.getLogger(__name__)

DEFAULT_MAX_DISTANCE = 5.0  # A: longest ion-ion hop put in the graph
DEFAULT_SYMPREC = 0.1  # symmetry precision of MigrationGraph (its own default)

StructureInput = Union[Structure, "Atoms", str, os.PathLike]


class MissingIonError(AseEmError):
    """The migrating ion is not in the structure, or the structure has no hops of it."""


# ---------------------------------------------------------------------- structures


def to_structure(structure: StructureInput) -> Structure:
    """A pymatgen Structure from a Structure, ASE Atoms or structure file (CIF, POSCAR, ...).

    Args:
        structure: the structure or its path.

    Every reader's checks apply (:mod:`ase_em.checks`): finite coordinates, ordered sites,
    no overlapping atoms; oxidation states (``Li+``, a CIF's ``Li1+``) are removed.

    Returns:
        An ordered pymatgen Structure of elements (no oxidation states).

    Raises:
        StructureFileError: unreadable file, non-finite coordinates;
            :class:`ase_em.errors.DisorderedStructureError` for partial occupancies.
        ImplausibleHopError: atoms far closer than bonding.
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
                why = str(exc).strip() or f"the file is malformed ({type(exc).__name__})"
                raise StructureFileError(f"{path}: cannot read a structure: {why}") from None
        for w in caught:
            logger.warning("%s: %s", path, w.message)
        label = path
    elif isinstance(structure, Structure):
        label = "structure"
    elif type(structure).__name__ == "Atoms":
        from pymatgen.io.ase import AseAtomsAdaptor

        checks.check_ordered(structure, "Atoms")
        structure, label = AseAtomsAdaptor.get_structure(structure), "Atoms"
    else:
        raise TypeError(f"expected a Structure, Atoms or a file path, got {type(structure).__name__}")
    if len(structure) == 0:
        raise StructureFileError(f"{label}: holds no atoms")
    checks.check_ordered(structure, label)
    structure = structure.copy()
    structure.remove_oxidation_states()
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    checks.check_finite(atoms, label)
    checks.check_contacts(atoms, label)
    return structure


def check_ion(structure: Structure, ion: str, label: str | None = None) -> str:
    """Raise MissingIonError if no site of ``structure`` holds element ``ion``.

    Args:
        structure: the structure.
        ion: element symbol, optionally with a charge ("Li", "Li+", "Li1+").
        label: the file it came from, for the message (default: its formula only).

    Returns:
        The element symbol ("Li").

    Raises:
        MissingIonError: no such element in the structure.
        ase_em.errors.SpeciesError: ``ion`` is not an element symbol.
    """
    ion = checks.normalize_species(ion)
    present = sorted({getattr(el, "symbol", str(el)) for el in structure.composition.elements})
    if ion not in present:
        where = structure.composition.reduced_formula
        where = f"{label} ({where})" if label else where
        raise MissingIonError(
            f"{where}: no {ion} in the structure "
            f"(elements: {', '.join(present)})"
        )
    return ion


# ---------------------------------------------------------------------- the graph


def label_migration_graph(
    mg: MigrationGraph,
    predictor: EmPredictor | None = None,
    *,
    min_length: float = DEFAULT_MIN_LENGTH,
    include_flagged: bool = False,
    progress: bool = False,
) -> MigrationGraph:
    """Predict Em for each unique hop of a MigrationGraph and write it on every edge.

    One prediction per entry of ``mg.unique_hops``; ``add_data_to_similar_edges`` gives
    every symmetry-equivalent edge the same ``em`` and ``em_std`` (eV; ``em_std`` is None
    for a single-member model), ``em_flags`` (the hop's domain flags, a list of
    :data:`ase_em.domain.FLAGS`) and ``em_flag_reasons`` (one sentence per flag). A hop
    whose straight path runs through a host atom gets ``em = inf`` and the reason in
    ``em_blocked``. Each edge's ``em_cost`` is its Em, or inf for a blocked hop and, unless
    ``include_flagged``, for a hop with a flag of :data:`ase_em.domain.EXCLUDING_FLAGS`;
    ``assign_cost_to_graph(["em_cost"])`` copies it to ``cost``, so
    ``mg.get_path(max_val=...)`` ranks paths by barrier through usable hops only.

    Args:
        mg: the migration graph (modified in place).
        predictor: the predictor (default: the shipped model).
        min_length: smallest supercell width (A) of the bands (module docstring).
        include_flagged: let hops outside the model's domain into path finding.
        progress: show a progress bar for the predictions.

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
    for label, result in zip(labels, predictor.predict(hops, progress=progress), strict=True):
        mg.add_data_to_similar_edges(
            label,
            {
                "em": result.em,
                "em_std": result.em_std,
                "em_flags": list(result.flags),
                "em_flag_reasons": list(result.reasons),
            },
        )
        if result.flags:
            logger.info("hop %s (%.2f A): %s", label, result.hop.length, result.warning())
    for label, reason in blocked.items():
        mg.add_data_to_similar_edges(
            label,
            {"em": math.inf, "em_std": None, "em_blocked": reason, "em_flags": [], "em_flag_reasons": []},
        )
    return set_path_costs(mg, include_flagged=include_flagged)


def set_path_costs(mg: MigrationGraph, *, include_flagged: bool = False) -> MigrationGraph:
    """Set ``em_cost`` and ``cost`` of every edge of a labelled graph (see :func:`label_migration_graph`).

    Args:
        mg: a graph labelled by :func:`label_migration_graph` (modified in place).
        include_flagged: give hops with a flag of :data:`ase_em.domain.EXCLUDING_FLAGS`
            their Em as cost instead of inf.

    Returns:
        ``mg`` itself.
    """
    from ase_em.domain import excluded

    for label, d in mg.unique_hops.items():
        usable = math.isfinite(d["em"]) and (include_flagged or not excluded(d.get("em_flags", ())))
        mg.add_data_to_similar_edges(label, {"em_cost": d["em"] if usable else math.inf})
        if usable and d["em"] < 0:
            logger.warning("hop %s: negative Em %.3f eV; get_path needs costs >= 0", label, d["em"])
    mg.assign_cost_to_graph(["em_cost"])
    return mg


def migration_graph_with_em(
    structure: StructureInput,
    migrating_specie: str,
    max_distance: float = DEFAULT_MAX_DISTANCE,
    predictor: EmPredictor | None = None,
    *,
    min_length: float = DEFAULT_MIN_LENGTH,
    symprec: float = DEFAULT_SYMPREC,
    empty_sites: bool | None = None,
    primitive: bool = True,
    progress: bool = False,
) -> MigrationGraph:
    """A MigrationGraph of all ion-ion hops up to ``max_distance``, labelled with Em.

    The graph is built on the primitive cell with its symmetry computed once
    (:func:`ase_em.structures.network.build_migration_graph`: seconds, not minutes, for a
    1000-atom supercell). With ``empty_sites``, candidate empty sites of the ion
    (:mod:`ase_em.structures.sites`) are nodes too: hops run from occupied sites into them,
    and a path occupied -> empty -> occupied costs the larger of its two barriers in
    ``get_path`` and the percolation analysis (``docs/pymatgen.md``, "Empty sites").

    Args:
        structure: the crystal with every site of the migrating ion occupied (Structure,
            Atoms or a structure file).
        migrating_specie: element of the migrating ion, e.g. "Li".
        max_distance: longest hop (A), as in ``MigrationGraph.with_distance``.
        predictor: the predictor (default: the shipped model).
        min_length: smallest supercell width (A) of the bands (module docstring).
        symprec: symmetry precision for grouping equivalent hops.
        empty_sites: add candidate empty sites of the ion (True), never (False), or only
            when no two occupied sites are within ``max_distance`` (None, the default).
        primitive: build the graph on the primitive cell (site indices and hop counts are
            then those of the primitive cell).
        progress: show progress bars for grouping the hops and for the predictions.

    Returns:
        The labelled graph (see :func:`label_migration_graph`); a
        :class:`ase_em.structures.network.HopGraph`, a ``MigrationGraph``.

    Raises:
        MissingIonError: the ion is not in the structure, or no hop is that short.
        StructureFileError: the structure file is unreadable or disordered.
    """
    from ase_em.structures.network import build_migration_graph

    struct = to_structure(structure)
    migrating_specie = check_ion(struct, migrating_specie)
    options = {"symprec": symprec, "primitive": primitive, "progress": progress}
    mg = build_migration_graph(
        struct, migrating_specie, max_distance, empty_sites=bool(empty_sites), **options
    )
    if empty_sites is None and mg.m_graph.graph.number_of_edges() == 0:
        logger.warning(
            "%s: no %s-%s hop shorter than %g A; adding candidate empty %s sites",
            struct.composition.reduced_formula, migrating_specie, migrating_specie, max_distance,
            migrating_specie,
        )
        mg = build_migration_graph(struct, migrating_specie, max_distance, empty_sites=True, **options)
    if mg.m_graph.graph.number_of_edges() == 0:
        raise MissingIonError(
            f"{struct.composition.reduced_formula}: no {migrating_specie}-{migrating_specie} hop "
            f"shorter than {max_distance} A{'' if empty_sites is False else ', also through empty sites'} "
            "(raise max_distance)"
        )
    return label_migration_graph(mg, predictor, min_length=min_length, progress=progress)


def _with_em_predictor(
    cls: type[MigrationGraph],
    structure: StructureInput,
    migrating_specie: str,
    max_distance: float = DEFAULT_MAX_DISTANCE,
    predictor: EmPredictor | None = None,
    *,
    empty_sites: bool | None = None,
    n_orderings: int = 5,
    seed: int = 0,
) -> MigrationGraph:
    """``MigrationGraph.with_distance`` labelled with Em: see :func:`migration_graph_with_em`.

    A structure with partial occupancies is ordered ``n_orderings`` times (seed ``seed``)
    and its graph carries the median over the orderings
    (:func:`ase_em.disordered_network.disordered_network`).
    """
    from ase_em.disordered_network import disordered_input, disordered_network  # it imports this module

    average = disordered_input(structure)
    if average is not None:
        return disordered_network(average, migrating_specie, max_distance=max_distance, predictor=predictor,
                                  n_orderings=n_orderings, seed=seed).graph
    return migration_graph_with_em(
        structure, migrating_specie, max_distance, predictor, empty_sites=empty_sites
    )


# The one place ase-em extends pymatgen-analysis-diffusion: a classmethod shim over the
# plain functions above, attached when this module is imported.
MigrationGraph.with_em_predictor = classmethod(_with_em_predictor)


def edge_table(mg: MigrationGraph) -> list[dict[str, Any]]:
    """The periodic edges of a labelled graph (for percolation and plots).

    Args:
        mg: a graph labelled by :func:`label_migration_graph`.

    Returns:
        One dict per edge: ``u``, ``v`` (site indices), ``to_jimage`` (3 ints, the cell
        of ``v``), ``label``, ``em`` (eV; inf when blocked), ``flags`` (tuple of domain
        flags), ``ipos_cart``, ``epos_cart`` ((3,) A).
    """
    return [
        {
            "u": int(u),
            "v": int(v),
            "to_jimage": tuple(int(x) for x in d["to_jimage"]),
            "label": d["hop_label"],
            "em": float(d["em"]),
            "flags": tuple(d.get("em_flags", ())),
            "ipos_cart": np.asarray(d["ipos_cart"], float),
            "epos_cart": np.asarray(d["epos_cart"], float),
        }
        for u, v, d in mg.m_graph.graph.edges(data=True)
    ]
