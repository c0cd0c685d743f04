"""Speaker clustering and count for dramapic's diarization: drop-in replacements for ``speakers._cluster`` and
``speakers._diarize`` (frozen layout at ``/work/base``).

What changes against today (``_cluster``: average-linkage cosine cut at one dev-tuned distance, then clusters with
less than 6 s of talk merged):

* **Constrained average linkage.** Average linkage on L2-normalised embeddings has a closed form at the cluster
  level: the mean cosine similarity of all window pairs across clusters ``a`` and ``b`` is ``<m_a, m_b>`` with
  ``m`` the (unnormalised) mean of the windows. So the tree is built by scipy up to a low ``fine_threshold``
  (pure sub-clusters; below it nothing is constrained) and finished on cluster sums, where a merge may be
  refused: two clusters whose mean female probabilities are both confident and disagree are never merged
  (gender as a cannot-link constraint).
* **Stopping distance from training data, not from the dev mixes.** ``cluster_threshold`` is the calibrated
  equal-odds point of same / different-speaker cluster pairs simulated from held-out *training* speakers in the
  projected space (see ``train_projection.py``; it is stored with the projection and read from there by default).
* **Small clusters by share, not only by seconds.** A cluster is folded into its nearest allowed neighbour when
  its talk is below ``min_speaker_s`` *and* below ``min_speaker_share`` of the largest cluster's talk, so that
  the same voices coming back (a looped recording) do not turn a music-covered stretch into a new speaker.

Everything else (re-segmentation by Viterbi against centroids, refinement windows, speaker numbering, gender
decisions) is today's code, called unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dramapic.result import SpeakerSummary
from dramapic.speakers import (VoiceLabelling, VoiceTurn, _decide, _l2, _merge_small, _OVERRIDE_MIN_WINDOWS,
                               _OVERRIDE_P, _segment_turns, _valid)

_MAX_CLUSTER_WINDOWS = 3000
"""Above this many windows a seeded random subsample is clustered and the rest assigned (as today)."""


@dataclass(frozen=True)
class ClusterOptions:
    """Settings of :func:`cluster_windows` (new ``speakers:`` YAML keys in brackets).

    Attributes
    ----------
    method : {"ahc", "constrained", "nme"}
        ``"ahc"`` is today's ``_cluster`` exactly; ``"constrained"`` the constrained average linkage
        (``cluster_method``); ``"nme"`` NME-SC (auto-tuned spectral clustering, Park et al. 2019) on at most
        ``nme_windows`` windows, the rest assigned to its centroids (measured, not chosen).
    cluster_threshold : float
        Average cosine distance at which merging stops (``cluster_threshold``; the recommended value is the
        projection's calibrated one, :func:`load_projection`: 0.809 for ``speaker-projection.npz``).
    fine_threshold : float
        Distance up to which scipy's unconstrained tree is kept before the constrained merges
        (``cluster_fine_threshold``); must not exceed ``cluster_threshold``.
    gender_cannot_link : bool
        Refuse merges of clusters with confident, different genders (``gender_cannot_link``).
    gender_confidence : float
        A cluster's gender is confident when its mean female probability is above this or below
        ``1 - gender_confidence`` (``gender_link_confidence``) ...
    gender_link_min_s : float
        ... and it has at least this much talk (``gender_link_min_s``).
    min_speaker_s : float
        Clusters with less talk may be folded into their nearest allowed neighbour (``min_speaker_s``).
    min_speaker_share : float
        ... or below this share of the largest cluster's talk (``min_speaker_share``), whichever is more, but
        never above ``max_small_speaker_s``. The share makes the fold invariant to the same voices coming back
        (a looped recording scales every cluster alike); 0 gives today's absolute rule.
    max_small_speaker_s : float
        Cap of the share rule (``max_small_speaker_s``): a cluster with this much talk is always kept.
    min_speakers, max_speakers : int
        Bounds on the automatic count.
    num_speakers : int or None
        Exactly this many clusters (disables the count rules).
    """

    method: str = "constrained"
    cluster_threshold: float = 0.70
    fine_threshold: float = 0.40
    gender_cannot_link: bool = True
    gender_confidence: float = 0.85
    gender_link_min_s: float = 3.0
    min_speaker_s: float = 6.0
    min_speaker_share: float = 0.15
    max_small_speaker_s: float = 30.0
    min_speakers: int = 1
    max_speakers: int = 8
    num_speakers: int | None = None
    nme_windows: int = 600

    def __post_init__(self) -> None:
        if self.method not in ("ahc", "constrained", "nme"):
            raise ValueError(f"method must be 'ahc' or 'constrained', got {self.method!r}")
        if not 0 < self.cluster_threshold < 2:
            raise ValueError(f"cluster_threshold must be in (0, 2), got {self.cluster_threshold}")
        if not 0 <= self.fine_threshold <= self.cluster_threshold:
            raise ValueError(f"fine_threshold must be in [0, cluster_threshold], got {self.fine_threshold}")
        if not 0.5 <= self.gender_confidence <= 1.0:
            raise ValueError(f"gender_confidence must be in [0.5, 1], got {self.gender_confidence}")
        if self.min_speaker_s < 0 or self.min_speaker_share < 0:
            raise ValueError("min_speaker_s and min_speaker_share must be >= 0")
        if self.min_speakers < 1 or self.max_speakers < self.min_speakers:
            raise ValueError(f"need 1 <= min_speakers <= max_speakers, got {self.min_speakers}, {self.max_speakers}")
        if self.num_speakers is not None and self.num_speakers < 1:
            raise ValueError(f"num_speakers must be >= 1 or None, got {self.num_speakers}")


@dataclass(frozen=True)
class DiarizationOptions:
    """Re-segmentation settings (as today's ``SpeakerOptions``) plus the clustering's.

    Attributes
    ----------
    cluster : ClusterOptions
    switch_penalty : float
        Viterbi cost of a speaker change between neighbouring windows.
    min_turn_s : float
        Shorter turns inside a voice segment go to a neighbouring turn.
    """

    cluster: ClusterOptions = ClusterOptions()
    switch_penalty: float = 0.15
    min_turn_s: float = 1.0


# -- clustering ------------------------------------------------------------------------------------------------

def cluster_windows(*, embeddings: np.ndarray, weights: np.ndarray, p_female: np.ndarray,
                    options: ClusterOptions, seed: int = 0) -> np.ndarray:
    """Cluster ids of windows.

    Parameters
    ----------
    embeddings : np.ndarray, shape (n, d)
        L2-normalised (projected) window embeddings, no all-zero rows.
    weights : np.ndarray, shape (n,)
        Seconds of talk each window stands for.
    p_female : np.ndarray, shape (n,)
        Female probability of each window (the gender model's).
    options : ClusterOptions
    seed : int
        Seeds the subsample above 3,000 windows.

    Returns
    -------
    np.ndarray, shape (n,), int64
        Cluster ids 0..k-1.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    x_all = np.asarray(embeddings, dtype=np.float64)
    w_all = np.asarray(weights, dtype=np.float64)
    pf_all = np.asarray(p_female, dtype=np.float64)
    n = x_all.shape[0]
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    if n > _MAX_CLUSTER_WINDOWS:
        pick = np.sort(np.random.default_rng(seed).choice(n, size=_MAX_CLUSTER_WINDOWS, replace=False))
    else:
        pick = np.arange(n)
    if options.method == "nme" and options.num_speakers is None:
        pick = np.arange(n) if n <= options.nme_windows else \
            np.sort(np.random.default_rng(seed).choice(n, size=options.nme_windows, replace=False))
        sub = _nme_sc(x_all[pick], options.min_speakers, options.max_speakers, seed)
        cent = _l2(np.stack([x_all[pick][sub == k].mean(axis=0) for k in range(sub.max() + 1)]))
        ids = np.argmax(x_all @ cent.T, axis=1)
        if options.min_speaker_s > 0:
            ids = _fold_small(x_all, w_all, pf_all, ids, options)
        return np.unique(ids, return_inverse=True)[1].astype(np.int64)
    x, w, pf = x_all[pick], w_all[pick], pf_all[pick]
    z = linkage(x, method="average", metric="cosine")
    z[:, 2] = np.maximum(z[:, 2], 0.0)
    if options.num_speakers is not None:
        sub = fcluster(z, t=min(options.num_speakers, len(pick)), criterion="maxclust")
    elif options.method == "ahc":
        sub = fcluster(z, t=options.cluster_threshold, criterion="distance")
        low, high = min(options.min_speakers, len(pick)), options.max_speakers
        if sub.max() > high:
            sub = _merge_small(x, w, sub, np.inf, keep=high)
        elif sub.max() < low:
            sub = fcluster(z, t=low, criterion="maxclust")
    else:
        sub = fcluster(z, t=options.fine_threshold, criterion="distance") if options.fine_threshold > 0 \
            else np.arange(1, len(pick) + 1)
        sub = _constrained_merge(x, w, pf, np.unique(sub, return_inverse=True)[1], options)
    sub = np.unique(sub, return_inverse=True)[1]
    if len(pick) < n:
        cent = _l2(np.stack([x[sub == k].mean(axis=0) for k in range(sub.max() + 1)]))
        ids = np.argmax(x_all @ cent.T, axis=1)
    else:
        ids = sub
    if options.num_speakers is None:
        if options.method == "ahc":
            if options.min_speaker_s > 0:
                ids = _merge_small(x_all.astype(np.float32), w_all, ids, options.min_speaker_s,
                                   keep=options.min_speakers)
        else:
            ids = _fold_small(x_all, w_all, pf_all, ids, options)
    return np.unique(ids, return_inverse=True)[1].astype(np.int64)


def _nme_sc(x: np.ndarray, k_min: int, k_max: int, seed: int) -> np.ndarray:
    """NME-SC: binarise the cosine affinity to each row's p nearest neighbours, choose p by the normalised
    maximum eigengap of the graph Laplacian, k = the position of that gap, then k-means on the spectral
    embedding. Returns ids (n,)."""
    from scipy.cluster.vq import kmeans2

    n = x.shape[0]
    if n < 4:
        return np.zeros(n, dtype=np.int64)
    a = x @ x.T
    np.fill_diagonal(a, 0.0)
    order = np.argsort(-a, axis=1)
    k_max = min(k_max, n - 1)
    best = None
    for p in np.unique(np.linspace(2, max(2, n // 4), 20).astype(int)):
        b = np.zeros_like(a)
        np.put_along_axis(b, order[:, :p], 1.0, axis=1)
        b = 0.5 * (b + b.T)
        lap = np.diag(b.sum(axis=1)) - b
        lam, vec = np.linalg.eigh(lap)
        gaps = np.diff(lam[:k_max + 1])
        gaps[:max(0, k_min - 1)] = -np.inf
        k = int(np.argmax(gaps)) + 1
        g = gaps[k - 1] / max(lam[-1], 1e-10)
        r = p / max(g, 1e-10)
        if best is None or r < best[0]:
            best = (r, k, vec[:, :k])
    _, k, emb = best
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    _, ids = kmeans2(emb, k, minit="++", seed=seed)
    return np.unique(ids, return_inverse=True)[1]


def _cluster_stats(x, w, pf, ids, k):
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, ids, x)
    cnt = np.bincount(ids, minlength=k).astype(np.float64)
    pfs = np.bincount(ids, weights=pf, minlength=k)
    talk = np.bincount(ids, weights=w, minlength=k)
    return sums, cnt, pfs, talk


def _forbidden(pf_mean: np.ndarray, talk: np.ndarray, options: ClusterOptions) -> np.ndarray:
    """(k, k) bool: pairs that must not merge (confident, different genders; a cluster's gender is confident
    only with at least ``gender_link_min_s`` of talk: two music-covered windows of a woman may well score male)."""
    k = len(pf_mean)
    if not options.gender_cannot_link:
        return np.zeros((k, k), dtype=bool)
    big = np.asarray(talk) >= options.gender_link_min_s
    fem = (pf_mean >= options.gender_confidence) & big
    mal = (pf_mean <= 1.0 - options.gender_confidence) & big
    return (fem[:, None] & mal[None, :]) | (mal[:, None] & fem[None, :])


def _constrained_merge(x, w, pf, ids, options: ClusterOptions) -> np.ndarray:
    """Average linkage on cluster sums from ``ids`` on, refusing cannot-link merges, stopped at the threshold
    (then folded to ``max_speakers`` by the least-talk clusters, as today).

    The (k, k) similarity matrix is updated one row per merge: O(k^2) per merge, k = clusters at
    ``fine_threshold`` (a few hundred at 3,000 windows)."""
    k = int(ids.max()) + 1
    sums, cnt, pfs, talk = _cluster_stats(x, w, pf, ids, k)
    means = sums / cnt[:, None]
    sim = means @ means.T
    np.fill_diagonal(sim, -np.inf)
    sim[_forbidden(pfs / cnt, talk, options)] = -np.inf
    alive = np.ones(k, dtype=bool)
    label = np.arange(k)
    stop = 1.0 - options.cluster_threshold
    while alive.sum() > 1:
        flat = int(np.argmax(sim))
        a, b = divmod(flat, k)
        if not sim[a, b] >= stop:  # also when every remaining pair is forbidden (-inf)
            break
        sums[a] += sums[b]; cnt[a] += cnt[b]; pfs[a] += pfs[b]; talk[a] += talk[b]
        alive[b] = False
        label[label == b] = a
        sim[b, :] = -np.inf
        sim[:, b] = -np.inf
        row = (sums / cnt[:, None]) @ (sums[a] / cnt[a])
        bad = _forbidden(np.append(pfs / cnt, pfs[a] / cnt[a]), np.append(talk, talk[a]), options)[-1, :-1]
        row[bad | ~alive] = -np.inf
        row[a] = -np.inf
        sim[a, :] = row
        sim[:, a] = row
    # above max_speakers: fold the least-talk clusters into their most similar allowed neighbour (as today)
    while alive.sum() > options.max_speakers:
        idx = np.flatnonzero(alive)
        s = idx[int(np.argmin(talk[idx]))]
        others = idx[idx != s]
        sims = (sums[others] / cnt[others, None]) @ (sums[s] / cnt[s])
        bad = _forbidden(np.append(pfs[others] / cnt[others], pfs[s] / cnt[s]), np.append(talk[others], talk[s]), options)[-1, :-1]
        if not bad.all():
            sims[bad] = -np.inf
        t = others[int(np.argmax(sims))]
        sums[t] += sums[s]; cnt[t] += cnt[s]; pfs[t] += pfs[s]; talk[t] += talk[s]
        alive[s] = False
        label[label == s] = t
    return label[ids]


def _fold_small(x, w, pf, ids, options: ClusterOptions) -> np.ndarray:
    """Fold clusters with little talk into their most similar allowed neighbour, smallest first."""
    ids = np.unique(ids, return_inverse=True)[1]
    k = int(ids.max()) + 1
    sums, cnt, pfs, talk = _cluster_stats(x, w, pf, ids, k)
    alive = np.ones(k, dtype=bool)
    kept = np.zeros(k, dtype=bool)  # small, but of a confident gender no other cluster has: a speaker of its own
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
        m = _l2(sums[others]).astype(np.float64)
        sims = m @ _l2(sums[s]).astype(np.float64)
        bad = _forbidden(np.append(pfs[others] / cnt[others], pfs[s] / cnt[s]), np.append(talk[others], talk[s]), options)[-1, :-1]
        if bad.all():
            kept[s] = True
            continue
        sims[bad] = -np.inf
        t = others[int(np.argmax(sims))]
        sums[t] += sums[s]; cnt[t] += cnt[s]; pfs[t] += pfs[s]; talk[t] += talk[s]
        alive[s] = False
        label[label == s] = t
    return label[ids]


def load_projection(path):
    """``(SpeakerProjection, cluster_threshold or None)`` from a projection ``.npz`` (``allow_pickle=False``);
    files of version 1 have no ``cluster_threshold``."""
    from dramapic.errors import ModelError
    from dramapic.speakers import SpeakerProjection

    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("mean", "components")}
            thr = float(data["cluster_threshold"]) if "cluster_threshold" in data.files else None
    except (OSError, ValueError, KeyError) as err:
        raise ModelError(f"speaker projection {path} is unreadable: {err}") from None
    return SpeakerProjection(**arrays), thr


# -- diarization (today's _diarize with the new clustering) ------------------------------------------------------

def diarize(*, segments: np.ndarray, times: np.ndarray, embeddings: np.ndarray, region: np.ndarray,
            p_female: np.ndarray, options: DiarizationOptions, projection=None, centroids: np.ndarray | None = None):
    """Today's ``speakers._diarize`` with :func:`cluster_windows` as its clustering.

    Parameters
    ----------
    segments : np.ndarray, shape (n_seg, 2)
        Voice segments (start, end), seconds.
    times : np.ndarray, shape (n, 2)
        Window start / end.
    embeddings : np.ndarray, shape (n, 256)
        Raw resemblyzer window embeddings (all-zero rows are dropped).
    region : np.ndarray, shape (n,), int
        The segment of each window.
    p_female : np.ndarray, shape (n,)
        Female probability of each window.
    options : DiarizationOptions
    projection : SpeakerProjection, optional
        Cluster and re-segment in this space.
    centroids : np.ndarray, shape (k, d), optional
        Skip clustering and re-segment against these (the refinement pass).

    Returns
    -------
    labelling : VoiceLabelling
    centroids : np.ndarray, shape (k, d)
    raw : list of list of (start, end, cluster, window_rows)
        Per segment, its turns (for the refinement windows).
    """
    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    n_seg = seg.shape[0]
    if n_seg == 0:
        return VoiceLabelling(), centroids, []
    times, emb, region, p_female = _valid(times, embeddings, region, p_female)
    if emb.shape[0] == 0:
        turns = tuple((VoiceTurn(float(s), float(e), None, None, {}, 0.0),) for s, e in seg)
        return VoiceLabelling(turns=turns, speakers=()), centroids, []
    if projection is not None:
        emb = projection.transform(emb)
    per_seg = np.bincount(region, minlength=n_seg)
    if centroids is None:
        seg_dur = np.clip(seg[:, 1] - seg[:, 0], 0.0, None)
        ids = cluster_windows(embeddings=emb, weights=seg_dur[region] / per_seg[region], p_female=p_female,
                              options=options.cluster)
        centroids = _l2(np.stack([emb[ids == c].mean(axis=0) for c in range(int(ids.max()) + 1)]))
    cent = centroids
    k = cent.shape[0]
    centres = times.mean(axis=1)
    order = np.lexsort((centres, region))
    offsets = np.concatenate([[0], np.cumsum(per_seg)])
    raw = []
    for s in range(n_seg):
        rows = order[offsets[s]:offsets[s + 1]]
        if len(rows) == 0:
            raw.append([])
            continue
        turns = _segment_turns(float(seg[s, 0]), float(seg[s, 1]), centres[rows], emb[rows] @ cent.T,
                               options.switch_penalty, options.min_turn_s)
        raw.append([(a, b, c, rows[i:j]) for a, b, c, i, j in turns])
    has = np.flatnonzero(per_seg > 0)
    for s in np.flatnonzero(per_seg == 0):
        gap = np.maximum(0.0, np.maximum(seg[has, 0] - seg[s, 1], seg[s, 0] - seg[has, 1]))
        near = int(has[int(np.argmin(gap))])
        c = raw[near][0][2] if seg[near, 0] >= seg[s, 1] else raw[near][-1][2]
        raw[s] = [(float(seg[s, 0]), float(seg[s, 1]), c, np.zeros(0, dtype=np.int64))]
    talk = np.zeros(k)
    member = np.full(emb.shape[0], -1, dtype=np.int64)
    won = np.zeros(k, dtype=bool)
    for turns in raw:
        for a, b, c, rows in turns:
            talk[c] += b - a
            member[rows] = c
            won[c] = True
    ranked = [c for c in sorted(range(k), key=lambda c: (-talk[c], c)) if won[c]]
    name = {c: f"S{i + 1}" for i, c in enumerate(ranked)}
    spk_gender, speakers = {}, []
    for c in ranked:
        rows = member == c
        decision = _decide(float(p_female[rows].mean()) if rows.any() else 0.5)
        spk_gender[c] = decision
        speakers.append(SpeakerSummary(id=name[c], gender=decision[0], seconds=float(talk[c]),
                                       gender_confidence=decision[2]))
    out = []
    for turns in raw:
        labelled = []
        for a, b, c, rows in turns:
            gender, scores, conf = spk_gender[c]
            if len(rows) >= _OVERRIDE_MIN_WINDOWS:
                own = float(p_female[rows].mean())
                if (1.0 - own if gender == "female" else own) > _OVERRIDE_P:
                    gender, scores, conf = _decide(own)
            labelled.append(VoiceTurn(start=float(a), end=float(b), speaker=name[c], gender=gender,
                                      gender_scores=dict(scores), confidence=conf))
        out.append(tuple(labelled))
    return VoiceLabelling(turns=tuple(out), speakers=tuple(speakers)), cent, raw
