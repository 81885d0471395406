"""MigrationBarrierAnalyzer.conductivity on real structures whose barriers are known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase.build import bulk

from ase_em.crystals.analyzer import MigrationBarrierAnalyzer
from ase_em.crystals.labelling import edge_table
from ase_em.transport.network import K_B
from tests.conftest import EXAMPLES
from tests.crystals.test_percolation import LengthPredictor


def test_fcc_lithium_sublattice_closed_form():
    # rock salt LiF: Li on an fcc lattice (a = 4.03 A), 12 neighbours at a / sqrt(2), Em = 0.1 eV/A * length.
    # D_xx = 1/2 sum_neighbours k x^2 = 1/2 * 8 * k (a/2)^2 = k a^2; n = 4 Li per a^3.
    a = 4.03
    an = MigrationBarrierAnalyzer(bulk("LiF", "rocksalt", a=a), "Li", max_distance=3.0,
                                  predictor=LengthPredictor())
    net = an.rate_network()
    assert net.n_sites == 1 and len(net.u) == 6 and net.carriers_per_cell == pytest.approx(1.0)
    # the network's hop vectors are the graph's
    ends = np.array([e["epos_cart"] - e["ipos_cart"] for e in edge_table(an.graph)])
    assert np.allclose(net.displacements, ends, atol=1e-6)
    em = 0.1 * a / math.sqrt(2)
    res = an.conductivity([300.0, 500.0], n_samples=0)
    for t, d, ls in zip(res.temperatures, res.D, res.log10_sigma, strict=True):
        k = 1e13 * math.exp(-em / (K_B * t))
        assert d == pytest.approx(k * a * a * 1e-16, rel=1e-6)
        n = 4 / a**3 * 1e24
        sigma = n * 1.602176634e-19**2 * d / (1.380649e-23 * t)
        assert ls == pytest.approx(math.log10(sigma), abs=1e-6)
    assert res.dimension == 3 and res.activation_energy == pytest.approx(em, abs=1e-6)
    assert res.formula == "LiF" and res.ion == "Li"


def test_olivine_percolates_in_layers_and_spreads():
    an = MigrationBarrierAnalyzer(EXAMPLES / "structures" / "LiFePO4.cif", "Li", max_distance=5.0,
                                  predictor=LengthPredictor())
    res = an.conductivity([300.0], n_samples=100)
    assert res.dimension == 2  # b chains joined along c (test_labelling: bc layers)
    d = res.D_tensor[0]
    w = np.linalg.eigvalsh(d)
    assert w[0] == pytest.approx(0.0, abs=1e-30) and w[1] > 0
    # LengthPredictor gives em_std 0.01 eV: the spread is about 0.01 / (kT ln 10) = 0.17 decades
    assert res.log10_sigma_std[0] == pytest.approx(0.01 / (K_B * 300 * math.log(10)), rel=0.3)
    assert "<table" in res._repr_html_()


def test_disordered_carriers_are_the_summed_occupancy():
    # LLTO: Li 0.33 per perovskite cell on the A site; carriers per cell = the occupancy, not the site count
    an = MigrationBarrierAnalyzer(EXAMPLES.parent / "tests" / "data" / "llto_disordered.cif", "Li",
                                  predictor=LengthPredictor(), n_orderings=2, max_distance=4.0)
    assert an.disorder is not None
    net = an.rate_network()
    assert net.carriers_per_cell == pytest.approx(0.33 * net.volume / an.structure.volume)
    res = an.conductivity([300.0], n_samples=0)
    assert res.carrier_density == pytest.approx(0.33 / an.structure.volume * 1e24)
    assert res.dimension == 3 and math.isfinite(res.log10_sigma[0])
    assert "<table" in an._repr_html_() and "percolation" in an._repr_html_()
