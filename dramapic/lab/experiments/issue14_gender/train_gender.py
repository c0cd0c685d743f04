"""Train the calibrated, abstaining gender model (issue 14) from the cached clip windows.

Input: ``cache/clip_windows.npz`` (``cache_clips.py``; see ``cache/README.md``): per 1.5 s window of every voice
clip, its resemblyzer embedding, pitch features, speaker, source, gender, split and condition (clean or one
augmented copy). Only ``split == "train"`` windows with a gender are fitted.

Fit (:func:`fit_gender`):

1. **Rows**: train windows of every source not excluded; clean and augmented; at most ``max_windows`` per speaker
   and condition (seeded subsample: a few long-talking speakers must not dominate the count of rows).
2. **Weights**: every speaker weighs the same in total (split over its windows), then each (source, gender)
   cell is rescaled so that within a source both genders weigh the same and a source's total weight grows as
   sqrt(its speakers) (Common Voice's 1,400 voices count, without drowning eight Emo-DB actors). Speakers in
   ``extra/gender_f0_flags.tsv`` get ``flag_weight`` (strong flags ``strong_weight``; 0 drops them).
3. **Model**: StandardScaler + LogisticRegression(C) on ``[embedding, pitch]`` (or the embedding alone).
4. **Calibration, out of fold by source**: the same fit without each training source in turn predicts that
   source's windows; Platt scaling of those held-out logits gives the window calibration; Platt scaling of each
   held-out clip's mean (clipped) logit gives the decision calibration.

``python train_gender.py --out gender_model.npz`` fits on every train speaker and writes the model (seeded,
timed); ``fit_gender(excluded=...)`` is the ``fit_fn`` of ``crosscorpus.cross_corpus``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from gender import EMBEDDING_DIM, GenderModel
from pitch import FEATURE_NAMES

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache" / "clip_windows.npz"


@dataclass(frozen=True)
class GenderTraining:
    """Settings of :func:`fit_gender` (the defaults are the shipped choice; see RESULTS.md).

    Attributes
    ----------
    use_pitch : bool
        Append the 6 pitch features to the embedding.
    C : float
        Inverse L2 strength of the logistic regression.
    max_windows : int
        Windows kept per speaker and condition (seeded subsample).
    flag_weight, strong_weight : float
        Weight multiplier of speakers flagged in ``gender_f0_flags.tsv`` (weak / strong flags).
    source_power : float
        A source's total weight is ``n_speakers ** source_power`` (0: all sources equal, 1: by speakers).
    conditions : tuple of str
        Which cached conditions to fit (``clean``, ``aug``).
    calibrate : bool
        Fit the two Platt calibrations out of fold by source (else identity).
    logit_clip : float
    abstain_below, agree_min, override_p : float
        Copied into the model (decision policy; chosen on the cross-corpus table).
    seed : int
    """

    use_pitch: bool = True
    C: float = 0.1
    max_windows: int = 40
    flag_weight: float = 1.0
    strong_weight: float = 0.0
    source_power: float = 0.5
    conditions: tuple[str, ...] = ("clean", "aug")
    calibrate: bool = True
    logit_clip: float = 6.0
    abstain_below: float = 0.5
    agree_min: float = 0.0
    override_p: float = 0.8
    seed: int = 0


_DATA: dict | None = None


def load_cache(path: Path = CACHE) -> dict[str, np.ndarray]:
    """The clip-window cache as a dict of arrays (memoised)."""
    global _DATA
    if _DATA is None or _DATA.get("_path") != str(path):
        with np.load(path, allow_pickle=False) as d:
            _DATA = {k: d[k] for k in d.files}
        _DATA["_path"] = str(path)
    return _DATA


def _rows(data, sources: set[str], cfg: GenderTraining, split: str = "train") -> np.ndarray:
    ok = (np.isin(data["source"], sorted(sources)) & (data["split"] == split) & np.isin(data["gender"], ["female", "male"])
          & np.isin(data["condition"], list(cfg.conditions)) & (np.linalg.norm(data["emb"], axis=1) > 0))
    idx = np.flatnonzero(ok)
    rng = np.random.default_rng(cfg.seed)
    keep = []
    key = np.char.add(data["speaker"][idx].astype(str), data["condition"][idx].astype(str))
    order = np.argsort(key, kind="stable")
    uniq, start = np.unique(key[order], return_index=True)
    bounds = list(start) + [len(order)]
    for u in range(len(uniq)):
        members = idx[order[bounds[u]:bounds[u + 1]]]
        if len(members) > cfg.max_windows:
            members = np.sort(rng.choice(members, size=cfg.max_windows, replace=False))
        keep.append(members)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def _weights(data, rows: np.ndarray, cfg: GenderTraining) -> np.ndarray:
    spk = data["speaker"][rows]
    src = data["source"][rows]
    gen = data["gender"][rows]
    _, inv, counts = np.unique(spk, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inv]
    flag = data["clip_f0_flag"][data["clip"][rows]]
    w = w * np.where(flag == "strong", cfg.strong_weight, np.where(flag == "flag", cfg.flag_weight, 1.0))
    out = np.zeros_like(w)
    for s in np.unique(src):
        n_spk = len(np.unique(spk[src == s]))
        for g in ("female", "male"):
            m = (src == s) & (gen == g)
            if m.any() and w[m].sum() > 0:
                out[m] = w[m] / w[m].sum() * 0.5 * n_spk ** cfg.source_power
    return out / out.mean()


def _x(data, rows, use_pitch: bool) -> np.ndarray:
    e = data["emb"][rows].astype(np.float64)
    return np.concatenate([e, data["pitch"][rows].astype(np.float64)], axis=1) if use_pitch else e


def _fit_lr(x, y, w, C):
    from sklearn.linear_model import LogisticRegression

    mean = np.average(x, axis=0, weights=w)
    scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w))
    scale = np.where(scale > 1e-8, scale, 1.0)
    clf = LogisticRegression(C=C, max_iter=2000).fit((x - mean) / scale, y, sample_weight=w)
    return mean, scale, clf.coef_.ravel().copy(), float(clf.intercept_[0])


def _platt(z, y, w) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=1e4, max_iter=1000).fit(np.asarray(z).reshape(-1, 1), y, sample_weight=w)
    return float(clf.coef_[0, 0]), float(clf.intercept_[0])


def _base(data, sources: set[str], cfg: GenderTraining):
    rows = _rows(data, sources, cfg)
    y = (data["gender"][rows] == "male").astype(int)
    w = _weights(data, rows, cfg)
    return rows, y, w, _fit_lr(_x(data, rows, cfg.use_pitch), y, w, cfg.C)


def _logit(params, x):
    mean, scale, coef, b = params
    return ((x - mean) / scale) @ coef + b


def oof_logits(data, sources: set[str], cfg: GenderTraining) -> dict[str, np.ndarray]:
    """Held-out-source logits of the training rows of ``sources``: each source predicted by a fit on the others.

    Returns ``{"rows", "z", "y", "w"}`` (windows of the train split, ``cfg.conditions``)."""
    rows_all, y_all, z_all = [], [], []
    for s in sorted(sources):
        rest = sources - {s}
        rest_rows = _rows(data, rest, cfg)
        if len(np.unique(data["gender"][rest_rows])) < 2:  # e.g. only FSDD (male digits) left: nothing to fit
            continue
        _, _, _, params = _base(data, rest, cfg)
        rows = _rows(data, {s}, cfg)
        if len(rows) == 0:
            continue
        rows_all.append(rows)
        z_all.append(_logit(params, _x(data, rows, cfg.use_pitch)))
        y_all.append((data["gender"][rows] == "male").astype(int))
    if not rows_all:
        return {"rows": np.zeros(0, np.int64), "z": np.zeros(0), "y": np.zeros(0, int), "w": np.zeros(0)}
    rows = np.concatenate(rows_all)
    w = _weights(data, rows, cfg)  # the training weighting over all held-out rows together
    return {"rows": rows, "z": np.concatenate(z_all), "y": np.concatenate(y_all), "w": w}


def clip_means(data, rows, z, clip: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean clipped logit per (clip, condition) group of ``rows``: ``(zbar, y, group_rows_first)``."""
    key = data["clip"][rows].astype(np.int64) * 2 + (data["condition"][rows] == "aug")
    uniq, inv = np.unique(key, return_inverse=True)
    zc = np.clip(z, -clip, clip)
    zbar = np.bincount(inv, weights=zc) / np.bincount(inv)
    first = np.zeros(len(uniq), np.int64)
    first[inv[::-1]] = rows[::-1]
    y = (data["gender"][first] == "male").astype(int)
    return zbar, y, first


