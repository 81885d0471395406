"""Shared fixtures: small real structures and a tiny, randomly initialised model."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms

from ase_em.config import GraphConfig, ModelConfig
from ase_em.model.model import EmEnsemble
from ase_em.model.weights import save_model

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def rocksalt_hop_endpoints(a: float = 4.2, reps: int = 2) -> tuple[Atoms, Atoms]:
    """LiF-like rock salt supercell with one Li vacancy; the Li next to it hops in.

    Returns (initial, final): same atoms in the same order, only the hopping Li moves.
    """
    from ase.build import bulk

    crystal = bulk("LiF", "rocksalt", a=a, cubic=True).repeat(reps)  # 8 * reps^3 atoms
    li = [i for i, s in enumerate(crystal.get_chemical_symbols()) if s == "Li"]
    vacancy = li[0]
    # nearest Li to the vacancy (a/sqrt(2) away on the fcc sublattice)
    d = crystal.get_distances(vacancy, li[1:], mic=True)
    mover = li[1:][int(np.argmin(d))]
    initial = crystal.copy()
    del initial[vacancy]
    mover_new = mover - (1 if mover > vacancy else 0)
    final = initial.copy()
    vec = crystal.get_distance(mover, vacancy, mic=True, vector=True)
    final.positions[mover_new] = crystal.positions[mover] + vec
    return initial, final


@pytest.fixture(scope="session")
def endpoints() -> tuple[Atoms, Atoms]:
    return rocksalt_hop_endpoints()


# a network small enough to build and train in a test
TINY_CONFIG = ModelConfig(
    alignn_layers=1,
    gcn_layers=1,
    hidden_features=16,
    embedding_features=16,
    edge_input_features=16,
    triplet_input_features=8,
)


def make_tiny_model(directory: Path, n_members: int = 3, seed: int = 0) -> Path:
    """Write a tiny random model (fast to build and run) as a model directory."""
    torch.manual_seed(seed)
    ensemble = EmEnsemble(TINY_CONFIG, n_members=n_members)
    for k, m in enumerate(ensemble.members):
        m.target_mean.fill_(0.8 + 0.01 * k)
        m.target_std.fill_(0.5)
    card = {"name": "tiny-test", "metrics": {"cv_out_of_fold": {"mae": 9.99}, "scheme": "none"}}
    save_model(ensemble, GraphConfig(cutoff=6.0, max_neighbors=8), directory, card)
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_predictor(tiny_model_dir):
    from ase_em.predictor import EmPredictor

    return EmPredictor.from_pretrained(tiny_model_dir)


def jarvis_dict(a: Atoms) -> dict:
    """A JARVIS atoms dict (fractional coordinates) of ASE atoms, as em619 and mpt store them."""
    return {
        "lattice_mat": a.cell.tolist(),
        "coords": a.get_scaled_positions().tolist(),
        "elements": a.get_chemical_symbols(),
        "cartesian": False,
    }


def write_mpt_dir(directory: Path) -> Path:
    """A tiny mpt folder (six crystals; properties bg, gv and fe) for ``ase-em pretrain``."""
    from ase.build import bulk

    crystals = [
        bulk("NaCl", "rocksalt", a=5.6),
        bulk("Si", "diamond", a=5.43),
        bulk("Cu", "fcc", a=3.6),
        bulk("MgO", "rocksalt", a=4.2),
        bulk("LiF", "rocksalt", a=4.0),
        bulk("Al", "fcc", a=4.05),
    ]
    bg = [
        {"id": f"bg-{i}", "atoms": jarvis_dict(a), "target": t}
        for i, (a, t) in enumerate(zip(crystals, [5.0, 0.6, 0, 4.5, 9.0, 0]))
    ]
    gv = [
        {"id": f"gv-{i}", "atoms": jarvis_dict(a), "target": t}
        for i, (a, t) in enumerate(zip(crystals, [1.2, 1.8, 1.7, 2.1, 1.7, 1.4]))
    ]
    (directory / "scaled_only").mkdir(parents=True, exist_ok=True)
    fe = [
        {"id": f"fe-{i}", "atoms": jarvis_dict(a), "target_minmax": t}
        for i, (a, t) in enumerate(zip(crystals, [-0.5, 0.1, 0.2, -0.7, -0.9, 0.3]))
    ]
    for name, recs in (("bg.json.gz", bg), ("gv.json.gz", gv), ("scaled_only/fe.minmax.json.gz", fe)):
        with gzip.open(directory / name, "wt") as f:
            json.dump(recs, f)
    return directory


@pytest.fixture()
def mpt_dir(tmp_path) -> Path:
    return write_mpt_dir(tmp_path)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: tiny training runs are many small ops, which extra
    threads only slow down (16x on 2 cores shared with another process)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
