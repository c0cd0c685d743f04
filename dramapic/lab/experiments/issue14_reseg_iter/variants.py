"""Diarization variants for ``harness.py``: each returns an undo function."""
from __future__ import annotations

import numpy as np

import dramapic.analysis.diarization as diar
from dramapic.analysis.embeddings import l2


def base():
    return lambda: None


def _after_first_pass(second_pass):
    """Patch ``diar._diarize`` so that the product's first pass (clustering, then re-segmentation) is handed to
    ``second_pass(out, inputs, resegment)``; ``inputs`` are the first pass's own window inputs
    (:func:`_window_inputs`) and ``resegment(centroids)`` re-segments against given centroids, exactly as the
    product's refinement pass does. Calls with centroids (the refinement) are left alone. Returns the undo."""
    real = diar._diarize

    def wrapped(segments, times, embeddings, region, male_logits, options, gender_model, centroids=None,
                projection=None):
        def resegment(cent):
            return real(segments, times, embeddings, region, male_logits, options, gender_model, centroids=cent,
                        projection=projection)

        out = resegment(centroids)
        if centroids is not None:
            return out
        inputs = _window_inputs(segments, times, embeddings, region, male_logits, gender_model, projection)
        return second_pass(out, inputs, resegment, options, projection)

    diar._diarize = wrapped

    def undo():
        diar._diarize = real
    return undo


def _window_inputs(segments, times, embeddings, region, male_logits, gender_model, projection):
    """What ``_diarize`` clusters, computed as it computes it: the valid windows' (projected) embeddings x (n, d),
    the seconds of talk each stands for w (n,) and the calibrated female probability pf (n,)."""
    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    _, emb, reg, z = diar._valid(times, embeddings, region, male_logits)
    x = projection.transform(emb) if projection is not None else emb
    per_seg = np.bincount(reg, minlength=seg.shape[0])
    w = np.clip(seg[:, 1] - seg[:, 0], 0.0, None)[reg] / np.maximum(per_seg[reg], 1)
    cal_a, cal_b = gender_model.window_calibration
    return x, w, 1.0 / (1.0 + np.exp(cal_a * z + cal_b))


def _turn_rows(raw, k: int):
    """Per cluster of a pass's raw turns: talk seconds (k,), the window rows of its turns, and which won a turn."""
    talk = np.zeros(k)
    rows_of: list[list[np.ndarray]] = [[] for _ in range(k)]
    won = np.zeros(k, dtype=bool)
    for turns in raw:
        for a, b, c, rows in turns:
            talk[c] += b - a
            rows_of[c].append(np.asarray(rows, dtype=np.int64))
            won[c] = True
    return talk, rows_of, won


def _iterated(n_iter: int, *, pure_only: bool = False):
    """Re-segmentation iterated: centroids re-estimated from the windows of the turns each speaker won, then
    every segment re-segmented against them, ``n_iter`` passes in all (1 = the product)."""

    def second_pass(out, inputs, resegment, options, projection):
        x = inputs[0]
        for _ in range(n_iter - 1):
            _, cent, raw = out
            _, rows_of, won = _turn_rows(raw, cent.shape[0])
            new = []
            for c in np.flatnonzero(won):
                parts = [r[1:-1] if pure_only and len(r) > 2 else r for r in rows_of[c]]
                r = np.concatenate(parts)
                new.append(x[r].mean(axis=0) if len(r) else cent[c])
            out = resegment(l2(np.stack(new)))
        return out

    return _after_first_pass(second_pass)


