"""One unit of screening work, run in a worker: structure + ion -> one result record.

:func:`run_unit` never raises for bad input: it returns a record whose ``status`` says
what happened (``ok``, ``refused`` for input the model cannot take, ``error`` for a
failure of ours). The record is plain data (picklable) that the main process writes as
one ASE database row (:mod:`ase_em.screening.store`).

The predictor is loaded once per worker process and kept (:func:`get_predictor`).
Times are CPU seconds of the calling thread (``time.thread_time``), split into the
network's forward passes (``cpu_model``) and everything else (``cpu_structure``: reading,
symmetry, hop finding, band and graph building, percolation).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

logger = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_REFUSED = "refused"
STATUS_ERROR = "error"
STATUS_TIMEOUT = "timeout"

_PREDICTORS: dict[tuple[str | None, int, str | None], Any] = {}
STARTUP: dict[str, float] = {}  # CPU and wall seconds of this worker's start-up (imports + model)


def _timed_predictor_class() -> type:
    """An EmPredictor that counts the CPU time of its forward passes (defined lazily: torch)."""
    from ase_em.predictor import EmPredictor

    class TimedPredictor(EmPredictor):
        """EmPredictor with ``cpu_total`` (predict) and ``cpu_graph`` (band + graph) counters."""

        cpu_total = 0.0
        cpu_graph = 0.0

        def graph(self, hop):  # noqa: D102
            t = time.thread_time()
            try:
                return super().graph(hop)
            finally:
                self.cpu_graph += time.thread_time() - t

        def predict(self, hops, *, progress=False):  # noqa: D102
            t = time.thread_time()
            try:
                return super().predict(hops, progress=progress)
            finally:
                self.cpu_total += time.thread_time() - t

    return TimedPredictor


def get_predictor(model: str | None = None, threads: int = 1, compile: str | None = None) -> Any:
    """The worker's predictor for ``model`` (loaded on first use, then kept).

    Args:
        model: model directory or shipped name (None: the shipped default).
        threads: torch CPU threads of this worker.
        compile: the predictor's compile mode (None: ``ASE_EM_COMPILE``, else "auto"; see
            :class:`ase_em.predictor.EmPredictor`).

    Returns:
        The predictor (an :class:`ase_em.predictor.EmPredictor`).
    """
    key = (model, threads, compile)
    if key not in _PREDICTORS:
        cpu, wall = time.process_time(), time.perf_counter()
        import torch

        torch.set_num_threads(threads)
        import ase_em.crystals.analyzer  # noqa: F401  (pymatgen, alignn: imported here, not in the first unit)

        _PREDICTORS[key] = _timed_predictor_class().from_pretrained(model, compile=compile)
        STARTUP["cpu"] = STARTUP.get("cpu", 0.0) + time.process_time() - cpu
        STARTUP["wall"] = STARTUP.get("wall", 0.0) + time.perf_counter() - wall
    return _PREDICTORS[key]


def init_worker(model: str | None, threads: int, compile: str | None = None) -> None:
    """Process-pool initializer: one thread per worker, the model loaded once."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    get_predictor(model, threads, compile)


def read_structure(path: str, block: str | None = None) -> Any:
    """A pymatgen Structure from a structure file, partial occupancies kept.

    Extended XYZ goes through ASE; everything else through
    :func:`ase_em.crystals.structure.read_structure_file` (``block``: a CIF data block).

    Raises:
        StructureFileError: unreadable file, no atoms, or (extended XYZ) no periodic cell.
    """
    from ase_em.crystals.disordered import read_average_structure
    from ase_em.crystals.structure import to_structure
    from ase_em.errors import StructureFileError

    if path.lower().endswith((".xyz", ".extxyz")):
        from ase.io import read

        try:
            atoms = read(path, index=0)
        except Exception as exc:  # ASE raises many types for unreadable files
            raise StructureFileError(f"{path}: cannot read a structure: {exc}") from None
        if not atoms.pbc.all() or atoms.cell.rank < 3:
            raise StructureFileError(f"{path}: no periodic cell (give Lattice= in the extended XYZ header)")
        return to_structure(atoms)
    return read_average_structure(path, block=block)


