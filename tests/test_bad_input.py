"""Every kind of bad input gets one clear line on stderr, a non-zero exit, no traceback and no output file."""

from __future__ import annotations

import errno
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dramapic import media
from dramapic.errors import ConfigError
from helpers import REPO, SAMPLE, tone


def dramapic(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "dramapic", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def assert_clean_failure(done: subprocess.CompletedProcess, pattern: str, out_dir: Path | None = None,
                         before: set[str] | None = None) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("dramapic: error: ") and pattern in lines[0], lines[0]
    if out_dir is not None:
        assert set(os.listdir(out_dir)) == (before or set()), "partial output left behind"


def make_video(path: Path, *, audio: np.ndarray | None, seconds: float) -> Path:
    media.encode_test_video(path, seconds=seconds, audio=audio)
    return path


def test_missing_path(tmp_path: Path):
    assert_clean_failure(dramapic("run", str(tmp_path / "nope.mp4"), "-o", str(tmp_path)), "no such file",
                         tmp_path)


def test_standard_input_is_said_to_be_unsupported(tmp_path: Path, monkeypatch):
    """``run -`` said "no such file: -", as though a file had been asked for; a file that is named "-" is read."""
    from dramapic.analysis.analyze import check_input

    assert_clean_failure(dramapic("run", "-", cwd=tmp_path), "reading from standard input (-) is not supported",
                         tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("-").write_bytes(b"anything")
    assert check_input(Path("-")) == Path("-")


def test_a_broken_symbolic_link_or_a_loop_of_them_is_said_as_such(tmp_path: Path):
    """Both were "no such file", of a name that ls lists."""
    (tmp_path / "gone.mp4").symlink_to(tmp_path / "moved-away.mp4")
    (tmp_path / "a.mp4").symlink_to(tmp_path / "b.mp4")
    (tmp_path / "b.mp4").symlink_to(tmp_path / "a.mp4")
    before = set(os.listdir(tmp_path))
    assert_clean_failure(dramapic("run", str(tmp_path / "gone.mp4")),
                         f"gone.mp4 is a symbolic link to {tmp_path / 'moved-away.mp4'}, which does not exist",
                         tmp_path, before)
    assert_clean_failure(dramapic("run", str(tmp_path / "a.mp4")), "a.mp4 is a loop of symbolic links", tmp_path,
                         before)


def test_directory(tmp_path: Path):
    (tmp_path / "dir.mp4").mkdir()
    assert_clean_failure(dramapic("run", str(tmp_path / "dir.mp4")), "is a directory", tmp_path, {"dir.mp4"})


def test_text_file_renamed_mp4(tmp_path: Path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is a shopping list, not a video\n" * 50)
    assert_clean_failure(dramapic("run", str(path)), "not a media file", tmp_path, {"notes.mp4"})


def test_zero_length_file(tmp_path: Path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert_clean_failure(dramapic("run", str(tmp_path / "empty.mp4")), "empty", tmp_path, {"empty.mp4"})


def test_truncated_video(tmp_path: Path):
    data = SAMPLE.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    done = dramapic("run", str(path))
    assert_clean_failure(done, "cut.mp4", tmp_path, {"cut.mp4"})


def test_truncated_stream_is_analysed_when_little_is_lost_but_refused_when_much_is(tmp_path: Path):
    # an MPEG-TS recording cut mid-packet still opens; the analysis goes on with what decodes ...
    full = tmp_path / "full.ts"
    media._run([media.ffmpeg_exe(), "-v", "error", "-i", str(SAMPLE), "-c", "copy", str(full)], what="remux")
    data = full.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) // 2])
    info = media.probe(cut)
    assert media.decode_audio(info).shape[0] > 16000 * 0.4 * media.probe(full).duration
    # ... but a container that promises much more than decodes is refused as truncated
    claims_more = media.MediaInfo(info.path, info.duration * 3, info.streams)
    with pytest.raises(media.MediaError, match="truncated"):
        media.decode_audio(claims_more)


def test_corrupted_video(tmp_path: Path):
    data = bytearray(SAMPLE.read_bytes())
    rng = np.random.default_rng(0)
    data[: 4096] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()  # header destroyed
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(data))
    assert_clean_failure(dramapic("run", str(path)), "corrupt.mp4", tmp_path, {"corrupt.mp4"})


def test_video_without_audio(tmp_path: Path):
    make_video(tmp_path / "silent film.mp4", audio=None, seconds=2)
    assert_clean_failure(dramapic("run", str(tmp_path / "silent film.mp4")), "no audio stream", tmp_path,
                         {"silent film.mp4"})


def test_a_failed_run_removes_the_output_folders_it_made_but_not_those_it_found(tmp_path: Path):
    make_video(tmp_path / "silent film.mp4", audio=None, seconds=2)
    made = tmp_path / "new" / "deeper"
    assert_clean_failure(dramapic("run", str(tmp_path / "silent film.mp4"), "-o", str(made)), "no audio stream")
    assert not (tmp_path / "new").exists(), "an empty output folder was left behind"
    assert_clean_failure(dramapic("run", str(tmp_path / "silent film.mp4"), "-o", str(tmp_path / "a" / ".." / "b")),
                         "no audio stream")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    found = tmp_path / "found"
    found.mkdir()
    assert_clean_failure(dramapic("run", str(tmp_path / "silent film.mp4"), "-o", str(found / "sub")),
                         "no audio stream", found)
    assert found.is_dir()


def test_audio_shorter_than_one_second(tmp_path: Path):
    make_video(tmp_path / "short.mp4", audio=tone(0.5), seconds=0.5)
    assert_clean_failure(dramapic("run", str(tmp_path / "short.mp4")), "at least 1 s", tmp_path, {"short.mp4"})


def test_float_audio_with_nan_or_infinite_samples_is_refused_in_one_line(tmp_path: Path):
    import soundfile

    audio = tone(4.0)
    audio[16000:16100] = np.nan  # a 32-bit float WAV carries these as they are; ffmpeg passes them on
    audio[32000:32050] = np.inf
    soundfile.write(tmp_path / "broken.wav", audio, 16000, subtype="FLOAT")
    assert_clean_failure(dramapic("run", str(tmp_path / "broken.wav")), "NaN or infinite", tmp_path,
                         {"broken.wav"})


def test_an_input_that_vanishes_during_the_analysis_is_an_input_error(tmp_path: Path, monkeypatch):
    from dramapic.analysis.analyze import analyze
    from dramapic.errors import InputError

    source = make_video(tmp_path / "moved away.mp4", audio=tone(3.0), seconds=3.0)
    decode = media.stream_audio

    def decode_then_move(*args, **kwargs):  # the file goes once its audio has been read (a share unmounted)
        yield from decode(*args, **kwargs)
        source.unlink()

    monkeypatch.setattr(media, "stream_audio", decode_then_move)
    with pytest.raises(InputError, match="cannot read .*moved away.mp4 any more"):
        analyze(source)


def test_output_directory_not_writable(tmp_path: Path):
    if os.geteuid() == 0:
        # root writes anywhere; a path under a regular file is unwritable for everyone
        blocker = tmp_path / "file"
        blocker.write_text("x")
        out = blocker / "out"
        expected = "cannot create output directory"
    else:
        out = tmp_path / "locked"
        out.mkdir()
        out.chmod(0o500)
        expected = "not writable"
    assert_clean_failure(dramapic("run", str(SAMPLE), "-o", str(out)), expected)


def test_output_directory_read_only_mode(tmp_path: Path):
    from dramapic.errors import OutputError
    from dramapic.writers import OutputSet

    out = tmp_path / "locked"
    out.mkdir()
    out.chmod(0o500)
    try:
        if os.access(out, os.W_OK):
            pytest.skip("running as root: permission bits do not stop writes")
        with pytest.raises(OutputError, match="not writable"):
            OutputSet().check([out / "a.srt"])
    finally:
        out.chmod(0o700)


def test_existing_outputs_are_refused_without_overwrite(tmp_path: Path):
    shutil.copy(SAMPLE, tmp_path / "movie.mp4")
    earlier = "1\n00:00:00,000 --> 00:00:01,000\nvoice (0.90)\n\n"  # an earlier run's cues
    (tmp_path / "movie.srt").write_text(earlier, encoding="utf-8")
    done = dramapic("run", str(tmp_path / "movie.mp4"), "--no-video")
    assert_clean_failure(done, "output already exists", tmp_path, {"movie.mp4", "movie.srt"})
    assert (tmp_path / "movie.srt").read_text(encoding="utf-8") == earlier


def test_an_input_named_like_its_output_is_never_replaced_by_it(tmp_path: Path):
    shutil.copy(SAMPLE, tmp_path / "clip.srt")  # a video saved under a subtitle's name: ffmpeg reads it anyway
    done = dramapic("run", str(tmp_path / "clip.srt"), "--overwrite", "--no-video")
    assert_clean_failure(done, "is the input itself", tmp_path, {"clip.srt"})
    assert (tmp_path / "clip.srt").read_bytes() == SAMPLE.read_bytes()


def test_unknown_audio_track(tmp_path: Path):
    assert_clean_failure(dramapic("run", str(SAMPLE), "-o", str(tmp_path), "--audio-track", "3"),
                         "--audio-track 3", tmp_path)


def test_a_negative_audio_track_is_a_usage_mistake_refused_before_any_work(tmp_path: Path):
    # as batch refuses it (exit 4, configuration), not a media error (3) once ffmpeg has probed the file
    done = dramapic("run", str(SAMPLE), "-o", str(tmp_path / "out"), "--audio-track", "-1")
    assert done.returncode == ConfigError.exit_code, done.stderr
    assert_clean_failure(done, "--audio-track must be 0 or more (tracks are numbered from 0), not -1")
    assert not (tmp_path / "out").exists()


def test_bad_pipeline_file(tmp_path: Path):
    bad = tmp_path / "p.yaml"
    bad.write_text("render:\n  crf: 99\n")
    out = tmp_path / "out"
    out.mkdir()
    assert_clean_failure(dramapic("run", str(SAMPLE), "-o", str(out), "--pipeline", str(bad)), "crf", out)


def test_unicode_and_spaces_in_paths_work(tmp_path: Path):
    folder = tmp_path / "드라마 폴더 (1)"
    folder.mkdir()
    source = folder / "제 1화 it's: a,b [final].mp4"
    make_video(source, audio=tone(3.0, level=0.2) + tone(3.0, freq=220, level=0.1), seconds=3.0)
    done = dramapic("run", str(source), "--quiet")
    assert done.returncode == 0, done.stderr
    stem = source.stem
    assert sorted(os.listdir(folder)) == sorted([source.name, f"{stem}.srt", f"{stem}.dramapic.json",
                                                 f"{stem}.rttm", f"{stem}.dramapic.mp4"])



def test_a_path_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path):
    raw = os.fsencode(tmp_path) + b"/caf\xe9.mp4"  # Latin-1 bytes, as copied from an old share
    shutil.copy(SAMPLE, raw)
    before = set(os.listdir(tmp_path))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "dramapic", "run", raw, "--no-video"], capture_output=True,
                          text=True, env=env, timeout=600)
    assert_clean_failure(done, "not valid UTF-8", tmp_path, before)
    assert "caf\\xe9.mp4" in done.stderr  # the name as it is, not as mojibake


