"""What the tests share: repository paths, the bundled sample, the shared data, small builders of results,
records and archives, the JSON contract check. Tests import from here, never from each other."""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from dramapic import media
from dramapic.archive.store import DB_NAME, RunRecord, Store
from dramapic.config import SpeakersConfig
from dramapic.result import AnalysisResult, Genre, SAMPLE_RATE, Segment, Source, Summary, settings_sha256

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DEV_MIXES = SHARED_DATA / "dev_mixes"
SAMPLE = REPO / "samples" / "drama_sample.mp4"
#: the stored analysis of the sample (tests/analysis/test_golden.py)
SAMPLE_EXPECTED = REPO / "tests" / "data" / "drama_sample.expected.json"


def need_shared_data() -> Path:
    if not (SHARED_DATA / "manifest.csv").is_file():
        pytest.skip(f"shared training data not found at {SHARED_DATA}")
    return SHARED_DATA


def tone(seconds: float, *, freq: float = 440.0, level: float = 0.3, sample_rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def speaker_settings(**changes) -> SpeakersConfig:
    """Diarization settings with the diarization functions' former own defaults (cluster threshold 0.38, switch
    penalty 0.1), which the synthetic speaker tests were written against; the pipeline's are 0.70 and 0.15."""
    return SpeakersConfig(**{"cluster_threshold": 0.38, "switch_penalty": 0.1, **changes})


# -- results ----------------------------------------------------------------------------------------------------

def make_result(segments=None) -> AnalysisResult:
    segments = segments or [
        Segment(0.0, 1.5, "silence", 0.95, {"silence": 0.95}),
        Segment(1.5, 4.25, "voice", 0.95, {"voice": 0.95, "female": 0.96, "male": 0.04}, "female", "S1"),
        Segment(4.25, 3725.5, "song", 0.84, {"song": 0.84}),
        Segment(3725.5, 3730.0, "noise", 0.77, {"noise": 0.77}),
    ]
    summary = Summary(duration=3730.0, shares={"voice": 0.1, "song": 0.8, "noise": 0.05, "silence": 0.05},
                      gender_shares={"female": 1.0, "male": 0.0}, speakers=(),
                      genre=Genre("music_show", 0.8, {"music_show": 0.8, "other": 0.2}))
    return AnalysisResult(Source("/x/movie.mp4", 3730.0, "0" * 64), "default", "1", (), tuple(segments), summary)


MODELS = ({"name": "silero-vad", "version": "6.2.3", "sha256": "a" * 64},
          {"name": "gender-resemblyzer-lr", "version": "1", "sha256": "b" * 64})


def make_archive_result(path: str = "ep01.mp4", *, duration: float = 60.0, genre: str = "drama", speakers: int = 2,
                female: float = 0.5, song: float = 0.2, gender: bool = True, audio_track: int | None = None,
                audio_channel: str | None = None, gain_db: float | None = None) -> AnalysisResult:
    """A small but valid AnalysisResult: a voice stretch split between female and male speakers, then song,
    then silence. ``gender=False``: what a run with gender switched off (--no-gender) writes: no gender shares,
    every gender null, no female / male scores. Without ``audio_track`` its source does not say which sound it
    describes (a JSON written before dramapic recorded it); without ``gain_db`` not the gain it was analysed at."""
    voice_end = duration * 0.6
    song_end = voice_end + duration * song
    split = voice_end * female
    segments = []
    if split > 0:
        segments.append({"start": 0.0, "end": split, "label": "voice", "gender": "female", "speaker": "S1",
                         "confidence": 0.9, "scores": {"voice": 0.9, "song": 0.05, "noise": 0.03, "silence": 0.02,
                                                       "female": 0.95, "male": 0.05}})
    if voice_end > split:
        segments.append({"start": split, "end": voice_end, "label": "voice", "gender": "male",
                         "speaker": "S2" if speakers > 1 else "S1", "confidence": 0.8,
                         "scores": {"voice": 0.8, "song": 0.1, "noise": 0.05, "silence": 0.05, "female": 0.1,
                                    "male": 0.9}})
    segments.append({"start": voice_end, "end": song_end, "label": "song", "gender": None, "speaker": None,
                     "confidence": 0.7, "scores": {"voice": 0.1, "song": 0.7, "noise": 0.1, "silence": 0.1}})
    segments.append({"start": song_end, "end": duration, "label": "silence", "gender": None, "speaker": None,
                     "confidence": 0.95, "scores": {"voice": 0.0, "song": 0.0, "noise": 0.05, "silence": 0.95}})
    speaker_list = [{"id": f"S{i + 1}", "gender": "female" if i == 0 else "male",
                     "seconds": voice_end / speakers, "gender_confidence": 0.9} for i in range(speakers)]
    if not gender:
        for item in segments + speaker_list:
            item["gender"] = None
            for score in ("female", "male"):
                item.get("scores", {}).pop(score, None)
    return AnalysisResult.from_dict({
        "schema": "dramapic/1",
        "source": {"path": path, "duration": duration, "sha256": "c" * 64,
                   **({} if audio_track is None else {"audio_track": audio_track, "audio_channel": audio_channel}),
                   **({} if gain_db is None else {"gain_db": gain_db})},
        "pipeline": {"name": "default", "version": "1"},
        "models": [dict(m) for m in MODELS],
        "segments": segments,
        "summary": {"duration": duration,
                    "shares": {"voice": 0.6, "song": song, "noise": 0.0, "silence": 0.4 - song},
                    "gender_shares": {"female": female, "male": 1 - female} if gender else None,
                    "gender_unknown_share": 0.0 if gender else None,
                    "speakers": speaker_list,
                    "genre": {"label": genre, "confidence": 0.5, "scores": {genre: 0.5, "other": 0.1}}},
    })


def make_record(path: str = "season1/ep01.mp4", *, key: str = "k1", status: str = "done",
                result: AnalysisResult | None = None, seconds: float = 10.0, error: str | None = None) -> RunRecord:
    if status == "done" and result is None:
        result = make_archive_result(path)
    return RunRecord(path=path, size=1000, mtime_ns=123, key=key, status=status,
                     sha256="c" * 64, pipeline_name="default", pipeline_version="1", pipeline_sha256="d" * 64,
                     models=MODELS, options={"burn": False}, started=time.time() - seconds, finished=time.time(),
                     seconds=seconds, worker="host:1", duration=result.duration if result else None,
                     error_type=None if status == "done" else "MediaError", error=error,
                     outputs={"json": path + ".json"} if status == "done" else {}, result=result)


# -- the JSON contract ------------------------------------------------------------------------------------------

LABELS = {"voice", "song", "noise", "silence"}


def validate_contract(data: dict) -> None:
    """The dramapic/1 JSON contract, as documented in README.md."""
    assert data["schema"] == "dramapic/1"
    assert set(data) == {"schema", "source", "pipeline", "models", "segments", "summary"}
    assert set(data["source"]) == {"path", "duration", "sha256", "audio_track", "audio_channel", "gain_db"}
    assert isinstance(data["source"]["gain_db"], float) and data["source"]["gain_db"] >= 0
    assert len(data["source"]["sha256"]) == 64 and data["source"]["audio_channel"] in (None, "left", "right")
    assert isinstance(data["source"]["audio_track"], int) and data["source"]["audio_track"] >= 0
    # the settings the run used, and their checksum (the one a batch keys its runs on)
    assert set(data["pipeline"]) == {"name", "version", "sha256", "settings"}
    assert {"stage1", "stage2", "speakers", "render"} <= set(data["pipeline"]["settings"])
    assert data["pipeline"]["sha256"] == settings_sha256(data["pipeline"]["settings"])
    assert data["models"] and all({"name", "version", "sha256"} <= set(m) for m in data["models"])
    duration = data["source"]["duration"]
    segments = data["segments"]
    assert segments[0]["start"] == 0 and segments[-1]["end"] == pytest.approx(duration, abs=1e-3)
    for before, after in zip(segments, segments[1:]):
        assert after["start"] == pytest.approx(before["end"], abs=1e-6)  # sorted, touching, no overlap
    for seg in segments:
        assert seg["end"] > seg["start"]
        assert seg["label"] in LABELS
        assert 0.0 <= seg["confidence"] <= 1.0
        assert isinstance(seg["scores"], dict)
        if seg["label"] == "voice":
            assert seg["gender"] in ("female", "male", None)
        else:
            assert seg["gender"] is None and seg["speaker"] is None
        if seg["speaker"] is not None:
            assert seg["speaker"].startswith("S")
    summary = data["summary"]
    assert set(summary) == {"duration", "shares", "gender_shares", "gender_unknown_share", "speakers", "genre"}
    assert set(summary["shares"]) == LABELS and sum(summary["shares"].values()) == pytest.approx(1.0, abs=1e-3)
    assert set(summary["gender_shares"]) == {"female", "male"}
    genders = sum(summary["gender_shares"].values())
    assert genders == pytest.approx(1.0, abs=1e-3) or genders == 0
    unknown = summary["gender_unknown_share"]
    assert 0.0 <= unknown <= 1.0
    voice = [s for s in segments if s["label"] == "voice"]
    voice_s = sum(s["end"] - s["start"] for s in voice)
    if voice_s > 0:  # the unknown share is the voice time with gender null
        unknown_s = sum(s["end"] - s["start"] for s in voice if s["gender"] is None)
        assert unknown == pytest.approx(unknown_s / voice_s, abs=2e-3)
    if genders == 0:
        assert unknown in (0.0, 1.0)
    for speaker in summary["speakers"]:
        assert {"id", "gender", "seconds"} <= set(speaker)
    # null: too little besides silence to judge (composition.GENRE_MIN_CONTENT_S)
    assert summary["genre"] is None or {"label", "confidence", "scores"} <= set(summary["genre"])


# -- a small archive (batch and engine tests) ----------------------------------------------------------------------

CLIPS = {  # archive path -> start second in the sample
    "season1/ep01.mp4": 0, "season1/ep02.mkv": 8, "season1/ep03.mp4": 34, "season2/ep04.mp4": 16,
    "season2/extra/ep05.mov": 26, "season2/ep06.mp4": 20,
}
CORRUPT = "season1/ep03_corrupt.mp4"   # sorts in the middle of the archive
CLIP_S = 6


def make_archive(root: Path, clips: dict[str, int] = CLIPS, *, corrupt: bool = True) -> Path:
    audio = media.decode_audio(media.probe(SAMPLE))
    for rel, start in clips.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        piece = audio[start * SAMPLE_RATE:(start + CLIP_S) * SAMPLE_RATE]
        media.encode_test_video(path, seconds=CLIP_S, audio=piece, size="160x90")
    if corrupt:
        (root / CORRUPT).write_bytes(np.random.default_rng(7).bytes(30_000))
    (root / "season1" / "notes.txt").write_text("not media")
    (root / "season1" / ".hidden.mp4").write_bytes(b"ignored")
    return root


def song_check_data(root: Path, *, clips: tuple[str, ...] = ("b.mp4", "c.mp4")) -> Path:
    """The manifests of a song check with two music sources, one dev clip each (``x/b.mp4`` of usdx, which stage 1
    heard in training, then ``x/c.mp4`` of newsrc, which it did not), and the bundled sample copied as ``clips``;
    usdx's train track ``m/a.wav`` is an empty placeholder (the refits that would read it are faked)."""
    import shutil

    columns = "path,label,subtype,gender,speaker,source,split,duration_s\n"
    (root / "manifest.csv").write_text(columns + "m/a.wav,song,vocal_pop,,,usdx,train,10\n", encoding="utf-8")
    (root / "manifest_extra.csv").write_text(columns, encoding="utf-8")
    (root / "manifest_extra_music.csv").write_text(
        columns + "x/b.mp4,song,vocal_pop,,t2,usdx,dev,43\n" + "x/c.mp4,song,vocal_pop,,t3,newsrc,dev,43\n",
        encoding="utf-8")
    (root / "m").mkdir()
    (root / "m" / "a.wav").touch()
    (root / "x").mkdir()
    for name in clips:
        shutil.copy(SAMPLE, root / "x" / name)
    return root


def placeholder_archive(root: Path, names) -> Path:
    """A folder of files named like media whose content is their name (for a batch whose worker is faked)."""
    root.mkdir()
    for name in names:
        (root / name).write_bytes(name.encode() * 100)
    return root


def runs_table(db: Path) -> list[dict]:
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(r) for r in connection.execute(
            "SELECT r.*, f.path FROM runs r JOIN files f ON f.id = r.file_id ORDER BY r.id")]


