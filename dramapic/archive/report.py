"""``dramapic report``: a self-contained HTML report of an archive (or of one run), plus a CSV (and Parquet when
pyarrow is installed) of the per-video summaries.

The page needs nothing from a network: the charts are inline SVG drawn here (no plotting or JavaScript
library), the styles are inline, and the only script is a few lines that measure the drawn charts and write
what they found into ``data-`` attributes (``data-rendered-bars`` on each chart, ``data-charts-rendered`` on
``<html>``), so a headless browser can check that the charts really render.

What it shows: archive totals; the archive's overall composition; the genre mix; female versus male speaking
time, overall and per video; speakers per video; the composition of each video; the slowest files and the
failed ones; each file's notes; a table of the videos with the audio track and channel each one's figures describe
and, for a recording analysed raised, by how much (charts and tables show at most :data:`MAX_ROWS` videos; the
CSV has every one).
One run's JSON gets a page of its own instead
(:mod:`dramapic.archive.run_report`: its time line, shares, speakers, genre and source).
"""

from __future__ import annotations

import csv
import html
import io
import logging
import os
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..errors import InputError, OutputError
from ..render import LABEL_RGB
from ..result import AnalysisResult, whole_percentages
from .notes import unnamed
from .store import DB_NAME, Store, VideoRecord, video_record
from ..writers import OutputSet, make_output_dir, not_utf8, remove_made_dirs, too_long_part

log = logging.getLogger(__name__)

LABELS = ("voice", "song", "noise", "silence")
# the summary card's colours (render.LABEL_COLOURS, there in ASS blue-green-red order)
LABEL_COLOURS = LABEL_RGB  # one set of label colours: the video's (render.py)
GENDER_COLOURS = {"female": "#C2185B", "male": "#00897B"}
GENRE_COLOUR = "#6A5ACD"
SPEAKER_COLOUR = "#4E79A7"
MAX_ROWS = 1000          # per-video charts and tables show at most this many videos (the CSV has all of them)
SLOWEST = 10

# audio_track and audio_channel came last (2026-12-06), after every column a script may already read by position;
# notes after them (2026-12-07), gain_db last (2026-12-07)
CSV_COLUMNS = ("path", "status", "duration_s", "voice", "song", "noise", "silence",
               "female_share", "male_share", "female_s", "male_s", "unknown_s", "speakers", "genre", "genre_confidence",
               "processing_s", "realtime_factor", "worker", "attempts", "error_type", "error", "audio_track",
               "audio_channel", "notes", "gain_db")


@dataclass(frozen=True)
class ReportData:
    """What a report is made of: the videos (done and failed) and where they came from."""

    title: str
    source: str
    videos: tuple[VideoRecord, ...]
    batches: tuple[dict[str, Any], ...] = ()
    generated: float = 0.0
    #: the analysis itself when the source is one run's JSON (its page is drawn from it)
    run: AnalysisResult | None = None
    #: files recorded earlier that a batch found gone from the archive (deleted, moved, renamed): not in ``videos``
    missing: tuple[str, ...] = ()

    @property
    def done(self) -> tuple[VideoRecord, ...]:
        return tuple(v for v in self.videos if v.status == "done")

    @property
    def failed(self) -> tuple[VideoRecord, ...]:
        return tuple(v for v in self.videos if v.status != "done")

    def totals(self) -> dict[str, Any]:
        """Archive totals: counts, hours, speaking time by gender, processing speed."""
        done = self.done
        audio = sum(v.duration or 0.0 for v in done)
        processing = sum(v.seconds or 0.0 for v in done if v.seconds)
        timed_audio = sum(v.duration or 0.0 for v in done if v.seconds)
        # a video analysed with gender off (--no-gender) has no gender figures: out of these sums, not counted as 0
        measured = [v for v in done if v.female_seconds is not None]
        female = sum(v.female_seconds or 0.0 for v in measured)
        male = sum(v.male_seconds or 0.0 for v in measured)
        unknown = sum(v.unknown_seconds or 0.0 for v in measured)
        label_seconds = {k: sum((v.duration or 0.0) * v.shares.get(k, 0.0) for v in done) for k in LABELS}
        return {
            "videos": len(done), "failed": len(self.failed), "audio_hours": audio / 3600.0,
            "processing_hours": processing / 3600.0,
            "realtime_factor": timed_audio / processing if processing > 0 else None,
            "female_seconds": female, "male_seconds": male,
            "female_share": female / (female + male) if female + male > 0 else 0.0,
            "unknown_seconds": unknown,  # voice with gender left unknown: out of the female share, counted apart
            "unknown_share": unknown / (female + male + unknown) if female + male + unknown > 0 else 0.0,
            "gender_measured": len(measured),  # the videos the gender figures come from
            "speakers": sum(v.n_speakers for v in done if v.n_speakers is not None),  # of those diarized
            "label_seconds": label_seconds,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "source": self.source, "generated": self.generated, "totals": self.totals(),
                "videos": [v.to_dict() for v in self.videos], "batches": [dict(b) for b in self.batches],
                "missing": list(self.missing)}


