"""Distributions behind the hop checks, measured on the em619 TRAIN hops.

For every band5 record: the clearance of the whole straight path (``path_clearance``:
closest approach to a host atom / the ion's nearest-host distance at its endpoints; also
to host atoms of the ion's own element), the closest pair of atoms relative to their
covalent radii (host + the ion at its initial site, and host + the ion at its final
site), and how far the five ion images are from equally spaced. Prints percentiles, the
smallest values with their records, and which records the current thresholds block or
flag. Also times ``path_clearance``.

    python benchmarks/path_clearance.py [../shared/data/em619/band5_train.json]
"""

from __future__ import annotations

import argparse
import json
import time
from types import SimpleNamespace

import numpy as np
from ase import Atoms

from ase_em.hops import checks, clearance
from ase_em.hops.hop import jarvis_dict_to_atoms

PERCENTILES = [0, 1, 5, 10, 25, 50]


def measure(rec: dict) -> dict:
    band = jarvis_dict_to_atoms(rec["atoms"], rec["sys_name"])
    s = band.get_chemical_symbols()
    steps = checks.band5_steps(band)  # (4, 3)
    start = band.positions[0]
    hop = SimpleNamespace(
        name=rec["sys_name"], ion=s[0], start=start, end=start + steps.sum(axis=0),
        host_symbols=tuple(s[5:]), host_positions=band.positions[5:], cell=np.asarray(band.cell),
    )
    t0 = time.perf_counter()
    c = clearance.path_clearance(hop)
    seconds = time.perf_counter() - t0
    contact = np.inf
    for site in (0, 4):
        ends = Atoms(
            symbols=[s[0]] + s[5:], positions=np.vstack([band.positions[site], band.positions[5:]]),
            cell=band.cell, pbc=True,
        )
        cc = checks.closest_contact(ends)
        if cc is not None:
            contact = min(contact, cc.ratio)
    off = float(np.linalg.norm(steps - steps.mean(axis=0), axis=1).max())
    return {"name": rec["sys_name"], "c": c, "contact": contact, "band_off": off, "seconds": seconds}


def table(label: str, values: np.ndarray) -> None:
    print("| " + label + " | " + " | ".join(f"{np.percentile(values, p):.3f}" for p in PERCENTILES) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", default="../shared/data/em619/band5_train.json")
    args = ap.parse_args()
    rows = [measure(rec) for rec in json.load(open(args.data))]
    # records with a duplicated host atom are refused by the contact rule before any path check
    overlap = {r["name"] for r in rows if r["contact"] < checks.MIN_COVALENT_RATIO}
    ok = [r for r in rows if r["name"] not in overlap]
    names = np.array([r["name"] for r in ok])
    ratio = np.array([r["c"].ratio for r in ok])
    dist = np.array([r["c"].distance for r in ok])
    same = np.array([r["c"].same_species_ratio for r in ok])
    print(f"{args.data}: {len(rows)} TRAIN band5 records ({len(overlap)} with overlapping atoms left out)")
    print("\n| quantity | " + " | ".join(f"p{p}" for p in PERCENTILES) + " |")
    print("| --- |" + " --- |" * len(PERCENTILES))
    table("path clearance ratio (any host atom)", ratio)
    table("closest approach (A)", dist)
    table("ratio, host atoms of the ion's element", same[np.isfinite(same)])
    contacts = np.array([r["contact"] for r in rows])
    table("closest pair / covalent radii sum", contacts[np.isfinite(contacts)])
    print("\nsmallest path ratios:")
    for k in np.argsort(ratio)[:6]:
        c = ok[k]["c"]
        print(f"  {names[k]:22s} {c.ratio:.3f}  {c.distance:.3f} A from {c.host_symbol}, bond {c.bond:.3f} A")
    print("smallest ratios to the ion's own element:")
    for k in np.argsort(same)[:3]:
        print(f"  {names[k]:22s} {same[k]:.3f}")
    print("smallest contact ratios:")
    for k in np.argsort(contacts)[:6]:
        print(f"  {rows[k]['name']:22s} {contacts[k]:.3f}")
    blocked = [r["name"] for r in ok if r["c"].blocked]
    grey = [r["name"] for r in ok if r["c"].grey]
    print(f"\nblocked: {len(blocked)} ({', '.join(blocked) or 'none'})")
    print(f"grey zone: {len(grey)} of {len(ok)} ({100 * len(grey) / len(ok):.1f} %)")
    print(f"overlapping atoms (< {checks.MIN_COVALENT_RATIO}): {', '.join(sorted(overlap)) or 'none'}")
    off = max(r["band_off"] for r in rows)
    print(f"band5 images: largest step deviation {off:.2e} A (limit {checks.BAND5_TOLERANCE} A)")
    ms = np.array([r["seconds"] for r in rows]) * 1e3
    print(f"path_clearance: median {np.median(ms):.2f} ms, max {ms.max():.2f} ms per hop")


if __name__ == "__main__":
    main()
