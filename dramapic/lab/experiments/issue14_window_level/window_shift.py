"""How far a level change moves a resemblyzer window embedding (issue 14, 2026-12-07).

The speaker encoder (``analysis/embeddings.py``) raises windows quieter than -30 dBFS to that level and leaves
louder ones as they are, and resemblyzer's LSTM reads linear mel power: a speaker heard louder is embedded
elsewhere. For up to 12 dev clips over 4 s of each voice source: each clip at peak -6 dBFS, then 6, 12 and 18 dB
down, embedded as the pipeline does (1.5 s windows every 0.75 s); the mean cosine distance of each window's
embedding from the same window at the first level.

    python window_shift.py ../shared/data shift.txt      (about 30 s)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from dramapic.analysis.embeddings import SpeakerEncoder
from dramapic.lab.timeline_mixer import read_clip

DOWN_DB = (-6, -12, -18)


def main(data: Path, out: Path) -> None:
    manifest = pd.concat([pd.read_csv(data / "manifest.csv"), pd.read_csv(data / "manifest_extra.csv")])
    voice = manifest[(manifest.label == "voice") & (manifest.split == "dev") & (manifest.duration_s > 4)]
    picked = pd.concat([g.sample(min(len(g), 12), random_state=0) for _, g in voice.groupby("source")])
    encoder = SpeakerEncoder()
    rows: dict[str, list[tuple[float, dict[int, float]]]] = {}
    for _, clip in picked.iterrows():
        audio = read_clip(data / clip.path)
        audio = audio / np.max(np.abs(audio)) * 0.5  # peak -6 dBFS
        rms_db = 20 * np.log10(np.sqrt(np.mean(audio ** 2)))
        embedded = {}
        for down in (0, *DOWN_DB):
            x = (audio * 10 ** (down / 20)).astype(np.float32)
            _, embedded[down] = encoder.embed_windows(x, sample_rate=16000, regions=[(0.0, len(x) / 16000)],
                                                      window_s=1.5, hop_s=0.75)
        shift = {d: float(np.mean(1 - np.sum(embedded[0] * embedded[d], axis=1))) for d in DOWN_DB}
        rows.setdefault(clip.source, []).append((float(rms_db), shift))
    lines = ["source  clips  rms dBFS at peak -6  | cosine distance moved: " + "  ".join(f"{d} dB" for d in DOWN_DB)]
    for source, found in rows.items():
        lines.append(f"{source}  {len(found)}  {np.mean([r for r, _ in found]):.1f}  | "
                     + "  ".join(f"{np.mean([s[d] for _, s in found]):.3f}" for d in DOWN_DB))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
