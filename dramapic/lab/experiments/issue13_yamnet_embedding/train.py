"""Stage 1 with a member on YAMNet's 1,024-d embeddings (issue 13: keep what the pretrained model knows).

Trains the shipped four members (same code and seed; on another CPU their files differ from the shipped ones in
float rounding, so their sha256 do too) plus ``stage1-yamnet-embedding-lr``
with the product's own trainer (``dramapic.lab.train_stage1.train_stage1``) into OUT, and two stackers:

* ``stage1-stacker-lr-v3``: the four shipped members + the embedding member (what ``train_stage1`` writes);
* ``stage1-stacker-lr-emb``: the embedding member in place of ``stage1-yamnet-lr``, fitted on the same
  out-of-fold probabilities.

It also scores the embedding member alone for several C on the two training folds (out-of-fold, training data
only) and keeps the out-of-fold probabilities in OUT/oof.npz for stacker checks.

    python train.py ../shared/data/manifest.csv OUT [C,C,...]
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from dramapic.analysis.stage1 import stack_features
from dramapic.lab import train_stage1 as T

EMB = ("stage1-yamnet-embedding-lr", "yamnet-embedding-lr", {})


def main(manifest: Path, out: Path, c_grid: list[float]) -> None:
    keep: dict = {}
    t0 = time.perf_counter()
    members = T.STAGE1_MEMBERS + (EMB,)
    entries = T.train_stage1(manifest, out_dir=out, members=members, stacker_name="stage1-stacker-lr-v3",
                             keep=keep)
    print(f"trained in {time.perf_counter() - t0:.0f} s", flush=True)
    items, oof = keep["items"], keep["oof"]
    labels = [it.labels for it in items]
    names = [n for n, _, _ in members]
    for e in entries:
        metrics = json.dumps(e.get("metrics", {}).get("out_of_fold_train_mixes", {}))[:400]
        print(e["name"], e["files"][0]["sha256"][:12], metrics)

    # the embedding member in place of the logits member, on the same out-of-fold probabilities
    swap = [names.index(n) for n in ("stage1-detectors-lr", "stage1-seed-rf", "stage1-logmel-cnn",
                                     "stage1-yamnet-embedding-lr")]
    stacker = T.fit_stacker([[oof[it.name][i] for i in swap] for it in items], labels)
    stacked = [stacker.predict_proba(stack_features([oof[it.name][i] for i in swap])) for it in items]
    metrics = T._frame_accuracy(stacked, labels)
    print("stacker with the embedding member instead of yamnet-lr (out of fold):", metrics, flush=True)
    T.register_stacker(out, "stage1-stacker-lr-emb", stacker, members=[names[i] for i in swap],
                       training_data={"fit_on": "out-of-fold member probabilities (2-fold cross-fitting), "
                                                "issue13_yamnet_embedding/train.py"},
                       metrics={"out_of_fold_train_mixes": metrics})
    np.savez_compressed(out / "oof.npz", names=np.array(names),
                        **{f"{it.name}__{i}": oof[it.name][i].astype(np.float32) for it in items
                           for i in range(len(names))},
                        **{f"{it.name}__labels": it.labels for it in items})

    # C of the embedding member alone, out of fold on the training mixes (training data only)
    folds = sorted({it.fold for it in items})
    for C in c_grid:
        probs = []
        for k in folds:
            fit_on = [it for it in items if it.fold != k]
            member = T.fit_member("yamnet-embedding-lr", {"C": C}, fit_on, name="c-grid", seed=k)
            probs += [T.member_frame_probabilities("yamnet-embedding-lr", {"C": C}, member, it)
                      for it in items if it.fold == k]
        ordered = [it.labels for k in folds for it in items if it.fold == k]
        print(f"embedding member alone, C={C} (mixes only, no reels):", T._frame_accuracy(probs, ordered), flush=True)


if __name__ == "__main__":
    grid = [float(c) for c in sys.argv[3].split(",")] if len(sys.argv) > 3 else []
    main(Path(sys.argv[1]), Path(sys.argv[2]), grid)
