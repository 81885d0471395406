"""Crystal structures in: any structure input -> one checked, ordered pymatgen ``Structure``.

:func:`to_structure` reads files and converts ASE ``Atoms``, applying every reader's checks
(:mod:`ase_em.hops.checks`); :func:`check_ion` checks that the mobile ion is there and
:func:`check_host` that there is a host framework around it.

Every structure file goes through :func:`read_structure_file` (partial occupancies kept),
which reads what pymatgen's ``Structure.from_file`` reads, with these CIF quirks handled:

* occupancies within ``checks.OCCUPANCY_TOLERANCE`` (0.01) of 1 (refinement rounding,
  0.9999 or 1.0001) are full; a site above 1 + that is refused naming the site and value
  (pymatgen's own message, "Invalid CIF file with no structures!", names neither);
* vacancy type symbols (``Va``, ``Vac``, ``Vacancy``, as Rietveld programs write them; pymatgen
  reads ``Va`` as vanadium) are dropped, so they become the empty fraction of their site;
* a CIF with several data blocks holding atoms (a database export) is read one block at a
  time (``block=NAME``); without a name it is refused with the list of blocks
  (:func:`ase_em.crystals.cif_text.cif_blocks`);
* a serialised pymatgen-analysis-diffusion ``MigrationGraph`` (JSON) is recognised: its
  structure is used, unless it holds candidate ion sites too close to be filled together
  (the insertion convention, ``vac_mode=False``), which is refused in one sentence.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from pymatgen.core import Element, Structure

from ase_em.crystals.cif_text import ATOM_SITE_KEYS, cif_blocks
from ase_em.errors import MissingIonError, StructureFileError
from ase_em.hops import checks

__all__ = ["check_host", "check_ion", "cif_blocks", "read_structure_file", "to_structure"]

if TYPE_CHECKING:
    from ase import Atoms

logger = logging.getLogger(__name__)

StructureInput = Union[Structure, "Atoms", str, os.PathLike]


def to_structure(structure: StructureInput, *, block: str | None = None) -> Structure:
    """A pymatgen Structure from a Structure, ASE Atoms or structure file (CIF, POSCAR, ...).

    Args:
        structure: the structure or its path (read by :func:`read_structure_file`).
        block: the data block of a CIF file with several (see :func:`cif_blocks`).

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
        structure = read_structure_file(path, block=block)
        label = path if block is None else f"{path}@block={block}"
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


def check_host(structure: Structure, ion: str, label: str | None = None) -> None:
    """Raise MissingIonError if every site holds only ``ion``: no host framework to hop through.

    A file of ion sites alone (GEMDAT's site files, a lone Li in a box) has no host; the
    model was trained on hops through a framework and its answer would mean nothing.

    Args:
        structure: the structure (partial occupancies allowed).
        ion: element of the mobile ion.
        label: the file it came from, for the message.

    Raises:
        MissingIonError: "only Li atoms, no host framework".
    """
    if all({getattr(sp, "symbol", str(sp)) for sp in site.species} <= {ion} for site in structure):
        where = structure.composition.reduced_formula
        where = f"{label} ({where})" if label else where
        raise MissingIonError(
            f"{where}: only {ion} atoms ({len(structure)} sites), no host framework: a file of "
            f"{ion} sites, not a crystal; give the whole structure"
        )


# ---------------------------------------------------------------------- files

VACANCY_SYMBOLS = ("va", "vac", "vacancy")  # type symbols for an empty fraction, lower case
_VACANCY_LABEL = re.compile(r"^(va|vac|vacancy)(\d|_|$)", re.IGNORECASE)
_UNCERTAINTY = re.compile(r"\(\d+\)$")


