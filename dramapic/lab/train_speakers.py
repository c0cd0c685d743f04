"""Training target: the speaker projection (``speaker-lda``), an LDA fitted by train-split speaker on resemblyzer
embeddings, in which diarization clusters, with the clustering's stopping distance calibrated on held-out training
speakers and stored next to it (``cluster_threshold``, ``calibration``)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..models import file_sha256, register_model
from ..progress import ProgressHook, silent_hook
from ..result import SAMPLE_RATE
from .data import (_CLIPS_PER_BATCH, _SNR_DB, EVAL_SEED, _load, _load_piece, _speaker_clips, augment_clip,
                   mix_at_snr, read_manifest, save_npz, versions)

log = logging.getLogger(__name__)

PROJECTION_NAME = "speaker-lda"



SET_SIZES = (2, 4, 8, 16)
"""Windows per side of a simulated cluster pair (1.5-12 s of talk at a 0.75 s hop): the clusters average linkage
compares near its stopping point."""


def _clip_windows(encoder, audios: Sequence[np.ndarray], *, with_starts: bool = False):
    """Window embeddings (1.5 s every 0.75 s, as the pipeline) of clips laid end to end; (emb (n, 256), clip index
    (n,)) and, with ``with_starts``, each window's start inside its clip (n,) in seconds."""
    if not audios:
        empty = (np.zeros((0, 256), np.float32), np.zeros(0, np.int64))
        return (*empty, np.zeros(0)) if with_starts else empty
    bounds = np.concatenate([[0], np.cumsum([len(a) for a in audios])]) / SAMPLE_RATE
    times, emb, region = encoder.embed_regions(np.concatenate(audios), sample_rate=SAMPLE_RATE,
                                               regions=list(zip(bounds[:-1], bounds[1:])), window_s=1.5,
                                               hop_s=0.75)
    keep = np.linalg.norm(emb, axis=1) > 0
    region = np.asarray(region)
    if with_starts:
        return emb[keep], region[keep], (np.asarray(times)[:, 0] - bounds[region])[keep]
    return emb[keep], region[keep]


def manifests_with_extra(manifest_csv: Path) -> list[Path]:
    """``manifest_csv`` and, when it lies next to it, ``manifest_extra.csv`` (same columns, paths relative to the
    same data root: 1,420 more speakers of Common Voice, RAVDESS and nEMO)."""
    extra = Path(manifest_csv).with_name("manifest_extra.csv")
    return [Path(manifest_csv)] + ([extra] if extra.is_file() and extra != Path(manifest_csv) else [])


