"""Training target: the stage-2 gender model (``gender-resemblyzer-pitch-lr``, format 2), and the gender-stacking
measurement.

The model is fitted by :func:`dramapic.lab.gender_fit.fit_gender` on the train windows of the voice window table
(:mod:`dramapic.lab.voice_windows`: every train-split voice clip of ``manifest.csv`` and ``manifest_extra.csv`` with
a gender, clean and augmented, embedded window by window exactly as stage 2 embeds a recording, with the pitch
features of the same samples). The same table trains the speaker projection, so ``dramapic train`` embeds once.
The dev windows of the table measure it (per source; window error, calibration, group decisions with abstention);
the cross-corpus figures that chose its settings come from ``dramapic eval --cross-corpus``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..models import file_sha256, register_model
from ..progress import ProgressHook, silent_hook
from ..result import GENDERS, SAMPLE_RATE
from .data import _SNR_DB, DATA_COLUMNS, EVAL_SEED, NotEnoughData, _load, _load_piece, _subset, _voice_clips, \
    augment_clip, mix_at_snr, read_manifest, smoke_hint, versions
from .gender_fit import GenderTraining, fit_gender
from .voice_windows import FLAGS_FILE, GENDER_ROOMS, SHIPPED_COPIES, build_window_table, voice_manifests

log = logging.getLogger(__name__)

MODEL_NAME = "gender-resemblyzer-pitch-lr"
MODEL_FILE = f"{MODEL_NAME}.npz"
ECE_BINS = 10


def expected_calibration_error(p_male: np.ndarray, y_male: np.ndarray, *, bins: int = ECE_BINS) -> float:
    """Expected calibration error of predicted male probabilities, shape (n,), against 0/1 truth, shape (n,):
    the mean over equal-width confidence bins of |accuracy - confidence|, weighted by the bin's share."""
    p, y = np.asarray(p_male, np.float64), np.asarray(y_male)
    if not len(p):
        return float("nan")
    confidence = np.maximum(p, 1 - p)
    correct = (p >= 0.5) == (y == 1)
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    err = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            err += m.mean() * abs(correct[m].mean() - confidence[m].mean())
    return float(err)


