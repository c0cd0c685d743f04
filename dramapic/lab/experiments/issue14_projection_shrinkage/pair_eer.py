"""Speaker spaces judged across corpora before any clustering: for each voice source, a projection fitted on the
train windows of the other sources (clean windows counted twice, as the shipped fit), then simulated cluster pairs
(2-16 windows a side; ``train_speakers.simulate_pairs``, the calibration's own draw) of the held-out source's dev
speakers, and the equal error rate of their centroid cosine distance. One draw of pairs per source, the same for
every space.

    python pair_eer.py WORK/window-table-<digest>.npz      # a two-copy table of `dramapic eval --cross-corpus`

Spaces: raw resemblyzer, the plain LDA (svd solver, centred: the projection until 2026-12-03), regularised LDA
(eigen solver, shrinkage alpha) uncentred and centred, at 50 / 100 / 150 dimensions for the centred one.
"""
import sys

import numpy as np
from sklearn.metrics import roc_curve

from dramapic.lab.train_speakers import _project, fit_lda, simulate_pairs

SOURCES = ("librispeech-train-clean-100", "emodb", "cv", "ravdess", "nemo")
ALPHAS = tuple(float(a) for a in (sys.argv[2].split(",") if len(sys.argv) > 2 else ("0.3", "0.5", "0.7", "0.9",
                                                                                      "0.97", "0.99", "1.0")))


def eer(distance, same):
    fpr, tpr, _ = roc_curve(same, -distance)
    i = int(np.argmin(np.abs(fpr - (1 - tpr))))
    return (fpr[i] + 1 - tpr[i]) / 2


def unit(z):
    return z / np.linalg.norm(z, axis=1, keepdims=True)


t = np.load(sys.argv[1], allow_pickle=True)
emb = t["emb"].astype(np.float64)
spk, src, split, cond = t["speaker"], t["source"], t["split"], t["condition"]
voiced = spk != ""
means = {}
for held in SOURCES:
    fit = np.flatnonzero(voiced & (split == "train") & (src != held))
    fit = np.concatenate([fit, fit[cond[fit] == "clean"]])
    test = voiced & (split == "dev") & (src == held)
    spaces = {"raw": unit(emb[test])}
    mean, components = fit_lda(emb[fit], spk[fit], 100, shrinkage=None)
    spaces["lda"] = _project(emb[test], mean, components)
    centre = emb[fit].mean(axis=0)
    for alpha in ALPHAS:
        zero, components = fit_lda(emb[fit], spk[fit], 150, shrinkage=alpha)  # the product's fit, uncentred
        spaces[f"shrunk{alpha}"] = _project(emb[test], zero, components[:, :100])
        for dim in (50, 100, 150):
            spaces[f"shrunk{alpha}-centred-d{dim}"] = _project(emb[test], centre, components[:, :dim])
    line = []
    for name, z in spaces.items():
        d, same = simulate_pairs(z, spk[test], t["clip"][test], t["t0"][test], src[test], t["gender"][test],
                                 np.random.default_rng(0), n_pairs=8000)
        means.setdefault(name, []).append(eer(d, same))
        line.append(f"{name} {eer(d, same):.4f}")
    print(held, int(test.sum()), "windows:", " ".join(line), flush=True)
print("mean over the sources:", {k: round(float(np.mean(v)), 4) for k, v in means.items()})
