"""``ase-em``: predict, evaluate and train from the command line.

``main(argv)`` parses; each subcommand is one small function. Input errors
(:class:`ase_em.errors.AseEmError`) become one line on stderr and exit code 2. Usage errors
(bad arguments, ``--threads`` below 1, missing input files, an output folder that cannot be
written) are found before torch is imported, in well under a second: keep this module free
of top-level heavy imports (torch, ase.io, pymatgen, alignn).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ase_em._runtime.threads import DEFAULT_THREADS, THREADS_ENV
from ase_em._version import __version__
from ase_em.cli._args import (
    _Parser,
    add_ordering_tolerance,
    check_usage,
    fold_count,
    non_negative_float,
    positive_float,
    positive_int,
)
from ase_em.cli.network import cmd_network
from ase_em.cli.predict import cmd_evaluate, cmd_info, cmd_predict
from ase_em.cli.training import cmd_finetune, cmd_pretrain, cmd_train
from ase_em.errors import AseEmError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ase-em`` with all subcommands."""
    parser = _Parser(
        prog="ase-em",
        description="Migration barriers (Em, eV) of ion hops in crystals.",
        epilog=f"CPU threads: --threads, else ${THREADS_ENV}, else {DEFAULT_THREADS} "
        "(more threads than idle cores make torch far slower; docs/benchmarks.md)",
    )
    parser.add_argument("--version", action="version", version=f"ase-em {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log progress details (-vv: debug, e.g. every hop of every screened structure)")
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
    p.add_argument("--images", help="multi-frame NEB file, or a VASP NEB folder (00 .. NN, CONTCAR else "
                   "POSCAR); first and last images are the endpoints")
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
    p.add_argument("--folds", type=fold_count, default=5)
    p.add_argument("--grouped", action="store_true", help="folds grouped by host compound")
    p.add_argument("--epochs", type=positive_int, default=60)
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--lr", type=positive_float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cutoff", type=positive_float, default=8.0, help="neighbour search radius (A)")
    p.add_argument("--max-neighbors", type=positive_int, default=12)
    p.add_argument("--crop-radius", type=float, default=None, help="keep atoms within this of the ion (A)")
    p.add_argument("--hidden", type=positive_int, default=64)
    p.add_argument("--alignn-layers", type=int, default=2)
    p.add_argument("--gcn-layers", type=int, default=2)
    p.add_argument("--readout", choices=["mean", "ion", "path"], default="ion")
    p.add_argument("--init-from", default=None, metavar="BACKBONE",
                   help="start every fold model from a pre-trained backbone: directory or shipped name")
    p.add_argument("--rank-weight", type=non_negative_float, default=0.0,
                   help="weight of the pairwise ranking loss between the pathways of one structure "
                   "(default 0: off)")
    p.add_argument("--rank-tie", type=non_negative_float, default=0.02,
                   help="DFT barrier difference (eV) below which a pair is not ranked (default 0.02)")
    p.add_argument("--density-weight", type=non_negative_float, default=0.0, metavar="POWER",
                   help="weight each hop's loss by the inverse density of its barrier to this power "
                   "(0.5: inverse square root; default 0: off)")
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
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cutoff", type=float, default=8.0)
    p.add_argument("--max-neighbors", type=int, default=8)
    p.add_argument("--hidden", type=positive_int, default=64)
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
    p.add_argument("--plot", default=None,
                   help="draw the hop network coloured by Em into this PNG, or, for a .html path, an "
                   "interactive view (host atoms, empty sites, percolating hops, hover Em/std/flags)")
    p.add_argument("--empty-sites", choices=["auto", "yes", "no"], default="auto",
                   help="candidate empty ion sites as nodes (auto: when no two occupied sites are "
                   "within --max-distance, or when the occupied sites alone do not percolate; "
                   "docs/pymatgen.md)")
    p.add_argument("--include-flagged", action="store_true",
                   help="let hops outside the model's domain (too long or short, grey-zone path, no host) "
                   "into percolation")
    p.add_argument("--orderings", type=positive_int, default=5,  # an integer >= 1
                   help="orderings drawn for a disordered structure (partial occupancies; default 5)")
    add_ordering_tolerance(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the orderings (default 0)")
    p.add_argument("--block", default=None, metavar="NAME",
                   help="data block of a CIF file with several (a database export)")
    add_model(p)
    p.set_defaults(func=cmd_network)
    # --- screen, screen-report: parsers in their own module (ase_em.cli.screen)
    from ase_em.cli.screen import add_parsers as add_screen_parsers

    add_screen_parsers(sub)
    # --- refine: parser and handler in their own module (ase_em.cli.refine)
    from ase_em.cli.refine import add_parser as add_refine_parser

    add_refine_parser(sub)
    # --- conductivity: parser and handler in their own module (ase_em.cli.conductivity)
    from ase_em.cli.conductivity import add_parser as add_conductivity_parser

    add_conductivity_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ase-em`` with ``argv`` (default: sys.argv[1:]); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(message)s")
    logging.getLogger("matplotlib").setLevel(max(level, logging.INFO))  # its font search at DEBUG
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
