"""The engines a batch runs on: in process, a local process pool, a Dask cluster (started here) and Ray."""

from __future__ import annotations

import math
import os
import time

import pytest

from dramapic.archive.batch import BatchOptions, run_batch
from dramapic.config import load_pipeline
from dramapic.archive.engines import DaskEngine, ProcessPoolEngine, SerialEngine, make_engine
from dramapic.errors import ConfigError
from dramapic.archive.store import DB_NAME, Store
from helpers import CLIPS, REPO, assert_consistent, make_archive

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


def test_unknown_engine_or_unreachable_cluster_is_a_config_error(monkeypatch):
    with pytest.raises(ConfigError, match="unknown engine"):
        make_engine("spark")
    pytest.importorskip("distributed", reason="dask.distributed is not installed (extra: archive)")
    monkeypatch.setattr("dramapic.archive.engines.CONNECT_TIMEOUT", "1s")
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler tcp://127.0.0.1:1"):
        make_engine("dask", scheduler="tcp://127.0.0.1:1")


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
