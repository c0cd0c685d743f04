"""Archive mode: ``dramapic batch ARCHIVE_DIR -o OUT_DIR`` tags every media file of a folder tree.

One archive, in order: take the output folder's lock (:class:`~dramapic.archive.store.BatchLock`), open its database
(:class:`~dramapic.archive.store.Store`), walk the archive (:func:`~dramapic.archive.discovery.find_media`), give a
file moved or renamed in the archive the results recorded under its old path
(:func:`~dramapic.archive.moves.carry_moved`), decide per file whether it must be processed (:func:`plan_batch`: a
file is keyed by its content's sha256, the pipeline and the model versions, so what is done is skipped and what
changed is redone), hand the files to an engine (:mod:`dramapic.archive.engines`: in process, a local process pool,
Dask or Ray), and record each outcome in the database as it arrives, one transaction per file. Only this process
writes the database; workers run :func:`process_file` and return a :class:`FileOutcome`.

Each file's outputs (SRT, JSON, RTTM and, with ``burn``, the captioned MP4) are written by
:func:`dramapic.run.run` under ``OUT_DIR`` in the folder that mirrors the file's place in the archive:
``ARCHIVE/season1/ep01.mp4`` → ``OUT_DIR/season1/ep01.srt``, ``ep01.dramapic.json``, ``ep01.rttm``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import socket
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Any, Callable, Iterable, Sequence

from .. import media
from ..analysis.analyze import AnalysisOptions
from ..config import PipelineConfig, load_pipeline
from ..errors import ConfigError, DramapicError, OutputError
from ..progress import ProgressHook, silent_hook
from ..result import settings_sha256
from ..threads import available_cores
from ..writers import not_utf8
from .discovery import DEFAULT_EXTENSIONS, ArchiveFile, _archive_folder, find_media
from .store import DB_NAME, BatchLock, KnownRun, RunRecord, Store

log = logging.getLogger(__name__)

ENGINES = ("local", "dask", "ray")


@dataclass(frozen=True)
class TaskOptions:
    """What every file of a batch is processed with; part of each file's key (see :func:`expected_key`)."""

    burn: bool = False
    subtitle_format: str = "srt"
    language: str = "en"
    analysis: AnalysisOptions = field(default_factory=AnalysisOptions)

    def to_dict(self) -> dict[str, Any]:
        # analysis options only where they differ from the defaults, so that a new option with a default value
        # added to AnalysisOptions later does not change every key (and redo every archive)
        defaults = dataclasses.asdict(AnalysisOptions())
        analysis = {k: v for k, v in dataclasses.asdict(self.analysis).items() if v != defaults[k]}
        return {"burn": self.burn, "subtitle_format": self.subtitle_format, "language": self.language,
                "analysis": analysis}


@dataclass(frozen=True)
class BatchOptions:
    """How ``dramapic batch`` finds, processes and records the files of an archive.

    ``include`` / ``exclude`` are shell globs (``fnmatch``) matched against each file's path relative to the
    archive root (POSIX separators) and against its bare name; with any ``include`` a file must match one of them,
    and a file matching an ``exclude`` is left out. Files and folders whose name starts with a dot are skipped.
    """

    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    task: TaskOptions = field(default_factory=TaskOptions)
    retry_failed: bool = False
    engine: str = "local"                 # "local" | "dask" | "ray"
    workers: int = 1                      # local: 1 = in this process, N > 1 = a pool of N processes
    scheduler: str | None = None          # dask: address of a running scheduler (none: a local cluster)
    address: str | None = None            # ray: HOST:PORT of a running cluster (none: a local Ray)
    wait: bool = False                    # wait for another batch on the same OUT_DIR instead of refusing

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.workers < 1:
            raise ConfigError("--workers must be at least 1")
        if not self.extensions:
            raise ConfigError("no media extensions given")
        if self.scheduler and self.engine != "dask":
            raise ConfigError("--scheduler goes with --engine dask")
        if self.address and self.engine != "ray":
            raise ConfigError("--address goes with --engine ray")

    def to_dict(self) -> dict[str, Any]:
        return {"extensions": list(self.extensions), "include": list(self.include), "exclude": list(self.exclude),
                "task": self.task.to_dict(), "retry_failed": self.retry_failed, "engine": self.engine,
                "workers": self.workers, "scheduler": self.scheduler, "address": self.address}


