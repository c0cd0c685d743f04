"""The engines a batch runs on: in process, a local process pool, a Dask cluster (started here) and Ray."""

from __future__ import annotations

import logging
import math
import os
import threading
import time

import pytest

from dramapic.archive.batch import BatchOptions, run_batch
from dramapic.config import load_pipeline
from dramapic.archive.cluster_engines import DaskEngine, WarmUpPlugin
from dramapic.archive.engines import ProcessPoolEngine, SerialEngine, make_engine
from dramapic.errors import ConfigError
from dramapic.archive.store import DB_NAME, Store
from helpers import CLIPS, REPO, assert_consistent, fake_done_worker, make_archive, placeholder_archive

JOBS = [((4.0,), {}, "four"), ((-1.0,), {}, "negative"), ((9.0,), {}, "nine")]


def collect(engine, fn=math.sqrt, jobs=JOBS) -> dict:
    return {tag: (value, type(error).__name__ if error else None) for tag, value, error in
            engine.imap_unordered(fn, jobs)}


EXPECTED = {"four": (2.0, None), "negative": (None, "ValueError"), "nine": (3.0, None)}


@pytest.fixture(scope="module", autouse=True)
def no_process_left_behind():
    """Pools started here leave multiprocessing's resource tracker running as a child of the test process;
    stop it, so that later tests that count their child processes see none of ours."""
    yield
    from multiprocessing import resource_tracker

    stop = getattr(resource_tracker._resource_tracker, "_stop", None)
    if stop is not None:
        stop()


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory):
    clips = dict(list(CLIPS.items())[:2])
    return make_archive(tmp_path_factory.mktemp("engine-archive"), clips, corrupt=False), clips


def test_serial_and_pool_engines_return_values_and_errors():
    with SerialEngine() as engine:
        assert collect(engine) == EXPECTED
    with ProcessPoolEngine(2) as engine:
        assert collect(engine) == EXPECTED


def test_pool_replaces_a_dead_worker_and_goes_on():
    # os._exit kills the worker process outright (as an out-of-memory kill would)
    jobs = [((1,), {}, "dies"), (("a",), {}, "a"), (("b",), {}, "b")]
    with ProcessPoolEngine(1, max_in_flight=1) as engine:
        results = {tag: (value, type(error).__name__ if error else None)
                   for tag, value, error in engine.imap_unordered(_exit_or_echo, jobs)}
    assert results == {"dies": (None, "BrokenProcessPool"), "a": ("a", None), "b": ("b", None)}


def _exit_or_echo(value):
    if value == 1:
        os._exit(1)
    return value


def _exit_or_echo_slowly(value):
    if value == 1:
        time.sleep(0.3)  # the others are running when this worker dies
        os._exit(1)
    time.sleep(1.0)
    return value


def test_a_dying_worker_fails_only_its_own_job_not_the_others_in_flight():
    # the dead worker breaks the whole pool and every job in flight with it; only the one that breaks a pool
    # again when run alone is failed, the bystanders run again and finish
    jobs = [((1,), {}, "dies"), (("a",), {}, "a"), (("b",), {}, "b"), (("c",), {}, "c")]
    with ProcessPoolEngine(2, max_in_flight=4) as engine:
        results = {tag: (value, type(error).__name__ if error else None)
                   for tag, value, error in engine.imap_unordered(_exit_or_echo_slowly, jobs)}
    assert results == {"dies": (None, "BrokenProcessPool"), "a": ("a", None), "b": ("b", None), "c": ("c", None)}


def _warn_then_echo(value):
    logging.getLogger("dramapic.analysis.analyze").warning("%s holds no sound", value)
    return value


def _worker_lines(engine_for, level: int, capfd, monkeypatch) -> list[str]:
    """What a worker's warning writes to stderr under a batch whose dramapic log level is ``level``."""
    monkeypatch.setattr(logging.getLogger("dramapic"), "level", level)
    capfd.readouterr()
    with engine_for() as engine:
        assert collect(engine, _warn_then_echo, [(("quiet.wav",), {}, "a")]) == {"a": ("quiet.wav", None)}
    return [line for line in capfd.readouterr().err.splitlines() if "holds no sound" in line]


@pytest.mark.parametrize("kind", ["pool", "dask"])
def test_worker_processes_log_at_the_batch_s_level(kind, capfd, monkeypatch):
    # a pool's or a local Dask cluster's worker process knew nothing of --quiet: its warnings went to stderr through
    # logging's last resort, under --quiet too, and without the "WARNING dramapic...:" every other line has
    if kind == "dask":
        pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")
    engine_for = (lambda: ProcessPoolEngine(1)) if kind == "pool" else (lambda: DaskEngine(workers=1))
    assert _worker_lines(engine_for, logging.ERROR, capfd, monkeypatch) == []
    lines = _worker_lines(engine_for, logging.WARNING, capfd, monkeypatch)
    assert len(lines) == 1 and "WARNING" in lines[0] and "dramapic.analysis.analyze" in lines[0], lines


