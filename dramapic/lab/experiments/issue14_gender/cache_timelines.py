"""Run the shipped pipeline end to end on every timeline and cache what stage 2 needs (issue 14, phase 1c).

For each ``.opus`` under the given folders, ``dramapic.analysis.analyze`` runs unchanged (``/work/base`` code,
default pipeline, shipped models); a wrapper around ``analysis._stage2`` records, before the product's stage 2
runs on the same audio and segments:

* the stage-1 segments (all labels) and the voice segments handed to ``label_voice_segments``;
* the first-pass windows (1.5 s every 0.75 s inside every voice segment): times, raw 256-d embeddings, region;
* a dense grid of refinement windows: in every voice segment, one window (embedded as its own region, exactly
  like the product's extra windows) at every first-pass start + k * 0.25 s, so that any projection / clustering
  variant finds its refinement windows in the cache (``crosscorpus.rescore``);
* pitch features (``pitch.window_pitch_features``) of both window sets.

The shipped result is written to ``cache/timelines/<folder>/<name>.result.json`` and the arrays to
``<name>.npz``; ``<name>.segments.json`` holds the stage-1 segments.

Usage: ``python cache_timelines.py DIR [DIR ...]`` (each DIR a folder of ``.opus`` + ``.labels.csv``).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "cache" / "timelines"
REFINE_S = 0.25
DENSE = False  # the dense refinement grid tripled the embedding work on the shared CPUs: rescore embeds lazily


def dense_starts(seg: np.ndarray, window_s: float, hop_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Starts (seconds) and regions of the refinement grid: every 0.25 s from each segment's first window start,
    up to the segment end minus one window (``_refinement_starts`` can only ask for these)."""
    from dramapic.speakers import SAMPLE_RATE

    starts, regions = [], []
    for s, (a, b) in enumerate(seg):
        a0 = int(round(max(a, 0.0) * SAMPLE_RATE)) / SAMPLE_RATE
        hi = b - window_s
        t = a0 + REFINE_S
        k = 1
        while t <= hi + 1e-6:
            starts.append(min(max(t, a), hi))
            regions.append(s)
            k += 1
            t = a0 + REFINE_S * k
    return np.asarray(starts, dtype=np.float64), np.asarray(regions, dtype=np.int64)


def main(dirs: list[str]) -> None:
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from dramapic import analysis
    from dramapic.config import load_pipeline
    from dramapic.speakers import SAMPLE_RATE

    sys.path.insert(0, str(HERE))
    from pitch import window_pitch_features

    pipeline = load_pipeline(None)
    original = analysis._stage2
    captured: dict = {}

    def stage2(audio, segments, pipeline, *, options, progress):
        clock = time.perf_counter()
        wav = np.asarray(audio, dtype=np.float32)
        encoder, _ = analysis._stage2_models(pipeline.stage2.gender_model)
        speaker_options, _ = analysis.speaker_settings(pipeline, options)
        voice = [s for s in segments if s.label == "voice"]
        seg = np.asarray([(s.start, s.end) for s in voice], dtype=np.float64).reshape(-1, 2)
        w, h = speaker_options.window_s, speaker_options.hop_s
        times, emb, region = encoder._embed(wav, SAMPLE_RATE, [tuple(r) for r in seg], w, h)
        if DENSE:
            starts, dreg = dense_starts(seg, w, h)
            dt, de, dr = encoder._embed(wav, SAMPLE_RATE, [(t, t + w) for t in starts], w, w)
        else:  # refinement windows are embedded on demand by crosscorpus.rescore (and memoised there)
            dt, de, dr, dreg = np.zeros((0, 2)), np.zeros((0, 256), np.float32), np.zeros(0, np.int64), None
        captured.update(
            seg=seg, times=times, emb=emb, region=region,
            pitch=window_pitch_features(wav, times=times, sample_rate=SAMPLE_RATE),
            dense_times=dt, dense_emb=de, dense_region=dreg[dr] if len(dr) else np.zeros(0, np.int64),
            dense_pitch=window_pitch_features(wav, times=dt, sample_rate=SAMPLE_RATE),
            segments=[s.to_dict() for s in segments], duration=len(wav) / SAMPLE_RATE,
            cache_s=time.perf_counter() - clock,
        )
        return original(audio, segments, pipeline, options=options, progress=progress)

    analysis._stage2 = stage2
    for d in dirs:
        d = Path(d)
        folder = d.name
        out = OUT / folder
        out.mkdir(parents=True, exist_ok=True)
        for path in sorted(d.glob("*.opus")):
            name = path.name[:-len(".opus")]
            if (out / f"{name}.npz").exists():
                continue
            captured.clear()
            timings: dict[str, float] = {}
            clock = time.perf_counter()
            result = analysis.analyze(path, pipeline, timings=timings)
            wall = time.perf_counter() - clock
            data = result.to_dict()
            data["_timings"] = {**timings, "wall": wall, "cache_extra": captured.get("cache_s", 0.0)}
            (out / f"{name}.result.json").write_text(json.dumps(data), encoding="utf-8")
            (out / f"{name}.segments.json").write_text(json.dumps(captured["segments"]), encoding="utf-8")
            np.savez(out / f"{name}.npz", **{k: np.asarray(v) for k, v in captured.items()
                                              if k not in ("segments", "cache_s")})
            print(f"{folder}/{name}: {captured['duration']:.0f} s audio, {wall:.1f} s wall "
                  f"(cache extra {captured['cache_s']:.1f} s), {len(captured['times'])} + "
                  f"{len(captured['dense_times'])} windows", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
