"""Training target: the speaker projection (``speaker-lda``), a regularised LDA fitted by train-split speaker on
resemblyzer embeddings, in which diarization clusters, with the clustering's stopping distance calibrated on
held-out training speakers and stored next to it (``cluster_threshold``, ``calibration``)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..models import file_sha256, register_model
from ..progress import ProgressHook, silent_hook
from .data import EVAL_SEED, NotEnoughData, save_npz, smoke_hint, versions
from .voice_windows import SHIPPED_COPIES, SPEAKER_ROOMS, build_window_table, train_rows, voice_manifests

log = logging.getLogger(__name__)

PROJECTION_NAME = "speaker-lda"



CALIBRATION_REPEATS = 5
"""Speaker fold splits whose simulated pairs the shipped calibration pools: one split (as until 2026-12) moved the
P(same) = 0.45 distance by 0.014 between seeds on the same table, five by 0.002 (issue14_bagged_fits/RESULTS.md)."""

SET_SIZES = (2, 4, 8, 16)
"""Windows per side of a simulated cluster pair (1.5-12 s of talk at a 0.75 s hop): the clusters average linkage
compares near its stopping point."""


PROJECTION_SHRINKAGE = 0.9
"""Shrinkage of the within-speaker covariance of the LDA towards a multiple of the identity (regularised LDA,
Friedman 1989; scikit-learn's ``shrinkage``). Plain LDA whitens every within-speaker direction of the training
corpora, including ones that belong to those corpora alone; on a source it never saw, that whitening scattered
the speakers again: simulated cluster pairs of a held-out source's dev speakers gave an equal error rate of 0.101
(mean of the five sources) against 0.078 at 0.9, lower on every source, and the cross-corpus protocol chose it
with ``cluster_same_probability`` 0.25. Its cost: the acted emotions of one actor, which plain LDA whitened away,
split more often (Emo-DB; ``dramapic/lab/experiments/issue14_projection_shrinkage/RESULTS.md``)."""


def fit_lda(x: np.ndarray, speakers: np.ndarray, dim: int, *, shrinkage: float | None = PROJECTION_SHRINKAGE
            ) -> tuple[np.ndarray, np.ndarray]:
    """LDA with speakers as classes (scikit-learn): ``(mean (256,), components (256, d))``.

    ``shrinkage`` None is plain LDA (svd solver), centred on the training mean (the projection until 2026-12-03).
    With a shrinkage in (0, 1] the eigen solver fits the regularised LDA and the returned mean is zero: the
    windows are projected uncentred, so the training mean's image stays in every projected vector and a window
    close to that mean (little speaker information: a short or masked stretch) stays close to the others instead
    of being blown up to a full unit direction by the length normalisation; centred, the same shrinkage lost most
    of its gain (equal error rate 0.098 against 0.078, same RESULTS.md).
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    dim = min(dim, len(np.unique(speakers)) - 1, x.shape[1])
    if shrinkage is None:
        lda = LinearDiscriminantAnalysis(solver="svd", n_components=dim).fit(x, speakers)
        return lda.xbar_.astype(np.float64), lda.scalings_[:, :dim].astype(np.float64)
    if not 0.0 < shrinkage <= 1.0:
        raise ValueError(f"shrinkage must lie in (0, 1], got {shrinkage}")
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=shrinkage).fit(x, speakers)
    return np.zeros(x.shape[1], np.float64), lda.scalings_[:, :dim].astype(np.float64)


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
                        folds: int = 2, repeats: int = 1, shrinkage: float | None = PROJECTION_SHRINKAGE
                        ) -> dict[str, float] | None:
    """The stopping distance of average linkage in the projected space, from held-out *training* speakers.

    Speaker-grouped ``folds``-fold: an LDA (:func:`fit_lda` with ``shrinkage``) fitted on the other folds,
    cluster pairs simulated on the held-out one (:func:`simulate_pairs`), then a logistic regression
    ``P(same) = sigmoid(a + b * distance)``; the threshold is its equal-odds point ``-a / b`` (merging stops where
    the calibrated odds fall below 1). With ``repeats`` > 1 the speakers are split ``repeats`` times (each split
    its own LDAs and pairs) and every pair is pooled into the one regression: the split is a draw, and averaging
    over draws steadies ``(a, b)``. No dev data is used. Returns ``{"cluster_threshold", "a", "b",
    "simulated_pair_eer", "eer_threshold", "simulated_pairs", "fold_splits"}``, or None when the data cannot
    calibrate (smoke runs: too few speakers per source).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_curve

    speakers = np.unique(speaker)
    d_all, s_all = [], []
    for _ in range(repeats):
        fold_of = dict(zip(speakers, rng.permutation(len(speakers)) % folds))
        fold = np.asarray([fold_of[s] for s in speaker])
        for k in range(folds):
            train, test = fold != k, fold == k
            if len(np.unique(speaker[train])) < 3 or not test.any():
                continue
            mean, components = fit_lda(x[train], speaker[train], dim, shrinkage=shrinkage)
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
            "eer_threshold": round(float(-thr[i]), 4), "simulated_pairs": int(len(d)), "fold_splits": repeats}


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


def projection_rows(table: Mapping[str, np.ndarray], *, excluded: frozenset[str] = frozenset(),
                    clean_repeats: int = 1) -> np.ndarray:
    """Window indices :func:`fit_projection` fits on: :func:`~dramapic.lab.voice_windows.train_rows` outside
    ``excluded``, then the clean ones ``clean_repeats - 1`` more times (see :func:`fit_projection`), shape (n,)."""
    rows = train_rows(table, excluded=excluded)
    if clean_repeats > 1:
        clean = rows[table["condition"][rows] == "clean"]
        rows = np.concatenate([rows] + [clean] * (clean_repeats - 1))
    return rows


def fit_projection(table: Mapping[str, np.ndarray], *, excluded: frozenset[str] = frozenset(), dim: int = 100,
                   seed: int = 0, repeats: int = CALIBRATION_REPEATS, clean_repeats: int = 1,
                   shrinkage: float | None = PROJECTION_SHRINKAGE):
    """Regularised LDA and calibrated stopping distance from the train windows of a voice window table.

    Parameters
    ----------
    table : mapping of str to np.ndarray
        :func:`~dramapic.lab.voice_windows.build_window_table`'s table; its train windows with a speaker id outside
        ``excluded`` are fitted (a clip's clean and augmented windows count as one clip for the calibration).
    excluded : frozenset of str
        Sources left out entirely (the cross-corpus protocol's held-out ones).
    dim : int
        Output dimensions (at most the number of speakers - 1).
    seed : int
        Seeds the calibration's folds and simulated pairs.
    repeats : int
        Fold splits whose simulated pairs the calibration pools (:func:`calibrate_threshold`).
    clean_repeats : int
        Each clean train window counts this many times (below 2: once; the LDA takes no sample weights, so its rows are
        repeated): with ``copies`` augmented copies per clip in the table, ``clean_repeats = copies`` keeps clean
        and augmented speech at equal weight. Joining the augmented windows of two tables with the clean ones
        counted twice lowered DER both across corpora and on the dev mixes, where two copies at their plain
        weight lost the dev mixes (``dramapic/lab/experiments/issue14_bagged_fits/RESULTS.md``).
    shrinkage : float or None
        :func:`fit_lda`'s, for the projection and its calibration alike (None: plain LDA, as until 2026-12-03).

    Returns
    -------
    projection : SpeakerProjection
        With ``cluster_threshold`` when the data could calibrate it.
    calibration : dict or None
        :func:`calibrate_threshold`'s figures.
    n_windows, n_speakers : int

    Raises
    ------
    NotEnoughData
        (a ValueError) Fewer than 3 speakers to fit.
    """
    from ..analysis.diarization import SpeakerProjection

    rows = projection_rows(table, excluded=excluded, clean_repeats=clean_repeats)
    x = table["emb"][rows].astype(np.float64)
    speaker = table["speaker"][rows]
    n_speakers = len(np.unique(speaker))
    if n_speakers < 3:
        raise NotEnoughData("a speaker projection needs train clips of at least 3 speakers")
    mean, components = fit_lda(x, speaker, dim, shrinkage=shrinkage)
    calibration = calibrate_threshold(x, speaker, table["clip"][rows].astype(np.int64),
                                      table["t0"][rows].astype(np.float64), table["source"][rows],
                                      table["gender"][rows], components.shape[1], np.random.default_rng(seed),
                                      repeats=repeats, shrinkage=shrinkage)
    projection = SpeakerProjection(
        mean=mean, components=components, cluster_threshold=calibration["cluster_threshold"] if calibration else None,
        calibration=np.asarray([calibration["a"], calibration["b"]]) if calibration else None)
    return projection, calibration, len(np.unique(rows)), n_speakers


def train_speaker_projection(
    manifest_csv: Path,
    *,
    out_dir: Path,
    seed: int = 0,
    dim: int = 100,
    copies: int = SHIPPED_COPIES,
    max_clips: int | None = None,
    table: Mapping[str, np.ndarray] | None = None,
    cache: Path | None = None,
    progress: ProgressHook = silent_hook,
) -> dict[str, Any]:
    """Fit, measure and register the speaker projection (:class:`dramapic.analysis.diarization.SpeakerProjection`).

    Linear discriminant analysis with speakers as classes (:func:`fit_projection`), on the train windows of the
    voice window table (:mod:`~dramapic.lab.voice_windows`: 1.5 s every 0.75 s, exactly the pipeline's, of every
    train-split voice clip with a speaker id in ``manifest.csv`` and ``manifest_extra.csv``, each clean plus
    ``copies`` augmented copies: music or noise underneath at 0-20 dB, telephone band, gain, near room), so that
    emotions, beds and channels count as variation *within* a speaker. The stopping distance of the clustering
    is calibrated on held-out training speakers (:func:`calibrate_threshold`) and stored in the file as
    ``cluster_threshold`` (with ``calibration`` = (a, b)), which the pipeline's ``cluster_threshold: null`` takes.
    Measured on the table's dev windows (speakers never fitted).

    Parameters
    ----------
    manifest_csv : Path
        The data manifest; only ``split == "train"`` is fitted, ``dev`` is measured.
    out_dir : Path
        Where ``speaker-lda.npz`` is written and registered in ``manifest.json``.
    seed : int
        Seeds the augmentation (through the table) and the calibration.
    dim : int
        Output dimensions (at most the number of speakers - 1).
    copies : int
        Augmented copies per clip in the table; the LDA counts every clean window ``copies`` times, so clean and
        augmented speech weigh alike (:func:`fit_projection`'s ``clean_repeats``).
    max_clips : int, optional
        Smoke runs: at most this many clips per split.
    table : mapping, optional
        A voice window table already built with the projection's rooms (``rooms=SPEAKER_ROOMS``); else built
        here.
    cache : Path, optional
        Folder where the table is kept between runs.
    progress : ProgressHook
        Called as ``progress("embed", clips_done, clips_total)`` while the table is built.

    Returns
    -------
    dict
        The registered manifest entry.

    Raises
    ------
    InputError
        A missing manifest, or train clips of too few speakers to fit the projection.
    """
    from ..analysis.embeddings import l2

    t0 = time.perf_counter()
    manifest_csv, out_dir = Path(manifest_csv), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if table is None:
        table = build_window_table(manifest_csv=manifest_csv, seed=seed, max_clips=max_clips, copies=copies,
                                   rooms=SPEAKER_ROOMS, cache=cache, progress=progress)
    embed_s = time.perf_counter() - t0
    try:
        projection, calibration, n_windows, n_speakers = fit_projection(table, dim=dim, seed=seed,
                                                                        clean_repeats=copies)
    except NotEnoughData as err:  # too few speakers in the data (or in a smoke run's clips)
        smoke = smoke_hint(max_clips)
        raise NotEnoughData(f"{manifest_csv}: {err}{smoke}") from None
    if calibration is None:
        log.warning("speaker projection: too few speakers per source to calibrate the stopping distance; "
                    "the pipeline then needs speakers.cluster_threshold")
    fit_s = time.perf_counter() - t0 - embed_s
    dim = projection.dim

    metrics: dict[str, Any] = {}
    dev = np.flatnonzero((table["split"] == "dev") & (table["speaker"] != "")
                         & (np.linalg.norm(table["emb"], axis=1) > 0))
    if len(np.unique(table["speaker"][dev])) >= 2:
        emb, spk = table["emb"][dev], table["speaker"][dev]
        metrics = {
            "dev_window_verification": {
                "raw_resemblyzer": _verification(l2(emb), spk, np.random.default_rng(EVAL_SEED)),
                "projected": _verification(projection.transform(emb), spk, np.random.default_rng(EVAL_SEED)),
            },
            "dev_windows": int(len(dev)), "dev_speakers": int(len(np.unique(spk))),
            "dev_conditions": "the table's dev windows: each dev clip clean and augmented (dev-split beds)",
        }
    manifests = voice_manifests(manifest_csv)
    path = out_dir / f"{PROJECTION_NAME}.npz"
    save_npz(out_dir, path.name, projection.to_arrays())
    fitted = train_rows(table)
    entry = {
        "name": PROJECTION_NAME, "version": "3", "files": [{"path": path.name}], "labels": [],
        "kind": "speaker-projection", "stage": "speakers",
        "embedding": "resemblyzer VoiceEncoder 256-d windows, 1.5 s every 0.75 s (the pipeline's)",
        "model": f"regularised LinearDiscriminantAnalysis (scikit-learn, eigen solver, within-speaker covariance "
                 f"shrinkage {PROJECTION_SHRINKAGE}), speakers as classes, {dim} components; transform = "
                 f"L2-normalise((x - mean) @ components) with mean = 0 (uncentred)",
        "training_data": {
            "manifest_sha256": file_sha256(manifest_csv),
            "manifests": [{"path": m.name, "sha256": file_sha256(m)} for m in manifests],
            "split": "train", "n_clips": int(len(np.unique(table["clip"][fitted]))),
            "n_speakers": n_speakers, "n_windows": n_windows,
            "sources": sorted(set(table["source"][fitted].tolist())),
            "augmentation": f"per clip: clean + {copies} augmented copies (augment_clip: crop, train-split "
                            f"song/noise at 0-20 dB SNR, telephone band, gain; {SPEAKER_ROOMS.describe()})"
                            + (f"; clean windows counted {copies} times in the fit" if copies > 1 else ""),
            "gender_f0_flags": "all flagged speakers kept (the projection needs speaker identity only)",
            **({"max_clips": max_clips} if max_clips is not None else {}),
        },
        "calibration": {"what": "stopping distance of average linkage: logistic regression of same-speaker on the "
                                "distance 1 - <mean_a, mean_b> of simulated cluster pairs (2-16 windows a side) of "
                                "held-out train speakers (2 speaker-grouped folds, LDA fitted on the other fold, "
                                "pairs of fold_splits splits pooled; different-speaker pairs from the same source, "
                                "half of them the same gender; sources drawn uniformly); cluster_threshold = "
                                "equal-odds point -a/b", **calibration} if calibration else {},
        "metrics": metrics,
        "training_time_s": {"embed": round(embed_s, 1), "fit_and_calibrate": round(fit_s, 1),
                            "total_with_eval": round(time.perf_counter() - t0, 1)},
        "library_versions": versions(), "seed": seed,
    }
    return register_model(out_dir, entry)
