"""``dramapic report RUN.dramapic.json``: one run's own page (time line with a lane per speaker, shares, speakers,
genre, source), never the archive layout; runs made with --no-speakers / --no-gender; escaping; and the page
really rendered by a headless Chromium."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dramapic.archive.report import load_report_data, write_report
from dramapic.archive.run_report import OTHER_LANE, VOICE_LANE, lanes, render_run_html, timeline_svg
from dramapic.render import LABEL_RGB
from dramapic.result import AnalysisResult
from dramapic.writers import get_writer
from helpers import REPO, make_archive_result

ARCHIVE_ONLY = ("Slowest files", "per worker", "processing time", "Failed files", "Archive totals", "All videos",
                "Genre mix")


def _run(**changes) -> AnalysisResult:
    """A run with three speakers taking turns (S1 three times, S2 twice, S3 once), song and silence between."""
    turns = [("S1", 0, 4), ("S2", 4, 7), ("S1", 7, 9), ("S3", 9, 12), ("S2", 12, 15), ("S1", 15, 20)]
    segments = [{"start": float(a), "end": float(b), "label": "voice", "gender": None if s == "S3" else
                 ("female" if s == "S1" else "male"), "speaker": s, "confidence": 0.9,
                 "scores": {"voice": 0.9}} for s, a, b in turns]
    segments += [{"start": 20.0, "end": 26.0, "label": "song", "gender": None, "speaker": None, "confidence": 0.8,
                  "scores": {"song": 0.8}},
                 {"start": 26.0, "end": 27.0, "label": "noise", "gender": None, "speaker": None, "confidence": 0.7,
                  "scores": {"noise": 0.7}},
                 {"start": 27.0, "end": 30.0, "label": "silence", "gender": None, "speaker": None,
                  "confidence": 0.95, "scores": {"silence": 0.95}}]
    data = make_archive_result("/videos/film.mp4", duration=30.0).to_dict()
    data["segments"] = segments
    data["summary"].update({
        "shares": {"voice": 20 / 30, "song": 6 / 30, "noise": 1 / 30, "silence": 3 / 30},
        "gender_shares": {"female": 11 / 17, "male": 6 / 17},
        "speakers": [{"id": "S1", "gender": "female", "seconds": 11.0, "gender_confidence": 0.93},
                     {"id": "S2", "gender": "male", "seconds": 6.0, "gender_confidence": 0.81},
                     {"id": "S3", "gender": None, "seconds": 3.0, "gender_confidence": 0.55}],
        "genre": {"label": "drama", "confidence": 0.7, "scores": {"drama": 0.7, "news": 0.2, "music_show": 0.1}},
    })
    for key, value in changes.items():
        if key == "path":
            data["source"]["path"] = value
        else:
            data["summary"][key] = value
    if changes.get("speakers", ...) is None:
        for segment in data["segments"]:
            segment["speaker"] = None
    if changes.get("gender_shares", ...) is None:
        for segment in data["segments"]:
            segment["gender"] = None
        for speaker in data["summary"]["speakers"] or ():
            speaker["gender"] = None
    return AnalysisResult.from_dict(data)


def _page(tmp_path: Path, result: AnalysisResult) -> str:
    path = tmp_path / "film.dramapic.json"
    get_writer("json").write(result, path)
    outputs = write_report(path)
    assert outputs.html == tmp_path / "film.report.html"
    return outputs.html.read_text(encoding="utf-8")


def _lanes(page: str) -> dict[str, str]:
    """Lane key → the lane's markup."""
    return dict(re.findall(r'<g class="lane" data-lane="([^"]+)"[^>]*>(.*?)</g>', page, re.S))


