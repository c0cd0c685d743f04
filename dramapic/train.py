"""Training of the stage-2 gender model (``gender-resemblyzer-lr``).

Run ``python -m dramapic.train gender --data /path/to/manifest.csv --out models``.

Only ``split == "train"`` voice clips with a known gender are fitted; ``split == "dev"`` clips are used only for the
metrics stored in the manifest. Every training clip contributes its clean embedding plus ``copies`` augmented
copies (seeded): an optional random crop, speech over a random *train*-split song or noise clip at 0-20 dB SNR,
sometimes a telephone band (300-3400 Hz), and a random gain with clipping. Embeddings come from
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

from .models import file_sha256, register_model
from .progress import ProgressHook, silent_hook
from .result import GENDERS

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
    from .speakers import SpeakerEncoder

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
    from .speakers import GenderClassifier

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
    """``python -m dramapic.train gender --data manifest.csv --out models``."""
    parser = argparse.ArgumentParser(prog="python -m dramapic.train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="task", required=True)
    g = sub.add_parser("gender", help="train the stage-2 female/male model")
    g.add_argument("--data", type=Path, required=True, help="manifest.csv of the training data")
    g.add_argument("--out", type=Path, required=True, help="models directory (npz + manifest.json)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--no-augment", action="store_true", help="fit on clean clips only")
    g.add_argument("--copies", type=int, default=4, help="augmented copies per clip (default 4)")
    g.add_argument("--max-clips", type=int, default=None, help="smoke run: cap train and dev clips")
    args = parser.parse_args(argv)
    entry = train_gender(args.data, out_dir=args.out, seed=args.seed, augment=not args.no_augment,
                         max_clips=args.max_clips, copies=args.copies)
    print(_summary(entry))
    print(json.dumps(entry["metrics"], indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
