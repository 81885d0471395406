"""Screening: migration barriers of thousands of crystals into one resumable ASE database.

``ase_em.screen.screen(inputs, "Li", "results.db")`` (the module itself is callable too:
``ase_em.screen(...)``) reads every input structure in worker processes (or on a Dask
cluster), builds its hop network with :class:`ase_em.analysis.MigrationBarrierAnalyzer`
and writes one row per structure and ion. See docs/screening.md.

Layout: ``inputs`` (find and checksum inputs), ``work`` (one unit in a worker),
``workers`` (local process pool or Dask), ``store`` (the ASE database: schema,
transactional writes, resume), ``run`` (:func:`screen`), ``report`` (ranked CSV and plots)
and ``cli`` (``ase-em screen`` and ``ase-em screen-report``).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from ase_em.screen.inputs import Source, expand_inputs, read_keys_csv
from ase_em.screen.run import ScreenSummary, screen
from ase_em.screen.store import ResultStore

__all__ = ["ResultStore", "ScreenSummary", "Source", "expand_inputs", "read_keys_csv", "screen"]


class _CallableModule(types.ModuleType):
    """A module that, called, runs :func:`screen`.

    ``ase_em.screen`` is both this subpackage and, lazily exported, the function; calling
    the module calls :func:`screen`, so both spellings work after either import.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> ScreenSummary:
        return screen(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
