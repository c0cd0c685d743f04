"""Issue 13: the default stage-1 recipe with its music excerpts augmented (the song-safe MusicAugmentation plus a
tanh saturation, p=0.25, 6-18 dB of drive), measured on the song check's refitted member check and, optionally,
fitted whole.

Usage (from the repository root, PYTHONPATH=. or the worktree):

    python dramapic/lab/experiments/issue13_music_augment/musaug.py eval --song-check --data ../shared/data \\
        --refit-stage1 fretsonfire-songs-muldjord --work WORK --json WORK/songcheck.json --no-progress
    python dramapic/lab/experiments/issue13_music_augment/musaug.py fit --data ../shared/data --out MODELS

    MUSAUG_MODELS=MODELS python dramapic/lab/experiments/issue13_music_augment/musaug.py eval \
        --mixes ../shared/data/dev_mixes --no-progress

``eval ...`` is ``dramapic eval ...`` with every stage-1 refit fitted with the augmentation (its fits are kept
under WORK/stage1-refits/ in folders named ``...-musaug-<sha>``, never taken for the shipped recipe's). ``fit``
trains the full stage 1 (all sources) with the augmentation into MODELS, beside a copy of the shipped models.
``$MUSAUG_MODELS`` (read here only; the product has no such switch) makes the run load its models from MODELS
instead of the bundled models/ (``dramapic.resources.models_dir``, which ``dramapic.models`` looks up per call).
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from pathlib import Path

from dramapic.lab import stage1_refits
from dramapic.lab.stage1_data import MusicAugmentation

#: the song-safe augmentation (varispeed, EQ, a cappella stems) plus the saturation step
AUGMENTATION = MusicAugmentation(p_drive=0.25, drive_db=(6.0, 18.0))


def fit(data: Path, out: Path) -> None:
    import json
    import logging

    from dramapic.lab.train_stage1 import shipped_recipe, train_stage1
    from dramapic.resources import models_dir

    logging.basicConfig(level=logging.INFO)
    if not out.exists():  # the other stages' files and their manifest entries, then stage 1's replaced
        shutil.copytree(models_dir(), out)
    entries = train_stage1(data / "manifest.csv", out_dir=out, seed=0, music_augmentation=AUGMENTATION,
                           **shipped_recipe())
    print(json.dumps(entries[-1]["training_data"].get("music_augmentation"), indent=1))


def main(argv: list[str]) -> int:
    if argv[:1] == ["fit"]:
        import argparse

        ap = argparse.ArgumentParser()
        ap.add_argument("--data", type=Path, required=True)
        ap.add_argument("--out", type=Path, required=True)
        args = ap.parse_args(argv[1:])
        fit(args.data, args.out)
        return 0
    from dramapic import cli, resources

    if os.environ.get("MUSAUG_MODELS"):
        models = Path(os.environ["MUSAUG_MODELS"]).resolve()
        resources.models_dir = lambda: models
    stage1_refits.refit_song_member_check = functools.partial(stage1_refits.refit_song_member_check,
                                                              music_augmentation=AUGMENTATION)
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
