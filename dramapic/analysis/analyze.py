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

A recording too quiet for stage 1 (:func:`level_gain`) has pass 1 run once more, over the spool read raised, and
stage 2 reads it raised too.
"""


from __future__ import annotations

import dataclasses
import errno
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import composition, loaders
from .. import media
from ..config import PipelineConfig, SpeakersConfig, load_pipeline
from ..errors import ConfigError, InputError, OutputError
from ..models import file_sha256
from ..progress import ProgressHook, silent_hook
from ..result import FRAME_S, GENDERS, STAGE1_LABELS, AnalysisResult, Segment, Source, SAMPLE_RATE
from ..writers import not_utf8, too_long_part
from .detectors import DetectorScores
from .smoothing import runs_of
from .stage1 import stage1_frame_labels
from .streaming import CHUNK_S, CONTEXT_S, PIECE_S, ChunkedStage1, SpooledAudio, raised, scratch_dir

log = logging.getLogger(__name__)

MIN_AUDIO_S = 1.0
#: dBFS that the loudest second of a programme reaches at least: ordinary ones reach -9 to -21 (the sample -17,
#: the dev mixes -9 to -19, the cross-corpus timelines -21 to -9). Stage 1 reads level as well as sound, so where a
#: whole recording is fainter (a transfer made with the gain far down), its voice and music are partly taken for
#: silence: the sample 20 dB down (-37) has stage-1 accuracy 0.864 against 0.903 at its own level, having lost a
#: third of its song; 30 dB down 0.674, 50 dB down all silence. Such a recording is analysed raised to
#: :data:`RAISED_DBFS` (:func:`level_gain`): 0.903 from 20 to 40 dB down (50 dB down, -67, is under
#: :data:`RAISE_FROM_DBFS`, where room tone lies, and stays as it was). Not from -25 dBFS, which would also
#: raise the sample 10 dB down (0.862 -> 0.903): 7 of the song check's 90 clips (quiet piano and electronic pieces,
#: -25 to -28) would be raised too, and the held-out everythingisfree's song called song fell from 0.875 to 0.783
QUIET_DBFS = -35.0
#: where a quiet recording's loudest second is raised to for the analysis: among ordinary programmes' levels, and
#: inside the training mixes' (voice at -40 to -10 dBFS active level)
RAISED_DBFS = -20.0
#: below this the loudest second is no sound at all (digital silence, a track left empty: the energy floor is
#: -100 dBFS, a 16-bit file's dither about -90): raising its level would change nothing, so it is said as such
SOUNDLESS_DBFS = -80.0
#: a recording is raised only where its loudest second reaches this (about a drama 50 dB down) and stands
#: :data:`RAISE_MIN_RANGE_DB` above its quietest tenth of frames: what lies under it, or stays that flat, is room
#: tone or hiss (the training "silence" clips' loudest seconds: -71 to -94 dBFS; steady hiss: within 1 dB of its
#: floor), which raised by 40 dB and more turned a silent track into noise. Such a recording is analysed as it is,
#: with the old advice
RAISE_FROM_DBFS = -65.0
RAISE_MIN_RANGE_DB = 10.0
# voice frames with this much AED music/singing underneath count towards a music bed (genre rules)
MUSIC_BED_THRESHOLD = 0.5


@dataclass(frozen=True)
class StageSpec:
    """One stage of the cascade: its name, the label whose segments it refines (None: the whole recording) and
    the labels it gives them. :func:`analyze` hands a stage exactly the segments labelled ``refines``, as
    inaSpeechSegmenter's ``inlabel`` does, so a later stage (age, emotion) plugs in by naming its parent label."""

    name: str
    refines: str | None
    labels: tuple[str, ...]


STAGE1 = StageSpec(name="stage1", refines=None, labels=STAGE1_LABELS)
#: stage 2: gender and speakers of voice (they share one set of window embeddings); each can be switched off
STAGE2 = StageSpec(name="stage2", refines="voice", labels=GENDERS)
CASCADE = (STAGE1, STAGE2)


