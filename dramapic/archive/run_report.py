"""The page ``dramapic report RUN.dramapic.json`` writes: one run, not an archive of one.

It shows the run's time line (one lane per speaker with their voice turns, a lane for voice without a speaker
when there is any, and a lane for song, noise and silence, all in the video's label colours), the shares of
the duration (a stacked bar and the numbers), the speakers (gender, talk time, gender confidence), the genre
with its scores, and the source. Same rules as the archive page (:mod:`dramapic.archive.report`): one file,
inline CSS and SVG, nothing fetched, and only the small script that measures the drawn charts.

A run's JSON may have been made with ``--no-speakers`` (``summary.speakers`` is null) or ``--no-gender``
(``summary.gender_shares`` is null, every gender null): the page says so instead of showing zeros. A speaker whose
gender is null is "unknown" when gender was estimated (the model was not sure enough), and "–" when it was
switched off: nothing was measured, so nothing is unknown.
"""

from __future__ import annotations

import json
import math
import stat
import time
from pathlib import Path

from ..analysis.composition import GENRE_MIN_CONTENT_S
from ..errors import InputError
from ..render import LABEL_RGB
from ..result import SCHEMA, STAGE1_LABELS, AnalysisResult, Segment
from ..writers import milliseconds
from .report import (CHECK_SCRIPT, CSS, GENDER_COLOURS, GENRE_COLOUR, SPEAKER_COLOUR, WIDTH, _card, _e, _figure,
                     _hours, _legend, _pct, _pcts, _raise_shown, _table, column_svg, stacked_rows_svg)

#: a speaker whose gender is null (gender switched off, or the model was not sure enough)
UNKNOWN_COLOUR = "#9C8FA8"
SPEAKER_GENDER_COLOURS = {**GENDER_COLOURS, "unknown": UNKNOWN_COLOUR}
#: the lane that holds everything that is not a voice turn
OTHER_LANE = "song · noise · silence"
#: the lane for voice segments without a speaker (diarization off, or a turn it left unassigned)
VOICE_LANE = "voice (no speaker)"

LANE_LABEL_W = 150
LANE_H = 26
AXIS_H = 26
#: a generous width of one character of a tick label (11 px digits are about 6.5 px wide)
TICK_CHAR_W = 7.0
MIN_BLOCK_W = 0.6  # px: a 10 ms turn in a two-hour film still shows (and still counts as drawn)

RUN_CSS = """
.lane-name{font-size:12px;fill:#333}.lane-bg{fill:#f3f3f6}
svg .tick{stroke:#ccc;stroke-width:1}svg .tick-label{font-size:11px;fill:#666}
dl.source{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;background:#fff;border:1px solid #e2e2e6;
border-radius:8px;padding:10px 12px;margin:8px 0}
dl.source dt{color:#666}dl.source dd{margin:0;word-break:break-all}
"""


def _not_json(constant: str) -> float:
    # NaN and Infinity are not JSON, but Python's reader takes them: a hand-edited one ended in a ValueError or
    # OverflowError traceback where the time line rounds it
    raise ValueError(f"{constant} is not a number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: Python's reader makes it infinity
        raise ValueError(f"{text} is out of range")
    return value


#: the largest file read as a run's JSON. A run's JSON takes about 470 bytes a segment, and the default pipeline's
#: shortest segment lasts 0.3 s: a 24-hour recording cut that finely is some 290,000 segments, 135 MB. Anything
#: larger is another kind of file (a video, a disk image given by mistake), refused before it is read into memory.
MAX_RUN_JSON_BYTES = 256 * 2**20
#: how much of a file is looked at before it is read whole: a JSON object's "{" comes first (after white space)
HEAD_BYTES = 4096
SQLITE_MAGIC = b"SQLite format 3\x00"


def _read_json_text(source: Path) -> str:
    """The text of ``source`` once its first bytes and its size say it can be a run's JSON (:class:`InputError`
    otherwise, without reading the rest: ``dramapic report`` given a 50 GB video must not read 50 GB)."""
    try:
        info = source.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the open, /dev/zero never ends
            raise InputError(f"{source} is not a regular file (dramapic report takes an output folder or a run's "
                             ".dramapic.json)")
        with source.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
            if head.startswith(SQLITE_MAGIC):
                raise InputError(f"{source} is an SQLite database, not a run's JSON: pass the output folder it is in "
                                 f"(dramapic report {source.parent})")
            if not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):  # (a BOM is refused by the JSON reader)
                raise InputError(f"{source} is not a dramapic JSON file (it does not start with a JSON object)")
            if info.st_size > MAX_RUN_JSON_BYTES:
                raise InputError(f"{source} is not a dramapic JSON file ({info.st_size / 2**20:,.0f} MiB; a run's "
                                 f"JSON is far below {MAX_RUN_JSON_BYTES // 2**20} MiB)")
            # at most the cap, and one byte more to notice a file that grew since its size was read
            rest = handle.read(MAX_RUN_JSON_BYTES + 1 - len(head))
    except OSError as err:
        raise InputError(f"cannot read {source}: {err.strerror or err}") from None
    if len(head) + len(rest) > MAX_RUN_JSON_BYTES:
        raise InputError(f"{source} is not a dramapic JSON file (larger than {MAX_RUN_JSON_BYTES // 2**20} MiB)")
    try:
        return (head + rest).decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{source} is not a dramapic JSON file ({err})") from None


