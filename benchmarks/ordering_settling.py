"""How many disordered OBELiX CIFs settle at two orderings, and what stopping there moves.

Runs every disordered OBELiX training CIF (Li) with a fixed count of orderings (``--orderings``,
default 3) and keeps each hop's barrier in each ordering and each ordering's percolation
barriers (JSONL, one line per CIF; a rerun skips the CIFs already in the file). The report
applies :func:`ase_em.crystals.disordered.barriers_settled` to the first two orderings of
each CIF for each ``--tolerance`` and gives how many would stop there and how far their 1D
percolation barrier (median of two) lies from the median of all orderings.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/ordering_settling.py --out runs/settling.jsonl
    python benchmarks/ordering_settling.py --out runs/settling.jsonl --report --tolerance 0.025 0.05 0.1
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CIFS = ROOT.parent / "shared" / "data" / "obelix" / "cifs"


def run(args: argparse.Namespace) -> None:
    """Write one line per disordered CIF: hop values per ordering, percolation per ordering."""
    import torch

    from ase_em.crystals.analyzer import MigrationBarrierAnalyzer
    from ase_em.screening.work import get_predictor, read_structure

    torch.set_num_threads(1)
    done = set()
    if args.out.exists():
        done = {json.loads(line)["file"] for line in args.out.read_text().splitlines() if line.strip()}
    predictor = get_predictor(args.model, 1)
    files = sorted(CIFS.glob("*.cif"))
    with open(args.out, "a") as fh:
        for k, path in enumerate(files, 1):
            if path.name in done:
                continue
            rec: dict = {"file": path.name}
            try:
                structure = read_structure(str(path))
                if structure.is_ordered:
                    rec["ordered"] = True
                else:
                    net = MigrationBarrierAnalyzer(structure, "Li", predictor=predictor,
                                                   n_orderings=args.orderings, seed=0).disorder
                    rec["hops"] = [list(h.values) for h in net.hops]
                    rec["per_ordering_1d"] = [p[1] for p in net.per_ordering]
            except Exception as exc:  # noqa: BLE001 - a CIF the network refuses is kept as such
                rec["error"] = f"{type(exc).__name__}: {exc}"[:300]
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            print(f"[{k}/{len(files)}] {path.name} {'error' if 'error' in rec else 'ok'}", flush=True)


def report(args: argparse.Namespace) -> None:
    """Print, per tolerance, the CIFs that settle at two orderings and the move of their 1D barrier."""
    from ase_em.crystals.disordered import barriers_settled

    recs = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    runs = [r for r in recs if "hops" in r and all(len(v) >= 3 for v in r["hops"])]
    print(f"disordered CIFs with {args.orderings} orderings for every hop: {len(runs)} "
          f"(ordered {sum('ordered' in r for r in recs)}, refused {sum('error' in r for r in recs)})")
    print("| tolerance (eV) | stop at 2 | 1D barrier move, mean (eV) | largest (eV) |")
    print("| --- | --- | --- | --- |")
    for tol in args.tolerance:
        moves, stop = [], 0
        for r in runs:
            if not barriers_settled([v[:2] for v in r["hops"]], tol):
                continue
            stop += 1
            p = np.array([math.inf if x is None else x for x in r["per_ordering_1d"]])
            two, full = float(np.median(p[:2])), float(np.median(p))
            if math.isfinite(two) or math.isfinite(full):
                moves.append(abs(two - full))
        mean = f"{np.mean(moves):.3f}" if moves else "-"
        top = f"{np.max(moves):.3f}" if moves else "-"
        print(f"| {tol:g} | {stop} of {len(runs)} | {mean} | {top} |")


def main() -> None:
    """Run or report (module docstring)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True, help="JSONL of the runs (appended; resumable)")
    parser.add_argument("--orderings", type=int, default=3)
    parser.add_argument("--model", default="alignn-em-v1-distilled")
    parser.add_argument("--report", action="store_true", help="only report the file")
    parser.add_argument("--tolerance", type=float, nargs="*", default=[0.025, 0.05, 0.1])
    args = parser.parse_args()
    if not args.report:
        run(args)
    report(args)


if __name__ == "__main__":
    main()
