"""EmPredictor: hops in, migration barriers (eV) and their uncertainty out."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ase_em.band import build_band
from ase_em.graph import BandGraph, build_graph, check_elements, collate
from ase_em.hop import Hop, as_hop
from ase_em.pretrained import LoadedModel, load_model
from ase_em.uncertainty import error_bar


@dataclass(frozen=True)
class EmResult:
    """A predicted barrier.

    Attributes:
        em: migration barrier (eV).
        em_std: uncertainty (eV): the ensemble members' spread, calibrated on cross-validation
            when the model card holds calibration parameters (see :mod:`ase_em.uncertainty`);
            None for a single model.
        hop: the hop it belongs to.
    """

    em: float
    em_std: float | None
    hop: Hop


def determine_device(device: str | None = None) -> torch.device:
    """The argument first, then ``ASE_EM_DEVICE``, then CUDA if present, else CPU."""
    choice = device or os.environ.get("ASE_EM_DEVICE")
    if choice:
        return torch.device(choice)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class EmPredictor:
    """Predicts migration barriers with a trained model.

    Build it with :meth:`from_pretrained`; the graph settings come from the model card.

    Args:
        model: a loaded model.
        device: torch device (see :func:`determine_device`).
        batch_size: hops per forward pass.
    """

    def __init__(self, model: LoadedModel, *, device: str | None = None, batch_size: int = 32) -> None:
        """Wrap a loaded model."""
        self.model = model
        self.device = determine_device(device)
        self.batch_size = batch_size
        self.model.ensemble.to(self.device)
        self.uncertainty = model.card.get("uncertainty")  # calibration of em_std, if any

    @classmethod
    def from_pretrained(
        cls, name_or_dir: str | Path | None = None, *, device: str | None = None, batch_size: int = 32
    ) -> EmPredictor:
        """Load a shipped model by name, or a model directory (default: the shipped default).

        Args:
            name_or_dir: shipped model name or directory with model.pt and card.json.
            device: torch device.
            batch_size: hops per forward pass.

        Returns:
            The predictor.
        """
        return cls(load_model(name_or_dir), device=device, batch_size=batch_size)

    @property
    def name(self) -> str:
        """Model name from its card."""
        return str(self.model.card.get("name", self.model.path.name))

    @property
    def card(self) -> dict[str, Any]:
        """The model card."""
        return self.model.card

    def graph(self, hop: Hop) -> BandGraph:
        """The model's input graph of one hop."""
        check_elements((hop.ion, *hop.host_symbols), hop.name or "hop")
        return build_graph(build_band(hop), self.model.graph_config)

    def predict_one(self, hop: Any) -> EmResult:
        """Barrier of one hop (any form :func:`ase_em.hop.as_hop` accepts)."""
        return self.predict([hop])[0]

    @torch.no_grad()
    def predict(self, hops: Iterable[Any] | Any, *, progress: bool = False) -> list[EmResult]:
        """Barriers of many hops, batched.

        Args:
            hops: hops, or anything :func:`ase_em.hop.as_hop` accepts (a single Hop,
                band5 Atoms, record dict or (initial, final) tuple is treated as one hop).
            progress: show a progress bar.

        Returns:
            One result per hop, in order.
        """
        if isinstance(hops, (Hop, dict, tuple)) or type(hops).__name__ in ("Atoms", "MigrationHop"):
            hops = [hops]
        hop_list = [as_hop(h) for h in hops]
        from tqdm import tqdm

        results: list[EmResult] = []
        starts = range(0, len(hop_list), self.batch_size)
        for i in tqdm(starts, desc="predict", unit="batch", disable=not progress or None):
            chunk = hop_list[i : i + self.batch_size]
            g, lg = collate([self.graph(h) for h in chunk])
            em, spread = self.model.ensemble(g.to(self.device), lg.to(self.device))
            em = em.detach().cpu().numpy()
            std = None if spread is None else error_bar(em, spread.detach().cpu().numpy(), self.uncertainty)
            for k, hop in enumerate(chunk):
                results.append(EmResult(float(em[k]), None if std is None else float(std[k]), hop))
        return results
