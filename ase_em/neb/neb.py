"""Climbing-image NEB of one hop with an interatomic potential, checkpointed.

The steps, all with ASE:

1. The endpoints, built as the band is built (:mod:`ase_em.model.band`): the host of the
   initial endpoint with the ion at its start site (initial) or at its end site (final),
   the ion at its index in the input. In a vacancy supercell the end site is the vacancy.
2. Both endpoints relaxed (ion and host free, cell fixed) with BFGS to ``relax_fmax``.
3. ``n_images`` images between them by IDPP (``NEB.interpolate(method="idpp")``).
4. Climbing-image NEB (``ase.mep.NEB``, ``method="improvedtangent"``, ``climb=True``,
   spring constant ``k``), every atom of every image free, optimised with FIRE (or BFGS)
   until the largest NEB force is below ``fmax`` or ``steps`` steps are taken.

With a ``workdir`` every stage writes ASE trajectory files there (``initial.traj``,
``final.traj``: the endpoint relaxations; ``neb.traj``: all images at every NEB step) and
the optimizer state (``neb_opt.json``); a second call with the same ``workdir`` resumes
from the last frames. ``state.json`` records the hop and settings (a workdir refuses a
different hop) and the wall time spent so far.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.singlepoint import SinglePointCalculator

from ase_em.errors import AseEmError, PotentialError, RefineSettingsError
from ase_em.hops import Hop, as_hop
from ase_em.neb.combine import combine_result
from ase_em.neb.potentials import CalculatorLike, calculator_name, make_calculator
from ase_em.neb.result import RefinedHop

if TYPE_CHECKING:
    from ase_em.predictor import EmPredictor

logger = logging.getLogger(__name__)

DEFAULT_FMAX = 0.05  # eV/A: NEB force tolerance (the usual DFT-NEB setting)
DEFAULT_STEPS = 300  # NEB optimizer steps
DEFAULT_N_IMAGES = 3  # moving images; 5 moved the barrier <= 0.02 eV, 1 failed (docs/refine.md)
DEFAULT_RELAX_STEPS = 200  # steps of each endpoint relaxation
DEFAULT_SPRING = 0.1  # eV/A^2, ASE's default spring constant
STATE_VERSION = 1


def endpoints_from_hop(hop: Hop) -> tuple[Atoms, Atoms]:
    """The two endpoint structures of a hop in the band's convention.

    Args:
        hop: the hop.

    Returns:
        (initial, final): periodic Atoms with the host of the initial endpoint and the ion
        at ``hop.start`` / ``hop.end`` (``end`` unwrapped, so the straight line between
        the endpoints is the hop), the ion at index ``hop.ion_index``.
    """
    k = min(hop.ion_index, len(hop.host_symbols))
    symbols = list(hop.host_symbols[:k]) + [hop.ion] + list(hop.host_symbols[k:])

    def build(site: np.ndarray) -> Atoms:
        pos = np.insert(hop.host_positions, k, site, axis=0)  # (M + 1, 3)
        return Atoms(symbols=symbols, positions=pos, cell=hop.cell, pbc=True)

    return build(hop.start), build(hop.end)


def refine(
    hop: Any,
    calculator: CalculatorLike = None,
    *,
    fmax: float = DEFAULT_FMAX,
    steps: int = DEFAULT_STEPS,
    n_images: int = DEFAULT_N_IMAGES,
    workdir: str | os.PathLike | None = None,
    relax_fmax: float | None = None,
    relax_steps: int = DEFAULT_RELAX_STEPS,
    optimizer: Literal["FIRE", "BFGS"] = "FIRE",
    climb: bool = True,
    loose_fmax: float | None = None,
    k: float = DEFAULT_SPRING,
    time_limit: float | None = None,
    predictor: EmPredictor | None = None,
    device: str | None = None,
    name: str | None = None,
) -> RefinedHop:
    """Refine the barrier of one hop by climbing-image NEB with an interatomic potential.

    Args:
        hop: a :class:`~ase_em.hops.hop.Hop`; an (initial, final) tuple of Atoms, Structures or
            files; a list of NEB images or a multi-frame file (first and last frame are the
            endpoints); an ``ase.mep.NEB``; anything :func:`ase_em.hops.hop.as_hop` accepts.
        calculator: the potential: an ASE calculator, a factory, a name, or None for
            SevenNet-0 (:mod:`ase_em.neb.potentials`).
        fmax: NEB force tolerance (eV/A).
        steps: largest number of NEB optimizer steps, over all resumed runs.
        n_images: moving images between the endpoints.
        workdir: directory for trajectories and checkpoints; a later call with the same
            directory resumes. None: nothing is written.
        relax_fmax: force tolerance of the endpoint relaxations (default ``fmax``).
        relax_steps: largest number of steps of each endpoint relaxation.
        optimizer: NEB optimizer, ``"FIRE"`` or ``"BFGS"``.
        climb: climbing image on (the default) or off.
        loose_fmax: with ``climb``: first a plain NEB (no climbing image) to this force
            tolerance (eV/A), then the climbing image on until ``fmax``; the steps of both
            count against ``steps``. Applies to a fresh run only (a resumed run climbs).
        k: spring constant (eV/A^2).
        time_limit: stop the NEB after this many seconds (this call), reported as not
            converged; resume with the same workdir.
        predictor: an :class:`~ase_em.predictor.EmPredictor`: its Em and uncertainty are
            stored beside the refined barrier.
        device: torch device of the default potential (default: CUDA when present).
        name: label of the result (default: the hop's name).

    Returns:
        The :class:`RefinedHop`: both barrier definitions, the energy profile, converged or
        not, steps and time.

    Raises:
        AseEmError: bad hop input (see :mod:`ase_em.hops.hop`), bad settings, a workdir of
            another refinement (:class:`RefineSettingsError`), or a potential that cannot
            compute this structure (:class:`~ase_em.neb.potentials.PotentialError`).
    """
    _check_settings(fmax, steps, n_images, relax_steps, optimizer, k)
    if loose_fmax is not None and not (isinstance(loose_fmax, (int, float)) and loose_fmax > fmax):
        raise RefineSettingsError(f"loose_fmax must be a force tolerance above fmax = {fmax:g} eV/A, "
                                  f"got {loose_fmax!r}")
    hop = _to_hop(hop)
    label = name or hop.name or "hop"
    calc = make_calculator(calculator, device=device)
    calc_label = calculator_name(calc)
    settings = {"n_images": n_images, "climb": climb, "calculator": calc_label, "k": k}
    run = _Run(Path(workdir) if workdir is not None else None, hop, settings, label)
    t_start = time.perf_counter()

    initial, final = endpoints_from_hop(hop)
    relaxed, relax_ok, n_relax = [], [], 0
    for role, atoms in (("initial", initial), ("final", final)):
        end, ok, n = _relax(atoms.copy(), calc, role, run, relax_fmax or fmax, relax_steps, label)
        relaxed.append(end)
        relax_ok.append(ok)
        n_relax += n
        run.save(seconds=time.perf_counter() - t_start)

    neb, opt, done = _build_neb(relaxed, calc, run, n_images, climb, k, optimizer, label)
    converged = False
    remaining = max(steps - done, 0)
    t_neb = time.perf_counter()
    run.attach(opt, t_start)
    stages = [(climb, fmax)]
    if loose_fmax is not None and climb and done == 0:  # a fresh run: plain NEB first, then climb
        stages.insert(0, (False, loose_fmax))
    try:
        with opt:
            for stage_climb, stage_fmax in stages:
                neb.climb = stage_climb
                stopped = False
                for converged in opt.irun(fmax=stage_fmax, steps=max(remaining - opt.nsteps, 0)):
                    if time_limit is not None and time.perf_counter() - t_neb > time_limit and not converged:
                        logger.warning("%s: NEB stopped at the time limit (%g s); rerun with the workdir to "
                                       "resume", label, time_limit)
                        stopped = True
                        break
                if stopped:
                    break
            neb.climb = climb
        forces = neb.get_forces()  # (n_images * natoms, 3): the NEB forces at the final band
    except AseEmError:
        raise
    except Exception as exc:  # a potential that cannot handle the structure
        raise PotentialError(f"{label}: {calc_label} failed during the NEB: {exc}") from exc
    n_steps = done + opt.nsteps
    max_force = float(np.sqrt((forces**2).sum(axis=1)).max())
    converged = bool(max_force < fmax)
    seconds = run.save(seconds=time.perf_counter() - t_start, final=True)
    result = _result(neb, label, hop.ion, calc_label, fmax, max_force, converged and all(relax_ok),
                     n_steps, n_relax, seconds, n_images)
    if not all(relax_ok):
        logger.warning("%s: an endpoint relaxation did not reach %g eV/A in %d steps",
                       label, relax_fmax or fmax, relax_steps)
    result.endpoint_shift = max(_shift(a, b) for a, b in zip((initial, final), relaxed, strict=True))
    if predictor is not None:
        network = predictor.predict_one(hop)
        result.em_network, result.em_network_std = network.em, network.em_std
    combine_result(result)
    logger.info("%s", result.summary())
    return result


# ---------------------------------------------------------------------- stages


def _shift(before: Atoms, after: Atoms) -> float:
    """Largest displacement (A) of an atom between two frames of one structure (minimum image)."""
    from ase.geometry import find_mic

    d, _ = find_mic(after.positions - before.positions, before.cell, before.pbc)  # (N, 3)
    return float(np.sqrt((d**2).sum(axis=1)).max())


def _relax(
    atoms: Atoms, calc: Calculator, role: str, run: _Run, fmax: float, steps: int, label: str
) -> tuple[Atoms, bool, int]:
    """Relax one endpoint (all atoms free, cell fixed); resume from its trajectory."""
    from ase.optimize import BFGS

    traj = run.path(f"{role}.traj")
    frames = _read_traj(traj) if traj is not None else []
    done = max(len(frames) - 1, 0)
    if frames:
        atoms = frames[-1].copy()
    atoms.calc = calc
    opt = BFGS(atoms, logfile=None, trajectory=str(traj) if traj else None, append_trajectory=True)
    try:
        with opt:
            ok = bool(opt.run(fmax=fmax, steps=max(steps - done, 0)))
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    except AseEmError:
        raise
    except Exception as exc:  # NotImplementedError for an element the potential lacks, ...
        raise PotentialError(
            f"{label}: {calculator_name(calc)} cannot compute the {role} endpoint: {exc}"
        ) from exc
    if not math.isfinite(energy) or not np.all(np.isfinite(forces)):
        raise PotentialError(f"{label}: {calculator_name(calc)} gives a non-finite energy or force "
                              f"for the {role} endpoint")
    end = atoms.copy()
    end.calc = SinglePointCalculator(end, energy=energy, forces=forces)
    return end, ok, done + opt.nsteps


def _build_neb(relaxed, calc, run, n_images, climb, k, optimizer, label):
    """The NEB of the relaxed endpoints: from its trajectory when resuming, else IDPP."""
    from ase.mep import NEB
    from ase.optimize import BFGS, FIRE

    n_total = n_images + 2
    traj = run.path("neb.traj")
    frames = _read_traj(traj) if traj is not None else []
    images = [relaxed[0]] + [relaxed[0].copy() for _ in range(n_images)] + [relaxed[1]]
    for im in images[1:-1]:
        im.calc = ImageCalculator(calc)
    neb = NEB(images, k=k, climb=climb, method="improvedtangent")
    done = 0
    if len(frames) >= n_total:
        last = frames[len(frames) // n_total * n_total - n_total:][:n_total]
        for im, frame in zip(images[1:-1], last[1:-1], strict=True):
            im.positions = frame.positions
        done = len(frames) // n_total - 1
        logger.info("%s: NEB resumes after %d steps from %s", label, done, traj)
    else:
        for stale in (traj, run.path("neb_opt.json")):  # stopped before its first full band
            if stale is not None and stale.exists():
                stale.unlink()
        neb.interpolate(method="idpp")
    cls = {"FIRE": FIRE, "BFGS": BFGS}[optimizer]
    restart = run.path("neb_opt.json")
    opt = cls(
        neb,
        logfile=str(run.path("neb.log")) if run.workdir else None,
        trajectory=str(traj) if traj else None,
        append_trajectory=True,
        restart=str(restart) if restart else None,
    )
    return neb, opt, done


def _result(neb, label, ion, calc_label, fmax, max_force, converged, steps, relax_steps, seconds, n_images):
    from ase.geometry import find_mic

    images = list(neb.iterimages())
    energies = np.asarray(neb.energies, dtype=float)  # (N + 2,)
    e0 = float(energies[0])
    rel = energies - e0
    steps_between = [
        float(np.linalg.norm(find_mic(b.positions - a.positions, a.cell, a.pbc)[0]))
        for a, b in zip(images[:-1], images[1:])
    ]
    path = np.concatenate([[0.0], np.cumsum(steps_between)])  # (N + 2,) A
    i_saddle = int(np.argmax(rel[1:-1])) + 1
    for i, im in enumerate(images):
        im.info.update({"neb_image": i, "energy_relative": float(rel[i])})  # energy itself: im.calc
    return RefinedHop(
        name=label,
        ion=ion,
        em_forward=float(rel[i_saddle]),
        em_reference=float(rel.max() - rel.min()),
        em_backward=float(rel[i_saddle] - rel[-1]),
        energies=[float(x) for x in rel],
        path=[float(x) for x in path],
        converged=converged,
        fmax=fmax,
        max_force=max_force,
        steps=steps,
        relax_steps=relax_steps,
        seconds=seconds,
        calculator=calc_label,
        n_images=n_images,
        energy_initial=e0,
        images=images,
    )


class ImageCalculator(Calculator):
    """One image's view of a shared calculator, caching that image's results.

    Written by hand because ASE's NEB asks every image for its forces two to three times
    per optimizer step (the step, the log, the convergence check), and a calculator shared
    by all images (``allow_shared_calculator=True``) caches only the last structure it saw,
    so each request recomputes: three times the cost of the NEB. With one of these per
    image, ASE's own result cache (``Calculator.get_property``) answers the repeats, while
    the potential itself (a torch model) is loaded once.

    Args:
        shared: the calculator that computes.
    """

    implemented_properties = ("energy", "forces")

    def __init__(self, shared: Calculator) -> None:
        """Wrap ``shared``."""
        super().__init__()
        self.shared = shared

    def calculate(self, atoms: Atoms | None = None, properties: Any = ("energy",),
                  system_changes: Any = all_changes) -> None:
        """Energy (eV) and forces ((N, 3) eV/A) of ``atoms`` from the shared calculator."""
        super().calculate(atoms, properties, system_changes)
        image = self.atoms.copy()
        image.calc = self.shared
        self.results = {"energy": image.get_potential_energy(), "forces": image.get_forces()}


# ---------------------------------------------------------------------- checkpoint


class _Run:
    """The workdir of one refinement: file paths, the hop check, and the time spent."""

    def __init__(self, workdir: Path | None, hop: Hop, settings: dict[str, Any], label: str) -> None:
        self.workdir = workdir
        self.seconds_before = 0.0
        self.state = {"version": STATE_VERSION, "hop": _fingerprint(hop), "settings": settings}
        if workdir is None:
            return
        workdir.mkdir(parents=True, exist_ok=True)
        state_file = workdir / "state.json"
        if state_file.exists():
            try:
                old = json.loads(state_file.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise RefineSettingsError(f"{state_file}: unreadable checkpoint state ({exc})") from None
            if old.get("hop") != self.state["hop"]:
                raise RefineSettingsError(
                    f"{workdir}: holds the refinement of another hop ({old.get('name')}); "
                    "use another workdir, or delete it to start again"
                )
            if old.get("settings") != settings:
                diff = {k: (old.get("settings", {}).get(k), v) for k, v in settings.items()
                        if old.get("settings", {}).get(k) != v}
                raise RefineSettingsError(
                    f"{workdir}: was started with other settings (was, now: {diff}); "
                    "use another workdir, or delete it to start again"
                )
            self.seconds_before = float(old.get("seconds", 0.0))
        self.state["name"] = label

    def path(self, name: str) -> Path | None:
        return None if self.workdir is None else self.workdir / name

    def save(self, *, seconds: float, final: bool = False) -> float:
        """Record the wall time so far (this call's ``seconds`` plus earlier calls')."""
        total = self.seconds_before + seconds
        if self.workdir is not None:
            self.state["seconds"] = total
            self.state["finished"] = final
            tmp = self.workdir / "state.json.tmp"
            tmp.write_text(json.dumps(self.state, indent=1))
            os.replace(tmp, self.workdir / "state.json")  # atomic: a kill never leaves half a file
        return total

    def attach(self, opt: Any, t_start: float) -> None:
        if self.workdir is not None:
            opt.attach(lambda: self.save(seconds=time.perf_counter() - t_start), interval=1)


def _read_traj(path: Path) -> list[Atoms]:
    """Frames of a trajectory; an unreadable tail (a killed write) is dropped."""
    from ase.io.trajectory import Trajectory

    if not path.exists() or path.stat().st_size == 0:
        return []
    frames = []
    try:
        with Trajectory(str(path)) as traj:
            for i in range(len(traj)):
                frames.append(traj[i])
    except Exception as exc:  # ASE raises several types for a truncated file
        logger.warning("%s: unreadable after frame %d (%s); resuming from there", path, len(frames), exc)
    return frames


def _fingerprint(hop: Hop) -> str:
    h = hashlib.sha256()
    h.update(hop.ion.encode())
    h.update(",".join(hop.host_symbols).encode())
    for arr in (hop.start, hop.end, hop.host_positions, hop.cell):
        h.update(np.round(np.asarray(arr, float), 6).tobytes())
    return h.hexdigest()[:16]


def _to_hop(x: Any) -> Hop:
    if hasattr(x, "images") and not isinstance(x, (Hop, Sequence)):  # an ase.mep.NEB
        return Hop.from_images(list(x.images))
    if isinstance(x, (str, os.PathLike)):
        return Hop.from_images(x)
    return as_hop(x)


def _check_settings(
    fmax: float, steps: int, n_images: int, relax_steps: int, optimizer: str, k: float
) -> None:
    problems = []
    if not (isinstance(fmax, (int, float)) and math.isfinite(fmax) and fmax > 0):
        problems.append(f"fmax must be a positive force in eV/A, got {fmax!r}")
    if not (isinstance(steps, int) and steps >= 0):
        problems.append(f"steps must be an integer >= 0, got {steps!r}")
    if not (isinstance(n_images, int) and n_images >= 1):
        problems.append(f"n_images must be an integer >= 1, got {n_images!r}")
    if not (isinstance(relax_steps, int) and relax_steps >= 0):
        problems.append(f"relax_steps must be an integer >= 0, got {relax_steps!r}")
    if optimizer not in ("FIRE", "BFGS"):
        problems.append(f"optimizer must be 'FIRE' or 'BFGS', got {optimizer!r}")
    if not (isinstance(k, (int, float)) and math.isfinite(k) and k > 0):
        problems.append(f"the spring constant k must be positive (eV/A^2), got {k!r}")
    if problems:
        raise RefineSettingsError("; ".join(problems))
