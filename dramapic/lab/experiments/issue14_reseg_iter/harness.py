"""Fast re-runs of the product's cross-corpus protocol (``dramapic eval --cross-corpus``'s stage-2 part) for
diarization variants, in one process.

Everything a diarization setting cannot change is memoised on disk under ``CACHE``: stage 1's segments per
timeline (``analyze_audio`` with gender and speakers off), every ``SpeakerEncoder.embed_regions`` call and every
``window_pitch_features`` call (keyed by the audio's sha1 and the exact arguments), and the held-out fits per
excluded-source set. The product code then runs unchanged on top of the memo, so a variant's figures are the
product's figures (the baseline reproduces ``dramapic eval --cross-corpus``'s table exactly: checked in RESULTS.md).

    python harness.py ../shared/data WORK CACHE OUT base iter2 iter3 ...

WORK is the ``--work`` folder of ``dramapic eval --cross-corpus`` (window table + timelines). Variants are defined
in ``variants.py``. Never run two at once (two cores).
"""
from __future__ import annotations

import hashlib
import json
import pickle
import sys
from pathlib import Path

import numpy as np

import dramapic.analysis.analyze as analyze_mod
import dramapic.analysis.diarization as diar
import dramapic.lab.crosscorpus as cc
from dramapic.analysis.embeddings import SpeakerEncoder
from dramapic.config import load_pipeline

_CACHE: Path | None = None
_mem: dict = {}


def _sha(*parts) -> str:
    h = hashlib.sha1()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
    return h.hexdigest()


def _memo(kind: str, key: str, compute):
    if (kind, key) in _mem:
        return _mem[(kind, key)]
    path = _CACHE / kind / f"{key}.pkl"
    if path.exists():
        value = pickle.loads(path.read_bytes())
    else:
        value = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(value))
        tmp.replace(path)
    _mem[(kind, key)] = value
    return value


def _audio_id(audio) -> str:
    # hashed every time (a few ms): ids of freed arrays are reused, so no identity shortcut
    return _sha(np.asarray(audio))


def install(cache: Path) -> None:
    global _CACHE
    _CACHE = cache
    real_analyze = analyze_mod.analyze_audio
    real_embed = SpeakerEncoder.embed_regions
    real_pitch = diar.window_pitch_features
    real_fit = cc.fit_voice_models

    def analyze_audio(audio, pipeline, **kw):
        return _memo("stage1", _sha(_audio_id(audio), pipeline.checksum() if hasattr(pipeline, "checksum")
                                    else repr(pipeline.stage1)), lambda: real_analyze(audio, pipeline, **kw))

    def embed_regions(self, audio, *, sample_rate, regions, window_s, hop_s, progress=None, **kw):
        key = _sha(_audio_id(audio), sample_rate, [tuple(map(float, r)) for r in regions], window_s, hop_s)
        return _memo("embed", key, lambda: real_embed(self, audio, sample_rate=sample_rate, regions=regions,
                                                      window_s=window_s, hop_s=hop_s, **kw))

    def window_pitch_features(audio, *, times, sample_rate):
        key = _sha(_audio_id(audio), np.asarray(times, dtype=np.float64), sample_rate)
        return _memo("pitch", key, lambda: real_pitch(audio, times=times, sample_rate=sample_rate))

    fits: dict = {}

    def fit_voice_models(table, excluded, *, seed=0):
        key = (tuple(sorted(excluded)), seed)
        if key not in fits:
            fits[key] = real_fit(table, excluded, seed=seed)
        return fits[key]

    analyze_mod.analyze_audio = analyze_audio
    SpeakerEncoder.embed_regions = embed_regions
    diar.window_pitch_features = window_pitch_features
    cc.fit_voice_models = fit_voice_models


def main(argv: list[str]) -> None:
    from variants import VARIANTS

    data, work, cache, out = map(Path, argv[:4])
    install(cache)
    out.mkdir(parents=True, exist_ok=True)
    base = load_pipeline(None)
    for name in argv[4:]:
        target = out / f"{name}.json"
        if target.exists():
            continue
        pipeline = base
        parts = name.split("+")
        undos = []
        for part in parts:  # "speakers.window_s=2.0+turnlink4": pipeline settings and code variants
            if "=" in part:
                key, value = part.split("=")
                pipeline = pipeline.replace(**{key.replace(".", "__"): float(value)})
            else:
                undos.append(VARIANTS[part]())

        def undo():
            for u in undos:
                u()
        try:
            rows = cc.run_voice_protocol(data=data, timelines=work / "timelines", pipeline=pipeline, work=work,
                                         dev_mixes=data / "dev_mixes")
        finally:
            undo()
        summary = cc.summarize(rows)
        print(name)
        print(cc.format_table(summary), flush=True)
        target.write_text(json.dumps({"summary": summary, "files": [
            {"name": t.name, "pred": s.speakers_pred, "ref": s.speakers_ref, "der": s.der,
             "der_components": s.der_components, "gender_error": s.gender_error} for t, _, s in rows]},
            default=float))


if __name__ == "__main__":
    main(sys.argv[1:])
