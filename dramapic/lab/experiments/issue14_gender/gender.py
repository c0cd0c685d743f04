"""Female / male from speaker embeddings and pitch, with calibrated probabilities and an "unknown" answer.

The model is a logistic regression over ``[embedding (256), pitch features (6)]`` (standardised), trained by
``train_gender.py`` on the windows of every train-split speaker. Two calibrations are fitted on held-out
*sources* (out-of-fold by corpus, so they describe voices and languages the regression never heard):

* **window**: ``p = sigmoid(a_w * z + b_w)`` for one window's logit ``z`` (Platt scaling);
* **decision**: for a group of windows of one turn or one speaker, ``p = sigmoid(a_d * zbar + b_d)`` with
  ``zbar`` the mean of the windows' *raw* logits, each clipped to ``±logit_clip`` first so that a few extreme
  windows cannot carry a decision (Platt on the mean logit of out-of-fold clips).

:meth:`GenderModel.decide` turns a group of windows into a :class:`GenderDecision`; below ``abstain_below``
confidence the gender is None ("unknown"). :func:`decide_turns` is the policy of ``label_voice_segments``: the
speaker's decision for all of its turns when the speaker is confident and its windows agree, otherwise each turn
on its own windows.

File format (``.npz``, plain arrays, ``allow_pickle=False``): the shipped ``GenderClassifier`` arrays ``mean``,
``scale``, ``coef`` (now ``(262,)``), ``intercept``, ``labels`` plus ``feature_names`` (262,) str,
``window_calibration`` (2,), ``decision_calibration`` (2,), ``logit_clip`` (), ``abstain_below`` (),
``agree_min`` (), ``override_p`` (), ``format_version`` () int. A file without ``feature_names`` is an
embedding-only model of the old format (pitch ignored, identity calibration, never abstains).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

EMBEDDING_DIM = 256
GENDERS = ("female", "male")
FORMAT_VERSION = 2


class GenderModelError(ValueError):
    """The model file is missing, unreadable or malformed (``dramapic.errors.ModelError`` in the product)."""


@dataclass(frozen=True)
class GenderDecision:
    """One gender decision.

    Attributes
    ----------
    gender : str or None
        ``"female"``, ``"male"``, or None when the confidence is below the model's ``abstain_below``.
    p_female : float
        Calibrated probability of ``female``.
    confidence : float
        ``max(p_female, 1 - p_female)``: the calibrated probability of the more likely gender.
    """

    gender: str | None
    p_female: float
    confidence: float


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


class GenderModel:
    """Calibrated female / male probabilities of windows, and decisions with abstention.

    Parameters
    ----------
    mean, scale, coef : np.ndarray, shape (d,)
        Standardisation and logistic-regression weights (d = 256 + number of pitch features, or 256).
    intercept : float
    labels : sequence of str
        ``("female", "male")`` in sklearn's ``classes_`` order: the logit is for ``labels[1]``.
    feature_names : sequence of str, optional
        ``emb_0 .. emb_255`` then the pitch feature names; None for an embedding-only model.
    window_calibration, decision_calibration : (a, b)
        Platt parameters (see the module docstring); ``(1, 0)`` is no calibration.
    logit_clip : float
        Window logits are clipped to ``±logit_clip`` before they are averaged for a decision.
    abstain_below : float
        Decisions with a lower confidence get gender None (0.5: never abstain).
    agree_min : float
        A speaker-level decision needs at least this share of the speaker's windows on its side.
    override_p : float
        A turn whose own decision has at least this confidence for the other gender keeps its own.
    """

    labels = GENDERS

    def __init__(self, *, mean, scale, coef, intercept, labels: Sequence[str], feature_names=None,
                 window_calibration=(1.0, 0.0), decision_calibration=(1.0, 0.0), logit_clip: float = 8.0,
                 abstain_below: float = 0.5, agree_min: float = 0.0, override_p: float = 0.8,
                 model_info: dict | None = None) -> None:
        self._mean = np.asarray(mean, dtype=np.float64).ravel()
        self._scale = np.asarray(scale, dtype=np.float64).ravel()
        self._coef = np.asarray(coef, dtype=np.float64).ravel()
        self._intercept = float(np.asarray(intercept, dtype=np.float64).ravel()[0])
        labels = tuple(str(x) for x in labels)
        d = self._coef.shape[0]
        if not (self._mean.shape == self._scale.shape == (d,)) or d < EMBEDDING_DIM:
            raise GenderModelError(f"gender model has wrong shapes: mean {self._mean.shape}, scale "
                                   f"{self._scale.shape}, coef {self._coef.shape}")
        if sorted(labels) != sorted(GENDERS):
            raise GenderModelError(f"gender model labels {labels} are not {GENDERS}")
        if not (np.all(np.isfinite(self._mean)) and np.all(np.isfinite(self._coef)) and np.all(self._scale > 0)):
            raise GenderModelError("gender model holds non-finite or non-positive parameters")
        self.feature_names = tuple(str(x) for x in feature_names) if feature_names is not None else None
        if self.feature_names is not None and len(self.feature_names) != d:
            raise GenderModelError(f"{len(self.feature_names)} feature names for {d} weights")
        self.n_pitch = d - EMBEDDING_DIM
        self._positive = labels[1]
        self.window_calibration = tuple(float(x) for x in np.ravel(window_calibration))
        self.decision_calibration = tuple(float(x) for x in np.ravel(decision_calibration))
        self.logit_clip = float(logit_clip)
        self.abstain_below = float(abstain_below)
        self.agree_min = float(agree_min)
        self.override_p = float(override_p)
        if not 0.5 <= self.abstain_below < 1.0:
            raise GenderModelError(f"abstain_below must be in [0.5, 1), got {self.abstain_below}")
        self.model_info = dict(model_info or {})

    # -- i/o ------------------------------------------------------------------------------------------------
    @classmethod
    def from_npz(cls, path: str | Path, *, model_info: dict | None = None) -> "GenderModel":
        """Load either format without pickle (see the module docstring)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as err:
            raise GenderModelError(f"gender model {path} is unreadable: {err}") from None
        try:
            kw = {k: arrays[k] for k in ("mean", "scale", "coef", "intercept", "labels")}
        except KeyError as err:
            raise GenderModelError(f"gender model {path} lacks {err}") from None
        if "feature_names" in arrays:
            kw.update(feature_names=arrays["feature_names"], window_calibration=arrays["window_calibration"],
                      decision_calibration=arrays["decision_calibration"],
                      logit_clip=float(arrays["logit_clip"]), abstain_below=float(arrays["abstain_below"]),
                      agree_min=float(arrays["agree_min"]), override_p=float(arrays["override_p"]))
        return cls(**kw, model_info=model_info)

    def to_npz(self, path: str | Path) -> None:
        """Write the arrays (atomically: a temporary file renamed)."""
        path = Path(path)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, mean=self._mean, scale=self._scale, coef=self._coef,
                 intercept=np.asarray([self._intercept]), labels=np.asarray(
                     ["male", "female"] if self._positive == "female" else ["female", "male"], dtype="<U8"),
                 feature_names=np.asarray(self.feature_names or [f"emb_{i}" for i in range(len(self._coef))]),
                 window_calibration=np.asarray(self.window_calibration),
                 decision_calibration=np.asarray(self.decision_calibration),
                 logit_clip=np.asarray(self.logit_clip), abstain_below=np.asarray(self.abstain_below),
                 agree_min=np.asarray(self.agree_min), override_p=np.asarray(self.override_p),
                 format_version=np.asarray(FORMAT_VERSION))
        tmp.replace(path)

    # -- scoring ----------------------------------------------------------------------------------------------
    def features(self, embeddings: np.ndarray, pitch_features: np.ndarray | None) -> np.ndarray:
        """The model's input rows ``[embedding, pitch]`` (pitch dropped for an embedding-only model)."""
        e = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
        if e.shape[1] != EMBEDDING_DIM:
            raise ValueError(f"embeddings must have shape (n, {EMBEDDING_DIM}), got {e.shape}")
        if self.n_pitch == 0:
            return e
        if pitch_features is None:
            raise ValueError(f"this gender model needs pitch features, shape (n, {self.n_pitch})")
        p = np.atleast_2d(np.asarray(pitch_features, dtype=np.float64))
        if p.shape != (e.shape[0], self.n_pitch):
            raise ValueError(f"pitch_features must have shape ({e.shape[0]}, {self.n_pitch}), got {p.shape}")
        return np.concatenate([e, p], axis=1)

    def male_logit(self, embeddings: np.ndarray, pitch_features: np.ndarray | None = None) -> np.ndarray:
        """Raw (uncalibrated) logit of ``male`` per window, shape (n,)."""
        z = ((self.features(embeddings, pitch_features) - self._mean) / self._scale) @ self._coef + self._intercept
        return z if self._positive == "male" else -z

    def predict_proba(self, embeddings: np.ndarray, pitch_features: np.ndarray | None = None) -> np.ndarray:
        """Calibrated probabilities of each window.

        Parameters
        ----------
        embeddings : np.ndarray, shape (n, 256)
            From ``SpeakerEncoder`` (1.5 s windows).
        pitch_features : np.ndarray, shape (n, 6), optional
            ``pitch.window_pitch_features`` of the same windows (required unless the model is embedding-only).

        Returns
        -------
        np.ndarray, shape (n, 2), float64
            Columns ``female``, ``male``; rows sum to 1.
        """
        a, b = self.window_calibration
        p_male = _sigmoid(a * self.male_logit(embeddings, pitch_features) + b)
        return np.column_stack([1.0 - p_male, p_male])

    def decide(self, male_logits: np.ndarray) -> GenderDecision:
        """The decision for a group of windows (a turn, or all of a speaker's windows).

        Parameters
        ----------
        male_logits : np.ndarray, shape (m,)
            :meth:`male_logit` of the group's windows; m = 0 gives an unknown decision at p = 0.5.

        Returns
        -------
        GenderDecision
        """
        z = np.asarray(male_logits, dtype=np.float64)
        if z.size == 0:
            return GenderDecision(None, 0.5, 0.5)
        a, b = self.decision_calibration
        p_male = float(_sigmoid(a * np.clip(z, -self.logit_clip, self.logit_clip).mean() + b))
        p_female = 1.0 - p_male
        conf = max(p_female, p_male)
        gender = None if conf < self.abstain_below else ("female" if p_female >= 0.5 else "male")
        return GenderDecision(gender, p_female, conf)


