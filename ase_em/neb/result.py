"""The result of a refinement: barriers, the energy profile, and its plot.

Two barriers are stated, both from the relaxed NEB profile ``E_0 .. E_{N+1}`` (the relaxed
initial endpoint, the images, the relaxed final endpoint):

- ``em_forward = E_saddle - E_0``: the forward barrier. ``E_saddle`` is the climbing
  image's energy (the highest image); with a converged climbing-image NEB it is the
  saddle point of the minimum-energy path.
- ``em_reference = max_i E_i - min_i E_i``: highest minus lowest energy along the whole
  path, endpoints included. This is what we assume em619's Em is: its barriers come
  from literature NEB calculations that quote the migration barrier as the difference
  between the highest and the lowest energy along the minimum-energy path. For a hop
  between equivalent sites (E_0 = E_{N+1}, no lower image) both definitions agree; they
  differ for an uphill hop, or when an image falls below the initial endpoint.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms


@dataclass
class RefinedHop:
    """A hop refined by climbing-image NEB with an interatomic potential.

    Attributes:
        name: label of the hop.
        ion: element of the migrating ion.
        em_forward: E_saddle - E_initial (eV), see the module docstring.
        em_reference: max - min of the energy profile (eV), em619's definition as we read it.
        em_backward: E_saddle - E_final (eV).
        energies: (N + 2,) energies of the relaxed endpoints and the images relative to the
            relaxed initial endpoint (eV).
        path: (N + 2,) reaction coordinate (A): cumulative distance between images.
        converged: whether the NEB reached ``fmax`` within its step limit (and both endpoint
            relaxations reached theirs).
        fmax: force tolerance of the NEB (eV/A).
        max_force: largest NEB force at the end (eV/A), the quantity compared with ``fmax``.
        steps: NEB optimizer steps taken, over all resumed runs.
        relax_steps: steps of the two endpoint relaxations together.
        seconds: wall time over all resumed runs (s).
        calculator: name of the potential.
        n_images: number of moving images.
        energy_initial: absolute energy of the relaxed initial endpoint (eV).
        em_network: the network's Em for this hop (eV), when a predictor was given.
        em_network_std: its uncertainty (eV).
        endpoint_shift: largest displacement (A) of any atom between the endpoints as the
            hop gave them and as relaxed, over both endpoints.
        em_neb_std: uncertainty of ``em_forward`` (eV), :func:`ase_em.neb.combine.neb_sigma`.
        neb_std_reasons: why ``em_neb_std`` was inflated (not converged, endpoints moved).
        em_combined: inverse-variance combination of the network's Em and ``em_forward``
            (eV, :mod:`ase_em.neb.combine`), when the network's Em is known.
        em_combined_std: its uncertainty (eV).
        combine_warning: set when the network and the NEB disagree by far more than both
            uncertainties.
        error: why the refinement failed (batch runs keep going), else None.
        images: the final band (relaxed endpoints and images); not serialised.
    """

    name: str
    ion: str
    em_forward: float
    em_reference: float
    em_backward: float
    energies: list[float]
    path: list[float]
    converged: bool
    fmax: float
    max_force: float
    steps: int
    relax_steps: int
    seconds: float
    calculator: str
    n_images: int
    energy_initial: float
    em_network: float | None = None
    em_network_std: float | None = None
    endpoint_shift: float | None = None
    em_neb_std: float | None = None
    neb_std_reasons: list[str] = field(default_factory=list)
    em_combined: float | None = None
    em_combined_std: float | None = None
    combine_warning: str | None = None
    error: str | None = None
    images: list[Atoms] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def failed(
        cls, name: str, ion: str, error: str, *, calculator: str = "", seconds: float = 0.0
    ) -> RefinedHop:
        """A placeholder for a hop whose refinement raised (NaN barriers, ``error`` set)."""
        nan = float("nan")
        return cls(name, ion, nan, nan, nan, [], [], False, nan, nan, 0, 0, seconds, calculator, 0, nan,
                   error=error)

    def to_dict(self) -> dict[str, Any]:
        """All fields but the images, as JSON-ready Python types (NaN becomes None)."""
        d = asdict(self)
        d.pop("images")
        return {k: _clean(v) for k, v in d.items()}

    def write_json(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def write_images(self, path: str | os.PathLike) -> None:
        """Write the final band (endpoints and images) to any ASE format.

        Energies and forces go as calculator results; ``info`` holds ``neb_image`` (0..N+1)
        and ``energy_relative`` (eV, relative to the initial endpoint).
        """
        from ase.io import write

        if not self.images:
            raise ValueError(f"{self.name}: no images to write (refinement failed: {self.error})")
        write(path, self.images)

    def summary(self) -> str:
        """One line: barriers, convergence, cost, and the network's Em when known."""
        if self.error:
            return f"{self.name}: refinement failed: {self.error}"
        net = ""
        if self.em_network is not None:
            std = f" +- {self.em_network_std:.3f}" if self.em_network_std is not None else ""
            net = f"; network Em {self.em_network:.3f}{std} eV"
        if self.em_combined is not None:
            net += f"; combined {self.em_combined:.3f} +- {self.em_combined_std:.3f} eV"
        state = "converged" if self.converged else f"NOT converged (max force {self.max_force:.3f} eV/A)"
        return (
            f"{self.name}: refined Em {self.em_forward:.3f} eV forward (E_saddle - E_initial), "
            f"{self.em_reference:.3f} eV max - min{net}; {self.calculator} CI-NEB, {self.n_images} images, "
            f"{state} at fmax {self.fmax:g} eV/A after {self.steps} steps, {self.seconds:.0f} s"
        )

    def plot(self, path: str | os.PathLike | None = None, *, ax: Any = None) -> Any:
        """Energy along the path, with the network's Em, its uncertainty and the combined barrier.

        The points are the images; the curve is ASE's force-based spline through them
        (``ase.utils.forcecurve.fit_raw``, as ``NEBTools.plot_band``) when the images carry
        forces, else straight segments. The network's Em is a dashed line above the initial
        endpoint, its uncertainty a band of +- ``em_network_std``; the combined barrier a
        diamond with its error bar at mid-path.

        Args:
            path: write the figure to this file (PNG, PDF, ...) when given.
            ax: draw into this matplotlib axes instead of a new figure.

        Returns:
            The matplotlib axes.
        """
        import matplotlib

        if ax is None:
            matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(5.0, 3.6))
        else:
            fig = ax.figure
        s, e = np.asarray(self.path), np.asarray(self.energies)  # (N + 2,), (N + 2,)
        fit = self._spline()
        if fit is not None:
            ax.plot(fit[0], fit[1], "-", color="C0", lw=1.2)
        else:
            ax.plot(s, e, "-", color="C0", lw=1.2)
        ax.plot(s, e, "o", color="C0", label=f"NEB ({self.calculator}), Em {self.em_forward:.2f} eV")
        if self.em_network is not None:
            ax.axhline(self.em_network, color="C3", ls="--", lw=1.0,
                       label=f"network Em {self.em_network:.2f} eV")
            if self.em_network_std is not None and math.isfinite(self.em_network_std):
                ax.axhspan(self.em_network - self.em_network_std, self.em_network + self.em_network_std,
                           color="C3", alpha=0.15, lw=0, label=f"+- {self.em_network_std:.2f} eV")
        if self.em_combined is not None and self.em_combined_std is not None:
            ax.errorbar([s[-1] * 0.5], [self.em_combined], yerr=[self.em_combined_std], fmt="D", color="C2",
                        capsize=3, label=f"combined {self.em_combined:.2f} +- {self.em_combined_std:.2f} eV")
        ax.set_xlabel("reaction coordinate (A)")
        ax.set_ylabel("E - E(initial) (eV)")
        title = self.name if self.converged else f"{self.name} (NEB not converged)"
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="best")
        if path is not None:
            fig.tight_layout()
            fig.savefig(path, dpi=150)
        return ax

    def _spline(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.images or any("forces" not in (im.calc.results if im.calc else {}) for im in self.images):
            return None
        from ase.utils.forcecurve import fit_raw

        e0 = self.energy_initial
        fit = fit_raw(
            [im.get_potential_energy() - e0 for im in self.images],
            [im.get_forces() for im in self.images],
            [im.positions for im in self.images],
            self.images[0].cell,
            self.images[0].pbc,
        )
        return np.asarray(fit.fit_path), np.asarray(fit.fit_energies)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v
