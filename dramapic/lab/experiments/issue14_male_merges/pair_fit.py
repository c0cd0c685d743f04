"""What the scripts of this folder share: the calibration's logistic fit of P(same) on pair distances, and writing
a table's lines."""

from __future__ import annotations

import math

import numpy as np

SAME_PROBABILITY = 0.25   # the pipeline's speakers.cluster_same_probability


def same_speaker_fit(distance: np.ndarray, same: np.ndarray) -> tuple[float, float, float]:
    """``P(same) = sigmoid(a + b * distance)`` fitted as ``lab.train_speakers.calibrate_threshold`` fits it
    (``distance``, ``same``: shape (m,)); returns ``(a, b, the distance where P(same) is SAME_PROBABILITY)``."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e4, class_weight="balanced").fit(np.asarray(distance)[:, None], same)
    a, b = float(fit.intercept_[0]), float(fit.coef_[0, 0])
    return a, b, (math.log(SAME_PROBABILITY / (1 - SAME_PROBABILITY)) - a) / b


def write_lines(path: str, lines: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
