"""ALIGNN's edge-gated graph convolution and its line-graph update, in plain PyTorch.

These are alignn's ``EdgeGatedGraphConvPure`` and ``ALIGNNConvPure`` (alignn
``models/alignn_atomwise_pure.py``, MIT licence; Choudhary & DeCost, npj Comput. Mater. 7,
185 (2021)), restricted to what ase-em's models use (the residual edge-gated convolution),
with the same parameter names, so weights load unchanged and the arithmetic is the same
operation for operation (the tests compare both on TRAIN bands).

Why a copy: importing alignn's module imports ``alignn.utils``, which imports matplotlib's
pyplot and scikit-learn for a settings class ase-em does not use: more than a second of
every command's start-up. The radial basis and MLP layers and the graph type still come from
alignn itself (``alignn.models.utils``, ``alignn.torch_graph_builder``), which import light.
"""

from __future__ import annotations

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
        m = self.src_gate(x)[src] + self.dst_gate(x)[dst] + self.edge_gate(y)
        sigma = torch.sigmoid(m)
        h = scatter_sum(self.dst_update(x)[src] * sigma, dst, num_nodes) / (
            scatter_sum(sigma, dst, num_nodes) + 1e-6
        )
        x_new = F.silu(self.bn_nodes(self.src_update(x) + h))
        y_new = F.silu(self.bn_edges(m))
        return x + x_new, y + y_new

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