@dataclass(frozen=True)
class ReportOutputs:
    html: Path
    csv: Path
    parquet: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"html": str(self.html), "csv": str(self.csv),
                "parquet": str(self.parquet) if self.parquet else None}


# -- loading ---------------------------------------------------------------------------------------------------

def load_report_data(source: str | Path, *, title: str | None = None) -> ReportData:
    """Read an archive's output folder (its ``dramapic.sqlite``) or one run's ``.dramapic.json``.

    Raises
    ------
    InputError
        ``source`` is missing, a folder without a database, or a file that is not a dramapic/1 JSON.
    OutputError
        The database cannot be read (a newer schema, a damaged file).
    """
    source = Path(source)
    if source.is_dir():
        database = source / DB_NAME
        if not database.is_file():
            raise InputError(f"{source} has no {DB_NAME}: run `dramapic batch ARCHIVE -o {source}` first, or pass "
                             "a run's .dramapic.json")
        with Store.open_reader(database) as store:  # an archive an older dramapic wrote is read upgraded
            videos = tuple(store.videos())
            batches = tuple(store.batches())
            missing = tuple(store.missing())
        return ReportData(title=title or f"dramapic archive report: {source.resolve().name}",
                          source=str(source), videos=videos, batches=batches, generated=time.time(), missing=missing)
    from .run_report import read_run  # it imports this module's drawing helpers

    result = read_run(source)
    record = video_record(result, path=Path(result.source.path).name)
    return ReportData(title=title or f"dramapic report: {Path(result.source.path).name}", source=str(source),
                      videos=(record,), generated=time.time(), run=result)


# -- SVG charts ------------------------------------------------------------------------------------------------

WIDTH = 900
LABEL_W = 250
VALUE_W = 90


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _columns(char: str) -> int:
    """How many Latin characters' widths ``char`` takes: two for a wide one (Hangul, Chinese, Japanese)."""
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _short(text: str, limit: int = 38) -> str:
    """``text`` cut at its start to ``limit`` Latin characters' widths (what a chart's label column holds), "…" first.
    Counted in characters, a Korean name, twice as wide, ran past the chart's left edge, "…" and all."""
    if sum(map(_columns, text)) <= limit:
        return text
    kept, width = len(text), 1  # the "…"
    while kept > 0 and width + _columns(text[kept - 1]) <= limit:
        kept -= 1
        width += _columns(text[kept])
    return "…" + text[kept:]


def _hours(seconds: float) -> str:
    """``12.5 s``, ``3.2 min`` or ``1.50 h``. The unit is chosen on the value as shown: 59.97 s read "60.0 s"
    beside a minute's "1.0 min", and 3599.9 s "60.0 min"."""
    if round(seconds / 60, 1) >= 60:
        return f"{seconds / 3600:.2f} h"
    if round(seconds, 1) >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def _pct(value: float) -> str:
    """A share shown alone (the female share of the archive, one speaker's share of talk)."""
    return f"{100 * value:.0f}%"


def _pcts(shares: dict[str, float]) -> dict[str, str]:
    """Shares of one whole shown together (labels, female / male) as whole percentages adding up to 100."""
    return {key: f"{value}%" for key, value in whole_percentages(shares=shares).items()}


def _figure(name: str, caption: str, svg: str, bars: int, note: str = "") -> str:
    extra = f'<p class="note">{_e(note)}</p>' if note else ""
    return (f'<figure class="chart" data-chart="{_e(name)}" data-bars="{bars}">{svg}'
            f"<figcaption>{_e(caption)}</figcaption>{extra}</figure>")


def _legend(colours: dict[str, str], values: dict[str, str] | None = None) -> str:
    items = []
    for key, colour in colours.items():
        text = f"{key} {values[key]}" if values and key in values else key
        items.append(f'<span class="key"><i style="background:{colour}"></i>{_e(text)}</span>')
    return f'<div class="legend">{"".join(items)}</div>'


