"""The network: ALIGNN layers (alignn's pure-PyTorch layers, :mod:`ase_em.model.layers`) plus target scaling.

``EmModel`` is one ALIGNN regressor that answers in eV: it keeps the mean and spread of
its training targets as buffers and undoes the scaling in ``forward``. ``EmEnsemble``
holds several members and reports their mean and spread (the uncertainty).
"""

from __future__ import annotations

import torch
from alignn.models.utils import MLPLayer, RBFExpansion
from alignn.torch_graph_builder import TorchGraph, torch_bond_cosines
from torch import nn

from ase_em.config import ModelConfig
from ase_em.hops.hop import N_IMAGES
from ase_em.model.layers import ALIGNNConvPure, EdgeGatedGraphConvPure, scatter_mean

N_ATOM_FEATURES = 92  # CGCNN


def readout_width(config: ModelConfig) -> int:
    """Width of the pooled features that the head reads."""
    return {"mean": 1, "ion": 2, "path": 4}[config.readout] * config.hidden_features


class EmModel(nn.Module):
    """ALIGNN barrier regressor.

    Args:
        config: network size and readout.
    """

    def __init__(self, config: ModelConfig) -> None:
        """Build the layers from the config."""
        super().__init__()
        self.config = config
        c = config
        self.atom_embedding = MLPLayer(N_ATOM_FEATURES, c.hidden_features)
        self.edge_embedding = nn.Sequential(
            RBFExpansion(vmin=0, vmax=8.0, bins=c.edge_input_features),
            MLPLayer(c.edge_input_features, c.embedding_features),
            MLPLayer(c.embedding_features, c.hidden_features),
        )
        self.angle_embedding = nn.Sequential(
            RBFExpansion(vmin=-1, vmax=1.0, bins=c.triplet_input_features),
            MLPLayer(c.triplet_input_features, c.embedding_features),
            MLPLayer(c.embedding_features, c.hidden_features),
        )
        self.alignn_layers = nn.ModuleList(
            [ALIGNNConvPure(c.hidden_features, c.hidden_features) for _ in range(c.alignn_layers)]
        )
        self.gcn_layers = nn.ModuleList(
            [EdgeGatedGraphConvPure(c.hidden_features, c.hidden_features) for _ in range(c.gcn_layers)]
        )
        width = readout_width(c)
        outputs = 2 if c.spread_head else 1  # barrier, and the distilled members' spread
        self.head = nn.Sequential(MLPLayer(width, c.hidden_features), nn.Linear(c.hidden_features, outputs))
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_std", torch.ones(()))

    def set_target_scaling(self, targets: torch.Tensor) -> None:
        """Store mean and standard deviation of the training targets (eV); spread 1 for one target."""
        self.target_mean.fill_(float(targets.mean()))
        self.target_std.fill_(float(targets.std().clamp_min(1e-6)) if targets.numel() > 1 else 1.0)

    def expansions(self, g: TorchGraph, lg: TorchGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """The radial-basis expansions of the bond lengths (E, bins) and bond-angle cosines (T, bins).

        They have no trained parameters, so the members of an ensemble share them.
        """
        r = g.edata["r"]
        return (self.edge_embedding[0](r.norm(dim=1)),
                self.angle_embedding[0](torch_bond_cosines(r[lg.src], r[lg.dst])))

    def embed(self, g: TorchGraph, lg: TorchGraph,
              expansions: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Graph-level features before the head.

        Args:
            g: batched band graph (``atom_features``, ``ion`` node data; ``r`` edge data).
            lg: its line graph.
            expansions: :meth:`expansions` of this graph, when already computed.

        Returns:
            (B, width) pooled features.
        """
        edge_rbf, angle_rbf = self.expansions(g, lg) if expansions is None else expansions
        x = self.atom_embedding(g.ndata["atom_features"])
        y = self.edge_embedding[1:](edge_rbf)
        z = self.angle_embedding[1:](angle_rbf)
        for layer in self.alignn_layers:
            x, y, z = layer(g, lg, x, y, z)
        for layer in self.gcn_layers:
            x, y = layer(g, x, y)
        batch = g.node_batch_id
        pooled = scatter_mean(x, batch, g.batch_size)
        ion = g.ndata["ion"]
        if self.config.readout == "ion":
            pooled = torch.cat([scatter_mean(x[ion], batch[ion], g.batch_size), pooled], dim=1)
        elif self.config.readout == "path":
            if int(ion.sum()) != N_IMAGES * g.batch_size:
                raise ValueError(f'readout "path" needs {N_IMAGES} ion images in every graph')
            xi = x[ion].view(g.batch_size, N_IMAGES, -1)  # the ion images lead each graph, in order
            ends, quarters = (xi[:, 0] + xi[:, 4]) / 2, (xi[:, 1] + xi[:, 3]) / 2
            pooled = torch.cat([ends, quarters, xi[:, 2], pooled], dim=1)
        return pooled

    def forward_scaled(self, g: TorchGraph, lg: TorchGraph,
                       expansions: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Prediction in scaled units (what the loss sees); (B,), or (B, 2) with a spread head."""
        out = self.head(self.embed(g, lg, expansions))
        return out.squeeze(-1) if out.shape[-1] == 1 else out

    def forward(self, g: TorchGraph, lg: TorchGraph,
                expansions: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Barriers in eV; (B,)."""
        return self.forward_with_spread(g, lg, expansions)[0]

    def forward_with_spread(
        self, g: TorchGraph, lg: TorchGraph, expansions: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Barriers (B,) in eV, and with a spread head the predicted member spread (B,) in eV.

        The spread is ``softplus`` of the second output, in units of the target spread, so it
        is positive.
        """
        out = self.forward_scaled(g, lg, expansions)
        if out.dim() == 1:
            return out * self.target_std + self.target_mean, None
        em = out[:, 0] * self.target_std + self.target_mean
        return em, torch.nn.functional.softplus(out[:, 1]) * self.target_std


class EmEnsemble(nn.Module):
    """Several EmModels of one config; mean and spread of their barriers.

    Args:
        config: shared network config.
        n_members: number of members.
    """

    def __init__(self, config: ModelConfig, n_members: int = 1) -> None:
        """Build ``n_members`` independent models."""
        super().__init__()
        self.config = config
        self.members = nn.ModuleList([EmModel(config) for _ in range(n_members)])

    def forward(self, g: TorchGraph, lg: TorchGraph) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mean barrier (B,) in eV and the members' standard deviation (B,), None for one member.

        A one-member model with a spread head (distilled from an ensemble) answers the spread
        it was taught.
        """
        # one config: the same radial-basis centres in every member, so one expansion serves all
        expansions = self.members[0].expansions(g, lg)
        if len(self.members) == 1 and self.config.spread_head:
            return self.members[0].forward_with_spread(g, lg, expansions)
        preds = torch.stack([m(g, lg, expansions) for m in self.members])  # (K, B)
        if len(self.members) == 1:
            return preds[0], None
        return preds.mean(0), preds.std(0)
