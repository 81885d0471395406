"""Labelled data files -> hops and barriers, with errors that name the row.

Formats (:func:`load_labelled` picks one from the file suffix):

* ``.json``: a list of em619 records (band5 ``atoms`` or ``atoms_ini``/``atoms_fin``,
  barrier in ``target``), :func:`load_em619`;
* ``.csv``: a header and one hop per row, columns ``id,initial,final,em`` (optional
  ``ion_index``) or ``id,images,em``; structure paths are relative to the CSV's folder,
  :func:`load_csv`;
* ``.extxyz`` / ``.xyz`` / ``.traj``: one band5 structure per frame with the barrier in
  the frame's info (``em``), :func:`load_band_frames`.

Every loader checks the whole file and raises one :class:`DataFileError` listing every bad
row (one line each), so nothing is trained on a half-valid file. Barriers must be finite and
in the plausible range ``[0, PLAUSIBLE_MAX_EM]`` eV unless ``allow_implausible`` is given;
the same hop under two ids is reported in ``LabelledHops.warnings``. A CSV's structure files
are checksummed (``LabelledHops.files``), so caches and checkpoints notice an edited file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ase_em.errors import AseEmError, DataFileError, StructureFileError
from ase_em.hops.hop import Hop, read_frames, to_atoms

CSV_SUFFIXES = (".csv",)
JSON_SUFFIXES = (".json",)
BAND_SUFFIXES = (".extxyz", ".xyz", ".traj")
# eV: a larger barrier is almost surely a unit or typing error (meV, a total energy). TRAIN's
# (em619, 559 hops) largest is 8.77 eV, its 99th percentile 3.8 eV.
PLAUSIBLE_MAX_EM = 10.0
SAME_LABEL_TOLERANCE = 0.01  # eV: two labels of one hop closer than this agree


@dataclass
class LabelledHops:
    """Hops with their DFT barriers.

    Attributes:
        names: (n,) record names.
        hops: (n,) hops.
        targets: (n,) barriers (eV).
        path: the file they came from.
        sha256: checksum of that file.
        skipped: one line per record left out (only when asked to skip invalid rows).
        format: "em619", "csv" or "band" (what :func:`load_labelled` read).
        files: structure files the rows reference (as written in a CSV) -> sha256; empty
            for formats that hold the structures themselves.
        warnings: one line per suspicious but accepted finding (the same hop twice).
    """

    names: list[str]
    hops: list[Hop]
    targets: list[float]
    path: str
    sha256: str
    skipped: list[str] = field(default_factory=list)
    format: str = "em619"
    files: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def content_sha256(self) -> str:
        """Checksum of the data file and of every structure file it references."""
        h = hashlib.sha256(self.sha256.encode())
        for name, digest in sorted(self.files.items()):
            h.update(f"\n{name}\t{digest}".encode())
        return h.hexdigest()

    def add_row(
        self,
        where: str,
        name: str,
        hop: Hop | None,
        em: float | None,
        bad: list[str],
        hop_problems: list[str],
        problems: list[str],
        *,
        skip_invalid: bool,
    ) -> None:
        """Sort one checked row of a data file.

        Bad fields go to ``problems``; an invalid hop goes to ``skipped`` (with
        ``skip_invalid``) or ``problems``; otherwise the hop and its barrier (eV) are kept.
        """
        if bad:
            problems.append(f"{where}: " + "; ".join(bad + hop_problems))
        elif hop_problems:
            (self.skipped if skip_invalid else problems).append(f"{where}: " + "; ".join(hop_problems))
        else:
            self.names.append(name)
            self.hops.append(hop)
            self.targets.append(float(em))


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_em619(
    path: str | Path,
    *,
    skip_invalid: bool = False,
    need_target: bool = True,
    allow_implausible: bool = False,
) -> LabelledHops:
    """Read a JSON file in either em619 format (band5 ``atoms`` or endpoints).

    Args:
        path: the JSON file (a list of records).
        skip_invalid: leave out records whose hop is invalid, listing them in
            ``skipped``; otherwise any bad record raises.
        need_target: require a finite ``target`` in every record, within
            ``[0, PLAUSIBLE_MAX_EM]`` eV unless ``allow_implausible``.
        allow_implausible: accept finite targets below 0 or above ``PLAUSIBLE_MAX_EM``.

    Returns:
        The labelled hops.

    Raises:
        StructureFileError: the file is missing, not a JSON list, or holds no records.
        DataFileError: one or more bad records (all of them are listed).
    """
    p = Path(path)
    if not p.is_file():
        raise StructureFileError(f"{p}: no such file")
    try:
        records = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StructureFileError(f"{p}: not a readable JSON file ({exc})") from None
    if not isinstance(records, list):
        raise StructureFileError(f"{p}: expected a JSON list of records")
    if not records:
        raise StructureFileError(f"{p}: no records (an empty JSON list)")
    out = LabelledHops([], [], [], str(p), file_sha256(p))
    problems: list[str] = []
    seen: set[str] = set()
    kept: list[str] = []  # "record i (id 'x')" of each kept hop, for the duplicate warnings
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            problems.append(f"{p}: record {i}: not a JSON object")
            continue
        name = str(rec.get("sys_name", f"record-{i}"))
        where = f"{p}: record {i} ({name})"
        if name in seen:
            problems.append(f"{where}: duplicate sys_name")
            continue
        seen.add(name)
        target = rec.get("target")
        if need_target:
            if isinstance(target, bool) or not isinstance(target, (int, float)):
                problems.append(f"{where}: target {target!r} is not a number")
                continue
            if not math.isfinite(target):
                problems.append(f"{where}: target {target!r} must be finite and >= 0 eV")
                continue
            _, why = parse_barrier(target, allow_implausible=allow_implausible)
            if why:
                problems.append(f"{where}: target {why}")
                continue
        try:
            hop = Hop.from_record(rec, name=name)
            _check_hop_elements(hop)
        except AseEmError as exc:
            msg = f"{where}: {str(exc).removeprefix(name + ': ')}"
            (out.skipped if skip_invalid else problems).append(msg)
            continue
        out.names.append(name)
        out.hops.append(hop)
        out.targets.append(float(target) if target is not None else math.nan)
        kept.append(f"record {i} (id {name!r})")
    if problems:
        raise DataFileError(str(p), problems)
    if not out.hops:
        raise StructureFileError(f"{p}: no valid records (all {len(out.skipped)} skipped)")
    out.warnings = duplicate_hops(out, kept)
    return out


def load_labelled(
    path: str | Path, *, skip_invalid: bool = False, allow_implausible: bool = False
) -> LabelledHops:
    """Read labelled hops from a CSV, em619 JSON or band5 extxyz/traj file.

    Args:
        path: the data file; its suffix picks the reader (``.csv``, ``.json``,
            ``.extxyz``/``.xyz``/``.traj``).
        skip_invalid: leave out rows whose structures do not form a valid hop (listed in
            ``skipped``); rows with a bad id or barrier always raise.
        allow_implausible: accept finite barriers below 0 or above ``PLAUSIBLE_MAX_EM`` eV.

    Returns:
        The labelled hops, in file order.

    Raises:
        StructureFileError: the file is missing, unreadable or of an unknown type.
        DataFileError: one or more rows are bad (all of them are listed, one line each).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    options = {"skip_invalid": skip_invalid, "allow_implausible": allow_implausible}
    if suffix in CSV_SUFFIXES:
        return load_csv(p, **options)
    if suffix in JSON_SUFFIXES:
        return load_em619(p, **options)
    if suffix in BAND_SUFFIXES:
        return load_band_frames(p, **options)
    raise StructureFileError(
        f"{p}: unknown data file type {p.suffix or '(no suffix)'!r}; expected .csv "
        "(id,initial,final,em or id,images,em), .json (em619 records) or "
        ".extxyz/.xyz/.traj (band5 frames with 'em' in their info)"
    )


