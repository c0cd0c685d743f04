"""One batch at a time per output folder: :class:`BatchLock`, an exclusive ``flock`` on ``OUT_DIR/dramapic.lock``.

The kernel releases it when the holder exits, however it exits (``SIGKILL`` included), so a crashed batch never
leaves a stale lock behind; the holder's note in the file says who holds it (a batch, or a report upgrading an
older database) to whoever is refused.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import OutputError

LOCK_NAME = "dramapic.lock"
#: what holds a :class:`BatchLock`, as its refusal says it: the holder's note starts with the role
LOCK_HOLDERS = {"batch": "another batch is running on", "report": "a report is upgrading the archive database in"}


class BatchLock:
    """An exclusive lock on an output folder for the length of one batch (``flock`` on ``OUT_DIR/dramapic.lock``),
    or of a report's upgrade of an older database.

    Parameters
    ----------
    out_dir : Path
        The batch's output folder (must exist).
    role : str
        Who takes it, ``batch`` or ``report``: written in the holder's note, so that whoever is refused is told who
        holds the folder.
    wait : bool
        Wait for the holder to finish instead of refusing.
    on_wait : callable, optional
        Called once with the holder's description when the lock is taken and ``wait`` is set.
    poll_s : float
        How often to try again while waiting.

    Raises
    ------
    OutputError
        On :meth:`acquire`, when another batch (or a report) holds the lock and ``wait`` is false.
    """

    def __init__(self, out_dir: str | Path, *, role: str = "batch", wait: bool = False,
                 on_wait: Callable[[str], None] | None = None, poll_s: float = 0.5) -> None:
        if role not in LOCK_HOLDERS:
            raise ValueError(f"unknown lock role {role!r}")
        self.path = Path(out_dir) / LOCK_NAME
        self.role = role
        self.wait = wait
        self.on_wait = on_wait
        self.poll_s = poll_s
        self._fd: int | None = None

    def acquire(self) -> "BatchLock":
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise OutputError(f"cannot create the lock file {self.path}: {err.strerror}") from None
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    who, holder = self._holder(fd)
                    if not self.wait:
                        raise OutputError(f"{who} {self.path.parent} ({holder}); "
                                          "wait for it to finish or pass --wait") from None
                    if not told and self.on_wait is not None:
                        self.on_wait(f"{who} this output folder ({holder})")
                        told = True
                    time.sleep(self.poll_s)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{self.role} pid {os.getpid()} on {socket.gethostname()} since "
                          f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        except OSError as err:  # a full disk (the holder's note), a share without locks (ENOLCK)
            os.close(fd)
            raise OutputError(f"cannot lock {self.path}: {err.strerror or err}") from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    @staticmethod
    def _holder(fd: int) -> tuple[str, str]:
        """Who holds the lock, in words (:data:`LOCK_HOLDERS`), and the note's ``pid N on HOST since TIME``."""
        try:
            text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        except OSError:
            text = ""
        role, _, rest = text.partition(" ")
        if role not in LOCK_HOLDERS:  # an older dramapic's note ("pid N on ..."): only batches took the lock
            role, rest = "batch", text
        return LOCK_HOLDERS[role], rest or "holder unknown"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "BatchLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
