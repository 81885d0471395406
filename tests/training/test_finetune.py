"""`ase-em finetune` and ase_em.training.finetune: strategies, outputs, resume, errors (tiny model)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import ase_em
from ase_em.cli.main import main
from ase_em.errors import AseEmError
from ase_em.hops.hop import Hop
from ase_em.model.weights import load_model, sha256
from ase_em.training.ensemble import predict_graphs
from ase_em.training.finetune import EpochLog, default_strategy
from tests.conftest import make_tiny_model
from tests.training.test_data import lif_hop, write_band_extxyz, write_hops_csv

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def hops_csv(tmp_path_factory) -> Path:
    path, _ = write_hops_csv(tmp_path_factory.mktemp("hops"), n=8)
    return path


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("base"), n_members=3)


@pytest.fixture(scope="module")
def finished(hops_csv, base_dir, tmp_path_factory) -> Path:
    """A 2-epoch partial fine-tune through the CLI."""
    out = tmp_path_factory.mktemp("runs") / "ft"
    argv = ["finetune", str(hops_csv), "--from", str(base_dir), "--output", str(out),
            "--strategy", "partial", "--epochs", "2", "--batch-size", "4", "--lr", "3e-3", "--threads", "1"]
    assert main(argv) == 0
    return out


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def state(directory: Path) -> dict[str, torch.Tensor]:
    return torch.load(directory / "model.pt", weights_only=True)


# ---------------------------------------------------------------------- a finished run


def test_finetune_writes_a_model_that_predicts_differently(finished, base_dir, hops_csv, capsys):
    out = finished
    for name in ("model.pt", "card.json", "log.csv", "predictions.csv", "parity.png"):
        assert (out / name).is_file(), name
    assert not (out / ".work").exists()  # checkpoints of a finished run are removed
    assert (out / "parity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = json.loads((out / "card.json").read_text())
    base_card = json.loads((base_dir / "card.json").read_text())
    assert card["base_model"] == {"name": "tiny-test", "path": str(base_dir), "sha256": base_card["sha256"]}
    assert card["data"]["sha256"] == sha256(hops_csv) and card["data"]["n"] == 8
    assert card["data"]["format"] == "csv"
    assert card["graph"] == base_card["graph"]  # graph settings always come from the base
    assert card["strategy"] == "partial" and card["strategy_choice"] == "given"
    assert card["finetune"]["lr"] == 3e-3 and card["finetune"]["epochs"] == 2
    assert card["command"].startswith("ase-em finetune ") and "--strategy partial" in card["command"]
    assert card["split"]["scheme"] == "random split, seed 0: 6 train / 2 validation hops"
    assert len(card["split"]["validation_ids"]) == 2
    assert card["n_members"] == 3 and len(card["members"]) == 3
    for m in card["members"]:  # base scaling kept
        assert m["target_std"] == pytest.approx(0.5) and m["n_train"] == 6 and m["epochs_run"] == 2
    metrics = card["metrics"]
    assert metrics["validation"]["n"] == 2 and metrics["train"]["n"] == 6
    assert np.isfinite(metrics["validation"]["mae"]) and np.isfinite(metrics["base_validation"]["mae"])

    log = read_log(out / "log.csv")
    assert list(log[0]) == ["member", "epoch", "train_mae", "val_mae", "lr"]
    assert [(r["member"], r["epoch"]) for r in log] == [(str(m), str(e)) for m in range(3) for e in (1, 2)]
    assert all(float(r["train_mae"]) > 0 and float(r["val_mae"]) > 0 for r in log)
    for m, member in enumerate(card["members"]):
        best = min(float(r["val_mae"]) for r in log if r["member"] == str(m))
        assert member["best_val_mae"] == pytest.approx(best, abs=1e-6)

    # the same hop predicted through the API and through `ase-em predict --model DIR`
    ini, fin = lif_hop(3)
    hop = Hop.from_endpoints(ini, fin)
    tuned = ase_em.EmPredictor.from_pretrained(out).predict_one(hop)
    base = ase_em.EmPredictor.from_pretrained(base_dir).predict_one(hop)
    assert abs(tuned.em - base.em) > 1e-3, "fine-tuning did not change the prediction"
    assert tuned.em_std is not None and tuned.em_std > 0
    structures = hops_csv.parent / "structures"
    capsys.readouterr()
    code = main(["predict", str(structures / "3_initial.vasp"), str(structures / "3_final.vasp"),
                 "--model", str(out), "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["em"] == pytest.approx(tuned.em, abs=1e-4) and printed["model"] == "ft"
    # predictions.csv holds the same numbers for the same hop
    with open(out / "predictions.csv") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert float(rows["LiF-3"]["prediction"]) == pytest.approx(tuned.em, abs=1e-4)
    assert float(rows["LiF-3"]["base_prediction"]) == pytest.approx(base.em, abs=1e-4)
    assert sum(r["split"] == "validation" for r in rows.values()) == 2


def test_partial_trains_only_the_last_layers(finished, base_dir):
    before, after = state(base_dir), state(finished)
    assert before.keys() == after.keys()
    changed = {k.split(".")[2] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"gcn_layers", "head"}


def test_evaluate_accepts_the_finetuned_model(finished, tmp_path, capsys):
    from tests.training.test_data import jarvis

    records = [{"sys_name": f"h{k}", "target": 0.5, "atoms_ini": jarvis(i), "atoms_fin": jarvis(f)}
               for k, (i, f) in enumerate(lif_hop(j) for j in range(2))]
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(records))
    capsys.readouterr()
    assert main(["evaluate", str(path), "--model", str(finished)]) == 0
    assert "model ft on" in capsys.readouterr().out


def test_overwrite_rules(finished, base_dir, hops_csv, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    digest = sha256(out / "model.pt")
    argv = ["finetune", str(hops_csv), "--from", str(base_dir), "--output", str(out),
            "--strategy", "head", "--epochs", "1", "--seed", "1"]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "already holds a model (use --overwrite" in err and "Traceback" not in err
    assert sha256(out / "model.pt") == digest
    assert main([*argv, "--overwrite"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["strategy"] == "head" and card["finetune"]["seed"] == 1
    assert sha256(out / "model.pt") != digest
    # the base model's own directory is never an output
    assert main(["finetune", str(hops_csv), "--from", str(base_dir), "--output", str(base_dir),
                 "--overwrite", "--epochs", "1"]) == 2
    assert "is the base model's directory" in capsys.readouterr().err
    # contradictory split options
    assert main([*argv[:6], "--output", str(tmp_path / "x"), "--folds", "2", "--val-fraction", "0.3"]) == 2
    assert "not both" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------- strategies and splits


def test_head_strategy_is_the_default_for_few_hops(hops_csv, base_dir, tmp_path):
    assert [default_strategy(n) for n in (1, 49, 50, 299, 300, 5000)] == [
        "head", "head", "partial", "partial", "full", "full"]
    predictor = ase_em.finetune(hops_csv, base=base_dir, output=tmp_path / "h", epochs=2, progress=False)
    card = predictor.card
    assert card["strategy"] == "head" and card["strategy_choice"].startswith("default for 8 hops")
    assert card["finetune"]["lr"] == 1e-3
    before, after = state(base_dir), state(tmp_path / "h")
    changed = {k.split(".")[2] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"head"}
    # the cached trunk features give the same answer as the full network
    loaded = load_model(tmp_path / "h")
    card_val = {m["best_val_mae"] for m in card["members"]}
    assert len(card_val) == 3 and all(v > 0 for v in card_val)
    assert predictor.model.card["sha256"] == loaded.card["sha256"]


def test_folds_give_out_of_fold_figures(hops_csv, base_dir, tmp_path):
    out = tmp_path / "cv"
    predictor = ase_em.finetune(hops_csv, base=base_dir, output=out, strategy="head", folds=4, epochs=2,
                                batch_size=4, lr=2e-3, progress=False)
    card = predictor.card
    assert card["n_members"] == 4 and [m["base_member"] for m in card["members"]] == [0, 1, 2, 0]
    assert all(m["n_train"] == 6 and m["n_validation"] == 2 for m in card["members"])
    assert card["split"]["scheme"] == "4-fold CV, seed 0: member k held out fold k"
    folds = card["split"]["folds"]
    assert sorted(sum(folds, [])) == sorted(f"LiF-{k}" for k in range(8))
    # out-of-fold: each hop predicted by the member that never trained on it
    with open(out / "predictions.csv") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    from ase_em.training.data import load_labelled
    from ase_em.training.ensemble import build_graphs

    data = load_labelled(hops_csv)
    graphs = build_graphs(data, predictor.model.graph_config)
    for k, ids in enumerate(folds):
        idx = [data.names.index(i) for i in ids]
        pred = predict_graphs(predictor.model.ensemble.members[k], [graphs[i] for i in idx])
        for i, p in zip(ids, pred, strict=True):
            assert float(rows[i]["out_of_fold"]) == pytest.approx(float(p), abs=1e-4)
    oof = np.array([float(rows[i]["out_of_fold"]) for i in data.names])
    assert card["metrics"]["cv_out_of_fold"]["mae"] == pytest.approx(
        float(np.abs(oof - np.array(data.targets)).mean()), abs=1e-4)


@pytest.mark.slow
def test_early_stopping_keeps_the_best_epoch(hops_csv, base_dir, tmp_path):
    out = tmp_path / "es"
    predictor = ase_em.finetune(hops_csv, base=base_dir, output=out, strategy="head", epochs=12, patience=2,
                                lr=0.05, batch_size=2, val_fraction=0.25, progress=False)
    card = predictor.card
    log = read_log(out / "log.csv")
    from ase_em.training.data import load_labelled
    from ase_em.training.ensemble import build_graphs

    data = load_labelled(hops_csv)
    val = [data.names.index(i) for i in card["split"]["validation_ids"]]
    graphs = build_graphs(data, predictor.model.graph_config)
    targets = np.array(data.targets)[val]
    for m, member in enumerate(card["members"]):
        vals = [float(r["val_mae"]) for r in log if r["member"] == str(m)]
        assert len(vals) == member["epochs_run"] <= 12
        assert member["best_epoch"] == int(np.argmin(vals)) + 1
        if member["stopped_early"]:
            assert member["epochs_run"] - member["best_epoch"] == 2
        # the saved member is the best epoch's, not the last one's
        pred = predict_graphs(predictor.model.ensemble.members[m], [graphs[i] for i in val])
        assert float(np.abs(pred - targets).mean()) == pytest.approx(member["best_val_mae"], abs=1e-5)
    assert any(m["stopped_early"] for m in card["members"])


# ---------------------------------------------------------------------- formats


def test_images_csv_and_band_extxyz(base_dir, tmp_path, capsys):
    neb_csv, _ = write_hops_csv(tmp_path / "neb", n=4, images=True)
    assert main(["finetune", str(neb_csv), "--from", str(base_dir), "--output", str(tmp_path / "a"),
                 "--epochs", "1", "--val-fraction", "0"]) == 0
    out = capsys.readouterr().out
    assert "head fine-tune (default for 4 hops" in out and "no validation" in out
    card_a = json.loads((tmp_path / "a/card.json").read_text())
    assert card_a["metrics"]["train"]["n"] == 4 and "validation" not in card_a["metrics"]

    bands, _ = write_band_extxyz(tmp_path / "bands.extxyz", n=4)
    assert main(["finetune", str(bands), "--from", str(base_dir), "--output", str(tmp_path / "b"),
                 "--epochs", "1", "--val-fraction", "0"]) == 0
    card_b = json.loads((tmp_path / "b/card.json").read_text())
    assert card_b["data"]["format"] == "band" and card_b["data"]["n"] == 4
    # the same four hops with the same barriers: the same fine-tuned model either way
    with open(tmp_path / "a/predictions.csv") as fa, open(tmp_path / "b/predictions.csv") as fb:
        pa = [float(r["prediction"]) for r in csv.DictReader(fa)]
        pb = [float(r["prediction"]) for r in csv.DictReader(fb)]
    np.testing.assert_allclose(pa, pb, atol=1e-4)


def test_broken_csv_names_every_row_and_writes_nothing(base_dir, tmp_path, capsys):
    write_hops_csv(tmp_path, n=2)
    s = "structures"
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "id,initial,final,em\n"
        f"a,{s}/0_initial.vasp,{s}/0_final.vasp,0.4\n"
        f"b,{s}/0_initial.vasp,{s}/missing.vasp,0.4\n"
        f"c,{s}/1_initial.vasp,{s}/1_final.vasp,high\n"
        f"a,{s}/1_initial.vasp,{s}/1_final.vasp,-3\n"
        f"d,{s}/1_initial.vasp,{s}/1_initial.vasp,0.2\n"
    )
    out = tmp_path / "never"
    capsys.readouterr()
    code = main(["finetune", str(bad), "--from", str(base_dir), "--output", str(out)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    err = captured.err.strip().splitlines()
    assert "Traceback" not in captured.err
    assert err[0] == f"ase-em finetune: error: {bad}: 4 bad row(s)"
    assert "row 2 (line 3, id 'b'): column 'final': no such file" in err[1]
    assert "row 3 (line 4, id 'c'): column 'em': 'high' is not a number" in err[2]
    assert "row 4 (line 5, id 'a'): column 'id': duplicate of row 1; column 'em': -3 eV is negative" in err[3]
    assert "row 5 (line 6, id 'd'): column 'initial/final': no atom moves" in err[4]
    assert len(err) == 5
    assert not out.exists()


# ---------------------------------------------------------------------- resume


FULL = dict(strategy="full", epochs=3, batch_size=3, lr=2e-3, seed=7, progress=False)


@pytest.fixture(scope="module")
def full_ref(hops_csv, base_dir, tmp_path_factory) -> Path:
    """An uninterrupted full fine-tune, the reference of the resume tests."""
    out = tmp_path_factory.mktemp("ref") / "ref"
    ase_em.finetune(hops_csv, output=out, base=base_dir, **FULL)
    return out


def assert_same_run(out: Path, ref: Path) -> None:
    a, b = state(ref), state(out)
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-5, rtol=0)
    log, ref_log = read_log(out / "log.csv"), read_log(ref / "log.csv")
    assert [(r["member"], r["epoch"]) for r in log] == [(r["member"], r["epoch"]) for r in ref_log]
    for r, q in zip(log, ref_log, strict=True):  # CPU sums differ in the last bit between any two runs
        assert float(r["val_mae"]) == pytest.approx(float(q["val_mae"]), abs=1e-5)
        assert float(r["train_mae"]) == pytest.approx(float(q["train_mae"]), abs=1e-5)
    hop = Hop.from_endpoints(*lif_hop(5))
    resumed = ase_em.EmPredictor.from_pretrained(out).predict_one(hop)
    assert resumed.em == pytest.approx(ase_em.EmPredictor.from_pretrained(ref).predict_one(hop).em, abs=1e-5)
    assert not (out / ".work").exists()


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_model(hops_csv, base_dir, full_ref, tmp_path):
    common = dict(base=base_dir, **FULL)
    before, after = state(base_dir), state(full_ref)
    for k in before:  # "full" trains every weight matrix
        if k.endswith(".weight") and after[k].dim() == 2:
            assert not torch.equal(before[k], after[k]), k

    seen: list[EpochLog] = []

    def interrupt(row: EpochLog) -> None:
        seen.append(row)
        if (row.member, row.epoch) == (1, 2):  # Ctrl-C in the middle of the second member
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        ase_em.finetune(hops_csv, output=out, callback=interrupt, **common)
    assert len(seen) == 5
    assert (out / ".work/finetune.ckpt").is_file() and (out / ".work/member0.pt").is_file()
    assert not (out / "model.pt").exists()
    # a plain rerun refuses to throw the checkpoint away
    with pytest.raises(AseEmError, match="use --resume to continue it or --overwrite"):
        ase_em.finetune(hops_csv, output=out, **common)
    # a different setting cannot resume this checkpoint
    with pytest.raises(AseEmError, match="different run"):
        ase_em.finetune(hops_csv, output=out, resume=True, **{**common, "lr": 1e-3})
    # resume through the CLI, with the same settings
    argv = ["finetune", str(hops_csv), "--from", str(base_dir), "--output", str(out), "--strategy", "full",
            "--epochs", "3", "--batch-size", "3", "--lr", "2e-3", "--seed", "7", "--resume", "--threads", "1"]
    assert main(argv) == 0
    assert_same_run(out, full_ref)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_model(hops_csv, base_dir, full_ref, tmp_path):
    """SIGKILL (no handler runs) in a child process after 4 member-epochs, then --resume."""
    import subprocess
    import sys

    out = tmp_path / "killed"
    script = (
        "import os, signal, torch, ase_em\n"
        "torch.set_num_threads(1)\n"
        "def kill(row):\n"
        "    if (row.member, row.epoch) == (1, 1):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        f"ase_em.finetune({str(hops_csv)!r}, output={str(out)!r}, base={str(base_dir)!r}, callback=kill,"
        f" **{FULL!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]
    assert (out / ".work/finetune.ckpt").is_file() and not (out / "model.pt").exists()
    ase_em.finetune(hops_csv, output=out, base=base_dir, resume=True, **FULL)
    assert_same_run(out, full_ref)


def test_finetune_is_one_function_whatever_was_imported_first(hops_csv, base_dir, tmp_path):
    import ase_em.training.finetune as package

    assert ase_em.finetune is package.finetune  # a plain function, not a callable module
    predictor = ase_em.finetune(hops_csv, base=base_dir, output=tmp_path / "m", epochs=1, progress=False)
    assert isinstance(predictor, ase_em.EmPredictor)
    with pytest.raises(AseEmError, match="--epochs must be >= 1"):
        ase_em.finetune(hops_csv, base=base_dir, output=tmp_path / "z", epochs=0)
    assert not (tmp_path / "z").exists()


def test_example_script_runs(base_dir, tmp_path, capsys):
    import importlib.util

    from tests.conftest import EXAMPLES

    spec = importlib.util.spec_from_file_location("finetune_example", EXAMPLES / "finetune_example.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    tuned = example.main(["--from", str(base_dir), "--output", str(tmp_path / "ex"), "--epochs", "1"])
    out = capsys.readouterr().out
    assert "9 train / 3 validation hops" in out and "LiFePO4 Li hop: base" in out
    assert tuned.card["data"]["n"] == 12 and tuned.card["strategy"] == "head"
