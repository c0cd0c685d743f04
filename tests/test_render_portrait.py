"""A portrait frame (720x1280) gets a card, cues and a badge sized to its width: no line wider than the canvas; a
portrait video stored landscape with a display matrix (as phones record) is drawn on its upright canvas."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from dramapic import media
from dramapic import run as run_module
from dramapic.config import RenderConfig, load_pipeline
from dramapic.progress import silent_hook
from dramapic.render import build_ass
from dramapic.run import RunOptions
from helpers import make_result

TAGS = re.compile(r"\{[^}]*\}")


def ffmpeg(*args: str) -> None:
    done = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", *args],
                          capture_output=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def estimate(text: str, size: int) -> float:
    """A plain width estimate: half an em and a bit for Latin, an em for Hangul (NanumGothic's proportions)."""
    return size * sum(0.95 if "\uac00" <= ch <= "\ud7a3" else 0.55 for ch in TAGS.sub("", text))


def script(width: int, height: int, language: str) -> tuple[int, dict[str, int], list[tuple[str, str]]]:
    text = build_ass(make_result(), RenderConfig(font_family="NanumGothic", card_seconds=6.0), width=width,
                     height=height, language=language)
    play_x = int(re.search(r"PlayResX: (\d+)", text).group(1))
    sizes = {m.group(1): int(m.group(2)) for m in re.finditer(r"^Style: (\w+),[^,]+,(\d+),", text, re.M)}
    events = [(ln.split(",")[3], ln.split(",,", 1)[1].split(",,", 1)[-1]) for ln in text.splitlines()
              if ln.startswith("Dialogue:")]
    return play_x, sizes, events


@pytest.mark.parametrize("language", ["en", "ko"])
@pytest.mark.parametrize("size", [(720, 1280), (1080, 1920), (1920, 1080), (640, 360)])
def test_no_line_is_wider_than_the_canvas(size, language):
    play_x, sizes, events = script(*size, language)
    checked = 0
    for style, text in events:
        if style not in ("Cue", "Card", "Badge"):
            continue
        for line in text.split("\\N"):
            assert estimate(line, sizes[style]) <= play_x * (0.8 if style == "Card" else 0.95), (style, line)
            checked += 1
    assert checked >= 8


def test_a_landscape_frame_keeps_its_sizes():
    play_x, sizes, _ = script(1920, 1080, "en")
    assert play_x == 1920 and sizes["Cue"] == round(1080 * RenderConfig().subtitle_font_scale)


def test_a_portrait_card_is_still_readable():
    play_x, sizes, _ = script(720, 1280, "en")
    assert play_x == 608
    # about 2.5 % of the frame's height or more: 32 px on a 1280-line frame
    assert sizes["Card"] >= 27 and sizes["Cue"] >= 30


@pytest.mark.parametrize("language", ["en", "ko"])
def test_a_gender_unknown_share_does_not_shrink_a_portrait_card_and_badge(language):
    """Real results often leave some voice's gender unknown (--no-speakers most of it): on one line with the gender
    shares it was the widest line, and a 720x1280 card fell from 27 to 16 units, the badge to 17."""
    import dataclasses

    result = make_result()
    shown = dataclasses.replace(result, summary=dataclasses.replace(result.summary, gender_unknown_share=0.23))
    config = RenderConfig(font_family="NanumGothic", card_seconds=6.0)
    for size in ((720, 1280), (1080, 1920)):
        sizes = {}
        for name, each in (("plain", result), ("unknown", shown)):
            text = build_ass(each, config, width=size[0], height=size[1], language=language)
            styles = re.finditer(r"^Style: (\w+),[^,]+,(\d+),", text, re.MULTILINE)
            sizes[name] = {m.group(1): int(m.group(2)) for m in styles}
        assert sizes["unknown"]["Card"] >= sizes["plain"]["Card"] >= 27
        assert sizes["unknown"]["Badge"] >= min(sizes["plain"]["Badge"], 27)
        unknown_word = "gender unknown 23%" if language == "en" else "성별 미상 23%"
        card = next(ln for ln in text.splitlines() if ",Card," in ln)
        badge = next(ln for ln in text.splitlines() if ",Badge," in ln)
        assert f"\\N{unknown_word}\\N" in card and f"\\N{unknown_word}\\N" in badge


# -- a phone's portrait video stored landscape, with a display matrix ----------------------------------------------

#: the same quarter turn as ffmpeg 5.x (Debian 12) and later builds print it under the stream
ROTATED_BANNERS = [
    "  Stream #0:0[0x1](und): Video: h264 (High), yuv420p(tv), 1920x1080, 25 fps\n"
    "    Side data:\n      displaymatrix: rotation of -90.00 degrees\n",
    "  Stream #0:0[0x1](und): Video: h264 (High), yuv420p(tv), 1920x1080, 25 fps\n"
    "    Side data:\n      Display Matrix: rotation of 90.00 degrees\n",
]


@pytest.mark.parametrize("banner", ROTATED_BANNERS)
def test_the_banner_says_a_quarter_turn_shows_a_portrait_frame(banner):
    _, streams = media.parse_ffmpeg_banner(banner + "  Stream #0:1: Audio: aac (LC), 48000 Hz, stereo, fltp\n")
    assert streams[0].display_size == (1080, 1920)
    assert streams[1].rotation == 0  # side data belongs to the stream above it only


def test_ffprobe_rotation_from_side_data_or_an_old_tag():
    assert media._ffprobe_rotation({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}) == -90
    assert media._ffprobe_rotation({"tags": {"rotate": "270"}}) == 270
    assert media._ffprobe_rotation({"tags": {"rotate": "sideways"}}) == 0  # free text in Matroska


def test_a_rotated_video_is_burned_on_a_canvas_of_its_upright_shape(tmp_path: Path, monkeypatch):
    source = tmp_path / "stored.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=1", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", str(source))
    rotated = tmp_path / "phone.mp4"
    try:  # ffmpeg 6 and later: an input option; 5.x: the rotate tag, which later builds ignore
        ffmpeg("-display_rotation", "90", "-i", str(source), "-c", "copy", str(rotated))
    except AssertionError:
        ffmpeg("-i", str(source), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    info = media.probe(rotated)
    assert info.video_streams[0].display_size == (180, 320)
    scripts = []
    monkeypatch.setattr(media, "burn_subtitles", lambda info, ass, output, **_: scripts.append(ass.read_text()))
    run_module._write_video(info, make_result(), {"video": tmp_path / "out.mp4"}, load_pipeline(None),
                            RunOptions(), silent_hook)
    play = tuple(int(re.search(rf"PlayRes{axis}: (\d+)", scripts[0]).group(1)) for axis in "XY")
    assert play[0] < play[1], play  # a portrait canvas: a landscape one would be squeezed into the upright frame


# -- frames of extreme shapes: a 1920x120 strip, a 120x1920 column, a 160x90 thumbnail ------------------------------

def _panel_and_bar(text: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """The card's panel and share bar as (top, bottom) in canvas units."""
    shapes = [ln for ln in text.splitlines() if ",Shape," in ln]
    tops = [int(re.search(r"\\pos\(\d+,(\d+)\)", ln).group(1)) for ln in shapes]
    heights = [int(re.search(r" l 0 (\d+)$", ln).group(1)) for ln in shapes]
    return (tops[0], tops[0] + heights[0]), (tops[1], tops[1] + heights[1])


@pytest.mark.parametrize("language", ["en", "ko"])
@pytest.mark.parametrize("size", [(1920, 120), (160, 90), (320, 180)])
def test_a_frame_few_pixels_high_keeps_its_text_readable(size, language):
    """Sizes followed the frame's height alone: on a 1920x120 strip the card's letters came to 5 pixels, the badge's
    to 4 and the cues' to 7, on a 160x90 thumbnail to 4. Now no text is under about 11 pixels where the frame has
    the room (the card's panel grows to hold its rows, above the cues' line); on a thumbnail the card shrinks only
    as far as the height requires, still larger than before."""
    import dataclasses

    result = make_result()
    result = dataclasses.replace(result, summary=dataclasses.replace(result.summary, gender_unknown_share=0.23))
    text = build_ass(result, RenderConfig(font_family="NanumGothic", card_seconds=6.0), width=size[0],
                     height=size[1], language=language)
    sizes = {m.group(1): int(m.group(2)) for m in re.finditer(r"^Style: (\w+),[^,]+,(\d+),", text, re.MULTILINE)}
    pixels = {style: sizes[style] * size[1] / 1080 for style in ("Cue", "Card", "Badge")}
    assert pixels["Cue"] >= 10.5 and pixels["Badge"] >= 10.5, pixels
    assert pixels["Card"] >= (10.5 if size[1] >= 120 else 5.5), pixels  # 4 pixels before on 160x90
    (panel_top, panel_bottom), (bar_top, bar_bottom) = _panel_and_bar(text)
    card = next(ln for ln in text.splitlines() if ",Card," in ln)
    text_top = int(re.search(r"\\pos\(\d+,(\d+)\)", card).group(1))
    rows = card.split(",,", 2)[-1].split("\\N")
    assert 0 <= panel_top and text_top + len(rows) * sizes["Card"] * 1.1 <= bar_top < bar_bottom <= panel_bottom
    # the cue's line (its bottom margin, one line of text) lies below the panel
    assert panel_bottom <= 1080 - round(1080 * 0.06) - sizes["Cue"]


@pytest.mark.parametrize("language", ["en", "ko"])
@pytest.mark.parametrize("size", [(120, 1920), (90, 1600)])
def test_a_frame_a_hundred_pixels_wide_breaks_the_card_between_phrases(size, language):
    """On a 120x1920 column the canvas is 68 units wide: the Card and Badge styles' 40- and 24-unit side margins
    left libass no width at all, so it broke every line at every space ("voice" / "60%" / "·" / "song" ...). The
    margins follow the width now, and lines too wide even at the smallest readable size break between phrases."""
    play_x, sizes, events = script(*size, language)
    text = build_ass(make_result(), RenderConfig(font_family="NanumGothic", card_seconds=6.0), width=size[0],
                     height=size[1], language=language)
    for style in ("Cue", "Card", "Badge"):
        margins = re.search(rf"^Style: {style},(?:[^,]*,){{18}}(\d+),(\d+),", text, re.MULTILINE)
        assert int(margins.group(1)) + int(margins.group(2)) <= play_x * 0.1, (style, margins.group(0))
    card = next(body for style, body in events if style == "Card")
    rows = card.split("}", 1)[1].split("\\N")  # the \an8\pos block first
    assert all(" · " not in TAGS.sub("", row) or estimate(row, sizes["Card"]) <= play_x for row in rows), rows
    plain = [TAGS.sub("", row) for row in rows]
    assert any(row.startswith(("voice 60%", "음성 60%", "voice 10%", "음성 10%")) for row in plain), plain
    assert sizes["Card"] * size[1] / 1080 >= 10  # no smaller than readable: libass may still wrap a long phrase


@pytest.mark.parametrize("size", [(1, 1), (1920, 8), (1920, 30), (4000, 10), (8, 1920), (7680, 4320)])
def test_a_frame_of_any_size_gets_a_card_inside_the_canvas(size):
    """A readable size in pixels must give way where a frame is only a few pixels high: a 1920x8 frame asked for
    1485-unit cues on the 1080-unit canvas, and its share bar was drawn at y = -324, above the frame."""
    text = build_ass(make_result(), RenderConfig(font_family="NanumGothic", card_seconds=6.0), width=size[0],
                     height=size[1])
    sizes = {m.group(1): int(m.group(2)) for m in re.finditer(r"^Style: (\w+),[^,]+,(\d+),", text, re.MULTILINE)}
    assert all(1 <= sizes[style] <= 1080 * 0.15 for style in ("Cue", "Card", "Badge")), sizes
    (panel_top, panel_bottom), (bar_top, bar_bottom) = _panel_and_bar(text)
    assert 0 <= panel_top < bar_top < bar_bottom <= panel_bottom <= 1080
