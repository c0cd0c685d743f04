"""Stage 2 for voice: speaker embeddings, diarization (who speaks when) and the female / male decision.

Everything here works on 256-d speaker embeddings from the resemblyzer ``VoiceEncoder`` (its weights ship
inside the resemblyzer wheel, so nothing is downloaded). Audio is cut into fixed-length windows that lie inside
the voice segments found by stage 1; every window gets one L2-normalised embedding. The windows are then

* clustered (agglomerative, average linkage, cosine distance) into speakers,
* re-segmented: each voice segment is split where the speaker changes (Viterbi over the windows' similarity to
  the speaker centroids, refined with extra windows around every change), and
* scored female / male by a small logistic-regression model (:class:`GenderClassifier`) trained by
  :mod:`dramapic.train` on embeddings computed through exactly the same feature path
  (:meth:`SpeakerEncoder.embed_clip`); a speaker's gender is decided on all of its windows together.

:func:`label_voice_segments` returns, per voice segment, the :class:`VoiceTurn` s that cover it and one
:class:`~dramapic.result.SpeakerSummary` per speaker; :func:`diarize_windows` is the same on windows already
embedded; :func:`to_annotation` turns segments or turns into a ``pyannote.core.Annotation``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import ModelError
from ..progress import ProgressHook, silent_hook
from ..result import GENDERS, SpeakerSummary

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
_OVERRIDE_P = 0.8           # a turn's own windows override its speaker's gender above this mean probability
_OVERRIDE_MIN_WINDOWS = 3   # ... and only with at least this many windows


@dataclass(frozen=True)
class SpeakerOptions:
    """Settings of :func:`label_voice_segments`.

    Attributes
    ----------
    window_s : float
        Length of one embedding window in seconds (rounded to the 10 ms mel-frame grid).
    hop_s : float
        Step between the windows that are clustered and scored for gender inside one voice segment.
    refine_hop_s : float
        Step of the extra windows laid around every change of speaker found at ``hop_s``: the resolution of
        change points (no refinement when it is not smaller than ``hop_s``).
    cluster_threshold : float
        Cosine-distance threshold at which agglomerative (average-linkage) clustering stops merging; it sets the
        speaker count when ``num_speakers`` is not given. Tuned on the dev mixes (see ``models/README.md``).
    min_speakers, max_speakers : int
        Bounds on the automatic speaker count.
    num_speakers : int or None
        Force exactly this many clusters (fewer only when there are fewer windows); disables ``min_speaker_s``
        and the bounds.
    min_speaker_s : float
        Clusters with less talk time than this are merged into the nearest cluster (by centroid cosine
        similarity), smallest first, while more than ``min_speakers`` are left.
    switch_penalty : float
        Re-segmentation: cost (in cosine-similarity units) of a change of speaker between two neighbouring
        windows of one voice segment.
    min_turn_s : float
        Re-segmentation: shorter turns inside a voice segment are given to a neighbouring turn.
    """

    window_s: float = 1.5
    hop_s: float = 0.75
    refine_hop_s: float = 0.25
    cluster_threshold: float = 0.38
    min_speakers: int = 1
    max_speakers: int = 8
    num_speakers: int | None = None
    min_speaker_s: float = 6.0
    switch_penalty: float = 0.1
    min_turn_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.window_s > 0.2:
            raise ValueError(f"window_s must be > 0.2 s, got {self.window_s}")
        if not 0 < self.hop_s <= self.window_s:
            raise ValueError(f"hop_s must be in (0, window_s], got {self.hop_s}")
        if not self.refine_hop_s > 0:
            raise ValueError(f"refine_hop_s must be > 0, got {self.refine_hop_s}")
        if not 0 < self.cluster_threshold < 2:
            raise ValueError(f"cluster_threshold must be in (0, 2), got {self.cluster_threshold}")
        if self.min_speakers < 1:
            raise ValueError(f"min_speakers must be >= 1, got {self.min_speakers}")
        if self.max_speakers < self.min_speakers:
            raise ValueError(f"max_speakers must be >= min_speakers ({self.min_speakers}), got {self.max_speakers}")
        if self.num_speakers is not None and self.num_speakers < 1:
            raise ValueError(f"num_speakers must be >= 1 or None, got {self.num_speakers}")
        if self.min_speaker_s < 0:
            raise ValueError(f"min_speaker_s must be >= 0, got {self.min_speaker_s}")
        if self.switch_penalty < 0:
            raise ValueError(f"switch_penalty must be >= 0, got {self.switch_penalty}")
        if self.min_turn_s < 0:
            raise ValueError(f"min_turn_s must be >= 0, got {self.min_turn_s}")


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


class SpeakerProjection:
    """A linear map of speaker embeddings into a space where speakers separate better (an LDA trained by speaker).

    resemblyzer's space mixes who speaks with how: one actor's acted emotions lie as far apart as two different
    readers. Linear discriminant analysis fitted on many utterances per training speaker (emotions, music and
    noise underneath) keeps the directions that separate speakers and drops those that vary within one, so the
    clustering and re-segmentation run on :meth:`transform` of the embeddings. The gender model keeps the raw ones.

    The parameters live in an ``.npz`` of plain arrays (``mean`` (256,), ``components`` (256, d)); see
    :func:`dramapic.train.train_speaker_projection`.
    """

    def __init__(self, *, mean: np.ndarray, components: np.ndarray, model_info: dict[str, Any] | None = None) -> None:
        mean = np.asarray(mean, dtype=np.float64).ravel()
        components = np.asarray(components, dtype=np.float64)
        if mean.shape != (EMBEDDING_DIM,) or components.ndim != 2 or components.shape[0] != EMBEDDING_DIM \
                or not 1 <= components.shape[1] <= EMBEDDING_DIM:
            raise ModelError(f"speaker projection has wrong shapes: mean {mean.shape}, components {components.shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(components))):
            raise ModelError("speaker projection holds non-finite parameters")
        self._mean, self._components = mean, components
        self.model_info: dict[str, Any] = dict(model_info or {})

    @property
    def dim(self) -> int:
        return int(self._components.shape[1])

    @classmethod
    def from_manifest(cls, manifest, name: str = "speaker-lda") -> "SpeakerProjection":
        """Load projection ``name`` listed in ``manifest`` (sha256-verified).

        Raises
        ------
        ModelError
            Not listed, file missing or altered, or malformed.
        """
        entry = manifest.get(name)
        path = entry.file()
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in ("mean", "components")}
        except (OSError, ValueError, KeyError) as err:
            raise ModelError(f"speaker projection {path} is unreadable: {err}") from None
        return cls(**arrays, model_info=entry.to_dict())

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        """Projected, L2-normalised embeddings.

        Parameters
        ----------
        embeddings : np.ndarray, shape (n, 256)

        Returns
        -------
        np.ndarray, shape (n, d), float32
            All-zero input rows (windows of digital silence) stay all-zero.
        """
        x = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
        if x.shape[1] != EMBEDDING_DIM:
            raise ValueError(f"embeddings must have shape (n, {EMBEDDING_DIM}), got {x.shape}")
        empty = ~np.any(x != 0, axis=1)
        out = _l2((x - self._mean) @ self._components)
        out[empty] = 0.0
        return out


@dataclass(frozen=True)
class VoiceTurn:
    """One speaker turn: a stretch of a voice segment given to a single speaker.

    Attributes
    ----------
    start, end : float
        Seconds; the turns of one voice segment are consecutive and cover it exactly.
    speaker : str or None
        ``"S1"``, ``"S2"``, ...; None only when no voice segment of the input was long enough to embed.
    gender : str or None
        ``"female"`` or ``"male"``; None as for ``speaker``.
    gender_scores : dict
        ``{"female": p, "male": 1 - p}``, the probabilities the decision was taken from.
    confidence : float
        Probability of the chosen gender (0.5 .. 1; 0 when ``gender`` is None).
    """

    start: float
    end: float
    speaker: str | None
    gender: str | None
    gender_scores: dict[str, float] = field(default_factory=dict)
    confidence: float = 0.0

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class VoiceLabelling:
    """The result of :func:`label_voice_segments`.

    Attributes
    ----------
    turns : tuple of tuple of VoiceTurn
        Per input segment (input order), its turns in time order: consecutive, covering the segment exactly,
        neighbours with different speakers.
    speakers : tuple of SpeakerSummary
        ``S1`` first (the speaker with most talk time); ``seconds`` is the summed duration of the speaker's
        turns; ``gender`` / ``gender_confidence`` come from all of the speaker's windows together.
    """

    turns: tuple[tuple[VoiceTurn, ...], ...] = ()
    speakers: tuple[SpeakerSummary, ...] = ()


def to_annotation(segments: Sequence[Any], uri: str | None = None):
    """A ``pyannote.core.Annotation`` of who speaks when.

    Parameters
    ----------
    segments : sequence
        Objects with ``start``, ``end`` and ``speaker`` attributes (:class:`~dramapic.result.Segment`,
        :class:`VoiceTurn`) or mappings with those keys. Items with a ``label`` other than ``"voice"``, without
        a speaker or with no duration are skipped.
    uri : str, optional
        The annotation's uri (the RTTM file id).

    Returns
    -------
    pyannote.core.Annotation
        One track per kept item (track names ``t0``, ``t1``, ... in input order), labelled with the speaker id.
    """
    from pyannote.core import Annotation
    from pyannote.core import Segment as Span

    annotation = Annotation(uri=uri)
    for i, item in enumerate(segments):
        get = item.get if isinstance(item, dict) else (lambda key, obj=item: getattr(obj, key, None))
        label, speaker = get("label"), get("speaker")
        start, end = float(get("start")), float(get("end"))
        if (label is not None and label != "voice") or not speaker or end <= start:
            continue
        annotation[Span(start, end), f"t{i}"] = str(speaker)
    return annotation


# -- clustering ------------------------------------------------------------------------------------------------

def _cluster(embeddings: np.ndarray, weights: np.ndarray, options: SpeakerOptions) -> np.ndarray:
    """Cluster ids (n,) in 0..k-1 for L2-normalised ``embeddings`` (n, 256); ``weights`` (n,) are seconds.

    Memory is bounded: above ``_MAX_CLUSTER_WINDOWS`` windows a seeded random subsample of that many is
    clustered (the condensed distance matrix of the subsample is the only quadratic object) and every window
    goes to the nearest centroid of the subsample's clusters.
    """
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
        low, high = min(options.min_speakers, len(pick)), options.max_speakers
        if sub.max() > high:
            # Outlier windows (overlaps, music under speech, coughs) form many tiny clusters far from everything;
            # cutting the tree at `high` clusters would merge real speakers to keep those apart. Fold the clusters
            # with the least talk into their nearest neighbour instead, until `high` are left.
            sub = _merge_small(x, weights[pick], sub, np.inf, keep=high)
        elif sub.max() < low:
            sub = fcluster(z, t=low, criterion="maxclust")
    sub = np.unique(sub, return_inverse=True)[1]
    if len(pick) < n:  # assign every window to the nearest centroid of the subsample's clusters
        cent = _l2(np.stack([x[sub == k].mean(axis=0) for k in range(sub.max() + 1)]))
        ids = np.argmax(embeddings @ cent.T, axis=1)
    else:
        ids = sub
    if options.num_speakers is None and options.min_speaker_s > 0:
        ids = _merge_small(embeddings, weights, ids, options.min_speaker_s, keep=options.min_speakers)
    return np.unique(ids, return_inverse=True)[1].astype(np.int64)


def _merge_small(embeddings: np.ndarray, weights: np.ndarray, ids: np.ndarray, min_s: float,
                 keep: int = 1) -> np.ndarray:
    """Merge clusters with less than ``min_s`` seconds into the nearest centroid, smallest first, while more
    than ``keep`` clusters are left."""
    ids = ids.copy()
    while True:
        present = np.unique(ids)
        if len(present) <= max(1, keep):
            return ids
        talk = np.array([weights[ids == k].sum() for k in present])
        smallest = int(np.argmin(talk))
        if talk[smallest] >= min_s:
            return ids
        cent = _l2(np.stack([embeddings[ids == k].mean(axis=0) for k in present]))
        sims = cent @ cent[smallest]
        sims[smallest] = -np.inf
        ids[ids == present[smallest]] = present[int(np.argmax(sims))]


# -- re-segmentation ---------------------------------------------------------------------------------------------

def _viterbi(scores: np.ndarray, penalty: float) -> np.ndarray:
    """Best state path (m,) through ``scores`` (m, k) with a cost ``penalty`` for every change of state."""
    from .smoothing import best_path

    return best_path(scores, switch_penalty=penalty)


def _runs(path: np.ndarray) -> list[list[int]]:
    """``[[first, last_exclusive, state], ...]`` of the constant stretches of ``path``."""
    change = np.flatnonzero(np.diff(path)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(path)]])
    return [[int(a), int(b), int(path[a])] for a, b in zip(starts, ends)]


def _segment_turns(start: float, end: float, centres: np.ndarray, sims: np.ndarray, penalty: float,
                   min_turn_s: float) -> list[tuple[float, float, int, int, int]]:
    """Turns of one voice segment from its windows (time order).

    ``centres`` (m,) are window centres, ``sims`` (m, k) cosine similarities to the speaker centroids.
    Returns ``(start, end, cluster, first_window, last_window_exclusive)`` per turn. A change between windows
    i and i + 1 is placed half-way between their centres; turns shorter than ``min_turn_s`` are given to the
    neighbour whose speaker their windows resemble more, shortest first, until none is left or one turn remains.
    """
    runs = _runs(_viterbi(sims, penalty))

    def bounds(rs):
        cuts = [0.5 * (centres[r[0] - 1] + centres[r[0]]) for r in rs[1:]]
        edges = [start, *[min(max(c, start), end) for c in cuts], end]
        return [edges[j + 1] - edges[j] for j in range(len(rs))], edges

    while len(runs) > 1:
        lengths, _ = bounds(runs)
        j = int(np.argmin(lengths))
        if lengths[j] >= max(min_turn_s, 0.01):  # never a turn of (almost) no duration
            break
        a, b = runs[j][0], runs[j][1]
        options = [n for n in (j - 1, j + 1) if 0 <= n < len(runs)]
        target = max(options, key=lambda n: float(sims[a:b, runs[n][2]].sum()))
        if target < j:
            runs[target][1] = b
        else:
            runs[target][0] = a
        del runs[j]
        merged = [runs[0]]  # neighbours that now share a speaker become one run
        for r in runs[1:]:
            if r[2] == merged[-1][2]:
                merged[-1][1] = r[1]
            else:
                merged.append(r)
        runs = merged
    _, edges = bounds(runs)
    return [(edges[j], edges[j + 1], r[2], r[0], r[1]) for j, r in enumerate(runs)]


def _decide(p_female: float) -> tuple[str, dict[str, float], float]:
    gender = "female" if p_female >= 0.5 else "male"
    scores = {"female": float(p_female), "male": float(1.0 - p_female)}
    return gender, scores, float(max(p_female, 1.0 - p_female))


def diarize_windows(
    segments: np.ndarray,
    times: np.ndarray,
    embeddings: np.ndarray,
    region: np.ndarray,
    p_female: np.ndarray,
    options: SpeakerOptions = SpeakerOptions(),
    *,
    projection: SpeakerProjection | None = None,
) -> VoiceLabelling:
    """The diarization proper, on windows already embedded and scored (no audio, no model, no refinement).

    Parameters
    ----------
    segments : np.ndarray, shape (n_seg, 2)
        Voice segments (start, end) in seconds.
    times : np.ndarray, shape (n, 2)
        Start and end of every window.
    embeddings : np.ndarray, shape (n, 256)
        L2-normalised window embeddings; all-zero rows (digital silence) are ignored.
    region : np.ndarray, shape (n,), int
        The segment each window lies in.
    p_female : np.ndarray, shape (n,)
        The gender model's female probability of each window.
    options : SpeakerOptions
    projection : SpeakerProjection, optional
        Cluster and re-segment in this space (see :class:`SpeakerProjection`).

    Returns
    -------
    VoiceLabelling
        See :func:`label_voice_segments` (steps 2 to 6; every window given is clustered).
    """
    return _diarize(segments, times, embeddings, region, p_female, options, projection=projection)[0]


def _valid(times, emb, region, p_female):
    """Drop windows of pure digital silence (all-zero embeddings: no direction, no evidence)."""
    emb = np.asarray(emb, dtype=np.float32)
    keep = np.linalg.norm(emb, axis=1) > 0
    return (np.asarray(times, dtype=np.float64).reshape(-1, 2)[keep], emb[keep],
            np.asarray(region, dtype=np.int64)[keep], np.asarray(p_female, dtype=np.float64)[keep])


def _diarize(segments, times, embeddings, region, p_female, options, centroids=None, projection=None):
    """:func:`diarize_windows`, also returning the centroids (k, d) (in the projected space when ``projection`` is
    given) and the raw turns ``[[(start, end, cluster, window_rows), ...] per segment]``; with ``centroids`` given
    nothing is clustered."""
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

    # 1. cluster the windows; each carries an equal share of its segment's duration
    per_seg = np.bincount(region, minlength=n_seg)
    if centroids is None:
        seg_dur = np.clip(seg[:, 1] - seg[:, 0], 0.0, None)
        ids = _cluster(emb, seg_dur[region] / per_seg[region], options)
        centroids = _l2(np.stack([emb[ids == c].mean(axis=0) for c in range(int(ids.max()) + 1)]))
    cent = centroids
    k = cent.shape[0]

    # 2. re-segment every voice segment against the centroids (Viterbi, then a minimum turn length)
    centres = times.mean(axis=1)
    order = np.lexsort((centres, region))
    offsets = np.concatenate([[0], np.cumsum(per_seg)])
    raw: list[list[tuple[float, float, int, np.ndarray]]] = []
    for s in range(n_seg):
        rows = order[offsets[s]:offsets[s + 1]]
        if len(rows) == 0:
            raw.append([])
            continue
        turns = _segment_turns(float(seg[s, 0]), float(seg[s, 1]), centres[rows], emb[rows] @ cent.T,
                               options.switch_penalty, options.min_turn_s)
        raw.append([(a, b, c, rows[i:j]) for a, b, c, i, j in turns])
    has = np.flatnonzero(per_seg > 0)
    for s in np.flatnonzero(per_seg == 0):  # no usable window: the speaker of the nearest turn in time
        gap = np.maximum(0.0, np.maximum(seg[has, 0] - seg[s, 1], seg[s, 0] - seg[has, 1]))
        near = int(has[int(np.argmin(gap))])
        c = raw[near][0][2] if seg[near, 0] >= seg[s, 1] else raw[near][-1][2]
        raw[s] = [(float(seg[s, 0]), float(seg[s, 1]), c, np.zeros(0, dtype=np.int64))]

    # 3. number speakers by talk time; clusters that won no turn are dropped
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

    # 4. genders: per speaker from all of its windows; a turn keeps it unless its own windows strongly disagree
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
    log.debug("speakers: %d segments, %d windows, %d clusters, %d speakers, %d turns", n_seg, emb.shape[0], k,
              len(speakers), sum(len(t) for t in out))
    return VoiceLabelling(turns=tuple(out), speakers=tuple(speakers)), cent, raw


def _refinement_starts(segments: np.ndarray, times: np.ndarray, raw, window_s: float,
                       fine_hop_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Start times and segments of the extra windows that refine each change of speaker.

    Between the last window of a turn and the first window of the next one, windows are added every
    ``fine_hop_s`` (inside the segment, not repeating an existing start), so that the second pass can place the
    change at ``fine_hop_s`` resolution. Returns ``(starts (m,), region (m,))``.
    """
    starts, regions = [], []
    for s, turns in enumerate(raw):
        lo, hi = float(segments[s, 0]), float(segments[s, 1]) - window_s
        for left, right in zip(turns, turns[1:]):
            if len(left[3]) == 0 or len(right[3]) == 0:
                continue
            a, b = float(times[left[3][-1], 0]), float(times[right[3][0], 0])
            for t in np.arange(a + fine_hop_s, b - 0.5 * fine_hop_s, fine_hop_s):
                if lo - 1e-6 <= t <= hi + 1e-6:
                    starts.append(min(max(t, lo), hi))
                    regions.append(s)
    return np.asarray(starts, dtype=np.float64), np.asarray(regions, dtype=np.int64)


