"""Far rooms for the evaluations (dramapic/lab/far_rooms.py): a copy of a folder of timelines whose audio is heard
by one distant microphone (a seeded room, RT60 0.5-1.0 s, the tail 0 to +6 dB against the direct sound, a hiss),
with the labels, RTTM and recipe as built; made once under --work and scored by ``dramapic eval --rooms far``."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, SAMPLE, all_silence_result, fake_cross_corpus

from dramapic import media
from dramapic.errors import InputError
from dramapic.lab import far_rooms

RATE = 16000
SECONDS = 12


def _timeline(folder, audio, name="devmix_01", start=0.0):
    """``SECONDS`` of the sample from ``start`` as one labelled timeline (its labels, an RTTM, a recipe)."""
    folder.mkdir(parents=True, exist_ok=True)
    a = round(start * RATE)
    media.encode_opus(audio[a:a + SECONDS * RATE], folder / f"{name}.opus", bitrate="64k")
    with open(SAMPLE.with_name("drama_sample.labels.csv"), newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if float(r["start"]) < SECONDS]
    rows[-1]["end"] = f"{SECONDS:.3f}"
    with open(folder / f"{name}.labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["start", "end", "label", "gender", "speaker"])
        writer.writeheader()
        writer.writerows(rows)
    (folder / f"{name}.rttm").write_text("".join(
        f"SPEAKER {name} 1 {float(r['start']):.3f} {float(r['end']) - float(r['start']):.3f} <NA> <NA> "
        f"{r['speaker']} <NA> <NA>\n" for r in rows if r["label"] == "voice"))
    (folder / f"{name}.json").write_text(json.dumps({"name": name, "speakers": [{"id": "libri_2910",
                                                                                  "source": "cv"}]}))
    return folder


def _decoded(path):
    return media.decode_audio(media.probe(path))


@pytest.fixture(scope="module")
def sample_audio():
    return media.decode_audio(media.probe(SAMPLE))


def test_a_click_is_heard_with_a_room_as_loud_as_the_voice_or_louder():
    x = np.zeros(3 * RATE, np.float32)
    x[RATE] = 0.5
    out, room = far_rooms.far_room(x, name="devmix_01")
    assert out.shape == x.shape and out.dtype == np.float32
    assert np.max(np.abs(out)) == pytest.approx(0.5, rel=1e-6)            # the level kept, by its peak
    assert 0.5 <= room.rt60_s <= 1.0 and 0.0 <= room.tail_db <= 6.0
    hiss = float(np.mean(out[:RATE].astype(np.float64) ** 2))               # before the click: the hiss alone
    assert 10 * np.log10(hiss) == pytest.approx(far_rooms.HISS_DBFS, abs=1.0)
    direct = float(out[RATE]) ** 2
    tail = float(np.sum(out[RATE + 1:2 * RATE + RATE // 2].astype(np.float64) ** 2)) - hiss * (1.5 * RATE - 1)
    assert 10 * np.log10(tail / direct) == pytest.approx(room.tail_db, abs=0.5)
    assert np.array_equal(far_rooms.far_room(x, name="devmix_01")[0], out)      # seeded by the name
    other, other_room = far_rooms.far_room(x, name="devmix_02")
    assert other_room != room and not np.array_equal(other, out)
    with pytest.raises(ValueError, match="mono"):
        far_rooms.far_room(np.zeros((2, 100), np.float32), name="x")


def test_the_copy_keeps_the_truth_and_puts_the_audio_in_a_far_room(tmp_path, sample_audio, chosen_build):
    source = _timeline(tmp_path / "mixes", sample_audio)
    out = far_rooms.far_room_copy(source, out=tmp_path / "work" / "far")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["devmix_01.json", "devmix_01.labels.csv", "devmix_01.opus", "devmix_01.rttm", far_rooms.MARKER,
         far_rooms.ROOMS_FILE])
    for ext in (".labels.csv", ".rttm", ".json"):  # the same labels, RTTM and recipe
        assert (out / f"devmix_01{ext}").read_bytes() == (source / f"devmix_01{ext}").read_bytes()
    near, far = _decoded(source / "devmix_01.opus"), _decoded(out / "devmix_01.opus")
    assert far.shape == near.shape                                     # the same length ...
    assert np.max(np.abs(far)) == pytest.approx(np.max(np.abs(near)), rel=0.1)   # ... and level
    assert np.corrcoef(far, near)[0, 1] < 0.9                          # ... but not the same audio
    # the room's tail runs into the silence after the first line (3.82-4.37 s in the labels): louder there now
    gap = slice(round(3.9 * RATE), round(4.3 * RATE))
    assert np.sqrt(np.mean(far[gap] ** 2)) > 2 * np.sqrt(np.mean(near[gap] ** 2))
    with open(out / far_rooms.ROOMS_FILE, newline="") as handle:
        (room,) = list(csv.DictReader(handle))
    assert room["name"] == "devmix_01" and 0.5 <= float(room["rt60_s"]) <= 1.0
    assert 0.0 <= float(room["tail_db"]) <= 6.0
    assert json.loads((out / far_rooms.MARKER).read_text())["encoder"] == media.opus_encoder()
    assert [p.name for p in out.parent.iterdir()] == ["far"]           # no staging folder left


def test_a_timelines_room_is_its_own_whatever_else_is_built(tmp_path, sample_audio, chosen_build):
    both = _timeline(tmp_path / "both", sample_audio)
    _timeline(both, sample_audio, name="devmix_02", start=20.0)
    alone = _timeline(tmp_path / "alone", sample_audio)
    one = far_rooms.far_room_copy(both, out=tmp_path / "work" / "one")
    two = far_rooms.far_room_copy(alone, out=tmp_path / "work" / "two")
    again = far_rooms.far_room_copy(both, out=tmp_path / "work" / "again")
    assert (one / "devmix_01.opus").read_bytes() == (two / "devmix_01.opus").read_bytes()
    assert (one / "devmix_02.opus").read_bytes() == (again / "devmix_02.opus").read_bytes()
    with open(one / far_rooms.ROOMS_FILE, newline="") as handle:
        rooms = {r["name"]: r for r in csv.DictReader(handle)}
    assert rooms["devmix_01"]["rt60_s"] != rooms["devmix_02"]["rt60_s"]   # one room per timeline


def test_the_copy_is_reused_until_its_source_or_its_files_change(tmp_path, sample_audio, monkeypatch):
    source = _timeline(tmp_path / "mixes", sample_audio)
    out = tmp_path / "work" / "far"
    far_rooms.far_room_copy(source, out=out)
    whole = {p.name: p.read_bytes() for p in out.iterdir()}
    written = []
    real = media.encode_opus
    monkeypatch.setattr(media, "encode_opus", lambda *a, **k: written.append(a[1].name) or real(*a, **k))
    far_rooms.far_room_copy(source, out=out)
    assert written == []                                               # reused
    (out / "devmix_01.opus").write_bytes(whole["devmix_01.opus"][:500])
    far_rooms.far_room_copy(source, out=out)                           # cut short: made again
    assert written == ["devmix_01.opus"] and (out / "devmix_01.opus").read_bytes() == whole["devmix_01.opus"]
    labels = (source / "devmix_01.labels.csv").read_text().replace("libri_2910", "libri_0001")
    (source / "devmix_01.labels.csv").write_text(labels)
    far_rooms.far_room_copy(source, out=out)                           # the source changed: made again
    assert len(written) == 2 and "libri_0001" in (out / "devmix_01.labels.csv").read_text()
    monkeypatch.setattr(media, "opus_encoder", lambda: "ffmpeg 0.0-another-build")
    far_rooms.far_room_copy(source, out=out)                           # another ffmpeg: made again
    assert len(written) == 3
    assert [p.name for p in out.parent.iterdir()] == ["far"]


def test_a_folder_without_timelines_or_with_a_file_missing_is_one_typed_error(tmp_path, sample_audio):
    source = _timeline(tmp_path / "mixes", sample_audio)
    with pytest.raises(InputError, match="no \\*.labels.csv"):
        far_rooms.far_room_copy(tmp_path, out=tmp_path / "o")
    (source / "devmix_01.rttm").unlink()
    with pytest.raises(InputError, match="not found"):
        far_rooms.far_room_copy(source, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_eval_mixes_scores_the_far_copy_and_says_so(tmp_path, sample_audio, monkeypatch, capsys):
    from dramapic import cli
    from dramapic.lab import evaluate

    source = _timeline(tmp_path / "mixes", sample_audio)
    asked = []
    real = evaluate.evaluate_mixes

    def scored(folder, **kw):
        asked.append(folder)
        return real(folder, analyze_fn=all_silence_result, progress=kw.get("progress"), limit=kw.get("limit"))

    monkeypatch.setattr(evaluate, "evaluate_mixes", scored)
    out = tmp_path / "eval.json"
    assert cli.main(["eval", "--mixes", str(source), "--rooms", "far", "--work", str(tmp_path / "work"),
                     "--json", str(out), "--no-progress"]) == 0
    assert (tmp_path / "work" / "far-rooms") in asked[0].parents
    assert (asked[0] / "devmix_01.opus").read_bytes() != (source / "devmix_01.opus").read_bytes()
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith("Rooms: far - ")                       # before the table
    assert json.loads(out.read_text())["rooms"] == "far"
    assert cli.main(["eval", "--mixes", str(source), "--json", str(out), "--no-progress"]) == 0
    assert asked[1] == source and "Rooms:" not in capsys.readouterr().out  # the usual run, as before
    assert json.loads(out.read_text())["rooms"] == "near"


def test_the_far_copy_comes_first_then_the_speech_reference_then_the_scenes(tmp_path, monkeypatch):
    """The room is the recording's, so the speech reference relabels the far copy (it links its audio) and the
    scenes are cut from it (the room's tail from before a cut is in the scene, as in a scene cut from a film)."""
    from dramapic import cli
    from dramapic.lab import eval_command

    order = []
    for step in ("_far_rooms", "_speech_reference", "_scenes"):
        monkeypatch.setattr(eval_command, step, lambda args, folder, progress, step=step: order.append(
            (step, folder.name)) or folder.with_name(folder.name + step))
    seen = []
    monkeypatch.setattr("dramapic.lab.evaluate.evaluate_mixes", lambda folder, **kw: seen.append(folder) or type(
        "Report", (), {"format_table": lambda self: "table", "to_dict": lambda self: {}})())
    monkeypatch.setattr("dramapic.lab.evaluate.mix_files", lambda *a, **k: [])
    mixes = tmp_path / "m"
    mixes.mkdir()
    assert cli.main(["eval", "--mixes", str(mixes), "--rooms", "far", "--reference", "speech", "--data", "d",
                     "--scenes", "20", "--work", str(tmp_path / "w"), "--no-progress"]) == 0
    assert order == [("_far_rooms", "m"), ("_speech_reference", "m_far_rooms"),
                     ("_scenes", "m_far_rooms_speech_reference")]
    assert seen == [tmp_path / "m_far_rooms_speech_reference_scenes"]


def test_cross_corpus_scores_every_stage_on_far_scenes(tmp_path, sample_audio, monkeypatch, capsys):
    """``eval --cross-corpus --rooms far --scenes 20``: the voice protocol, its dev mixes and stage 1's member check
    all read scenes cut from the far-room copies under --work; the output and the JSON say which rooms."""
    from dramapic import cli

    mixes = _timeline(tmp_path / "mixes", sample_audio)
    data, tree, asked = fake_cross_corpus(monkeypatch, tmp_path, mixes, folder="cv")
    out = tmp_path / "xc.json"
    assert cli.main(["eval", "--cross-corpus", "--data", str(data), "--timelines", str(tree), "--mixes", str(mixes),
                     "--work", str(tmp_path / "work"), "--rooms", "far", "--scenes", "10", "--json", str(out),
                     "--no-progress"]) == 0
    for where in (asked["timelines"], asked["dev_mixes"], asked["members"]["timelines"]):
        assert tmp_path / "work" / "scenes" in where.parents
        marker = json.loads((next(p for p in where.rglob("scenes.json"))).read_text())
        assert tmp_path / "work" / "far-rooms" in Path(marker["source"]).parents  # cut from the far copy
    said = capsys.readouterr().out
    assert "Rooms: far - " in said and said.index("Rooms: far") < said.index("members")
    assert json.loads(out.read_text())["rooms"] == "far"


def test_rooms_are_refused_where_nothing_reads_them(tmp_path):
    """The song check scores stage 1 on its own clips: ``--rooms far`` there did nothing; a room that is not one
    is argparse's usage error."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for bad, said in ((["--song-check", "--data", str(tmp_path), "--rooms", "far"],
                       "dramapic: error: --rooms applies to --mixes and --cross-corpus, not to --song-check"),
                      (["--song-check", "--data", str(tmp_path), "--rooms", "far", "--scenes", "20"],
                       "dramapic: error: --scenes, --rooms apply to --mixes and --cross-corpus, not to --song-check"),
                      (["--mixes", str(tmp_path), "--rooms", "close"], "invalid choice: 'close'")):
        done = subprocess.run([sys.executable, "-m", "dramapic", "eval", *bad, "--no-progress"], capture_output=True,
                              text=True, env=env, timeout=300, check=False)
        err = done.stderr.strip().splitlines()
        assert done.returncode == 2 and said in err[-1] and "Traceback" not in done.stderr, done.stderr
        assert len(err) == 1 or said.startswith("invalid choice")


@pytest.mark.parametrize("copy", [["--rooms", "far"], ["--scenes", "10"]])
def test_a_timelines_folder_that_is_no_tree_is_named_not_its_copy(tmp_path, sample_audio, monkeypatch, capsys, copy):
    """``--cross-corpus --timelines FLAT`` with a copy asked for: the refusal named the copy under --work ("timelines
    folder not found: W/scenes/..."; "W/far-rooms/... holds timelines itself" once ``--mixes FLAT --rooms far`` had
    made a copy of that folder there)."""
    from dramapic import cli
    from dramapic.lab import crosscorpus

    flat = _timeline(tmp_path / "flat", sample_audio)
    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.csv").write_text("path,label\n")
    monkeypatch.setattr(crosscorpus, "run_voice_protocol", lambda **kw: pytest.fail("scored a folder that is no tree"))
    # the tree is checked before ffmpeg is asked for its version: one that cannot run did not hide the real error
    monkeypatch.setattr(media, "opus_encoder", lambda: pytest.fail("asked ffmpeg before checking the tree"))
    assert cli.main(["eval", "--cross-corpus", "--data", str(data), "--timelines", str(flat), *copy, "--work",
                     str(tmp_path / "work"), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        (f"dramapic: error: {flat} holds timelines itself, not one sub-folder of them per source: not a timeline "
         "tree (dev mixes go to --mixes)")]
