"""The trained speaker projection: what it does to embeddings, that it fixes the failure it exists for (one
speaker split by how they speak), its checksum guard, and a smoke training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dramapic.errors import ModelError
from dramapic.models import load_manifest, register_model
from dramapic.analysis.diarization import SpeakerProjection, diarize_windows


from helpers import SHARED_DATA as DATA, speaker_settings as settings  # noqa: E402


def _keep_dims(dims) -> SpeakerProjection:
    components = np.zeros((256, len(dims)))
    components[list(dims), np.arange(len(dims))] = 1.0
    return SpeakerProjection(mean=np.zeros(256), components=components)


def test_transform_is_normalised_and_keeps_silent_windows_empty():
    rng = np.random.default_rng(0)
    projection = SpeakerProjection(mean=rng.random(256), components=rng.standard_normal((256, 20)))
    x = rng.random((5, 256)).astype(np.float32)
    x[2] = 0.0
    out = projection.transform(x)
    assert out.shape == (5, 20) and out.dtype == np.float32 and projection.dim == 20
    np.testing.assert_allclose(np.linalg.norm(out[[0, 1, 3, 4]], axis=1), 1.0, rtol=1e-5)
    assert not out[2].any()
    with pytest.raises(ValueError, match="256"):
        projection.transform(np.zeros((2, 128)))
    with pytest.raises(ModelError, match="shapes"):
        SpeakerProjection(mean=np.zeros(256), components=np.zeros((128, 10)))
    with pytest.raises(ModelError, match="non-finite"):
        SpeakerProjection(mean=np.full(256, np.nan), components=np.zeros((256, 10)))


def test_projection_keeps_one_speaker_together_across_speaking_styles():
    # two speakers (directions 0 and 1); half of each one's windows carry a strong "emotion" direction (2)
    rng = np.random.default_rng(3)
    rows, owner = [], []
    for spk in (0, 1):
        for style in (0, 1):
            for _ in range(12):
                v = np.abs(rng.normal(scale=0.05, size=256))
                v[spk] += 1.0
                v[2] += 1.3 * style
                rows.append(v / np.linalg.norm(v))
                owner.append(spk)
    emb = np.asarray(rows, np.float32)
    n = len(emb)
    # every window its own 1.5 s segment, spread over time
    segments = np.stack([np.arange(n) * 2.0, np.arange(n) * 2.0 + 1.5], axis=1)
    times, region, female = segments.copy(), np.arange(n), np.full(n, 0.2)
    options = settings(cluster_threshold=0.3, min_speaker_s=0.0)
    raw = diarize_windows(segments, times, emb, region, female, options)
    projected = diarize_windows(segments, times, emb, region, female, options,
                                projection=_keep_dims([d for d in range(256) if d != 2]))
    assert len(raw.speakers) == 4  # split by style
    assert len(projected.speakers) == 2
    found = np.asarray([turns[0].speaker for turns in projected.turns])
    for spk in (0, 1):
        assert len(set(found[np.asarray(owner) == spk])) == 1


def test_manifest_guards_the_projection(tmp_path: Path):
    np.savez(tmp_path / "speaker-lda.npz", mean=np.zeros(256), components=np.eye(256)[:, :8])
    register_model(tmp_path, {"name": "speaker-lda", "version": "1", "files": [{"path": "speaker-lda.npz"}],
                              "labels": [], "kind": "speaker-projection"})
    assert SpeakerProjection.from_manifest(load_manifest(tmp_path)).dim == 8
    with open(tmp_path / "speaker-lda.npz", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(ModelError):
        SpeakerProjection.from_manifest(load_manifest(tmp_path))


def test_version_1_files_load_without_a_threshold_and_version_2_with_it(tmp_path: Path):
    np.savez(tmp_path / "speaker-lda.npz", mean=np.zeros(256), components=np.eye(256)[:, :8])
    register_model(tmp_path, {"name": "speaker-lda", "version": "1", "files": [{"path": "speaker-lda.npz"}],
                              "labels": [], "kind": "speaker-projection"})
    old = SpeakerProjection.from_manifest(load_manifest(tmp_path))
    assert old.cluster_threshold is None and old.calibration is None and old.dim == 8
    np.savez(tmp_path / "speaker-lda.npz", mean=np.zeros(256), components=np.eye(256)[:, :8],
             cluster_threshold=np.float64(0.8), calibration=np.array([14.0, -17.5]))
    register_model(tmp_path, {"name": "speaker-lda", "version": "2", "files": [{"path": "speaker-lda.npz"}],
                              "labels": [], "kind": "speaker-projection"})
    new = SpeakerProjection.from_manifest(load_manifest(tmp_path))
    assert new.cluster_threshold == pytest.approx(0.8) and list(new.calibration) == [14.0, -17.5]


def test_shipped_projection_carries_its_calibrated_threshold():
    shipped = SpeakerProjection.from_manifest(load_manifest())
    # the regularised LDA (version 3): uncentred, and its distances are about half the plain LDA's (0.82 then)
    assert shipped.dim == 100 and 0.3 < shipped.cluster_threshold < 0.5
    assert shipped.model_info["version"] == "3"
    assert not shipped.to_arrays()["mean"].any()


def test_smoke_training_registers_a_loadable_projection(tmp_path: Path):
    manifest_csv = DATA / "manifest.csv"
    if not manifest_csv.is_file():
        pytest.skip(f"shared training data not found at {DATA}")
    from dramapic.lab.train_speakers import train_speaker_projection

    entry = train_speaker_projection(manifest_csv, out_dir=tmp_path, seed=1, dim=10, max_clips=24)
    listed = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))["models"]
    assert [m["name"] for m in listed] == ["speaker-lda"] and entry["kind"] == "speaker-projection"
    assert entry["training_data"]["split"] == "train" and entry["training_data"]["n_clips"] == 24
    projection = SpeakerProjection.from_manifest(load_manifest(tmp_path))
    assert 1 <= projection.dim <= 10
    # both manifests: manifest_extra.csv next to manifest.csv is picked up
    names = [m["path"] for m in entry["training_data"]["manifests"]]
    assert names[0] == "manifest.csv" and (names[1:] == ["manifest_extra.csv"]) == \
        (DATA / "manifest_extra.csv").is_file()
    assert projection.cluster_threshold is None or 0 < projection.cluster_threshold < 2
    assert projection.transform(np.full((1, 256), 1 / 16)).shape == (1, projection.dim)
