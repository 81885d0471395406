"""ase-em: migration barriers of ion hops from a graph network, in milliseconds.

The public names. ``import ase_em`` stays light (no torch, no pymatgen): the names that
need them are imported on first use (PEP 562 ``__getattr__``). The stages, each importing
only from the ones before it (``docs/developer.md``): :mod:`ase_em.hops` ->
:mod:`ase_em.model` -> :mod:`ase_em.predictor` -> :mod:`ase_em.transport` -> :mod:`ase_em.crystals` ->
:mod:`ase_em.ext`, :mod:`ase_em.screening`, :mod:`ase_em.neb`, :mod:`ase_em.training` ->
:mod:`ase_em.cli`.
"""

from __future__ import annotations

import importlib

import wrapt as _wrapt

from ase_em._version import __version__
from ase_em.errors import (
    AseEmError,
    BlockedPathError,
    DataFileError,
    DisorderedStructureError,
    DisorderError,
    EndpointMismatchError,
    FolderLockedError,
    ImplausibleHopError,
    IonIndexError,
    MissingIonError,
    ModelLoadError,
    NoHopError,
    PotentialError,
    RefineSettingsError,
    ScreenRowError,
    SpeciesError,
    StructureFileError,
    TransportError,
    UnsupportedElementError,
    VacancySupercellError,
)
from ase_em.hops.hop import Hop

# MigrationGraph.with_em_predictor is attached by importing ase_em.ext.pymatgen. A
# post-import hook (wrapt) imports it as soon as pymatgen-analysis-diffusion's
# full_path_mapper is imported (at once if it already is), whatever the import order,
# while `import ase_em` itself never pulls in pymatgen (~3 s). docs/developer.md says why.


def _attach_with_em_predictor(_module: object) -> None:
    """Post-import hook of full_path_mapper: import ase_em.ext.pymatgen (it attaches)."""
    importlib.import_module("ase_em.ext.pymatgen")  # a no-op while it is being imported


_wrapt.register_post_import_hook(
    _attach_with_em_predictor, "pymatgen.analysis.diffusion.neb.full_path_mapper"
)

# name -> module that defines it; imported on first use
_LAZY = {
    "EmPredictor": "ase_em.predictor",
    "EmResult": "ase_em.predictor",
    "NetworkOptions": "ase_em.config",
    "EmCalculator": "ase_em.ext.ase",
    "predict_neb": "ase_em.ext.ase",
    "label_migration_graph": "ase_em.crystals.labelling",
    "migration_graph_with_em": "ase_em.crystals.labelling",
    "MigrationBarrierAnalyzer": "ase_em.crystals.analyzer",
    "RateNetwork": "ase_em.transport",
    "conductivity": "ase_em.transport",
    "finetune": "ase_em.training.finetune",
    "refine": "ase_em.neb",
    "refine_many": "ase_em.neb",
    "RefinedHop": "ase_em.neb",
    "screen": "ase_em.screening",
}


def __getattr__(name: str):
    """Import the torch- and pymatgen-heavy names on first use, keeping ``import ase_em`` light."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ase_em' has no attribute {name!r}")


__all__ = [
    "AseEmError",
    "BlockedPathError",
    "DataFileError",
    "DisorderError",
    "DisorderedStructureError",
    "EndpointMismatchError",
    "FolderLockedError",
    "Hop",
    "ImplausibleHopError",
    "IonIndexError",
    "MissingIonError",
    "ModelLoadError",
    "NoHopError",
    "PotentialError",
    "RefineSettingsError",
    "ScreenRowError",
    "SpeciesError",
    "StructureFileError",
    "TransportError",
    "UnsupportedElementError",
    "VacancySupercellError",
    "__version__",
    *_LAZY,
]
