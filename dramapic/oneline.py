"""One line per status line or log record: the control characters of a text written as escapes.

An archive file may be named with any character but ``/`` and NUL, and an error message may quote such a name: a
line naming it must stay one line, all of it seen. The front door escapes its status lines and log records with it
(:mod:`dramapic.cli`), and so does every worker process of a batch (:func:`dramapic.archive.engines.log_like`), whose
own log lines reach the same terminal or log.
"""

from __future__ import annotations

import logging
import unicodedata

#: Unicode categories escaped in a status line: control characters, line and paragraph separators
_LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})


def one_line(text: str) -> str:
    """``text`` with its control characters (and line or paragraph separators) written as escapes (``\\n``,
    ``\\r``, ``\\x1b``). An archive file may be named with any of them, and a file's status line must stay one
    line, all of it seen: a newline split it (a log reader's line per file broken, a line after it forged) and a
    carriage return sent the terminal back to overwrite the name's beginning with its end. Only those: a name's
    other characters that Python does not call printable (a no-break or ideographic space, a zero-width joiner in
    an emoji or an Indic name, a direction mark) are shown as they are. Text escaped already is left as it is (a
    backslash is no control character)."""
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in _LINE_BREAKING else c
                   for c in text)


class OneLineFormatter(logging.Formatter):
    """Log lines whose message stays one line (:func:`one_line`): a warning naming a file or folder of an archive
    (``cannot read X``, ``skipped X: it is a symbolic link to Y``) was split in two by a newline in the name, and a
    carriage return sent the terminal back over its start. A traceback (``-vv``) keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return one_line(super().formatMessage(record))
