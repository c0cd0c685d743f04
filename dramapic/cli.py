"""Command line: argument parsing, logging set-up, progress bars, and turning errors into one line and an
exit code. Everything else lives in the library."""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import signal
import stat
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn, Sequence

from . import __version__
from .errors import ConfigError, DramapicError, InputError, OutputError
from .lifecycle import TERMINATING, Terminated, resending_unraisable_hook, terminate_as_interrupt
from .oneline import OneLineFormatter as _OneLineFormatter  # shared with the batch's workers (engines.log_like)
from .oneline import one_line as _one_line
from .threads import configure_threads

log = logging.getLogger("dramapic")


class _StdoutClosed(Exception):
    """Whoever read standard output went away (``dramapic run x.mp4 | head -1``): stop without a message."""


def _to_devnull(stream) -> None:
    # what is still buffered for the closed or full stream must not fail again when the interpreter exits
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _complain(line: str) -> None:
    """The one line on standard error. Where it cannot be written (the terminal has gone: a closed ssh session,
    whose SIGHUP ended the command, gives EIO; a closed pipe) it is dropped, so the exit code still says what
    happened: the failed print raised, and the command ended with 1 and a traceback nobody could see."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        _to_devnull(sys.stderr)  # else the interpreter's last flush fails again, and exits 120


def _on_terminal(stream) -> bool:
    """Whether ``stream`` writes to a terminal device (one whose session has gone still is one)."""
    try:
        return stat.S_ISCHR(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):
        return False


def _print(*parts: object) -> None:
    """print() to standard output, flushed: a closed pipe ends the command quietly, a full disk behind a
    redirection (or any other write error) with one line."""
    try:
        print(*parts, flush=True)
    except BrokenPipeError:
        _to_devnull(sys.stdout)
        raise _StdoutClosed from None
    except OSError as err:
        _to_devnull(sys.stdout)
        if err.errno == errno.EIO and _on_terminal(sys.stdout):
            # the terminal has gone (a batch left running in the background of a closed session): nobody can read
            # the report, and the work is done and kept; the exit code says so, not "output error" (6). EIO from a
            # file (a failing disk or network share behind a redirection) stays an output error: its reader lost it
            return
        raise OutputError(f"cannot write to standard output: {err.strerror or err}") from None


def _say(args: argparse.Namespace, *parts: object) -> None:
    """A line of a command's report on standard output, left out with --quiet ("errors only", as run and train
    do: eval's and bench's tables were printed whatever it said)."""
    if not args.quiet:
        _print(*parts)


STAGE_UNITS = {"burn": "s", "detectors": "step", "speakers": "window", "evaluate": "file",
               "speech reference": "timeline", "scenes": "timeline", "far rooms": "timeline"}
TRAIN_ONLY = ("stage1", "gender", "speakers", "gender-stacking", "song-safe")
# which `train --only` targets each training option shapes: given for any other, it did nothing, without a word
TRAIN_OPTION_TARGETS = (("--out", "out", ("stage1", "gender", "speakers", "song-safe")),
                        ("--seconds-per-fold", "seconds_per_fold", ("stage1", "song-safe")),
                        ("--no-augment", "no_augment", ("gender",)),
                        ("--copies", "copies", ("gender", "speakers", "gender-stacking")),
                        ("--cache", "cache", ("gender", "speakers")))


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
        if bar is None and completed >= total:
            return  # a stage's closing report after its bar already ran full: drawing a new bar would show it twice
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
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    # the libraries' own INFO chatter (numba, matplotlib, ...) is noise even with --verbose
    for noisy in ("numba", "matplotlib", "urllib3", "h5py"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


@contextlib.contextmanager
def _logs_above_bars(bars: bool) -> Iterator[None]:
    """While progress bars may be drawn, log records are written above them (tqdm.write): a warning written to
    stderr as it was (ffmpeg's decoding errors, a DC offset, found while the detectors' bar runs) went on the bar's
    own line, after its text, and left the bar's stub on the screen."""
    if not bars:
        yield
        return
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        yield


def _unraisable_to_log(unraisable: sys.UnraisableHookArgs) -> None:
    # a finaliser that fails (a library's __del__ on an object a signal left half-made) would print a traceback of
    # its own after dramapic's one line; it goes to the log instead, where -vv shows it
    log.debug("ignored an exception in %r: %s", unraisable.object, unraisable.exc_value,
              exc_info=(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback))


def _common(parser: argparse.ArgumentParser, *, pipeline: bool = True) -> None:
    """The options every command has; ``--pipeline`` only where the command runs a pipeline (``report`` reads
    results and ``train`` fits models: a --pipeline there would be accepted and do nothing)."""
    # -q with -v: the one would silence the other without a word
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", help="no progress bars, errors only")
    loudness.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    if pipeline:
        parser.add_argument("--pipeline", type=_path, default=None,
                            help="pipeline YAML, or a bundled one's name (song-safe); default: the bundled default.yaml")


def _stage_switches(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-gender", action="store_true",
                        help="no female/male decision: gender is null and no gender shares are shown")
    parser.add_argument("--no-speakers", action="store_true",
                        help="no speaker ids: speaker is null and no speaker count is shown (speakers are still told "
                             "apart inside, to decide gender per speaker)")


