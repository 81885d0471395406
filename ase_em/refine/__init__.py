"""Screen, then refine: climbing-image NEB of the hops that matter, with an interatomic potential.

The network gives Em of every hop in milliseconds; ``ase_em.refine`` gives the few that
decide a material a climbing-image NEB with a universal interatomic potential
(SevenNet-0 by default, any ASE calculator otherwise), in minutes per hop::

    import ase_em

    result = ase_em.refine(("initial.vasp", "final.vasp"), workdir="neb-run")
    print(result.em_forward, result.converged)
    result.plot("profile.png")

Modules: :mod:`~ase_em.refine.neb` (one hop: endpoints, IDPP, CI-NEB, checkpoints),
:mod:`~ase_em.refine.calculators` (the potential), :mod:`~ase_em.refine.result`
(:class:`RefinedHop`, barrier definitions, plot), :mod:`~ase_em.refine.batch`
(:func:`refine_many`), :mod:`~ase_em.refine.graph` (refined barriers on a
``MigrationGraph`` and its percolation), :mod:`~ase_em.refine.cli` (``ase-em refine``).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from ase_em.refine.batch import refine_many, results_table
from ase_em.refine.calculators import CalculatorError, make_calculator
from ase_em.refine.neb import RefineSettingsError, endpoints_from_hop, refine
from ase_em.refine.result import RefinedHop

__all__ = [
    "CalculatorError",
    "RefineSettingsError",
    "RefinedHop",
    "endpoints_from_hop",
    "make_calculator",
    "refine",
    "refine_many",
    "results_table",
]


class _CallableModule(types.ModuleType):
    """``ase_em.refine`` is both this package and the function: calling it calls :func:`refine`.

    Importing the subpackage sets it as an attribute of ``ase_em``, which would hide the
    lazily exported function ``ase_em.refine``; a callable package keeps
    ``ase_em.refine(hop, ...)`` working whichever came first (as ``ase_em.finetune``).
    """

    def __call__(self, *args: Any, **kwargs: Any) -> RefinedHop:
        """Call :func:`ase_em.refine.neb.refine`."""
        return refine(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
