"""Does fine-tuning transfer? Pretrained-on-other-ions vs random weights, on a held-out ion.

Usage:
    python benchmarks/transfer.py [--ion Ca] [--sizes 50 100 0] [--workdir runs/transfer]

1. A base model is trained (``ase_em.training.ensemble.train_ensemble``: a 3-fold ensemble,
   40 epochs by default,
   the shipped model's graph and network settings) on every TRAIN hop whose mobile ion is
   NOT ``--ion``, so the base has never seen that ion.
2. For each size (0 = all hops of that ion), a seeded random subset of the held-out ion's hops
   is fine-tuned by 5-fold CV (``ase_em.finetune``, ``folds=5``): once from the base model
   (default strategy for the size) and once from random weights of the same architecture
   (strategy ``full``, the base's target scaling). The out-of-fold metrics are printed as a
   Markdown table.

Note: ``finetune(folds=K)`` early-stops member k on fold k, so both arms' out-of-fold figures
are somewhat optimistic in the same way; the comparison between the arms is the point.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/em619/band5_train.json"))
    parser.add_argument("--ion", default="Ca")
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 0])
    parser.add_argument("--workdir", default="runs/transfer")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--base-epochs", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=50, help="most fine-tuning epochs per member")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from ase_em.config import GraphConfig, ModelConfig, TrainConfig
    from ase_em.model.model import EmEnsemble
    from ase_em.model.weights import load_model, read_card, save_model
    from ase_em.training.data import LabelledHops, load_em619
    from ase_em.training.finetune import finetune

    work = Path(args.workdir)
    data = load_em619(args.data, skip_invalid=True)
    shipped = read_card()
    graph_config = GraphConfig(**shipped["graph"])
    model_config = ModelConfig(**shipped["model"])

    def subset(idx: np.ndarray, label: str) -> LabelledHops:
        return LabelledHops(
            [data.names[i] for i in idx],
            [data.hops[i] for i in idx],
            [data.targets[i] for i in idx],
            f"{Path(data.path).stem}-{label}.json",
            data.sha256,
        )

    ions = np.array([h.ion for h in data.hops])
    held = np.flatnonzero(ions == args.ion)
    rest = np.flatnonzero(ions != args.ion)
    base_dir = work / f"base-without-{args.ion}"
    if not (base_dir / "model.pt").exists():
        from ase_em.training.ensemble import train_ensemble

        train_ensemble(
            subset(rest, f"without-{args.ion}"),
            base_dir,
            graph_config=graph_config,
            model_config=model_config,
            train_config=TrainConfig(epochs=args.base_epochs, folds=3, seed=0),
            name=f"base-without-{args.ion}",
            workdir=work / "base.work",
            command=f"python benchmarks/transfer.py --ion {args.ion}",
        )
    base_card = read_card(base_dir)
    random_dir = work / "random-init"
    if not (random_dir / "model.pt").exists():
        base = load_model(base_dir)
        torch.manual_seed(1)
        ensemble = EmEnsemble(model_config, n_members=base_card["n_members"])
        for fresh, trained in zip(ensemble.members, base.ensemble.members):
            fresh.target_mean.copy_(trained.target_mean)
            fresh.target_std.copy_(trained.target_std)
        save_model(ensemble, graph_config, random_dir, {"name": "random-init"})

    rng = np.random.default_rng(0)
    order = held[rng.permutation(len(held))]
    rows = []
    for size in args.sizes:
        n = len(order) if size == 0 else min(size, len(order))
        part = subset(order[:n], f"{args.ion}-{n}")
        arms = ((f"pretrained (no {args.ion})", base_dir, None), ("random weights", random_dir, "full"))
        for arm, base, strategy in arms:
            out = work / f"{args.ion}-{n}-{'pre' if strategy is None else 'rand'}"
            if not (out / "card.json").exists():
                finetune(
                    part,
                    output=out,
                    base=base,
                    strategy=strategy,
                    folds=5,
                    epochs=args.epochs,
                    seed=0,
                    overwrite=True,
                )
            card = json.loads((out / "card.json").read_text())
            rows.append((n, arm, card["strategy"], card["metrics"]))
    print(
        f"base: {base_card['data']['n']} hops without {args.ion}; CV of the base: "
        f"MAE {base_card['metrics']['cv_out_of_fold']['mae']:.3f} eV"
    )
    print("| hops | start | strategy | CV MAE (eV) | CV R2 | start model, no fine-tuning: MAE (eV) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n, arm, strategy, metrics in rows:
        m, b = metrics["cv_out_of_fold"], metrics["base_validation"]
        print(f"| {n} | {arm} | {strategy} | {m['mae']:.3f} | {m['r2']:.3f} | {b['mae']:.3f} |")


if __name__ == "__main__":
    main()
