"""Real but unusual recordings that the analysis must not silently get wrong."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import SAMPLE

from dramapic import analyze
from dramapic.analysis import analyze as analysis
from dramapic.analysis.detectors import frame_energy_db
from dramapic.config import load_pipeline


@pytest.fixture(scope="module")
def sample_audio() -> np.ndarray:
    from dramapic import media

    return media.decode_audio(media.probe(SAMPLE))[: 20 * 16000]


def _shares(segments) -> dict[str, float]:
    total = sum(s.end - s.start for s in segments)
    return {label: sum(s.end - s.start for s in segments if s.label == label) / total
            for label in ("voice", "song", "noise", "silence")}


@pytest.fixture(scope="module")
def at_its_own_level(sample_audio):
    segments, speakers, _ = analysis.analyze_audio(sample_audio, load_pipeline(None))
    return _shares(segments), len(speakers)


@pytest.mark.parametrize("gain_db", [-25.0, -45.0])
def test_a_very_quiet_recording_is_analysed_raised(tmp_path: Path, caplog, sample_audio, at_its_own_level, gain_db):
    """The sample 40 dB down (a transfer made with the gain far down) came out as 83 % silence, 1 speaker, 25 dB
    down it lost a quarter of its song: stage 1 reads level as well as sound. A warning told the user to raise the
    level and run again; the analysis now does it itself, saying so: the quiet copy is analysed as the sample at an
    ordinary level is."""
    path = tmp_path / "quiet.wav"
    sf.write(path, sample_audio * np.float32(10 ** (gain_db / 20)), 16000, subtype="FLOAT")
    with caplog.at_level("WARNING", logger=analysis.__name__):
        result = analyze(path)
    assert "quiet.wav is quiet" in caplog.text and "analysed with its level raised by" in caplog.text
    # the JSON says so too (the warning is gone once the terminal is): the raise the warning gives, in dB
    said = float(re.search(r"raised by (\d+) dB", caplog.text).group(1))
    assert result.source.gain_db == pytest.approx(said, abs=0.5) and result.source.gain_db > 10
    assert result.to_dict()["source"]["gain_db"] == round(result.source.gain_db, 1)
    shares, n_speakers = at_its_own_level
    got = _shares(result.segments)
    assert all(abs(got[label] - shares[label]) < 0.03 for label in shares), (got, shares)
    assert len(result.summary.speakers) == n_speakers


def test_a_recording_at_an_ordinary_level_is_analysed_as_it_is(caplog, sample_audio):
    with caplog.at_level("WARNING", logger=analysis.__name__):
        energy = frame_energy_db(sample_audio)
        assert analysis.level_gain("sample.wav", energy) == 1.0
    assert "is quiet" not in caplog.text


def test_a_few_seconds_of_sound_in_hours_of_silence_are_not_very_quiet(caplog):
    """The level judged is the loudest second's: two seconds at an ordinary level in five minutes of silence
    (under 1 % of the frames) are not a recording made too quietly."""
    energy = np.full(30_000, -100.0, dtype=np.float32)
    energy[10_000:10_200] = -15.0
    with caplog.at_level("WARNING", logger=analysis.__name__):
        assert analysis.level_gain("mostly_silent.wav", energy) == 1.0
        assert "is quiet" not in caplog.text
        # raised so that its loudest second reaches RAISED_DBFS: 30 dB here (and -30 dBFS is not quiet enough)
        assert analysis.level_gain("ordinary.wav", np.full(5_000, -30.0, dtype=np.float32)) == 1.0
        faint = np.full(5_000, -75.0, dtype=np.float32)
        faint[1_000:3_000] = -50.0  # faint sound over a quieter floor
        assert analysis.level_gain("faint.wav", faint) == pytest.approx(10 ** (30 / 20))
        assert "faint.wav is quiet" in caplog.text and "raised by 30 dB" in caplog.text
        # room tone and hiss are not raised into noise: a silent track at -72 dBFS, or hiss as even as a floor
        caplog.clear()
        room_tone = np.full(5_000, -80.0, dtype=np.float32)
        room_tone[2_000:2_100] = -72.0
        assert analysis.level_gain("room_tone.wav", room_tone) == 1.0
        hiss = np.random.default_rng(0).normal(-60.0, 1.0, 5_000).astype(np.float32)
        assert analysis.level_gain("hiss.wav", hiss) == 1.0
        assert caplog.text.count("is very quiet") == 2 and "raised by" not in caplog.text
        # digital silence: nothing to raise (normalising it changes nothing), so it is left as it is
        caplog.clear()
        assert analysis.level_gain("silent.wav", energy[:5_000]) == 1.0
        assert "silent.wav holds no sound" in caplog.text and "raised" not in caplog.text
