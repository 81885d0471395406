"""Deprecated: the names this module held before the package was split into stages.

Scripts written for ase-em 0.2 import, for example, ``hop_from_migration_hop`` from here.
They keep working, with a ``DeprecationWarning`` that names the new home; new code imports
from there (``ase_em.hops``, ``ase_em.crystals``). This alias will be removed in a later release.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

# old name -> module that holds it now
_MOVED = {
    "hop_from_migration_hop": "ase_em.hops.migration_hop",
    "MissingIonError": "ase_em.errors",
    "to_structure": "ase_em.crystals.structure",
    "check_ion": "ase_em.crystals.structure",
    "label_migration_graph": "ase_em.crystals.labelling",
    "set_path_costs": "ase_em.crystals.labelling",
    "migration_graph_with_em": "ase_em.crystals.labelling",
    "edge_table": "ase_em.crystals.labelling",
}

__all__ = sorted(_MOVED)


def __getattr__(name: str) -> Any:
    """The moved name from its new module, with a DeprecationWarning."""
    if name not in _MOVED:
        raise AttributeError(f"module 'ase_em.migration_graph' has no attribute {name!r}")
    home = _MOVED[name]
    warnings.warn(
        f"ase_em.migration_graph.{name} moved to {home}.{name}; import it from there "
        "(ase_em.migration_graph will be removed)",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(home), name)
