"""Input checks that every reader applies, in one place.

Every entry point (structure files, ASE ``Atoms``, pymatgen ``Structure``, NEB images,
band5 structures, em619 records, ``MigrationHop`` objects, fine-tune rows, ``network``
structures) goes through :mod:`ase_em.hops.hop` (or :func:`ase_em.crystals.structure.to_structure`),
which calls the functions below. Each raises a subclass of
:class:`ase_em.errors.AseEmError` with one line naming the input and the atom or site.

The whole-path check (:func:`path_clearance`, :func:`check_path`, ``BLOCKING_RATIO``,
``GREY_RATIO``, ...) lives in :mod:`ase_em.hops.clearance`. The
thresholds are module constants; ``docs/hops.md`` gives each one and where it came from
(most were measured on the em619 TRAIN hops with ``benchmarks/path_clearance.py``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii

from ase_em.errors import (
    DisorderedStructureError,
    EndpointMismatchError,
    ImplausibleHopError,
    SpeciesError,
    StructureFileError,
)

logger = logging.getLogger(__name__)

MIN_ATOM_DISTANCE = 0.5  # A: absolute floor for any two atoms
# Two atoms closer than this fraction of the sum of their covalent radii (ase.data) are an
# overlap. TRAIN's closest pair is at 0.624 of the radii sum (benchmarks/path_clearance.py;
# three records with a duplicated atom, at 0.004, are left out of training).
MIN_COVALENT_RATIO = 0.5
# Anions (by element): two of them closer than MIN_ANION_RATIO of their covalent-radius sum
# are a misread file, far below any anion-anion bond (an S-S bond of a polysulfide is 0.98,
# an O-O peroxide bond 1.13). Measured with benchmarks/anion_contacts.py (docs/hops.md).
# Pairs of one element only: by element alone, S-O of a sulfate (0.84 of the sum in TRAIN)
# would count. Smallest ratios: TRAIN 1.164 (O-O, M-MnPO4_Na_1); OBELiX, fully occupied
# sites, 0.682 (O-O 0.90 A, ckw.cif and yab.cif), then 0.971 (S-S 2.04 A, fwz.cif). The
# limit is below all of them with a margin; S-S at 1.12 A is 0.53.
ANIONS = ("N", "O", "F", "S", "Cl", "Se", "Br", "Te", "I")
MIN_ANION_RATIO = 0.6
# A site whose occupancies sum to within this of 1 is fully occupied (refinement rounding:
# 0.9999, 1.0001, "1.000(2)" in ICSD/COD files); below 1 - this it is partial, above 1 + this
# it is refused. Stated, not measured: CIF occupancies are given to 2-4 digits.
OCCUPANCY_TOLERANCE = 0.01
# Two sites of the migrating ion closer than this fraction of their covalent-radius sum
# cannot both be filled: candidate sites (a MigrationGraph of the empty host plus every
# site, pymatgen-analysis-diffusion's vac_mode=False), not a crystal's occupied sites.
# TRAIN's smallest pair of two atoms of the ion is 0.745 (K-K 3.02 A, K2CrPO4CO3; three
# records with a duplicated Na atom, at 0.004, are left out of training), measured with
# benchmarks/anion_contacts.py; Mg-Mg 1.79 A of the spinel 8a/16c sites is 0.63.
MIN_ION_PAIR_RATIO = 0.7
# Relaxed endpoints may have slightly different cells: largest accepted strain (the largest
# relative change of length of any vector between the two cells); stated, not measured
# (TRAIN holds band5 records only): 0.48 A, the largest difference in the reference's TEST
# endpoints, on TRAIN's median smallest supercell width (9.6 A) is 5 %.
MAX_CELL_STRAIN = 0.06
# Besides the migrating ion, no atom may move more than this between the endpoints (A).
MAX_HOST_DISPLACEMENT = 1.0
# Two assignments of final to initial atoms whose total displacement differs by less than
# this (A) are equally good: the atom order cannot be recovered.
MATCH_AMBIGUITY = 0.1
# A single Atoms is a band5 only if its first five sites are equally spaced on a line:
# each step within this (A) of the mean step.
BAND5_TOLERANCE = 0.05


_SPECIES = re.compile(r"^([A-Z][a-z]?)(?:\d*[+-]|[+-]\d*)?$")


# ---------------------------------------------------------------------- species


def normalize_species(symbol: str) -> str:
    """The element symbol of a species, with any oxidation state dropped.

    Args:
        symbol: an element symbol, optionally with a charge as pymatgen or a CIF writes it
            (``"Li"``, ``"Li+"``, ``"Li1+"``, ``"O2-"``, ``"Fe+2"``).

    Returns:
        The element symbol (``"Li"``).

    Raises:
        SpeciesError: not an element symbol.
    """
    m = _SPECIES.match(str(symbol).strip())
    if m is None or m.group(1) not in atomic_numbers or m.group(1) == "X":
        raise SpeciesError(
            f"{symbol!r} is not an element symbol (with an optional charge, such as Li, Li+ or Li1+)"
        )
    return m.group(1)


# ---------------------------------------------------------------------- one structure


def check_finite(atoms: Atoms, label: str) -> None:
    """Refuse non-finite (NaN, inf) coordinates or cell entries.

    Args:
        atoms: the structure.
        label: file or role, for the message.

    Raises:
        StructureFileError: naming the first bad atom, or the cell.
    """
    cell = np.asarray(atoms.cell)  # (3, 3)
    if not np.all(np.isfinite(cell)):
        raise StructureFileError(f"{label}: the cell has non-finite entries ({cell.tolist()})")
    bad = np.flatnonzero(~np.all(np.isfinite(atoms.positions), axis=1))
    if bad.size:
        k = int(bad[0])
        more = f" (and {bad.size - 1} more)" if bad.size > 1 else ""
        raise StructureFileError(
            f"{label}: atom {k} ({atoms[k].symbol}) has non-finite coordinates "
            f"{atoms.positions[k].tolist()}{more}"
        )


def check_ordered(structure: Any, label: str) -> None:
    """Refuse partial occupancies and mixed sites.

    ASE's CIF reader keeps the occupancies of each site kind in ``atoms.info["occupancy"]``
    (and fills every partial site with its majority element); pymatgen keeps them on the
    sites (``Structure.is_ordered``).

    Args:
        structure: ASE ``Atoms`` or pymatgen ``Structure``.
        label: file or role, for the message.

    Raises:
        DisorderedStructureError: "partial occupancies; give an ordered structure", naming a
            site and its occupancies.
    """
    if isinstance(structure, Atoms):
        occupancy = structure.info.get("occupancy") or {}
        kinds = structure.arrays.get("spacegroup_kinds")
        for kind, occ in occupancy.items():
            total = sum(float(v) for v in occ.values())
            if total > 1.0 + OCCUPANCY_TOLERANCE:
                what = ", ".join(f"{el} {float(v):.3g}" for el, v in occ.items())
                raise DisorderedStructureError(
                    f"{label}: site kind {kind} is occupied {total:.3g} times ({what}); "
                    "occupancies above 1 are not a crystal"
                )
            if len(occ) > 1 or total < 1.0 - OCCUPANCY_TOLERANCE:
                site = f"kind {kind}"
                if kinds is not None:
                    hit = np.flatnonzero(np.asarray(kinds) == int(kind))
                    site = f"site {int(hit[0])}" if hit.size else site
                what = ", ".join(f"{el} {float(v):.3g}" for el, v in occ.items())
                raise DisorderedStructureError(
                    f"{label}: partial occupancies; give an ordered structure ({site}: {what})"
                )
        return
    if not structure.is_ordered:
        i, site = next((i, s) for i, s in enumerate(structure) if not s.is_ordered)
        what = ", ".join(f"{getattr(el, 'symbol', el)} {occ:.3g}" for el, occ in site.species.items())
        raise DisorderedStructureError(
            f"{label}: partial occupancies; give an ordered structure (site {i}: {what})"
        )


@dataclass(frozen=True)
class Contact:
    """The closest pair of atoms relative to their covalent radii.

    Attributes:
        i: index of the first atom.
        j: index of the second atom.
        distance: their distance (A), minimum image.
        ratio: ``distance / (r_i + r_j)`` with ASE's covalent radii.
    """

    i: int
    j: int
    distance: float
    ratio: float


# A: smallest edge of the search's binning cubes (pymatgen's ``min_r``; its default is 1 A). The
# cubes are the radius wide, so a search for overlaps (0.5-1.7 A) in a 400-atom supercell
# binned thousands of cubes: 2-4 ms, against 0.5 ms with 2.5 A cubes. The same pairs come
# back (pymatgen tests each distance against the radius), in another order.
SEARCH_MIN_CUBE = 2.5


def points_near(points: np.ndarray, centers: np.ndarray, cell: np.ndarray, radius: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every periodic image of ``points`` within ``radius`` of each of ``centers``, in a periodic cell.

    pymatgen's compiled neighbour search (``pymatgen.optimization.neighbors.find_points_in_spheres``):
    the one search behind the hop checks, the domain descriptor and the choice of a
    disordered hop's instance.

    Args:
        points: (N, 3) Cartesian positions (A).
        centers: (C, 3) Cartesian positions (A).
        cell: (3, 3) lattice rows (A), periodic in all three directions.
        radius: largest distance (A).

    Returns:
        center, point: (P,) int64 indices; image: (P, 3) int64 lattice shift of the point's
        image; distance: (P,) (A). A point at a center counts (distance 0). The order of
        the pairs is pymatgen's (by binning cube), not sorted.
    """
    from pymatgen.optimization.neighbors import find_points_in_spheres

    center, point, image, dist = find_points_in_spheres(
        np.ascontiguousarray(points, dtype=float), np.ascontiguousarray(centers, dtype=float), float(radius),
        np.ones(3, dtype=np.int64), np.ascontiguousarray(cell, dtype=float), tol=1e-8,
        min_r=SEARCH_MIN_CUBE,
    )
    return center.astype(np.int64), point.astype(np.int64), np.rint(image).astype(np.int64), dist


