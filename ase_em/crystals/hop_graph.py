"""The hop network of an ion, as a pymatgen-analysis-diffusion ``MigrationGraph``, built fast.

``MigrationGraph.with_distance`` is what ase-em used before, and it does not scale:

* ``MigrationGraph.symm_structure`` is a property that runs spglib on the whole structure
  each time it is read, and it is read once per edge (``_get_pos_and_migration_hop``);
* ``_group_and_label_hops`` compares every pair of hops (``generic_groupby``), each
  comparison a ``Structure.__eq__`` of the two hops' structures plus a loop over the
  symmetry operations: quadratic in the number of edges, with a large constant. On the
  1008-atom LiFePO4 supercell (144 Li) it ran for minutes without output.

:func:`build_migration_graph` returns the same kind of object (a ``MigrationGraph``
subclass, so ``unique_hops``, ``add_data_to_similar_edges``, ``get_path`` work as before):

1. the structure is reduced to its primitive cell first (``get_primitive_structure``): the
   1008-atom supercell becomes the 28-atom LiFePO4 cell;
2. optionally, candidate empty sites of the ion are added (:mod:`ase_em.crystals.empty_sites`);
3. the edges are all ion-ion pairs up to ``max_distance`` from one neighbour list
   (candidate empty site to candidate empty site excluded: such a hop has no occupied
   endpoint to build its band in; an occupied -> empty edge always starts at the occupied
   site);
4. spglib runs once (:class:`HopGraph` caches ``symm_structure``); empty sites are given a
   stand-in element for it, so they are never equivalent to occupied sites;
5. hops are grouped by the relation pymatgen uses (same length within 1e-3 A, and a
   symmetry operation mapping the (initial, midpoint, end) sites of one onto the other's,
   fractional tolerance ``symprec``), but each hop is compared only with one
   representative of each group of the same length and site orbits, and all symmetry
   operations at once (numpy): about linear in the number of edges.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph
from pymatgen.analysis.graphs import StructureGraph
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from pymatgen.symmetry.structure import SymmetrizedStructure

from ase_em.crystals.empty_sites import add_empty_sites, find_empty_sites
from ase_em.hops.migration_hop import EMPTY_SITE, is_empty_site

if TYPE_CHECKING:
    from ase_em.crystals.empty_sites import EmptySites

logger = logging.getLogger(__name__)

LENGTH_TOL = 1e-3  # A: hops of different length are never equivalent (pymatgen's MigrationHop.__eq__)
STAND_INS = ("Xe", "Kr", "Rn", "Ar", "Ne", "He")  # elements standing for empty sites in spglib


def symmetrized(structure: Structure, symprec: float) -> SymmetrizedStructure:
    """The structure with its symmetry (spglib once); empty sites never equivalent to occupied ones.

    Args:
        structure: the structure, candidate empty sites marked ``empty_site``.
        symprec: spglib symmetry precision (A).

    Returns:
        A ``SymmetrizedStructure`` of ``structure`` itself (same sites and order).
    """
    marked = structure.copy()
    empty = [i for i, site in enumerate(structure) if is_empty_site(site)]
    if empty:
        present = {el.symbol for el in structure.composition.elements}
        stand_in = next(el for el in STAND_INS if el not in present)
        for i in empty:
            marked.replace(i, stand_in, properties=structure[i].properties)
    sga = SpacegroupAnalyzer(marked, symprec=symprec)
    data = sga.get_symmetry_dataset()
    operations = sga.get_space_group_operations()
    return SymmetrizedStructure(structure, operations, data.equivalent_atoms, data.wyckoffs)


def primitive_cell(structure: Structure, symprec: float = 0.1) -> Structure:
    """The primitive cell of ``structure``, in the same Cartesian frame, atoms not moved.

    spglib's ``primitive_lattice`` and ``mapping_to_primitive`` (one symmetry analysis)
    pick the lattice and one atom of each class; pymatgen's ``get_primitive_structure``
    gives the same cell but took 2.5 s on a 160-atom garnet and 4 s on a 1008-atom
    LiFePO4 supercell. Falls back to it when spglib's cell does not reproduce every atom.

    Args:
        structure: an ordered crystal.
        symprec: spglib symmetry precision (A).

    Returns:
        ``structure`` itself when it is primitive, else its primitive cell.
    """
    from pymatgen.core import Lattice

    data = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_dataset()
    mapping = np.asarray(data.mapping_to_primitive)
    if len(set(mapping.tolist())) == len(structure):
        return structure
    first = sorted({int(m): i for i, m in reversed(list(enumerate(mapping)))}.values())
    prim = Structure(
        Lattice(data.primitive_lattice),
        [structure[i].species for i in first],
        structure.cart_coords[first],
        coords_are_cartesian=True,
        site_properties={k: [v[i] for i in first] for k, v in structure.site_properties.items()},
    )
    # every atom must be a lattice translate of its class's atom (same frame, nothing moved)
    frac = prim.lattice.get_fractional_coords(structure.cart_coords)  # (N, 3)
    owner = {int(mapping[i]): k for k, i in enumerate(first)}
    delta = frac - prim.frac_coords[[owner[int(m)] for m in mapping]]
    off = (delta - np.round(delta)) @ prim.lattice.matrix  # (N, 3) A
    if not np.all(np.linalg.norm(off, axis=1) < max(symprec, 1e-3)):
        logger.info("spglib's primitive cell does not reproduce the atoms; using get_primitive_structure")
        return structure.get_primitive_structure()
    return prim


LABEL_CACHE = "ase_em_edges_by_label"  # key of the label index in a graph's __networkx_cache__


def _label_index(graph: Any) -> dict[Any, list[dict]]:
    """hop_label -> the data dicts of its edges, in the graph's edge order."""
    by_label: dict[Any, list[dict]] = {}
    for _, _, d in graph.edges(data=True):
        by_label.setdefault(d["hop_label"], []).append(d)
    return by_label


