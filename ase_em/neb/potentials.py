"""The interatomic potential of a refinement: SevenNet-0 by default, or any ASE calculator.

A calculator can be given as an ASE ``Calculator`` instance, as a zero-argument callable
that builds one (what a process pool needs: each worker builds its own), or as a name:

- ``"sevennet-0"`` (default; alias ``"7net-0"``): SevenNet-0 from the ``sevenn`` wheel
  (``pip install "ase-em[neb]"``); its weights ship inside the wheel, nothing is downloaded.
  The default because it had the lowest NEB error against DFT of the four named here, at a
  middle cost, on the TRAIN study of ``docs/refine.md``.
- ``"sevennet-mf-0"`` (its PBE head, ``modal="PBE"``) and ``"sevennet-l3i5"``: the other
  SevenNet models whose weights ship in the ``sevenn`` wheel.
- ``"chgnet"``: CHGNet from the ``chgnet`` wheel (``pip install chgnet``), weights in the wheel.
- ``"emt"``: ASE's effective-medium theory (Al, Cu, Ag, Au, Ni, Pd, Pt, H, C, N, O), for
  tests and demonstrations, not for barriers of ionic conductors.
- ``"package.module:factory"``: ``factory()`` imported from that module, e.g. your own
  function that returns a MACE, Orb or CHGNet calculator.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Union

from ase_em.errors import AseEmError, PotentialError

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator

logger = logging.getLogger(__name__)

DEFAULT_CALCULATOR = "sevennet-0"
CalculatorLike = Union["Calculator", str, Callable[[], "Calculator"], None]


def determine_device(device: str | None = None) -> str:
    """The torch device for a machine-learned potential.

    The explicit argument first, then ``ASE_EM_DEVICE``, then CUDA when present, else CPU.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... or None.

    Returns:
        The device name.
    """
    import os

    if device:
        return device
    if os.environ.get("ASE_EM_DEVICE"):
        return os.environ["ASE_EM_DEVICE"]
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # a potential without torch
        return "cpu"


SEVENNET_MODELS = {  # our name: (sevenn's name, modal (fidelity) or None, label)
    "sevennet-0": ("7net-0", None, "SevenNet-0"),
    "7net-0": ("7net-0", None, "SevenNet-0"),
    "sevennet": ("7net-0", None, "SevenNet-0"),
    "sevennet-mf-0": ("7net-mf-0", "PBE", "SevenNet-MF-0"),
    "7net-mf-0": ("7net-mf-0", "PBE", "SevenNet-MF-0"),
    "sevennet-l3i5": ("7net-l3i5", None, "SevenNet-l3i5"),
    "7net-l3i5": ("7net-l3i5", None, "SevenNet-l3i5"),
}


def sevennet0(device: str | None = None, model: str = "sevennet-0") -> Calculator:
    """SevenNet-0 (``7net-0``), the default potential of ``ase_em.refine``, or another SevenNet.

    Args:
        device: torch device (default: :func:`determine_device`).
        model: a key of :data:`SEVENNET_MODELS` (``"sevennet-0"``, ``"sevennet-mf-0"``,
            ``"sevennet-l3i5"``); SevenNet-MF-0 runs its PBE head.

    Returns:
        ``sevenn``'s ASE calculator with the weights shipped in its wheel; its
        ``ase_em_label`` attribute names the model.

    Raises:
        PotentialError: ``sevenn`` is not installed.
    """
    sevenn_name, modal, label = SEVENNET_MODELS[model]
    try:
        from sevenn.calculator import SevenNetCalculator
    except ImportError:
        raise PotentialError(
            "the default potential SevenNet-0 needs the sevenn package: pip install 'ase-em[neb]' "
            "(or pass another ASE calculator)"
        ) from None
    import warnings

    dev = determine_device(device)
    with warnings.catch_warnings():  # its note that an optional CUDA accelerator is off
        warnings.simplefilter("ignore", UserWarning)
        calc = SevenNetCalculator(sevenn_name, device=dev, modal=modal)
    calc.ase_em_label = label
    logger.info("%s on %s", label, dev)
    return calc


def chgnet(device: str | None = None) -> Calculator:
    """CHGNet (its wheel's default weights) as an ASE calculator.

    Args:
        device: torch device (default: :func:`determine_device`).

    Raises:
        PotentialError: ``chgnet`` is not installed.
    """
    try:
        from chgnet.model.dynamics import CHGNetCalculator
    except ImportError as exc:
        raise PotentialError(
            f"the potential CHGNet needs the chgnet package: pip install chgnet ({exc})"
        ) from None
    calc = CHGNetCalculator(use_device=determine_device(device))
    calc.ase_em_label = "CHGNet"
    return calc


def make_calculator(calculator: CalculatorLike = None, *, device: str | None = None) -> Calculator:
    """Build (or pass through) the ASE calculator of a refinement.

    Args:
        calculator: a Calculator, a zero-argument callable returning one, a name (module
            docstring) or None for SevenNet-0.
        device: torch device for SevenNet-0 (default: CUDA when present, else CPU).

    Returns:
        An ASE calculator.

    Raises:
        PotentialError: unknown name, missing package, or a factory that fails.
    """
    if calculator is None:
        calculator = DEFAULT_CALCULATOR
    if isinstance(calculator, str):
        name = calculator.strip()
        if name.lower() in SEVENNET_MODELS:
            return sevennet0(device, name.lower())
        if name.lower() == "chgnet":
            return chgnet(device)
        if name.lower() == "emt":
            from ase.calculators.emt import EMT

            return EMT()
        if ":" in name:
            module, _, attr = name.partition(":")
            try:
                factory = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise PotentialError(
                    f"calculator {name!r}: cannot import {attr} from {module} ({exc})"
                ) from None
            return _call_factory(factory, name)
        raise PotentialError(
            f"unknown calculator {name!r}: use 'sevennet-0', 'sevennet-mf-0', 'sevennet-l3i5', 'chgnet', "
            "'emt' or 'package.module:factory'"
        )
    if hasattr(calculator, "get_potential_energy") or hasattr(calculator, "calculate"):
        return calculator  # an ASE calculator instance
    if callable(calculator):
        return _call_factory(calculator, getattr(calculator, "__name__", repr(calculator)))
    raise PotentialError(f"not an ASE calculator: {type(calculator).__name__}")


def calculator_name(calc: Any) -> str:
    """A short label of a calculator for results (class name, SevenNet models spelled out)."""
    if isinstance(getattr(calc, "ase_em_label", None), str):
        return calc.ase_em_label
    name = type(calc).__name__
    return "SevenNet-0" if name == "SevenNetCalculator" else name


def _call_factory(factory: Callable[[], Any], label: str) -> Calculator:
    try:
        calc = factory()
    except AseEmError:
        raise
    except Exception as exc:  # whatever the user's factory raises
        raise PotentialError(f"calculator {label}: building it failed: {exc}") from exc
    if not (hasattr(calc, "get_potential_energy") or hasattr(calc, "calculate")):
        raise PotentialError(f"calculator {label}: returned {type(calc).__name__}, not an ASE calculator")
    return calc
