"""The cluster engines of a batch (:mod:`dramapic.archive.engines` has the interface, the in-process and the
process-pool engines, and :func:`~dramapic.archive.engines.make_engine`, which starts these): a Dask cluster
(:class:`DaskEngine`, with the worker plugins that load the models once per worker) and a Ray cluster
(:class:`RayEngine`). Each runs the same per-file task and hands ``(tag, value, error)`` back as the pool does; a
cluster lost as a whole raises :class:`~dramapic.errors.EngineError`, a task that failed on its own is that file's
failure alone."""

from __future__ import annotations

import logging
import signal
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

from .. import __version__
from ..config import PipelineConfig
from ..errors import ConfigError, EngineError
from ..oneline import one_line
from ..threads import available_cores
from .engines import (
    ENGINE_PACKAGES,
    Engine,
    EngineTaskError,
    Job,
    LogSettings,
    Result,
    TaskCancelledError,
    TaskNotStartedError,
    TaskResultLostError,
    _top_up,
    batch_logging,
    log_like,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = "30s"   # how long to try reaching a Dask scheduler
RAY_CONNECT_TIMEOUT_S = 30.0  # and a Ray cluster's address
RAY_PROBE_TIMEOUT_S = 120.0  # how long a Ray cluster has to start a worker that answers whether it has dramapic


def _error_first_line(error: BaseException) -> str:
    """``error`` as ``Type: its first line`` (a cluster's exception may carry a remote traceback below it); not
    :func:`dramapic.oneline.one_line`, which keeps a text whole and escapes its control characters."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def _dask_cancel_reasons(error: BaseException) -> set[str]:
    """Why distributed cancelled futures (``FuturesCancelledError`` holds one group per reason)."""
    reasons = {str(getattr(error, "reason", "") or "")}
    for group in getattr(error, "error_groups", ()):
        reasons.add(str(group.reason))
    return reasons - {""}


def _dask_cluster_lost(error: BaseException) -> bool:
    """True when ``error`` came from the cluster itself, not from one task: the client's connection to the scheduler
    closed or timed out, the client was closed, or it cancelled every future on losing the scheduler. A worker that
    died running a task is not one of them: that task's future errs with ``KilledWorker``, and only its file fails."""
    from concurrent.futures import CancelledError

    from distributed.client import ClosedClientError

    if isinstance(error, CancelledError):
        return "scheduler-connection-lost" in _dask_cancel_reasons(error)
    return isinstance(error, (ClosedClientError, OSError, TimeoutError))  # CommClosedError is an OSError


def _cancellation(future) -> BaseException:
    """The ``CancelledError`` a cancelled future holds (its ``result()`` raises it; ``exception()`` answers None)."""
    from concurrent.futures import CancelledError

    try:
        future.result()
    except CancelledError as err:
        return err
    except Exception as err:  # noqa: BLE001  (whatever it holds, it is the answer)
        return err
    return CancelledError(f"{future.key} cancelled")


def _cancelled_message(error: BaseException) -> str:
    """The words for a file whose Dask task was cancelled, with the scheduler's reason where it gave one (the task's
    own key says nothing to the user)."""
    reasons = sorted(_dask_cancel_reasons(error) - {"unknown"})
    why = f" ({'; '.join(reasons)})" if reasons else ""
    note = str(getattr(error, "msg", "") or "").strip()
    return f"the Dask cluster cancelled this file's task{why}" + (f": {note.splitlines()[0]}" if note else "")


class DaskEngine(Engine):
    """Jobs as ``distributed`` futures on a running cluster (``scheduler``) or on a local cluster."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, *, workers: int = 1, pipeline: PipelineConfig | None = None,
                 max_in_flight: int | None = None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError(f"--engine dask needs {ENGINE_PACKAGES['dask'][1]}") from None
        # importing distributed set its loggers to INFO, whatever the application chose: a local cluster's start-up
        # and shut-down chatter (some thirty lines) went to stderr under --quiet. They follow the root's level again
        logging.getLogger("distributed").setLevel(logging.NOTSET)
        self._cluster = None
        self._pending: dict[Any, Hashable] = {}
        self._address = scheduler or "(local)"
        self._warm_up: str | None = None  # the name the warm-up plugin is registered under, until unregistered
        threads = None
        failure = None
        try:
            if scheduler:
                self._client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
            else:
                threads = max(1, available_cores() // workers)
                logs = batch_logging()
                # no dashboard, but the scheduler serves HTTP all the same, on 8787 unless told: with that port taken
                # (a second batch, a notebook's cluster) distributed warned in four lines. Any free port, then
                self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                             dashboard_address=None,
                                             # a task whose worker died is that file's failure, as in a pool:
                                             # distributed ran it again on a fresh worker, up to 3 times, each
                                             # run of a file that crashes its worker taking one more down
                                             scheduler_kwargs={"dashboard_address": "127.0.0.1:0",
                                                               "allowed_failures": 0},
                                             plugins=(LocalWorkerPlugin(logs),),
                                             # distributed's own lines in the workers: errors only. A pool's
                                             # workers say nothing of the kind, and each worker told of the
                                             # cancellation of its file (Ctrl-C, SIGTERM) above "interrupted"
                                             silence_logs=logging.ERROR)
                self._client = Client(self._cluster, set_as_default=False)
        except Exception as err:  # noqa: BLE001 - unreachable, timed out, refused or not an address: all one answer
            failure = str(err)
        if failure is not None:
            if self._cluster is not None:
                self._cluster.close()
            # the half-built Client closes itself in __del__; left to a later garbage collection, that can run
            # inside the next Client's start-up and deadlock on distributed's loop lock, so collect it now. Only
            # once the except block has let go of its error: that error's traceback holds the Client (so does an
            # exception raised inside the block, as its context), which then lived on to the interpreter's exit,
            # where closing it waited 60 s and printed a traceback after the one line ("--scheduler not-a-url")
            import gc

            gc.collect()
            raise ConfigError(f"cannot reach the Dask scheduler {scheduler or '(local)'}: {failure}")
        if pipeline is not None:
            # a name of this batch's: one batch ending does not unregister another's, on the same cluster, with it
            self._warm_up = f"dramapic-warm-up-{uuid.uuid4().hex[:12]}"
            try:
                self._client.register_plugin(WarmUpPlugin(pipeline, threads=threads), name=self._warm_up)
            except Exception as err:  # noqa: BLE001 - a worker's answer, re-raised as a bare Exception of its text
                # workers that cannot unpickle it (no dramapic, another version): it ended in distributed's traceback
                self.close(cancel=True)
                why = _error_first_line(err).removeprefix("Exception: ")  # distributed's wrapping says nothing
                raise ConfigError(f"cannot set up the Dask cluster's workers ({self._address}) for dramapic: {why}; "
                                  f"each worker needs dramapic {__version__} installed") from None
        threads_total = sum(self._client.nthreads().values())
        if not threads_total:  # the batch would sit there without a word, its progress bar at 0
            log.warning("the Dask cluster %s has no workers: the files wait until one joins", self._address)
        # one task per worker thread: a worker sent more keeps the rest queued, and when it dies under the file it
        # runs, the scheduler holds every file it had (those never started too) for suspects, and fails them with it
        self.max_in_flight = max_in_flight or threads_total or 1

    @property
    def client(self):
        return self._client

    def _lost(self, error: BaseException) -> EngineError:
        if "scheduler-connection-lost" in _dask_cancel_reasons(error):
            reason = "the connection to the scheduler closed"
        else:
            reason = _error_first_line(error)
        return EngineError(f"lost the Dask cluster {self._address} ({reason}); the files finished before are "
                           "recorded: run the batch again to process the rest")

    def imap_unordered(self, fn: Callable[..., Any], jobs: Iterable[Job]) -> Iterator[Result]:
        """As :meth:`Engine.imap_unordered`. A task whose worker died (``KilledWorker``) fails its file alone; the
        cluster itself going away (scheduler gone, connection closed) raises :class:`EngineError` instead of failing
        every file in flight and every file after them. A task whose result was lost with its worker stays in
        flight: the scheduler computes it again. One the cluster cancelled fails its file with a
        :class:`TaskCancelledError` that gives the scheduler's reason."""
        from concurrent.futures import CancelledError

        from distributed import wait

        queue = iter(jobs)
        pending = self._pending
        more = True
        while True:
            try:
                if more:
                    # pure=False: two files are never "the same task" even when their arguments hash alike
                    more = _top_up(queue, pending, self.max_in_flight,
                                   lambda args, kwargs: self._client.submit(fn, *args, pure=False, retries=0,
                                                                            **kwargs))
                if not pending:
                    return
                cancelled: dict[Any, BaseException] = {}
                try:
                    with self._client.as_current():  # distributed.wait looks for the "current" client
                        finished = wait(list(pending), return_when="FIRST_COMPLETED").done
                except CancelledError as err:  # wait raises for cancelled futures instead of returning them
                    if _dask_cluster_lost(err):
                        raise
                    cancelled = {e.key: e for group in getattr(err, "error_groups", ()) for e in group.errors}
                    finished = [f for f in pending if f.status != "pending"]
                results = []
                for future in finished:
                    if future.status == "lost":
                        # the worker holding its result died; the scheduler computes it again (this client still
                        # wants it) and it comes back finished or erred. Asking it now would wait for that, then
                        # answer "no error" and fail a file whose task succeeded
                        continue
                    if future.status == "cancelled":
                        reason = cancelled.get(future.key) or _cancellation(future)
                        if _dask_cluster_lost(reason):
                            raise reason
                        results.append((future, None, TaskCancelledError(_cancelled_message(reason))))
                        continue
                    if future.status == "finished":
                        try:
                            results.append((future, future.result(), None))
                        except Exception as err:  # its data went with its worker, or the cluster did
                            if _dask_cluster_lost(err):
                                raise
                            results.append((future, None, err))
                        continue
                    try:
                        error = cancelled.get(future.key) or future.exception()
                    except Exception as err:  # a cancelled or lost future
                        if _dask_cluster_lost(err):
                            raise
                        error = err
                    results.append((future, None, error if isinstance(error, BaseException) else TaskCancelledError(
                        f"the Dask cluster gave no result for this file's task (its status: {future.status})")))
            except Exception as err:
                if not _dask_cluster_lost(err):
                    raise
                raise self._lost(err) from None
            for future, value, error in results:
                yield pending.pop(future), value, error
                future.release()
        # an interrupted generator leaves futures behind; close() cancels them

    def close(self, *, cancel: bool = False) -> None:
        if not cancel:
            self._close(cancel=False)
            return
        # after a lost cluster, Ctrl-C or another error, whose own line tells it: a client still trying to reach a
        # scheduler that died outright (kill -9, its machine gone) logged that attempt's cancellation as an ERROR
        # with two chained tracebacks, printed above that line. What distributed says while closing goes unsaid
        loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
                   if name.split(".")[0] == "distributed"]
        saved = [(logger, logger.disabled) for logger in loggers]
        for logger in loggers:
            logger.disabled = True
        try:
            self._close(cancel=True)
        finally:
            for logger, disabled in saved:
                logger.disabled = disabled

    def _unregister_warm_up(self, client) -> None:
        """On a cluster given by ``scheduler`` (shared, and going on after the batch) the warm-up plugin stayed
        registered: each worker that joined later loaded dramapic's models (or, lacking dramapic, failed to)."""
        name, self._warm_up = self._warm_up, None
        # a local cluster closes with the batch; a lost one cannot be told, and asking would wait for a time-out
        if name is None or self._cluster is not None or client.status != "running":
            return
        try:
            client.unregister_worker_plugin(name)
        except Exception as err:  # noqa: BLE001  (a worker that never had it: the scheduler forgot it all the same)
            log.debug("unregistering the warm-up plugin %s: %s", name, _error_first_line(err))

    def _close(self, *, cancel: bool) -> None:
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            if cancel and self._pending:
                try:
                    client.cancel(list(self._pending), force=True)
                except Exception:  # noqa: BLE001  (closing anyway)
                    pass
            self._pending.clear()
            self._unregister_warm_up(client)
            try:
                client.close()
            except Exception as err:  # a lost cluster: its error, on its way out, is the one to tell
                if not cancel:
                    raise
                log.debug("closing the Dask client failed: %s", err)
        if self._cluster is not None:
            cluster, self._cluster = self._cluster, None
            try:
                cluster.close()
            except Exception as err:  # as above
                if not cancel:
                    raise
                log.debug("closing the local Dask cluster failed: %s", err)