@pytest.mark.parametrize("kind", ["pool", "dask"])
def test_a_worker_process_s_own_log_lines_stay_one_line(kind, capfd, monkeypatch):
    # a worker's own lines (not a file's notes, which the batch shows escaped) were formatted as the batch's but not
    # escaped: a name or an error text with a newline split the line and forged one after it, a carriage return
    # sent the terminal back over its start
    if kind == "dask":
        pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")
    engine_for = (lambda: ProcessPoolEngine(1)) if kind == "pool" else (lambda: DaskEngine(workers=1))
    monkeypatch.setattr(logging.getLogger("dramapic"), "level", logging.WARNING)
    capfd.readouterr()
    name = "ep01.wav\nERROR dramapic.archive.batch: forged\r.wav"
    with engine_for() as engine:
        assert collect(engine, _warn_then_echo, [((name,), {}, "a")]) == {"a": (name, None)}
    err = capfd.readouterr().err
    assert "\r" not in err and "forged" in err
    (line,) = [line for line in err.split("\n") if "holds no sound" in line or "forged" in line]
    assert line.startswith("WARNING") and "dramapic.analysis.analyze" in line and \
        line.endswith("ep01.wav\\nERROR dramapic.archive.batch: forged\\r.wav holds no sound"), line


def test_a_worker_that_cannot_load_the_models_says_so_in_one_line(monkeypatch, caplog):
    # the worker's warm-up failure quoted its error as it was: a model path or a message with a newline split it
    # (escaped in the record itself: a Dask cluster's workers log as that cluster set them up)
    from dramapic.archive import engines

    def broken(pipeline, *, threads=None):
        raise OSError("cannot open /models/a\nb.onnx\r")

    monkeypatch.setattr("dramapic.analysis.loaders.warm_up", broken)
    monkeypatch.setattr(engines.signal, "signal", lambda *args: None)  # the worker ignores Ctrl-C: not this process
    with caplog.at_level(logging.WARNING, logger="dramapic"):
        engines._init_pool_worker(load_pipeline(None), None)
        WarmUpPlugin(load_pipeline(None)).setup(object())
    assert [r.getMessage().split(" could not load the models: ")[1] for r in caplog.records] == [
        "cannot open /models/a\\nb.onnx\\r"] * 2


def test_unknown_engine_or_unreachable_cluster_is_a_config_error(monkeypatch):
    with pytest.raises(ConfigError, match="unknown engine"):
        make_engine("spark")
    pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")
    monkeypatch.setattr("dramapic.archive.cluster_engines.CONNECT_TIMEOUT", "1s")
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler tcp://127.0.0.1:1"):
        make_engine("dask", scheduler="tcp://127.0.0.1:1")


@pytest.mark.parametrize("scheduler", ["not a url", "tcp://dask-head"])
def test_a_malformed_scheduler_address_leaves_no_half_built_client_behind(scheduler):
    # --scheduler with no port (a typo): the refusal was one line, but the Client that failed to start stayed
    # reachable from it until the interpreter's exit, where closing it waited 60 s and printed a traceback
    import gc

    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")
    with pytest.raises(ConfigError, match=f"cannot reach the Dask scheduler {scheduler}"):
        make_engine("dask", scheduler=scheduler)
    assert not [c for c in gc.get_objects() if type(c) is distributed.Client
                and getattr(c, "_start_arg", None) == scheduler]


def test_a_missing_engine_package_stops_the_batch_before_anything_is_written(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "ep1.mp4").write_bytes(b"x")
    with pytest.raises(ConfigError, match="--engine ray needs ray"):
        run_batch(archive, tmp_path / "out" / "deep", pipeline=load_pipeline(None),
                  options=BatchOptions(engine="ray"))
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        yield cluster
    finally:
        cluster.close()


def test_dask_engine_on_a_running_cluster(dask_cluster):
    with DaskEngine(dask_cluster.scheduler_address) as engine:
        assert collect(engine) == EXPECTED


def test_a_local_dask_cluster_logs_nothing_below_the_batch_s_level(monkeypatch):
    # importing distributed sets its loggers to INFO whatever the application chose: `batch --engine dask --quiet`
    # wrote some thirty lines of the scheduler's and the nannies' start-up and shut-down chatter to stderr
    pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")
    heard: list[logging.LogRecord] = []
    ear = logging.Handler()
    ear.emit = heard.append
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", logging.ERROR)  # what --quiet sets
    logging.getLogger("distributed").setLevel(logging.INFO)  # what importing distributed does
    root.addHandler(ear)
    try:
        with DaskEngine(workers=1) as engine:
            assert collect(engine) == EXPECTED
    finally:
        root.removeHandler(ear)
    assert [r.getMessage() for r in heard if r.name.startswith("distributed") and r.levelno < logging.ERROR] == []


def test_a_second_local_dask_cluster_does_not_warn_that_port_8787_is_taken():
    # the scheduler serves HTTP on 8787 even with no dashboard; a second batch with --engine dask running (or anything
    # else on 8787) printed distributed's four-line "Port 8787 is already in use" warning, --quiet or not
    import socket
    import warnings

    pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")
    with socket.socket() as busy:
        try:
            busy.bind(("127.0.0.1", 8787))
            busy.listen()
        except OSError:  # taken already, as a first batch would have it
            pass
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with DaskEngine(workers=1) as engine:
                assert collect(engine) == EXPECTED
    assert [str(w.message) for w in caught if "already in use" in str(w.message)] == []


