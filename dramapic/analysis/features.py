"""The seed project's hand-made audio features, and the windowing shared by the window-level ensemble members.

The original student project described each stretch of audio by librosa statistics: chroma (``chroma_stft``)
mean and variance, STFT band means, spectral centroid / bandwidth / roll-off, zero-crossing rate, RMS and 13 MFCCs
with their deltas, with the STFT size fixed per stage (``n_fft`` 1024 for voice / song / noise, 512 for gender,
``hop = n_fft / 4``). :func:`frame_features` computes those per STFT frame, :func:`window_features` summarises them
(mean and standard deviation) over fixed windows. :func:`log_mel_patches` cuts the log-mel patches the CNN member
reads. Every function is keyword-only, works on 16 kHz mono float audio and documents its shapes.

Windows: a window of ``window_s`` starts every ``hop_s`` from the start of the signal; when the last window does not
reach the end, one more window ending exactly at the end is added, so every sample is covered. A signal shorter
than one window yields one window (zero-padded on the right). :func:`windows_to_frames` spreads per-window values
onto the 10 ms frame grid by linear interpolation between window centres (held constant beyond the first and last).
"""

from __future__ import annotations

import numpy as np

from ..result import FRAME_S, SAMPLE_RATE

N_BANDS = 16
N_MFCC = 13
N_CHROMA = 12
_EPS = 1e-10

#: Names of the per-frame seed features, in column order of :func:`frame_features`.
FRAME_FEATURE_NAMES: tuple[str, ...] = (
    *(f"chroma_{k}" for k in range(N_CHROMA)),
    *(f"band_db_{k}" for k in range(N_BANDS)),
    "centroid_hz", "bandwidth_hz", "rolloff_hz", "zcr", "rms_db",
    *(f"mfcc_{k}" for k in range(N_MFCC)),
    *(f"mfcc_delta_{k}" for k in range(N_MFCC)),
)


def window_feature_names() -> tuple[str, ...]:
    """Names of the columns of :func:`window_features`: ``mean_<f>`` for every frame feature, then ``std_<f>``."""
    return tuple(f"mean_{n}" for n in FRAME_FEATURE_NAMES) + tuple(f"std_{n}" for n in FRAME_FEATURE_NAMES)


