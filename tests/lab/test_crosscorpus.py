"""The cross-corpus protocol on a tiny synthetic tree: discovery, exclusion sets, the fit-without-source loop,
per-source summaries side by side with the dev mixes."""

from __future__ import annotations

import json
import math

import pytest

from dramapic.errors import InputError
from dramapic.lab.crosscorpus import (DEV_MIXES, MIXED, cross_corpus, find_timelines, format_table, held_out,
                                      recipe_sources, summarize)
from dramapic.lab.evaluate import score_result
from dramapic.lab.reference import load_reference

ROWS = [(0.0, 1.0, "voice", "female", "A"), (1.0, 2.0, "voice", "male", "B")]
TURNS = [(0.0, 1.0, "A"), (1.0, 2.0, "B")]


def _write(directory, name, cast):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.labels.csv").write_text(
        "start,end,label,gender,speaker\n" + "".join(f"{a:.3f},{b:.3f},{l},{g},{s}\n" for a, b, l, g, s in ROWS))
    (directory / f"{name}.rttm").write_text(
        "".join(f"SPEAKER {name} 1 {a:.3f} {b - a:.3f} <NA> <NA> {s} <NA> <NA>\n" for a, b, s in TURNS))
    (directory / f"{name}.opus").write_bytes(b"")
    (directory / f"{name}.json").write_text(json.dumps({"speakers": cast}))


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "timelines"
    _write(root / "cv", "cv_00", [{"id": "cv_1", "source": "cv"}, {"id": "cv_2", "source": "cv"}])
    _write(root / "cv", "cv_01", [{"id": "cv_3", "source": "cv"}])
    _write(root / "emodb", "emodb_00", [{"id": "emodb_03", "source": "emodb"}])
    _write(root / MIXED, "mixed_00", [{"id": "cv_9", "source": "cv"}, {"id": "n1", "source": "nemo"}])
    _write(tmp_path / "dev", "devmix_00", [{"id": "emodb_08"}, {"id": "libri_19"}])  # no source: old recipes
    return root, tmp_path / "dev"


def test_discovery_and_exclusion_sets(tree):
    root, dev = tree
    found = find_timelines(root, dev_mixes=dev)
    assert [(t.folder, t.name) for t in found] == [("cv", "cv_00"), ("cv", "cv_01"), ("emodb", "emodb_00"),
                                                  (MIXED, "mixed_00"), (DEV_MIXES, "devmix_00")]
    assert found[-1].sources == ("emodb", "librispeech-train-clean-100")
    assert [held_out(t) for t in found] == [{"cv"}, {"cv"}, {"emodb"}, {"cv", "nemo"}, frozenset()]
    assert recipe_sources({}) == ()
    assert [t.name for t in find_timelines(root, folders=["emodb"])] == ["emodb_00"]
    with pytest.raises(InputError, match="timelines folder not found: .*nothing$"):
        find_timelines(root / "nothing")
    with pytest.raises(InputError, match="cv holds timelines itself, not one sub-folder of them per source"):
        find_timelines(root / "cv")  # a flat folder: was "no *.labels.csv timelines under" it, which it holds
    (root / "cv" / "cv_01.json").unlink()
    with pytest.raises(InputError, match="recipe"):
        find_timelines(root)


def test_each_model_is_fitted_without_its_held_out_sources(tree):
    root, dev = tree
    fits = []

    def fit_fn(excluded):
        fits.append(excluded)
        return {"trained_on": frozenset({"cv", "emodb", "nemo", "librispeech-train-clean-100"}) - excluded}

    def score_fn(model, timeline):
        # a "model" that knows the voices it was trained on and guesses wrong otherwise: the protocol must
        # expose that (every held-out timeline wrong, the dev mix right)
        known = set(timeline.sources) <= model["trained_on"]
        genders = ("female", "male") if known else ("male", "female")
        result = {"schema": "dramapic/1", "source": {"duration": 2.0}, "segments": [
            {"start": 0.0, "end": 1.0, "label": "voice", "gender": genders[0], "speaker": "S1"},
            {"start": 1.0, "end": 2.0, "label": "voice", "gender": None if timeline.folder == MIXED else genders[1],
             "speaker": "S2"}]}
        return score_result(result, load_reference(timeline.labels_csv), collar_s=0.0)

    rows = cross_corpus(find_timelines(root, dev_mixes=dev), fit_fn=fit_fn, score_fn=score_fn)
    assert fits == [{"cv"}, {"emodb"}, {"cv", "nemo"}, frozenset()]  # memoised: one fit per exclusion set
    for timeline, excluded, _ in rows:
        assert not (set(timeline.sources) & set(excluded)) or timeline.folder != DEV_MIXES
    summary = summarize(rows)
    assert [r["set"] for r in summary] == ["cv", "emodb", MIXED, "mean (held-out)", DEV_MIXES]
    by = {r["set"]: r for r in summary}
    assert by["cv"]["files"] == 2 and by["cv"]["gender_error"] == 1.0 and by["cv"]["abstention"] == 0.0
    assert by[MIXED]["gender_error"] == 1.0 and by[MIXED]["abstention"] == pytest.approx(0.5)
    assert by[DEV_MIXES]["gender_error"] == 0.0 and by[DEV_MIXES]["female_share_error"] == pytest.approx(0.0)
    mean = by["mean (held-out)"]
    assert mean["files"] == 4 and mean["gender_error"] == 1.0
    assert mean["abstention"] == pytest.approx(0.5 / 3)
    assert not math.isnan(mean["der"])
    table = format_table(summary)
    assert "mean (held-out)" in table and "dev_mixes" in table and "abstain %" in table


