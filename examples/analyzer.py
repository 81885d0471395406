"""Hop table, percolation barriers and a network plot for a crystal (default: layered LiCoO2).

    python examples/analyzer.py                                   # LiCoO2, shipped model
    python examples/analyzer.py --structure examples/structures/LiFePO4.cif --model DIR
    ase-em network examples/structures/LiCoO2.cif --ion Li --max-distance 3.5 --plot network.png   # the same

The percolation barrier in d dimensions is the lowest barrier at which hops connect into a
network infinite in d dimensions. See docs/pymatgen.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ase_em import EmPredictor
from ase_em.crystals.analyzer import MigrationBarrierAnalyzer

STRUCTURES = Path(__file__).resolve().parent / "structures"


def main(argv: list[str] | None = None) -> MigrationBarrierAnalyzer:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structure", default=STRUCTURES / "LiCoO2.cif", help="CIF, POSCAR, ...")
    parser.add_argument("--ion", default="Li")
    parser.add_argument("--max-distance", type=float, default=3.5, help="longest hop (A)")
    parser.add_argument("--model", default=None, help="model directory or shipped name (default: shipped)")
    parser.add_argument("--plot", default="network.png", help="PNG of the hop network")
    args = parser.parse_args(argv)

    analyzer = MigrationBarrierAnalyzer(
        args.structure, args.ion, max_distance=args.max_distance,
        predictor=EmPredictor.from_pretrained(args.model),
    )
    print(analyzer.format_table())
    for d, em in analyzer.percolation.items():
        print(f"{d}D network: " + ("none within max distance" if em is None else f"opens at {em:.3f} eV"))
    print("wrote", analyzer.plot_network(args.plot))
    return analyzer


if __name__ == "__main__":
    main()
