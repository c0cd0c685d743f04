"""Stage 2 for voice: speaker embeddings, a simple diarization and the female / male decision.

Everything here works on 256-d speaker embeddings from the resemblyzer ``VoiceEncoder`` (its weights ship
inside the resemblyzer wheel, so nothing is downloaded). Audio is cut into fixed-length windows that lie inside
the voice segments found by stage 1; every window gets one L2-normalised embedding. The windows are then

* clustered (agglomerative, average linkage, cosine distance) into speakers, and
* scored female / male by a small logistic-regression model (:class:`GenderClassifier`) trained by
  :mod:`dramapic.train` on embeddings computed through exactly the same feature path
  (:meth:`SpeakerEncoder.embed_clip`).

:func:`label_voice_segments` combines both into one :class:`VoiceLabel` per voice segment and one
:class:`~dramapic.result.SpeakerSummary` per speaker.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .errors import ModelError
from .progress import ProgressHook, silent_hook
from .result import GENDERS, SpeakerSummary

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
"""The rate the encoder works at; other rates are resampled."""

EMBEDDING_DIM = 256
MIN_REGION_S = 0.3
"""A region shorter than the window still yields one (zero-padded, centred) window when at least this long."""

_FRAME_HOP = 160            # samples per mel frame (10 ms at 16 kHz), fixed by resemblyzer's hparams
_TARGET_DBFS = -30.0        # quieter windows are raised to this loudness (resemblyzer's increase-only target)
_SILENT_RMS = 1e-4          # windows quieter than -80 dBFS are not amplified further than from this level
_BATCH = 64                 # windows per LSTM forward pass
_CHUNK_WINDOWS = 64         # windows per mel-spectrogram chunk of a long region (bounds memory)
_MAX_CLUSTER_WINDOWS = 3000  # above this, cluster a seeded random subsample and assign the rest to centroids
_OVERRIDE_P = 0.8           # a segment's own windows override its speaker's gender above this mean probability
_OVERRIDE_MIN_WINDOWS = 2   # ... and only with at least this many windows


@dataclass(frozen=True)
class SpeakerOptions:
    """Settings of :func:`label_voice_segments`.

    Attributes
    ----------
    window_s : float
        Length of one embedding window in seconds (rounded to the 10 ms mel-frame grid).
    hop_s : float
        Step between windows inside one voice segment.
    cluster_threshold : float
        Cosine-distance threshold at which agglomerative (average-linkage) clustering stops merging; it sets the
        speaker count when ``num_speakers`` is not given. Tuned on the dev mixes (see ``models/README.md``).
    max_speakers : int
        Upper bound on the automatic speaker count.
    num_speakers : int or None
        Force exactly this many clusters (fewer only when there are fewer windows); disables ``min_speaker_s``.
    min_speaker_s : float
        Clusters with less talk time than this are merged into the nearest cluster (by centroid cosine
        similarity), smallest first, unless only one cluster is left.
    """

    window_s: float = 1.5
    hop_s: float = 0.75
    cluster_threshold: float = 0.38
    max_speakers: int = 8
    num_speakers: int | None = None
    min_speaker_s: float = 6.0

    def __post_init__(self) -> None:
        if not self.window_s > 0.2:
            raise ValueError(f"window_s must be > 0.2 s, got {self.window_s}")
        if not 0 < self.hop_s <= self.window_s:
            raise ValueError(f"hop_s must be in (0, window_s], got {self.hop_s}")
        if not 0 < self.cluster_threshold < 2:
            raise ValueError(f"cluster_threshold must be in (0, 2), got {self.cluster_threshold}")
        if self.max_speakers < 1:
            raise ValueError(f"max_speakers must be >= 1, got {self.max_speakers}")
        if self.num_speakers is not None and self.num_speakers < 1:
            raise ValueError(f"num_speakers must be >= 1 or None, got {self.num_speakers}")
        if self.min_speaker_s < 0:
            raise ValueError(f"min_speaker_s must be >= 0, got {self.min_speaker_s}")


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
        times, embeddings, _ = self._embed(audio, sample_rate, regions, window_s, hop_s, progress)
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
            As in :meth:`embed_windows` (the defaults match :class:`SpeakerOptions`).

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
        _, emb, region = self._embed(np.concatenate(wavs), SAMPLE_RATE, regions, window_s, hop_s)
        out = np.zeros((len(wavs), EMBEDDING_DIM), dtype=np.float32)
        np.add.at(out, region, emb)
        return _l2(out)

    # -- internals ----------------------------------------------------------------------------------------------

    def _embed(self, audio, sample_rate, regions, window_s, hop_s, progress=silent_hook):
        """As :meth:`embed_windows`, plus ``region_index`` (n,) int: which region each window belongs to."""
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


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(norm > 0, x / np.maximum(norm, 1e-12), 0.0).astype(np.float32)


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


class GenderClassifier:
    """Female / male probabilities from speaker embeddings: a standard scaler and a logistic regression.

    The parameters live in an ``.npz`` of plain arrays (``mean``, ``scale``, ``coef``, ``intercept``,
    ``labels``), read with ``allow_pickle=False``; :meth:`from_manifest` verifies its sha256 first.
    """

    labels = GENDERS  # ("female", "male")

    def __init__(self, *, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 labels: Sequence[str], model_info: dict[str, Any] | None = None) -> None:
        mean = np.asarray(mean, dtype=np.float64).ravel()
        scale = np.asarray(scale, dtype=np.float64).ravel()
        coef = np.asarray(coef, dtype=np.float64).reshape(-1)
        intercept = float(np.asarray(intercept, dtype=np.float64).reshape(-1)[0])
        labels = tuple(str(x) for x in labels)
        if not (mean.shape == scale.shape == coef.shape == (EMBEDDING_DIM,)):
            raise ModelError(f"gender model has wrong shapes: mean {mean.shape}, scale {scale.shape}, "
                             f"coef {coef.shape}; expected ({EMBEDDING_DIM},)")
        if sorted(labels) != sorted(self.labels) or len(labels) != 2:
            raise ModelError(f"gender model labels {labels} are not {self.labels}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(coef)) and np.all(scale > 0)):
            raise ModelError("gender model holds non-finite or non-positive parameters")
        self._mean, self._scale, self._coef, self._intercept = mean, scale, coef, intercept
        self._positive = labels[1]  # sklearn's classes_[1]: the class the logit is for
        self.model_info: dict[str, Any] = dict(model_info or {})

    @classmethod
    def from_npz(cls, path, *, model_info: dict[str, Any] | None = None) -> "GenderClassifier":
        """Load the arrays from ``path`` without any pickle (no checksum check: use :meth:`from_manifest`)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in ("mean", "scale", "coef", "intercept", "labels")}
        except (OSError, ValueError, KeyError) as err:
            raise ModelError(f"gender model {path} is unreadable: {err}") from None
        return cls(**arrays, model_info=model_info)

    @classmethod
    def from_manifest(cls, manifest, name: str = "gender-resemblyzer-lr") -> "GenderClassifier":
        """Load model ``name`` listed in ``manifest`` (a :class:`dramapic.models.Manifest`).

        Raises
        ------
        ModelError
            The model is not listed, its file is missing or altered (sha256 mismatch), or malformed.
        """
        entry = manifest.get(name)
        return cls.from_npz(entry.file(), model_info=entry.to_dict())

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """Probabilities of each gender.

        Parameters
        ----------
        embeddings : np.ndarray, shape (n, 256) or (256,)
            Embeddings from :class:`SpeakerEncoder`.

        Returns
        -------
        np.ndarray, shape (n, 2), float64
            Columns ``female``, ``male`` (the order of :attr:`labels`); rows sum to 1.
        """
        x = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
        if x.shape[1] != EMBEDDING_DIM:
            raise ValueError(f"embeddings must have shape (n, {EMBEDDING_DIM}), got {x.shape}")
        logit = ((x - self._mean) / self._scale) @ self._coef + self._intercept
        p_pos = 0.5 * (1.0 + np.tanh(0.5 * logit))  # numerically stable sigmoid
        p_male = p_pos if self._positive == "male" else 1.0 - p_pos
        return np.column_stack([1.0 - p_male, p_male])


