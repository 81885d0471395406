"""The network's forward per hop against the number of hops a batch (a benchmark, not a test).

Usage:
    python benchmarks/batch_size.py [--threads 1] [--hops 192] [--model alignn-em-v1]
        [--data TRAIN.json] [--sizes 1 2 4 8 16 32 64]

Builds the graphs of the first ``--hops`` TRAIN bands once, then runs the model's ensemble
(``collate`` + ``EmEnsemble``, eager, inference mode) over them in batches of each size and
prints the milliseconds per hop and the largest barrier difference from the first size
measured (a warm-up pass at batch 32 comes first). Graph building is not timed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hops", type=int, default=192)
    parser.add_argument("--model", default="alignn-em-v1")
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/em619/band5_train.json"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from ase_em.model.graph import collate
    from ase_em.predictor import EmPredictor
    from ase_em.training.data import load_em619

    predictor = EmPredictor.from_pretrained(args.model, compile="never")
    graphs = [predictor.graph(h) for h in load_em619(args.data, skip_invalid=True).hops[: args.hops]]
    ensemble = predictor.model.ensemble

    def run(size: int) -> tuple[float, torch.Tensor]:
        t = time.perf_counter()
        with torch.inference_mode():
            out = [ensemble(*collate(graphs[i : i + size]))[0] for i in range(0, len(graphs), size)]
        return (time.perf_counter() - t) / len(graphs), torch.cat(out)

    run(32)  # warm-up
    ref = None
    print(f"{args.model}, {len(graphs)} TRAIN hops, {args.threads} thread(s)")
    print("| hops per batch | ms per hop | largest difference (eV) |\n| --- | --- | --- |")
    for size in args.sizes:
        dt, em = run(size)
        ref = em if ref is None else ref
        print(f"| {size} | {1000 * dt:.1f} | {float((em - ref).abs().max()):.1e} |", flush=True)


if __name__ == "__main__":
    main()
