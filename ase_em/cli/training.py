"""``ase-em train``, ``ase-em finetune`` and ``ase-em pretrain``: models from labelled data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ase_em.cli._args import _threads, load_labelled_em619
from ase_em.errors import AseEmError


def cmd_train(args: argparse.Namespace) -> int:
    """Train a K-fold CV ensemble from scratch on a labelled em619-format file."""
    from ase_em.config import GraphConfig, ModelConfig, TrainConfig
    from ase_em.training.ensemble import train_ensemble

    out = Path(args.output)
    if (out / "model.pt").exists() and not args.overwrite:
        raise AseEmError(f"{out}: already holds a model (use --overwrite)")
    data = load_labelled_em619(args)
    _threads(args.threads)
    card = train_ensemble(
        data,
        out,
        graph_config=GraphConfig(args.cutoff, args.max_neighbors, args.crop_radius),
        model_config=ModelConfig(
            alignn_layers=args.alignn_layers,
            gcn_layers=args.gcn_layers,
            hidden_features=args.hidden,
            readout=args.readout,
        ),
        train_config=TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            folds=args.folds,
            seed=args.seed,
            rank_weight=args.rank_weight,
            rank_tie=args.rank_tie,
            density_weight_power=args.density_weight,
        ),
        name=args.name or out.name,
        grouped=args.grouped,
        workdir=Path(args.workdir) if args.workdir else None,
        init_from=Path(args.init_from) if args.init_from else None,  # a directory or shipped name
    )
    m = card["metrics"]["cv_out_of_fold"]
    print(
        f"wrote {out}: {card['split']}: MAE {m['mae']:.3f} eV, RMSE {m['rmse']:.3f} eV, "
        f"R2 {m['r2']:.3f}, accuracy {m['accuracy']:.3f}, precision {m['precision']:.3f}"
    )
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tune a model on the user's own labelled hops (see docs/finetune.md)."""
    import shlex

    from ase_em.training.finetune import finetune

    if args.folds is not None and args.val_fraction is not None:
        raise AseEmError("give --val-fraction or --folds, not both")
    if Path(sys.argv[0]).name == "ase-em":
        command = "ase-em " + shlex.join(sys.argv[1:])
    else:  # called as main(argv): every setting spelled out
        opts = {
            "--output": args.output, "--from": args.base, "--strategy": args.strategy,
            "--epochs": args.epochs, "--batch-size": args.batch_size, "--lr": args.lr,
            "--weight-decay": args.weight_decay, "--seed": args.seed, "--val-fraction": args.val_fraction,
            "--folds": args.folds, "--patience": args.patience, "--workdir": args.workdir,
            "--name": args.name, "--threads": args.threads,
        }
        switches = ("resume", "overwrite", "skip_invalid", "allow_implausible_barriers")
        flags = [f for f in switches if getattr(args, f)]
        command = shlex.join(
            ["ase-em", "finetune", args.data]
            + [x for k, v in opts.items() if v is not None for x in (k, str(v))]
            + ["--" + f.replace("_", "-") for f in flags]
        )
    from ase_em._runtime.threads import resolve_threads

    try:
        predictor = finetune(
            args.data,
            output=args.output,
            base=args.base,
            strategy=args.strategy,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            weight_decay=args.weight_decay,
            seed=args.seed,
            val_fraction=0.2 if args.val_fraction is None else args.val_fraction,
            folds=args.folds,
            patience=args.patience,
            threads=resolve_threads(args.threads),
            workdir=args.workdir,
            resume=args.resume,
            overwrite=args.overwrite,
            skip_invalid=args.skip_invalid,
            allow_implausible_barriers=args.allow_implausible_barriers,
            name=args.name,
            command=command,
        )
    except KeyboardInterrupt:
        work = args.workdir or str(Path(args.output) / ".work")
        print(
            f"ase-em finetune: interrupted; the checkpoint in {work} is kept: rerun the same "
            "command with --resume to continue",
            file=sys.stderr,
        )
        return 130
    card = predictor.card  # skipped rows were logged (warnings) before training
    metrics = card["metrics"]
    base = card["base_model"]
    kind = f" ({base['kind']})" if base.get("kind") else ""
    n_members = len(card["members"])
    print(
        f"wrote {args.output}: {card['strategy']} fine-tune ({card['strategy_choice']}) of "
        f"{base['name']}{kind} on {card['data']['n']} hops, {n_members} member{'s' * (n_members != 1)}; "
        f"{metrics['scheme']}"
    )
    for part in ("train", "validation"):
        if part in metrics:
            m, b = metrics[part], metrics.get(f"base_{part}")
            versus = "" if b is None else f" (base model {b['mae']:.3f} eV)"  # none for a backbone
            print(f"  {part:>10}: MAE {m['mae']:.3f} eV{versus}, RMSE {m['rmse']:.3f} eV, n {m['n']}")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Multi-property pre-training of the ALIGNN backbone on bulk crystals."""
    from ase_em._runtime.folders import folder_lock
    from ase_em.config import GraphConfig, ModelConfig
    from ase_em.training.pretrain import pretrain

    out = Path(args.output)
    if (out / "backbone.pt").exists() and not args.overwrite:
        raise AseEmError(f"{out}: already holds a backbone (use --overwrite)")
    _threads(args.threads)
    with folder_lock(out, role="output folder"):  # a second run into OUTPUT: one-line error
        card = pretrain(
            args.data,
            out,
            properties=args.properties,
            graph_config=GraphConfig(args.cutoff, args.max_neighbors, None),
            model_config=ModelConfig(
                alignn_layers=args.alignn_layers,
                gcn_layers=args.gcn_layers,
                hidden_features=args.hidden,
                readout=args.readout,
            ),
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            max_per_property=args.max_per_property,
            workdir=Path(args.workdir) if args.workdir else None,
        )
    print(
        f"wrote {out}: {card['data']['n_structures']} structures, {len(card['properties'])} properties, "
        f"final scaled MAE {card['train_scaled_mae_per_epoch'][-1]:.3f}"
    )
    return 0
