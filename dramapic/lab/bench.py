"""Speed and memory benchmark: ``dramapic bench``.

Builds a long input from the bundled sample (its audio looped by ffmpeg, packets copied, under a moving test
picture, or alone with ``--analysis-only``), then measures on this machine:

- analysis wall time per stage (decode, detectors, stage-1 features and ensemble, smoothing, speaker embeddings and
  diarization, summary, writing the outputs) and its real-time factor (RTF = processing seconds / audio seconds),
  next to ffmpeg decoding alone (the floor any analysis pays);
- peak resident memory of the analysing process: the analysis runs in a fresh process of its own, so neither
  building the input nor the burn-in counts; its peak is reset after the models are loaded and warmed up, and
  both figures are reported;
- unless ``--analysis-only``: burn-in time against a plain re-encode with the same codec settings (the physical
  limit), and soft-subs time.

Every figure is a ratio within one run on one machine; other load on the machine shows up in them. Timings are
printed as a table and optionally written as JSON; nothing here asserts a speed.
"""

from __future__ import annotations

import os
import platform
import re
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from .. import media, resources
from ..config import load_pipeline
from ..lifecycle import removed_whole
from ..result import SAMPLE_RATE

# the bundled sample lives in the repository (samples/), not in the installed package
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "drama_sample.mp4"

STAGE_NAMES = {
    "decode": "decode (ffmpeg + spool)",
    "detectors": "detectors (VAD, AED, level)",
    "stage1": "stage 1 (features + ensemble)",
    "smoothing": "smoothing + segments",
    "stage2": "stage 2 (embeddings + diarization)",
    "summary": "summary (+ input sha256)",
    "write": "writing (json, srt, ass)",
}


def build_input(path: Path, *, minutes: float, size: str | None, source: Path = SAMPLE) -> Path:
    """A ``minutes``-long input: ``source``'s audio repeated, under a moving test pattern of ``size`` (or none).

    ``path`` should be Matroska (``.mkv``, or ``.mka`` without picture); ffmpeg loops the audio packets, so the
    audio is never held in this process.

    Raises
    ------
    InputError
        ``source`` is not media ffmpeg can read.
    MediaError
        ``source`` has no audio stream, or building failed.
    """
    from ..errors import MediaError

    if not media.probe(Path(source)).audio_streams:  # else ffmpeg's own "add a trailing '?' to the map" advice
        raise MediaError(f"{Path(source).name} has no audio stream to build the benchmark's input from")
    media.loop_media(source, path, seconds=minutes * 60, size=size)
    return path


def _timed(function, *args, **kwargs) -> float:
    clock = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - clock


