import json
import signal
import subprocess
import sys

import pytest

from dramapic.cli import build_parser
from helpers import REPO, SAMPLE, make_result


def test_parser_defaults():
    args = build_parser().parse_args(["run", "movie.mp4"])
    assert (args.format, args.soft_subs, args.no_video, args.overwrite, args.audio_track) == ("srt", False, False,
                                                                                               False, None)


def test_soft_subs_and_no_video_are_exclusive():
    done = subprocess.run([sys.executable, "-m", "dramapic", "run", str(SAMPLE), "--soft-subs", "--no-video"],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "not allowed with" in done.stderr


def test_run_prints_where_outputs_are_and_quiet_prints_nothing(tmp_path):
    tmp_path = tmp_path / "new" / "out"  # created on demand
    done = subprocess.run([sys.executable, "-m", "dramapic", "run", str(SAMPLE), "-o", str(tmp_path),
                           "--no-video"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert str(tmp_path / "drama_sample.srt") in done.stdout
    assert done.stderr == ""  # not a TTY: no progress bars
    again = subprocess.run([sys.executable, "-m", "dramapic", "run", str(SAMPLE), "-o", str(tmp_path),
                            "--no-video", "--overwrite", "--quiet"], capture_output=True, text=True, cwd=REPO)
    assert again.returncode == 0 and again.stdout == "" and again.stderr == ""


def test_lab_commands_end_in_one_line_and_a_non_zero_exit(tmp_path):
    empty = tmp_path / "mixes"
    empty.mkdir()
    for argv, message in ((["eval", "--mixes", str(empty)], "no devmix_*.labels.csv files"),
                          (["train", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "models")],
                           "data manifest not found"),
                          (["eval", "--cross-corpus", "--data", str(tmp_path), "--work", str(tmp_path / "work")],
                           f"no manifest.csv in {tmp_path}: --data must be the shared data folder")):
        done = subprocess.run([sys.executable, "-m", "dramapic", *argv], capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 2, done.stderr  # InputError
        assert done.stderr.startswith("dramapic: error: ") and message in done.stderr
        assert done.stderr.count("\n") == 1, done.stderr  # one line, no traceback
    assert not (tmp_path / "models").exists()


def test_one_cli_for_every_command():
    parser = build_parser()
    args = parser.parse_args(["run", "movie.mp4", "--no-gender", "--no-speakers"])
    assert args.no_gender and args.no_speakers
    args = parser.parse_args(["train", "--data", "m.csv", "--only", "gender-stacking", "--seconds-per-fold", "60",
                              "--no-augment", "--copies", "2"])
    assert (args.only, args.seconds_per_fold, args.no_augment, args.copies) == ("gender-stacking", 60.0, True, 2)
    args = parser.parse_args(["eval", "--mixes", "d", "--variants", "--no-gender"])
    assert args.variants and args.no_gender
    args = parser.parse_args(["eval", "--cross-corpus", "--data", "d", "--timelines", "t", "--work", "w"])
    assert args.cross_corpus and (str(args.data), str(args.timelines), str(args.work)) == ("d", "t", "w")
    assert args.seeds == (0,) and parser.parse_args(["eval", "--cross-corpus", "--data", "d", "--seeds", "3"]).seeds == (3,)
    assert parser.parse_args(["eval", "--cross-corpus", "--data", "d", "--seeds", "0,1,2"]).seeds == (0, 1, 2)
    for bad in ("x", "1,1", "-1", "1,"):
        with pytest.raises(SystemExit):
            parser.parse_args(["eval", "--cross-corpus", "--data", "d", "--seeds", bad])
    assert args.copies is None and parser.parse_args(["eval", "--cross-corpus", "--data", "d", "--copies", "2"]).copies == 2
    for bad in ("0", "two", "-1"):
        with pytest.raises(SystemExit):
            parser.parse_args(["eval", "--cross-corpus", "--data", "d", "--copies", bad])
    assert parser.parse_args(["train", "--data", "m.csv", "--copies", "0"]).copies == 0   # clean windows only
    for bad in ("-1", "two"):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", "--data", "m.csv", "--copies", bad])
    assert str(parser.parse_args(["train", "--data", "m.csv", "--cache", "c"]).cache) == "c"
    args = parser.parse_args(["bench", "--minutes", "3", "--analysis-only", "--json", "b.json"])
    assert (args.minutes, args.analysis_only, args.speakers) == (3.0, True, False)
    assert parser.parse_args(["bench", "--speakers", "--hours", "1"]).hours == 1.0
    assert parser.parse_args(["batch", "a", "-o", "o", "--no-speakers"]).no_speakers


def test_switches_and_x264_settings_reach_the_pipeline_by_one_route():
    from dramapic.cli import _pipeline

    pipeline = _pipeline(build_parser().parse_args(["run", "m.mp4", "--no-gender", "--preset", "fast", "--crf", "23"]))
    assert (pipeline.stage2.gender, pipeline.speakers.enabled) == (False, True)
    assert (pipeline.render.preset, pipeline.render.crf) == ("fast", 23)


@pytest.mark.parametrize("argv, says", [
    (["run", "movie.mp4", "--language", "xx"], "argument --language: invalid choice: 'xx'"),
    (["run"], "the following arguments are required: input"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_a_usage_mistake_is_one_line_and_exit_2(capsys, argv, says):
    from dramapic.cli import main

    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and err[0].startswith("dramapic") and "--help" in err[0], err


@pytest.mark.parametrize("command", [["run", "movie.mp4"], ["report", "out"], ["batch", "archive", "-o", "out"]])
def test_quiet_and_verbose_together_are_a_usage_error(command, capsys):
    """``-q -v`` ran with --quiet alone: the --verbose asked for was silenced without a word."""
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args([*command, "-q", "-v"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "-v/--verbose: not allowed with argument -q/--quiet" in err[0], err


@pytest.mark.parametrize("argv, command, says", [
    (["run", "movie.mp4", "--frmat", "vtt"], "dramapic run", "unrecognized arguments: --frmat vtt"),
    (["report", "out", "--titel", "T"], "dramapic report", "unrecognized arguments: --titel T"),
])
def test_a_misspelt_option_points_to_the_help_of_its_command(capsys, argv, command, says):
    """``dramapic run x.mp4 --frmat vtt`` said "see dramapic --help", whose help lists the commands, not the
    option meant."""
    from dramapic.cli import main

    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    assert err[0].startswith(f"{command}: error: ") and err[0].endswith(f"(see {command} --help)"), err


@pytest.mark.parametrize("argv, option", [
    (["run", ""], "input"),
    (["run", "movie.mp4", "-o", ""], "-o/--output-dir"),
    (["run", "movie.mp4", "--pipeline", ""], "--pipeline"),
    (["batch", "archive", "-o", ""], "-o/--output-dir"),
    (["report", "out", "-o", ""], "-o/--output"),
])
def test_an_empty_path_is_a_usage_mistake(capsys, argv, option):
    """An empty argument (``-o "$OUT"`` with OUT unset) was the current folder: ``run x.mp4 -o ""`` wrote into it
    instead of beside the input, as without -o, and ``run ""`` said ". is a directory, not a media file"."""
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"argument {option}: an empty path" in err[0], err


@pytest.mark.parametrize("argv", [["run", "-dash.mp4"], ["run", "-o", "out", "-dash.mp4"]])
def test_a_file_whose_name_starts_with_a_dash_is_shown_how_to_write_it(capsys, monkeypatch, tmp_path, argv):
    """``dramapic run -dash.mp4`` said "the following arguments are required: input", with the input right there:
    argparse takes the name for an option. The line now says how to write it (as README does)."""
    from dramapic.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "-dash.mp4").write_bytes(b"media")
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "-dash.mp4 is taken for an option: write ./-dash.mp4, or put it last after --" in err[0]
    (tmp_path / "-dash.mp4").unlink()  # no such file: nothing to say about it
    with pytest.raises(SystemExit):
        main(argv)
    assert "taken for an option" not in capsys.readouterr().err


def test_a_second_ctrl_c_while_the_first_is_being_said_still_ends_in_one_line_and_130(monkeypatch, capsys, tmp_path):
    # impatient hands press Ctrl-C twice: the second landed in main's own handler, which ended in Python's
    # traceback and lost the exit code
    from dramapic import cli

    def interrupted(args, progress):
        raise KeyboardInterrupt

    said = []

    def complain_once_interrupted(line):
        if not said:
            said.append("cut short")
            raise KeyboardInterrupt  # the second press, before the first line got out
        said.append(line)

    monkeypatch.setattr(cli, "_cmd_report", interrupted)
    monkeypatch.setattr(cli, "_complain", complain_once_interrupted)
    assert cli.main(["report", str(tmp_path)]) == 130
    assert said == ["cut short", "dramapic: interrupted"]

    # the first line out, the second press after it (in the clean-up that follows): said once
    said.clear()
    monkeypatch.setattr(cli, "_complain", lambda line: said.append(line))
    closes = []

    def close_then_interrupted(self):
        closes.append(1)
        if len(closes) == 2:  # the handler's close, then the finally's: the second press lands there
            raise KeyboardInterrupt

    monkeypatch.setattr(cli.TqdmProgress, "close", close_then_interrupted)
    assert cli.main(["report", str(tmp_path)]) == 130
    assert said == ["dramapic: interrupted"] and len(closes) == 2


_CTRL_C_AFTER_MAIN = {
    # torch's library finalisers run at exit: the press landed in one
    "atexit": "atexit.register(press)",
    # a thread the interpreter waits for at exit (a timer, a reader of ffmpeg's stderr)
    "thread": "threading.Thread(target=press).start()",
}


_AFTER_MAIN_LINE = {
    signal.SIGINT: "dramapic: interrupted after the command had ended",
    signal.SIGTERM: "dramapic: terminated by SIGTERM after the command had ended",
    signal.SIGHUP: "dramapic: terminated by SIGHUP after the command had ended",
}


def _signal_after_main(signum: int, *, where: str, code: int) -> subprocess.CompletedProcess:
    """A child whose ``main`` returned ``code`` and which then gets ``signum`` in ``where`` (its shutdown)."""
    child = ("import atexit, os, signal, threading, time\n"
             "from dramapic import cli\n"
             f"cli.main = lambda argv=None: {code}\n"
             "def press():\n"
             "    time.sleep(0.2)\n"
             f"    os.kill(os.getpid(), {int(signum)})\n"
             "    time.sleep(1.0)\n"
             f"{_CTRL_C_AFTER_MAIN[where]}\n"
             "cli.program()\n")
    # the default handlers in the child, whatever this test process inherited (a background job ignores SIGINT)
    return subprocess.run([sys.executable, "-c", child], check=False, capture_output=True, text=True, timeout=60,
                          cwd=REPO, preexec_fn=lambda: [signal.signal(s, signal.SIG_DFL) for s in _AFTER_MAIN_LINE])


@pytest.mark.parametrize("where", sorted(_CTRL_C_AFTER_MAIN))
@pytest.mark.parametrize("signum", sorted(_AFTER_MAIN_LINE))
def test_a_signal_after_the_run_has_ended_is_one_line_and_that_signal(where, signum):
    # `dramapic run` done, the interpreter shutting down, Ctrl-C pressed (twice, or just as it ends): Python printed
    # "Exception ignored in ..." and a KeyboardInterrupt traceback under the run's one line. A SIGTERM there (a
    # supervisor stopping the job as it finished) ended it without a word: rc 143, and no sign the outputs were whole
    done = _signal_after_main(signum, where=where, code=0)
    assert done.stderr == _AFTER_MAIN_LINE[signum] + "; its outputs are complete\n"
    assert done.returncode == -signum  # ended by the signal itself: the shell reports 128 + its number


def test_a_signal_after_a_failed_command_does_not_call_its_outputs_complete():
    done = _signal_after_main(signal.SIGTERM, where="atexit", code=2)
    assert done.stderr == _AFTER_MAIN_LINE[signal.SIGTERM] + "\n"
    assert done.returncode == -signal.SIGTERM


def test_a_second_ctrl_c_after_an_interrupted_command_adds_no_line():
    # the first press ended the command with its own line ("dramapic: interrupted", which main printed): the second,
    # landing in the shutdown, only ends the process
    done = _signal_after_main(signal.SIGINT, where="atexit", code=130)
    assert (done.returncode, done.stderr) == (-signal.SIGINT, "")


def test_a_signal_ignored_from_the_start_stays_ignored_after_the_run():
    # `nohup dramapic batch ...`: the closed terminal's SIGHUP must not end it, not even in its shutdown
    child = ("import os, signal, atexit\n"
             "from dramapic import cli\n"
             "cli.main = lambda argv=None: 0\n"
             "atexit.register(lambda: os.kill(os.getpid(), signal.SIGHUP))\n"
             "cli.program()\n")
    done = subprocess.run([sys.executable, "-c", child], check=False, capture_output=True, text=True, timeout=60,
                          cwd=REPO, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    assert (done.returncode, done.stderr) == (0, "")


def test_the_installed_command_and_python_m_use_the_program_entry():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["dramapic"] == "dramapic.cli:program"
    assert "program()" in (REPO / "dramapic" / "__main__.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("argv, code", [
    (["run", "{long}.mp4"], 2),
    (["run", "{long}/ep1.mp4"], 2),
    (["batch", "{long}", "-o", "out"], 2),
    (["report", "{long}"], 2),
    (["report", "{long}.dramapic.json"], 2),
    (["report", "{json}", "-o", "{long}"], 6),
    (["report", "{json}", "-o", "{long}/r.html"], 6),
])
def test_a_path_with_a_name_too_long_for_any_file_system_is_one_line(tmp_path, monkeypatch, capsys, argv, code):
    """A path part over 255 bytes: every lookup of it fails with ENAMETOOLONG, which was a traceback."""
    from dramapic.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.dramapic.json").write_text(json.dumps(make_result().to_dict()), encoding="utf-8")
    argv = [a.format(long="n" * 260, json="run.dramapic.json") for a in argv]
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dramapic: error: ") and "too long" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.dramapic.json"]
