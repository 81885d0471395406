"""Stage 1, hops: anything that describes one hop -> one validated :class:`Hop`.

* :mod:`ase_em.hops.hop`: the :class:`Hop` (ion, start, end, host) and its readers
  (endpoints, NEB images, band5, em619 records).
* :mod:`ase_em.hops.checks`: the checks every reader applies (finite, ordered, overlaps,
  atom order, strain, frames, band5).
* :mod:`ase_em.hops.clearance`: the straight path against every host atom, on arrays.
* :mod:`ase_em.hops.migration_hop`: a pymatgen ``MigrationHop`` -> Hop, into an occupied
  (vacancy) or an empty site.
* :mod:`ase_em.hops.convert`: :func:`as_hop`, the one entry point for any of these.
"""

from __future__ import annotations

from ase_em.hops.convert import as_hop
from ase_em.hops.hop import Hop

__all__ = ["Hop", "as_hop"]