def _warm_up_plugin_base():
    try:
        from distributed.diagnostics.plugin import WorkerPlugin
    except ImportError:  # dask not installed: the class is never used
        return object
    return WorkerPlugin


class LocalWorkerPlugin(_warm_up_plugin_base()):
    """Given to the workers of a local cluster, which are processes of this machine as a pool's are, and set up as
    they are. Ctrl-C reaches the whole process group, and the batch handles it (records what finished, then closes
    the cluster), so they ignore it; they died of it instead, each printing two KeyboardInterrupt tracebacks after
    the one line, and a lone worker's task waited for ever. They log as the batch does (:func:`log_like`). Not for
    a cluster the batch did not start: how its workers take a signal and where they log is that cluster's business."""

    name = "dramapic-local-worker"

    def __init__(self, logs: LogSettings) -> None:
        self.logs = logs

    def setup(self, worker) -> None:
        # setup runs on the worker's event loop, in the main thread of its process: where a handler can be set
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        log_like(self.logs)


class WarmUpPlugin(_warm_up_plugin_base()):
    """A Dask worker plugin that loads the models once when a worker joins."""

    def __init__(self, pipeline: PipelineConfig, *, threads: int | None = None) -> None:
        self.pipeline = pipeline
        self.threads = threads

    def setup(self, worker) -> None:
        from ..analysis.loaders import warm_up

        try:
            warm_up(self.pipeline, threads=self.threads)
        except Exception as err:  # noqa: BLE001  (tasks then fail file by file with the real error)
            # one line whatever the worker's logging (a cluster's workers log as that cluster set them up)
            log.warning("Dask worker %s could not load the models: %s", one_line(str(getattr(worker, "address", "?"))),
                        one_line(str(err)))


