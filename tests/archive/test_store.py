"""The archive database: schema and migrations, one transaction per file, no duplicate rows, the batch lock."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from dramapic.errors import OutputError
from dramapic.archive.store import DB_NAME, SCHEMA_VERSION, BatchLock, Store, iter_runs, video_record
from helpers import MODELS, REPO, make_archive_result as make_result, make_record


def count(store: Store, table: str) -> int:
    return store.query(f"SELECT count(*) FROM {table}")[0][0]


def test_new_database_has_the_schema_in_wal_mode(tmp_path):
    with Store.open(tmp_path / DB_NAME) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert {"batches", "files", "runs", "segments", "speakers", "summaries"} <= set(store.tables())
        assert store.query("PRAGMA journal_mode")[0][0] == "wal"
        assert store.integrity_check() == "ok"


def test_migrations_run_in_order_and_each_step_is_atomic(tmp_path):
    path = tmp_path / "m.sqlite"
    steps = ("CREATE TABLE a (x INTEGER);", "ALTER TABLE a ADD COLUMN y TEXT;")
    with Store.open(path, migrations=steps[:1]) as store:
        assert store.schema_version == 1
    with pytest.raises(OutputError, match="older than 2"):
        Store.open(path, migrations=steps, migrate=False)
    with Store.open(path, migrations=steps) as store:
        assert store.schema_version == 2
        assert [r[1] for r in store.query("PRAGMA table_info(a)")] == ["x", "y"]
    with pytest.raises(OutputError, match="newer than this dramapic"):
        Store.open(path, migrations=steps[:1])
    # a step that fails half-way leaves the previous version and none of its changes
    broken = steps + ("CREATE TABLE b (x INTEGER); INSERT INTO no_such_table VALUES (1);",)
    with pytest.raises(OutputError, match="from version 2 to 3 failed"):
        Store.open(path, migrations=broken)
    with Store.open(path, migrations=steps) as store:
        assert store.schema_version == 2 and "b" not in store.tables()


def test_a_file_is_recorded_whole_or_not_at_all(tmp_path, monkeypatch):
    with Store.open(tmp_path / DB_NAME) as store:
        def fail_half_way(self, run_id, result):
            self._db.execute("INSERT INTO segments (run_id, idx, start_s, end_s, label, confidence, scores_json) "
                             "VALUES (?, 0, 0, 1, 'voice', 1, '{}')", (run_id,))
            raise KeyboardInterrupt  # e.g. Ctrl-C between two inserts

        monkeypatch.setattr(Store, "_insert_result", fail_half_way)
        with pytest.raises(KeyboardInterrupt):
            store.record(make_record(), batch_id=None)
        assert [count(store, t) for t in ("files", "runs", "segments", "summaries")] == [0, 0, 0, 0]
        monkeypatch.undo()
        run_id = store.record(make_record(), batch_id=None)
        assert count(store, "segments") == len(make_result().segments)
        assert store.query("SELECT run_id FROM summaries")[0][0] == run_id


class _FullDisk:
    """A connection whose COMMIT fails as SQLite's does on a full disk: the transaction is already rolled back."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    @property
    def in_transaction(self) -> bool:
        return self.db.in_transaction

    def execute(self, sql: str, *args):
        if sql == "COMMIT":
            self.db.execute("ROLLBACK")
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)


def test_a_commit_on_a_full_disk_is_one_typed_error_and_writes_nothing(tmp_path):
    from dramapic.archive.store import _Transaction

    db = sqlite3.connect(tmp_path / "x.sqlite", isolation_level=None)
    db.execute("CREATE TABLE t (x)")
    with pytest.raises(OutputError, match="disk is full"):
        with _Transaction(_FullDisk(db)) as conn:
            conn.execute("INSERT INTO t VALUES (1)")
    assert not db.in_transaction and db.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    with pytest.raises(OutputError, match="disk is full"):  # an error inside the block: rolled back once
        with _Transaction(db) as conn:
            conn.execute("INSERT INTO t VALUES (2)")
            raise sqlite3.OperationalError("database or disk is full")
    assert not db.in_transaction and db.execute("SELECT count(*) FROM t").fetchone()[0] == 0


class _CtrlCAsBeginReturns(_FullDisk):
    """A connection where Ctrl-C lands the moment BEGIN IMMEDIATE returns (Python raises it right after the call:
    a batch waiting there on a database another program holds a write lock on gets it as soon as the lock frees)."""

    def execute(self, sql: str, *args):
        cursor = self.db.execute(sql, *args)
        if sql == "BEGIN IMMEDIATE":
            raise KeyboardInterrupt
        return cursor