def _pipeline(args: argparse.Namespace):
    """The pipeline of this command: the YAML, then the command line's switches and x264 settings (the one route
    by which --preset/--crf reach the renderer, validated like the YAML's own values)."""
    from .config import load_pipeline

    pipeline = load_pipeline(args.pipeline)
    changes = {}
    if getattr(args, "no_gender", False):
        changes["stage2__gender"] = False
    if getattr(args, "no_speakers", False):
        changes["speakers__enabled"] = False
    for key, name in (("render__preset", "preset"), ("render__crf", "crf")):
        if getattr(args, name, None) is not None:
            try:  # validated like the YAML's value, but named as the user typed it
                pipeline.replace(**{key: getattr(args, name)})
            except ConfigError as err:
                raise ConfigError(str(err).replace(f"render.{name}", f"--{name}")) from None
            changes[key] = getattr(args, name)
    return pipeline.replace(**changes) if changes else pipeline


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (and exit 2) like every other bad input; --help shows the usage."""

    #: the words being parsed (the command's parser is another object, so kept on the class)
    _words: tuple[str, ...] = ()

    def error(self, message: str) -> NoReturn:
        # a file named -dash.mp4 is taken for an option: "required: input", with the input right there, puzzled
        dashed = next((w for w in _OneLineParser._words if w.startswith("-") and w != "-"
                       and w.split("=", 1)[0] not in self._option_string_actions and os.path.lexists(w)), None)
        if dashed:
            message += f"; {dashed} is taken for an option: write ./{dashed}, or put it last after --"
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        words = tuple(sys.argv[1:] if args is None else args)
        _OneLineParser._words = words[:words.index("--")] if "--" in words else words  # after it: no options
        known, extras = self.parse_known_args(args, namespace)
        if extras:
            # said by the command's parser: argparse's own said "see dramapic --help", whose help lists the
            # commands, not the option a misspelt one (run --frmat) was meant to be
            commands = next((a for a in self._actions if isinstance(a, argparse._SubParsersAction)), None)
            command = commands.choices.get(getattr(known, commands.dest, None)) if commands else None
            (command or self).error(f"unrecognized arguments: {' '.join(extras)}")
        return known


def _path(text: str) -> Path:
    """An argparse type: a path, never empty. An empty argument (``-o "$OUT"`` with OUT unset) was the current
    folder: ``run x.mp4 -o ""`` wrote there rather than beside the input, ``run ""`` named "." as the input."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path")
    return Path(text)


def _non_empty(text: str) -> str:
    """An argparse type: ``_path`` for an option kept as text (report's ``-o``, whose trailing "/" Path drops)."""
    _path(text)
    return text


def _seed_list(text: str) -> tuple[int, ...]:
    """``--seeds``: comma-separated non-negative integers, each once."""
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of seeds: {text!r}") from None
    if any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct non-negative integers: {text!r}")
    return seeds


def _name_list(text: str) -> tuple[str, ...]:
    """``--refit-stage1``: comma-separated names, each once."""
    names = tuple(part.strip() for part in text.split(","))
    if not all(names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"not a comma-separated list of distinct names: {text!r}")
    return names


def _seconds_list(text: str) -> tuple[float, ...]:
    """``--scenes``: comma-separated positive seconds, each once."""
    try:
        seconds = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of seconds: {text!r}") from None
    if any(not 1.0 <= s <= 3600.0 for s in seconds) or len(set(seconds)) != len(seconds):
        raise argparse.ArgumentTypeError(f"scene lengths must be distinct seconds from 1 to 3600: {text!r}")
    return seconds


def _whole_number_from(least: int, most: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``least`` (``--copies``), and at most ``most`` when given."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}: {text!r}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most}: {text!r}")
        return value
    return parse