@dataclass(frozen=True)
class VoiceLabel:
    """Speaker and gender of one voice segment.

    Attributes
    ----------
    speaker : str or None
        ``"S1"``, ``"S2"``, ...; None only when no segment of the input was long enough to embed.
    gender : str or None
        ``"female"`` or ``"male"``; None as for ``speaker``.
    gender_scores : dict
        ``{"female": p, "male": 1 - p}``, the probabilities the decision was taken from.
    confidence : float
        Probability of the chosen gender (0.5 .. 1; 0 when ``gender`` is None).
    """

    speaker: str | None
    gender: str | None
    gender_scores: dict[str, float] = field(default_factory=dict)
    confidence: float = 0.0


@dataclass(frozen=True)
class VoiceLabelling:
    """The result of :func:`label_voice_segments`.

    Attributes
    ----------
    labels : tuple of VoiceLabel
        One per input segment, in input order.
    speakers : tuple of SpeakerSummary
        ``S1`` first (the speaker with most talk time); ``seconds`` is the summed duration of the segments
        assigned to the speaker; ``gender`` / ``gender_confidence`` come from all of the speaker's windows.
    """

    labels: tuple[VoiceLabel, ...] = ()
    speakers: tuple[SpeakerSummary, ...] = ()


def _cluster(embeddings: np.ndarray, weights: np.ndarray, options: SpeakerOptions) -> np.ndarray:
    """Cluster ids (n,) in 0..k-1 for L2-normalised ``embeddings`` (n, 256); ``weights`` (n,) are seconds."""
    from scipy.cluster.hierarchy import fcluster, linkage

    n = embeddings.shape[0]
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    if n > _MAX_CLUSTER_WINDOWS:
        rng = np.random.default_rng(0)
        pick = np.sort(rng.choice(n, size=_MAX_CLUSTER_WINDOWS, replace=False))
    else:
        pick = np.arange(n)
    x = embeddings[pick].astype(np.float64)
    z = linkage(x, method="average", metric="cosine")
    z[:, 2] = np.maximum(z[:, 2], 0.0)  # rounding can give tiny negative distances
    if options.num_speakers is not None:
        sub = fcluster(z, t=min(options.num_speakers, len(pick)), criterion="maxclust")
    else:
        sub = fcluster(z, t=options.cluster_threshold, criterion="distance")
        if sub.max() > options.max_speakers:
            sub = fcluster(z, t=options.max_speakers, criterion="maxclust")
    sub = np.unique(sub, return_inverse=True)[1]
    if len(pick) < n:  # assign every window to the nearest centroid of the subsample's clusters
        cent = _l2(np.stack([x[sub == k].mean(axis=0) for k in range(sub.max() + 1)]))
        ids = np.argmax(embeddings @ cent.T, axis=1)
    else:
        ids = sub
    if options.num_speakers is None and options.min_speaker_s > 0:
        ids = _merge_small(embeddings, weights, ids, options.min_speaker_s)
    return np.unique(ids, return_inverse=True)[1].astype(np.int64)


