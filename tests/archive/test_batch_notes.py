"""Each archive file's notes: what ``dramapic run`` tells its user about an input (a DC offset, a stale subtitle file
in the other format, fewer speakers than asked for) reaches the batch's output, one line naming the file, and the
archive's database; and a batch warning naming a path stays one line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, make_archive_result, placeholder_archive, runs_table, tone

from dramapic.archive.batch import BatchEvent, process_file, run_batch
from dramapic.archive.store import DB_NAME, Store
from dramapic.config import load_pipeline
from dramapic.errors import MediaError


def _run_with_notes(path, *, options, pipeline=None, progress=None):
    """``dramapic.run.run`` for a file with something to say: a warning logged while it is analysed (a DC offset),
    and for noisy.mp4 a note returned with its outputs (a stale subtitle file); bad.mp4 then fails, clean.mp4 has
    nothing to say."""
    from dramapic.run import RunOutputs

    path = Path(path)
    if path.name != "clean.mp4":
        logging.getLogger("dramapic.media").warning("%s: its audio has a DC offset of %+.3f", path.name, 0.05)
    if path.name == "bad.mp4":
        raise MediaError("ffmpeg crashed")
    result = make_archive_result(path.name)
    output = Path(options.output_dir) / f"{path.stem}.dramapic.json"
    output.write_text(json.dumps(result.to_dict()), encoding="utf-8")
    notes = (f"{path.stem}.vtt is left from an earlier run",) if path.name == "noisy.mp4" else ()
    return RunOutputs(result=result, files={"json": output}, notes=notes)


@pytest.mark.parametrize("level", [logging.WARNING, logging.ERROR])  # ERROR: the log of a batch run with --quiet
def test_a_files_notes_reach_its_event_and_the_database_and_are_not_logged_bare(tmp_path, monkeypatch, caplog,
                                                                                 level):
    # a batch dropped the notes `dramapic run` prints (RunOutputs.notes), and the warnings logged while a file was
    # analysed went bare to the log of whichever process analysed it, without the file's archive path (a remote
    # worker's: lost); --quiet dropped them before anything could keep them
    archive = placeholder_archive(tmp_path / "archive", ("noisy.mp4", "clean.mp4", "bad.mp4"))
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.run.run", _run_with_notes)
    logger = logging.getLogger("dramapic")
    events: list[BatchEvent] = []
    with caplog.at_level(level, logger="dramapic"):
        summary = run_batch(archive, out, on_file=events.append)
        assert (logger.level, logger.propagate, logger.handlers) == (level, True, [])  # as it was
    assert (summary.done, summary.failed) == (2, 1)
    dc = "{}: its audio has a DC offset of +0.050"
    assert {e.rel: e.notes for e in events} == {
        "noisy.mp4": (dc.format("noisy.mp4"), "noisy.vtt is left from an earlier run"),
        "clean.mp4": (), "bad.mp4": (dc.format("bad.mp4"),)}  # a failed file's too: they may say why
    # said once, by the batch's line naming the file, not also bare in the log
    assert not [r for r in caplog.records if "DC offset" in r.getMessage()]
    runs = {r["path"]: r for r in runs_table(out / DB_NAME)}
    assert {p: json.loads(r["notes_json"]) for p, r in runs.items()} == {
        "noisy.mp4": [dc.format("noisy.mp4"), "noisy.vtt is left from an earlier run"], "clean.mp4": [],
        "bad.mp4": [dc.format("bad.mp4")]}
    with Store.open(out / DB_NAME) as store:
        assert {v.path: v.notes for v in store.videos()}["noisy.mp4"] == (
            dc.format("noisy.mp4"), "noisy.vtt is left from an earlier run")


def test_process_file_keeps_only_its_own_threads_warnings_and_lets_the_rest_through(tmp_path, monkeypatch, caplog):
    # a Dask worker runs tasks in threads: another thread's warning is no note of this file, and still logged;
    # records below the warning level go on as before (-v)
    import threading

    source = tmp_path / "noisy.mp4"
    source.write_bytes(b"x" * 100)

    def run(path, *, options, pipeline=None, progress=None):
        other = threading.Thread(target=lambda: logging.getLogger("dramapic.engines").warning("another file's"))
        other.start()
        other.join()
        logging.getLogger("dramapic.run").info("an INFO line")
        return _run_with_notes(path, options=options)

    monkeypatch.setattr("dramapic.run.run", run)
    pipeline = load_pipeline(None)
    with caplog.at_level(logging.INFO, logger="dramapic"):
        outcome = process_file(source, tmp_path / "out", rel="s1/noisy.mp4", pipeline=pipeline)
    assert outcome.status == "done", outcome.error
    assert outcome.notes == ("noisy.mp4: its audio has a DC offset of +0.050", "noisy.vtt is left from an earlier run")
    assert outcome.to_dict()["notes"] == list(outcome.notes)
    assert [r.getMessage() for r in caplog.records] == ["another file's", "an INFO line"]


def test_the_batch_shows_each_note_on_a_line_naming_the_file_and_not_with_quiet(monkeypatch, caplog, capsys):
    from dramapic.cli import BatchProgress

    event = BatchEvent(rel="s1/ep\n01.mp4", status="done", duration=6.0, seconds=2.0, genre="drama",
                       notes=("ep\n01.mp4: its audio has a DC offset of +0.050", "ep\r01.vtt is left"))
    with caplog.at_level(logging.WARNING, logger="dramapic"):
        BatchProgress(enabled=False).file(event)
    # the file named once, by its archive path: the note's own "ep01.mp4: " at its start is not said again
    assert [r.getMessage() for r in caplog.records] == [
        "note    s1/ep\\n01.mp4: its audio has a DC offset of +0.050",
        "note    s1/ep\\n01.mp4: ep\\r01.vtt is left"]
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="dramapic"):  # --quiet: errors only
        BatchProgress(enabled=False).file(event)
    assert caplog.records == []
    BatchProgress(enabled=True).file(event)  # a terminal before the bar is drawn
    assert "note    s1/ep\\n01.mp4: ep\\r01.vtt is left\n" in capsys.readouterr().err


@pytest.mark.parametrize(("rel", "note", "shown"), [
    ("s1/ep01.mp4", "ep01.mp4: its audio has a DC offset", "its audio has a DC offset"),
    ("ep01.mp4", "ep01.mp4: its audio has a DC offset", "its audio has a DC offset"),
    ("s1/ep01.mp4", "ep01.vtt is left from an earlier run", "ep01.vtt is left from an earlier run"),  # another name
    ("s1/ep01.mp4", "ep01.mp4x: a note", "ep01.mp4x: a note"),
    ("s1/ep01.mp4", "the file ep01.mp4: later in the note", "the file ep01.mp4: later in the note"),
    ("시즌1/\u1112\u1161\u11ab.mp4", "\ud55c.mp4: its audio has a DC offset", "its audio has a DC offset"),  # NFD, NFC
])
def test_a_note_is_shown_without_the_file_name_its_line_names_already(rel, note, shown):
    from dramapic.archive.notes import unnamed

    assert unnamed(note, rel) == shown


def _dc_offset_wav(path: Path, seconds: float = 3.0) -> None:
    samples = np.clip(tone(seconds) + 0.05, -1.0, 1.0)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes((samples * 32767).astype("<i2").tobytes())


def test_a_batch_shows_and_keeps_a_files_notes(tmp_path):
    # the whole path: a real file whose audio has a DC offset (its name with a newline), analysed by `dramapic batch`:
    # its note on one line naming the file, in the database, and in the archive's report
    archive = tmp_path / "archive"
    (archive / "s1").mkdir(parents=True)
    _dc_offset_wav(archive / "s1" / "dc\noffset.wav")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "dramapic", "batch", str(archive), "-o", str(out),
                           "--extensions", "+wav"], capture_output=True, env=env, timeout=600, check=False)
    stderr = done.stderr.decode("utf-8")
    assert done.returncode == 0, stderr
    (note,) = [line for line in stderr.split("\n") if "DC offset" in line]
    assert "note    s1/dc\\noffset.wav: its audio has a DC offset of +0.050" in note, stderr
    (run,) = runs_table(out / DB_NAME)
    assert any("DC offset of +0.050" in n for n in json.loads(run["notes_json"])), run["notes_json"]
    from dramapic.archive.report import write_report

    page = write_report(out).html.read_text(encoding="utf-8")
    notes = page[page.index('<section id="notes">'):]
    assert "s1/dc\noffset.wav" in notes and "its audio has a DC offset of +0.050" in notes


def test_batch_warnings_naming_a_path_stay_one_line(tmp_path):
    # "skipped X: it is a symbolic link to Y", "skipped X: it links to Y, which holds the archive", "cannot read X":
    # a newline in a name split the warning in two (a log reader's line forged), a carriage return sent the terminal
    # back over its start. The batch's own lines escaped them; its warnings did not
    archive = tmp_path / "archive"
    (archive / "s1").mkdir(parents=True)
    (archive / "s1" / "ep\n01.mp4").write_bytes(b"\x00" * 5000)
    os.symlink("ep\n01.mp4", archive / "s1" / "la\rtest.mp4")
    os.symlink("..", archive / "up\nthere")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "dramapic", "batch", str(archive), "-o", str(tmp_path / "out")],
                          capture_output=True, env=env, timeout=600, check=False)
    stdout, stderr = done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    assert done.returncode == 1, stderr  # the file itself is no media
    assert "\r" not in stdout + stderr
    lines = stderr.split("\n")
    (link,) = [line for line in lines if "symbolic link" in line]
    assert "skipped s1/la\\rtest.mp4: it is a symbolic link to s1/ep\\n01.mp4" in link, stderr
    (up,) = [line for line in lines if "holds the archive" in line]
    assert "up\\nthere: it links to " in up, stderr


def test_a_log_line_escapes_its_message_but_a_traceback_keeps_its_lines():
    from dramapic.cli import _OneLineFormatter

    formatter = _OneLineFormatter("%(levelname)s %(name)s: %(message)s")
    record = logging.LogRecord("dramapic.archive.batch", logging.WARNING, __file__, 1, "cannot read %s: %s",
                               ("s1/bad\nfolder\r", "Permission denied"), None)
    assert formatter.format(record) == \
        "WARNING dramapic.archive.batch: cannot read s1/bad\\nfolder\\r: Permission denied"
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("dramapic", logging.DEBUG, __file__, 1, "a\nb", (), sys.exc_info())
    shown = formatter.format(record).split("\n")
    assert shown[0] == "DEBUG dramapic: a\\nb" and shown[1] == "Traceback (most recent call last):"
