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
    real_stop, real_fold = diarization.stopping_distance, clustering._fold_small

    def stopping_distance(options, projection):
        CALIBRATION["ab"] = tuple(float(v) for v in projection.calibration)
        return real_stop(options, projection)

    def fold_small(x, w, pf, ids, options, *, fold_threshold=None):
        # the product's _fold_small as it was before the gate (2026-12-04), with this gate where the target is
        # chosen; the product's own gate (fold_threshold) is ignored, so foldgate00 stays the ungated product
        ids = np.unique(ids, return_inverse=True)[1]
        k = int(ids.max()) + 1
        sums, cnt, pfs, talk = clustering._cluster_stats(x, w, pf, ids, k)
        alive = np.ones(k, dtype=bool)
        kept = np.zeros(k, dtype=bool)
        label = np.arange(k)
        while alive.sum() > max(1, options.min_speakers):
            idx = np.flatnonzero(alive)
            limit = max(options.min_speaker_s, min(options.min_speaker_share * talk[idx].max(),
                                                   options.max_small_speaker_s))
            cand = idx[~kept[idx]]
            if len(cand) == 0:
                break
            s = cand[int(np.argmin(talk[cand]))]
            if talk[s] >= limit:
                break
            others = idx[idx != s]
            sims = clustering.l2(sums[others]) @ clustering.l2(sums[s])
            bad = clustering._refused(pfs, cnt, talk, others, s, options)
            if bad.all():
                kept[s] = True
                continue
            sims[bad] = -np.inf
            t = others[int(np.argmax(sims))]
            p = _p_same(sums[s] / cnt[s], sums[t] / cnt[t])
            # the absolute floor (min_speaker_s) is never gated: a few seconds are not a speaker either way
            if p < gate and talk[s] >= options.min_speaker_s:
                LOG.append({"talk": float(talk[s]), "into": float(talk[t]), "p_same": p, "kept": True})
                kept[s] = True
                continue
            LOG.append({"talk": float(talk[s]), "into": float(talk[t]), "p_same": p, "kept": False})
            clustering._fold_into(t, s, stats=(sums, cnt, pfs, talk), alive=alive, label=label)
        return label[ids]

    diarization.stopping_distance = stopping_distance
    clustering._fold_small = fold_small

    def undo():
        diarization.stopping_distance = real_stop
        clustering._fold_small = real_fold
    return undo


variants.VARIANTS.update({f"foldgate{round(g * 100):02d}": (lambda g=g: fold_gate(g))
                          for g in (0.0, 0.02, 0.05, 0.1, 0.15, 0.2)})

if __name__ == "__main__":
    harness.main(sys.argv[1:])
