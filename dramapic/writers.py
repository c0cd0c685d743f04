"""Writers for SRT, WebVTT, JSON and RTTM, one small class per format over a shared base, and atomic
output: every file is written to a temporary name in its final directory and renamed only when all
outputs of a run are complete, so a failure never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import math
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Iterable, Sequence

from .errors import OutputError
from .result import AnalysisResult, Segment

CUE_WORDS = {
    "en": {"voice": "voice", "song": "song", "noise": "noise", "silence": "silence",
           "female": "female", "male": "male"},
    "ko": {"voice": "음성", "song": "음악", "noise": "소음", "silence": "무음",
           "female": "여성", "male": "남성"},
}


def cue_confidence(segment: Segment) -> float:
    """The confidence shown on a cue: for voice with a gender, P(voice) × P(that gender); otherwise (an unknown
    gender included) the segment's own confidence, with no gender part. Of the figures as the JSON keeps them (3
    places): from the unrounded ones a confidence of 0.67496 read "(0.67)" on the cue and 0.675, "0.68", in the JSON
    and the run report that reads it."""
    stored = segment.to_dict()
    if segment.label == "voice" and segment.gender:
        return stored["confidence"] * stored["scores"].get(segment.gender, 1.0)
    return stored["confidence"]


def cue_text(segment: Segment, *, language: str = "en") -> str:
    """``voice · female · S1 (0.91)``, ``voice · S2 (0.88)`` (gender unknown), ``song (0.84)``, ``noise (0.77)``."""
    words = CUE_WORDS[language]
    parts = [words[segment.label]]
    if segment.label == "voice":
        if segment.gender:
            parts.append(words[segment.gender])
        if segment.speaker:
            parts.append(segment.speaker)
    return f"{' · '.join(parts)} ({cue_confidence(segment):.2f})"


#: a cue's text as :func:`cue_text` writes it, in any cue language (``voice · female · S1 (0.91)``, ``음악 (0.84)``):
#: its grammar exactly, speaker ids included (``S1``), so that a cue edited by hand (``voice · female · Alice``, a
#: speaker given its name) is not taken for one of dramapic's and replaced
def _cue_kinds(words: dict[str, str]) -> str:
    voice, female, male, song, noise, silence = (re.escape(words[label]) for label in (
        "voice", "female", "male", "song", "noise", "silence"))
    return rf"{voice}(?: · (?:{female}|{male}))?(?: · S\d+)?|{song}|{noise}|{silence}"


_CUE_KINDS = "|".join(_cue_kinds(words) for words in CUE_WORDS.values())
_CUE_LINE = re.compile(rf"(?:{_CUE_KINDS}) \(\d\.\d\d\)")
#: a line as :class:`RttmWriter` writes it: a speaker id of dramapic's (a reference's are people's or corpora's names).
#: The file id is any text: before 2026-12-05 a tab or an ideographic space (U+3000) of the input's name stayed in it
_TURN_LINE = re.compile(r"SPEAKER .+ 1 \d+\.\d{3} \d+\.\d{3} <NA> <NA> S\d+ <NA> <NA>")


def holds_only_our_cues(text: str) -> bool:
    """Whether ``text`` (an SRT or WebVTT file) holds only cues as :func:`cue_text` writes them: a file of dramapic's,
    not subtitles of the dialogue (a download, a translation) that happen to bear the input's name. A file of no cues
    at all (dramapic's SRT of a silent input is empty; its VTT, the header) counts as dramapic's."""
    for line in text.splitlines():
        line = line.strip().lstrip("\ufeff")
        if not line or line == "WEBVTT" or line.isdigit() or "-->" in line:
            continue
        if not _CUE_LINE.fullmatch(line):
            return False
    return True


def holds_only_our_turns(text: str) -> bool:
    """Whether ``text`` (an RTTM file) holds only lines as :class:`RttmWriter` writes them: not a reference
    annotation (a corpus's ``NAME.rttm`` beside ``NAME.wav``, the dev mixes' own). An empty file counts as dramapic's
    (a run without speakers writes one)."""
    return all(_TURN_LINE.fullmatch(line.strip()) for line in text.splitlines() if line.strip())


#: more bytes than dramapic's cues or turns of any input take (a cue a second for a day is about 5 MB)
LARGEST_OUTPUT_TEXT = 64 * 2**20


def written_by_dramapic(path: Path) -> bool | None:
    """Whether the subtitles (``.srt``, ``.vtt``) or speaker turns (``.rttm``) at ``path`` are dramapic's own
    (:func:`holds_only_our_cues`, :func:`holds_only_our_turns`); a file larger than :data:`LARGEST_OUTPUT_TEXT` is
    not. None when it cannot be read (gone meanwhile, no permission), or is of another kind: not known."""
    test = {".srt": holds_only_our_cues, ".vtt": holds_only_our_cues, ".rttm": holds_only_our_turns}.get(
        Path(path).suffix.lower())
    if test is None:
        return None
    try:
        if os.stat(path).st_size > LARGEST_OUTPUT_TEXT:
            return False
        with open(path, "rb") as handle:
            text = handle.read(LARGEST_OUTPUT_TEXT + 1).decode("utf-8", "replace")
    except OSError:
        return None
    return test(text)


def captioned(segments: Iterable[Segment]) -> list[Segment]:
    """The segments that get a cue: everything but silence."""
    return [s for s in segments if s.label != "silence"]


def milliseconds(seconds: float) -> int:
    """``seconds`` in whole milliseconds, rounded as the JSON writes times (``round(t, 3)``), so that every output
    gives a segment the same times: ``round(t * 1000)`` rounds a tie such as the end of 10.0085 s of audio (an end
    at the last sample) the other way, and the last cue ended 1 ms before the JSON's segment."""
    return round(round(seconds, 3) * 1000)


def timed_cues(segments: Iterable[Segment]) -> list[tuple[int, int, Segment]]:
    """``(start_ms, end_ms, segment)`` for each captioned segment that still lasts once its times are whole
    milliseconds, as SRT and WebVTT write them. A shorter one (the clipped last frame of a pipeline without minimum
    durations, ``min_duration_s: 0``) would be a cue that ends as it starts: invalid WebVTT, and a cue SRT players
    drop or flash."""
    cues = []
    for segment in captioned(segments):
        start, end = milliseconds(segment.start), milliseconds(segment.end)
        if end > start:
            cues.append((start, end, segment))
    return cues


def ordinary_file_mode() -> int:
    """The mode ``open()`` would give a new file under this process's umask (0644 under the usual 022)."""
    try:  # Linux: read the umask without the set-and-restore below, which races with other threads' files
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


#: room kept below the file-name limit in temporary names (for the ``.srt.tmp`` earlier versions added for a VTT run
#: with ``--soft-subs``; kept, so that the same final name still gives the same stem)
_TEMP_SPARE = 8
_TEMP_RANDOM = 8  # the length of mkstemp's random part


def name_max(directory: Path) -> int:
    """The longest file name (in bytes) ``directory``'s file system allows (255 almost everywhere)."""
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def temporary_stem(final: Path, *, limit: int = 255) -> str:
    """The stem of ``final``'s temporary names (``.STEM.XXXXXXXX.part.EXT``), shortened when the full name would not
    fit in ``limit`` bytes: cut at a character boundary, followed by ``~`` and 8 hex digits of the full stem's
    sha1, so the same final name always gives the same stem (stale temporaries are found again)."""
    stem, suffix = final.stem, final.suffix
    budget = limit - _TEMP_SPARE - len(f"..{'x' * _TEMP_RANDOM}.part{suffix}".encode())
    if len(stem.encode()) <= budget:
        return stem
    tag = "~" + hashlib.sha1(stem.encode()).hexdigest()[:8]
    cut = stem.encode()[:max(0, budget - len(tag))].decode("utf-8", "ignore")
    return cut + tag


def name_key(name: str) -> str:
    """``name`` as a case-insensitive file system compares it (macOS, Windows, and SMB or exFAT shares mounted
    anywhere): case folded and Unicode-normalised (macOS keeps Hangul decomposed), so ``EP01.srt`` and ``ep01.srt``
    give one key, whichever file system this machine has."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def not_utf8(path: Path) -> str | None:
    """``path`` shown with its stray bytes escaped when it is not valid UTF-8 (bytes of another encoding, Latin-1 or
    CP949 from an old share); None when it is. What dramapic writes names its input and output paths (the JSON, the
    archive's SQLite, the reports' HTML, CSV and Parquet) in UTF-8: such a path is refused in one line up front."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    return None


#: the longest name of one file or folder that a file system takes, in bytes (NAME_MAX on Linux, macOS and Windows)
NAME_MAX = 255


def too_long_part(path: Path) -> str | None:
    """``path``'s first file or folder name over :data:`NAME_MAX` bytes, shown as its start and its length; None
    when there is none. Every lookup of such a path fails with ``ENAMETOOLONG`` (an ``OSError`` where the caller
    expects a missing file), so it is refused in one line up front."""
    part = next((p for p in Path(path).parts if len(os.fsencode(p)) > NAME_MAX), None)
    return None if part is None else f"{part[:40]}… ({len(os.fsencode(part))} bytes, more than {NAME_MAX})"


def case_twin(path: Path) -> str | None:
    """The name in ``path``'s folder that differs from ``path``'s only by case (``EP01.srt`` for ``ep01.srt``): on
    a case-insensitive file system the one file both names open. ``None`` when there is none, when the folder
    lists ``path`` itself, or cannot be read."""
    try:
        names = os.listdir(path.parent)
    except OSError:
        return None
    exact = unicodedata.normalize("NFC", path.name)
    if any(unicodedata.normalize("NFC", n) == exact for n in names):  # there by its own name (a case-sensitive one)
        return None
    key = name_key(path.name)
    return next((n for n in sorted(names) if name_key(n) == key), None)


def check_name_lengths(finals: Sequence[Path]) -> None:
    """Refuse an output whose name is longer than its file system allows, before anything looks the name up.

    Raises
    ------
    OutputError
        A name over the limit (255 bytes on most file systems), or a folder name over 255 bytes.
    """
    # first: in a folder that is there, even asking whether such a name exists fails with ENAMETOOLONG
    for final in finals:
        # so does any lookup under a folder name of more than 255 bytes (-o with one), the limit of every file system
        folder = too_long_part(final.parent)
        if folder is not None:
            raise OutputError(f"output folder name too long: {folder}; shorten -o, or the input's name")
        size = len(final.name.encode())
        limit = name_max(final.parent) if final.parent.is_dir() else NAME_MAX
        if size > limit:
            raise OutputError(f"output file name too long: {final.name[:40]}… is {size} bytes, the file system "
                              f"allows {limit} (rename the input or shorten its name)")


class OutputSet:
    """Reserves temporary files beside their final names and renames them all at once on ``commit``.

    Use as a context manager: leaving the block with an exception removes every temporary file. Each temporary
    file is held under an advisory lock (``flock``) until it is committed or removed, so :meth:`remove_stale` can
    tell the leftovers of a killed run from the files of a run still in progress.
    """

    def __init__(self, *, overwrite: bool = False) -> None:
        self.overwrite = overwrite
        self._pending: list[tuple[Path, Path]] = []
        self._locks: list[int] = []

    def check(self, finals: Sequence[Path]) -> None:
        """Refuse early when an output exists (without ``overwrite``), its name is too long for its file system,
        or its directory is not writable."""
        check_name_lengths(finals)
        in_the_way = [str(p) for p in finals if p.is_dir()]
        if in_the_way:  # --overwrite replaces files only: a folder there would fail half-way through the commit
            raise OutputError(f"a folder is where an output goes: {', '.join(in_the_way)}")
        # lexists: a link whose target is gone is there too (the rename refuses it, after all the work)
        existing = [p for p in finals if os.path.lexists(p)]
        if existing and not self.overwrite:
            names = ", ".join(str(p) for p in existing)
            raise OutputError(f"output already exists: {names} (use --overwrite to replace)")
        for directory in {p.parent for p in finals}:
            if not directory.is_dir():
                raise OutputError(f"output directory does not exist: {directory}")
            if not os.access(directory, os.W_OK | os.X_OK):
                raise OutputError(f"output directory is not writable: {directory}")

    def reserve(self, final: Path) -> Path:
        """A temporary path in ``final``'s directory, with the same suffix so tools recognise the format."""
        stem = temporary_stem(final, limit=name_max(final.parent))
        try:
            handle, name = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".part{final.suffix}", dir=final.parent)
        except OSError as err:
            raise OutputError(f"cannot write in {final.parent}: {err.strerror}") from None
        temporary = Path(name)
        self._pending.append((temporary, final))  # from here on, whatever fails, abort removes it
        self._locks.append(handle)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held until commit or abort: "in use, not stale"
        except OSError:  # a file system without locks: the file is merely not protected from remove_stale
            pass
        # mkstemp makes the file private (0600); an output is an ordinary file, readable as the umask allows
        try:
            os.chmod(name, ordinary_file_mode())
        except OSError:
            # FAT and exFAT (USB drives, camera cards) have no per-file modes: every file has the mount's, and the
            # kernel refuses a change of the r/x bits with EPERM. The file is then as readable as any other there.
            pass
        return temporary

    @staticmethod
    def remove_stale(finals: Sequence[Path]) -> list[Path]:
        """Remove temporaries of ``finals`` left by runs that were killed (nobody holds their lock any more).

        Returns the paths removed. Temporaries of a run still in progress are locked and left alone.
        """
        removed = []
        for final in finals:
            directory = final.parent
            stem = temporary_stem(final, limit=name_max(directory))
            # ".part.EXT", and ".part.srt.tmp" (left by earlier versions, which wrote the SRT a VTT run muxes with
            # --soft-subs there, unlocked; it is now written in a scratch folder of the run's own)
            # ".part.EXT.old": an earlier output a commit kept aside (OutputSet._keep_aside), left by a killed run
            pattern = re.compile(rf"\.{re.escape(stem)}\.[A-Za-z0-9_]{{{_TEMP_RANDOM}}}\.part\.[A-Za-z0-9]+"
                                 rf"(\.tmp|\.old)?")
            try:
                names = [n for n in os.listdir(directory) if pattern.fullmatch(n)]
            except OSError:
                continue
            for name in names:
                path = directory / name
                try:
                    handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                except OSError:
                    continue
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    if os.path.samestat(os.fstat(handle), os.lstat(path)):
                        os.unlink(path)
                        removed.append(path)
                except OSError:  # locked: a live run's file
                    pass
                finally:
                    os.close(handle)
        return removed

    def commit(self) -> list[Path]:
        """Give every reserved file its final name. All or nothing: when one cannot be published (without
        ``overwrite``: an output another run of the same input published meanwhile), those this call has already
        published are removed again, an earlier output each replaced is put back (``overwrite``), and
        :class:`OutputError` says why; the temporaries go with :meth:`abort`."""
        if not self.overwrite:
            self.check([final for _, final in self._pending])
        done: list[tuple[Path, os.stat_result, Path | None]] = []
        try:
            for (temporary, final), handle in zip(self._pending, self._locks):
                # an earlier output this one replaces is kept aside until the whole set is in place, to be put
                # back if it is not: otherwise a failure part-way left the earlier run's SRT gone beside its JSON
                kept = self._keep_aside(final, temporary) if self.overwrite else None
                # the temporary's identity, to remove on roll-back only the file this call put there. Noted before
                # the rename: a signal that arrives during it raises as it returns, with the output published
                done.append((final, os.fstat(handle), kept))
                if self.overwrite:
                    self._replace(temporary, final)
                else:
                    self._publish_new(temporary, final)
        except BaseException:
            self._roll_back(done)
            self.abort()
            raise
        for _, _, kept in done:
            if kept is not None:
                kept.unlink(missing_ok=True)
        self._pending.clear()
        self._release()
        return [final for final, _, _ in done]

    @staticmethod
    def _keep_aside(final: Path, temporary: Path) -> Path | None:
        """A second name (a hard link) for the earlier output at ``final``, beside this run's temporary and named
        like it (so that :meth:`remove_stale` clears one a killed run left), or None: nothing there, or a file
        system without hard links (FAT, exFAT), where the earlier output cannot be put back."""
        kept = temporary.with_name(temporary.name + ".old")
        try:
            os.link(final, kept, follow_symlinks=False)
        except OSError:
            return None
        return kept

    @staticmethod
    def _replace(temporary: Path, final: Path) -> None:
        try:
            os.replace(temporary, final)
        except OSError as err:
            raise OutputError(f"cannot write {final}: {_reason(err)}") from None

    @classmethod
    def _publish_new(cls, temporary: Path, final: Path) -> None:
        """Publish ``temporary`` as ``final`` only if ``final`` does not exist, atomically: a hard link fails with
        EEXIST when another run of the same input has published its output since :meth:`check` (a rename would
        silently replace it). File systems without hard links (FAT, exFAT: EPERM; some network and FUSE ones:
        ENOTSUP, ENOSYS) fall back to check-then-rename, which leaves that window open there only."""
        try:
            os.link(temporary, final)
        except FileExistsError:
            raise OutputError(f"output already exists: {final} (use --overwrite to replace)") from None
        except OSError:  # no hard links here; any real fault (a full disk, a read-only folder) the rename reports
            if os.path.lexists(final):
                raise OutputError(f"output already exists: {final} (use --overwrite to replace)") from None
            cls._replace(temporary, final)
            return
        temporary.unlink(missing_ok=True)  # else abort removes it; final keeps the data either way

    @staticmethod
    def _roll_back(done: Sequence[tuple[Path, os.stat_result, Path | None]]) -> None:
        roll_back_published(done)

    def abort(self) -> None:
        for temporary, _ in self._pending:
            temporary.unlink(missing_ok=True)
        self._pending.clear()
        self._release()

    def _release(self) -> None:
        for handle in self._locks:
            os.close(handle)
        self._locks.clear()

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self.abort()
        self._release()