def _interrupted_then_echo(value):
    import signal

    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C reaches the whole process group: a local cluster's workers too
    time.sleep(0.5)
    return value


def test_ctrl_c_leaves_a_local_dask_cluster_s_workers_to_the_batch(capfd):
    # the batch handles Ctrl-C (records what finished, then closes the cluster), as with a process pool; the local
    # cluster's workers died of it instead, each printing two KeyboardInterrupt tracebacks after "interrupted"
    pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")
    with DaskEngine(workers=1) as engine:
        # its one worker gone, the task would wait for another for ever
        assert engine.client.submit(_interrupted_then_echo, "a", pure=False).result(timeout=30) == "a"
    err = capfd.readouterr().err
    assert "KeyboardInterrupt" not in err and "Traceback" not in err, err


class _PluginOfAnotherWorld(WarmUpPlugin):
    """What a worker without dramapic makes of dramapic's warm-up plugin: it cannot unpickle it."""

    def __setstate__(self, state):
        raise ModuleNotFoundError("No module named 'dramapic'")


def test_a_dask_cluster_whose_workers_lack_dramapic_is_refused_in_one_line(dask_cluster, monkeypatch):
    # the warm-up plugin's registration failed on the workers, and the batch ended in distributed's traceback
    monkeypatch.setattr("dramapic.archive.cluster_engines.WarmUpPlugin", _PluginOfAnotherWorld)
    with pytest.raises(ConfigError, match="cannot set up the Dask cluster's workers .*No module named 'dramapic'"):
        DaskEngine(dask_cluster.scheduler_address, pipeline=load_pipeline(None))


class _WarmUpForNothing(WarmUpPlugin):
    """The warm-up plugin without its models: what it leaves registered is what counts here."""

    def setup(self, worker) -> None:
        pass


@pytest.mark.parametrize("ending", ["finished", "failed", "refused"])
def test_a_shared_dask_cluster_keeps_no_warm_up_plugin_after_the_batch(ending, monkeypatch):
    # the plugin stayed registered on a cluster given by --scheduler after the batch, however it ended (even one whose
    # workers could not load it): workers joining later still loaded dramapic's models, or failed to
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")
    plugin = _PluginOfAnotherWorld if ending == "refused" else _WarmUpForNothing
    monkeypatch.setattr("dramapic.archive.cluster_engines.WarmUpPlugin", plugin)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster:
        cluster.scheduler.worker_plugins["someone-else-s"] = b"kept"
        try:
            with DaskEngine(cluster.scheduler_address, pipeline=load_pipeline(None)) as engine:
                assert [n for n in cluster.scheduler.worker_plugins if n.startswith("dramapic")]
                assert collect(engine) == EXPECTED
                if ending == "failed":
                    raise KeyboardInterrupt
        except (KeyboardInterrupt, ConfigError):
            pass
        left = [n for n in cluster.scheduler.worker_plugins if "dramapic" in n or n == "someone-else-s"]
        assert left == ["someone-else-s"]


def _mark_then_sleep(mark: str, seconds: float):
    open(mark, "w").close()
    time.sleep(seconds)
    return seconds


def test_a_local_dask_cluster_stopped_mid_file_says_nothing_of_it(tmp_path, capfd):
    # Ctrl-C (or SIGTERM, or a lost disk) while files are in flight: the batch cancels them and closes the cluster,
    # and each worker logged the cancellation of its task in distributed's own lines above "dramapic: interrupted"
    pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")
    mark = tmp_path / "started"
    jobs = [((str(tmp_path / "first"), 0.0), {}, "first"), ((str(mark), 30.0), {}, "slow")]
    with pytest.raises(KeyboardInterrupt), DaskEngine(workers=1) as engine:
        for _ in engine.imap_unordered(_mark_then_sleep, jobs):  # the first one back, the slow one next
            clock = time.monotonic()
            while not mark.exists() and time.monotonic() - clock < 60:
                time.sleep(0.05)
            raise KeyboardInterrupt
    err = capfd.readouterr().err
    assert "distributed" not in err, err


def test_a_dask_cluster_without_workers_is_warned_about(caplog):
    # its files wait for a worker to join: the batch sat there without a word, its progress bar at 0
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster, \
            caplog.at_level(logging.WARNING, logger="dramapic"), DaskEngine(cluster.scheduler_address):
        pass
    assert [r.getMessage() for r in caplog.records if r.name.startswith("dramapic")] == [
        f"the Dask cluster {cluster.scheduler_address} has no workers: the files wait until one joins"]


def test_batch_on_a_dask_cluster(dask_cluster, small_archive, tmp_path):
    archive, clips = small_archive
    out = tmp_path / "out"
    summary = run_batch(archive, out, pipeline=load_pipeline(None),
                        options=BatchOptions(engine="dask", scheduler=dask_cluster.scheduler_address))
    assert (summary.done, summary.failed) == (len(clips), 0)
    assert_consistent(out, good=set(clips))
    with Store.open(out / DB_NAME) as store:
        workers = {r["worker"] for r in store.query("SELECT worker FROM runs")}
        assert [b["engine"] for b in store.batches()] == ["dask"]
    assert len(workers) == 1 and not workers.pop().endswith(f":{os.getpid()}")  # ran in the cluster's worker