# Barrier draws for the std keys of a screening row (log10_sigma_300_std, activation_energy_std).
# The central values come from the undrawn network and do not depend on it. On the 247
# networks of the OBELiX screen, 50 draws instead of 100 halve the conductivity's CPU (8.5 ->
# 4.3 s, 6 % of the screen) and move the two stds by 5.6 % (median; 90th percentile 12 %),
# their own sampling error (about 1/sqrt(2 (n - 1)): 7 % at 100 draws, 10 % at 50);
# `ase-em conductivity` keeps 200 (docs/conductivity.md).
CONDUCTIVITY_SAMPLES = 50


def _conductivity_keys(analyzer: Any, seed: int) -> dict[str, float]:
    """``log10_sigma_300`` (S/cm), its std, ``activation_energy`` (eV) and its std; {} without percolation.

    :meth:`ase_em.crystals.analyzer.MigrationBarrierAnalyzer.conductivity` at 300 K (Arrhenius
    fit 250-500 K, nu 1e13 Hz, :data:`CONDUCTIVITY_SAMPLES` draws); a network it cannot take
    (no usable hop, no default charge of the ion) leaves the keys out, not the row.
    """
    from ase_em.errors import AseEmError

    try:
        res = analyzer.conductivity([300.0], n_samples=CONDUCTIVITY_SAMPLES, seed=seed)
    except AseEmError as exc:
        logger.info("no conductivity: %s", exc)
        return {}
    out = {}
    if math.isfinite(res.log10_sigma[0]):
        out["log10_sigma_300"] = float(res.log10_sigma[0])
        if res.log10_sigma_std is not None and math.isfinite(res.log10_sigma_std[0]):
            out["log10_sigma_300_std"] = float(res.log10_sigma_std[0])
    if res.activation_energy is not None:
        out["activation_energy"] = float(res.activation_energy)
        if res.activation_energy_std is not None:
            out["activation_energy_std"] = float(res.activation_energy_std)
    return out


_Network = tuple[list[Any], dict[int, float | None], dict[int, float | None], int, bool, dict[str, float]]


def _network(structure: Any, ion: str, predictor: Any, max_distance: float, n_orderings: int,
             seed: int, ordering_tolerance: float | None = None) -> _Network:
    """Hop rows, percolation barriers, spread, orderings, empty sites added, conductivity keys.

    The conductivity keys: :func:`_conductivity_keys`.

    Empty sites: ``empty_sites=None`` of the analyzer (added when the occupied sites alone
    have no hop or do not percolate).

    :class:`ase_em.crystals.analyzer.MigrationBarrierAnalyzer`, as ``ase-em network``: an ordered
    structure as it is (spread empty, 1 ordering); a disordered one through
    ``n_orderings`` seeded orderings (median; :mod:`ase_em.crystals.disordered`), or as
    many as settle the barriers to ``ordering_tolerance`` (eV).
    """
    from ase_em.crystals.analyzer import MigrationBarrierAnalyzer

    analyzer = MigrationBarrierAnalyzer(structure, ion, max_distance=max_distance, predictor=predictor,
                                        n_orderings=n_orderings, ordering_tolerance=ordering_tolerance,
                                        seed=seed)
    disorder = getattr(analyzer, "disorder", None)
    empty = bool(analyzer.has_empty_sites)
    sigma = _conductivity_keys(analyzer, seed)
    if disorder is None:
        return analyzer.hops, analyzer.percolation, {}, 1, empty, sigma
    spread = dict(disorder.percolation_spread)
    return analyzer.hops, analyzer.percolation, spread, int(disorder.n_orderings), empty, sigma