@dataclass(frozen=True)
class PlanItem:
    """What the batch does with one file, and why."""

    file: ArchiveFile
    action: str                   # "run" | "skip"
    reason: str                   # new | changed | retry | outputs missing | done | moved | failed earlier
    key: str | None = None        # the key of the file's up-to-date run, when it has one
    kept: bool = False            # failed earlier: a redo of a finished file failed, its earlier result is current
    moved_from: str | None = None  # moved: the path the file was recorded under, whose run and outputs it took over


@dataclass(frozen=True)
class Plan:
    items: tuple[PlanItem, ...]

    @property
    def to_run(self) -> tuple[PlanItem, ...]:
        return tuple(i for i in self.items if i.action == "run")

    @property
    def skipped(self) -> tuple[PlanItem, ...]:
        return tuple(i for i in self.items if i.action == "skip")

    def count(self, reason: str) -> int:
        return sum(1 for i in self.items if i.reason == reason)


@dataclass(frozen=True)
class FileOutcome:
    """What :func:`process_file` returns to the batch (it crosses process and machine boundaries: plain data)."""

    rel: str
    status: str                                   # "done" | "failed"
    key: str
    sha256: str | None
    started: float                                # unix time
    finished: float
    seconds: float                                # wall clock spent on the file
    worker: str                                   # host:pid
    result: dict[str, Any] | None = None          # AnalysisResult.to_dict() when done
    outputs: dict[str, str] = field(default_factory=dict)   # kind -> absolute path
    error_type: str | None = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: failed after its outputs were written (the file changed while it was processed): an earlier finished run's
    #: outputs are gone, so that run cannot stay the file's current one (Store.record)
    outputs_written: bool = False
    #: what ``dramapic run`` would have told its user about the file (:mod:`~dramapic.archive.notes`)
    notes: tuple[str, ...] = ()

    @property
    def duration(self) -> float | None:
        return None if self.result is None else float(self.result["source"]["duration"])

    def to_dict(self) -> dict[str, Any]:
        return {"rel": self.rel, "status": self.status, "key": self.key, "sha256": self.sha256,
                "started": self.started, "finished": self.finished, "seconds": self.seconds, "worker": self.worker,
                "result": self.result, "outputs": dict(self.outputs), "error_type": self.error_type,
                "error": self.error, "timings": dict(self.timings), "outputs_written": self.outputs_written,
                "notes": list(self.notes)}


@dataclass(frozen=True)
class BatchEvent:
    """One file finished (``done`` / ``failed``); given to the ``on_file`` callback of :func:`run_batch`."""

    rel: str
    status: str
    duration: float | None = None           # seconds of audio
    seconds: float | None = None            # processing wall time
    genre: str | None = None
    n_speakers: int | None = None
    error: str | None = None
    worker: str = ""
    kept: bool = False                      # failed: a redo whose file's earlier result stays current
    notes: tuple[str, ...] = ()             # what `dramapic run` would have told about the file


@dataclass(frozen=True)
class BatchSummary:
    """How a batch went (also what ``dramapic batch`` prints at the end)."""

    found: int
    done: int
    skipped: int
    failed: int
    failed_earlier: int          # skipped because they failed before (retry with --retry-failed)
    audio_seconds: float         # audio processed by this batch
    elapsed: float               # wall clock of the whole batch
    database: Path
    failures: tuple[tuple[str, str], ...] = ()     # (path, error) of this batch's failures
    # of those failures, and of the files skipped as failed earlier: the failed redos of finished files, whose
    # earlier result stays current (outputs and database row); "failed" alone would read as "no result"
    kept: tuple[str, ...] = ()
    failed_earlier_kept: int = 0
    #: (old path, new path) of the skipped files that were moved or renamed in the archive: their finished run and
    #: its outputs were carried over to the new path (:func:`~dramapic.archive.moves.carry_moved`), not analysed again
    moved: tuple[tuple[str, str], ...] = ()

    @property
    def failed_kept(self) -> int:
        """How many of this batch's failures were redos that left the file's earlier result current."""
        return len(self.kept)

    @property
    def realtime_factor(self) -> float | None:
        """Seconds of audio processed per second of wall clock."""
        return self.audio_seconds / self.elapsed if self.elapsed > 0 and self.audio_seconds > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {"found": self.found, "done": self.done, "skipped": self.skipped, "failed": self.failed,
                "failed_earlier": self.failed_earlier, "audio_seconds": self.audio_seconds,
                "elapsed": self.elapsed, "realtime_factor": self.realtime_factor, "database": str(self.database),
                "failures": [list(f) for f in self.failures], "kept": list(self.kept),
                "failed_earlier_kept": self.failed_earlier_kept, "moved": [list(m) for m in self.moved]}


