"""Stage 2 for voice: window embeddings, clustering into speakers, the gender model and its checksum guard."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from dramapic.errors import ModelError
from dramapic.models import load_manifest
from dramapic.result import SpeakerSummary
from dramapic.analysis.embeddings import SpeakerEncoder
from dramapic.analysis.gender import GenderClassifier
from dramapic.analysis import clustering
from dramapic.analysis.diarization import (
    VoiceLabelling,
    VoiceTurn,
    diarize_windows,
    label_voice_segments,
    to_annotation,
)

MODEL = "gender-resemblyzer-pitch-lr"
OLD_MODEL = "gender-resemblyzer-lr"  # format 1 (embedding only), still listed: it must keep loading
SR = 16_000

from helpers import SHARED_DATA as DATA, speaker_settings as settings  # noqa: E402
# dev-split LibriSpeech speakers (never fitted): one female, one male
FEMALE_CLIP = "clips/librispeech/103/103-1240-0000.opus"
MALE_CLIP = "clips/librispeech/1040/1040-133433-0000.opus"


def _clip(rel: str) -> np.ndarray:
    if not (DATA / rel).is_file():
        pytest.skip(f"shared data clip {rel} not found under {DATA} (the tests read ../shared/data)")
    import soundfile as sf

    audio, sr = sf.read(str(DATA / rel), dtype="float32")
    assert sr == SR
    return audio


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    return SpeakerEncoder()


@pytest.fixture(scope="module")
def gender_model() -> GenderClassifier:
    return GenderClassifier.from_manifest(load_manifest())


@pytest.fixture(scope="module")
def female() -> np.ndarray:
    return _clip(FEMALE_CLIP)


@pytest.fixture(scope="module")
def male() -> np.ndarray:
    return _clip(MALE_CLIP)


def test_embed_windows_shapes_and_placement(encoder, female):
    regions = [(0.0, 5.0), (6.0, 6.5), (7.0, 7.1)]
    times, emb = encoder.embed_windows(female, sample_rate=SR, regions=regions, window_s=1.5, hop_s=0.75)
    # 5 s region: starts 0, .75, ..., 3.0 plus one ending at 5.0 (tail > half a hop); 0.5 s region: one padded
    # window; 0.1 s region: none (shorter than 0.3 s)
    assert times.shape == (7, 2) and emb.shape == (7, 256)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert np.all(emb >= 0)
    np.testing.assert_allclose(times[:6, 0], [0.0, 0.75, 1.5, 2.25, 3.0, 3.5])
    np.testing.assert_allclose(times[:6, 1] - times[:6, 0], 1.5)
    np.testing.assert_allclose(times[6], [6.0, 6.5])
    for start, end in times:
        assert any(a - 1e-9 <= start and end <= b + 1e-9 for a, b in regions)


def test_embed_windows_empty_and_resampled(encoder, female):
    times, emb = encoder.embed_windows(female, sample_rate=SR, regions=[], window_s=1.5, hop_s=0.75)
    assert times.shape == (0, 2) and emb.shape == (0, 256)
    # another rate is resampled: the same audio at 8 kHz gives a close embedding
    from scipy.signal import resample_poly

    low = resample_poly(female[: 4 * SR], 1, 2).astype(np.float32)
    _, e8 = encoder.embed_windows(low, sample_rate=8000, regions=[(0.0, 4.0)], window_s=1.5, hop_s=0.75)
    _, e16 = encoder.embed_windows(female[: 4 * SR], sample_rate=SR, regions=[(0.0, 4.0)], window_s=1.5, hop_s=0.75)
    assert e8.shape == e16.shape
    assert float(np.mean(np.sum(e8 * e16, axis=1))) > 0.8


def test_embed_clip_is_mean_of_windows(encoder, female, male):
    one = encoder.embed_clip(female[: 5 * SR], sample_rate=SR)
    _, win = encoder.embed_windows(female[: 5 * SR], sample_rate=SR, regions=[(0.0, 5.0)], window_s=1.5, hop_s=0.75)
    mean = win.mean(axis=0)
    np.testing.assert_allclose(one, mean / np.linalg.norm(mean), atol=1e-5)
    both = encoder.embed_clips([female[: 5 * SR], male[: 3 * SR]], sample_rate=SR)
    np.testing.assert_allclose(both[0], one, atol=1e-5)
    np.testing.assert_allclose(both[1], encoder.embed_clip(male[: 3 * SR], sample_rate=SR), atol=1e-5)
    assert not np.any(encoder.embed_clip(np.zeros(1000, np.float32), sample_rate=SR))  # too short: zeros


def test_gender_model_on_dev_clips(encoder, gender_model, female, male):
    """A real check that can fail: dev-split speakers the model never saw, through the product's feature path
    (1.5 s windows, their pitch features), decided with abstention."""
    from dramapic.analysis.pitch import window_pitch_features

    assert gender_model.n_pitch == 6 and gender_model.abstain_below > 0.5
    for clip, truth in ((female, "female"), (male, "male")):
        n = len(clip) / SR
        times, emb = encoder.embed_windows(clip, sample_rate=SR, regions=[(0.0, n)], window_s=1.5, hop_s=0.75)
        pitch = window_pitch_features(clip, times=times, sample_rate=SR)
        proba = gender_model.predict_proba(emb, pitch)
        assert proba.shape == (len(times), 2)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        decision = gender_model.decide(gender_model.male_logit(emb, pitch))
        assert decision.gender == truth, f"{truth} dev clip decided {decision}"
        assert decision.confidence >= gender_model.abstain_below
        with pytest.raises(ValueError, match="pitch"):
            gender_model.predict_proba(emb)  # a pitch model never silently runs without pitch
    assert gender_model.labels == ("female", "male")
    assert set(gender_model.model_info) == {"name", "version", "sha256"}
    assert gender_model.model_info["name"] == MODEL


def test_old_format_model_still_loads_and_never_abstains(encoder, female):
    old = GenderClassifier.from_manifest(load_manifest(), OLD_MODEL)
    assert old.n_pitch == 0 and old.abstain_below == 0.5 and old.window_calibration == (1.0, 0.0)
    emb = encoder.embed_clip(female, sample_rate=SR)[None, :]
    assert old.predict_proba(emb)[0, 0] > 0.8
    np.testing.assert_allclose(old.predict_proba(emb, np.zeros((1, 6))), old.predict_proba(emb))  # pitch ignored
    assert old.decide(np.array([0.01])).gender == "male"  # p = 0.4975 still decided: format 1 never abstains


def _dialogue(female: np.ndarray, male: np.ndarray):
    """female 7 s, 0.5 s silence, male 8 s, 0.5 s silence, female 7 s more (talk: 14 s female, 8 s male)."""
    gap = np.zeros(SR // 2, np.float32)
    audio = np.concatenate([female[: 7 * SR], gap, male[: 8 * SR], gap, female[7 * SR: 14 * SR]])
    segments = [(0.0, 7.0), (7.5, 15.5), (16.0, 23.0)]
    return audio, segments


def _speakers_of(result: VoiceLabelling) -> list[list[str | None]]:
    return [[t.speaker for t in turns] for turns in result.turns]


def _check_cover(result: VoiceLabelling, segments) -> None:
    """Every segment's turns are consecutive, cover it exactly and change speaker at every boundary."""
    assert len(result.turns) == len(segments)
    for (start, end), turns in zip(segments, result.turns):
        assert turns, "every segment has at least one turn"
        assert turns[0].start == start and turns[-1].end == end
        for a, b in zip(turns, turns[1:]):
            assert a.end == b.start and a.start < a.end
            assert a.speaker != b.speaker


