"""Prediction throughput and start-up time of ase-em (a benchmark, not a test).

Usage:
    python benchmarks/throughput.py [--model NAME_OR_DIR] [--threads 2] [--data TRAIN.json] [--compile]

Reports, on the TRAIN bands: hops per second for batched prediction, split into graph
building and model time; the same for the 111-atom (median-size) bands;
``EmPredictor.predict`` end to end on all of TRAIN (s/hop; for a model with a tree stage this
includes its descriptors and bond-valence barriers); peak memory; and the wall time of
`ase-em predict` on the shipped example (import + model load + one prediction), measured in
a fresh process.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/em619/band5_train.json"))
    parser.add_argument("--batch-size", type=int, default=None, help="default: the predictor's (4 on a CPU)")
    parser.add_argument(
        "--compile", action="store_true", help="also time the compiled forward (torch.compile)"
    )
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from ase_em.model.graph import collate
    from ase_em.predictor import EmPredictor
    from ase_em.training.data import load_em619

    predictor = EmPredictor.from_pretrained(args.model, batch_size=args.batch_size)
    data = load_em619(args.data, skip_invalid=True)
    report = {"model": predictor.name, "threads": args.threads, "batch_size": predictor.batch_size}

    def run(hops, forward=predictor.model.ensemble):
        t0 = time.perf_counter()
        graphs = [predictor.graph(h) for h in hops]
        t1 = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, len(graphs), predictor.batch_size):
                g, lg = collate(graphs[i : i + predictor.batch_size])
                forward(g, lg)
        t2 = time.perf_counter()
        n = len(hops)
        return {
            "n_hops": n,
            "graph_s_per_hop": (t1 - t0) / n,
            "model_s_per_hop": (t2 - t1) / n,
            "hops_per_s": n / (t2 - t0),
        }

    run(data.hops[:8])  # warm-up
    report["all_train"] = run(data.hops)
    median = [h for h in data.hops if h.n_atoms == 111]
    report["median_111_atoms"] = run(median * max(1, 64 // max(len(median), 1)))
    report["median_band_atoms"] = statistics.median(h.n_atoms for h in data.hops)
    # the whole of EmPredictor.predict (graphs, network, the tree stage where the model has one,
    # domain flags, calibrated em_std): what a user's call costs per hop
    t0 = time.perf_counter()
    predictor.predict(data.hops)
    report["predict_s_per_hop"] = (time.perf_counter() - t0) / len(data.hops)
    if args.compile:
        compiled = torch.compile(predictor.model.ensemble, dynamic=True)
        t0 = time.perf_counter()
        run(data.hops[:8], compiled)  # the compile, and a warm-up
        report["compile_s"] = time.perf_counter() - t0
        report["all_train_compiled"] = run(data.hops, compiled)
    report["peak_rss_MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    example = ROOT / "examples" / "LiFePO4"
    cmd = [
        sys.executable,
        "-m",
        "ase_em.cli.main",
        "predict",
        str(example / "initial.vasp"),
        str(example / "final.vasp"),
        "--json",
        "--threads",
        str(args.threads),
    ]
    if args.model:
        cmd += ["--model", args.model]
    walls = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        walls.append(time.perf_counter() - t0)
    report["cli_predict_wall_s"] = min(walls)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
