"""The whole straight path of a hop against every host atom (closest approach).

A band5 samples the ion's path at five points; a long hop can pass through an atom between
them. :func:`path_clearance` measures the continuous segment start -> end against every
host atom and its periodic images; :func:`check_path` blocks a hop below the thresholds.
It works on arrays: anything with the attributes of :class:`HopArrays` (a
:class:`ase_em.hops.hop.Hop` has them), so it needs no Hop type. ``docs/hops.md`` gives the
TRAIN distribution behind the thresholds (``benchmarks/path_clearance.py``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ase_em.errors import BlockedPathError


class HopArrays(Protocol):
    """What the clearance reads of a hop (lengths in A)."""

    ion: str  # element of the moving ion
    start: np.ndarray  # (3,) ion at the initial site
    end: np.ndarray  # (3,) ion at the final site
    host_symbols: Sequence[str]  # (M,) elements of the host atoms
    host_positions: np.ndarray  # (M, 3)
    cell: np.ndarray  # (3, 3) lattice vectors as rows
    name: str | None

# The whole straight path of the ion, against every host atom: ratio of the closest
# approach to the ion's nearest-host distance at its endpoints (see path_clearance).
# Measured on the 559 TRAIN hops (benchmarks/path_clearance.py, docs/hops.md): DFT-NEB paths
# curve around atoms, so TRAIN holds straight paths passing as close as 0.03 of the bond to
# a host atom (RuO2_Li_1, 0.058 A from Ru), but none passing closer than 0.65 of the bond
# to an atom of the ion's own element (another mobile ion: the hop would go through its site).
# Blocked (Em = inf): below BLOCKING_RATIO for any host atom (under TRAIN's smallest, 0.032;
# LiRuO2_1, a path exactly through a Ru atom, is blocked and left out of training), or below
# SAME_SPECIES_BLOCKING_RATIO for an atom of the ion's element (TRAIN's smallest: 0.656).
# Grey zone (flagged): below GREY_RATIO (about TRAIN's 10th percentile, 0.58) or below
# SAME_SPECIES_GREY_RATIO (TRAIN's smallest) for the ion's own element.
BLOCKING_RATIO = 0.02
GREY_RATIO = 0.6
SAME_SPECIES_BLOCKING_RATIO = 0.5
SAME_SPECIES_GREY_RATIO = 0.65


@dataclass(frozen=True)
class PathClearance:
    """Closest approach of a hop's straight path to the host.

    Attributes:
        ratio: ``distance`` over ``bond`` (0 < ratio <= 1).
        distance: closest approach (A) of the segment start -> end to any host atom,
            periodic images included.
        host_index: index (in ``hop.host_symbols``) of that host atom.
        host_symbol: its element.
        fraction: where along the hop it is closest (0 = start, 1 = end).
        bond: the ion's bond length at its endpoints (A): the smaller of its nearest-host
            distances at the start and at the end.
        same_species_ratio: closest approach to a host atom of the ion's own element, over
            ``bond`` (inf if the host has none).
        same_species_index: index of that host atom (-1 if none).
    """

    ratio: float
    distance: float
    host_index: int
    host_symbol: str
    fraction: float
    bond: float
    same_species_ratio: float = math.inf
    same_species_index: int = -1

    @property
    def blocked(self) -> bool:
        """Whether the path is blocked (below ``BLOCKING_RATIO``, or ``SAME_SPECIES_BLOCKING_RATIO``)."""
        return self.ratio < BLOCKING_RATIO or self.same_species_ratio < SAME_SPECIES_BLOCKING_RATIO

    @property
    def grey(self) -> bool:
        """Whether the path is in the grey zone: not blocked, but rarer than TRAIN allows for."""
        return not self.blocked and (
            self.ratio < GREY_RATIO or self.same_species_ratio < SAME_SPECIES_GREY_RATIO
        )


def path_clearance(hop: HopArrays) -> PathClearance:
    """Closest approach of the whole straight path of a hop to every host atom.

    The closed-form point-to-segment distance, vectorised over every host atom and its
    periodic images near the segment (written by hand: ASE and pymatgen neighbour lists
    work on points, not on segments); the distances are computed for the images within
    half the hop plus the search reach of its midpoint only, which hold every image nearer
    than the reach (the host's nearest atom of the ion's own element is measured over all
    its images when it is farther). The host is that of the initial endpoint; the ion
    itself is not part of it. About 0.26 ms a hop of the OBELiX screen.

    Args:
        hop: the hop (``ion``, ``start``, ``end``, ``host_symbols``, ``host_positions``,
            ``cell``; lengths in A).

    Returns:
        The clearance; ``ratio`` = closest approach / min(nearest host distance at the
        start, at the end).

    Raises:
        ValueError: the hop has no host atoms.
    """
    host = np.asarray(hop.host_positions, dtype=float)  # (M, 3)
    if len(host) == 0:
        raise ValueError(f"{hop.name or 'hop'}: no host atoms")
    cell = np.asarray(hop.cell, dtype=float)  # (3, 3)
    d = np.asarray(hop.end, float) - np.asarray(hop.start, float)  # (3,)
    mid = 0.5 * (np.asarray(hop.start, float) + np.asarray(hop.end, float))
    half = 0.5 * float(np.linalg.norm(d))
    frac = np.linalg.solve(cell.T, (host - mid).T).T  # (M, 3)
    frac -= np.round(frac)  # the image nearest to the midpoint
    volume = abs(float(np.linalg.det(cell)))
    faces = np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]])  # (3, 3) normals of the cell faces
    widths = volume / np.linalg.norm(faces, axis=1)  # (3,) perpendicular widths
    reach = 6.0  # A: any atom nearer than this to the segment is found (doubled if needed)
    dd = float(d @ d)
    while True:
        n = np.ceil((half + reach) / widths).astype(int)  # (3,)
        shifts = np.array(list(itertools.product(*(range(-k, k + 1) for k in n))), float)  # (K, 3)
        rel = (frac[:, None, :] + shifts[None, :, :]) @ cell  # (M, K, 3) from the midpoint
        # An image nearer than `reach` to the path lies within half + reach of its midpoint:
        # the closest approach and the nearest host at either end are taken over those
        # images only (each value computed as for every image), the rest are farther.
        near = np.linalg.norm(rel, axis=2) <= half + reach + 1e-9  # (M, K)
        atom, shift = np.nonzero(near)  # row-major: by atom, then shift, as argmin reads them
        rel_n = rel[atom, shift]  # (P, 3)
        t = np.clip((rel_n @ d) / dd + 0.5, 0.0, 1.0)  # (P,) along the hop
        dist = np.linalg.norm(rel_n - (t[:, None] - 0.5) * d, axis=1)  # (P,)
        at_start = float(np.linalg.norm(rel_n + 0.5 * d, axis=1).min(initial=np.inf))
        at_end = float(np.linalg.norm(rel_n - 0.5 * d, axis=1).min(initial=np.inf))
        bond = min(at_start, at_end)
        if bond <= reach:  # every atom closer than `bond` to the path lies within the reach
            break
        reach *= 2
    per_atom = np.full(len(host), np.inf)  # (M,): exact wherever it is <= reach
    np.minimum.at(per_atom, atom, dist)
    m = int(np.argmin(per_atom))
    mine = np.flatnonzero(atom == m)
    j = int(mine[np.argmin(dist[mine])])
    same = np.flatnonzero(np.asarray(hop.host_symbols) == hop.ion)
    s_ratio, s_index = math.inf, -1
    if same.size and bond > 0:
        if not per_atom[same].min() <= reach:  # the nearest ion of the host is farther: every image of it
            rel_s = rel[same]  # (S, K, 3)
            t_s = np.clip((rel_s @ d) / dd + 0.5, 0.0, 1.0)
            per_atom[same] = np.linalg.norm(rel_s - (t_s[..., None] - 0.5) * d, axis=2).min(axis=1)
        s_index = int(same[np.argmin(per_atom[same])])
        s_ratio = float(per_atom[s_index]) / bond
    return PathClearance(
        ratio=float(per_atom[m]) / bond if bond > 0 else 0.0,
        distance=float(per_atom[m]),
        host_index=m,
        host_symbol=str(hop.host_symbols[m]),
        fraction=float(t[j]),
        bond=bond,
        same_species_ratio=s_ratio,
        same_species_index=s_index,
    )


def check_path(hop: HopArrays, measured: PathClearance | None = None) -> PathClearance:
    """Block a hop whose straight path comes too close to a host atom.

    Args:
        hop: the hop.
        measured: its :func:`path_clearance`, if already computed (else computed here).

    Returns:
        The clearance (for a grey-zone flag).

    Raises:
        BlockedPathError: the path is blocked (see :attr:`PathClearance.blocked`), naming
            the atom, the distance and the ratio.
    """
    c = path_clearance(hop) if measured is None else measured
    if not c.blocked:
        return c
    where = hop.name or "hop"
    if c.ratio < BLOCKING_RATIO:
        raise BlockedPathError(
            f"{where}: the straight path of the {hop.ion} ion passes {c.distance:.3f} A from host "
            f"atom {c.host_index} ({c.host_symbol}) at {c.fraction:.0%} of the hop, {c.ratio:.2f} of "
            f"its {c.bond:.2f} A bond at the endpoints (blocked below {BLOCKING_RATIO}): the path "
            "runs through an atom"
        )
    j = c.same_species_index
    raise BlockedPathError(
        f"{where}: the straight path of the {hop.ion} ion passes {c.same_species_ratio * c.bond:.3f} A "
        f"from host atom {j} ({hop.ion}), {c.same_species_ratio:.2f} of its {c.bond:.2f} A bond at the "
        f"endpoints (blocked below {SAME_SPECIES_BLOCKING_RATIO} for the ion's own element): the hop "
        "goes through an occupied site, it is two hops"
    )
