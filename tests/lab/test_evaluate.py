"""Tests of dramapic.lab.evaluate: fast, no model runs (predictions are built from the references themselves)."""

from __future__ import annotations

import csv
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from dramapic import cli
from dramapic.lab.evaluate import COLLAR_S, Report, aggregate, evaluate_mixes, score_result
from dramapic.lab.reference import load_reference
from dramapic.result import AnalysisResult
from dramapic.writers import write_json_atomic


def main(argv: list[str]) -> int:
    """``dramapic eval`` (the lab's own ``main`` was folded into the one CLI)."""
    return cli.main(["eval", *argv, "--no-progress"])
from helpers import DEV_MIXES

needs_mixes = pytest.mark.skipif(
    not (DEV_MIXES / "devmix_05.labels.csv").is_file(),
    reason=f"dev mixes not found at {DEV_MIXES} (the shared data folder is not mounted next to the repo)")

NO_OVERLAP_MIX = "devmix_05"   # two speakers (female + male), no overlapping speech
OVERLAP_MIX = "devmix_17"      # four speakers with female+male overlaps


# ------------------------------------------------------------------------------------------------ helpers
def read_rows(labels_csv: Path) -> list[dict]:
    """labels.csv read independently of the module under test."""
    with open(labels_csv, newline="") as handle:
        return [dict(r, start=float(r["start"]), end=float(r["end"])) for r in csv.DictReader(handle)]


def read_turns(rttm: Path) -> list[tuple[float, float, str]]:
    turns = []
    for line in rttm.read_text().splitlines():
        p = line.split()
        turns.append((float(p[3]), float(p[3]) + float(p[4]), p[7]))
    return turns


def result_dict(segments: list[dict], duration: float) -> dict:
    """A complete dramapic/1 dict around the given segments."""
    segs = [dict({"gender": None, "speaker": None, "confidence": 1.0, "scores": {}}, **s) for s in segments]
    return {
        "schema": "dramapic/1",
        "source": {"path": "x.opus", "duration": duration, "sha256": "0" * 64},
        "pipeline": {"name": "test", "version": "0"},
        "models": [],
        "segments": segs,
        "summary": {"duration": duration, "shares": {"voice": 0, "song": 0, "noise": 0, "silence": 0},
                    "gender_shares": {"female": 0, "male": 0}, "speakers": [],
                    "genre": {"label": "drama", "confidence": 0.0, "scores": {}}},
    }


def perfect_segments(name: str, *, directory: Path = DEV_MIXES, overlap_speakers: str = "first") -> list[dict]:
    """Segments equal to labels.csv; voice speakers taken from the RTTM (renamed S1, S2, ... to test the
    optimal mapping), one gender per segment as the contract allows."""
    rows = read_rows(directory / f"{name}.labels.csv")
    turns = read_turns(directory / f"{name}.rttm")
    ids: dict[str, str] = {}
    segments = []
    for r in rows:
        seg = {"start": r["start"], "end": r["end"], "label": r["label"]}
        if r["label"] == "voice":
            mid = (r["start"] + r["end"]) / 2
            active = sorted({spk for a, b, spk in turns if a <= mid < b}, key=r["speaker"].split("+").index)
            assert active, f"no RTTM turn under voice row {r}"
            for spk in active:
                ids.setdefault(spk, f"S{len(ids) + 1}")
            speakers = [ids[s] for s in active]
            seg["speaker"] = "+".join(speakers) if overlap_speakers == "all" else speakers[0]
            seg["gender"] = r["gender"].split("+")[0]
        segments.append(seg)
    return segments


