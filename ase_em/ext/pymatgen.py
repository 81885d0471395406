"""pymatgen-analysis-diffusion adapter: ``MigrationGraph.with_em_predictor``.

The one place ase-em extends pymatgen-analysis-diffusion. Importing this module attaches
the classmethod ``MigrationGraph.with_em_predictor`` (users ask for it by that name, next
to pymatgen's own ``MigrationGraph.with_distance``). ``import ase_em`` registers a
post-import hook (wrapt) that imports this module as soon as pymatgen-analysis-diffusion's
``full_path_mapper`` is imported, in either order, keeping ``import ase_em`` itself free of
pymatgen (about 0.2 s instead of 3.4 s); ``docs/developer.md`` says why it is done so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph

from ase_em.config import NetworkOptions

if TYPE_CHECKING:
    from ase_em.crystals.structure import StructureInput
    from ase_em.predictor import EmPredictor

__all__ = ["with_em_predictor"]


def with_em_predictor(
    cls: type[MigrationGraph],
    structure: StructureInput,
    migrating_specie: str,
    max_distance: float = NetworkOptions.max_distance,
    predictor: EmPredictor | None = None,
    **keywords: Any,
) -> MigrationGraph:
    """``MigrationGraph.with_distance`` labelled with Em (one prediction per unique hop).

    An ordered structure goes through
    :func:`ase_em.crystals.labelling.migration_graph_with_em`; one with partial occupancies
    is ordered ``n_orderings`` times (seed ``seed``) and its graph carries the median over
    the orderings (:func:`ase_em.crystals.disordered.disordered_network`).

    Args:
        cls: ``MigrationGraph`` (this is a classmethod).
        structure: the crystal (Structure, Atoms or a structure file).
        migrating_specie: element of the mobile ion, e.g. "Li".
        max_distance: longest hop (A), as in ``MigrationGraph.with_distance``.
        predictor: the predictor (default: the shipped model).
        **keywords: other fields of :class:`ase_em.config.NetworkOptions` (``empty_sites``,
            ``n_orderings``, ``seed``, ...), or ``options=`` a NetworkOptions.

    Returns:
        The labelled graph (edges carry ``em``, ``em_std`` in eV, ``em_flags``).

    Raises:
        ase_em.errors.MissingIonError: the ion is not in the structure, or no hop is that short.
        ase_em.errors.StructureFileError: the structure file is unreadable.
    """
    # imported here: the hook that imports this module fires while full_path_mapper is being
    # imported, possibly from inside ase_em.crystals itself
    from ase_em.crystals.disordered import disordered_input, disordered_network
    from ase_em.crystals.labelling import migration_graph_with_em

    opts = NetworkOptions.build(keywords.pop("options", None), max_distance=max_distance, **keywords)
    average = disordered_input(structure)
    if average is not None:
        return disordered_network(average, migrating_specie, predictor=predictor, options=opts).graph
    return migration_graph_with_em(structure, migrating_specie, predictor=predictor, options=opts)


MigrationGraph.with_em_predictor = classmethod(with_em_predictor)
