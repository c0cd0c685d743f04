"""Stage 1's stacker as a constrained opinion pool (issue 13, measured): one shipped-recipe fit, its out-of-fold
member probabilities kept, and several stackers fitted on them; each written as a models folder beside the fit.

    python pool.py --data ../shared/data --out DIR [--without SOURCE]... [--score-songs SOURCE]... [--dev-mixes DIR]

Stackers (all a LinearSoftmax over the shipped stack features, the log of each member's four probabilities):
  lr     the shipped multinomial logistic regression (C = 1, standardised inputs)
  diag   class-diagonal: logit_c = sum_m w[m, c] log p_m(c) + b_c, w free
  nndiag class-diagonal with w >= 0 (Breiman's non-negative stacking: a member may only add evidence for the
         class it names)
  pool   one weight per member, w >= 0, shared by the classes (a log opinion pool)
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from dramapic.analysis.stage1 import LinearSoftmax, stack_features
from dramapic.lab.train_stage1 import register_stacker, shipped_recipe, train_stage1
from dramapic.models import load_manifest

N_MEMBERS, K = 4, 4


def _fit_constrained(x: np.ndarray, y: np.ndarray, *, shape: str, nonneg: bool, l2: float = 1e-4) -> LinearSoftmax:
    """Class-diagonal (shape "diag": w of shape (members, classes)) or shared ("pool": w of shape (members,))."""
    n = x.shape[0]
    xs = x.reshape(n, N_MEMBERS, K)  # [frame, member, class] log-probabilities
    onehot = np.eye(K)[y]
    nw = N_MEMBERS * K if shape == "diag" else N_MEMBERS

    def unpack(theta):
        w = theta[:nw].reshape(N_MEMBERS, K) if shape == "diag" else np.repeat(theta[:nw, None], K, axis=1)
        return w, theta[nw:]

    def loss(theta):
        w, b = unpack(theta)
        z = np.einsum("nmk,mk->nk", xs, w) + b
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        p = np.exp(logp)
        nll = -(onehot * logp).sum() / n
        g = (p - onehot) / n  # d nll / d z
        gw = np.einsum("nmk,nk->mk", xs, g)
        gw = gw.ravel() if shape == "diag" else gw.sum(axis=1)
        gb = g.sum(axis=0)
        return nll + l2 * (theta[:nw] ** 2).sum(), np.concatenate([gw + 2 * l2 * theta[:nw], gb])

    theta0 = np.concatenate([np.full(nw, 1.0 / N_MEMBERS), np.zeros(K)])
    bounds = [(0.0, None) if nonneg else (None, None)] * nw + [(None, None)] * K
    res = minimize(loss, theta0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000})
    w, b = unpack(res.x)
    coef = np.zeros((K, N_MEMBERS * K))
    for m in range(N_MEMBERS):
        for c in range(K):
            coef[c, m * K + c] = w[m, c]
    print(f"  {shape}{' nonneg' if nonneg else ''}: nll {res.fun:.4f}, converged {res.success}\n  w =\n{np.round(w, 3)}\n"
          f"  b = {np.round(b, 3)}", flush=True)
    return LinearSoftmax(mean=np.zeros(N_MEMBERS * K), scale=np.ones(N_MEMBERS * K), coef=coef, intercept=b)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--without", action="append", default=[])
    ap.add_argument("--voice", action="store_true", help="--without names voice sources (default: music)")
    ap.add_argument("--score-songs", action="append", default=[])
    ap.add_argument("--dev-mixes", type=Path)
    ap.add_argument("--smoke", type=int)
    args = ap.parse_args()
    fit_dir = args.out / "lr"
    oof_file = args.out / "oof.npz"
    t0 = time.time()
    if not oof_file.is_file():
        keep: dict = {}
        excl = {"excluded_voice_sources" if args.voice else "excluded_music_sources": args.without}
        train_stage1(args.data / "manifest.csv", out_dir=fit_dir, seed=0, keep=keep, **excl, **shipped_recipe(max_clips=args.smoke))
        items = keep["items"]
        np.savez(oof_file, x=np.concatenate([stack_features(keep["oof"][it.name]) for it in items]),
                 y=np.concatenate([it.labels for it in items]))
        print(f"fit {time.time() - t0:.0f} s", flush=True)
    data = np.load(oof_file)
    x, y = data["x"][::3], data["y"][::3]
    members = load_manifest(fit_dir).get("stage1-stacker-lr").info["members"]
    for name, shape, nonneg in (("diag", "diag", False), ("nndiag", "diag", True), ("pool", "pool", True)):
        folder = args.out / name
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(fit_dir, folder)
        register_stacker(folder, "stage1-stacker-lr", _fit_constrained(x, y, shape=shape, nonneg=nonneg),
                         members=members)
    results: dict = {}
    from dramapic.config import load_pipeline

    pipeline = load_pipeline()
    for name in ("lr", "diag", "nndiag", "pool"):
        manifest = load_manifest(args.out / name)
        if args.score_songs:
            from dramapic.lab.songcheck import run_song_check, songcheck_clips

            clips = [c for c in songcheck_clips(data_root=args.data) if c.source in set(args.score_songs)]
            check = run_song_check(clips=clips, pipeline=pipeline, member_check=True, manifest=manifest)
            results.setdefault(name, {})["songs"] = check.to_dict()
            print(name, check.format_table(), sep="\n", flush=True)
        if args.dev_mixes:
            from dramapic.lab.evaluate import aggregate
            from dramapic.lab.variants import evaluate_variants

            rep = evaluate_variants(args.dev_mixes, pipeline, manifest=manifest, gender=False).stage1
            results.setdefault(name, {})["dev"] = {k: aggregate(v.files).accuracy for k, v in rep.items()}
            print(name, "dev mixes", results[name]["dev"], flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"done {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
