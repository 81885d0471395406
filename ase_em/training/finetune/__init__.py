"""Fine-tune a trained barrier model on a user's own DFT barriers.

``finetune(data, output=DIR)`` reads a labelled file (CSV, em619 JSON or band5 extxyz/traj,
see :mod:`ase_em.training.data`), checks every row before anything is trained, and fine-tunes each
member of the base model's ensemble (so the result keeps an uncertainty). Hops become
graphs with exactly the code and the graph settings (from the base card) that prediction
uses. The result is a model directory like any other: model.pt and card.json (written by
:func:`ase_em.model.weights.save_model`), plus ``log.csv`` (one row per member and epoch),
``predictions.csv`` and ``parity.png``.

The start can also be a pre-trained backbone (``ase-em pretrain`` output, or a shipped
backbone name), which has no barrier head: the result then has one member (K with
``folds``), each with the backbone's weights, a freshly initialised head (seeded by
(seed, member)) and the target scaling of its own training hops; the graph settings are
the backbone's cutoff and max_neighbors with the shipped default model's crop radius (the
backbone saw uncropped bulk crystals, hops are cropped as the shipped model crops them).
The card then has no base-model metrics, and predictions.csv no base predictions.

Strategies (which parameters train; the others stay exactly as in the base model):

* ``head``: the output MLP only (8.4k of 158k parameters in the shipped model);
* ``partial``: the edge-gated graph convolutions (the last message-passing layers) and the
  head (50.6k); a model without such layers trains its last ALIGNN layer instead;
* ``full``: everything.

By default the strategy follows the number of labelled hops: ``head`` below
:data:`HEAD_MAX_HOPS` (50), ``partial`` below :data:`PARTIAL_MAX_HOPS` (300), else ``full``
(see docs/finetune.md for the reasoning). Each member of a barrier model keeps its base model's target scaling
(mean and spread of the barriers it was trained on): the head's output units stay the ones
the pretrained layers were fitted to, and a small data set gives a noisy mean and spread.

Interrupted runs (Ctrl-C, a kill) leave a checkpoint written after every epoch in the
work directory (``DIR/.work`` by default); ``resume=True`` continues from it and ends with
the weights an uninterrupted run would have given: each epoch's shuffling comes from a
generator seeded by (seed, member, epoch), and the checkpoint holds the trainable weights,
the optimiser and schedule state, the early-stopping state and the torch RNG state.

Training data integrity: barriers outside ``[0, 10]`` eV are refused unless
``allow_implausible_barriers``; the same hop under two ids is logged as a warning and
recorded on the card; the graph cache and the checkpoint are keyed on the checksum of the
data file and of every structure file a CSV row names, so an edited structure is rebuilt,
and ``resume`` refuses a checkpoint trained on the old one; the output folder (and a
separate work folder) is locked (:func:`ase_em._runtime.folders.folder_lock`) while a run writes it.

Layout: ``_config`` (settings, defaults, splits), ``_base`` (the start model, freezing),
``_member`` (one member's epoch loop), ``_workdir`` (resume rules), ``_outputs`` (card,
predictions, parity plot) and ``_run`` (:func:`finetune`, which ties them together).
"""

from __future__ import annotations

from ase_em.training.finetune._base import Base, freeze, load_base, trainable_prefixes
from ase_em.training.finetune._config import (
    CHECKPOINT,
    DEFAULT_LR,
    HEAD_MAX_HOPS,
    PARTIAL_MAX_HOPS,
    SETTINGS,
    STRATEGIES,
    EpochLog,
    FinetuneConfig,
    default_strategy,
    member_plans,
    validation_size,
)
from ase_em.training.finetune._run import finetune

__all__ = [
    "CHECKPOINT",
    "DEFAULT_LR",
    "HEAD_MAX_HOPS",
    "PARTIAL_MAX_HOPS",
    "SETTINGS",
    "STRATEGIES",
    "Base",
    "EpochLog",
    "FinetuneConfig",
    "default_strategy",
    "finetune",
    "freeze",
    "load_base",
    "member_plans",
    "trainable_prefixes",
    "validation_size",
]

