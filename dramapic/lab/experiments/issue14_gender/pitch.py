"""Robust pitch (f0) features of speaker-embedding windows, for the female / male decision.

A plain-numpy YIN (de Cheveigné & Kawahara 2002: cumulative-mean-normalised difference function, absolute
threshold, parabolic refinement) on 20 ms frames at 8 kHz, restricted to 60-400 Hz, then per window a few order
statistics of log2-f0 over its *voiced* frames. Quantiles (not means) so that a few octave errors or frames of a
music bed that happen to pass the voicing test move the summary little. No numba / librosa: librosa 0.11's
``yin`` segfaults in this environment, and a deterministic numpy path keeps train and predict identical.

The features depend only on the samples inside each window, so a window gets the same features whether it was
cut from a training clip or from a recording under analysis (the embedding windows' ``times``).
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
FMIN_HZ = 60.0
FMAX_HZ = 400.0
ANALYSIS_RATE = 8_000        # f0 <= 400 Hz needs no more; halves every array (speed: RTF budget)
FRAME_HOP = 160              # 20 ms at 8 kHz: 75 frames per 1.5 s window are plenty for quantiles
INTEGRATION = 200            # 25 ms at 8 kHz: the YIN integration window (1.5 periods of 60 Hz)
THRESHOLD = 0.15             # YIN absolute threshold on the normalised difference
VOICED_MAX_D = 0.35          # a frame is voiced when its normalised-difference dip is below this
MIN_RMS = 10.0 ** (-55.0 / 20.0)  # frames quieter than -55 dBFS are unvoiced whatever their periodicity
_CHUNK_FRAMES = 4096         # frames per FFT batch (bounds memory)

FEATURE_NAMES = ("voiced_frac", "logf0_q10", "logf0_q50", "logf0_q90", "dip_q50", "no_pitch")
"""Columns of :func:`window_pitch_features`: share of voiced frames; 10th, 50th, 90th percentile of log2(f0/100 Hz)
over voiced frames; median normalised-difference dip of voiced frames (lower = more periodic); 1.0 when the
window has fewer than ``min_voiced`` voiced frames (its quantiles are then the neutral 0.5, about 141 Hz)."""
N_FEATURES = len(FEATURE_NAMES)
_NEUTRAL = (0.0, 0.5, 0.5, 0.5, VOICED_MAX_D, 1.0)  # log2(f0/100) = 0.5 is ~141 Hz, between the two genders


def frame_f0(audio: np.ndarray, *, sample_rate: int = SAMPLE_RATE, fmin: float = FMIN_HZ,
             fmax: float = FMAX_HZ) -> tuple[np.ndarray, np.ndarray]:
    """YIN f0 of every 20 ms frame (computed at 8 kHz).

    Parameters
    ----------
    audio : np.ndarray, shape (n_samples,)
        Mono waveform at ``sample_rate``; resampled to 8 kHz (polyphase, scipy) before the analysis.
    sample_rate : int
        Rate of ``audio``.
    fmin, fmax : float
        Search range in Hz.

    Returns
    -------
    f0 : np.ndarray, shape (n_frames,), float64
        Frequency in Hz; NaN where unvoiced. Frame ``k`` analyses 8 kHz samples ``[160 k, 160 k + 200 + lag_max]``.
    dip : np.ndarray, shape (n_frames,), float64
        The cumulative-mean-normalised difference at the chosen lag (0 = perfectly periodic, ~1 = noise).
    """
    x = np.asarray(audio, dtype=np.float64).ravel()
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not 0 < fmin < fmax < ANALYSIS_RATE / 2:
        raise ValueError(f"need 0 < fmin < fmax < {ANALYSIS_RATE // 2} Hz, got fmin={fmin}, fmax={fmax}")
    if sample_rate != ANALYSIS_RATE and len(x):
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(sample_rate), ANALYSIS_RATE)
        x = resample_poly(x, ANALYSIS_RATE // g, int(sample_rate) // g)
    sample_rate = ANALYSIS_RATE
    lag_min = max(2, int(np.floor(sample_rate / fmax)))
    lag_max = int(np.ceil(sample_rate / fmin))
    span = INTEGRATION + lag_max + 1
    n_frames = max(0, 1 + (len(x) - INTEGRATION) // FRAME_HOP) if len(x) >= INTEGRATION else 0
    f0 = np.full(n_frames, np.nan)
    dip = np.ones(n_frames)
    if n_frames == 0:
        return f0, dip
    xp = np.concatenate([x, np.zeros(span)])
    nfft = int(2 ** np.ceil(np.log2(span)))  # r(tau) for tau <= lag_max + 1 never wraps when nfft >= span
    lags = np.arange(lag_max + 2)
    for c0 in range(0, n_frames, _CHUNK_FRAMES):
        idx = np.arange(c0, min(n_frames, c0 + _CHUNK_FRAMES))
        frames = xp[idx[:, None] * FRAME_HOP + np.arange(span)[None, :]]           # (m, span)
        head = frames[:, :INTEGRATION]
        # r(tau) = sum_j x_j x_{j+tau}, j < INTEGRATION: cross-correlation via one FFT pair
        spec = np.fft.rfft(frames, nfft) * np.conj(np.fft.rfft(head, nfft))
        r = np.fft.irfft(spec, nfft)[:, :lag_max + 2]
        sq = np.concatenate([np.zeros((len(idx), 1)), np.cumsum(frames ** 2, axis=1)], axis=1)
        energy0 = sq[:, INTEGRATION]
        energy_tau = sq[:, lags + INTEGRATION] - sq[:, lags]
        d = np.maximum(energy0[:, None] + energy_tau - 2.0 * r, 0.0)              # difference function
        cum = np.cumsum(d[:, 1:], axis=1)
        cmnd = np.ones_like(d)
        cmnd[:, 1:] = d[:, 1:] * np.arange(1, d.shape[1]) / np.maximum(cum, 1e-12)
        band = cmnd[:, lag_min:lag_max + 1]
        below = band < THRESHOLD
        # first lag under the threshold, then walk down to its local minimum; else the global minimum
        first = np.where(below.any(axis=1), below.argmax(axis=1), band.argmin(axis=1))
        pos = first.copy()
        for _ in range(band.shape[1]):
            nxt = np.minimum(pos + 1, band.shape[1] - 1)
            step = band[np.arange(len(pos)), nxt] < band[np.arange(len(pos)), pos]
            if not step.any():
                break
            pos = np.where(step, nxt, pos)
        lag = pos + lag_min
        # parabolic interpolation of the dip
        a = cmnd[np.arange(len(lag)), lag - 1]
        b = cmnd[np.arange(len(lag)), lag]
        cc = cmnd[np.arange(len(lag)), np.minimum(lag + 1, cmnd.shape[1] - 1)]
        denom = a - 2.0 * b + cc
        shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - cc) / np.where(np.abs(denom) > 1e-12, denom, 1.0), 0.0)
        shift = np.clip(shift, -0.5, 0.5)
        freq = sample_rate / (lag + shift)
        rms = np.sqrt(energy0 / INTEGRATION)
        voiced = (b < VOICED_MAX_D) & (rms > MIN_RMS) & (freq >= fmin) & (freq <= fmax)
        f0[idx] = np.where(voiced, freq, np.nan)
        dip[idx] = b
    return f0, dip


def window_pitch_features(audio: np.ndarray, *, times: np.ndarray, sample_rate: int = SAMPLE_RATE,
                          min_voiced: int = 5) -> np.ndarray:
    """Pitch summary of every window.

    Parameters
    ----------
    audio : np.ndarray, shape (n_samples,)
        The mono recording (16 kHz) the windows were cut from (an array or anything sliceable like one).
    times : np.ndarray, shape (n, 2)
        Start and end (seconds) of every window, as returned by ``SpeakerEncoder.embed_windows``.
    sample_rate : int
        Rate of ``audio``.
    min_voiced : int
        Fewer voiced 20 ms frames than this in a window: its f0 quantiles are the neutral values and
        ``no_pitch`` is 1.

    Returns
    -------
    np.ndarray, shape (n, 6), float32
        Columns :data:`FEATURE_NAMES`. Deterministic: depends only on the window's samples.
    """
    times = np.asarray(times, dtype=np.float64).reshape(-1, 2)
    out = np.tile(np.asarray(_NEUTRAL, dtype=np.float32), (len(times), 1))
    for i, (t0, t1) in enumerate(times):
        a = max(0, int(round(t0 * sample_rate)))
        b = max(a, int(round(t1 * sample_rate)))
        piece = np.asarray(audio[a:b], dtype=np.float64)
        f0, dip = frame_f0(piece, sample_rate=sample_rate)
        if len(f0) == 0:
            continue
        voiced = np.isfinite(f0)
        out[i, 0] = voiced.mean()
        if voiced.sum() >= min_voiced:
            logf = np.log2(f0[voiced] / 100.0)
            out[i, 1:4] = np.quantile(logf, [0.1, 0.5, 0.9])
            out[i, 4] = np.median(dip[voiced])
            out[i, 5] = 0.0
    return out
