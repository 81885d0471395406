"""Band -> ALIGNN graph and line graph, with alignn's pure-PyTorch builder.

This is the only place that builds neighbour lists. The neighbour search and line-graph
construction are alignn's (``alignn.torch_graph_builder``); two steps are ours:

* ties at the ``max_neighbors``-th distance are all kept (as the original DGL ALIGNN
  did), where alignn's torch builder cuts ties by atom order; so a permuted or translated
  band gives the same graph and the same barrier;
* an optional crop keeps the atoms within ``crop_radius`` of the ion images. The crop is
  decided first and neighbours are searched only from the kept atoms (to every atom, so
  each kept atom's nearest neighbours are the same); edges come out in the order of
  alignn's full search, so the graph is the one the full search and a crop would give, in
  a fraction of the time on a 300-1000 atom vacancy supercell.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from alignn.torch_graph_builder import (
    TorchGraph,
    _line_graph_edges,
    _torch_periodic_shifts,
    batch_torch_graph_pairs,
    torch_neighbor_list,
)
from ase import Atoms

from ase_em.config import GraphConfig
from ase_em.errors import UnsupportedElementError
from ase_em.hops.hop import N_IMAGES

MAX_Z = 100  # CGCNN features exist for Z = 1..100
TIE_TOLERANCE = 1e-4  # A: neighbours this close to the last kept distance are kept too


@lru_cache(maxsize=1)
def feature_table() -> torch.Tensor:
    """CGCNN atom features (the reference's choice), indexed by atomic number.

    The table is jarvis-tools' CGCNN table for Z = 1..100, stored in the package
    (``cgcnn_features.npy``) because reading it through jarvis costs seconds at start-up;
    ``tests/model/test_graph.py`` checks it against jarvis.

    Returns:
        (MAX_Z + 1, 92) float32 table; row 0 is unused.
    """
    return torch.from_numpy(np.load(Path(__file__).with_name("cgcnn_features.npy")))


@dataclass
class BandGraph:
    """A band's graph in compact, cacheable form (tensors only).

    Attributes:
        z: (N,) atomic numbers; the first five nodes are the ion images (if not cropped
            away, they never are).
        src, dst: (E,) directed edges.
        r: (E, 3) float32 bond vectors (A).
        lg_src, lg_dst: (T,) line-graph edges (pairs of bonds sharing an atom).
        n_ion: how many leading nodes are ion images (5 for a band, 0 for a bulk crystal).
    """

    z: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor
    r: torch.Tensor
    lg_src: torch.Tensor
    lg_dst: torch.Tensor
    n_ion: int = N_IMAGES

    @property
    def n_triplets(self) -> int:
        """Number of angle triplets (line-graph edges)."""
        return int(self.lg_src.shape[0])

    def to_torchgraphs(self) -> tuple[TorchGraph, TorchGraph]:
        """Return alignn's (graph, line graph) pair with atom features and ion mask."""
        n = int(self.z.shape[0])
        ion = torch.zeros(n, dtype=torch.bool)
        ion[: self.n_ion] = True
        g = TorchGraph(
            num_nodes=n,
            src=self.src,
            dst=self.dst,
            ndata={"atom_features": feature_table()[self.z], "ion": ion},
            edata={"r": self.r},
        )
        lg = TorchGraph(num_nodes=int(self.src.shape[0]), src=self.lg_src, dst=self.lg_dst)
        return g, lg


def check_elements(symbols: list[str] | tuple[str, ...], where: str = "structure") -> None:
    """Raise UnsupportedElementError for elements without atom features.

    Args:
        symbols: element symbols.
        where: what holds them, for the message.
    """
    from ase.data import atomic_numbers

    bad = sorted(s for s in set(symbols) if atomic_numbers.get(s, 0) > MAX_Z or s == "X")  # each element once
    if bad:
        raise UnsupportedElementError(
            f"{where}: element(s) {', '.join(bad)} have no atom features in the model "
            f"(supported: Z = 1..{MAX_Z})"
        )


def build_graph(band: Atoms, config: GraphConfig, *, n_ion_images: int = N_IMAGES) -> BandGraph:
    """Build the graph of a band5 structure (or of a bulk crystal, for pre-training).

    Args:
        band: band5 Atoms (five ion images first), or a crystal.
        config: cutoff, neighbours and crop (the crop applies to bands only).
        n_ion_images: leading ion-image sites (0 for a bulk crystal).

    Returns:
        The graph.
    """
    if np.any((band.numbers > MAX_Z) | (band.numbers < 1)):  # the numbers first: no symbol list per band
        check_elements(band.get_chemical_symbols(), "band")
    positions = torch.as_tensor(band.positions, dtype=torch.float64)  # (N, 3)
    lattice = torch.as_tensor(np.asarray(band.cell), dtype=torch.float64)  # (3, 3)
    z = torch.as_tensor(band.numbers, dtype=torch.long)
    if config.crop_radius is not None and n_ion_images > 0:
        kept = _near_ion_images(positions, lattice, config.crop_radius)  # (N,) bool
        src, dst, r = _neighbours_from(positions, lattice, config.cutoff, kept, nearest=config.max_neighbors)
    else:
        kept = None
        src, dst, _, r = torch_neighbor_list(
            positions, lattice, config.cutoff, max_neighbors=None, use_matscipy_topology=False
        )
    keep = _nearest_with_ties(src, r.norm(dim=1), config.max_neighbors, len(band))
    src, dst, r = src[keep], dst[keep], r[keep]
    if kept is not None:
        src, dst, r, z = _crop(kept, src, dst, r, z)
    lg_src, lg_dst = _line_graph_edges(src, dst, int(z.shape[0]))
    return BandGraph(z=z, src=src, dst=dst, r=r.float(), lg_src=lg_src, lg_dst=lg_dst, n_ion=n_ion_images)


def _nearest_with_ties(src: torch.Tensor, dist: torch.Tensor, k: int, n: int) -> torch.Tensor:
    """Indices of edges among the k nearest of their source atom, ties included."""
    order = torch.argsort(dist)
    src_o = order[torch.argsort(src[order], stable=True)]  # grouped by src, by distance
    starts = torch.searchsorted(src[src_o], torch.arange(n))
    counts = torch.bincount(src, minlength=n)
    kth = torch.clamp(starts + torch.clamp(counts, max=k) - 1, min=0)
    limit = torch.where(counts > 0, dist[src_o][kth], torch.zeros(n, dtype=dist.dtype))
    return torch.nonzero(dist <= limit[src] + TIE_TOLERANCE).squeeze(-1)


def _near_ion_images(positions: torch.Tensor, lattice: torch.Tensor, radius: float) -> torch.Tensor:
    """(N,) mask of the atoms within ``radius`` of any ion image (minimum image), images included."""
    frac = positions @ torch.linalg.inv(lattice)
    d = frac[:, None, :] - frac[None, :N_IMAGES, :]  # (N, 5, 3)
    d = d - torch.round(d)
    dist = (d @ lattice).norm(dim=-1).min(dim=1).values  # (N,)
    keep = dist <= radius
    keep[:N_IMAGES] = True
    return keep


DENSE_SEARCH_LIMIT = 20_000  # (shifts x sources x atoms) above which candidates come from a compiled search
NEAR_RADIUS = 5.0  # A: the first search radius of a source when only its nearest neighbours are kept
# A: beyond the tie tolerance, what an edge may lie past its source's k-th distance and still be
# passed on: far more than the rounding of _kth_distance's sort key (1e-12 A), so no edge
# that the nearest-neighbour choice keeps is dropped early
KTH_MARGIN = 1e-6


def _neighbours_from(
    positions: torch.Tensor, lattice: torch.Tensor, cutoff: float, sources: torch.Tensor,
    self_tol: float = 1e-8, nearest: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every neighbour within ``cutoff`` of the atoms in ``sources``: alignn's search, restricted.

    Written out (not a call to alignn) because alignn searches from every atom; this is
    its search (``torch_neighbor_list``: periodic shifts, the same distance test) over the
    source atoms only, and the edges are put in the order alignn's full search gives
    (source chunk, shift, source, neighbour), so the graph matches edge for edge.

    Args:
        positions: (N, 3) Cartesian positions (A), float64.
        lattice: (3, 3) cell rows (A).
        cutoff: neighbour cutoff (A).
        sources: (N,) bool mask of the atoms searched from.
        self_tol: squared distances (A^2) at or below this are an atom itself (alignn's rule).
        nearest: the number of nearest neighbours the graph keeps (None: all); with it, a
            large cell may leave out edges that the nearest-neighbour choice drops
            (:func:`_neighbours_from_candidates`).

    Returns:
        src, dst: (E,) atom indices; r: (E, 3) bond vectors (A).
    """
    n = int(positions.shape[0])
    shifts = _torch_periodic_shifts(lattice, cutoff)  # (K, 3)
    offs = shifts @ lattice  # (K, 3)
    idx = torch.nonzero(sources).squeeze(-1)  # (S,)
    if int(shifts.shape[0]) * int(idx.shape[0]) * n > DENSE_SEARCH_LIMIT:
        return _neighbours_from_candidates(positions, lattice, cutoff, idx, shifts, offs, self_tol, nearest)
    # (K, S, N) squared distances from every source atom to every atom in every shifted cell,
    # one Cartesian component at a time: the same floating-point operations as alignn's
    # (pos_j + shift) - pos_i, squared and summed over x, y, z, without the (K, S, N, 3) array
    shifted = positions[None, :, :] + offs[:, None, :]  # (K, N, 3)
    src_pos = positions[idx]  # (S, 3)
    dist2 = None
    for c in range(3):
        d = shifted[:, None, :, c] - src_pos[None, :, None, c]
        dist2 = d * d if dist2 is None else dist2 + d * d
    k_idx, i_local, dst = torch.where((dist2 <= float(cutoff) ** 2) & (dist2 > self_tol))
    src = idx[i_local]
    # alignn's chunks of source atoms (its memory rule) come first in its edge order
    chunk = max(1, min(512, 2**30 // max(int(shifts.shape[0]) * n, 1)))
    order = torch.argsort(src // chunk, stable=True)
    src, dst, k_idx = src[order], dst[order], k_idx[order]
    r = positions[dst] - positions[src] + offs[k_idx]
    return src, dst, r


def _neighbours_from_candidates(
    positions: torch.Tensor, lattice: torch.Tensor, cutoff: float, idx: torch.Tensor,
    shifts: torch.Tensor, offs: torch.Tensor, self_tol: float, nearest: int | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_neighbours_from` on the candidate pairs of a compiled search: the same kept edges, in order.

    The dense search tests every (shift, source, atom) triple; in a large cell most are far
    apart. pymatgen's compiled search (:func:`ase_em.hops.checks.points_near`, a little
    beyond the radius) names the candidate (source, atom, shift) triples, and alignn's
    distance test is repeated on them with the same floating-point operations, so the
    same pairs pass; a candidate whose shift is outside alignn's shift set is dropped, as
    alignn never tests it. The edges are sorted into the dense search's order.

    With ``nearest`` (the graph keeps each source's ``nearest`` closest neighbours, ties
    within ``TIE_TOLERANCE`` included) the search first looks only ``NEAR_RADIUS`` around
    each source: a source whose ``nearest``-th neighbour, plus the tie tolerance, lies
    inside that radius keeps exactly the edges it would keep from the full list, and only
    the other sources are searched to ``cutoff``. The returned list then lacks edges that
    :func:`_nearest_with_ties` would drop anyway.
    """
    n, n_src = int(positions.shape[0]), int(idx.shape[0])
    first = cutoff if nearest is None else min(cutoff, NEAR_RADIUS)
    s_local, dst, k_idx = _candidate_edges(positions, lattice, cutoff, idx, shifts, offs, self_tol, first)
    if first < cutoff:
        r = positions[dst] - positions[idx[s_local]] + offs[k_idx]
        dist = r.norm(dim=1)
        limit = _kth_distance(s_local, dist, nearest, n_src)
        short = torch.nonzero(~(limit + TIE_TOLERANCE < first)).squeeze(-1)  # sources to search to the cutoff
        # of a source done at `first`, only the edges the nearest-neighbour choice can keep go on
        # (their k-th distance is all it looks at): fewer edges to sort; the same graph
        keep = dist <= limit[s_local] + (TIE_TOLERANCE + KTH_MARGIN)
        if short.numel():
            far = _candidate_edges(positions, lattice, cutoff, idx[short], shifts, offs, self_tol, cutoff)
            keep &= ~torch.isin(s_local, short)
            s_local = torch.cat([s_local[keep], short[far[0]]])
            dst, k_idx = torch.cat([dst[keep], far[1]]), torch.cat([k_idx[keep], far[2]])
        else:
            s_local, dst, k_idx = s_local[keep], dst[keep], k_idx[keep]
    src = idx[s_local]
    chunk = max(1, min(512, 2**30 // max(int(shifts.shape[0]) * n, 1)))
    key = (((src // chunk) * int(shifts.shape[0]) + k_idx) * n_src + s_local) * n + dst
    order = torch.argsort(key)
    src, dst, k_idx = src[order], dst[order], k_idx[order]
    r = positions[dst] - positions[src] + offs[k_idx]
    return src, dst, r


def _candidate_edges(
    positions: torch.Tensor, lattice: torch.Tensor, cutoff: float, idx: torch.Tensor,
    shifts: torch.Tensor, offs: torch.Tensor, self_tol: float, radius: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(position in ``idx``, atom, shift index) of the pairs within ``radius`` that pass alignn's test."""
    from ase_em.hops.checks import points_near

    n_max = shifts.max(dim=0).values.to(torch.long)  # alignn's shifts: every integer in [-n, n]^3
    pos = positions.numpy()
    s_local, dst, image, _ = points_near(pos, pos[idx.numpy()], lattice.numpy(), float(radius) + 1e-3)
    s_local, dst, image = torch.from_numpy(s_local), torch.from_numpy(dst), torch.from_numpy(image)
    inside = (image.abs() <= n_max).all(dim=1)
    s_local, dst, image = s_local[inside], dst[inside], image[inside]
    width = 2 * n_max + 1
    k_idx = ((image[:, 0] + n_max[0]) * width[1] + image[:, 1] + n_max[1]) * width[2] + image[:, 2] + n_max[2]
    shifted = positions[dst] + offs[k_idx]  # (P, 3): alignn's pos_j + shift, element by element
    src_pos = positions[idx[s_local]]
    dist2 = None
    for c in range(3):
        d = shifted[:, c] - src_pos[:, c]
        dist2 = d * d if dist2 is None else dist2 + d * d
    hit = (dist2 <= float(cutoff) ** 2) & (dist2 > self_tol)
    return s_local[hit], dst[hit], k_idx[hit]


def _kth_distance(group: torch.Tensor, dist: torch.Tensor, k: int, n: int) -> torch.Tensor:
    """(n,) the k-th smallest ``dist`` of each group (inf for a group with fewer than k)."""
    if not dist.numel():
        return torch.full((n,), float("inf"), dtype=dist.dtype)
    order = torch.argsort(group * (dist.max() + 1.0) + dist)  # by group, then distance
    counts = torch.bincount(group, minlength=n)
    starts = torch.cumsum(counts, 0) - counts
    out = torch.full((n,), float("inf"), dtype=dist.dtype)
    enough = counts >= k
    out[enough] = dist[order][starts[enough] + k - 1]
    return out


def _crop(keep: torch.Tensor, src, dst, r, z):
    """Keep the edges between kept atoms; renumber the atoms."""
    new_index = torch.full((len(keep),), -1, dtype=torch.long)
    new_index[keep] = torch.arange(int(keep.sum()))
    edge = keep[src] & keep[dst]
    return new_index[src[edge]], new_index[dst[edge]], r[edge], z[keep]


def collate(graphs: list[BandGraph]) -> tuple[TorchGraph, TorchGraph]:
    """Batch band graphs into one alignn (graph, line graph) pair."""
    return batch_torch_graph_pairs([b.to_torchgraphs() for b in graphs])
