"""The song guard (issue 13): stage 1's voice becomes song where FireRedVAD's own sound-event head hears singing and
no speech; speech over a music bed, noise and silence are left alone, and the pipeline can switch it off."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dramapic.analysis.analyze import _stage1_segments
from dramapic.analysis.detectors import DetectorScores
from dramapic.analysis.stage1 import song_guard, stage1_frame_labels
from dramapic.config import STAGE1_LABELS, Stage1Config, load_pipeline

VOICE, SONG, NOISE, SILENCE = range(4)
GUARD = {"speech_below": 0.15, "singing_from": 0.4, "context_s": 3.0}


def scores_of(speech: np.ndarray, singing: np.ndarray) -> DetectorScores:
    n = speech.shape[0]
    return DetectorScores(silero_speech=speech.copy(), vad_speech=speech.copy(), aed_speech=speech,
                          aed_singing=singing, aed_music=np.full(n, 0.9), energy_db=np.full(n, -20.0))


def voice_heavy(n: int) -> np.ndarray:
    """What the trained members say of a voice inside a song: mostly voice."""
    return np.tile(np.array([0.7, 0.2, 0.08, 0.02]), (n, 1))


def test_sung_stretch_becomes_song_and_rows_still_sum_to_one():
    n = 1000  # 10 s: singing without speech throughout
    out = song_guard(voice_heavy(n), scores_of(np.full(n, 0.03), np.full(n, 0.8)), **GUARD)
    assert np.allclose(out[:, VOICE], 0.0)
    assert np.allclose(out[:, SONG], 0.9)
    assert np.allclose(out[:, NOISE], 0.08) and np.allclose(out[:, SILENCE], 0.02)
    assert np.allclose(out.sum(axis=1), 1.0)


def test_speech_over_a_sung_bed_stays_voice():
    n = 1000
    probabilities = voice_heavy(n)
    out = song_guard(probabilities, scores_of(np.full(n, 0.6), np.full(n, 0.9)), **GUARD)
    np.testing.assert_array_equal(out, probabilities)


def test_speech_without_singing_stays_voice():
    n = 1000
    probabilities = voice_heavy(n)
    out = song_guard(probabilities, scores_of(np.full(n, 0.05), np.full(n, 0.1)), **GUARD)
    np.testing.assert_array_equal(out, probabilities)


def test_a_short_line_between_sung_stretches_is_judged_over_its_surroundings():
    # 4 s of singing, a 2 s spoken line, 4 s of singing: the line's centred 3 s window holds enough speech
    speech = np.concatenate([np.full(400, 0.02), np.full(200, 0.8), np.full(400, 0.02)])
    singing = np.concatenate([np.full(400, 0.9), np.full(200, 0.1), np.full(400, 0.9)])
    out = song_guard(voice_heavy(1000), scores_of(speech, singing), **GUARD)
    assert (out[450:550, VOICE] > 0.5).all()          # the spoken line stays voice
    assert (out[:200, VOICE] == 0).all() and (out[-200:, VOICE] == 0).all()


def test_the_input_is_not_changed_in_place():
    n = 500
    probabilities = voice_heavy(n)
    before = probabilities.copy()
    song_guard(probabilities, scores_of(np.full(n, 0.0), np.full(n, 1.0)), **GUARD)
    np.testing.assert_array_equal(probabilities, before)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        song_guard(voice_heavy(10), scores_of(np.zeros(12), np.zeros(12)), **GUARD)


def test_stage1_frame_labels_switches_the_guard_with_the_pipeline():
    n = 1000
    scores = scores_of(np.full(n, 0.03), np.full(n, 0.8))
    on = Stage1Config()
    off = dataclasses.replace(on, song_guard=False)
    _, guarded = stage1_frame_labels(voice_heavy(n), scores, settings=on)
    probabilities, plain = stage1_frame_labels(voice_heavy(n), scores, settings=off)
    assert (guarded == SONG).all() and (plain == VOICE).all()
    np.testing.assert_array_equal(probabilities, voice_heavy(n))


def test_analyze_decides_segments_through_the_guard():
    n = 1000
    pipeline = load_pipeline(None)
    assert pipeline.stage1.song_guard  # the default pipeline has it on
    segments, _ = _stage1_segments(scores_of(np.full(n, 0.03), np.full(n, 0.8)), voice_heavy(n), pipeline,
                                   duration=n / 100)
    assert [s.label for s in segments] == ["song"]
    off = dataclasses.replace(pipeline, stage1=dataclasses.replace(pipeline.stage1, song_guard=False))
    segments, _ = _stage1_segments(scores_of(np.full(n, 0.03), np.full(n, 0.8)), voice_heavy(n), off,
                                   duration=n / 100)
    assert [s.label for s in segments] == ["voice"]
    assert STAGE1_LABELS[SONG] == "song"
