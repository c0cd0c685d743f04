"""Speaker embeddings: 256-d resemblyzer embeddings of fixed-length windows inside given regions.

The resemblyzer ``VoiceEncoder`` weights ship inside the resemblyzer wheel, so nothing is downloaded.
:meth:`SpeakerEncoder.embed_regions` is what stage 2 calls, on any :class:`AudioSource`: the decoded array in
memory or the spooled audio of a long input (read back a group of regions at a time).
"""

from __future__ import annotations

import warnings
from typing import Protocol, Sequence

import numpy as np

from ..errors import ModelError
from ..models import verify_pretrained
from ..progress import ProgressHook, silent_hook
from ..result import SAMPLE_RATE

EMBEDDING_DIM = 256
MIN_REGION_S = 0.3
"""A region shorter than the window still yields one (zero-padded, centred) window when at least this long."""
#: the most audio :meth:`SpeakerEncoder.embed_regions` reads from a source that is not in memory at once
SOURCE_GROUP_S = 120.0


_FRAME_HOP = 160            # samples per mel frame (10 ms at 16 kHz), fixed by resemblyzer's hparams
_TARGET_DBFS = -30.0        # quieter windows are raised to this loudness (resemblyzer's increase-only target)
_SILENT_RMS = 1e-4          # windows quieter than -80 dBFS are not amplified further than from this level
_BATCH = 64                 # windows per LSTM forward pass
_CHUNK_WINDOWS = 64         # windows per mel-spectrogram chunk of a long region (bounds memory)


class AudioSource(Protocol):
    """Mono 16 kHz float32 audio, shape (n_samples,), that can be sliced: ``audio[a:b]`` -> np.ndarray (b - a,).

    An ``np.ndarray`` is one; so is :class:`dramapic.analysis.streaming.SpooledAudio`, which reads only the slice.
    """

    def __len__(self) -> int: ...

    def __getitem__(self, key: slice) -> np.ndarray: ...


