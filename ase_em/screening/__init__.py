"""Screening: migration barriers of thousands of crystals into one resumable ASE database.

``ase_em.screening.screen(inputs, "Li", "results.db")`` (the module itself is callable too:
``ase_em.screen(...)``) reads every input structure in worker processes (or on a Dask
cluster), builds its hop network with :class:`ase_em.crystals.analyzer.MigrationBarrierAnalyzer`
and writes one row per structure and ion. See docs/screening.md.

Layout: ``inputs`` (find and checksum inputs), ``work`` (one unit in a worker),
``workers`` (local process pool or Dask), ``store`` (the ASE database: schema,
transactional writes, resume), ``run`` (:func:`screen`), ``report`` (ranked CSV and plots)
and ``cli`` (``ase-em screen`` and ``ase-em screen-report``).
"""

from __future__ import annotations

from ase_em.screening.inputs import Source, expand_inputs, read_keys_csv
from ase_em.screening.run import ScreenSummary, screen
from ase_em.screening.store import ResultStore

__all__ = ["ResultStore", "ScreenSummary", "Source", "expand_inputs", "read_keys_csv", "screen"]

