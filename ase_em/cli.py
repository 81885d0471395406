"""``ase-em``: predict, evaluate and train from the command line.

``main(argv)`` parses; each subcommand is one small function. Input errors
(:class:`ase_em.errors.AseEmError`) become one line on stderr and exit code 2. Usage errors
(bad arguments, ``--threads`` below 1, missing input files, an output folder that cannot be
written) are found before torch is imported, in well under a second: keep this module free
of top-level heavy imports (torch, ase.io, pymatgen, alignn).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ase_em import __version__
from ase_em.errors import AseEmError
from ase_em.threads import DEFAULT_THREADS, THREADS_ENV


def _threads(n: int | None) -> int:
    """Set torch's CPU threads: ``--threads``, else ``ASE_EM_THREADS``, else 1 (ase_em.threads)."""
    from ase_em.threads import set_threads

    return set_threads(n)


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors in one line (``ase-em predict: error: ...``), exit code 2."""

    def error(self, message: str) -> None:  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """Type of integer options for argparse (``--threads``, counts): an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value})")
    return value


def _existing(path: str | None, role: str, *, folder: bool = False) -> None:
    if path is None:
        return
    p = Path(path)
    if folder and not p.is_dir():
        raise AseEmError(f"{p}: no such folder ({role})")
    if not folder and not p.is_file():
        raise AseEmError(f"{p}: {'is a folder, not a file' if p.is_dir() else 'no such file'} ({role})")


def check_usage(args: argparse.Namespace) -> None:
    """Usage errors that argparse cannot see, found before any heavy import.

    Input files must exist, output folders must be (or become) writable folders, files to
    write must go into an existing, writable folder, and ``ASE_EM_THREADS`` must be valid.

    Raises:
        AseEmError: the first problem, in one line.
    """
    from ase_em.folders import check_file_target, check_writable
    from ase_em.threads import resolve_threads

    resolve_threads(getattr(args, "threads", None))  # checks ASE_EM_THREADS when --threads is not given
    command = args.command
    if command == "predict":
        if args.images and (args.initial or args.final):
            raise AseEmError("give either INITIAL FINAL or --images FILE, not both")
        if not args.images and not (args.initial and args.final):
            raise AseEmError("give INITIAL and FINAL structure files, or --images FILE")
        _existing(args.initial, "initial")
        _existing(args.final, "final")
        _existing(args.images, "--images")
    elif command in ("evaluate", "train", "finetune"):
        _existing(args.data, "data")
    elif command == "pretrain":
        _existing(args.data, "data", folder=True)
    elif command == "network":
        _existing(args.structure, "structure")
    if getattr(args, "output", None):
        check_writable(args.output, role="--output")
    if getattr(args, "workdir", None):
        check_writable(args.workdir, role="--workdir")
    if getattr(args, "predictions", None):
        check_file_target(args.predictions, role="--predictions")
    if getattr(args, "plot", None):
        check_file_target(args.plot, role="--plot")


def cmd_info(args: argparse.Namespace) -> int:
    """Print version, shipped model, its CV metrics, torch version and threads."""
    import torch

    from ase_em.domain import ModelDomain
    from ase_em.pretrained import (
        DEFAULT_MODEL,
        available_backbones,
        available_models,
        is_backbone,
        read_card,
        resolve,
    )

    card = read_card(args.model)
    domain = ModelDomain.load(resolve(args.model))
    cv = card.get("metrics", {}).get("cv_out_of_fold", {})
    info = {
        "ase_em": __version__,
        "default_model": DEFAULT_MODEL,
        "shipped_models": available_models(),
        "shipped_backbones": available_backbones(),
        "model": card.get("name"),
        "kind": card.get("kind") if is_backbone(card) else "barrier model",
        "model_metrics": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in cv.items()},
        "metrics_scheme": card.get("metrics", {}).get("scheme"),
        "em_std": _em_std_summary(card),
        "train_ions": None if domain is None else dict(sorted(domain.ions.items(), key=lambda kv: -kv[1])),
        "domain": None if domain is None else domain.summary(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:>16}: {v}")
    return 0


