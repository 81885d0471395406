"""ASE route: the plugin entry point, EmCalculator and predict_neb (tiny model)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest
from ase.calculators.calculator import PropertyNotImplementedError
from ase.io import read
from ase.mep import NEB

import ase_em
from ase_em.errors import StructureFileError
from ase_em.ext.ase import EmCalculator, band_from_neb, predict_neb
from ase_em.hops.hop import Hop
from tests.conftest import EXAMPLES, make_tiny_model

TOL = 1e-4  # eV: same input band, same model; only float32 round-off may differ


class CountingPredictor:
    """Wraps a predictor and counts its predictions."""

    def __init__(self, predictor):
        self.inner = predictor
        self.calls = 0

    def predict_one(self, hop):
        self.calls += 1
        return self.inner.predict_one(hop)


def neb_images(initial, final, n=3, mic=True):
    images = [initial.copy() for _ in range(n + 1)] + [final.copy()]
    neb = NEB(images, method="improvedtangent")
    neb.interpolate(mic=mic)
    return neb


# ---------------------------------------------------------------- plugin registry


def test_entry_point_declared():
    eps = {ep.name: ep.value for ep in entry_points(group="ase.plugins")}
    assert eps.get("ase_em") == "ase_em.ext.ase_plugin"


def test_ase_registry_lists_calculator_without_importing_ase_em():
    # A fresh interpreter: ASE builds its plugin collection from the entry points; the
    # calculator module (and torch) are imported only when the implementation is asked for.
    code = (
        "import sys\n"
        "from ase._4.plugins import plugins\n"
        "calc = {p.name: p for p in plugins.calculators}['ase-em']\n"
        "print('ase_em.ext.ase' in sys.modules, 'torch' in sys.modules)\n"
        "cls = calc.implementation\n"
        "print(cls.__module__, cls.__name__, calc.module.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["False False", "ase_em.ext.ase EmCalculator ase_em.ext.ase_plugin"]


def test_plugin_implementation_is_calculator():
    from ase._4.plugins import plugins

    found = [p for p in plugins.calculators if p.name == "ase-em"]
    assert len(found) == 1
    assert found[0].implementation is EmCalculator


# ---------------------------------------------------------------- the calculator


def test_implemented_properties():
    assert EmCalculator.implemented_properties == ["em", "em_std"]


def test_no_catch_all_kwargs(tiny_predictor):
    with pytest.raises(TypeError):
        EmCalculator(tiny_predictor, modle="x")  # a misspelt option must not pass silently
    with pytest.raises(ValueError):
        EmCalculator(tiny_predictor, model="alignn-em-v1")


def test_neb_images_match_endpoints(tiny_predictor, endpoints):
    initial, final = endpoints
    reference = tiny_predictor.predict_one(Hop.from_endpoints(initial, final))
    neb = neb_images(initial, final)
    calc = EmCalculator(tiny_predictor)
    assert calc.get_barrier(neb) == pytest.approx(reference.em, abs=TOL)  # NEB object
    assert calc.get_barrier(neb.images) == pytest.approx(reference.em, abs=TOL)  # list of images
    assert calc.get_property("em_std") == pytest.approx(reference.em_std, abs=TOL)
    result = predict_neb(neb.images, predictor=tiny_predictor)
    assert result.em == pytest.approx(reference.em, abs=TOL)
    assert result.em_std == pytest.approx(reference.em_std, abs=TOL)
    # a "relaxed" band: interior images moved, endpoints fixed -> same barrier
    rng = np.random.default_rng(0)
    for image in neb.images[1:-1]:
        image.positions += rng.normal(scale=0.05, size=image.positions.shape)
    assert calc.get_barrier(neb) == pytest.approx(reference.em, abs=TOL)


def test_neb_file_matches_endpoint_files(tiny_predictor):
    d = EXAMPLES / "LiFePO4"
    reference = tiny_predictor.predict_one(Hop.from_endpoints(d / "initial.vasp", d / "final.vasp"))
    calc = EmCalculator(tiny_predictor)
    assert calc.get_barrier(d / "neb_images.extxyz") == pytest.approx(reference.em, abs=TOL)
    frames = read(d / "neb_images.extxyz", index=":")
    assert calc.get_barrier(NEB(frames, method="improvedtangent")) == pytest.approx(reference.em, abs=TOL)


def test_changed_structure_recomputes(tiny_predictor, endpoints):
    initial, final = endpoints
    spy = CountingPredictor(tiny_predictor)
    calc = EmCalculator(spy)
    images = neb_images(initial, final).images
    em0 = calc.get_barrier(images)
    assert calc.get_barrier([a.copy() for a in images]) == em0  # equal structure: cached
    calc.get_property("em_std")
    assert spy.calls == 1
    moved = [a.copy() for a in images]
    host = 1 if moved[0].get_chemical_symbols()[1] == "F" else 2  # any atom but the ion
    moved[0].positions[host] += [0.15, 0.0, 0.0]  # the initial host changes
    em1 = calc.get_barrier(moved)
    assert spy.calls == 2
    assert abs(em1 - em0) > 1e-6
    assert calc.get_barrier(images) == pytest.approx(em0, abs=TOL)  # back again: recomputed
    assert spy.calls == 3


def test_attached_to_band(tiny_predictor, endpoints):
    band = band_from_neb(list(endpoints))
    assert len(band) == 5 + len(endpoints[0]) - 1
    band.calc = EmCalculator(tiny_predictor)
    em = band.calc.get_property("em", band)
    assert em == pytest.approx(tiny_predictor.predict_one(Hop.from_band(band)).em, abs=TOL)
    assert EmCalculator(tiny_predictor).get_barrier(band) == pytest.approx(em, abs=TOL)


def test_single_model_has_no_em_std(tmp_path, endpoints):
    from ase_em.predictor import EmPredictor

    single = EmPredictor.from_pretrained(make_tiny_model(tmp_path / "one", n_members=1))
    calc = EmCalculator(single)
    assert np.isfinite(calc.get_barrier(list(endpoints)))
    with pytest.raises(PropertyNotImplementedError):
        calc.get_property("em_std")


def test_bad_inputs(tiny_predictor, endpoints):
    calc = EmCalculator(tiny_predictor)
    with pytest.raises(StructureFileError):  # an endpoint is not a band5 structure
        calc.get_barrier(endpoints[0])
    with pytest.raises(TypeError):
        calc.get_barrier(42)


def test_lazy_exports():
    assert ase_em.predict_neb is predict_neb
    assert ase_em.EmCalculator is EmCalculator


def write_vasp_neb_folder(root, frames):
    """A VASP NEB run folder: 00 and NN with POSCAR only, the images with POSCAR and CONTCAR."""
    from ase.io import write

    for k, frame in enumerate(frames):
        folder = root / f"{k:02d}"
        folder.mkdir(parents=True)
        write(folder / "POSCAR", frame, format="vasp")
        if 0 < k < len(frames) - 1:
            write(folder / "CONTCAR", frame, format="vasp")
    return root


def test_pymatgen_structures_and_a_vasp_neb_folder_are_neb_images(tiny_predictor, tmp_path):
    """IDPPSolver returns a list of pymatgen Structures; a VASP NEB run is a folder 00 .. NN."""
    from pymatgen.io.ase import AseAtomsAdaptor

    d = EXAMPLES / "LiFePO4"
    reference = tiny_predictor.predict_one(Hop.from_endpoints(d / "initial.vasp", d / "final.vasp"))
    frames = read(d / "neb_images.extxyz", index=":")
    structures = [AseAtomsAdaptor.get_structure(f) for f in frames]
    assert predict_neb(structures, tiny_predictor).em == pytest.approx(reference.em, abs=TOL)
    folder = write_vasp_neb_folder(tmp_path / "neb", frames)
    (folder / "02" / "CONTCAR").write_text("")  # a run stopped early: the image's POSCAR is read
    assert predict_neb(folder, tiny_predictor).em == pytest.approx(reference.em, abs=TOL)
    assert predict_neb(str(folder), tiny_predictor).hop.name == str(folder)
    (folder / "03" / "POSCAR").unlink()
    (folder / "03" / "CONTCAR").unlink()
    with pytest.raises(StructureFileError, match=r"03: neither CONTCAR nor POSCAR"):
        predict_neb(folder, tiny_predictor)
    with pytest.raises(StructureFileError, match=r"is a folder, but not a VASP NEB run"):
        predict_neb(tmp_path / "neb" / "00", tiny_predictor)
    with pytest.raises(TypeError, match=r"got a list of int"):
        predict_neb([1, 2], tiny_predictor)


def test_hop_prints_in_one_line():
    d = EXAMPLES / "LiFePO4"
    hop = Hop.from_endpoints(d / "initial.vasp", d / "final.vasp")
    text = repr(hop)
    assert "\n" not in text and len(text) < 200
    assert text.startswith("Hop(ion='Li', length=2.985 A, ion_index=0, host=")
