"""ase-em: migration barriers of ion hops from a graph network, in milliseconds."""

from __future__ import annotations

import sys as _sys  # issue 6, see below

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

# --- issue 6: ASE and pymatgen adapters (lazy) ---
# MigrationGraph.with_em_predictor is attached by importing ase_em.migration_graph. Do it
# here only if pymatgen-analysis-diffusion is already loaded (then it costs ~30 ms); else
# `import ase_em.migration_graph` attaches it, so `import ase_em` never pulls in pymatgen (~3 s).
if "pymatgen.analysis.diffusion.neb.full_path_mapper" in _sys.modules:
    import ase_em.migration_graph  # noqa: E402, F401

_ADAPTERS = {
    "EmCalculator": "ase_em.calculator",
    "predict_neb": "ase_em.calculator",
    "label_migration_graph": "ase_em.migration_graph",
    "migration_graph_with_em": "ase_em.migration_graph",
    "MigrationBarrierAnalyzer": "ase_em.analysis",
}
# --- end issue 6 ---


def __getattr__(name: str):
    """Import the torch-heavy parts on first use, keeping ``import ase_em`` light."""
    if name == "EmPredictor":
        from ase_em.predictor import EmPredictor

        return EmPredictor
    if name == "finetune":  # issue 4; the module ase_em.finetune is callable too
        from ase_em.finetune import finetune

        return finetune
    if name in ("refine", "refine_many"):  # the package ase_em.refine is callable too
        import ase_em.refine as _refine

        return _refine if name == "refine" else _refine.refine_many
    if name == "screen":  # the package ase_em.screen is callable too: ase_em.screen(inputs, ion, db)
        import ase_em.screen as _screen

        return _screen
    if name in _ADAPTERS:  # issue 6
        import importlib

        return getattr(importlib.import_module(_ADAPTERS[name]), name)
    raise AttributeError(f"module 'ase_em' has no attribute {name!r}")


__all__ = [
    "AseEmError",
    "DataFileError",
    "EmCalculator",
    "EmPredictor",
    "EndpointMismatchError",
    "Hop",
    "ImplausibleHopError",
    "IonIndexError",
    "MigrationBarrierAnalyzer",
    "ModelLoadError",
    "NoHopError",
    "StructureFileError",
    "UnsupportedElementError",
    "__version__",
    "finetune",
    "label_migration_graph",
    "migration_graph_with_em",
    "predict_neb",
    "screen",
    "refine",
    "refine_many",
]
