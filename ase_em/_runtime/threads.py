"""How many torch CPU threads a command uses: ``--threads``, else ``ASE_EM_THREADS``, else 1.

Why 1 by default: torch starts one intra-op thread per physical core, and its threads
wait for each other at every operation. When other processes keep the cores busy, a
descheduled thread stalls the others: on the shared 2-core development machine one forward
of the shipped model on examples/LiFePO4 took a median of 16 s with 2 threads against
0.54 s with 1 (docs/benchmarks.md, "CPU threads", benchmarks/threads.py). One thread never
waits for another; a user with idle cores can ask for more.
"""

from __future__ import annotations

import os

from ase_em.errors import AseEmError

DEFAULT_THREADS = 1
THREADS_ENV = "ASE_EM_THREADS"


def resolve_threads(requested: int | None = None) -> int:
    """The number of torch CPU threads to use.

    Args:
        requested: an explicit number (``--threads``); None falls back to the environment
            variable ``ASE_EM_THREADS``, then to :data:`DEFAULT_THREADS`.

    Returns:
        A number >= 1.

    Raises:
        AseEmError: ``requested`` or ``ASE_EM_THREADS`` is not an integer >= 1.
    """
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise AseEmError(f"--threads must be an integer >= 1 (got {requested!r})")
        return requested
    text = os.environ.get(THREADS_ENV, "").strip()
    if not text:
        return DEFAULT_THREADS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise AseEmError(f"{THREADS_ENV}={text!r}: must be an integer >= 1")
    return value


def set_threads(requested: int | None = None) -> int:
    """Set torch's intra-op CPU threads (:func:`resolve_threads`) and return the number."""
    import torch

    n = resolve_threads(requested)
    torch.set_num_threads(n)
    return n
