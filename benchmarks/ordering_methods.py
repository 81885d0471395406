"""Cost and outcome of two ways to order a disordered CIF: pymatgen's Ewald ranking vs ase-em's sampler.

For each CIF (the average structure's primitive cell, in the smallest supercell at least
``--width`` A wide): pymatgen's ``OrderDisorderedStructureTransformation`` (oxidation
states guessed with ``add_oxidation_state_by_guess``, then the lowest-Ewald orderings,
``return_ranked_list=N``) and :func:`ase_em.crystals.disorder.sample_orderings` (N seeded random
orderings). Reports the time, whether it gave an answer within ``--timeout`` s, the Li
count against the average composition, and the shortest Li-Li distance of the first
ordering (split sites filled twice show as < 1.5 A).

    OMP_NUM_THREADS=1 python benchmarks/ordering_methods.py ../shared/data/obelix/cifs/{gas,bjw,97b,e6a}.cif
"""

from __future__ import annotations

import argparse
import signal
import time
import warnings

import numpy as np
from pymatgen.core import Structure

from ase_em.crystals.disorder import sample_orderings
from ase_em.hops.migration_hop import supercell_matrix


class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # noqa: ARG001
    raise _Timeout


def li_summary(s: Structure) -> tuple[int, float]:
    """Li count and shortest Li-Li distance (A) of an ordered structure."""
    idx = [i for i, site in enumerate(s) if site.specie.symbol == "Li"]
    if len(idx) < 2:
        return len(idx), float("nan")
    d = s.distance_matrix[np.ix_(idx, idx)]
    return len(idx), float(d[~np.eye(len(idx), dtype=bool)].min())


def main() -> None:
    """Run both methods on each CIF and print a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cifs", nargs="+")
    ap.add_argument("--width", type=float, default=8.0, help="smallest supercell width (A)")
    ap.add_argument("-n", type=int, default=5, help="orderings")
    ap.add_argument("--timeout", type=int, default=120, help="seconds per method and CIF")
    args = ap.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    print("| CIF | formula | sites in supercell | partial sites | Li expected | method | s | outcome | Li | "
          "min Li-Li (A) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for path in args.cifs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prim = Structure.from_file(path).get_primitive_structure()
        m = supercell_matrix(prim.lattice, args.width)
        sc = prim.copy()
        sc.make_supercell(m)
        li_expected = sc.composition["Li"]
        n_partial = sum(1 for site in sc if not site.is_ordered)
        name, formula = path.rsplit("/", 1)[-1], prim.composition.reduced_formula
        head = f"| {name} | {formula} | {len(sc)} | {n_partial} | {li_expected:.1f}"
        for method in ("pymatgen Ewald", "ase-em sampler"):
            t0 = time.perf_counter()
            signal.alarm(args.timeout)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if method == "ase-em sampler":
                        first = sample_orderings(prim, m, n=args.n, seed=0)[0].structure
                    else:
                        from pymatgen.transformations.standard_transformations import (
                            OrderDisorderedStructureTransformation,
                        )

                        dec = sc.copy()
                        dec.add_oxidation_state_by_guess(max_sites=-1)
                        if all(getattr(sp, "oxi_state", 0) == 0 for sp in dec.composition):
                            raise ValueError("no oxidation states found")
                        ranked = OrderDisorderedStructureTransformation().apply_transformation(
                            dec, return_ranked_list=args.n)
                        first = ranked[0]["structure"]
                        first.remove_oxidation_states()
                n_li, dmin = li_summary(first)
                outcome = "ordered"
            except _Timeout:
                n_li, dmin, outcome = None, None, f"no answer in {args.timeout} s"
            except Exception as exc:  # noqa: BLE001 - the outcome is what we measure
                n_li, dmin, outcome = None, None, f"{type(exc).__name__}: {str(exc)[:60]}"
            finally:
                signal.alarm(0)
            secs = time.perf_counter() - t0
            li = "-" if n_li is None else str(n_li)
            dm = "-" if dmin is None else f"{dmin:.2f}"
            print(f"{head} | {method} | {secs:.2f} | {outcome} | {li} | {dm} |", flush=True)


if __name__ == "__main__":
    main()