@dataclass(frozen=True)
class AnalysisOptions:
    """Per-run choices that are not part of the pipeline definition."""

    #: the audio track to analyse, from 0; None: the one the file marks as default (``MediaInfo.audio_track``)
    audio_track: int | None = None
    num_speakers: int | None = None
    #: bounds on the automatic speaker count; None: the pipeline's ``speakers.min_speakers`` / ``max_speakers``
    min_speakers: int | None = None
    max_speakers: int | None = None
    #: one channel of the track to analyse instead of its mix (``"left"`` / ``"right"``: a dual-mono bilingual
    #: broadcast carries one language per channel); None: the mix
    audio_channel: str | None = None

    def __post_init__(self) -> None:
        if self.audio_channel is not None and self.audio_channel not in media.AUDIO_CHANNELS:
            raise ConfigError(f"--audio-channel must be one of {', '.join(media.AUDIO_CHANNELS)}, not "
                              f"{self.audio_channel!r}")
        if self.audio_track is not None and self.audio_track < 0:
            # a usage mistake, refused before any work (run and batch alike), not a media error after the probe;
            # in a batch each file's failure would replace its done run and the next batch would redo the archive
            raise ConfigError(f"--audio-track must be 0 or more (tracks are numbered from 0), not "
                              f"{self.audio_track}")


def check_input(path: Path) -> Path:
    """Raise :class:`InputError` for paths that cannot be media at all, before ffmpeg is involved."""
    path = Path(path)
    shown = not_utf8(path)
    if shown is not None:  # bytes of another encoding (Latin-1, CP949): outputs and JSON are named after it
        raise InputError(f"{shown}: the path is not valid UTF-8; rename the file (or its folder)")
    long_part = too_long_part(path)
    if long_part is not None:  # no file system holds it; looking it up was an OSError traceback
        raise InputError(f"no such file: a name too long for any file system: {long_part}")
    if not path.exists():
        if path.is_symlink():  # the link itself is there (ls lists it): "no such file" would puzzle
            try:
                target = os.readlink(path)
                os.stat(path)
            except OSError as err:
                if err.errno == errno.ELOOP:
                    raise InputError(f"{path} is a loop of symbolic links, not a media file") from None
                raise InputError(f"{path} is a symbolic link to {target}, which does not exist") from None
        if str(path) == "-":  # the Unix convention for a pipe: not a file named "-", which would be there
            raise InputError("reading from standard input (-) is not supported: give the path of a media file "
                             "(the analysis and the video output read the input more than once)")
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



def segments_from_frames(labels: np.ndarray, probabilities: np.ndarray | None, *, duration: float,
                         label_names: Sequence[str] = STAGE1_LABELS) -> list[Segment]:
    """Turn a label path into segments covering ``[0, duration]`` exactly (the one frames-to-segments routine).

    Parameters
    ----------
    labels : np.ndarray, shape (n_frames,)
        Label index of every 10 ms frame.
    probabilities : np.ndarray, shape (n_frames, len(label_names)), or None
        Per-frame probabilities: each segment's ``scores`` are their mean over its frames (normalised) and its
        ``confidence`` that mean for its label. None: a label path without probabilities (confidence 1, no
        scores).
    duration : float
        Seconds; the last segment ends here, frames beyond it are dropped.
    label_names : sequence of str
        The label of each index.
    """
    segments = []
    for run in runs_of(labels):
        start = run.start * FRAME_S
        end = min(run.end * FRAME_S, duration)
        # the last frame clipped to under half a millisecond (min_duration_s: 0 lets it stand alone) would read
        # start == end in the JSON's millisecond times and in every cue: the segment before it takes its place
        if (end - start < 0.0005 and segments) or end <= start:
            continue
        if probabilities is None:
            segments.append(Segment(start=start, end=end, label=label_names[run.label], confidence=1.0))
            continue
        mean = probabilities[run.start:run.end].mean(axis=0)
        mean = mean / max(float(mean.sum()), 1e-9)
        segments.append(Segment(start=start, end=end, label=label_names[run.label],
                                confidence=float(mean[run.label]),
                                scores={lab: float(v) for lab, v in zip(label_names, mean)}))
    if segments:
        segments[0] = dataclasses.replace(segments[0], start=0.0)
        segments[-1] = dataclasses.replace(segments[-1], end=duration)
    return segments


