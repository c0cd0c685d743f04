"""A command started with a standard stream closed by the shell (``dramapic run x.mp4 2>&-``, a cron line with
``>&-``) keeps its exit code, and no file it opens takes the closed stream's number."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run_with_closed(fds: tuple[int, ...], code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

    def close_them() -> None:  # in the child, after its streams are set up and before Python starts
        for fd in fds:
            os.close(fd)

    return subprocess.run([sys.executable, "-c", code], preexec_fn=close_them, env=env, timeout=120, check=False,
                          stdout=subprocess.PIPE if 1 not in fds else None,
                          stderr=subprocess.PIPE if 2 not in fds else None)


@pytest.mark.parametrize("fds", [(2,), (1,), (0, 1, 2)], ids=["stderr", "stdout", "all three"])
def test_a_missing_file_still_exits_2_with_a_stream_closed(tmp_path, fds):
    # with standard error closed, the one error line failed (sys.stderr is None) and the command ended with 1
    code = ("import sys; from dramapic.cli import main; "
            f"sys.exit(main(['run', {str(tmp_path / 'missing.mp4')!r}, '-o', {str(tmp_path / 'out')!r}]))")
    assert _run_with_closed(fds, code).returncode == 2


def test_a_closed_standard_error_gets_dev_null_not_the_next_file(tmp_path):
    # the next file opened took number 2, so what a native library or a child writes to standard error landed in it
    probe = tmp_path / "probe.txt"
    code = ("import os, sys; from dramapic.cli import main; main(['run', '/nonexistent/x.mp4']); "
            f"f = open({str(probe)!r}, 'w'); os.write(2, b'native library noise'); f.write(str(f.fileno())); f.close(); "
            "sys.exit(0 if os.path.samefile('/proc/self/fd/2', os.devnull) else 5)")
    done = _run_with_closed((2,), code)
    assert done.returncode == 0
    assert probe.read_text() != "2"


def test_an_error_naming_a_file_with_a_line_break_is_still_one_line(tmp_path):
    # 'dramapic run' of a missing 'bad\nname.mp4' split its one error line in two
    missing = tmp_path / "bad\nname.mp4"
    done = subprocess.run([sys.executable, "-m", "dramapic", "run", str(missing), "-o", str(tmp_path / "out")],
                          capture_output=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])})
    assert done.returncode == 2
    assert done.stderr.decode("utf-8").splitlines() == [f"dramapic: error: no such file: {tmp_path}/bad\\nname.mp4"]
