"""``analyze(path, pipeline) -> AnalysisResult``: what ``run``, ``eval`` and ``bench`` all call.

One video, in order: check the path, probe it, decode one audio track to 16 kHz mono, run the pretrained
detectors, combine them into stage-1 probabilities, smooth those into segments, label voice segments with
gender and speaker (stage 2), and summarise the composition.

Memory does not grow with the duration of the input; it takes two passes:

1. The audio is decoded as a stream and analysed in chunks of :data:`CHUNK_S` with :data:`CONTEXT_S` of audio
   either side (:class:`ChunkedStage1`): detectors and the stage-1 model run per chunk and only their 10 ms frame
   arrays are kept. The audio of every chunk starts on a 12 s grid, so every detector and window member sees the
   same frames and windows as over the whole recording, and the stitched frames equal the whole-recording ones.
   The decoded audio is spooled to a temporary file meanwhile.
2. Smoothing and segments run on the whole frame arrays (small); stage 2 reads the audio of the voice segments back
   from the spool (:class:`SpooledAudio`), a group of segments at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from . import composition, detectors
from .. import media
from ..config import STAGE1_LABELS, PipelineConfig, load_pipeline
from .detectors import DetectorScores
from .stage1 import DetectorCombiner, Stage1Ensemble
from ..errors import ConfigError, InputError, OutputError
from ..models import file_sha256, load_manifest, pretrained_models
from ..progress import ProgressHook, silent_hook
from ..result import AnalysisResult, Segment, Source
from .smoothing import runs_of, smooth_labels

log = logging.getLogger(__name__)

MIN_AUDIO_S = 1.0
# voice frames with this much AED music/singing underneath count towards a music bed (genre rules)
MUSIC_BED_THRESHOLD = 0.5

#: Audio analysed per chunk in the streamed first pass (rounded to the 12 s grid); also the most audio stage 2
#: reads back from the spool at once. Inputs shorter than this are analysed in one piece, as a whole. The
#: detectors' transient memory grows with it (FireRedVAD about 1 MB per second of audio), the share of audio
#: analysed twice as context shrinks with it.
CHUNK_S = 120.0
#: Audio either side of a chunk that its detectors and stage-1 members see but whose frames come from the
#: neighbouring chunk. It must cover their receptive field: FireRedVAD (measured: frames equal from 4 s),
#: ``detector_features`` (+-1.5 s of scores) and the window members (1 s windows, YAMNet's 0.96 s patches).
#: silero brings its own lead-in (:func:`detectors.silero_lead_in`).
CONTEXT_S = 4.0
#: Decoded audio arrives from ffmpeg in pieces of this length.
PIECE_S = 30.0
# 12 s: a multiple of the 10 ms frame, of silero's 0.16 s alignment, of the window members' hops (0.5 s; YAMNet
# 0.48 s) and of their STFT hops (128, 160, 256 samples): audio analysed from a multiple of it sees the whole
# recording's frame and window grids
_GRID_SAMPLES = 192_000


@dataclass(frozen=True)
class AnalysisOptions:
    """Per-run choices that are not part of the pipeline definition."""

    audio_track: int = 0
    num_speakers: int | None = None
    #: bounds on the automatic speaker count; None: 1 and the pipeline's ``speakers.max_speakers``
    min_speakers: int | None = None
    max_speakers: int | None = None


@dataclass(frozen=True)
class Timings:
    """Seconds spent per stage of the last analysis (for ``--verbose`` and the benchmark)."""

    stages: dict[str, float]


def check_input(path: Path) -> Path:
    """Raise :class:`InputError` for paths that cannot be media at all, before ffmpeg is involved."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a media file")
    if not path.is_file():
        raise InputError(f"{path} is not a regular file")
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from None
    if size == 0:
        raise InputError(f"{path} is empty (0 bytes)")
    return path


@lru_cache(maxsize=4)
def _stage1_ensemble(members: tuple[str, ...], stacker: str) -> Stage1Ensemble:
    # loaded once per process: every member file is sha256-verified against models/manifest.json on load
    return Stage1Ensemble.from_manifest(load_manifest(), members=members, stacker=stacker)


