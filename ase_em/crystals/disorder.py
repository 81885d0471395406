"""Disordered crystals: orderings of partial occupancies, and their candidate ion sites.

Experimental CIFs of ion conductors mostly give an *average* structure: sites with
partial occupancies (a Li site filled to 0.5), mixed sites (Ge/Ti on one site) and split
sites (two positions 0.4-1.0 A apart, each partly filled, of which at most one is
occupied at a time). The model needs ordered bands, so a disordered structure is turned
into a few **orderings**: supercells in which every site holds one species or nothing.

How an ordering is drawn (:func:`sample_orderings`). Each orbit of equivalent partial
sites (sites with the same species and occupancies) of the supercell gets, for each
species, ``round(occupancy * n_sites)`` atoms (largest remainders, so the totals match the
average composition as closely as the supercell allows). The sites are visited in a
random order (numpy ``default_rng(seed)``); a site takes a species that its orbit still
needs, chosen with probability proportional to the count still needed, unless it conflicts
with a site already filled: a partial site within ``exclusion`` (1.5 A) that can hold one
of its species (a split site), any site closer than 0.8 A, or any site closer than the
overlap limit of the input checks for a pair of species the two can hold
(:func:`ase_em.hops.checks.overlap_limit`, 0.5 of the covalent-radius sum: the Na 2b and 2d
sites of P2-NaxCoO2, 1.64 A apart, are one choice). A partial site in conflict
with a fully occupied site stays empty. So split sites are never both filled (filling
every site with its majority species puts two Li 0.4-1.0 A apart) and no ion is lost to
rounding (rounding each site's occupancy empties a Li site at 0.3). What cannot be
placed without an overlap is logged and counted in ``Ordering.missing``.

Why hand-written, not pymatgen's ``OrderDisorderedStructureTransformation``: measured on
five OBELiX CIFs (``benchmarks/ordering_methods.py``, table in ``docs/pymatgen.md``), its
Ewald ranking needs oxidation states, whose guess refuses a supercell with a non-integral
composition (4 of 5), and on the fifth (32 partial sites) it gave no answer in 120 s; it
knows nothing of split sites. Random occupation sampling took 0.8-2.4 s for 5 orderings,
keeps the composition and is reproducible with a seed.

Candidate ion sites. The mobile ion's candidate sites are *all* sites of the average
structure that hold the ion at any occupancy, whatever one ordering fills: an ordering
leaves some of them empty, and those are the empty sites a hop can end on. Ion sites
closer than ``merge_radius`` (1.0 A; split sites) are one candidate site at their centre.
Sites of host species that are partly empty (an oxygen site at 0.9) are not ion sites.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Element, Lattice, Structure

from ase_em.errors import DisorderError
from ase_em.hops import checks
from ase_em.hops.site_arithmetic import site_products

logger = logging.getLogger(__name__)

DEFAULT_N_ORDERINGS = 5
DEFAULT_SEED = 0
EXCLUSION = 1.5  # A: two partial sites of one species closer than this are never both filled
OVERLAP = 0.8  # A: two partial sites closer than this are never both filled, whatever they hold
MERGE_RADIUS = 1.0  # A: ion sites closer than this are one candidate site (split sites)
MAX_MERGE_EXTENT = 2.0  # A: a merged cluster wider than this is left as separate sites
MAX_SUPERCELL_ATOMS = 2000  # sites of the ordering supercell (average structure)
MAX_SECONDS = 600.0  # s: time allowed for one disordered structure


@dataclass(frozen=True, eq=False)
class Ordering:
    """One ordering of a disordered structure.

    Attributes:
        lattice: the supercell's lattice.
        species: (N,) element of each site, in the order of pymatgen's
            ``get_sorted_structure`` (electronegativity, then symbol).
        frac_coords: (N, 3) the sites' fractional coordinates.
        seed: seed of the random generator that drew it.
        missing: atoms of the average composition that could not be placed without an
            overlap closer than the exclusion distance, by element.
    """

    lattice: Lattice
    species: tuple[str, ...]
    frac_coords: np.ndarray
    seed: int
    missing: dict[str, int]

    @functools.cached_property
    def structure(self) -> Structure:
        """The ordered supercell (every site one species), built when first asked for.

        The hop network reads the arrays: building a pymatgen ``Structure`` of a 400-site
        supercell costs about 10 ms an ordering.
        """
        return Structure(self.lattice, list(self.species), self.frac_coords)

    @functools.cached_property
    def cart_coords(self) -> np.ndarray:
        """(N, 3) the sites' Cartesian coordinates (A), those of :attr:`structure` bit for bit.

        Computed as pymatgen's sites compute them (:func:`ase_em.hops.site_arithmetic.site_products`).
        """
        return site_products(self.frac_coords, self.lattice.matrix)


def is_disordered(structure: Structure) -> bool:
    """True if any site has a partial occupancy or mixed species."""
    return not structure.is_ordered


def ion_sites(structure: Structure, ion: str, *, merge_radius: float = MERGE_RADIUS) -> Structure:
    """The candidate sites of the ion: every site that holds it at any occupancy.

    Args:
        structure: the average (possibly disordered) structure.
        ion: element of the mobile ion, e.g. "Li".
        merge_radius: ion sites closer than this (A) become one site at their centre.

    Returns:
        A structure on the same lattice with one fully occupied ``ion`` site per
        candidate site; site property ``occupancy`` holds the ion's summed occupancy.
    """
    el = Element(ion)
    idx = [i for i, site in enumerate(structure) if el in site.species]
    occ = np.array([structure[i].species[el] for i in idx])  # (S,)
    frac = structure.frac_coords[idx]  # (S, 3)
    groups = _clusters(structure.lattice, frac, merge_radius)
    coords, occupancy = [], []
    for members in groups:
        ref = frac[members[0]]
        unwrapped = ref + _min_image(frac[members] - ref)  # (m, 3) next to the first member
        extent = np.linalg.norm(structure.lattice.get_cartesian_coords(unwrapped - unwrapped.mean(0)), axis=1)
        if len(members) > 1 and 2 * extent.max() > MAX_MERGE_EXTENT:
            coords.extend(frac[members])  # a chain of close sites, not one split site: keep them
            occupancy.extend(occ[members])
            continue
        coords.append(unwrapped.mean(0) % 1.0)
        occupancy.append(float(occ[members].sum()))
    return Structure(
        structure.lattice,
        [ion] * len(coords),
        coords,
        site_properties={"occupancy": [min(1.0, float(o)) for o in occupancy]},
    )


def skeleton(structure: Structure, ion: str, *, merge_radius: float = MERGE_RADIUS) -> Structure:
    """An ordered stand-in of the average structure for building the hop graph.

    Every candidate ion site (:func:`ion_sites`) holds the ion (a mixed site that can hold
    the ion is an ion site); every other site holds its majority species. Equivalent sites of the average
    structure have the same occupancies, so the stand-in keeps its space group.

    Args:
        structure: the average structure.
        ion: element of the mobile ion.
        merge_radius: see :func:`ion_sites`.

    Returns:
        An ordered structure on the same lattice.
    """
    el = Element(ion)
    sites = ion_sites(structure, ion, merge_radius=merge_radius)
    species, coords = [], []
    for site in structure:
        host = {sp: x for sp, x in site.species.items() if sp.symbol != ion}
        if el in site.species:
            continue  # a candidate ion site (it comes from ion_sites)
        species.append(max(host, key=lambda sp: (host[sp], sp.symbol)).symbol)
        coords.append(site.frac_coords)
    species += [ion] * len(sites)
    coords += list(sites.frac_coords)
    return Structure(structure.lattice, species, coords)


def sample_orderings(
    structure: Structure,
    supercell: np.ndarray | list[list[int]],
    *,
    n: int = DEFAULT_N_ORDERINGS,
    seed: int = DEFAULT_SEED,
    exclusion: float = EXCLUSION,
    max_atoms: int = MAX_SUPERCELL_ATOMS,
) -> list[Ordering]:
    """Draw ``n`` orderings of a disordered structure in a supercell (module docstring).

    Args:
        structure: the average structure (partial occupancies, mixed or split sites).
        supercell: (3, 3) integer supercell matrix (pymatgen's ``make_supercell``).
        n: number of orderings.
        seed: seed; ordering ``k`` uses ``seed + k``, so the first orderings of a
            larger ``n`` are the same.
        exclusion: partial sites sharing a species closer than this (A) are never both
            filled (nor are any two closer than the overlap limit of the checks).
        max_atoms: largest supercell (sites of the average structure) allowed.

    Returns:
        ``n`` orderings, each an ordered supercell.

    Raises:
        DisorderError: the supercell would have more than ``max_atoms`` sites.
    """
    return list(itertools.islice(
        iter_orderings(structure, supercell, seed=seed, exclusion=exclusion, max_atoms=max_atoms), n))


def iter_orderings(
    structure: Structure,
    supercell: np.ndarray | list[list[int]],
    *,
    seed: int = DEFAULT_SEED,
    exclusion: float = EXCLUSION,
    max_atoms: int = MAX_SUPERCELL_ATOMS,
) -> Iterator[Ordering]:
    """The orderings of :func:`sample_orderings`, one at a time and without end.

    Ordering ``k`` uses seed ``seed + k``, as in :func:`sample_orderings`.

    The supercell and its site conflicts are worked out once, before the first ordering;
    a caller that draws until the barriers settle takes as many as it needs.

    Raises:
        DisorderError: the supercell would have more than ``max_atoms`` sites (when the
            first ordering is asked for).
    """
    m = np.asarray(supercell, dtype=int)
    size = len(structure) * abs(round(np.linalg.det(m)))
    formula = structure.composition.reduced_formula
    if size > max_atoms:
        raise DisorderError(
            f"{formula}: the ordering supercell would have {size} sites, more than the cap of "
            f"{max_atoms} (use a smaller max_distance or min_length, or order the structure yourself)"
        )
    sc_lattice, sc_frac, sc_cart, prim = _supercell_arrays(structure, m)
    site_species = [site.species for site in structure]  # of each site of the unit cell
    prim_ordered = [site.is_ordered for site in structure]
    partial = [i for i, p in enumerate(prim) if not prim_ordered[p]]
    full = [i for i, p in enumerate(prim) if prim_ordered[p]]
    is_partial = np.zeros(len(prim), bool)
    is_partial[partial] = True
    # Conflicts within the exclusion distance between sites that share a species (split
    # sites), closer than OVERLAP whatever they hold, or closer than the overlap limit of
    # the input checks for any pair of species they can hold (checks.overlap_limit: P2
    # NaxCoO2's Na 2b and 2d sites, 1.64 A apart). A partial site in conflict with a
    # fully occupied site stays empty; two partial sites in conflict are never both filled.
    prim_symbols = [[sp.symbol for sp in species] for species in site_species]
    symbols = [prim_symbols[p] for p in prim]
    elements = sorted({x for row in symbols for x in row})
    limits = {(x, y): checks.overlap_limit(x, y) for x in elements for y in elements}
    cutoff = max(exclusion, OVERLAP, max(limits.values()))
    centers, points, dist = _neighbor_list(sc_cart, sc_lattice, cutoff)
    blocked_by_full: set[int] = set()
    near: dict[int, list[int]] = defaultdict(list)
    for a, b, d in zip(centers.tolist(), points.tolist(), dist.tolist(), strict=True):
        if not is_partial[a] or a == b or d < 1e-6:
            continue
        shared = set(symbols[a]) & set(symbols[b])
        limit = max(limits[(x, y)] for x in symbols[a] for y in symbols[b])
        if not (shared and d < exclusion) and d >= max(OVERLAP, limit):
            continue
        if is_partial[b]:
            near[a].append(b)
        else:
            blocked_by_full.add(a)
    orbits: dict[tuple, list[int]] = defaultdict(list)
    for i in partial:
        key = tuple(sorted((sp.symbol, round(x, 4)) for sp, x in site_species[prim[i]].items()))
        orbits[key].append(i)
    quota = {key: _largest_remainder(key, len(members)) for key, members in orbits.items()}
    orbit_of = {i: key for key, members in orbits.items() for i in members}
    full_symbols = [prim_symbols[prim[i]][0] for i in full]

    def draw() -> Iterator[Ordering]:
        for k in itertools.count():
            rng = np.random.default_rng(seed + k)
            need = {key: dict(q) for key, q in quota.items()}
            filled: dict[int, str] = {}
            for i in rng.permutation(partial).tolist():
                if i in blocked_by_full or any(j in filled for j in near[i]):
                    continue  # split site: one of the group is already filled
                left = need[orbit_of[i]]
                total = sum(left.values())
                if total == 0:
                    continue  # this orbit's quota is placed: the site stays empty
                names = sorted(left)
                p = np.array([left[s] for s in names], float) / total
                symbol = names[int(rng.choice(len(names), p=p))]
                filled[i] = symbol
                left[symbol] -= 1
            missing: dict[str, int] = defaultdict(int)
            for left in need.values():
                for symbol, c in left.items():
                    if c:
                        missing[symbol] += c
            if missing:
                logger.warning("%s: ordering %d leaves out %s (no free site without an overlap)",
                               formula, k, dict(missing))
            species = full_symbols + [filled[i] for i in sorted(filled)]
            coords = sc_frac[full + sorted(filled)]  # (N, 3)
            ordered, frac = _sorted_sites(sc_lattice, species, coords)
            yield Ordering(sc_lattice, ordered, frac, seed + k, dict(missing))

    return draw()


def _supercell_arrays(structure: Structure, matrix: np.ndarray
                      ) -> tuple[Lattice, np.ndarray, np.ndarray, list[int]]:
    """``structure.make_supercell(matrix)``'s sites as arrays.

    Returns the lattice, (N, 3) fractional and Cartesian coordinates, and (N,) the unit-cell
    site each comes from. pymatgen's own arithmetic (:func:`ase_em.hops.migration_hop.supercell_sites`, which
    builds no ``PeriodicSite``: 10-30 ms a supercell of a few hundred sites), in its order:
    every lattice point of the supercell for the first site, then for the next. A cell
    that is not periodic in all three directions is left to pymatgen.
    """
    from ase_em.hops.migration_hop import supercell_sites

    lattice = structure.lattice
    if not all(lattice.pbc):
        sc = structure.copy()
        sc.make_supercell(matrix)
        n_cells = len(sc) // len(structure)
        return sc.lattice, sc.frac_coords, sc.cart_coords, [i // n_cells for i in range(len(sc))]
    frac, sc_lattice = supercell_sites(structure.frac_coords, lattice, matrix, cart=structure.cart_coords)
    # make_supercell folds the sites into the cell once more (PeriodicSite.to_unit_cell): a
    # coordinate that the first fold rounded up to 1.0 becomes 0.0
    frac = np.mod(frac, 1.0)
    n_cells = len(frac) // len(structure)
    return sc_lattice, frac, site_products(frac, sc_lattice.matrix), [i // n_cells for i in range(len(frac))]


def _neighbor_list(cart: np.ndarray, lattice: Lattice, cutoff: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Structure.get_neighbor_list(cutoff)`` of sites at ``cart`` (A) in ``lattice``, on arrays.

    (center, neighbour, distance): pymatgen's search with its arguments and its self-pair rule.
    """
    from pymatgen.optimization.neighbors import find_points_in_spheres

    cart = np.ascontiguousarray(cart, dtype=float)
    centers, points, _, dist = find_points_in_spheres(
        cart, cart, r=float(cutoff), pbc=np.ascontiguousarray(lattice.pbc, dtype=np.int64),
        lattice=np.ascontiguousarray(lattice.matrix, dtype=float), tol=1e-8,
    )
    keep = ~((centers == points) & (dist <= 1e-8))
    return centers[keep], points[keep], dist[keep]


