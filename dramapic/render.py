"""The look of burned-in output: an ASS script with one styled cue per segment, a summary card that opens
the video and a small corner badge that keeps the summary visible afterwards.

Sizes are given on a 1080-line canvas (``PlayResY``) whose width follows the video's aspect ratio; libass
scales it to the real frame, so the same script is readable at 360p and at 1080p. On a frame only a hundred-odd
pixels high (a 1920x120 strip, a thumbnail) no text is drawn under :data:`MIN_TEXT_PX` pixels where it fits, and on
one a hundred-odd pixels wide the card's lines break between phrases.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .config import RenderConfig
from .errors import OutputError
from .result import AnalysisResult, Summary, whole_percentages
from .writers import CUE_WORDS, captioned, clock_time, cue_text

CANVAS_HEIGHT = 1080
# override-tag colours are &HBBGGRR& (blue first)
#: the colour of each stage-1 label, everywhere (cues, the card's bar, the HTML report), as #RRGGBB
LABEL_RGB = {"voice": "#FFC850", "song": "#3C8AE0", "noise": "#D04040", "silence": "#808080"}
# the same in ASS's &HBBGGRR& notation
LABEL_COLOURS = {label: f"&H{rgb[5:7]}{rgb[3:5]}{rgb[1:3]}&" for label, rgb in LABEL_RGB.items()}
CARD_WORDS = {
    "en": {"title": "dramapic summary", "speech": "of speech", "unknown": "gender unknown",
           "speakers": "{n} speakers", "speaker": "{n} speaker", "genre": "genre",
           "genres": {"drama": "drama", "interview": "interview", "documentary": "documentary",
                      "music_show": "music show", "other": "other", "unknown": "unknown"}},
    "ko": {"title": "dramapic 요약", "speech": "발화 중", "unknown": "성별 미상",
           "speakers": "화자 {n}명", "speaker": "화자 {n}명", "genre": "장르",
           "genres": {"drama": "드라마", "interview": "인터뷰", "documentary": "다큐멘터리",
                      "music_show": "음악 프로그램", "other": "기타", "unknown": "미상"}},
}


@dataclass(frozen=True)
class Canvas:
    width: int
    height: int = CANVAS_HEIGHT

    @classmethod
    def for_video(cls, width: int | None, height: int | None) -> "Canvas":
        aspect = (width / height) if width and height else 16 / 9
        return cls(width=max(1, round(CANVAS_HEIGHT * aspect)))


#: advance of a narrow character in em, generous for the bundled NanumGothic (Latin averages about 0.5 em there);
#: wide characters (Hangul, CJK) take a full em
NARROW_EM, WIDE_EM = 0.6, 1.0
_TAGS = re.compile(r"\{[^}]*\}")


def text_width(text: str, size: float) -> float:
    """An estimate of the width of one line of ASS text (override tags ignored) at font ``size``, in canvas units."""
    plain = _TAGS.sub("", text)
    return size * sum(WIDE_EM if unicodedata.east_asian_width(ch) in "WF" else NARROW_EM for ch in plain)


def fitted_size(size: int, lines: list[str], width: float, *, floor: int = 8) -> int:
    """``size``, or smaller so that the widest of ``lines`` fits in ``width`` (a portrait frame is narrow), but not
    below ``floor``."""
    widest = max((text_width(line, 1.0) for line in lines), default=0.0)
    return max(floor, min(size, int(width / widest))) if widest > 0 else size


#: the smallest text worth drawing, in the frame's own pixels: on a frame only 120 pixels high (a 1920x120 strip)
#: the canvas's sizes came to 4 to 6 pixels, and on one 120 pixels wide the card's letters fell to the floor
MIN_TEXT_PX = 11
#: a line of text's height, in em (NanumGothic's ascent and descent, with a little room)
LINE_EM = 1.15


def _floor_size(height: int | None) -> int:
    """The smallest font size, in canvas units, that draws :data:`MIN_TEXT_PX` pixels on a frame ``height`` high,
    but no more than 15 % of the height (a frame a few dozen pixels high cannot hold 11-pixel lines and a card)."""
    return min(round(CANVAS_HEIGHT * 0.15), max(1, round(MIN_TEXT_PX * CANVAS_HEIGHT / height))) if height else 8


def _pack(lines: list[list[str]], size: int, width: float) -> list[str]:
    """Each line's phrases (the parts " · " separates) put on as few rows as fit in ``width`` at ``size``: a line too
    wide for the frame breaks between phrases, never inside one."""
    rows = []
    for phrases in lines:
        row = phrases[0]
        for phrase in phrases[1:]:
            joined = f"{row} · {phrase}"
            if text_width(joined, size) <= width:
                row = joined
            else:
                rows.append(row)
                row = phrase
        rows.append(row)
    return rows


def _ass_time(seconds: float) -> str:
    return clock_time(seconds, decimals=2, hour_digits=1)


def _escape(text: str) -> str:
    # braces open override blocks and a backslash starts a tag in ASS text
    return text.replace("\\", "\u2216").replace("{", "(").replace("}", ")").replace("\n", "\\N")


def _pct(value: float) -> str:
    """A share shown alone (the unknown-gender share) as a whole percentage."""
    return f"{round(value * 100):d}%"


def _pcts(shares: dict[str, float]) -> dict[str, str]:
    """Shares of one whole shown together (labels, female / male) as whole percentages adding up to 100."""
    return {key: f"{value:d}%" for key, value in whole_percentages(shares=shares).items()}


def summary_lines(summary: Summary, *, language: str = "en", narrow: bool = False) -> list[str]:
    """The summary as short lines of text: genre, label shares, gender shares, speakers (a stage switched off
    gives no line: it says less rather than a made-up zero). ``narrow`` (a portrait frame): the unknown-gender
    share gets a line of its own."""
    words, card = CUE_WORDS[language], CARD_WORDS[language]
    shares = " · ".join(f"{words[k]} {v}" for k, v in _pcts(summary.shares).items())
    if summary.genre is None:  # too little but silence to judge: said, with no confidence to show
        lines = [f"{card['genre']}: {card['genres']['unknown']}", shares]
    else:
        genre = card["genres"].get(summary.genre.label, summary.genre.label)
        lines = [f"{card['genre']}: {genre} ({summary.genre.confidence:.2f})", shares]
    if summary.gender_shares is not None:
        # shares are of the speech whose gender is known; what the model left unknown is counted apart. Without
        # such speech (no voice at all, or none the model was sure of) both shares are 0: "female 0% · male 0% of
        # speech" would be a made-up zero, so only the unknown part is said, or nothing
        parts = []
        if any(summary.gender_shares.values()):
            genders = " · ".join(f"{words[k]} {v}" for k, v in _pcts(summary.gender_shares).items())
            parts.append(f"{genders} {card['speech']}")
        if summary.gender_unknown_share:
            parts.append(f"{card['unknown']} {_pct(summary.gender_unknown_share)}")
        # on one line the two are the card's and the badge's widest, and on a narrow frame every line shrinks with it
        if parts:
            lines += parts if narrow else [" · ".join(parts)]
    if summary.speakers is not None:
        count = len(summary.speakers)
        # a count reads "3 speakers" in English, "화자 3명" (speakers, 3 persons) in Korean: "3 화자" is not Korean
        lines.append((card["speaker"] if count == 1 else card["speakers"]).format(n=count))
    return lines


def _bar(summary: Summary, *, x: int, y: int, width: int, height: int, start: str, end: str) -> list[str]:
    """A stacked bar of the label shares, drawn with ASS vector shapes.

    Each part runs from one rounded edge to the next, the edges placed at the running total of the shares over
    their sum: parts rounded one by one left a pixel's gap or overlap between them, and the last could end past
    the bar (shares kept to 4 places may add up to a little more or less than 1)."""
    total = sum(share for share in summary.shares.values() if share > 0)
    events, done, left = [], 0.0, x
    for label, share in summary.shares.items():
        if share <= 0:
            continue
        done += share
        right = x + round(width * done / total)
        if right > left:  # a share too small for a pixel draws nothing
            part = right - left
            shape = f"m 0 0 l {part} 0 l {part} {height} l 0 {height}"
            events.append(f"Dialogue: 1,{start},{end},Shape,,0,0,0,,"
                          f"{{\\an7\\pos({left},{y})\\bord0\\shad0\\1c{LABEL_COLOURS[label]}\\p1}}{shape}")
        left = right
    return events


def _card_layout(summary: Summary, lines: list[str], *, language: str, portrait: bool, floor: int, width: float,
                 most: float) -> tuple[int, list[str], int, int]:
    """The card's font size, its rows of ASS text (the title first), and its panel's and share bar's heights.

    The rows are the title and the summary's lines, the shares line doubling as the bar's legend (each label in its
    bar colour; two to a row on a portrait frame). Where even the smallest readable size leaves a row wider than
    ``width`` (a frame a hundred-odd pixels across, where libass broke the card one word to a line), the lines break
    between their phrases instead. The panel is 56 % of the canvas's height, or taller to hold the rows at that
    size (a 1920x120 strip), up to ``most`` units (what the cues leave), and the size shrinks only where not even
    that would hold them."""
    words = CUE_WORDS[language]
    legend = [f"{{\\c{LABEL_COLOURS[k]}}}{_escape(words[k])} {v}{{\\c&HFFFFFF&}}"
              for k, v in _pcts(summary.shares).items()]
    title = f"{{\\b1}}{_escape(CARD_WORDS[language]['title'])}{{\\b0}}"
    legend_rows = [" · ".join(legend[i:i + 2]) for i in range(0, len(legend), 2)] if portrait \
        else [" · ".join(legend)]
    rows = [title, _escape(lines[0]), *legend_rows, *map(_escape, lines[2:])]
    target = max(floor, round(CANVAS_HEIGHT * 0.045))
    size = fitted_size(target, rows, width, floor=floor)
    phrases = None
    if max(text_width(row, size) for row in rows) > width:
        phrases = [[title], [_escape(lines[0])], legend,
                   *([_escape(phrase) for phrase in line.split(" · ")] for line in lines[2:])]
        size = fitted_size(target, [phrase for line in phrases for phrase in line], width, floor=floor)
        rows = _pack(phrases, size, width)
    bar_h = max(round(CANVAS_HEIGHT * 0.035), round(size * 0.6))

    def needed(rows: list[str], size: int) -> float:  # the text 6 % below the panel's top, the bar 10 % above its foot
        return (len(rows) * size * LINE_EM + size * 0.5 + bar_h) / 0.84

    while size > 1 and needed(rows, size) > most:
        size -= 1
        rows = _pack(phrases, size, width) if phrases else rows
    return size, rows, max(round(CANVAS_HEIGHT * 0.56), min(round(most), round(needed(rows, size)))), bar_h


def build_ass(result: AnalysisResult, config: RenderConfig, *, width: int | None, height: int | None,
              language: str = "en") -> str:
    """The complete ASS script (cues, summary card, badge) for one result."""
    canvas = Canvas.for_video(width, height)
    portrait = canvas.width < canvas.height
    # the figures as the JSON keeps them (shares to 4 places, the genre's confidence to 3), which the reports and the
    # archive read: rounded again from the unrounded ones, a share of 0.12504 read "13%" here and "12%" there (the
    # JSON's 0.125), and a confidence of 0.67496 "(0.67)" here and "(0.68)" there
    summary = Summary.from_dict(result.summary.to_dict())
    lines = summary_lines(summary, language=language, narrow=portrait)
    cue_texts = [_escape(cue_text(s, language=language)) for s in captioned(result.segments)]
    # sizes follow the frame's height, but no line may be wider than the frame allows: a portrait frame (9:16)
    # is 608 units wide, so its card, cues and badge shrink to fit instead of wrapping mid-phrase; nor smaller than
    # MIN_TEXT_PX pixels where the frame allows it (a 1920x120 strip: 4 to 6 pixels before)
    floor = _floor_size(height)
    margin = round(min(40, canvas.width * 0.04))
    cue_size = fitted_size(max(floor, round(canvas.height * config.subtitle_font_scale)), cue_texts,
                           canvas.width - 2 * margin, floor=floor)
    panel_w = round(canvas.width * (0.92 if portrait else 0.8))
    # a panel taller than its 56 % (a strip, a tiny frame) stays above the cues' line, which would cover its bar
    edge, cue_top = round(canvas.height * 0.02), canvas.height - round(canvas.height * 0.06) - cue_size * LINE_EM
    card_size, card_rows, panel_h, bar_h = _card_layout(summary, lines, language=language, portrait=portrait,
                                                        floor=floor, width=panel_w * 0.9, most=cue_top - 2 * edge)
    badge_text = ("\\N" if portrait else " | ").join(_escape(line) for line in (lines[0], *lines[2:]))  # genre, then gender and speakers when known
    badge_margin = round(min(24, canvas.width * 0.04))
    badge_size = fitted_size(max(floor, round(canvas.height * 0.03)), badge_text.split("\\N"),
                             canvas.width - 2 * badge_margin - canvas.width * 0.02, floor=floor)
    font = config.font_family
    duration = result.duration
    header = [
        "[Script Info]", "ScriptType: v4.00+", f"PlayResX: {canvas.width}", f"PlayResY: {canvas.height}",
        "WrapStyle: 0", "ScaledBorderAndShadow: yes", "YCbCr Matrix: TV.709", "",
        "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
        "Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, "
        "MarginL, MarginR, MarginV, Encoding",
        f"Style: Cue,{font},{cue_size},&H00FFFFFF,&H00FFFFFF,&H00000000,&H80000000,0,0,0,0,100,100,0,0,1,"
        f"{max(2, cue_size // 14)},1,2,{margin},{margin},{round(canvas.height * 0.06)},1",
        f"Style: Card,{font},{card_size},&H00FFFFFF,&H00FFFFFF,&H00000000,&H40000000,0,0,0,0,100,100,0,0,1,"
        f"{max(2, card_size // 16)},0,5,{margin},{margin},40,1",
        f"Style: Badge,{font},{badge_size},&H00FFFFFF,&H00FFFFFF,&H00000000,&H80000000,0,0,0,0,100,100,0,0,3,"
        f"{max(2, badge_size // 5)},0,9,{badge_margin},{badge_margin},24,1",
        f"Style: Shape,{font},10,&H00FFFFFF,&H00FFFFFF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,0,0,7,0,0,0,1",
        "", "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
    ]
    events = []
    card_end = min(config.card_seconds, duration)
    if card_end > 0:
        start, end = _ass_time(0), _ass_time(card_end)
        panel_x = (canvas.width - panel_w) // 2
        panel_y = max(edge, min((canvas.height - panel_h) // 2, round(cue_top) - edge - panel_h))
        events.append(f"Dialogue: 0,{start},{end},Shape,,0,0,0,,{{\\an7\\pos({panel_x},{panel_y})\\bord0\\shad0"
                      f"\\1c&H201810&\\1a&H30&\\p1}}m 0 0 l {panel_w} 0 l {panel_w} {panel_h} l 0 {panel_h}")
        events.append(f"Dialogue: 2,{start},{end},Card,,0,0,0,,{{\\an8\\pos({canvas.width // 2},"
                      f"{panel_y + round(panel_h * 0.06)})}}" + "\\N".join(card_rows))
        bar_w = round(panel_w * 0.86)
        events += _bar(summary, x=(canvas.width - bar_w) // 2,
                       y=panel_y + panel_h - bar_h - round(panel_h * 0.1), width=bar_w, height=bar_h,
                       start=start, end=end)
    if config.badge and duration > card_end:
        events.append(f"Dialogue: 0,{_ass_time(card_end)},{_ass_time(duration)},Badge,,0,0,0,,{badge_text}")
    for segment in captioned(result.segments):
        events.append(f"Dialogue: 3,{_ass_time(segment.start)},{_ass_time(segment.end)},Cue,,0,0,0,,"
                      f"{{\\3c{LABEL_COLOURS[segment.label]}}}{_escape(cue_text(segment, language=language))}")
    return "\n".join(header + events) + "\n"


def write_ass(result: AnalysisResult, config: RenderConfig, path: Path, *, width: int | None,
              height: int | None, language: str = "en") -> None:
    text = build_ass(result, config, width=width, height=height, language=language)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:  # a full TMPDIR is said in one line, like every other output problem
        raise OutputError(f"cannot write the subtitle script {path.name} in {path.parent}: {err.strerror} "
                          f"(set TMPDIR to a roomier disk)") from None
