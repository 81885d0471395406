"""Regression and good-conductor classification metrics (Em < 0.65 eV)."""

from __future__ import annotations

import numpy as np

GOOD_CONDUCTOR_EV = 0.65


def barrier_metrics(
    target: np.ndarray, pred: np.ndarray, threshold: float = GOOD_CONDUCTOR_EV
) -> dict[str, float]:
    """MAE, RMSE, R2, and accuracy/precision/recall of the class Em < threshold.

    Args:
        target: (n,) DFT barriers (eV).
        pred: (n,) predicted barriers (eV).
        threshold: good-conductor threshold (eV).

    Returns:
        Dict with n, mae, rmse, r2, accuracy, precision, recall (precision/recall are
        NaN when undefined).
    """
    t = np.asarray(target, float)
    p = np.asarray(pred, float)
    err = p - t
    ss_tot = float(((t - t.mean()) ** 2).sum())
    pos_t, pos_p = t < threshold, p < threshold
    tp = int((pos_t & pos_p).sum())
    return {
        "n": int(len(t)),
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "r2": float(1.0 - (err**2).sum() / ss_tot) if ss_tot > 0 else float("nan"),
        "accuracy": float((pos_t == pos_p).mean()),
        "precision": tp / int(pos_p.sum()) if pos_p.any() else float("nan"),
        "recall": tp / int(pos_t.sum()) if pos_t.any() else float("nan"),
    }