def _sorted_sites(lattice: Lattice, species: list[str], frac_coords: np.ndarray
                  ) -> tuple[tuple[str, ...], np.ndarray]:
    """The sites of ``Structure(lattice, species, frac_coords).get_sorted_structure()``, as arrays.

    pymatgen sorts sites by (electronegativity, symbol) in a stable sort
    (``Site.__lt__``); sorting the symbols by that key gives the same sites in the same
    order without building a structure. An element without an electronegativity (a
    noble gas) is left to pymatgen's own sort.

    Returns:
        (N,) the elements and (N, 3) the fractional coordinates, sorted.
    """
    x = {sym: Element(sym).X for sym in set(species)}
    if any(not np.isfinite(v) for v in x.values()):
        s = Structure(lattice, species, frac_coords).get_sorted_structure()
        return tuple(site.specie.symbol for site in s), s.frac_coords
    order = sorted(range(len(species)), key=lambda i: (x[species[i]], species[i]))
    return tuple(species[i] for i in order), frac_coords[order]


def exclusion_radius(ion: str, exclusion: float = EXCLUSION) -> float:
    """Distance (A) within which two sites of ``ion`` exclude each other.

    ``max(exclusion, checks.overlap_limit(ion, ion))``: 1.5 A for Li (its limit is 1.28 A),
    1.66 A for Na. A band's host loses the ions this close to either endpoint.
    """
    return max(exclusion, checks.overlap_limit(ion, ion))


