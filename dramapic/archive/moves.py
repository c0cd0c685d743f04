"""Files moved or renamed in the archive: a batch gives them the results recorded under their old path.

A season folder renamed, ``ep1.mp4`` renamed ``S01E01.mp4``: the content, the pipeline and the models are what a
finished run recorded, so analysing it again would redo hours of work for the same figures and leave the old path's
outputs behind. :func:`carry_moved` (called by :func:`~dramapic.archive.batch.run_batch` before the files gone from
the archive are marked) finds such files by size and sha256, renames their outputs for the new path (rewriting the
two that name the input: the JSON's ``source.path`` and the RTTM's file id), all or none, and records the move in
the database (:meth:`~dramapic.archive.store.Store.move`); :func:`~dramapic.archive.batch.plan_batch` then skips them
as "moved".
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from ..config import PipelineConfig
from ..errors import DramapicError
from ..progress import ProgressHook, silent_hook
from ..writers import name_key, rttm_file_id
from .batch import (
    ArchiveFile,
    BatchOptions,
    TaskOptions,
    _output_as_spelled,
    _recorded_file_present,
    _stat_of,
    file_key,
    installed_models,
    models_current,
)
from .store import KnownFile, KnownRun, Store

log = logging.getLogger(__name__)


def carry_moved(files: Sequence[ArchiveFile], store: Store, pipeline: PipelineConfig, options: BatchOptions, *,
                archive: Path, out_dir: Path, progress: ProgressHook = silent_hook) -> dict[str, str]:
    """Give each walked file the database has never seen under its path, and that is a recorded file moved or
    renamed in the archive, that file's record and outputs instead of analysing it again; returns new path -> old.

    A file is taken for a recorded one moved here when the recorded one is gone from its path (found gone now, or
    marked gone by an earlier batch), has the same size and then the same sha256, and its current run is ``done``
    with the key this file gets now (the same pipeline, its models still installed unchanged, the same output
    options: :func:`file_key`, :func:`models_current`), with all of its outputs in ``out_dir``. Its outputs are given
    the names the new path gets (:func:`_carry`, the JSON's ``source.path`` and the RTTM's file id rewritten) and the
    database records the file under its new path (:meth:`Store.move`), one file at a time, each whole or not at all.
    A file none matches, or whose carry fails (with a warning), is left to :func:`plan_batch` as a new file.

    Only a file the size of a gone recorded one is hashed, so a batch of new files costs what it did. Both copies of
    a file that is still at its recorded path are two files (the copy is new); where several walked files have the
    content of one gone file, the first by path takes its record (one of the same name first) and the others are new.
    When not one recorded file is in the archive and none was moved here with its size and modification time (an
    archive not mounted, another folder: :meth:`Store.note_missing`), only files an earlier batch marked gone can
    have been moved.
    """
    from ..models import file_sha256

    recorded = {known.path: known for known in store.known_files()}
    unknown = [f for f in files if f.rel not in recorded]
    sizes = {f.size for f in unknown}
    walked = {f.rel for f in files}
    gone = [known for known in recorded.values() if known.size in sizes and known.current_run_id is not None
            and known.path not in walked and not _recorded_file_present(archive / known.path)]
    if not gone:
        return {}
    if any(known.missing_since is None for known in gone):
        stats = {(f.size, f.mtime_ns) for f in files}
        here = any(path in walked or _recorded_file_present(archive / path) for path in recorded) or any(
            (known.size, known.mtime_ns) in stats for known in recorded.values())
        if not here:
            gone = [known for known in gone if known.missing_since is not None]
    installed = installed_models()
    moves: dict[str, str] = {}
    taken: set[int] = set()
    progress("plan", 0, len(files))
    for item in unknown:
        candidates = [known for known in gone if known.size == item.size and known.id not in taken]
        if not candidates:
            continue
        try:
            sha = file_sha256(item.path)
        except OSError:
            continue
        if _stat_of(item.path) != (item.size, item.mtime_ns):  # written meanwhile (still being copied in?)
            continue
        name = PurePosixPath(item.rel).name
        for known in sorted(candidates, key=lambda k: (PurePosixPath(k.path).name != name, k.path)):
            if known.sha256 != sha:
                continue
            run = store.run_by_id(known.current_run_id) if known.current_run_id is not None else None
            if run is None or run.status != "done" or not models_current(run.models, installed) \
                    or file_key(sha, pipeline, run.models, options.task) != run.key:
                continue
            taken.add(known.id)
            try:
                _carry(known, run, item, sha, store=store, options=options.task, archive=archive, out_dir=out_dir)
            except _NotCarried as why:
                log.info("%s has the content of %s, gone from there, but is analysed: %s", item.rel, known.path, why)
                continue
            except (OSError, DramapicError) as err:
                why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
                log.warning("%s is %s moved or renamed, but its outputs could not be carried over (%s): it is "
                            "analysed again", item.rel, known.path, why)
                break
            moves[item.rel] = known.path
            log.info("%s is %s moved or renamed: its results are carried over, not analysed again", item.rel,
                     known.path)
            break
    return moves


class _NotCarried(Exception):
    """A recorded file's outputs cannot be given to the file moved here as they are (analysing it is the way)."""