def test_batch_on_ray(small_archive, tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="ray is not installed (optional: pip install 'dramapic[ray]')")
    archive, clips = small_archive
    # Ray's worker processes do not inherit this interpreter's sys.path: point them at the checkout
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    clock = time.monotonic()
    summary = run_batch(archive, tmp_path / "out", pipeline=load_pipeline(None),
                        options=BatchOptions(engine="ray", workers=1))
    assert (summary.done, summary.failed) == (len(clips), 0), summary.failures
    assert_consistent(tmp_path / "out", good=set(clips))
    assert time.monotonic() - clock < 300


# -- a cluster lost mid-batch, a worker killed under one task ----------------------------------------------------

_RELEASE = threading.Event()  # what the tasks still in flight wait for when the cluster goes away


def _done_or_stuck(path, out_dir, *, rel, pipeline, options):
    """a.mp4 finishes; the others are still running when the scheduler goes away."""
    if rel == "a.mp4":
        return fake_done_worker(path, out_dir, rel=rel, pipeline=pipeline, options=options)
    _RELEASE.wait(60)
    raise RuntimeError("released")


def _killed_or_echo(value):
    from types import SimpleNamespace

    from distributed import KilledWorker

    if value == "dies":  # what the scheduler reports for a task whose workers all died running it
        raise KilledWorker(f"process_file-{value}", SimpleNamespace(address="tcp://10.0.0.9:4242"), 3)
    return value


def test_a_killed_dask_worker_fails_only_its_own_file():
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")
    jobs = [(("dies",), {}, "dies"), (("a",), {}, "a"), (("b",), {}, "b")]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, DaskEngine(cluster.scheduler_address) as engine:
        assert collect(engine, _killed_or_echo, jobs) == {"dies": (None, "KilledWorker"), "a": ("a", None),
                                                          "b": ("b", None)}


def _note_then_exit_or_echo(notes, value):
    with open(notes, "a") as out:  # each run of each file, in the order they started
        out.write(value + "\n")
    if value == "dies":
        time.sleep(0.3)
        os._exit(1)  # the worker process dies outright (as an out-of-memory kill would)
    return value


def test_a_file_that_kills_its_dask_worker_runs_once_and_fails_alone(tmp_path):
    # distributed ran a task whose worker died again, on a fresh worker, up to its allowed-failures (3): the file that
    # crashes ran four times, taking down four workers. And with two tasks sent to each one-thread worker, the file
    # queued behind it would have died with it. As with a pool: the file that kills its worker fails, once, alone
    pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")
    notes = tmp_path / "runs"
    jobs = [((str(notes), value), {}, value) for value in ("dies", "a", "b")]
    with DaskEngine(workers=1) as engine:
        assert collect(engine, _note_then_exit_or_echo, jobs) == {"dies": (None, "KilledWorker"), "a": ("a", None),
                                                                  "b": ("b", None)}
    assert sorted(notes.read_text().split()) == ["a", "b", "dies"]


def test_a_lost_dask_cluster_is_one_line_and_keeps_what_finished(tmp_path, monkeypatch, capsys):
    # the scheduler goes away after a.mp4 is recorded, with b.mp4 and c.mp4 in flight: one typed error (exit 7),
    # a.mp4 stays recorded, b.mp4 and c.mp4 are not recorded as failed (the cluster's fault, not theirs), and the
    # next batch processes them
    from dramapic import cli
    from dramapic.archive.store import Store as RealStore
    from dramapic.errors import EngineError

    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")
    archive = placeholder_archive(tmp_path / "archive", ("a.mp4", "b.mp4", "c.mp4"))
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.analysis.loaders.warm_up", lambda *args, **kwargs: None)  # no models needed
    monkeypatch.setattr("dramapic.archive.batch.process_file", _done_or_stuck)
    import dask

    # the cluster's own worker keeps calling the dead scheduler for this long before it closes (30 s by default)
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=3, processes=False,
                                           dashboard_address=None)
        record = RealStore.record

        def record_then_lose_the_scheduler(self, run, *, batch_id):
            run_id = record(self, run, batch_id=batch_id)
            if run.path == "a.mp4":
                cluster.sync(cluster.scheduler.close)
            return run_id

        monkeypatch.setattr(RealStore, "record", record_then_lose_the_scheduler)
        _RELEASE.clear()
        try:
            code = cli.main(["batch", str(archive), "-o", str(out), "--engine", "dask", "--scheduler",
                             cluster.scheduler_address, "--no-progress"])
        finally:
            _RELEASE.set()
            cluster.close()
    err = capsys.readouterr().err
    assert code == EngineError.exit_code == 7, err
    lines = [ln for ln in err.splitlines() if ln.startswith("dramapic:")]
    assert len(lines) == 1 and lines[0].startswith("dramapic: error: lost the Dask cluster"), err
    assert "connection to the scheduler closed" in lines[0] and "Traceback" not in err
    with RealStore.open(out / DB_NAME) as store:
        assert [(r["path"], r["status"]) for r in store.query(
            "SELECT f.path, r.status FROM runs r JOIN files f ON f.id = r.file_id")] == [("a.mp4", "done")]
        assert [b["status"] for b in store.batches()] == ["interrupted"]
    monkeypatch.undo()
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    again = run_batch(archive, out, pipeline=load_pipeline(None))
    assert (again.done, again.skipped, again.failed) == (2, 1, 0)