# -- keys and planning -----------------------------------------------------------------------------------------

def pipeline_sha256(pipeline: PipelineConfig) -> str:
    """Checksum of every setting of the pipeline (editing any value of the YAML changes it); each run's JSON
    records the same one."""
    return settings_sha256(pipeline.to_dict())


def expected_models(pipeline: PipelineConfig) -> tuple[dict[str, Any], ...]:
    """Every model an analysis with ``pipeline`` uses, known before analysing anything
    (:func:`dramapic.analysis.loaders.model_infos`: the pretrained networks, the stage-1 members and stacker, the
    gender model, the speaker projection, each loaded and verified: a missing or altered file raises
    :class:`~dramapic.errors.ModelError`). The batch checks them before it starts; a failed file is recorded
    with them."""
    from ..analysis.loaders import model_infos

    return model_infos(pipeline)


def installed_models() -> dict[str, dict[str, Any]]:
    """Name → ``{name, version, sha256}`` of every model this installation has: the pretrained networks of the
    installed wheels and every entry of ``models/manifest.json``."""
    from ..models import load_manifest, pretrained_models

    found = {name: entry.to_dict() for name, entry in load_manifest().entries.items()}
    found.update({m["name"]: m for m in pretrained_models()})
    return found


def models_current(models: Iterable[dict[str, Any]], installed: dict[str, dict[str, Any]]) -> bool:
    """True when every model of a recorded run is still installed with the same version and sha256."""
    for model in models:
        now = installed.get(str(model.get("name")))
        if now is None:
            return False
        if any(model.get(k) is not None and str(model.get(k)) != str(now.get(k)) for k in ("version", "sha256")):
            return False
    return True


