"""Short scenes for the evaluations (dramapic/lab/scenes.py): excerpts of labelled timelines with their labels,
RTTM and audio cut alike, built once under --work, and read by ``dramapic eval --scenes``."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, SAMPLE, all_silence_result, fake_cross_corpus

from dramapic import media
from dramapic.errors import InputError
from dramapic.lab import scenes
from dramapic.lab.reference import load_reference

RATE = 16000


def _timeline(folder, audio, name="devmix_01"):
    """The sample's first 40 s as one labelled timeline (its own labels and a matching RTTM)."""
    folder.mkdir(parents=True, exist_ok=True)
    media.encode_opus(audio[: 40 * RATE], folder / f"{name}.opus", bitrate="64k")
    with open(SAMPLE.with_name("drama_sample.labels.csv"), newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if float(r["start"]) < 40.0]
    rows[-1]["end"] = "40.000"
    with open(folder / f"{name}.labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["start", "end", "label", "gender", "speaker"])
        writer.writeheader()
        writer.writerows(rows)
    (folder / f"{name}.rttm").write_text("".join(
        f"SPEAKER {name} 1 {float(r['start']):.3f} {float(r['end']) - float(r['start']):.3f} <NA> <NA> "
        f"{r['speaker']} <NA> <NA>\n" for r in rows if r["label"] == "voice"))
    (folder / f"{name}.json").write_text(json.dumps({"name": name, "sources": ["librispeech"], "items": []}))
    return folder


@pytest.fixture(scope="module")
def sample_audio():
    return media.decode_audio(media.probe(SAMPLE))


def test_an_excerpt_has_its_labels_rttm_and_audio_cut_alike(tmp_path, sample_audio):
    source = _timeline(tmp_path / "mixes", sample_audio)
    out = scenes.scene_excerpts(source, out=tmp_path / "work" / "scenes", lengths=(20.0,), positions=(0.5,))
    # 40 s, 20 s excerpt half-way through the room left: 10.0 .. 30.0 s of the timeline
    assert sorted(p.name for p in out.iterdir()) == ["devmix_01_20s50.json", "devmix_01_20s50.labels.csv",
                                                    "devmix_01_20s50.opus", "devmix_01_20s50.rttm", scenes.MARKER]
    reference = load_reference(out / "devmix_01_20s50.labels.csv")  # a gap-free partition with its RTTM
    assert reference.duration == pytest.approx(20.0)
    rows = [(r.start, r.end, r.label, r.speakers) for r in reference.rows]
    assert rows[0] == (0.0, pytest.approx(0.31), "voice", ("libri_2910",))  # 7.55-10.31 s, cut at 10.0
    assert rows[-1] == (pytest.approx(19.69), 20.0, "song", ())  # the song from 29.69 s, cut at 30.0
    turns = sorted((round(s.start, 3), round(s.end, 3), label)
                   for s, _, label in reference.annotation.itertracks(yield_label=True))
    assert turns[0] == (0.0, 0.31, "libri_2910") and turns[-1] == (17.85, 19.69, "libri_3240")
    audio = media.decode_audio(media.probe(out / "devmix_01_20s50.opus"))
    assert len(audio) == pytest.approx(20 * RATE, abs=RATE // 50)
    original = sample_audio[10 * RATE: 30 * RATE]
    n = min(len(audio), len(original))
    assert np.corrcoef(audio[:n], original[:n])[0, 1] > 0.9  # the same stretch of the sample
    assert (out / "devmix_01_20s50.json").resolve() == (source / "devmix_01.json").resolve()


def test_the_copy_is_reused_until_its_source_or_lengths_change(tmp_path, sample_audio, monkeypatch):
    source = _timeline(tmp_path / "mixes", sample_audio)
    out = tmp_path / "work" / "scenes"
    scenes.scene_excerpts(source, out=out, lengths=(20.0, 30.0))
    assert len(list(out.glob("*.labels.csv"))) == 4  # two lengths x two positions
    written = []
    real = media.encode_opus
    monkeypatch.setattr(media, "encode_opus", lambda *a, **k: written.append(a[1]) or real(*a, **k))
    scenes.scene_excerpts(source, out=out, lengths=(20.0, 30.0))
    assert written == []  # reused
    rows = (source / "devmix_01.labels.csv").read_text().replace("libri_2910", "libri_0001")
    (source / "devmix_01.labels.csv").write_text(rows)
    scenes.scene_excerpts(source, out=out, lengths=(20.0, 30.0))
    assert len(written) == 4 and "libri_0001" in (out / "devmix_01_20s20.labels.csv").read_text()
    monkeypatch.setattr(media, "opus_encoder", lambda: "ffmpeg 0.0-another-build")
    scenes.scene_excerpts(source, out=out, lengths=(20.0, 30.0))  # another ffmpeg: made again
    assert len(written) == 8
    scenes.scene_excerpts(source, out=out, lengths=(50.0,))  # longer than the timeline: no excerpt of it
    assert list(out.glob("*.labels.csv")) == []
    assert [p.name for p in out.parent.iterdir()] == ["scenes"]  # no staging folder left


def test_an_excerpt_removed_or_cut_short_is_made_again(tmp_path, sample_audio, monkeypatch):
    """The scene copy was reused whatever became of its files: an excerpt removed from it was no longer scored,
    one cut short was scored as it was."""
    source = _timeline(tmp_path / "mixes", sample_audio)
    out = tmp_path / "work" / "scenes"
    scenes.scene_excerpts(source, out=out, lengths=(20.0,), positions=(0.5,))
    whole = {p.name: p.read_bytes() for p in out.iterdir() if p.name != scenes.MARKER}
    written = []
    real = media.encode_opus
    monkeypatch.setattr(media, "encode_opus", lambda *a, **k: written.append(a[1].name) or real(*a, **k))
    for damage in (lambda: (out / "devmix_01_20s50.labels.csv").unlink(),
                   lambda: (out / "devmix_01_20s50.opus").write_bytes(whole["devmix_01_20s50.opus"][:500])):
        damage()
        scenes.scene_excerpts(source, out=out, lengths=(20.0,), positions=(0.5,))
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != scenes.MARKER}.keys() == whole.keys()
        assert (out / "devmix_01_20s50.labels.csv").read_bytes() == whole["devmix_01_20s50.labels.csv"]
    assert written == ["devmix_01_20s50.opus"] * 2
    scenes.scene_excerpts(source, out=out, lengths=(20.0,), positions=(0.5,))
    assert len(written) == 2                                                     # whole again: reused


def test_bad_requests_are_one_typed_error(tmp_path, sample_audio):
    source = _timeline(tmp_path / "mixes", sample_audio)
    with pytest.raises(InputError, match="positive"):
        scenes.scene_excerpts(source, out=tmp_path / "o", lengths=(0.0,))
    with pytest.raises(InputError, match="positions"):
        scenes.scene_excerpts(source, out=tmp_path / "o", lengths=(20.0,), positions=(1.5,))
    with pytest.raises(InputError, match="no \\*.labels.csv"):
        scenes.scene_excerpts(tmp_path, out=tmp_path / "o", lengths=(20.0,))
    (source / "devmix_01.rttm").unlink()
    with pytest.raises(InputError, match="not found"):
        scenes.scene_excerpts(source, out=tmp_path / "o", lengths=(20.0,))
    assert not (tmp_path / "o").exists()


def test_the_cli_scores_scenes_of_the_mixes_and_refuses_them_for_the_song_check(tmp_path, sample_audio, monkeypatch,
                                                                                capsys):
    from dramapic import cli
    from dramapic.lab import evaluate

    source = _timeline(tmp_path / "mixes", sample_audio)
    asked = {}
    real = evaluate.evaluate_mixes

    def scored(folder, **kw):
        asked["folder"] = folder
        return real(folder, analyze_fn=all_silence_result, progress=kw.get("progress"), limit=kw.get("limit"))

    monkeypatch.setattr(evaluate, "evaluate_mixes", scored)
    out = tmp_path / "eval.json"
    assert cli.main(["eval", "--mixes", str(source), "--scenes", "20", "--work", str(tmp_path / "work"),
                     "--json", str(out), "--no-progress"]) == 0
    assert (tmp_path / "work" / "scenes") in asked["folder"].parents
    assert sorted(p.name for p in asked["folder"].glob("*.labels.csv")) == [
        "devmix_01_20s20.labels.csv", "devmix_01_20s60.labels.csv"]
    assert "Scenes: excerpts of 20 s" in capsys.readouterr().out
    assert json.loads(out.read_text())["scenes"] == [20.0]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for bad, said in ((["--mixes", str(source), "--scenes", "0"], "scene lengths"),
                      (["--song-check", "--data", str(tmp_path), "--scenes", "20"], "not to --song-check")):
        done = subprocess.run([sys.executable, "-m", "dramapic", "eval", *bad], capture_output=True, text=True,
                              env=env, timeout=300, check=False)
        assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_cross_corpus_scores_every_stage_on_the_scenes(tmp_path, sample_audio, monkeypatch, capsys):
    """``eval --cross-corpus --scenes 20``: the voice protocol, its dev mixes and stage 1's member check all read
    the excerpts under --work, source by source."""
    from dramapic import cli

    mixes = _timeline(tmp_path / "mixes", sample_audio)
    data, tree, asked = fake_cross_corpus(monkeypatch, tmp_path, mixes, folder="librispeech")
    out = tmp_path / "xc.json"
    assert cli.main(["eval", "--cross-corpus", "--data", str(data), "--timelines", str(tree), "--mixes", str(mixes),
                     "--work", str(tmp_path / "work"), "--scenes", "20", "--json", str(out), "--no-progress"]) == 0
    copies = tmp_path / "work" / "scenes"
    for where in (asked["timelines"], asked["dev_mixes"], asked["members"]["timelines"]):
        assert copies in where.parents
    assert sorted(p.name for p in (asked["timelines"] / "librispeech").glob("*.labels.csv")) == [
        "devmix_01_20s20.labels.csv", "devmix_01_20s60.labels.csv"]
    assert "Scenes: excerpts of 20 s" in capsys.readouterr().out
    assert json.loads(out.read_text())["scenes"] == [20.0]


@pytest.mark.parametrize("labels, says", [("start,stop,what\n0,1,voice\n", "not a labels file"),
                                          ("start,end,label\n0,abc,voice\n", "must be seconds"),
                                          ("start,end,label\n", "no rows")])
def test_malformed_labels_are_one_typed_error_before_anything_is_cut(tmp_path, sample_audio, labels, says):
    source = _timeline(tmp_path / "mixes", sample_audio)
    (source / "devmix_01.labels.csv").write_text(labels)
    with pytest.raises(InputError, match=says):   # was KeyError 'end' / ValueError from max() of nothing
        scenes.scene_excerpts(source, out=tmp_path / "o", lengths=(20.0,))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixes"]   # no copy, no staging folder


def test_scenes_longer_than_every_mix_are_one_line_saying_so(tmp_path, sample_audio, capsys):
    from dramapic import cli

    source = _timeline(tmp_path / "mixes", sample_audio)   # 40 s
    # was 'no devmix_*.labels.csv files in WORK/scenes/mixes-...: not a folder of dev mixes', about the work copy
    assert cli.main(["eval", "--mixes", str(source), "--scenes", "50,60", "--work", str(tmp_path / "work"),
                     "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [(f"dramapic: error: no timeline in {source} is 50 s long or longer: no scene of 50, 60 s to cut "
                    "(--scenes)")]
