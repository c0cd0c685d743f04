"""The seed project's features (dramapic.analysis.features): agreement with librosa, shapes, windows and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from dramapic.analysis import features as F

SR = 16_000


def _signal(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.7 * t)) + 0.02 * rng.normal(size=t.shape)
    return x.astype(np.float32)


def test_frame_features_match_librosa():
    import librosa

    y = _signal()
    n_fft, hop = 1024, 256
    x = F.frame_features(y=y, n_fft=n_fft)
    assert x.shape == (1 + len(y) // hop, len(F.FRAME_FEATURE_NAMES)) and x.dtype == np.float32
    mag = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop))
    col = {name: i for i, name in enumerate(F.FRAME_FEATURE_NAMES)}
    chroma = librosa.feature.chroma_stft(S=mag ** 2, sr=SR, tuning=0.0)
    assert np.allclose(x[:, col["chroma_0"]:col["chroma_0"] + 12], chroma.T, atol=1e-4)
    assert np.allclose(x[:, col["centroid_hz"]], librosa.feature.spectral_centroid(S=mag, sr=SR)[0], rtol=1e-3)
    assert np.allclose(x[:, col["bandwidth_hz"]], librosa.feature.spectral_bandwidth(S=mag, sr=SR)[0], rtol=1e-3)
    assert np.allclose(x[:, col["rolloff_hz"]], librosa.feature.spectral_rolloff(S=mag, sr=SR)[0])
    assert np.allclose(x[:, col["zcr"]], librosa.feature.zero_crossing_rate(y, frame_length=n_fft,
                                                                            hop_length=hop)[0], atol=2e-3)
    rms = librosa.feature.rms(S=mag, frame_length=n_fft)[0]
    assert np.allclose(x[:, col["rms_db"]], 20 * np.log10(rms + 1e-6), atol=1e-2)
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=mag ** 2, sr=SR, n_mels=40), top_db=None)
    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=13)
    assert np.allclose(x[:, col["mfcc_0"]:col["mfcc_0"] + 13], mfcc.T, atol=1e-2)
    delta = librosa.feature.delta(mfcc, width=9, mode="interp")
    assert np.allclose(x[:, col["mfcc_delta_0"]:], delta.T, atol=1e-2)


def test_chunked_stft_equals_one_stft():
    y = _signal(5.0)
    whole = F.frame_features(y=y, n_fft=512, chunk_s=60.0)
    pieces = F.frame_features(y=y, n_fft=512, chunk_s=0.7)
    assert np.allclose(whole, pieces, atol=1e-3)


@pytest.mark.parametrize("seconds, expected", [(0.3, 1), (1.0, 1), (1.2, 2), (3.0, 5), (3.2, 6)])
def test_windows_cover_the_signal(seconds, expected):
    n = int(seconds * SR)
    starts = F.window_starts(n_samples=n)
    assert len(starts) == expected and starts[0] == 0
    assert starts[-1] + SR >= n  # the last window reaches the end
    centres, x = F.window_features(y=_signal(seconds), n_fft=1024)
    assert x.shape == (expected, 2 * len(F.FRAME_FEATURE_NAMES)) == (len(centres), len(F.window_feature_names()))
    assert np.all(np.isfinite(x))
    centres2, patches = F.log_mel_patches(y=_signal(seconds))
    assert patches.shape == (expected, 64, 100) and np.allclose(centres, centres2)


def test_window_features_are_window_statistics():
    y = _signal(2.0)
    frames = F.frame_features(y=y, n_fft=1024).astype(np.float64)
    _, x = F.window_features(y=y, n_fft=1024, window_s=1.0, hop_s=0.5)
    # window 1 covers samples [8000, 24000): STFT frames centred at multiples of 256 in that span
    inside = frames[int(np.ceil(8000 / 256)):int(np.ceil(24000 / 256))]
    d = frames.shape[1]
    assert np.allclose(x[1, :d], inside.mean(axis=0), rtol=1e-4, atol=1e-3)
    assert np.allclose(x[1, d:], inside.std(axis=0), rtol=1e-3, atol=1e-3)


def test_log_mel_levels_follow_gain():
    y = _signal(2.0)
    _, a = F.log_mel_patches(y=y)
    _, b = F.log_mel_patches(y=y * 0.1)
    loud = a > -60
    assert np.allclose((a - b)[loud], 20.0, atol=0.1)


def test_windows_to_frames_interpolates_between_centres():
    values = np.array([[0.0, 1.0], [1.0, 0.0]])
    out = F.windows_to_frames(values=values, centres=np.array([0.5, 1.0]), n_frames=150)
    assert out.shape == (150, 2)
    assert out[10, 0] == 0.0 and out[140, 0] == 1.0  # held beyond the first / last centre
    assert out[74, 0] == pytest.approx(0.49, abs=1e-6)  # frame 74 is centred at 0.745 s
    with pytest.raises(ValueError):
        F.windows_to_frames(values=values, centres=np.array([0.5]), n_frames=10)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="mono"):
        F.frame_features(y=np.zeros((2, 16000), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        F.window_features(y=np.full(16000, np.nan, np.float32))
    with pytest.raises(TypeError):
        F.frame_features(_signal(1.0))  # keyword-only, like librosa
    with pytest.raises(ValueError):
        F.frame_features(y=_signal(1.0), n_fft=8)


def test_silence_gives_finite_features():
    centres, x = F.window_features(y=np.zeros(2 * SR, np.float32), n_fft=512)
    assert np.all(np.isfinite(x))
    _, p = F.log_mel_patches(y=np.zeros(2 * SR, np.float32))
    assert np.allclose(p, -100.0, atol=1e-3)