class HopGraph(MigrationGraph):
    """A ``MigrationGraph`` whose symmetry is computed once and whose hops are grouped fast.

    Same constructor, attributes and methods as ``MigrationGraph``; build it with
    :func:`build_migration_graph`. Sites of ``only_sites`` marked ``empty_site`` are
    candidate empty sites of the ion.
    """

    def __init__(
        self,
        structure: Structure,
        m_graph: StructureGraph,
        symprec: float = 0.1,
        vac_mode: bool = False,
        *,
        progress: bool = False,
    ) -> None:
        """See ``MigrationGraph``; the symmetry is computed here, once; ``progress`` shows a bar."""
        self._symm = symmetrized(structure, symprec)
        self.progress = progress
        super().__init__(structure, m_graph, symprec=symprec, vac_mode=vac_mode)

    def _get_pos_and_migration_hop(self, u: int, v: int, w: int) -> None:
        """Put a ``MigrationHop`` on edge (u, v, w), its endpoints' orbits looked up.

        ``MigrationHop.__init__`` finds each endpoint's orbit by testing every symmetry
        operation against every orbit (0.3 s a hop on a 1008-atom cell); here both
        endpoints are sites of the structure, so their orbit is known. The end site keeps
        its site properties (``empty_site``), which pymatgen's version drops.
        """
        from pymatgen.analysis.diffusion.neb.pathfinder import MigrationHop
        from pymatgen.core import PeriodicSite

        if not hasattr(self, "_orbit_of_ion_site"):
            orbit = np.empty(len(self.structure), int)
            for i, members in enumerate(self._symm.equivalent_indices):
                orbit[members] = i
            lattice = self.structure.lattice
            d = lattice.get_all_distances(self.only_sites.frac_coords, self.structure.frac_coords)
            self._orbit_of_ion_site = orbit[np.argmin(d, axis=1)]  # (S,)
        edge = self.m_graph.graph[u][v][w]
        lattice = self.only_sites.lattice
        i_site = self.only_sites[u]
        end = self.only_sites[v]
        e_site = PeriodicSite(end.species, end.frac_coords + np.array(edge["to_jimage"]), lattice,
                              properties=end.properties)
        edge["ipos"] = i_site.frac_coords
        edge["epos"] = e_site.frac_coords
        edge["ipos_cart"] = lattice.get_cartesian_coords(i_site.frac_coords)
        edge["epos_cart"] = lattice.get_cartesian_coords(e_site.frac_coords)
        hop = MigrationHop.__new__(MigrationHop)  # the attributes __init__ sets, without its search
        hop.isite, hop.esite = i_site, e_site
        hop.iindex, hop.eindex = int(self._orbit_of_ion_site[u]), int(self._orbit_of_ion_site[v])
        hop.symm_structure, hop.host_symm_struct, hop.symprec = self._symm, None, self.symprec
        hop.msite = PeriodicSite(e_site.specie, (i_site.frac_coords + e_site.frac_coords) / 2, lattice)
        edge["hop"] = hop

    def add_data_to_similar_edges(self, target_label: int | str, data: dict, m_hop: Any = None) -> None:
        """``MigrationGraph.add_data_to_similar_edges``, the edges of each label found once.

        pymatgen's walks every edge of the graph for each label (O(labels x edges) for a
        network's labelling; 620,000 edge visits in 40 OBELiX CIFs); here the edges of each
        label are listed on the first call and kept while the graph has the same edges. With
        ``m_hop`` (the direction of array data) pymatgen's own method runs.
        """
        if m_hop is not None:
            super().add_data_to_similar_edges(target_label, data, m_hop)
            return
        for d in self._edges_by_label().get(target_label, ()):
            d.update(data)

    def _edges_by_label(self) -> dict[Any, list[dict]]:
        """hop_label -> the data dicts of its edges, in the graph's edge order (kept per edge set).

        Kept in the graph's ``__networkx_cache__``, which networkx (3.3 and later) empties at
        every change of its nodes or edges; with an older networkx, kept while the number of
        edges (a walk over the nodes to count) is unchanged.
        """
        graph = self.m_graph.graph
        cache = getattr(graph, "__networkx_cache__", None)
        if isinstance(cache, dict):
            if LABEL_CACHE not in cache:
                cache[LABEL_CACHE] = _label_index(graph)
            return cache[LABEL_CACHE]
        stamp = (id(graph), graph.number_of_edges())
        cached = getattr(self, "_by_label", None)
        if cached is None or cached[0] != stamp:
            cached = self._by_label = (stamp, _label_index(graph))
        return cached[1]

    @property
    def symm_structure(self) -> SymmetrizedStructure:
        """The symmetrized structure (computed once, at construction)."""
        return self._symm

    def _group_and_label_hops(self) -> dict:
        """Label symmetry-equivalent hops alike (pymatgen's relation, about linear time)."""
        import networkx as nx
        from tqdm import tqdm

        ops = self._symm.spacegroup
        rot = np.array([op.rotation_matrix for op in ops])  # (O, 3, 3)
        trans = np.array([op.translation_vector for op in ops])  # (O, 3)
        # representatives by (initial, end) site orbits: [(label, length, (O, 3, 3) images)]
        groups: dict[tuple[int, int], list[tuple[int, float, np.ndarray]]] = {}
        new_attr: dict[tuple, dict[str, int]] = {}
        edges = list(self.m_graph.graph.edges(keys=True, data=True))
        for u, v, k, d in tqdm(edges, desc="group hops", unit="hop", disable=not self.progress or None):
            hop = d["hop"]
            triple = np.array([hop.isite.frac_coords, hop.msite.frac_coords, hop.esite.frac_coords])  # (3, 3)
            bucket = groups.setdefault(tuple(sorted((hop.iindex, hop.eindex))), [])
            label = next(
                (lab for lab, length, images in bucket
                 if abs(hop.length - length) <= LENGTH_TOL and _same_set(images, triple, self.symprec)),
                None,
            )
            if label is None:
                label = sum(len(b) for b in groups.values())
                images = np.einsum("oij,sj->osi", rot, triple) + trans[:, None, :]  # (O, 3, 3)
                bucket.append((label, hop.length, images))
            new_attr[(u, v, k)] = {"hop_label": label}
        nx.set_edge_attributes(self.m_graph.graph, new_attr)
        return new_attr


