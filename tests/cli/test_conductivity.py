"""``ase-em conductivity`` through main() (tiny model)."""

from __future__ import annotations

import json

import pytest

from ase_em.cli.main import main
from ase_em.crystals.analyzer import MigrationBarrierAnalyzer
from tests.conftest import EXAMPLES

LIFEPO4 = EXAMPLES / "structures" / "LiFePO4.cif"


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_conductivity_json_matches_python_api(tmp_path, capsys, tiny_model_dir, tiny_predictor):
    png = tmp_path / "arr.png"
    argv = ["conductivity", LIFEPO4, "--ion", "Li", "--T", "300", "400", "500", "--max-distance", "3.5",
            "--samples", "20", "--model", tiny_model_dir, "--json", "--plot", png]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["T"] == [300.0, 400.0, 500.0]
    for key in ("log10_sigma", "log10_sigma_std", "D"):
        assert len(data[key]) == 3
    assert data["units"]["sigma"] == "S/cm" and data["model"] == "tiny-test"
    an = MigrationBarrierAnalyzer(LIFEPO4, "Li", max_distance=3.5, predictor=tiny_predictor)
    res = an.conductivity([300.0, 400.0, 500.0], n_samples=20)
    assert data["log10_sigma"] == [float(x) for x in res.log10_sigma]
    assert data["activation_energy"] == res.activation_energy
    assert data["dimension"] == 1 and data["percolation"]["2D"] is None  # olivine: b channels
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_conductivity_text(capsys, tiny_model_dir):
    code, out, err = run(["conductivity", LIFEPO4, "--ion", "Li", "--max-distance", "3.5", "--samples", "0",
                          "--model", tiny_model_dir], capsys)
    assert code == 0, err
    assert "log10 sigma/(S/cm)" in out and "activation energy (Arrhenius fit 250-500 K)" in out
    assert "Haven ratio 1" in out


def test_conductivity_bad_input_exit_2(tmp_path, capsys, tiny_model_dir):
    code, _, err = run(["conductivity", LIFEPO4, "--ion", "Na", "--model", tiny_model_dir], capsys)
    assert code == 2 and "Na" in err
    code, _, err = run(["conductivity", tmp_path / "missing.cif", "--ion", "Li"], capsys)
    assert code == 2 and "no such file" in err
    for bad, message in ((["--T", "-3"], "must be a finite number > 0"), (["--samples", "-1"], ">= 0"),
                         (["--nu", "x"], "not a number")):
        with pytest.raises(SystemExit) as exc:
            main(["conductivity", str(LIFEPO4), "--ion", "Li", *bad])
        assert exc.value.code == 2 and message in capsys.readouterr().err