def speaker_settings(pipeline: PipelineConfig, options: AnalysisOptions = AnalysisOptions()):
    """The diarization settings of a run, ``(SpeakersConfig, SpeakerProjection or None)``: the pipeline's with
    this run's speaker counts.

    Raises
    ------
    ConfigError
        Impossible speaker counts; ModelError when the projection is missing or altered.
    """
    settings = pipeline.speakers.for_run(num_speakers=options.num_speakers, min_speakers=options.min_speakers,
                                         max_speakers=options.max_speakers)
    # loaded whenever stage 2 runs: gender is decided per speaker also with the speaker ids switched off
    return settings, (loaders.speaker_projection(settings.projection) if loaders.uses_stage2(pipeline) else None)


def _stage1_segments(scores: DetectorScores, probabilities: np.ndarray, pipeline: PipelineConfig, *,
                     duration: float) -> tuple[list[Segment], float]:
    """Smoothed stage-1 segments of the whole recording and the share of voice time with music underneath."""
    probabilities, labels = stage1_frame_labels(probabilities, scores, settings=pipeline.stage1)
    segments = segments_from_frames(labels, probabilities, duration=duration)
    voice_frames = labels == STAGE1_LABELS.index("voice")
    music = np.maximum(scores.aed_music, scores.aed_singing)
    music_under_voice = float((music[voice_frames] > MUSIC_BED_THRESHOLD).mean()) if voice_frames.any() else 0.0
    return segments, music_under_voice


def _stage2(audio: np.ndarray | SpooledAudio, segments: Sequence[Segment], pipeline: PipelineConfig, *,
            options: AnalysisOptions, progress: ProgressHook) -> tuple[list[Segment], list | None, list | None]:
    """The segments :data:`STAGE2` refines split into speaker turns with gender and speaker; the speakers (None
    when diarization is switched off); the speakers the genre rules count (the same, or with the ids switched off
    those told apart inside; None when stage 2 does not run). Stages switched off leave their fields None."""
    settings, projection = speaker_settings(pipeline, options)
    if not loaders.uses_stage2(pipeline):
        return list(segments), None, None
    return _refined(audio, segments, settings=settings, projection=projection,
                    gender_model=loaders.gender_model(pipeline.stage2.gender_model) if pipeline.stage2.gender
                    else None, gender_min_voice=pipeline.stage2.gender_min_voice, encoder=None, progress=progress)


def refine_voice(audio: np.ndarray | SpooledAudio, segments: Sequence[Segment], *, settings: SpeakersConfig,
                 projection, gender_model, gender_min_voice: float = 0.0, encoder=None,
                 progress: ProgressHook = silent_hook) -> tuple[list[Segment], list | None]:
    """Stage 2 with the models given: each segment :data:`STAGE2` refines becomes its speaker turns.

    :func:`analyze` runs this with the pipeline's models; the lab's cross-corpus protocol runs it with models
    fitted without the recording's voice sources.

    Parameters
    ----------
    audio : np.ndarray or SpooledAudio, shape (n_samples,)
        The whole recording at 16 kHz.
    segments : sequence of Segment
        Stage 1's segments of the whole recording, in time order.
    settings : SpeakersConfig
        Diarization settings (``enabled`` false: no speakers).
    projection : SpeakerProjection or None
    gender_model : GenderClassifier or None
        None: genders stay None.
    gender_min_voice : float
        A refined segment whose stage-1 ``scores["voice"]`` is below this gets no gender, nor does a speaker heard
        only there (``stage2.gender_min_voice``; 0: every segment may get one).
    encoder : SpeakerEncoder, optional
        Default: the process's shared one.
    progress : ProgressHook

    Returns
    -------
    segments : list of Segment
        Consecutive turns covering each refined segment exactly, with speaker and gender; confidence and stage-1
        scores are the parent segment's. Other segments unchanged.
    speakers : list or None
        None when diarization is off.
    """
    merged, speakers, _ = _refined(audio, segments, settings=settings, projection=projection,
                                   gender_model=gender_model, gender_min_voice=gender_min_voice, encoder=encoder,
                                   progress=progress)
    return merged, speakers


