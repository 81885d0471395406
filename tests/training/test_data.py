"""Labelled data readers: CSV (endpoints or NEB images), em619 JSON, band5 extxyz."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

from ase_em.errors import DataFileError, StructureFileError
from ase_em.hops.hop import Hop
from ase_em.model.band import build_band
from ase_em.training.data import (
    PLAUSIBLE_MAX_EM,
    file_sha256,
    load_csv,
    load_em619,
    load_labelled,
    parse_barrier,
)
from tests.conftest import rocksalt_hop_endpoints

LATTICE = [3.9 + 0.05 * k for k in range(12)]  # A; 12 distinct LiF vacancy hops
RATTLE = 0.03  # A: breaks the rock salt's distance ties (8 neighbours instead of 18: 4x fewer angles)


def lif_hop(k: int) -> tuple[Atoms, Atoms]:
    """Endpoints of LiF hop ``k``: lattice constant LATTICE[k], host rattled (seed k) alike in both."""
    ini, fin = rocksalt_hop_endpoints(LATTICE[k])
    shift = np.random.default_rng(k).normal(0.0, RATTLE, ini.positions.shape)
    ini.positions += shift
    fin.positions += shift
    return ini, fin


def synthetic_em(a: float) -> float:
    """A made-up barrier that grows with the lattice constant (eV)."""
    return round(0.25 + 0.8 * (a - 3.9), 4)


def write_hops_csv(
    directory: Path, n: int = 6, *, images: bool = False, name: str = "hops.csv"
) -> tuple[Path, list[float]]:
    """A CSV of ``n`` LiF vacancy hops with POSCAR endpoints (or NEB image files)."""
    directory.mkdir(parents=True, exist_ok=True)
    struct = directory / "structures"
    struct.mkdir(exist_ok=True)
    rows = ["id,images,em" if images else "id,initial,final,em"]
    targets = []
    for k, a in enumerate(LATTICE[:n]):
        ini, fin = lif_hop(k)
        em = synthetic_em(a)
        targets.append(em)
        if images:
            mid = ini.copy()
            mid.positions = 0.5 * (ini.positions + fin.positions)
            write(struct / f"neb{k}.extxyz", [ini, mid, fin], format="extxyz")
            rows.append(f"LiF-{k},structures/neb{k}.extxyz,{em}")
        else:
            write(struct / f"{k}_initial.vasp", ini, format="vasp", direct=True)
            write(struct / f"{k}_final.vasp", fin, format="vasp", direct=True)
            rows.append(f"LiF-{k},structures/{k}_initial.vasp,structures/{k}_final.vasp,{em}")
    path = directory / name
    path.write_text("\n".join(rows) + "\n")
    return path, targets


def write_band_extxyz(path: Path, n: int = 4) -> tuple[Path, list[Hop]]:
    """Band5 frames of LiF hops with ``em`` and ``id`` in each frame's info."""
    frames, hops = [], []
    for k, a in enumerate(LATTICE[:n]):
        hop = Hop.from_endpoints(*lif_hop(k))
        band = build_band(hop)
        band.info["em"] = synthetic_em(a)
        band.info["id"] = f"band-{k}"
        frames.append(band)
        hops.append(hop)
    write(path, frames, format="extxyz")
    return path, hops


def assert_same_hop(a: Hop, b: Hop) -> None:
    """Same ion, sites, host and cell (Hop's generated __eq__ cannot compare arrays)."""
    assert (a.ion, a.host_symbols, a.ion_index) == (b.ion, b.host_symbols, b.ion_index)
    for field in ("start", "end", "host_positions", "cell"):
        np.testing.assert_allclose(getattr(a, field), getattr(b, field), atol=1e-8)


def jarvis(atoms: Atoms) -> dict:
    return {
        "lattice_mat": np.asarray(atoms.cell).tolist(),
        "coords": atoms.positions.tolist(),
        "elements": atoms.get_chemical_symbols(),
        "cartesian": True,
    }


# ---------------------------------------------------------------------- CSV


def test_csv_endpoints_give_the_same_hops_as_prediction(tmp_path):
    path, targets = write_hops_csv(tmp_path, n=3)
    data = load_labelled(path)
    assert data.format == "csv"
    assert data.names == ["LiF-0", "LiF-1", "LiF-2"]
    assert data.targets == pytest.approx(targets)
    assert data.sha256 == file_sha256(path)
    for k, hop in enumerate(data.hops):
        direct = Hop.from_endpoints(
            tmp_path / f"structures/{k}_initial.vasp", tmp_path / f"structures/{k}_final.vasp"
        )
        assert_same_hop(hop, direct)  # same validated record as `ase-em predict INITIAL FINAL`
        assert hop.ion == "Li"
        assert hop.length == pytest.approx(LATTICE[k] / math.sqrt(2), abs=0.2)


