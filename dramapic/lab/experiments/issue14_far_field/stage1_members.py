"""Stage 1's stacker on fewer members, with near or distant training rooms: one training, several stackers.

Far from the microphone the seed project's random forest (``stage1-seed-rf``) scores 0.59-0.72 on the held-out
voice folders and the log-mel CNN 0.71-0.86, where the detectors' logistic regression keeps 0.85-0.95; the stacker
still listens to both (``eval --cross-corpus --rooms far``: the ensemble falls behind detectors-lr on two folders).
Each member is fitted on its own (its seed does not depend on the others), so one run of the shipped recipe
(:func:`dramapic.lab.train_stage1.shipped_recipe`) gives the out-of-fold probabilities of every subset: this script
keeps them and fits one stacker per subset on exactly those members' columns, as ``train_stage1`` fits the shipped
one.

    python stage1_members.py --data ../shared/data/manifest.csv --models models --out DIR [--rooms far] [--seed N]

``DIR/models`` becomes a full models folder (a copy of ``--models`` with stage 1 retrained here: the four members
and ``stage1-stacker-lr`` as ``dramapic train --only stage1`` writes them, plus ``stage1-stacker-lr-<subset>``);
beside it one pipeline per subset, ``pipeline-<subset>.yaml`` (the default pipeline with that member list and
stacker), and the out-of-fold accuracies, ``stage1_members.json``. Score a subset with ``dramapic eval ...
--pipeline DIR/pipeline-<subset>.yaml`` run from a checkout whose ``models`` is ``DIR/models``. ``--smoke N``: the
recipe's smoke run on N clips per source (tiny members), to try the script.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from dramapic.lab.train_stage1 import (
    STACKER_NAME,
    STAGE1_MEMBERS,
    _frame_accuracy,
    fit_stacker,
    register_stacker,
    shipped_recipe,
    train_stage1,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stage1_far import use_rooms  # the rooms' tails, one place

#: subset tag -> member names, in the shipped order
SUBSETS = {
    "no-seed-rf": ("stage1-detectors-lr", "stage1-logmel-cnn", "stage1-yamnet-lr"),
    "det-yamnet": ("stage1-detectors-lr", "stage1-yamnet-lr"),
    "det-cnn-rf": ("stage1-detectors-lr", "stage1-seed-rf", "stage1-logmel-cnn"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="manifest.csv of the shared data")
    parser.add_argument("--models", type=Path, required=True, help="the shipped models folder, copied first")
    parser.add_argument("--pipeline", type=Path, default=Path("pipelines/default.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rooms", choices=("near", "far"), default="near")
    parser.add_argument("--seed", type=int, default=0, help="training seed (0: the shipped files')")
    parser.add_argument("--smoke", type=int, default=None, metavar="N")
    args = parser.parse_args()

    use_rooms(args.rooms)
    if args.out.exists():
        raise SystemExit(f"{args.out} exists")
    models = args.out / "models"
    shutil.copytree(args.models, models)
    keep: dict = {}
    train_stage1(args.data, out_dir=models, keep=keep, seed=args.seed, **shipped_recipe(max_clips=args.smoke))
    items, oof = keep["items"], keep["oof"]
    names = [name for name, _, _ in STAGE1_MEMBERS]
    labels = [it.labels for it in items]
    from dramapic.analysis.stage1 import stack_features

    report = {"rooms": args.rooms, "seed": args.seed, "all": {}}
    full = [keep["stacker"].predict_proba(stack_features(oof[it.name])) for it in items]
    report["all"][STACKER_NAME] = _frame_accuracy(full, labels)
    text = args.pipeline.read_text(encoding="utf-8")
    shipped_line = f"  members: [{', '.join(names)}]"
    if shipped_line not in text or f"  stacker: {STACKER_NAME}\n" not in text:
        raise SystemExit(f"{args.pipeline} does not name the shipped members and stacker")
    for tag, subset in SUBSETS.items():
        columns = [names.index(n) for n in subset]
        probs = [[oof[it.name][i] for i in columns] for it in items]
        stacker = fit_stacker(probs, labels)
        name = f"{STACKER_NAME}-{tag}"
        register_stacker(models, name, stacker, members=subset,
                         training_data={"fit_on": "out-of-fold member probabilities (2-fold cross-fitting)",
                                        "rooms": args.rooms, "experiment": __file__}, seed=args.seed)
        report[tag] = _frame_accuracy([stacker.predict_proba(stack_features(p)) for p in probs], labels)
        (args.out / f"pipeline-{tag}.yaml").write_text(
            text.replace(shipped_line, f"  members: [{', '.join(subset)}]")
                .replace(f"  stacker: {STACKER_NAME}\n", f"  stacker: {name}\n"), encoding="utf-8")
    (args.out / "stage1_members.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
