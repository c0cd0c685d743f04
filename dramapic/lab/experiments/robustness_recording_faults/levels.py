"""The bundled sample at lower levels (a transfer made with the gain far down): stage-1 accuracy against its
reference, the label shares, speakers and gender times, per level (2026-12-07). Imports the current package.

    python levels.py levels.txt     # 1 min
    python levels.py timelines WORK/timelines timelines_30db.txt     # the 28 cross-corpus timelines, 9 min
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from dramapic import media
from dramapic.analysis.analyze import analyze_audio
from dramapic.config import load_pipeline

from hum_rumble import SAMPLE, predicted_frames, reference_frames

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




def timelines(root: Path, out: Path, *, down_db: float = 30.0) -> None:
    """Each cross-corpus timeline under ``root`` (``FOLDER/NAME.opus``) and a copy ``down_db`` lower through the whole
    analysis, the copy raised as the product does and, for comparison, as it was before (not raised): the copy's
    stage-1 labels against the original's, per 10 ms frame; speakers found; female and male seconds."""
    from dramapic.analysis import analyze as analysis

    pipeline = load_pipeline(None)
    raise_as_shipped = analysis.level_gain
    header = (f"timeline | stage-1 frames agreeing with the original, copy {down_db:g} dB down raised / not raised | "
              "speakers original / raised / not | female s original / raised / not | male s original / raised / not")
    lines = [header]
    for path in sorted(root.glob("*/*.opus")):
        audio = media.decode_audio(media.probe(path))
        n_frames = int(audio.size / 16000 / 0.01)
        results = []
        for gain_db, raise_it in ((0.0, True), (-down_db, True), (-down_db, False)):
            analysis.level_gain = raise_as_shipped if raise_it else (lambda *args, **kwargs: 1.0)
            x = (audio * np.float32(10 ** (gain_db / 20))).astype(np.float32)
            segments, speakers, _ = analyze_audio(x, pipeline)
            seconds = {g: sum(s.end - s.start for s in segments if s.gender == g) for g in ("female", "male")}
            results.append((predicted_frames(segments, n_frames), len(speakers or ()), seconds))
        analysis.level_gain = raise_as_shipped
        (a, na, sa), (b, nb, sb), (c, nc, sc) = results
        lines.append(f"{path.parent.name}/{path.stem} | {np.mean(a == b):.3f} / {np.mean(a == c):.3f} | "
                     f"{na} / {nb} / {nc} | {sa['female']:.1f} / {sb['female']:.1f} / {sc['female']:.1f} | "
                     f"{sa['male']:.1f} / {sb['male']:.1f} / {sc['male']:.1f}")
        print(lines[-1], flush=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1] == "timelines":
        timelines(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main(Path(sys.argv[1]))