class _NoRoomForTheIndex:
    """A connection to a database on a full disk, as SQLite makes it: with no room for the WAL's shared-memory index
    (the -shm file) every statement fails with SQLITE_IOERR_SHMSIZE, "disk I/O error" (seen on a full tmpfs)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.__dict__["db"] = db

    def execute(self, sql: str, *args):
        error = sqlite3.OperationalError("disk I/O error")
        error.sqlite_errorcode, error.sqlite_errorname = 4874, "SQLITE_IOERR_SHMSIZE"
        raise error

    def __getattr__(self, name: str):
        return getattr(self.db, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self.db, name, value)


def test_a_whole_database_on_a_full_disk_is_not_called_unusable(tmp_path, monkeypatch):
    # a batch started on a full disk said "out/dramapic.sqlite is not a usable dramapic database: disk I/O error",
    # the words for a damaged file: its owner would move away the archive's only record of thousands of runs, when
    # freeing space was all it needed
    path = tmp_path / DB_NAME
    with Store.open(path) as store:
        store.record(make_record(), batch_id=None)
    before = path.read_bytes()
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *args, **kwargs: _NoRoomForTheIndex(connect(*args, **kwargs)))
    with pytest.raises(OutputError) as refused:
        Store.open(path)
    assert str(refused.value) == f"cannot open the archive database {path}: disk I/O error (is its disk full or " \
                                 "failing?)"
    monkeypatch.undo()
    assert path.read_bytes() == before
    path.write_bytes(before[:4096])  # a damaged file is still said to be one
    with pytest.raises(OutputError, match="is not a usable dramapic database: database disk image is malformed"):
        Store.open(path)


def test_ctrl_c_as_a_transaction_begins_leaves_none_open(tmp_path):
    # the batch's finally then records the batch as interrupted: with the transaction left open that failed with
    # "the archive database is busy or read-only: cannot start a transaction within a transaction" (exit 6), not
    # "interrupted" (130), and the batch's row stayed "running"
    from dramapic.archive.store import _Transaction

    db = sqlite3.connect(tmp_path / "x.sqlite", isolation_level=None)
    db.execute("CREATE TABLE t (x)")
    with pytest.raises(KeyboardInterrupt), _Transaction(_CtrlCAsBeginReturns(db)) as conn:
        conn.execute("INSERT INTO t VALUES (1)")
    assert not db.in_transaction
    with _Transaction(db) as conn:
        conn.execute("INSERT INTO t VALUES (2)")
    assert db.execute("SELECT x FROM t").fetchall() == [(2,)]


def test_a_reader_falls_back_to_read_only_where_sqlite_cannot_open_it_for_writing(tmp_path, monkeypatch):
    # a read-only disk or share: SQLite cannot create the WAL's -shm file there (simulated: a real read-only mount
    # needs privileges); dramapic report must still read the archive, and a batch must still refuse it
    with Store.open(tmp_path / DB_NAME) as store:
        store.record(make_record(), batch_id=None)
    real = Store._open
    queries = []

    def no_write_access(cls, path, *, uri_query=None, **kwargs):
        queries.append(uri_query)
        if uri_query is None:
            raise OutputError(f"{path} is not a usable dramapic database: unable to open database file")
        return real.__func__(cls, path, uri_query=uri_query, **kwargs)

    monkeypatch.setattr(Store, "_open", classmethod(no_write_access))
    with Store.open(tmp_path / DB_NAME, migrate=False, create=False) as store:
        assert count(store, "runs") == 1
        with pytest.raises(OutputError):  # read-only really
            store.record(make_record(), batch_id=None)
    assert queries == [None, "mode=ro"]
    with pytest.raises(OutputError, match="unable to open"):
        Store.open(tmp_path / DB_NAME)


def _without_speakers(path: str):
    data = make_result(path).to_dict()
    data["summary"]["speakers"] = None
    for segment in data["segments"]:
        segment["speaker"] = None
    from dramapic.result import AnalysisResult

    return AnalysisResult.from_dict(data)


def test_a_run_without_diarization_has_no_speaker_count_also_after_the_upgrade(tmp_path):
    from dramapic.archive.store import MIGRATIONS

    path = tmp_path / DB_NAME
    with Store.open(path) as store:
        store.record(make_record("old-off.mp4", result=_without_speakers("old-off.mp4")), batch_id=None)
        store.record(make_record("old-on.mp4", key="k2"), batch_id=None)
    db = sqlite3.connect(path)  # as the previous version left them: no speakers_known column (nor later ones)
    db.executescript("ALTER TABLE summaries DROP COLUMN speakers_known; ALTER TABLE summaries DROP COLUMN "
                     "gender_known; ALTER TABLE runs DROP COLUMN error_key; "
                     "ALTER TABLE runs DROP COLUMN audio_track; ALTER TABLE runs DROP COLUMN audio_channel; "
                     "ALTER TABLE runs DROP COLUMN notes_json; "
                     "ALTER TABLE runs DROP COLUMN error_notes_json; ALTER TABLE runs DROP COLUMN gain_db; "
                     "ALTER TABLE files DROP COLUMN missing_since; PRAGMA user_version = 2;")
    db.close()
    assert len(MIGRATIONS) == 11  # the columns of every later version are dropped above (7 adds none)
    with Store.open(path) as store:
        store.record(make_record("new-off.mp4", key="k3", result=_without_speakers("new-off.mp4")), batch_id=None)
        counts = {v.path: v.n_speakers for v in store.videos()}
    assert counts == {"new-off.mp4": None, "old-off.mp4": None, "old-on.mp4": 2}


def test_retrying_a_key_updates_its_row_and_a_new_key_adds_one(tmp_path):
    with Store.open(tmp_path / DB_NAME) as store:
        store.record(make_record(status="failed", error="broken"), batch_id=None)
        first = store.record(make_record(status="done"), batch_id=None)  # same file, same key: retried
        runs = list(iter_runs(store))
        assert len(runs) == 1 and runs[0]["status"] == "done" and runs[0]["attempts"] == 2
        assert runs[0]["error"] is None
        store.record(make_record(status="done"), batch_id=None)  # done again (outputs went missing)
        assert count(store, "runs") == 1 and count(store, "segments") == len(make_result().segments)
        assert count(store, "speakers") == 2 and count(store, "summaries") == 1
        second = store.record(make_record(key="k2", result=make_result(genre="interview")), batch_id=None)
        assert second != first and count(store, "runs") == 2
        assert store.known_file("season1/ep01.mp4").current_run_id == second
        (video,) = store.videos()
        assert video.genre == "interview" and video.status == "done"
        assert video.female_seconds == pytest.approx(18.0) and video.male_seconds == pytest.approx(18.0)
        assert store.integrity_check() == "ok"


def test_videos_lists_done_and_failed_files(tmp_path):
    with Store.open(tmp_path / DB_NAME) as store:
        store.record(make_record("a.mp4"), batch_id=None)
        store.record(make_record("b.mp4", status="failed", error="b.mp4 is not a media file"), batch_id=None)
        videos = {v.path: v for v in store.videos()}
        assert videos["a.mp4"].n_speakers == 2 and videos["a.mp4"].speakers[0]["id"] == "S1"
        assert videos["b.mp4"].status == "failed" and "not a media file" in videos["b.mp4"].error
        assert videos["a.mp4"].to_dict()["shares"]["voice"] == pytest.approx(0.6)


def _schema_7_database(path) -> None:
    """A database as dramapic wrote it before schema 8, made by that schema's own DDL (the first seven migrations),
    with rows inserted as that dramapic inserted them: a done run with its summary, and a failed run."""
    from dramapic.archive.schema import MIGRATIONS

    with Store.open(path, migrations=MIGRATIONS[:7]) as store:
        assert store.schema_version == 7
    with sqlite3.connect(path) as db:
        db.executescript(f"""
