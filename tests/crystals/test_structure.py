"""Structure files: occupancy rounding, vacancy symbols, multi-block CIFs, MigrationGraph JSON, no host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pymatgen.core import Element

from ase_em.cli.main import main
from ase_em.crystals.cif_text import cif_blocks
from ase_em.crystals.disordered import disordered_input
from ase_em.crystals.structure import check_host, read_structure_file, to_structure
from ase_em.errors import MissingIonError, StructureFileError, VacancySupercellError

DATA = Path(__file__).resolve().parents[1] / "data"
LFP_10001 = DATA / "LFP_occ10001.cif"  # LiFePO4 whose Li site is occupied 1.0001 (refinement rounding)
LLTO = DATA / "llto_disordered.cif"  # A site: Li 0.33 + La 0.56 (0.11 empty)
SPINEL_GRAPH = DATA / "pmgd_mg_spinel_MgMn2O4.json"  # pymatgen-analysis-diffusion's test graph
ARGYRODITE_SITES = DATA / "gemdat_argyrodite.cif"  # GEMDAT's site file: 48 Li positions, no host


@pytest.mark.parametrize("occupancy", ["1.0001", "0.9999", "1.000(2)", "0.995"])
def test_occupancies_within_the_tolerance_of_one_are_full(tmp_path, occupancy):
    path = tmp_path / "lfp.cif"
    path.write_text(LFP_10001.read_text().replace("1.0001", occupancy))
    s = read_structure_file(path)
    assert s.is_ordered and s.composition.reduced_formula == "LiFePO4"
    assert disordered_input(path) is None  # ordered: not run as a disordered crystal
    assert to_structure(path).composition["Li"] == 4


def test_occupancy_beyond_the_tolerance_names_the_site_and_value(tmp_path):
    path = tmp_path / "lfp.cif"
    path.write_text(LFP_10001.read_text().replace("1.0001", "1.05"))
    message = r"lfp.cif: site Li0 is occupied 1.05 times \(Li0 1.05\), more than 1"
    with pytest.raises(StructureFileError, match=message):
        read_structure_file(path)
    path.write_text(LFP_10001.read_text().replace("1.0001", "0.98"))
    s = read_structure_file(path)  # 0.98: a partial site, kept for the orderings
    assert not s.is_ordered and s[0].species[Element("Li")] == pytest.approx(0.98)


@pytest.mark.parametrize("symbol", ["Va", "Vac", "vacancy"])
def test_vacancy_type_symbols_are_empty_fractions_not_vanadium(tmp_path, symbol):
    path = tmp_path / "llto_va.cif"
    row = f"  {symbol}  Va9  1  0.50000000  0.50000000  0.50000000  0.11\n"
    text = LLTO.read_text().replace("  Ti  Ti2", row + "  Ti  Ti2")
    path.write_text(text)
    s = read_structure_file(path)
    assert Element("V") not in s.composition
    a_site = next(site for site in s if Element("Li") in site.species)
    assert sum(a_site.species.values()) == pytest.approx(0.89)  # Li 0.33 + La 0.56, 0.11 empty


def test_multi_block_cif_is_read_block_by_block(tmp_path, capsys):
    path = tmp_path / "export.cif"
    path.write_text(LFP_10001.read_text() + "\n" + LLTO.read_text())
    assert cif_blocks(path) == ["LiFePO4", "Li0.33La0.56Ti1O3"]
    with pytest.raises(StructureFileError, match=r"2 structures \(data blocks LiFePO4, Li0.33La0.56Ti1O3\); "
                       r"choose one with --block NAME"):
        read_structure_file(path)
    assert read_structure_file(path, block="LiFePO4").composition.reduced_formula == "LiFePO4"
    assert not read_structure_file(path, block="Li0.33La0.56Ti1O3").is_ordered
    with pytest.raises(StructureFileError, match=r"no data block 'nope' with atom sites"):
        read_structure_file(path, block="nope")
    assert main(["network", str(path), "--ion", "Li"]) == 2
    assert "choose one with --block NAME" in capsys.readouterr().err


def test_insertion_migration_graph_is_refused_with_its_convention(tmp_path, capsys, tiny_predictor):
    """vac_mode=False graph of the empty Mn2O4 host plus every candidate Mg site (8a and 16c, 1.79 A)."""
    from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph

    from ase_em.crystals.labelling import label_migration_graph

    mg = MigrationGraph.from_dict(json.loads(SPINEL_GRAPH.read_text()))
    assert mg.vac_mode is False
    message = r"vac_mode=False.*Mg sites \d+ and \d+ 1.79 A apart.*cannot be filled together"
    with pytest.raises(VacancySupercellError, match=message + r".*vacancy hops between the occupied sites"):
        label_migration_graph(mg, tiny_predictor)
    message = r"a serialized MigrationGraph \(vac_mode=False\), not a Structure"
    with pytest.raises(StructureFileError, match=message):
        read_structure_file(SPINEL_GRAPH)
    assert main(["network", str(SPINEL_GRAPH), "--ion", "Mg"]) == 2
    assert "serialized MigrationGraph" in capsys.readouterr().err


def test_migration_graph_json_of_a_crystal_is_read_as_its_structure(tmp_path, tiny_predictor):
    from ase_em.crystals.labelling import migration_graph_with_em

    mg = migration_graph_with_em(DATA / "LiFePO4_oxi.cif", "Li", predictor=tiny_predictor)
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(mg.as_dict(), default=str))
    assert read_structure_file(path).composition.reduced_formula == "LiFePO4"


def test_a_file_of_ion_sites_without_host_is_named_as_such():
    s = read_structure_file(ARGYRODITE_SITES)
    with pytest.raises(MissingIonError, match=r"only Li atoms \(48 sites\), no host framework"):
        check_host(s, "Li", "gemdat_argyrodite.cif")
    check_host(read_structure_file(LFP_10001), "Li")  # a host: accepted