def _run_json(tmp_path: Path) -> Path:
    from dramapic.writers import get_writer
    from helpers import make_archive_result

    path = tmp_path / "film.dramapic.json"
    get_writer("json").write(make_archive_result("/videos/film.mp4", duration=30.0), path)
    return path


def test_standard_output_on_a_full_disk_is_one_line(tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "dramapic", "report", str(_run_json(tmp_path))],
                              stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    assert done.returncode == 6 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == "dramapic: error: cannot write to standard output: No space left on device"


def test_a_closed_standard_output_ends_quietly(tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line (| head -0)
    try:
        done = subprocess.run([sys.executable, "-m", "dramapic", "report", str(_run_json(tmp_path))],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == "", done.stderr
    assert (tmp_path / "film.report.html").is_file()  # the work itself was done


class _GoneTerminal(io.TextIOBase):
    """The standard error of a command whose terminal has gone (the ssh session ended): every write fails."""

    def write(self, text):
        raise OSError(errno.EIO, "Input/output error")

    def fileno(self):
        raise io.UnsupportedOperation("no file descriptor")  # nothing to redirect: the write alone is dropped


def test_an_error_line_that_cannot_be_written_still_ends_with_the_error_code(tmp_path: Path):
    # stderr's reader gone (`dramapic ... 2>&1 | head -0`): the failed print of the one line raised, and the command
    # ended with 1 (and a traceback nobody saw) instead of the input error's 2
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "dramapic", "report", str(tmp_path / "missing.json")], check=False,
                              stdout=subprocess.PIPE, stderr=write_end, text=True, env=env, timeout=300)
    finally:
        os.close(write_end)
    assert done.returncode == 2, done.returncode