def _refined(audio: np.ndarray | SpooledAudio, segments: Sequence[Segment], *, settings: SpeakersConfig,
             projection, gender_model, gender_min_voice: float, encoder,
             progress: ProgressHook) -> tuple[list[Segment], list | None, list]:
    """:func:`refine_voice`, and the speakers the genre rules count: those listed, or with the ids switched off
    the ones told apart inside (gender is decided per speaker all the same)."""
    from .diarization import label_voice_segments

    chosen = [s for s in segments if s.label == STAGE2.refines]
    labelling = label_voice_segments(
        audio, sample_rate=SAMPLE_RATE, segments=[(s.start, s.end) for s in chosen],
        encoder=encoder or loaders.speaker_encoder(), gender_model=gender_model, options=settings,
        projection=projection, progress=progress)
    turns_of = iter(labelling.turns)
    merged = []
    for segment in segments:
        if segment.label != STAGE2.refines:
            merged.append(segment)
            continue
        turns = next(turns_of)
        # stage 1 unsure this is a voice at all (say a song's onset): no female/male call on it
        sure_voice = segment.scores.get(STAGE2.refines, 1.0) >= gender_min_voice
        for i, turn in enumerate(turns):
            merged.append(dataclasses.replace(
                segment, start=segment.start if i == 0 else turn.start,
                end=segment.end if i == len(turns) - 1 else turn.end, gender=turn.gender if sure_voice else None,
                speaker=turn.speaker, scores={**segment.scores, **turn.gender_scores}))
    if not settings.enabled:
        return merged, None, list(labelling.unnamed)
    # a speaker heard only where stage 1 was unsure of voice has no gender either (the list agrees with the turns)
    sure_speakers = {s.speaker for s in merged if s.label == STAGE2.refines and s.gender is not None}
    speakers = [s if s.id in sure_speakers or s.gender is None else dataclasses.replace(s, gender=None)
                for s in labelling.speakers]
    return merged, speakers, speakers


def _after_frames(audio: np.ndarray | SpooledAudio, scores: DetectorScores, probabilities: np.ndarray,
                  pipeline: PipelineConfig, *, options: AnalysisOptions, progress: ProgressHook,
                  timings: dict[str, float]) -> tuple[list[Segment], list | None, float, list | None]:
    """Pass 2: smoothing and segments on the whole frame arrays, then stage 2 on ``audio``; last, the speakers
    the genre rules count (:func:`_stage2`)."""
    duration = len(audio) / SAMPLE_RATE
    clock = time.perf_counter()
    segments, music_under_voice = _stage1_segments(scores, probabilities, pipeline, duration=duration)
    timings["smoothing"] = time.perf_counter() - clock
    clock = time.perf_counter()
    merged, speakers, counted = _stage2(audio, segments, pipeline, options=options, progress=progress)
    timings["stage2"] = time.perf_counter() - clock
    return merged, speakers, music_under_voice, counted


