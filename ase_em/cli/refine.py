"""``ase-em refine``: climbing-image NEB of one hop, printed beside the network's Em.

Registered by :func:`add_parser` from :mod:`ase_em.cli.main`; :func:`cmd_refine` does the work.
"""

from __future__ import annotations

import argparse
import json
import sys

from ase_em.cli._args import non_negative_int, positive_float, positive_int
from ase_em.errors import AseEmError
from ase_em.neb.neb import DEFAULT_FMAX, DEFAULT_N_IMAGES, DEFAULT_RELAX_STEPS, DEFAULT_STEPS
from ase_em.neb.select import DEFAULT_THRESHOLD


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``refine`` subcommand to the ``ase-em`` subparsers.

    Args:
        sub: the object returned by ``ArgumentParser.add_subparsers``.

    Returns:
        The new subparser.
    """
    p = sub.add_parser(
        "refine",
        help="refine one hop by climbing-image NEB with an interatomic potential (SevenNet-0 by default)",
        description="Relax both endpoints, interpolate images (IDPP) and run a climbing-image NEB with an "
        "interatomic potential; print the refined barrier beside the network's Em. See docs/refine.md.",
    )
    p.add_argument("initial", nargs="?", help="initial endpoint (POSCAR, CIF, extxyz, ...)")
    p.add_argument("final", nargs="?", help="final endpoint, same atoms in the same order")
    p.add_argument("--images", help="multi-frame NEB file; its first and last frames are the endpoints")
    p.add_argument("--from", dest="from_db", default=None, metavar="DB",
                   help="screening database (ase-em screen --db): refine the hops that set the percolation "
                   "barrier of its rows and store the refined barriers in those rows")
    p.add_argument("--rows", type=positive_int, nargs="+", default=None, metavar="ID",
                   help="with --from: the row ids (default: every row with status ok)")
    p.add_argument("--dimension", type=int, choices=[1, 2, 3], nargs="+", default=[3],
                   help="with --from: percolation dimensions whose bottleneck hops are refined (default 3)")
    p.add_argument("--select", choices=["all", "auto"], default="all",
                   help="with --from: 'all' refines every bottleneck hop of every row (default); 'auto' "
                   "refines the --budget bottleneck hops over all rows whose refinement can change a "
                   "decision (ranked by --rule), and prints each choice with its reason")
    p.add_argument("--budget", type=non_negative_int, default=None, metavar="N",
                   help="with --select auto: how many hops to refine (required)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"with --select auto: the decision threshold, eV (default {DEFAULT_THRESHOLD})")
    p.add_argument("--rule", choices=["straddle", "std"], default="straddle",
                   help="with --select auto: rank by how far the network's uncertainty straddles --threshold "
                   "(default) or by em_std")
    p.add_argument("--workers", type=positive_int, default=1, help="with --from: worker processes over hops")
    p.add_argument("--ion-index", type=int, default=None, help="index of the migrating ion")
    p.add_argument("--calculator", default="sevennet-0",
                   help="potential: sevennet-0 (default; pip install 'ase-em[neb]'), sevennet-mf-0, "
                   "sevennet-l3i5, chgnet (pip install chgnet), emt, or package.module:factory")
    p.add_argument("--device", default=None, help="torch device of the potential (default: cuda if present)")
    p.add_argument("--fmax", type=positive_float, default=DEFAULT_FMAX,
                   help=f"NEB force tolerance, eV/A (default {DEFAULT_FMAX})")
    p.add_argument("--steps", type=positive_int, default=DEFAULT_STEPS,
                   help=f"most NEB steps (default {DEFAULT_STEPS})")
    p.add_argument("--n-images", type=positive_int, default=DEFAULT_N_IMAGES,
                   help=f"moving images between the endpoints (default {DEFAULT_N_IMAGES})")
    p.add_argument("--relax-steps", type=positive_int, default=DEFAULT_RELAX_STEPS,
                   help=f"most steps of each endpoint relaxation (default {DEFAULT_RELAX_STEPS})")
    p.add_argument("--optimizer", choices=["FIRE", "BFGS"], default="FIRE", help="NEB optimizer")
    p.add_argument("--time-limit", type=positive_float, default=None,
                   help="stop the NEB after this many seconds")
    p.add_argument("--workdir", default=None, help="trajectories and checkpoints; rerun with it to resume")
    p.add_argument("--plot", default=None, help="write the energy profile (and the network's Em) to this PNG")
    p.add_argument("--write-images", default=None, metavar="FILE",
                   help="write the final band (endpoints and images) to this file, e.g. neb.extxyz")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-network", action="store_true", help="do not predict the network's Em beside it")
    p.add_argument("--model", default=None, help="model of the network's Em (default: shipped)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads, >= 1 (default 1)")
    p.set_defaults(func=cmd_refine)
    return p


def cmd_refine(args: argparse.Namespace) -> int:
    """Refine one hop; print both barriers, convergence, cost and the network's Em."""
    from ase_em._runtime.folders import check_file_target
    from ase_em._runtime.threads import set_threads
    from ase_em.hops.hop import Hop
    from ase_em.neb.neb import refine

    if args.from_db:
        return _refine_db(args)
    if args.images and (args.initial or args.final):
        raise AseEmError("give either INITIAL FINAL or --images FILE, not both")
    if not args.images and not (args.initial and args.final):
        raise AseEmError("give INITIAL and FINAL structure files, or --images FILE")
    if args.write_images:
        check_file_target(args.write_images, role="--write-images")
    if args.images:
        hop = Hop.from_images(args.images, ion_index=args.ion_index)
    else:
        hop = Hop.from_endpoints(args.initial, args.final, ion_index=args.ion_index)
    set_threads(args.threads)
    predictor = None
    if not args.no_network:
        from ase_em.predictor import EmPredictor

        predictor = EmPredictor.from_pretrained(args.model)
        predictor.predict_one(hop)  # the element check before minutes of NEB
    result = refine(
        hop, args.calculator, fmax=args.fmax, steps=args.steps, n_images=args.n_images,
        relax_steps=args.relax_steps, optimizer=args.optimizer, time_limit=args.time_limit,
        workdir=args.workdir, predictor=predictor, device=args.device,
    )
    if args.plot:
        result.plot(args.plot)
    if args.write_images:
        result.write_images(args.write_images)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(_report(result))
        for path in (args.plot, args.write_images):
            if path:
                print(f"wrote {path}")
    if result.combine_warning:
        print(f"ase-em refine: warning: {result.combine_warning}", file=sys.stderr)
    if not result.converged:
        print(f"ase-em refine: warning: the NEB did not converge (largest force {result.max_force:.3f} "
              f"eV/A > fmax {result.fmax:g}); rerun with --workdir and more --steps to continue",
              file=sys.stderr)
    return 0


