"""Refine several hops at once, in parallel over hops.

The same worker machinery as ``ase-em screen`` (:mod:`ase_em.screening.workers`): a
``pebble.ProcessPool`` of spawned processes (a parent that has torch loaded is never
forked), which enforces a per-task time-out by killing the worker and starting a new one.
Each worker builds its own potential (from a name or a factory; a calculator instance is
sent by pickling) with ``threads`` torch threads. Each hop refines in its own
sub-directory of ``workdir``, so a batch that was interrupted, or a hop that ran out of
time, resumes from its last NEB step on the next call.

Two limits per hop: ``time_limit`` (an option of :func:`ase_em.neb.refine`, checked
after each NEB step: the hop stops cleanly and reports "not converged") and
``hop_timeout`` (the pool kills a worker whose hop runs longer, e.g. a hung potential).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ase_em.errors import AseEmError
from ase_em.neb.combine import combine_result
from ase_em.neb.neb import _to_hop, refine
from ase_em.neb.potentials import CalculatorLike, make_calculator
from ase_em.neb.result import RefinedHop

if TYPE_CHECKING:
    from ase_em.predictor import EmPredictor

logger = logging.getLogger(__name__)


def hop_dirname(i: int, name: str | None) -> str:
    """The sub-directory of hop ``i``: its index and a file-safe form of its name."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name or "hop").strip("_.")[:60] or "hop"
    return f"{i:03d}_{safe}"


def refine_many(
    hops: Iterable[Any],
    calculator: CalculatorLike = None,
    *,
    workers: int = 1,
    threads: int = 1,
    hop_timeout: float | None = None,
    workdir: str | os.PathLike | None = None,
    predictor: EmPredictor | None = None,
    progress: bool = False,
    **options: Any,
) -> list[RefinedHop]:
    """Refine many hops, ``workers`` at a time.

    Args:
        hops: anything :func:`ase_em.neb.refine` accepts, one per hop.
        calculator: the potential (a name, a factory or an instance; see
            :mod:`ase_em.neb.potentials`); None for SevenNet-0.
        workers: worker processes (1: run in this process, one hop after the other).
        threads: torch threads of each worker process (``workers`` > 1).
        hop_timeout: seconds after which a worker's hop is killed (``workers`` > 1; None:
            no limit); the hop's result then says so and its checkpoint is kept.
        workdir: parent directory of the per-hop checkpoints (``000_<name>/``, ...); a
            second call with the same directory resumes.
        predictor: an EmPredictor: its Em and uncertainty are stored beside each result
            (predicted in this process, in one batch).
        progress: log one line per finished hop at INFO level.
        **options: the keyword options of :func:`ase_em.neb.refine` (``fmax``,
            ``steps``, ``n_images``, ``time_limit``, ...), the same for every hop.

    Returns:
        One :class:`RefinedHop` per hop, in input order. A hop whose refinement raised an
        ase-em error (bad input, a potential that cannot compute it) gets a result with
        NaN barriers and ``error`` set, and the others go on.

    Raises:
        AseEmError: a hop that is not a valid hop (checked for all hops before any NEB).
    """
    hop_list = [_to_hop(h) for h in hops]  # validate every hop first: no NEB time wasted
    for key in ("workdir", "predictor", "calculator", "name"):
        if key in options:
            raise TypeError(f"refine_many: {key!r} is set per batch, not in options")
    dirs = [None if workdir is None else Path(workdir) / hop_dirname(i, h.name)
            for i, h in enumerate(hop_list)]
    results: list[RefinedHop | None] = [None] * len(hop_list)
    t0 = time.perf_counter()

    def done(i: int, res: RefinedHop) -> None:
        results[i] = res
        if progress:
            n = sum(r is not None for r in results)
            logger.info("[%d/%d, %.0f s] %s", n, len(hop_list), time.perf_counter() - t0, res.summary())

    if workers <= 1:
        for i, hop in enumerate(hop_list):
            done(i, _refine_one(hop, calculator, dirs[i], None, options))  # this process: threads as they are
    else:
        for i, res in _run_pool(hop_list, calculator, dirs, workers, threads, hop_timeout, options):
            done(i, res)
    out = [r for r in results if r is not None]
    if predictor is not None:
        for res, net in zip(out, predictor.predict(hop_list), strict=True):
            res.em_network, res.em_network_std = net.em, net.em_std
            combine_result(res)
    return out


def _run_pool(hops, calculator, dirs, workers, threads, hop_timeout, options):
    """Yield (index, result) from a pebble pool of spawned workers, as hops finish."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures import TimeoutError as FutureTimeout

    from pebble import ProcessExpired, ProcessPool

    pool = ProcessPool(max_workers=workers, context=multiprocessing.get_context("spawn"))
    try:
        pending = {pool.schedule(_refine_one, args=(hop, calculator, dirs[i], threads, options),
                                 timeout=hop_timeout): i for i, hop in enumerate(hops)}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                i = pending.pop(fut)
                hop = hops[i]
                try:
                    yield i, fut.result()
                    continue
                except FutureTimeout:
                    why = f"no result within {hop_timeout:g} s; worker killed (rerun with the workdir)"
                except ProcessExpired as exc:
                    why = f"worker died (exit code {exc.exitcode})"
                except Exception as exc:  # e.g. a calculator that does not pickle
                    why = f"{type(exc).__name__}: {exc}"
                logger.warning("%s: %s", hop.name, why)
                yield i, RefinedHop.failed(hop.name or "hop", hop.ion, why)
    finally:
        pool.stop()
        pool.join()


def _refine_one(hop: Any, calculator: CalculatorLike, workdir: Path | None, threads: int | None,
                options: dict[str, Any]) -> RefinedHop:
    """One hop: build the potential, set threads (in a worker), refine; an input error: a failed result."""
    import sys

    t0 = time.perf_counter()
    try:
        calc = make_calculator(calculator, device=options.get("device"))
        if threads is not None and "torch" in sys.modules:  # a torch potential (not EMT, LJ, ...)
            sys.modules["torch"].set_num_threads(threads)
        return refine(hop, calc, workdir=workdir, **options)
    except AseEmError as exc:
        logger.warning("%s: refinement failed: %s", hop.name, exc)
        return RefinedHop.failed(hop.name or "hop", hop.ion, str(exc), seconds=time.perf_counter() - t0)


def results_table(results: Sequence[RefinedHop]) -> str:
    """A plain-text table of refined and network barriers, one row per hop."""
    head = f"{'hop':<28} {'Em fwd':>7} {'Em ref':>7} {'network':>14} {'conv':>5} {'steps':>5} {'s':>6}"
    rows = [head]
    for r in results:
        if r.error:
            rows.append(f"{r.name[:28]:<28} failed: {r.error}")
            continue
        net = "" if r.em_network is None else f"{r.em_network:.3f}"
        if r.em_network_std is not None:
            net += f"+-{r.em_network_std:.2f}"
        rows.append(f"{r.name[:28]:<28} {r.em_forward:7.3f} {r.em_reference:7.3f} {net:>14} "
                    f"{'yes' if r.converged else 'NO':>5} {r.steps:5d} {r.seconds:6.0f}")
    return "\n".join(rows)
