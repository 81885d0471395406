"""pymatgen's per-site lattice arithmetic, on arrays.

pymatgen converts between fractional and Cartesian coordinates one site at a time: a
(3,) by (3, 3) ``np.dot`` per ``PeriodicSite``. numpy's (N, 3) @ (3, 3) product of the
same rows may round differently in the last bit (numpy 2.4's BLAS kernels do), and a last
bit moves a site across a periodic boundary at 0 or 1. Code that promises pymatgen's sites
bit for bit, without building a ``PeriodicSite`` per atom, uses :func:`site_products`.
"""

from __future__ import annotations

import numpy as np


def site_products(coords: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``np.array([np.dot(c, matrix) for c in coords])``, without the loop.

    The sum is taken in ``np.dot``'s order for a (3,) vector, term by term
    (``c[0] m[0] + c[1] m[1] + c[2] m[2]``), which is what pymatgen's sites compute;
    tested against the loop and against pymatgen's structures.

    Args:
        coords: (N, 3) coordinates (fractional or Cartesian).
        matrix: (3, 3) a lattice matrix (rows: lattice vectors, A) or its inverse.

    Returns:
        (N, 3) float64 products, one row per site.
    """
    c = np.asarray(coords, dtype=float).reshape(-1, 3)
    m = np.asarray(matrix, dtype=float)
    return c[:, 0:1] * m[0] + c[:, 1:2] * m[1] + c[:, 2:3] * m[2]
