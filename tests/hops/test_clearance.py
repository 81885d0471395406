"""The whole straight path of a hop against every host atom (ase_em.hops.clearance.path_clearance)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from ase_em.errors import BlockedPathError, ImplausibleHopError
from ase_em.hops import clearance
from ase_em.hops.hop import Hop

DATA = Path(__file__).resolve().parents[1] / "data"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _hop(start, end, host_symbols, host_positions, cell, ion="Li") -> Hop:
    return Hop(ion, np.array(start, float), np.array(end, float), tuple(host_symbols),
               np.array(host_positions, float), np.array(cell, float))


def test_closest_approach_in_closed_form():
    # Li hops 4 A along x; an O sits 0.9 A off the midpoint, an F far away
    hop = _hop([3, 5, 5], [7, 5, 5], ["F", "O"], [[1, 1, 1], [5, 5.9, 5]], np.eye(3) * 10)
    c = clearance.path_clearance(hop)
    assert c.distance == pytest.approx(0.9)
    assert c.host_index == 1 and c.host_symbol == "O"
    assert c.fraction == pytest.approx(0.5)
    assert c.bond == pytest.approx(np.hypot(2.0, 0.9))  # O seen from either endpoint
    assert c.ratio == pytest.approx(0.9 / np.hypot(2.0, 0.9))
    assert not c.blocked and c.grey  # 0.41: inside the grey zone


def test_periodic_images_of_host_atoms_count():
    # the hop crosses the cell boundary; the O image at x = 10.6 lies 0.3 A off its path
    hop = _hop([9, 5, 5], [12, 5, 5], ["O", "F"], [[0.6, 5.3, 5], [5, 1, 1]], np.eye(3) * 10)
    c = clearance.path_clearance(hop)
    assert c.distance == pytest.approx(0.3)
    assert c.fraction == pytest.approx(1.6 / 3)


def test_matches_a_dense_sampling_of_the_path():
    from pymatgen.core import Lattice

    hop = Hop.from_endpoints(EXAMPLES / "LiFePO4" / "initial.vasp", EXAMPLES / "LiFePO4" / "final.vasp")
    lat = Lattice(hop.cell)
    t = np.linspace(0, 1, 4001)[:, None]
    points = lat.get_fractional_coords(hop.start + t * (hop.end - hop.start))  # (4001, 3)
    dist = lat.get_all_distances(points, lat.get_fractional_coords(hop.host_positions))  # (4001, M)
    c = clearance.path_clearance(hop)
    assert c.distance == pytest.approx(dist.min(), abs=1e-3)
    assert c.host_index == int(np.unravel_index(np.argmin(dist), dist.shape)[1])
    assert c.bond == pytest.approx(min(dist[0].min(), dist[-1].min()), abs=1e-9)
    assert c.ratio == pytest.approx(0.690, abs=1e-3)  # the olivine b-channel hop: 1.42 A from an O
    assert not c.grey and not c.blocked


def test_a_path_through_a_host_atom_between_the_images_is_blocked():
    # 4 A hop; an O atom at 3/8 of it: between images 1 and 2, 0.5 A from either
    hop_args = (["O", "F"], [[4.5, 5, 5], [5, 1, 1]], np.eye(3) * 12)
    with pytest.raises(BlockedPathError, match=r"passes 0.000 A from host atom 0 \(O\) at 38% of the hop"):
        _hop([3, 5, 5], [7, 5, 5], *hop_args)


def test_a_hop_through_an_occupied_site_of_its_own_element_is_blocked():
    # Li passes 0.6 A from another Li (0.29 of the 2.06 A bond): two hops, not one
    with pytest.raises(BlockedPathError, match=r"host atom 0 \(Li\), 0.2\d of its .* own element"):
        _hop([2, 5, 5], [8, 5, 5], ["Li", "O"], [[5, 5.6, 5], [2, 7.06, 5]], np.eye(3) * 12)
    assert issubclass(BlockedPathError, ImplausibleHopError)  # network sets em = inf for these


@pytest.fixture(scope="module")
def train_extremes() -> dict:
    """TRAIN records at the edges of the distributions (copied from em619 band5_train.json)."""
    return {r["sys_name"]: r for r in json.loads((DATA / "train_path_extremes.json").read_text())}


def test_thresholds_keep_every_train_extreme_but_the_broken_ones(train_extremes):
    # the smallest path ratio TRAIN keeps: 0.058 A from a Ru atom (DFT-NEB curves around it)
    c = clearance.path_clearance(Hop.from_record(train_extremes["RuO2_Li_1"]))
    assert c.ratio == pytest.approx(0.032, abs=5e-4) and not c.blocked and c.grey
    # the smallest ratio to an atom of the ion's own element: 0.656
    c = clearance.path_clearance(Hop.from_record(train_extremes["Li4P2O7"]))
    assert c.same_species_ratio == pytest.approx(0.656, abs=5e-4) and not c.blocked
    # the closest pair relative to covalent radii: 0.624 of the sum
    Hop.from_record(train_extremes["O-FePO4_K"])
    # left out of training: a path exactly through a Ru atom; a duplicated P atom
    with pytest.raises(BlockedPathError, match=r"0.000 A from host atom \d+ \(Ru\)"):
        Hop.from_record(train_extremes["LiRuO2_1"])
    duplicated = r"host atom \d+ \(\w+\) and host atom \d+ \(\w+\) are 0.014 A"
    with pytest.raises(ImplausibleHopError, match=duplicated):
        Hop.from_record(train_extremes["Na4MnAlP3O12_1"])


def _hops_by_length(structure, ion, max_distance):
    from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph

    mg = MigrationGraph.with_distance(structure, ion, max_distance=max_distance)
    return sorted((d["hop"] for d in mg.unique_hops.values()), key=lambda h: h.length)


def test_na2o_face_diagonal_hop_past_an_anion_is_in_the_grey_zone():
    from pymatgen.core import Lattice, Structure

    from ase_em.hops.migration_hop import hop_from_migration_hop

    na2o = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.55), ["Na", "O"], [[0.25] * 3, [0, 0, 0]])
    near, diagonal = _hops_by_length(na2o.get_primitive_structure(), "Na", 4.0)
    c_near = clearance.path_clearance(hop_from_migration_hop(near))
    c_diag = clearance.path_clearance(hop_from_migration_hop(diagonal))
    assert diagonal.length == pytest.approx(3.924, abs=1e-3)
    assert c_diag.host_symbol == "O" and c_diag.distance == pytest.approx(5.55 / 4, abs=1e-3)  # 1.39 A
    assert c_diag.ratio == pytest.approx(0.578, abs=2e-3) and c_diag.grey
    assert c_near.ratio == pytest.approx(0.816, abs=2e-3) and not c_near.grey and not c_near.blocked


def test_licoo2_long_hop_through_a_li_site_is_blocked():
    from pymatgen.core import Structure

    from ase_em.hops.migration_hop import hop_from_migration_hop

    s = Structure.from_file(EXAMPLES / "structures" / "LiCoO2.cif")
    long = [h for h in _hops_by_length(s, "Li", 8.5) if abs(h.length - 8.448) < 2e-3]
    assert long
    with pytest.raises(BlockedPathError, match=r"passes 0.0\d\d A from host atom \d+ \(Li\)"):
        hop_from_migration_hop(long[0])


def test_network_gives_blocked_hops_inf_with_the_reason(tiny_predictor):
    import math

    from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph
    from pymatgen.core import Lattice, Structure

    from ase_em.crystals.labelling import label_migration_graph

    # rock-salt LiF: the 2.85 A hop is clear; the 4.03 A hop along a cube edge runs through F
    lif = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.03), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    mg = MigrationGraph.with_distance(lif.get_primitive_structure(), "Li", max_distance=4.1)
    label_migration_graph(mg, tiny_predictor)
    by_length = sorted(mg.unique_hops.values(), key=lambda d: d["hop"].length)
    assert [round(d["hop"].length, 2) for d in by_length] == [2.85, 4.03]
    assert math.isfinite(by_length[0]["em"])
    assert math.isinf(by_length[1]["em"])
    assert "(F)" in by_length[1]["em_blocked"] and "runs through an atom" in by_length[1]["em_blocked"]


def test_path_check_is_cheap():
    import time

    hop = Hop.from_endpoints(EXAMPLES / "LiFePO4" / "initial.vasp", EXAMPLES / "LiFePO4" / "final.vasp")
    t0 = time.perf_counter()
    for _ in range(20):
        clearance.path_clearance(hop)
    assert (time.perf_counter() - t0) / 20 < 0.05  # s per hop (about 2 ms measured)


def test_every_reader_path_goes_through_the_check():
    # a band5 Atoms whose straight path crosses an O (a record of the same kind is blocked too)
    positions = [[3 + k, 5, 5] for k in range(5)] + [[4.5, 5, 5], [9, 9, 9]]
    band = Atoms("Li5OF", positions=positions, cell=np.eye(3) * 12, pbc=True)
    with pytest.raises(BlockedPathError):
        Hop.from_band(band)


def test_a_hop_measures_its_path_once_for_the_check_and_the_grey_flag(monkeypatch):
    """The check when the hop is made and the domain's grey-zone flag read one measurement."""
    from ase_em.model.domain import _path_grey_zone

    calls = []
    measure = clearance.path_clearance
    monkeypatch.setattr(clearance, "path_clearance", lambda h: calls.append(h) or measure(h))
    hop = _hop([3, 5, 5], [7, 5, 5], ["F", "O"], [[1, 1, 1], [5, 5.9, 5]], np.eye(3) * 10)
    assert len(calls) == 1  # made and checked
    reason = _path_grey_zone(hop)
    assert len(calls) == 1 and hop.path_clearance.distance == pytest.approx(0.9)
    assert reason is not None and "0.90 A from host atom 1 (O)" in reason