def level_gain(name: str, energy_db: np.ndarray, *, warn: bool = True) -> float:
    """The gain (linear; 1.0: none) at which a recording is analysed, from its first pass's frame levels
    (``energy_db``, shape (n_frames,)), with a warning where it is not 1 (``warn`` false: a debug line, for the lab's
    clip-by-clip scoring).

    A whole recording too faint for stage 1 to tell its sound from silence (its loudest second under
    :data:`QUIET_DBFS`: a transfer made with the gain far down) is analysed again raised so that its loudest second
    reaches :data:`RAISED_DBFS`: it came out as partly, at worst wholly, "silence" (the sample 30 dB down: voice 45 %
    of the time against 59 %, song 4 % against 19 %), and a warning that told the user to raise it and run again
    left the work to them. The level is the loudest second's (mean power of 100 frames): a few seconds of sound in
    hours of silence are not quiet. Only content is raised (:data:`RAISE_FROM_DBFS`, :data:`RAISE_MIN_RANGE_DB`):
    fainter, or as flat as hiss, the recording is analysed as it is and the warning says how to raise it. Digital
    silence (under :data:`SOUNDLESS_DBFS`) is said to hold no sound, and left as it is: raising it would change
    nothing.
    """
    frames = np.asarray(energy_db, dtype=np.float64)
    power = 10.0 ** (frames / 10.0)
    width = min(round(1.0 / FRAME_S), power.shape[0])
    loudest = 10.0 * np.log10(np.convolve(power, np.ones(width) / width, mode="valid").max()) if width else -np.inf
    say = log.warning if warn else log.debug
    if loudest < SOUNDLESS_DBFS:
        say("%s holds no sound: its loudest second reaches %.0f dBFS (silence throughout)", name, loudest)
    elif loudest < QUIET_DBFS and loudest >= RAISE_FROM_DBFS \
            and loudest - float(np.percentile(frames, 10)) >= RAISE_MIN_RANGE_DB:
        gain_db = RAISED_DBFS - loudest
        say("%s is quiet: its loudest second reaches %.0f dBFS (ordinary programmes -9 to -21), and stage 1 takes "
            "sound this faint partly for silence; it is analysed with its level raised by %.0f dB", name, loudest,
            gain_db)
        return float(10.0 ** (gain_db / 20.0))
    elif loudest < QUIET_DBFS:
        say("%s is very quiet: its loudest second reaches %.0f dBFS (ordinary programmes -9 to -21), too faint or too "
            "even to tell its sound from a noise floor; sound this faint is partly or wholly taken for silence. If it "
            "holds more than room tone, raise its level (e.g. ffmpeg -af loudnorm) and analyse it again", name,
            loudest)
    return 1.0


def _stage1_raised(audio: np.ndarray | SpooledAudio, pipeline: PipelineConfig, *, progress: ProgressHook,
                   timings: dict[str, float], chunk_s: float, context_s: float) -> tuple[DetectorScores, np.ndarray]:
    """Stage 1's first pass again, over ``audio`` as raised (a :class:`SpooledAudio` reading with its gain, or the
    raised array), a piece at a time; its detector and stage-1 seconds are added to ``timings``."""
    again: dict[str, float] = {}
    first = ChunkedStage1(loaders.stage1_model(pipeline.stage1), chunk_s=chunk_s, context_s=context_s,
                          expected_s=len(audio) / SAMPLE_RATE, progress=progress, timings=again)
    piece = round(PIECE_S * SAMPLE_RATE)
    for start in range(0, len(audio), piece):
        first.feed(audio[start:start + piece])
    scores, probabilities = first.finish()
    for key, seconds in again.items():
        timings[key] = timings.get(key, 0.0) + seconds
    return scores, probabilities


