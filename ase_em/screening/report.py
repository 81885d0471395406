"""Report of a screening database: a ranked CSV and a PNG of the barriers.

Ranking: rows with status ``ok`` and a value of the ranking key (default ``em_1d``, the
lowest barrier of long-range transport) by that value, lowest first; then ``ok`` rows
without one (the hops do not percolate), then the rest (refused, error, time-out) with
their reason. A row whose bottleneck hop carries domain flags (``em_1d_flags``, ... of
:mod:`ase_em.screening.store`: an element the model never saw, far from TRAIN, ...) is
marked (``flagged`` column, ``*`` in the terminal ranking); with ``in_domain`` such rows are
not ranked but listed after the ranked ones, so the top of a screen is never its least
reliable entry.

The PNG shows the distribution of the 1D/2D/3D percolation barriers and, given ``x``, a
scatter of the ranking key against any numeric key stored on the rows (e.g. a measured
conductivity added with ``--keys``), with Spearman's rank correlation.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

from ase_em.errors import AseEmError
from ase_em.screening.store import OWN_KEYS

FIRST_COLUMNS = [
    "rank", "flagged", "source", "reduced_formula", "ion", "status", "em_1d", "em_1d_std", "em_2d",
    "em_2d_std", "em_3d", "em_3d_std", "em_min", "em_min_std", "em_min_length", "log10_sigma_300",
    "log10_sigma_300_std", "activation_energy", "activation_energy_std", "n_hops", "n_blocked", "n_orderings",
    "n_sites", "flags", "reason", "seconds", "cpu_structure", "cpu_model", "model", "model_version",
    "max_distance", "sha256",
]


def read_rows(db: str | os.PathLike, ion: str | None = None) -> list[dict[str, Any]]:
    """The key-value pairs of every row (with ``id``), optionally of one ion only.

    Raises:
        AseEmError: no such database.
    """
    from ase.db import connect

    path = os.fspath(db)
    if not os.path.isfile(path):
        raise AseEmError(f"{path}: no such database")
    rows = []
    for row in connect(path, type="db").select(include_data=False):
        kv = dict(row.key_value_pairs)
        if ion is None or kv.get("ion") == ion:
            rows.append({"id": row.id, **kv})
    return rows


HIGHER_FIRST = frozenset({"log10_sigma_300"})  # ranking keys where a larger value ranks first


def bottleneck_flags(row: dict[str, Any], by: str = "em_1d") -> str:
    """The domain flags of the bottleneck hop of ``row``'s ranking value ``by`` ("" if none)."""
    return str(row.get(f"{by}_flags") or "")


def rank_rows(
    rows: list[dict[str, Any]], by: str = "em_1d", *, in_domain: bool = False
) -> list[dict[str, Any]]:
    """Rows in report order (see the module docstring), each with its ``rank`` (1-based).

    Lowest value first, except for the keys of :data:`HIGHER_FIRST` (conductivity: highest first).

    Args:
        rows: rows of :func:`read_rows`.
        by: the ranking key.
        in_domain: rank only rows whose bottleneck hop has no domain flag; flagged rows
            follow the ranked ones, unranked.

    Returns:
        The rows, each with ``rank`` ("" if unranked) and ``flagged`` (the bottleneck's flags).
    """
    ok = [r for r in rows if r.get("status") == "ok"]
    sign = -1.0 if by in HIGHER_FIRST else 1.0
    has_value = [r for r in ok if isinstance(r.get(by), (int, float))]
    ranked = sorted((r for r in has_value if not (in_domain and bottleneck_flags(r, by))),
                    key=lambda r: (sign * r[by], r["source"]))
    flagged = sorted((r for r in has_value if in_domain and bottleneck_flags(r, by)),
                     key=lambda r: (sign * r[by], r["source"]))
    unranked = sorted((r for r in ok if not isinstance(r.get(by), (int, float))), key=lambda r: r["source"])
    rest = sorted((r for r in rows if r.get("status") != "ok"),
                  key=lambda r: (r.get("status", ""), r["source"]))
    out = []
    for i, r in enumerate(ranked + flagged + unranked + rest, 1):
        out.append({**r, "rank": i if i <= len(ranked) else "", "flagged": bottleneck_flags(r, by)})
    return out


