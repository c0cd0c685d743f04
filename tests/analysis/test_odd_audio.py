"""Real but unusual recordings that the analysis must not silently get wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import SAMPLE

from dramapic import analyze
from dramapic.analysis import analyze as analysis


@pytest.fixture(scope="module")
def sample_audio() -> np.ndarray:
    from dramapic import media

    return media.decode_audio(media.probe(SAMPLE))[: 20 * 16000]


@pytest.mark.parametrize("gain_db, warned", [(-50.0, True), (0.0, False)])
def test_a_very_quiet_recording_is_said_to_be_so(tmp_path: Path, caplog, sample_audio, gain_db, warned):
    """The sample 50 dB down (a transfer made with the gain far down) came out as 100 % silence, 0 speakers, with
    nothing to say why: stage 1 reads level as well as sound. The analysis now warns that the recording is too
    quiet for it, and says how to raise it; at its own level the sample draws no such warning."""
    path = tmp_path / "quiet.wav"
    sf.write(path, sample_audio * np.float32(10 ** (gain_db / 20)), 16000, subtype="FLOAT")
    with caplog.at_level("WARNING", logger=analysis.__name__):
        analyze(path)
    assert ("very quiet" in caplog.text) == warned, caplog.text


def test_a_few_seconds_of_sound_in_hours_of_silence_are_not_very_quiet(caplog):
    """The level judged is the loudest second's: two seconds at an ordinary level in five minutes of silence
    (under 1 % of the frames) are not a recording made too quietly."""
    energy = np.full(30_000, -100.0, dtype=np.float32)
    energy[10_000:10_200] = -15.0
    with caplog.at_level("WARNING", logger=analysis.__name__):
        analysis._warn_if_quiet("mostly_silent.wav", energy)
        assert "very quiet" not in caplog.text
        analysis._warn_if_quiet("faint.wav", np.full(5_000, -50.0, dtype=np.float32))
        assert "faint.wav is very quiet" in caplog.text and "Raise its level" in caplog.text
        # digital silence: nothing to raise (normalising it changes nothing), so no such advice
        caplog.clear()
        analysis._warn_if_quiet("silent.wav", energy[:5_000])
        assert "silent.wav holds no sound" in caplog.text and "Raise" not in caplog.text
