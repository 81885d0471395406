"""pymatgen route: MigrationHop -> band, labelled MigrationGraph, analyzer (tiny model)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from ase.build import bulk
from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph
from pymatgen.core import Structure

from ase_em.crystals.analyzer import MigrationBarrierAnalyzer
from ase_em.crystals.labelling import label_migration_graph, migration_graph_with_em
from ase_em.errors import MissingIonError
from ase_em.ext import pymatgen as ext_pymatgen
from ase_em.hops.hop import Hop
from ase_em.hops.migration_hop import hop_from_migration_hop, supercell_matrix
from ase_em.model.band import build_band
from ase_em.model.graph import collate
from tests.conftest import EXAMPLES
from tests.crystals.test_percolation import LengthPredictor

LIFEPO4 = EXAMPLES / "structures" / "LiFePO4.cif"
TOL = 1e-4  # eV: symmetry-equivalent bands are one graph up to a rigid motion; float32 round-off


@pytest.fixture(scope="module")
def lifepo4() -> Structure:
    return Structure.from_file(LIFEPO4)


@pytest.fixture(scope="module")
def chain_graph(lifepo4, tiny_predictor) -> MigrationGraph:
    """LiFePO4 with the b-axis chain hops only (4 edges, one unique hop)."""
    return migration_graph_with_em(lifepo4, "Li", 3.5, tiny_predictor)


def test_every_edge_labelled_and_costed(chain_graph):
    edges = list(chain_graph.m_graph.graph.edges(data=True))
    assert len(edges) == 4
    for _, _, d in edges:
        assert 0.0 < d["em"] < 5.0 and d["em_std"] > 0
        assert d["cost"] == d["em"]


def test_symmetry_equivalent_hops_share_one_em(chain_graph, tiny_predictor):
    # predict every edge's own hop (its own endpoints, its own vacancy supercell): the
    # symmetry-equivalent bands must give the value written on the whole label
    for _, _, d in chain_graph.m_graph.graph.edges(data=True):
        own = tiny_predictor.predict_one(d["hop"])  # as_hop -> hop_from_migration_hop
        assert own.em == pytest.approx(d["em"], abs=TOL)


def test_band_reproduces_the_training_example(lifepo4, tiny_predictor):
    # examples/LiFePO4 is a TRAIN hop: a 2x2x1 vacancy supercell of the same olivine;
    # the MigrationHop route with a supercell of that size must give the same band
    mg = MigrationGraph.with_distance(lifepo4, "Li", 3.5)
    hop = hop_from_migration_hop(next(iter(mg.unique_hops.values()))["hop"], min_length=8.0)
    ref = Hop.from_endpoints(EXAMPLES / "LiFePO4" / "initial.vasp", EXAMPLES / "LiFePO4" / "final.vasp")
    assert hop.n_atoms == ref.n_atoms == 115
    assert sorted(hop.host_symbols) == sorted(ref.host_symbols)
    lengths = [np.sort(np.linalg.norm(h.cell, axis=1)) for h in (hop, ref)]
    assert lengths[0] == pytest.approx(lengths[1])
    a, b = tiny_predictor.predict([hop, ref])
    assert a.em == pytest.approx(b.em, abs=TOL)


def ion_shells(hop: Hop, radius: float) -> list[list[tuple[str, float]]]:
    """For each of the five ion images: (element, distance) of the host atoms within radius."""
    band = build_band(hop)
    shells = []
    for k in range(5):
        d = band.get_distances(k, range(5, len(band)), mic=True)
        shells.append(sorted((band[5 + i].symbol, round(float(d[i]), 5)) for i in np.flatnonzero(d < radius)))
    return shells


def ion_edges(g) -> list[tuple[int, int, float]]:
    """The model graph's bonds of the five ion images: (image, neighbour Z, length)."""
    keep = g.src < 5
    z = g.z[g.dst[keep]].tolist()
    length = g.r[keep].norm(dim=1).tolist()
    return sorted((s, zz, round(r, 4)) for s, zz, r in zip(g.src[keep].tolist(), z, length, strict=True))