def _turn_link(max_windows: int, *, fold: bool = True):
    """Second clustering pass with a must-link in time: the windows of each first-pass turn, in chunks of at most
    ``max_windows`` consecutive windows, start as one cluster each; then the product's constrained merge (same
    stopping distance, cannot-link) and share folding, and a re-segmentation against the new centroids."""
    import dramapic.analysis.clustering as C

    def second_pass(out, inputs, resegment, options, projection):
        x, w, pf = inputs
        if x.shape[0] < 2:
            return out
        x = np.asarray(x, dtype=np.float64)
        ids = np.full(x.shape[0], -1, dtype=np.int64)
        g = 0
        for turns in out[2]:
            for _, _, _, rows in turns:
                rows = np.asarray(rows, dtype=np.int64)
                for i in range(0, len(rows), max_windows):
                    ids[rows[i:i + max_windows]] = g
                    g += 1
        left = np.flatnonzero(ids < 0)
        ids[left] = g + np.arange(len(left))
        ids = np.unique(ids, return_inverse=True)[1]
        ids = C._constrained_merge(x, w, pf, ids, options, C.stopping_distance(options, projection),
                                   low=min(options.min_speakers, x.shape[0]))
        if fold:
            ids = C._fold_small(x, w, pf, ids, options)
        ids = np.unique(ids, return_inverse=True)[1]
        return resegment(l2(np.stack([x[ids == c].mean(axis=0) for c in range(int(ids.max()) + 1)])))

    return _after_first_pass(second_pass)


def _post_fold(*, keep_unique_gender: bool = True, seconds_floor_only: bool = False):
    """The share folding once more after the re-segmentation: a speaker whose talk in the turns it won is below
    ``max(min_speaker_s, min(min_speaker_share x the largest speaker's talk, max_small_speaker_s))`` loses its
    centroid (smallest first) and the recording is re-segmented against the others; with ``keep_unique_gender``
    a speaker of a confident gender no other speaker has stays (as in the clustering's folding).

    With ``seconds_floor_only`` the limit is the seconds floor alone, as the clustering used it (``min_speaker_s``
    shrunk on a short scene by ``short_recording_floors``): ``../issue14_post_floor``'s ``postfloor``, the rule the
    product ships as ``diarization._fold_after_resegmentation``."""
    from dramapic.analysis.clustering import short_recording_floors

    def second_pass(out, inputs, resegment, options, projection):
        _, w, pf = inputs
        floor = short_recording_floors(options, total_talk_s=float(np.sum(w))).min_speaker_s
        conf = options.gender_link_confidence
        while True:
            _, cent, raw = out
            talk, rows_of, won = _turn_rows(raw, cent.shape[0])
            alive = np.flatnonzero(won if seconds_floor_only else talk > 0)
            if len(alive) <= max(1, options.min_speakers):
                return out
            if seconds_floor_only:
                limit, order = floor, np.argsort(talk[alive], kind="stable")
            else:
                limit = max(options.min_speaker_s, min(options.min_speaker_share * talk[alive].max(),
                                                       options.max_small_speaker_s))
                order = np.argsort(talk[alive])
            small = [c for c in alive[order] if talk[c] < limit]
            if keep_unique_gender:
                sides = {}
                for c in alive:
                    r = np.concatenate(rows_of[c]) if rows_of[c] else np.zeros(0, np.int64)
                    m = float(pf[r].mean()) if len(r) else 0.5
                    sides[c] = 1 if m >= conf else (-1 if m <= 1 - conf else 0)
                small = [c for c in small
                         if not (sides[c] != 0 and all(sides[o] != sides[c] for o in alive if o != c))]
            if not small:
                return out
            out = resegment(cent[[c for c in alive if c != small[0]]])

    return _after_first_pass(second_pass)


VARIANTS = {
    "postfold": lambda: _post_fold(),
    "postfold_all": lambda: _post_fold(keep_unique_gender=False),
    "turnlink4": lambda: _turn_link(4),
    "turnlink8": lambda: _turn_link(8),
    "turnlink2": lambda: _turn_link(2),
    "base": base,
    "iter2": lambda: _iterated(2),
    "iter3": lambda: _iterated(3),
    "iter2pure": lambda: _iterated(2, pure_only=True),
}
