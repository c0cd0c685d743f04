"""Diarization variants for ``harness.py``: each returns an undo function."""
from __future__ import annotations

import numpy as np

import dramapic.analysis.diarization as diar
from dramapic.analysis.embeddings import l2


def base():
    return lambda: None


def _iterated(n_iter: int, *, pure_only: bool = False):
    """Re-segmentation iterated: centroids re-estimated from the windows of the turns each speaker won, then
    every segment re-segmented against them, ``n_iter`` passes in all (1 = the product)."""
    real = diar._diarize

    def wrapped(segments, times, embeddings, region, male_logits, options, gender_model, centroids=None,
                projection=None):
        out = real(segments, times, embeddings, region, male_logits, options, gender_model, centroids=centroids,
                   projection=projection)
        if centroids is not None:
            return out
        t, emb, reg, z = diar._valid(times, embeddings, region, male_logits)
        x = projection.transform(emb) if projection is not None else emb
        for _ in range(n_iter - 1):
            _, cent, raw = out
            rows_of: dict[int, list] = {}
            for turns in raw:
                for a, b, c, rows in turns:
                    if pure_only and len(rows) > 2:
                        rows = rows[1:-1]
                    rows_of.setdefault(c, []).append(rows)
            cs = sorted(rows_of)
            new = []
            for c in cs:
                r = np.concatenate(rows_of[c]).astype(np.int64)
                new.append(x[r].mean(axis=0) if len(r) else cent[c])
            new = l2(np.stack(new))
            out = real(segments, times, embeddings, region, male_logits, options, gender_model, centroids=new,
                       projection=projection)
        return out

    diar._diarize = wrapped

    def undo():
        diar._diarize = real
    return undo


def _turn_link(max_windows: int, *, fold: bool = True):
    """Second clustering pass with a must-link in time: the windows of each first-pass turn, in chunks of at most
    ``max_windows`` consecutive windows, start as one cluster each; then the product's constrained merge (same
    stopping distance, cannot-link) and share folding, and a re-segmentation against the new centroids."""
    import dramapic.analysis.clustering as C

    real = diar._diarize

    def wrapped(segments, times, embeddings, region, male_logits, options, gender_model, centroids=None,
                projection=None):
        out = real(segments, times, embeddings, region, male_logits, options, gender_model, centroids=centroids,
                   projection=projection)
        if centroids is not None:
            return out
        seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
        t, emb, reg, z = diar._valid(times, embeddings, region, male_logits)
        if emb.shape[0] < 2:
            return out
        x = projection.transform(emb) if projection is not None else emb
        x = np.asarray(x, dtype=np.float64)
        per_seg = np.bincount(reg, minlength=seg.shape[0])
        seg_dur = np.clip(seg[:, 1] - seg[:, 0], 0.0, None)
        w = seg_dur[reg] / per_seg[reg]
        cal_a, cal_b = gender_model.window_calibration
        pf = 1.0 / (1.0 + np.exp(cal_a * z + cal_b))
        ids = np.full(x.shape[0], -1, dtype=np.int64)
        g = 0
        for turns in out[2]:
            for a, b, c, rows in turns:
                rows = np.asarray(rows, dtype=np.int64)
                for i in range(0, len(rows), max_windows):
                    ids[rows[i:i + max_windows]] = g
                    g += 1
        left = np.flatnonzero(ids < 0)
        ids[left] = g + np.arange(len(left))
        ids = np.unique(ids, return_inverse=True)[1]
        threshold = C.stopping_distance(options, projection)
        low = min(options.min_speakers, x.shape[0])
        ids = C._constrained_merge(x, w, pf, ids, options, threshold, low=low)
        if fold:
            ids = C._fold_small(x, w, pf, ids, options)
        ids = np.unique(ids, return_inverse=True)[1]
        new = l2(np.stack([x[ids == c].mean(axis=0) for c in range(int(ids.max()) + 1)]))
        return real(segments, times, embeddings, region, male_logits, options, gender_model, centroids=new,
                    projection=projection)

    diar._diarize = wrapped

    def undo():
        diar._diarize = real
    return undo


def _post_fold(*, keep_unique_gender: bool = True):
    """The share folding once more after the re-segmentation: a speaker whose talk in the turns it won is below
    ``max(min_speaker_s, min(min_speaker_share x the largest speaker's talk, max_small_speaker_s))`` loses its
    centroid (smallest first) and the recording is re-segmented against the others; with ``keep_unique_gender``
    a speaker of a confident gender no other speaker has stays (as in the clustering's folding)."""
    real = diar._diarize

    def wrapped(segments, times, embeddings, region, male_logits, options, gender_model, centroids=None,
                projection=None):
        out = real(segments, times, embeddings, region, male_logits, options, gender_model, centroids=centroids,
                   projection=projection)
        if centroids is not None:
            return out
        cal_a, cal_b = gender_model.window_calibration
        t, emb, reg, z = diar._valid(times, embeddings, region, male_logits)
        pf = 1.0 / (1.0 + np.exp(cal_a * z + cal_b))
        while True:
            _, cent, raw = out
            k = cent.shape[0]
            talk = np.zeros(k)
            rows_of = [[] for _ in range(k)]
            for turns in raw:
                for a, b, c, rows in turns:
                    talk[c] += b - a
                    rows_of[c].append(np.asarray(rows, dtype=np.int64))
            alive = np.flatnonzero(talk > 0)
            if len(alive) <= max(1, options.min_speakers):
                return out
            limit = max(options.min_speaker_s, min(options.min_speaker_share * talk[alive].max(),
                                                   options.max_small_speaker_s))
            small = [c for c in alive[np.argsort(talk[alive])] if talk[c] < limit]
            if keep_unique_gender:
                conf = options.gender_link_confidence

                def side(c):
                    r = np.concatenate(rows_of[c]) if rows_of[c] else np.zeros(0, np.int64)
                    m = float(pf[r].mean()) if len(r) else 0.5
                    return 1 if m >= conf else (-1 if m <= 1 - conf else 0)
                sides = {c: side(c) for c in alive}
                small = [c for c in small if not (sides[c] != 0 and all(sides[o] != sides[c] for o in alive
                                                                         if o != c))]
            if not small:
                return out
            drop = small[0]
            keep = [c for c in alive if c != drop]
            out = real(segments, times, embeddings, region, male_logits, options, gender_model,
                       centroids=cent[keep], projection=projection)

    diar._diarize = wrapped

    def undo():
        diar._diarize = real
    return undo


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
