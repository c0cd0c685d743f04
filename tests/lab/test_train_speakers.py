"""The speaker projection's calibrated stopping distance on a small synthetic table: pooled fold splits."""

from __future__ import annotations

import numpy as np

from dramapic.lab.train_speakers import calibrate_threshold


def _windows(seed: int = 0):
    """Two sources of 10 speakers, 3 clips each of 8 windows: a speaker direction + a clip offset + noise."""
    rng = np.random.default_rng(seed)
    cols = {k: [] for k in ("x", "speaker", "clip", "start", "source", "gender")}
    clip = 0
    for source in ("a", "b"):
        for s in range(10):
            centre = rng.normal(size=24)
            for _ in range(3):
                offset = rng.normal(scale=0.6, size=24)
                for w in range(8):
                    for k, v in (("x", centre + offset + rng.normal(scale=0.8, size=24)),
                                 ("speaker", f"{source}{s}"), ("clip", clip), ("start", 0.75 * w),
                                 ("source", source), ("gender", "female" if s % 2 else "male")):
                        cols[k].append(v)
                clip += 1
    return {k: np.asarray(v) for k, v in cols.items()}


def _calibrate(t, seed: int, repeats: int):
    return calibrate_threshold(t["x"], t["speaker"], t["clip"], t["start"], t["source"], t["gender"], 8,
                               np.random.default_rng(seed), repeats=repeats)


def test_pooled_fold_splits_each_draw_their_own_pairs():
    t = _windows()
    one, pooled = _calibrate(t, 0, 1), _calibrate(t, 0, 3)
    assert one is not None and pooled is not None
    # every repeat draws a new speaker split and its own pairs, all pooled into one logistic fit
    assert 2.5 * one["simulated_pairs"] < pooled["simulated_pairs"] <= 3 * 2 * 6000
    assert pooled["cluster_threshold"] != one["cluster_threshold"]
    assert 0 < pooled["cluster_threshold"] < 2 and pooled["b"] < 0
    # one repeat is the calibration as it was: the first split and its pairs, bit for bit
    assert _calibrate(t, 0, 1) == one


def _table(t):
    """The synthetic windows as a voice window table: the first half of each clip clean, the rest augmented."""
    n = len(t["speaker"])
    pad = np.random.default_rng(1).normal(scale=0.1, size=(n, 256 - t["x"].shape[1]))  # resemblyzer's 256 dims
    return {"emb": np.hstack([t["x"], pad]).astype(np.float32), "speaker": t["speaker"], "clip": t["clip"], "t0": t["start"],
            "source": t["source"], "gender": t["gender"], "split": np.full(n, "train"),
            "condition": np.where(t["start"] < 3.0, "clean", "aug")}


def test_clean_windows_can_count_as_often_as_the_augmented_copies():
    from dramapic.lab.train_speakers import fit_projection

    table = _table(_windows())
    plain, _, n_plain, _ = fit_projection(table, dim=8, repeats=1)
    weighted, _, n_weighted, _ = fit_projection(table, dim=8, repeats=1, clean_repeats=2)
    same, _, _, _ = fit_projection(table, dim=8, repeats=1, clean_repeats=1)
    assert n_plain == n_weighted == len(table["speaker"])         # distinct windows, not repeated rows
    probe = table["emb"][:40]
    assert np.array_equal(plain.transform(probe), same.transform(probe))  # 1: the fit as it was
    assert not np.allclose(np.abs(plain.transform(probe)), np.abs(weighted.transform(probe)), atol=1e-3)
