"""Archive mode: walking an archive, skipping what is done, redoing what changed, a corrupt file in the middle,
a batch killed with SIGKILL and resumed, and two batches on one output folder at once.

The archive is made of 6-second clips cut from the bundled sample (real voice, song and noise) wrapped in small
test-pattern videos, plus one file of random bytes named like a video.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dramapic import media
from dramapic.archive.batch import (BatchOptions, TaskOptions, expected_key, file_key, find_media, installed_models,
                            models_current, plan_batch, process_file, run_batch)
from dramapic.config import load_pipeline
from dramapic.errors import ConfigError, InputError, OutputError
from dramapic.archive.store import DB_NAME, Store
from helpers import (CLIP_S, CLIPS, CORRUPT, REPO, SAMPLE, assert_consistent, fake_done_worker, make_archive,
                     make_result, placeholder_archive, runs_table, validate_contract)
from dramapic.result import SAMPLE_RATE
from dramapic.writers import name_key


@pytest.fixture(scope="module")
def archive_master(tmp_path_factory) -> Path:
    return make_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture
def archive(archive_master, tmp_path) -> Path:
    return Path(shutil.copytree(archive_master, tmp_path / "archive"))


def cli(*args: str, **kwargs) -> list[str]:
    return [sys.executable, "-m", "dramapic", *args]


# -- walking the archive ---------------------------------------------------------------------------------------

def test_find_media_filters_skips_and_mirrors(tmp_path):
    for rel in ("a/ep1.mp4", "a/ep1.mkv", "a/b/ep2.MOV", "a/notes.txt", "a/.hidden.mp4", ".cache/x.mp4",
                "out/a/ep1.dramapic.mp4", "trailers/t1.mp4", "c.dramapic.mp4", "d.webm"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    found = {f.rel: f.output_dir for f in find_media(tmp_path, skip_dirs=[tmp_path / "out"])}
    # same stem in one folder: each gets a folder of its own so their outputs cannot collide
    assert found == {"a/ep1.mp4": "a/ep1.mp4.d", "a/ep1.mkv": "a/ep1.mkv.d", "a/b/ep2.MOV": "a/b",
                     "trailers/t1.mp4": "trailers", "d.webm": ""}
    options = BatchOptions(extensions=("mp4", "mov"), exclude=("trailers/*",), include=("a/*", "*.webm"))
    assert [f.rel for f in find_media(tmp_path, options)] == ["a/b/ep2.MOV", "a/ep1.mp4"]
    assert [f.rel for f in find_media(tmp_path, BatchOptions(include=("ep2.*",)))] == ["a/b/ep2.MOV"]
    with pytest.raises(InputError, match="no such folder"):
        find_media(tmp_path / "missing")
    with pytest.raises(InputError, match="not a folder"):
        find_media(tmp_path / "d.webm")
    with pytest.raises(ConfigError):
        BatchOptions(engine="spark")
    with pytest.raises(ConfigError):
        BatchOptions(scheduler="tcp://x:1")  # a scheduler only goes with the dask engine


def test_a_negative_audio_track_is_refused_before_anything_is_written(tmp_path):
    from dramapic.analysis.analyze import AnalysisOptions

    with pytest.raises(ConfigError, match="--audio-track must be 0 or more"):
        BatchOptions(task=TaskOptions(analysis=AnalysisOptions(audio_track=-1)))
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "ep1.mp4").write_bytes(b"\x00" * 1000)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(cli("batch", str(archive), "-o", str(tmp_path / "out"), "--audio-track", "-1"),
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == ConfigError.exit_code, done.stderr
    assert done.stderr.startswith("dramapic: error: --audio-track must be 0 or more") and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_filters_do_not_change_where_same_stem_files_write(tmp_path):
    # a batch of the .mp4 files only and a later one of the .mkv files must not share a.ep1's outputs
    for rel in ("a/ep1.mp4", "a/ep1.mkv", "a/ep2.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    only_mp4 = {f.rel: f.output_dir for f in find_media(tmp_path, BatchOptions(include=("*.mp4",)))}
    only_mkv = {f.rel: f.output_dir for f in find_media(tmp_path, BatchOptions(extensions=("mkv",)))}
    assert only_mp4 == {"a/ep1.mp4": "a/ep1.mp4.d", "a/ep2.mp4": "a"}
    assert only_mkv == {"a/ep1.mkv": "a/ep1.mkv.d"}


def test_names_that_differ_only_in_case_never_share_an_output(tmp_path):
    # one file each where case is ignored (the output folder on a macOS, Windows or SMB share), whatever this
    # machine's file system: EP01's outputs must not be replaced by ep01's, nor Season1's by season1's
    rels = ("a/EP01.mp4", "a/ep01.mkv", "Season1/x.mp4", "season1/X.mp4", "a/ep02.mp4", "b/ep1.mp4", "b/ep1.mkv")
    for rel in rels:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    if len(list(tmp_path.rglob("*.*"))) < len(rels):
        pytest.skip("this file system ignores case: the archive cannot hold both names")
    found = {f.rel: f.output_dir for f in find_media(tmp_path)}
    outputs = [name_key(f"{found[rel]}/{Path(rel).stem}.srt") for rel in rels]
    assert len(set(outputs)) == len(rels), found
    # a folder of their own, named with a hash of the exact path ("EP01.mp4.d" and "ep01.mp4.d" would be one)
    assert found["a/EP01.mp4"] == f"a/EP01.mp4.{hashlib.sha1(b'a/EP01.mp4').hexdigest()[:8]}.d"
    assert len({name_key(found[rel]) for rel in ("Season1/x.mp4", "season1/X.mp4")}) == 2
    # the same folders whatever the filters; the others' are as before
    assert {f.rel: f.output_dir for f in find_media(tmp_path, BatchOptions(include=("a/*.mp4",)))} == \
        {"a/EP01.mp4": found["a/EP01.mp4"], "a/ep02.mp4": "a"}
    assert (found["b/ep1.mp4"], found["b/ep1.mkv"]) == ("b/ep1.mp4.d", "b/ep1.mkv.d")


def test_a_name_that_is_not_utf8_is_skipped_with_a_warning(tmp_path, caplog):
    raw = os.fsencode(tmp_path) + b"/" + "드라마".encode("cp949") + b".mp4"
    with open(raw, "wb") as handle:
        handle.write(b"x")
    (tmp_path / "ep1.mp4").write_bytes(b"x")
    with caplog.at_level("WARNING", logger="dramapic"):
        assert [f.rel for f in find_media(tmp_path)] == ["ep1.mp4"]
    assert "not valid UTF-8" in caplog.text


def test_an_archive_or_output_folder_whose_path_is_not_utf8_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    # a season folder named in CP949 on an old share: the database keeps the archive's path, and a failure's words
    # name the output folder; SQLite takes only UTF-8 text, so such a batch ended in a traceback
    from dramapic import cli

    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    odd = os.fsdecode(os.fsencode(tmp_path) + b"/" + "드라마".encode("cp949"))
    placeholder_archive(Path(odd), ("ep1.mp4",))
    assert cli.main(["batch", odd, "-o", str(tmp_path / "out"), "--no-progress"]) == InputError.exit_code
    error = capsys.readouterr().err
    assert error.startswith("dramapic: error: ") and "not valid UTF-8" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "out").exists()

    good = placeholder_archive(tmp_path / "archive", ("ep1.mp4",))
    assert cli.main(["batch", str(good), "-o", odd + "-out", "--no-progress"]) == OutputError.exit_code
    error = capsys.readouterr().err
    assert "output folder's path is not valid UTF-8" in error and len(error.splitlines()) == 1
    assert not Path(odd + "-out").exists()


def test_process_file_leaves_another_files_outputs_in_progress_alone(tmp_path):
    # movie.trailer.mp4 is being written by another worker into the same folder when movie.mp4 starts
    from dramapic.writers import OutputSet

    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "movie.mp4").write_bytes(b"\x00" * 5000)
    finals = [out / "movie.trailer.srt", out / "movie.trailer.dramapic.json"]
    with OutputSet(overwrite=True) as other:
        other.check(finals)
        for final in finals:
            other.reserve(final).write_text("half written")
        outcome = process_file(tmp_path / "movie.mp4", out, rel="movie.mp4", pipeline=load_pipeline(None))
        assert outcome.status == "failed"
        other.commit()
    assert all(final.read_text() == "half written" for final in finals)


# -- one batch in this process ---------------------------------------------------------------------------------


def test_the_audio_channel_is_part_of_a_files_key_and_reaches_the_analysis(tmp_path, monkeypatch):
    """--audio-channel left and right analyse different languages of one dual-mono file: a batch redone with the
    other channel must redo it, and one with the default (the mix) keeps the key batches had before the option."""
    from dramapic import cli as cli_module
    from dramapic.analysis.analyze import AnalysisOptions
    from dramapic.archive import batch as batch_module
    from dramapic.config import load_pipeline

    pipeline = load_pipeline(None)
    keys = {channel: expected_key("0" * 64, pipeline, TaskOptions(analysis=AnalysisOptions(audio_channel=channel)))
            for channel in (None, "left", "right")}
    assert len(set(keys.values())) == 3
    assert "audio_channel" not in TaskOptions().to_dict()["analysis"]  # the default leaves older keys as they were
    with pytest.raises(ConfigError, match="--audio-channel must be one of left, right"):
        AnalysisOptions(audio_channel="centre")
    seen = []

    def run_batch(archive, out, *, options, **kwargs):
        seen.append(options)
        raise InputError("stopped here")

    monkeypatch.setattr(batch_module, "run_batch", run_batch)
    (tmp_path / "archive").mkdir()
    assert cli_module.main(["batch", str(tmp_path / "archive"), "-o", str(tmp_path / "out"), "--audio-channel",
                            "right", "--no-progress", "-q"]) == InputError.exit_code
    assert seen[0].task.analysis.audio_channel == "right"


def test_batch_records_outputs_skips_done_and_redoes_changed(archive, tmp_path, monkeypatch):
    out = tmp_path / "out"
    pipeline = load_pipeline(None)
    events = []
    summary = run_batch(archive, out, pipeline=pipeline, on_file=events.append)
    good = set(CLIPS)
    assert (summary.found, summary.done, summary.failed, summary.skipped) == (7, 6, 1, 0)
    assert summary.audio_seconds == pytest.approx(6 * CLIP_S, abs=0.5)
    assert [path for path, _ in summary.failures] == [CORRUPT] and "not a media file" in summary.failures[0][1]
    assert sorted(e.rel for e in events) == sorted(good | {CORRUPT})
    for rel in good:  # outputs mirror the archive; no video without --burn
        stem = out / Path(rel).with_suffix("")
        assert {p.name for p in stem.parent.iterdir() if p.name.startswith(stem.name + ".")} == {
            f"{stem.name}.srt", f"{stem.name}.dramapic.json", f"{stem.name}.rttm"}
        validate_contract(json.loads(stem.with_name(stem.name + ".dramapic.json").read_text(encoding="utf-8")))
    assert_consistent(out, good=good)
    runs = {r["path"]: r for r in runs_table(out / DB_NAME)}
    assert runs[CORRUPT]["status"] == "failed" and runs[CORRUPT]["error_type"] == "InputError"
    # the sound each run describes, as its JSON says it: the one track's mix; the corrupt file's run analysed none
    assert {(runs[rel]["audio_track"], runs[rel]["audio_channel"]) for rel in good} == {(0, "mix")}
    assert (runs[CORRUPT]["audio_track"], runs[CORRUPT]["audio_channel"]) == (None, None)
    # and the gain it was heard with: each clip at its own level; nothing for the failure
    assert {runs[rel]["gain_db"] for rel in good} == {0.0} and runs[CORRUPT]["gain_db"] is None
    # a run's key is recomputable from what is stored (content, pipeline, the run's models, options), and the
    # models are the installed ones: skipping needs no analysis
    task = TaskOptions()
    installed = installed_models()
    for rel in good:
        models = json.loads(runs[rel]["models_json"])
        assert runs[rel]["key"] == file_key(runs[rel]["sha256"], pipeline, models, task)
        assert models_current(models, installed)
    assert runs[CORRUPT]["key"] == expected_key(runs[CORRUPT]["sha256"], pipeline, task)

    # again: nothing is processed (the task would fail the test if it were called)
    def must_not_run(*args, **kwargs):
        raise AssertionError(f"re-processed {kwargs.get('rel')}")

    monkeypatch.setattr("dramapic.archive.batch.process_file", must_not_run)
    again = run_batch(archive, out, pipeline=pipeline)
    assert (again.done, again.skipped, again.failed, again.failed_earlier) == (0, 7, 0, 1)
    monkeypatch.undo()

    # --retry-failed tries the corrupt file again: still one row for it, two attempts
    retried = run_batch(archive, out, pipeline=pipeline, options=BatchOptions(retry_failed=True))
    assert (retried.done, retried.failed, retried.skipped) == (0, 1, 6)
    runs = {r["path"]: r for r in runs_table(out / DB_NAME)}
    assert runs[CORRUPT]["attempts"] == 2 and len(runs_table(out / DB_NAME)) == 7

    # a changed file and a file whose outputs were deleted are redone; a touched but unchanged file is not
    audio = media.decode_audio(media.probe(SAMPLE))
    media.encode_test_video(archive / "season1/ep01.mp4", seconds=CLIP_S,
                            audio=audio[30 * SAMPLE_RATE:(30 + CLIP_S) * SAMPLE_RATE], size="160x90")
    (out / "season2/ep04.srt").unlink()
    os.utime(archive / "season2/ep06.mp4", ns=(time.time_ns(), time.time_ns()))
    events.clear()
    redo = run_batch(archive, out, pipeline=pipeline, on_file=events.append)
    assert sorted(e.rel for e in events) == ["season1/ep01.mp4", "season2/ep04.mp4"]
    assert (redo.done, redo.skipped) == (2, 5)
    runs = runs_table(out / DB_NAME)
    ep01 = [r for r in runs if r["path"] == "season1/ep01.mp4"]
    assert len(ep01) == 2 and ep01[0]["key"] != ep01[1]["key"]   # the old content's run stays as history
    ep04 = [r for r in runs if r["path"] == "season2/ep04.mp4"]
    assert len(ep04) == 1 and ep04[0]["attempts"] == 2 and (out / "season2/ep04.srt").is_file()
    with Store.open(out / DB_NAME) as store:  # the current run is the new one
        assert store.known_file("season1/ep01.mp4").current_run_id == ep01[1]["id"]
        assert len(store.videos()) == 7

    # another pipeline setting, other output options or another model version: everything would be redone
    changed = pipeline.replace(stage1__switch_penalty=pipeline.stage1.switch_penalty + 1)
    with Store.open(out / DB_NAME) as store:
        plan = plan_batch(find_media(archive), store, changed, BatchOptions(), out_dir=out)
        assert {i.reason for i in plan.items} == {"changed"} and len(plan.to_run) == 7
        plan = plan_batch(find_media(archive), store, pipeline, BatchOptions(task=TaskOptions(language="ko")),
                          out_dir=out)
        assert {i.reason for i in plan.items} == {"changed"}
        newer = {**installed_models(), "silero-vad": {"name": "silero-vad", "version": "99", "sha256": "0" * 64}}
        monkeypatch.setattr("dramapic.archive.batch.installed_models", lambda: newer)
        plan = plan_batch(find_media(archive), store, pipeline, BatchOptions(), out_dir=out)
        assert {i.reason for i in plan.items} == {"changed"}


def test_a_file_written_while_it_is_processed_is_processed_again_by_the_next_batch(archive, tmp_path, monkeypatch):
    # the analysis reads the file and hashes it at the end: a file still being copied into the archive must not
    # keep the analysis of its partial content under its final content's sha256
    from dramapic.analysis import analyze as analyze_module
    from dramapic.models import file_sha256

    out = tmp_path / "out"
    target = archive / "season2/ep06.mp4"
    options = BatchOptions(include=("ep06.*",))

    def written_meanwhile(path):
        shutil.copyfile(archive / "season2/ep04.mp4", target)  # another content: the copy finished
        os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
        return file_sha256(path)

    monkeypatch.setattr(analyze_module, "file_sha256", written_meanwhile)
    first = run_batch(archive, out, options=options)
    assert (first.done, first.failed) == (0, 1)
    assert "changed while it was being processed" in first.failures[0][1]
    monkeypatch.undo()

    second = run_batch(archive, out, options=options)  # no --retry-failed needed
    assert (second.done, second.failed, second.skipped) == (1, 0, 0)
    with Store.open(out / DB_NAME) as store:
        run = store.run_by_id(store.known_file("season2/ep06.mp4").current_run_id)
        assert run.status == "done"
        sha = store.query("SELECT sha256 FROM runs WHERE id = ?", (run.id,))[0][0]
    assert sha == file_sha256(target)
    assert run_batch(archive, out, options=options).skipped == 1


def test_a_file_that_fails_while_it_is_still_copied_is_processed_again_by_the_next_batch(tmp_path, monkeypatch):
    # a file still being copied into the archive fails on its partial content (an MP4 whose index is not written
    # yet); the copy ends before the failure is recorded: the failure must not be recorded under the final
    # content's sha256, where the next batch would skip the whole file as failed until --retry-failed
    from dramapic import run as run_module

    archive = placeholder_archive(tmp_path / "archive", ("ep1.mp4",))
    out = tmp_path / "out"

    def fails_on_the_partial_copy(source, **kwargs):
        (archive / "ep1.mp4").write_bytes(b"the whole episode" * 1000)  # the copy finished meanwhile
        raise InputError("ep1.mp4 is not a media file ffmpeg can read (moov atom not found)")

    monkeypatch.setattr(run_module, "run", fails_on_the_partial_copy)
    first = run_batch(archive, out)
    assert (first.done, first.failed) == (0, 1)
    assert "changed while it was being processed" in first.failures[0][1]
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    second = run_batch(archive, out)  # no --retry-failed needed
    assert (second.done, second.failed_earlier) == (1, 0)


def test_a_file_whose_worker_died_while_it_was_still_copied_is_processed_again(tmp_path, monkeypatch):
    # the same when the worker itself dies on the partial copy: the batch hashes the file, whose copy has ended
    archive = placeholder_archive(tmp_path / "archive", ("ep1.mp4",))
    out = tmp_path / "out"

    def dies_on_the_partial_copy(path, out_dir, *, rel, pipeline, options):
        (archive / "ep1.mp4").write_bytes(b"the whole episode" * 1000)
        raise RuntimeError("worker lost")  # what the engine reports for a worker that died

    monkeypatch.setattr("dramapic.archive.batch.process_file", dies_on_the_partial_copy)
    assert run_batch(archive, out).failed == 1
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    second = run_batch(archive, out)
    assert (second.done, second.failed_earlier) == (1, 0)


@pytest.mark.parametrize("cause", ["No space left on device", "Disk quota exceeded"])
def test_a_disk_that_fills_up_stops_the_batch_and_fails_no_file(tmp_path, monkeypatch, cause):
    # every file after it would be analysed (minutes each) and then fail to write its outputs, each recorded as
    # failed, which the next batch, once space is freed, skipped as "failed earlier" until --retry-failed
    from dramapic import run as run_module

    archive = placeholder_archive(tmp_path / "archive", ("ep1.mp4", "ep2.mp4", "ep3.mp4"))
    out = tmp_path / "out"

    def no_room(source, *, options, pipeline):
        raise OutputError(f"cannot write ep2.srt in {options.output_dir}: {cause}")

    def disk_fills_at_ep2(path, out_dir, *, rel, pipeline, options):
        if rel != "ep2.mp4":
            return fake_done_worker(path, out_dir, rel=rel, pipeline=pipeline, options=options)
        with monkeypatch.context() as patch:
            patch.setattr(run_module, "run", no_room)
            return process_file(path, out_dir, rel=rel, pipeline=pipeline, options=options)

    monkeypatch.setattr("dramapic.archive.batch.process_file", disk_fills_at_ep2)
    with pytest.raises(OutputError, match=f"ep2.mp4.*{cause}.*run the batch again"):
        run_batch(archive, out)
    with Store.open(out / DB_NAME) as store:
        assert [(r["path"], r["status"]) for r in store.query(
            "SELECT f.path, r.status FROM runs r JOIN files f ON f.id = r.file_id")] == [("ep1.mp4", "done")]
        assert store.batches()[-1]["status"] == "interrupted"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    again = run_batch(archive, out)  # space freed: no --retry-failed needed
    assert (again.done, again.skipped, again.failed_earlier) == (2, 1, 0)


@pytest.mark.parametrize("stop", ["disk full", "Ctrl-C"])
def test_a_batch_that_cannot_record_its_own_end_still_says_why_it_stopped(tmp_path, monkeypatch, stop):
    # the outputs' disk is often the database's: once it is full, recording the batch as interrupted fails too, and
    # that failure ("cannot write to the archive database: database or disk is full") took the place of the stop
    # that ended the batch: the file whose outputs found no room and "free space and run the batch again" were lost,
    # and Ctrl-C ended with 6 where the CLI says "interrupted" (130). The batch's row is left running, which the next
    # batch marks interrupted
    archive = placeholder_archive(tmp_path / "archive", ("ep1.mp4", "ep2.mp4"))
    out = tmp_path / "out"

    def stops_at_ep2(path, out_dir, *, rel, pipeline, options):
        if rel == "ep1.mp4":
            return fake_done_worker(path, out_dir, rel=rel, pipeline=pipeline, options=options)
        if stop == "Ctrl-C":
            raise KeyboardInterrupt
        done = fake_done_worker(path, out_dir, rel=rel, pipeline=pipeline, options=options)
        return dataclasses.replace(done, status="failed", result=None, outputs={}, error_type="OutputError",
                                   error=f"cannot write ep2.srt in {out_dir}: No space left on device")

    def no_room(self, batch_id, **kwargs):
        raise OutputError("cannot write to the archive database: database or disk is full")

    monkeypatch.setattr("dramapic.archive.batch.process_file", stops_at_ep2)
    monkeypatch.setattr(Store, "end_batch", no_room)
    with pytest.raises(KeyboardInterrupt if stop == "Ctrl-C" else OutputError) as stopped:
        run_batch(archive, out)
    if stop == "disk full":
        assert str(stopped.value).startswith("ep2.mp4: cannot write ep2.srt") and "run the batch again" in str(
            stopped.value)
    monkeypatch.undo()
    with Store.open(out / DB_NAME) as store:
        assert [r["path"] for r in store.query("SELECT path FROM files")] == ["ep1.mp4"]  # what finished is kept
        assert store.batches()[-1]["status"] == "running"
        store.begin_batch(archive=str(archive), engine="local", workers=1, options={})
        assert store.batches()[0]["status"] == "interrupted"


def test_process_file_reports_failure_instead_of_raising(tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 5000)
    outcome = process_file(tmp_path / "broken.mp4", tmp_path / "out", rel="broken.mp4", pipeline=load_pipeline(None))
    assert outcome.status == "failed" and outcome.error_type == "InputError" and outcome.result is None
    assert len(outcome.sha256) == 64 and len(outcome.key) == 64
    assert outcome.to_dict()["error"].startswith("broken.mp4 is not a media file")


# -- real processes: parallel workers, SIGKILL and resume, two batches at once ---------------------------------

def test_burn_writes_the_captioned_video_too(archive, tmp_path):
    out = tmp_path / "out"
    summary = run_batch(archive, out, options=BatchOptions(include=("ep05.*",), task=TaskOptions(burn=True)))
    assert summary.done == 1
    assert (out / "season2/extra/ep05.dramapic.mp4").stat().st_size > 0
    assert media.probe(out / "season2/extra/ep05.dramapic.mp4").has_video


def test_a_burn_batch_with_an_ffmpeg_without_libass_stops_before_any_file(archive, tmp_path, monkeypatch):
    """Every file failed on its own, each after its analysis; now the batch stops once, up front, as a run does.
    A batch that burns nothing, or whose workers are another machine's, is not stopped by this machine's ffmpeg."""
    from dramapic.archive import batch as batch_module
    from dramapic.errors import MediaError

    monkeypatch.setattr(media, "ffmpeg_filters", lambda exe: frozenset({"scale", "anullsrc"}))
    class Planned(Exception):
        pass

    def plan_batch(*args, **kwargs):
        raise Planned

    monkeypatch.setattr(batch_module, "plan_batch", plan_batch)
    with pytest.raises(MediaError, match=r"has no 'subtitles' filter"):
        run_batch(archive, tmp_path / "out", options=BatchOptions(task=TaskOptions(burn=True)))
    assert batch_module._on_this_machine(BatchOptions(engine="dask"))
    assert not batch_module._on_this_machine(BatchOptions(engine="dask", scheduler="tcp://elsewhere:8786"))
    assert not batch_module._on_this_machine(BatchOptions(engine="ray", address="elsewhere:6379"))
    with pytest.raises(Planned):  # no burn: the check is not made, the batch goes on to plan
        run_batch(archive, tmp_path / "out2", options=BatchOptions())

def _wait_for(condition, *, timeout: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the batch ended (rc {process.returncode}) before {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _count(db: Path, sql: str) -> int:
    """A count read from a live batch database; 0 while it is not created yet or its schema is being written."""
    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as connection:
            return connection.execute(sql).fetchone()[0]
    except sqlite3.Error:
        return 0


def _count_done(db: Path) -> int:
    return _count(db, "SELECT count(*) FROM runs WHERE status = 'done'")


def _running_batches(db: Path) -> int:
    return _count(db, "SELECT count(*) FROM batches WHERE status = 'running'")


def test_sigkill_then_resume_finishes_the_rest_without_redoing_anything(archive, tmp_path):
    out = tmp_path / "out"
    db = out / DB_NAME
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen(cli("batch", str(archive), "-o", str(out)), cwd=REPO, stdout=log,
                             stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: _count_done(db) >= 1, timeout=240, what="the first finished file", process=first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        log.close()
    assert first.returncode == -signal.SIGKILL

    before = {r["path"]: r for r in runs_table(db)}
    finished_before = {p for p, r in before.items() if r["status"] == "done"}
    print(f"SIGKILL after {len(finished_before)} of {len(CLIPS)} clips were recorded")
    assert 1 <= len(finished_before) < len(CLIPS), "the kill came too late to test resuming"
    with Store.open(db) as store:  # whatever the moment of the kill, the database is whole
        assert store.integrity_check() == "ok"
    mtimes = {p: (out / Path(p).with_suffix(".srt")).stat().st_mtime_ns for p in finished_before}

    second = subprocess.run(cli("batch", str(archive), "-o", str(out)), capture_output=True, text=True, cwd=REPO,
                            timeout=300)
    assert second.returncode in (0, 1), second.stderr  # 1: the corrupt file failed in this batch
    assert "Traceback" not in second.stderr
    assert_consistent(out, good=set(CLIPS))
    after = {r["path"]: r for r in runs_table(db)}
    for path in finished_before:  # not analysed again: same row, same times, same output files
        assert after[path] == before[path]
        assert (out / Path(path).with_suffix(".srt")).stat().st_mtime_ns == mtimes[path]
    batches = Store.open(db).batches()
    assert [b["status"] for b in batches] == ["interrupted", "finished"]
    # the second batch processed exactly what the first had not recorded (a file that failed before the kill
    # counts as recorded: it is skipped until --retry-failed)
    resumed = {r["path"] for r in after.values() if r["batch_id"] == batches[1]["id"]}
    assert resumed == set(after) - set(before)
    assert batches[1]["n_skipped"] == len(before)


def test_two_batches_on_one_output_folder(archive, tmp_path):
    out = tmp_path / "out"
    db = out / DB_NAME
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen(cli("batch", str(archive), "-o", str(out)), cwd=REPO, stdout=log,
                             stderr=subprocess.STDOUT)
    waiter = None
    try:
        _wait_for(lambda: _running_batches(db) == 1, timeout=120, what="the first batch to start", process=first)
        refused = subprocess.run(cli("batch", str(archive), "-o", str(out)), capture_output=True, text=True,
                                 cwd=REPO, timeout=60)
        assert refused.returncode == 6
        assert refused.stderr.startswith(f"dramapic: error: another batch is running on {out}")
        assert f"pid {first.pid}" in refused.stderr and "--wait" in refused.stderr
        waiter = subprocess.Popen(cli("batch", str(archive), "-o", str(out), "--wait"), cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert first.wait(timeout=300) == 1  # the corrupt file failed; everything else is done
        stdout, stderr = waiter.communicate(timeout=120)
    finally:
        for process in (first, waiter):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        log.close()
    assert "waiting for it to finish" in stderr, stderr
    assert waiter.returncode == 0 and "batch: 0 done, 7 skipped, 0 failed" in stdout
    assert_consistent(out, good=set(CLIPS))
    with Store.open(db) as store:
        assert [(b["status"], b["n_done"]) for b in store.batches()] == [("finished", 6), ("finished", 0)]


def test_ctrl_c_stops_a_pool_of_two_workers_cleanly_and_a_rerun_finishes(archive, tmp_path):
    # enough files that the batch is still busy when the first one is recorded (a 6 s clip takes under a second)
    extra = {f"season3/ep{i:02d}.mp4": (2 * i) % 36 for i in range(24)}
    make_archive(archive, extra, corrupt=False)
    good = set(CLIPS) | set(extra)
    out = tmp_path / "out"
    db = out / DB_NAME
    log = open(tmp_path / "first.log", "w+")
    # its own session, so that the SIGINT goes to the whole process group as Ctrl-C in a terminal does:
    # the batch, its worker processes and their ffmpeg children
    # a shell starts background jobs with SIGINT ignored, and Python keeps an inherited SIG_IGN: give the batch
    # the default disposition, as a terminal would, or a CI runner in the background makes Ctrl-C a no-op
    first = subprocess.Popen(cli("batch", str(archive), "-o", str(out), "--workers", "2"), cwd=REPO, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for(lambda: _count_done(db) >= 1, timeout=240, what="the first finished file", process=first)
        os.killpg(first.pid, signal.SIGINT)
        code = first.wait(timeout=60)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    log.seek(0)
    text = log.read()
    log.close()
    assert code == 130, text
    assert "dramapic: interrupted" in text and "Traceback" not in text, text
    workers = {int(r["worker"].rsplit(":", 1)[1]) for r in runs_table(db) if r["worker"]}
    assert os.getpid() not in workers and first.pid not in workers
    for pid in workers:  # the pool's processes went with the batch
        _wait_for(lambda: not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
                  .lower(), timeout=10, what=f"worker {pid} to exit")
    with Store.open(db) as store:
        assert [b["status"] for b in store.batches()] == ["interrupted"]
        assert store.integrity_check() == "ok"
    before = {r["path"]: r for r in runs_table(db)}

    again = subprocess.run(cli("batch", str(archive), "-o", str(out), "--workers", "2"), capture_output=True,
                           text=True, cwd=REPO, timeout=300)
    assert again.returncode in (0, 1) and "Traceback" not in again.stderr, again.stderr
    assert_consistent(out, good=good)
    after = {r["path"]: r for r in runs_table(db)}
    assert all(after[p] == r for p, r in before.items())
    second_batch = {r["worker"] for r in after.values() if r["batch_id"] == 2}
    assert 1 <= len(second_batch) <= 2  # two worker processes shared the rest


@pytest.mark.parametrize("missing", ["stage1-yamnet-lr", "speaker-lda"])
def test_a_missing_model_stops_the_batch_before_any_file(tmp_path, monkeypatch, missing):
    import shutil as _shutil

    from dramapic import resources
    from dramapic.errors import ModelError
    from dramapic.models import load_manifest

    root = tmp_path / "models"
    _shutil.copytree(resources.models_dir(), root)
    (root / load_manifest(root).get(missing).files[0].path).unlink()
    monkeypatch.setattr(resources, "models_dir", lambda: root)

    processed = []  # an exception raised here would be caught as the file's failure: record the call instead
    monkeypatch.setattr("dramapic.archive.batch.process_file", lambda *args, **kwargs: processed.append(args))
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "ep1.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(ModelError, match=missing):
        run_batch(archive, tmp_path / "out", pipeline=load_pipeline(None))
    assert processed == []


def test_a_batch_that_finds_no_media_says_so(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "notes.txt").write_text("not media")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(cli("batch", str(archive), "-o", str(tmp_path / "out"), "--no-progress",
                              "--extensions", "mkv"), capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no media files found" in lines[0] and "extensions: mkv" in lines[0], done.stderr
    assert "0 done, 0 skipped, 0 failed" in done.stdout


def test_quiet_batch_still_names_the_files_that_failed(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "broken.mp4").write_bytes(b"\x00" * 5000)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(cli("batch", str(archive), "-o", str(tmp_path / "out"), "-q"), capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 1 and done.stdout == "", (done.stdout, done.stderr)
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "broken.mp4" in lines[0] and "not a media file" in lines[0], done.stderr


def test_a_name_with_a_line_break_or_carriage_return_stays_on_its_one_line(tmp_path):
    # an archive file may be named with any character but "/": a newline in a name split its status line and its
    # summary line in two (a log reader's "one line per file" broken, a line after it forged), and a carriage return
    # sent the terminal back to the start of the line, overwriting the name's beginning with its end
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in ("bad\nname.mp4", "x\r=1.mp4"):
        (archive / name).write_bytes(b"\x00" * 5000)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # bytes: text mode would read each carriage return as a line end
    done = subprocess.run(cli("batch", str(archive), "-o", str(tmp_path / "out"), "-v"), capture_output=True,
                          env=env, timeout=300, check=False)
    stdout, stderr = done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    assert done.returncode == 1, stderr
    assert "\r" not in stdout + stderr
    for stream in (stdout, stderr):  # the summary's failures, and the per-file lines
        failed = [line for line in stream.split("\n") if "failed " in line]
        assert len(failed) == 2, stream
        assert any("bad\\nname.mp4: bad\\nname.mp4 is not a media file" in line for line in failed), stream
        assert any("x\\r=1.mp4: x\\r=1.mp4 is not a media file" in line for line in failed), stream


# -- a failed redo of a finished file ---------------------------------------------------------------------------

def _redo_fails(path, out_dir, *, rel, pipeline, options):
    """ep1's worker dies (the engine reports an exception); ep2's returns a failure, as process_file does."""
    if rel == "ep1.mp4":
        raise RuntimeError("worker lost")
    from dramapic.archive.batch import FileOutcome

    now = time.time()
    return FileOutcome(rel=rel, status="failed", key=expected_key(file_sha256_of(path), pipeline, options),
                       sha256=file_sha256_of(path), started=now, finished=now, seconds=0.5, worker="test:2",
                       error_type="MediaError", error="ffmpeg crashed on the redo")


def file_sha256_of(path) -> str:
    from dramapic.models import file_sha256

    return file_sha256(path)


def test_a_failed_redo_keeps_the_earlier_success(tmp_path, monkeypatch):
    # ep1 is redone because its content changed (a new key), ep2 because its outputs went missing (its own key);
    # both redos fail: the finished runs stay current and whole (their outputs are still the ones in OUT_DIR), the
    # failure is noted, and the next batch skips them as failed until --retry-failed
    from dramapic.archive.report import write_report

    archive = placeholder_archive(tmp_path / "archive", ("ep1.mp4", "ep2.mp4"))
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert run_batch(archive, out).done == 2
    first = {r["path"]: r for r in runs_table(out / DB_NAME)}
    (archive / "ep1.mp4").write_bytes(b"new content" * 100)
    (out / "ep2.dramapic.json").unlink()

    monkeypatch.setattr("dramapic.archive.batch.process_file", _redo_fails)
    redo = run_batch(archive, out)
    assert (redo.done, redo.failed) == (0, 2)
    runs = runs_table(out / DB_NAME)
    with Store.open(out / DB_NAME) as store:
        for path in ("ep1.mp4", "ep2.mp4"):
            current = store.run_by_id(store.known_file(path).current_run_id)
            assert current.status == "done" and current.id == first[path]["id"]
            assert store.query("SELECT count(*) FROM summaries WHERE run_id = ?", (current.id,))[0][0] == 1
            assert store.query("SELECT count(*) FROM segments WHERE run_id = ?", (current.id,))[0][0] > 0
        videos = {v.path: v for v in store.videos()}
    assert {v.status for v in videos.values()} == {"done"}
    assert videos["ep1.mp4"].error_type == "RuntimeError" and "worker lost" in videos["ep1.mp4"].error
    assert videos["ep2.mp4"].error == "ffmpeg crashed on the redo" and videos["ep2.mp4"].attempts == 2
    assert videos["ep2.mp4"].duration == 60.0 and videos["ep2.mp4"].genre == "drama"
    ep1 = [r for r in runs if r["path"] == "ep1.mp4"]  # the failure under the new content's key: a row of its own
    assert [r["status"] for r in ep1] == ["done", "failed"] and ep1[0]["key"] != ep1[1]["key"]
    assert len([r for r in runs if r["path"] == "ep2.mp4"]) == 1

    # reported as done with their result, the failed redo shown apart
    outputs = write_report(out, parquet=False)
    page = outputs.html.read_text(encoding="utf-8")
    assert "Failed files (0)" in page and "Redone and failed, earlier result kept (2)" in page
    assert "All videos (2)" in page and "ffmpeg crashed on the redo" in page
    import csv

    with open(outputs.csv, newline="", encoding="utf-8-sig") as handle:
        rows = {r["path"]: r for r in csv.DictReader(handle)}
    assert rows["ep1.mp4"]["status"] == "done" and float(rows["ep1.mp4"]["duration_s"]) == 60.0
    assert rows["ep2.mp4"]["error"] == "ffmpeg crashed on the redo"

    # the next batch skips them like any failure; --retry-failed redoes them, and a success clears the note
    def must_not_run(*args, **kwargs):
        raise AssertionError(f"re-processed {kwargs.get('rel')}")

    monkeypatch.setattr("dramapic.archive.batch.process_file", must_not_run)
    again = run_batch(archive, out)
    assert (again.done, again.failed, again.failed_earlier) == (0, 0, 2)
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    retried = run_batch(archive, out, options=BatchOptions(retry_failed=True))
    assert (retried.done, retried.failed) == (2, 0)
    with Store.open(out / DB_NAME) as store:
        videos = {v.path: v for v in store.videos()}
        assert all(v.status == "done" and v.error is None for v in videos.values())
        ep1 = store.run_by_id(store.known_file("ep1.mp4").current_run_id)
    assert ep1.id != first["ep1.mp4"]["id"] and ep1.key != first["ep1.mp4"]["key"]  # the new content's run
    assert (out / "ep2.dramapic.json").is_file()
    assert run_batch(archive, out).skipped == 2


def test_a_redo_that_wrote_its_outputs_and_then_failed_does_not_keep_the_earlier_run(tmp_path, monkeypatch):
    # the file changed while its redo was processed: the redo's outputs had replaced the finished run's, so that
    # run cannot stay current (its result is no longer what OUT_DIR holds); the next batch processes it again
    from dramapic.archive.batch import FileOutcome, expected_models

    archive = placeholder_archive(tmp_path / "archive", ("ep1.mp4",))
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert run_batch(archive, out).done == 1
    (out / "ep1.dramapic.json").unlink()  # outputs missing: redone under its own key

    def wrote_then_changed(path, out_dir, *, rel, pipeline, options):
        done = fake_done_worker(path, out_dir, rel=rel, pipeline=pipeline, options=options)  # outputs replaced
        # keyed as process_file keys it: by no content, so that the next batch sees the file "changed"
        return FileOutcome(rel=rel, status="failed", key=file_key(None, pipeline, expected_models(pipeline), options),
                           sha256=None, started=done.started,
                           finished=done.finished, seconds=done.seconds, worker=done.worker,
                           error_type="InputError", error="ep1.mp4 changed while it was being processed",
                           outputs_written=True)

    monkeypatch.setattr("dramapic.archive.batch.process_file", wrote_then_changed)
    assert run_batch(archive, out).failed == 1
    with Store.open(out / DB_NAME) as store:
        assert store.run_by_id(store.known_file("ep1.mp4").current_run_id).status == "failed"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    again = run_batch(archive, out)
    assert (again.done, again.failed_earlier) == (1, 0)


def test_an_archive_file_renamed_by_case_and_analysed_again_is_not_refused(tmp_path, monkeypatch):
    # ep01.mp4 done, then renamed EP01.mp4 (on Linux): its old ep01.* outputs are no other archive file's (find_media
    # gives case twins of one archive folders of their own), so the rename must not fail the file in every batch.
    # Analysed again here because the stand-in result's sha256 ("0" * 64) is not the file's: a rename whose results
    # are carried over is test_batch_moves' test_a_file_renamed_only_in_case_keeps_its_results_under_the_new_spelling
    import shutil

    from dramapic import run as run_module

    monkeypatch.setattr(run_module, "analyze", lambda *args, **kwargs: make_result())
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copyfile(SAMPLE, archive / "ep01.mp4")
    out = tmp_path / "out"
    assert run_batch(archive, out).done == 1
    (archive / "ep01.mp4").rename(archive / "EP01.mp4")
    again = run_batch(archive, out)
    assert (again.done, again.failed) == (1, 0), again.failures
    assert (out / "EP01.dramapic.json").is_file() or name_key("EP01.dramapic.json") in map(name_key, os.listdir(out))


def test_the_cli_says_when_a_failed_redo_kept_the_earlier_result(tmp_path, monkeypatch, capsys, caplog):
    # "2 failed" alone reads as two files without a result: the summary and each file's line say which failures
    # were redos that left the earlier result current (as the report's "Redone and failed, earlier result kept")
    from dramapic import cli

    archive = placeholder_archive(tmp_path / "archive", ("ep1.mp4", "ep2.mp4"))
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert run_batch(archive, out).done == 2
    (archive / "ep1.mp4").write_bytes(b"new content" * 100)
    (out / "ep2.dramapic.json").unlink()
    (archive / "ep3.mp4").write_bytes(b"never done" * 100)  # fails with no earlier result: plainly failed

    monkeypatch.setattr("dramapic.archive.batch.process_file", _redo_fails)
    assert cli.main(["batch", str(archive), "-o", str(out), "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "0 done, 0 skipped, 3 failed (earlier result kept: 2);" in captured.out, captured.out
    assert "  failed   ep1.mp4 (earlier result kept): the worker processing it failed" in captured.out
    assert "  failed   ep2.mp4 (earlier result kept): ffmpeg crashed on the redo" in captured.out
    assert "  failed   ep3.mp4: ffmpeg crashed on the redo" in captured.out
    assert "failed  ep2.mp4 (earlier result kept): ffmpeg crashed" in caplog.text, caplog.text  # the file's line
    assert "failed  ep3.mp4: ffmpeg crashed" in caplog.text

    assert cli.main(["batch", str(archive), "-o", str(out), "--no-progress"]) == 0  # all three skipped now
    captured = capsys.readouterr()
    assert ("3 file(s) failed in an earlier batch and were skipped, 2 of them with their earlier result kept"
            in captured.out), captured.out


def test_a_failed_redo_of_content_since_restored_does_not_block_the_runs_own_redo(tmp_path, monkeypatch):
    # ep2's new content fails; its old content comes back, so the kept run is current again: the note of the other
    # content's redo is cleared (nothing failed for this content), and when its outputs go missing the run is redone
    # as any finished file is, not skipped as "failed earlier" until --retry-failed
    archive = tmp_path / "archive"
    archive.mkdir()
    original = b"ep2.mp4" * 100
    (archive / "ep2.mp4").write_bytes(original)
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert run_batch(archive, out).done == 1
    (archive / "ep2.mp4").write_bytes(b"new content" * 100)
    monkeypatch.setattr("dramapic.archive.batch.process_file", _redo_fails)
    assert run_batch(archive, out).failed == 1
    with Store.open(out / DB_NAME) as store:
        (video,) = store.videos()
    assert video.status == "done" and video.error == "ffmpeg crashed on the redo"

    (archive / "ep2.mp4").write_bytes(original)
    plans = []
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert run_batch(archive, out, on_plan=plans.append).skipped == 1
    assert [(i.action, i.reason) for i in plans[-1].items] == [("skip", "done")]
    with Store.open(out / DB_NAME) as store:
        (video,) = store.videos()
    assert video.status == "done" and (video.error_type, video.error) == (None, None)

    (out / "ep2.dramapic.json").unlink()
    summary = run_batch(archive, out, on_plan=plans.append)
    assert [(i.action, i.reason) for i in plans[-1].items] == [("run", "outputs missing")]
    assert (summary.done, summary.failed_earlier) == (1, 0) and (out / "ep2.dramapic.json").is_file()

    # the other content's failure is still its own: back again, it is skipped as failed until --retry-failed
    (archive / "ep2.mp4").write_bytes(b"new content" * 100)
    assert run_batch(archive, out, on_plan=plans.append).failed_earlier == 1
    assert [(i.action, i.reason, i.kept) for i in plans[-1].items] == [("skip", "failed earlier", True)]


def test_a_failed_redo_under_the_runs_own_key_still_waits_for_retry_failed(tmp_path, monkeypatch):
    # the note of a redo under the run's own key (its outputs went missing, redoing them failed) is left as it is
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "ep2.mp4").write_bytes(b"ep2.mp4" * 100)
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert run_batch(archive, out).done == 1
    (out / "ep2.dramapic.json").unlink()
    monkeypatch.setattr("dramapic.archive.batch.process_file", _redo_fails)
    assert run_batch(archive, out).failed == 1
    plans = []
    assert run_batch(archive, out, on_plan=plans.append).failed_earlier == 1
    assert [(i.action, i.reason) for i in plans[-1].items] == [("skip", "failed earlier")]
    with Store.open(out / DB_NAME) as store:
        (video,) = store.videos()
    assert video.error == "ffmpeg crashed on the redo"


class _Bar:
    """Enough of a tqdm bar for BatchProgress (tqdm draws on a terminal only)."""

    def __init__(self, **kwargs) -> None:
        self.n, self.postfix = 0, ""

    def set_postfix_str(self, text, refresh=True):
        self.postfix = text

    def refresh(self):
        pass

    def close(self):
        pass

    @staticmethod
    def write(text, file=None):
        pass


def test_the_progress_bar_counts_failed_redos_that_kept_the_earlier_result(monkeypatch):
    # the live counter says what the final summary says: "2 failed" alone reads as two files without a result
    import types

    from dramapic.archive.batch import BatchEvent
    from dramapic.cli import BatchProgress

    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=_Bar))
    shown = BatchProgress(enabled=True)
    shown("batch", 0, 2)
    shown.file(BatchEvent(rel="ep1.mp4", status="failed", error="ffmpeg crashed", kept=True))
    shown("batch", 1, 2)
    assert shown._bar.postfix == "0.00 h audio, 1 failed (earlier result kept: 1)"
    shown.close()
    bar = BatchProgress(enabled=False)
    bar.file(BatchEvent(rel="ep1.mp4", status="failed", error="ffmpeg crashed", kept=True))
    bar.file(BatchEvent(rel="ep2.mp4", status="failed", error="ffmpeg crashed"))
    assert bar.counter() == "0.00 h audio, 2 failed (earlier result kept: 1)"
    bar.file(BatchEvent(rel="ep3.mp4", status="done", duration=7200.0, seconds=60.0, genre="drama"))
    assert bar.counter() == "2.00 h audio, 2 failed (earlier result kept: 1)"
    plain = BatchProgress(enabled=False)
    plain.file(BatchEvent(rel="ep4.mp4", status="failed", error="ffmpeg crashed"))
    assert plain.counter() == "0.00 h audio, 1 failed"  # no failure kept anything: nothing to add


def test_a_pool_is_never_larger_than_the_files_to_process(tmp_path, monkeypatch):
    # --workers 64 for two changed files: two workers (each loads the models and gets its share of the cores), and
    # one file alone a pool of one (a native crash then fails the file, not the batch)
    from dramapic.archive import engines

    archive = placeholder_archive(tmp_path / "archive", ("a.mp4", "b.mp4"))
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    asked = []
    real = engines.make_engine

    def recording(kind, *, workers=1, pool=None, **kwargs):
        asked.append((workers, type(real(kind, workers=workers, pool=pool)).__name__))  # a pool starts on first use
        return engines.SerialEngine()  # run them here: what is checked is the engine the batch asked for

    monkeypatch.setattr(engines, "make_engine", recording)
    assert run_batch(archive, out, options=BatchOptions(workers=64)).done == 2
    (archive / "b.mp4").write_bytes(b"changed" * 100)
    assert run_batch(archive, out, options=BatchOptions(workers=64)).done == 1
    # still a pool, of one: a crash in native code fails that file instead of the batch
    assert asked == [(2, "ProcessPoolEngine"), (1, "ProcessPoolEngine")]
    with Store.open(out / DB_NAME) as store:
        assert [b["workers"] for b in store.batches()] == [2, 1]


@pytest.mark.parametrize("workers", ["0", "-2", "two"])
def test_workers_below_one_is_a_usage_error(tmp_path, capsys, workers):
    # --workers 0 exited 4 (a configuration error) after the pipeline was read, where every other number checked
    # by argparse is a usage mistake: exit 2, one line, before anything runs
    from dramapic.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["batch", str(tmp_path), "-o", str(tmp_path / "out"), "--workers", workers])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "argument --workers: " in err[0] and "--help" in err[0], err
    assert not (tmp_path / "out").exists()


def test_more_workers_than_cores_is_warned_about_once(tmp_path, monkeypatch, caplog):
    # every worker process loads the models (about 0.6 GB each) and the cores are shared among them: --workers 16
    # on a 2-core machine costs memory and gains nothing, and nothing said so
    from dramapic.archive import engines

    archive = placeholder_archive(tmp_path / "archive", ("a.mp4", "b.mp4", "c.mp4", "d.mp4"))
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    monkeypatch.setattr("dramapic.archive.batch.available_cores", lambda: 2)
    monkeypatch.setattr(engines, "make_engine", lambda kind, **kwargs: engines.SerialEngine())

    def warnings(options, out):
        caplog.clear()
        assert run_batch(archive, tmp_path / out, options=options).failed == 0
        return [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "core" in r.getMessage()]

    said = warnings(BatchOptions(workers=16), "out16")
    assert len(said) == 1, said
    assert said[0].startswith("--workers 16: 4 worker processes on this machine's 2 cores: each loads the models"), \
        said[0]
    assert warnings(BatchOptions(workers=2), "out2") == []  # as many as the cores: nothing to say
    assert warnings(BatchOptions(workers=8), "out16") == []  # all done: no worker starts
    assert len(warnings(BatchOptions(workers=3, engine="dask"), "dask")) == 1  # a local Dask cluster: the same
    # a running cluster's workers are on its own machines, whatever this one has
    assert warnings(BatchOptions(workers=3, engine="dask", scheduler="tcp://10.0.0.5:8786"), "remote") == []


def test_files_gone_from_the_archive_are_left_out_of_the_report(tmp_path, monkeypatch, caplog):
    # a team reorganises its archive: a moved file was counted twice (old path and new), a deleted one forever. The
    # moved one is now one file under its new path (its results carried over: test_batch_moves.py), not gone
    from dramapic.archive.report import load_report_data, render_csv, render_html

    archive = tmp_path / "archive"
    (archive / "s1").mkdir(parents=True)
    for name in ("s1/ep1.mp4", "s1/ep2.mp4", "s1/ep3.mp4", "trailer.mp4"):
        (archive / name).write_bytes(name.encode() * 100)
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert run_batch(archive, out).done == 4
    (archive / "s2").mkdir()
    (archive / "s1/ep1.mp4").rename(archive / "s2/ep1.mp4")  # moved
    (archive / "s1/ep2.mp4").unlink()  # deleted
    # a batch whose filters leave trailer.mp4 out: it is still in the archive, still in the report
    again = run_batch(archive, out, options=BatchOptions(exclude=("trailer*",)))
    assert (again.done, again.skipped, again.moved) == (0, 2, (("s1/ep1.mp4", "s2/ep1.mp4"),))
    assert "1 file(s) recorded earlier are no longer in" in caplog.text
    data = load_report_data(out)
    assert [v.path for v in data.videos] == ["s1/ep3.mp4", "s2/ep1.mp4", "trailer.mp4"]
    assert data.missing == ("s1/ep2.mp4",) and data.totals()["videos"] == 3
    assert "1 file(s) recorded earlier are no longer in the archive" in render_html(data)
    assert "s1/ep2.mp4" not in render_csv(data) and "s1/ep1.mp4" not in render_csv(data)
    (archive / "s1/ep2.mp4").write_bytes(b"s1/ep2.mp4" * 100)  # restored: counted again, and not redone
    assert run_batch(archive, out).skipped == 4
    data = load_report_data(out)
    assert data.missing == () and len(data.videos) == 4


def test_a_batch_on_an_unmounted_or_other_archive_marks_nothing_gone(tmp_path, monkeypatch, caplog):
    # the archive's disk not mounted (an empty mount point), or a wrong folder: none of the recorded files is there.
    # Marking them all gone emptied the report until a batch on the right folder ran again
    from dramapic.archive.report import load_report_data

    archive, empty, other = tmp_path / "archive", tmp_path / "mnt", tmp_path / "other"
    placeholder_archive(archive, ("ep1.mp4", "ep2.mp4"))
    empty.mkdir()
    placeholder_archive(other, ("film.mp4",))
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert run_batch(archive, out).done == 2
    caplog.clear()
    assert run_batch(empty, out).found == 0
    warned = [r.getMessage() for r in caplog.records if "none of the 2 file(s) recorded" in r.getMessage()]
    assert len(warned) == 1 and "a different archive, or one not mounted" in warned[0], caplog.text
    assert "no longer in" not in caplog.text
    data = load_report_data(out)
    assert [v.path for v in data.videos] == ["ep1.mp4", "ep2.mp4"] and data.missing == ()
    assert run_batch(other, out).done == 1  # a wrong folder with media of its own: its files are added, none gone
    assert [v.path for v in load_report_data(out).videos] == ["ep1.mp4", "ep2.mp4", "film.mp4"]
    (archive / "ep2.mp4").unlink()  # the right archive again, one file really deleted: that one is gone
    caplog.clear()
    run_batch(archive, out)
    assert "2 file(s) recorded earlier are no longer in" in caplog.text  # ep2.mp4 and film.mp4
    assert [v.path for v in load_report_data(out).videos] == ["ep1.mp4"]


def test_an_archive_moved_whole_into_a_new_folder_is_not_taken_for_an_unmounted_one(tmp_path, monkeypatch, caplog):
    # every episode put into "Season 1/": not one recorded path is there, as on an empty mount point, but the files
    # are (same sizes, same modification times). Nothing was marked gone and the report counted every file twice
    from dramapic.archive.report import load_report_data

    archive = tmp_path / "archive"
    placeholder_archive(archive, ("ep1.mp4", "ep2.mp4"))
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert run_batch(archive, out).done == 2
    (archive / "Season 1").mkdir()
    for name in ("ep1.mp4", "ep2.mp4"):
        (archive / name).rename(archive / "Season 1" / name)
    caplog.clear()
    summary = run_batch(archive, out)
    assert "a different archive, or one not mounted" not in caplog.text
    # moved, not gone: their results go with them (test_batch_moves.py)
    assert "no longer in" not in caplog.text and (summary.done, len(summary.moved)) == (0, 2)
    assert [v.path for v in load_report_data(out).videos] == ["Season 1/ep1.mp4", "Season 1/ep2.mp4"]


def test_a_link_to_a_folder_holding_the_archive_is_not_followed(tmp_path, caplog):
    # "up -> ..": the walk followed it into the archive's parent and took its sibling folders' files as the archive's
    archive = tmp_path / "archive"
    placeholder_archive(archive, ("ep1.mp4",))
    (tmp_path / "other").mkdir()
    (tmp_path / "other/private.mp4").write_bytes(b"private" * 100)
    (archive / "up").symlink_to("..")
    (archive / "top").symlink_to("/")
    assert [f.rel for f in find_media(archive)] == ["ep1.mp4"]
    assert "skipped" in caplog.text and "which holds the archive" in caplog.text

def test_a_recorded_file_the_batch_cannot_look_at_is_not_a_traceback_nor_gone(tmp_path, monkeypatch):
    # a folder's permissions changed (or a stale share): Path.is_file raised PermissionError out of the batch, a
    # traceback before any file was processed; such a file is not known gone either
    import os as os_module

    from dramapic.archive import batch as batch_module

    archive = tmp_path / "archive"
    placeholder_archive(archive, ("open.mp4",))
    (archive / "locked").mkdir()
    (archive / "locked/ep.mp4").write_bytes(b"locked" * 100)
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert run_batch(archive, out).done == 2
    real_stat = os_module.stat

    def stat(path, *args, **kwargs):
        if "locked" in os_module.fspath(path):
            raise PermissionError(13, "Permission denied", os_module.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(batch_module.os, "stat", stat)
    assert batch_module._recorded_file_present(archive / "locked/ep.mp4")
    assert not batch_module._recorded_file_present(archive / "nothing.mp4")
    assert not batch_module._recorded_file_present(archive / "open.mp4/inside.mp4")  # a file where a folder was
    run_batch(archive, out, options=BatchOptions(include=("open*",)))  # locked/ep.mp4 left out: only stat can tell
    with Store.open(out / DB_NAME) as store:
        assert store.missing() == []

@pytest.mark.parametrize("before, after", [("NFC", "NFD"), ("NFD", "NFC")])
def test_an_archive_copied_with_its_names_in_the_other_unicode_form_is_not_done_again(tmp_path, monkeypatch, before,
                                                                                       after):
    # an archive copied from a macOS disk (Hangul names decomposed, NFD) to one that composes them (NFC), or back:
    # every file read as new, analysed again (hours) and counted twice in the report
    import unicodedata

    names = ("시즌1/드라마 1화.mp4", "시즌1/드라마 2화.mp4", "café.mp4")
    archive, out = tmp_path / "archive", tmp_path / "out"

    def copy(source, form):
        for name in names:
            (archive / unicodedata.normalize(form, name)).parent.mkdir(parents=True, exist_ok=True)
            if source is None:
                (archive / unicodedata.normalize(form, name)).write_bytes(name.encode() * 100)
            else:
                shutil.copy2(source / unicodedata.normalize(before, name), archive / unicodedata.normalize(form, name))

    copy(None, before)
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert run_batch(archive, out).done == 3
    outputs = sorted(p.relative_to(out) for p in out.rglob("*.dramapic.json"))
    shutil.move(archive, tmp_path / "old")
    copy(tmp_path / "old", after)
    assert sorted(f.rel for f in find_media(archive)) == sorted(unicodedata.normalize(after, n) for n in names)

    def must_not_run(*args, **kwargs):
        raise AssertionError("an unchanged file was processed again")

    monkeypatch.setattr("dramapic.archive.batch.process_file", must_not_run)
    again = run_batch(archive, out)
    assert (again.done, again.skipped, again.failed) == (0, 3, 0)
    with Store.open(out / DB_NAME) as store:
        assert store.missing() == []
        assert sorted(v.path for v in store.videos()) == sorted(unicodedata.normalize(after, n) for n in names)
        assert store.query("SELECT count(*) FROM files")[0][0] == 3
    assert sorted(p.relative_to(out) for p in out.rglob("*.dramapic.json")) == outputs  # none written elsewhere

    # the same checks as for any file: new content under the new spelling is redone, still one file
    (archive / unicodedata.normalize(after, names[2])).write_bytes(b"new content" * 100)
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert (run_batch(archive, out).done, run_batch(archive, out).skipped) == (1, 3)
    with Store.open(out / DB_NAME) as store:
        assert store.query("SELECT count(*) FROM files")[0][0] == 3 and store.missing() == []


def test_an_output_folder_copied_with_its_names_in_the_other_unicode_form_still_has_its_outputs(tmp_path,
                                                                                                 monkeypatch):
    # the output folder went along with its archive, its names decomposed too: its outputs are there, not missing
    import unicodedata

    name = "드라마 1화.mp4"
    archive, out = tmp_path / "archive", tmp_path / "out"
    placeholder_archive(archive, (name,))
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert run_batch(archive, out).done == 1
    (archive / name).rename(archive / unicodedata.normalize("NFD", name))
    (out / "드라마 1화.dramapic.json").rename(out / unicodedata.normalize("NFD", "드라마 1화.dramapic.json"))
    assert run_batch(archive, out).skipped == 1


def test_two_files_whose_names_differ_only_by_unicode_form_stay_two(tmp_path, monkeypatch):
    # on Linux "é" composed and decomposed are two names, two files: neither takes the other's record
    import unicodedata

    archive, out = tmp_path / "archive", tmp_path / "out"
    nfc, nfd = unicodedata.normalize("NFC", "café.mp4"), unicodedata.normalize("NFD", "café.mp4")
    placeholder_archive(archive, (nfc,))
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert run_batch(archive, out).done == 1
    (archive / nfd).write_bytes(b"another file" * 100)
    assert (run_batch(archive, out).done, run_batch(archive, out).skipped) == (1, 2)
    with Store.open(out / DB_NAME) as store:
        assert sorted(v.path for v in store.videos()) == sorted((nfc, nfd)) and store.missing() == []


def test_a_file_linked_to_another_of_the_archive_is_analysed_once(tmp_path, caplog):
    # latest.mp4 -> season2/ep10.mp4 was analysed twice (hours on a real archive) and counted twice in the reports
    archive, disk = tmp_path / "archive", tmp_path / "disk2"
    (archive / "season2").mkdir(parents=True)
    disk.mkdir()
    (archive / "season2" / "ep10.mp4").write_bytes(b"x")
    (archive / "latest.mp4").symlink_to(archive / "season2" / "ep10.mp4")  # met before its file in the walk
    (disk / "special.mp4").write_bytes(b"y")
    (archive / "a special.mp4").symlink_to(disk / "special.mp4")  # a file outside, linked in twice: once
    (archive / "b special.mp4").symlink_to(disk / "special.mp4")
    (archive / "outside.mp4").symlink_to(disk / "special.mp4")
    with caplog.at_level("WARNING", logger="dramapic"):
        found = [f.rel for f in find_media(archive)]
    assert found == ["a special.mp4", "season2/ep10.mp4"]
    assert "skipped latest.mp4: it is a symbolic link to season2/ep10.mp4, analysed under that name" in caplog.text
    assert "skipped b special.mp4: it is a symbolic link to a special.mp4" in caplog.text
    assert "skipped outside.mp4" in caplog.text
    # a hard link is a name of its own, as a copy would be: kept
    (archive / "season2" / "ep10 again.mp4").hardlink_to(archive / "season2" / "ep10.mp4")
    assert [f.rel for f in find_media(archive)] == ["a special.mp4", "season2/ep10 again.mp4", "season2/ep10.mp4"]


def test_a_folder_linked_into_the_archive_is_searched_and_a_link_loop_is_not(tmp_path, caplog):
    # season2 lives on another disk, linked into the archive: its files were silently left out (a linked file was
    # found, a linked folder not)
    archive, disk = tmp_path / "archive", tmp_path / "disk2"
    (disk / "season2").mkdir(parents=True)
    (disk / "season2" / "ep1.mp4").write_bytes(b"x")
    (archive / "season1").mkdir(parents=True)
    (archive / "season1" / "ep1.mp4").write_bytes(b"x")
    (archive / "season2").symlink_to(disk / "season2")
    # links to folders of the archive itself: their files are found where they are, a loop is not searched forever
    (archive / "season1" / "again").symlink_to(archive)
    (archive / "latest").symlink_to(archive / "season1")
    (archive / "season2 copy").symlink_to(disk / "season2")  # the same folder linked twice: its files once
    (disk / "season2" / "up").symlink_to(disk)  # a loop outside the archive
    with caplog.at_level("WARNING", logger="dramapic"):
        found = [(f.rel, f.output_dir) for f in find_media(archive)]
    assert found == [("season1/ep1.mp4", "season1"), ("season2/ep1.mp4", "season2")]
    assert caplog.text.count("searched already") == 2, caplog.text  # "season2 copy", season2/up/season2
