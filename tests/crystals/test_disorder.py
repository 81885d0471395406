"""Disordered crystals: orderings, candidate ion sites, aggregation over orderings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from ase_em.cli.main import main
from ase_em.crystals.disorder import ion_sites, sample_orderings, skeleton
from ase_em.crystals.disordered import disordered_network
from ase_em.errors import DisorderError, MissingIonError


def perovskite_llto() -> Structure:
    """Li-La-Ti-O perovskite (Pm-3m, a = 3.87 A): A site Li 0.33 / La 0.56 / vacant 0.11."""
    return Structure.from_spacegroup(
        "Pm-3m",
        Lattice.cubic(3.87),
        [{"Li": 0.33, "La": 0.56}, "Ti", "O"],
        [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0]],
    )


def split_li_chloride() -> Structure:
    """A rock-salt-like chloride whose Li site is split into two positions 0.59 A apart, 0.5 each.

    Filling both (each site's majority species) would put two Li 0.59 A apart.
    """
    return Structure(
        Lattice.cubic(4.2),
        [{"Li": 0.5}, {"Li": 0.5}, "Cl"],
        [[0.43, 0.5, 0.5], [0.57, 0.5, 0.5], [0, 0, 0]],
    )


def li_poor_garnet_like() -> Structure:
    """A Li site at occupancy 0.3 (rounding each site's occupancy removes every Li) and a mixed Ge/Ti site."""
    return Structure(
        Lattice.cubic(4.1),
        [{"Li": 0.3}, {"Ge": 0.5, "Ti": 0.5}, "O", "O", "O"],
        [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]],
    )


def counts(s: Structure) -> dict[str, int]:
    return {el.symbol: int(round(n)) for el, n in s.composition.items()}


def min_distance(s: Structure, symbol: str) -> float:
    idx = [i for i, site in enumerate(s) if site.specie.symbol == symbol]
    d = s.distance_matrix[np.ix_(idx, idx)]
    return float(d[~np.eye(len(idx), dtype=bool)].min())


def test_orderings_keep_the_average_composition():
    s = perovskite_llto()
    m = np.diag([4, 4, 4])  # 64 A sites: Li 0.33 * 64 = 21.1, La 0.56 * 64 = 35.8
    for o in sample_orderings(s, m, n=3, seed=1):
        assert o.structure.is_ordered
        assert counts(o.structure) == {"Li": 21, "La": 36, "Ti": 64, "O": 192}
        assert o.missing == {}


def test_low_occupancy_ions_are_not_rounded_away():
    s = li_poor_garnet_like()
    m = np.diag([3, 3, 3])  # 27 cells: Li 0.3 * 27 = 8.1 -> 8; Ge/Ti 13.5 each -> 14 + 13
    for o in sample_orderings(s, m, n=3, seed=0):
        c = counts(o.structure)
        assert c["Li"] == 8
        assert {c["Ge"], c["Ti"]} == {13, 14}
        assert c["O"] == 81


def test_split_sites_are_never_both_filled():
    s = split_li_chloride()
    assert min_distance(Structure(s.lattice, ["Li", "Li", "Cl"], s.frac_coords), "Li") < 0.6
    m = np.diag([3, 3, 3])
    for o in sample_orderings(s, m, n=5, seed=0):
        assert counts(o.structure)["Li"] == 27  # one Li per split pair, none lost
        assert min_distance(o.structure, "Li") > 1.5
        assert o.missing == {}


def test_same_seed_same_orderings_other_seed_other_ones():
    s = perovskite_llto()
    m = np.diag([3, 3, 3])
    a = sample_orderings(s, m, n=2, seed=7)
    b = sample_orderings(s, m, n=2, seed=7)
    c = sample_orderings(s, m, n=2, seed=8)
    assert [o.structure for o in a] == [o.structure for o in b]
    assert a[1].structure == c[0].structure  # ordering k uses seed + k
    assert a[0].structure != a[1].structure


def test_supercell_cap_is_one_clear_error():
    with pytest.raises(DisorderError, match="more than the cap of 100"):
        sample_orderings(perovskite_llto(), np.diag([3, 3, 3]), n=1, max_atoms=100)


def test_candidate_sites_merge_split_sites_and_skip_host_vacancies():
    s = split_li_chloride()
    s.replace(2, {"Cl": 0.9})  # a partly empty host site is not an ion site
    sites = ion_sites(s, "Li")
    assert len(sites) == 1
    assert np.allclose(sites.frac_coords[0], [0.5, 0.5, 0.5])
    assert sites.site_properties["occupancy"] == [1.0]
    sk = skeleton(s, "Li")
    assert sk.is_ordered and counts(sk) == {"Li": 1, "Cl": 1}


def test_mixed_ion_site_is_a_candidate_site():
    sk = skeleton(perovskite_llto(), "Li")
    assert counts(sk) == {"Li": 1, "Ti": 1, "O": 3}  # the Li/La A site is the ion's site


@pytest.fixture(scope="module")
def llto_network(tiny_predictor):
    return disordered_network(perovskite_llto(), "Li", predictor=tiny_predictor, n_orderings=3,
                              max_distance=4.0, seed=0)


def test_disordered_network_aggregates_over_orderings(llto_network):
    net = llto_network
    assert net.n_orderings == 3 and net.seed == 0
    assert len(net.hops) == 1  # A site to A site, 3.87 A
    hop = net.hops[0]
    assert hop.length == pytest.approx(3.87)
    assert hop.multiplicity == 3
    assert hop.n_orderings == 3 and len(hop.values) == 3
    values = np.array(hop.values)
    assert len(set(hop.values)) == 3  # the orderings give different local environments
    assert hop.em == pytest.approx(float(np.median(values)))
    assert hop.em_spread == pytest.approx(float(np.std(values, ddof=1)))
    assert hop.em_std == pytest.approx(math.hypot(hop.model_std, hop.em_spread))
    # the A sites form a simple cubic net: percolates in 3D at each ordering's one barrier
    for d in (1, 2, 3):
        assert net.percolation[d] == pytest.approx(hop.em)
        assert net.percolation_spread[d] == pytest.approx(hop.em_spread)
    summary = net.to_dict()
    assert summary["disorder"]["n_orderings"] == 3
    assert "median" in summary["disorder"]["aggregate"]
    # the graph carries the median on every edge, for get_path and plots
    ems = {d["em"] for _, _, d in net.graph.m_graph.graph.edges(data=True)}
    assert ems == {hop.em}


def test_disordered_network_is_reproducible(llto_network, tiny_predictor):
    again = disordered_network(perovskite_llto(), "Li", predictor=tiny_predictor, n_orderings=3,
                               max_distance=4.0, seed=0)
    assert again.hops[0].values == llto_network.hops[0].values


def test_orderings_are_drawn_until_the_barriers_settle(llto_network, tiny_predictor):
    """With a tolerance the orderings stop once the standard error of each hop's mean barrier is
    at most it (after two): the first orderings are those of the fixed count."""
    first, second, third = llto_network.hops[0].values
    se_two = abs(first - second) / 2  # std(ddof=1) / sqrt(2) of two values
    kw = dict(predictor=tiny_predictor, n_orderings=3, max_distance=4.0, seed=0)
    settled = disordered_network(perovskite_llto(), "Li", ordering_tolerance=se_two * 1.01, **kw)
    assert settled.n_orderings == 2 and settled.ordering_tolerance == pytest.approx(se_two * 1.01)
    hop = settled.hops[0]
    assert hop.values == (first, second) and hop.n_orderings == 2
    assert hop.em == pytest.approx((first + second) / 2)
    assert len(settled.per_ordering) == 2
    assert settled.percolation[3] == pytest.approx(hop.em)
    assert settled.to_dict()["disorder"]["ordering_tolerance"] == pytest.approx(se_two * 1.01)
    assert settled.settled is True and llto_network.settled is None
    unsettled = disordered_network(perovskite_llto(), "Li", ordering_tolerance=se_two * 0.99, **kw)
    assert unsettled.n_orderings == 3 and unsettled.hops[0].values == (first, second, third)
    # the third ordering settles them or not; the summary says which
    se_three = float(np.std([first, second, third], ddof=1)) / math.sqrt(3)
    assert unsettled.settled is (se_three <= se_two * 0.99)
    assert unsettled.percolation == llto_network.percolation


def test_barriers_settled_needs_two_orderings_and_agreement():
    from ase_em.crystals.disordered import barriers_settled

    inf = math.inf
    assert barriers_settled([[1.0, 1.08]], 0.05)  # standard error 0.04
    assert not barriers_settled([[1.0, 1.2]], 0.05)  # 0.10
    assert not barriers_settled([[1.0]], 10.0)  # one ordering: no spread to judge
    assert barriers_settled([[inf, inf], []], 0.0)  # blocked in both; a hop with no band yet
    assert not barriers_settled([[1.0, inf]], 10.0)  # blocked in one ordering, open in the other
    assert not barriers_settled([[1.0, 1.0], [0.5, 0.9]], 0.1)  # every hop must settle


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "0.05", True])
def test_ordering_tolerance_must_be_a_non_negative_number(bad):
    from ase_em.config import NetworkOptions
    from ase_em.errors import AseEmError

    with pytest.raises(AseEmError, match="ordering_tolerance must be a number of eV >= 0"):
        NetworkOptions.build(ordering_tolerance=bad)