def _positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above 0 (``--seconds-per-fold``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


# train: 0 copies = clean windows only (the window table's own meaning); eval's fits need augmented windows
_non_negative_int = _whole_number_from(0)
# train --seed: the stage-1 forest's random_state (scikit-learn takes 0 .. 2**32 - 1; a larger seed failed with a
# traceback once the training mixes were built)
_train_seed = _whole_number_from(0, 2**32 - 1)
_positive_int = _whole_number_from(1)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="dramapic", description=(
        "Voice / song / noise and female / male composition of drama and TV video, "
        "as subtitles, JSON and a captioned video."))
    parser.add_argument("--version", action="version", version=f"dramapic {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="analyse one video and write subtitles, JSON and a captioned video")
    run.add_argument("input", type=_path, help="a video or audio file that ffmpeg can read")
    run.add_argument("-o", "--output-dir", type=_path, default=None, help="where to write (default: beside input)")
    run.add_argument("--format", choices=("srt", "vtt"), default="srt", help="subtitle format (default: srt)")
    video = run.add_mutually_exclusive_group()
    video.add_argument("--soft-subs", action="store_true",
                       help="add the subtitles as a stream (mov_text) instead of burning them: no re-encode")
    video.add_argument("--no-video", action="store_true", help="write the analysis outputs only")
    run.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    run.add_argument("--audio-track", type=int, default=None, metavar="N",
                     help="audio track to analyse, from 0 (default: the one the file marks as default)")
    run.add_argument("--audio-channel", choices=("left", "right"), default=None,
                     help="analyse one channel of the track instead of its mix: a bilingual broadcast's "
                          "dual-mono track carries one language per channel (default: the mix)")
    run.add_argument("--num-speakers", type=int, default=None, metavar="N",
                     help="force the number of speakers instead of estimating it")
    run.add_argument("--min-speakers", type=int, default=None, metavar="N",
                     help="estimate the number of speakers, but find at least N")
    run.add_argument("--max-speakers", type=int, default=None, metavar="N",
                     help="estimate the number of speakers, but find at most N (default: from the pipeline, 8)")
    run.add_argument("--language", choices=("en", "ko"), default="en", help="language of cues and summary card")
    run.add_argument("--preset", default=None, help="x264 preset for burn-in (default: from the pipeline)")
    run.add_argument("--crf", type=int, default=None, help="x264 CRF for burn-in (default: from the pipeline)")
    _stage_switches(run)
    _common(run)

    train = commands.add_parser("train", help="train every model file (stage-1 ensemble, gender, speaker "
                                              "projection) from a data manifest")
    train.add_argument("--data", type=_path, required=True,
                       help="manifest.csv of the training data (gender and speakers also fit manifest_extra.csv "
                            "when it lies next to it)")
    train.add_argument("--out", type=_path, default=None, help="models directory (default: the bundled models/)")
    train.add_argument("--seed", type=_train_seed, default=0, metavar="N",
                       help="seeds the training data's draws and the fits, 0 to 4294967295 (default 0, the shipped "
                            "models')")
    train.add_argument("--max-clips", type=_positive_int, default=None, metavar="N",
                       help="smoke run: use only this many clips and tiny models")
    train.add_argument("--only", choices=TRAIN_ONLY, default=None,
                       help="train only the stage-1 ensemble, the gender model or the speaker projection, or the "
                            "opt-in song-safe stage 1 (pipelines/song-safe.yaml), or run the gender-stacking "
                            "measurement (model-card figures; writes no model) (default: every model but song-safe)")
    train.add_argument("--seconds-per-fold", type=_positive_seconds, default=None, metavar="S",
                       help="stage 1 and song-safe: seconds of training mixes per fold (default 3600; smoke runs 20 "
                            "per clip)")
    train.add_argument("--no-augment", action="store_true", help="gender: fit on clean windows only")
    train.add_argument("--copies", type=_non_negative_int, default=None, metavar="N",
                       help="gender and speakers (and gender-stacking): augmented copies per voice clip (default 2, "
                            "the shipped models'; 0: clean windows only)")
    train.add_argument("--cache", type=_path, default=None, metavar="DIR",
                       help="keep the voice window table (the embedding pass gender and speakers share) here and "
                            "reuse it when the manifests and settings are the same")
    _common(train, pipeline=False)

    evaluate = commands.add_parser("eval", help="score the pipeline on mixes with frame-level ground truth")
    evaluate.add_argument("--mixes", type=_path, default=None,
                          help="folder of devmix_*.opus + .labels.csv + .rttm (required unless --song-check or "
                               "--cross-corpus; with --cross-corpus: the regression check)")
    evaluate.add_argument("--json", type=_path, default=None, help="also write the report as JSON here")
    evaluate.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                          help="score only the first N mixes (--song-check: clips; --cross-corpus: timelines of "
                               "each folder)")
    evaluate.add_argument("--variants", action="store_true",
                          help="score every stage-1 member alone, the ensemble and the hand rule, and gender in "
                               "the cascade against gender on every window (the model card's tables)")
    evaluate.add_argument("--song-check", action="store_true",
                          help="instead: share of song time the pipeline's stage 1 calls voice, per music subtype, "
                               "on held-out song-only clips, then the ensemble against each member alone per music "
                               "source (needs --data)")
    evaluate.add_argument("--cross-corpus", action="store_true",
                          help="instead: gender and speakers across corpora - for each voice source, models fitted "
                               "without it, scored on timelines of its dev speakers; then stage 1's member check on "
                               "the same timelines (needs --data)")
    evaluate.add_argument("--data", type=_path, default=None,
                          help="--song-check / --cross-corpus / --reference speech: the shared data folder "
                               "(manifests, clips)")
    evaluate.add_argument("--timelines", type=_path, default=None, metavar="DIR",
                          help="--cross-corpus: the timeline tree (default: built once under --work)")
    evaluate.add_argument("--work", type=_path, default=None, metavar="DIR",
                          help="--cross-corpus / --reference speech / --scenes / --rooms far / --refit-stage1: "
                               "where the voice window table, the built timelines, the speech references, the scene "
                               "excerpts, the far-room copies and the stage-1 refits are kept (default: "
                               "$XDG_CACHE_HOME/dramapic/cross-corpus, ~/.cache/dramapic/cross-corpus when that is "
                               "unset)")
    evaluate.add_argument("--seeds", type=_seed_list, default=(0,), metavar="N[,N...]",
                          help="--cross-corpus: training seeds of the refitted gender and speaker models and of the "
                               "window table's augmentation (default 0, the shipped models' seed); with several, "
                               "the protocol runs once per seed and ends with each figure's mean and range over "
                               "them (one seed is one draw; each new seed builds its own window table first)")
    evaluate.add_argument("--copies", type=_positive_int, default=None, metavar="N",
                          help="--cross-corpus: augmented copies per voice clip in the window tables the held-out "
                               "models are fitted on (default 2, the shipped models'; as dramapic train --copies)")
    evaluate.add_argument("--reference", choices=("as-built", "speech"), default="as-built",
                          help="--mixes / --cross-corpus: score against the timelines' own labels (as-built, the "
                               "default) or against a copy where utterance time that holds no speech in the clean "
                               "clip (leading clicks, long pauses) is not voice (speech; needs --data; kept under "
                               "--work)")
    evaluate.add_argument("--scenes", type=_seconds_list, default=None, metavar="S[,S...]",
                          help="--mixes / --cross-corpus: score short scenes instead of whole timelines - excerpts "
                               "of these lengths in seconds (e.g. 20,30) cut from every timeline at 20%% and 60%% "
                               "of the way in, references cut alike (kept under --work)")
    evaluate.add_argument("--rooms", choices=("near", "far"), default="near",
                          help="--mixes / --cross-corpus: score the timelines as built, recorded near the microphone "
                               "(near, the default), or a copy of each as one distant microphone across a room "
                               "hears it (far: a seeded room per timeline, RT60 0.5-1.0 s, the room 0 to 6 dB "
                               "louder than the voice, a -50 dBFS hiss; labels as built; kept under --work; with "
                               "--reference speech and --scenes, those are made from the far copy)")
    evaluate.add_argument("--refit-stage1", type=_name_list, nargs="?", const=(), default=None,
                          metavar="SOURCE[,SOURCE...]",
                          help="--song-check / --cross-corpus: stage 1's member check with stage 1 refitted by the "
                               "shipped recipe without each source it was trained on (music sources for the song "
                               "check, voice folders for the cross-corpus timelines), so that every row is a source "
                               "it never heard; about 16 min a fit on 2 cores, fits kept under --work; optionally "
                               "only these sources or folders")
    _stage_switches(evaluate)
    _common(evaluate)

    bench = commands.add_parser("bench", help="measure speed and memory (analysis, burn-in; or diarization alone)")
    bench.add_argument("--input", type=_path, default=None, help="benchmark this file instead of a built one")
    bench.add_argument("--source", type=_path, default=None,
                       help="media whose audio is repeated to build the input (default: samples/drama_sample.mp4 "
                            "of the source checkout; an installed dramapic has none)")
    # None: not given (the defaults are bench.benchmark's), so that one given where it does nothing is refused
    bench.add_argument("--minutes", type=float, default=None, help="length of the built input (default 2)")
    bench.add_argument("--size", default=None, help="picture size of the built input (default 1280x720)")
    bench.add_argument("--analysis-only", action="store_true",
                       help="no burn-in: the built input is audio only, and only the analysis is measured")
    bench.add_argument("--preset", default=None, help="x264 preset for burn-in (default: from the pipeline)")
    bench.add_argument("--crf", type=int, default=None, help="x264 CRF for burn-in (default: from the pipeline)")
    bench.add_argument("--speakers", action="store_true",
                       help="diarization alone on long dialogues of train-split speakers, at 1/4, 1/2 and all of "
                            "--hours, each in a fresh process")
    bench.add_argument("--hours", type=float, default=None, help="--speakers: the longest input (default 2)")
    bench.add_argument("--data", type=_path, default=None,
                       help="--speakers: the shared data folder with manifest.csv (default: shared/data beside "
                            "the dramapic source checkout; when that is missing, the bundled sample's voices, "
                            "repeated)")
    bench.add_argument("--one", type=float, default=None, help=argparse.SUPPRESS)  # internal: one size, JSON out
    bench.add_argument("--json", type=_path, default=None, help="also write the figures here as JSON")
    _common(bench)

    batch = commands.add_parser("batch", help="tag a whole archive: resumable, parallel, with a database of results")
    batch.add_argument("archive", type=_path, help="the archive folder (searched recursively)")
    batch.add_argument("-o", "--output-dir", type=_path, required=True,
                       help="where outputs (mirroring the archive) and dramapic.sqlite go")
    batch.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                       help="parallel workers (local: processes on this machine; default 1, in this process)")
    batch.add_argument("--engine", choices=("local", "dask", "ray"), default="local",
                       help="where files are processed (default: local)")
    batch.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="dask: a running scheduler, e.g. tcp://10.0.0.5:8786 (default: a local cluster)")
    batch.add_argument("--address", default=None, metavar="HOST:PORT",
                       help="ray: a running cluster (default: a local Ray)")
    batch.add_argument("--include", action="append", default=[], metavar="GLOB",
                       help="only files whose archive-relative path or name matches (repeatable)")
    batch.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                       help="leave out files whose archive-relative path or name matches (repeatable)")
    batch.add_argument("--extensions", default=None, metavar="LIST",
                       help="media extensions to look for, comma-separated, replacing the defaults "
                            "(mp4,mkv,mov,webm,avi,ts,...); '+wav,mp3' adds to them")
    batch.add_argument("--burn", action="store_true", help="also write the captioned video (re-encodes: slow)")
    batch.add_argument("--format", choices=("srt", "vtt"), default="srt", help="subtitle format (default: srt)")
    batch.add_argument("--language", choices=("en", "ko"), default="en", help="language of cues and summary card")
    batch.add_argument("--audio-track", type=int, default=None, metavar="N",
                       help="audio track to analyse, from 0 (default: the one the file marks as default)")
    batch.add_argument("--audio-channel", choices=("left", "right"), default=None,
                       help="analyse one channel of each track instead of its mix (dual-mono bilingual "
                            "broadcasts; default: the mix)")
    batch.add_argument("--retry-failed", action="store_true", help="process files that failed before again")
    batch.add_argument("--wait", action="store_true",
                       help="if another batch is writing to the output folder, wait for it instead of refusing")
    _stage_switches(batch)
    _common(batch)

    report = commands.add_parser("report", help="HTML report (+ CSV) of an archive's output folder or of one run")
    report.add_argument("source", type=_path, help="a batch output folder (with dramapic.sqlite) or a .dramapic.json")
    report.add_argument("-o", "--output", type=_non_empty, default=None,  # a str: Path drops the "/" of "reports/"
                        help="the HTML file (missing folders are created), or a folder to write it in (one that "
                             "exists, or a name ending in /; default: "
                             "OUT_DIR/report.html, or NAME.report.html beside the JSON); the CSV and Parquet files "
                             "go beside it")
    report.add_argument("--title", default=None, help="the report's title")
    report.add_argument("--no-parquet", action="store_true", help="no Parquet file even when pyarrow is installed")
    _common(report, pipeline=False)
    return parser


