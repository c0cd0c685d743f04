"""Where the per-file task of a batch runs: in this process, in a local process pool, on a Dask cluster or on a
Ray cluster. Every engine runs the same top-level function (:func:`dramapic.archive.batch.process_file`) and yields the
results back to the batch, which alone writes the database.

All engines share one small interface, :meth:`Engine.imap_unordered`: give it a function and an iterable of
``(args, kwargs, tag)`` jobs, get ``(tag, value, error)`` triples back in completion order. ``error`` is ``None``
when the call returned; otherwise it is the exception that the *engine* saw for that job (a worker process that died
running it). A Dask or Ray cluster lost as a whole (scheduler gone, connection closed) is no job's failure: it raises
:class:`~dramapic.errors.EngineError`. Only a bounded number of jobs is in flight at a time, so an interrupted batch
stops promptly and a huge archive is not submitted at once.

``local``
    ``workers=1``: in this process (models load on first use and stay loaded). ``workers=N``: a
    :class:`concurrent.futures.ProcessPoolExecutor` of N spawned processes whose initializer loads the models
    once and gives each process its share of the cores (``cores // N`` threads per numeric library, see
    :mod:`dramapic.threads`). If a worker dies (out of memory, a crash in
    native code), the files it had in flight are reported as failed and a fresh pool takes the rest.
``dask``
    ``scheduler="tcp://host:8786"``: a running ``distributed`` cluster; without it, a ``LocalCluster`` of
    ``workers`` processes started for the batch and closed after it (whose workers, like a pool's, leave Ctrl-C to
    the batch). A worker plugin, unregistered when the batch ends, loads the models once per worker. Workers must
    reach the archive and the output folder under the same paths (a shared filesystem).
    One task per worker thread is in flight, so a worker that dies takes no queued file with it; on the local
    cluster (``allowed_failures=0``) the file it was running fails at once, as in a pool, where distributed would
    run it on three more workers first. A cluster given by ``scheduler`` keeps its own ``allowed-failures``.
``ray``
    ``address="host:6379"``: a running Ray cluster (without it, a local Ray with ``workers`` CPUs), refused up
    front when its workers cannot import dramapic. Tasks ask for one CPU each; Ray keeps worker processes, so models
    load once per worker process. Needs ``ray``.

This module has the interface and the local engines; the two cluster engines are
:mod:`dramapic.archive.cluster_engines`'s, imported by :func:`make_engine` only when a batch asks for one.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any, Callable, Hashable, Iterable, Iterator

from ..config import PipelineConfig
from ..errors import ConfigError
from ..lifecycle import run_task
from ..oneline import OneLineFormatter, one_line
from ..threads import available_cores

log = logging.getLogger(__name__)

Job = tuple[tuple, dict, Hashable]
Result = tuple[Hashable, Any, BaseException | None]


class EngineTaskError(RuntimeError):
    """What an engine reports for a job that ended with no worker failing (the job itself never answered, or its
    answer was lost): ``str(err)`` says in words what happened, for the file's failure row."""


class TaskCancelledError(EngineTaskError):
    """A job its cluster cancelled (the scheduler dropped it, another client cancelled it)."""


class TaskNotStartedError(EngineTaskError):
    """A job its cluster could not start: no node can run it, its runtime environment could not be set up."""


class TaskResultLostError(EngineTaskError):
    """A job whose result the cluster lost before the batch read it (it may have run, outputs and all)."""