def stage1_model(config) -> DetectorCombiner | Stage1Ensemble:
    """The stage-1 model of ``config`` (a ``Stage1Config``): the trained ensemble, or the hand rule.

    Both are called as ``frame_probabilities(audio, scores) -> (n_frames, 4)`` on any chunk of at least 1 s.
    """
    if config.model == "rule":
        return DetectorCombiner(config)
    return _stage1_ensemble(tuple(config.members), config.stacker)


@lru_cache(maxsize=4)
def _stage2_models(gender_model: str):
    # loaded once per process: the speaker encoder and the gender classifier are the slow parts to build
    from .diarization import GenderClassifier, SpeakerEncoder

    return SpeakerEncoder(), GenderClassifier.from_manifest(load_manifest(), gender_model)


@lru_cache(maxsize=4)
def _speaker_projection(name: str | None):
    from .diarization import SpeakerProjection

    return None if name is None else SpeakerProjection.from_manifest(load_manifest(), name)


def _stage2_model_infos(pipeline: PipelineConfig) -> tuple[dict, ...]:
    _, gender_model = _stage2_models(pipeline.stage2.gender_model)
    projection = _speaker_projection(pipeline.speakers.projection)
    return (gender_model.model_info,) + ((projection.model_info,) if projection is not None else ())


def segments_from_frames(labels: np.ndarray, probabilities: np.ndarray, *, duration: float) -> list[Segment]:
    """Turn a smoothed label path into segments covering ``[0, duration]`` exactly.

    Parameters
    ----------
    labels : np.ndarray, shape (n_frames,)
    probabilities : np.ndarray, shape (n_frames, 4)
    """
    segments = []
    for run in runs_of(labels):
        mean = probabilities[run.start:run.end].mean(axis=0)
        mean = mean / max(float(mean.sum()), 1e-9)
        start = run.start * detectors.FRAME_S
        end = min(run.end * detectors.FRAME_S, duration)
        if end <= start:
            continue
        segments.append(Segment(start=start, end=end, label=STAGE1_LABELS[run.label],
                                confidence=float(mean[run.label]),
                                scores={lab: float(v) for lab, v in zip(STAGE1_LABELS, mean)}))
    if segments:
        segments[0] = _with(segments[0], start=0.0)
        segments[-1] = _with(segments[-1], end=duration)
    return segments


def _with(segment: Segment, **changes) -> Segment:
    import dataclasses

    return dataclasses.replace(segment, **changes)


def _grid(seconds: float) -> int:
    """``seconds`` in samples, rounded to the 12 s grid, at least one step of it."""
    return max(1, int(round(seconds * detectors.SAMPLE_RATE / _GRID_SAMPLES))) * _GRID_SAMPLES


