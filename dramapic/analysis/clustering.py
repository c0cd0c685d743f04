"""Speaker clustering of diarization windows: how many speakers, and which window belongs to whom.

Two methods (``speakers.cluster_method``):

* ``"ahc"``: average-linkage agglomerative clustering on cosine distance, cut at the stopping distance, then
  clusters with less than ``min_speaker_s`` of talk merged into their nearest neighbour (the method of
  dramapic <= 0.x, kept bit for bit).
* ``"constrained"`` (default): the same average linkage, but finished on cluster sums so that a merge can be
  refused. Average linkage of L2-normalised vectors has a closed form at the cluster level: the mean cosine
  similarity of all window pairs across clusters ``a`` and ``b`` is ``<m_a, m_b>``, ``m`` the (unnormalised)
  mean of the windows. scipy builds the tree up to ``cluster_fine_threshold`` (pure sub-clusters, nothing
  refused below it); the rest is merged on sums with one row update per merge, where

  - **gender is a cannot-link constraint**: two clusters that each have at least ``gender_link_min_s`` of talk
    and mean female probabilities beyond ``gender_link_confidence`` on opposite sides never merge;
  - **small clusters are judged by share**, not only by seconds: a cluster is folded into its most similar
    allowed neighbour when its talk is below ``max(min_speaker_s, min(min_speaker_share x the largest cluster's
    talk, max_small_speaker_s))``. Looping a recording scales every cluster's talk alike, so the decision no
    longer flips when the same voices come back. A small cluster of a confident gender no other cluster has
    stays a speaker (a short female part among men), and so does one (above ``min_speaker_s``) that the
    calibration gives less than ``fold_same_probability`` of being its neighbour's speaker (a minor character
    is not the lead for talking less; :func:`fold_distance`).

The stopping distance is by default read off the projection's own calibration (:func:`stopping_distance`): the
distance at which same / different-speaker cluster pairs simulated from held-out *training* speakers
(:mod:`dramapic.lab.train_speakers`) are ``cluster_same_probability`` likely to be one speaker (0.25 with the
regularised speaker-lda v3, past its equal-odds point; chosen by the cross-corpus protocol, 5 of 6
leave-one-folder-out folds), not a distance tuned on the dev mixes. Figures: ``models/README.md``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ..config import SpeakersConfig
from ..errors import ConfigError
from .embeddings import l2

MAX_CLUSTER_WINDOWS = 3000
"""Above this many windows a seeded random subsample is clustered and every window assigned to the nearest
centroid of its clusters (the subsample's condensed distance matrix is the only quadratic object)."""


def stopping_distance(options: SpeakersConfig, projection: Any | None) -> float:
    """The average-linkage distance at which merging stops.

    Parameters
    ----------
    options : SpeakersConfig
        ``cluster_threshold`` wins when set; null means the distance at which the projection's calibrated
        P(same speaker) falls to ``cluster_same_probability``.
    projection : SpeakerProjection or None
        The space the windows are clustered in.

    Returns
    -------
    float

    Raises
    ------
    ConfigError
        ``cluster_threshold`` is null and there is no projection, or it carries no calibration (a version-1
        ``speaker-lda`` file, or one with only the equal-odds distance while another probability is asked for):
        the YAML must then give the number.
    """
    if options.cluster_threshold is not None:
        return float(options.cluster_threshold)
    p = float(options.cluster_same_probability)
    calibration = getattr(projection, "calibration", None)
    if calibration is not None:
        distance = _calibrated_distance(calibration, p)
        if not 0.0 < distance < 2.0:
            a, b = (float(v) for v in calibration)
            raise ConfigError(f"speakers.cluster_same_probability {p} gives no usable distance with the projection "
                              f"{options.projection!r} (calibration {a:.3g}, {b:.3g}): set speakers.cluster_threshold")
        return distance
    calibrated = getattr(projection, "cluster_threshold", None)
    if calibrated is None or p != 0.5:
        raise ConfigError("speakers.cluster_threshold is null but the speaker projection "
                          f"({options.projection!r}) carries no calibration: set a number in the pipeline")
    return float(calibrated)


def fold_distance(options: SpeakersConfig, projection: Any | None) -> float | None:
    """The average-linkage distance beyond which a small cluster is not folded into its neighbour.

    Parameters
    ----------
    options : SpeakersConfig
        ``fold_same_probability``: the calibrated P(same speaker) below which the share rule leaves a cluster
        alone; 0 switches the gate off.
    projection : SpeakerProjection or None
        The space the windows are clustered in.

    Returns
    -------
    float or None
        The distance where the projection's calibration gives ``fold_same_probability`` (up to 2, the largest
        cosine distance); None when the gate is off or the space carries no calibration (raw embeddings, a
        version-1 ``speaker-lda``): then only the seconds and share rules decide, as before the gate.
    """
    p = float(options.fold_same_probability)
    calibration = getattr(projection, "calibration", None)
    if p <= 0.0 or calibration is None:
        return None
    distance = _calibrated_distance(calibration, p)
    if not math.isfinite(distance):  # a flat calibration (b = 0) says nothing about distances: no gate
        return None
    return min(max(distance, 0.0), 2.0)


def _calibrated_distance(calibration: Any, p: float) -> float:
    """Distance at which P(same) = sigmoid(a + b * distance) (b < 0) equals ``p``; nan when b is 0."""
    a, b = (float(v) for v in calibration)
    return (math.log(p / (1.0 - p)) - a) / b if b != 0 else float("nan")


def cluster_windows(*, embeddings: np.ndarray, weights: np.ndarray, p_female: np.ndarray,
                    options: SpeakersConfig, threshold: float, fold_threshold: float | None = None,
                    seed: int = 0, bound_folded: list[float] | None = None) -> np.ndarray:
    """Cluster ids of diarization windows.

    Parameters
    ----------
    embeddings : np.ndarray, shape (n, d)
        L2-normalised (projected) window embeddings, no all-zero rows.
    weights : np.ndarray, shape (n,)
        Seconds of talk each window stands for.
    p_female : np.ndarray, shape (n,)
        The gender model's female probability of each window (read only by the gender cannot-link; all zeros
        when gender is switched off, so that nothing is refused).
    options : SpeakersConfig
        ``cluster_method`` and the count settings.
    threshold : float
        Stopping distance (:func:`stopping_distance`).
    fold_threshold : float or None
        ``"constrained"``: a small cluster (with at least ``min_speaker_s`` of talk) farther than this from the
        neighbour it would be folded into stays a speaker (:func:`fold_distance`); None: no such gate.
    seed : int
        Seeds the subsample above :data:`MAX_CLUSTER_WINDOWS` windows.
    bound_folded : list of float, optional
        Filled (method ``"constrained"``, count not fixed) with the seconds of talk of each cluster that the
        ``max_speakers`` bound folded into another although the small-cluster floor would have kept it: voices the
        bound took away, not the clustering. Left empty when the bound took none; the caller says so to the user.

    Returns
    -------
    np.ndarray, shape (n,), int64
        Cluster ids 0..k-1.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    n = embeddings.shape[0]
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    if n > MAX_CLUSTER_WINDOWS:
        pick = np.sort(np.random.default_rng(seed).choice(n, size=MAX_CLUSTER_WINDOWS, replace=False))
    else:
        pick = np.arange(n)
    weights = np.asarray(weights, dtype=np.float64)
    pf_all = np.asarray(p_female, dtype=np.float64)
    x = embeddings[pick].astype(np.float64)
    z = linkage(x, method="average", metric="cosine")
    z[:, 2] = np.maximum(z[:, 2], 0.0)  # rounding can give tiny negative distances
    low, high = min(options.min_speakers, len(pick)), options.max_speakers
    if options.num_speakers is not None:
        sub = fcluster(z, t=min(options.num_speakers, len(pick)), criterion="maxclust")
    elif options.cluster_method == "ahc":
        sub = fcluster(z, t=threshold, criterion="distance")
        if sub.max() > high:
            # Outlier windows (overlaps, music under speech, coughs) form many tiny clusters far from everything;
            # cutting the tree at `high` clusters would merge real speakers to keep those apart. Fold the clusters
            # with the least talk into their nearest neighbour instead, until `high` are left.
            sub = merge_small(x, weights[pick], sub, np.inf, keep=high)
        elif sub.max() < low:
            sub = fcluster(z, t=low, criterion="maxclust")
    else:
        options = short_recording_floors(options, total_talk_s=float(weights.sum()))
        fine = min(options.cluster_fine_threshold, threshold)
        sub = fcluster(z, t=fine, criterion="distance") if fine > 0 else np.arange(1, len(pick) + 1)
        if sub.max() < low:
            # the merge below only takes clusters away: where the fine cut already holds fewer than min_speakers
            # (--min-speakers above the voices it tells apart) the tree is cut at the bound, as "ahc" does
            sub = fcluster(z, t=low, criterion="maxclust")
        # the subsample's talk in seconds of the whole recording (the floor compared with below is in seconds)
        scale = float(weights.sum() / weights[pick].sum()) if weights[pick].sum() > 0 else 1.0
        sub = _constrained_merge(x, weights[pick], pf_all[pick], np.unique(sub, return_inverse=True)[1],
                                 options, threshold, low=low, talk_scale=scale, bound_folded=bound_folded)
    sub = np.unique(sub, return_inverse=True)[1]
    if len(pick) < n:  # assign every window to the nearest centroid of the subsample's clusters
        cent = l2(np.stack([x[sub == k].mean(axis=0) for k in range(sub.max() + 1)]))
        ids = np.argmax(embeddings @ cent.T, axis=1)
    else:
        ids = sub
    if options.num_speakers is None:
        if options.cluster_method == "ahc":
            if options.min_speaker_s > 0:
                ids = merge_small(embeddings, weights, ids, options.min_speaker_s, keep=options.min_speakers)
        else:
            ids = _fold_small(np.asarray(embeddings, np.float64), weights, pf_all, ids, options,
                              fold_threshold=fold_threshold)
    return np.unique(ids, return_inverse=True)[1].astype(np.int64)


def short_recording_floors(options: SpeakersConfig, *, total_talk_s: float) -> SpeakersConfig:
    """``options`` with ``min_speaker_s`` and ``gender_link_min_s`` at most ``short_talk_share`` x the recording's
    whole talk (unchanged when that share is 0, or the recording talks long enough for the floors to stand)."""
    share = float(options.short_talk_share)
    if share <= 0.0:
        return options
    floor = max(share * max(total_talk_s, 0.0), float(options.short_floor_s))
    if floor >= options.min_speaker_s and floor >= options.gender_link_min_s:
        return options
    return dataclasses.replace(options, min_speaker_s=min(options.min_speaker_s, floor),
                               gender_link_min_s=min(options.gender_link_min_s, floor))


def merge_small(embeddings: np.ndarray, weights: np.ndarray, ids: np.ndarray, min_s: float,
                keep: int = 1) -> np.ndarray:
    """Merge clusters with less than ``min_s`` seconds into the nearest centroid, smallest first, while more
    than ``keep`` clusters are left (method ``"ahc"``). ``embeddings`` (n, d), ``weights`` / ``ids`` (n,)."""
    ids = ids.copy()
    while True:
        present = np.unique(ids)
        if len(present) <= max(1, keep):
            return ids
        talk = np.array([weights[ids == k].sum() for k in present])
        smallest = int(np.argmin(talk))
        if talk[smallest] >= min_s:
            return ids
        cent = l2(np.stack([embeddings[ids == k].mean(axis=0) for k in present]))
        sims = cent @ cent[smallest]
        sims[smallest] = -np.inf
        ids[ids == present[smallest]] = present[int(np.argmax(sims))]


def _cluster_stats(x: np.ndarray, w: np.ndarray, pf: np.ndarray, ids: np.ndarray, k: int):
    """Per cluster: sum of vectors (k, d), window count, sum of p_female, talk seconds (k,)."""
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, ids, x)
    cnt = np.bincount(ids, minlength=k).astype(np.float64)
    pfs = np.bincount(ids, weights=pf, minlength=k)
    talk = np.bincount(ids, weights=w, minlength=k)
    return sums, cnt, pfs, talk


def forbidden(pf_mean: np.ndarray, talk: np.ndarray, options: SpeakersConfig) -> np.ndarray:
    """(k, k) bool: cluster pairs that must not merge (confident, different genders).

    A cluster's gender counts as confident only with at least ``gender_link_min_s`` of talk: two music-covered
    windows of a woman may well score male."""
    k = len(pf_mean)
    if not options.gender_cannot_link:
        return np.zeros((k, k), dtype=bool)
    big = np.asarray(talk) >= options.gender_link_min_s
    fem = (np.asarray(pf_mean) >= options.gender_link_confidence) & big
    mal = (np.asarray(pf_mean) <= 1.0 - options.gender_link_confidence) & big
    return (fem[:, None] & mal[None, :]) | (mal[:, None] & fem[None, :])


def _fold_into(t: int, s: int, *, stats, alive: np.ndarray, label: np.ndarray) -> None:
    """Merge cluster ``s`` into ``t`` in place: its statistics (:func:`_cluster_stats`), liveness and labels."""
    for stat in stats:
        stat[t] += stat[s]
    alive[s] = False
    label[label == s] = t


def _refused(pfs, cnt, talk, others, s, options) -> np.ndarray:
    """(len(others),) bool: merging cluster ``s`` into each of ``others`` is refused."""
    return forbidden(np.append(pfs[others] / cnt[others], pfs[s] / cnt[s]), np.append(talk[others], talk[s]),
                     options)[-1, :-1]


def _constrained_merge(x, w, pf, ids, options: SpeakersConfig, threshold: float, *, low: int,
                       talk_scale: float = 1.0, bound_folded: list[float] | None = None) -> np.ndarray:
    """Average linkage on cluster sums from ``ids`` on, refusing cannot-link merges, stopped at ``threshold`` (or
    at ``low`` clusters); above ``max_speakers`` the least-talk clusters are then folded into their most similar
    allowed neighbour. The (k, k) similarity matrix is updated one row per merge: O(k^2) per merge, k = clusters
    at the fine threshold (a few hundred at 3,000 windows). ``bound_folded`` gets the seconds (talk x
    ``talk_scale``) of the folded clusters that :func:`_fold_small`'s floor would have kept."""
    k = int(ids.max()) + 1
    sums, cnt, pfs, talk = _cluster_stats(x, w, pf, ids, k)
    means = sums / cnt[:, None]
    sim = means @ means.T
    np.fill_diagonal(sim, -np.inf)
    sim[forbidden(pfs / cnt, talk, options)] = -np.inf
    alive = np.ones(k, dtype=bool)
    label = np.arange(k)
    stop = 1.0 - threshold
    while alive.sum() > max(1, low):
        a, b = divmod(int(np.argmax(sim)), k)
        if not sim[a, b] >= stop:  # also when every remaining pair is refused (-inf)
            break
        sums[a] += sums[b]
        cnt[a] += cnt[b]
        pfs[a] += pfs[b]
        talk[a] += talk[b]
        alive[b] = False
        label[label == b] = a
        sim[b, :] = -np.inf
        sim[:, b] = -np.inf
        row = (sums / cnt[:, None]) @ (sums[a] / cnt[a])
        bad = forbidden(np.append(pfs / cnt, pfs[a] / cnt[a]), np.append(talk, talk[a]), options)[-1, :-1]
        row[bad | ~alive] = -np.inf
        row[a] = -np.inf
        sim[a, :] = row
        sim[:, a] = row
    folded_by_bound: list[float] = []
    while alive.sum() > options.max_speakers:
        idx = np.flatnonzero(alive)
        s = idx[int(np.argmin(talk[idx]))]
        folded_by_bound.append(float(talk[s]) * talk_scale)
        others = idx[idx != s]
        sims = (sums[others] / cnt[others, None]) @ (sums[s] / cnt[s])
        bad = _refused(pfs, cnt, talk, others, s, options)
        if not bad.all():  # the bound wins over the constraint when nothing else is allowed
            sims[bad] = -np.inf
        t = others[int(np.argmax(sims))]
        _fold_into(t, s, stats=(sums, cnt, pfs, talk), alive=alive, label=label)
    if bound_folded is not None and folded_by_bound:
        # outlier clusters (coughs, music under speech) folded by the bound would have gone anyway: only those the
        # small-cluster floor keeps were voices the bound took away
        floor = _small_floor(options, largest_s=float(talk[alive].max()) * talk_scale)
        bound_folded.extend(seconds for seconds in folded_by_bound if seconds >= floor)
    return label[ids]


def _small_floor(options: SpeakersConfig, *, largest_s: float) -> float:
    """Seconds of talk under which :func:`_fold_small` folds a cluster, the largest having ``largest_s``."""
    return max(options.min_speaker_s, min(options.min_speaker_share * largest_s, options.max_small_speaker_s))


def _fold_small(x, w, pf, ids, options: SpeakersConfig, *, fold_threshold: float | None = None) -> np.ndarray:
    """Fold clusters with little talk (absolute floor, or share of the largest cluster up to a cap) into their
    most similar allowed neighbour, smallest first, while more than ``min_speakers`` are left; one above the floor
    whose average-linkage distance to that neighbour exceeds ``fold_threshold`` stays a speaker."""
    ids = np.unique(ids, return_inverse=True)[1]
    k = int(ids.max()) + 1
    sums, cnt, pfs, talk = _cluster_stats(x, w, pf, ids, k)
    alive = np.ones(k, dtype=bool)
    # small, but a speaker of its own: of a confident gender no other cluster has, or (the fold gate) clearly not
    # its nearest allowed neighbour's voice
    kept = np.zeros(k, dtype=bool)
    label = np.arange(k)
    while alive.sum() > max(1, options.min_speakers):
        idx = np.flatnonzero(alive)
        limit = _small_floor(options, largest_s=float(talk[idx].max()))
        cand = idx[~kept[idx]]
        if len(cand) == 0:
            break
        s = cand[int(np.argmin(talk[cand]))]
        if talk[s] >= limit:
            break
        others = idx[idx != s]
        sims = l2(sums[others]).astype(np.float64) @ l2(sums[s]).astype(np.float64)
        bad = _refused(pfs, cnt, talk, others, s, options)
        if bad.all():
            kept[s] = True
            continue
        sims[bad] = -np.inf
        t = others[int(np.argmax(sims))]
        if fold_threshold is not None and talk[s] >= options.min_speaker_s \
                and 1.0 - float((sums[s] / cnt[s]) @ (sums[t] / cnt[t])) > fold_threshold:
            kept[s] = True  # clearly not its nearest neighbour's voice: a speaker who talks little
            continue
        _fold_into(t, s, stats=(sums, cnt, pfs, talk), alive=alive, label=label)
    return label[ids]
