"""The archive database: ``OUT_DIR/dramapic.sqlite``, written by ``dramapic batch`` and read by ``dramapic report``.

SQLite in WAL mode, so a report can read while a batch writes. Every finished file is recorded in **one**
transaction (its file row, its run row, the run's segments, speakers and summary), so a batch killed at any moment
leaves either all of a file's rows or none of them.

Only one batch may write to an output folder at a time: :class:`~dramapic.archive.lock.BatchLock` holds an
exclusive ``flock`` on ``OUT_DIR/dramapic.lock`` for the whole batch (:mod:`dramapic.archive.lock`). The records the
store keeps and gives (:class:`KnownFile`, :class:`KnownRun`, :class:`RunRecord`, :class:`VideoRecord`) are
:mod:`dramapic.archive.records`'.

The schema (its tables, versioned with ``PRAGMA user_version``, the migrations that bring an older database up to
date, the check that a file is a dramapic database) is :mod:`dramapic.archive.schema`'s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..analysis.composition import gender_seconds
from ..errors import OutputError
from ..result import AnalysisResult
from . import schema
from .lock import LOCK_HOLDERS, LOCK_NAME, BatchLock  # noqa: F401 (re-export: the batch and the report take it here)
from .records import (  # noqa: F401 (re-export: the records the store keeps and gives)
    UNKNOWN_GENRE,
    KnownFile,
    KnownRun,
    RunRecord,
    VideoRecord,
    audio_analysed,
    video_record,
)
from .schema import MIGRATIONS, SCHEMA_VERSION, check_schema, schema_version, table_names  # noqa: F401 (re-export)

log = logging.getLogger(__name__)

DB_NAME = "dramapic.sqlite"
class Store:
    """The archive database. Open with :meth:`open`; use as a context manager to close it.

    Parameters
    ----------
    connection : sqlite3.Connection
        The open database (:meth:`open` makes it).
    path : Path
        The SQLite file it is.
    """

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, path: str | Path, *, migrate: bool = True, create: bool = True,
             migrations: Sequence[str] = MIGRATIONS) -> "Store":
        """Open (or create) the archive database at ``path``.

        Parameters
        ----------
        path : str or Path
            The SQLite file.
        migrate : bool
            Bring an older schema up to date. Without it an older schema is refused (a reader opens the database
            with :meth:`open_reader`, which upgrades it under the lock or reads it upgraded in memory). Hold the
            :class:`BatchLock` when migrating.
        create : bool
            Create the file when it is missing (false: a missing file is an ``OutputError``).
        migrations : sequence of str
            The migration scripts (tests pass their own; default :data:`MIGRATIONS`).
        """
        path = Path(path)
        if not create and not path.is_file():
            raise OutputError(f"no archive database at {path}")
        try:
            return cls._open(path, migrate=migrate, migrations=migrations)
        except OutputError as err:
            # a verdict on the schema stands: read as immutable, a database whose newer schema is still in its WAL
            # (a newer dramapic's batch writing it) read as the older one its main file holds, a stale snapshot
            if create or migrate or isinstance(err, schema.SchemaRefused):
                raise
            # a reader (dramapic report) of an archive on a read-only disk or share: SQLite cannot make the WAL's
            # shared-memory file there, so open it read-only, or as immutable when even that needs one
            for query in ("mode=ro", "mode=ro&immutable=1"):
                try:
                    return cls._open(path, migrate=False, migrations=migrations, uri_query=query)
                except schema.SchemaRefused:  # opened: its verdict (an older schema: open_reader reads it upgraded)
                    raise
                except OutputError:
                    continue
            raise

    @classmethod
    def open_reader(cls, path: str | Path, *, migrations: Sequence[str] = MIGRATIONS) -> Store:
        """Open an existing database to read it (``dramapic report``), whatever dramapic version wrote it.

        An older schema is brought up to date as a batch would: in place, one transaction per step, while this
        process holds the output folder's :class:`BatchLock` (so never under a running batch). Where that cannot be
        done (another batch, of an older dramapic, holds the lock; the file or its folder cannot be written) the
        database is read through the migrations in a private in-memory copy and the file is left as it is.

        Raises
        ------
        OutputError
            No database at ``path``; another program's file; a newer schema; a damaged file.
        """
        path = Path(path)
        try:
            return cls.open(path, migrate=False, create=False, migrations=migrations)
        except schema.OlderSchemaError as err:
            if err.version == 0:  # no tables at all (an empty file): nothing to upgrade, and no archive to read
                raise OutputError(f"{path} is empty, not an archive database yet (a batch stopped as it "
                                  "created it?); run `dramapic batch` to fill it") from None
        lock = BatchLock(path.parent, role="report")  # a batch refused meanwhile is told a report holds it
        try:
            lock.acquire()
        except OutputError as err:
            why = str(err)
        else:
            try:
                return cls._open(path, migrate=True, migrations=migrations)
            except OutputError as err:  # a read-only file in a writable folder, a migration that failed
                why = str(err)
            finally:
                lock.release()
        log.info("reading %s through the schema upgrade in memory, the file unchanged (%s)", path, why)
        return cls(schema.migrated_copy(path, migrations=migrations), path)

    @classmethod
    def _open(cls, path: Path, *, migrate: bool, migrations: Sequence[str], uri_query: str | None = None) -> "Store":
        try:
            if uri_query is None:
                db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
            else:
                uri = f"{path.resolve().as_uri()}?{uri_query}"
                db = sqlite3.connect(uri, timeout=30.0, isolation_level=None, uri=True)
        except sqlite3.Error as err:
            raise OutputError(f"cannot open the archive database {path}: {err}") from None
        with schema.closed_on_failure(db, path):
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout = 30000")
            if uri_query is None:
                mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise OutputError(f"{path}: SQLite refused WAL mode (got {mode}); is the folder on a network "
                                      "share?")
                # FULL: a committed file survives a power cut, not only a killed process; one fsync per file is
                # nothing next to minutes of analysis
                db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            check_schema(db, path, migrate=migrate, migrations=migrations)
            store = cls(db, path)
        return store

    # -- schema ------------------------------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return schema_version(self._db)

    def tables(self) -> list[str]:
        return table_names(self._db)

    def integrity_check(self) -> str:
        """``"ok"`` when SQLite finds nothing wrong, and no foreign key points nowhere."""
        result = self._db.execute("PRAGMA integrity_check").fetchone()[0]
        broken = self._db.execute("PRAGMA foreign_key_check").fetchall()
        return result if not broken else f"{len(broken)} broken foreign key(s)"

    # -- batches -----------------------------------------------------------------------------------------------

    def begin_batch(self, *, archive: str, engine: str, workers: int, options: dict[str, Any]) -> int:
        """Record the start of a batch; batches still marked running (killed ones) become ``interrupted``."""
        with self._transaction():
            self._db.execute("UPDATE batches SET status = 'interrupted' WHERE status = 'running'")
            cursor = self._db.execute(
                "INSERT INTO batches (started, status, archive, engine, workers, options_json, host, pid) "
                "VALUES (?, 'running', ?, ?, ?, ?, ?, ?)",
                (time.time(), archive, engine, workers, json.dumps(options, sort_keys=True), socket.gethostname(),
                 os.getpid()))
            return int(cursor.lastrowid)

    def end_batch(self, batch_id: int, *, status: str, done: int, skipped: int, failed: int,
                  audio_seconds: float) -> None:
        with self._transaction():
            self._db.execute(
                "UPDATE batches SET finished = ?, status = ?, n_done = ?, n_skipped = ?, n_failed = ?, "
                "audio_seconds = ? WHERE id = ?",
                (time.time(), status, done, skipped, failed, audio_seconds, batch_id))

    # -- files and runs ----------------------------------------------------------------------------------------

    def known_file(self, path: str) -> KnownFile | None:
        with self._reading():
            row = self._db.execute("SELECT * FROM files WHERE path = ?", (path,)).fetchone()
        return None if row is None else _known_file(row)

    def known_files(self) -> list[KnownFile]:
        """Every recorded archive file (gone ones included), by path."""
        with self._reading():
            return [_known_file(row) for row in self._db.execute("SELECT * FROM files ORDER BY path")]

    def paths(self) -> list[str]:
        """Every recorded archive path (gone ones included)."""
        with self._reading():
            return [row[0] for row in self._db.execute("SELECT path FROM files ORDER BY path")]

    def respell(self, renames: dict[str, str]) -> None:
        """Record each file of ``renames`` (old path → new path, the new one not recorded yet) under its new path,
        all in one transaction: its runs, their results and its checksum stay the file's."""
        if renames:
            with self._transaction():
                self._db.executemany("UPDATE files SET path = ? WHERE path = ?",
                                     [(new, old) for old, new in renames.items()])

    def move(self, old: str, new: str, *, size: int, mtime_ns: int, sha256: str, run_id: int,
             outputs: dict[str, str]) -> None:
        """Record the file recorded under ``old`` (gone from there) under ``new``, a path not recorded yet, where the
        batch found it moved or renamed, with its current run ``run_id``'s outputs now ``outputs`` (kind -> path
        relative to ``OUT_DIR``, the names they were given for the new path); one transaction.

        The file keeps its row, and with it its history (its runs, their results, when it was first seen): it is one
        file of the archive, under another name, neither a new one nor one gone (``missing_since`` is cleared). Only
        the current run's outputs are in ``OUT_DIR``, so only its ``outputs_json`` changes; the analysis it records
        (when, by which worker, in which batch) is the one made under the old path.

        Raises
        ------
        OutputError
            ``new`` is recorded already, ``old`` is not, or ``run_id`` is not its current run (nothing is changed).
        """
        with self._transaction():
            row = self._db.execute("SELECT id, current_run_id FROM files WHERE path = ?", (old,)).fetchone()
            if row is None or row["current_run_id"] != run_id:
                raise OutputError(f"cannot record {old} as moved to {new}: the archive database no longer has it "
                                  "with that run")
            if self._db.execute("SELECT 1 FROM files WHERE path = ?", (new,)).fetchone() is not None:
                raise OutputError(f"cannot record {old} as moved to {new}: {new} is recorded already")
            self._db.execute("UPDATE files SET path = ?, size = ?, mtime_ns = ?, sha256 = ?, last_seen = ?, "
                             "missing_since = NULL WHERE id = ?", (new, size, mtime_ns, sha256, time.time(), row["id"]))
            self._db.execute("UPDATE runs SET outputs_json = ? WHERE id = ?",
                             (json.dumps(outputs, sort_keys=True), run_id))

    def run_by_id(self, run_id: int) -> KnownRun | None:
        with self._reading():
            row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            return None if row is None else _known_run(row)

    def current_run(self, path: str) -> KnownRun | None:
        """The run whose outputs are in ``OUT_DIR`` now for this archive path (None for a file never recorded)."""
        with self._reading():
            row = self._db.execute("SELECT r.* FROM files f JOIN runs r ON r.id = f.current_run_id WHERE f.path = ?",
                                   (path,)).fetchone()
            return None if row is None else _known_run(row)

    def note_file(self, path: str, *, size: int, mtime_ns: int, sha256: str | None) -> None:
        """Remember a file's current size, mtime and checksum (so an unchanged file is not hashed again)."""
        now = time.time()
        with self._transaction():
            self._db.execute(
                "INSERT INTO files (path, size, mtime_ns, sha256, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
                "sha256 = excluded.sha256, last_seen = excluded.last_seen, missing_since = NULL",
                (path, size, mtime_ns, sha256, now, now))

    def note_missing(self, present: Callable[[str], bool], *, moved_here: Callable[[int, int], bool] | None = None
                     ) -> list[str] | None:
        """Mark every recorded file for which ``present(path)`` is false as gone from the archive (deleted, moved or
        renamed: :meth:`videos` leaves it out), and a file marked so that is back as present again.

        When files are recorded and not one of them is present, nothing is marked unless one of them was moved
        here: ``moved_here(size, mtime_ns)`` true for a recorded file's size and modification time (a rename keeps
        both) says the archive was reorganised, whose old paths are gone. Otherwise it is an archive not mounted (an
        empty mount point) or another folder, far likelier than an archive emptied, and marking them all gone would
        empty the report until a batch on the right folder ran.

        Returns
        -------
        list of str or None
            The paths newly found gone; None when none of the recorded files is present (nothing changed).
        """
        with self._reading():
            rows = self._db.execute("SELECT id, path, size, mtime_ns, missing_since FROM files").fetchall()
        # the file system is asked outside the transaction: the batch lock keeps other writers away meanwhile
        verdicts = [(row, present(row["path"])) for row in rows]
        if verdicts and not any(here for _, here in verdicts) and not (
                moved_here is not None and any(moved_here(row["size"], row["mtime_ns"]) for row in rows)):
            return None
        gone = [row for row, here in verdicts if not here and row["missing_since"] is None]
        back = [row for row, here in verdicts if here and row["missing_since"] is not None]
        if gone or back:
            now = time.time()
            with self._transaction():
                self._db.executemany("UPDATE files SET missing_since = ? WHERE id = ?",
                                     [(now, row["id"]) for row in gone])
                self._db.executemany("UPDATE files SET missing_since = NULL WHERE id = ?",
                                     [(row["id"],) for row in back])
        return [row["path"] for row in gone]

    def missing(self) -> list[str]:
        """The recorded files a batch found gone from the archive, by path."""
        with self._reading():
            return [row[0] for row in self._db.execute(
                "SELECT path FROM files WHERE missing_since IS NOT NULL ORDER BY path")]

    def record(self, record: RunRecord, *, batch_id: int | None) -> int:
        """Store one processed file in a single transaction and make it the file's current run.

        A second record for the same (file, key) replaces the first one's row and children (a retried failure,
        or a file redone because its outputs went missing): there is never more than one row per (file, key).

        A failure never takes the place of a ``done`` run that is the file's current one (a finished file redone
        because its content, pipeline, models or options changed, or its outputs went missing, whose redo failed).
        A failed run renames no output into place, so the finished run's outputs are still the ones in ``OUT_DIR``:
        it stays current, with its analysis whole, and carries the failure in its ``error_type`` / ``error``, the
        failed key in ``error_key`` and the failed attempt's notes in ``error_notes_json`` (a successful redo clears
        them). A failure under another key also gets a row of its own (what
        :func:`~dramapic.archive.batch.plan_batch` skips until ``--retry-failed``); one under the done run's own key
        only counts as an attempt of that run (its notes are kept on the run alone). The exception is a failure with
        ``outputs_written`` (the file changed while it was processed, after its new outputs were in place): the
        finished run's outputs are gone, so the failure becomes current as any other, and the next batch processes
        the file again.

        Returns
        -------
        int
            The id of the run recorded, or of the done run that stays current when a redo under its own key failed.
        """
        now = time.time()
        with self._transaction():
            self._db.execute(
                "INSERT INTO files (path, size, mtime_ns, sha256, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
                "sha256 = coalesce(excluded.sha256, files.sha256), last_seen = excluded.last_seen, "
                "missing_since = NULL",
                (record.path, record.size, record.mtime_ns, record.sha256, now, now))
            file_id = self._db.execute("SELECT id FROM files WHERE path = ?", (record.path,)).fetchone()[0]
            finished = None
            if record.status == "failed" and not record.outputs_written:
                finished = self._db.execute(
                    "SELECT r.id, r.key FROM files f JOIN runs r ON r.id = f.current_run_id "
                    "WHERE f.id = ? AND r.status = 'done'", (file_id,)).fetchone()
            if finished is not None:
                same_key = finished["key"] == record.key
                # the failed attempt's notes go with its error: under the run's own key it gets no row to keep them
                self._db.execute(
                    "UPDATE runs SET error_type = ?, error = ?, error_key = ?, error_notes_json = ?, "
                    "attempts = attempts + ? WHERE id = ?",
                    (record.error_type or "Error", record.error or record.error_type or "failed", record.key,
                     json.dumps(list(record.notes)), int(same_key), finished["id"]))
                if same_key:
                    return int(finished["id"])
            # a failed run analysed no sound (NULL, as a run recorded before schema 8)
            track, channel = audio_analysed(record.result) if record.result is not None else (None, None)
            values = dict(
                file_id=file_id, key=record.key, batch_id=batch_id, status=record.status, sha256=record.sha256,
                audio_track=track, audio_channel=channel,
                gain_db=record.result.source.gain_db if record.result is not None else None,
                pipeline_name=record.pipeline_name, pipeline_version=record.pipeline_version,
                pipeline_sha256=record.pipeline_sha256, models_json=json.dumps(list(record.models), sort_keys=True),
                options_json=json.dumps(record.options, sort_keys=True), started=record.started,
                finished=record.finished, seconds=record.seconds, duration=record.duration, worker=record.worker,
                error_type=record.error_type, error=record.error,
                error_key=record.key if record.status == "failed" else None,
                error_notes_json=None,  # a failed run's notes are its notes_json; a done one's redo has not failed
                outputs_json=json.dumps(record.outputs, sort_keys=True), notes_json=json.dumps(list(record.notes)))
            columns = ", ".join(values)
            updates = ", ".join(f"{c} = excluded.{c}" for c in values if c not in ("file_id", "key"))
            self._db.execute(
                f"INSERT INTO runs ({columns}) VALUES ({', '.join('?' * len(values))}) "
                f"ON CONFLICT (file_id, key) DO UPDATE SET {updates}, attempts = runs.attempts + 1",
                tuple(values.values()))
            run_id = self._db.execute("SELECT id FROM runs WHERE file_id = ? AND key = ?",
                                      (file_id, record.key)).fetchone()[0]
            for table in ("segments", "speakers", "summaries"):
                self._db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            if record.result is not None:
                self._insert_result(run_id, record.result)
            if finished is None:
                self._db.execute("UPDATE files SET current_run_id = ? WHERE id = ?", (run_id, file_id))
        return int(run_id)

    def clear_redo_note(self, run_id: int) -> None:
        """Forget the failed redo noted on a done run (see :meth:`record`): the plan found the run current again (its
        content restored, its options back), so the redo that failed is not this file's state any more. The failed
        redo's own row stays, and is skipped like any failure should that key come back."""
        with self._transaction():
            self._db.execute("UPDATE runs SET error_type = NULL, error = NULL, error_key = NULL, "
                             "error_notes_json = NULL WHERE id = ? AND status = 'done'", (run_id,))

    def failed_runs(self, file_id: int) -> list[KnownRun]:
        """The file's failed runs, newest first (a failed redo of a finished file is one, though not current)."""
        with self._reading():
            rows = self._db.execute("SELECT * FROM runs WHERE file_id = ? AND status = 'failed' "
                                    "ORDER BY finished DESC, id DESC", (file_id,)).fetchall()
            return [_known_run(row) for row in rows]

    def _insert_result(self, run_id: int, result: AnalysisResult) -> None:
        self._db.executemany(
            "INSERT INTO segments (run_id, idx, start_s, end_s, label, gender, speaker, confidence, scores_json) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, i, s.start, s.end, s.label, s.gender, s.speaker, s.confidence,
              json.dumps(s.scores, sort_keys=True)) for i, s in enumerate(result.segments)])
        summary = result.summary
        self._db.executemany(
            "INSERT INTO speakers (run_id, speaker, gender, seconds, gender_confidence) VALUES (?, ?, ?, ?, ?)",
            [(run_id, s.id, s.gender, s.seconds, s.gender_confidence) for s in summary.speakers or ()])
        by_gender = gender_seconds(result)
        self._db.execute(
            "INSERT INTO summaries (run_id, duration, voice, song, noise, silence, female_share, male_share, "
            "female_seconds, male_seconds, unknown_seconds, n_speakers, speakers_known, genre, genre_confidence, "
            "genre_scores_json, gender_known) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, result.duration, *(float(summary.shares.get(k, 0.0)) for k in ("voice", "song", "noise",
                                                                                       "silence")),
             float((summary.gender_shares or {}).get("female", 0.0)),
             float((summary.gender_shares or {}).get("male", 0.0)),
             by_gender["female"], by_gender["male"], by_gender["unknown"], len(summary.speakers or ()),
             int(summary.speakers is not None), summary.genre.label if summary.genre else UNKNOWN_GENRE,
             summary.genre.confidence if summary.genre else 0.0,
             json.dumps(summary.genre.scores if summary.genre else {}, sort_keys=True),
             int(summary.gender_shares is not None)))

    # -- reading -----------------------------------------------------------------------------------------------

    def videos(self) -> list[VideoRecord]:
        """Every archive file with a current run, sorted by path: its summary when done, its error when failed. A
        file the last batch found gone from the archive (:meth:`note_missing`) is left out."""
        speakers: dict[int, list[dict[str, Any]]] = {}
        with self._reading():
            rows = self._db.execute(
                "SELECT f.path, r.id AS run_id, r.status, r.duration, r.audio_track, r.audio_channel, r.gain_db, "
                "r.seconds, r.finished, r.worker, r.error_type, r.error, r.attempts, r.notes_json, r.error_notes_json, "
                "s.* "
                "FROM files f "
                "JOIN runs r ON r.id = f.current_run_id LEFT JOIN summaries s ON s.run_id = r.id "
                "WHERE f.missing_since IS NULL ORDER BY f.path").fetchall()
            # parsed here, where a damaged value is the one line of _reading (None: a run recorded before schema 9)
            notes = {row["run_id"]: None if row["notes_json"] is None
                     else tuple(map(str, json.loads(row["notes_json"]))) for row in rows}
            redo_notes = {row["run_id"]: tuple(map(str, json.loads(row["error_notes_json"] or "[]"))) for row in rows}
            for row in self._db.execute(
                    "SELECT sp.* FROM speakers sp JOIN files f ON f.current_run_id = sp.run_id "
                    "WHERE f.missing_since IS NULL ORDER BY sp.run_id, sp.seconds DESC"):
                speakers.setdefault(row["run_id"], []).append(
                    {"id": row["speaker"], "gender": row["gender"], "seconds": row["seconds"],
                     "gender_confidence": row["gender_confidence"]})
        records = []
        for row in rows:
            common = dict(path=row["path"], status=row["status"], duration=row["duration"],
                          audio_track=row["audio_track"], audio_channel=row["audio_channel"], gain_db=row["gain_db"],
                          seconds=row["seconds"],
                          finished=row["finished"], worker=row["worker"] or "", attempts=row["attempts"],
                          notes=notes[row["run_id"]])
            if row["status"] == "done" and row["genre"] is not None:
                gender = bool(row["gender_known"])  # off (--no-gender): the zeros stored mean "not measured"
                records.append(VideoRecord(
                    **common, shares={k: row[k] for k in ("voice", "song", "noise", "silence")},
                    female_share=row["female_share"] if gender else None,
                    male_share=row["male_share"] if gender else None,
                    female_seconds=row["female_seconds"] if gender else None,
                    male_seconds=row["male_seconds"] if gender else None,
                    unknown_seconds=row["unknown_seconds"] if gender else None,
                    n_speakers=row["n_speakers"] if row["speakers_known"] else None,
                    speakers=tuple(speakers.get(row["run_id"], ())),
                    genre=row["genre"], genre_confidence=row["genre_confidence"],
                    error_type=row["error_type"], error=row["error"],  # a redo of it that failed, if any
                    redo_notes=redo_notes[row["run_id"]]))
            else:
                records.append(VideoRecord(**common, error_type=row["error_type"], error=row["error"]))
        return records

    def batches(self) -> list[dict[str, Any]]:
        with self._reading():
            return [dict(row) for row in self._db.execute("SELECT * FROM batches ORDER BY id")]

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Read-only helper for tests and ad-hoc inspection."""
        return self._db.execute(sql, tuple(parameters)).fetchall()

    # -- plumbing ----------------------------------------------------------------------------------------------

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._db, self.path)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Reads that meet a damaged file (a bad sector, a torn copy) end in one :class:`OutputError` line: SQLite
        finds the damage only on the pages a query touches, long after the database opened fine."""
        try:
            yield
        except (sqlite3.DatabaseError, ValueError) as err:  # ValueError: a JSON column that no longer parses
            reason = str(err).split(" with text ", 1)[0]  # not the undecodable bytes themselves
            raise OutputError(f"cannot read the archive database {self.path}: {reason} (if it is damaged, restore "
                              "it from a backup or move it away)") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_failure(err: sqlite3.Error, path: Path | None) -> OutputError:
    """The :class:`OutputError` of a write to the archive database at ``path`` that SQLite refused."""
    where = f"the archive database {path}" if path is not None else "the archive database"
    code = getattr(err, "sqlite_errorcode", 0) & 0xFF
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        # no dramapic holds SQLite's write lock past one file's record: a batch and a report's upgrade take the
        # output folder's lock first, and a report only reads (WAL: readers never block the writer)
        return OutputError(f"{where} is locked by another program (a database browser with changes not yet "
                           f"written, a sqlite3 shell inside a transaction?): {err}; close it and run again")
    if code == sqlite3.SQLITE_READONLY:
        return OutputError(f"{where} is read-only: {err}")
    return OutputError(f"cannot write to {where}: {err}")


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` when the block raises (KeyboardInterrupt included); a
    SQLite fault is one :class:`OutputError` naming the database at ``path``."""

    def __init__(self, db: sqlite3.Connection, path: Path | None = None) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise _write_failure(err, self._path) from None
        except BaseException:
            # Ctrl-C or kill landing as BEGIN returned (after waiting on another program's write lock): no __exit__
            # follows, and an open transaction would fail the batch's closing record in other words than its stop
            self._rollback()
            raise
        return self._db

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback()  # a failed COMMIT (disk full) may have rolled back already
                raise _write_failure(err, self._path) from None
        else:
            self._rollback()
        if isinstance(value, sqlite3.Error):
            raise _write_failure(value, self._path) from value

    def _rollback(self) -> None:
        if not self._db.in_transaction:
            return
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:  # the error that brought us here is the one to report
            pass


def _known_file(row: sqlite3.Row) -> KnownFile:
    return KnownFile(id=row["id"], path=row["path"], size=row["size"], mtime_ns=row["mtime_ns"], sha256=row["sha256"],
                     current_run_id=row["current_run_id"], missing_since=row["missing_since"])


def _known_run(row: sqlite3.Row) -> KnownRun:
    return KnownRun(id=row["id"], file_id=row["file_id"], key=row["key"], status=row["status"],
                    attempts=row["attempts"], batch_id=row["batch_id"], outputs=json.loads(row["outputs_json"]),
                    models=tuple(json.loads(row["models_json"])), error=row["error"], error_key=row["error_key"])


def iter_runs(store: Store) -> Iterator[dict[str, Any]]:
    """Every run row as a dict (oldest first), for inspection and tests."""
    for row in store.query("SELECT r.*, f.path FROM runs r JOIN files f ON f.id = r.file_id ORDER BY r.id"):
        yield dict(row)
