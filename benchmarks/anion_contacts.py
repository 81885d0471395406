"""Shortest anion-anion and ion-ion contacts on TRAIN and OBELiX, behind two thresholds of the checks.

* ``checks.MIN_ANION_RATIO``: two atoms of one anion element (N, O, F, S, Cl, Se, Br, Te,
  I) closer than this fraction of their covalent-radius sum are a misread file (a sulfide
  with S 1.12 A apart passed the general overlap limit of 0.5). Pairs of one element only:
  by element alone S-O in a sulfate (0.84 of the sum in TRAIN) is not an anion pair.
* ``checks.MIN_ION_PAIR_RATIO``: two sites of the migrating ion closer than this fraction
  are candidate sites that cannot both be filled (a MigrationGraph of every candidate site).

For each em619 TRAIN band5 record, the host plus the ion at its initial site; for each
OBELiX CIF (read by pymatgen, partial occupancies kept), the pairs of sites that both hold
an anion, split into pairs of two fully occupied sites (occupancy >= 0.99) and pairs with a
partial site (split sites of a disordered CIF, never both filled). Prints the smallest
values with their records, and percentiles.

    python benchmarks/anion_contacts.py [--train ../shared/data/em619/band5_train.json]
        [--obelix ../shared/data/obelix/cifs]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii
from ase.neighborlist import neighbor_list

from ase_em.hops.checks import ANIONS
from ase_em.hops.hop import jarvis_dict_to_atoms

CUTOFF = 4.0  # A: no anion pair of interest is further apart
IONS = ("Li", "Na", "K", "Mg", "Ca", "Zn", "Al")


def _ratio(a: str, b: str, d: float) -> float:
    return d / (covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]])


def train_contacts(path: Path) -> tuple[list[tuple], list[tuple]]:
    """(ratio, distance, pair, record) of the closest anion pair and same-ion pair of each record."""
    anion, ion = [], []
    for rec in json.loads(path.read_text()):
        band = jarvis_dict_to_atoms(rec["atoms"], rec["sys_name"])
        s = band.get_chemical_symbols()
        atoms = Atoms([s[0]] + s[5:], positions=np.vstack([band.positions[:1], band.positions[5:]]),
                      cell=band.cell, pbc=True)
        sym = np.array(atoms.get_chemical_symbols())
        i, j, d = neighbor_list("ijd", atoms, CUTOFF)
        keep = i < j
        i, j, d = i[keep], j[keep], d[keep]
        for out, mask in (
            (anion, np.isin(sym[i], ANIONS) & (sym[i] == sym[j])),
            (ion, (sym[i] == s[0]) & (sym[j] == s[0])),
        ):
            if mask.any():
                r = np.array([_ratio(a, b, x) for a, b, x in zip(sym[i][mask], sym[j][mask], d[mask])])
                k = int(np.argmin(r))
                pair = f"{sym[i][mask][k]}-{sym[j][mask][k]}"
                out.append((float(r[k]), float(d[mask][k]), pair, rec["sys_name"]))
    return anion, ion


def obelix_contacts(folder: Path) -> tuple[list[tuple], list[tuple], int]:
    """Closest anion pair of each CIF: among fully occupied sites, and with a partial site."""
    from pymatgen.core import Structure

    full, partial, unread = [], [], 0
    for cif in sorted(folder.glob("*.cif")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                st = Structure.from_file(cif)
            except Exception:  # noqa: BLE001 - a few OBELiX CIFs do not parse; counted
                unread += 1
                continue
        main = [max(site.species, key=site.species.get).symbol for site in st]
        is_anion = np.array([m in ANIONS for m in main])
        occ = np.array([sum(site.species.values()) for site in st])
        centers, points, _, dist = st.get_neighbor_list(CUTOFF)
        best: dict[bool, tuple] = {}
        for a, b, d in zip(centers, points, dist):
            if a >= b or not is_anion[a] or main[a] != main[b] or d < 1e-6:
                continue
            ea, eb = main[a], main[b]
            r = _ratio(ea, eb, d)
            both_full = bool(occ[a] >= 0.99 and occ[b] >= 0.99)
            if both_full not in best or r < best[both_full][0]:
                best[both_full] = (r, float(d), f"{ea}-{eb}", cif.name)
        if True in best:
            full.append(best[True])
        if False in best:
            partial.append(best[False])
    return full, partial, unread


def report(title: str, rows: list[tuple], n: int = 8) -> None:
    rows = sorted(rows)
    r = np.array([x[0] for x in rows])
    print(f"\n{title}: {len(rows)} structures")
    print("  percentiles of the ratio (0, 1, 5, 50): "
          + ", ".join(f"{np.percentile(r, p):.3f}" for p in (0, 1, 5, 50)))
    for ratio, d, pair, name in rows[:n]:
        print(f"  {ratio:.3f}  {d:.3f} A  {pair:6s} {name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=Path, default=Path("../shared/data/em619/band5_train.json"))
    ap.add_argument("--obelix", type=Path, default=Path("../shared/data/obelix/cifs"))
    args = ap.parse_args()
    anion, ion = train_contacts(args.train)
    report("TRAIN closest pair of one anion element (host + ion at its initial site)", anion)
    report("TRAIN closest pair of two atoms of the migrating ion", ion)
    full, partial, unread = obelix_contacts(args.obelix)
    report("OBELiX closest pair of one anion element, both sites fully occupied", full)
    report("OBELiX closest pair of one anion element, one site partial (split sites)", partial)
    print(f"\nOBELiX CIFs pymatgen could not read: {unread}")


if __name__ == "__main__":
    main()
