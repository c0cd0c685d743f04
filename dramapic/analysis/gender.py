"""Stage 2, gender: calibrated female / male probabilities of voice windows, and decisions that may be "unknown".

The model is a standard scaler and a logistic regression over ``[embedding (256), pitch features (6)]`` (pitch:
:mod:`dramapic.analysis.pitch`), trained by :mod:`dramapic.lab.train_gender` on the windows of every train-split
speaker. Two calibrations are fitted out-of-fold *by source* (so they describe corpora and languages the
regression never heard):

* **window**: ``p_male = sigmoid(a_w * z + b_w)`` for one window's raw logit ``z`` (:meth:`predict_proba`);
* **decision**: for a group of m windows (one turn, or all of a speaker's windows),
  ``p_male = sigmoid((a_d + c_d * log2(min(m, m_max))) * zbar + b_d)`` with ``zbar`` the mean of the windows'
  raw logits, each clipped to ``±logit_clip`` first so that a few extreme windows cannot carry a decision
  (:meth:`decide`). The size slope ``c_d`` (``decision_size_slope``, from 2026-12-03; 0 in older files) lets the
  evidence grow with the group: fitted on held-out speakers' groups of 1 to 128 windows (``m_max``,
  ``decision_size_max``), a speaker heard for 100 windows whose mean logit is +2.3 is male with 0.99, a two-window
  turn with the same mean with 0.89, below the threshold (a single calibration fitted on clips, as before, gave
  both 0.92 and made dramapic abstain on whole, plainly male speakers).

Below ``abstain_below`` confidence a decision's gender is None ("unknown"): dramapic prefers unknown to
confidently wrong. :func:`decide_turns` is the policy of :func:`dramapic.analysis.diarization.label_voice_segments`.

File format (``.npz`` of plain arrays, read with ``allow_pickle=False``; :meth:`GenderClassifier.from_manifest`
verifies its sha256 first): ``mean``, ``scale``, ``coef`` (d,), ``intercept``, ``labels`` and, from format
version 2, ``feature_names`` (d,) str, ``window_calibration`` (2,), ``decision_calibration`` (2,), ``logit_clip``,
``abstain_below``, ``agree_min``, ``override_p``, ``format_version`` and, optionally, ``decision_size_slope``
(absent: 0, a decision calibration that ignores the group's size) with ``decision_size_max`` (the largest group
the slope was fitted on; a bigger group counts as that size, so an hour-long part is never decided on an
extrapolated slope). A file without ``feature_names`` is an embedding-only model of format 1 (d = 256): pitch
ignored, identity calibration, never abstains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ModelError
from ..result import GENDERS
from .embeddings import EMBEDDING_DIM

FORMAT_VERSION = 2
_V2_KEYS = ("feature_names", "window_calibration", "decision_calibration", "logit_clip", "abstain_below",
            "agree_min", "override_p")


@dataclass(frozen=True)
class GenderDecision:
    """One gender decision.

    Attributes
    ----------
    gender : str or None
        ``"female"``, ``"male"``, or None ("unknown") when ``confidence`` is below the model's ``abstain_below``.
    p_female : float
        Calibrated probability of ``female``.
    confidence : float
        ``max(p_female, 1 - p_female)``.
    """

    gender: str | None
    p_female: float
    confidence: float

    @property
    def scores(self) -> dict[str, float]:
        """``{"female": p, "male": 1 - p}``."""
        return {"female": float(self.p_female), "male": float(1.0 - self.p_female)}


def _sigmoid(z) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))  # numerically stable


class GenderClassifier:
    """Calibrated female / male probabilities of windows and group decisions with abstention.

    Parameters
    ----------
    mean, scale, coef : np.ndarray, shape (d,)
        Standardisation and logistic-regression weights; d = 256 (embedding only, format 1) or 256 + pitch features.
    intercept : np.ndarray or float
    labels : sequence of str
        ``("female", "male")`` in sklearn's ``classes_`` order: the logit is for ``labels[1]``.
    feature_names : sequence of str, optional
        ``emb_0 .. emb_255`` then :data:`dramapic.analysis.pitch.FEATURE_NAMES`; None for format 1.
    window_calibration, decision_calibration : (a, b)
        Platt parameters (module docstring); ``(1, 0)`` is no calibration.
    decision_size_slope : float
        ``c_d`` of the decision calibration: its slope is ``a_d + c_d * log2(m)`` for a group of m windows (0: the
        same for every size). Must be >= 0.
    decision_size_max : float
        Groups of more windows count as this many in the size term (the largest size the slope was fitted on).
    logit_clip : float
        Window logits are clipped to ``±logit_clip`` before they are averaged for a decision.
    abstain_below : float
        Decisions with a lower confidence have gender None (0.5: never abstain).
    agree_min : float
        A speaker-level decision needs at least this share of the speaker's windows on its side.
    override_p : float
        A turn whose own decision gives the other gender at least this confidence keeps its own.
    model_info : dict, optional
        Name, version and sha256 from the manifest.

    Raises
    ------
    ModelError
        Wrong shapes, labels, non-finite parameters or an ``abstain_below`` outside [0.5, 1).
    """

    labels = GENDERS  # ("female", "male")

    def __init__(self, *, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 labels: Sequence[str], feature_names: Sequence[str] | None = None,
                 window_calibration: Sequence[float] = (1.0, 0.0), decision_calibration: Sequence[float] = (1.0, 0.0),
                 logit_clip: float = 8.0, abstain_below: float = 0.5, agree_min: float = 0.0,
                 override_p: float = 0.8, decision_size_slope: float = 0.0, decision_size_max: float = 128.0,
                 model_info: dict[str, Any] | None = None) -> None:
        mean = np.asarray(mean, dtype=np.float64).ravel()
        scale = np.asarray(scale, dtype=np.float64).ravel()
        coef = np.asarray(coef, dtype=np.float64).reshape(-1)
        intercept = float(np.asarray(intercept, dtype=np.float64).reshape(-1)[0])
        labels = tuple(str(x) for x in labels)
        d = coef.shape[0]
        if not (mean.shape == scale.shape == (d,)) or d < EMBEDDING_DIM:
            raise ModelError(f"gender model has wrong shapes: mean {mean.shape}, scale {scale.shape}, "
                             f"coef {coef.shape}; expected (d,) with d >= {EMBEDDING_DIM}")
        if sorted(labels) != sorted(self.labels) or len(labels) != 2:
            raise ModelError(f"gender model labels {labels} are not {self.labels}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(coef)) and np.all(scale > 0)):
            raise ModelError("gender model holds non-finite or non-positive parameters")
        names = None if feature_names is None else tuple(str(x) for x in np.ravel(feature_names))
        if names is None and d != EMBEDDING_DIM:
            raise ModelError(f"gender model with {d} weights needs feature_names")
        if names is not None and len(names) != d:
            raise ModelError(f"gender model has {len(names)} feature names for {d} weights")
        self._mean, self._scale, self._coef, self._intercept = mean, scale, coef, intercept
        self._positive = labels[1]  # sklearn's classes_[1]: the class the logit is for
        self.feature_names = names
        self.n_pitch = d - EMBEDDING_DIM
        self.window_calibration = tuple(float(x) for x in np.ravel(window_calibration))
        self.decision_calibration = tuple(float(x) for x in np.ravel(decision_calibration))
        self.logit_clip = float(logit_clip)
        self.abstain_below = float(abstain_below)
        self.agree_min = float(agree_min)
        self.override_p = float(override_p)
        self.decision_size_slope = float(decision_size_slope)
        self.decision_size_max = float(decision_size_max)
        if len(self.window_calibration) != 2 or len(self.decision_calibration) != 2:
            raise ModelError("gender model calibrations must be (a, b) pairs")
        if not np.all(np.isfinite(self.window_calibration + self.decision_calibration)) \
                or self.window_calibration[0] <= 0 or self.decision_calibration[0] <= 0:
            raise ModelError("gender model calibration slopes must be finite and positive (monotone)")
        if not (np.isfinite(self.decision_size_slope) and self.decision_size_slope >= 0):
            raise ModelError(f"gender model decision_size_slope must be finite and >= 0, got {decision_size_slope}")
        if not (np.isfinite(self.decision_size_max) and self.decision_size_max >= 1):
            raise ModelError(f"gender model decision_size_max must be finite and >= 1, got {decision_size_max}")
        if not 0.5 <= self.abstain_below < 1.0:
            raise ModelError(f"gender model abstain_below must be in [0.5, 1), got {self.abstain_below}")
        self.model_info: dict[str, Any] = dict(model_info or {})

    # -- i/o ------------------------------------------------------------------------------------------------------
    @classmethod
    def from_npz(cls, path, *, model_info: dict[str, Any] | None = None) -> "GenderClassifier":
        """Load either format from ``path`` without any pickle (no checksum check: use :meth:`from_manifest`).

        Raises
        ------
        ModelError
            Unreadable, missing arrays or malformed.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as err:
            raise ModelError(f"gender model {path} is unreadable: {err}") from None
        try:
            kw: dict[str, Any] = {k: arrays[k] for k in ("mean", "scale", "coef", "intercept", "labels")}
            if "feature_names" in arrays:
                kw.update({k: arrays[k] for k in _V2_KEYS})
                for k in ("logit_clip", "abstain_below", "agree_min", "override_p"):
                    kw[k] = float(kw[k])
                for k in ("decision_size_slope", "decision_size_max"):  # written from 2026-12-03
                    if k in arrays:
                        kw[k] = float(arrays[k])
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(f"gender model {path} lacks or has a malformed {err}") from None
        return cls(**kw, model_info=model_info)

    @classmethod
    def from_manifest(cls, manifest, name: str = "gender-resemblyzer-pitch-lr") -> "GenderClassifier":
        """Load model ``name`` listed in ``manifest`` (a :class:`dramapic.models.Manifest`).

        Raises
        ------
        ModelError
            The model is not listed, its file is missing or altered (sha256 mismatch), or malformed.
        """
        entry = manifest.get(name)
        return cls.from_npz(entry.file(), model_info=entry.to_dict())

    def to_npz(self, path) -> None:
        """Write the arrays in format 2 (atomically: a temporary file renamed; :class:`OutputError` when the disk is
        full, and nothing half-written is left)."""
        from ..writers import write_npz_atomic

        labels = ("male", "female") if self._positive == "female" else ("female", "male")
        arrays = {"mean": self._mean, "scale": self._scale, "coef": self._coef,
                  "intercept": np.asarray([self._intercept]), "labels": np.asarray(labels, dtype="<U8"),
                  "feature_names": np.asarray(self.feature_names or [f"emb_{i}" for i in range(len(self._coef))]),
                  "window_calibration": np.asarray(self.window_calibration),
                  "decision_calibration": np.asarray(self.decision_calibration),
                  "logit_clip": np.asarray(self.logit_clip), "abstain_below": np.asarray(self.abstain_below),
                  "agree_min": np.asarray(self.agree_min), "override_p": np.asarray(self.override_p),
                  "decision_size_slope": np.asarray(self.decision_size_slope),
                  "decision_size_max": np.asarray(self.decision_size_max),
                  "format_version": np.asarray(FORMAT_VERSION)}
        write_npz_atomic(arrays, Path(path))

    # -- scoring --------------------------------------------------------------------------------------------------
    def _features(self, embeddings: np.ndarray, pitch: np.ndarray | None) -> np.ndarray:
        e = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
        if e.shape[1] != EMBEDDING_DIM:
            raise ValueError(f"embeddings must have shape (n, {EMBEDDING_DIM}), got {e.shape}")
        if self.n_pitch == 0:
            return e  # format 1: embedding only, pitch (if any) ignored
        if pitch is None:
            raise ValueError(f"this gender model needs pitch features of shape (n, {self.n_pitch})")
        p = np.asarray(pitch, dtype=np.float64).reshape(e.shape[0], -1) if e.shape[0] else \
            np.zeros((0, self.n_pitch))
        if p.shape != (e.shape[0], self.n_pitch):
            raise ValueError(f"pitch features must have shape ({e.shape[0]}, {self.n_pitch}), got {p.shape}")
        return np.concatenate([e, p], axis=1)

    def male_logit(self, embeddings: np.ndarray, pitch: np.ndarray | None = None) -> np.ndarray:
        """Raw (uncalibrated) logit of ``male`` of each window.

        Parameters
        ----------
        embeddings : np.ndarray, shape (n, 256)
            From :class:`~dramapic.analysis.embeddings.SpeakerEncoder` (1.5 s windows).
        pitch : np.ndarray, shape (n, 6), optional
            :func:`dramapic.analysis.pitch.window_pitch_features` of the same windows (required unless the model
            is embedding-only).

        Returns
        -------
        np.ndarray, shape (n,), float64
        """
        z = ((self._features(embeddings, pitch) - self._mean) / self._scale) @ self._coef + self._intercept
        return z if self._positive == "male" else -z

    def predict_proba(self, embeddings: np.ndarray, pitch: np.ndarray | None = None) -> np.ndarray:
        """Calibrated probabilities of each window (window calibration).

        Parameters
        ----------
        embeddings, pitch
            As in :meth:`male_logit`.

        Returns
        -------
        np.ndarray, shape (n, 2), float64
            Columns ``female``, ``male`` (the order of :attr:`labels`); rows sum to 1.
        """
        a, b = self.window_calibration
        p_male = _sigmoid(a * self.male_logit(embeddings, pitch) + b)
        return np.column_stack([1.0 - p_male, p_male])

    def decide(self, male_logits: np.ndarray) -> GenderDecision:
        """The decision for a group of windows (one turn, or all of a speaker's windows).

        Parameters
        ----------
        male_logits : np.ndarray, shape (m,)
            :meth:`male_logit` of the group's windows; m = 0 gives an unknown decision at p = 0.5.

        Returns
        -------
        GenderDecision
            Gender None when the calibrated confidence is below ``abstain_below``.
        """
        z = np.asarray(male_logits, dtype=np.float64).ravel()
        if z.size == 0:
            return GenderDecision(None, 0.5, 0.5)
        a, b = self.decision_calibration
        slope = a + self.decision_size_slope * np.log2(min(z.size, self.decision_size_max))
        p_male = float(_sigmoid(slope * np.clip(z, -self.logit_clip, self.logit_clip).mean() + b))
        p_female = 1.0 - p_male
        confidence = max(p_female, p_male)
        gender = None if confidence < self.abstain_below else ("female" if p_female >= 0.5 else "male")
        return GenderDecision(gender, p_female, confidence)


