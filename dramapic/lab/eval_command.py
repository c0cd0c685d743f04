"""``dramapic eval``: the lab's front door. Which options go together, where the copies of the timelines go under
``--work``, and the order of the runs (dev mixes, the cross-corpus protocol, the song check, the refitted member
checks). The report's lines go to the ``say`` the command line hands in; like the rest of the library this module
raises typed errors and never prints."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError, OutputError
from ..progress import ProgressHook

#: where the report's lines go (the command line's standard output, left out with --quiet)
Say = Callable[..., None]


def evaluate_command(args: argparse.Namespace, pipeline, *, progress: ProgressHook, say: Say) -> int:
    """``dramapic eval``: the options checked against each other (a flag that would do nothing is refused, before
    the long run), then the dev mixes, the cross-corpus protocol or the song check; every line of the report goes
    to ``say``. Returns the exit code (0); raises :class:`InputError` / :class:`OutputError`."""
    from ..analysis.analyze import analyze
    from ..writers import write_json_atomic
    from .evaluate import evaluate_mixes
    from .variants import evaluate_variants

    if not args.cross_corpus:  # these shape the held-out fits; elsewhere they would be ignored without a word
        given = [flag for flag, on in (("--seeds", args.seeds != (0,)), ("--copies", args.copies is not None),
                                       ("--timelines", args.timelines is not None)) if on]
        if given:
            raise InputError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to --cross-corpus only")
    check_json_target(args.json)
    if args.song_check and args.cross_corpus:
        raise InputError("--song-check and --cross-corpus are two runs: ask for one at a time")
    if (args.song_check or args.cross_corpus) and args.variants:  # else ignored without a word
        mode = "--song-check" if args.song_check else "--cross-corpus"
        raise InputError(f"--variants applies to --mixes alone, not to {mode}")
    if args.song_check and args.mixes is not None:  # the song check's clips come from --data: --mixes was ignored
        raise InputError("--mixes does not apply to --song-check (its clips come from --data)")
    if args.refit_stage1 is not None and not (args.song_check or args.cross_corpus):
        raise InputError("--refit-stage1 applies to --song-check and --cross-corpus only")
    if args.refit_stage1 is not None and pipeline.stage1.model != "ensemble":  # before the long run, not after it
        raise InputError("--refit-stage1 needs stage1.model: ensemble (the hand rule is not trained)")
    if args.song_check:
        given = [flag for flag, on in (("--reference", args.reference != "as-built"),
                                       ("--scenes", args.scenes is not None), ("--rooms", args.rooms != "near")) if on]
        if given:
            raise InputError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to --mixes and "
                             "--cross-corpus, not to --song-check")
        stage2 = [flag for flag, on in (("--no-gender", args.no_gender), ("--no-speakers", args.no_speakers)) if on]
        if stage2:  # the song check runs stage 1 alone: they were accepted and changed nothing
            raise InputError(f"{', '.join(stage2)} {'does' if len(stage2) == 1 else 'do'} not apply to --song-check "
                             "(it scores stage 1 alone)")
        if args.work is not None and args.refit_stage1 is None:  # only the refits keep anything there
            raise InputError("--work applies to --song-check only with --refit-stage1 (its fits are kept there)")
        return _song_check(args, pipeline, progress, say)
    if args.cross_corpus:
        return _cross_corpus(args, pipeline, progress, say)
    if args.mixes is None:  # not "mixes folder not found: None"
        raise InputError("eval needs --mixes DIR, or --song-check / --cross-corpus with --data DIR")
    # on the mixes, --data is read by the speech reference alone, and --work keeps it, the scenes and the far
    # rooms: without them the run went on and the flag did nothing, without a word
    if args.data is not None and args.reference != "speech":
        raise InputError("--data applies to --mixes only with --reference speech (and to --song-check and "
                         "--cross-corpus)")
    copied = args.reference == "speech" or args.scenes is not None or args.rooms == "far"
    if args.work is not None and not copied:
        raise InputError("--work applies to --mixes only with --reference speech, --scenes or --rooms far (and to "
                         "--cross-corpus and --song-check --refit-stage1)")
    if not args.mixes.is_dir():
        raise InputError(f"mixes folder not found: {args.mixes}")
    if copied:  # their copies are kept under --work
        _check_work_target(eval_work(args))
        from .evaluate import MIXES_PATTERN, mix_files

        # the copies (of every mix, whatever --limit) are scored, not this folder: a folder without dev mixes was
        # copied and then refused in the name of the copy under --work, and a mix without its audio was found only
        # when its copy's turn came
        mix_files(args.mixes, pattern=MIXES_PATTERN)
    # the room first: it is the recording's, so the speech reference relabels the far copy (linking its audio) and
    # the scenes are cut from it, the tail of what came before a cut in the scene as in a scene cut from a film
    if args.rooms == "far":
        args.mixes = _far_rooms(args, args.mixes, progress)
    if args.reference == "speech":
        args.mixes = _speech_reference(args, args.mixes, progress)
    if args.scenes is not None:
        args.mixes = _scenes(args, args.mixes, progress)
    if args.variants:  # --no-gender: the stage-1 variants only
        report = evaluate_variants(args.mixes, pipeline, limit=args.limit, gender=pipeline.stage2.gender,
                                   progress=progress)
    else:
        report = evaluate_mixes(args.mixes, analyze_fn=lambda p: analyze(p, pipeline), progress=progress,
                                limit=args.limit)
    _say_reference(args, say)
    say(report.format_table())
    if args.json:
        write_json_atomic({**report.to_dict(), "reference": args.reference, "scenes": args.scenes,
                           "rooms": args.rooms}, args.json)
    return 0


def check_json_target(path: Path | None) -> None:
    """``--json``: refused before the (long) evaluation or benchmark when it cannot be written - a folder, or a
    path under a file or under a folder this user cannot write - not after it."""
    if path is None:
        return
    if path.is_dir():
        raise OutputError(f"--json {path} is a folder, not a file")
    # a report replaces an earlier report, not any file a slip of the keyboard names: "--json M/devmix_01.opus"
    # turned a dev mix, "bench --input ep.mkv --json ep.mkv" the video, into JSON
    if os.path.isfile(path) and not _holds_json(path):
        raise OutputError(f"--json {path} is an existing file that is not JSON; not replaced (name a new file, or "
                          f"remove it first)")
    _check_writable_below(path.absolute().parent, f"cannot write --json {path}")


def _holds_json(path: Path) -> bool:
    """Whether ``path`` is a JSON document (an earlier report), judged by its first non-blank byte, or empty; an
    unreadable file counts as one (writing it will say what is wrong)."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(4096).lstrip()
    except OSError:
        return True
    return not head or head[:1] in (b"{", b"[")