def write_json_atomic(data, path: str | Path, *, indent: int = 1, ensure_ascii: bool = True) -> Path:
    """Write ``data`` as JSON to ``path`` the way every output is written: under a temporary name beside it,
    renamed when complete (an existing file is replaced; the folder is created). NaN is refused (ValueError)
    before any file is touched."""
    path = Path(path)
    text = json.dumps(data, indent=indent, ensure_ascii=ensure_ascii, allow_nan=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create {path.parent}: {_reason(err)}") from None
    outputs = OutputSet(overwrite=True)
    try:
        try:
            outputs.reserve(path).write_text(text, encoding="utf-8")
        except OSError as err:  # a full disk: one line, like every other output
            raise OutputError(f"cannot write {path.name} in {path.parent}: {_reason(err)}") from None
        outputs.commit()
    except BaseException:
        outputs.abort()
        raise
    return path


def make_output_dir(directory: Path) -> list[Path]:
    """Create ``directory`` (and missing parents); return the folders this call created, deepest first (so that
    a run or a training that fails can remove the ones it made). :class:`OutputError` when it is a file or cannot be
    made."""
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"output directory {directory} is an existing file, not a directory")
    missing = []
    probe = directory.absolute()
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create output directory {directory}: {err.strerror}") from None
    return missing


