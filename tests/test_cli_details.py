"""Small things a user sees on the command line (issue 12): names as people write them, one bar per stage, the
option named as typed, a file where a folder belongs, and what --extensions does."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pytest

from dramapic import cli
from dramapic.errors import ConfigError, OutputError
from dramapic.lab import eval_command
from helpers import SAMPLE, make_result


def test_genre_is_printed_as_words_not_as_an_identifier(monkeypatch, capsys, tmp_path):
    result = make_result()
    genre = replace(result.summary.genre, label="music_show")
    result = replace(result, summary=replace(result.summary, genre=genre))

    import dramapic.run as run_module

    monkeypatch.setattr(run_module, "run", lambda *a, **k: run_module.RunOutputs(result=result, files={}))
    args = cli.build_parser().parse_args(["run", str(SAMPLE), "-o", str(tmp_path), "--no-video"])
    assert cli._cmd_run(args, cli.TqdmProgress(enabled=False)) == 0
    out = capsys.readouterr().out
    assert "music show (" in out and "music_show" not in out



def test_the_summary_line_prints_the_figures_the_json_keeps(monkeypatch, capsys, tmp_path):
    # the line rounded the unrounded shares: 0.12504 read "voice 13%" where the JSON (0.125), the card and the reports
    # read 12%; the genre's 0.67496 "(0.67)" where they read 0.675 -> "(0.68)". The shares add up to 100: the JSON's
    # 12.5 and 77.5 tie, and the larger takes the missing point (the unrounded 12.504 would take it from 77.496)
    result = make_result()
    shares = {"voice": 0.12504, "song": 0.77496, "noise": 0.05, "silence": 0.05}
    summary = replace(result.summary, shares=shares, genre=replace(result.summary.genre, confidence=0.67496))
    result = replace(result, summary=summary)

    import dramapic.run as run_module

    monkeypatch.setattr(run_module, "run", lambda *a, **k: run_module.RunOutputs(result=result, files={}))
    args = cli.build_parser().parse_args(["run", str(SAMPLE), "-o", str(tmp_path), "--no-video"])
    assert cli._cmd_run(args, cli.TqdmProgress(enabled=False)) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert "voice 12%, song 78%, noise 5%, silence 5%" in line and "(0.68)" in line, line

def test_the_speaking_line_prints_the_gender_shares_the_json_keeps(monkeypatch, capsys, tmp_path):
    # the "(13%)" came from the unrounded seconds: 12.504 s of 100 s of known voice, where the JSON's gender_shares
    # (0.125), the card and the reports read 12%
    from dramapic.analysis.composition import summarize
    from dramapic.result import Segment

    segments = [Segment(0.0, 12.504, "voice", 0.9, {"voice": 0.9, "female": 0.95, "male": 0.05}, "female", "S1"),
                Segment(12.504, 100.0, "voice", 0.9, {"voice": 0.9, "female": 0.05, "male": 0.95}, "male", "S2")]
    result = make_result(segments)
    result = replace(result, summary=summarize(segments, 100.0, result.summary.speakers))
    assert result.to_dict()["summary"]["gender_shares"] == {"female": 0.125, "male": 0.875}

    import dramapic.run as run_module

    monkeypatch.setattr(run_module, "run", lambda *a, **k: run_module.RunOutputs(result=result, files={}))
    args = cli.build_parser().parse_args(["run", str(SAMPLE), "-o", str(tmp_path), "--no-video"])
    assert cli._cmd_run(args, cli.TqdmProgress(enabled=False)) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  speaking")]
    assert line == "  speaking female 12.5 s (12%), male 1 min 27 s (88%)", line


def test_the_summary_and_speaking_lines_add_up_to_100(monkeypatch, capsys, tmp_path):
    # each share was rounded on its own: thirds read "voice 33%, song 33%, noise 33%, silence 0%" (99 %), and
    # female 0.425 / male 0.575 "(42%)" and "(57%)" (99 %: 100 * 0.575 is 57.49999999999999)
    from dramapic.result import Segment

    segments = [Segment(0.0, 4.25, "voice", 0.9, {"voice": 0.9, "female": 0.95, "male": 0.05}, "female", "S1"),
                Segment(4.25, 10.0, "voice", 0.9, {"voice": 0.9, "female": 0.05, "male": 0.95}, "male", "S2")]
    result = make_result(segments)
    summary = replace(result.summary, shares={"voice": 0.3333, "song": 0.3333, "noise": 0.3334, "silence": 0.0},
                      gender_shares={"female": 0.425, "male": 0.575})
    result = replace(result, summary=summary)

    import dramapic.run as run_module

    monkeypatch.setattr(run_module, "run", lambda *a, **k: run_module.RunOutputs(result=result, files={}))
    args = cli.build_parser().parse_args(["run", str(SAMPLE), "-o", str(tmp_path), "--no-video"])
    assert cli._cmd_run(args, cli.TqdmProgress(enabled=False)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(", voice 33%, song 33%, noise 34%, silence 0%"), lines[0]
    (speaking,) = [ln for ln in lines if ln.startswith("  speaking")]
    assert speaking == "  speaking female 4.2 s (42%), male 5.8 s (58%)", speaking


def test_a_stage_that_already_ran_full_is_not_drawn_again(monkeypatch):
    made = []

    class FakeBar:
        def __init__(self, **kwargs):
            made.append(self)
            self.total, self.n = kwargs["total"], 0

        def refresh(self):
            pass

        def close(self):
            pass

    import tqdm

    monkeypatch.setattr(tqdm, "tqdm", FakeBar)
    progress = cli.TqdmProgress(enabled=True)
    for done in (0.0, 20.0, 43.3):  # ffmpeg's own progress reaches the end ...
        progress("burn", done, 43.3)
    progress("burn", 43.3, 43.3)  # ... then the closing report of the same stage
    assert len(made) == 1
    progress("burn", 0.0, 10.0)  # a new burn (the next file of a batch) gets its bar
    assert len(made) == 2


def test_a_log_line_while_a_bar_is_drawn_gets_a_line_of_its_own(monkeypatch):
    """A warning logged while a progress bar was on the terminal (ffmpeg's decoding errors or a DC offset, found
    while the detectors' bar runs) was written on the bar's own line, after its text: "detectors 40%|███ | 2/5
    step [...]WARNING dramapic.media: ...", and the bar's stub stayed on the screen above the next one."""
    import io
    import logging
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("TERM", "xterm")
    # pytest's own handlers on the root logger would make the CLI's logging.basicConfig a no-op
    monkeypatch.setattr(logging.root, "handlers", [])
    monkeypatch.setattr(logging.root, "level", logging.root.level)

    def command(args, progress):
        progress("detectors", 2.0, 5.0)
        logging.getLogger("dramapic.media").warning("movie.mp4: its audio has a DC offset")
        progress("detectors", 5.0, 5.0)
        return 0

    monkeypatch.setattr(cli, "_cmd_run", command)
    assert cli.main(["run", "movie.mp4"]) == 0
    (line,) = [ln for ln in terminal.getvalue().split("\n") if "DC offset" in ln]
    assert line.split("\r")[-1] == "WARNING dramapic.media: movie.mp4: its audio has a DC offset", repr(line)
    assert logging.root.handlers and all(type(h) is logging.StreamHandler for h in logging.root.handlers)


@pytest.mark.parametrize("option, value", [("crf", 99), ("preset", "warp-speed")])
def test_a_bad_x264_setting_names_the_option_as_typed(option, value):
    args = argparse.Namespace(pipeline=None, no_gender=False, no_speakers=False, preset=None, crf=None)
    setattr(args, option, value)
    with pytest.raises(ConfigError) as caught:
        cli._pipeline(args)
    assert f"--{option}" in str(caught.value) and "render." not in str(caught.value)


def test_an_output_folder_that_is_a_file_says_so(tmp_path):
    from dramapic.run import RunOptions, run

    target = tmp_path / "out"
    target.write_text("not a folder")
    with pytest.raises(OutputError, match="is an existing file, not a directory"):
        run(SAMPLE, options=RunOptions(output_dir=target, video="none"))


@pytest.mark.parametrize("given, has, lacks", [
    (None, {"mp4", "mkv"}, {"wav"}),
    ("wav,mp3", {"wav", "mp3"}, {"mp4"}),          # a plain list replaces the defaults
    ("+wav,mp3", {"wav", "mp3", "mp4", "mkv"}, set()),  # a leading + adds to them
])
def test_extensions_replace_or_add(monkeypatch, tmp_path, given, has, lacks):
    seen = {}

    import dramapic.archive.batch as batch

    def fake_run_batch(archive, out, *, options, **kwargs):
        seen["extensions"] = set(options.extensions)
        raise ConfigError("stop here")

    monkeypatch.setattr(batch, "run_batch", fake_run_batch)
    argv = ["batch", str(tmp_path), "-o", str(tmp_path / "o")] + ([] if given is None else ["--extensions", given])
    args = cli.build_parser().parse_args(argv)
    with pytest.raises(ConfigError):
        cli._cmd_batch(args, cli.TqdmProgress(enabled=False))
    assert has <= seen["extensions"] and not (lacks & seen["extensions"])


@pytest.mark.parametrize("minutes", ["-1", "0", "nan", "1e308"])  # 1e308 min reached ffmpeg as duration=inf
def test_bench_refuses_a_length_that_is_not_positive_before_building_anything(capsys, minutes):
    assert cli.main(["bench", "--minutes", minutes, "--analysis-only", "--no-progress"]) == ConfigError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"dramapic: error: --minutes must be a positive number up to 1e+06, got {float(minutes):g}"]