def read_run(source: Path) -> AnalysisResult:
    """One run's ``.dramapic.json``, checked.

    Raises
    ------
    InputError
        The file is missing, unreadable, not a regular file, does not start like JSON, is larger than any run's JSON
        (:data:`MAX_RUN_JSON_BYTES`), is not JSON, not ``dramapic/1``, or lacks a field the contract requires.
    """
    if not source.exists():
        raise InputError(f"no such file or folder: {source}")
    text = _read_json_text(source)
    try:
        data = json.loads(text, parse_constant=_not_json, parse_float=_finite)
    except ValueError as err:
        raise InputError(f"{source} is not a dramapic JSON file ({err})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise InputError(f"{source} is not a {SCHEMA} JSON file (no \"schema\": \"{SCHEMA}\")")
    try:
        return AnalysisResult.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as err:  # Overflow: 1 and 400 zeros
        raise InputError(f"{source} is not a valid {SCHEMA} file (missing or bad {err})") from None


# -- the time line ---------------------------------------------------------------------------------------------

def _clock(seconds: float) -> str:
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _stamp(seconds: float) -> str:
    """A segment's time to the millisecond, as its cue has it (``0:12.200``, ``1:00:01.200``): whole seconds gave a
    0.3 s turn "0:12–0:12"."""
    whole, fraction = divmod(milliseconds(max(0.0, seconds)), 1000)
    return f"{_clock(whole)}.{fraction:03d}"


def _tick_step(duration: float, wanted: int = 8) -> float:
    """A round tick spacing (1 s … 1 h) giving about ``wanted`` ticks over ``duration``."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if duration / step <= wanted:
            return float(step)
    return 3600.0 * max(1, round(duration / 3600 / wanted))


def lanes(result: AnalysisResult) -> list[tuple[str, str, list[Segment]]]:
    """The time line's lanes, top to bottom: (key, title, segments).

    One lane per speaker (in ``summary.speakers`` order, then any speaker only the segments name), a lane for
    voice without a speaker when there is any, and the lane for song, noise and silence.
    """
    order = [s.id for s in result.summary.speakers or ()]
    for segment in result.segments:
        if segment.label == "voice" and segment.speaker and segment.speaker not in order:
            order.append(segment.speaker)
    genders = {s.id: s.gender for s in result.summary.speakers or ()}
    turns: dict[str, list[Segment]] = {speaker: [] for speaker in order}
    loose, other = [], []
    for segment in result.segments:
        if segment.label != "voice":
            other.append(segment)
        elif segment.speaker:
            turns[segment.speaker].append(segment)
        else:
            loose.append(segment)
    # gender off: the lane is the speaker's alone, not "unknown" as if the model had been unsure
    gender_on = result.summary.gender_shares is not None
    out = [(f"speaker:{speaker}", f"{speaker} · {genders.get(speaker) or 'unknown'}" if gender_on else speaker,
            turns[speaker]) for speaker in order]
    if loose:
        out.append(("voice", VOICE_LANE, loose))
    out.append(("other", OTHER_LANE, other))
    return out


def timeline_svg(result: AnalysisResult) -> tuple[str, int]:
    """Segments as blocks on a time axis, one lane per speaker plus the non-voice lane.

    Returns
    -------
    svg : str
    bars : int
        The number of ``rect.bar`` blocks drawn (one per segment).
    """
    duration = max(result.duration, max((s.end for s in result.segments), default=0.0), 1e-6)
    rows = lanes(result)
    gender_on = result.summary.gender_shares is not None
    plot_x, plot_w = LANE_LABEL_W, WIDTH - LANE_LABEL_W - 10
    height = AXIS_H + len(rows) * LANE_H + 6
    parts = [f'<svg class="plot" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
             f'xmlns="http://www.w3.org/2000/svg">']
    step = _tick_step(duration)
    tick = 0.0
    while tick <= duration + 1e-9:
        x = plot_x + plot_w * tick / duration
        label = _clock(tick)
        # centred on its tick, a label at the end of the axis (a 30 s clip's "0:30") ran past the drawing's right
        # edge and was cut to "0:3": there it ends at its tick instead
        anchor = "end" if x + TICK_CHAR_W * len(label) / 2 > WIDTH else "middle"
        parts.append(f'<line class="tick" x1="{x:.2f}" y1="{AXIS_H - 6}" x2="{x:.2f}" y2="{height - 4}"/>'
                     f'<text class="tick-label" x="{x:.2f}" y="{AXIS_H - 10}" text-anchor="{anchor}">'
                     f"{label}</text>")
        tick += step
    bars = 0
    for index, (key, title, segments) in enumerate(rows):
        y = AXIS_H + index * LANE_H
        parts.append(f'<g class="lane" data-lane="{_e(key)}" data-turns="{len(segments)}">'
                     f'<rect class="lane-bg" x="{plot_x}" y="{y + 2}" width="{plot_w}" height="{LANE_H - 4}"/>')
        swatch = ""
        if key.startswith("speaker:") and gender_on:  # the swatch is the speaker's gender colour
            gender = title.rsplit(" · ", 1)[-1]
            swatch = (f'<rect x="4" y="{y + 8}" width="10" height="10" rx="2" '
                      f'fill="{SPEAKER_GENDER_COLOURS.get(gender, UNKNOWN_COLOUR)}"/>')
        parts.append(f'{swatch}<text class="lane-name" x="{20 if swatch else 4}" y="{y + LANE_H * 0.65:.1f}">'
                     f"{_e(title)}</text>")
        for segment in segments:
            x = plot_x + plot_w * max(0.0, segment.start) / duration
            width = max(MIN_BLOCK_W, plot_w * max(0.0, segment.end - segment.start) / duration)
            what = segment.label
            if segment.speaker:
                what += f", {segment.speaker}"
            if segment.label == "voice" and gender_on:
                what += f", {segment.gender or 'gender unknown'}"
            parts.append(f'<rect class="bar" data-label="{_e(segment.label)}" x="{x:.2f}" y="{y + 4}" '
                         f'width="{width:.2f}" height="{LANE_H - 8}" fill="{LABEL_RGB.get(segment.label, "#000")}">'
                         f"<title>{_e(_stamp(segment.start))}–{_e(_stamp(segment.end))} "
                         f"({segment.end - segment.start:.2f} s) {_e(what)}, confidence "
                         f"{segment.confidence:.2f}</title></rect>")
            bars += 1
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts), bars


# -- the page --------------------------------------------------------------------------------------------------

def _audio_row(result: AnalysisResult) -> tuple[tuple[str, str], ...]:
    """The source's ``audio`` row: the track and channel analysed, where not the first track's mix (a dub, one
    language of a dual-mono broadcast: the figures are of that sound); none for a JSON that does not record them."""
    track, channel = result.source.audio_track, result.source.audio_channel
    if track is None or (track == 0 and channel is None):
        return ()
    return (("audio", f"track {track}" + (f", {channel} channel" if channel else "")),)


def _level_row(result: AnalysisResult) -> tuple[tuple[str, str], ...]:
    """The source's ``level`` row where the analysis heard a quiet recording raised (its figures are of the
    raised sound; the outputs keep the file's); none at its own level and for a JSON that does not record it."""
    raised = _raise_shown(result.source.gain_db)
    return (("level", f"too quiet as recorded: analysed raised by {raised}"),) if raised else ()


def _settings_checksum(result: AnalysisResult) -> str:
    """`` (settings sha256 …)``, the start of the checksum the JSON records of the settings the run used: it tells
    an edited copy of a pipeline that kept its name and version from the pipeline itself; "" for a JSON written
    before the settings were recorded."""
    sha256 = result.pipeline_sha256  # not result.to_dict()'s: that converts every segment for one checksum
    return f" (settings sha256 {sha256[:12]})" if sha256 else ""


def render_run_html(result: AnalysisResult, *, title: str, source: str, generated: float | None = None) -> str:
    """One run's page as one HTML document (inline CSS and SVG, nothing fetched).

    Parameters
    ----------
    result : AnalysisResult
        The run, as read from its JSON.
    title : str
    source : str
        Where the JSON was read from (shown under the title).
    generated : float, optional
        POSIX time the page was made (default: now).
    """
    from .. import __version__

    summary = result.summary
    duration = result.duration
    speakers = summary.speakers
    sections = []

    voice_turns = sum(1 for s in result.segments if s.label == "voice")
    # no voice of known gender (no voice at all, or none the model was sure of): the JSON's shares are both 0, and
    # "0%" would be a made-up zero (the burned-in card says nothing then either)
    gender_known = bool(summary.gender_shares) and any(summary.gender_shares.values())
    # each set of shares as whole percentages adding up to 100; a card reads its share as the legend below does
    label_pct = _pcts({k: summary.shares.get(k, 0.0) for k in STAGE1_LABELS})
    gender_pct = _pcts({k: float(summary.gender_shares.get(k, 0.0)) for k in GENDER_COLOURS}) if gender_known else {}
    cards = [
        _card(_hours(duration), "duration"),
        _card(label_pct["voice"], "voice"),
        _card(str(voice_turns), "voice turns"),
        _card("–" if speakers is None else str(len(speakers)),
              "speakers" + (" (ids switched off)" if speakers is None else "")),
        # a share of the voice whose gender is known (as the JSON's gender_shares and the archive page have it):
        # "of voice" read 75% where the female voice was 60% of all voice, a fifth of it of unknown gender
        _card(gender_pct["female"] if gender_known else "–",
              "female share of voice" + (" (gender off)" if summary.gender_shares is None
                                         else " with a known gender" if gender_known
                                         else " (no voice of known gender)")),
        _card("unknown", "genre (too little but silence to judge)") if summary.genre is None
        # the confidence as the JSON, the burned-in card, the run's summary line and the score bars below give it
        # (0.68): the page said "68%" over bars reading 0.68 for the same number
        else _card(summary.genre.label, f"genre (confidence {summary.genre.confidence:.2f})"),
    ]
    sections.append(f'<section id="run"><h2>This run</h2><div class="cards">{"".join(cards)}</div></section>')

    # time line
    svg, bars = timeline_svg(result)
    sections.append('<section id="timeline"><h2>Time line</h2>' + _legend(LABEL_RGB)
                    + _figure("timeline", "Every segment on the time axis: one lane per speaker with their voice "
                              "turns, then song, noise and silence. Hover a block for its times.", svg, bars,
                              "" if speakers is not None else "The run was made without speaker separation "
                              "(--no-speakers): voice is one lane.")
                    + "</section>")

    # shares
    seconds = {k: duration * summary.shares.get(k, 0.0) for k in STAGE1_LABELS}
    svg, bars = stacked_rows_svg([("whole duration", dict(summary.shares), _hours(duration))], LABEL_RGB, row_h=34)
    legend = _legend(LABEL_RGB, label_pct)
    table = _table(("label", "share", "time", "segments"),
                   [(k, f"{100 * summary.shares.get(k, 0.0):.1f}%", _hours(seconds[k]),
                     sum(1 for s in result.segments if s.label == k)) for k in STAGE1_LABELS], numeric=(1, 2, 3))
    parts = ['<section id="shares"><h2>Shares</h2>', legend,
             _figure("shares", "Share of the duration that is voice, song, noise and silence.", svg, bars), table]
    if summary.gender_shares is None:
        parts.append('<p class="sub">Gender was not estimated for this run (--no-gender).</p>')
    elif not gender_known:
        parts.append('<p class="sub">No voice has a known gender'
                     + (f": all {_hours(seconds['voice'])} of voice is of unknown gender.</p>" if seconds["voice"] > 0
                        else " (there is no voice).</p>"))
    else:
        shares = {k: float(summary.gender_shares.get(k, 0.0)) for k in GENDER_COLOURS}
        # the bar spans the voice of known gender only, so its time is that voice's, and the rest is said apart:
        # the JSON's gender_unknown_share was nowhere on the page, and the bar's "voice time" counted it in
        unknown = summary.gender_unknown_share or 0.0
        known_seconds = seconds["voice"] * (1.0 - unknown)
        svg, bars = stacked_rows_svg([("known gender", shares, _hours(known_seconds))], GENDER_COLOURS, row_h=34)
        parts += [_legend(GENDER_COLOURS, gender_pct),
                  _figure("gender", "Female and male shares of the voice time whose gender is known.", svg, bars,
                          f"Gender unknown: {_hours(seconds['voice'] * unknown)} ({_pct(unknown)} of the voice "
                          "time), left out of these shares." if unknown else "")]
    sections.append("".join(parts) + "</section>")

    # speakers
    if speakers is None:
        # told apart all the same (gender is decided per speaker), but neither ids nor talk times are kept
        body = '<p class="sub">Speaker ids were switched off for this run (--no-speakers).</p>'
    elif not speakers:
        body = '<p class="sub">No speaker was found.</p>'
    else:
        voice_seconds = sum(s.seconds for s in speakers)
        turns = {s.id: 0 for s in speakers}
        for segment in result.segments:
            if segment.label == "voice" and segment.speaker in turns:
                turns[segment.speaker] += 1
        peak = max(s.seconds for s in speakers) or None
        if summary.gender_shares is None:  # gender off: not measured ("–"), which is not "unknown"
            rows = [(s.id, {"talk": s.seconds}, _hours(s.seconds)) for s in speakers]
            svg, bars = stacked_rows_svg(rows, {"talk": SPEAKER_COLOUR}, scale=peak)
            legend, caption = "", "Talk time per speaker (gender was not estimated: --no-gender)."
        else:
            rows = [(s.id, {s.gender or "unknown": s.seconds}, _hours(s.seconds)) for s in speakers]
            svg, bars = stacked_rows_svg(rows, SPEAKER_GENDER_COLOURS, scale=peak)
            legend, caption = _legend(SPEAKER_GENDER_COLOURS), "Talk time per speaker, coloured by gender."
        table = _table(("speaker", "gender", "gender confidence", "talk time", "share of talk", "turns"),
                       [(s.id, "–" if summary.gender_shares is None else s.gender or "unknown",
                         "–" if s.gender is None else f"{s.gender_confidence:.2f}",
                         _hours(s.seconds), _pct(s.seconds / voice_seconds) if voice_seconds else "–", turns[s.id])
                        for s in speakers], numeric=(2, 3, 4, 5))
        body = legend + _figure("speakers", caption, svg, bars) + table
    sections.append(f'<section id="speakers"><h2>Speakers</h2>{body}</section>')

    # genre
    genre = summary.genre
    if genre is None:  # no scores to draw: the rules were not applied
        sections.append('<section id="genre"><h2>Genre: unknown</h2><p>Too little audio besides silence to judge a '
                        f'genre (under {GENRE_MIN_CONTENT_S:g} s of voice, song and noise).</p></section>')
    else:
        scores = sorted(genre.scores.items(), key=lambda item: (-item[1], item[0]))
        svg, bars = column_svg([(name, max(0.0, float(score)), f"{score:.2f}") for name, score in scores],
                               GENRE_COLOUR)
        sections.append(f'<section id="genre"><h2>Genre: {_e(genre.label)} ({genre.confidence:.2f})</h2>'
                        + _figure("genre", "The genre model's score for each genre.", svg, bars) + "</section>")

    # source
    models = ", ".join(f"{m.get('name', '?')} {m.get('version', '')}".strip() for m in result.models) or "–"
    rows = (("path", result.source.path), ("duration", f"{_hours(duration)} ({duration:.2f} s)"),
            *_audio_row(result), *_level_row(result), ("sha256", result.source.sha256),
            ("pipeline", f"{result.pipeline_name} {result.pipeline_version}" + _settings_checksum(result)),
            ("models", models), ("segments", str(len(result.segments))), ("JSON", source))
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
    sections.append(f'<section id="source"><h2>Source</h2><dl class="source">{items}</dl></section>')

    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(generated or time.time()))
    return ("<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}{RUN_CSS}</style></head><body><main>"
            f"<h1>{_e(title)}</h1>"
            f'<p class="sub">{_e(result.source.path)} · generated {_e(stamp)} by dramapic {_e(__version__)}</p>'
            + "".join(sections)
            + f"</main><script>{CHECK_SCRIPT}</script></body></html>\n")
