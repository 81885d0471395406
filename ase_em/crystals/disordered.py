"""Hop barriers of a disordered crystal: one hop graph, several orderings, median and spread.

The hop graph is built once, on the average structure's primitive cell, with every
candidate ion site (:func:`ase_em.crystals.disorder.ion_sites`) as a node (and, when asked or when
no two of them are within ``max_distance``, the framework's empty sites of
:mod:`ase_em.crystals.empty_sites`, always empty in every ordering): ``MigrationGraph``
groups the hops by the average structure's symmetry, so a hop label means the same hop in
every ordering. Then, for each ordering (:func:`ase_em.crystals.disorder.sample_orderings`, drawn in
the vacancy supercell of :func:`ase_em.crystals.labelling.supercell_matrix`, widths at least
``max(min_length, 2 * hop length + 1 A)`` as for ordered crystals; hops that need the same
supercell share its orderings), each hop label gets one band:

* the instance of the hop in the supercell is one whose initial site holds the ion in
  this ordering and whose final site is empty, if there is one (a vacancy hop of the
  ordering itself); else one whose initial site holds the ion; else any instance whose
  endpoints hold no host atom (the ion is put on the initial site); ties are broken by
  the seeded generator;
* the band is built as the training data were (``docs/hops.md``): the ion at the initial
  site, the host is every other atom of the ordering, less any ion within the exclusion
  distance of either endpoint (1.5 A, or the overlap limit of two ions if larger,
  :func:`ase_em.crystals.disorder.exclusion_radius`): the final site is emptied; split
  partners and sites that exclude an endpoint site go.

Aggregation over the orderings, per hop label and per percolation dimension:

* ``em`` is the median over the orderings (a blocked band counts as +inf, so a hop blocked
  in most orderings is blocked);
* ``em_spread`` is the standard deviation (ddof=1) of the finite values over orderings;
* ``em_std = sqrt(model_std**2 + em_spread**2)``, with ``model_std`` the median of the
  model's calibrated ``em_std`` over the orderings: the two are independent sources of
  error (the model's error on one ordered band, and which ordering the crystal takes).

Percolation barriers are computed for each ordering on the average graph with that
ordering's barriers (bands outside the model's domain left out, as
:class:`ase_em.crystals.analyzer.MigrationBarrierAnalyzer` leaves such hops out), then aggregated
the same way (a dimension that does not percolate
counts as +inf; the median is None when it is +inf).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms
from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph
from pymatgen.core import Element, Lattice, Structure
from pymatgen.util.coord import lattice_points_in_supercell

from ase_em.config import NetworkOptions
from ase_em.crystals.disorder import (
    MAX_SECONDS,
    MAX_SUPERCELL_ATOMS,
    MERGE_RADIUS,
    check_time,
    exclusion_radius,
    iter_orderings,
    skeleton,
)
from ase_em.crystals.hop_graph import build_migration_graph
from ase_em.crystals.percolation import DIMENSIONS, PeriodicEdge, percolation_barriers
from ase_em.crystals.structure import read_structure_file
from ase_em.errors import AseEmError, MissingIonError
from ase_em.hops.checks import contacts_clean, points_near
from ase_em.hops.hop import Hop
from ase_em.hops.migration_hop import PATH_MARGIN, supercell_matrix
from ase_em.model.domain import FLAGS, excluded

if TYPE_CHECKING:
    from ase_em.predictor import EmPredictor

logger = logging.getLogger(__name__)

METHOD = "random occupation sampling (ase_em.crystals.disorder)"
HOST_TOLERANCE = 0.5  # A: a host atom this close to a candidate ion site occupies it


@dataclass(frozen=True)
class DisorderedHop:
    """One unique hop of a disordered crystal, aggregated over the orderings.

    Attributes:
        label: MigrationGraph's ``hop_label`` on the average structure.
        length: hop length (A).
        em: median barrier over the orderings (eV); None when blocked in most of them.
        em_std: ``sqrt(model_std**2 + em_spread**2)`` (eV); None if blocked or no model spread.
        em_spread: standard deviation of the barrier over the orderings (eV).
        model_std: median of the model's ``em_std`` over the orderings (eV), or None.
        n_orderings: orderings that gave a band for this hop.
        n_blocked: of those, bands whose straight path runs through an atom.
        multiplicity: symmetry-equivalent hops per primitive cell.
        blocked: why the hop is blocked (the first ordering's reason), else None.
        flags: domain flags (:mod:`ase_em.model.domain`) raised in most orderings' bands.
        reasons: one sentence per flag.
        values: the barrier of each ordering that gave a band (eV; inf: blocked).
    """

    label: int
    length: float
    em: float | None
    em_std: float | None
    em_spread: float | None
    model_std: float | None
    n_orderings: int
    n_blocked: int
    multiplicity: int
    blocked: str | None = None
    values: tuple[float, ...] = ()
    flags: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()


@dataclass
class DisorderedNetwork:
    """The hop network of a disordered crystal, aggregated over orderings.

    Attributes:
        structure: the average structure (primitive cell, partial occupancies kept).
        ion: the mobile ion.
        graph: MigrationGraph on the candidate sites; edges carry the median ``em``,
            the combined ``em_std`` and ``em_spread`` (eV), and ``cost``.
        hops: the unique hops, shortest first.
        percolation: median percolation barriers ``{1: E1, 2: E2, 3: E3}`` (eV; None: no
            percolation in most orderings).
        percolation_spread: their standard deviation over the orderings (eV).
        per_ordering: percolation barriers of each ordering.
        n_orderings: orderings drawn (with ``ordering_tolerance``, in the supercell that
            drew most; each hop's own count is its ``n_orderings``); ``seed``: their seed;
            ``method``: how they were drawn.
        ordering_tolerance: the standard error (eV) the orderings were drawn to, or None
            (a fixed count).
        settled: with ``ordering_tolerance``, whether every supercell's barriers settled
            before the most orderings (``n_orderings`` of the options) were drawn; else None.
        supercell: the (3, 3) supercell matrices of the orderings (rows, on the primitive
            cell), one per hop-length class.
        missing: for each supercell, the atoms left out of each ordering (module
            :mod:`ase_em.crystals.disorder`).
        seconds: wall time of the whole computation.
    """

    structure: Structure
    ion: str
    graph: MigrationGraph
    hops: list[DisorderedHop]
    percolation: dict[int, float | None]
    percolation_spread: dict[int, float | None]
    per_ordering: list[dict[int, float | None]]
    n_orderings: int
    seed: int
    supercell: list[list[list[int]]]
    missing: list[list[dict[str, int]]]
    seconds: float
    method: str = METHOD
    n_sites: int = field(default=0)
    ordering_tolerance: float | None = None
    settled: bool | None = None

    def disorder_summary(self) -> dict[str, Any]:
        """JSON-ready description of the orderings and the aggregation."""
        return {
            "method": self.method,
            "n_orderings": self.n_orderings,
            "ordering_tolerance": self.ordering_tolerance,
            "settled": self.settled,
            "seed": self.seed,
            "supercell": self.supercell,
            "aggregate": "median over orderings; em_std = sqrt(model_std^2 + spread^2)",
            "missing_atoms": self.missing,
            "percolation_spread": {f"{d}D": e for d, e in self.percolation_spread.items()},
            "percolation_per_ordering": [{f"{d}D": e for d, e in p.items()} for p in self.per_ordering],
            "seconds": round(self.seconds, 2),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: hops, percolation (eV, A) and the disorder summary."""
        return {
            "formula": self.structure.composition.reduced_formula,
            "n_sites": len(self.structure),
            "ion": self.ion,
            "hops": [{**asdict(h), "values": [v if math.isfinite(v) else None for v in h.values]}
                     for h in self.hops],
            "percolation": {f"{d}D": e for d, e in self.percolation.items()},
            "disorder": self.disorder_summary(),
        }


def read_average_structure(
    structure: Structure | str | os.PathLike, *, block: str | None = None
) -> Structure:
    """A Structure from a Structure or a structure file, partial occupancies kept.

    Files are read by :func:`ase_em.crystals.structure.read_structure_file` (occupancy
    rounding, vacancy symbols, CIF data blocks, MigrationGraph JSON).

    Raises:
        StructureFileError: missing or unreadable file, or no atoms.
    """
    if isinstance(structure, Structure):
        return structure
    return read_structure_file(structure, block=block)


def disordered_input(structure: Any, *, block: str | None = None) -> Structure | None:
    """The average structure if ``structure`` (a Structure or a structure file) is disordered, else None.

    Unreadable files give None: the ordered-structure reader then reports them.
    """
    if isinstance(structure, Structure):
        return None if structure.is_ordered else structure
    if not isinstance(structure, (str, os.PathLike)):
        return None  # ASE Atoms hold no partial occupancies
    try:
        average = read_average_structure(structure, block=block)
    except AseEmError:
        return None
    return None if average.is_ordered else average


def disordered_network(
    structure: Structure | str | os.PathLike,
    ion: str,
    *,
    predictor: EmPredictor | None = None,
    options: NetworkOptions | None = None,
    max_atoms: int = MAX_SUPERCELL_ATOMS,
    max_seconds: float = MAX_SECONDS,
    **keywords: Any,
) -> DisorderedNetwork:
    """Barriers of every hop of ``ion`` in a disordered crystal (module docstring).

    Args:
        structure: the average structure (partial occupancies) or its file (CIF, ...).
        ion: element of the mobile ion, e.g. "Li".
        predictor: the predictor (default: the shipped model).
        options: the network settings (:class:`ase_em.config.NetworkOptions`): the longest
            hop between candidate sites, supercell width, symmetry precision, orderings and
            seed; ``include_flagged`` lets bands outside the model's domain (a flag of
            :data:`ase_em.model.domain.EXCLUDING_FLAGS`) into each ordering's percolation;
            ``empty_sites`` None adds the framework's empty sites only when no two
            candidate sites are within ``max_distance``.
        max_atoms: cap on the sites of the ordering supercell.
        max_seconds: cap on the time spent (checked between stages).
        **keywords: fields of NetworkOptions that replace those of ``options``.

    Returns:
        The aggregated network.

    Raises:
        MissingIonError: no site holds the ion, or no hop is that short.
        DisorderError: beyond the supercell or time caps.
        StructureFileError: unreadable file.
    """
    t0 = time.perf_counter()
    opts = NetworkOptions.build(options, **keywords)
    max_distance, min_length, symprec = opts.max_distance, opts.min_length, opts.symprec
    n_orderings, seed, empty_sites = opts.n_orderings, opts.seed, opts.empty_sites
    tolerance = opts.ordering_tolerance
    include_flagged, progress = opts.include_flagged, opts.progress
    average = read_average_structure(structure)
    formula = average.composition.reduced_formula
    if Element(ion) not in average.composition:
        present = ", ".join(sorted({el.symbol for el in average.composition.elements}))
        raise MissingIonError(f"{formula}: no {ion} in the structure (elements: {present})")
    try:
        average = average.get_primitive_structure()
    except Exception as exc:  # noqa: BLE001 - a failed reduction keeps the cell as given
        logger.warning("%s: primitive cell not found (%s); using the cell as given", formula, exc)
    skel = skeleton(average, ion, merge_radius=MERGE_RADIUS)
    mg = build_migration_graph(skel, ion, max_distance, symprec=symprec, primitive=False,
                               empty_sites=bool(empty_sites))
    if empty_sites is None and mg.m_graph.graph.number_of_edges() == 0:
        # no two candidate sites within max_distance (a NASICON's M1 sites): add the
        # framework's empty sites, as for an ordered crystal (ase_em.crystals.empty_sites)
        mg = build_migration_graph(
            skel, ion, max_distance, symprec=symprec, primitive=False, empty_sites=True
        )
    edges = [(int(u), int(v), tuple(int(x) for x in d["to_jimage"]), int(d["hop_label"]))
             for u, v, d in mg.m_graph.graph.edges(data=True)]
    if not edges:
        raise MissingIonError(
            f"{formula}: no {ion}-{ion} hop shorter than {max_distance} A between its "
            f"{len(mg.only_sites)} candidate sites (raise max_distance)"
        )
    check_time(t0, formula, max_seconds)
    labels = sorted({e[3] for e in edges})
    unique = mg.unique_hops  # a pymatgen property that walks every edge: read it once
    # Each hop's band in the supercell the training convention gives it (widths at least
    # max(min_length, 2 * length + 1 A)); hops needing the same supercell share its orderings.
    by_cell: dict[tuple, list[int]] = {}
    for label in labels:
        width = max(min_length, 2 * unique[label]["hop"].length + PATH_MARGIN)
        m = supercell_matrix(average.lattice, width)
        by_cell.setdefault(tuple(map(tuple, m.tolist())), []).append(label)
    if predictor is None:
        from ase_em.predictor import EmPredictor

        predictor = EmPredictor.from_pretrained()
    prim = average.lattice.matrix  # (3, 3)
    sites = mg.only_sites  # candidate ion sites on the primitive cell (same lattice as `average`)
    rng = np.random.default_rng(seed)
    keys: list[tuple[int, int]] = []  # (ordering, label) of each band
    results = []
    blocked: dict[tuple[int, int], str] = {}
    supercells, missing = [], []
    drawn: dict[int, int] = {}  # label -> orderings drawn in its supercell
    all_settled = True
    for cell, cell_labels in by_cell.items():
        m = np.array(cell)
        draws = iter_orderings(average, m, seed=seed, max_atoms=max_atoms)
        supercells.append(m.tolist())
        missing.append([])
        shifts = np.rint(lattice_points_in_supercell(m) @ m).astype(int)  # (T, 3) cells of the supercell
        # every instance of each hop in the supercell: the same for all its orderings
        instances = [_instances(sites, edges, label, shifts, prim) for label in cell_labels]
        values: dict[int, list[float]] = {label: [] for label in cell_labels}  # barriers so far
        for k in range(n_orderings):
            ordering = next(draws)
            missing[-1].append(ordering.missing)
            first_key = len(keys)
            o = ordering.lattice  # the ordering's arrays: no pymatgen Structure is built
            symbols = np.array(ordering.species)  # (N,)
            is_ion = symbols == ion
            frac = ordering.frac_coords  # (N, 3)
            cart = ordering.cart_coords  # (N, 3)
            # every host is part of the ordering: its contacts are checked once, not per hop
            clean = contacts_clean(Atoms(ordering.species, positions=cart, cell=o.matrix, pbc=True))
            hops: list[Hop] = []
            chosen = _choose_instances(o, cart, is_ion, instances, rng)
            for label, inst in zip(cell_labels, chosen, strict=True):
                if inst is None:
                    continue
                start, vector = inst
                try:
                    name = f"{formula} {ion} hop {label} ordering {k}"
                    hops.append(_band_hop(o, frac, cart, symbols, is_ion, ion, start, vector, name, clean))
                    keys.append((k, label))
                except AseEmError as exc:
                    blocked[(k, label)] = str(exc)
            results.extend(predictor.predict(hops, progress=progress))
            check_time(t0, formula, max_seconds)
            for (_, label), r in zip(keys[first_key:], results[first_key:], strict=True):
                values[label].append(r.em)
            for label in cell_labels:
                if (k, label) in blocked:
                    values[label].append(math.inf)
            settled = tolerance is not None and barriers_settled(values.values(), tolerance)
            if settled:
                break
        drawn.update(dict.fromkeys(cell_labels, k + 1))
        all_settled = all_settled and settled
        if tolerance is not None:
            logger.info("%s: %d of at most %d orderings in supercell %s; the barriers %s to %g eV",
                        formula, k + 1, n_orderings, m.tolist(), "settled" if settled else "did not settle",
                        tolerance)
    n_drawn = max(drawn.values())
    em = {key: (r.em, r.em_std) for key, r in zip(keys, results, strict=True)}
    flags = {key: (tuple(r.flags), tuple(r.reasons)) for key, r in zip(keys, results, strict=True)}
    for key in blocked:
        em[key] = (math.inf, None)

    counts: dict[int, int] = {}
    for e in edges:
        counts[e[3]] = counts.get(e[3], 0) + 1
    rows = []
    for label in labels:
        vals = [em[(k, label)] for k in range(n_orderings) if (k, label) in em]
        ems = np.array([v[0] for v in vals], float)
        finite = ems[np.isfinite(ems)]
        med = float(np.median(ems)) if len(ems) else math.inf
        spread = float(np.std(finite, ddof=1)) if len(finite) > 1 else (0.0 if len(finite) else None)
        stds = [v[1] for v in vals if v[1] is not None and math.isfinite(v[0])]
        model_std = float(np.median(stds)) if stds else None
        ok = math.isfinite(med)
        known = ok and model_std is not None and spread is not None
        combined = math.hypot(model_std, spread) if known else None
        reason = None
        if not ok:
            reason = next((blocked[(k, label)] for k in range(n_orderings) if (k, label) in blocked),
                          "no instance of the hop with both endpoints free of host atoms")
        rows.append(DisorderedHop(
            label=label, length=float(unique[label]["hop"].length), em=med if ok else None,
            em_std=combined, em_spread=spread if ok else None, model_std=model_std,
            n_orderings=len(vals), n_blocked=int((~np.isfinite(ems)).sum()),
            multiplicity=counts[label], blocked=reason, values=tuple(float(x) for x in ems),
        ))
        # domain flags raised in most orderings hold for the hop
        raised = Counter(f for k in range(n_orderings) for f in flags.get((k, label), ((), ()))[0])
        majority = [f for f in FLAGS if raised[f] * 2 > len(vals)]
        why = {f: r for k in range(n_orderings)
               for f, r in zip(*flags.get((k, label), ((), ())), strict=True)}
        rows[-1] = replace(rows[-1], flags=tuple(majority), reasons=tuple(why[f] for f in majority))
        mg.add_data_to_similar_edges(label, {
            "em": med if ok else math.inf, "em_std": combined, "em_spread": spread,
            "em_flags": list(majority), "em_flag_reasons": [why[f] for f in majority],
            **({"em_blocked": reason} if reason else {}),
        })
    mg.assign_cost_to_graph(["em"])

    # A hop whose supercell settled before ordering k stands in it with its median and flags
    settled_row = {r.label: r for r in rows}
    per_ordering = []
    for k in range(n_drawn):
        pe = []
        for u, v, img, lab in edges:
            if k < drawn[lab]:
                e, f = em.get((k, lab), (math.inf, None))[0], flags.get((k, lab), ((), ()))[0]
            else:
                row = settled_row[lab]
                e, f = (math.inf if row.em is None else row.em), row.flags
            if include_flagged or not excluded(f):
                pe.append(PeriodicEdge(u, v, img, e))
        per_ordering.append(percolation_barriers(pe, n_sites=len(sites)))
    perc, perc_spread = {}, {}
    for d in DIMENSIONS:
        vals = np.array([math.inf if p[d] is None else p[d] for p in per_ordering])
        med = float(np.median(vals))
        finite = vals[np.isfinite(vals)]
        perc[d] = med if math.isfinite(med) else None
        perc_spread[d] = float(np.std(finite, ddof=1)) if len(finite) > 1 and perc[d] is not None else None
    rows.sort(key=lambda r: (r.length, r.label))
    return DisorderedNetwork(
        structure=average, ion=ion, graph=mg, hops=rows, percolation=perc,
        percolation_spread=perc_spread, per_ordering=per_ordering, n_orderings=n_drawn,
        seed=seed, supercell=supercells, missing=missing,
        seconds=time.perf_counter() - t0, n_sites=len(sites), ordering_tolerance=tolerance,
        settled=all_settled if tolerance is not None else None,
    )


MIN_SETTLED_ORDERINGS = 2  # the fewest orderings with a spread to judge


def barriers_settled(values: Iterable[Sequence[float]], tolerance: float) -> bool:
    """Whether the barriers of the hops, over the orderings drawn so far, have settled.

    A hop has settled when it has no band in any ordering yet (nothing to judge), when it is
    blocked (+inf) in each of at least two orderings, or when it is finite in each of at
    least two with the standard error of the mean, ``std(ddof=1) / sqrt(k)``, at most
    ``tolerance``. A hop with one band, or blocked in some orderings and open in others,
    has not settled. True when every hop has.

    Args:
        values: per hop, its barriers (eV; +inf blocked) in the orderings that gave it a band.
        tolerance: largest standard error (eV).

    Returns:
        True when every hop has settled.
    """
    for v in values:
        v = np.asarray(v, float)
        if len(v) == 0:
            continue
        if len(v) < MIN_SETTLED_ORDERINGS:
            return False
        finite = np.isfinite(v)
        if not finite.any():
            continue
        if not finite.all() or float(np.std(v, ddof=1)) / math.sqrt(len(v)) > tolerance:
            return False
    return True


def _instances(
    sites: Structure,
    edges: list[tuple[int, int, tuple[int, int, int], int]],
    label: int,
    shifts: np.ndarray,
    prim: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Starts (I, 3) and hop vectors (I, 3) (Cartesian, A) of every instance of hop ``label``.

    Each of the hop's edges, from every primitive cell of the supercell (``shifts``).
    """
    starts, vectors = [], []
    for u, v, img, lab in edges:
        if lab != label:
            continue
        vec = sites[v].coords + np.asarray(img) @ prim - sites[u].coords  # (3,)
        for t in shifts:
            starts.append(sites[u].coords + t @ prim)
            vectors.append(vec)
    return np.array(starts).reshape(-1, 3), np.array(vectors).reshape(-1, 3)


def _choose_instances(
    o: Lattice,
    cart: np.ndarray,
    is_ion: np.ndarray,
    instances: list[tuple[np.ndarray, np.ndarray]],
    rng: np.random.Generator,
) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Start (Cartesian, A) and hop vector of the best instance of each hop in ordering ``o``.

    Args:
        o: the ordering's lattice (supercell).
        cart: (N, 3) its atoms' Cartesian coordinates (A).
        is_ion: (N,) which atoms of ``o`` are the migrating ion.
        instances: per hop, the starts and vectors of :func:`_instances`.
        rng: draws among equally good instances, hop by hop in order.

    Returns:
        Per hop, (start, vector), or None when every instance has a host atom on an endpoint.
    """
    counts = [len(starts) for starts, _ in instances]
    if not sum(counts):
        return [None] * len(instances)
    starts_a = np.vstack([starts for starts, _ in instances])  # (I, 3), all hops' instances
    ends_a = starts_a + np.vstack([vectors for _, vectors in instances])
    n = len(starts_a)
    # the atoms near each instance's two ends (periodic images included), from pymatgen's
    # compiled neighbour search, once for all hops of the ordering (a search's cost is mostly
    # binning the ordering's atoms): a dense (instances x atoms) distance matrix cost more
    # than the rest of an ordering's bands
    host_on, ion_at_start, end_empty = np.zeros(n, bool), np.zeros(n, bool), np.ones(n, bool)
    for points, at_start in ((starts_a, True), (ends_a, False)):
        inst, atom, _, dist = points_near(cart, points, o.matrix,
                                          max(HOST_TOLERANCE, MERGE_RADIUS) + 1e-6)
        host_on[inst[(dist < HOST_TOLERANCE) & ~is_ion[atom]]] = True
        if at_start:
            ion_at_start[inst[(dist < MERGE_RADIUS) & is_ion[atom]]] = True
        else:
            end_empty[inst[dist < MERGE_RADIUS]] = False
    score_all = np.where(host_on, -1, 2 * ion_at_start + end_empty)  # (I,)
    chosen: list[tuple[np.ndarray, np.ndarray] | None] = []
    first = 0
    for (starts, vectors), count in zip(instances, counts, strict=True):
        score = score_all[first : first + count]
        first += count
        if not count or int(score.max()) < 0:
            chosen.append(None)
            continue
        pick = int(rng.choice(np.flatnonzero(score == score.max())))
        chosen.append((starts[pick], vectors[pick]))
    return chosen


def _band_hop(
    o: Lattice, frac: np.ndarray, cart: np.ndarray, symbols: np.ndarray, is_ion: np.ndarray, ion: str,
    start: np.ndarray, vector: np.ndarray, name: str, clean: bool = False,
) -> Hop:
    """The vacancy-mode hop in the ordering on lattice ``o``.

    ``frac``, ``cart`` (N, 3) and ``symbols`` (N,) are the ordering's atoms' fractional and
    Cartesian coordinates and elements, read once per ordering. The ion at ``start``; every
    other atom is the host, less ions within the exclusion distance of either endpoint
    (:func:`ase_em.crystals.disorder.exclusion_radius`: sites that exclude the endpoint
    sites, such as P2-NaxCoO2's Na 2d site 1.64 A from a 2b site). ``clean``: the ordering
    passed :func:`ase_em.hops.checks.contacts_clean` (the host is part of it).
    """
    ends = o.get_fractional_coords(np.vstack([start, start + vector]))  # (2, 3)
    d = o.get_all_distances(ends, frac)  # (2, N)
    keep = ~(is_ion & (d < exclusion_radius(ion)).any(0))  # (N,)
    return (Hop.in_checked_host if clean else Hop)(
        ion=ion,
        start=np.asarray(start, float),
        end=np.asarray(start + vector, float),
        host_symbols=tuple(symbols[keep].tolist()),
        host_positions=cart[keep].copy(),
        cell=o.matrix.copy(),
        ion_index=0,
        name=name,
    )


__all__ = [
    "METHOD",
    "DisorderedHop",
    "DisorderedNetwork",
    "disordered_input",
    "disordered_network",
    "read_average_structure",
]