def _check_work_target(work: Path) -> None:
    """``--work``: refused before the (long) run whose fits it keeps when it cannot be a folder this user writes."""
    # os.path's checks: Path's raise PermissionError under a folder this user cannot search (a traceback)
    if os.path.exists(work) and not os.path.isdir(work):
        raise OutputError(f"--work {work} is a file, not a folder")
    _check_writable_below(work.absolute(), f"cannot use --work {work}")


def _check_writable_below(folder: Path, what: str) -> None:
    """``folder``, or the nearest of its parents that exists, is a folder this user can write in."""
    while not os.path.exists(folder) and folder != folder.parent:
        folder = folder.parent
    if not os.path.isdir(folder):
        raise OutputError(f"{what}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{what}: {folder} is not writable")


def _say_reference(args: argparse.Namespace, say: Say) -> None:
    """Say which audio and ground truth the figures below are scored on when they are not the timelines' own."""
    if args.rooms == "far":
        from .far_rooms import BITRATE, HISS_DBFS, RT60_S, TAIL_DB

        say(f"Rooms: far - every timeline as one distant microphone hears it: a room of its own, RT60 "
            f"{RT60_S[0]:g}-{RT60_S[1]:g} s, the room {TAIL_DB[0]:g} to {TAIL_DB[1]:g} dB louder than the "
            f"voice, a {HISS_DBFS:g} dBFS hiss, encoded again at {BITRATE.removesuffix('k')} kbit/s by this "
            "run's ffmpeg; labels as built (dramapic/lab/far_rooms.py). Not comparable with near-room figures")
    if args.scenes is not None:
        from .scenes import POSITIONS

        say(f"Scenes: excerpts of {', '.join(f'{s:g}' for s in args.scenes)} s from every timeline, "
            f"starting {' and '.join(f'{p:.0%}' for p in POSITIONS)} of the way in (dramapic/lab/scenes.py)")
    if args.reference == "speech":
        say("Reference: speech - voice only where each utterance's clean clip holds speech (silero-vad); "
            "the recipe's clip edges and long pauses count as what lies under them "
            "(dramapic/lab/speech_reference.py)")


