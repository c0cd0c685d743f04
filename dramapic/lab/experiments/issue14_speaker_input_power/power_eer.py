"""Pair EER per held-out source: the resemblyzer embedding raised to a power before the LDA, and the shrinkage
(RESULTS.md, part 2; p 0 stands for log(e + 0.001)).

    python power_eer.py yamtable.npz
"""
import sys, warnings
warnings.filterwarnings("ignore")
import numpy as np
from sklearn.metrics import roc_curve
from dramapic.lab.train_speakers import _project, fit_lda, simulate_pairs
SOURCES = ("librispeech-train-clean-100", "emodb", "cv", "ravdess", "nemo")
def eer(d, s):
    fpr, tpr, _ = roc_curve(s, -d); i = int(np.argmin(np.abs(fpr - (1 - tpr)))); return (fpr[i] + 1 - tpr[i]) / 2
t = np.load(sys.argv[1]); emb = t["emb"].astype(np.float64); spk, src, split = t["speaker"], t["source"], t["split"]
def unit(x): return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
means = {}
for held in SOURCES:
    fit = np.flatnonzero((split == "train") & (src != held)); test = (split == "dev") & (src == held)
    line = []
    for p, a in ((1.0, 0.9), (0.5, 0.9), (0.35, 0.9), (0.25, 0.9), (0.0, 0.9), (0.5, 0.8), (0.5, 0.95), (0.5, 0.97)):
        x = unit(emb ** p) if p else unit(np.log(emb + 1e-3))
        z, c = fit_lda(x[fit], spk[fit], 100, shrinkage=a); zz = _project(x[test], z, c)
        d, same = simulate_pairs(zz, spk[test], t["clip"][test], t["t0"][test], src[test], t["gender"][test],
                                 np.random.default_rng(0), n_pairs=8000)
        means.setdefault((p, a), []).append(eer(d, same)); line.append(f"p{p}a{a} {eer(d, same):.4f}")
    print(held, " ".join(line), flush=True)
print({str(k): round(float(np.mean(v)), 4) for k, v in means.items()})