def decide_turns(model: GenderModel, turn_rows: Sequence[Sequence[np.ndarray]], turn_speakers: Sequence[Sequence[str]],
                 male_logits: np.ndarray) -> list[list[GenderDecision]]:
    """Gender of every turn: per speaker when the speaker is confident and consistent, else per turn.

    Parameters
    ----------
    model : GenderModel
    turn_rows : per voice segment, per turn, np.ndarray of window rows
        The windows that voted for the turn (rows into ``male_logits``).
    turn_speakers : per voice segment, per turn, str
        The turn's speaker (``S1`` ...).
    male_logits : np.ndarray, shape (n,)
        :meth:`GenderModel.male_logit` of all windows.

    Returns
    -------
    list of list of GenderDecision
        Same nesting as ``turn_rows``.

    Notes
    -----
    A speaker's decision (all of its windows) is used for every one of its turns when its confidence reaches
    ``abstain_below`` and at least ``agree_min`` of its windows have a raw logit on the decided side. Even then,
    a turn whose own windows give the other gender ``override_p`` or more keeps its own decision (overlapped
    speech, a clustering error). Otherwise each turn is decided on its own windows and may be unknown.
    """
    by_spk: dict[str, list[np.ndarray]] = {}
    for rows_s, spk_s in zip(turn_rows, turn_speakers):
        for rows, spk in zip(rows_s, spk_s):
            by_spk.setdefault(spk, []).append(np.asarray(rows, dtype=np.int64))
    z = np.asarray(male_logits, dtype=np.float64)
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
            if d is None:
                seg_out.append(own)
            elif own.gender is not None and own.gender != d.gender and own.confidence >= model.override_p:
                seg_out.append(own)
            else:
                seg_out.append(d)
        out.append(seg_out)
    return out
