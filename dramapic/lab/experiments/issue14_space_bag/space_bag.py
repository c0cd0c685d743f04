"""Two speaker spaces as one: the product's regularised LDA (speaker-lda v3) and the emotion-aware space of
``../issue14_emotion_scatter`` (variant ``emo10o32``: gamma 0.1, S_emo kept out of the top-32 read-speech identity
directions), each L2-normalised, weighted sqrt(alpha) / sqrt(1 - alpha) and concatenated.

The cosine similarity of two such vectors is ``alpha * cos_v3 + (1 - alpha) * cos_emo``, and the mean of unit vectors
keeps that form, so average linkage on cluster sums (the product's constrained merge) clusters on the weighted mean
of the two spaces' average-linkage similarities with no code change. The two spaces err apart (v3 keeps the dev
mixes' same-gender LibriSpeech voices apart, the emotion space keeps acted speakers together across corpora); the
question is whether a mix keeps both. The stopping distance is calibrated in the joint space exactly as the product
calibrates its own (``train_speakers.calibrate_threshold``: held-out training speakers, 5 fold splits, both LDAs
refitted per fold).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "issue14_emotion_scatter"))
from emotion_scatter import fit_lda_emotion

import dramapic.lab.train_speakers as ts
from dramapic.analysis.diarization import SpeakerProjection
from dramapic.analysis.embeddings import l2

GAMMA, ORTHOGONAL = 0.1, 32


class BaggedProjection(SpeakerProjection):
    """``[sqrt(alpha) * l2(P_v3 x), sqrt(1 - alpha) * l2(P_emo x)]``; unit norm by construction."""

    def __init__(self, first: SpeakerProjection, second_components: np.ndarray, alpha: float, *,
                 calibration=None, cluster_threshold=None):
        super().__init__(mean=first._mean, components=first._components, cluster_threshold=cluster_threshold,
                         calibration=calibration)
        self.first, self.second, self.alpha = first, np.asarray(second_components, np.float64), float(alpha)

    @property
    def dim(self) -> int:
        return self.first.dim + self.second.shape[1]

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(embeddings, np.float64))
        return _joint(x, self.first._mean, self.first._components, self.second, self.alpha)


def _joint(x, mean, c1, c2, alpha):
    empty = ~np.any(x != 0, axis=1)
    out = np.hstack([np.sqrt(alpha) * l2((x - mean) @ c1), np.sqrt(1.0 - alpha) * l2(x @ c2)])
    out[empty] = 0.0
    return out


class _Pair(tuple):
    """The two LDAs of one calibration fold, passed through ``calibrate_threshold`` as its ``components``."""


def fit_bag(table, excluded, *, seed: int, copies: int, alpha: float, first: SpeakerProjection,
            second_components: np.ndarray) -> BaggedProjection:
    """Calibrate the joint space of two already fitted projections on held-out training speakers (the rows and
    the random draws are those of ``train_speakers.fit_projection``: ``train_speakers.projection_rows``)."""
    rows = ts.projection_rows(table, excluded=excluded, clean_repeats=copies)
    x = table["emb"][rows].astype(np.float64)
    speaker = table["speaker"][rows]
    real_fit, real_project = ts.fit_lda, ts._project

    def fit_both(xf, sp, dim, **kw):
        m1, c1 = real_fit(xf, sp, dim, **kw)
        _, c2 = fit_lda_emotion(xf, sp, dim, gamma=GAMMA, orthogonal=ORTHOGONAL)
        return m1, _Pair((c1, c2))

    def project(xp, mean, components):
        if isinstance(components, _Pair):
            return _joint(np.asarray(xp, np.float64), mean, components[0], components[1], alpha)
        return real_project(xp, mean, components)

    ts.fit_lda, ts._project = fit_both, project
    try:
        calibration = ts.calibrate_threshold(x, speaker, table["clip"][rows].astype(np.int64),
                                             table["t0"][rows].astype(np.float64), table["source"][rows],
                                             table["gender"][rows], first.dim, np.random.default_rng(seed),
                                             repeats=ts.CALIBRATION_REPEATS)
    finally:
        ts.fit_lda, ts._project = real_fit, real_project
    return BaggedProjection(first, second_components, alpha,
                            calibration=np.asarray([calibration["a"], calibration["b"]]),
                            cluster_threshold=calibration["cluster_threshold"])