def test_csv_images_column_and_mixed_rows(tmp_path):
    path, targets = write_hops_csv(tmp_path / "neb", n=2, images=True)
    data = load_labelled(path)
    assert data.names == ["LiF-0", "LiF-1"]
    assert data.targets == pytest.approx(targets)
    for k, hop in enumerate(data.hops):
        assert_same_hop(hop, Hop.from_images(tmp_path / f"neb/structures/neb{k}.extxyz"))
    # one file mixing both kinds of row, plus an ion_index column
    ends, _ = write_hops_csv(tmp_path / "ends", n=1)
    ion = Hop.from_endpoints(*lif_hop(0)).ion_index
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        "ID, Initial, Final, Images, EM, ion_index\n"
        f"a,ends/structures/0_initial.vasp,ends/structures/0_final.vasp,,0.5,{ion}\n"
        "b,,,neb/structures/neb1.extxyz,0.7,\n"
    )
    data = load_labelled(mixed)
    assert data.names == ["a", "b"]
    assert data.targets == [0.5, 0.7]
    assert data.hops[0].ion_index == ion
    assert_same_hop(data.hops[1], Hop.from_images(tmp_path / "neb/structures/neb1.extxyz"))


def test_broken_csv_reports_every_bad_row(tmp_path):
    write_hops_csv(tmp_path, n=2)
    s = "structures"
    (tmp_path / "garbage.vasp").write_text("this is not a POSCAR\n1 2 3\n")
    og = bulk_with_unknown_element()
    write(tmp_path / "og_i.vasp", og[0], format="vasp")
    write(tmp_path / "og_f.vasp", og[1], format="vasp")
    write(tmp_path / "far_f.vasp", lif_hop(11)[1], format="vasp")  # a 14 % larger cell than hop 0's
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "id,initial,final,em\n"
        f"ok,{s}/0_initial.vasp,{s}/0_final.vasp,0.4\n"  # row 1: fine
        f"missing,{s}/0_initial.vasp,{s}/nope.vasp,0.4\n"  # row 2: no such file
        f"garbage,garbage.vasp,{s}/0_final.vasp,0.4\n"  # row 3: unreadable
        f"nohop,{s}/0_initial.vasp,{s}/0_initial.vasp,0.4\n"  # row 4: nothing moves
        f"mismatch,{s}/0_initial.vasp,far_f.vasp,0.4\n"  # row 5: cells differ (beyond a relaxation)
        f"text,{s}/1_initial.vasp,{s}/1_final.vasp,abc\n"  # row 6: not a number
        f"negative,{s}/1_initial.vasp,{s}/1_final.vasp,-0.2\n"  # row 7: negative
        f"nan,{s}/1_initial.vasp,{s}/1_final.vasp,nan\n"  # row 8: not finite
        f"ok,{s}/1_initial.vasp,{s}/1_final.vasp,0.5\n"  # row 9: duplicate id
        "element,og_i.vasp,og_f.vasp,0.3\n"  # row 10: no features for Og
        f"short,{s}/1_initial.vasp,0.3\n"  # row 11: a field missing
        f",{s}/1_initial.vasp,{s}/1_final.vasp,inf\n"  # row 12: no id and infinite Em
    )
    with pytest.raises(DataFileError) as info:
        load_labelled(bad)
    problems = info.value.problems
    assert len(problems) == 11, "\n".join(problems)
    expected = {
        2: ("column 'final'", "no such file"),
        3: ("column 'initial'", "cannot read"),
        4: ("column 'initial/final'", "no atom moves"),
        5: ("column 'initial/final'", "cells differ"),
        6: ("column 'em'", "'abc' is not a number"),
        7: ("column 'em'", "negative"),
        8: ("column 'em'", "not finite"),
        9: ("column 'id'", "duplicate of row 1"),
        10: ("column 'initial/final'", "Og"),
        11: ("has 3 fields", "the header has 4"),
        12: ("column 'id': empty", "'inf' is not finite"),
    }
    for line, (row, (what, why)) in zip(problems, expected.items(), strict=True):
        assert f"row {row} (line {row + 1}" in line
        assert what in line and why in line, line
        assert "\n" not in line


