"""The version-2 gender fit (issue 14): window level, every source, pitch, source weights, out-of-fold calibration.

Input is a *window table*: a dict of arrays, one row per 1.5 s window of a voice clip (clean and augmented copies),
as ``dramapic/lab/experiments/issue14_gender/cache_clips.py`` builds it (format in ``dramapic/lab/experiments/issue14_gender/CACHE_README.md``):

* per window: ``emb`` (n, 256) float32 raw resemblyzer embeddings, ``pitch`` (n, 6) float32
  (:func:`dramapic.analysis.pitch.window_pitch_features` of the same samples), ``clip`` (n,) int index into the
  clip table, ``condition`` (n,) str (``clean`` / ``aug``), ``speaker``, ``source``, ``gender``, ``split`` (n,) str;
* per clip: ``clip_f0_flag`` (m,) str (``strong``, ``flag`` or '' from ``extra/gender_f0_flags.tsv``).

:func:`fit_gender` is the cross-corpus protocol's ``fit_fn`` (:mod:`dramapic.lab.crosscorpus`): it fits on the
``train`` windows of every source but the excluded ones. Embedding the clips into such a table inside
``dramapic train --only gender`` is not wired yet (the table is built by the exp14 script); this module is the
fit itself, so that the shipped ``gender-resemblyzer-pitch-lr`` can be reproduced from the table.

Fit:

1. **rows**: train windows with a gender of the kept sources and conditions, non-zero embedding; every one by
   default (``max_windows=None``; the weights below keep long-talking speakers from dominating), or at most
   ``max_windows`` per (speaker, condition), a seeded subsample (until 2026-12: 40, which made the fit one draw);
2. **weights**: every speaker the same in total; within a source both genders the same; a source's total weight
   ``n_speakers ** source_power`` (√: Common Voice's 1,400 voices count without drowning eight Emo-DB actors);
   flagged speakers times ``flag_weight`` (strong flags ``strong_weight``; 0 drops them);
3. **model**: weighted standardisation + ``LogisticRegression(C)`` on ``[embedding, pitch]``;
4. **calibration, out of fold by source**: each training source is predicted by the same fit without it; Platt
   scaling of those held-out window logits is the window calibration; the decision calibration is a logistic
   regression of the gender on ``[zbar, zbar * log2(m)]`` over groups of m = 1, 2, 4, ... 128 consecutive windows
   of one held-out (speaker, condition) (at most 4 groups per size, every speaker the same weight per size), so
   that a whole speaker's decision is calibrated on speaker-sized groups and a short turn's on turn-sized ones
   (``size_aware=False``: Platt scaling of each held-out (clip, condition)'s mean clipped logit, as until
   2026-12-03).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..analysis.embeddings import EMBEDDING_DIM
from ..analysis.gender import GenderClassifier
from ..analysis.pitch import FEATURE_NAMES
from .data import NotEnoughData

log = logging.getLogger(__name__)

GENDER_VALUES = ("female", "male")


@dataclass(frozen=True)
class GenderTraining:
    """Settings of :func:`fit_gender` (defaults: the shipped version 2; see models/README.md).

    Attributes
    ----------
    use_pitch : bool
        Append the pitch features to the embedding.
    C : float
        Inverse L2 strength of the logistic regression.
    max_windows : int or None
        Windows kept per speaker and condition (seeded subsample); None keeps every window (the speaker weights
        already give each speaker the same total, so the subsample only adds a draw to the fit).
    flag_weight, strong_weight : float
        Weight multipliers of weakly / strongly flagged speakers.
    source_power : float
        A source's total weight is ``n_speakers ** source_power``.
    conditions : tuple of str
        Conditions fitted (``clean``, ``aug``).
    calibrate : bool
        Fit the two calibrations out of fold by source (else identity).
    logit_clip, abstain_below, agree_min, override_p : float
        Copied into the model (decision policy, chosen on the cross-corpus table).
    size_aware : bool
        The decision calibration's slope grows with the group's size (module docstring, step 4).
    seed : int
        Draws the groups of the size-aware calibration (and the window subsample when ``max_windows`` is set).
    """

    use_pitch: bool = True
    C: float = 0.1
    max_windows: int | None = None
    flag_weight: float = 1.0
    strong_weight: float = 0.0
    source_power: float = 0.5
    conditions: tuple[str, ...] = ("clean", "aug")
    calibrate: bool = True
    logit_clip: float = 6.0
    abstain_below: float = 0.9
    agree_min: float = 0.8
    override_p: float = 0.8
    size_aware: bool = True
    seed: int = 0


def _rows(data: Mapping[str, np.ndarray], sources: set[str], cfg: GenderTraining) -> np.ndarray:
    ok = (np.isin(data["source"], sorted(sources)) & (data["split"] == "train")
          & np.isin(data["gender"], GENDER_VALUES) & np.isin(data["condition"], list(cfg.conditions))
          & (np.linalg.norm(data["emb"], axis=1) > 0))
    idx = np.flatnonzero(ok)
    rng = np.random.default_rng(cfg.seed)
    key = np.char.add(data["speaker"][idx].astype(str), data["condition"][idx].astype(str))
    order = np.argsort(key, kind="stable")
    _, start = np.unique(key[order], return_index=True)
    bounds = [*start, len(order)]
    keep = []
    for u in range(len(start)):
        members = idx[order[bounds[u]:bounds[u + 1]]]
        if cfg.max_windows is not None and len(members) > cfg.max_windows:
            members = np.sort(rng.choice(members, size=cfg.max_windows, replace=False))
        keep.append(members)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def _weights(data: Mapping[str, np.ndarray], rows: np.ndarray, cfg: GenderTraining) -> np.ndarray:
    spk, src, gen = data["speaker"][rows], data["source"][rows], data["gender"][rows]
    _, inv, counts = np.unique(spk, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inv]
    flag = data["clip_f0_flag"][data["clip"][rows]]
    w = w * np.where(flag == "strong", cfg.strong_weight, np.where(flag == "flag", cfg.flag_weight, 1.0))
    out = np.zeros_like(w)
    for s in np.unique(src):
        n_spk = len(np.unique(spk[src == s]))
        for g in GENDER_VALUES:
            m = (src == s) & (gen == g)
            if m.any() and w[m].sum() > 0:
                out[m] = w[m] / w[m].sum() * 0.5 * n_spk ** cfg.source_power
    return out / out.mean()


def _x(data: Mapping[str, np.ndarray], rows: np.ndarray, use_pitch: bool) -> np.ndarray:
    e = data["emb"][rows].astype(np.float64)
    return np.concatenate([e, data["pitch"][rows].astype(np.float64)], axis=1) if use_pitch else e


def _fit_lr(x, y, w, C):
    from sklearn.linear_model import LogisticRegression

    mean = np.average(x, axis=0, weights=w)
    scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w))
    scale = np.where(scale > 1e-8, scale, 1.0)
    clf = LogisticRegression(C=C, max_iter=2000).fit((x - mean) / scale, y, sample_weight=w)
    return mean, scale, clf.coef_.ravel().copy(), float(clf.intercept_[0])


MIN_SLOPE = 1e-3


def _platt(z, y, w) -> tuple[float, float]:
    """Platt scaling ``(a, b)``: P(male) = sigmoid(a z + b). A slope at or below zero means the held-out logits do
    not rank the genders at all (the model does not carry across sources); the slope is then floored at
    :data:`MIN_SLOPE`, so every probability sits near the base rate and decisions abstain rather than guess."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=1e4, max_iter=1000).fit(np.asarray(z).reshape(-1, 1), y, sample_weight=w)
    a, b = float(clf.coef_[0, 0]), float(clf.intercept_[0])
    if a <= MIN_SLOPE:
        log.warning("gender calibration: held-out logits do not rank the genders (slope %.3g); the model will "
                    "abstain", a)
        rate = float(np.clip(np.average(y, weights=w), 1e-3, 1 - 1e-3))
        a, b = MIN_SLOPE, float(np.log(rate / (1 - rate)))  # the base rate whatever the logit
    return a, b