def _merge_small(embeddings: np.ndarray, weights: np.ndarray, ids: np.ndarray, min_s: float) -> np.ndarray:
    """Merge clusters with less than ``min_s`` seconds into the nearest centroid, smallest first."""
    ids = ids.copy()
    while True:
        present = np.unique(ids)
        if len(present) <= 1:
            return ids
        talk = np.array([weights[ids == k].sum() for k in present])
        smallest = int(np.argmin(talk))
        if talk[smallest] >= min_s:
            return ids
        cent = _l2(np.stack([embeddings[ids == k].mean(axis=0) for k in present]))
        sims = cent @ cent[smallest]
        sims[smallest] = -np.inf
        ids[ids == present[smallest]] = present[int(np.argmax(sims))]


def _decide(p_female: float) -> tuple[str, dict[str, float], float]:
    gender = "female" if p_female >= 0.5 else "male"
    scores = {"female": float(p_female), "male": float(1.0 - p_female)}
    return gender, scores, float(max(p_female, 1.0 - p_female))


def label_voice_segments(
    audio: np.ndarray,
    *,
    sample_rate: int,
    segments: Sequence[tuple[float, float]],
    encoder: SpeakerEncoder,
    gender_model: GenderClassifier,
    options: SpeakerOptions = SpeakerOptions(),
    progress: ProgressHook = silent_hook,
) -> VoiceLabelling:
    """Speaker ids and genders for the voice segments of one recording.

    Parameters
    ----------
    audio : np.ndarray, shape (n_samples,)
        The whole mono recording.
    sample_rate : int
        Its rate (resampled to 16 kHz for the encoder when different).
    segments : sequence of (start_s, end_s)
        The voice segments (stage 1), any order; they are not merged or split.
    encoder : SpeakerEncoder
        Embeds the windows.
    gender_model : GenderClassifier
        Scores every window female / male.
    options : SpeakerOptions
        Window, clustering and merging settings.
    progress : ProgressHook
        Called as ``progress("speakers", windows_embedded, windows_total)``, finally with done == total.

    Returns
    -------
    VoiceLabelling
        One :class:`VoiceLabel` per segment (same order) and the speakers, ``S1`` talking most.

    Notes
    -----
    1. Windows (``options.window_s`` / ``hop_s``) are embedded inside every segment
       (:meth:`SpeakerEncoder.embed_windows`).
    2. Windows are clustered (average linkage on cosine distance, stopped at ``cluster_threshold``, at most
       ``max_speakers`` clusters, or exactly ``num_speakers``); above 3,000 windows a seeded random subsample of
       3,000 is clustered and every window goes to the nearest cluster centroid. Clusters whose talk time (each
       window carries an equal share of its segment's duration) is below ``min_speaker_s`` are merged into the
       nearest cluster.
    3. A segment's speaker is the majority cluster of its windows (ties: the higher summed cosine similarity to
       the cluster centroids). A segment with no usable window (shorter than 0.3 s, or digital silence) takes
       the speaker of the segment nearest in time that has one.
    4. Speakers are numbered by talk time (the summed duration of their segments), ``S1`` most; a cluster that
       won no segment is dropped.
    5. A speaker's gender is the decision on the mean female probability over *all* its windows. A segment
       takes its speaker's gender and scores, except when the segment's own windows (at least 2) give the
       other gender a mean probability above 0.8: then the segment's own mean decides (a likely clustering
       error or overlapped speech of someone else).
    """
    n_seg = len(segments)
    if n_seg == 0:
        progress("speakers", 0, 0)
        return VoiceLabelling()
    seg = np.asarray([(float(s), float(e)) for s, e in segments], dtype=np.float64).reshape(n_seg, 2)
    times, emb, region = encoder._embed(audio, sample_rate, [tuple(r) for r in seg], options.window_s,
                                        options.hop_s, progress)
    valid = np.linalg.norm(emb, axis=1) > 0  # windows of pure digital silence embed to zeros: no evidence
    emb, region = emb[valid], region[valid]
    n_win = emb.shape[0]
    if n_win == 0:
        return VoiceLabelling(labels=tuple(VoiceLabel(None, None, {}, 0.0) for _ in range(n_seg)), speakers=())

    seg_dur = np.clip(seg[:, 1] - seg[:, 0], 0.0, None)
    per_seg = np.bincount(region, minlength=n_seg)
    weights = seg_dur[region] / per_seg[region]
    ids = _cluster(emb, weights, options)
    k = int(ids.max()) + 1
    cent = _l2(np.stack([emb[ids == c].mean(axis=0) for c in range(k)]))
    sim = np.einsum("ij,ij->i", emb, cent[ids])
    p_female = gender_model.predict_proba(emb)[:, 0]

    # 3. majority speaker per segment
    seg_cluster = np.full(n_seg, -1, dtype=np.int64)
    for s in np.flatnonzero(per_seg):
        rows = region == s
        votes = np.bincount(ids[rows], minlength=k).astype(np.float64)
        tie = np.bincount(ids[rows], weights=sim[rows], minlength=k)
        best = votes.max()
        seg_cluster[s] = int(np.argmax(np.where(votes == best, tie, -np.inf)))
    has = np.flatnonzero(seg_cluster >= 0)
    for s in np.flatnonzero(seg_cluster < 0):
        gap = np.maximum(0.0, np.maximum(seg[has, 0] - seg[s, 1], seg[s, 0] - seg[has, 1]))
        seg_cluster[s] = seg_cluster[has[int(np.argmin(gap))]]

    # 4. number speakers by talk time
    talk = np.bincount(seg_cluster, weights=seg_dur, minlength=k)
    won = np.bincount(seg_cluster, minlength=k) > 0
    order = [c for c in sorted(range(k), key=lambda c: (-talk[c], c)) if won[c]]
    name = {c: f"S{i + 1}" for i, c in enumerate(order)}

    # 5. genders
    spk_gender = {}
    speakers = []
    for c in order:
        decision = _decide(float(p_female[ids == c].mean()))
        spk_gender[c] = decision
        speakers.append(SpeakerSummary(id=name[c], gender=decision[0], seconds=float(talk[c]),
                                       gender_confidence=decision[2]))
    labels = []
    for s in range(n_seg):
        c = int(seg_cluster[s])
        gender, scores, conf = spk_gender[c]
        if per_seg[s] >= _OVERRIDE_MIN_WINDOWS:
            own = float(p_female[region == s].mean())
            other = 1.0 - own if gender == "female" else own
            if other > _OVERRIDE_P:
                gender, scores, conf = _decide(own)
        labels.append(VoiceLabel(speaker=name[c], gender=gender, gender_scores=dict(scores), confidence=conf))
    log.debug("speakers: %d segments, %d windows, %d clusters, %d speakers", n_seg, n_win, k, len(speakers))
    return VoiceLabelling(labels=tuple(labels), speakers=tuple(speakers))