def stacked_rows_svg(rows: Sequence[tuple[str, dict[str, float], str]], colours: dict[str, str], *,
                     scale: float | None = None, row_h: int = 22,
                     value_format: Callable[[float], str] | None = None) -> tuple[str, int]:
    """Horizontal stacked bars, one row per item.

    Parameters
    ----------
    rows : sequence of (label, {part: value}, value text)
        ``value text`` is written right of the bar.
    colours : dict
        Part name → colour, in stacking order.
    scale : float, optional
        The value a full-width bar stands for; default: each row is a 100% bar of its own total.
    row_h : int
        Height of a row in pixels.
    value_format : callable, optional
        How a part's value reads in its tooltip when ``scale`` is given (default: a duration, the values being
        seconds); without ``scale`` the tooltip gives the part's share of the row (the row's shares adding up to 100).

    Returns
    -------
    svg : str
    bars : int
        The number of ``rect.bar`` elements drawn (parts with a zero value are not drawn).
    """
    plot_w = WIDTH - LABEL_W - VALUE_W
    height = max(1, len(rows)) * row_h + 8
    parts = [f'<svg class="plot" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
             f'role="img" xmlns="http://www.w3.org/2000/svg">']
    bars = 0
    for index, (label, values, value_text) in enumerate(rows):
        y = 4 + index * row_h
        parts.append(f'<text class="label" x="{LABEL_W - 8}" y="{y + row_h * 0.68:.1f}" text-anchor="end">'
                     f"<title>{_e(label)}</title>{_e(_short(label))}</text>")
        total = sum(max(0.0, v) for v in values.values())
        full = scale if scale else total
        # without a scale the parts of a row are one whole, their tooltips the row's shares: adding up to 100, as
        # the legend above reads them
        shares = _pcts({k: max(0.0, v) / total for k, v in values.items()}) if not scale and total > 0 else {}
        x = float(LABEL_W)
        for key, colour in colours.items():
            value = max(0.0, values.get(key, 0.0))
            if value <= 0 or full <= 0:
                continue
            width = plot_w * value / full
            if width < 0.05:
                continue
            parts.append(f'<rect class="bar" data-part="{_e(key)}" x="{x:.2f}" y="{y + 2}" width="{width:.2f}" '
                         f'height="{row_h - 6}" fill="{colour}"><title>{_e(label)}: {_e(key)} '
                         f"{_e((value_format or _hours)(value) if scale else shares[key])}</title></rect>")
            bars += 1
            x += width
        parts.append(f'<text class="value" x="{WIDTH - VALUE_W + 6}" y="{y + row_h * 0.68:.1f}">'
                     f"{_e(value_text)}</text>")
    parts.append("</svg>")
    return "".join(parts), bars


def column_svg(columns: Sequence[tuple[str, float, str]], colour: str, *, height: int = 220) -> tuple[str, int]:
    """Vertical bars: (category, value, value text) each."""
    n = max(1, len(columns))
    top, bottom = 20, 34
    plot_h = height - top - bottom
    slot = (WIDTH - 40) / n
    width = min(80.0, slot * 0.7)
    peak = max((c[1] for c in columns), default=0.0) or 1.0
    parts = [f'<svg class="plot" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
             f'xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="20" y1="{top + plot_h}" x2="{WIDTH - 20}" y2="{top + plot_h}" class="axis"/>']
    bars = 0
    for index, (category, value, text) in enumerate(columns):
        centre = 20 + slot * (index + 0.5)
        bar_h = plot_h * value / peak
        if bar_h >= 0.05:
            parts.append(f'<rect class="bar" x="{centre - width / 2:.2f}" y="{top + plot_h - bar_h:.2f}" '
                         f'width="{width:.2f}" height="{bar_h:.2f}" fill="{colour}">'
                         f"<title>{_e(category)}: {_e(text)}</title></rect>")
            bars += 1
        parts.append(f'<text class="value" x="{centre:.2f}" y="{top + plot_h - bar_h - 5:.2f}" '
                     f'text-anchor="middle">{_e(text)}</text>')
        parts.append(f'<text class="label" x="{centre:.2f}" y="{top + plot_h + 20}" text-anchor="middle">'
                     f"{_e(category)}</text>")
    parts.append("</svg>")
    return "".join(parts), bars


