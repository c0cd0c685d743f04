"""The bundled sample at lower levels (a transfer made with the gain far down): stage-1 accuracy against its
reference, the label shares, speakers and gender times, per level (2026-12-07). Imports the current package.

    python levels.py levels.txt     # 1 min
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from hum_rumble import SAMPLE, predicted_frames, reference_frames

from dramapic import media
from dramapic.analysis.analyze import analyze_audio
from dramapic.config import load_pipeline

LEVELS = (0, -10, -15, -20, -30, -40, -50)


def main(out: Path) -> None:
    audio = media.decode_audio(media.probe(SAMPLE))
    n_frames = int(audio.size / 16000 / 0.01)
    ref = reference_frames(SAMPLE.with_suffix("").with_suffix(".labels.csv"), n_frames)
    known = ref >= 0
    pipeline = load_pipeline(None)
    lines = ["level (dB) | accuracy | voice / song / noise / silence share | speakers | female / male s"]
    for gain_db in LEVELS:
        x = np.clip(audio * 10 ** (gain_db / 20), -1, 1).astype(np.float32)
        segments, speakers, _ = analyze_audio(x, pipeline)
        pred = predicted_frames(segments, n_frames)
        shares = " / ".join(f"{np.mean(pred[known] == k):.3f}" for k in range(4))
        seconds = {g: sum(s.end - s.start for s in segments if s.gender == g) for g in ("female", "male")}
        lines.append(f"{gain_db} | {np.mean(pred[known] == ref[known]):.3f} | {shares} | {len(speakers or ())} | "
                     f"{seconds['female']:.1f} / {seconds['male']:.1f}")
        print(lines[-1], flush=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
