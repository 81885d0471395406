"""Predictor invariances, saving and loading, element and checksum errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from ase.io import write
from pymatgen.io.ase import AseAtomsAdaptor

from ase_em.errors import AseEmError, ModelLoadError, UnsupportedElementError
from ase_em.hops.hop import Hop
from ase_em.model.band import build_band
from ase_em.model.graph import build_graph
from ase_em.model.weights import load_model, save_model
from ase_em.predictor import EmPredictor


def _em(predictor, hop):
    return predictor.predict_one(hop).em


def test_same_em_for_every_input_form(tiny_predictor, endpoints, tmp_path):
    initial, final = endpoints
    ref = _em(tiny_predictor, Hop.from_endpoints(initial, final))
    write(tmp_path / "i.vasp", initial, format="vasp")
    write(tmp_path / "f.vasp", final, format="vasp")
    write(tmp_path / "neb.traj", [initial, initial, final])
    forms = [
        (initial, final),
        Hop.from_endpoints(AseAtomsAdaptor.get_structure(initial), AseAtomsAdaptor.get_structure(final)),
        Hop.from_endpoints(tmp_path / "i.vasp", tmp_path / "f.vasp"),
        Hop.from_images(tmp_path / "neb.traj"),
        [initial, final],
    ]
    for form in forms:
        assert _em(tiny_predictor, form) == pytest.approx(ref, abs=1e-4)


def test_em_invariant_to_host_order_and_translation(tiny_predictor, endpoints):
    initial, final = endpoints
    ref = tiny_predictor.predict_one(Hop.from_endpoints(initial, final))
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(initial))
    permuted = tiny_predictor.predict_one(Hop.from_endpoints(initial[perm], final[perm]))
    assert permuted.hop.ion_index == int(np.where(perm == 25)[0][0])
    assert permuted.em == pytest.approx(ref.em, abs=1e-4)
    assert permuted.em_std == pytest.approx(ref.em_std, abs=1e-4)
    shift = np.array([1.37, -2.11, 0.53])
    moved_i, moved_f = initial.copy(), final.copy()
    moved_i.translate(shift)
    moved_f.translate(shift)
    moved_i.wrap()
    moved_f.wrap()
    assert _em(tiny_predictor, (moved_i, moved_f)) == pytest.approx(ref.em, abs=1e-4)


def test_prediction_depends_on_the_hop(tiny_predictor, endpoints):
    """Different hops must not collapse onto one number (a constant model would pass the rest)."""
    initial, final = endpoints
    squeezed_i, squeezed_f = initial.copy(), final.copy()
    for a in (squeezed_i, squeezed_f):
        a.set_cell(a.cell * 0.93, scale_atoms=True)
    a, b = tiny_predictor.predict([(initial, final), (squeezed_i, squeezed_f)])
    assert abs(a.em - b.em) > 5e-5  # 100x the numerical noise of the invariance tests


def test_batched_equals_single(tiny_predictor, endpoints):
    initial, final = endpoints
    squeezed_i, squeezed_f = initial.copy(), final.copy()
    for a in (squeezed_i, squeezed_f):
        a.set_cell(a.cell * 0.95, scale_atoms=True)
    hops = [(initial, final), (squeezed_i, squeezed_f)] * 3
    batched = tiny_predictor.predict(hops)
    assert len(batched) == 6
    for hop, res in zip(hops, batched):
        assert _em(tiny_predictor, hop) == pytest.approx(res.em, abs=1e-5)


def test_save_load_roundtrip(tiny_model_dir, endpoints, tmp_path):
    model = load_model(tiny_model_dir)
    copy = save_model(model.ensemble, model.graph_config, tmp_path / "copy", {"name": "copy"})
    a = EmPredictor.from_pretrained(tiny_model_dir).predict_one(endpoints)
    b = EmPredictor.from_pretrained(copy).predict_one(endpoints)
    assert a.em == pytest.approx(b.em, abs=1e-6)
    assert a.em_std is not None and a.em_std == pytest.approx(b.em_std, abs=1e-6)


def test_corrupt_weights_fail_the_checksum(tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    with open(broken / "model.pt", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelLoadError, match="checksum"):
        EmPredictor.from_pretrained(broken)
    with pytest.raises(ModelLoadError, match="not a model directory"):
        EmPredictor.from_pretrained(tmp_path / "nowhere")


def test_graph_settings_come_from_the_card(tiny_model_dir, tiny_predictor, endpoints):
    card = json.loads((tiny_model_dir / "card.json").read_text())
    assert card["graph"]["max_neighbors"] == 8
    g = tiny_predictor.graph(Hop.from_endpoints(*endpoints))
    counts = np.bincount(g.src.numpy(), minlength=int(g.z.shape[0]))
    assert counts.min() >= 8
    # rock salt: 12 second-shell neighbours tie, and all of them are kept (never cut by atom order)
    assert np.bincount(counts).argmax() == 18  # 6 first-shell + 12 tied second-shell neighbours


def test_ties_keep_the_graph_independent_of_atom_order(endpoints):
    from ase_em.config import GraphConfig

    band = build_band(Hop.from_endpoints(*endpoints))
    g1 = build_graph(band, GraphConfig(max_neighbors=8))
    perm = np.r_[np.arange(5), 5 + np.random.default_rng(1).permutation(len(band) - 5)]
    g2 = build_graph(band[perm], GraphConfig(max_neighbors=8))
    assert g1.src.shape == g2.src.shape
    assert g1.n_triplets == g2.n_triplets


def test_unsupported_element_is_refused(tiny_predictor, endpoints):
    initial, final = endpoints
    a, b = initial.copy(), final.copy()
    for x in (a, b):
        symbols = x.get_chemical_symbols()
        symbols[3] = "Og"
        x.set_chemical_symbols(symbols)
    with pytest.raises(UnsupportedElementError, match="Og"):
        tiny_predictor.predict_one((a, b))


FAULTS_OF_THREE_FORWARDS = """
import resource, torch
torch.set_num_threads(1)
from ase_em.hops import as_hop
from ase_em.model.graph import collate
from ase_em.predictor import EmPredictor
p = EmPredictor.from_pretrained(compile="never")
hop = as_hop(("examples/LiFePO4/initial.vasp", "examples/LiFePO4/final.vasp"))
g, lg = collate([p.graph(hop)] * 16)
with torch.inference_mode():
    p.model.ensemble(g, lg)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        p.model.ensemble(g, lg)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_predictor_keeps_freed_memory_so_forwards_stop_faulting_in_pages():
    """Once the predictor tunes malloc, repeated forwards reuse freed blocks: no fresh pages.

    Run in fresh processes (the tuning is process-wide), with and without ASE_EM_KEEP_MEMORY=0.
    """
    import os
    import subprocess
    import sys

    from ase_em._runtime.memory import keep_freed_memory

    if not keep_freed_memory():
        pytest.skip("not glibc, or ASE_EM_KEEP_MEMORY=0")
    root = Path(__file__).resolve().parents[1]

    def faults(keep: str) -> int:
        env = dict(os.environ, ASE_EM_KEEP_MEMORY=keep, OMP_NUM_THREADS="1")
        out = subprocess.run([sys.executable, "-c", FAULTS_OF_THREE_FORWARDS], cwd=root, env=env,
                             capture_output=True, text=True, check=True)
        return int(out.stdout.split()[-1])

    tuned, plain = faults("1"), faults("0")
    # 16 LiFePO4 bands, 5 members, 3 times: about 640,000 faults without the tuning; with it
    # 0 in most runs, but up to about 12,000 in some (measured over 12 fresh processes), so
    # the test compares the two instead of holding the tuned run to a fixed count
    assert plain > 100_000
    assert 20 * tuned < plain


