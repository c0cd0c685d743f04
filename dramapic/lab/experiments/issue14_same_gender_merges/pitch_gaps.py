"""Can pitch keep two same-gender speakers apart? Per reference speaker per timeline: the median log2 f0 of the
1.5 s windows (0.75 s hop) wholly inside their solo voice, with the product's own pitch features; then the gap
between same-gender speakers of one file against the gap between the two halves of one speaker's utterances.

    python pitch_gaps.py TIMELINES DEV_MIXES OUT.json     # TIMELINES: --work/timelines of dramapic eval --cross-corpus
"""
from __future__ import annotations

import csv
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from dramapic import media
from dramapic.analysis.pitch import window_pitch_features


def speakers_of(labels: Path) -> list[dict]:
    audio = media.decode_audio(media.probe(labels.with_name(labels.name.replace(".labels.csv", ".opus"))))
    utterances: dict[tuple[str, str], list[np.ndarray]] = {}
    with open(labels, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if row["label"] != "voice" or "+" in row["speaker"]:
            continue
        start, end = float(row["start"]), float(row["end"])
        t = np.arange(start, end - 1.5 + 1e-9, 0.75)
        if len(t) == 0:
            continue
        f = window_pitch_features(audio, times=np.stack([t, t + 1.5], 1), sample_rate=16000)
        voiced = f[:, 5] < 0.5
        if voiced.any():
            utterances.setdefault((row["speaker"], row["gender"]), []).append(f[voiced, 2])
    return [{"speaker": s, "gender": g, "median": float(np.median(np.concatenate(u))),
             "utterances": [float(np.median(v)) for v in u if len(v) >= 3]} for (s, g), u in utterances.items()]


def main(argv: list[str]) -> None:
    timelines, dev, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    files = sorted(timelines.glob("*/*.labels.csv")) + sorted(dev.glob("*.labels.csv"))
    rows = {f"{p.parent.name}/{p.name[:-len('.labels.csv')]}": speakers_of(p) for p in files}
    out.write_text(json.dumps(rows))
    between = [abs(a["median"] - b["median"]) for spk in rows.values()
               for a, b in itertools.combinations(spk, 2) if a["gender"] == b["gender"]]
    within = []
    for spk in rows.values():
        for s in spk:
            m = np.array(s["utterances"])
            if len(m) >= 2:
                within.append(abs(np.median(m[:len(m) // 2]) - np.median(m[len(m) // 2:])))
    q = (0.25, 0.5, 0.75, 0.9)
    print(f"same-gender speaker pairs in one file: {len(between)}, gap quantiles {np.round(np.quantile(between, q), 3)}")
    print(f"one speaker's two halves: {len(within)}, gap quantiles {np.round(np.quantile(within, q), 3)}")
    for t in (0.2, 0.3, 0.4):
        print(f"gap > {t} octave: pairs {np.mean(np.array(between) > t):.3f}, halves {np.mean(np.array(within) > t):.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
