"""Check ``ase_em.refine`` against a NEB run by hand with the same potential and settings.

Builds a vacancy hop from published lattice data, refines it with ``ase_em.refine``,
then runs the same climbing-image NEB step by step with plain ASE (endpoints relaxed with
BFGS, IDPP images, ``ase.mep.NEB`` with the improved tangent and a climbing image, FIRE)
and prints both barriers.

Cases:
    li2o: Li vacancy hop in antifluorite Li2O (Fm-3m, a = 4.61 A; Li 8c, O 4a), a 2x2x2
        supercell of the primitive cell (24 sites, one Li removed); the Li hops a/2 = 2.31 A
        into the vacancy.
    na3ocl: Na vacancy hop in antiperovskite Na3OCl (Pm-3m, a = 4.50 A; Na 3c at the face
        centres, around O at 1b; Cl 1a), a 2x2x2 supercell (40 sites, one Na removed); Na hops
        a/sqrt(2) = 3.18 A.

Usage (SevenNet-0 needs ``pip install "ase-em[neb]"``)::

    python benchmarks/refine_check.py li2o --calculator sevennet-0 --threads 1 --output runs/refine-check
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase import Atoms

CASES = {
    # name: (space group, a (A), species, fractional sites, ion, supercell, primitive?)
    "li2o": ("Fm-3m", 4.61, ["Li", "O"], [[0.25, 0.25, 0.25], [0, 0, 0]], "Li", (2, 2, 2), True),
    "na3ocl": ("Pm-3m", 4.50, ["Na", "O", "Cl"], [[0, 0.5, 0.5], [0.5, 0.5, 0.5], [0, 0, 0]], "Na", (2, 2, 2),
               False),
}


def vacancy_hop(case: str) -> tuple[Atoms, Atoms, int]:
    """Endpoints of the nearest-neighbour vacancy hop of the case's ion.

    Returns:
        (initial, final, ion index): the supercell with one ion removed, the ion next to
        the vacancy moved into it, and that ion's index.
    """
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    sg, a, species, coords, ion, rep, primitive = CASES[case]
    s = Structure.from_spacegroup(sg, Lattice.cubic(a), species, coords)
    if primitive:
        s = s.get_primitive_structure()
    atoms = AseAtomsAdaptor.get_atoms(s) * rep
    ions = [i for i, x in enumerate(atoms.get_chemical_symbols()) if x == ion]
    vac = ions[0]
    d = atoms.get_distances(vac, ions, mic=True)  # (n_ions,)
    j = ions[int(np.argsort(d)[1])]
    vector = atoms.get_distance(vac, j, mic=True, vector=True)  # from vac to j
    initial = atoms.copy()
    del initial[vac]
    k = j - 1 if j > vac else j
    final = initial.copy()
    final.positions[k] = initial.positions[k] - vector
    return initial, final, k


def neb_by_hand(initial: Atoms, final: Atoms, new_calc, *, fmax: float, steps: int, relax_steps: int,
                n_images: int) -> dict:
    """The same NEB, written out with ASE (one calculator per image, as ASE recommends)."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.mep import NEB
    from ase.optimize import BFGS, FIRE

    ends = []
    for atoms in (initial.copy(), final.copy()):
        atoms.calc = new_calc()
        BFGS(atoms, logfile=None).run(fmax=fmax, steps=relax_steps)
        e, f = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f)
        ends.append(atoms)
    images = [ends[0]] + [ends[0].copy() for _ in range(n_images)] + [ends[1]]
    for im in images[1:-1]:
        im.calc = new_calc()
    neb = NEB(images, climb=True, method="improvedtangent")
    neb.interpolate(method="idpp")
    opt = FIRE(neb, logfile=None)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    neb.get_forces()
    e = np.asarray(neb.energies) - neb.energies[0]
    return {"em_forward": float(e[1:-1].max()), "energies": e.tolist(), "converged": converged,
            "steps": opt.nsteps}


def main() -> None:
    """Run one case both ways and print the barriers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--calculator", default="sevennet-0")
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--relax-steps", type=int, default=100)
    parser.add_argument("--n-images", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="runs/refine-check")
    args = parser.parse_args()

    import torch

    import ase_em
    from ase_em.neb import make_calculator

    torch.set_num_threads(args.threads)
    initial, final, k = vacancy_hop(args.case)
    calc = make_calculator(args.calculator)
    out = Path(args.output) / args.case
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    res = ase_em.refine((initial, final), calc, fmax=args.fmax, steps=args.steps,
                        relax_steps=args.relax_steps, n_images=args.n_images, workdir=out / "refine",
                        name=args.case)
    t_refine = time.perf_counter() - t
    print(res.summary(), flush=True)
    res.plot(out / "profile.png")
    t = time.perf_counter()
    hand = neb_by_hand(initial, final, lambda: make_calculator(args.calculator), fmax=args.fmax,
                       steps=args.steps, relax_steps=args.relax_steps, n_images=args.n_images)
    t_hand = time.perf_counter() - t
    report = {
        "case": args.case, "atoms": len(initial), "calculator": res.calculator, "fmax": args.fmax,
        "n_images": args.n_images, "threads": args.threads,
        "refine": {**res.to_dict(), "seconds_this_call": t_refine},
        "by_hand": {**hand, "seconds": t_hand},
        "difference_eV": res.em_forward - hand["em_forward"],
    }
    (out / "check.json").write_text(json.dumps(report, indent=1))
    print(f"{args.case}: ase_em.refine {res.em_forward:.4f} eV ({res.steps} steps, {t_refine:.0f} s); "
          f"by hand {hand['em_forward']:.4f} eV ({hand['steps']} steps, {t_hand:.0f} s); "
          f"difference {report['difference_eV']:+.2e} eV", flush=True)


if __name__ == "__main__":
    main()