def test_one_run_gets_its_own_page_with_a_lane_per_speaker(tmp_path):
    page = _page(tmp_path, _run())
    found = _lanes(page)
    assert list(found) == ["speaker:S1", "speaker:S2", "speaker:S3", "other"]
    counts = {key: len(re.findall(r'<rect class="bar"', body)) for key, body in found.items()}
    assert counts == {"speaker:S1": 3, "speaker:S2": 2, "speaker:S3": 1, "other": 3}
    assert all(re.findall(r'data-label="voice"', found[k]) for k in ("speaker:S1", "speaker:S2", "speaker:S3"))
    other = found["other"]
    for label in ("song", "noise", "silence"):  # the video's colours, from the one colour table
        assert f'data-label="{label}"' in other and f'fill="{LABEL_RGB[label]}"' in other
    assert f'fill="{LABEL_RGB["voice"]}"' in found["speaker:S1"]
    assert OTHER_LANE in page and VOICE_LANE not in page
    for text in ARCHIVE_ONLY:
        assert text not in page, text
    # shares, speakers with gender, talk time and confidence, genre scores, source
    assert "66.7%" in page and "Shares" in page
    speakers = page[page.index('id="speakers"'):page.index('id="genre"')]
    assert re.search(r"<td>S1</td><td>female</td><td class=\"num\">0.93</td><td class=\"num\">11.0 s</td>",
                     speakers)
    assert re.search(r"<td>S3</td><td>unknown</td><td class=\"num\">–</td><td class=\"num\">3.0 s</td>", speakers)
    assert "S3 · unknown" in page
    genre = page[page.index('id="genre"'):page.index('id="source"')]
    # the confidence reads as the JSON, the burned-in card and the score bars give it, not as a percentage
    assert "drama (0.70)" in genre and "%" not in genre and "news" in genre and "0.20" in genre and "music_show" in genre
    source = page[page.index('id="source"'):]
    assert "/videos/film.mp4" in source and "30.00 s" in source
    # nothing is fetched; the only script is the page's own rendering check
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)
    assert "@import" not in page and "<link" not in page and "<img" not in page and "url(" not in page
    assert re.findall(r"<script[^>]*>", page) == ["<script>"]
    figures = dict(re.findall(r'<figure class="chart" data-chart="([^"]+)" data-bars="(\d+)"', page))
    assert figures == {"timeline": "9", "shares": "4", "gender": "2", "speakers": "3", "genre": "3"}


def test_a_run_without_speakers_or_gender_renders(tmp_path):
    page = _page(tmp_path, _run(speakers=None))
    found = _lanes(page)
    assert list(found) == ["voice", "other"] and len(re.findall(r'class="bar"', found["voice"])) == 6
    assert "--no-speakers" in page and "Speaker ids were switched off" in page and VOICE_LANE in page
    # the speakers are told apart inside since --no-speakers keeps the genders: only their ids are not kept
    assert "not separated" not in page and "speakers (ids switched off)" in page

    page = _page(tmp_path, _run(gender_shares=None))
    assert "--no-gender" in page and 'data-chart="gender"' not in page
    assert list(_lanes(page)) == ["speaker:S1", "speaker:S2", "speaker:S3", "other"]
    # gender off measured nothing: "–", never "unknown" (which says the model was unsure)
    speakers = page[page.index('id="speakers"'):page.index('id="genre"')]
    assert re.findall(r"<td>(S\d)</td><td>–</td><td class=\"num\">–</td>", speakers) == ["S1", "S2", "S3"]
    assert "unknown" not in page and "S1 · " not in page

    page = _page(tmp_path, _run(speakers=None, gender_shares=None))
    assert "--no-speakers" in page and "--no-gender" in page

    page = _page(tmp_path, _run(speakers=[]))  # diarization ran and found nobody: not the same as off
    assert "No speaker was found" in page and "--no-speakers" not in page


@pytest.mark.parametrize("where, value, named", [
    (("segments", 0, "confidence"), None, "segment confidence"),
    (("source", "duration"), "6.0", "source duration"),
    (("summary", "genre", "scores", "drama"), "high", "genre scores.drama"),
    (("summary", "speakers", 0, "seconds"), None, "speaker seconds"),
    (("summary", "shares", "voice"), True, "summary shares.voice"),
    (("segments",), "oops", "segments and models"),
    # a channel --audio-channel cannot choose: the page would have said "track 0, centre channel"
    (("source", "audio_channel"), "centre", "source audio_channel"),
    (("source", "gain_db"), "27 dB", "source gain_db"),
])
def test_a_run_file_with_a_value_of_the_wrong_type_is_one_input_error(tmp_path, where, value, named):
    from dramapic.archive.run_report import read_run
    from dramapic.errors import InputError

    data = _run().to_dict()
    place = data
    for key in where[:-1]:
        place = place[key]
    place[where[-1]] = value
    path = tmp_path / "film.dramapic.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(named)):
        read_run(path)
    assert not (tmp_path / "film.report.html").exists()


