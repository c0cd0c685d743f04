"""The speech-trimmed copies of the cross-corpus timelines and the dev mixes (``dramapic.lab.speech_reference``),
with each timeline's reference voice seconds before and after: what the issue-14 record's tables were scored on.

    python trim_reference.py DATA SRC_TIMELINES DST_TIMELINES [DEV_MIXES DST_DEV_MIXES]

``dramapic eval --reference speech`` makes the same copies under ``--work`` and scores on them.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

from dramapic.lab.speech_reference import speech_reference, speech_reference_tree


def voice_seconds(labels_csv: Path) -> float:
    with open(labels_csv, newline="", encoding="utf-8") as handle:
        return sum(float(r["end"]) - float(r["start"]) for r in csv.DictReader(handle) if r["label"] == "voice")


def main(argv: list[str]) -> None:
    data, src, dst = map(Path, argv[:3])
    pairs = [(src, speech_reference_tree(src, data=data, out=dst))]
    if len(argv) > 3:
        pairs.append((Path(argv[3]), speech_reference(Path(argv[3]), data=data, out=Path(argv[4]))))
    for before_root, after_root in pairs:
        for after in sorted(after_root.glob("**/*.labels.csv")):
            before = before_root / after.relative_to(after_root)
            b, a = voice_seconds(before), voice_seconds(after)
            print(f"{after.name[:-11]:12s} voice {b:7.2f} s -> {a:7.2f} s ({a / b - 1:+.1%})", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
