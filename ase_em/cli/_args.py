"""Shared argument types and the usage checks run before any heavy import (torch, pymatgen)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ase_em.errors import AseEmError


def _threads(n: int | None) -> int:
    """Set torch's CPU threads: ``--threads``, else ``ASE_EM_THREADS``, else 1 (ase_em._runtime.threads)."""
    from ase_em._runtime.threads import set_threads

    return set_threads(n)


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors in one line (``ase-em predict: error: ...``), exit code 2."""

    def error(self, message: str) -> None:  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _integer_at_least(text: str, low: int, wording: str) -> int:
    """``text`` as an integer >= ``low``, else argparse's error ("must be ``wording`` (got N)")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {wording} (got {value})")
    return value


def positive_int(text: str) -> int:
    """Type of integer options for argparse (``--threads``, counts): an integer >= 1."""
    return _integer_at_least(text, 1, ">= 1")


def tolerance_or_off(text: str) -> float | None:
    """Type of ``--ordering-tolerance``: a number of eV >= 0, or ``off`` (None: every ordering drawn)."""
    if text.strip().lower() in ("off", "none"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number of eV nor 'off'") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of eV >= 0, or off (got {text})")
    return value


def add_ordering_tolerance(p: argparse.ArgumentParser, default: float | None = None) -> None:
    """``--ordering-tolerance EV|off`` (:data:`ase_em.config.NetworkOptions.ordering_tolerance`)."""
    p.add_argument("--ordering-tolerance", type=tolerance_or_off, default=default, metavar="EV",
                   help="draw orderings until every hop's barrier settles: the standard error of its mean "
                   "over the orderings at most EV, after at least 2, at most --orderings (default "
                   f"{'off, all --orderings' if default is None else default}; 'off' draws all --orderings)")


def non_negative_int(text: str) -> int:
    """Type of count options that may be 0 (``--budget``, ``--samples``): an integer >= 0."""
    return _integer_at_least(text, 0, "an integer >= 0")


def fold_count(text: str) -> int:
    """Type of ``--folds``: an integer >= 2 (K-fold cross-validation needs two folds)."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be >= 2 (got {value}): cross-validation needs two folds")
    return value


def positive_float(text: str) -> float:
    """Type of rate and length options for argparse (``--lr``, ``--cutoff``): a finite number > 0."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0 (got {text})")
    return value


def non_negative_float(text: str) -> float:
    """Type of weight options for argparse (``--rank-weight``): a finite number >= 0."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0 (got {text})")
    return value


def _existing(path: str | None, role: str, *, folder: bool = False) -> None:
    if path is None:
        return
    p = Path(path)
    if folder and not p.is_dir():
        raise AseEmError(f"{p}: no such folder ({role})")
    if not folder and not p.is_file():
        raise AseEmError(f"{p}: {'is a folder, not a file' if p.is_dir() else 'no such file'} ({role})")


def check_usage(args: argparse.Namespace) -> None:
    """Usage errors that argparse cannot see, found before any heavy import.

    Input files must exist, output folders must be (or become) writable folders, files to
    write must go into an existing, writable folder, and ``ASE_EM_THREADS`` must be valid.

    Raises:
        AseEmError: the first problem, in one line.
    """
    from ase_em._runtime.folders import check_file_target, check_writable
    from ase_em._runtime.threads import resolve_threads

    resolve_threads(getattr(args, "threads", None))  # checks ASE_EM_THREADS when --threads is not given
    command = args.command
    if command == "predict":
        if args.images and (args.initial or args.final):
            raise AseEmError("give either INITIAL FINAL or --images FILE, not both")
        if not args.images and not (args.initial and args.final):
            raise AseEmError("give INITIAL and FINAL structure files, or --images FILE")
        _existing(args.initial, "initial")
        _existing(args.final, "final")
        if args.images is None or not Path(args.images).is_dir():  # a folder: a VASP NEB run
            _existing(args.images, "--images")
    elif command in ("evaluate", "train", "finetune"):
        _existing(args.data, "data")
    elif command == "pretrain":
        _existing(args.data, "data", folder=True)
    elif command in ("network", "conductivity"):
        _existing(args.structure, "structure")
    if getattr(args, "output", None):
        check_writable(args.output, role="--output")
    if getattr(args, "workdir", None):
        check_writable(args.workdir, role="--workdir")
    if getattr(args, "predictions", None):
        check_file_target(args.predictions, role="--predictions")
    if getattr(args, "plot", None):
        check_file_target(args.plot, role="--plot")


def load_labelled_em619(args: argparse.Namespace):
    """Read ``args.data`` (em619 format) as ``evaluate`` and ``train`` do; print skipped rows and warnings.

    Returns:
        The :class:`ase_em.training.data.LabelledHops`.
    """
    from ase_em.errors import DataFileError
    from ase_em.training.data import load_em619

    try:
        data = load_em619(
            args.data, skip_invalid=args.skip_invalid, allow_implausible=args.allow_implausible_barriers
        )
    except DataFileError as exc:
        if args.skip_invalid:
            raise
        # the same error, with the way past it: bad hops can be skipped, and are then listed
        exc.args = (f"{exc}\n(--skip-invalid skips and lists the bad records)",)
        raise
    for line in data.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    for line in data.warnings:
        print(f"warning: {line}", file=sys.stderr)
    return data