def test_cross_corpus_reports_how_well_the_gender_probabilities_are_calibrated(tree, tmp_path, monkeypatch, capsys):
    """Each set's gender ECE in the summary; ``dramapic eval --cross-corpus`` prints the held-out timelines' pooled
    reliability table and writes it to the JSON (the protocol itself is replaced by fixed results here)."""
    from dramapic import cli
    from dramapic.lab import crosscorpus, stage1_crosscorpus

    root, dev = tree

    def claim(timeline, stated):
        # the woman (0-1 s) called female, the man (1-2 s) called female too: one right, one wrong second
        result = {"schema": "dramapic/1", "source": {"duration": 2.0}, "segments": [
            {"start": 0.0, "end": 1.0, "label": "voice", "gender": "female", "speaker": "S1", "confidence": 0.9,
             "scores": {"female": stated, "male": 1 - stated}},
            {"start": 1.0, "end": 2.0, "label": "voice", "gender": "female", "speaker": "S2", "confidence": 0.9,
             "scores": {"female": stated, "male": 1 - stated}}]}
        return score_result(result, load_reference(timeline.labels_csv), collar_s=0.0)

    found = find_timelines(root, dev_mixes=dev)
    rows = [(t, held_out(t), claim(t, 0.5 if t.folder == DEV_MIXES else 0.95)) for t in found]
    summary = summarize(rows)
    by = {r["set"]: r for r in summary}
    assert by["cv"]["gender_ece"] == pytest.approx(0.45)         # said 0.95, right half the time
    assert by[DEV_MIXES]["gender_ece"] == pytest.approx(0.0)     # said 0.5, right half the time
    assert by["mean (held-out)"]["gender_ece"] == pytest.approx(0.45)
    assert "gender ECE" in format_table(summary)

    (tmp_path / "manifest.csv").write_text("path,label\n")
    asked: list = []
    monkeypatch.setattr(crosscorpus, "run_voice_protocol",
                        lambda **kw: asked.append((kw["seed"], kw["copies"])) or rows)
    monkeypatch.setattr(stage1_crosscorpus, "stage1_member_check", lambda **kw: type(
        "Check", (), {"format_table": lambda self: "members", "to_dict": lambda self: {}})())
    out = tmp_path / "xc.json"
    assert cli.main(["eval", "--cross-corpus", "--data", str(tmp_path), "--timelines", str(root),
                     "--json", str(out), "--no-progress", "--seeds", "2", "--copies", "3"]) == 0
    assert asked == [(2, 3)]                              # the fits' seed and the table's copies reach the protocol
    printed = capsys.readouterr().out
    assert "against how often it was right" in printed and "ECE 0.450 over 8.0 s" in printed
    saved = json.loads(out.read_text())
    assert saved["seed"] == 2 and saved["copies"] == 3   # the JSON says what it was fitted with
    assert saved["gender_calibration"]["ece"] == pytest.approx(0.45)
    assert saved["gender_calibration"]["seconds"] == pytest.approx(8.0)   # 4 held-out x 2 s; dev mixes not pooled


