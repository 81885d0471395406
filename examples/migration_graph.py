"""All Li hops of olivine LiFePO4 on a pymatgen-analysis-diffusion MigrationGraph, with Em.

    python examples/migration_graph.py                 # shipped model
    python examples/migration_graph.py --model DIR     # any model directory

``import ase_em.crystals.labelling`` attaches ``MigrationGraph.with_em_predictor``: one
prediction per symmetry-distinct hop, ``em``/``em_std``/``cost`` (eV) on every edge, so
``get_path`` ranks paths by barrier. See docs/pymatgen.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph
from pymatgen.core import Structure

import ase_em.crystals.labelling  # noqa: F401  (attaches MigrationGraph.with_em_predictor)
from ase_em import EmPredictor

CIF = Path(__file__).resolve().parent / "structures" / "LiFePO4.cif"


def main(argv: list[str] | None = None) -> MigrationGraph:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory or shipped name (default: shipped)")
    parser.add_argument("--max-distance", type=float, default=5.0, help="longest Li-Li hop (A)")
    args = parser.parse_args(argv)

    structure = Structure.from_file(CIF)
    predictor = EmPredictor.from_pretrained(args.model)
    mg = MigrationGraph.with_em_predictor(structure, "Li", args.max_distance, predictor=predictor)

    print(f"{len(mg.unique_hops)} distinct Li hops up to {args.max_distance} A (model {predictor.name}):")
    for label, d in sorted(mg.unique_hops.items()):
        print(f"  hop {label}: {d['hop'].length:.3f} A  Em {d['em']:.3f} +/- {d['em_std'] or 0:.3f} eV")

    # the cheapest path through the crystal from each Li site (cost = Em)
    for site, hops in mg.get_path():
        worst = max(h["em"] for h in hops)
        print(f"  from site {site}: {len(hops)} hop(s), highest barrier {worst:.3f} eV")
    return mg


if __name__ == "__main__":
    main()
