"""Cost of graph settings: graph size, build, train and inference time per median band.

Usage:
    python benchmarks/graph_cost.py [--threads 2] [--sizes]

Takes 16 TRAIN bands of 107-117 atoms (the median is 111), batches them as in training,
and times graph building, one training step (forward + backward + AdamW) and inference of
the default 64-hidden 2+2-layer model, for several neighbour counts and crop radii.
With --sizes: the same for several network sizes on the shipped graph setting (8 neighbours,
5 A crop) instead.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", action="store_true", help="vary the network, not the graph")
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/em619/band5_train.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from ase_em.config import GraphConfig, ModelConfig
    from ase_em.hops.hop import Hop
    from ase_em.model.band import build_band
    from ase_em.model.graph import build_graph, collate
    from ase_em.model.model import EmModel

    records = [
        r for r in json.loads(Path(args.data).read_text()) if 107 <= len(r["atoms"]["elements"]) <= 117
    ][:16]
    bands = [build_band(Hop.from_record(r)) for r in records]
    print(
        f"{len(bands)} bands, {np.mean([len(b) for b in bands]):.0f} atoms on average, {args.threads} threads"
    )

    def step_times(model: EmModel, graphs: list) -> tuple[float, float]:
        """Seconds per band of one training step and of inference, batch of all graphs."""
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        g, lg = collate(graphs)
        t0 = time.perf_counter()
        for _ in range(3):
            loss = model.forward_scaled(g, lg).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        train = (time.perf_counter() - t0) / (3 * len(graphs))
        with torch.no_grad():
            t0 = time.perf_counter()
            model(g, lg)
            infer = (time.perf_counter() - t0) / len(graphs)
        return train, infer

    if args.sizes:
        graphs = [build_graph(b, GraphConfig(cutoff=8.0, max_neighbors=8, crop_radius=5.0)) for b in bands]
        print("| hidden | ALIGNN + GCN layers | parameters | train s/band | infer s/band |")
        print("| --- | --- | --- | --- | --- |")
        for hidden, layers in [(32, 2), (64, 2), (128, 2), (64, 4), (256, 4)]:
            torch.manual_seed(0)
            model = EmModel(ModelConfig(hidden_features=hidden, alignn_layers=layers, gcn_layers=layers))
            n_par = sum(p.numel() for p in model.parameters())
            train, infer = step_times(model, graphs)
            print(f"| {hidden} | {layers} + {layers} | {n_par / 1e3:.0f}k | {train:.3f} | {infer:.3f} |")
        return
    print("| neighbours | crop (A) | nodes | edges | triplets | build s/band | train s/band | infer s/band |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for k, crop in [(12, None), (8, None), (12, 6.0), (8, 6.0), (8, 5.0)]:
        gc = GraphConfig(cutoff=8.0, max_neighbors=k, crop_radius=crop)
        t0 = time.perf_counter()
        graphs = [build_graph(b, gc) for b in bands]
        build = (time.perf_counter() - t0) / len(bands)
        torch.manual_seed(0)
        train, infer = step_times(EmModel(ModelConfig()), graphs)
        print(
            f"| {k} | {crop or '-'} | {np.mean([int(x.z.shape[0]) for x in graphs]):.0f} | "
            f"{np.mean([int(x.src.shape[0]) for x in graphs]):.0f} | "
            f"{np.mean([x.n_triplets for x in graphs]):.0f} | "
            f"{build:.3f} | {train:.3f} | {infer:.3f} |"
        )


if __name__ == "__main__":
    main()
