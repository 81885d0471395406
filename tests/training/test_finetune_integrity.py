"""Training data integrity of `ase-em finetune`: plausible barriers, repeated hops, structure-file
checksums in the graph cache and the checkpoint, and a lock on the output folder (tiny model)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ase_em
from ase_em._runtime.folders import LOCK_NAME, folder_lock
from ase_em.cli.main import main
from ase_em.errors import AseEmError, FolderLockedError
from ase_em.training.finetune import EpochLog
from tests.conftest import make_tiny_model
from tests.training.test_data import lif_hop, write_hops_csv

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("base"), n_members=2)


def hops(tmp_path: Path, n: int = 6) -> Path:
    path, _ = write_hops_csv(tmp_path / "data", n=n)
    return path


def run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def quick(data: Path, out: Path, base: Path, *extra: str) -> list[str]:
    return ["finetune", str(data), "--from", str(base), "--output", str(out), "--strategy", "head",
            "--epochs", "1", "--val-fraction", "0", "--threads", "1", *extra]


def predictions(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "predictions.csv") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


# ---------------------------------------------------------------------- barriers and repeated hops


def test_implausible_barrier_is_refused_naming_file_row_and_id(base_dir, tmp_path, capsys):
    data = hops(tmp_path)
    lines = data.read_text().splitlines()
    lines[4] = lines[4].rsplit(",", 1)[0] + ",50"  # row 4: 50 eV (meV typed as eV, or a total energy)
    lines[2] = lines[2].rsplit(",", 1)[0] + ",-0.2"
    data.write_text("\n".join(lines) + "\n")
    code, err = run(quick(data, tmp_path / "m", base_dir), capsys)
    assert code == 2
    assert f"{data}: row 4 (line 5, id 'LiF-3'): column 'em': 50 eV is above 10 eV" in err
    assert f"{data}: row 2 (line 3, id 'LiF-1'): column 'em': -0.2 eV is negative" in err
    assert "--allow-implausible-barriers" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()
    # asked for: trained on, and the flag is on the card's command
    code, err = run(quick(data, tmp_path / "m", base_dir, "--allow-implausible-barriers"), capsys)
    assert code == 0, err
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert card["data"]["n"] == 6 and "--allow-implausible-barriers" in card["command"]
    assert float(predictions(tmp_path / "m")["LiF-3"]["target"]) == 50.0


def test_the_same_hop_under_two_ids_is_warned_and_recorded(base_dir, tmp_path, capsys, caplog):
    data = hops(tmp_path, n=4)
    struct = data.parent / "structures"
    for end in ("initial", "final"):  # a copy of hop 0 under another file name: same geometry
        shutil.copy(struct / f"0_{end}.vasp", struct / f"copy_{end}.vasp")
    with open(data, "a") as f:
        f.write("again,structures/0_initial.vasp,structures/0_final.vasp,0.25\n")  # hop 0's label
        f.write("copy,structures/copy_initial.vasp,structures/copy_final.vasp,1.9\n")  # another label
    code, err = run(quick(data, tmp_path / "m", base_dir), capsys)
    assert code == 0, err
    # logged as warnings (the CLI prints them on stderr)
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith("warning:")]
    assert len(warnings) == 2, warnings
    assert (
        "row 1 (id 'LiF-0') and row 5 (id 'again') are the same hop (same structures, barrier 0.25 eV)"
        in warnings[0]
    )
    assert (
        "row 1 (id 'LiF-0') and row 6 (id 'copy') are the same hop (same structures) with different "
        "barriers, 0.25 and 1.9 eV" in warnings[1]
    )
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert [w.split(": ", 1)[1] for w in card["data"]["warnings"]] == [w.split(": ", 2)[2] for w in warnings]
    assert card["data"]["structure_files"]["structures/copy_final.vasp"] == card["data"]["structure_files"][
        "structures/0_final.vasp"
    ]


# ---------------------------------------------------------------------- structure files: cache, resume


def swap_in_hop(data: Path, target: int, source: int = 11) -> None:
    """Overwrite hop ``target``'s structure files with LiF hop ``source`` (the CSV is unchanged)."""
    from ase.io import write

    struct = data.parent / "structures"
    for end, atoms in zip(("initial", "final"), lif_hop(source), strict=True):
        write(struct / f"{target}_{end}.vasp", atoms, format="vasp", direct=True)