class ChunkedStage1:
    """Detectors and the stage-1 model over audio fed piece by piece, one chunk (plus context) at a time.

    Feed consecutive pieces of any length with :meth:`feed`, then call :meth:`finish` once. A chunk is analysed as
    soon as its right context has arrived; the audio kept meanwhile is one chunk, its contexts, silero's lead-in
    and the pieces not yet used, whatever the length of the input.

    Chunk ``k`` reads the audio from ``k * chunk`` (on the grid) and gives the frames from ``k * chunk + context``
    (from 0 for the first) to ``(k + 1) * chunk + context``; it reads ``context`` further than that.

    Parameters
    ----------
    model : DetectorCombiner or Stage1Ensemble
        Anything with ``frame_probabilities(audio, scores) -> (n_frames, 4)`` for a chunk of at least 1 s.
    chunk_s, context_s : float
        Chunk length (rounded to the 12 s grid, at least 12 s) and context either side (rounded to 10 ms).
    expected_s : float
        Expected duration (for progress only; 0 when unknown).
    progress : ProgressHook
        Called as ``progress("detectors", chunks_done, chunks_expected)``.
    timings : dict
        ``detectors`` and ``stage1`` seconds are added to it.
    """

    def __init__(self, model, *, chunk_s: float = CHUNK_S, context_s: float = CONTEXT_S, expected_s: float = 0.0,
                 progress: ProgressHook = silent_hook, timings: dict[str, float] | None = None) -> None:
        self._model = model
        self._chunk = _grid(chunk_s)
        self._context = max(0, int(round(context_s / detectors.FRAME_S))) * detectors.FRAME_SAMPLES
        self._expected = max(1, int(np.ceil(expected_s * detectors.SAMPLE_RATE / self._chunk)))
        self._progress = progress
        self._timings = timings if timings is not None else {}
        self._timings["detectors"] = self._timings["stage1"] = 0.0
        self._pieces: list[np.ndarray] = []
        self._base = 0            # position in the recording of the first sample kept
        self._core = 0            # start of the next chunk's own frames
        self._scores: list[np.ndarray] = []
        self._probabilities: list[np.ndarray] = []
        self._finished = False
        #: samples fed so far
        self.n_samples = 0

    def feed(self, piece: np.ndarray) -> None:
        """Take the next piece of audio (shape (n,), 16 kHz mono float32) and analyse every chunk it completes."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        piece = np.asarray(piece, dtype=np.float32)
        if piece.ndim != 1:
            raise ValueError(f"audio must be mono with shape (n_samples,), got {piece.shape}")
        if piece.shape[0]:
            self._pieces.append(piece)
            self.n_samples += piece.shape[0]
        while self.n_samples >= self._next_end() + self._context:
            self._analyse(self._next_end(), self._next_end() + self._context)
            done = len(self._probabilities)
            self._progress("detectors", done, max(self._expected, done + 1))

    def finish(self) -> tuple[DetectorScores, np.ndarray]:
        """Analyse what is left and return the whole recording's frames.

        Returns
        -------
        scores : DetectorScores
            Arrays of shape (n_frames,), ``n_frames = detectors.n_frames_for(n_samples)``.
        probabilities : np.ndarray, shape (n_frames, 4), float32
            Stage-1 probabilities, columns in ``STAGE1_LABELS`` order.
        """
        if not self._finished:
            if self._core < self.n_samples or not self._probabilities:
                self._analyse(self.n_samples, self.n_samples)
            self._finished = True
            self._pieces = []
            done = len(self._probabilities)
            self._progress("detectors", done, done)
        columns = np.concatenate(self._scores).T
        return DetectorScores(*columns), np.concatenate(self._probabilities)

    def _next_end(self) -> int:
        return (len(self._probabilities) + 1) * self._chunk + self._context

    def _analyse(self, end: int, stop: int) -> None:
        """Frames ``[core, end)`` from the audio ``[core - context, stop)``."""
        core = self._core
        start = max(0, core - self._context)
        lead = detectors.silero_lead_in(start)
        audio = self._audio(lead, stop)
        clock = time.perf_counter()
        scores = detectors.run_detectors(audio, offset=lead, lead_in=start - lead)
        self._timings["detectors"] += time.perf_counter() - clock
        clock = time.perf_counter()
        probabilities = self._model.frame_probabilities(audio[start - lead:], scores)
        self._timings["stage1"] += time.perf_counter() - clock
        first = (core - start) // detectors.FRAME_SAMPLES
        count = detectors.n_frames_for(end) - core // detectors.FRAME_SAMPLES
        self._scores.append(scores.as_matrix()[first:first + count])
        self._probabilities.append(np.asarray(probabilities, dtype=np.float32)[first:first + count])
        self._core = end
        # keep only what the next chunk reads: its left context and silero's lead-in before that
        keep = detectors.silero_lead_in(max(0, end - self._context))
        if keep > self._base and self._pieces:
            self._pieces[0] = self._pieces[0][keep - self._base:]
            self._base = keep

    def _audio(self, begin: int, stop: int) -> np.ndarray:
        if len(self._pieces) > 1:
            self._pieces = [np.concatenate(self._pieces)]
        return self._pieces[0][begin - self._base:stop - self._base] if self._pieces else np.zeros(0, np.float32)


class SpooledAudio:
    """Read-only mono float32 audio in a raw file, read on demand: ``audio[a:b]`` reads just those samples.

    Stands in for the decoded array, shape (n_samples,), where only slices are taken; nothing but the slice asked
    for is held in memory (no memory map, whose touched pages would count as resident). Use as a context manager,
    or call :meth:`close`.

    Parameters
    ----------
    path : Path
        Native-endian float32 samples, nothing else.
    """

    dtype = np.dtype(np.float32)
    ndim = 1

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = open(self.path, "rb", buffering=0)
        self._n = os.fstat(self._file.fileno()).st_size // self.dtype.itemsize

    @property
    def shape(self) -> tuple[int]:
        return (self._n,)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, key) -> np.ndarray:
        """``audio[a:b]`` (step 1) as an array of shape (b - a,), or one sample ``audio[i]``."""
        if isinstance(key, (int, np.integer)):
            index = int(key) + (self._n if key < 0 else 0)
            if not 0 <= index < self._n:
                raise IndexError(f"index {key} is out of range for {self._n} samples")
            return self.read(index, index + 1)[0]
        if not isinstance(key, slice):
            raise TypeError(f"SpooledAudio takes an integer or a slice, not {type(key).__name__}")
        start, stop, step = key.indices(self._n)
        if step != 1:
            raise ValueError("SpooledAudio slices take no step")
        return self.read(start, max(start, stop))

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` (within the audio), shape (stop - start,), float32, writable."""
        out = np.empty(stop - start, dtype=self.dtype)
        view = memoryview(out).cast("B")
        done, offset = 0, start * self.dtype.itemsize
        while done < len(view):
            got = os.preadv(self._file.fileno(), [view[done:]], offset + done)
            if got == 0:
                raise EOFError(f"{self.path} ends before sample {stop}")
            done += got
        return out

    def __array__(self, dtype=None, copy=None):
        # correct but defeats the purpose: callers are meant to slice
        log.warning("the whole spooled audio (%d samples) was read into memory", self._n)
        data = self.read(0, self._n)
        return data if dtype is None else data.astype(dtype, copy=False)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "SpooledAudio":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _SpooledEncoder:
    """The speaker encoder, for audio that is a :class:`SpooledAudio`.

    ``label_voice_segments`` hands the encoder the whole recording and the regions to embed. Here the regions are
    read from the spool a group at a time (up to ``group_samples`` of audio) and given to the real encoder laid end
    to end in a compact array, each region exactly as it lies in the recording; window times are mapped back.
    Windows depend only on their region's samples, so the result is the real encoder's on the whole recording.
    Everything else is the wrapped encoder's.
    """

    def __init__(self, encoder, *, group_samples: int) -> None:
        self._encoder = encoder
        self._group = max(1, group_samples)

    def __getattr__(self, name):
        return getattr(self._encoder, name)

    def _embed(self, audio, sample_rate, regions, window_s, hop_s, progress=silent_hook):
        if not isinstance(audio, SpooledAudio):
            return self._encoder._embed(audio, sample_rate, regions, window_s, hop_s, progress)
        rate = detectors.SAMPLE_RATE
        if sample_rate != rate:
            raise ValueError(f"spooled audio is at {rate} Hz, not {sample_rate}")
        n = len(audio)
        # region bounds in samples, clipped to the audio as the encoder clips them
        bounds = []
        for start, end in regions:
            a = int(round(max(float(start), 0.0) * rate))
            b = int(round(min(max(float(end), 0.0), n / rate) * rate))
            bounds.append((min(a, n), min(max(a, b), n)))
        groups, current, size = [], [], 0
        for r, (a, b) in enumerate(bounds):
            if current and size + (b - a) > self._group:
                groups.append(current)
                current, size = [], 0
            current.append(r)
            size += b - a
        if current:
            groups.append(current)
        total_samples = max(1, sum(b - a for a, b in bounds))
        times, embeddings, region_index = [], [], []
        done_windows, done_samples = 0, 0
        for group in groups:
            pieces = [audio[bounds[r][0]:bounds[r][1]] for r in group]
            offsets = np.concatenate([[0], np.cumsum([p.shape[0] for p in pieces])]).astype(np.int64)
            compact = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
            group_samples = int(offsets[-1])
            rest = total_samples - done_samples - group_samples

            def report(stage, done, total, _before=done_windows, _rest=rest, _size=max(group_samples, 1)):
                # windows still to come, estimated from the audio still to read
                ahead = int(np.ceil(total * _rest / _size)) if _rest > 0 else 0
                progress(stage, _before + done, _before + total + (max(ahead, 1) if _rest > 0 else 0))

            sub_regions = [(int(o) / rate, int(o + p.shape[0]) / rate) for o, p in zip(offsets[:-1], pieces)]
            t, e, r = self._encoder._embed(compact, rate, sub_regions, window_s, hop_s, report)
            shift = np.asarray([bounds[g][0] for g in group], dtype=np.int64) - offsets[:-1]
            samples = np.rint(np.asarray(t, dtype=np.float64) * rate).astype(np.int64) + shift[r][:, None]
            times.append(samples / rate)
            embeddings.append(e)
            region_index.append(np.asarray(group, dtype=np.int64)[r])
            done_windows += len(r)
            done_samples += group_samples
        if not groups:
            return self._encoder._embed(np.zeros(0, np.float32), rate, [], window_s, hop_s, progress)
        return np.concatenate(times), np.concatenate(embeddings), np.concatenate(region_index)