def _base(data, sources, cfg):
    rows = _rows(data, sources, cfg)
    y = (data["gender"][rows] == "male").astype(int)
    w = _weights(data, rows, cfg)
    return rows, _fit_lr(_x(data, rows, cfg.use_pitch), y, w, cfg.C)


def _logit(params, x):
    mean, scale, coef, b = params
    return ((x - mean) / scale) @ coef + b


def _oof(data, sources: set[str], cfg: GenderTraining) -> dict[str, np.ndarray]:
    """Held-out-source logits of the training rows: each source predicted by a fit on the others."""
    rows_all, y_all, z_all = [], [], []
    for s in sorted(sources):
        rest = sources - {s}
        if len(np.unique(data["gender"][_rows(data, rest, cfg)])) < 2:  # e.g. only male digits left
            continue
        _, params = _base(data, rest, cfg)
        rows = _rows(data, {s}, cfg)
        if len(rows):
            rows_all.append(rows)
            z_all.append(_logit(params, _x(data, rows, cfg.use_pitch)))
            y_all.append((data["gender"][rows] == "male").astype(int))
    if not rows_all:
        return {"rows": np.zeros(0, np.int64), "z": np.zeros(0), "y": np.zeros(0, int), "w": np.zeros(0)}
    rows = np.concatenate(rows_all)
    return {"rows": rows, "z": np.concatenate(z_all), "y": np.concatenate(y_all), "w": _weights(data, rows, cfg)}


def _clip_means(data, rows, z, clip: float):
    key = data["clip"][rows].astype(np.int64) * 2 + (data["condition"][rows] == "aug")
    uniq, inv = np.unique(key, return_inverse=True)
    zbar = np.bincount(inv, weights=np.clip(z, -clip, clip)) / np.bincount(inv)
    first = np.zeros(len(uniq), np.int64)
    first[inv[::-1]] = rows[::-1]
    return zbar, (data["gender"][first] == "male").astype(int), first


