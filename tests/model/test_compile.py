"""A compiled forward gives the eager barriers; the "auto" rule and the fallback."""

import logging
import shutil

import pytest
from ase.io import read

from ase_em.errors import AseEmError
from ase_em.predictor import EmPredictor, determine_compile
from tests.conftest import EXAMPLES


def _hops(endpoints):
    lifepo4 = (read(EXAMPLES / "LiFePO4" / "initial.vasp"), read(EXAMPLES / "LiFePO4" / "final.vasp"))
    return [endpoints, lifepo4, endpoints]


def test_compile_mode_from_argument_then_environment(monkeypatch):
    monkeypatch.delenv("ASE_EM_COMPILE", raising=False)
    assert determine_compile() == "auto"
    monkeypatch.setenv("ASE_EM_COMPILE", "never")
    assert determine_compile() == "never"
    assert determine_compile("always") == "always"
    monkeypatch.setenv("ASE_EM_COMPILE", "yes")
    with pytest.raises(AseEmError, match="ASE_EM_COMPILE"):
        determine_compile()


def test_auto_stays_eager_for_a_few_hops(tiny_model_dir, endpoints):
    predictor = EmPredictor.from_pretrained(tiny_model_dir, compile="auto")
    predictor.predict(_hops(endpoints))
    assert predictor._compiled is None and predictor.n_predicted == 3


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="torch.compile's CPU backend needs a C++ compiler")
def test_compiled_forward_gives_the_eager_barriers(endpoints):
    hops = _hops(endpoints)
    eager = EmPredictor.from_pretrained(compile="never").predict(hops)
    compiled = EmPredictor.from_pretrained(compile="always")
    first = compiled.predict(hops)
    again = compiled.predict(hops[:1])  # another batch size: no new answer
    assert compiled._compiled is True
    for a, b in zip(eager, first):
        assert b.em == pytest.approx(a.em, abs=1e-5) and b.em_std == pytest.approx(a.em_std, abs=1e-5)
    assert again[0].em == pytest.approx(eager[0].em, abs=1e-5)
    assert abs(first[0].em - first[1].em) > 0.01  # two different hops


def test_a_failing_compile_falls_back_to_eager(tiny_model_dir, endpoints, monkeypatch, caplog):
    import torch

    def broken(*args, **kwargs):
        def run(*a, **k):
            raise RuntimeError("no C++ compiler")

        return run

    from ase_em.model import layers

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(layers, "_compiled_update", None)  # no kernel kept from an earlier test
    eager = EmPredictor.from_pretrained(tiny_model_dir, compile="never").predict(_hops(endpoints))
    predictor = EmPredictor.from_pretrained(tiny_model_dir, compile="always")
    with caplog.at_level(logging.WARNING):
        results = predictor.predict(_hops(endpoints))
    assert "no C++ compiler" in caplog.text and predictor._compiled is False
    assert layers._compiled_update is None and layers._update is layers.edge_gated_update
    assert [r.em for r in results] == pytest.approx([r.em for r in eager], abs=1e-6)
