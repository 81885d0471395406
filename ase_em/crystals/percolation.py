"""Percolation barriers of a periodic hop network.

The network: ion sites of one unit cell (nodes) and hops (edges). An edge
``(u, v, image, em)`` joins site ``u`` in cell 0 to site ``v`` in cell ``image`` (three
integers, pymatgen's ``to_jimage``); by periodicity it joins every cell's copy.

For a threshold ``E``, keep the hops with ``em <= E``. A connected component of the kept
hops (in the unit-cell quotient graph) extends to infinity along the translations its
cycles carry: going round a cycle of the quotient graph moves the ion by a lattice
vector, the cycle's net translation (zero for a cycle that closes in the same cell).
The component's dimensionality is the rank of the lattice spanned by the net
translations of its cycles: 0 (a finite cluster), 1 (channels), 2 (layers) or 3.

The percolation barrier in ``d`` dimensions is the lowest ``E`` at which some component
has dimensionality ``>= d``: the minimum, over all networks that percolate in ``d``
dimensions, of their highest hop barrier. It is None when even all hops do not percolate.

Computed in one pass (Kruskal's order): hops are added by increasing barrier into a
union-find that keeps, for each site, its cell offset relative to its component's root
(so the cell of every site in the unwrapped component is known) and, for each
component, a basis of its translation lattice. An edge inside a component closes a
cycle with net translation ``offset(u) + image - offset(v)``; an edge between two
components merges them and their bases.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

DIMENSIONS = (1, 2, 3)


@dataclass(frozen=True)
class PeriodicEdge:
    """A hop of a periodic network.

    Attributes:
        u: index of the start site (in the unit cell).
        v: index of the end site.
        image: (3,) integer cell of the end site's copy, relative to the start's.
        em: barrier of the hop (eV); ``inf`` or NaN for a blocked hop (never used).
    """

    u: int
    v: int
    image: tuple[int, int, int]
    em: float


class _Components:
    """Union-find over sites with cell offsets and translation lattices."""

    def __init__(self, n_sites: int) -> None:
        self.parent = list(range(n_sites))
        self.offset = np.zeros((n_sites, 3), dtype=np.int64)  # cell of site relative to parent
        self.basis: dict[int, np.ndarray] = {i: np.zeros((0, 3), dtype=np.int64) for i in range(n_sites)}

    def find(self, x: int) -> tuple[int, np.ndarray]:
        """Root of ``x`` and the cell of ``x`` relative to the root (path compression)."""
        path = []
        while self.parent[x] != x:
            path.append(x)
            x = self.parent[x]
        root, total = x, np.zeros(3, dtype=np.int64)
        for node in reversed(path):  # from next-to-root down to the query
            total = total + self.offset[node]
            self.offset[node] = total
            self.parent[node] = root
        return root, (self.offset[path[0]].copy() if path else total)

    def add(self, u: int, v: int, image: np.ndarray) -> int:
        """Add the hop u -> v (v in cell ``image``); return its component's dimensionality."""
        ru, ou = self.find(u)
        rv, ov = self.find(v)
        if ru == rv:
            self._extend(ru, ou + image - ov)  # a cycle: its net translation
            return self.rank(ru)
        # Attach rv under ru so that v sits in cell ou + image: offset(rv) + ov = ou + image.
        self.parent[rv] = ru
        self.offset[rv] = ou + image - ov
        for t in self.basis.pop(rv):
            self._extend(ru, t)
        return self.rank(ru)

    def _extend(self, root: int, translation: np.ndarray) -> None:
        if not translation.any():
            return
        stacked = np.vstack([self.basis[root], translation[None, :]])
        if np.linalg.matrix_rank(stacked.astype(float)) > len(self.basis[root]):
            self.basis[root] = stacked

    def rank(self, root: int) -> int:
        """Dimensionality (0-3) of the component with this root."""
        return len(self.basis[root])


def percolation_barriers(
    edges: Iterable[PeriodicEdge], n_sites: int | None = None
) -> dict[int, float | None]:
    """Lowest barrier at which the hops percolate in 1, 2 and 3 dimensions.

    Args:
        edges: the hops of the network (see the module docstring).
        n_sites: number of sites (default: one more than the largest index).

    Returns:
        ``{1: E1, 2: E2, 3: E3}`` in the edges' unit (eV); None where the whole network
        does not percolate in that many dimensions. ``E1 <= E2 <= E3``.
    """
    # blocked hops (inf, NaN) never join the network
    usable = sorted((e for e in edges if math.isfinite(e.em)), key=lambda e: e.em)
    if n_sites is None:
        n_sites = 1 + max((max(e.u, e.v) for e in usable), default=-1)
    components = _Components(n_sites)
    result: dict[int, float | None] = dict.fromkeys(DIMENSIONS)
    reached = 0
    for e in usable:
        dim = components.add(e.u, e.v, np.asarray(e.image, dtype=np.int64))
        for d in DIMENSIONS:
            if reached < d <= dim:
                result[d] = float(e.em)
        reached = max(reached, dim)
        if reached == 3:
            break
    return result