def test_prediction_stable_to_supercell_size(lifepo4, tiny_predictor):
    # the supercell rule (min_length) only adds far-away bulk: 1x2x2 cells (115 atoms, the
    # training example's size, smallest width 9.31 A) vs 2x3x3 cells (507 atoms, 13.96 A)
    mg = MigrationGraph.with_distance(lifepo4, "Li", 3.5)
    mhop = next(iter(mg.unique_hops.values()))["hop"]
    small, large = (hop_from_migration_hop(mhop, min_length=m) for m in (8.0, 12.0))
    assert (small.n_atoms, large.n_atoms) == (115, 507)
    # 1) identical shells around every ion image up to 4.5 A (< half the smallest width,
    # so no atom is counted twice) and identical bonds of the ion images in the graph
    assert ion_shells(small, 4.5) == ion_shells(large, 4.5)
    graphs = [tiny_predictor.graph(h) for h in (small, large)]
    assert ion_edges(graphs[0]) == ion_edges(graphs[1])
    # 2) the ion-image half of the readout sees only that environment: equal to float32;
    # 3) the mean over all atoms dilutes the vacancy's neighbourhood as 1/N: 2 meV is 1 %
    # of the tiny ensemble's spread and far below any barrier difference that matters
    width = tiny_predictor.model.ensemble.config.hidden_features
    em = {0: [], 1: []}
    with torch.no_grad():
        batches = [collate([g]) for g in graphs]
        for m in tiny_predictor.model.ensemble.members:
            emb = [m.embed(*b) for b in batches]  # (1, 2 * width) each
            assert torch.allclose(emb[0][0, :width], emb[1][0, :width], atol=1e-5)
            for k in (0, 1):
                em[k].append(float(m.head(emb[k])[0, 0] * m.target_std + m.target_mean))
    assert float(np.mean(em[0])) == pytest.approx(tiny_predictor.predict_one(small).em, abs=TOL)
    assert abs(np.mean(em[0]) - np.mean(em[1])) < 2e-3


def test_supercell_rule():
    from pymatgen.core import Lattice

    def widths(cell):
        return abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)

    ortho = Lattice.orthorhombic(10.236, 5.971, 4.655)
    m = supercell_matrix(ortho, 10.0)  # 1 x 2 x 3 cells (axes possibly permuted by Niggli)
    assert round(abs(np.linalg.det(m))) == 6
    assert sorted(widths(m @ ortho.matrix)) == pytest.approx([10.236, 11.942, 13.965])
    # fcc primitive cell: widths a/sqrt(3) = 2.33 A -> 5 per Niggli vector
    prim = bulk("Cu", "fcc", a=4.03).cell.array
    m = supercell_matrix(Lattice(prim), 10.0)
    assert widths(m @ prim).min() >= 10.0 and round(abs(np.linalg.det(m))) == 125


def test_with_em_predictor_shim(lifepo4, tiny_predictor, chain_graph):
    assert MigrationGraph.with_em_predictor.__func__ is ext_pymatgen.with_em_predictor
    mg = MigrationGraph.with_em_predictor(lifepo4, "Li", 3.5, predictor=tiny_predictor)
    ems = sorted(d["em"] for _, _, d in mg.m_graph.graph.edges(data=True))
    assert ems == pytest.approx(sorted(d["em"] for _, _, d in chain_graph.m_graph.graph.edges(data=True)))