def test_a_hang_up_whose_terminal_has_gone_still_exits_129(monkeypatch):
    # a closed ssh session: SIGHUP ends the command, and its terminal fails every write with EIO; the one line
    # could not be printed, and the exit code was 1 (a failure) where 129 says it was hung up
    import signal

    from dramapic import cli
    from dramapic.lifecycle import Terminated

    def hung_up(args, progress):
        raise Terminated(signal.SIGHUP)

    monkeypatch.setattr(cli, "_cmd_report", hung_up)
    monkeypatch.setattr(cli, "_setup_logging", lambda verbose, quiet: None)
    monkeypatch.setattr(sys, "stderr", _GoneTerminal())
    assert cli.main(["report", "x.json"]) == 129



def test_a_report_that_cannot_reach_a_gone_terminal_still_ends_as_the_work_did(monkeypatch):
    """A batch left running in the background of a closed session finished the archive, then its summary line met
    the gone terminal (EIO) and the command exited 6, "output error", though every result was kept. The line is
    dropped and the exit code is the work's; a full disk behind a redirection stays an output error."""
    from dramapic import cli
    from dramapic.errors import OutputError

    def finished(args, progress):
        cli._print("batch: 3 done, 0 skipped, 0 failed")
        return 0

    monkeypatch.setattr(cli, "_cmd_report", finished)
    monkeypatch.setattr(cli, "_setup_logging", lambda verbose, quiet: None)
    monkeypatch.setattr(cli, "_to_devnull", lambda stream: None)
    monkeypatch.setattr(sys, "stdout", _GoneTerminal())
    monkeypatch.setattr(cli, "_on_terminal", lambda stream: True)
    assert cli.main(["report", "x.json"]) == 0
    # the same error from a file behind a redirection (a failing disk, a network share) loses what it was for
    monkeypatch.setattr(cli, "_on_terminal", lambda stream: False)
    with pytest.raises(OutputError, match="Input/output error"):
        cli._print("a line")

    class _FullDisk(_GoneTerminal):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sys, "stdout", _FullDisk())
    with pytest.raises(OutputError, match="No space left on device"):
        cli._print("a line")


