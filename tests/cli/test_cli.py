"""The ase-em command line, through main(argv)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ase_em.cli.main import main
from tests.conftest import EXAMPLES

LFP = EXAMPLES / "LiFePO4"


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("info", "predict", "evaluate", "train"):
        assert cmd in out


def test_predict_json_on_example(tiny_model_dir, capsys):
    code = main(
        [
            "predict",
            str(LFP / "initial.vasp"),
            str(LFP / "final.vasp"),
            "--model",
            str(tiny_model_dir),
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ion"] == "Li" and out["ion_index"] == 0 and out["model"] == "tiny-test"
    assert out["em_std"] is not None and out["em_std"] > 0
    # the NEB images of the same hop give the same barrier
    assert (
        main(
            ["predict", "--images", str(LFP / "neb_images.extxyz"), "--model", str(tiny_model_dir), "--json"]
        )
        == 0
    )
    again = json.loads(capsys.readouterr().out)
    assert again["em"] == pytest.approx(out["em"], abs=1e-4)


def test_info(tiny_model_dir, capsys, monkeypatch):
    monkeypatch.delenv("ASE_EM_THREADS", raising=False)
    assert main(["info", "--model", str(tiny_model_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["threads"] == 1  # what commands use, not torch's default of one per core
    assert info["model"] == "tiny-test"
    assert info["model_metrics"]["mae"] == 9.99
    assert info["em_std"] == "spread of the ensemble members (not calibrated)"
    assert info["threads"] >= 1


def test_info_on_v1_states_its_calibration(capsys):
    assert main(["info", "--model", "alignn-em-v1", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["em_std"] == (
        "spread calibrated on CV: 79% of out-of-fold errors within 1 em_std, 94% within 2"
    )
    # v1's grouped-CV run (cv-grouped-v1), written on its card by benchmarks/pathways.py --write-card
    assert "lowest pathway found 0.511, pairs ordered right 0.635 (n 271)" in info["pathways"]


def test_info_on_v2_states_its_pathway_ranking(capsys):
    from ase_em.model.weights import read_card

    assert main(["info", "--model", "alignn-em-v2", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    figures = read_card("alignn-em-v2")["metrics"]["pathways"]["grouped"]
    assert info["pathways"].startswith("5-fold CV (grouped by compound), seed 0: MAE ")
    assert f"pairs ordered right {figures['pair_accuracy']:.3f} (n 271)" in info["pathways"]
    assert info["em_std"].startswith("spread calibrated on CV: ")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "missing.vasp", str(LFP / "final.vasp")], "missing.vasp: no such file"),
        (["predict", str(LFP / "initial.vasp"), str(LFP / "initial.vasp")], "same structure"),
        (
            ["predict", str(LFP / "initial.vasp"), str(LFP / "final.vasp"), "--ion-index", "500"],
            "out of range",
        ),
        (["predict", str(LFP / "initial.vasp"), str(LFP / "neb_images.extxyz")], None),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, tiny_model_dir, capsys):
    code = main([*argv, "--model", str(tiny_model_dir)])
    captured = capsys.readouterr()
    if message is None:  # a valid pair (the last NEB frame is the final endpoint)
        assert code == 0
        return
    assert code == 2
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in captured.err


def test_evaluate_writes_metrics_and_predictions(tiny_model_dir, tmp_path, capsys):
    from ase.io import read

    from ase_em.hops.hop import Hop

    # two labelled endpoint records of the example hop (em619 endpoint format)
    def jdict(a):
        return {
            "lattice_mat": a.cell.tolist(),
            "coords": a.positions.tolist(),
            "elements": a.get_chemical_symbols(),
            "cartesian": True,
        }

    ini, fin = read(LFP / "initial.vasp"), read(LFP / "final.vasp")
    records = [
        {"sys_name": "lfp", "target": 0.27, "atoms_ini": jdict(ini), "atoms_fin": jdict(fin)},
        {"sys_name": "lfp_back", "target": 0.30, "atoms_ini": jdict(fin), "atoms_fin": jdict(ini)},
    ]
    data = tmp_path / "data.json"
    data.write_text(json.dumps(records))
    out_csv = tmp_path / "pred.csv"
    assert main(["evaluate", str(data), "--model", str(tiny_model_dir), "--predictions", str(out_csv)]) == 0
    text = capsys.readouterr().out
    assert "n 2" in text and "MAE" in text and "precision" in text
    rows = out_csv.read_text().splitlines()
    assert rows[0] == "sys_name,target,prediction,em_std"
    assert rows[1].startswith("lfp,0.27,")
    hop = Hop.from_endpoints(ini, fin)
    from ase_em.predictor import EmPredictor

    em = EmPredictor.from_pretrained(tiny_model_dir).predict_one(hop).em
    assert float(rows[1].split(",")[2]) == pytest.approx(em, abs=1e-4)


def test_evaluate_bad_rows_are_all_named(tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "bad.json"
    data.write_text(
        json.dumps(
            [
                {"sys_name": "a", "target": "high"},
                {"sys_name": "b", "target": -1.0, "atoms": {}},
                {"sys_name": "c", "target": 0.5},
            ]
        )
    )
    out_csv = tmp_path / "never.csv"
    assert main(["evaluate", str(data), "--model", str(tiny_model_dir), "--predictions", str(out_csv)]) == 2
    err = capsys.readouterr().err
    assert "3 bad row(s)" in err
    assert "record 0 (a): target 'high' is not a number" in err
    assert "record 1 (b): target -1 eV is negative (a barrier is >= 0 eV; pass --allow-implausible" in err
    assert "record 2 (c)" in err and "neither 'atoms'" in err
    assert not out_csv.exists()


def test_train_and_evaluate_refuse_implausible_targets(tiny_model_dir, tmp_path, capsys):
    from ase.io import read

    ini, fin = read(LFP / "initial.vasp"), read(LFP / "final.vasp")

    def jdict(a):
        return {"lattice_mat": a.cell.tolist(), "coords": a.positions.tolist(),
                "elements": a.get_chemical_symbols(), "cartesian": True}

    data = tmp_path / "data.json"
    record = {"sys_name": "lfp", "target": 270.0, "atoms_ini": jdict(ini), "atoms_fin": jdict(fin)}
    data.write_text(json.dumps([record]))
    train = ["train", str(data), "--output", str(tmp_path / "m")]
    for argv in (train, ["evaluate", str(data), "--model", str(tiny_model_dir)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{data}: record 0 (lfp): target 270 eV is above 10 eV" in err
    assert not (tmp_path / "m").exists()
    assert main(["evaluate", str(data), "--model", str(tiny_model_dir), "--allow-implausible-barriers"]) == 0
    assert "n 1" in capsys.readouterr().out


def test_predict_imports_neither_plotting_nor_scikit_learn():
    # start-up: a prediction pays for torch, ASE and the model, not for pyplot or scikit-learn
    code = (
        "import sys\n"
        "from ase_em.cli.main import main\n"
        f"rc = main(['predict', {str(LFP / 'initial.vasp')!r}, {str(LFP / 'final.vasp')!r}, '--json'])\n"
        "print(rc, 'matplotlib.pyplot' in sys.modules, any(m.startswith('sklearn') for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 False False"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--folds", "1", "--folds: must be >= 2"),
        ("--epochs", "0", "--epochs: must be >= 1"),
        ("--batch-size", "0", "--batch-size: must be >= 1"),
        ("--lr", "-1", "--lr: must be a finite number > 0"),
        ("--hidden", "0", "--hidden: must be >= 1"),
    ],
)
def test_train_refuses_bad_settings_in_one_line(tmp_path, capsys, option, value, message):
    data = tmp_path / "data.json"
    data.write_text("[]")
    with pytest.raises(SystemExit) as exit_:
        main(["train", str(data), "--output", str(tmp_path / "m"), option, value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert message in err and "Traceback" not in err and not (tmp_path / "m").exists()



def test_train_refuses_more_folds_than_records_and_evaluate_names_skip_invalid(tmp_path, capsys):
    from ase.io import read

    from tests.conftest import jarvis_dict

    ini, fin = read(LFP / "initial.vasp"), read(LFP / "final.vasp")
    recs = [{"sys_name": f"h{i}", "target": 0.3, "atoms_ini": jarvis_dict(ini), "atoms_fin": jarvis_dict(fin)}
            for i in range(3)]
    data = tmp_path / "d.json"
    data.write_text(json.dumps(recs))
    assert main(["train", str(data), "--output", str(tmp_path / "m")]) == 2
    assert "3 usable record(s) cannot make 5 folds" in capsys.readouterr().err
    assert not (tmp_path / "m" / ".work").exists()
    recs[1]["atoms_fin"] = jarvis_dict(ini)  # the ion does not move: a bad record
    data.write_text(json.dumps(recs))
    assert main(["evaluate", str(data)]) == 2
    err = capsys.readouterr().err
    assert "1 bad row(s)" in err and "h1" in err and "--skip-invalid skips and lists" in err
