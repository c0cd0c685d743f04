"""Speaker counts of the 28 cross-corpus timelines analysed at their own level, 10 dB down and 6 dB up, with the
shipped models (issue 14, 2026-12-07). Imports whichever dramapic is first on ``PYTHONPATH`` (the package, or a
copy with a patch applied).

    python level_counts.py WORK/timelines counts.txt     (about 9 min)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from dramapic import media
from dramapic.analysis.analyze import analyze_audio
from dramapic.config import load_pipeline

GAINS_DB = (0.0, -10.0, 6.0)


def main(root: Path, out: Path) -> None:
    pipeline = load_pipeline(None)
    lines = ["timeline | true speakers | found at " + " / ".join(f"{g:+g} dB" for g in GAINS_DB)
             + " | female s at each"]
    exact = np.zeros(len(GAINS_DB), int)
    same = np.zeros(len(GAINS_DB), int)
    paths = sorted(root.glob("*/*.opus"))
    for path in paths:
        truth = len(json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))["speakers"])
        audio = media.decode_audio(media.probe(path))
        counts, female = [], []
        for gain_db in GAINS_DB:
            x = np.clip(audio * np.float32(10 ** (gain_db / 20)), -1, 1).astype(np.float32)
            segments, speakers, _ = analyze_audio(x, pipeline)
            counts.append(len(speakers or ()))
            female.append(sum(s.end - s.start for s in segments if s.gender == "female"))
        exact += np.array(counts) == truth
        same += np.array(counts) == counts[0]
        lines.append(f"{path.parent.name}/{path.stem} | {truth} | " + " / ".join(map(str, counts)) + " | "
                     + " / ".join(f"{f:.1f}" for f in female))
        print(lines[-1], flush=True)
    lines.append(f"exact of {len(paths)}: " + " / ".join(map(str, exact))
                 + "; the same count as at its own level: " + " / ".join(map(str, same)))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(lines[-1])


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
