"""Training target: the stage-2 gender model (``gender-resemblyzer-lr``), and the gender-stacking measurement.

Only train-split voice clips with a known gender are fitted. Every training clip contributes its clean embedding
plus ``copies`` augmented copies (seeded): an optional random crop, speech over a random *train*-split song or noise
clip at 0-20 dB SNR, sometimes a telephone band (300-3400 Hz), and a random gain with clipping. Embeddings come from
:meth:`dramapic.analysis.embeddings.SpeakerEncoder.embed_clip`, the same feature path that prediction uses. The
classifier is a standard scaler and a logistic regression whose C is chosen by speaker-grouped cross-validation on
the training clips; its parameters are saved as plain ``.npz`` arrays (no pickle) and registered in
``manifest.json`` with their sha256.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..models import file_sha256, register_model
from ..progress import ProgressHook, silent_hook
from ..result import GENDERS, SAMPLE_RATE
from .data import (_CLIPS_PER_BATCH, _CROP_S, _GAIN_DB, _P_CROP, _P_MIX, _P_PHONE, _SNR_DB, EVAL_SEED, _load,
                   _load_piece, _subset, _voice_clips, augment_clip, mix_at_snr, read_manifest, versions)

log = logging.getLogger(__name__)

MODEL_NAME = "gender-resemblyzer-lr"
MODEL_FILE = f"{MODEL_NAME}.npz"
_CS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def _metrics(y_true: np.ndarray, p_male: np.ndarray) -> dict[str, Any]:
    """Accuracy, balanced accuracy (mean recall over the classes present) and n of 0/1 labels (1 = male)."""
    y_true = np.asarray(y_true)
    if len(y_true) == 0:
        return {"accuracy": None, "balanced_accuracy": None, "n": 0}
    correct = (np.asarray(p_male) >= 0.5).astype(int) == y_true
    recalls = [float(correct[y_true == k].mean()) for k in np.unique(y_true)]
    return {"accuracy": round(float(correct.mean()), 4), "balanced_accuracy": round(float(np.mean(recalls)), 4),
            "n": int(len(y_true))}


def _fit(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int):
    """StandardScaler + LogisticRegression; C by speaker-grouped CV (log loss) when there are enough speakers."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    per_class = min(len(np.unique(groups[y == k])) for k in (0, 1))
    use_cv = per_class >= 5
    c = 1.0  # a smoke run with very few speakers
    if use_cv:
        folds = list(StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed).split(x, y, groups))
        scores = [
            cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(C=cand, max_iter=5000)),
                            x, y, cv=folds, scoring="neg_log_loss").mean()
            for cand in _CS
        ]
        c = float(_CS[int(np.argmax(scores))])
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=c, max_iter=5000).fit(scaler.transform(x), y)
    return scaler, clf, c, use_cv