def _speaker_bounds(pipeline: PipelineConfig, options: AnalysisOptions) -> tuple[int, int]:
    """``(min_speakers, max_speakers)`` of this run; raises :class:`ConfigError` for impossible counts."""
    cfg = pipeline.speakers
    min_speakers = options.min_speakers or 1
    max_speakers = options.max_speakers or max(cfg.max_speakers, min_speakers)
    if min_speakers > max_speakers:
        raise ConfigError(f"min_speakers ({min_speakers}) is larger than max_speakers ({max_speakers})")
    if options.num_speakers is not None and options.num_speakers < 1:
        raise ConfigError(f"num_speakers must be at least 1, got {options.num_speakers}")
    return min_speakers, max_speakers


def _stage1_segments(scores: DetectorScores, probabilities: np.ndarray, pipeline: PipelineConfig, *,
                     duration: float) -> tuple[list[Segment], float]:
    """Smoothed stage-1 segments of the whole recording and the share of voice time with music underneath."""
    min_frames = np.array([round(pipeline.stage1.min_duration_s[lab] / detectors.FRAME_S) for lab in STAGE1_LABELS])
    labels = smooth_labels(probabilities, switch_penalty=pipeline.stage1.switch_penalty, min_frames=min_frames)
    segments = segments_from_frames(labels, probabilities, duration=duration)
    voice_frames = labels == STAGE1_LABELS.index("voice")
    music = np.maximum(scores.aed_music, scores.aed_singing)
    music_under_voice = float((music[voice_frames] > MUSIC_BED_THRESHOLD).mean()) if voice_frames.any() else 0.0
    return segments, music_under_voice