def remove_made_dirs(created: Sequence[Path]) -> None:
    """Remove the folders :func:`make_output_dir` made (deepest first) while they are empty: a run or a training
    that fails leaves none behind, but never takes away what another process has written into one meanwhile."""
    for directory in created:
        try:
            directory.rmdir()
        except OSError:
            break


def write_npz_atomic(arrays: dict, path: str | Path, *, compressed: bool = False) -> Path:
    """Write ``arrays`` as ``.npz`` to ``path`` under a temporary name of its own beside it (``.NAME.XXXXXXXX.npz``),
    renamed when complete; a write that fails (a full disk: :class:`OutputError`) or is interrupted leaves no
    temporary. Two writers of one path (two trainings sharing a models folder) each write their own temporary: the
    last rename wins, and neither renames the other's half-written file."""
    import numpy as np

    path = Path(path)
    tmp = None
    try:
        # suffix .npz: numpy appends it to a name without it, and would write a file other than the one made here
        stem = temporary_stem(path, limit=name_max(path.parent))
        handle, name = tempfile.mkstemp(prefix=f".{stem}.", suffix=".npz", dir=path.parent)
        os.close(handle)
        tmp = Path(name)
        try:  # mkstemp's 0600 would make a model file private to this user
            os.chmod(tmp, ordinary_file_mode())
        except OSError:  # FAT and exFAT: no per-file modes (see OutputSet.reserve)
            pass
        (np.savez_compressed if compressed else np.savez)(tmp, **arrays)
        tmp.replace(path)
    except OSError as err:
        raise OutputError(f"cannot write {path.name} in {path.parent}: {_reason(err)}") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return path


