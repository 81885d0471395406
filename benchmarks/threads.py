"""Time of one forward pass with 1 and 2 torch threads, on quiet and on busy cores.

Usage:
    python benchmarks/threads.py [--repeats 15] [--threads 1 2] [--busy 0 2]

For each number of busy-loop processes (``--busy``: pure-Python spinning processes, one per
core to load) and each thread count, a fresh child process loads the shipped model, builds
the graph of examples/LiFePO4 once, runs two warm-up forwards and then times ``--repeats``
forwards of the 5-member ensemble; the median and the slowest are printed. Run it with
nothing else of yours running, and repeat it: the machine's other users add noise.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time, torch
torch.set_num_threads({threads})
from ase_em.hops.hop import Hop
from ase_em.predictor import EmPredictor
from ase_em.model.graph import collate
predictor = EmPredictor.from_pretrained(None)
hop = Hop.from_endpoints({initial!r}, {final!r})
graph = predictor.graph(hop)
model = predictor.model.ensemble
model.eval()
times = []
with torch.no_grad():
    for k in range({repeats} + 2):
        g, lg = collate([graph])
        t = time.perf_counter()
        model(g, lg)
        times.append(time.perf_counter() - t)
print(json.dumps(times[2:]))
"""


def spin(stop_at: float) -> None:
    """Keep one core busy until ``stop_at`` (time.time())."""
    x = 0
    while time.time() < stop_at:
        x += 1


def run(threads: int, repeats: int) -> list[float]:
    code = CHILD.format(
        threads=threads,
        repeats=repeats,
        initial=str(ROOT / "examples/LiFePO4/initial.vasp"),
        final=str(ROOT / "examples/LiFePO4/final.vasp"),
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 2], help="busy-loop processes")
    args = parser.parse_args()
    print("busy_processes threads median_s max_s n")
    for busy in args.busy:
        for threads in args.threads:
            spinners = [mp.Process(target=spin, args=(time.time() + 300,)) for _ in range(busy)]
            for p in spinners:
                p.start()
            try:
                times = run(threads, args.repeats)
            finally:
                for p in spinners:
                    p.terminate()
                    p.join()
            median = statistics.median(times)
            print(f"{busy} {threads} {median:.3f} {max(times):.3f} {len(times)}", flush=True)


if __name__ == "__main__":
    main()
