"""The speech-trimmed reference (``dramapic.lab.speech_reference``): on a one-timeline folder made in tmp_path from
real speech of the bundled sample, a clip's leading noise bursts under a music bed become song and a reader's long
pause becomes silence, while speech stays voice with its speaker; the RTTM agrees with the labels; the copy is
reused until its source changes; bad recipes fail with one typed error; the CLI asks for --data. With the shared
data, a real dev mix's 2.5 s pause inside one utterance stops being voice."""

from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from helpers import REPO, SAMPLE

from dramapic import media
from dramapic.errors import InputError
from dramapic.lab import speech_reference as sr
from dramapic.lab.timeline_mixer import speech_span

RATE = 16000


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "dramapic", *args, "--no-progress"], capture_output=True, text=True,
                          env=env, timeout=600, check=False)


def _labels(path):
    with open(path, newline="") as handle:
        return [(float(r["start"]), float(r["end"]), r["label"], r["gender"], r["speaker"])
                for r in csv.DictReader(handle)]


def _voice_seconds(rows):
    return sum(b - a for a, b, label, _, _ in rows if label == "voice")


def _label_at(rows, t):
    return next(r for r in rows if r[0] <= t < r[1])


@pytest.fixture(scope="module")
def sample_audio():
    return media.decode_audio(media.probe(SAMPLE))


def _bursts(rng, seconds):
    """Noise bursts at about -30 dBFS (clicks and room noise above the builder's energy rule), no speech."""
    x = np.zeros(int(seconds * RATE), np.float32)
    for start in np.arange(0.0, seconds - 0.1, 0.25):
        a = int(start * RATE)
        x[a:a + int(0.1 * RATE)] = rng.normal(scale=0.03, size=int(0.1 * RATE))
    return x