@pytest.mark.parametrize("command", [["report", "out"], ["train", "--data", "manifest.csv"]])
def test_commands_that_run_no_pipeline_refuse_pipeline(capsys, command):
    # report reads results and train fits the default stages: a --pipeline there was accepted and did nothing
    with pytest.raises(SystemExit) as stop:
        cli.main([*command, "--pipeline", "custom.yaml"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--pipeline" in err[0]


def test_bench_speakers_measures_the_pipeline_it_is_given(tmp_path, capsys, monkeypatch):
    import subprocess

    from dramapic.config import load_pipeline
    from dramapic.lab import bench_speakers

    bad = tmp_path / "bad.yaml"
    bad.write_text("speakers:\n  num_speakers: 2.5\n", encoding="utf-8")
    started = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: started.append(a) or pytest.fail("a child started"))
    # a bad YAML fails in one line before any measuring process starts
    assert cli.main(["bench", "--speakers", "--hours", "0.01", "--pipeline", str(bad), "--no-progress"]) \
        == ConfigError.exit_code
    assert capsys.readouterr().err.strip() == \
        f"dramapic: error: pipeline file {bad}: speakers.num_speakers must be a whole number, got 2.5"
    # a good one is handed to every child, which measures with its settings
    good = tmp_path / "good.yaml"
    good.write_text("speakers:\n  switch_penalty: 0.3\n", encoding="utf-8")
    calls = []

    class Done:
        returncode, stderr = 0, ""
        stdout = '{"hours": 0.01, "audio_s": 36, "windows": 1, "diarization_s": 1, "rtf": 0.03, ' \
                 '"cpu_per_audio_s": 0.03, "load_average": 1, "peak_added_mb": 1, "speakers_found": 2, ' \
                 '"speakers_true": 2, "der": 0.0, "material": "x", "input_mb": 1, "peak_measure": "x"}'

    monkeypatch.setattr(subprocess, "run", lambda args, **k: calls.append(args) or Done())
    bench_speakers.run_sizes(hours=0.01, pipeline_path=good, report=lambda line: None)
    assert len(calls) == 3 and all(c[c.index("--pipeline") + 1] == str(good.resolve()) for c in calls)
    # a bundled pipeline by its name: the children get its file (the name resolved against the current folder,
    # where no such file is, was "pipeline file not found" in the first child)
    calls.clear()
    monkeypatch.chdir(tmp_path)
    bench_speakers.run_sizes(hours=0.01, pipeline_path=Path("song-safe"), report=lambda line: None)
    bundled = Path(load_pipeline("song-safe").source).resolve()
    assert bundled.is_file() and len(calls) == 3 and all(c[c.index("--pipeline") + 1] == str(bundled) for c in calls)
    # ... and the child (bench --one) measures with it
    seen = {}
    monkeypatch.setattr(bench_speakers, "measure_one", lambda hours, data, **kw: seen.update(kw) or {"hours": hours})
    assert cli.main(["bench", "--one", "0.01", "--pipeline", str(good), "--no-progress"]) == 0
    assert seen == {"pipeline_path": good}


@pytest.mark.parametrize("extra", [["--seeds", "0,1"], ["--copies", "3"], ["--timelines", "t"]])
def test_cross_corpus_settings_are_refused_elsewhere(capsys, tmp_path, extra):
    from dramapic.errors import InputError

    assert cli.main(["eval", "--mixes", str(tmp_path), *extra, "--no-progress"]) == InputError.exit_code
    assert capsys.readouterr().err.strip() == f"dramapic: error: {extra[0]} applies to --cross-corpus only"


def test_bench_input_and_source_exclude_each_other(capsys, tmp_path):
    from dramapic.errors import InputError

    assert cli.main(["bench", "--input", str(SAMPLE), "--source", str(SAMPLE), "--no-progress"]) \
        == InputError.exit_code
    assert "--input and --source exclude each other" in capsys.readouterr().err


def test_bench_speakers_refuses_an_unknown_projection_before_any_child(tmp_path, capsys, monkeypatch):
    import subprocess

    from dramapic.errors import ModelError

    bad = tmp_path / "bad.yaml"
    bad.write_text("speakers:\n  projection: no-such-model\n", encoding="utf-8")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("a child started"))
    # was: each child failed, and the parent ended in a RuntimeError traceback (exit 1)
    assert cli.main(["bench", "--speakers", "--hours", "0.01", "--pipeline", str(bad), "--no-progress"]) \
        == ModelError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-model" in err[0], err


