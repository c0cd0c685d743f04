"""Two-covariance PLDA in each cross-corpus projection's space (normalised projected windows x sqrt(d)), fitted on
the train windows (argv[1]: the voice window table) of the sources that projection was fitted on. Writes /work/exp18/plda/<key>.npz: mu, T, phi
(y = (x - mu) @ T has within-speaker covariance I and between-speaker covariance diag(phi))."""
import sys
from pathlib import Path
import numpy as np
import scipy.linalg
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "issue14_clustering"))
import rescore as R

OUT = Path(__file__).resolve().parent / "plda"
OUT.mkdir(exist_ok=True)
tab = np.load(sys.argv[1], allow_pickle=True)  # the voice window table `dramapic train --cache DIR` writes
emb, spk, src, split = tab["emb"], tab["speaker"], tab["source"], tab["split"]
for p in sorted(R.PROJ.glob("*.npz")):
    key = p.stem
    excl = set() if key == "all" else set(key[len("without_"):].split("+"))
    excl = {R.SOURCE_OF.get(e, e) for e in excl}
    keep = (split == "train") & ~np.isin(src, list(excl))
    proj = R.projection(key)
    x = proj.transform(emb[keep]).astype(np.float64) * np.sqrt(proj.dim)
    s = spk[keep]
    u, inv = np.unique(s, return_inverse=True)
    cnt = np.bincount(inv)
    means = np.zeros((len(u), x.shape[1])); np.add.at(means, inv, x); means /= cnt[:, None]
    mu = x.mean(0)
    within = x - means[inv]
    W = within.T @ within / (len(x) - len(u))
    B = np.cov((means - mu).T, aweights=None)
    # simultaneous diagonalisation: V^T W V = I, V^T B V = diag(phi)
    evals, V = scipy.linalg.eigh(B, W)
    order = np.argsort(evals)[::-1]
    phi, V = evals[order], V[:, order]
    np.savez(OUT / f"{key}.npz", mu=mu, T=V, phi=phi)
    print(key, sorted(excl), keep.sum(), len(u), "phi top", np.round(phi[:5], 2), "median", round(float(np.median(phi)), 3))
