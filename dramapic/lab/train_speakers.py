"""Training target: the speaker projection (``speaker-lda``), an LDA fitted by train-split speaker on resemblyzer
embeddings, in which diarization clusters."""

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



def _clip_windows(encoder, audios: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Window embeddings (1.5 s every 0.75 s, as the pipeline) of clips laid end to end; (emb, clip index)."""
    if not audios:
        return np.zeros((0, 256), np.float32), np.zeros(0, np.int64)
    bounds = np.concatenate([[0], np.cumsum([len(a) for a in audios])]) / SAMPLE_RATE
    _, emb, region = encoder.embed_regions(np.concatenate(audios), sample_rate=SAMPLE_RATE,
                                           regions=list(zip(bounds[:-1], bounds[1:])), window_s=1.5, hop_s=0.75)
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
    """Fit, measure and register the speaker projection (:class:`dramapic.analysis.diarization.SpeakerProjection`).

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

    from ..analysis.diarization import SpeakerProjection
    from ..analysis.embeddings import SpeakerEncoder, l2

    t0 = time.perf_counter()
    manifest_csv, out_dir = Path(manifest_csv), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = manifest_csv.parent
    rows = read_manifest(manifest_csv)
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
                "raw_resemblyzer": _verification(l2(emb), spk, np.random.default_rng(EVAL_SEED)),
                "projected": _verification(projection.transform(emb), spk, np.random.default_rng(EVAL_SEED)),
            },
            "dev_windows": int(len(emb)), "dev_speakers": len(set(spk)),
            "dev_conditions": "each dev clip clean and once over a random dev-split song/noise clip at 0-20 dB SNR",
        }
    path = out_dir / f"{PROJECTION_NAME}.npz"
    save_npz(out_dir, path.name, {"mean": lda.xbar_.astype(np.float64),
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
        "library_versions": versions(), "seed": seed,
    }
    return register_model(out_dir, entry)
