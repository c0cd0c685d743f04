"""Too little besides silence to judge a genre (a silent file, a clip of a second or two): the genre is unknown,
null in the JSON and "unknown" on the card, the run's summary line, the store and the reports. It was "other
(1.00)": a confident genre for no content."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, make_record, validate_contract

from dramapic import media
from dramapic.analysis.composition import GENRE_MIN_CONTENT_S, summarize
from dramapic.archive.report import load_report_data, summary_rows
from dramapic.archive.run_report import render_run_html
from dramapic.archive.store import Store
from dramapic.render import summary_lines
from dramapic.result import AnalysisResult, Segment, Source


def _result(voice_s: float, silence_s: float = 10.0) -> AnalysisResult:
    segments = (Segment(0.0, voice_s, "voice", 0.9, {"voice": 0.9}, None, "S1"),) if voice_s else ()
    segments += (Segment(voice_s, voice_s + silence_s, "silence", 0.99, {"silence": 0.99}),)
    duration = voice_s + silence_s
    summary = summarize(segments, duration, ())
    return AnalysisResult(Source("/x/quiet.mp4", duration, "0" * 64), "default", "1", (), segments, summary)


@pytest.mark.parametrize("voice_s, known", [(0.0, False), (2.5, False), (GENRE_MIN_CONTENT_S - 0.01, False),
                                            (GENRE_MIN_CONTENT_S, True), (20.0, True)])
def test_a_genre_needs_some_seconds_of_content(voice_s, known):
    genre = _result(voice_s).summary.genre
    assert (genre is not None) == known
    if not known:  # the rules would have said something, confidently: "other (1.00)" for silence
        data = _result(voice_s).to_dict()
        assert data["summary"]["genre"] is None
        assert AnalysisResult.from_dict(data).summary.genre is None


def test_card_store_and_reports_say_unknown(tmp_path: Path):
    result = _result(0.0)
    assert summary_lines(result.summary)[0] == "genre: unknown"
    assert summary_lines(result.summary, language="ko")[0] == "장르: 미상"
    page = render_run_html(result, title="quiet", source="quiet.dramapic.json")
    assert "Genre: unknown" in page
    with Store.open(tmp_path / "dramapic.sqlite") as store:
        store.record(make_record("quiet.mp4", result=result), batch_id=None)
        (video,) = store.videos()
        assert video.genre == "unknown" and video.genre_confidence == 0.0
    rows = summary_rows(load_report_data(tmp_path))
    assert rows[0]["genre"] == "unknown"


def test_a_silent_video_gets_no_genre_end_to_end(tmp_path: Path):
    """The whole run on 3 s of digital silence: the JSON's genre is null, the summary line says unknown."""
    source = tmp_path / "quiet.mp4"
    media._run([media.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=3",
                "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "3", "-c:v", "libx264", "-preset",
                "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", media.file_arg(source)], what="make a test video")
    done = subprocess.run([sys.executable, "-m", "dramapic", "run", str(source), "--no-video"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("quiet.mp4: unknown genre, "), done.stdout
    data = json.loads((tmp_path / "quiet.dramapic.json").read_text(encoding="utf-8"))
    assert data["summary"]["genre"] is None
    validate_contract(data)


def test_a_batch_says_unknown_genre_for_such_a_file(capsys):
    """The batch's line per finished file printed "None" (the event's genre of a JSON whose genre is null)."""
    from dramapic.archive.batch import BatchEvent
    from dramapic.cli import BatchProgress

    BatchProgress(enabled=True).file(BatchEvent(rel="quiet.mp4", status="done", duration=3.0, seconds=1.0,
                                                genre=None, n_speakers=0))
    assert "quiet.mp4: unknown genre, 0 speaker(s)" in capsys.readouterr().err
