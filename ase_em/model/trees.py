"""The tree stage of ``alignn-em-v3``: extremely randomized trees on hop descriptors and BVSE barriers.

The model's barrier is the mean of the network ensemble's and this stage's prediction. The
stage reads, per hop, :func:`hop_descriptors` (70 numbers: hop length, each ion image's
distances to its host neighbours, the ion, anion fractions, volume per atom) and the twelve
bond-valence barriers of :mod:`ase_em.hops.bond_valence`. A hop bvlain has no parameters for
gets the training medians in those twelve columns.

What ships is the training table (``trees.npz``: the descriptors and barriers of the TRAIN
hops, their DFT barriers, the trees' settings and the BVSE path search's grid), not a
pickled scikit-learn model: the trees are fitted from it when first needed (about 1-2 s,
one thread, a fixed random_state), so the stage does not depend on one scikit-learn version's pickle format.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ase_em.hops.hop import Hop

logger = logging.getLogger(__name__)

TREES_FILE = "trees.npz"
ANIONS = ("O", "S", "Se", "Te", "F", "Cl", "Br", "I", "N")
IONS = ("Li", "Na", "K", "Rb", "Mg", "Ca", "Sr", "Zn", "Al")
NEAR = 6  # host neighbours per ion image
TREE_SETTINGS = {"n_estimators": 500, "min_samples_leaf": 1, "max_features": 0.5}


def hop_descriptors(hop: Hop) -> np.ndarray:
    """Geometric and chemical descriptors of one hop (the model study's descriptor floor).

    Per ion image of the band (5): the distances to its :data:`NEAR` nearest host atoms
    (6.0 A where fewer lie within 6 A), the number of host atoms within 2.5 and 3.0 A, and the
    nearest anion and cation distances; then the ion (one-hot over :data:`IONS`), the host's
    fraction of each of :data:`ANIONS`, and the volume per atom of the band.

    Args:
        hop: the hop.

    Returns:
        (70,) float array: hop length (A), 5 x 10 image columns, 9 ion, 9 anion, 1 volume (A^3).
    """
    from ase_em.hops.checks import points_near

    # the host atoms (and their periodic images) within 6 A of each ion image: pymatgen's
    # compiled search, the same pairs as ASE's neighbor_list on the band (0.3 ms, not 60 ms, a hop)
    i, j, _, d = points_near(hop.host_positions, hop.ion_positions(), hop.cell, 6.0)
    symbols = np.asarray(hop.host_symbols)
    feats = [hop.length]
    for k in range(5):
        sel = i == k
        dk, jk = d[sel], j[sel]
        order = np.argsort(dk, kind="stable")
        near = np.full(NEAR, 6.0)
        near[: min(NEAR, len(order))] = dk[order][:NEAR]
        is_anion = np.isin(symbols[jk], ANIONS)
        feats += list(near)
        feats += [(dk < 2.5).sum(), (dk < 3.0).sum()]
        feats += [dk[is_anion].min() if is_anion.any() else 6.0,
                  dk[~is_anion].min() if (~is_anion).any() else 6.0]
    feats += [float(hop.ion == x) for x in IONS]
    feats += [float((symbols == a).mean()) for a in ANIONS]
    feats += [abs(np.linalg.det(hop.cell)) / (5 + len(symbols))]
    return np.asarray(feats, float)


def bond_valence_columns(hop: Hop, grid: float | None = None, tube: float | None = None) -> np.ndarray | None:
    """The twelve BVSE barriers of :data:`ase_em.hops.bond_valence.BARRIER_NAMES` (eV), or None.

    ``grid`` and ``tube`` (A) are the path search's settings (default: the module's ``GRID``
    and ``TUBE``); a model uses the ones its training table was computed with.

    None when bvlain has no usable parameters for the hop (logged at INFO with the reason), or
    its tables lack an element or oxidation state of the host (logged at WARNING).
    Values are clipped to +-50 eV, as in training.
    """
    from ase_em.hops import bond_valence as bv

    try:
        b = bv.bond_valence_profile(hop, grid=bv.GRID if grid is None else grid,
                                    tube=bv.TUBE if tube is None else tube).barriers()
    except bv.BondValenceError as exc:
        logger.info("%s; the tree stage reads the training medians instead", exc)
        return None
    except (KeyError, ValueError, IndexError) as exc:  # bvlain's tables lack an element or state
        logger.warning("%s: no bond-valence barriers (%s: %s); the tree stage reads the training medians",
                       hop.name or "hop", type(exc).__name__, exc)
        return None
    return np.clip(np.asarray([b[k] for k in bv.BARRIER_NAMES], float), -50, 50)


class TreeStage:
    """Trees on descriptors + BVSE barriers, fitted from a model's shipped training table.

    Args:
        X: (n, 82) training features (70 descriptors, 12 BV barriers; NaN where none).
        y: (n,) DFT barriers (eV).
        settings: ExtraTreesRegressor settings (plus ``random_state``).
        bond_valence: the BVSE path search's ``{"grid": A, "tube": A}`` the table's barriers
            were computed with; new hops get the same.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, settings: dict[str, Any],
                 bond_valence: dict[str, float]) -> None:
        """Keep the table; the trees are fitted on first use."""
        self.X = np.asarray(X, float)
        self.y = np.asarray(y, float)
        self.settings = dict(settings)
        self.bond_valence = {"grid": float(bond_valence["grid"]), "tube": float(bond_valence["tube"])}
        self.medians = np.nanmedian(self.X, 0)
        self._trees = None

    @classmethod
    def load(cls, model_dir: Path) -> TreeStage | None:
        """The stage of a model directory, or None when it has no ``trees.npz``."""
        path = Path(model_dir) / TREES_FILE
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as f:
            return cls(f["X"], f["y"], json.loads(str(f["settings"])), json.loads(str(f["bond_valence"])))

    def save(self, model_dir: Path) -> None:
        """Write the table as ``model_dir/trees.npz``."""
        np.savez_compressed(Path(model_dir) / TREES_FILE, X=self.X, y=self.y,
                            settings=np.asarray(json.dumps(self.settings, sort_keys=True)),
                            bond_valence=np.asarray(json.dumps(self.bond_valence, sort_keys=True)))

    def features(self, hops: list[Hop]) -> np.ndarray:
        """(len(hops), 82) features of the hops; training medians for missing BV barriers."""
        rows = []
        for hop in hops:
            bv = bond_valence_columns(hop, **self.bond_valence)
            rows.append(np.concatenate([hop_descriptors(hop), self.medians[-12:] if bv is None else bv]))
        return np.stack(rows) if rows else np.zeros((0, self.X.shape[1]))

    def _fit(self, X: np.ndarray, y: np.ndarray, medians: np.ndarray):
        from sklearn.ensemble import ExtraTreesRegressor

        return ExtraTreesRegressor(n_jobs=1, **self.settings).fit(_impute(X, medians), y)

    def fit_predict(self, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray) -> np.ndarray:
        """Fit fresh trees on a training table and predict another (cross-validation)."""
        medians = np.nanmedian(X_train, 0)
        return self._fit(X_train, y_train, medians).predict(_impute(X_test, medians))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(n,) barriers (eV) of feature rows, from trees fitted on the whole training table."""
        if self._trees is None:
            self._trees = self._fit(self.X, self.y, self.medians)
        return self._trees.predict(_impute(X, self.medians))


def _impute(X: np.ndarray, medians: np.ndarray) -> np.ndarray:
    """``X`` with its NaN cells (hops without BV barriers) set to the columns' medians."""
    return np.where(np.isfinite(X), X, medians)
