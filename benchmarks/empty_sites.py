"""Candidate empty sites on LiCoO2, a Li3 garnet and a NASICON: what is found, and its cost.

Usage::

    python benchmarks/empty_sites.py              # ase-em's Voronoi nodes (ase_em.crystals.empty_sites)
    python benchmarks/empty_sites.py --defects 60 # also pymatgen-analysis-defects' generator, 60 s cap

The structures are those of ``tests/crystals/test_empty_sites.py`` (published lattice and Wyckoff
data), on their primitive cells. For each candidate orbit: Wyckoff symbol in the
conventional cell, anion shell, nearest occupied ion site. CPU seconds from ``time.process_time``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from ase_em.crystals.empty_sites import find_empty_sites

STRUCTURES = {
    "LiCoO2 (R-3m)": lambda: Structure.from_spacegroup(
        "R-3m", Lattice.hexagonal(2.816, 14.05), ["Li", "Co", "O"], [[0, 0, 0], [0, 0, 0.5], [0, 0, 0.2396]]
    ),
    "Li3Nd3Te2O12 garnet (Ia-3d)": lambda: Structure.from_spacegroup(
        "Ia-3d", Lattice.cubic(12.56253), ["Nd", "Te", "Li", "O"],
        [[0, 0.25, 0.125], [0, 0, 0], [0, 0.25, 0.375], [0.03444544, 0.13414421, 0.96103195]],
    ),
    "LiGe2(PO4)3 NASICON (R-3c)": lambda: Structure.from_spacegroup(
        "R-3c", Lattice.hexagonal(8.27059, 20.4652), ["Li", "Ge", "P", "O", "O"],
        [[0, 0, 0], [0, 0, 0.11800610], [0, 0.28368078, 0.25], [0.02389192, 0.19534225, 0.19190229],
         [0.02415768, 0.84087478, 0.40945714]],
    ),
}


def describe(conventional: Structure, primitive: Structure, sites, ion: str = "Li") -> list[str]:
    """One line per candidate orbit: Wyckoff symbol (conventional cell), O shell, nearest ion."""
    marked = primitive.copy()
    for frac in sites.frac_coords:
        marked.append("Xe", frac)
    conv = SpacegroupAnalyzer(marked, symprec=0.01).get_conventional_standard_structure()
    ss = SpacegroupAnalyzer(conv, symprec=0.01).get_symmetrized_structure()
    lines = []
    for w, group in zip(ss.wyckoff_symbols, ss.equivalent_sites, strict=True):
        if group[0].specie.symbol != "Xe":
            continue
        nb = conv.get_neighbors(group[0], 4.0)
        anions = sorted(n.nn_distance for n in nb if n.specie.symbol == "O" and n.nn_distance < 2.6)
        nearest = min((n.nn_distance for n in nb if n.specie.symbol == ion), default=float("nan"))
        lines.append(f"    {w:>4}: {len(anions)} O at {', '.join(f'{d:.2f}' for d in anions)} A; "
                     f"nearest occupied {ion} {nearest:.2f} A")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Find the candidate sites of each structure and print them with their cost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--defects", type=int, default=0,
                        help="also time pymatgen-analysis-defects' VoronoiInterstitialGenerator, cap in s")
    args = parser.parse_args(argv)
    for name, build in STRUCTURES.items():
        conventional = build()
        primitive = conventional.get_primitive_structure()
        t = time.process_time()
        sites = find_empty_sites(primitive, "Li")
        cost = time.process_time() - t
        print(f"{name}: {len(primitive)}-atom primitive cell, {len(sites)} candidates in "
              f"{len(set(sites.orbit.tolist()))} orbits, {sites.n_recovered} of {sites.n_occupied} occupied "
              f"Li sites recovered, {cost:.2f} s CPU")
        print("\n".join(describe(conventional, primitive, sites)))
        if args.defects:
            print(f"    pymatgen-analysis-defects: {defects_cost(primitive, args.defects)}")
    return 0


def defects_cost(primitive: Structure, cap: int) -> str:
    """CPU time of VoronoiInterstitialGenerator on the Li-free framework, or 'stopped after cap s'."""
    from pymatgen.analysis.defects.generators import VoronoiInterstitialGenerator

    framework = primitive.copy()
    framework.remove_species(["Li"])

    def stop(signum, frame):  # noqa: ARG001
        raise TimeoutError

    signal.signal(signal.SIGALRM, stop)
    signal.alarm(cap)
    t = time.process_time()
    try:
        found = list(VoronoiInterstitialGenerator()._get_candidate_sites(framework))
    except TimeoutError:
        return f"stopped after {cap} s wall ({time.process_time() - t:.1f} s CPU)"
    finally:
        signal.alarm(0)
    return f"{len(found)} orbits (Li-free framework), {time.process_time() - t:.2f} s CPU"


if __name__ == "__main__":
    sys.exit(main())