INSERT INTO files (id, path, size, mtime_ns, sha256, first_seen, last_seen)
    VALUES (1, 'dub.mkv', 1000, 1, '{"c" * 64}', 0, 0), (2, 'bad.mp4', 10, 1, NULL, 0, 0);
INSERT INTO runs (id, file_id, key, status, sha256, pipeline_name, pipeline_version, pipeline_sha256, models_json,
                  options_json, started, finished, seconds, duration, error_type, error)
    VALUES (1, 1, 'k1', 'done', '{"c" * 64}', 'default', '1', '{"d" * 64}', '[]', '{{}}', 0, 1, 1, 60, NULL, NULL),
           (2, 2, 'k2', 'failed', NULL, 'default', '1', '{"d" * 64}', '[]', '{{}}', 0, 1, 1, NULL, 'MediaError',
            'bad.mp4 is not a media file');
UPDATE files SET current_run_id = id;
INSERT INTO summaries (run_id, duration, voice, song, noise, silence, female_share, male_share, female_seconds,
                       male_seconds, n_speakers, genre, genre_confidence, genre_scores_json)
    VALUES (1, 60, 0.6, 0.2, 0, 0.2, 0.5, 0.5, 18, 18, 2, 'drama', 0.5, '{{"drama": 0.5}}');
