"""The whole pipeline on the bundled sample: outputs exist, the JSON follows the contract, the SRT parses,
the captioned video keeps the input's duration and shows the cues."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pysrt
import pytest
from helpers import SAMPLE, load_json, validate_contract

from dramapic import media


@pytest.mark.slow
def test_outputs_exist_and_json_follows_contract(sample_run):
    files = sample_run.files
    assert set(files) == {"subtitles", "json", "rttm", "video"}
    assert all(path.is_file() and path.stat().st_size > 0 for path in files.values())
    assert files["video"].name == "drama_sample.dramapic.mp4"
    data = load_json(files["json"])
    validate_contract(data)
    assert data == sample_run.result.to_dict()
    assert not any(p.name.startswith(".") for p in files["json"].parent.iterdir()), "temporary files left"


@pytest.mark.slow
def test_srt_parses_and_matches_segments(sample_run):
    items = pysrt.open(str(sample_run.files["subtitles"]), encoding="utf-8")
    spoken = [s for s in sample_run.result.segments if s.label != "silence"]
    assert len(items) == len(spoken) > 0
    assert [i.index for i in items] == list(range(1, len(items) + 1))
    assert any(i.text.startswith("voice · ") for i in items)


@pytest.mark.slow
def test_analysis_agrees_with_the_samples_ground_truth(sample_run):
    """The sample's own timeline (samples/drama_sample.labels.csv): stage 1 and gender must be mostly right."""
    rows = list(csv.DictReader(open(SAMPLE.with_name("drama_sample.labels.csv"), encoding="utf-8")))
    frames = np.arange(0, sample_run.result.duration, 0.01) + 0.005

    def at(segments, key):
        out = np.empty(frames.shape, dtype=object)
        for seg in segments:
            out[(frames >= float(seg["start"])) & (frames < float(seg["end"]))] = seg[key] or ""
        return out

    truth_label, truth_gender = at(rows, "label"), at(rows, "gender")
    predicted = [s.to_dict() for s in sample_run.result.segments]
    label, gender = at(predicted, "label"), at(predicted, "gender")
    sounding = truth_label != "silence"
    assert (label[sounding] == truth_label[sounding]).mean() > 0.8
    voiced = truth_label == "voice"
    assert (gender[voiced] == truth_gender[voiced]).mean() > 0.8
    summary = sample_run.result.summary
    assert 2 <= len(summary.speakers) <= 3
    assert {s.gender for s in summary.speakers[:2]} == {"female", "male"}


@pytest.mark.slow
def test_captioned_video_keeps_duration_and_shows_cues(sample_run, tmp_path: Path):
    out = sample_run.files["video"]
    source_info, out_info = media.probe(SAMPLE), media.probe(out)
    assert abs(out_info.duration - source_info.duration) <= 0.1
    assert out_info.has_video and len(out_info.audio_streams) == 1
    # the audio stream is copied, not re-encoded
    assert np.array_equal(media.decode_audio(out_info), media.decode_audio(source_info))
    cue = next(s for s in sample_run.result.segments if s.label == "voice" and s.start > 8)
    moment = (cue.start + cue.end) / 2
    frames = {}
    for name, path in (("in", SAMPLE), ("out", out)):
        png = tmp_path / f"{name}.png"
        media.extract_frame(path, at=moment, output=png)
        frames[name] = _pixels(png)
    difference = np.abs(frames["in"].astype(int) - frames["out"].astype(int))
    height = difference.shape[0]
    cue_band = difference[int(height * 0.75):]          # where the cue is drawn
    middle_band = difference[int(height * 0.35): int(height * 0.65)]  # untouched after the card (badge is on top)
    assert cue_band.mean() > 3 * middle_band.mean() + 1


def _pixels(png: Path) -> np.ndarray:
    raw = png.with_suffix(".gray")
    media._run([media.ffmpeg_exe(), "-v", "error", "-y", "-i", str(png), "-f", "rawvideo", "-pix_fmt", "gray",
                str(raw)], what="decode png")
    info = media.probe(png)
    stream = info.video_streams[0]
    return np.frombuffer(raw.read_bytes(), dtype=np.uint8).reshape(stream.height, stream.width)


@pytest.mark.slow
def test_soft_subs_and_vtt(tmp_path: Path):
    from dramapic.run import RunOptions, run

    outputs = run(SAMPLE, options=RunOptions(output_dir=tmp_path, video="soft", subtitle_format="vtt",
                                             language="ko"))
    assert outputs.files["subtitles"].read_text(encoding="utf-8").startswith("WEBVTT")
    info = media.probe(outputs.files["video"])
    assert [s.kind for s in info.streams] == ["video", "audio", "subtitle"]
    assert abs(info.duration - media.probe(SAMPLE).duration) <= 0.1


@pytest.mark.slow
def test_audio_only_input_gets_no_video_and_says_so(tmp_path: Path):
    from dramapic.run import RunOptions, run

    audio = tmp_path / "radio.m4a"
    media._run([media.ffmpeg_exe(), "-v", "error", "-i", str(SAMPLE), "-vn", "-c:a", "copy", str(audio)],
               what="extract audio")
    outputs = run(audio, options=RunOptions(output_dir=tmp_path))
    assert "video" not in outputs.files
    assert any("no video" in note for note in outputs.notes)
    validate_contract(load_json(outputs.files["json"]))


def test_the_json_records_the_settings_with_the_run_s_own_speaker_count(tmp_path: Path):
    # --num-speakers is a run's option, not the pipeline's: recorded settings without it would not repeat the run
    from helpers import make_archive

    from dramapic.analysis.analyze import AnalysisOptions, analyze
    from dramapic.archive.batch import pipeline_sha256
    from dramapic.config import load_pipeline

    clip = make_archive(tmp_path, {"season1/a.mp4": 0}, corrupt=False) / "season1" / "a.mp4"
    pipeline = load_pipeline(None)
    data = analyze(clip, pipeline, options=AnalysisOptions(num_speakers=1)).to_dict()
    validate_contract(data)
    assert data["pipeline"]["settings"]["speakers"]["num_speakers"] == 1
    assert data["pipeline"]["settings"] == json.loads(json.dumps(pipeline.replace(speakers__num_speakers=1).to_dict()))
    assert data["pipeline"]["sha256"] != pipeline_sha256(pipeline)
    assert {s["speaker"] for s in data["segments"]} <= {"S1", None}
