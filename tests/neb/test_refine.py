"""ase_em.neb: climbing-image NEB with an interatomic potential (ASE's EMT here, so CI stays fast).

The case: a vacancy hop in fcc Cu (a = 3.61 A, the experimental lattice constant), a
2x2x2 conventional supercell (32 sites, one removed): a Cu atom hops a/sqrt(2) = 2.55 A
into the vacancy. EMT's barrier for it: 0.76 eV (3 images, fmax 0.1 eV/A).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

import ase_em
from ase_em.errors import (
    AseEmError,
    EndpointMismatchError,
    PotentialError,
    RefineSettingsError,
    ScreenRowError,
)
from ase_em.hops.hop import Hop
from ase_em.neb import RefinedHop, refine, refine_many
from tests.conftest import rocksalt_hop_endpoints

SETTINGS = {"n_images": 3, "fmax": 0.1, "steps": 200}


def cu_vacancy_hop(a: float = 3.61) -> tuple[Atoms, Atoms]:
    """(initial, final) of the nearest-neighbour vacancy hop in a 2x2x2 fcc Cu supercell."""
    crystal = bulk("Cu", "fcc", a=a, cubic=True) * (2, 2, 2)  # 32 atoms
    vacancy = 0
    d = crystal.get_distances(vacancy, range(1, len(crystal)), mic=True)
    mover = 1 + int(np.argmin(d))
    vec = crystal.get_distance(mover, vacancy, mic=True, vector=True)
    initial = crystal.copy()
    del initial[vacancy]
    final = initial.copy()
    final.positions[mover - 1] = crystal.positions[mover] + vec
    return initial, final


def neb_by_hand(initial: Atoms, final: Atoms, *, n_images: int, fmax: float, steps: int) -> float:
    """The same NEB written out with ASE: BFGS endpoints, IDPP, CI-NEB (improved tangent), FIRE."""
    from ase.calculators.emt import EMT
    from ase.mep import NEB
    from ase.optimize import BFGS, FIRE

    ends = []
    for atoms in (initial.copy(), final.copy()):
        atoms.calc = EMT()
        BFGS(atoms, logfile=None).run(fmax=fmax, steps=200)
        ends.append(atoms)
    images = [ends[0]] + [ends[0].copy() for _ in range(n_images)] + [ends[1]]
    for im in images[1:-1]:
        im.calc = EMT()
    neb = NEB(images, climb=True, method="improvedtangent")
    neb.interpolate(method="idpp")
    assert FIRE(neb, logfile=None).run(fmax=fmax, steps=steps)
    energies = [im.get_potential_energy() for im in images]
    return max(energies[1:-1]) - energies[0]


@pytest.fixture(scope="session")
def cu_hop() -> Hop:
    return Hop.from_endpoints(*cu_vacancy_hop(), name="Cu vacancy hop")


@pytest.fixture(scope="session")
def cu_refined(cu_hop, tmp_path_factory) -> tuple[RefinedHop, object]:
    """One converged EMT refinement of the Cu hop, and its workdir (reused by resume tests)."""
    workdir = tmp_path_factory.mktemp("refine") / "cu"
    return refine(cu_hop, "emt", workdir=workdir, **SETTINGS), workdir


def test_refined_barrier_equals_a_neb_by_hand(cu_refined):
    result, _ = cu_refined
    by_hand = neb_by_hand(*cu_vacancy_hop(), **SETTINGS)
    assert result.converged
    assert result.em_forward == pytest.approx(by_hand, abs=1e-6)  # the same NEB, the same numbers
    assert 0.6 < result.em_forward < 0.9  # EMT, Cu vacancy hop
    # a hop between equivalent sites: both definitions agree, the profile is symmetric
    assert result.energies[0] == 0.0
    assert result.energies[-1] == pytest.approx(0.0, abs=2e-3)
    assert result.em_reference == pytest.approx(result.em_forward, abs=2e-3)
    assert result.em_backward == pytest.approx(result.em_forward, abs=2e-3)
    assert result.energies[1] == pytest.approx(result.energies[3], abs=0.02)
    assert len(result.energies) == len(result.path) == SETTINGS["n_images"] + 2
    assert np.all(np.diff(result.path) > 0)
    assert result.path[-1] == pytest.approx(3.61 / math.sqrt(2), abs=0.3)  # about the hop length
    assert result.max_force < SETTINGS["fmax"] and result.steps > 0 and result.seconds > 0
    assert result.calculator == "EMT" and result.error is None


def test_ase_em_refine_is_the_function_and_accepts_endpoints_and_images(cu_refined, tmp_path):
    result, workdir = cu_refined
    initial, final = cu_vacancy_hop()
    # (initial, final) Atoms, through the package-level callable; the finished workdir answers at once
    again = ase_em.refine((initial, final), "emt", workdir=workdir, **SETTINGS)
    assert again.em_forward == pytest.approx(result.em_forward, abs=1e-9)
    assert again.steps == result.steps  # nothing new was run
    # a multi-frame file of NEB images: its first and last frames are the endpoints
    from ase.io import write

    write(tmp_path / "band.traj", [initial, final])
    from_file = ase_em.refine(str(tmp_path / "band.traj"), "emt", workdir=workdir, **SETTINGS)
    assert from_file.em_forward == pytest.approx(result.em_forward, abs=1e-9)


def test_stopped_run_is_not_converged_and_resumes_from_its_checkpoint(cu_hop, cu_refined, tmp_path):
    full, _ = cu_refined
    workdir = tmp_path / "neb"
    short = refine(cu_hop, "emt", workdir=workdir, **{**SETTINGS, "steps": 4})
    assert not short.converged
    assert short.steps == 4 and short.max_force > SETTINGS["fmax"]
    assert "NOT converged" in short.summary()
    assert (workdir / "neb.traj").exists() and (workdir / "initial.traj").exists()
    resumed = refine(cu_hop, "emt", workdir=workdir, **SETTINGS)
    assert resumed.converged
    assert resumed.steps > 4  # counts the 4 steps of the first call
    assert resumed.relax_steps == short.relax_steps  # the relaxed endpoints were read back
    assert resumed.em_forward == pytest.approx(full.em_forward, abs=0.01)
    assert resumed.seconds > short.seconds


def test_neb_stops_at_the_requested_force_tolerance(cu_hop, tmp_path):
    loose = refine(cu_hop, "emt", workdir=tmp_path, **{**SETTINGS, "fmax": 0.5})
    assert loose.converged and loose.max_force < 0.5
    # ASE's optimizer log: the largest NEB force after each step; the run stops at the first below 0.5
    forces = [float(line.split()[-1]) for line in (tmp_path / "neb.log").read_text().splitlines()
              if line.startswith("FIRE:")]
    assert forces[-1] == pytest.approx(loose.max_force, abs=1e-5)
    assert all(f >= 0.5 for f in forces[:-1]) and len(forces) == loose.steps + 1


def test_time_limit_stops_and_reports(cu_hop):
    result = refine(cu_hop, "emt", time_limit=1e-6, **SETTINGS)
    assert not result.converged
    assert result.steps <= 1


def test_workdir_of_another_hop_or_settings_is_refused(cu_refined):
    _, workdir = cu_refined
    other = Hop.from_endpoints(*cu_vacancy_hop(a=3.7))
    with pytest.raises(RefineSettingsError, match="another hop"):
        refine(other, "emt", workdir=workdir, **SETTINGS)
    with pytest.raises(RefineSettingsError, match="n_images"):
        refine(Hop.from_endpoints(*cu_vacancy_hop()), "emt", workdir=workdir, **{**SETTINGS, "n_images": 5})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fmax": -0.1}, "fmax must be a positive"),
        ({"n_images": 0}, "n_images must be an integer >= 1"),
        ({"optimizer": "LBFGS"}, "optimizer must be"),
        ({"calculator": "no-such-potential"}, "unknown calculator 'no-such-potential'"),
        ({"calculator": "os.path:no_such_factory"}, "cannot import no_such_factory"),
    ],
)
def test_bad_settings_raise_one_line_errors(cu_hop, kwargs, message):
    kwargs = {"calculator": "emt", **kwargs}
    with pytest.raises(AseEmError, match=message):
        refine(cu_hop, **kwargs)


def test_potential_without_the_elements_is_a_calculator_error():
    hop = Hop.from_endpoints(*rocksalt_hop_endpoints(), name="LiF")
    with pytest.raises(PotentialError, match="LiF: EMT cannot compute the initial endpoint"):
        refine(hop, "emt", n_images=1, steps=1)


def test_endpoints_that_are_not_one_system_are_refused():
    initial, final = cu_vacancy_hop()
    del final[3]
    with pytest.raises(EndpointMismatchError):
        refine((initial, final), "emt")


def test_default_potential_needs_sevenn_or_builds_sevennet0(monkeypatch):
    import importlib.util

    from ase_em.neb.potentials import make_calculator

    if importlib.util.find_spec("sevenn") is None:
        with pytest.raises(PotentialError, match=r"pip install 'ase-em\[neb\]'"):
            make_calculator(None)
    else:  # the optional extra is installed
        calc = make_calculator(None, device="cpu")
        assert type(calc).__name__ == "SevenNetCalculator"


def test_refine_many_in_worker_processes_keeps_order_and_reports_failures(cu_hop, tmp_path):
    lif = Hop.from_endpoints(*rocksalt_hop_endpoints(), name="LiF")
    results = refine_many([cu_hop, lif], "emt", workers=2, workdir=tmp_path, **{**SETTINGS, "steps": 3})
    assert [r.name for r in results] == ["Cu vacancy hop", "LiF"]
    assert results[0].error is None and results[0].steps == 3 and not results[0].converged
    assert results[1].error is not None and "EMT cannot compute" in results[1].error
    assert math.isnan(results[1].em_forward)
    assert (tmp_path / "000_Cu_vacancy_hop" / "neb.traj").exists()


def test_plot_marks_the_network_em_and_its_uncertainty(cu_refined, tmp_path):
    result, _ = cu_refined
    result.em_network, result.em_network_std = 0.5, 0.2
    ax = result.plot(tmp_path / "profile.png")
    assert (tmp_path / "profile.png").stat().st_size > 1000
    lines = {line.get_label(): line for line in ax.get_lines()}
    net = next(v for k, v in lines.items() if k.startswith("network Em"))
    assert np.allclose(net.get_ydata(), 0.5)
    band = next(p for p in ax.patches if p.get_label().startswith("+-"))
    if hasattr(band, "get_height"):  # a Rectangle (matplotlib >= 3.9)
        lo, hi = band.get_y(), band.get_y() + band.get_height()
    else:  # a Polygon
        lo, hi = band.get_xy()[:, 1].min(), band.get_xy()[:, 1].max()
    assert lo == pytest.approx(0.3) and hi == pytest.approx(0.7)
    d = result.to_dict()
    assert d["em_network"] == 0.5 and "images" not in d
    json.dumps(d)
    result.em_network = result.em_network_std = None


def test_cli_refine_prints_both_barriers_and_writes_plot_and_images(
    cu_refined, tiny_model_dir, tmp_path, capsys
):
    from ase.io import read, write

    from ase_em.cli.main import main

    result, workdir = cu_refined
    initial, final = cu_vacancy_hop()
    write(tmp_path / "initial.traj", initial)
    write(tmp_path / "final.traj", final)
    argv = ["refine", str(tmp_path / "initial.traj"), str(tmp_path / "final.traj"), "--calculator", "emt",
            "--n-images", "3", "--fmax", "0.1", "--workdir", str(workdir), "--model", str(tiny_model_dir),
            "--plot", str(tmp_path / "p.png"), "--write-images", str(tmp_path / "neb.extxyz")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"refined Em (forward, E_saddle - E_initial): {result.em_forward:.3f} eV" in out
    assert "network Em:" in out and "converged" in out
    assert (tmp_path / "p.png").exists()
    band = read(tmp_path / "neb.extxyz", index=":")
    assert len(band) == 5
    assert band[2].get_potential_energy() - band[0].get_potential_energy() == pytest.approx(result.em_forward)
    assert band[2].info["energy_relative"] == pytest.approx(result.em_forward)
    assert main([*argv, "--json", "--no-network"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["em_forward"] == pytest.approx(result.em_forward) and d["em_network"] is None


def test_cli_refine_bad_input_exit_2(tmp_path, capsys):
    from ase_em.cli.main import main

    assert main(["refine", str(tmp_path / "missing.vasp"), str(tmp_path / "x.vasp"), "--no-network"]) == 2
    err = capsys.readouterr().err
    assert "missing.vasp" in err and len(err.strip().splitlines()) == 1
    assert main(["refine", "--no-network"]) == 2
    assert "give INITIAL and FINAL" in capsys.readouterr().err
    assert main(["refine", "--from", str(tmp_path / "results.db")]) == 2
    assert "results.db: no such screening database" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse's own usage error
        main(["refine", "--fmax", "-1", "a", "b"])
    assert exc.value.code == 2 and "--fmax: must be a finite number > 0" in capsys.readouterr().err


def test_refined_barriers_relabel_a_migration_graph_and_its_percolation():
    from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph
    from pymatgen.core import Lattice, Structure

    from ase_em.neb.on_graph import bottleneck_hops, percolation_barriers_refined

    fcc = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.61), ["Cu"], [[0, 0, 0]])
    fcc = fcc.get_primitive_structure()
    # nearest (2.55 A) and second-nearest (3.61 A) neighbour hops, labelled as the network would
    mg = MigrationGraph.with_distance(fcc, "Cu", max_distance=3.7)
    length = {lab: d["hop"].length for lab, d in mg.unique_hops.items()}
    nn, nnn = sorted(length, key=length.get)
    mg.add_data_to_similar_edges(nn, {"em": 0.3})
    mg.add_data_to_similar_edges(nnn, {"em": 0.5})
    assert percolation_barriers_refined(mg) == {1: 0.3, 2: 0.3, 3: 0.3}
    assert bottleneck_hops(mg, (3,)) == {3: [nn]}
    # a refined nearest-neighbour barrier above 0.5 eV makes the second-nearest hop the bottleneck
    mg.add_data_to_similar_edges(nn, {"em_refined": 0.75})
    assert percolation_barriers_refined(mg)[3] == 0.5
    assert bottleneck_hops(mg, (3,)) == {3: [nnn]}

    # label_refined writes beside the network's em and sets the path cost to the refined barrier
    from ase_em.neb.on_graph import label_refined

    second = RefinedHop("2nn", "Cu", 2.9, 3.0, 2.9, [], [], True, 0.1, 0.05, 9, 9, 1.0, "EMT", 3, 0.0)
    label_refined(mg, {nnn: second})
    for _, _, d in mg.m_graph.graph.edges(data=True):
        want = 3.0 if d["hop_label"] == nnn else 0.75
        assert d["cost"] == want and d["em"] == (0.5 if d["hop_label"] == nnn else 0.3)
    assert percolation_barriers_refined(mg)[3] == 0.75


@pytest.mark.slow
def test_refine_from_a_screening_database_stores_refined_barriers_in_its_rows(tmp_path, tiny_model_dir):
    from ase.db import connect
    from pymatgen.core import Lattice, Structure

    from ase_em.neb.screen_rows import refine_screen_rows
    from ase_em.screening.run import screen

    fcc = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.61), ["Cu"], [[0, 0, 0]])
    fcc.get_primitive_structure().to(filename=str(tmp_path / "Cu.cif"))
    db = tmp_path / "results.db"
    # the network's barriers (a tiny random model) on the nearest-neighbour network alone
    screen(tmp_path / "Cu.cif", "Cu", db, workers=1, model=str(tiny_model_dir), max_distance=3.0,
           progress=False, allow_no_host=True)  # a metal has no host framework: refused by default
    (row,) = connect(str(db)).select()
    assert row.status == "ok" and len(row.data["hops"]) == 1
    em_network = row.data["hops"][0]["em"]

    out = refine_screen_rows(db, None, "emt", workdir=tmp_path / "neb", min_length=6.0, **SETTINGS)
    (res,) = out[row.id]["refined"].values()
    assert res.converged and 0.6 < res.em_reference < 0.9  # EMT, Cu vacancy hop (27-site supercell)
    assert out[row.id]["percolation_refined"] == {3: res.em_reference}
    row = connect(str(db)).get(id=row.id)
    assert row.em_3d_refined == pytest.approx(res.em_reference) and row.n_refined == 1
    assert row.data["refined"][0]["em_reference"] == pytest.approx(res.em_reference)
    assert row.data["hops"][0]["em"] == em_network  # the network's barrier stays beside it
    with pytest.raises(ScreenRowError, match="no row 7"):
        refine_screen_rows(db, [7], "emt")


def test_loose_neb_then_climbing_image_reaches_the_same_saddle(cu_hop, cu_refined):
    result, _ = cu_refined
    two_stage = refine(cu_hop, "emt", loose_fmax=0.5, **SETTINGS)
    assert two_stage.converged and two_stage.max_force < SETTINGS["fmax"]
    assert two_stage.em_forward == pytest.approx(result.em_forward, abs=0.005)
    with pytest.raises(RefineSettingsError, match="loose_fmax must be a force tolerance above fmax"):
        refine(cu_hop, "emt", loose_fmax=0.05, **SETTINGS)
