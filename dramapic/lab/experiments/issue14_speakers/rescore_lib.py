"""Offline re-scoring of diarization on cached stage-1 voice segments and windows (cache_mixes.py's output).

Replicates ``label_voice_segments``: windows every 0.75 s are clustered and re-segmented; the refinement windows
(every 0.25 s between the two windows either side of each change) are taken from the cached 0.25 s grid (nearest
start in the same segment) instead of being embedded again; the second pass re-segments against the same
centroids. The turns replace the voice segments of the cached result and the whole is scored by the product's
``evaluate.score_result`` (DER with pyannote.metrics, 0.5 s collar).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dramapic.evaluate import load_reference, score_result
from dramapic.speakers import _refinement_starts, _valid

from diarization import DiarizationOptions, diarize


def load_cache(npz: Path) -> dict:
    with np.load(npz) as d:
        return {k: d[k] for k in d.files}


def run_cached(c: dict, *, options: DiarizationOptions, projection=None, refine: bool = True,
               diarize_fn=diarize, pf_key: str = "pf", refine_fn=None):
    """VoiceLabelling of one cached file (the product's two passes).

    ``refine_fn(starts, where) -> (times, emb, region, p_female)`` supplies the refinement windows; default:
    the nearest window of the cached 0.25 s grid (``w25_*``)."""
    seg = c["segments"]
    if len(seg) == 0:
        from dramapic.speakers import VoiceLabelling
        return VoiceLabelling()
    times, emb, region, pf = _valid(c["w75_times"], c["w75_emb"], c["w75_region"], c[f"w75_{pf_key}"])
    lab, cent, raw = diarize_fn(segments=seg, times=times, embeddings=emb, region=region, p_female=pf,
                                options=options, projection=projection)
    if not refine or not any(len(t) > 1 for t in raw):
        return lab
    starts, where = _refinement_starts(seg, times, raw, 1.5, 0.25)
    if len(starts) == 0:
        return lab
    if refine_fn is not None:
        et, ee, er, ep = _valid(*refine_fn(starts, where))
    else:
        ft, fe, fr, fp = c["w25_times"], c["w25_emb"], c["w25_region"], c[f"w25_{pf_key}"]
        rows = []
        for t, s in zip(starts, where):
            cand = np.flatnonzero(fr == s)
            if len(cand):
                rows.append(cand[int(np.argmin(np.abs(ft[cand, 0] - t)))])
        rows = np.asarray(rows, dtype=np.int64)
        et, ee, er, ep = ft[rows], fe[rows], fr[rows], fp[rows]
    times2 = np.concatenate([times, et])
    emb2 = np.concatenate([emb, ee])
    region2 = np.concatenate([region, er])
    pf2 = np.concatenate([pf, ep])
    return diarize_fn(segments=seg, times=times2, embeddings=emb2, region=region2, p_female=pf2,
                      options=options, projection=projection, centroids=cent)[0]


def to_result(c: dict, result: dict, labelling) -> dict:
    """The cached analysis result with its voice segments replaced by ``labelling``'s turns."""
    segs = [s for s in result["segments"] if s["label"] != "voice"]
    for (a, b), turns in zip(c["segments"], labelling.turns):
        for i, t in enumerate(turns):
            segs.append({"start": float(a) if i == 0 else t.start, "end": float(b) if i == len(turns) - 1 else t.end,
                         "label": "voice", "gender": t.gender, "speaker": t.speaker})
    segs.sort(key=lambda s: s["start"])
    return {"schema": result.get("schema", "dramapic/1"), "source": {"duration": result["source"]["duration"]},
            "segments": segs}


def score_file(cache_dir: Path, name: str, labels_csv: Path, **kw):
    c = load_cache(cache_dir / f"{name}.npz")
    result = json.loads((cache_dir / f"{name}.result.json").read_text())
    lab = run_cached(c, **kw)
    return score_result(to_result(c, result, lab), load_reference(labels_csv)), lab
