"""Bed subtraction before the speaker encoder (issue 14, 2026-12-05; measured, not shipped: RESULTS.md).

Does subtracting a bed estimate -- the mean mel power of the pauses between the utterances of one dialogue block
under a music or noise bed (the reference's non-voice time there: the bed alone) -- from every window's mel power
before resemblyzer's LSTM separate speakers better?  Window-pair EER within each file, same against different
speaker, in the shipped speaker-lda space, for each subtraction weight ALPHA (power floor FLOOR x the window's own).

    python bed_subtraction.py ALPHAS FLOOR TIMELINE.opus [...]      # e.g. 0,0.5,1 0.1 WORK/timelines/*/*_0[1-6].opus
"""
import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch
from resemblyzer.audio import wav_to_mel_spectrogram

from dramapic.analysis.diarization import SpeakerProjection
from dramapic.analysis.embeddings import SpeakerEncoder
from dramapic.lab.data import load_audio
from dramapic.models import load_manifest

enc = SpeakerEncoder()._encoder
proj = SpeakerProjection.from_manifest(load_manifest())
ALPHAS = [float(a) for a in sys.argv[1].split(",")]
FLOOR = float(sys.argv[2])
files = sys.argv[3:]
NW, NH = 150, 75
target = 10 ** (-30 / 20)

def embed(mels):
    with torch.no_grad():
        return enc(torch.from_numpy(np.stack(mels).astype(np.float32))).numpy()

pairs = {a: ([], []) for a in ALPHAS}   # distances same / different
for f in files:
    tl = Path(f)
    meta = json.loads(tl.with_suffix(".json").read_text())
    wav = load_audio(tl.with_suffix(".opus"))
    mel = wav_to_mel_spectrogram(wav)        # (frames, 40)
    n = mel.shape[0]
    ref = np.zeros(n, bool)
    spk_of = np.full(n, "", object)
    with open(tl.with_suffix(".labels.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    for r in rows:
        a, b = int(float(r["start"]) * 100), int(float(r["end"]) * 100)
        if r["label"] == "voice":
            ref[a:b] = True
            spk_of[a:b] = r["speaker"]
    wins = {a: [] for a in ALPHAS}; who = []
    for blk in meta["blocks"]:
        if blk["kind"] != "dialogue" or blk.get("bed") in (None, "none"):
            continue
        a0, a1 = int(blk["start_s"] * 100), min(n, int((blk["start_s"] + blk["dur_s"]) * 100))
        pause = ~ref[a0:a1]
        if pause.sum() < 30:
            continue
        bed = mel[a0:a1][pause].mean(axis=0)
        for it in meta["items"]:
            if it["role"] != "utterance" or not (blk["start_s"] <= it["start_s"] < blk["start_s"] + blk["dur_s"]):
                continue
            s, e = int(it["start_s"] * 100), int((it["start_s"] + it["dur_s"]) * 100)
            for w in range(s, e - NW + 1, NH):
                piece = mel[w:w + NW]
                rms = float(np.sqrt(np.mean(np.square(wav[w * 160:(w + NW) * 160], dtype=np.float64))))
                gain = max(1.0, target / max(rms, 1e-4)) ** 2
                for al in ALPHAS:
                    cleaned = np.maximum(piece - al * bed, FLOOR * piece)
                    wins[al].append(cleaned * gain)
                who.append(it["speaker"])
    if len(set(who)) < 2:
        continue
    who = np.array(who)
    same = who[:, None] == who[None, :]
    iu = np.triu_indices(len(who), 1)
    for al in ALPHAS:
        x = proj.transform(embed(wins[al]))
        d = 1 - x @ x.T
        pairs[al][0].append(d[iu][same[iu]]); pairs[al][1].append(d[iu][~same[iu]])
    print(tl.stem, len(who), flush=True)

def eer(s, d):
    ts = np.linspace(0, 2, 2001)
    fr = np.array([(s > t).mean() for t in ts]); fa = np.array([(d <= t).mean() for t in ts])
    k = np.argmin(np.abs(fr - fa)); return (fr[k] + fa[k]) / 2, ts[k]

for al in ALPHAS:
    s = np.concatenate(pairs[al][0]); d = np.concatenate(pairs[al][1])
    e, t = eer(s, d)
    print(f"alpha {al}: EER {e:.4f} at {t:.3f}; same mean {s.mean():.3f} diff mean {d.mean():.3f}; "
          f"diff <= 0.455: {(d <= 0.455).mean():.3f}, same > 0.455: {(s > 0.455).mean():.3f}")
