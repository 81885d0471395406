"""Speed of this tree against another checkout of ase-em, side by side in one run.

Each measurement runs in fresh processes, alternately for the two trees (``PYTHONPATH``
points at each tree, so the same virtual environment serves both):

* ``predict``: wall time of one ``ase-em predict`` on examples/LiFePO4 (median of ``--repeat``);
* ``evaluate``: ``ase-em evaluate`` on TRAIN (``--threads``), hops per second (wall, start-up
  included) and peak memory of the process; the predictions of the two trees compared;
* ``screen``: ``ase-em screen`` of the first ``--cifs-limit`` OBELiX training CIFs (Li, 3
  orderings, ``--workers``), ``--screen-repeat`` times per tree, alternately: structures per
  hour (median wall), the speed-up of each pair of runs, and the largest difference of the
  1D percolation barrier between the trees on the same files, whether the same structures
  percolate, and each tree's Spearman of the percolation barrier (E3D, else E2D, else E1D)
  against the measured conductivity with a paired bootstrap of the difference.

Usage (make a checkout of the baseline beside this one, e.g. ``git worktree add ../base COMMIT``)::

    python benchmarks/speed.py --baseline ../base --out runs/speed
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmarks' readers (obelix.py)


def children_cpu() -> float:
    """CPU seconds (user + system) of the reaped child processes so far."""
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def run(tree: Path, args: list[str], env_extra: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (with its workers) and peak RSS (MiB) of ``ase-em ARGS`` on ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1", **(env_extra or {}))
    code = (
        "import resource, sys\nfrom ase_em.cli.main import main\nrc = main(sys.argv[1:])\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    t0, cpu0 = time.perf_counter(), children_cpu()
    # cwd too: "python -c" puts the working directory first on sys.path
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=tree, capture_output=True, text=True
    )
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    peak = next(float(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK"))
    return wall, cpu, peak


def read_predictions(path: Path) -> dict[str, float]:
    """sys_name -> prediction (eV) from an evaluate CSV."""
    with open(path) as fh:
        return {row["sys_name"]: float(row["prediction"]) for row in csv.DictReader(fh)}


def read_screen(db: Path, key: str = "em_1d") -> dict[str, float | None]:
    """source -> ``key`` of each row of a screening database (default: the 1D percolation barrier, eV)."""
    from ase.db import connect

    out = {}
    for row in connect(str(db)).select():
        kv = row.key_value_pairs
        out[kv["source"]] = kv.get(key)
    return out


def unit_cpu(db: Path) -> float:
    """CPU s of the screen's units (their rows' cpu_model + cpu_structure, in the workers).

    Not the processes' own count: a worker forked from a fork server is not this process's
    child, so its CPU is not in ``RUSAGE_CHILDREN``; start-up is not in either figure.
    """
    from ase.db import connect

    return sum(r.key_value_pairs.get("cpu_model", 0.0) + r.key_value_pairs.get("cpu_structure", 0.0)
               for r in connect(str(db)).select())


def screen_barriers(db: Path) -> dict[str, float]:
    """OBELiX ID -> percolation barrier (eV): E3D, else E2D, else E1D (as benchmarks/obelix.py)."""
    from obelix import percolation_choice

    dims = [read_screen(db, f"em_{d}d") for d in (1, 2, 3)]
    out = {}
    for source in dims[0]:
        e, _ = percolation_choice({f"{d}D": dims[d - 1][source] for d in (1, 2, 3)})
        if e is not None:
            out[Path(source).stem] = e
    return out


def paired_spearman(a: dict[str, float], b: dict[str, float], measured: dict[str, float],
                    resamples: int = 2000) -> dict[str, float]:
    """Spearman(-barrier, measured log10 sigma) of two trees on their common structures, and the paired
    bootstrap (structures drawn with replacement, seed 0) of the difference (this - baseline)."""
    import numpy as np
    from conductivity import bootstrap_spearman

    ids = sorted(set(a) & set(b) & set(measured))
    x = np.array([[-a[i], -b[i], measured[i]] for i in ids])
    this, base, lo, hi = bootstrap_spearman(x, resamples)
    return {"n": len(ids), "this": this, "baseline": base, "diff": this - base, "lo": lo, "hi": hi}


def main() -> None:
    """Run the three measurements and print a Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, required=True, help="checkout of the code to compare with")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "speed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cifs-limit", type=int, default=40)
    parser.add_argument("--screen-repeat", type=int, default=1,
                        help="screens of each tree, alternately; the median wall counts")
    parser.add_argument("--model", default="alignn-em-v1", help="model both trees load (a name both ship)")
    parser.add_argument("--this-model", default=None,
                        help="model this tree loads instead (one the baseline does not ship, e.g. a "
                             "distilled one); the barrier differences then measure the approximation")
    parser.add_argument("--hops", type=int, default=None, help="evaluate the first N TRAIN records only")
    parser.add_argument("--skip", nargs="*", default=[], choices=["predict", "evaluate", "screen"])
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    trees = {"baseline": args.baseline.resolve(), "this": ROOT}
    models = {"baseline": args.model, "this": args.this_model or args.model}
    report: dict[str, dict] = {name: {"model": models[name]} for name in trees}
    example = ROOT / "examples" / "LiFePO4"

    if "predict" not in args.skip:
        walls: dict[str, list[tuple[float, float, float]]] = {name: [] for name in trees}
        for _ in range(args.repeat):
            for name, tree in trees.items():
                cmd = ["predict", str(example / "initial.vasp"), str(example / "final.vasp"), "--json",
                       "--model", models[name]]
                walls[name].append(run(tree, cmd))
        for name in trees:
            report[name]["predict_wall_s"] = statistics.median(w for w, _, _ in walls[name])
            report[name]["predict_cpu_s"] = statistics.median(c for _, c, _ in walls[name])

    if "evaluate" not in args.skip:
        data = SHARED / "data" / "em619" / "band5_train.json"
        if args.hops:
            subset = args.out / f"train-first-{args.hops}.json"
            subset.write_text(json.dumps(json.loads(data.read_text())[: args.hops]))
            data = subset
        for name, tree in trees.items():
            csv_path = args.out / f"evaluate-{name}.csv"
            cmd = ["evaluate", str(data), "--skip-invalid", "--threads", str(args.threads),
                   "--predictions", str(csv_path), "--overwrite", "--model", models[name]]
            wall, cpu, peak = run(tree, cmd)
            n = len(read_predictions(csv_path))
            report[name].update(evaluate_hops=n, evaluate_wall_s=wall, evaluate_hops_per_s=n / wall,
                                evaluate_cpu_s=cpu, evaluate_peak_MiB=peak)
        a, b = (read_predictions(args.out / f"evaluate-{n}.csv") for n in trees)
        report["this"]["evaluate_max_diff_eV"] = max(abs(a[k] - b[k]) for k in a)

    if "screen" not in args.skip:
        cifs = sorted((SHARED / "data" / "obelix" / "cifs").glob("*.cif"))[: args.cifs_limit]
        listing = args.out / "cifs.txt"
        listing.write_text("".join(f"{c}\n" for c in cifs))
        walls: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.screen_repeat):  # alternately, so a slower spell of the machine hits both
            for name, tree in trees.items():
                db = args.out / f"screen-{name}.db"
                db.unlink(missing_ok=True)
                cmd = ["screen", *map(str, cifs), "--ion", "Li", "--db", str(db), "--orderings", "3",
                       "--workers", str(args.workers), "--quiet", "--model", models[name]]
                wall, _, _ = run(tree, cmd)
                walls[name].append(wall)
        for name in trees:
            wall = statistics.median(walls[name])
            report[name].update(screen_structures=len(cifs), screen_wall_s=wall,
                                screen_walls_s=", ".join(f"{w:.1f}" for w in walls[name]),
                                screen_unit_cpu_s=unit_cpu(args.out / f"screen-{name}.db"),
                                screen_per_hour=3600 * len(cifs) / wall)
        report["this"]["screen_speedup"] = (report["baseline"]["screen_wall_s"]
                                            / report["this"]["screen_wall_s"])
        report["this"]["screen_speedups_per_pair"] = ", ".join(
            f"{b / t:.2f}" for b, t in zip(walls["baseline"], walls["this"], strict=True))
        a, b = (read_screen(args.out / f"screen-{n}.db") for n in trees)
        diffs = [abs(a[k] - b[k]) for k in a if a.get(k) is not None and b.get(k) is not None]
        report["this"]["screen_max_diff_eV"] = max(diffs) if diffs else None
        report["this"]["screen_same_coverage"] = sorted(k for k in a if a[k] is not None) == sorted(
            k for k in b if b[k] is not None
        )
        if args.cifs_limit >= 20:  # Spearman against the measured conductivities (OBELiX train.csv)
            from obelix import conductivities

            table = conductivities(str(SHARED / "data" / "obelix" / "train.csv"))
            measured = {i: v for i, (v, _) in table.items()}
            rho = paired_spearman(screen_barriers(args.out / "screen-this.db"),
                                  screen_barriers(args.out / "screen-baseline.db"), measured)
            report["baseline"]["screen_spearman"] = rho["baseline"]
            report["this"]["screen_spearman"] = rho["this"]
            report["this"]["screen_spearman_n"] = rho["n"]
            report["this"]["screen_spearman_diff_95"] = (
                f"{rho['diff']:+.3f} ({rho['lo']:+.3f} to {rho['hi']:+.3f})")

    (args.out / "speed.json").write_text(json.dumps(report, indent=2))
    keys = sorted({k for r in report.values() for k in r})
    print("| figure | baseline | this |\n| --- | --- | --- |")
    for k in keys:
        cells = [report[n].get(k, "") for n in trees]
        print(f"| {k} | " + " | ".join(f"{c:.4g}" if isinstance(c, float) else str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