def test_a_dask_scheduler_killed_outright_is_one_line_without_a_traceback(caplog):
    # a scheduler that dies (kill -9, its machine gone) rather than closing: the client was still trying to reconnect
    # when the batch closed it, and distributed logged that attempt's cancellation as an ERROR with two chained
    # tracebacks, printed above the batch's one line ("lost the Dask cluster ...")
    import socket
    import subprocess
    import sys

    from dramapic.errors import EngineError

    pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--dashboard-address", "127.0.0.1:0"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def jobs():
        yield (1.0,), {}, "a"  # no worker: it waits, in flight, while the scheduler dies
        scheduler.kill()
        scheduler.wait()

    try:
        with pytest.raises(EngineError, match="lost the Dask cluster"), caplog.at_level(logging.DEBUG), \
                DaskEngine(f"tcp://127.0.0.1:{port}", max_in_flight=2) as engine:  # room for a second job
            list(engine.imap_unordered(time.sleep, jobs()))
    finally:
        scheduler.kill()
        scheduler.wait()
    assert [(r.name, r.getMessage()) for r in caplog.records if r.name.startswith("distributed")
            and r.levelno >= logging.ERROR] == []


# -- a Dask future lost or cancelled by its cluster ----------------------------------------------------------------

class _FakeDaskFuture:
    """A ``distributed`` future that goes through ``fates``, one per ``wait`` of the batch, as the scheduler moves it:
    "lost" (its worker died holding the result; the scheduler computes it again), "cancelled" (with a reason)."""

    def __init__(self, key, value, fates: list[str]) -> None:
        self.key, self.value, self.fates, self.status = key, value, list(fates), "pending"

    def advance(self) -> None:
        if self.fates:
            self.status = self.fates.pop(0).split(":")[0]

    def _cancelled(self):
        from distributed.client import FutureCancelledError

        return FutureCancelledError(self.key, self.reason)

    @property
    def reason(self) -> str:
        return "unknown"

    def result(self):
        while self.status == "lost":  # as distributed: waits until the data is computed again
            self.advance()
        if self.status == "cancelled":
            raise self._cancelled()
        return self.value

    def exception(self) -> None:
        """Waits as result() does, then answers None: none of these tasks erred."""
        while self.status == "lost":
            self.advance()

    def release(self) -> None:
        pass


