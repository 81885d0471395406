"""ase-em: migration barriers of ion hops from a graph network, in milliseconds."""

from __future__ import annotations

import wrapt as _wrapt

__version__ = "0.1.0"

from ase_em.errors import (  # noqa: E402
    AseEmError,
    BlockedPathError,
    DataFileError,
    DisorderedStructureError,
    EndpointMismatchError,
    ImplausibleHopError,
    IonIndexError,
    ModelLoadError,
    NoHopError,
    SpeciesError,
    StructureFileError,
    UnsupportedElementError,
)
from ase_em.hop import Hop  # noqa: E402

# MigrationGraph.with_em_predictor is attached by importing ase_em.migration_graph. A
# post-import hook (wrapt) imports it as soon as pymatgen-analysis-diffusion's
# full_path_mapper is imported (at once if it already is), whatever the import order,
# while `import ase_em` itself never pulls in pymatgen (~3 s).


def _attach_migration_graph(_module: object) -> None:
    """Post-import hook of full_path_mapper: import ase_em.migration_graph (it attaches)."""
    import importlib

    importlib.import_module("ase_em.migration_graph")  # a no-op while it is being imported


_wrapt.register_post_import_hook(_attach_migration_graph, "pymatgen.analysis.diffusion.neb.full_path_mapper")

_ADAPTERS = {
    "EmCalculator": "ase_em.calculator",
    "predict_neb": "ase_em.calculator",
    "label_migration_graph": "ase_em.migration_graph",
    "migration_graph_with_em": "ase_em.migration_graph",
    "MigrationBarrierAnalyzer": "ase_em.analysis",
}


def __getattr__(name: str):
    """Import the torch-heavy parts on first use, keeping ``import ase_em`` light."""
    if name == "EmPredictor":
        from ase_em.predictor import EmPredictor

        return EmPredictor
    if name == "finetune":  # the module ase_em.finetune is callable too
        from ase_em.finetune import finetune

        return finetune
    if name in ("refine", "refine_many"):  # the package ase_em.refine is callable too
        import ase_em.refine as _refine

        return _refine if name == "refine" else _refine.refine_many
    if name == "screen":  # the package ase_em.screen is callable too: ase_em.screen(inputs, ion, db)
        import ase_em.screen as _screen

        return _screen
    if name in _ADAPTERS:
        import importlib

        return getattr(importlib.import_module(_ADAPTERS[name]), name)
    raise AttributeError(f"module 'ase_em' has no attribute {name!r}")


__all__ = [
    "AseEmError",
    "BlockedPathError",
    "DataFileError",
    "DisorderedStructureError",
    "EmCalculator",
    "EmPredictor",
    "EndpointMismatchError",
    "Hop",
    "ImplausibleHopError",
    "IonIndexError",
    "MigrationBarrierAnalyzer",
    "ModelLoadError",
    "NoHopError",
    "SpeciesError",
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
