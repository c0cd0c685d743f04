import re

from dramapic.config import RenderConfig
from dramapic.render import Canvas, build_ass, summary_lines
from helpers import make_result


def test_canvas_follows_aspect_ratio():
    assert Canvas.for_video(640, 360).width == 1920
    assert Canvas.for_video(1440, 1080).width == 1440
    assert Canvas.for_video(None, None).width == 1920


def test_ass_has_card_badge_and_one_cue_per_non_silent_segment():
    result = make_result()
    text = build_ass(result, RenderConfig(font_family="NanumGothic", card_seconds=6.0), width=640, height=360)
    assert "PlayResY: 1080" in text and "Style: Cue,NanumGothic" in text
    cues = [ln for ln in text.splitlines() if ln.startswith("Dialogue: 3,")]
    assert len(cues) == 3
    assert cues[0].startswith("Dialogue: 3,0:00:01.50,0:00:04.25,Cue")
    assert cues[0].endswith("voice · female · S1 (0.91)")
    card = [ln for ln in text.splitlines() if ",Card," in ln]
    assert len(card) == 1 and "0:00:00.00,0:00:06.00" in card[0] and "music show" in card[0]
    badge = [ln for ln in text.splitlines() if ",Badge," in ln]
    assert len(badge) == 1 and badge[0].startswith("Dialogue: 0,0:00:06.00,1:02:10.00")
    shapes = [ln for ln in text.splitlines() if ",Shape," in ln]
    assert len(shapes) == 1 + 4  # panel + one bar part per non-zero share


def test_korean_card_and_no_badge():
    text = build_ass(make_result(), RenderConfig(badge=False), width=1920, height=1080, language="ko")
    assert "음악 프로그램" in text and "음성 · 여성" in text
    assert ",Badge," not in text


def test_summary_lines_escape_nothing_dangerous():
    lines = summary_lines(make_result().summary)
    assert lines[0] == "genre: music show (0.80)"
    assert not any(re.search(r"[{}\\]", line) for line in lines)


def test_card_and_badge_show_the_figures_the_json_keeps():
    """The card was drawn from the unrounded summary, the reports from the JSON's (shares to 4 places, the genre's
    confidence to 3): at a half percent the two rounded apart (0.12504: "13%" on the video, "12%" on the report)."""
    import dataclasses

    from dramapic.archive.report import _pct
    from dramapic.result import Genre

    result = make_result()
    summary = dataclasses.replace(
        result.summary, shares={"voice": 0.12504, "song": 0.5, "noise": 0.0, "silence": 0.37496},
        genre=Genre("drama", 0.67496, {"drama": 0.67496, "other": 0.32504}))
    result = dataclasses.replace(result, summary=summary)
    json_summary = result.to_dict()["summary"]
    assert json_summary["shares"]["voice"] == 0.125 and json_summary["genre"]["confidence"] == 0.675
    text = build_ass(result, RenderConfig(), width=1920, height=1080)
    card = next(ln for ln in text.splitlines() if ",Card," in ln)
    badge = next(ln for ln in text.splitlines() if ",Badge," in ln)
    shown = _pct(json_summary["shares"]["voice"])  # the report's figure, from the JSON
    assert shown == "12%" and f"voice {shown}" in card and "voice 13%" not in card
    assert "drama (0.68)" in card and "drama (0.68)" in badge


def test_the_card_s_shares_add_up_to_100():
    """Each share was rounded on its own: thirds read "voice 33% · song 33% · noise 33% · silence 0%" (99 %) on the
    card, its legend and the summary lines, and female 0.425 / male 0.575 "female 42% · male 57%" (99 %)."""
    import dataclasses

    result = make_result()
    summary = dataclasses.replace(result.summary, shares={"voice": 0.3333, "song": 0.3333, "noise": 0.3334,
                                                          "silence": 0.0},
                                  gender_shares={"female": 0.425, "male": 0.575})
    lines = summary_lines(summary)
    assert lines[1] == "voice 33% · song 33% · noise 34% · silence 0%"
    assert lines[2] == "female 42% · male 58% of speech"
    result = dataclasses.replace(result, summary=summary)
    for width, height in ((1920, 1080), (1080, 1920)):  # the legend on one row, and two to a row (portrait)
        text = build_ass(result, RenderConfig(), width=width, height=height)
        card = next(ln for ln in text.splitlines() if ",Card," in ln)
        plain = re.sub(r"\{[^}]*\}", "", card)
        labels = [int(n) for n in re.findall(r"(?:voice|song|noise|silence) (\d+)%", plain)]
        genders = [int(n) for n in re.findall(r"(?:female|male) (\d+)%", plain)]
        assert labels == [33, 33, 34, 0] and genders == [42, 58], plain
        badge = next(ln for ln in text.splitlines() if ",Badge," in ln)
        assert "female 42% · male 58% of speech" in badge


def test_the_share_bar_s_parts_meet_and_end_at_the_bar_s_edge():
    """Each part was rounded on its own, and placed at its own rounded offset: thirds on a 607-unit bar left a gap
    between the second and third parts, quarters overlapped by a pixel, and shares kept to 4 places (adding up to
    1.0001) could run past the bar's end."""
    import dataclasses

    from dramapic.render import _bar

    summary = make_result().summary
    for shares in ({"voice": 0.3333, "song": 0.3333, "noise": 0.3334, "silence": 0.0},
                   {"voice": 0.25, "song": 0.25, "noise": 0.25, "silence": 0.25},
                   {"voice": 0.1235, "song": 0.3001, "noise": 0.2883, "silence": 0.2882}):
        for width in range(600, 700):
            events = _bar(dataclasses.replace(summary, shares=shares), x=10, y=0, width=width, height=5,
                          start="0:00:00.00", end="0:00:06.00")
            spans = [(int(re.search(r"\\pos\((\d+),", ev).group(1)), int(re.search(r" l (\d+) 0 ", ev).group(1)))
                     for ev in events]
            edge = 10
            for left, part in spans:
                assert left == edge, (shares, width, spans)
                edge = left + part
            assert edge == 10 + width, (shares, width, spans)


def test_the_korean_card_counts_speakers_in_korean_word_order():
    """The count was put before the noun in both languages: "3 화자" (3 speaker) on the Korean card and badge, where
    Korean says 화자 3명 (speakers, 3 persons)."""
    import dataclasses

    from dramapic.result import SpeakerSummary

    result = make_result()
    three = tuple(SpeakerSummary(f"S{i}", "female", 10.0, 0.9) for i in range(1, 4))
    summary = dataclasses.replace(result.summary, speakers=three)
    assert summary_lines(summary, language="ko")[-1] == "화자 3명"
    assert summary_lines(summary)[-1] == "3 speakers"
    assert summary_lines(dataclasses.replace(summary, speakers=three[:1]))[-1] == "1 speaker"
    text = build_ass(dataclasses.replace(result, summary=summary), RenderConfig(), width=1920, height=1080,
                     language="ko")
    card = next(ln for ln in text.splitlines() if ",Card," in ln)
    badge = next(ln for ln in text.splitlines() if ",Badge," in ln)
    assert card.endswith("\\N화자 3명") and badge.endswith("| 화자 3명") and "3 화자" not in text
