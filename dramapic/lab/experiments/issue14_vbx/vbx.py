"""VBx (Landini et al. 2022, BUT's VB-HMM over x-vectors) as the clustering step of dramapic's diarization,
re-scored on the cross-corpus timelines (exp15d re-scorer). Only `cluster_windows` is replaced (wrapper; main is
not edited): init from main's own clustering (variants below), then VB-HMM over the windows in time order with a
two-covariance PLDA fitted per cross-corpus projection (plda.py), then main's re-segmentation / refinement /
genders as usual. Usage: python vbx.py OUT.jsonl '[{"Fa":0.3,"Fb":17,"loopP":0.9,"init":"product"}, ...]'"""
import dataclasses
import json
import sys
import time

from pathlib import Path

import numpy as np
from scipy.special import logsumexp, softmax

HERE = Path(__file__).resolve().parent

sys.path.insert(0, str(HERE.parent / "issue14_clustering"))
import rescore as R  # noqa: E402
import sweep as S  # noqa: E402
import dramapic.analysis.clustering as CL  # noqa: E402
import dramapic.analysis.diarization as DI  # noqa: E402

CFG = {"space": "full", "Fa": 0.3, "Fb": 17.0, "loopP": 0.9, "init": "product", "smooth": 5.0, "iters": 40, "post_fold": False,
       "thr_mult_init": 1.0, "min_pi": 0.0, "guard": False, "nodeath": False}
CUR = {"key": "all"}
_plda = {}


def plda(key):
    if key not in _plda:
        with np.load(HERE / "plda" / f"{key}.npz") as d:
            _plda[key] = (d["mu"], d["T"], d["phi"])
    return _plda[key]


def forward_backward(lls, tr, ip):
    ltr = np.log(tr + 1e-8)
    lfw = np.full_like(lls, -np.inf)
    lbw = np.full_like(lls, -np.inf)
    lfw[0] = lls[0] + np.log(ip + 1e-8)
    lbw[-1] = 0.0
    for i in range(1, len(lls)):
        lfw[i] = lls[i] + logsumexp(lfw[i - 1] + ltr.T, axis=1)
    for i in reversed(range(len(lls) - 1)):
        lbw[i] = logsumexp(ltr + lls[i + 1] + lbw[i + 1], axis=1)
    tll = logsumexp(lfw[-1])
    return np.exp(lfw + lbw - tll), tll, lfw, lbw


def vbx(X, Phi, gamma, *, loopP, Fa, Fb, iters, eps=1e-4):
    D = X.shape[1]
    S_ = gamma.shape[1]
    pi = np.ones(S_) / S_
    G = -0.5 * (np.sum(X ** 2, axis=1, keepdims=True) + D * np.log(2 * np.pi))
    V = np.sqrt(Phi)
    rho = X * V
    prev = -np.inf
    for _ in range(iters):
        invL = 1.0 / (1 + Fa / Fb * gamma.sum(axis=0, keepdims=True).T * Phi)
        a = invL * Fa / Fb * gamma.T.dot(rho)
        log_p = Fa * (rho.dot(a.T) - 0.5 * (invL + a ** 2).dot(Phi) + G)
        tr = np.eye(S_) * loopP + (1 - loopP) * pi
        gamma, log_pX, lfw, lbw = forward_backward(log_p, tr, pi)
        elbo = log_pX + Fb * 0.5 * np.sum(np.log(invL) - invL - a ** 2 + 1)
        pi = gamma[0] + (1 - loopP) * pi * np.sum(np.exp(logsumexp(lfw[:-1], axis=1, keepdims=True) + log_p[1:]
                                                        + lbw[1:] - log_pX), axis=0)
        pi = pi / pi.sum()
        if elbo - prev < eps:
            break
        prev = elbo
    return gamma, pi


_orig = DI.cluster_windows


