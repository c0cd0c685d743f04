"""Held-out PLDA for VBx: per cross-corpus key, the train speakers of the sources that projection was fitted on are
split in two halves (seeded); an LDA (d=100, the product's fit_lda) is fitted on half A and the two-covariance PLDA
on half B's windows in that space, so the between-speaker variance is that of speakers the LDA never saw.
argv[1]: the voice window table `dramapic train --cache DIR` writes. Writes plda_ho/<key>.npz: lda_mean, lda_comp, mu, T, phi."""
import sys
from pathlib import Path
import numpy as np
import scipy.linalg
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "issue14_clustering"))
import rescore as R
from dramapic.lab.train_speakers import fit_lda

OUT = Path(__file__).resolve().parent / "plda_ho"
OUT.mkdir(exist_ok=True)
tab = np.load(sys.argv[1], allow_pickle=True)
emb, spk, src, split = tab["emb"], tab["speaker"], tab["source"], tab["split"]
for p in sorted(R.PROJ.glob("*.npz")):
    key = p.stem
    excl = set() if key == "all" else set(key[len("without_"):].split("+"))
    excl = {R.SOURCE_OF.get(e, e) for e in excl}
    keep = np.flatnonzero((split == "train") & ~np.isin(src, list(excl)))
    speakers = np.unique(spk[keep])
    rng = np.random.default_rng(0)
    half = dict(zip(speakers, rng.permutation(len(speakers)) % 2))
    h = np.array([half[s] for s in spk[keep]])
    a, b = keep[h == 0], keep[h == 1]
    mean, comp = fit_lda(emb[a].astype(np.float64), spk[a], 100)
    z = (emb[b].astype(np.float64) - mean) @ comp
    z = z / np.linalg.norm(z, axis=1, keepdims=True) * np.sqrt(comp.shape[1])
    s = spk[b]
    u, inv = np.unique(s, return_inverse=True)
    cnt = np.bincount(inv)
    means = np.zeros((len(u), z.shape[1])); np.add.at(means, inv, z); means /= cnt[:, None]
    mu = z.mean(0)
    W = (z - means[inv]).T @ (z - means[inv]) / (len(z) - len(u))
    B = np.cov((means - mu).T)
    ev, V = scipy.linalg.eigh(B, W)
    o = np.argsort(ev)[::-1]
    np.savez(OUT / f"{key}.npz", lda_mean=mean, lda_comp=comp, mu=mu, T=V[:, o], phi=ev[o])
    print(key, len(a), len(b), "phi top", np.round(ev[o][:5], 2), "median", round(float(np.median(ev)), 3), flush=True)
