"""OBELiX: predicted sigma(300 K) from the hop network against measured conductivity.

For each OBELiX training CIF, the hop network of ``MigrationBarrierAnalyzer`` (as
``benchmarks/obelix.py`` builds it: Li, seed 0, ``--orderings`` orderings of a disordered
CIF, empty sites when the occupied ones do not percolate) is turned into a
:class:`ase_em.transport.RateNetwork`; one JSON line per structure is appended to ``--out``
(the run resumes) with the network itself (sites, hops, Em, em_std, carriers), the
percolation barriers and the conductivity at the default settings. ``--report`` recomputes
sigma from the stored networks (cheap: no model) and prints, in markdown:

* Spearman(log10 sigma_pred(300 K), log10 sigma_measured) and the MAE in log10 units, with
  n, on all structures with a prediction (censored "<1E-10" values at their bound) and
  without the censored ones; beside it the Spearman of the percolation barrier (E3D, else
  E2D, else E1D; a good barrier correlates negatively) on the same structures;
* the same inside the families garnets, argyrodites, NASICON, LGPS and oxides
  (``Family`` of ``train.csv``);
* the effect of the attempt frequency (nu 1e12, 1e13, 1e14 Hz) on the MAE.

Structures whose hops do not percolate get no sigma and are counted apart. Conductivity
never trains the model: it only measures the method.

The structures are visited fastest first (by the time ``docs/study/obelix_ase_em.jsonl``
recorded for them), so a run cut short covers the most structures, biased to small cells;
the report says how many were covered. Run in the background, one thread::

    export OMP_NUM_THREADS=1
    timeout 5400 python benchmarks/conductivity.py --out docs/study/obelix_conductivity.jsonl
    python benchmarks/conductivity.py --report docs/study/obelix_conductivity.jsonl
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import signal
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from obelix import (  # noqa: E402 - the sibling benchmark's readers
    DEFAULT_CIFS,
    DEFAULT_CSV,
    StructureTimeout,
    _alarm,
    conductivities,
    percolation_choice,
)

FAMILIES = {"garnets": ("garnet", "garnet-like"), "argyrodites": ("argyrodites", "argyrodite"),
            "NASICON": ("NASICON",), "LGPS": ("LGPS",), "oxides": ("oxides",)}
PREVIOUS = "docs/study/obelix_ase_em.jsonl"


def families(csv_path: str) -> dict[str, str]:
    """OBELiX ID -> family name of :data:`FAMILIES` (others left out)."""
    out = {}
    with open(csv_path, newline="") as fh:
        for row in csv.DictReader(fh):
            for name, members in FAMILIES.items():
                if row["Family"].strip() in members:
                    out[row["ID"]] = name
    return out


def network_record(net) -> dict:
    """The RateNetwork as JSON (rounded: 1e-5 in fractions, 1e-4 eV)."""
    return {
        "lattice": np.round(net.lattice, 5).tolist(),
        "frac_coords": np.round(net.frac_coords, 5).tolist(),
        "u": net.u.tolist(), "v": net.v.tolist(), "image": net.image.tolist(),
        "em": np.round(net.em_forward, 4).tolist(),
        "em_std": [None if not math.isfinite(s) else round(float(s), 4) for s in net.em_std],
        "group": net.group.tolist(),
        "carriers_per_cell": round(float(net.carriers_per_cell), 5),
        "charge": int(net.charge),
    }


def network_from_record(rec: dict):
    """The RateNetwork of :func:`network_record`."""
    from ase_em.transport import RateNetwork

    return RateNetwork(lattice=rec["lattice"], frac_coords=rec["frac_coords"], u=rec["u"], v=rec["v"],
                       image=rec["image"], em_forward=rec["em"], em_std=rec["em_std"], group=rec["group"],
                       carriers_per_cell=rec["carriers_per_cell"], charge=rec["charge"])


def run_one(path: Path, predictor, args) -> dict:
    """Network, percolation and conductivity (300 K) of one CIF."""
    from ase_em.crystals.analyzer import MigrationBarrierAnalyzer
    from ase_em.crystals.disordered import read_average_structure

    structure = read_average_structure(path)
    an = MigrationBarrierAnalyzer(structure, "Li", predictor=predictor, n_orderings=args.orderings, seed=0)
    rec = {"disordered": an.disorder is not None,
           "percolation": {f"{d}D": e for d, e in an.percolation.items()}}
    net = an.rate_network()
    res = an.conductivity([300.0], n_samples=args.samples, seed=0)
    rec.update(network=network_record(net), n_sites=net.n_sites, n_hops=len(net.u),
               log10_sigma=res.to_dict()["log10_sigma"][0],
               log10_sigma_std=None if res.log10_sigma_std is None else res.to_dict()["log10_sigma_std"][0],
               activation_energy=res.activation_energy, dimension=res.dimension)
    return rec


def run(args) -> None:
    """Append one record per structure not yet in ``args.out``, fastest first."""
    from ase_em.errors import AseEmError

    out = Path(args.out)
    latest = {}
    if out.exists():
        for line in out.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                latest[r["id"]] = r["status"]
    done = {i for i, st in latest.items() if st != "error"}  # errors run again (after a fix)
    seconds = {}
    if Path(PREVIOUS).exists():
        for line in Path(PREVIOUS).read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                seconds[r["id"]] = r["seconds"]
    cifs = sorted(Path(args.cifs).glob("*.cif"), key=lambda p: (seconds.get(p.stem, math.inf), p.stem))
    todo = [p for p in cifs if p.stem not in done][: args.limit]
    print(f"{len(done)} done, {len(todo)} to do -> {out}", flush=True)
    import torch

    from ase_em.predictor import EmPredictor

    torch.set_num_threads(1)
    predictor = EmPredictor.from_pretrained(args.model)
    signal.signal(signal.SIGALRM, _alarm)
    for n, path in enumerate(todo, 1):
        t0 = time.perf_counter()
        rec = {"id": path.stem}
        signal.alarm(args.timeout)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rec.update(status="ok", **run_one(path, predictor, args))
        except StructureTimeout:
            rec.update(status="timeout", message=f"over {args.timeout} s")
        except AseEmError as exc:
            rec.update(status="refused", message=str(exc).splitlines()[0][:300])
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, the run goes on
            rec.update(status="error", message=f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        finally:
            signal.alarm(0)
        rec["seconds"] = round(time.perf_counter() - t0, 2)
        with out.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        print(f"[{n}/{len(todo)}] {path.stem} {rec['status']} {rec.get('log10_sigma')} {rec['seconds']} s "
              f"{rec.get('message', '')}", flush=True)


def _stats(pred: list[float], meas: list[float]) -> tuple[float, float, int]:
    """Spearman, MAE (log10 units) and n."""
    from scipy.stats import spearmanr

    n = len(pred)
    if n < 3:
        return math.nan, math.nan, n
    return (float(spearmanr(pred, meas)[0]), float(np.mean(np.abs(np.subtract(pred, meas)))), n)


def read_records(path: str | Path) -> dict[str, dict]:
    """id -> record of a results file (the last record of an id wins, as on resume)."""
    recs = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            recs[r["id"]] = r
    return recs


def predicted_rows(recs: dict[str, dict], sigma: dict, samples: int) -> tuple[list[tuple], int]:
    """Rows (id, log10 sigma pred at nu 1e12/1e13/1e14, measured, censored, percolation
    barrier, log10_sigma_std) of the percolating structures with a measured conductivity,
    and the number that do not percolate."""
    from ase_em.transport import conductivity

    rows, no_perc = [], 0
    for i, r in recs.items():
        if r["status"] != "ok" or i not in sigma:
            continue
        barrier, _ = percolation_choice(r["percolation"])
        net = network_from_record(r["network"])
        preds = [conductivity(net, 300.0, n_samples=0, attempt_frequency=nu).log10_sigma[0]
                 for nu in (1e12, 1e13, 1e14)]
        if not math.isfinite(preds[1]) or barrier is None:
            no_perc += 1
            continue
        spread = conductivity(net, 300.0, n_samples=samples, seed=0).log10_sigma_std if samples else None
        rows.append((i, preds, sigma[i][0], sigma[i][1], barrier, None if spread is None else spread[0]))
    return rows, no_perc


def bootstrap_spearman(x: np.ndarray, resamples: int = 2000) -> tuple[float, float, float, float]:
    """Spearman of columns 0 and 1 of ``x`` (n, 3) against column 2, and the 95 % interval of
    their difference (0 - 1) by a paired bootstrap (rows drawn with replacement, seed 0)."""
    from scipy.stats import spearmanr

    rho = [float(spearmanr(x[:, k], x[:, 2])[0]) for k in (0, 1)]
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(resamples):
        s = x[rng.integers(0, len(x), len(x))]
        diffs.append(float(spearmanr(s[:, 0], s[:, 2])[0]) - float(spearmanr(s[:, 1], s[:, 2])[0]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return rho[0], rho[1], float(lo), float(hi)


def paired_spearman(rows: list[tuple], other: list[tuple], resamples: int = 2000) -> str:
    """Spearman(log10 sigma_pred, measured) of two runs on their common structures, and the
    paired bootstrap (structures drawn with replacement, seed 0) of the difference."""
    b = {r[0]: r for r in other}
    common = [(r, b[r[0]]) for r in rows if r[0] in b]
    x = np.array([[r[1][1], o[1][1], r[2]] for r, o in common])
    rho0, rho1, lo, hi = bootstrap_spearman(x, resamples)
    rho = [rho0, rho1]
    return (f"paired on {len(x)} structures: Spearman(log10 sigma_pred, measured) this run {rho[0]:.3f}, "
            f"the other {rho[1]:.3f}; difference {rho[0] - rho[1]:+.3f} (95 % bootstrap interval "
            f"{lo:+.3f} to {hi:+.3f}, {resamples} resamples)")


def report(path: str, csv_path: str, args) -> None:
    """Print the tables of the module docstring (markdown)."""
    from scipy.stats import spearmanr

    sigma = conductivities(csv_path)
    family = families(csv_path)
    recs = read_records(path)
    status = [r["status"] for r in recs.values()]
    print(f"structures run: {len(recs)} of {len(list(Path(DEFAULT_CIFS).glob('*.cif')))} CIFs; "
          + ", ".join(f"{s} {status.count(s)}" for s in sorted(set(status))))
    rows, no_perc = predicted_rows(recs, sigma, args.samples)
    print(f"with a measured conductivity and a percolating network: {len(rows)}; "
          f"not percolating: {no_perc}\n")
    print("| set | n | Spearman(log10 sigma_pred, measured) | MAE (log10 S/cm) | "
          "Spearman(percolation barrier, measured) |")
    print("| --- | --- | --- | --- | --- |")

    def line(name, sel):
        rho, mae, n = _stats([r[1][1] for r in sel], [r[2] for r in sel])
        rho_b = float(spearmanr([r[4] for r in sel], [r[2] for r in sel])[0]) if n >= 3 else math.nan
        print(f"| {name} | {n} | {rho:.2f} | {mae:.2f} | {rho_b:.2f} |")

    line("all (censored at their bound)", rows)
    line("without censored", [r for r in rows if not r[3]])
    for fam in FAMILIES:
        line(f"{fam} (all)", [r for r in rows if family.get(r[0]) == fam])
    for fam in FAMILIES:
        line(f"{fam} (without censored)", [r for r in rows if family.get(r[0]) == fam and not r[3]])
    if Path(PREVIOUS).exists():  # the earlier percolation run (benchmarks/obelix.py) on the same structures
        prev = {}
        for text in Path(PREVIOUS).read_text().splitlines():
            if text.strip():
                r = json.loads(text)
                prev[r["id"]] = r.get("barrier")
        same = [r for r in rows if prev.get(r[0]) is not None]
        if len(same) >= 3:
            rho = float(spearmanr([prev[r[0]] for r in same], [r[2] for r in same])[0])
            rho_sigma = float(spearmanr([r[1][1] for r in same], [r[2] for r in same])[0])
            print(f"\n{PREVIOUS} on the same structures (n {len(same)}): Spearman(percolation barrier, "
                  f"measured) {rho:.2f}; this run's sigma on them: {rho_sigma:.2f}")
    print("\n| nu (Hz) | MAE all | mean(pred - measured) all |")
    print("| --- | --- | --- |")
    for k, nu in enumerate((1e12, 1e13, 1e14)):
        err = np.array([r[1][k] - r[2] for r in rows])
        print(f"| {nu:.0e} | {np.mean(np.abs(err)):.2f} | {np.mean(err):+.2f} |")
    stds = [r[5] for r in rows if r[5] is not None]
    if stds:
        print(f"\nlog10_sigma_std (300 K, {args.samples} draws at nu 1e13): median {np.median(stds):.2f}, "
              f"90th percentile {np.percentile(stds, 90):.2f}")
    if args.paired:
        other, _ = predicted_rows(read_records(args.paired), sigma, 0)
        print(f"\nagainst {Path(args.paired).name}, " + paired_spearman(rows, other))


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; run or report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cifs", default=DEFAULT_CIFS)
    ap.add_argument("--csv", default=DEFAULT_CSV)
    ap.add_argument("--out", default="obelix_conductivity.jsonl", help="JSONL results (appended; resumes)")
    ap.add_argument("--timeout", type=int, default=45, help="seconds per structure")
    ap.add_argument("--orderings", type=int, default=3, help="orderings per disordered structure")
    ap.add_argument("--samples", type=int, default=100, help="barrier draws for log10_sigma_std")
    ap.add_argument("--limit", type=int, default=None, help="at most this many new structures")
    ap.add_argument("--model", default=None, help="model name or directory (default: the shipped default)")
    ap.add_argument("--report", default=None, help="results file to summarise")
    ap.add_argument("--paired", default=None,
                    help="with --report: another results file on the same CIFs (another model); "
                         "the paired Spearman difference with a bootstrap interval")
    args = ap.parse_args(argv)
    if args.report:
        report(args.report, args.csv, args)
    else:
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
