"""Stage 2 for voice: window embeddings, clustering into speakers, the gender model and its checksum guard."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from dramapic.errors import ModelError
from dramapic.models import load_manifest
from dramapic.result import SpeakerSummary
from dramapic.speakers import (
    GenderClassifier,
    SpeakerEncoder,
    SpeakerOptions,
    VoiceLabel,
    VoiceLabelling,
    label_voice_segments,
)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
MODEL = "gender-resemblyzer-lr"
SR = 16_000
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
    """A real check that can fail: dev-split speakers the model never saw."""
    emb = np.stack([encoder.embed_clip(female, sample_rate=SR), encoder.embed_clip(male, sample_rate=SR)])
    proba = gender_model.predict_proba(emb)
    assert proba.shape == (2, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba[0, 0] > 0.8, f"female dev clip scored {proba[0]}"
    assert proba[1, 1] > 0.8, f"male dev clip scored {proba[1]}"
    assert gender_model.labels == ("female", "male")
    assert set(gender_model.model_info) == {"name", "version", "sha256"}
    assert gender_model.model_info["name"] == MODEL


def _dialogue(female: np.ndarray, male: np.ndarray):
    """female 7 s, 0.5 s silence, male 8 s, 0.5 s silence, female 7 s more (talk: 14 s female, 8 s male)."""
    gap = np.zeros(SR // 2, np.float32)
    audio = np.concatenate([female[: 7 * SR], gap, male[: 8 * SR], gap, female[7 * SR: 14 * SR]])
    segments = [(0.0, 7.0), (7.5, 15.5), (16.0, 23.0)]
    return audio, segments


def test_two_speakers_of_different_gender(encoder, gender_model, female, male):
    audio, segments = _dialogue(female, male)
    calls = []
    result = label_voice_segments(audio, sample_rate=SR, segments=segments, encoder=encoder,
                                  gender_model=gender_model, progress=lambda *a: calls.append(a))
    assert isinstance(result, VoiceLabelling)
    assert [lab.speaker for lab in result.labels] == ["S1", "S2", "S1"]
    assert [lab.gender for lab in result.labels] == ["female", "male", "female"]
    assert len(result.speakers) == 2
    s1, s2 = result.speakers
    assert isinstance(s1, SpeakerSummary)
    assert (s1.id, s1.gender) == ("S1", "female") and (s2.id, s2.gender) == ("S2", "male")
    assert s1.seconds == pytest.approx(14.0) and s2.seconds == pytest.approx(8.0)
    assert 0.5 <= s1.gender_confidence <= 1.0
    for lab in result.labels:
        assert set(lab.gender_scores) == {"female", "male"}
        assert sum(lab.gender_scores.values()) == pytest.approx(1.0)
        assert lab.confidence == pytest.approx(lab.gender_scores[lab.gender])
    assert calls and all(c[0] == "speakers" for c in calls) and calls[-1][1] == calls[-1][2]


def test_forced_count_short_segments_and_order(encoder, gender_model, female, male):
    audio, segments = _dialogue(female, male)
    # a 0.2 s segment (no window) takes the speaker nearest in time; input order is kept
    segs = [segments[2], (15.55, 15.75), segments[0], segments[1]]
    one = label_voice_segments(audio, sample_rate=SR, segments=segs, encoder=encoder, gender_model=gender_model,
                               options=SpeakerOptions(num_speakers=1))
    assert {lab.speaker for lab in one.labels} == {"S1"} and len(one.speakers) == 1
    assert one.speakers[0].seconds == pytest.approx(22.2)
    two = label_voice_segments(audio, sample_rate=SR, segments=segs, encoder=encoder, gender_model=gender_model,
                               options=SpeakerOptions(num_speakers=2))
    assert [lab.speaker for lab in two.labels] == ["S1", "S2", "S1", "S2"]


def test_long_input_path_clusters_a_subsample(encoder, gender_model, female, male, monkeypatch):
    import dramapic.speakers as speakers

    audio, segments = _dialogue(female, male)
    full = label_voice_segments(audio, sample_rate=SR, segments=segments, encoder=encoder, gender_model=gender_model)
    monkeypatch.setattr(speakers, "_MAX_CLUSTER_WINDOWS", 12)  # 27 windows: cluster 12, assign the rest
    sub = label_voice_segments(audio, sample_rate=SR, segments=segments, encoder=encoder, gender_model=gender_model)
    assert [lab.speaker for lab in sub.labels] == [lab.speaker for lab in full.labels] == ["S1", "S2", "S1"]
    assert [s.gender for s in sub.speakers] == ["female", "male"]


def test_empty_and_too_short_inputs(encoder, gender_model, female):
    empty = label_voice_segments(female, sample_rate=SR, segments=[], encoder=encoder, gender_model=gender_model)
    assert empty == VoiceLabelling(labels=(), speakers=())
    # digital silence embeds to zeros and is skipped; the segment takes the nearest speaker
    silent = np.concatenate([female[: 6 * SR], np.zeros(3 * SR, np.float32)])
    quiet = label_voice_segments(silent, sample_rate=SR, segments=[(0.0, 6.0), (6.5, 9.0)], encoder=encoder,
                                 gender_model=gender_model)
    assert [lab.speaker for lab in quiet.labels] == ["S1", "S1"] and len(quiet.speakers) == 1
    tiny = label_voice_segments(female, sample_rate=SR, segments=[(1.0, 1.1), (2.0, 2.2)], encoder=encoder,
                                gender_model=gender_model)
    assert tiny.labels == (VoiceLabel(None, None, {}, 0.0),) * 2 and tiny.speakers == ()


def test_options_are_frozen_and_checked():
    opts = SpeakerOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.window_s = 2.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        SpeakerOptions(hop_s=2.0)
    with pytest.raises(ValueError):
        SpeakerOptions(num_speakers=0)


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