def label_voice_segments(
    audio: np.ndarray,
    *,
    sample_rate: int,
    segments: Sequence[tuple[float, float]],
    encoder: SpeakerEncoder,
    gender_model: GenderClassifier,
    options: SpeakerOptions = SpeakerOptions(),
    projection: SpeakerProjection | None = None,
    progress: ProgressHook = silent_hook,
) -> VoiceLabelling:
    """Who speaks when inside the voice segments of one recording, with each speaker's gender.

    Parameters
    ----------
    audio : np.ndarray, shape (n_samples,)
        The whole mono recording.
    sample_rate : int
        Its rate (resampled to 16 kHz for the encoder when different).
    segments : sequence of (start_s, end_s)
        The voice segments (stage 1), any order, not overlapping. They are not merged; each is split into
        turns where the speaker changes.
    encoder : SpeakerEncoder
        Embeds the windows.
    gender_model : GenderClassifier
        Scores every window female / male (``predict_proba``).
    options : SpeakerOptions
        Window, clustering, speaker-count and re-segmentation settings.
    projection : SpeakerProjection, optional
        Steps 2-3 run on the projected embeddings (the trained ``speaker-lda`` of the default pipeline); the
        gender model always scores the raw embeddings.
    progress : ProgressHook
        Called as ``progress("speakers", windows_embedded, windows_total)``, finally with done == total.

    Returns
    -------
    VoiceLabelling
        Per segment (input order) a tuple of :class:`VoiceTurn` covering it exactly, and the speakers, ``S1``
        talking most.

    Notes
    -----
    1. Windows (``options.window_s`` / ``hop_s``: 1.5 s every 0.75 s) are embedded inside every segment
       (:meth:`SpeakerEncoder.embed_windows`) and scored female / male.
    2. Windows are clustered: average-linkage agglomerative clustering on cosine distance, stopped at
       ``cluster_threshold``, the count then clamped to ``[min_speakers, max_speakers]`` (or exactly
       ``num_speakers``); above ``max_speakers`` the clusters with the least talk are folded into their nearest
       neighbour, so that outlier windows never make two real speakers merge. Above 3,000 windows a seeded random subsample of 3,000 is clustered and every window
       goes to the nearest cluster centroid, so memory stays linear in the input length. Clusters whose talk
       time (each window carries an equal share of its segment's duration) is below ``min_speaker_s`` are merged
       into the nearest cluster (not with ``num_speakers``, and never below ``min_speakers``).
    3. Re-segmentation: inside each segment a Viterbi pass over the windows' cosine similarities to the cluster
       centroids, with ``switch_penalty`` for every change of speaker, gives each window a speaker. Between the
       last window of a turn and the first of the next, extra windows are embedded every ``refine_hop_s``
       (0.25 s) and a second pass over all windows (same centroids, no re-clustering) places each change half-way
       between the centres of the two windows either side of it. Turns shorter than ``min_turn_s`` go to the
       neighbouring speaker their windows resemble more. Overlapped speech therefore
       gets one speaker, the one whose voice dominates the windows (usually the louder), and interjections
       shorter than ``min_turn_s`` are absorbed by the surrounding turn.
    4. A segment with no usable window (shorter than 0.3 s, or digital silence) takes the speaker of the turn
       nearest in time.
    5. Speakers are numbered by talk time (the summed duration of their turns), ``S1`` most; a cluster that won
       no turn is dropped.
    6. A speaker's gender is the decision on the mean female probability over *all* windows of its turns. A
       turn takes its speaker's gender and scores, except when the turn's own windows (at least 3) give the
       other gender a mean probability above 0.8: then the turn's own mean decides (a likely clustering error
       or overlapped speech of someone else).
    """
    n_seg = len(segments)
    if n_seg == 0:
        progress("speakers", 0, 0)
        return VoiceLabelling()
    seg = np.asarray([(float(s), float(e)) for s, e in segments], dtype=np.float64).reshape(n_seg, 2)
    times, emb, region = encoder._embed(audio, sample_rate, [tuple(r) for r in seg], options.window_s,
                                        options.hop_s, progress)
    p_female = gender_model.predict_proba(emb)[:, 0] if emb.shape[0] else np.zeros(0)
    times, emb, region, p_female = _valid(times, emb, region, p_female)
    result, cent, raw = _diarize(seg, times, emb, region, p_female, options, projection=projection)
    if options.refine_hop_s >= options.hop_s or not any(len(turns) > 1 for turns in raw):
        return result
    starts, where = _refinement_starts(seg, times, raw, options.window_s, options.refine_hop_s)
    if len(starts) == 0:
        return result
    # each extra window is embedded as a region of exactly one window (same feature path as the others)
    extra_t, extra_e, extra_r = encoder._embed(audio, sample_rate, [(t, t + options.window_s) for t in starts],
                                               options.window_s, options.window_s)
    extra_p = gender_model.predict_proba(extra_e)[:, 0] if extra_e.shape[0] else np.zeros(0)
    times = np.concatenate([times, extra_t])
    emb = np.concatenate([emb, extra_e])
    region = np.concatenate([region, where[extra_r]])
    p_female = np.concatenate([p_female, extra_p])
    log.debug("speakers: %d windows added around %d changes", len(extra_t), sum(len(t) - 1 for t in raw))
    return _diarize(seg, times, emb, region, p_female, options, centroids=cent, projection=projection)[0]
