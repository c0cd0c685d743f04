"""Stage 1's minimum label durations judged across corpora (issue 13), beside the dev mixes.

The smoothing keeps every label run at least ``stage1.min_duration_s[label]`` long (voice 0.3 s, song 0.5 s, noise
0.5 s, silence 0.3 s since the first release, never re-chosen). This scores variants of those minima on the 28
cross-corpus timelines and the dev mixes with the product's own scorer, on ``../issue13_switch_penalty``'s in-process
memo (detectors and members run once per file; each variant costs the smoothing only).

    python grid.py DATA TIMELINES OUT.json base voice=0.2 noise=1.0 song=1.0+noise=1.0 ...

A variant is ``base`` or ``label=seconds[+label=seconds...]`` over the shipped minima.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

from dramapic.config import load_pipeline
from dramapic.lab.crosscorpus import timeline_folders
from dramapic.lab.variants import evaluate_variants

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("penalty_grid", HERE.parent / "issue13_switch_penalty" / "penalty_grid.py")
penalty_grid = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(penalty_grid)


def pipeline_for(base, variant: str):
    if variant == "base":
        return base
    minima = dict(base.stage1.min_duration_s)
    for part in variant.split("+"):
        label, seconds = part.split("=")
        minima[label] = float(seconds)
    return replace(base, stage1=replace(base.stage1, min_duration_s=minima))


def main(argv: list[str]) -> None:
    data, timelines, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    penalty_grid.install()
    base = load_pipeline(None)
    folders = {name: timelines / name for name in timeline_folders(timelines)}
    folders["dev_mixes"] = data / "dev_mixes"
    results = json.loads(out.read_text()) if out.exists() else {}
    for variant in argv[3:]:
        pipeline = pipeline_for(base, variant)
        rows = {}
        for name, folder in folders.items():
            pattern = "devmix_*.labels.csv" if name == "dev_mixes" else "*.labels.csv"
            report = evaluate_variants(folder, pipeline, gender=False, pattern=pattern).stage1
            rows[name] = {v: {"accuracy": rep.accuracy, "f1": {k: m["f1"] for k, m in rep.class_metrics.items()}}
                          for v, rep in report.items()}
            print(f"{variant:24s} {name:28s} ensemble {rows[name]['ensemble']['accuracy']:.4f}", flush=True)
        results[variant] = rows
        out.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main(sys.argv[1:])
