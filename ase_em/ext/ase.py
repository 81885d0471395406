"""ASE adapter over :class:`ase_em.predictor.EmPredictor`.

:class:`EmCalculator` is an ASE ``Calculator`` whose system is a *band5* structure (the
migrating ion at five equally spaced positions, then the host of the initial endpoint;
see :mod:`ase_em.model.band`). Its properties are the migration barrier and its uncertainty:

========== ===== ==============================================================
property   unit  meaning
========== ===== ==============================================================
``em``     eV    migration barrier Em of the hop (ensemble mean)
``em_std`` eV    standard deviation of the ensemble members; absent for a
                 single-member model (``get_property`` then raises
                 ``PropertyNotImplementedError``)
========== ===== ==============================================================

A hop given as NEB images (a list of ``Atoms`` or a multi-frame file), an
``ase.mep.NEB`` object or a band5 ``Atoms`` is converted to its band5 structure by
:func:`band_from_neb` (:meth:`EmCalculator.get_barrier` does this for you). Only the
first and last image (the endpoints) matter: NEB images before or after relaxation and
the endpoint pair give the same barrier. Every frame must hold the same atoms (count and
species, in order), and a single ``Atoms`` must be a band5 (its first five sites one
species at five equally spaced points on a line): an endpoint given alone is refused,
not read as a hop (:mod:`ase_em.hops.checks`). ASE's state check compares the band5
structure with the last one computed, so a changed structure is recomputed and an
unchanged one is not.

The calculator is registered as the ASE plugin ``ase-em`` (entry-point group
``ase.plugins``, see :mod:`ase_em.ext.ase_plugin`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from ase_em.hops import convert
from ase_em.hops.hop import Hop
from ase_em.model.band import build_band

if TYPE_CHECKING:
    from ase.mep.neb import BaseNEB

    from ase_em.predictor import EmPredictor, EmResult

logger = logging.getLogger(__name__)

NEBLike = Union["BaseNEB", Sequence[Any], Atoms, str, os.PathLike]


def hop_from_neb(images: NEBLike) -> Hop:
    """The hop of NEB images, an ASE NEB object, a file or folder, or a band5 Atoms.

    See :func:`ase_em.hops.convert.hop_from_neb` (lists of Atoms, pymatgen Structures or
    files; ``ase.mep.NEB``; a multi-frame file; a VASP NEB folder; a band5 Atoms).
    """
    return convert.hop_from_neb(images)


def band_from_neb(images: NEBLike) -> Atoms:
    """The band5 structure of a hop given as in :func:`hop_from_neb`.

    Args:
        images: NEB images, an ``ase.mep.NEB``, a multi-frame file or a band5 Atoms.

    Returns:
        band5 Atoms: 5 + M sites (the five ion images, then the M host atoms).
    """
    return build_band(hop_from_neb(images))


def predict_neb(images: NEBLike, predictor: EmPredictor | None = None) -> EmResult:
    """Barrier of a hop given as NEB images, for scripts.

    Args:
        images: NEB images (a list of ASE Atoms, pymatgen Structures or files), an
            ``ase.mep.NEB``, a multi-frame file, a VASP NEB folder (``00 .. NN``) or a band5
            Atoms (:func:`ase_em.hops.convert.hop_from_neb`). Only the endpoints are used.
        predictor: the predictor; default: the shipped model (loaded on each call, so
            pass one when predicting many hops).

    Returns:
        The result: ``em`` and ``em_std`` in eV, and the hop.
    """
    hop = hop_from_neb(images)
    if predictor is None:
        from ase_em.predictor import EmPredictor

        predictor = EmPredictor.from_pretrained()
    return predictor.predict_one(hop)


class EmCalculator(Calculator):
    """ASE calculator for the migration barrier of an ion hop.

    Its atoms are a band5 structure; use :meth:`get_barrier` for NEB images or an
    ``ase.mep.NEB``. Properties (``implemented_properties``): ``em`` (eV) and ``em_std``
    (eV, ensemble models only). See the module docstring.

    Example::

        calc = EmCalculator(model="alignn-em-v1")
        em = calc.get_barrier(neb)              # eV, from neb.images[0] and [-1]
        std = calc.get_property("em_std")       # eV, of the same hop

    Args:
        predictor: the predictor to use; default: loaded from ``model`` on first use.
        model: shipped model name or model directory, used when ``predictor`` is None
            (None: the shipped default).
        atoms: optional band5 Atoms to attach the calculator to.
    """

    implemented_properties = ["em", "em_std"]

    def __init__(
        self,
        predictor: EmPredictor | None = None,
        *,
        model: str | Path | None = None,
        atoms: Atoms | None = None,
    ) -> None:
        """Keep the predictor (or where to load it from); nothing is loaded yet."""
        if predictor is not None and model is not None:
            raise ValueError("give either predictor or model, not both")
        self._predictor = predictor
        self._model = model
        super().__init__(atoms=atoms)

    @property
    def predictor(self) -> EmPredictor:
        """The predictor, loaded from ``model`` on first use."""
        if self._predictor is None:
            from ase_em.predictor import EmPredictor

            self._predictor = EmPredictor.from_pretrained(self._model)
            logger.info("EmCalculator: loaded model %s", self._predictor.name)
        return self._predictor

    def get_barrier(self, images: NEBLike) -> float:
        """Migration barrier Em (eV) of a hop, recomputed only if the hop changed.

        Args:
            images: NEB images, an ``ase.mep.NEB``, a multi-frame file or a band5 Atoms.

        Returns:
            Em in eV.
        """
        return float(self.get_property("em", band_from_neb(images)))

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("em",),
        system_changes: Sequence[str] = tuple(all_changes),
    ) -> None:
        """Predict ``em`` and ``em_std`` (eV) of the band5 ``atoms``.

        Args:
            atoms: band5 structure (default: the attached atoms).
            properties: requested properties (both are always computed).
            system_changes: what changed since the last calculation (ASE's state check).
        """
        super().calculate(atoms, list(properties), list(system_changes))
        if self.atoms is None:
            raise ValueError("EmCalculator: no atoms (give a band5 structure or use get_barrier)")
        result = self.predictor.predict_one(Hop.from_band(self.atoms, name="band5"))
        self.results = {"em": result.em}
        if result.em_std is not None:
            self.results["em_std"] = result.em_std