def _dramapic_version() -> str:
    """What a worker of a cluster answers when it can import dramapic (the probe's function is pickled by name)."""
    return __version__


#: what ``ray.get`` raises for one task's own end (it raised, its worker process crashed or was killed for memory,
#: its node died, it was cancelled or could not be placed, its result was lost): that file fails, the batch goes on
RAY_TASK_ERRORS = ("RayTaskError", "WorkerCrashedError", "OutOfMemoryError", "NodeDiedError", "TaskCancelledError",
                   "TaskUnschedulableError", "RuntimeEnvSetupError", "ObjectLostError")


def _ray_detail(error: BaseException) -> str:
    """The first line of what Ray says went wrong (its ``error_message``, without its class's own preamble)."""
    text = str(getattr(error, "error_message", None) or "").strip()
    return f": {text.splitlines()[0]}" if text else ""


#: the task errors of :data:`RAY_TASK_ERRORS` where no worker failed, and the file's failure in words
RAY_NO_WORKER_FAILED: dict[str, Callable[[BaseException], EngineTaskError]] = {
    "TaskCancelledError": lambda err: TaskCancelledError("the Ray cluster cancelled this file's task"),
    "TaskUnschedulableError": lambda err: TaskNotStartedError(
        f"the Ray cluster could not schedule this file's task{_ray_detail(err)}"),
    "RuntimeEnvSetupError": lambda err: TaskNotStartedError(
        f"the Ray cluster could not set up this file's task's runtime environment{_ray_detail(err)}"),
    # OwnerDiedError, ObjectFetchTimedOutError, ObjectReconstructionFailedError, ... are ObjectLostErrors
    "ObjectLostError": lambda err: TaskResultLostError(
        "the Ray cluster lost this file's result (its outputs may be written); --retry-failed processes it again"),
}


