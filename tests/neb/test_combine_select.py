"""ase_em.neb.combine and ase_em.neb.select: one barrier from two, and which hops to refine.

The NEB side runs ASE's EMT on the Cu vacancy hop of ``test_refine.py`` (31 atoms), so no
interatomic-potential package is needed.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ase_em.errors import AseEmError
from ase_em.neb import RefinedHop, refine
from ase_em.neb.combine import (
    BELOW_FACTOR,
    NEB_SIGMA,
    NOT_CONVERGED_FACTOR,
    SHIFT_FACTOR,
    UNMEASURED_SIGMA,
    combine,
    combine_result,
    neb_sigma,
)
from ase_em.neb.select import bottleneck_candidates, rank_hops, select_hops
from tests.neb.test_refine import SETTINGS, cu_vacancy_hop

RELAX_FMAX = 0.01  # eV/A: tight enough that EMT's endpoints relax at all


def test_combine_is_the_inverse_variance_mean_with_the_pdg_scale_factor():
    # w = 1/0.2^2 = 25 and 1/0.1^2 = 100: (25 * 0.5 + 100 * 0.8) / 125 = 0.74 eV
    c = combine(0.5, 0.2, 0.8, 0.1)
    assert c.em == pytest.approx(0.74)
    # they differ by 0.3 eV = 1.342 sqrt(0.2^2 + 0.1^2): the error 1/sqrt(125) grows by that factor
    assert c.scale == pytest.approx(0.3 / math.hypot(0.2, 0.1))
    assert c.em_std == pytest.approx(c.scale / math.sqrt(125))
    assert c.warning is None
    agree = combine(0.5, 0.2, 0.55, 0.2)  # within the errors: no scaling
    assert agree.em == pytest.approx(0.525) and agree.em_std == pytest.approx(0.2 / math.sqrt(2))


def test_far_disagreement_is_a_warning_and_widens_the_error():
    c = combine(0.2, 0.1, 1.5, 0.1)
    assert c.scale == pytest.approx(1.3 / math.hypot(0.1, 0.1))  # 9.2
    assert c.warning is not None and "disagree by 9.2 times" in c.warning
    assert c.em == pytest.approx(0.85) and c.em_std == pytest.approx(0.65)  # half the gap


@pytest.mark.parametrize("args, message", [
    ((0.5, 0.0, 0.8, 0.1), "std_network = 0.0 is not > 0"),
    ((0.5, 0.2, float("nan"), 0.1), "em_neb = nan is not a finite number"),
    ((0.5, 0.2, 0.8, -1.0), "std_neb = -1.0 is not > 0"),
])
def test_combine_refuses_bad_values(args, message):
    with pytest.raises(AseEmError, match=message):
        combine(*args)


@pytest.fixture(scope="module")
def cu_hop_refined(tmp_path_factory):
    from ase_em.hops.hop import Hop

    hop = Hop.from_endpoints(*cu_vacancy_hop(), name="Cu vacancy hop")
    return hop, refine(hop, "emt", workdir=tmp_path_factory.mktemp("cu"), relax_fmax=RELAX_FMAX, **SETTINGS)


def test_endpoint_shift_is_the_largest_relaxation_displacement(cu_hop_refined):
    from ase.calculators.emt import EMT
    from ase.optimize import BFGS

    _, res = cu_hop_refined
    shifts = []
    for atoms in cu_vacancy_hop():
        start = atoms.positions.copy()
        atoms.calc = EMT()
        BFGS(atoms, logfile=None).run(fmax=RELAX_FMAX, steps=200)
        shifts.append(np.linalg.norm(atoms.positions - start, axis=1).max())
    assert res.endpoint_shift == pytest.approx(max(shifts), abs=1e-6)
    assert 0.01 < res.endpoint_shift < 0.5  # the neighbours of the vacancy relax inwards a little


def test_neb_sigma_grows_when_not_converged_endpoints_moved_or_an_image_is_lower(cu_hop_refined):
    _, res = cu_hop_refined
    assert res.converged and res.calculator == "EMT"
    assert res.em_neb_std == UNMEASURED_SIGMA and res.neb_std_reasons == []  # EMT was never calibrated
    assert res.em_combined is None  # no network Em given
    fake = RefinedHop("h", "Li", 0.4, 0.4, 0.4, [0.0, 0.2, 0.4, 0.2, 0.0], [0, 1, 2, 3, 4], True, 0.1, 0.05,
                      10, 10, 1.0, "SevenNet-0", 3, 0.0, endpoint_shift=0.2)
    base = NEB_SIGMA["SevenNet-0"]
    assert neb_sigma(fake) == (base, [])
    fake.converged = False
    s, why = neb_sigma(fake)
    assert s == pytest.approx(base * NOT_CONVERGED_FACTOR) and why[0].startswith("not converged")
    fake.endpoint_shift = 1.7
    s, why = neb_sigma(fake)
    assert s == pytest.approx(base * NOT_CONVERGED_FACTOR * SHIFT_FACTOR) and "moved 1.70 A" in why[1]
    fake.converged, fake.endpoint_shift, fake.energies = True, 0.2, [0.0, -0.3, 0.4, -0.3, 0.0]
    assert neb_sigma(fake, sigma=0.1) == (0.1, [])  # not one of the default inflations
    s, why = neb_sigma(fake, sigma=0.1, inflate=("converged", "shift", "below"))
    assert s == pytest.approx(0.1 * BELOW_FACTOR) and "0.30 eV below the initial endpoint" in why[0]


def test_refine_with_a_network_gives_the_combined_barrier(cu_hop_refined, tiny_predictor, tmp_path):
    hop, plain = cu_hop_refined
    res = refine(hop, "emt", predictor=tiny_predictor, **SETTINGS)
    net = tiny_predictor.predict_one(hop)
    assert res.em_network == pytest.approx(net.em) and res.em_network_std == pytest.approx(net.em_std)
    want = combine(net.em, net.em_std, res.em_forward, UNMEASURED_SIGMA)
    assert res.em_combined == pytest.approx(want.em) and res.em_combined_std == pytest.approx(want.em_std)
    assert min(net.em, res.em_forward) - 1e-9 <= res.em_combined <= max(net.em, res.em_forward) + 1e-9
    d = res.to_dict()
    assert d["em_combined"] == pytest.approx(want.em) and d["em_combined_std"] == pytest.approx(want.em_std)
    json.dumps(d)
    ax = res.plot(tmp_path / "p.png")
    assert any(t.get_text().startswith("combined") for t in ax.get_legend().get_texts())
    failed = RefinedHop.failed("x", "Cu", "boom")
    assert combine_result(failed).em_combined is None


def test_cli_json_has_the_combined_barrier(tiny_model_dir, tmp_path, capsys):
    from ase.io import write

    from ase_em.cli.main import main

    initial, final = cu_vacancy_hop()
    write(tmp_path / "i.traj", initial)
    write(tmp_path / "f.traj", final)
    argv = ["refine", str(tmp_path / "i.traj"), str(tmp_path / "f.traj"), "--calculator", "emt", "--n-images",
            "3", "--fmax", "0.1", "--model", str(tiny_model_dir), "--workdir", str(tmp_path / "w")]
    assert main([*argv, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    want = combine(d["em_network"], d["em_network_std"], d["em_forward"], d["em_neb_std"])
    assert d["em_combined"] == pytest.approx(want.em) and d["em_combined_std"] == pytest.approx(want.em_std)
    assert main(argv) == 0  # resumes from the workdir
    assert f"combined Em (network and NEB):              {want.em:.3f} +- {want.em_std:.3f} eV" in \
        capsys.readouterr().out


def test_rank_hops_by_straddle_and_by_std():
    cands = [("a", 0.6, 0.1), ("b", 1.5, 0.2), ("c", 0.7, 0.5), ("d", 0.3, None), ("e", math.inf, 0.1)]
    ranked = rank_hops(cands, threshold=0.65)
    assert [c.key for c in ranked] == ["c", "a", "b", "d"]  # z = 0.1, 0.5, 4.25, unknown; blocked e out
    assert ranked[0].score == pytest.approx(0.1)
    assert ranked[0].p_other_side == pytest.approx(0.4602, abs=1e-4)  # Phi(-0.1)
    assert "straddles 0.65 eV" in ranked[0].reason and "does not straddle" in ranked[2].reason
    assert "no uncertainty" in ranked[3].reason
    assert [c.key for c in rank_hops(cands, rule="std")] == ["c", "b", "a", "d"]
    assert [c.key for c in select_hops(cands, 2)] == ["c", "a"]
    assert [c.key for c in select_hops(cands, 2, threshold=1.4)] == ["b", "c"]  # z 0.5, 1.4
    assert select_hops(cands, 0) == []
    with pytest.raises(AseEmError, match="budget must be a number of hops >= 0"):
        select_hops(cands, -1)
    with pytest.raises(AseEmError, match="unknown selection rule"):
        rank_hops(cands, rule="random")


def test_bottleneck_candidates_of_a_migration_graph():
    from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph
    from pymatgen.core import Lattice, Structure

    fcc = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.61), ["Cu"], [[0, 0, 0]])
    fcc = fcc.get_primitive_structure()
    mg = MigrationGraph.with_distance(fcc, "Cu", max_distance=3.7)
    length = {lab: d["hop"].length for lab, d in mg.unique_hops.items()}
    nn, nnn = sorted(length, key=length.get)
    mg.add_data_to_similar_edges(nn, {"em": 0.3, "em_std": 0.2})
    mg.add_data_to_similar_edges(nnn, {"em": 0.5, "em_std": 0.1})
    # only the nearest-neighbour hop sets the 3D percolation barrier
    assert bottleneck_candidates(mg, (3,), key_prefix=(7,)) == [((7, nn), 0.3, 0.2)]


def test_select_auto_from_a_screening_database(tmp_path, tiny_model_dir, capsys):
    from ase.db import connect
    from pymatgen.core import Lattice, Structure

    from ase_em.cli.main import main
    from ase_em.neb.screen_rows import refine_screen_rows
    from ase_em.screening.run import screen

    fcc = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.61), ["Cu"], [[0, 0, 0]])
    fcc.get_primitive_structure().to(filename=str(tmp_path / "Cu.cif"))
    db = tmp_path / "results.db"
    screen(tmp_path / "Cu.cif", "Cu", db, workers=1, model=str(tiny_model_dir), max_distance=3.0,
           progress=False, allow_no_host=True)  # a metal: refused by default (no host framework)
    (row,) = connect(str(db)).select()
    hop = row.data["hops"][0]
    assert refine_screen_rows(db, None, "emt", budget=0, **SETTINGS) == {}  # nothing chosen, nothing run
    out = refine_screen_rows(db, None, "emt", budget=1, workdir=tmp_path / "neb", min_length=6.0, **SETTINGS)
    (choice,) = out[row.id]["chosen"]
    z = abs(hop["em"] - 0.65) / hop["em_std"]
    assert choice.key == (row.id, 0) and choice.score == pytest.approx(z)
    (res,) = out[row.id]["refined"].values()
    want = combine(hop["em"], hop["em_std"], res.em_forward, res.em_neb_std)
    assert res.em_combined == pytest.approx(want.em)
    stored = connect(str(db)).get(id=row.id)
    assert stored.data["refined"][0]["em_combined"] == pytest.approx(want.em)
    assert stored.data["chosen"][0]["reason"] == choice.reason
    # one hop, bottleneck of the fcc network: the combined percolation barrier is its combined barrier
    # (its max - min and forward barriers agree for this symmetric hop)
    assert stored.em_3d_combined == pytest.approx(want.em, abs=1e-6)

    argv = ["refine", "--from", str(db), "--select", "auto", "--budget", "1", "--calculator", "emt",
            "--n-images", "3", "--fmax", "0.1", "--workdir", str(tmp_path / "cli")]
    assert main(argv[:5]) == 2
    assert "--select auto needs --budget N" in capsys.readouterr().err
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"chosen: row {row.id} hop 0: Em {hop['em']:.3f} +- {hop['em_std']:.3f} eV" in out


def test_an_unconverged_neb_far_from_the_network_is_dropped():
    """A band that flew apart (421 eV, unconverged) is dropped: the network's barrier alone."""
    from ase_em.neb.combine import combine_result

    def refined(em, converged):
        return RefinedHop("h", "Mg", em, em, em, [0.0, em / 2, em, em / 2, 0.0], [0, 1, 2, 3, 4], converged,
                          0.1, 0.5, 200, 10, 1.0, "CHGNet", 3, 0.0, em_network=0.62, em_network_std=0.2,
                          endpoint_shift=0.1)

    wild = combine_result(refined(421.0, False))
    assert (wild.em_combined, wild.em_combined_std) == (0.62, 0.2)
    assert "did not converge" in wild.combine_warning and "network's alone" in wild.combine_warning
    near = combine_result(refined(0.9, False))  # unfinished but within the uncertainties: combined
    assert 0.62 < near.em_combined < 0.9 and near.combine_warning is None
    far = combine_result(refined(3.0, True))  # converged and far: combined, widened, warned
    assert far.em_combined > 0.62 and far.em_combined_std > 0.2 and "disagree" in far.combine_warning
