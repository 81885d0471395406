"""A periodic hop network with rates, and its exact diffusion tensor (one carrier, dilute limit).

The network: ``n`` sites in a unit cell (fractional coordinates) and ``m`` hops. Hop ``e``
joins site ``u`` in cell 0 to site ``v`` in cell ``image`` (three integers, pymatgen's
``to_jimage``), with barriers ``em_forward`` (u -> v) and ``em_backward`` (v -> u), eV; by
periodicity it joins every cell's copy. Each hop is one undirected edge: give it once.

Rates (transition-state theory): ``k = nu exp(-Em / kT)``, ``nu`` the attempt frequency.
The site energies follow from the barriers: ``E_v - E_u = em_forward - em_backward``
(detailed balance); they must agree around every cycle, periodic ones included, or
:class:`ase_em.errors.TransportError` is raised.

The diffusion tensor of one carrier (the standard homogenised result for a reversible
random walk on a periodic graph, e.g. Kipnis & Varadhan 1986; the "corrector" of
periodic homogenisation):

* stationary occupation ``pi_i ~ exp(-E_i / kT)``, summing to 1 over the cell's sites;
* each hop's conductance ``c_e = pi_u k_uv = pi_v k_vu`` (s^-1) and displacement
  ``d_e = (x_v + image - x_u) @ lattice`` (A);
* the corrector ``chi`` ((n, 3), A) solves, for every site ``i``,
  ``sum_e c_e (d_e + chi_v - chi_u) = 0`` over the hops at ``i`` (signed): the ion's
  corrected position ``x + chi`` has no drift (a weighted graph Laplacian, one solve);
* ``D = sum_e c_e (d_e + chi_v - chi_u) (d_e + chi_v - chi_u)^T`` ((3, 3), A^2/s).

For a simple cubic lattice of equivalent sites (spacing ``a``, rate ``k`` to each of the 6
neighbours) this gives ``D_xx = k a^2``; for a chain of spacing ``b`` with alternating rates
``k1, k2``: ``D = 2 b^2 k1 k2 / (k1 + k2)`` (both in ``tests/transport``). It is the
long-time ``<|x(t) - x(0)|^2> / (2 t)`` of one tracer with no other carriers: no site
blocking and no correlation between ions (Haven ratio and correlation factor 1).

Hand-written (numpy/scipy, about 40 lines) because no well-kept library solves a periodic
rate network: kMCpy simulates a many-ion lattice gas (``docs/conductivity.md``).

Directions in which the network does not percolate get D = 0 exactly: the same solve with
every conductance 1 (well conditioned) spans the directions the hops connect through the
crystal; D is projected onto them, so rounding in a finite cluster never reads as transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ase_em.errors import TransportError

K_B = 8.617333262e-5  # eV/K, Boltzmann constant (CODATA 2018)
DETAILED_BALANCE_TOL = 1e-4  # eV: largest disagreement of the site energies around a cycle
PERCOLATION_TOL = 1e-9  # relative eigenvalue of the unit-conductance D below which a direction is closed


@dataclass(frozen=True)
class RateNetwork:
    """A periodic hop network (see the module docstring).

    Attributes:
        lattice: (3, 3) cell vectors as rows (A).
        frac_coords: (n, 3) fractional coordinates of the sites.
        u, v: (m,) integer site indices of each hop's ends.
        image: (m, 3) integer cell of ``v``'s copy relative to ``u``'s.
        em_forward: (m,) barrier u -> v (eV, finite; below 0 is read as 0).
        em_backward: (m,) barrier v -> u (eV; default: ``em_forward``, a symmetric hop).
        em_std: (m,) one-sigma uncertainty of each hop's barrier (eV; NaN: none known).
        group: (m,) integer label of each hop; hops of one group share one sampled error
            (symmetry-equivalent hops get one prediction; default: each hop its own group).
        carriers_per_cell: mobile ions per unit cell (for a disordered crystal the sum of
            the ion's occupancies); sets the carrier density.
        charge: charge number of the carrier (e.g. 1 for Li+).
        site_labels: optional (n,) text per site (plots, messages).
    """

    lattice: np.ndarray
    frac_coords: np.ndarray
    u: np.ndarray
    v: np.ndarray
    image: np.ndarray
    em_forward: np.ndarray
    em_backward: np.ndarray | None = None
    em_std: np.ndarray | None = None
    group: np.ndarray | None = None
    carriers_per_cell: float = 1.0
    charge: int = 1
    site_labels: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        """Check shapes, indices and values; fill the defaults."""
        put = object.__setattr__
        lattice = np.asarray(self.lattice, float)
        if lattice.shape != (3, 3) or not np.isfinite(lattice).all() or abs(np.linalg.det(lattice)) < 1e-6:
            raise TransportError(
                f"lattice must be a (3, 3) cell with non-zero volume (A), got {lattice.tolist()}")
        frac = np.asarray(self.frac_coords, float).reshape(-1, 3) if np.size(self.frac_coords) else np.zeros(
            (0, 3))
        if len(frac) == 0:
            raise TransportError("the network has no sites")
        m = len(np.atleast_1d(self.u))
        if m == 0:
            raise TransportError("the network has no hops")
        u = np.asarray(self.u).astype(int).reshape(-1)
        v = np.asarray(self.v).astype(int).reshape(-1)
        image = np.asarray(self.image).reshape(-1, 3) if np.size(self.image) else np.zeros((0, 3))
        if not np.allclose(image, np.rint(image)):
            raise TransportError("image offsets must be integers")
        image = np.rint(image).astype(int)
        fwd = np.asarray(self.em_forward, float).reshape(-1)
        bwd = fwd.copy() if self.em_backward is None else np.asarray(self.em_backward, float).reshape(-1)
        std = np.full(m, np.nan) if self.em_std is None else np.asarray(
            [np.nan if s is None else s for s in np.atleast_1d(self.em_std)], float).reshape(-1)
        group = np.arange(m) if self.group is None else np.asarray(self.group).astype(int).reshape(-1)
        for name, arr in (("v", v), ("image", image), ("em_forward", fwd), ("em_backward", bwd),
                          ("em_std", std), ("group", group)):
            if len(arr) != m:
                raise TransportError(f"{name} has {len(arr)} rows, u has {m}: one row per hop")
        for name, arr in (("u", u), ("v", v)):
            bad = np.flatnonzero((arr < 0) | (arr >= len(frac)))
            if len(bad):
                raise TransportError(
                    f"hop {bad[0]}: site index {name}={arr[bad[0]]} outside 0..{len(frac) - 1}")
        for name, arr in (("em_forward", fwd), ("em_backward", bwd)):
            bad = np.flatnonzero(~np.isfinite(arr))
            if len(bad):
                raise TransportError(f"hop {bad[0]} ({u[bad[0]]} -> {v[bad[0]]}): {name} is {arr[bad[0]]}; "
                                     "leave blocked hops out of the network")
        bad = np.flatnonzero((u == v) & ~image.any(axis=1))
        if len(bad):
            raise TransportError(f"hop {bad[0]}: joins site {u[bad[0]]} to itself in the same cell")
        bad = np.flatnonzero(np.isfinite(std) & (std < 0))
        if len(bad):
            raise TransportError(f"hop {bad[0]}: em_std {std[bad[0]]} < 0")
        if not (np.isfinite(self.carriers_per_cell) and self.carriers_per_cell > 0):
            raise TransportError(f"carriers_per_cell must be > 0, got {self.carriers_per_cell}")
        if int(self.charge) == 0:
            raise TransportError("the carrier's charge number must not be 0")
        for name, val in (("lattice", lattice), ("frac_coords", frac), ("u", u), ("v", v), ("image", image),
                          ("em_forward", fwd), ("em_backward", bwd), ("em_std", std), ("group", group)):
            put(self, name, val)
        self.site_energies  # noqa: B018 - detailed balance is checked at construction

    @property
    def n_sites(self) -> int:
        """Number of sites in the cell."""
        return len(self.frac_coords)

    @property
    def volume(self) -> float:
        """Cell volume (A^3)."""
        return float(abs(np.linalg.det(self.lattice)))

    @property
    def displacements(self) -> np.ndarray:
        """(m, 3) Cartesian vector of each hop u -> v (A)."""
        return (self.frac_coords[self.v] + self.image - self.frac_coords[self.u]) @ self.lattice

    @property
    def site_energies(self) -> np.ndarray:
        """(n,) site energies (eV) from ``em_forward - em_backward``, lowest 0 in each connected part.

        Raises:
            TransportError: the differences disagree around a cycle by more than
                ``DETAILED_BALANCE_TOL`` (no site energies exist: detailed balance fails).
        """
        return site_energies(self.n_sites, self.u, self.v, self.em_forward - self.em_backward)

    def with_barriers(self, em_forward: np.ndarray, em_backward: np.ndarray) -> RateNetwork:
        """The same network with other barriers (eV, (m,) each)."""
        from dataclasses import replace

        return replace(self, em_forward=em_forward, em_backward=em_backward)


def site_energies(n: int, u: np.ndarray, v: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Site energies E with ``E[v] - E[u] = delta`` for every hop (least squares, then checked).

    Args:
        n: number of sites.
        u: (m,) start site of each hop.
        v: (m,) end site of each hop.
        delta: (m,) energy differences (eV).

    Returns:
        (n,) energies (eV), the lowest 0 in each connected part of the network.

    Raises:
        TransportError: a hop's difference disagrees with the others around a cycle.
    """
    a = np.zeros((len(u), n))
    a[np.arange(len(u)), v] += 1.0
    a[np.arange(len(u)), u] -= 1.0
    energy = np.linalg.lstsq(a, delta, rcond=None)[0] if np.any(delta) else np.zeros(n)
    residual = a @ energy - delta
    worst = int(np.argmax(np.abs(residual))) if len(residual) else 0
    if len(residual) and abs(residual[worst]) > DETAILED_BALANCE_TOL:
        raise TransportError(
            f"hop {worst} ({u[worst]} -> {v[worst]}): em_forward - em_backward = {delta[worst]:.4f} eV "
            f"disagrees with the other hops around a cycle by {residual[worst]:.4f} eV; no site energies "
            "fit these barriers (detailed balance)"
        )
    part = _parts(n, u, v)
    for p in np.unique(part):
        energy[part == p] -= energy[part == p].min()
    return energy


def _parts(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(n,) label of each site's connected part of the hops (u, v)."""
    _, part = connected_components(coo_matrix((np.ones(len(u)), (u, v)), shape=(n, n)), directed=False)
    return part


def _forest_links(part: np.ndarray) -> int:
    """Links of a spanning forest of sites labelled by their connected ``part``: sites less parts."""
    return len(part) - int(part.max(initial=-1)) - 1


RANGE_FOR_LAPACK = 1e-8  # smallest/largest conductance of a part above which LAPACK's LU is accurate
BATCH_ELEMENTS = 2_000_000  # float64 entries of the (B, n, n) arrays of one batch of solves (16 MB)


GTH_ROWS = 96  # rows of one elimination (10-25 % faster than 700 at once for 20-60 sites)


def _solve_laplacian(a: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``(diag(a.sum(-1) + g) - a) x = b`` by Gaussian elimination in GTH form, for a batch.

    ``a``: (B, m, m) symmetric conductances, zero diagonal; ``g``: (B, m) conductance of each
    node to the grounded node; ``b``: (B, m, 3). Each pivot is computed as a sum of the
    reduced graph's conductances (Grassmann-Taksar-Heyman), never as a difference, so a link
    1e-20 times weaker than its neighbours is kept exactly: LAPACK's LU rounds it away and the
    grounded Laplacian of a fast cluster on slow links turns singular. O(B m^3), in numpy,
    one elimination step for the whole batch at a time (a network's temperatures and barrier
    draws are solved together).
    """
    if len(a) > GTH_ROWS:  # row by row independent: the same numbers, a working set nearer the cache
        return np.concatenate([_solve_laplacian(a[i:i + GTH_ROWS], g[i:i + GTH_ROWS], b[i:i + GTH_ROWS])
                               for i in range(0, len(a), GTH_ROWS)])
    n_rows, m = g.shape
    # the grounded conductances and the right-hand side ride along as 4 more columns, so one
    # update per step eliminates all three, with the same operations as separate ones
    ext = np.empty((n_rows, m, m + 4))
    ext[:, :, :m], ext[:, :, m], ext[:, :, m + 1:] = a, g, b
    pivots = np.empty(g.shape)
    for k in range(m):
        r = slice(k + 1, m)
        pivots[:, k] = ext[:, k, r].sum(axis=-1) + ext[:, k, m]
        col = ext[:, r, k] / pivots[:, k, None]  # (B, m-k-1)
        # the self-links (diagonal) this adds to are never read: the pivots are rebuilt from the links
        ext[:, r, k + 1:] += col[:, :, None] * ext[:, None, k, k + 1:]
    a, b = ext[:, :, :m], ext[:, :, m + 1:]
    x = np.zeros_like(b)
    for k in range(m - 1, -1, -1):
        x[:, k] = (b[:, k] + np.einsum("bj,bjc->bc", a[:, k, k + 1:], x[:, k + 1:])) / pivots[:, k, None]
    return x


def _tree_translations(n: int, u: np.ndarray, v: np.ndarray, d: np.ndarray, c: np.ndarray,
                       order: np.ndarray | None = None, n_links: int | None = None) -> np.ndarray:
    """(m, 3) lattice translation of each hop relative to unwrapped positions along a spanning forest.

    The forest takes the strongest links first (Kruskal, largest conductance first); each site
    gets an unwrapped position ``p`` along it, and each hop ``d_e = p_v - p_u + T_e``: ``T_e`` is
    0 on the forest and the net translation of the cycle the hop closes elsewhere. Written in
    ``T`` the corrector equations carry no large terms that cancel: only hops that close a
    cycle drive the solve, and none of them is stronger than the forest links of its cycle.

    ``order``: the hops by decreasing ``c``, stable (``np.argsort(-c, kind="stable")``), and
    ``n_links``: the links of a spanning forest (sites less connected parts), when the caller
    already has them.
    """
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    nbrs: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    tree = np.zeros(len(u), bool)
    # a forest of the connected parts has n - parts links: the hops after its last one close cycles
    links_left = _forest_links(_parts(n, u, v)) if n_links is None else n_links
    uu, vv = u.tolist(), v.tolist()
    for e in (np.argsort(-c, kind="stable") if order is None else order).tolist():
        if links_left == 0:
            break
        ru, rv = find(uu[e]), find(vv[e])
        if ru != rv:
            parent[ru] = rv
            tree[e] = True
            nbrs[uu[e]].append((vv[e], e))
            nbrs[vv[e]].append((uu[e], -e - 1))
            links_left -= 1
    pos = np.zeros((n, 3))
    seen = np.zeros(n, bool)
    for root in range(n):
        if seen[root]:
            continue
        seen[root] = True
        stack = [root]
        while stack:
            i = stack.pop()
            for j, e in nbrs[i]:
                if not seen[j]:
                    seen[j] = True
                    pos[j] = pos[i] + (d[e] if e >= 0 else -d[-e - 1])
                    stack.append(j)
    trans = d - (pos[v] - pos[u])
    trans[tree] = 0.0
    return trans


def _corrected_tensors(n: int, u: np.ndarray, v: np.ndarray, d: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(B, 3, 3) ``sum_e c_e g_e g_e^T`` for each row of conductances ``c`` (B, m) on one network.

    ``g_e = d_e + chi_v - chi_u`` with the corrector chi (module docstring). Rows are grouped
    by which hops have a non-zero conductance, and solved in batches.
    """
    out = np.zeros((len(c), 3, 3))
    live = c > 0
    if (live == live[:1]).all():  # the usual case: one set of live hops (np.unique of rows is slow)
        patterns, which = live[:1], np.zeros(len(c), dtype=np.intp)
    else:
        patterns, which = np.unique(live, axis=0, return_inverse=True)
    step = max(1, BATCH_ELEMENTS // max(n * n, 1))
    for p, pattern in enumerate(patterns):
        rows = np.flatnonzero(which.reshape(-1) == p)
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            out[chunk] = _corrected_live(n, u[pattern], v[pattern], d[pattern], c[np.ix_(chunk, pattern)])
    return out


def _add_at(index: np.ndarray, values: np.ndarray, n_rows: int) -> np.ndarray:
    """(n_rows, k) rows of ``values`` (P, k) summed by ``index`` (P,): ``np.add.at`` on zeros, bit for bit.

    A sparse matrix with one 1 per value (duplicates kept, each row's values in their given
    order) times ``values``: the same additions in the same order as ``np.add.at``, which
    loops in Python-free but unbuffered C, 5-10x slower on these sizes.
    """
    from scipy.sparse import csr_matrix

    order = np.argsort(index, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(index, minlength=n_rows))])
    pick = csr_matrix((np.ones(len(index)), order, indptr), shape=(n_rows, len(index)))
    return np.asarray(pick @ values)


def _corrected_live(n: int, u: np.ndarray, v: np.ndarray, d: np.ndarray, c: np.ndarray) -> np.ndarray:
    """:func:`_corrected_tensors` for rows ``c`` (B, m) whose conductances are all > 0.

    Solved for ``phi = p + chi`` (``p``: unwrapped positions of :func:`_tree_translations`),
    so that ``g_e = T_e + phi_v - phi_u``: the same Laplacian, a right-hand side of
    cycle-closing hops only. Rows that rank the hops alike (the temperatures of one set of
    barriers: ``c_e`` goes as ``exp(-(E_u + Em_e) / kT)``) share one forest.
    """
    b, m = c.shape
    trans = np.empty((b, m, 3))
    forests: dict[bytes, np.ndarray] = {}
    part = _parts(n, u, v)
    n_links = _forest_links(part)
    for row, order in enumerate(np.argsort(-c, axis=1, kind="stable")):
        key = order.tobytes()
        if key not in forests:
            forests[key] = _tree_translations(n, u, v, d, c[row], order, n_links)
        trans[row] = forests[key]
    ring = u != v  # periodic self-hops carry no corrector term
    cr = c[:, ring].T  # (m', B)
    pairs = np.concatenate([u[ring] * n + v[ring], v[ring] * n + u[ring]])
    adj = _add_at(pairs, np.concatenate([cr, cr]), n * n)  # (n*n, B): parallel hops summed
    adj = adj.T.reshape(b, n, n)
    flow = c.T[:, :, None] * trans.transpose(1, 0, 2)  # (m, B, 3)
    rhs = _add_at(np.concatenate([u, v]), np.concatenate([flow, -flow]).reshape(2 * m, -1), n)
    rhs = rhs.reshape(n, b, 3).transpose(1, 0, 2)
    # (degree - adjacency) phi = b, b_i = sum_j c_ij T_ij: that is sum_j c_ij (phi_j - phi_i + T_ij) = 0
    phi = np.zeros((b, n, 3))
    for p in np.unique(part):
        idx = np.flatnonzero(part == p)
        if len(idx) == 1:
            continue
        rows = np.flatnonzero(rhs[:, idx].any(axis=(1, 2)))  # no cycle carries a translation: phi = 0
        if len(rows) == 0:
            continue
        ground, free = idx[0], idx[1:]  # phi is defined up to a constant per part
        a = adj[np.ix_(rows, free, free)]
        g = adj[rows, :, ground][:, free]
        pos_a = np.where(a > 0, a, np.inf).min(axis=(1, 2))
        pos_g = np.where(g > 0, g, np.inf).min(axis=1)
        top = np.maximum(a.max(axis=(1, 2)), g.max(axis=1))
        plain = np.minimum(pos_a, pos_g) >= RANGE_FOR_LAPACK * top
        sol = np.empty((len(rows), len(free), 3))
        if plain.any():
            ap, gp = a[plain], g[plain]
            lap = -ap
            diag = np.arange(len(free))
            lap[:, diag, diag] = ap.sum(axis=2) + gp
            sol[plain] = np.linalg.solve(lap, rhs[rows[plain]][:, free])
        if (~plain).any():
            sol[~plain] = _solve_laplacian(a[~plain], g[~plain], rhs[rows[~plain]][:, free])
        phi[np.ix_(rows, free)] = sol
    grad = trans + phi[:, v] - phi[:, u]  # (B, m, 3)
    return np.einsum("be,bei,bej->bij", c, grad, grad)


def diffusion_tensors(
    network: RateNetwork, temperatures: float | np.ndarray, attempt_frequency: float = 1e13, *,
    em_forward: np.ndarray | None = None, open_directions: np.ndarray | None = None,
    site_energies: np.ndarray | None = None,
) -> np.ndarray:
    """Exact diffusion tensors of one carrier (module docstring) for several temperatures and barrier sets.

    All of them are solved together (one elimination for the whole batch), which is what
    makes a conductivity with a few hundred barrier draws cheap.

    Args:
        network: the hop network.
        temperatures: (T,) temperatures (K), each > 0.
        attempt_frequency: nu (Hz), > 0.
        em_forward: (S, m) forward barriers (eV) of S barrier sets on the network's hops
            (default: the network's own, S = 1). The backward barriers are these minus the
            network's ``em_forward - em_backward``: the site energies stay the network's.
        open_directions: (3, 3) projector onto the percolating directions
            (:func:`open_projector`; computed when not given: it depends on the hops only).
        site_energies: (n,) :attr:`RateNetwork.site_energies`, when already known.

    Returns:
        (S, T, 3, 3) symmetric D (A^2/s); zero in the directions the hops do not percolate.

    Raises:
        TransportError: a T or nu not positive.
    """
    temps = np.atleast_1d(np.asarray(temperatures, float)).reshape(-1)
    bad = temps[~(np.isfinite(temps) & (temps > 0))]
    if len(bad) or len(temps) == 0:
        raise TransportError(f"temperature must be > 0 K, got {bad[0] if len(bad) else 'none'}")
    if not (attempt_frequency > 0 and np.isfinite(attempt_frequency)):
        raise TransportError(f"attempt frequency must be > 0 Hz, got {attempt_frequency}")
    fwd = np.atleast_2d(network.em_forward if em_forward is None else np.asarray(em_forward, float))
    kt = K_B * temps  # (T,)
    n, u, v, d = network.n_sites, network.u, network.v, network.displacements
    energy = network.site_energies if site_energies is None else site_energies
    weight = np.exp(-(energy - energy.min())[None, :] / kt[:, None])  # (T, n)
    log_pi = np.log(weight / weight.sum(axis=1, keepdims=True))
    # c_e = pi_u nu exp(-Em_uv / kT); written with the exponents summed so nothing underflows early
    log_c = log_pi[None, :, u] - np.maximum(fwd, 0.0)[:, None, :] / kt[None, :, None]  # (S, T, m)
    scale = log_c.max(axis=2)  # (S, T)
    c = np.exp(log_c - scale[:, :, None])  # largest conductance 1 in each row: the solve is scale free
    s, t = scale.shape
    tensors = _corrected_tensors(n, u, v, d, c.reshape(s * t, -1)).reshape(s, t, 3, 3)
    tensors = tensors * (attempt_frequency * np.exp(scale))[:, :, None, None]
    proj = open_projector(network) if open_directions is None else open_directions
    tensors = proj @ tensors @ proj
    return 0.5 * (tensors + np.swapaxes(tensors, -1, -2))


def diffusion_tensor(
    network: RateNetwork, temperature: float, attempt_frequency: float = 1e13, *,
    open_directions: np.ndarray | None = None,
) -> np.ndarray:
    """Exact diffusion tensor of one carrier on the network (module docstring).

    Args:
        network: the hop network.
        temperature: T (K), > 0.
        attempt_frequency: nu (Hz), > 0.
        open_directions: (3, 3) projector onto the percolating directions
            (:func:`open_projector`; computed when not given: it depends on the hops only).

    Returns:
        (3, 3) symmetric D (A^2/s); zero in the directions the hops do not percolate.

    Raises:
        TransportError: T or nu not positive.
    """
    if not (np.isscalar(temperature) or np.ndim(temperature) == 0):
        raise TransportError(f"temperature must be one value (K), got {temperature!r}; see diffusion_tensors")
    return diffusion_tensors(network, [float(temperature)], attempt_frequency,
                             open_directions=open_directions)[0, 0]


def open_projector(network: RateNetwork) -> np.ndarray:
    """(3, 3) projector onto the directions the hops percolate in.

    From the corrected tensor with every conductance 1 (well conditioned): a direction is
    open when its eigenvalue exceeds ``PERCOLATION_TOL`` of the largest.
    """
    open_ = _corrected_tensors(network.n_sites, network.u, network.v, network.displacements,
                               np.ones((1, len(network.u))))[0]
    w, vec = np.linalg.eigh(open_)
    keep = vec[:, w > PERCOLATION_TOL * max(w.max(), 1e-300)]
    return keep @ keep.T


def percolation_dimension(network: RateNetwork) -> int:
    """Number of independent directions (0-3) in which the hops carry the ion through the crystal."""
    return int(round(np.trace(open_projector(network))))
