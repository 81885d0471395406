"""Input integrity: every reader refuses bad structures with one line naming file and atom.

Inputs in tests/data/ are copies of field cases (../shared/cases/...): NaN coordinates,
a partially occupied CIF (OBELiX 09w written P1), an oxidation-state CIF, endpoints whose
atoms are listed in another order, NEB frames of different sizes, junk and truncated files.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import read

from ase_em.errors import (
    DisorderedStructureError,
    EndpointMismatchError,
    ImplausibleHopError,
    IonIndexError,
    SpeciesError,
    StructureFileError,
    VacancySupercellError,
)
from ase_em.hops import checks
from ase_em.hops.convert import as_hop
from ase_em.hops.hop import Hop
from ase_em.model.band import build_band

DATA = Path(__file__).resolve().parents[1] / "data"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
INITIAL = EXAMPLES / "LiFePO4" / "initial.vasp"
FINAL = EXAMPLES / "LiFePO4" / "final.vasp"


@pytest.fixture(scope="module")
def lfp_hop() -> Hop:
    return Hop.from_endpoints(INITIAL, FINAL)


# ---------------------------------------------------------------------- non-finite


@pytest.mark.parametrize("name", ["nan_fin.vasp", "inf_fin.vasp"])
def test_non_finite_coordinates_are_refused_naming_file_and_atom(name):
    with pytest.raises(StructureFileError, match=rf"{name}: atom 1 \(Li\) has non-finite coordinates"):
        Hop.from_endpoints(INITIAL, DATA / name)


def test_non_finite_atoms_structure_and_hop_are_refused(lfp_hop):
    atoms = read(INITIAL)
    atoms.positions[7] = [np.nan, 0, 0]
    with pytest.raises(StructureFileError, match=r"initial: atom 7 \(\w+\) has non-finite"):
        Hop.from_endpoints(atoms, FINAL)
    cell = read(INITIAL)
    cell.cell[0, 0] = np.inf
    with pytest.raises(StructureFileError, match="the cell has non-finite entries"):
        Hop.from_endpoints(cell, FINAL)
    with pytest.raises(StructureFileError, match="non-finite end"):
        Hop(lfp_hop.ion, lfp_hop.start, lfp_hop.end * np.nan, lfp_hop.host_symbols,
            lfp_hop.host_positions, lfp_hop.cell)


# ---------------------------------------------------------------------- partial occupancies


def test_partial_occupancies_are_refused_by_predict_and_network_alike():
    from ase_em.crystals.structure import to_structure

    message = r"p1_09w_ini.cif: partial occupancies; give an ordered structure \(site 0: Li 0.124\)"
    with pytest.raises(DisorderedStructureError, match=message):
        Hop.from_endpoints(DATA / "p1_09w_ini.cif", DATA / "p1_09w_fin.cif")
    with pytest.raises(DisorderedStructureError, match=message):
        to_structure(DATA / "p1_09w_ini.cif")
    atoms = read(DATA / "p1_09w_ini.cif")  # ASE filled every partial site
    assert len(atoms) == 100
    with pytest.raises(DisorderedStructureError, match="partial occupancies"):
        to_structure(atoms)


OVEROCCUPIED_CIF = """data_x
_cell_length_a 4.0
_cell_length_b 4.0
_cell_length_c 4.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Li1 Li 0.0 0.0 0.0 1.0
Cl1 Cl 0.5 0.5 0.5 1.3
"""


def test_occupancy_above_one_is_refused(tmp_path):
    path = tmp_path / "over.cif"
    path.write_text(OVEROCCUPIED_CIF)
    message = r"over.cif: site kind \S+ is occupied 1.3 times \(Cl 1.3\)"
    with pytest.raises(DisorderedStructureError, match=message):
        checks.check_ordered(read(path), str(path))
    path.write_text(OVEROCCUPIED_CIF.replace("1.3", "1.0"))
    checks.check_ordered(read(path), str(path))  # fully occupied: accepted


def test_disordered_pymatgen_structure_is_refused():
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice.cubic(4.0), [{"Li": 0.5, "Na": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(DisorderedStructureError, match=r"site 0: Li 0.5, Na 0.5"):
        Hop.from_endpoints(s, s)


# ---------------------------------------------------------------------- overlapping atoms


def test_atoms_far_closer_than_bonding_are_refused_naming_the_pair():
    # 0.6 A: above the old 0.5 A floor, but 0.31 of the Li-O covalent radii sum (1.94 A)
    a = Atoms("LiOF", positions=[[1, 1, 1], [1.6, 1, 1], [5, 5, 5]], cell=np.eye(3) * 9, pbc=True)
    with pytest.raises(ImplausibleHopError, match=r"atoms 0 \(Li\) and 1 \(O\) are 0.600 A apart, 0.31 of"):
        checks.check_contacts(a, "x")
    a.positions[1] = [1 + 0.55 * 1.94, 1, 1]  # 0.55 of the radii sum: accepted (limit 0.5)
    checks.check_contacts(a, "x")


def test_two_anions_far_closer_than_any_bond_are_refused():
    """Two S 1.12 A apart (0.53 of the S-S covalent sum, above the general 0.5 limit): a misread
    file; an S-S bond of a polysulfide (2.05 A, 0.98) is a crystal."""
    a = Atoms("LiSS", positions=[[1, 1, 1], [4, 4, 4], [4 + 1.12, 4, 4]], cell=np.eye(3) * 9, pbc=True)
    assert checks.closest_contact(a) is None or not checks.contact_is_overlap(checks.closest_contact(a))
    message = r"atoms 1 \(S\) and 2 \(S\) are 1.120 A apart, 0.53 of .*two anions far closer than any bond"
    with pytest.raises(ImplausibleHopError, match=message + r" \(limit 0.6\)"):
        checks.check_contacts(a, "x")
    with pytest.raises(ImplausibleHopError, match=r"host atom 0 \(S\) and host atom 1 \(S\) are 1.120 A"):
        Hop(ion="Li", start=np.array([1.0, 1, 1]), end=np.array([1.0, 3.5, 1]), host_symbols=("S", "S"),
            host_positions=a.positions[1:], cell=np.eye(3) * 9)
    a.positions[2] = [4 + 2.05, 4, 4]
    checks.check_contacts(a, "x")
    s_o = Atoms("SO", positions=[[4, 4, 4], [5.44, 4, 4]], cell=np.eye(3) * 9, pbc=True)
    checks.check_contacts(s_o, "sulfate")  # S-O of a sulfate, 0.69 of the sum: not one anion element


# ---------------------------------------------------------------------- species


@pytest.mark.parametrize("given", ["Li", "Li+", "Li1+", "Li+1", " Li "])
def test_species_with_charges_mean_the_element(given):
    assert checks.normalize_species(given) == "Li"


@pytest.mark.parametrize("given", ["Xx", "li", "Li++x", ""])
def test_unknown_species_is_refused(given):
    with pytest.raises(SpeciesError, match="not an element symbol"):
        checks.normalize_species(given)


def test_oxidation_state_structures_are_accepted_everywhere(lfp_hop):
    from pymatgen.core import Structure

    from ase_em.crystals.structure import check_ion, to_structure

    s = to_structure(DATA / "LiFePO4_oxi.cif")
    assert sorted(el.symbol for el in s.composition.elements) == ["Fe", "Li", "O", "P"]
    assert check_ion(s, "Li1+") == "Li"
    oxi = Structure.from_file(INITIAL)
    oxi.add_oxidation_state_by_element({"Li": 1, "Fe": 2, "P": 5, "O": -2})
    hop = Hop.from_endpoints(oxi, Structure.from_file(FINAL))
    assert hop.ion == "Li"
    assert hop.length == pytest.approx(lfp_hop.length)


# ---------------------------------------------------------------------- atom order


def test_permuted_atom_order_is_matched_and_said(caplog, lfp_hop):
    with caplog.at_level(logging.WARNING, logger="ase_em.hops.checks"):
        hop = Hop.from_endpoints(INITIAL, DATA / "perm_Li_fin.vasp")
    assert hop.ion_index == 0  # not atom 5 of the swapped pair
    assert hop.length == pytest.approx(2.9854, abs=1e-4)  # the true hop, not 8.20 A
    np.testing.assert_allclose(hop.end, lfp_hop.end, atol=1e-9)
    assert "2 Li atoms in another order" in caplog.text and "0<-5" in caplog.text
    with caplog.at_level(logging.WARNING, logger="ase_em.hops.checks"):
        hop = Hop.from_endpoints(INITIAL, DATA / "perm_O_fin.vasp")
    assert hop.ion_index == 0 and hop.length == pytest.approx(2.9854, abs=1e-4)
    assert "2 O atoms in another order" in caplog.text


def test_a_match_leaving_two_movers_or_a_tie_is_refused():
    cell = np.eye(3) * 12.0
    # Li at 2 and 5 on a line; final lists three Li in another order, one Li at 8: either the
    # ion jumps 6 A past the other Li, or both move 3 A; the two orders tie
    ini = Atoms("Li3O", positions=[[2, 5, 5], [5, 5, 5], [5, 9, 5], [9, 2, 2]], cell=cell, pbc=True)
    fin = Atoms("Li3O", positions=[[5, 9, 5], [8, 5, 5], [5, 5, 5], [9, 2, 2]], cell=cell, pbc=True)
    with pytest.raises(EndpointMismatchError, match=r"ambiguous|leaves 2 atoms moving"):
        Hop.from_endpoints(ini, fin)


def test_another_atom_moving_beyond_the_limit_is_refused():
    cell = np.eye(3) * 12.0
    ini = Atoms("Li2O", positions=[[2, 5, 5], [8, 8, 8], [5, 2, 2]], cell=cell, pbc=True)
    fin = Atoms("Li2O", positions=[[5, 5, 5], [8, 8, 8], [5, 2, 3.5]], cell=cell, pbc=True)  # O moves 1.5 A
    with pytest.raises(EndpointMismatchError, match=r"atom\(s\) 2 \(O, 1.50 A\) move more than 1.0 A"):
        Hop.from_endpoints(ini, fin)


# ---------------------------------------------------------------------- cells


def test_strained_final_cell_is_accepted_in_the_initial_cell_with_a_warning(caplog, lfp_hop):
    final = read(FINAL)
    final.set_cell(final.cell * 1.03, scale_atoms=True)  # relaxed final endpoint, 3 % larger
    with caplog.at_level(logging.WARNING, logger="ase_em.hops.checks"):
        hop = Hop.from_endpoints(INITIAL, final)
    assert "strain 3.00%" in caplog.text
    np.testing.assert_allclose(hop.cell, lfp_hop.cell)  # the band lives in the initial cell
    np.testing.assert_allclose(hop.end, lfp_hop.end, atol=1e-9)  # from fractional coordinates
    assert checks.cell_strain(read(FINAL).cell, final.cell) == pytest.approx(0.03)


# ---------------------------------------------------------------------- NEB frames, band5


def test_neb_frames_with_another_atom_count_are_refused_naming_the_frame():
    message = r"neb_badcount.extxyz: frame 2 has 110 atoms, frame 0 has 111"
    with pytest.raises(EndpointMismatchError, match=message):
        Hop.from_images(DATA / "neb_badcount.extxyz")
    frames = read(EXAMPLES / "LiFePO4" / "neb_images.extxyz", index=":")
    symbols = frames[3].get_chemical_symbols()
    symbols[0], symbols[-1] = symbols[-1], symbols[0]
    frames[3].set_chemical_symbols(symbols)
    with pytest.raises(EndpointMismatchError, match=r"atom 0 is O in frame 3 but Li in frame 0"):
        Hop.from_images(frames)


def test_single_atoms_must_be_a_band5(lfp_hop):
    from ase_em.ext.ase import hop_from_neb

    endpoint = read(INITIAL)  # the LiFePO4 initial endpoint: its first 5 sites are Li, not a band
    for convert in (Hop.from_band, as_hop, hop_from_neb):
        with pytest.raises(StructureFileError, match=r"not a band5 structure: sites 0-4 \(Li\) are not five"):
            convert(endpoint)
    band = build_band(lfp_hop)
    same = as_hop(band)
    np.testing.assert_allclose(same.end, lfp_hop.end, atol=1e-12)
    band.wrap()  # images wrapped into the cell: the same hop
    np.testing.assert_allclose(as_hop(band).end - as_hop(band).start, lfp_hop.end - lfp_hop.start, atol=1e-9)


# ---------------------------------------------------------------------- MigrationHop


def _lfp_migration_hop():
    from pymatgen.analysis.diffusion.neb.pathfinder import MigrationHop
    from pymatgen.core import PeriodicSite, Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    s = Structure.from_file(EXAMPLES / "structures" / "LiFePO4.cif")
    ss = SpacegroupAnalyzer(s, symprec=0.1).get_symmetrized_structure()
    li = next(site for site in s if site.specie.symbol == "Li")
    start = li.frac_coords
    end = PeriodicSite("Li", start + [0, 0.5, 0], s.lattice)
    mh = MigrationHop(PeriodicSite("Li", start, s.lattice), end, ss, symprec=0.1)
    return mh, s, start


def test_migration_hop_sites_within_pymatgen_tolerance_are_accepted():
    from pymatgen.core import PeriodicSite

    from ase_em.hops.migration_hop import hop_from_migration_hop

    mh, s, start = _lfp_migration_hop()
    exact = hop_from_migration_hop(mh)
    nudged = PeriodicSite("Li", start + [0, 0.5, 0] + [0.005 / s.lattice.a, 0, 0], s.lattice)
    mh.esite = nudged  # 0.005 A off the Li site (rounded coordinates)
    near = hop_from_migration_hop(mh)
    np.testing.assert_allclose(near.end - near.start, exact.end - exact.start, atol=1e-9)
    mh.esite = PeriodicSite("Li", start + [0, 0.5, 0] + [0.3 / s.lattice.a, 0, 0], s.lattice)
    with pytest.raises(VacancySupercellError, match=r"final site .* is 0.300 A from the nearest Li site"):
        hop_from_migration_hop(mh)


def test_fine_tune_rows_get_the_same_checks(tmp_path):
    import shutil

    from ase_em.errors import DataFileError
    from ase_em.training.data import load_csv

    for name in ("nan_fin.vasp", "p1_09w_ini.cif", "p1_09w_fin.cif"):
        shutil.copy(DATA / name, tmp_path / name)
    shutil.copy(INITIAL, tmp_path / "initial.vasp")
    shutil.copy(FINAL, tmp_path / "final.vasp")
    rows = [
        "id,initial,final,em",
        "good,initial.vasp,final.vasp,0.3",
        "nan,initial.vasp,nan_fin.vasp,0.3",
        "partial,p1_09w_ini.cif,p1_09w_fin.cif,0.3",
    ]
    (tmp_path / "hops.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataFileError) as err:
        load_csv(tmp_path / "hops.csv")
    text = str(err.value)
    assert "2 bad row(s)" in text
    assert "id 'nan'): column 'final': 'nan_fin.vasp': atom 1 (Li) has non-finite coordinates" in text
    assert "id 'partial'): column 'initial': 'p1_09w_ini.cif': partial occupancies; give an ordered" in text


# ---------------------------------------------------------------------- messages


def test_unreadable_files_get_a_reason():
    junk = r"junk.cif: cannot read a structure \(final\): binary content"
    with pytest.raises(StructureFileError, match=junk):
        Hop.from_endpoints(INITIAL, DATA / "junk.cif")
    with pytest.raises(StructureFileError, match=r"trunc_fin.vasp: .*truncated or malformed") as err:
        Hop.from_endpoints(INITIAL, DATA / "trunc_fin.vasp")
    assert "broadcast" not in str(err.value)


def test_negative_ion_index_is_refused():
    with pytest.raises(IonIndexError, match=r"ion index -1 is out of range 0..110"):
        Hop.from_endpoints(INITIAL, FINAL, ion_index=-1)


def test_cli_negative_ion_index_exits_2(capsys):
    from ase_em.cli.main import main

    assert main(["predict", str(INITIAL), str(FINAL), "--ion-index", "-1"]) == 2
    assert "ion index -1 is out of range" in capsys.readouterr().err


# ---------------------------------------------------------------------- imports


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_with_em_predictor_exists_in_any_import_order_and_import_is_light():
    first = (
        "import sys, ase_em\n"
        "assert not [m for m in sys.modules if m.startswith('pymatgen')]\n"
        "from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph\n"
        "print(hasattr(MigrationGraph, 'with_em_predictor'))\n"
    )
    assert _run(first).strip() == "True"
    second = (
        "from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph\n"
        "assert not hasattr(MigrationGraph, 'with_em_predictor')\n"
        "import ase_em\n"
        "print(hasattr(MigrationGraph, 'with_em_predictor'))\n"
    )
    assert _run(second).strip() == "True"


def test_a_multi_block_cif_is_not_one_endpoint(tmp_path):
    """A database export with two data blocks: not silently its last (or first) block."""
    from ase_em.hops.hop import to_atoms

    path = tmp_path / "export.cif"
    path.write_text((DATA / "LFP_occ10001.cif").read_text().replace("1.0001", "1") * 2)
    with pytest.raises(StructureFileError, match=r"export.cif: 2 structures \(CIF data blocks\); give one"):
        to_atoms(path, role="initial")


@pytest.mark.parametrize("cif,cutoff", [("LiFePO4.cif", 3.2), ("LiCoO2.cif", 4.5), ("LiFePO4.cif", 1.6),
                                        ("LiCoO2.cif", 2.0)])
def test_pairs_within_matches_ase_neighbor_list(cif, cutoff):
    """The compiled pair search gives ASE's pairs and distances, images and all.

    1.6 and 2.0 A lie under the search's smallest binning cube (SEARCH_MIN_CUBE): the
    pairs of a coarser binning are still exactly those within the cutoff (P-O 1.5-1.6 A in
    LiFePO4, Co-O 1.9 A in LiCoO2).
    """
    from ase.build import make_supercell
    from ase.io import read
    from ase.neighborlist import neighbor_list

    from ase_em.hops.checks import pairs_within

    atoms = read(EXAMPLES / "structures" / cif)
    atoms = make_supercell(atoms, [[1, 1, 0], [0, 1, 0], [0, 0, 1]])  # a skewed cell
    i, j, d = pairs_within(atoms, cutoff)
    ai, aj, ad = neighbor_list("ijd", atoms, cutoff)
    assert len(i) == len(ai) > 0
    ours = sorted(zip(i.tolist(), j.tolist(), np.round(d, 8).tolist()))
    theirs = sorted(zip(ai.tolist(), aj.tolist(), np.round(ad, 8).tolist()))
    assert ours == theirs
    anion = np.asarray(atoms.get_chemical_symbols()) == "O"
    i, j, d = pairs_within(atoms, cutoff, among=anion)
    assert anion[i].all() and anion[j].all()
    assert len(i) == int(np.sum(anion[ai] & anion[aj]))


def test_pairs_within_counts_two_atoms_at_one_place():
    """Two distinct atoms at one position are a pair at 0 A (an atom is never its own pair)."""
    from ase_em.hops.checks import pairs_within

    atoms = Atoms("NaClCl", positions=[[0, 0, 0], [1, 1, 1], [1, 1, 1]], cell=[4.0] * 3, pbc=True)
    i, j, d = pairs_within(atoms, 1.0)
    assert sorted(zip(i.tolist(), j.tolist())) == [(1, 2), (2, 1)]
    assert np.allclose(d, 0.0)


# ---------------------------------------------------------------------- hosts checked once


def _lfp_fields(hop: Hop, **changes) -> dict:
    fields = dict(ion=hop.ion, start=hop.start, end=hop.end, host_symbols=hop.host_symbols,
                  host_positions=hop.host_positions, cell=hop.cell, ion_index=hop.ion_index, name="lfp")
    return {**fields, **changes}


def test_contacts_clean_is_check_contacts():
    """The one-shot verdict agrees with the checks that raise: clean crystals, an overlap, an anion pair."""
    for cif in ("LiFePO4.cif", "LiCoO2.cif"):
        atoms = read(EXAMPLES / "structures" / cif)
        checks.check_contacts(atoms, cif)
        assert checks.contacts_clean(atoms)
    overlap = Atoms("LiOF", positions=[[1, 1, 1], [1.6, 1, 1], [5, 5, 5]], cell=np.eye(3) * 9, pbc=True)
    anions = Atoms("LiSS", positions=[[1, 1, 1], [4, 4, 4], [5.12, 4, 4]], cell=np.eye(3) * 9, pbc=True)
    for atoms in (overlap, anions):
        with pytest.raises(ImplausibleHopError):
            checks.check_contacts(atoms, "x")
        assert not checks.contacts_clean(atoms)


def test_a_hop_in_a_checked_host_is_the_constructors_hop(lfp_hop):
    """Same hop, same path check; an ion site on a host atom gets the constructor's own message."""
    fields = _lfp_fields(lfp_hop)
    fast = Hop.in_checked_host(**fields)
    assert fast == Hop(**fields)
    assert fast.path_clearance == lfp_hop.path_clearance
    o = int(np.flatnonzero(np.asarray(lfp_hop.host_symbols) == "O")[0])
    near = lfp_hop.host_positions[o] + np.array([0.5, 0.0, 0.0])  # 0.5 A from an O: 0.26 of the Li-O sum
    for where in ("start", "end"):
        other = "end" if where == "start" else "start"
        bad = _lfp_fields(lfp_hop, **{where: near, other: near + [2.9, 0, 0]})
        with pytest.raises(ImplausibleHopError) as full:
            Hop(**bad)
        with pytest.raises(ImplausibleHopError) as fast_error:
            Hop.in_checked_host(**bad)
        assert str(fast_error.value) == str(full.value)
        assert "host atom" in str(full.value) and "the Li ion at its" in str(full.value)


def test_sites_clear_of_counts_every_periodic_image():
    """A site 0.4 A from a host atom's image across the cell boundary overlaps; 1.5 A does not."""
    cell = np.eye(3) * 6.0
    host = np.array([[0.2, 3.0, 3.0], [3.0, 3.0, 3.0]])
    numbers = np.array([8, 15])
    assert not checks.sites_clear_of(host, numbers, np.array([[5.8, 3.0, 3.0]]), 3, cell)
    assert checks.sites_clear_of(host, numbers, np.array([[4.5, 3.0, 3.0]]), 3, cell)  # 1.5 A from P


def test_an_edited_structure_is_checked_afresh():
    """The verdict is kept per content: moving one atom onto another changes it."""
    from pymatgen.core import Structure

    from ase_em.hops.migration_hop import structure_contacts_clean

    s = Structure.from_file(EXAMPLES / "structures" / "LiCoO2.cif")
    symbols = np.array([site.specie.symbol for site in s])
    assert structure_contacts_clean(s, symbols)
    s.translate_sites([1], s[0].frac_coords - s[1].frac_coords + 0.01, frac_coords=True)
    assert not structure_contacts_clean(s, symbols)
