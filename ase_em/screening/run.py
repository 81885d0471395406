"""``screen``: barriers of many crystals into one resumable ASE database."""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ase_em.config import SCREEN_ORDERING_TOLERANCE, NetworkOptions
from ase_em.errors import AseEmError
from ase_em.screening.inputs import attach_keys, expand_inputs, read_keys_csv
from ase_em.screening.store import ResultStore
from ase_em.screening.work import STATUS_ERROR, STATUS_TIMEOUT

logger = logging.getLogger(__name__)


@dataclass
class ScreenSummary:
    """What a screen did.

    Attributes:
        db: the results database.
        n_units: units (structure, ion) found in the inputs.
        n_skipped: units already done (``resume``), not run again.
        n_run: units run now.
        status: ``{status: count}`` of the units run now.
        seconds: wall time of the whole call (s).
        startup_cpu: ``{worker: CPU s}`` of each worker's start-up (imports + model), where known.
        cpu_structure: CPU s of the units run now outside the network (sum over units).
        cpu_model: CPU s of the network's forward passes (sum over units).
    """

    db: str
    n_units: int = 0
    n_skipped: int = 0
    n_run: int = 0
    status: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    startup_cpu: dict[str, float] = field(default_factory=dict)
    cpu_structure: float = 0.0
    cpu_model: float = 0.0


def _model_name(model: str | None) -> str:
    """The model's name from its card (read without loading torch weights)."""
    import json

    from ase_em.model.weights import resolve

    try:
        card = json.loads((resolve(model) / "card.json").read_text())
    except (OSError, ValueError) as exc:
        raise AseEmError(f"{model}: unreadable model card ({exc})") from None
    return str(card.get("name", resolve(model).name))


def _resumed_model(done: dict[tuple[str, str], tuple[str, str, str, int]]) -> str:
    """The model of a screen given no ``model``.

    That of the rows being resumed when they all name one shipped model (a screen started
    under an earlier default is finished with it, not redone), else
    :data:`ase_em.model.weights.SCREEN_MODEL`.
    """
    from ase_em.model.weights import SCREEN_MODEL, available_models

    names = {old_model for _, old_model, _, _ in done.values()}
    if len(names) == 1 and (name := names.pop()) in available_models():
        if name != SCREEN_MODEL:
            logger.info("screen: resuming with the rows' model %s", name)
        return name
    return SCREEN_MODEL


# Units per local worker from which the workers compile the model from their first hop; below
# it they never compile. With the distilled model the forward is a third of a unit's CPU, and
# compiling saves about 14 ms a unit of the OBELiX screen (254 CIFs in one process, one thread:
# 85.3 -> 81.8 CPU s after the first unit), against about 2 CPU s to compile once the kernels
# are on disk and 17 s the first time on a machine (docs/benchmarks.md): it pays after about
# 140 units a worker when warm and 1,200 when cold. The 254-CIF screen with 2 workers (127
# each) took 49.6 s twice without compiling and 53.6 and 51.3 s compiling from its first hop.
COMPILE_UNITS_PER_WORKER = 1500


def screen_compile_mode(n_units: int, n_workers: int) -> str | None:
    """The local workers' compile mode: "always" from :data:`COMPILE_UNITS_PER_WORKER` a worker, else "never".

    None (the predictor's own rule) when ``ASE_EM_COMPILE`` is set: the user's setting wins.
    """
    if os.environ.get("ASE_EM_COMPILE"):
        return None
    return "always" if n_units >= COMPILE_UNITS_PER_WORKER * n_workers else "never"


