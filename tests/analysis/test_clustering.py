"""The speaker clustering (analysis/clustering.py): method "ahc" is the former clustering bit for bit; the
constrained method's gender cannot-link and share-based folding; the stopping distance from the projection."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dramapic.analysis.clustering import (
    cluster_windows,
    fold_distance,
    forbidden,
    short_recording_floors,
    stopping_distance,
)
from dramapic.analysis.diarization import SpeakerProjection
from dramapic.analysis.embeddings import l2
from dramapic.config import SpeakersConfig
from dramapic.errors import ConfigError, ModelError


def _former_cluster(embeddings, weights, options, threshold):
    """dramapic's clustering before issue 14 (diarization._cluster at 9285896), verbatim but for the threshold
    argument: the reference that method "ahc" must reproduce."""
    from scipy.cluster.hierarchy import fcluster, linkage

    def merge_small(emb, w, ids, min_s, keep=1):
        ids = ids.copy()
        while True:
            present = np.unique(ids)
            if len(present) <= max(1, keep):
                return ids
            talk = np.array([w[ids == k].sum() for k in present])
            smallest = int(np.argmin(talk))
            if talk[smallest] >= min_s:
                return ids
            cent = l2(np.stack([emb[ids == k].mean(axis=0) for k in present]))
            sims = cent @ cent[smallest]
            sims[smallest] = -np.inf
            ids[ids == present[smallest]] = present[int(np.argmax(sims))]

    n = embeddings.shape[0]
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    pick = np.sort(np.random.default_rng(0).choice(n, size=3000, replace=False)) if n > 3000 else np.arange(n)
    x = embeddings[pick].astype(np.float64)
    z = linkage(x, method="average", metric="cosine")
    z[:, 2] = np.maximum(z[:, 2], 0.0)
    if options.num_speakers is not None:
        sub = fcluster(z, t=min(options.num_speakers, len(pick)), criterion="maxclust")
    else:
        sub = fcluster(z, t=threshold, criterion="distance")
        low, high = min(options.min_speakers, len(pick)), options.max_speakers
        if sub.max() > high:
            sub = merge_small(x, weights[pick], sub, np.inf, keep=high)
        elif sub.max() < low:
            sub = fcluster(z, t=low, criterion="maxclust")
    sub = np.unique(sub, return_inverse=True)[1]
    if len(pick) < n:
        cent = l2(np.stack([x[sub == k].mean(axis=0) for k in range(sub.max() + 1)]))
        ids = np.argmax(embeddings @ cent.T, axis=1)
    else:
        ids = sub
    if options.num_speakers is None and options.min_speaker_s > 0:
        ids = merge_small(embeddings, weights, ids, options.min_speaker_s, keep=options.min_speakers)
    return np.unique(ids, return_inverse=True)[1].astype(np.int64)


def _speakers(rng, sizes, spread=0.35, dim=20):
    """Windows of len(sizes) synthetic speakers: (embeddings (n, dim) float32, truth (n,))."""
    centres = l2(rng.normal(size=(len(sizes), dim)))
    truth = np.repeat(np.arange(len(sizes)), sizes)
    return l2(centres[truth] + spread * rng.normal(size=(len(truth), dim)) / np.sqrt(dim)), truth


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("changes", [{}, {"max_speakers": 2}, {"min_speakers": 4}, {"num_speakers": 3},
                                     {"min_speaker_s": 0.0}, {"min_speaker_s": 20.0}])
def test_ahc_reproduces_the_former_clustering(seed, changes):
    rng = np.random.default_rng(seed)
    emb, _ = _speakers(rng, rng.integers(2, 40, size=int(rng.integers(2, 6))), spread=float(rng.uniform(0.2, 1.5)))
    weights = rng.uniform(0.2, 0.75, size=len(emb))
    options = SpeakersConfig(cluster_method="ahc", cluster_threshold=0.5, **changes)
    for threshold in (0.2, 0.5, 0.9):
        got = cluster_windows(embeddings=emb, weights=weights, p_female=rng.uniform(size=len(emb)),
                              options=options, threshold=threshold)
        np.testing.assert_array_equal(got, _former_cluster(emb, weights, options, threshold))


def test_ahc_reproduces_the_former_clustering_on_the_subsample_path():
    rng = np.random.default_rng(7)
    emb, _ = _speakers(rng, [1500, 1200, 700], spread=0.8)
    weights = np.full(len(emb), 0.75)
    options = SpeakersConfig(cluster_method="ahc", cluster_threshold=0.5)
    got = cluster_windows(embeddings=emb, weights=weights, p_female=np.zeros(len(emb)), options=options,
                          threshold=0.5)
    np.testing.assert_array_equal(got, _former_cluster(emb, weights, options, 0.5))


def test_cannot_link_never_merges_confident_opposite_genders():
    rng = np.random.default_rng(1)
    # two voices 0.6 apart (cosine distance of their centres): plain linkage merges them at 0.9; the constraint
    # acts above cluster_fine_threshold (0.40), where the sub-clusters are already pure
    u, v = np.eye(16)[0], np.eye(16)[1]
    centres = np.stack([u, 0.4 * u + np.sqrt(1 - 0.16) * v])
    emb = l2(np.repeat(centres, 40, axis=0) + 0.03 * rng.normal(size=(80, 16)))
    weights = np.full(80, 0.75)
    p_female = np.r_[np.full(40, 0.97), np.full(40, 0.03)]
    on = SpeakersConfig(cluster_threshold=0.9)
    ids = cluster_windows(embeddings=emb, weights=weights, p_female=p_female, options=on, threshold=0.9)
    assert len(set(ids[:40])) == 1 and len(set(ids[40:])) == 1 and ids[0] != ids[40]
    # ... not even when the bound on small clusters or a far threshold would fold one into the other
    big_share = dataclasses.replace(on, min_speaker_share=1.0, max_small_speaker_s=1000.0, min_speaker_s=100.0)
    ids = cluster_windows(embeddings=emb, weights=weights, p_female=p_female, options=big_share, threshold=1.9)
    assert ids[0] != ids[40]
    off = dataclasses.replace(on, gender_cannot_link=False)
    assert len(set(cluster_windows(embeddings=emb, weights=weights, p_female=p_female, options=off,
                                   threshold=0.9))) == 1
    # unconfident genders (or too little talk) do not constrain
    unsure = np.r_[np.full(40, 0.58), np.full(40, 0.42)]
    assert len(set(cluster_windows(embeddings=emb, weights=weights, p_female=unsure, options=on,
                                   threshold=0.9))) == 1


def test_forbidden_needs_confidence_and_talk():
    opts = SpeakersConfig()
    # confident: beyond gender_link_confidence (0.6) with at least gender_link_min_s (6 s) of talk
    bad = forbidden(np.array([0.9, 0.1, 0.1, 0.5]), np.array([7.0, 7.0, 1.0, 7.0]), opts)
    assert bad[0, 1] and bad[1, 0] and not bad[0, 2] and not bad[0, 3] and not bad[1, 2] and not bad.diagonal().any()


def test_small_clusters_fold_by_share_of_the_largest():
    rng = np.random.default_rng(3)
    emb, truth = _speakers(rng, [100, 8], spread=0.3)  # 75 s and 6 s of talk, both male
    weights = np.full(len(emb), 0.75)
    p = np.zeros(len(emb))
    opts = SpeakersConfig(cluster_threshold=0.5, min_speaker_s=3.0)
    # 6 s is above the 3 s floor but below 35 % of 75 s: folded
    assert len(set(cluster_windows(embeddings=emb, weights=weights, p_female=p, options=opts, threshold=0.5))) == 1
    # with the share rule off (today's absolute rule) it stays a speaker
    kept = dataclasses.replace(opts, min_speaker_share=0.0)
    assert len(set(cluster_windows(embeddings=emb, weights=weights, p_female=p, options=kept, threshold=0.5))) == 2
    # the cap: a cluster with max_small_speaker_s of talk is always kept
    capped = dataclasses.replace(opts, max_small_speaker_s=5.0)
    assert len(set(cluster_windows(embeddings=emb, weights=weights, p_female=p, options=capped, threshold=0.5))) == 2
    # the same voices looped four times: still one speaker (the decision scales with the recording)
    loop = np.tile(emb, (4, 1))
    assert len(set(cluster_windows(embeddings=loop, weights=np.tile(weights, 4), p_female=np.tile(p, 4),
                                   options=opts, threshold=0.5))) == 1
    # a short speaker of a confident gender no other cluster has is kept
    pf = np.where(truth == 1, 0.97, 0.03)
    ids = cluster_windows(embeddings=emb, weights=weights, p_female=pf, options=opts, threshold=0.5)
    assert len(set(ids)) == 2 and len(set(ids[truth == 1])) == 1


@pytest.mark.parametrize("per_speaker", [60, 400])  # 45 s each; 300 s each, past the 3,000-window subsample
def test_the_bound_reports_the_voices_it_folded(per_speaker):
    """Ten clear voices with max_speakers 8: two are folded by the bound, not by the clustering, and the caller
    learns how much talk each had (in seconds of the whole recording, also when a subsample was clustered)."""
    rng = np.random.default_rng(4)
    emb, _ = _speakers(rng, [per_speaker] * 10, spread=0.2, dim=32)
    weights = np.full(len(emb), 0.75)
    p = np.zeros(len(emb))
    opts = SpeakersConfig(cluster_threshold=0.5)
    folded: list[float] = []
    ids = cluster_windows(embeddings=emb, weights=weights, p_female=p, options=opts, threshold=0.5,
                          bound_folded=folded)
    assert len(set(ids)) == 8 and len(folded) == 2
    assert folded == pytest.approx([0.75 * per_speaker] * 2, rel=0.15)
    # a bound above the voices: ten speakers, nothing folded by it
    wide: list[float] = []
    ids = cluster_windows(embeddings=emb, weights=weights, p_female=p, options=dataclasses.replace(
        opts, max_speakers=16), threshold=0.5, bound_folded=wide)
    assert len(set(ids)) == 10 and wide == []
    # a fixed count is not the bound's doing
    fixed: list[float] = []
    cluster_windows(embeddings=emb, weights=weights, p_female=p, options=dataclasses.replace(opts, num_speakers=8),
                    threshold=0.5, bound_folded=fixed)
    assert fixed == []


def test_the_bound_folding_outliers_the_floor_would_fold_is_not_reported():
    """Eight voices and a few one-window outliers (coughs, music under speech) far from everything: the bound folds
    the outliers, which the small-cluster floor would have folded anyway; nothing to tell the user."""
    rng = np.random.default_rng(6)
    emb, _ = _speakers(rng, [60] * 8 + [1] * 4, spread=0.2, dim=32)
    folded: list[float] = []
    ids = cluster_windows(embeddings=emb, weights=np.full(len(emb), 0.75), p_female=np.zeros(len(emb)),
                          options=SpeakersConfig(cluster_threshold=0.5), threshold=0.5, bound_folded=folded)
    assert len(set(ids)) == 8 and folded == []
    # the bound did fold them: with no floor (nothing else folds small clusters) the same four are reported
    no_floor = SpeakersConfig(cluster_threshold=0.5, min_speaker_s=0.0, min_speaker_share=0.0)
    ids = cluster_windows(embeddings=emb, weights=np.full(len(emb), 0.75), p_female=np.zeros(len(emb)),
                          options=no_floor, threshold=0.5, bound_folded=folded)
    assert len(set(ids)) == 8 and len(folded) == 4 and max(folded) <= 1.5  # (an outlier may take in another first)


def test_in_a_long_recording_a_second_cluster_under_a_minute_is_folded_by_default():
    """A narration of 300 s whose voice, heard differently for a while, makes a second cluster of 45 s: the default
    cap (60 s) folds it into the voice, the former 30 s kept it as a speaker of its own (models/README.md, "A whole
    episode"); 35 % of the largest stays the rule below the cap."""
    rng = np.random.default_rng(9)
    emb, _ = _speakers(rng, [400, 60], spread=0.2, dim=32)  # 300 s and 45 s of talk, one gender
    weights, p = np.full(len(emb), 0.75), np.zeros(len(emb))
    opts = SpeakersConfig(cluster_threshold=0.5)
    assert opts.max_small_speaker_s == 60.0
    assert len(set(cluster_windows(embeddings=emb, weights=weights, p_female=p, options=opts, threshold=0.5))) == 1
    former = dataclasses.replace(opts, max_small_speaker_s=30.0)
    assert len(set(cluster_windows(embeddings=emb, weights=weights, p_female=p, options=former, threshold=0.5))) == 2
    # a second voice with 75 s of talk (above the cap) stays a speaker
    emb, _ = _speakers(rng, [400, 100], spread=0.2, dim=32)
    weights, p = np.full(len(emb), 0.75), np.zeros(len(emb))
    assert len(set(cluster_windows(embeddings=emb, weights=weights, p_female=p, options=opts, threshold=0.5))) == 2


def test_a_short_scene_keeps_two_speakers_under_the_floors_meant_for_long_recordings():
    # a 20 s scene: a woman and a man talk 5.25 s and 4.5 s; the 6 s floors (talk, gender link) would fold them
    rng = np.random.default_rng(11)
    emb, truth = _speakers(rng, [7, 6], spread=0.3)
    weights = np.full(len(emb), 0.75)
    pf = np.where(truth == 0, 0.95, 0.05)
    fixed = SpeakersConfig(cluster_threshold=0.5, short_talk_share=0.0)
    assert len(set(cluster_windows(embeddings=emb, weights=weights, p_female=pf, options=fixed, threshold=0.5))) == 1
    scaled = dataclasses.replace(fixed, short_talk_share=0.2, short_floor_s=3.0)
    ids = cluster_windows(embeddings=emb, weights=weights, p_female=pf, options=scaled, threshold=0.5)
    assert len(set(ids)) == 2 and all(len(set(ids[truth == k])) == 1 for k in (0, 1))
    # the floors shrink only as far as the recording is short: 40 s of talk keeps the configured 6 s ...
    assert short_recording_floors(scaled, total_talk_s=40.0) is scaled
    short = short_recording_floors(scaled, total_talk_s=20.0)
    assert (short.min_speaker_s, short.gender_link_min_s) == pytest.approx((4.0, 4.0))
    # ... and never below short_floor_s
    assert short_recording_floors(scaled, total_talk_s=9.75).min_speaker_s == pytest.approx(3.0)
    no_floor = dataclasses.replace(scaled, short_floor_s=0.0)
    assert short_recording_floors(no_floor, total_talk_s=9.75).gender_link_min_s == pytest.approx(1.95)
    assert short_recording_floors(fixed, total_talk_s=9.75) is fixed
    assert SpeakersConfig().short_talk_share == 0.2 and SpeakersConfig().short_floor_s == 3.0


def _two_voices(cos: float, *, big: int = 100, small: int = 16, seed: int = 5):
    """A lead (``big`` windows of 0.75 s) and a small cluster (``small`` windows) whose centres have cosine
    similarity ``cos``: (embeddings, truth)."""
    rng = np.random.default_rng(seed)
    u, v = np.eye(16)[0], np.eye(16)[1]
    centres = np.stack([u, cos * u + np.sqrt(1 - cos ** 2) * v])
    truth = np.r_[np.zeros(big, int), np.ones(small, int)]
    return l2(centres[truth] + 0.05 * rng.normal(size=(len(truth), 16))), truth


def test_fold_gate_keeps_a_small_speaker_whose_voice_is_clearly_another():
    threshold = 0.5  # merging stops at distance 0.5: both pairs below stay two clusters at first
    opts = SpeakersConfig(cluster_threshold=threshold, min_speaker_s=3.0)
    p = np.zeros(116)
    weights = np.full(116, 0.75)  # 75 s lead, 12 s small: under 35 % of the lead, above the 3 s floor
    far, truth = _two_voices(0.1)   # another voice (distance ~0.9)
    near, _ = _two_voices(0.4)      # an emotion block of the lead's voice, say (distance ~0.6)
    for emb in (far, near):  # without the gate the share rule folds either
        assert len(set(cluster_windows(embeddings=emb, weights=weights, p_female=p, options=opts,
                                       threshold=threshold))) == 1
    # the gate at distance 0.75: the far one stays a speaker, whole; the near one is still folded
    ids = cluster_windows(embeddings=far, weights=weights, p_female=p, options=opts, threshold=threshold,
                          fold_threshold=0.75)
    assert len(set(ids)) == 2 and len(set(ids[truth == 1])) == 1 and ids[0] != ids[-1]
    assert len(set(cluster_windows(embeddings=near, weights=weights, p_female=p, options=opts,
                                   threshold=threshold, fold_threshold=0.75))) == 1
    # looped four times: the same decision (the gate reads distances, not seconds)
    loop = cluster_windows(embeddings=np.tile(far, (4, 1)), weights=np.tile(weights, 4), p_female=np.tile(p, 4),
                           options=opts, threshold=threshold, fold_threshold=0.75)
    assert len(set(loop)) == 2
    # the absolute floor is never gated: 3 windows (2.25 s) of another voice are still folded
    tiny, _ = _two_voices(0.1, small=3)
    assert len(set(cluster_windows(embeddings=tiny, weights=np.full(103, 0.75), p_female=np.zeros(103),
                                   options=opts, threshold=threshold, fold_threshold=0.75))) == 1


def test_fold_distance_from_the_calibration():
    a, b = 8.7176, -21.558  # P(same) = sigmoid(a + b * d), the shipped speaker-lda v3 (equal odds at 0.404)
    proj = SpeakerProjection(mean=np.zeros(256), components=np.eye(256)[:, :10], cluster_threshold=-a / b,
                             calibration=np.array([a, b]))
    d = fold_distance(SpeakersConfig(fold_same_probability=0.05), proj)
    assert 1.0 / (1.0 + np.exp(-(a + b * d))) == pytest.approx(0.05)
    # beyond where merging stops (P 0.25): the gate acts only on clusters the merging left apart
    assert d > stopping_distance(SpeakersConfig(), proj)
    assert fold_distance(SpeakersConfig(fold_same_probability=0.0), proj) is None  # off
    old = SpeakerProjection(mean=np.zeros(256), components=np.eye(256)[:, :10], cluster_threshold=0.8)
    assert fold_distance(SpeakersConfig(), old) is None  # no calibration: the share rule alone, as before
    assert fold_distance(SpeakersConfig(cluster_threshold=0.7, projection=None), None) is None
    # a probability so small it lies beyond the cosine range: capped at 2 (the gate never acts)
    assert fold_distance(SpeakersConfig(fold_same_probability=1e-30), proj) == 2.0
    flat = SpeakerProjection(mean=np.zeros(256), components=np.eye(256)[:, :10], cluster_threshold=0.8,
                             calibration=np.array([0.0, 0.0]))
    assert fold_distance(SpeakersConfig(), flat) is None  # a calibration that says nothing: no gate


def test_min_speakers_bounds_the_constrained_merge():
    rng = np.random.default_rng(4)
    emb, _ = _speakers(rng, [30, 30, 30], spread=0.3)
    opts = SpeakersConfig(cluster_threshold=1.9, min_speakers=3, min_speaker_s=0.0, min_speaker_share=0.0)
    ids = cluster_windows(embeddings=emb, weights=np.full(90, 0.75), p_female=np.zeros(90), options=opts,
                          threshold=1.9)
    assert len(set(ids)) == 3


def test_min_speakers_splits_voices_the_fine_cut_keeps_together():
    # three voices alike enough that the fine cut (cluster_fine_threshold 0.4) puts them in one cluster: a
    # --min-speakers 3 run found 1 speaker with the default method (only "ahc" re-cut the tree at the bound)
    rng = np.random.default_rng(5)
    base = l2(rng.normal(size=20))
    centres = l2(base + 0.35 * l2(rng.normal(size=(3, 20))))
    truth = np.repeat(np.arange(3), 20)
    emb = l2(centres[truth] + 0.05 * rng.normal(size=(60, 20)) / np.sqrt(20))
    opts = SpeakersConfig(cluster_threshold=0.8, min_speaker_s=0.0, min_speaker_share=0.0)
    weights, female = np.full(60, 0.75), np.zeros(60)
    assert len(set(cluster_windows(embeddings=emb, weights=weights, p_female=female, options=opts,
                                   threshold=0.8))) == 1
    ids = cluster_windows(embeddings=emb, weights=weights, p_female=female,
                          options=dataclasses.replace(opts, min_speakers=3), threshold=0.8)
    assert len(set(ids)) == 3
    assert all(len(set(ids[truth == k])) == 1 for k in range(3))  # one voice, one cluster


def test_threshold_from_projection_when_the_yaml_gives_null():
    equal_odds = SpeakersConfig(cluster_same_probability=0.5)
    proj = SpeakerProjection(mean=np.zeros(256), components=np.eye(256)[:, :10], cluster_threshold=0.81)
    assert stopping_distance(equal_odds, proj) == pytest.approx(0.81)
    with pytest.raises(ConfigError, match="calibration"):  # only the equal-odds distance is stored
        stopping_distance(SpeakersConfig(cluster_same_probability=0.45), proj)
    assert stopping_distance(SpeakersConfig(cluster_threshold=0.6), proj) == pytest.approx(0.6)  # a number wins
    old = SpeakerProjection(mean=np.zeros(256), components=np.eye(256)[:, :10])
    assert old.cluster_threshold is None
    with pytest.raises(ConfigError, match="calibration"):
        stopping_distance(equal_odds, old)
    with pytest.raises(ConfigError):
        stopping_distance(SpeakersConfig(), None)
    with pytest.raises(ConfigError, match="calibration"):  # the default, 0.25, needs the calibration
        stopping_distance(SpeakersConfig(), proj)
    assert stopping_distance(SpeakersConfig(cluster_threshold=0.7), old) == pytest.approx(0.7)
    with pytest.raises(ModelError):
        SpeakerProjection(mean=np.zeros(256), components=np.eye(256)[:, :10], cluster_threshold=3.0)


def test_threshold_from_the_calibration_at_the_asked_probability():
    # P(same) = sigmoid(a + b * d), the shipped projection's calibration (equal odds at 0.8089)
    a, b = 14.2222, -17.5816
    proj = SpeakerProjection(mean=np.zeros(256), components=np.eye(256)[:, :10], cluster_threshold=-a / b,
                             calibration=np.array([a, b]))
    at_half = stopping_distance(SpeakersConfig(cluster_same_probability=0.5), proj)
    assert at_half == pytest.approx(-a / b)
    at_045 = stopping_distance(SpeakersConfig(cluster_same_probability=0.45), proj)  # merge a little further
    assert at_045 > at_half
    assert 1.0 / (1.0 + np.exp(-(a + b * at_045))) == pytest.approx(0.45)
    with pytest.raises(ConfigError, match="usable distance"):  # beyond the cosine range (2.38)
        stopping_distance(SpeakersConfig(cluster_same_probability=1e-12), proj)


@pytest.mark.parametrize("bad", [{"cluster_method": "spectral"}, {"cluster_threshold": 2.5},
                                 {"cluster_same_probability": 0.0}, {"cluster_same_probability": 1.0},
                                 {"gender_resegment_weight": -0.1}, {"gender_resegment_weight": 1.5},
                                 {"cluster_threshold": 0.0}, {"cluster_fine_threshold": -0.1},
                                 {"gender_link_confidence": 0.4}, {"gender_link_confidence": 1.2},
                                 {"gender_link_min_s": -1.0}, {"min_speaker_share": 1.5},
                                 {"min_speaker_share": -0.1}, {"max_small_speaker_s": -3.0},
                                 {"fold_same_probability": -0.1}, {"fold_same_probability": 1.0},
                                 {"short_talk_share": -0.1}, {"short_talk_share": 1.5}, {"short_floor_s": -1.0},
                                 {"projection": None}])
def test_new_speaker_settings_are_checked(bad):
    with pytest.raises(ConfigError):
        SpeakersConfig(**bad)


def test_new_keys_from_yaml(tmp_path):
    from dramapic.config import load_pipeline

    path = tmp_path / "p.yaml"
    path.write_text("speakers:\n  cluster_method: ahc\n  cluster_threshold: 0.7\n  gender_cannot_link: false\n"
                    "  min_speaker_share: 0.2\n", encoding="utf-8")
    s = load_pipeline(path).speakers
    assert (s.cluster_method, s.cluster_threshold, s.gender_cannot_link, s.min_speaker_share) == \
        ("ahc", 0.7, False, 0.2)
    for text in ("speakers:\n  cluster_threshold: high\n", "speakers:\n  gender_cannot_link: 1\n",
                 "speakers:\n  cluster_method: nme\n", "speakers:\n  projection: null\n"):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError):
            load_pipeline(path)


