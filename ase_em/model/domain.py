"""The model's domain: what it was trained on, and flags for hops outside it.

A model directory may hold ``domain.json`` beside its weights, computed once from the
training hops by :func:`build_domain` (the shipped one by ``benchmarks/domain_study.py
--write``). It records the hop-length range, the migrating ions with their counts, the
elements seen, and the training hops' *descriptors*: eight numbers per hop that describe
its geometry and its chemical surroundings (:data:`DESCRIPTOR_NAMES`).

:func:`domain_flags` checks one hop against it and returns short, stable flags, each with
a human reason:

==================== ==========================================================================
flag                 meaning
==================== ==========================================================================
``no_host_framework`` no host atom of another element than the ion (a lone atom, a metal)
``ion_not_in_train``  the migrating ion was never a migrating ion in training
``element_not_in_train`` a host element never appears in the training hops
``long_hop``          hop longer than the longest training hop
``short_hop``         hop shorter than the shortest training hop
``far_from_train``    descriptor's mean distance to its k nearest training hops beyond the
                      threshold (see :class:`ModelDomain`)
``path_grey_zone``    the straight path passes a host atom closer than usual, but not so close
                      that the hop is blocked (:mod:`ase_em.hops.checks`)
==================== ==========================================================================

The descriptor (:func:`hop_descriptor`) is hand-written (dense numpy distances and
pymatgen element data) rather than the network's own embedding, so that it is the same for
every model trained on the same data; it costs about 7-19 ms a hop on one thread.
Its threshold comes from cross-validation of the shipped model (docs/hops.md, "The
model's domain").
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ase_em.hops.hop import Hop

DOMAIN_FILE = "domain.json"

NO_HOST_FRAMEWORK = "no_host_framework"
ION_NOT_IN_TRAIN = "ion_not_in_train"
ELEMENT_NOT_IN_TRAIN = "element_not_in_train"
LONG_HOP = "long_hop"
SHORT_HOP = "short_hop"
FAR_FROM_TRAIN = "far_from_train"
PATH_GREY_ZONE = "path_grey_zone"
FLAGS = (
    NO_HOST_FRAMEWORK,
    ION_NOT_IN_TRAIN,
    ELEMENT_NOT_IN_TRAIN,
    LONG_HOP,
    SHORT_HOP,
    FAR_FROM_TRAIN,
    PATH_GREY_ZONE,
)

# Flags that keep a hop out of percolation and path finding by default: the geometric
# ones, where the number is not a barrier of an elementary hop (a hop longer or shorter
# than any in training, a straight path squeezing past a host atom, no host framework).
# far_from_train is a soft flag (its hops' CV error is about twice the rest's, not
# meaningless): reported, but used, as are ion_not_in_train and element_not_in_train,
# which apply to every hop of a structure alike.
EXCLUDING_FLAGS = (NO_HOST_FRAMEWORK, LONG_HOP, SHORT_HOP, PATH_GREY_ZONE)

ENV_RADIUS = 4.0  # A: host atoms this close to the straight path are its surroundings
PATH_STEP = 0.25  # A: spacing of the points sampled along the path
ANION_X = 2.5  # Pauling electronegativity from which a host atom counts as anion-like
DESCRIPTOR_NAMES = (
    "length_A",  # hop length
    "clearance_A",  # closest approach of the sampled path to a host atom (capped at ENV_RADIUS)
    "env_density_per_A3",  # host atoms within ENV_RADIUS of the path, per A^3 of that tube
    "env_mean_X",  # their mean Pauling electronegativity
    "env_anion_fraction",  # their share with electronegativity >= ANION_X
    "env_mean_row",  # their mean periodic-table row
    "ion_X",  # electronegativity of the migrating ion
    "env_ion_fraction",  # their share that is the ion's element (the ion sublattice)
)
DEFAULT_K = 5  # nearest training hops averaged in the distance


def excluded(flags: Iterable[str]) -> bool:
    """Whether flags keep a hop out of percolation and path finding (:data:`EXCLUDING_FLAGS`)."""
    return any(f in EXCLUDING_FLAGS for f in flags)


@cache
def _element(symbol: str) -> tuple[float, float]:
    """(Pauling electronegativity, row) of an element; X of noble gases taken as 0."""
    import warnings

    from pymatgen.core.periodic_table import Element

    with warnings.catch_warnings():  # pymatgen warns for elements without an X
        warnings.simplefilter("ignore")
        el = Element(symbol)
        x = float(el.X)
    return (0.0 if math.isnan(x) else x), float(el.row)


def hop_descriptor(hop: Hop) -> np.ndarray:
    """The hop's position in descriptor space (:data:`DESCRIPTOR_NAMES`).

    The path is sampled every :data:`PATH_STEP` A; its surroundings are the host atoms
    (periodic images included) within :data:`ENV_RADIUS` of a sampled point.

    Args:
        hop: the hop.

    Returns:
        (8,) descriptor: length (A), clearance (A), density (1/A^3), mean electronegativity,
        anion-like share, mean row, ion electronegativity, ion share.
    """
    length = hop.length
    ion_x = _element(hop.ion)[0]
    if not (np.isfinite(length) and np.isfinite(hop.host_positions).all() and np.isfinite(hop.cell).all()):
        return np.full(len(DESCRIPTOR_NAMES), np.nan)  # no position in the space: far from all
    empty = np.array([length, ENV_RADIUS, 0.0, 0.0, 0.0, 0.0, ion_x, 0.0])
    if not hop.host_symbols:
        return empty
    n_points = max(2, int(math.ceil(length / PATH_STEP)) + 1)
    t = np.linspace(0.0, 1.0, n_points)[:, None]  # (P, 1)
    points = hop.start[None, :] + t * (hop.end - hop.start)[None, :]  # (P, 3)
    # Host atoms as the periodic images near the path: every (atom, lattice shift) within
    # ENV_RADIUS of a sampled point, from pymatgen's compiled neighbour search (a dense
    # points x atoms x shifts array took 2 ms a hop); each image counts once.
    from ase_em.hops.checks import points_near

    _, atom, image, dist = points_near(hop.host_positions, points, hop.cell, ENV_RADIUS)
    if len(atom) == 0:
        return empty
    # each (atom, cell) once, in np.unique(axis=0)'s lexicographic order, as one integer key
    # (np.unique of rows sorts them as byte strings, several times slower)
    span = int(np.abs(image).max()) * 2 + 1
    cell_key = ((image[:, 0] + span // 2) * span + image[:, 1] + span // 2) * span + image[:, 2] + span // 2
    env = np.unique(atom * span**3 + cell_key) // span**3  # (E,) host index of each atom image
    clearance = float(dist.min())
    props = np.array([_element(hop.host_symbols[a]) for a in env])  # (E, 2)
    is_ion = np.array([hop.host_symbols[a] == hop.ion for a in env])
    tube = math.pi * ENV_RADIUS**2 * length + 4.0 / 3.0 * math.pi * ENV_RADIUS**3  # A^3
    return np.array(
        [
            length,
            clearance,
            len(env) / tube,
            float(props[:, 0].mean()),
            float((props[:, 0] >= ANION_X).mean()),
            float(props[:, 1].mean()),
            ion_x,
            float(is_ion.mean()),
        ]
    )


def knn_distance(
    query: np.ndarray, reference: np.ndarray, k: int = DEFAULT_K, *, exclude_self: bool = False
) -> np.ndarray:
    """Mean Euclidean distance of each query row to its ``k`` nearest reference rows.

    Args:
        query: (Q, D) standardised descriptors.
        reference: (R, D) standardised descriptors.
        k: neighbours averaged.
        exclude_self: the query rows are the reference rows; skip each one's own row.

    Returns:
        (Q,) distances.
    """
    from scipy.spatial import cKDTree  # scipy, not scikit-learn: a second of start-up less

    n = min(k + int(exclude_self), len(reference))
    dist, _ = cKDTree(reference).query(query, k=n)
    dist = np.asarray(dist).reshape(len(query), n)  # (Q, n); query returns (Q,) for n = 1
    return dist[:, 1:].mean(axis=1) if exclude_self else dist.mean(axis=1)


@dataclass(frozen=True)
class DomainCheck:
    """The flags of one hop.

    Attributes:
        flags: short stable names (:data:`FLAGS`), in that order; empty inside the domain.
        reasons: one human sentence per flag, same order.
        distance: the descriptor distance to training (None without a domain file).
    """

    flags: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    distance: float | None = None


@dataclass(frozen=True)
class ModelDomain:
    """What a model was trained on (read from ``domain.json``).

    Attributes:
        length_range: (shortest, longest) training hop (A).
        ions: migrating ion -> number of training hops.
        elements: element -> number of training hops whose band holds it.
        mean: (D,) descriptor mean over the training hops (for standardising).
        std: (D,) descriptor standard deviation.
        train: (N, D) standardised descriptors of the training hops.
        k: neighbours averaged in the distance.
        threshold: distance beyond which a hop is ``far_from_train``.
        record: the whole parsed file (data, command, CV table).
    """

    length_range: tuple[float, float]
    ions: dict[str, int]
    elements: dict[str, int]
    mean: np.ndarray
    std: np.ndarray
    train: np.ndarray
    k: int
    threshold: float
    record: dict[str, Any]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelDomain:
        """Build from the parsed ``domain.json`` (see :func:`build_domain`)."""
        desc = d["descriptor"]
        if list(desc["names"]) != list(DESCRIPTOR_NAMES):
            raise ValueError(f"domain descriptor {desc['names']} is not this version's {DESCRIPTOR_NAMES}")
        mean, std = np.asarray(desc["mean"], float), np.asarray(desc["std"], float)
        raw = np.asarray(desc["train"], float).reshape(-1, len(DESCRIPTOR_NAMES))
        return cls(
            length_range=(float(d["hop_length"]["min"]), float(d["hop_length"]["max"])),
            ions={str(k): int(v) for k, v in d["ions"].items()},
            elements={str(k): int(v) for k, v in d["elements"].items()},
            mean=mean,
            std=std,
            train=(raw - mean) / std,
            k=int(desc["k"]),
            threshold=float(desc["threshold"]),
            record=d,
        )

    @classmethod
    def load(cls, directory: str | Path) -> ModelDomain | None:
        """The domain of a model directory, or None when it has no ``domain.json``.

        Raises:
            ModelLoadError: the file exists but cannot be read.
        """
        from ase_em.errors import ModelLoadError

        path = Path(directory) / DOMAIN_FILE
        if not path.is_file():
            return None
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"{path}: unreadable model domain ({exc})") from None

    def distance(self, descriptors: np.ndarray) -> np.ndarray:
        """Distance of raw descriptors ((Q, D) or (D,)) to the training hops; (Q,) or float."""
        x = np.atleast_2d(descriptors)  # (Q, D)
        out = np.full(len(x), np.nan)  # NaN: a descriptor that is not finite
        ok = np.isfinite(x).all(axis=1)
        if ok.any():
            out[ok] = knn_distance((x[ok] - self.mean) / self.std, self.train, self.k)
        return out if np.ndim(descriptors) == 2 else out[0]

    def summary(self) -> dict[str, Any]:
        """The limits in one JSON-ready dict (for ``ase-em info``)."""
        return {
            "hop_length_A": [round(x, 3) for x in self.length_range],
            "n_elements": len(self.elements),
            "far_from_train": f"mean distance to {self.k} nearest TRAIN hops > {self.threshold:.3f}",
        }


def domain_flags(hop: Hop, domain: ModelDomain | None) -> DomainCheck:
    """Check one hop against a model's domain.

    Without a domain (a model directory without ``domain.json``) only the checks that
    need no training data run: the host framework and the path's grey zone.

    Args:
        hop: the hop.
        domain: the model's domain, or None.

    Returns:
        Its flags, reasons and distance to training.
    """
    found: dict[str, str] = {}
    others = sorted(set(hop.host_symbols) - {hop.ion})
    if not others:
        what = "no host atoms at all" if not hop.host_symbols else f"a host of {hop.ion} only"
        found[NO_HOST_FRAMEWORK] = (
            f"{what}; the model learnt barriers of ions moving through a host framework, "
            "which a lone atom or a metal is not"
        )
    distance = None
    if domain is not None:
        if hop.ion not in domain.ions:
            found[ION_NOT_IN_TRAIN] = (
                f"{hop.ion} never migrates in training (ions: "
                + ", ".join(f"{k} {v}" for k, v in sorted(domain.ions.items(), key=lambda kv: -kv[1]))
                + ")"
            )
        unseen = [e for e in others if e not in domain.elements]
        if unseen:
            found[ELEMENT_NOT_IN_TRAIN] = f"host element(s) {', '.join(unseen)} never appear in training"
        lo, hi = domain.length_range
        if hop.length > hi:
            found[LONG_HOP] = f"hop {hop.length:.2f} A, longer than any training hop ({hi:.2f} A)"
        elif hop.length < lo:
            found[SHORT_HOP] = f"hop {hop.length:.2f} A, shorter than any training hop ({lo:.2f} A)"
        distance = float(domain.distance(hop_descriptor(hop)))
        if not distance <= domain.threshold:  # NaN (non-finite geometry) counts as far
            found[FAR_FROM_TRAIN] = (
                f"descriptor distance {distance:.2f} to the {domain.k} nearest training hops "
                f"(threshold {domain.threshold:.2f})"
            )
    grey = _path_grey_zone(hop)
    if grey:
        found[PATH_GREY_ZONE] = grey
    flags = tuple(f for f in FLAGS if f in found)
    return DomainCheck(flags, tuple(found[f] for f in flags), distance)


def _path_grey_zone(hop: Hop) -> str | None:
    """Reason if the straight path passes a host atom within the grey zone, else None."""
    from ase_em.hops import clearance  # the whole-path check decides what is blocked and what is grey

    if not hop.host_symbols or not np.isfinite(hop.host_positions).all():
        return None
    c = getattr(hop, "path_clearance", None) or clearance.path_clearance(hop)  # a Hop keeps its own
    if not c.grey:
        return None
    if c.ratio < clearance.GREY_RATIO:
        return (
            f"the straight path passes {c.distance:.2f} A from host atom {c.host_index} "
            f"({c.host_symbol}), {c.ratio:.2f} of the ion's {c.bond:.2f} A bond "
            f"(grey zone {clearance.BLOCKING_RATIO}-{clearance.GREY_RATIO})"
        )
    return (
        f"the straight path passes {c.same_species_ratio * c.bond:.2f} A from host atom "
        f"{c.same_species_index} ({hop.ion}, the ion's own element), {c.same_species_ratio:.2f} of "
        f"its {c.bond:.2f} A bond (grey zone {clearance.SAME_SPECIES_BLOCKING_RATIO}-"
        f"{clearance.SAME_SPECIES_GREY_RATIO})"
    )


# ---------------------------------------------------------------------- building the file


def train_summary(hops: Sequence[Hop]) -> dict[str, Any]:
    """Hop-length range, ions and elements of training hops (JSON-ready)."""
    lengths = np.array([h.length for h in hops])  # (N,)
    ions = Counter(h.ion for h in hops)
    elements = Counter(e for h in hops for e in {h.ion, *h.host_symbols})
    return {
        "hop_length": {
            "min": float(lengths.min()),
            "max": float(lengths.max()),
            "percentiles_1_50_99": [float(x) for x in np.percentile(lengths, [1, 50, 99])],
        },
        "ions": dict(ions.most_common()),
        "elements": dict(sorted(elements.items())),
    }


def descriptors(hops: Iterable[Hop]) -> np.ndarray:
    """(N, D) raw descriptors of many hops."""
    return np.array([hop_descriptor(h) for h in hops])


def build_domain(
    hops: Sequence[Hop],
    *,
    k: int = DEFAULT_K,
    threshold_percentile: float,
    data: dict[str, Any],
    command: str,
    cv: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``domain.json`` record of a model trained on ``hops``.

    The threshold is the given percentile of the training hops' own distances to their
    k nearest other training hops (leave-one-out), so that share of training passes.

    Args:
        hops: the training hops, in data order.
        k: neighbours averaged in the distance.
        threshold_percentile: percentile (0-100) of the leave-one-out distances.
        data: what the hops are (file, sha256, n).
        command: the command that wrote the file.
        cv: the cross-validation table that justifies the threshold (stored as given).

    Returns:
        The JSON-ready record.
    """
    raw = descriptors(hops)  # (N, D)
    mean, std = raw.mean(axis=0), raw.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    loo = knn_distance((raw - mean) / std, (raw - mean) / std, k, exclude_self=True)
    return {
        **train_summary(hops),
        "data": data,
        "command": command,
        "descriptor": {
            "names": list(DESCRIPTOR_NAMES),
            "env_radius_A": ENV_RADIUS,
            "k": k,
            "threshold_percentile": threshold_percentile,
            "threshold": float(np.percentile(loo, threshold_percentile)),
            "mean": mean.tolist(),
            "std": std.tolist(),
            "train": np.round(raw, 6).tolist(),
        },
        "cv": cv,
    }
