"""Where the units run: local worker processes, or a Dask cluster.

* Local (default): a ``pebble.ProcessPool`` of ``workers`` processes, forked from a fork
  server that has imported torch and pymatgen once (:func:`worker_context`; a parent that
  has torch loaded is never forked). Each loads the model once (initializer) with one
  torch thread. pebble, not ``concurrent.futures``, because it enforces a per-task time-out
  by killing the worker and starting a new one, so a hung structure costs its time-out and
  nothing else; a worker that dies (segfault, out of memory) is replaced the same way.
* Dask: ``scheduler`` is a ``distributed.Client``, a ``LocalCluster`` (or any object with a
  ``scheduler_address``), a scheduler address (``tcp://host:8786``) or a scheduler file
  (JSON written by ``dask scheduler --scheduler-file``). Workers keep the model in a
  module-level cache (loaded by their first unit). The time-out is enforced inside the
  task (the unit runs in a thread that the task stops waiting for); the worker whose unit
  hung is then restarted through its nanny when it has one.

Both yield result records as they complete; only the caller (the main process) writes them.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from ase_em.errors import AseEmError
from ase_em.screening.work import STATUS_ERROR, STATUS_TIMEOUT, run_unit

logger = logging.getLogger(__name__)

IN_FLIGHT = 2  # units submitted ahead per worker (one running, one waiting)


def failure_record(unit: dict[str, Any], status: str, reason: str, *, seconds: float = 0.0,
                   model_name: str = "", max_distance: float = 5.0) -> dict[str, Any]:
    """A result record for a unit that returned nothing (time-out, lost worker)."""
    return {
        "source": unit["source"],
        "sha256": unit["sha256"],
        "ion": unit["ion"],
        "atoms": None,
        "key_value_pairs": {
            "status": status,
            "reason": reason,
            "seconds": float(seconds),
            "cpu_structure": 0.0,
            "cpu_model": 0.0,
            "n_orderings": 0,
            "max_distance": float(max_distance),
            "model": model_name,
        },
        "data": {},
        "startup": {},
    }


def run_local(units: Sequence[dict[str, Any]], *, workers: int, timeout: float | None, model_name: str,
              options: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Run units on local worker processes; yield records as they complete.

    Args:
        units: the units (see :func:`ase_em.screening.work.run_unit`).
        workers: number of worker processes.
        timeout: seconds one unit may take (None: no limit).
        model_name: the model's name (for rows of units that returned nothing).
        options: keyword arguments of :func:`ase_em.screening.work.run_unit` (model,
            max_distance, threads, n_orderings, seed).

    Yields:
        One record per unit.
    """
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures import TimeoutError as FutureTimeout

    from pebble import ProcessExpired, ProcessPool

    max_distance = options.get("max_distance", 5.0)
    pool = ProcessPool(max_workers=workers, initializer=_init_local,
                       initargs=(options.get("model"), options.get("threads", 1),
                                 logging.getLogger("ase_em").getEffectiveLevel(), options.get("compile")),
                       context=worker_context())
    todo = iter(units)
    pending: dict[Any, dict[str, Any]] = {}

    def submit(n: int) -> None:
        # A bounded queue (IN_FLIGHT per worker), not every unit at once: the workers never run
        # far ahead of the rows written, so a killed run loses at most the units in flight.
        for u in itertools.islice(todo, n):
            pending[pool.schedule(run_unit, args=(u,), kwargs=options, timeout=timeout)] = u

    try:
        submit(IN_FLIGHT * workers)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            submit(len(done))
            for fut in done:
                unit = pending.pop(fut)
                try:
                    yield fut.result()
                except FutureTimeout:
                    yield failure_record(unit, STATUS_TIMEOUT,
                                         f"no result within {timeout:g} s; worker replaced",
                                         seconds=timeout or 0.0, model_name=model_name,
                                         max_distance=max_distance)
                except ProcessExpired as exc:
                    yield failure_record(unit, STATUS_ERROR, f"worker died (exit code {exc.exitcode})",
                                         model_name=model_name, max_distance=max_distance)
                except Exception as exc:  # e.g. a pickling failure: that unit's row says so
                    yield failure_record(unit, STATUS_ERROR, f"{type(exc).__name__}: {exc}",
                                         model_name=model_name, max_distance=max_distance)
    finally:
        pool.stop()
        pool.join()


PRELOAD = "ase_em.screening.preload"  # what the fork server imports once for every worker


def worker_context() -> Any:
    """The multiprocessing context of local workers: a fork server that has the imports, else spawn.

    A spawned worker imports torch, pymatgen and pymatgen-analysis-diffusion itself (4-5 CPU
    s each, the start-up of every worker and of every replacement after a time-out). A fork
    server imports them once (:mod:`ase_em.screening.preload`: imports only, no torch
    operation, so no thread pool exists yet) and forks each worker from that single-threaded
    process; the parent, which may have run torch, is never forked. Outside Linux workers
    are spawned (Windows has no fork server; on macOS forking is unsafe for some system
    libraries, which is why Python spawns there by default).
    """
    import multiprocessing
    import sys

    if not sys.platform.startswith("linux") or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([PRELOAD])  # read when the server starts (the first worker)
    return ctx