@pytest.mark.parametrize("where, token", [
    (("source", "duration"), "Infinity"), (("segments", 0, "start"), "NaN"),
    (("summary", "genre", "scores", "drama"), "-Infinity"), (("segments", 1, "end"), "1e999"),
    (("source", "duration"), "1" + "0" * 400),
])
def test_a_run_file_with_a_number_that_is_not_finite_is_one_input_error(tmp_path, where, token):
    # not JSON, but Python's reader takes NaN and Infinity (and reads 1e999 as infinity): a hand-edited one ended in
    # a ValueError or OverflowError traceback where the time line rounds it
    from dramapic.errors import InputError

    data = _run().to_dict()
    place = data
    for key in where[:-1]:
        place = place[key]
    place[where[-1]] = "@number@"
    path = tmp_path / "film.dramapic.json"
    path.write_text(json.dumps(data).replace('"@number@"', token), encoding="utf-8")
    with pytest.raises(InputError, match="film.dramapic.json is not a"):
        write_report(path)
    assert not (tmp_path / "film.report.html").exists()


def test_the_page_escapes_the_path_and_the_title(tmp_path):
    page = _page(tmp_path, _run(path='/v/<script>alert(1)</script> & "x".mp4'))
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;.mp4" in page
    assert re.findall(r"<script[^>]*>", page) == ["<script>"]
    html = render_run_html(_run(), title="<i>mine</i>", source="a&b.json")
    assert "<i>mine" not in html and "&lt;i&gt;mine&lt;/i&gt;" in html and "a&amp;b.json" in html


def test_lanes_keep_speakers_the_summary_does_not_list():
    data = _run().to_dict()
    data["segments"][0]["speaker"] = "S9"
    result = AnalysisResult.from_dict(data)
    keys = [key for key, _, _ in lanes(result)]
    assert keys == ["speaker:S1", "speaker:S2", "speaker:S3", "speaker:S9", "other"]


def test_the_single_run_page_through_the_cli(tmp_path):
    path = tmp_path / "film.dramapic.json"
    get_writer("json").write(_run(), path)
    done = subprocess.run([sys.executable, "-m", "dramapic", "report", str(path)], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "film.report.html").read_text(encoding="utf-8")
    assert 'data-chart="timeline"' in page and "Slowest files" not in page
    assert (tmp_path / "film.report.csv").read_text().count("\n") == 2  # the CSV still has the run's row
    assert load_report_data(path).run is not None


