"""The stage-1 ensemble (dramapic.analysis.stage1): members stored as plain arrays, the stacker, chunked use, loading
through the manifest, and a toy member plugged in by configuration alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dramapic.analysis import detectors
from dramapic import resources
from dramapic.lab import train_stage1 as train
from dramapic.config import STAGE1_LABELS, Stage1Config, load_pipeline
from dramapic.analysis.stage1 import (
    MEMBER_KINDS,
    DetectorCombiner,
    Forest,
    LinearSoftmax,
    LogMelCnnMember,
    Stage1Ensemble,
    build_cnn,
    detector_features,
    load_member,
    register_member_kind,
)
from dramapic.errors import ModelError
from dramapic.models import load_manifest
from helpers import DEV_MIXES, SHARED_DATA


def build_stage1(config: Stage1Config, manifest=None):
    """The stage-1 model of ``config`` from ``manifest`` (default: the bundled models/)."""
    if config.model == "rule":
        return DetectorCombiner(config)
    return Stage1Ensemble.from_manifest(manifest or load_manifest(), members=config.members, stacker=config.stacker,
                                        members_mean_share=config.members_mean_share)

SR = 16_000
DEV_MIX = DEV_MIXES / "devmix_05.opus"


def _synthetic(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """7 s: a chord (song), white noise (noise), near-silence; labels on the 10 ms grid."""
    rng = np.random.default_rng(seed)
    t = np.arange(2 * SR) / SR
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220, 277, 330, 440 * (1 + 0.01 * seed)))
    noise = rng.normal(scale=0.05, size=2 * SR)
    quiet = rng.normal(scale=1e-4, size=3 * SR)
    audio = np.concatenate([chord, noise, quiet]).astype(np.float32)
    labels = np.repeat(np.array([1, 2, 3], np.int8), [200, 200, 300])
    return audio, labels


def _items(n: int = 3) -> list[train.PreparedMix]:
    out = []
    for seed in range(n):
        audio, labels = _synthetic(seed)
        out.append(train.PreparedMix(f"synthetic_{seed}", seed % 2, audio, labels, detectors.run_detectors(audio)))
    return out


def test_forest_matches_scikit_learn():
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] ** 2 > 0.5).astype(int) + (x[:, 2] > 1)
    a = RandomForestClassifier(n_estimators=7, max_leaf_nodes=20, random_state=0).fit(x, y)
    b = RandomForestClassifier(n_estimators=5, max_leaf_nodes=20, random_state=1).fit(x, y)
    test = rng.normal(size=(50, 6))
    assert np.allclose(Forest.from_sklearn(a).predict_proba(test), a.predict_proba(test), atol=1e-6)
    both = Forest.from_sklearn(a, b).predict_proba(test)
    assert np.allclose(both, (7 * a.predict_proba(test) + 5 * b.predict_proba(test)) / 12, atol=1e-6)
    # the arrays survive an npz round trip without pickle
    arrays = Forest.from_sklearn(a).to_arrays()
    assert all(v.dtype != object for v in arrays.values())
    assert np.allclose(Forest.from_arrays(arrays).predict_proba(test), a.predict_proba(test), atol=1e-6)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_linear_softmax_matches_scikit_learn(n_classes):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 5)) * 3 + 1
    y = np.digitize(x[:, 0] + 0.3 * rng.normal(size=300), np.quantile(x[:, 0], np.linspace(0, 1, n_classes + 1)[1:-1]))
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(max_iter=1000).fit(scaler.transform(x), y)
    model = LinearSoftmax.from_sklearn(scaler, clf)
    assert np.allclose(model.predict_proba(x), clf.predict_proba(scaler.transform(x)), atol=1e-6)


def test_cnn_member_round_trip_through_arrays():
    import torch

    torch.manual_seed(0)
    nets = [build_cnn(), build_cnn()]
    for net in nets:
        net.eval()
    member = LogMelCnnMember(nets, n_mels=64, window_s=1.0, hop_s=0.5, name="cnn", labels=STAGE1_LABELS,
                             refines=None, info={})
    info = {"labels": list(STAGE1_LABELS), "features": {"n_mels": 64, "window_s": 1.0, "hop_s": 0.5},
            "architecture": {"channels": [16, 24, 32, 48]}}
    again = MEMBER_KINDS["logmel-cnn"].from_arrays(member.to_arrays(), info, name="cnn")
    audio, _ = _synthetic()
    scores = detectors.run_detectors(audio)
    p = member.frame_probabilities(audio, scores)
    assert p.shape == (scores.n_frames, 4) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    assert np.allclose(again.frame_probabilities(audio, scores), p, atol=1e-6)


def test_detector_features_are_finite_and_framewise():
    audio, _ = _synthetic()
    scores = detectors.run_detectors(audio)
    x = detector_features(scores)
    assert x.shape == (scores.n_frames, 28) and np.all(np.isfinite(x))


def test_detector_combiner_accepts_both_call_forms():
    audio, _ = _synthetic()
    scores = detectors.run_detectors(audio)
    rule = DetectorCombiner(Stage1Config())
    assert np.array_equal(rule.frame_probabilities(scores), rule.frame_probabilities(audio, scores))


# ---------------------------------------------------------------------------------------- the bundled ensemble
@pytest.fixture(scope="module")
def bundled() -> Stage1Ensemble:
    cfg = load_pipeline(None).stage1
    if cfg.model != "ensemble":
        pytest.skip("the default pipeline does not use the trained ensemble")
    return build_stage1(cfg)


@pytest.mark.parametrize("seconds", [1.0, 1.37, 4.0])
def test_any_chunk_of_a_second_or_more_gives_frame_probabilities(bundled, seconds):
    audio = _synthetic()[0][: int(seconds * SR)]
    scores = detectors.run_detectors(audio)
    p = bundled.frame_probabilities(audio, scores)
    assert p.shape == (scores.n_frames, 4) and p.dtype == np.float32
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-4) and np.all(p >= 0)
    members = bundled.member_probabilities(audio, scores)
    assert list(members) == list(load_pipeline(None).stage1.members)


def test_the_members_mean_share_mixes_the_stacker_with_the_members_plain_mean(bundled):
    from dataclasses import replace

    audio = _synthetic()[0][: 4 * SR]
    scores = detectors.run_detectors(audio)
    members = list(bundled.member_probabilities(audio, scores).values())
    stacker = replace(bundled, members_mean_share=0.0).combine(members)
    mean = replace(bundled, members_mean_share=1.0).combine(members)
    half = replace(bundled, members_mean_share=0.5).combine(members)
    assert np.allclose(mean, np.mean(members, axis=0), atol=1e-6)
    assert np.allclose(half, 0.5 * stacker + 0.5 * mean, atol=1e-6)
    assert np.allclose(half.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(stacker, mean, atol=1e-3)  # the two halves differ, so the mix is seen
    # what the pipeline asks for is what frame_probabilities gives
    assert np.array_equal(bundled.frame_probabilities(audio, scores),
                          replace(bundled, members_mean_share=bundled.members_mean_share).combine(members))
    assert bundled.members_mean_share == load_pipeline(None).stage1.members_mean_share


def test_overlapping_chunks_agree_with_the_whole_file(bundled):
    if not DEV_MIX.is_file():
        pytest.skip(f"dev mix not found at {DEV_MIX}")
    from dramapic import media

    audio = media.decode_audio(media.probe(DEV_MIX))[: 40 * SR]
    whole = bundled.frame_probabilities(audio, detectors.run_detectors(audio))
    chunk = audio[10 * SR:30 * SR]
    part = bundled.frame_probabilities(chunk, detectors.run_detectors(chunk))
    inner = slice(300, 1700)  # away from the chunk's edges
    assert np.mean(np.abs(part[inner] - whole[1000:3000][inner])) < 0.05
    assert np.mean(part[inner].argmax(1) == whole[1000:3000][inner].argmax(1)) > 0.95


def test_sample_is_mostly_right_per_class(bundled):
    """Real dev clips of each kind get their class from the ensemble."""
    import csv

    import soundfile as sf

    data = SHARED_DATA
    if not (data / "manifest.csv").is_file():
        pytest.skip("shared data not found")
    wanted = {"read_speech": "voice", "orchestral_bgm": "song", "jackhammer": "noise"}
    for row in csv.DictReader(open(data / "manifest.csv", encoding="utf-8")):
        if row["split"] == "dev" and wanted.get(row["subtype"]) and float(row["duration_s"]) >= 4:
            audio, _ = sf.read(data / row["path"], dtype="float32")
            p = bundled.frame_probabilities(audio, detectors.run_detectors(audio))
            assert STAGE1_LABELS[int(p.mean(axis=0).argmax())] == wanted.pop(row["subtype"]), row["path"]
    assert not wanted


def _need_bundled_stage1_models() -> None:
    names = {*Stage1Config().members, Stage1Config().stacker}
    if not names <= set(load_manifest().entries):
        pytest.skip("the trained stage-1 ensemble is not in models/manifest.json yet (issue 4 in progress)")


def test_manifest_guards_the_ensemble(tmp_path: Path):
    _need_bundled_stage1_models()
    root = tmp_path / "models"
    shutil.copytree(resources.models_dir(), root)
    cfg = Stage1Config(model="ensemble")
    build_stage1(cfg, manifest=load_manifest(root))  # loads
    with pytest.raises(ModelError, match="trained on members"):
        build_stage1(Stage1Config(model="ensemble", members=cfg.members[:2]), manifest=load_manifest(root))
    with open(root / f"{cfg.members[1]}.npz", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(ModelError, match="sha256"):
        build_stage1(cfg, manifest=load_manifest(root))
    (root / f"{cfg.members[1]}.npz").unlink()
    with pytest.raises(ModelError, match="missing"):
        build_stage1(cfg, manifest=load_manifest(root))
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["models"]:
        if entry["name"] == cfg.members[0]:
            entry["kind"] = "crystal-ball"
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ModelError, match="not a member kind"):
        load_member(load_manifest(root), cfg.members[0])


@pytest.mark.parametrize("member, fault", [
    ("stage1-seed-rf", {"features": 5}), ("stage1-seed-rf", {"features": {"n_fft": "abc"}}),
    ("stage1-logmel-cnn", {"architecture": "x"}),
])
def test_a_member_whose_manifest_settings_do_not_fit_is_a_model_error(tmp_path: Path, member: str, fault: dict):
    # the member's settings (features, architecture) are read from the manifest, which no sha256 covers: a
    # hand-edited one that does not fit ended dramapic with an AttributeError or ValueError traceback
    root = tmp_path / "models"
    shutil.copytree(resources.models_dir(), root)
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["models"]:
        if entry["name"] == member:
            entry.update(fault)
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ModelError, match=f"model '{member}': its settings in .*manifest.json do not fit it: "):
        load_member(load_manifest(root), member)


# ---------------------------------------------------------------------------------------- plugging in a member
def test_toy_member_plugs_in_by_configuration_alone(tmp_path: Path, monkeypatch):
    """A new member is a trained file (registered in the manifest) plus a pipeline change; no code changes.

    The toy member is a 3-tree forest on the seed features at n_fft 512; a stacker is retrained over the four
    members; the pipeline names both. The product's loader (``loaders.stage1_model``) then runs it.
    """
    from dramapic.analysis import loaders as analysis

    _need_bundled_stage1_models()
    root = tmp_path / "models"
    shutil.copytree(resources.models_dir(), root)
    items = _items(3)
    toy_params = {"n_fft": 512, "n_trees": 3, "max_leaf_nodes": 8}
    toy = train.fit_member("seed-forest", toy_params, items, name="stage1-toy-forest", seed=0)
    entry = train.register_member(root, toy, kind="seed-forest", params=toy_params)
    assert entry["refines"] is None and entry["labels"] == list(STAGE1_LABELS)
    assert entry["features"]["n_fft"] == 512 and entry["features"]["hop_length"] == 128

    base = list(Stage1Config().members)
    manifest = load_manifest(root)
    members = [load_member(manifest, name) for name in [*base, "stage1-toy-forest"]]
    oof = [[m.frame_probabilities(it.audio, it.scores) for m in members] for it in items]
    stacker = train.fit_stacker(oof, [it.labels for it in items], frame_step=1)
    train.register_stacker(root, "stage1-stacker-toy", stacker, members=[*base, "stage1-toy-forest"])

    pipeline_yaml = tmp_path / "toy.yaml"
    pipeline_yaml.write_text(
        "stage1:\n  model: ensemble\n"
        f"  members: [{', '.join(base)}, stage1-toy-forest]\n"
        "  stacker: stage1-stacker-toy\n", encoding="utf-8")
    pipeline = load_pipeline(pipeline_yaml)
    monkeypatch.setattr(resources, "models_dir", lambda: root)
    analysis._stage1_ensemble.cache_clear()
    try:
        model = analysis.stage1_model(pipeline.stage1)
        assert [m.name for m in model.members][-1] == "stage1-toy-forest"
        assert "stage1-toy-forest" in {info["name"] for info in model.model_infos}
        audio, labels = _synthetic(5)
        scores = detectors.run_detectors(audio)
        p = model.frame_probabilities(audio, scores)
        assert p.shape == (scores.n_frames, 4) and np.allclose(p.sum(axis=1), 1, atol=1e-4)
        assert set(model.member_probabilities(audio, scores)) == {*base, "stage1-toy-forest"}
    finally:
        analysis._stage1_ensemble.cache_clear()


def test_a_new_member_kind_registers_from_outside(tmp_path: Path):
    """A member of a kind dramapic does not ship: registered by a plug-in, loaded through the manifest."""
    from dramapic.models import register_model

    @register_member_kind("toy-constant")
    class Constant:
        def __init__(self, prior, name, labels):
            self.prior, self.name, self.labels, self.refines, self.model_info = prior, name, labels, None, {}

        @classmethod
        def from_arrays(cls, arrays, info, *, name):
            return cls(arrays["prior"], name, tuple(info["labels"]))

        def frame_probabilities(self, audio, scores):
            return np.tile(self.prior, (scores.n_frames, 1)).astype(np.float32)

    try:
        np.savez(tmp_path / "toy.npz", prior=np.array([0.1, 0.2, 0.3, 0.4]))
        register_model(tmp_path, {"name": "toy", "version": "1", "files": [{"path": "toy.npz"}],
                                  "labels": list(STAGE1_LABELS), "kind": "toy-constant", "refines": None})
        member = load_member(load_manifest(tmp_path), "toy")
        audio, _ = _synthetic()
        p = member.frame_probabilities(audio, detectors.run_detectors(audio))
        assert np.allclose(p[0], [0.1, 0.2, 0.3, 0.4])
    finally:
        MEMBER_KINDS.pop("toy-constant", None)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_code_the_shipped_manifest_names_still_resolves():
    # the trained files' entries name the code that made their inputs (``dramapic.analysis.stage1.detector_features``,
    # ...); those names are written at training time and ship with the files, so moving a function (the member kinds
    # went to stage1_members / stage1_pretrained) must leave them importable from where the manifest says
    import importlib
    import re

    manifest = json.loads((resources.models_dir() / "manifest.json").read_text(encoding="utf-8"))
    paths = {m.group(0) for text in _strings(manifest) for m in [re.match(r"dramapic(?:\.\w+)+", text)] if m}
    assert "dramapic.analysis.stage1.detector_features" in paths and "dramapic.analysis.stage1.omnivad_features" in paths
    for path in sorted(paths):
        parts = path.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            break
        for name in parts[cut:]:
            assert hasattr(obj, name), f"{path}: {'.'.join(parts[:cut])} has no {name!r}"
            obj = getattr(obj, name)


def test_every_member_kind_is_known_whichever_stage1_module_is_imported_first():
    # the untrained kinds register in stage1_pretrained, which stage1_members imports last: a fresh interpreter that
    # imports either module alone must know all seven kinds
    import subprocess
    import sys

    for module in ("dramapic.analysis.stage1_members", "dramapic.analysis.stage1_pretrained"):
        code = f"import {module}; from dramapic.analysis.stage1_members import MEMBER_KINDS; print(sorted(MEMBER_KINDS))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
        assert out.stdout.strip() == str(sorted(MEMBER_KINDS)), (module, out.stdout, out.stderr)
    assert {"yamnet-families", "omnivad-events", "detector-lr"} <= set(MEMBER_KINDS)