def test_bench_speakers_refuses_the_options_of_the_other_bench(capsys, tmp_path):
    from dramapic.errors import InputError

    assert cli.main(["bench", "--speakers", "--input", str(SAMPLE), "--no-progress"]) == InputError.exit_code
    assert capsys.readouterr().err.strip() == "dramapic: error: --input does not apply to --speakers"


@pytest.mark.parametrize("argv, says", [
    # --input is measured as it is: the length and picture of the built input did nothing
    (["--input", "IN", "--minutes", "3"], "--minutes does not apply to --input: it is measured as it is"),
    (["--input", "IN", "--size", "640x360"], "--size does not apply to --input"),
    (["--input", "IN", "--minutes", "3", "--size", "640x360"], "--minutes, --size do not apply to --input"),
    (["--analysis-only", "--size", "640x360"], "--size does not apply to --analysis-only"),
    # ... nor a preset or CRF, which only appeared in its report
    (["--analysis-only", "--preset", "slow"], "--preset does not apply to --analysis-only: it encodes no video"),
    (["--analysis-only", "--crf", "18"], "--crf does not apply to --analysis-only"),
    (["--analysis-only", "--size", "640x360", "--preset", "fast", "--crf", "30"],
     "--size, --preset, --crf do not apply to --analysis-only"),
    # --hours and --data shape the diarization benchmark alone
    (["--hours", "1"], "--hours applies to --speakers only"),
    (["--data", "DATA", "--minutes", "1"], "--data applies to --speakers only"),
    (["--hours", "1", "--data", "DATA"], "--hours, --data apply to --speakers only"),
    # ... which builds its own dialogues and burns nothing in
    (["--speakers", "--minutes", "3"], "--minutes does not apply to --speakers"),
    (["--speakers", "--size", "640x360", "--crf", "20"], "--size, --crf do not apply to --speakers"),
    (["--speakers", "--preset", "fast"], "--preset does not apply to --speakers"),
])
def test_a_bench_option_that_would_do_nothing_is_a_usage_error(monkeypatch, capsys, tmp_path, argv, says):
    from dramapic.errors import InputError
    from dramapic.lab import bench, bench_speakers

    monkeypatch.setattr(bench, "benchmark", lambda **kwargs: pytest.fail(f"measured, ignoring an option: {kwargs}"))
    monkeypatch.setattr(bench_speakers, "run_sizes", lambda **kwargs: pytest.fail("measured, ignoring an option"))
    argv = [{"IN": str(SAMPLE), "DATA": str(tmp_path)}.get(a, a) for a in argv]
    assert cli.main(["bench", *argv, "--no-progress"]) == InputError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"dramapic: error: {says}"), err