def fit_gender(excluded: frozenset[str] | set[str] = frozenset(), cfg: GenderTraining = GenderTraining(), *,
               data: dict | None = None) -> GenderModel:
    """Fit on the train speakers of every source but ``excluded``; calibrate out of fold by source.

    Parameters
    ----------
    excluded : set of str
        Sources left out entirely (the cross-corpus protocol's held-out ones).
    cfg : GenderTraining
    data : dict, optional
        :func:`load_cache` output.

    Returns
    -------
    GenderModel
    """
    data = data if data is not None else load_cache()
    sources = set(np.unique(data["source"][(data["split"] == "train") & np.isin(data["gender"], ["female", "male"])]))
    sources -= set(excluded)
    rows, y, w, params = _base(data, sources, cfg)
    wcal, dcal = (1.0, 0.0), (1.0, 0.0)
    if cfg.calibrate and len(sources) > 1:
        o = oof_logits(data, sources, cfg)
        if len(np.unique(o["y"])) == 2:  # else (too few sources of both genders) stay uncalibrated
            wcal = _platt(o["z"], o["y"], o["w"])
            zbar, yc, first = clip_means(data, o["rows"], o["z"], cfg.logit_clip)
            dcal = _platt(zbar, yc, _weights(data, first, cfg))
    mean, scale, coef, b = params
    names = [f"emb_{i}" for i in range(EMBEDDING_DIM)] + (list(FEATURE_NAMES) if cfg.use_pitch else [])
    # sklearn's positive class is 1 = male
    return GenderModel(mean=mean, scale=scale, coef=coef, intercept=b, labels=("female", "male"),
                       feature_names=names, window_calibration=wcal, decision_calibration=dcal,
                       logit_clip=cfg.logit_clip, abstain_below=cfg.abstain_below, agree_min=cfg.agree_min,
                       override_p=cfg.override_p,
                       model_info={"excluded": sorted(str(x) for x in excluded), "sources": sorted(str(x) for x in sources),
                                   "n_windows": int(len(rows)),
                                   "n_speakers": int(len(np.unique(data["speaker"][rows]))),
                                   "config": {k: (list(v) if isinstance(v, tuple) else v)
                                              for k, v in cfg.__dict__.items()}})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="fit the gender model on every train speaker")
    ap.add_argument("--out", default=str(HERE / "gender_model.npz"))
    ap.add_argument("--cache", default=str(CACHE))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default=None, help="JSON of GenderTraining overrides")
    a = ap.parse_args(argv)
    cfg = replace(GenderTraining(seed=a.seed), **(json.loads(a.config) if a.config else {}))
    if isinstance(cfg.conditions, list):
        cfg = replace(cfg, conditions=tuple(cfg.conditions))
    t0 = time.perf_counter()
    model = fit_gender(frozenset(), cfg, data=load_cache(Path(a.cache)))
    fit_s = time.perf_counter() - t0
    model.to_npz(a.out)
    info = {**model.model_info, "fit_seconds": round(fit_s, 1), "window_calibration": model.window_calibration,
            "decision_calibration": model.decision_calibration}
    Path(a.out).with_suffix(".json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
