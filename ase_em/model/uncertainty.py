"""Calibrated uncertainty: from the ensemble's spread to an error bar in eV.

The spread of the ensemble members alone is too narrow: the members share most of their
error. The calibrated error bar is

    em_std = sqrt((a * spread)**2 + (b * |em|)**2 + c**2)

with ``a, b, c`` fitted on cross-validation: for every TRAIN hop, several models that never
saw it (one per CV run with another fold split) give a mean prediction, a spread and a
residual. The fit maximises a Laplace likelihood of the residuals, because barrier errors
have heavier tails than a Gaussian (a few hops are off by 1-2 eV); em_std is the standard
deviation of that Laplace distribution. The parameters live on the model card under
``"uncertainty"``; without them em_std is the raw spread.
"""

from __future__ import annotations

from typing import Any

import numpy as np

RAW = {"spread_scale": 1.0, "relative": 0.0, "floor": 0.0}


def error_bar(em: np.ndarray, spread: np.ndarray, params: dict[str, Any] | None) -> np.ndarray:
    """Calibrated standard deviation (eV) of barriers ``em`` with ensemble ``spread``.

    Args:
        em: (n,) predicted barriers (eV).
        spread: (n,) standard deviation of the ensemble members (eV).
        params: the card's ``"uncertainty"`` entry (None: the raw spread).
    """
    p = {**RAW, **(params or {})}
    em, spread = np.asarray(em, float), np.asarray(spread, float)
    return np.sqrt((p["spread_scale"] * spread) ** 2 + (p["relative"] * em) ** 2 + p["floor"] ** 2)


def fit(targets: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """Fit ``a, b, c`` by maximum Laplace likelihood.

    Args:
        targets: (n,) DFT barriers (eV).
        predictions: (R, n) out-of-fold predictions of R >= 2 CV runs with different splits.

    Returns:
        ``{"spread_scale": a, "relative": b, "floor": c}``.
    """
    from scipy.optimize import minimize

    preds = np.asarray(predictions, float)
    if preds.ndim != 2 or preds.shape[0] < 2:
        raise ValueError("need out-of-fold predictions of at least two CV runs, shape (R, n)")
    em, spread = preds.mean(0), preds.std(0, ddof=1)
    residual = np.abs(np.asarray(targets, float) - em)

    def nll(log_p: np.ndarray) -> float:
        a, b, c = np.exp(log_p)
        scale = error_bar(em, spread, {"spread_scale": a, "relative": b, "floor": c}) / np.sqrt(2)
        return float(np.mean(np.log(scale) + residual / scale))

    options = {"xatol": 1e-6, "fatol": 1e-9}
    best = minimize(nll, np.log([1.0, 0.2, 0.1]), method="Nelder-Mead", options=options)
    a, b, c = np.exp(best.x)
    return {"spread_scale": float(a), "relative": float(b), "floor": float(c)}


def coverage(targets: np.ndarray, predictions: np.ndarray, folds: int = 5, seed: int = 0) -> dict[str, float]:
    """Share of residuals within 1 and 2 calibrated em_std, the parameters fitted out of fold.

    The hops are split into ``folds`` parts; each part's error bars come from parameters
    fitted on the other parts, so the shares measure the calibration on unseen hops.
    """
    targets, preds = np.asarray(targets, float), np.asarray(predictions, float)
    n = len(targets)
    parts = np.array_split(np.random.default_rng(seed).permutation(n), folds)
    ratio = np.empty(n)
    for part in parts:
        rest = np.setdiff1d(np.arange(n), part)
        params = fit(targets[rest], preds[:, rest])
        em, spread = preds[:, part].mean(0), preds[:, part].std(0, ddof=1)
        ratio[part] = np.abs(targets[part] - em) / error_bar(em, spread, params)
    return {"within_1_std": float((ratio <= 1).mean()), "within_2_std": float((ratio <= 2).mean())}
