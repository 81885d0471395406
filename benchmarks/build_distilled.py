"""Build ``alignn-em-v1-distilled``: one network taught alignn-em-v1's mean barrier and member spread.

Usage::

    python benchmarks/distill_data.py --out runs/distill/mpt_0.pt --part 0 --parts 2 --max-hops 2600
    python benchmarks/distill_data.py --out runs/distill/mpt_1.pt --part 1 --parts 2 --max-hops 2600
    python benchmarks/distill_data.py --out runs/distill/train.pt --train
    python benchmarks/distill_data.py --out runs/distill/mpt_vac.pt --li-vacancies 0.25 \
        --max-sites 40 --max-hops 5000
    python benchmarks/distill_data.py --out runs/distill/mpt_vac50.pt --li-vacancies 0.5 \
        --max-sites 80 --max-hops 5000
    python benchmarks/build_distilled.py --data runs/distill --epochs 5 --threads 2

The student starts from v1's first member (:func:`ase_em.training.distill.student_from_member`)
and is trained on the teacher's answers for every recorded hop but a held-out 5 % of the
Materials Project hops, drawn by structure-independent index with seed 0 (scored every
epoch). The card keeps v1's graph settings, domain and error-bar calibration (the student's
spread stands in for the members'), the held-out fidelity, and the student's and the
teacher's in-sample figures on TRAIN (the teacher's members saw 4/5 of TRAIN each, so these
are no cross-validation; the fidelity is the held-out figure).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=ROOT / "runs" / "distill")
    parser.add_argument("--out", type=Path, default=ROOT / "ase_em" / "weights" / "alignn-em-v1-distilled")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from ase_em.model.weights import load_model, save_model
    from ase_em.training.distill import distil, predict_student, student_from_member

    teacher = load_model("alignn-em-v1")
    parts = sorted(args.data.glob("mpt_*.pt"))
    mpt, source = [], []
    for f in parts:
        records = torch.load(f, weights_only=False)["records"]
        mpt += records
        source += [f.stem] * len(records)
    train = torch.load(args.data / "train.pt", weights_only=False)["records"]
    rng = np.random.default_rng(0)
    held = np.zeros(len(mpt), bool)
    held[rng.choice(len(mpt), size=len(mpt) // 20, replace=False)] = True
    fit = [r for r, h in zip(mpt, held) if not h] + train
    val = [r for r, h in zip(mpt, held) if h]
    val_source = np.array([s for s, h in zip(source, held) if h])

    def arrays(records):
        return ([r["graph"] for r in records], np.array([r["em"] for r in records]),
                np.array([r["spread"] for r in records]))

    student = student_from_member(teacher.ensemble, 0, spread=float(np.median([r["spread"] for r in fit])))
    t0 = time.time()
    history = distil(student, *arrays(fit), epochs=args.epochs, lr=args.lr, seed=0,
                     checkpoint=args.data / "student.ckpt", validation=arrays(val))
    print(json.dumps(history[-1]), f"{time.time() - t0:.0f} s")

    g_tr, em_tr, sp_tr = arrays(train)
    s_em, s_sp = predict_student(student, g_tr)
    from ase_em.training.data import load_em619

    labelled = load_em619(ROOT.parent / "shared/data/em619/band5_train.json", skip_invalid=True)
    targets = np.asarray(labelled.targets, float)
    if len(targets) != len(em_tr):
        raise SystemExit(f"{len(targets)} TRAIN targets but {len(em_tr)} recorded TRAIN bands")
    v_g, v_em, v_sp = arrays(val)
    v_s_em, v_s_sp = predict_student(student, v_g)
    card = dict(teacher.card)
    dropped = ("sha256", "graph", "model", "n_members", "metrics", "split", "train", "data", "command",
               "date")
    for key in dropped:
        card.pop(key, None)
    card.update({
        "name": "alignn-em-v1-distilled",
        "version": "0.1.0",
        "description": "one ALIGNN network distilled from alignn-em-v1's five members: their mean "
                       "barrier and member spread; one forward pass a hop instead of five",
        "teacher": "alignn-em-v1",
        "distillation": {
            "data": f"{len(mpt)} hops of {len(parts)} runs over Materials Project structures "
                    f"(data/mpt/bg.json.gz; no labels used; {', '.join(p.stem for p in parts)}) + "
                    f"{len(train)} TRAIN bands",
            "held_out": len(val),
            "epochs": args.epochs, "lr": args.lr, "start": "alignn-em-v1 member 0",
            "history": history,
            "held_out_em_mae_eV": float(np.mean(np.abs(v_s_em - v_em))),
            "held_out_em_max_eV": float(np.max(np.abs(v_s_em - v_em))),
            "held_out_spread_mae_eV": float(np.mean(np.abs(v_s_sp - v_sp))),
            "held_out_by_file": {
                name: {"hops": int((val_source == name).sum()),
                       "em_mae_eV": float(np.mean(np.abs(v_s_em - v_em)[val_source == name]))}
                for name in sorted(set(val_source))
            },
            "train_in_sample": {
                "student_mae": float(np.mean(np.abs(s_em - targets))),
                "teacher_mae": float(np.mean(np.abs(em_tr - targets))),
                "student_teacher_mae": float(np.mean(np.abs(s_em - em_tr))),
            },
        },
        "metrics": {"cv_out_of_fold": teacher.card["metrics"]["cv_out_of_fold"],
                    "scheme": "alignn-em-v1's (the teacher's) 5-fold CV; the student's own is not measured"},
        "command": "python benchmarks/build_distilled.py " + f"--epochs {args.epochs} --lr {args.lr}",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "license": teacher.card.get("license"),
        "torch": torch.__version__,
    })
    save_model(student, teacher.graph_config, args.out, card)
    shutil.copy(teacher.path / "domain.json", args.out / "domain.json")
    print(json.dumps(card["distillation"], indent=1, default=str)[-1500:])


if __name__ == "__main__":
    main()
