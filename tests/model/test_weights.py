"""The shipped default model: loads, verifies, and gives its recorded barrier on the example."""

from __future__ import annotations

import pytest

from ase_em.model.weights import DEFAULT_MODEL, available_models, read_card
from ase_em.predictor import EmPredictor
from tests.conftest import EXAMPLES

LFP = EXAMPLES / "LiFePO4"


@pytest.fixture(scope="module")
def shipped():
    return EmPredictor.from_pretrained()


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


def test_recorded_barrier_on_the_shipped_example(shipped):
    # olivine LiFePO4, b-axis Li hop (a TRAIN hop, DFT 0.27 eV); value recorded from alignn-em-v1
    result = shipped.predict_one((LFP / "initial.vasp", LFP / "final.vasp"))
    assert result.em == pytest.approx(0.2626, abs=2e-3)
    # calibrated on CV (card "uncertainty"): sqrt((1.529 * 0.0069)^2 + (0.329 * 0.2626)^2 + 0.158^2)
    assert result.em_std == pytest.approx(0.1804, abs=2e-3)
    from ase_em.hops.hop import Hop

    again = shipped.predict_one(Hop.from_images(LFP / "neb_images.extxyz"))
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