def test_a_terminal_is_told_from_a_file_and_a_pipe(tmp_path: Path):
    from dramapic.cli import _on_terminal

    leader, follower = os.openpty()
    try:
        with open(follower, "w", closefd=False) as tty, open(tmp_path / "out.txt", "w") as file:
            assert _on_terminal(tty) and not _on_terminal(file) and not _on_terminal(_GoneTerminal())
    finally:
        os.close(leader)
        os.close(follower)
    read_end, write_end = os.pipe()
    with open(write_end, "w") as pipe:
        assert not _on_terminal(pipe)
    os.close(read_end)


@pytest.mark.parametrize("bar", [True, False])
def test_a_batch_whose_terminal_has_gone_goes_on(monkeypatch, bar):
    # `dramapic batch ... &`, then `exit`: bash sends no SIGHUP to its jobs (huponexit is off), so the batch goes on
    # with a terminal that fails every write (EIO); its next "done" line raised, and the batch stopped there with a
    # traceback, the rest of the archive never done
    from dramapic.archive.batch import BatchEvent
    from dramapic.cli import BatchProgress

    monkeypatch.setattr(sys, "stderr", _GoneTerminal())
    progress = BatchProgress(enabled=True)
    if bar:
        progress("batch", 0, 3)  # tqdm's own drawing drops what fails with EIO: only the lines between raised
    progress.file(BatchEvent(rel="ep1.mp4", status="done", duration=10.0, seconds=1.0, genre="drama", n_speakers=2))
    progress.file(BatchEvent(rel="ep2.mp4", status="failed", error="ffmpeg crashed"))
    progress.waiting("another batch holds the folder")
    progress("batch", 2, 3)
    progress.close()
    assert progress.counter() == "0.00 h audio, 1 failed"


def test_a_full_temporary_disk_is_a_clean_error(monkeypatch):
    # the streamed analysis spools the decoded audio to TMPDIR (about 230 MB per hour): a full or unusable disk
    # there is an OutputError with advice, never an OSError traceback
    import errno
    import io
    import tempfile

    from dramapic.analysis import analyze as analysis
    from dramapic.errors import OutputError

    def no_folder(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(tempfile, "TemporaryDirectory", no_folder)
        with pytest.raises(OutputError, match="temporary folder.*TMPDIR"):
            analysis.analyze(SAMPLE)

    class FullDisk(io.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(analysis, "open", lambda *args, **kwargs: FullDisk(), raising=False)
    with pytest.raises(OutputError, match="spool.*No space left"):
        analysis.analyze(SAMPLE)
