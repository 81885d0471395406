"""CPU time of a screen by stage, for this tree or another checkout (a benchmark, not a test).

Runs :func:`ase_em.screening.work.run_unit` on the first ``--cifs`` OBELiX training CIFs in
one process (one torch thread, ``--orderings`` orderings, Li; once to warm up, then timed)
and splits its CPU time into stages by timing the function that starts each stage (they do
not nest in one another; each is wrapped with a ``time.thread_time`` counter, which costs
microseconds, unlike a profiler):

* model: ``EmEnsemble.forward`` (the network's forward passes);
* graph: ``EmPredictor.graph`` (band + neighbour list + line graph);
* hop checks: ``ase_em.hops.hop._check_plausible``, the checks every ``Hop`` runs when it
  is made (overlaps, anion contacts, the straight path's clearance);
* domain: ``domain_flags`` (descriptor distance to training, grey zone);
* conductivity: ``MigrationBarrierAnalyzer.conductivity`` (the exact solve over barrier draws);
* orderings: ``sample_orderings`` (the disordered structures' orderings), or, in a tree
  that draws them one at a time, ``iter_orderings`` and each draw ("ordering draws");
* everything else (reading, symmetry, pymatgen's hop graph, percolation, bookkeeping).

A stage a tree does not have counts 0. Usage::

    python benchmarks/stage_profile.py --cifs 20                  # this tree
    python benchmarks/stage_profile.py --cifs 20 --tree ../base   # another checkout
    python benchmarks/stage_profile.py --cifs 20 --model alignn-em-v1-distilled
    python benchmarks/stage_profile.py --cifs 20 --model alignn-em-v1-distilled --ordering-tolerance 0.05
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CIFS = ROOT.parent / "shared" / "data" / "obelix" / "cifs"

CHILD = r"""
import functools, glob, importlib, json, sys, time
import torch
torch.set_num_threads(1)
from ase_em.screening.work import get_predictor, run_unit
import ase_em.crystals.analyzer, ase_em.crystals.disordered, ase_em.hops.hop, ase_em.model.model
import ase_em.predictor
TARGETS = {  # stage -> (module, class or None, function)
    "model": ("ase_em.model.model", "EmEnsemble", "forward"),
    "graph": ("ase_em.predictor", "EmPredictor", "graph"),
    "hop checks": ("ase_em.hops.hop", None, "_check_plausible"),
    "domain": ("ase_em.model.domain", None, "domain_flags"),
    "conductivity": ("ase_em.crystals.analyzer", "MigrationBarrierAnalyzer", "conductivity"),
    "orderings": ("ase_em.crystals.disorder", None, "sample_orderings"),
    "ordering draws": ("ase_em.crystals.disorder", None, "iter_orderings"),
}
spent = {stage: 0.0 for stage in TARGETS}
def timed_draws(stage, it):
    while True:  # a generator's work happens at each next(), not when it is made
        t = time.thread_time()
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            spent[stage] += time.thread_time() - t
        yield item
def timed(stage, fn):
    @functools.wraps(fn)
    def run(*a, **k):
        t = time.thread_time()
        try:
            out = fn(*a, **k)
        finally:
            spent[stage] += time.thread_time() - t
        return timed_draws(stage, out) if hasattr(out, "__next__") else out
    return run
for stage, (mod, cls, name) in TARGETS.items():
    try:
        owner = importlib.import_module(mod)
    except ImportError:
        continue
    owner = getattr(owner, cls, None) if cls else owner
    original = getattr(owner, name, None) if owner is not None else None
    if original is None:
        continue
    wrapped = timed(stage, original)
    setattr(owner, name, wrapped)
    if cls is None:  # the modules that imported the function by name call their own reference
        for m in list(sys.modules.values()):
            if getattr(m, "__name__", "").startswith("ase_em") and getattr(m, name, None) is original:
                setattr(m, name, wrapped)
files = sorted(glob.glob(sys.argv[1] + "/*.cif"))[: int(sys.argv[2])]
model = sys.argv[4] if len(sys.argv) > 4 else None
get_predictor(model, 1)
units = [{"source": f, "path": f, "ion": "Li", "sha256": "x"} for f in files]
kwargs = {"n_orderings": int(sys.argv[3]), "model": model}
if len(sys.argv) > 5 and sys.argv[5] != "off":
    kwargs["ordering_tolerance"] = float(sys.argv[5])
for u in units[:2]:
    run_unit(u, **kwargs)  # warm-up: lazy imports, caches
for stage in spent:
    spent[stage] = 0.0
t = time.thread_time()
rows = [run_unit(u, **kwargs)["key_value_pairs"] for u in units]
total = time.thread_time() - t
json.dump({"total_cpu_s": total, "stages": spent, "n": len(files),
           "em_1d": [r.get("em_1d") for r in rows]}, sys.stdout)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", type=Path, default=ROOT, help="checkout whose ase_em is profiled")
    parser.add_argument("--cifs", type=int, default=20)
    parser.add_argument("--orderings", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--model", default=None, help="model name or directory (default: the tree's default)")
    parser.add_argument("--ordering-tolerance", default="off",
                        help="eV: orderings drawn until the barriers settle (a tree that has the option); "
                             "default off: all --orderings")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(args.tree.resolve()), OMP_NUM_THREADS="1")
    if args.ordering_tolerance != "off" and not args.model:
        parser.error("--ordering-tolerance needs --model (positional arguments of the child)")
    argv = [str(CIFS), str(args.cifs), str(args.orderings), *([args.model] if args.model else []),
            *([args.ordering_tolerance] if args.ordering_tolerance != "off" else [])]
    out = subprocess.run([sys.executable, "-c", CHILD, *argv], cwd=args.tree, env=env, capture_output=True,
                         text=True)
    if out.returncode:
        sys.exit(out.stderr[-3000:])
    res = json.loads(out.stdout)
    stages, total = res["stages"], res["total_cpu_s"]
    stages["everything else"] = total - sum(stages.values())
    print(f"tree {args.tree}, model {args.model or 'default'}: {res['n']} CIFs, {args.orderings} orderings; "
          f"CPU {total:.1f} s "
          f"({total / res['n']:.2f} s per structure)")
    print("| stage | CPU s | share |\n| --- | --- | --- |")
    for stage, t in stages.items():
        print(f"| {stage} | {t:.1f} | {t / total:.0%} |")
    if args.json:
        args.json.write_text(json.dumps({"tree": str(args.tree), **res}, indent=1))


if __name__ == "__main__":
    main()