def write_synthetic(directory: Path, name: str, rows: list[tuple], turns: list[tuple]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.labels.csv"
    with open(path, "w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["start", "end", "label", "gender", "speaker"])
        for a, b, lab, g, s in rows:
            w.writerow([f"{a:.3f}", f"{b:.3f}", lab, g, s])
    with open(directory / f"{name}.rttm", "w") as handle:
        for a, b, spk in turns:
            handle.write(f"SPEAKER {name} 1 {a:.3f} {b - a:.3f} <NA> <NA> {spk} <NA> <NA>\n")
    (directory / f"{name}.opus").write_bytes(b"")
    return path


SYNTH_ROWS = [(0.0, 1.0, "silence", "", ""), (1.0, 2.0, "voice", "female", "A"), (2.0, 3.0, "noise", "", "")]
SYNTH_TURNS = [(1.0, 2.0, "A")]


def synth_prediction(voice_start: float, voice_end: float) -> dict:
    return result_dict([
        {"start": 0.0, "end": voice_start, "label": "silence"},
        {"start": voice_start, "end": voice_end, "label": "voice", "gender": "female", "speaker": "S1"},
        {"start": voice_end, "end": 3.0, "label": "noise"},
    ], 3.0)


def collar_keep(rows: list[dict], n: int, collar: float) -> np.ndarray:
    """Independent, loop-based collar mask: frame centres at least ``collar`` from every interior boundary."""
    bounds = [r["start"] for r in rows[1:]]
    return np.array([all(abs((i + 0.5) * 0.01 - b) >= collar - 1e-9 for b in bounds) for i in range(n)])


def frame_labels(rows: list[dict], n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    for r in rows:
        out[int(round(r["start"] * 100)):int(round(r["end"] * 100))] = r["label"]
    return out


# ------------------------------------------------------------------------------------------------ real mixes
@needs_mixes
@pytest.mark.parametrize("name", [NO_OVERLAP_MIX, OVERLAP_MIX])
def test_perfect_prediction_scores_perfectly(name):
    reference = load_reference(DEV_MIXES / f"{name}.labels.csv")
    data = result_dict(perfect_segments(name, overlap_speakers="all"), reference.duration)
    result = AnalysisResult.from_dict(data)
    for scored in (score_result(result, reference), score_result(data, reference)):
        assert scored.accuracy == 1.0
        assert scored.gender_error == 0.0
        assert scored.gender_frames > 0
        assert scored.der == pytest.approx(0.0, abs=1e-9)
        assert scored.composition_error == pytest.approx(0.0, abs=1e-9)
        assert scored.speaker_count_error == 0
        assert scored.uncovered_s == 0.0
        for label, m in scored.class_metrics.items():
            if m["support"]:
                assert m["precision"] == m["recall"] == m["f1"] == 1.0, label
        cm = scored.confusion_matrix
        assert cm.sum() == scored.scored_frames and np.count_nonzero(cm - np.diag(np.diag(cm))) == 0


@needs_mixes
def test_perfect_prediction_single_speaker_per_segment_has_small_der():
    """The contract allows one speaker per segment, so overlapped speech costs a little DER (missed speaker)."""
    reference = load_reference(DEV_MIXES / f"{OVERLAP_MIX}.labels.csv")
    scored = score_result(result_dict(perfect_segments(OVERLAP_MIX), reference.duration), reference)
    assert 0.0 < scored.der < 0.02
    assert scored.accuracy == 1.0 and scored.gender_error == 0.0
    assert scored.der_components["missed detection"] > 0
    assert scored.der_components["false alarm"] == pytest.approx(0.0, abs=1e-9)


@needs_mixes
def test_no_overlap_perfect_female_share_error_is_zero():
    reference = load_reference(DEV_MIXES / f"{NO_OVERLAP_MIX}.labels.csv")
    scored = score_result(result_dict(perfect_segments(NO_OVERLAP_MIX), reference.duration), reference)
    rows = read_rows(DEV_MIXES / f"{NO_OVERLAP_MIX}.labels.csv")
    voice = sum(r["end"] - r["start"] for r in rows if r["label"] == "voice")
    female = sum(r["end"] - r["start"] for r in rows if r["label"] == "voice" and r["gender"] == "female")
    assert scored.female_share_ref == pytest.approx(female / voice, abs=1e-6)
    assert scored.female_share_error == pytest.approx(0.0, abs=1e-9)


@needs_mixes
@pytest.mark.parametrize("name", [NO_OVERLAP_MIX, OVERLAP_MIX])
def test_voice_predicted_as_song(name):
    rows = read_rows(DEV_MIXES / f"{name}.labels.csv")
    reference = load_reference(DEV_MIXES / f"{name}.labels.csv")
    segments = [{"start": s["start"], "end": s["end"], "label": "song" if s["label"] == "voice" else s["label"]}
                for s in perfect_segments(name)]
    data = result_dict(segments, reference.duration)

    # without a collar: the non-voice share of the non-silent time, straight from the CSV durations
    seconds = {k: sum(r["end"] - r["start"] for r in rows if r["label"] == k) for k in ("voice", "song", "noise")}
    expected = (seconds["song"] + seconds["noise"]) / sum(seconds.values())
    no_collar = score_result(data, reference, collar_s=0.0)
    assert no_collar.accuracy == pytest.approx(expected, abs=1e-6)
    assert no_collar.class_metrics["voice"]["recall"] == 0.0
    assert no_collar.class_metrics["song"]["recall"] == 1.0
    assert no_collar.gender_error == 1.0

    # with the default collar: the same ratio over frames outside an independently computed collar
    n = int(round(rows[-1]["end"] * 100))
    keep = collar_keep(rows, n, COLLAR_S)
    labels = frame_labels(rows, n)
    nonsilent = keep & (labels != "silence")
    expected_collar = np.sum(nonsilent & (labels != "voice")) / np.sum(nonsilent)
    scored = score_result(data, reference)
    assert scored.scored_frames == int(keep.sum())
    assert scored.accuracy == pytest.approx(expected_collar, abs=1e-12)
    assert scored.class_metrics["voice"]["recall"] == 0.0
    assert np.isnan(scored.class_metrics["voice"]["precision"])
    assert scored.der == pytest.approx(1.0)     # no voice predicted: all speech missed


@needs_mixes
def test_swapped_genders():
    reference = load_reference(DEV_MIXES / f"{OVERLAP_MIX}.labels.csv")
    swap = {"female": "male", "male": "female"}
    segments = [dict(s, gender=swap[s["gender"]]) if s["label"] == "voice" else s
                for s in perfect_segments(OVERLAP_MIX)]
    scored = score_result(result_dict(segments, reference.duration), reference)
    assert scored.gender_error == pytest.approx(1.0)
    assert scored.accuracy == 1.0
    # prediction: the voice rows whose (first) gender is male are now female; reference: overlaps count half
    rows = read_rows(DEV_MIXES / f"{OVERLAP_MIX}.labels.csv")
    voice = [r for r in rows if r["label"] == "voice"]
    total = sum(r["end"] - r["start"] for r in voice)
    pred = sum(r["end"] - r["start"] for r in voice if r["gender"].split("+")[0] == "male") / total
    ref = sum((r["end"] - r["start"]) * r["gender"].split("+").count("female") / len(r["gender"].split("+"))
              for r in voice) / total
    assert scored.female_share_ref == pytest.approx(ref, abs=1e-6)
    assert scored.female_share_pred == pytest.approx(pred, abs=1e-6)
    assert scored.female_share_error == pytest.approx(100 * abs(pred - ref), abs=1e-4)


@needs_mixes
def test_reference_matches_index():
    reference = load_reference(DEV_MIXES / f"{OVERLAP_MIX}.labels.csv")
    with open(DEV_MIXES / "index.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["name"] == OVERLAP_MIX)
    assert reference.duration == pytest.approx(float(row["duration_s"]), abs=0.01)
    assert len(reference.labels) == int(round(float(row["duration_s"]) * 100))
    assert np.sum(reference.labels == 0) / 100 == pytest.approx(float(row["voice_s"]), abs=0.02)
    assert reference.speakers == tuple(sorted(row["speakers"].split("+")))
    assert reference.to_dict()["overlap_seconds"] == pytest.approx(float(row["overlap_s"]), abs=0.02)


@needs_mixes
def test_evaluate_mixes_with_fake_analysis_and_report():
    seen: list[Path] = []
    calls: list[tuple] = []

    def analyze_fn(path: Path) -> dict:
        seen.append(path)
        name = path.name.removesuffix(".opus")
        rows = read_rows(DEV_MIXES / f"{name}.labels.csv")
        return result_dict(perfect_segments(name), rows[-1]["end"])

    report = evaluate_mixes(DEV_MIXES, analyze_fn=analyze_fn, limit=3,
                            progress=lambda stage, done, total: calls.append((stage, done, total)))
    assert [p.name for p in seen] == ["devmix_01.opus", "devmix_02.opus", "devmix_03.opus"]
    assert calls[0] == ("evaluate", 0, 3) and calls[-1] == ("evaluate", 3, 3)
    assert report.accuracy == 1.0 and report.gender_error == 0.0
    data = report.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["total"]["files"] == 3 and len(data["files"]) == 3
    table = report.format_table()
    assert "devmix_02" in table and "TOTAL" in table


# ------------------------------------------------------------------------------------------------ synthetic
def test_collar_excludes_frames_near_boundaries(tmp_path):
    reference = load_reference(write_synthetic(tmp_path, "syn", SYNTH_ROWS, SYNTH_TURNS))
    assert reference.boundaries == (1.0, 2.0)
    # the voice segment is 0.2 s late on both edges: inside the 0.25 s collar, so no scored error
    shifted = synth_prediction(1.2, 2.2)
    scored = score_result(shifted, reference)
    assert scored.scored_frames == 300 - 2 * 50
    assert scored.accuracy == 1.0 and scored.gender_error == 0.0
    # without the collar the 2 x 20 shifted frames are errors
    bare = score_result(shifted, reference, collar_s=0.0)
    assert bare.scored_frames == 300
    cm = bare.confusion_matrix     # rows/cols: voice, song, noise, silence
    assert cm[0, 3] == 20 and cm[2, 0] == 20
    assert bare.accuracy == pytest.approx((200 - 40) / 200)
    assert bare.gender_error == pytest.approx(20 / 100)
    # a 0.3 s shift leaves 5 frames outside the collar on each edge
    late = score_result(synth_prediction(1.3, 2.3), reference)
    assert late.confusion_matrix[0, 3] == 5 and late.confusion_matrix[2, 0] == 5
    # shares are over the whole file, regardless of the collar: silence +20 frames, noise -20 of 300
    assert scored.composition_error == pytest.approx(100 * (20 / 300 + 20 / 300) / 4)
    assert score_result(synth_prediction(1.0, 2.0), reference).composition_error == pytest.approx(0.0, abs=1e-9)
    # DER's own 0.5 s collar (+-0.25 s) absorbs the 0.2 s shift
    assert scored.der == pytest.approx(0.0, abs=1e-9)
    assert late.der > 0


def test_uncovered_time_counts_as_silence_and_unknown_label_fails(tmp_path):
    reference = load_reference(write_synthetic(tmp_path, "syn", SYNTH_ROWS, SYNTH_TURNS))
    short = result_dict([{"start": 0.0, "end": 1.0, "label": "silence"},
                         {"start": 1.0, "end": 2.0, "label": "voice", "gender": "female", "speaker": "S1"}], 2.0)
    scored = score_result(short, reference, collar_s=0.0)
    assert scored.uncovered_s == pytest.approx(1.0)
    assert scored.confusion_matrix[2, 3] == 100
    with pytest.raises(ValueError, match="unknown label"):
        score_result(result_dict([{"start": 0.0, "end": 3.0, "label": "music"}], 3.0), reference)


def test_overlap_gender_rules(tmp_path):
    rows = [(0.0, 1.0, "voice", "female", "A"), (1.0, 2.0, "voice", "female+male", "A+B"),
            (2.0, 3.0, "voice", "male", "B"), (3.0, 4.0, "voice", "male+male", "B+C")]
    turns = [(0.0, 2.0, "A"), (1.0, 4.0, "B"), (3.0, 4.0, "C")]
    reference = load_reference(write_synthetic(tmp_path, "ovl", rows, turns))
    # predict everything as male voice: female frames wrong, female+male excluded, male+male counts as male
    data = result_dict([{"start": 0.0, "end": 4.0, "label": "voice", "gender": "male", "speaker": "S1"}], 4.0)
    scored = score_result(data, reference, collar_s=0.0)
    assert scored.gender_frames == 300
    assert scored.gender_errors == 100
    assert scored.female_share_ref == pytest.approx((100 + 50) / 400)
    assert scored.female_share_pred == 0.0
    assert scored.female_share_error == pytest.approx(37.5)
    assert scored.speakers_ref == 3 and scored.speaker_count_error == 2


def test_abstained_gender_is_left_out_of_the_error_and_reported_as_abstention(tmp_path):
    rows = [(0.0, 1.0, "voice", "female", "A"), (1.0, 2.0, "voice", "male", "B"), (2.0, 4.0, "voice", "female", "A")]
    turns = [(0.0, 1.0, "A"), (1.0, 2.0, "B"), (2.0, 4.0, "A")]
    reference = load_reference(write_synthetic(tmp_path, "abst", rows, turns))
    # right, unknown (abstained), wrong for half of the last turn, right for the other half
    data = result_dict([{"start": 0.0, "end": 1.0, "label": "voice", "gender": "female", "speaker": "S1"},
                        {"start": 1.0, "end": 2.0, "label": "voice", "gender": None, "speaker": "S2"},
                        {"start": 2.0, "end": 3.0, "label": "voice", "gender": "male", "speaker": "S1"},
                        {"start": 3.0, "end": 4.0, "label": "voice", "gender": "female", "speaker": "S1"}], 4.0)
    scored = score_result(data, reference, collar_s=0.0)
    assert scored.gender_frames == 300 and scored.gender_errors == 100   # the unknown second is not scored
    assert scored.abstention == pytest.approx(0.25)
    assert scored.female_share_pred == pytest.approx(2 / 3)   # over the 3 s with a known gender
    assert scored.female_share_ref == pytest.approx(0.75)
    report = aggregate([scored, scored])
    assert report.abstention == pytest.approx(0.25) and report.to_dict()["total"]["abstention"] == pytest.approx(0.25)
    assert "abst" in report.format_table()


def test_a_run_with_gender_switched_off_has_no_gender_figures_not_100_percent_errors(tmp_path):
    """eval --no-gender printed gender error 1.000, abstention 1.000 and female-share error 100.0: every voice frame
    of a run that decided no gender was scored as unknown. Its gender figures are "-" (null in the JSON), and pooled
    figures are taken over the files whose run decided gender."""
    rows = [(0.0, 2.0, "voice", "female", "A"), (2.0, 4.0, "voice", "male", "B")]
    reference = load_reference(write_synthetic(tmp_path, "nog", rows, [(0.0, 2.0, "A"), (2.0, 4.0, "B")]))
    segments = [{"start": 0.0, "end": 2.0, "label": "voice", "gender": None, "speaker": "S1"},
                {"start": 2.0, "end": 4.0, "label": "voice", "gender": None, "speaker": "S2"}]
    off = result_dict(segments, 4.0)
    off["summary"] = {"gender_shares": None}  # what a --no-gender run writes
    scored = score_result(off, reference, collar_s=0.0)
    assert not scored.gender_scored
    assert np.isnan(scored.gender_error) and np.isnan(scored.abstention) and np.isnan(scored.female_share_error)
    assert scored.accuracy == 1.0 and scored.speakers_pred == 2  # the rest is scored as before
    data = scored.to_dict()
    assert (data["gender_scored"], data["gender_error"], data["abstention"], data["female_share_error"]) == (
        False, None, None, None)
    # abstaining on every frame with gender on stays a measured 100 % abstention
    on = score_result(result_dict(segments, 4.0), reference, collar_s=0.0)
    assert on.gender_scored and on.abstention == 1.0
    assert not score_result(result_dict(segments, 4.0), reference, collar_s=0.0, gender_scored=False).gender_scored
    total = aggregate([scored, scored])
    assert np.isnan(total.gender_error) and np.isnan(total.abstention) and np.isnan(total.female_share_error)
    line = next(r for r in total.format_table().splitlines() if r.startswith("TOTAL")).split()
    assert line[6:9] == ["-", "-", "-"]  # gend err, abst, fem pp
    mixed = aggregate([scored, on])  # pooled over the file that decided gender only
    assert mixed.abstention == 1.0 and mixed.female_share_error == on.female_share_error == 50.0


def test_a_run_with_speakers_switched_off_has_no_der_or_count_not_100_percent(tmp_path):
    """eval --no-speakers printed DER 1.000 and "0/2" speakers per file (and count exact 0 in the cross-corpus
    table): the speaker-less turns of a run that told nobody apart were scored as missed speech. Its DER and
    count error are "-" (null in the JSON), and pooled figures are taken over the files that told speakers apart."""
    rows = [(0.0, 2.0, "voice", "female", "A"), (2.0, 4.0, "voice", "male", "B")]
    reference = load_reference(write_synthetic(tmp_path, "nospk", rows, [(0.0, 2.0, "A"), (2.0, 4.0, "B")]))
    segments = [{"start": 0.0, "end": 2.0, "label": "voice", "gender": "female", "speaker": None},
                {"start": 2.0, "end": 4.0, "label": "voice", "gender": "male", "speaker": None}]
    off = result_dict(segments, 4.0)
    off["summary"] = {"gender_shares": {"female": 0.5, "male": 0.5}, "speakers": None}  # a --no-speakers run
    scored = score_result(off, reference, collar_s=0.0)
    assert not scored.speakers_scored and scored.gender_scored
    assert np.isnan(scored.der) and np.isnan(scored.speaker_count_error)
    assert scored.gender_error == 0.0 and scored.accuracy == 1.0  # the rest is scored as before
    data = scored.to_dict()
    assert (data["speakers_scored"], data["der"], data["speaker_count_error"], data["der_components"]) == (
        False, None, None, None)
    # the same turns with diarization on (no summary: counts as on) are a measured 100 % DER
    on = score_result(result_dict(segments, 4.0), reference, collar_s=0.0)
    assert on.speakers_scored and on.der == 1.0 and on.speaker_count_error == 2
    assert not score_result(result_dict(segments, 4.0), reference, collar_s=0.0, speakers_scored=False).speakers_scored
    total = aggregate([scored, scored])
    assert np.isnan(total.der) and np.isnan(total.speaker_count_error)
    json.dumps(total.to_dict(), allow_nan=False)
    table = total.format_table().splitlines()
    assert next(r for r in table if r.startswith("nospk")).split()[-2:] == ["-", "-/2"]  # DER, spk p/r
    assert next(r for r in table if r.startswith("TOTAL")).split()[-2:] == ["-", "-"]
    right = score_result(result_dict([{**s, "speaker": k} for s, k in zip(segments, ("S1", "S2"))], 4.0), reference,
                         collar_s=0.0)
    mixed = aggregate([scored, right])  # pooled over the file that told speakers apart only
    assert mixed.der == 0.0 and mixed.speaker_count_error == 0.0
    assert mixed.der_components["total"] == pytest.approx(right.der_components["total"])


def test_aggregate_pools_frames_and_der(tmp_path):
    reference = load_reference(write_synthetic(tmp_path, "syn", SYNTH_ROWS, SYNTH_TURNS))
    good = score_result(synth_prediction(1.0, 2.0), reference, collar_s=0.0)
    bad = score_result(result_dict([{"start": 0.0, "end": 3.0, "label": "silence"}], 3.0), reference,
                       collar_s=0.0)
    report = aggregate([good, bad])
    assert isinstance(report, Report)
    assert report.accuracy == pytest.approx(200 / 400)
    assert report.gender_error == pytest.approx(100 / 200)
    assert (report.confusion_matrix == good.confusion_matrix + bad.confusion_matrix).all()
    comps = report.der_components
    assert comps["total"] == pytest.approx(good.der_components["total"] + bad.der_components["total"])
    assert report.der == pytest.approx((comps["false alarm"] + comps["missed detection"] + comps["confusion"])
                                       / comps["total"])
    assert report.composition_error == pytest.approx((good.composition_error + bad.composition_error) / 2)
    data = report.to_dict()
    json.dumps(data, allow_nan=False)    # NaN (undefined precision) is written as null
    assert data["total"]["classes"]["song"]["precision"] is None


def test_main_with_stub_analysis(tmp_path, monkeypatch, capsys):
    mixes = tmp_path / "mixes"
    for name in ("devmix_01", "devmix_02"):
        write_synthetic(mixes, name, SYNTH_ROWS, SYNTH_TURNS)
    analysis = types.ModuleType("dramapic.analysis.analyze")
    analysis.analyze = lambda path, pipeline: synth_prediction(1.0, 2.0)
    config = types.ModuleType("dramapic.config")
    config.load_pipeline = lambda name: object()
    monkeypatch.setitem(sys.modules, "dramapic.analysis.analyze", analysis)
    monkeypatch.setitem(sys.modules, "dramapic.config", config)
    out = tmp_path / "out" / "report.json"
    assert main(["--mixes", str(mixes), "--json", str(out), "--limit", "1"]) == 0
    printed = capsys.readouterr().out
    assert "devmix_01" in printed and "devmix_02" not in printed
    data = json.loads(out.read_text())
    assert data["total"]["accuracy"] == 1.0 and len(data["files"]) == 1
    assert [p.name for p in out.parent.iterdir()] == ["report.json"]    # no temp file left behind


def test_write_json_atomic_replaces(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    write_json_atomic({"a": 1}, target)
    assert json.loads(target.read_text()) == {"a": 1}
    with pytest.raises(ValueError):
        write_json_atomic({"a": float("nan")}, target)
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_variants_compare_members_ensemble_and_gender_cascades_on_a_real_mix(capsys):
    if not (DEV_MIXES / "devmix_03.labels.csv").is_file():
        pytest.skip(f"dev mixes not found at {DEV_MIXES}")
    from dramapic import cli
    from dramapic.config import load_pipeline
    from dramapic.lab.variants import GENDER_VARIANTS, evaluate_variants

    pipeline = load_pipeline(None)
    report = evaluate_variants(DEV_MIXES, pipeline, limit=1)
    assert list(report.stage1) == ["rule", *pipeline.stage1.members, "ensemble", "ensemble-unguarded"]
    assert set(report.gender) == set(GENDER_VARIANTS)
    for rep in (*report.stage1.values(), *report.gender.values()):
        assert len(rep.files) == 1 and 0.0 <= rep.accuracy <= 1.0
    # the product (stage 2 inside stage-1 voice, speakers) is scored with DER; gender with a perfect stage 1 is
    # at least as good as gender on the windows stage 1 found
    assert report.gender["sequential"].der < 1.0
    # the window-level variants and stage 1 alone tell no speakers apart: no DER, not a measured 100 %
    assert np.isnan(report.gender["sequential_windows"].der) and np.isnan(report.stage1["ensemble"].der)
    assert report.gender["sequential_windows_oracle_stage1"].gender_error <= \
        report.gender["sequential_windows"].gender_error + 1e-9
    table = report.format_table()
    assert "ensemble" in table and "independent" in table
    assert json.loads(json.dumps(report.to_dict(), allow_nan=False))["stage1"]["ensemble"]["accuracy"] > 0.5
    assert cli.main(["eval", "--mixes", str(DEV_MIXES), "--limit", "1", "--variants", "--no-progress"]) == 0
    assert "sequential_windows" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ calibration
def test_calibration_bins_records_by_stated_confidence_and_weights_the_error_by_seconds():
    from dramapic.lab.evaluate import calibration

    table = calibration([(0.95, 10.0, 9.5), (0.75, 10.0, 5.0), (1.0, 0.0, 0.0)], low=0.5)
    assert len(table.bins) == 10 and table.bins[0][:2] == (0.5, 0.55) and table.bins[-1][1] == 1.0
    by_low = {round(b[0], 2): b for b in table.bins}
    assert by_low[0.95][2:] == pytest.approx((10.0, 0.95, 0.95))    # said 0.95, right 95 % of the time
    assert by_low[0.75][2:] == pytest.approx((10.0, 0.75, 0.5))     # said 0.75, right half the time
    assert table.seconds == 20.0
    assert table.ece == pytest.approx(0.5 * 0.0 + 0.5 * 0.25)
    assert np.isnan(by_low[0.6][3]) and table.to_dict()["bins"][2]["confidence"] is None
    assert "ECE 0.125 over 20.0 s" in table.format_table()
    # a perfectly calibrated set of claims has no error; no claims have no defined error
    assert calibration([(0.8, 5.0, 4.0), (0.3, 5.0, 1.5)], low=0.0).ece == pytest.approx(0.0)
    assert np.isnan(calibration([]).ece)
    for bad in ([(1.2, 1.0, 1.0)], [(0.9, 1.0, 2.0)], [(-0.1, 1.0, 0.0)]):
        with pytest.raises(ValueError):
            calibration(bad)
    with pytest.raises(ValueError):
        calibration([], n_bins=0)
    with pytest.raises(ValueError):
        calibration([], low=1.0)


def test_score_result_records_what_each_segment_claimed_and_how_often_it_was_right(tmp_path):
    rows = [(0.0, 1.0, "voice", "female", "A"), (1.0, 2.0, "voice", "male", "B"), (2.0, 3.0, "noise", "", ""),
            (3.0, 4.0, "voice", "female", "A")]
    turns = [(0.0, 1.0, "A"), (1.0, 2.0, "B"), (3.0, 4.0, "A")]
    reference = load_reference(write_synthetic(tmp_path, "cal", rows, turns))
    data = result_dict([
        # one "female" claim over a woman and a man: right on half of its gender frames
        {"start": 0.0, "end": 2.0, "label": "voice", "gender": "female", "speaker": "S1", "confidence": 0.9,
         "scores": {"voice": 0.9, "female": 0.8, "male": 0.2}},
        # voice claimed over noise: a stage-1 error, but no gender frame (nothing to judge the gender on)
        {"start": 2.0, "end": 3.0, "label": "voice", "gender": "male", "speaker": "S2", "confidence": 0.6,
         "scores": {"voice": 0.6, "female": 0.05, "male": 0.95}},
        # unknown gender: nothing claimed
        {"start": 3.0, "end": 4.0, "label": "voice", "gender": None, "speaker": "S1", "confidence": 0.7,
         "scores": {"voice": 0.7}}], 4.0)
    scored = score_result(data, reference, collar_s=0.0)
    assert np.allclose(scored.gender_reliability, [(0.8, 2.0, 1.0)])
    assert np.allclose(scored.label_reliability, [(0.9, 2.0, 2.0), (0.6, 1.0, 0.0), (0.7, 1.0, 1.0)])
    assert scored.gender_calibration.ece == pytest.approx(0.3)
    assert scored.to_dict()["gender_ece"] == pytest.approx(0.3)
    report = aggregate([scored, scored])
    assert report.gender_calibration.seconds == pytest.approx(4.0)
    assert report.to_dict()["total"]["gender_calibration"]["ece"] == pytest.approx(0.3)
    assert "gender probability 0.300" in report.format_table()
    # a result object carries the same claims as its dict form
    result = AnalysisResult.from_dict(data)
    assert score_result(result, reference, collar_s=0.0).gender_reliability == scored.gender_reliability


def _stub_analysis(monkeypatch) -> list:
    """``dramapic eval`` with an analysis that records what it was asked to analyse."""
    analysed = []
    analysis = types.ModuleType("dramapic.analysis.analyze")
    analysis.analyze = lambda path, pipeline: analysed.append(path) or synth_prediction(1.0, 2.0)
    config = types.ModuleType("dramapic.config")
    config.load_pipeline = lambda name: object()
    monkeypatch.setitem(sys.modules, "dramapic.analysis.analyze", analysis)
    monkeypatch.setitem(sys.modules, "dramapic.config", config)
    return analysed


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "devmix_02.labels.csv").write_text("foo,bar\n1,2\n"), "not a labels file"),
    (lambda d: (d / "devmix_02.labels.csv").write_text("start,end,label\n0,abc,noise\n"), "must be seconds"),
    # they parse as numbers: an OverflowError / ValueError traceback when the frames were counted
    (lambda d: (d / "devmix_02.labels.csv").write_text("start,end,label\n0,inf,noise\n"), "must be seconds"),
    (lambda d: (d / "devmix_02.labels.csv").write_text("start,end,label\n0,nan,noise\n"), "must be seconds"),
    (lambda d: (d / "devmix_02.labels.csv").write_text("start,end,label\n0,1,music\n"), "unknown label"),
    (lambda d: (d / "devmix_02.rttm").write_text("SPEAKER devmix_02 1 abc\n"), "not an RTTM SPEAKER line"),
    (lambda d: (d / "devmix_02.rttm").unlink(), "RTTM file not found"),
    (lambda d: (d / "devmix_02.opus").unlink(), "devmix_02.opus is missing"),
])
def test_a_broken_mix_is_one_line_before_any_analysis(tmp_path, monkeypatch, capsys, damage, message):
    mixes = tmp_path / "mixes"
    for name in ("devmix_01", "devmix_02"):
        write_synthetic(mixes, name, SYNTH_ROWS, SYNTH_TURNS)
    damage(mixes)
    analysed = _stub_analysis(monkeypatch)
    assert main(["--mixes", str(mixes)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dramapic: error: ") and message in err and len(err.splitlines()) == 1
    assert analysed == []    # refused before the first mix was analysed


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "devmix_02.labels.csv").write_text("start,end,label\n0,1,music\n"), "unknown label"),
    (lambda d: (d / "devmix_02.rttm").unlink(), "RTTM file not found"),
    (lambda d: (d / "devmix_02.opus").unlink(), "devmix_02.opus is missing"),
])
def test_variants_refuse_a_broken_mix_before_any_model_loads(tmp_path, monkeypatch, capsys, damage, message):
    """``eval --variants`` read each mix's labels and audio only when its turn came: a broken last mix ended the run
    after every mix before it had been scored (minutes each)."""
    from dramapic import media
    from dramapic.analysis import stage1

    mixes = tmp_path / "mixes"
    for name in ("devmix_01", "devmix_02"):
        write_synthetic(mixes, name, SYNTH_ROWS, SYNTH_TURNS)
    damage(mixes)
    monkeypatch.setattr(stage1.Stage1Ensemble, "from_manifest",
                        classmethod(lambda *a, **k: pytest.fail("loaded the models before checking the mixes")))
    monkeypatch.setattr(media, "probe", lambda *a, **k: pytest.fail("decoded a mix before checking the others"))
    assert main(["--mixes", str(mixes), "--variants"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dramapic: error: ") and message in err and len(err.splitlines()) == 1


def test_data_and_work_are_taken_where_the_mixes_use_them(tmp_path, monkeypatch):
    """``--reference speech`` reads --data and keeps its copy under --work, ``--scenes`` keeps its copy there: those
    stay allowed (the refusal is of a flag that does nothing)."""
    from dramapic.lab import eval_command

    seen = []
    monkeypatch.setattr(eval_command, "_speech_reference",
                        lambda args, folder, progress: seen.append("speech") or folder)
    monkeypatch.setattr(eval_command, "_scenes", lambda args, folder, progress: seen.append("scenes") or folder)
    analysed = _stub_analysis(monkeypatch)
    mixes = tmp_path / "mixes"
    write_synthetic(mixes, "devmix_01", SYNTH_ROWS, SYNTH_TURNS)
    assert main(["--mixes", str(mixes), "--reference", "speech", "--data", "d", "--work", "w"]) == 0
    assert main(["--mixes", str(mixes), "--scenes", "20", "--work", "w"]) == 0
    assert seen == ["speech", "scenes"] and len(analysed) == 2


@pytest.mark.parametrize("argv, says", [
    (["--song-check", "--data", "d", "--variants"], "--variants applies to --mixes alone, not to --song-check"),
    (["--cross-corpus", "--data", "d", "--variants"], "--variants applies to --mixes alone, not to --cross-corpus"),
    (["--song-check", "--data", "d", "--mixes", "m"], "--mixes does not apply to --song-check"),
    # plain --mixes reads --data only for the speech reference, and keeps only it, the scenes and the far rooms
    # under --work
    (["--mixes", "m", "--data", "d"], "--data applies to --mixes only with --reference speech"),
    (["--mixes", "m", "--variants", "--data", "d"], "--data applies to --mixes only with --reference speech"),
    (["--mixes", "m", "--work", "w"],
     "--work applies to --mixes only with --reference speech, --scenes or --rooms far"),
    (["--mixes", "m", "--data", "d", "--work", "w", "--scenes", "20"], "--data applies to --mixes only with "),
    (["--song-check", "--data", "d", "--work", "w"], "--work applies to --song-check only with --refit-stage1"),
    # they shape the held-out gender and speaker fits: with neither scored none is fitted (--copies did nothing,
    # and every seed ran the same)
    (["--cross-corpus", "--data", "d", "--no-gender", "--no-speakers", "--copies", "3"],
     "--copies does not apply to --cross-corpus without gender and speakers"),
    (["--cross-corpus", "--data", "d", "--no-gender", "--no-speakers", "--seeds", "0,1", "--copies", "1"],
     "--seeds, --copies do not apply to --cross-corpus without gender and speakers"),
])
def test_a_flag_the_mode_would_ignore_is_a_usage_error(argv, says, capsys):
    """``--variants`` with the song check or the cross-corpus protocol, ``--mixes`` with the song check, ``--data``
    or ``--work`` where nothing reads them: the run went on and the flag did nothing, without a word (as --seeds or
    --reference elsewhere are refused)."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"dramapic: error: {says}"), err


@pytest.mark.parametrize("copy", [["--scenes", "20"], ["--reference", "speech", "--data", "DATA"]])
@pytest.mark.parametrize("damage, message", [
    (lambda d: [p.rename(p.with_name(p.name.replace("devmix_", "cv_"))) for p in sorted(d.iterdir())],
     "no devmix_*.labels.csv files in {mixes}"),
    (lambda d: (d / "devmix_02.opus").unlink(), "devmix_02.labels.csv has no audio beside it"),
])
def test_mixes_scored_through_a_copy_are_checked_before_it_is_made(tmp_path, monkeypatch, capsys, copy, damage,
                                                                   message):
    """``--scenes`` and ``--reference speech`` score copies made under --work: a folder without dev mixes was
    copied and then refused in the name of the copy ("no devmix_*.labels.csv files in ~/.cache/.../scenes/..."),
    and a mix without its audio only when its copy's turn came, after the mixes before it."""
    from dramapic.lab import scenes, speech_reference

    mixes = tmp_path / "mixes"
    for name in ("devmix_01", "devmix_02"):
        write_synthetic(mixes, name, SYNTH_ROWS, SYNTH_TURNS)
    damage(mixes)
    for module, names in ((scenes, ("scene_excerpts",)), (speech_reference, ("speech_reference",))):
        for name in names:
            monkeypatch.setattr(module, name, lambda *a, **k: pytest.fail("made a copy of a folder it cannot score"))
    analysed = _stub_analysis(monkeypatch)
    argv = [{"DATA": str(tmp_path)}.get(a, a) for a in copy]
    assert main(["--mixes", str(mixes), *argv, "--work", str(tmp_path / "work"), "--limit", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message.format(mixes=mixes) in err[0], err
    assert analysed == [] and not (tmp_path / "work").exists()
