"""Bond-valence site energies (BVSE) of the migrating ion along its hop.

The energy landscape is bvlain's (Chekanova, Fedotov et al., https://github.com/dembart/BVlain):
its softBV parameters and potential, a Morse-type attraction to the ions of opposite charge and
a screened Coulomb repulsion from the ions of the same sign. bvlain evaluates it on a grid over
the whole cell; ase-em needs it only near one hop, so :class:`BondValenceLandscape` evaluates
the same two terms at the points asked for, over every periodic image of the host within
:data:`R_CUT` (pymatgen's compiled neighbour search, :func:`ase_em.hops.checks.points_near`).

Two landscapes per hop:

* ``fw``: bvlain's standard BVSE, every atom of the mobile element removed (the framework);
* ``host``: the hop's host as it is, i.e. ``fw`` plus the screened Coulomb repulsion from the
  other ions of the mobile element (a vacancy hop's neighbours).

:func:`bond_valence_profile` gives, per landscape, the energy at the two endpoints, the
maximum over the straight segment, and the bottleneck (minimax) energy of the best path
between the endpoints on a grid in a box around the segment: the relaxed path of a rigid host,
which the straight segment overestimates when it squeezes past host atoms.
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ase_em.errors import AseEmError
from ase_em.hops.checks import points_near
from ase_em.hops.hop import Hop

N_STRAIGHT = 21  # points on the straight segment, endpoints included
GRID = 0.25  # A: spacing of the path-search grid (0.15 A: same CV figures, 3x the cost)
TUBE = 1.5  # A: half-width of the box around the straight segment
R_CUT = 8.0  # A: interaction cutoff (bvlain: 10 A, but only the 100 nearest atoms)
ION_CHARGE = {"Li": 1, "Na": 1, "K": 1, "Rb": 1, "Cs": 1, "Ag": 1, "Cu": 1,
              "Mg": 2, "Ca": 2, "Sr": 2, "Ba": 2, "Zn": 2, "Al": 3}
ANION_CHARGE = {"O": -2, "S": -2, "Se": -2, "Te": -2, "F": -1, "Cl": -1, "Br": -1, "I": -1, "N": -3}
LANDSCAPES = ("fw", "host")


class BondValenceError(AseEmError):
    """bvlain has no usable parameters for a pair of the hop (missing, or Morse alpha <= 0)."""


_OXI_CACHE: dict[str, tuple[dict[str, float], str]] = {}
MAX_GUESS_ATOMS = 30  # atoms of the largest formula handed to pymatgen's guess (TRAIN's largest: 28)


def oxidation_states(hop: Hop) -> tuple[dict[str, float], str]:
    """Per-element oxidation states of the crystal the hop was cut from, and how they were found.

    The mobile ion takes its usual charge (:data:`ION_CHARGE`); the framework gets pymatgen's
    first ``Composition.oxi_state_guesses`` for the charge that balances the mobile ions, on
    the framework's reduced formula (small, so the guess is fast) times the least factor up to
    4 that makes that charge whole. When none does (one ion in a large host) the charge is
    rounded ("rounded charge"). A formula still larger than :data:`MAX_GUESS_ATOMS` atoms is
    guessed on its proportions at that size ("shrunk formula"; the guess's cost grows
    combinatorially with the atoms). Averaged (mixed-valence) cation states are kept: they only
    scale the Coulomb term. An anion whose guess is fractional gets its usual charge (bvlain's
    Morse parameters are tabulated per integer charge). With no guess: anions their usual
    charge, the other cations the rest in proportion to their highest common state ("fallback").

    The crystal counts the host's ions of the mobile element, the migrating ion, and (when the
    host holds other ions of its element: a vacancy cell) one more ion for the empty end site.

    Args:
        hop: the hop.

    Returns:
        ``({element: oxidation state}, source)``, source one of "guess", "guess, rounded
        charge", either with ", shrunk formula" and/or ", usual anion charge", or "fallback".
    """
    from pymatgen.core import Composition, Element

    count = Counter(hop.host_symbols)
    n_mobile = count.pop(hop.ion, 0)
    n_mobile += 2 if n_mobile else 1  # a vacancy cell: the ion and its empty end site
    q_ion = float(ION_CHARGE.get(hop.ion, 1))
    frame = Composition(dict(count))
    reduced, factor = frame.get_reduced_composition_and_factor()
    charge = -q_ion * n_mobile / factor
    key = f"{hop.ion} {reduced.formula} {charge:.6f}"
    if key in _OXI_CACHE:
        ox, source = _OXI_CACHE[key]
        return dict(ox), source
    k = next((k for k in (1, 2, 3, 4) if abs(k * charge - round(k * charge)) < 1e-6), None)
    source = "guess" if k else "guess, rounded charge"
    guessed, target = reduced * (k or 1), round((k or 1) * charge)
    if guessed.num_atoms > MAX_GUESS_ATOMS:
        # pymatgen's guess enumerates the states of every atom: a framework that does not reduce
        # (an ordering of a disordered crystal, Ti43 Al5 P72 O288) takes minutes. Guess on the same
        # proportions at most MAX_GUESS_ATOMS atoms large; the states are per element anyway.
        scale = MAX_GUESS_ATOMS / guessed.num_atoms
        guessed = Composition({el: max(1, round(n * scale)) for el, n in guessed.items()})
        target, source = round(charge * (k or 1) * scale), source + ", shrunk formula"
    guesses = guessed.oxi_state_guesses(target_charge=target, max_sites=None)
    if guesses:
        ox = {str(el): float(v) for el, v in guesses[0].items()}
        for el in ox:
            if el in ANION_CHARGE and ox[el] < 0 and abs(ox[el] - round(ox[el])) > 1e-6:
                ox[el], source = float(ANION_CHARGE[el]), source + ", usual anion charge"
    else:
        ox, source = {}, "fallback"
        neg = sum(ANION_CHARGE[str(el)] * n for el, n in frame.items() if str(el) in ANION_CHARGE)
        others = {str(el): n for el, n in frame.items() if str(el) not in ANION_CHARGE}
        common = {el: max(Element(el).common_oxidation_states or (1,)) for el in others}
        scale = (-neg - q_ion * n_mobile) / max(sum(common[el] * n for el, n in others.items()), 1e-9)
        for el in frame:
            s = str(el)
            ox[s] = float(ANION_CHARGE[s]) if s in ANION_CHARGE else common[s] * scale
    ox[hop.ion] = q_ion
    _OXI_CACHE[key] = (ox, source)
    return dict(ox), source


class BondValenceLandscape:
    """BVSE of a hop's migrating ion at any point near the hop, in both landscapes (eV).

    Args:
        hop: the hop; its host is the landscape (the migrating ion itself is not in it).

    Raises:
        BondValenceError: bvlain has no parameters for a pair (a KeyError in its table:
            nitrides, phosphides, ...) or a pair's Morse alpha is <= 0 (its table's entries
            for Mg-Se, Mg-Te, Mg-I, Ca-Te, Ca-Br, Ca-I, Sr-Te, Sr-Br, Sr-I).
    """

    def __init__(self, hop: Hop) -> None:
        """Oxidation states, bvlain's parameters per framework atom, and the host's arrays."""
        from bvlain import Lain
        from pymatgen.core import Lattice, Structure

        self.hop = hop
        ox, self.oxi_source = oxidation_states(hop)
        host = Structure(Lattice(hop.cell), list(hop.host_symbols), hop.host_positions,
                         coords_are_cartesian=True)
        host.add_oxidation_state_by_element(ox)
        q = int(round(ox[hop.ion]))
        lain = Lain(verbose=False)
        lain.read_structure(host, oxi_check=False)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # bvlain prints "Oops" before raising
                lain._get_params(f"{hop.ion}{q}+")  # its parameter lookup: fills the framework arrays
        except KeyError as exc:
            raise BondValenceError(f"{hop.name or 'hop'}: bvlain has no bond-valence parameters for "
                                   f"{hop.ion}{q}+ with one of {sorted(set(ox) - {hop.ion})} "
                                   f"(oxidation states {ox})") from exc
        fw = lain.framework
        bad = sorted({s for s, a in zip(fw.get_chemical_symbols(), fw.get_array("alpha")) if a <= 0})
        if bad:
            raise BondValenceError(f"{hop.name or 'hop'}: bvlain's Morse alpha <= 0 for {hop.ion}{q}+ - "
                                   f"{', '.join(bad)} (an unphysical entry of its table)")
        self.q, self.rc, self.n = float(lain.q_mi), float(lain.rc_mi), float(lain.n_mi)
        self.start, self.end = np.asarray(hop.start, float), np.asarray(hop.end, float)
        self.cell = np.asarray(hop.cell, float)
        par = {k: np.asarray(fw.get_array(k), float)
               for k in ("r_min", "alpha", "d0", "r_c", "n", "oxi_states")}
        xyz = np.asarray(fw.positions, float)
        # each framework atom feels one of the two terms: the Morse attraction (counter-ions:
        # bvlain gives the others NaN parameters) or the screened Coulomb repulsion (same sign as
        # the ion); the other ions of the mobile element repel in the host landscape only.
        # Evaluating each term on its own pairs gives bvlain's sums without its NaN and zero terms.
        morse = np.isfinite(par["r_min"]) & np.isfinite(par["alpha"]) & np.isfinite(par["d0"])
        coul = par["oxi_states"] * self.q > 0
        mobile = np.asarray([s == hop.ion for s in hop.host_symbols])
        mi_xyz = np.asarray(hop.host_positions, float)[mobile]
        self._sources = np.concatenate([xyz[morse], xyz[coul], mi_xyz])
        self._n_morse, self._n_fw = int(morse.sum()), int(morse.sum() + coul.sum())
        self._morse = tuple(par[k][morse] for k in ("r_min", "d0", "alpha"))
        self._coul = tuple(np.concatenate([par[k][coul], np.full(len(mi_xyz), v)])
                           for k, v in (("oxi_states", self.q), ("r_c", self.rc), ("n", self.n)))

    def energies(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """BVSE of the ion at ``points``.

        Args:
            points: (N, 3) Cartesian positions (A).

        Returns:
            ``(fw, host)``: two (N,) arrays (eV).
        """
        from bvlain.potentials import BVSEPotential as pot

        points = np.asarray(points, float)
        if not len(self._sources):
            return np.zeros(len(points)), np.zeros(len(points))
        row, col, _, r = points_near(self._sources, points, self.cell, R_CUT)
        r = np.maximum(r, 1e-3)
        m = col < self._n_morse
        c = ~m
        r_min, d0, alpha = (v[col[m]] for v in self._morse)
        q2, rc2, n2 = (v[col[c] - self._n_morse] for v in self._coul)
        with np.errstate(invalid="ignore", over="ignore"):
            morse = np.nan_to_num(pot.Morse(r[m], r_min, d0, alpha), nan=0.0)
            coul = np.nan_to_num(pot.Coulomb(r[c], self.q, q2, self.rc, rc2, self.n, n2), nan=0.0)
        is_fw = col[c] < self._n_fw  # framework cations; the rest are the other mobile ions
        n = len(points)
        fw = np.bincount(row[m], morse, minlength=n) + np.bincount(row[c][is_fw], coul[is_fw], minlength=n)
        extra = np.bincount(row[c][~is_fw], coul[~is_fw], minlength=n)
        return fw, fw + extra

    def tube(self, grid: float = GRID, tube: float = TUBE) -> tuple[np.ndarray, tuple, tuple, tuple]:
        """The grid of the box around the segment (2 steps beyond each end).

        Returns:
            points (M, 3) in A, the grid's shape, and the start and end nodes' indices.
        """
        d = self.end - self.start
        length = float(np.linalg.norm(d))
        e1 = d / length
        a = np.cross(e1, [1.0, 0.0, 0.0] if abs(e1[0]) < 0.9 else [0.0, 1.0, 0.0])
        e2 = a / np.linalg.norm(a)
        e3 = np.cross(e1, e2)
        m = int(np.ceil(length / grid))
        s = np.concatenate([-grid * np.arange(2, 0, -1), np.linspace(0, length, m + 1),
                            length + grid * np.arange(1, 3)])
        k = int(round(tube / grid))
        u = grid * np.arange(-k, k + 1)
        S, U, V = np.meshgrid(s, u, u, indexing="ij")
        pts = self.start + S[..., None] * e1 + U[..., None] * e2 + V[..., None] * e3
        return pts.reshape(-1, 3), S.shape, (2, k, k), (2 + m, k, k)


def bottleneck(energy: np.ndarray, a: tuple, b: tuple) -> float:
    """The lowest level at which nodes ``a`` and ``b`` of a 3D grid are face-connected.

    The minimax (bottleneck) energy of the best grid path from ``a`` to ``b``: bisection over
    the grid's energies, each level's connected regions from ``scipy.ndimage.label``.

    Args:
        energy: 3D array of energies.
        a: index tuple of one node.
        b: index tuple of the other.

    Returns:
        The bottleneck energy (same unit as ``energy``).
    """
    from scipy.ndimage import label

    levels = np.unique(energy[energy >= max(energy[a], energy[b])])
    lo, hi = 0, len(levels) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        lab, _ = label(energy <= levels[mid])
        if lab[a] == lab[b]:
            hi = mid
        else:
            lo = mid + 1
    return float(levels[lo])


@dataclass(frozen=True)
class BondValenceProfile:
    """BVSE figures of one hop (eV), per landscape ``fw`` and ``host``.

    Attributes:
        e_start, e_end: energy at the two endpoints, ``{landscape: eV}``.
        e_straight: maximum over :data:`N_STRAIGHT` points of the straight segment.
        e_path: bottleneck energy of the best path on the grid around the segment.
        host_line: (N_STRAIGHT,) the ``host`` landscape along the straight segment.
        oxi_source: how the oxidation states were found (:func:`oxidation_states`).
    """

    e_start: dict[str, float]
    e_end: dict[str, float]
    e_straight: dict[str, float]
    e_path: dict[str, float]
    host_line: np.ndarray
    oxi_source: str

    def barriers(self) -> dict[str, float]:
        """The twelve descriptors of :data:`BARRIER_NAMES`, per landscape (eV).

        ``straight_barrier`` and ``path_barrier`` are measured from the start site;
        ``*_hi`` from the higher of the two sites; ``end_minus_start`` is the sites'
        asymmetry; ``e_start`` the start site's energy.
        """
        out = {}
        for land in LANDSCAPES:
            s, e = self.e_start[land], self.e_end[land]
            out[f"{land}_straight_barrier"] = self.e_straight[land] - s
            out[f"{land}_path_barrier"] = self.e_path[land] - s
            out[f"{land}_straight_barrier_hi"] = self.e_straight[land] - max(s, e)
            out[f"{land}_path_barrier_hi"] = self.e_path[land] - max(s, e)
            out[f"{land}_end_minus_start"] = e - s
            out[f"{land}_e_start"] = s
        return out


BARRIER_NAMES = tuple(
    f"{land}_{k}" for land in LANDSCAPES for k in (
        "straight_barrier", "path_barrier", "straight_barrier_hi", "path_barrier_hi",
        "end_minus_start", "e_start",
    )
)


def bond_valence_profile(hop: Hop, *, grid: float = GRID, tube: float = TUBE) -> BondValenceProfile:
    """The BVSE of the hop's ion along its straight segment and its best path on a grid.

    Args:
        hop: the hop.
        grid: spacing of the path-search grid (A).
        tube: half-width of the box around the segment (A).

    Returns:
        The profile.

    Raises:
        BondValenceError: no usable bvlain parameters for the hop (see
            :class:`BondValenceLandscape`).
    """
    land = BondValenceLandscape(hop)
    line = land.start + np.linspace(0, 1, N_STRAIGHT)[:, None] * (land.end - land.start)
    pts, shape, a, b = land.tube(grid, tube)
    fw_line, host_line = land.energies(line)
    fw_grid, host_grid = land.energies(pts)
    lines = {"fw": fw_line, "host": host_line}
    grids = {"fw": fw_grid.reshape(shape), "host": host_grid.reshape(shape)}
    return BondValenceProfile(
        e_start={k: float(v[0]) for k, v in lines.items()},
        e_end={k: float(v[-1]) for k, v in lines.items()},
        e_straight={k: float(v.max()) for k, v in lines.items()},
        e_path={k: bottleneck(grids[k], a, b) for k in LANDSCAPES},
        host_line=host_line,
        oxi_source=land.oxi_source,
    )