@pytest.mark.slow
def test_graph_cache_notices_an_edited_structure_file(base_dir, tmp_path, capsys):
    data = hops(tmp_path)
    work = tmp_path / "wd"
    assert run(quick(data, tmp_path / "a", base_dir, "--workdir", str(work)), capsys)[0] == 0
    assert (work / "graphs.pt").is_file()  # a named work folder keeps its graph cache
    csv_before = data.read_bytes()
    swap_in_hop(data, target=2)
    assert data.read_bytes() == csv_before
    assert run(quick(data, tmp_path / "b", base_dir, "--workdir", str(work)), capsys)[0] == 0
    assert run(quick(data, tmp_path / "fresh", base_dir), capsys)[0] == 0  # no cache at all
    a, b, fresh = (predictions(tmp_path / d)["LiF-2"] for d in ("a", "b", "fresh"))
    # the base model's prediction depends only on the graph: the edited structure's, not the cached one
    assert b["base_prediction"] == fresh["base_prediction"] != a["base_prediction"]
    card_a = json.loads((tmp_path / "a" / "card.json").read_text())
    card_b = json.loads((tmp_path / "b" / "card.json").read_text())
    assert card_a["data"]["sha256"] == card_b["data"]["sha256"]  # same CSV ...
    changed = {k for k in card_a["data"]["structure_files"]
               if card_a["data"]["structure_files"][k] != card_b["data"]["structure_files"][k]}
    assert changed == {"structures/2_initial.vasp", "structures/2_final.vasp"}  # ... other structures


def test_resume_refuses_a_checkpoint_of_edited_structures(base_dir, tmp_path, capsys):
    data = hops(tmp_path)
    out = tmp_path / "m"
    settings = dict(base=base_dir, strategy="full", epochs=2, batch_size=3, val_fraction=0, progress=False)

    def interrupt(row: EpochLog) -> None:
        if (row.member, row.epoch) == (0, 1):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ase_em.finetune(data, output=out, callback=interrupt, **settings)
    assert (out / ".work" / "finetune.ckpt").is_file()
    swap_in_hop(data, target=1)
    argv = ["finetune", str(data), "--from", str(base_dir), "--output", str(out), "--strategy", "full",
            "--epochs", "2", "--batch-size", "3", "--val-fraction", "0", "--resume", "--threads", "1"]
    code, err = run(argv, capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        f"ase-em finetune: error: {out / '.work'}: structure file(s) changed since the checkpoint was "
        "written: structures/1_final.vasp, structures/1_initial.vasp; the checkpoint was trained on the "
        "old structures: use --overwrite to start over with the new ones, or restore the files"
    ]
    assert not (out / "model.pt").exists()
    # --overwrite starts over on the new structures
    assert main([*[a for a in argv if a != "--resume"], "--overwrite"]) == 0


# ---------------------------------------------------------------------- the output lock


def test_a_second_run_into_a_locked_folder_gets_one_line(base_dir, tmp_path, capsys):
    """Another process holds the folder (a run in progress); once it dies, even by SIGKILL, the
    folder is free again: the OS drops the lock with the process."""
    data = hops(tmp_path, n=3)
    out = tmp_path / "m"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom ase_em._runtime.folders import folder_lock\n"
         f"with folder_lock({str(out)!r}):\n    print('locked', flush=True)\n    time.sleep(120)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        (out / ".work").mkdir()
        (out / ".work" / "finetune.ckpt").write_bytes(b"a run in progress")  # the staggered case
        code, err = run(quick(data, out, base_dir), capsys)
        assert code == 2
        assert err.strip().splitlines() == [
            f"ase-em finetune: error: output folder {out}: another ase-em run is writing it (it holds "
            f"{out / LOCK_NAME}); wait for that run to end or choose another folder"
        ]
        assert (out / ".work" / "finetune.ckpt").read_bytes() == b"a run in progress"  # untouched
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    shutil.rmtree(out / ".work")
    start = time.perf_counter()
    code, err = run(quick(data, out, base_dir), capsys)  # the killed holder left no stale lock
    assert code == 0, err
    assert time.perf_counter() - start < 120


def test_folder_lock_in_process_and_cleanup(tmp_path):
    out = tmp_path / "new"
    with folder_lock(out):
        assert (out / LOCK_NAME).is_file()
        with pytest.raises(FolderLockedError, match="another ase-em run is writing it"):
            with folder_lock(out):
                pass
    assert not out.exists()  # created for a run that wrote nothing: removed again
    with pytest.raises(AseEmError, match="is a file, not a folder"):
        (tmp_path / "f").write_text("x")
        with folder_lock(tmp_path / "f" / "m"):
            pass


def test_api_threads_below_one_write_nothing(base_dir, tmp_path):
    data = hops(tmp_path, n=3)
    for bad in (0, -2):
        with pytest.raises(AseEmError, match=f"--threads must be an integer >= 1 \\(got {bad}\\)"):
            ase_em.finetune(data, output=tmp_path / "m", base=base_dir, threads=bad)
    assert not (tmp_path / "m").exists()
