"""How far one model's hop networks lie from another's on the same crystals.

Reads two ``benchmarks/conductivity.py`` outputs made with the same settings (same CIFs,
orderings and seed) but different models, e.g. a distilled model against its teacher, and
prints in markdown, on the structures both answered:

* per hop, where both networks hold the same hops (same sites, hop list and periodic
  images): the mean, 95th percentile and largest |Em difference| (eV), and the median ratio
  of the error bars (em_std);
* per structure: |difference| of the percolation barrier (E3D, else E2D, else E1D) and of
  log10 sigma(300 K), and whether both percolate alike;
* Spearman between the two models' predicted log10 sigma.

Usage::

    python benchmarks/network_fidelity.py docs/study/obelix_conductivity_v1_paired.jsonl \\
        docs/study/obelix_conductivity_v1_distilled.jsonl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conductivity import read_records  # noqa: E402 - the sibling benchmark's reader
from obelix import percolation_choice  # noqa: E402 - the sibling benchmark's choice of barrier


def same_hops(a: dict, b: dict) -> bool:
    """Whether two stored networks hold the same sites and hops in the same order."""
    keys = ("u", "v", "image")
    return all(a[k] == b[k] for k in keys) and np.allclose(a["frac_coords"], b["frac_coords"], atol=1e-6)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("reference", type=Path)
    parser.add_argument("other", type=Path)
    args = parser.parse_args()
    from scipy.stats import spearmanr

    ref, other = read_records(args.reference), read_records(args.other)
    both = sorted(k for k in ref if k in other and ref[k]["status"] == other[k]["status"] == "ok")
    status_differs = sorted(k for k in ref if k in other and ref[k]["status"] != other[k]["status"])
    d_em, ratio, d_barrier, d_sigma, s_ref, s_other = [], [], [], [], [], []
    unmatched, percolation_differs = 0, 0
    for k in both:
        a, b = ref[k], other[k]
        if same_hops(a["network"], b["network"]):
            d_em.extend(np.abs(np.subtract(a["network"]["em"], b["network"]["em"])))
            sa, sb = np.asarray(a["network"]["em_std"]), np.asarray(b["network"]["em_std"])
            ratio.extend(sb[sa > 0] / sa[sa > 0])
        else:
            unmatched += 1
        (ba, _), (bb, _) = percolation_choice(a["percolation"]), percolation_choice(b["percolation"])
        if (ba is None) != (bb is None):
            percolation_differs += 1
        elif ba is not None:
            d_barrier.append(abs(ba - bb))
        if a.get("log10_sigma") is not None and b.get("log10_sigma") is not None:
            d_sigma.append(abs(a["log10_sigma"] - b["log10_sigma"]))
            s_ref.append(a["log10_sigma"])
            s_other.append(b["log10_sigma"])
    d_em, d_barrier, d_sigma = map(np.asarray, (d_em, d_barrier, d_sigma))
    print(f"{args.other.name} against {args.reference.name}: {len(both)} structures answered by both; "
          f"status differs on {len(status_differs)} {status_differs[:10]}; networks with other hops "
          f"{unmatched}; percolating in one only {percolation_differs}\n")
    print("| figure | n | mean | 95th percentile | largest |\n| --- | --- | --- | --- | --- |")
    for name, x in (("hop |Em difference| (eV)", d_em), ("percolation barrier |difference| (eV)", d_barrier),
                    ("log10 sigma(300 K) |difference|", d_sigma)):
        if len(x):
            print(f"| {name} | {len(x)} | {x.mean():.4f} | {np.percentile(x, 95):.4f} | {x.max():.4f} |")
    if ratio:
        print(f"\nmedian em_std ratio (other / reference) per hop: {np.median(ratio):.3f} "
              f"(5th-95th percentile {np.percentile(ratio, 5):.3f}-{np.percentile(ratio, 95):.3f})")
    if len(s_ref) > 2:
        print(f"Spearman(log10 sigma reference, other): {spearmanr(s_ref, s_other).statistic:.4f} "
              f"(n {len(s_ref)})")


if __name__ == "__main__":
    main()
