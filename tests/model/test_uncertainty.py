"""Calibration of em_std: the fit, its out-of-fold coverage, and its use in prediction."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ase_em.model import uncertainty


def synthetic_runs(a: float, b: float, c: float, n: int = 4000, seed: int = 0):
    """Two CV runs whose mean/spread are known and whose residuals are Laplace with that std."""
    rng = np.random.default_rng(seed)
    em = rng.uniform(0.1, 2.0, n)
    spread = rng.uniform(0.02, 0.3, n)
    half = spread / np.sqrt(2)  # two predictions em -/+ half have sample std = spread
    preds = np.stack([em - half, em + half])
    sigma = np.sqrt((a * spread) ** 2 + (b * em) ** 2 + c**2)
    targets = em + rng.laplace(0.0, sigma / np.sqrt(2))
    return targets, preds


def test_raw_parameters_give_the_spread():
    spread = np.array([0.05, 0.2])
    assert np.allclose(uncertainty.error_bar(np.array([0.3, 1.5]), spread, None), spread)


def test_fit_recovers_known_parameters():
    targets, preds = synthetic_runs(2.0, 0.2, 0.1)
    p = uncertainty.fit(targets, preds)
    assert p["spread_scale"] == pytest.approx(2.0, rel=0.15)
    assert p["relative"] == pytest.approx(0.2, rel=0.15)
    assert p["floor"] == pytest.approx(0.1, rel=0.3)


def test_out_of_fold_coverage_of_laplace_errors():
    targets, preds = synthetic_runs(2.0, 0.2, 0.1)
    cov = uncertainty.coverage(targets, preds)
    # a Laplace variable lies within 1 and 2 of its standard deviations with p = 0.757, 0.941
    assert cov["within_1_std"] == pytest.approx(0.757, abs=0.03)
    assert cov["within_2_std"] == pytest.approx(0.941, abs=0.02)


def test_fit_needs_two_runs():
    with pytest.raises(ValueError, match="two CV runs"):
        uncertainty.fit(np.zeros(3), np.zeros((1, 3)))


def test_predictor_applies_the_card_calibration(tiny_model_dir, tiny_predictor, endpoints, tmp_path):
    from ase_em.predictor import EmPredictor

    raw = tiny_predictor.predict_one(endpoints)
    calibrated_dir = tmp_path / "calibrated"
    shutil.copytree(tiny_model_dir, calibrated_dir)
    card = json.loads((calibrated_dir / "card.json").read_text())
    card["uncertainty"] = {"spread_scale": 3.0, "relative": 0.5, "floor": 0.1}
    (calibrated_dir / "card.json").write_text(json.dumps(card))
    calibrated = EmPredictor.from_pretrained(calibrated_dir).predict_one(endpoints)
    assert calibrated.em == pytest.approx(raw.em, abs=1e-6)
    expected = np.sqrt((3.0 * raw.em_std) ** 2 + (0.5 * raw.em) ** 2 + 0.1**2)
    assert calibrated.em_std == pytest.approx(expected, rel=1e-5)
    assert calibrated.em_std > raw.em_std
