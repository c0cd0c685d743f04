"""``run``: one video in, captioned video + subtitles + JSON (+ RTTM) out. The CLI's ``dramapic run`` is a thin
layer over :func:`run`.

Outputs are named after the input (``movie.mp4`` → ``movie.dramapic.mp4``, ``movie.srt``,
``movie.dramapic.json``, ``movie.rttm``), written under temporary names and renamed together at the end.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import media, resources
from .analysis.analyze import AnalysisOptions, analyze, check_input
from .analysis.streaming import scratch_dir
from .config import PipelineConfig, load_pipeline
from .errors import ConfigError, OutputError
from .progress import ProgressHook, silent_hook
from .render import write_ass
from .result import AnalysisResult
from .writers import (
    CUE_WORDS,
    OutputSet,
    case_twin,
    check_name_lengths,
    get_writer,
    make_output_dir,
    name_key,
    remove_made_dirs,
    written_by_dramapic,
)

log = logging.getLogger(__name__)

VIDEO_MODES = ("burn", "soft", "none")


@dataclass(frozen=True)
class RunOptions:
    """What ``dramapic run`` writes and how."""

    output_dir: Path | None = None          # default: next to the input
    subtitle_format: str = "srt"            # "srt" | "vtt"
    video: str = "burn"                     # "burn" | "soft" (mov_text stream, no re-encode) | "none"
    overwrite: bool = False
    language: str = "en"                    # cue and card language: "en" | "ko"
    rttm: bool = True
    analysis: AnalysisOptions = field(default_factory=AnalysisOptions)
    #: refuse an output whose name differs only in case from a file already in its folder (another input's, where
    #: case is ignored). A batch turns it off: its archive's case twins get folders of their own (find_media), so
    #: such a file there is the output of an archive file since renamed by case, which the rename must not block
    refuse_case_twins: bool = True

    def __post_init__(self) -> None:
        if self.subtitle_format not in ("srt", "vtt"):
            raise ConfigError(f"subtitle format must be srt or vtt, not {self.subtitle_format!r}")
        if self.video not in VIDEO_MODES:
            raise ConfigError(f"video mode must be one of {', '.join(VIDEO_MODES)}")
        if self.language not in CUE_WORDS:
            raise ConfigError(f"language must be one of {', '.join(CUE_WORDS)}")


@dataclass(frozen=True)
class RunOutputs:
    result: AnalysisResult
    files: dict[str, Path]
    notes: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)


def output_paths(source: Path, options: RunOptions, *, with_video: bool) -> dict[str, Path]:
    directory = Path(options.output_dir) if options.output_dir else source.parent
    stem = source.stem
    paths = {"subtitles": directory / f"{stem}.{options.subtitle_format}",
             "json": directory / f"{stem}.dramapic.json"}
    if options.rttm:
        paths["rttm"] = directory / f"{stem}.rttm"
    if with_video:
        paths["video"] = directory / f"{stem}.dramapic.mp4"
    return paths


def run(path: str | Path, *, options: RunOptions = RunOptions(), pipeline: PipelineConfig | None = None,
        progress: ProgressHook = silent_hook) -> RunOutputs:
    """Analyse ``path`` and write its outputs. Raises a :class:`DramapicError` subclass on failure, in which
    case no output file is left behind, nor a folder that this call created for them."""
    pipeline = pipeline or load_pipeline(None)
    source = check_input(Path(path))
    if options.output_dir is not None:
        # "new/../out" names out; taken literally, a failed run would remove out but leave new/ behind
        options = dataclasses.replace(options, output_dir=Path(os.path.normpath(options.output_dir)))
    info = media.probe(source)
    notes = []
    tracks = len(info.audio_streams)
    if tracks > 1 and options.analysis.audio_track is None:
        # which of a dub, an original and a commentary the cues describe was not said anywhere
        chosen = info.audio_track()
        marked = sum(stream.default for stream in info.audio_streams)  # Matroska often marks every track
        why = {0: "none is marked default", 1: "the one it marks as default"}.get(
            marked, f"the first of the {marked} it marks as default")
        notes.append(f"{source.name} has {tracks} audio tracks: track {chosen} is analysed ({why}; --audio-track N "
                     f"chooses another, from 0)")
    want_video = options.video != "none"
    if want_video and not info.has_video:
        notes.append(f"{source.name} has no video stream: no video output, analysis outputs only")
        want_video = False
    if want_video and options.video == "burn":
        media.check_burn_in()  # an ffmpeg without libass: said now, not after minutes of analysis
    finals = output_paths(source, options, with_video=want_video)
    check_name_lengths(list(finals.values()))  # before the lookups below, which such a name fails with a traceback
    # an input named like one of its outputs (a video saved as clip.srt) would be replaced by it under --overwrite
    for final in finals.values():
        if final.exists() and os.path.samefile(final, source):
            raise OutputError(f"the output {final} is the input itself; write the outputs elsewhere (-o DIR) or "
                              f"rename the input")
        # EP01.mp4's outputs are ep01.mp4's too where case is ignored (macOS, Windows, SMB shares): --overwrite gives
        # leave to replace this input's outputs, not another's; refused on any file system, so that the folder stays
        # whole when copied to such a share
        twin = case_twin(final) if options.refuse_case_twins else None
        if twin:
            raise OutputError(f"the output {final.name} would replace {twin} in {final.parent}: names that differ "
                              f"only in case are one file on macOS and Windows (write the outputs elsewhere with "
                              f"-o DIR, or rename the input)")
    # ep1.srt beside ep1.mp4 is, as often as not, the dialogue's subtitles (a download, a translation), and
    # NAME.rttm beside NAME.wav a corpus's reference annotation: "output already exists (use --overwrite to
    # replace)" led the user to replace them with dramapic's, and --overwrite did so
    other = "vtt" if options.subtitle_format == "srt" else "srt"
    kept = (("subtitles", "subtitles that are not dramapic's cues (the dialogue's, or cues edited by hand)",
             f", or as --format {other}"),
            ("rttm", "speaker turns that are not dramapic's (a reference annotation?)", ""))
    for key, what, alternative in kept:
        final = finals.get(key)
        # (an output that is the input itself was refused above)
        if final is not None and final.is_file() and written_by_dramapic(final) is False:
            raise OutputError(f"{final} holds {what}, which dramapic does not replace, even with --overwrite: write "
                              f"the outputs elsewhere with -o DIR{alternative}")
    # ep1.mp4's outputs are where ep1.mkv's went (the name loses the extension): "output already exists, use
    # --overwrite" did not say that they are another input's, nor did --overwrite, which replaced them
    owner = _recorded_input(finals["json"])
    if owner is not None and name_key(owner) != name_key(source.name):
        if not options.overwrite:
            there = ", ".join(str(p) for p in finals.values() if os.path.lexists(p))
            raise OutputError(f"output already exists: {there}, written for {owner} (its {finals['json'].name} says "
                              f"so); write {source.name}'s outputs elsewhere with -o DIR, or use --overwrite to "
                              f"replace them")
        notes.append(f"replaced the outputs of {owner} in {finals['json'].parent} (its {finals['json'].name} named "
                     f"it as their input): {source.name} has the same name without its extension")
    created = make_output_dir(Path(options.output_dir)) if options.output_dir is not None else []
    try:
        return _analyse_and_write(source, info, finals, want_video, notes, pipeline, options, progress)
    except BaseException:
        # a run that fails (or is stopped) leaves nothing behind: not even the folders it made for its outputs
        # (while empty: another run may be writing into one by now)
        remove_made_dirs(created)
        raise


def _recorded_input(json_path: Path) -> str | None:
    """The file name of the input an earlier run's JSON was written for; None where there is no such JSON or it
    cannot be read as one (a damaged or foreign file is the output check's business, not this one's)."""
    try:
        with open(json_path, encoding="utf-8") as stream:
            recorded = json.load(stream)["source"]["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Path(recorded).name if isinstance(recorded, str) and recorded else None


def _analyse_and_write(source: Path, info: media.MediaInfo, finals: dict[str, Path], want_video: bool,
                       notes: list[str], pipeline: PipelineConfig, options: RunOptions,
                       progress: ProgressHook) -> RunOutputs:
    timings: dict[str, float] = {}
    with OutputSet(overwrite=options.overwrite) as outputs:
        outputs.check(list(finals.values()))  # fail before minutes of analysis, not after
        for stale in outputs.remove_stale(list(finals.values())):  # left by a run that was killed
            log.info("removed %s, left by an earlier run that did not finish", stale)
        result = analyze(source, pipeline, options=options.analysis, progress=progress, timings=timings, info=info)
        if options.output_dir is not None:
            # another run that made this folder and then failed removes it while still empty (run()): made again
            # here, so that the minutes of analysis are not lost to a missing folder
            make_output_dir(Path(options.output_dir))
        clock = time.perf_counter()
        subtitle_writer = get_writer(options.subtitle_format, language=options.language)
        temporary = {key: outputs.reserve(final) for key, final in finals.items()}
        subtitle_writer.write(result, temporary["subtitles"])
        get_writer("json").write(result, temporary["json"])
        if "rttm" in temporary:
            get_writer("rttm").write(result, temporary["rttm"])
        timings["write"] = time.perf_counter() - clock
        if want_video:
            clock = time.perf_counter()
            _write_video(info, result, temporary, pipeline, options, progress)
            timings["video"] = time.perf_counter() - clock
        files = dict(zip(temporary, outputs.commit()))
        if not want_video:
            notes.extend(_older_video_note(source, options))
        notes.extend(_other_format_note(source, result, options))
    return RunOutputs(result=result, files=files, notes=tuple(notes), timings=timings)


def _older_video_note(source: Path, options: RunOptions) -> list[str]:
    """A note on the captioned video an earlier run of ``source`` left where this one, which writes none, has just
    written the SRT, JSON and RTTM: it shows that run's analysis, which this folder's files no longer are.

    Said, never removed: an hour's encode the user may still want (the same models give the same analysis; a batch
    that drops ``--burn`` redoes every file) is not this run's to delete, even under ``--overwrite``, which gives
    leave to replace the outputs this run writes. Only that exact name, never the input itself (a hard link to
    it) nor a name that differs only in case (another input's, where case is ignored)."""
    video = output_paths(source, options, with_video=True)["video"]
    try:
        if not video.is_file() or os.path.samefile(video, source) or case_twin(video):
            return []
    except OSError:  # gone meanwhile, or unreadable: nothing to say about it
        return []
    # said once, by the note the CLI prints (a batch's log keeps it at debug level)
    log.debug("%s is left from an earlier run: it shows that run's analysis, not this one's", video)
    return [f"{video} is left from an earlier run: it shows that run's analysis, not this one's (this run wrote "
            f"no video)"]


def _other_format_note(source: Path, result: AnalysisResult, options: RunOptions) -> list[str]:
    """A note on the subtitles in the other format (``ep1.srt`` beside a new ``ep1.vtt``) that an earlier run of
    ``source`` left, when they no longer match this run's cues: a player that opens the video finds both, and may
    show the stale ones, silently.

    Kept, as the captioned video is (:func:`_older_video_note`): both formats of one input may be wanted (SRT for a
    desktop player, WebVTT for the web), and a file a user may have edited is not this run's to delete. A file that
    matches what this run would write in that format (the same analysis and cue language) needs no word, nor one that
    dramapic did not write (the dialogue's subtitles, which players are meant to find beside the video)."""
    other = "vtt" if options.subtitle_format == "srt" else "srt"
    path = output_paths(source, dataclasses.replace(options, subtitle_format=other), with_video=False)["subtitles"]
    try:
        if not path.is_file() or os.path.samefile(path, source) or case_twin(path):
            return []
        # the dialogue's subtitles (a download, a translation) are the user's, not an earlier run's
        if not written_by_dramapic(path):
            return []
        if path.read_bytes() == get_writer(other, language=options.language).render(result).encode("utf-8"):
            return []
    except OSError:  # gone meanwhile, or unreadable: nothing to say about it
        return []
    this = output_paths(source, options, with_video=False)["subtitles"]
    note = (f"{path} is left from an earlier run and does not match this run's cues (this run wrote {this.name}): "
            f"a player that finds both may show that run's analysis (remove it, or write it again with "
            f"--format {other} --overwrite)")
    return [note]


def _write_video(info: media.MediaInfo, result: AnalysisResult, temporary: dict[str, Path],
                 pipeline: PipelineConfig, options: RunOptions, progress: ProgressHook) -> None:
    if options.video == "soft":
        # mov_text is made from SRT; VTT users still get an SRT stream, written in a folder of this run's own: an
        # unlocked file beside the outputs would be taken for a killed run's leftover by a run of the same input
        # starting meanwhile (OutputSet.remove_stale), which would remove it from under this one's ffmpeg
        with scratch_dir(prefix="dramapic-subs-", purpose="the subtitles to add") as scratch:
            srt = temporary["subtitles"]
            if options.subtitle_format != "srt":
                srt = Path(scratch) / "cues.srt"
                get_writer("srt", language=options.language).write(result, srt)
            media.mux_subtitles(info, srt, temporary["video"], language="kor" if options.language == "ko" else "eng",
                                audio_track=info.audio_track(options.analysis.audio_track),
                                preset=pipeline.render.preset, crf=pipeline.render.crf,
                                progress=lambda done: progress("burn", done, info.duration))
        return
    stream = info.video_streams[0]
    # a folder of scratch_dir's: one a run killed outright (SIGKILL) leaves is cleared by the next run
    with scratch_dir(prefix="dramapic-burn-", purpose="the subtitle script to burn in") as scratch:
        ass = Path(scratch) / "cues.ass"
        # the canvas of the picture as burned: a portrait phone video stored landscape is turned upright first
        width, height = stream.display_size
        write_ass(result, pipeline.render, ass, width=width, height=height, language=options.language)
        media.burn_subtitles(info, ass, temporary["video"], fonts_dir=resources.fonts_dir(),
                             preset=pipeline.render.preset, crf=pipeline.render.crf,
                             audio_track=info.audio_track(options.analysis.audio_track), sound_end=result.duration,
                             progress=lambda done: progress("burn", done, info.duration))
