"""Building the hop graph: pymatgen's ``MigrationGraph.with_distance`` against ase-em's builder.

Usage::

    python benchmarks/network_graph.py examples/structures/LiFePO4.cif examples/structures/LiCoO2.cif \
        ../shared/cases/network-large-supercell-hang/LFP_1008.cif

CPU seconds (``time.process_time``) of :func:`ase_em.crystals.hop_graph.build_migration_graph`
(primitive cell, symmetry once, hops grouped in about linear time) and of
``MigrationGraph.with_distance`` on the cell as given (stopped after ``--cap`` s wall), hops
up to 5 A, symprec 0.1.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import warnings

from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph
from pymatgen.core import Structure

from ase_em.crystals.hop_graph import build_migration_graph


def main(argv: list[str] | None = None) -> int:
    """Time both builders on each structure file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("structures", nargs="+")
    parser.add_argument("--cap", type=int, default=300, help="wall seconds allowed to with_distance")
    args = parser.parse_args(argv)

    def stop(signum, frame):  # noqa: ARG001
        raise TimeoutError

    signal.signal(signal.SIGALRM, stop)
    for path in args.structures:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CIF rounding notices
            structure = Structure.from_file(path)
        t = time.process_time()
        new = build_migration_graph(structure, "Li", 5.0)
        t_new = time.process_time() - t
        signal.alarm(args.cap)
        t = time.process_time()
        try:
            MigrationGraph.with_distance(structure, "Li", 5.0, symprec=0.1)
            t_old = f"{time.process_time() - t:.2f} s"
        except TimeoutError:
            t_old = f"stopped after {args.cap} s wall ({time.process_time() - t:.0f} s CPU)"
        finally:
            signal.alarm(0)
        print(f"{path}: {len(structure)} atoms; with_distance {t_old}; build_migration_graph {t_new:.2f} s "
              f"({len(new.structure)}-atom cell, {len(new.unique_hops)} unique hops)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