def cluster_vbx(*, embeddings, weights, p_female, options, threshold, seed=0, init_embeddings=None):
    # init_embeddings (vbx_ho.py): the init and the folding use the product's space, VBx the one given
    vb_embeddings = embeddings
    if init_embeddings is not None:
        embeddings = init_embeddings
    if CFG["init"] == "product":
        init = _orig(embeddings=embeddings, weights=weights, p_female=p_female, options=options,
                     threshold=threshold, seed=seed)
    else:  # "nofold": constrained merge, nothing folded by size, threshold x thr_mult_init
        o = dataclasses.replace(options, min_speaker_s=0.0, min_speaker_share=0.0, max_small_speaker_s=0.0)
        init = _orig(embeddings=embeddings, weights=weights, p_female=p_female, options=o,
                     threshold=threshold * CFG["thr_mult_init"], seed=seed)
    if options.num_speakers is not None or init.max() == 0 or len(init) < 2:
        return init
    mu, T, phi = plda(CUR["key"])
    x = (vb_embeddings.astype(np.float64) * np.sqrt(vb_embeddings.shape[1]) - mu) @ T
    k = int(init.max()) + 1
    q = np.zeros((len(init), k))
    q[np.arange(len(init)), init] = 1.0
    q = softmax(q * CFG["smooth"], axis=1)
    gamma, pi = vbx(x, phi, q, loopP=CFG["loopP"], Fa=CFG["Fa"], Fb=CFG["Fb"], iters=CFG["iters"])
    alive = pi > CFG["min_pi"]
    ids = np.argmax(gamma[:, alive], axis=1) if alive.any() else np.argmax(gamma, axis=1)
    ids = np.unique(ids, return_inverse=True)[1]
    if CFG["nodeath"]:
        # VBx only re-assigns windows: an init cluster none of whose windows kept it comes back whole
        gm = gamma[:, alive] if alive.any() else gamma
        lab = np.argmax(gm, axis=1)
        alive_idx = np.flatnonzero(alive) if alive.any() else np.arange(k)
        lab = alive_idx[lab]
        for c in range(k):
            if not (lab == c).any():
                lab[init == c] = c
        ids = np.unique(lab, return_inverse=True)[1]
    if CFG["guard"]:
        # an init cluster that VBx folded into a cluster of confidently the other gender is restored
        w = np.asarray(weights, np.float64)
        pf = np.asarray(p_female, np.float64)
        nxt = ids.max() + 1
        final = ids.copy()
        for c in range(k):
            rows = init == c
            m = np.bincount(ids[rows], weights=w[rows]).argmax()
            host = (ids == m) & ~rows
            if not host.any():
                continue
            pair_pf = np.array([np.average(pf[rows], weights=w[rows]), np.average(pf[host], weights=w[host])])
            talk = np.array([w[rows].sum(), w[host].sum()])
            if CL.forbidden(pair_pf, talk, options)[0, 1]:
                final[rows] = nxt
                nxt += 1
        ids = np.unique(final, return_inverse=True)[1]
    if CFG["post_fold"]:
        ids = CL._fold_small(np.asarray(embeddings, np.float64), np.asarray(weights, np.float64),
                             np.asarray(p_female, np.float64), ids, options)
    return np.unique(ids, return_inverse=True)[1].astype(np.int64)


DI.cluster_windows = cluster_vbx
_orig_label = R.label


def label(item, options, proj, *, refine=True):
    CUR["key"] = item.proj_key
    return _orig_label(item, options, proj, refine=refine)


R.label = label

if __name__ == "__main__":
    out = open(sys.argv[1], "a")
    sets = sys.argv[3].split(",") if len(sys.argv) > 3 else ["xc", "dev", "sample"]
    for spec in json.loads(sys.argv[2]):
        CFG.update({k: spec.pop(k) for k in list(spec) if k in CFG})
        t0 = time.perf_counter()
        rec = S.run(spec, refine=True, sets=sets)
        rec["summary"] = S.summary(rec)
        rec["cfg"] = dict(CFG)
        out.write(json.dumps(rec) + "\n")
        out.flush()
        print(f"[{time.perf_counter() - t0:.0f}s +{R.stats['embedded']}emb] {CFG} "
              + S.fmt(spec, rec["summary"], rec["sample"]), flush=True)
