"""``ase-em network`` through main() (tiny model)."""

from __future__ import annotations

import json

import pytest

from ase_em.cli.main import main
from ase_em.crystals.labelling import migration_graph_with_em
from tests.conftest import EXAMPLES

LIFEPO4 = EXAMPLES / "structures" / "LiFePO4.cif"


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_network_text_and_plot(tmp_path, capsys, tiny_model_dir):
    png = tmp_path / "net.png"
    argv = ["network", LIFEPO4, "--ion", "Li", "--max-distance", "3.5", "--model", tiny_model_dir]
    code, out, err = run([*argv, "--plot", png], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{LIFEPO4}: LiFePO4, Li hops up to 3.5 A, model tiny-test")
    row = lines[2].split()
    assert row[0] == "0" and row[1] == "2.985" and row[4] == "4"  # label, length, per cell
    em = float(row[2])
    assert f"percolation barrier (eV): 1D {em:.3f}  2D none  3D none" in out  # olivine: 1D channels
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_network_json_matches_python_api(capsys, tiny_model_dir, tiny_predictor):
    code, out, _ = run(
        ["network", LIFEPO4, "--ion", "Li", "--max-distance", "3.5", "--model", tiny_model_dir, "--json"],
        capsys,
    )
    assert code == 0
    data = json.loads(out)
    assert data["formula"] == "LiFePO4" and data["ion"] == "Li" and data["model"] == "tiny-test"
    (hop,) = data["hops"]
    assert hop["length"] == pytest.approx(2.985, abs=1e-3) and hop["multiplicity"] == 4
    mg = migration_graph_with_em(LIFEPO4, "Li", 3.5, tiny_predictor)
    (expected,) = {d["em"] for _, _, d in mg.m_graph.graph.edges(data=True)}
    assert hop["em"] == pytest.approx(expected, abs=1e-4)
    assert data["percolation"] == {"1D": pytest.approx(expected, abs=1e-4), "2D": None, "3D": None}


def bad_cif(directory):
    path = directory / "bad.cif"
    path.write_text("data_x\n_cell_length_a 1\nnonsense\n")
    return path


@pytest.mark.parametrize(
    ("make_input", "ion", "message"),
    [
        (lambda d: d / "missing.cif", "Li", "no such file"),
        (bad_cif, "Li", "cannot read a structure"),
        (lambda d: LIFEPO4, "Na", "LiFePO4.cif (LiFePO4): no Na in the structure"),
    ],
    ids=["missing", "unreadable", "no-ion"],
)
def test_network_input_errors(tmp_path, capsys, tiny_model_dir, make_input, ion, message):
    code, out, err = run(["network", make_input(tmp_path), "--ion", ion, "--model", tiny_model_dir], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("ase-em network: error:") and message in err


def test_table_says_why_hops_are_blocked(tmp_path, capsys, tiny_model_dir):
    """A Li-O chain (Li-O 1.8 A): the only Li-Li hop, 3.6 A along the chain, runs through O."""
    from pymatgen.core import Lattice, Structure

    chain = tmp_path / "chain.cif"
    lattice = Lattice.orthorhombic(3.6, 8.0, 8.0)
    Structure(lattice, ["Li", "O"], [[0, 0, 0], [0.5, 0, 0]]).to(filename=str(chain))
    code, out, err = run(["network", chain, "--ion", "Li", "--empty-sites", "no", "--model", tiny_model_dir],
                         capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[2].split()[:3] == ["0", "3.600", "blocked"]
    assert "percolation barrier (eV): not computed, every hop is blocked (hop 0: " in out
    assert "passes 0.000 A from host atom" in out and "none" not in out
    # a structure with open and blocked hops: the table gives the reason under it
    licoo2 = EXAMPLES / "structures" / "LiCoO2.cif"
    code, out, err = run(["network", licoo2, "--ion", "Li", "--max-distance", "6", "--model", tiny_model_dir],
                         capsys)
    assert code == 0, err
    blocked = [line.split()[0] for line in out.splitlines()[2:] if line.split()[2:3] == ["blocked"]]
    reasons = [line for line in out.splitlines() if line.startswith("blocked: hop ")]
    assert blocked and [r.split()[2].rstrip(":") for r in reasons] == blocked
    assert "percolation barrier (eV): 1D " in out


def test_network_html_view(tmp_path, capsys, tiny_model_dir):
    page = tmp_path / "net.html"
    code, out, err = run(["network", LIFEPO4, "--ion", "Li", "--max-distance", "3.5",
                          "--model", tiny_model_dir, "--plot", page], capsys)
    assert code == 0, err
    html = page.read_text()
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "percolating (1D)" in html and "Li sites" in html
    assert f"wrote {page}" in out
