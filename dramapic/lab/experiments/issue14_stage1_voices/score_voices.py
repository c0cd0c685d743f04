"""Stage 1 (ensemble and every member alone) on chosen cross-corpus timelines, with whatever ``dramapic`` is
importable -- run it with ``PYTHONPATH=ROOT/VARIANT`` to score one of ``train_voices.py``'s fits.

    PYTHONPATH=ROOT/nocv python score_voices.py ../shared/data WORK/timelines OUT.json nocv cv mixed:mixed_02

A SPEC is a timeline folder (every ``*.labels.csv`` in it), ``folder:stem`` (one timeline) or ``dev_mixes``.
Results go into OUT.json under ``VARIANT -> SPEC``: the product's stage-1 report per variant (accuracy over
non-silent frames outside the 0.25 s collar, class F1, confusion, per-file accuracy), as
``dramapic eval --mixes --variants`` prints it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import dramapic
from dramapic.config import load_pipeline
from dramapic.lab.variants import evaluate_variants


def spec_files(data: Path, timelines: Path, spec: str) -> tuple[Path, str]:
    """The folder and glob pattern of a SPEC: ``dev_mixes``, a timeline folder, or ``folder:stem``."""
    if spec == "dev_mixes":
        return data / "dev_mixes", "devmix_*.labels.csv"
    name, _, stem = spec.partition(":")
    return timelines / name, f"{stem or '*'}.labels.csv"


def main(argv: list[str]) -> None:
    data, timelines, out, variant = Path(argv[0]), Path(argv[1]), Path(argv[2]), argv[3]
    print("dramapic from", Path(dramapic.__file__).parent, flush=True)
    pipeline = load_pipeline(None)
    results = json.loads(out.read_text()) if out.exists() else {}
    for spec in argv[4:]:
        folder, pattern = spec_files(data, timelines, spec)
        report = evaluate_variants(folder, pipeline, gender=False, pattern=pattern).to_dict()["stage1"]
        results.setdefault(variant, {})[spec] = report
        best = max((k for k in report if k.startswith("stage1-")), key=lambda k: report[k]["accuracy"])
        print(f"{variant:10s} {spec:18s} ensemble {report['ensemble']['accuracy']:.4f}  best member {best} "
              f"{report[best]['accuracy']:.4f}  F1 voice {report['ensemble']['classes']['voice']['f1']:.4f}", flush=True)
        out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
