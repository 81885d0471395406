"""Anything that describes a hop -> one validated :class:`ase_em.hops.hop.Hop` (:func:`as_hop`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ase import Atoms

from ase_em.hops.hop import Hop


def as_hop(x: Any) -> Hop:
    """Turn any supported hop description into a :class:`Hop`.

    Args:
        x: a Hop; a (initial, final) tuple; a list of NEB images; a band5 Atoms; an em619
            record dict; or a pymatgen-analysis-diffusion ``MigrationHop``.

    Returns:
        The validated hop.
    """
    if isinstance(x, Hop):
        return x
    if isinstance(x, Mapping):
        return Hop.from_record(x)
    if isinstance(x, Atoms):
        return Hop.from_band(x)
    if isinstance(x, tuple) and len(x) == 2:
        return Hop.from_endpoints(x[0], x[1])
    if isinstance(x, list):
        return Hop.from_images(x)
    if type(x).__name__ == "MigrationHop":  # by name: pymatgen is imported only when one is given
        from ase_em.hops.migration_hop import hop_from_migration_hop

        return hop_from_migration_hop(x)
    raise TypeError(f"cannot make a hop from {type(x).__name__}")
