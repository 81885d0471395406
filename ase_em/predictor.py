"""EmPredictor: hops in, migration barriers (eV) and their uncertainty out."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ase_em._runtime.memory import keep_freed_memory
from ase_em.errors import AseEmError
from ase_em.hops import Hop, as_hop
from ase_em.model.band import build_band
from ase_em.model.domain import ModelDomain, domain_flags
from ase_em.model.graph import BandGraph, build_graph, check_elements, collate
from ase_em.model.layers import compiled_updates
from ase_em.model.trees import TreeStage
from ase_em.model.uncertainty import error_bar
from ase_em.model.weights import LoadedModel, load_model

logger = logging.getLogger(__name__)


ErrorMode = Literal["raise", "skip"]


@dataclass(frozen=True, repr=False)
class EmResult:
    """A predicted barrier, with the hop's standing against the model's domain.

    Attributes:
        em: migration barrier (eV); NaN for a hop that could not be predicted (``error``).
        em_std: uncertainty (eV): the ensemble members' spread, calibrated on cross-validation
            when the model card holds calibration parameters (see :mod:`ase_em.model.uncertainty`);
            None for a single model or a failed hop.
        hop: the hop it belongs to; None when the input was not a valid hop.
        flags: why the hop lies outside the model's domain (:data:`ase_em.model.domain.FLAGS`,
            e.g. ``("long_hop", "far_from_train")``); empty inside it.
        reasons: one human sentence per flag, same order.
        train_distance: the hop's descriptor distance to the training hops (see
            :mod:`ase_em.model.domain`); None without a domain file or for a failed hop.
        error: why the input could not be predicted, starting with its index
            ("hop 3: ..."), only with ``errors="skip"``; None for a prediction.
    """

    em: float
    em_std: float | None
    hop: Hop | None
    flags: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    train_distance: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether this is a prediction (not a failed input)."""
        return self.error is None

    @property
    def in_domain(self) -> bool:
        """A prediction without any flag."""
        return self.ok and not self.flags

    def warning(self) -> str | None:
        """One line naming every flag with its reason, or None when there is none."""
        if not self.flags:
            return None
        return "outside the model's domain: " + "; ".join(
            f"{f} ({r})" for f, r in zip(self.flags, self.reasons)
        )

    def __repr__(self) -> str:
        """One line: Em, its uncertainty, flags and the hop (never the arrays)."""
        if self.error is not None:
            return f"EmResult(error={self.error!r})"
        std = "" if self.em_std is None else f" +/- {self.em_std:.3f}"
        hop = "" if self.hop is None else f", hop={self.hop.name or self.hop.ion!r} ({self.hop.length:.2f} A)"
        return f"EmResult(em={self.em:.3f}{std} eV, flags={list(self.flags)}{hop})"


# A compiled forward (torch.compile, inductor, of the edge-gated layers:
# ase_em.model.layers.compiled_updates) gives the same barriers (to 1e-6 eV) about 1.6x faster
# on CPU, but compiling costs about 24 s the first time on a machine and 5 s in a later
# process (docs/benchmarks.md): it pays only for long runs, so by default it starts after
# this many hops.
COMPILE_AFTER_HOPS = 1000

# Hops per forward pass. On a CPU small batches are faster per hop: a forward's cost is
# element-wise passes over the (triplets, features) tensors, and those of 4 bands (about
# 1-3 MB each) stay in the core's cache where those of 32 do not: on one thread 38 ms a hop at
# 4 against 50 ms at 32 on the 555 TRAIN hops, the same barriers to 5e-7 eV (docs/benchmarks.md).
# A GPU wants large batches.
CPU_BATCH_SIZE = 4
GPU_BATCH_SIZE = 32

CompileMode = Literal["auto", "always", "never"]


