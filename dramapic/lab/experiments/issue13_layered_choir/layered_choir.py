"""A choir stand-in for the song check (issue 13, 2026-12-07): the held-out a cappella layered into an ensemble.

The shared data have no choir, so ``dramapic eval --song-check`` cannot measure it. Here every clip of the
check's a cappella material (the CSD fixture, held out of every stage-1 fit) is scored by the shipped stage 1
(detectors, ensemble, smoothing and song guard, as ``lab/songcheck.py`` scores a clip) three ways:

- ``solo``: the clip (a tenth of a second of silence appended, as the layered ones get);
- ``unison4``: four copies, each but the first time-stretched by 0.98-1.02 and delayed 10-40 ms (a section
  singing one line);
- ``choir6``: six copies pitch-shifted 0, -12, -5, +3, +4 and -3 semitones, each but the first delayed 10-40 ms,
  gains 0.6-1.0 (parts an octave and a few steps apart: a crude SATB);

each peak-normalised to -6 dBFS (the clips' own peaks are -6 to -7.5). Share of audible frames (the song check's
floor) called voice. A stand-in, not a choir: real choirs add room, vibrato spread and many more voices.

    python layered_choir.py ../shared/data layered_choir.txt     (about 1 min)
"""

from __future__ import annotations

import sys
from pathlib import Path

import librosa
import numpy as np

from dramapic import media
from dramapic.analysis import detectors, loaders
from dramapic.analysis.stage1 import stage1_frame_labels
from dramapic.config import load_pipeline
from dramapic.lab.songcheck import FLOOR_DB, songcheck_clips
from dramapic.result import SAMPLE_RATE, STAGE1_LABELS

ENSEMBLES = {"solo": (0,), "unison4": (0, 0, 0, 0), "choir6": (0, -12, -5, 3, 4, -3)}


def layered(audio: np.ndarray, shifts, rng: np.random.Generator, *, stretch: bool) -> np.ndarray:
    out = np.zeros(len(audio) + SAMPLE_RATE // 10, np.float32)
    for k, steps in enumerate(shifts):
        x = audio if steps == 0 else librosa.effects.pitch_shift(audio, sr=SAMPLE_RATE, n_steps=steps)
        if stretch and k > 0:
            x = librosa.effects.time_stretch(x, rate=rng.uniform(0.98, 1.02))[:len(audio)]
        delay = 0 if k == 0 else int(rng.uniform(0.01, 0.04) * SAMPLE_RATE)
        out[delay:delay + len(x)] += x * rng.uniform(0.6, 1.0)
    return (out / np.max(np.abs(out)) * 0.5).astype(np.float32)


def main(data: Path, out: Path) -> None:
    settings = load_pipeline(None).stage1
    model = loaders.stage1_model(settings)
    voice = STAGE1_LABELS.index("voice")
    rng = np.random.default_rng(0)
    totals: dict[str, list[float]] = {}
    lines = []
    for clip in [c for c in songcheck_clips(data_root=data) if c.subtype == "a_cappella"]:
        audio = media.decode_audio(media.probe(clip.path))
        for name, shifts in ENSEMBLES.items():
            y = layered(audio, shifts, rng, stretch=name == "unison4")
            scores = detectors.run_detectors(y)
            _, path = stage1_frame_labels(model.frame_probabilities(y, scores), scores, settings=settings)
            audible = scores.energy_db >= FLOOR_DB
            called, heard = float(((path == voice) & audible).sum()), float(audible.sum())
            totals.setdefault(name, [0.0, 0.0])
            totals[name][0] += called
            totals[name][1] += heard
            lines.append(f"{clip.path.name}  {name}  {100 * called / max(heard, 1):.1f} % voice")
    for name, (called, heard) in totals.items():
        lines.append(f"{name}: {100 * called / heard:.2f} % of {heard * 0.01:.0f} s audible called voice")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
