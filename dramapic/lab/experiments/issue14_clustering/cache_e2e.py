"""Run main's ``dramapic.analysis.analyze`` end to end (default pipeline, shipped models) on media files and cache
what the diarization saw, in exp14's cache layout, with hooks (nothing recomputed):

* ``<name>.result.json``: the product's result (``to_dict()``), the reference for the re-scorer's verification;
* ``<name>.segments.json``: the stage-1 segments handed to stage 2;
* ``<name>.npz``: ``seg``, first-pass ``times`` / ``emb`` / ``region`` / ``pitch``, ``duration``;
* ``<name>.refine.npz`` (memo layout): the refinement windows the product embedded.

Usage: python cache_e2e.py OUT_DIR FILE [FILE ...]
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

import dramapic.analysis.analyze as an  # noqa: E402
import dramapic.analysis.diarization as di  # noqa: E402
from dramapic.analysis.embeddings import SpeakerEncoder  # noqa: E402

calls: list = []
_er, _wp, _st2 = SpeakerEncoder.embed_regions, di.window_pitch_features, an._stage2


def er(self, audio, **kw):
    out = _er(self, audio, **kw)
    calls.append(("emb", kw, out))
    return out


def wp(audio, *, times, sample_rate):
    out = _wp(audio, times=times, sample_rate=sample_rate)
    calls.append(("pitch", times, out))
    return out


def st2(audio, segments, pipeline, **kw):
    calls.append(("stage1", [s.to_dict() for s in segments]))
    return _st2(audio, segments, pipeline, **kw)


SpeakerEncoder.embed_regions = er
di.window_pitch_features = wp
an._stage2 = st2


def main(argv):
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for f in map(Path, argv[1:]):
        name = f.name.split(".")[0]
        calls.clear()
        t0 = time.perf_counter()
        res = an.analyze(f)
        wall = time.perf_counter() - t0
        stage1 = next(c[1] for c in calls if c[0] == "stage1")
        embs = [c for c in calls if c[0] == "emb"]
        pits = [c for c in calls if c[0] == "pitch"]
        seg = np.asarray([(s["start"], s["end"]) for s in stage1 if s["label"] == "voice"], np.float64).reshape(-1, 2)
        t, e, r = embs[0][2] if embs else (np.zeros((0, 2)), np.zeros((0, 256), np.float32), np.zeros(0, np.int64))
        p = pits[0][2] if pits else np.zeros((0, 6), np.float32)
        np.savez(out / f"{name}.npz", seg=seg, times=t, emb=e, region=r, pitch=p, duration=float(res.duration))
        if len(embs) > 1:
            rt, re_, rr = embs[1][2]
            starts = np.asarray([a for a, _ in embs[1][1]["regions"]])
            # region of each extra window: the voice segment holding its start
            reg = np.searchsorted(seg[:, 0], starts[rr] + 1e-9) - 1
            np.savez(out / f"{name}.refine.npz", times=rt, emb=re_, region=reg, pitch=pits[1][2])
        (out / f"{name}.segments.json").write_text(json.dumps(stage1))
        d = res.to_dict()
        d["_wall"] = wall
        (out / f"{name}.result.json").write_text(json.dumps(d))
        print(f"{name}: {wall:.1f} s, {len(e)} windows, {sum(len(c[2][0]) for c in embs[1:])} extra", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
