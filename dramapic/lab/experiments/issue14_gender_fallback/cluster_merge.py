"""A same-speaker score between whole clusters whose confidence grows with their size, and a merge pass on it
(variant ``clustermerge`` of ``harness.py``; lab only).

The calibrated stopping distance of the clustering is fitted on pairs of clips, so two pure clusters of one
speaker (libri_04: 8.5 s + 5.5 s of one reader) are kept apart at a centroid distance that, for groups of 10-20
windows each, is far more likely one voice. Per fold (the projection fitted without the held-out sources), this
fits ``P(same) = sigmoid(w . [d, d log2 m, log2 m] + b)`` on the table's **dev** speakers of the sources that
are *not* held out (speakers the projection never saw; the held-out sources' dev speakers are the timelines'
voices and are left out): d the cosine distance between the mean projected embeddings of two groups of m
consecutive windows, same-speaker pairs two disjoint groups of one speaker, different-speaker pairs groups of two
speakers of one source and one gender (what the cannot-link does not already separate), classes balanced.

After the product's first pass (clustering and re-segmentation), clusters are merged greedily, most probable pair
first, while P(same) >= ``threshold`` and the two are not of confidently different genders (the product's
cannot-link rule); m = the smaller cluster's window count, capped at the largest fitted size. Then the recording
is re-segmented against the merged centroids, as the product's refinement pass does.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

import dramapic.lab.crosscorpus as cc
from dramapic.analysis.embeddings import l2

_spec = importlib.util.spec_from_file_location(
    "reseg_iter_variants", Path(__file__).resolve().parent.parent / "issue14_reseg_iter" / "variants.py")
_sibling = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_sibling)

SIZES = (1, 2, 4, 8, 16, 32)
_calibration: dict[int, tuple[np.ndarray, float]] = {}


def fit_same_speaker(table, excluded, projection, *, seed: int = 0, pairs_per_size: int = 3000):
    """``(w (3,), b)`` of the size-aware same-speaker regression (module docstring)."""
    from sklearn.linear_model import LogisticRegression

    ok = ((table["split"] == "dev") & ~np.isin(table["source"], sorted(excluded))
          & np.isin(table["gender"], ("female", "male")) & (np.abs(table["emb"]).sum(axis=1) > 0))
    rows = np.flatnonzero(ok)
    x = projection.transform(table["emb"][rows].astype(np.float64))
    spk, src, gen = table["speaker"][rows], table["source"][rows], table["gender"][rows]
    order = np.argsort(spk, kind="stable")
    names, starts = np.unique(spk[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    members = {n: order[a:b] for n, a, b in zip(names, starts, ends)}
    rng = np.random.default_rng([seed, 14])
    feats, target = [], []
    for m in SIZES:
        same, diff = [], []
        big = [n for n in names if len(members[n]) >= 2 * m]
        for n in rng.permutation(big)[:pairs_per_size]:
            idx = members[n]
            f = rng.integers(0, len(idx) - 2 * m + 1)
            a, b = idx[f:f + m], idx[f + m:f + 2 * m]
            same.append(1.0 - float(l2(x[a].mean(0, keepdims=True))[0] @ l2(x[b].mean(0, keepdims=True))[0]))
        group = {}
        for n in names:
            if len(members[n]) >= m:
                group.setdefault((src[members[n][0]], gen[members[n][0]]), []).append(n)
        keys = [k for k, v in group.items() if len(v) >= 2]
        for _ in range(min(len(same), pairs_per_size) if keys else 0):
            k = keys[rng.integers(len(keys))]
            n1, n2 = rng.choice(group[k], size=2, replace=False)
            g = []
            for n in (n1, n2):
                idx = members[n]
                f = rng.integers(0, len(idx) - m + 1)
                g.append(l2(x[idx[f:f + m]].mean(0, keepdims=True))[0])
            diff.append(1.0 - float(g[0] @ g[1]))
        for d, y in [(d, 1) for d in same] + [(d, 0) for d in diff]:
            feats.append((d, d * np.log2(m), np.log2(m)))
            target.append(y)
    feats, target = np.asarray(feats), np.asarray(target)
    w = np.where(target == 1, 0.5 / max(1, (target == 1).sum()), 0.5 / max(1, (target == 0).sum()))
    clf = LogisticRegression(C=1e4, max_iter=2000).fit(feats, target, sample_weight=w * len(target))
    return clf.coef_[0].copy(), float(clf.intercept_[0])


def p_same(cal, d, m):
    w, b = cal
    lm = np.log2(np.clip(m, 1, SIZES[-1]))
    return 1.0 / (1.0 + np.exp(-(w[0] * d + w[1] * d * lm + w[2] * lm + b)))


def variant(threshold: float):
    real_fit = cc.fit_voice_models

    def fit_voice_models(table, excluded, **kw):
        models = real_fit(table, excluded, **kw)
        if id(models.projection) not in _calibration:
            _calibration[id(models.projection)] = fit_same_speaker(table, excluded, models.projection,
                                                                   seed=kw.get("seed", 0))
        return models

    cc.fit_voice_models = fit_voice_models

    def second_pass(out, inputs, resegment, options, projection):
        x, _, pf = inputs
        cal = _calibration.get(id(projection))
        if cal is None:
            return out
        _, cent, raw = out
        _, rows_of, won = _sibling._turn_rows(raw, cent.shape[0])
        groups = [np.concatenate(rows_of[c]) for c in np.flatnonzero(won) if rows_of[c]]
        groups = [g for g in groups if len(g)]
        if len(groups) < 2:
            return out
        conf = options.gender_link_confidence
        merged = False
        while len(groups) > max(1, options.min_speakers):
            means = l2(np.stack([x[g].mean(axis=0) for g in groups]))
            d = 1.0 - means @ means.T
            size = np.array([len(g) for g in groups], dtype=float)
            p = p_same(cal, d, np.minimum(size[:, None], size[None, :]))
            side = np.array([1 if pf[g].mean() >= conf else (-1 if pf[g].mean() <= 1 - conf else 0) for g in groups])
            clash = (side[:, None] * side[None, :]) < 0
            p[clash] = 0.0
            np.fill_diagonal(p, 0.0)
            i, j = np.unravel_index(int(np.argmax(p)), p.shape)
            if p[i, j] < threshold:
                break
            groups[i] = np.concatenate([groups[i], groups[j]])
            del groups[j]
            merged = True
        if not merged:
            return out
        return resegment(l2(np.stack([x[g].mean(axis=0) for g in groups])))

    undo_pass = _sibling._after_first_pass(second_pass)

    def undo():
        undo_pass()
        cc.fit_voice_models = real_fit
    return undo