""")


def test_the_audio_track_and_channel_a_run_describes_are_kept_and_older_runs_say_unknown(tmp_path):
    # which sound of the file the figures describe (a dub or the original, one channel of a dual-mono broadcast) was
    # in each run's JSON but not in the archive: a query or a report could not tell the dub's figures from the
    # original's. A run recorded before does not know it: NULL, not track 0's mix
    path = tmp_path / DB_NAME
    _schema_7_database(path)
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION and store.integrity_check() == "ok"
        store.record(make_record("left.mp4", key="k3", result=make_result("left.mp4", audio_track=1,
                                                                          audio_channel="left")), batch_id=None)
        store.record(make_record("mix.mp4", key="k4", result=make_result("mix.mp4", audio_track=0)), batch_id=None)
        store.record(make_record("broken.mp4", key="k5", status="failed", error="no audio"), batch_id=None)
        stored = {row["path"]: (row["audio_track"], row["audio_channel"]) for row in store.query(
            "SELECT f.path, r.audio_track, r.audio_channel FROM runs r JOIN files f ON f.id = r.file_id")}
        videos = {v.path: (v.audio_track, v.audio_channel) for v in store.videos()}
    assert stored == {"dub.mkv": (None, None), "bad.mp4": (None, None), "left.mp4": (1, "left"),
                      "mix.mp4": (0, "mix"), "broken.mp4": (None, None)}
    assert videos == stored
    assert video_record(make_result("x.mp4", audio_track=2)).to_dict()["audio_channel"] == "mix"  # one run's JSON
    assert (video_record(make_result("x.mp4")).audio_track, video_record(make_result("x.mp4")).audio_channel) == \
        (None, None)  # a JSON written before they were recorded
    with sqlite3.connect(path) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("UPDATE runs SET audio_channel = 'centre' WHERE audio_channel = 'left'")


def test_the_gain_a_run_was_analysed_at_is_kept_and_older_runs_say_unknown(tmp_path):
    # a recording too quiet for stage 1 is analysed raised, and its JSON says by how much (source.gain_db); the
    # archive dropped it, so a query over a batch could not find the files whose figures are of a raised sound. A run
    # recorded before does not know it (NULL, not 0), nor does a JSON written before the key; a failure analysed nothing
    path = tmp_path / DB_NAME
    _schema_7_database(path)
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION and store.integrity_check() == "ok"
        store.record(make_record("quiet.mp4", key="k3", result=make_result("quiet.mp4", audio_track=0, gain_db=27.0)),
                     batch_id=None)
        store.record(make_record("own.mp4", key="k4", result=make_result("own.mp4", audio_track=0, gain_db=0.0)),
                     batch_id=None)
        store.record(make_record("old-json.mp4", key="k5", result=make_result("old-json.mp4")), batch_id=None)
        store.record(make_record("broken.mp4", key="k6", status="failed", error="no audio"), batch_id=None)
        stored = {row["path"]: row["gain_db"] for row in store.query(
            "SELECT f.path, r.gain_db FROM runs r JOIN files f ON f.id = r.file_id")}
        videos = {v.path: v.gain_db for v in store.videos()}
    assert stored == {"dub.mkv": None, "bad.mp4": None, "quiet.mp4": 27.0, "own.mp4": 0.0, "old-json.mp4": None,
                      "broken.mp4": None}
    assert videos == stored
    assert video_record(make_result("x.mp4", audio_track=0, gain_db=12.5)).to_dict()["gain_db"] == 12.5  # one JSON
    with Store.open(path) as store:
        # a redo that failed, under the run's own key and under another, keeps the done run and so its gain
        store.record(make_record("quiet.mp4", key="k3", status="failed", error="disk gone"), batch_id=None)
        store.record(make_record("quiet.mp4", key="k9", status="failed", error="disk gone"), batch_id=None)
        (quiet,) = [v for v in store.videos() if v.path == "quiet.mp4"]
        assert (quiet.status, quiet.error, quiet.gain_db) == ("done", "disk gone", 27.0)
        # the same key redone at its own level: the kept gain is the new run's
        store.record(make_record("quiet.mp4", key="k3", result=make_result("quiet.mp4", audio_track=0, gain_db=0.0)),
                     batch_id=None)
        assert {v.path: v.gain_db for v in store.videos()}["quiet.mp4"] == 0.0


def test_a_runs_notes_are_kept_and_older_runs_say_they_were_not_recorded(tmp_path):
    # what `dramapic run` tells its user about a file (a DC offset, a stale subtitle file in the other format) was
    # nowhere in the archive: a batch dropped it. Kept with the run now, a failed one's too; a run recorded before
    # schema 9 did not keep them: None, not known, which is not "no notes"
    import dataclasses

    path = tmp_path / DB_NAME
    _schema_7_database(path)
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION and store.integrity_check() == "ok"
        store.record(dataclasses.replace(make_record("noisy.mp4", key="k3"), notes=("a DC offset", "a stale vtt")),
                     batch_id=None)
        store.record(make_record("clean.mp4", key="k4"), batch_id=None)
        store.record(dataclasses.replace(make_record("broken.mp4", key="k5", status="failed", error="no audio"),
                                         notes=("decoding errors",)), batch_id=None)
        videos = {v.path: v for v in store.videos()}
    assert {p: v.notes for p, v in videos.items()} == {
        "dub.mkv": None, "bad.mp4": None, "noisy.mp4": ("a DC offset", "a stale vtt"), "clean.mp4": (),
        "broken.mp4": ("decoding errors",)}
    assert videos["noisy.mp4"].to_dict()["notes"] == ["a DC offset", "a stale vtt"]
    assert videos["dub.mkv"].to_dict()["notes"] is None
    with Store.open(path) as store:  # the same key recorded again (outputs went missing): its notes are the new run's
        store.record(make_record("noisy.mp4", key="k3"), batch_id=None)
        assert {v.path: v.notes for v in store.videos()}["noisy.mp4"] == ()
    with sqlite3.connect(path) as db:  # a value damaged by hand: one line, as any other column that does not parse
        db.execute("UPDATE runs SET notes_json = '[\"cut' WHERE key = 'k3'")
    db.close()
    with Store.open(path) as store, pytest.raises(OutputError, match="cannot read the archive database"):
        store.videos()


def test_a_failed_redos_notes_are_kept_with_its_failure(tmp_path):
    # a finished file redone and failed keeps its finished run current with the failure noted on it; under the run's
    # own key (its outputs went missing) the failed attempt gets no row, and what it logged (decoding errors) was
    # dropped. Kept beside the error now, for either key, and cleared with it
    import dataclasses

    with Store.open(tmp_path / DB_NAME) as store:
        for path in ("own.mp4", "other.mp4"):
            store.record(dataclasses.replace(make_record(path, key="k1"), notes=("a DC offset",)), batch_id=None)
        failed = {"status": "failed", "error": "ffmpeg crashed on the redo"}
        store.record(dataclasses.replace(make_record("own.mp4", key="k1", **failed),
                                         notes=("a DC offset", "decoding errors at 12 s")), batch_id=None)
        store.record(dataclasses.replace(make_record("other.mp4", key="k2", **failed),
                                         notes=("the new content is very quiet",)), batch_id=None)
        videos = {v.path: v for v in store.videos()}
        assert [(v.status, v.error, v.notes) for v in videos.values()] == [
            ("done", "ffmpeg crashed on the redo", ("a DC offset",))] * 2  # the run's own notes are its own
        assert videos["own.mp4"].redo_notes == ("a DC offset", "decoding errors at 12 s")
        assert videos["other.mp4"].redo_notes == ("the new content is very quiet",)
        assert videos["own.mp4"].to_dict()["redo_notes"] == ["a DC offset", "decoding errors at 12 s"]
        store.clear_redo_note(store.known_file("other.mp4").current_run_id)  # another key's note, outdated
        store.record(make_record("own.mp4", key="k1"), batch_id=None)  # the redo done at last
        videos = {v.path: v for v in store.videos()}
    assert [(v.error, v.redo_notes) for v in videos.values()] == [(None, ())] * 2


def test_the_upgrade_keeps_a_failed_redo_noted_before_its_notes_were_kept(tmp_path):
    # schema 9 noted a failed redo on the done run without that attempt's notes: after the upgrade the failure is
    # still there and its notes are not known (none listed), and a new failure keeps them
    import dataclasses

    from dramapic.archive.schema import MIGRATIONS

    path = tmp_path / DB_NAME
    _schema_7_database(path)
    with Store.open(path, migrations=MIGRATIONS[:9]) as store:
        assert store.schema_version == 9
    with sqlite3.connect(path) as db:
        db.execute("UPDATE runs SET error_type = 'MediaError', error = 'redo failed', error_key = 'k1', "
                   "notes_json = '[\"a DC offset\"]' WHERE id = 1")
    db.close()
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION and store.integrity_check() == "ok"
        dub = {v.path: v for v in store.videos()}["dub.mkv"]
        assert (dub.status, dub.error, dub.notes, dub.redo_notes) == ("done", "redo failed", ("a DC offset",), ())
        store.record(dataclasses.replace(make_record("dub.mkv", key="k1", status="failed", error="again"),
                                         notes=("decoding errors",)), batch_id=None)
        dub = {v.path: v for v in store.videos()}["dub.mkv"]
    assert (dub.status, dub.error, dub.redo_notes) == ("done", "again", ("decoding errors",))


def test_a_killed_batch_is_marked_interrupted_by_the_next(tmp_path):
    with Store.open(tmp_path / DB_NAME) as store:
        first = store.begin_batch(archive="/a", engine="local", workers=1, options={})
        second = store.begin_batch(archive="/a", engine="local", workers=1, options={})
        store.end_batch(second, status="finished", done=1, skipped=0, failed=0, audio_seconds=6.0)
        status = {b["id"]: b["status"] for b in store.batches()}
        assert status == {first: "interrupted", second: "finished"}


def test_not_a_database_is_refused(tmp_path):
    path = tmp_path / DB_NAME
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(OutputError, match="not a usable dramapic database"):
        Store.open(path)
    with pytest.raises(OutputError, match="no archive database"):
        Store.open(tmp_path / "missing.sqlite", create=False)


def _damage(path, table: str) -> None:
    """Overwrite the b-tree page header of ``table``'s root page, as a bad sector would."""
    with sqlite3.connect(path) as db:
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
        page = db.execute("PRAGMA page_size").fetchone()[0]
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(path, "r+b") as handle:
        handle.seek((root - 1) * page)
        handle.write(b"\xff" * 16)


