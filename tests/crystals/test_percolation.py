"""Percolation barriers on networks whose answer is known by construction."""

from __future__ import annotations

import math
import random

import pytest
from ase.build import bulk

from ase_em.crystals.percolation import PeriodicEdge as E
from ase_em.crystals.percolation import percolation_barriers
from tests.conftest import EXAMPLES

NONE3 = {1: None, 2: None, 3: None}


def test_simple_cubic_one_barrier_per_direction():
    edges = [E(0, 0, (1, 0, 0), 0.2), E(0, 0, (0, 1, 0), 0.5), E(0, 0, (0, 0, 1), 0.9)]
    assert percolation_barriers(edges) == {1: 0.2, 2: 0.5, 3: 0.9}


def test_one_dimensional_channels():
    assert percolation_barriers([E(0, 0, (0, 0, 1), 0.3)]) == {1: 0.3, 2: None, 3: None}
    # zigzag channel of two sites: only the pair of hops together is a period
    zigzag = [E(0, 1, (0, 0, 0), 0.3), E(1, 0, (0, 0, 1), 0.6)]
    assert percolation_barriers(zigzag) == {1: 0.6, 2: None, 3: None}


def test_closed_cycles_do_not_percolate():
    # 0 -> 1 -> 0 inside one cell (two parallel hops): a cycle with zero net translation
    assert percolation_barriers([E(0, 1, (0, 0, 0), 0.1), E(1, 0, (0, 0, 0), 0.2)]) == NONE3
    # a ring 0 -> 1 -> 2 -> 0 crossing a cell boundary and coming back
    ring = [E(0, 1, (1, 0, 0), 0.1), E(1, 2, (0, 0, 0), 0.1), E(2, 0, (-1, 0, 0), 0.1)]
    assert percolation_barriers(ring) == NONE3


def test_layer_of_a_triangular_lattice():
    # LiCoO2-like: one site per cell, hops along a, b and a+b only
    layer = [E(0, 0, (1, 0, 0), 0.4), E(0, 0, (0, 1, 0), 0.4), E(0, 0, (1, 1, 0), 0.4)]
    assert percolation_barriers(layer) == {1: 0.4, 2: 0.4, 3: None}
    # diagonals span a 2D lattice too (of index 2)
    assert percolation_barriers([E(0, 0, (1, 1, 0), 0.3), E(0, 0, (1, -1, 0), 0.6)]) == {
        1: 0.3, 2: 0.6, 3: None,
    }


def test_channels_in_separate_components_are_not_a_layer():
    # site 0 has a channel along a, site 1 along b; unconnected they are two 1D networks
    edges = [E(0, 0, (1, 0, 0), 0.2), E(1, 1, (0, 1, 0), 0.3)]
    assert percolation_barriers(edges) == {1: 0.2, 2: None, 3: None}
    # joining them makes one component spanning a and b
    assert percolation_barriers([*edges, E(0, 1, (0, 0, 0), 0.7)]) == {1: 0.2, 2: 0.7, 3: None}


def test_minimum_over_networks_of_the_maximum_barrier():
    # two channels along a: via site 1 with hops (0.2, 0.8), via site 2 with hops (0.5, 0.5)
    edges = [
        E(0, 1, (0, 0, 0), 0.2), E(1, 0, (1, 0, 0), 0.8),
        E(0, 2, (0, 0, 0), 0.5), E(2, 0, (1, 0, 0), 0.5),
    ]
    assert percolation_barriers(edges) == {1: 0.5, 2: None, 3: None}


def test_three_dimensional_network_of_two_sublattices():
    # CsCl-like: site 1 at the cube centre joined to the 8 corners; only the 3D network
    corners = [(i, j, k) for i in (0, 1) for j in (0, 1) for k in (0, 1)]
    edges = [E(1, 0, c, 0.35) for c in corners]
    assert percolation_barriers(edges) == {1: 0.35, 2: 0.35, 3: 0.35}
    # with only 4 corners of one face (k = 0) the network is a layer
    assert percolation_barriers([E(1, 0, c, 0.35) for c in corners if c[2] == 0]) == {
        1: 0.35, 2: 0.35, 3: None,
    }


def test_blocked_hops_are_left_out():
    edges = [E(0, 0, (1, 0, 0), 0.2), E(0, 0, (0, 1, 0), math.inf), E(0, 0, (0, 0, 1), math.nan)]
    assert percolation_barriers(edges) == {1: 0.2, 2: None, 3: None}


def test_independent_of_edge_order_and_direction():
    edges = [
        E(0, 1, (0, 0, 0), 0.15), E(1, 0, (0, 1, 0), 0.25), E(1, 2, (0, 0, 0), 0.45),
        E(2, 2, (1, 0, 0), 0.55), E(2, 0, (0, 0, 1), 0.95), E(0, 0, (0, 0, 1), 1.2),
    ]
    expected = percolation_barriers(edges)
    assert expected == {1: 0.25, 2: 0.55, 3: 0.95}
    rng = random.Random(0)
    for _ in range(20):
        shuffled = [
            E(e.v, e.u, tuple(-x for x in e.image), e.em) if rng.random() < 0.5 else e for e in edges
        ]
        rng.shuffle(shuffled)
        assert percolation_barriers(shuffled) == expected


# ------------------------------------------ real MigrationGraphs, barriers by construction


class LengthPredictor:
    """Stands in for a model: Em = 0.1 eV per A of hop length, so the answer is known."""

    name = "em-from-length"

    def predict(self, hops, progress=False):
        from ase_em.predictor import EmResult

        return [EmResult(0.1 * h.length, 0.01, h) for h in hops]


@pytest.mark.parametrize(
    ("structure", "max_distance", "expected"),
    [
        # olivine: Li chains along b (2.985 A); with 5 A also hops along c (4.655 A) -> bc layers
        (EXAMPLES / "structures" / "LiFePO4.cif", 3.5, {1: 0.2985, 2: None, 3: None}),
        (EXAMPLES / "structures" / "LiCoO2.cif", 3.0, {1: 0.2816, 2: 0.2816, 3: None}),  # Li layers
        (bulk("LiF", "rocksalt", a=4.03), 3.0, {1: 0.285, 2: 0.285, 3: 0.285}),  # fcc Li network
    ],
)
def test_migration_graph_dimensionality(structure, max_distance, expected):
    from ase_em.crystals.analyzer import graph_percolation_barriers
    from ase_em.crystals.labelling import migration_graph_with_em

    mg = migration_graph_with_em(structure, "Li", max_distance, LengthPredictor())
    got = graph_percolation_barriers(mg)
    for d in (1, 2, 3):
        if expected[d] is None:
            assert got[d] is None
        else:
            assert got[d] == pytest.approx(expected[d], abs=1e-3)