def _as_mono_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono, shape (n_samples,); got shape {audio.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if sample_rate != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(sample_rate), SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // g, int(sample_rate) // g).astype(np.float32)
    return audio


class SpeakerEncoder:
    """Batched window embeddings from resemblyzer's ``VoiceEncoder`` on the CPU.

    The mel spectrogram (resemblyzer's own ``wav_to_mel_spectrogram``) is computed once per region (in chunks
    for long regions); windows are sliced from it, windows quieter than -30 dBFS are raised to that level
    (resemblyzer's own increase-only volume normalisation, applied per window to the mel power), and the LSTM
    runs on batches of windows under ``torch.no_grad``. Model weights ship inside the resemblyzer wheel.
    """

    def __init__(self) -> None:
        try:
            import torch

            with warnings.catch_warnings():  # resemblyzer's imports warn about pkg_resources and scipy namespaces
                warnings.filterwarnings("ignore", message=".*pkg_resources.*", category=UserWarning)
                warnings.filterwarnings("ignore", message=".*binary_dilation.*", category=DeprecationWarning)
                from resemblyzer import VoiceEncoder
        except ImportError as err:  # pragma: no cover - dependency missing
            raise ModelError(f"the speaker encoder needs resemblyzer and torch: {err}") from None
        verify_pretrained("resemblyzer")  # the wheel's weights, against models.PRETRAINED
        try:
            self._encoder = VoiceEncoder("cpu", verbose=False)
        except Exception as err:  # resemblyzer raises a bare Exception when its weights are missing
            raise ModelError(f"cannot load the resemblyzer voice encoder: {err}") from None
        self._encoder.eval()
        self._torch = torch
        import resemblyzer

        self.version = getattr(resemblyzer, "__version__", None) or _dist_version("resemblyzer")

    # -- public API -------------------------------------------------------------------------------------------

    def embed_windows(
        self,
        audio: np.ndarray,
        *,
        sample_rate: int,
        regions: Sequence[tuple[float, float]],
        window_s: float,
        hop_s: float,
        progress: ProgressHook = silent_hook,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Embed fixed-length windows laid inside ``regions``.

        Parameters
        ----------
        audio : np.ndarray, shape (n_samples,)
            Mono waveform, float in [-1, 1].
        sample_rate : int
            Rate of ``audio``; resampled to 16 kHz when different.
        regions : sequence of (start_s, end_s)
            Stretches (seconds) to embed, typically the voice segments; clipped to the audio.
        window_s, hop_s : float
            Window length and step (seconds, on the 10 ms frame grid). Inside a region windows start every
            ``hop_s``; when the tail left uncovered is longer than half a hop, one more window ending at the
            region end is added. A region shorter than ``window_s`` but at least ``MIN_REGION_S`` (0.3 s) long
            yields one window: its frames, centred and zero-padded to the window length.
        progress : ProgressHook
            Called as ``progress("speakers", windows_done, windows_total)``.

        Returns
        -------
        times : np.ndarray, shape (n, 2), float64
            Start and end (seconds) of every window's audio, always inside its region.
        embeddings : np.ndarray, shape (n, 256), float32
            L2-normalised embeddings (non-negative: resemblyzer ends in a ReLU); all zeros for a window of pure
            digital silence, which has no direction.
        """
        times, embeddings, _ = self._embed_array(audio, sample_rate, regions, window_s, hop_s, progress)
        return times, embeddings

    def embed_clip(self, audio: np.ndarray, *, sample_rate: int, window_s: float = 1.5,
                   hop_s: float = 0.75) -> np.ndarray:
        """One embedding of a whole clip: the L2-normalised mean of its window embeddings.

        Parameters
        ----------
        audio : np.ndarray, shape (n_samples,)
            Mono waveform.
        sample_rate : int
            Rate of ``audio``.
        window_s, hop_s : float
            As in :meth:`embed_windows` (the defaults match :class:`~dramapic.config.SpeakersConfig`).

        Returns
        -------
        np.ndarray, shape (256,), float32
            L2-normalised; all zeros when the clip is shorter than ``MIN_REGION_S``.
        """
        return self.embed_clips([audio], sample_rate=sample_rate, window_s=window_s, hop_s=hop_s)[0]

    def embed_clips(self, clips: Sequence[np.ndarray], *, sample_rate: int, window_s: float = 1.5,
                    hop_s: float = 0.75) -> np.ndarray:
        """:meth:`embed_clip` of several clips at once (their windows share LSTM batches: much faster).

        Parameters
        ----------
        clips : sequence of np.ndarray, each shape (n_samples_i,)
            Mono waveforms, all at ``sample_rate``.
        sample_rate : int
            Their rate.
        window_s, hop_s : float
            As in :meth:`embed_windows`.

        Returns
        -------
        np.ndarray, shape (n_clips, 256), float32
            Row i equals ``embed_clip(clips[i])``: the mel spectrogram never crosses a clip boundary.
        """
        wavs = [_as_mono_16k(c, sample_rate) for c in clips]
        if not wavs:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        bounds = np.concatenate([[0], np.cumsum([len(w) for w in wavs])])
        regions = [(bounds[i] / SAMPLE_RATE, bounds[i + 1] / SAMPLE_RATE) for i in range(len(wavs))]
        _, emb, region = self._embed_array(np.concatenate(wavs), SAMPLE_RATE, regions, window_s, hop_s)
        out = np.zeros((len(wavs), EMBEDDING_DIM), dtype=np.float32)
        np.add.at(out, region, emb)
        return l2(out)

    def embed_regions(self, audio: AudioSource, *, sample_rate: int, regions: Sequence[tuple[float, float]],
                      window_s: float, hop_s: float, progress: ProgressHook = silent_hook,
                      group_s: float = SOURCE_GROUP_S) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Embed fixed-length windows laid inside ``regions`` of any :class:`AudioSource`.

        Parameters
        ----------
        audio : AudioSource, shape (n_samples,)
            An array in memory (any rate: resampled to 16 kHz), or a source that is only sliced, such as the
            spooled audio (16 kHz): its regions are read a group at a time (at most ``group_s`` of audio, laid end
            to end in a compact array, each region exactly as it lies in the recording) and window times mapped
            back. Windows depend only on their region's samples, so both give the same windows and embeddings.
        sample_rate : int
            Rate of ``audio``.
        regions, window_s, hop_s, progress
            As in :meth:`embed_windows`.
        group_s : float
            The most audio read from a sliced source at once.

        Returns
        -------
        times : np.ndarray, shape (n, 2), float64
        embeddings : np.ndarray, shape (n, 256), float32
            As in :meth:`embed_windows`.
        region_index : np.ndarray, shape (n,), int64
            Which region each window belongs to.
        """
        if isinstance(audio, np.ndarray):
            return self._embed_array(audio, sample_rate, regions, window_s, hop_s, progress)
        return self._embed_source(audio, sample_rate, regions, window_s, hop_s, progress,
                                  group=max(1, int(round(group_s * SAMPLE_RATE))))

    # -- internals ----------------------------------------------------------------------------------------------

    def _embed_source(self, audio, sample_rate, regions, window_s, hop_s, progress, *, group):
        """:meth:`embed_regions` of a sliced source, reading up to ``group`` samples of regions at a time."""
        rate = SAMPLE_RATE
        if sample_rate != rate:
            raise ValueError(f"a sliced audio source must be at {rate} Hz, not {sample_rate}")
        n = len(audio)
        # region bounds in samples, clipped to the audio as _embed_array clips them
        bounds = []
        for start, end in regions:
            a = int(round(max(float(start), 0.0) * rate))
            b = int(round(min(max(float(end), 0.0), n / rate) * rate))
            bounds.append((min(a, n), min(max(a, b), n)))
        groups, current, size = [], [], 0
        for r, (a, b) in enumerate(bounds):
            if current and size + (b - a) > group:
                groups.append(current)
                current, size = [], 0
            current.append(r)
            size += b - a
        if current:
            groups.append(current)
        if not groups:
            return self._embed_array(np.zeros(0, np.float32), rate, [], window_s, hop_s, progress)
        total_samples = max(1, sum(b - a for a, b in bounds))
        times, embeddings, region_index = [], [], []
        done_windows, done_samples = 0, 0
        for members in groups:
            pieces = [audio[bounds[r][0]:bounds[r][1]] for r in members]
            offsets = np.concatenate([[0], np.cumsum([p.shape[0] for p in pieces])]).astype(np.int64)
            compact = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
            group_samples = int(offsets[-1])
            rest = total_samples - done_samples - group_samples

            def report(stage, done, total, _before=done_windows, _rest=rest, _size=max(group_samples, 1)):
                # windows still to come, estimated from the audio still to read
                ahead = int(np.ceil(total * _rest / _size)) if _rest > 0 else 0
                progress(stage, _before + done, _before + total + (max(ahead, 1) if _rest > 0 else 0))

            sub_regions = [(int(o) / rate, int(o + p.shape[0]) / rate) for o, p in zip(offsets[:-1], pieces)]
            t, e, r = self._embed_array(compact, rate, sub_regions, window_s, hop_s, report)
            shift = np.asarray([bounds[g][0] for g in members], dtype=np.int64) - offsets[:-1]
            samples = np.rint(np.asarray(t, dtype=np.float64) * rate).astype(np.int64) + shift[r][:, None]
            times.append(samples / rate)
            embeddings.append(e)
            region_index.append(np.asarray(members, dtype=np.int64)[r])
            done_windows += len(r)
            done_samples += group_samples
        return np.concatenate(times), np.concatenate(embeddings), np.concatenate(region_index)

    def _embed_array(self, audio, sample_rate, regions, window_s, hop_s, progress=silent_hook):
        """:meth:`embed_regions` of an array in memory."""
        from resemblyzer.audio import wav_to_mel_spectrogram

        wav = _as_mono_16k(audio, sample_rate)
        n_win = max(1, int(round(window_s * SAMPLE_RATE / _FRAME_HOP)))
        n_hop = max(1, int(round(hop_s * SAMPLE_RATE / _FRAME_HOP)))
        plans = [_plan_region(wav.shape[0], start, end, n_win, n_hop) for start, end in regions]
        total = sum(len(p[2]) for p in plans)
        times = np.zeros((total, 2), dtype=np.float64)
        region_index = np.zeros(total, dtype=np.int64)
        embeddings = np.zeros((total, EMBEDDING_DIM), dtype=np.float32)
        if total == 0:
            progress("speakers", 0, 0)
            return times, embeddings, region_index

        target_rms = 10.0 ** (_TARGET_DBFS / 20.0)
        batch: list[np.ndarray] = []
        batch_rows: list[int] = []
        row = 0
        done = 0

        def flush() -> None:
            nonlocal done
            if not batch:
                return
            with self._torch.no_grad():
                mels = self._torch.from_numpy(np.stack(batch))
                out = self._encoder(mels).cpu().numpy()
            out = np.nan_to_num(out, nan=0.0)  # an all-zero window (digital silence) gives 0/0
            embeddings[batch_rows] = out
            done += len(batch)
            batch.clear()
            batch_rows.clear()
            progress("speakers", done, total)

        for r, (a, b_end, starts) in enumerate(plans):
            if len(starts) == 0:
                continue
            for c0 in range(0, len(starts), _CHUNK_WINDOWS):
                chunk = starts[c0:c0 + _CHUNK_WINDOWS]
                s0 = a + int(chunk[0]) * _FRAME_HOP
                s1 = min(b_end, a + (int(chunk[-1]) + n_win) * _FRAME_HOP)
                seg = wav[s0:s1]
                mel = wav_to_mel_spectrogram(seg)  # (frames, 40), frame k centred on sample s0 + 160 k
                for f in chunk:
                    off = int(f) - int(chunk[0])
                    ws = s0 + off * _FRAME_HOP
                    we = min(s1, ws + n_win * _FRAME_HOP)
                    piece = mel[off:off + n_win]
                    if piece.shape[0] < n_win:  # short region: centre it and pad with zero power
                        pad = n_win - piece.shape[0]
                        piece = np.pad(piece, ((pad // 2, pad - pad // 2), (0, 0)))
                    rms = float(np.sqrt(np.mean(np.square(wav[ws:we], dtype=np.float64)))) if we > ws else 0.0
                    gain = max(1.0, target_rms / max(rms, _SILENT_RMS))  # raise quiet windows only
                    batch.append((piece * gain ** 2).astype(np.float32, copy=False))  # mel is power: gain squared
                    batch_rows.append(row)
                    times[row] = (ws / SAMPLE_RATE, we / SAMPLE_RATE)
                    region_index[row] = r
                    row += 1
                    if len(batch) >= _BATCH:
                        flush()
        flush()
        return times, embeddings, region_index


def _plan_region(n_samples: int, start: float, end: float, n_win: int,
                 n_hop: int) -> tuple[int, int, np.ndarray]:
    """``(start_sample, end_sample, offsets)``: window starts in frames from the region start, shape (k,)."""
    a = int(round(max(start, 0.0) * SAMPLE_RATE))
    b = int(round(min(max(end, 0.0), n_samples / SAMPLE_RATE) * SAMPLE_RATE))
    if b - a < int(MIN_REGION_S * SAMPLE_RATE):
        return a, max(a, b), np.zeros(0, dtype=np.int64)
    n_frames = (b - a) // _FRAME_HOP
    if n_frames <= n_win:
        return a, b, np.zeros(1, dtype=np.int64)
    starts = list(range(0, n_frames - n_win + 1, n_hop))
    if n_frames - (starts[-1] + n_win) > n_hop / 2:
        starts.append(n_frames - n_win)
    return a, b, np.asarray(starts, dtype=np.int64)


def l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(norm > 0, x / np.maximum(norm, 1e-12), 0.0).astype(np.float32)


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"
