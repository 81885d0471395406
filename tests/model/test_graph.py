"""The graph stage: shipped atom features, crop, bulk crystals."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from ase_em.config import GraphConfig
from ase_em.hops.hop import Hop
from ase_em.model.band import build_band
from ase_em.model.graph import MAX_Z, build_graph, feature_table


def test_shipped_feature_table_matches_jarvis():
    from ase.data import chemical_symbols
    from jarvis.core.specie import get_node_attributes

    table = feature_table().numpy()
    assert table.shape == (MAX_Z + 1, 92)
    for z in (1, 3, 8, 26, 55, 100):
        expected = np.asarray(get_node_attributes(chemical_symbols[z], atom_features="cgcnn"), float)
        np.testing.assert_allclose(table[z], expected, rtol=1e-6)


def test_crop_keeps_the_ion_images_and_only_nearby_atoms(endpoints):
    hop = Hop.from_endpoints(*endpoints)
    band = build_band(hop)
    full = build_graph(band, GraphConfig(max_neighbors=8))
    cropped = build_graph(band, GraphConfig(max_neighbors=8, crop_radius=3.0))
    assert int(full.z.shape[0]) == len(band)
    n = int(cropped.z.shape[0])
    assert 5 < n < len(band)
    assert cropped.z[:5].tolist() == [3] * 5
    # every kept atom lies within 3 A of an ion image (minimum image)
    d = band.get_all_distances(mic=True)[:5]  # (5, N)
    assert n == 5 + int((d[:, 5:].min(axis=0) <= 3.0).sum())
    assert cropped.n_triplets < full.n_triplets


def test_bulk_crystal_graph_has_no_ion_nodes():
    g = build_graph(
        bulk("NaCl", "rocksalt", a=5.6), GraphConfig(max_neighbors=12, crop_radius=3.0), n_ion_images=0
    )
    assert g.n_ion == 0
    tg, _ = g.to_torchgraphs()
    assert not tg.ndata["ion"].any()
    # two atoms, each with 6 + 12 neighbours (second shell tied) -> 36 edges, no crop for crystals
    assert int(g.src.shape[0]) == 36


@pytest.mark.parametrize("k", [4, 8, 12])
def test_each_atom_keeps_at_least_k_neighbours(endpoints, k):
    band = build_band(Hop.from_endpoints(*endpoints))
    g = build_graph(band, GraphConfig(max_neighbors=k))
    counts = np.bincount(g.src.numpy(), minlength=len(band))
    assert counts.min() >= k


def _reference_cropped_graph(band, config):
    """The crop as first written: alignn's search from every atom, nearest neighbours, then crop."""
    import torch
    from alignn.torch_graph_builder import _line_graph_edges, torch_neighbor_list

    from ase_em.model.graph import _crop, _near_ion_images, _nearest_with_ties

    positions = torch.as_tensor(band.positions, dtype=torch.float64)
    lattice = torch.as_tensor(np.asarray(band.cell), dtype=torch.float64)
    src, dst, _, r = torch_neighbor_list(positions, lattice, config.cutoff, max_neighbors=None)
    keep = _nearest_with_ties(src, r.norm(dim=1), config.max_neighbors, len(band))
    kept = _near_ion_images(positions, lattice, config.crop_radius)
    src, dst, r, z = _crop(kept, src[keep], dst[keep], r[keep], torch.as_tensor(band.numbers))
    return src, dst, r.float(), z, _line_graph_edges(src, dst, int(z.shape[0]))


@pytest.mark.parametrize("radius", [3.0, 5.0])
@pytest.mark.parametrize("crystal", ["rocksalt", "LiFePO4"])
@pytest.mark.parametrize("search", ["dense", "candidates", "candidates, then the cutoff"])
def test_cropped_search_gives_the_full_search_graph_edge_for_edge(endpoints, radius, crystal, search,
                                                                  monkeypatch):
    # searching only from the kept atoms must give the very graph of the full search
    # followed by the crop (LiFePO4: the shipped example, a 111-atom host), whichever
    # search finds the neighbours: the dense (shift, source, atom) test, the compiled
    # search's candidates within NEAR_RADIUS, or (a first radius of 2.2 A, inside most
    # atoms' 8th neighbour) candidates that send most sources on to the full cutoff
    from pathlib import Path

    from ase.io import read

    import ase_em.model.graph as graph_module

    monkeypatch.setattr(graph_module, "DENSE_SEARCH_LIMIT", float("inf") if search == "dense" else 0)
    if search.endswith("cutoff"):
        monkeypatch.setattr(graph_module, "NEAR_RADIUS", 2.2)

    if crystal == "LiFePO4":
        here = Path(__file__).resolve().parents[2] / "examples" / "LiFePO4"
        endpoints = (read(here / "initial.vasp"), read(here / "final.vasp"))
    config = GraphConfig(max_neighbors=8, crop_radius=radius)
    band = build_band(Hop.from_endpoints(*endpoints))
    g = build_graph(band, config)
    src, dst, r, z, (lg_src, lg_dst) = _reference_cropped_graph(band, config)
    assert g.src.tolist() == src.tolist() and g.dst.tolist() == dst.tolist()
    assert g.z.tolist() == z.tolist()
    np.testing.assert_allclose(g.r.numpy(), r.numpy(), atol=1e-6)
    assert g.lg_src.tolist() == lg_src.tolist() and g.lg_dst.tolist() == lg_dst.tolist()
