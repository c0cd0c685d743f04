"""The voice window table on a tiny synthetic data folder: what it holds, per-clip seeding, the cache, and the
trainers and the cross-corpus fit that read it."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf
from helpers import drop_manifest_column

from dramapic.lab import voice_windows
from dramapic.lab.voice_windows import (
    FAR_ROOMS,
    GENDER_ROOMS,
    NEAR_ROOMS,
    SPEAKER_ROOMS,
    RoomRecipe,
    build_window_table,
    build_window_tables,
    train_rows,
)

SR = 16_000
FIELDS = ("path", "label", "gender", "speaker", "source", "split", "duration_s", "language", "subtype")


def _voice(f0: float, seconds: float, seed: int) -> np.ndarray:
    """A vowel-like harmonic tone with a syllable rhythm and a little noise (resemblyzer and YIN both need
    something voiced)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * (1 + 0.03 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t))
    return (0.2 * x / np.abs(x).max() + 0.003 * rng.normal(size=len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rows = []

    def add(name, audio, **fields):
        path = f"clips/{name}.wav"
        (root / "clips").mkdir(exist_ok=True)
        sf.write(root / path, audio, SR)
        rows.append({"path": path, "duration_s": f"{len(audio) / SR:.3f}", "language": "en", "subtype": "",
                     **fields})

    k = 0
    for source in ("alpha", "beta"):
        for s in range(4):
            gender = ("female", "male")[s % 2]
            split = "dev" if s == 3 else "train"
            for c in range(2):
                k += 1
                add(f"{source}{s}_{c}", _voice(210.0 if gender == "female" else 105.0, 2.5 + 0.5 * c, k),
                    label="voice", gender=gender, speaker=f"{source}{s}", source=source, split=split)
    rng = np.random.default_rng(5)
    for split in ("train", "dev"):
        add(f"noise_{split}", (0.05 * rng.normal(size=3 * SR)).astype(np.float32), label="noise", gender="",
            speaker="", source="foley", split=split)
    with open(root / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    (root / "extra").mkdir()
    (root / "extra" / "gender_f0_flags.tsv").write_text("speaker\tstrong\nalpha1\tyes\nbeta0\tno\n",
                                                        encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def table(data):
    return build_window_table(manifest_csv=data / "manifest.csv", seed=0)


def test_table_holds_clean_and_augmented_windows_of_every_voice_clip(table):
    n = len(table["emb"])
    assert table["emb"].shape == (n, 256) and table["emb"].dtype == np.float32
    assert table["pitch"].shape == (n, 6)
    for key in ("clip", "condition", "t0", "t1", "speaker", "source", "gender", "split"):
        assert table[key].shape == (n,), key
    assert len(table["clip_path"]) == 16  # the voice clips only; noise beds are not clips
    assert set(np.unique(table["clip"])) == set(range(16))
    for c in range(16):
        assert set(table["condition"][table["clip"] == c]) == {"clean", "aug"}
    assert np.all(table["t1"] - table["t0"] == pytest.approx(1.5, abs=1e-3))
    assert set(table["split"]) == {"train", "dev"}
    # the per-window columns are the clip's manifest row
    assert np.array_equal(table["speaker"], table["clip_speaker"][table["clip"]])
    flags = dict(zip(table["clip_speaker"], table["clip_f0_flag"]))
    assert flags["alpha1"] == "strong" and flags["beta0"] == "flag" and flags["alpha0"] == ""
    assert all(a for a in table["clip_aug"])  # every clip got its augmented copy described


def test_augmentation_is_seeded_per_clip(data, table):
    """A clip's augmented copy does not depend on which other clips are in the run (smoke runs agree with full
    ones on the clips they share), and another seed gives another copy."""
    small = build_window_table(manifest_csv=data / "manifest.csv", seed=0, max_clips=1, splits=("train",))
    (clip,) = np.unique(small["clip"])
    for condition in ("clean", "aug"):
        mine = (small["clip"] == clip) & (small["condition"] == condition)
        full = (table["clip"] == clip) & (table["condition"] == condition)
        np.testing.assert_allclose(small["emb"][mine], table["emb"][full], atol=1e-5)
    other = build_window_table(manifest_csv=data / "manifest.csv", seed=3, max_clips=1, splits=("train",))
    assert other["clip_aug"].tolist() != small["clip_aug"].tolist() or not np.allclose(
        other["emb"][other["condition"] == "aug"][:1], small["emb"][small["condition"] == "aug"][:1])


def test_cache_is_reused_and_keyed_by_the_settings(data, tmp_path, monkeypatch):
    first = build_window_table(manifest_csv=data / "manifest.csv", seed=0, max_clips=2, cache=tmp_path)
    (stored,) = tmp_path.glob("window-table-*.npz")
    assert not list(tmp_path.glob(".window-table-*"))  # no temporary left behind

    class NoEncoder:
        def __init__(self):
            raise AssertionError("the cached table should have been read, not rebuilt")

    monkeypatch.setattr("dramapic.analysis.embeddings.SpeakerEncoder", NoEncoder)
    again = build_window_table(manifest_csv=data / "manifest.csv", seed=0, max_clips=2, cache=tmp_path)
    assert set(again) == set(first)
    for key in first:
        assert np.array_equal(again[key], first[key]), key
    with pytest.raises(AssertionError, match="should have been read"):  # other settings: another table
        build_window_table(manifest_csv=data / "manifest.csv", seed=0, max_clips=2, copies=2, cache=tmp_path)
    assert list(tmp_path.glob("window-table-*.npz")) == [stored]


#: every augmented copy in a room louder than the voice: the recipes' tables must differ in their copies
LOUD_ROOMS = RoomRecipe(p=1.0, tail_db=(6.0, 6.0))


def test_room_recipes_share_the_clean_windows_and_draw_their_own_copies(data, table):
    """One pass builds one table per room recipe: the clean windows are embedded once and are the same in each,
    the near table is the table of a plain build (the speaker projection's, as before recipes existed), and each
    recipe's table is the one it would get built alone (seeded per clip, not by which recipes were beside it)."""
    near, loud = build_window_tables(manifest_csv=data / "manifest.csv", seed=0, rooms=(NEAR_ROOMS, LOUD_ROOMS))
    for key in table:
        assert np.array_equal(near[key], table[key]), key
    clean_near, clean_loud = near["condition"] == "clean", loud["condition"] == "clean"
    np.testing.assert_array_equal(near["emb"][clean_near], loud["emb"][clean_loud])
    np.testing.assert_array_equal(near["pitch"][clean_near], loud["pitch"][clean_loud])
    assert all(what.endswith("+room") for what in loud["clip_aug"])   # p 1: every copy in the room
    assert not np.array_equal(near["emb"][~clean_near][:4], loud["emb"][~clean_loud][:4])
    alone = build_window_table(manifest_csv=data / "manifest.csv", seed=0, rooms=LOUD_ROOMS)
    for key in alone:
        assert np.array_equal(alone[key], loud[key]), key


def test_each_room_recipe_is_kept_under_its_own_key(data, tmp_path, monkeypatch):
    """A kept near-room table keeps the key it had before recipes were named (no rebuild of a kept table); the far
    recipe gets its own; both are read back without embedding; without copies the rooms make no difference and
    every recipe is the one clean table."""
    kw = {"manifest_csv": data / "manifest.csv", "seed": 0, "max_clips": 2}
    manifests = voice_windows.voice_manifests(data / "manifest.csv")
    plain_key = voice_windows._digest(manifests, seed=0, splits=("train", "dev"), max_clips=2, copies=1)
    near, far = build_window_tables(rooms=(NEAR_ROOMS, FAR_ROOMS), cache=tmp_path, **kw)
    kept = sorted(p.name for p in tmp_path.glob("window-table-*.npz"))
    assert len(kept) == 2 and f"window-table-{plain_key}.npz" in kept
    monkeypatch.setattr(voice_windows, "_embed_tables", lambda *a, **k: pytest.fail("embedded a kept table"))
    again_far, again_near = build_window_tables(rooms=(FAR_ROOMS, NEAR_ROOMS), cache=tmp_path, **kw)
    for key in near:
        assert np.array_equal(again_near[key], near[key]) and np.array_equal(again_far[key], far[key]), key
    monkeypatch.undo()
    clean_near, clean_far = build_window_tables(rooms=(NEAR_ROOMS, FAR_ROOMS), copies=0, **kw)
    assert clean_near is clean_far and set(clean_near["condition"]) == {"clean"}


def test_room_recipes_say_where_the_microphone_was():
    assert "near microphones" in NEAR_ROOMS.describe() and "-14 to -4 dB" in NEAR_ROOMS.describe()
    assert "distant" in FAR_ROOMS.describe() and "+6 dB" in FAR_ROOMS.describe()
    assert (GENDER_ROOMS, SPEAKER_ROOMS) == (FAR_ROOMS, NEAR_ROOMS)
    assert FAR_ROOMS.to_dict() == {"p": 0.4, "tail_db": [-14.0, 6.0]}


@pytest.mark.parametrize("damage", [
    lambda raw, path: path.write_bytes(raw[: len(raw) // 2]),            # cut short: BadZipFile
    lambda raw, path: path.write_bytes(b"not a zip at all"),               # ValueError (pickled data)
    lambda raw, path: path.write_bytes(b""),                               # EOFError
    lambda raw, path: np.savez(path, emb=np.zeros((2, 256), np.float32)),  # a zip, but not a table
], ids=["truncated", "not-a-zip", "empty", "not-a-table"])
def test_a_damaged_cached_table_is_rebuilt_with_a_warning(data, tmp_path, caplog, damage):
    """A kept ``window-table-*.npz`` that cannot be read back was a ``BadZipFile`` / ``ValueError`` traceback, on
    every run until someone found and removed the file; it is a cache: rebuilt (and kept again) instead."""
    first = build_window_table(manifest_csv=data / "manifest.csv", seed=0, max_clips=2, cache=tmp_path)
    (stored,) = tmp_path.glob("window-table-*.npz")
    with open(stored, "rb") as handle:
        damage(handle.read(), stored)
    with caplog.at_level("WARNING", logger="dramapic.lab.voice_windows"):
        again = build_window_table(manifest_csv=data / "manifest.csv", seed=0, max_clips=2, cache=tmp_path)
    assert any("unreadable" in r.getMessage() and stored.name in r.getMessage() for r in caplog.records)
    for key in first:
        assert np.array_equal(again[key], first[key]), key
    # the rebuilt table is kept in its place, whole, and read back next time
    assert list(tmp_path.glob("window-table-*.npz")) == [stored] and not list(tmp_path.glob(".window-table-*"))
    assert set(voice_windows._read_cached(stored)) == set(first)


def test_train_rows_leave_out_dev_and_excluded_sources(table):
    rows = train_rows(table)
    assert set(table["split"][rows]) == {"train"} and set(table["source"][rows]) == {"alpha", "beta"}
    assert set(table["source"][train_rows(table, excluded=frozenset({"beta"}))]) == {"alpha"}


def test_missing_manifest_is_an_input_error(tmp_path):
    from dramapic.errors import InputError

    with pytest.raises(InputError, match="not found"):
        build_window_table(manifest_csv=tmp_path / "manifest.csv")


def test_voice_models_are_fitted_without_the_held_out_source(table):
    from dramapic.lab.crosscorpus import fit_voice_models

    models = fit_voice_models(table, frozenset({"beta"}))
    assert models.gender_model.model_info["sources"] == ["alpha"]
    assert models.gender_model.model_info["excluded"] == ["beta"]
    assert models.projection.dim <= 2  # 3 alpha train speakers: at most 2 discriminant directions
    assert json.loads(json.dumps(models.to_dict()))["excluded"] == ["beta"]


@pytest.mark.parametrize("gender, speakers", [(False, True), (True, False)])
def test_voice_models_leave_out_the_model_a_run_does_not_score(table, gender, speakers):
    """eval --cross-corpus --no-gender (or --no-speakers) fitted both stage-2 models per held-out source, one of
    them for nothing."""
    from dramapic.lab.crosscorpus import fit_voice_models

    models = fit_voice_models(table, frozenset({"beta"}), gender=gender, speakers=speakers)
    assert (models.gender_model is not None, models.projection is not None) == (gender, speakers)


def test_gender_and_speaker_trainers_share_one_table(data, table, tmp_path):
    from dramapic.analysis.diarization import SpeakerProjection
    from dramapic.analysis.gender import GenderClassifier
    from dramapic.lab.train_gender import MODEL_FILE, MODEL_NAME, train_gender
    from dramapic.lab.train_speakers import train_speaker_projection
    from dramapic.models import file_sha256, load_manifest

    entry = train_gender(data / "manifest.csv", out_dir=tmp_path, seed=0, table=table)
    train_speaker_projection(data / "manifest.csv", out_dir=tmp_path, seed=0, dim=4, table=table)
    manifest = load_manifest(tmp_path)
    assert entry["files"] == [{"path": MODEL_FILE, "sha256": file_sha256(tmp_path / MODEL_FILE)}]
    assert entry["version"] == "2" and entry["format_version"] == 2
    assert entry["training_data"]["sources"] == ["alpha", "beta"] and entry["training_data"]["n_clips"] == 12
    model = GenderClassifier.from_manifest(manifest, MODEL_NAME)
    assert model.n_pitch == 6
    # measured on the dev speakers only, per source and condition
    dev = entry["metrics"]["dev_windows"]
    assert set(dev) == {"alpha", "beta", "all"} and set(dev["all"]) == {"clean", "aug"}
    assert dev["all"]["clean"]["speakers"] == 2 and 0 <= dev["all"]["clean"]["window_ece"] <= 1
    assert SpeakerProjection.from_manifest(manifest).dim <= 4


def test_expected_calibration_error():
    from dramapic.lab.train_gender import expected_calibration_error

    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    assert expected_calibration_error(np.where(y == 1, 1.0, 0.0), y) == pytest.approx(0.0)
    # always 0.9 sure and right half the time: off by 0.4
    p = np.array([0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0.1, 0.1])
    assert expected_calibration_error(p, y) == pytest.approx(0.4)


def test_voice_protocol_fits_without_the_timelines_source_and_scores_it(data, table, tmp_path, monkeypatch):
    """End to end on one synthetic timeline of source beta: stage 1 and stage 2 run, the models were fitted
    without beta, and the dev mixes' slot (nothing held out) is not used."""
    from dramapic import media
    from dramapic.config import load_pipeline
    from dramapic.lab import crosscorpus

    folder = tmp_path / "timelines" / "beta"
    folder.mkdir(parents=True)
    clips = [voice_windows.load_audio(data / f"clips/beta3_{c}.wav") for c in (0, 1)]
    gap = np.zeros(SR // 2, np.float32)
    audio = np.concatenate([gap, clips[0], gap, clips[1], gap])
    media.encode_opus(audio, folder / "beta_00.opus")
    a, b = 0.5, 0.5 + len(clips[0]) / SR
    c, d = b + 0.5, b + 0.5 + len(clips[1]) / SR
    end = len(audio) / SR
    (folder / "beta_00.labels.csv").write_text(
        "start,end,label,gender,speaker\n"
        f"0.000,{a:.3f},silence,,\n{a:.3f},{b:.3f},voice,male,beta3\n{b:.3f},{c:.3f},silence,,\n"
        f"{c:.3f},{d:.3f},voice,male,beta3\n{d:.3f},{end:.3f},silence,,\n", encoding="utf-8")
    (folder / "beta_00.rttm").write_text(
        f"SPEAKER beta_00 1 {a:.3f} {b - a:.3f} <NA> <NA> beta3 <NA> <NA>\n"
        f"SPEAKER beta_00 1 {c:.3f} {d - c:.3f} <NA> <NA> beta3 <NA> <NA>\n", encoding="utf-8")
    (folder / "beta_00.json").write_text(json.dumps({"speakers": [{"id": "beta3", "source": "beta"}]}),
                                         encoding="utf-8")
    fitted = []
    real_fit = crosscorpus.fit_voice_models

    fit_seeds, table_seeds = [], []

    def spy(tbl, excluded, **kwargs):
        fitted.append(excluded)
        fit_seeds.append(kwargs["seed"])
        return real_fit(tbl, excluded, **kwargs)

    monkeypatch.setattr(crosscorpus, "fit_voice_models", spy)
    monkeypatch.setattr(voice_windows, "build_window_tables", lambda **kwargs: table_seeds.append(kwargs["seed"])
                        or (table,) * len(kwargs["rooms"]))
    done = []
    # three train speakers cannot calibrate the projection's stopping distance (calibrate_threshold gives None), so
    # the pipeline gives the number, as ConfigError asks
    pipeline = load_pipeline(None).replace(speakers__cluster_threshold=0.8)
    rows = crosscorpus.run_voice_protocol(data=data, timelines=tmp_path / "timelines", pipeline=pipeline,
                                          work=tmp_path / "work", table_seed=5, progress=lambda *a: done.append(a))
    assert fitted == [frozenset({"beta"})]
    assert (table_seeds, fit_seeds) == ([5], [0])  # the table's draw apart from the fits' seed
    ((timeline, excluded, scores),) = rows
    assert timeline.folder == "beta" and excluded == {"beta"}
    assert scores.duration == pytest.approx(end, abs=0.05)
    # where stage 1 hears the synthetic harmonics as voice (it is near its boundary: which side depends on the
    # build), stage 2 runs with the held-out fits and finds the one speaker
    assert scores.speakers_pred == (1 if scores.voice_frames_pred else 0)
    assert done[0] == ("cross-corpus", 0, 1) and done[-1] == ("cross-corpus", 1, 1)
    (summary, mean) = crosscorpus.summarize(rows)
    assert summary["set"] == "beta" and summary["files"] == 1 and mean["set"] == "mean (held-out)"


def test_worker_processes_give_the_same_table(data, table, monkeypatch):
    monkeypatch.setattr(voice_windows, "CLIPS_PER_BATCH", 5)  # 4 batches: both workers get clips
    parallel = build_window_table(manifest_csv=data / "manifest.csv", seed=0, workers=2)
    assert set(parallel) == set(table)
    for key in table:
        if table[key].dtype.kind == "f":
            np.testing.assert_allclose(parallel[key], table[key], atol=1e-4, err_msg=key)
        else:
            assert np.array_equal(parallel[key], table[key]), key


def test_voice_protocol_limit_keeps_the_first_timelines_of_each_folder(tmp_path, monkeypatch):
    from dramapic.lab import crosscorpus

    for folder, names in (("cv", ["cv_01", "cv_02", "cv_03"]), ("emodb", ["emodb_01"])):
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / f"{name}.labels.csv").write_text("start,end,label,gender,speaker\n")
            (tmp_path / folder / f"{name}.json").write_text(json.dumps({"speakers": [{"id": "x", "source": folder}]}))
            for suffix in (".rttm", ".opus"):  # a timeline's other files, which find_timelines looks for
                (tmp_path / folder / f"{name}{suffix}").write_bytes(b"")
    monkeypatch.setattr(voice_windows, "build_window_tables", lambda **kwargs: ({},) * len(kwargs["rooms"]))
    monkeypatch.setattr(crosscorpus, "voice_score_fn", lambda pipeline: lambda models, timeline: timeline.name)
    monkeypatch.setattr(crosscorpus, "fit_voice_models", lambda table, excluded, **kw: excluded)
    rows = crosscorpus.run_voice_protocol(data=tmp_path, timelines=tmp_path, pipeline=None, work=tmp_path, limit=2)
    assert [(t.name, excluded, score) for t, excluded, score in rows] == [
        ("cv_01", {"cv"}, "cv_01"), ("cv_02", {"cv"}, "cv_02"), ("emodb_01", {"emodb"}, "emodb_01")]


def test_voice_protocol_without_gender_and_speakers_embeds_and_fits_nothing(tmp_path, monkeypatch):
    """eval --cross-corpus --no-gender --no-speakers scores stage 1 alone, but built the voice window table
    (minutes of embedding) and fitted both models per held-out source all the same."""
    from dramapic.config import load_pipeline
    from dramapic.lab import crosscorpus

    (tmp_path / "cv").mkdir()
    (tmp_path / "cv" / "cv_01.labels.csv").write_text("start,end,label,gender,speaker\n")
    (tmp_path / "cv" / "cv_01.json").write_text(json.dumps({"speakers": [{"id": "x", "source": "cv"}]}))
    for suffix in (".rttm", ".opus"):
        (tmp_path / "cv" / f"cv_01{suffix}").write_bytes(b"")
    monkeypatch.setattr(voice_windows, "build_window_tables", lambda **kw: pytest.fail("built the window table"))
    monkeypatch.setattr(crosscorpus, "fit_voice_models", lambda *a, **kw: pytest.fail("fitted stage 2"))
    monkeypatch.setattr(crosscorpus, "voice_score_fn", lambda pipeline: lambda models, timeline: models)
    pipeline = load_pipeline(None).replace(stage2__gender=False, speakers__enabled=False)
    ((_, excluded, models),) = crosscorpus.run_voice_protocol(data=tmp_path, timelines=tmp_path,
                                                              pipeline=pipeline, work=tmp_path)
    assert excluded == {"cv"} and (models.gender_model, models.projection) == (None, None)
    assert models.to_dict() == {"excluded": ["cv"], "gender_sources": None, "cluster_threshold": None}


@pytest.mark.parametrize("gender, speakers", [(False, True), (True, False)])
def test_voice_protocol_fits_only_the_models_the_run_scores(tmp_path, monkeypatch, gender, speakers):
    from dramapic.config import load_pipeline
    from dramapic.lab import crosscorpus

    (tmp_path / "cv").mkdir()
    (tmp_path / "cv" / "cv_01.labels.csv").write_text("start,end,label,gender,speaker\n")
    (tmp_path / "cv" / "cv_01.json").write_text(json.dumps({"speakers": [{"id": "x", "source": "cv"}]}))
    for suffix in (".rttm", ".opus"):
        (tmp_path / "cv" / f"cv_01{suffix}").write_bytes(b"")
    rooms = []
    monkeypatch.setattr(voice_windows, "build_window_tables",
                        lambda **kw: rooms.extend(kw["rooms"]) or tuple({"rooms": r} for r in kw["rooms"]))
    asked = []
    monkeypatch.setattr(crosscorpus, "fit_voice_models", lambda table, excluded, **kw: asked.append(
        {**kw, "rooms": table["rooms"], "gender_rooms": kw["gender_table"]["rooms"]}))
    monkeypatch.setattr(crosscorpus, "voice_score_fn", lambda pipeline: lambda models, timeline: None)
    pipeline = load_pipeline(None).replace(stage2__gender=gender, speakers__enabled=speakers)
    crosscorpus.run_voice_protocol(data=tmp_path, timelines=tmp_path, pipeline=pipeline, work=tmp_path)
    # the projection also under --no-speakers: gender is decided per speaker, the ids are only not shown
    assert [(kw["gender"], kw["speakers"]) for kw in asked] == [(gender, True)]
    # as dramapic train: the projection on near rooms, the gender model on far ones, whose table (minutes of
    # embedding) is built only when gender is scored
    assert rooms == ([SPEAKER_ROOMS, GENDER_ROOMS] if gender else [SPEAKER_ROOMS])
    assert asked[0]["rooms"] == SPEAKER_ROOMS and asked[0]["gender_rooms"] == (GENDER_ROOMS if gender
                                                                                else SPEAKER_ROOMS)


def test_voice_scoring_without_gender_and_speakers_runs_no_stage_2(tmp_path, monkeypatch):
    """With both switched off the protocol scores stage 1's segments as they are: refine_voice embedded every
    voice window first (resemblyzer over the whole timeline) and only then found there was nothing to decide."""
    from types import SimpleNamespace

    from dramapic import media
    from dramapic.analysis import analyze as analyze_module
    from dramapic.config import load_pipeline
    from dramapic.lab import crosscorpus
    from dramapic.result import Segment

    labels = tmp_path / "cv_01.labels.csv"
    labels.write_text("start,end,label,gender,speaker\n0.000,2.000,voice,female,A\n")
    (tmp_path / "cv_01.rttm").write_text("SPEAKER cv_01 1 0.000 2.000 <NA> <NA> A <NA> <NA>\n")
    monkeypatch.setattr(media, "probe", lambda path: path)
    monkeypatch.setattr(media, "decode_audio", lambda info: np.zeros(32000, np.float32))
    voice = Segment(start=0.0, end=2.0, label="voice", confidence=0.9)
    monkeypatch.setattr(analyze_module, "analyze_audio", lambda audio, pipeline: ([voice], None, None))
    monkeypatch.setattr(analyze_module, "refine_voice", lambda *a, **kw: pytest.fail("stage 2 ran"))
    pipeline = load_pipeline(None).replace(stage2__gender=False, speakers__enabled=False)
    score = crosscorpus.voice_score_fn(pipeline)
    nothing = crosscorpus.VoiceModels(excluded=frozenset({"cv"}), gender_model=None, projection=None)
    scores = score(nothing, SimpleNamespace(audio=tmp_path / "cv_01.opus", labels_csv=labels))
    assert scores.class_metrics["voice"]["recall"] == 1.0 and not scores.gender_scored
    assert np.isnan(scores.gender_error) and scores.speakers_pred == 0
    assert not scores.speakers_scored and np.isnan(scores.der)  # not a measured 100 % DER


def test_a_cache_that_cannot_be_a_folder_is_an_output_error_before_the_embedding(data, tmp_path, monkeypatch):
    from dramapic.errors import OutputError

    class NoEncoder:
        def __init__(self):
            raise AssertionError("embedded before finding out the cache cannot be written")

    monkeypatch.setattr("dramapic.analysis.embeddings.SpeakerEncoder", NoEncoder)
    blocker = tmp_path / "cache"
    blocker.write_text("a file")
    for cache in (blocker, blocker / "sub"):   # was FileExistsError / NotADirectoryError after the whole pass
        with pytest.raises(OutputError, match="cache folder"):
            build_window_table(manifest_csv=data / "manifest.csv", seed=0, max_clips=2, cache=cache)
    with pytest.raises(OutputError, match="cannot write the window table"):
        voice_windows._save_atomic(blocker / "table.npz", {"a": np.zeros(2)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


@pytest.mark.parametrize("damage, says", [
    (lambda root: (root / "clips" / "beta3_1.wav").unlink(),      # a dev voice
     "clip listed in the manifest not found: {root}/clips/beta3_1.wav"),
    (lambda root: (root / "clips" / "noise_dev.wav").unlink(),    # a bed
     "clip listed in the manifest not found: {root}/clips/noise_dev.wav"),
    (lambda root: drop_manifest_column(root / "manifest.csv", "gender"), "lacks the column(s) gender"),
])
def test_eval_cross_corpus_refuses_missing_clips_or_columns_before_the_embedding_pass(data, tmp_path, monkeypatch,
                                                                                       capsys, damage, says):
    """``eval --cross-corpus`` builds the window table from --data (minutes of embedding for the shared data): a
    missing dev voice or bed was found only when its batch came, and a manifest without ``gender`` was embedded
    whole, then refused as "train windows of [] do not hold both genders"."""
    import shutil

    from dramapic import cli

    root = tmp_path / "data"
    shutil.copytree(data, root)
    damage(root)
    tree = tmp_path / "timelines" / "cv"
    tree.mkdir(parents=True)
    (tree / "cv_01.labels.csv").write_text("start,end,label,gender,speaker\n")
    (tree / "cv_01.json").write_text(json.dumps({"speakers": [{"id": "x", "source": "cv"}]}))
    for suffix in (".rttm", ".opus"):
        (tree / f"cv_01{suffix}").write_bytes(b"")
    monkeypatch.setattr(voice_windows, "_Embedder", lambda *a: pytest.fail("embedded before checking the data"))
    assert cli.main(["eval", "--cross-corpus", "--data", str(root), "--timelines", str(tmp_path / "timelines"),
                     "--work", str(tmp_path / "work"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says.format(root=root) in err[0], err
