"""The bundled sample analyses exactly as stored: the guard that a reorganisation changes no behaviour.

``tests/data/drama_sample.expected.json`` is the sample's ``dramapic/1`` JSON. It is updated only on purpose, when
a model, the pipeline or the analysis changes what dramapic finds, by regenerating it and reviewing the diff::

    DRAMAPIC_FFMPEG=$(python -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())") \\
        dramapic run samples/drama_sample.mp4 -o /tmp/golden --no-video --overwrite
    cp /tmp/golden/drama_sample.dramapic.json tests/data/drama_sample.expected.json

The comparison is exact (no float tolerance): the JSON rounds times to 3 decimals and scores to 3 or 4, and the
analysis is deterministic on one machine, so any difference is a change in behaviour. Only ``source.path`` is left
out (it is however the sample was named on the command line); the source's sha256 is compared.
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
    assert got["segments"] == expected["segments"]
    assert got["summary"] == expected["summary"]
    assert got == expected