def test_csv_header_and_file_errors(tmp_path):
    with pytest.raises(StructureFileError, match="no such file"):
        load_labelled(tmp_path / "absent.csv")
    headless = tmp_path / "h.csv"
    headless.write_text("name,initial,energy\nx,a.vasp,0.3\n")
    with pytest.raises(DataFileError) as info:
        load_csv(headless)
    text = str(info.value)
    assert "missing column 'id'" in text and "missing column 'em'" in text and "'final'" in text
    with pytest.raises(StructureFileError, match="unknown data file type '.dat'"):
        load_labelled(tmp_path / "x.dat")


def test_parse_barrier():
    assert parse_barrier("0.5") == (0.5, None)
    assert parse_barrier(0) == (0.0, None)
    for bad, why in [("", "missing"), ("x", "not a number"), ("-1", "negative"), ("inf", "not finite"),
                     (True, "not a number"), (None, "missing")]:
        value, reason = parse_barrier(bad)
        assert value is None and why in reason
    # plausible range [0, 10] eV (TRAIN's largest is 8.77 eV); outside it only when asked for
    assert parse_barrier("8.77") == (8.77, None) and parse_barrier(PLAUSIBLE_MAX_EM) == (10.0, None)
    value, reason = parse_barrier("10.5")
    assert value is None and reason.startswith("10.5 eV is above 10 eV, not a plausible migration barrier")
    assert parse_barrier("10.5", allow_implausible=True) == (10.5, None)
    assert parse_barrier("-0.2", allow_implausible=True) == (-0.2, None)
    assert parse_barrier("nan", allow_implausible=True)[0] is None  # never a non-finite one


def test_structure_files_are_checksummed(tmp_path):
    path, _ = write_hops_csv(tmp_path, n=2)
    data = load_labelled(path)
    assert sorted(data.files) == [f"structures/{k}_{e}.vasp" for k in (0, 1) for e in ("final", "initial")]
    assert data.files["structures/1_final.vasp"] == file_sha256(tmp_path / "structures/1_final.vasp")
    before = data.content_sha256
    assert load_labelled(path).content_sha256 == before  # deterministic
    ini, _ = lif_hop(5)
    write(tmp_path / "structures/1_initial.vasp", ini, format="vasp", direct=True)  # CSV unchanged
    again = load_labelled(path)
    assert again.sha256 == data.sha256 and again.content_sha256 != before
    # formats that hold their structures have no separate files
    band, _ = write_band_extxyz(tmp_path / "b.extxyz", n=2)
    assert load_labelled(band).files == {}


def test_repeated_hops_are_warned_in_every_format(tmp_path):
    band, _ = write_band_extxyz(tmp_path / "b.extxyz", n=2)
    from ase.io import read

    frames = read(band, index=":")
    twin = frames[0].copy()
    twin.info = {"id": "twin", "em": 0.9}
    write(tmp_path / "twins.extxyz", [*frames, twin], format="extxyz")
    data = load_labelled(tmp_path / "twins.extxyz")
    assert len(data.hops) == 3  # accepted, but said
    assert data.warnings == [
        f"{tmp_path / 'twins.extxyz'}: frame 0 (id 'band-0') and frame 2 (id 'twin') are the same hop "
        f"(same structures) with different barriers, {synthetic_em(LATTICE[0]):g} and 0.9 eV; "
        "keep the right one"
    ]
    assert load_labelled(band).warnings == []
    ini, fin = rocksalt_hop_endpoints(4.1)
    rec = {"atoms_ini": jarvis(ini), "atoms_fin": jarvis(fin)}
    (tmp_path / "em.json").write_text(json.dumps([{"sys_name": "a", "target": 0.4, **rec},
                                                   {"sys_name": "b", "target": 0.4, **rec}]))
    (warning,) = load_labelled(tmp_path / "em.json").warnings
    assert "record 0 (id 'a') and record 1 (id 'b') are the same hop (same structures, barrier 0.4 eV)" in (
        warning
    )


def test_em619_records_empty_or_implausible(tmp_path):
    path = tmp_path / "em.json"
    path.write_text("[]")
    with pytest.raises(StructureFileError, match="no records"):
        load_em619(path)
    ini, fin = rocksalt_hop_endpoints(4.1)
    record = {"sys_name": "x", "target": 25.0, "atoms_ini": jarvis(ini), "atoms_fin": jarvis(fin)}
    path.write_text(json.dumps([record]))
    with pytest.raises(DataFileError, match=r"record 0 \(x\): target 25 eV is above 10 eV"):
        load_em619(path)
    assert load_em619(path, allow_implausible=True).targets == [25.0]


# ---------------------------------------------------------------------- band5 frames, em619 JSON


