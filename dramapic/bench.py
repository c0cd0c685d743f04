"""Speed and memory benchmark: ``python -m dramapic.bench``.

Builds a long input from the bundled sample (its audio repeated, under a moving test picture), then measures
in one process, on this machine:

- analysis wall time per stage and its real-time factor (RTF = processing seconds / audio seconds), next to
  ffmpeg decoding alone (the floor any analysis pays);
- burn-in time against a plain re-encode with the same codec settings (the physical limit), and soft-subs time;
- peak resident memory of the analysing process.

Timings are printed as a table and optionally written as JSON; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import media, resources
from .analysis import AnalysisOptions, analyze
from .config import load_pipeline
from .render import write_ass
from .writers import get_writer

# the bundled sample lives in the repository (samples/), not in the installed package
SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "drama_sample.mp4"


def build_input(path: Path, *, minutes: float, size: str, source: Path = SAMPLE) -> Path:
    """A ``minutes``-long MP4: ``source``'s audio repeated, under a moving test pattern of ``size``."""
    audio = media.decode_audio(media.probe(source))
    repeats = int(np.ceil(minutes * 60 * media.SAMPLE_RATE / audio.shape[0]))
    long_audio = np.tile(audio, repeats)[: int(minutes * 60 * media.SAMPLE_RATE)]
    media.encode_test_video(path, seconds=long_audio.shape[0] / media.SAMPLE_RATE, audio=long_audio, size=size)
    return path


def _timed(function, *args, **kwargs) -> float:
    clock = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - clock


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_benchmark(input_path: Path, *, workdir: Path, preset: str | None = None, crf: int | None = None) -> dict:
    pipeline = load_pipeline(None)
    preset = preset or pipeline.render.preset
    crf = crf if crf is not None else pipeline.render.crf
    info = media.probe(input_path)

    # load models once, on a short clip, so that the timed run measures steady-state work
    warm = workdir / "warmup.mp4"
    noise = np.random.default_rng(0).normal(0, 0.05, 5 * media.SAMPLE_RATE).astype(np.float32)
    media.encode_test_video(warm, seconds=5.0, audio=noise, size="160x90")
    clock = time.perf_counter()
    analyze(warm, pipeline)
    warmup_s = time.perf_counter() - clock

    decode_s = _timed(media.decode_audio, info)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    result = analyze(input_path, pipeline, options=AnalysisOptions(), timings=timings)
    analysis_s = time.perf_counter() - clock
    peak_rss = _peak_rss_mb()

    ass, srt = workdir / "cues.ass", workdir / "cues.srt"
    stream = info.video_streams[0]
    write_ass(result, pipeline.render, ass, width=stream.width, height=stream.height)
    get_writer("srt").write(result, srt)
    plain_s = _timed(media.plain_reencode, info, workdir / "plain.mp4", preset=preset, crf=crf)
    burn_s = _timed(media.burn_subtitles, info, ass, workdir / "burned.mp4", fonts_dir=resources.fonts_dir(),
                    preset=preset, crf=crf)
    soft_s = _timed(media.mux_subtitles, info, srt, workdir / "soft.mp4")
    duration = result.duration
    return {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "input": {"duration_s": round(duration, 2), "size": f"{stream.width}x{stream.height}",
                  "preset": preset, "crf": crf},
        "model_load_and_warmup_s": round(warmup_s, 2),
        "analysis": {"wall_s": round(analysis_s, 3), "rtf": round(analysis_s / duration, 4),
                     "stages_s": {k: round(v, 3) for k, v in timings.items()},
                     "stages_rtf": {k: round(v / duration, 4) for k, v in timings.items()},
                     "ffmpeg_decode_only_s": round(decode_s, 3),
                     "ratio_to_decode_only": round(analysis_s / decode_s, 1) if decode_s > 0 else None},
        "burn": {"wall_s": round(burn_s, 2), "rtf": round(burn_s / duration, 4),
                 "plain_reencode_s": round(plain_s, 2), "ratio_to_plain_reencode": round(burn_s / plain_s, 3)},
        "soft_subs": {"wall_s": round(soft_s, 3), "rtf": round(soft_s / duration, 5)},
        "peak_rss_mb": round(peak_rss, 1),
    }


def format_table(report: dict) -> str:
    analysis, burn, soft = report["analysis"], report["burn"], report["soft_subs"]
    lines = [f"input: {report['input']['duration_s']} s of audio, video {report['input']['size']}, "
             f"x264 preset {report['input']['preset']} crf {report['input']['crf']}; "
             f"{report['machine']['cpus']} CPUs, {report['machine']['processor']}",
             f"{'measure':<34}{'seconds':>10}{'RTF':>10}",
             f"{'analysis (total)':<34}{analysis['wall_s']:>10.2f}{analysis['rtf']:>10.4f}"]
    for stage, seconds in analysis["stages_s"].items():
        lines.append(f"{'  ' + stage:<34}{seconds:>10.2f}{analysis['stages_rtf'][stage]:>10.4f}")
    duration = report["input"]["duration_s"]
    lines += [
        f"{'ffmpeg decode only':<34}{analysis['ffmpeg_decode_only_s']:>10.2f}"
        f"{analysis['ffmpeg_decode_only_s'] / duration:>10.4f}",
        f"{'burn-in':<34}{burn['wall_s']:>10.2f}{burn['rtf']:>10.4f}",
        f"{'plain re-encode (same settings)':<34}{burn['plain_reencode_s']:>10.2f}"
        f"{burn['plain_reencode_s'] / duration:>10.4f}",
        f"{'soft subtitles (mov_text mux)':<34}{soft['wall_s']:>10.2f}{soft['rtf']:>10.4f}",
        f"burn / plain re-encode: {burn['ratio_to_plain_reencode']:.3f}x; "
        f"analysis / decode-only: {analysis['ratio_to_decode_only']}x; "
        f"peak RSS {report['peak_rss_mb']:.0f} MB; model load + warm-up {report['model_load_and_warmup_s']:.1f} s",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dramapic.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=None, help="benchmark this file instead of a built one")
    parser.add_argument("--source", type=Path, default=SAMPLE,
                        help="media whose audio is repeated to build the input (default: samples/drama_sample.mp4)")
    parser.add_argument("--minutes", type=float, default=2.0, help="length of the built input (default 2)")
    parser.add_argument("--size", default="1280x720", help="picture size of the built input (default 1280x720)")
    parser.add_argument("--preset", default=None)
    parser.add_argument("--crf", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dramapic-bench-") as scratch:
        workdir = Path(scratch)
        source = args.input or build_input(workdir / "bench.mp4", minutes=args.minutes, size=args.size,
                                             source=args.source)
        report = run_benchmark(source, workdir=workdir, preset=args.preset, crf=args.crf)
    print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
