"""Candidate empty sites of the migrating ion: the Voronoi nodes of the framework.

Many ion conductors move their ions through sites that are empty in the ordered crystal:
layered LiCoO2 (octahedral Li sites joined through the empty tetrahedral sites of the Li
layer), Li3 garnets (tetrahedral 24d Li through the empty octahedral 48g/96h sites),
NASICON (M1 Li through the empty M2 sites). :func:`find_empty_sites` proposes such sites;
:func:`add_empty_sites` puts them into the structure as sites of the ion marked
``empty_site = True``, so that the hop network has hops into them.

How the sites are found (the choice was measured; ``docs/pymatgen.md``, "Empty sites"):

1. the framework is every atom except the migrating ion;
2. the vertices of the Voronoi tessellation of the framework (scipy's Qhull, with the
   periodic images needed to cover the cell) are the centres of the largest empty
   spheres between framework atoms: tetrahedral, octahedral and lower-symmetry voids;
3. a vertex is kept when the ion fits there: its nearest anion (the elements of the ion's
   first shell) is at least ``clearance_ratio`` (0.8) times the shortest ion-anion
   distance of the occupied sites (a tetrahedral site beside octahedral ones has a
   Shannon-radius ratio of 0.92), and every framework cation is at least
   ``cation_ratio`` (0.9) times its own shortest cation-anion bond away (a site sharing a
   face with the cation's polyhedron is about one bond away; closer is inside the
   cation's coordination shell);
4. vertices closer than ``merge_tol`` are one site (an octahedron's centre is several
   coinciding vertices); the one with the largest clearance stands for them;
5. a vertex within ``min_ion_distance`` of an occupied ion site is that site: it is not a
   candidate, and it counts that occupied site as recovered (a check of the method: it
   finds the sites the crystal does fill);
6. the rest is made symmetric: the orbit of each kept vertex under the space group of the
   crystal (spglib, once), images within ``merge_tol`` averaged onto their special
   position. So the candidates are whole Wyckoff orbits and the crystal keeps its
   symmetry.

pymatgen-analysis-defects' ``VoronoiInterstitialGenerator`` finds the same vertices but
groups them with ``StructureMatcher``, one trial structure per vertex: 0.35 s on the 4-atom
LiCoO2 cell and more than 60 s (stopped) on the 80-atom garnet cell; spglib's operations
applied to the vertex coordinates do the same grouping in milliseconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Lattice, Structure

from ase_em.config import NetworkOptions
from ase_em.hops.migration_hop import EMPTY_SITE

logger = logging.getLogger(__name__)

DEFAULT_CLEARANCE_RATIO = 0.8
DEFAULT_CATION_RATIO = 0.9
DEFAULT_MERGE_TOL = 0.5  # A
DEFAULT_MIN_ION_DISTANCE = 1.0  # A
DEFAULT_SYMPREC = NetworkOptions.symprec
VORONOI_MARGIN = 4.0  # A: periodic images cover the cell and this margin around it


@dataclass(frozen=True)
class EmptySites:
    """Candidate empty sites of an ion in a crystal.

    Attributes:
        ion: element of the migrating ion.
        frac_coords: (M, 3) fractional coordinates of the candidates in the crystal's cell.
        orbit: (M,) integer orbit label of each candidate (symmetry-equivalent sites share it).
        clearance: (M,) distance (A) from each candidate to its nearest anion.
        reference_clearance: shortest ion-anion distance (A) of the occupied ion sites.
        n_occupied: number of occupied ion sites in the cell.
        n_recovered: how many of them lie within ``min_ion_distance`` of a Voronoi vertex
            (the method finds the sites the crystal fills).
    """

    ion: str
    frac_coords: np.ndarray
    orbit: np.ndarray
    clearance: np.ndarray
    reference_clearance: float
    n_occupied: int
    n_recovered: int

    def __len__(self) -> int:
        """Number of candidate sites."""
        return len(self.frac_coords)


def _periodic_points(structure: Structure, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Cartesian positions of the atoms and their images covering the cell plus ``margin``.

    Returns:
        ((P, 3) positions in A, (P,) index of the atom each point is an image of).
    """
    m = structure.lattice.matrix  # (3, 3)
    volume = abs(np.linalg.det(m))
    widths = [volume / np.linalg.norm(np.cross(m[(i + 1) % 3], m[(i + 2) % 3])) for i in range(3)]
    reps = [int(np.ceil(margin / w)) for w in widths]
    shifts = np.array(
        [(i, j, k) for i in range(-reps[0], reps[0] + 1)
         for j in range(-reps[1], reps[1] + 1) for k in range(-reps[2], reps[2] + 1)],
        dtype=float,
    )  # (S, 3)
    frac = structure.frac_coords % 1.0  # (N, 3)
    points = (frac[None, :, :] + shifts[:, None, :]).reshape(-1, 3) @ m  # (S * N, 3)
    owner = np.tile(np.arange(len(structure)), len(shifts))
    return points, owner


