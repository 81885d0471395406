"""The exact one-carrier diffusion tensor against closed forms and a tracer kinetic Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest

from ase_em.errors import TransportError
from ase_em.transport.network import K_B, RateNetwork, diffusion_tensor, percolation_dimension

NU = 1e13


def rate(em: float, t: float) -> float:
    return NU * np.exp(-em / (K_B * t))


def cubic(a: float = 2.5, em: float = 0.3) -> RateNetwork:
    """Simple cubic lattice of one site per cell: three hops (+x, +y, +z), each undirected."""
    return RateNetwork(np.eye(3) * a, [[0.1, 0.2, 0.3]], [0, 0, 0], [0, 0, 0], np.eye(3), [em] * 3)


def chain(b: float = 1.5, em1: float = 0.2, em2: float = 0.45, back=None) -> RateNetwork:
    """Chain along x, two sites per cell (spacing b), hop 0 -> 1 (em1) and 1 -> 0 of the next cell (em2)."""
    return RateNetwork(np.diag([2 * b, 8.0, 8.0]), [[0, 0, 0], [0.5, 0, 0]], [0, 1], [1, 0],
                       [[0, 0, 0], [1, 0, 0]], [em1, em2], back)


def tracer_kmc(net: RateNetwork, t: float, t_end: float, walkers: int, seed: int) -> np.ndarray:
    """Plain tracer KMC (one ion, residence-time algorithm): (walkers, 3) displacements (A) at t_end."""
    rng = np.random.default_rng(seed)
    kt = K_B * t
    d = net.displacements
    out: list[list[tuple[int, np.ndarray, float]]] = [[] for _ in range(net.n_sites)]
    for e in range(len(net.u)):
        out[net.u[e]].append((net.v[e], d[e], NU * np.exp(-net.em_forward[e] / kt)))
        out[net.v[e]].append((net.u[e], -d[e], NU * np.exp(-net.em_backward[e] / kt)))
    width = max(len(o) for o in out)
    target = np.zeros((net.n_sites, width), int)
    disp = np.zeros((net.n_sites, width, 3))
    cum = np.ones((net.n_sites, width)) * np.inf
    total = np.zeros(net.n_sites)
    for i, o in enumerate(out):
        rates = np.array([r for _, _, r in o])
        total[i] = rates.sum()
        cum[i, : len(o)] = np.cumsum(rates) / total[i]
        for j, (tgt, dd, _) in enumerate(o):
            target[i, j], disp[i, j] = tgt, dd
    energy = net.site_energies
    p = np.exp(-energy / kt)
    site = rng.choice(net.n_sites, walkers, p=p / p.sum())  # start in equilibrium
    clock = np.zeros(walkers)
    pos = np.zeros((walkers, 3))
    active = np.ones(walkers, bool)
    while active.any():
        idx = np.flatnonzero(active)
        s = site[idx]
        clock_new = clock[idx] + rng.exponential(1.0 / total[s])
        go = clock_new <= t_end
        active[idx[~go]] = False
        idx, s, clock_new = idx[go], s[go], clock_new[go]
        j = (rng.random(len(idx))[:, None] > cum[s]).sum(axis=1)
        pos[idx] += disp[s, j]
        site[idx] = target[s, j]
        clock[idx] = clock_new
    return pos


def test_simple_cubic_closed_form():
    # one site per cell, spacing a, rate k to each of its 6 neighbours: D_xx = k a^2 (x = +-a at rate k each)
    a = 2.5
    for t in (300.0, 600.0):
        d = diffusion_tensor(cubic(a), t, NU)
        assert np.allclose(d, np.eye(3) * rate(0.3, t) * a * a, rtol=1e-10)


def test_chain_of_two_alternating_barriers_closed_form():
    # series resistors: D = b^2 / <1/k> = 2 b^2 k1 k2 / (k1 + k2), also for a 1 eV spread in barrier
    b = 1.5
    for em1, em2 in ((0.2, 0.45), (0.2, 1.2)):
        net = chain(b, em1, em2)
        for t in (300.0, 500.0):
            k1, k2 = rate(em1, t), rate(em2, t)
            d = diffusion_tensor(net, t, NU)
            assert d[0, 0] == pytest.approx(2 * b * b * k1 * k2 / (k1 + k2), rel=1e-9)
            assert np.allclose(d[1:, :], 0.0) and np.allclose(d[:, 1:], 0.0)
        assert percolation_dimension(net) == 1


def test_finite_cluster_does_not_diffuse():
    net = RateNetwork(np.eye(3) * 9.0, [[0, 0, 0], [0.2, 0, 0], [0.2, 0.2, 0]], [0, 1, 2], [1, 2, 0],
                      np.zeros((3, 3)), [0.1, 0.2, 0.3])
    assert percolation_dimension(net) == 0
    assert np.all(diffusion_tensor(net, 300.0) == 0.0)


def test_layered_network_percolates_in_two_directions():
    net = RateNetwork(np.diag([3.0, 3.0, 7.0]), [[0, 0, 0]], [0, 0], [0, 0], [[1, 0, 0], [0, 1, 0]],
                      [0.3, 0.5])
    d = diffusion_tensor(net, 400.0)
    assert percolation_dimension(net) == 2
    assert d[0, 0] == pytest.approx(rate(0.3, 400.0) * 9.0)
    assert d[1, 1] == pytest.approx(rate(0.5, 400.0) * 9.0)
    assert d[2, 2] == 0.0


@pytest.mark.parametrize(
    "net, t",
    [
        (cubic(2.0, 0.25), 400.0),
        (chain(1.5, 0.20, 0.28), 400.0),
        # two inequivalent sites: site 1 lies 0.05 eV above site 0 (em_forward - em_backward)
        (chain(1.5, 0.25, 0.20, back=[0.20, 0.25]), 400.0),
        # 3D: two sites per cubic cell, body-centre site linked to the 8 corners, plus corner-corner
        (RateNetwork(np.eye(3) * 3.0, [[0, 0, 0], [0.5, 0.5, 0.5]], [0] * 8 + [0, 0], [1] * 8 + [0, 0],
                     [[-i, -j, -k] for i in (0, 1) for j in (0, 1) for k in (0, 1)] + [[1, 0, 0], [0, 1, 0]],
                     [0.22] * 8 + [0.18, 0.26], [0.25] * 8 + [0.18, 0.26]), 450.0),
    ],
    ids=["cubic", "chain", "chain-site-energies", "bcc-like-anisotropic"],
)
def test_exact_tensor_matches_tracer_kmc(net, t):
    """KMC: 4000 independent tracers over about 400 hops each; agree within 4 standard errors."""
    exact = diffusion_tensor(net, t, NU)
    k_slow = min(rate(min(f, b), t) for f, b in zip(net.em_forward, net.em_backward, strict=True))
    t_end = 400.0 / k_slow
    pos = tracer_kmc(net, t, t_end, walkers=4000, seed=1)
    for axis in range(3):
        if exact[axis, axis] == 0.0:
            assert np.allclose(pos[:, axis], 0.0)
            continue
        sq = pos[:, axis] ** 2 / (2 * t_end)
        est, err = sq.mean(), sq.std(ddof=1) / np.sqrt(len(sq))
        assert abs(est - exact[axis, axis]) < 4 * err + 0.01 * exact[axis, axis], (axis, est, err, exact)


def test_site_energies_follow_the_barrier_differences():
    net = chain(1.5, 0.30, 0.20, back=[0.20, 0.30])
    assert net.site_energies == pytest.approx([0.0, 0.10])


def test_detailed_balance_violation_is_refused():
    # going round the chain's cycle (0 -> 1 -> 0 of the next cell) would gain energy
    with pytest.raises(TransportError, match="detailed balance"):
        chain(1.5, 0.30, 0.30, back=[0.20, 0.20])


@pytest.mark.parametrize(
    "change, match",
    [
        ({"v": [0, 5]}, "site index v=5"),
        ({"em_forward": [0.2, np.inf]}, "hop 1 .*em_forward is inf"),
        ({"image": [[0, 0, 0], [0.5, 0, 0]]}, "integers"),
        ({"em_forward": [0.2]}, "em_forward has 1 rows"),
        ({"carriers_per_cell": 0.0}, "carriers_per_cell"),
        ({"em_std": [0.1, -0.1]}, "hop 1: em_std"),
    ],
)
def test_bad_networks_name_the_hop(change, match):
    base = {"lattice": np.diag([3.0, 8.0, 8.0]), "frac_coords": [[0, 0, 0], [0.5, 0, 0]], "u": [0, 1],
            "v": [1, 0], "image": [[0, 0, 0], [1, 0, 0]], "em_forward": [0.2, 0.3]}
    with pytest.raises(TransportError, match=match):
        RateNetwork(**{**base, **change})


def test_temperature_must_be_positive():
    with pytest.raises(TransportError, match="temperature"):
        diffusion_tensor(cubic(), 0.0)


def test_fast_pairs_on_slow_links_keep_the_slow_links():
    # four sites per cell along x, bonds fast, slow, fast, slow (0.2 / 1.4 eV: 1e-20 apart at 300 K).
    # Series resistors: D = (L^2 / N) / sum_i 1/k_i. LAPACK's LU rounds the slow links away here
    # (a singular grounded Laplacian); the GTH elimination keeps them.
    b, t = 1.4, 300.0
    ems = [0.2, 1.4, 0.2, 1.4]
    net = RateNetwork(np.diag([4 * b, 8.0, 8.0]), [[i / 4, 0, 0] for i in range(4)], [0, 1, 2, 3],
                      [1, 2, 3, 0],
                      [[0, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0]], ems)
    expect = (4 * b) ** 2 / 4 / sum(1 / rate(e, t) for e in ems)
    assert diffusion_tensor(net, t)[0, 0] == pytest.approx(expect, rel=1e-9)
    # and a 3D network where LAPACK and GTH both apply agree
    rng = np.random.default_rng(0)
    frac = rng.random((6, 3))
    u, v = rng.integers(0, 6, 30), rng.integers(0, 6, 30)
    image = rng.integers(-1, 2, (30, 3))
    keep = (u != v) | image.any(axis=1)
    net = RateNetwork(np.eye(3) * 5.0, frac, u[keep], v[keep], image[keep], rng.uniform(0.2, 0.5, keep.sum()))
    from ase_em.transport import network as module

    plain = diffusion_tensor(net, 300.0)
    old, module.RANGE_FOR_LAPACK = module.RANGE_FOR_LAPACK, 2.0  # force the GTH path
    try:
        gth = diffusion_tensor(net, 300.0)
    finally:
        module.RANGE_FOR_LAPACK = old
    assert np.allclose(plain, gth, rtol=1e-8, atol=0)


def test_batched_solves_match_one_at_a_time():
    """diffusion_tensors over temperatures and barrier sets gives each diffusion_tensor, both solver paths."""
    from ase_em.transport.network import diffusion_tensors

    rng = np.random.default_rng(3)
    frac = rng.random((7, 3))
    u, v = rng.integers(0, 7, 40), rng.integers(0, 7, 40)
    image = rng.integers(-1, 2, (40, 3))
    keep = (u != v) | image.any(axis=1)
    m = int(keep.sum())
    # barriers 0.1-1.2 eV: some temperatures and draws need the GTH path, some LAPACK's
    net = RateNetwork(np.eye(3) * 5.0, frac, u[keep], v[keep], image[keep], rng.uniform(0.1, 1.2, m))
    temps = [250.0, 300.0, 900.0]
    sets = net.em_forward[None, :] + rng.normal(0.0, 0.2, (4, m)).clip(-0.09, None)
    batch = diffusion_tensors(net, temps, NU, em_forward=sets)
    assert batch.shape == (4, 3, 3, 3)
    for s in range(4):
        other = net.with_barriers(sets[s], sets[s])
        for k, t in enumerate(temps):
            one = diffusion_tensor(other, t, NU)
            assert np.allclose(batch[s, k], one, rtol=1e-10, atol=1e-300)
    assert np.trace(batch[0, 0]) < np.trace(batch[0, 2])  # hotter is faster: the rows are not mixed up


def test_add_at_is_numpys_add_at_bit_for_bit():
    """Parallel entries, repeated indices and cancelling pairs (a self-hop's +flow and -flow) sum
    in np.add.at's order, so the corrector's right-hand side and adjacency are unchanged."""
    from ase_em.transport.network import _add_at

    rng = np.random.default_rng(0)
    for _ in range(50):
        n, p = int(rng.integers(1, 20)), int(rng.integers(0, 200))
        index = rng.integers(0, n, p)
        values = np.exp(rng.normal(size=(p, 4)) * 12) * rng.choice([-1.0, 1.0], size=(p, 4))
        half = p // 2
        index[half:2 * half] = index[:half]  # every value of the first half comes back, negated
        values[half:2 * half] = -values[:half]
        expected = np.zeros((n, 4))
        np.add.at(expected, index, values)
        assert np.array_equal(_add_at(index, values, n), expected)


def _textbook_gth(a, g, b):
    """The GTH elimination with separate updates and the self-links zeroed each step."""
    a, g, b = a.copy(), g.copy(), b.copy()
    m = g.shape[1]
    pivots = np.empty(g.shape)
    for k in range(m):
        r = slice(k + 1, m)
        pivots[:, k] = a[:, k, r].sum(axis=-1) + g[:, k]
        col = a[:, r, k] / pivots[:, k, None]
        a[:, r, r] += col[:, :, None] * a[:, None, k, r]
        rest = np.arange(k + 1, m)
        a[:, rest, rest] = 0.0
        g[:, r] += col * g[:, k, None]
        b[:, r] += col[:, :, None] * b[:, k, None, :]
    x = np.zeros_like(b)
    for k in range(m - 1, -1, -1):
        x[:, k] = (b[:, k] + np.einsum("bj,bjc->bc", a[:, k, k + 1:], x[:, k + 1:])) / pivots[:, k, None]
    return x


def test_gth_elimination_is_the_textbook_one_bit_for_bit():
    """The grounded links and right-hand side eliminated as extra columns, the self-links left
    alone: the same numbers as separate updates, on conductances 1e-20 apart and a batch
    longer than one chunk; and the solution solves the system."""
    from ase_em.transport.network import GTH_ROWS, _solve_laplacian

    rng = np.random.default_rng(5)
    for batch, m in ((3, 1), (5, 9), (GTH_ROWS + 7, 17)):
        a = np.exp(rng.normal(size=(batch, m, m)) * 15) * (rng.random((batch, m, m)) < 0.6)
        a = np.triu(a, 1) + np.swapaxes(np.triu(a, 1), 1, 2)
        g = np.exp(rng.normal(size=(batch, m)) * 15) * (rng.random((batch, m)) < 0.5)
        g[:, 0] += 1.0  # grounded through the first site at least
        b = rng.normal(size=(batch, m, 3))
        x = _solve_laplacian(a, g, b)
        assert np.array_equal(x, _textbook_gth(a, g, b))
        lap = -a + np.einsum("bij,ij->bij", a.sum(axis=2)[:, :, None] + g[:, :, None], np.eye(m))
        well = np.abs(a).max(axis=(1, 2), initial=0) < 1e3  # LAPACK's check only where it is accurate
        if well.any():
            assert np.allclose(np.linalg.solve(lap[well], b[well]), x[well], rtol=1e-6, atol=1e-9)


def test_rows_with_different_live_hops_match_one_at_a_time():
    """A batch whose rows switch different hops off (a conductance 0) is grouped by pattern and
    gives each row's own tensor; the forest stops at its last link and is Kruskal's."""
    from ase_em.transport.network import _corrected_tensors, _tree_translations

    rng = np.random.default_rng(7)
    n, m = 6, 24
    u, v = rng.integers(0, n, m), rng.integers(0, n, m)
    d = rng.normal(size=(m, 3)) * 2.0
    c = rng.random((5, m))
    c[1, :3] = 0.0
    c[3, 5:9] = 0.0
    together = _corrected_tensors(n, u, v, d, c)
    for row in range(len(c)):
        one = _corrected_tensors(n, u, v, d, c[row:row + 1])
        assert np.array_equal(together[row], one[0])
    assert not np.allclose(together[0], together[1])
    # every hop of the forest carries no translation; every other hop, the cycle it closes
    trans = _tree_translations(n, u, v, d, c[0])
    on_tree = ~trans.any(axis=1)
    # stopping after the forest's last link changes nothing: the same as going through every hop
    assert np.array_equal(trans, _tree_translations(n, u, v, d, c[0], n_links=m))
    order = np.argsort(-c[0], kind="stable")
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    kruskal = np.zeros(m, bool)
    for e in order:
        ru, rv = find(u[e]), find(v[e])
        if ru != rv:
            parent[ru] = rv
            kruskal[e] = True
    assert np.array_equal(on_tree & kruskal, kruskal)  # Kruskal's links are the zero-translation ones
