"""``ase-em info``, ``ase-em predict`` and ``ase-em evaluate``: the shipped model and its barriers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ase_em._version import __version__
from ase_em.cli._args import _threads, load_labelled_em619
from ase_em.errors import AseEmError


def cmd_info(args: argparse.Namespace) -> int:
    """Print version, shipped model, its CV metrics, torch version and threads."""
    import torch

    from ase_em._runtime.threads import resolve_threads
    from ase_em.model.domain import ModelDomain
    from ase_em.model.weights import (
        DEFAULT_MODEL,
        SCREEN_MODEL,
        available_backbones,
        available_models,
        is_backbone,
        read_card,
        resolve,
    )

    card = read_card(args.model)
    domain = ModelDomain.load(resolve(args.model))
    cv = card.get("metrics", {}).get("cv_out_of_fold", {})
    info = {
        "ase_em": __version__,
        "default_model": DEFAULT_MODEL,
        "screen_model": SCREEN_MODEL,
        "shipped_models": available_models(),
        "shipped_backbones": available_backbones(),
        "model": card.get("name"),
        "kind": card.get("kind") if is_backbone(card) else "barrier model",
        "model_metrics": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in cv.items()},
        "metrics_scheme": card.get("metrics", {}).get("scheme"),
        "pathways": _pathways_summary(card),
        "em_std": _em_std_summary(card),
        "train_ions": None if domain is None else dict(sorted(domain.ions.items(), key=lambda kv: -kv[1])),
        "domain": None if domain is None else domain.summary(),
        "torch": torch.__version__,
        "threads": resolve_threads(),  # what a command uses without --threads (not torch's default)
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:>16}: {v}")
    return 0


def _pathways_summary(card: dict) -> str | None:
    """The grouped-CV pathway ranking figures on the card, in one line (None if absent)."""
    figures = card.get("metrics", {}).get("pathways", {}).get("grouped")
    if not figures:
        return None
    high = figures.get("by_barrier", {}).get("> 1.5 eV", {})
    return (
        f"{figures['scheme']}: MAE {figures['mae']:.3f} eV; within a structure, lowest pathway found "
        f"{figures['lowest_found']:.3f}, pairs ordered right {figures['pair_accuracy']:.3f} "
        f"(n {figures['pairs']}), pairs with a DFT gap > 0.3 eV "
        f"{figures['pair_accuracy_gap_above_0.3_eV']:.3f}; "
        f"bias above 1.5 eV {high.get('bias', float('nan')):+.3f} eV"
    )


def _em_std_summary(card: dict) -> str:
    """What em_std means for this model, in one line."""
    calibration = card.get("uncertainty")
    if not calibration:
        return "spread of the ensemble members (not calibrated)"
    cov = calibration.get("coverage_calibrated_out_of_fold", {})
    return (
        "spread calibrated on CV: "
        f"{cov.get('within_1_std', float('nan')):.0%} of out-of-fold errors within 1 em_std, "
        f"{cov.get('within_2_std', float('nan')):.0%} within 2"
    )


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict the barrier of one hop (endpoints or NEB images)."""
    from ase_em.hops.hop import Hop
    from ase_em.predictor import EmPredictor

    if args.images:
        if args.initial or args.final:
            raise SystemExit("ase-em predict: give either INITIAL FINAL or --images FILE, not both")
        hop = Hop.from_images(args.images, ion_index=args.ion_index)
    else:
        if not (args.initial and args.final):
            raise SystemExit("ase-em predict: give INITIAL and FINAL structure files, or --images FILE")
        hop = Hop.from_endpoints(args.initial, args.final, ion_index=args.ion_index)
    _threads(args.threads)
    predictor = EmPredictor.from_pretrained(args.model)
    result = predictor.predict_one(hop)
    out = {
        "em": round(result.em, 4),
        "em_std": None if result.em_std is None else round(result.em_std, 4),
        "ion": hop.ion,
        "ion_index": hop.ion_index,
        "hop_length": round(hop.length, 4),
        "model": predictor.name,
        "flags": list(result.flags),
        "flag_reasons": dict(zip(result.flags, result.reasons)),
        "train_distance": None if result.train_distance is None else round(result.train_distance, 3),
    }
    if result.flags:  # on stderr, so that --json output stays one JSON object
        print(f"warning: {result.warning()}", file=sys.stderr)
    if args.json:
        print(json.dumps(out))
    else:
        std = "" if out["em_std"] is None else f" +/- {out['em_std']:.3f}"
        print(
            f"Em = {out['em']:.3f}{std} eV  ({hop.ion} ion, atom {hop.ion_index}, "
            f"hop {hop.length:.2f} A, model {predictor.name})"
        )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a model on a labelled em619-format JSON file."""
    import numpy as np


    data = load_labelled_em619(args)
    if args.predictions and Path(args.predictions).exists() and not args.overwrite:
        raise AseEmError(f"{args.predictions}: exists (use --overwrite)")
    from ase_em.predictor import EmPredictor  # torch: only once the data is known to be good
    from ase_em.training.metrics import barrier_metrics

    _threads(args.threads)
    predictor = EmPredictor.from_pretrained(args.model)
    results = predictor.predict(data.hops, progress=True)
    pred = np.array([r.em for r in results])
    m = barrier_metrics(np.asarray(data.targets), pred)
    print(f"model {predictor.name} on {args.data}")
    print(
        f"n {m['n']}  MAE {m['mae']:.3f} eV  RMSE {m['rmse']:.3f} eV  R2 {m['r2']:.3f}  |  "
        f"Em < 0.65 eV: accuracy {m['accuracy']:.3f}  precision {m['precision']:.3f}  "
        f"recall {m['recall']:.3f}"
    )
    if args.predictions:
        import csv

        with open(args.predictions, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["sys_name", "target", "prediction", "em_std"])
            for name, t, r in zip(data.names, data.targets, results):
                w.writerow([name, t, f"{r.em:.5f}", "" if r.em_std is None else f"{r.em_std:.5f}"])
    return 0
