"""The bond-valence lever: BVSE barriers of each TRAIN hop as rules, as descriptors and in a stack.

Usage:
    python benchmarks/bv_path.py [--data TRAIN.json] [--cache runs/bv-path/features.csv]
        [--limit N] [--features-only] [--out docs/study/bv-path] [--tree-seed 0]
        [--tube 1.5] [--grid 0.25]

Step 1 (resumable; progress every 10 hops): bond-valence site energies (BVSE, bvlain's
parameters and potential: Morse-type attraction to the anions, screened Coulomb repulsion
from the cations) of the migrating ion along its hop, one CSV row per hop in ``--cache``.
A rerun reads that file and computes only the hops it lacks.

How the hop is represented: the band's host (every atom but the migrating ion; for a
vacancy hop the other ions of its element are there, the start site holds the ion and the
end site is empty). Two energy landscapes:

* ``fw``: bvlain's standard BVSE, every atom of the mobile element removed (the framework);
* ``host``: the band's host as it is, i.e. ``fw`` plus the screened Coulomb repulsion from
  the other ions of the mobile element (bvlain's Coulomb term with the ion's own radius and
  quantum number).

Oxidation states come per element (the mobile ion: its usual charge; the framework:
pymatgen's ``Composition.oxi_state_guesses`` for the charge that balances the mobile ions
of the crystal the band was cut from, i.e. host + ion, + one more ion when the host holds
other ions of its element: a vacancy cell, whose empty end site is filled). Averaged
(mixed-valence) cation states are kept (they only scale the Coulomb term); anions get
their usual charge for bvlain's Morse parameters when the guess gives a negative fraction; with no
guess, anions keep their usual charge and the other cations share the rest in proportion
to their highest common oxidation state. Hops whose pairs have unphysical entries in
bvlain's table (Morse alpha <= 0: Mg-Se, Mg-Te, Mg-I, Ca-Te, Ca-Br, Ca-I, Sr-Te, Sr-Br,
Sr-I) get no BV data (blank row), as do hops with a pair missing from it (a KeyError: nitrides,
phosphides); the models impute the median, the rules leave them out.

Per hop and landscape: the energy at the two endpoints, the maximum over 21 points of the
straight segment, and the bottleneck (minimax) energy of the best path between the two
endpoint nodes of a grid (0.25 A) in a box of +-1.5 A around the straight segment (it
reaches 2 grid steps beyond each end): the lowest level at which the two nodes are
face-connected (scipy.ndimage.label, bisection over the grid's energies). "Straight
barrier" = straight maximum - start energy, "path barrier" = bottleneck - start energy.

Step 2 (unless --features-only, once every hop has its row): the figures, each with the
grouped folds of ``docs/study/cv-grouped-v1`` (compound groups, 5 folds, seed 0) and with
the random folds of ``alignn-em-v1`` (5 folds, seed 0):

* the BV barriers as rules (lowest found, pairs, pairs > 0.3 eV, as benchmarks/pathways.py;
  Spearman with DFT over all hops);
* the descriptor floor (benchmarks/descriptor_baseline.py's trees and descriptors) without
  and with the BV features; paired MAE difference fold by fold and paired pair-accuracy
  difference (bootstrap over structures);
* a stack: the network's out-of-fold prediction plus BV features in a small second stage
  on the residual (ridge; shallow trees; ridge with the BV features also centred on their
  structure's mean, features only), trained within each fold on the other folds'
  out-of-fold values only; the same paired differences against the network alone;
* the mean of the network's and the floor+BV trees' predictions;
* MAE and bias per DFT barrier bin.

``--tree-seed`` changes the trees' random_state (the folds stay). Writes ``features.csv``
(the cache), ``oof.csv`` (every model's out-of-fold predictions) and ``results.md`` (the
tables) to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from ase_em.hops.bond_valence import GRID, LANDSCAPES, N_STRAIGHT, TUBE

ROOT = Path(__file__).resolve().parent.parent

# per hop, before the energies
META = ["sys_name", "target", "ion", "length", "oxi_source", "seconds", "grid", "tube"]
FIELDS = META + [
    f"{land}_{k}" for land in LANDSCAPES for k in ("e_start", "e_end", "e_straight", "e_path")
] + [f"host_profile_{i}" for i in range(N_STRAIGHT)]


# ---------------------------------------------------------------- BVSE of a hop
# the landscape, oxidation states and path search are ase_em.hops.bond_valence's (alignn-em-v3 uses them)


def hop_features(hop) -> dict:
    from ase_em.hops import bond_valence

    p = bond_valence.bond_valence_profile(hop, grid=GRID, tube=TUBE)
    out = {"oxi_source": p.oxi_source}
    for name in LANDSCAPES:
        out[f"{name}_e_start"] = p.e_start[name]
        out[f"{name}_e_end"] = p.e_end[name]
        out[f"{name}_e_straight"] = p.e_straight[name]
        out[f"{name}_e_path"] = p.e_path[name]
    for i, e in enumerate(p.host_line):
        out[f"host_profile_{i}"] = e
    return out


def compute_features(data, cache: Path, limit: int | None) -> None:
    done, header = set(), FIELDS
    if cache.is_file():
        with open(cache, newline="") as fh:
            reader = csv.DictReader(fh)
            done = {r["sys_name"] for r in reader}
            header = reader.fieldnames
    cache.parent.mkdir(parents=True, exist_ok=True)
    todo = [i for i, n in enumerate(data.names) if n not in done]
    if limit is not None:
        todo = todo[:limit]
    print(f"{len(done)} hops cached in {cache}, {len(todo)} to compute", flush=True)
    if todo and header != FIELDS:
        raise SystemExit(f"{cache}: its columns are an older layout of this script's; "
                         "compute the missing hops into a fresh --cache")
    new = not cache.is_file()
    with open(cache, "a", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        if new:
            writer.writeheader()
        t0, spent = time.time(), []
        for c, i in enumerate(todo, 1):
            hop = data.hops[i]
            t = time.time()
            try:
                f = hop_features(hop)
            except Exception as exc:  # a hop bvlain has no parameters for: a row of blanks
                print(f"  {data.names[i]}: {type(exc).__name__}: {exc}", flush=True)
                f = {"oxi_source": f"error: {type(exc).__name__}"}
            dt = time.time() - t
            spent.append(dt)
            row = {"sys_name": data.names[i], "target": data.targets[i], "ion": hop.ion,
                   "length": round(hop.length, 4), "seconds": round(dt, 2), "grid": GRID, "tube": TUBE}
            row.update({k: round(float(v), 4) if isinstance(v, (float, np.floating)) else v
                        for k, v in f.items()})
            writer.writerow(row)
            fh.flush()
            if c % 10 == 0 or c == len(todo):
                print(f"  {c}/{len(todo)}  {np.mean(spent):.2f} s/hop (median {np.median(spent):.2f})  "
                      f"{time.time() - t0:.0f} s", flush=True)


# ---------------------------------------------------------------- the figures


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def read_features(cache: Path, names: list[str]) -> dict[str, np.ndarray]:
    with open(cache, newline="") as fh:
        rows = {r["sys_name"]: r for r in csv.DictReader(fh)}
    missing = [n for n in names if n not in rows]
    if missing:
        raise SystemExit(f"{len(missing)} hops have no features yet (rerun without --features-only)")

    def col(k):
        return np.asarray([float(rows[n][k]) if rows[n].get(k) not in (None, "") else np.nan for n in names])

    out = {k: col(k) for k in FIELDS[len(META):]}
    out["seconds"] = col("seconds")
    out["oxi_source"] = np.asarray([rows[n]["oxi_source"] for n in names])
    return out


def bv_matrix(f: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """BV descriptors of each hop: barriers, endpoint asymmetry, site energy, per landscape."""
    cols, names = [], []
    for land in LANDSCAPES:
        s, e = f[f"{land}_e_start"], f[f"{land}_e_end"]
        for name, v in (
            ("straight_barrier", f[f"{land}_e_straight"] - s),
            ("path_barrier", f[f"{land}_e_path"] - s),
            ("straight_barrier_hi", f[f"{land}_e_straight"] - np.maximum(s, e)),
            ("path_barrier_hi", f[f"{land}_e_path"] - np.maximum(s, e)),
            ("end_minus_start", e - s),
            ("e_start", s),
        ):
            cols.append(v)
            names.append(f"{land}_{name}")
    X = np.stack(cols, 1)
    X = np.where(np.isfinite(X), X, np.nanmedian(X, 0))  # hops without BV data: the median
    return np.clip(X, -50, 50), names


def main() -> None:
    global TUBE, GRID
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/em619/band5_train.json"))
    parser.add_argument("--cache", default="runs/bv-path/features.csv")
    parser.add_argument("--limit", type=int, default=None, help="compute at most N new hops")
    parser.add_argument("--features-only", action="store_true")
    parser.add_argument("--out", default="docs/study/bv-path")
    parser.add_argument("--network-grouped", default="docs/study/cv-grouped-v1")
    parser.add_argument("--network-random", default="ase_em/weights/alignn-em-v1")
    parser.add_argument("--tree-seed", type=int, default=0, help="random_state of every tree model")
    parser.add_argument("--tube", type=float, default=TUBE, help="half-width (A) of the path-search box")
    parser.add_argument("--grid", type=float, default=GRID, help="spacing (A) of the path-search grid")
    args = parser.parse_args()
    TUBE, GRID = args.tube, args.grid  # one setting a run: use a separate --cache for others

    from ase_em.training.data import load_em619

    data = load_em619(args.data, skip_invalid=True)
    compute_features(data, Path(args.cache), args.limit)
    if args.features_only:
        return
    report(data, args)


def report(data, args) -> None:
    from scipy.stats import spearmanr
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ase_em.training.ensemble import compound_groups, fold_indices, read_cv_predictions

    pw = _module("pathways")
    db = _module("descriptor_baseline")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    y = np.asarray(data.targets, float)
    names = list(data.names)
    groups = pw.structures(names)
    f = read_features(Path(args.cache), names)
    Xbv, bv_names = bv_matrix(f)
    # the BV features minus their mean over the hop's structure (features only, no labels):
    # what tells one pathway of a crystal from its others
    Xc = Xbv.copy()
    for g in np.unique(groups):
        sel = groups == g
        Xc[sel] -= Xbv[sel].mean(0)
    lines: list[str] = []

    def say(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

    ok = np.isfinite(f["host_e_path"])
    say(f"TRAIN n = {len(y)}; BV features for {ok.sum()} hops; oxidation states: "
        + ", ".join(f"{k} {v}" for k, v in Counter(f["oxi_source"]).most_common()))
    sec = f["seconds"]
    say(f"time per hop (one shared thread): mean {np.nanmean(sec):.2f} s, median {np.nanmedian(sec):.2f} s, "
        f"max {np.nanmax(sec):.1f} s, total {np.nansum(sec) / 60:.1f} min\n")

    # (i) the rules, on the hops with BV data (the network's grouped OOF beside them)
    length = np.asarray([h.length for h in data.hops])
    p_grouped = read_cv_predictions(args.network_grouped, y)[1]
    k_all = pw.ranking(y[ok], length[ok], groups[ok], tie=1e-3)
    say(f"rules on the {ok.sum()} hops with BV data: {k_all['structures']} structures with 2+ pathways, "
        f"{k_all['pairs']} pairs, {k_all['pairs_gap']} with a DFT gap > 0.3 eV\n")
    say("| rule (lower score = lower barrier) | lowest found | pairs | pairs > 0.3 eV | Spearman with DFT |")
    say("| --- | --- | --- | --- | --- |")
    rules = {"network (cv-grouped-v1 OOF, for reference)": p_grouped, "shorter hop": length}
    for j, n in enumerate(bv_names):
        if "barrier" in n:
            rules[n] = Xbv[:, j]
    for n, s in rules.items():
        k = pw.ranking(y[ok], s[ok], groups[ok], tie=1e-3 if n == "shorter hop" else 1e-6)
        rho = spearmanr(s[ok], y[ok]).statistic
        say(f"| {n} | {k['found']:.3f} | {k['pair_acc']:.3f} | {k['pair_acc_gap']:.3f} | {rho:+.3f} |")
    say()

    # descriptors of the floor (as benchmarks/descriptor_baseline.py, with the structural class)
    t = time.time()
    Xd = np.stack([db.descriptors(h) for h in data.hops])
    records = {r["sys_name"]: r for r in json.loads(Path(args.data).read_text())}
    classes = sorted({records[n].get("class", "") for n in names})
    Xd = np.hstack([Xd, np.array([[float(records[n].get("class") == c) for c in classes] for n in names])])
    print(f"descriptors: {Xd.shape[1]} in {time.time() - t:.0f} s", flush=True)

    schemes = {
        "grouped": fold_indices(len(y), 5, 0, compound_groups(names)),
        "random": fold_indices(len(y), 5, 0, None),
    }
    nets = {"grouped": read_cv_predictions(args.network_grouped, y)[1],
            "random": read_cv_predictions(args.network_random, y)[1]}
    oof_all: dict[str, np.ndarray] = {}

    def trees(leaf=1, feat=0.5):
        return ExtraTreesRegressor(n_estimators=500, min_samples_leaf=leaf, max_features=feat,
                                   random_state=args.tree_seed, n_jobs=1)

    for scheme, folds in schemes.items():
        p_net = nets[scheme]
        oof = {"network": p_net.copy(), "floor": np.zeros_like(y), "floor+BV": np.zeros_like(y),
               "stack ridge": np.zeros_like(y), "stack trees": np.zeros_like(y),
               "stack ridge, centred": np.zeros_like(y)}
        importance = np.zeros(Xd.shape[1] + Xbv.shape[1])
        for k, test in enumerate(folds):
            train = np.setdiff1d(np.arange(len(y)), test)
            for name, X in (("floor", Xd), ("floor+BV", np.hstack([Xd, Xbv]))):
                model = trees().fit(X[train], y[train])
                oof[name][test] = model.predict(X[test])
            importance += model.feature_importances_ / len(folds)
            # second stage: the network's OOF value of the training hops only, plus BV features
            Z = np.hstack([p_net[:, None], Xbv])
            ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 21)))
            ridge.fit(Z[train], y[train] - p_net[train])
            oof["stack ridge"][test] = p_net[test] + ridge.predict(Z[test])
            st = trees(leaf=10, feat=0.5).fit(Z[train], y[train] - p_net[train])
            oof["stack trees"][test] = p_net[test] + st.predict(Z[test])
            Zc = np.hstack([Z, Xc])
            ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 21)))
            ridge.fit(Zc[train], y[train] - p_net[train])
            oof["stack ridge, centred"][test] = p_net[test] + ridge.predict(Zc[test])
            print(f"  {scheme} fold {k + 1}/5 done", flush=True)
        oof["mean of network and floor"] = (p_net + oof["floor"]) / 2
        oof["mean of network and floor+BV"] = (p_net + oof["floor+BV"]) / 2
        for name, p in oof.items():
            oof_all[f"{scheme}: {name}"] = p
        rows = [("network", None), ("floor", None), ("floor+BV", "floor"), ("floor+BV", "network")]
        rows += [(n, "network") for n in oof if n.startswith("stack") or n.startswith("mean")]
        rows += [("mean of network and floor+BV", "mean of network and floor")]

        bv_imp = importance[Xd.shape[1]:]
        top = ", ".join(f"{bv_names[j]} {bv_imp[j]:.3f}" for j in np.argsort(-bv_imp)[:4])
        rank = int((importance > bv_imp.max()).sum()) + 1
        say(f"{scheme}: the BV columns hold {bv_imp.sum():.2f} of the floor+BV trees' impurity importance "
            f"(mean over folds; {len(bv_names)} of {len(importance)} columns); the top BV column ranks "
            f"{rank} of all; top: {top}\n")
        say(f"**{scheme} 5-fold CV, seed 0** (paired differences: MAE fold by fold, mean +- SE over "
            "5 folds; pairs +- bootstrap SE over structures)\n")
        say("| model | MAE | R2 | lowest found | pairs | pairs > 0.3 eV | vs | paired dMAE (folds) | "
            "paired d(pairs) | paired d(pairs > 0.3 eV) |")
        say("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, base in rows:
            p = oof[name]
            k = pw.ranking(y, p, groups)
            cells = ["", "", "", ""]
            if base:
                d = np.abs(p - y) - np.abs(oof[base] - y)
                fm = [d[i].mean() for i in folds]
                dp, se = pw.paired_pair_difference(y, p, oof[base], groups)
                dg, seg = paired_gap_difference(pw, y, p, oof[base], groups)
                cells = [base, f"{np.mean(fm):+.3f} +- {np.std(fm, ddof=1) / np.sqrt(5):.3f}",
                         f"{dp:+.3f} +- {se:.3f}", f"{dg:+.3f} +- {seg:.3f}"]
            r2 = 1 - ((p - y) ** 2).sum() / ((y - y.mean()) ** 2).sum()
            say(f"| {name} | {np.abs(p - y).mean():.3f} | {r2:.3f} | {k['found']:.3f} | "
                f"{k['pair_acc']:.3f} | {k['pair_acc_gap']:.3f} | " + " | ".join(cells) + " |")
        say()
        heads = [f"{lo}-{hi} eV" if hi < np.inf else f"> {lo} eV" for lo, hi in pw.BINS]
        say(f"{scheme}: MAE, bias (prediction - DFT) by DFT barrier\n")
        say("| model | " + " | ".join(f"{h} (n {((y >= lo) & (y < hi)).sum()})"
                                      for h, (lo, hi) in zip(heads, pw.BINS)) + " |")
        say("| --- |" + " --- |" * len(pw.BINS))
        for name, p in oof.items():
            cells = []
            for lo, hi in pw.BINS:
                sel = (y >= lo) & (y < hi)
                e = p[sel] - y[sel]
                cells.append(f"{np.abs(e).mean():.2f}, {e.mean():+.2f}")
            say(f"| {name} | " + " | ".join(cells) + " |")
        say()

    (out / "results.md").write_text("\n".join(lines) + "\n")
    with open(out / "oof.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sys_name", "target"] + list(oof_all))
        for i, n in enumerate(names):
            w.writerow([n, f"{y[i]:.5f}"] + [f"{oof_all[k][i]:.5f}" for k in oof_all])
    cache = Path(args.cache)
    if cache.resolve() != (out / "features.csv").resolve():
        (out / "features.csv").write_text(cache.read_text())
    print(f"wrote {out / 'results.md'}, {out / 'oof.csv'}, {out / 'features.csv'}")


def paired_gap_difference(pw, y, p, base, groups, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """As pathways.paired_pair_difference, on the pairs with a DFT gap above 0.3 eV."""
    g, ok, gap = pw.pair_outcomes(y, p, groups)
    _, ok_b, _ = pw.pair_outcomes(y, base, groups)
    sel = gap > pw.GAP
    g, d = g[sel], (ok - ok_b)[sel]
    names = np.unique(g)
    rows = [np.nonzero(g == s)[0] for s in names]
    rng = np.random.default_rng(seed)
    boot = [d[np.concatenate([rows[i] for i in rng.integers(0, len(rows), len(rows))])].mean()
            for _ in range(n_boot)]
    return float(d.mean()), float(np.std(boot, ddof=1))


if __name__ == "__main__":
    main()