def speaker_settings(pipeline: PipelineConfig, options: AnalysisOptions = AnalysisOptions()):
    """The diarization settings of a run: ``(SpeakerOptions, SpeakerProjection or None)``.

    Raises
    ------
    ConfigError
        Impossible speaker counts; ModelError when the projection is missing or altered.
    """
    from .diarization import SpeakerOptions

    cfg = pipeline.speakers
    min_speakers, max_speakers = _speaker_bounds(pipeline, options)
    speaker_options = SpeakerOptions(window_s=cfg.window_s, hop_s=cfg.hop_s, refine_hop_s=cfg.refine_hop_s,
                                     cluster_threshold=cfg.cluster_threshold,
                                     min_speakers=min_speakers, max_speakers=max_speakers,
                                     min_speaker_s=cfg.min_speaker_s, switch_penalty=cfg.switch_penalty,
                                     min_turn_s=cfg.min_turn_s, num_speakers=options.num_speakers)
    return speaker_options, _speaker_projection(cfg.projection)


def _stage2(audio: np.ndarray | SpooledAudio, segments: Sequence[Segment], pipeline: PipelineConfig, *,
            options: AnalysisOptions, progress: ProgressHook) -> tuple[list[Segment], list]:
    """Voice segments split into speaker turns with gender and speaker; the speakers."""
    from .diarization import label_voice_segments

    encoder, gender_model = _stage2_models(pipeline.stage2.gender_model)
    if isinstance(audio, SpooledAudio):
        encoder = _SpooledEncoder(encoder, group_samples=_grid(CHUNK_S))
    voice = [s for s in segments if s.label == "voice"]
    speaker_options, projection = speaker_settings(pipeline, options)
    labelling = label_voice_segments(audio, sample_rate=detectors.SAMPLE_RATE,
                                     segments=[(s.start, s.end) for s in voice], encoder=encoder,
                                     gender_model=gender_model, options=speaker_options,
                                     projection=projection, progress=progress)
    # each voice segment becomes its speaker turns: consecutive voice segments covering it exactly, each with
    # its own speaker and gender; confidence and stage-1 scores are the parent segment's
    turns_of = iter(labelling.turns)
    merged = []
    for segment in segments:
        if segment.label != "voice":
            merged.append(segment)
            continue
        turns = next(turns_of)
        for i, turn in enumerate(turns):
            merged.append(_with(segment, start=segment.start if i == 0 else turn.start,
                                end=segment.end if i == len(turns) - 1 else turn.end, gender=turn.gender,
                                speaker=turn.speaker, scores={**segment.scores, **turn.gender_scores}))
    return merged, list(labelling.speakers)