def _cross_corpus(args: argparse.Namespace, pipeline, progress: ProgressHook, say: Say) -> int:
    from ..analysis.loaders import uses_stage2
    from ..writers import write_json_atomic
    from .crosscorpus import (
        DEV_MIXES,
        format_over_seeds,
        format_table,
        run_voice_protocol,
        summarize,
        summarize_over_seeds,
        timeline_folders,
    )
    from .evaluate import _nan_to_none, aggregate
    from .stage1_crosscorpus import stage1_member_check
    from .voice_windows import SHIPPED_COPIES

    shaping = [flag for flag, on in (("--seeds", args.seeds != (0,)), ("--copies", args.copies is not None)) if on]
    if shaping and not uses_stage2(pipeline):
        # they shape the held-out gender and speaker fits and their window table; with stage 2 off (--no-gender
        # --no-speakers, or the pipeline's) there are none: --copies did nothing and each seed ran the same
        raise InputError(f"{', '.join(shaping)} {'does' if len(shaping) == 1 else 'do'} not apply to --cross-corpus "
                         "without gender and speakers (stage 1 alone is scored: no model is fitted)")
    if args.data is None:
        raise InputError("--cross-corpus needs --data, the shared data folder with manifest.csv")
    if not (args.data / "manifest.csv").is_file():
        raise InputError(f"no manifest.csv in {args.data}: --data must be the shared data folder")
    if args.mixes is not None:
        # the regression check's folder is globbed for timelines with the tree: a wrong one gave no dev-mix row at
        # all, without a word (and a missing one only once the timelines were built)
        if not args.mixes.is_dir():
            raise InputError(f"mixes folder not found: {args.mixes}")
        if not any(args.mixes.glob("*.labels.csv")):
            raise InputError(f"no *.labels.csv files in {args.mixes}: --mixes must be the folder of dev mixes")
    work = eval_work(args)
    _check_work_target(work)  # one line naming --work, not the first writer's "[Errno 20] Not a directory: ..."
    timelines = args.timelines
    if timelines is None:
        from .timelines import build_timelines

        timelines = work / "timelines"
        build_timelines(data=args.data, out=timelines, progress=progress)
    from .. import media
    from .timelines import recorded_encoders

    copied = args.rooms == "far" or args.reference == "speech" or args.scenes is not None
    if copied and not timeline_folders(timelines):
        from .crosscorpus import find_timelines

        # said of the tree itself, before it is copied: a --timelines that is no tree (a flat folder of timelines,
        # or one missing) was refused in the name of its copy under --work ("timelines folder not found: W/...")
        find_timelines(timelines)
    # of the tree itself: the speech reference links its audio, the scene excerpts are cut from it (the far
    # rooms encode it again, by this run's ffmpeg: the line before the table says so). After the check above, so
    # that a missing tree is said as such, not as whatever asking ffmpeg for its version runs into
    encoders, run_encoder = recorded_encoders(timelines), media.opus_encoder()
    if args.rooms == "far":  # first: the room is the recording's (as for the mixes, in _cmd_eval)
        timelines = _far_rooms(args, timelines, progress, tree=True)
        if args.mixes is not None:
            args.mixes = _far_rooms(args, args.mixes, progress)
    if args.reference == "speech":
        timelines = _speech_reference(args, timelines, progress, tree=True)
        if args.mixes is not None:
            args.mixes = _speech_reference(args, args.mixes, progress)
    if args.scenes is not None:
        timelines = _scenes(args, timelines, progress, tree=True)
        if args.mixes is not None:
            args.mixes = _scenes(args, args.mixes, progress)
    if args.refit_stage1:  # a wrong folder name is refused now, not after the stage-2 protocol
        from .crosscorpus import find_timelines
        from .stage1_refits import restrict_groups

        # a --timelines that is no tree (missing, or a flat folder of timelines) is said as such first: it was
        # "--refit-stage1: no timeline folder cv (known: )"
        find_timelines(timelines)
        restrict_groups(timeline_folders(timelines), args.refit_stage1, what="timeline folder")
    if args.refit_stage1 is not None:  # the refits' training clips, before the stage-2 protocol that runs first
        from .stage1_refits import check_refit_material

        check_refit_material(args.data)
    copies = SHIPPED_COPIES if args.copies is None else args.copies
    runs = []
    if encoders:  # else no tree: find_timelines says so
        say(_encoder_line(encoders, run_encoder))
    _say_reference(args, say)
    for seed in args.seeds:
        rows = run_voice_protocol(data=args.data, timelines=timelines, pipeline=pipeline, work=work,
                                  dev_mixes=args.mixes, limit=args.limit, seed=seed, copies=copies,
                                  progress=progress)
        summary = summarize(rows)
        held = aggregate([scores for t, _, scores in rows if t.folder != DEV_MIXES]).gender_calibration
        if len(args.seeds) > 1:
            say(f"\nSeed {seed}:")
        say(format_table(summary))
        say("\nGender probability shown on voice cues against how often it was right, held-out timelines "
            "pooled (seconds of decided voice):")
        say(held.format_table())
        runs.append({"seed": seed, "summary": summary, "gender_calibration": held.to_dict(), "files": [
            {"name": t.name, "folder": t.folder, "excluded": sorted(excluded), **scores.to_dict()}
            for t, excluded, scores in rows]})
    over_seeds = summarize_over_seeds({run["seed"]: run["summary"] for run in runs})
    if len(runs) > 1:
        say(f"\nOver the {len(runs)} seeds, mean (lowest-highest): compare settings on these, not on one seed")
        say(format_over_seeds(over_seeds))
    members = None
    folders = sorted({f["folder"] for f in runs[0]["files"]} - {DEV_MIXES})
    if args.refit_stage1 is not None:
        from .stage1_refits import refit_voice_member_check

        report = refit_voice_member_check(timelines=timelines, pipeline=pipeline, data=args.data, work=work,
                                          folders=folders, only=args.refit_stage1 or None, limit=args.limit,
                                          progress=progress)
        say("\nStage 1 on the same timelines, refitted without the voices of each folder it heard, accuracy "
            "(the ensemble against each member alone):")
        say(report.format_table())
        members = report.to_dict()
    elif pipeline.stage1.model == "ensemble":  # the hand rule has no members to check
        report = stage1_member_check(timelines=timelines, pipeline=pipeline, limit=args.limit, progress=progress,
                                     folders=folders)
        say("\nStage 1 on the same timelines, accuracy (the ensemble against each member alone):")
        say(report.format_table())
        members = report.to_dict()
    if args.json:
        # the first seed's figures at the top level (the one-seed layout), every seed under "runs"
        write_json_atomic(_nan_to_none({"seed": runs[0]["seed"], "summary": runs[0]["summary"],
                                        "gender_calibration": runs[0]["gender_calibration"],
                                        "stage1_members": members, "files": runs[0]["files"],
                                        "seeds": list(args.seeds), "copies": copies, "reference": args.reference,
                                        "scenes": args.scenes, "rooms": args.rooms, "over_seeds": over_seeds,
                                        "encoders": encoders, "run_encoder": run_encoder, "runs": runs}),
                          args.json)
    return 0