def test_two_speakers_of_different_gender(encoder, gender_model, female, male):
    audio, segments = _dialogue(female, male)
    calls = []
    result = label_voice_segments(audio, sample_rate=SR, segments=segments, encoder=encoder,
                                  gender_model=gender_model, options=settings(), progress=lambda *a: calls.append(a))
    assert isinstance(result, VoiceLabelling)
    _check_cover(result, segments)
    assert _speakers_of(result) == [["S1"], ["S2"], ["S1"]]
    assert [turns[0].gender for turns in result.turns] == ["female", "male", "female"]
    assert len(result.speakers) == 2
    s1, s2 = result.speakers
    assert isinstance(s1, SpeakerSummary)
    assert (s1.id, s1.gender) == ("S1", "female") and (s2.id, s2.gender) == ("S2", "male")
    assert s1.seconds == pytest.approx(14.0) and s2.seconds == pytest.approx(8.0)
    assert 0.5 <= s1.gender_confidence <= 1.0
    for turns in result.turns:
        for turn in turns:
            assert isinstance(turn, VoiceTurn)
            assert set(turn.gender_scores) == {"female", "male"}
            assert sum(turn.gender_scores.values()) == pytest.approx(1.0)
            assert turn.confidence == pytest.approx(max(turn.gender_scores.values()))
            if turn.gender is not None:
                assert turn.confidence == pytest.approx(turn.gender_scores[turn.gender])
    assert calls and all(c[0] == "speakers" for c in calls) and calls[-1][1] == calls[-1][2]