def _largest_remainder(key: tuple, n_sites: int) -> dict[str, int]:
    """Atoms of each species on ``n_sites`` sites of one orbit.

    ``occupancy * n_sites`` rounded by largest remainders, the total at most ``n_sites``.
    """
    want = np.array([x * n_sites for _, x in key])  # (species,)
    total = min(n_sites, int(round(float(want.sum()))))
    base = np.floor(want + 1e-9).astype(int)
    extra = total - int(base.sum())
    if extra > 0:
        for j in np.argsort(-(want - base), kind="stable")[:extra]:
            base[j] += 1
    return {symbol: int(c) for (symbol, _), c in zip(key, base, strict=True)}


def _min_image(d: np.ndarray) -> np.ndarray:
    return d - np.round(d)


def _clusters(lattice: Lattice, frac: np.ndarray, radius: float) -> list[list[int]]:
    """Single-linkage clusters of periodic points closer than ``radius`` (A)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(frac)
    if n == 0:
        return []
    d = lattice.get_all_distances(frac, frac)  # (n, n) minimum-image distances
    _, label = connected_components(csr_matrix(d < radius), directed=False)
    return sorted(np.flatnonzero(label == k).tolist() for k in np.unique(label))


def check_time(start: float, label: str, max_seconds: float) -> None:
    """Raise DisorderError when more than ``max_seconds`` have passed since ``start``."""
    spent = time.perf_counter() - start
    if spent > max_seconds:
        raise DisorderError(
            f"{label}: stopped after {spent:.0f} s (time cap {max_seconds:g} s per structure)"
        )


def site_index(lattice: Lattice, frac: np.ndarray, point: np.ndarray, tol: float) -> int | None:
    """Index of the site of ``frac`` ((N, 3)) within ``tol`` (A) of ``point`` ((3,)), else None."""
    if not len(frac):
        return None
    d = lattice.get_all_distances(point[None, :], frac)[0]  # (N,)
    k = int(np.argmin(d))
    return k if d[k] <= tol else None


__all__ = [
    "DEFAULT_N_ORDERINGS",
    "DEFAULT_SEED",
    "EXCLUSION",
    "MAX_SECONDS",
    "MAX_SUPERCELL_ATOMS",
    "MERGE_RADIUS",
    "DisorderError",
    "Ordering",
    "exclusion_radius",
    "ion_sites",
    "is_disordered",
    "sample_orderings",
    "skeleton",
]