def _encoder_line(encoders: dict[str, str | None], run_encoder: str) -> str:
    """The ffmpeg that encoded the timelines (``{folder: encoder or None}``), per folder where they differ, and
    whether it is ``run_encoder``: Opus bytes differ between builds, and figures with them (by tenths of a point)."""
    folders: dict[str | None, list[str]] = {}
    for folder, encoder in encoders.items():
        folders.setdefault(encoder, []).append(folder)
    if len(folders) == 1:
        (encoder,) = folders
        said = f"Timelines encoded by {encoder}" if encoder else "Timelines: encoder not recorded"
    else:
        said = "Timelines encoded by " + ", ".join(f"{e or 'encoder not recorded'} ({', '.join(fs)})"
                                                   for e, fs in folders.items())
    caveat = ("figures may differ by a few tenths of a point from figures on timelines another ffmpeg encoded "
              "(the Opus bytes differ between builds)")
    if set(folders) == {run_encoder}:
        return f"{said}, the ffmpeg this run uses"
    if set(folders) == {None}:
        return f"{said}; this run uses {run_encoder}, which may not be the one that encoded them: {caveat}"
    if len(folders) == 1:
        return f"{said}, not by this run's {run_encoder}: {caveat}"
    return f"{said}; not all by this run's {run_encoder}: {caveat}"


def eval_work(args: argparse.Namespace) -> Path:
    """``--work``, or the per-user cache folder of the evaluations."""
    return args.work or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dramapic" / "cross-corpus"


