"""The screening database: an ASE database (SQLite), one row per structure and ion.

Schema (``key_value_pairs`` of each row; the row's atoms are the structure as read, empty
when it could not be read):

================= ==========================================================================
key               meaning
================= ==========================================================================
source            input path (``path@id=N`` for a row of an input ASE database)
sha256            sha256 of the source file's bytes (of the atoms, for a database row)
ion               migrating ion
status            ``ok``, ``refused`` (input the model cannot take), ``error``, ``timeout``
reason            one line: why not ok (absent when ok)
reduced_formula   reduced formula of the structure
n_sites           atoms in the cell
em_1d/2d/3d       percolation barriers (eV); absent where the hops do not percolate
em_1d_std ...     uncertainty (eV) of the bottleneck hop of each percolation barrier (for a
                  disordered input whose median barrier is no single hop's: its spread
                  over the orderings)
em_min, _std      lowest barrier of any hop (eV), its uncertainty; em_min_length (A)
log10_sigma_300   predicted log10 conductivity at 300 K (S/cm; ``ase_em.transport``, Haven
                  ratio 1, nu 1e13 Hz), ``_std`` its spread over barrier draws; absent
                  without percolation
activation_energy Arrhenius activation energy of the predicted sigma (eV, 250-500 K), ``_std``
n_hops, n_blocked unique hops, and those blocked (straight path through a host atom)
ordered           whether the input had no partial occupancies
n_orderings       orderings used: 1 for an ordered structure, N (``--orderings``) for a
                  disordered one (barriers: median over them), 0 when it failed first;
                  with ``--ordering-tolerance`` as many as settled the barriers (2..N)
ordering_tolerance
                  the standard error (eV) the orderings were drawn to (absent: all N,
                  or an ordered structure)
flags, n_flags    comma-separated domain flags of the hops (``flags`` absent if none); hops
                  with an excluding flag are left out of percolation (as in ``network``)
em_1d_flags ...   domain flags of the bottleneck hop of each barrier (em_1d/2d/3d, em_min),
                  absent if none: ``screen-report`` marks these rows and ``--in-domain``
                  ranks the others only
seconds           wall time of the unit in its worker (s)
cpu_structure     CPU s of everything but the network: reading, symmetry, hops, graphs
cpu_model         CPU s of the network's forward passes
model, model_version  the model's name and version (from its card)
max_distance      longest ion-ion hop considered (A)
================= ==========================================================================

plus any extra per-structure keys given with ``--keys`` (a name that clashes with the
above, or with ASE's reserved keys, gets an ``x_`` prefix). The row's ``data`` holds
``hops`` (the hop table: label, length, em, em_std, multiplicity, blocked, flags, ...) and
``percolation``; a disordered input's row (no atoms: ASE cannot hold partial occupancies)
holds its ``average_structure`` (pymatgen dict); an error row holds a short ``traceback``.

Every row is written in one SQLite transaction (ASE's ``db.write``, or one ``with db:``
block when an older row of the same unit is replaced): a run killed at any moment leaves
complete rows only. A unit is done when a row with its source, ion, sha256 and model
exists; ``--resume`` skips those.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from ase_em.errors import AseEmError

OWN_KEYS = frozenset(
    "source sha256 ion status reason reduced_formula n_sites em_1d em_2d em_3d em_1d_std em_2d_std "
    "em_3d_std em_min em_min_std em_min_length n_hops n_blocked n_orderings ordering_tolerance ordered flags "
    "n_flags seconds "
    "cpu_structure cpu_model model model_version max_distance em_1d_flags em_2d_flags em_3d_flags "
    "em_min_flags log10_sigma_300 log10_sigma_300_std activation_energy activation_energy_std".split()
)


def as_db_value(value: Any) -> Any:
    """The value as ASE's database takes it: a string that reads as a number becomes that number.

    ASE refuses string values such as ``"2"`` or ``"True"`` (it asks for the number).
    """
    from ase.db.core import str_represents

    if isinstance(value, str):
        for t in (bool, int, float):
            if str_represents(value, t):
                return value.strip() == "True" if t is bool else t(value)
    return value


def _clean_keys(keys: dict[str, Any]) -> dict[str, Any]:
    """User keys made safe for ASE: clashing names prefixed ``x_``, numbers in text kept as text."""
    from ase.db.core import reserved_keys, word

    out: dict[str, Any] = {}
    for key, value in keys.items():
        if key in OWN_KEYS or key in reserved_keys:
            key = "x_" + key
        if word.match(key):
            out[key] = as_db_value(value)
    return out


class ResultStore:
    """The results database of a screen (only the main process writes it).

    Args:
        path: the ASE database file (``.db``).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        """Open (or create) the database."""
        from ase.db import connect

        self.path = os.fspath(path)
        if not self.path.endswith(".db"):
            raise AseEmError(f"{self.path}: the results database must be a .db file (SQLite)")
        # SQLite's own locking only: the kernel releases it when a process dies. ASE's lock
        # file (DB.lock) would outlive a screen killed mid-write, and every later write, the
        # --resume of that screen included, would wait for it forever.
        self.db = connect(self.path, type="db", append=True, use_lock_file=False)

    def __len__(self) -> int:
        """Number of rows."""
        return self.db.count()

    def done(self) -> dict[tuple[str, str], tuple[str, str, str, int]]:
        """``{(source, ion): (sha256, model, status, row id)}`` of every row."""
        out = {}
        for row in self.db.select(include_data=False):
            kv = row.key_value_pairs
            if "source" in kv and "ion" in kv:
                out[(kv["source"], kv["ion"])] = (
                    kv.get("sha256", ""), kv.get("model", ""), kv.get("status", ""), row.id
                )
        return out

    def rows(self, ids: Iterable[int] | None = None, *, status: str = "ok") -> list[Any]:
        """Rows by id, or (``ids`` None or empty) every row whose status is ``status``.

        Raises:
            KeyError: no row with one of ``ids`` (the missing id is the key).
        """
        ids = list(ids or ())
        if not ids:
            return list(self.db.select(status=status))
        out = []
        for i in ids:
            try:
                out.append(self.db.get(id=int(i)))
            except KeyError:
                raise KeyError(int(i)) from None
        return out

    def update(self, row_id: int, data: dict[str, Any], **keys: Any) -> None:
        """Add ``data`` and key-value pairs ``keys`` to row ``row_id`` (refinement results)."""
        self.db.update(int(row_id), data=data, **{k: as_db_value(v) for k, v in keys.items()})

    def write(self, record: dict[str, Any], extra_keys: dict[str, Any] | None = None,
              replace: Iterable[int] = ()) -> int:
        """Write one result row (replacing rows ``replace``) in one transaction.

        Args:
            record: a :func:`ase_em.screening.work.run_unit` record.
            extra_keys: per-structure user keys.
            replace: ids of older rows of the same unit to delete in the same transaction.

        Returns:
            The id of the new row.
        """
        from ase import Atoms

        own = {**record["key_value_pairs"], "source": record["source"], "sha256": record["sha256"],
               "ion": record["ion"]}
        # (a sha256 of 64 decimal digits, the one own text that could read as a number, has a
        # chance of about 1e-13; every other own text key has letters or a path separator)
        kv = {**_clean_keys(extra_keys or {}),
              **{k: v if k in ("sha256", "source") else as_db_value(v) for k, v in own.items()}}
        atoms = record.get("atoms")
        atoms = Atoms() if atoms is None else atoms
        replace = list(replace)
        if not replace:
            return self.db.write(atoms, key_value_pairs=kv, data=record.get("data") or {})
        with self.db:  # one connection, one commit: the delete and the write land together
            self.db.delete(replace)
            return self.db.write(atoms, key_value_pairs=kv, data=record.get("data") or {})
