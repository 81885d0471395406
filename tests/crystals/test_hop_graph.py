"""The hop network at scale (ase_em.crystals.hop_graph): same hops as pymatgen, in seconds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph
from pymatgen.core import Lattice, Structure

from ase_em.crystals.hop_graph import HopGraph, build_migration_graph, primitive_cell

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "structures"


@pytest.fixture(scope="module")
def lifepo4() -> Structure:
    return Structure.from_file(EXAMPLES / "LiFePO4.cif")


@pytest.fixture(scope="module")
def licoo2() -> Structure:
    return Structure.from_file(EXAMPLES / "LiCoO2.cif")


@pytest.fixture(scope="module")
def lifepo4_1008(lifepo4) -> Structure:
    """The field case: LiFePO4 repeated 3 x 3 x 4 (1008 atoms, 144 Li)."""
    return lifepo4 * (3, 3, 4)


def partition(mg) -> list[list[tuple]]:
    """The hops grouped by label, as sets of (u, v, to_jimage)."""
    groups: dict[int, list] = {}
    for u, v, d in mg.m_graph.graph.edges(data=True):
        groups.setdefault(d["hop_label"], []).append((u, v, tuple(int(x) for x in d["to_jimage"])))
    return sorted(sorted(g) for g in groups.values())


@pytest.mark.parametrize("name,max_distance", [("lifepo4", 5.0), ("licoo2", 5.0), ("licoo2", 3.0)])
def test_same_hops_and_groups_as_pymatgen(name, max_distance, request):
    structure = request.getfixturevalue(name)
    ours = build_migration_graph(structure, "Li", max_distance, primitive=False)
    ref = MigrationGraph.with_distance(structure, "Li", max_distance, symprec=0.1)
    assert isinstance(ours, MigrationGraph)
    assert partition(ours) == partition(ref)
    assert sorted(round(d["hop"].length, 6) for d in ours.unique_hops.values()) == sorted(
        round(d["hop"].length, 6) for d in ref.unique_hops.values()
    )
    mine = sorted(ours.m_graph.graph.edges(data=True), key=lambda e: e[:2])
    theirs = sorted(ref.m_graph.graph.edges(data=True), key=lambda e: e[:2])
    for (_, _, a), (_, _, b) in zip(mine, theirs, strict=True):
        assert a["hop"].iindex == b["hop"].iindex and a["hop"].eindex == b["hop"].eindex  # orbits looked up


def test_data_goes_to_every_edge_of_a_label_as_pymatgen_puts_it(licoo2):
    ours = build_migration_graph(licoo2, "Li", 5.0, primitive=False)
    ref = build_migration_graph(licoo2, "Li", 5.0, primitive=False)
    labels = sorted({d["hop_label"] for _, _, d in ours.m_graph.graph.edges(data=True)})
    assert len(labels) >= 2
    for k, label in enumerate(labels):
        ours.add_data_to_similar_edges(label, {"em": 0.1 * k, "tag": f"hop {label}"})
        MigrationGraph.add_data_to_similar_edges(ref, label, {"em": 0.1 * k, "tag": f"hop {label}"})
    ours.add_data_to_similar_edges(labels[0], {"em": 9.0})  # a second write replaces the first
    MigrationGraph.add_data_to_similar_edges(ref, labels[0], {"em": 9.0})
    got = [(u, v, d["hop_label"], d["em"], d["tag"]) for u, v, d in ours.m_graph.graph.edges(data=True)]
    want = [(u, v, d["hop_label"], d["em"], d["tag"]) for u, v, d in ref.m_graph.graph.edges(data=True)]
    assert got == want
    # an edge added afterwards (networkx's API) gets the data of its label too, as in pymatgen
    for mg in (ours, ref):
        mg.m_graph.graph.add_edge(0, 0, to_jimage=(0, 0, 7), hop_label=labels[1])
    ours.add_data_to_similar_edges(labels[1], {"em": 4.0})
    MigrationGraph.add_data_to_similar_edges(ref, labels[1], {"em": 4.0})
    got = [(u, v, d["hop_label"], d["em"]) for u, v, d in ours.m_graph.graph.edges(data=True)]
    want = [(u, v, d["hop_label"], d["em"]) for u, v, d in ref.m_graph.graph.edges(data=True)]
    assert got == want
    added = [d for _, _, d in ours.m_graph.graph.edges(data=True) if d["to_jimage"] == (0, 0, 7)]
    assert [d["em"] for d in added] == [4.0]


def test_primitive_cell_of_a_supercell(lifepo4, lifepo4_1008):
    prim = primitive_cell(lifepo4_1008)
    assert len(prim) == 28
    assert prim.volume == pytest.approx(lifepo4.volume, rel=1e-6)
    assert prim.composition == lifepo4.composition
    # same Cartesian frame, nothing moved: every supercell atom is a translate of a primitive atom
    frac = prim.lattice.get_fractional_coords(lifepo4_1008.cart_coords)
    d = prim.lattice.get_all_distances(frac, prim.frac_coords).min(axis=1)
    assert d.max() < 1e-6
    assert primitive_cell(lifepo4) is lifepo4  # already primitive


def test_primitive_of_a_centred_cell():
    garnet = Structure.from_spacegroup(
        "Ia-3d", Lattice.cubic(12.56253), ["Nd", "Te", "Li", "O"],
        [[0, 0.25, 0.125], [0, 0, 0], [0, 0.25, 0.375], [0.03444544, 0.13414421, 0.96103195]],
    )
    assert len(garnet) == 160
    assert len(primitive_cell(garnet)) == 80  # body-centred


def test_1008_atom_supercell_in_seconds(lifepo4, lifepo4_1008):
    t0 = time.perf_counter()
    big = build_migration_graph(lifepo4_1008, "Li", 5.0)
    elapsed = time.perf_counter() - t0
    small = build_migration_graph(lifepo4, "Li", 5.0)
    assert elapsed < 30  # about 0.2 s on the development machine; pymatgen's grouping: minutes
    assert len(big.structure) == 28
    lengths = sorted(round(d["hop"].length, 4) for d in big.unique_hops.values())
    assert lengths == sorted(round(d["hop"].length, 4) for d in small.unique_hops.values())
    assert lengths == pytest.approx([2.985, 4.655], abs=1e-3)


def test_grouping_of_288_hops_without_the_primitive_reduction(lifepo4_1008):
    t0 = time.perf_counter()
    mg = build_migration_graph(lifepo4_1008, "Li", 5.0, primitive=False)
    elapsed = time.perf_counter() - t0
    assert isinstance(mg, HopGraph)
    assert mg.m_graph.graph.number_of_edges() == 288  # 144 Li, 2 hops of each kind per Li
    counts = np.bincount([d["hop_label"] for _, _, d in mg.m_graph.graph.edges(data=True)])
    assert sorted(counts.tolist()) == [144, 144]
    assert elapsed < 60  # about 0.7 s on the development machine


def test_cli_network_on_the_1008_atom_cell_gives_the_lifepo4_answer(tmp_path, lifepo4_1008, capsys,
                                                                      one_torch_thread):
    from ase_em.cli.main import main

    path = tmp_path / "LFP_1008.cif"
    lifepo4_1008.to(filename=str(path))
    assert main(["network", str(path), "--ion", "Li", "--json", "--threads", "1"]) == 0
    big = json.loads(capsys.readouterr().out)
    assert main(["network", str(EXAMPLES / "LiFePO4.cif"), "--ion", "Li", "--json", "--threads", "1"]) == 0
    small = json.loads(capsys.readouterr().out)
    assert [round(h["length"], 3) for h in big["hops"]] == [2.985, 4.655]
    assert [h["em"] for h in big["hops"]] == pytest.approx([h["em"] for h in small["hops"]], abs=1e-4)
    assert big["percolation"].keys() == small["percolation"].keys()
    for key, value in small["percolation"].items():
        assert (big["percolation"][key] is None) == (value is None)
        assert value is None or big["percolation"][key] == pytest.approx(value, abs=1e-4)