def _reason(err: OSError) -> str:
    return err.strerror or os.strerror(err.errno or errno.EIO)


def _final_name(temporary: Path) -> str:
    """The output a temporary from :meth:`OutputSet.reserve` stands for (``.ep1.ab12cd34.part.srt`` -> ``ep1.srt``),
    for messages: the user knows the file they asked for, not our hidden one."""
    match = re.fullmatch(rf"\.(.+)\.[A-Za-z0-9_]{{{_TEMP_RANDOM}}}\.part(\.[A-Za-z0-9]+)", temporary.name)
    return f"{match.group(1)}{match.group(2)}" if match else temporary.name


class ResultWriter:
    """Base class: a writer turns an :class:`AnalysisResult` into one file."""

    extension = ""

    def __init__(self, *, language: str = "en") -> None:
        self.language = language

    def write(self, result: AnalysisResult, path: Path) -> None:
        text = self.render(result)  # before the file is opened: a result the format refuses leaves no empty file
        try:
            with open(path, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
        except OSError as err:  # a full disk or a vanished folder is the output's problem, said in one line
            raise OutputError(f"cannot write {_final_name(Path(path))} in {Path(path).parent}: {_reason(err)}") \
                from None

    def render(self, result: AnalysisResult) -> str:
        raise NotImplementedError


class SrtWriter(ResultWriter):
    """SRT with pysrt: cues numbered from 1, ``HH:MM:SS,mmm``, UTF-8 without BOM, no cue for silence."""

    extension = "srt"

    def render(self, result: AnalysisResult) -> str:
        import pysrt

        items = pysrt.SubRipFile()
        for number, (start, end, segment) in enumerate(timed_cues(result.segments), start=1):
            items.append(pysrt.SubRipItem(
                index=number, start=pysrt.SubRipTime.from_ordinal(start), end=pysrt.SubRipTime.from_ordinal(end),
                text=cue_text(segment, language=self.language)))
        return "".join(f"{item}\n" for item in items)


def clock_time(seconds: float, *, decimals: int = 3, hour_digits: int = 2) -> str:
    """``HH:MM:SS.mmm`` (WebVTT, the defaults) or, with ``decimals=2, hour_digits=1``, ASS's ``H:MM:SS.cc``."""
    unit = 10 ** decimals
    ticks = max(0, round(seconds * unit))
    hours, rest = divmod(ticks, 3600 * unit)
    minutes, rest = divmod(rest, 60 * unit)
    secs, fraction = divmod(rest, unit)
    return f"{hours:0{hour_digits}d}:{minutes:02d}:{secs:02d}.{fraction:0{decimals}d}"


class VttWriter(ResultWriter):
    extension = "vtt"

    def render(self, result: AnalysisResult) -> str:
        lines = ["WEBVTT", ""]
        for number, (start, end, segment) in enumerate(timed_cues(result.segments), start=1):
            lines += [str(number), f"{clock_time(start / 1000)} --> {clock_time(end / 1000)}",
                      cue_text(segment, language=self.language), ""]
        return "\n".join(lines)


def _not_finite(data, where: str = "") -> str | None:
    """Where the first NaN or infinity in ``data`` (a JSON tree) is: ``segments[1].confidence = nan``."""
    if isinstance(data, float) and not math.isfinite(data):
        return f"{where or 'the value'} = {data}"
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, (list, tuple)) else ()
    for key, value in children:
        found = _not_finite(value, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip("."))
        if found:
            return found
    return None


