"""A pymatgen-analysis-diffusion ``MigrationHop`` -> :class:`ase_em.hops.hop.Hop`.

A hop-level conversion: :func:`ase_em.hops.as_hop` calls it for a ``MigrationHop``, and
the crystal stage (:mod:`ase_em.crystals.labelling`) for every hop of a graph. pymatgen is
imported here, so import this module only when a ``MigrationHop`` is at hand.

* :func:`hop_from_migration_hop`: a hop between two occupied sites, built the way the
  training data were: a vacancy-mode supercell (pymatgen-analysis-diffusion's
  ``get_start_end_structures(..., vac_mode=True)``, the function behind
  ``MigrationHop.get_sc_structures(vac_mode=True)``), the ion hopping into the vacancy left
  at its final site, the host taken from the initial endpoint. Only the start structure is
  needed, so :func:`vacancy_start_arrays` builds it the way that function does
  (pymatgen's supercell arithmetic, then the sites within ``tol`` of the final site
  removed) on arrays, without the end and empty supercells, pymatgen's per-site objects or
  its Python loop over sites (the same structure, site for site and bit for bit,
  ``tests/crystals/test_labelling.py``).
* :func:`hop_with_empty_sites`: a hop in a structure that also holds candidate empty sites
  (the site property :data:`EMPTY_SITE`), into an occupied or an empty site.

Supercell rule: the supercell is a diagonal repetition ``n_i`` of the Niggli-reduced
cell, the smallest one whose three perpendicular widths (distances between opposite
faces) are all at least ``max(min_length, 2 * hop length + 1 A)``; ``min_length``
defaults to 10 A, the default of ``get_sc_structures`` and about the median smallest
width of the training supercells (9.6 A). So the ion, the vacancy and their periodic
copies are at least ``min_length`` apart, every sphere of diameter ``min_length`` around
the hop holds each atom once, and the straight ion path is the minimum-image one. It is
deterministic and needs no search (pymatgen's ``CubicSupercellTransformation`` took 80 s
on a rhombohedral LiCoO2 primitive cell).
"""

from __future__ import annotations

import numpy as np
from pymatgen.analysis.diffusion.neb.pathfinder import MigrationHop
from pymatgen.core import Lattice, PeriodicSite, Structure

from ase_em.config import NetworkOptions
from ase_em.errors import VacancySupercellError
from ase_em.hops import checks
from ase_em.hops.hop import Hop
from ase_em.hops.site_arithmetic import site_products

DEFAULT_MIN_LENGTH = NetworkOptions.min_length  # A: smallest perpendicular width of the vacancy supercell
PATH_MARGIN = 1.0  # A: the supercell widths are also at least 2 * hop length + this
EMPTY_SITE = "empty_site"  # site property: True for a candidate empty site of the ion
SITE_TOLERANCE = 1e-3  # A: smallest tolerance for a hop endpoint to be a structure site


def supercell_matrix(lattice: Lattice, min_length: float) -> np.ndarray:
    """Supercell matrix of the vacancy supercell (the rule in the module docstring).

    Args:
        lattice: lattice of the unit cell.
        min_length: smallest allowed perpendicular width of the supercell (A).

    Returns:
        (3, 3) integer matrix ``M``; the supercell lattice is ``M @ lattice.matrix``.
    """
    reduced = lattice.get_niggli_reduced_lattice()
    t = np.rint(reduced.matrix @ np.linalg.inv(lattice.matrix)).astype(int)  # reduced = t @ lattice
    if abs(round(np.linalg.det(t))) != 1 or not np.allclose(t @ lattice.matrix, reduced.matrix, atol=1e-6):
        t = np.eye(3, dtype=int)  # keep the cell as given
    m = t @ lattice.matrix  # (3, 3) rows are the cell vectors
    volume = abs(np.linalg.det(m))
    widths = np.array([volume / np.linalg.norm(np.cross(m[(i + 1) % 3], m[(i + 2) % 3])) for i in range(3)])
    n = np.maximum(1, np.ceil(min_length / widths - 1e-9)).astype(int)  # (3,)
    return np.diag(n) @ t