@pytest.mark.parametrize("argv, says", [
    (["--preset", "slow"], "--preset does not apply to --no-video: it encodes no video"),
    (["--crf", "18"], "--crf does not apply to --no-video"),
    (["--preset", "slow", "--crf", "18"], "--preset, --crf do not apply to --no-video"),
])
def test_x264_settings_with_no_video_are_a_usage_error(monkeypatch, capsys, argv, says):
    """``run --no-video --preset slow`` ran and encoded nothing: the setting did nothing, without a word."""
    from dramapic import run as run_module
    from dramapic.errors import InputError

    monkeypatch.setattr(run_module, "run", lambda *args, **kwargs: pytest.fail("ran, ignoring an option"))
    assert cli.main(["run", str(SAMPLE), "--no-video", *argv, "--no-progress"]) == InputError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"dramapic: error: {says}"), err


def test_bench_hands_on_only_the_options_given(monkeypatch, capsys):
    """Unset, --minutes, --size and --hours are the benchmarks' own defaults (2 minutes of 1280x720, 2 hours)."""
    import inspect

    from dramapic.lab import bench, bench_speakers

    built, longest = inspect.signature(bench.benchmark).parameters, inspect.signature(bench_speakers.run_sizes).parameters
    assert (built["minutes"].default, built["size"].default, longest["hours"].default) == (2.0, "1280x720", 2.0)
    seen = []
    monkeypatch.setattr(bench, "benchmark", lambda **kwargs: seen.append(kwargs) or {})
    monkeypatch.setattr(bench, "format_table", lambda figures: "")
    monkeypatch.setattr(bench_speakers, "run_sizes", lambda **kwargs: seen.append(kwargs) or {})
    for argv in (["--minutes", "3", "--size", "640x360"], ["--input", str(SAMPLE)], ["--speakers", "--hours", "1"],
                 ["--speakers"]):
        assert cli.main(["bench", *argv, "--no-progress"]) == 0
    assert (seen[0]["minutes"], seen[0]["size"]) == (3.0, "640x360")
    assert "minutes" not in seen[1] and "size" not in seen[1] and seen[1]["input_path"] == SAMPLE
    assert seen[2]["hours"] == 1.0 and "hours" not in seen[3]


@pytest.mark.parametrize("argv", [
    ["eval", "--mixes", "d", "--limit", "0"],
    ["eval", "--mixes", "d", "--limit", "-3"],          # was mixes[:-3] / clips[:-3]: all but the last three
    ["eval", "--song-check", "--data", "d", "--limit", "-1"],
    ["train", "--data", "m.csv", "--max-clips", "0"],     # was a traceback (no windows to fit) after the embedding
    ["train", "--data", "m.csv", "--max-clips", "-2"],    # was a run on all clips but two of each split
    ["train", "--data", "m.csv", "--seed", "-1"],         # was numpy's ValueError after the embedding pass
])
def test_a_count_that_is_not_positive_is_a_usage_mistake(capsys, argv):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "must be at least " in err[0], err


