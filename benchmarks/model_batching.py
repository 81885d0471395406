"""CPU cost per band of the shipped model: bands one at a time against one batch.

Whether a screening worker gains from batching the hops of several structures through the
network. Bands: the unique hops of LiFePO4 and LiCoO2 (``examples/structures``, hops up to
5 A), repeated to ``--bands``; CPU seconds (user + system) per band, the minimum of
``--repeats`` runs, one torch thread.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/model_batching.py --bands 8 --repeats 3
"""

from __future__ import annotations

import argparse
import resource
import warnings
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "structures"


def cpu() -> float:
    """CPU seconds (user + system) of this process."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    """Print the CPU seconds per band of both ways."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bands", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import torch
    from pymatgen.core import Structure

    from ase_em.crystals.hop_graph import build_migration_graph
    from ase_em.hops.migration_hop import hop_from_migration_hop
    from ase_em.predictor import EmPredictor

    torch.set_num_threads(1)
    predictor = EmPredictor.from_pretrained()
    hops = []
    for name in ("LiFePO4.cif", "LiCoO2.cif"):
        mg = build_migration_graph(Structure.from_file(EXAMPLES / name), "Li", 5.0)
        hops += [hop_from_migration_hop(d["hop"]) for d in mg.unique_hops.values()]
    hops = (hops * args.bands)[: args.bands]
    predictor.predict(hops[:1])  # warm-up
    ways = {"one at a time": lambda: [predictor.predict([h]) for h in hops],
            f"one batch of {len(hops)}": lambda: predictor.predict(hops)}
    for label, run in ways.items():
        best = float("inf")
        for _ in range(args.repeats):
            c0 = cpu()
            run()
            best = min(best, cpu() - c0)
        print(f"{label}: {best / len(hops):.3f} CPU s per band ({len(hops)} bands, min of {args.repeats})")


if __name__ == "__main__":
    main()
