"""Does one bed under both speakers pull two men together more than two women, on speakers no model was fitted on?

The timelines' cast talks over one file's music and noise beds; the projection's calibration pairs
(``lab.train_speakers.simulate_pairs``) mix clean and augmented windows, each clip with a bed of its own. Here, on
the held-out half of a speaker-grouped 2-fold split of the LibriSpeech and Common Voice *train* speakers (the LDA
fitted on the other half's windows of the window table, as the calibration does), pairs of window sets are built
from the clips' audio in three conditions: clean; each side under a bed of its own; both sides under one bed (two
adjacent stretches of one music or noise clip of the train split), SNR 5-15 dB, the same for both sides. Two
speakers of one gender and one source against one speaker's two halves; the distance is the clustering's
average linkage (1 - <m_a, m_b>) in the projected space; per condition and gender: medians and the distance where a
logistic fit gives P(same) 0.25 (the pipeline's cluster_same_probability).

    python shared_beds.py ../shared/data W/window-table-15c086d7be26d1ef.npz OUT.txt

Imports the current package.
"""

from __future__ import annotations

import csv
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from pair_fit import same_speaker_fit, write_lines

from dramapic import media
from dramapic.analysis import loaders
from dramapic.lab import train_speakers

SOURCES = ("librispeech-train-clean-100", "cv")
SPEAKERS_PER_GENDER = 70        # per source, from the held-out fold
SIDE_S = 7.0                    # 8 windows of 1.5 s every 0.75 s
DIFF_PAIRS, SAME_PAIRS = 150, 100   # per gender
SR = 16000


def read_rows(data: Path) -> list[dict[str, str]]:
    rows = []
    for name in ("manifest.csv", "manifest_extra.csv"):
        with open(data / name, newline="", encoding="utf-8") as handle:
            rows += list(csv.DictReader(handle))
    return rows


def decode(data: Path, path: str) -> np.ndarray:
    return media.decode_audio(media.probe(data / path)).astype(np.float64)


def speaker_audio(data: Path, clips: list[str], need_s: float) -> np.ndarray | None:
    parts, total = [], 0.0
    for clip in clips:
        audio = decode(data, clip)
        parts.append(audio)
        total += len(audio) / SR
        if total >= need_s:
            return np.concatenate(parts)[: int(need_s * SR)]
    return None


def mixed(speech: np.ndarray, bed: np.ndarray, snr_db: float) -> np.ndarray:
    speech_rms = math.sqrt(float(np.mean(speech ** 2))) + 1e-9
    bed_rms = math.sqrt(float(np.mean(bed ** 2))) + 1e-9
    return speech + bed * (speech_rms / bed_rms) * 10 ** (-snr_db / 20)


def main(data_dir: str, table_path: str, out: str) -> None:
    data = Path(data_dir)
    rng = np.random.default_rng(0)
    table = dict(np.load(table_path))
    rows = train_speakers.projection_rows(table, clean_repeats=2)
    speakers = np.unique(table["speaker"][rows])
    held_out = set(speakers[rng.permutation(len(speakers)) % 2 == 1])
    fitted = rows[~np.isin(table["speaker"][rows], list(held_out))]
    mean, components = train_speakers.fit_lda(table["emb"][fitted].astype(np.float64), table["speaker"][fitted], 100)
    encoder = loaders.speaker_encoder()

    def embed(audio: np.ndarray) -> np.ndarray:
        _, emb, _ = encoder.embed_regions(audio.astype(np.float32), sample_rate=SR, regions=[(0.0, len(audio) / SR)],
                                          window_s=1.5, hop_s=0.75)
        z = train_speakers._project(emb.astype(np.float64), mean, components)
        return z.mean(axis=0)

    manifest = read_rows(data)
    clips_of: dict[str, list[str]] = defaultdict(list)
    who: dict[str, tuple[str, str]] = {}
    for row in manifest:
        if row["label"] == "voice" and row["split"] == "train" and row["speaker"] in held_out \
                and row["source"] in SOURCES and row["gender"] in ("female", "male"):
            clips_of[row["speaker"]].append(row["path"])
            who[row["speaker"]] = (row["source"], row["gender"])
    beds_paths = [row["path"] for row in manifest if row["split"] == "train" and row["label"] in ("song", "noise")
                  and float(row["duration_s"] or 0) >= 2 * SIDE_S + 0.5]
    beds = [decode(data, p) for p in rng.choice(beds_paths, size=40, replace=False)]
    audio_of: dict[str, np.ndarray] = {}
    for source in SOURCES:
        for gender in ("female", "male"):
            pool = [s for s, (src, g) in who.items() if src == source and g == gender]
            for s in rng.permutation(pool):
                if sum(1 for k in audio_of if who[k] == (source, gender)) >= SPEAKERS_PER_GENDER:
                    break
                audio = speaker_audio(data, clips_of[s], 2 * SIDE_S)
                if audio is not None:
                    audio_of[s] = audio
    print(f"{len(audio_of)} held-out speakers with {2 * SIDE_S:.0f} s, {len(beds)} beds", file=sys.stderr)
    side = int(SIDE_S * SR)
    found: dict[tuple[str, str], list[tuple[float, bool]]] = defaultdict(list)
    for gender in ("female", "male"):
        for kind, n in (("diff", DIFF_PAIRS), ("same", SAME_PAIRS)):
            for _ in range(n):
                source = SOURCES[int(rng.integers(len(SOURCES)))]
                pool = [s for s in audio_of if who[s] == (source, gender)]
                if kind == "diff":
                    a, b = rng.choice(pool, size=2, replace=False)
                    sides = (audio_of[a][:side], audio_of[b][:side])
                else:
                    s = pool[int(rng.integers(len(pool)))]
                    sides = (audio_of[s][:side], audio_of[s][side:2 * side])
                snr = float(rng.uniform(5.0, 15.0))
                own = [beds[int(i)] for i in rng.choice(len(beds), size=2, replace=False)]
                shared = beds[int(rng.integers(len(beds)))]
                conditions = {
                    "clean": sides,
                    "own beds": tuple(mixed(x, bed[:side], snr) for x, bed in zip(sides, own)),
                    "one bed": (mixed(sides[0], shared[:side], snr), mixed(sides[1], shared[side:2 * side], snr)),
                }
                for condition, (x, y) in conditions.items():
                    found[(condition, gender)].append((1.0 - float(embed(x) @ embed(y)), kind == "same"))
    lines = [f"held-out train speakers of {', '.join(SOURCES)}; pairs of {SIDE_S:.0f} s sides; SNR 5-15 dB"]
    for (condition, gender), pairs in sorted(found.items()):
        d = np.array([p[0] for p in pairs])
        same = np.array([p[1] for p in pairs])
        _, _, stop = same_speaker_fit(d, same)
        lines.append(f"{condition:9s} {gender:6s} different speakers median {np.median(d[~same]):.3f} "
                     f"(q10 {np.quantile(d[~same], 0.1):.3f}), one speaker {np.median(d[same]):.3f} "
                     f"(q90 {np.quantile(d[same], 0.9):.3f}); P(same) 0.25 at {stop:.3f}")
    write_lines(out, lines)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
