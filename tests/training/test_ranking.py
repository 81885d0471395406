"""The pathway ranking loss, structure-by-structure batches and barrier density weights."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from ase_em.cli.main import main
from ase_em.config import GraphConfig, TrainConfig
from ase_em.training.ensemble import (
    compound_groups,
    density_weights,
    predict_graphs,
    ranking_loss,
    structure_batches,
    train_model,
)
from tests.conftest import TINY_CONFIG as TINY
from tests.conftest import jarvis_dict, rocksalt_hop_endpoints


def test_ranking_loss_is_near_zero_for_right_order_and_grows_for_inverted_pairs():
    y = torch.tensor([0.2, 0.9])  # eV, one structure
    same = np.array(["A", "A"])
    right = ranking_loss(torch.tensor([-5.0, 5.0]), y, same)  # right order, margin 10
    assert float(right) == pytest.approx(np.log1p(np.exp(-10.0)), rel=1e-5) and float(right) < 1e-4
    tie = ranking_loss(torch.tensor([1.0, 1.0]), y, same)
    assert float(tie) == pytest.approx(np.log(2.0), rel=1e-6)
    wrong = ranking_loss(torch.tensor([2.0, -1.0]), y, same)  # inverted by 3
    assert float(wrong) == pytest.approx(np.log1p(np.exp(3.0)), rel=1e-5) and float(wrong) > 3.0


def test_ranking_loss_ignores_other_structures_and_ties():
    y = torch.tensor([0.2, 0.9, 1.5, 0.205])
    # A: hops 0 and 1 (ordered right); B: hop 2 alone; hop 3 is in A but ties with hop 0
    groups = np.array(["A", "A", "B", "A"])
    pred = torch.tensor([0.0, 3.0, -9.0, 0.0])  # B's high barrier predicted lowest: not a pair
    # the pairs of A: (1,0) and (1,3) right by 3; (3,0) is a tie (0.005 eV < 0.02) and skipped
    assert float(ranking_loss(pred, y, groups)) == pytest.approx(np.log1p(np.exp(-3.0)), rel=1e-5)
    # nothing to rank: one hop per structure, or only ties
    assert ranking_loss(pred[:3], y[:3], np.array(["A", "B", "C"])) is None
    assert ranking_loss(pred[[0, 3]], y[[0, 3]], np.array(["A", "A"])) is None
    # the tie threshold is a setting
    assert ranking_loss(pred[[0, 3]], y[[0, 3]], np.array(["A", "A"]), tie=0.001) is not None


def test_ranking_loss_gradient_pushes_an_inverted_pair_apart():
    pred = torch.tensor([1.0, 0.0], requires_grad=True)  # hop 0 has the lower DFT barrier
    ranking_loss(pred, torch.tensor([0.3, 1.1]), np.array(["A", "A"])).backward()
    assert pred.grad[0] > 0 > pred.grad[1]  # descent lowers hop 0 and raises hop 1


def test_structure_batches_keep_structures_together_and_shuffle_them():
    names = [f"S{k}_{j}" for k, size in enumerate([3, 1, 5, 2, 4, 2, 6, 1]) for j in range(1, size + 1)]
    groups = compound_groups(names)
    runs = [structure_batches(groups, 6, np.random.default_rng([0, epoch])) for epoch in range(3)]
    for batches in runs:
        flat = np.concatenate(batches)
        assert sorted(flat.tolist()) == list(range(len(names)))  # each hop once per epoch
        assert all(len(b) <= 6 for b in batches)
        where = {}
        for b, idx in enumerate(batches):
            for i in idx:
                where.setdefault(groups[i], set()).add(b)
        assert all(len(v) == 1 for v in where.values())  # a structure never split
    orders = [tuple(dict.fromkeys(groups[np.concatenate(b)])) for b in runs]
    assert len(set(orders)) > 1  # structures come in another order in another epoch
    # a structure larger than the batch is one batch of its own
    big = structure_batches(np.array(["A"] * 5 + ["B"]), 3, np.random.default_rng(0))
    assert sorted(len(b) for b in big) == [1, 5]


def test_compound_groups_strip_only_the_pathway_number():
    assert compound_groups(["LiCoO2_1", "LiCoO2_12", "Na3PS4_2", "Li2O"]).tolist() == [
        "LiCoO2",
        "LiCoO2",
        "Na3PS4",
        "Li2O",
    ]


def test_density_weights_raise_the_rare_barriers():
    y = np.array([0.1, 0.12, 0.15, 0.2, 1.0])  # four hops in the first 0.25 eV bin, one at 1 eV
    full = density_weights(y, 1.0)
    assert full == pytest.approx([0.625, 0.625, 0.625, 0.625, 2.5])  # 1,1,1,1,4 over mean 1.6
    half = density_weights(y, 0.5)
    assert half.mean() == pytest.approx(1.0) and half[4] / half[0] == pytest.approx(2.0)
    capped = density_weights(y, 1.0, max_weight=2.0)
    assert capped[4] / capped[0] == pytest.approx(2.0)
    assert density_weights(y, 0.0) == pytest.approx(np.ones(5))
    with pytest.raises(ValueError, match="bin_width"):
        density_weights(y, 0.5, bin_width=0.0)
    with pytest.raises(ValueError, match="power"):
        density_weights(y, -1.0)


def _rocksalt_graphs(lattices):
    from ase_em.hops.hop import Hop
    from ase_em.model.band import build_band
    from ase_em.model.graph import build_graph

    graphs = []
    for a in lattices:
        ini, fin = rocksalt_hop_endpoints(a=a, reps=2)
        graphs.append(build_graph(build_band(Hop.from_endpoints(ini, fin)), GraphConfig(6.0, 8, None)))
    return graphs


def test_training_with_the_ranking_loss_learns_the_order_of_one_structures_pathways(one_torch_thread):
    """Four rock-salt hops of one 'structure', barriers falling as the lattice widens: with
    a strong ranking loss the tiny model orders all six pairs right on its training hops."""
    graphs = _rocksalt_graphs([3.9, 4.1, 4.3, 4.5])
    y = np.array([1.4, 1.0, 0.7, 0.5])
    groups = np.array(["LiF"] * 4)
    config = TrainConfig(epochs=40, batch_size=4, lr=5e-3, rank_weight=5.0)
    model = train_model(graphs, y, TINY, config, seed=0, structures=groups)
    pred = predict_graphs(model, graphs)
    assert np.all(np.diff(pred) < 0), pred
    with pytest.raises(ValueError, match="structure label"):
        train_model(graphs, y, TINY, config, seed=0)


def test_train_cli_stores_ranking_and_density_settings_and_names_in_cv_csv(tmp_path, one_torch_thread):
    recs = []
    for i, a in enumerate([3.9, 4.1, 4.3, 4.5]):
        ini, fin = rocksalt_hop_endpoints(a=a, reps=2)
        recs.append(
            {
                "sys_name": f"LiF{i % 2}_{i // 2 + 1}",
                "target": 0.3 + 0.2 * i,
                "atoms_ini": jarvis_dict(ini),
                "atoms_fin": jarvis_dict(fin),
            }
        )
    data = tmp_path / "d.json"
    data.write_text(json.dumps(recs))
    out = tmp_path / "m"
    small = "--hidden 16 --alignn-layers 1 --gcn-layers 1 --max-neighbors 6 --folds 2 --epochs 1".split()
    args = ["train", str(data), "--output", str(out), "--rank-weight", "0.5", "--density-weight", "0.5"]
    assert main([*args, *small, "--threads", "1"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["train"]["rank_weight"] == 0.5 and card["train"]["density_weight_power"] == 0.5
    assert card["train"]["rank_tie"] == 0.02
    rows = list(csv.DictReader((out / "cv_predictions.csv").open()))
    assert list(rows[0]) == ["sys_name", "target", "prediction"]
    assert [r["sys_name"] for r in rows] == [r["sys_name"] for r in recs]
    assert [float(r["target"]) for r in rows] == pytest.approx([r["target"] for r in recs])


@pytest.mark.parametrize("flag,value", [("--rank-weight", "-0.5"), ("--density-weight", "nan")])
def test_train_cli_refuses_a_negative_or_non_finite_weight(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as exit_:
        main(["train", str(tmp_path / "d.json"), "--output", str(tmp_path / "m"), flag, value])
    assert exit_.value.code == 2
    assert flag in capsys.readouterr().err
