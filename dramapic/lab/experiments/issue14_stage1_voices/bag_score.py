"""Stage 1 as a bag of independently trained Pic-ensembles (the demucs idea: average the bag's probabilities), scored
like ``score_voices.py`` on the cross-corpus timelines and the dev mixes.

    python bag_score.py ../shared/data WORK/timelines OUT.json NAME MODELS_DIR[,MODELS_DIR...] SPEC ...

Every MODELS_DIR holds a full set of stage-1 files (``train_voices.py``'s fits, e.g. ROOT/none/models and
ROOT/none-s1/models: the shipped recipe at seeds 0 and 1); the pipeline's detectors, song guard and smoothing are
the shipped ones, applied to the mean of the bag's stage-1 probabilities. Each bag member alone is scored too
(``bag[k]``), so the table shows what averaging adds over each fit. SPEC as in ``score_voices.py``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from dramapic import media
from dramapic.analysis import detectors
from dramapic.analysis.stage1 import Stage1Ensemble, stage1_frame_labels
from dramapic.config import load_pipeline
from dramapic.lab.evaluate import aggregate, score_result
from dramapic.lab.reference import load_reference
from dramapic.lab.variants import _segments_from_frames
from dramapic.models import load_manifest
from dramapic.result import SAMPLE_RATE, SCHEMA

from score_voices import spec_files  # this folder's sibling script


def main(argv: list[str]) -> None:
    data, timelines, out, name = Path(argv[0]), Path(argv[1]), Path(argv[2]), argv[3]
    roots = [Path(p) for p in argv[4].split(",")]
    cfg = load_pipeline(None).stage1
    bag = [Stage1Ensemble.from_manifest(load_manifest(r), members=cfg.members, stacker=cfg.stacker,
                                        members_mean_share=cfg.members_mean_share) for r in roots]
    results = json.loads(out.read_text()) if out.exists() else {}
    for spec in argv[5:]:
        folder, pattern = spec_files(data, timelines, spec)
        scores: dict[str, list] = {}
        for labels_csv in sorted(folder.glob(pattern)):
            # the audio beside the labels, as evaluate_variants finds it
            audio = media.decode_audio(media.probe(labels_csv.with_name(labels_csv.name.replace(".labels.csv", ".opus"))))
            duration = len(audio) / SAMPLE_RATE
            reference = load_reference(labels_csv)
            det = detectors.run_detectors(audio)
            probs = {f"bag[{k}]": e.frame_probabilities(audio, det) for k, e in enumerate(bag)}
            probs["bag"] = np.mean(list(probs.values()), axis=0)
            for variant, p in probs.items():
                _, path = stage1_frame_labels(p, det, settings=cfg)
                result = {"schema": SCHEMA, "source": {"duration": duration},
                          "segments": _segments_from_frames(path, None, duration)}
                scores.setdefault(variant, []).append(score_result(result, reference))
        report = {v: {"accuracy": (agg := aggregate(s)).accuracy, "classes": agg.class_metrics,
                      "confusion": agg.confusion_matrix.tolist(),
                      "files": {f.name: {"accuracy": f.accuracy} for f in agg.files}} for v, s in scores.items()}
        results.setdefault(name, {})[spec] = report
        print(f"{name:12s} {spec:28s} " + "  ".join(f"{v} {r['accuracy']:.4f}" for v, r in report.items())
              + f"  F1 voice {report['bag']['classes']['voice']['f1']:.4f}", flush=True)
        out.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main(sys.argv[1:])
