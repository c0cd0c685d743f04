"""Stage 2, gender: female / male probabilities of speaker embeddings (a trained logistic regression)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import ModelError
from ..result import GENDERS
from .embeddings import EMBEDDING_DIM


class GenderClassifier:
    """Female / male probabilities from speaker embeddings: a standard scaler and a logistic regression.

    The parameters live in an ``.npz`` of plain arrays (``mean``, ``scale``, ``coef``, ``intercept``,
    ``labels``), read with ``allow_pickle=False``; :meth:`from_manifest` verifies its sha256 first.
    """

    labels = GENDERS  # ("female", "male")

    def __init__(self, *, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 labels: Sequence[str], model_info: dict[str, Any] | None = None) -> None:
        mean = np.asarray(mean, dtype=np.float64).ravel()
        scale = np.asarray(scale, dtype=np.float64).ravel()
        coef = np.asarray(coef, dtype=np.float64).reshape(-1)
        intercept = float(np.asarray(intercept, dtype=np.float64).reshape(-1)[0])
        labels = tuple(str(x) for x in labels)
        if not (mean.shape == scale.shape == coef.shape == (EMBEDDING_DIM,)):
            raise ModelError(f"gender model has wrong shapes: mean {mean.shape}, scale {scale.shape}, "
                             f"coef {coef.shape}; expected ({EMBEDDING_DIM},)")
        if sorted(labels) != sorted(self.labels) or len(labels) != 2:
            raise ModelError(f"gender model labels {labels} are not {self.labels}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(coef)) and np.all(scale > 0)):
            raise ModelError("gender model holds non-finite or non-positive parameters")
        self._mean, self._scale, self._coef, self._intercept = mean, scale, coef, intercept
        self._positive = labels[1]  # sklearn's classes_[1]: the class the logit is for
        self.model_info: dict[str, Any] = dict(model_info or {})

    @classmethod
    def from_npz(cls, path, *, model_info: dict[str, Any] | None = None) -> "GenderClassifier":
        """Load the arrays from ``path`` without any pickle (no checksum check: use :meth:`from_manifest`)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in ("mean", "scale", "coef", "intercept", "labels")}
        except (OSError, ValueError, KeyError) as err:
            raise ModelError(f"gender model {path} is unreadable: {err}") from None
        return cls(**arrays, model_info=model_info)

    @classmethod
    def from_manifest(cls, manifest, name: str = "gender-resemblyzer-lr") -> "GenderClassifier":
        """Load model ``name`` listed in ``manifest`` (a :class:`dramapic.models.Manifest`).

        Raises
        ------
        ModelError
            The model is not listed, its file is missing or altered (sha256 mismatch), or malformed.
        """
        entry = manifest.get(name)
        return cls.from_npz(entry.file(), model_info=entry.to_dict())

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """Probabilities of each gender.

        Parameters
        ----------
        embeddings : np.ndarray, shape (n, 256) or (256,)
            Embeddings from :class:`SpeakerEncoder`.

        Returns
        -------
        np.ndarray, shape (n, 2), float64
            Columns ``female``, ``male`` (the order of :attr:`labels`); rows sum to 1.
        """
        x = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
        if x.shape[1] != EMBEDDING_DIM:
            raise ValueError(f"embeddings must have shape (n, {EMBEDDING_DIM}), got {x.shape}")
        logit = ((x - self._mean) / self._scale) @ self._coef + self._intercept
        p_pos = 0.5 * (1.0 + np.tanh(0.5 * logit))  # numerically stable sigmoid
        p_male = p_pos if self._positive == "male" else 1.0 - p_pos
        return np.column_stack([1.0 - p_male, p_male])
