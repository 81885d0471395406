"""`ase-em finetune --from BACKBONE`: fine-tuning from a pre-trained (multi-property) backbone.

A tiny backbone is pre-trained on the tiny mpt folder of conftest; the data are six real
hops of examples/finetune.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import ase_em
import ase_em.model.weights as pretrained
from ase_em.cli.main import main
from ase_em.config import GraphConfig, ModelConfig
from ase_em.errors import ModelLoadError
from ase_em.training.data import load_labelled
from ase_em.training.ensemble import build_graphs, load_backbone, predict_graphs, start_model
from ase_em.training.pretrain import pretrain
from tests.conftest import EXAMPLES, make_tiny_model, write_mpt_dir

SMALL_HOPS = ("Li3OCl_1", "Li3SI", "Na3OBr", "Cr2O4_Li", "Co2O4_Mg", "CaNiN_2")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def backbone_dir(tmp_path_factory) -> Path:
    """A 2-epoch backbone (width 16, one ALIGNN and one GCN layer) from the tiny mpt folder."""
    mpt = write_mpt_dir(tmp_path_factory.mktemp("mpt"))
    out = tmp_path_factory.mktemp("backbones") / "mpt-tiny"
    config = ModelConfig(alignn_layers=1, gcn_layers=1, hidden_features=16)
    pretrain(mpt, out, properties=["bg", "gv", "fe"], graph_config=GraphConfig(8.0, 6, None),
             model_config=config, epochs=2, batch_size=4)
    return out


@pytest.fixture(scope="module")
def hops_csv(tmp_path_factory) -> Path:
    """Six hops of examples/finetune/hops.csv (the smaller cells)."""
    src = EXAMPLES / "finetune"
    with open(src / "hops.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["id"] in SMALL_HOPS]
    assert len(rows) == len(SMALL_HOPS)
    path = tmp_path_factory.mktemp("hops") / "hops.csv"
    lines = ["id,initial,final,em"] + [
        f"{r['id']},{src / r['initial']},{src / r['final']},{r['em']}" for r in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def backbone_card(directory: Path) -> dict:
    return json.loads((directory / "card.json").read_text())


def member_state(directory: Path, member: int) -> dict[str, torch.Tensor]:
    prefix = f"members.{member}."
    state = torch.load(directory / "model.pt", weights_only=True)
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def test_head_finetune_from_a_backbone_cli(backbone_dir, hops_csv, tmp_path, capsys):
    out = tmp_path / "ft"
    argv = ["finetune", str(hops_csv), "--from", str(backbone_dir), "--output", str(out),
            "--epochs", "2", "--batch-size", "2", "--lr", "5e-3", "--threads", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "head fine-tune (default for 6 hops" in printed and "(pretrained backbone)" in printed
    assert "base model" not in printed  # no base figures for a backbone

    card, bcard = json.loads((out / "card.json").read_text()), backbone_card(backbone_dir)
    base = card["base_model"]
    assert base["kind"] == "pretrained backbone" and base["sha256"] == bcard["sha256"]
    assert base["name"] == "mpt-tiny" and base["properties"] == ["bg", "gv", "fe"]
    metrics = card["metrics"]
    assert metrics["base_train"] is None and metrics["base_validation"] is None
    assert metrics["train"]["n"] == 5 and metrics["validation"]["n"] == 1
    assert card["n_members"] == 1 and card["members"][0]["head_seed"] == 0
    assert "base_member" not in card["members"][0]
    assert card["model"] == bcard["model"]
    shipped_crop = pretrained.read_card()["graph"]["crop_radius"]
    assert card["graph"] == {"cutoff": 8.0, "max_neighbors": 6, "crop_radius": shipped_crop}

    # scaling from the member's own training hops
    data = load_labelled(hops_csv)
    targets = np.asarray(data.targets)
    train = np.array([i for i, n in enumerate(data.names) if n not in card["split"]["validation_ids"]])
    member = card["members"][0]
    assert member["target_mean"] == pytest.approx(targets[train].mean(), abs=1e-6)
    assert member["target_std"] == pytest.approx(targets[train].std(ddof=1), abs=1e-6)

    # head: the backbone stays frozen, so its tensors are exactly the backbone's
    config = ModelConfig(**bcard["model"])
    weights, _ = load_backbone(backbone_dir, config)
    tuned = member_state(out, 0)
    assert weights and all(torch.equal(tuned[k], v) for k, v in weights.items())
    # ... and the head trained: it differs from the seeded fresh head it started from
    start = start_model(config, targets[train], seed=0, init=weights)
    assert not torch.equal(tuned["head.1.weight"], start.state_dict()["head.1.weight"])
    loaded = pretrained.load_model(out)
    graphs = build_graphs(data, loaded.graph_config)
    pred = predict_graphs(loaded.ensemble.members[0], graphs)
    assert np.abs(pred - predict_graphs(start, graphs)).max() > 1e-3

    with open(out / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(r["base_prediction"] == "" for r in rows)  # no fake base numbers
    np.testing.assert_allclose([float(r["prediction"]) for r in rows], pred, atol=1e-4)
    assert (out / "parity.png").read_bytes()[:4] == b"\x89PNG"


def test_partial_folds_from_a_backbone(backbone_dir, hops_csv, tmp_path):
    predictor = ase_em.finetune(hops_csv, base=backbone_dir, output=tmp_path / "cv", strategy="partial",
                                folds=2, epochs=1, batch_size=3, lr=5e-3, seed=3, progress=False)
    card = predictor.card
    assert card["n_members"] == 2 and [m["head_seed"] for m in card["members"]] == [3000, 3001]
    assert card["metrics"]["base_validation"] is None and "cv_out_of_fold" in card["metrics"]
    data = load_labelled(hops_csv)
    targets = dict(zip(data.names, data.targets, strict=True))
    weights, _ = load_backbone(backbone_dir, predictor.model.ensemble.config)
    for k, fold in enumerate(card["split"]["folds"]):
        train = [t for n, t in targets.items() if n not in fold]
        assert card["members"][k]["target_mean"] == pytest.approx(np.mean(train), abs=1e-6)
        tuned = member_state(tmp_path / "cv", k)
        changed = {name.split(".")[0] for name, v in weights.items() if not torch.equal(tuned[name], v)}
        assert changed == {"gcn_layers"}  # the rest of the backbone stays as pre-trained


@pytest.mark.slow
def test_full_from_a_backbone_resumes_to_the_same_model(backbone_dir, hops_csv, tmp_path):
    common = dict(base=backbone_dir, strategy="full", epochs=2, batch_size=3, val_fraction=0, progress=False)
    ref = ase_em.finetune(hops_csv, output=tmp_path / "ref", **common)
    assert "validation" not in ref.card["metrics"] and ref.card["metrics"]["base_train"] is None
    weights, _ = load_backbone(backbone_dir, ref.model.ensemble.config)
    tuned = member_state(tmp_path / "ref", 0)
    assert not torch.equal(tuned["alignn_layers.0.node_update.src_gate.weight"],
                           weights["alignn_layers.0.node_update.src_gate.weight"])

    def interrupt(row):
        if row.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ase_em.finetune(hops_csv, output=tmp_path / "cut", callback=interrupt, **common)
    ase_em.finetune(hops_csv, output=tmp_path / "cut", resume=True, **common)
    again = member_state(tmp_path / "cut", 0)
    for k, v in tuned.items():
        torch.testing.assert_close(again[k], v, atol=1e-5, rtol=0)


def test_shipped_backbone_names(backbone_dir, hops_csv, tmp_path, monkeypatch, capsys):
    """A backbone under ase_em/weights is no barrier model, but a name for --from/--init-from."""
    weights = tmp_path / "weights"
    make_tiny_model(weights / pretrained.DEFAULT_MODEL, n_members=1)
    shutil.copytree(backbone_dir, weights / "mpt-test")
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", weights)

    assert pretrained.available_models() == [pretrained.DEFAULT_MODEL]
    assert pretrained.available_backbones() == ["mpt-test"]
    with pytest.raises(ModelLoadError, match="is a pre-trained backbone") as err:
        pretrained.load_model("mpt-test")
    assert "ase-em finetune DATA --from mpt-test" in str(err.value)
    assert "ase-em train DATA --init-from mpt-test" in str(err.value)
    capsys.readouterr()
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shipped_models"] == [pretrained.DEFAULT_MODEL] and info["shipped_backbones"] == ["mpt-test"]
    # predicting with a backbone: one clear line
    ini = EXAMPLES / "finetune" / "structures" / "Li3SI_initial.vasp"
    assert main(["predict", str(ini), str(ini).replace("initial", "final"), "--model", "mpt-test"]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and "is a pre-trained backbone" in err_lines[0]
    # `ase-em train --init-from NAME` resolves the name the same way
    config = ModelConfig(**backbone_card(backbone_dir)["model"])
    state, record = load_backbone(Path("mpt-test"), config)
    assert state and record["sha256"] == backbone_card(backbone_dir)["sha256"]
    # fine-tune from the shipped name; crop radius of the (here: tiny) default model
    out = tmp_path / "named"
    assert main(["finetune", str(hops_csv), "--from", "mpt-test", "--output", str(out), "--epochs", "1",
                 "--val-fraction", "0", "--threads", "1"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["base_model"]["name"] == "mpt-tiny" and card["base_model"]["kind"] == "pretrained backbone"
    assert card["graph"] == {"cutoff": 8.0, "max_neighbors": 6, "crop_radius": None}


def test_from_a_directory_that_is_neither(hops_csv, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "card.json").write_text('{"name": "notes"}\n')
    for source, message in ((empty, "not a model directory"), (other, "neither a barrier model")):
        out = tmp_path / f"out-{source.name}"
        capsys.readouterr()
        assert main(["finetune", str(hops_csv), "--from", str(source), "--output", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0] and err[0].startswith("ase-em finetune: error: ")
        assert not out.exists()