def write_csv(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write ranked rows as CSV: the schema's columns first, then the user's own keys."""
    extra = sorted({k for r in rows for k in r} - set(FIRST_COLUMNS) - OWN_KEYS - {"id"})
    columns = FIRST_COLUMNS + extra
    out = Path(path)
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return out


def plot(rows: list[dict[str, Any]], path: str | os.PathLike, *, by: str = "em_1d", x: str | None = None,
         logx: bool = False, dpi: int = 150) -> Path:
    """PNG: barrier distribution, and ``by`` against the numeric key ``x`` if given.

    Raises:
        AseEmError: ``x`` is on no ok row with a value of ``by``.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ok = [r for r in rows if r.get("status") == "ok"]
    fig = Figure(figsize=(10.5 if x else 5.5, 4.2))
    FigureCanvasAgg(fig)  # no pyplot, no global backend change
    ax = fig.add_subplot(1, 2 if x else 1, 1)
    values = {d: np.array([r[f"em_{d}d"] for r in ok if f"em_{d}d" in r]) for d in (1, 2, 3)}
    finite = np.concatenate([v for v in values.values()] + [np.zeros(0)])
    bins = np.linspace(0.0, max(1.0, float(finite.max()) if finite.size else 1.0), 31)
    for d, v in values.items():
        ax.hist(v, bins=bins, histtype="step", linewidth=1.8, label=f"{d}D percolation (n={v.size})")
    ax.set(xlabel="barrier (eV)", ylabel="structures",
           title=f"{len(ok)} of {len(rows)} rows ok; {len(ok) - values[1].size} without percolation")
    ax.legend(fontsize=8)
    if x:
        pts = [(r[x], r[by], r.get(f"{by}_std")) for r in ok
               if isinstance(r.get(x), (int, float)) and isinstance(r.get(by), (int, float))
               and math.isfinite(r[x]) and (not logx or r[x] > 0)]
        if not pts:
            raise AseEmError(f"no ok row has both a numeric {x!r} and {by!r} (keys are listed by `ase db`)")
        xs = np.array([p[0] for p in pts], dtype=float)
        xs = np.log10(xs) if logx else xs
        ys = np.array([p[1] for p in pts], dtype=float)
        err = np.array([p[2] if p[2] is not None else 0.0 for p in pts], dtype=float)
        ax2 = fig.add_subplot(1, 2, 2)
        ax2.errorbar(xs, ys, yerr=err, fmt="o", ms=4, alpha=0.7, elinewidth=0.8)
        title = f"n = {len(pts)}"
        if len(pts) >= 3:
            from scipy.stats import spearmanr

            rho = spearmanr(xs, ys).statistic
            title += f", Spearman rho = {rho:.2f}"
        ax2.set(xlabel=f"log10({x})" if logx else x, ylabel=f"{by} (eV)", title=title)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=dpi)
    return out


def screen_report(db: str | os.PathLike, *, csv_path: str | os.PathLike | None = None,
                  png_path: str | os.PathLike | None = None, by: str = "em_1d", x: str | None = None,
                  logx: bool = False, ion: str | None = None,
                  in_domain: bool = False) -> tuple[Path, Path, list[dict[str, Any]]]:
    """Ranked CSV and PNG of a screening database.

    Args:
        db: the database written by :func:`ase_em.screening.screen`.
        csv_path: CSV to write (default: the database path with ``.csv``).
        png_path: PNG to write (default: the database path with ``.png``).
        by: ranking key (eV), e.g. ``em_1d``, ``em_3d`` or ``em_min``.
        x: numeric key to scatter ``by`` against (e.g. a measured conductivity).
        logx: plot log10 of ``x``.
        ion: only the rows of this ion.
        in_domain: rank only rows whose bottleneck hop has no domain flag (module docstring).

    Returns:
        (CSV path, PNG path, ranked rows).

    Raises:
        AseEmError: no such database, or no rows.
    """
    rows = read_rows(db, ion)
    if not rows:
        raise AseEmError(f"{db}: no rows{'' if ion is None else f' for ion {ion}'}")
    ranked = rank_rows(rows, by, in_domain=in_domain)
    base = Path(db).with_suffix("")
    c = write_csv(ranked, csv_path or base.with_suffix(".csv"))
    p = plot(ranked, png_path or base.with_suffix(".png"), by=by, x=x, logx=logx)
    return c, p, ranked
