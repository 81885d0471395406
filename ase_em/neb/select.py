"""Which hops to refine: those whose refinement can change a decision.

A NEB costs minutes per hop on a CPU, so with a budget of N hops the choice matters. The
candidates are the hops that set a material's percolation barrier (the bottleneck hops,
:func:`ase_em.neb.on_graph.bottleneck_hops`): only they can move the material's barrier.
They are ranked by one of two rules:

- ``"straddle"`` (default): by how far the network's uncertainty straddles the decision
  threshold (default 0.65 eV, the usual line between fast and slow conductors):
  ``z = |em - threshold| / em_std``, smallest first. ``P = Phi(-z)`` is the chance, for a
  Gaussian error of ``em_std``, that the true barrier lies on the other side of the
  threshold: the hops whose class the network is least sure of come first.
- ``"std"``: by ``em_std``, largest first (no threshold: refine where the network knows least).

A hop without an uncertainty ranks after every hop that has one (``em_std`` unknown is not
"certain"); ties keep the input order.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ase_em.errors import AseEmError

if TYPE_CHECKING:
    from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph

DEFAULT_THRESHOLD = 0.65  # eV
Rule = Literal["straddle", "std"]


@dataclass(frozen=True)
class Choice:
    """A hop chosen (or ranked) for refinement.

    Attributes:
        key: the caller's key of the hop (a hop label, a (row, label) pair, a name).
        em: the network's Em (eV).
        em_std: its uncertainty (eV), None when unknown.
        score: the ranking value (``z`` for ``"straddle"``, ``-em_std`` for ``"std"``;
            smaller first).
        p_other_side: ``Phi(-z)`` (``"straddle"``), else None.
        reason: one sentence saying why it ranks where it does.
    """

    key: Hashable
    em: float
    em_std: float | None
    score: float
    p_other_side: float | None
    reason: str


def rank_hops(
    candidates: Iterable[tuple[Hashable, float, float | None]],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    rule: Rule = "straddle",
) -> list[Choice]:
    """Rank hops for refinement (module docstring), most worth refining first.

    Args:
        candidates: ``(key, em, em_std)`` per hop, eV; ``em_std`` may be None.
        threshold: the decision threshold (eV) of the ``"straddle"`` rule.
        rule: ``"straddle"`` or ``"std"``.

    Returns:
        Every candidate with finite ``em`` as a :class:`Choice`, best first; hops with an
        infinite or NaN Em (blocked hops) are left out.

    Raises:
        AseEmError: an unknown rule or a threshold that is not finite.
    """
    if rule not in ("straddle", "std"):
        raise AseEmError(f"unknown selection rule {rule!r}: use 'straddle' or 'std'")
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold)):
        raise AseEmError(f"the threshold must be a finite barrier in eV, got {threshold!r}")
    ranked = []
    for order, (key, em, std) in enumerate(candidates):
        if em is None or not math.isfinite(em):
            continue
        known = std is not None and math.isfinite(std) and std > 0
        if rule == "straddle":
            if known:
                z = abs(em - threshold) / std
                p = 0.5 * math.erfc(z / math.sqrt(2.0))
                side = "straddles" if z <= 1.0 else "does not straddle"
                reason = (f"Em {em:.3f} +- {std:.3f} eV {side} {threshold:g} eV (z = {z:.2f}; "
                          f"{p:.0%} chance of the other side)")
                score = z
            else:
                p, score = None, math.inf
                reason = f"Em {em:.3f} eV, no uncertainty: ranked after every hop that has one"
        else:
            p = None
            score = -std if known else math.inf
            reason = (f"em_std {std:.3f} eV (Em {em:.3f} eV)" if known
                      else f"Em {em:.3f} eV, no uncertainty: ranked last")
        ranked.append((score, order, Choice(key, float(em), float(std) if known else None, score, p, reason)))
    ranked.sort(key=lambda t: (t[0], t[1]))
    return [c for _, _, c in ranked]


def select_hops(
    candidates: Iterable[tuple[Hashable, float, float | None]],
    budget: int,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    rule: Rule = "straddle",
) -> list[Choice]:
    """The ``budget`` hops most worth refining (:func:`rank_hops`, best first).

    Args:
        candidates: ``(key, em, em_std)`` per hop (eV).
        budget: how many hops to choose, >= 0.
        threshold: decision threshold (eV) of the ``"straddle"`` rule.
        rule: ``"straddle"`` or ``"std"``.

    Returns:
        At most ``budget`` choices.

    Raises:
        AseEmError: a negative or non-integer budget, an unknown rule.
    """
    if not (isinstance(budget, int) and budget >= 0):
        raise AseEmError(f"the budget must be a number of hops >= 0, got {budget!r}")
    return rank_hops(candidates, threshold=threshold, rule=rule)[:budget]


def bottleneck_candidates(
    mg: MigrationGraph, dimensions: Sequence[int] = (3,), *, key_prefix: tuple = ()
) -> list[tuple[Hashable, float, float | None]]:
    """The bottleneck hops of a labelled MigrationGraph as selection candidates.

    Args:
        mg: a MigrationGraph with the network's ``em`` (and ``em_std``) on its edges.
        dimensions: percolation dimensions whose bottleneck hops are candidates.
        key_prefix: prepended to each hop label in the key (e.g. ``(row_id,)``).

    Returns:
        ``(key, em, em_std)`` per bottleneck hop, key ``key_prefix + (hop_label,)``; the
        network's values of the hop (its first edge in the graph).
    """
    from ase_em.neb.on_graph import bottleneck_hops

    labels = sorted({lab for labs in bottleneck_hops(mg, dimensions).values() for lab in labs})
    first: dict[int, dict] = {}
    for _, _, d in mg.m_graph.graph.edges(data=True):
        first.setdefault(int(d["hop_label"]), d)
    out = []
    for lab in labels:
        d = first[lab]
        std = d.get("em_std")
        out.append((key_prefix + (lab,), float(d["em"]), None if std is None else float(std)))
    return out
