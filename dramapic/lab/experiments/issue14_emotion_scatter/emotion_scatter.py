"""Speaker projection with acted-emotion within-speaker scatter weighted up (issue 14, Emo-DB over-splits).

variant ``emoGG``: the product's regularised LDA (eigen solver, shrinkage 0.9, uncentred), with GG/100 x
(trace(Sw) / trace(S_emo)) x S_emo added to the within-speaker scatter, S_emo the within-speaker covariance of the
acted-emotion speakers of the fit (Emo-DB, RAVDESS, nEMO: ids ``emodb_``, ``ravdess_``, ``nemo_``), each speaker
weighted alike. Held out Emo-DB, RAVDESS and nEMO still teach emotion invariance; held out all three (a mixed cast),
what is left.
"""
import numpy as np

EMOTION_PREFIXES = ("emodb_", "ravdess_", "nemo_")


def fit_lda_emotion(x, speakers, dim, *, shrinkage=0.9, gamma=0.0, prefixes=EMOTION_PREFIXES, orthogonal=0):
    from scipy import linalg
    from sklearn.discriminant_analysis import _class_cov, _cov

    x = np.asarray(x, np.float64)
    speakers = np.asarray(speakers)
    classes, y = np.unique(speakers, return_inverse=True)
    dim = min(dim, len(classes) - 1, x.shape[1])
    priors = np.bincount(y) / len(y)
    sw = _class_cov(x, y, priors, shrinkage)
    st = _cov(x, shrinkage)
    sb = st - sw
    if gamma > 0:
        emo = [k for k, c in enumerate(classes) if str(c).startswith(prefixes)]
        if emo:
            s_emo = np.zeros_like(sw)
            for k in emo:
                xk = x[y == k]
                if len(xk) >= 2:
                    s_emo += np.cov(xk, rowvar=False, bias=True)
            s_emo /= len(emo)
            if orthogonal:
                # keep the emotion scatter out of the top ``orthogonal`` directions in which the other (read-speech)
                # speakers' means differ: suppress acted emotion only where it does not carry their identity
                acted = set(emo)
                rest = [k for k in range(len(classes)) if k not in acted]
                means = np.stack([x[y == k].mean(axis=0) for k in rest])
                _, u = np.linalg.eigh(np.cov(means, rowvar=False))
                u = u[:, ::-1][:, :orthogonal]
                keep = np.eye(len(sw)) - u @ u.T
                s_emo = keep @ s_emo @ keep
            sw = sw + gamma * (np.trace(sw) / np.trace(s_emo)) * s_emo
    evals, evecs = linalg.eigh(sb, sw)
    evecs = evecs[:, np.argsort(evals)[::-1]]
    return np.zeros(x.shape[1], np.float64), evecs[:, :dim].astype(np.float64)
