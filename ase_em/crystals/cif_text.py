"""The data blocks of a CIF file, by a text scan (no parser, no pymatgen import).

Light enough for the main process of a screen, which lists its inputs without reading
any structure (:mod:`ase_em.screening.inputs`).
"""

from __future__ import annotations

import os

ATOM_SITE_KEYS = ("_atom_site_fract_x", "_atom_site_cartn_x")


def cif_blocks(path: str | os.PathLike) -> list[str]:
    """Names of the data blocks of a CIF file that list atom sites, in file order.

    Args:
        path: the CIF file.

    Returns:
        The block names (``data_NAME`` gives ``NAME``); blocks without atom sites (a
        database export's global block of publication data) are left out.
    """
    names, current, has_atoms = [], None, False
    with open(path, errors="replace") as f:
        for line in f:
            words = line.split(maxsplit=1)
            low = words[0].lower() if words else ""
            if low.startswith("data_"):
                if current is not None and has_atoms:
                    names.append(current)
                current, has_atoms = words[0][5:], False
            elif low in ATOM_SITE_KEYS:
                has_atoms = True
    if current is not None and has_atoms:
        names.append(current)
    return names
