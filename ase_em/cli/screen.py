"""``ase-em screen`` and ``ase-em screen-report``: parsers and handlers.

:func:`add_parsers` registers both on the subparsers of ``ase-em`` (see
:func:`ase_em.cli.main.build_parser`); the handlers import the work lazily so that
``ase-em --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from ase_em.cli._args import add_ordering_tolerance, positive_int
from ase_em.config import SCREEN_ORDERING_TOLERANCE


def cmd_screen(args: argparse.Namespace) -> int:
    """Barriers of many structures into a resumable ASE database."""
    from ase_em.screening.run import screen

    try:
        summary = screen(
            args.inputs,
            args.ion,
            args.db,
            workers=args.workers,
            scheduler=args.scheduler,
            timeout=args.timeout,
            resume=args.resume,
            retry=args.retry,
            model=args.model,
            max_distance=args.max_distance,
            n_orderings=args.orderings,
            ordering_tolerance=args.ordering_tolerance,
            seed=args.seed,
            keys=args.keys,
            keys_id=args.keys_id,
            threads=args.threads,
            progress=not args.quiet,
            allow_no_host=bool(getattr(args, "allow_no_host", False)),
        )
    except KeyboardInterrupt:
        print(f"ase-em screen: interrupted; the rows written are kept: rerun with --resume to finish "
              f"{args.db}",
              file=sys.stderr)
        return 130
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.status.items())) or "nothing to do"
    print(f"{summary.db}: {summary.n_units} structure-ion units, {summary.n_skipped} already done, "
          f"{summary.n_run} run now ({counts}) in {summary.seconds:.0f} s")
    return 0


def cmd_screen_report(args: argparse.Namespace) -> int:
    """Ranked CSV and PNG of a screening database."""
    from ase_em.screening.report import screen_report

    in_domain = bool(getattr(args, "in_domain", False))
    csv_path, png_path, rows = screen_report(
        args.db, csv_path=args.csv, png_path=args.png, by=args.by, x=args.x, logx=args.logx, ion=args.ion,
        in_domain=in_domain,
    )
    n_ranked = sum(1 for r in rows if r["rank"] != "")
    print(f"wrote {csv_path} ({len(rows)} rows, {n_ranked} ranked by {args.by}"
          f"{', in-domain bottlenecks only' if in_domain else ''}) and {png_path}")
    for r in rows[: args.top]:
        if r["rank"] == "":
            break
        std = r.get(f"{args.by}_std")
        std = "" if std is None else f" +/- {std:.3f}"
        mark = f"  * {r['flagged']}" if r["flagged"] else ""
        formula = r.get("reduced_formula", "")
        unit = " S/cm (log10)" if args.by.startswith("log10_sigma") else " eV"
        print(f"{r['rank']:>4}  {r[args.by]:.3f}{std}{unit}  {formula}  {r['source']}{mark}")
    if any(r["flagged"] for r in rows[: args.top] if r["rank"] != ""):
        print("* the bottleneck hop is outside the model's domain (its flags); "
              "--in-domain ranks the others only")
    left = [r for r in rows if r["rank"] == "" and r["flagged"] and isinstance(r.get(args.by), (int, float))]
    if left:
        print(f"not ranked: {len(left)} row(s) whose bottleneck hop is flagged: "
              + ", ".join(f"{r['source']} ({r[args.by]:.3f} eV, {r['flagged']})" for r in left[:5])
              + (", ..." if len(left) > 5 else ""))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``screen`` and ``screen-report`` on the ``ase-em`` subparsers."""
    p = sub.add_parser(
        "screen",
        help="barriers of many structures into a resumable ASE database (local workers or Dask)",
        description="Percolation barriers of every INPUT structure and ion, one row each in an ASE "
        "database (readable with `ase db`). INPUT: structure files (CIF, POSCAR/CONTCAR, *.vasp, "
        "extxyz, pymatgen JSON), folders (searched recursively), text files listing paths (.txt), or "
        "ASE databases (.db). See docs/screening.md.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="structure files, folders, path lists, ASE dbs")
    p.add_argument("--ion", action="append", required=True, help="migrating ion (repeat for several)")
    p.add_argument("--db", required=True, help="results database (.db, ASE SQLite)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="local worker processes (default: CPU count, at most 8)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on a Dask cluster: scheduler address (tcp://host:8786) or scheduler file")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="seconds one structure may take; then its row is 'timeout' and the worker replaced")
    p.add_argument("--resume", action="store_true",
                   help="finish an interrupted screen: skip units already done")
    p.add_argument("--retry", action="store_true", help="with --resume: redo error and timeout rows too")
    p.add_argument("--max-distance", type=float, default=5.0, help="longest ion-ion hop (A; default 5)")
    p.add_argument("--orderings", type=positive_int, default=5,
                   help="most orderings drawn for a disordered structure (partial occupancies; default 5)")
    add_ordering_tolerance(p, SCREEN_ORDERING_TOLERANCE)
    p.add_argument("--seed", type=int, default=0, help="seed of the first ordering (default 0)")
    p.add_argument("--keys", default=None, metavar="CSV",
                   help="extra per-structure keys: CSV with an id column matched to the file stem")
    p.add_argument("--keys-id", default="id", metavar="COLUMN", help="id column of --keys (default: id)")
    p.add_argument("--model", default=None,
                   help="model directory or shipped name (default: alignn-em-v1-distilled, one network "
                        "distilled from the shipped ensemble; alignn-em-v1 for the ensemble itself)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads per worker (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--allow-no-host", action="store_true",
                   help="screen structures without a host framework (elemental metals) instead of "
                   "refusing them")
    p.set_defaults(func=cmd_screen)

    p = sub.add_parser("screen-report", help="ranked CSV and PNG of a screening database")
    p.add_argument("db", help="database written by ase-em screen")
    p.add_argument("--csv", default=None, help="CSV to write (default: DB with .csv)")
    p.add_argument("--png", default=None, help="PNG to write (default: DB with .png)")
    p.add_argument("--by", default="em_1d",
                   help="ranking key (default em_1d; e.g. em_3d, em_min, activation_energy; "
                   "log10_sigma_300 ranks the highest conductivity first)")
    p.add_argument("--x", default=None, metavar="KEY",
                   help="scatter the ranking key against this numeric row key (e.g. a conductivity)")
    p.add_argument("--logx", action="store_true", help="plot log10 of --x")
    p.add_argument("--ion", default=None, help="only rows of this ion")
    p.add_argument("--top", type=int, default=10, help="print the best N (default 10)")
    p.add_argument("--in-domain", action="store_true",
                   help="rank only rows whose bottleneck hop has no domain flag "
                   "(flagged rows follow, unranked)")
    p.set_defaults(func=cmd_screen_report)