def _carry(known: KnownFile, run: KnownRun, item: ArchiveFile, sha: str, *, store: Store, options: TaskOptions,
           archive: Path, out_dir: Path) -> None:
    """Give the outputs of ``run`` (``known``'s current run) the names ``item``'s would have, with ``item`` named
    inside them, record ``known`` as ``item`` (:meth:`Store.move`), then remove the old names.

    What names the input inside the outputs: the JSON's ``source.path`` (set to the new file's path, as a run of it
    writes it) and the RTTM's file id (the new stem), both rewritten; the SRT or WebVTT cues, the burned video (its
    card shows the analysis, not the file's name; its tags are the input's own, the same content's) and the other
    fields of the JSON do not, and are carried as they are: the subtitles and the video get a second name (a hard
    link; a copy where the file system has none) rather than a copy or a new encode. Every output is put in place
    under a temporary name and renamed (an earlier file under a new name is kept aside until all are in place, and
    put back if they cannot all be); the database records the move once they all are, and only then are the old
    names removed. Stopped before the record, the old state stands (the database and the old outputs, which the next
    batch carries again); after it, the new one, at worst with old names not yet removed beside it.

    Raises
    ------
    _NotCarried
        The outputs are not what the run recorded (the JSON of other content, turns dramapic did not write), or a
        new name is taken by a folder or by subtitles or turns dramapic did not write.
    OSError, DramapicError
        The outputs could not be put in place or the move recorded; nothing is changed.
    """
    from ..run import RunOptions, output_paths
    from ..writers import OutputSet, check_name_lengths, make_output_dir, remove_made_dirs, written_by_dramapic

    sources = {kind: _output_as_spelled(out_dir, rel) for kind, rel in run.outputs.items()}
    new_dir = out_dir / item.output_dir
    finals = output_paths(item.path, RunOptions(output_dir=new_dir, subtitle_format=options.subtitle_format),
                          with_video=True)
    if any(source is None for source in sources.values()) or not set(sources) <= set(finals):
        raise _NotCarried("its outputs are not all there")
    finals = {kind: finals[kind] for kind in sources}
    check_name_lengths(list(finals.values()))
    try:
        texts = _rewritten(sources, known, item, sha)
    except ValueError as err:  # not JSON, not UTF-8, a NaN: not the outputs the run wrote
        raise _NotCarried(f"its outputs cannot be read as dramapic's ({err})") from None
    for kind, final in finals.items():
        if final.is_dir():
            raise _NotCarried(f"a folder is where an output goes: {final}")
        if kind in ("subtitles", "rttm") and os.path.lexists(final) and not _same_file(final, sources[kind]) \
                and written_by_dramapic(final) is False:
            raise _NotCarried(f"{final} holds subtitles or turns that are not dramapic's")
    created = make_output_dir(new_dir)
    carried = _CarriedOutputs()
    try:
        OutputSet.remove_stale(list(finals.values()))  # left by a carry or a run that was killed
        for kind, final in finals.items():
            if kind in texts:
                carried.stage_text(final, texts[kind])
            elif not _same_file(final, sources[kind]):  # else there already (the same name: ep1.mp4 -> ep1.mkv)
                carried.stage_link(final, sources[kind])
        carried.publish()
        store.move(known.path, item.rel, size=item.size, mtime_ns=item.mtime_ns, sha256=sha, run_id=run.id,
                   outputs={kind: final.relative_to(out_dir).as_posix() for kind, final in finals.items()})
    except BaseException:
        carried.roll_back()
        remove_made_dirs(created)
        raise
    carried.finish()
    for source in sources.values():
        if all(_other_entry(source, final) for final in finals.values()):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(source)
    # the folders the old outputs leave empty (a renamed season's), up to OUT_DIR; not a folder of the archive where
    # the outputs are written beside the media (OUT_DIR is the archive, or holds it)
    archive_root = archive.resolve()
    for folder in sorted({source.parent for source in sources.values()}, key=lambda p: len(p.parts), reverse=True):
        while folder != out_dir and out_dir in folder.parents and (
                archive_root in out_dir.parents or not (folder == archive_root or archive_root in folder.parents)):
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent


