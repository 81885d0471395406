"""The model's domain: flags on every result, the shipped domain file, batch errors, networks."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from ase_em.errors import AseEmError, NoHopError
from ase_em.hops.hop import Hop
from ase_em.model import domain as dm
from ase_em.model.weights import resolve

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def shipped_domain() -> dm.ModelDomain:
    domain = dm.ModelDomain.load(resolve(None))
    assert domain is not None
    return domain


def vacancy_hop(crystal: Atoms, ion: str) -> tuple[Atoms, Atoms]:
    """Endpoints of a vacancy hop: remove one ``ion``, its nearest ``ion`` neighbour hops in."""
    sites = [i for i, s in enumerate(crystal.get_chemical_symbols()) if s == ion]
    vacancy = sites[0]
    d = crystal.get_distances(vacancy, sites[1:], mic=True)
    mover = sites[1:][int(np.argmin(d))]
    initial = crystal.copy()
    del initial[vacancy]
    final = initial.copy()
    step = crystal.get_distance(mover, vacancy, mic=True, vector=True)
    final.positions[mover - 1] = crystal.positions[mover] + step
    return initial, final


def lone_atom_endpoints() -> tuple[Atoms, Atoms]:
    """A lone Li in a 3.5 A cubic cell moved 1.0 A (no host at all)."""
    a = Atoms("Li", positions=[[0.5, 0.5, 0.5]], cell=np.eye(3) * 3.5, pbc=True)
    b = a.copy()
    b.positions[0] += [1.0, 0.0, 0.0]
    return a, b


# ---------------------------------------------------------------------- the shipped file


def test_shipped_domain_file_is_consistent(shipped_domain):
    d = shipped_domain
    rec = d.record
    n = rec["data"]["n"]
    assert sum(d.ions.values()) == n == len(d.train) == 555
    raw = d.train * d.std + d.mean  # (N, D) back to raw descriptors
    assert d.length_range == pytest.approx((raw[:, 0].min(), raw[:, 0].max()), abs=1e-5)
    assert d.length_range[1] == pytest.approx(8.950, abs=1e-3)  # TRAIN's longest hop
    # the threshold is the stated percentile of TRAIN's leave-one-out distances
    loo = dm.knn_distance(d.train, d.train, d.k, exclude_self=True)
    pct = rec["descriptor"]["threshold_percentile"]
    assert d.threshold == pytest.approx(np.percentile(loo, pct), rel=1e-4)
    assert np.mean(loo > d.threshold) == pytest.approx(1 - pct / 100, abs=0.01)
    # the CV table that justified it: the chosen row flags hops with a larger out-of-fold error
    row = next(r for r in rec["cv"]["rows"] if r.get("percentile") == pct)
    assert row["n_flagged"] + row["n_passed"] == n
    assert row["mae_flagged"] > 1.5 * row["mae_passed"]
    assert "domain_study.py" in rec["command"]


def test_descriptor_of_train_records_matches_the_file(shipped_domain):
    raw = shipped_domain.train * shipped_domain.std + shipped_domain.mean
    for item in json.loads((DATA / "train_records_domain.json").read_text()):
        hop = Hop.from_record(item["record"])
        got = dm.hop_descriptor(hop)
        assert got == pytest.approx(raw[item["train_index"]], abs=1e-4)
        assert hop.ion in shipped_domain.ions


def test_descriptor_counts_periodic_images():
    # rock salt LiF (a = 4.03 A): the Li path between two Li sites, 2.85 A, in a one-cell box
    # and in a 3x3x3 supercell sees the same surroundings
    small = vacancy_hop(bulk("LiF", "rocksalt", a=4.03, cubic=True).repeat(3), "Li")
    hop = Hop.from_endpoints(*small)
    x = dm.hop_descriptor(hop)
    assert x[0] == pytest.approx(4.03 / math.sqrt(2), abs=1e-6)
    # closest approach: the two F atoms beside the midpoint of the edge, at a/(2 sqrt 2)
    assert x[1] == pytest.approx(4.03 / (2 * math.sqrt(2)), abs=1e-3)
    assert 0 < x[4] < 1  # F (anion-like) and Li both around the path


# ---------------------------------------------------------------------- flags


def test_lifepo4_example_is_inside_the_domain(shipped_domain):
    hop = Hop.from_endpoints(EXAMPLES / "LiFePO4" / "initial.vasp", EXAMPLES / "LiFePO4" / "final.vasp")
    check = dm.domain_flags(hop, shipped_domain)
    assert check.flags == ()
    assert check.distance < shipped_domain.threshold


def test_lone_atom_has_no_host_framework(shipped_domain):
    hop = Hop.from_endpoints(*lone_atom_endpoints())
    check = dm.domain_flags(hop, shipped_domain)
    assert check.flags[0] == dm.NO_HOST_FRAMEWORK
    assert {dm.SHORT_HOP, dm.FAR_FROM_TRAIN} <= set(check.flags)  # 1.0 A < TRAIN's 1.52 A
    assert "no host atoms at all" in check.reasons[0]
    # without a domain file the data-free check still holds
    assert dm.domain_flags(hop, None).flags == (dm.NO_HOST_FRAMEWORK,)


def test_lithium_metal_has_no_host_framework(shipped_domain):
    metal = bulk("Li", "bcc", a=3.51, cubic=True).repeat(3)  # host: Li only
    hop = Hop.from_endpoints(*vacancy_hop(metal, "Li"))
    check = dm.domain_flags(hop, shipped_domain)
    assert dm.NO_HOST_FRAMEWORK in check.flags
    assert "a host of Li only" in check.reasons[check.flags.index(dm.NO_HOST_FRAMEWORK)]
    assert dm.LONG_HOP not in check.flags and dm.SHORT_HOP not in check.flags  # 3.04 A is in range


def test_silver_ion_is_not_in_train(shipped_domain):
    agcl = bulk("AgCl", "rocksalt", a=5.55, cubic=True).repeat(2)
    hop = Hop.from_endpoints(*vacancy_hop(agcl, "Ag"))
    check = dm.domain_flags(hop, shipped_domain)
    assert dm.ION_NOT_IN_TRAIN in check.flags
    assert dm.NO_HOST_FRAMEWORK not in check.flags  # Cl is a framework
    assert dm.ELEMENT_NOT_IN_TRAIN not in check.flags  # Cl is in TRAIN
    assert "Li 153" in check.reasons[check.flags.index(dm.ION_NOT_IN_TRAIN)]
    li = Hop.from_endpoints(*vacancy_hop(bulk("LiCl", "rocksalt", a=5.13, cubic=True).repeat(2), "Li"))
    assert dm.ION_NOT_IN_TRAIN not in dm.domain_flags(li, shipped_domain).flags


def test_hydride_host_element_is_not_in_train(shipped_domain):
    lih = bulk("LiH", "rocksalt", a=4.08, cubic=True).repeat(2)
    check = dm.domain_flags(Hop.from_endpoints(*vacancy_hop(lih, "Li")), shipped_domain)
    assert dm.ELEMENT_NOT_IN_TRAIN in check.flags
    assert "H" in check.reasons[check.flags.index(dm.ELEMENT_NOT_IN_TRAIN)]
    assert dm.ION_NOT_IN_TRAIN not in check.flags


def test_hop_length_against_the_training_range(shipped_domain, endpoints):
    hop = Hop.from_endpoints(*endpoints)  # 2.97 A LiF hop
    assert dm.LONG_HOP not in dm.domain_flags(hop, shipped_domain).flags
    narrow = dataclasses.replace(shipped_domain, length_range=(1.5, 2.5))
    check = dm.domain_flags(hop, narrow)
    assert dm.LONG_HOP in check.flags
    assert "2.97 A, longer than any training hop (2.50 A)" in check.reasons[check.flags.index(dm.LONG_HOP)]


def test_excluding_flags():
    for flag in (dm.LONG_HOP, dm.SHORT_HOP, dm.PATH_GREY_ZONE, dm.NO_HOST_FRAMEWORK):
        assert dm.excluded([flag])
    assert not dm.excluded([dm.ION_NOT_IN_TRAIN, dm.ELEMENT_NOT_IN_TRAIN, dm.FAR_FROM_TRAIN])
    assert not dm.excluded([])


# ---------------------------------------------------------------------- the predictor


@pytest.fixture(scope="module")
def tiny_with_domain(tiny_model_dir, tmp_path_factory):
    from ase_em.predictor import EmPredictor

    d = tmp_path_factory.mktemp("tiny-domain") / "model"
    shutil.copytree(tiny_model_dir, d)
    shutil.copy(resolve(None) / dm.DOMAIN_FILE, d / dm.DOMAIN_FILE)
    return EmPredictor.from_pretrained(d)


def test_results_carry_flags_and_print_in_one_line(tiny_with_domain, shipped_domain):
    lfp = (EXAMPLES / "LiFePO4" / "initial.vasp", EXAMPLES / "LiFePO4" / "final.vasp")
    good, lone = tiny_with_domain.predict([lfp, lone_atom_endpoints()])
    assert good.flags == () and good.in_domain and good.warning() is None
    assert good.train_distance == pytest.approx(dm.domain_flags(good.hop, shipped_domain).distance)
    assert lone.flags == dm.domain_flags(lone.hop, shipped_domain).flags
    assert not lone.in_domain and lone.ok
    assert lone.warning().startswith("outside the model's domain: no_host_framework (")
    text = repr(lone)
    assert "\n" not in text and len(text) < 200
    assert f"em={lone.em:.3f}" in text and "no_host_framework" in text and "(1.00 A)" in text


def test_batch_errors_raise_names_the_index(tiny_predictor, endpoints):
    ini, fin = endpoints
    items = [(ini, fin), (ini, fin), (ini, ini), (ini, fin)]
    with pytest.raises(NoHopError, match=r"^hop 2: .*no atom moves"):
        tiny_predictor.predict(items)
    with pytest.raises(AseEmError, match=r"^hop 1: missing_initial.vasp: no such file"):
        tiny_predictor.predict([(ini, fin), ("missing_initial.vasp", "missing_final.vasp")])
    with pytest.raises(TypeError, match=r"^hop 1: cannot make a hop from str"):
        tiny_predictor.predict([(ini, fin), "initial.vasp"])  # a lone path is no hop
    with pytest.raises(ValueError, match="errors must be"):
        tiny_predictor.predict(items, errors="ignore")


def test_batch_errors_skip_keeps_the_others(tiny_predictor, endpoints):
    ini, fin = endpoints
    single = tiny_predictor.predict_one((ini, fin)).em
    bad = fin.copy()
    bad.positions[3] = np.nan
    results = tiny_predictor.predict([(ini, fin), (ini, ini), (ini, bad), (ini, fin)], errors="skip")
    assert len(results) == 4
    assert [r.ok for r in results] == [True, False, False, True]
    assert results[0].em == pytest.approx(single, abs=1e-5)
    assert results[3].em == pytest.approx(single, abs=1e-5)
    assert math.isnan(results[1].em) and results[1].hop is None and results[1].em_std is None
    assert results[1].error.startswith("hop 1: ") and results[2].error.startswith("hop 2: ")
    assert "non-finite" in results[2].error
    assert repr(results[1]).startswith("EmResult(error='hop 1: ")


# ---------------------------------------------------------------------- command line


def test_cli_predict_warns_and_writes_flags(tiny_model_dir, tmp_path, capsys):
    from ase.io import write

    from ase_em.cli.main import main

    a, b = lone_atom_endpoints()
    write(tmp_path / "ini.vasp", a, format="vasp")
    write(tmp_path / "fin.vasp", b, format="vasp")
    rc = main(["predict", str(tmp_path / "ini.vasp"), str(tmp_path / "fin.vasp"), "--json",
               "--model", str(tiny_model_dir)])
    out, err = capsys.readouterr()
    assert rc == 0
    record = json.loads(out)
    assert record["flags"] == [dm.NO_HOST_FRAMEWORK]  # the tiny model has no domain file
    assert "no host atoms at all" in record["flag_reasons"][dm.NO_HOST_FRAMEWORK]
    assert [line for line in err.splitlines() if line.startswith("warning: outside the model's domain: ")]


def test_cli_info_lists_train_ions(capsys, shipped_domain):
    from ase_em.cli.main import main

    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["train_ions"] == shipped_domain.ions
    assert info["train_ions"]["Li"] == 153 and "Ag" not in info["train_ions"]
    assert info["domain"]["hop_length_A"] == [1.518, 8.95]


# ---------------------------------------------------------------------- networks


class InverseLengthPredictor:
    """Em = 2 eV A / length (long hops cheapest, the failure the flags guard against); real flags."""

    name = "inverse-length"

    def __init__(self, domain: dm.ModelDomain) -> None:
        self.domain = domain

    def predict(self, hops, progress=False):
        from ase_em.predictor import EmResult

        out = []
        for h in hops:
            c = dm.domain_flags(h, self.domain)
            out.append(EmResult(2.0 / h.length, 0.01, h, flags=c.flags, reasons=c.reasons))
        return out


def antifluorite(cation: str, a: float):
    from pymatgen.core import Lattice, Structure

    sites = [[0.25, 0.25, 0.25], [0, 0, 0]]  # cation 8c, O 4a
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [cation, "O"], sites)


def test_na2o_straight_hop_past_oxygen_is_left_out(shipped_domain):
    from ase_em.crystals.analyzer import MigrationBarrierAnalyzer

    na2o = antifluorite("Na", 5.55)  # Na-Na 2.775 A (cube edge), 3.92 A (face diagonal, past an O)
    stub = InverseLengthPredictor(shipped_domain)
    an = MigrationBarrierAnalyzer(na2o, "Na", max_distance=4.0, predictor=stub)
    rows = {round(r.length, 1): r for r in an.hops}
    assert set(rows) == {2.8, 3.9}
    assert dm.PATH_GREY_ZONE in rows[3.9].flags and not rows[3.9].used
    assert rows[2.8].used and dm.PATH_GREY_ZONE not in rows[2.8].flags  # far_from_train: reported, used
    assert an.percolation[3] == pytest.approx(2.0 / 2.775, abs=1e-3)  # the nearest-neighbour hop
    table = an.format_table()
    assert "flags" in table.splitlines()[0] and "path_grey_zone" in table and "--include-flagged" in table
    assert tuple(an.to_dict()["hops"][1]["flags"]) == rows[3.9].flags
    edges = [d for _, _, d in an.graph.m_graph.graph.edges(data=True)]
    for d in edges:  # flags on every edge; path finding costs follow them
        assert ("path_grey_zone" in d["em_flags"]) == (d["cost"] == math.inf)
    everything = MigrationBarrierAnalyzer(na2o, "Na", max_distance=4.0, predictor=stub, include_flagged=True)
    assert everything.percolation[3] == pytest.approx(2.0 / 3.924, abs=1e-3)
    assert all(math.isfinite(d["cost"]) for _, _, d in everything.graph.m_graph.graph.edges(data=True))


def test_licoo2_longer_cutoff_does_not_lower_the_3d_barrier(shipped_domain):
    from ase_em.crystals.analyzer import MigrationBarrierAnalyzer

    cif = EXAMPLES / "structures" / "LiCoO2.cif"
    stub = InverseLengthPredictor(shipped_domain)
    short = MigrationBarrierAnalyzer(cif, "Li", max_distance=5.0, predictor=stub)
    longer = MigrationBarrierAnalyzer(cif, "Li", max_distance=6.5, predictor=stub)
    # the in-plane hops (2.82 and 4.88 A) percolate in 2D; the hops across the CoO2 layers pass an O
    # at about half the Li-O bond and are left out, so no 3D barrier at either cutoff
    assert short.percolation == longer.percolation
    assert short.percolation[2] == pytest.approx(2.0 / 4.877, abs=1e-3) and short.percolation[3] is None
    across = [r for r in longer.hops if r.length > 4.9 and r.blocked is None]
    assert across and all(not r.used and dm.PATH_GREY_ZONE in r.flags for r in across)
    everything = MigrationBarrierAnalyzer(cif, "Li", max_distance=6.5, predictor=stub, include_flagged=True)
    assert everything.percolation[3] is not None and everything.percolation[3] < 2.0 / 4.9
