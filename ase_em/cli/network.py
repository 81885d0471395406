"""``ase-em network``: every hop of a crystal, its barriers and percolation."""

from __future__ import annotations

import argparse
import json

from ase_em.cli._args import _threads


def cmd_network(args: argparse.Namespace) -> int:
    """Barriers of all hops of an ion in a crystal, and its 1D/2D/3D percolation barriers."""
    from ase_em.crystals.analyzer import MigrationBarrierAnalyzer
    from ase_em.crystals.disordered import disordered_input
    from ase_em.crystals.structure import check_ion, to_structure
    from ase_em.predictor import EmPredictor

    # partial occupancies are kept (ordered later); anything else gets every input check
    block = getattr(args, "block", None)
    label = args.structure if block is None else f"{args.structure}@block={block}"
    structure = disordered_input(args.structure, block=block)
    if structure is None:
        structure = to_structure(args.structure, block=block)  # input errors before the model loads
    args.ion = check_ion(structure, args.ion, label)  # the element: "Li+" and "Li1+" mean Li
    _threads(args.threads)
    predictor = EmPredictor.from_pretrained(args.model)
    analyzer = MigrationBarrierAnalyzer(
        structure, args.ion, max_distance=args.max_distance, predictor=predictor,
        include_flagged=args.include_flagged, n_orderings=args.orderings, seed=args.seed,
        ordering_tolerance=args.ordering_tolerance,
        empty_sites={"auto": None, "yes": True, "no": False}[args.empty_sites], progress=True,
    )
    if args.plot:
        analyzer.plot_network(args.plot)
    if args.json:
        print(json.dumps({**analyzer.to_dict(), "model": predictor.name}))
    else:
        print(
            f"{label}: {analyzer.structure.composition.reduced_formula}, {args.ion} hops up to "
            f"{args.max_distance:g} A, model {predictor.name}"
        )
        print(analyzer.format_table())
        if args.plot:
            print(f"wrote {args.plot}")
    return 0