PYMATGEN_FRACTIONAL_TOLERANCE = 1e-3  # are_symmetrically_equivalent's default, in fractions


def site_tolerance(hop: MigrationHop) -> float:
    """How far (A) a hop endpoint may be from a structure site: pymatgen's own tolerance.

    ``MigrationHop`` finds its sites with ``are_symmetrically_equivalent`` (1e-3 of each
    lattice vector) and compares hops with its ``symprec``; the larger of the two (in A),
    and at least ``SITE_TOLERANCE``.
    """
    lattice = hop.symm_structure.lattice
    frac = PYMATGEN_FRACTIONAL_TOLERANCE * max(lattice.abc)
    return max(SITE_TOLERANCE, frac, float(getattr(hop, "symprec", 0.0) or 0.0))


def snap_to_site(site: PeriodicSite, structure: Structure, tol: float, what: str, name: str) -> PeriodicSite:
    """The site of ``structure`` (same element) that ``site`` stands for, within ``tol`` A.

    Args:
        site: the hop's initial or final site.
        structure: the structure with every migrating-ion site occupied.
        tol: largest accepted distance (A).
        what: "initial" or "final", for the message.
        name: label of the hop, for the message.

    Returns:
        ``site`` moved onto the structure's site (the periodic image nearest to ``site``).

    Raises:
        VacancySupercellError: no site of that element within ``tol``; the message gives the
            distance to the nearest one.
    """
    ion = site.specie.symbol
    same = [i for i, s in enumerate(structure) if s.specie.symbol == ion]
    if not same:
        raise VacancySupercellError(f"{name}: the structure has no {ion} site")
    frac = structure.lattice.get_fractional_coords(site.coords)  # (3,)
    fc = structure.frac_coords[same]  # (n, 3)
    d_all = structure.lattice.get_all_distances(frac[None, :], fc)[0]  # (n,)
    k = int(np.argmin(d_all))
    if d_all[k] > tol:
        raise VacancySupercellError(
            f"{name}: the {what} site {np.round(frac, 4).tolist()} is {d_all[k]:.3f} A from the nearest "
            f"{ion} site of the structure (site {same[k]}; tolerance {tol:.3g} A): "
            "not an occupied site"
        )
    _, image = structure.lattice.get_distance_and_image(frac, fc[k])
    return PeriodicSite(site.species, fc[k] + image, structure.lattice)


def supercell_sites(frac: np.ndarray, lattice: Lattice, sc_mat: np.ndarray, cart: np.ndarray | None = None
                    ) -> tuple[np.ndarray, Lattice]:
    """Fractional coordinates of ``Structure.__mul__``'s supercell, on arrays.

    pymatgen's arithmetic, in its order: each site's Cartesian position plus every lattice
    point of the supercell (site by site, :func:`lattice_points_in_supercell`'s order),
    converted to the supercell lattice and wrapped into it. Written on arrays because
    pymatgen builds a ``PeriodicSite`` per atom twice over (a third of an ordered
    crystal's hop time).

    Args:
        frac: (N, 3) fractional coordinates on ``lattice``.
        lattice: the unit cell.
        sc_mat: (3, 3) integer supercell matrix.
        cart: (N, 3) the sites' Cartesian positions as their ``PeriodicSite``s hold them (a site
            made from Cartesian coordinates keeps those, which can differ from ``frac``
            times the lattice in the last bit); default: computed from ``frac`` as a site
            made from fractional coordinates computes them.

    Returns:
        (N * T, 3) fractional coordinates on the supercell lattice (T cells), and that lattice.
    """
    from pymatgen.util.coord import lattice_points_in_supercell

    sc = np.array(sc_mat, int)
    new_lattice = Lattice(np.dot(sc, lattice.matrix), pbc=lattice.pbc)
    cart_lattice = new_lattice.get_cartesian_coords(lattice_points_in_supercell(sc))  # (T, 3)
    if cart is None:
        cart = site_products(frac, lattice.matrix)  # (N, 3), as each site's .coords
    coords = (cart[:, None, :] + cart_lattice[None, :, :]).reshape(-1, 3)
    return np.mod(site_products(coords, new_lattice.inv_matrix), 1.0), new_lattice