def test_a_database_damaged_after_it_was_written_is_one_typed_error(tmp_path):
    # SQLite opens a damaged file fine and finds the damage on the first page a query reads: the batch (planning)
    # and the report must end in one line there, not in a traceback
    from dramapic.archive.report import write_report

    path = tmp_path / DB_NAME
    with Store.open(path) as store:
        store.begin_batch(archive="/archive", engine="local", workers=1, options={})
        store.record(make_record("ep1.mp4"), batch_id=None)
    with sqlite3.connect(path) as db:  # a JSON column that no longer parses, and bytes that are not UTF-8
        db.execute("UPDATE runs SET outputs_json = '{\"json\": \"ep1.mp4.js'")
        db.execute("UPDATE batches SET archive = CAST(x'2f80ff' AS TEXT)")
    with Store.open(path) as store:
        assert store.known_file("ep1.mp4") is not None
        with pytest.raises(OutputError, match="cannot read the archive database .*: Unterminated string"):
            store.run_by_id(1)
        with pytest.raises(OutputError, match="cannot read the archive database .*decode") as caught:
            store.batches()
        assert "\x80" not in str(caught.value)
    _damage(path, "runs")
    with Store.open(path) as store:
        with pytest.raises(OutputError, match="cannot read the archive database .*malformed"):
            store.videos()
    with pytest.raises(OutputError, match="malformed"):
        write_report(tmp_path)


def test_a_database_another_program_holds_a_write_lock_on_is_named_with_who_to_ask(tmp_path):
    # a database browser with edits not yet written (or a sqlite3 shell inside BEGIN) holds SQLite's write lock;
    # no dramapic holds it (a batch and a report's upgrade take the folder's lock first). The batch said only "the
    # archive database is busy or read-only: database is locked", naming neither the file nor what to do
    path = tmp_path / DB_NAME
    with Store.open(path) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            store.query("PRAGMA busy_timeout = 0")  # the batch waits 30 s for such a lock first
            with pytest.raises(OutputError) as refused:
                store.begin_batch(archive="/a", engine="local", workers=1, options={})
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert str(refused.value) == (
            f"the archive database {path} is locked by another program (a database browser with changes not yet "
            "written, a sqlite3 shell inside a transaction?): database is locked; close it and run again")
        assert store.batches() == []


def test_second_lock_on_the_same_folder_is_refused(tmp_path):
    with BatchLock(tmp_path):
        with pytest.raises(OutputError, match=f"another batch is running on {tmp_path}"):
            BatchLock(tmp_path).acquire()
    with BatchLock(tmp_path) as again:  # released on exit
        assert again.held


