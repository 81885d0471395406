"""Multi-property pre-training: masked per-property heads, checkpoint and exact resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ase_em.training.pretrain as pt
from ase_em.cli.main import main
from ase_em.config import ModelConfig
from ase_em.model.model import EmModel
from tests.conftest import jarvis_dict as _jdict

ARGS = [
    "--properties",
    "bg",
    "gv",
    "fe",
    "--epochs",
    "3",
    "--batch-size",
    "4",
    "--hidden",
    "16",
    "--alignn-layers",
    "1",
    "--gcn-layers",
    "1",
    "--max-neighbors",
    "6",
]


def test_pretrain_cli_writes_a_backbone_that_loads_into_a_barrier_model(mpt_dir, tmp_path, capsys):
    out = tmp_path / "pt"
    assert main(["pretrain", str(mpt_dir), "--output", str(out), *ARGS]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["properties"] == ["bg", "gv", "fe"]
    assert card["data"]["per_property"] == {"bg": 6, "gv": 6, "fe": 6}
    assert card["target_mean"][0] == pytest.approx(np.mean([5.0, 0.6, 0, 4.5, 9.0, 0]))
    losses = card["train_scaled_mae_per_epoch"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    model = EmModel(ModelConfig(alignn_layers=1, gcn_layers=1, hidden_features=16))
    state = torch.load(out / "backbone.pt", weights_only=True)
    model.load_state_dict(state)
    # refuses to overwrite
    assert main(["pretrain", str(mpt_dir), "--output", str(out), *ARGS]) == 2
    assert "use --overwrite" in capsys.readouterr().err


def test_interrupted_pretraining_resumes_to_the_same_weights(mpt_dir, tmp_path, monkeypatch):
    assert main(["pretrain", str(mpt_dir), "--output", str(tmp_path / "full"), *ARGS]) == 0
    saves = {"n": 0}
    real_save = pt.atomic_save

    def save_then_stop(obj, path):
        real_save(obj, path)
        saves["n"] += 1
        if saves["n"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(pt, "atomic_save", save_then_stop)
    assert main(["pretrain", str(mpt_dir), "--output", str(tmp_path / "cut"), *ARGS]) == 130
    assert not (tmp_path / "cut" / "backbone.pt").exists()
    assert main(["pretrain", str(mpt_dir), "--output", str(tmp_path / "cut"), *ARGS]) == 0
    a = torch.load(tmp_path / "full" / "backbone.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "backbone.pt", weights_only=True)
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-5)


def test_unknown_property_is_refused(mpt_dir, tmp_path, capsys):
    assert main(["pretrain", str(mpt_dir), "--output", str(tmp_path / "x"), "--properties", "bandgap"]) == 2
    assert "unknown property 'bandgap'" in capsys.readouterr().err


def test_train_starts_from_a_pretrained_backbone(mpt_dir, tmp_path, capsys):
    """`ase-em train --init-from` loads the backbone into every fold model and records it."""
    import json as _json

    from ase.io import read

    from tests.conftest import EXAMPLES

    backbone = tmp_path / "pt"
    assert main(["pretrain", str(mpt_dir), "--output", str(backbone), *ARGS]) == 0
    ini, fin = read(EXAMPLES / "LiFePO4" / "initial.vasp"), read(EXAMPLES / "LiFePO4" / "final.vasp")

    recs = [
        {"sys_name": f"h{i}", "target": 0.2 + 0.1 * i, "atoms_ini": _jdict(ini), "atoms_fin": _jdict(fin)}
        for i in range(4)
    ]
    data = tmp_path / "d.json"
    data.write_text(_json.dumps(recs))
    small = (
        "--hidden 16 --alignn-layers 1 --gcn-layers 1 --max-neighbors 6 --crop-radius 4 --folds 2 --epochs 1"
    )
    small = small.split()
    out = tmp_path / "m"
    assert main(["train", str(data), "--output", str(out), "--init-from", str(backbone), *small]) == 0
    card = _json.loads((out / "card.json").read_text())
    assert card["base_model"]["sha256"] == _json.loads((backbone / "card.json").read_text())["sha256"]
    # the out-of-fold predictions written beside the model read back in data order
    from ase_em.training.ensemble import read_cv_predictions

    targets = [r["target"] for r in recs]
    got, oof = read_cv_predictions(out, targets)
    assert got == pytest.approx(targets, abs=1e-5) and np.isfinite(oof).all() and len(oof) == 4
    with pytest.raises(ValueError, match="other hops"):
        read_cv_predictions(out, targets[::-1])
    # a backbone of another size is refused with one line
    wrong = ["--hidden", "32", "--alignn-layers", "1", "--gcn-layers", "1", "--folds", "2", "--epochs", "1"]
    code = main(["train", str(data), "--output", str(tmp_path / "m2"), "--init-from", str(backbone), *wrong])
    assert code == 2
    assert "backbone settings" in capsys.readouterr().err


def test_backbone_weights_are_used_not_the_head():
    from ase_em.training.ensemble import backbone_only

    model = EmModel(ModelConfig(alignn_layers=1, gcn_layers=1, hidden_features=16))
    kept = backbone_only(model.state_dict())
    assert kept and not any(k.startswith(("head.", "target_")) for k in kept)
    assert any(k.startswith("alignn_layers.") for k in kept)
