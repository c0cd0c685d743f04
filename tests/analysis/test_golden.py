"""The bundled sample analyses exactly as stored: the guard that a reorganisation changes no behaviour.

``tests/data/drama_sample.expected.json`` is the sample's ``dramapic/1`` JSON. It is updated only on purpose, when
a model, the pipeline or the analysis changes what dramapic finds, by regenerating it and reviewing the diff::

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


@pytest.mark.slow
def test_the_sample_analyses_exactly_as_stored():
    expected = load_json(SAMPLE_EXPECTED)
    got = json.loads(json.dumps(analyze(SAMPLE).to_dict()))
    for data in (expected, got):
        data["source"].pop("path")
    assert got["segments"] == expected["segments"]
    assert got["summary"] == expected["summary"]
    assert got == expected