@pytest.mark.parametrize("value", [2.5, "two", True])
def test_num_speakers_from_a_yaml_must_be_a_whole_number(tmp_path, value):
    from dramapic.config import load_pipeline

    path = tmp_path / "p.yaml"
    path.write_text(f"speakers:\n  num_speakers: {value!r}\n".replace("'", '"').replace("True", "true"),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="speakers.num_speakers must be a whole number"):
        load_pipeline(path)
    path.write_text("speakers:\n  num_speakers: 2.0\n", encoding="utf-8")
    assert load_pipeline(path).speakers.num_speakers == 2 and isinstance(load_pipeline(path).speakers.num_speakers, int)


def test_speaker_counts_from_numpy_are_whole_numbers():
    from dramapic.config import SpeakersConfig

    # a count computed with numpy (np.int64) is a whole number: it was refused as "must be a whole number"
    options = SpeakersConfig(num_speakers=np.int64(2), min_speakers=np.int64(1), max_speakers=np.int64(4))
    assert (options.num_speakers, options.min_speakers, options.max_speakers) == (2, 1, 4)
    assert all(type(v) is int for v in (options.num_speakers, options.min_speakers, options.max_speakers))
    with pytest.raises(ConfigError, match="must be a whole number"):
        SpeakersConfig(num_speakers=np.float64(2.5))


def test_projection_null_from_a_yaml_means_raw_embeddings(tmp_path):
    from dramapic.config import load_pipeline

    # pipelines/default.yaml and the README say "null: raw embeddings"; the reader refused it ("expected text")
    path = tmp_path / "p.yaml"
    path.write_text("speakers:\n  projection: null\n  cluster_threshold: 0.4\n", encoding="utf-8")
    assert load_pipeline(path).speakers.projection is None
    path.write_text("speakers:\n  min_speakers: null\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a number"):
        load_pipeline(path)
