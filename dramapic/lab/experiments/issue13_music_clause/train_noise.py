"""Where YAMNet's music-side families (3 s centred mean, as the clause reads them) stand on the *training* noise and
music clips of manifest.csv: the clause's threshold is read off the training noise, not the held-out sources.

    python train_noise.py DATA OUT.npz
"""
import csv
import sys
from pathlib import Path

import numpy as np

from dramapic import media
from dramapic.analysis import loaders, stage1
from dramapic.config import load_pipeline

data, out = Path(sys.argv[1]), Path(sys.argv[2])
safe = load_pipeline(Path(__file__).resolve().parents[4] / "pipelines" / "song-safe.yaml")
fam_member = [m for m in loaders.stage1_model(safe.stage1).members if m.name == "stage1-yamnet-families"][0]
MUSIC_SIDE = [stage1.FAMILY_NAMES.index(k) for k in ("singing", "choir", "rap", "music")]
SPEECH = stage1.FAMILY_NAMES.index("speech")


def centred_mean(x, n):
    c = np.cumsum(np.pad(x, (n // 2, n - 1 - n // 2), mode="edge"))
    c = np.concatenate([[0.0], c])
    return (c[n:] - c[:-n]) / n


rows = [r for r in csv.DictReader(open(data / "manifest.csv")) if r["split"] == "train" and r["label"] in
        ("noise", "song")]
res = {"noise_m": [], "noise_s": [], "song_m": [], "song_s": [], "noise_src": [], "song_src": []}
for i, r in enumerate(rows):
    audio = np.asarray(media.decode_audio(media.probe(data / r["path"])), np.float32)
    n = max(1, len(audio) // 160)
    if len(audio) < 16000:
        continue
    fam = fam_member.family_frames(audio, n)
    m = centred_mean(fam[:, MUSIC_SIDE].max(axis=1).astype(np.float64), 301)
    s = centred_mean(fam[:, SPEECH].astype(np.float64), 301)
    res[r["label"] + "_m"].append(m.astype(np.float32))
    res[r["label"] + "_s"].append(s.astype(np.float32))
    res[r["label"] + "_src"].append(np.full(len(m), r["source"], dtype="U40"))
    if i % 200 == 0:
        print(i, len(rows), flush=True)
np.savez(out, **{k: np.concatenate(v) for k, v in res.items()})
for lab in ("noise", "song"):
    m = np.concatenate(res[lab + "_m"])
    print(lab, len(m), "frames; percentiles 50/90/95/99/99.5/99.9:",
          np.round(np.percentile(m, [50, 90, 95, 99, 99.5, 99.9]), 3))
