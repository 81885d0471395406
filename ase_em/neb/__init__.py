"""Screen, then refine: climbing-image NEB of the hops that matter, with an interatomic potential.

The network gives Em of every hop in milliseconds; ``ase_em.refine`` gives the few that
decide a material a climbing-image NEB with a universal interatomic potential
(SevenNet-0 by default, any ASE calculator otherwise), in minutes per hop::

    import ase_em

    result = ase_em.refine(("initial.vasp", "final.vasp"), workdir="neb-run")
    print(result.em_forward, result.converged)
    result.plot("profile.png")

Modules: :mod:`~ase_em.neb.neb` (one hop: endpoints, IDPP, CI-NEB, checkpoints),
:mod:`~ase_em.neb.potentials` (the potential), :mod:`~ase_em.neb.result`
(:class:`RefinedHop`, barrier definitions, plot), :mod:`~ase_em.neb.batch`
(:func:`refine_many`), :mod:`~ase_em.neb.combine` (one barrier from the network's and
the NEB's), :mod:`~ase_em.neb.select` (which hops to refine), :mod:`~ase_em.neb.on_graph`
(refined barriers on a ``MigrationGraph`` and its percolation), :mod:`~ase_em.cli.refine` (``ase-em refine``).
"""

from __future__ import annotations

from ase_em.errors import PotentialError, RefineSettingsError
from ase_em.neb.batch import refine_many, results_table
from ase_em.neb.combine import combine, combine_result, neb_sigma
from ase_em.neb.neb import endpoints_from_hop, refine
from ase_em.neb.potentials import make_calculator
from ase_em.neb.result import RefinedHop
from ase_em.neb.select import rank_hops, select_hops

__all__ = [
    "PotentialError",
    "RefineSettingsError",
    "RefinedHop",
    "combine",
    "combine_result",
    "endpoints_from_hop",
    "make_calculator",
    "neb_sigma",
    "rank_hops",
    "refine",
    "refine_many",
    "results_table",
    "select_hops",
]