def pairs_within(atoms: Atoms, cutoff: float, *, among: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of atoms closer than ``cutoff``, minimum image and periodic images included.

    :func:`points_near` (pymatgen's compiled search) on a periodic cell; ASE's
    ``neighbor_list`` otherwise. Both give the same
    pairs: ASE's took 40 ms on a 336-atom cell, pymatgen's 1 ms, and every hop is checked.

    Args:
        atoms: the structure.
        cutoff: largest distance (A).
        among: (N,) bool mask: only pairs of these atoms (default all).

    Returns:
        i, j: (P,) atom indices (both orders of a pair; ``i == j`` for an atom and its own
        periodic image); d: (P,) distances (A). An atom is never its own pair at zero
        shift; two distinct atoms at one place are a pair at distance 0.
    """
    idx = np.arange(len(atoms)) if among is None else np.flatnonzero(among)
    if idx.size == 0:
        empty = np.zeros(0, int)
        return empty, empty, np.zeros(0)
    cell = np.asarray(atoms.cell, float)
    if not (np.all(atoms.pbc) and abs(np.linalg.det(cell)) > 1e-9):
        from ase.neighborlist import neighbor_list

        sub = atoms[idx]
        i, j, d = neighbor_list("ijd", sub, cutoff)
        return idx[i], idx[j], d
    pos = atoms.positions[idx]
    i, j, image, d = points_near(pos, pos, cell, cutoff)
    real = (i != j) | np.any(image != 0, axis=1)
    return idx[i[real]], idx[j[real]], d[real]


def closest_contact(atoms: Atoms, *, ignore: tuple[int, int] | None = None) -> Contact | None:
    """The pair of atoms closest relative to the sum of their covalent radii.

    Args:
        atoms: a periodic structure.
        ignore: one pair of indices not to count (the ion at its two sites).

    Returns:
        The closest pair among those within the overlap range (``MIN_COVALENT_RATIO``
        of the radii sum, or ``MIN_ATOM_DISTANCE``) times 2; None if no pair is that close.
    """
    radii = covalent_radii[atoms.numbers]  # (N,)
    cutoff = 2 * max(MIN_ATOM_DISTANCE, MIN_COVALENT_RATIO * 2 * float(radii.max()))
    i, j, d = pairs_within(atoms, cutoff)
    keep = i < j
    if ignore is not None:
        a, b = sorted(ignore)
        keep &= ~((i == a) & (j == b))
    i, j, d = i[keep], j[keep], d[keep]
    if i.size == 0:
        return None
    ratio = d / (radii[i] + radii[j])
    # the absolute floor counts as a ratio too, so one ordering serves both rules
    score = np.minimum(ratio / MIN_COVALENT_RATIO, d / MIN_ATOM_DISTANCE)
    m = int(np.argmin(score))
    return Contact(int(i[m]), int(j[m]), float(d[m]), float(ratio[m]))


def sites_clear_of(host_positions: np.ndarray, host_numbers: np.ndarray, sites: np.ndarray, site_number: int,
                   cell: np.ndarray) -> bool:
    """Whether no host atom overlaps any of ``sites`` (the rule of :func:`contact_is_overlap`).

    The pairs of :func:`closest_contact` that hold a site, when the host's own pairs are
    known to be clear (:func:`contacts_clean` on a structure that holds the host): the
    sites' pairs with each other are not counted (one ion at two times).

    Args:
        host_positions: (M, 3) Cartesian positions (A).
        host_numbers: (M,) atomic numbers.
        sites: (S, 3) Cartesian positions of the ion's sites (A).
        site_number: the ion's atomic number.
        cell: (3, 3) lattice rows (A), periodic in all three directions.
    """
    radii = covalent_radii[np.asarray(host_numbers, int)]  # (M,)
    r_site = float(covalent_radii[site_number])
    cutoff = 2 * max(MIN_ATOM_DISTANCE, MIN_COVALENT_RATIO * 2 * max(float(radii.max()), r_site))
    _, point, _, d = points_near(host_positions, sites, cell, cutoff)
    ratio = d / (radii[point] + r_site)
    return not bool(np.any((ratio < MIN_COVALENT_RATIO) | (d < MIN_ATOM_DISTANCE)))


def contacts_clean(atoms: Atoms) -> bool:
    """Whether a periodic structure passes :func:`check_contacts` (no overlap, no anion pair).

    Every pair of atoms of a part of the structure, or of a supercell of it, is a pair of
    the structure at the same distance, so a clean structure's parts are clean too: the
    hops built in one structure check their hosts' contacts once
    (:meth:`ase_em.hops.hop.Hop.in_checked_host`).
    """
    return not contact_is_overlap(closest_contact(atoms)) and anion_contact(atoms) is None


def overlap_limit(a: str, b: str) -> float:
    """Closest distance (A) two atoms of elements ``a`` and ``b`` may be without overlapping.

    ``max(MIN_ATOM_DISTANCE, MIN_COVALENT_RATIO * (r_a + r_b))`` with ASE's covalent radii:
    the limit of :func:`check_contacts`, so that the sampler of orderings
    (:mod:`ase_em.crystals.disorder`) never fills two sites that the checks would refuse.
    """
    ra, rb = covalent_radii[atomic_numbers[a]], covalent_radii[atomic_numbers[b]]
    return max(MIN_ATOM_DISTANCE, MIN_COVALENT_RATIO * float(ra + rb))


def contact_is_overlap(contact: Contact | None) -> bool:
    """Whether a contact breaks the rule (closer than either limit)."""
    return contact is not None and (
        contact.ratio < MIN_COVALENT_RATIO or contact.distance < MIN_ATOM_DISTANCE
    )


def anion_contact(atoms: Atoms) -> Contact | None:
    """The closest pair of two atoms of one anion element (:data:`ANIONS`) below ``MIN_ANION_RATIO``.

    Args:
        atoms: a periodic structure.

    Returns:
        The pair with the smallest ``distance / (r_i + r_j)`` under the limit, else None.
    """
    symbols = np.asarray(atoms.get_chemical_symbols())
    anion = np.isin(symbols, ANIONS)
    if np.count_nonzero(anion) < 1:
        return None
    radii = covalent_radii[atoms.numbers]  # (N,)
    i, j, d = pairs_within(atoms, MIN_ANION_RATIO * 2 * float(radii[anion].max()), among=anion)
    keep = (i < j) & (symbols[i] == symbols[j])
    i, j, d = i[keep], j[keep], d[keep]
    if i.size == 0:
        return None
    ratio = d / (radii[i] + radii[j])
    m = int(np.argmin(ratio))
    return Contact(int(i[m]), int(j[m]), float(d[m]), float(ratio[m])) if ratio[m] < MIN_ANION_RATIO else None


def anion_message(c: Contact, first: str, second: str) -> str:
    """The sentence for an anion-anion contact ``c`` between the atoms named ``first`` and ``second``."""
    return (
        f"{first} and {second} are {c.distance:.3f} A apart, {c.ratio:.2f} of their covalent radii "
        f"sum: two anions far closer than any bond (limit {MIN_ANION_RATIO}); a misread file?"
    )


def check_contacts(atoms: Atoms, label: str) -> None:
    """Refuse atoms far closer than bonding, and anions of one element far closer than any bond.

    Args:
        atoms: a periodic structure.
        label: file or role, for the message.

    Raises:
        ImplausibleHopError: naming the pair, their distance and the covalent limit.
    """
    c = closest_contact(atoms)
    s = atoms.get_chemical_symbols()
    if contact_is_overlap(c):
        raise ImplausibleHopError(
            f"{label}: atoms {c.i} ({s[c.i]}) and {c.j} ({s[c.j]}) are {c.distance:.3f} A apart, "
            f"{c.ratio:.2f} of their covalent radii sum (limit {MIN_COVALENT_RATIO}, and "
            f"{MIN_ATOM_DISTANCE} A)"
        )
    a = anion_contact(atoms)
    if a is not None:
        raise ImplausibleHopError(
            f"{label}: " + anion_message(a, f"atoms {a.i} ({s[a.i]})", f"{a.j} ({s[a.j]})")
        )


def check_structure(atoms: Atoms, label: str) -> None:
    """All checks of a single structure: finite, ordered, no overlapping atoms."""
    check_finite(atoms, label)
    check_ordered(atoms, label)
    check_contacts(atoms, label)


# ---------------------------------------------------------------------- several structures


def check_frames(frames: list[Atoms], label: str) -> None:
    """Refuse NEB frames that are not the same atoms (count and species, in order).

    Args:
        frames: the images.
        label: file or role, for the message.

    Raises:
        EndpointMismatchError: naming the first frame that differs from frame 0.
    """
    ref = frames[0].get_chemical_symbols()
    for k, frame in enumerate(frames[1:], start=1):
        s = frame.get_chemical_symbols()
        if len(s) != len(ref):
            raise EndpointMismatchError(
                f"{label}: frame {k} has {len(s)} atoms, frame 0 has {len(ref)} "
                "(NEB images must hold the same atoms)"
            )
        diff = next((i for i, (x, y) in enumerate(zip(ref, s)) if x != y), None)
        if diff is not None:
            raise EndpointMismatchError(
                f"{label}: atom {diff} is {s[diff]} in frame {k} but {ref[diff]} in frame 0 "
                "(NEB images must list the same atoms in the same order)"
            )


def cell_strain(cell_a: np.ndarray, cell_b: np.ndarray) -> float:
    """Largest relative change of length of any vector from cell ``a`` to cell ``b``.

    Args:
        cell_a: (3, 3) lattice vectors as rows (A).
        cell_b: (3, 3) the other cell.

    Returns:
        The largest singular value of ``F - 1``, where ``cell_b = cell_a @ F``
        (dimensionless; 0.01 is 1 %).
    """
    f = np.linalg.solve(cell_a, cell_b)  # (3, 3)
    return float(np.linalg.svd(f - np.eye(3), compute_uv=False)[0])


def check_cells(a: Atoms, b: Atoms, where: str, *, tolerance: float) -> None:
    """Accept endpoint cells within ``MAX_CELL_STRAIN`` (warn above ``tolerance`` A).

    Raises:
        EndpointMismatchError: the strain is above the limit.
    """
    cell_a, cell_b = np.asarray(a.cell), np.asarray(b.cell)
    dcell = float(np.abs(cell_a - cell_b).max())
    if dcell <= tolerance:
        return
    strain = cell_strain(cell_a, cell_b)
    if strain > MAX_CELL_STRAIN:
        raise EndpointMismatchError(
            f"{where}: the cells differ by {dcell:.3f} A, a strain of {strain:.1%} "
            f"(limit {MAX_CELL_STRAIN:.0%}): not the same host"
        )
    logger.warning(
        "%s: the endpoint cells differ by %.3f A (strain %.2f%%); the band is built in the "
        "initial cell from the fractional coordinates",
        where,
        dcell,
        100 * strain,
    )


def match_endpoints(a: Atoms, b: Atoms, where: str) -> np.ndarray:
    """Match the final endpoint's atoms to the initial one's by species and position.

    Each species is matched on its own with ``scipy.optimize.linear_sum_assignment``,
    minimising the sum of minimum-image distances (in the initial cell, from fractional
    coordinates). The sum of distances, not of squares: by the triangle inequality a
    single ion hopping into a vacancy is then never split into a chain of shorter moves.
    The order as given is kept unless another order is better by ``MATCH_AMBIGUITY``;
    a new order is logged (a warning naming the atoms).

    Args:
        a: initial endpoint.
        b: final endpoint (same atom count).
        where: label for messages.

    Returns:
        (N,) ``order`` such that ``b[order]`` lists the atoms of ``a`` in ``a``'s order.

    Raises:
        EndpointMismatchError: the endpoints hold different elements; the atoms had to be
            reordered but no order makes a hop of one ion (more than one atom moves more
            than ``MAX_HOST_DISPLACEMENT``); or two orders are equally good (naming the atoms).
    """
    sa = np.asarray(a.get_chemical_symbols())
    sb = np.asarray(b.get_chemical_symbols())
    ca, cb = _counts(sa), _counts(sb)
    if ca != cb:
        raise EndpointMismatchError(
            f"{where}: initial is {_formula(ca)} but final is {_formula(cb)}: not one system"
        )
    cell = np.asarray(a.cell)
    fa = a.get_scaled_positions(wrap=False)  # (N, 3)
    fb = b.get_scaled_positions(wrap=False)  # (N, 3): placed in the initial cell as fractions
    order = np.arange(len(a))
    same_order = bool(np.array_equal(sa, sb))
    if same_order:
        disp = np.linalg.norm(_wrap(fb - fa) @ cell, axis=1)  # (N,)
        if np.count_nonzero(disp > MATCH_AMBIGUITY) <= 1:
            return order  # at most one atom moves: the order as given is the best one
    # imported only here: scipy.optimize costs 0.35 s, and most endpoints return above
    from scipy.optimize import linear_sum_assignment

    solved = {}  # element -> (initial indices, final indices, cost matrix, best columns)
    for el in ca:
        ia, ib = np.flatnonzero(sa == el), np.flatnonzero(sb == el)
        frac = _wrap(fb[ib][None, :, :] - fa[ia][:, None, :])  # (n, n, 3)
        cost = np.linalg.norm(frac @ cell, axis=2)  # (n, n) A
        rows, cols = linear_sum_assignment(cost)
        best = float(cost[rows, cols].sum())
        if np.array_equal(ia, ib) and float(np.trace(cost)) <= best + MATCH_AMBIGUITY:
            cols = np.arange(len(ia))  # the order as given is as good
        order[ia] = ib[cols]
        solved[el] = (ia, ib, cost, cols)
    if np.array_equal(order, np.arange(len(a))):
        return order
    moves = np.linalg.norm(_wrap(fb[order] - fa) @ cell, axis=1)  # (N,) after matching
    movers = np.flatnonzero(moves > MAX_HOST_DISPLACEMENT)
    if movers.size > 1:
        given = ""
        if not same_order:
            k = int(np.flatnonzero(sa != sb)[0])
            given = f"atom {k} is {sa[k]} in initial but {sb[k]} in final, and "
        listed = ", ".join(f"{int(j)} ({sa[j]}, {moves[j]:.2f} A)" for j in movers[:5])
        raise EndpointMismatchError(
            f"{where}: {given}matching the atoms by species and position leaves {movers.size} atoms "
            f"moving more than {MAX_HOST_DISPLACEMENT} A ({listed}): not a hop of one ion between "
            "two endpoints of one system"
        )
    for el, (ia, ib, cost, cols) in solved.items():
        moved = [r for r in range(len(ia)) if ib[cols[r]] != ia[r]]
        best = float(cost[np.arange(len(ia)), cols].sum())
        for r in moved:  # is there another order as good? forbid each new pair in turn
            alt = cost.copy()
            alt[r, cols[r]] = 1e6
            r2, c2 = linear_sum_assignment(alt)
            if float(alt[r2, c2].sum()) < best + MATCH_AMBIGUITY:
                raise EndpointMismatchError(
                    f"{where}: the final endpoint lists the {el} atoms in another order and the "
                    f"match is ambiguous (initial atom {int(ia[r])} could be final atom "
                    f"{int(ib[cols[r]])} or {int(ib[c2[r]])}); give the same atoms in the same order"
                )
        if moved:
            pairs = ", ".join(f"{int(ia[r])}<-{int(ib[cols[r]])}" for r in moved[:6])
            logger.warning(
                "%s: the final endpoint lists %d %s atoms in another order; matched by position "
                "(initial<-final: %s%s)",
                where,
                len(moved),
                el,
                pairs,
                ", ..." if len(moved) > 6 else "",
            )
    return order


def _wrap(frac: np.ndarray) -> np.ndarray:
    return frac - np.round(frac)


def _counts(symbols: np.ndarray) -> dict[str, int]:
    els, n = np.unique(symbols, return_counts=True)
    return {str(e): int(k) for e, k in zip(els, n)}


def _formula(counts: dict[str, int]) -> str:
    return "".join(f"{e}{n}" for e, n in sorted(counts.items()))


# ---------------------------------------------------------------------- band5


def band5_steps(atoms: Atoms) -> np.ndarray:
    """The four minimum-image steps between the first five sites of a band.

    Returns:
        (4, 3) Cartesian steps (A).
    """
    frac = atoms.get_scaled_positions(wrap=False)[:5]  # (5, 3)
    return _wrap(np.diff(frac, axis=0)) @ np.asarray(atoms.cell)


def check_band5(atoms: Atoms, label: str) -> np.ndarray:
    """Refuse a single structure that is not a band5 (five equally spaced ion images + host).

    Args:
        atoms: the structure.
        label: file or role, for the message.

    Returns:
        (3,) the hop vector (A): the sum of the four minimum-image steps.

    Raises:
        StructureFileError: saying what was expected and what the first five sites are.
    """
    symbols = atoms.get_chemical_symbols()
    expected = (
        "a single structure must be a band5: sites 0-4 the migrating ion at five equally spaced "
        "points of a straight hop, then the host; give two endpoints or NEB images instead"
    )
    if len(atoms) <= 5 or len(set(symbols[:5])) != 1:
        raise StructureFileError(
            f"{label}: not a band5 structure (sites 0-4 are {', '.join(symbols[:5])}); {expected}"
        )
    steps = band5_steps(atoms)  # (4, 3)
    off = float(np.linalg.norm(steps - steps.mean(axis=0), axis=1).max())
    if off > BAND5_TOLERANCE:
        lengths = ", ".join(f"{x:.2f}" for x in np.linalg.norm(steps, axis=1))
        raise StructureFileError(
            f"{label}: not a band5 structure: sites 0-4 ({symbols[0]}) are not five equally spaced "
            f"points on a line (steps {lengths} A, off by up to {off:.2f} A); {expected}"
        )
    return steps.sum(axis=0)
