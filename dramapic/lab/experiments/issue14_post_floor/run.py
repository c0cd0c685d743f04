"""The seconds floor once more after the re-segmentation (issue 14), judged with
``../issue14_gender_fallback/harness.py``.

The clustering folds clusters below ``min_speaker_s`` (shrunk on short scenes: ``short_recording_floors``), but it
counts a cluster's *windows*; the re-segmentation then gives part of them to another speaker. Cut to 25 s, the
bundled sample keeps a 3.6 s cluster (the man over the music bed plus two windows of the woman after him) that wins
2.1 s of turns: a third speaker. ``postfloor`` drops, smallest first, the centroid of every speaker whose talk in
the turns it won is below the floor the clustering used, and re-segments against the others; a speaker of a
confident gender no other speaker has stays (as in the clustering's folding). Unlike ``../issue14_reseg_iter``'s
``postfold`` it applies the seconds floor only, not the share of the largest speaker.

    python run.py DATA WORK CACHE OUT SEEDS postfloor ...

(the harness's arguments; never two at once on two cores).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "issue14_gender_fallback"))

import harness
import variants

_spec = importlib.util.spec_from_file_location("reseg_iter_variants",
                                               HERE.parent / "issue14_reseg_iter" / "variants.py")
reseg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reseg)


# the sibling experiment's post-resegmentation fold, with the seconds floor alone
variants.VARIANTS["postfloor"] = lambda: reseg._post_fold(seconds_floor_only=True)
variants.VARIANTS["postfloor_all"] = lambda: reseg._post_fold(keep_unique_gender=False, seconds_floor_only=True)

if __name__ == "__main__":
    harness.main(sys.argv[1:])