def test_the_cpu_batch_size_does_not_move_the_shipped_barriers(endpoints):
    # the default batch (4 on a CPU: faster per hop than 32) gives the barriers and em_std of one
    # hop at a time and of a batch of 32, on bands of five different cells
    initial, final = endpoints
    hops = []
    for scale in (0.94, 0.97, 1.0, 1.02, 1.05, 0.99, 1.01):
        i, f = initial.copy(), final.copy()
        for a in (i, f):
            a.set_cell(a.cell * scale, scale_atoms=True)
        hops.append((i, f))
    default = EmPredictor.from_pretrained("alignn-em-v1", compile="never", device="cpu")
    assert default.batch_size == 4
    runs = [default.predict(hops)] + [
        EmPredictor.from_pretrained("alignn-em-v1", compile="never", device="cpu", batch_size=b).predict(hops)
        for b in (1, 32)
    ]
    ems = np.array([[r.em for r in run] for run in runs])
    stds = np.array([[r.em_std for r in run] for run in runs])
    assert np.ptp(ems[0]) > 0.01  # the cells differ enough to give different barriers
    np.testing.assert_allclose(ems, ems[[0]].repeat(3, 0), atol=2e-6)
    np.testing.assert_allclose(stds, stds[[0]].repeat(3, 0), atol=2e-6)
    with pytest.raises(AseEmError, match="batch_size must be at least 1"):
        EmPredictor.from_pretrained("alignn-em-v1", batch_size=0)