def _unreachable(address: str, *, timeout: float) -> str | None:
    """Why no TCP connection to ``address`` (``host:port``, ``ray://host:port``) can be made; None when one can, or
    when the address is not of that form (``auto``: Ray looks up a cluster on this machine itself)."""
    import socket

    host, colon, port = address.split("://", 1)[-1].rpartition(":")
    if not colon or not port.isdigit():
        return None
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return None
    except OSError as err:
        return err.strerror or str(err) or type(err).__name__


class RayEngine(Engine):
    """Jobs as Ray tasks (one CPU each) on a running cluster (``address``) or on a local Ray."""

    name = "ray"

    def __init__(self, address: str | None = None, *, workers: int = 1, max_in_flight: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(f"--engine ray needs {ENGINE_PACKAGES['ray'][1]}") from None
        self._ray = ray
        self._address = address or "(local)"
        exceptions = getattr(ray, "exceptions", None)
        self._task_errors = tuple(getattr(exceptions, name) for name in RAY_TASK_ERRORS
                                  if isinstance(getattr(exceptions, name, None), type))
        self._no_worker_failed = tuple((getattr(exceptions, name), words) for name, words in RAY_NO_WORKER_FAILED.items()
                                       if isinstance(getattr(exceptions, name, None), type))
        self._started_here = not ray.is_initialized()
        # ray.init given an address where nothing listens (a typo) retried for minutes, Ray's own C++ lines every
        # few seconds on stderr: a connection is tried first, as a Dask scheduler's is (CONNECT_TIMEOUT)
        why = _unreachable(address, timeout=RAY_CONNECT_TIMEOUT_S) if address and self._started_here else None
        if why is not None:
            raise ConfigError(f"cannot reach the Ray cluster {address}: {why}")
        if self._started_here:
            # its warnings as the batch's (none under --quiet), its INFO chatter never
            level = max(batch_logging()[0], logging.WARNING)
            try:
                if address:
                    ray.init(address=address, log_to_driver=False, logging_level=level)
                else:
                    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=level)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise ConfigError(f"cannot reach the Ray cluster {address or '(local)'}: {err}") from None
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if not cpus:  # its one-CPU tasks would wait without a word, the progress bar at 0
            log.warning("the Ray cluster %s has no CPU: the files wait until a node with one joins", self._address)
        self.max_in_flight = max_in_flight or 2 * max(1, cpus)
        self._pending: dict[Any, Hashable] = {}
        if address:
            self._check_workers()

    def _check_workers(self) -> None:
        """Refuse a cluster whose workers cannot import dramapic (not installed, another version), as a Dask one is:
        every file was recorded failed (the function failed to import on the worker), then skipped as failed earlier.
        One task that needs no CPU asks; one that does not answer in time (a node still starting) is let be."""
        ray = self._ray
        probe = ray.remote(num_cpus=0, max_retries=0)(_dramapic_version).remote()
        try:
            ray.get(probe, timeout=RAY_PROBE_TIMEOUT_S)
        except Exception as err:  # noqa: BLE001  (sorted below)
            if isinstance(err, TimeoutError):  # GetTimeoutError: the files will tell
                log.debug("no Ray worker answered in %.0f s whether it has dramapic", RAY_PROBE_TIMEOUT_S)
                try:
                    ray.cancel(probe, force=True)
                except Exception as cancel_err:  # noqa: BLE001  (a probe left waiting harms no file)
                    log.debug("cancelling the Ray probe failed: %s", cancel_err)
                return
            self.close(cancel=True)
            # Ray's text: a RuntimeError ("The remote function failed to import on the worker ...", sys.path and a
            # traceback) whose last line is the import's own error
            text = str(getattr(err, "cause", None) or err)
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            why = lines[-1] if lines else type(err).__name__
            raise ConfigError(f"cannot set up the Ray cluster's workers ({self._address}) for dramapic: {why}; "
                              f"each worker needs dramapic {__version__} installed") from None

    def _lost(self, error: BaseException) -> EngineError:
        return EngineError(f"lost the Ray cluster {self._address} ({_error_first_line(error)}); the files finished "
                           "before are recorded: run the batch again to process the rest")

    def _cluster_error(self, error: BaseException) -> bool:
        """An error of Ray itself or of its connection (a RayError, a closed or refused connection, a time-out, the
        gRPC of Ray's client), not one of this code's own mistakes, which go on as they are."""
        base = getattr(getattr(self._ray, "exceptions", None), "RayError", None)
        return (isinstance(base, type) and isinstance(error, base)) or isinstance(error, (OSError, TimeoutError)) \
            or type(error).__module__.split(".")[0] in ("ray", "grpc")

    def _cluster_alive(self) -> bool:
        """Whether the cluster still answers and has a CPU to run on: a task's worker that crashed is that file's
        failure, but every task crashes when the cluster goes, and that must not fail the whole archive."""
        try:
            return bool(self._ray.is_initialized()) and self._ray.cluster_resources().get("CPU", 0) > 0
        except Exception:  # noqa: BLE001  (not answering is the answer)
            return False

    def imap_unordered(self, fn: Callable[..., Any], jobs: Iterable[Job]) -> Iterator[Result]:
        """As :meth:`Engine.imap_unordered`. A task that failed on its own (:data:`RAY_TASK_ERRORS`: its worker
        crashed, its node died, ...) fails its file while the cluster still answers; an error from the cluster
        itself (from ``ray.wait``, from submitting, or any other from ``ray.get``) raises :class:`EngineError`. A task
        the cluster cancelled, could not start or whose result it lost fails its file with an :class:`EngineTaskError`
        saying so (:data:`RAY_NO_WORKER_FAILED`)."""
        ray = self._ray
        remote = ray.remote(num_cpus=1, max_retries=0)(fn)
        queue = iter(jobs)
        pending = self._pending
        more = True
        while True:
            try:
                if more:
                    more = _top_up(queue, pending, self.max_in_flight,
                                   lambda args, kwargs: remote.remote(*args, **kwargs))
                if not pending:
                    return
                ready, _ = ray.wait(list(pending), num_returns=1)
            except Exception as err:
                if not self._cluster_error(err):
                    raise
                raise self._lost(err) from None  # RaySystemError, ConnectionError, ...: the cluster's
            for ref in ready:
                try:
                    value = ray.get(ref)
                except Exception as err:  # noqa: BLE001  (sorted below)
                    if isinstance(err, self._task_errors):
                        if not self._cluster_alive():
                            raise self._lost(err) from None
                        # no worker failed: "the worker processing it failed" would be untrue, and Ray's own words
                        # name the task's or object's id; said as Dask's are
                        err = next((words(err) for kind, words in self._no_worker_failed if isinstance(err, kind)),
                                   err)
                    elif self._cluster_error(err):  # LocalRayletDiedError, RaySystemError, ...
                        raise self._lost(err) from None
                    yield pending.pop(ref), None, err
                else:
                    yield pending.pop(ref), value, None

    def close(self, *, cancel: bool = False) -> None:
        ray = self._ray
        if cancel:
            for ref in list(self._pending):
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001
                    pass
        self._pending.clear()
        try:
            if self._started_here and ray.is_initialized():
                ray.shutdown()
        except Exception as err:  # a lost cluster: its error, on its way out, is the one to tell
            if not cancel:
                raise
            log.debug("shutting Ray down failed: %s", err)
