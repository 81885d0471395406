"""Any description of an ion hop -> one small, validated :class:`Hop` record.

Accepted inputs: two endpoint structures (ASE ``Atoms``, pymatgen ``Structure`` or a file
ASE reads: POSCAR, CIF, extxyz, ...), NEB images (a list or a multi-frame file; the first
and last frame are the endpoints), a band5 structure, or a record of the em619 JSON
formats (band5 ``atoms`` or ``atoms_ini``/``atoms_fin``).

Every reader applies the checks of :mod:`ase_em.hops.checks` (finite coordinates, ordered
sites, no overlapping atoms, consistent endpoints and frames, the whole straight path);
the element check belongs to the model (:mod:`ase_em.model.graph`).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from ase import Atoms

from ase_em.errors import (
    EndpointMismatchError,
    ImplausibleHopError,
    IonIndexError,
    NoHopError,
    StructureFileError,
)
from ase_em.hops import checks, clearance

if TYPE_CHECKING:
    from pymatgen.core import Structure

logger = logging.getLogger(__name__)

StructureLike = Union[Atoms, "Structure", str, os.PathLike]

N_IMAGES = 5
MIN_HOP_LENGTH = 0.5  # A: below this no atom moves, the endpoints are one structure
MAX_HOP_LENGTH = 10.0  # A: TRAIN's longest hop is 8.95 A
MIN_ATOM_DISTANCE = checks.MIN_ATOM_DISTANCE  # A: closest two atoms may ever come
CELL_TOLERANCE = 0.05  # A: endpoint cells differing by more are strained (warned, see checks)
HALF_CELL_MARGIN = 0.01  # fractional: this close to half a cell, the direction is ambiguous


# True while Hop.in_checked_host builds a hop: its host's own contacts are known clean
_HOST_CHECKED: contextvars.ContextVar[bool] = contextvars.ContextVar("host_checked", default=False)


@dataclass(frozen=True)
class Hop:
    """One migration hop: an ion moving from ``start`` to ``end`` through a fixed host.

    Attributes:
        ion: element symbol of the migrating ion.
        start: (3,) Cartesian start position of the ion (A).
        end: (3,) Cartesian end position (A), the minimum image of the final site seen
            from ``start``, so ``end - start`` is the hop vector.
        host_symbols: (M,) element symbols of the host atoms.
        host_positions: (M, 3) Cartesian host positions (A), from the initial endpoint.
        cell: (3, 3) lattice vectors as rows (A).
        ion_index: index of the ion in the input (in the initial endpoint; 0 for a band).
        name: optional label (file name, record name).
    """

    ion: str
    start: np.ndarray
    end: np.ndarray
    host_symbols: tuple[str, ...]
    host_positions: np.ndarray
    cell: np.ndarray
    ion_index: int = 0
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        """Check the hop is physical (finite, length, interatomic distances, whole path)."""
        object.__setattr__(self, "ion", checks.normalize_species(self.ion))
        _check_plausible(self)

    @classmethod
    def in_checked_host(cls, **fields: Any) -> Hop:
        """A hop whose host is part of a structure that passed :func:`ase_em.hops.checks.contacts_clean`.

        The crystal builders make many hops in one structure (an ordering, a vacancy
        supercell of a primitive cell): the host's own pairs (overlaps, anion pairs) were
        checked once on that structure, so only the ion's two sites are checked against the
        host here (every other check runs as in the constructor). A site that overlaps runs
        the constructor's full checks, so the hop is refused with the same message. Every
        pair of the host is a pair of the checked structure: the hop passes exactly when
        the constructor passes it. ``dataclasses.replace`` on the result checks in full.

        Args:
            fields: the constructor's arguments.
        """
        token = _HOST_CHECKED.set(True)
        try:
            return cls(**fields)
        finally:
            _HOST_CHECKED.reset(token)

    def __repr__(self) -> str:
        """One line: ion, length, host size and name (never the arrays, as ``EmResult``)."""
        name = "" if self.name is None else f", name={self.name!r}"
        return (f"Hop(ion={self.ion!r}, length={self.length:.3f} A, ion_index={self.ion_index}, "
                f"host={len(self.host_symbols)} atoms{name})")

    @functools.cached_property
    def path_clearance(self) -> clearance.PathClearance:
        """Closest approach of the straight path to the host (:func:`ase_em.hops.clearance.path_clearance`).

        Computed once (the check when the hop is made, and the grey-zone flag of the domain
        check, both read it).

        Raises:
            ValueError: the hop has no host atoms.
        """
        return clearance.path_clearance(self)

    @property
    def length(self) -> float:
        """Hop length in A."""
        return float(np.linalg.norm(self.end - self.start))

    @property
    def n_atoms(self) -> int:
        """Number of atoms of the band (five ion images plus the host)."""
        return N_IMAGES + len(self.host_symbols)

    def ion_positions(self) -> np.ndarray:
        """The ion at k/4 of the hop, k = 0..4.

        Returns:
            (5, 3) Cartesian positions (A).
        """
        frac = np.linspace(0.0, 1.0, N_IMAGES)[:, None]  # (5, 1)
        return self.start[None, :] + frac * (self.end - self.start)[None, :]

    # ------------------------------------------------------------------ builders

    @classmethod
    def from_endpoints(
        cls,
        initial: StructureLike,
        final: StructureLike,
        *,
        ion_index: int | None = None,
        name: str | None = None,
    ) -> Hop:
        """Build a hop from its two endpoint structures.

        Args:
            initial: initial endpoint (Atoms, Structure or file path).
            final: final endpoint, the same atoms; listed in another order, they are
                matched to the initial ones by species and position (logged). Its cell
                may be strained up to ``checks.MAX_CELL_STRAIN`` (warned): the band is
                built in the initial cell from fractional coordinates.
            ion_index: index of the migrating ion (in the initial endpoint); by default
                the atom that moves furthest under the minimum-image convention.
            name: optional label.

        Returns:
            The validated hop.

        Raises:
            StructureFileError: a file is missing, unreadable, truncated, or holds
                non-finite coordinates; ``DisorderedStructureError`` for partial occupancies.
            EndpointMismatchError: atom count or elements differ, the atom order cannot be
                recovered, another atom moves more than ``checks.MAX_HOST_DISPLACEMENT``,
                or the cells differ beyond the strain limit.
            NoHopError: no atom moves.
            IonIndexError: ``ion_index`` is negative, out of range or that atom does not move.
            ImplausibleHopError: the hop is too long, atoms overlap, or its straight path is
                blocked (``BlockedPathError``).
        """
        a = to_atoms(initial, role="initial")
        b = to_atoms(final, role="final")
        where = _describe(initial, final)
        if len(a) != len(b):
            raise EndpointMismatchError(
                f"{where}: initial has {len(a)} atoms, final has {len(b)}: not one system"
            )
        checks.check_cells(a, b, where, tolerance=CELL_TOLERANCE)
        b = b[checks.match_endpoints(a, b, where)]  # the same atoms in the initial's order
        sa = a.get_chemical_symbols()
        cell_a = np.asarray(a.cell)
        # final positions from fractional coordinates, in the initial cell (as the reference)
        disp = _minimum_image(b.get_scaled_positions(wrap=False) - a.get_scaled_positions(wrap=False))
        cart = disp @ cell_a  # (N, 3)
        dist = np.linalg.norm(cart, axis=1)  # (N,)
        if ion_index is None:
            k = int(np.argmax(dist))
            if dist[k] < MIN_HOP_LENGTH:
                raise NoHopError(
                    f"{where}: no atom moves more than {MIN_HOP_LENGTH} A (largest: atom {k}, "
                    f"{dist[k]:.3f} A): the endpoints are the same structure"
                )
        else:
            k = _check_index(ion_index, len(a), where)
            if dist[k] < MIN_HOP_LENGTH:
                raise IonIndexError(
                    f"{where}: atom {k} ({sa[k]}) moves only {dist[k]:.3f} A; "
                    f"the migrating ion must move at least {MIN_HOP_LENGTH} A"
                )
        others = np.flatnonzero((dist > checks.MAX_HOST_DISPLACEMENT) & (np.arange(len(a)) != k))
        if others.size:
            moved = ", ".join(f"{int(j)} ({sa[j]}, {dist[j]:.2f} A)" for j in others[:5])
            raise EndpointMismatchError(
                f"{where}: besides the migrating ion (atom {k}, {sa[k]}, {dist[k]:.2f} A), atom(s) "
                f"{moved} move more than {checks.MAX_HOST_DISPLACEMENT} A; a hop moves one ion "
                "(give --ion-index / ion_index if another atom is the ion)"
            )
        if np.any(np.abs(disp[k]) > 0.5 - HALF_CELL_MARGIN):
            # Common in the reference data (about one hop in six): both directions reach
            # the final site. The coordinates as given decide (an exact half stays as it is).
            logger.info(
                "%s: the hop of atom %d spans about half the cell (fractional %s); its "
                "direction is taken from the coordinates as given; a larger supercell "
                "removes the ambiguity",
                where,
                k,
                np.round(disp[k], 3).tolist(),
            )
        start = a.positions[k].copy()
        keep = np.arange(len(a)) != k
        return cls(
            ion=sa[k],
            start=start,
            end=start + cart[k],
            host_symbols=tuple(np.asarray(sa)[keep].tolist()),
            host_positions=a.positions[keep].copy(),
            cell=cell_a.copy(),
            ion_index=k,
            name=name if name is not None else where,
        )

    @classmethod
    def from_images(
        cls,
        images: Sequence[Atoms] | str | os.PathLike,
        *,
        ion_index: int | None = None,
        name: str | None = None,
    ) -> Hop:
        """Build a hop from NEB images (first and last are the endpoints).

        Args:
            images: a list of at least two images (ASE Atoms, pymatgen Structures as
                ``IDPPSolver`` returns them, or structure files), a multi-frame file, or a
                VASP NEB folder of numbered image folders ``00 .. NN``
                (:func:`read_neb_folder`).
            ion_index: index of the migrating ion (default: the atom moving furthest).
            name: optional label.

        Returns:
            The validated hop.
        """
        if isinstance(images, (str, os.PathLike)) and Path(images).is_dir():
            frames = read_neb_folder(images)
            label = str(images)
        elif isinstance(images, (str, os.PathLike)):
            frames = read_frames(images, role="NEB images")
            label = str(images)
        else:
            frames = [to_atoms(x, role=f"image {i}") for i, x in enumerate(images)]
            label = "NEB images"
        if len(frames) < 2:
            raise StructureFileError(
                f"{label}: {len(frames)} frame(s); NEB images need at least two (the endpoints)"
            )
        checks.check_frames(frames, label)
        return cls.from_endpoints(frames[0], frames[-1], ion_index=ion_index, name=name or label)

    @classmethod
    def from_band(cls, band: Atoms, *, name: str | None = None) -> Hop:
        """Build a hop from a band5 structure (sites 0-4: the ion images; then the host).

        Args:
            band: the band5 Atoms.
            name: optional label.

        Returns:
            The validated hop.
        """
        label = name or "band"
        checks.check_finite(band, label)
        checks.check_ordered(band, label)
        step = checks.check_band5(band, label)  # (3,) the hop, summed over the four steps
        symbols = band.get_chemical_symbols()
        pos = band.positions
        end = pos[N_IMAGES - 1]
        if np.linalg.norm(pos[0] + step - end) > 1e-6:  # images wrapped into the cell
            end = pos[0] + step
        return cls(
            ion=symbols[0],
            start=pos[0].copy(),
            end=end.copy(),
            host_symbols=tuple(symbols[N_IMAGES:]),
            host_positions=pos[N_IMAGES:].copy(),
            cell=np.asarray(band.cell).copy(),
            ion_index=0,
            name=label,
        )

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, name: str | None = None) -> Hop:
        """Build a hop from an em619 JSON record (band5 ``atoms`` or endpoints).

        Args:
            record: a dict with ``atoms`` (band5) or ``atoms_ini`` and ``atoms_fin``, each a
                JARVIS Atoms dict (``lattice_mat``, ``coords``, ``elements``, ``cartesian``).
            name: optional label (default: the record's ``sys_name``).

        Returns:
            The validated hop.
        """
        label = name or str(record.get("sys_name", "record"))
        if "atoms_ini" in record and "atoms_fin" in record:
            return cls.from_endpoints(
                jarvis_dict_to_atoms(record["atoms_ini"], label),
                jarvis_dict_to_atoms(record["atoms_fin"], label),
                ion_index=record.get("ion_index"),
                name=label,
            )
        if "atoms" in record:
            return cls.from_band(jarvis_dict_to_atoms(record["atoms"], label), name=label)
        raise StructureFileError(
            f"{label}: record has neither 'atoms' (band5) nor 'atoms_ini'/'atoms_fin' (endpoints)"
        )


# ---------------------------------------------------------------------- readers


def to_atoms(x: StructureLike, *, role: str = "structure") -> Atoms:
    """Return ASE Atoms for an Atoms, a pymatgen Structure or a structure file.

    Args:
        x: the structure or its path.
        role: what the structure is, for error messages.

    Returns:
        A periodic Atoms (a copy).

    Raises:
        StructureFileError: the file is missing or unreadable, or the structure has no
            periodic cell.
    """
    if isinstance(x, (str, os.PathLike)):
        frames = read_frames(x, role=role)
        if len(frames) > 1 and str(x).lower().endswith(".cif"):  # a database export, not a trajectory
            raise StructureFileError(
                f"{x}: {len(frames)} structures (CIF data blocks); give one structure per file ({role})"
            )
        atoms, label = frames[-1], str(x)
    elif isinstance(x, Atoms):
        atoms, label = x.copy(), role
    elif type(x).__name__ in ("Structure", "IStructure"):
        from pymatgen.io.ase import AseAtomsAdaptor

        checks.check_ordered(x, role)
        x = x.copy()
        x.remove_oxidation_states()
        atoms, label = AseAtomsAdaptor.get_atoms(x), role
    else:
        raise TypeError(f"{role}: expected Atoms, Structure or a file path, got {type(x).__name__}")
    if len(atoms) == 0:
        raise StructureFileError(f"{label}: holds no atoms")
    checks.check_finite(atoms, label)
    checks.check_ordered(atoms, label)
    if not all(atoms.pbc) or abs(atoms.cell.volume) < 1e-6:
        raise StructureFileError(f"{label}: not a periodic crystal (needs a 3D cell with pbc)")
    checks.check_contacts(atoms, label)
    return atoms


def read_frames(path: str | os.PathLike, *, role: str) -> list[Atoms]:
    """All frames of a structure file, with errors that name the file.

    Args:
        path: the file (any format ASE reads).
        role: what the file holds, for error messages.

    Returns:
        One or more Atoms.

    Raises:
        StructureFileError: the file is missing, unreadable or empty.
    """
    from ase.io import read

    p = Path(path)
    if not p.is_file():
        raise StructureFileError(f"{p}: no such file ({role})")
    try:
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite input: refused below
            frames = read(p, index=":")
    except Exception as exc:  # ASE raises many types for unreadable files
        raise StructureFileError(f"{p}: cannot read a structure ({role}): {_read_failure(p, exc)}") from None
    frames = frames if isinstance(frames, list) else [frames]
    if not frames:
        raise StructureFileError(f"{p}: holds no structure ({role})")
    for i, frame in enumerate(frames):
        label = f"{p}" if len(frames) == 1 else f"{p}: frame {i}"
        checks.check_finite(frame, label)
        checks.check_ordered(frame, label)
    return frames


def read_neb_folder(path: str | os.PathLike) -> list[Atoms]:
    """The images of a VASP NEB run folder: ``00``, ``01``, ... ``NN``, in order.

    Each image folder gives its ``CONTCAR`` (the relaxed image) if present and not empty,
    else its ``POSCAR`` (VASP writes no CONTCAR for the fixed endpoints).

    Args:
        path: the run folder.

    Returns:
        The images, at least two.

    Raises:
        StructureFileError: no numbered image folders, a gap in the numbers, or an image
            folder with neither file (naming it).
    """
    root = Path(path)
    numbered = sorted((p for p in root.iterdir() if p.is_dir() and p.name.isdigit()),
                      key=lambda p: int(p.name))
    if len(numbered) < 2:
        raise StructureFileError(
            f"{root}: is a folder, but not a VASP NEB run (numbered image folders 00 .. NN with "
            "POSCAR or CONTCAR); give the endpoint files or a multi-frame file"
        )
    if [int(p.name) for p in numbered] != list(range(len(numbered))):
        raise StructureFileError(
            f"{root}: image folders {', '.join(p.name for p in numbered)} are not numbered 00 .. "
            f"{len(numbered) - 1:02d} without a gap"
        )
    frames = []
    for folder in numbered:
        contcar, poscar = folder / "CONTCAR", folder / "POSCAR"
        pick = contcar if contcar.is_file() and contcar.stat().st_size > 0 else poscar
        if not pick.is_file():
            raise StructureFileError(
                f"{folder}: neither CONTCAR nor POSCAR (image {folder.name} of a NEB run)")
        frames.append(read_frames(pick, role=f"NEB image {folder.name}")[-1])
    return frames


def _read_failure(path: Path, exc: Exception) -> str:
    """Why ASE could not read a file, in words (its own messages can be empty or numpy's)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    try:
        head.decode("utf-8")
        binary = b"\0" in head
    except UnicodeDecodeError as err:
        binary = err.start < len(head) - 4  # not a character cut at the end of the sample
    if binary:
        return "binary content that no ASE reader takes as a structure (an image or an archive?)"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    internal = ("broadcast", "index out of range", "not enough values", "could not convert")
    if not text or isinstance(exc, (IndexError, AssertionError, EOFError, StopIteration)) or any(
        w in text for w in internal
    ):
        return f"the file is truncated or malformed (the reader stopped with {type(exc).__name__})"
    return text


def jarvis_dict_to_atoms(d: Mapping[str, Any], label: str = "record") -> Atoms:
    """Convert a JARVIS Atoms dict (as in em619 and mpt files) to ASE Atoms.

    Written by hand (six lines) so reading the data needs no jarvis import.

    Args:
        d: dict with ``lattice_mat``, ``coords``, ``elements`` and ``cartesian``.
        label: record name for error messages.

    Returns:
        Periodic Atoms.
    """
    try:
        cell = np.asarray(d["lattice_mat"], dtype=float).reshape(3, 3)
        coords = np.asarray(d["coords"], dtype=float).reshape(-1, 3)
        elements = list(d["elements"])
        cartesian = d.get("cartesian", False)
        cartesian = cartesian if isinstance(cartesian, bool) else str(cartesian) == "True"
    except (KeyError, TypeError, ValueError) as exc:
        raise StructureFileError(f"{label}: malformed JARVIS atoms dict ({exc!r})") from None
    if len(elements) != len(coords):
        raise StructureFileError(f"{label}: {len(elements)} elements but {len(coords)} coordinates")
    positions = coords if cartesian else coords @ cell
    try:
        return Atoms(symbols=elements, positions=positions, cell=cell, pbc=True)
    except (KeyError, ValueError) as exc:
        raise StructureFileError(f"{label}: {exc}") from None


# ---------------------------------------------------------------------- checks


def _minimum_image(frac: np.ndarray) -> np.ndarray:
    """Wrap fractional displacements into [-0.5, 0.5]; an exact half keeps its sign."""
    return frac - np.round(frac)


def _check_index(ion_index: int, n: int, where: str) -> int:
    if not isinstance(ion_index, (int, np.integer)) or isinstance(ion_index, bool):
        raise IonIndexError(f"{where}: ion index must be an integer, got {ion_index!r}")
    if not 0 <= ion_index < n:  # a negative index would silently count from the end
        raise IonIndexError(f"{where}: ion index {ion_index} is out of range 0..{n - 1} ({n} atoms)")
    return int(ion_index)


def _describe(initial: Any, final: Any) -> str:
    if isinstance(initial, (str, os.PathLike)) and isinstance(final, (str, os.PathLike)):
        return f"{initial} -> {final}"
    return "endpoints"


def _sites_clear(hop: Hop, sites: np.ndarray) -> bool:
    """Whether the ion's sites clear the host (host pairs known clean; see :meth:`Hop.in_checked_host`).

    A hop of an anion (the anion-pair rule then holds the ion's sites too) or in a cell
    that is not fully periodic answers False: the full checks decide.
    """
    from ase.data import atomic_numbers

    cell = np.asarray(hop.cell, float)
    if hop.ion in checks.ANIONS or abs(np.linalg.det(cell)) <= 1e-9:
        return False
    numbers = np.array([atomic_numbers[s] for s in hop.host_symbols])
    return checks.sites_clear_of(np.asarray(hop.host_positions, float), numbers, sites,
                                 atomic_numbers[hop.ion], cell)


def _check_plausible(hop: Hop) -> None:
    where = hop.name or "hop"
    for what, value in (("start", hop.start), ("end", hop.end), ("cell", hop.cell)):
        if not np.all(np.isfinite(value)):
            raise StructureFileError(f"{where}: non-finite {what} {np.asarray(value).tolist()}")
    bad = np.flatnonzero(~np.all(np.isfinite(hop.host_positions), axis=1))
    if bad.size:
        raise StructureFileError(
            f"{where}: host atom {int(bad[0])} ({hop.host_symbols[bad[0]]}) has non-finite coordinates"
        )
    if hop.length > MAX_HOP_LENGTH:
        raise ImplausibleHopError(
            f"{where}: the {hop.ion} ion moves {hop.length:.2f} A; longer than a plausible "
            f"hop ({MAX_HOP_LENGTH} A)"
        )
    if hop.length < MIN_HOP_LENGTH:
        raise NoHopError(
            f"{where}: the {hop.ion} ion moves {hop.length:.3f} A: the endpoints are the same site"
        )
    n_host = len(hop.host_symbols)
    images = hop.ion_positions()  # (5, 3)
    if _HOST_CHECKED.get() and n_host and _sites_clear(hop, images[[0, -1]]):
        clearance.check_path(hop, hop.path_clearance)
        return
    # Host-host and endpoint-ion-host overlaps (one neighbour list on host + both ion sites);
    # the two ion sites are one ion at two times: their mutual distance is the hop.
    atoms = Atoms(
        symbols=list(hop.host_symbols) + [hop.ion, hop.ion],
        positions=np.vstack([hop.host_positions, images[[0, -1]]]),
        cell=hop.cell,
        pbc=True,
    )
    c = checks.closest_contact(atoms, ignore=(n_host, n_host + 1))
    name = lambda t: (  # noqa: E731
        f"host atom {t} ({hop.host_symbols[t]})"
        if t < n_host
        else f"the {hop.ion} ion at its {'initial' if t == n_host else 'final'} site"
    )
    if checks.contact_is_overlap(c):
        raise ImplausibleHopError(
            f"{where}: {name(c.i)} and {name(c.j)} are {c.distance:.3f} A apart, {c.ratio:.2f} of "
            f"their covalent radii sum (limit {checks.MIN_COVALENT_RATIO}, and {MIN_ATOM_DISTANCE} A)"
        )
    a = checks.anion_contact(atoms)  # the ion is a cation: host pairs only
    if a is not None:
        raise ImplausibleHopError(f"{where}: " + checks.anion_message(a, name(a.i), name(a.j)))
    if n_host:
        clearance.check_path(hop, hop.path_clearance)  # the whole straight path against every host atom