class JsonWriter(ResultWriter):
    extension = "json"

    def render(self, result: AnalysisResult) -> str:
        data = result.to_dict()
        try:
            # NaN and Infinity are not JSON: Python would write them, and strict readers (dramapic report among
            # them) would refuse the file later, far from the run that made it
            return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        except ValueError:
            where = _not_finite(data) or "a value"
            raise OutputError(f"cannot write the JSON output: {where} is not a finite number (NaN and infinity are "
                              f"not JSON)") from None


class RttmWriter(ResultWriter):
    """NIST RTTM, one SPEAKER line per voice segment with a speaker id that lasts in whole milliseconds."""

    extension = "rttm"

    def render(self, result: AnalysisResult) -> str:
        uri = rttm_file_id(result.source.path)
        lines = []
        for segment in result.segments:
            if segment.label != "voice" or not segment.speaker:
                continue
            # onset and duration from the JSON's millisecond times: formatted apart, start + duration could end 1 ms
            # off. A turn under half a millisecond (the clipped last frame, min_duration_s: 0) gets no line, as it
            # gets no cue: duration 0.000 makes dscore refuse the whole file, and pyannote drops it
            start, end = milliseconds(segment.start), milliseconds(segment.end)
            if end > start:
                lines.append(f"SPEAKER {uri} 1 {start / 1000:.3f} {(end - start) / 1000:.3f} <NA> <NA> "
                             f"{segment.speaker} <NA> <NA>\n")
        return "".join(lines)


