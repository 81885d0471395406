"""NEB barriers of TRAIN hops per potential, and the combined barrier against DFT.

Two steps:

``run``: refine TRAIN hops (em619 ``band5_train.json``) with one potential, one hop after
the other in this process, and append one JSON line per finished hop to ``--jsonl``
(potential, hop, DFT label, the :class:`~ase_em.neb.result.RefinedHop` fields, the time).
A hop already in the file for that potential is skipped, and each NEB checkpoints in
``--output/<potential>/<hop>/``, so a killed run resumes where it stopped.

``report``: read the JSONL and the network's out-of-fold predictions on TRAIN
(``--oof``, default the grouped 5-fold study ``docs/study/cv-grouped-v1/cv_predictions.csv``:
no hop is predicted by a model that saw a hop of its host), calibrate the NEB uncertainty
per potential (leave-one-out, so no hop calibrates its own sigma), and print per
potential: NEB MAE and R2, the combined barrier's MAE against the network and the NEB
alone with paired differences (mean, bootstrap 95 % interval), calibration (share of
errors within 1 and 2 sigma), time per hop; and the classification accuracy at 0.65 eV of
the network's out-of-fold predictions on all TRAIN hops against a refinement budget of
0/10/25/50 % chosen by :func:`ase_em.neb.select.select_hops` (refined value = the NEB
where measured, else the network).

Usage::

    python benchmarks/refine_study.py run --calculator sevennet-0 --hops Li3OCl_1 Na3OBr ...
    python benchmarks/refine_study.py report --jsonl runs/refine-study/neb.jsonl \
        --json runs/refine-study/report.json
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from pathlib import Path

import numpy as np

DATA = "../shared/data/em619/band5_train.json"
OOF = "docs/study/cv-grouped-v1/cv_predictions.csv"
JSONL = "runs/refine-study/neb.jsonl"


DEFAULT_RECIPE = "ci-neb fmax 0.1, 3 images"


def _done(jsonl: Path) -> set[tuple[str, str, str]]:
    if not jsonl.exists():
        return set()
    out = set()
    for line in jsonl.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            out.add((r["potential"], r["hop"], r.get("recipe", DEFAULT_RECIPE)))
    return out


def run(args: argparse.Namespace) -> None:
    """Refine the hops not yet in the JSONL with one potential; one line per hop."""
    import torch

    from ase_em.neb import make_calculator, refine
    from ase_em.neb.batch import hop_dirname
    from ase_em.training.data import load_em619

    torch.set_num_threads(args.threads)
    data = load_em619(args.data, skip_invalid=True)
    index = {name: i for i, name in enumerate(data.names)}
    missing = [h for h in args.hops if h not in index]
    if missing:
        raise SystemExit(f"not in {args.data} (or invalid): {missing}")
    jsonl = Path(args.jsonl)
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    done = _done(jsonl)
    todo = [h for h in args.hops if (args.calculator, h, args.recipe) not in done]
    if not todo:
        return
    calc = make_calculator(args.calculator, device="cpu")
    for name in todo:
        i = index[name]
        hop = data.hops[i]
        t0 = time.perf_counter()
        workdir = Path(args.output) / args.calculator / hop_dirname(i, name)
        if args.recipe != DEFAULT_RECIPE:
            workdir = Path(args.output) / "recipes" / re.sub(r"[^A-Za-z0-9.]+", "_", args.recipe) / \
                args.calculator / hop_dirname(i, name)
        try:
            res = refine(hop, calc, fmax=args.fmax, relax_fmax=args.relax_fmax, steps=args.steps,
                         n_images=args.n_images, time_limit=args.time_limit, workdir=workdir, name=name,
                         climb=not args.no_climb, loose_fmax=args.loose_fmax)
            rec = res.to_dict()
        except Exception as exc:  # a potential that fails on this hop is a measured failure
            rec = {"error": f"{type(exc).__name__}: {exc}"}
        rec.update({"potential": args.calculator, "hop": name, "dft": float(data.targets[i]),
                    "atoms": len(hop.host_symbols) + 1, "recipe": args.recipe,
                    "seconds_this_call": time.perf_counter() - t0})
        with jsonl.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        logging.info("%s %s: %s", args.calculator, name,
                     rec.get("error") or f"{rec['em_forward']:.3f} eV (DFT {rec['dft']:.3f}), "
                     f"converged {rec['converged']}, {rec['seconds']:.0f} s")


def main() -> None:
    """Parse the step and run it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    r = sub.add_parser("run", help="refine hops with one potential, append to the JSONL")
    r.add_argument("--data", default=DATA)
    r.add_argument("--hops", nargs="+", required=True, help="sys_name of TRAIN records")
    r.add_argument("--calculator", default="sevennet-0")
    r.add_argument("--fmax", type=float, default=0.1)
    r.add_argument("--relax-fmax", type=float, default=0.05)
    r.add_argument("--steps", type=int, default=200)
    r.add_argument("--n-images", type=int, default=3)
    r.add_argument("--no-climb", action="store_true")
    r.add_argument("--loose-fmax", type=float, default=None, help="plain NEB to this tolerance, then climb")
    r.add_argument("--time-limit", type=float, default=600.0, help="seconds per NEB (this call)")
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--recipe", default=DEFAULT_RECIPE, help="label of the settings (part of the key)")
    r.add_argument("--output", default="runs/refine-study")
    r.add_argument("--jsonl", default=JSONL)
    p = sub.add_parser("report", help="tables from the JSONL and the network's out-of-fold predictions")
    p.add_argument("--data", default=DATA)
    p.add_argument("--jsonl", default=JSONL)
    p.add_argument("--oof", default=OOF)
    p.add_argument("--threshold", type=float, default=0.65)
    p.add_argument("--sigma-rule", choices=["laplace", "rms"], default="laplace",
                   help="NEB sigma from the other clean hops: sqrt(2) * MAE (Laplace, as the network's error "
                   "bar) or the RMS error")
    p.add_argument("--inflate", default="converged,shift",
                   help="comma-separated inflations of the NEB sigma (ase_em.neb.combine.neb_sigma: "
                   "converged, shift, below); '' for none")
    p.add_argument("--json", default=None)
    p.add_argument("--markdown", default=None, help="write the tables of docs/refine.md to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.step == "run":
        run(args)
    else:
        report(args)


# ---------------------------------------------------------------------- report

RANDOM_OOF = "ase_em/weights/alignn-em-v1/cv_predictions.csv"
CARD = "ase_em/weights/alignn-em-v1/card.json"
BUDGETS = (0.0, 0.10, 0.25, 0.50)


def network_oof(data_path: str, oof_path: str) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The network's out-of-fold Em and em_std on TRAIN, in data order.

    Em: the grouped 5-fold CV (``oof_path``). em_std: the shipped card's calibrated error
    bar (:func:`ase_em.model.uncertainty.error_bar`) of the two CV runs' mean and spread
    (grouped and the card's random 5-fold), the quantity it was fitted on.

    Returns:
        names, (n,) DFT targets, (n,) Em, (n,) em_std (eV).
    """
    from ase_em.model.uncertainty import error_bar
    from ase_em.training.data import load_em619
    from ase_em.training.ensemble import read_cv_predictions

    data = load_em619(data_path, skip_invalid=True)
    targets = np.asarray(data.targets, float)
    _, grouped = read_cv_predictions(Path(oof_path).parent, targets)
    _, random = read_cv_predictions(Path(RANDOM_OOF).parent, targets)
    runs = np.stack([grouped, random])  # (2, n)
    params = json.loads(Path(CARD).read_text())["uncertainty"]
    std = error_bar(runs.mean(0), runs.std(0, ddof=1), params)
    return list(data.names), targets, grouped, std


def _shift_from_workdir(output: Path, rec: dict) -> float | None:
    """Largest endpoint displacement (A) in relaxation, from the checkpoint trajectories."""
    from ase.geometry import find_mic
    from ase.io import read

    dirs = list((output / rec["potential"]).glob(f"*_{rec['hop']}"))
    if len(dirs) != 1:
        return None
    shifts = []
    for role in ("initial", "final"):
        traj = dirs[0] / f"{role}.traj"
        if not traj.exists():
            return None
        frames = read(traj, ":")
        d, _ = find_mic(frames[-1].positions - frames[0].positions, frames[0].cell, frames[0].pbc)
        shifts.append(float(np.sqrt((d**2).sum(1)).max()))
    return max(shifts)


def _sigma(err2: list, rule: str) -> float:
    """The NEB's sigma from squared errors: RMS, or the Laplace standard deviation sqrt(2) * MAE."""
    e2 = np.asarray(err2, float)
    return float(np.sqrt(e2.mean())) if rule == "rms" else float(np.sqrt(2.0) * np.sqrt(e2).mean())


def _as_result(rec: dict):
    """A RefinedHop from a JSONL record (its fields; other keys dropped)."""
    from dataclasses import fields

    from ase_em.neb.result import RefinedHop

    names = {f.name for f in fields(RefinedHop)} - {"images"}
    return RefinedHop(**{k: v for k, v in rec.items() if k in names})


def _boot(diff: np.ndarray, seed: int = 0, n: int = 5000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(n, len(diff)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _r2(y: np.ndarray, x: np.ndarray) -> float:
    return float(1 - ((y - x) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def report(args: argparse.Namespace) -> None:
    """Per potential: NEB and combined accuracy, calibration, cost; selection study."""
    from ase_em.neb.combine import SHIFT_LIMIT, UNMEASURED_SIGMA, combine_neb, neb_sigma
    from ase_em.neb.potentials import DEFAULT_CALCULATOR

    names, targets, em_net, std_net = network_oof(args.data, args.oof)
    index = {n: i for i, n in enumerate(names)}
    recs = [json.loads(x) for x in Path(args.jsonl).read_text().splitlines() if x.strip()]
    output = Path(args.jsonl).parent
    latest: dict[tuple[str, str], dict] = {}
    for r in recs:
        if r.get("recipe", DEFAULT_RECIPE) == DEFAULT_RECIPE:
            latest[(r["potential"], r["hop"])] = r
    out: dict = {"recipes": _recipes(recs),
                 "network": "grouped 5-fold CV out-of-fold (docs/study/cv-grouped-v1), em_std: card's "
                 "calibrated error bar of the grouped and random CV runs", "potentials": {}}
    lines = []
    for pot in dict.fromkeys(p for p, _ in latest):
        rows = [r for (p, _), r in latest.items() if p == pot]
        failed = [r for r in rows if r.get("error")]
        ok = [r for r in rows if not r.get("error")]
        for r in ok:
            if r.get("endpoint_shift") is None:
                r["endpoint_shift"] = _shift_from_workdir(output, r)
        inflate = [x for x in args.inflate.split(",") if x]
        clean = [not neb_sigma(_as_result(r), sigma=1.0, inflate=inflate)[1] for r in ok]  # none applies
        dft = np.array([r["dft"] for r in ok])
        neb = np.array([r["em_forward"] for r in ok])
        ref = np.array([r["em_reference"] for r in ok])
        ii = np.array([index[r["hop"]] for r in ok])
        net, snet = em_net[ii], std_net[ii]
        err2 = (neb - dft) ** 2
        comb, scomb, sneb, scales = [], [], [], []
        for k, r in enumerate(ok):  # leave-one-out: hop k's sigma_0 from the other clean hops
            others = [err2[j] for j in range(len(ok)) if j != k and clean[j]]
            s0 = _sigma(others, args.sigma_rule) if len(others) >= 3 else UNMEASURED_SIGMA  # too few: default
            s, why = neb_sigma(_as_result(r), sigma=s0, inflate=inflate)  # as ase_em.refine
            r["neb_std_reasons"] = why
            c = combine_neb(float(net[k]), float(snet[k]), float(neb[k]), s, converged=bool(r["converged"]))
            comb.append(c.em)
            scomb.append(c.em_std)
            sneb.append(s)
            scales.append(c.scale)
        comb, scomb, sneb = np.array(comb), np.array(scomb), np.array(sneb)
        e_net, e_neb, e_comb = np.abs(net - dft), np.abs(neb - dft), np.abs(comb - dft)
        d_cn, d_cp = e_comb - e_net, e_comb - e_neb
        sec = np.array([r["seconds"] for r in ok])
        res = {
            "n": len(rows), "failed": [f"{r['hop']}: {r['error']}" for r in failed], "n_ok": len(ok),
            "n_converged": int(sum(bool(r["converged"]) for r in ok)),
            "n_endpoint_moved": int(sum((r["endpoint_shift"] or 0) > SHIFT_LIMIT for r in ok)),
            "mae_neb_forward": float(e_neb.mean()), "r2_neb_forward": _r2(dft, neb),
            "mae_neb_max_min": float(np.abs(ref - dft).mean()),
            "mae_network": float(e_net.mean()), "r2_network": _r2(dft, net),
            "mae_combined": float(e_comb.mean()), "r2_combined": _r2(dft, comb),
            "paired_combined_minus_network": [float(d_cn.mean()), *_boot(d_cn)],
            "paired_combined_minus_neb": [float(d_cp.mean()), *_boot(d_cp)],
            "corr_errors_network_neb": float(np.corrcoef(net - dft, neb - dft)[0, 1]),
            "sigma_neb_full": (_sigma(list(err2[np.array(clean, bool)]), args.sigma_rule)
                               if any(clean) else None),
            "sigma_rule": args.sigma_rule,
            "within_1_sigma": {"combined": float(np.mean(e_comb <= scomb)),
                               "neb": float(np.mean(e_neb <= sneb)),
                               "network": float(np.mean(e_net <= snet))},
            "within_2_sigma": {"combined": float(np.mean(e_comb <= 2 * scomb)),
                               "neb": float(np.mean(e_neb <= 2 * sneb)),
                               "network": float(np.mean(e_net <= 2 * snet))},
            "n_disagreement_warnings": int(sum(x > 3 for x in scales)),
            "seconds_per_hop": {"mean": float(sec.mean()), "median": float(np.median(sec)),
                                "max": float(sec.max())},
            "hops": [{"hop": r["hop"], "atoms": r["atoms"], "dft": r["dft"], "network": float(net[k]),
                      "network_std": float(snet[k]), "neb": r["em_forward"], "neb_max_min": r["em_reference"],
                      "neb_std": float(sneb[k]), "combined": float(comb[k]), "combined_std": float(scomb[k]),
                      "converged": r["converged"], "inflated": r["neb_std_reasons"],
                      "endpoint_shift": r["endpoint_shift"], "steps": r["steps"],
                      "seconds": r["seconds"]} for k, r in enumerate(ok)],
        }
        res["selection"] = _selection(ok, dft, net, snet, neb, comb, args.threshold)
        out["potentials"][pot] = res
        lines.append(_lines(pot, res))
    pots = out["potentials"]
    default = DEFAULT_CALCULATOR if DEFAULT_CALCULATOR in pots else next(iter(pots), None)
    if default:
        out["selection_all_train"] = _selection_all(latest, default, targets, em_net, std_net, index,
                                                    args.threshold)
    common = _common(out["potentials"], default)
    out["common_hops"] = common
    print("\n\n".join(lines))
    print("\nrecipes (paired with the default on the same hop):", json.dumps(out["recipes"], indent=1))
    print("\nsame hops for every potential:", json.dumps(common, indent=1))
    if default:
        print("\nselection on all TRAIN:", json.dumps(out["selection_all_train"], indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(markdown(out))


def _f(x, fmt=".3f") -> str:
    return "-" if x is None else format(x, fmt)


def _ci(x) -> str:
    """A paired difference as 'mean (low, high)', '-' where there is none."""
    return "-" if x is None else f"{x[0]:+.3f} ({x[1]:+.3f}, {x[2]:+.3f})"


def markdown(out: dict) -> str:
    """The study's tables as Markdown."""
    t = ["| potential | hops | failed | converged | NEB MAE | NEB R2 | network MAE | combined MAE | "
         "combined - network (95 % CI) | combined - NEB (95 % CI) | corr. of errors | "
         "within 1 / 2 sigma (combined) | s per hop (median, max) |", "|" + " --- |" * 13]
    for pot, r in out["potentials"].items():
        a, b = r["paired_combined_minus_network"], r["paired_combined_minus_neb"]
        t.append(f"| {pot} | {r['n']} | {len(r['failed'])} | {r['n_converged']} | "
                 f"{r['mae_neb_forward']:.3f} | "
                 f"{r['r2_neb_forward']:.2f} | {r['mae_network']:.3f} | {r['mae_combined']:.3f} | "
                 f"{a[0]:+.3f} ({a[1]:+.3f}, {a[2]:+.3f}) | {b[0]:+.3f} ({b[1]:+.3f}, {b[2]:+.3f}) | "
                 f"{r['corr_errors_network_neb']:+.2f} | {r['within_1_sigma']['combined']:.2f} / "
                 f"{r['within_2_sigma']['combined']:.2f} | {r['seconds_per_hop']['median']:.0f}, "
                 f"{r['seconds_per_hop']['max']:.0f} |")
    c = out.get("common_hops") or {}
    if c.get("n"):
        t += ["", f"Same {c['n']} hops for every potential: " + ", ".join(c["hops"]), "",
              f"| potential | NEB MAE | NEB median abs. error | network MAE | combined MAE | "
              f"NEB - {c['paired_with']} (95 % CI) | combined - {c['paired_with']} (95 % CI) | "
              "mean s per hop |", "|" + " --- |" * 8]
        for pot, v in c.items():
            if isinstance(v, dict):
                pn, pc = v.get("paired_neb_minus_default"), v.get("paired_combined_minus_default")
                t.append(f"| {pot} | {v['mae_neb']:.3f} | {v['median_neb']:.3f} | {v['mae_network']:.3f} | "
                         f"{v['mae_combined']:.3f} | {_ci(pn)} | {_ci(pc)} | {v['seconds_mean']:.0f} |")
    for pot, r in out["potentials"].items():
        t += ["", f"Classification at the threshold, {pot} hops (n = {r['n_ok']}):", "",
              "| budget | hops refined | auto (straddle): NEB | auto (straddle): combined | by em_std: NEB | "
              "random choice: NEB |", "|" + " --- |" * 6]
        for s in r["selection"]:
            t.append(f"| {s['budget']:.0%} | {s['hops_refined']} | {s['straddle_neb']:.3f} | "
                     f"{s['straddle_combined']:.3f} | {s['std_neb']:.3f} | {s['random_neb']:.3f} |")
        break
    for pot, r in out["potentials"].items():
        t += ["", f"Per hop, {pot}:", "", "| hop | atoms | DFT | network (OOF) | NEB | NEB sigma | "
              "combined | converged | endpoint shift (A) | inflated | s |", "|" + " --- |" * 11]
        for h in r["hops"]:
            t.append(f"| {h['hop']} | {h['atoms']} | {h['dft']:.3f} | "
                     f"{h['network']:.3f} +- {h['network_std']:.2f} | "
                     f"{h['neb']:.3f} | {h['neb_std']:.2f} | "
                     f"{h['combined']:.3f} +- {h['combined_std']:.2f} | "
                     f"{'yes' if h['converged'] else 'no'} | {_f(h['endpoint_shift'], '.2f')} | "
                     f"{'; '.join(h['inflated']) or '-'} | {h['seconds']:.0f} |")
    if out.get("recipes"):
        t += ["", "| hop | recipe | Em forward | default (3 images, CI from the start) | difference | "
              "NEB steps (default) | s (default) |", "|" + " --- |" * 7]
        for r in out["recipes"]:
            t.append(f"| {r['hop']} | {r['recipe']} | {r['em_forward']:.3f} | "
                     f"{r['default_em_forward']:.3f} | "
                     f"{r['difference']:+.3f} | {r['steps']} ({r['default_steps']}) | {r['seconds']:.0f} "
                     f"({r['default_seconds']:.0f}) |")
    return "\n".join(t) + "\n"


def _recipes(recs: list[dict]) -> list[dict]:
    """Each non-default recipe beside the default one on the same potential and hop."""
    paired = " (rerun, paired timing)"  # run back to back with the default rerun under the same load
    base = {(r["potential"], r["hop"], r.get("recipe", DEFAULT_RECIPE)): r
            for r in recs if not r.get("error")}
    out = []
    for r in recs:
        recipe = r.get("recipe", DEFAULT_RECIPE)
        default = DEFAULT_RECIPE + paired if recipe.endswith(paired) else DEFAULT_RECIPE
        b = base.get((r["potential"], r["hop"], default))
        if recipe == default or b is None or r.get("error"):
            continue
        out.append({"potential": r["potential"], "hop": r["hop"], "recipe": r["recipe"], "dft": r["dft"],
                    "em_forward": r["em_forward"], "default_em_forward": b["em_forward"],
                    "difference": r["em_forward"] - b["em_forward"], "steps": r["steps"],
                    "default_steps": b["steps"], "seconds": r["seconds"], "default_seconds": b["seconds"],
                    "converged": r["converged"]})
    return out


def _accuracy(values: np.ndarray, dft: np.ndarray, thr: float) -> float:
    return float(np.mean((values < thr) == (dft < thr)))


def _selection(ok, dft, net, snet, neb, comb, thr) -> list[dict]:
    """Accuracy at thr on the measured hops vs budget: auto rule, std rule, random choice."""
    from ase_em.neb.select import rank_hops

    n = len(ok)
    out = []
    order = {rule: [c.key for c in rank_hops(((k, float(net[k]), float(snet[k])) for k in range(n)),
                                             threshold=thr, rule=rule)] for rule in ("straddle", "std")}
    rng = np.random.default_rng(0)
    for frac in BUDGETS:
        k = int(round(frac * n))
        row = {"budget": frac, "hops_refined": k}
        for rule, keys in order.items():
            for name, val in (("neb", neb), ("combined", comb)):
                v = net.copy()
                v[keys[:k]] = val[keys[:k]]
                row[f"{rule}_{name}"] = _accuracy(v, dft, thr)
        accs = []
        for _ in range(2000):
            v = net.copy()
            pick = rng.choice(n, size=k, replace=False)
            v[pick] = neb[pick]
            accs.append(_accuracy(v, dft, thr))
        row["random_neb"] = float(np.mean(accs))
        out.append(row)
    return out


def _selection_all(latest, pot, targets, em_net, std_net, index, thr) -> list[dict]:
    """Accuracy at thr on all TRAIN hops vs budget (auto rule); refined = NEB where measured."""
    from ase_em.neb.select import rank_hops

    neb = {index[h]: r["em_forward"] for (p, h), r in latest.items() if p == pot and not r.get("error")}
    keys = [c.key for c in rank_hops(((i, float(em_net[i]), float(std_net[i])) for i in range(len(targets))),
                                     threshold=thr)]
    out = []
    for frac in BUDGETS:
        k = int(round(frac * len(targets)))
        chosen = keys[:k]
        v = em_net.copy()
        measured = [i for i in chosen if i in neb]
        for i in measured:
            v[i] = neb[i]
        out.append({"budget": frac, "hops_chosen": k, "chosen_with_neb": len(measured),
                    "accuracy": _accuracy(v, targets, thr)})
    return out


def _common(pots: dict, default: str | None = None) -> dict:
    """MAE of each potential on the hops every potential measured, paired with ``default``.

    The paired differences are per hop |error| of the potential minus |error| of ``default``
    on the same hop (mean, bootstrap 95 % interval): negative favours the potential. The
    median |error| of the NEB is given beside its mean, which one diverged NEB dominates.
    """
    sets = [{h["hop"] for h in r["hops"]} for r in pots.values()]
    if not sets:
        return {}
    same = sorted(set.intersection(*sets))
    out = {"n": len(same), "hops": same, "paired_with": default}
    errs = {}
    for pot, r in pots.items():
        by = {h["hop"]: h for h in r["hops"]}
        hs = [by[n] for n in same]
        if hs:
            errs[pot] = {k: np.array([abs(h[k] - h["dft"]) for h in hs]) for k in ("neb", "combined")}
            out[pot] = {"mae_neb": float(errs[pot]["neb"].mean()),
                        "median_neb": float(np.median(errs[pot]["neb"])),
                        "mae_network": float(np.mean([abs(h["network"] - h["dft"]) for h in hs])),
                        "mae_combined": float(errs[pot]["combined"].mean()),
                        "seconds_mean": float(np.mean([h["seconds"] for h in hs]))}
    if default in errs:
        for pot in errs:
            if pot != default:
                for k in ("neb", "combined"):
                    d = errs[pot][k] - errs[default][k]
                    out[pot][f"paired_{k}_minus_default"] = [float(d.mean()), *_boot(d)]
    return out


def _lines(pot: str, r: dict) -> str:
    a, b = r["paired_combined_minus_network"], r["paired_combined_minus_neb"]
    rows = [f"== {pot}: {r['n']} hops, {len(r['failed'])} failed, {r['n_converged']} converged, "
            f"{r['n_endpoint_moved']} with an endpoint atom moved > 1 A",
            f"MAE (eV): NEB {r['mae_neb_forward']:.3f} (R2 {r['r2_neb_forward']:.2f}; max-min "
            f"{r['mae_neb_max_min']:.3f}), network {r['mae_network']:.3f} (R2 {r['r2_network']:.2f}), "
            f"combined {r['mae_combined']:.3f} (R2 {r['r2_combined']:.2f})",
            f"paired |err| combined - network {a[0]:+.3f} [{a[1]:+.3f}, {a[2]:+.3f}]; combined - NEB "
            f"{b[0]:+.3f} [{b[1]:+.3f}, {b[2]:+.3f}] (mean, bootstrap 95 %)",
            f"corr(network error, NEB error) {r['corr_errors_network_neb']:+.2f}; "
            f"sigma_NEB ({r['sigma_rule']}, clean hops) {_f(r['sigma_neb_full'])}",
            f"within 1/2 sigma: combined {r['within_1_sigma']['combined']:.2f}/"
            f"{r['within_2_sigma']['combined']:.2f}, NEB {r['within_1_sigma']['neb']:.2f}/"
            f"{r['within_2_sigma']['neb']:.2f}, network "
            f"{r['within_1_sigma']['network']:.2f}/{r['within_2_sigma']['network']:.2f}; "
            f"{r['n_disagreement_warnings']} disagreement warnings",
            f"seconds per hop: mean {r['seconds_per_hop']['mean']:.0f}, "
            f"median {r['seconds_per_hop']['median']:.0f}",
            "budget  hops  straddle:NEB  straddle:comb  std:NEB  random:NEB"]
    for s in r["selection"]:
        rows.append(f"{s['budget']:5.0%}  {s['hops_refined']:4d}  {s['straddle_neb']:12.3f}  "
                    f"{s['straddle_combined']:13.3f}  {s['std_neb']:7.3f}  {s['random_neb']:10.3f}")
    for h in r["hops"]:
        rows.append(f"  {h['hop']:<18} {h['atoms']:3d} DFT {h['dft']:.3f} net {h['network']:.3f}+-"
                    f"{h['network_std']:.2f} NEB {h['neb']:.3f}+-{h['neb_std']:.2f} "
                    f"comb {h['combined']:.3f}+-{h['combined_std']:.2f} conv {h['converged']} "
                    f"shift {h['endpoint_shift']:.2f} "
                    f"{h['seconds']:.0f} s")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
