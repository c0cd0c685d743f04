"""Faults from outside: signals to real processes, a batch killed with SIGKILL, a full disk.

Each test runs ``dramapic`` as a subprocess with its own ``TMPDIR`` and checks what is left afterwards: no
temporary outputs, no spool or scratch folders, no ffmpeg or pool worker still running.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dramapic import media
from dramapic.errors import OutputError
from dramapic.archive.store import DB_NAME, Store
from helpers import REPO, SAMPLE, make_record, process_alive


# -- helpers -----------------------------------------------------------------------------------------------------

def _as_from_a_terminal() -> None:
    """The signal dispositions of a command typed at a terminal: the test suite itself may run under ``nohup`` or
    as a shell's background job, which ignore SIGHUP and SIGINT, and dramapic keeps a signal it was started
    ignoring ignored (nohup's promise), so the signals these tests send would do nothing."""
    for signum in (signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)


def start(*args: str, tmp: Path, cwd: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "dramapic", *args, "--no-progress"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_from_a_terminal)


def children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid: int) -> set[int]:
    tree, found, todo = children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def wait_for(condition, *, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"dramapic ended (code {proc.returncode}) before {what}: {proc.stderr.read()}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def ours(tmp: Path) -> list[str]:
    """dramapic's entries in a TMPDIR (libraries may leave their own files there)."""
    return sorted(n for n in os.listdir(tmp) if n.startswith("dramapic"))


def assert_gone(pids: set[int], *, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(process_alive(p) for p in pids):
        time.sleep(0.2)
    left = {p: command_line(p) for p in pids if process_alive(p)}
    for pid in left:  # do not leave them running for the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert not left, f"still running: {left}"


@pytest.fixture(scope="module")
def long_input(tmp_path_factory) -> Path:
    """A 60-s 720p video (the sample's audio, looped): burn-in takes long enough to be interrupted."""
    path = tmp_path_factory.mktemp("long") / "long.mkv"
    media.loop_media(SAMPLE, path, seconds=60, size="1280x720")
    return path


def finish(proc: subprocess.Popen, *, timeout: float) -> str:
    """stderr once ``proc`` has ended; an orphaned child holding the pipes must not hang the test (it is reported
    by :func:`assert_gone` instead)."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "(stderr unread: a child still holds the pipe)"


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


# -- 1. SIGTERM / SIGHUP on `dramapic run` ------------------------------------------------------------------------

def start_burning(tmp_path: Path, long_input: Path, tag: str) -> tuple[subprocess.Popen, Path, Path, set[int]]:
    """`dramapic run` on ``long_input`` linked as ``TAG.mkv`` (a unique name: its ffmpeg child is found by it), once
    its encoder has written into the temporary output: the run, its output and TMPDIR folders and the encoder pids.
    A run that never gets there is killed."""
    source = tmp_path / f"{tag}.mkv"
    os.link(long_input, source)
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    proc = start("run", str(source), "-o", str(out), tmp=tmp)
    try:
        def burning():
            parts = list(out.glob(f".{tag}.dramapic.*.part.mp4")) if out.is_dir() else []
            encoders = [p for p in descendants(proc.pid) if f"{tag}.dramapic." in command_line(p)]
            return encoders if parts and parts[0].stat().st_size > 0 and encoders else None

        return proc, out, tmp, set(wait_for(burning, timeout=500, what="the burn-in to start", proc=proc))
    except BaseException:
        proc.kill()
        raise


def test_sigterm_during_burn_in_stops_ffmpeg_and_removes_every_temporary(tmp_path: Path, long_input: Path):
    proc, out, tmp, encoders = start_burning(tmp_path, long_input, "sigterm-burn-9d41")
    try:
        assert list(tmp.glob("dramapic-*/cues.ass"))
        proc.send_signal(signal.SIGTERM)
        stderr = finish(proc, timeout=60)
    finally:
        proc.kill()
    assert_gone(encoders, timeout=5)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "SIGTERM" in one_line(stderr)
    assert not out.exists(), "temporary outputs (or the output folder the run made) left behind"
    assert ours(tmp) == [], "scratch folder left behind"


def test_sigkill_during_burn_in_takes_the_encoder_with_it(tmp_path: Path, long_input: Path):
    # SIGKILL runs no cleanup in dramapic: the kernel must end the encoder (parent-death signal), or it would go on
    # encoding the whole video into a temporary nobody will rename (the next run removes that file as stale)
    proc, _out, _tmp, encoders = start_burning(tmp_path, long_input, "sigkill-burn-5c17")
    try:
        proc.send_signal(signal.SIGKILL)
        finish(proc, timeout=60)
    finally:
        proc.kill()
    assert_gone(encoders, timeout=5)
    assert proc.returncode == -signal.SIGKILL


def test_sighup_during_analysis_stops_the_decoder_and_removes_the_spool(tmp_path: Path, long_input: Path):
    source = tmp_path / "sighup-analysis-5c7e.mkv"
    os.link(long_input, source)
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    proc = start("run", str(source), "-o", str(out), tmp=tmp)
    try:
        def analysing():
            # the spool exists from the first decoded piece until analysis ends; the decoder may already be done
            # with a short input (it writes the whole file into the pipe), so its being alive is not waited for
            return [p for p in tmp.glob("dramapic-spool-*/audio.f32") if p.exists() and p.stat().st_size > 0]

        wait_for(analysing, timeout=300, what="the analysis to start", proc=proc)
        decoders = {p for p in descendants(proc.pid) if "sighup-analysis-5c7e" in command_line(p)}
        proc.send_signal(signal.SIGHUP)
        stderr = finish(proc, timeout=60)
    finally:
        proc.kill()
    assert_gone(decoders, timeout=5)
    assert proc.returncode == 128 + signal.SIGHUP, stderr
    assert "SIGHUP" in one_line(stderr)
    assert ours(tmp) == [], "audio spool left behind"
    assert not out.exists(), "the output folder the run made was left behind"


def test_a_later_run_removes_stale_temporaries_but_not_those_of_a_live_run(tmp_path: Path):
    import fcntl

    from dramapic.writers import OutputSet

    finals = [tmp_path / "ep1.srt", tmp_path / "ep1.dramapic.json", tmp_path / "ep1.dramapic.mp4"]
    stale = [tmp_path / ".ep1.k2j4h5g6.part.srt", tmp_path / ".ep1.dramapic.a1b2c3d4.part.mp4",
             tmp_path / ".ep1.q9w8e7r6.part.srt.tmp", tmp_path / ".ep1.m3n4b5v6.part.srt.old"]
    other = [tmp_path / ".ep10.k2j4h5g6.part.srt", tmp_path / ".ep1.x.k2j4h5g6.part.srt", tmp_path / "ep1.srt.bak"]
    for path in stale + other:
        path.write_text("x")
    with OutputSet() as live:  # another run, still writing: its locked temporary is not stale
        busy = live.reserve(tmp_path / "ep1.dramapic.json")
        removed = OutputSet.remove_stale(finals)
        assert busy.exists()
        live.abort()
    assert sorted(removed) == sorted(stale)
    assert all(p.exists() for p in other)
    # the lock is the only sign of life: a file someone else holds stays
    held = tmp_path / ".ep1.zzzzzzzz.part.srt"
    held.write_text("x")
    with open(held) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        assert OutputSet.remove_stale(finals) == []


# -- 2 and 3. batches: SIGTERM and SIGKILL with pool workers ------------------------------------------------------

@pytest.fixture()
def small_archive(tmp_path: Path) -> Path:
    archive = tmp_path / "archive"
    archive.mkdir()
    for number in range(4):
        media.loop_media(SAMPLE, archive / f"ep{number}.mkv", seconds=50 + number)  # audio only
    return archive


def _wait_for_busy_workers(proc: subprocess.Popen, tmp: Path) -> set[int]:
    def busy():
        spools = list(tmp.glob("dramapic-spool-*"))
        workers = {p for p in descendants(proc.pid) if "multiprocessing" in command_line(p)}
        return workers if spools and len(workers) >= 2 else None

    return wait_for(busy, timeout=500, what="the workers to start analysing", proc=proc)


def test_sigterm_on_a_batch_stops_its_workers_and_leaks_no_temporary_folder(tmp_path: Path, small_archive: Path):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    proc = start("batch", str(small_archive), "-o", str(out), "--workers", "2", tmp=tmp)
    try:
        _wait_for_busy_workers(proc, tmp)
        everyone = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        stderr = finish(proc, timeout=120)
    finally:
        proc.kill()
    assert_gone(everyone)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "SIGTERM" in stderr and "Traceback" not in stderr, stderr
    assert ours(tmp) == [], "spool or scratch folders leaked"
    assert not [p for p in out.rglob("*.part.*")], "temporary outputs left behind"


def test_sigkill_on_a_batch_takes_its_workers_with_it_and_the_next_batch_completes(tmp_path: Path,
                                                                                   small_archive: Path):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    proc = start("batch", str(small_archive), "-o", str(out), "--workers", "2", tmp=tmp)
    try:
        workers = _wait_for_busy_workers(proc, tmp)
        everyone = descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
        finish(proc, timeout=60)
    finally:
        proc.kill()
    assert workers <= everyone
    assert_gone(everyone)  # workers, their ffmpeg, the resource tracker
    assert ours(tmp) == [], "the killed workers' spool folders leaked"
    # whatever the workers wrote for files the batch never recorded does not confuse the next one
    again = start("batch", str(small_archive), "-o", str(out), tmp=tmp)
    stdout, stderr = again.communicate(timeout=900)
    assert again.returncode == 0, stderr
    assert "4 done" in stdout, stdout
    for number in range(4):
        assert (out / f"ep{number}.srt").is_file() and (out / f"ep{number}.dramapic.json").is_file()
    assert not [p for p in out.rglob(".*.part.*")], "temporary outputs left behind"
    assert ours(tmp) == []


# -- 9. a full disk ----------------------------------------------------------------------------------------------

def test_ffmpeg_stderr_is_searched_for_the_cause_not_only_its_last_line():
    stderr = (b"[mp4 @ 0x55d0] av_interleaved_write_frame(): No space left on device\n"
              b"[out#0/mp4 @ 0x55d0] Error writing trailer: No space left on device\n"
              b"frame= 2100 fps= 52 q=-1.0 Lsize=   65536KiB time=00:01:24.00 bitrate=6391.2kbits/s speed=2.1x\n"
              b"[libx264 @ 0x55d1] kb/s:1965.87\n")
    error = media._failure(stderr, what="cannot burn subtitles into long720.mp4")
    assert isinstance(error, OutputError) and error.exit_code == 6
    assert str(error) == "cannot burn subtitles into long720.mp4: No space left on device"
    # real media errors stay media errors
    error = media._failure(b"[h264 @ 0x1] error while decoding MB 3 4\nInvalid data found when processing input\n",
                           what="cannot burn")
    assert not isinstance(error, OutputError) and error.exit_code == 3


def test_ffmpeg_writing_to_a_full_device_is_an_output_error(tmp_path: Path):
    # /dev/full fails every write with ENOSPC: no privileges needed
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    info = media.probe(SAMPLE)
    srt = tmp_path / "cues.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nvoice (0.90)\n\n", encoding="utf-8")
    with pytest.raises(OutputError, match="No space left on device"):
        media.mux_subtitles(info, srt, Path("/dev/full"))
    with pytest.raises(OutputError, match="No space left on device"):
        media.burn_subtitles(info, srt, Path("/dev/full"), fonts_dir=REPO / "dramapic" / "fonts", preset="ultrafast")


def test_python_side_writes_to_a_full_disk_are_output_errors():
    from dramapic.writers import ResultWriter

    class Big(ResultWriter):
        def render(self, result):
            return "x" * 1_000_000

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    with pytest.raises(OutputError, match="No space left on device"):
        Big().write(None, Path("/dev/full"))


@pytest.fixture()
def small_disk(tmp_path: Path):
    """A 400 KB tmpfs (needs root and mount; skipped, saying so, elsewhere)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)], capture_output=True,
                          text=True) if os.geteuid() == 0 else None
    if done is None or done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip() if done else 'not root'}); "
                    "the stderr classification is tested above")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.parametrize("mode", ["--soft-subs", "burn"])
