"""Barriers on a pymatgen-analysis-diffusion ``MigrationGraph``: labels and path costs.

* :func:`label_migration_graph` predicts once per entry of ``unique_hops`` (each
  ``MigrationHop`` becomes a :class:`ase_em.hops.hop.Hop` in the training data's vacancy
  supercell, :func:`ase_em.hops.migration_hop.hop_from_migration_hop`), writes ``em`` and
  ``em_std`` (eV) to every symmetry-equivalent edge with ``add_data_to_similar_edges`` and
  calls ``assign_cost_to_graph(["em_cost"])``, so that ``get_path`` ranks paths by barrier.
* :func:`migration_graph_with_em` builds the graph on the primitive cell
  (:func:`ase_em.crystals.hop_graph.build_migration_graph`, the hop groups of
  ``MigrationGraph.with_distance`` in about linear time) and labels it.
* :func:`edge_table` lists the periodic edges of a labelled graph.

``MigrationGraph.with_em_predictor`` is attached by :mod:`ase_em.ext.pymatgen`.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph

from ase_em.config import NetworkOptions
from ase_em.crystals.hop_graph import build_migration_graph
from ase_em.crystals.structure import StructureInput, check_ion, insertion_graph_message, to_structure
from ase_em.errors import ImplausibleHopError, MissingIonError, VacancySupercellError
from ase_em.hops.migration_hop import hop_from_migration_hop

if TYPE_CHECKING:
    from ase_em.predictor import EmPredictor

logger = logging.getLogger(__name__)

_DEFAULTS = NetworkOptions()


def label_migration_graph(
    mg: MigrationGraph,
    predictor: EmPredictor | None = None,
    *,
    min_length: float = _DEFAULTS.min_length,
    include_flagged: bool = False,
    progress: bool = False,
) -> MigrationGraph:
    """Predict Em for each unique hop of a MigrationGraph and write it on every edge.

    One prediction per entry of ``mg.unique_hops``; ``add_data_to_similar_edges`` gives
    every symmetry-equivalent edge the same ``em`` and ``em_std`` (eV; ``em_std`` is None
    for a single-member model), ``em_flags`` (the hop's domain flags, a list of
    :data:`ase_em.model.domain.FLAGS`) and ``em_flag_reasons`` (one sentence per flag). A hop
    whose straight path runs through a host atom gets ``em = inf`` and the reason in
    ``em_blocked``. Each edge's ``em_cost`` is its Em, or inf for a blocked hop and, unless
    ``include_flagged``, for a hop with a flag of :data:`ase_em.model.domain.EXCLUDING_FLAGS`;
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

    Raises:
        VacancySupercellError: the graph's structure holds two ion sites closer than
            ``checks.MIN_ION_PAIR_RATIO`` of their covalent sum: candidate sites of an
            insertion graph (pymatgen-analysis-diffusion's ``vac_mode=False`` built from the
            empty host plus every candidate site), which cannot all be filled as the
            vacancy bands need.
    """
    if len(mg.only_sites):
        ion = mg.only_sites[0].specie.symbol
        why = insertion_graph_message(
            mg.structure, ion, f"this MigrationGraph (vac_mode={mg.vac_mode}): its structure")
        if why is not None:
            raise VacancySupercellError(why)
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
        include_flagged: give hops with a flag of :data:`ase_em.model.domain.EXCLUDING_FLAGS`
            their Em as cost instead of inf.

    Returns:
        ``mg`` itself.
    """
    from ase_em.model.domain import excluded

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
    max_distance: float | None = None,
    predictor: EmPredictor | None = None,
    *,
    options: NetworkOptions | None = None,
    **keywords: Any,
) -> MigrationGraph:
    """A MigrationGraph of all ion-ion hops up to ``max_distance``, labelled with Em.

    The graph is built on the primitive cell with its symmetry computed once
    (:func:`ase_em.crystals.hop_graph.build_migration_graph`: seconds, not minutes, for a
    1000-atom supercell). With ``empty_sites``, candidate empty sites of the ion
    (:mod:`ase_em.crystals.empty_sites`) are nodes too: hops run from occupied sites into them,
    and a path occupied -> empty -> occupied costs the larger of its two barriers in
    ``get_path`` and the percolation analysis (``docs/pymatgen.md``, "Empty sites").

    Args:
        structure: the crystal with every site of the migrating ion occupied (Structure,
            Atoms or a structure file).
        migrating_specie: element of the migrating ion, e.g. "Li".
        max_distance: longest hop (A), as in ``MigrationGraph.with_distance`` (default: that
            of ``options``, 5 A).
        predictor: the predictor (default: the shipped model).
        options: the network settings (:class:`ase_em.config.NetworkOptions`; read here:
            ``max_distance``, ``min_length``, ``symprec``, ``empty_sites`` (None: only when
            no two occupied sites are within ``max_distance``), ``primitive``, ``progress``).
        **keywords: fields of NetworkOptions that replace those of ``options``.

    Returns:
        The labelled graph (see :func:`label_migration_graph`); a
        :class:`ase_em.crystals.hop_graph.HopGraph`, a ``MigrationGraph``.

    Raises:
        MissingIonError: the ion is not in the structure, or no hop is that short.
        StructureFileError: the structure file is unreadable or disordered.
    """
    if max_distance is not None:
        keywords["max_distance"] = max_distance
    opts = NetworkOptions.build(options, **keywords)
    max_distance, empty_sites = opts.max_distance, opts.empty_sites
    struct = to_structure(structure)
    migrating_specie = check_ion(struct, migrating_specie)
    options = {"symprec": opts.symprec, "primitive": opts.primitive, "progress": opts.progress}
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
    return label_migration_graph(mg, predictor, min_length=opts.min_length, progress=opts.progress)


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
