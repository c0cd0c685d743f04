"""Which media files an archive holds: ``dramapic batch`` walks the archive folder here (:func:`find_media`).

A file is found by its extension (``--ext``, :data:`DEFAULT_EXTENSIONS`), the ``--include`` / ``--exclude`` globs and
its name (hidden files and folders, and dramapic's own captioned videos, are left out); a folder linked into the
archive from elsewhere is searched, a link back into it or above it is not, and a symbolic link to a file found
under another name is skipped. Each file found gets the folder its outputs go to (:class:`ArchiveFile`), mirroring
its place in the archive, with a folder of its own where two files of one folder share a stem.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..errors import InputError
from ..writers import name_key, not_utf8, too_long_part

if TYPE_CHECKING:
    from .batch import BatchOptions

log = logging.getLogger(__name__)

DEFAULT_EXTENSIONS = ("mp4", "mkv", "mov", "webm", "avi", "ts", "m2ts", "mts", "m4v", "mpg", "mpeg", "wmv", "flv")


@dataclass(frozen=True)
class ArchiveFile:
    """One media file found in the archive."""

    path: Path            # absolute
    rel: str              # relative to the archive root, POSIX separators
    size: int
    mtime_ns: int
    output_dir: str       # relative to OUT_DIR, POSIX separators ("" for the top level)



# -- finding files ---------------------------------------------------------------------------------------------

def _normalise_extensions(extensions: Iterable[str]) -> frozenset[str]:
    return frozenset(e.strip().lower().lstrip(".") for e in extensions if e.strip())


def _matches(rel: str, patterns: Iterable[str]) -> bool:
    name = PurePosixPath(rel).name
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def _archive_folder(archive: str | Path) -> Path:
    """``archive`` as a Path; :class:`InputError` when it is missing or not a folder."""
    root = Path(archive)
    long_part = too_long_part(root)
    if long_part is not None:  # no file system holds it; looking it up was an OSError traceback
        raise InputError(f"no such folder: a name too long for any file system: {long_part}")
    if not root.exists():
        raise InputError(f"no such folder: {root}")
    if not root.is_dir():
        raise InputError(f"{root} is not a folder (dramapic batch takes an archive folder; use dramapic run for "
                         "one file)")
    # its real path: the database keeps it, and each failure's words name the file and its output folder (SQLite
    # takes only UTF-8 text; such a batch ended in a traceback)
    shown = not_utf8(root.resolve())
    if shown is not None:
        raise InputError(f"{shown}: the archive folder's path is not valid UTF-8; rename it (or the folder holding "
                         "it)")
    return root


def find_media(archive: str | Path, options: BatchOptions | None = None, *,
               skip_dirs: Iterable[Path] = ()) -> list[ArchiveFile]:
    """The media files under ``archive``, recursively, sorted by relative path (a name that is not valid UTF-8
    is skipped with a warning: it cannot be the file's key in the database).

    Parameters
    ----------
    archive : Path
        The archive root.
    options : BatchOptions, optional
        ``extensions``, ``include`` and ``exclude`` select the files (default: every media file).
    skip_dirs : iterable of Path
        Folders not to descend into (the batch's own output folder when it lies inside the archive).

    Raises
    ------
    InputError
        ``archive`` is missing or not a folder, or its path is not valid UTF-8.
    """
    if options is None:
        from .batch import BatchOptions  # here: the batch builds on this module

        options = BatchOptions()
    root = _archive_folder(archive).resolve()
    skip = {Path(d).resolve() for d in skip_dirs}
    extensions = _normalise_extensions(options.extensions)
    # every media file of a folder claims its stem, also one this batch's filters leave out: a later batch with
    # other filters must give ep1.mp4 and ep1.mkv the same separate output folders, not one shared folder
    media_like = extensions | _normalise_extensions(DEFAULT_EXTENSIONS)
    stems: dict[tuple[str, str], int] = {}
    # the same (folder, stem) pairs as a case-insensitive file system sees them: name_key -> the exact pairs
    slots: dict[tuple[str, str], set[tuple[str, str]]] = {}
    found = []

    def walk_error(err: OSError) -> None:
        log.warning("cannot read %s: %s", err.filename, err.strerror)

    # a folder linked into the archive from elsewhere (a season kept on another disk) is searched like any other, as
    # a linked file is. A link to a folder of the archive is not followed (its files are found where they are, under
    # the paths they always had), nor a second link to a folder searched already, nor a link to a folder that holds
    # the archive ("up -> ..", a home folder, "/"), which would walk the files around it
    searched: set[str] = set()
    for directory, subdirs, names in os.walk(root, onerror=walk_error, followlinks=True):
        here = Path(directory)
        real = os.path.realpath(directory)
        if real in searched:
            log.warning("skipped %s: it is %s, searched already (a symbolic link to it)", here, real)
            subdirs[:] = []
            continue
        searched.add(real)
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".")
                            and Path(os.path.realpath(here / d)) not in skip and _followed(here / d, str(root)))
        for name in sorted(names):
            if name.startswith("."):
                continue
            suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
            if suffix not in media_like or name.endswith(".dramapic.mp4"):
                continue
            path = here / name
            rel = path.relative_to(root).as_posix()
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:  # bytes of another encoding (CP949 from an old share): no database key
                log.warning("skipped %s: its name is not valid UTF-8 (rename it to include it)",
                            os.fsencode(rel).decode("utf-8", "backslashreplace"))
                continue
            key = (PurePosixPath(rel).parent.as_posix(), path.stem)
            stems[key] = stems.get(key, 0) + 1
            slots.setdefault(_slot(key), set()).add(key)
            if suffix not in extensions:
                continue
            if options.include and not _matches(rel, options.include):
                continue
            if options.exclude and _matches(rel, options.exclude):
                continue
            try:
                stat = path.stat()
            except OSError as err:
                log.warning("cannot read %s: %s", path, err.strerror)
                continue
            if not path.is_file():
                continue
            found.append((path, rel, stat))
    return _with_output_dirs(_without_linked_twins(found), stems, slots)


def _without_linked_twins(found: list[tuple[Path, str, os.stat_result]]) -> list[tuple[Path, str, os.stat_result]]:
    """``found`` without the symbolic links to a file found under another name: a ``latest.mp4`` pointing at
    ``season2/ep10.mp4`` was analysed twice (hours, on a real archive) and counted twice in the reports. The file
    keeps its own name; when only links reach it (it lives outside the archive), the first link's. Hard links are
    names of their own and all kept."""
    owner: dict[tuple[int, int], tuple[Path, str]] = {}  # the file (stat follows links) -> the name it is found by
    for path, rel, stat in found:
        key = (stat.st_dev, stat.st_ino)
        if key not in owner or (os.path.islink(owner[key][0]) and not os.path.islink(path)):
            owner[key] = (path, rel)
    kept = []
    for path, rel, stat in found:
        owner_path, owner_rel = owner[(stat.st_dev, stat.st_ino)]
        if owner_path == path or not os.path.islink(path):
            kept.append((path, rel, stat))
        else:
            log.warning("skipped %s: it is a symbolic link to %s, analysed under that name", rel, owner_rel)
    return kept


def _followed(folder: Path, root: str) -> bool:
    """Whether the walk of the archive ``root`` (a real path) goes into ``folder``: any folder but a symbolic link
    to a folder of the archive or to one that holds it (os.path.islink: a folder that cannot be looked at is not a
    link, and the walk says it cannot read it)."""
    if not os.path.islink(folder):
        return True
    real = os.path.realpath(folder)
    common = os.path.commonpath([real, root])
    if common == real and real != root:
        log.warning("skipped %s: it links to %s, which holds the archive", folder, real)
    return common not in (real, root)


def _slot(key: tuple[str, str]) -> tuple[str, str]:
    return name_key(key[0]), name_key(key[1])


def _with_output_dirs(found: list[tuple[Path, str, os.stat_result]], stems: dict[tuple[str, str], int],
                      slots: dict[tuple[str, str], set[tuple[str, str]]]) -> list[ArchiveFile]:
    # Outputs are named after the file's stem (run.output_paths). Two files of one folder with the same stem
    # (ep1.mp4 and ep1.mkv) would overwrite each other's outputs: those get a folder of their own, "ep1.mkv.d/".
    # Where only case tells them apart (EP01.mp4 and ep01.mp4, or Season1/x.mp4 and season1/x.mp4) the outputs are
    # one file on a case-insensitive file system (an output folder on a macOS, Windows or SMB share), and so are
    # "EP01.mp4.d/" and "ep01.mp4.d/": each gets a folder named with a hash of its exact path, which no folding of
    # case merges, and which the same file gets again in every batch
    files = []
    for path, rel, stat in sorted(found, key=lambda f: f[1]):
        parent = PurePosixPath(rel).parent
        key = (parent.as_posix(), path.stem)
        output_dir = "" if parent.as_posix() == "." else parent.as_posix()
        if len(slots[_slot(key)]) > 1:
            tag = hashlib.sha1(rel.encode("utf-8")).hexdigest()[:8]
            output_dir = (parent / f"{path.name}.{tag}.d").as_posix().removeprefix("./")
        elif stems[key] > 1:
            output_dir = (parent / f"{path.name}.d").as_posix().removeprefix("./")
        files.append(ArchiveFile(path=path, rel=rel, size=stat.st_size, mtime_ns=stat.st_mtime_ns,
                                 output_dir=output_dir))
    return files