class _FakeDaskClient:
    status = "running"

    def __init__(self, fates: dict[str, list[str]]) -> None:
        self.fates = fates

    def submit(self, fn, *args, pure, retries, **kwargs):
        tag = kwargs.get("rel", args[0] if args else None)
        return _FakeDaskFuture(tag, fn(*args, **kwargs), self.fates[tag])

    def as_current(self):
        import contextlib

        return contextlib.nullcontext()

    def nthreads(self):
        return {"tcp://10.0.0.9:4242": 3}

    def register_plugin(self, *args, **kwargs) -> None:
        pass

    def unregister_worker_plugin(self, *args, **kwargs) -> None:
        pass

    def cancel(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def _fake_dask_wait(fs, timeout=None, return_when="ALL_COMPLETED"):
    """distributed.wait: the futures that are not pending (a lost one too, though its event is not set), and a
    FuturesCancelledError for cancelled ones."""
    from types import SimpleNamespace

    from distributed.client import CancelledFuturesGroup, FutureCancelledError, FuturesCancelledError

    for future in fs:
        future.advance()
    cancelled = [f for f in fs if f.status == "cancelled"]
    if cancelled:
        raise FuturesCancelledError([CancelledFuturesGroup(
            errors=[FutureCancelledError(f.key, "lost dependencies") for f in cancelled], reason="lost dependencies")])
    return SimpleNamespace(done={f for f in fs if f.status != "pending"})


@pytest.fixture
def fake_dask(monkeypatch):
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")

    def install(fates: dict[str, list[str]]) -> None:
        client = _FakeDaskClient(fates)
        monkeypatch.setattr(distributed, "Client", lambda *args, **kwargs: client)
        monkeypatch.setattr(distributed, "wait", _fake_dask_wait)

    return install


def test_a_lost_dask_future_is_computed_again_and_a_cancelled_one_says_so(fake_dask):
    # "lost": the worker holding its result died, and the scheduler computes it again: its value comes back (before,
    # future.exception() waited for that and then answered None: a file done twice was failed as "task finished").
    # "cancelled" by the cluster: the file's error says so in words, not as a worker's RuntimeError
    from dramapic.archive.engines import TaskCancelledError

    fake_dask({"a": ["finished"], "lost": ["lost", "lost", "finished"], "gone": ["pending", "cancelled"]})
    with DaskEngine("tcp://10.0.0.9:8786") as engine:
        results = {tag: (value, error) for tag, value, error in engine.imap_unordered(str.upper, [
            (("a",), {}, "a"), (("lost",), {}, "lost"), (("gone",), {}, "gone")])}
    assert results["a"] == ("A", None) and results["lost"] == ("LOST", None)
    value, error = results["gone"]
    assert value is None and isinstance(error, TaskCancelledError)
    assert str(error) == "the Dask cluster cancelled this file's task (lost dependencies)"


def test_a_task_the_dask_cluster_cancelled_fails_its_file_with_that_reason(fake_dask, tmp_path, monkeypatch):
    archive = placeholder_archive(tmp_path / "archive", ("a.mp4", "b.mp4", "c.mp4"))
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    fake_dask({"a.mp4": ["finished"], "b.mp4": ["lost", "finished"], "c.mp4": ["cancelled"]})
    summary = run_batch(archive, out, pipeline=load_pipeline(None),
                        options=BatchOptions(engine="dask", scheduler="tcp://10.0.0.9:8786"))
    assert (summary.done, summary.failed) == (2, 1), summary.failures
    with Store.open(out / DB_NAME) as store:
        rows = {r["path"]: r for r in store.query(
            "SELECT f.path, r.status, r.error_type, r.error FROM runs r JOIN files f ON f.id = r.file_id")}
    assert rows["b.mp4"]["status"] == "done"
    assert (rows["c.mp4"]["status"], rows["c.mp4"]["error_type"]) == ("failed", "TaskCancelledError")
    assert rows["c.mp4"]["error"] == "the Dask cluster cancelled this file's task (lost dependencies)"


class _Ref:
    """An object reference (hashable by identity, as Ray's are)."""

    def __init__(self, kind: str, value) -> None:
        self.kind, self.value = kind, value


class _FakeRay:
    """Enough of ``ray`` for RayEngine: tasks run when submitted; the test decides what ``get`` and ``wait`` meet."""

    class exceptions:  # named as the module it stands for
        class RayError(Exception):
            pass

        class RayTaskError(RayError):
            pass

        class WorkerCrashedError(RayError):
            pass

        class RaySystemError(RayError):
            pass

        class LocalRayletDiedError(RayError):
            pass

        class TaskCancelledError(RayError):
            pass

        class TaskUnschedulableError(RayError):  # Ray's words, as its own class puts them
            def __init__(self, error_message):
                self.error_message = error_message

            def __str__(self):
                return f"The task is not schedulable: {self.error_message}"

        class RuntimeEnvSetupError(RayError):
            def __init__(self, error_message=None):
                self.error_message = error_message

            def __str__(self):
                return "\n".join(["Failed to setup runtime environment."] + [self.error_message] * bool(self.error_message))

        class ObjectLostError(RayError):
            def __str__(self):
                return ("Failed to retrieve object 00ffffffffffffffffffffffffffffffffffffff0100000001000000. To see "
                        "information about where this ObjectRef was created in Python, set the environment variable "
                        "RAY_record_ref_creation_sites=1 during `ray start` and `ray.init()`.\n\nAll copies of the "
                        "object are lost due to node failure.")

        class OwnerDiedError(ObjectLostError):
            pass

    def __init__(self) -> None:
        self.initialized = False
        self.alive = True
        self.crash: set[str] = set()       # a task whose worker crashes
        self.cancelled: set[str] = set()   # a task the cluster cancels
        self.raises: dict[str, BaseException] = {}  # a task whose ray.get raises this
        self.fail_wait_after: int | None = None  # the cluster goes after so many results
        self.workers_lack_dramapic: BaseException | None = None  # what the probe of a cluster's workers meets
        self.results = 0

    def is_initialized(self):
        return self.initialized

    cpus = 2.0

    def init(self, **kwargs):
        self.initialized = True
        self.init_kwargs = kwargs

    def shutdown(self):
        self.initialized = False

    def cluster_resources(self):
        if not self.alive:
            raise ConnectionError("GCS unreachable")
        return {"CPU": self.cpus} if self.cpus else {}

    def remote(self, **options):
        ray = self

        def wrap(fn):
            class Remote:
                @staticmethod
                def remote(*args, **kwargs):
                    if fn.__name__ == "_dramapic_version":
                        return _Ref("probe", ray.workers_lack_dramapic or fn())
                    tag = kwargs.get("rel", args[0] if args else None)
                    if tag in ray.crash:
                        return _Ref("crash", tag)
                    if tag in ray.cancelled:
                        return _Ref("cancelled", tag)
                    if tag in ray.raises:
                        return _Ref("raises", ray.raises[tag])
                    try:
                        return _Ref("value", fn(*args, **kwargs))
                    except Exception as err:  # noqa: BLE001
                        return _Ref("error", err)
            return Remote
        return wrap

    def wait(self, refs, num_returns=1):
        if self.fail_wait_after is not None and self.results >= self.fail_wait_after:
            raise self.exceptions.RaySystemError("System error: the GCS connection was lost")
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref, timeout=None):
        if ref.kind == "probe":  # whether the workers have dramapic: no file's result
            if isinstance(ref.value, BaseException):
                raise ref.value
            return ref.value
        self.results += 1
        kind, value = ref.kind, ref.value
        if kind == "crash":
            raise self.exceptions.WorkerCrashedError("The worker died unexpectedly while executing this task.")
        if kind == "error":
            raise self.exceptions.RayTaskError(str(value))
        if kind == "cancelled":  # Ray's words, task id and all
            raise self.exceptions.TaskCancelledError("Task: TaskID(16310a0f0a45af5cffffffffffffffffffffffff01000000) "
                                                     "was cancelled.")
        if kind == "raises":
            raise value
        return value

    def cancel(self, ref, force=False):
        pass


