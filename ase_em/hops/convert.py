"""Anything that describes a hop -> one validated :class:`ase_em.hops.hop.Hop`.

:func:`as_hop` takes any hop description; :func:`hop_from_neb` the NEB inputs
(``ase_em.predict_neb``, ``EmCalculator.get_barrier``): everything ``Hop.from_images``
takes, an ``ase.mep`` NEB object, or a band5 Atoms.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from ase import Atoms

from ase_em.hops.hop import Hop


def _is_image(x: Any) -> bool:
    return isinstance(x, (Atoms, str, os.PathLike)) or type(x).__name__ in ("Structure", "IStructure")


def hop_from_neb(images: Any) -> Hop:
    """The hop of NEB images, an ASE NEB object, a file or folder, or a band5 Atoms.

    Args:
        images: a list (or tuple) of at least two images, each an ASE ``Atoms``, a pymatgen
            ``Structure`` (``IDPPSolver`` returns a list of them) or a structure file; an
            ``ase.mep.NEB`` (or DyNEB) with ``.images``; a multi-frame structure file; a VASP
            NEB run folder (``00 .. NN``, CONTCAR else POSCAR); or a band5 ``Atoms``.

    Returns:
        The validated hop (only the endpoints are used).

    Raises:
        ase_em.errors.AseEmError: endpoints that do not form a hop, frames that differ,
            a single ``Atoms`` that is not a band5, a folder that is not a NEB run.
        TypeError: an object of another kind, naming what the list holds.
    """
    if isinstance(images, Atoms):
        return Hop.from_band(images)
    if isinstance(images, (str, os.PathLike)):
        return Hop.from_images(images)
    frames = getattr(images, "images", images)  # an ase.mep NEB object holds .images
    if isinstance(frames, Sequence) and frames and all(_is_image(a) for a in frames):
        return Hop.from_images(list(frames), name="NEB images")
    if isinstance(frames, Sequence):
        kinds = sorted({type(a).__name__ for a in frames}) or ["nothing"]
        got = f"a {type(images).__name__} of {', '.join(kinds)}"
    else:
        got = type(images).__name__
    raise TypeError(
        "expected NEB images (a list of ASE Atoms, pymatgen Structures or structure files), an "
        f"ase.mep.NEB, a multi-frame file, a VASP NEB folder or a band5 Atoms; got {got}"
    )


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