def _after_frames(audio: np.ndarray | SpooledAudio, scores: DetectorScores, probabilities: np.ndarray,
                  pipeline: PipelineConfig, *, options: AnalysisOptions, progress: ProgressHook,
                  timings: dict[str, float]) -> tuple[list[Segment], list, float]:
    """Pass 2: smoothing and segments on the whole frame arrays, then stage 2 on ``audio``."""
    duration = len(audio) / detectors.SAMPLE_RATE
    clock = time.perf_counter()
    segments, music_under_voice = _stage1_segments(scores, probabilities, pipeline, duration=duration)
    timings["smoothing"] = time.perf_counter() - clock
    clock = time.perf_counter()
    merged, speakers = _stage2(audio, segments, pipeline, options=options, progress=progress)
    timings["stage2"] = time.perf_counter() - clock
    return merged, speakers, music_under_voice


def analyze_audio(audio: np.ndarray, pipeline: PipelineConfig, *, options: AnalysisOptions = AnalysisOptions(),
                  progress: ProgressHook = silent_hook, timings: dict[str, float] | None = None,
                  chunk_s: float = CHUNK_S, context_s: float = CONTEXT_S) -> tuple[list[Segment], list, float]:
    """Stage 1 and stage 2 on decoded audio (shape (n_samples,), 16 kHz mono).

    The same chunked first pass as :func:`analyze` (``chunk_s``, ``context_s``), on audio already in memory.
    Returns the segments, the speakers and the share of voice time with music underneath; ``timings`` gets
    ``detectors``, ``stage1`` (the stage-1 model: features and ensemble), ``smoothing`` and ``stage2`` (speaker
    embeddings, diarization and gender).
    """
    timings = timings if timings is not None else {}
    _speaker_bounds(pipeline, options)
    audio = np.asarray(audio, dtype=np.float32)
    first = ChunkedStage1(stage1_model(pipeline.stage1), chunk_s=chunk_s, context_s=context_s,
                          expected_s=audio.shape[0] / detectors.SAMPLE_RATE, progress=progress, timings=timings)
    first.feed(audio)
    scores, probabilities = first.finish()
    return _after_frames(audio, scores, probabilities, pipeline, options=options, progress=progress,
                         timings=timings)


