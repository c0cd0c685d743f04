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

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "issue14_gender_fallback"))

import harness
import variants

from dramapic.analysis.clustering import short_recording_floors

_spec = importlib.util.spec_from_file_location("reseg_iter_variants",
                                               HERE.parent / "issue14_reseg_iter" / "variants.py")
reseg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reseg)


def _post_floor(*, keep_unique_gender: bool = True):
    def second_pass(out, inputs, resegment, options, projection):
        _, w, pf = inputs
        floor = short_recording_floors(options, total_talk_s=float(np.sum(w))).min_speaker_s
        conf = options.gender_link_confidence
        while True:
            _, cent, raw = out
            talk, rows_of, won = reseg._turn_rows(raw, cent.shape[0])
            alive = np.flatnonzero(won)
            if len(alive) <= max(1, options.min_speakers):
                return out
            small = [c for c in alive[np.argsort(talk[alive], kind="stable")] if talk[c] < floor]
            if keep_unique_gender:
                sides = {}
                for c in alive:
                    r = np.concatenate(rows_of[c]) if rows_of[c] else np.zeros(0, np.int64)
                    m = float(pf[r].mean()) if len(r) else 0.5
                    sides[c] = 1 if m >= conf else (-1 if m <= 1 - conf else 0)
                small = [c for c in small
                         if not (sides[c] != 0 and all(sides[o] != sides[c] for o in alive if o != c))]
            if not small:
                return out
            out = resegment(cent[[c for c in alive if c != small[0]]])

    return reseg._after_first_pass(second_pass)


variants.VARIANTS["postfloor"] = lambda: _post_floor()
variants.VARIANTS["postfloor_all"] = lambda: _post_floor(keep_unique_gender=False)

if __name__ == "__main__":
    harness.main(sys.argv[1:])