def find_empty_sites(
    structure: Structure,
    ion: str,
    *,
    clearance_ratio: float = DEFAULT_CLEARANCE_RATIO,
    cation_ratio: float = DEFAULT_CATION_RATIO,
    merge_tol: float = DEFAULT_MERGE_TOL,
    min_ion_distance: float = DEFAULT_MIN_ION_DISTANCE,
    symprec: float = DEFAULT_SYMPREC,
) -> EmptySites:
    """Candidate empty sites of ``ion``: Voronoi nodes of the framework (module docstring).

    Args:
        structure: ordered crystal with every occupied site of the ion (a primitive cell is
            cheapest: the cost grows with the number of framework atoms).
        ion: element of the migrating ion, e.g. "Li".
        clearance_ratio: a candidate's nearest anion is at least this times the shortest
            ion-anion distance of the occupied sites (anions: the elements of the ion's
            first coordination shell).
        cation_ratio: a candidate's distance to each framework cation is at least this
            times that cation's shortest bond to an anion.
        merge_tol: vertices (and symmetry images) closer than this (A) are one site.
        min_ion_distance: a vertex closer than this (A) to an occupied ion site is that site.
        symprec: symmetry precision (spglib) for the orbits.

    Returns:
        The candidates (possibly none), in whole orbits of the crystal's space group.
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
    from scipy.spatial import Voronoi, cKDTree

    is_ion = np.array([site.specie.symbol == ion for site in structure])  # (N,)
    ion_frac = structure.frac_coords[is_ion]  # (n_ion, 3)
    lattice = structure.lattice
    none = EmptySites(ion, np.zeros((0, 3)), np.zeros(0, int), np.zeros(0), float("nan"), len(ion_frac), 0)
    if is_ion.all() or not is_ion.any():  # no framework, or no ion
        return none
    framework = Structure.from_sites([s for s, keep in zip(structure, ~is_ion, strict=True) if keep])
    points, owner = _periodic_points(framework, VORONOI_MARGIN)
    symbols = np.array([site.specie.symbol for site in framework])[owner]  # (P,)
    # anions: the elements of the ion's first shell (within 1.2 x its nearest framework atom)
    d_ion, _ = cKDTree(points).query(structure.cart_coords[is_ion], k=min(12, len(points)))  # (n_ion, k)
    first = cKDTree(points).query_ball_point(structure.cart_coords[is_ion], 1.2 * d_ion[:, 0])
    anions = {str(symbols[j]) for shell in first for j in shell}
    is_anion = np.isin(symbols, sorted(anions))  # (P,)
    anion_tree = cKDTree(points[is_anion])
    reference = float(d_ion[:, 0].min())
    vertices = Voronoi(points).vertices  # (V, 3) A
    frac = lattice.get_fractional_coords(vertices)  # (V, 3)
    inside = np.all((frac >= -1e-9) & (frac < 1 - 1e-9), axis=1)
    frac, vertices = frac[inside], vertices[inside]
    clearance = anion_tree.query(vertices)[0]  # (V,) A to the nearest anion
    fits = clearance >= clearance_ratio * reference
    # a cation of the framework may share a polyhedron face with the site (then it is about
    # one cation-anion bond away: LiCoO2's tetrahedral site is 0.95 Co-O bonds from Co);
    # closer than cation_ratio bonds means inside that cation's own coordination shell
    for element in sorted(set(symbols[~is_anion])):
        mask = symbols == element
        bond = float(anion_tree.query(points[mask])[0].min())
        near = cKDTree(points[mask]).query(vertices)[0]
        fits &= near >= cation_ratio * bond
    frac, clearance = frac[fits], clearance[fits]
    none = EmptySites(ion, none.frac_coords, none.orbit, none.clearance, reference, len(ion_frac), 0)
    if len(frac) == 0:
        return none
    # greedy merge, widest void first (hand-written: a few hundred points, periodic metric)
    order = np.argsort(-clearance)
    frac, clearance = frac[order], clearance[order]
    dist = lattice.get_all_distances(frac, frac)  # (V, V) A
    taken = np.zeros(len(frac), bool)
    nodes = []
    for i in range(len(frac)):
        if not taken[i]:
            nodes.append(i)
            taken |= dist[i] < merge_tol
    frac, clearance = frac[nodes], clearance[nodes]
    to_ion = lattice.get_all_distances(frac, ion_frac)  # (M, n_ion) A
    recovered = int(np.sum(to_ion.min(axis=0) < min_ion_distance))
    away = to_ion.min(axis=1) >= min_ion_distance
    frac, clearance = frac[away], clearance[away]
    ops = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_operations()  # fractional
    rot = np.array([op.rotation_matrix for op in ops])  # (O, 3, 3)
    trans = np.array([op.translation_vector for op in ops])  # (O, 3)
    sites, orbits, clear = [], [], []
    covered = np.zeros(len(frac), bool)
    for i in range(len(frac)):
        if covered[i]:
            continue
        images = (np.einsum("oij,j->oi", rot, frac[i]) + trans) % 1.0  # (O, 3)
        members = _merge_images(images, lattice, merge_tol)
        orbit_id = len(set(orbits))
        sites.extend(members)
        orbits.extend([orbit_id] * len(members))
        clear.extend([float(clearance[i])] * len(members))
        covered |= lattice.get_all_distances(frac, np.array(members)).min(axis=1) < merge_tol
    found = EmptySites(ion, np.array(sites), np.array(orbits, int), np.array(clear), reference,
                       len(ion_frac), recovered)
    logger.info("%s: %d candidate empty %s sites in %d orbits; %d of %d occupied sites recovered",
                structure.composition.reduced_formula, len(found), ion, len(set(orbits)),
                recovered, len(ion_frac))
    return found


def _merge_images(images: np.ndarray, lattice: Lattice, tol: float) -> list[np.ndarray]:
    """Symmetry images of one site, those within ``tol`` (A) averaged (a special position).

    Args:
        images: (O, 3) fractional coordinates in [0, 1).
        lattice: the crystal's lattice.
        tol: merge distance (A).

    Returns:
        The distinct sites, fractional coordinates in [0, 1).
    """
    dist = lattice.get_all_distances(images, images)  # (O, O)
    done = np.zeros(len(images), bool)
    out = []
    for i in range(len(images)):
        if done[i]:
            continue
        group = np.flatnonzero((dist[i] < tol) & ~done)
        done[group] = True
        delta = images[group] - images[i]
        delta -= np.round(delta)  # the images nearest to image i
        out.append((images[i] + delta.mean(axis=0)) % 1.0)
    return out


def add_empty_sites(structure: Structure, sites: EmptySites) -> Structure:
    """The structure with the candidate sites added as sites of the ion, marked empty.

    Args:
        structure: the crystal the sites were found in.
        sites: output of :func:`find_empty_sites` on ``structure``.

    Returns:
        A new Structure: the crystal's sites (``empty_site`` False) followed by the
        candidates (species ``sites.ion``, ``empty_site`` True).
    """
    out = structure.copy()
    out.add_site_property(EMPTY_SITE, [False] * len(out))
    for frac in sites.frac_coords:
        out.append(sites.ion, frac, properties={EMPTY_SITE: True})
    return out