def assert_consistent(out: Path, *, good: set[str]) -> None:
    """Every good file done exactly once with whole rows, nothing duplicated, no leftover temporary file."""
    with Store.open(out / DB_NAME, migrate=False) as store:
        assert store.integrity_check() == "ok"
        runs = list(store.query("SELECT r.id, r.status, r.key, f.path FROM runs r JOIN files f ON f.id = r.file_id"))
        assert len({(r["path"], r["key"]) for r in runs}) == len(runs)
        done = [r for r in runs if r["status"] == "done"]
        assert sorted(r["path"] for r in done) == sorted(good)
        for run in done:
            n_segments = store.query("SELECT count(*) FROM segments WHERE run_id = ?", (run["id"],))[0][0]
            n_summaries = store.query("SELECT count(*) FROM summaries WHERE run_id = ?", (run["id"],))[0][0]
            stem = Path(run["path"]).with_suffix("")
            data = json.loads((out / f"{stem}.dramapic.json").read_text(encoding="utf-8"))
            assert n_segments == len(data["segments"]) and n_summaries == 1
    leftovers = [p for p in out.rglob("*") if ".part" in p.name]
    assert leftovers == []


def fake_done_worker(path, out_dir, *, rel, pipeline, options):
    """A batch worker that succeeds at once: what ``process_file`` returns (a small result, its JSON written,
    keyed like a real run so later batches skip it), without the analysis."""
    from dramapic.archive.batch import FileOutcome, expected_models, file_key
    from dramapic.models import file_sha256

    sha = file_sha256(path)
    models = expected_models(pipeline)
    result = make_archive_result(rel).to_dict()
    result["source"]["sha256"], result["models"] = sha, [dict(m) for m in models]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    output = Path(out_dir) / (Path(rel).stem + ".dramapic.json")
    output.write_text(json.dumps(result), encoding="utf-8")
    now = time.time()
    return FileOutcome(rel=rel, status="done", key=file_key(sha, pipeline, models, options), sha256=sha,
                       started=now, finished=now, seconds=1.0, worker="test:1", result=result,
                       outputs={"json": str(output)})


