"""Train the speaker projection (LDA, speakers as classes) on every train speaker of both manifests, and calibrate
the clustering's stopping distance on held-out *training* speakers (no dev data, no dev mixes).

Input: cached resemblyzer window embeddings of every voice clip (1.5 s every 0.75 s, clean + augmented, as the
product makes them; ``/work/exp14/cache``, see its README). Nothing is embedded here, so the fit takes seconds;
in ``dramapic train`` the embedding pass is shared with the gender model.

Output ``speaker-projection.npz`` (``allow_pickle=False`` arrays): ``mean`` (256,), ``components`` (256, d) --
exactly what today's :class:`dramapic.speakers.SpeakerProjection` loads -- plus ``cluster_threshold`` () (the
calibrated average-linkage stopping distance in this space), ``calibration`` (2,) (logistic a, b: P(same speaker)
= sigmoid(a + b * distance) for two clusters of windows) and ``eigenvalues`` (d,) (between / within ratio).

Usage::

    PYTHONPATH=/work/base python train_projection.py --out speaker-projection.npz [--without SOURCE] [--dim 100]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SET_SIZES = (2, 4, 8, 16)
"""Windows per simulated cluster (1.5-12 s of talk at a 0.75 s hop): the clusters AHC compares near its stop."""


def load_windows(cache: Path) -> dict[str, np.ndarray]:
    """Window embeddings and their metadata from G's cache: emb (n, 256) float32; speaker, source, split, clip,
    gender (n,) str; aug (n,) bool."""
    from cache_adapter import load_train_windows

    return load_train_windows(cache)


def fit_balanced_lda(x: np.ndarray, y: np.ndarray, src: np.ndarray, dim: int, reg: float = 1e-3):
    """LDA whose within-speaker scatter is the *mean over sources* of each source's within-speaker covariance
    (not pooled over windows): Common Voice's 1,100 one-clip speakers would otherwise set what "the same
    speaker" varies in (channel, bed), and acted emotion (Emo-DB, RAVDESS, nEMO: 16 % of the windows) would
    hardly count. Between-speaker scatter: covariance of the speaker means. Generalised eigenproblem
    ``Sb v = l Sw v`` (scipy ``eigh``: ``v' Sw v = I``, so the space is within-speaker whitened as sklearn's).
    Returns (mean (256,), components (256, d), eigenvalues (d,))."""
    from scipy.linalg import eigh

    labels, inv = np.unique(y, return_inverse=True)
    cnt = np.bincount(inv).astype(np.float64)
    mu = np.zeros((len(labels), x.shape[1]))
    np.add.at(mu, inv, x)
    mu /= cnt[:, None]
    resid = x - mu[inv]
    sw = np.zeros((x.shape[1], x.shape[1]))
    sources = np.unique(src)
    for s in sources:
        r = resid[src == s]
        sw += r.T @ r / max(len(r), 1)
    sw /= len(sources)
    mean = x.mean(axis=0)
    d = mu - mean
    sb = d.T @ d / len(labels)
    sw += reg * np.trace(sw) / x.shape[1] * np.eye(x.shape[1])
    lam, vec = eigh(sb, sw)
    order = np.argsort(lam)[::-1][:min(dim, len(labels) - 1)]
    return mean, vec[:, order], lam[order]


def fit_lda(x: np.ndarray, y: np.ndarray, dim: int, weighting: str = "none", src: np.ndarray | None = None):
    """(mean (256,), components (256, d), eigen ratios (d,)) of an LDA with speakers as classes
    (``weighting="balanced"``: :func:`fit_balanced_lda`)."""
    if weighting == "balanced":
        return fit_balanced_lda(x, y, src, dim)
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    dim = min(dim, len(np.unique(y)) - 1, x.shape[1])
    lda = LinearDiscriminantAnalysis(solver="svd", n_components=dim).fit(x, y)
    ev = np.asarray(lda.explained_variance_ratio_[:dim], dtype=np.float64)
    mean, comp = lda.xbar_.astype(np.float64), lda.scalings_[:, :dim].astype(np.float64)
    if weighting == "plda":
        comp = comp * plda_weights(x, y, mean, comp)[None, :]
    return mean, comp, ev


def plda_weights(x: np.ndarray, y: np.ndarray, mean: np.ndarray, comp: np.ndarray) -> np.ndarray:
    """Per-dimension weights (d,) that turn the dot product of projected embeddings into a two-covariance
    PLDA-like score: in the LDA space the within-speaker covariance is about I and the between-speaker one about
    diag(b), and the cross term of the PLDA log-likelihood ratio weighs x_i y_i by b_i / (1 + 2 b_i); scaling
    dimension i by the square root of that keeps the product's cosine scoring unchanged (baked into
    ``components``)."""
    z = (x - mean) @ comp
    labels, inv = np.unique(y, return_inverse=True)
    cnt = np.bincount(inv).astype(np.float64)
    mu = np.zeros((len(labels), z.shape[1]))
    np.add.at(mu, inv, z)
    mu /= cnt[:, None]
    within = ((z - mu[inv]) ** 2).mean(axis=0)
    between = np.average((mu - z.mean(axis=0)) ** 2, axis=0, weights=cnt)
    b = between / np.maximum(within, 1e-9)
    return np.sqrt(b / (1.0 + 2.0 * b))


def project(x, mean, comp):
    z = (np.asarray(x, np.float64) - mean) @ comp
    n = np.linalg.norm(z, axis=1, keepdims=True)
    return z / np.maximum(n, 1e-12)


def simulate_pairs(z: np.ndarray, spk: np.ndarray, clip: np.ndarray, t0: np.ndarray, src: np.ndarray,
                   gender: np.ndarray, rng: np.random.Generator, *, n_pairs: int = 6000
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Average-linkage distances (1 - <mean_a, mean_b>) of simulated cluster pairs of held-out speakers.

    A source is drawn first (uniformly: Common Voice's thousand speakers must not drown the acted corpora), then
    a speaker of it. Same-speaker pairs take their two window sets from different clips where the speaker has
    several (else the first and the second half of one clip, clean and augmented copy pooled, windows not
    overlapping). Different-speaker pairs take a second speaker *of the same source* (a timeline's cast shares
    language, studio and style), of the same gender half of the time (the gender cannot-link takes care of many
    cross-gender pairs). Returns ``(distance (m,), same (m,) bool)``.
    """
    speakers = np.unique(spk)
    rows_of = {s: np.flatnonzero(spk == s) for s in speakers}
    src_of = {s: src[r[0]] for s, r in rows_of.items()}
    gen_of = {s: gender[r[0]] for s, r in rows_of.items()}
    by_src: dict = {}
    for s in speakers:
        by_src.setdefault(src_of[s], []).append(s)
    sources = [k for k, v in by_src.items() if len(v) >= 2]
    dist, same = [], []
    for _ in range(n_pairs):
        size = int(rng.choice(SET_SIZES))
        pool = by_src[sources[int(rng.integers(len(sources)))]]
        s = pool[int(rng.integers(len(pool)))]
        rows = rows_of[s]
        if rng.random() < 0.5:
            clips = np.unique(clip[rows])
            if len(clips) >= 2:
                ca, cb = rng.choice(clips, size=2, replace=False)
                ra, rb = rows[clip[rows] == ca], rows[clip[rows] == cb]
            else:
                mid = float(np.median(t0[rows]))
                ra, rb = rows[t0[rows] + 1.5 <= mid + 1e-6], rows[t0[rows] >= mid]
                if len(ra) == 0 or len(rb) == 0:
                    continue
            is_same = True
        else:
            others = [o for o in pool if o != s]
            if rng.random() < 0.5:
                same_g = [o for o in others if gen_of[o] == gen_of[s]]
                others = same_g or others
            ra, rb = rows, rows_of[others[int(rng.integers(len(others)))]]
            is_same = False
        a = rng.choice(ra, size=min(size, len(ra)), replace=False)
        b = rng.choice(rb, size=min(size, len(rb)), replace=False)
        same.append(is_same)
        dist.append(1.0 - float(z[a].mean(axis=0) @ z[b].mean(axis=0)))
    return np.asarray(dist), np.asarray(same)