def dev_metrics(model, table: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The model on the table's dev windows (speakers never fitted): per source and condition, window error at
    0.5, expected calibration error of the window probabilities, and the clip-level decision's error and
    abstention (:meth:`GenderClassifier.decide` on each clip's windows, as a one-turn speaker)."""
    dev = np.flatnonzero((table["split"] == "dev") & np.isin(table["gender"], GENDERS)
                         & (np.linalg.norm(table["emb"], axis=1) > 0))
    out: dict[str, Any] = {}
    if not len(dev):
        return out
    z = model.male_logit(table["emb"][dev], table["pitch"][dev] if model.n_pitch else None)
    p = model.predict_proba(table["emb"][dev], table["pitch"][dev] if model.n_pitch else None)[:, 1]
    y = (table["gender"][dev] == "male").astype(int)
    for source in [*sorted(set(table["source"][dev])), "all"]:
        for condition in ("clean", "aug"):
            m = (table["condition"][dev] == condition) & ((table["source"][dev] == source) | (source == "all"))
            if not m.any():
                continue
            clips = table["clip"][dev][m]
            decided = wrong = abstained = 0
            for c in np.unique(clips):
                rows = clips == c
                d = model.decide(z[m][rows])
                truth = "male" if y[m][rows][0] else "female"
                abstained += d.gender is None
                decided += d.gender is not None
                wrong += d.gender is not None and d.gender != truth
            out.setdefault(source, {})[condition] = {
                "windows": int(m.sum()), "window_error": round(float(np.mean((p[m] >= 0.5) != y[m])), 4),
                "window_ece": round(expected_calibration_error(p[m], y[m]), 4),
                "clips": int(len(np.unique(clips))), "clip_error": round(wrong / decided, 4) if decided else None,
                "clip_abstention": round(abstained / (decided + abstained), 4),
                "speakers": int(len(np.unique(table["speaker"][dev][m])))}
    return out


def train_gender(
    manifest_csv: Path,
    *,
    out_dir: Path,
    seed: int = 0,
    augment: bool = True,
    max_clips: int | None = None,
    copies: int = SHIPPED_COPIES,
    table: Mapping[str, np.ndarray] | None = None,
    cache: Path | None = None,
    settings: GenderTraining | None = None,
    progress: ProgressHook = silent_hook,
) -> dict[str, Any]:
    """Train, measure and register the gender model (format 2).

    Parameters
    ----------
    manifest_csv : Path
        The data manifest; ``manifest_extra.csv`` beside it is used too. Only ``split == "train"`` is fitted.
    out_dir : Path
        Where ``gender-resemblyzer-pitch-lr.npz`` is written and ``manifest.json`` is created or updated.
    seed : int
        Seeds the augmentation (through the table) and the window subsample (none with the shipped settings).
    augment : bool
        Fit the augmented windows too (false: clean windows only; measured worse across corpora).
    max_clips : int, optional
        Smoke runs: at most this many clips per split.
    copies : int
        Augmented copies per clip in the table.
    table : mapping, optional
        A voice window table already built with the gender model's rooms
        (:func:`~dramapic.lab.voice_windows.build_window_table` with ``rooms=GENDER_ROOMS``); else built.
    cache : Path, optional
        Folder where the table is kept between runs.
    settings : GenderTraining, optional
        Fit settings (default: the shipped ones, with ``seed``).
    progress : ProgressHook
        Called as ``progress("embed", clips_done, clips_total)`` while the table is built.

    Returns
    -------
    dict
        The manifest entry as registered (with file checksums), including ``metrics``.

    Raises
    ------
    InputError
        A missing manifest, or train windows that do not hold both genders.
    """
    t0 = time.perf_counter()
    manifest_csv, out_dir = Path(manifest_csv), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if table is None:
        table = build_window_table(manifest_csv=manifest_csv, seed=seed, max_clips=max_clips, copies=copies,
                                   rooms=GENDER_ROOMS, cache=cache, progress=progress)
    embed_s = time.perf_counter() - t0
    settings = settings or GenderTraining(seed=seed)
    if not augment:
        settings = dataclasses.replace(settings, conditions=("clean",))
    try:
        model = fit_gender(table, settings=settings)
    except NotEnoughData as err:  # the data, not the code: say which manifest (and that a smoke run took too few)
        smoke = smoke_hint(max_clips)
        raise NotEnoughData(f"{manifest_csv}: {err}{smoke}") from None
    fit_s = time.perf_counter() - t0 - embed_s
    path = out_dir / MODEL_FILE
    model.to_npz(path)
    metrics = dev_metrics(model, table)
    info = model.model_info or {}
    manifests = voice_manifests(manifest_csv)
    flags = manifest_csv.parent / FLAGS_FILE
    fitted = (table["split"] == "train") & np.isin(table["gender"], GENDERS)
    entry = {
        "name": MODEL_NAME, "version": "2", "files": [{"path": MODEL_FILE}], "labels": list(GENDERS),
        "kind": "stage2-gender", "format_version": 2,
        "embedding": "resemblyzer VoiceEncoder 256-d; 1.5 s windows, 0.75 s hop, windows quieter than -30 dBFS "
                     "raised to it (mel power, increase only) - the windows stage 2 embeds",
        "pitch": "dramapic.analysis.pitch.window_pitch_features of the same window: numpy YIN at 8 kHz, 20 ms hop, "
                 "60-400 Hz; voiced_frac, log2(f0/100 Hz) q10/q50/q90 over voiced frames, median dip, no_pitch",
        "classifier": f"StandardScaler + LogisticRegression(C={settings.C:g}) on [embedding (256)"
                      f"{', pitch (6)' if settings.use_pitch else ''}], window level; sample weights: every "
                      f"speaker equal, both genders equal within a source, a source's total weight ~ its speakers "
                      f"** {settings.source_power:g}",
        "calibration": {
            "method": ("fitted out of fold by source (each training source predicted by a fit without it): "
                       "Platt scaling of windows; decisions "
                       + ("size-aware (slope grows with log2 of the group's windows)" if settings.size_aware
                          else "Platt scaling of clip means")) if settings.calibrate else "none",
            "window": list(model.window_calibration), "decision": list(model.decision_calibration),
            "decision_size_slope": model.decision_size_slope, "decision_size_max": model.decision_size_max,
            "decision_input": "mean of the group's window logits, each clipped to +-logit_clip; for a group of m "
                              "windows p_male = sigmoid((a + decision_size_slope * log2(min(m, decision_size_max)))"
                              " * mean + b)"
                              + (f", fitted on held-out speakers' groups of 1-{model.decision_size_max:g} windows"
                                 if settings.size_aware else ", fitted on held-out clips"),
            "logit_clip": settings.logit_clip},
        "decision_policy": {
            "abstain_below": settings.abstain_below, "agree_min": settings.agree_min,
            "override_p": settings.override_p,
            "rule": "speaker-level decision when its calibrated confidence >= abstain_below and >= agree_min of "
                    "its windows lie on the decided side (a turn whose own windows give the other gender >= "
                    "override_p keeps its own); else per turn; below abstain_below gender null (unknown)",
            "chosen_by": "lowest mean cross-corpus gender error with abstention <= 5 % (dramapic eval "
                         "--cross-corpus; models/README.md)"},
        "training_data": {
            "manifests": [{"path": m.name, "sha256": file_sha256(m)} for m in manifests],
            "manifest_sha256": file_sha256(manifest_csv), "split": "train",
            "sources": info.get("sources", []), "n_windows": info.get("n_windows"),
            "n_speakers": info.get("n_speakers"),
            "n_clips": int(len(np.unique(table["clip"][fitted]))),
            "conditions": f"per clip: clean + {copies} augmented copies (crop, song/noise bed at 0-20 dB SNR, "
                          f"telephone band, gain, {GENDER_ROOMS.describe()}); fitted: {', '.join(settings.conditions)}; "
                          + ("every window (speaker-weighted)" if settings.max_windows is None else
                             f"at most {settings.max_windows} windows per speaker and condition (seeded)"),
            "flagged_speakers": {
                **({"file": str(FLAGS_FILE), "sha256": file_sha256(flags)} if flags.is_file() else {}),
                "choice": f"strong flags (stated gender contradicts a clearly voiced f0: more likely a label "
                          f"error) at weight {settings.strong_weight:g}, weak flags at weight "
                          f"{settings.flag_weight:g}",
                # the shipped weights were chosen by this measurement (model card, "Stage 2 — gender", "Flagged speakers")
                **({"measured": "variants table (threshold 0.5, no abstention, held-out mean gender error): keep "
                                "all 5.5 %, this choice 5.4 %, drop all 85 5.3 % (no measurable effect)"}
                   if (settings.strong_weight, settings.flag_weight) == (0.0, 1.0) else {})},
            **({"max_clips": max_clips} if max_clips is not None else {}),
        },
        "settings": dataclasses.asdict(settings),
        "metrics": {"dev_windows": metrics,
                    "note": "dev speakers of every source (never fitted); the cross-corpus figures (fit without a "
                            "source, score on timelines of its dev speakers) come from dramapic eval "
                            "--cross-corpus and are in models/README.md"},
        "training_time_s": {"embed": round(embed_s, 1), "fit": round(fit_s, 1),
                            "total_with_eval": round(time.perf_counter() - t0, 1),
                            **({"note": "window table built beside the speaker projection's (one embedding pass; "
                                         "the clean windows shared)"} if embed_s < 1 else {})},
        "library_versions": versions(), "seed": seed,
    }
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

    Raises
    ------
    InputError
        The manifest is missing or lacks a column; NotEnoughData (an InputError) when the clips (``max_clips`` of
        each split) cannot fit both members out of fold or leave nothing to measure.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from ..analysis.features import window_features
    from ..analysis.embeddings import SpeakerEncoder

    manifest_csv = Path(manifest_csv)
    root = manifest_csv.parent
    rows = read_manifest(manifest_csv, columns=DATA_COLUMNS)
    rng = np.random.default_rng(seed)
    train = _subset(_voice_clips(rows, root, "train"), max_clips, rng)
    dev = _subset(_voice_clips(rows, root, "dev"), max_clips, np.random.default_rng(EVAL_SEED))
    beds_train = [root / r["path"] for r in rows if r["split"] == "train" and r["label"] in ("song", "noise")]
    beds_dev = [root / r["path"] for r in rows if r["split"] == "dev" and r["label"] in ("song", "noise")]
    smoke = smoke_hint(max_clips)
    if not dev or not beds_dev or len({c.gender for c in train}) < 2:
        raise NotEnoughData(f"{manifest_csv}: the experiment needs train voice clips of both genders, dev voice "
                            f"clips and dev music or noise{smoke}")
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
    if any(len(np.unique(y[fold != k])) < 2 for k in (0, 1)):  # each out-of-fold fit needs both genders
        raise NotEnoughData(f"{manifest_csv}: either half of the train speakers must leave both genders to fit the "
                            f"members out of fold on{smoke}")

    def fit_lr(mask):
        scaler = StandardScaler().fit(emb[mask])
        return scaler, LogisticRegression(C=0.03, max_iter=5000).fit(scaler.transform(emb[mask]), y[mask])

    def fit_rf(mask, k):
        # within scikit-learn's 0 .. 2**32 - 1 for every --seed dramapic train takes (the same states below 429496730)
        return RandomForestClassifier(n_estimators=n_trees, max_leaf_nodes=512, min_samples_leaf=2, n_jobs=2,
                                      random_state=(seed * 10 + k) % 2**32).fit(seed_x[mask], y[mask])

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
