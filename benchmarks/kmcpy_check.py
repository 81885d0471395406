"""Cross-check of the exact one-carrier diffusion coefficient against kMCpy (an existing KMC engine).

kMCpy (``pip install kmcpy``, 0.3.0; needs numba; not a dependency of ase-em) simulates a
lattice gas of many ions on the sites of a structure file; its ``LocalBarrierModel`` can give
every event one constant barrier, so it runs a plain rate network without a fitted
cluster-expansion model. It cannot take a per-hop barrier table from a network directly (each
distinct barrier is a rule matched on the event's local occupation), so the check here is
the case both can state exactly: a simple cubic lattice of Li sites (a = 2.5 A, one site per
cell, barrier 0.25 eV to each of the 6 neighbours), a few Li ions in an 8x8x8 supercell
(dilute: 1.6 % of the sites, so site blocking is negligible), T = 400 K, nu = 1e13 Hz.

Exact (``ase_em.transport``): ``D = k a^2`` with ``k = nu exp(-Em / kT)``. kMCpy: its
``tracer_diffusivity`` after the run, averaged over seeds, with the standard error over seeds.
kMCpy generates each neighbour pair's event in both orders and fires either whenever the two
occupations differ, so one exchange runs at twice the rate: its D is compared halved too.

Run (a few minutes on one core, most of it numba compiling)::

    pip install kmcpy          # into a separate environment or a --target folder
    python benchmarks/kmcpy_check.py --seeds 3 --passes 400 --size 4 --ions 1   # about 2 min
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

CIF = """data_cubic
_cell_length_a {a}
_cell_length_b {a}
_cell_length_c {a}
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
_symmetry_Int_Tables_number 1
loop_
_symmetry_equiv_pos_as_xyz
'x, y, z'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Li1 Li 0.0 0.0 0.0 1.0
"""


def kmcpy_tracer_d(a: float, em: float, t: float, n_ions: int, passes: int, seed: int, size: int) -> float:
    """kMCpy's tracer diffusivity (cm^2/s) of the dilute simple cubic lattice gas."""
    import logging

    from kmcpy.api import run
    from kmcpy.event.generators import EventGenerator
    from kmcpy.models import LocalBarrierModel
    from kmcpy.simulator.config import Configuration, RuntimeConfig, SystemConfig

    logging.getLogger("kmcpy").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="kmcpy_check_"))
    cif = work / "cubic.cif"
    cif.write_text(CIF.format(a=a))
    shape = (size, size, size)
    mapping = {"Li": ["Li", "X"]}
    EventGenerator().generate_events(structure_file=str(cif), local_env_cutoff=1.05 * a,
                                     supercell_shape=list(shape), event_file=str(work / "events.json"),
                                     site_mapping=mapping, mobile_ion_identifiers=("Li", "Li"))
    LocalBarrierModel.constant_barrier(em * 1000.0).to(str(work / "model.json"))  # meV
    n = size**3
    rng = np.random.default_rng(seed)
    occ = np.ones(n, int)  # kMCpy's binary states: 0 occupied, 1 vacant
    occ[rng.choice(n, n_ions, replace=False)] = 0
    cfg = Configuration(
        system_config=SystemConfig(structure_file=str(cif), supercell_shape=shape, mobile_ion_specie="Li",
                                   model_type="local_barrier", model_file=str(work / "model.json"),
                                   event_file=str(work / "events.json"), site_mapping=mapping,
                                   initial_occupations=occ.tolist(), elementary_hop_distance=a),
        runtime_config=RuntimeConfig(temperature=t, attempt_frequency=1e13, equilibration_passes=0,
                                     kmc_passes=passes, random_seed=seed, name=f"cubic{seed}",
                                     property_sampling_interval=passes),
    )
    here = os.getcwd()
    os.chdir(work)  # kMCpy writes its trajectory files into the working directory
    try:
        return float(run(cfg).return_current_info()[3])
    finally:
        os.chdir(here)


def main(argv: list[str] | None = None) -> int:
    """Run kMCpy over seeds and print it beside the exact D."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--passes", type=int, default=3000)
    ap.add_argument("--ions", type=int, default=8)
    ap.add_argument("--size", type=int, default=8)
    args = ap.parse_args(argv)
    from ase_em.transport import RateNetwork, diffusion_tensor

    a, em, t = 2.5, 0.25, 400.0
    net = RateNetwork(np.eye(3) * a, [[0, 0, 0]], [0, 0, 0], [0, 0, 0], np.eye(3), [em] * 3)
    exact = float(np.trace(diffusion_tensor(net, t, 1e13)) / 3) * 1e-16  # cm^2/s
    ds = [kmcpy_tracer_d(a, em, t, args.ions, args.passes, s, args.size) for s in range(args.seeds)]
    mean, se = float(np.mean(ds)), float(np.std(ds, ddof=1) / math.sqrt(len(ds)))
    print(f"simple cubic Li, a {a} A, Em {em} eV, T {t} K, nu 1e13 Hz, {args.ions} ions in "
          f"{args.size}^3 sites, {args.passes} passes, {args.seeds} seeds")
    print(f"exact (ase_em.transport): D = {exact:.4e} cm^2/s")
    print(f"kMCpy tracer_diffusivity: D = {mean:.4e} +- {se:.1e} cm^2/s (mean +- standard error over seeds); "
          f"ratio {mean / exact:.3f} +- {se / exact:.3f}")
    print("per seed: " + ", ".join(f"{d:.3e}" for d in ds))
    # kMCpy writes each neighbour pair's event in both orders and fires either one when the two
    # occupations differ: one exchange runs at 2 nu exp(-Em/kT), so its D is twice ours
    print(f"kMCpy / 2 (its two events per pair): ratio {mean / 2 / exact:.3f} +- {se / 2 / exact:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