@pytest.fixture
def fake_ray(monkeypatch):
    import importlib.util
    import sys

    ray = _FakeRay()
    monkeypatch.setitem(sys.modules, "ray", ray)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "ray" else real(name, *a))
    return ray


def _echo(value):
    return value


def test_a_local_ray_logs_at_the_batch_s_level(fake_ray, monkeypatch):
    # Ray was started logging its warnings whatever the batch's level: under --quiet its start-up warning (token
    # authentication) went to stderr all the same
    from dramapic.archive.cluster_engines import RayEngine

    for level, ray_level in ((logging.ERROR, logging.ERROR), (logging.WARNING, logging.WARNING),
                             (logging.DEBUG, logging.WARNING)):
        monkeypatch.setattr(logging.getLogger("dramapic"), "level", level)
        with RayEngine():
            assert fake_ray.init_kwargs["logging_level"] == ray_level


def test_an_unreachable_ray_address_is_one_line_at_once(fake_ray):
    # ray.init given an address where nothing listens (a typo) retried for minutes, Ray's own C++ lines every few
    # seconds on stderr, where --scheduler with Dask answers "cannot reach" in one line
    import socket

    from dramapic.archive.cluster_engines import RayEngine

    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connecting is refused
        port = closed.getsockname()[1]
        for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
            with pytest.raises(ConfigError, match=f"cannot reach the Ray cluster {address}: .*refused"):
                RayEngine(address)
            assert not fake_ray.initialized
        reachable = f"127.0.0.1:{listening.getsockname()[1]}"
        with RayEngine(reachable):
            assert fake_ray.init_kwargs["address"] == reachable
    with RayEngine("auto"):  # Ray's own look-up of a cluster on this machine: nothing to probe
        assert fake_ray.init_kwargs["address"] == "auto"


def _no_dramapic_on_the_workers(ray) -> BaseException:
    """What ``ray.get`` raises for a task whose function cannot be unpickled on its worker, as Ray words it."""
    err = ray.exceptions.RayTaskError("ray::_dramapic_version() (pid=4242, ip=10.0.0.9)")
    err.cause = RuntimeError(
        "The remote function failed to import on the worker. This may be because needed library dependencies are not "
        "installed in the worker environment or cannot be found from sys.path ['/usr/lib/python3.11']:\n\nTraceback "
        "(most recent call last):\n  File \"function_manager.py\", line 314, in fetch_and_register_remote_function\n"
        "    function = pickle.loads(serialized_function)\nModuleNotFoundError: No module named 'dramapic'\n")
    return err


def test_a_ray_cluster_whose_workers_lack_dramapic_is_refused_in_one_line(fake_ray):
    # every file was sent, recorded failed ("the remote function failed to import on the worker") and then skipped
    # as failed earlier; a Dask cluster of the kind is refused up front (exit 4), and so is this one now
    from dramapic import __version__
    from dramapic.archive.cluster_engines import RayEngine

    with RayEngine("auto"):  # workers that have it answer
        pass
    fake_ray.workers_lack_dramapic = _no_dramapic_on_the_workers(fake_ray)
    with pytest.raises(ConfigError) as refused:
        RayEngine("auto")
    assert str(refused.value) == ("cannot set up the Ray cluster's workers (auto) for dramapic: ModuleNotFoundError: "
                                  f"No module named 'dramapic'; each worker needs dramapic {__version__} installed")
    assert not fake_ray.initialized  # the connection it made is closed