def test_a_batch_refused_by_a_report_upgrading_the_database_says_so(tmp_path, monkeypatch):
    # dramapic report holds the folder's lock for the moment it upgrades an older database: a batch started then is
    # told a report holds it, with the report's pid, not that "another batch is running"
    out = tmp_path / "out"
    _schema_3_archive(out)
    refusals = []
    real = Store._open

    def batch_meanwhile(cls, path, **kwargs):
        if kwargs.get("migrate"):  # the upgrade, under the report's lock
            try:
                BatchLock(out).acquire().release()
            except OutputError as err:
                refusals.append(str(err))
        return real.__func__(cls, path, **kwargs)

    monkeypatch.setattr(Store, "_open", classmethod(batch_meanwhile))
    with Store.open_reader(out / DB_NAME):
        pass
    assert len(refusals) == 1, refusals
    assert refusals[0].startswith(f"a report is upgrading the archive database in {out} (pid {os.getpid()} on "), \
        refusals[0]
    assert refusals[0].endswith("; wait for it to finish or pass --wait")
    assert "another batch" not in refusals[0]
    # --wait: told the same while it waits (the report lets go as it is told)
    report = BatchLock(out, role="report").acquire()
    told = []
    with BatchLock(out, wait=True, on_wait=lambda holder: (told.append(holder), report.release()), poll_s=0.01):
        pass
    assert len(told) == 1 and told[0].startswith(f"a report is upgrading the archive database in this output folder "
                                                 f"(pid {os.getpid()} on "), told