def _cmd_run(args: argparse.Namespace, progress: TqdmProgress) -> int:
    from .analysis.analyze import AnalysisOptions
    from .analysis.composition import gender_seconds
    from .result import AnalysisResult, whole_percentages
    from .run import RunOptions, run

    encoding = [flag for flag, on in (("--preset", args.preset is not None), ("--crf", args.crf is not None)) if on]
    if args.no_video and encoding:  # nothing is encoded: the x264 settings would do nothing, without a word
        raise InputError(f"{', '.join(encoding)} {'does' if len(encoding) == 1 else 'do'} not apply to --no-video: "
                         f"it encodes no video")
    pipeline = _pipeline(args)
    # impossible speaker counts are refused here, before any work (the one check: SpeakersConfig.for_run)
    pipeline.speakers.for_run(num_speakers=args.num_speakers, min_speakers=args.min_speakers,
                              max_speakers=args.max_speakers)
    options = RunOptions(
        output_dir=args.output_dir, subtitle_format=args.format, overwrite=args.overwrite, language=args.language,
        video="soft" if args.soft_subs else "none" if args.no_video else "burn",
        analysis=AnalysisOptions(audio_track=args.audio_track, num_speakers=args.num_speakers,
                                 min_speakers=args.min_speakers, max_speakers=args.max_speakers,
                                 audio_channel=args.audio_channel))
    outputs = run(args.input, options=options, pipeline=pipeline, progress=progress)
    for note in outputs.notes:
        log.warning(note)
    # the figures as the JSON keeps them, which the card, the reports and the archive show: rounded again from the
    # unrounded ones, a share of 0.12504 read "13%" here and "12%" everywhere else (the JSON's 0.125)
    as_json = AnalysisResult.from_dict(outputs.result.to_dict())
    summary = as_json.summary
    if not args.quiet:
        genre = summary.genre
        # no genre: too little but silence to judge (composition.GENRE_MIN_CONTENT_S)
        genre_text = "unknown genre" if genre is None else f"{genre.label.replace('_', ' ')} ({genre.confidence:.2f})"
        speakers = f"{len(summary.speakers)} speaker(s), " if summary.speakers is not None else ""
        _print(f"{args.input.name}: {genre_text}, {speakers}"
               # whole percentages adding up to 100, as the card and the reports show them
               + ", ".join(f"{k} {v}%" for k, v in whole_percentages(shares=summary.shares).items()))
        speaking = gender_seconds(as_json)  # the seconds the archive stores: of the JSON's millisecond times
        if summary.gender_shares is not None and sum(speaking.values()) > 0:
            # the content teams' headline numbers: who speaks how long, by gender (abstentions shown, not hidden);
            # each share the JSON's gender_shares, as the card and the reports read it
            known = speaking["female"] + speaking["male"]
            percent = whole_percentages(shares={g: summary.gender_shares.get(g, 0.0) for g in ("female", "male")})
            parts = [f"{g} {_duration(speaking[g])}" + (f" ({percent[g]}%)" if known > 0 else "")
                     for g in ("female", "male")]
            if speaking["unknown"] > 0:
                parts.append(f"unknown {_duration(speaking['unknown'])}")
            _print("  speaking " + ", ".join(parts))
        for key, path in outputs.files.items():
            _print(f"  {key:<9} {path}")
    log.info("timings: %s", ", ".join(f"{k} {v:.2f}s" for k, v in outputs.timings.items()))
    return 0


