"""Kept work folders of the lab: made in a staging folder, published whole under a marker, reused while unchanged.

What ``dramapic eval`` keeps under ``--work`` is kept this way: the cross-corpus timelines
(:mod:`dramapic.lab.timelines`), the copies derived from them (far rooms, short scenes, the speech reference) and
the stage-1 refits. A folder is written in a hidden staging folder ``.staging-<pid>-...`` beside its final place
and renamed into it only when its files and its marker are written, so that an interrupted writer never leaves a
half folder where a reader would find (and score) it; the marker records what the folder was made from (a key)
and the sha256 of every file it holds, so that a later run reuses it only while both are unchanged. A writer
killed mid-way leaves its staging folder; the next writer removes it once its process is gone. ``dramapic train``
stages its outputs the same way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputError
from ..models import file_sha256

log = logging.getLogger(__name__)

#: name prefix of a staging folder, followed by the writer's pid
STAGING = ".staging-"
#: the key in a copy's marker under which :func:`staged_copy` lists the files it holds
OUTPUTS = "outputs"


def sha256_of(path: Path, *, what: str) -> str:
    """:func:`dramapic.models.file_sha256`, a missing or unreadable file an :class:`InputError` naming it as ``what``."""
    try:
        return file_sha256(path)
    except FileNotFoundError:
        raise InputError(f"{what} not found: {path}") from None
    except OSError as err:
        raise InputError(f"cannot read the {what} {path}: {err}") from None


def read_marker(folder: Path, name: str) -> dict[str, Any] | None:
    """The marker ``name`` of a kept folder (timelines, a derived copy, a stage-1 refit), or None when there is none
    or it is damaged (cut short, not JSON, not a JSON object): the folder then counts as not built and is built
    again, with a warning (a marker that was valid JSON but no object ended in an AttributeError traceback)."""
    path = folder / name
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        marker, why = None, str(err)
    else:
        why = "not a JSON object"
    if isinstance(marker, dict):
        return marker
    if path.exists():  # not a folder that was never built (or whose marker cannot even be looked at)
        log.warning("%s is unreadable (%s): %s counts as not built", path, why, folder.name)
    return None


@contextlib.contextmanager
def staged_copy(out: Path, *, marker: str, key: Mapping[str, Any], what: str) -> Iterator[Path]:
    """A folder to write a derived copy of timelines into (the speech reference, the short scenes), published whole.

    It lies one level down in a hidden staging folder beside ``out`` (never a folder of labels a reader of the tree
    could take for timelines). When the block ends, ``key`` and the sha256 of every file the block wrote
    (:data:`OUTPUTS`; :func:`kept_copy` checks both) are written as the ``marker`` file and the folder is renamed
    to ``out`` (an outdated ``out`` is moved aside and removed); when it raises, nothing is left. A killed
    writer's staging folder is removed by the next one (:func:`clear_stale_staging`).

    Raises
    ------
    OutputError
        ``out`` cannot be written (an ``OSError`` inside the block included), naming it as ``what``.
    """
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        clear_stale_staging(out.parent)
        holder = Path(tempfile.mkdtemp(prefix=f"{STAGING}{os.getpid()}-", dir=out.parent))
    except OSError as err:
        raise OutputError(f"cannot write under {out.parent}: {err}") from None
    staging = holder / out.name
    try:
        staging.mkdir()
        yield staging
        # what the copy holds, so that a file of it damaged or removed later is found (kept_copy), not scored
        outputs = {p.name: sha256_of(p, what=what) for p in sorted(staging.iterdir()) if p.is_file()}
        (staging / marker).write_text(json.dumps({**key, OUTPUTS: outputs}, indent=1) + "\n", encoding="utf-8")
        if out.exists():
            out.rename(holder / f"{out.name}.old")
        staging.rename(out)
    except OSError as err:
        raise OutputError(f"cannot write {what} {out}: {err}") from None
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def kept_copy(out: Path, *, marker: str, key: Mapping[str, Any]) -> bool:
    """Whether ``out`` is a copy :func:`staged_copy` published from ``key`` and every file it holds is there,
    unchanged: else it is to be made again (a copy's file cut short was scored as it was - a labels file cut
    between rows is a shorter reference, not an error - on every run that reused it).

    A copy made before its files were recorded in its marker is taken as it is, as it was then."""
    found = read_marker(out, marker)
    if found is None or {k: v for k, v in found.items() if k != OUTPUTS} != dict(key):
        return False
    outputs = found.get(OUTPUTS, {})
    if not isinstance(outputs, dict):
        log.warning("%s is unreadable (its %r is not a mapping): %s counts as not built", out / marker, OUTPUTS,
                    out.name)
        return False
    return files_unchanged(out, outputs, again=f"making {out.name} again")


def files_unchanged(folder: Path, files: Mapping[str, str], *, again: str) -> bool:
    """Whether every file of ``files`` (name -> sha256) is in ``folder``, unchanged; else a warning naming the first
    that is not and what follows (``again``): what a kept timeline folder and a kept copy both check."""
    for name, digest in files.items():
        try:
            why = "changed since it was made" if sha256_of(folder / name, what="kept file") != digest else None
        except InputError:
            why = "missing"
        if why:
            log.warning("%s: %s is %s; %s", folder, name, why, again)
            return False
    return True


def stale_staging(out: Path) -> list[Path]:
    """The staging folders in ``out`` whose process is gone (killed mid-way; named ``.staging-<pid>-...``); a live
    build's or training's are not among them."""
    stale = []
    for path in out.glob(STAGING + "*"):
        pid = path.name[len(STAGING):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            stale.append(path)
    return stale


def clear_stale_staging(out: Path) -> None:
    """Remove staging folders of builds whose process is gone (killed mid-way); a live build's are left alone."""
    for path in stale_staging(out):
        log.info("removing %s, left by an interrupted build", path)
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:          # exists, owned by someone else
        return True
    return True


def atomic_text(path: Path, text: str) -> None:
    part = path.with_name(path.name + ".part")
    try:
        part.write_text(text, encoding="utf-8")
        os.replace(part, path)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err}") from None
