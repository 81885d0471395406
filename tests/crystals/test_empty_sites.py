"""Candidate empty sites of the ion and hops through them (ase_em.crystals.empty_sites).

Structures are built from published lattice and Wyckoff data:
* layered LiCoO2, R-3m, a = 2.816, c = 14.05 A, Li 3a, Co 3b, O 6c z = 0.2396;
* the Li3 garnet Li3Nd3Te2O12, Ia-3d, a = 12.5625 A (OBELiX row bqx), Nd 24c, Te 16a, Li 24d,
  O 96h at the position of the ordered garnet Li5La3Ta2O12 (OBELiX CIF hcm);
* NASICON LiGe2(PO4)3, R-3c, a = 8.2706, c = 20.4652 A (OBELiX CIF ldx, ICSD 263767), Li on M1 (6b);
* the argyrodite Li6PS5Br, F-43m, a = 10.03 A, Li split over 48h (0.0235, 0.2008, 0.7992) at 0.441
  and 24g (0.0042, 1/4, 3/4) at 0.118, P 4b, S 4d and 16e (x = 0.1205), Br 4a (the sites of
  OBELiX CIF c6e, Li6PS4.2Se0.8Br, with Se replaced by S).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from ase_em.crystals.empty_sites import add_empty_sites, find_empty_sites
from ase_em.crystals.hop_graph import build_migration_graph
from ase_em.crystals.percolation import PeriodicEdge, percolation_barriers
from ase_em.errors import VacancySupercellError
from ase_em.hops.migration_hop import EMPTY_SITE, hop_from_migration_hop, hop_with_empty_sites


@pytest.fixture(scope="module")
def licoo2() -> Structure:
    return Structure.from_spacegroup(
        "R-3m", Lattice.hexagonal(2.816, 14.05), ["Li", "Co", "O"], [[0, 0, 0], [0, 0, 0.5], [0, 0, 0.2396]]
    )


@pytest.fixture(scope="module")
def garnet() -> Structure:
    return Structure.from_spacegroup(
        "Ia-3d", Lattice.cubic(12.56253), ["Nd", "Te", "Li", "O"],
        [[0, 0.25, 0.125], [0, 0, 0], [0, 0.25, 0.375], [0.03444544, 0.13414421, 0.96103195]],
    )


@pytest.fixture(scope="module")
def nasicon() -> Structure:
    return Structure.from_spacegroup(
        "R-3c", Lattice.hexagonal(8.27059, 20.4652), ["Li", "Ge", "P", "O", "O"],
        [[0, 0, 0], [0, 0, 0.11800610], [0, 0.28368078, 0.25], [0.02389192, 0.19534225, 0.19190229],
         [0.02415768, 0.84087478, 0.40945714]],
    )


@pytest.fixture(scope="module")
def shipped_predictor(one_torch_thread):
    from ase_em.predictor import EmPredictor

    return EmPredictor.from_pretrained()


def wyckoff_of_candidates(structure: Structure, sites) -> list[tuple[str, list]]:
    """(Wyckoff symbol, sites) of each candidate orbit; checks that the symmetry is kept."""
    marked = structure.copy()
    for frac in sites.frac_coords:
        marked.append("Xe", frac)
    sym = SpacegroupAnalyzer(marked, symprec=0.01)
    assert sym.get_space_group_symbol() == SpacegroupAnalyzer(structure, 0.01).get_space_group_symbol()
    ss = sym.get_symmetrized_structure()
    return [(w, group) for w, group in zip(ss.wyckoff_symbols, ss.equivalent_sites, strict=True)
            if group[0].specie.symbol == "Xe"]


def shell(structure: Structure, site, element: str, r: float) -> list[float]:
    return sorted(n.nn_distance for n in structure.get_neighbors(site, r) if n.specie.symbol == element)


def test_licoo2_tetrahedral_site_of_the_li_layer(licoo2):
    sites = find_empty_sites(licoo2, "Li")
    assert sites.n_recovered == sites.n_occupied == 3  # every occupied Li site is a Voronoi node
    orbits = wyckoff_of_candidates(licoo2, sites)
    assert [w for w, _ in orbits] == ["6c"]  # one orbit: the tetrahedral sites of the Li layer
    tet = orbits[0][1][0]
    assert shell(licoo2, tet, "O", 2.2) == pytest.approx([1.82] * 4, abs=0.01)  # tetrahedral
    assert shell(licoo2, tet, "Li", 2.0) == pytest.approx([1.70] * 3, abs=0.01)  # face-shares 3 Li octahedra
    assert min(shell(licoo2, tet, "Co", 3.0)) == pytest.approx(1.84, abs=0.01)  # and one Co octahedron


def test_garnet_octahedral_48g_between_tetrahedral_li(garnet):
    sites = find_empty_sites(garnet, "Li")
    assert sites.n_recovered == sites.n_occupied == 24
    orbits = wyckoff_of_candidates(garnet, sites)
    (octa,) = [group[0] for w, group in orbits if w == "48g"]
    assert len(shell(garnet, octa, "O", 2.4)) == 6  # octahedral
    # it shares faces with two 24d tetrahedra
    assert shell(garnet, octa, "Li", 2.5) == pytest.approx([1.98, 1.98], abs=0.01)


def test_nasicon_m2_site(nasicon):
    sites = find_empty_sites(nasicon, "Li")
    assert sites.n_recovered == sites.n_occupied == 6
    orbits = wyckoff_of_candidates(nasicon, sites)
    # M2: the 18e orbit of octahedral voids 3.11 A from M1 (another 18e orbit lies 3.53 A away)
    m2 = [group[0] for w, group in orbits if w == "18e" and min(shell(nasicon, group[0], "Li", 4.0)) < 3.2]
    assert len(m2) == 1
    assert len(shell(nasicon, m2[0], "O", 2.5)) == 6
    assert min(shell(nasicon, m2[0], "Li", 4.0)) == pytest.approx(3.11, abs=0.02)


def test_no_candidates_without_a_framework():
    li = Structure(Lattice.cubic(3.51), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert len(find_empty_sites(li, "Li")) == 0


def test_add_empty_sites_marks_them(licoo2):
    sites = find_empty_sites(licoo2, "Li")
    marked = add_empty_sites(licoo2, sites)
    assert len(marked) == len(licoo2) + len(sites)
    assert marked.site_properties[EMPTY_SITE] == [False] * len(licoo2) + [True] * len(sites)
    assert {marked[i].specie.symbol for i in range(len(licoo2), len(marked))} == {"Li"}


def edges_with(mg, em_of_label: dict) -> list[PeriodicEdge]:
    return [PeriodicEdge(u, v, tuple(d["to_jimage"]), em_of_label[d["hop_label"]])
            for u, v, d in mg.m_graph.graph.edges(data=True)]


def labels_by(mg) -> dict[int, tuple[float, bool]]:
    """hop label -> (length, ends in an empty site)."""
    return {lab: (round(d["hop"].length, 3), bool(d["hop"].esite.properties.get(EMPTY_SITE)))
            for lab, d in mg.unique_hops.items()}


def test_licoo2_hops_into_the_tetrahedral_site(licoo2):
    mg = build_migration_graph(licoo2, "Li", 3.0, empty_sites=True)
    kinds = labels_by(mg)
    assert sorted(kinds.values()) == [(1.701, True), (2.816, False)]
    for u, v, d in mg.m_graph.graph.edges(data=True):
        assert not d["hop"].isite.properties[EMPTY_SITE]  # every hop starts at an occupied site
        assert not (mg.only_sites[u].properties[EMPTY_SITE] and mg.only_sites[v].properties[EMPTY_SITE])
    tet = next(lab for lab, (_, empty) in kinds.items() if empty)
    direct = next(lab for lab, (_, empty) in kinds.items() if not empty)
    # a path occupied -> empty -> occupied costs the larger of its steps: the in-plane network
    # through the tetrahedral sites percolates in 2D at the tetrahedral hop's barrier
    assert percolation_barriers(edges_with(mg, {tet: 0.3, direct: 0.9})) == {1: 0.3, 2: 0.3, 3: None}
    assert percolation_barriers(edges_with(mg, {tet: 0.3, direct: 0.2})) == {1: 0.2, 2: 0.2, 3: None}
    blocked = {tet: math.inf, direct: 0.9}
    assert percolation_barriers(edges_with(mg, blocked)) == {1: 0.9, 2: 0.9, 3: None}


def test_band_of_a_hop_into_an_empty_site(licoo2):
    mg = build_migration_graph(licoo2, "Li", 3.0, empty_sites=True)
    into_empty = next(d["hop"] for d in mg.unique_hops.values() if d["hop"].esite.properties[EMPTY_SITE])
    vacancy = next(d["hop"] for d in mg.unique_hops.values() if not d["hop"].esite.properties[EMPTY_SITE])
    hop = hop_from_migration_hop(into_empty)  # dispatches to hop_with_empty_sites
    n_cells = round(abs(np.linalg.det(hop.cell)) / licoo2.volume * 3)  # primitive cells (4 atoms each)
    assert len(hop.host_symbols) + 1 == 4 * n_cells  # nothing removed at the empty end site
    assert hop.host_symbols.count("Li") == n_cells - 1  # host: every occupied site but the moving ion
    assert np.linalg.norm(hop.end - hop.start) == pytest.approx(1.701, abs=1e-3)
    frac_end = np.linalg.solve(hop.cell.T, hop.end)
    frac_host = np.linalg.solve(hop.cell.T, hop.host_positions.T).T
    d = frac_host - frac_end
    d -= np.round(d)
    assert np.linalg.norm(d @ hop.cell, axis=1).min() > 1.6  # the end site is empty in the host
    vac = hop_from_migration_hop(vacancy)
    assert len(vac.host_symbols) + 2 == 4 * round(abs(np.linalg.det(vac.cell)) / licoo2.volume * 3)
    # the same vacancy hop as ase-em builds without empty sites
    plain = build_migration_graph(licoo2, "Li", 3.0, empty_sites=False)
    ref = hop_from_migration_hop(next(iter(plain.unique_hops.values()))["hop"])
    assert sorted(vac.host_symbols) == sorted(ref.host_symbols)
    def shells(h):  # minimum-image distances from the ion to the host atoms within 6 A
        d = np.linalg.solve(h.cell.T, (h.host_positions - h.start).T).T
        r = np.sort(np.linalg.norm((d - np.round(d)) @ h.cell, axis=1))
        return r[r < 6.0]

    assert np.allclose(shells(vac), shells(ref), atol=1e-6)  # the same shells around the ion


def test_hop_from_an_empty_site_is_refused(licoo2):
    mg = build_migration_graph(licoo2, "Li", 3.0, empty_sites=True)
    hop = next(d["hop"] for d in mg.unique_hops.values() if d["hop"].esite.properties[EMPTY_SITE])
    hop.isite, hop.esite = hop.esite, hop.isite
    with pytest.raises(VacancySupercellError, match="initial site is an empty site"):
        hop_with_empty_sites(hop)


def test_garnet_tet_oct_tet_network(garnet):
    mg = build_migration_graph(garnet, "Li", 2.5, empty_sites=True)
    assert len(mg.structure) == 80 + 40  # primitive cell + 24 octahedral + 16 other candidates
    assert sorted(labels_by(mg).values()) == [(1.984, True)]  # only 24d -> 48g within 2.5 A
    # tet -> oct -> tet connects the 24d sites in three dimensions
    (label,) = mg.unique_hops
    assert percolation_barriers(edges_with(mg, {label: 0.5})) == {1: 0.5, 2: 0.5, 3: 0.5}
    plain = build_migration_graph(garnet, "Li", 2.5, empty_sites=False)
    assert plain.m_graph.graph.number_of_edges() == 0  # no 24d-24d hop that short


def test_nasicon_m1_m2_network(nasicon):
    plain = build_migration_graph(nasicon, "Li", 3.2, empty_sites=False)
    assert plain.m_graph.graph.number_of_edges() == 0  # M1 sites are 5.0+ A apart
    mg = build_migration_graph(nasicon, "Li", 3.2, empty_sites=True)
    kinds = labels_by(mg)
    assert all(empty for _, empty in kinds.values())
    m1_m2 = [lab for lab, (length, _) in kinds.items() if length == pytest.approx(3.11, abs=0.01)]
    assert len(m1_m2) == 1
    em = {lab: (0.4 if lab in m1_m2 else math.inf) for lab in kinds}
    assert percolation_barriers(edges_with(mg, em))[3] == 0.4  # M1 -> M2 -> M1 percolates in 3D


def test_shipped_model_through_the_tetrahedral_site(licoo2, shipped_predictor):
    from ase_em.crystals.analyzer import graph_percolation_barriers
    from ase_em.crystals.labelling import migration_graph_with_em

    mg = migration_graph_with_em(licoo2, "Li", 3.0, shipped_predictor, empty_sites=True)
    em = {length_empty: d["em"] for d in mg.unique_hops.values()
          for length_empty in [(round(d["hop"].length, 3), bool(d["hop"].esite.properties[EMPTY_SITE]))]}
    assert set(em) == {(1.701, True), (2.816, False)}
    assert all(0.05 < e < 2.0 for e in em.values())
    perc = graph_percolation_barriers(mg, include_flagged=True)
    assert perc[2] == pytest.approx(min(em.values()))  # both routes are 2D networks; the cheaper wins
    assert perc[3] is None


def test_auto_adds_empty_sites_only_when_occupied_sites_have_no_hop(nasicon, licoo2, tiny_predictor):
    from ase_em.crystals.labelling import migration_graph_with_em

    mg = migration_graph_with_em(nasicon, "Li", 3.2, tiny_predictor)  # empty_sites=None
    assert any(s.properties.get(EMPTY_SITE) for s in mg.only_sites)
    mg = migration_graph_with_em(licoo2, "Li", 3.0, tiny_predictor)
    assert not any(s.properties.get(EMPTY_SITE) for s in mg.only_sites)


@pytest.fixture(scope="module")
def argyrodite() -> Structure:
    return Structure.from_spacegroup(
        "F-43m", Lattice.cubic(10.03), [{"Li": 0.441}, {"Li": 0.118}, "P", "S", "S", "Br"],
        [[0.0235, 0.2008, 0.7992], [0.0042, 0.25, 0.75], [0, 0, 0.5], [0.25, 0.25, 0.75],
         [0.1205, 0.1205, 0.3795], [0, 0, 0]],
    )


def test_auto_adds_empty_sites_when_occupied_sites_do_not_percolate(argyrodite, shipped_predictor):
    # The argyrodite's split Li sites merge into one candidate site per 24g; the intercage
    # hop between them passes close to S (grey zone, left out), so without empty sites
    # nothing percolates; auto adds the interstitial sites and percolates through them.
    from ase_em.crystals.analyzer import MigrationBarrierAnalyzer

    options = {"predictor": shipped_predictor, "n_orderings": 2}
    without = MigrationBarrierAnalyzer(argyrodite, "Li", empty_sites=False, **options)
    assert without.percolation == {1: None, 2: None, 3: None}
    assert not without.has_empty_sites and without.empty_sites_note is None
    assert any("path_grey_zone" in r.flags and not r.used for r in without.hops)

    auto = MigrationBarrierAnalyzer(argyrodite, "Li", **options)
    assert auto.has_empty_sites and "do not percolate" in auto.empty_sites_note
    into_empty = [r for r in auto.hops if r.into_empty_site]
    assert into_empty and any(r.used for r in into_empty)
    assert auto.percolation[3] is not None and 0.05 < auto.percolation[3] < 1.0
    # the 3D barrier is set by a hop in use, and at least one hop into an empty site is needed
    used = [r.em for r in auto.hops if r.used]
    assert auto.percolation[3] >= min(used) - 0.05
    table = auto.format_table()
    assert " to " in table.splitlines()[1] and "note: candidate empty sites added" in table
    assert auto.to_dict()["empty_sites"] is True
