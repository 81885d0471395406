"""Interactive HTML view of a labelled hop network (plotly): cell, host, ion and empty sites, hops.

:func:`network_figure` draws, in one 3D scene:

* the unit cell (grey edges);
* the host atoms (small markers, one trace per element, hover: element and coordinates);
* the ion's sites (filled) and the candidate empty sites (open diamonds);
* every hop as a segment from its site to the neighbour it reaches (which may lie in the next
  cell), coloured by Em on one colour scale; blocked hops grey dashes, hops left out for their
  domain flags dark grey; a marker at each hop's middle carries the hover text (hop label,
  length, Em, std, flags, why blocked);
* the percolating network: the hops at or below the percolation barrier of the highest
  dimension reached (``E3D``, else ``E2D``, else ``E1D``) drawn again as a wide translucent red
  band (legend: "percolating at ... eV").

:func:`write_network_html` writes it as a self-contained HTML file (plotly.js inline, so it
opens without a network). Called by ``MigrationBarrierAnalyzer.plot_network`` for a ``.html``
path and so by ``ase-em network --plot net.html``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ase_em.crystals.labelling import edge_table
from ase_em.hops.migration_hop import is_empty_site
from ase_em.model.domain import excluded

if TYPE_CHECKING:
    import plotly.graph_objects as go

# the analyzer is passed in, not imported: analyzer.plot_network imports this module
MigrationBarrierAnalyzer = Any

COLORSCALE = "Viridis"


def _segments(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[list, list, list]:
    """x, y, z lists of line segments separated by None (plotly's gaps)."""
    xs: list = []
    ys: list = []
    zs: list = []
    for a, b in pairs:
        xs += [a[0], b[0], None]
        ys += [a[1], b[1], None]
        zs += [a[2], b[2], None]
    return xs, ys, zs


def percolating_threshold(percolation: dict[int, float | None]) -> tuple[float | None, int | None]:
    """The percolation barrier of the highest dimension reached (eV) and that dimension."""
    for d in (3, 2, 1):
        if percolation.get(d) is not None:
            return float(percolation[d]), d
    return None, None


def network_figure(analyzer: MigrationBarrierAnalyzer) -> go.Figure:
    """The plotly figure of the analyzer's network (module docstring).

    Args:
        analyzer: a built :class:`ase_em.crystals.analyzer.MigrationBarrierAnalyzer`.

    Returns:
        A ``plotly.graph_objects.Figure`` with one 3D scene.
    """
    import plotly.graph_objects as go
    from plotly.colors import sample_colorscale

    fig = go.Figure()
    m = analyzer.structure.lattice.matrix  # (3, 3)
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) @ m  # (8, 3)
    cell = [(corners[a], corners[b]) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1]
    x, y, z = _segments(cell)
    fig.add_trace(go.Scatter3d(x=x, y=y, z=z, mode="lines", line={"color": "#999", "width": 2},
                               name="cell", hoverinfo="skip"))
    # host atoms, one trace per species string (a disordered site shows its occupancies)
    host: dict[str, list[np.ndarray]] = {}
    for site in analyzer.structure:
        if analyzer.ion in {el.symbol for el in site.species.elements} and len(site.species) == 1:
            continue
        label = site.species_string
        host.setdefault(label, []).append(site.coords)
    for k, (label, pts) in enumerate(sorted(host.items())):
        p = np.array(pts)
        fig.add_trace(go.Scatter3d(
            x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="markers", name=label, legendgroup="host",
            marker={"size": 4, "color": f"hsl({(k * 67) % 360},45%,55%)", "opacity": 0.6},
            hovertemplate=f"{label}<br>(%{{x:.2f}}, %{{y:.2f}}, %{{z:.2f}}) A<extra></extra>"))
    sites = analyzer.graph.only_sites
    occ = np.array([s.coords for s in sites if not is_empty_site(s)]).reshape(-1, 3)
    emp = np.array([s.coords for s in sites if is_empty_site(s)]).reshape(-1, 3)
    fig.add_trace(go.Scatter3d(x=occ[:, 0], y=occ[:, 1], z=occ[:, 2], mode="markers",
                               name=f"{analyzer.ion} sites", marker={"size": 6, "color": "#111"},
                               hovertemplate=f"{analyzer.ion} site<br>(%{{x:.2f}}, %{{y:.2f}}, %{{z:.2f}}) A"
                                             "<extra></extra>"))
    if len(emp):
        fig.add_trace(go.Scatter3d(x=emp[:, 0], y=emp[:, 1], z=emp[:, 2], mode="markers", name="empty sites",
                                   marker={"size": 6, "color": "white", "symbol": "diamond-open",
                                           "line": {"color": "#111", "width": 2}},
                                   hovertemplate="candidate empty site<br>(%{x:.2f}, %{y:.2f}, %{z:.2f}) A"
                                                 "<extra></extra>"))
    edges = edge_table(analyzer.graph)
    rows = {r.label: r for r in analyzer.hops}
    usable = [math.isfinite(e["em"]) and (analyzer.include_flagged or not excluded(e["flags"]))
              for e in edges]
    ems = np.array([e["em"] for e, ok in zip(edges, usable, strict=True) if ok])
    lo, hi = (float(ems.min()), float(ems.max())) if len(ems) else (0.0, 1.0)
    pad = max(0.0, 0.05 - (hi - lo) / 2)
    lo, hi = lo - pad, hi + pad
    threshold, dim = percolating_threshold(analyzer.percolation)
    if threshold is not None:
        band = [(e["ipos_cart"], e["epos_cart"]) for e, ok in zip(edges, usable, strict=True)
                if ok and e["em"] <= threshold + 1e-9]
        x, y, z = _segments(band)
        fig.add_trace(go.Scatter3d(x=x, y=y, z=z, mode="lines",
                                   name=f"percolating ({dim}D) at {threshold:.2f} eV",
                                   line={"color": "rgba(220,30,30,0.35)", "width": 16}, hoverinfo="skip"))
    by_label: dict[int, list[dict]] = {}
    for e, ok in zip(edges, usable, strict=True):
        by_label.setdefault((e["label"], ok), []).append(e)
    mids, texts, mid_em = [], [], []
    for (label, ok), group in sorted(by_label.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        row = rows.get(label)
        em = group[0]["em"]
        x, y, z = _segments([(e["ipos_cart"], e["epos_cart"]) for e in group])
        if ok:
            color = sample_colorscale(COLORSCALE, [(em - lo) / (hi - lo)])[0]
            line = {"color": color, "width": 6}
            name = f"hop {label}: {em:.2f} eV"
        elif math.isfinite(em):
            line = {"color": "#444", "width": 2, "dash": "dot"}
            name = f"hop {label}: left out (domain flags)"
        else:
            line = {"color": "#aaa", "width": 2, "dash": "dash"}
            name = f"hop {label}: blocked"
        fig.add_trace(go.Scatter3d(x=x, y=y, z=z, mode="lines", line=line, name=name, legendgroup="hops",
                                   hoverinfo="skip"))
        std = "-" if row is None or row.em_std is None else f"{row.em_std:.3f}"
        flags = ", ".join(group[0]["flags"]) or "none"
        length = "-" if row is None else f"{row.length:.3f}"
        em_text = "blocked" if not math.isfinite(em) else f"{em:.3f} eV"
        extra = "" if row is None or row.blocked is None else f"<br>blocked: {row.blocked[:80]}"
        text = (f"hop {label}, {length} A<br>Em {em_text}, std {std} eV<br>flags: {flags}"
                f"<br>{'used' if ok else 'not used'} in percolation{extra}")
        for e in group:
            mids.append((e["ipos_cart"] + e["epos_cart"]) / 2)
            texts.append(text)
            mid_em.append(em if ok else np.nan)
    if mids:
        p = np.array(mids)
        fig.add_trace(go.Scatter3d(
            x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="markers", name="hop (hover)", showlegend=False,
            marker={"size": 3, "color": [v if np.isfinite(v) else lo for v in mid_em],
                    "colorscale": COLORSCALE, "cmin": lo, "cmax": hi, "showscale": True,
                    "colorbar": {"title": {"text": "Em (eV)"}, "x": 1.0, "len": 0.8}},
            text=texts, hovertemplate="%{text}<extra></extra>"))
    perc = ", ".join(f"{d}D {'-' if e is None else f'{e:.2f}'}" for d, e in analyzer.percolation.items())
    fig.update_layout(
        title=f"{analyzer.structure.composition.reduced_formula}: {analyzer.ion} hops "
              f"(<= {analyzer.max_distance:g} A); percolation (eV): {perc}",
        scene={"xaxis_title": "x (A)", "yaxis_title": "y (A)", "zaxis_title": "z (A)", "aspectmode": "data"},
        legend={"itemsizing": "constant", "x": 0.0, "y": 1.0, "bgcolor": "rgba(255,255,255,0.7)"},
        margin={"l": 0, "r": 0, "t": 40, "b": 0},
    )
    return fig


def write_network_html(analyzer: MigrationBarrierAnalyzer, path: str | os.PathLike) -> Path:
    """Write :func:`network_figure` as one self-contained HTML file (plotly.js inline).

    Args:
        analyzer: the built analyzer.
        path: the output ``.html`` file.

    Returns:
        The path written.
    """
    out = Path(path)
    network_figure(analyzer).write_html(out, include_plotlyjs=True, full_html=True)
    return out