def test_band_extxyz_frames(tmp_path):
    path, hops = write_band_extxyz(tmp_path / "bands.extxyz", n=3)
    data = load_labelled(path)
    assert data.format == "band"
    assert data.names == ["band-0", "band-1", "band-2"]
    assert data.targets == pytest.approx([synthetic_em(a) for a in LATTICE[:3]])
    for hop, ref in zip(data.hops, hops, strict=True):
        assert hop.ion == "Li" and len(hop.host_symbols) == len(ref.host_symbols)
        np.testing.assert_allclose(hop.end - hop.start, ref.end - ref.start, atol=1e-6)
        np.testing.assert_allclose(hop.host_positions, ref.host_positions, atol=1e-6)


def test_band_extxyz_bad_frames_all_reported(tmp_path):
    path, _ = write_band_extxyz(tmp_path / "bands.extxyz", n=1)
    from ase.io import read

    good = read(path)
    no_em = good.copy()
    no_em.info = {"id": "no-em"}
    negative = good.copy()
    negative.info = {"id": "neg", "em": -0.1}
    not_band = good.copy()[5:]  # host only: the first five sites are not one ion
    not_band.info = {"id": "host", "em": 0.3}
    dup = good.copy()
    dup.info = dict(good.info)
    write(tmp_path / "bad.extxyz", [good, no_em, negative, not_band, dup], format="extxyz")
    with pytest.raises(DataFileError) as info:
        load_labelled(tmp_path / "bad.extxyz")
    problems = info.value.problems
    assert len(problems) == 4, "\n".join(problems)
    assert "frame 1 (id 'no-em'): field 'em': missing" in problems[0]
    assert "frame 2 (id 'neg'): field 'em'" in problems[1] and "negative" in problems[1]
    assert "frame 3 (id 'host'): structure: not a band5 structure" in problems[2]
    assert "frame 4 (id 'band-0'): field 'id': duplicate of frame 0" in problems[3]


def test_em619_json_through_load_labelled(tmp_path):
    ini, fin = rocksalt_hop_endpoints(4.1)
    band = build_band(Hop.from_endpoints(ini, fin))
    og_i, og_f = bulk_with_unknown_element()
    records = [
        {"sys_name": "band", "target": 0.4, "atoms": jarvis(band)},
        {"sys_name": "ends", "target": 0.6, "atoms_ini": jarvis(ini), "atoms_fin": jarvis(fin)},
    ]
    path = tmp_path / "em.json"
    path.write_text(json.dumps(records))
    data = load_labelled(path)
    assert data.format == "em619" and data.names == ["band", "ends"] and data.targets == [0.4, 0.6]
    np.testing.assert_allclose(data.hops[0].end - data.hops[0].start, data.hops[1].end - data.hops[1].start,
                               atol=1e-6)
    records.append({"sys_name": "og", "target": 0.3, "atoms_ini": jarvis(og_i), "atoms_fin": jarvis(og_f)})
    records.append({"sys_name": "neg", "target": -1, "atoms": jarvis(band)})
    path.write_text(json.dumps(records))
    with pytest.raises(DataFileError) as info:
        load_labelled(path)
    assert len(info.value.problems) == 2
    assert "record 2 (og)" in info.value.problems[0] and "Og" in info.value.problems[0]
    assert "record 3 (neg)" in info.value.problems[1]


def bulk_with_unknown_element() -> tuple[Atoms, Atoms]:
    """The LiF hop with every F replaced by Og (Z = 118, no atom features)."""
    ini, fin = rocksalt_hop_endpoints(4.2)
    for atoms in (ini, fin):
        atoms.symbols = ["Og" if s == "F" else s for s in atoms.get_chemical_symbols()]
    return ini, fin


def test_example_csv_is_valid_and_matches_its_train_records():
    from tests.conftest import EXAMPLES

    data = load_labelled(EXAMPLES / "finetune" / "hops.csv")
    assert len(data.hops) == 12 and data.format == "csv"
    assert {h.ion for h in data.hops} == {"Li", "Na", "K", "Mg", "Ca"}
    train = EXAMPLES.parent.parent / "shared" / "data" / "em619" / "band5_train.json"
    if not train.is_file():
        pytest.skip("em619 TRAIN file not present")
    records = {r["sys_name"]: r for r in json.loads(train.read_text())}
    for name, hop, em in zip(data.names, data.hops, data.targets, strict=True):
        band = Hop.from_record(records[name])
        assert em == records[name]["target"]
        np.testing.assert_allclose(hop.end - hop.start, band.end - band.start, atol=1e-5)
        np.testing.assert_allclose(hop.host_positions, band.host_positions, atol=1e-5)