def _duration(seconds: float) -> str:
    """12.4 s, 3 min 05 s, 1 h 02 min: speaking time as people read it. The unit is chosen on the value as shown
    (59.96 s is "1 min 00 s", not "60.0 s"), as the reports' durations are."""
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _cmd_train(args: argparse.Namespace, progress: TqdmProgress) -> int:
    import json

    from . import resources
    from .lab import train

    ignored = [flag for flag, name, targets in TRAIN_OPTION_TARGETS
               if args.only not in (None, *targets) and getattr(args, name) is not None
               and getattr(args, name) is not False]
    if ignored:
        raise InputError(f"{', '.join(ignored)} {'does' if len(ignored) == 1 else 'do'} not apply to --only "
                         f"{args.only}")
    if args.max_clips is not None and args.out is None and args.only != "gender-stacking":
        # the default --out is the bundled models/: a smoke run's tiny models replaced the shipped ones there, and
        # every later `dramapic run` used them, without a word
        raise InputError("--max-clips is a smoke run (tiny models): give --out DIR for them, or they would replace "
                         "the shipped models in the bundled models/")
    if args.only == "gender-stacking":
        from .lab.train_gender import gender_stacking_experiment

        copies = {} if args.copies is None else {"copies": args.copies}
        _print(json.dumps(gender_stacking_experiment(args.data, seed=args.seed, max_clips=args.max_clips, **copies),
                          indent=2))
        return 0
    stages = train.DEFAULT_STAGES if args.only is None else (args.only,)
    done = train.train_all(args.data, out_dir=args.out or resources.models_dir(), seed=args.seed,
                           max_clips=args.max_clips, stages=stages, seconds_per_fold=args.seconds_per_fold,
                           augment=not args.no_augment, copies=args.copies, cache=args.cache,
                           progress=progress)
    if not args.quiet:
        for entry in done.get("stage1", []) + done.get("song-safe", []):
            metrics = entry["metrics"]["out_of_fold_train_mixes"]
            metrics = metrics.get(entry["name"], metrics)
            _print(f"{entry['name']}: out-of-fold frame accuracy on train mixes "
                   f"{metrics['frame_accuracy_non_silent']} ({entry['files'][0]['path']})")
        if "gender" in done:
            for condition, m in done["gender"]["metrics"]["dev_windows"].get("all", {}).items():
                _print(f"{done['gender']['name']}: dev {condition}: window error {m['window_error']}, ECE "
                       f"{m['window_ece']}, clip error {m['clip_error']}, abstention {m['clip_abstention']}")
        if "speakers" in done:
            for key, value in done["speakers"]["metrics"].get("dev_window_verification", {}).items():
                _print(f"{done['speakers']['name']}: dev window verification {key}: EER {value['eer']}, "
                       f"AUC {value['auc']}")
            _print(f"{done['speakers']['name']}: cluster threshold "
                   f"{done['speakers']['calibration'].get('cluster_threshold')}")
        _print("seconds: " + ", ".join(f"{k} {v}" for k, v in done["seconds"].items()))
    return 0


