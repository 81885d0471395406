"""Barrier of an ion hop from ASE: NEB images, an ase.mep.NEB object, or the plugin registry.

    python examples/ase_neb.py                  # shipped model
    python examples/ase_neb.py --model DIR      # any model directory

The hop is olivine LiFePO4's Li hop along b (examples/LiFePO4, a TRAIN hop): only the
NEB's endpoints are used, so the images before or after relaxation give the same Em.
See docs/ase.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ase.io import read
from ase.mep import NEB

import ase_em
from ase_em import EmPredictor

HERE = Path(__file__).resolve().parent / "LiFePO4"


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory or shipped name (default: shipped)")
    args = parser.parse_args(argv)

    # 1. The calculator, found through ASE's plugin registry (entry-point group "ase.plugins").
    from ase._4.plugins import plugins

    EmCalculator = {p.name: p for p in plugins.calculators}["ase-em"].implementation
    predictor = EmPredictor.from_pretrained(args.model)  # load once, share below
    calc = EmCalculator(predictor)
    print("implemented_properties:", calc.implemented_properties)

    # 2. An NEB band before relaxation: interpolated between the two endpoints.
    initial, final = read(HERE / "initial.vasp"), read(HERE / "final.vasp")
    images = [initial] + [initial.copy() for _ in range(5)] + [final]
    neb = NEB(images, method="improvedtangent")
    neb.interpolate(mic=True)
    em = calc.get_barrier(neb)
    print(f"NEB object      : Em = {em:.3f} eV +/- {calc.get_property('em_std'):.3f} eV")

    # 3. The same hop as a multi-frame file of NEB images, and the endpoint pair.
    print(f"NEB images file : Em = {calc.get_barrier(HERE / 'neb_images.extxyz'):.3f} eV")
    result = ase_em.predict_neb([initial, final], predictor=predictor)
    print(f"endpoints       : Em = {result.em:.3f} eV (hop of {result.hop.length:.2f} A, {result.hop.ion})")
    return em


if __name__ == "__main__":
    main()