def test_a_real_ray_cluster_whose_workers_cannot_import_the_probe_is_refused(tmp_path, monkeypatch):
    # the same with Ray itself: its workers have this checkout (PYTHONPATH), not a module only this process sees
    ray = pytest.importorskip("ray", reason="ray is not installed (optional: pip install 'dramapic[ray]')")
    from dramapic.archive import cluster_engines

    (tmp_path / "only_in_the_batch_s_process.py").write_text("def version():\n    return 'x'\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        with cluster_engines.RayEngine("auto"):
            pass
        monkeypatch.syspath_prepend(str(tmp_path))  # this process's alone: Ray's workers do not see it
        import only_in_the_batch_s_process

        monkeypatch.setattr(cluster_engines, "_dramapic_version", only_in_the_batch_s_process.version)
        with pytest.raises(ConfigError, match=r"^cannot set up the Ray cluster's workers \(auto\) for dramapic: "
                                              r"ModuleNotFoundError: No module named 'only_in_the_batch_s_process'"):
            cluster_engines.RayEngine("auto")
    finally:
        ray.shutdown()


def test_a_ray_cluster_without_cpus_is_warned_about(fake_ray, caplog):
    # its one-CPU tasks wait for a node with a CPU to join: the batch sat there without a word, as on a Dask cluster
    # without workers
    from dramapic.archive.cluster_engines import RayEngine

    fake_ray.cpus = 0
    with caplog.at_level(logging.WARNING, logger="dramapic"), RayEngine():
        pass
    assert [r.getMessage() for r in caplog.records if r.name.startswith("dramapic")] == [
        "the Ray cluster (local) has no CPU: the files wait until a node with one joins"]


def test_ray_a_crashed_worker_fails_its_file_and_a_lost_cluster_is_an_engine_error(fake_ray):
    from dramapic.archive.cluster_engines import RayEngine
    from dramapic.errors import EngineError

    jobs = [(("a",), {}, "a"), (("dies",), {}, "dies"), (("b",), {}, "b")]
    fake_ray.crash = {"dies"}
    with RayEngine() as engine:  # the cluster answers: only the crashed task's file fails
        assert collect(engine, _echo, jobs) == {"a": ("a", None), "dies": (None, "WorkerCrashedError"),
                                                "b": ("b", None)}
        assert collect(engine) == {**EXPECTED, "negative": (None, "RayTaskError")}  # a task that raised
    with pytest.raises(EngineError, match=r"lost the Ray cluster \(local\) \(WorkerCrashedError: The worker died"), \
            RayEngine() as engine:
        fake_ray.alive = False  # every task "crashes" because the cluster went: not the files' failure
        collect(engine, _echo, jobs)
    fake_ray.alive, fake_ray.crash, fake_ray.fail_wait_after, fake_ray.results = True, set(), 1, 0
    with pytest.raises(EngineError, match="RaySystemError: System error: the GCS connection was lost"), \
            RayEngine() as engine:
        collect(engine, _echo, jobs)


def test_a_lost_ray_cluster_mid_batch_keeps_what_finished(fake_ray, tmp_path, monkeypatch):
    from dramapic.errors import EngineError

    archive = placeholder_archive(tmp_path / "archive", ("a.mp4", "b.mp4", "c.mp4"))
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    fake_ray.fail_wait_after = 1
    with pytest.raises(EngineError, match="lost the Ray cluster"):
        run_batch(archive, out, pipeline=load_pipeline(None), options=BatchOptions(engine="ray"))
    with Store.open(out / DB_NAME) as store:
        assert [(r["path"], r["status"]) for r in store.query(
            "SELECT f.path, r.status FROM runs r JOIN files f ON f.id = r.file_id")] == [("a.mp4", "done")]
        assert [b["status"] for b in store.batches()] == ["interrupted"]


def test_a_task_the_ray_cluster_cancelled_fails_its_file_as_cancelled(fake_ray, tmp_path, monkeypatch):
    # no worker failed: the file's row says the task was cancelled, not "the worker processing it failed"
    archive = placeholder_archive(tmp_path / "archive", ("a.mp4", "c.mp4"))
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    fake_ray.cancelled = {"c.mp4"}
    summary = run_batch(archive, out, pipeline=load_pipeline(None), options=BatchOptions(engine="ray"))
    assert (summary.done, summary.failed) == (1, 1), summary.failures
    with Store.open(out / DB_NAME) as store:
        rows = {r["path"]: tuple(r)[1:] for r in store.query(
            "SELECT f.path, r.status, r.error_type, r.error FROM runs r JOIN files f ON f.id = r.file_id")}
    assert rows == {"a.mp4": ("done", None, None),
                    "c.mp4": ("failed", "TaskCancelledError", "the Ray cluster cancelled this file's task")}


def test_a_ray_task_that_never_ran_or_whose_result_was_lost_says_so(fake_ray, tmp_path, monkeypatch):
    # no worker failed: a task Ray could not place, one whose runtime environment could not be set up, one whose
    # result the cluster lost; each file's row says what happened, in a line, not "the worker processing it failed"
    archive = placeholder_archive(tmp_path / "archive", ("a.mp4", "u.mp4", "e.mp4", "l.mp4", "o.mp4"))
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    errors = fake_ray.exceptions
    fake_ray.raises = {
        "u.mp4": errors.TaskUnschedulableError("the node specified by NodeAffinitySchedulingStrategy is dead"),
        "e.mp4": errors.RuntimeEnvSetupError("pip install failed: no such package 'nope'\nTraceback ..."),
        "l.mp4": errors.ObjectLostError(), "o.mp4": errors.OwnerDiedError()}
    summary = run_batch(archive, out, pipeline=load_pipeline(None), options=BatchOptions(engine="ray"))
    assert (summary.done, summary.failed) == (1, 4), summary.failures
    with Store.open(out / DB_NAME) as store:
        rows = {r["path"]: tuple(r)[1:] for r in store.query(
            "SELECT f.path, r.status, r.error_type, r.error FROM runs r JOIN files f ON f.id = r.file_id")}
    lost = ("failed", "TaskResultLostError", ("the Ray cluster lost this file's result (its outputs may be written); "
                                              "--retry-failed processes it again"))
    assert rows == {
        "a.mp4": ("done", None, None),
        "u.mp4": ("failed", "TaskNotStartedError", ("the Ray cluster could not schedule this file's task: the node "
                                                       "specified by NodeAffinitySchedulingStrategy is dead")),
        "e.mp4": ("failed", "TaskNotStartedError", ("the Ray cluster could not set up this file's task's runtime "
                                                       "environment: pip install failed: no such package 'nope'")),
        "l.mp4": lost, "o.mp4": lost}
