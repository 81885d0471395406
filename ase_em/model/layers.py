"""ALIGNN's edge-gated graph convolution and its line-graph update, in plain PyTorch.

These are alignn's ``EdgeGatedGraphConvPure`` and ``ALIGNNConvPure`` (alignn
``models/alignn_atomwise_pure.py``, MIT licence; Choudhary & DeCost, npj Comput. Mater. 7,
185 (2021)), restricted to what ase-em's models use (the residual edge-gated convolution),
with the same parameter names, so weights load unchanged. The arithmetic is alignn's with
fewer passes over the edges: the three node linears as one matmul, one gather per edge
end, the two sums of the gated mean as one ``index_add_`` (the tests compare both on the
shipped weights: the same barriers to 1e-6 eV).

Why a copy: importing alignn's module imports ``alignn.utils``, which imports matplotlib's
pyplot and scikit-learn for a settings class ase-em does not use: more than a second of
every command's start-up. The radial basis and MLP layers and the graph type still come from
alignn itself (``alignn.models.utils``, ``alignn.torch_graph_builder``), which import light.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from alignn.torch_graph_builder import TorchGraph
from torch import nn


def scatter_sum(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Rows of ``src`` (E, ...) summed into ``dim_size`` buckets by ``index`` (E,)."""
    out = src.new_zeros((dim_size, *src.shape[1:]))
    idx = index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)
    return out.scatter_add_(0, idx, src)


def scatter_mean(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Rows of ``src`` (E, F) averaged into ``dim_size`` buckets by ``index`` (E,); empty ones 0."""
    total = scatter_sum(src, index, dim_size)
    ones = torch.ones(src.shape[0], device=src.device, dtype=src.dtype)
    count = torch.zeros(dim_size, device=src.device, dtype=src.dtype).scatter_add_(0, index, ones)
    return total / count.clamp_min(1.0).view(-1, *([1] * (total.dim() - 1)))


def edge_gated_update(
    src: torch.Tensor, dst: torch.Tensor, num_nodes: int, x: torch.Tensor, y: torch.Tensor,
    gates: torch.Tensor, gate_bias: torch.Tensor, edge_w: torch.Tensor, edge_b: torch.Tensor,
    self_w: torch.Tensor, self_b: torch.Tensor, norm_edges: tuple[torch.Tensor, torch.Tensor],
    norm_nodes: tuple[torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """One residual edge-gated convolution as a function of its weights (alignn's arithmetic).

    Args:
        src: (E,) source node of each edge.
        dst: (E,) destination node of each edge.
        num_nodes: N.
        x: (N, F) node features.
        y: (E, F) edge features.
        gates: (3F, F) the source gate, destination update and destination gate weights
            stacked (the first two are read at an edge's source, the last at its
            destination), so each node row is multiplied once and gathered once per end.
        gate_bias: (3F,) their biases.
        edge_w: (F, F) edge gate weight.
        edge_b: (F,) edge gate bias.
        self_w: (F, F) source update weight.
        self_b: (F,) source update bias.
        norm_edges: (weight, bias) of the edge layer norm.
        norm_nodes: (weight, bias) of the node layer norm.

    Returns:
        New (x, y), each with the residual added.
    """
    f = x.shape[1]
    at_nodes = F.linear(x, gates, gate_bias)  # (N, 3F)
    at_src = at_nodes[:, : 2 * f].index_select(0, src)  # (E, 2F): source gate | destination update
    m = at_src[:, :f] + at_nodes[:, 2 * f :].index_select(0, dst) + F.linear(y, edge_w, edge_b)
    sigma = torch.sigmoid(m)
    # numerator and denominator of the gated mean in one scatter
    both = torch.cat([at_src[:, f:] * sigma, sigma], dim=1)
    sums = x.new_zeros((num_nodes, 2 * f)).index_add_(0, dst, both)
    h = sums[:, :f] / (sums[:, f:] + 1e-6)
    x_new = F.silu(F.layer_norm(F.linear(x, self_w, self_b) + h, (f,), *norm_nodes))
    y_new = F.silu(F.layer_norm(m, (f,), *norm_edges))
    return x + x_new, y + y_new


_update = edge_gated_update  # what every layer calls; :func:`compiled_updates` swaps it
_compiled_update = None


@contextlib.contextmanager
def compiled_updates() -> Iterator[None]:
    """Within the block every edge-gated layer runs one ``torch.compile``d :func:`edge_gated_update`.

    The update is a function of its weights, so the one compiled kernel set (dynamic shapes)
    serves every layer of every ensemble member: compiling it costs 24 s the first time on
    a machine and 5 s in a later process (inductor's disk cache), where compiling the whole
    ensemble cost 55-85 s (docs/benchmarks.md). Compile errors surface at the first call.
    """
    global _update, _compiled_update
    if _compiled_update is None:
        _compiled_update = torch.compile(edge_gated_update, dynamic=True)
    saved, _update = _update, _compiled_update
    try:
        yield
    except Exception:
        _compiled_update = None  # a failed compile is not kept: the next block tries afresh
        raise
    finally:
        _update = saved


class EdgeGatedGraphConvPure(nn.Module):
    """Residual edge-gated graph convolution (node features x, edge features y).

    Args:
        input_features: width of x and y.
        output_features: width of the outputs (equal to the input for the residual).
    """

    def __init__(self, input_features: int, output_features: int) -> None:
        """Gates, updates and layer norms."""
        super().__init__()
        self.src_gate = nn.Linear(input_features, output_features)
        self.dst_gate = nn.Linear(input_features, output_features)
        self.edge_gate = nn.Linear(input_features, output_features)
        self.bn_edges = nn.LayerNorm(output_features)
        self.src_update = nn.Linear(input_features, output_features)
        self.dst_update = nn.Linear(input_features, output_features)
        self.bn_nodes = nn.LayerNorm(output_features)

    def forward_tensors(
        self, src: torch.Tensor, dst: torch.Tensor, num_nodes: int, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """New (x, y) from the edge list (src, dst), x (N, F) and y (E, F)."""
        gates = torch.cat([self.src_gate.weight, self.dst_update.weight, self.dst_gate.weight])
        gate_bias = torch.cat([self.src_gate.bias, self.dst_update.bias, self.dst_gate.bias])
        return _update(
            src, dst, num_nodes, x, y, gates, gate_bias, self.edge_gate.weight, self.edge_gate.bias,
            self.src_update.weight, self.src_update.bias, (self.bn_edges.weight, self.bn_edges.bias),
            (self.bn_nodes.weight, self.bn_nodes.bias),
        )

    def forward(self, g: TorchGraph, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """New (x, y) on graph ``g``."""
        return self.forward_tensors(g.src, g.dst, g.num_nodes, x, y)


class ALIGNNConvPure(nn.Module):
    """One ALIGNN layer: an edge-gated update on the graph, then one on its line graph.

    Args:
        in_features: width of the features.
        out_features: width of the outputs.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        """The two convolutions."""
        super().__init__()
        self.node_update = EdgeGatedGraphConvPure(in_features, out_features)
        self.edge_update = EdgeGatedGraphConvPure(out_features, out_features)

    def forward(
        self, g: TorchGraph, lg: TorchGraph, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """New atom (x), bond (y) and angle (z) features."""
        x, m = self.node_update(g, x, y)
        y, z = self.edge_update(lg, m, z)
        return x, y, z
