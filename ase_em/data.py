"""Labelled data files -> hops and barriers, with errors that name the row."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ase_em.errors import AseEmError, DataFileError, StructureFileError
from ase_em.hop import Hop


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
    """

    names: list[str]
    hops: list[Hop]
    targets: list[float]
    path: str
    sha256: str
    skipped: list[str] = field(default_factory=list)


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_em619(path: str | Path, *, skip_invalid: bool = False, need_target: bool = True) -> LabelledHops:
    """Read a JSON file in either em619 format (band5 ``atoms`` or endpoints).

    Args:
        path: the JSON file (a list of records).
        skip_invalid: leave out records whose hop is invalid, listing them in
            ``skipped``; otherwise any bad record raises.
        need_target: require a finite, non-negative ``target`` in every record.

    Returns:
        The labelled hops.

    Raises:
        StructureFileError: the file is missing or not a JSON list.
        DataFileError: one or more records are bad (all of them are listed).
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
    out = LabelledHops([], [], [], str(p), file_sha256(p))
    problems: list[str] = []
    seen: set[str] = set()
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
            if not math.isfinite(target) or target < 0:
                problems.append(f"{where}: target {target!r} must be finite and >= 0 eV")
                continue
        try:
            hop = Hop.from_record(rec, name=name)
        except AseEmError as exc:
            msg = f"{where}: {str(exc).removeprefix(name + ': ')}"
            (out.skipped if skip_invalid else problems).append(msg)
            continue
        out.names.append(name)
        out.hops.append(hop)
        out.targets.append(float(target) if target is not None else math.nan)
    if problems:
        raise DataFileError(str(p), problems)
    return out
