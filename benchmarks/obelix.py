"""OBELiX: percolation barriers of real (mostly disordered) Li conductors, ranked against conductivity.

Runs ``ase-em``'s hop network (or BVlain, the bond-valence percolation tool, on the same
structures) over the OBELiX training CIFs and appends one JSON line per structure to a
results file, so an interrupted run resumes where it stopped. Then ``--report`` prints:

* coverage: a barrier / a clear refusal (an ``AseEmError``: no Li in the CIF, a cap) / an
  error (any other exception) / a time-out (``--timeout`` seconds per structure);
* time per structure (median, 90th percentile);
* the Spearman rank correlation between the predicted percolation barrier and the
  measured log10 room-temperature conductivity (``train.csv``), with n.

The percolation barrier compared is E3D when the hops percolate in 3D, else E2D, else E1D
(the lowest barrier that carries the ion through the crystal in the highest dimension
reached; structures that percolate in no dimension are left out of the correlation and
counted). Censored conductivities ("<1E-10") enter at their bound. A good barrier gives a
negative correlation (higher barrier, lower conductivity). Conductivity only measures the
method here; it never trains the model.

ase-em: every CIF goes through ``MigrationBarrierAnalyzer``, as ``ase-em network`` does
(disordered ones: ``--orderings`` orderings, seed 0; candidate empty sites added when the
occupied sites alone do not percolate). BVlain (``pip install
bvlain``; not a dependency of ase-em) reads ordered structures only: it gets the CIF when it
is ordered, else the first ordering drawn by ``ase_em.crystals.disorder.sample_orderings`` in the
smallest supercell at least ``--bv-width`` A wide, with oxidation states from pymatgen's
BVAnalyzer (BVlain's own check).

Structures are visited in a seeded random order, so a run stopped early covers a random
subset. Run each tool in the background, one thread::

    export OMP_NUM_THREADS=1
    timeout 6000 python benchmarks/obelix.py --tool ase-em --out docs/study/obelix_ase_em.jsonl
    timeout 6000 python benchmarks/obelix.py --tool bvlain --out docs/study/obelix_bvlain.jsonl
    python benchmarks/obelix.py --report docs/study/obelix_ase_em.jsonl docs/study/obelix_bvlain.jsonl

After a change to the method, ``--redo "no percolation" timeout`` runs again only the
structures last recorded with those statuses (the report reads each structure's latest line).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

DEFAULT_CIFS = "../shared/data/obelix/cifs"
DEFAULT_CSV = "../shared/data/obelix/train.csv"


class StructureTimeout(Exception):
    """The per-structure time limit passed."""



def _where(tb: str) -> str:
    """The failing frame of a traceback, its path cut to the package (no paths of this machine)."""
    line = tb.splitlines()[-3].strip()
    return re.sub(r'File "[^"]*/(site-packages|ase_em)/', r'File "\1/', line)[:200]

def _alarm(signum, frame):  # noqa: ARG001
    raise StructureTimeout


def percolation_choice(perc: dict[str, float | None]) -> tuple[float | None, str | None]:
    """E3D if present, else E2D, else E1D (eV), with its dimension."""
    for d in ("3D", "2D", "1D"):
        if perc.get(d) is not None and math.isfinite(perc[d]):
            return float(perc[d]), d
    return None, None


def run_ase_em(path: Path, predictor, args) -> dict:
    """ase-em on one CIF, as ``ase-em network``: percolation barriers (eV) and the disorder summary."""
    from ase_em.crystals.analyzer import MigrationBarrierAnalyzer
    from ase_em.crystals.disordered import read_average_structure

    structure = read_average_structure(path)
    an = MigrationBarrierAnalyzer(structure, "Li", predictor=predictor, n_orderings=args.orderings, seed=0)
    rec = {
        "disordered": an.disorder is not None,
        "percolation": {f"{d}D": e for d, e in an.percolation.items()},
        "n_hops": len(an.hops),
        "empty_sites": an.has_empty_sites,
        "empty_sites_fallback": an.empty_sites_note is not None,
    }
    if an.disorder is not None:
        net = an.disorder
        rec.update(
            percolation_spread={f"{d}D": e for d, e in net.percolation_spread.items()},
            n_orderings=net.n_orderings, missing_atoms=net.missing, n_candidate_sites=net.n_sites,
        )
    return rec


def run_bvlain(path: Path, args) -> dict:
    """BVlain on one CIF (or on one ordering of it): percolation barriers (eV)."""
    from bvlain import Lain
    from pymatgen.io.ase import AseAtomsAdaptor

    from ase_em.crystals.disorder import sample_orderings
    from ase_em.crystals.disordered import read_average_structure
    from ase_em.hops.migration_hop import supercell_matrix

    structure = read_average_structure(path)
    disordered = not structure.is_ordered
    if disordered:
        prim = structure.get_primitive_structure()
        cell = supercell_matrix(prim.lattice, args.bv_width)
        structure = sample_orderings(prim, cell, n=1, seed=0)[0].structure
    calc = Lain(verbose=False)
    calc.read_atoms(AseAtomsAdaptor.get_atoms(structure))
    calc.bvse_distribution(mobile_ion="Li1+")
    out = calc.percolation_barriers()
    perc = {d: float(out[f"E_{d}"]) for d in ("1D", "2D", "3D")}
    # BVlain reports no percolation in a dimension as a barrier at its energy cut-off
    perc = {d: (e if e < args.bv_encut - 1e-6 else None) for d, e in perc.items()}
    return {"disordered": disordered, "percolation": perc, "n_atoms": len(structure)}


def run(args) -> None:
    """Append one record per structure not yet in ``args.out``."""
    from ase_em.errors import AseEmError

    out = Path(args.out)
    done = set()
    if out.exists():
        done = {json.loads(line)["id"] for line in out.read_text().splitlines() if line.strip()}
    cifs = sorted(Path(args.cifs).glob("*.cif"))
    order = np.random.default_rng(0).permutation(len(cifs))
    if args.reverse:  # a second worker from the other end; records are keyed by ID
        order = order[::-1]
    if args.redo:  # run again the structures whose latest record has one of these statuses
        latest = {}
        for line in out.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                latest[r["id"]] = r["status"]
        done -= {i for i, st in latest.items() if st in args.redo}
    todo = [cifs[i] for i in order if cifs[i].stem not in done][: args.limit]
    print(f"{len(done)} done, {len(todo)} to do -> {out}", flush=True)
    predictor = None
    if args.tool == "ase-em":
        import torch

        from ase_em.predictor import EmPredictor

        torch.set_num_threads(1)
        predictor = EmPredictor.from_pretrained()
    signal.signal(signal.SIGALRM, _alarm)
    for n, path in enumerate(todo, 1):
        t0 = time.perf_counter()
        rec = {"id": path.stem, "tool": args.tool}
        signal.alarm(args.timeout)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = run_ase_em(path, predictor, args) if args.tool == "ase-em" else run_bvlain(path, args)
            rec.update(status="barrier", **res)
        except StructureTimeout:
            rec.update(status="timeout", message=f"over {args.timeout} s")
        except AseEmError as exc:
            rec.update(status="refused", message=str(exc).splitlines()[0])
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, the run goes on
            rec.update(status="error", message=f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
                       where=_where(traceback.format_exc()))
        finally:
            signal.alarm(0)
        rec["seconds"] = round(time.perf_counter() - t0, 2)
        if rec["status"] == "barrier":
            e, d = percolation_choice(rec["percolation"])
            if e is None:
                rec["status"] = "no percolation"
            rec["barrier"], rec["dimension"] = e, d
        with out.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        print(f"[{n}/{len(todo)}] {path.stem} {rec['status']} {rec.get('barrier')} {rec['seconds']} s "
              f"{rec.get('message', '')}", flush=True)


def conductivities(csv_path: str) -> dict[str, tuple[float, bool]]:
    """log10 conductivity (S/cm) by OBELiX ID, and whether it is censored ("<1E-10")."""
    out = {}
    with open(csv_path, newline="") as fh:
        for row in csv.DictReader(fh):
            raw = row["Ionic conductivity (S cm-1)"].strip()
            censored = raw.startswith("<")
            try:
                out[row["ID"]] = (math.log10(float(raw.lstrip("<"))), censored)
            except ValueError:
                continue
    return out


def _spearman(recs: dict, ids: list[str], sigma: dict) -> float:
    """Spearman rank correlation of the barriers of ``ids`` with their log10 conductivity."""
    from scipy.stats import spearmanr

    if len(ids) < 3:
        return float("nan")
    return float(spearmanr([recs[i]["barrier"] for i in ids], [sigma[i][0] for i in ids])[0])


def report(paths: list[str], csv_path: str) -> None:
    """Print coverage, timing and Spearman for each results file (markdown)."""

    sigma = conductivities(csv_path)
    runs = {}
    for p in paths:
        recs = {}
        for line in Path(p).read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                recs[r["id"]] = r
        runs[p] = recs
    common = set.intersection(*(set(r) for r in runs.values()))
    both = [i for i in common if all(runs[p][i].get("barrier") is not None for p in paths) and i in sigma]
    print("| tool | structures | barrier | no percolation | refused | error | time-out | "
          "s/structure median (p90) | Spearman (n) | Spearman on common (n) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for p, recs in runs.items():
        n = len(recs)
        status = [r["status"] for r in recs.values()]
        secs = np.array([r["seconds"] for r in recs.values()])
        ids = [i for i, r in recs.items() if r.get("barrier") is not None and i in sigma]
        rho = _spearman(recs, ids, sigma)
        rho_c = _spearman(recs, both, sigma)
        tool = next(iter(recs.values()))["tool"] if recs else p

        def c(s, status=status, n=n):
            k = status.count(s)
            return f"{k} ({100 * k / max(n, 1):.0f} %)"

        print(f"| {tool} | {n} | {c('barrier')} | {c('no percolation')} | {c('refused')} | {c('error')} | "
              f"{c('timeout')} | {np.median(secs):.1f} ({np.percentile(secs, 90):.1f}) | "
              f"{rho:.2f} ({len(ids)}) | {rho_c:.2f} ({len(both)}) |")
    for p, recs in runs.items():
        msgs = {}
        for r in recs.values():
            if r["status"] not in ("barrier",):
                key = (r["status"], (r.get("message") or "")[:90])
                msgs.setdefault(key, []).append(r["id"])
        print(f"\n{p}:")
        for (s, m), ids in sorted(msgs.items(), key=lambda kv: -len(kv[1])):
            print(f"  {s} x{len(ids)}: {m} [{', '.join(sorted(ids)[:6])}]")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; run one tool or report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tool", choices=["ase-em", "bvlain"], default="ase-em")
    ap.add_argument("--cifs", default=DEFAULT_CIFS)
    ap.add_argument("--csv", default=DEFAULT_CSV)
    ap.add_argument("--out", default="obelix_results.jsonl", help="JSONL results (appended; the run resumes)")
    ap.add_argument("--timeout", type=int, default=180, help="seconds per structure")
    ap.add_argument("--orderings", type=int, default=3, help="orderings per disordered structure (ase-em)")
    ap.add_argument("--bv-width", type=float, default=7.0, help="smallest width (A) of BVlain's ordering")
    ap.add_argument("--bv-encut", type=float, default=10.0, help="BVlain's energy cut-off (eV)")
    ap.add_argument("--limit", type=int, default=None, help="at most this many new structures")
    ap.add_argument("--redo", nargs="+", default=None, metavar="STATUS",
                    help="run again the structures last recorded with this status (e.g. timeout)")
    ap.add_argument("--reverse", action="store_true", help="visit the structures in reverse order")
    ap.add_argument("--report", nargs="+", default=None, help="results files to summarise")
    args = ap.parse_args(argv)
    if args.report:
        report(args.report, args.csv)
    else:
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
