"""ase-em screen: inputs, rows, SIGKILL + resume, Dask LocalCluster, time-outs, report.

The structures are small real crystals: the shipped examples (LiCoO2, LiFePO4), rock-salt
MgO (no Li: a refused row) and a file that is no CIF (a refused row). Every run uses the
shipped model with one worker and one torch thread.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ase.db import connect

from ase_em.cli.main import main
from ase_em.model.weights import SCREEN_MODEL
from ase_em.screening import expand_inputs, screen
from ase_em.screening.inputs import atoms_sha256, read_keys_csv

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "structures"
BARRIER_KEYS = ("em_1d", "em_1d_std", "em_2d", "em_2d_std", "em_3d", "em_3d_std", "em_min", "em_min_std",
                "n_hops", "n_blocked", "n_orderings", "reduced_formula", "n_sites", "sha256", "model")


def _mgo(path: Path) -> Path:
    from pymatgen.core import Lattice, Structure

    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    s.to(filename=str(path))
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """LiCoO2, LiFePO4, MgO, a broken CIF, and a copy of LiFePO4 in a subfolder."""
    d = tmp_path_factory.mktemp("structures")
    shutil.copy(EXAMPLES / "LiCoO2.cif", d / "LiCoO2.cif")
    shutil.copy(EXAMPLES / "LiFePO4.cif", d / "LiFePO4.cif")
    _mgo(d / "MgO.cif")
    (d / "bad.cif").write_text("data_broken\n_cell_length_a 3.0\nthis is no CIF\n")
    (d / "more").mkdir()
    shutil.copy(EXAMPLES / "LiFePO4.cif", d / "more" / "LiFePO4_copy.cif")
    (d / "notes.md").write_text("not a structure\n")
    return d


@pytest.fixture(scope="module")
def keys_csv(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("keys") / "sigma.csv"
    p.write_text("ID,sigma (S/cm),family\nLiCoO2,1e-4,layered\nLiFePO4,1e-9,olivine\n")
    return p


@pytest.fixture(scope="module")
def reference(folder, keys_csv, tmp_path_factory) -> Path:
    """An uninterrupted screen of ``folder`` (local worker process)."""
    db = tmp_path_factory.mktemp("ref") / "ref.db"
    summary = screen(folder, "Li", db, workers=1, keys=keys_csv, keys_id="ID", progress=False)
    assert summary.n_run == 5 and summary.n_skipped == 0
    assert summary.status == {"ok": 3, "refused": 2}
    return db


def _rows(db: Path) -> dict[tuple[str, str], dict]:
    out = {}
    for row in connect(str(db)).select():
        kv = row.key_value_pairs
        out[(kv["source"], kv["ion"])] = {**kv, "natoms": row.natoms, "hops": row.data.get("hops")}
    return out


def _same_results(a: Path, b: Path) -> None:
    ra, rb = _rows(a), _rows(b)
    assert set(ra) == set(rb)
    for key in ra:
        x, y = ra[key], rb[key]
        assert x["status"] == y["status"], key
        assert x.get("reason") == y.get("reason"), key
        for k in BARRIER_KEYS:
            assert x.get(k) == pytest.approx(y.get(k), abs=1e-9), (key, k)
        assert x["natoms"] == y["natoms"]
        assert x["hops"] == y["hops"]


def test_expand_inputs_folder_list_and_ase_db(folder, tmp_path):
    found = expand_inputs([folder])
    names = [Path(s.source).name for s in found]
    assert names == ["LiCoO2.cif", "LiFePO4.cif", "MgO.cif", "bad.cif", "LiFePO4_copy.cif"]
    # same bytes, same checksum; the listed path is relative to the list file
    by_name = {Path(s.source).name: s for s in found}
    assert by_name["LiFePO4.cif"].sha256 == by_name["LiFePO4_copy.cif"].sha256
    assert by_name["LiFePO4.cif"].sha256 != by_name["LiCoO2.cif"].sha256
    listing = folder / "list.txt"
    listing.write_text("# two files\nLiCoO2.cif\n\nmore/LiFePO4_copy.cif\n")
    try:
        listed = expand_inputs([listing, folder / "LiCoO2.cif"])  # a path twice is one unit
    finally:
        listing.unlink()
    assert [Path(s.source).name for s in listed] == ["LiCoO2.cif", "LiFePO4_copy.cif"]
    # an ASE database: one unit per row, identified by its atoms
    from ase.io import read

    atoms = read(EXAMPLES / "LiFePO4.cif")
    with connect(str(tmp_path / "in.db")) as db:
        db.write(atoms)
        moved = atoms.copy()
        moved.positions[0] += 0.01
        db.write(moved)
    rows = expand_inputs([tmp_path / "in.db"])
    assert [s.source.rsplit("@", 1)[1] for s in rows] == ["id=1", "id=2"]
    assert rows[0].sha256 == atoms_sha256(atoms) != rows[1].sha256
    # a bare file name that reads as a number gets "./" (ASE refuses number-like text keys)
    numeric = tmp_path / "123"
    shutil.copy(EXAMPLES / "LiFePO4.cif", numeric)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert expand_inputs(["123"])[0].source == os.path.join(".", "123")
    finally:
        os.chdir(cwd)
    with pytest.raises(ValueError, match="nothere.cif: no such file"):
        expand_inputs([tmp_path / "nothere.cif"])


def test_keys_csv_names_and_values(keys_csv):
    table = read_keys_csv(keys_csv, "ID")
    assert table == {"LiCoO2": {"sigma_s_cm": 1e-4, "family": "layered"},
                     "LiFePO4": {"sigma_s_cm": 1e-9, "family": "olivine"}}
    with pytest.raises(ValueError, match="no column 'id'"):
        read_keys_csv(keys_csv)


def test_screen_rows_match_the_analyzer(reference, folder, one_torch_thread):
    from ase_em.crystals.analyzer import MigrationBarrierAnalyzer
    from ase_em.predictor import EmPredictor

    rows = _rows(reference)
    src = {Path(s).name: r for (s, ion), r in rows.items()}
    licoo2, lfp, copy = src["LiCoO2.cif"], src["LiFePO4.cif"], src["LiFePO4_copy.cif"]
    predictor = EmPredictor.from_pretrained(SCREEN_MODEL)  # a screen's default model
    for row, name in ((licoo2, "LiCoO2.cif"), (lfp, "LiFePO4.cif")):
        an = MigrationBarrierAnalyzer(EXAMPLES / name, "Li", predictor=predictor)
        for d in (1, 2, 3):  # the same percolation barriers as `ase-em network`; absent = None
            if an.percolation[d] is None:
                assert f"em_{d}d" not in row and f"em_{d}d_std" not in row
            else:
                assert row[f"em_{d}d"] == pytest.approx(an.percolation[d], abs=1e-6)
        assert row["em_min"] == pytest.approx(min(h.em for h in an.hops if h.em is not None), abs=1e-6)
        assert row["n_hops"] == len(an.hops) == len(row["hops"])
        assert row["empty_sites"] is an.has_empty_sites
        assert [h["into_empty_site"] for h in row["hops"]] == [h.into_empty_site for h in an.hops]
        # the bottleneck hop's uncertainty goes with each percolation barrier
        stds = {h.em: h.em_std for h in an.hops if h.em is not None and h.used}
        assert row["em_1d_std"] == pytest.approx(stds[an.percolation[1]], abs=1e-6)
        flags = sorted({f for h in an.hops for f in h.flags})
        assert row["n_flags"] == len(flags) and row.get("flags", "") == ",".join(flags)
    assert licoo2["em_1d"] <= licoo2["em_2d"] <= licoo2.get("em_3d", float("inf"))
    assert licoo2["natoms"] == 12 and licoo2["reduced_formula"] == "LiCoO2" and licoo2["n_orderings"] == 1
    assert licoo2["model"] == SCREEN_MODEL and licoo2["status"] == "ok" and "reason" not in licoo2
    # the copy in the subfolder gives the same barriers
    assert lfp["em_1d"] == copy["em_1d"] and lfp["sha256"] == copy["sha256"]
    # extra keys from the CSV, matched by file stem
    assert licoo2["sigma_s_cm"] == 1e-4 and lfp["family"] == "olivine" and "sigma_s_cm" not in copy
    # bad inputs: refused rows naming the file and the problem; the run went on
    bad = src["bad.cif"]
    assert bad["status"] == "refused" and "bad.cif: cannot read a structure" in bad["reason"]
    assert src["MgO.cif"]["status"] == "refused" and "no Li in the structure" in src["MgO.cif"]["reason"]
    assert src["MgO.cif"]["natoms"] == 8 and src["bad.cif"]["natoms"] == 0


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(reference, folder, tmp_path):
    db = tmp_path / "killed.db"
    proc = subprocess.Popen(  # `ase-em screen` (the console script's main, as python -m)
        [sys.executable, "-m", "ase_em.cli.main", "screen", str(folder), "--ion", "Li", "--db", str(db),
         "--workers", "1", "--quiet"],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if db.exists() and connect(str(db)).count() >= 1:
                    break
            except (TypeError, sqlite3.OperationalError):  # read while the screen creates its tables
                pass
            time.sleep(0.002)  # units take tens of ms now: the kill must come between two rows
        assert proc.poll() is None, proc.stderr.read().decode()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the main process and its workers, mid-run
        proc.wait()
    n_killed = connect(str(db)).count()
    assert 1 <= n_killed < 5
    with pytest.raises(ValueError, match="already holds .* rows; give --resume"):
        screen(folder, "Li", db, workers=1, progress=False)
    summary = screen(folder, "Li", db, workers=1, resume=True, progress=False)
    assert summary.n_skipped == n_killed and summary.n_run == 5 - n_killed
    _same_results(db, reference)
    # a changed file is redone (and its row replaced); the others are skipped
    target = folder / "more" / "LiFePO4_copy.cif"
    original = target.read_bytes()
    try:
        target.write_bytes(original + b"\n# edited\n")
        summary = screen(folder, "Li", db, workers=1, resume=True, progress=False)
    finally:
        target.write_bytes(original)
    assert (summary.n_skipped, summary.n_run) == (4, 1)
    rows = _rows(db)
    assert len(rows) == 5
    edited = rows[(str(target), "Li")]
    assert edited["sha256"] != rows[(str(folder / "LiFePO4.cif"), "Li")]["sha256"]
    assert edited["em_1d"] == pytest.approx(rows[(str(folder / "LiFePO4.cif"), "Li")]["em_1d"], abs=1e-9)


def test_dask_local_cluster_gives_the_same_rows(reference, folder, tmp_path, one_torch_thread):
    distributed = pytest.importorskip("distributed")
    # a threads-only cluster: no second process to start, the same task code and data path
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        summary = screen(folder, "Li", tmp_path / "dask.db", scheduler=cluster, timeout=300, progress=False)
    assert summary.status == {"ok": 3, "refused": 2}
    _same_results(tmp_path / "dask.db", reference)


def test_a_resume_keeps_the_model_its_rows_were_made_with(folder, tmp_path):
    db = tmp_path / "v1.db"
    first = screen(folder / "LiCoO2.cif", "Li", db, workers=1, model="alignn-em-v1", progress=False)
    assert first.n_run == 1
    # no --model: the rows' model (a screen begun under another default), not SCREEN_MODEL
    summary = screen([folder / "LiCoO2.cif", folder / "LiFePO4.cif"], "Li", db, workers=1, resume=True,
                     progress=False)
    assert (summary.n_skipped, summary.n_run) == (1, 1)
    assert {r["model"] for r in _rows(db).values()} == {"alignn-em-v1"}


def test_a_lock_file_left_by_a_killed_run_does_not_stop_the_resume(reference, folder, tmp_path):
    import threading

    db = tmp_path / "killed.db"
    shutil.copy(reference, db)
    with connect(str(db)) as rows:
        rows.delete([next(r.id for r in rows.select(source=str(folder / "LiCoO2.cif")))])
    # ASE's lock file, as a screen killed while writing a row leaves it
    (tmp_path / "killed.db.lock").write_text("")
    result = {}
    run = threading.Thread(target=lambda: result.update(
        summary=screen(folder, "Li", db, workers=1, resume=True, progress=False)), daemon=True)
    run.start()
    run.join(timeout=300)
    assert not run.is_alive(), "the resume waits for the stale lock file"
    assert (result["summary"].n_skipped, result["summary"].n_run) == (4, 1)
    _same_results(db, reference)


@pytest.mark.slow
def test_timeout_row_and_the_run_goes_on(tmp_path):
    from pymatgen.core import Structure

    # 672 atoms with one Fe nudged, so the primitive cell is the whole supercell and its
    # symmetry is P1: a few hundred distinct hops, seconds of work, far beyond 1 s (the
    # 336-atom cell of (3, 2, 2) once finished within the second on a fast run)
    slow = Structure.from_file(EXAMPLES / "LiFePO4.cif") * (4, 3, 2)
    fe = next(i for i, site in enumerate(slow) if site.specie.symbol == "Fe")
    slow.translate_sites([fe], [0.1, 0.05, 0.0], frac_coords=False)
    slow.to(filename=str(tmp_path / "a_slow.cif"))
    (tmp_path / "b_bad.cif").write_text("no structure\n")
    db = tmp_path / "t.db"
    code = main(["screen", str(tmp_path), "--ion", "Li", "--db", str(db), "--workers", "1",
                 "--timeout", "1", "--quiet"])
    assert code == 0
    rows = {Path(s).name: r for (s, _), r in _rows(db).items()}
    assert rows["a_slow.cif"]["status"] == "timeout"
    assert rows["a_slow.cif"]["reason"] == "no result within 1 s; worker replaced"
    assert rows["a_slow.cif"]["model"] == SCREEN_MODEL
    # the next unit ran in the replacement worker (its model load is not part of the time-out)
    assert rows["b_bad.cif"]["status"] == "refused"


def test_cli_refuses_an_existing_db_without_resume(reference, folder, capsys):
    code = main(["screen", str(folder), "--ion", "Li", "--db", str(reference), "--quiet"])
    assert code == 2
    assert "already holds 5 rows; give --resume" in capsys.readouterr().err


def test_cli_refuses_an_unwritable_db_in_one_line(folder, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    for db, says in [(tmp_path / "afile" / "r.db", "afile is a file, not a folder"),
                     (tmp_path / "nodir" / "sub" / "r.db", "no such folder")]:
        assert main(["screen", str(folder), "--ion", "Li", "--db", str(db), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_report_ranks_and_plots(reference, tmp_path, capsys):
    import csv

    out_csv, out_png = tmp_path / "rank.csv", tmp_path / "rank.png"
    code = main(["screen-report", str(reference), "--csv", str(out_csv), "--png", str(out_png),
                 "--x", "sigma_s_cm", "--logx"])
    assert code == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert [Path(r["source"]).name for r in rows[:3]] in (
        ["LiFePO4.cif", "LiFePO4_copy.cif", "LiCoO2.cif"], ["LiFePO4_copy.cif", "LiFePO4.cif", "LiCoO2.cif"])
    assert [r["rank"] for r in rows] == ["1", "2", "3", "", ""]
    assert [float(r["em_1d"]) for r in rows[:3]] == sorted(float(r["em_1d"]) for r in rows[:3])
    assert {r["status"] for r in rows[3:]} == {"refused"} and all(r["reason"] for r in rows[3:])
    assert rows[2]["sigma_s_cm"] == "0.0001" and rows[2]["family"] == "layered"
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out
    # a key no row has: one clear error, exit 2
    assert main(["screen-report", str(reference), "--csv", str(out_csv), "--png", str(out_png),
                 "--x", "nosuchkey"]) == 2


def test_disordered_structure_row(tmp_path, one_torch_thread):
    """Partial occupancies: barriers are medians over seeded orderings; the row keeps the
    average structure in its data (ASE atoms cannot hold partial occupancies)."""
    from pymatgen.core import Structure

    from ase_em.screening.store import ResultStore
    from ase_em.screening.work import run_unit

    s = Structure.from_file(EXAMPLES / "LiCoO2.cif")
    s.replace_species({"Li": {"Li": 0.5}})  # half the Li sites filled
    path = tmp_path / "Li0.5CoO2.cif"
    s.to(filename=str(path))
    unit = {"source": str(path), "sha256": "ab" * 32, "ion": "Li", "path": str(path), "atoms": None}
    record = run_unit(unit, n_orderings=2, seed=0)
    kv = record["key_value_pairs"]
    assert kv["status"] == "ok" and kv["ordered"] is False and kv["n_orderings"] == 2
    assert record["atoms"] is None and Structure.from_dict(record["data"]["average_structure"]) == s
    ems = [h["em"] for h in record["data"]["hops"] if h["em"] is not None]
    assert kv["em_min"] == pytest.approx(min(ems)) and kv["em_1d"] >= kv["em_min"]
    assert kv["n_hops"] == len(record["data"]["hops"])
    store = ResultStore(tmp_path / "d.db")
    row_id = store.write(record, {"note": "2", "Space group": "P1"})  # "2": stored as the number 2
    row = connect(str(tmp_path / "d.db")).get(row_id)
    assert row.natoms == 0 and row.ordered is False and row.em_1d == pytest.approx(kv["em_1d"])
    assert row.note == 2 and "Space group" not in row.key_value_pairs  # not a valid key: dropped
    assert "ordering_tolerance" not in kv  # a fixed count
    # drawn until the barriers settle: the row says to what, and its first orderings are the same
    settled = run_unit(unit, n_orderings=4, seed=0, ordering_tolerance=100.0)["key_value_pairs"]
    assert settled["n_orderings"] == 2 and settled["ordering_tolerance"] == 100.0
    assert settled["em_1d"] == pytest.approx(kv["em_1d"], abs=1e-12)


def test_screen_refuses_a_bad_ordering_tolerance(tmp_path, capsys):
    db = tmp_path / "r.db"
    with pytest.raises(SystemExit) as exit_:  # argparse's usage error
        main(["screen", str(EXAMPLES / "LiCoO2.cif"), "--ion", "Li", "--db", str(db),
              "--ordering-tolerance", "fast"])
    assert exit_.value.code == 2
    assert "'fast' is neither a number of eV nor 'off'" in capsys.readouterr().err
    assert not db.exists()


def test_rows_carry_the_conductivity_and_rank_by_it(reference, tmp_path, one_torch_thread):
    import csv

    from ase_em.crystals.analyzer import MigrationBarrierAnalyzer
    from ase_em.predictor import EmPredictor
    from ase_em.screening.work import CONDUCTIVITY_SAMPLES

    rows = _rows(reference)
    lfp = next(r for (s, _), r in rows.items() if Path(s).name == "LiFePO4.cif")
    predictor = EmPredictor.from_pretrained(SCREEN_MODEL)
    an = MigrationBarrierAnalyzer(EXAMPLES / "LiFePO4.cif", "Li", predictor=predictor)
    res = an.conductivity([300.0], n_samples=CONDUCTIVITY_SAMPLES, seed=0)
    assert lfp["log10_sigma_300"] == pytest.approx(res.log10_sigma[0], abs=1e-9)
    assert lfp["log10_sigma_300_std"] == pytest.approx(res.log10_sigma_std[0], abs=1e-9)
    assert lfp["activation_energy"] == pytest.approx(res.activation_energy, abs=1e-9)
    out_csv, out_png = tmp_path / "rank.csv", tmp_path / "rank.png"
    assert main(["screen-report", str(reference), "--csv", str(out_csv), "--png", str(out_png),
                 "--by", "log10_sigma_300"]) == 0
    ranked = [r for r in csv.DictReader(out_csv.open()) if r["rank"]]
    sigma = [float(r["log10_sigma_300"]) for r in ranked]
    assert len(sigma) == 3 and sigma == sorted(sigma, reverse=True)  # highest conductivity first


def test_only_long_screens_compile_their_workers(monkeypatch):
    from ase_em.screening.run import COMPILE_UNITS_PER_WORKER, screen_compile_mode
    from ase_em.screening.work import get_predictor

    monkeypatch.delenv("ASE_EM_COMPILE", raising=False)
    assert screen_compile_mode(COMPILE_UNITS_PER_WORKER * 2, 2) == "always"
    assert screen_compile_mode(COMPILE_UNITS_PER_WORKER * 2 - 1, 2) == "never"  # not after 1000 hops either
    assert screen_compile_mode(254, 2) == "never"  # the OBELiX screen: compiling costs more than it saves
    monkeypatch.setenv("ASE_EM_COMPILE", "never")
    assert screen_compile_mode(10_000, 2) is None  # the user's setting wins
    assert get_predictor(None, 1, "never").compile == "never"  # what a worker is given, it loads


def test_local_workers_come_from_a_fork_server_that_has_the_imports(monkeypatch):
    import importlib.util
    import sys

    from ase_em.screening.workers import PRELOAD, worker_context

    linux = sys.platform.startswith("linux")
    assert worker_context().get_start_method() == ("forkserver" if linux else "spawn")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert worker_context().get_start_method() == "spawn"
    assert importlib.util.find_spec(PRELOAD) is not None


def test_the_parent_starts_the_worker_server_before_reading_inputs_and_never_loads_torch(tmp_path):
    """The workers' imports run while the parent hashes the inputs; the parent itself stays light."""
    script = f"""
import sys, multiprocessing.forkserver as fs
import ase_em.screening.inputs as inputs
from ase_em.screening import screen
from ase_em.screening.run import _model_name
seen = []
real = inputs.expand_inputs
def spy(x):
    seen.append(fs._forkserver._forkserver_pid is not None)
    raise SystemExit(0)
import ase_em.screening.run as run
run.expand_inputs = spy
try:
    screen([{str(EXAMPLES / "LiCoO2.cif")!r}], ions="Li", db={str(tmp_path / "s.db")!r})
except SystemExit:
    pass
print(_model_name(None), seen, "torch" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    linux = sys.platform.startswith("linux")
    assert done.stdout.split() == ["alignn-em-v1", f"[{linux}]", "False"], done.stdout + done.stderr[-2000:]
