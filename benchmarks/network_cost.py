"""CPU cost of the hop network (ase-em) beside BVlain's bond-valence percolation, in one run.

Usage::

    python benchmarks/network_cost.py                      # LiFePO4 and LiCoO2 from examples/
    python benchmarks/network_cost.py A.cif B.cif --repeats 3 --out cost.json

Each tool runs in fresh Python processes, one CPU thread (``OMP_NUM_THREADS=1``, torch 1
thread), on the same structures, and reports CPU seconds (user + system, ``getrusage``):

* start-up: imports (torch, alignn, pymatgen-analysis-diffusion / bvlain, pandas, ...) and,
  for ase-em, loading and verifying the model;
* per structure, each structure twice in the same process ("first" pays lazy imports and
  warm-up, "again" is what every further structure of a screening run costs):
  ase-em: ``graph`` = read + primitive cell + symmetry + hop grouping
  (:func:`ase_em.crystals.hop_graph.build_migration_graph`), ``bands`` = the vacancy
  supercell of each unique hop, ``model`` = band graphs + ensemble forward passes,
  ``percolation``; BVlain: read + ``bvse_distribution`` (grid, default resolution 0.2 A) and
  ``percolation_barriers``;
* one-shot: the whole command as a user runs it once (``ase-em network FILE --ion Li
  --threads 1`` against ``Lain().read_file / bvse_distribution / percolation_barriers``).

The minimum over ``--repeats`` processes is reported (the machine is shared; noise only adds
time). BVlain is not a dependency of ase-em: ``pip install bvlain`` to run this.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = [ROOT / "examples" / "structures" / "LiFePO4.cif", ROOT / "examples" / "structures" / "LiCoO2.cif"]

ASE_EM = r'''
import json, resource, sys
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
t = cpu()
import torch; torch.set_num_threads(1)
from ase_em.predictor import EmPredictor
from ase_em.crystals.structure import to_structure
from ase_em.hops.migration_hop import hop_from_migration_hop
from ase_em.crystals.hop_graph import build_migration_graph
from ase_em.crystals.analyzer import graph_percolation_barriers
predictor = EmPredictor.from_pretrained()
out = {"startup": cpu() - t, "runs": []}
for path in sys.argv[1:]:
    for _ in range(2):
        t0 = cpu()
        mg = build_migration_graph(to_structure(path), "Li", 5.0)
        t1 = cpu()
        hops = [hop_from_migration_hop(d["hop"]) for d in mg.unique_hops.values()]
        t2 = cpu()
        results = predictor.predict(hops)
        t3 = cpu()
        for d, r in zip(mg.unique_hops.values(), results):
            mg.add_data_to_similar_edges(d["hop_label"], {"em": r.em, "em_flags": list(r.flags)})
        perc = graph_percolation_barriers(mg, include_flagged=True)
        t4 = cpu()
        out["runs"].append({"file": path, "graph": t1 - t0, "bands": t2 - t1, "model": t3 - t2,
                            "percolation": t4 - t3, "hops": len(hops),
                            "atoms_per_band": [len(h.host_symbols) + 1 for h in hops],
                            "result": {str(k): v for k, v in perc.items()}})
print(json.dumps(out))
'''

BVLAIN = r'''
import json, resource, sys
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
t = cpu()
from bvlain import Lain
out = {"startup": cpu() - t, "runs": []}
for path in sys.argv[1:]:
    for _ in range(2):
        t0 = cpu()
        calc = Lain(verbose=False)
        calc.read_file(path)
        calc.bvse_distribution(mobile_ion="Li1+")
        t1 = cpu()
        e = calc.percolation_barriers(encut=20.0)
        t2 = cpu()
        out["runs"].append({"file": path, "bvse": t1 - t0, "percolation": t2 - t1,
                            "result": {k: float(v) for k, v in e.items()}})
print(json.dumps(out))
'''

ONE_SHOT_BVLAIN = (
    "import sys; from bvlain import Lain; c = Lain(verbose=False); c.read_file(sys.argv[1]); "
    "c.bvse_distribution(mobile_ion='Li1+'); print(c.percolation_barriers(encut=20.0))"
)


def child_cpu(cmd: list[str], env: dict) -> tuple[float, str]:
    """CPU seconds (user + system) of a child process, and its standard output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, timeout=900)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done.stdout