def test_structure_without_the_ion_is_refused(tiny_predictor):
    s = perovskite_llto()
    s.replace_species({"Li": "Na"})
    with pytest.raises(MissingIonError, match="no Li in the structure"):
        disordered_network(s, "Li", predictor=tiny_predictor, n_orderings=1)


LLTO_CIF = Path(__file__).resolve().parents[1] / "data" / "llto_disordered.cif"


def test_network_cli_takes_a_disordered_cif(capsys, tiny_model_dir):
    """The CIF of perovskite_llto() (P1, the Li/La A site as two partial entries)."""
    argv = ["network", LLTO_CIF, "--ion", "Li", "--max-distance", "4", "--orderings", "3",
            "--model", tiny_model_dir]
    assert main([str(a) for a in argv]) == 0
    out = capsys.readouterr().out
    assert "disordered: Em is the median over 3 orderings" in out
    row = next(line.split() for line in out.splitlines() if line.split()[:2] == ["0", "3.870"])
    em = float(row[2])
    assert f"percolation barrier (eV): 1D {em:.3f}  2D {em:.3f}  3D {em:.3f}" in out
    assert "percolation spread over orderings (eV): 1D" in out

    assert main([str(a) for a in [*argv, "--json"]]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["disorder"]["n_orderings"] == 3
    assert data["disorder"]["method"].startswith("random occupation sampling")
    hop = data["hops"][0]
    values = data["disorder"]["hops"][0]["values"]
    assert len(values) == 3 and hop["em"] == pytest.approx(float(np.median(values)))
    assert data["percolation"]["3D"] == pytest.approx(hop["em"])


def test_predict_still_refuses_a_disordered_cif(capsys, tiny_model_dir):
    code = main(["predict", str(LLTO_CIF), str(LLTO_CIF), "--model", str(tiny_model_dir)])
    assert code == 2
    assert "partial occupanc" in capsys.readouterr().err


def test_with_em_predictor_takes_a_disordered_structure(tiny_predictor, llto_network):
    from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph

    import ase_em.crystals.labelling  # noqa: F401  (attaches with_em_predictor)

    mg = MigrationGraph.with_em_predictor(perovskite_llto(), "Li", 4.0, tiny_predictor, n_orderings=3)
    ems = {d["em"] for _, _, d in mg.m_graph.graph.edges(data=True)}
    assert ems == {llto_network.hops[0].em}  # same seed, same orderings, same median


P2_CIF = Path(__file__).resolve().parents[1] / "data" / "Na07CoO2_P2.cif"


def test_sites_closer_than_the_overlap_limit_are_one_choice():
    """P2-Na0.7CoO2: Na on 2b (0.25) and 2d (0.45), 1.636 A apart (beyond the 1.5 A split-site
    distance, but below 0.5 of the Na-Na covalent sum, 1.66 A): never both filled."""
    from ase_em.hops.checks import overlap_limit

    s = Structure.from_file(P2_CIF)
    assert overlap_limit("Na", "Na") == pytest.approx(1.66)
    na = [i for i, site in enumerate(s) if "Na" in site.species.as_dict()]
    d = s.distance_matrix[np.ix_(na, na)][~np.eye(len(na), dtype=bool)]
    assert d.min() == pytest.approx(1.636, abs=1e-3)
    for o in sample_orderings(s, np.diag([3, 3, 1]), n=5, seed=0):
        assert min_distance(o.structure, "Na") > 1.66
        placed = counts(o.structure)["Na"]
        # 18 2b sites at 0.25 and 18 2d sites at 0.45: 4 or 5 and 8, each placed or said missing
        assert placed + o.missing.get("Na", 0) in (12, 13)


def test_p2_network_has_no_overlap_blocked_hop(tiny_predictor):
    net = disordered_network(P2_CIF, "Na", predictor=tiny_predictor, n_orderings=2, include_flagged=True)
    assert [h.blocked for h in net.hops] == [None] * len(net.hops)
    assert 1.636 == pytest.approx(min(h.length for h in net.hops), abs=1e-3)
    assert net.percolation[2] is not None and net.percolation[3] is None  # layered: 2D, not 3D


@pytest.mark.parametrize("symbols", [["O", "Li", "La", "Ti", "O", "Li", "Zr", "La", "O", "Ta"],
                                     ["Cl", "Li", "Ar", "Li", "Cl"]])  # Ar: no electronegativity
def test_orderings_are_sorted_as_pymatgen_sorts_sites(symbols):
    from ase_em.crystals.disorder import Ordering, _sorted_sites

    rng = np.random.default_rng(3)
    species = [symbols[i] for i in rng.integers(0, len(symbols), 40)]
    coords = rng.random((40, 3))
    lattice = Lattice.from_parameters(9.0, 8.5, 10.2, 81.0, 97.0, 101.0)
    ours = Ordering(lattice, *_sorted_sites(lattice, species, coords), seed=0, missing={})
    theirs = Structure(lattice, species, coords).get_sorted_structure()
    assert list(ours.species) == [s.species_string for s in theirs]
    assert np.array_equal(ours.frac_coords, theirs.frac_coords)
    # the arrays the hop network reads are those of the structure, bit for bit
    assert np.array_equal(ours.cart_coords, theirs.cart_coords)
    assert ours.structure == theirs and ours.structure is ours.structure  # built once, when asked


@pytest.mark.parametrize("matrix", [[[2, 0, 0], [0, 2, 0], [0, 0, 3]], [[1, 1, 0], [-1, 1, 0], [0, 0, 2]]])
def test_supercell_arrays_are_make_supercells_sites_bit_for_bit(matrix):
    """The orderings' supercell on arrays: pymatgen's sites, lattice and order, including a site
    at -1e-17 (folded to 1.0 once, then to 0.0 by make_supercell's second fold) and sites
    made from Cartesian coordinates."""
    from pymatgen.core import Lattice, Structure

    from ase_em.crystals.disorder import _supercell_arrays

    lattice = Lattice([[5.1, 0.0, 0.0], [0.3, 4.7, 0.0], [0.2, -0.4, 6.3]])
    frac = np.array([[0.5, 0.5, -1e-17], [0.0, 0.0, 0.5], [0.25, 0.75, 0.1], [0.9, 0.1, 0.6]])
    species = [{"Li": 0.5, "Na": 0.25}, "O", {"La": 0.5}, "Zr"]
    made = {"fractional": Structure(lattice, species, frac),
            "cartesian": Structure(lattice, species, frac @ lattice.matrix, coords_are_cartesian=True)}
    for structure in made.values():
        sc = structure.copy()
        sc.make_supercell(matrix)
        sc_lattice, sc_frac, sc_cart, prim = _supercell_arrays(structure, np.array(matrix))
        assert np.array_equal(sc_lattice.matrix, sc.lattice.matrix)
        assert np.array_equal(sc_frac, sc.frac_coords)
        assert np.array_equal(sc_cart, sc.cart_coords)
        assert [structure[p].species for p in prim] == [site.species for site in sc]
    assert (sc_frac == 0.0).any() and not (sc_frac == 1.0).any()