def parse_barrier(value: Any, *, allow_implausible: bool = False) -> tuple[float | None, str | None]:
    """Parse a barrier (eV): a finite number in ``[0, PLAUSIBLE_MAX_EM]``.

    Args:
        value: the cell text or info value.
        allow_implausible: accept any finite number (negative, or above the range).

    Returns:
        (barrier, None) if valid, else (None, reason).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, "missing barrier (eV)"
    if isinstance(value, bool):
        return None, f"{value!r} is not a number"
    try:
        em = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None, f"{value!r} is not a number"
    if not math.isfinite(em):
        return None, f"{value!r} is not finite"
    if allow_implausible:
        return em, None
    if em < 0:
        return None, (
            f"{em:g} eV is negative (a barrier is >= 0 eV; pass --allow-implausible-barriers to "
            "use it anyway)"
        )
    if em > PLAUSIBLE_MAX_EM:
        return None, (
            f"{em:g} eV is above {PLAUSIBLE_MAX_EM:g} eV, not a plausible migration barrier (TRAIN's "
            "largest is 8.77 eV; meV or a total energy?); pass --allow-implausible-barriers to "
            "use it anyway"
        )
    return em, None


def load_csv(
    path: str | Path, *, skip_invalid: bool = False, allow_implausible: bool = False
) -> LabelledHops:
    """Read a CSV of hops and barriers.

    Columns (header required, names case-insensitive, extra columns ignored): ``id``
    (unique), ``em`` (barrier, eV), and either ``initial`` and ``final`` (endpoint
    structure files, optional ``ion_index``) or ``images`` (one multi-frame NEB file whose
    first and last frames are the endpoints). When both kinds of column exist, each row
    fills one of them. Relative paths are taken from the CSV's folder.

    Args:
        path: the CSV file.
        skip_invalid: leave out rows whose structures do not form a valid hop (listed in
            ``skipped``); rows with a bad id or barrier always raise.
        allow_implausible: accept finite barriers below 0 or above ``PLAUSIBLE_MAX_EM`` eV.

    Returns:
        The labelled hops (``format="csv"``), with the checksum of every structure file in
        ``files`` and the same hop under two ids in ``warnings``.

    Raises:
        StructureFileError: the CSV is missing or unreadable.
        DataFileError: a bad header or bad rows (one line per row, naming row, column and
            reason).
    """
    p = Path(path)
    if not p.is_file():
        raise StructureFileError(f"{p}: no such file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise StructureFileError(f"{p}: not a readable text file ({exc})") from None
    reader = csv.reader(io.StringIO(text))
    try:
        table = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise StructureFileError(f"{p}: not a readable CSV file ({exc})") from None
    table = [(line, row) for line, row in table if any(c.strip() for c in row)]
    if not table:
        raise DataFileError(str(p), [f"{p}: empty file (expected a header id,initial,final,em)"])
    header = [c.strip().lower() for c in table[0][1]]
    _check_csv_header(p, header)
    base = p.parent
    out = LabelledHops([], [], [], str(p), file_sha256(p), format="csv")
    problems: list[str] = []
    seen: dict[str, int] = {}
    rows: list[str] = []  # "row k (id 'x')" of each kept hop, for the duplicate warnings
    for k, (line, row) in enumerate(table[1:], start=1):
        where = f"{p}: row {k} (line {line}"
        if len(row) != len(header):
            problems.append(f"{where}): has {len(row)} fields, the header has {len(header)}")
            continue
        cells = {h: c.strip() for h, c in zip(header, row, strict=True)}
        row_id = cells["id"]
        where += f", id {row_id!r})" if row_id else ")"
        bad: list[str] = []  # id and barrier problems: always fatal
        if not row_id:
            bad.append("column 'id': empty")
        elif row_id in seen:
            bad.append(f"column 'id': duplicate of row {seen[row_id]}")
        else:
            seen[row_id] = k
        em, why = parse_barrier(cells["em"], allow_implausible=allow_implausible)
        if why:
            bad.append(f"column 'em': {why}")
        hop, hop_problems = _csv_hop(cells, base, row_id or f"row {k}", out.files)
        n_kept = len(out.hops)
        out.add_row(where, row_id, hop, em, bad, hop_problems, problems, skip_invalid=skip_invalid)
        if len(out.hops) > n_kept:
            rows.append(f"row {k} (id {row_id!r})")
    if problems:
        raise DataFileError(str(p), problems)
    if not out.hops:
        raise DataFileError(str(p), [f"{p}: no valid hops (the file has a header but no usable rows)"])
    out.warnings = duplicate_hops(out, rows)
    return out


def load_band_frames(
    path: str | Path, *, skip_invalid: bool = False, allow_implausible: bool = False
) -> LabelledHops:
    """Read band5 structures (one hop per frame) with the barrier in each frame's info.

    Each frame holds the five ion images at sites 0-4 followed by the host (as in the
    em619 band5 records) and ``em`` (eV) in its info; an ``id`` or ``name`` in the info
    names the hop (default ``frame-N``).

    Args:
        path: an extxyz, xyz or ASE traj file.
        skip_invalid: leave out frames that are not valid hops (listed in ``skipped``);
            frames with a bad id or barrier always raise.
        allow_implausible: accept finite barriers below 0 or above ``PLAUSIBLE_MAX_EM`` eV.

    Returns:
        The labelled hops (``format="band"``).

    Raises:
        StructureFileError: the file is missing or unreadable.
        DataFileError: bad frames (one line each, naming frame, field and reason).
    """
    p = Path(path)
    frames = read_frames(p, role="labelled band5 frames")
    out = LabelledHops([], [], [], str(p), file_sha256(p), format="band")
    problems: list[str] = []
    seen: dict[str, int] = {}
    kept: list[str] = []
    for i, atoms in enumerate(frames):
        info = atoms.info
        name = str(info.get("id", info.get("name", f"frame-{i}")))
        where = f"{p}: frame {i} (id {name!r})"
        bad: list[str] = []
        if name in seen:
            bad.append(f"field 'id': duplicate of frame {seen[name]}")
        else:
            seen[name] = i
        em, why = parse_barrier(info.get("em"), allow_implausible=allow_implausible)
        if why:
            bad.append(f"field 'em': {why}")
        hop_problems: list[str] = []
        hop = None
        try:
            if not all(atoms.pbc) or abs(atoms.cell.volume) < 1e-6:
                raise StructureFileError("not a periodic crystal (needs a 3D cell with pbc)")
            hop = Hop.from_band(atoms, name=name)
            _check_hop_elements(hop)
        except AseEmError as exc:
            hop_problems.append("structure: " + _strip(str(exc), name, "band"))
        n_kept = len(out.hops)
        out.add_row(where, name, hop, em, bad, hop_problems, problems, skip_invalid=skip_invalid)
        if len(out.hops) > n_kept:
            kept.append(f"frame {i} (id {name!r})")
    if problems:
        raise DataFileError(str(p), problems)
    out.warnings = duplicate_hops(out, kept)
    return out


def hop_fingerprint(hop: Hop, decimals: int = 3) -> str:
    """A checksum of a hop's geometry: ion, its two sites, host atoms and cell.

    Positions are rounded to ``10**-decimals`` A, so the same hop read from two copies of a
    file (or written with other float formatting) gets the same fingerprint.

    Args:
        hop: the hop.
        decimals: decimals of the rounding (A).

    Returns:
        sha256 hex digest.
    """
    h = hashlib.sha256(f"{hop.ion}|{','.join(hop.host_symbols)}".encode())
    for array in (hop.start, hop.end, hop.host_positions, hop.cell):
        # + 0.0 turns -0.0 into 0.0, so both round to the same bytes
        h.update((np.round(np.asarray(array, dtype=float), decimals) + 0.0).tobytes())
    return h.hexdigest()


def duplicate_hops(data: LabelledHops, rows: list[str]) -> list[str]:
    """Warnings for the same hop (same geometry, :func:`hop_fingerprint`) under two ids.

    Args:
        data: the loaded hops.
        rows: (n,) how to name each kept hop's row in a message, e.g. ``row 3 (id 'a')``.

    Returns:
        One line per repeated hop: conflicting labels (differing by more than
        ``SAME_LABEL_TOLERANCE`` eV) or a plain repeat.
    """
    first: dict[str, int] = {}
    lines = []
    for i, hop in enumerate(data.hops):
        key = hop_fingerprint(hop)
        if key not in first:
            first[key] = i
            continue
        j = first[key]
        a, b = data.targets[j], data.targets[i]
        if abs(a - b) > SAME_LABEL_TOLERANCE:
            lines.append(
                f"{data.path}: {rows[j]} and {rows[i]} are the same hop (same structures) with "
                f"different barriers, {a:g} and {b:g} eV; keep the right one"
            )
        else:
            lines.append(
                f"{data.path}: {rows[j]} and {rows[i]} are the same hop (same structures, "
                f"barrier {a:g} eV); it counts twice and can sit on both sides of a validation split"
            )
    return lines


# ---------------------------------------------------------------------- helpers


def _check_csv_header(p: Path, header: list[str]) -> None:
    problems = []
    dup = sorted({h for h in header if header.count(h) > 1 and h})
    if dup:
        problems.append(f"{p}: header: duplicate column(s) {', '.join(dup)}")
    for col in ("id", "em"):
        if col not in header:
            problems.append(f"{p}: header: missing column {col!r}")
    has_pair = "initial" in header and "final" in header
    if not has_pair and "images" not in header:
        missing = [c for c in ("initial", "final") if c not in header]
        problems.append(
            f"{p}: header: missing column(s) {', '.join(map(repr, missing))} "
            "(or an 'images' column naming NEB files)"
        )
    if problems:
        raise DataFileError(str(p), problems + [f"{p}: header read: {','.join(header)}"])


def _csv_hop(
    cells: dict[str, str], base: Path, label: str, files: dict[str, str]
) -> tuple[Hop | None, list[str]]:
    """The hop of one CSV row, or the list of its problems (``column 'x': reason``).

    The checksum of every structure file read goes into ``files`` (keyed by the cell text).
    """
    images = cells.get("images", "")
    initial, final = cells.get("initial", ""), cells.get("final", "")
    problems: list[str] = []
    ion_index = None
    text = cells.get("ion_index", "")
    if text:
        try:
            ion_index = int(text)
        except ValueError:
            problems.append(f"column 'ion_index': {text!r} is not an integer")
    if images and (initial or final):
        return None, problems + ["columns 'images' and 'initial'/'final': give one or the other"]
    if not images and "initial" not in cells:
        return None, problems + ["column 'images': empty"]
    if images:
        col = "images"
        frames, why = _read_frames_cell(images, base, files)
        if not why and len(frames) < 2:
            why = f"{images!r} holds {len(frames)} frame(s); NEB images need at least two"
        if why:
            return None, problems + [f"column 'images': {why}"]
        a, b = frames[0], frames[-1]
    else:
        col = "initial/final"
        ends = {}
        for role, value in (("initial", initial), ("final", final)):
            if not value:
                problems.append(f"column {role!r}: empty")
                continue
            frames, why = _read_frames_cell(value, base, files)
            if why:
                problems.append(f"column {role!r}: {why}")
            else:
                ends[role] = frames[-1]
        if problems:
            return None, problems
        a, b = ends["initial"], ends["final"]
    if problems:
        return None, problems
    try:
        hop = Hop.from_endpoints(a, b, ion_index=ion_index, name=label)
    except AseEmError as exc:
        return None, [f"column '{col}': {_strip(str(exc), label, 'endpoints')}"]
    try:
        _check_hop_elements(hop)
    except AseEmError as exc:
        return None, [f"column '{col}': {_strip(str(exc), label, 'hop')}"]
    return hop, []


def _read_frames_cell(value: str, base: Path, files: dict[str, str]) -> tuple[list, str | None]:
    """Frames of the structure file a CSV cell names (relative to ``base``); records its sha256."""
    path = Path(value)
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        return [], f"no such file {value!r} (looked for {path})"
    files[value] = file_sha256(path)
    try:
        frames = read_frames(path, role=value)
    except StructureFileError as exc:
        first = str(exc).strip().splitlines()[0]
        return [], first.replace(str(path), repr(value), 1)
    try:
        frames = [to_atoms(f, role=value) for f in frames]
    except AseEmError as exc:
        return [], str(exc)
    return frames, None


def _check_hop_elements(hop: Hop) -> None:
    from ase_em.model.graph import check_elements

    check_elements((hop.ion, *hop.host_symbols), hop.name or "hop")


def _strip(message: str, *prefixes: str) -> str:
    """The message without a leading ``name: `` that repeats the row's label."""
    for prefix in prefixes:
        message = message.removeprefix(f"{prefix}: ")
    return message