def analyze_audio(audio: np.ndarray, pipeline: PipelineConfig, *, options: AnalysisOptions = AnalysisOptions(),
                  progress: ProgressHook = silent_hook, timings: dict[str, float] | None = None,
                  chunk_s: float = CHUNK_S, context_s: float = CONTEXT_S) -> tuple[list[Segment], list | None, float]:
    """Stage 1 and stage 2 on decoded audio (shape (n_samples,), 16 kHz mono).

    The same chunked first pass as :func:`analyze` (``chunk_s``, ``context_s``), on audio already in memory.
    Returns the segments, the speakers (None when diarization is off) and the share of voice time with music
    underneath; ``timings`` gets ``detectors``, ``stage1`` (the stage-1 model: features and ensemble),
    ``smoothing`` and ``stage2`` (speaker embeddings, diarization and gender).
    """
    timings = timings if timings is not None else {}
    speaker_settings(pipeline, options)
    audio = np.asarray(audio, dtype=np.float32)
    first = ChunkedStage1(loaders.stage1_model(pipeline.stage1), chunk_s=chunk_s, context_s=context_s,
                          expected_s=audio.shape[0] / SAMPLE_RATE, progress=progress, timings=timings)
    first.feed(audio)
    scores, probabilities = first.finish()
    gain = level_gain("the audio", scores.energy_db)
    if gain != 1.0:
        audio = raised(audio, gain)
        scores, probabilities = _stage1_raised(audio, pipeline, progress=progress, timings=timings, chunk_s=chunk_s,
                                               context_s=context_s)
    segments, speakers, music_under_voice, _ = _after_frames(audio, scores, probabilities, pipeline, options=options,
                                                             progress=progress, timings=timings)
    return segments, speakers, music_under_voice


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
    speaker_config, _ = speaker_settings(pipeline, options)  # impossible speaker counts fail before any work
    # so does a model that is not listed, missing or altered: the gender model is loaded only once stage 1 has
    # run over the whole recording, and found missing only then (sha256s are cached: the end's call is free)
    loaders.model_infos(pipeline)
    clock = time.perf_counter()
    info = info or media.probe(path)
    timings["decode"] = time.perf_counter() - clock
    first = ChunkedStage1(loaders.stage1_model(pipeline.stage1), chunk_s=CHUNK_S, context_s=CONTEXT_S,
                          expected_s=info.duration, progress=progress, timings=timings)
    with scratch_dir() as scratch:
        spool_path = Path(scratch) / "audio.f32"
        clock = time.perf_counter()
        analysed = timings["detectors"] + timings["stage1"]
        with open(spool_path, "wb") as spool:
            for piece in media.stream_audio(info, audio_track=info.audio_track(options.audio_track),
                                            chunk_s=PIECE_S, audio_channel=options.audio_channel):
                try:
                    spool.write(memoryview(np.ascontiguousarray(piece, dtype=np.float32)))
                except OSError as err:
                    raise OutputError(f"cannot write the temporary audio spool in {scratch}: {err.strerror} "
                                      f"(it needs about 230 MB per hour of input; set TMPDIR to a roomier "
                                      f"disk)") from None
                first.feed(piece)
        # decoding is what the stream loop spent outside the chunk analyses
        timings["decode"] += time.perf_counter() - clock - (timings["detectors"] + timings["stage1"] - analysed)
        duration = first.n_samples / SAMPLE_RATE
        if duration < MIN_AUDIO_S:
            raise InputError(f"{path.name} has only {duration:.2f} s of audio; at least {MIN_AUDIO_S:.0f} s is "
                             f"needed")
        scores, probabilities = first.finish()
        gain = level_gain(path.name, scores.energy_db)
        with SpooledAudio(spool_path, gain=gain) as audio:
            if gain != 1.0:  # a quiet recording: stage 1 again, on the spool raised
                scores, probabilities = _stage1_raised(audio, pipeline, progress=progress, timings=timings,
                                                       chunk_s=CHUNK_S, context_s=CONTEXT_S)
            segments, speakers, music_under_voice, counted = _after_frames(
                audio, scores, probabilities, pipeline, options=options, progress=progress, timings=timings)
    clock = time.perf_counter()
    summary = composition.summarize(segments, duration, speakers, music_under_voice=music_under_voice,
                                    gender=pipeline.stage2.gender, counted=counted)
    try:
        sha256 = file_sha256(path)
    except OSError as err:  # moved, deleted or unmounted while it was analysed (ffmpeg held it open till then)
        raise InputError(f"cannot read {path} any more: {err.strerror}") from None
    track = info.audio_track(options.audio_track)
    source = Source(path=str(path), duration=duration, sha256=sha256, audio_track=track,
                    audio_channel=media.channel_analysed(info, audio_track=track, audio_channel=options.audio_channel),
                    gain_db=20.0 * math.log10(gain))
    timings["summary"] = time.perf_counter() - clock
    return AnalysisResult(source=source, pipeline_name=pipeline.name, pipeline_version=pipeline.version,
                          models=loaders.model_infos(pipeline),
                          segments=tuple(segments), summary=summary,
                          # the settings it ran with: the pipeline's, with this run's speaker counts
                          pipeline_settings=dataclasses.replace(pipeline, speakers=speaker_config).to_dict())