def calibrate(x, spk, clip, t0, src, gender, dim, rng, folds: int = 2, weighting: str = "none"):
    """Speaker-grouped ``folds``-fold: LDA on the other folds, cluster pairs simulated on the held-out one; a
    logistic regression of same-speaker on the distance. Returns (threshold, a, b, eer, n_pairs)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_curve

    speakers = np.unique(spk)
    fold_of = dict(zip(speakers, rng.permutation(len(speakers)) % folds))
    f = np.asarray([fold_of[s] for s in spk])
    d_all, s_all = [], []
    for k in range(folds):
        tr, te = f != k, f == k
        mean, comp, _ = fit_lda(x[tr], spk[tr], dim, weighting, src[tr])
        d, s = simulate_pairs(project(x[te], mean, comp), spk[te], clip[te], t0[te], src[te], gender[te], rng)
        d_all.append(d)
        s_all.append(s)
    d, s = np.concatenate(d_all), np.concatenate(s_all)
    lr = LogisticRegression(C=1e4, class_weight="balanced").fit(d[:, None], s)
    a, b = float(lr.intercept_[0]), float(lr.coef_[0, 0])
    threshold = -a / b  # P(same) = 0.5 with equal priors
    fpr, tpr, thr = roc_curve(s, -d)
    i = int(np.argmin(np.abs(fpr - (1 - tpr))))
    return threshold, a, b, float((fpr[i] + 1 - tpr[i]) / 2), float(-thr[i]), int(len(d))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=Path("/work/exp14/cache"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--without", action="append", default=[], help="leave this source out (repeatable)")
    ap.add_argument("--only-manifest", action="store_true", help="train speakers of manifest.csv only (as v1)")
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--no-aug", action="store_true")
    ap.add_argument("--weighting", choices=("none", "plda", "balanced"), default="none")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    w = load_windows(args.cache)
    keep = (w["split"] == "train") & ~np.isin(w["source"], args.without)
    if args.only_manifest:
        keep &= w["manifest"] == "manifest.csv"
    if args.no_aug:
        keep &= ~w["aug"]
    x, spk, clip = w["emb"][keep].astype(np.float64), w["speaker"][keep], w["clip"][keep]
    t_load = time.perf_counter() - t0
    mean, comp, ev = fit_lda(x, spk, args.dim, args.weighting, w["source"][keep])
    t_fit = time.perf_counter() - t0 - t_load
    thr, a, b, eer, thr_eer, n_pairs = calibrate(x, spk, clip, w["t0"][keep], w["source"][keep], w["gender"][keep], args.dim, rng,
                                            weighting=args.weighting)
    t_cal = time.perf_counter() - t0 - t_load - t_fit
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, mean=mean, components=comp, cluster_threshold=np.float64(thr),
             calibration=np.asarray([a, b]), eigenvalues=ev)
    info = {"out": str(args.out), "without": args.without, "weighting": args.weighting,
            "only_manifest": args.only_manifest, "no_aug": args.no_aug, "dim": int(comp.shape[1]), "windows": int(len(x)),
            "speakers": int(len(np.unique(spk))), "sources": sorted(set(w["source"][keep].tolist())),
            "cluster_threshold": round(thr, 4), "calibration_ab": [round(a, 3), round(b, 3)],
            "sim_pair_eer": round(eer, 4), "eer_threshold": round(thr_eer, 4), "sim_pairs": n_pairs,
            "seconds": {"load": round(t_load, 1), "fit": round(t_fit, 1), "calibrate": round(t_cal, 1)}}
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info))


if __name__ == "__main__":
    main()
