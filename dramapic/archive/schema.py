"""The archive database's schema: its tables, the migrations that bring an older database up to date (in the file,
or in a copy in memory for a reader that cannot write it), and the check that tells a dramapic database from another
program's SQLite file (what :class:`~dramapic.archive.store.Store` runs on opening one).

The schema is versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` brings an older database up to date, one
transaction per step.

Tables
------
As schema version 1 made them; later versions add columns (see :data:`MIGRATIONS`).

``batches``
    one row per ``dramapic batch`` invocation: when, on which archive, with which engine, how it ended.
``files``
    one row per media file of the archive (``path`` relative to the archive root), with the size, mtime and
    sha256 last seen, and ``current_run_id``: the run whose outputs are in the output folder now (and, since
    version 6, ``missing_since``: when a batch found it gone from the archive). A file moved or renamed in the
    archive whose results a batch carried over keeps its row, under the new ``path``.
``runs``
    one row per (file, key): the outcome of processing that file's content with one pipeline, one set of models
    and one set of output options (``done`` or ``failed`` with the error). ``UNIQUE(file_id, key)``: retrying a
    failed file updates its row, it never adds a second one. Since version 8 a done run also says which sound of
    the file it describes (``audio_track``, ``audio_channel``), and since version 9 every run keeps its notes
    (``notes_json``: what ``dramapic run`` would have told its user about the file); since version 10 a done run
    whose redo failed keeps that redo's notes beside its error (``error_notes_json``); since version 11 a done run
    says the gain its analysis heard the file with (``gain_db``: 0, or the raise of a recording too quiet).
``segments``, ``speakers``, ``summaries``
    the :class:`~dramapic.result.AnalysisResult` of a ``done`` run, one row per segment / speaker, and one
    summary row (shares, female and male speaking time, speaker count, genre).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import OutputError

_SCHEMA_1 = """
CREATE TABLE batches (
    id             INTEGER PRIMARY KEY,
    started        REAL NOT NULL,
    finished       REAL,
    status         TEXT NOT NULL CHECK (status IN ('running', 'finished', 'interrupted')),
    archive        TEXT NOT NULL,
    engine         TEXT NOT NULL,
    workers        INTEGER NOT NULL,
    options_json   TEXT NOT NULL,
    host           TEXT,
    pid            INTEGER,
    n_done         INTEGER NOT NULL DEFAULT 0,
    n_skipped      INTEGER NOT NULL DEFAULT 0,
    n_failed       INTEGER NOT NULL DEFAULT 0,
    audio_seconds  REAL NOT NULL DEFAULT 0
);
CREATE TABLE files (
    id              INTEGER PRIMARY KEY,
    path            TEXT NOT NULL UNIQUE,
    size            INTEGER NOT NULL,
    mtime_ns        INTEGER NOT NULL,
    sha256          TEXT,
    current_run_id  INTEGER REFERENCES runs(id) ON DELETE SET NULL,
    first_seen      REAL NOT NULL,
    last_seen       REAL NOT NULL
);
CREATE TABLE runs (
    id                INTEGER PRIMARY KEY,
    file_id           INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    key               TEXT NOT NULL,
    batch_id          INTEGER REFERENCES batches(id),
    status            TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    sha256            TEXT,
    pipeline_name     TEXT NOT NULL,
    pipeline_version  TEXT NOT NULL,
    pipeline_sha256   TEXT NOT NULL,
    models_json       TEXT NOT NULL,
    options_json      TEXT NOT NULL,
    started           REAL NOT NULL,
    finished          REAL NOT NULL,
    seconds           REAL NOT NULL,
    duration          REAL,
    worker            TEXT,
    attempts          INTEGER NOT NULL DEFAULT 1,
    error_type        TEXT,
    error             TEXT,
    outputs_json      TEXT NOT NULL DEFAULT '{}',
    UNIQUE (file_id, key)
);
CREATE INDEX runs_batch ON runs(batch_id);
CREATE TABLE segments (
    run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    idx          INTEGER NOT NULL,
    start_s      REAL NOT NULL,
    end_s        REAL NOT NULL,
    label        TEXT NOT NULL,
    gender       TEXT,
    speaker      TEXT,
    confidence   REAL NOT NULL,
    scores_json  TEXT NOT NULL,
    PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;
CREATE TABLE speakers (
    run_id             INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    speaker            TEXT NOT NULL,
    gender             TEXT,
    seconds            REAL NOT NULL,
    gender_confidence  REAL NOT NULL,
    PRIMARY KEY (run_id, speaker)
) WITHOUT ROWID;
CREATE TABLE summaries (
    run_id             INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    duration           REAL NOT NULL,
    voice              REAL NOT NULL,
    song               REAL NOT NULL,
    noise              REAL NOT NULL,
    silence            REAL NOT NULL,
    female_share       REAL NOT NULL,
    male_share         REAL NOT NULL,
    female_seconds     REAL NOT NULL,
    male_seconds       REAL NOT NULL,
    n_speakers         INTEGER NOT NULL,
    genre              TEXT NOT NULL,
    genre_confidence   REAL NOT NULL,
    genre_scores_json  TEXT NOT NULL
);
"""

# version 2: the gender model may leave voice "unknown" (issue 14); its seconds are kept apart from female/male
_SCHEMA_2 = """
ALTER TABLE summaries ADD COLUMN unknown_seconds REAL NOT NULL DEFAULT 0;
"""

# version 3: a run made with --no-speakers has no speaker count (unknown), which is not 0 speakers; runs recorded
# before are recognised by voice segments none of which has a speaker
_SCHEMA_3 = """
ALTER TABLE summaries ADD COLUMN speakers_known INTEGER NOT NULL DEFAULT 1;
UPDATE summaries SET speakers_known = 0 WHERE n_speakers = 0 AND run_id IN (
    SELECT run_id FROM segments WHERE label = 'voice' GROUP BY run_id HAVING count(speaker) = 0);
"""

# version 4: a run made with --no-gender measured no gender, which is not 0 % female and 0 % male; runs recorded before
# are recognised by voice segments none of which has a gender or a female score (gender on always scores it, even
# where it leaves the gender unknown, and then counts unknown seconds)
_SCHEMA_4 = """
ALTER TABLE summaries ADD COLUMN gender_known INTEGER NOT NULL DEFAULT 1;
UPDATE summaries SET gender_known = 0
WHERE female_seconds = 0 AND male_seconds = 0 AND unknown_seconds = 0 AND run_id IN (
    SELECT run_id FROM segments WHERE label = 'voice' GROUP BY run_id
    HAVING count(gender) = 0 AND sum(scores_json LIKE '%"female"%') = 0);
"""

# version 5: the key whose processing an error is about. On a done run it names the failed redo the run was kept
# through: a note left by another key's redo (new content, since restored) must not block a redo under the run's own
# key. A note recorded before is matched to the newest failed row of the file with the same error under another key,
# else it is taken as the run's own (blocking, as it was)
_SCHEMA_5 = """
ALTER TABLE runs ADD COLUMN error_key TEXT;
UPDATE runs SET error_key = key WHERE status = 'failed' AND error IS NOT NULL;
UPDATE runs SET error_key = coalesce(
    (SELECT f.key FROM runs f WHERE f.file_id = runs.file_id AND f.status = 'failed' AND f.key != runs.key
     AND f.error = runs.error ORDER BY f.finished DESC, f.id DESC LIMIT 1), key)
WHERE status = 'done' AND error IS NOT NULL;
"""

# version 6: when a batch last found a recorded file gone from the archive (deleted, or moved or renamed: then it is
# recorded again under its new path); NULL while it is there. The report leaves such files out, where it counted them
# as part of the archive (a moved file twice). Files recorded before are taken as present until a batch looks
_SCHEMA_6 = """
ALTER TABLE files ADD COLUMN missing_since REAL;
"""

# version 7: version 4 could tell a run made with gender switched off only by its voice (no gender and no female /
# male score anywhere); one with no voice at all kept gender_known = 1 and read as 0 % female, 0 % male. Its models
# say it: a run with gender off used no gender model (loaders.trained_model_names), and every gender model dramapic
# ships or trains is named gender-... A run with gender on and no voice keeps its measured zeros
_SCHEMA_7 = """
UPDATE summaries SET gender_known = 0
WHERE gender_known = 1 AND female_seconds = 0 AND male_seconds = 0 AND unknown_seconds = 0 AND run_id IN (
    SELECT id FROM runs WHERE models_json NOT LIKE '%"name": "gender-%');
"""

# version 8: which sound of the file a run describes, as its JSON's source says it: the audio track analysed (from 0
# among the audio tracks: a dub or the original) and the channel of it (left / right of a dual-mono broadcast, "mix":
# the mix of its channels, the JSON's null). Runs recorded before did not keep them: NULL, not known (not track 0, not
# the mix: a batch took the file's default track, and --audio-channel on a mono track analyses its one channel); a
# failed run analysed nothing and has NULL too
_SCHEMA_8 = """
ALTER TABLE runs ADD COLUMN audio_track INTEGER CHECK (audio_track >= 0);
ALTER TABLE runs ADD COLUMN audio_channel TEXT CHECK (audio_channel IN ('left', 'right', 'mix'));
"""

# version 9: the notes of a run, a JSON list of strings: what `dramapic run` tells its user about the file (the
# warnings logged while it was analysed, a DC offset, decoding errors, fewer speakers than asked for, and the notes run
# returns, the audio track chosen, a stale subtitle file in the other format), which a batch dropped. Runs recorded
# before did not keep them: NULL, not known (which is not an empty list, a run with nothing to say)
_SCHEMA_9 = """
ALTER TABLE runs ADD COLUMN notes_json TEXT;
"""

# version 10: the notes of a done run's failed redo (a JSON list, as notes_json), kept beside its error: a redo under
# the run's own key (its outputs went missing) that failed gets no row of its own, so what it logged (a DC offset,
# decoding errors) was dropped. NULL where no failed redo is noted, and on a note recorded before (its notes not known)
_SCHEMA_10 = """
ALTER TABLE runs ADD COLUMN error_notes_json TEXT;
"""

# version 11: the gain in dB at which a done run's analysis heard the file, as its JSON's source.gain_db says: 0 at its
# own level, the raise for a recording too quiet for stage 1 (its figures are those of the raised sound, which a query
# over the archive could not tell from the JSON's alone). NULL where not known: a run recorded before, a JSON written
# before the key, a failed run (nothing analysed)
_SCHEMA_11 = """
ALTER TABLE runs ADD COLUMN gain_db REAL;
"""

# MIGRATIONS[i] brings a database from schema version i to i + 1. Append, never edit a released step.
MIGRATIONS: tuple[str, ...] = (_SCHEMA_1, _SCHEMA_2, _SCHEMA_3, _SCHEMA_4, _SCHEMA_5, _SCHEMA_6, _SCHEMA_7,
                               _SCHEMA_8, _SCHEMA_9, _SCHEMA_10, _SCHEMA_11)
SCHEMA_VERSION = len(MIGRATIONS)
#: the tables every version of the schema has (what tells a dramapic database from another program's)
_TABLES = frozenset({"batches", "files", "runs", "segments", "speakers", "summaries"})


class SchemaRefused(OutputError):
    """The database's schema is not one this dramapic reads as it is: another program's file, a newer or an older
    schema. A verdict on the content: opening the file another way (read-only) does not change it."""


class OlderSchemaError(SchemaRefused):
    """The database has an older schema (``version``; 0: no tables yet) and was opened without ``migrate`` (what a
    reader then works around, see :meth:`~dramapic.archive.store.Store.open_reader`)."""

    def __init__(self, message: str, *, version: int) -> None:
        super().__init__(message)
        self.version = version


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def table_names(db: sqlite3.Connection) -> list[str]:
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    return [r[0] for r in rows]


def check_schema(db: sqlite3.Connection, path: Path, *, migrate: bool,
                 migrations: Sequence[str] = MIGRATIONS) -> None:
    """Bring the database at ``path`` (open as ``db``) to the schema of ``migrations``, or refuse it.

    Raises
    ------
    OutputError
        Another program's SQLite file; a schema newer than this dramapic; an older one without ``migrate``; a
        migration step that failed (the previous version is left intact).
    """
    version = schema_version(db)
    target = len(migrations)
    # another program's SQLite file under our name: never add our tables to it, never read it as ours (its
    # user_version may be anything; a query would then fail on the first missing table with a traceback)
    tables = set(table_names(db))
    if (version == 0 and tables) or (version > 0 and migrations is MIGRATIONS and not _TABLES <= tables):
        raise SchemaRefused(f"{path} is not a dramapic database (another program's SQLite file?); move it "
                            "away or choose another output folder")
    if version > target:
        raise SchemaRefused(f"{path} has schema version {version}, newer than this dramapic understands "
                            f"({target}); upgrade dramapic")
    if version == target:
        return
    if not migrate:
        raise OlderSchemaError(f"{path} has schema version {version}, older than {target}; "
                               "run `dramapic batch` on it once to upgrade it", version=version)
    for step in range(version, target):
        # the script and the version bump commit together: a failed step leaves the previous version intact
        try:
            db.executescript(f"BEGIN IMMEDIATE;\n{migrations[step]}\nPRAGMA user_version = {step + 1};\n"
                             "COMMIT;")
        except sqlite3.Error as err:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise OutputError(f"{path}: migrating the schema from version {step} to {step + 1} failed: "
                              f"{err}") from None


#: SQLite's primary result codes that are a verdict on the file itself: damaged, or no database at all
_FILE_FAULTS = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def open_failure(err: sqlite3.Error, path: Path) -> OutputError:
    """The :class:`OutputError` of a SQLite fault met while opening the database at ``path``: a damaged file, or
    another program's, is said to be unusable; any other fault (a full or failing disk, which leaves no room for the
    WAL's shared-memory index, a lock, a permission) says nothing against the file, which may be whole. Called
    unusable, its owner would move away the archive's only record where freeing space was all it needed."""
    code = getattr(err, "sqlite_errorcode", None)
    if code is None or code & 0xFF in _FILE_FAULTS:
        return OutputError(f"{path} is not a usable dramapic database: {err}")
    hint = " (is its disk full or failing?)" if code & 0xFF == sqlite3.SQLITE_IOERR else ""
    return OutputError(f"cannot open the archive database {path}: {err}{hint}")


@contextlib.contextmanager
def closed_on_failure(db: sqlite3.Connection, path: Path) -> Iterator[None]:
    """Close ``db`` when the block fails (what opening a database does until it hands the connection on), a SQLite
    fault said as the unusable database or the fault of its disk it is (:func:`open_failure`)."""
    try:
        yield
    except sqlite3.DatabaseError as err:
        db.close()
        raise open_failure(err, path) from None
    except BaseException:
        db.close()
        raise


def migrated_copy(path: Path, *, migrations: Sequence[str] = MIGRATIONS) -> sqlite3.Connection:
    """The database at ``path`` copied into memory and brought up to date there, the file left as it is (what a
    reader uses where it cannot upgrade the file). It is read read-only, or as immutable where even that needs a
    file SQLite cannot create (a read-only disk or share).

    Raises
    ------
    OutputError
        The file cannot be read; it is not a dramapic database; a newer schema; a failed migration step.
    """
    copy = sqlite3.connect(":memory:", isolation_level=None)
    with closed_on_failure(copy, path):
        for query in ("mode=ro", "mode=ro&immutable=1"):
            try:
                source = sqlite3.connect(f"{path.resolve().as_uri()}?{query}", uri=True, timeout=30.0)
                try:
                    source.backup(copy)  # a consistent snapshot, also while a batch writes
                finally:
                    source.close()
            except sqlite3.Error as err:
                failure = err
                continue
            break
        else:
            raise OutputError(f"cannot open the archive database {path}: {failure}")
        copy.row_factory = sqlite3.Row
        copy.execute("PRAGMA foreign_keys = ON")
        check_schema(copy, path, migrate=True, migrations=migrations)
    return copy
