"""Archive mode: files moved or renamed in the archive keep their results.

A season folder renamed, ``ep1.mp4`` renamed ``S01E01.mp4``: the content, the pipeline, the models and the output
options are those of a finished run, so the batch carries that run and its outputs over to the new path (the outputs
renamed, the names inside them rewritten) instead of analysing the file again. A copy (the old path still there), new
content under the new name, or another pipeline is analysed as before.

The analysis is faked (``dramapic.run.analyze``) so that the real writers (SRT, JSON, RTTM, the burned MP4) write real
outputs from a result keyed like a real run's; every call of it is counted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import CLIP_S, CLIPS, assert_consistent, make_archive, make_archive_result

from dramapic.archive.batch import BatchOptions, TaskOptions, expected_models, run_batch
from dramapic.archive.store import DB_NAME, RunRecord, Store
from dramapic.config import load_pipeline
from dramapic.errors import OutputError
from dramapic.result import Source

OLD = "episode_one_old"     # a name that cannot turn up in a file by chance (MP4 bytes included)
NEW = "S01E01"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """Two real, small videos of different content (and size)."""
    chosen = dict(list(CLIPS.items())[:2])
    folder = make_archive(tmp_path_factory.mktemp("clips"), chosen, corrupt=False)
    return [folder / rel for rel in chosen]


@pytest.fixture(scope="module")
def models():
    return tuple(expected_models(load_pipeline(None)))


@pytest.fixture
def analysed(monkeypatch, models) -> list[str]:
    """The paths ``dramapic.run.analyze`` was called on (a result keyed like a real run's: the file's own sha256,
    the installed models)."""
    from dramapic import run as run_module
    from dramapic.models import file_sha256

    calls: list[str] = []

    def analyze(source, pipeline, *, options, progress, timings, info):
        calls.append(str(source))
        result = make_archive_result(str(source), duration=float(CLIP_S))
        return dataclasses.replace(result, models=tuple(dict(m) for m in models),
                                   source=Source(str(source), float(CLIP_S), file_sha256(source), 0, None))

    monkeypatch.setattr(run_module, "analyze", analyze)
    return calls


def _archive(tmp_path: Path, clips: list[Path], names: dict[str, int]) -> Path:
    archive = tmp_path / "archive"
    for rel, clip in names.items():
        (archive / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(clips[clip], archive / rel)
    return archive


def _outputs(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()
                  and not p.name.startswith("dramapic."))


def _plan(archive, out, **kwargs):
    plans = []
    summary = run_batch(archive, out, on_plan=plans.append, **kwargs)
    return summary, {i.file.rel: i for i in plans[0].items}


def test_a_moved_and_renamed_file_is_not_analysed_again_and_its_outputs_follow_it(tmp_path, clips, analysed):
    # a season folder renamed and an episode renamed in it: both were analysed again (hours on a real archive), the
    # old paths counted gone and their outputs left behind in OUT_DIR
    archive = _archive(tmp_path, clips, {f"s1/{OLD}.mp4": 0, "s1/ep2.mp4": 1})
    out = tmp_path / "out"
    options = BatchOptions(task=TaskOptions(burn=True))
    assert run_batch(archive, out, options=options).done == 2 and len(analysed) == 2
    video = hashlib.sha256((out / f"s1/{OLD}.dramapic.mp4").read_bytes()).hexdigest()
    (archive / "s1").rename(archive / "Season 1")
    (archive / f"Season 1/{OLD}.mp4").rename(archive / f"Season 1/{NEW}.mp4")

    summary, plan = _plan(archive, out, options=options)
    assert len(analysed) == 2, analysed  # nothing analysed again
    assert (summary.done, summary.skipped, summary.failed) == (0, 2, 0)
    assert set(summary.moved) == {(f"s1/{OLD}.mp4", f"Season 1/{NEW}.mp4"), ("s1/ep2.mp4", "Season 1/ep2.mp4")}
    assert summary.to_dict()["moved"] == [list(m) for m in summary.moved]
    assert {(rel, i.action, i.reason, i.moved_from) for rel, i in plan.items()} == {
        (f"Season 1/{NEW}.mp4", "skip", "moved", f"s1/{OLD}.mp4"), ("Season 1/ep2.mp4", "skip", "moved", "s1/ep2.mp4")}

    # the outputs are under the new names only, the old folder gone with them
    assert _outputs(out) == sorted(f"Season 1/{stem}.{ext}" for stem in (NEW, "ep2")
                                   for ext in ("srt", "dramapic.json", "rttm", "dramapic.mp4"))
    assert not (out / "s1").exists()
    # no output of the new path names the old one; the JSON and RTTM name the new one
    new = archive.resolve() / f"Season 1/{NEW}.mp4"
    for path in (out / "Season 1").glob(f"{NEW}.*"):
        assert OLD.encode() not in path.read_bytes(), path
    data = json.loads((out / f"Season 1/{NEW}.dramapic.json").read_text(encoding="utf-8"))
    assert data["source"]["path"] == str(new)
    turns = (out / f"Season 1/{NEW}.rttm").read_text(encoding="utf-8").splitlines()
    assert turns and {line.split(" ")[1] for line in turns} == {NEW}
    assert hashlib.sha256((out / f"Season 1/{NEW}.dramapic.mp4").read_bytes()).hexdigest() == video  # untouched
    # the database knows each file once, under its new path, with the run whose outputs these are
    with Store.open(out / DB_NAME) as store:
        assert store.missing() == [] and store.query("SELECT count(*) FROM files")[0][0] == 2
        assert sorted(v.path for v in store.videos()) == ["Season 1/S01E01.mp4", "Season 1/ep2.mp4"]
        run = store.current_run(f"Season 1/{NEW}.mp4")
        assert run.outputs == {"json": f"Season 1/{NEW}.dramapic.json", "rttm": f"Season 1/{NEW}.rttm",
                               "subtitles": f"Season 1/{NEW}.srt", "video": f"Season 1/{NEW}.dramapic.mp4"}
        assert store.query("SELECT count(*) FROM runs")[0][0] == 2
    assert_consistent(out, good={f"Season 1/{NEW}.mp4", "Season 1/ep2.mp4"})
    from dramapic.archive.report import load_report_data

    data = load_report_data(out)
    assert data.missing == () and [v.path for v in data.videos] == ["Season 1/S01E01.mp4", "Season 1/ep2.mp4"]

    again, plan = _plan(archive, out, options=options)
    assert (again.done, again.skipped, again.moved) == (0, 2, ()) and len(analysed) == 2
    assert {i.reason for i in plan.values()} == {"done"}


def test_a_file_renamed_in_its_folder_keeps_its_outputs_when_their_names_do_not_change(tmp_path, clips, analysed):
    # ep1.mp4 renamed ep1.mkv: the same output names, only the JSON's source changes
    archive = _archive(tmp_path, clips, {"ep1.mp4": 0})
    out = tmp_path / "out"
    assert run_batch(archive, out).done == 1
    (archive / "ep1.mp4").rename(archive / "ep1.mkv")
    summary = run_batch(archive, out)
    assert (summary.done, summary.moved) == (0, (("ep1.mp4", "ep1.mkv"),)) and len(analysed) == 1
    assert _outputs(out) == ["ep1.dramapic.json", "ep1.rttm", "ep1.srt"]
    data = json.loads((out / "ep1.dramapic.json").read_text(encoding="utf-8"))
    assert data["source"]["path"] == str(archive.resolve() / "ep1.mkv")
    assert run_batch(archive, out).skipped == 1 and len(analysed) == 1


@pytest.mark.parametrize("change", ["other content", "same size"])
def test_a_renamed_file_whose_content_also_changed_is_analysed(tmp_path, clips, analysed, change):
    archive = _archive(tmp_path, clips, {f"{OLD}.mp4": 0, "keep.mp4": 1})
    out = tmp_path / "out"
    assert run_batch(archive, out).done == 2
    (archive / f"{OLD}.mp4").unlink()
    if change == "other content":
        shutil.copy2(clips[1], archive / f"{NEW}.mp4")
    else:  # one byte in the middle: the same size, so the file is hashed, and its sha256 differs
        data = bytearray(clips[0].read_bytes())
        data[len(data) // 2] ^= 0xFF
        (archive / f"{NEW}.mp4").write_bytes(bytes(data))
    summary, plan = _plan(archive, out)
    assert (summary.done, summary.moved) == (1, ()) and len(analysed) == 3
    assert (plan[f"{NEW}.mp4"].reason, plan[f"{NEW}.mp4"].moved_from) == ("new", None)
    with Store.open(out / DB_NAME) as store:
        assert store.missing() == [f"{OLD}.mp4"]
    json.loads((out / f"{NEW}.dramapic.json").read_text(encoding="utf-8"))


def test_a_copy_is_analysed_as_a_new_file_and_a_file_moved_and_copied_once(tmp_path, clips, analysed):
    archive = _archive(tmp_path, clips, {"ep1.mp4": 0, "ep2.mp4": 1})
    out = tmp_path / "out"
    assert run_batch(archive, out).done == 2
    shutil.copy2(archive / "ep1.mp4", archive / "copy.mp4")  # a duplicate: the original is still there
    summary, plan = _plan(archive, out)
    assert (summary.done, summary.skipped, summary.moved) == (1, 2, ()) and analysed[-1].endswith("copy.mp4")
    assert plan["copy.mp4"].reason == "new" and plan["ep1.mp4"].reason == "done"
    # ep2 moved to two places: one takes its results, the other is analysed
    shutil.copy2(archive / "ep2.mp4", archive / "a.mp4")
    (archive / "ep2.mp4").rename(archive / "b.mp4")
    summary, plan = _plan(archive, out)
    assert (summary.done, summary.moved) == (1, (("ep2.mp4", "a.mp4"),)) and analysed[-1].endswith("b.mp4")
    assert len(analysed) == 4
    with Store.open(out / DB_NAME) as store:
        assert sorted(v.path for v in store.videos()) == ["a.mp4", "b.mp4", "copy.mp4", "ep1.mp4"]
        assert store.missing() == []
    assert not list(out.glob("ep2.*"))


def test_a_moved_file_is_analysed_when_the_pipeline_or_the_options_changed(tmp_path, clips, analysed):
    archive = _archive(tmp_path, clips, {"ep1.mp4": 0})
    out = tmp_path / "out"
    pipeline = load_pipeline(None)
    assert run_batch(archive, out, pipeline=pipeline).done == 1
    (archive / "ep1.mp4").rename(archive / "ep1-moved.mp4")
    changed = pipeline.replace(stage1__switch_penalty=pipeline.stage1.switch_penalty + 1)
    summary, plan = _plan(archive, out, pipeline=changed)
    assert (summary.done, summary.moved) == (1, ()) and plan["ep1-moved.mp4"].reason == "new"
    (archive / "ep1-moved.mp4").rename(archive / "ep1-again.mp4")  # recorded done with changed now, moved again
    summary, plan = _plan(archive, out, pipeline=pipeline, options=BatchOptions(task=TaskOptions(language="ko")))
    assert (summary.done, summary.moved) == (1, ()) and plan["ep1-again.mp4"].reason == "new"
    assert len(analysed) == 3


def test_a_moved_file_whose_outputs_are_gone_is_analysed(tmp_path, clips, analysed):
    archive = _archive(tmp_path, clips, {"ep1.mp4": 0})
    out = tmp_path / "out"
    assert run_batch(archive, out).done == 1
    (out / "ep1.rttm").unlink()
    (archive / "ep1.mp4").rename(archive / "ep9.mp4")
    summary = run_batch(archive, out)
    assert (summary.done, summary.moved) == (1, ()) and len(analysed) == 2


def test_a_file_moved_while_the_batch_was_off_is_carried_by_a_later_batch(tmp_path, clips, analysed):
    # the old path was found gone (and marked) by an earlier batch whose filters left the new path out
    archive = _archive(tmp_path, clips, {"ep1.mp4": 0, "keep.mp4": 1})
    out = tmp_path / "out"
    assert run_batch(archive, out).done == 2
    (archive / "later").mkdir()
    (archive / "ep1.mp4").rename(archive / "later/ep1.mp4")
    assert run_batch(archive, out, options=BatchOptions(exclude=("later/*",))).skipped == 1
    with Store.open(out / DB_NAME) as store:
        assert store.missing() == ["ep1.mp4"]
    summary = run_batch(archive, out)
    assert summary.moved == (("ep1.mp4", "later/ep1.mp4"),) and len(analysed) == 2
    with Store.open(out / DB_NAME) as store:
        assert store.missing() == []


@pytest.mark.parametrize("stop", ["while renaming", "after recording"])
def test_a_carry_stopped_midway_leaves_the_old_state_or_the_new_and_loses_nothing(tmp_path, clips, analysed,
                                                                                 monkeypatch, stop):
    from dramapic.archive import batch as batch_module

    archive = _archive(tmp_path, clips, {f"{OLD}.mp4": 0})
    out = tmp_path / "out"
    assert run_batch(archive, out).done == 1
    before = {p: (out / p).read_bytes() for p in _outputs(out)}
    (archive / f"{OLD}.mp4").rename(archive / f"{NEW}.mp4")
    real_replace, real_unlink, calls = os.replace, os.unlink, []

    def replace(source, target, **kwargs):  # the second output's rename is stopped (Ctrl-C)
        calls.append(target)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_replace(source, target, **kwargs)

    def unlink(path, *args, **kwargs):  # the first old output's removal, after the database has the move
        if OLD in os.fspath(path) and not os.path.basename(path).startswith("."):
            raise KeyboardInterrupt
        return real_unlink(path, *args, **kwargs)

    if stop == "while renaming":
        monkeypatch.setattr(batch_module.os, "replace", replace)
    else:
        monkeypatch.setattr(batch_module.os, "unlink", unlink)
    with pytest.raises(KeyboardInterrupt):
        run_batch(archive, out)
    monkeypatch.undo()
    with Store.open(out / DB_NAME) as store:
        paths = [row[0] for row in store.query("SELECT path FROM files")]
    if stop == "while renaming":  # the old state: the database, the outputs as they were, no new name, no temporary
        assert paths == [f"{OLD}.mp4"]
        assert {p: (out / p).read_bytes() for p in _outputs(out)} == before
        assert not [p for p in out.iterdir() if p.name.startswith(".") and ".part" in p.name]
    else:  # the new state, the old names left beside it (not yet removed): nothing lost
        assert paths == [f"{NEW}.mp4"]
        assert all((out / f"{NEW}{p[len(OLD):]}").is_file() for p in before)
    summary = run_batch(archive, out)
    assert (summary.done, summary.failed) == (0, 0) and len(analysed) == 1
    assert summary.moved == (((f"{OLD}.mp4", f"{NEW}.mp4"),) if stop == "while renaming" else ())
    assert run_batch(archive, out).skipped == 1 and len(analysed) == 1
    assert all((out / f"{NEW}{p[len(OLD):]}").is_file() for p in before)
    assert_consistent(out, good={f"{NEW}.mp4"})


def test_new_files_are_not_hashed_by_the_batch_unless_a_gone_file_has_their_size(tmp_path, monkeypatch):
    # a normal batch of new files stays as fast as it was: only its workers read them
    from helpers import fake_done_worker, placeholder_archive

    from dramapic import models as models_module

    archive = placeholder_archive(tmp_path / "archive", ("ep1.mp4", "keep.mp4"))
    out = tmp_path / "out"
    hashed, working = [], []
    real_sha256 = models_module.file_sha256

    def file_sha256(path, *args, **kwargs):
        if not working:
            hashed.append(Path(path).name)
        return real_sha256(path, *args, **kwargs)

    def worker(*args, **kwargs):
        working.append(1)
        try:
            return fake_done_worker(*args, **kwargs)
        finally:
            working.pop()

    monkeypatch.setattr(models_module, "file_sha256", file_sha256)
    monkeypatch.setattr("dramapic.archive.batch.process_file", worker)
    assert run_batch(archive, out).done == 2
    (archive / "ep1.mp4").unlink()  # gone: 700 bytes
    (archive / "ep2.mp4").write_bytes(b"longer content" * 100)  # another size: not hashed
    (archive / "ep3.mp4").write_bytes(b"ep3.mp4" * 100)  # the gone file's size, other content: hashed, analysed
    hashed.clear()
    summary = run_batch(archive, out)
    assert (summary.done, summary.moved) == (2, ()) and hashed == ["ep3.mp4"]


def test_the_store_moves_a_file_with_its_runs_in_one_transaction(tmp_path):
    with Store.open(tmp_path / DB_NAME) as store:
        common = {"size": 10, "mtime_ns": 1, "key": "k", "sha256": "a" * 64, "pipeline_name": "default",
                  "pipeline_version": "1", "pipeline_sha256": "p", "models": (), "options": {}, "started": 1.0,
                  "finished": 2.0, "seconds": 1.0}
        store.record(RunRecord(path="old.mp4", status="done", result=make_archive_result("old.mp4"),
                               outputs={"json": "old.dramapic.json"}, **common), batch_id=None)
        store.record(RunRecord(path="other.mp4", status="failed", error="x", **common), batch_id=None)
        store.note_missing(lambda path: path != "old.mp4")
        assert store.missing() == ["old.mp4"]
        run_id = store.known_file("old.mp4").current_run_id
        with pytest.raises(OutputError):  # a path already recorded: nothing changes
            store.move("old.mp4", "other.mp4", size=10, mtime_ns=5, sha256="a" * 64, run_id=run_id,
                       outputs={"json": "other.dramapic.json"})
        assert store.missing() == ["old.mp4"] and store.current_run("old.mp4").outputs == {"json": "old.dramapic.json"}
        store.move("old.mp4", "new/new.mp4", size=10, mtime_ns=5, sha256="a" * 64, run_id=run_id,
                   outputs={"json": "new/new.dramapic.json"})
        assert store.known_file("old.mp4") is None and store.missing() == []
        moved = store.known_file("new/new.mp4")
        assert (moved.current_run_id, moved.mtime_ns, moved.missing_since) == (run_id, 5, None)
        assert store.current_run("new/new.mp4").outputs == {"json": "new/new.dramapic.json"}
        assert [v.path for v in store.videos()] == ["new/new.mp4", "other.mp4"]
        assert store.integrity_check() == "ok"


def test_the_cli_counts_the_moved_files(tmp_path, monkeypatch, capsys):
    from helpers import fake_done_worker, placeholder_archive

    from dramapic import cli

    archive = placeholder_archive(tmp_path / "archive", ("ep1.mp4", "ep2.mp4"))
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert cli.main(["batch", str(archive), "-o", str(out), "--no-progress"]) == 0
    (archive / "ep1.mp4").rename(archive / "S01E01.mp4")
    capsys.readouterr()
    assert cli.main(["batch", str(archive), "-o", str(out), "--no-progress"]) == 0
    said = capsys.readouterr()
    assert "batch: 0 done, 2 skipped (1 moved), 0 failed;" in said.out, said
    assert sorted(p.name for p in out.glob("*.json")) == ["S01E01.dramapic.json", "ep2.dramapic.json"]


def test_outputs_written_beside_the_media_follow_a_moved_file_and_leave_the_archive_folders_alone(tmp_path,
                                                                                                  monkeypatch):
    # OUT_DIR is the archive itself: an output folder the old names leave empty is a folder of the archive, the
    # user's to remove, not the batch's
    from helpers import fake_done_worker

    archive = tmp_path / "archive"
    (archive / "s1").mkdir(parents=True)
    (archive / "s1/ep1.mp4").write_bytes(b"ep1" * 300)
    (archive / "keep.mp4").write_bytes(b"keep" * 100)
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert run_batch(archive, archive).done == 2
    (archive / "s2").mkdir()
    (archive / "s1/ep1.mp4").rename(archive / "s2/ep1.mp4")
    summary = run_batch(archive, archive)
    assert (summary.done, summary.moved) == (0, (("s1/ep1.mp4", "s2/ep1.mp4"),))
    assert (archive / "s1").is_dir() and not list((archive / "s1").iterdir())
    assert json.loads((archive / "s2/ep1.dramapic.json").read_text(encoding="utf-8"))["source"]["path"] == \
        str(archive.resolve() / "s2/ep1.mp4")


def test_a_move_the_database_cannot_record_is_rolled_back_and_the_file_analysed(tmp_path, clips, analysed,
                                                                                  monkeypatch, caplog):
    archive = _archive(tmp_path, clips, {f"{OLD}.mp4": 0, "keep.mp4": 1})
    out = tmp_path / "out"
    assert run_batch(archive, out).done == 2
    before = {p: (out / p).read_bytes() for p in _outputs(out) if p.startswith(OLD)}
    (archive / f"{OLD}.mp4").rename(archive / f"{NEW}.mp4")

    def move(self, *args, **kwargs):
        raise OutputError("the archive database is read-only")

    monkeypatch.setattr(Store, "move", move)
    summary = run_batch(archive, out)
    assert (summary.done, summary.moved) == (1, ()) and analysed[-1].endswith(f"{NEW}.mp4")
    assert "could not be carried over (the archive database is read-only): it is analysed again" in caplog.text
    # the old outputs as they were (the old path is gone, as before), the new ones the analysis's, no temporary
    assert {p: (out / p).read_bytes() for p in _outputs(out) if p.startswith(OLD)} == before
    assert not [p for p in out.iterdir() if ".part" in p.name]
    with Store.open(out / DB_NAME) as store:
        assert store.missing() == [f"{OLD}.mp4"]
        assert sorted(v.path for v in store.videos()) == [f"{NEW}.mp4", "keep.mp4"]


def test_a_copy_in_another_folder_does_not_take_the_record_of_an_archive_not_mounted(tmp_path, monkeypatch):
    # a batch pointed at the wrong folder, which holds a copy of one episode, while the archive is not mounted: the
    # copy is that folder's own file, and the archive's files are not marked gone
    from helpers import fake_done_worker, placeholder_archive

    archive = placeholder_archive(tmp_path / "archive", ("ep1.mp4", "ep2.mp4"))
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert run_batch(archive, out).done == 2
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(archive / "ep1.mp4", other / "film.mp4")  # the same content, another modification time
    os.utime(other / "film.mp4", ns=(1, 1))
    shutil.move(archive, tmp_path / "unmounted")
    archive.mkdir()
    summary = run_batch(other, out)
    assert (summary.done, summary.moved) == (1, ())
    with Store.open(out / DB_NAME) as store:
        assert store.missing() == [] and sorted(store.paths()) == ["ep1.mp4", "ep2.mp4", "film.mp4"]


@pytest.mark.parametrize("damage", [b"not json", b"\xff\xfe broken", b"[]"])
def test_a_moved_file_whose_recorded_json_is_damaged_is_analysed(tmp_path, monkeypatch, damage):
    from helpers import fake_done_worker, placeholder_archive

    archive = placeholder_archive(tmp_path / "archive", ("ep1.mp4", "keep.mp4"))
    out = tmp_path / "out"
    monkeypatch.setattr("dramapic.archive.batch.process_file", fake_done_worker)
    assert run_batch(archive, out).done == 2
    (out / "ep1.dramapic.json").write_bytes(damage)
    (archive / "ep1.mp4").rename(archive / "ep9.mp4")
    summary = run_batch(archive, out)
    assert (summary.done, summary.moved) == (1, ())
    assert json.loads((out / "ep9.dramapic.json").read_text(encoding="utf-8"))["source"]["path"] == "ep9.mp4"


def test_a_file_renamed_only_in_case_keeps_its_results_under_the_new_spelling(tmp_path, clips, analysed):
    # ep01.mp4 done, then renamed EP01.mp4 (on Linux two names): carried like any rename, its outputs respelled,
    # the old spelling's outputs gone (a case-insensitive file system lists one entry for both: nothing to remove)
    archive = _archive(tmp_path, clips, {"ep01.mp4": 0})
    out = tmp_path / "out"
    assert run_batch(archive, out).done == 1 and len(analysed) == 1
    (archive / "ep01.mp4").rename(archive / "EP01.mp4")
    summary = run_batch(archive, out)
    assert len(analysed) == 1 and summary.moved == (("ep01.mp4", "EP01.mp4"),)
    names = set(os.listdir(out))
    assert {"EP01.dramapic.json", "EP01.srt", "EP01.rttm"} <= names
    assert not {n for n in names if n.startswith("ep01.")}, names
