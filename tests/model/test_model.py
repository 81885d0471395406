"""The network's readouts on real band graphs."""

from __future__ import annotations

import pytest
import torch

from ase_em.config import GraphConfig, ModelConfig
from ase_em.hops.hop import Hop
from ase_em.model.band import build_band
from ase_em.model.graph import build_graph, collate
from ase_em.model.model import EmModel


def _band_graph(endpoints, order):
    """Graph of the rock-salt band with its five ion images put in ``order``."""
    band = build_band(Hop.from_endpoints(*endpoints))
    band.positions[:5] = band.positions[list(order)]
    return build_graph(band, GraphConfig(cutoff=8.0, max_neighbors=8, crop_radius=5.0))


@pytest.fixture(scope="module")
def path_model():
    torch.manual_seed(0)
    return EmModel(ModelConfig(hidden_features=16, readout="path")).eval()


@torch.no_grad()
def test_path_readout_does_not_depend_on_the_hop_direction(endpoints, path_model):
    forward = path_model(*collate([_band_graph(endpoints, [0, 1, 2, 3, 4])]))
    backward = path_model(*collate([_band_graph(endpoints, [4, 3, 2, 1, 0])]))
    assert torch.allclose(forward, backward, atol=1e-5)


@torch.no_grad()
def test_path_readout_knows_which_image_is_the_midpoint(endpoints, path_model):
    """Swapping the midpoint with an endpoint changes nothing for "ion" but does for "path"."""
    graphs = [_band_graph(endpoints, order) for order in ([0, 1, 2, 3, 4], [2, 1, 0, 3, 4])]
    torch.manual_seed(0)
    ion_model = EmModel(ModelConfig(hidden_features=16, readout="ion")).eval()
    ion = [ion_model(*collate([g])).item() for g in graphs]
    path = [path_model(*collate([g])).item() for g in graphs]
    assert ion[0] == pytest.approx(ion[1], abs=1e-5)
    assert abs(path[0] - path[1]) > 1e-4


@torch.no_grad()
def test_path_readout_batched_equals_single(endpoints, path_model):
    graphs = [_band_graph(endpoints, [0, 1, 2, 3, 4]), _band_graph(endpoints, [1, 0, 2, 4, 3])]
    batched = path_model(*collate(graphs))
    single = torch.cat([path_model(*collate([g])) for g in graphs])
    assert torch.allclose(batched, single, atol=1e-5)


def test_path_readout_refuses_a_graph_without_ion_images(path_model):
    from ase.build import bulk

    g = build_graph(bulk("NaCl", "rocksalt", a=5.6), GraphConfig(8.0, 8, None), n_ion_images=0)
    with pytest.raises(ValueError, match="ion images"):
        path_model(*collate([g]))