HOLDER = """
import sys, time
from dramapic.archive.store import BatchLock
lock = BatchLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.mark.parametrize("failing", ["flock", "pwrite"])
def test_a_lock_that_cannot_be_taken_or_written_is_one_typed_error(tmp_path, monkeypatch, failing):
    # flock: a network share without lock support (ENOLCK); pwrite: the holder's note on a full disk (ENOSPC)
    import errno
    import fcntl
    import os

    code = errno.ENOLCK if failing == "flock" else errno.ENOSPC

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl if failing == "flock" else os, failing, fail)
    with pytest.raises(OutputError, match=f"cannot lock .*{os.strerror(code)}"):
        BatchLock(tmp_path).acquire()
    monkeypatch.undo()
    with BatchLock(tmp_path) as lock:  # the failed attempt holds nothing
        assert lock.held


def _hold_lock(folder, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), str(seconds)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_lock_held_by_another_process_refuses_waits_and_dies_with_it(tmp_path):
    holder = _hold_lock(tmp_path, 60)
    try:
        with pytest.raises(OutputError, match=f"pid {holder.pid}"):
            BatchLock(tmp_path).acquire()
    finally:
        holder.kill()  # SIGKILL: the kernel drops the flock, no stale lock is left
        holder.wait()
    with BatchLock(tmp_path):
        pass

    holder = _hold_lock(tmp_path, 1.0)
    told = []
    clock = time.monotonic()
    with BatchLock(tmp_path, wait=True, on_wait=told.append, poll_s=0.05) as lock:
        assert lock.held and time.monotonic() - clock > 0.3
    assert len(told) == 1 and f"pid {holder.pid}" in told[0]
    holder.wait()


def test_readers_see_committed_files_while_a_batch_writes(tmp_path):
    with Store.open(tmp_path / DB_NAME) as writer:
        writer.record(make_record("a.mp4"), batch_id=None)
        reader = sqlite3.connect(tmp_path / DB_NAME)
        try:
            writer._db.execute("BEGIN IMMEDIATE")  # a batch in the middle of recording a file
            writer._db.execute("DELETE FROM summaries")
            assert reader.execute("SELECT count(*) FROM summaries").fetchone()[0] == 1  # WAL: not blocked
            writer._db.execute("ROLLBACK")
        finally:
            reader.close()


@pytest.mark.parametrize("user_version", [0, SCHEMA_VERSION, 99])
def test_another_programs_sqlite_file_is_refused_and_left_as_it_was(tmp_path, user_version):
    path = tmp_path / DB_NAME
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
        db.execute(f"PRAGMA user_version = {user_version}")
    for kwargs in ({}, {"migrate": False, "create": False}):  # a batch, and a report
        with pytest.raises(OutputError, match="not a dramapic database"):
            Store.open(path, **kwargs)
    with sqlite3.connect(path) as db:  # none of our tables added to it
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["notes"]


def test_a_run_with_gender_off_has_no_gender_figures_also_after_the_upgrade(tmp_path):
    # gender switched off (--no-gender) measured nothing: None, not 0 % female and 0 % male; a run with gender on
    # whose voice the model left all unknown is measured (its unknown seconds say so)
    from dramapic.archive.store import video_record
    from dramapic.result import AnalysisResult

    def all_unknown(path):
        data = make_result(path).to_dict()
        for segment in data["segments"]:
            segment["gender"] = None  # the scores keep female / male: the model ran, it was not sure
        data["summary"]["gender_shares"] = {"female": 0.0, "male": 0.0}
        data["summary"]["gender_unknown_share"] = 1.0
        return AnalysisResult.from_dict(data)

    path = tmp_path / DB_NAME
    with Store.open(path) as store:
        store.record(make_record("old-off.mp4", result=make_result("old-off.mp4", gender=False)), batch_id=None)
        store.record(make_record("old-on.mp4", key="k2"), batch_id=None)
        store.record(make_record("old-unsure.mp4", key="k3", result=all_unknown("old-unsure.mp4")), batch_id=None)
    db = sqlite3.connect(path)  # as schema 3 left them: no gender_known column (nor later ones)
    db.executescript("ALTER TABLE summaries DROP COLUMN gender_known; ALTER TABLE runs DROP COLUMN error_key; "
                     "ALTER TABLE runs DROP COLUMN audio_track; ALTER TABLE runs DROP COLUMN audio_channel; "
                     "ALTER TABLE runs DROP COLUMN notes_json; "
                     "ALTER TABLE runs DROP COLUMN error_notes_json; ALTER TABLE runs DROP COLUMN gain_db; "
                     "ALTER TABLE files DROP COLUMN missing_since; PRAGMA user_version = 3;")
    db.close()
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        store.record(make_record("new-off.mp4", key="k4", result=make_result("new-off.mp4", gender=False)),
                     batch_id=None)
        videos = {v.path: v for v in store.videos()}
    for name in ("old-off.mp4", "new-off.mp4"):
        video = videos[name]
        assert (video.female_share, video.male_share, video.female_seconds, video.male_seconds,
                video.unknown_seconds) == (None,) * 5, name
        assert video.n_speakers == 2 and video.shares["voice"] == 0.6  # the rest was measured as ever
    assert (videos["old-on.mp4"].female_share, videos["old-on.mp4"].female_seconds) == (0.5, pytest.approx(18.0))
    unsure = videos["old-unsure.mp4"]
    assert (unsure.female_share, unsure.male_share) == (0.0, 0.0) and unsure.unknown_seconds == pytest.approx(36.0)
    record = video_record(make_result("x.mp4", gender=False))  # the same from one run's JSON
    assert (record.female_share, record.male_seconds, record.unknown_seconds) == (None, None, None)



def test_the_upgrade_tells_a_gender_off_run_without_voice_by_its_models(tmp_path):
    # schema 4 could tell --no-gender only by the voice it left ungendered: a run with no voice at all kept reading
    # 0 % female / 0 % male. Its models tell (no gender model ran); a gender-on run without voice keeps its zeros
    import dataclasses

    from dramapic.result import AnalysisResult

    def without_voice(path, *, gender):
        data = make_result(path, gender=gender).to_dict()
        for segment in data["segments"]:
            if segment["label"] == "voice":
                segment.update(label="noise", gender=None, speaker=None)
        data["summary"].update(shares={"voice": 0.0, "song": 0.2, "noise": 0.6, "silence": 0.2}, speakers=[])
        if gender:
            data["summary"].update(gender_shares={"female": 0.0, "male": 0.0}, gender_unknown_share=0.0)
        return AnalysisResult.from_dict(data)

    no_gender_model = tuple(m for m in MODELS if not m["name"].startswith("gender-"))
    assert no_gender_model and len(no_gender_model) < len(MODELS)
    path = tmp_path / DB_NAME
    with Store.open(path) as store:
        store.record(dataclasses.replace(make_record("off.mp4", result=without_voice("off.mp4", gender=False)),
                                         models=no_gender_model), batch_id=None)
        store.record(make_record("on.mp4", key="k2", result=without_voice("on.mp4", gender=True)), batch_id=None)
        store.record(dataclasses.replace(make_record("off-voice.mp4", key="k3",
                                                     result=make_result("off-voice.mp4", gender=False)),
                                         models=no_gender_model), batch_id=None)
    db = sqlite3.connect(path)  # as schema 3 left them: no gender_known column (nor later ones)
    db.executescript("ALTER TABLE summaries DROP COLUMN gender_known; ALTER TABLE runs DROP COLUMN error_key; "
                     "ALTER TABLE runs DROP COLUMN audio_track; ALTER TABLE runs DROP COLUMN audio_channel; "
                     "ALTER TABLE runs DROP COLUMN notes_json; "
                     "ALTER TABLE runs DROP COLUMN error_notes_json; ALTER TABLE runs DROP COLUMN gain_db; "
                     "ALTER TABLE files DROP COLUMN missing_since; PRAGMA user_version = 3;")
    db.close()
    with Store.open(path) as store:
        videos = {v.path: v for v in store.videos()}
    for name in ("off.mp4", "off-voice.mp4"):
        assert (videos[name].female_share, videos[name].male_seconds) == (None, None), name
    assert (videos["on.mp4"].female_share, videos["on.mp4"].male_seconds) == (0.0, 0.0)

def test_the_upgrade_tells_which_key_a_kept_runs_redo_note_is_about(tmp_path):
    # schema 4 noted a failed redo on the done run it kept without the key that failed: the upgrade takes it from
    # the file's failed row with the same error under another key (a new-content redo), else the run's own key (its
    # outputs-missing redo failed), so only the latter goes on blocking that run's own redo
    path = tmp_path / DB_NAME
    with Store.open(path) as store:
        for name in ("new.mp4", "own.mp4"):
            store.record(make_record(name), batch_id=None)
        store.record(make_record("new.mp4", key="k2", status="failed", error="ffmpeg crashed"), batch_id=None)
        store.record(make_record("own.mp4", status="failed", error="disk full"), batch_id=None)
        store.record(make_record("plain.mp4", status="failed", error="not a media file"), batch_id=None)
    db = sqlite3.connect(path)  # as schema 4 left them: no error_key column (nor later ones)
    db.executescript("ALTER TABLE runs DROP COLUMN error_key; "
                     "ALTER TABLE runs DROP COLUMN audio_track; ALTER TABLE runs DROP COLUMN audio_channel; "
                     "ALTER TABLE runs DROP COLUMN notes_json; "
                     "ALTER TABLE runs DROP COLUMN error_notes_json; ALTER TABLE runs DROP COLUMN gain_db; "
                     "ALTER TABLE files DROP COLUMN missing_since; PRAGMA user_version = 4;")
    db.close()
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        notes = {(r["path"], r["key"]): (r["status"], r["error"], r["error_key"]) for r in iter_runs(store)}
    assert notes == {("new.mp4", "k1"): ("done", "ffmpeg crashed", "k2"),
                     ("new.mp4", "k2"): ("failed", "ffmpeg crashed", "k2"),
                     ("own.mp4", "k1"): ("done", "disk full", "k1"),
                     ("plain.mp4", "k1"): ("failed", "not a media file", "k1")}


def _schema_3_archive(out) -> None:
    """An output folder whose database schema 3 left: a run made with --no-gender, one with gender on."""
    out.mkdir()
    with Store.open(out / DB_NAME) as store:
        store.record(make_record("old-off.mp4", result=make_result("old-off.mp4", gender=False)), batch_id=None)
        store.record(make_record("old-on.mp4", key="k2"), batch_id=None)
    db = sqlite3.connect(out / DB_NAME)
    db.executescript("ALTER TABLE summaries DROP COLUMN gender_known; ALTER TABLE runs DROP COLUMN error_key; "
                     "ALTER TABLE runs DROP COLUMN audio_track; ALTER TABLE runs DROP COLUMN audio_channel; "
                     "ALTER TABLE runs DROP COLUMN notes_json; "
                     "ALTER TABLE runs DROP COLUMN error_notes_json; ALTER TABLE runs DROP COLUMN gain_db; "
                     "ALTER TABLE files DROP COLUMN missing_since; PRAGMA user_version = 3;")
    db.close()


def _gender_read(store: Store) -> dict:
    return {v.path: v.female_share for v in store.videos()}


def test_a_reader_upgrades_an_older_archive_under_the_lock(tmp_path):
    # dramapic report on an archive an older dramapic wrote: no batch needed first; the upgrade is the batch's own
    out = tmp_path / "out"
    _schema_3_archive(out)
    with pytest.raises(OutputError, match=f"older than {SCHEMA_VERSION}"):  # Store.open without migrate still refuses it
        Store.open(out / DB_NAME, migrate=False, create=False)
    with Store.open_reader(out / DB_NAME) as store:
        assert _gender_read(store) == {"old-off.mp4": None, "old-on.mp4": 0.5}
    with sqlite3.connect(out / DB_NAME) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    BatchLock(out).acquire().release()  # the reader let go of the lock


@pytest.mark.parametrize("obstacle", ["batch running", "read-only disk", "read-only file"])
def test_a_reader_that_cannot_upgrade_an_older_archive_reads_it_upgraded_in_memory(tmp_path, monkeypatch, obstacle):
    # another batch (of the older dramapic) holds the folder, or nothing there can be written (simulated: the tests
    # run as root, whom a read-only mode does not stop): the report reads the upgrade of a copy; the file is unchanged
    out = tmp_path / "out"
    _schema_3_archive(out)
    before = (out / DB_NAME).read_bytes()
    holder = BatchLock(out)
    if obstacle == "batch running":
        holder.acquire()
    elif obstacle == "read-only disk":  # no lock file, and SQLite cannot open it for writing (no -shm file)
        monkeypatch.setattr(BatchLock, "acquire", lambda self: (_ for _ in ()).throw(
            OutputError(f"cannot create the lock file {self.path}: Read-only file system")))
        real = Store._open

        def no_write_access(cls, path, *, uri_query=None, **kwargs):
            if uri_query is None:
                raise OutputError(f"{path} is not a usable dramapic database: unable to open database file")
            return real.__func__(cls, path, uri_query=uri_query, **kwargs)

        monkeypatch.setattr(Store, "_open", classmethod(no_write_access))
    else:
        real = Store._open

        def read_only(cls, path, *, migrate, uri_query=None, **kwargs):
            if migrate:
                raise OutputError(f"{path}: migrating the schema from version 3 to 4 failed: attempt to write a "
                                  "readonly database")
            return real.__func__(cls, path, migrate=migrate, uri_query=uri_query, **kwargs)

        monkeypatch.setattr(Store, "_open", classmethod(read_only))
    try:
        with Store.open_reader(out / DB_NAME) as store:
            assert _gender_read(store) == {"old-off.mp4": None, "old-on.mp4": 0.5}
            assert store.schema_version == SCHEMA_VERSION
    finally:
        holder.release()
    assert (out / DB_NAME).read_bytes() == before
    with sqlite3.connect(out / DB_NAME) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3


def test_a_reader_still_refuses_a_newer_or_foreign_database(tmp_path):
    path = tmp_path / DB_NAME
    with Store.open(path) as store:
        store.record(make_record(), batch_id=None)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(OutputError, match="newer than this dramapic"):
        Store.open_reader(path)
    with pytest.raises(OutputError, match="no archive database"):
        Store.open_reader(tmp_path / "missing.sqlite")
    (tmp_path / "empty.sqlite").write_bytes(b"")  # a batch killed as it created the file: nothing to read
    with pytest.raises(OutputError, match="is empty, not an archive database yet"):
        Store.open_reader(tmp_path / "empty.sqlite")
    with sqlite3.connect(tmp_path / "empty.sqlite") as db:  # no tables created in it by a reader
        assert db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0


def test_a_reader_refuses_a_newer_schema_still_in_the_write_ahead_log(tmp_path):
    # a newer dramapic's batch has upgraded the database and is still writing it: the upgrade is in the WAL, not yet
    # in the main file. The verdict "newer" stands; it used to be retried as immutable, which ignores the WAL and
    # read the main file's older schema: a stale snapshot, reported as the archive
    path = tmp_path / DB_NAME
    with Store.open(path) as store:
        store.record(make_record(), batch_id=None)
    newer = sqlite3.connect(path, isolation_level=None)  # left open: nothing checkpoints the WAL
    try:
        newer.execute("PRAGMA user_version = 99")
        for opening in (lambda: Store.open(path, migrate=False, create=False), lambda: Store.open_reader(path)):
            with pytest.raises(OutputError, match="version 99, newer than this dramapic"):
                opening().close()
    finally:
        newer.close()