def train_gender(
    manifest_csv: Path,
    *,
    out_dir: Path,
    seed: int = 0,
    augment: bool = True,
    max_clips: int | None = None,
    copies: int = 4,
    progress: ProgressHook = silent_hook,
) -> dict[str, Any]:
    """Train, evaluate and register the gender model.

    Parameters
    ----------
    manifest_csv : Path
        The data manifest (``path,label,...,split,duration_s``); clip paths are relative to its folder.
    out_dir : Path
        Where ``gender-resemblyzer-lr.npz`` is written and ``manifest.json`` is created or updated.
    seed : int
        Seeds the clip subset, the augmentation and the cross-validation folds.
    augment : bool
        Add ``copies`` augmented embeddings per training clip.
    max_clips : int or None
        Smoke runs: at most this many training clips *and* this many dev clips (balanced by gender).
    copies : int
        Augmented copies per training clip.
    progress : ProgressHook
        Called as ``progress("train", clips_done, clips_total)`` over training and dev clips.

    Returns
    -------
    dict
        The manifest entry as registered (with file checksums), including ``metrics``.
    """
    from ..analysis.embeddings import SpeakerEncoder

    t0 = time.perf_counter()
    manifest_csv = Path(manifest_csv)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = manifest_csv.parent
    rows = read_manifest(manifest_csv)
    rng = np.random.default_rng(seed)

    train = _subset(_voice_clips(rows, root, "train"), max_clips, rng)
    dev = _subset(_voice_clips(rows, root, "dev"), max_clips, np.random.default_rng(EVAL_SEED))
    if not train or len({c.gender for c in train}) < 2:
        raise ValueError(f"{manifest_csv} has no train-split voice clips of both genders")
    beds_train = [root / r["path"] for r in rows if r["split"] == "train" and r["label"] in ("song", "noise")]
    beds_dev = [root / r["path"] for r in rows if r["split"] == "dev" and r["label"] in ("song", "noise")]
    copies = copies if augment else 0

    encoder = SpeakerEncoder()
    total = len(train) + len(dev)
    feats, labels, groups = [], [], []
    for b0 in range(0, len(train), _CLIPS_PER_BATCH):
        audios = []
        for clip in train[b0:b0 + _CLIPS_PER_BATCH]:
            speech = _load(clip.path)
            audios.append(speech)
            audios += [augment_clip(speech, beds_train, rng)[0] for _ in range(copies)]
            labels += [GENDERS.index(clip.gender)] * (1 + copies)
            groups += [clip.speaker] * (1 + copies)
        feats.append(encoder.embed_clips(audios, sample_rate=SAMPLE_RATE))  # == embed_clip of each
        progress("train", min(b0 + _CLIPS_PER_BATCH, len(train)), total)
    x = np.concatenate(feats)
    y = np.asarray(labels)
    keep = np.linalg.norm(x, axis=1) > 0  # clips too short to embed
    scaler, clf, c, cv = _fit(x[keep], y[keep], np.asarray(groups)[keep], seed)
    fit_s = time.perf_counter() - t0

    classes = [GENDERS[int(k)] for k in clf.classes_]
    model_path = out_dir / MODEL_FILE
    tmp = model_path.with_name(model_path.stem + ".tmp.npz")
    np.savez(tmp, mean=scaler.mean_.astype(np.float64), scale=scaler.scale_.astype(np.float64),
             coef=clf.coef_.astype(np.float64), intercept=clf.intercept_.astype(np.float64),
             labels=np.asarray(classes, dtype="<U8"))
    tmp.replace(model_path)

    # evaluation on dev only: clean clips, the same clips over dev music / noise, and single windows
    from ..analysis.gender import GenderClassifier

    model = GenderClassifier.from_npz(model_path)
    eval_rng = np.random.default_rng(EVAL_SEED)
    speech_dev = [_load(clip.path) for clip in dev]
    y_dev = np.asarray([GENDERS.index(clip.gender) for clip in dev], dtype=np.int64)
    mixed_dev = []
    for speech in speech_dev:
        bed = (_load_piece(beds_dev[int(eval_rng.integers(len(beds_dev)))], len(speech), eval_rng)
               if beds_dev else np.zeros(0, np.float32))
        mixed_dev.append(mix_at_snr(speech, bed, float(eval_rng.uniform(*_SNR_DB)), eval_rng))
    p_clean = model.predict_proba(encoder.embed_clips(speech_dev, sample_rate=SAMPLE_RATE))[:, 1]
    p_mixed = model.predict_proba(encoder.embed_clips(mixed_dev, sample_rate=SAMPLE_RATE))[:, 1]
    sources = np.asarray([clip.source for clip in dev])
    metrics = {
        "dev_clean": _metrics(y_dev, p_clean),
        "dev_mixed_0_20db": _metrics(y_dev, p_mixed),
        "dev_by_source": {
            src: {"clean": _metrics(y_dev[sources == src], p_clean[sources == src]),
                  "mixed_0_20db": _metrics(y_dev[sources == src], p_mixed[sources == src]),
                  "speakers": len({c.speaker for c in dev if c.source == src})}
            for src in sorted(set(sources))
        },
    }
    # single 1.5 s windows, as the pipeline scores them (clips laid end to end, one region each)
    for key, audios in (("dev_clean_windows_1.5s", speech_dev), ("dev_mixed_windows_1.5s", mixed_dev)):
        bounds = np.concatenate([[0], np.cumsum([len(a) for a in audios])]) / SAMPLE_RATE
        _, win, region = encoder.embed_regions(np.concatenate(audios) if audios else np.zeros(0, np.float32),
                                               sample_rate=SAMPLE_RATE, regions=list(zip(bounds[:-1], bounds[1:])),
                                               window_s=1.5, hop_s=0.75)
        metrics[key] = _metrics(y_dev[region], model.predict_proba(win)[:, 1])
    progress("train", total, total)
    metrics.update({
        "dev_speakers": len({c.speaker for c in dev}),
        "eval_seed": EVAL_SEED,
        "mixing": "each dev clip once over a random dev-split song/noise clip at uniform 0-20 dB SNR",
    })
    total_s = time.perf_counter() - t0

    aug_text = (f"per clip: clean + {copies} copies; each copy: p={_P_CROP} random crop to "
                f"{_CROP_S[0]}-{_CROP_S[1]} s (clips > {_CROP_S[1]} s), p={_P_MIX} mixed over a random train-split "
                f"song/noise clip at uniform {_SNR_DB[0]:g}-{_SNR_DB[1]:g} dB SNR, p={_P_PHONE} telephone band "
                f"300-3400 Hz (4th-order Butterworth), random gain {_GAIN_DB[0]:g}..{_GAIN_DB[1]:+g} dB "
                f"with clipping") if copies else "none"
    entry = {
        "name": MODEL_NAME,
        "version": "1",
        "files": [{"path": MODEL_FILE}],
        "labels": list(GENDERS),
        "kind": "stage2-gender",
        "embedding": f"resemblyzer VoiceEncoder 256-d (resemblyzer {encoder.version}); 1.5 s windows, 0.75 s hop, "
                     f"windows quieter than -30 dBFS raised to it (mel power, increase only); clip = L2-normalised "
                     f"mean of its window embeddings",
        "classifier": f"StandardScaler + LogisticRegression (C={c:g}, " + (
            "chosen by 5-fold speaker-grouped CV on train, log loss)" if cv else "fixed: too few speakers for CV)"),
        "training_data": {
            "manifest_sha256": file_sha256(manifest_csv),
            "n_clips": len(train),
            "n_speakers": len({cl.speaker for cl in train}),
            "n_clips_by_gender": {g: sum(cl.gender == g for cl in train) for g in GENDERS},
            "sources": sorted({cl.source for cl in train}),
            "n_embeddings": int(keep.sum()),
            "split": "train",
            "augmentation": aug_text,
        },
        "metrics": metrics,
        "training_time_s": {"fit": round(fit_s, 1), "total_with_eval": round(total_s, 1)},
        "library_versions": versions(),
        "seed": seed,
    }
    if max_clips is not None:
        entry["training_data"]["max_clips"] = max_clips
    return register_model(out_dir, entry)