def test_several_seeds_are_summarised_by_mean_and_range(tree, tmp_path, monkeypatch, capsys):
    """``--seeds 0,1``: the protocol once per seed, each seed's table, then every figure's mean and range over the
    seeds; the JSON keeps the first seed's figures at the top level and every seed under ``runs``."""
    from dramapic import cli
    from dramapic.lab import crosscorpus, stage1_crosscorpus

    root, dev = tree
    found = find_timelines(root, dev_mixes=dev)

    def rows_for(seed):
        # seed 0 calls the man (1-2 s) female, seed 1 gets him right: gender error 50 % then 0 %
        said = "female" if seed == 0 else "male"
        result = {"schema": "dramapic/1", "source": {"duration": 2.0}, "segments": [
            {"start": 0.0, "end": 1.0, "label": "voice", "gender": "female", "speaker": "S1", "confidence": 0.9},
            {"start": 1.0, "end": 2.0, "label": "voice", "gender": said, "speaker": "S2", "confidence": 0.9}]}
        return [(t, held_out(t), score_result(result, load_reference(t.labels_csv), collar_s=0.0)) for t in found]

    over = crosscorpus.summarize_over_seeds({0: summarize(rows_for(0)), 1: summarize(rows_for(1))})
    mean = next(r for r in over if r["set"] == "mean (held-out)")
    assert mean["seeds"] == 2
    assert (mean["gender_error_min"], mean["gender_error"], mean["gender_error_max"]) == pytest.approx((0, .25, .5))
    assert "25.0 (0.0-50.0)" in crosscorpus.format_over_seeds(over)
    with pytest.raises(ValueError):
        crosscorpus.summarize_over_seeds({})

    (tmp_path / "manifest.csv").write_text("path,label\n")
    monkeypatch.setattr(crosscorpus, "run_voice_protocol", lambda **kw: rows_for(kw["seed"]))
    monkeypatch.setattr(stage1_crosscorpus, "stage1_member_check", lambda **kw: type(
        "Check", (), {"format_table": lambda self: "members", "to_dict": lambda self: {}})())
    out = tmp_path / "seeds.json"
    assert cli.main(["eval", "--cross-corpus", "--data", str(tmp_path), "--timelines", str(root),
                     "--json", str(out), "--no-progress", "--seeds", "0,1"]) == 0
    printed = capsys.readouterr().out
    assert "Seed 0:" in printed and "Seed 1:" in printed and "Over the 2 seeds" in printed
    saved = json.loads(out.read_text())
    assert saved["seeds"] == [0, 1] and [run["seed"] for run in saved["runs"]] == [0, 1]
    top = next(r for r in saved["summary"] if r["set"] == "mean (held-out)")
    assert top["gender_error"] == pytest.approx(0.5)                # the first seed's, as with one seed
    assert next(r for r in saved["over_seeds"] if r["set"] == "mean (held-out)")["gender_error"] == pytest.approx(.25)


HERE, THERE = "ffmpeg 5.1-here", "ffmpeg 9.0-there"


