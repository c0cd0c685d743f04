"""Where YAMNet's music-side families (3 s centred mean, as the clause reads them) stand on the *training* noise and
music clips of manifest.csv: the clause's threshold is read off the training noise, not the held-out sources.

    python train_noise.py DATA OUT.npz
"""
import csv
import sys
from pathlib import Path

import numpy as np

from dramapic import media
from yamnet_head import MUSIC_SIDE, families_member, side_means

data, out = Path(sys.argv[1]), Path(sys.argv[2])
fam_member = families_member()


rows = [r for r in csv.DictReader(open(data / "manifest.csv")) if r["split"] == "train" and r["label"] in
        ("noise", "song")]
res = {"noise_m": [], "noise_s": [], "song_m": [], "song_s": [], "noise_src": [], "song_src": []}
for i, r in enumerate(rows):
    audio = np.asarray(media.decode_audio(media.probe(data / r["path"])), np.float32)
    n = max(1, len(audio) // 160)
    if len(audio) < 16000:
        continue
    fam = fam_member.family_frames(audio, n)
    m, s = side_means(fam, MUSIC_SIDE)
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
