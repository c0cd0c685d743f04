"""Command line: argument parsing, logging set-up, progress bars, and turning errors into one line and an
exit code. Everything else lives in the library."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .errors import DramapicError

log = logging.getLogger("dramapic")

STAGE_UNITS = {"burn": "s", "detectors": "step", "speakers": "window", "evaluate": "file"}


class TqdmProgress:
    """A progress hook drawing one tqdm bar per stage on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bars: dict = {}

    def __call__(self, stage: str, completed: float, total: float) -> None:
        if not self.enabled or total <= 0:
            return
        from tqdm import tqdm

        bar = self._bars.get(stage)
        if bar is None:
            unit = STAGE_UNITS.get(stage, "it")
            fmt = "{l_bar}{bar}| {n:.0f}/{total:.0f} " + unit + " [{elapsed}<{remaining}]"
            bar = self._bars[stage] = tqdm(total=total, desc=f"{stage:<9}", file=sys.stderr, leave=False,
                                           dynamic_ncols=True, bar_format=fmt)
        bar.total = total
        bar.n = min(completed, total)
        bar.refresh()
        if completed >= total:
            bar.close()
            del self._bars[stage]

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose:
        level = logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # the libraries' own INFO chatter (numba, matplotlib, ...) is noise even with --verbose
    for noisy in ("numba", "matplotlib", "urllib3", "h5py"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, errors only")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--pipeline", type=Path, default=None,
                        help="pipeline YAML (default: the bundled pipelines/default.yaml)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dramapic", description=(
        "Voice / song / noise and female / male composition of drama and TV video, "
        "as subtitles, JSON and a captioned video."))
    parser.add_argument("--version", action="version", version=f"dramapic {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="analyse one video and write subtitles, JSON and a captioned video")
    run.add_argument("input", type=Path, help="a video or audio file that ffmpeg can read")
    run.add_argument("-o", "--output-dir", type=Path, default=None, help="where to write (default: beside input)")
    run.add_argument("--format", choices=("srt", "vtt"), default="srt", help="subtitle format (default: srt)")
    video = run.add_mutually_exclusive_group()
    video.add_argument("--soft-subs", action="store_true",
                       help="add the subtitles as a stream (mov_text) instead of burning them: no re-encode")
    video.add_argument("--no-video", action="store_true", help="write the analysis outputs only")
    run.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    run.add_argument("--audio-track", type=int, default=0, metavar="N", help="audio track to analyse (from 0)")
    run.add_argument("--num-speakers", type=int, default=None, metavar="N", help="force the number of speakers")
    run.add_argument("--language", choices=("en", "ko"), default="en", help="language of cues and summary card")
    run.add_argument("--preset", default=None, help="x264 preset for burn-in (default: from the pipeline)")
    run.add_argument("--crf", type=int, default=None, help="x264 CRF for burn-in (default: from the pipeline)")
    _common(run)

    train = commands.add_parser("train", help="train the stage-2 gender model from a data manifest")
    train.add_argument("--data", type=Path, required=True, help="manifest.csv of the training data")
    train.add_argument("--out", type=Path, default=None, help="models directory (default: the bundled models/)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--max-clips", type=int, default=None, help="use only this many clips (smoke runs)")
    _common(train)

    evaluate = commands.add_parser("eval", help="score the pipeline on mixes with frame-level ground truth")
    evaluate.add_argument("--mixes", type=Path, required=True, help="folder of devmix_*.opus + .labels.csv + .rttm")
    evaluate.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    evaluate.add_argument("--limit", type=int, default=None, help="score only the first N mixes")
    _common(evaluate)
    return parser


def _cmd_run(args: argparse.Namespace, progress: TqdmProgress) -> int:
    from .analysis import AnalysisOptions
    from .config import load_pipeline
    from .run import RunOptions, run

    pipeline = load_pipeline(args.pipeline)
    options = RunOptions(
        output_dir=args.output_dir, subtitle_format=args.format, overwrite=args.overwrite, language=args.language,
        video="soft" if args.soft_subs else "none" if args.no_video else "burn",
        preset=args.preset, crf=args.crf,
        analysis=AnalysisOptions(audio_track=args.audio_track, num_speakers=args.num_speakers))
    if args.preset is not None or args.crf is not None:  # validated like the pipeline's own values
        pipeline = pipeline.replace(**{k: v for k, v in (("render__preset", args.preset), ("render__crf", args.crf))
                                       if v is not None})
    outputs = run(args.input, options=options, pipeline=pipeline, progress=progress)
    for note in outputs.notes:
        log.warning(note)
    summary = outputs.result.summary
    if not args.quiet:
        genre = summary.genre
        print(f"{args.input.name}: {genre.label} ({genre.confidence:.2f}), {len(summary.speakers)} speaker(s), "
              + ", ".join(f"{k} {v:.0%}" for k, v in summary.shares.items()))
        for key, path in outputs.files.items():
            print(f"  {key:<9} {path}")
    log.info("timings: %s", ", ".join(f"{k} {v:.2f}s" for k, v in outputs.timings.items()))
    return 0


def _cmd_train(args: argparse.Namespace, progress: TqdmProgress) -> int:
    from . import resources
    from .train import train_gender

    metrics = train_gender(args.data, out_dir=args.out or resources.models_dir(), seed=args.seed,
                           max_clips=args.max_clips, progress=progress)
    if not args.quiet:
        for key, value in metrics.items():
            print(f"{key}: {value}")
    return 0


def _cmd_eval(args: argparse.Namespace, progress: TqdmProgress) -> int:
    from .analysis import analyze
    from .config import load_pipeline
    from .evaluate import evaluate_mixes, write_json_atomic

    pipeline = load_pipeline(args.pipeline)
    if not args.mixes.is_dir():
        from .errors import InputError

        raise InputError(f"mixes folder not found: {args.mixes}")
    report = evaluate_mixes(args.mixes, analyze_fn=lambda p: analyze(p, pipeline), progress=progress,
                            limit=args.limit)
    print(report.format_table())
    if args.json:
        write_json_atomic(report.to_dict(), args.json)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    show_bars = not (args.quiet or args.no_progress) and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
    progress = TqdmProgress(enabled=show_bars)
    handlers = {"run": _cmd_run, "train": _cmd_train, "eval": _cmd_eval}
    try:
        return handlers[args.command](args, progress)
    except DramapicError as err:
        progress.close()
        print(f"dramapic: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        progress.close()
        print("dramapic: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        progress.close()
        print("dramapic: error: out of memory", file=sys.stderr)
        return 1
    finally:
        progress.close()


if __name__ == "__main__":
    sys.exit(main())
