"""The bundled sample analyses exactly as stored: the guard that a reorganisation changes no behaviour.

``tests/data/drama_sample.expected.json`` is the sample's ``dramapic/1`` JSON. It is updated only on purpose, when
a model, the pipeline or the analysis changes what dramapic finds, by regenerating it and reviewing the diff::

    DRAMAPIC_FFMPEG=$(python -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())") \\
        dramapic run samples/drama_sample.mp4 -o /tmp/golden --no-video --overwrite
    cp /tmp/golden/drama_sample.dramapic.json tests/data/drama_sample.expected.json

Labels, genders, speakers and every string are compared exactly; times and shares (rounded to 3 or 4 decimals)
within one rounding step, 0.0015: two CPUs with other float kernels (AVX2 against AVX-512 in torch and librosa) may
round a sum that lies on a rounding edge the other way, which is not a change in behaviour, while a moved boundary
moves by at least a 10 ms frame. Probabilities (a segment's ``confidence`` and ``scores``, a speaker's
``gender_confidence``) within 0.01: they are means of the members' float32 outputs, and an Intel CPU with AVX-512
VNNI computes 0.797 where the AMD EPYC (Zen 4) this copy was made on (2026-12-03) reads 0.792 for one quiet silence
segment, every label and boundary equal; a retrained or changed model moves them by far more. YAMNet's int8 graph is exact on every CPU
(``dramapic.analysis.yamnet``); before it was, this copy matched only CPUs of the kind it was made on. Only
``source.path`` is left out (it is however the sample was named on the command line); the source's sha256 is
compared.
"""

from __future__ import annotations

import json

import pytest

from dramapic import analyze
from helpers import SAMPLE, SAMPLE_EXPECTED, load_json


@pytest.fixture()
def bundled_ffmpeg(monkeypatch):
    """The stored copy was decoded by imageio-ffmpeg's static build (no ffprobe beside it). Another build on PATH
    (Debian's 5.1 with its ffprobe) reads the container's duration to the millisecond and resamples a hair
    differently, which is a different input, not a change in dramapic: pin the build the copy was made with."""
    import imageio_ffmpeg

    from dramapic import media

    monkeypatch.setenv(media.FFMPEG_ENV, imageio_ffmpeg.get_ffmpeg_exe())
    monkeypatch.delenv(media.FFPROBE_ENV, raising=False)
    for cached in (media.ffmpeg_exe, media.ffprobe_exe):
        cached.cache_clear()
    yield
    for cached in (media.ffmpeg_exe, media.ffprobe_exe):
        cached.cache_clear()


@pytest.mark.slow
def test_the_sample_analyses_exactly_as_stored(bundled_ffmpeg):
    expected = load_json(SAMPLE_EXPECTED)
    got = json.loads(json.dumps(analyze(SAMPLE).to_dict()))
    for data in (expected, got):
        data["source"].pop("path")
    assert_same(got["segments"], expected["segments"], "segments")
    assert_same(got["summary"], expected["summary"], "summary")
    assert_same(got, expected, "")


ROUNDING_TOLERANCE = 0.0015
PROBABILITY_TOLERANCE = 0.01
PROBABILITY_KEYS = frozenset({"confidence", "scores", "gender_confidence"})


def assert_same(got, expected, where: str, *, tolerance: float = ROUNDING_TOLERANCE) -> None:
    """``got == expected`` for JSON values, except that two numbers may differ by ``tolerance``
    (:data:`PROBABILITY_TOLERANCE` under a key of :data:`PROBABILITY_KEYS`)."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), where
        for key in expected:
            inner = max(tolerance, PROBABILITY_TOLERANCE) if key in PROBABILITY_KEYS else tolerance
            assert_same(got[key], expected[key], f"{where}.{key}", tolerance=inner)
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for index, (a, b) in enumerate(zip(got, expected)):
            assert_same(a, b, f"{where}[{index}]", tolerance=tolerance)
    elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
        assert isinstance(got, (int, float)) and not isinstance(got, bool), where
        assert got == pytest.approx(expected, abs=tolerance, rel=0), f"{where}: {got} != {expected}"
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"


def test_the_comparison_tolerates_rounding_only():
    expected = {"segments": [{"start": 1.08, "label": "voice", "confidence": 0.8, "scores": {"voice": 0.132}}],
                "shares": {"voice": 0.5}, "n": 2}

    def varied(start=1.08, label="voice", confidence=0.8, voice=0.132, share=0.5, n=2):
        return {"segments": [{"start": start, "label": label, "confidence": confidence, "scores": {"voice": voice}}],
                "shares": {"voice": share}, "n": n}

    assert_same(varied(voice=0.133), expected, "")
    assert_same(varied(voice=0.139, confidence=0.795), expected, "")  # another CPU's float32 sums
    for wrong in (varied(start=1.09), varied(label="song"), varied(voice=0.145), varied(confidence=0.78),
                  varied(share=0.503), varied(n=True),
                  {"segments": [], "shares": {"voice": 0.5}, "n": 2},
                  {"segments": [{"start": 1.08, "label": "voice"}], "shares": {"voice": 0.5}, "n": 2}):
        with pytest.raises(AssertionError):
            assert_same(wrong, expected, "")
