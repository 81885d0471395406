"""Benchmark of ``ase-em screen`` on the OBELiX training CIFs, beside BVlain on the same files.

For each worker count the screen runs end to end into a fresh database (``ase_em.screening``,
local worker processes, one torch thread each); then BVlain (``pip install bvlain``; not a
dependency of ase-em) computes the Li percolation barriers (bond-valence site energy) of the
same files in this process, one at a time. Printed, and written as JSON and a Markdown table:

* structures per minute (wall clock, start-up included);
* CPU seconds per structure, split into start-up and other (everything that is not a
  finished unit's own work: worker imports and model loading, the main process,
  inter-process traffic, and the work of units killed at their time-out), structure
  handling (reading, symmetry, hops, orderings, band and graph building, percolation) and
  model (the network's forward passes); measured with ``getrusage`` (this process and its
  reaped children) and each row's ``cpu_structure`` / ``cpu_model``;
* the status counts, and Spearman's rho of each method's 1D barrier against log10 of the
  measured conductivity (rows with a numeric conductivity only).

Usage (time-boxed: the machine's other cores are busy)::

    timeout 3000 python benchmarks/screen.py --cifs ../shared/data/obelix/cifs \
        --conductivity ../shared/data/obelix/train.csv --limit 40 --workers 1 2 --out runs/screen-bench
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def cpu_now() -> float:
    """CPU seconds (user + system) of this process and its reaped children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman's rho, or None for fewer than 3 points."""
    if len(xs) < 3:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(xs, ys).statistic)


def log_sigma(keys_csv: Path | None, id_column: str, column: str) -> dict[str, float]:
    """``{id: log10(conductivity)}`` for the ids with a numeric conductivity."""
    if keys_csv is None:
        return {}
    from ase_em.screening.inputs import read_keys_csv

    out = {}
    for ident, keys in read_keys_csv(keys_csv, id_column).items():
        v = keys.get(column)
        if isinstance(v, float) and v > 0:
            out[ident] = math.log10(v)
    return out


def run_screen(files: list[Path], workers: int, out: Path, timeout: float, n_orderings: int) -> dict:
    """One end-to-end screen into a fresh database; its timings and rows."""
    from ase.db import connect

    from ase_em.screening import screen

    db = out / f"screen-w{workers}.db"
    if db.exists():
        db.unlink()
    cpu0, wall0 = cpu_now(), time.perf_counter()
    summary = screen(files, "Li", db, workers=workers, timeout=timeout, n_orderings=n_orderings,
                     progress=True)
    wall, cpu = time.perf_counter() - wall0, cpu_now() - cpu0
    rows = [r.key_value_pairs for r in connect(str(db)).select(include_data=False)]
    n = len(rows)
    cpu_structure = sum(r.get("cpu_structure", 0.0) for r in rows)
    cpu_model = sum(r.get("cpu_model", 0.0) for r in rows)
    return {
        "method": f"ase-em screen, {workers} worker{'s' * (workers > 1)}",
        "n": n,
        "wall_s": wall,
        "per_minute": 60.0 * n / wall,
        "cpu_per_structure": cpu / n,
        "startup_per_structure": max(cpu - cpu_structure - cpu_model, 0.0) / n,
        "structure_per_structure": cpu_structure / n,
        "model_per_structure": cpu_model / n,
        "status": summary.status,
        "em_1d": {Path(r["source"]).stem: r["em_1d"] for r in rows if "em_1d" in r},
        "db": str(db),
    }


def run_bvlain(files: list[Path]) -> dict:
    """BVlain's Li percolation barriers of the same files, one at a time in this process."""
    import warnings

    from bvlain import Lain

    cpu0, wall0 = cpu_now(), time.perf_counter()
    em, status = {}, {"ok": 0, "failed": 0}
    for f in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                calc = Lain(verbose=False)
                calc.read_file(str(f))
                calc.bvse_distribution(mobile_ion="Li1+")
                barriers = calc.percolation_barriers()
            e1 = barriers.get("E_1D")
            if e1 is not None and math.isfinite(e1):
                em[f.stem] = float(e1)
            status["ok"] += 1
        except Exception as exc:  # a benchmark of someone else's code: count and go on
            status["failed"] += 1
            print(f"bvlain: {f.name}: {type(exc).__name__}: {str(exc)[:120]}", file=sys.stderr)
    wall, cpu = time.perf_counter() - wall0, cpu_now() - cpu0
    n = len(files)
    return {
        "method": "BVlain (BVSE), 1 process",
        "n": n,
        "wall_s": wall,
        "per_minute": 60.0 * n / wall,
        "cpu_per_structure": cpu / n,
        "startup_per_structure": None,
        "structure_per_structure": None,
        "model_per_structure": None,
        "status": status,
        "em_1d": em,
    }


def markdown(results: list[dict], sigma: dict[str, float]) -> str:
    """The results as a Markdown table."""
    def f(v: float | None, fmt: str = ".2f") -> str:
        return "-" if v is None else format(v, fmt)

    lines = [
        "| method | structures | wall (s) | structures/min | CPU s/structure | start-up + other "
        "| structure | model "
        "| status | 1D barriers | Spearman vs log10 sigma |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        ids = sorted(set(r["em_1d"]) & set(sigma))
        rho = spearman([r["em_1d"][i] for i in ids], [sigma[i] for i in ids])
        status = ", ".join(f"{v} {k}" for k, v in sorted(r["status"].items()))
        lines.append(
            f"| {r['method']} | {r['n']} | {r['wall_s']:.0f} | {r['per_minute']:.1f} "
            f"| {r['cpu_per_structure']:.1f} "
            f"| {f(r['startup_per_structure'])} | {f(r['structure_per_structure'])} "
            f"| {f(r['model_per_structure'])} | {status} | {len(r['em_1d'])} "
            f"| {f(rho)} (n={len(ids)}) |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cifs", default="../shared/data/obelix/cifs")
    ap.add_argument("--conductivity", default="../shared/data/obelix/train.csv",
                    help="CSV with an ID column and the conductivity (for Spearman's rho)")
    ap.add_argument("--id-column", default="ID")
    ap.add_argument("--sigma-key", default="ionic_conductivity_s_cm_1",
                    help="conductivity key after renaming")
    ap.add_argument("--limit", type=int, default=None, help="only the first N files (sorted by name)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--timeout", type=float, default=600.0, help="per-structure time-out (s)")
    ap.add_argument("--orderings", type=int, default=5, help="orderings per disordered structure")
    ap.add_argument("--no-bvlain", action="store_true")
    ap.add_argument("--out", default="runs/screen-bench")
    args = ap.parse_args()

    files = sorted(Path(args.cifs).glob("*.cif"))[: args.limit]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sigma = log_sigma(Path(args.conductivity) if args.conductivity else None, args.id_column, args.sigma_key)
    print(f"{len(files)} CIFs from {args.cifs}; {len(sigma)} ids with a numeric conductivity", flush=True)
    results = []
    for w in args.workers:
        results.append(run_screen(files, w, out, args.timeout, args.orderings))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "em_1d"}), flush=True)
    if not args.no_bvlain:
        results.append(run_bvlain(files))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "em_1d"}), flush=True)
    table = markdown(results, sigma)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
