"""The shipped models: load, verify, and give their recorded barriers on the example."""

from __future__ import annotations

import pytest

from ase_em.model.weights import DEFAULT_MODEL, SCREEN_MODEL, available_models, read_card
from ase_em.predictor import EmPredictor
from tests.conftest import EXAMPLES

LFP = EXAMPLES / "LiFePO4"


@pytest.fixture(scope="module")
def shipped():
    return EmPredictor.from_pretrained()


@pytest.fixture(scope="module")
def v1():
    return EmPredictor.from_pretrained("alignn-em-v1")


def test_default_model_is_shipped_with_its_card():
    assert DEFAULT_MODEL in available_models()
    card = read_card()
    assert card["n_members"] == 5
    assert card["graph"] == {"cutoff": 8.0, "max_neighbors": 8, "crop_radius": 5.0}
    cv = card["metrics"]["cv_out_of_fold"]
    assert cv["n"] == 555
    assert cv["mae"] < 0.49  # better than predicting the TRAIN mean
    calibration = card["uncertainty"]
    assert calibration["spread_scale"] > 1  # the raw spread is too narrow
    assert 0.6 < calibration["coverage_calibrated_out_of_fold"]["within_1_std"] < 0.9


def test_screen_model_is_the_default_distilled_into_one_network(v1):
    card = read_card(SCREEN_MODEL)
    assert card["teacher"] == DEFAULT_MODEL and card["n_members"] == 1 and card["model"]["spread_head"]
    assert card["graph"] == read_card()["graph"] and card["uncertainty"] == read_card()["uncertainty"]
    assert card["distillation"]["held_out_em_mae_eV"] < 0.03
    student = EmPredictor.from_pretrained(SCREEN_MODEL)  # verifies the checksum
    a = student.predict_one((LFP / "initial.vasp", LFP / "final.vasp"))
    b = v1.predict_one((LFP / "initial.vasp", LFP / "final.vasp"))
    # one network, close to the ensemble on this TRAIN hop, with an error bar of the same kind
    assert a.em == pytest.approx(b.em, abs=0.1) and a.em != pytest.approx(b.em, abs=1e-4)
    assert a.em_std == pytest.approx(b.em_std, rel=0.3)


def test_recorded_barrier_of_v1_on_the_shipped_example(v1):
    # olivine LiFePO4, b-axis Li hop (a TRAIN hop, DFT 0.27 eV); value recorded from alignn-em-v1
    assert v1.model.card["name"] == "alignn-em-v1"  # v1 stays loadable by name
    result = v1.predict_one((LFP / "initial.vasp", LFP / "final.vasp"))
    assert result.em == pytest.approx(0.2626, abs=2e-3)
    # calibrated on CV (card "uncertainty"): sqrt((1.529 * 0.0069)^2 + (0.329 * 0.2626)^2 + 0.158^2)
    assert result.em_std == pytest.approx(0.1804, abs=2e-3)
    from ase_em.hops.hop import Hop

    again = v1.predict_one(Hop.from_images(LFP / "neb_images.extxyz"))
    assert again.em == pytest.approx(result.em, abs=1e-4)


def test_shipped_backbone_verifies_and_fits_the_default_network():
    from ase_em.config import ModelConfig, from_dict
    from ase_em.model.model import EmModel
    from ase_em.model.weights import available_backbones
    from ase_em.training.ensemble import backbone_only, load_backbone

    assert "mpt-v1" in available_backbones() and "mpt-v1" not in available_models()
    config = from_dict(ModelConfig, read_card()["model"])
    weights, record = load_backbone("mpt-v1", config)  # checks the sha256 on its card
    assert record["kind"] == "pretrained backbone (multi-property)"
    assert set(weights) == set(backbone_only(EmModel(config).state_dict()))
    assert read_card("mpt-v1")["data"]["n_structures"] == 30529


def test_recorded_barrier_of_v2_on_the_shipped_example():
    # the same hop with alignn-em-v2 (opt-in; v1 is the default); value recorded from it
    from ase_em.predictor import EmPredictor

    assert DEFAULT_MODEL == "alignn-em-v1"
    v2 = EmPredictor.from_pretrained("alignn-em-v2")
    assert v2.model.card["name"] == "alignn-em-v2"
    result = v2.predict_one((LFP / "initial.vasp", LFP / "final.vasp"))
    assert result.em == pytest.approx(0.2203, abs=2e-3)
    # calibrated on CV (card "uncertainty": a 1.251, b 0.393, c 0.163 eV)
    assert result.em_std == pytest.approx(0.1867, abs=2e-3)


def test_v2_card_records_its_grouped_pathway_ranking():
    """The grouped-CV figures on the card recompute from the out-of-fold CSV shipped beside it."""
    import csv
    import re
    from collections import defaultdict

    from ase_em.model.weights import resolve

    card = read_card("alignn-em-v2")
    figures = card["metrics"]["pathways"]["grouped"]
    assert "grouped" in figures["scheme"]
    assert all(card["train"][k] == v for k, v in figures["train"].items())  # the shipped settings
    rows = list(csv.DictReader((resolve("alignn-em-v2") / figures["predictions"]).open()))
    assert "grouped" in figures["predictions"] and len(rows) == figures["n"] == 555
    by = defaultdict(list)
    for r in rows:
        by[re.sub(r"_\d+$", "", r["sys_name"])].append((float(r["target"]), float(r["prediction"])))
    right = pairs = 0.0
    for hops in by.values():
        for a in range(len(hops)):
            for b in range(a + 1, len(hops)):
                dy, dp = hops[a][0] - hops[b][0], hops[a][1] - hops[b][1]
                if abs(dy) > 1e-9:
                    pairs += 1
                    right += 0.5 if abs(dp) < 1e-9 else float((dy > 0) == (dp > 0))
    assert pairs == figures["pairs"] == 271
    assert right / pairs == pytest.approx(figures["pair_accuracy"], abs=1e-4)
    mae = sum(abs(float(r["target"]) - float(r["prediction"])) for r in rows) / len(rows)
    assert mae == pytest.approx(figures["mae"], abs=1e-4)
