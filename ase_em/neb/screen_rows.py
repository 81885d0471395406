"""Refine the bottleneck hops of rows of a screening database (``ase-em screen --db``).

For each chosen row (status ``ok``, an ordered structure): the row's structure and ion
give the MigrationGraph again (``MigrationGraph.with_distance`` with the row's
``max_distance``), each unique hop gets the network's Em stored in the row's hop table
(matched by hop label and checked by length), and
:func:`ase_em.neb.on_graph.refine_bottlenecks` refines the hops that set the requested
percolation barriers. The results go back into the same row, beside the network's:
key-value pairs ``em_1d_refined`` / ``em_2d_refined`` / ``em_3d_refined`` (eV, the
percolation barriers with refined barriers where present), ``em_<d>d_combined`` (the same
with the combined barrier where present) and ``n_refined``; in the
row's data, ``refined`` (one dict per refined hop: its label and the
:meth:`~ase_em.neb.result.RefinedHop.to_dict` fields, ``em_combined`` and
``em_combined_std`` among them) and ``percolation_refined``. With a ``budget`` (``ase-em refine
--from DB --select auto --budget N``) only the N bottleneck hops over all rows that
:mod:`ase_em.neb.select` ranks first are refined, and the rows store ``chosen`` (each
choice's reason) too.

The network's percolation in the row may leave out hops flagged outside the model's
domain (``ase-em screen`` without ``--include-flagged``); the refined percolation uses
every hop, with refined barriers where present.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ase_em.errors import ScreenRowError
from ase_em.neb.combine import combine_result
from ase_em.neb.on_graph import COMBINED_KEY, label_refined, percolation_barriers_refined, refine_bottlenecks
from ase_em.neb.potentials import CalculatorLike
from ase_em.neb.select import DEFAULT_THRESHOLD, Choice, Rule, bottleneck_candidates, select_hops

logger = logging.getLogger(__name__)

LENGTH_TOLERANCE = 1e-3  # A: a rebuilt hop must have the stored hop's length


def refine_screen_rows(
    db_path: str | os.PathLike,
    ids: Sequence[int] | None = None,
    calculator: CalculatorLike = None,
    *,
    dimensions: Iterable[int] = (3,),
    workdir: str | os.PathLike | None = None,
    min_length: float | None = None,
    max_rounds: int = 3,
    workers: int = 1,
    threads: int = 1,
    budget: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    rule: Rule = "straddle",
    **options: Any,
) -> dict[int, dict[str, Any]]:
    """Refine the hops that set the percolation barriers of screening rows; store them there.

    Args:
        db_path: the screening database (``ase-em screen --db``).
        ids: row ids (default: every row with status ``ok``).
        calculator: the potential (see :mod:`ase_em.neb.potentials`).
        dimensions: percolation dimensions whose bottleneck hops are refined.
        workdir: parent of the checkpoints (``row<id>/``); a rerun resumes.
        min_length: smallest vacancy-supercell width (A) (default: as the network's).
        max_rounds: most rounds of :func:`~ase_em.neb.on_graph.refine_bottlenecks`.
        workers: worker processes over hops.
        threads: torch threads per worker.
        budget: ``--select auto``: refine at most this many hops over all the rows, the
            bottleneck hops ranked by :func:`ase_em.neb.select.rank_hops` (one round; the
            choice is logged with its reason). None: every bottleneck hop of every row,
            repeated until the bottlenecks are refined (``max_rounds``).
        threshold: decision threshold (eV) of the ``"straddle"`` rule.
        rule: ``"straddle"`` or ``"std"`` (:mod:`ase_em.neb.select`).
        **options: keyword options of :func:`ase_em.neb.refine` (``fmax``, ``steps``, ...).

    Returns:
        ``{row id: {"percolation_refined": {...}, "refined": {label: RefinedHop},
        "chosen": [Choice, ...]}}`` (``chosen``: the selected hops of that row, with
        ``budget``). Each refined hop carries the row's network Em and em_std and the
        combined barrier (:mod:`ase_em.neb.combine`).

    Raises:
        ScreenRowError: no such database or row, a row that is not ``ok``, a disordered
            row (no atoms), or a hop table that does not match the rebuilt graph.
    """
    from ase_em.screening.store import ResultStore

    path = Path(db_path)
    if not path.is_file():
        raise ScreenRowError(f"{path}: no such screening database")
    dims = tuple(dimensions)
    store = ResultStore(path)
    try:
        rows = store.rows(ids)
    except KeyError as exc:
        raise ScreenRowError(f"{path}: no row {exc.args[0]}") from None
    out = {}
    graphs = {row.id: _graph_of_row(path, row, min_length) for row in rows}
    chosen: dict[int, list[Choice]] = {}
    if budget is not None:
        candidates = [c for row in rows
                      for c in bottleneck_candidates(graphs[row.id], dims, key_prefix=(row.id,))]
        for choice in select_hops(candidates, budget, threshold=threshold, rule=rule):
            chosen.setdefault(choice.key[0], []).append(choice)
            logger.info("chosen: row %d hop %d: %s", choice.key[0], choice.key[1], choice.reason)
    for row in rows:
        mg = graphs[row.id]
        sub = None if workdir is None else Path(workdir) / f"row{row.id}"
        if budget is None:
            refined = refine_bottlenecks(
                mg, calculator, dimensions=dims, max_rounds=max_rounds, min_length=min_length,
                workers=workers, threads=threads, workdir=sub, **options,
            )
        elif row.id in chosen:
            refined = _refine_labels(mg, [c.key[1] for c in chosen[row.id]], calculator, min_length, sub,
                                     workers, threads, options)
        else:
            continue
        _with_network(mg, refined)
        label_refined(mg, refined)  # again, now with the combined barriers
        perc = percolation_barriers_refined(mg)
        perc_c = percolation_barriers_refined(mg, key=COMBINED_KEY)
        kv = {f"em_{d}d_refined": float(perc[d]) for d in dims if perc[d] is not None}
        kv.update({f"em_{d}d_combined": float(perc_c[d]) for d in dims if perc_c[d] is not None})
        kv["n_refined"] = len(refined)
        data = {
            "refined": [{"label": int(lab), **res.to_dict()} for lab, res in refined.items()],
            "percolation_refined": {f"{d}D": perc[d] for d in dims},
            "percolation_combined": {f"{d}D": perc_c[d] for d in dims},
            "chosen": [{"label": int(c.key[1]), "reason": c.reason, "score": c.score}
                       for c in chosen.get(row.id, [])],
        }
        store.update(row.id, data, **kv)
        logger.info("%s row %d (%s): refined %s", path, row.id, row.get("source"), kv)
        out[row.id] = {"percolation_refined": {d: perc[d] for d in dims}, "refined": refined,
                       "chosen": chosen.get(row.id, [])}
    return out


def _refine_labels(mg, labels, calculator, min_length, workdir, workers, threads, options):
    """Refine the hops ``labels`` of a graph (one round) and write them on its edges."""
    from ase_em.hops.migration_hop import DEFAULT_MIN_LENGTH, hop_from_migration_hop
    from ase_em.neb.batch import refine_many
    from ase_em.neb.on_graph import label_refined

    unique = mg.unique_hops  # a pymatgen property that walks every edge: read it once
    hops = [hop_from_migration_hop(unique[lab]["hop"], min_length=min_length or DEFAULT_MIN_LENGTH,
                                   name=f"hop_{lab}") for lab in labels]
    results = refine_many(hops, calculator, workers=workers, threads=threads, workdir=workdir, **options)
    refined = dict(zip(labels, results, strict=True))
    label_refined(mg, refined)
    return refined


def _with_network(mg: Any, refined: dict[int, Any]) -> None:
    """Each refined hop gets the network's Em and em_std of its edge, and the combined barrier."""
    first: dict[int, dict] = {}
    for _, _, d in mg.m_graph.graph.edges(data=True):
        first.setdefault(int(d["hop_label"]), d)
    for lab, res in refined.items():
        d = first.get(int(lab), {})
        em, std = d.get("em"), d.get("em_std")
        if em is not None and math.isfinite(em):
            res.em_network, res.em_network_std = float(em), None if std is None else float(std)
        combine_result(res)


def _graph_of_row(path: Path, row: Any, min_length: float | None) -> Any:
    """The row's MigrationGraph with the network's Em of the row's hop table on every edge."""
    from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph
    from pymatgen.io.ase import AseAtomsAdaptor

    from ase_em.config import NetworkOptions

    where = f"{path} row {row.id} ({row.get('source', '?')})"
    if row.get("status") != "ok":
        raise ScreenRowError(
            f"{where}: status {row.get('status')!r} ({row.get('reason', '')}): nothing to refine"
        )
    if row.natoms == 0 or not row.get("ordered", True):
        raise ScreenRowError(f"{where}: a disordered structure (no atoms in the row); refine hops of one of "
                             "its orderings with ase_em.refine instead")
    table = {int(h["label"]): h for h in (row.data or {}).get("hops", [])}
    if not table:
        raise ScreenRowError(f"{where}: no hop table in the row's data")
    structure = AseAtomsAdaptor.get_structure(row.toatoms())
    mg = MigrationGraph.with_distance(structure, row.ion, max_distance=float(row.max_distance),
                                      symprec=NetworkOptions.symprec)
    for label, d in mg.unique_hops.items():
        h = table.get(int(label))
        if h is None or abs(float(h["length"]) - d["hop"].length) > LENGTH_TOLERANCE:
            raise ScreenRowError(
                f"{where}: hop {label} ({d['hop'].length:.3f} A) of the rebuilt graph is not in the row's "
                "hop table; was it screened with another pymatgen version or symprec?"
            )
        em, std = h.get("em"), h.get("em_std")
        mg.add_data_to_similar_edges(label, {"em": math.inf if em is None else float(em),
                                             "em_std": None if std is None else float(std)})
    return mg