class Engine:
    """Base class. Use as a context manager; leaving it with an exception cancels what is still in flight."""

    name = "engine"

    def imap_unordered(self, fn: Callable[..., Any], jobs: Iterable[Job]) -> Iterator[Result]:
        raise NotImplementedError

    def close(self, *, cancel: bool = False) -> None:
        """Release the engine's workers; ``cancel`` drops queued and running work instead of waiting for it."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close(cancel=kind is not None)


class SerialEngine(Engine):
    """Runs every job in this process, one after another."""

    name = "local"

    def imap_unordered(self, fn: Callable[..., Any], jobs: Iterable[Job]) -> Iterator[Result]:
        for args, kwargs, tag in jobs:
            try:
                value = fn(*args, **kwargs)
            except Exception as err:  # noqa: BLE001  (reported, like the other engines do)
                yield tag, None, err
            else:
                yield tag, value, None


def _top_up(queue: Iterator[Job], pending: dict, limit: int, submit: Callable[[tuple, dict], Any]) -> bool:
    """Submit jobs from ``queue`` until ``limit`` are in flight, recording ``pending[handle] = tag``; False once
    the queue is exhausted. The bound is what lets an interrupted batch stop promptly."""
    while len(pending) < limit:
        job = next(queue, None)
        if job is None:
            return False
        args, kwargs, tag = job
        pending[submit(args, kwargs)] = tag
    return True


LogSettings = tuple[int, str | None]


def batch_logging() -> LogSettings:
    """This process's dramapic log level (``--quiet``, ``-v``) and the format of its log lines (its root handler's):
    what a worker process on this machine logs with (:func:`log_like`)."""
    fmt = next((getattr(h.formatter, "_fmt", None) for h in logging.getLogger().handlers if h.formatter), None)
    return logging.getLogger("dramapic").getEffectiveLevel(), fmt


def log_like(settings: LogSettings) -> None:
    """In a worker process: dramapic's records at the batch's level, in its lines' format, each one line as the
    batch's own (:class:`~dramapic.oneline.OneLineFormatter`). A worker knew nothing of the batch's logging: its
    warnings went to stderr through logging's last resort, bare, and under --quiet too; and then, in the format but
    not escaped, a file name or an error with a newline split the worker's line (forging one after it)."""
    level, fmt = settings
    logging.getLogger("dramapic").setLevel(level)
    if not logging.getLogger().handlers:
        handler = logging.StreamHandler()  # stderr, as basicConfig's own
        handler.setFormatter(OneLineFormatter(fmt or logging.BASIC_FORMAT))
        logging.basicConfig(handlers=[handler])


def _init_pool_worker(pipeline: PipelineConfig | None, threads: int | None, parent: int | None = None,
                      logs: LogSettings | None = None) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it (records what finished, then stops the pool),
    # so the workers ignore it instead of dying half-way through writing their outputs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if logs is not None:
        log_like(logs)
    if parent is not None:  # a worker ends with its batch, even one killed with SIGKILL
        from ..lifecycle import become_worker

        become_worker(parent)
    if pipeline is None:
        return
    from ..analysis.loaders import warm_up

    try:
        warm_up(pipeline, threads=threads)
    except Exception as err:  # noqa: BLE001  (each task will then fail with the real error, file by file)
        # escaped here too: the worker's log may be set up by someone else (log_like leaves a handler as it is)
        log.warning("worker %d could not load the models: %s", os.getpid(), one_line(str(err)))