def test_the_single_run_page_renders_in_headless_chromium(tmp_path):
    from test_report import _browser, _chromium, _pixels, _png_size

    browser = _browser()
    path = tmp_path / "film.dramapic.json"
    get_writer("json").write(_run(), path)
    url = write_report(path).html.resolve().as_uri()
    dom = _chromium(browser, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-charts-rendered="5/5"' in dom.stdout
    for attributes in re.findall(r"<figure ([^>]*)>", dom.stdout):
        values = dict(re.findall(r'([\w-]+)="([^"]*)"', attributes))
        assert int(values["data-rendered-width"]) > 300 and int(values["data-rendered-height"]) > 10, values
        assert int(values["data-rendered-bars"]) == int(values["data-bars"]) > 0, values
    screenshot = tmp_path / "run.png"
    shot = _chromium(browser, tmp_path / "profile-shot", f"--screenshot={screenshot}", url)
    assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
    width, height = _png_size(screenshot)
    pixels = _pixels(screenshot, width, height).reshape(-1, 3).astype(int)
    for label in ("voice", "song", "silence"):
        colour = np.array([int(LABEL_RGB[label][i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels - colour).sum(axis=1) < 30).sum() > 500, f"no {label} blocks in the screenshot"


def test_voice_of_unknown_gender_is_shown_apart_from_the_known_shares(tmp_path):
    """S3's 3 s of the 20 s of voice have no gender (gender_unknown_share 0.15 in the JSON): the page never said
    so, its gender bar read "voice time 20.0 s" for 17 s of known gender, and its card "female share of voice 65%"
    where female voice is 55% of all voice."""
    page = _page(tmp_path, _run(gender_unknown_share=0.15))
    cards = page[page.index('id="run"'):page.index('id="timeline"')]
    assert "<b>drama</b><span>genre (confidence 0.70)</span>" in cards
    assert "<b>65%</b><span>female share of voice with a known gender</span>" in cards
    gender = page[page.index('data-chart="gender"'):page.index('id="speakers"')]
    assert "known gender" in gender and "17.0 s" in gender and "20.0 s" not in gender
    assert "Gender unknown: 3.0 s (15% of the voice time)" in gender
    # nothing unknown: no such note
    page = _page(tmp_path, _run(gender_unknown_share=0.0))
    gender = page[page.index('data-chart="gender"'):page.index('id="speakers"')]
    assert "Gender unknown" not in gender and "20.0 s" in gender


def test_no_tick_label_of_the_time_line_runs_past_its_right_edge():
    """A 30 s run's last tick, "0:30", sits at the axis' end: centred there, its right half was cut off."""
    svg, _ = timeline_svg(_run())
    width = float(re.search(r'viewBox="0 0 (\d+)', svg).group(1))
    labels = re.findall(r'<text class="tick-label" x="([\d.]+)"[^>]*text-anchor="(\w+)">([^<]+)</text>', svg)
    assert labels[-1][2] == "0:30"
    for x, anchor, text in labels:
        right = float(x) + {"middle": 0.5, "end": 0.0}[anchor] * 6.5 * len(text)
        assert right <= width, (text, x, anchor)


def test_no_voice_of_known_gender_shows_no_made_up_female_and_male_zeros(tmp_path):
    """All voice of unknown gender: the JSON's gender shares are both 0 (gender was on, but nothing is known), and
    the page said "0% female share of voice" and drew a "female 0% · male 0%" legend over an empty bar."""
    page = _page(tmp_path, _run(gender_shares={"female": 0.0, "male": 0.0}, gender_unknown_share=1.0))
    cards = page[page.index('id="run"'):page.index('id="timeline"')]
    assert "<b>–</b><span>female share of voice (no voice of known gender)</span>" in cards
    shares = page[page.index('id="shares"'):page.index('id="speakers"')]
    assert "female 0%" not in shares and 'data-chart="gender"' not in shares
    assert "all 20.0 s of voice is of unknown gender" in shares


def test_a_block_s_tooltip_gives_its_times_to_the_millisecond():
    """The tooltips gave whole seconds: a 0.3 s turn from 12.2 s read "0:12–0:12 (0.30 s)", and a turn from
    3599.5 s to 3601.2 s "1:00:00–1:00:01"; they read as its cue does, to the millisecond."""
    data = _run().to_dict()
    data["source"]["duration"] = data["summary"]["duration"] = 3602.0
    data["segments"][-1]["end"] = 3602.0
    data["segments"][3].update(start=9.0, end=12.2)
    data["segments"][4].update(start=12.2, end=12.5)
    data["segments"][-1].update(start=27.0, end=3599.5)
    data["segments"].append({"start": 3599.5, "end": 3601.2, "label": "voice", "gender": "male", "speaker": "S2",
                             "confidence": 0.9, "scores": {"voice": 0.9}})
    data["segments"].append({"start": 3601.2, "end": 3602.0, "label": "silence", "gender": None, "speaker": None,
                             "confidence": 0.9, "scores": {"silence": 0.9}})
    svg, _ = timeline_svg(AnalysisResult.from_dict(data))
    tips = re.findall(r"<title>([^<]+)</title>", svg)
    assert any(tip.startswith("0:12.200–0:12.500 (0.30 s) voice, S2") for tip in tips), tips
    assert any(tip.startswith("59:59.500–1:00:01.200 (1.70 s) voice, S2") for tip in tips), tips


def test_a_set_of_shares_on_the_page_adds_up_to_100(tmp_path):
    """Each share was rounded on its own: voice / song / noise / silence of 0.3334, 0.3333, 0.3333 and 0 read
    33 + 33 + 33 + 0 = 99 % in the legend and the bar's tooltips, female 0.455 / male 0.545 read 46 + 55 = 101 %;
    the cards read their share as the legend does."""
    page = _page(tmp_path, _run(shares={"voice": 0.3334, "song": 0.3333, "noise": 0.3333, "silence": 0.0},
                                gender_shares={"female": 0.455, "male": 0.545}))
    cards = page[page.index('id="run"'):page.index('id="timeline"')]
    assert "<b>34%</b><span>voice</span>" in cards
    assert "<b>45%</b><span>female share of voice with a known gender</span>" in cards
    shares = page[page.index('id="shares"'):page.index('id="speakers"')]
    legends = re.findall(r'<div class="legend">(.*?)</div>', shares)
    assert [re.findall(r"</i>(\w+ \d+%)</span>", legend) for legend in legends] == [
        ["voice 34%", "song 33%", "noise 33%", "silence 0%"], ["female 45%", "male 55%"]]
    tips = re.findall(r"<title>[^<:]+: (\w+ \d+%)</title></rect>", shares)
    assert tips == ["voice 34%", "song 33%", "noise 33%", "female 45%", "male 55%"]
    # the JSON keeps the shares unrounded (to 4 places)
    data = json.loads((tmp_path / "film.dramapic.json").read_text(encoding="utf-8"))
    assert data["summary"]["shares"]["voice"] == 0.3334 and data["summary"]["gender_shares"]["female"] == 0.455


def test_the_source_says_which_track_and_channel_were_analysed_when_not_the_first_track_s_mix():
    # the JSON records the audio track and channel analysed (a dub, one language of a dual-mono broadcast), the
    # run's page did not: its figures read as those of the file's usual sound
    import dataclasses

    def source_of(**audio) -> str:
        result = _run()
        result = dataclasses.replace(result, source=dataclasses.replace(result.source, **audio))
        page = render_run_html(result, title="t", source="film.dramapic.json")
        return page[page.index('id="source"'):]

    assert "<dt>audio</dt><dd>track 1, left channel</dd>" in source_of(audio_track=1, audio_channel="left")
    assert "<dt>audio</dt><dd>track 0, right channel</dd>" in source_of(audio_track=0, audio_channel="right")
    assert "<dt>audio</dt><dd>track 2</dd>" in source_of(audio_track=2, audio_channel=None)
    # the first track's mix (the usual case), and a JSON written before these were recorded: no line
    assert "<dt>audio</dt>" not in source_of(audio_track=0, audio_channel=None)
    assert "<dt>audio</dt>" not in source_of(audio_track=None, audio_channel=None)


def test_the_source_says_when_a_quiet_recording_was_analysed_raised():
    # the figures of a quiet recording are those of its sound raised (analyze.level_gain); the terminal's warning
    # said so, the run's page did not
    import dataclasses

    def source_of(gain_db) -> str:
        result = _run()
        result = dataclasses.replace(result, source=dataclasses.replace(result.source, gain_db=gain_db))
        page = render_run_html(result, title="t", source="film.dramapic.json")
        return page[page.index('id="source"'):]

    assert "<dt>level</dt><dd>too quiet as recorded: analysed raised by 27 dB</dd>" in source_of(27.3)
    # at its own level, and a JSON written before the gain was recorded: no line
    assert "<dt>level</dt>" not in source_of(0.0) and "<dt>level</dt>" not in source_of(None)
    assert "<dt>level</dt>" not in source_of(-6.0)  # dramapic never lowers: a JSON edited by hand


def test_the_source_tells_an_edited_pipeline_from_the_default_by_its_settings_checksum():
    # the JSON records the settings and their sha256 (976dc7a) so that an edited copy of default.yaml that kept its
    # name is told apart from the default; the run's page still said "default 1" for both
    import dataclasses

    from dramapic.config import load_pipeline

    default = load_pipeline(None)
    shown = {}
    for pipeline in (default, default.replace(render__crf=23)):
        result = dataclasses.replace(_run(), pipeline_settings=pipeline.to_dict())
        page = render_run_html(result, title="t", source="film.dramapic.json")
        sha = result.to_dict()["pipeline"]["sha256"]
        shown[sha] = page[page.index("<dt>pipeline</dt>"):].split("</dd>")[0]
        assert f"default 1 (settings sha256 {sha[:12]})" in shown[sha]
    assert len(shown) == 2
    # a JSON written before the settings were recorded: name and version alone
    page = render_run_html(_run(), title="t", source="film.dramapic.json")
    assert "<dt>pipeline</dt><dd>default 1</dd>" in page