def file_key(sha256: str | None, pipeline: PipelineConfig, models: Iterable[dict[str, Any]],
             task: TaskOptions) -> str:
    """The key a file's run is stored under: sha256 over the content's sha256, the pipeline (name, version and
    every setting), each model's name, version and sha256, and the output options. Same key = same outputs."""
    payload = {
        "content": sha256 or "",
        "pipeline": {"name": pipeline.name, "version": pipeline.version, "sha256": pipeline_sha256(pipeline)},
        "models": sorted(({k: m.get(k) for k in ("name", "version", "sha256")} for m in models),
                         key=lambda m: str(m["name"])),
        "options": task.to_dict(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def expected_key(sha256: str, pipeline: PipelineConfig, task: TaskOptions) -> str:
    """:func:`file_key` with :func:`expected_models` (the key a failed file is recorded under)."""
    return file_key(sha256, pipeline, expected_models(pipeline), task)


def _output_as_spelled(out_dir: Path, rel: str) -> Path | None:
    """The output recorded as ``rel`` (relative to ``out_dir``) as it is spelled there, None when it is not: an
    output folder copied with its archive to or from macOS may spell the names in the other normal form."""
    for spelled in (rel, unicodedata.normalize("NFC", rel), unicodedata.normalize("NFD", rel)):
        if (out_dir / spelled).is_file():
            return out_dir / spelled
    return None


def _outputs_present(outputs: dict[str, str], out_dir: Path) -> bool:
    return bool(outputs) and all(_output_as_spelled(out_dir, p) is not None for p in outputs.values())


def plan_batch(files: Sequence[ArchiveFile], store: Store, pipeline: PipelineConfig, options: BatchOptions, *,
               out_dir: Path, progress: ProgressHook = silent_hook, moved: dict[str, str] | None = None) -> Plan:
    """Decide for each file whether to process it.

    A file is up to date when its current run (the one whose outputs are in ``out_dir``) has the key that its
    content, this pipeline, that run's models and these options give, and every one of those models is still
    installed unchanged: a change of content, of any pipeline setting, of any model's version or weights, or of
    the output options makes it "changed". No analysis is needed to decide.

    A file whose size and mtime match the database reuses its recorded sha256; any other known file is hashed
    again (a touched but unchanged file is still skipped). A file the database has never seen is processed
    without hashing it here (its worker does). Skipped: an up-to-date ``done`` run whose outputs are all still
    there, and an up-to-date ``failed`` run unless ``retry_failed`` (also the failed redo of a finished file, which
    leaves the finished run current: see :meth:`Store.record`).

    ``moved`` maps the files :func:`~dramapic.archive.moves.carry_moved` found moved or renamed (new path) to the
    path they were recorded under: such a file, skipped as done, is planned as "moved" with that path.
    """
    from ..models import file_sha256

    moved = moved or {}
    installed = installed_models()
    items: list[PlanItem] = []
    for number, item in enumerate(files):
        progress("plan", number, len(files))
        known = store.known_file(item.rel)
        run = store.run_by_id(known.current_run_id) if known and known.current_run_id is not None else None
        if known is None or run is None:
            items.append(PlanItem(item, "run", "new"))
            continue
        sha = known.sha256 if (known.size, known.mtime_ns) == (item.size, item.mtime_ns) else None
        if sha is None:
            try:
                sha = file_sha256(item.path)
            except OSError:
                items.append(PlanItem(item, "run", "changed"))
                continue
            if (known.size, known.mtime_ns, known.sha256) != (item.size, item.mtime_ns, sha):
                store.note_file(item.rel, size=item.size, mtime_ns=item.mtime_ns, sha256=sha)

        def up_to_date(run: KnownRun, sha: str = sha) -> bool:  # this file's sha, bound now
            return models_current(run.models, installed) and file_key(sha, pipeline, run.models,
                                                                      options.task) == run.key

        if not up_to_date(run):
            # a finished file whose redo failed stays done (Store.record), its failure in a row of its own: skipped
            # like any failure until --retry-failed, not redone by every batch
            failed = (next((r for r in store.failed_runs(known.id) if up_to_date(r)), None)
                      if run.status == "done" else None)
            if failed is None:
                items.append(PlanItem(item, "run", "changed"))
            else:
                items.append(PlanItem(item, "run", "retry", failed.key) if options.retry_failed
                             else PlanItem(item, "skip", "failed earlier", failed.key, kept=True))
        elif run.status == "done":
            if run.error is not None and run.error_key not in (None, run.key) and not any(
                    r.key == run.error_key and up_to_date(r) for r in store.failed_runs(known.id)):
                # the note is another key's failed redo (new content since restored, options since set back): the
                # run is this file's current result again, and its own redo has not failed
                store.clear_redo_note(run.id)
                run = dataclasses.replace(run, error=None, error_key=None)
            if _outputs_present(run.outputs, out_dir):
                items.append(PlanItem(item, "skip", "moved" if item.rel in moved else "done", run.key,
                                      moved_from=moved.get(item.rel)))
            elif run.error is None:
                items.append(PlanItem(item, "run", "outputs missing", run.key))
            else:  # redoing its missing outputs failed already (the error is on the run it kept)
                items.append(PlanItem(item, "run", "retry", run.key) if options.retry_failed
                             else PlanItem(item, "skip", "failed earlier", run.key, kept=True))
        elif options.retry_failed:
            items.append(PlanItem(item, "run", "retry", run.key))
        else:
            items.append(PlanItem(item, "skip", "failed earlier", run.key))
    progress("plan", len(files), len(files))
    return Plan(tuple(items))


# -- the per-file task -----------------------------------------------------------------------------------------

def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _stat_of(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of ``path``; None when it cannot be read."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def process_file(path: str | Path, out_dir: str | Path, *, rel: str, pipeline: PipelineConfig,
                 options: TaskOptions = TaskOptions()) -> FileOutcome:
    """Process one archive file: :func:`dramapic.run.run` with its outputs in ``out_dir`` (created if missing).

    A plain top-level function of picklable arguments, so that every engine can ship it to a worker. It never
    raises for a bad file: a :class:`DramapicError` (or any other exception) becomes a ``failed`` outcome with the
    error, and the batch goes on. It does not touch the database.

    Parameters
    ----------
    path : Path
        The media file (a path the worker can read: engines on several machines need a shared filesystem).
    out_dir : Path
        The folder for this file's outputs (the mirror of its archive folder).
    rel : str
        The file's path relative to the archive root (its identity in the database).
    pipeline : PipelineConfig
    options : TaskOptions
    """
    from ..models import file_sha256
    from ..run import RunOptions, run
    from .notes import caught_notes

    source = Path(path)
    directory = Path(out_dir)
    started = time.time()
    clock = time.perf_counter()
    before = _stat_of(source)
    logged: list[str] = []  # the warnings logged while the file is analysed (a DC offset), kept as its notes
    try:
        directory.mkdir(parents=True, exist_ok=True)
        run_options = RunOptions(output_dir=directory, subtitle_format=options.subtitle_format,
                                 video="burn" if options.burn else "none", overwrite=True,
                                 language=options.language, analysis=options.analysis, refuse_case_twins=False)
        with caught_notes(logged):
            outputs = run(source, options=run_options, pipeline=pipeline)
    except Exception as err:  # noqa: BLE001  (one bad file must not stop the archive)
        message = str(err) if isinstance(err, DramapicError) else f"{type(err).__name__}: {err}"
        if isinstance(err, OSError) and not isinstance(err, DramapicError):
            message = f"cannot write outputs in {directory}: {err.strerror or err}"
        try:
            sha = file_sha256(source)
        except OSError:
            sha = None
        if sha is not None and _stat_of(source) != before:
            # a file still being copied fails on its partial content (an MP4 without its index yet) and is hashed
            # once the copy has ended: under its final content's key the failure would be skipped as "failed
            # earlier" by every batch. Failed under the key of no content, it is "changed" to the next batch
            sha = None
            message = (f"{source} changed while it was being processed (still being copied?); the next batch "
                       f"processes it again ({message})")
        try:
            key = expected_key(sha or "", pipeline, options)
        except DramapicError:
            key = file_key(sha, pipeline, (), options)
        return FileOutcome(rel=rel, status="failed", key=key, sha256=sha, started=started, finished=time.time(),
                           seconds=time.perf_counter() - clock, worker=_worker_id(),
                           error_type=type(err).__name__, error=message or type(err).__name__,
                           notes=_unique(logged))
    result = outputs.result
    notes = _unique([*logged, *outputs.notes])
    if _stat_of(source) != before:
        # The analysis read the file, then hashed it: a file written meanwhile (still being copied into the archive)
        # would have the analysis of its old or partial content recorded under its new content's sha256, and be
        # skipped as done from then on. Failed under the key of no content instead, it is "changed" to the next
        # batch, which processes it again.
        return FileOutcome(rel=rel, status="failed", key=file_key(None, pipeline, result.models, options),
                           sha256=None, started=started, finished=time.time(), seconds=time.perf_counter() - clock,
                           worker=_worker_id(), error_type="InputError", outputs_written=True, notes=notes,
                           error=f"{source} changed while it was being processed (still being copied?); the next "
                                 "batch processes it again")
    key = file_key(result.source.sha256, pipeline, result.models, options)
    return FileOutcome(rel=rel, status="done", key=key, sha256=result.source.sha256, started=started,
                       finished=time.time(), seconds=time.perf_counter() - clock, worker=_worker_id(),
                       result=result.to_dict(), outputs={k: str(p) for k, p in outputs.files.items()},
                       timings=dict(outputs.timings), notes=notes)


def _unique(notes: Iterable[str]) -> tuple[str, ...]:
    """``notes`` in order, each once (a warning logged again for the same file says nothing new)."""
    return tuple(dict.fromkeys(notes))


# -- the batch -------------------------------------------------------------------------------------------------

def _record_for(outcome: FileOutcome, item: ArchiveFile, pipeline: PipelineConfig, task: TaskOptions,
                out_dir: Path) -> RunRecord:
    from ..result import AnalysisResult

    result = AnalysisResult.from_dict(outcome.result) if outcome.result is not None else None
    outputs = {}
    for kind, path in outcome.outputs.items():
        try:
            outputs[kind] = Path(path).resolve().relative_to(out_dir).as_posix()
        except ValueError:
            outputs[kind] = str(path)
    return RunRecord(
        path=item.rel, size=item.size, mtime_ns=item.mtime_ns, key=outcome.key, status=outcome.status,
        sha256=outcome.sha256, pipeline_name=pipeline.name, pipeline_version=pipeline.version,
        pipeline_sha256=pipeline_sha256(pipeline),
        models=tuple(result.models) if result is not None else expected_models(pipeline), options=task.to_dict(),
        started=outcome.started, finished=outcome.finished, seconds=outcome.seconds, worker=outcome.worker,
        duration=outcome.duration, error_type=outcome.error_type, error=outcome.error, outputs=outputs,
        result=result, outputs_written=outcome.outputs_written, notes=outcome.notes)


def _event(outcome: FileOutcome, *, kept: bool = False) -> BatchEvent:
    summary = (outcome.result or {}).get("summary") or {}
    return BatchEvent(rel=outcome.rel, status=outcome.status, duration=outcome.duration, seconds=outcome.seconds,
                      genre=(summary.get("genre") or {}).get("label"),
                      n_speakers=len(summary["speakers"]) if summary.get("speakers") is not None else None,
                      error=outcome.error, worker=outcome.worker, kept=kept, notes=outcome.notes)


def _engine_failure(item: PlanItem, error: BaseException, pipeline: PipelineConfig, task: TaskOptions,
                    started: float) -> FileOutcome:
    # the worker itself died or the cluster lost the task: the file is recorded as failed (--retry-failed)
    from ..models import file_sha256
    from .engines import EngineTaskError

    sha = None
    key = item.key
    if key is None:
        try:
            sha = file_sha256(item.file.path)
        except OSError:
            pass
        if _stat_of(item.file.path) != (item.file.size, item.file.mtime_ns):
            sha = None  # changed since the walk (still being copied?): no verdict on its final content (process_file)
        key = expected_key(sha or "", pipeline, task)
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, EngineTaskError):  # no worker failed: the engine's own words say what happened
        text = message
    else:
        text = f"the worker processing it failed: {type(error).__name__}" + (f": {message}" if message else "")
    return FileOutcome(rel=item.file.rel, status="failed", key=key, sha256=sha, started=started,
                       finished=time.time(), seconds=time.time() - started, worker="",
                       error_type=type(error).__name__, error=text)


#: how a file's failure ends when a disk ran out of room, in the system's words (media.OUTPUT_CAUSES: ffmpeg's too)
OUT_OF_ROOM = ("No space left on device", "Disk quota exceeded")


def _out_of_room(outcome: FileOutcome) -> bool:
    """Whether ``outcome`` failed because a disk (the output folder's, the temporary folder's) is full. Its error
    ends with the system's words (a file's name, earlier in the line, is no cause)."""
    return outcome.status == "failed" and outcome.error_type in ("OutputError", "OSError") \
        and (outcome.error or "").rstrip().endswith(OUT_OF_ROOM)


def _recorded_file_present(path: Path) -> bool:
    """Whether a recorded file this batch's walk did not list is still there (its filters left it out). Only a file
    that is not there is gone: one the batch cannot look at (a folder's permissions changed, a stale network share)
    is not known gone, and its folder's own warning comes from the walk."""
    try:
        return S_ISREG(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True


def _same_file_or_none(old: Path, new: Path) -> bool:
    """Whether the recorded ``old`` is no file of its own beside the walked ``new``: not there, or the very file
    (a normalisation-insensitive file system, macOS's, opens both spellings of a name as one file). One that cannot
    be looked at is not known to be the same."""
    try:
        recorded = os.stat(old)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    try:
        return os.path.samestat(recorded, os.stat(new))
    except OSError:
        return False


def _respell_recorded(files: Sequence[ArchiveFile], store: Store, archive: Path) -> int:
    """Match each walked file the database does not know by its path to a recorded file whose path differs from it
    only by Unicode normalisation, and record that file under the walked spelling; returns how many.

    An archive copied between macOS (names in decomposed form, NFD: Hangul jamo, accents apart) and a disk that
    keeps them composed (NFC), or the other way, gives every such name another spelling, the same to a reader: as a
    new path each file would be analysed again and counted twice. A file is matched only where exactly one walked
    and one recorded spelling share the normalised name and the recorded one is no other file still in the archive
    (on Linux both spellings can be two files). :func:`plan_batch` then checks its content as for any file."""
    recorded = store.paths()
    walked = {f.rel for f in files}
    known = set(recorded)
    olds: dict[str, list[str]] = {}
    for path in recorded:
        if path not in walked:
            olds.setdefault(unicodedata.normalize("NFC", path), []).append(path)
    news: dict[str, list[str]] = {}
    for rel in walked - known:
        news.setdefault(unicodedata.normalize("NFC", rel), []).append(rel)
    renames = {}
    for name, spellings in news.items():
        candidates = olds.get(name, [])
        if len(spellings) == 1 and len(candidates) == 1 and _same_file_or_none(archive / candidates[0],
                                                                                archive / spellings[0]):
            renames[candidates[0]] = spellings[0]
    store.respell(renames)
    return len(renames)


def _on_this_machine(options: BatchOptions) -> bool:
    """True when every file is processed on this machine (a local pool, a local Dask or Ray cluster): what this
    machine's ffmpeg or cores can do is then what the workers can do."""
    return options.engine == "local" or (options.engine == "dask" and not options.scheduler) \
        or (options.engine == "ray" and not options.address)


def _warn_past_the_cores(options: BatchOptions, workers: int) -> None:
    """Warn once when the batch starts more worker processes on this machine than it has cores: each loads the models
    and they share the cores (``threads.py``), so the extra ones cost memory and bring no speed. Not refused: the
    cores may be busy elsewhere, or a worker may wait on a slow disk."""
    cores = available_cores()
    if _on_this_machine(options) and workers > 1 and workers > cores:
        log.warning("--workers %d: %d worker processes on this machine's %d core%s: each loads the models (about "
                    "0.6 GB of memory, near 1 GB while it analyses) and they share the cores, so more than %d cost "
                    "memory and bring no speed", options.workers, workers, cores, "s" * (cores != 1), cores)


def run_batch(archive: str | Path, out_dir: str | Path, *, options: BatchOptions = BatchOptions(),
              pipeline: PipelineConfig | None = None, progress: ProgressHook = silent_hook,
              on_file: Callable[[BatchEvent], None] | None = None,
              on_wait: Callable[[str], None] | None = None,
              on_plan: Callable[[Plan], None] | None = None) -> BatchSummary:
    """Process every media file of ``archive`` into ``out_dir`` and its database; see the module docstring.

    Parameters
    ----------
    archive, out_dir : Path
        The archive root and the output folder (created if missing).
    options : BatchOptions
    pipeline : PipelineConfig, optional
        Default: the bundled default pipeline.
    progress : ProgressHook
        Called as ``progress("plan", files_checked, files_found)`` while deciding what to do (a changed file is
        hashed), then as ``progress("batch", files_finished, files_to_process)``.
    on_file : callable, optional
        Called with a :class:`BatchEvent` for every processed file, as it finishes.
    on_wait : callable, optional
        Called when ``options.wait`` is set and another batch (or a report upgrading the database) holds the output
        folder, with who holds it and since when.
    on_plan : callable, optional
        Called with the :class:`Plan` once it is made, before any file is processed.

    Raises
    ------
    InputError, OutputError, ConfigError, ModelError
        For the archive as a whole (missing archive, output folder locked or unwritable, bad pipeline, missing
        model, a disk that filled up: what finished is recorded); one file's failure is recorded and never raised.
    EngineError
        The Dask or Ray cluster was lost mid-batch; as for KeyboardInterrupt, what finished is recorded.
    KeyboardInterrupt
        After recording every file that had finished and marking the batch interrupted.
    """
    from .engines import check_engine_installed, make_engine

    clock = time.perf_counter()
    pipeline = pipeline or load_pipeline(None)
    archive = _archive_folder(archive)
    check_engine_installed(options.engine)  # before the output folder and its database exist
    out_dir = Path(out_dir)
    shown = not_utf8(out_dir.resolve())
    if shown is not None:  # before it is made: its report could not be written either
        raise OutputError(f"{shown}: the output folder's path is not valid UTF-8; choose another")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create the output folder {out_dir}: {err.strerror}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise OutputError(f"output folder is not writable: {out_dir}")
    out_root = out_dir.resolve()
    task = options.task

    with BatchLock(out_dir, wait=options.wait, on_wait=on_wait), Store.open(out_dir / DB_NAME) as store:
        files = find_media(archive, options, skip_dirs=[out_root])
        walked = {f.rel for f in files}
        respelled = _respell_recorded(files, store, archive)
        if respelled:
            log.info("%d file(s) recorded under another Unicode spelling of their path (NFC / NFD, an archive "
                     "copied from or to macOS) are recorded under the archive's spelling now", respelled)
        # before the files gone from the archive are marked: one moved or renamed is not gone, and keeps its results
        from .moves import carry_moved  # here: moves builds on this module

        moved = carry_moved(files, store, pipeline, options, archive=archive, out_dir=out_root, progress=progress)
        # a recorded file that is not in the archive any more (deleted, moved, renamed) is no part of its report; one
        # this batch's filters leave out is still there
        found = {(f.size, f.mtime_ns) for f in files}
        gone = store.note_missing(lambda rel: rel in walked or _recorded_file_present(archive / rel),
                                  moved_here=lambda size, mtime_ns: (size, mtime_ns) in found)
        if gone is None:
            log.warning("none of the %d file(s) recorded in %s is in %s: a different archive, or one not mounted? "
                        "None is marked gone (the report still shows them)",
                        store.query("SELECT count(*) FROM files")[0][0], out_dir / DB_NAME, archive)
        elif gone:
            log.warning("%d file(s) recorded earlier are no longer in %s (e.g. %s): left out of the report",
                        len(gone), archive, gone[0])
        expected_models(pipeline)  # a missing or altered model stops the batch here, not once per file
        if options.task.burn and _on_this_machine(options):
            # an ffmpeg without libass: said once here, not as a failure of every file after its analysis (a remote
            # cluster's workers have their own ffmpeg, and each file there still says it)
            media.check_burn_in()
        plan = plan_batch(files, store, pipeline, options, out_dir=out_root, progress=progress, moved=moved)
        if on_plan is not None:
            on_plan(plan)
        previous = store.batches()
        if previous and previous[-1]["archive"] != str(archive.resolve()):
            log.warning("%s was last filled from %s; files are matched by their path relative to the archive root",
                        out_dir, previous[-1]["archive"])
        todo = {item.file.rel: item for item in plan.to_run}
        # never more workers than files: each extra pool process (or local Dask / Ray worker) would load the models
        # for nothing, and the cores are shared out among all the workers asked for (threads.py), idle ones too. A
        # pool asked for stays a pool, of one process for one file: a crash there fails the file, not the batch
        workers = max(1, min(options.workers, len(todo)))
        _warn_past_the_cores(options, workers)
        batch_id = store.begin_batch(archive=str(archive.resolve()), engine=options.engine, workers=workers,
                                     options=options.to_dict())
        done = failed = 0
        audio = 0.0
        failures: list[tuple[str, str]] = []
        kept: list[str] = []
        progress("batch", 0, len(todo))
        try:
            if todo:
                jobs = [((item.file.path, out_root / item.file.output_dir),
                         {"rel": item.file.rel, "pipeline": pipeline, "options": task}, item.file.rel)
                        for item in todo.values()]
                submitted = time.time()
                with make_engine(options.engine, workers=workers, scheduler=options.scheduler,
                                 address=options.address, pipeline=pipeline, pool=options.workers > 1) as engine:
                    for tag, value, error in engine.imap_unordered(process_file, jobs):
                        item = todo[tag]
                        outcome = value if error is None else _engine_failure(item, error, pipeline, task,
                                                                              submitted)
                        if _out_of_room(outcome):
                            # no fault of the file: every file after it would be analysed and fail the same, each
                            # recorded failed and skipped by the next batches until --retry-failed
                            raise OutputError(f"{item.file.rel}: {outcome.error}; the batch stops here, the files "
                                              "finished before are recorded: free space and run the batch again")
                        store.record(_record_for(outcome, item.file, pipeline, task, out_root), batch_id=batch_id)
                        kept_here = False
                        if outcome.status == "done":
                            done += 1
                            audio += outcome.duration or 0.0
                        else:
                            failed += 1
                            failures.append((item.file.rel, outcome.error or ""))
                            # Store.record left a finished run current: the file still has its earlier result
                            current = store.current_run(item.file.rel)
                            kept_here = current is not None and current.status == "done"
                            if kept_here:
                                kept.append(item.file.rel)
                        if on_file is not None:
                            on_file(_event(outcome, kept=kept_here))
                        progress("batch", done + failed, len(todo))
        except BaseException:
            # the stop that ended the batch (Ctrl-C, kill, a full disk, a lost cluster) is the one to tell: recording
            # it may fail too (the outputs' disk is often the database's, full as well), and that failure would take
            # its place, its words and its exit code. The row left running is marked interrupted by the next batch
            with contextlib.suppress(OutputError):
                store.end_batch(batch_id, status="interrupted", done=done, skipped=len(plan.skipped), failed=failed,
                                audio_seconds=audio)
            raise
        store.end_batch(batch_id, status="finished", done=done, skipped=len(plan.skipped), failed=failed,
                        audio_seconds=audio)
    return BatchSummary(found=len(plan.items), done=done, skipped=len(plan.skipped), failed=failed,
                        failed_earlier=plan.count("failed earlier"), audio_seconds=audio,
                        elapsed=time.perf_counter() - clock, database=out_dir / DB_NAME,
                        failures=tuple(failures), kept=tuple(kept),
                        failed_earlier_kept=sum(1 for i in plan.items if i.reason == "failed earlier" and i.kept),
                        moved=tuple((i.moved_from, i.file.rel) for i in plan.items if i.moved_from is not None))