def _every_image_clearance(hop) -> tuple:
    """The clearance over every host atom and every lattice shift (the search before it was
    narrowed to the images near the path): ratio, distance, atom, fraction, bond, and the
    ratio and atom of the ion's own element."""
    import itertools
    import math

    host, cell = np.asarray(hop.host_positions, float), np.asarray(hop.cell, float)
    d = hop.end - hop.start
    mid, half = 0.5 * (hop.start + hop.end), 0.5 * float(np.linalg.norm(d))
    frac = np.linalg.solve(cell.T, (host - mid).T).T
    frac -= np.round(frac)
    faces = np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]])
    widths = abs(float(np.linalg.det(cell))) / np.linalg.norm(faces, axis=1)
    reach = 6.0
    while True:
        n = np.ceil((half + reach) / widths).astype(int)
        shifts = np.array(list(itertools.product(*(range(-k, k + 1) for k in n))), float)
        rel = (frac[:, None, :] + shifts[None, :, :]) @ cell
        t = np.clip((rel @ d) / float(d @ d) + 0.5, 0.0, 1.0)
        dist = np.linalg.norm(rel - (t[..., None] - 0.5) * d, axis=2)
        bond = min(float(np.linalg.norm(rel + 0.5 * d, axis=2).min()),
                   float(np.linalg.norm(rel - 0.5 * d, axis=2).min()))
        if bond <= reach:
            break
        reach *= 2
    per_atom = dist.min(axis=1)
    m = int(np.argmin(per_atom))
    k = int(np.argmin(dist[m]))
    same = np.flatnonzero(np.asarray(hop.host_symbols) == hop.ion)
    s_ratio, s_index = math.inf, -1
    if same.size and bond > 0:
        s_index = int(same[np.argmin(per_atom[same])])
        s_ratio = float(per_atom[s_index]) / bond
    return (float(per_atom[m]) / bond, float(per_atom[m]), m, float(t[m, k]), bond, s_ratio, s_index)


