"""Refine the bottleneck hops of rows of a screening database (``ase-em screen --db``).

For each chosen row (status ``ok``, an ordered structure): the row's structure and ion
give the MigrationGraph again (``MigrationGraph.with_distance`` with the row's
``max_distance``), each unique hop gets the network's Em stored in the row's hop table
(matched by hop label and checked by length), and
:func:`ase_em.neb.on_graph.refine_bottlenecks` refines the hops that set the requested
percolation barriers. The results go back into the same row, beside the network's:
key-value pairs ``em_1d_refined`` / ``em_2d_refined`` / ``em_3d_refined`` (eV, the
percolation barriers with refined barriers where present) and ``n_refined``; in the
row's data, ``refined`` (one dict per refined hop: its label and the
:meth:`~ase_em.neb.result.RefinedHop.to_dict` fields) and ``percolation_refined``.

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
from ase_em.neb.on_graph import percolation_barriers_refined, refine_bottlenecks
from ase_em.neb.potentials import CalculatorLike

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
        **options: keyword options of :func:`ase_em.neb.refine` (``fmax``, ``steps``, ...).

    Returns:
        ``{row id: {"percolation_refined": {...}, "refined": {label: RefinedHop}}}``.

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
    for row in rows:
        mg = _graph_of_row(path, row, min_length)
        refined = refine_bottlenecks(
            mg, calculator, dimensions=dims, max_rounds=max_rounds, min_length=min_length, workers=workers,
            threads=threads, workdir=None if workdir is None else Path(workdir) / f"row{row.id}", **options,
        )
        perc = percolation_barriers_refined(mg)
        kv = {f"em_{d}d_refined": float(perc[d]) for d in dims if perc[d] is not None}
        kv["n_refined"] = len(refined)
        data = {
            "refined": [{"label": int(lab), **res.to_dict()} for lab, res in refined.items()],
            "percolation_refined": {f"{d}D": perc[d] for d in dims},
        }
        store.update(row.id, data, **kv)
        logger.info("%s row %d (%s): refined %s", path, row.id, row.get("source"), kv)
        out[row.id] = {"percolation_refined": {d: perc[d] for d in dims}, "refined": refined}
    return out


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
        em = h.get("em")
        mg.add_data_to_similar_edges(label, {"em": math.inf if em is None else float(em)})
    return mg