def test_one_segment_is_split_at_speaker_turns(encoder, gender_model, female, male):
    """Stage 1 often runs a dialogue with short gaps into one voice segment: it must come back as turns."""
    gap = np.zeros(int(0.15 * SR), np.float32)  # too short for stage 1 to split on
    audio = np.concatenate([female[: 6 * SR], gap, male[: 7 * SR], gap, female[6 * SR: 12 * SR],
                            np.zeros(SR, np.float32), male[7 * SR: 10 * SR]])
    change = [6.0 + 0.075, 13.15 + 0.075]  # true changes (middle of the gaps)
    segments = [(0.0, 19.3), (20.3, 23.3)]  # talk: 12 s female, 10 s male
    result = label_voice_segments(audio, sample_rate=SR, segments=segments, encoder=encoder,
                                  gender_model=gender_model, options=settings())
    _check_cover(result, segments)
    first, second = result.turns
    assert [t.speaker for t in first] == ["S1", "S2", "S1"] and [t.speaker for t in second] == ["S2"]
    assert [t.gender for t in first] == ["female", "male", "female"] and second[0].gender == "male"
    for turn, true in zip(first, change):
        assert abs(turn.end - true) <= 0.5, f"change at {turn.end:.2f} s, true {true:.2f} s"
    talk = {s.id: s.seconds for s in result.speakers}
    assert talk == {"S1": pytest.approx(first[0].duration + first[2].duration),
                    "S2": pytest.approx(first[1].duration + second[0].duration)}
    # the speaker's gender comes from all of its windows, and every turn agrees with it
    assert [(s.id, s.gender) for s in result.speakers] == [("S1", "female"), ("S2", "male")]


def test_forced_and_bounded_counts_short_segments_and_order(encoder, gender_model, female, male, caplog):
    audio, segments = _dialogue(female, male)
    # a 0.2 s segment (no window) takes the speaker nearest in time; input order is kept
    segs = [segments[2], (15.55, 15.75), segments[0], segments[1]]
    one = label_voice_segments(audio, sample_rate=SR, segments=segs, encoder=encoder, gender_model=gender_model,
                               options=settings(num_speakers=1))
    _check_cover(one, segs)
    assert _speakers_of(one) == [["S1"]] * 4 and len(one.speakers) == 1
    assert one.speakers[0].seconds == pytest.approx(22.2)
    two = label_voice_segments(audio, sample_rate=SR, segments=segs, encoder=encoder, gender_model=gender_model,
                               options=settings(num_speakers=2))
    assert _speakers_of(two) == [["S1"], ["S2"], ["S1"], ["S2"]]
    assert "upper bound" not in caplog.text  # a count asked for is not the bound's doing
    with caplog.at_level("WARNING", logger="dramapic"):
        capped = label_voice_segments(audio, sample_rate=SR, segments=segs, encoder=encoder,
                                      gender_model=gender_model, options=settings(max_speakers=1))
    assert len(capped.speakers) == 1
    # the bound, not the voices, made it one speaker: said once (the refined pass reuses the clusters), with the
    # folded voice's talk
    assert caplog.text.count("the speaker count stopped at its upper bound, 1: 1 more cluster(s) of voice with ") == 1, \
        caplog.text
    assert re.search(r"voice with \d+ s of talk were folded", caplog.text), caplog.text  # one cluster: no "12-12 s"
    caplog.clear()
    with caplog.at_level("WARNING", logger="dramapic"):  # a bound the voices stay under: nothing said
        label_voice_segments(audio, sample_rate=SR, segments=segs, encoder=encoder, gender_model=gender_model,
                             options=settings(max_speakers=2))
        # nor with the speaker ids switched off (--max-speakers cannot be given then; a pipeline's bound can)
        label_voice_segments(audio, sample_rate=SR, segments=segs, encoder=encoder, gender_model=gender_model,
                             options=settings(max_speakers=1, enabled=False))
    assert "upper bound" not in caplog.text, caplog.text


def test_a_forced_count_the_recording_does_not_give_is_said(encoder, gender_model, female, male, caplog):
    # two voices asked to be four: the extra clusters hold no turn after re-segmentation and are dropped, aloud
    audio, segments = _dialogue(female, male)
    with caplog.at_level("WARNING", logger="dramapic"):
        four = label_voice_segments(audio, sample_rate=SR, segments=segments, encoder=encoder,
                                    gender_model=gender_model, options=settings(num_speakers=4))
    found = len(four.speakers)
    assert found < 4 and f"4 speaker(s) asked for, {found} found" in caplog.text
    # said once, of the result given: not again for the first pass that the refined one replaces
    assert caplog.text.count("asked for") == 1, caplog.text