def fit_lda(x: np.ndarray, speakers: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """LDA with speakers as classes (scikit-learn, svd solver): ``(mean (256,), components (256, d))``."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    dim = min(dim, len(np.unique(speakers)) - 1, x.shape[1])
    lda = LinearDiscriminantAnalysis(solver="svd", n_components=dim).fit(x, speakers)
    return lda.xbar_.astype(np.float64), lda.scalings_[:, :dim].astype(np.float64)


def _project(x: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    z = (np.asarray(x, np.float64) - mean) @ components
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def simulate_pairs(z: np.ndarray, speaker: np.ndarray, clip: np.ndarray, start: np.ndarray, source: np.ndarray,
                   gender: np.ndarray, rng: np.random.Generator, *, n_pairs: int = 6000
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Average-linkage distances ``1 - <mean_a, mean_b>`` of simulated cluster pairs of (held-out) speakers.

    A source is drawn first (uniformly: Common Voice's thousand speakers must not drown the acted corpora), then a
    speaker of it. Same-speaker pairs take their two window sets from different clips where the speaker has several
    (else the first and second half of one clip, windows not overlapping); different-speaker pairs take a second
    speaker *of the same source* (a timeline's cast shares language, studio and style), of the same gender half of
    the time. ``z`` (n, d) are projected windows, the other arrays (n,). Returns ``(distance (m,), same (m,))``.
    """
    rows_of = {s: np.flatnonzero(speaker == s) for s in np.unique(speaker)}
    by_source: dict[str, list] = {}
    for s, rows in rows_of.items():
        by_source.setdefault(str(source[rows[0]]), []).append(s)
    sources = [k for k, v in by_source.items() if len(v) >= 2]
    dist, same = [], []
    if not sources:
        return np.zeros(0), np.zeros(0, dtype=bool)
    for _ in range(n_pairs):
        size = int(rng.choice(SET_SIZES))
        pool = by_source[sources[int(rng.integers(len(sources)))]]
        s = pool[int(rng.integers(len(pool)))]
        rows = rows_of[s]
        if rng.random() < 0.5:
            clips = np.unique(clip[rows])
            if len(clips) >= 2:
                ca, cb = rng.choice(clips, size=2, replace=False)
                ra, rb = rows[clip[rows] == ca], rows[clip[rows] == cb]
            else:
                mid = float(np.median(start[rows]))
                ra, rb = rows[start[rows] + 1.5 <= mid + 1e-6], rows[start[rows] >= mid]
                if len(ra) == 0 or len(rb) == 0:
                    continue
            is_same = True
        else:
            others = [o for o in pool if o != s]
            if rng.random() < 0.5:
                others = [o for o in others if gender[rows_of[o][0]] == gender[rows[0]]] or others
            ra, rb = rows, rows_of[others[int(rng.integers(len(others)))]]
            is_same = False
        a = rng.choice(ra, size=min(size, len(ra)), replace=False)
        b = rng.choice(rb, size=min(size, len(rb)), replace=False)
        same.append(is_same)
        dist.append(1.0 - float(z[a].mean(axis=0) @ z[b].mean(axis=0)))
    return np.asarray(dist), np.asarray(same, dtype=bool)


def calibrate_threshold(x: np.ndarray, speaker: np.ndarray, clip: np.ndarray, start: np.ndarray,
                        source: np.ndarray, gender: np.ndarray, dim: int, rng: np.random.Generator, *,
                        folds: int = 2) -> dict[str, float] | None:
    """The stopping distance of average linkage in the projected space, from held-out *training* speakers.

    Speaker-grouped ``folds``-fold: an LDA fitted on the other folds, cluster pairs simulated on the held-out
    one (:func:`simulate_pairs`), then a logistic regression ``P(same) = sigmoid(a + b * distance)``; the
    threshold is its equal-odds point ``-a / b`` (merging stops where the calibrated odds fall below 1). No dev
    data is used. Returns ``{"cluster_threshold", "a", "b", "simulated_pair_eer", "eer_threshold",
    "simulated_pairs"}``, or None when the data cannot calibrate (smoke runs: too few speakers per source).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_curve

    speakers = np.unique(speaker)
    fold_of = dict(zip(speakers, rng.permutation(len(speakers)) % folds))
    fold = np.asarray([fold_of[s] for s in speaker])
    d_all, s_all = [], []
    for k in range(folds):
        train, test = fold != k, fold == k
        if len(np.unique(speaker[train])) < 3 or not test.any():
            continue
        mean, components = fit_lda(x[train], speaker[train], dim)
        d, same = simulate_pairs(_project(x[test], mean, components), speaker[test], clip[test], start[test],
                                 source[test], gender[test], rng)
        d_all.append(d)
        s_all.append(same)
    if not d_all:
        return None
    d, same = np.concatenate(d_all), np.concatenate(s_all)
    if same.all() or not same.any():
        return None
    lr = LogisticRegression(C=1e4, class_weight="balanced").fit(d[:, None], same)
    a, b = float(lr.intercept_[0]), float(lr.coef_[0, 0])
    if not b < 0 or not 0 < -a / b < 2:  # distance must lower the odds, and the point must be a distance
        return None
    fpr, tpr, thr = roc_curve(same, -d)
    i = int(np.argmin(np.abs(fpr - (1 - tpr))))
    return {"cluster_threshold": round(-a / b, 4), "a": round(a, 4), "b": round(b, 4),
            "simulated_pair_eer": round(float((fpr[i] + 1 - tpr[i]) / 2), 4),
            "eer_threshold": round(float(-thr[i]), 4), "simulated_pairs": int(len(d))}


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
    dim: int = 100,
    copies: int = 1,
    max_clips: int | None = None,
    extra_manifests: Sequence[Path] | None = None,
    progress: ProgressHook = silent_hook,
) -> dict[str, Any]:
    """Fit, measure and register the speaker projection (:class:`dramapic.analysis.diarization.SpeakerProjection`).

    Linear discriminant analysis with speakers as classes, on window embeddings (1.5 s every 0.75 s, exactly the
    pipeline's) of every train-split voice clip with a speaker id: each clip clean plus ``copies`` augmented copies
    (:func:`augment_clip`: music or noise underneath at 0-20 dB, telephone band, gain), so that emotions, beds and
    channels count as variation *within* a speaker. The stopping distance of the clustering is calibrated on
    held-out training speakers (:func:`calibrate_threshold`) and stored in the file as ``cluster_threshold`` (with
    ``calibration`` = (a, b)), which the pipeline's ``cluster_threshold: null`` takes.

    Parameters
    ----------
    manifest_csv : Path
        The data manifest; only ``split == "train"`` is fitted, ``dev`` is measured.
    extra_manifests : sequence of Path, optional
        More manifests of the same data root whose train speakers are fitted too. None: ``manifest_extra.csv``
        next to ``manifest_csv`` when it exists (:func:`manifests_with_extra`); ``[]``: ``manifest_csv`` only.
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
    from ..analysis.diarization import SpeakerProjection
    from ..analysis.embeddings import SpeakerEncoder, l2

    t0 = time.perf_counter()
    manifest_csv, out_dir = Path(manifest_csv), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = manifest_csv.parent
    manifests = manifests_with_extra(manifest_csv) if extra_manifests is None else \
        [manifest_csv, *[Path(m) for m in extra_manifests]]
    rows = [row for m in manifests for row in read_manifest(m)]
    rng = np.random.default_rng(seed)
    train, dev = _speaker_clips(rows, root, "train"), _speaker_clips(rows, root, "dev")
    if max_clips is not None:
        train = [train[i] for i in sorted(rng.choice(len(train), size=min(max_clips, len(train)), replace=False))]
        dev = dev[:max_clips]
    beds = [root / r["path"] for r in rows if r["split"] == "train" and r["label"] in ("song", "noise")]
    beds_dev = [root / r["path"] for r in rows if r["split"] == "dev" and r["label"] in ("song", "noise")]
    encoder = SpeakerEncoder()
    feats, owner, starts = [], [], []
    for b0 in range(0, len(train), _CLIPS_PER_BATCH):
        audios, owners = [], []
        for i, clip in enumerate(train[b0:b0 + _CLIPS_PER_BATCH], start=b0):
            speech = _load(clip.path)
            audios += [speech] + [augment_clip(speech, beds, rng)[0] for _ in range(copies)]
            owners += [i] * (1 + copies)  # a clip's clean and augmented copies are one clip for the calibration
        emb, region, start = _clip_windows(encoder, audios, with_starts=True)
        feats.append(emb)
        owner += [owners[r] for r in region]
        starts.append(start)
        progress("train", min(b0 + _CLIPS_PER_BATCH, len(train)), len(train))
    x, clip_of = np.concatenate(feats).astype(np.float64), np.asarray(owner, dtype=np.int64)
    y = np.asarray([train[i].speaker for i in clip_of])
    n_speakers = len(set(y.tolist()))
    if n_speakers < 3:
        raise ValueError(f"{manifest_csv}: a speaker projection needs train clips of at least 3 speakers")
    mean, components = fit_lda(x, y, dim)
    dim = components.shape[1]
    fit_s = time.perf_counter() - t0
    calibration = calibrate_threshold(
        x, y, clip_of, np.concatenate(starts), np.asarray([train[i].source for i in clip_of]),
        np.asarray([train[i].gender for i in clip_of]), dim, np.random.default_rng(seed))
    projection = SpeakerProjection(mean=mean, components=components, cluster_threshold=(
        calibration["cluster_threshold"] if calibration else None))
    if calibration is None:
        log.warning("speaker projection: too few speakers per source to calibrate the stopping distance; "
                    "the pipeline then needs speakers.cluster_threshold")
    calibrate_s = time.perf_counter() - t0 - fit_s

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
                "raw_resemblyzer": _verification(l2(emb), spk, np.random.default_rng(EVAL_SEED)),
                "projected": _verification(projection.transform(emb), spk, np.random.default_rng(EVAL_SEED)),
            },
            "dev_windows": int(len(emb)), "dev_speakers": len(set(spk)),
            "dev_conditions": "each dev clip clean and once over a random dev-split song/noise clip at 0-20 dB SNR",
        }
    path = out_dir / f"{PROJECTION_NAME}.npz"
    arrays = {"mean": mean, "components": components}
    if calibration is not None:
        arrays.update(cluster_threshold=np.float64(calibration["cluster_threshold"]),
                      calibration=np.asarray([calibration["a"], calibration["b"]], dtype=np.float64))
    save_npz(out_dir, path.name, arrays)
    entry = {
        "name": PROJECTION_NAME, "version": "2", "files": [{"path": path.name}], "labels": [],
        "kind": "speaker-projection", "stage": "speakers",
        "embedding": "resemblyzer VoiceEncoder 256-d windows, 1.5 s every 0.75 s (the pipeline's)",
        "model": f"LinearDiscriminantAnalysis (scikit-learn, svd solver), speakers as classes, {dim} components; "
                 f"transform = L2-normalise((x - mean) @ components)",
        "training_data": {
            "manifest_sha256": file_sha256(manifest_csv),
            "manifests": [{"path": m.name, "sha256": file_sha256(m)} for m in manifests],
            "split": "train", "n_clips": len(train),
            "n_speakers": n_speakers, "n_windows": int(len(x)), "sources": sorted({c.source for c in train}),
            "augmentation": f"per clip: clean + {copies} augmented copies (augment_clip: crop, train-split "
                            f"song/noise at 0-20 dB SNR, telephone band, gain)",
            **({"max_clips": max_clips} if max_clips is not None else {}),
        },
        "calibration": calibration or {},
        "metrics": metrics,
        "training_time_s": {"fit": round(fit_s, 1), "calibrate": round(calibrate_s, 1),
                            "total_with_eval": round(time.perf_counter() - t0, 1)},
        "library_versions": versions(), "seed": seed,
    }
    return register_model(out_dir, entry)