def _copy_place(args: argparse.Namespace, folder: Path, kind: str, tag: str = "") -> tuple[Path, Path]:
    """(the resolved ``folder``, where its ``kind`` copy goes under ``--work``): one place per source folder."""
    import hashlib

    if not Path(folder).is_dir():
        raise InputError(f"timelines folder not found: {folder}")
    where = Path(folder).resolve()
    return where, eval_work(args) / kind / f"{where.name}{tag}-{hashlib.sha1(str(where).encode()).hexdigest()[:10]}"


def _speech_reference(args: argparse.Namespace, folder: Path, progress: ProgressHook, *, tree: bool = False) -> Path:
    """The speech-trimmed copy of a folder of timelines (or of a timeline tree) under ``--work``, built once."""
    from .speech_reference import speech_reference, speech_reference_tree

    if args.data is None:
        raise InputError("--reference speech needs --data, the shared data folder the timelines' clips come from")
    where, out = _copy_place(args, folder, "speech-reference")
    if tree:
        return speech_reference_tree(where, data=args.data, out=out, progress=progress)
    return speech_reference(where, data=args.data, out=out, progress=progress)


def _far_rooms(args: argparse.Namespace, folder: Path, progress: ProgressHook, *, tree: bool = False) -> Path:
    """The far-room copy of a folder of timelines (or of a timeline tree) under ``--work``, built once."""
    from .far_rooms import far_room_copy, far_room_tree

    where, out = _copy_place(args, folder, "far-rooms")
    if tree:
        return far_room_tree(where, out=out, progress=progress)
    return far_room_copy(where, out=out, progress=progress)


def _scenes(args: argparse.Namespace, folder: Path, progress: ProgressHook, *, tree: bool = False) -> Path:
    """The scene copy of a folder of timelines (or of a timeline tree) under ``--work``, built once."""
    from .scenes import scene_excerpts, scene_excerpts_tree

    where, out = _copy_place(args, folder, "scenes", "-" + "-".join(f"{s:g}" for s in args.scenes))
    if tree:
        return scene_excerpts_tree(where, out=out, lengths=args.scenes, progress=progress)
    made = scene_excerpts(where, out=out, lengths=args.scenes, progress=progress)
    if not any(made.glob("*.labels.csv")):  # every timeline shorter than every length: nothing to score
        raise InputError(f"no timeline in {folder} is {min(args.scenes):g} s long or longer: no scene of "
                         f"{', '.join(f'{s:g}' for s in args.scenes)} s to cut (--scenes)")
    return made


def _song_check(args: argparse.Namespace, pipeline, progress: ProgressHook, say: Say) -> int:
    from ..writers import write_json_atomic
    from .songcheck import run_song_check, songcheck_clips, trained_music_sources

    if args.data is None:
        raise InputError("--song-check needs --data (the shared data folder with the manifests)")
    if args.refit_stage1 is not None:  # the refits are the first to write under --work, after the song check
        _check_work_target(eval_work(args))
    every_clip = songcheck_clips(data_root=args.data)
    clips = every_clip[:args.limit] if args.limit is not None else every_clip
    record = None
    if pipeline.stage1.model == "ensemble":  # a fit that left a music source out has it as unheard
        from ..models import load_manifest

        record = load_manifest().get(pipeline.stage1.stacker).info.get("training_data")
    refit = args.refit_stage1 is not None
    if refit:  # a wrong source name, or a clip the refits score missing, is refused now, not after the song check
        from .stage1_refits import refit_song_clips

        # every source of the check, as the refits see them: --limit keeps the first clips of each source there,
        # so a source without a clip among the song check's first --limit ones is still one to name
        refit_song_clips(every_clip, only=args.refit_stage1 or None, limit=args.limit)
        from .stage1_refits import check_refit_material

        check_refit_material(args.data)  # and the refits' training clips
    report = run_song_check(clips=clips, pipeline=pipeline, progress=progress,
                            member_check=pipeline.stage1.model == "ensemble" and not refit,
                            seen_sources=trained_music_sources(data_root=args.data, training_data=record))
    say(report.format_table())
    out = report.to_dict()
    if refit:  # the member check once more, each source scored by a stage 1 that never heard it
        from .stage1_refits import refit_song_member_check

        members = refit_song_member_check(data=args.data, work=eval_work(args), pipeline=pipeline,
                                          only=args.refit_stage1 or None, limit=args.limit, progress=progress)
        say("\nPer music source, share of song time called song, stage 1 refitted without each source it "
            "heard (the ensemble against each member alone):")
        say(members.format_table())
        out["members"] = members.to_dict()
    if args.json:
        write_json_atomic(out, args.json)
    return 0
