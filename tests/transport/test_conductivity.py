"""sigma(T) from a hop network: Nernst-Einstein numbers, Arrhenius fit, nu, sampling, outputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ase_em.errors import TransportError
from ase_em.transport import RateNetwork, conductivity, ion_charge
from ase_em.transport.network import K_B


def cubic(a=2.0, em=0.3, std=None, carriers=1.0, charge=1):
    return RateNetwork(np.eye(3) * a, [[0, 0, 0]], [0, 0, 0], [0, 0, 0], np.eye(3), [em] * 3,
                       em_std=None if std is None else [std] * 3, group=[0, 0, 0],
                       carriers_per_cell=carriers, charge=charge)


def test_nernst_einstein_by_hand():
    # a = 2 A: n = 1 / 8 A^-3 = 1.25e23 cm^-3; D = k a^2 = 1e13 exp(-0.3/kT) * 4e-16 cm^2/s
    res = conductivity(cubic(), [300.0], n_samples=0)
    k = 1e13 * math.exp(-0.3 / (K_B * 300.0))
    d = k * 4.0e-16
    sigma = 1.25e23 * (1.602176634e-19) ** 2 * d / (1.380649e-23 * 300.0)
    assert res.D[0] == pytest.approx(d, rel=1e-9)
    assert res.log10_sigma[0] == pytest.approx(math.log10(sigma), abs=1e-9)
    assert res.carrier_density == pytest.approx(1.25e23)
    # a divalent carrier: four times the conductivity
    res2 = conductivity(cubic(charge=2), [300.0], n_samples=0)
    assert res2.log10_sigma[0] - res.log10_sigma[0] == pytest.approx(math.log10(4.0))


def test_activation_energy_of_one_barrier_is_that_barrier():
    # sigma T ~ exp(-Em/kT) exactly for one barrier: the fit of ln(sigma T) returns Em
    res = conductivity(cubic(em=0.42), [300.0, 400.0, 500.0], n_samples=0)
    assert res.activation_energy == pytest.approx(0.42, abs=1e-9)
    assert list(res.fit_temperatures) == [300.0, 400.0, 500.0]
    one = conductivity(cubic(em=0.42), 300.0, n_samples=0)
    assert one.activation_energy == pytest.approx(0.42, abs=1e-9)  # default fit range 250-500 K
    assert len(one.fit_temperatures) == 6


def test_attempt_frequency_shifts_log10_sigma_by_its_decades():
    a = conductivity(cubic(), [300.0, 500.0], n_samples=0)
    b = conductivity(cubic(), [300.0, 500.0], n_samples=0, attempt_frequency=1e12)
    assert np.allclose(a.log10_sigma - b.log10_sigma, 1.0)
    assert a.activation_energy == pytest.approx(b.activation_energy)


def test_sampled_spread_of_one_barrier():
    # log10 sigma = C - Em / (kT ln 10) is linear in Em: its std is em_std / (kT ln 10)
    res = conductivity(cubic(em=0.3, std=0.05), [300.0, 600.0], n_samples=2000, seed=3)
    expect = 0.05 / (K_B * np.array([300.0, 600.0]) * math.log(10))
    assert np.allclose(res.log10_sigma_std, expect, rtol=0.06)
    assert res.activation_energy_std == pytest.approx(0.05, rel=0.06)
    again = conductivity(cubic(em=0.3, std=0.05), [300.0, 600.0], n_samples=2000, seed=3)
    assert np.array_equal(res.samples, again.samples)  # seeded


def test_each_temperature_is_solved_once(monkeypatch):
    """300 K asked and in the fit range: one solve at 300 K, and the same figures as asking 301 K."""
    import importlib

    module = importlib.import_module("ase_em.transport.conductivity")  # not the function of that name

    solved = []
    solve = module.diffusion_tensors
    monkeypatch.setattr(module, "diffusion_tensors", lambda net, t, *a, **k: solved.append(list(t)) or
                        solve(net, t, *a, **k))
    # two sites 1 A apart along x, site 1 0.2 eV below site 0; hops along x and one along y
    two_barriers = RateNetwork(np.eye(3) * 2.0, [[0, 0, 0], [0.5, 0, 0]], [0, 1, 0], [1, 0, 1],
                               [[0, 0, 0], [1, 0, 0], [0, 1, 0]], [0.3, 0.5, 0.35], em_std=[0.05] * 3,
                               em_backward=[0.5, 0.3, 0.55], group=[0, 0, 1], carriers_per_cell=1.0)
    res = conductivity(two_barriers, [300.0], n_samples=20, seed=1)
    assert solved == [[250.0, 300.0, 350.0, 400.0, 450.0, 500.0]]
    near = conductivity(two_barriers, [300.0 + 1e-9], n_samples=20, seed=1)
    assert res.log10_sigma[0] == pytest.approx(near.log10_sigma[0], abs=1e-9)
    assert res.log10_sigma_std[0] == pytest.approx(near.log10_sigma_std[0], abs=1e-9)
    assert res.activation_energy == pytest.approx(near.activation_energy, abs=1e-12)


def test_no_std_no_spread():
    res = conductivity(cubic(), [300.0])
    assert res.log10_sigma_std is None and res.activation_energy_std is None


def test_non_percolating_network():
    net = RateNetwork(np.eye(3) * 9.0, [[0, 0, 0], [0.2, 0, 0]], [0], [1], [[0, 0, 0]], [0.2])
    res = conductivity(net, [300.0, 400.0], n_samples=0)
    assert res.dimension == 0 and res.activation_energy is None
    assert np.all(np.isneginf(res.log10_sigma))
    assert res.to_dict()["log10_sigma"] == [None, None]


def test_json_and_html(tmp_path):
    res = conductivity(cubic(std=0.03), [300.0, 400.0], n_samples=50, formula="Li", ion="Li")
    out = json.loads(json.dumps(res.to_dict()))
    for key in ("T", "log10_sigma", "log10_sigma_std", "D", "activation_energy"):
        assert key in out
    assert out["T"] == [300.0, 400.0] and len(out["log10_sigma_std"]) == 2
    page = res._repr_html_()
    assert page.startswith("<table") and "log10 &sigma;" in page and f"{res.log10_sigma[0]:.2f}" in page
    png = res.plot_arrhenius(tmp_path / "arr.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "activation energy" in res.format_table()


def test_bad_settings():
    with pytest.raises(TransportError, match="temperatures"):
        conductivity(cubic(), [300.0, -1.0])
    with pytest.raises(TransportError, match="fit temperatures"):
        conductivity(cubic(), [300.0], fit_temperatures=[300.0])
    with pytest.raises(TransportError, match="default charge"):
        ion_charge("Xe")
    assert ion_charge("Li+") == 1 and ion_charge("Mg") == 2


def test_the_draws_sigma_is_the_scalar_formula_bit_for_bit():
    """sigma of every draw and temperature at once: each element as sigma_from_d gives it alone."""
    from ase_em.transport.conductivity import sigma_from_d

    net = cubic()
    d = np.exp(np.random.default_rng(0).normal(size=(7, 5)) * 5)
    temps = np.array([250.0, 300.0, 350.0, 400.0, 500.0])
    together = sigma_from_d(d, net, temps[None, :])
    assert together.shape == (7, 5)
    assert all(together[i, j] == sigma_from_d(float(d[i, j]), net, float(temps[j]))
               for i in range(7) for j in range(5))
