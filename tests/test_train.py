"""Gender-model training: a tiny smoke run into tmp_path (never the repository's models/), and the augmentation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dramapic.models import file_sha256, load_manifest
from dramapic.speakers import GenderClassifier
from dramapic.train import main, mix_at_snr, telephone, train_gender

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def _manifest_csv() -> Path:
    path = DATA / "manifest.csv"
    if not path.is_file():
        pytest.skip(f"shared training data not found at {DATA} (the tests read ../shared/data)")
    return path


def test_smoke_training_registers_checksummed_model(tmp_path):
    out = tmp_path / "models"
    stages = []
    entry = train_gender(_manifest_csv(), out_dir=out, seed=1, max_clips=8, copies=1,
                         progress=lambda *a: stages.append(a))
    model = out / "gender-resemblyzer-lr.npz"
    assert model.is_file()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    (listed,) = [m for m in manifest["models"] if m["name"] == "gender-resemblyzer-lr"]
    assert listed["files"] == [{"path": "gender-resemblyzer-lr.npz", "sha256": file_sha256(model)}]
    assert entry["files"] == listed["files"]
    assert listed["labels"] == ["female", "male"] and listed["kind"] == "stage2-gender"
    assert listed["training_data"]["split"] == "train" and listed["training_data"]["n_clips"] == 8
    assert listed["training_data"]["manifest_sha256"] == file_sha256(_manifest_csv())
    assert listed["seed"] == 1
    assert set(listed["library_versions"]) >= {"numpy", "scikit-learn", "torch", "resemblyzer"}
    for key in ("dev_clean", "dev_mixed_0_20db"):
        assert set(listed["metrics"][key]) == {"accuracy", "balanced_accuracy", "n"}
        assert listed["metrics"][key]["n"] == 8
    assert stages and stages[-1][0] == "train" and stages[-1][1] == stages[-1][2]
    # the model loads through the manifest, with no pickle
    with np.load(model, allow_pickle=False) as data:
        assert set(data.files) == {"mean", "scale", "coef", "intercept", "labels"}
    clf = GenderClassifier.from_manifest(load_manifest(out))
    assert clf.predict_proba(np.full((1, 256), 1 / 16, np.float32)).shape == (1, 2)


def test_cli_refuses_missing_task(capsys):
    with pytest.raises(SystemExit):
        main([])


def test_mix_at_snr_hits_the_requested_snr():
    rng = np.random.default_rng(0)
    speech = rng.normal(scale=0.1, size=16_000).astype(np.float32)
    bed = rng.normal(scale=0.5, size=5_000).astype(np.float32)  # shorter: looped
    mixed = mix_at_snr(speech, bed, 10.0, rng)
    noise = mixed - speech
    snr = 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert mixed.shape == speech.shape and snr == pytest.approx(10.0, abs=0.01)


def test_telephone_band_removes_high_frequencies():
    t = np.arange(16_000) / 16_000
    high = np.sin(2 * np.pi * 6000 * t).astype(np.float32)
    mid = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    assert np.std(telephone(high)[2000:]) < 0.05 * np.std(high)
    assert np.std(telephone(mid)[2000:]) > 0.8 * np.std(mid)
