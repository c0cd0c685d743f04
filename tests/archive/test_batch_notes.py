"""Batch warnings naming a path (``skipped X: it is a symbolic link to Y``) stay one line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from helpers import REPO


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
