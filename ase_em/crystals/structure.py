"""Crystal structures in: any structure input -> one checked, ordered pymatgen ``Structure``.

:func:`to_structure` reads files and converts ASE ``Atoms``, applying every reader's checks
(:mod:`ase_em.hops.checks`); :func:`check_ion` checks that the mobile ion is there.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import TYPE_CHECKING, Union

from pymatgen.core import Structure

from ase_em.errors import MissingIonError, StructureFileError
from ase_em.hops import checks

if TYPE_CHECKING:
    from ase import Atoms

logger = logging.getLogger(__name__)

StructureInput = Union[Structure, "Atoms", str, os.PathLike]


def to_structure(structure: StructureInput) -> Structure:
    """A pymatgen Structure from a Structure, ASE Atoms or structure file (CIF, POSCAR, ...).

    Args:
        structure: the structure or its path.

    Every reader's checks apply (:mod:`ase_em.hops.checks`): finite coordinates, ordered sites,
    no overlapping atoms; oxidation states (``Li+``, a CIF's ``Li1+``) are removed.

    Returns:
        An ordered pymatgen Structure of elements (no oxidation states).

    Raises:
        StructureFileError: unreadable file, non-finite coordinates;
            :class:`ase_em.errors.DisorderedStructureError` for partial occupancies.
        ImplausibleHopError: atoms far closer than bonding.
    """
    if isinstance(structure, (str, os.PathLike)):
        path = os.fspath(structure)
        if not os.path.isfile(path):
            raise StructureFileError(f"{path}: no such file")
        with warnings.catch_warnings(record=True) as caught:  # parser warnings: logged if it reads
            warnings.simplefilter("always")
            try:
                structure = Structure.from_file(path)
            except Exception as exc:  # pymatgen raises many types for unreadable files
                why = str(exc).strip() or f"the file is malformed ({type(exc).__name__})"
                raise StructureFileError(f"{path}: cannot read a structure: {why}") from None
        for w in caught:
            logger.warning("%s: %s", path, w.message)
        label = path
    elif isinstance(structure, Structure):
        label = "structure"
    elif type(structure).__name__ == "Atoms":
        from pymatgen.io.ase import AseAtomsAdaptor

        checks.check_ordered(structure, "Atoms")
        structure, label = AseAtomsAdaptor.get_structure(structure), "Atoms"
    else:
        raise TypeError(f"expected a Structure, Atoms or a file path, got {type(structure).__name__}")
    if len(structure) == 0:
        raise StructureFileError(f"{label}: holds no atoms")
    checks.check_ordered(structure, label)
    structure = structure.copy()
    structure.remove_oxidation_states()
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    checks.check_finite(atoms, label)
    checks.check_contacts(atoms, label)
    return structure


def check_ion(structure: Structure, ion: str, label: str | None = None) -> str:
    """Raise MissingIonError if no site of ``structure`` holds element ``ion``.

    Args:
        structure: the structure.
        ion: element symbol, optionally with a charge ("Li", "Li+", "Li1+").
        label: the file it came from, for the message (default: its formula only).

    Returns:
        The element symbol ("Li").

    Raises:
        MissingIonError: no such element in the structure.
        ase_em.errors.SpeciesError: ``ion`` is not an element symbol.
    """
    ion = checks.normalize_species(ion)
    present = sorted({getattr(el, "symbol", str(el)) for el in structure.composition.elements})
    if ion not in present:
        where = structure.composition.reduced_formula
        where = f"{label} ({where})" if label else where
        raise MissingIonError(
            f"{where}: no {ion} in the structure "
            f"(elements: {', '.join(present)})"
        )
    return ion
