from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE = REPO / "samples" / "drama_sample.mp4"


def need_shared_data() -> Path:
    if not (SHARED_DATA / "manifest.csv").is_file():
        pytest.skip(f"shared training data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return need_shared_data()


def tone(seconds: float, *, freq: float = 440.0, level: float = 0.3, sample_rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """The full pipeline on the bundled sample, burned in: run once, shared by the end-to-end tests."""
    from dramapic.run import RunOptions, run

    out = tmp_path_factory.mktemp("sample-run")
    outputs = run(SAMPLE, options=RunOptions(output_dir=out))
    return outputs


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