def start_worker_server() -> None:
    """Start the fork server of :func:`worker_context` now, in the background (Linux only).

    Its imports (torch, pymatgen, pymatgen-analysis-diffusion: seconds) then run while this
    process reads and hashes the inputs and opens the database, instead of after; the pool's
    workers are forked from it as before. Elsewhere (spawned workers) it does nothing.
    """
    import multiprocessing.forkserver

    ctx = worker_context()
    if ctx.get_start_method() == "forkserver":
        multiprocessing.forkserver.ensure_running()


def _init_local(model: str | None, threads: int, log_level: int = logging.WARNING,
                compile: str | None = None) -> None:
    """Initializer of a local worker (module-level so that it pickles); logs at the parent's level."""
    from ase_em.screening.work import init_worker

    if log_level < logging.WARNING:  # a spawned process starts unconfigured (warnings only)
        logging.basicConfig(level=log_level, format="%(message)s")
        logging.getLogger("matplotlib").setLevel(logging.WARNING)

    init_worker(model, threads, compile)


def run_with_deadline(unit: dict[str, Any], options: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """The Dask task: :func:`run_unit`, given up after ``timeout`` seconds.

    The unit runs in a daemon thread; if it is still running at the deadline, the task
    returns a time-out record marked ``hung`` with this worker's address, so that the
    client can restart the worker.
    """
    import time

    threads = options.get("threads", 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if timeout is None:
        return run_unit(unit, **options)
    box: dict[str, Any] = {}

    def target() -> None:
        box["record"] = run_unit(unit, **options)

    from ase_em.screening.work import get_predictor

    get_predictor(options.get("model"), threads, options.get("compile"))  # outside the time-out, as locally
    t0 = time.perf_counter()
    thread = threading.Thread(target=target, daemon=True, name=f"ase-em {unit['source']}")
    thread.start()
    thread.join(timeout)
    if "record" in box:
        return box["record"]
    record = failure_record(unit, STATUS_TIMEOUT, f"no result within {timeout:g} s; worker restarted",
                            seconds=time.perf_counter() - t0, max_distance=options.get("max_distance", 5.0))
    record["hung"] = _worker_address()
    return record


def _worker_address() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().address
    except Exception:  # not on a Dask worker
        return None


def connect_client(scheduler: Any) -> tuple[Any, bool]:
    """A ``distributed.Client`` for ``scheduler``; and whether we opened it (then we close it)."""
    try:
        from distributed import Client
    except ImportError:
        raise AseEmError("--scheduler needs dask.distributed: pip install 'ase-em[cluster]'") from None

    if isinstance(scheduler, Client):
        return scheduler, False
    if hasattr(scheduler, "scheduler_address"):  # a LocalCluster or another cluster object
        return Client(scheduler), True
    text = os.fspath(scheduler)
    try:
        if os.path.isfile(text):
            return Client(scheduler_file=text, timeout=30), True
        if "://" not in text and not text.count(":") == 1:
            raise AseEmError(f"{text}: neither a scheduler file nor an address like tcp://host:8786")
        return Client(text, timeout=30), True
    except (OSError, TimeoutError, ValueError) as exc:
        if isinstance(exc, AseEmError):
            raise
        raise AseEmError(f"cannot reach the Dask scheduler {text}: {exc}") from None


def run_dask(units: Sequence[dict[str, Any]], *, scheduler: Any, timeout: float | None, model_name: str,
             options: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Run units on a Dask cluster; yield records as they complete (arguments as :func:`run_local`)."""
    from distributed import as_completed

    max_distance = options.get("max_distance", 5.0)
    client, own = connect_client(scheduler)
    try:
        todo = iter(enumerate(units))
        futures: dict[Any, dict[str, Any]] = {}

        def submit(n: int) -> list[Any]:
            new = []
            for i, u in itertools.islice(todo, n):  # bounded, as in run_local
                fut = client.submit(run_with_deadline, u, options, timeout, pure=False,
                                    key=f"ase-em-screen-{i}-{u['ion']}-{u['sha256'][:12]}")
                futures[fut] = u
                new.append(fut)
            return new

        n_threads = max(1, sum(client.nthreads().values()))
        queue = as_completed(submit(IN_FLIGHT * n_threads))
        for fut in queue:
            queue.update(submit(1))
            unit = futures.pop(fut)
            try:
                record = fut.result()
            except Exception as exc:  # the worker died on it repeatedly (KilledWorker) or similar
                record = failure_record(unit, STATUS_ERROR, f"{type(exc).__name__}: {exc}",
                                        model_name=model_name, max_distance=max_distance)
            hung = record.pop("hung", None)
            if hung:
                record["key_value_pairs"]["model"] = model_name
                try:
                    client.restart_workers([hung])
                except Exception as exc:  # no nanny (threads-only cluster): the thread runs on
                    logger.warning("could not restart Dask worker %s after a time-out: %s", hung, exc)
            yield record
    finally:
        if own:
            client.close()
