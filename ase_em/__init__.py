"""ase-em: migration barriers of ion hops from a graph network, in milliseconds."""

from __future__ import annotations

__version__ = "0.1.0"

from ase_em.errors import (  # noqa: E402
    AseEmError,
    DataFileError,
    EndpointMismatchError,
    ImplausibleHopError,
    IonIndexError,
    ModelLoadError,
    NoHopError,
    StructureFileError,
    UnsupportedElementError,
)
from ase_em.hop import Hop  # noqa: E402


def __getattr__(name: str):
    """Import the torch-heavy parts on first use, keeping ``import ase_em`` light."""
    if name == "EmPredictor":
        from ase_em.predictor import EmPredictor

        return EmPredictor
    if name == "finetune":  # issue 4; the module ase_em.finetune is callable too
        from ase_em.finetune import finetune

        return finetune
    raise AttributeError(f"module 'ase_em' has no attribute {name!r}")


__all__ = [
    "AseEmError",
    "DataFileError",
    "EmPredictor",
    "EndpointMismatchError",
    "Hop",
    "ImplausibleHopError",
    "IonIndexError",
    "ModelLoadError",
    "NoHopError",
    "StructureFileError",
    "UnsupportedElementError",
    "__version__",
    "finetune",
]
