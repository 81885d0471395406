"""Migration-barrier analysis of a crystal: hop network, hop table, percolation, plot.

Example::

    from ase_em.crystals.analyzer import MigrationBarrierAnalyzer

    an = MigrationBarrierAnalyzer("LiFePO4.cif", "Li", max_distance=5.0)
    print(an.format_table())
    an.percolation            # {1: 0.3, 2: 0.9, 3: None}  (eV)
    an.plot_network("net.png")
    an.conductivity([300, 400, 500])   # sigma(T), D(T), Ea (ase_em.transport)

Hops outside the model's domain carry flags (:mod:`ase_em.model.domain`); those with a flag of
:data:`ase_em.model.domain.EXCLUDING_FLAGS` (a long or short hop, a path in the grey zone, no
host framework) are left out of percolation and path finding
unless ``include_flagged=True``, as blocked hops always are.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ase_em.config import NetworkOptions
from ase_em.crystals.disordered import DisorderedNetwork, disordered_input, disordered_network
from ase_em.crystals.labelling import edge_table, migration_graph_with_em, set_path_costs
from ase_em.crystals.percolation import PeriodicEdge, percolation_barriers
from ase_em.crystals.structure import StructureInput, check_ion, to_structure
from ase_em.hops.migration_hop import is_empty_site
from ase_em.model.domain import FLAGS, excluded
from ase_em.transport import ConductivityResult, RateNetwork, conductivity, ion_charge

if TYPE_CHECKING:
    from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph
    from pymatgen.core import Structure

    from ase_em.predictor import EmPredictor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HopRow:
    """One unique (symmetry-distinct) hop of the network.

    Attributes:
        label: MigrationGraph's ``hop_label``.
        length: hop length (A).
        em: predicted barrier (eV); None for a blocked hop (path through a host atom).
        em_std: ensemble spread (eV); None for a single model or a blocked hop.
        multiplicity: number of symmetry-equivalent hops per unit cell.
        blocked: why the hop is blocked, else None.
        flags: the hop's domain flags (:data:`ase_em.model.domain.FLAGS`); empty inside the domain.
        reasons: one sentence per flag.
        used: whether percolation and path finding use the hop (not blocked, and no
            excluding flag unless flagged hops are included).
        into_empty_site: whether the hop ends on a candidate empty site of the ion
            (:mod:`ase_em.crystals.empty_sites`).
    """

    label: int
    length: float
    em: float | None
    em_std: float | None
    multiplicity: int
    blocked: str | None = None
    flags: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    used: bool = True
    into_empty_site: bool = False


def graph_percolation_barriers(
    mg: MigrationGraph, *, include_flagged: bool = False
) -> dict[int, float | None]:
    """Percolation barriers (eV) of a graph labelled by :func:`label_migration_graph`.

    Args:
        mg: the labelled MigrationGraph (edges carry ``em``, ``em_flags`` and ``to_jimage``).
        include_flagged: use hops with a flag of :data:`ase_em.model.domain.EXCLUDING_FLAGS` too.

    Returns:
        ``{1: E1, 2: E2, 3: E3}`` in eV, None where the hops used do not percolate in that
        many dimensions (see :mod:`ase_em.crystals.percolation`).
    """
    edges = [
        PeriodicEdge(e["u"], e["v"], e["to_jimage"], e["em"])
        for e in edge_table(mg)
        if include_flagged or not excluded(e["flags"])
    ]
    return percolation_barriers(edges, n_sites=len(mg.only_sites))


class MigrationBarrierAnalyzer:
    """Barriers of every hop of an ion in a crystal, and what they add up to.

    Args:
        structure: the crystal with all sites of the ion occupied (pymatgen Structure,
            ASE Atoms or a structure file such as a CIF).
        ion: element of the migrating ion, e.g. "Li".
        predictor: the predictor (default: the shipped model).
        options: the network settings, :class:`ase_em.config.NetworkOptions`.
        **keywords: fields of NetworkOptions replacing those of ``options``:
            ``max_distance`` (longest ion-ion hop, A), ``min_length`` (vacancy-supercell
            width, A), ``symprec``, ``include_flagged`` (let hops outside the model's domain
            into percolation and path finding), ``empty_sites`` (True, False, or None:
            when no two occupied sites are within ``max_distance`` or when the hops between
            occupied sites do not percolate in any dimension inside the model's domain; the
            graph is then built again with them and kept if it percolates, and
            ``empty_sites_note`` says so), ``n_orderings``, ``ordering_tolerance`` and
            ``seed`` (orderings of a structure with partial occupancies, drawn all or until
            the barriers settle, :mod:`ase_em.crystals.disordered`),
            ``progress``.

    Attributes:
        structure: the pymatgen Structure (for a disordered input: the average structure's
            primitive cell).
        ion: the migrating ion.
        graph: the MigrationGraph with ``em``, ``em_std`` and ``cost`` on every edge
            (disordered input: median over orderings, ``em_std`` with their spread).
        disorder: the :class:`ase_em.crystals.disordered.DisorderedNetwork` of a disordered
            input (per-ordering values, spreads), else None.
        empty_sites_note: why candidate empty sites were added automatically, else None.
    """

    def __init__(
        self,
        structure: StructureInput,
        ion: str,
        *,
        predictor: EmPredictor | None = None,
        options: NetworkOptions | None = None,
        **keywords: Any,
    ) -> None:
        """Build and label the migration graph (one prediction per unique hop)."""
        self.ion = ion
        self.options = NetworkOptions.build(options, **keywords)
        self.max_distance = float(self.options.max_distance)
        self.include_flagged = bool(self.options.include_flagged)
        self.predictor = predictor
        empty_sites = self.options.empty_sites
        average = disordered_input(structure)
        if average is None:
            structure = to_structure(structure)
            check_ion(structure, ion)
        self.empty_sites_note: str | None = None
        occupied_only = self._build(average, structure, empty_sites)
        self._use(occupied_only)
        if empty_sites is None and not self.has_empty_sites and not self._percolates():
            # Auto: the occupied sites alone do not percolate inside the model's domain, so
            # the path may run through sites empty in the ordered crystal: add them and keep
            # that graph if it percolates (both graphs' hops between occupied sites agree).
            self._use(self._build(average, structure, True))
            if self._percolates():
                self.empty_sites_note = (
                    "candidate empty sites added: the occupied sites alone do not percolate "
                    "inside the model's domain"
                )
                logger.info("%s: %s", self.structure.composition.reduced_formula, self.empty_sites_note)
            else:
                self._use(occupied_only)

    def _build(
        self, average, structure, empty_sites: bool | None
    ) -> tuple[Structure, MigrationGraph, DisorderedNetwork | None]:
        """(structure, graph, disorder) of ``average`` (disordered) or ``structure`` (ordered)."""
        disorder = None
        if average is not None:
            # partial occupancies: seeded orderings, barriers aggregated over them
            disorder = disordered_network(
                average, self.ion, predictor=self.predictor, options=self.options, empty_sites=empty_sites
            )
            structure, graph = disorder.structure, disorder.graph
        else:
            graph = migration_graph_with_em(
                structure, self.ion, predictor=self.predictor, options=self.options, empty_sites=empty_sites
            )
        set_path_costs(graph, include_flagged=self.include_flagged)
        return structure, graph, disorder

    def _use(self, state: tuple[Structure, MigrationGraph, DisorderedNetwork | None]) -> None:
        """Make ``state`` (from :meth:`_build`) the analyzer's graph; forget what was derived."""
        self.structure, self.graph, self.disorder = state
        for cached in ("percolation", "hops"):
            self.__dict__.pop(cached, None)

    def _percolates(self) -> bool:
        """Whether the hops used percolate in at least one dimension."""
        return any(e is not None for e in self.percolation.values())

    @property
    def has_empty_sites(self) -> bool:
        """Whether the graph has candidate empty sites of the ion as nodes."""
        return any(is_empty_site(site) for site in self.graph.only_sites)

    @cached_property
    def hops(self) -> list[HopRow]:
        """The unique hops, shortest first."""
        counts: dict[int, int] = {}
        for _, _, d in self.graph.m_graph.graph.edges(data=True):
            counts[d["hop_label"]] = counts.get(d["hop_label"], 0) + 1
        rows = []
        for label, d in self.graph.unique_hops.items():
            blocked = d.get("em_blocked")
            flags = tuple(d.get("em_flags", ()))
            rows.append(
                HopRow(
                    label=int(label),
                    length=float(d["hop"].length),
                    em=None if blocked else float(d["em"]),
                    em_std=None if blocked or d["em_std"] is None else float(d["em_std"]),
                    multiplicity=counts[label],
                    blocked=blocked,
                    flags=flags,
                    reasons=tuple(d.get("em_flag_reasons", ())),
                    used=not blocked and (self.include_flagged or not excluded(flags)),
                    into_empty_site=is_empty_site(d["hop"].esite) or is_empty_site(d["hop"].isite),
                )
            )
        return sorted(rows, key=lambda r: (r.length, r.label))

    @cached_property
    def percolation(self) -> dict[int, float | None]:
        """Percolation barriers ``{1: E1, 2: E2, 3: E3}`` (eV; None: no percolation).

        For a disordered structure: the median over the orderings of each ordering's
        percolation barrier (``disorder.percolation_spread`` holds their spread).
        """
        if self.disorder is not None:
            return dict(self.disorder.percolation)
        return graph_percolation_barriers(self.graph, include_flagged=self.include_flagged)

    @property
    def structure_flags(self) -> tuple[str, ...]:
        """Flags every predicted hop shares (e.g. ``ion_not_in_train``): they hold for the whole result."""
        sets = [set(r.flags) for r in self.hops if r.blocked is None]
        common = set.intersection(*sets) if sets else set()
        return tuple(f for f in FLAGS if f in common)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: structure, ion, max_distance, hops and percolation (eV, A)."""
        return {
            "formula": self.structure.composition.reduced_formula,
            "n_sites": len(self.structure),
            "ion": self.ion,
            "max_distance": self.max_distance,
            "include_flagged": self.include_flagged,
            "hops": [asdict(r) for r in self.hops],
            "percolation": {f"{d}D": e for d, e in self.percolation.items()},
            "percolation_flags": list(self.structure_flags),
            "empty_sites": self.has_empty_sites,
            "empty_sites_note": self.empty_sites_note,
            "disorder": None if self.disorder is None else {
                **self.disorder.disorder_summary(),
                "hops": [
                    {"label": h.label, "em_spread": h.em_spread, "model_std": h.model_std,
                     "n_orderings": h.n_orderings, "n_blocked": h.n_blocked,
                     "values": [v if math.isfinite(v) else None for v in h.values]}
                    for h in self.disorder.hops
                ],
            },
        }

    def rate_network(self, *, charge: int | None = None) -> RateNetwork:
        """The hop network as a :class:`ase_em.transport.RateNetwork` (the hops percolation uses).

        Sites: every node of the graph (ion sites and candidate empty sites). Hops: every
        edge that is not blocked and, unless ``include_flagged``, has no excluding domain flag;
        each is symmetric (one barrier: a vacancy hop between occupied sites, or an occupied
        site into an empty one, predicted from the occupied side), its ``em_std`` and hop label
        (one shared draw per label) from the graph. Carriers per cell: the ion's count (the
        summed occupancy for a disordered crystal) per volume of the structure, times the
        graph's cell volume.

        Args:
            charge: the carrier's charge number (default: :func:`ase_em.transport.ion_charge`).

        Raises:
            MissingIonError: no hop is usable.
            TransportError: no default charge for the ion.
        """
        from ase_em.errors import MissingIonError

        sites = self.graph.only_sites
        edges = [e for e in edge_table(self.graph)
                 if math.isfinite(e["em"]) and (self.include_flagged or not excluded(e["flags"]))]
        if not edges:
            raise MissingIonError(
                f"{self.structure.composition.reduced_formula}: no usable {self.ion} hop (all blocked or "
                "outside the model's domain; include_flagged=True lets those in)"
            )
        std = {label: d.get("em_std") for label, d in self.graph.unique_hops.items()}
        density = float(self.structure.composition.element_composition[self.ion]) / self.structure.volume
        return RateNetwork(
            lattice=sites.lattice.matrix,
            frac_coords=sites.frac_coords,
            u=[e["u"] for e in edges],
            v=[e["v"] for e in edges],
            image=[e["to_jimage"] for e in edges],
            em_forward=[e["em"] for e in edges],
            em_std=[std.get(e["label"]) for e in edges],
            group=[e["label"] for e in edges],
            carriers_per_cell=density * sites.lattice.volume,
            charge=ion_charge(self.ion) if charge is None else int(charge),
            site_labels=tuple("empty" if is_empty_site(s) else self.ion for s in sites),
        )

    def conductivity(
        self,
        temperatures: float | list[float] | tuple[float, ...] = (300.0,),
        *,
        attempt_frequency: float = 1e13,
        n_samples: int = 200,
        seed: int = 0,
        charge: int | None = None,
        fit_temperatures: list[float] | None = None,
    ) -> ConductivityResult:
        """sigma(T), D(T) and the activation energy from the hop network (:mod:`ase_em.transport`).

        The exact one-carrier diffusion tensor of :meth:`rate_network` (rates
        ``nu exp(-Em/kT)``), ``sigma = n q^2 D / (kT)`` with Haven ratio 1, the spread from
        ``n_samples`` draws of the hops' ``em_std`` (for a disordered crystal it holds the
        spread over orderings). ``docs/conductivity.md`` states the assumptions.

        Args:
            temperatures: T (K).
            attempt_frequency: nu (Hz); log10 sigma moves by log10(nu / 1e13).
            n_samples: barrier draws (0: no spread).
            seed: seed of the draws.
            charge: the carrier's charge number (default from the ion).
            fit_temperatures: T of the Arrhenius fit (default: ``temperatures`` if at least
                two, else 250-500 K).

        Returns:
            A :class:`ase_em.transport.ConductivityResult` (``to_dict()``, ``format_table()``,
            ``plot_arrhenius(path)``, a table in notebooks).
        """
        return conductivity(
            self.rate_network(charge=charge), temperatures, attempt_frequency=attempt_frequency,
            fit_temperatures=fit_temperatures, n_samples=n_samples, seed=seed,
            formula=self.structure.composition.reduced_formula, ion=self.ion,
        )

    def _repr_html_(self) -> str:
        """The hop table and the percolation barriers as HTML (notebooks)."""
        import html

        head = "".join(f"<th>{h}</th>" for h in ("hop", "length (A)", "Em (eV)", "std (eV)", "per cell",
                                                 "used", "to", "flags"))
        rows = []
        for r in self.hops:
            em = "blocked" if r.em is None else f"{r.em:.3f}"
            std = "-" if r.em_std is None else f"{r.em_std:.3f}"
            cells = (r.label, f"{r.length:.3f}", em, std, r.multiplicity, "yes" if r.used else "no",
                     "empty" if r.into_empty_site else "ion", ", ".join(r.flags) or "-")
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
        perc = ", ".join(f"{d}D {'none' if e is None else f'{e:.3f}'}" for d, e in self.percolation.items())
        title = html.escape(f"{self.structure.composition.reduced_formula}: {self.ion} hops")
        return (f"<table><caption>{title}</caption><tr>{head}</tr>{''.join(rows)}</table>"
                f"<p>percolation barrier (eV): {perc}</p>")

    def format_table(self) -> str:
        """The hop table (with each hop's flags) and the percolation barriers as text.

        A blocked hop gets a line with its reason; when every hop is blocked (in a
        disordered crystal: in every ordering) one line says so with the first reason, in
        place of percolation barriers of "none".
        """
        lines = [f"{'hop':>4} {'length/A':>9} {'Em/eV':>7} {'std/eV':>7} {'per cell':>8} {'used':>4} "
                 f"{'to':>5}  flags"]
        for r in self.hops:
            em = "blocked" if r.em is None else f"{r.em:.3f}"
            std = "-" if r.em_std is None else f"{r.em_std:.3f}"
            flags = ",".join(r.flags) or "-"
            used = "yes" if r.used else "no"
            to = "empty" if r.into_empty_site else "ion"
            lines.append(
                f"{r.label:>4} {r.length:>9.3f} {em:>7} {std:>7} {r.multiplicity:>8} {used:>4} "
                f"{to:>5}  {flags}"
            )
        blocked = [r for r in self.hops if r.blocked is not None]
        if blocked and len(blocked) == len(self.hops):
            # one line, not a table of "none" that reads like an insulator
            what = ("every ordering failed: every hop is blocked in each of the "
                    f"{self.disorder.n_orderings} orderings" if self.disorder is not None
                    else "every hop is blocked")
            lines.append(f"percolation barrier (eV): not computed, {what} (hop {blocked[0].label}: "
                         f"{blocked[0].blocked})")
        else:
            perc = "  ".join(
                f"{d}D {'none' if e is None else f'{e:.3f}'}" for d, e in self.percolation.items()
            )
            lines.append(f"percolation barrier (eV): {perc}")
            for r in blocked:
                lines.append(f"blocked: hop {r.label}: {r.blocked}")
        if self.empty_sites_note:
            lines.append(f"note: {self.empty_sites_note} (--empty-sites no leaves them out)")
        if self.disorder is not None:
            net = self.disorder
            spread = "  ".join(
                f"{d}D {'-' if e is None else f'{e:.3f}'}" for d, e in net.percolation_spread.items()
            )
            tol = net.ordering_tolerance
            drawn = ("" if tol is None else f", drawn until the barriers settled to {tol:g} eV" if net.settled
                     else f", the most asked: the barriers did not settle to {tol:g} eV")
            lines.insert(0, f"disordered: Em is the median over {net.n_orderings} orderings ({net.method}, "
                            f"seed {net.seed}{drawn}); std = sqrt(model std^2 + spread over orderings^2)")
            spreads = [f"hop {h.label} {h.em_spread:.3f}" for h in net.hops if h.em_spread is not None]
            if spreads:
                lines.append("spread over orderings (eV): " + ", ".join(spreads))
                lines.append(f"percolation spread over orderings (eV): {spread}")
        left_out = [r for r in self.hops if r.blocked is None and not r.used]
        if left_out:
            lines.append(
                f"left out of percolation: {len(left_out)} hop(s) outside the model's domain "
                f"(hop label {', '.join(str(r.label) for r in left_out)}); --include-flagged uses them"
            )
        if self.structure_flags:
            shared = ", ".join(self.structure_flags)
            lines.append(f"warning: every hop is outside the model's domain: {shared}")
        return "\n".join(lines)

    def plot_network(self, path: str | os.PathLike, *, dpi: int = 150) -> Path:
        """Draw the hop network in the unit cell, hops coloured by Em, as a PNG (or HTML).

        Sites of the ion are dots; each hop is a segment from its site to the neighbour
        it reaches (which may lie in the next cell); blocked hops are grey dashes, hops
        left out for their domain flags dark dots. A path ending in ``.html`` gets the
        interactive plotly view of :mod:`ase_em.crystals.network_view` instead (host
        atoms, empty sites, percolating hops marked, hover with each hop's Em, std, flags).

        Args:
            path: output file (PNG, or ``.html``).
            dpi: resolution (PNG).

        Returns:
            The path written.
        """
        if Path(path).suffix.lower() in (".html", ".htm"):
            from ase_em.crystals.network_view import write_network_html

            return write_network_html(self, path)
        from matplotlib import colormaps
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure
        from mpl_toolkits.mplot3d.art3d import Line3DCollection

        fig = Figure(figsize=(6.4, 5.2))
        FigureCanvasAgg(fig)  # no pyplot, no global backend change
        ax = fig.add_subplot(projection="3d")
        m = self.structure.lattice.matrix  # (3, 3)
        corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) @ m  # (8, 3)
        cell_edges = [
            (corners[a], corners[b])
            for a in range(8)
            for b in range(a + 1, 8)
            if bin(a ^ b).count("1") == 1
        ]
        ax.add_collection3d(Line3DCollection(cell_edges, colors="0.6", linewidths=0.8))
        edges = edge_table(self.graph)
        usable = [
            math.isfinite(e["em"]) and (self.include_flagged or not excluded(e["flags"])) for e in edges
        ]
        finite = [e for e, ok in zip(edges, usable) if ok]
        ems = np.array([e["em"] for e in finite])
        lo_em, hi_em = (float(ems.min()), float(ems.max())) if len(ems) else (0.0, 1.0)
        pad = max(0.0, 0.05 - (hi_em - lo_em) / 2)  # at least a 0.1 eV colour range
        norm = Normalize(lo_em - pad, hi_em + pad)
        cmap = colormaps["viridis"]
        if finite:
            segs = [(e["ipos_cart"], e["epos_cart"]) for e in finite]
            ax.add_collection3d(Line3DCollection(segs, colors=cmap(norm(ems)), linewidths=2.5))
        blocked = [(e["ipos_cart"], e["epos_cart"]) for e in edges if not math.isfinite(e["em"])]
        if blocked:
            ax.add_collection3d(Line3DCollection(blocked, colors="0.5", linewidths=1.0, linestyles="--"))
        flagged = [(e["ipos_cart"], e["epos_cart"]) for e, ok in zip(edges, usable)
                   if not ok and math.isfinite(e["em"])]
        if flagged:  # outside the model's domain, left out: dotted
            ax.add_collection3d(Line3DCollection(flagged, colors="0.3", linewidths=1.0, linestyles=":"))
        sites = np.array(self.graph.only_sites.cart_coords)  # (S, 3)
        ax.scatter(*sites.T, color="k", s=18, depthshade=False)
        ends = np.array([p for e in edges for p in (e["ipos_cart"], e["epos_cart"])] + list(corners))
        lo, hi = ends.min(0), ends.max(0)
        ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), zlim=(lo[2], hi[2]),
               xlabel="x (A)", ylabel="y (A)", zlabel="z (A)")
        ax.set_box_aspect(np.maximum(hi - lo, 1e-3))
        ax.locator_params(nbins=4)
        ax.tick_params(labelsize=7)
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.7, pad=0.12, label="Em (eV)")
        perc = ", ".join(f"{d}D {'-' if e is None else f'{e:.2f}'}" for d, e in self.percolation.items())
        ax.set_title(f"{self.structure.composition.reduced_formula}: {self.ion} hops "
                     f"(<= {self.max_distance:g} A)\npercolation (eV): {perc}", fontsize=10)
        out = Path(path)
        fig.savefig(out, dpi=dpi)
        return out