def _rewritten(sources: dict[str, Path], known: KnownFile, item: ArchiveFile, sha: str) -> dict[str, str]:
    """The outputs among ``sources`` that name the input, rewritten for ``item``: the JSON (its ``source.path``) and
    the RTTM (its file id), as a run of ``item`` writes them (kind -> text).

    Raises
    ------
    _NotCarried
        The JSON is not the analysis of content ``sha``; the RTTM holds lines dramapic did not write for that file.
    ValueError
        An output that is not UTF-8, or not JSON.
    """
    texts: dict[str, str] = {}
    if "json" in sources:
        data = json.loads(sources["json"].read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("source"), dict) \
                or data["source"].get("sha256") != sha:
            raise _NotCarried(f"{sources['json'].name} is not the analysis of this content")
        old_source = str(data["source"].get("path") or known.path)
        data["source"]["path"] = str(item.path)
        texts["json"] = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    else:
        old_source = known.path
    if "rttm" in sources:
        lines = sources["rttm"].read_text(encoding="utf-8").splitlines(keepends=True)
        fields = [line.split(" ", 2) for line in lines]
        if any(len(f) < 3 or f[0] != "SPEAKER" or f[1] != rttm_file_id(old_source) for f in fields):
            raise _NotCarried(f"{sources['rttm'].name} holds turns dramapic did not write for it")
        texts["rttm"] = "".join(f"SPEAKER {rttm_file_id(str(item.path))} {f[2]}" for f in fields)
    return texts


def _same_file(path: Path, other: Path) -> bool:
    """Whether ``path`` is there and is ``other`` (the same name, or one a case-insensitive file system takes for
    it, or a second name of it)."""
    try:
        return os.path.samestat(os.stat(path), os.stat(other))
    except OSError:
        return False


def _other_entry(old: Path, new: Path) -> bool:
    """Whether the old output ``old`` is a name of its own beside the new output ``new`` (to remove once the move is
    recorded), not the very entry: the same name, or one a case- or normalisation-insensitive file system (macOS,
    Windows, SMB shares) lists once for both spellings (``ep1.srt`` renamed ``EP1.srt``). A second name of the same
    file (the hard link a carry made) is an entry of its own."""
    if old == new:
        return False
    if name_key(str(old)) != name_key(str(new)):
        return True
    try:
        names = os.listdir(old.parent)
    except OSError:
        return False
    return old.name in names and new.name in names


class _CarriedOutputs:
    """The outputs of a moved file put under their new names, all or none: each written (or linked) under a
    temporary name beside its final one (``.NAME.XXXXXXXX.part.EXT``, what :meth:`OutputSet.remove_stale` clears
    when a killed batch left it), then renamed; an earlier file under a final name is kept aside (a hard link named
    like the temporary, ``.old`` added) until :meth:`finish`, and put back by :meth:`roll_back`."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []                          # (temporary, final)
        self._published: list[tuple[Path, os.stat_result, Path | None]] = []   # (final, identity, kept aside)

    @staticmethod
    def _temporary(final: Path) -> Path:
        from ..writers import name_max, temporary_stem

        stem = temporary_stem(final, limit=name_max(final.parent))
        return final.with_name(f".{stem}.{secrets.token_hex(4)}.part{final.suffix}")

    def stage_text(self, final: Path, text: str) -> None:
        while True:
            temporary = self._temporary(final)
            try:
                with open(temporary, "x", encoding="utf-8", newline="\n") as handle:
                    self._staged.append((temporary, final))  # from here on, whatever fails, roll_back removes it
                    handle.write(text)
            except FileExistsError:  # a name taken (8 random hex digits): another one
                continue
            return

    def stage_link(self, final: Path, source: Path) -> None:
        while True:
            temporary = self._temporary(final)
            try:
                os.link(source, temporary)
            except FileExistsError:
                continue
            except OSError:  # no hard links (FAT, exFAT), or another file system: a copy
                self._staged.append((temporary, final))
                with open(source, "rb") as reading, open(temporary, "xb") as writing:
                    shutil.copyfileobj(reading, writing, 1 << 20)
                return
            self._staged.append((temporary, final))
            return

    def publish(self) -> None:
        for temporary, final in self._staged:
            kept = None
            if os.path.lexists(final):
                kept = temporary.with_name(temporary.name + ".old")
                os.link(final, kept, follow_symlinks=False)
            # noted before the rename: a signal that arrives during it raises as it returns, the output in place
            self._published.append((final, os.lstat(temporary), kept))
            os.replace(temporary, final)

    def roll_back(self) -> None:
        """Put every final name back as it was (only where it still holds the file this carry put there)."""
        from ..writers import roll_back_published

        roll_back_published(self._published)
        self._published.clear()
        for temporary, _ in self._staged:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        self._staged.clear()

    def finish(self) -> None:
        for _, _, kept in self._published:
            if kept is not None:
                with contextlib.suppress(OSError):
                    os.unlink(kept)
        self._published.clear()
        self._staged.clear()
