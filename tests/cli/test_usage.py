"""Usage errors of `ase-em`: one line on stderr, exit code 2, before torch is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ase_em._runtime.threads import DEFAULT_THREADS, THREADS_ENV, resolve_threads
from ase_em.cli.main import main
from ase_em.errors import AseEmError
from tests.conftest import EXAMPLES

LFP = EXAMPLES / "LiFePO4"
HOPS = EXAMPLES / "finetune" / "hops.csv"


def one_line_exit_2(argv: list[str], capsys) -> str:
    """Run main(argv); argparse errors raise SystemExit(2), ours return 2. The one stderr line."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "ase-em: error: the following arguments are required: COMMAND"),
        (["predict", "a", "b", "--threads", "-1"], "argument --threads: must be >= 1 (got -1)"),
        (["predict", "a", "b", "--threads", "0"], "argument --threads: must be >= 1 (got 0)"),
        (["predict", "a", "b", "--threads", "two"], "argument --threads: 'two' is not an integer"),
        (["network", str(LFP / "initial.vasp"), "--ion", "Li", "--threads", "-1"], "must be >= 1"),
        (["finetune", str(HOPS), "--output", "{tmp}/m", "--threads", "-2"], "must be >= 1 (got -2)"),
        (["train", "x.json", "--output", "{tmp}/m", "--threads", "0"], "must be >= 1 (got 0)"),
        (["predict", "missing.vasp", str(LFP / "final.vasp")], "missing.vasp: no such file (initial)"),
        (["predict", str(LFP / "initial.vasp")], "give INITIAL and FINAL structure files, or --images"),
        (
            ["predict", str(LFP / "initial.vasp"), str(LFP / "final.vasp"), "--images", "x.extxyz"],
            "give either INITIAL FINAL or --images FILE, not both",
        ),
        (["evaluate", "nothing.json"], "nothing.json: no such file (data)"),
        (["finetune", "nothing.csv", "--output", "{tmp}/m"], "nothing.csv: no such file (data)"),
        (["finetune", str(HOPS), "--output", "{tmp}/afile/m"], "afile is a file, not a folder"),
        (
            ["finetune", str(HOPS), "--output", "{tmp}/m", "--workdir", "{tmp}/afile"],
            "--workdir {tmp}/afile: is a file, not a folder",
        ),
        (["pretrain", "{tmp}/afile", "--output", "{tmp}/m"], "no such folder (data)"),
        (
            ["network", str(LFP / "initial.vasp"), "--ion", "Li", "--plot", "{tmp}/nofolder/net.png"],
            "--plot {tmp}/nofolder/net.png: no such folder {tmp}/nofolder",
        ),
        (
            ["evaluate", str(HOPS), "--predictions", "{tmp}/nofolder/p.csv"],
            "--predictions {tmp}/nofolder/p.csv: no such folder",
        ),
    ],
)
def test_usage_error_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    (tmp_path / "afile").write_text("a regular file\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    line = one_line_exit_2(argv, capsys)
    assert message.replace("{tmp}", str(tmp_path)) in line
    assert line.startswith("ase-em")
    assert not (tmp_path / "m").exists()  # nothing written: no folder, no .work/finetune-settings.json


def test_usage_errors_come_before_torch_is_imported(tmp_path):
    """A fresh interpreter: no usage error imports torch, pymatgen or ASE's file readers."""
    (tmp_path / "afile").write_text("x\n")
    script = f"""
import sys
from ase_em.cli.main import main
codes = []
for argv in (
    ["predict", "a", "b", "--threads", "-1"],
    ["predict", "a", "b"],
    ["finetune", {str(HOPS)!r}, "--output", {str(tmp_path / "afile" / "m")!r}],
    ["evaluate", {str(tmp_path / "empty.json")!r}],
):
    try:
        codes.append(main(argv))
    except SystemExit as exc:
        codes.append(exc.code)
heavy = [m for m in ("torch", "pymatgen.core", "ase.io", "alignn") if m in sys.modules]
print(codes, heavy)
"""
    (tmp_path / "empty.json").write_text("[]\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[2, 2, 2, 2] []", done.stdout + done.stderr[-2000:]
    assert "no records" in done.stderr


def test_unwritable_output_is_one_line(monkeypatch, tmp_path, capsys):
    """A read-only folder (as root chmod does not stop writes, so os.access is patched)."""
    import os

    real = os.access
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == ro else real(p, mode))
    line = one_line_exit_2(["finetune", str(HOPS), "--output", str(ro / "m"), "--epochs", "1"], capsys)
    assert line == f"ase-em finetune: error: --output {ro / 'm'}: not writable ({ro} is not writable)"
    line = one_line_exit_2(
        ["finetune", str(HOPS), "--output", str(tmp_path / "m2"), "--workdir", str(ro / "w")], capsys
    )
    assert f"--workdir {ro / 'w'}: not writable" in line
    assert not (tmp_path / "m2").exists()


def test_evaluate_on_an_empty_file_is_an_error_not_nan(tmp_path, capsys):
    empty = tmp_path / "empty.json"
    empty.write_text("[]\n")
    line = one_line_exit_2(["evaluate", str(empty)], capsys)
    assert line == f"ase-em evaluate: error: {empty}: no records (an empty JSON list)"
    assert "nan" not in line.lower()


def test_threads_default_env_and_bad_values(monkeypatch, capsys):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert resolve_threads() == DEFAULT_THREADS == 1
    assert resolve_threads(3) == 3
    monkeypatch.setenv(THREADS_ENV, "2")
    assert resolve_threads() == 2 and resolve_threads(1) == 1  # --threads wins over the variable
    for bad in ("0", "-1", "many"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(AseEmError, match=f"{THREADS_ENV}='{bad}': must be an integer >= 1"):
            resolve_threads()
    monkeypatch.setenv(THREADS_ENV, "0")
    line = one_line_exit_2(["predict", str(LFP / "initial.vasp"), str(LFP / "final.vasp")], capsys)
    assert line == f"ase-em predict: error: {THREADS_ENV}='0': must be an integer >= 1"
    line = one_line_exit_2(["info"], capsys)  # info reports the threads: it checks the variable too
    assert line == f"ase-em info: error: {THREADS_ENV}='0': must be an integer >= 1"
    with pytest.raises(AseEmError, match="--threads must be an integer >= 1"):
        resolve_threads(0)


def test_predict_uses_one_thread_by_default(tiny_model_dir, monkeypatch, capsys):
    import torch

    monkeypatch.delenv(THREADS_ENV, raising=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert main(["predict", str(LFP / "initial.vasp"), str(LFP / "final.vasp"), "--model",
                     str(tiny_model_dir), "--json"]) == 0
        assert torch.get_num_threads() == 1  # the default, not torch's one per core
        json.loads(capsys.readouterr().out)
    finally:
        torch.set_num_threads(before)


def test_train_and_pretrain_refuse_a_locked_output(mpt_dir, tmp_path, capsys):
    from ase.io import read

    from ase_em._runtime.folders import folder_lock

    ini, fin = read(LFP / "initial.vasp"), read(LFP / "final.vasp")
    record = {
        "sys_name": "lfp",
        "target": 0.27,
        "atoms_ini": {"lattice_mat": ini.cell.tolist(), "coords": ini.positions.tolist(),
                      "elements": ini.get_chemical_symbols(), "cartesian": True},
    }
    record["atoms_fin"] = {**record["atoms_ini"], "coords": fin.positions.tolist()}
    data = tmp_path / "data.json"
    data.write_text(json.dumps([record]))
    out = tmp_path / "busy"
    with folder_lock(out):
        train = ["train", str(data), "--output", str(out)]
        for argv in (train, ["pretrain", str(mpt_dir), "--output", str(out)]):
            line = one_line_exit_2(argv, capsys)
            assert f"output folder {out}: another ase-em run is writing it" in line
    assert not out.exists()
