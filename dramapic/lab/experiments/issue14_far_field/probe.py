"""Far-field probe: monologues and two-person talks of held-out (``dev``) speakers, clean, over a music bed and in
two synthetic rooms farther than the training copies' (``lab.data.room_impulse`` keeps the reverberant tail 4-14 dB
under the direct sound; here it is 0 dB at RT60 0.6 s and 5 dB above it at RT60 1.0 s, a distant microphone),
analysed by the shipped pipeline; speaker count and female share against the truth, and the unknown share.

    python probe.py --data ../shared/data --work /tmp/farfield   # from the repository root; ~10 min on 2 cores

Writes ``results.jsonl`` under ``--work`` and prints the table in ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve

from dramapic.analysis.analyze import analyze
from dramapic.config import load_pipeline
from dramapic.lab.data import load_audio

SR = 16000
CASTS = {  # name: speakers (dev split), in turn order
    "mono_cv_m1": ["cv_0ca034bbace1356d"],
    "mono_cv_m2": ["cv_a1210b5258159b5f"],
    "mono_nemo_f": ["nemo_EB0"],
    "pair_mm": ["cv_0ca034bbace1356d", "cv_a1210b5258159b5f"],
    "pair_ff": ["nemo_EB0", "ravdess_02"],
    "pair_mf": ["cv_a1210b5258159b5f", "cv_fd6f174fe45574b4"],
    "pair_mf2": ["ravdess_17", "cv_fd6f174fe45574b4"],
}
ROOMS = {"clean": None, "bed": None, "room0.6": (0.6, 0.0), "room1.0": (1.0, -5.0)}


def room_impulse(rng: np.random.Generator, rt60: float, direct_to_reverb_db: float) -> np.ndarray:
    n = int(SR * rt60 * 1.2)
    t = np.arange(n) / SR
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail[: int(0.003 * SR)] = 0.0
    ir = tail / np.sqrt(np.sum(tail ** 2)) * 10 ** (-direct_to_reverb_db / 20)
    ir[0] = 1.0
    return ir


def build(data: Path, name: str, cast: list[str], rows: list[dict], bed: np.ndarray, condition: str,
          rng_seed: int) -> tuple[np.ndarray, dict[str, float]]:
    rng = random.Random(rng_seed)
    clips = {s: [r for r in rows if r["speaker"] == s and r["split"] == "dev"] for s in cast}
    genders = {s: clips[s][0]["gender"] for s in cast}
    parts, talk = [], {s: 0.0 for s in cast}
    while any(clips.values()):
        for s in cast:
            for _ in range(rng.randint(1, 3)):
                if clips[s]:
                    y = load_audio(data / clips[s].pop(0)["path"])
                    y = y / (np.abs(y).max() + 1e-9) * 0.3
                    parts += [y, np.zeros(int(SR * rng.uniform(0.2, 0.8)), dtype=np.float32)]
                    talk[s] += len(y) / SR
    x = np.concatenate(parts).astype(np.float64)
    if condition == "bed":
        m = np.tile(bed, len(x) // len(bed) + 1)[: len(x)]
        x = x + m / (np.sqrt(np.mean(m ** 2)) + 1e-9) * np.sqrt(np.mean(x ** 2)) * 10 ** (-12 / 20)
    elif ROOMS[condition] is not None:
        rt60, drr = ROOMS[condition]
        g = np.random.default_rng(rng_seed)
        x = fftconvolve(x, room_impulse(g, rt60, drr))[: len(x)]
        x = x / np.abs(x).max() * 0.3 + g.standard_normal(len(x)) * 0.003
    female = sum(t for s, t in talk.items() if genders[s] == "female") / sum(talk.values())
    return x.astype(np.float32), {"speakers": len(cast), "female_share": female}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = [r for m in ("manifest.csv", "manifest_extra.csv") for r in csv.DictReader(open(args.data / m))]
    music = [r for r in csv.DictReader(open(args.data / "manifest_extra_music.csv"))
             if r["split"] == "dev" and r["subtype"].startswith("instrumental_piano")]
    bed = np.concatenate([load_audio(args.data / r["path"]) for r in music[:8]])
    pipeline = load_pipeline()
    out = open(args.work / "results.jsonl", "w")
    for seed, (name, cast) in enumerate(CASTS.items()):
        for condition in ROOMS:
            audio, truth = build(args.data, name, cast, rows, bed, condition, seed)
            wav = args.work / f"{name}_{condition}.wav"
            sf.write(wav, audio, SR)
            summary = analyze(wav, pipeline).summary
            known = {k: v for k, v in (summary.gender_shares or {}).items()}
            row = {"file": name, "condition": condition, "true_speakers": truth["speakers"],
                   "speakers": len(summary.speakers or ()), "true_female": round(truth["female_share"], 3),
                   "female": known.get("female"), "unknown": summary.gender_unknown_share}
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(row, flush=True)


if __name__ == "__main__":
    main()