#: group sizes of the size-aware decision calibration (a timeline speaker holds 10-200 windows, a turn 1-20)
GROUP_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)
GROUPS_PER_SIZE = 4


def _size_aware_calibration(data, rows, z, cfg: GenderTraining) -> tuple[tuple[float, float], float]:
    """``((a, b), c)``: P(male) = sigmoid((a + c log2 m) zbar + b) for a group of m held-out windows with mean
    clipped logit zbar, fitted on groups of :data:`GROUP_SIZES` consecutive windows of each held-out (speaker,
    condition). Falls back to a size-blind fit (c = 0) when the slope would fall with the size or the slope at
    m = 1 is not positive."""
    from sklearn.linear_model import LogisticRegression

    zc = np.clip(z, -cfg.logit_clip, cfg.logit_clip)
    y = (data["gender"][rows] == "male").astype(int)
    w_row = _weights(data, rows, cfg)
    key = np.char.add(data["speaker"][rows].astype(str), np.char.add("|", data["condition"][rows].astype(str)))
    order = np.argsort(key, kind="stable")  # within a key the table's order: clip by clip, window by window
    _, starts = np.unique(key[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    rng = np.random.default_rng([cfg.seed, 20261203])
    zbar, size, target, weight = [], [], [], []
    for a, b in zip(starts, ends):
        idx = order[a:b]
        n = len(idx)
        for m in GROUP_SIZES:
            if n < m:
                break
            firsts = rng.choice(n - m + 1, size=min(GROUPS_PER_SIZE, n - m + 1), replace=False)
            for f in firsts:
                zbar.append(zc[idx[f:f + m]].mean())
                size.append(m)
                target.append(y[idx[0]])
                weight.append(w_row[idx].sum() / len(firsts))
    zbar, size, target, weight = map(np.asarray, (zbar, size, target, weight))
    if len(np.unique(target)) < 2:
        return _platt(zbar, target, weight), 0.0
    x = np.column_stack([zbar, zbar * np.log2(size)])
    clf = LogisticRegression(C=1e4, max_iter=2000).fit(x, target, sample_weight=weight)
    a, c, b = float(clf.coef_[0, 0]), float(clf.coef_[0, 1]), float(clf.intercept_[0])
    if c < 0 or a <= MIN_SLOPE:
        return _platt(zbar, target, weight), 0.0
    return (a, b), c


def fit_gender(data: Mapping[str, np.ndarray], *, excluded: frozenset[str] = frozenset(),
               settings: GenderTraining = GenderTraining()) -> GenderClassifier:
    """Fit on the train windows of every source but ``excluded``; calibrate out of fold by source.

    Parameters
    ----------
    data : mapping of str to np.ndarray
        The window table (module docstring).
    excluded : frozenset of str
        Sources left out entirely (the cross-corpus protocol's held-out ones).
    settings : GenderTraining

    Returns
    -------
    GenderClassifier
        Format 2; ``model_info`` holds the sources, counts and settings.

    Raises
    ------
    NotEnoughData
        (a ValueError) When the kept train windows do not hold both genders.
    """
    sources = set(np.unique(data["source"][(data["split"] == "train") & np.isin(data["gender"], GENDER_VALUES)]))
    sources -= set(excluded)
    rows = _rows(data, sources, settings)
    if len(np.unique(data["gender"][rows])) < 2:
        raise NotEnoughData(f"train windows of {sorted(map(str, sources))} do not hold both genders: nothing to fit")
    rows, params = _base(data, sources, settings)
    wcal, dcal, size_slope = (1.0, 0.0), (1.0, 0.0), 0.0
    if settings.calibrate and len(sources) > 1:
        o = _oof(data, sources, settings)
        if len(np.unique(o["y"])) == 2:  # else (too few sources with both genders) stay uncalibrated
            wcal = _platt(o["z"], o["y"], o["w"])
            if settings.size_aware:
                dcal, size_slope = _size_aware_calibration(data, o["rows"], o["z"], settings)
            else:
                zbar, yc, first = _clip_means(data, o["rows"], o["z"], settings.logit_clip)
                dcal = _platt(zbar, yc, _weights(data, first, settings))
    mean, scale, coef, b = params
    names = [f"emb_{i}" for i in range(EMBEDDING_DIM)] + (list(FEATURE_NAMES) if settings.use_pitch else [])
    info: dict[str, Any] = {"excluded": sorted(map(str, excluded)), "sources": sorted(map(str, sources)),
                            "n_windows": int(len(rows)), "n_speakers": int(len(np.unique(data["speaker"][rows]))),
                            "settings": dataclasses.asdict(settings)}
    return GenderClassifier(mean=mean, scale=scale, coef=coef, intercept=b, labels=("female", "male"),
                            feature_names=names, window_calibration=wcal, decision_calibration=dcal,
                            logit_clip=settings.logit_clip, abstain_below=settings.abstain_below,
                            agree_min=settings.agree_min, override_p=settings.override_p,
                            decision_size_slope=size_slope, decision_size_max=float(GROUP_SIZES[-1]),
                            model_info=info)