def _make(tmp_path, audio, *, offset_shift=0.0):
    """data/ with two clips and mixes/ with one timeline whose recipe places them (see the module docstring)."""
    rng = np.random.default_rng(3)
    data, mixes = tmp_path / "data", tmp_path / "mixes"
    (data / "extra/clips/cv/spk_f").mkdir(parents=True)
    (data / "clips/librispeech/spk_m").mkdir(parents=True)
    mixes.mkdir()
    # a crowd-sourced clip: 0.8 s of bursts, then 2.5 s of the sample's woman, then quiet
    clip_a = np.concatenate([_bursts(rng, 0.8), audio[int(1.25 * RATE):int(3.75 * RATE)],
                             np.zeros(int(0.3 * RATE), np.float32)])
    sf.write(data / "extra/clips/cv/spk_f/a.wav", clip_a, RATE)
    a0, a1 = speech_span(clip_a)
    assert a0 < int(0.3 * RATE), "the energy rule must keep the bursts, as it does for real Common Voice clips"
    # a reader: 1.2 s of the sample's man, a 1.0 s pause, 1.3 s more
    clip_b = np.concatenate([audio[int(4.40 * RATE):int(5.60 * RATE)], np.zeros(RATE, np.float32),
                             audio[int(5.60 * RATE):int(6.90 * RATE)]])
    sf.write(data / "clips/librispeech/spk_m/b.wav", clip_b, RATE)
    dur_a, dur_b = round((a1 - a0) / RATE, 2), round(len(clip_b) / RATE, 2)
    start_a, start_b = 1.0, 1.0 + dur_a + 1.0
    end = start_b + dur_b + 1.0
    recipe = {"name": "devmix_01", "items": [
        {"role": "bed_music", "start_s": 0.5, "dur_s": dur_a + 1.0},
        {"role": "utterance", "start_s": start_a, "dur_s": dur_a, "speaker": "spk_f", "gender": "female",
         "clips": [f"extra/clips/cv/spk_f/a.wav@{a0 / RATE + offset_shift:.2f}"]},
        {"role": "utterance", "start_s": start_b, "dur_s": dur_b, "speaker": "spk_m", "gender": "male",
         "clips": [f"clips/librispeech/spk_m/b.wav@0.00-{dur_b:.2f}"]}]}
    (mixes / "devmix_01.json").write_text(json.dumps(recipe))
    rows = [(0.0, 0.5, "silence", "", ""), (0.5, start_a, "song", "", ""),
            (start_a, start_a + dur_a, "voice", "female", "spk_f"), (start_a + dur_a, start_b - 0.5, "song", "", ""),
            (start_b - 0.5, start_b, "silence", "", ""), (start_b, start_b + dur_b, "voice", "male", "spk_m"),
            (start_b + dur_b, end, "silence", "", "")]
    with open(mixes / "devmix_01.labels.csv", "w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["start", "end", "label", "gender", "speaker"])
        w.writerows([f"{a:.3f}", f"{b:.3f}", lab, g, s] for a, b, lab, g, s in rows)
    (mixes / "devmix_01.opus").write_bytes(b"audio stand-in: never decoded here")
    return data, mixes, start_a, dur_a, start_b


def test_clip_edges_and_long_pauses_stop_being_voice(tmp_path, sample_audio):
    data, mixes, start_a, _, start_b = _make(tmp_path, sample_audio)
    out = sr.speech_reference(mixes, data=data, out=tmp_path / "ref")
    before, after = _labels(mixes / "devmix_01.labels.csv"), _labels(out / "devmix_01.labels.csv")
    # a partition of the same file
    assert after[0][0] == 0.0 and after[-1][1] == before[-1][1]
    assert all(abs(x[1] - y[0]) < 1e-9 for x, y in itertools.pairwise(after))
    # the bursts at the clip's start lie under the music bed: song now; the woman's speech stays hers
    assert _label_at(after, start_a + 0.3)[2] == "song"
    assert _label_at(after, start_a + 1.8)[2:] == ("voice", "female", "spk_f")
    # the reader's 1.0 s pause (no bed) is silence; his words on both sides stay his
    assert _label_at(after, start_b + 1.7)[2] == "silence"
    assert _label_at(after, start_b + 0.6)[2:] == ("voice", "male", "spk_m")
    assert _label_at(after, start_b + 2.8)[2:] == ("voice", "male", "spk_m")
    # everything that was not voice is unchanged
    for a, b, label, _, _ in before:
        if label != "voice":
            assert _label_at(after, (a + b) / 2)[2] == label
    assert _voice_seconds(after) < _voice_seconds(before) - 1.0
    # the RTTM holds the same voice: one turn for the woman, two for the man
    turns = [line.split() for line in (out / "devmix_01.rttm").read_text().splitlines()]
    assert [t[7] for t in turns] == ["spk_f", "spk_m", "spk_m"]
    assert abs(sum(float(t[4]) for t in turns) - _voice_seconds(after)) < 0.02
    # the audio and the recipe are the originals'
    assert (out / "devmix_01.opus").read_bytes() == (mixes / "devmix_01.opus").read_bytes()
    assert json.loads((out / "devmix_01.json").read_text()) == json.loads((mixes / "devmix_01.json").read_text())


def test_the_copy_is_reused_until_its_source_changes(tmp_path, sample_audio, monkeypatch):
    data, mixes, *_ = _make(tmp_path, sample_audio)
    out = sr.speech_reference(mixes, data=data, out=tmp_path / "ref")
    first = (out / "devmix_01.labels.csv").read_text()

    def no_work(*args, **kwargs):
        raise AssertionError("rebuilt although nothing changed")

    with monkeypatch.context() as m:
        m.setattr(sr, "trimmed_labels", no_work)
        assert sr.speech_reference(mixes, data=data, out=tmp_path / "ref") == out
    # the source's labels change: the copy is made again, whole, and no staging folder is left
    labels = mixes / "devmix_01.labels.csv"
    labels.write_text(labels.read_text().replace("silence", "noise", 1))
    sr.speech_reference(mixes, data=data, out=tmp_path / "ref")
    assert (out / "devmix_01.labels.csv").read_text() != first
    assert _labels(out / "devmix_01.labels.csv")[0][2] == "noise"
    assert not list(tmp_path.glob(".staging-*"))


def test_a_damaged_copy_is_made_again_and_an_older_marker_still_reused(tmp_path, sample_audio, monkeypatch, caplog):
    """A copy's labels cut short between two rows read as a shorter, valid reference: every run that reused the
    copy scored against it without a word. The marker now lists the copy's files; one changed is made again."""
    data, mixes, *_ = _make(tmp_path, sample_audio)
    out = sr.speech_reference(mixes, data=data, out=tmp_path / "ref")
    copied = out / "devmix_01.labels.csv"
    whole = copied.read_text()
    copied.write_text("".join(whole.splitlines(keepends=True)[:3]))     # two rows of seven: still a reference
    with caplog.at_level("WARNING", logger="dramapic.lab.kept_copies"):
        sr.speech_reference(mixes, data=data, out=tmp_path / "ref")
    assert copied.read_text() == whole
    assert any("devmix_01.labels.csv" in r.getMessage() and "changed" in r.getMessage() for r in caplog.records)
    # a copy made before the marker listed its files is reused as it was then, not made again
    from dramapic.lab.kept_copies import OUTPUTS

    marker = out / sr.MARKER
    older = {k: v for k, v in json.loads(marker.read_text()).items() if k != OUTPUTS}
    marker.write_text(json.dumps(older))
    with monkeypatch.context() as m:
        m.setattr(sr, "trimmed_labels", lambda *a, **k: pytest.fail("made again although nothing changed"))
        assert sr.speech_reference(mixes, data=data, out=tmp_path / "ref") == out


def test_bad_recipes_fail_with_one_typed_error(tmp_path, sample_audio):
    data, mixes, *_ = _make(tmp_path, sample_audio, offset_shift=0.2)
    with pytest.raises(InputError, match="not where the recipe says"):
        sr.speech_reference(mixes, data=data, out=tmp_path / "ref")
    assert not (tmp_path / "ref").exists() and not list(tmp_path.glob(".staging-*"))
    shutil.rmtree(data / "extra")
    with pytest.raises(InputError, match="not found"):
        sr.speech_reference(mixes, data=data, out=tmp_path / "ref")
    with pytest.raises(InputError, match="no \\*.labels.csv"):
        sr.speech_reference(tmp_path / "data", data=data, out=tmp_path / "ref2")


def test_clean_speech_frames_rejects_bad_audio():
    with pytest.raises(ValueError, match="mono"):
        sr.clean_speech_frames(np.zeros((2, 16000), np.float32))
    with pytest.raises(ValueError, match="sample_rate"):
        sr.clean_speech_frames(np.zeros(16000, np.float32), sample_rate=8000)
    assert sr.clean_speech_frames(np.zeros(0, np.float32)).shape == (0,)
    assert not sr.clean_speech_frames(np.zeros(16000, np.float32)).any()


def test_cli_needs_the_data_for_a_speech_reference(tmp_path, sample_audio):
    _, mixes, *_ = _make(tmp_path, sample_audio)
    done = run_cli("eval", "--mixes", str(mixes), "--reference", "speech", "--work", str(tmp_path / "w"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "dramapic: error: --reference speech needs --data, the shared data folder the timelines' clips come from"]
    done = run_cli("eval", "--song-check", "--data", str(tmp_path), "--reference", "speech")
    assert done.returncode == 2 and "not to --song-check" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.shared_data
def test_a_real_dev_mix_loses_its_long_pause(shared_data, tmp_path):
    mixes = tmp_path / "mixes"
    mixes.mkdir()
    for ext in (".labels.csv", ".json", ".opus", ".rttm"):
        shutil.copyfile(shared_data / "dev_mixes" / f"devmix_17{ext}", mixes / f"devmix_17{ext}")
    out = sr.speech_reference(mixes, data=shared_data, out=tmp_path / "ref")
    before, after = _labels(mixes / "devmix_17.labels.csv"), _labels(out / "devmix_17.labels.csv")
    # libri_8630 reads on across a 2.5 s breath at 31.6-34.1 s: voice in the recipe's labels, not in speech's
    assert _label_at(before, 32.8)[2] == "voice"
    assert _label_at(after, 32.8)[2] != "voice"
    assert 0.75 * _voice_seconds(before) < _voice_seconds(after) < _voice_seconds(before)


def test_a_timeline_tree_is_copied_folder_by_folder_and_read_as_one(tmp_path, sample_audio):
    from dramapic.lab.crosscorpus import find_timelines

    data, mixes, *_ = _make(tmp_path, sample_audio)
    tree = tmp_path / "tree"
    tree.mkdir()
    mixes.rename(tree / "cv")
    out = sr.speech_reference_tree(tree, data=data, out=tmp_path / "ref-tree")
    found = find_timelines(out)
    assert [(t.folder, t.name) for t in found] == [("cv", "devmix_01")]
    assert _labels(found[0].labels_csv) == _labels(tmp_path / "ref-tree" / "cv" / "devmix_01.labels.csv")
    assert _labels(found[0].labels_csv) != _labels(tree / "cv" / "devmix_01.labels.csv")


def test_cross_corpus_scores_every_stage_on_the_speech_copies(tmp_path, sample_audio, monkeypatch, capsys):
    """``eval --cross-corpus --reference speech``: the voice protocol, its dev mixes and stage 1's member check all
    read the trimmed copies under --work (same audio, trimmed labels); the output and the JSON say so."""
    from dramapic import cli
    from dramapic.lab import crosscorpus, stage1_crosscorpus
    from dramapic.lab.crosscorpus import find_timelines, held_out
    from dramapic.lab.evaluate import score_result
    from dramapic.lab.reference import load_reference

    data, mixes, *_ = _make(tmp_path, sample_audio)
    tree = tmp_path / "tree"
    shutil.copytree(mixes, tree / "cv")
    (data / "manifest.csv").write_text("path,label\n")
    asked: dict = {}

    def protocol(**kw):
        asked.update(kw)
        found = find_timelines(kw["timelines"], dev_mixes=kw["dev_mixes"])
        result = {"schema": "dramapic/1", "source": {"duration": 2.0}, "segments": []}
        return [(t, held_out(t), score_result(result, load_reference(t.labels_csv))) for t in found]

    monkeypatch.setattr(crosscorpus, "run_voice_protocol", protocol)
    monkeypatch.setattr(stage1_crosscorpus, "stage1_member_check", lambda **kw: asked.update(members=kw) or type(
        "Check", (), {"format_table": lambda self: "members", "to_dict": lambda self: {}})())
    out = tmp_path / "xc.json"
    assert cli.main(["eval", "--cross-corpus", "--data", str(data), "--timelines", str(tree), "--mixes", str(mixes),
                     "--work", str(tmp_path / "work"), "--reference", "speech", "--json", str(out),
                     "--no-progress"]) == 0
    copies = tmp_path / "work" / "speech-reference"
    for where in (asked["timelines"], asked["dev_mixes"], asked["members"]["timelines"]):
        assert copies in where.parents
    assert asked["members"]["timelines"] == asked["timelines"]
    trimmed = asked["timelines"] / "cv" / "devmix_01.labels.csv"
    assert _voice_seconds(_labels(trimmed)) < _voice_seconds(_labels(tree / "cv" / "devmix_01.labels.csv"))
    assert "Reference: speech" in capsys.readouterr().out
    assert json.loads(out.read_text())["reference"] == "speech"


def test_a_malformed_recipe_is_one_typed_error(tmp_path, sample_audio):
    data, mixes, *_ = _make(tmp_path, sample_audio)
    recipe = json.loads((mixes / "devmix_01.json").read_text())
    recipe["items"][1]["clips"] = ["extra/clips/cv/spk_f/a.wav@soon"]
    (mixes / "devmix_01.json").write_text(json.dumps(recipe))
    with pytest.raises(InputError, match="devmix_01"):
        sr.speech_reference(mixes, data=data, out=tmp_path / "ref")
    (mixes / "devmix_01.json").write_text("[]")
    with pytest.raises(InputError, match="no recipe items"):
        sr.speech_reference(mixes, data=data, out=tmp_path / "ref")
