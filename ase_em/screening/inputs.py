"""Screening inputs: files, folders, path lists and ASE databases -> units of work.

A *unit* is one structure and one migrating ion. It is identified by its source (a path,
``path@id=N`` for a row of an input ASE database, ``path@block=NAME`` for a data block of a
CIF file with several), the ion, and the sha256 of the
source's content, so that ``--resume`` redoes a unit whose file changed.

Recognised inputs:

* a structure file: CIF, POSCAR/CONTCAR (any name starting with them), ``*.vasp``,
  ``*.extxyz`` / ``*.xyz`` (extended XYZ with a cell), pymatgen JSON (``*.json``);
* a folder: searched recursively for the files above (sorted, hidden entries skipped);
* a text file (``*.txt``, ``*.list``): one path per line, relative to the list file;
  empty lines and ``#`` comments skipped;
* an ASE database (``*.db``): every row is a structure.

This module reads no structure (the workers do): it only finds and checksums inputs, so
the main process stays light.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ase_em.crystals.cif_text import cif_blocks
from ase_em.errors import StructureFileError

STRUCTURE_SUFFIXES = (".cif", ".vasp", ".extxyz", ".xyz", ".json")
VASP_PREFIXES = ("POSCAR", "CONTCAR")
LIST_SUFFIXES = (".txt", ".list")
DB_SUFFIXES = (".db",)


@dataclass(frozen=True)
class Source:
    """One input structure, before it is read.

    Attributes:
        source: where it comes from: the file path as given (or found), or
            ``path@id=N`` for row N of an input ASE database.
        sha256: hex sha256 of the file bytes, or of the row's atoms (numbers, positions,
            cell, pbc) for a database row.
        path: the file to read (None for a database row).
        atoms: the structure of a database row (None for a file).
        keys: extra per-structure key-value pairs to store on the result rows.
        block: the data block of a CIF file with several (source ``path@block=NAME``).
    """

    source: str
    sha256: str
    path: str | None = None
    atoms: Any = None
    keys: dict[str, Any] = field(default_factory=dict)
    block: str | None = None

    @property
    def stem(self) -> str:
        """The file name without its suffix (``path@id=N`` sources: the id), for key matching."""
        if self.path is None:
            return self.source.rsplit("@id=", 1)[-1]
        return Path(self.path).stem


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atoms_sha256(atoms: Any) -> str:
    """Hex sha256 of an Atoms' numbers, positions (rounded to 1e-6 A), cell and pbc."""
    import numpy as np

    h = hashlib.sha256()
    h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(np.round(np.asarray(atoms.positions, dtype=float), 6).tobytes())
    h.update(np.round(np.asarray(atoms.cell[:], dtype=float), 6).tobytes())
    h.update(np.asarray(atoms.pbc, dtype=bool).tobytes())
    return h.hexdigest()


def is_structure_file(path: Path) -> bool:
    """Whether a file name looks like a structure file this screen reads."""
    return path.suffix.lower() in STRUCTURE_SUFFIXES or path.name.startswith(VASP_PREFIXES)


def _walk(folder: Path) -> list[Path]:
    """Structure files below ``folder``, sorted; hidden files and folders skipped."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in sorted(files)
                  if not f.startswith(".") and is_structure_file(Path(f))]
    return found


def _read_list(path: Path) -> list[Path]:
    """Paths listed in a text file, relative to its folder."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        p = Path(line)
        p = p if p.is_absolute() else path.parent / p
        if not p.exists():
            raise StructureFileError(f"{path}: line {n}: {line}: no such file")
        out.append(p)
    return out


def _db_sources(path: Path) -> list[Source]:
    """One source per row of an ASE database."""
    from ase.db import connect

    try:
        rows = list(connect(str(path), type="db").select())
    except Exception as exc:  # ase raises several types for a file that is not a database
        raise StructureFileError(f"{path}: cannot read an ASE database: {exc}") from None
    out = []
    for row in rows:
        atoms = row.toatoms()
        out.append(Source(source=f"{path}@id={row.id}", sha256=atoms_sha256(atoms), atoms=atoms))
    return out