def _status_mb(field: str) -> float | None:
    """A ``VmRSS`` / ``VmHWM`` line of /proc/self/status in MB, or None off Linux."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else None


def _reset_peak_rss() -> bool:
    # Linux: writing 5 to clear_refs resets the peak resident set (VmHWM) to the current one
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _decode_only(info: media.MediaInfo) -> float:
    """Seconds ffmpeg takes to decode the audio track to 16 kHz mono, pieces dropped as they come."""
    clock = time.perf_counter()
    for _ in media.stream_audio(info):
        pass
    return time.perf_counter() - clock


def analysis_worker(input_path: str, workdir: str, pipeline_path: str | None = None) -> dict:
    """Warm up, analyse ``input_path`` once and write its outputs; run in a process of its own.

    Returns the stage timings (seconds), the analysis wall time, the duration, and the process's memory:
    resident after warm-up, peak during the timed analysis (the peak is reset after warm-up where Linux allows)
    and the peak over the whole process.
    """
    from ..analysis.analyze import AnalysisOptions, analyze
    from ..render import write_ass
    from ..writers import get_writer

    pipeline = load_pipeline(Path(pipeline_path) if pipeline_path else None)
    work = Path(workdir)
    # load models and run every stage once on a short clip with voice, so that the timed run measures
    # steady-state work and memory (first calls import, compile and allocate caches)
    warm = SAMPLE
    if not warm.is_file():
        warm = work / "warmup.mp4"
        noise = np.random.default_rng(0).normal(0, 0.05, 5 * SAMPLE_RATE).astype(np.float32)
        media.encode_test_video(warm, seconds=5.0, audio=noise, size="160x90")
    clock = time.perf_counter()
    analyze(warm, pipeline)
    warmup_s = time.perf_counter() - clock

    info = media.probe(Path(input_path))
    rss_after_warmup = _status_mb("VmRSS")
    reset = _reset_peak_rss()
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    result = analyze(Path(input_path), pipeline, options=AnalysisOptions(), timings=timings, info=info)
    analysis_s = time.perf_counter() - clock
    peak_analysis = _status_mb("VmHWM") if reset else None

    clock = time.perf_counter()
    get_writer("json").write(result, work / "cues.json")
    get_writer("srt").write(result, work / "cues.srt")
    if info.has_video:
        stream = info.video_streams[0]
        width, height = stream.display_size  # as burned: a rotated portrait video is turned upright
        write_ass(result, pipeline.render, work / "cues.ass", width=width, height=height)
    timings["write"] = time.perf_counter() - clock
    # ru_maxrss is in kilobytes on Linux
    peak_process = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"duration_s": result.duration, "analysis_s": analysis_s, "timings": timings, "warmup_s": warmup_s,
            "segments": len(result.segments), "speakers": len(result.summary.speakers or ()),
            "rss_after_warmup_mb": rss_after_warmup, "peak_rss_analysis_mb": peak_analysis,
            "peak_rss_process_mb": peak_process}


def run_benchmark(input_path: Path, *, workdir: Path, preset: str | None = None, crf: int | None = None,
                  analysis_only: bool = False, pipeline_path: Path | None = None) -> dict:
    pipeline = load_pipeline(pipeline_path)
    preset = preset or pipeline.render.preset
    crf = crf if crf is not None else pipeline.render.crf
    info = media.probe(input_path)
    decode_s = _decode_only(info)
    # a fresh interpreter: its peak memory is the analysis's alone, not this process's or a parent's
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        worker = pool.submit(analysis_worker, str(input_path), str(workdir),
                             str(pipeline_path) if pipeline_path else None).result()
    duration = worker["duration_s"]
    timings = worker["timings"]
    total_s = worker["analysis_s"] + timings["write"]
    audio = info.audio_streams[0]
    stream = info.video_streams[0] if info.has_video else None
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "pipeline": {"name": pipeline.name, "stage1": pipeline.stage1.model},
        "input": {"duration_s": round(duration, 2),
                  "audio": f"{audio.codec} {audio.sample_rate} Hz {audio.channels or '?'} ch",
                  "size": f"{stream.width}x{stream.height}" if stream else None, "preset": preset, "crf": crf},
        "model_load_and_warmup_s": round(worker["warmup_s"], 2),
        "analysis": {"wall_s": round(total_s, 3), "rtf": round(total_s / duration, 4),
                     "stages_s": {k: round(v, 3) for k, v in timings.items()},
                     "stages_rtf": {k: round(v / duration, 5) for k, v in timings.items()},
                     "ffmpeg_decode_only_s": round(decode_s, 3),
                     "ratio_to_decode_only": round(total_s / decode_s, 1) if decode_s > 0 else None,
                     "segments": worker["segments"], "speakers": worker["speakers"]},
        "memory": {"rss_after_warmup_mb": _round(worker["rss_after_warmup_mb"]),
                   "peak_rss_analysis_mb": _round(worker["peak_rss_analysis_mb"]),
                   "peak_rss_process_mb": _round(worker["peak_rss_process_mb"])},
        "peak_rss_mb": _round(worker["peak_rss_analysis_mb"] or worker["peak_rss_process_mb"]),
    }
    if analysis_only or stream is None:
        return report
    ass, srt = workdir / "cues.ass", workdir / "cues.srt"
    plain_s = _timed(media.plain_reencode, info, workdir / "plain.mp4", preset=preset, crf=crf)
    burn_s = _timed(media.burn_subtitles, info, ass, workdir / "burned.mp4", fonts_dir=resources.fonts_dir(),
                    preset=preset, crf=crf)
    soft_s = _timed(media.mux_subtitles, info, srt, workdir / "soft.mp4")
    report["burn"] = {"wall_s": round(burn_s, 2), "rtf": round(burn_s / duration, 4),
                      "plain_reencode_s": round(plain_s, 2), "ratio_to_plain_reencode": round(burn_s / plain_s, 3)}
    report["soft_subs"] = {"wall_s": round(soft_s, 3), "rtf": round(soft_s / duration, 5)}
    return report


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def format_table(report: dict) -> str:
    analysis, memory, source = report["analysis"], report["memory"], report["input"]
    duration = source["duration_s"]
    picture = f"video {source['size']}, x264 preset {source['preset']} crf {source['crf']}" if source["size"] \
        else "no picture"
    lines = [f"input: {duration} s of audio ({source['audio']}), {picture}; pipeline {report['pipeline']['name']} "
             f"(stage 1: {report['pipeline']['stage1']}); {report['machine']['cpus']} CPUs, "
             f"{report['machine']['processor']}",
             f"{'measure':<40}{'seconds':>10}{'RTF':>10}",
             f"{'analysis + writing (total)':<40}{analysis['wall_s']:>10.2f}{analysis['rtf']:>10.4f}"]
    for stage, seconds in analysis["stages_s"].items():
        lines.append(f"{'  ' + STAGE_NAMES.get(stage, stage):<40}{seconds:>10.2f}"
                     f"{analysis['stages_rtf'][stage]:>10.4f}")
    lines.append(f"{'ffmpeg decode only':<40}{analysis['ffmpeg_decode_only_s']:>10.2f}"
                 f"{analysis['ffmpeg_decode_only_s'] / duration:>10.4f}")
    if "burn" in report:
        burn, soft = report["burn"], report["soft_subs"]
        lines += [f"{'burn-in':<40}{burn['wall_s']:>10.2f}{burn['rtf']:>10.4f}",
                  f"{'plain re-encode (same settings)':<40}{burn['plain_reencode_s']:>10.2f}"
                  f"{burn['plain_reencode_s'] / duration:>10.4f}",
                  f"{'soft subtitles (mov_text mux)':<40}{soft['wall_s']:>10.2f}{soft['rtf']:>10.4f}",
                  f"burn / plain re-encode: {burn['ratio_to_plain_reencode']:.3f}x"]
    peak = memory["peak_rss_analysis_mb"]
    lines += [f"analysis / decode-only: {analysis['ratio_to_decode_only']}x; "
              f"{analysis['segments']} segments, {analysis['speakers']} speakers; "
              f"model load + warm-up {report['model_load_and_warmup_s']:.1f} s",
              f"analysing process: peak RSS {peak if peak is not None else '?'} MB during the analysis, "
              f"{memory['rss_after_warmup_mb']} MB after model load + warm-up, "
              f"{memory['peak_rss_process_mb']} MB peak over its life"]
    return "\n".join(lines)


#: ``--minutes`` at most (about two years): beyond it the length was a duration of inf for ffmpeg
MAX_MINUTES = 1e6


def benchmark(*, input_path: Path | None = None, source: Path | None = None, minutes: float = 2.0,
              size: str | None = "1280x720", analysis_only: bool = False, preset: str | None = None,
              crf: int | None = None, pipeline_path: Path | None = None) -> dict:
    """``dramapic bench``: build the input (unless ``input_path`` is given) in a scratch folder and measure it.

    Returns the report of :func:`run_benchmark` (print it with :func:`format_table`).

    Raises
    ------
    ConfigError
        ``minutes`` is not a positive number up to :data:`MAX_MINUTES`, or ``size`` is not WIDTHxHEIGHT in pixels
        (when the input is built).
    """
    import re

    from ..errors import ConfigError

    # capped: 1e308 minutes passed and reached ffmpeg as a duration of inf (a media error, exit 3)
    if input_path is None and not 0 < minutes <= MAX_MINUTES:
        raise ConfigError(f"--minutes must be a positive number up to {MAX_MINUTES:g}, got {minutes:g}")
    if input_path is None and not analysis_only and size is not None:
        # else ffmpeg's own words about its lavfi filter, after the scratch folder is made
        match = re.fullmatch(r"(\d+)x(\d+)", size)
        if not match or not (16 <= int(match[1]) <= 7680 and 16 <= int(match[2]) <= 4320):
            raise ConfigError("--size must be WIDTHxHEIGHT in pixels, 16x16 to 7680x4320 (e.g. 1280x720), "
                              f"got {size!r}")
    if input_path is None and source is None and not SAMPLE.is_file():
        from ..errors import InputError

        # an installed dramapic has no samples/: ffmpeg's "drama_sample.mp4 is not a media file ... (No such file or
        # directory)" named no way out
        raise InputError(f"the bundled sample {SAMPLE.name} is not here (it is in the source checkout's samples/, "
                         "not in an installed dramapic): give --source FILE or --input FILE")
    source = source or SAMPLE
    # whole: a bench input of 2 minutes of 720p video is ~100 MB, and a SIGTERM mid-removal would leave it behind
    with removed_whole(tempfile.TemporaryDirectory(prefix="dramapic-bench-")) as scratch:
        workdir = Path(scratch)
        if input_path:
            built = Path(input_path)
        elif analysis_only:
            built = build_input(workdir / "bench.mka", minutes=minutes, size=None, source=source)
        else:
            built = build_input(workdir / "bench.mkv", minutes=minutes, size=size, source=source)
        return run_benchmark(built, workdir=workdir, preset=preset, crf=crf, analysis_only=analysis_only,
                             pipeline_path=pipeline_path)
