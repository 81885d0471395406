"""Does one batched forward pass over all NEB images pay on a CPU? SevenNet-0, measured.

Takes the images of a finished NEB (``neb.traj`` of a refinement workdir, its last band),
and times SevenNet-0 on the moving images (a) one after the other, as ``ase_em.refine``
does through sevenn's ASE calculator, and (b) as one torch-geometric batch through the
same model (sevenn's own batch mode, ``set_is_batch_data(True)``, as its trainer uses),
and checks that both give the same energies and forces.

Usage::

    python benchmarks/potential_batching.py runs/refine-study/sevennet-0/532_Na3SI --repeat 5 --threads 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> None:
    """Time single and batched evaluation of the last band's moving images."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", help="a refinement workdir with neb.traj and state.json")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import json

    import torch
    from ase.io import read
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.calculator import SevenNetCalculator
    from sevenn.train.dataload import unlabeled_atoms_to_graph
    from torch_geometric.loader.dataloader import Collater

    torch.set_num_threads(args.threads)
    work = Path(args.workdir)
    n_total = json.loads((work / "state.json").read_text())["settings"]["n_images"] + 2
    frames = read(work / "neb.traj", ":")
    band = frames[len(frames) // n_total * n_total - n_total:][:n_total]
    images = band[1:-1]
    calc = SevenNetCalculator("7net-0", device="cpu")
    model, cutoff = calc.model, calc.cutoff

    def single() -> list[tuple[float, np.ndarray]]:
        out = []
        for im in images:
            a = im.copy()
            a.calc = calc
            out.append((a.get_potential_energy(), a.get_forces()))
        return out

    collate = Collater([])

    def batched() -> list[tuple[float, np.ndarray]]:
        data = [AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(im, cutoff, with_shift=False))
                for im in images]
        batch = collate(data)
        model.set_is_batch_data(True)
        try:
            output = model(batch)
        finally:
            model.set_is_batch_data(False)
        energy = output["inferred_total_energy"].detach().numpy()  # (n_images,)
        forces = output["inferred_force"].detach().numpy()  # (n_images * natoms, 3)
        n = len(images[0])
        return [(float(energy[i]), forces[i * n:(i + 1) * n]) for i in range(len(images))]

    times = {}
    results = {}
    for name, fn in (("one image at a time", single), ("one batch", batched)):
        fn()  # warm-up
        t = time.perf_counter()
        for _ in range(args.repeat):
            results[name] = fn()
        times[name] = (time.perf_counter() - t) / args.repeat
    a, b = results.values()
    de = max(abs(x[0] - y[0]) for x, y in zip(a, b, strict=True))
    df = max(float(np.abs(x[1] - y[1]).max()) for x, y in zip(a, b, strict=True))
    print(f"{work.name}: {len(images)} images of {len(images[0])} atoms, {args.threads} thread(s)")
    for name, t in times.items():
        print(f"  {name}: {t:.3f} s per band ({t / len(images):.3f} s per image)")
    print(f"  batched / single: {times['one batch'] / times['one image at a time']:.2f}; largest difference: "
          f"energy {de:.2e} eV, force {df:.2e} eV/A")


if __name__ == "__main__":
    main()
