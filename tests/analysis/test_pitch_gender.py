"""Pitch features (known sine -> f0, silence -> no_pitch, shapes) and the calibrated, abstaining gender model."""

from __future__ import annotations

import numpy as np
import pytest

from dramapic.analysis.gender import GenderClassifier, GenderDecision, decide_turns
from dramapic.analysis.pitch import FEATURE_NAMES, N_FEATURES, frame_f0, window_pitch_features
from dramapic.errors import ModelError

SR = 16_000


def _sine(f0: float, seconds: float, *, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    # a few harmonics, like a voice: YIN must find the fundamental, not the strongest partial
    return (amp * (np.sin(2 * np.pi * f0 * t) + 0.5 * np.sin(4 * np.pi * f0 * t)
                   + 0.25 * np.sin(6 * np.pi * f0 * t))).astype(np.float32)


@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_known_tone_gives_its_f0(f0):
    hz, dip = frame_f0(_sine(f0, 1.0), sample_rate=SR)
    assert hz.shape == dip.shape and hz.ndim == 1 and len(hz) > 40
    voiced = np.isfinite(hz)
    assert voiced.mean() > 0.9
    assert np.median(hz[voiced]) == pytest.approx(f0, rel=0.01)
    feats = window_pitch_features(_sine(f0, 1.5), times=np.array([[0.0, 1.5]]), sample_rate=SR)
    assert feats.shape == (1, N_FEATURES) == (1, len(FEATURE_NAMES)) and feats.dtype == np.float32
    assert feats[0, FEATURE_NAMES.index("no_pitch")] == 0.0
    assert feats[0, FEATURE_NAMES.index("logf0_q50")] == pytest.approx(np.log2(f0 / 100.0), abs=0.02)


def test_silence_and_noise_have_no_pitch_and_windows_are_independent():
    silence = np.zeros(3 * SR, np.float32)
    noise = np.random.default_rng(0).normal(scale=0.1, size=3 * SR).astype(np.float32)
    times = np.array([[0.0, 1.5], [1.5, 3.0]])
    for audio in (silence, noise):
        feats = window_pitch_features(audio, times=times, sample_rate=SR)
        assert feats.shape == (2, N_FEATURES)
        np.testing.assert_array_equal(feats[:, FEATURE_NAMES.index("no_pitch")], [1.0, 1.0])
    assert window_pitch_features(silence, times=np.zeros((0, 2)), sample_rate=SR).shape == (0, N_FEATURES)
    # a window's features depend only on its samples (train and predict see the same window the same way)
    audio = np.concatenate([_sine(120.0, 1.5), _sine(240.0, 1.5)])
    both = window_pitch_features(audio, times=times, sample_rate=SR)
    np.testing.assert_array_equal(both[1], window_pitch_features(audio[int(1.5 * SR):],
                                                                 times=np.array([[0.0, 1.5]]), sample_rate=SR)[0])
    # another rate: resampled inside, same answer
    at8k = window_pitch_features(audio[::2], times=times, sample_rate=8_000)
    np.testing.assert_allclose(at8k[:, 1:4], both[:, 1:4], atol=0.02)


def _model(**changes) -> GenderClassifier:
    """A 262-feature model whose logit is 2 x (the last embedding dimension) (standardised inputs = raw)."""
    coef = np.zeros(262)
    coef[255] = 2.0
    kw = dict(mean=np.zeros(262), scale=np.ones(262), coef=coef, intercept=0.0, labels=("female", "male"),
              feature_names=[f"emb_{i}" for i in range(256)] + list(FEATURE_NAMES),
              window_calibration=(0.5, 0.0), decision_calibration=(1.0, 0.0), logit_clip=6.0,
              abstain_below=0.9, agree_min=0.8, override_p=0.8)
    return GenderClassifier(**{**kw, **changes})


def _emb(values) -> np.ndarray:
    e = np.zeros((len(values), 256))
    e[:, 255] = values
    return e


def test_calibration_is_monotone_and_abstains_below_the_threshold(tmp_path):
    model = _model()
    x = np.linspace(-3, 3, 41)
    p_male = model.predict_proba(_emb(x), np.zeros((41, 6)))[:, 1]
    assert np.all(np.diff(p_male) > 0)  # calibrated probabilities keep the order of the logits
    np.testing.assert_allclose(p_male, 1 / (1 + np.exp(-0.5 * 2 * x)))  # window Platt slope 0.5 applied
    assert model.decide(np.array([3.0, 2.5])).gender == "male"
    unsure = model.decide(np.array([0.5, 1.0]))  # p_male = sigmoid(0.75) = 0.68 < 0.9
    assert unsure == GenderDecision(None, pytest.approx(1 - 1 / (1 + np.exp(-0.75))), pytest.approx(0.679, abs=1e-3))
    assert unsure.scores["male"] == pytest.approx(unsure.confidence)
    assert model.decide(np.zeros(0)) == GenderDecision(None, 0.5, 0.5)
    assert model.decide(np.array([100.0])).confidence == pytest.approx(1 / (1 + np.exp(-6.0)))  # clipped
    # round trip through the file format
    model.to_npz(tmp_path / "m.npz")
    again = GenderClassifier.from_npz(tmp_path / "m.npz")
    assert again.abstain_below == 0.9 and again.feature_names == model.feature_names
    pitch = np.zeros((41, 6))
    np.testing.assert_allclose(again.male_logit(_emb(x), pitch), model.male_logit(_emb(x), pitch))


def test_a_bigger_group_with_the_same_mean_is_more_certain(tmp_path):
    """With a size slope the decision calibration's slope is a + c log2(m): a speaker heard for many windows is
    decided at a mean logit where a short turn stays unknown; slope 0 (older files) ignores the size."""
    model = _model(decision_size_slope=0.25)
    turn, speaker = model.decide(np.full(2, 1.5)), model.decide(np.full(64, 1.5))
    assert turn.confidence == pytest.approx(1 / (1 + np.exp(-(1.0 + 0.25) * 1.5)))   # log2(2) = 1
    assert speaker.confidence == pytest.approx(1 / (1 + np.exp(-(1.0 + 0.25 * 6) * 1.5)))
    assert turn.gender is None and speaker.gender == "male"
    assert model.decide(np.array([-1.5])).confidence == pytest.approx(1 / (1 + np.exp(-1.5)))  # m = 1: a alone
    blind = _model()
    assert blind.decide(np.full(2, 1.5)).confidence == pytest.approx(blind.decide(np.full(64, 1.5)).confidence)
    # beyond the largest group the slope was fitted on, a group counts as that size (no extrapolation)
    capped = _model(decision_size_slope=0.25, decision_size_max=64)
    assert capped.decide(np.full(4000, 1.5)).confidence == pytest.approx(speaker.confidence)
    model.to_npz(tmp_path / "sized.npz")
    again = GenderClassifier.from_npz(tmp_path / "sized.npz")
    assert (again.decision_size_slope, again.decision_size_max) == (0.25, 128.0)
    # a file written before the size slope existed loads with slope 0 and decides as it did
    blind.to_npz(tmp_path / "old.npz")
    with np.load(tmp_path / "old.npz") as data:
        arrays = {k: data[k] for k in data.files if k not in ("decision_size_slope", "decision_size_max")}
    np.savez(tmp_path / "older.npz", **arrays)
    older = GenderClassifier.from_npz(tmp_path / "older.npz")
    assert older.decision_size_slope == 0.0
    assert older.decide(np.full(64, 1.5)).confidence == pytest.approx(blind.decide(np.full(64, 1.5)).confidence)
    with pytest.raises(ModelError, match="decision_size_slope"):
        _model(decision_size_slope=-0.1)   # evidence cannot shrink as a group grows
    with pytest.raises(ModelError, match="decision_size_max"):
        _model(decision_size_slope=0.25, decision_size_max=0.5)


def test_bad_models_raise_model_error(tmp_path):
    with pytest.raises(ModelError):
        _model(abstain_below=1.0)
    with pytest.raises(ModelError):
        _model(window_calibration=(-1.0, 0.0))  # a decreasing calibration would flip genders
    with pytest.raises(ModelError):
        _model(feature_names=["a"] * 5)
    with pytest.raises(ModelError):
        GenderClassifier(mean=np.zeros(262), scale=np.ones(262), coef=np.zeros(262), intercept=0.0,
                         labels=("female", "male"))  # more than an embedding and no feature names
    (tmp_path / "x.npz").write_bytes(b"not an npz")
    with pytest.raises(ModelError):
        GenderClassifier.from_npz(tmp_path / "x.npz")
    np.savez(tmp_path / "y.npz", mean=np.zeros(256))
    with pytest.raises(ModelError, match="lacks"):
        GenderClassifier.from_npz(tmp_path / "y.npz")


def test_decide_turns_speaker_level_only_when_confident_and_agreeing():
    model = _model()
    # S1: 10 clearly male windows over two turns; S2: windows split 5 female / 5 male -> not agreeing;
    # S3: one lone unsure window
    z = np.concatenate([np.full(10, 4.0), np.full(5, -4.0), np.full(5, 4.0), [0.2]])
    turn_rows = [[np.arange(0, 5), np.arange(10, 15)], [np.arange(5, 10), np.arange(15, 20), np.array([20])]]
    speakers = [["S1", "S2"], ["S1", "S2", "S3"]]
    turns, by_speaker = decide_turns(model, turn_rows=turn_rows, turn_speakers=speakers, male_logits=z)
    assert by_speaker["S1"].gender == "male" and by_speaker["S2"] is None and by_speaker["S3"] is None
    assert [[d.gender for d in seg] for seg in turns] == [["male", "female"], ["male", "male", None]]
    # a clear speaker whose one turn strongly says the other gender keeps that turn's own decision
    z2 = np.concatenate([np.full(40, 4.0), np.full(5, -4.0)])
    lenient = _model(agree_min=0.5)
    turns2, spk2 = decide_turns(lenient, turn_rows=[[np.arange(40), np.arange(40, 45)]],
                                turn_speakers=[["S1", "S1"]], male_logits=z2)
    assert spk2["S1"].gender == "male" and [d.gender for d in turns2[0]] == ["male", "female"]
