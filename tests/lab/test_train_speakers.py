"""The speaker projection's calibrated stopping distance on a small synthetic table: pooled fold splits."""

from __future__ import annotations

import numpy as np
import pytest

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


def _speakers(rng: np.random.Generator, n_speakers: int, per_speaker: int, dim: int = 48):
    """Speakers as random centres with isotropic spread: few windows each, as most Common Voice speakers have."""
    centres = rng.normal(size=(n_speakers, dim))
    y = np.repeat(np.arange(n_speakers), per_speaker)
    return centres[y] + rng.normal(size=(len(y), dim)), y


def _pair_auc(z: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(z), 20_000), rng.integers(0, len(z), 20_000)
    keep = i != j
    return float(roc_auc_score(y[i[keep]] == y[j[keep]], np.einsum("nd,nd->n", z[i[keep]], z[j[keep]])))


def test_shrinkage_carries_to_speakers_the_fit_never_saw():
    from dramapic.lab.train_speakers import PROJECTION_SHRINKAGE, fit_lda

    rng = np.random.default_rng(0)
    x_fit, y_fit = _speakers(rng, 40, 3)
    x_new, y_new = _speakers(rng, 20, 6)
    aucs = {}
    for shrinkage in (None, PROJECTION_SHRINKAGE):
        mean, components = fit_lda(x_fit, y_fit, 16, shrinkage=shrinkage)
        assert components.shape == (48, 16)
        aucs[shrinkage] = _pair_auc((x_new - mean) @ components, y_new)
    # plain LDA whitens the noise of 3 windows a speaker as if it were speaker-specific: new speakers scatter
    assert aucs[PROJECTION_SHRINKAGE] > aucs[None] + 0.03


def test_the_regularised_projection_is_uncentred_and_plain_lda_is_not():
    from dramapic.lab.train_speakers import fit_lda

    x, y = _speakers(np.random.default_rng(1), 10, 5, dim=12)
    x = x + 3.0  # a mean far from zero, as resemblyzer's non-negative embeddings have
    plain_mean, _ = fit_lda(x, y, 4, shrinkage=None)
    shrunk_mean, shrunk = fit_lda(x, y, 4, shrinkage=0.9)
    np.testing.assert_allclose(plain_mean, x.mean(axis=0))
    np.testing.assert_array_equal(shrunk_mean, np.zeros(12))
    assert shrunk.shape == (12, 4)


@pytest.mark.parametrize("shrinkage", [0.0, -0.1, 1.5])
def test_shrinkage_outside_its_range_is_refused(shrinkage):
    from dramapic.lab.train_speakers import fit_lda

    x, y = _speakers(np.random.default_rng(2), 5, 4, dim=6)
    with pytest.raises(ValueError, match="shrinkage"):
        fit_lda(x, y, 2, shrinkage=shrinkage)