# -- the page --------------------------------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans',sans-serif;margin:0;color:#1d1d1f;
background:#f6f6f8}
main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.card{background:#fff;border:1px solid #e2e2e6;border-radius:8px;padding:10px 12px}
.card b{display:block;font-size:22px}.card span{color:#666;font-size:12px}
figure.chart{background:#fff;border:1px solid #e2e2e6;border-radius:8px;margin:8px 0;padding:10px;overflow-x:auto}
figure.chart svg{display:block;max-width:100%;height:auto}
figcaption{color:#555;font-size:12px;margin-top:4px}
.note{color:#a05a00;font-size:12px;margin:4px 0 0}
svg text{font-size:12px;fill:#333}svg .axis{stroke:#999;stroke-width:1}
.legend{margin:4px 0 6px}.key{margin-right:14px;font-size:12px;white-space:nowrap}
.key i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:4px;vertical-align:-1px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:12px}
th,td{border:1px solid #e2e2e6;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1b7f3b}.bad{color:#b00020}
"""

# Measures every chart after layout and records what it found, for the headless-browser test (and for anyone
# reading the DOM): rendered size of each chart's SVG and how many of its bars have a non-zero size.
CHECK_SCRIPT = """
(function () {
  var figures = document.querySelectorAll('figure[data-chart]'), good = 0;
  for (var i = 0; i < figures.length; i++) {
    var f = figures[i], svg = f.querySelector('svg'), box = svg ? svg.getBoundingClientRect() : null;
    var bars = f.querySelectorAll('.bar'), drawn = 0;
    for (var j = 0; j < bars.length; j++) {
      var b = bars[j].getBoundingClientRect();
      if (b.width > 0 && b.height > 0) { drawn++; }
    }
    f.setAttribute('data-rendered-width', box ? Math.round(box.width) : 0);
    f.setAttribute('data-rendered-height', box ? Math.round(box.height) : 0);
    f.setAttribute('data-rendered-bars', drawn);
    if (box && box.width > 0 && box.height > 0 && drawn === bars.length) { good++; }
  }
  document.documentElement.setAttribute('data-charts-rendered', good + '/' + figures.length);
})();
"""


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{_e(value)}</b><span>{_e(label)}</span></div>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Iterable[int] = ()) -> str:
    numeric = set(numeric)
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(f'<td class="num">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>"
                        for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _limited(videos: Sequence[VideoRecord]) -> tuple[Sequence[VideoRecord], str]:
    if len(videos) <= MAX_ROWS:
        return videos, ""
    return videos[:MAX_ROWS], f"showing the first {MAX_ROWS} of {len(videos)} videos by path; the CSV has all"


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document (inline CSS, inline SVG, no external reference); one run's page
    when ``data`` was read from a run's JSON."""
    from .. import __version__

    if data.run is not None:
        from .run_report import render_run_html

        return render_run_html(data.run, title=data.title, source=data.source, generated=data.generated)

    totals = data.totals()
    done = data.done
    sections = []

    factor = totals["realtime_factor"]
    ungendered = len(done) - totals["gender_measured"]
    without_gender = " (of the videos analysed with gender)" if ungendered else ""
    cards = [
        _card(str(totals["videos"]), "videos analysed"),
        _card(str(totals["failed"]), "failed"),
        _card(_hours(totals["audio_hours"] * 3600), "of audio"),
        _card(_hours(totals["processing_hours"] * 3600), "processing time (sum over files)"),
        _card(f"{factor:.1f}×" if factor else "–", "real time per worker (audio ÷ processing time)"),
        _card(_pct(totals["female_share"]) if totals["female_seconds"] + totals["male_seconds"] else "–",
              "female share of speaking time with a known gender" + without_gender),
        _card(_pct(totals["unknown_share"]) if totals["unknown_seconds"] else "0%" if totals["gender_measured"]
              else "–", "of speaking time with gender unknown" + without_gender),
        _card(str(totals["speakers"]), "speakers (summed over videos)" if not any(v.n_speakers is None for v in done)
              else "speakers (summed over the videos with speaker ids)"),
    ]
    working = [b for b in data.batches if b.get("finished") and b.get("audio_seconds")]
    if working:
        last = working[-1]
        wall = max(1e-9, last["finished"] - last["started"])
        cards.append(_card(f"{last['audio_seconds'] / wall:.1f}×",
                           f"real time, last batch ({last['n_done']} done, {last['workers']} worker(s), "
                           f"{last['engine']})"))
    gone = (f'<p class="note" id="missing">{len(data.missing)} file(s) recorded earlier are no longer in the archive '
            f"(deleted, moved or renamed) and are not counted, e.g. {_e(data.missing[0])}</p>" if data.missing else "")
    sections.append(f'<section id="totals"><h2>Archive totals</h2><div class="cards">{"".join(cards)}</div>{gone}'
                    "</section>")

    # overall composition
    label_seconds = totals["label_seconds"]
    total_seconds = sum(label_seconds.values())
    svg, bars = stacked_rows_svg([("all videos", label_seconds, _hours(total_seconds))], LABEL_COLOURS, row_h=34)
    legend = _legend(LABEL_COLOURS, _pcts({k: v / total_seconds for k, v in label_seconds.items()}) if total_seconds
                     else {k: "0%" for k in label_seconds})
    sections.append('<section id="composition"><h2>Composition</h2>' + legend
                    + _figure("composition", "Share of all audio time that is voice, song, noise and silence.",
                              svg, bars) + "</section>")

    # genre mix
    genres: dict[str, list[float]] = {}
    for video in done:
        genres.setdefault(video.genre or "unknown", []).append(video.duration or 0.0)
    columns = [(genre, float(len(durations)), f"{len(durations)} ({_hours(sum(durations))})")
               for genre, durations in sorted(genres.items(), key=lambda g: (-len(g[1]), g[0]))]
    svg, bars = column_svg(columns, GENRE_COLOUR)
    sections.append('<section id="genres"><h2>Genre mix</h2>'
                    + _figure("genres", "Videos per inferred genre (their audio time in brackets).", svg, bars)
                    + "</section>")

    # female vs male
    overall = {"female": totals["female_seconds"], "male": totals["male_seconds"]}
    svg_all, bars_all = stacked_rows_svg([("all videos", overall, _hours(sum(overall.values())))], GENDER_COLOURS,
                                         row_h=34)
    shown, note = _limited(done)
    peak = max(((v.female_seconds or 0.0) + (v.male_seconds or 0.0) for v in shown), default=0.0)
    rows = [(v.path, {}, "–") if v.female_seconds is None else
            (v.path, {"female": v.female_seconds, "male": v.male_seconds or 0.0},
             _hours(v.female_seconds + (v.male_seconds or 0.0))) for v in shown]
    svg_each, bars_each = stacked_rows_svg(rows, GENDER_COLOURS, scale=peak or None)
    gender_legend = _legend(GENDER_COLOURS, {k: _hours(v) for k, v in overall.items()})
    not_measured = (f" {ungendered} video(s) analysed without gender (--no-gender) are not counted."
                    if ungendered else "")
    sections.append('<section id="gender"><h2>Female and male speaking time</h2>' + gender_legend
                    + _figure("gender-overall", "Speaking time with a known gender, whole archive." + not_measured,
                              svg_all, bars_all)
                    + _figure("gender-per-video", "Speaking time per video (bar length: seconds of voice).",
                              svg_each, bars_each, note) + "</section>")

    # speakers per video
    # a video analysed with --no-speakers has no count: not counted as 0, shown as "–"
    counts: dict[int, int] = {}
    for video in done:
        if video.n_speakers is not None:
            counts[video.n_speakers] = counts.get(video.n_speakers, 0) + 1
    undiarized = sum(v.n_speakers is None for v in done)
    span = range(0, max(counts, default=0) + 1)
    columns = [(str(n), float(counts.get(n, 0)), str(counts.get(n, 0))) for n in span]
    svg_hist, bars_hist = column_svg(columns, SPEAKER_COLOUR)
    rows = [(v.path, {"speakers": float(v.n_speakers or 0)}, "–" if v.n_speakers is None else str(v.n_speakers))
            for v in shown]
    peak_speakers = max((v.n_speakers for v in shown if v.n_speakers is not None), default=0)
    # the bars are counts, not seconds: their tooltips say "2", not "2.0 s"
    svg_rows, bars_rows = stacked_rows_svg(rows, {"speakers": SPEAKER_COLOUR}, scale=float(peak_speakers) or None,
                                           value_format=lambda n: f"{n:.0f}")
    not_counted = (f" {undiarized} video(s) analysed without speaker ids (--no-speakers) are not counted."
                   if undiarized else "")
    sections.append('<section id="speakers"><h2>Speakers per video</h2>'
                    + _figure("speakers-histogram", "Number of videos (bar height) with each number of speakers."
                              + not_counted, svg_hist, bars_hist)
                    + _figure("speakers-per-video", "Speakers found in each video.", svg_rows, bars_rows, note)
                    + "</section>")

    # composition per video
    rows = [(v.path, dict(v.shares), _hours(v.duration or 0.0)) for v in shown]
    svg, bars = stacked_rows_svg(rows, LABEL_COLOURS)
    sections.append('<section id="per-video"><h2>Composition per video</h2>' + _legend(LABEL_COLOURS)
                    + _figure("composition-per-video", "Shares of each video's duration (duration on the right).",
                              svg, bars, note) + "</section>")

    # slowest and failed
    timed = sorted((v for v in done if v.seconds), key=lambda v: v.seconds or 0.0, reverse=True)[:SLOWEST]
    if timed:
        slow = _table(("file", "audio", "processing", "× real time", "worker"),
                      [(v.path, _hours(v.duration or 0.0), _hours(v.seconds or 0.0),
                        f"{v.realtime_factor:.1f}" if v.realtime_factor else "–", v.worker) for v in timed],
                      numeric=(1, 2, 3))
    else:
        # an archive's page (a run's JSON has a page of its own): nothing analysed yet, or times not recorded
        slow = ('<p class="sub">No processing times recorded.</p>' if done
                else '<p class="sub">No file has been analysed yet.</p>')
    sections.append(f'<section id="slowest"><h2>Slowest files</h2>{slow}</section>')
    failed = data.failed
    if failed:
        # capped like the charts: a table row per file of an archive of a million files is a page no browser opens
        listed, failed_note = _limited(failed)
        table = _table(("file", "error", "message", "attempts"),
                       [(v.path, v.error_type or "", v.error or "", v.attempts) for v in listed], numeric=(3,))
        table += f'<p class="note">{_e(failed_note)}</p>' if failed_note else ""
    else:
        table = '<p class="sub ok">No failed files.</p>'
    # a finished file whose redo failed is still done, with its earlier result (Store.record): listed apart, so
    # that neither its result nor the failure goes unseen
    kept = [v for v in done if v.error or v.error_type]
    if kept:
        listed, kept_note = _limited(kept)
        table += (f'<h3 id="redo-failed">Redone and failed, earlier result kept ({len(kept)})</h3>'
                  + _table(("file", "error", "message", "attempts"),
                           [(v.path, v.error_type or "", v.error or "", v.attempts) for v in listed], numeric=(3,)))
        table += f'<p class="note">{_e(kept_note)}</p>' if kept_note else ""
    sections.append(f'<section id="failed"><h2>Failed files ({len(failed)})</h2>{table}</section>')
    sections.append(_notes_section(data.videos))

    # every video
    table = _table(("file", "duration", "audio", "genre", "speakers", "voice", "song", "noise", "silence", "female",
                    "male"),
                   [(v.path, _hours(v.duration or 0.0), _audio(v), v.genre or "",
                     "–" if v.n_speakers is None else v.n_speakers,
                     *_pcts({k: v.shares.get(k, 0.0) for k in LABELS}).values(),
                     # no voice of known gender gives both shares 0 (as in the JSON): "0%" and "0%" would be
                     # made-up zeros, so both read "–" as for gender off
                     *(("–", "–") if v.female_share is None or not (v.female_share or v.male_share)
                       else _pcts({"female": v.female_share, "male": v.male_share or 0.0}).values()))
                    for v in shown], numeric=(1, *range(4, 11)))
    table += f'<p class="note">{_e(note)}</p>' if note else ""
    sections.append(f'<section id="videos"><h2>All videos ({len(done)})</h2>{table}</section>')

    generated = time.strftime("%Y-%m-%d %H:%M", time.localtime(data.generated or time.time()))
    return ("<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(data.title)}</title><style>{CSS}</style></head><body><main>"
            f"<h1>{_e(data.title)}</h1>"
            f'<p class="sub">{_e(data.source)} · generated {_e(generated)} by dramapic {_e(__version__)}</p>'
            + "".join(sections)
            + f"</main><script>{CHECK_SCRIPT}</script></body></html>\n")


def _raise_shown(gain_db: float | None) -> str | None:
    """How a gain the analysis heard a file with reads on a page (``27 dB``), or None where there is no raise to
    show: at the file's own level (within half a dB), not recorded, or negative (dramapic only ever raises: a JSON
    edited by hand). One rule for the archive's page and one run's page."""
    if gain_db is None or round(gain_db) <= 0:
        return None
    return f"{gain_db:.0f} dB"


def _audio(video: VideoRecord) -> str:
    """Which sound of the file a video's figures describe: ``track 1, right channel`` (one language of a dual-mono
    broadcast), ``track 0, mix`` (the mix of its channels); ``not recorded`` for a run recorded before the archive
    kept it (schema 8), whose figures may be of any track: not taken for the first track's mix. A recording too quiet
    for stage 1, analysed raised, adds ``, raised 27 dB``: its figures are of the raised sound."""
    if video.audio_track is None:
        return "not recorded"
    channel = video.audio_channel or "mix"
    raised = _raise_shown(video.gain_db)
    return f"track {video.audio_track}, " + ("mix" if channel == "mix" else f"{channel} channel") \
        + (f", raised {raised}" if raised else "")


#: what marks a note of a done file's failed redo (kept with the failure, :attr:`VideoRecord.redo_notes`) among the
#: notes of the run whose result is shown
REDO_NOTE = "failed redo: "
#: what joins a video's notes in the CSV's and Parquet's ``notes`` cell (a note holds no " | " of its own as a rule:
#: dramapic's notes are sentences about the file)
NOTES_JOINER = " | "


def _video_notes(video: VideoRecord) -> list[str]:
    """A video's notes as the report lists them: its run's, then those of the redo that failed on it (a finished file
    redone and failed, its earlier result kept) marked ``failed redo:``, each one the run did not say already (the
    same file under the same settings mostly says the same thing twice). Each names the file once, by the path the
    row shows: a note that starts with the file's own name (``ep01.mp4: its audio has a DC offset``, as ``dramapic
    run`` says it) loses it, as on the batch's note lines (:func:`~dramapic.archive.notes.unnamed`)."""
    own = [unnamed(note, video.path) for note in video.notes or ()]
    redo = dict.fromkeys(unnamed(note, video.path) for note in video.redo_notes)
    return own + [REDO_NOTE + note for note in redo if note not in own]


def _notes_section(videos: Sequence[VideoRecord]) -> str:
    """The notes of each video's run (what ``dramapic run`` tells its user about a file: a DC offset, a stale subtitle
    file in the other format, fewer speakers found than asked for), and those of a failed redo kept on it
    (:func:`_video_notes`), one row per note under the file's path, capped like the other tables; the runs recorded
    before the archive kept notes are counted apart, their notes not known (which is not "none")."""
    noted = [v for v in videos if _video_notes(v)]
    unknown = sum(v.notes is None for v in videos)
    listed, capped = _limited(noted)
    if noted:
        body = _table(("file", "note"), [(v.path, note) for v in listed for note in _video_notes(v)])
        body += f'<p class="note">{_e(capped)}</p>' if capped else ""
    else:
        body = '<p class="sub ok">No notes on any file.</p>'
    if unknown:
        body += (f'<p class="note">{unknown} {"file was" if unknown == 1 else "files were"} recorded before dramapic '
                 "kept each file's notes: their notes, if any, are not known</p>")
    files = f"{len(noted)} file" + ("" if len(noted) == 1 else "s")
    return f'<section id="notes"><h2>Notes ({files})</h2>{body}</section>'


# -- tables ----------------------------------------------------------------------------------------------------

def summary_rows(data: ReportData) -> list[dict[str, Any]]:
    """One dict per video with the :data:`CSV_COLUMNS`."""
    rows = []
    for v in data.videos:
        # shares of no voice (none of known gender: both 0 in the JSON) are not measured zeros, which a spreadsheet's
        # mean of female_share would count: empty, as the page's "–"; the seconds (0) are measured
        shared = v.status == "done" and bool(v.female_share or v.male_share)
        rows.append({
            "path": v.path, "status": v.status, "duration_s": _round(v.duration),
            # which sound of the file the row describes (a dub or the original, one channel of a dual-mono
            # broadcast); empty where not known (a run recorded before dramapic kept it)
            "audio_track": v.audio_track, "audio_channel": v.audio_channel,
            **{k: _round(v.shares.get(k)) if v.status == "done" else None for k in LABELS},
            "female_share": _round(v.female_share) if shared else None,
            "male_share": _round(v.male_share) if shared else None,
            "female_s": _round(v.female_seconds) if v.status == "done" else None,
            "male_s": _round(v.male_seconds) if v.status == "done" else None,
            "unknown_s": _round(v.unknown_seconds) if v.status == "done" else None,
            "speakers": v.n_speakers if v.status == "done" else None, "genre": v.genre,
            # an unknown genre was not judged (the JSON's genre is null): the store's confidence 0 for it is a
            # placeholder, and a made-up 0.0 beside "unknown" in a spreadsheet read as a measured zero
            "genre_confidence": _round(v.genre_confidence) if v.status == "done" and v.genre != "unknown" else None,
            "processing_s": _round(v.seconds), "realtime_factor": _round(v.realtime_factor),
            "worker": v.worker or None, "attempts": v.attempts, "error_type": v.error_type, "error": v.error,
            # as the page lists them, in one cell; empty for none and where not known (a run recorded before schema 9)
            "notes": NOTES_JOINER.join(_video_notes(v)) or None,
            # the gain the analysis heard the file with (0: its own level; a raise for a recording too quiet): empty
            # where not known (a run recorded before schema 11, a JSON written before the key) and for a failure
            # (the store keeps none for it)
            "gain_db": _round(v.gain_db, 1),
        })
    return rows


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


#: what a spreadsheet opening the CSV takes for the start of a formula (OWASP "CSV Injection"; the full-width signs
#: too, which some spreadsheets fold to the ASCII ones): an archive file named "=HYPERLINK(...).mp4", or an error
#: message quoting one, would otherwise run as a formula on the machine of whoever opens report.csv
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _csv_cell(value: Any) -> Any:
    """A CSV cell: empty for None; text that a spreadsheet would run as a formula gets a leading ``'`` (what OWASP
    recommends: the cell then reads as text); numbers are written as they are."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def render_csv(data: ReportData) -> str:
    buffer = io.StringIO()
    # CRLF (RFC 4180), not "\n": the writer quotes only a field holding a character of the line terminator, so with
    # "\n" a path with a carriage return in it went out bare, and a spreadsheet started a new row there (whose first
    # cell, "=1+1.mp4" after "\r", escaped the ' above)
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in summary_rows(data):
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return buffer.getvalue()


def parquet_available() -> bool:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def write_parquet(data: ReportData, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = {"path", "status", "audio_channel", "genre", "worker", "error_type", "error", "notes"}
    integer = {"audio_track", "speakers", "attempts"}
    schema = pa.schema([(c, pa.string() if c in text else pa.int64() if c in integer else pa.float64())
                        for c in CSV_COLUMNS])
    pq.write_table(pa.Table.from_pylist(summary_rows(data), schema=schema), path)


# -- writing ---------------------------------------------------------------------------------------------------

def default_output(source: Path) -> Path:
    """``OUT_DIR/report.html`` for an output folder, ``movie.report.html`` beside ``movie.dramapic.json``."""
    if source.is_dir():
        return source / "report.html"
    stem = source.name.removesuffix(".json").removesuffix(".dramapic")
    return source.with_name(f"{stem}.report.html")


def write_report(source: str | Path, *, output: str | Path | None = None, title: str | None = None,
                 parquet: bool = True) -> ReportOutputs:
    """Write the HTML report and its CSV (and Parquet when pyarrow is importable and ``parquet``).

    ``output`` is the HTML file, or a folder to write it in under its default name (one that exists, or a string
    ending in a path separator); missing folders
    above the HTML file are created (as ``run -o`` and ``batch -o`` create theirs), and removed again when the report
    fails. The CSV and Parquet files sit beside the HTML with the same stem. All files are written under temporary
    names and renamed together; existing reports are replaced.

    Raises
    ------
    InputError, OutputError
    """
    source = Path(source)
    long_part = too_long_part(source)
    if long_part is not None:  # no file system holds it; looking it up was an OSError traceback
        raise InputError(f"no such file or folder: a name too long for any file system: {long_part}")
    # the report names its source and its own files (the page's title, pyarrow's path): bytes of another encoding
    # there ended in a UnicodeEncodeError traceback, as they did in a batch (which refuses such folders now)
    shown = not_utf8(source.resolve())
    if shown is not None:
        raise InputError(f"{shown}: the path is not valid UTF-8; rename it (or the folder holding it)")
    data = load_report_data(source, title=title)
    html_path = Path(output) if output is not None else default_output(source)
    long_part = too_long_part(html_path)
    if long_part is not None:
        raise OutputError(f"report path name too long: {long_part}; choose another -o")
    # a folder to put the report in (not "FOLDER.html" beside it): one that exists, or a name ending in a separator
    # ("reports/", which Path drops: the string says it), created as the HTML file's missing folders are
    if html_path.is_dir() or (output is not None and str(output).endswith(("/", os.sep))):
        html_path = html_path / default_output(source).name
    if html_path.suffix.lower() not in (".html", ".htm"):
        html_path = html_path.with_name(html_path.name + ".html")
    shown = not_utf8(html_path.resolve())
    if shown is not None:
        raise OutputError(f"{shown}: the report's path is not valid UTF-8; choose another")
    csv_path = html_path.with_suffix(".csv")
    parquet_path = html_path.with_suffix(".parquet") if parquet and parquet_available() else None
    finals = [html_path, csv_path] + ([parquet_path] if parquet_path else [])
    created = make_output_dir(html_path.parent)  # after the source is read: a bad source makes no folder
    try:
        with OutputSet(overwrite=True) as outputs:
            outputs.check(finals)
            # left by a report that was killed (the OOM killer, on a big archive): the Parquet one too when this
            # report writes none
            for stale in outputs.remove_stale([html_path, csv_path, html_path.with_suffix(".parquet")]):
                log.info("removed %s, left by an earlier report that did not finish", stale)
            temporary = [outputs.reserve(p) for p in finals]
            try:
                temporary[0].write_text(render_html(data), encoding="utf-8")
                # utf-8-sig: a byte-order mark first, without which Excel reads a UTF-8 CSV in the machine's ANSI
                # code page and shows a Korean (or any non-ASCII) file name as mojibake; pandas, LibreOffice and
                # Python's csv with encoding="utf-8-sig" take it as it is. newline="": its CRLF as it is
                temporary[1].write_text(render_csv(data), encoding="utf-8-sig", newline="")
                if parquet_path:
                    write_parquet(data, temporary[2])
            except OSError as err:
                raise OutputError(f"cannot write the report: {err.strerror or err}") from None
            outputs.commit()
    except BaseException:  # Ctrl-C included: a failed report leaves no empty folder it made
        remove_made_dirs(created)
        raise
    return ReportOutputs(html=html_path, csv=csv_path, parquet=parquet_path)