def _reads_as_number(text: str) -> bool:
    """Whether ASE's database would take ``text`` for a number (it refuses such text keys)."""
    from ase.db.core import str_represents

    return any(str_represents(text, t) for t in (bool, int, float))


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> list[Source]:
    """Find every input structure.

    Args:
        inputs: files, folders, path lists (``.txt``/``.list``) or ASE databases (``.db``).

    Returns:
        The sources in input order (folders sorted), each path once.

    Raises:
        StructureFileError: an input or a listed path does not exist, or a database cannot
            be read.
    """
    sources: list[Source] = []
    seen: set[str] = set()

    def add_file(p: Path) -> None:
        key = os.path.normpath(str(p))
        if _reads_as_number(key):
            key = os.path.join(".", key)  # a bare name like "123": ASE would refuse it as a text key
        if key in seen:
            return
        seen.add(key)
        sha = file_sha256(p)
        blocks = cif_blocks(p) if p.suffix.lower() == ".cif" else []
        if len(blocks) > 1:  # a database export: one structure per data block
            sources.extend(Source(source=f"{key}@block={b}", sha256=sha, path=key, block=b) for b in blocks)
        else:
            sources.append(Source(source=key, sha256=sha, path=key))

    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise StructureFileError(f"{p}: no such file or folder")
        if p.is_dir():
            for f in _walk(p):
                add_file(f)
        elif p.suffix.lower() in DB_SUFFIXES:
            for s in _db_sources(p):
                if s.source not in seen:
                    seen.add(s.source)
                    sources.append(s)
        elif p.suffix.lower() in LIST_SUFFIXES:
            for f in _read_list(p):
                for g in _walk(f) if f.is_dir() else [f]:
                    add_file(g)
        else:
            add_file(p)  # any other single file is read as a structure (its error lands in its row)
    return sources


def read_keys_csv(path: str | os.PathLike, id_column: str = "id") -> dict[str, dict[str, Any]]:
    """Extra per-structure keys from a CSV file with an id column.

    Numbers become floats, empty cells are dropped, other text stays text. Column names
    are turned into ASE database keys: lower case, runs of other characters replaced by
    ``_`` (``Ionic conductivity (S cm-1)`` -> ``ionic_conductivity_s_cm_1``).

    Args:
        path: the CSV file.
        id_column: the column matched against each source's file stem (or its full source).

    Returns:
        ``{id: {key: value}}``.

    Raises:
        StructureFileError: missing file or id column, or a repeated id.
    """
    import csv
    import re

    path = Path(path)
    if not path.is_file():
        raise StructureFileError(f"{path}: no such file")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or id_column not in reader.fieldnames:
            raise StructureFileError(
                f"{path}: no column {id_column!r} (columns: {', '.join(reader.fieldnames or [])})"
            )
        names = {c: re.sub(r"[^0-9a-zA-Z]+", "_", c).strip("_").lower() for c in reader.fieldnames}
        out: dict[str, dict[str, Any]] = {}
        for n, rec in enumerate(reader, 2):
            ident = (rec.get(id_column) or "").strip()
            if not ident:
                continue
            if ident in out:
                raise StructureFileError(f"{path}: line {n}: id {ident!r} repeated")
            keys: dict[str, Any] = {}
            for col, value in rec.items():
                if col == id_column or col is None or value is None or not value.strip():
                    continue
                key = names[col]
                if not key or key[0].isdigit():
                    key = "k_" + key
                try:
                    keys[key] = float(value)
                except ValueError:
                    keys[key] = value.strip()
            out[ident] = keys
    return out


def attach_keys(sources: Sequence[Source], table: dict[str, dict[str, Any]]) -> list[Source]:
    """Sources with the extra keys of their id (file stem, or full source) attached."""
    out = []
    for s in sources:
        keys = table.get(s.source) or table.get(s.stem) or {}
        out.append(Source(s.source, s.sha256, s.path, s.atoms, {**s.keys, **keys}, s.block))
    return out