def _cmd_eval(args: argparse.Namespace, progress: TqdmProgress) -> int:
    from .lab.eval_command import evaluate_command

    return evaluate_command(args, _pipeline(args), progress=progress, say=lambda *parts: _say(args, *parts))


def _cmd_bench(args: argparse.Namespace, progress: TqdmProgress) -> int:
    from .lab.eval_command import check_json_target
    from .writers import write_json_atomic

    check_json_target(args.json)
    if args.speakers or args.one is not None:
        from .lab import bench_speakers

        ignored = [flag for flag, on in (("--input", args.input is not None), ("--source", args.source is not None),
                                         ("--minutes", args.minutes is not None), ("--size", args.size is not None),
                                         ("--analysis-only", args.analysis_only), ("--preset", args.preset is not None),
                                         ("--crf", args.crf is not None)) if on]
        if ignored:  # --speakers builds its own dialogues and measures the diarization alone
            raise InputError(f"{', '.join(ignored)} {'does' if len(ignored) == 1 else 'do'} not apply to --speakers")
        longest = {} if args.hours is None else {"hours": args.hours}

        if args.one is not None:  # one size, measured in this fresh process: JSON on stdout for the parent
            import json

            _print(json.dumps(bench_speakers.measure_one(args.one, args.data or bench_speakers.DEFAULT_DATA,
                                                         pipeline_path=args.pipeline)))
            return 0
        if args.data is not None and not (args.data / "manifest.csv").is_file():
            # only the default folder may be missing (the bundled sample stands in for it): a --data that is not
            # the shared data folder would measure other material than asked for
            raise InputError(f"no manifest.csv in {args.data}: --data must be the shared data folder")
        figures = bench_speakers.run_sizes(**longest, data=args.data or bench_speakers.DEFAULT_DATA,
                                           pipeline_path=args.pipeline,
                                           report=lambda line: _say(args, line))
    else:
        from .lab import bench

        # each of these did nothing here, without a word: --hours and --data shape the diarization benchmark
        # alone, and an --input was measured as it is whatever length and picture were asked for
        speakers_only = [flag for flag, on in (("--hours", args.hours is not None), ("--data", args.data is not None))
                         if on]
        if speakers_only:
            raise InputError(f"{', '.join(speakers_only)} {'applies' if len(speakers_only) == 1 else 'apply'} to "
                             f"--speakers only")
        if args.input is not None and args.source is not None:
            raise InputError("--input and --source exclude each other: --input is measured as it is, --source is "
                             "repeated to build the input")
        shaping = [flag for flag, on in (("--minutes", args.minutes is not None), ("--size", args.size is not None))
                   if on]
        if args.input is not None and shaping:
            raise InputError(f"{', '.join(shaping)} {'does' if len(shaping) == 1 else 'do'} not apply to --input: it "
                             f"is measured as it is ({'they shape' if len(shaping) > 1 else 'it shapes'} the built "
                             f"input)")
        # --analysis-only encodes no picture: a preset or CRF given there would only be printed in the report, as if
        # it had been measured
        encoding = [flag for flag, on in (("--size", args.size is not None), ("--preset", args.preset is not None),
                                          ("--crf", args.crf is not None)) if on]
        if args.analysis_only and encoding:
            raise InputError(f"{', '.join(encoding)} {'does' if len(encoding) == 1 else 'do'} not apply to "
                             f"--analysis-only: it encodes no video (its built input is audio only)")
        _pipeline(args)  # a bad --pipeline, --preset or --crf is refused before the input is built, as by run
        built = {name: value for name, value in (("minutes", args.minutes), ("size", args.size)) if value is not None}
        figures = bench.benchmark(input_path=args.input, source=args.source, **built,
                                  analysis_only=args.analysis_only, preset=args.preset, crf=args.crf,
                                  pipeline_path=args.pipeline)
        _say(args, bench.format_table(figures))
    if args.json:
        write_json_atomic(figures, args.json)
    return 0