def decide_turns(model: GenderClassifier, *, turn_rows: Sequence[Sequence[np.ndarray]],
                 turn_speakers: Sequence[Sequence[str]], male_logits: np.ndarray
                 ) -> tuple[list[list[GenderDecision]], dict[str, GenderDecision | None]]:
    """Gender of every turn: per speaker when the speaker is confident and consistent, else per turn.

    Parameters
    ----------
    model : GenderClassifier
    turn_rows : per voice segment, per turn, np.ndarray of int
        The windows of each turn (rows into ``male_logits``).
    turn_speakers : per voice segment, per turn, str
        Each turn's speaker (``S1`` ...).
    male_logits : np.ndarray, shape (n,)
        :meth:`GenderClassifier.male_logit` of all windows.

    Returns
    -------
    turns : list of list of GenderDecision
        Same nesting as ``turn_rows``.
    speakers : dict
        Speaker id -> its speaker-level decision, or None when it did not pass (then its turns were decided on
        their own windows).

    Notes
    -----
    A speaker's decision (all of its windows) is used for every one of its turns when it is not unknown and at
    least ``agree_min`` of its windows have a raw logit on the decided side. Even then a turn whose own windows
    give the other gender ``override_p`` or more keeps its own decision (overlapped speech, a clustering error).
    Otherwise each turn is decided on its own windows and may be unknown.
    """
    z = np.asarray(male_logits, dtype=np.float64).ravel()
    by_spk: dict[str, list[np.ndarray]] = {}
    for rows_s, spk_s in zip(turn_rows, turn_speakers):
        for rows, spk in zip(rows_s, spk_s):
            by_spk.setdefault(spk, []).append(np.asarray(rows, dtype=np.int64))
    speaker_level: dict[str, GenderDecision | None] = {}
    for spk, parts in by_spk.items():
        rows = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        d = model.decide(z[rows])
        if d.gender is None:
            speaker_level[spk] = None
            continue
        side = z[rows] > 0 if d.gender == "male" else z[rows] < 0
        speaker_level[spk] = d if side.mean() >= model.agree_min else None
    out = []
    for rows_s, spk_s in zip(turn_rows, turn_speakers):
        seg_out = []
        for rows, spk in zip(rows_s, spk_s):
            own = model.decide(z[np.asarray(rows, dtype=np.int64)])
            d = speaker_level.get(spk)
            if d is None or (own.gender is not None and own.gender != d.gender and own.confidence >= model.override_p):
                seg_out.append(own)
            else:
                seg_out.append(d)
        out.append(seg_out)
    return out, speaker_level
