"""Clean voice windows (1.5 s / 0.75 s) of every speaker-labelled clip: resemblyzer + mean YAMNet embedding.

    python yam_table.py ../shared/data yamtable.npz
"""
import sys, time
from pathlib import Path
import numpy as np
from dramapic.lab.data import read_manifest, load_audio
from dramapic.analysis.embeddings import SpeakerEncoder
from dramapic.analysis.yamnet import load_yamnet

root = Path(sys.argv[1])
rows = [dict(r) for m in ("manifest.csv", "manifest_extra.csv") for r in read_manifest(root / m)
        if r["label"] == "voice" and r.get("speaker")]
rows.sort(key=lambda r: r["path"])
enc, yam = SpeakerEncoder(), load_yamnet()
out = {k: [] for k in ("emb", "yam", "speaker", "source", "gender", "split", "clip", "t0")}
t = time.time()
for i, r in enumerate(rows):
    y = load_audio(root / r["path"])
    times, emb = enc.embed_windows(y, sample_rate=16000, regions=[(0.0, len(y) / 16000)], window_s=1.5, hop_s=0.75)
    if len(times) == 0:
        continue
    centres, _, ye = yam.window_outputs(y)
    for (a, b), e in zip(times, emb):
        inside = (centres >= a) & (centres <= b)
        if not inside.any():
            inside = np.zeros(len(centres), bool); inside[np.argmin(np.abs(centres - (a + b) / 2))] = True
        out["emb"].append(e); out["yam"].append(ye[inside].mean(0))
        for k, v in (("speaker", r["speaker"]), ("source", r["source"]), ("gender", r["gender"]), ("split", r["split"]),
                     ("clip", i), ("t0", a)):
            out[k].append(v)
    if i % 200 == 0:
        print(i, len(rows), len(out["emb"]), round(time.time() - t), flush=True)
np.savez(sys.argv[2], **{k: np.asarray(v) for k, v in out.items()})
print("done", len(out["emb"]), round(time.time() - t))
