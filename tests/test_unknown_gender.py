"""Voice whose gender the model left unknown, through composition, the JSON, cues, card, badge, store and report."""

from __future__ import annotations

import dataclasses

import pytest

from dramapic.analysis.composition import gender_seconds, gender_shares, gender_unknown_share, summarize
from dramapic.archive.store import Store, video_record
from dramapic.config import RenderConfig
from dramapic.render import build_ass, summary_lines
from dramapic.result import AnalysisResult, Segment, Source, SpeakerSummary
from dramapic.writers import cue_text

V = {"voice": 0.9, "female": 0.7, "male": 0.3}


def _unknown_result(*, gender: bool = True) -> AnalysisResult:
    segments = (Segment(0.0, 6.0, "voice", 0.9, dict(V), "female", "S1"),
                Segment(6.0, 8.0, "voice", 0.9, dict(V), None, "S2"),   # abstained
                Segment(8.0, 10.0, "voice", 0.9, dict(V), "male", "S3"),
                Segment(10.0, 12.0, "song", 0.8, {"song": 0.8}))
    if not gender:
        segments = tuple(dataclasses.replace(s, gender=None) for s in segments)
    speakers = (SpeakerSummary("S1", "female", 6.0, 0.97), SpeakerSummary("S2", None, 2.0, 0.7),
                SpeakerSummary("S3", "male", 2.0, 0.95))
    summary = summarize(segments, 12.0, speakers, gender=gender)
    return AnalysisResult(Source("/x/a.mp4", 12.0, "0" * 64), "default", "1", (), segments, summary)


def test_shares_are_over_known_gender_and_unknown_is_counted_apart():
    result = _unknown_result()
    assert gender_shares(result.segments) == pytest.approx({"female": 0.75, "male": 0.25})
    assert gender_unknown_share(result.segments) == pytest.approx(0.2)
    data = result.to_dict()
    assert data["summary"]["gender_unknown_share"] == pytest.approx(0.2)
    assert data["segments"][1]["gender"] is None
    assert data["summary"]["speakers"][1]["gender"] is None
    assert AnalysisResult.from_dict(data).summary.gender_unknown_share == pytest.approx(0.2)
    off = _unknown_result(gender=False).to_dict()["summary"]
    assert off["gender_shares"] is None and off["gender_unknown_share"] is None


def test_cue_of_unknown_gender_has_no_gender_and_no_gender_confidence():
    seg = _unknown_result().segments[1]
    assert cue_text(seg) == "voice · S2 (0.90)"          # P(voice) only, not P(voice) x P(gender)
    assert cue_text(seg, language="ko") == "음성 · S2 (0.90)"
    known = _unknown_result().segments[0]
    assert cue_text(known) == "voice · female · S1 (0.63)"


def test_card_and_badge_count_unknown_separately():
    result = _unknown_result()
    lines = summary_lines(result.summary)
    assert "female 75% · male 25% of speech · gender unknown 20%" in lines
    assert "성별 미상 20%" in " ".join(summary_lines(result.summary, language="ko"))
    text = build_ass(result, RenderConfig(), width=640, height=360)
    assert "voice · S2 (0.90)" in text and "gender unknown 20%" in text
    # nothing unknown: no unknown part on the card
    assert not any("unknown" in line for line in summary_lines(_unknown_result(gender=False).summary))


@pytest.mark.parametrize("undecided, line", [(True, "gender unknown 100%"), (False, None)])
def test_no_voice_of_known_gender_gives_no_made_up_female_and_male_zeros(undecided, line):
    """Every voice left unknown (a dialogue decided as one segment), or no voice at all (a music show): both gender
    shares are 0, and the card and badge said "female 0% · male 0% of speech"."""
    result = _unknown_result()
    if undecided:
        segments = tuple(dataclasses.replace(s, gender=None) for s in result.segments)
    else:
        segments = (Segment(0.0, 12.0, "song", 0.8, {"song": 0.8}),)
    summary = summarize(segments, 12.0, (), gender=True)
    assert summary.gender_shares == {"female": 0.0, "male": 0.0}  # what the JSON keeps: both 0 when none is known
    quiet = dataclasses.replace(result, segments=segments, summary=summary)
    for narrow in (False, True):
        lines = summary_lines(summary, narrow=narrow)
        assert not any("female" in each or "male" in each for each in lines), lines
        assert (line in lines) if line else len(lines) == 3  # genre, shares, speakers
    for size in ((640, 360), (360, 640)):
        text = build_ass(quiet, RenderConfig(), width=size[0], height=size[1])
        assert "0% of speech" not in text and (line is None or line in text)


def test_store_and_report_keep_unknown_seconds(tmp_path):
    from dramapic.archive.report import load_report_data, summary_rows

    result = _unknown_result()
    assert gender_seconds(result) == {"female": 6.0, "male": 2.0, "unknown": 2.0}
    assert gender_seconds(_unknown_result(gender=False))["unknown"] == 0.0  # nothing decided: nothing unknown
    record = video_record(result)
    assert (record.female_share, record.male_share, record.unknown_seconds) == (0.75, 0.25, 2.0)
    from helpers import make_record

    with Store.open(tmp_path / "dramapic.sqlite") as store:
        store.record(make_record("a.mp4", result=result), batch_id=None)
        (video,) = store.videos()
        assert video.unknown_seconds == pytest.approx(2.0) and video.female_seconds == pytest.approx(6.0)
        genders = [r[0] for r in store.query("SELECT gender FROM segments ORDER BY idx")]
        assert genders == ["female", None, "male", None]
        assert [r[0] for r in store.query("SELECT gender FROM speakers ORDER BY speaker")] == ["female", None, "male"]
    data = load_report_data(tmp_path)
    totals = data.totals()
    assert totals["female_share"] == pytest.approx(0.75) and totals["unknown_share"] == pytest.approx(0.2)
    assert summary_rows(data)[0]["unknown_s"] == pytest.approx(2.0)


def test_run_prints_speaking_time_by_gender_with_the_unknown_part(monkeypatch, capsys, tmp_path):
    import dramapic.run as run_module
    from dramapic import cli
    from helpers import SAMPLE

    for gender, expected in ((True, "  speaking female 6.0 s (75%), male 2.0 s (25%), unknown 2.0 s"), (False, None)):
        result = _unknown_result(gender=gender)
        monkeypatch.setattr(run_module, "run", lambda *a, r=result, **k: run_module.RunOutputs(result=r, files={}))
        args = cli.build_parser().parse_args(["run", str(SAMPLE), "-o", str(tmp_path), "--no-video"])
        assert cli._cmd_run(args, cli.TqdmProgress(enabled=False)) == 0
        lines = capsys.readouterr().out.splitlines()
        speaking = [ln for ln in lines if ln.startswith("  speaking")]
        assert speaking == ([expected] if expected else []), lines


@pytest.mark.parametrize("seconds, shown", [(12.44, "12.4 s"), (185.0, "3 min 05 s"), (3725.0, "1 h 02 min"),
                                            # rounded to a tenth, 59.96 s read "60.0 s" beside "1 min 00 s"
                                            (59.94, "59.9 s"), (59.96, "1 min 00 s"), (3599.6, "1 h 00 min")])
def test_speaking_time_reads_as_people_write_it(seconds, shown):
    from dramapic.cli import _duration

    assert _duration(seconds) == shown