def drop_manifest_column(manifest: Path, column: str) -> None:
    """Rewrite a data manifest without one of its columns (the lab's "lacks the column(s)" refusals)."""
    with open(manifest, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows, fields = list(reader), [f for f in reader.fieldnames or () if f != column]
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def ffmpeg_builds() -> list[str]:
    """Both ffmpeg builds dramapic meets: Debian's on PATH (where there is one) and imageio-ffmpeg's static one."""
    import shutil

    import imageio_ffmpeg

    return sorted({exe for exe in (shutil.which("ffmpeg"), imageio_ffmpeg.get_ffmpeg_exe()) if exe})


def fake_cross_corpus(monkeypatch, root: Path, mixes: Path, *, folder: str) -> tuple[Path, Path, dict]:
    """What a CLI test of ``eval --cross-corpus`` needs to see which files each stage reads, without fitting anything.

    Builds under ``root`` a timelines tree holding ``mixes`` as the source folder ``folder`` and a data folder with
    an empty manifest; replaces the voice protocol by a stand-in that scores :func:`all_silence_result` of each
    timeline's audio (the copy it was given) against its reference, and stage 1's member check by one that prints
    "members". Both record their keyword arguments in the returned ``asked`` (the member check's under
    ``"members"``).

    Returns
    -------
    data, tree : Path
        For ``--data`` and ``--timelines``.
    asked : dict
    """
    import shutil

    from dramapic.lab import crosscorpus, stage1_crosscorpus
    from dramapic.lab.crosscorpus import find_timelines, held_out
    from dramapic.lab.evaluate import score_result
    from dramapic.lab.reference import load_reference

    tree = root / "tree"
    shutil.copytree(mixes, tree / folder)
    data = root / "data"
    data.mkdir()
    (data / "manifest.csv").write_text("path,label\n")
    asked: dict = {}

    def protocol(**kw):
        asked.update(kw)
        found = find_timelines(kw["timelines"], dev_mixes=kw["dev_mixes"])
        return [(t, held_out(t), score_result(all_silence_result(t.audio), load_reference(t.labels_csv)))
                for t in found]

    monkeypatch.setattr(crosscorpus, "run_voice_protocol", protocol)
    monkeypatch.setattr(stage1_crosscorpus, "stage1_member_check", lambda **kw: asked.update(members=kw) or type(
        "Check", (), {"format_table": lambda self: "members", "to_dict": lambda self: {}})())
    return data, tree, asked


def all_silence_result(path: Path) -> AnalysisResult:
    """A result that calls the whole of the media file at ``path`` silence: for scoring tests that need no models."""
    duration = len(media.decode_audio(media.probe(path))) / SAMPLE_RATE
    return AnalysisResult.from_dict({
        "schema": "dramapic/1", "source": {"path": str(path), "duration": duration, "sha256": "0" * 64},
        "pipeline": {"name": "t", "version": "1"}, "models": [],
        "segments": [{"start": 0.0, "end": duration, "label": "silence", "confidence": 1.0}],
        "summary": {"duration": duration, "shares": {"silence": 1.0}, "gender_shares": None, "speakers": None,
                    "genre": {"label": "other", "confidence": 1.0, "scores": {"other": 1.0}}}})