def _one_line(exc: BaseException) -> str:
    """The exception as one line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) < 500 else text[:497] + "..."


def _bottleneck_std(rows: list[Any], em: float | None) -> float | None:
    """em_std of the hop whose barrier is the percolation barrier ``em`` (largest if tied)."""
    if em is None:
        return None
    stds = [r.em_std for r in rows if r.em is not None and r.em == em and r.em_std is not None
            and getattr(r, "used", True)]
    return max(stds) if stds else None


def _bottleneck_flags(rows: list[Any], em: float | None) -> list[str]:
    """Domain flags of the hops whose barrier is ``em`` (the bottleneck of a percolation barrier)."""
    if em is None:
        return []
    return sorted({str(f) for r in rows if r.em is not None and r.em == em and getattr(r, "used", True)
                   for f in (getattr(r, "flags", None) or ())})


class _Collect(logging.Handler):
    """Keeps the log records of one unit."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:  # noqa: D102
        self.records.append(record)


@contextlib.contextmanager
def _one_line_per_unit(source: str, ion: str) -> Iterator[None]:
    """Log one line per structure: its warnings are counted in one line, the details at DEBUG.

    A screen of many structures would otherwise write a line per blocked hop and per
    ordering to stderr. The package's log records (and Python warnings of the libraries)
    of the unit are collected; afterwards each is re-logged at DEBUG (``ase-em -vv``), and
    if any was a warning one line at WARNING says how many and gives the first.
    """
    pkg = logging.getLogger("ase_em")
    handler, propagate = _Collect(), pkg.propagate
    pkg.addHandler(handler)
    pkg.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        pkg.removeHandler(handler)
        pkg.propagate = propagate
        lines = [(r.levelno, r.getMessage()) for r in handler.records]
        lines += [(logging.DEBUG, f"{w.category.__name__}: {w.message}") for w in caught]
        for _, text in lines:
            logger.debug("%s (%s): %s", source, ion, text)
        warned = [text for level, text in lines if level >= logging.WARNING]
        if warned:
            first = warned[0] if len(warned[0]) < 200 else warned[0][:197] + "..."
            more = f" ({len(warned)} warnings; ase-em -vv lists them)" if len(warned) > 1 else ""
            logger.warning("%s (%s): %s%s", source, ion, first, more)


def run_unit(unit: dict[str, Any], model: str | None = None, max_distance: float = 5.0,
             threads: int = 1, n_orderings: int = 5, seed: int = 0,
             allow_no_host: bool = False, ordering_tolerance: float | None = None,
             compile: str | None = None) -> dict[str, Any]:
    """Barriers of one structure and ion (its log: one line, :func:`_one_line_per_unit`).

    Args:
        unit: ``{"source", "sha256", "ion", "path" or "atoms", "block", "keys"}``
            (see :class:`ase_em.screening.inputs.Source`).
        model: model directory or shipped name.
        max_distance: longest ion-ion hop (A).
        threads: torch threads of this worker.
        n_orderings: orderings of a disordered structure (partial occupancies); with
            ``ordering_tolerance``, the most drawn.
        seed: seed of the first ordering.
        allow_no_host: screen a structure whose every site holds only the ion (an elemental
            metal, for a refinement with a potential) instead of refusing it; its hops are
            flagged ``no_host_framework``.
        ordering_tolerance: draw orderings until every hop's barrier has settled to this
            standard error (eV), at most ``n_orderings``; None: all of them.
        compile: the worker's compile mode (:func:`get_predictor`).

    Returns:
        ``{"source", "sha256", "ion", "atoms", "key_value_pairs", "data"}``: the row to
        write. ``key_value_pairs`` holds ``status`` and, unless ok, a one-line ``reason``.
    """
    with _one_line_per_unit(str(unit.get("source")), str(unit.get("ion"))):
        return _run_unit(unit, model, max_distance, threads, n_orderings, seed, allow_no_host,
                         ordering_tolerance, compile)