def test_train_seed_is_one_scikit_learn_takes(capsys):
    # 2**32 passed, and the stage-1 forest's fit failed with a traceback once the training mixes were built
    assert cli.build_parser().parse_args(["train", "--data", "m.csv", "--seed", str(2**32 - 1)]).seed == 2**32 - 1
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "--data", "m.csv", "--seed", str(2**32)])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "argument --seed: must be at most 4294967295: '4294967296'" in err[0], err


@pytest.mark.parametrize("seconds", ["0", "-5", "nan", "inf", "abc"])
def test_seconds_per_fold_must_be_a_positive_number(capsys, seconds):
    with pytest.raises(SystemExit) as stop:   # was a ValueError traceback from fit_stacker after the members' fits
        cli.main(["train", "--data", "m.csv", "--only", "stage1", "--seconds-per-fold", seconds])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "argument --seconds-per-fold" in err[0], err


@pytest.mark.parametrize("option, value", [("crf", "99"), ("preset", "warp-speed")])
def test_bench_refuses_a_bad_x264_setting_before_building_anything(monkeypatch, capsys, option, value):
    from dramapic.lab import bench

    # --crf 99 was benchmarked as if valid; --preset warp-speed failed only at the burn-in, after the analysis
    monkeypatch.setattr(bench, "benchmark", lambda **kwargs: pytest.fail("built and measured a bad setting"))
    assert cli.main(["bench", f"--{option}", value, "--minutes", "0.1", "--no-progress"]) == ConfigError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dramapic: error: ") and f"--{option}" in err[0], err