class BatchProgress:
    """``dramapic batch`` on the terminal: one overall bar (files, hours of audio, ETA) with a status line per
    finished file above it; without a terminal, the same status lines as log records (failures as warnings)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar = None
        self._plan_bar = None
        self.audio = 0.0
        self.failed = 0
        self.kept = 0       # of the failed: redos whose file's earlier result stays current

    def plan(self, plan) -> None:
        parts = [f"{len(plan.items)} media file(s)", f"{len(plan.to_run)} to process"]
        for reason in ("done", "moved", "failed earlier"):
            if plan.count(reason):
                parts.append(f"{plan.count(reason)} {reason}")
        self._say(", ".join(parts), level=logging.INFO)

    def __call__(self, stage: str, completed: float, total: float) -> None:
        if not self.enabled or total <= 0:
            return
        if stage == "plan":  # checking which files changed: a transient bar, only seen when hashing takes a while
            if self._plan_bar is None and completed < total:
                from tqdm import tqdm

                self._plan_bar = tqdm(total=total, desc="checking", unit="file", file=sys.stderr, leave=False,
                                      dynamic_ncols=True, delay=1.0)
            if self._plan_bar is not None:
                self._plan_bar.update(completed - self._plan_bar.n)  # update, not refresh: honours the delay
                if completed >= total:
                    self._plan_bar.close()
                    self._plan_bar = None
            return
        if stage != "batch":
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc="batch", unit="file", file=sys.stderr, dynamic_ncols=True,
                             bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} files [{elapsed}<{remaining}]{postfix}")
        self._bar.n = min(completed, total)
        self._bar.set_postfix_str(self.counter(), refresh=False)
        self._bar.refresh()

    def counter(self) -> str:
        """The bar's running count, worded as the final summary is: "failed" alone would read as files without a
        result, where a failed redo left the file's earlier one current."""
        kept = f" (earlier result kept: {self.kept})" if self.kept else ""
        return f"{self.audio / 3600:.2f} h audio, {self.failed} failed{kept}"

    def file(self, event) -> None:
        if event.status == "done":
            self.audio += event.duration or 0.0
            speed = (event.duration or 0.0) / event.seconds if event.seconds else 0.0
            speakers = f"{event.n_speakers} speaker(s), " if event.n_speakers is not None else ""
            genre = (event.genre or "unknown genre").replace("_", " ")  # None: too little but silence to judge
            self._say(f"done    {event.rel}: {genre}, {speakers}"
                      f"{event.duration or 0.0:.0f} s of audio in {event.seconds or 0.0:.1f} s "
                      f"({speed:.1f}× real time)", level=logging.INFO)
        else:
            self.failed += 1
            self.kept += bool(event.kept)
            kept = " (earlier result kept)" if event.kept else ""
            self._say(f"failed  {event.rel}{kept}: {event.error}", level=logging.ERROR)  # shown with --quiet too
        from .archive.notes import unnamed

        for note in event.notes:  # what `dramapic run` says about the file (a DC offset), as a warning of its own
            # named once, by its archive path: a note that starts with the file's own name says it again
            self._say(f"note    {event.rel}: {unnamed(note, event.rel)}", level=logging.WARNING)

    def waiting(self, holder: str) -> None:
        self._say(f"{holder}; waiting for it to finish", level=logging.WARNING)  # who holds it, and since when

    def _say(self, text: str, *, level: int) -> None:
        text = _one_line(text)
        try:
            if self._bar is not None:
                from tqdm import tqdm

                tqdm.write(text, file=sys.stderr)
                return
            if self.enabled and level >= logging.INFO:
                print(text, file=sys.stderr)
                return
        except (OSError, ValueError):
            # the terminal has gone: `dramapic batch ... &` and then `exit` sends the batch no SIGHUP (bash's
            # huponexit is off), so it goes on with a terminal that fails every write (EIO). A line nobody can see
            # must not stop the rest of the archive: from here on they go to the log, which drops what it cannot
            # write, and the bar (which tqdm stops drawing itself) is no longer updated
            self.enabled = False
            self._bar = None
        log.log(level, text)

    def close(self) -> None:
        for bar in (self._plan_bar, self._bar):
            if bar is not None:
                bar.close()
        self._plan_bar = self._bar = None


def _cmd_batch(args: argparse.Namespace, progress: TqdmProgress) -> int:
    from .analysis.analyze import AnalysisOptions
    from .archive.batch import DEFAULT_EXTENSIONS, BatchOptions, TaskOptions, run_batch

    listed = () if args.extensions is None else tuple(
        e for e in args.extensions.replace(" ", "").lstrip("+").split(",") if e)
    # "+wav,mp3" adds to the defaults; a plain list replaces them
    adding = args.extensions is None or args.extensions.strip().startswith("+")
    extensions = DEFAULT_EXTENSIONS + tuple(e for e in listed if e not in DEFAULT_EXTENSIONS) if adding else listed
    options = BatchOptions(
        extensions=extensions, include=tuple(args.include), exclude=tuple(args.exclude),
        task=TaskOptions(burn=args.burn, subtitle_format=args.format, language=args.language,
                         analysis=AnalysisOptions(audio_track=args.audio_track, audio_channel=args.audio_channel)),
        retry_failed=args.retry_failed, engine=args.engine, workers=args.workers, scheduler=args.scheduler,
        address=args.address, wait=args.wait)
    pipeline = _pipeline(args)
    bar = BatchProgress(enabled=progress.enabled)
    # `kill PID` (and schedulers stopping a job) end a batch like Ctrl-C (main() turns SIGTERM and SIGHUP into
    # lifecycle.Terminated): what finished is recorded, workers stop
    try:
        summary = run_batch(args.archive, args.output_dir, options=options, pipeline=pipeline, progress=bar,
                            on_file=bar.file, on_wait=bar.waiting, on_plan=bar.plan)
    finally:
        bar.close()
    if summary.found == 0:
        # not an error (an archive may be empty today), but almost always a wrong folder or --extensions
        log.warning("no media files found under %s (extensions: %s; --extensions, --include, --exclude choose "
                    "them)", args.archive, ", ".join(extensions))
    if not args.quiet:
        speed = f", {summary.realtime_factor:.1f}× real time" if summary.realtime_factor else ""
        # a failed redo of a finished file leaves its earlier result current (as the report's "Redone and failed,
        # earlier result kept" list says): "failed" alone would read as a file without a result
        kept = f" (earlier result kept: {summary.failed_kept})" if summary.failed_kept else ""
        # a file moved or renamed in the archive is not analysed again: its results went with it
        moved = f" ({len(summary.moved)} moved)" if summary.moved else ""
        _print(f"batch: {summary.done} done, {summary.skipped} skipped{moved}, {summary.failed} failed{kept}; "
               f"{summary.audio_seconds / 3600:.2f} h of audio in {summary.elapsed:.0f} s{speed}")
        if summary.failed_earlier:
            kept = (f", {summary.failed_earlier_kept} of them with their earlier result kept"
                    if summary.failed_earlier_kept else "")
            _print(f"  {summary.failed_earlier} file(s) failed in an earlier batch and were skipped{kept} "
                   "(--retry-failed to try them again)")
        kept_paths = set(summary.kept)
        for path, error in summary.failures:
            _print(_one_line(f"  failed   {path}{' (earlier result kept)' if path in kept_paths else ''}: {error}"))
        _print(f"  database {summary.database}")
    return 1 if summary.failed else 0


