"""``ase-em conductivity``: sigma(T), D(T) and the activation energy of a crystal from its hop network.

Registered by :func:`add_parser` from :mod:`ase_em.cli.main`; :func:`cmd_conductivity` does the work.
The method and its assumptions: ``docs/conductivity.md``.
"""

from __future__ import annotations

import argparse
import json

from ase_em.cli._args import _threads, add_ordering_tolerance, non_negative_int, positive_float, positive_int


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``conductivity`` subcommand to the ``ase-em`` subparsers.

    Args:
        sub: the object returned by ``ArgumentParser.add_subparsers``.

    Returns:
        The new subparser.
    """
    p = sub.add_parser(
        "conductivity",
        help="ionic conductivity sigma(T), D(T) and activation energy from the hop network",
        description="Build and label the hop network (as ase-em network), turn barriers into rates "
        "nu exp(-Em/kT), solve the periodic network exactly for the one-carrier diffusion tensor, and "
        "report sigma = n q^2 D / (kT) (Nernst-Einstein, Haven ratio 1), its spread over draws of the "
        "barriers' em_std, and an Arrhenius activation energy. See docs/conductivity.md.",
    )
    p.add_argument("structure", help="crystal with all ion sites occupied, or partial occupancies (CIF, ...)")
    p.add_argument("--ion", required=True, help="mobile ion, e.g. Li")
    p.add_argument("--T", dest="temperatures", type=positive_float, nargs="+", default=[300.0],
                   metavar="K", help="temperatures (K; default 300)")
    p.add_argument("--nu", type=positive_float, default=1e13,
                   help="attempt frequency (Hz; default 1e13; log10 sigma moves by log10(nu/1e13))")
    p.add_argument("--samples", type=non_negative_int, default=200,
                   help="barrier draws for the spread (default 200; 0: none)")
    p.add_argument("--charge", type=int, default=None,
                   help="charge number of the ion (default: Li 1, Mg 2, ...)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", default=None, help="write the Arrhenius plot (with the spread band) to this PNG")
    p.add_argument("--max-distance", type=float, default=5.0, help="longest ion-ion hop (A; default 5)")
    p.add_argument("--empty-sites", choices=["auto", "yes", "no"], default="auto",
                   help="candidate empty ion sites as nodes (as in ase-em network)")
    p.add_argument("--include-flagged", action="store_true",
                   help="let hops outside the model's domain into the network")
    p.add_argument("--orderings", type=positive_int, default=5,
                   help="orderings drawn for a disordered structure (default 5)")
    add_ordering_tolerance(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the orderings and of the barrier draws")
    p.add_argument("--model", default=None, help="model directory or shipped name (default: shipped)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads, >= 1")
    p.set_defaults(func=cmd_conductivity)
    return p


def cmd_conductivity(args: argparse.Namespace) -> int:
    """sigma(T) of an ion in a crystal from its labelled hop network."""
    from ase_em.crystals.analyzer import MigrationBarrierAnalyzer
    from ase_em.crystals.disordered import disordered_input
    from ase_em.crystals.structure import check_ion, to_structure
    from ase_em.predictor import EmPredictor
    from ase_em.transport import ion_charge

    structure = disordered_input(args.structure)
    if structure is None:
        structure = to_structure(args.structure)  # input errors before the model loads
    args.ion = check_ion(structure, args.ion, args.structure)
    charge = ion_charge(args.ion) if args.charge is None else args.charge  # before the model loads
    _threads(args.threads)
    predictor = EmPredictor.from_pretrained(args.model)
    analyzer = MigrationBarrierAnalyzer(
        structure, args.ion, max_distance=args.max_distance, predictor=predictor,
        include_flagged=args.include_flagged, n_orderings=args.orderings, seed=args.seed,
        ordering_tolerance=args.ordering_tolerance,
        empty_sites={"auto": None, "yes": True, "no": False}[args.empty_sites], progress=not args.json,
    )
    result = analyzer.conductivity(args.temperatures, attempt_frequency=args.nu, n_samples=args.samples,
                                   seed=args.seed, charge=charge)
    if args.plot:
        result.plot_arrhenius(args.plot)
    if args.json:
        print(json.dumps({**result.to_dict(), "model": predictor.name,
                          "percolation": {f"{d}D": e for d, e in analyzer.percolation.items()},
                          "structure_flags": list(analyzer.structure_flags)}))
    else:
        print(f"{args.structure}: {analyzer.structure.composition.reduced_formula}, {args.ion} hops up to "
              f"{args.max_distance:g} A, model {predictor.name}")
        print(result.format_table())
        if analyzer.structure_flags:
            print(f"warning: every hop is outside the model's domain: {', '.join(analyzer.structure_flags)}")
        if args.plot:
            print(f"wrote {args.plot}")
    return 0
