import numpy as np
import pytest
import soundfile as sf

from dramapic.analysis import detectors
from dramapic.config import Stage1Config
from dramapic.analysis.stage1 import DetectorCombiner
from helpers import need_shared_data, tone


def test_energy_levels():
    quiet = np.zeros(16000, dtype=np.float32)
    loud = tone(1.0, level=0.5)
    assert detectors.frame_energy_db(quiet).max() <= -99
    level = detectors.frame_energy_db(loud)
    assert level.shape == (100,)
    assert np.allclose(level[5:-5], 20 * np.log10(0.5 / np.sqrt(2)), atol=0.2)


def test_shapes_are_on_the_10ms_grid():
    audio = tone(2.345)
    scores = detectors.run_detectors(audio)
    assert scores.n_frames == detectors.n_frames_for(audio.shape[0]) == 235
    assert scores.as_matrix().shape == (235, 6)


def _clip(kind: str) -> np.ndarray:
    data = need_shared_data()
    import csv

    for row in csv.DictReader(open(data / "manifest.csv", encoding="utf-8")):
        if row["split"] == "dev" and row["subtype"] == kind and float(row["duration_s"]) > 4:
            audio, rate = sf.read(data / row["path"], dtype="float32")
            assert rate == 16000
            return audio
    pytest.skip(f"no dev clip of kind {kind}")


@pytest.mark.parametrize("kind, expected", [("read_speech", "voice"), ("orchestral_bgm", "song")])
def test_real_clips_get_their_class(kind, expected):
    audio = _clip(kind)
    probabilities = DetectorCombiner(Stage1Config()).frame_probabilities(detectors.run_detectors(audio))
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    winner = ("voice", "song", "noise", "silence")[int(np.argmax(probabilities.mean(axis=0)))]
    assert winner == expected


def test_silence_is_silence():
    probabilities = DetectorCombiner(Stage1Config()).frame_probabilities(
        detectors.run_detectors(np.zeros(32000, dtype=np.float32)))
    assert probabilities[:, 3].min() > 0.99


def test_batched_silero_matches_sequential_stepping():
    import torch

    audio = _clip("read_speech")[: 16000 * 6]
    batched = detectors.silero_speech_prob(audio, chunk_s=2.0)
    model = detectors._silero_model()
    model.reset_states()
    with torch.inference_mode():
        steps = [model(torch.from_numpy(audio[i:i + 512]), 16000).item() for i in range(0, len(audio) - 511, 512)]
    model.reset_states()
    sequential = np.repeat(steps, 512)[(np.arange(batched.shape[0]) * 160 + 80).clip(max=len(steps) * 512 - 1)]
    assert np.mean(np.abs(batched - sequential)) < 0.05
