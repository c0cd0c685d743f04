"""vbx.py with the held-out PLDA (plda_ho.py): VBx runs in half-A LDA space with a PLDA fitted on half-B speakers."""
import json
import sys
import time

from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vbx as VB  # noqa: E402
from vbx import CFG, CUR, R, S  # noqa: E402

_ho = {}


def plda_ho(key):
    if key not in _ho:
        with np.load(Path(__file__).resolve().parent / "plda_ho" / f"{key}.npz") as d:
            _ho[key] = {k: d[k] for k in d.files}
    return _ho[key]


def ho_plda(key):
    p = plda_ho(key)
    raw = CUR["raw"].astype(np.float64)
    z = (raw - p["lda_mean"]) @ p["lda_comp"]
    z = z / np.linalg.norm(z, axis=1, keepdims=True) * np.sqrt(z.shape[1])
    # vbx.cluster_vbx computes (emb * sqrt(d) - mu) @ T: hand it z through a shim
    return z, p["mu"], p["T"], p["phi"]


_orig_cluster = VB.cluster_vbx


def cluster(*, embeddings, weights, p_female, options, threshold, seed=0):
    if CFG.get("space") == "ho" and "raw" in CUR and len(CUR["raw"]) == len(embeddings):
        z, mu, T, phi = ho_plda(CUR["key"])
        VB._plda[CUR["key"] + "#ho"] = (mu, T, phi)
        key = CUR["key"]
        CUR["key"] = key + "#ho"
        try:
            return _orig_cluster(embeddings=z / np.sqrt(z.shape[1]), weights=weights, p_female=p_female,
                                 options=options, threshold=threshold, seed=seed, init_embeddings=embeddings)
        finally:
            CUR["key"] = key
    return _orig_cluster(embeddings=embeddings, weights=weights, p_female=p_female, options=options,
                         threshold=threshold, seed=seed)


VB.DI.cluster_windows = cluster
_label = R.label


def label(item, options, proj, *, refine=True):
    a = R.arrays(item)
    emb = a["emb"].astype(np.float32)
    CUR["raw"] = emb[np.linalg.norm(emb, axis=1) > 0]
    return _label(item, options, proj, refine=refine)


R.label = label

if __name__ == "__main__":
    out = open(sys.argv[1], "a")
    CFG["space"] = "ho"
    for spec in json.loads(sys.argv[2]):
        CFG.update({k: spec.pop(k) for k in list(spec) if k in CFG})
        t0 = time.perf_counter()
        rec = S.run(spec, refine=True, sets=["xc", "dev", "sample"])
        rec["summary"] = S.summary(rec)
        rec["cfg"] = dict(CFG)
        out.write(json.dumps(rec) + "\n")
        out.flush()
        print(f"[{time.perf_counter() - t0:.0f}s] {CFG} " + S.fmt(spec, rec["summary"], rec["sample"]), flush=True)