def test_a_count_above_the_windows_of_speech_says_it_was_lowered(encoder, gender_model, female, caplog):
    """1.6 s of voice holds one 1.5 s speaker window: --num-speakers 3 was cut to that one without saying why (the
    warning blamed "too few windows of speech, or windows alike"). It now says the count was lowered, and to what."""
    with caplog.at_level("WARNING", logger="dramapic"):
        one = label_voice_segments(female, sample_rate=SR, segments=[(0.0, 1.6)], encoder=encoder,
                                   gender_model=gender_model, options=settings(num_speakers=3))
    assert len(one.speakers) == 1
    assert "3 speaker(s) asked for, 1 found: its voice holds only 1 speaker window(s) of 1.5 s, so the count was " \
        "lowered to 1" in caplog.text
    assert caplog.text.count("asked for") == 1, caplog.text


def test_a_count_asked_of_voice_too_short_for_a_window_is_said(encoder, gender_model, female, caplog):
    """Voice in pieces under 0.3 s gives no speaker window: with --num-speakers 2 it kept no speaker, and nothing
    said so (the warning came only for no voice at all, or for windows that made too few speakers)."""
    with caplog.at_level("WARNING", logger="dramapic"):
        short = label_voice_segments(female, sample_rate=SR, segments=[(0.0, 0.2), (1.0, 1.2)], encoder=encoder,
                                     gender_model=gender_model, options=settings(num_speakers=2))
    assert short.speakers == () and all(t.speaker is None for turns in short.turns for t in turns)
    assert "2 speaker(s) asked for, none found: its 0.4 s of voice gave no speaker window" in caplog.text
    assert caplog.text.count("asked for") == 1, caplog.text
    with caplog.at_level("WARNING", logger="dramapic"):  # nothing asked for, nothing said
        caplog.clear()
        label_voice_segments(female, sample_rate=SR, segments=[(0.0, 0.2)], encoder=encoder,
                             gender_model=gender_model, options=settings())
    assert "asked for" not in caplog.text


def test_a_count_asked_of_a_recording_without_voice_is_said(encoder, gender_model, caplog):
    # run --num-speakers 3 (or --min-speakers 3) on music or silence alone: "0 speaker(s)" came without a word
    for asked in (settings(num_speakers=3), settings(min_speakers=3)):
        caplog.clear()
        with caplog.at_level("WARNING", logger="dramapic"):
            none = label_voice_segments(np.zeros(5 * SR, np.float32), sample_rate=SR, segments=[], encoder=encoder,
                                        gender_model=gender_model, options=asked)
        assert none.speakers == () and "3 speaker(s) asked for, none found: the recording has no voice" in caplog.text
    with caplog.at_level("WARNING", logger="dramapic"):  # the default bound (1) asks for nothing
        caplog.clear()
        label_voice_segments(np.zeros(5 * SR, np.float32), sample_rate=SR, segments=[], encoder=encoder,
                             gender_model=gender_model, options=settings())
    assert "asked for" not in caplog.text


def test_long_input_path_clusters_a_subsample(encoder, gender_model, female, male, monkeypatch):
    audio, segments = _dialogue(female, male)
    full = label_voice_segments(audio, sample_rate=SR, segments=segments, encoder=encoder, gender_model=gender_model,
                                  options=settings())
    monkeypatch.setattr(clustering, "MAX_CLUSTER_WINDOWS", 12)  # ~28 clustered windows: cluster 12, assign the rest
    sub = label_voice_segments(audio, sample_rate=SR, segments=segments, encoder=encoder, gender_model=gender_model,
                                  options=settings())
    assert _speakers_of(sub) == _speakers_of(full) == [["S1"], ["S2"], ["S1"]]
    assert [s.gender for s in sub.speakers] == ["female", "male"]


def test_empty_and_too_short_inputs(encoder, gender_model, female):
    empty = label_voice_segments(female, sample_rate=SR, segments=[], encoder=encoder, gender_model=gender_model,
                                  options=settings())
    assert empty == VoiceLabelling(turns=(), speakers=())
    # digital silence embeds to zeros and is skipped; the segment takes the nearest speaker
    silent = np.concatenate([female[: 6 * SR], np.zeros(3 * SR, np.float32)])
    quiet = label_voice_segments(silent, sample_rate=SR, segments=[(0.0, 6.0), (6.5, 9.0)], encoder=encoder,
                                 gender_model=gender_model, options=settings())
    assert _speakers_of(quiet) == [["S1"], ["S1"]] and len(quiet.speakers) == 1
    tiny = label_voice_segments(female, sample_rate=SR, segments=[(1.0, 1.1), (2.0, 2.2)], encoder=encoder,
                                gender_model=gender_model, options=settings())
    assert tiny.turns == ((VoiceTurn(1.0, 1.1, None, None, {}, 0.0),), (VoiceTurn(2.0, 2.2, None, None, {}, 0.0),))
    assert tiny.speakers == ()


