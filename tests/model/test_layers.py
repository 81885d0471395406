"""ase-em's copy of alignn's pure-PyTorch layers computes what alignn's own does."""

import torch
from alignn.models import alignn_atomwise_pure as upstream
from ase.io import read

from ase_em.hops import as_hop
from ase_em.model import layers
from ase_em.model.graph import collate
from ase_em.predictor import EmPredictor
from tests.conftest import EXAMPLES


def _random_graph(n_nodes: int, n_edges: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n_nodes, (n_edges,), generator=gen)
    dst = torch.randint(0, n_nodes, (n_edges,), generator=gen)
    return src, dst, gen


def test_edge_gated_convolution_matches_alignn_with_the_same_weights():
    torch.manual_seed(0)
    ours = layers.EdgeGatedGraphConvPure(16, 16)
    theirs = upstream.EdgeGatedGraphConvPure(16, 16)
    theirs.load_state_dict(ours.state_dict())  # same parameter names, strict
    src, dst, gen = _random_graph(30, 120, 1)
    x, y = torch.randn(30, 16, generator=gen), torch.randn(120, 16, generator=gen)
    for a, b in zip(ours.forward_tensors(src, dst, 30, x, y), theirs.forward_tensors(src, dst, 30, x, y)):
        assert torch.allclose(a, b, atol=1e-6)
        assert a.abs().max() > 0.1  # a real output, not zeros


def test_scatter_mean_averages_and_leaves_empty_buckets_zero():
    src = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    out = layers.scatter_mean(src, torch.tensor([0, 0, 2]), 4)
    assert torch.equal(out, torch.tensor([[2.0, 3.0], [0.0, 0.0], [5.0, 6.0], [0.0, 0.0]]))
    assert torch.equal(out, upstream.scatter_mean(src, torch.tensor([0, 0, 2]), 4))


def _shipped_ensemble_on_two_hops(endpoints):
    """The shipped ensemble and the batched graphs of two hops (rocksalt, LiFePO4)."""
    predictor = EmPredictor.from_pretrained()
    lifepo4 = (read(EXAMPLES / "LiFePO4" / "initial.vasp"), read(EXAMPLES / "LiFePO4" / "final.vasp"))
    g, lg = collate([predictor.graph(as_hop(pair)) for pair in (endpoints, lifepo4)])
    return predictor.model.ensemble, g, lg


def test_shipped_model_predicts_as_with_alignns_layers(endpoints):
    ensemble, g, lg = _shipped_ensemble_on_two_hops(endpoints)
    with torch.no_grad():
        ours = torch.stack([m(g, lg) for m in ensemble.members])
        for member in ensemble.members:  # the same weights in alignn's own layer classes
            for i, layer in enumerate(member.alignn_layers):
                width = layer.node_update.src_gate.in_features
                twin = upstream.ALIGNNConvPure(width, width)
                twin.load_state_dict(layer.state_dict())
                member.alignn_layers[i] = twin
            for i, layer in enumerate(member.gcn_layers):
                width = layer.src_gate.in_features
                twin = upstream.EdgeGatedGraphConvPure(width, width)
                twin.load_state_dict(layer.state_dict())
                member.gcn_layers[i] = twin
        theirs = torch.stack([m(g, lg) for m in ensemble.members])
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert float((ours[:, 0] - ours[:, 1]).abs().min()) > 0.01  # two different hops, two barriers


def test_the_ensemble_shares_one_expansion_and_answers_as_its_members_alone(endpoints):
    # EmEnsemble computes the radial-basis expansions once for all members; each member on
    # its own computes them itself: the same barriers, mean and spread
    ensemble, g, lg = _shipped_ensemble_on_two_hops(endpoints)
    with torch.no_grad():
        alone = torch.stack([m(g, lg) for m in ensemble.members])  # (5, 2)
        mean, spread = ensemble(g, lg)
    assert torch.equal(mean, alone.mean(0)) and torch.equal(spread, alone.std(0))
    assert float(spread.min()) > 1e-4  # the members differ
