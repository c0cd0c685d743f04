"""``dramapic eval --refit-stage1``: stage 1's member checks with stage 1 refitted without each source it heard
(issue 13's cross-corpus protocol for stage 1), the fits kept under --work and published whole."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import SHARED_DATA as DATA
from helpers import song_check_data

from dramapic.config import load_pipeline
from dramapic.errors import InputError
from dramapic.lab import stage1_refits
from dramapic.lab.stage1_crosscorpus import CrossCorpusReport
from dramapic.models import load_manifest

COLUMNS = "path,label,subtype,gender,speaker,source,split,duration_s\n"


def _shared_data() -> Path:
    if not (DATA / "manifest.csv").is_file():
        pytest.skip(f"shared training data not found at {DATA} (the tests read ../shared/data)")
    return DATA


def test_a_refit_leaves_its_source_out_and_is_kept_until_what_it_was_fitted_from_changes(tmp_path, monkeypatch):
    from dramapic.lab import train_stage1

    data = _shared_data()
    fitted = stage1_refits.refit_without(data=data, work=tmp_path, music_sources=["everythingisfree"], max_clips=4)
    stacker = fitted.get("stage1-stacker-lr")
    assert stacker.info["training_data"]["excluded_music_sources"] == ["everythingisfree"]
    assert stacker.info["training_data"]["max_clips"] == 4 and stacker.info["seed"] == 0
    # the shipped names, so that the pipeline's stage1 section loads the refit unchanged
    assert set(load_pipeline(None).stage1.members) | {"stage1-stacker-lr"} == set(fitted.entries)
    folder = tmp_path / "stage1-refits" / "without-everythingisfree-seed0-smoke4"
    assert fitted.root == folder and [p.name for p in (tmp_path / "stage1-refits").iterdir()] == [folder.name]
    marker = json.loads((folder / "refit.json").read_text(encoding="utf-8"))
    assert marker["music_sources_left_out"] == ["everythingisfree"] and set(marker["data"]) >= {"manifest.csv"}

    def no_training(*args, **kwargs):
        raise AssertionError("the kept fit should have been used")

    monkeypatch.setattr(train_stage1, "train_stage1", no_training)
    again = stage1_refits.refit_without(data=data, work=tmp_path, music_sources=["everythingisfree"], max_clips=4)
    assert again.root == folder and again.entries.keys() == fitted.entries.keys()

    # a fit from other data (its marker says so) is fitted again, in the same place
    (folder / "refit.json").write_text(json.dumps({**marker, "data": {"manifest.csv": "0" * 64}}), encoding="utf-8")
    calls = []

    def fake_training(manifest_csv, *, out_dir, **kwargs):
        calls.append(kwargs["excluded_music_sources"])
        shutil.copy(folder / "manifest.json", out_dir / "manifest.json")
        for entry in fitted.entries.values():
            for f in entry.files:
                shutil.copy(folder / f.path, out_dir / f.path)

    monkeypatch.setattr(train_stage1, "train_stage1", fake_training)
    stage1_refits.refit_without(data=data, work=tmp_path, music_sources=["everythingisfree"], max_clips=4)
    assert calls == [["everythingisfree"]]
    assert json.loads((folder / "refit.json").read_text(encoding="utf-8")) == marker

    # so is a fit whose mixes drew other rooms (the near-only tail stage 1 trained with until 2026-12-07)
    from dramapic.lab import mixes

    assert marker["room_tail_db"] == list(mixes.ROOM_TAIL_DB)
    monkeypatch.setattr(mixes, "ROOM_TAIL_DB", (-14.0, -4.0))
    stage1_refits.refit_without(data=data, work=tmp_path, music_sources=["everythingisfree"], max_clips=4)
    assert calls == [["everythingisfree"]] * 2
    assert json.loads((folder / "refit.json").read_text(encoding="utf-8"))["room_tail_db"] == [-14.0, -4.0]

    # and one whose mixes went through a room more or less often (a lab script sets mixes.ROOM_PROBABILITY): the
    # share was not in the key, so a fit drawn at 0.6 was taken for the recipe's 0.3 and scored as it
    assert marker["room_probability"] == mixes.ROOM_PROBABILITY
    monkeypatch.setattr(mixes, "ROOM_PROBABILITY", 0.6)
    stage1_refits.refit_without(data=data, work=tmp_path, music_sources=["everythingisfree"], max_clips=4)
    assert calls == [["everythingisfree"]] * 3
    assert json.loads((folder / "refit.json").read_text(encoding="utf-8"))["room_probability"] == 0.6


def test_a_failed_or_killed_fit_leaves_nothing_a_later_run_could_load(tmp_path, monkeypatch):
    from dramapic.lab import train_stage1

    data = _shared_data()

    def half_a_fit(manifest_csv, *, out_dir, **kwargs):
        (out_dir / "stage1-detectors-lr.npz").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(train_stage1, "train_stage1", half_a_fit)
    with pytest.raises(KeyboardInterrupt):
        stage1_refits.refit_without(data=data, work=tmp_path, voice_sources=["emodb"])
    assert list((tmp_path / "stage1-refits").iterdir()) == []


@pytest.mark.parametrize("damage", [
    lambda folder: (folder / "refit.json").write_text('{"voice_sources_left_out": ["em', encoding="utf-8"),
    lambda folder: (folder / "refit.json").write_text("[]", encoding="utf-8"),
    lambda folder: (folder / "stage1-stacker-lr.npz").write_bytes(b"cut sh"),
    lambda folder: (folder / "stage1-stacker-lr.npz").unlink(),
    lambda folder: (folder / "manifest.json").write_text("{", encoding="utf-8"),
], ids=["marker-cut-short", "marker-not-an-object", "model-file-cut-short", "model-file-gone", "manifest-cut-short"])
def test_a_damaged_kept_refit_is_fitted_again(tmp_path, monkeypatch, caplog, damage):
    """A kept fit whose model file was damaged was handed out as it was: the run went on to the member check and
    ended there in "does not match its sha256 ... reinstall dramapic or retrain the model", every time, until the
    folder was found and removed by hand. A kept fit is a cache: one that cannot be read back is fitted again."""
    from dramapic.lab import train_stage1
    from dramapic.models import register_model

    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.csv").write_text(COLUMNS, encoding="utf-8")
    fits = []

    def fake_training(manifest_csv, *, out_dir, **kwargs):
        fits.append(kwargs["excluded_voice_sources"])
        (out_dir / "stage1-stacker-lr.npz").write_bytes(b"weights of fit %d" % len(fits))
        register_model(out_dir, {"name": "stage1-stacker-lr", "version": "1",
                                 "files": [{"path": "stage1-stacker-lr.npz"}]})

    monkeypatch.setattr(train_stage1, "train_stage1", fake_training)
    work = tmp_path / "work"
    first = stage1_refits.refit_without(data=data, work=work, voice_sources=["emodb"])
    assert fits == [["emodb"]] and stage1_refits.refit_without(data=data, work=work, voice_sources=["emodb"]) == first
    damage(first.root)
    with caplog.at_level("WARNING"):
        again = stage1_refits.refit_without(data=data, work=work, voice_sources=["emodb"])
    assert fits == [["emodb"], ["emodb"]] and again.root == first.root      # fitted again, in the same place
    assert again.get("stage1-stacker-lr").file().read_bytes() == b"weights of fit 2"
    assert any(r.levelname == "WARNING" and first.root.name in r.getMessage() for r in caplog.records)  # said why
    assert sorted(p.name for p in (work / "stage1-refits").iterdir()) == [first.root.name]


def test_a_refit_needs_the_shared_data_and_something_to_leave_out(tmp_path):
    with pytest.raises(InputError, match="no manifest.csv"):
        stage1_refits.refit_without(data=tmp_path, work=tmp_path, music_sources=["x"])
    (tmp_path / "manifest.csv").write_text(COLUMNS, encoding="utf-8")
    with pytest.raises(InputError, match="at least one source"):
        stage1_refits.refit_without(data=tmp_path, work=tmp_path)
    with pytest.raises(InputError, match="stage1.model: ensemble"):
        stage1_refits.shipped_stage1(load_pipeline(None).replace(stage1__model="rule"))


def _timeline(root: Path, folder: str, name: str, sources) -> None:
    where = root / folder
    where.mkdir(parents=True, exist_ok=True)
    (where / f"{name}.labels.csv").write_text("start,end,label,gender,speaker\n0,1,voice,,\n", encoding="utf-8")
    (where / f"{name}.json").write_text(json.dumps({"speakers": [{"source": s} for s in sources]}), encoding="utf-8")
    for ext in (".rttm", ".opus"):  # a timeline's other files, which reading the tree checks are there
        (where / f"{name}{ext}").write_bytes(b"")


def test_the_voice_check_refits_only_for_voices_stage1_heard_and_pools_each_folder(tmp_path, monkeypatch):
    from dramapic.lab import evaluate, variants

    libri = "librispeech-train-clean-100"
    root = tmp_path / "timelines"
    _timeline(root, libri, "libri_01", [libri])
    _timeline(root, libri, "libri_02", [libri])
    _timeline(root, "cv", "cv_01", ["cv"])
    _timeline(root, "mixed", "mixed_01", [libri, "ravdess"])
    _timeline(root, "mixed", "mixed_02", ["cv", "ravdess"])
    pipeline = load_pipeline(None)
    shipped = load_manifest()
    fits, scored = [], []

    def fake_refit(*, data, work, voice_sources=(), music_sources=(), seed, max_clips, progress):
        fits.append((sorted(voice_sources), list(music_sources), seed))
        return SimpleNamespace(name="without " + "+".join(sorted(voice_sources)))

    def fake_variants(folder, pipeline_, *, manifest, gender, pattern):
        name = pattern.removesuffix(".labels.csv")
        scored.append((name, getattr(manifest, "name", None) or ("shipped" if manifest.root == shipped.root else "?"),
                       gender))
        acc = {"libri_01": 0.9, "libri_02": 0.8, "cv_01": 0.95, "mixed_01": 0.7, "mixed_02": 0.6}[name]
        return SimpleNamespace(stage1={s: SimpleNamespace(files=[acc + (0.01 if s == "ensemble" else 0.0)])
                                       for s in ("ensemble", *pipeline.stage1.members)})

    monkeypatch.setattr(stage1_refits, "refit_without", fake_refit)
    monkeypatch.setattr(variants, "evaluate_variants", fake_variants)
    monkeypatch.setattr(evaluate, "aggregate", lambda files: SimpleNamespace(accuracy=sum(files) / len(files)))
    report = stage1_refits.refit_voice_member_check(timelines=root, pipeline=pipeline, data=tmp_path, work=tmp_path)
    # one fit: without LibriSpeech (the shipped stage 1 never heard Common Voice or RAVDESS), at the shipped seed
    assert fits == [([libri], [], 0)]
    assert scored == [("cv_01", "shipped", False), ("libri_01", f"without {libri}", False),
                      ("libri_02", f"without {libri}", False), ("mixed_01", f"without {libri}", False),
                      ("mixed_02", "shipped", False)]
    assert [r.group for r in report.rows] == ["cv", "libri (refit without)", "mixed (refit without)"]
    assert report.rows[1].scores["ensemble"] == pytest.approx(0.86) and report.check is True

    scored.clear()
    report = stage1_refits.refit_voice_member_check(timelines=root, pipeline=pipeline, data=tmp_path, work=tmp_path,
                                                    only=["cv"])
    assert [r.group for r in report.rows] == ["cv"] and [s[0] for s in scored] == ["cv_01"]
    with pytest.raises(InputError, match="no timeline folder nemo"):
        stage1_refits.refit_voice_member_check(timelines=root, pipeline=pipeline, data=tmp_path, work=tmp_path,
                                               only=["nemo"])


def test_the_song_check_refits_only_the_music_sources_stage1_heard(tmp_path, monkeypatch, capsys):
    from dramapic import cli
    from dramapic.analysis import stage1

    song_check_data(tmp_path)
    fits, loaded = [], []

    fit = tmp_path / "fit"  # a copy of the shipped files stands in for the fit: what is checked is where it goes
    shutil.copytree(load_manifest().root, fit)

    def fake_refit(*, data, work, voice_sources=(), music_sources=(), seed, max_clips, progress):
        fits.append((list(voice_sources), list(music_sources), work))
        return load_manifest(fit)

    real = stage1.Stage1Ensemble.from_manifest.__func__

    def spy(cls, manifest, **kwargs):
        loaded.append(manifest)
        return real(cls, manifest, **kwargs)

    monkeypatch.setattr(stage1_refits, "refit_without", fake_refit)
    monkeypatch.setattr(stage1.Stage1Ensemble, "from_manifest", classmethod(spy))
    work = tmp_path / "work"
    assert cli.main(["eval", "--song-check", "--data", str(tmp_path), "--refit-stage1", "--work", str(work),
                     "--json", str(tmp_path / "out.json"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert fits == [([], ["usdx"], work)]  # newsrc has no train tracks: the shipped files never heard it
    # each source's ensemble came from the manifest it was given (newsrc: the shipped one), not a cached default
    assert [m.root for m in loaded[-2:]] == [load_manifest().root, fit]
    assert "usdx (refit without)" in out and "newsrc " in out and "usdx (seen)" not in out
    written = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert set(written["members"]["held_out"]) == {"usdx (refit without)", "newsrc"}

    def no_song_check(**kwargs):
        raise AssertionError("a wrong source name must be refused before the song check runs")

    monkeypatch.setattr("dramapic.lab.songcheck.run_song_check", no_song_check)
    assert cli.main(["eval", "--song-check", "--data", str(tmp_path), "--refit-stage1", "usdx,nosuch",
                     "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no music source nosuch" in err[0] and "usdx" in err[0]


def test_limit_does_not_narrow_the_sources_the_song_refits_may_name(tmp_path, monkeypatch, capsys):
    """``--limit 1 --refit-stage1 newsrc``: the refits take the first clip of each source, but the name was checked
    against the sources of the song check's first clip alone ("no music source newsrc (known: usdx)")."""
    from dramapic import cli
    from dramapic.lab.songcheck import score_song_frames

    data = song_check_data(tmp_path)
    asked = []
    monkeypatch.setattr("dramapic.lab.songcheck.run_song_check", lambda **kw: score_song_frames([]))
    monkeypatch.setattr(stage1_refits, "refit_song_member_check", lambda **kw: asked.append(kw) or
                        CrossCorpusReport.from_scores({"newsrc": {"ensemble": 1.0, "stage1-yamnet-lr": 0.9}}))
    assert cli.main(["eval", "--song-check", "--data", str(data), "--limit", "1", "--refit-stage1", "newsrc",
                     "--work", str(tmp_path / "work"), "--no-progress"]) == 0, capsys.readouterr().err
    assert [(kw["only"], kw["limit"]) for kw in asked] == [(("newsrc",), 1)]