def test_a_disk_that_fills_while_the_video_is_written_exits_with_the_output_code(tmp_path: Path, small_disk: Path,
                                                                                 mode: str):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    args = ["run", str(SAMPLE), "-o", str(small_disk)] + ([mode] if mode != "burn" else ["--preset", "ultrafast",
                                                                                           "--crf", "12"])
    proc = start(*args, tmp=tmp)
    _, stderr = proc.communicate(timeout=900)
    assert proc.returncode == OutputError.exit_code, stderr
    assert "No space left on device" in one_line(stderr)
    assert os.listdir(small_disk) == [], "partial outputs left on the full disk"
    assert ours(tmp) == []


def test_a_batch_whose_database_disk_is_full_says_so_and_leaves_the_database_whole(tmp_path: Path, small_disk: Path):
    # a whole archive database on a full disk was called "not a usable dramapic database: disk I/O error" (no room
    # for the WAL's -shm index), the words for a damaged file, which its owner would move away
    with Store.open(small_disk / DB_NAME) as store:
        store.record(make_record(), batch_id=None)
    (small_disk / "dramapic.lock").write_text("batch pid 1 on host since earlier\n")
    before = (small_disk / DB_NAME).read_bytes()
    with open(small_disk / "filler", "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "ep1.mp4").write_bytes(b"\0" * 1000)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = start("batch", str(archive), "-o", str(small_disk), tmp=tmp)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == OutputError.exit_code, stderr
    line = one_line(stderr)
    assert line.startswith(f"dramapic: error: cannot open the archive database {small_disk / DB_NAME}: "), line
    assert "not a usable" not in line and ("disk is full" in line or "is its disk full" in line), line
    assert (small_disk / DB_NAME).read_bytes() == before


def test_enospc_is_an_errno_the_classifier_knows():
    assert os.strerror(errno.ENOSPC) in media.OUTPUT_CAUSES


def test_a_full_temporary_disk_while_writing_the_subtitle_script_is_an_output_error():
    from dramapic.config import RenderConfig
    from dramapic.render import write_ass
    from helpers import make_result

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    with pytest.raises(OutputError, match="No space left on device"):
        write_ass(make_result(), RenderConfig(), Path("/dev/full"), width=1280, height=720)


def test_a_failed_trailer_write_is_an_error_even_when_ffmpeg_exits_0():
    # Debian's ffmpeg 5.1 prints "Error writing trailer ...: No space left on device" and still exits 0
    script = "echo 'Error writing trailer of file:/x/out.mp4: No space left on device' >&2; exit 0"
    with pytest.raises(OutputError, match="cannot add subtitles to x.mp4: No space left on device"):
        media._run(["sh", "-c", script], what="cannot add subtitles to x.mp4")


def test_a_run_whose_output_folder_is_removed_during_analysis_still_writes(tmp_path: Path, monkeypatch):
    # two runs into one new folder: the one that made it fails at once and removes it (still empty) while the other
    # is analysing; the other must still write its outputs
    import dramapic.run as run_module
    from dramapic.run import RunOptions
    from helpers import make_result

    out = tmp_path / "shared-out"

    def analyse_while_the_folder_goes(*args, **kwargs):
        out.rmdir()
        return make_result()

    monkeypatch.setattr(run_module, "analyze", analyse_while_the_folder_goes)
    outputs = run_module.run(SAMPLE, options=RunOptions(output_dir=out, video="none"))
    assert outputs.files["json"].exists() and outputs.files["json"].parent == out


def test_a_json_report_on_a_full_disk_is_one_output_error_and_leaves_nothing(tmp_path: Path, monkeypatch):
    # dramapic eval / bench / train --json write through write_json_atomic
    import errno

    from dramapic.writers import write_json_atomic

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OutputError, match=r"cannot write eval\.json in .*: No space left on device"):
        write_json_atomic({"a": 1}, tmp_path / "eval.json")
    assert os.listdir(tmp_path) == []


