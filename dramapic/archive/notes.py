"""The notes of one archive file: what ``dramapic run`` would have told its user about it, kept by the batch.

``dramapic run`` says two kinds of things about an input besides its outputs: the notes :func:`dramapic.run.run`
returns (the audio track it chose, a stale subtitle file in the other format, a video left from an earlier run) and
the warnings the analysis logs as it finds them (a DC offset, decoding errors, a recording too quiet to judge, fewer
speakers found than asked for). A batch dropped the first kind, and the second went to the log of whichever process
analysed the file, without the file's archive path (a remote Dask or Ray worker's log, which nobody reads). Caught
here while the file is processed (:func:`caught_notes`), both travel back to the batch with its outcome, which shows
them one line each under the file's name and records them with its run (``runs.notes_json``).
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import threading
import unicodedata
from collections.abc import Iterator

#: the logger every dramapic module logs under (``__name__`` of the package's modules)
LOGGER = "dramapic"

_lock = threading.Lock()
_catcher: _Catcher | None = None
_users = 0


class _Catcher(logging.Handler):
    """On the ``dramapic`` logger while files are processed: each warning logged by a thread that processes a file
    becomes a note of that file; any other record goes on to the root logger's handlers, as it would have without
    the catcher (that logger's propagation is off meanwhile, so that a caught warning is not also printed bare)."""

    def __init__(self, *, passed: int, level: int, propagate: bool) -> None:
        super().__init__(logging.NOTSET)
        self.passed = passed                # the level the logger let through before: what the user asked to see
        self.saved = (level, propagate)     # the logger's own settings, restored by the last file to finish
        self.notes: dict[int, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        notes = self.notes.get(record.thread) if record.thread is not None else None
        if notes is not None and logging.WARNING <= record.levelno < logging.ERROR:
            try:
                notes.append(record.getMessage())
            except Exception:  # noqa: BLE001  (a bad format string: logging's own way of saying so)
                self.handleError(record)
            return
        if record.levelno >= self.passed:
            logging.getLogger().handle(record)


@contextlib.contextmanager
def caught_notes(into: list[str]) -> Iterator[list[str]]:
    """Append to ``into`` every warning the ``dramapic`` loggers log in this thread until the block ends, instead of
    writing it to the log; records of other levels and of other threads are logged as before.

    The warnings are caught whatever level the log shows (``--quiet`` hides warnings, not what the archive keeps).
    Several threads of one process (a Dask worker's) may each process a file at once: each gets its own warnings;
    the logger is set back when the last of them ends.
    """
    global _catcher, _users
    ident = threading.get_ident()
    logger = logging.getLogger(LOGGER)
    with _lock:
        if _catcher is None:
            _catcher = _Catcher(passed=logger.getEffectiveLevel(), level=logger.level, propagate=logger.propagate)
            logger.addHandler(_catcher)
            logger.setLevel(min(logger.getEffectiveLevel(), logging.WARNING))
            logger.propagate = False
        _users += 1
        catcher = _catcher
        outer = catcher.notes.get(ident)
        catcher.notes[ident] = into
    try:
        yield into
    finally:
        with _lock:
            if outer is None:
                del catcher.notes[ident]
            else:  # a block inside another of this thread: the outer one catches again
                catcher.notes[ident] = outer
            _users -= 1
            if _users == 0:
                logger.removeHandler(catcher)
                level, propagate = catcher.saved
                logger.setLevel(level)
                logger.propagate = propagate
                _catcher = None


def unnamed(note: str, rel: str) -> str:
    """``note`` as the batch shows it on the line of the archive file ``rel``: without the file's own name where the
    note starts with it (``ep01.mp4: its audio has a DC offset ...``, as ``dramapic run`` says it of its one input),
    since that line names the file by its path in the archive already. Any other note is left as it is.

    The name is matched as the archive spells it and in either Unicode normalisation (the note names the file as
    the disk spells it, which may be the other form of a path recorded from another disk).
    """
    name = posixpath.basename(rel)
    for spelling in dict.fromkeys((name, unicodedata.normalize("NFC", name), unicodedata.normalize("NFD", name))):
        if spelling and note.startswith(spelling + ": "):
            return note[len(spelling) + 2:]
    return note