@contextlib.contextmanager
def _scratch_dir():
    try:
        scratch = tempfile.TemporaryDirectory(prefix="dramapic-spool-")
    except OSError as err:
        raise OutputError(f"cannot create a temporary folder in {tempfile.gettempdir()} for the audio spool: "
                          f"{err.strerror} (set TMPDIR to a writable folder)") from None
    with scratch as folder:
        yield folder


def analyze(path: str | Path, pipeline: PipelineConfig | None = None, *, options: AnalysisOptions = AnalysisOptions(),
            progress: ProgressHook = silent_hook, timings: dict[str, float] | None = None,
            info: media.MediaInfo | None = None) -> AnalysisResult:
    """Analyse one media file and return its :class:`AnalysisResult`.

    ``info`` may pass in the :func:`media.probe` result when the caller already has it. The audio is decoded as
    a stream and spooled to a temporary directory (about 230 MB per hour of input), which is removed before this
    returns or raises; memory stays bounded whatever the duration. ``timings`` gets ``decode`` (ffmpeg and the
    spool), then as :func:`analyze_audio`, and ``summary``.

    Raises
    ------
    InputError, MediaError, ModelError, ConfigError
        With a one-line message; nothing is written by this function (but its own spool).
    """
    pipeline = pipeline or load_pipeline(None)
    timings = timings if timings is not None else {}
    path = check_input(Path(path))
    _speaker_bounds(pipeline, options)
    clock = time.perf_counter()
    info = info or media.probe(path)
    timings["decode"] = time.perf_counter() - clock
    first = ChunkedStage1(stage1_model(pipeline.stage1), chunk_s=CHUNK_S, context_s=CONTEXT_S,
                          expected_s=info.duration, progress=progress, timings=timings)
    with _scratch_dir() as scratch:
        spool_path = Path(scratch) / "audio.f32"
        clock = time.perf_counter()
        analysed = timings["detectors"] + timings["stage1"]
        with open(spool_path, "wb") as spool:
            for piece in media.stream_audio(info, audio_track=options.audio_track, chunk_s=PIECE_S):
                try:
                    spool.write(memoryview(np.ascontiguousarray(piece, dtype=np.float32)))
                except OSError as err:
                    raise OutputError(f"cannot write the temporary audio spool in {scratch}: {err.strerror} "
                                      f"(it needs about 230 MB per hour of input; set TMPDIR to a roomier "
                                      f"disk)") from None
                first.feed(piece)
        # decoding is what the stream loop spent outside the chunk analyses
        timings["decode"] += time.perf_counter() - clock - (timings["detectors"] + timings["stage1"] - analysed)
        duration = first.n_samples / detectors.SAMPLE_RATE
        if duration < MIN_AUDIO_S:
            raise InputError(f"{path.name} has only {duration:.2f} s of audio; at least {MIN_AUDIO_S:.0f} s is "
                             f"needed")
        scores, probabilities = first.finish()
        with SpooledAudio(spool_path) as audio:
            segments, speakers, music_under_voice = _after_frames(audio, scores, probabilities, pipeline,
                                                                  options=options, progress=progress,
                                                                  timings=timings)
    clock = time.perf_counter()
    summary = composition.summarize(segments, duration, speakers, music_under_voice=music_under_voice)
    source = Source(path=str(path), duration=duration, sha256=file_sha256(path))
    timings["summary"] = time.perf_counter() - clock
    return AnalysisResult(source=source, pipeline_name=pipeline.name, pipeline_version=pipeline.version,
                          models=(*pretrained_models(), *stage1_model(pipeline.stage1).model_infos,
                                  *_stage2_model_infos(pipeline)),
                          segments=tuple(segments), summary=summary)
