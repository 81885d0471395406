"""Refined barriers of a few small TRAIN hops next to the DFT label and the network's.

Picks small-cell hops of different chemistries from the em619 TRAIN split, refines each
with ``ase_em.refine_many`` (SevenNet-0 by default; per-hop checkpoints under
``--output``, so a rerun resumes), and reports the refined MAE against the DFT label beside
the network's MAE on the same hops. The network's figure is the shipped model's
out-of-fold cross-validation prediction (``cv_predictions.csv`` of the model, via
``ase_em.training.ensemble.read_cv_predictions``), so no hop is scored by a model that trained on it.

Usage::

    python benchmarks/refine_train.py --output runs/refine-train --threads 1 --fmax 0.1 --time-limit 1500
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

# Small cells (29-49 atoms per endpoint), six ions in five structure types: Li and Na in
# epsilon-VOPO4, Li and Na antiperovskites, Ca in a NASICON sulphate, K in a perovskite
# fluoride, Mg and Zn in spinels.
DEFAULT_HOPS = ["e-VOPO4_Li_1", "e-VOPO4_Na_1", "Li3OCl_1", "Na3OBr", "Fe2S3O12_Ca", "Li3SI", "KVF3",
                "Cr2S4_Mg", "Co2O4_Zn"]


def main() -> None:
    """Refine the chosen TRAIN hops and print the table and the MAEs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/em619/band5_train.json")
    parser.add_argument("--hops", nargs="+", default=DEFAULT_HOPS, help="sys_name of the TRAIN records")
    parser.add_argument("--calculator", default="sevennet-0")
    parser.add_argument("--model", default=None, help="model whose CV predictions are the network's figure")
    parser.add_argument("--fmax", type=float, default=0.1)
    parser.add_argument("--relax-fmax", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--n-images", type=int, default=3)
    parser.add_argument("--time-limit", type=float, default=480.0, help="seconds per NEB (this call)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="runs/refine-train")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import torch

    from ase_em.model.weights import resolve
    from ase_em.neb import refine_many, results_table
    from ase_em.training.data import load_em619
    from ase_em.training.ensemble import read_cv_predictions

    torch.set_num_threads(args.threads)
    data = load_em619(args.data, skip_invalid=True)
    targets, oof = read_cv_predictions(resolve(args.model), np.asarray(data.targets))
    index = {name: i for i, name in enumerate(data.names)}
    missing = [h for h in args.hops if h not in index]
    if missing:
        raise SystemExit(f"not in {args.data} (or invalid): {missing}")
    rows = [index[h] for h in args.hops]
    hops = [data.hops[i] for i in rows]
    t0 = time.perf_counter()
    results = refine_many(
        hops, args.calculator, workers=args.workers, threads=args.threads, workdir=args.output, progress=True,
        fmax=args.fmax, relax_fmax=args.relax_fmax, steps=args.steps, n_images=args.n_images,
        time_limit=args.time_limit,
    )
    wall = time.perf_counter() - t0
    for res, i in zip(results, rows, strict=True):
        res.em_network = float(oof[i])  # out-of-fold CV prediction of the shipped model
    print(results_table(results))
    table = []
    for res, i in zip(results, rows, strict=True):
        table.append({"sys_name": data.names[i], "atoms": len(hops[rows.index(i)].host_symbols) + 1,
                      "dft": float(targets[i]), "network_cv": float(oof[i]), **res.to_dict()})
        res.plot(Path(args.output) / f"{data.names[i]}.png")
    ok = [t for t in table if t["error"] is None]
    dft = np.array([t["dft"] for t in ok])
    report = {
        "hops": table,
        "n": len(ok),
        "n_converged": sum(bool(t["converged"]) for t in ok),
        "mae_refined_forward": float(np.mean(np.abs(np.array([t["em_forward"] for t in ok]) - dft))),
        "mae_refined_reference": float(np.mean(np.abs(np.array([t["em_reference"] for t in ok]) - dft))),
        "mae_network_cv": float(np.mean(np.abs(np.array([t["network_cv"] for t in ok]) - dft))),
        "seconds_per_hop": [t["seconds"] for t in ok],
        "wall_seconds_this_call": wall,
        "settings": vars(args),
    }
    Path(args.output, "report.json").write_text(json.dumps(report, indent=1))
    print(f"n = {report['n']} ({report['n_converged']} converged): refined MAE "
          f"{report['mae_refined_forward']:.3f} eV (forward), {report['mae_refined_reference']:.3f} eV "
          "(max - min); network CV MAE "
          f"{report['mae_network_cv']:.3f} eV; {np.mean(report['seconds_per_hop']):.0f} s per hop")


if __name__ == "__main__":
    main()