@pytest.mark.parametrize("seed", range(6))
def test_the_images_near_the_path_give_every_images_clearance_bit_for_bit(seed):
    """Random hosts in small skewed cells (many lattice shifts), the ion's own element near the
    path or only far from it (the case that looks at all its images), atoms at equal
    distances (the first one wins, as argmin reads them)."""
    rng = np.random.default_rng(seed)
    a = 3.2 + 4 * rng.random()
    cell = np.array([[a, 0, 0], [0.7, a * 0.9, 0], [0.4, -0.6, a * 1.3]])
    n = int(rng.integers(4, 30))
    host = rng.random((n, 3)) @ cell
    symbols = list(rng.choice(["O", "S", "La", "Li"], n))
    if seed % 2:  # the only Li of the host sits far from the path: every image of it is looked at
        symbols = [s if s != "Li" else "O" for s in symbols]
        symbols[0] = "Li"
        host[0] = np.array([0.5, 0.5, 0.5]) @ cell + 0.2
    start = rng.random(3) @ cell
    end = start + rng.normal(size=3) * 1.5
    if seed == 4:  # two atoms mirrored about the path: the same distance, the first is named
        host[1], host[2] = start + [0, 1.1, 0], start + [0, -1.1, 0]
    from types import SimpleNamespace  # the arrays the clearance reads, without a Hop's checks

    hop = SimpleNamespace(ion="Li", start=start, end=end, host_symbols=tuple(symbols), host_positions=host,
                          cell=cell, name=None)
    c = clearance.path_clearance(hop)
    got = (c.ratio, c.distance, c.host_index, c.fraction, c.bond, c.same_species_ratio, c.same_species_index)
    assert got == _every_image_clearance(hop)


def test_an_ion_of_the_host_far_from_the_path_is_measured_over_all_its_images():
    """The host's only Li is 12 A from the path, beyond the search's 6 A reach: its ratio is
    still the exact one (measured over all its images)."""
    from types import SimpleNamespace

    hop = SimpleNamespace(ion="Li", start=np.array([2.0, 2.0, 2.0]), end=np.array([5.0, 2.0, 2.0]),
                          host_symbols=("O", "O", "Li"),
                          host_positions=np.array([[3.5, 3.8, 2.0], [1.0, 0.5, 3.0], [11.0, 10.0, 10.0]]),
                          cell=np.eye(3) * 16.0, name=None)
    c = clearance.path_clearance(hop)
    assert c.same_species_index == 2 and c.same_species_ratio > 5.0
    got = (c.ratio, c.distance, c.host_index, c.fraction, c.bond, c.same_species_ratio, c.same_species_index)
    assert got == _every_image_clearance(hop)