def _cmd_report(args: argparse.Namespace, progress: TqdmProgress) -> int:
    from .archive.report import write_report

    outputs = write_report(args.source, output=args.output, title=args.title, parquet=not args.no_parquet)
    if not args.quiet:
        for kind, path in outputs.to_dict().items():
            if path:
                _print(f"  {kind:<8} {path}")
    return 0


def _fill_closed_standard_streams() -> None:
    """Give a standard stream the shell closed (``dramapic run x.mp4 2>&-``) /dev/null in its place.

    Otherwise Python sets ``sys.stderr`` to None and the first error line fails, so the command ended with 1 instead
    of its exit code; and the next file opened takes the free number 2, so whatever a native library or a child
    process writes to standard error (onnxruntime, torch, ffmpeg's own children) lands inside an output file."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        try:
            devnull = os.open(os.devnull, os.O_RDWR)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
        except OSError:
            continue
        if getattr(sys, name) is None:
            # kept open for the life of the process, as the stream it stands in for
            setattr(sys, name, open(fd, mode, closefd=False, encoding="utf-8", errors="replace"))  # noqa: SIM115


def main(argv: Sequence[str] | None = None) -> int:
    """The ``dramapic`` command: returns its exit code; every error, signal and interrupt is one line."""
    _fill_closed_standard_streams()
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # a second Ctrl-C (hands press it twice) landing while the first one's line was being written: Python's
        # traceback after it, and the 130 lost. Said once, if the first line did not get out
        if not _said_interrupted:
            _complain("dramapic: interrupted")
        return 130


def program() -> NoReturn:
    """The ``dramapic`` program (console script and ``python -m dramapic``): :func:`main`, then exit with its code.

    Once :func:`main` has returned, its outputs are complete or cleaned up, and only the interpreter's shutdown is
    left: atexit callbacks (torch's library finalisers), joining threads. A Ctrl-C there (hands press it twice, or
    just as the run ends) raised KeyboardInterrupt inside that shutdown, where Python prints it as "Exception
    ignored in ..." with a traceback; a SIGTERM there ended the process with no word at all, so a supervisor's log
    showed a killed command whose outputs were in fact complete. From here on Ctrl-C, SIGTERM and SIGHUP each say
    so in one line and end the process by the signal itself, as its default does (the shell reports 130, 143 or
    129, and a script that ran the command sees it killed). :func:`main` itself leaves the handlers alone: a program
    that calls it goes on with its own.
    """
    try:
        code = main()
    except KeyboardInterrupt:  # landed between main's return and this line
        code = 130
    try:
        _end_by_signal_after(code)
    except KeyboardInterrupt:  # landed before the handler was swapped: the run is over all the same
        code = 130
        _end_by_signal_after(code)
    sys.exit(code)


def _end_by_signal_after(code: int) -> None:
    """From now on (the command has returned ``code``) a Ctrl-C, SIGTERM or SIGHUP prints one line (none where the
    command was itself ended by a signal, ``code`` 128 or above, and said so) and ends the process by that signal. A
    signal the process was started ignoring stays ignored (``nohup``, a shell's background job), and a SIGINT
    handler that is not Python's own is left as it is."""
    def said_then_default(signum: int, frame: Any) -> None:
        # a command that was itself stopped by a signal has said so: a second press of Ctrl-C adds no line
        if code < 128:
            what = "interrupted" if signum == signal.SIGINT else f"terminated by {signal.Signals(signum).name}"
            done = "; its outputs are complete" if code == 0 else ""
            _complain(f"dramapic: {what} after the command had ended{done}")
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)  # not reached: the default action of these signals ends the process

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, said_then_default)
    for signum in TERMINATING:
        if signal.getsignal(signum) not in (signal.SIG_IGN, None):
            signal.signal(signum, said_then_default)


#: whether "dramapic: interrupted" has been written (by _main's handler), so that main does not say it twice
_said_interrupted = False


def _main(argv: Sequence[str] | None) -> int:
    global _said_interrupted
    _said_interrupted = False
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    show_bars = not (args.quiet or args.no_progress) and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
    progress = TqdmProgress(enabled=show_bars)
    handlers = {"run": _cmd_run, "train": _cmd_train, "eval": _cmd_eval, "bench": _cmd_bench, "batch": _cmd_batch,
                "report": _cmd_report}
    previous_unraisable_hook = sys.unraisablehook
    sys.unraisablehook = resending_unraisable_hook(_unraisable_to_log)
    try:
        # SIGTERM and SIGHUP end every command like Ctrl-C: children stopped, temporaries removed, one line
        with terminate_as_interrupt(), _logs_above_bars(show_bars):
            # before any model loads: one thread budget for torch and BLAS on this machine (importing torch takes
            # seconds, so a kill may land here: inside the block it ends in the same one line, once the import is
            # done - lifecycle never raises inside an import)
            configure_threads()
            return handlers[args.command](args, progress)
    except DramapicError as err:
        progress.close()
        _complain(_one_line(f"dramapic: error: {err}"))  # a file named with a newline must not split it
        return err.exit_code
    except Terminated as stop:
        progress.close()
        _complain(f"dramapic: terminated by {stop.signal_name}")
        return stop.exit_code
    except KeyboardInterrupt:
        progress.close()
        _complain("dramapic: interrupted")
        _said_interrupted = True
        return 130
    except MemoryError:
        progress.close()
        _complain("dramapic: error: out of memory")
        return 1
    except _StdoutClosed:
        progress.close()
        return 141  # as a shell reports a command ended by SIGPIPE
    finally:
        sys.unraisablehook = previous_unraisable_hook  # first: a second Ctrl-C may land in the close below
        progress.close()


if __name__ == "__main__":
    program()