def test_bench_speakers_refuses_a_data_folder_without_the_manifest(monkeypatch, tmp_path, capsys):
    from dramapic.lab import bench_speakers

    # it measured the bundled sample instead, as if --data had not been given (exit 0)
    monkeypatch.setattr(bench_speakers, "run_sizes", lambda **kwargs: pytest.fail("measured other material"))
    assert cli.main(["bench", "--speakers", "--data", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"dramapic: error: no manifest.csv in {tmp_path}: --data must be the shared data folder"]


def test_bench_speakers_ends_in_the_measuring_process_s_one_line(tmp_path, capsys):
    (tmp_path / "manifest.csv").write_text("path,label,speaker\nv/a.wav,voice,nobody\n", encoding="utf-8")
    # was a RuntimeError traceback around the measuring process's own FileNotFoundError traceback
    assert cli.main(["bench", "--speakers", "--data", str(tmp_path), "--hours", "0.001", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dramapic: error: measuring 0.00025 h failed: no voice clips of "), err


@pytest.mark.parametrize("command", [["eval", "--mixes", "{tmp}"], ["eval", "--song-check", "--data", "{tmp}"],
                                     ["bench", "--analysis-only"], ["bench", "--speakers"]])
def test_a_json_target_that_cannot_be_written_is_refused_before_the_work(monkeypatch, tmp_path, capsys, command):
    from dramapic.lab import bench, bench_speakers, evaluate, songcheck

    for module, name in ((evaluate, "evaluate_mixes"), (songcheck, "songcheck_clips"), (bench, "benchmark"),
                         (bench_speakers, "run_sizes")):
        monkeypatch.setattr(module, name, lambda *a, **k: pytest.fail("ran the whole work before refusing --json"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    argv = [part.replace("{tmp}", str(tmp_path)) for part in command]
    # was: the evaluation or benchmark ran to its end, then 'cannot create ...: File exists'
    for target, says in ((blocker / "report.json", "is a file, not a folder"), (tmp_path, "is a folder")):
        assert cli.main([*argv, "--json", str(target), "--no-progress"]) == OutputError.exit_code
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("dramapic: error: ") and says in err[0], err


@pytest.mark.parametrize("command", [["eval", "--mixes", "{tmp}"], ["bench", "--analysis-only"]])
def test_a_json_target_that_is_another_kind_of_file_is_not_replaced(monkeypatch, tmp_path, capsys, command):
    # "eval --mixes M --json M/devmix_01.opus" turned a dev mix into JSON; an earlier report (or an empty file) is
    # still replaced
    from dramapic.lab import bench, evaluate

    monkeypatch.setattr(evaluate, "evaluate_mixes", lambda *a, **k: pytest.fail("ran before refusing --json"))
    monkeypatch.setattr(bench, "benchmark", lambda *a, **k: pytest.fail("ran before refusing --json"))
    mix = tmp_path / "devmix_01.opus"
    mix.write_bytes(b"OggS\x00\x02 audio")
    argv = [part.replace("{tmp}", str(tmp_path)) for part in command]
    assert cli.main([*argv, "--json", str(mix), "--no-progress"]) == OutputError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is an existing file that is not JSON; not replaced" in err[0], err
    assert mix.read_bytes() == b"OggS\x00\x02 audio"
    for earlier in (b'  {"accuracy": 0.9}', b"", b"[1, 2]"):
        mix.write_bytes(earlier)
        eval_command.check_json_target(mix)  # an earlier report: replaced as before


def test_bench_names_a_source_without_audio_or_not_media(tmp_path, capsys):
    from dramapic import media

    picture = tmp_path / "picture.mp4"
    media.encode_test_video(picture, seconds=1.0, audio=None, size="64x36")
    text = tmp_path / "notes.csv"
    text.write_text("a,b\n1,2\n")
    # were 'cannot build bench.mka from picture.mp4: To ignore this, add a trailing '?' to the map.' (ffmpeg's
    # advice) and a MediaError where --input of the same file is an InputError
    for source, code, says in ((picture, 3, "picture.mp4 has no audio stream"),
                               (text, 2, "notes.csv is not a media file")):
        assert cli.main(["bench", "--source", str(source), "--minutes", "0.05", "--analysis-only",
                         "--no-progress"]) == code
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"dramapic: error: {says}"), err


@pytest.mark.parametrize("hours", ["inf", "0", "-1", "nan", "1e306"])  # 1e306 h: infinite seconds
def test_bench_speakers_refuses_hours_that_are_not_a_positive_number(monkeypatch, capsys, hours):
    import subprocess

    # --hours inf started measuring processes that built a dialogue until memory ran out
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("started a measuring process"))
    assert cli.main(["bench", "--speakers", "--hours", hours, "--no-progress"]) == ConfigError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"dramapic: error: --hours must be a positive number up to 10000, got {float(hours)}"]


@pytest.mark.parametrize("size", ["abc", "0x0", "1280x", "99999x720"])
def test_bench_refuses_a_picture_size_it_cannot_build_before_building(capsys, size):
    assert cli.main(["bench", "--size", size, "--no-progress"]) == ConfigError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"dramapic: error: --size must be WIDTHxHEIGHT in pixels, 16x16 to 7680x4320 (e.g. 1280x720), "
                   f"got {size!r}"]


def test_eval_runs_one_protocol_at_a_time(capsys, tmp_path):
    from dramapic.errors import InputError

    assert cli.main(["eval", "--song-check", "--cross-corpus", "--data", str(tmp_path), "--no-progress"]) \
        == InputError.exit_code
    assert "--song-check and --cross-corpus are two runs" in capsys.readouterr().err


def test_eval_without_mixes_says_what_it_needs(capsys, tmp_path):
    from dramapic.errors import InputError

    assert cli.main(["eval", "--no-progress"]) == InputError.exit_code
    assert capsys.readouterr().err.strip() == \
        "dramapic: error: eval needs --mixes DIR, or --song-check / --cross-corpus with --data DIR"
    assert cli.main(["eval", "--mixes", str(tmp_path / "nope"), "--no-progress"]) == InputError.exit_code
    assert capsys.readouterr().err.strip() == f"dramapic: error: mixes folder not found: {tmp_path / 'nope'}"


def test_bench_speakers_refuses_a_pipeline_without_diarization(capsys, tmp_path):
    off = tmp_path / "off.yaml"
    off.write_text("speakers:\n  enabled: false\n", encoding="utf-8")
    assert cli.main(["bench", "--speakers", "--pipeline", str(off), "--no-progress"]) == ConfigError.exit_code
    assert "switches diarization off" in capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    # each was accepted and did nothing: the target asked for never reads it
    (["--only", "gender", "--seconds-per-fold", "60"], "--seconds-per-fold does not apply to --only gender"),
    (["--only", "stage1", "--copies", "0", "--no-augment"], "--no-augment, --copies do not apply to --only stage1"),
    (["--only", "song-safe", "--cache", "c"], "--cache does not apply to --only song-safe"),
    (["--only", "speakers", "--no-augment"], "--no-augment does not apply to --only speakers"),
    (["--only", "gender-stacking", "--out", "m"], "--out does not apply to --only gender-stacking"),
])
def test_a_train_option_of_another_target_is_a_usage_error(monkeypatch, capsys, argv, says):
    from dramapic.errors import InputError
    from dramapic.lab import train, train_gender

    monkeypatch.setattr(train, "train_all", lambda *a, **kw: pytest.fail(f"trained, ignoring an option: {kw}"))
    monkeypatch.setattr(train_gender, "gender_stacking_experiment", lambda *a, **kw: pytest.fail("measured"))
    assert cli.main(["train", "--data", "m.csv", *argv, "--no-progress"]) == InputError.exit_code
    assert capsys.readouterr().err.strip().splitlines() == [f"dramapic: error: {says}"]


