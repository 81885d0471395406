"""One barrier from the network's Em and a NEB's: inverse-variance combination.

The network gives ``em +- em_std`` (the calibrated error bar of :mod:`ase_em.model.uncertainty`);
a NEB with an interatomic potential gives ``em_forward`` with an error of its own, which
:func:`neb_sigma` states:

- ``sigma_0``: the potential's calibrated error, ``sqrt(2)`` times the mean absolute error
  of (NEB - DFT) on the TRAIN hops of ``benchmarks/refine_study.py`` (the standard deviation
  of a Laplace error, as the network's error bar; the RMS error, dominated by one hop 2 eV
  off, made the combination worse), :data:`NEB_SIGMA`; a potential that was not measured
  gets :data:`UNMEASURED_SIGMA`, the largest measured one;
- times :data:`NOT_CONVERGED_FACTOR` when the NEB (or an endpoint relaxation) did not reach
  its force tolerance (and if such a NEB still disagrees with the network by more than
  :data:`DISAGREEMENT_Z`, :func:`combine_neb` drops it: the combined barrier is the
  network's, with a warning);
- times :data:`SHIFT_FACTOR` when an atom of a relaxed endpoint moved more than
  :data:`SHIFT_LIMIT` from where the hop put it (the potential found another minimum, and
  its saddle may not be the hop's);
- on request only (``inflate=(..., "below")``; on the TRAIN study it made the combined
  barrier worse, ``docs/refine.md``): times :data:`BELOW_FACTOR` when an image lies more
  than :data:`BELOW_LIMIT` below the relaxed initial endpoint (the endpoint is not the
  minimum of its site for this potential).

:func:`combine` then gives the inverse-variance mean (the maximum-likelihood estimate for
two independent Gaussian measurements; the network's and the potentials' errors on the
reference's test hops are uncorrelated, see ``docs/refine.md``)::

    w_i = 1 / s_i**2,   em_combined = (w_n em_n + w_p em_p) / (w_n + w_p),
    em_combined_std = 1 / sqrt(w_n + w_p) * max(1, S),   S = |em_n - em_p| / sqrt(s_n**2 + s_p**2)

``S`` is the scale factor the Particle Data Group applies when measurements disagree by more
than their errors (PDG Review, "Introduction: averaging"): the combined error grows with the
disagreement. ``S`` above :data:`DISAGREEMENT_Z` is reported as a warning: the two differ by
far more than both uncertainties, so at least one of them is wrong for this hop (a potential
on its own wrong saddle, or a hop outside the network's domain).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ase_em.errors import AseEmError

if TYPE_CHECKING:
    from ase_em.neb.result import RefinedHop

logger = logging.getLogger(__name__)

# eV: sqrt(2) * mean |em_forward - DFT| (a Laplace standard deviation) of the clean NEBs (no
# inflation applies) on TRAIN hops, benchmarks/refine_study.py (CI-NEB, 3 images, fmax 0.1 eV/A,
# docs/refine.md).
NEB_SIGMA: dict[str, float] = {
    "SevenNet-0": 0.366,  # the 22 clean of 24 hops measured
    "SevenNet-MF-0": 0.375,  # the 18 clean of 18 hops measured
    "CHGNet": 0.445,  # the 16 clean of 18 hops measured
    "SevenNet-l3i5": 0.421,  # the 17 clean of 18 hops measured
}
UNMEASURED_SIGMA = 0.445  # eV: a potential not in NEB_SIGMA (the largest measured value)
NOT_CONVERGED_FACTOR = 2.0
SHIFT_LIMIT = 1.0  # A: largest displacement of an atom in an endpoint relaxation
SHIFT_FACTOR = 2.0
BELOW_LIMIT = 0.05  # eV: an image this far below the initial endpoint
BELOW_FACTOR = 2.0
DISAGREEMENT_Z = 3.0
INFLATIONS = ("converged", "shift")  # "below" measured to hurt on TRAIN (docs/refine.md): not by default


@dataclass(frozen=True)
class Combined:
    """The combined barrier of two estimates.

    Attributes:
        em: inverse-variance mean (eV).
        em_std: its standard deviation (eV), scaled by ``max(1, scale)``.
        scale: ``|em_a - em_b| / sqrt(std_a**2 + std_b**2)``, the disagreement in units of
            both uncertainties.
        warning: a sentence when ``scale`` exceeds :data:`DISAGREEMENT_Z`, else None.
    """

    em: float
    em_std: float
    scale: float
    warning: str | None


def combine(em_network: float, std_network: float, em_neb: float, std_neb: float,
            *, disagreement: float = DISAGREEMENT_Z) -> Combined:
    """Inverse-variance combination of two barriers (module docstring).

    Args:
        em_network: the network's Em (eV).
        std_network: its uncertainty (eV), > 0.
        em_neb: the NEB barrier (eV).
        std_neb: its uncertainty (eV), > 0 (:func:`neb_sigma`).
        disagreement: ``scale`` above which the result carries a warning.

    Returns:
        The :class:`Combined` barrier.

    Raises:
        AseEmError: a value that is not finite, or an uncertainty that is not positive.
    """
    values = {"em_network": em_network, "std_network": std_network, "em_neb": em_neb, "std_neb": std_neb}
    bad = [f"{k} = {v!r} is not a finite number" for k, v in values.items()
           if not (isinstance(v, (int, float)) and math.isfinite(v))]
    if not bad:
        bad = [f"{k} = {values[k]!r} is not > 0" for k in ("std_network", "std_neb") if values[k] <= 0]
    if bad:
        raise AseEmError(f"cannot combine barriers: {', '.join(bad)}")
    w_n, w_p = 1.0 / std_network**2, 1.0 / std_neb**2
    em = (w_n * em_network + w_p * em_neb) / (w_n + w_p)
    scale = abs(em_network - em_neb) / math.hypot(std_network, std_neb)
    std = max(1.0, scale) / math.sqrt(w_n + w_p)
    warning = None
    if scale > disagreement:
        warning = (f"network Em {em_network:.3f} +- {std_network:.3f} eV and NEB {em_neb:.3f} +- "
                   f"{std_neb:.3f} eV disagree by {scale:.1f} times both uncertainties: one of them is "
                   "wrong for this hop (the potential's saddle, or a hop outside the network's domain)")
    return Combined(float(em), float(std), float(scale), warning)


def combine_neb(em_network: float, std_network: float, em_neb: float, std_neb: float, *,
                converged: bool) -> Combined:
    """:func:`combine` of the network's Em and a NEB's, unless an unfinished NEB is far off.

    A NEB that did not converge and disagrees with the network by more than
    :data:`DISAGREEMENT_Z` times both uncertainties is no measurement (on a TRAIN hop a
    CHGNet band that flew apart read 421 eV): the result is the network's barrier and error
    bar alone, with a warning saying so.

    Args:
        em_network: the network's Em (eV).
        std_network: its uncertainty (eV), > 0.
        em_neb: the NEB barrier (eV).
        std_neb: its uncertainty (eV), > 0 (:func:`neb_sigma`).
        converged: whether the NEB reached its force tolerance.

    Returns:
        The :class:`Combined` barrier.
    """
    c = combine(em_network, std_network, em_neb, std_neb)
    if converged or c.scale <= DISAGREEMENT_Z:
        return c
    return Combined(float(em_network), float(std_network), c.scale,
                    f"the NEB did not converge and its barrier {em_neb:.3f} eV disagrees with the "
                    f"network's {em_network:.3f} +- {std_network:.3f} eV by {c.scale:.1f} times both "
                    "uncertainties: the combined barrier is the network's alone")


def neb_sigma(
    result: RefinedHop, *, sigma: float | None = None, inflate: Iterable[str] = INFLATIONS
) -> tuple[float, list[str]]:
    """The uncertainty of a NEB barrier (eV) and the reasons it was inflated.

    Args:
        result: the refinement.
        sigma: the potential's calibrated error (eV); default :data:`NEB_SIGMA` of
            ``result.calculator``, else :data:`UNMEASURED_SIGMA`.
        inflate: which inflations apply, of ``"converged"``, ``"shift"``, ``"below"``
            (default :data:`INFLATIONS`; empty: the calibrated sigma alone).

    Returns:
        ``(sigma, reasons)``: the NEB's standard deviation and the list of inflations
        applied (empty for a converged NEB whose endpoints stayed put).
    """
    s = float(sigma if sigma is not None else NEB_SIGMA.get(result.calculator, UNMEASURED_SIGMA))
    reasons: list[str] = []
    rules = set(inflate)
    if "converged" in rules and not result.converged:
        s *= NOT_CONVERGED_FACTOR
        reasons.append(f"not converged (x{NOT_CONVERGED_FACTOR:g})")
    shift = result.endpoint_shift
    if "shift" in rules and shift is not None and math.isfinite(shift) and shift > SHIFT_LIMIT:
        s *= SHIFT_FACTOR
        reasons.append(f"an endpoint atom moved {shift:.2f} A > {SHIFT_LIMIT:g} A in relaxation "
                       f"(x{SHIFT_FACTOR:g})")
    images = [e for e in result.energies[1:-1] if math.isfinite(e)]
    if "below" in rules and images and min(images) < -BELOW_LIMIT:
        s *= BELOW_FACTOR
        reasons.append(f"an image lies {-min(images):.2f} eV below the initial endpoint (x{BELOW_FACTOR:g})")
    return s, reasons


def combine_result(result: RefinedHop, *, sigma: float | None = None) -> RefinedHop:
    """Fill ``em_neb_std`` and, with the network's Em known, ``em_combined`` of a result.

    Args:
        result: a refinement (modified in place); a failed one is returned as it is.
        sigma: the potential's calibrated error (eV), see :func:`neb_sigma`.

    Returns:
        ``result``, with ``em_neb_std`` (and ``neb_std_reasons``), and where
        ``em_network`` and ``em_network_std`` are set, ``em_combined``,
        ``em_combined_std`` and ``combine_warning`` (logged as a warning).
    """
    if result.error is not None or not math.isfinite(result.em_forward):
        return result
    result.em_neb_std, result.neb_std_reasons = neb_sigma(result, sigma=sigma)
    if result.em_network is None or result.em_network_std is None:
        return result
    if not (math.isfinite(result.em_network) and math.isfinite(result.em_network_std)
            and result.em_network_std > 0):
        return result
    c = combine_neb(result.em_network, result.em_network_std, result.em_forward, result.em_neb_std,
                    converged=result.converged)
    result.em_combined, result.em_combined_std, result.combine_warning = c.em, c.em_std, c.warning
    if c.warning:
        logger.warning("%s: %s", result.name, c.warning)
    return result