def _same_set(images: np.ndarray, triple: np.ndarray, tol: float) -> bool:
    """Whether some symmetry image of a hop's three sites is the set ``triple`` (mod lattice).

    Args:
        images: (O, 3, 3) the representative's (initial, midpoint, end) sites under each
            operation, fractional.
        triple: (3, 3) the other hop's sites, fractional.
        tol: fractional tolerance (pymatgen's ``is_periodic_image``).
    """
    diff = images[:, :, None, :] - triple[None, None, :, :]  # (O, 3, 3, 3)
    close = np.all(np.abs(diff - np.round(diff)) <= tol, axis=-1)  # (O, 3, 3)
    return bool(np.any(np.all(np.any(close, axis=2), axis=1)))


def build_migration_graph(
    structure: Structure,
    ion: str,
    max_distance: float,
    *,
    symprec: float = 0.1,
    primitive: bool = True,
    empty_sites: bool | EmptySites = False,
    progress: bool = False,
) -> HopGraph:
    """All hops of ``ion`` up to ``max_distance``, grouped by symmetry (module docstring).

    Args:
        structure: ordered crystal, every occupied site of the ion filled.
        ion: element of the migrating ion.
        max_distance: longest hop (A).
        symprec: symmetry precision (A for spglib; fractional for comparing hops, as in
            pymatgen's ``MigrationHop``).
        primitive: reduce to the primitive cell first (hops, multiplicities and site
            indices are then those of the primitive cell).
        empty_sites: add candidate empty sites of the ion (True: found by
            :func:`ase_em.crystals.empty_sites.find_empty_sites`; or the sites themselves,
            found on the primitive cell when ``primitive``).
        progress: show a progress bar while grouping hops.

    Returns:
        The graph: nodes are the ion sites (occupied first, then candidate empty sites,
        marked ``empty_site``), edges the hops with ``hop`` (a ``MigrationHop``),
        ``hop_label``, ``to_jimage``, ``ipos``/``epos`` (fractional) and
        ``ipos_cart``/``epos_cart`` (A).
    """
    t0 = time.perf_counter()
    if primitive:
        reduced = primitive_cell(structure, symprec)
        if len(reduced) < len(structure):
            logger.info("%s: primitive cell of %d atoms instead of %d",
                        structure.composition.reduced_formula, len(reduced), len(structure))
        structure = reduced
    structure = structure.copy()
    if EMPTY_SITE in structure.site_properties:
        structure.remove_site_property(EMPTY_SITE)
    sites = find_empty_sites(structure, ion, symprec=symprec) if empty_sites is True else empty_sites
    if sites:
        structure = add_empty_sites(structure, sites)
    ion_idx = [i for i, site in enumerate(structure) if site.specie.symbol == ion]
    only_sites = Structure.from_sites([structure[i] for i in ion_idx])  # occupied first, then empty
    empty = np.array([is_empty_site(site) for site in only_sites])  # (S,)
    graph = StructureGraph.from_empty_graph(only_sites, name="hops", edge_weight_name="hop_distance",
                                            edge_weight_units="A")
    centers, neighbors, images, dists = only_sites.get_neighbor_list(max_distance)
    seen = set()
    for i, j, image, dist in zip(centers, neighbors, images.astype(int), dists, strict=True):
        if dist < 1e-8 or (empty[i] and empty[j]):
            continue
        if i > j or (i == j and tuple(image) < (0, 0, 0)):
            i, j, image = j, i, -image  # one direction per hop: occupied (lower index) first
        key = (int(i), int(j), tuple(int(x) for x in image))
        if key in seen:
            continue
        seen.add(key)
        graph.add_edge(key[0], key[1], from_jimage=(0, 0, 0), to_jimage=key[2], weight=float(dist),
                       warn_duplicates=False)
    t1 = time.perf_counter()
    mg = HopGraph(structure, graph, symprec=symprec, progress=progress)
    logger.info("hop graph: %d sites (%d empty), %d hops in %d groups; %.2f s sites + edges, %.2f s symmetry "
                "and grouping", len(only_sites), int(empty.sum()), graph.graph.number_of_edges(),
                len({d["hop_label"] for _, _, d in graph.graph.edges(data=True)}), t1 - t0,
                time.perf_counter() - t1)
    return mg
