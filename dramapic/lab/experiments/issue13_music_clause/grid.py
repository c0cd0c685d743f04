"""A YAMNet music clause after the song guard, on cached stage-1 probabilities (issue 13: the member check on the
music sources fails where the ensemble calls an electronic track noise and YAMNet's own head calls it music).

Clause: where the centred 3 s mean of YAMNet's music-side families (music, singing, choir, rap; max over the four)
reaches ``music_from`` and the 3 s mean of its speech family stays below ``speech_below``, the frame's noise
probability goes to song (``noise``), or its noise and voice probabilities (``noise+voice``). Then the product's
smoothing. Scores: dev mixes (accuracy over non-silent reference frames outside the collar, F1), the 28
cross-corpus timelines per folder, the song check (song time called voice), and per music source the share of
audible song time called song (the member check's figure).

    python grid.py STAGE1_CACHE FAMILY_CACHE DATA '[{"music_from": 0.5, "speech_below": 0.2, "move": "noise"}, ...]'
"""
import dataclasses
import json
import pickle
import sys
from pathlib import Path

import numpy as np

from dramapic.analysis import stage1
from dramapic.analysis.analyze import segments_from_frames
from dramapic.config import load_pipeline
from dramapic.lab.evaluate import aggregate, score_result
from dramapic.lab.reference import load_reference
from dramapic.lab.songcheck import FLOOR_DB, score_song_frames, songcheck_clips
from yamnet_head import MUSIC_SIDE, SINGING_SIDE, side_means

pipe = load_pipeline(None)
src, famdir, data = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
files = []
for f in sorted(src.glob("*.pkl")):
    d = pickle.loads(f.read_bytes())
    d["fam"] = pickle.loads((famdir / f.name).read_bytes())
    files.append(d)
refs = {d["name"]: load_reference(Path(d["labels"])) for d in files if d["labels"]}
clips = songcheck_clips(data_root=data)
source_of = {f"{i:03d}_{c.subtype}": c.source for i, c in enumerate(clips)}
V, S, N, SIL = 0, 1, 2, 3


def sung_clause(p, fam, sung_from, margin):
    """voice -> song where YAMNet's own head hears singing / choir / rap over 3 s, more than speech + margin."""
    if sung_from is None:
        return p, np.zeros(len(p), bool)
    sung, s = side_means(fam, SINGING_SIDE)
    hit = (sung >= sung_from) & (sung >= s + margin)
    p = p.copy()
    p[hit, S] += p[hit, V]
    p[hit, V] = 0.0
    return p, hit


def clause(p, fam, music_from, speech_below, move):
    if music_from is None:
        return p
    m, s = side_means(fam, MUSIC_SIDE)
    hit = (m >= music_from) & (s < speech_below)
    p = p.copy()
    cols = [N] if move == "noise" else [N, V]
    for c in cols:
        p[hit, S] += p[hit, c]
        p[hit, c] = 0.0
    return p


def run(music_from=None, speech_below=1.0, move="noise", sung_from=None, margin=0.0):
    cfg = pipe.stage1
    scored = {"dev": [], "xc": []}
    perfolder, songs, per_source = {}, [], {}
    fired = {"dev_ref_voice": 0, "xc_ref_voice": 0}
    for d in files:
        p = stage1.song_guard(d["probs"], d["scores"], speech_below=cfg.song_guard_speech_below,
                              singing_from=cfg.song_guard_singing_from, context_s=cfg.song_guard_context_s)
        p = clause(p, d["fam"], music_from, speech_below, move)
        p, hit = sung_clause(p, d["fam"], sung_from, margin)
        if d["kind"] != "song" and hit.any():
            ref = refs[d["name"]]
            n = min(len(hit), len(ref.labels))
            fired[d["kind"] + "_ref_voice"] += int((hit[:n] & (ref.labels[:n] == V)).sum())
        p2, lab = stage1.stage1_frame_labels(p, d["scores"], settings=dataclasses.replace(cfg, song_guard=False))
        if d["kind"] == "song":
            songs.append((d["name"][4:], lab, d["scores"].energy_db))
            aud = d["scores"].energy_db >= FLOOR_DB
            src_name = source_of[d["name"]]
            a, b = per_source.get(src_name, (0.0, 0.0))
            per_source[src_name] = (a + float(((lab == S) & aud).sum()), b + float(aud.sum()))
            continue
        segs = segments_from_frames(lab, p2, duration=d["duration"])
        res = {"schema": "dramapic/1", "source": {"duration": d["duration"]},
               "segments": [{"start": s.start, "end": s.end, "label": s.label, "gender": None, "speaker": None}
                            for s in segs]}
        fs = score_result(res, refs[d["name"]])
        scored[d["kind"]].append(fs)
        if d["kind"] == "xc":
            perfolder.setdefault(d["name"].rsplit("_", 1)[0], []).append(fs)
    out = {}
    for k, pooled in scored.items():
        report = aggregate(pooled)
        out[k + "_acc"] = round(report.accuracy, 4)
        for lab_name in ("voice", "song", "noise"):
            out[f"{k}_f1{lab_name}"] = round(report.class_metrics[lab_name]["f1"], 4)
        out[k + "_voice_to_song"] = int(report.confusion_matrix[V, S])
    for f, pooled in sorted(perfolder.items()):
        out["xc_" + f] = round(aggregate(pooled).accuracy, 4)
    out.update({k: v / 100.0 for k, v in fired.items()})  # seconds of reference voice the clause touched
    sc = score_song_frames(songs)
    out["song_voice_%"] = round(100 * sum(sc.voice_s.values()) / sum(sc.audible_s.values()), 3)
    out["song_share"] = {k: round(a / b, 4) for k, (a, b) in sorted(per_source.items())}
    return out


for g in json.loads(sys.argv[4]):
    print(json.dumps({**g, **run(**g)}), flush=True)
