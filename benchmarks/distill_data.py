"""Inputs for distilling the shipped ensemble: band graphs of unlabelled hops and the teacher's answers.

The hops are those a screen makes (``MigrationBarrierAnalyzer``, as ``ase-em screen`` and
``ase-em network``) on Materials Project structures of the pre-training set
(``../shared/data/mpt/bg.json.gz``; no barrier labels, no OBELiX structure, so OBELiX stays a
held-out check of the student), plus the TRAIN bands. For every hop the file keeps its
band graph and the teacher ensemble's raw mean barrier and member spread (eV), recorded
from the teacher's own forward passes while the analyzer runs.

Usage::

    python benchmarks/distill_data.py --out runs/distill/mpt_0.pt --part 0 --parts 2 --max-hops 3000

Resumable: a finished structure is recorded in ``OUT.done`` and the graphs are saved every
20 structures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MPT = ROOT.parent / "shared" / "data" / "mpt" / "bg.json.gz"
TRAIN = ROOT.parent / "shared" / "data" / "em619" / "band5_train.json"
IONS = ("Li", "Na", "Mg", "Ca", "K", "Zn")  # TRAIN's mobile ions (Rb, Al, Sr: under 8 hops each)
ANIONS = {"O", "S", "Se", "Te", "F", "Cl", "Br", "I", "N", "P"}  # TRAIN's hosts are ionic


class Recorder:
    """Wraps a predictor's graph and forward to keep (graph, mean, spread) of every hop."""

    def __init__(self, predictor) -> None:
        self.records: list[dict] = []
        self._pending: list = []
        graph, forward = predictor.graph, predictor._forward

        def recorded_graph(hop):
            g = graph(hop)
            self._pending.append(g)
            return g

        def recorded_forward(g, lg, n_asked):
            em, spread = forward(g, lg, n_asked)
            for k, bg in enumerate(self._pending):
                self.records.append({"graph": bg, "em": float(em[k]), "spread": float(spread[k])})
            self._pending = []
            return em, spread

        predictor.graph, predictor._forward = recorded_graph, recorded_forward


def _timeout(signum, frame):
    raise TimeoutError


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--part", type=int, default=0)
    parser.add_argument("--parts", type=int, default=1)
    parser.add_argument("--max-hops", type=int, default=3000)
    parser.add_argument("--max-sites", type=int, default=60)
    parser.add_argument("--train", action="store_true", help="the TRAIN bands instead of mpt structures")
    parser.add_argument("--timeout", type=int, default=60, help="seconds per structure")
    parser.add_argument("--li-vacancies", type=float, default=None, metavar="FRACTION",
                        help="Li structures only, every Li site occupied 1 - FRACTION, so the hops are "
                             "those of a disordered CIF's orderings (as in a screen of OBELiX-like "
                             "files); the structures are visited from the end of the file")
    parser.add_argument("--orderings", type=int, default=2, help="orderings of a disordered structure")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from pymatgen.core import Lattice, Structure

    from ase_em.crystals.analyzer import MigrationBarrierAnalyzer
    from ase_em.predictor import EmPredictor

    teacher = EmPredictor.from_pretrained("alignn-em-v1", compile="never")
    rec = Recorder(teacher)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.train:
        from ase_em.training.data import load_em619

        data = load_em619(TRAIN, skip_invalid=True)
        teacher.predict(list(data.hops))
        torch.save({"records": rec.records, "source": "TRAIN"}, args.out)
        print(f"{len(rec.records)} TRAIN bands -> {args.out}")
        return
    done_file = args.out.with_suffix(".done")
    done = set(done_file.read_text().split()) if done_file.exists() else set()
    if args.out.exists():
        rec.records = torch.load(args.out, weights_only=False)["records"]
    rows = json.load(gzip.open(MPT))
    todo = [r for i, r in enumerate(rows) if i % args.parts == args.part]
    if args.li_vacancies is not None:
        todo = todo[::-1]
    signal.signal(signal.SIGALRM, _timeout)
    t0, n_new = time.time(), 0
    for r in todo:
        if len(rec.records) >= args.max_hops:
            break
        a = r["atoms"]
        ions = [x for x in (("Li",) if args.li_vacancies is not None else IONS) if x in a["elements"]]
        if (not ions or len(a["elements"]) > args.max_sites or r["id"] in done
                or not ANIONS & set(a["elements"])):
            continue
        ion = ions[0]
        if set(a["elements"]) == {ion}:
            continue
        s = Structure(Lattice(a["lattice_mat"]), a["elements"], a["coords"],
                      coords_are_cartesian=bool(a["cartesian"]))
        options = {}
        if args.li_vacancies is not None:
            if a["elements"].count(ion) < 2:
                continue
            s.replace_species({ion: {ion: 1.0 - args.li_vacancies}})
            options = {"n_orderings": args.orderings, "seed": 0}
        n0 = len(rec.records)
        signal.alarm(args.timeout)
        try:
            MigrationBarrierAnalyzer(s, ion, max_distance=5.0, predictor=teacher, **options)
            status = "ok"
        except TimeoutError:
            status = "timeout"
        except Exception as exc:  # a structure the analyzer refuses: skip it
            status = type(exc).__name__
        finally:
            signal.alarm(0)
        rec._pending = []
        done.add(r["id"])
        n_new += 1
        print(f"{r['id']} {s.composition.reduced_formula} {ion}: {status}, "
              f"{len(rec.records) - n0} hops, total {len(rec.records)}, {time.time() - t0:.0f} s",
              flush=True)
        if n_new % 20 == 0:
            torch.save({"records": rec.records, "source": str(MPT)}, args.out)
            done_file.write_text("\n".join(sorted(done)))
    torch.save({"records": rec.records, "source": str(MPT)}, args.out)
    done_file.write_text("\n".join(sorted(done)))
    print(f"{len(rec.records)} hops -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
