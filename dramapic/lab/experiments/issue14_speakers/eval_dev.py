"""Score clustering variants on the cached dev mixes (and the looped sample).

Usage: PYTHONPATH=/work/base:/work/exp14d python eval_dev.py [--projection NPZ] [--variants NAME ...]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dramapic.evaluate import aggregate  # noqa: E402
from dramapic.speakers import SpeakerProjection  # noqa: E402

from diarization import ClusterOptions, DiarizationOptions  # noqa: E402
from rescore_lib import load_cache, run_cached, score_file  # noqa: E402

MIXES = Path("/work/shared/data/dev_mixes")
CACHE = HERE / "cache" / "mixes"


def load_projection(path: Path | None):
    if path is None:
        path = Path("/work/base/models/speaker-lda.npz")
    with np.load(path) as d:
        proj = SpeakerProjection(mean=d["mean"], components=d["components"])
        meta = {k: d[k] for k in d.files if k not in ("mean", "components")}
    return proj, meta


VARIANTS = {
    "baseline": ClusterOptions(method="ahc"),
    "constrained": ClusterOptions(method="constrained", min_speaker_share=0.0),
    "constrained_noCL": ClusterOptions(method="constrained", gender_cannot_link=False, min_speaker_share=0.0),
    "constrained_share15": ClusterOptions(method="constrained", min_speaker_share=0.15),
    "constrained_share15_3s": ClusterOptions(method="constrained", min_speaker_share=0.15, min_speaker_s=3.0),
    "nme": ClusterOptions(method="nme", min_speaker_share=0.0),
    "constrained_share10": ClusterOptions(method="constrained", min_speaker_share=0.10),
    "constrained_share20": ClusterOptions(method="constrained", min_speaker_share=0.20),
    "constrained_share15_noCL": ClusterOptions(method="constrained", min_speaker_share=0.15,
                                               gender_cannot_link=False),
    "constrained_share15_gc95": ClusterOptions(method="constrained", min_speaker_share=0.15,
                                               gender_confidence=0.95),
    "nme_share15": ClusterOptions(method="nme", min_speaker_share=0.15),
}


def variant(name: str, threshold: float | None = None) -> ClusterOptions:
    """``NAME`` or ``NAME@THRESHOLD``."""
    import dataclasses

    base, _, thr = name.partition("@")
    opt = VARIANTS[base]
    thr = float(thr) if thr and thr != "calib" else threshold
    return dataclasses.replace(opt, cluster_threshold=thr) if thr is not None else opt


def evaluate(options: DiarizationOptions, projection, names=None):
    files = sorted(MIXES.glob("devmix_*.labels.csv"))
    scores = []
    for f in files:
        name = f.name.split(".")[0]
        if names and name not in names:
            continue
        s, _ = score_file(CACHE, name, f, options=options, projection=projection)
        scores.append(s)
    rep = aggregate(scores)
    exact = sum(s.speakers_pred == s.speakers_ref for s in scores)
    over = sum(s.speakers_pred > s.speakers_ref for s in scores)
    under = sum(s.speakers_pred < s.speakers_ref for s in scores)
    return rep.der, exact, over, under, len(scores), scores


def sample_counts(options: DiarizationOptions, projection):
    out = {}
    for tag in ("x1", "x4"):
        c = load_cache(CACHE / f"drama_sample_{tag}.npz")
        lab = run_cached(c, options=options, projection=projection)
        out[tag] = len(lab.speakers)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--projection", type=Path)
    ap.add_argument("--variants", nargs="*")
    args = ap.parse_args()
    proj, meta = load_projection(args.projection)
    for name in args.variants or VARIANTS:
        thr = float(meta["cluster_threshold"]) if name.endswith("@calib") else None
        opt = DiarizationOptions(cluster=variant(name, thr))
        der, exact, over, under, n, scores = evaluate(opt, proj)
        samp = sample_counts(opt, proj) if (CACHE / "drama_sample_x4.npz").exists() else {}
        print(f"{name:24s} DER {der:.3f}  exact {exact}/{n}  over {over} under {under}  sample {samp}  "
              f"per-file {[s.speakers_pred for s in scores]}", flush=True)


if __name__ == "__main__":
    main()