def test_a_writer_error_names_the_output_not_its_temporary(tmp_path: Path):
    from dramapic.writers import OutputSet, ResultWriter

    class Big(ResultWriter):
        def render(self, result):
            return "x" * 1_000_000

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    with OutputSet(overwrite=True) as outputs:
        temporary = outputs.reserve(tmp_path / "ep1.dramapic.json")
        temporary.unlink()
        temporary.symlink_to("/dev/full")  # the temporary's writes fail as on a full disk
        with pytest.raises(OutputError, match=r"^cannot write ep1\.dramapic\.json in "):
            Big().write(None, temporary)
        outputs.abort()


def _hanging(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A stand-in for ffmpeg or ffprobe that writes its pid and hangs (as on a stalled network share)."""
    pid_file = tmp_path / f"{name}.pid"
    hanging = tmp_path / name
    hanging.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 600\n")
    hanging.chmod(0o755)
    return hanging, pid_file


def _sigkill_parent_then_child_is_gone(code: str, env: dict[str, str], pid_file: Path, *, what: str) -> None:
    """Run ``code`` in a fresh interpreter until the hanging child has started, kill the interpreter outright and
    check that the child went with it."""
    proc = subprocess.Popen([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        child = int(wait_for(lambda: pid_file.is_file() and pid_file.read_text().strip(), timeout=120,
                             what=f"the {what} to start", proc=proc))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert_gone({child}, timeout=5)


@pytest.mark.parametrize("tool", ["ffprobe", "ffmpeg"])
def test_sigkill_during_a_probe_takes_the_prober_with_it(tmp_path: Path, tool: str):
    # the probe's 120 s timeout is enforced by dramapic itself: killed outright while ffprobe (or ffmpeg's banner)
    # hung on a file of a stalled network share, it left the prober running for good
    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")
    hanging, pid_file = _hanging(tmp_path, f"hanging-{tool}")
    env = {**os.environ, media.FFMPEG_ENV: str(hanging) if tool == "ffmpeg" else "ffmpeg",
           media.FFPROBE_ENV: str(hanging) if tool == "ffprobe" else ""}
    if tool == "ffmpeg":  # no ffprobe beside a hanging ffmpeg: the banner is read
        env.pop(media.FFPROBE_ENV)
    _sigkill_parent_then_child_is_gone(f"from dramapic import media; media.probe({str(SAMPLE)!r})", env, pid_file,
                                       what="probe")


def test_sigkill_during_decoding_takes_the_decoder_with_it(tmp_path: Path):
    # the decoder dies of a broken pipe once its reader is gone, but one stuck reading a hung share never writes
    # again: killed outright then, dramapic left it running for good
    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")
    probe = shutil.which("ffprobe")
    if probe is None:
        pytest.skip("no ffprobe to probe with beside the hanging decoder")
    hanging, pid_file = _hanging(tmp_path, "hanging-ffmpeg")
    env = {**os.environ, media.FFMPEG_ENV: str(hanging), media.FFPROBE_ENV: probe}
    code = f"from dramapic import media; next(media.stream_audio(media.probe({str(SAMPLE)!r})), None)"
    _sigkill_parent_then_child_is_gone(code, env, pid_file, what="decoder")
