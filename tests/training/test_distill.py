"""Distillation: one network with a spread head, taught an ensemble's barrier and spread."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ase_em.config import GraphConfig
from ase_em.hops.hop import Hop
from ase_em.model.band import build_band
from ase_em.model.graph import build_graph, collate
from ase_em.model.weights import load_model, save_model
from ase_em.training.distill import distil, predict_student, student_from_member
from tests.conftest import rocksalt_hop_endpoints

GRAPH = GraphConfig(cutoff=6.0, max_neighbors=8)


@pytest.fixture(scope="module")
def bands():
    """Eight real LiF vacancy hops: two lattice constants, strained along a random axis."""
    rng = np.random.default_rng(0)
    graphs = []
    for a in (4.0, 4.3):
        for _ in range(4):
            initial, final = rocksalt_hop_endpoints(a=a)
            strain = np.eye(3) + np.diag(rng.uniform(-0.04, 0.04, 3))
            for atoms in (initial, final):
                atoms.set_cell(atoms.cell @ strain, scale_atoms=True)
            graphs.append(build_graph(build_band(Hop.from_endpoints(initial, final)), GRAPH))
    return graphs


def teacher_answers(teacher, graphs):
    with torch.no_grad():
        em, spread = teacher(*collate(graphs))
    return em.numpy(), spread.numpy()


def test_student_starts_as_the_chosen_member(tiny_model_dir, bands, one_torch_thread):
    teacher = load_model(tiny_model_dir).ensemble
    student = student_from_member(teacher, member=1, spread=0.05)
    with torch.no_grad():
        g, lg = collate(bands)
        member = teacher.members[1](g, lg).numpy()
        em, spread = student(g, lg)
    np.testing.assert_allclose(em.numpy(), member, atol=1e-6)
    np.testing.assert_allclose(spread.numpy(), 0.05, rtol=1e-5)
    # the teacher is untouched
    assert len(teacher.members) == 3 and not teacher.config.spread_head


def test_distil_learns_the_teachers_answers_and_resumes(tiny_model_dir, bands, tmp_path, one_torch_thread):
    teacher = load_model(tiny_model_dir).ensemble
    em, spread = teacher_answers(teacher, bands)
    student = student_from_member(teacher, member=0, spread=float(np.median(spread)))
    start_em, start_spread = predict_student(student, bands)
    gap0 = np.abs(start_em - em).mean() + np.abs(start_spread - spread).mean()

    ckpt = tmp_path / "student.ckpt"
    first = distil(student, bands, em, spread, epochs=40, lr=3e-3, batch_size=4, checkpoint=ckpt,
                   validation=(bands, em, spread))
    assert [row["epoch"] for row in first] == list(range(1, 41))
    end_em, end_spread = predict_student(student, bands)
    gap = np.abs(end_em - em).mean() + np.abs(end_spread - spread).mean()
    assert gap < 0.5 * gap0
    assert first[-1]["val_em_mae"] == pytest.approx(np.abs(end_em - em).mean(), rel=1e-4)

    # a run that finds its finished checkpoint trains no further and keeps the history
    again = student_from_member(teacher, member=0, spread=float(np.median(spread)))
    history = distil(again, bands, em, spread, epochs=40, lr=3e-3, batch_size=4, checkpoint=ckpt)
    assert history == first
    np.testing.assert_allclose(predict_student(again, bands)[0], end_em, atol=1e-6)


def test_a_saved_student_gives_error_bars_through_the_predictor(tiny_model_dir, bands, tmp_path, endpoints):
    from ase_em.predictor import EmPredictor

    loaded = load_model(tiny_model_dir)
    student = student_from_member(loaded.ensemble, member=0, spread=0.08)
    card = {"name": "tiny-student", "uncertainty": {"spread_scale": 2.0, "relative": 0.0, "floor": 0.0}}
    save_model(student, GRAPH, tmp_path / "student", card)
    predictor = EmPredictor.from_pretrained(tmp_path / "student")
    result = predictor.predict_one(endpoints)
    # the taught spread (0.08 eV at the start) through the card's calibration
    assert result.em_std == pytest.approx(2.0 * 0.08, rel=1e-4)
    member = EmPredictor.from_pretrained(tiny_model_dir)
    # the barrier is member 0's, not the teacher's mean
    with torch.no_grad():
        g = build_graph(build_band(Hop.from_endpoints(*endpoints)), GRAPH)
        expected = float(loaded.ensemble.members[0](*collate([g]))[0])
    assert result.em == pytest.approx(expected, abs=1e-5)
    assert member.predict_one(endpoints).em != pytest.approx(expected, abs=1e-5)


def test_distil_refuses_mismatched_inputs(tiny_model_dir, bands):
    teacher = load_model(tiny_model_dir).ensemble
    student = student_from_member(teacher)
    with pytest.raises(ValueError, match="8 graphs but 7 barriers and 8 spreads"):
        distil(student, bands, np.zeros(7), np.zeros(8), epochs=1)
    with pytest.raises(ValueError, match="one network with a spread head"):
        distil(teacher, bands, np.zeros(8), np.zeros(8), epochs=1)


def test_finetune_refuses_a_distilled_base(tiny_model_dir, tmp_path):
    from ase_em.errors import AseEmError
    from ase_em.training.finetune import finetune
    from tests.training.test_data import write_hops_csv

    student = student_from_member(load_model(tiny_model_dir).ensemble)
    save_model(student, GRAPH, tmp_path / "student", {"name": "tiny-student", "teacher": "tiny-test"})
    data, _ = write_hops_csv(tmp_path / "data", n=3)
    says = "student: a distilled model .* fine-tune tiny-test and distil again"
    with pytest.raises(AseEmError, match=says):
        finetune(data, output=tmp_path / "out", base=tmp_path / "student")
    assert not (tmp_path / "out").exists()