def screen(
    inputs: Iterable[str | os.PathLike] | str | os.PathLike,
    ions: Sequence[str] | str,
    db: str | os.PathLike,
    *,
    workers: int | None = None,
    scheduler: Any = None,
    timeout: float | None = None,
    resume: bool = False,
    retry: bool = False,
    model: str | None = None,
    max_distance: float = 5.0,
    n_orderings: int = 5,
    ordering_tolerance: float | None = SCREEN_ORDERING_TOLERANCE,
    seed: int = 0,
    keys: str | os.PathLike | None = None,
    keys_id: str = "id",
    threads: int = 1,
    progress: bool = True,
    allow_no_host: bool = False,
) -> ScreenSummary:
    """Barriers of every input structure and ion, one database row each.

    Args:
        inputs: structure files, folders (searched recursively), path lists (``.txt``) or ASE
            databases (``.db``); see :mod:`ase_em.screening.inputs`.
        ions: migrating ion(s), e.g. ``"Li"`` or ``["Li", "Na"]``; a structure without the
            ion gets a ``refused`` row.
        db: the results database (ASE SQLite ``.db``; schema in :mod:`ase_em.screening.store`).
        workers: local worker processes (default: ``os.cpu_count()``, at most 8).
        scheduler: run on a Dask cluster instead: a ``distributed.Client``, a cluster object,
            an address (``tcp://host:8786``) or a scheduler file.
        timeout: seconds one structure may take in its worker; then its row gets status
            ``timeout`` and the worker is replaced (None: no limit).
        resume: finish a database that already has rows: units whose row has the same
            source, ion, sha256 and model are skipped; a changed file is redone.
        retry: with ``resume``, also redo units whose row is ``error`` or ``timeout``.
        model: model directory or shipped name (default: ``alignn-em-v1-distilled``, the
            shipped ensemble distilled into one network: a fifth of the model's cost, barriers
            0.04 eV from the ensemble's on OBELiX; ``"alignn-em-v1"`` for the ensemble itself).
            A resume without ``model`` keeps the model of the rows it finishes when they all
            name one shipped model.
        max_distance: longest ion-ion hop (A).
        n_orderings: orderings drawn for a disordered structure (partial occupancies; see
            :mod:`ase_em.crystals.disordered`); an ordered one is used as it is. With
            ``ordering_tolerance``, the most drawn.
        ordering_tolerance: orderings are drawn until every hop's barrier has settled to
            this standard error (eV; :func:`ase_em.crystals.disordered.barriers_settled`),
            at least two, at most ``n_orderings``; None draws all ``n_orderings``.
        seed: seed of the first ordering.
        keys: CSV file of extra per-structure keys, matched by ``keys_id`` to the file stem.
        keys_id: the id column of ``keys``.
        threads: torch threads per worker.
        progress: show a progress bar (rate, ETA) on stderr.
        allow_no_host: screen structures without a host framework (every site the ion: an
            elemental metal, e.g. to refine its vacancy hops with a potential) instead of
            giving them a ``refused`` row; their hops are flagged ``no_host_framework``.

    Returns:
        A :class:`ScreenSummary`.

    Raises:
        AseEmError: missing inputs, a database that already has rows without ``resume``,
            an unreadable keys file or model card. Problems of single structures never
            raise: they become rows with status ``refused``, ``error`` or ``timeout``.
    """
    from tqdm import tqdm

    from ase_em.screening.workers import run_dask, run_local, start_worker_server

    t0 = time.perf_counter()
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    ion_list = [ions] if isinstance(ions, str) else list(ions)
    if not ion_list:
        raise AseEmError("no ion given (e.g. --ion Li)")
    NetworkOptions.build(n_orderings=n_orderings, ordering_tolerance=ordering_tolerance)  # refuses bad values
    if timeout is not None and timeout <= 0:
        raise AseEmError(f"timeout must be positive, got {timeout}")
    from ase_em._runtime.folders import check_file_target

    check_file_target(db, role="--db")  # before any work: the results must have a place to go
    if scheduler is None:
        start_worker_server()  # the workers' imports overlap the reading of the inputs
    sources = expand_inputs(inputs)
    if keys is not None:
        sources = attach_keys(sources, read_keys_csv(keys, keys_id))
    store = ResultStore(db)
    n_rows = len(store)
    if n_rows and not resume:
        raise AseEmError(f"{store.path}: already holds {n_rows} rows; give --resume to finish it, "
                         "or another --db")
    done = store.done() if resume else {}
    if model is None:
        model = _resumed_model(done)
    model_name = _model_name(model)
    units, replace, extra = [], {}, {}
    n_skipped = 0
    for s in sources:
        for ion in ion_list:
            old = done.get((s.source, ion))
            if old is not None:
                sha, old_model, status, row_id = old
                redo = retry and status in (STATUS_ERROR, STATUS_TIMEOUT)
                if sha == s.sha256 and old_model == model_name and not redo:
                    n_skipped += 1
                    continue
                replace[(s.source, ion)] = [row_id]  # changed file or model: redone, old row replaced
            unit = {"source": s.source, "sha256": s.sha256, "ion": ion, "path": s.path, "atoms": s.atoms,
                    "block": s.block}
            units.append(unit)
            extra[(s.source, ion)] = s.keys
    summary = ScreenSummary(db=store.path, n_units=n_skipped + len(units), n_skipped=n_skipped)
    if not units:
        summary.seconds = time.perf_counter() - t0
        return summary
    options = {"model": model, "max_distance": float(max_distance), "threads": int(threads),
               "n_orderings": int(n_orderings), "ordering_tolerance": ordering_tolerance, "seed": int(seed),
               "allow_no_host": bool(allow_no_host)}
    if scheduler is not None:
        records = run_dask(units, scheduler=scheduler, timeout=timeout, model_name=model_name,
                           options=options)
    else:
        n = max(1, min(workers or min(os.cpu_count() or 1, 8), len(units)))
        options["compile"] = screen_compile_mode(len(units), n)
        records = run_local(units, workers=n, timeout=timeout, model_name=model_name, options=options)
    counts: Counter[str] = Counter()
    bar = tqdm(total=len(units), unit="structure", desc="screen", disable=not progress or None,
               dynamic_ncols=True)
    try:
        for record in records:
            key = (record["source"], record["ion"])
            store.write(record, extra.get(key), replace=replace.get(key, ()))
            kv = record["key_value_pairs"]
            counts[kv["status"]] += 1
            summary.cpu_structure += kv.get("cpu_structure", 0.0)
            summary.cpu_model += kv.get("cpu_model", 0.0)
            startup = record.get("startup") or {}
            if "cpu" in startup and "worker" in record:
                summary.startup_cpu[record["worker"]] = startup["cpu"]
            bar.update(1)
            bar.set_postfix(dict(sorted(counts.items())), refresh=False)
    finally:
        bar.close()
        if hasattr(records, "close"):
            records.close()  # stops the pool on an interrupt
    summary.n_run = sum(counts.values())
    summary.status = dict(counts)
    summary.seconds = time.perf_counter() - t0
    return summary