def test_train_hands_each_option_to_the_targets_it_shapes(monkeypatch, capsys, tmp_path):
    from dramapic.lab import train, train_gender

    seen = []
    monkeypatch.setattr(train, "train_all", lambda manifest, **kw: seen.append(kw) or {"seconds": {}})
    monkeypatch.setattr(train_gender, "gender_stacking_experiment", lambda manifest, **kw: seen.append(kw) or {})
    for argv in (["--only", "gender-stacking", "--copies", "3"], ["--only", "gender-stacking"],
                 ["--only", "speakers", "--copies", "0", "--cache", "c", "--out", str(tmp_path)],
                 ["--copies", "1", "--no-augment", "--seconds-per-fold", "60", "--out", str(tmp_path)]):
        assert cli.main(["train", "--data", "m.csv", *argv, "--no-progress", "-q"]) == 0
    assert seen[0]["copies"] == 3 and "copies" not in seen[1]  # was the experiment's own 2, --copies unread
    assert (seen[2]["copies"], str(seen[2]["cache"])) == (0, "c")
    assert (seen[3]["copies"], seen[3]["augment"], seen[3]["seconds_per_fold"]) == (1, False, 60.0)


def test_help_says_the_defaults_the_code_takes(monkeypatch, capsys):
    """--work is under $XDG_CACHE_HOME when that is set, and bench --speakers without the shared data measures the
    sample: the help said ~/.cache/... and ../shared/data (read against the working folder) alone."""
    from dramapic.lab import bench_speakers

    for argv in (["eval", "--help"], ["bench", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
    helps = " ".join(capsys.readouterr().out.split())
    assert ("(default: $XDG_CACHE_HOME/dramapic/cross-corpus, ~/.cache/dramapic/cross-corpus when that is unset)"
            in helps)
    assert ("(default: shared/data beside the dramapic source checkout; when that is missing, the bundled sample"
            in helps)
    assert bench_speakers.DEFAULT_DATA == bench_speakers.REPO.parent / "shared" / "data"
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert eval_command.eval_work(cli.build_parser().parse_args(["eval"])) == Path("/somewhere/dramapic/cross-corpus")


@pytest.mark.parametrize("switches, says", [(["--no-gender"], "--no-gender does"),
                                            (["--no-speakers", "--no-gender"], "--no-gender, --no-speakers do")])
def test_eval_song_check_refuses_the_stage_2_switches(monkeypatch, capsys, tmp_path, switches, says):
    # the song check scores stage 1 alone: the switches were accepted and changed nothing
    from dramapic.errors import InputError

    monkeypatch.setattr(eval_command, "_song_check", lambda *a: pytest.fail("ran the song check, ignoring a switch"))
    argv = ["eval", "--song-check", "--data", str(tmp_path), *switches, "--no-progress"]
    assert cli.main(argv) == InputError.exit_code
    assert capsys.readouterr().err.strip().splitlines() == [
        f"dramapic: error: {says} not apply to --song-check (it scores stage 1 alone)"]


@pytest.mark.parametrize("argv", [["--cross-corpus", "--data", "DATA"], ["--mixes", "MIXES", "--scenes", "20"],
                                  ["--mixes", "MIXES", "--reference", "speech", "--data", "DATA"]])
def test_eval_names_a_work_folder_that_is_a_file(monkeypatch, capsys, tmp_path, argv):
    # was the first writer's "cannot create the timeline folder .../timelines: [Errno 20] Not a directory: ..."
    from dramapic.lab import timelines

    data, mixes, work = tmp_path / "data", tmp_path / "mixes", tmp_path / "work.txt"
    data.mkdir(), mixes.mkdir(), work.write_text("notes")
    (data / "manifest.csv").write_text("path,label,split\n")
    monkeypatch.setattr(timelines, "build_timelines", lambda **kw: pytest.fail("built timelines under a file"))
    argv = [{"DATA": str(data), "MIXES": str(mixes)}.get(a, a) for a in argv]
    assert cli.main(["eval", *argv, "--work", str(work), "--no-progress"]) == OutputError.exit_code
    assert capsys.readouterr().err.strip().splitlines() == [f"dramapic: error: --work {work} is a file, not a folder"]



def test_a_work_folder_under_a_folder_this_user_cannot_search_is_one_line(monkeypatch, tmp_path):
    # Path.exists raised PermissionError under a folder without search permission: a traceback, not one line
    import os as os_module

    secret = tmp_path / "secret"
    secret.mkdir()
    real_stat, real_access = os_module.stat, os_module.access

    def stat(path, *args, **kwargs):  # as the kernel answers for what lies in a folder one cannot search
        if os_module.fspath(path).startswith(str(secret) + os_module.sep):
            raise PermissionError(13, "Permission denied", os_module.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os_module, "stat", stat)
    monkeypatch.setattr(os_module, "access", lambda path, mode, **kw: os_module.fspath(path) != str(secret)
                        and real_access(path, mode, **kw))
    with pytest.raises(OutputError, match=r"cannot use --work .*secret/w: .*secret is not writable"):
        eval_command._check_work_target(secret / "w")

def test_a_smoke_training_needs_its_own_models_folder(monkeypatch, capsys, tmp_path):
    # without --out its tiny models replaced the shipped ones in the bundled models/, for every later run
    from dramapic.errors import InputError
    from dramapic.lab import train

    seen = []
    monkeypatch.setattr(train, "train_all", lambda manifest, **kw: seen.append(kw) or {"seconds": {}})
    assert cli.main(["train", "--data", "m.csv", "--max-clips", "4", "--no-progress"]) == InputError.exit_code
    says = ("dramapic: error: --max-clips is a smoke run (tiny models): give --out DIR for them, or they would "
            "replace the shipped models in the bundled models/")
    assert capsys.readouterr().err.strip().splitlines() == [says]
    assert not seen
    assert cli.main(["train", "--data", "m.csv", "--max-clips", "4", "--out", str(tmp_path), "-q"]) == 0
    assert seen[0]["out_dir"] == tmp_path and seen[0]["max_clips"] == 4


def test_quiet_leaves_out_the_lab_reports(monkeypatch, capsys, tmp_path):
    """--quiet is "errors only": eval and bench printed their tables whatever it said (run and train did not)."""
    import json

    from dramapic.lab import bench, bench_speakers, evaluate

    class Report:
        def format_table(self):
            return "TABLE"

        def to_dict(self):
            return {"files": []}

    monkeypatch.setattr(evaluate, "evaluate_mixes", lambda *a, **kw: Report())
    monkeypatch.setattr(bench, "benchmark", lambda **kw: {"figures": 1})
    monkeypatch.setattr(bench, "format_table", lambda figures: "TABLE")
    monkeypatch.setattr(bench_speakers, "run_sizes", lambda **kw: kw["report"]("ROW") or {"runs": []})
    out = tmp_path / "eval.json"
    for argv in (["eval", "--mixes", str(tmp_path), "--json", str(out)], ["bench"], ["bench", "--speakers"]):
        assert cli.main([*argv, "--no-progress"]) == 0
        assert capsys.readouterr().out.strip() in ("TABLE", "ROW")
        assert cli.main([*argv, "-q"]) == 0
        assert capsys.readouterr().out == ""
    assert json.loads(out.read_text())["files"] == []  # what -q keeps: the --json file


def test_bench_without_the_bundled_sample_asks_for_a_source(monkeypatch, capsys, tmp_path):
    from dramapic.errors import InputError
    from dramapic.lab import bench

    # an installed dramapic has no samples/: the built input's default source is missing (was ffmpeg's
    # "drama_sample.mp4 is not a media file ... (No such file or directory)", naming no option)
    monkeypatch.setattr(bench, "SAMPLE", tmp_path / "samples" / "drama_sample.mp4")
    monkeypatch.setattr(bench, "build_input", lambda *a, **k: pytest.fail("built an input from a missing sample"))
    assert cli.main(["bench", "--analysis-only", "--minutes", "0.1", "--no-progress"]) == InputError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--source" in err[0] and "--input" in err[0], err


def test_bench_speakers_without_data_or_the_bundled_sample_asks_for_data(monkeypatch, capsys, tmp_path):
    import subprocess

    from dramapic.errors import InputError
    from dramapic.lab import bench_speakers

    # no shared data folder and no samples/ (an installed dramapic): refused before any measuring process, which
    # each failed on the missing sample
    monkeypatch.setattr(bench_speakers, "SAMPLE", tmp_path / "samples" / "drama_sample.mp4", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("a child started"))
    with pytest.raises(InputError, match="--data"):
        bench_speakers.run_sizes(hours=0.01, data=tmp_path / "shared" / "data", report=lambda line: None)


@pytest.mark.parametrize("name, shown", [
    ("bad\nname.mp4", "bad\\nname.mp4"), ("x\r=1.mp4", "x\\r=1.mp4"), ("\x1b[31mred.mp4", "\\x1b[31mred.mp4"),
    ("a\u2028b.mp4", "a\\u2028b.mp4"), ("tab\there.mp4", "tab\\there.mp4"),
    # shown as they are: Python does not call them printable, but they break no line
    ("드라마\u3000 1화.mkv", "드라마\u3000 1화.mkv"), ("Café\xa0Noir.mp4", "Café\xa0Noir.mp4"),
    ("👩\u200d👩\u200d👧.mp4", "👩\u200d👩\u200d👧.mp4"), ("\u200fשלום.mp4", "\u200fשלום.mp4"),
])
def test_a_status_line_escapes_only_what_breaks_a_line(name, shown):
    # escaping every character str.isprintable() refuses wrote an ideographic or no-break space in a Korean or
    # French file name, and the joiner inside an emoji, as \u3000 / \xa0 / \u200d on every done/failed line
    assert cli._one_line(f"  done     {name}") == f"  done     {shown}"
