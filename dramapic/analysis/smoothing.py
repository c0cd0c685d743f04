"""Frame scores to segments: Viterbi decoding with a switching penalty, then minimum durations.

A plain per-frame argmax flickers inside words and across short pauses. A Viterbi path over the four
stage-1 classes with a cost for every change of class keeps a label until the evidence against it
outweighs the cost; minimum durations then absorb what is still too short to be a real event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EPS = 1e-6


@dataclass(frozen=True)
class FrameRun:
    """A run of frames with one label: frames ``[start, end)`` of the grid."""

    start: int
    end: int
    label: int


def viterbi_labels(probabilities: np.ndarray, *, switch_penalty: float) -> np.ndarray:
    """Most likely label path under a model whose every change of label costs ``switch_penalty`` nats.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n_frames, n_labels)
        Per-frame class probabilities (rows need not sum to one).
    switch_penalty : float
        Log-cost of changing label between two consecutive frames; larger means fewer, longer segments.

    Returns
    -------
    np.ndarray, shape (n_frames,)
        Label index per frame.
    """
    return best_path(np.log(np.clip(probabilities, _EPS, None)), switch_penalty=switch_penalty)


def best_path(scores: np.ndarray, *, switch_penalty: float) -> np.ndarray:
    """Best state path through additive ``scores`` (shape (n_steps, n_states), e.g. log-probabilities or
    similarities) when every change of state between two steps costs ``switch_penalty``; shape (n_steps,)."""
    scores = np.asarray(scores, dtype=np.float64)
    n_steps, n_states = scores.shape
    if n_steps == 0:
        return np.zeros(0, dtype=np.int64)
    backpointer = np.empty((n_steps, n_states), dtype=np.int64)
    total = scores[0].copy()
    states = np.arange(n_states)
    for step in range(1, n_steps):
        best = int(np.argmax(total))
        switched = total[best] - switch_penalty
        stay = total >= switched
        backpointer[step] = np.where(stay, states, best)
        total = np.where(stay, total, switched) + scores[step]
    path = np.empty(n_steps, dtype=np.int64)
    path[-1] = int(np.argmax(total))
    for step in range(n_steps - 1, 0, -1):
        path[step - 1] = backpointer[step, path[step]]
    return path


def runs_of(labels: np.ndarray) -> list[FrameRun]:
    """Split a label path (shape (n_frames,)) into maximal runs of one label."""
    if labels.shape[0] == 0:
        return []
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [labels.shape[0]]])
    return [FrameRun(int(s), int(e), int(labels[s])) for s, e in zip(starts, ends)]


def enforce_min_durations(labels: np.ndarray, probabilities: np.ndarray, *, min_frames: np.ndarray) -> np.ndarray:
    """Relabel runs shorter than their label's minimum into the neighbouring label that fits them best.

    The shortest offending run is absorbed first, so that merging never creates a new short run unseen.

    Parameters
    ----------
    labels : np.ndarray, shape (n_frames,)
    probabilities : np.ndarray, shape (n_frames, n_labels)
    min_frames : np.ndarray, shape (n_labels,)
        Minimum run length per label, in frames.

    Returns
    -------
    np.ndarray, shape (n_frames,)
    """
    labels = labels.copy()
    while True:
        runs = runs_of(labels)
        if len(runs) < 2:
            return labels
        short = [i for i, run in enumerate(runs) if run.end - run.start < min_frames[run.label]]
        if not short:
            return labels
        index = min(short, key=lambda i: runs[i].end - runs[i].start)
        run = runs[index]
        neighbours = [runs[j].label for j in (index - 1, index + 1) if 0 <= j < len(runs)]
        fit = {lab: float(probabilities[run.start:run.end, lab].mean()) for lab in neighbours}
        labels[run.start:run.end] = max(fit, key=fit.get)


def smooth_labels(probabilities: np.ndarray, *, switch_penalty: float, min_frames: np.ndarray) -> np.ndarray:
    """Viterbi path followed by minimum durations; shapes as in :func:`viterbi_labels`."""
    path = viterbi_labels(probabilities, switch_penalty=switch_penalty)
    return enforce_min_durations(path, probabilities, min_frames=min_frames)