# -- the diarization proper on synthetic embeddings (no model, exact expectations) -----------------------------

def _synthetic(pattern: str, *, hop: float = 0.25, window: float = 1.5, seed: int = 0):
    """One voice segment whose windows follow ``pattern`` (one letter per window: the speaker)."""
    rng = np.random.default_rng(seed)
    base = {}
    for i, c in enumerate(sorted(set(pattern))):  # each speaker lives mostly on its own 64 dimensions
        base[c] = np.zeros(256)
        base[c][64 * i: 64 * (i + 1)] = np.abs(rng.normal(size=64))
    emb = np.stack([base[c] + 0.2 * np.abs(rng.normal(size=256)) for c in pattern]).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    starts = np.arange(len(pattern)) * hop
    times = np.column_stack([starts, starts + window])
    segments = np.array([[0.0, starts[-1] + window]])
    female = np.array([0.9 if c == "a" else 0.1 for c in pattern])
    return segments, times, emb, np.zeros(len(pattern), dtype=np.int64), female


def test_viterbi_and_minimum_turn_length():
    from dramapic.analysis.diarization import _viterbi

    scores = np.array([[1, 0], [1, 0], [0, 1], [1, 0], [1, 0], [0, 1], [0, 1], [0, 1]], dtype=float)
    assert list(_viterbi(scores, 0.0)) == [0, 0, 1, 0, 0, 1, 1, 1]
    assert list(_viterbi(scores, 1.5)) == [0, 0, 0, 0, 0, 1, 1, 1]  # a one-window blip costs two switches
    assert list(_viterbi(scores[:1], 5.0)) == [0]
    # 40 windows of a, 3 of b (0.75 s: shorter than min_turn_s), 40 of a, 40 of b
    segments, times, emb, region, female = _synthetic("a" * 40 + "b" * 3 + "a" * 40 + "b" * 40)
    result = diarize_windows(segments, times, emb, region, female, settings(switch_penalty=0.0))
    (turns,) = result.turns
    assert [t.speaker for t in turns] == ["S1", "S2"] and [t.gender for t in turns] == ["female", "male"]
    change = 83 * 0.25 + 0.75  # the change point lies under the first b window's centre
    assert abs(turns[0].end - change) <= 0.25
    assert turns[0].start == segments[0, 0] and turns[-1].end == segments[0, 1]
    kept = diarize_windows(segments, times, emb, region, female,
                           settings(switch_penalty=0.0, min_turn_s=0.0, min_speaker_s=0.0))
    assert [t.speaker for t in kept.turns[0]] == ["S1", "S2", "S1", "S2"]


def test_speaker_count_bounds_and_gender_override():
    segments, times, emb, region, female = _synthetic("a" * 60 + "b" * 60 + "c" * 60)
    auto = diarize_windows(segments, times, emb, region, female, settings())
    assert len(auto.speakers) == 3
    assert len(diarize_windows(segments, times, emb, region, female, settings(max_speakers=2)).speakers) == 2
    merged = diarize_windows(segments, times, emb, region, female,
                             settings(cluster_threshold=1.5, gender_cannot_link=False))
    assert len(merged.speakers) == 1
    # with the gender cannot-link (the default) the confidently female "a" never joins the male "b" + "c"
    kept = diarize_windows(segments, times, emb, region, female, settings(cluster_threshold=1.5))
    assert sorted(s.gender for s in kept.speakers) == ["female", "male"]
    at_least = settings(cluster_threshold=1.5, min_speakers=3)
    assert len(diarize_windows(segments, times, emb, region, female, at_least).speakers) == 3
    # one speaker in all: its gender is decided on the mean logit over all windows (a: P(female) 0.9 for a third,
    # 0.1 otherwise -> male), never abstaining for probabilities given from outside
    one = diarize_windows(segments, times, emb, region, female, settings(num_speakers=1))
    assert [(s.id, s.gender) for s in one.speakers] == [("S1", "male")]
    mean_logit = (60 * np.log(0.1 / 0.9) + 120 * np.log(0.9 / 0.1)) / 180
    assert one.speakers[0].gender_confidence == pytest.approx(1 / (1 + np.exp(-mean_logit)))
    assert {t.gender for t in one.turns[0]} == {"male"}


