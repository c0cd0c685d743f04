"""Are two men closer than two women in the speaker space, on the judge's timelines and in clean clips?

Seven of the eight speaker-count under-splits of the shipped models on the 28 cross-corpus timelines and the 20
dev mixes merge two men (RESULTS.md). This script measures, with the shipped encoder and ``speaker-lda``
projection, the average-linkage distance (1 - <m_a, m_b>, m the mean of a speaker's L2-normalised projected
windows: the closed form the clustering uses) between every two reference speakers of one gender in one file,
their solo voice only, and each speaker's own first half against its second half, per gender.

    python pair_distances.py TIMELINES_DIR DEV_MIXES_DIR OUT.txt

TIMELINES_DIR: the cross-corpus tree (``dramapic eval --cross-corpus --work W`` builds it as W/timelines);
DEV_MIXES_DIR: ../shared/data/dev_mixes. Imports the current package.
"""

from __future__ import annotations

import csv
import itertools
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from dramapic import media
from dramapic.analysis import loaders
from dramapic.analysis.clustering import stopping_distance
from dramapic.config import load_pipeline

WINDOW_S, HOP_S = 1.5, 0.75   # the pipeline's speakers.window_s / hop_s


def speaker_regions(labels: Path) -> tuple[dict[str, list[tuple[float, float]]], dict[str, str]]:
    regions: dict[str, list[tuple[float, float]]] = defaultdict(list)
    gender: dict[str, str] = {}
    with open(labels, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["label"] == "voice" and "+" not in row["speaker"]:  # solo voice only
                regions[row["speaker"]].append((float(row["start"]), float(row["end"])))
                gender[row["speaker"]] = row["gender"]
    return regions, gender


def main(timelines: str, dev_mixes: str, out: str) -> None:
    pipeline = load_pipeline(None)
    encoder = loaders.speaker_encoder()
    projection = loaders.speaker_projection(pipeline.speakers.projection)
    files = sorted(Path(timelines).glob("*/*.opus")) + sorted(Path(dev_mixes).glob("devmix_*.opus"))
    pairs: dict[str, list[tuple[str, float]]] = defaultdict(list)
    halves: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for path in files:
        regions, gender = speaker_regions(path.with_suffix(".labels.csv"))
        audio = media.decode_audio(media.probe(path))
        means, half = {}, {}
        for speaker, spans in regions.items():
            _, emb, _ = encoder.embed_regions(audio, sample_rate=16000, regions=spans, window_s=WINDOW_S,
                                              hop_s=HOP_S)
            if len(emb) < 4:
                continue
            x = projection.transform(emb)
            means[speaker] = x.mean(axis=0)
            n = len(x) // 2
            half[speaker] = 1.0 - float(x[:n].mean(axis=0) @ x[n:].mean(axis=0))
        for a, b in itertools.combinations(sorted(means), 2):
            if gender[a] == gender[b]:
                pairs[gender[a]].append((f"{path.stem} {a} {b}", 1.0 - float(means[a] @ means[b])))
        for speaker, d in half.items():
            halves[gender[speaker]].append((f"{path.stem} {speaker}", d))
        print(path.stem, len(means), file=sys.stderr)
    threshold = stopping_distance(pipeline.speakers, projection)
    with open(out, "w", encoding="utf-8") as handle:
        handle.write(f"stopping distance (the pipeline's, from speaker-lda's calibration): {threshold:.4f}\n")
        for what, table in (("two speakers of one gender in one file", pairs),
                            ("one speaker, first half of its windows against the second", halves)):
            handle.write(f"\n{what}:\n")
            for g in sorted(table):
                d = np.array([v for _, v in table[g]])
                handle.write(f"  {g:6s} n {len(d):3d}  median {np.median(d):.3f}  q10 {np.quantile(d, 0.1):.3f}  "
                             f"q25 {np.quantile(d, 0.25):.3f}  below the stopping distance {np.mean(d < threshold):.2f}"
                             f"  (below 0.43 / 0.40: {np.mean(d < 0.43):.2f} / {np.mean(d < 0.40):.2f})\n")
        handle.write("\npairs closer than the stopping distance:\n")
        for g in sorted(pairs):
            for name, d in sorted(pairs[g], key=lambda item: item[1]):
                if d < threshold:
                    handle.write(f"  {g:6s} {d:.3f} {name}\n")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