def determine_compile(mode: str | None = None) -> CompileMode:
    """The argument first, then ``ASE_EM_COMPILE``, then "auto".

    "auto": compile once a predictor has predicted :data:`COMPILE_AFTER_HOPS` hops (or is
    asked for that many at once); "always": from the first batch; "never": eager only.

    Raises:
        AseEmError: another value.
    """
    choice = mode or os.environ.get("ASE_EM_COMPILE") or "auto"
    if choice not in ("auto", "always", "never"):
        raise AseEmError(f"compile mode must be auto, always or never (got {choice!r}; ASE_EM_COMPILE)")
    return choice  # type: ignore[return-value]


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
        batch_size: hops per forward pass (default :data:`CPU_BATCH_SIZE` on a CPU,
            :data:`GPU_BATCH_SIZE` on a GPU).
        compile: "auto", "always" or "never" (see :func:`determine_compile`); a compiled
            forward that fails (no C++ compiler, say) falls back to eager with a warning.
    """

    def __init__(
        self,
        model: LoadedModel,
        *,
        device: str | None = None,
        batch_size: int | None = None,
        compile: str | None = None,
    ) -> None:
        """Wrap a loaded model."""
        keep_freed_memory()  # the forward's large tensors reuse freed blocks (ase_em._runtime.memory)
        self.model = model
        self.device = determine_device(device)
        if batch_size is None:
            batch_size = CPU_BATCH_SIZE if self.device.type == "cpu" else GPU_BATCH_SIZE
        if batch_size < 1:
            raise AseEmError(f"batch_size must be at least 1 (got {batch_size})")
        self.batch_size = int(batch_size)
        self.compile = determine_compile(compile)
        self._compiled: bool | None = None  # True once a compiled forward ran; False after a failure
        self.n_predicted = 0  # hops predicted so far (the "auto" rule counts them)
        self.model.ensemble.to(self.device)
        self.uncertainty = model.card.get("uncertainty")  # calibration of em_std, if any
        self.domain = ModelDomain.load(model.path)  # None: only data-free domain checks
        self.trees = TreeStage.load(model.path)  # None: the network alone (alignn-em-v3 has trees)

    @classmethod
    def from_pretrained(
        cls,
        name_or_dir: str | Path | None = None,
        *,
        device: str | None = None,
        batch_size: int | None = None,
        compile: str | None = None,
    ) -> EmPredictor:
        """Load a shipped model by name, or a model directory (default: the shipped default).

        Args:
            name_or_dir: shipped model name or directory with model.pt and card.json.
            device: torch device.
            batch_size: hops per forward pass (default: by device, see :class:`EmPredictor`).
            compile: "auto", "always" or "never" (see :func:`determine_compile`).

        Returns:
            The predictor.
        """
        return cls(load_model(name_or_dir), device=device, batch_size=batch_size, compile=compile)

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
        """Barrier of one hop (any form :func:`ase_em.hops.hop.as_hop` accepts).

        Raises:
            AseEmError: the input is not a valid hop (the message without an index).
        """
        return self._predict([hop], progress=False, errors="raise", indexed=False)[0]

    def predict(
        self, hops: Iterable[Any] | Any, *, progress: bool = False, errors: ErrorMode = "raise"
    ) -> list[EmResult]:
        """Barriers of many hops, batched, each with its domain flags.

        Args:
            hops: hops, or anything :func:`ase_em.hops.hop.as_hop` accepts (a single Hop,
                band5 Atoms, record dict or (initial, final) tuple is treated as one hop).
            progress: show a progress bar.
            errors: what a bad input does. "raise": raise its error, the message starting
                with its index ("hop 3: ..."), before any prediction. "skip": that input's
                result has ``em = nan``, ``hop = None`` and the indexed message in
                ``error``; every other input is predicted as usual.

        Returns:
            One result per input, in order.

        Raises:
            AseEmError: with ``errors="raise"``, the first bad input (same error type).
            TypeError: with ``errors="raise"``, an input of a type that is no hop.
        """
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
        single = isinstance(hops, (Hop, dict, tuple)) or type(hops).__name__ in ("Atoms", "MigrationHop")
        return self._predict([hops] if single else list(hops), progress=progress, errors=errors, indexed=True)

    def _forward(self, g: Any, lg: Any, n_asked: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The ensemble on one batch, compiled when the compile mode says so."""
        wanted = self.compile == "always" or (
            self.compile == "auto" and max(self.n_predicted, n_asked) >= COMPILE_AFTER_HOPS
        )
        if wanted and self._compiled is not False:
            if self._compiled is None:
                logger.info("compiling the model's layers for this process (once; 5-25 s)")
            try:
                with compiled_updates():
                    out = self.model.ensemble(g, lg)
                self._compiled = True
                return out
            except Exception as exc:  # inductor needs a C++ compiler and can fail in many ways
                name = type(exc).__name__
                logger.warning("compiled model failed (%s: %s); predicting without compiling", name, exc)
                self._compiled = False
        return self.model.ensemble(g, lg)

    @torch.inference_mode()
    def _predict(
        self, items: list[Any], *, progress: bool, errors: ErrorMode, indexed: bool
    ) -> list[EmResult]:
        from tqdm import tqdm

        results: list[EmResult | None] = [None] * len(items)
        good: list[tuple[int, Hop]] = []  # (input index, hop); graphs are built per batch
        for i, item in enumerate(items):
            try:
                hop = as_hop(item)
                check_elements((hop.ion, *hop.host_symbols), hop.name or "hop")
                good.append((i, hop))
            except (AseEmError, TypeError) as exc:
                message = f"hop {i}: {exc}" if indexed else str(exc)
                if errors == "skip":
                    results[i] = EmResult(float("nan"), None, None, error=message)
                    continue
                if not indexed:
                    raise
                raise _with_message(exc, message) from exc
        starts = range(0, len(good), self.batch_size)
        ems, spreads = [np.zeros(0)], [np.zeros(0)]  # per batch; a one-member model has no spread
        for s in tqdm(starts, desc="predict", unit="batch", disable=not progress or None):
            chunk = good[s : s + self.batch_size]
            g, lg = collate([self.graph(hop) for _, hop in chunk])
            em, spread = self._forward(g.to(self.device), lg.to(self.device), len(good))
            self.n_predicted += len(chunk)
            ems.append(em.detach().cpu().numpy())
            spreads.append(None if spread is None else spread.detach().cpu().numpy())
        em_all = np.concatenate(ems).astype(float)
        spread_all = None if any(x is None for x in spreads) else np.concatenate(spreads)
        if self.trees is not None and good:  # the mean of the network's and the tree stage's barrier;
            # the trees in one call: each call walks all 500 trees, whatever the number of rows
            em_all = (em_all + self.trees.predict(self.trees.features([hop for _, hop in good]))) / 2
        std = None if spread_all is None else error_bar(em_all, spread_all, self.uncertainty)
        for k, (i, hop) in enumerate(good):
            check = domain_flags(hop, self.domain)
            results[i] = EmResult(
                float(em_all[k]),
                None if std is None else float(std[k]),
                hop,
                flags=check.flags,
                reasons=check.reasons,
                train_distance=check.distance,
            )
            if check.flags:
                logger.info("%s: %s", hop.name or f"hop {i}", results[i].warning())
        return [r for r in results if r is not None]


def _with_message(exc: Exception, message: str) -> Exception:
    """The same kind of error with another message (the base type if it cannot be rebuilt)."""
    try:
        return type(exc)(message)
    except TypeError:  # an error type whose constructor takes other arguments
        return AseEmError(message) if isinstance(exc, AseEmError) else TypeError(message)