def test_to_annotation_agrees_with_the_rttm_writer(tmp_path):
    from dramapic.lab.reference import read_rttm
    from dramapic.result import AnalysisResult, Genre, Segment, Source, Summary
    from dramapic.writers import RttmWriter

    segs = (Segment(0.0, 1.2, "silence", 0.9), Segment(1.2, 3.5, "voice", 0.9, gender="female", speaker="S1"),
            Segment(3.5, 6.0, "voice", 0.8, gender="male", speaker="S2"), Segment(6.0, 7.0, "song", 0.7),
            Segment(7.0, 9.25, "voice", 0.9, gender="female", speaker="S1"), Segment(9.25, 9.5, "voice", 0.5))
    summary = Summary(duration=9.5, shares={}, gender_shares={}, speakers=(), genre=Genre("other", 1.0, {}))
    result = AnalysisResult(source=Source("my movie.mp4", 9.5, "0"), pipeline_name="default", pipeline_version="1",
                            models=(), segments=segs, summary=summary)
    annotation = to_annotation(result.segments, uri="my_movie")
    assert annotation.uri == "my_movie"
    assert sorted(annotation.labels()) == ["S1", "S2"]
    assert annotation.label_duration("S1") == pytest.approx(4.55)
    path = tmp_path / "x.rttm"
    path.write_text(RttmWriter().render(result), encoding="utf-8")
    written = read_rttm(path)
    assert written.uri == "my_movie"
    spans = sorted((round(s.start, 3), round(s.end, 3), lab) for s, _, lab in written.itertracks(yield_label=True))
    assert spans == sorted((round(s.start, 3), round(s.end, 3), lab)
                           for s, _, lab in annotation.itertracks(yield_label=True))
    # turns work as well, and dicts (the JSON form)
    assert to_annotation([VoiceTurn(0.0, 1.0, "S1", "male")]).label_duration("S1") == pytest.approx(1.0)
    assert to_annotation([s.to_dict() for s in segs]).labels() == annotation.labels()


def test_options_are_frozen_and_checked():
    opts = settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.window_s = 2.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        settings(hop_s=2.0)
    with pytest.raises(ValueError):
        settings(num_speakers=0)
    with pytest.raises(ValueError):
        settings(min_speakers=3, max_speakers=2)
    with pytest.raises(ValueError):
        settings(switch_penalty=-1.0)


def _model_copy(tmp_path: Path) -> Path:
    src = load_manifest().get(MODEL).file()  # verified original
    dst = tmp_path / "models"
    dst.mkdir()
    shutil.copy2(src.parent / "manifest.json", dst / "manifest.json")
    shutil.copy2(src, dst / src.name)
    return dst


def test_tampered_model_raises(tmp_path):
    root = _model_copy(tmp_path)
    GenderClassifier.from_manifest(load_manifest(root))  # the untouched copy loads
    path = root / f"{MODEL}.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        GenderClassifier.from_manifest(load_manifest(root))


def test_missing_model_raises(tmp_path):
    root = _model_copy(tmp_path)
    (root / f"{MODEL}.npz").unlink()
    with pytest.raises(ModelError, match="missing"):
        GenderClassifier.from_manifest(load_manifest(root))
    with pytest.raises(ModelError):
        GenderClassifier.from_manifest(load_manifest(root), name="no-such-model")


def test_predict_proba_column_order():
    rng = np.random.default_rng(0)
    coef = rng.normal(size=256)
    kwargs = dict(mean=np.zeros(256), scale=np.ones(256), coef=coef, intercept=np.array([0.3]))
    a = GenderClassifier(**kwargs, labels=["female", "male"])
    b = GenderClassifier(**{**kwargs, "coef": -coef, "intercept": np.array([-0.3])}, labels=["male", "female"])
    x = np.abs(rng.normal(size=(5, 256)))
    np.testing.assert_allclose(a.predict_proba(x), b.predict_proba(x), atol=1e-12)
    with pytest.raises(ModelError):
        GenderClassifier(**kwargs, labels=["female", "other"])