def main(argv: list[str] | None = None) -> int:
    """Run both tools on the structures; print a Markdown table; optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("structures", nargs="*", default=[str(p) for p in DEFAULT])
    parser.add_argument("--repeats", type=int, default=3, help="processes per measurement (minimum kept)")
    parser.add_argument("--out", default=None, help="write all measurements to this JSON file")
    args = parser.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    paths = [str(Path(p).resolve()) for p in args.structures]
    record: dict = {"structures": paths, "phases": {}, "one_shot": {}}
    for tool, code in (("ase-em", ASE_EM), ("bvlain", BVLAIN)):
        runs = [json.loads(child_cpu([sys.executable, "-c", code, *paths], env)[1].splitlines()[-1])
                for _ in range(args.repeats)]
        record["phases"][tool] = runs
    ase_em_cli = str(Path(sys.executable).with_name("ase-em"))
    for path in paths:
        record["one_shot"][path] = {
            "ase-em": min(child_cpu([ase_em_cli, "network", path, "--ion", "Li", "--threads", "1"], env)[0]
                          for _ in range(args.repeats)),
            "bvlain": min(child_cpu([sys.executable, "-c", ONE_SHOT_BVLAIN, path], env)[0]
                          for _ in range(args.repeats)),
        }
    print(report(record))
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=1))
    return 0


def report(record: dict) -> str:
    """The measurements as Markdown (minimum over the repeated processes)."""
    ase, bv = record["phases"]["ase-em"], record["phases"]["bvlain"]
    lines = [
        f"start-up CPU s: ase-em {min(r['startup'] for r in ase):.2f}, "
        f"BVlain {min(r['startup'] for r in bv):.2f}",
        "",
        "| structure | call | ase-em graph | ase-em bands | ase-em model | ase-em percolation | ase-em total "
        "| BVlain grid | BVlain percolation | BVlain total |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for k, path in enumerate(record["structures"]):
        for j, call in enumerate(("first", "again")):
            i = 2 * k + j
            phases = ("graph", "bands", "model", "percolation")
            a = {key: min(r["runs"][i][key] for r in ase) for key in phases}
            b = {key: min(r["runs"][i][key] for r in bv) for key in ("bvse", "percolation")}
            lines.append(
                f"| {Path(path).stem} | {call} | {a['graph']:.2f} | {a['bands']:.2f} | {a['model']:.2f} | "
                f"{a['percolation']:.3f} | **{sum(a.values()):.2f}** | {b['bvse']:.2f} | "
                f"{b['percolation']:.2f} | "
                f"**{sum(b.values()):.2f}** |"
            )
    lines += ["", "| structure | one-shot CPU s: ase-em network | BVlain | ratio |",
              "| --- | --- | --- | --- |"]
    for path, cost in record["one_shot"].items():
        lines.append(f"| {Path(path).stem} | {cost['ase-em']:.2f} | {cost['bvlain']:.2f} | "
                     f"{cost['ase-em'] / cost['bvlain']:.2f} |")
    first = ase[0]["runs"]
    lines += ["", "ase-em hops and bands: " + "; ".join(
        f"{Path(r['file']).stem} {r['hops']} hops of {r['atoms_per_band']} atoms, percolation {r['result']}"
        for r in first[::2])]
    lines += ["BVlain percolation energies (eV): " + "; ".join(
        f"{Path(r['file']).stem} {r['result']}" for r in bv[0]["runs"][::2])]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
