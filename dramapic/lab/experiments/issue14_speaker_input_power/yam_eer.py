"""Pair EER per held-out source: resemblyzer, YAMNet, both (RESULTS.md, part 1).

    python yam_eer.py yamtable.npz
"""
import sys
import numpy as np
from sklearn.metrics import roc_curve
from sklearn.decomposition import PCA
from dramapic.lab.train_speakers import _project, fit_lda, simulate_pairs

SOURCES = ("librispeech-train-clean-100", "emodb", "cv", "ravdess", "nemo")
def eer(d, s):
    fpr, tpr, _ = roc_curve(s, -d); i = int(np.argmin(np.abs(fpr - (1 - tpr)))); return (fpr[i] + 1 - tpr[i]) / 2
t = np.load(sys.argv[1])
emb = t["emb"].astype(np.float64); yam = t["yam"].astype(np.float64)
spk, src, split = t["speaker"], t["source"], t["split"]
ylog = np.log1p(yam)  # non-negative pool: compress
means = {}
for held in SOURCES:
    fit = np.flatnonzero((split == "train") & (src != held))
    test = (split == "dev") & (src == held)
    pca = PCA(128, random_state=0).fit(ylog[fit])
    yp = lambda x: pca.transform(x) / np.sqrt(pca.explained_variance_[0])
    spaces = {}
    z, c = fit_lda(emb[fit], spk[fit], 100); spaces["res_lda"] = _project(emb[test], z, c)
    yf, yt = yp(ylog[fit]), yp(ylog[test])
    mu = yf.mean(0)
    spaces["yam_pca_raw"] = _project(yt, mu, np.eye(128))
    z, c = fit_lda(yf - mu, spk[fit], 100); spaces["yam_lda"] = _project(yt - mu, z, c)
    for w in (0.1, 0.25, 0.5):
        xf = np.hstack([emb[fit], w * (yf - mu)]); xt = np.hstack([emb[test], w * (yt - mu)])
        z, c = fit_lda(xf, spk[fit], 100); spaces[f"cat{w}_lda"] = _project(xt, z, c)
    line = []
    for name, zz in spaces.items():
        d, same = simulate_pairs(zz, spk[test], t["clip"][test], t["t0"][test], src[test], t["gender"][test],
                                 np.random.default_rng(0), n_pairs=8000)
        means.setdefault(name, []).append(eer(d, same)); line.append(f"{name} {eer(d, same):.4f}")
    print(held, int(test.sum()), " ".join(line), flush=True)
print({k: round(float(np.mean(v)), 4) for k, v in means.items()})
