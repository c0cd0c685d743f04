"""A portrait frame (720x1280) gets a card, cues and a badge sized to its width: no line wider than the canvas."""

from __future__ import annotations

import re

import pytest

from dramapic.config import RenderConfig
from dramapic.render import build_ass
from helpers import make_result

TAGS = re.compile(r"\{[^}]*\}")


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
