"""``analyze(path, pipeline) -> AnalysisResult``: what ``run``, ``eval`` and ``bench`` all call.

One video, in order: check the path, probe it, decode one audio track to 16 kHz mono, run the pretrained
detectors, combine them into stage-1 probabilities, smooth those into segments, label voice segments with
gender and speaker (stage 2), and summarise the composition.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import composition, detectors, media
from .config import STAGE1_LABELS, PipelineConfig, load_pipeline
from .ensemble import DetectorCombiner, Stage1Ensemble
from .errors import InputError
from .models import file_sha256, load_manifest, pretrained_models
from .progress import ProgressHook, silent_hook
from .result import AnalysisResult, Segment, Source
from .smoothing import runs_of, smooth_labels

log = logging.getLogger(__name__)

MIN_AUDIO_S = 1.0
# voice frames with this much AED music/singing underneath count towards a music bed (genre rules)
MUSIC_BED_THRESHOLD = 0.5


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
    from .speakers import GenderClassifier, SpeakerEncoder

    return SpeakerEncoder(), GenderClassifier.from_manifest(load_manifest(), gender_model)


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


def analyze_audio(audio: np.ndarray, pipeline: PipelineConfig, *, options: AnalysisOptions = AnalysisOptions(),
                  progress: ProgressHook = silent_hook, timings: dict[str, float] | None = None
                  ) -> tuple[list[Segment], list, float]:
    """Stage 1 and stage 2 on decoded audio (shape (n_samples,), 16 kHz mono).

    Returns the segments, the speakers and the share of voice time with music underneath.
    """
    from .speakers import SpeakerOptions, label_voice_segments

    timings = timings if timings is not None else {}
    duration = audio.shape[0] / detectors.SAMPLE_RATE
    clock = time.perf_counter()
    scores = detectors.run_detectors(audio, progress=progress)
    timings["detectors"] = time.perf_counter() - clock

    clock = time.perf_counter()
    probabilities = stage1_model(pipeline.stage1).frame_probabilities(audio, scores)
    min_frames = np.array([round(pipeline.stage1.min_duration_s[lab] / detectors.FRAME_S) for lab in STAGE1_LABELS])
    labels = smooth_labels(probabilities, switch_penalty=pipeline.stage1.switch_penalty, min_frames=min_frames)
    segments = segments_from_frames(labels, probabilities, duration=duration)
    voice_frames = labels == STAGE1_LABELS.index("voice")
    music = np.maximum(scores.aed_music, scores.aed_singing)
    music_under_voice = float((music[voice_frames] > MUSIC_BED_THRESHOLD).mean()) if voice_frames.any() else 0.0
    timings["stage1"] = time.perf_counter() - clock

    clock = time.perf_counter()
    encoder, gender_model = _stage2_models(pipeline.stage2.gender_model)
    voice = [s for s in segments if s.label == "voice"]
    cfg = pipeline.speakers
    from .errors import ConfigError

    min_speakers = options.min_speakers or 1
    max_speakers = options.max_speakers or max(cfg.max_speakers, min_speakers)
    if min_speakers > max_speakers:
        raise ConfigError(f"min_speakers ({min_speakers}) is larger than max_speakers ({max_speakers})")
    if options.num_speakers is not None and options.num_speakers < 1:
        raise ConfigError(f"num_speakers must be at least 1, got {options.num_speakers}")
    speaker_options = SpeakerOptions(window_s=cfg.window_s, hop_s=cfg.hop_s, refine_hop_s=cfg.refine_hop_s,
                                     cluster_threshold=cfg.cluster_threshold,
                                     min_speakers=min_speakers, max_speakers=max_speakers,
                                     min_speaker_s=cfg.min_speaker_s, switch_penalty=cfg.switch_penalty,
                                     min_turn_s=cfg.min_turn_s, num_speakers=options.num_speakers)
    labelling = label_voice_segments(audio, sample_rate=detectors.SAMPLE_RATE,
                                     segments=[(s.start, s.end) for s in voice], encoder=encoder,
                                     gender_model=gender_model, options=speaker_options, progress=progress)
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
    timings["stage2"] = time.perf_counter() - clock
    return merged, list(labelling.speakers), music_under_voice


def analyze(path: str | Path, pipeline: PipelineConfig | None = None, *, options: AnalysisOptions = AnalysisOptions(),
            progress: ProgressHook = silent_hook, timings: dict[str, float] | None = None,
            info: media.MediaInfo | None = None) -> AnalysisResult:
    """Analyse one media file and return its :class:`AnalysisResult`.

    ``info`` may pass in the :func:`media.probe` result when the caller already has it.

    Raises
    ------
    InputError, MediaError, ModelError, ConfigError
        With a one-line message; nothing is written by this function.
    """
    pipeline = pipeline or load_pipeline(None)
    timings = timings if timings is not None else {}
    path = check_input(Path(path))
    clock = time.perf_counter()
    info = info or media.probe(path)
    audio = media.decode_audio(info, audio_track=options.audio_track)
    timings["decode"] = time.perf_counter() - clock
    duration = audio.shape[0] / detectors.SAMPLE_RATE
    if duration < MIN_AUDIO_S:
        raise InputError(f"{path.name} has only {duration:.2f} s of audio; at least {MIN_AUDIO_S:.0f} s is needed")
    segments, speakers, music_under_voice = analyze_audio(audio, pipeline, options=options, progress=progress,
                                                          timings=timings)
    clock = time.perf_counter()
    summary = composition.summarize(segments, duration, speakers, music_under_voice=music_under_voice)
    _, gender_model = _stage2_models(pipeline.stage2.gender_model)
    source = Source(path=str(path), duration=duration, sha256=file_sha256(path))
    timings["summary"] = time.perf_counter() - clock
    return AnalysisResult(source=source, pipeline_name=pipeline.name, pipeline_version=pipeline.version,
                          models=(*pretrained_models(), *stage1_model(pipeline.stage1).model_infos,
                                  gender_model.model_info),
                          segments=tuple(segments), summary=summary)