def _check_audio(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"audio must be mono with shape (n_samples,), got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("audio holds NaN or infinite samples")
    return y


def frame_features(*, y: np.ndarray, sr: int = SAMPLE_RATE, n_fft: int = 1024, hop_length: int | None = None,
                   chunk_s: float = 60.0) -> np.ndarray:
    """Seed features of every STFT frame.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio, float in [-1, 1].
    sr : int
        Sample rate of ``y``.
    n_fft : int
        STFT size (1024 for stage 1, 512 for gender in the seed project); Hann window, centred frames.
    hop_length : int, optional
        STFT hop; ``n_fft // 4`` when omitted.
    chunk_s : float
        The STFT is computed in chunks of about this length (with ``n_fft`` samples of context on each side) so
        that memory stays bounded on long inputs; the result equals one STFT over the whole signal.

    Returns
    -------
    np.ndarray, shape (n_frames, 59), float32
        ``n_frames = 1 + n_samples // hop_length``; frame ``t`` is centred on sample ``t * hop_length``. Columns
        (:data:`FRAME_FEATURE_NAMES`): 12 chroma (``chroma_stft``, tuning fixed at 0, max-normalised), 16 band
        levels in dB (mean power of 16 equal-width bands of the power spectrum), spectral centroid, bandwidth and
        85 % roll-off in Hz, zero-crossing rate, RMS in dBFS, 13 MFCCs (40 mel bands) and their deltas (9-frame
        Savitzky-Golay, ``librosa.feature.delta``).
    """
    import librosa

    y = _check_audio(y)
    hop = int(hop_length or n_fft // 4)
    if n_fft < 16 or hop < 1:
        raise ValueError(f"need n_fft >= 16 and hop_length >= 1, got {n_fft}, {hop}")
    n_frames = 1 + y.shape[0] // hop
    chunk = max(1, int(chunk_s * sr) // hop) * hop
    parts = []
    mel_basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=40)
    chroma_basis = librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=0.0, n_chroma=N_CHROMA)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    edges = np.linspace(0, freqs.shape[0], N_BANDS + 1).astype(int)
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa's "hann"
    padded = np.pad(y, (n_fft // 2, n_fft // 2 + hop))
    for first in range(0, n_frames, chunk // hop):
        last = min(n_frames, first + chunk // hop)
        seg = padded[first * hop:(last - 1) * hop + n_fft]
        frames = np.lib.stride_tricks.sliding_window_view(seg, n_fft)[::hop][: last - first]
        spec = np.fft.rfft(frames * window, axis=1)
        power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)  # (t, bins)
        mag = np.sqrt(power)
        chroma = power @ chroma_basis.T
        chroma = chroma / np.maximum(chroma.max(axis=1, keepdims=True), _EPS)
        bands = np.stack([power[:, a:b].mean(axis=1) for a, b in zip(edges[:-1], edges[1:])], axis=1)
        bands_db = 10.0 * np.log10(bands + _EPS)
        total = mag.sum(axis=1) + _EPS
        centroid = (mag @ freqs) / total
        bandwidth = np.sqrt((mag * (freqs[None, :] - centroid[:, None]) ** 2).sum(axis=1) / total)
        cumulative = np.cumsum(mag, axis=1)
        rolloff = freqs[np.minimum((cumulative < 0.85 * cumulative[:, -1:]).sum(axis=1), freqs.shape[0] - 1)]
        signs = np.signbit(frames)
        zcr = (signs[:, 1:] != signs[:, :-1]).mean(axis=1)
        # RMS as librosa.feature.rms(S=...) computes it from the spectrum of the windowed frame
        rms = np.sqrt(2.0 * power.sum(axis=1) - power[:, 0] - power[:, -1]) / n_fft
        rms_db = 20.0 * np.log10(rms + 1e-6)
        mel_db = librosa.power_to_db(power @ mel_basis.T, ref=1.0, top_db=None)
        mfcc = librosa.feature.mfcc(S=mel_db.T, n_mfcc=N_MFCC).T
        parts.append(np.column_stack([chroma, bands_db, centroid, bandwidth, rolloff, zcr, rms_db, mfcc]))
    base = np.concatenate(parts).astype(np.float32)
    mfcc = base[:, -N_MFCC:]
    if mfcc.shape[0] >= 9:
        delta = librosa.feature.delta(mfcc.T, width=9, mode="interp").T
    else:
        delta = np.zeros_like(mfcc)
    return np.column_stack([base, delta]).astype(np.float32)


def window_starts(*, n_samples: int, sr: int = SAMPLE_RATE, window_s: float = 1.0, hop_s: float = 0.5) -> np.ndarray:
    """Start samples of the analysis windows (see the module docstring).

    Returns
    -------
    np.ndarray, shape (n_windows,), int64
    """
    win, hop = int(round(window_s * sr)), int(round(hop_s * sr))
    if win < 1 or hop < 1:
        raise ValueError("window_s and hop_s must be positive")
    if n_samples <= win:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n_samples - win + 1, hop, dtype=np.int64)
    if starts[-1] + win < n_samples:
        starts = np.append(starts, n_samples - win)
    return starts


def window_features(*, y: np.ndarray, sr: int = SAMPLE_RATE, n_fft: int = 1024, hop_length: int | None = None,
                    window_s: float = 1.0, hop_s: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The seed feature vector of every window: mean and standard deviation of :func:`frame_features`.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
    sr, n_fft, hop_length
        As in :func:`frame_features`.
    window_s, hop_s : float
        Window length and step in seconds.

    Returns
    -------
    centres : np.ndarray, shape (n_windows,), float64
        Centre of each window in seconds.
    features : np.ndarray, shape (n_windows, 118), float32
        Columns :func:`window_feature_names`: the mean of the 59 frame features over the STFT frames whose centre
        lies in the window, then their standard deviation.
    """
    y = _check_audio(y)
    hop = int(hop_length or n_fft // 4)
    frames = frame_features(y=y, sr=sr, n_fft=n_fft, hop_length=hop).astype(np.float64)
    starts = window_starts(n_samples=y.shape[0], sr=sr, window_s=window_s, hop_s=hop_s)
    win = int(round(window_s * sr))
    # STFT frame t is centred on sample t*hop: a window [s, s+win) holds frames ceil(s/hop) .. ceil((s+win)/hop)-1
    first = np.minimum(-(-starts // hop), frames.shape[0] - 1)
    last = np.maximum(np.minimum(-(-(starts + win) // hop), frames.shape[0]), first + 1)
    zero = np.zeros((1, frames.shape[1]))
    s1 = np.concatenate([zero, np.cumsum(frames, axis=0)])
    s2 = np.concatenate([zero, np.cumsum(frames * frames, axis=0)])
    count = (last - first)[:, None].astype(np.float64)
    mean = (s1[last] - s1[first]) / count
    var = np.maximum((s2[last] - s2[first]) / count - mean * mean, 0.0)
    centres = (starts + min(win, max(y.shape[0], 1)) / 2) / sr
    return centres.astype(np.float64), np.column_stack([mean, np.sqrt(var)]).astype(np.float32)


def log_mel_patches(*, y: np.ndarray, sr: int = SAMPLE_RATE, n_mels: int = 64, window_s: float = 1.0,
                    hop_s: float = 0.5, n_fft: int = 400, frame_s: float = FRAME_S) -> tuple[np.ndarray, np.ndarray]:
    """Log-mel patches of every window (the CNN member's input).

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
    sr : int
    n_mels : int
        Mel bands (Slaney mel scale, 0 Hz to ``sr / 2``).
    window_s, hop_s : float
        Windows as in :func:`window_starts`.
    n_fft : int
        STFT size (Hann window); the STFT hop is ``frame_s``.
    frame_s : float
        Frame step in seconds (the 10 ms grid).

    Returns
    -------
    centres : np.ndarray, shape (n_windows,), float64
        Window centres in seconds.
    patches : np.ndarray, shape (n_windows, n_mels, n_steps), float32
        ``10 * log10(mel power + 1e-10)`` with ``n_steps = round(window_s / frame_s)``; frame k of a patch is
        centred ``(k + 0.5) * frame_s`` after the window start. Absolute levels are kept (dB re full scale);
        padding beyond the signal is digital silence.
    """
    import librosa

    y = _check_audio(y)
    hop = int(round(frame_s * sr))
    steps = int(round(window_s / frame_s))
    starts = window_starts(n_samples=y.shape[0], sr=sr, window_s=window_s, hop_s=hop_s)
    n_total = max(int(starts[-1]) // hop + steps, 1)
    # frame k centred on sample k*hop + hop/2: pad so frame k's window starts at k*hop + hop/2 - n_fft/2
    left = n_fft // 2 - hop // 2
    padded = np.pad(y, (left, max(0, n_total * hop + n_fft - y.shape[0] - left)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_total]
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    spec = np.fft.rfft(frames * window, axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    mel = power @ librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels).T
    mel_db = (10.0 * np.log10(mel + 1e-10)).astype(np.float32)  # (n_total, n_mels)
    index = (starts // hop)[:, None] + np.arange(steps)[None, :]
    patches = mel_db[index].transpose(0, 2, 1)
    win = int(round(window_s * sr))
    centres = (starts + min(win, max(y.shape[0], 1)) / 2) / sr
    return centres.astype(np.float64), np.ascontiguousarray(patches)


def windows_to_frames(*, values: np.ndarray, centres: np.ndarray, n_frames: int,
                      frame_s: float = FRAME_S) -> np.ndarray:
    """Spread per-window values onto the frame grid by linear interpolation between window centres.

    Parameters
    ----------
    values : np.ndarray, shape (n_windows, k)
    centres : np.ndarray, shape (n_windows,)
        Window centres in seconds, increasing.
    n_frames : int
        Frames of the output grid; frame ``i`` is centred at ``(i + 0.5) * frame_s``.
    frame_s : float
        Frame step of the output grid in seconds.

    Returns
    -------
    np.ndarray, shape (n_frames, k), float32
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != np.asarray(centres).shape[0] or values.shape[0] == 0:
        raise ValueError(f"values {values.shape} do not match {np.asarray(centres).shape[0]} window centres")
    t = (np.arange(n_frames) + 0.5) * frame_s
    out = np.stack([np.interp(t, centres, values[:, k]) for k in range(values.shape[1])], axis=1)
    return out.astype(np.float32)