def test_import_ase_em_stays_light():
    code = (
        "import sys, ase_em\n"
        "print(any(m.startswith('pymatgen') for m in sys.modules), 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"
    code = (
        "from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph\n"
        "import ase_em\n"
        "print(hasattr(MigrationGraph, 'with_em_predictor'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_get_path_ranks_by_em(lifepo4):
    # Em = 0.1 eV/A * length: b-chain hops 0.2985 eV, c hops 0.4655 eV
    mg = label_migration_graph(MigrationGraph.with_distance(lifepo4, "Li", 5.0), LengthPredictor())
    for _, _, d in mg.m_graph.graph.edges(data=True):
        assert d["cost"] == pytest.approx(0.1 * d["hop"].length)
    paths = list(mg.get_path(max_val=0.35))
    assert len(paths) == 4  # every Li site has a path below 0.35 eV ...
    for _, hops in paths:
        assert all(h["em"] == pytest.approx(0.2985, abs=1e-4) for h in hops)  # ... along b only
    assert list(mg.get_path(max_val=0.25)) == []


def test_analyzer_table_percolation_and_plot(lifepo4, tmp_path):
    an = MigrationBarrierAnalyzer(lifepo4, "Li", max_distance=5.0, predictor=LengthPredictor())
    rows = [(round(r.length, 3), round(r.em, 4), r.multiplicity) for r in an.hops]
    assert rows == [(2.985, 0.2985, 4), (4.655, 0.4655, 4)]  # 4 Li per cell, 2 neighbours each
    assert an.percolation[1] == pytest.approx(0.2985, abs=1e-4)  # chains along b
    assert an.percolation[2] == pytest.approx(0.4655, abs=1e-4)  # plus c: bc layers
    assert an.percolation[3] is None  # no a-hops within 5 A
    text = an.format_table()
    assert "2.985" in text and "0.465" in text and "2D 0.465" in text and "3D none" in text
    png = an.plot_network(tmp_path / "net.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_blocked_hop(tmp_path):
    # rock salt: the second Li-Li neighbour (a = 4.03 A) lies straight through an F ion
    an = MigrationBarrierAnalyzer(bulk("LiF", "rocksalt", a=4.03), "Li", max_distance=4.1,
                                  predictor=LengthPredictor())
    assert [r.em is None for r in an.hops] == [False, True]
    assert "host atom" in an.hops[1].blocked
    assert an.percolation == {d: pytest.approx(0.285, abs=1e-3) for d in (1, 2, 3)}
    assert "blocked" in an.format_table()
    an.plot_network(tmp_path / "net.png")


def test_missing_ion(lifepo4, tiny_predictor):
    with pytest.raises(MissingIonError, match="no Na"):
        migration_graph_with_em(lifepo4, "Na", 3.5, tiny_predictor)
    with pytest.raises(MissingIonError, match="no Li-Li hop"):
        migration_graph_with_em(lifepo4, "Li", 2.0, tiny_predictor, empty_sites=False)


@pytest.mark.parametrize("name", ["LiFePO4.cif", "LiCoO2.cif"])
def test_vacancy_start_structure_is_pymatgens(name):
    # the start structure ase-em builds is pymatgen-analysis-diffusion's, site for site
    from pymatgen.analysis.diffusion.utils.supercells import get_start_end_structures

    from ase_em.hops.migration_hop import vacancy_start_structure

    structure = Structure.from_file(EXAMPLES / "structures" / name)
    mg = MigrationGraph.with_distance(structure, "Li", 5.0)
    for d in mg.unique_hops.values():
        hop = d["hop"]
        sc = supercell_matrix(structure.lattice, max(10.0, 2 * hop.length + 1.0)).tolist()
        base = Structure.from_sites(list(hop.symm_structure.sites))
        ours, n_removed = vacancy_start_structure(hop.esite, base, sc, tol=1e-3)
        theirs, _, base_sc = get_start_end_structures(hop.isite, hop.esite, base, sc, vac_mode=True, tol=1e-3)
        assert n_removed == 1 == len(base_sc) - len(theirs)
        assert [s.species_string for s in ours] == [s.species_string for s in theirs]
        np.testing.assert_array_equal(ours.frac_coords, theirs.frac_coords)
        np.testing.assert_array_equal(ours.lattice.matrix, theirs.lattice.matrix)


@pytest.mark.parametrize("name", ["LiFePO4.cif", "LiCoO2.cif"])
def test_vacancy_hop_positions_are_the_start_structures_bit_for_bit(name):
    # the hop's atoms (ion put back at its index) are pymatgen's per-site Cartesian coordinates
    from ase_em.hops.migration_hop import (
        DEFAULT_MIN_LENGTH,
        PATH_MARGIN,
        SITE_TOLERANCE,
        vacancy_start_structure,
    )

    structure = Structure.from_file(EXAMPLES / "structures" / name)
    for d in MigrationGraph.with_distance(structure, "Li", 5.0).unique_hops.values():
        mh = d["hop"]
        hop = hop_from_migration_hop(mh)
        sc = supercell_matrix(mh.symm_structure.lattice, max(DEFAULT_MIN_LENGTH, 2 * mh.length + PATH_MARGIN))
        start, _ = vacancy_start_structure(mh.esite, mh.symm_structure, sc.tolist(), tol=SITE_TOLERANCE)
        atoms = np.insert(hop.host_positions, hop.ion_index, hop.start, axis=0)  # (N, 3)
        assert np.array_equal(atoms, start.cart_coords)


def test_old_migration_graph_names_still_import_with_a_deprecation_warning():
    from ase_em.hops.migration_hop import hop_from_migration_hop

    with pytest.warns(DeprecationWarning, match="ase_em.hops.migration_hop.hop_from_migration_hop"):
        from ase_em.migration_graph import hop_from_migration_hop as old
    assert old is hop_from_migration_hop
    with pytest.raises(ImportError, match="cannot import name 'nothing'"):
        from ase_em.migration_graph import nothing  # noqa: F401
