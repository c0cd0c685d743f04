"""The bundled sample analyses exactly as stored: the guard that a reorganisation changes no behaviour.

``tests/data/drama_sample.expected.json`` is the sample's ``dramapic/1`` JSON. It is updated only on purpose, when
a model, the pipeline or the analysis changes what dramapic finds, by regenerating it and reviewing the diff::

    DRAMAPIC_FFMPEG=$(python -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())") \\
        dramapic run samples/drama_sample.mp4 -o /tmp/golden --no-video --overwrite
    cp /tmp/golden/drama_sample.dramapic.json tests/data/drama_sample.expected.json

Labels, genders, speakers and every string are compared exactly; numbers (times rounded to 3 decimals, scores to
3 or 4) within one rounding step, 0.0015: two CPUs with other float kernels (AVX2 against AVX-512 in torch and
librosa) may round a sum that lies on a rounding edge the other way, which is not a change in behaviour, while a
moved boundary moves by at least a 10 ms frame. YAMNet's int8 graph is exact on every CPU
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


def assert_same(got, expected, where: str, *, tolerance: float = 0.0015) -> None:
    """``got == expected`` for JSON values, except that two numbers may differ by ``tolerance``."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), where
        for key in expected:
            assert_same(got[key], expected[key], f"{where}.{key}", tolerance=tolerance)
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
    expected = {"segments": [{"start": 1.08, "label": "voice", "scores": {"voice": 0.132}}], "n": 2}
    assert_same({"segments": [{"start": 1.08, "label": "voice", "scores": {"voice": 0.133}}], "n": 2}, expected, "")
    for wrong in ({"segments": [{"start": 1.09, "label": "voice", "scores": {"voice": 0.132}}], "n": 2},
                  {"segments": [{"start": 1.08, "label": "song", "scores": {"voice": 0.132}}], "n": 2},
                  {"segments": [{"start": 1.08, "label": "voice", "scores": {"voice": 0.135}}], "n": 2},
                  {"segments": [], "n": 2}, {"segments": [{"start": 1.08, "label": "voice"}], "n": 2},
                  {"segments": [{"start": 1.08, "label": "voice", "scores": {"voice": 0.132}}], "n": True}):
        with pytest.raises(AssertionError):
            assert_same(wrong, expected, "")