def _em_std_summary(card: dict) -> str:
    """What em_std means for this model, in one line."""
    calibration = card.get("uncertainty")
    if not calibration:
        return "spread of the ensemble members (not calibrated)"
    cov = calibration.get("coverage_calibrated_out_of_fold", {})
    return (
        "spread calibrated on CV: "
        f"{cov.get('within_1_std', float('nan')):.0%} of out-of-fold errors within 1 em_std, "
        f"{cov.get('within_2_std', float('nan')):.0%} within 2"
    )


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict the barrier of one hop (endpoints or NEB images)."""
    from ase_em.hop import Hop
    from ase_em.predictor import EmPredictor

    if args.images:
        if args.initial or args.final:
            raise SystemExit("ase-em predict: give either INITIAL FINAL or --images FILE, not both")
        hop = Hop.from_images(args.images, ion_index=args.ion_index)
    else:
        if not (args.initial and args.final):
            raise SystemExit("ase-em predict: give INITIAL and FINAL structure files, or --images FILE")
        hop = Hop.from_endpoints(args.initial, args.final, ion_index=args.ion_index)
    _threads(args.threads)
    predictor = EmPredictor.from_pretrained(args.model)
    result = predictor.predict_one(hop)
    out = {
        "em": round(result.em, 4),
        "em_std": None if result.em_std is None else round(result.em_std, 4),
        "ion": hop.ion,
        "ion_index": hop.ion_index,
        "hop_length": round(hop.length, 4),
        "model": predictor.name,
        "flags": list(result.flags),
        "flag_reasons": dict(zip(result.flags, result.reasons)),
        "train_distance": None if result.train_distance is None else round(result.train_distance, 3),
    }
    if result.flags:  # on stderr, so that --json output stays one JSON object
        print(f"warning: {result.warning()}", file=sys.stderr)
    if args.json:
        print(json.dumps(out))
    else:
        std = "" if out["em_std"] is None else f" +/- {out['em_std']:.3f}"
        print(
            f"Em = {out['em']:.3f}{std} eV  ({hop.ion} ion, atom {hop.ion_index}, "
            f"hop {hop.length:.2f} A, model {predictor.name})"
        )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a model on a labelled em619-format JSON file."""
    import numpy as np

    from ase_em.data import load_em619

    data = load_em619(
        args.data, skip_invalid=args.skip_invalid, allow_implausible=args.allow_implausible_barriers
    )
    for line in data.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    for line in data.warnings:
        print(f"warning: {line}", file=sys.stderr)
    if args.predictions and Path(args.predictions).exists() and not args.overwrite:
        raise AseEmError(f"{args.predictions}: exists (use --overwrite)")
    from ase_em.metrics import barrier_metrics
    from ase_em.predictor import EmPredictor  # torch: only once the data is known to be good

    _threads(args.threads)
    predictor = EmPredictor.from_pretrained(args.model)
    results = predictor.predict(data.hops, progress=True)
    pred = np.array([r.em for r in results])
    m = barrier_metrics(np.asarray(data.targets), pred)
    print(f"model {predictor.name} on {args.data}")
    print(
        f"n {m['n']}  MAE {m['mae']:.3f} eV  RMSE {m['rmse']:.3f} eV  R2 {m['r2']:.3f}  |  "
        f"Em < 0.65 eV: accuracy {m['accuracy']:.3f}  precision {m['precision']:.3f}  "
        f"recall {m['recall']:.3f}"
    )
    if args.predictions:
        import csv

        with open(args.predictions, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["sys_name", "target", "prediction", "em_std"])
            for name, t, r in zip(data.names, data.targets, results):
                w.writerow([name, t, f"{r.em:.5f}", "" if r.em_std is None else f"{r.em_std:.5f}"])
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train a K-fold CV ensemble from scratch on a labelled em619-format file."""
    from ase_em.config import GraphConfig, ModelConfig, TrainConfig
    from ase_em.data import load_em619
    from ase_em.train import train_ensemble

    out = Path(args.output)
    if (out / "model.pt").exists() and not args.overwrite:
        raise AseEmError(f"{out}: already holds a model (use --overwrite)")
    data = load_em619(
        args.data, skip_invalid=args.skip_invalid, allow_implausible=args.allow_implausible_barriers
    )
    for line in data.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    for line in data.warnings:
        print(f"warning: {line}", file=sys.stderr)
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
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, folds=args.folds, seed=args.seed
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

    from ase_em.finetune import finetune

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
    from ase_em.threads import resolve_threads

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
    from ase_em.config import GraphConfig, ModelConfig
    from ase_em.folders import folder_lock
    from ase_em.pretrain import pretrain

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


def cmd_network(args: argparse.Namespace) -> int:
    """Barriers of all hops of an ion in a crystal, and its 1D/2D/3D percolation barriers."""
    from ase_em.analysis import MigrationBarrierAnalyzer
    from ase_em.disordered_network import disordered_input
    from ase_em.migration_graph import check_ion, to_structure
    from ase_em.predictor import EmPredictor

    # partial occupancies are kept (ordered later); anything else gets every input check
    structure = disordered_input(args.structure)
    if structure is None:
        structure = to_structure(args.structure)  # input errors before the model loads
    args.ion = check_ion(structure, args.ion, args.structure)  # the element: "Li+" and "Li1+" mean Li
    _threads(args.threads)
    predictor = EmPredictor.from_pretrained(args.model)
    analyzer = MigrationBarrierAnalyzer(
        structure, args.ion, max_distance=args.max_distance, predictor=predictor,
        include_flagged=args.include_flagged, n_orderings=args.orderings, seed=args.seed,
        empty_sites={"auto": None, "yes": True, "no": False}[args.empty_sites], progress=True,
    )
    if args.plot:
        analyzer.plot_network(args.plot)
    if args.json:
        print(json.dumps({**analyzer.to_dict(), "model": predictor.name}))
    else:
        print(
            f"{args.structure}: {analyzer.structure.composition.reduced_formula}, {args.ion} hops up to "
            f"{args.max_distance:g} A, model {predictor.name}"
        )
        print(analyzer.format_table())
        if args.plot:
            print(f"wrote {args.plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ase-em`` with all subcommands."""
    parser = _Parser(
        prog="ase-em",
        description="Migration barriers (Em, eV) of ion hops in crystals.",
        epilog=f"CPU threads: --threads, else ${THREADS_ENV}, else {DEFAULT_THREADS} "
        "(more threads than idle cores make torch far slower; docs/benchmarks.md)",
    )
    parser.add_argument("--version", action="version", version=f"ase-em {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_model(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", default=None, help="model directory or shipped name (default: shipped)")
        add_threads(p)

    def add_threads(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--threads",
            type=positive_int,
            default=None,
            help=f"torch CPU threads, >= 1 (default: ${THREADS_ENV}, else {DEFAULT_THREADS})",
        )

    def add_implausible(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--allow-implausible-barriers",
            action="store_true",
            help="accept barriers below 0 or above 10 eV (refused by default: a unit or typing error)",
        )

    p = sub.add_parser("info", help="version, shipped model and its CV metrics, torch and threads")
    p.add_argument("--model", default=None, help="model directory or shipped name")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("predict", help="barrier of one hop: INITIAL FINAL, or --images NEB_FILE")
    p.add_argument("initial", nargs="?", help="initial endpoint (POSCAR, CIF, extxyz, ...)")
    p.add_argument("final", nargs="?", help="final endpoint, same atoms in the same order")
    p.add_argument("--images", help="multi-frame NEB file; first and last frames are the endpoints")
    p.add_argument("--ion-index", type=int, default=None, help="index of the migrating ion")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_model(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="score a model on a labelled em619-format JSON file")
    p.add_argument("data", help="JSON file (band5 or endpoint records with 'target')")
    p.add_argument("--predictions", help="write sys_name,target,prediction,em_std to this CSV")
    p.add_argument("--overwrite", action="store_true", help="replace an existing predictions file")
    p.add_argument("--skip-invalid", action="store_true", help="skip (and list) records with invalid hops")
    add_implausible(p)
    add_model(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="train a K-fold CV ensemble from scratch on an em619-format file")
    p.add_argument("data", help="JSON file (band5 or endpoint records with 'target')")
    p.add_argument("--output", required=True, help="model directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace a model in --output")
    p.add_argument("--name", default=None, help="model name on the card (default: directory name)")
    p.add_argument("--skip-invalid", action="store_true", help="skip (and list) records with invalid hops")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--grouped", action="store_true", help="folds grouped by host compound")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cutoff", type=float, default=8.0, help="neighbour search radius (A)")
    p.add_argument("--max-neighbors", type=int, default=12)
    p.add_argument("--crop-radius", type=float, default=None, help="keep atoms within this of the ion (A)")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--alignn-layers", type=int, default=2)
    p.add_argument("--gcn-layers", type=int, default=2)
    p.add_argument("--readout", choices=["mean", "ion", "path"], default="ion")
    p.add_argument("--init-from", default=None, metavar="BACKBONE",
                   help="start every fold model from a pre-trained backbone: directory or shipped name")
    p.add_argument("--workdir", default=None, help="checkpoints and graph cache (default: OUTPUT/.work)")
    add_implausible(p)
    add_threads(p)
    p.set_defaults(func=cmd_train)

    # --- finetune ---
    p = sub.add_parser(
        "finetune",
        help="fine-tune a model on your own DFT barriers (CSV, em619 JSON or band5 extxyz/traj)",
        description="Fine-tune each member of a trained model on labelled hops. DATA: a CSV with "
        "columns id,initial,final,em (optional ion_index) or id,images,em (paths relative to the "
        "CSV), an em619 JSON file, or an extxyz/traj of band5 frames with 'em' in their info. "
        "Every row is checked before training. See docs/finetune.md.",
    )
    p.add_argument("data", help="labelled hops: .csv, .json (em619) or .extxyz/.xyz/.traj (band5)")
    p.add_argument("--output", required=True, help="model directory to write")
    p.add_argument("--from", dest="base", default=None, metavar="MODEL",
                   help="model to start from: directory or shipped name of a barrier model or of a "
                   "pre-trained backbone (ase-em pretrain output; fresh head) (default: shipped model)")
    p.add_argument("--strategy", choices=["head", "partial", "full"], default=None,
                   help="what trains: the output head; the last (graph convolution) layers and the "
                   "head; or everything (default: head < 50 hops, partial < 300, else full)")
    p.add_argument("--epochs", type=int, default=50, help="most epochs per member (default 50)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: head 1e-3, partial 5e-4, full 2e-4)")
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=0, help="seed of split, shuffling and initial RNG")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="share of hops held out for validation and early stopping (default 0.2; 0: none)")
    p.add_argument("--folds", type=int, default=None,
                   help="K-fold CV instead: K members, member k early-stopped on fold k; out-of-fold figures")
    p.add_argument("--patience", type=int, default=10,
                   help="stop a member after this many epochs without a better validation MAE")
    p.add_argument("--workdir", default=None, help="checkpoints and graph cache (default: OUTPUT/.work)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a model in OUTPUT, discarding an old checkpoint")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip (and list) rows whose structures are not a valid hop")
    add_implausible(p)
    p.add_argument("--name", default=None, help="model name on the card (default: directory name)")
    add_threads(p)
    p.set_defaults(func=cmd_finetune)
    # --- pretrain ---
    p = sub.add_parser("pretrain", help="multi-property pre-training of the backbone on bulk crystals")
    p.add_argument("data", help="the mpt folder (bg.json.gz, gv.json.gz, ..., scaled_only/)")
    p.add_argument("--output", required=True, help="directory for backbone.pt and card.json")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--properties", nargs="+", default=["bg", "gv", "ebg", "fe", "ph", "pz", "dc"])
    p.add_argument("--max-per-property", type=int, default=None, help="random subset per property")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cutoff", type=float, default=8.0)
    p.add_argument("--max-neighbors", type=int, default=8)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--alignn-layers", type=int, default=2)
    p.add_argument("--gcn-layers", type=int, default=2)
    p.add_argument(
        "--readout", choices=["mean", "ion"], default="ion", help="readout of the barrier model to come"
    )
    p.add_argument("--workdir", default=None, help="checkpoints and graph cache (default: OUTPUT/.work)")
    add_threads(p)
    p.set_defaults(func=cmd_pretrain)
    # --- network ---
    p = sub.add_parser("network", help="barriers of all hops of an ion in a crystal; percolation barriers")
    p.add_argument("structure", help="crystal with all ion sites occupied (CIF, POSCAR, ...)")
    p.add_argument("--ion", required=True, help="migrating ion, e.g. Li")
    p.add_argument("--max-distance", type=float, default=5.0, help="longest ion-ion hop (A; default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", default=None, help="draw the hop network coloured by Em into this PNG")
    p.add_argument("--empty-sites", choices=["auto", "yes", "no"], default="auto",
                   help="candidate empty ion sites as nodes (auto: when no two occupied sites are "
                   "within --max-distance, or when the occupied sites alone do not percolate; "
                   "docs/pymatgen.md)")
    p.add_argument("--include-flagged", action="store_true",
                   help="let hops outside the model's domain (too long or short, grey-zone path, no host) "
                   "into percolation")
    p.add_argument("--orderings", type=positive_int, default=5,  # an integer >= 1
                   help="orderings drawn for a disordered structure (partial occupancies; default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the orderings (default 0)")
    add_model(p)
    p.set_defaults(func=cmd_network)
    # --- screen, screen-report: parsers in their own module (ase_em.screen.cli)
    from ase_em.screen.cli import add_parsers as add_screen_parsers

    add_screen_parsers(sub)
    # --- refine: parser and handler in their own module (ase_em.refine.cli)
    from ase_em.refine.cli import add_parser as add_refine_parser

    add_refine_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ase-em`` with ``argv`` (default: sys.argv[1:]); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        check_usage(args)  # before torch is imported
        return int(args.func(args) or 0)
    except AseEmError as exc:
        print(f"ase-em {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ase-em {args.command}: interrupted; checkpoints are kept, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