def _run_unit(unit: dict[str, Any], model: str | None, max_distance: float, threads: int,
              n_orderings: int, seed: int, allow_no_host: bool,
              ordering_tolerance: float | None, compile: str | None) -> dict[str, Any]:
    from ase_em.errors import AseEmError

    wall0, cpu0 = time.perf_counter(), time.thread_time()
    kv: dict[str, Any] = {"n_orderings": 0, "max_distance": float(max_distance)}
    data: dict[str, Any] = {}
    atoms = None
    predictor = None
    try:
        predictor = get_predictor(model, threads, compile)
        kv["model"] = predictor.name
        kv["model_version"] = str(predictor.card.get("version", ""))
        cpu_model0 = predictor.cpu_total - predictor.cpu_graph
        from pymatgen.io.ase import AseAtomsAdaptor

        from ase_em.crystals.structure import check_host, check_ion, to_structure

        if unit.get("path") is not None:
            structure = read_structure(unit["path"], unit.get("block"))
        else:
            structure = to_structure(unit["atoms"])
        kv["reduced_formula"] = structure.composition.reduced_formula
        kv["n_sites"] = len(structure)
        kv["ordered"] = bool(structure.is_ordered)
        if structure.is_ordered:
            atoms = AseAtomsAdaptor.get_atoms(structure)
        else:  # ASE Atoms hold no partial occupancies: the average structure goes into data
            data["average_structure"] = structure.as_dict()
        ion = check_ion(structure, unit["ion"])
        if not allow_no_host:
            check_host(structure, ion)  # a file of ion sites alone: refused, not an empty "ok" row
        rows, perc, spread, kv["n_orderings"], kv["empty_sites"], sigma = _network(
            structure, unit["ion"], predictor, max_distance, n_orderings, seed, ordering_tolerance)
        if not kv["ordered"] and ordering_tolerance is not None:
            kv["ordering_tolerance"] = float(ordering_tolerance)
        kv.update(sigma)
        for d, e in perc.items():
            if e is not None:
                kv[f"em_{d}d"] = float(e)
                std = _bottleneck_std(rows, e)
                std = spread.get(d) if std is None else std
                if std is not None:
                    kv[f"em_{d}d_std"] = float(std)
                if bottleneck := _bottleneck_flags(rows, e):
                    kv[f"em_{d}d_flags"] = ",".join(bottleneck)
        open_rows = [r for r in rows if r.em is not None]
        if open_rows:
            low = min(open_rows, key=lambda r: r.em)
            kv["em_min"] = float(low.em)
            if low.em_std is not None:
                kv["em_min_std"] = float(low.em_std)
            kv["em_min_length"] = float(low.length)
            if low.flags:
                kv["em_min_flags"] = ",".join(sorted(str(f) for f in low.flags))
        kv["n_hops"] = len(rows)
        kv["n_blocked"] = len(rows) - len(open_rows)
        flags = sorted({str(f) for r in rows for f in (getattr(r, "flags", None) or ())})
        kv["n_flags"] = len(flags)
        if flags:
            kv["flags"] = ",".join(flags)
        data["hops"] = [asdict(r) for r in rows]
        data["percolation"] = {f"{d}D": e for d, e in perc.items()}
        kv["status"] = STATUS_OK
        kv["cpu_model"] = predictor.cpu_total - predictor.cpu_graph - cpu_model0
    except AseEmError as exc:
        kv["status"], kv["reason"] = STATUS_REFUSED, _one_line(exc)
    except Exception as exc:  # one bad structure must never stop the run: it gets an error row
        kv["status"], kv["reason"] = STATUS_ERROR, f"{type(exc).__name__}: {_one_line(exc)}"
        data["traceback"] = traceback.format_exc(limit=8)
        logger.warning("error: %s", kv["reason"])
    kv["seconds"] = time.perf_counter() - wall0
    cpu = time.thread_time() - cpu0
    kv.setdefault("cpu_model", 0.0)
    kv["cpu_structure"] = max(cpu - kv["cpu_model"], 0.0)
    return {
        "source": unit["source"],
        "sha256": unit["sha256"],
        "ion": unit["ion"],
        "atoms": atoms,
        "key_value_pairs": kv,
        "data": data,
        "startup": dict(STARTUP),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
