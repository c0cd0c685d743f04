"""A similarity gate on the share folding (issue 14), judged with ``../issue14_gender_fallback/harness.py``.

Some of the under-splits left with speaker-lda v3 are the share folding merging a real speaker with little talk into
another (mixed_02, mixed_04: ``RESULTS.md``). ``foldgateNN`` folds a small cluster into
its most similar allowed neighbour only where the projection's own calibration gives the pair (average linkage, as
the merging uses) P(same speaker) >= 0.NN; otherwise the small cluster stays a speaker. Everything else is the
product's code.

    python run.py DATA WORK CACHE OUT SEEDS foldgate05 foldgate05+speakers.min_speaker_share=0.45 ...

(the harness's arguments; never two at once on two cores).
"""
from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "issue14_gender_fallback"))

import harness
import variants

from dramapic.analysis import (
    clustering,
    diarization,
)

CALIBRATION: dict[str, tuple[float, float]] = {}
LOG: list[dict] = []


def _p_same(mean_a: np.ndarray, mean_b: np.ndarray) -> float:
    a, b = CALIBRATION["ab"]
    distance = 1.0 - float(mean_a @ mean_b)
    return 1.0 / (1.0 + math.exp(-(a + b * distance)))


def fold_gate(gate: float):
    """The product's own gate (``clustering.fold_distance``) at P(same) ``gate`` whatever the pipeline says (0: the
    folding as it was before the gate), every fold logged with its P(same) for ``who_went_where.py``."""
    real_distance, real_fold_into = diarization.fold_distance, clustering._fold_into

    def fold_distance(options, projection):
        CALIBRATION["ab"] = tuple(float(v) for v in projection.calibration)
        return real_distance(dataclasses.replace(options, fold_same_probability=gate), projection)

    def fold_into(t, s, *, stats, alive, label):
        sums, cnt, _, talk = stats
        LOG.append({"talk": float(talk[s]), "into": float(talk[t]),
                    "p_same": _p_same(sums[s] / cnt[s], sums[t] / cnt[t])})
        real_fold_into(t, s, stats=stats, alive=alive, label=label)

    diarization.fold_distance = fold_distance
    clustering._fold_into = fold_into

    def undo():
        diarization.fold_distance = real_distance
        clustering._fold_into = real_fold_into
    return undo


variants.VARIANTS.update({f"foldgate{round(g * 100):02d}": (lambda g=g: fold_gate(g))
                          for g in (0.0, 0.02, 0.05, 0.1, 0.15, 0.2)})

if __name__ == "__main__":
    harness.main(sys.argv[1:])
