"""Conductivity sigma(T) of a hop network: Nernst-Einstein, Arrhenius fit, uncertainty by sampling.

* ``D(T)``: the exact one-carrier diffusion tensor of :func:`ase_em.transport.network.diffusion_tensor`;
  ``D = trace / 3`` is the orientational average (a powder or a polycrystal of weakly
  anisotropic grains).
* ``sigma = n (z e)^2 D / (k_B T)`` (Nernst-Einstein) with Haven ratio 1: the ions move
  independently (dilute limit: no site blocking, no correlated hops); ``n`` is the number of
  mobile ions per volume of the crystal (``carriers_per_cell / volume``; for a disordered crystal
  the ion's summed occupancy). Every ion counts as a carrier, so for a crystal with few
  vacancies this is an upper estimate (the site-blocking factor ``1 - c`` and the vacancy
  concentration are not modelled).
* Attempt frequency ``nu`` (default 1e13 Hz): every rate is proportional to it, so
  ``log10 sigma`` moves by ``log10(nu / 1e13)`` (one unit per factor 10) and the activation
  energy does not change.
* Activation energy: least-squares slope of ``ln(sigma T)`` against ``1 / (k_B T)`` over the
  fit temperatures (``sigma T = A exp(-Ea / k_B T)``).
* Uncertainty: each hop group's barrier is shifted by a draw from ``N(0, em_std)`` (one draw per
  group: symmetry-equivalent hops share one prediction; for a disordered crystal ``em_std``
  already holds the spread over orderings), never below 0; ``log10_sigma_std`` and
  ``activation_energy_std`` are the standard deviations over the draws (ddof=1).
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ase_em.errors import TransportError
from ase_em.transport.network import K_B, RateNetwork, diffusion_tensors, open_projector

ELEMENTARY_CHARGE = 1.602176634e-19  # C
K_B_J = 1.380649e-23  # J/K
ATTEMPT_FREQUENCY = 1e13  # Hz, the default nu
DEFAULT_TEMPERATURES = (300.0,)
DEFAULT_FIT_TEMPERATURES = (250.0, 300.0, 350.0, 400.0, 450.0, 500.0)  # K, when fewer than two T are asked
N_SAMPLES = 200
# charge numbers of common mobile ions; any other needs charge=
ION_CHARGES = {"H": 1, "Li": 1, "Na": 1, "K": 1, "Rb": 1, "Cs": 1, "Ag": 1, "Cu": 1, "Mg": 2, "Ca": 2,
               "Zn": 2, "Sr": 2, "Al": 3, "F": -1, "Cl": -1, "Br": -1, "I": -1, "O": -2}


def ion_charge(ion: str) -> int:
    """Charge number of a mobile ion from :data:`ION_CHARGES`.

    Raises:
        TransportError: the ion is not in the table (give the charge).
    """
    symbol = ion.rstrip("+-0123456789")
    if symbol not in ION_CHARGES:
        raise TransportError(f"no default charge for ion {ion!r}; give it (charge=, --charge)")
    return ION_CHARGES[symbol]


def sigma_from_d(d_avg: float | np.ndarray, network: RateNetwork, temperature: float | np.ndarray
                 ) -> float | np.ndarray:
    """Nernst-Einstein conductivity (S/cm) of a diffusion coefficient ``d_avg`` (A^2/s) at T (K).

    ``d_avg`` and ``temperature`` may be arrays that broadcast (the answer has their shape).
    """
    n = network.carriers_per_cell / network.volume * 1e24  # ions per cm^3
    q = network.charge * ELEMENTARY_CHARGE
    return n * q * q * d_avg * 1e-16 / (K_B_J * temperature)


def _log10(x: float) -> float:
    return math.log10(x) if x > 0 else -math.inf


def _fit_activation(temperatures: np.ndarray, sigma: np.ndarray) -> float | None:
    """Ea (eV): slope of ln(sigma T) against 1/(kT), or None if sigma is 0 somewhere."""
    if len(temperatures) < 2 or np.any(sigma <= 0):
        return None
    slope = np.polyfit(1.0 / (K_B * temperatures), np.log(sigma * temperatures), 1)[0]
    return float(-slope)


@dataclass
class ConductivityResult:
    """sigma(T) and D(T) of a hop network.

    Attributes:
        temperatures: (t,) T (K).
        log10_sigma: (t,) log10 of sigma (S/cm) at the predicted barriers; -inf: no percolation.
        log10_sigma_std: (t,) standard deviation of log10 sigma over the barrier draws, or None
            when no hop has an ``em_std``.
        D: (t,) orientational average trace/3 of the diffusion tensor (cm^2/s).
        D_tensor: (t, 3, 3) diffusion tensors (cm^2/s).
        activation_energy: Ea (eV) of the Arrhenius fit over ``fit_temperatures``; None
            without percolation.
        activation_energy_std: its standard deviation over the draws (eV), or None.
        fit_temperatures: the temperatures of the fit (K).
        attempt_frequency: nu (Hz).
        carrier_density: mobile ions per cm^3.
        charge: the carrier's charge number.
        dimension: directions (0-3) in which the hops percolate.
        n_samples: barrier draws; seed: their seed.
        samples: (n_samples, t) log10 sigma of each draw (kept for plots).
        formula, ion: what the network is of (text, may be empty).
        assumptions: one line: the model in short.
    """

    temperatures: np.ndarray
    log10_sigma: np.ndarray
    log10_sigma_std: np.ndarray | None
    D: np.ndarray
    D_tensor: np.ndarray
    activation_energy: float | None
    activation_energy_std: float | None
    fit_temperatures: np.ndarray
    attempt_frequency: float
    carrier_density: float
    charge: int
    dimension: int
    n_samples: int
    seed: int
    samples: np.ndarray | None = field(default=None, repr=False)
    formula: str = ""
    ion: str = ""
    assumptions: str = ("dilute carriers, Haven ratio 1 (Nernst-Einstein), every ion a carrier, "
                        "D = trace/3, rates nu exp(-Em/kT)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the result.

        Keys: ``T`` (K), ``log10_sigma``, ``log10_sigma_std`` (S/cm, one per T; None for -inf),
        ``D`` (cm^2/s), ``D_tensor``, ``activation_energy`` (eV) and the settings.
        """

        def fin(x):
            return None if x is None or not math.isfinite(x) else float(x)

        return {
            "formula": self.formula,
            "ion": self.ion,
            "T": [float(t) for t in self.temperatures],
            "log10_sigma": [fin(x) for x in self.log10_sigma],
            "log10_sigma_std": (None if self.log10_sigma_std is None
                                else [fin(x) for x in self.log10_sigma_std]),
            "sigma": [fin(10.0 ** x) if math.isfinite(x) else 0.0 for x in self.log10_sigma],
            "D": [float(x) for x in self.D],
            "D_tensor": [m.tolist() for m in self.D_tensor],
            "activation_energy": fin(self.activation_energy),
            "activation_energy_std": fin(self.activation_energy_std),
            "fit_T": [float(t) for t in self.fit_temperatures],
            "attempt_frequency": self.attempt_frequency,
            "carrier_density": self.carrier_density,
            "charge": self.charge,
            "dimension": self.dimension,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "units": {"T": "K", "sigma": "S/cm", "D": "cm^2/s", "activation_energy": "eV",
                      "carrier_density": "cm^-3", "attempt_frequency": "Hz"},
            "assumptions": self.assumptions,
        }

    def format_table(self) -> str:
        """sigma(T), D(T) and Ea as text."""
        lines = [f"{'T/K':>7} {'log10 sigma/(S/cm)':>19} {'std':>6} {'D/(cm^2/s)':>11}"]
        std = self.log10_sigma_std
        for i, t in enumerate(self.temperatures):
            s = "-" if std is None or not math.isfinite(std[i]) else f"{std[i]:.2f}"
            ls = "-inf" if not math.isfinite(self.log10_sigma[i]) else f"{self.log10_sigma[i]:.2f}"
            lines.append(f"{t:>7.1f} {ls:>19} {s:>6} {self.D[i]:>11.3e}")
        if self.activation_energy is None:
            lines.append("activation energy: none (the hops do not percolate)")
        else:
            pm = "" if self.activation_energy_std is None else f" +- {self.activation_energy_std:.3f}"
            span = f"{self.fit_temperatures.min():g}-{self.fit_temperatures.max():g} K"
            lines.append(f"activation energy (Arrhenius fit {span}): {self.activation_energy:.3f}{pm} eV")
        lines.append(f"percolating directions: {self.dimension}; carriers {self.carrier_density:.3e} cm^-3, "
                     f"charge {self.charge:+d}; nu {self.attempt_frequency:.3g} Hz")
        lines.append(f"assumptions: {self.assumptions}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """A table for notebooks."""
        rows = []
        std = self.log10_sigma_std
        for i, t in enumerate(self.temperatures):
            s = "" if std is None or not math.isfinite(std[i]) else f" &plusmn; {std[i]:.2f}"
            ls = "-&infin;" if not math.isfinite(self.log10_sigma[i]) else f"{self.log10_sigma[i]:.2f}"
            rows.append(f"<tr><td>{t:g}</td><td>{ls}{s}</td><td>{self.D[i]:.3e}</td></tr>")
        ea = "none" if self.activation_energy is None else f"{self.activation_energy:.3f}"
        if self.activation_energy_std is not None:
            ea += f" &plusmn; {self.activation_energy_std:.3f}"
        title = html.escape(" ".join(x for x in (self.formula, self.ion) if x)) or "hop network"
        return (f"<table><caption>{title}: conductivity</caption>"
                "<tr><th>T (K)</th><th>log10 &sigma; (S/cm)</th><th>D (cm&sup2;/s)</th></tr>"
                + "".join(rows) + f"</table><p>E<sub>a</sub> = {ea} eV; "
                f"{html.escape(self.assumptions)}; &nu; = {self.attempt_frequency:.3g} Hz</p>")

    def plot_arrhenius(self, path: str | os.PathLike, *, dpi: int = 150) -> Path:
        """Arrhenius plot: log10 sigma against 1000/T with the +-1 std band of the draws (PNG).

        Args:
            path: output file.
            dpi: resolution.

        Returns:
            The path written.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5.2, 4.0))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        order = np.argsort(self.temperatures)
        x = 1000.0 / self.temperatures[order]
        y = self.log10_sigma[order]
        ok = np.isfinite(y)
        if self.log10_sigma_std is not None and ok.any():
            s = self.log10_sigma_std[order]
            ax.fill_between(x[ok], (y - s)[ok], (y + s)[ok], color="C0", alpha=0.25,
                            label="+-1 std (barrier draws)")
        ax.plot(x[ok], y[ok], "o-", color="C0", label="predicted")
        ax.set_xlabel("1000 / T (1/K)")
        ax.set_ylabel("log10 sigma (S/cm)")
        ea = "" if self.activation_energy is None else f", Ea {self.activation_energy:.2f} eV"
        fig.suptitle(f"{' '.join(x for x in (self.formula, self.ion) if x)}{ea}", fontsize=10)
        top = ax.secondary_xaxis("top", functions=(lambda v: 1000.0 / np.maximum(v, 1e-9),
                                                   lambda v: 1000.0 / np.maximum(v, 1e-9)))
        top.set_xlabel("T (K)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, dpi=dpi)
        return out


def conductivity(
    network: RateNetwork,
    temperatures: float | list[float] | tuple[float, ...] | np.ndarray = DEFAULT_TEMPERATURES,
    *,
    attempt_frequency: float = ATTEMPT_FREQUENCY,
    fit_temperatures: list[float] | tuple[float, ...] | None = None,
    n_samples: int = N_SAMPLES,
    seed: int = 0,
    formula: str = "",
    ion: str = "",
) -> ConductivityResult:
    """sigma(T), D(T), Ea and their spread over barrier draws (module docstring).

    Args:
        network: the hop network (barriers in eV, lengths in A).
        temperatures: T (K), one or more, each > 0.
        attempt_frequency: nu (Hz).
        fit_temperatures: T of the Arrhenius fit (default: ``temperatures`` when there are at
            least two, else :data:`DEFAULT_FIT_TEMPERATURES`).
        n_samples: barrier draws for the uncertainty (0: none).
        seed: seed of the draws.
        formula: label kept on the result (e.g. the reduced formula).
        ion: label kept on the result (the mobile ion).

    Returns:
        The :class:`ConductivityResult`.

    Raises:
        TransportError: a temperature or nu not positive, or n_samples < 0.
    """
    temps = np.atleast_1d(np.asarray(temperatures, float))
    if len(temps) == 0 or not np.all(np.isfinite(temps) & (temps > 0)):
        raise TransportError(f"temperatures must be > 0 K, got {temps.tolist()}")
    if n_samples < 0:
        raise TransportError(f"n_samples must be >= 0, got {n_samples}")
    if fit_temperatures is None:
        fit = temps if len(np.unique(temps)) >= 2 else np.asarray(DEFAULT_FIT_TEMPERATURES)
    else:
        fit = np.atleast_1d(np.asarray(fit_temperatures, float))
        if len(np.unique(fit)) < 2 or not np.all(np.isfinite(fit) & (fit > 0)):
            raise TransportError(f"fit temperatures: at least two distinct values > 0 K, got {fit.tolist()}")
    all_t = np.concatenate([temps, fit])
    proj = open_projector(network)  # the draws change barriers, not which hops exist
    energy = network.site_energies  # a draw shifts both barriers of a hop alike: no change
    nt = len(temps)
    fwd = network.em_forward[None, :]  # (S, m): row 0 the network's barriers, then the draws
    stds = network.em_std
    has_std = np.isfinite(stds) & (stds > 0)
    draws = n_samples > 0 and has_std.any()
    if draws:
        rng = np.random.default_rng(seed)
        groups, inverse = np.unique(network.group, return_inverse=True)
        group_std = np.zeros(len(groups))
        for g in range(len(groups)):
            s = stds[inverse == g]
            s = s[np.isfinite(s)]
            group_std[g] = float(s.max()) if len(s) else 0.0
        low = np.minimum(network.em_forward, network.em_backward)
        shifts = np.empty((n_samples, len(network.u)))
        for k in range(n_samples):
            shift = rng.normal(0.0, 1.0, len(groups)) * group_std
            shifts[k] = np.maximum(shift[inverse], -np.maximum(low, 0.0))  # no barrier below 0
        fwd = np.vstack([fwd, network.em_forward[None, :] + shifts])
    # each distinct temperature solved once (the asked ones are often among the fit's: 300 K)
    solved_t, which_t = np.unique(all_t, return_inverse=True)
    tensors = diffusion_tensors(network, solved_t, attempt_frequency, em_forward=fwd, open_directions=proj,
                                site_energies=energy)[:, which_t.reshape(-1)]  # (S, T, 3, 3) A^2/s
    d_all = np.trace(tensors, axis1=2, axis2=3) / 3.0  # (S, T)
    sigma_all = sigma_from_d(d_all, network, all_t[None, :])  # (S, T), the scalar formula element by element
    d_avg, sigma = d_all[0], sigma_all[0]
    tensors = tensors[0]
    log_sigma = np.array([_log10(s) for s in sigma[:nt]])
    ea = _fit_activation(fit, sigma[nt:])
    std = ea_std = samples = None
    if draws:
        samples = np.array([[_log10(s) for s in row[:nt]] for row in sigma_all[1:]])  # (n_samples, nt)
        fits = [_fit_activation(fit, row[nt:]) for row in sigma_all[1:]]
        eas = np.array([np.nan if e is None else e for e in fits])
        finite = np.isfinite(samples).all(axis=0)
        std = np.where(finite, samples.std(axis=0, ddof=1) if n_samples > 1 else 0.0, np.nan)
        ea_std = float(np.nanstd(eas, ddof=1)) if np.isfinite(eas).sum() > 1 else None
    return ConductivityResult(
        temperatures=temps,
        log10_sigma=log_sigma,
        log10_sigma_std=std,
        D=d_avg[:nt] * 1e-16,
        D_tensor=tensors[:nt] * 1e-16,
        activation_energy=ea,
        activation_energy_std=ea_std,
        fit_temperatures=fit,
        attempt_frequency=float(attempt_frequency),
        carrier_density=network.carriers_per_cell / network.volume * 1e24,
        charge=int(network.charge),
        dimension=int(round(np.trace(proj))),
        n_samples=int(n_samples) if samples is not None else 0,
        seed=int(seed),
        samples=samples,
        formula=formula,
        ion=ion,
    )