@pytest.mark.parametrize("built_by, says, differs", [
    ({"cv": HERE, "emodb": HERE, MIXED: HERE}, f"Timelines encoded by {HERE}, the ffmpeg this run uses", False),
    ({"cv": THERE, "emodb": THERE, MIXED: THERE}, f"Timelines encoded by {THERE}, not by this run's {HERE}", True),
    ({"cv": THERE, "emodb": HERE, MIXED: None},
     (f"Timelines encoded by {THERE} (cv), {HERE} (emodb), encoder not recorded ({MIXED}); not all by this run's "
      f"{HERE}"), True),
    ({"cv": None, "emodb": None, MIXED: None}, f"Timelines: encoder not recorded; this run uses {HERE}", True),
], ids=["same", "another", "per-folder", "not-recorded"])
def test_the_eval_names_the_ffmpeg_that_encoded_its_timelines(tree, tmp_path, monkeypatch, capsys, built_by, says,
                                                              differs):
    """Figures on timelines another ffmpeg encoded differ by tenths of a point (the Opus bytes differ), and nothing
    said which ffmpeg had encoded a tree: one line before the table names it (per folder where they differ) and
    says when it is not the ffmpeg of this run; the JSON carries both."""
    from dramapic import cli, media
    from dramapic.lab import crosscorpus, stage1_crosscorpus

    root, dev = tree
    for folder, encoder in built_by.items():  # markers as build_timelines writes them (None: from before it recorded)
        marker = {"generator": "dramapic.lab.timelines", "folder": folder, "seed": 3}
        (root / folder / "build.json").write_text(json.dumps(marker if encoder is None else
                                                             {**marker, "encoder": encoder}))
    result = {"schema": "dramapic/1", "source": {"duration": 2.0}, "segments": [
        {"start": 0.0, "end": 2.0, "label": "voice", "gender": "female", "speaker": "S1", "confidence": 0.9}]}
    rows = [(t, held_out(t), score_result(result, load_reference(t.labels_csv), collar_s=0.0))
            for t in find_timelines(root, dev_mixes=dev)]
    (tmp_path / "manifest.csv").write_text("path,label\n")
    monkeypatch.setattr(media, "opus_encoder", lambda: HERE)
    monkeypatch.setattr(crosscorpus, "run_voice_protocol", lambda **kw: rows)
    monkeypatch.setattr(stage1_crosscorpus, "stage1_member_check", lambda **kw: type(
        "Check", (), {"format_table": lambda self: "members", "to_dict": lambda self: {}})())
    out = tmp_path / "xc.json"
    assert cli.main(["eval", "--cross-corpus", "--data", str(tmp_path), "--timelines", str(root), "--mixes", str(dev),
                     "--json", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    (line,) = [x for x in printed.splitlines() if x.startswith("Timelines")]
    assert line.startswith(says), line
    assert ("may differ by a few tenths of a point" in line) == differs
    assert printed.index(line) < printed.index("mean (held-out)")        # before the table
    saved = json.loads(out.read_text())
    assert saved["encoders"] == built_by and saved["run_encoder"] == HERE


@pytest.mark.parametrize("damage, says", [
    (lambda d: (d / "cv_01.json").write_text("{broken"), "cannot read the timeline recipe"),
    (lambda d: (d / "cv_01.json").write_text("[1, 2]"), "is not a timeline recipe"),
    (lambda d: (d / "cv_01.json").write_text('{"speakers": ["cv_3"]}'), "is not a timeline recipe"),
    (lambda d: (d / "cv_01.opus").unlink(), "has no cv_01.opus beside it"),
    (lambda d: (d / "cv_01.rttm").unlink(), "has no cv_01.rttm beside it"),
])
def test_a_broken_timeline_is_one_input_error_when_the_tree_is_read(tree, damage, says):
    """A recipe that is not JSON was a JSONDecodeError traceback out of ``eval --cross-corpus --timelines``; a
    timeline without its audio or RTTM failed only when its turn came, after the window table and the fits."""
    root, _ = tree
    damage(root / "cv")
    with pytest.raises(InputError, match=says):
        find_timelines(root)


@pytest.mark.parametrize("mixes, says", [("missing", "mixes folder not found"), ("empty", "no *.labels.csv files")])
def test_a_regression_check_folder_without_dev_mixes_is_refused(tree, tmp_path, monkeypatch, capsys, mixes, says):
    """``--cross-corpus --mixes DIR`` with a wrong DIR ran the whole protocol and printed no dev-mix row, without a
    word: the folder is globbed for timelines along with the tree."""
    from dramapic import cli
    from dramapic.lab import crosscorpus

    root, _ = tree
    (tmp_path / "manifest.csv").write_text("path,label\n")
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(crosscorpus, "run_voice_protocol", lambda **kw: pytest.fail("ran without the dev mixes"))
    assert cli.main(["eval", "--cross-corpus", "--data", str(tmp_path), "--timelines", str(root), "--mixes",
                     str(tmp_path / mixes), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dramapic: error: ") and says in err[0], err


def test_a_run_that_told_no_speakers_apart_has_no_count_figure(tree):
    """With diarization switched off every timeline predicts 0 speakers: "count exact 0 %" would read as a measured
    failure; it is "-" (NaN), and a set where some files told speakers apart counts those only."""
    root, dev = tree

    def score_fn(model, timeline):
        result = {"schema": "dramapic/1", "source": {"duration": 2.0}, "segments": [
            {"start": 0.0, "end": 1.0, "label": "voice", "gender": "female", "speaker": None},
            {"start": 1.0, "end": 2.0, "label": "voice", "gender": "male", "speaker": None}]}
        # cv_00 is scored as a run with speakers on that found none: a real miss, counted
        return score_result(result, load_reference(timeline.labels_csv), collar_s=0.0,
                            speakers_scored=timeline.name == "cv_00")

    rows = cross_corpus(find_timelines(root, dev_mixes=dev), fit_fn=lambda excluded: None, score_fn=score_fn)
    by = {r["set"]: r for r in summarize(rows)}
    assert by["cv"]["count_exact"] == 0.0 and by["cv"]["der"] == 1.0  # over cv_00 alone
    assert math.isnan(by["emodb"]["count_exact"]) and math.isnan(by["emodb"]["der"])
    assert by["emodb"]["gender_error"] == 0.0
    assert by["mean (held-out)"]["count_exact"] == 0.0  # the mean of the sets that have the figure
    line = next(r for r in format_table(summarize(rows)).splitlines() if r.startswith("emodb")).split()
    assert line[-3:-1] == ["-", "-"]  # DER %, count exact %
