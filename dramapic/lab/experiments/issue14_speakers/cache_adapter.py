"""Read helper G's caches (``/work/exp14/cache``) into this folder's formats.

* ``clip_windows.npz`` (cache_clips.py --merge): window embeddings of every voice clip, clean + augmented.
* ``timelines/<folder>/<name>.npz`` (cache_timelines.py): stage-1 voice segments, first-pass windows and the
  dense 0.25 s refinement grid of every cross-corpus timeline.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GENDER_NPZ = Path("/work/base/models/gender-resemblyzer-lr.npz")
_gender = None


def _p_female(emb: np.ndarray) -> np.ndarray:
    """The shipped gender LR's female probability per window (the interface G's better model will fill)."""
    global _gender
    if _gender is None:
        from dramapic.speakers import GenderClassifier

        _gender = GenderClassifier.from_npz(GENDER_NPZ)
    return _gender.predict_proba(emb)[:, 0] if len(emb) else np.zeros(0)


def load_train_windows(cache: Path) -> dict[str, np.ndarray]:
    """emb (n, 256); speaker, source, split, gender, manifest (n,) str; clip (n,) int; aug (n,) bool;
    t0 (n,) window start in its clip (s).

    Reads G's checkpoint parts (``clips_shard*_part*.npz``) when present, so that a fit can start before the
    merge; the clip table comes from ``clip_windows.npz``."""
    cache = Path(cache)
    with np.load(cache / "clip_windows.npz") as d:
        table = {k: d[k] for k in ("clip_path", "clip_speaker", "clip_source", "clip_gender", "clip_split")}
        merged = {k: d[k] for k in ("emb", "clip", "condition", "t0")}
    parts = sorted(cache.glob("clips_shard*_part*.npz"))
    if parts:
        data = [np.load(p) for p in parts]
        emb = np.concatenate([x["emb"] for x in data])
        clip = np.concatenate([x["clip"] for x in data]).astype(np.int64)
        aug = np.concatenate([x["cond"] for x in data]) == 1
        t0 = np.concatenate([x["t0"] for x in data]).astype(np.float64)
    else:
        emb, clip = merged["emb"], merged["clip"].astype(np.int64)
        aug, t0 = merged["condition"] == "aug", merged["t0"].astype(np.float64)
    out = {"emb": emb, "clip": clip, "aug": aug, "t0": t0, "speaker": table["clip_speaker"][clip],
           "source": table["clip_source"][clip], "gender": table["clip_gender"][clip],
           "split": table["clip_split"][clip]}
    paths = table["clip_path"][clip]
    out["manifest"] = np.where(np.char.startswith(paths.astype(str), "extra/"), "manifest_extra.csv",
                               "manifest.csv")
    keep = (np.linalg.norm(emb, axis=1) > 0) & (out["speaker"] != "")
    return {k: v[keep] for k, v in out.items()}


def load_timeline(npz: Path, *, p_female_fn=None) -> dict[str, np.ndarray]:
    """A timeline in rescore_lib's cache format (keys ``segments``, ``w75_*``, ``w25_*``)."""
    fn = p_female_fn or _p_female
    with np.load(npz) as d:
        c = {"segments": d["seg"].reshape(-1, 2),
             "w75_times": d["times"].reshape(-1, 2), "w75_emb": d["emb"], "w75_region": d["region"],
             "w25_times": d["dense_times"].reshape(-1, 2), "w25_emb": d["dense_emb"],
             "w25_region": d["dense_region"]}
    c["w75_pf"] = fn(c["w75_emb"])
    c["w25_pf"] = fn(c["w25_emb"])
    return c


def load_result(npz: Path) -> dict:
    return json.loads(npz.with_name(npz.name[:-len(".npz")] + ".result.json").read_text())
