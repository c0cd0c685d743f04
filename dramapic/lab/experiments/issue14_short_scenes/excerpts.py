"""Scene clips: short excerpts of the cross-corpus timelines and of the dev mixes, their references cut alike.

    python excerpts.py WORK/timelines ../shared/data/dev_mixes OUT 20,30 0.2,0.6

Each timeline of D seconds gives one excerpt per length L and position P, from P x (D - L) on:
``OUT/work/timelines/<folder>/<name>_<L>s<P>.*`` (labels, RTTM, the audio re-encoded at 64 kbit/s Opus, and a link
to the source's recipe, so the protocol holds out the same sources) and ``OUT/dev_mixes/<name>_<L>s<P>.*``.
Point a data folder's ``dev_mixes`` at ``OUT/dev_mixes`` (links to everything else) and run
``../issue14_gender_fallback/harness.py DATA OUT/work CACHE RESULTS SEEDS VARIANTS`` on it.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from dramapic import media
from dramapic.lab.scenes import cut_rows, cut_rttm


def cut(labels: Path, out_dir: Path, start: float, length: float, tag: str) -> None:
    """Write the excerpt ``[start, start + length)`` of the timeline ``labels`` names, as ``<name>_<tag>``: labels and
    RTTM cut by the product's own :mod:`dramapic.lab.scenes`, the audio cut by ffmpeg (``dramapic eval --scenes``
    decodes, slices and encodes again instead)."""
    name = labels.name[: -len(".labels.csv")]
    new = f"{name}_{tag}"
    with open(labels, newline="", encoding="utf-8") as handle:
        rows = cut_rows(list(csv.DictReader(handle)), start=start, length=length)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / f"{new}.labels.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["start", "end", "label", "gender", "speaker"])
        writer.writeheader()
        writer.writerows(rows)
    lines = cut_rttm(labels.with_name(f"{name}.rttm").read_text(encoding="utf-8").splitlines(), name=new,
                     start=start, length=length)
    (out_dir / f"{new}.rttm").write_text("".join(f"{ln}\n" for ln in lines), encoding="utf-8")
    recipe = out_dir / f"{new}.json"
    if not recipe.exists():
        os.symlink(labels.with_name(f"{name}.json").resolve(), recipe)
    subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                    "-i", str(labels.with_name(f"{name}.opus")), "-ss", f"{start:.3f}", "-t", f"{length:.3f}",
                    "-ac", "1", "-ar", "16000", "-c:a", "libopus", "-b:a", "64k", str(out_dir / f"{new}.opus")],
                   check=True)


def main(argv: list[str]) -> None:
    timelines, dev, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    lengths = [float(x) for x in argv[3].split(",")]
    positions = [float(x) for x in argv[4].split(",")]
    todo = [(p, out / "work" / "timelines" / p.parent.name) for p in sorted(timelines.glob("*/*.labels.csv"))]
    todo += [(p, out / "dev_mixes") for p in sorted(dev.glob("*.labels.csv"))]
    for labels, out_dir in todo:
        with open(labels, newline="", encoding="utf-8") as handle:
            duration = max(float(row["end"]) for row in csv.DictReader(handle))
        for length in lengths:
            for position in positions:
                start = round(position * (duration - length), 2)
                cut(labels, out_dir, start, length, f"{int(length)}s{int(position * 100):02d}")
        print(labels.name, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
