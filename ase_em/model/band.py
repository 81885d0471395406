"""Hop -> band5 structure, exactly as the reference (MODEL-3) built its input.

Sites 0-4 are the migrating ion at k/4 (k = 0..4) of the minimum-image hop, then every
host atom at its position in the initial endpoint.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ase_em.hops.hop import N_IMAGES, Hop


def build_band(hop: Hop) -> Atoms:
    """Build the band5 structure of a hop.

    Args:
        hop: the validated hop.

    Returns:
        Periodic Atoms with ``5 + M`` sites: the five ion images, then the M host atoms.
    """
    positions = np.vstack([hop.ion_positions(), hop.host_positions])  # (5 + M, 3)
    return Atoms(
        symbols=[hop.ion] * N_IMAGES + list(hop.host_symbols),
        positions=positions,
        cell=hop.cell,
        pbc=True,
    )