def test_cli_refuses_impossible_speaker_counts(tmp_path, capsys):
    from dramapic.cli import main

    media = tmp_path / "x.mp4"
    media.write_bytes(b"not read: the counts are checked first")
    for argv, message in ((["--num-speakers", "2", "--max-speakers", "3"], "cannot be combined"),
                          (["--min-speakers", "3", "--max-speakers", "2"], "larger than"),
                          (["--max-speakers", "0"], "at least 1"),
                          # a count with diarization off used to be ignored without a word
                          (["--no-speakers", "--num-speakers", "2"], "--num-speakers needs speaker diarization"),
                          (["--no-speakers", "--min-speakers", "2", "--max-speakers", "3"],
                           "--min-speakers, --max-speakers need speaker diarization")):
        assert main(["run", str(media), "--no-video", *argv]) == 4
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]


def test_bench_builds_a_long_dialogue():
    from dramapic.lab.bench_speakers import build_dialogue

    if not (DATA / "manifest.csv").is_file():
        pytest.skip(f"shared data not found under {DATA}")
    audio, segments, reference = build_dialogue(60.0, DATA)
    assert audio.dtype == np.float32 and audio.shape[0] / SR >= 60.0
    assert len({s for _, _, s in reference}) >= 4
    for (a, b), (c, d) in zip(segments, segments[1:]):
        assert a < b <= c - 1.4 and c < d  # exchanges are 1.5 s apart
    for start, end, _ in reference:  # every turn lies inside one voice segment
        assert any(a - 1e-9 <= start and end <= b + 1e-9 for a, b in segments)


def test_outlier_windows_do_not_make_real_speakers_merge_at_the_speaker_bound():
    # three similar-sounding speakers with plenty of talk, plus a dozen outlier windows (overlaps, coughs, music)
    # unlike anything, each a tiny cluster of its own: bounded at 3 speakers, the outliers must fold into the
    # speakers; cutting the tree at 3 clusters would instead merge the speakers and keep the outliers apart
    rng = np.random.default_rng(7)
    rows = []
    for spk in range(3):
        for _ in range(30):
            v = np.abs(rng.normal(scale=0.02, size=256))
            v[200] += 1.0  # what the three voices share
            v[spk] += 1.0
            rows.append(v / np.linalg.norm(v))
    for k in range(12):
        v = np.abs(rng.normal(scale=0.02, size=256))
        v[10 + k] += 1.0
        rows.append(v / np.linalg.norm(v))
    emb = np.asarray(rows, np.float32)
    n = len(emb)
    segments = np.stack([np.arange(n) * 2.0, np.arange(n) * 2.0 + 1.5], axis=1)
    result = diarize_windows(segments, segments.copy(), emb, np.arange(n), np.full(n, 0.3),
                             settings(cluster_threshold=0.3, max_speakers=3, min_speaker_s=0.0))
    assert len(result.speakers) == 3
    found = np.asarray([turns[0].speaker for turns in result.turns])
    for spk in range(3):
        assert len(set(found[spk * 30:(spk + 1) * 30])) == 1
    assert len(set(found[:90])) == 3


def test_gender_pulls_an_ambiguous_stretch_to_the_speaker_of_its_gender():
    # a woman (a), then a stretch whose voice lies between hers and a man's (x: a little nearer his, but clearly
    # female), then the man (b); the stretch is too short to be a speaker of its own
    segments, times, emb, region, female = _synthetic("a" * 40 + "x" * 12 + "b" * 40)
    mix = 0.4 * emb[:40].mean(axis=0) + 0.6 * emb[52:].mean(axis=0)
    emb[40:52] = mix / np.linalg.norm(mix)
    female[40:52] = 0.95
    plain = diarize_windows(segments, times, emb, region, female,
                            settings(switch_penalty=0.0, gender_resegment_weight=0.0))
    pulled = diarize_windows(segments, times, emb, region, female,
                             settings(switch_penalty=0.0, gender_resegment_weight=0.3))
    assert settings().gender_resegment_weight == 0.1  # the default pulls too, more gently (models/README.md)

    def speaker_at(labelling, t):
        return next(turn.speaker for turn in labelling.turns[0] if turn.start <= t < turn.end)

    middle = float(times[46].mean())  # the centre of the stretch
    assert speaker_at(plain, middle) == speaker_at(plain, float(times[80].mean()))   # without: the man's
    assert speaker_at(pulled, middle) == speaker_at(pulled, float(times[5].mean()))  # with: the woman's
    # gender switched off (p = 0.5 everywhere) pulls nothing
    neutral = np.full_like(female, 0.5)
    assert diarize_windows(segments, times, emb, region, neutral, settings(switch_penalty=0.0)).turns == \
        diarize_windows(segments, times, emb, region, neutral,
                        settings(switch_penalty=0.0, gender_resegment_weight=0.0)).turns