@pytest.mark.parametrize("argv, says", [
    (["--mixes", "m", "--refit-stage1"], "applies to --song-check and --cross-corpus only"),
    (["--song-check", "--data", "d", "--refit-stage1", "a,,b"], "distinct names"),
    (["--song-check", "--data", "d", "--refit-stage1", "a,a"], "distinct names"),
    (["--song-check", "--data", "d", "--refit-stage1", "--pipeline", "RULE"], "needs stage1.model: ensemble"),
])
def test_refit_stage1_refusals_are_one_line(argv, says, capsys, tmp_path):
    from dramapic import cli

    rule = tmp_path / "rule.yaml"
    rule.write_text("stage1:\n  model: rule\n", encoding="utf-8")
    argv = [str(rule) if a == "RULE" else a for a in argv]
    try:
        rc = cli.main(["eval", *argv, "--no-progress"])
    except SystemExit as stop:  # argparse's own refusal of the value, one line too
        rc = stop.code
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]


@pytest.mark.parametrize("place, says", [
    ("missing", "timelines folder not found: {tl}"),
    ("flat", "{tl} holds timelines itself, not one sub-folder of them per source"),
])
def test_refit_stage1_names_a_timelines_folder_that_is_no_tree(tmp_path, capsys, place, says):
    """``--cross-corpus --timelines DIR --refit-stage1 cv`` with a DIR that is missing or holds the timelines
    itself said "--refit-stage1: no timeline folder cv (known: )", as if the name were wrong."""
    from dramapic import cli

    data, tl = tmp_path / "data", tmp_path / "timelines"
    data.mkdir()
    (data / "manifest.csv").write_text("path,label\n")
    if place == "flat":
        tl.mkdir()
        for suffix in (".labels.csv", ".rttm", ".opus"):
            (tl / f"cv_01{suffix}").write_text("")
        (tl / "cv_01.json").write_text('{"speakers": []}')
    assert cli.main(["eval", "--cross-corpus", "--data", str(data), "--timelines", str(tl), "--refit-stage1", "cv",
                     "--work", str(tmp_path / "work"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says.format(tl=tl) in err[0], err


@pytest.mark.parametrize("mode", ["song-check", "cross-corpus"])
def test_a_training_clip_the_refits_would_read_that_is_missing_is_one_line_before_the_long_run(tmp_path, monkeypatch,
                                                                                                capsys, mode):
    """The refits run after the song check (or the stage-2 protocol): a train clip missing from --data was found
    part-way through the first of them (about 16 minutes each)."""
    from dramapic import cli
    from dramapic.lab import crosscorpus

    data = song_check_data(tmp_path)
    (data / "m" / "a.wav").unlink()
    monkeypatch.setattr("dramapic.lab.songcheck.run_song_check", lambda **kw: pytest.fail("ran the song check"))
    monkeypatch.setattr(crosscorpus, "run_voice_protocol", lambda **kw: pytest.fail("ran the stage-2 protocol"))
    monkeypatch.setattr(stage1_refits, "refit_without", lambda **kw: pytest.fail("fitted"))
    argv = ["--song-check"]
    if mode == "cross-corpus":
        _timeline(tmp_path / "timelines", "cv", "cv_01", ["cv"])
        argv = ["--cross-corpus", "--timelines", str(tmp_path / "timelines")]
    assert cli.main(["eval", *argv, "--data", str(data), "--refit-stage1", "--work", str(tmp_path / "work"),
                     "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"clip listed in the manifest not found: {data / 'm' / 'a.wav'}" in err[0], err


def test_the_report_marks_which_rows_were_refitted():
    report = CrossCorpusReport.from_scores({"libri (refit without)": {"ensemble": 0.9, "stage1-yamnet-lr": 0.95},
                                            "debian_singularity_music (refit without)": {
                                                "ensemble": 1.0, "stage1-yamnet-lr": 1.0}})
    table = report.format_table().splitlines()
    assert report.check is False and table[1].startswith("libri (refit without)")
    # the columns stay aligned when a row's name is longer than the usual 28 characters
    assert len({len(line.rsplit("  ", 1)[0]) for line in table[:3]}) == 1 and table[2].endswith("yes")


@pytest.mark.parametrize("under", ["a-file", "a-file/sub"])
def test_a_work_folder_the_refits_cannot_use_is_refused_before_the_song_check(tmp_path, monkeypatch, capsys, under):
    """With ``--song-check`` the refits are the first to write under ``--work``, and they run after the song check:
    a ``--work`` that is a file (or lies under one) failed only after the song check had run."""
    from dramapic import cli

    def no_song_check(**kwargs):
        raise AssertionError("--work must be refused before the song check runs")

    monkeypatch.setattr("dramapic.lab.songcheck.run_song_check", no_song_check)
    monkeypatch.setattr("dramapic.lab.songcheck.songcheck_clips", lambda **kw: no_song_check())
    (tmp_path / "a-file").write_text("x")
    assert cli.main(["eval", "--song-check", "--data", str(tmp_path), "--refit-stage1", "--work",
                     str(tmp_path / under), "--no-progress"]) == 6
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dramapic: error: ") and "--work" in err[0] and "a-file" in err[0], err