def vacancy_start_arrays(
    esite_frac: np.ndarray, symbols: np.ndarray, frac: np.ndarray, lattice: Lattice, sc_mat: np.ndarray,
    *, tol: float,
) -> tuple[np.ndarray, np.ndarray, Lattice, int]:
    """:func:`vacancy_start_structure` on arrays.

    Returns the elements (M,), fractional coordinates (M, 3) and lattice of the start
    structure, and how many sites were removed. ``esite_frac`` (3,) is the final site on
    ``lattice``; ``symbols`` (N,) and ``frac`` (N, 3) are the unit cell's sites.
    """
    sc_frac, sc_lattice = supercell_sites(frac, lattice, sc_mat)
    sc_symbols = np.repeat(np.asarray(symbols), len(sc_frac) // len(frac))
    target = np.dot(esite_frac, np.linalg.inv(sc_mat))  # (3,) on the supercell lattice
    dist = sc_lattice.get_all_distances(target[None, :], sc_frac)[0]  # (N * T,)
    gone = dist <= tol
    return sc_symbols[~gone], sc_frac[~gone], sc_lattice, int(gone.sum())


def vacancy_start_structure(
    esite: PeriodicSite, base: Structure, sc_mat: list[list[int]], *, tol: float
) -> tuple[Structure, int]:
    """The start structure of pymatgen-analysis-diffusion's vacancy-mode supercells.

    As ``get_start_end_structures(..., vac_mode=True)`` builds it: ``base * sc_mat`` less
    every site within ``tol`` of the final site (computed on arrays,
    :func:`vacancy_start_arrays`; the same sites to the last bit).

    Args:
        esite: the final site, on ``base``'s lattice.
        base: the unit cell, every ion site occupied (ordered).
        sc_mat: (3, 3) integer supercell matrix.
        tol: removal distance (A), periodic.

    Returns:
        The start structure (sites in the supercell's order) and how many sites were removed.
    """
    symbols = np.array([site.species_string for site in base])
    kept, frac, lattice, n_removed = vacancy_start_arrays(
        esite.frac_coords, symbols, base.frac_coords, base.lattice, np.array(sc_mat), tol=tol
    )
    return Structure(lattice, kept.tolist(), frac), n_removed


_CLEAN_STRUCTURES: dict[bytes, bool] = {}  # contacts_clean of the structures hops were built in
CLEAN_CACHE_SIZE = 64  # structures remembered (a graph's hops share one)


def structure_contacts_clean(structure: Structure, symbols: np.ndarray) -> bool:
    """:func:`ase_em.hops.checks.contacts_clean` of a structure, computed once per content.

    The hops of one graph share its structure (every site occupied), and each vacancy
    supercell holds part of a supercell of it, so its verdict serves all of them. Keyed by
    the lattice, coordinates and elements, so an edited structure is checked afresh.

    Args:
        structure: the structure (periodic).
        symbols: (N,) its sites' elements.
    """
    from ase import Atoms

    frac = structure.frac_coords
    key = structure.lattice.matrix.tobytes() + frac.tobytes() + "|".join(symbols.tolist()).encode()
    if key not in _CLEAN_STRUCTURES:
        if len(_CLEAN_STRUCTURES) >= CLEAN_CACHE_SIZE:
            _CLEAN_STRUCTURES.pop(next(iter(_CLEAN_STRUCTURES)))
        atoms = Atoms(symbols.tolist(), scaled_positions=frac, cell=structure.lattice.matrix, pbc=True)
        _CLEAN_STRUCTURES[key] = checks.contacts_clean(atoms)
    return _CLEAN_STRUCTURES[key]


def hop_from_migration_hop(
    hop: MigrationHop, *, min_length: float = DEFAULT_MIN_LENGTH, name: str | None = None
) -> Hop:
    """The vacancy-mode hop of a ``MigrationHop``, as the training data were built.

    The supercell holds every site of ``hop.symm_structure`` (all migrating-ion sites
    occupied) except the final site: the ion at ``hop.isite`` hops into that vacancy.
    Endpoints within pymatgen's own tolerance (:func:`site_tolerance`) of a structure site
    are moved onto it. The atom order of pymatgen's vacancy supercells differs between
    the start and end structures (each removes a different site), so only the start
    structure is used and the ion is found by its position.

    Args:
        hop: the migration hop (from a ``MigrationGraph`` or ``DistinctPathFinder``).
        min_length: smallest perpendicular width of the supercell (A); see the module
            docstring for the rule.
        name: label of the hop (default: formula and hop length).

    Returns:
        The validated hop (ion, start and end in A, host of the initial endpoint).

    Raises:
        VacancySupercellError: an endpoint is not an occupied site of the structure (the
            message gives its distance to the nearest site).
        ImplausibleHopError: the straight path passes through a host atom
            (:class:`ase_em.errors.BlockedPathError`) or atoms overlap.
    """
    if EMPTY_SITE in hop.symm_structure.site_properties:  # a network with candidate empty sites
        return hop_with_empty_sites(hop, min_length=min_length, name=name)
    base = hop.symm_structure  # all sites, ion sites occupied
    symbols = np.array([site.specie.symbol for site in base])  # elements (oxidation states dropped)
    ion = hop.isite.specie.symbol
    length = hop.length
    name = name or f"{base.composition.element_composition.reduced_formula} {ion} hop {length:.3f} A"
    tol = site_tolerance(hop)
    isite = snap_to_site(hop.isite, base, tol, "initial", name)
    esite = snap_to_site(hop.esite, base, tol, "final", name)
    # keep the hop vector as given: move the final site by the same lattice vector as the initial
    given = hop.esite.frac_coords - hop.isite.frac_coords  # (3,)
    shift = np.round((esite.frac_coords - isite.frac_coords) - given)
    esite = PeriodicSite(esite.species, esite.frac_coords - shift, base.lattice)
    length = float(np.linalg.norm(esite.coords - isite.coords))
    sc = supercell_matrix(base.lattice, max(min_length, 2 * length + PATH_MARGIN))
    kept, frac_start, lattice, n_removed = vacancy_start_arrays(
        esite.frac_coords, symbols, base.frac_coords, base.lattice, sc, tol=SITE_TOLERANCE
    )
    if n_removed != 1:
        raise VacancySupercellError(
            f"{name}: the final site is not one occupied {ion} site of the structure "
            f"({n_removed} sites removed instead of one)"
        )
    frac = lattice.get_fractional_coords(isite.coords)  # (3,)
    dist = lattice.get_all_distances(frac[None, :], frac_start)[0]  # (N,)
    k = int(np.argmin(dist))
    if dist[k] > SITE_TOLERANCE or kept[k] != ion:
        raise VacancySupercellError(
            f"{name}: the initial site is {dist[k]:.3f} A from the nearest site of the supercell "
            f"({kept[k]}); not an occupied {ion} site"
        )
    keep = np.arange(len(kept)) != k
    positions = site_products(frac_start, lattice.matrix)  # (N, 3), as the start structure's cart_coords
    begin = positions[k].copy()
    clean = structure_contacts_clean(base, symbols)  # the host is part of a supercell of `base`
    return (Hop.in_checked_host if clean else Hop)(
        ion=ion,
        start=begin,
        end=begin + (esite.coords - isite.coords),
        host_symbols=tuple(kept[keep].tolist()),
        host_positions=positions[keep].copy(),
        cell=np.array(lattice.matrix, float),
        ion_index=k,
        name=name,
    )


def is_empty_site(site) -> bool:
    """Whether a pymatgen site is a candidate empty site (see :func:`add_empty_sites`)."""
    return bool(getattr(site, "properties", {}).get(EMPTY_SITE))


def hop_with_empty_sites(hop, *, min_length: float | None = None, name: str | None = None):
    """The hop of a ``MigrationHop`` in a structure with candidate empty sites.

    Built as the training data were, in the initial endpoint's host: the supercell of
    :func:`ase_em.hops.migration_hop.supercell_matrix` holds every occupied site of
    ``hop.symm_structure`` (the candidate empty sites are left out), the ion sits at the
    occupied ``hop.isite``; the host is every other atom, less the final site's ion when
    that site is occupied (a vacancy hop, as :func:`ase_em.hops.migration_hop.hop_from_migration_hop`
    builds it) and nothing more when it is a candidate empty site.

    Args:
        hop: a ``MigrationHop`` of a graph from
            :func:`ase_em.crystals.hop_graph.build_migration_graph` (``isite`` occupied).
        min_length: smallest perpendicular width of the supercell (A; default that of
            :mod:`ase_em.hops.migration_hop`).
        name: label of the hop (default: formula, hop length, and "-> empty site").

    Returns:
        The validated :class:`ase_em.hops.hop.Hop`.

    Raises:
        ase_em.hops.migration_hop.VacancySupercellError: the initial site is not an occupied ion site.
        ase_em.errors.ImplausibleHopError: the straight path passes through a host atom.
    """
    occupied = Structure.from_sites([s for s in hop.symm_structure if not is_empty_site(s)])
    occupied.remove_oxidation_states()
    ion = hop.isite.specie.symbol
    into_empty = is_empty_site(hop.esite)
    name = name or (f"{occupied.composition.reduced_formula} {ion} hop {hop.length:.3f} A"
                    + (" -> empty site" if into_empty else ""))
    if is_empty_site(hop.isite):
        raise VacancySupercellError(
            f"{name}: the initial site is an empty site; hops start at an occupied site"
        )
    tol = site_tolerance(hop)
    isite = snap_to_site(hop.isite, occupied, tol, "initial", name)
    vector = hop.esite.coords - hop.isite.coords  # (3,) A
    length = float(np.linalg.norm(vector))
    sc = supercell_matrix(occupied.lattice, max(min_length or DEFAULT_MIN_LENGTH, 2 * length + PATH_MARGIN))
    # occupied * sc, on arrays (supercell_sites: pymatgen's arithmetic and site order)
    big_frac, big_lattice = supercell_sites(occupied.frac_coords, occupied.lattice, sc)
    symbols = np.repeat([site.specie.symbol for site in occupied], len(big_frac) // len(occupied))  # (N,)
    frac_i = big_lattice.get_fractional_coords(isite.coords)  # (3,)
    frac_e = big_lattice.get_fractional_coords(isite.coords + vector)  # (3,)
    dist_i = big_lattice.get_all_distances(frac_i[None, :], big_frac)[0]  # (N,)
    dist_e = big_lattice.get_all_distances(frac_e[None, :], big_frac)[0]  # (N,)
    k = int(np.argmin(dist_i))
    if dist_i[k] > tol or symbols[k] != ion:
        raise VacancySupercellError(
            f"{name}: the initial site is not an occupied {ion} site of the supercell"
        )
    drop = {k}
    if not into_empty:  # a vacancy hop: the final site's ion is removed
        j = int(np.argmin(dist_e))
        if dist_e[j] > tol or symbols[j] != ion:
            raise VacancySupercellError(
                f"{name}: the final site is neither occupied nor a candidate empty site"
            )
        drop.add(j)
    keep = np.ones(len(big_frac), bool)
    keep[list(drop)] = False
    positions = site_products(big_frac, big_lattice.matrix)  # (N, 3), as Structure.cart_coords
    return Hop(
        ion=ion,
        start=positions[k].copy(),
        end=positions[k] + vector,
        host_symbols=tuple(symbols[keep].tolist()),
        host_positions=positions[keep].copy(),
        cell=np.array(big_lattice.matrix, float),
        ion_index=int(np.sum(keep[:k])),
        name=name,
    )