def _two_speakers_and_a_remnant(remnant_female: float):
    """A woman (a, 10 s of windows), a man (b, 10 s) and a remnant (c: 6 windows, 1.5 s of hops) with its own
    centroid, re-segmented once: what the clustering hands the re-segmentation when a cluster's windows outnumber
    the turns it then wins."""
    from dramapic.analysis.diarization import _resegment

    segments, times, emb, region, female = _synthetic("a" * 40 + "b" * 40 + "c" * 6)
    female[80:] = remnant_female
    cent = np.stack([emb[:40].mean(axis=0), emb[40:80].mean(axis=0), emb[80:].mean(axis=0)])
    cent /= np.linalg.norm(cent, axis=1, keepdims=True)
    options = settings()
    raw = _resegment(segments, times, emb, region, female, cent, options)
    assert {turn[2] for turn in raw[0]} == {0, 1, 2}  # the remnant wins a turn of its own, under every floor
    assert sum(b - a for a, b, c, _ in raw[0] if c == 2) < 3.0
    return segments, times, emb, region, female, cent, raw, options


def test_a_speaker_left_under_the_floor_by_the_resegmentation_is_folded():
    from dramapic.analysis.diarization import _fold_after_resegmentation

    segments, times, emb, region, female, cent, raw, options = _two_speakers_and_a_remnant(0.1)
    folded_cent, folded = _fold_after_resegmentation(segments, times, emb, region, female, cent, raw, options)
    assert folded_cent.shape[0] == 2 and np.allclose(folded_cent, cent[:2])
    assert {turn[2] for turn in folded[0]} == {0, 1}
    # its windows go to the speaker they resemble; the woman and the man keep theirs
    assert sum(b - a for a, b, c, _ in folded[0] if c == 0) == pytest.approx(
        sum(b - a for a, b, c, _ in raw[0] if c == 0), abs=1.0)
    # left alone: a forced count, a lower bound that needs it, the former method, and a confident gender no other
    # speaker has (a short female part among men)
    for kept in (dataclasses.replace(options, num_speakers=3), dataclasses.replace(options, min_speakers=3),
                 dataclasses.replace(options, cluster_method="ahc")):
        assert _fold_after_resegmentation(segments, times, emb, region, female, cent, raw, kept)[0] is cent
    only_woman = female.copy()
    only_woman[:80] = 0.1
    only_woman[80:] = 0.95
    assert _fold_after_resegmentation(segments, times, emb, region, only_woman, cent, raw, options)[0] is cent
    # ... unless the gender constraints are switched off
    unconstrained = dataclasses.replace(options, gender_cannot_link=False)
    assert _fold_after_resegmentation(segments, times, emb, region, only_woman, cent, raw, unconstrained)[0].shape[0] \
        == 2


def test_diarize_windows_reports_no_speaker_the_resegmentation_left_under_the_floor(monkeypatch):
    from dramapic.analysis import diarization

    # a third voice (c) of 8 windows, 2.2 s of talk for the clustering (over the 2 s floor), four of them single
    # windows inside the man's turns: the re-segmentation gives it one turn of 1 s, as the bundled sample cut to
    # 25 s gave the man over the music bed 2.1 s of a 3.6 s cluster
    pattern = "a" * 40 + "c" * 4 + "b" * 10 + ("c" + "b" * 5) * 4 + "b" * 10
    segments, times, emb, region, female = _synthetic(pattern)
    options = settings(cluster_threshold=0.3, min_speaker_s=2.0, short_talk_share=0.0, min_speaker_share=0.0)
    result = diarize_windows(segments, times, emb, region, female, options)
    assert sorted(s.gender for s in result.speakers) == ["female", "male"]
    assert sum(s.seconds for s in result.speakers) == pytest.approx(float(segments[0, 1] - segments[0, 0]))
    monkeypatch.setattr(diarization, "_fold_after_resegmentation", lambda *args: (args[5], args[6]))
    unfolded = diarize_windows(segments, times, emb, region, female, options)
    assert len(unfolded.speakers) == 3 and unfolded.speakers[2].seconds < 2.0


def test_the_bound_warning_names_the_talk_it_folded(caplog):
    from dramapic.analysis.diarization import _say_bound

    with caplog.at_level("WARNING", logger="dramapic"):
        _say_bound(settings(max_speakers=8), [63.4, 41.2])
    assert "stopped at its upper bound, 8: 2 more cluster(s) of voice with 41-63 s of talk each were folded" \
        in caplog.text
    assert "--max-speakers N (speakers.max_speakers) raises the bound" in caplog.text