def read_structure_file(path: str | os.PathLike, *, block: str | None = None) -> Structure:
    """A pymatgen Structure from a structure file, partial occupancies kept (module docstring).

    Args:
        path: any file ``Structure.from_file`` reads (CIF, POSCAR, pymatgen JSON, ...), or a
            serialised MigrationGraph (JSON).
        block: the data block of a CIF file with several.

    Returns:
        The structure, occupancies within ``checks.OCCUPANCY_TOLERANCE`` of 1 made 1.

    Raises:
        StructureFileError: missing or unreadable file, no atoms, a site occupied above 1,
            a multi-block CIF without ``block`` (listing the blocks) or an unknown block,
            a MigrationGraph whose candidate sites cannot all be filled.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise StructureFileError(f"{path}: no such file")
    is_cif = path.lower().endswith((".cif", ".mcif"))
    if block is not None and not is_cif:
        raise StructureFileError(f"{path}: not a CIF file; a data block (--block {block}) is for CIFs")
    with warnings.catch_warnings(record=True) as caught:  # parser warnings: logged if it reads
        warnings.simplefilter("always")
        if is_cif:
            structure = _read_cif(path, block)
        elif path.lower().endswith(".json") and (graph := _migration_graph_dict(path)) is not None:
            structure = _migration_graph_structure(path, graph)
        else:
            try:
                structure = Structure.from_file(path)
            except Exception as exc:  # pymatgen raises many types for unreadable files
                why = str(exc).strip() or f"the file is malformed ({type(exc).__name__})"
                raise StructureFileError(f"{path}: cannot read a structure: {why}") from None
    for w in caught:
        if "Species occupancies sum to more than 1" not in str(w.message):  # scaled: within tolerance
            logger.info("%s: %s", path, w.message)
    if len(structure) == 0:
        raise StructureFileError(f"{path}: holds no atoms")
    return _round_occupancies(structure)


def _read_cif(path: str, block: str | None) -> Structure:
    """One data block of a CIF: vacancy symbols dropped, occupancies checked, then pymatgen."""
    from pymatgen.io.cif import CifFile, CifParser

    try:
        cif = CifFile.from_file(path)
    except Exception as exc:  # noqa: BLE001 - pymatgen raises many types for unreadable files
        why = str(exc).strip() or "malformed CIF"
        raise StructureFileError(f"{path}: cannot read a structure: {why}") from None
    with_atoms = {name: b for name, b in cif.data.items()
                  if any(k.lower() in ATOM_SITE_KEYS for k in b.data)}
    if not with_atoms:
        raise StructureFileError(f"{path}: cannot read a structure: no data block lists atom sites")
    if block is None:
        if len(with_atoms) > 1:
            raise StructureFileError(
                f"{path}: {len(with_atoms)} structures (data blocks {', '.join(with_atoms)}); "
                "choose one with --block NAME (screen reads each block as its own row)"
            )
        block = next(iter(with_atoms))
    if block not in with_atoms:
        raise StructureFileError(
            f"{path}: no data block {block!r} with atom sites (blocks: {', '.join(with_atoms)})"
        )
    where = path if len(with_atoms) == 1 else f"{path}@block={block}"
    data = with_atoms[block]
    _drop_vacancies(data, where)
    _check_cif_occupancies(data, where)
    text = str(CifFile({block: data}))
    try:
        parser = CifParser.from_str(text, occupancy_tolerance=1.0 + checks.OCCUPANCY_TOLERANCE)
        structures = parser.parse_structures(primitive=False, on_error="raise")
    except Exception as exc:  # noqa: BLE001 - pymatgen raises many types for unreadable files
        why = str(exc).strip() or f"the file is malformed ({type(exc).__name__})"
        raise StructureFileError(f"{where}: cannot read a structure: {why}") from None
    if not structures:
        raise StructureFileError(f"{where}: cannot read a structure from its atom sites")
    return structures[0]


def _loop_of(data: Any, key: str) -> list[str] | None:
    return next((loop for loop in data.loops if key in loop), None)


def _drop_vacancies(data: Any, where: str) -> None:
    """Remove atom-site rows whose type symbol (or, without one, label) names a vacancy."""
    keys = {k.lower(): k for k in data.data}
    type_key, label_key = keys.get("_atom_site_type_symbol"), keys.get("_atom_site_label")
    key = type_key or label_key
    if key is None:
        return
    values = data.data[key]
    values = values if isinstance(values, list) else [values]
    if type_key is not None:
        drop = [i for i, v in enumerate(values) if v.strip().lower() in VACANCY_SYMBOLS]
    else:
        drop = [i for i, v in enumerate(values) if _VACANCY_LABEL.match(v.strip())]
    if not drop:
        return
    loop = _loop_of(data, key) or [key]
    labels = data.data.get(label_key, values) if label_key else values
    logger.info("%s: site(s) %s are vacancies (%s): read as empty fractions of their sites",
                where, ", ".join(labels[i] for i in drop), values[drop[0]])
    for k in loop:
        column = data.data[k]
        if isinstance(column, list):
            data.data[k] = [v for i, v in enumerate(column) if i not in drop]
    if not data.data[key]:
        raise StructureFileError(f"{where}: every atom site is a vacancy ({values[drop[0]]})")


def _number(text: str) -> float | None:
    try:
        return float(_UNCERTAINTY.sub("", text.strip()))
    except ValueError:
        return None


def _check_cif_occupancies(data: Any, where: str) -> None:
    """Refuse a site occupied above 1 + tolerance, naming it (rows at one position summed)."""
    keys = {k.lower(): k for k in data.data}
    occ_key = keys.get("_atom_site_occupancy")
    if occ_key is None or not isinstance(data.data[occ_key], list):
        return
    occ = [_number(v) for v in data.data[occ_key]]
    labels = data.data.get(keys.get("_atom_site_label", ""), [str(i) for i in range(len(occ))])
    xyz = [data.data.get(keys.get(f"_atom_site_fract_{c}", ""), [""] * len(occ)) for c in "xyz"]
    at: dict[tuple, list[int]] = {}
    for i in range(len(occ)):
        at.setdefault(tuple(_number(col[i]) if i < len(col) else None for col in xyz), []).append(i)
    limit = 1.0 + checks.OCCUPANCY_TOLERANCE
    for rows in at.values():
        total = sum(occ[i] or 0.0 for i in rows)
        if total > limit:
            what = ", ".join(f"{labels[i]} {data.data[occ_key][i]}" for i in rows)
            raise StructureFileError(
                f"{where}: site {labels[rows[0]]} is occupied {total:g} times ({what}), more than 1 "
                f"(values within {checks.OCCUPANCY_TOLERANCE:g} of 1 are read as 1)"
            )


def _round_occupancies(structure: Structure) -> Structure:
    """Sites whose occupancies sum to within the tolerance of 1 made fully occupied."""
    tol = checks.OCCUPANCY_TOLERANCE
    near = [i for i, site in enumerate(structure)
            if abs(sum(site.species.values()) - 1.0) <= tol and sum(site.species.values()) != 1.0]
    if not near:
        return structure
    structure = structure.copy()
    for i in near:
        site = structure[i]
        total = sum(site.species.values())
        species = {sp: x / total for sp, x in site.species.items()}
        structure.replace(i, species, site.frac_coords, properties=site.properties)
    return structure


def _migration_graph_dict(path: str) -> dict | None:
    """The dict of a serialised MigrationGraph, else None (any other JSON)."""
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError):
        return None
    if isinstance(d, dict) and (d.get("@class") == "MigrationGraph" or {"m_graph", "structure"} <= d.keys()):
        return d
    return None


def closest_ion_pair(structure: Structure, ion: str) -> tuple[int, int, float, float] | None:
    """Two occupied sites of ``ion`` closer than ``checks.MIN_ION_PAIR_RATIO`` of their covalent sum.

    Candidate empty sites (``empty_site`` property, :mod:`ase_em.crystals.empty_sites`) do
    not count: ase-em's own graphs hold them beside the occupied sites.

    Returns:
        ``(i, j, distance in A, ratio)`` of the closest such pair, else None.
    """
    from ase.data import covalent_radii

    from ase_em.hops.migration_hop import is_empty_site  # candidate empty sites are not filled

    el = Element(ion)
    idx = [k for k, site in enumerate(structure) if el in site.species and not is_empty_site(site)]
    if len(idx) < 2:
        return None
    d = structure.lattice.get_all_distances(structure.frac_coords[idx], structure.frac_coords[idx])
    np.fill_diagonal(d, np.inf)
    a, b = np.unravel_index(int(np.argmin(d)), d.shape)
    ratio = float(d[a, b]) / (2 * covalent_radii[el.Z])
    if ratio >= checks.MIN_ION_PAIR_RATIO:
        return None
    return idx[a], idx[b], float(d[a, b]), ratio


def insertion_graph_message(structure: Structure, ion: str, what: str) -> str | None:
    """Why a MigrationGraph whose structure holds candidate sites that exclude each other is refused."""
    pair = closest_ion_pair(structure, ion)
    if pair is None:
        return None
    i, j, dist, ratio = pair
    return (
        f"{what} holds {ion} sites {i} and {j} {dist:.2f} A apart ({ratio:.2f} of their covalent "
        f"radii sum, limit {checks.MIN_ION_PAIR_RATIO}): candidate sites that cannot be filled "
        "together (pymatgen-analysis-diffusion's vac_mode=False: the empty host plus every "
        "candidate site); ase-em predicts vacancy hops between the occupied sites of a crystal "
        "only: give the crystal's own structure (MigrationGraph.with_em_predictor(structure, ...))"
    )


def _migration_graph_structure(path: str, graph: dict) -> Structure:
    """The structure of a serialised MigrationGraph, or a refusal of an insertion graph."""
    try:
        structure = Structure.from_dict(graph["structure"])
        sites = graph["m_graph"]["structure"]["sites"]
        ion = sites[0]["species"][0]["element"]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise StructureFileError(
            f"{path}: a serialized MigrationGraph, not a Structure, and its structure cannot be "
            f"read ({type(exc).__name__}: {exc})"
        ) from None
    vac = graph.get("vac_mode", False)
    why = insertion_graph_message(structure, ion, f"a serialized MigrationGraph (vac_mode={vac}), not a "
                                  "Structure; its structure")
    if why is not None:
        raise StructureFileError(f"{path}: {why}")
    logger.info("%s: a serialised MigrationGraph: its structure (%s) is read",
                path, structure.composition.reduced_formula)
    return structure
