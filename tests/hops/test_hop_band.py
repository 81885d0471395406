"""Hop parsing, validation and the band5 construction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

from ase_em.errors import (
    EndpointMismatchError,
    ImplausibleHopError,
    IonIndexError,
    NoHopError,
    StructureFileError,
)
from ase_em.hops.convert import as_hop
from ase_em.hops.hop import Hop, jarvis_dict_to_atoms
from ase_em.model.band import build_band

TRAIN = Path(__file__).resolve().parents[3] / "shared" / "data" / "em619" / "band5_train.json"


def test_band_has_five_equally_spaced_ion_sites(endpoints):
    initial, final = endpoints
    hop = Hop.from_endpoints(initial, final)
    band = build_band(hop)
    assert hop.ion == "Li" and hop.ion_index == 25
    assert band.get_chemical_symbols()[:5] == ["Li"] * 5
    assert len(band) == len(initial) + 4
    steps = np.diff(band.positions[:5], axis=0)  # (4, 3)
    np.testing.assert_allclose(steps, np.repeat(steps[:1], 4, axis=0), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(steps, axis=1), hop.length / 4, atol=1e-12)
    assert hop.length == pytest.approx(4.2 / np.sqrt(2), abs=1e-9)
    # the host is the initial endpoint without the ion, in order
    host = [i for i in range(len(initial)) if i != 25]
    np.testing.assert_allclose(band.positions[5:], initial.positions[host])


def test_minimum_image_hop_across_the_boundary(endpoints):
    initial, final = endpoints
    shifted_final = final.copy()
    shifted_final.positions[25] += final.cell[0]  # same site, one cell over
    hop = Hop.from_endpoints(initial, shifted_final)
    assert hop.length == pytest.approx(4.2 / np.sqrt(2), abs=1e-9)


@pytest.mark.skipif(not TRAIN.is_file(), reason="shared TRAIN data not present")
def test_endpoints_of_train_records_reproduce_their_band():
    records = json.loads(TRAIN.read_text())
    for rec in records[::37]:  # 16 records of all sizes, including unwrapped coordinates
        band = jarvis_dict_to_atoms(rec["atoms"])
        host = list(range(5, len(band)))
        hop = Hop.from_endpoints(band[[0] + host], band[[4] + host])
        rebuilt = build_band(hop)
        assert rebuilt.get_chemical_symbols() == band.get_chemical_symbols()
        assert np.abs(rebuilt.positions - band.positions).max() < 1e-6, rec["sys_name"]
        # and the band record itself gives the same hop
        direct = Hop.from_record(rec)
        np.testing.assert_allclose(build_band(direct).positions, band.positions, atol=1e-9)


def test_same_hop_from_atoms_structure_files_and_images(endpoints, tmp_path):
    from pymatgen.io.ase import AseAtomsAdaptor

    initial, final = endpoints
    ref = Hop.from_endpoints(initial, final)
    write(tmp_path / "ini.vasp", initial, format="vasp")
    write(tmp_path / "fin.cif", final)
    images = [initial] + [initial.copy() for _ in range(3)] + [final]
    write(tmp_path / "neb.extxyz", images)
    variants = [
        Hop.from_endpoints(AseAtomsAdaptor.get_structure(initial), AseAtomsAdaptor.get_structure(final)),
        Hop.from_endpoints(tmp_path / "ini.vasp", str(tmp_path / "fin.cif")),
        Hop.from_images(images),
        Hop.from_images(tmp_path / "neb.extxyz"),
        as_hop((initial, final)),
        as_hop(build_band(ref)),
    ]
    for hop in variants:
        assert hop.ion == "Li"
        np.testing.assert_allclose(build_band(hop).positions, build_band(ref).positions, atol=1e-5)


def test_ion_index_is_respected_and_checked(endpoints):
    initial, final = endpoints
    assert Hop.from_endpoints(initial, final, ion_index=25).ion_index == 25
    with pytest.raises(IonIndexError, match="out of range"):
        Hop.from_endpoints(initial, final, ion_index=63)
    with pytest.raises(IonIndexError, match="moves only"):
        Hop.from_endpoints(initial, final, ion_index=0)


def test_bad_endpoints_are_refused(endpoints, tmp_path):
    initial, final = endpoints
    with pytest.raises(NoHopError, match="same structure"):
        Hop.from_endpoints(initial, initial.copy())
    with pytest.raises(EndpointMismatchError, match="63 atoms, final has 62"):
        Hop.from_endpoints(initial, final[:-1])
    swapped = final.copy()
    symbols = swapped.get_chemical_symbols()
    first_f = symbols.index("F")
    first_li = symbols.index("Li")
    symbols[first_f], symbols[first_li] = "Li", "F"
    swapped.set_chemical_symbols(symbols)
    first = min(first_f, first_li)
    with pytest.raises(EndpointMismatchError, match=f"atom {first} is {initial[first].symbol} in initial"):
        Hop.from_endpoints(initial, swapped)
    strained = final.copy()
    strained.set_cell(final.cell * 1.10, scale_atoms=False)  # beyond the accepted strain
    with pytest.raises(EndpointMismatchError, match=r"cells differ .* strain of 10\.0%"):
        Hop.from_endpoints(initial, strained)
    with pytest.raises(StructureFileError, match="no such file"):
        Hop.from_endpoints(tmp_path / "missing.vasp", final)
    (tmp_path / "junk.vasp").write_text("this is not a POSCAR\n")
    with pytest.raises(StructureFileError, match="junk.vasp: cannot read"):
        Hop.from_endpoints(tmp_path / "junk.vasp", final)
    molecule = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    with pytest.raises(StructureFileError, match="not a periodic crystal"):
        Hop.from_endpoints(molecule, molecule)


def test_implausible_hops_are_refused(endpoints):
    initial, final = endpoints
    # the ion lands on top of a host atom
    clash = final.copy()
    clash.positions[25] = initial.positions[30] + [0.2, 0.0, 0.0]
    with pytest.raises(ImplausibleHopError, match="0.200 A apart"):
        Hop.from_endpoints(initial, clash, ion_index=25)
    # a sparse cell: Li hops 4 A through an O atom sitting on the midpoint
    cell = np.eye(3) * 30.0
    ini = Atoms("LiOF", positions=[[1, 1, 1], [3, 1, 1], [20, 20, 20]], cell=cell, pbc=True)
    fin = ini.copy()
    fin.positions[0] = [5, 1, 1]
    with pytest.raises(ImplausibleHopError, match=r"straight path .* 0.000 A from host atom 0 \(O\)"):
        Hop.from_endpoints(ini, fin)
    # 11 A is longer than any hop
    fin.positions[0] = [1, 12, 1]
    with pytest.raises(ImplausibleHopError, match="moves 11.00 A; longer than a plausible hop"):
        Hop.from_endpoints(ini, fin)


def test_record_without_structure_is_refused():
    with pytest.raises(StructureFileError, match="neither 'atoms'"):
        Hop.from_record({"sys_name": "x", "target": 0.3})