class ProcessPoolEngine(Engine):
    """A pool of ``workers`` spawned processes on this machine, each loading the models once."""

    name = "local"

    def __init__(self, workers: int, *, pipeline: PipelineConfig | None = None, threads: int | None = None,
                 max_in_flight: int | None = None) -> None:
        self.workers = workers
        self.pipeline = pipeline
        self.threads = threads if threads is not None else max(1, available_cores() // workers)
        self.max_in_flight = max_in_flight or 2 * workers
        self._executor = None

    def _new_executor(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the parent may already hold torch's thread pools, which do not survive a fork
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_pool_worker,
                                   initargs=(self.pipeline, self.threads, os.getpid(), batch_logging()))

    def imap_unordered(self, fn: Callable[..., Any], jobs: Iterable[Job]) -> Iterator[Result]:
        """As :meth:`Engine.imap_unordered`. A worker that dies (out of memory, a crash in native code) breaks the
        whole pool, and every job in flight fails with it, not only the one that killed it. Those jobs are not
        failed: each is run again *alone* in a fresh pool, and only one that breaks a pool while alone is failed
        (``BrokenProcessPool``); the others finish as if nothing had happened."""
        from collections import deque
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        queue = iter(jobs)
        suspects: deque[Job] = deque()  # in flight when a pool broke: each to be run alone
        alone: Hashable | None = None  # the tag of the suspect running alone now
        pending: dict[Any, tuple[Job, Any]] = {}  # future -> (its job, the executor it went to)
        exhausted = False
        while True:
            while alone is None:
                isolate = bool(suspects)
                if isolate:
                    if pending:  # the others finish first: a suspect runs alone
                        break
                    job = suspects.popleft()
                elif exhausted or len(pending) >= self.max_in_flight:
                    break
                else:
                    job = next(queue, None)
                    if job is None:
                        exhausted = True
                        break
                if self._executor is None:
                    self._executor = self._new_executor()
                args, kwargs, tag = job
                try:
                    # run_task: a worker told to stop (SIGTERM) cleans up the file in hand, then exits
                    future = self._executor.submit(run_task, fn, *args, **kwargs)
                except BrokenProcessPool:  # it broke before this job reached it: not this job's doing
                    self._replace_broken()
                    suspects.appendleft(job)
                    continue
                pending[future] = (job, self._executor)
                if isolate:
                    alone = tag
            if not pending:
                return
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in finished:
                job, executor = pending.pop(future)
                tag = job[2]
                error = (BrokenProcessPool("cancelled when its pool broke") if future.cancelled()
                         else future.exception())
                if isinstance(error, BrokenProcessPool):
                    if executor is self._executor:  # not a pool already replaced for an earlier casualty
                        self._replace_broken()
                    if tag != alone:
                        suspects.append(job)
                        continue
                if tag == alone:
                    alone = None
                yield tag, (None if error is not None else future.result()), error

    def _replace_broken(self) -> None:
        log.warning("a worker process died; starting a fresh pool for the remaining files")
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = None

    def close(self, *, cancel: bool = False) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if not cancel:
            executor.shutdown(wait=True)
            return
        terminate = getattr(executor, "terminate_workers", None)  # Python 3.14+
        if terminate is not None:
            terminate()
            return
        # before 3.14 there is no public way: take the worker processes before shutdown() forgets them
        processes = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()


#: the package each cluster engine needs, and how to get it
ENGINE_PACKAGES = {"dask": ("distributed", "dask.distributed: pip install 'dramapic[archive]'"),
                   "ray": ("ray", "ray: pip install 'dramapic[ray]'")}


def check_engine_installed(kind: str) -> None:
    """Raise :class:`ConfigError` when ``kind``'s package is missing: before a batch creates anything on disk
    (reaching its cluster is :func:`make_engine`'s test, after the plan)."""
    import importlib.util

    if kind in ENGINE_PACKAGES:
        package, hint = ENGINE_PACKAGES[kind]
        if importlib.util.find_spec(package) is None:
            raise ConfigError(f"--engine {kind} needs {hint}")
    elif kind != "local":
        raise ConfigError(f"unknown engine {kind!r} (known: local, dask, ray)")


def make_engine(kind: str, *, workers: int = 1, scheduler: str | None = None, address: str | None = None,
                pipeline: PipelineConfig | None = None, pool: bool | None = None) -> Engine:
    """The engine ``dramapic batch --engine`` names.

    ``pool`` (local): a process pool even of one worker, where a crash in native code fails its file and not the
    batch (default: a pool when ``workers`` > 1, else this process).

    Raises
    ------
    ConfigError
        Unknown engine, or its package is not installed, or its cluster cannot be reached.
    """
    if kind == "local":
        return ProcessPoolEngine(workers, pipeline=pipeline) if (workers > 1 if pool is None else pool) \
            else SerialEngine()
    if kind == "dask":
        from .cluster_engines import DaskEngine

        return DaskEngine(scheduler, workers=workers, pipeline=pipeline)
    if kind == "ray":
        from .cluster_engines import RayEngine

        return RayEngine(address, workers=workers)
    raise ConfigError(f"unknown engine {kind!r} (known: local, dask, ray)")