WRITERS: dict[str, type[ResultWriter]] = {cls.extension: cls for cls in (SrtWriter, VttWriter, JsonWriter, RttmWriter)}


def get_writer(fmt: str, *, language: str = "en") -> ResultWriter:
    try:
        return WRITERS[fmt](language=language)
    except KeyError:
        raise OutputError(f"unknown output format {fmt!r} (known: {', '.join(sorted(WRITERS))})") from None


def roll_back_published(done: Sequence[tuple[Path, os.stat_result, Path | None]]) -> None:
    """Undo the renames of a set of outputs published part-way (a failure or a signal in the middle), newest first:
    each ``(final, identity, kept)`` is removed while ``final`` still holds the file published there (``identity``,
    its ``lstat`` before the rename: never another run's, published since, nor the file that was there when the
    publishing of the last one failed), and the earlier output kept aside as ``kept`` (a hard link) is put back.
    :class:`OutputSet` and a batch's carry of a moved file's outputs (:mod:`dramapic.archive.moves`) share it."""
    for final, identity, kept in reversed(done):
        try:
            if os.path.samestat(identity, os.lstat(final)):
                if kept is not None:
                    os.replace(kept, final)
                else:
                    os.unlink(final)
        except OSError:
            pass
        if kept is not None:
            with contextlib.suppress(OSError):
                kept.unlink()  # not needed: the earlier output is still (or again) at final


def rttm_file_id(source: str | Path) -> str:
    """The file id :class:`RttmWriter` gives the turns of the input ``source``: its stem, white space made ``_``
    (RTTM fields are split on white space: a tab or an ideographic space, U+3000, common in Korean and Japanese
    names, inside the file id would shift every field after it); ``audio`` for an empty stem."""
    return re.sub(r"\s", "_", Path(source).stem) or "audio"