# ------------------------------------------------------------------------------------------ speaker projection


def gender_stacking_experiment(manifest_csv: Path, *, seed: int = 0, copies: int = 2, n_trees: int = 120,
                               max_clips: int | None = None, progress: ProgressHook = silent_hook) -> dict[str, Any]:
    """Measure whether a seed-feature gender forest helps the resemblyzer logistic regression (model card figures).

    Members, both on the 1.5 s / 0.75 s windows the pipeline scores: (a) the shipped model's recipe, a standardised
    logistic regression (C = 0.03) on resemblyzer embeddings; (b) a random forest on the seed project's features at
    ``n_fft`` 512 (:func:`dramapic.analysis.features.window_features` of each window's audio). Training windows come from
    train-split voice clips with a known gender, each clean plus ``copies`` augmented copies (:func:`augment_clip`).
    The stacker is a logistic regression on the two members' logits, fitted on out-of-fold predictions (2 folds by
    speaker). Measured on dev-split clips, clean and over dev music / noise at 0-20 dB (the seed of ``train_gender``'s
    dev evaluation), per window.

    Returns
    -------
    dict
        Window accuracies of each member, the stacker and the plain mean, clean and mixed, and the stacker's weights.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from ..analysis.features import window_features
    from ..analysis.embeddings import SpeakerEncoder

    manifest_csv = Path(manifest_csv)
    root = manifest_csv.parent
    rows = read_manifest(manifest_csv)
    rng = np.random.default_rng(seed)
    train = _subset(_voice_clips(rows, root, "train"), max_clips, rng)
    dev = _subset(_voice_clips(rows, root, "dev"), max_clips, np.random.default_rng(EVAL_SEED))
    beds_train = [root / r["path"] for r in rows if r["split"] == "train" and r["label"] in ("song", "noise")]
    beds_dev = [root / r["path"] for r in rows if r["split"] == "dev" and r["label"] in ("song", "noise")]
    encoder = SpeakerEncoder()

    def windows(audios: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        bounds = np.concatenate([[0], np.cumsum([len(a) for a in audios])]) / SAMPLE_RATE
        cat = np.concatenate(audios)
        times, emb, region = encoder.embed_regions(cat, sample_rate=SAMPLE_RATE,
                                                   regions=list(zip(bounds[:-1], bounds[1:])), window_s=1.5, hop_s=0.75)
        seed_x = []
        for a, b in times:
            seg = cat[int(round(a * SAMPLE_RATE)):int(round(b * SAMPLE_RATE))]
            seed_x.append(window_features(y=seg, n_fft=512, window_s=max(len(seg), 1) / SAMPLE_RATE, hop_s=1.5)[1][0])
        return emb, np.asarray(seed_x), region

    audios, y, groups = [], [], []
    for i, clip in enumerate(train):
        speech = _load(clip.path)
        for x in [speech] + [augment_clip(speech, beds_train, rng)[0] for _ in range(copies)]:
            audios.append(x)
            y.append(GENDERS.index(clip.gender))
            groups.append(clip.speaker)
        progress("gender-stacking", i + 1, len(train))
    emb, seed_x, region = windows(audios)
    y, groups = np.asarray(y)[region], np.asarray(groups)[region]
    speakers = np.unique(groups)
    fold_of = dict(zip(speakers, np.random.default_rng([seed, 3]).permutation(len(speakers)) % 2))
    fold = np.asarray([fold_of[g] for g in groups])

    def fit_lr(mask):
        scaler = StandardScaler().fit(emb[mask])
        return scaler, LogisticRegression(C=0.03, max_iter=5000).fit(scaler.transform(emb[mask]), y[mask])

    def fit_rf(mask, k):
        return RandomForestClassifier(n_estimators=n_trees, max_leaf_nodes=512, min_samples_leaf=2, n_jobs=2,
                                      random_state=seed * 10 + k).fit(seed_x[mask], y[mask])

    oof = np.zeros((len(y), 2))
    for k in (0, 1):
        scaler, lr = fit_lr(fold != k)
        oof[fold == k, 0] = lr.predict_proba(scaler.transform(emb[fold == k]))[:, 1]
        oof[fold == k, 1] = fit_rf(fold != k, k).predict_proba(seed_x[fold == k])[:, 1]
    logit = lambda p: np.log(np.clip(p, 1e-4, 1 - 1e-4) / np.clip(1 - p, 1e-4, 1))  # noqa: E731
    stacker = LogisticRegression().fit(logit(oof), y)
    scaler, lr = fit_lr(np.ones(len(y), bool))
    rf = fit_rf(np.ones(len(y), bool), 9)

    eval_rng = np.random.default_rng(EVAL_SEED)
    clean = [_load(clip.path) for clip in dev]
    y_dev = np.asarray([GENDERS.index(clip.gender) for clip in dev])
    mixed = [mix_at_snr(s, _load_piece(beds_dev[int(eval_rng.integers(len(beds_dev)))], len(s), eval_rng),
                        float(eval_rng.uniform(*_SNR_DB)), eval_rng) for s in clean]
    out: dict[str, Any] = {
        "train_windows": int(len(y)), "oof_train_accuracy": {
            "resemblyzer_lr": round(float(np.mean((oof[:, 0] >= 0.5) == y)), 4),
            "seed_forest_nfft512": round(float(np.mean((oof[:, 1] >= 0.5) == y)), 4)},
        "stacker_coef": [round(float(v), 3) for v in stacker.coef_[0]],
        "stacker_intercept": round(float(stacker.intercept_[0]), 3)}
    for key, audios_dev in (("dev_clean_windows", clean), ("dev_mixed_windows", mixed)):
        e, sx, r = windows(audios_dev)
        truth = y_dev[r]
        p_lr = lr.predict_proba(scaler.transform(e))[:, 1]
        p_rf = rf.predict_proba(sx)[:, 1]
        p_stack = stacker.predict_proba(logit(np.column_stack([p_lr, p_rf])))[:, 1]
        out[key] = {name: round(float(np.mean((p >= 0.5) == truth)), 4) for name, p in
                    (("resemblyzer_lr", p_lr), ("seed_forest_nfft512", p_rf), ("stacked", p_stack),
                     ("mean", (p_lr + p_rf) / 2))}
        out[key]["n"] = int(len(truth))
    return out
