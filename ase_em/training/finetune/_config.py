"""Settings of a fine-tune: strategies, defaults, checks, and which hops each member trains on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ase_em.errors import AseEmError

STRATEGIES = ("head", "partial", "full")
HEAD_MAX_HOPS = 50  # below this many labelled hops the default strategy is "head"
PARTIAL_MAX_HOPS = 300  # below this, "partial"; from here on, "full"
DEFAULT_LR = {"head": 1e-3, "partial": 5e-4, "full": 2e-4}  # peak learning rates
CHECKPOINT = "finetune.ckpt"
SETTINGS = "finetune-settings.json"


@dataclass(frozen=True)
class FinetuneConfig:
    """Settings of a fine-tuning run.

    Attributes:
        strategy: "head", "partial" or "full".
        epochs: most passes over the training hops per member.
        batch_size: hops per optimiser step.
        lr: peak learning rate (cosine decay to lr/100 over ``epochs``).
        weight_decay: AdamW weight decay on the trained parameters.
        seed: seed of the split, shuffling and RNG.
        val_fraction: share of the hops held out for validation and early stopping (0: no
            validation, every member trains ``epochs`` epochs); ignored when ``folds`` is set.
        folds: K of a K-fold CV (K members, member k fine-tuned from base member k mod M on
            all but fold k and early-stopped on fold k); None for one random split.
        patience: stop a member after this many epochs without a better validation MAE.
    """

    strategy: str
    epochs: int = 50
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-5
    seed: int = 0
    val_fraction: float = 0.2
    folds: int | None = None
    patience: int = 10


@dataclass(frozen=True)
class EpochLog:
    """One epoch of one member, as written to log.csv.

    Attributes:
        member: member index (0-based).
        epoch: epoch number (1-based).
        train_mae: mean absolute training error over the epoch's batches (eV).
        val_mae: validation MAE after the epoch (eV); None without validation.
        lr: learning rate at the end of the epoch.
    """

    member: int
    epoch: int
    train_mae: float
    val_mae: float | None
    lr: float


def default_strategy(n_hops: int) -> str:
    """The strategy used when none is given: by number of labelled hops.

    Args:
        n_hops: number of labelled hops in the data file.

    Returns:
        "head" below 50 hops, "partial" below 300, else "full".
    """
    if n_hops < HEAD_MAX_HOPS:
        return "head"
    if n_hops < PARTIAL_MAX_HOPS:
        return "partial"
    return "full"


def member_plans(n: int, n_base: int, config: FinetuneConfig) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Which base member each output member starts from, and its train/validation hops.

    Args:
        n: number of hops.
        n_base: members of the base ensemble (1 for a backbone).
        config: run settings (split or folds, seed).

    Returns:
        One (base member index, (n_train,) train indices, (n_val,) validation indices)
        per output member; with one random split every base member gets the same split.
    """
    from ase_em.training.ensemble import fold_indices  # imports torch: only when a run plans its members

    everything = np.arange(n)
    if config.folds:
        folds = fold_indices(n, config.folds, config.seed)
        return [(k % n_base, np.setdiff1d(everything, test), np.sort(test)) for k, test in enumerate(folds)]
    n_val = validation_size(n, config.val_fraction)
    perm = np.random.default_rng(config.seed).permutation(n)
    val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    return [(m, train, val) for m in range(n_base)]


def validation_size(n: int, val_fraction: float) -> int:
    """Hops held out: ``round(val_fraction * n)``, at least one when the fraction is > 0."""
    return 0 if val_fraction <= 0 else max(1, int(round(val_fraction * n)))


def check_config(config: FinetuneConfig, n: int, threads: int | None = None) -> None:
    """Refuse settings no run can use, all problems in one message.

    Args:
        config: the settings.
        n: number of labelled hops.
        threads: torch CPU threads asked for (None: the default).

    Raises:
        AseEmError: one line listing every bad setting.
    """
    problems = []
    if config.epochs < 1:
        problems.append(f"--epochs must be >= 1 (got {config.epochs})")
    if config.batch_size < 1:
        problems.append(f"--batch-size must be >= 1 (got {config.batch_size})")
    if not config.lr > 0:
        problems.append(f"--lr must be > 0 (got {config.lr})")
    problems.extend(threads_problems(threads))
    if config.patience < 1:
        problems.append(f"--patience must be >= 1 (got {config.patience})")
    if config.folds is not None:
        if not 2 <= config.folds <= n:
            problems.append(f"--folds must be between 2 and the number of hops ({n}), got {config.folds}")
    elif not 0 <= config.val_fraction < 1:
        problems.append(f"--val-fraction must be in [0, 1) (got {config.val_fraction})")
    elif n - validation_size(n, config.val_fraction) < 1:
        problems.append(
            f"{n} hop(s): too few to hold out {config.val_fraction:g} for validation (use --val-fraction 0)"
        )
    if problems:
        raise AseEmError("; ".join(problems))


def threads_problems(threads: int | None) -> list[str]:
    """What is wrong with a number of torch CPU threads (None: the default; else an int >= 1)."""
    if threads is None or (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
        return []
    return [f"--threads must be an integer >= 1 (got {threads!r})"]
