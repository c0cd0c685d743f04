"""The male logit of one probe recording, split into its embedding and pitch parts, per condition:

    python trace_gender.py WORK mono_cv_m2   # WORK: probe.py's --work
"""
import sys

import numpy as np, soundfile as sf
from dramapic.analysis.embeddings import SpeakerEncoder
from dramapic.analysis.pitch import window_pitch_features
from dramapic.analysis.gender import GenderClassifier
from dramapic.models import load_manifest
g = GenderClassifier.from_manifest(load_manifest())
enc = SpeakerEncoder()
for cond in ("clean", "room0.6", "room1.0"):
    x, sr = sf.read(f"{sys.argv[1]}/{sys.argv[2]}_{cond}.wav", dtype="float32")
    # voiced regions: use energy > threshold in 0.5 s blocks, crude but same for all
    regions = [(0.0, len(x) / sr)]
    t, e = enc.embed_windows(x, sample_rate=sr, regions=regions, window_s=1.5, hop_s=0.75)
    rms = np.array([np.sqrt(np.mean(x[int(a*sr):int(b*sr)]**2)) for a, b in t])
    keep = rms > 0.3 * np.median(rms)
    t, e = t[keep], e[keep]
    p = window_pitch_features(x, times=t, sample_rate=sr)
    f = g._features(e, p)
    z = (f - g._mean) / g._scale
    contrib_e = z[:, :256] @ g._coef[:256]
    contrib_p = z[:, 256:] @ g._coef[256:]
    sgn = 1 if g._positive == "male" else -1; contrib_e, contrib_p = sgn*contrib_e, sgn*contrib_p; print(cond, len(t), "emb part %.2f  pitch part %.2f  total logit(male) %.2f  frac male>0 %.2f" % (
        contrib_e.mean(), contrib_p.mean(), (contrib_e + contrib_p + sgn*g._intercept).mean(), np.mean(contrib_e + contrib_p + sgn*g._intercept > 0)),
        "pitch q50 %.2f q10 %.2f q90 %.2f voiced %.2f" % tuple(np.median(p[:, i]) for i in (2, 1, 3, 0)))