def _refine_db(args: argparse.Namespace) -> int:
    """``--from DB``: refine the bottleneck hops of screening rows, store them in the rows."""
    from ase_em._runtime.threads import set_threads
    from ase_em.neb.screen_rows import refine_screen_rows

    if args.initial or args.final or args.images:
        raise AseEmError("give either --from DB or structures (INITIAL FINAL / --images), not both")
    if args.select == "auto" and args.budget is None:
        raise AseEmError("--select auto needs --budget N (how many hops to refine)")
    if args.select != "auto" and args.budget is not None:
        raise AseEmError("--budget goes with --select auto")
    set_threads(args.threads)
    out = refine_screen_rows(
        args.from_db, args.rows, args.calculator, dimensions=args.dimension, workdir=args.workdir,
        workers=args.workers, threads=args.threads or 1, budget=args.budget, threshold=args.threshold,
        rule=args.rule, fmax=args.fmax, steps=args.steps,
        n_images=args.n_images, relax_steps=args.relax_steps, optimizer=args.optimizer,
        time_limit=args.time_limit, device=args.device,
    )
    summary = {}
    for row_id, res in out.items():
        summary[row_id] = {
            "percolation_refined": res["percolation_refined"],
            "refined": {lab: r.to_dict() for lab, r in res["refined"].items()},
            "chosen": [{"hop": c.key[1], "reason": c.reason} for c in res["chosen"]],
        }
        if not args.json:
            for c in res["chosen"]:
                print(f"chosen: row {row_id} hop {c.key[1]}: {c.reason}")
            perc = ", ".join(f"{d}D {e:.3f} eV" if e is not None else f"{d}D none"
                             for d, e in res["percolation_refined"].items())
            print(f"row {row_id}: refined percolation barrier {perc}")
            for lab, r in res["refined"].items():
                print(f"  hop {lab}: {r.summary()}")
                if r.combine_warning:
                    print(f"ase-em refine: warning: row {row_id} hop {lab}: {r.combine_warning}",
                          file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"stored in {args.from_db} (em_<d>d_refined, em_<d>d_combined, data 'refined')")
    return 0


def _report(r) -> str:
    lines = [
        f"hop: {r.name} ({r.ion})",
        f"refined Em (forward, E_saddle - E_initial): {r.em_forward:.3f} eV",
        f"refined Em (max - min along the path):      {r.em_reference:.3f} eV",
        f"backward barrier (E_saddle - E_final):      {r.em_backward:.3f} eV",
    ]
    if r.em_neb_std is not None:
        why = f" ({'; '.join(r.neb_std_reasons)})" if r.neb_std_reasons else ""
        lines.append(f"NEB uncertainty:                            {r.em_neb_std:.3f} eV{why}")
    if r.em_network is not None:
        std = f" +- {r.em_network_std:.3f}" if r.em_network_std is not None else ""
        lines.append(f"network Em:                                 {r.em_network:.3f}{std} eV")
    if r.em_combined is not None:
        lines.append(f"combined Em (network and NEB):              {r.em_combined:.3f} +- "
                     f"{r.em_combined_std:.3f} eV")
    profile = " ".join(f"{e:.3f}" for e in r.energies)
    lines += [
        f"energy profile (eV, relative to the initial endpoint): {profile}",
        f"{r.calculator} CI-NEB, {r.n_images} images: {'converged' if r.converged else 'NOT converged'} "
        f"(largest force {r.max_force:.3f} eV/A, fmax {r.fmax:g}), {r.steps} NEB steps, "
        f"{r.relax_steps} relaxation steps, {r.seconds:.1f} s",
    ]
    return "\n".join(lines)
