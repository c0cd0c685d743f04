"""Diarization settings re-checked after YAMNet became exact on every CPU (issue 14), from product runs only.

Each variant is one ``dramapic eval --cross-corpus`` run with a copy of ``pipelines/default.yaml`` (one or two
``speakers:`` values changed) writing ``xc_NAME.json``; ``run.sh`` makes them. This script prints, per variant,
the held-out figures (mean over the six folders of the pooled folder DER, counts exact over the 28 timelines), the
dev mixes, and a leave-one-folder-out estimate: for each folder, the variant chosen on the other five (lowest mean
DER among those whose dev mixes stay within the issue's "no worse than at issue time", DER <= 0.150 and >= 14 of 20
counts) is scored on the held-out folder.

    python lofo.py RUN_DIR [VARIANT ...]     # only these variants (default: every xc_*.json)
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

DEV_DER_MAX, DEV_COUNT_MIN = 0.150, 14


def load(run_dir: Path) -> dict[str, dict]:
    out = {}
    for path in sorted(run_dir.glob("xc_*.json")):
        data = json.loads(path.read_text())
        by_folder = defaultdict(list)
        for f in data["files"]:
            by_folder[f["folder"]].append(f)
        sets = {s["folder"]: s for s in data["summary"] if s["folder"]}
        out[path.stem[3:]] = {"sets": sets, "files": by_folder}
    return out


def figures(variant: dict, folders: list[str]) -> tuple[float, int, int]:
    der = sum(variant["sets"][f]["der"] for f in folders) / len(folders)
    exact = sum(f["speaker_count_error"] == 0 for folder in folders for f in variant["files"][folder])
    total = sum(len(variant["files"][folder]) for folder in folders)
    return der, exact, total


def main(run_dir: Path, only: list[str]) -> None:
    variants = load(run_dir)
    if only:
        variants = {name: v for name, v in variants.items() if name in only}
    folders = sorted(f for f in next(iter(variants.values()))["sets"] if f != "dev_mixes")
    print(f"{'variant':<16}{'XC DER':>8}{'XC count':>10}{'dev DER':>9}{'dev count':>10}  per folder DER (count)")
    feasible = {}
    for name, v in variants.items():
        der, exact, total = figures(v, folders)
        dev_der, dev_exact, dev_total = figures(v, ["dev_mixes"])
        feasible[name] = dev_der <= DEV_DER_MAX and dev_exact >= DEV_COUNT_MIN
        per = "  ".join(f"{f[:5]} {v['sets'][f]['der']:.3f} ({figures(v, [f])[1]}/{figures(v, [f])[2]})"
                        for f in folders)
        mark = "" if feasible[name] else " *dev"
        print(f"{name:<16}{der:>8.3f}{exact:>7}/{total:<2}{dev_der:>9.3f}{dev_exact:>7}/{dev_total:<2}  {per}{mark}")
    print("\nleave one folder out (choose on five folders by mean DER among dev-feasible variants, score the sixth):")
    ders, exacts, totals = [], 0, 0
    for held in folders:
        rest = [f for f in folders if f != held]
        chosen = min((n for n in variants if feasible[n]), key=lambda n: figures(variants[n], rest)[0])
        der, exact, total = figures(variants[chosen], [held])
        ders.append(der)
        exacts, totals = exacts + exact, totals + total
        print(f"  {held:<30} chosen {chosen:<16} DER {der:.3f}  count {exact}/{total}")
    print(f"  LOFO estimate: DER {sum(ders) / len(ders):.3f}, count {exacts}/{totals}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
